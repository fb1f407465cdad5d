//! A VM that is not here any more never black-holes its neighbours, and one that only
//! paused gets everything it missed. One host, real QEMU guests A and B, and a plain Linux
//! leaf (a network namespace that routes by IP, no leafd, no fix-ups): what any fabric
//! that routes host addresses gives.
//!
//! 1. A paused for 1 s: after the hold (200 ms) A is away; B's frames for A go to the leaf,
//!    which routes them back down (A's address still lives here); vswitchd holds them for
//!    A's port, never sends them up again, and gives them to A when it resumes. B's TCP
//!    session survives; the uplink brought in no more frames for A than B sent up.
//! 2. A's QEMU quits (its vhost connection closes): A is away at once (`disconnected`),
//!    and once its address lives elsewhere (here: the leaf itself) B reaches it there,
//!    with A's real MAC still in B's neighbour cache. Detaching A changes nothing for B.

use std::time::{Duration, Instant};

use roam_api::views::{AwayReason, VmState};
use roam_api::Event;
use roam_tests::{Guest, Leaf, TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";
const A_IP: &str = "10.1.1.1";

fn state(vs: &Vswitchd, vm: &str) -> (VmState, Option<AwayReason>) {
    let show = vs.show();
    let v = show.vms.iter().find(|v| v.name == vm).unwrap_or_else(|| panic!("no VM {vm}: {show:?}"));
    (v.state, v.away)
}

fn fdb_kind(vs: &Vswitchd, mac: &str) -> String {
    let fdb = vs.fdb();
    let e = fdb.entries.iter().find(|e| e.mac.to_string() == mac).unwrap_or_else(|| panic!("{mac} not in {fdb:?}"));
    e.kind.clone()
}

#[test]
fn a_paused_vm_gets_what_it_missed_and_a_departed_one_is_reached_through_the_leaf() {
    let dir = TestDir::new("away");
    let leaf = Leaf::new("w", ANYCAST, "10.1.1.254/24");
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        (&format!("net.ipv4.conf.{}.send_redirects", leaf.leaf_if), "0"),
    ] {
        leaf.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }
    let vs = Vswitchd::start(&dir, "host1", Some(&leaf.uplink()));
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", A_IP);
    let mut b = Guest::start(&dir, "b", "52:54:00:00:00:02", "10.1.1.2");
    vs.attach(&a, 100);
    vs.attach(&b, 100);
    a.wait_ready();
    b.wait_ready();
    vs.wait_links_up(2, Duration::from_secs(60));
    // The leaf knows both VMs (a fabric's host routes): it never ARPs for them.
    for g in [&a, &b] {
        leaf.exec(&["ip", "neigh", "replace", &g.ip, "lladdr", &g.mac, "dev", &leaf.leaf_if, "nud", "permanent"]);
    }
    a.run("roam-probe server 5001 >/dev/null 2>&1 &");
    b.ping_until_reply(A_IP);
    b.run(&format!("roam-probe client {A_IP} 5001 600 10 >/tmp/stream.log 2>&1 &"));
    std::thread::sleep(Duration::from_secs(3));
    let (echoes, _) = b.stream_progress();
    assert!(echoes > 50.0, "B's stream to A runs: {echoes} echoes");
    assert_eq!(state(&vs, "a"), (VmState::Up, None));
    let events = vs.watch_events();

    // 1. A pauses for a second.
    let before = vs.stats();
    let paused = Instant::now();
    a.pause();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(state(&vs, "a"), (VmState::Away, Some(AwayReason::HoldExpired)), "A after 600 ms paused");
    assert_eq!(fdb_kind(&vs, &a.mac), "away");
    std::thread::sleep(Duration::from_millis(400));
    a.resume();
    let (down_at, _) = events.wait(
        "A's link down",
        paused,
        Duration::from_secs(5),
        |e| matches!(e, Event::Link { name, up: false } if name == "a"),
    );
    let (away_at, _) = events.wait(
        "A away",
        paused,
        Duration::from_secs(5),
        |e| matches!(e, Event::Away { name, reason: AwayReason::HoldExpired } if name == "a"),
    );
    let (up_at, _) = events.wait(
        "A's link up",
        paused,
        Duration::from_secs(10),
        |e| matches!(e, Event::Link { name, up: true } if name == "a"),
    );
    let hold = away_at.duration_since(down_at);
    eprintln!("A: down → away {hold:?}, down → up {:?}", up_at.duration_since(down_at));
    assert!(hold >= Duration::from_millis(195) && hold < Duration::from_millis(600), "the hold: {hold:?}");
    assert!(up_at > away_at);
    assert_eq!(state(&vs, "a"), (VmState::Up, None));
    assert_eq!(fdb_kind(&vs, &a.mac), "local");
    std::thread::sleep(Duration::from_secs(3));
    let (after, stall) = b.stream_progress();
    eprintln!("B → A across the pause: longest stall {stall} ms");
    assert!(after > echoes + 100.0, "B's stream did not go on after the pause: {echoes} → {after} echoes");
    assert!(stall < 3000.0, "B's stream stalled {stall} ms across a 1 s pause");

    // What B sent A while A was away went up to the leaf and came back down, once: held
    // for A and given to it when it resumed. Nothing looped.
    let now = vs.stats();
    let delta = |f: &dyn Fn(&roam_api::views::PortStats) -> u64, port: &str| {
        f(now.port(port).expect("port")) - f(before.port(port).expect("port"))
    };
    let (to_away, from_leaf) = (delta(&|p| p.input.to_away, "b"), delta(&|p| p.input.rx, "uplink"));
    let (held, rerouted) = (delta(&|p| p.out.held, "a"), delta(&|p| p.out.rerouted, "a"));
    eprintln!("B sent {to_away} frames for A up; the uplink brought in {from_leaf}; A's port held {held}, rerouted {rerouted}");
    assert!(to_away > 0 && held > 0, "B's frames for the away VM went up and came back to be held");
    assert!(from_leaf <= to_away + 20, "the uplink brought in {from_leaf} frames for {to_away} sent up: a loop");
    let a_out = now.port("a").expect("a").out;
    assert_eq!((a_out.holding, a_out.held_dropped), (0, 0), "every held frame went to A: {a_out:?}");
    assert!(now.balanced, "counters do not add up: {now:#?}");

    // 2. A's QEMU quits: its vhost connection closes.
    let quit = Instant::now();
    a.kill();
    let (gone_at, _) = events.wait(
        "A away, disconnected",
        quit,
        Duration::from_secs(5),
        |e| matches!(e, Event::Away { name, reason: AwayReason::Disconnected } if name == "a"),
    );
    eprintln!("A's QEMU killed → away (disconnected) in {:?}", gone_at.duration_since(quit));
    assert_eq!(state(&vs, "a"), (VmState::Away, Some(AwayReason::Disconnected)));
    let (ok, out) = vs.vsctl(&["show"]);
    assert!(ok && out.contains("away (disconnected)"), "vsctl show: {out}");
    // A's address lives behind the leaf now (here: the leaf itself answers for it).
    leaf.exec(&["ip", "neigh", "del", A_IP, "dev", &leaf.leaf_if]);
    leaf.exec(&["ip", "addr", "add", &format!("{A_IP}/32"), "dev", "lo"]);
    let sent_up = vs.port_stats("b").input.to_away;
    b.ping_until_reply(A_IP);
    assert_eq!(b.neighbour(A_IP).as_deref(), Some("52:54:00:00:00:01"), "B was told nothing");
    assert!(vs.port_stats("b").input.to_away > sent_up, "B's pings for A went to the leaf");

    // Detached: B still reaches A's address, now as unknown unicast.
    vs.ok(json!({ "op": "detach", "name": "a" }));
    let rewritten = vs.port_stats("b").input.rewritten;
    b.ping_until_reply(A_IP);
    assert!(vs.port_stats("b").input.rewritten > rewritten);
    let s = vs.stats();
    assert!(s.balanced, "counters do not add up: {s:#?}");
    assert!(events.all().iter().any(|e| matches!(e, Event::Detach { name, .. } if name == "a")));
}
