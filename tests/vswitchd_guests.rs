//! vswitchd with real QEMU guests over vhost-user, on one host: local switching with real
//! MACs, a TCP stream, the static FDB, counters that add up, ARP fix-ups that reach only
//! the named guest, port security (a spoofed MAC; a spoofed IPv6 address in an NA and as a
//! source; the local ARP/ND responder), and recovery from a QEMU restart and a vswitchd crash.

use std::time::Duration;

use roam_api::ArpAnnounce;
use roam_tests::traffic::mac_bytes;
use roam_tests::{wait_for, Guest, TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";

fn balanced(vs: &Vswitchd) {
    let s = vs.stats();
    assert!(s.balanced, "counters do not add up: {s:#?}");
}

/// The guest sends from each vCPU (so on each of its queues); vswitchd's two workers each
/// poll one of them, and each sends to the guest on a tx queue of its own.
fn two_queues_two_workers(vs: &Vswitchd, a: &mut Guest) {
    for cpu in [1, 2] {
        a.sh(&format!("taskset {cpu} ping -c 5 -i 0.2 -W 1 10.1.1.254"), Duration::from_secs(20));
    }
    let show = vs.show();
    let stats = vs.stats();
    let rx: Vec<(usize, u16, u64)> = stats
        .workers
        .iter()
        .flat_map(|w| w.rx_queues.iter().filter(|q| q.port == "a").map(|q| (w.id, q.queue, q.frames)))
        .collect();
    eprintln!("workers: {:?}\nA's rx queues (worker, queue, frames): {rx:?}", stats.workers);
    assert_eq!(rx.len(), 2, "A's two rx queues are not both polled: {:?}", show.workers);
    assert_ne!(rx[0].0, rx[1].0, "one worker polls both of A's queues");
    assert!(rx.iter().all(|(_, _, frames)| *frames > 0), "a queue of A carried nothing: {rx:?}");
    let tx: Vec<(usize, u16, bool, u64)> = stats
        .workers
        .iter()
        .flat_map(|w| w.tx_queues.iter().filter(|q| q.port == "a").map(|q| (w.id, q.queue, q.enabled, q.sent)))
        .collect();
    assert_eq!(tx.len(), 2, "A's tx queues: {tx:?}");
    assert!(tx.iter().all(|q| q.2), "the guest enabled both queue pairs, vswitchd does not use both: {tx:?}");
    let uplink_worker = stats.workers.iter().find(|w| w.rx_queues.iter().any(|q| q.port == "uplink")).unwrap();
    let theirs = tx.iter().find(|q| q.0 == uplink_worker.id).expect("the uplink's worker has a tx queue of A's");
    assert!(theirs.1 > 0 && theirs.3 > 0, "the leaf's replies did not go out on the uplink worker's own queue: {tx:?}");
    for w in &stats.workers {
        assert!(w.frames > 0 && w.bursts > 0 && w.busy_cycles > 0, "worker {} has no figures: {w:?}", w.id);
    }
}

fn links_up(vs: &Vswitchd, n: usize) {
    vs.wait_links_up(n, Duration::from_secs(60));
}

/// The ARP frames and neighbor solicitations two guests have received.
fn heard(b: &mut Guest, c: &mut Guest) -> [u64; 4] {
    [b.arp_count(), b.nd_counts().1, c.arp_count(), c.nd_counts().1]
}

/// Lets the guests' own neighbour maintenance finish (Linux probes a neighbour 5 s after
/// using a stale entry): waits until two guests have received no ARP frame and no neighbor
/// solicitation for 6 s.
fn wait_quiet(b: &mut Guest, c: &mut Guest) -> [u64; 4] {
    let mut counts = heard(b, c);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(6));
        let now = heard(b, c);
        if now == counts {
            return counts;
        }
        counts = now;
    }
    panic!("the guests never stopped receiving ARP frames and solicitations on their own: {counts:?}");
}

