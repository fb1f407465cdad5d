//! vswitchd's metrics endpoint, scraped as Prometheus would: a real HTTP client (curl), the
//! Prometheus project's own text parser, and every value checked against `vsctl stats` of
//! the same moment (the traffic has stopped, so the moment is well defined).

use std::time::Duration;

use roam_api::metrics::{DROPPED, PORT_METRICS};
use roam_api::views::StatsView;
use roam_tests::prometheus::{free_port, get, scrape, Scrape};
use roam_tests::traffic::{churn_mac, mac_str, vm_frames, write_pcap, SRC};
use roam_tests::{wait_for, TestDir, Vswitchd};
use serde_json::{json, Value};

const ANYCAST: &str = "00:00:5e:00:01:01";
const ROUNDS: usize = 200;

/// The counters that only traffic moves (the workers' cycles and loops move while idle).
fn frozen(s: &StatsView) -> Value {
    json!({ "ports": s.ports, "fdb": s.fdb, "fixups": s.fixups,
            "workers": s.workers.iter().map(|w| json!([w.frames, w.bursts, w.rx_queues, w.tx_queues])).collect::<Vec<_>>() })
}

fn check_against(scrape: &Scrape, s: &StatsView) {
    let mut checked = 0;
    for p in &s.ports {
        let fields = roam_api::metrics::port_fields(p);
        for m in PORT_METRICS {
            let want = fields[m.field].as_u64().unwrap_or_else(|| panic!("{} has no {}", p.name, m.field));
            assert_eq!(scrape.value(m.metric, &[("port", &p.name)]), want as f64, "{} of {}", m.metric, p.name);
            checked += 1;
        }
        for r in roam_api::DropReason::ALL {
            let got = scrape.value(DROPPED, &[("port", &p.name), ("reason", r.name())]);
            assert_eq!(got, p.drops(r.name()) as f64, "{} drops of {}", r.name(), p.name);
            checked += 1;
        }
    }
    for w in &s.workers {
        let id = w.id.to_string();
        assert_eq!(scrape.value("roam_worker_rx_frames_total", &[("worker", &id)]), w.frames as f64);
        assert_eq!(scrape.value("roam_worker_bursts_total", &[("worker", &id)]), w.bursts as f64);
        assert_eq!(scrape.value("roam_worker_tsc_hz", &[("worker", &id)]), w.tsc_hz as f64);
        for q in &w.rx_queues {
            let labels = [("worker", id.as_str()), ("port", &q.port), ("queue", &q.queue.to_string())];
            assert_eq!(scrape.value("roam_worker_rx_queue_frames_total", &labels), q.frames as f64);
        }
        // Cycles move while the worker idles: the scrape's lie between two stats.
        assert!(scrape.value("roam_worker_busy_cycles_total", &[("worker", &id)]) >= w.busy_cycles as f64);
        checked += 4;
    }
    assert_eq!(scrape.value("roam_fdb_entries", &[]), s.fdb.entries as f64);
    assert_eq!(scrape.value("roam_fdb_capacity", &[]), s.fdb.capacity as f64);
    assert_eq!(scrape.value("roam_fixup_requests_total", &[]), s.fixups.requests as f64);
    assert_eq!(scrape.value("roam_fixup_frames_total", &[]), s.fixups.frames as f64);
    assert_eq!(scrape.value("roam_mbufs_capacity", &[]), s.mbufs.capacity as f64);
    assert_eq!(scrape.value("roam_stats_balanced", &[]), 1.0);
    assert!(checked > 100, "only {checked} values checked");
}

