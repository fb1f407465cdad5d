//! The demo behind `scripts/demo`: one vswitchd, two QEMU guests over vhost-user, and a
//! leaf network namespace holding the anycast gateway 10.1.1.254 on the uplink's far end.
//! It shows `vsctl show`, pings (guest to guest over IPv4 and IPv6, guest to gateway), a
//! TCP stream over each family, `vsctl fdb` and `vsctl stats`, then tears everything down.
//!
//! Then the live migration (`roam_tests::migration`): two hosts, two leaves running GoBGP
//! and leafd, VM-A live-migrated from host 1 to host 2 under four TCP streams (B and C to
//! A over IPv4 and IPv6); it prints
//! the leaves' reports of the move and the stalls.

use std::time::Duration;

use roam_tests::{Guest, Leaf, TestDir, Vswitchd};

const ANYCAST: &str = "00:00:5e:00:01:01";

fn vsctl(vs: &Vswitchd, args: &[&str]) {
    println!("\n$ vsctl {}", args.join(" "));
    let (ok, out) = vs.vsctl(args);
    print!("{out}");
    assert!(ok, "vsctl {} failed", args.join(" "));
}

fn guest(g: &mut Guest, cmd: &str) {
    println!("\n[{}]$ {cmd}", g.name);
    let (out, status) = g.sh(cmd, Duration::from_secs(60));
    print!("{out}");
    assert_eq!(status, 0, "`{cmd}` failed in guest {}", g.name);
}

fn main() {
    let dir = TestDir::new("demo");
    let leaf = Leaf::new("d", ANYCAST, "10.1.1.254/24");
    println!("== leaf namespace {}: the anycast gateway 10.1.1.254 ({ANYCAST}) on {}", leaf.ns, leaf.leaf_if);
    let vs = Vswitchd::start(&dir, "demo", Some(&leaf.uplink()));
    println!("== vswitchd up, uplink {}", leaf.uplink());
    // The test kernel has no 802.1Q devices, so segment 100 is the trunk's native VLAN.
    vsctl(
        &vs,
        &[
            "set-anycast",
            "--segment",
            "100",
            "--mac",
            ANYCAST,
            "--gateway",
            "10.1.1.254",
            "--subnet",
            "10.1.1.0/24",
            "--subnet",
            "2001:db8:1::/64",
            "--native",
        ],
    );
    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", "10.1.1.1");
    let mut b = Guest::start(&dir, "b", "52:54:00:00:00:02", "10.1.1.2");
    for g in [&a, &b] {
        let sock = g.vhost_socket.display().to_string();
        let ip6 = g.ip6();
        let args = ["attach", &g.name, "--vhost-socket", &sock, "--mac", &g.mac, "--segment", "100", "--ip", &g.ip];
        vsctl(&vs, &[&args[..], &["--ip", &ip6]].concat());
    }
    println!("\n== booting two QEMU guests (TCG) ...");
    a.wait_ready();
    b.wait_ready();
    std::thread::sleep(Duration::from_secs(1));
    vsctl(&vs, &["show"]);
    a.ping_until_reply("10.1.1.2");
    guest(&mut a, "ping -c 3 10.1.1.2");
    guest(&mut a, "ping -c 3 10.1.1.254");
    guest(&mut a, "ping -c 3 2001:db8:1::2");
    guest(&mut a, "ip neigh");
    guest(&mut b, "roam-probe server 5001 >/dev/null 2>&1 &");
    guest(&mut a, "roam-probe client 10.1.1.2 5001 3 5");
    guest(&mut a, "roam-probe client 2001:db8:1::2 5001 3 5");
    vsctl(&vs, &["fdb"]);
    vsctl(&vs, &["stats"]);
    drop((a, b, vs, leaf));

    println!("\n== live migration: host 1 (VM-A, VM-B) and host 2 (VM-C, VM-D), leaves leaf1/leaf2 with");
    println!("   GoBGP and leafd; TCP streams B→A and C→A over IPv4 and IPv6; QEMU migrates VM-A to host 2 ...");
    let mut s = roam_tests::migration::Scenario::start(true, false, "demo");
    let m = s.migrate(roam_tests::migration::Removal::AtOnce);
    println!("\n{}", roam_tests::migration::Move::table(&[("VM-A".to_string(), &m)]));
    println!("All four TCP sessions survived; B and A were told (only they) that the other is at the");
    println!("anycast MAC, for both families; C and D received no ARP and no NS/NA frame; both leaves'");
    println!("BGP tables have A's /32 and /128 at host 2.");
    println!("\n== done; tearing down");
}
