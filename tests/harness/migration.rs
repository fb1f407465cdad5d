//! The live-migration scenario (used by `tests/live_migration.rs` and the demo): two hosts
//! (two vswitchd processes), two leaves (network namespaces, GoBGP between them, leafd in
//! each). VM-A and VM-B on host 1, VM-C and VM-D (a bystander) on host 2. TCP streams B→A
//! and C→A run while QEMU live-migrates A from host 1 to host 2. Everything the issue
//! asks is asserted on the way; what was measured is returned.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fabric::{Fabric, ANYCAST};
use crate::{wait_for, Guest, Migration, TestDir, Vswitchd};

const A_IP: &str = "10.1.1.1";
const B_IP: &str = "10.1.1.2";

/// What one run measured.
pub struct Outcome {
    pub migration: Migration,
    /// Longest gap between echoes of each stream (B→A, C→A), in ms.
    pub stall_b: f64,
    pub stall_c: f64,
    /// Leaf 2 seeing the move → the last fix-up delivered (either leaf), in ms.
    pub fixup_ms: Option<f64>,
    /// QEMU's "completed" → leaf 2 saw the move (A's port up, or its announcement), in ms.
    pub announce_after_ms: f64,
    /// QEMU's "completed" → both leaves done with the move (routes, BGP, fix-ups), in ms.
    pub restored_after_ms: f64,
    /// Host 1: frames held while A's port was down, and those sent on by the fix-up.
    pub held: u64,
    /// How much of the downtime was the pause before switchover.
    pub pause_ms: u128,
    pub released: u64,
}

impl Outcome {
    /// The results as a Markdown table.
    pub fn table(runs: &[(&str, &Outcome)]) -> String {
        let columns = [
            "run",
            "QEMU downtime (of it paused)",
            "QEMU total",
            "B→A longest stall",
            "C→A longest stall",
            "completed → move seen",
            "completed → both leaves done",
            "move seen → last fix-up",
            "host 1 held / released",
        ];
        let mut t = format!("| {} |\n|{}\n", columns.join(" | "), " --- |".repeat(columns.len()));
        for (name, o) in runs {
            t += &format!(
                "| {name} | {} ms ({} ms) | {} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} / {} |\n",
                o.migration.downtime_ms,
                o.pause_ms,
                o.migration.total_ms,
                o.stall_b,
                o.stall_c,
                o.announce_after_ms,
                o.restored_after_ms,
                o.fixup_ms.map_or("-".to_string(), |f| format!("{f:.1} ms")),
                o.held,
                o.released
            );
        }
        t
    }
}

fn links_up(vs: &Vswitchd, n: usize) {
    vs.wait_links_up(n, Duration::from_secs(90));
}

/// Waits until none of `guests` has received an ARP frame for 6 s (Linux's own neighbour
/// upkeep after the set-up traffic); returns their counts.
fn quiet_arp(guests: &mut [&mut Guest]) -> Vec<u64> {
    let mut counts: Vec<u64> = guests.iter_mut().map(|g| g.arp_count()).collect();
    for round in 0.. {
        assert!(round < 12, "the guests never stopped receiving ARP frames");
        std::thread::sleep(Duration::from_secs(6));
        let now: Vec<u64> = guests.iter_mut().map(|g| g.arp_count()).collect();
        if now == counts {
            return counts;
        }
        counts = now;
    }
    unreachable!()
}