#[test]
fn a_scrape_equals_vsctl_stats() {
    let dir = TestDir::new("metrics");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let vs = Vswitchd::start_with_args(&dir, "metrics", Some("net_null0,no-rx=1"), 1, &["--metrics", &addr]);
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "native": true }));
    for k in 0..2 {
        vs.ok(json!({ "op": "attach", "name": format!("sink{k}"), "device": format!("net_null{},no-rx=1", k + 1),
                      "mac": mac_str(churn_mac(k)), "segment": 100, "ipv4": [format!("10.1.1.{}", 10 + k)] }));
    }
    // A VM port that sends the hostile mix once: forwarded, flooded, rewritten, dropped
    // for several reasons.
    let frames: Vec<Vec<u8>> = (0..ROUNDS).flat_map(|_| vm_frames()).collect();
    let pcap = dir.path("vm.pcap");
    write_pcap(&pcap, &frames);
    vs.ok(json!({ "op": "attach", "name": "src", "device": format!("net_pcap3,rx_pcap={}", pcap.display()),
                  "mac": mac_str(SRC), "segment": 100, "ipv4": ["10.1.1.100"] }));
    wait_for("the pcap's frames", Duration::from_secs(30), || {
        (vs.port_stats("src").input.rx == frames.len() as u64).then_some(())
    });
    vs.ok(json!({ "op": "arp-announce", "to": ["sink0", "sink1"], "ip": "10.1.1.77", "mac": "02:00:00:00:00:77" }));

    let url = format!("http://{addr}/metrics");
    // The moment: two stats that agree on every counter traffic moves, a scrape between.
    let (before, scraped, after) = wait_for("a quiet moment", Duration::from_secs(20), || {
        let before = vs.stats();
        let scraped = scrape(&url);
        let after = vs.stats();
        (frozen(&before) == frozen(&after)).then_some((before, scraped, after))
    });
    check_against(&scraped, &before);
    assert!(
        scraped.value("roam_worker_busy_cycles_total", &[("worker", "0")]) <= after.workers[0].busy_cycles as f64,
        "busy cycles beyond the later stats"
    );
    // The workload reached the counters the test is about.
    let src = before.port("src").unwrap();
    assert!(src.input.forwarded > 0 && src.input.flooded > 0 && src.input.rewritten > 0 && src.dropped > 0, "{src:?}");
    assert!(src.drops("runt") == ROUNDS as u64 && src.drops("tagged_from_vnic") == ROUNDS as u64, "{src:?}");
    assert_eq!(before.fixups.requests, 1);
    assert_eq!(before.fixups.frames, 2);
    assert_eq!(scraped.value("roam_port_injected_frames_total", &[("port", "sink0")]), 1.0);
    assert_eq!(scraped.value("roam_vms", &[("state", "up")]), 3.0);
    assert_eq!(scraped.value("roam_port_link_up", &[("port", "uplink")]), 1.0);
    // Types as Prometheus reads them: counters are counters, gauges gauges.
    for s in scraped.all("roam_port_rx_frames_total") {
        assert_eq!((s.family.as_str(), s.kind.as_str()), ("roam_port_rx_frames", "counter"));
    }
    assert_eq!(scraped.all("roam_mbufs_in_use")[0].kind, "gauge");

    // `vsctl metrics` prints the same exposition over the control socket.
    let (ok, text) = vs.vsctl(&["metrics"]);
    assert!(ok, "{text}");
    let via_socket = roam_tests::prometheus::parse(&text);
    assert_eq!(via_socket.value(DROPPED, &[("port", "src"), ("reason", "runt")]), ROUNDS as f64);

    // Anything but /metrics is a 404, with where to look.
    let other = get(&format!("http://{addr}/"));
    assert!(other.status == 404 && other.body.contains("/metrics"), "{} {}", other.status, other.body);
}

/// `vswitchd --check-config`: 0 and a summary for a configuration it would start with
/// (metrics off unless asked for), 1 and one line for one it would not; nothing started.
#[test]
fn check_config_says_what_vswitchd_would_start_with() {
    let dir = TestDir::new("check-config");
    let state = dir.path("state.json").display().to_string();
    let check = |args: &[&str]| {
        let out = std::process::Command::new(roam_tests::bin("vswitchd"))
            .args(["--check-config", "--socket", &dir.path("ctl").display().to_string(), "--state", &state])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = check(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("configuration OK") && out.contains("metrics off") && out.contains("0 attachments"), "{out}");
    assert!(!dir.path("ctl").exists(), "--check-config must not bind the control socket");
    let (code, out, _) = check(&["--metrics", "127.0.0.1:9478", "--workers", "2"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("metrics 127.0.0.1:9478") && out.contains("2 worker(s)"), "{out}");
    let config = dir.path("typo.toml");
    std::fs::write(&config, "socket = \"/tmp/x\"\nstate = \"/tmp/y\"\nworkerz = 2\n").unwrap();
    let bad: [(&[&str], &str); 4] = [
        (&["--metrics", "localhost:9478"], "is not IP:PORT"),
        (&["--workers", "0"], "workers must be 1..=64"),
        (&["--worker-cores", "4096"], "worker_cores: CPU 4096"),
        (&["--config", &config.display().to_string()], "line 3"),
    ];
    for (args, why) in bad {
        let (code, _, err) = check(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(why) && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
    std::fs::write(&state, "{ not json").unwrap();
    let (code, _, err) = check(&[]);
    assert!(code == Some(1) && err.contains("state.json"), "{err}");
}
