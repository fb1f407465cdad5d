//! `scripts/soak [SECONDS]` (default 600; not in CI): full-rate traffic through vswitchd
//! (a VM port and the uplink replaying the hostile mix of the stress tests, forever) while
//! a VM port is attached and detached every second. Every ten seconds it samples the
//! mempool, vswitchd's resident memory and the counters; at the end it checks that the
//! mbufs in use are back at their baseline, that vswitchd never died, and that every
//! counter balances, and prints the resident memory's slope.

use std::time::{Duration, Instant};

use roam_tests::traffic::{churn_mac, mac_str, uplink_frames, vm_frames, write_pcap, SRC};
use roam_tests::{TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";

fn in_use(vs: &Vswitchd) -> i64 {
    let m = vs.show().mbufs;
    m.capacity as i64 - m.available as i64
}

/// The median of a few samples a moment apart (frames in flight vary).
fn in_use_settled(vs: &Vswitchd) -> i64 {
    let mut v: Vec<i64> = (0..7)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            in_use(vs)
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Least-squares slope of (seconds, KiB) samples, in KiB per minute.
fn slope_per_minute(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    let (mx, my) = (samples.iter().map(|s| s.0).sum::<f64>() / n, samples.iter().map(|s| s.1).sum::<f64>() / n);
    let cov: f64 = samples.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = samples.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var * 60.0
    }
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).map(|s| s.parse().expect("SECONDS must be a number")).unwrap_or(600);
    // Which devices the churned port is: both kinds in turn (default), or only one
    // (`ROAM_SOAK_DEVICES=null` or `ring`), to tell where memory goes.
    let kinds = std::env::var("ROAM_SOAK_DEVICES").unwrap_or_default();
    let dir = TestDir::new("soak");
    let (vm_pcap, up_pcap) = (dir.path("vm.pcap"), dir.path("uplink.pcap"));
    write_pcap(&vm_pcap, &vm_frames());
    write_pcap(&up_pcap, &uplink_frames());
    let uplink = format!("net_pcap9,rx_pcap={},infinite_rx=1", up_pcap.display());
    let mut vs = Vswitchd::start_with_workers(&dir, "soak", Some(&uplink), 2);
    let pid = vs.pid().expect("vswitchd runs");
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let baseline = in_use_settled(&vs);
    vs.ok(json!({ "op": "attach", "name": "src", "device": format!("net_pcap0,rx_pcap={},infinite_rx=1", vm_pcap.display()), "mac": mac_str(SRC), "segment": 100, "ipv4": ["10.1.1.100"] }));
    println!("soak: {seconds} s; mbufs in use with only the uplink replaying: {baseline}");

    let started = Instant::now();
    let mut rss: Vec<(f64, f64)> = Vec::new();
    let mut last: Option<usize> = None;
    let mut cycles = 0usize;
    let mut next_sample = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(seconds) {
        let tick = Instant::now();
        if let Some(old) = last.take() {
            vs.ok(json!({ "op": "detach", "name": format!("vm{old}") }));
        }
        let ring = match kinds.as_str() {
            "null" => false,
            "ring" => true,
            _ => cycles % 2 == 1,
        };
        // Two names per kind, reused: DPDK's ring PMD keeps each removed device's rings
        // (about 78 KiB per distinct name, seen here as a steady RSS climb), which is
        // DPDK's state, not vswitchd's. vswitchd reuses its own vhost device names.
        let device = if ring { format!("net_ring{}", 10 + cycles % 2) } else { format!("net_null{}", 10 + cycles % 2) };
        let k = cycles % 4;
        vs.ok(json!({ "op": "attach", "name": format!("vm{cycles}"), "device": device, "mac": mac_str(churn_mac(k)), "segment": 100, "ipv4": [format!("10.1.1.{}", 10 + k)] }));
        last = Some(cycles);
        cycles += 1;
        if started.elapsed() >= next_sample {
            assert!(vs.is_running(), "vswitchd died after {cycles} cycles:\n{}", vs.log());
            let s = vs.stats();
            assert_eq!((s.rx_balanced, s.out_balanced), (true, true), "counters do not add up: {s:#?}");
            let t = started.elapsed().as_secs_f64();
            let kib = rss_kib(pid);
            rss.push((t, kib as f64));
            println!(
                "t={t:>5.0} s  cycles {cycles:>5}  rx {:>12}  sent {:>12}  mbufs in use {:>6}  RSS {kib} KiB",
                s.sum(|p| p.input.rx),
                s.sum(|p| p.out.sent),
                in_use(&vs)
            );
            next_sample += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    if let Some(old) = last {
        vs.ok(json!({ "op": "detach", "name": format!("vm{old}") }));
    }
    vs.ok(json!({ "op": "detach", "name": "src" }));
    // Frames held for a port whose link went down expire within 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let end = in_use_settled(&vs);
    let s = vs.stats();
    assert!(vs.is_running(), "vswitchd died:\n{}", vs.log());
    let slope = slope_per_minute(&rss);
    println!("\nsoak done: {cycles} attach/detach cycles in {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "frames: rx {}, sent {}, dropped {}, tx_full {}, link_down {}",
        s.sum(|p| p.input.rx),
        s.sum(|p| p.out.sent),
        s.sum(|p| p.dropped),
        s.sum(|p| p.out.tx_full),
        s.sum(|p| p.out.link_down)
    );
    println!("mbufs in use: baseline {baseline}, end {end}");
    println!(
        "RSS: first {:.0} KiB, last {:.0} KiB, slope {slope:.1} KiB/min over {} samples",
        rss.first().map_or(0.0, |r| r.1),
        rss.last().map_or(0.0, |r| r.1),
        rss.len()
    );
    println!("balanced: rx {}, out {}", s.rx_balanced, s.out_balanced);
    assert_eq!((s.rx_balanced, s.out_balanced), (true, true), "counters do not add up: {s:#?}");
    // A burst or two may be in flight from the uplink's endless replay.
    assert!((end - baseline).abs() <= 64, "mbufs in use did not return to the baseline: {baseline} -> {end}");
    println!("soak passed");
}
