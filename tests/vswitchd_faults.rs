//! Faults an operator of a production vswitch expects to survive, against the real daemon:
//! VM ports attached and detached hundreds of times under hostile traffic, a worker that
//! dies, an attachment that cannot be restored, and bad configuration.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roam_api::views::{ShowView, StatsView};
use roam_api::ErrorCode;
use roam_tests::traffic::{churn_mac, mac_str, start_sender, uplink_frames, vm_frames, write_pcap, SRC};
use roam_tests::{Leaf, TestDir, Vswitchd};
use serde_json::{json, Value};

const ANYCAST: &str = "00:00:5e:00:01:01";

fn assert_balanced(vs: &Vswitchd) -> StatsView {
    let s = vs.stats();
    assert_eq!((s.rx_balanced, s.out_balanced), (true, true), "counters do not add up: {s:#?}");
    s
}

fn drops(s: &StatsView, reason: &str) -> u64 {
    s.sum(|p| p.drops(reason))
}

fn vm_names(show: &ShowView) -> Vec<&str> {
    show.vms.iter().map(|v| v.name.as_str()).collect()
}

/// Issue check: no packet path indexes past what a worker knows. 200 VM ports
/// (`net_null` and `net_ring`) are attached and detached while frames addressed to their
/// MACs (unicast, broadcast, unknown) pour in from another VM port and from the uplink:
/// vswitchd never dies, every counter balances, and every mbuf comes back.
#[test]
fn attach_detach_churn_under_hostile_traffic() {
    let dir = TestDir::new("churn");
    let leaf = Leaf::bare("ch");
    let mut vs = Vswitchd::start_with_workers(&dir, "churn", Some(&leaf.uplink()), 2);
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let pcap = dir.path("vm.pcap");
    write_pcap(&pcap, &vm_frames());
    vs.ok(json!({ "op": "attach", "name": "src", "device": format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display()), "mac": mac_str(SRC), "segment": 100, "ipv4": ["10.1.1.100"] }));
    let mut sender = start_sender(&leaf, &uplink_frames());

    let started = Instant::now();
    let cycles = 200;
    let mut attached: Vec<usize> = Vec::new();
    for i in 0..cycles {
        // Three churned ports at a time; the oldest goes before the next comes.
        if attached.len() == 3 {
            let old = attached.remove(0);
            vs.ok(json!({ "op": "detach", "name": format!("vm{old}") }));
        }
        let device = if i % 2 == 0 { format!("net_null{}", 10 + i) } else { format!("net_ring{}", 10 + i) };
        let k = i % 4;
        vs.ok(json!({ "op": "attach", "name": format!("vm{i}"), "device": device, "mac": mac_str(churn_mac(k)), "segment": 100, "ipv4": [format!("10.1.1.{}", 10 + k)] }));
        attached.push(i);
        if i % 50 == 49 {
            assert!(vs.is_running(), "vswitchd died after {} cycles:\n{}", i + 1, vs.log());
            assert_balanced(&vs);
        }
    }
    for old in attached.drain(..) {
        vs.ok(json!({ "op": "detach", "name": format!("vm{old}") }));
    }
    let churn_time = started.elapsed();
    assert!(vs.is_running(), "vswitchd died:\n{}", vs.log());
    let s = assert_balanced(&vs);
    let (rx, sent) = (s.sum(|p| p.input.rx), s.sum(|p| p.out.sent));
    println!(
        "{cycles} attach/detach cycles in {:.1} s under traffic: rx {rx}, sent {sent}, port_not_ready {}, tx_no_port {}, unknown_port {}",
        churn_time.as_secs_f64(),
        drops(&s, "port_not_ready"),
        s.sum(|p| p.out.tx_no_port),
        drops(&s, "unknown_port")
    );
    assert!(rx > 100_000 && sent > 10_000, "too little traffic to prove anything: {s:#?}");
    for reason in ["runt", "spoofed_source_mac", "tagged_from_vnic", "malformed_arp", "bad_source_mac"] {
        assert!(drops(&s, reason) > 0, "no {reason} drop: the hostile frames did not arrive");
    }

    // Traffic stops: every mbuf is back in the pool (frames a ring port still held when it
    // went were drained and counted, not left in its rings).
    let _ = sender.kill();
    let _ = sender.wait();
    vs.ok(json!({ "op": "detach", "name": "src" }));
    vs.wait_mbufs_returned(Duration::from_secs(10));
    assert_balanced(&vs);
}

