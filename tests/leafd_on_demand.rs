//! On-demand FIB installation at the leaf (fast, no guests): three leaves over two FRR
//! route reflectors, leafd with `fib.on_demand`, VMs A (host 1) and B (host 2) as network
//! namespaces on `net_af_packet` ports, C (host 2) a `net_null` port. Before any
//! conversation leaf 1's kernel has no remote /32; A's ARP request for B installs exactly
//! B's /32 (A is answered by proxy), and a UDP echo between them flows; after the idle time
//! without traffic the route is gone again; A's next datagram (its neighbour entry for B
//! still there) misses, which installs the route again; a move of B to host 3 updates it
//! at once.

use std::process::{Child, Command};
use std::time::Duration;

use roam_tests::fabric::Fabric;
use roam_tests::{wait_for, Leaf, TestDir, Vswitchd};
use serde_json::{json, Value};

const IDLE_SECS: u64 = 4;

/// A VM as a network namespace behind a `net_af_packet` port of `vs` (IPv4 only).
fn ns_vm(vs: &Vswitchd, tag: &str, port: u8, name: &str, last: u8) -> Leaf {
    let vm = Leaf::bare(tag);
    let mac = format!("52:54:00:00:00:{last:02x}");
    vm.exec(&["sysctl", "-q", &format!("net.ipv6.conf.{}.disable_ipv6=1", vm.leaf_if)]);
    vm.exec(&["ip", "link", "set", &vm.leaf_if, "address", &mac]);
    vm.exec(&["ip", "addr", "add", &format!("10.1.1.{last}/24"), "dev", &vm.leaf_if]);
    vm.exec(&["ip", "route", "add", "default", "via", "10.1.1.254"]);
    // The veth would leave its UDP checksums to an offload nobody does on the way
    // (vswitchd's af_packet port takes the frame as it is).
    vm.exec(&["ethtool", "-K", &vm.leaf_if, "tx", "off"]);
    let device = format!("net_af_packet{port},iface={}", vm.host_if);
    vs.ok(json!({ "op": "attach", "name": name, "device": device, "mac": mac, "segment": 100, "ipv4": [format!("10.1.1.{last}")] }));
    vm
}

/// A UDP echo server in `vm` on port 7 (stopped when dropped).
struct Echo(Child);