#[test]
fn guests_switch_locally_get_fixups_and_survive_restarts() {
    let dir = TestDir::new("guests");
    // Two workers: guests on ports owned by different workers talk through the hand-over
    // rings.
    let mut vs = Vswitchd::start_with_workers(&dir, "host1", Some("net_null0,no-rx=1"), 2);
    vs.set_anycast(100, ANYCAST);
    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", "10.1.1.1");
    let mut b = Guest::start(&dir, "b", "52:54:00:00:00:02", "10.1.1.2");
    let mut c = Guest::start(&dir, "c", "52:54:00:00:00:03", "10.1.1.3");
    for g in [&a, &b, &c] {
        vs.attach(g, 100);
    }
    for g in [&mut a, &mut b, &mut c] {
        g.wait_ready();
    }
    links_up(&vs, 3);
    let show = vs.show();
    let owned: Vec<usize> = show.workers.iter().map(|w| w.ports.len()).collect();
    assert_eq!(owned.len(), 2);
    assert!(owned.iter().all(|n| *n >= 1), "ports are spread over the workers: {show:?}");

    // 1. Ping and a TCP stream between two guests, switched locally with real MACs.
    a.ping_until_reply("10.1.1.2");
    let out = a.run("ping -c 3 -W 2 10.1.1.2");
    assert!(out.contains("3 packets received"), "{out}");
    assert_eq!(a.neighbour("10.1.1.2").as_deref(), Some("52:54:00:00:00:02"), "a knows b by its real MAC");
    b.run("roam-probe server 5001 >/tmp/server.log 2>&1 &");
    let out = a.run("roam-probe client 10.1.1.2 5001 4 5");
    let echoes: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("done echoes "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(echoes > 100, "the TCP stream stalled: {out}");
    let fdb = vs.fdb();
    for (g, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let e =
            fdb.entries.iter().find(|e| e.mac.to_string() == g.mac).unwrap_or_else(|| panic!("{name} not in {fdb:?}"));
        assert_eq!((e.kind.as_str(), e.port_name.as_str()), ("local", name));
    }
    let (ok, table) = vs.vsctl(&["fdb"]);
    assert!(ok && table.contains("52:54:00:00:00:02") && table.contains("local"), "{table}");
    let sa = vs.port_stats("a");
    assert!(sa.input.forwarded > 100 && sa.input.rewritten == 0, "{sa:?}");
    let handed: u64 = ["a", "b", "c"].iter().map(|n| vs.port_stats(n).out.handed_over).sum();
    assert!(handed > 0, "no frame crossed between workers");
    balanced(&vs);

    // 3. An ARP fix-up reaches the named guest only.
    c.ping_until_reply("10.1.1.1");
    let quiet = wait_quiet(&mut b, &mut c);
    let fixup = ArpAnnounce { to: vec!["a".into()], ip: "10.1.1.2".parse().unwrap(), mac: ANYCAST.parse().unwrap() };
    let r = vs.client().arp_announce(fixup).expect("arp-announce");
    assert_eq!(r.sent.get("a"), Some(&1), "{r:?}");
    wait_for("a's neighbour entry for b to become the anycast MAC", Duration::from_secs(10), || {
        (a.neighbour("10.1.1.2").as_deref() == Some(ANYCAST)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(heard(&mut b, &mut c), quiet, "another guest received an ARP frame");
    let (ok, out) = vs.vsctl(&["arp-announce", "--to", "a", "--ip", "10.1.1.2", "--mac", "52:54:00:00:00:02"]);
    assert!(ok, "{out}");
    wait_for("a's entry for b back to b's MAC", Duration::from_secs(10), || {
        (a.neighbour("10.1.1.2").as_deref() == Some("52:54:00:00:00:02")).then_some(())
    });
    a.ping_until_reply("10.1.1.2");

    // 4. A spoofed source MAC is dropped and counted.
    let before = vs.port_stats("c").drops("spoofed_source_mac");
    let (out, status) =
        c.sh("ip link set eth0 address 52:54:00:00:00:99 && ping -c 2 -W 1 10.1.1.1", Duration::from_secs(20));
    assert_ne!(status, 0, "a spoofing guest got through: {out}");
    let after = vs.port_stats("c").drops("spoofed_source_mac");
    assert!(after > before, "no spoofed_source_mac drop counted ({before} -> {after})");
    c.run("ip link set eth0 address 52:54:00:00:00:03");
    balanced(&vs);

    // 4b. A guest claiming another VM's IPv6 address is dropped and counted: C advertises
    // A's address from its own (an NA), then uses it as its source (a ping to B).
    let drops = |r: &str| vs.port_stats("c").drops(r);
    let (na_before, src_before) = (drops("spoofed_na_target"), drops("spoofed_ipv6_source"));
    b.run(&format!("ping -c 2 -W 2 {}", a.ip6())); // B knows A's IPv6 address by A's MAC
    c.run(&format!("roam-probe send-na {} {}", c.ip6(), a.ip6()));
    let spoof = format!("ip -6 addr add {a6}/128 dev eth0 && ping -c 2 -W 1 -I {a6} {}", b.ip6(), a6 = a.ip6());
    let (out, status) = c.sh(&spoof, Duration::from_secs(20));
    c.run(&format!("ip -6 addr del {}/128 dev eth0", a.ip6()));
    assert_ne!(status, 0, "a guest using A's IPv6 address got through: {out}");
    let (na_after, src_after) = (drops("spoofed_na_target"), drops("spoofed_ipv6_source"));
    assert!(na_after > na_before, "no spoofed_na_target drop counted ({na_before} -> {na_after})");
    assert!(src_after > src_before, "no spoofed_ipv6_source drop counted ({src_before} -> {src_after})");
    let entry = b.neighbour(&a.ip6());
    assert_ne!(entry.as_deref(), Some(c.mac.as_str()), "B believed C's claim to A's address");
    balanced(&vs);

    // 4c. The local responder: A's ARP requests and neighbor solicitations are answered on
    // the host, with B's MAC for B's addresses and the anycast MAC for any other address of
    // the subnets; B and C hear none of them.
    let (ok, out) = vs.vsctl(&[
        "set-anycast",
        "--segment",
        "100",
        "--vlan",
        "100",
        "--mac",
        ANYCAST,
        "--subnet",
        "10.1.1.0/24",
        "--subnet",
        "2001:db8:1::/64",
        "--arp-responder",
    ]);
    assert!(ok, "{out}");
    a.run("ip neigh flush dev eth0; ip -6 neigh flush dev eth0");
    let before = vs.port_stats("a").input;
    let quiet = wait_quiet(&mut b, &mut c);
    let out = a.run("arping -c 1 -w 2 -I eth0 10.1.1.2; arping -c 1 -w 2 -I eth0 10.1.1.77");
    let lower = out.to_lowercase();
    assert!(lower.contains("[52:54:00:00:00:02]") && lower.contains(&format!("[{ANYCAST}]")), "{out}");
    let out = a.run(&format!("ping -c 2 -W 2 {}", b.ip6()));
    assert!(out.contains("2 packets received"), "{out}");
    a.sh("ping -c 1 -W 1 2001:db8:1::77", Duration::from_secs(10));
    assert_eq!(a.neighbour(&b.ip6()).as_deref(), Some(b.mac.as_str()), "A resolved B's IPv6 address");
    assert_eq!(a.neighbour("2001:db8:1::77").as_deref(), Some(ANYCAST), "an off-host address is the anycast MAC");
    let after = vs.port_stats("a").input;
    assert!(after.arp_replies >= before.arp_replies + 2, "{before:?} -> {after:?}");
    assert!(after.nd_replies >= before.nd_replies + 2, "{before:?} -> {after:?}");
    assert_eq!(heard(&mut b, &mut c), quiet, "B or C heard a request the responder answers");
    vs.set_anycast(100, ANYCAST);
    balanced(&vs);

    // 6. A guest's QEMU killed and restarted on the same socket talks again.
    b.restart();
    b.wait_ready();
    links_up(&vs, 3);
    a.run("ip neigh flush dev eth0");
    a.ping_until_reply("10.1.1.2");

    // 5. vswitchd killed and restarted: attachments are back and guests talk again.
    vs.restart();
    let show = vs.show();
    assert_eq!(show.vms.len(), 3, "{show:?}");
    links_up(&vs, 3);
    a.ping_until_reply("10.1.1.2");
    c.ping_until_reply("10.1.1.2");
    balanced(&vs);
    // Every mbuf is back in the pool once the VMs are detached: none leaked on the way.
    // Frames held for a port whose link went down (a guest restarted above) go back when
    // they expire, 2 s after they were held.
    for g in ["a", "b", "c"] {
        vs.ok(json!({ "op": "detach", "name": g }));
    }
    vs.wait_mbufs_returned(Duration::from_secs(5));
}

/// Issue check 2: a guest reaches the gateway in a leaf namespace through the uplink;
/// unknown unicast arrives at the leaf with its destination rewritten to the anycast MAC;
/// broadcasts are never rewritten. The guest has two queue pairs (and two vCPUs) served by
/// two workers: each of its transmit queues is polled by one, and the uplink's worker
/// sends to it on a tx queue of its own.
#[test]
fn the_uplink_reaches_the_leaf_and_unknown_unicast_is_rewritten() {
    let dir = TestDir::new("uplink");
    let leaf = roam_tests::Leaf::new("u", ANYCAST, "10.1.1.254/24");
    let vs = Vswitchd::start_with_workers(&dir, "host1", Some(&leaf.uplink()), 2);
    // The test kernel has no 802.1Q devices: the segment is the trunk's native VLAN.
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let mut a = Guest::start_with_queues(&dir, "a", "52:54:00:00:00:01", "10.1.1.1", 2);
    vs.attach(&a, 100);
    a.wait_ready();
    links_up(&vs, 1);
    a.ping_until_reply("10.1.1.254");
    assert_eq!(a.neighbour("10.1.1.254").as_deref(), Some(ANYCAST));
    two_queues_two_workers(&vs, &mut a);

    // A window wide enough for a slow TCG guest to do both (the broadcast first).
    let cap = leaf.capture(12.0);
    a.run("arp -s 10.1.1.77 52:54:00:aa:bb:cc");
    a.sh("arping -c 1 -w 1 -I eth0 10.1.1.254", Duration::from_secs(15));
    a.sh("ping -c 2 -W 1 10.1.1.77", Duration::from_secs(15));
    let frames = cap.frames();
    let (anycast, a_mac, unknown) = (mac_bytes(ANYCAST), mac_bytes(&a.mac), mac_bytes("52:54:00:aa:bb:cc"));
    let to_77: Vec<&Vec<u8>> =
        frames.iter().filter(|f| f.len() > 34 && f[12..14] == [8, 0] && f[30..34] == [10, 1, 1, 77]).collect();
    assert!(!to_77.is_empty(), "no frame to 10.1.1.77 reached the leaf ({} frames)", frames.len());
    for f in &to_77 {
        assert_eq!(
            (&f[0..6], &f[6..12]),
            (&anycast[..], &a_mac[..]),
            "unknown unicast not rewritten to the anycast MAC"
        );
    }
    assert!(!frames.iter().any(|f| f[0..6] == unknown[..]), "a frame kept the unknown destination MAC");
    let broadcasts = frames.iter().filter(|f| f[0..6] == [0xff; 6] && f[12..14] == [8, 6]).count();
    assert!(broadcasts >= 1, "the ARP broadcast did not reach the leaf unchanged");
    let st = vs.port_stats("a");
    assert!(st.input.rewritten >= 2, "{st:?}");
    balanced(&vs);
}