/// Issue check: a worker that panics takes the process down at once with one clear log
/// line (never a daemon that answers the API with no data plane), and a restart restores
/// every attachment from the state file.
#[test]
fn a_worker_panic_takes_the_daemon_down_and_a_restart_restores_the_vms() {
    let dir = TestDir::new("panic");
    let mut vs = Vswitchd::start_with_args(&dir, "panic", Some("net_null0,no-rx=1"), 2, &["--debug-api"]);
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "native": true }));
    for k in 0..3 {
        vs.ok(json!({ "op": "attach", "name": format!("vm{k}"), "device": format!("net_null{}", k + 1), "mac": mac_str(churn_mac(k)), "segment": 100 }));
    }
    vs.ok(json!({ "op": "debug-crash-worker", "worker": 1 }));
    let status = vs
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("vswitchd still runs after its worker panicked:\n{}", vs.log()));
    assert!(!status.success(), "vswitchd exited with {status} after a worker panic");
    let log = vs.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert_eq!(lines.len(), 1, "one log line for the panic:\n{log}");
    assert!(lines[0].contains("roam-worker1") && lines[0].contains("aborts"), "{}", lines[0]);

    vs.start_again();
    let show = vs.show();
    assert_eq!(vm_names(&show), ["vm0", "vm1", "vm2"], "{show:?}");
    assert_eq!(show.failed, [], "{show:?}");
    // Without --debug-api the request is refused and nothing happens.
    let mut plain = Vswitchd::start(&dir, "plain", None);
    let (code, _) = plain.refused(json!({ "op": "debug-crash-worker", "worker": 0 }));
    assert_eq!(code, ErrorCode::Disabled);
    assert!(plain.is_running());
}

/// Issue check: an attachment whose restore fails at start-up stays in the state file,
/// marked failed with the reason, is shown by `vsctl show`, and is tried again on request
/// (and at the next start).
#[test]
fn a_failed_restore_is_kept_shown_and_retried() {
    let dir = TestDir::new("restore");
    let mut vs = Vswitchd::start(&dir, "restore", Some("net_null0,no-rx=1"));
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "native": true }));
    let pcap = dir.path("replay.pcap");
    write_pcap(&pcap, &vm_frames());
    vs.ok(json!({ "op": "attach", "name": "replay", "device": format!("net_pcap1,rx_pcap={}", pcap.display()), "mac": mac_str(SRC), "segment": 100 }));
    vs.ok(json!({ "op": "attach", "name": "steady", "device": "net_null1", "mac": mac_str(churn_mac(0)), "segment": 100 }));

    // The pcap file goes away while vswitchd is down: its device cannot be made again.
    vs.kill();
    std::fs::rename(&pcap, dir.path("moved.pcap")).unwrap();
    vs.start_again();
    let show = vs.show();
    assert_eq!(vm_names(&show), ["steady"], "{show:?}");
    assert_eq!(show.failed.len(), 1, "{show:?}");
    assert_eq!(show.failed[0].name, "replay");
    assert!(!show.failed[0].error.is_empty(), "{show:?}");
    let (ok, table) = vs.vsctl(&["show"]);
    assert!(ok && table.contains("Failed attachments") && table.contains("replay"), "{table}");
    // Kept in the state file, marked failed (a save since the restore has not dropped it).
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&vs.state).unwrap()).unwrap();
    assert_eq!(state["failed"][0]["attachment"]["name"], json!("replay"), "{state}");
    // The same name cannot be attached anew while it is failed.
    let (code, _) = vs.refused(json!({ "op": "attach", "name": "replay", "device": "net_null7", "mac": mac_str(churn_mac(3)), "segment": 100 }));
    assert_eq!(code, ErrorCode::Conflict);

    // Still failing: retry says why and keeps it; across another restart too.
    let r = vs.client().retry(None).expect("retry");
    assert_eq!((r.attached.as_slice(), r.failed.contains_key("replay")), (&[][..], true), "{r:?}");
    vs.restart();
    assert_eq!(vs.show().failed[0].name, "replay");

    // Fixed: retry attaches it.
    std::fs::rename(dir.path("moved.pcap"), &pcap).unwrap();
    let (ok, out) = vs.vsctl(&["retry", "replay"]);
    assert!(ok, "{out}");
    let show = vs.show();
    assert_eq!(show.vms.len(), 2, "{show:?}");
    assert_eq!(show.failed, []);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&vs.state).unwrap()).unwrap();
    assert!(state.get("failed").is_none() && state["attachments"].as_array().map(Vec::len) == Some(2), "{state}");
}