impl Echo {
    fn start(vm: &Leaf) -> Echo {
        const SERVER: &str =
            "import socket\ns = socket.socket(2, 2)\ns.bind(('0.0.0.0', 7))\nwhile True:\n    d, a = s.recvfrom(99)\n    s.sendto(d, a)\n";
        let child = Command::new("ip").args(["netns", "exec", &vm.ns, "python3", "-c", SERVER]).spawn().expect("echo");
        Echo(child)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends datagrams from `vm` to `to`:7 until one is echoed (up to 5 s); whether one was.
fn echoed(vm: &Leaf, to: &str) -> bool {
    const CLIENT: &str = "import socket, sys, time\ns = socket.socket(2, 2)\ns.settimeout(0.5)\nend = time.time() + 5\nwhile time.time() < end:\n    s.sendto(b'roam', (sys.argv[1], 7))\n    try:\n        if s.recv(99) == b'roam':\n            print('echoed')\n            break\n    except socket.timeout:\n        pass\n";
    vm.exec(&["python3", "-c", CLIENT, to]).contains("echoed")
}

/// leafd's on-demand report lines (`fib` = `install` or `idle`) about `ip`.
fn fib_lines(report: &std::path::Path, kind: &str, ip: &str) -> Vec<Value> {
    std::fs::read_to_string(report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fib"] == kind && v["ip"] == ip)
        .collect()
}

#[test]
fn remote_host_routes_are_installed_when_asked_for_and_age_out_when_idle() {
    let dir = TestDir::new("ondemand");
    let mut fabric = Fabric::reflected(&dir, "od", 3);
    for l in &mut fabric.leaves {
        l.on_demand = Some(IDLE_SECS);
    }
    let hosts = fabric.start_hosts(&dir, true);
    let a = ns_vm(&hosts[0], "oda", 1, "a", 1);
    let b = ns_vm(&hosts[1], "odb", 1, "b", 2);
    hosts[1].ok(json!({ "op": "attach", "name": "c", "device": "net_null21,no-rx=1", "mac": "52:54:00:00:00:03", "segment": 100, "ipv4": ["10.1.1.3"] }));
    let leaf1 = &fabric.leaves[0];
    let leaf2_ip = fabric.leaves[1].fabric_ip.clone();
    for prefix in ["10.1.1.2/32", "10.1.1.3/32"] {
        wait_for(&format!("leaf 1's RIB to have {prefix}"), Duration::from_secs(20), || leaf1.best_path(prefix));
    }
    // In the RIB, not in the kernel: no remote /32 before anyone asks.
    let remote_routes = || leaf1.leaf.exec(&["ip", "-4", "route", "show", "proto", "200"]);
    let before = remote_routes();
    assert!(!before.contains("10.1.1.2") && !before.contains("10.1.1.3"), "no remote /32 yet: {before}");
    assert!(before.contains("10.1.1.1 dev"), "the local host is installed: {before}");

    // A talks to B: its ARP request installs B's /32 (only that one), and the echo flows.
    let _echo = Echo::start(&b);
    assert!(echoed(&a, "10.1.1.2"), "A's datagram to B was echoed");
    let installed = remote_routes();
    assert!(installed.contains(&format!("10.1.1.2 via {leaf2_ip}")), "B's /32: {installed}");
    assert!(!installed.contains("10.1.1.3"), "C's /32 stays out: {installed}");
    let line = &fib_lines(&leaf1.report, "install", "10.1.1.2")[0];
    assert_eq!((line["for"].as_str(), line["answered"].as_u64()), (Some("a"), Some(1)), "{line}");
    assert_eq!(
        (line["rib"].as_u64(), line["fib_routes"].as_u64()),
        (Some(2), Some(2)),
        "RIB B and C; FIB A and B: {line}"
    );
    eprintln!("leaf 1 on demand: {line}");

    // Idle: gone after the idle time (checked every second), in the RIB still.
    wait_for("B's idle /32 to go", Duration::from_secs(IDLE_SECS * 3 + 5), || {
        (!remote_routes().contains("10.1.1.2")).then_some(())
    });
    assert_eq!(fib_lines(&leaf1.report, "idle", "10.1.1.2").len(), 1);
    assert!(leaf1.best_path("10.1.1.2/32").is_some(), "B's route is still in the RIB");

    // A talks to B again, its neighbour entry for B still there: its first datagram
    // misses (no route), which installs the route; then B moves to host 3: leaf 1's
    // installed route follows at once.
    assert!(echoed(&a, "10.1.1.2"), "A reaches B again");
    let again = fib_lines(&leaf1.report, "install", "10.1.1.2");
    assert_eq!(again.len(), 2, "installed again: {again:?}");
    eprintln!("leaf 1 on demand, again: {}", again[1]);
    assert!(remote_routes().contains(&format!("10.1.1.2 via {leaf2_ip}")));
    let leaf3_ip = fabric.leaves[2].fabric_ip.clone();
    hosts[2].ok(json!({ "op": "attach", "name": "b", "device": "net_null31,no-rx=1", "mac": "52:54:00:00:00:02", "segment": 100, "ipv4": ["10.1.1.2"] }));
    wait_for("leaf 1's route for B to follow it to leaf 3", Duration::from_secs(10), || {
        remote_routes().contains(&format!("10.1.1.2 via {leaf3_ip}")).then_some(())
    });
    // Leaf 2 keeps the moved host installed (its neighbours talked to it) until idle.
    let leaf2 = &fabric.leaves[1];
    let at_leaf2 = leaf2.leaf.exec(&["ip", "-4", "route", "show", "10.1.1.2/32"]);
    assert!(at_leaf2.contains(&format!("via {leaf3_ip}")), "leaf 2: {at_leaf2}");

    // leafd's metrics say what its report says, and its table sizes are what the RIB and
    // the kernel hold: leaf 1 knows B and C; its kernel has A (local) and B while B is in
    // use (it may go idle meanwhile: compared with the kernel's routes of the moment).
    let m = wait_for("leaf 1's FIB size to match its kernel", Duration::from_secs(10), || {
        let m = leaf1.assert_metrics_match_report();
        let kernel = remote_routes().lines().filter(|l| !l.trim().is_empty()).count() as f64;
        (m.value("roam_leaf_fib_routes", &[]) == kernel).then_some(m)
    });
    assert!(m.value("roam_leaf_fib_on_demand_total", &[("event", "install")]) >= 2.0);
    assert!(m.value("roam_leaf_fib_on_demand_total", &[("event", "idle")]) >= 1.0);
    assert_eq!(m.value("roam_leaf_rib_routes", &[]), 2.0);
    assert!(m.value("roam_leaf_bgp_received_total", &[("kind", "best")]) >= 3.0, "B, C, and B again at leaf 3");
    assert_eq!(m.value("roam_leaf_action_errors_total", &[("action", "route-remote")]), 0.0);
    let m3 = fabric.leaves[2].assert_metrics_match_report();
    assert!(m3.value("roam_leaf_actions_total", &[("action", "advertise")]) >= 1.0, "leaf 3 advertised B");
    assert_eq!(m3.value("roam_build_info", &[("daemon", "leafd")]), 1.0);
}