/// How much the scenario stretches QEMU's downtime (`pause-before-switchover`):
/// `ROAM_MIGRATION_PAUSE_MS`, 100 ms unless set. The stretch makes sure B and C send to A
/// while it is stopped (they send every 10 ms), so that host 1 always has frames to hold;
/// a larger one shows what happens when the downtime outlasts TCP's retransmission timer.
pub fn pause() -> Duration {
    Duration::from_millis(std::env::var("ROAM_MIGRATION_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(100))
}

/// Runs the scenario once, with leafd's fix-ups on or off; `tag` keeps names apart.
pub fn scenario(fixups: bool, tag: &str) -> Outcome {
    let dir = TestDir::new(&format!("migrate-{tag}"));
    let (fabric, vs1, vs2) = Fabric::with_hosts(&dir, tag, fixups);

    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", A_IP);
    let mut b = Guest::start(&dir, "b", "52:54:00:00:00:02", B_IP);
    let mut c = Guest::start(&dir, "c", "52:54:00:00:00:03", "10.1.1.3");
    let mut d = Guest::start(&dir, "d", "52:54:00:00:00:04", "10.1.1.4");
    vs1.attach(&a, 100);
    vs1.attach(&b, 100);
    vs2.attach(&c, 100);
    vs2.attach(&d, 100);
    for g in [&mut a, &mut b, &mut c, &mut d] {
        g.wait_ready();
    }
    links_up(&vs1, 2);
    links_up(&vs2, 2);
    let (leaf1, leaf2) = (&fabric.leaves[0], &fabric.leaves[1]);
    wait_for("host routes in BGP", Duration::from_secs(30), || {
        let a_at_1 = leaf2.best_path("10.1.1.1/32").is_some_and(|(nh, _)| nh == leaf1.fabric_ip);
        let c_at_2 = leaf1.best_path("10.1.1.3/32").is_some_and(|(nh, _)| nh == leaf2.fabric_ip);
        (a_at_1 && c_at_2).then_some(())
    });

    // Before the move: B reaches A directly (same host, real MAC); C through leaf 2, which
    // answers C's ARP for A by proxy with the anycast MAC.
    a.run("roam-probe server 5001 >/dev/null 2>&1 &");
    b.ping_until_reply(A_IP);
    c.ping_until_reply(A_IP);
    assert_eq!(b.neighbour(A_IP).as_deref(), Some("52:54:00:00:00:01"), "B knows A by its real MAC");
    assert_eq!(c.neighbour(A_IP).as_deref(), Some(ANYCAST), "leaf 2 answered C's ARP for A by proxy");
    for g in [&mut b, &mut c] {
        g.run(&format!("roam-probe client {A_IP} 5001 600 10 >/tmp/stream.log 2>&1 &"));
    }
    let before = quiet_arp(&mut [&mut c, &mut d]);
    let (echoes_b, _) = b.stream_progress();
    let (echoes_c, _) = c.stream_progress();
    assert!(echoes_b > 50.0 && echoes_c > 50.0, "streams running: {echoes_b} {echoes_c}");

    // The move: the destination QEMU on host 2 (attached there first: QEMU needs its
    // vhost-user backend), QMP `migrate`, then the orchestrator unplugs the source port.
    let port = 46000 + (std::process::id() % 1000) as u16 + if fixups { 0 } else { 1000 };
    let mut a2 = Guest::start_incoming(&dir, "a", "a-dst", &a.mac, A_IP, port);
    vs2.attach(&a2, 100);
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let migration = a.migrate_to(port, pause());
    vs1.ok(json!({ "op": "detach", "name": "a" }));
    a.kill();
    a2.connect();
    eprintln!(
        "[{tag}] migration: total {} ms, downtime {} ms, {:?} of it a pause before switchover (completed after {:?})",
        migration.total_ms,
        migration.downtime_ms,
        pause(),
        started.elapsed()
    );

    // 1. Both sessions survive: echoes keep coming after the move.
    let (after_b, after_c) = (b.stream_progress().0, c.stream_progress().0);
    std::thread::sleep(Duration::from_secs(8));
    let (end_b, stall_b) = b.stream_progress();
    let (end_c, stall_c) = c.stream_progress();
    assert!(end_b > after_b + 100.0, "B→A stopped after the move: {after_b} → {end_b} echoes");
    assert!(end_c > after_c + 100.0, "C→A stopped after the move: {after_c} → {end_c} echoes");

    // 4. A's /32 is at leaf 2, from host 2, in both BGP tables and in leaf 1's kernel.
    for l in &fabric.leaves {
        let best = wait_for(&format!("{}'s best path for A to move", l.name), Duration::from_secs(10), || {
            l.best_path("10.1.1.1/32").filter(|(nh, _)| *nh == leaf2.fabric_ip)
        });
        assert!(
            best.1.contains(&"65010:2".to_string()),
            "{}: A's path should carry host 2's community: {best:?}",
            l.name
        );
    }
    assert!(
        leaf1.route(A_IP).contains(&format!("via {}", leaf2.fabric_ip)),
        "leaf 1's kernel route for A: {}",
        leaf1.route(A_IP)
    );
    assert!(
        leaf2.route(A_IP).contains(&format!("dev {}", leaf2.leaf.leaf_if)),
        "leaf 2's kernel route for A: {}",
        leaf2.route(A_IP)
    );

    // The leaves' reports of the move.
    let move_in = leaf2.wait_move("in", A_IP);
    let move_out = leaf1.wait_move("out", A_IP);
    eprintln!("[{tag}] leaf2: {move_in:?}\n[{tag}] leaf1: {move_out:?}");
    // The move is seen when A's port comes up on host 2 (A resumed), or at A's first
    // announcement, whichever comes first.
    assert!(
        ["link-up", "garp", "rarp", "unsolicited-na"].contains(&move_in.trigger.kind.as_str()),
        "what moved A: {move_in:?}"
    );
    assert_eq!((move_in.from_host, move_in.to_host), (Some(1), Some(2)));
    let fixup_ms = if fixups {
        // 2. Only the VMs that need it are told, and they are told at once: leaf 2 tells A
        // about B only, leaf 1 tells B about A only.
        let to_a = move_in.assert_one_fixup("a", B_IP);
        let to_b = move_out.assert_one_fixup("b", A_IP);
        assert_eq!(b.neighbour(A_IP).as_deref(), Some(ANYCAST), "B's entry for A after the fix-up");
        assert_eq!(a2.neighbour(B_IP).as_deref(), Some(ANYCAST), "A's entry for B after the fix-up");
        let last = to_a.at_us.max(to_b.at_us);
        Some(last.saturating_sub(move_in.trigger.at_us) as f64 / 1000.0)
    } else {
        assert!(move_in.fixups.is_empty() && move_out.fixups.is_empty(), "fix-ups were off");
        None
    };

    // 3. C and D heard no ARP frame during the move.
    let after = vec![c.arp_count(), d.arp_count()];
    assert_eq!(after, before, "C or D received ARP frames during the move (C, D before/after)");

    // The switches: A's announcements went up, trapped; every counter adds up.
    let garps_trapped = wait_for("A's announcements trapped on host 2", Duration::from_secs(5), || {
        Some(vs2.port_stats("a").input.announcements).filter(|n| *n >= 1)
    });
    eprintln!(
        "[{tag}] host 2 sent {garps_trapped} announcements of A to the uplink only; trigger: {}",
        move_in.trigger.kind
    );
    for vs in [&vs1, &vs2] {
        let s = vs.stats();
        assert!(s.balanced, "counters do not add up: {s:#?}");
    }
    // Host 1 held what B and C sent A while A's port was down (QEMU's stop-and-copy, then
    // until the detach). What B sent went to the leaf when A was away (`rerouted`), or
    // when leaf 1's fix-up for A released it (towards leaf 2).
    let host1 = vs1.stats();
    let sum = |f: &dyn Fn(&roam_api::views::PortStats) -> u64| host1.sum(f);
    let (held, released, held_dropped) = (sum(&|p| p.out.held), sum(&|p| p.out.released), sum(&|p| p.out.held_dropped));
    let rerouted = sum(&|p| p.out.rerouted);
    eprintln!(
        "[{tag}] host 1: held {held}, released {released} (rerouted {rerouted}), dropped from hold {held_dropped}"
    );
    assert!(held > 0, "host 1 held nothing for A while its port was down: {host1:#?}");
    // Seconds after the move, past the 2 s hold time: every held frame is accounted for.
    assert_eq!(held, released + held_dropped, "host 1's held frames do not add up: {host1:#?}");
    let by_fixup = move_out.fixups.first().map_or(0, |f| f.released as u64);
    if !fixups {
        assert_eq!(by_fixup, 0);
    }
    assert_eq!(
        released,
        by_fixup + rerouted,
        "host 1 released {released}: {by_fixup} by the fix-up, {rerouted} when A was away: {move_out:?}"
    );
    let completed = crate::micros(migration.completed_at) as f64;
    let announce_after_ms = (move_in.trigger.at_us as f64 - completed) / 1000.0;
    let done = move_in.done_us.max(move_out.done_us) as f64;
    Outcome {
        migration,
        stall_b,
        stall_c,
        fixup_ms,
        announce_after_ms,
        restored_after_ms: (done - completed) / 1000.0,
        held,
        released,
        pause_ms: pause().as_millis(),
    }
}