/// Runs vswitchd with a configuration file; returns its exit status and standard error.
fn run_config(dir: &TestDir, name: &str, toml: &str) -> (std::process::ExitStatus, String) {
    let path = dir.path(&format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(roam_tests::bin("vswitchd"))
        .arg("--config")
        .arg(&path)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("running vswitchd");
    (out.status, String::from_utf8_lossy(&out.stderr).to_string())
}

/// Issue check: malformed configuration gets one clear line, a non-zero exit, no stale
/// socket, and nothing deleted that vswitchd did not create.
#[test]
fn bad_configuration_is_one_clear_line_and_leaves_nothing_behind() {
    let dir = TestDir::new("badcfg");
    let sock = dir.path("ctl.sock");
    let state = dir.path("state.json");
    let eal = r#"eal = ["--no-huge", "-m", "256", "--no-pci", "--no-telemetry", "--file-prefix", "roam-badcfg", "--log-level", "lib.eal:error"]"#;
    let base = format!("{eal}\nsocket = \"{}\"\nstate = \"{}\"\n", sock.display(), state.display());
    let live = Vswitchd::start(&dir, "live", None);
    let regular = dir.path("regular-file");
    std::fs::write(&regular, "not a socket").unwrap();
    let cases = [
        ("bad TOML", format!("{base}workers = [\n"), "config"),
        ("an unknown key", format!("{base}wrokers = 2\n"), "unknown field"),
        ("a missing uplink device", format!("{base}uplink = \"net_af_packet0,iface=roam-no-such-if\"\n"), "uplink"),
        ("a worker pinned to a CPU the process may not use", format!("{base}worker_cores = [4096]\n"), "worker_cores"),
        ("uplink queues out of range", format!("{base}uplink = \"net_null9\"\nuplink_queues = 9\n"), "uplink_queues"),
        (
            "a socket in use",
            format!("{eal}\nsocket = \"{}\"\nstate = \"{}\"\n", live.socket.display(), state.display()),
            "in use",
        ),
        (
            "a socket path that is a regular file",
            format!("{eal}\nsocket = \"{}\"\nstate = \"{}\"\n", regular.display(), state.display()),
            "not a socket",
        ),
        ("workers out of range", format!("{base}workers = 0\n"), "workers"),
    ];
    for (what, toml, says) in cases {
        let (status, stderr) = run_config(&dir, "bad", &toml);
        assert!(!status.success() && status.code().is_some(), "{what}: exit {status}\n{stderr}");
        let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("vswitchd: ")).collect();
        assert_eq!(ours.len(), 1, "{what}: one error line, got:\n{stderr}");
        assert!(ours[0].contains(says), "{what}: {:?} does not say {says:?}", ours[0]);
        assert!(!stderr.contains("Caused by") && !stderr.contains("panicked"), "{what}:\n{stderr}");
        assert!(!sock.exists(), "{what}: a stale control socket was left at {}", sock.display());
        assert_eq!(
            std::fs::read_to_string(&regular).unwrap(),
            "not a socket",
            "{what}: a file vswitchd did not create was touched"
        );
        assert!(UnixStreamCheck::alive(&live.socket), "{what}: the live vswitchd's socket was taken");
        println!("{what}: {}", ours[0]);
    }
    assert!(!state.exists(), "a failed start wrote a state file");
}

struct UnixStreamCheck;

impl UnixStreamCheck {
    fn alive(path: &Path) -> bool {
        std::os::unix::net::UnixStream::connect(path).is_ok()
    }
}
