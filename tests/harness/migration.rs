//! The live-migration scenario (the live-migration tests, `scripts/migration-bench` and
//! the demo): a host (a vswitchd process) under each leaf (a network namespace with GoBGP
//! and leafd, fix-ups on or off), two leaves in a full mesh or four over two FRR route
//! reflectors ([`Shape`]). VM-A and VM-B on host 1, VM-C on the host A moves to, VM-D on
//! a host where A never goes. TCP streams B→A and C→A run while QEMU live-migrates A
//! between its two hosts, as often as asked, each move with its own source-port removal:
//! at once, some time after, or never (the source QEMU quits at once in every case, as
//! libvirt's does). Everything the issues ask is asserted on the way; what was measured is
//! returned.

use std::time::{Duration, SystemTime};

mod failed;
mod model;
mod moved;
mod setup;
mod streams;
pub use failed::FailedMove;
pub use model::Counts;
pub use moved::Move;
use moved::{stall, GAP_MS};
pub use setup::Shape;
pub use streams::quiet_neighbours;
use streams::{v6_of, PerStream, FAMILIES};

use roam_api::views::PortStats;

use crate::fabric::{Fabric, MoveReport, ANYCAST};
use crate::timeline::Timeline;
use crate::{micros, wait_for, EventLog, Guest, Qmp, TestDir, Vswitchd};

const A_IP: &str = "10.1.1.1";
/// The VMs other than A: (name, address); their hosts are the shape's.
const OTHERS: [(&str, &str); 3] = [("b", "10.1.1.2"), ("c", "10.1.1.3"), ("d", "10.1.1.4")];
/// The first of `OTHERS` (B and C) hold TCP streams to A; the rest (D) never talk to A.
const STREAMING: usize = 2;

/// When the orchestrator removes the source port (the source QEMU has quit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    AtOnce,
    After(Duration),
    Never,
}

impl Removal {
    pub fn label(self) -> String {
        match self {
            Removal::AtOnce => "at once".into(),
            Removal::After(d) => format!("{} s later", d.as_secs_f64()),
            Removal::Never => "never".into(),
        }
    }
}

/// How much the scenario stretches QEMU's downtime (`pause-before-switchover`):
/// `ROAM_MIGRATION_PAUSE_MS`, none unless set. A stretch shows what happens when the
/// downtime outlasts TCP's retransmission timer (200 ms).
pub fn pause() -> Duration {
    Duration::from_millis(std::env::var("ROAM_MIGRATION_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// A host under each leaf, four VMs, four streams to A (from B and C, over IPv4 and IPv6).
pub struct Scenario {
    pub dir: TestDir,
    pub fabric: Fabric,
    pub hosts: Vec<Vswitchd>,
    /// A, where it runs now, and on which host it is.
    pub a: Guest,
    a_host: usize,
    /// The hosts of B, C and D.
    homes: [usize; 3],
    /// The two hosts A moves between.
    ends: [usize; 2],
    /// B, C, D.
    pub others: Vec<Guest>,
    fixups: bool,
    tag: String,
    moves: usize,
    /// A host whose port for A was never removed (`Removal::Never`).
    stale: Option<usize>,
    /// "gap" lines of each stream already counted.
    gaps_seen: PerStream<usize>,
    /// Each host's events.
    events: Vec<EventLog>,
}

impl Scenario {
    /// Live-migrates A to the other host and checks the move; `removal` says when the
    /// source port goes.
    pub fn migrate(&mut self, removal: Removal) -> Move {
        let (from, to) = self.move_ends();
        self.moves += 1;
        if self.stale.take() == Some(to) {
            // The orchestrator that never removed A's old port must before A comes back.
            self.hosts[to].client().detach("a").expect("detaching A's stale port");
        }
        // Who must hear nothing: with fix-ups, every VM not left on A's old host; without,
        // anybody.
        let quiet: Vec<usize> = (0..OTHERS.len()).filter(|i| !self.fixups || self.homes[*i] != from).collect();
        let before = self.quiet(&quiet);
        let src_stats = self.hosts[from].stats();

        // The destination QEMU (attached first: QEMU needs its vhost-user backend), QMP
        // `migrate`, then the source QEMU quits and its port goes as `removal` says.
        let port =
            46000 + (std::process::id() % 500) as u16 * 8 + self.moves as u16 + if self.fixups { 0 } else { 4000 };
        let mut next = self.a.incoming(&self.dir, &format!("a-{}", self.moves), port);
        self.hosts[to].attach(&next, 100);
        let dst_announcements = self.hosts[to].port_stats("a").input.announcements;
        let mut dst_qmp = Qmp::connect(&next.qmp_path);
        std::thread::sleep(Duration::from_secs(1));
        // What reaches the leaves: A's announcements, the streams' echoes that pass them.
        let captures: Vec<_> = (0..self.hosts.len())
            .map(|i| [from, to].contains(&i).then(|| self.fabric.leaves[i].leaf.capture(8.0)))
            .collect();
        let since = micros(SystemTime::now());
        let migration = self.a.migrate_to(port, pause());
        let resumed_us = dst_qmp.wait_event("RESUME", Duration::from_secs(10));
        self.a.kill();
        match removal {
            Removal::AtOnce => {
                self.hosts[from].client().detach("a").expect("detaching A's old port");
            }
            Removal::After(d) => {
                let socket = self.hosts[from].socket.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(d);
                    let mut c = roam_api::Client::connect(&socket, Some(Duration::from_secs(10))).expect("vswitchd");
                    c.detach("a").expect("detaching A's old port");
                });
            }
            Removal::Never => self.stale = Some(from),
        }
        next.connect();
        self.a = next;
        self.a_host = to;
        let tag = format!("{}#{}", self.tag, self.moves);
        eprintln!(
            "[{tag}] host {} → {}: total {} ms, downtime {} ms ({:?} of it paused), STOP → RESUME {:.1} ms",
            from + 1,
            to + 1,
            migration.total_ms,
            migration.downtime_ms,
            pause(),
            (resumed_us as f64 - migration.stopped_us as f64) / 1000.0
        );

        // Every session survives: echoes keep coming, for longer than a 2 s removal.
        let after = self.progress();
        std::thread::sleep(Duration::from_secs(6));
        let stalls = self.streams_went_on(&tag, after);

        // A's /32 and /128 are at the new leaf, from the new host, in both BGP tables and
        // kernels.
        let (new_leaf, old_leaf) = (&self.fabric.leaves[to], &self.fabric.leaves[from]);
        for (prefix, nh) in [("10.1.1.1/32", &new_leaf.fabric_ip), ("2001:db8:1::1/128", &new_leaf.fabric_ip6)] {
            for l in &self.fabric.leaves {
                let best = wait_for(&format!("{}'s best path for A to move", l.name), Duration::from_secs(10), || {
                    l.best_path(prefix).filter(|(n, _)| n == nh)
                });
                let community = format!("65010:{}", to + 1);
                assert!(
                    best.1.contains(&community),
                    "[{tag}] {}: A's {prefix} should carry {community}: {best:?}",
                    l.name
                );
            }
        }
        for ((_, a_ip, _), nh) in FAMILIES.iter().zip([&new_leaf.fabric_ip, &new_leaf.fabric_ip6]) {
            // Every other leaf's kernel routes A over the fabric to the new leaf (the old
            // one already did when its BGP table had the new path).
            let via = old_leaf.route(a_ip);
            assert!(via.contains(&format!("via {nh}")), "[{tag}] old leaf's route for {a_ip}: {via}");
            for l in self.fabric.leaves.iter().filter(|l| l.name != new_leaf.name) {
                wait_for(&format!("{}'s kernel route for {a_ip} via {nh}", l.name), Duration::from_secs(5), || {
                    l.route(a_ip).contains(&format!("via {nh}")).then_some(())
                });
            }
            let dev = new_leaf.route(a_ip);
            assert!(
                dev.contains(&format!("dev {}", new_leaf.leaf.leaf_if)),
                "[{tag}] new leaf's route for {a_ip}: {dev}"
            );
        }

        // The leaves' reports, one per address: the move is seen when A's port comes up on
        // its new host (A resumed), or at A's first announcement, whichever comes first.
        let move_in = new_leaf.wait_move_since("in", A_IP, since);
        let move_out = old_leaf.wait_move_since("out", A_IP, since);
        let move_in6 = new_leaf.wait_move_since("in", FAMILIES[1].1, since);
        let move_out6 = old_leaf.wait_move_since("out", FAMILIES[1].1, since);
        let kinds = ["link-up", "garp", "rarp", "unsolicited-na", "dad-probe"];
        assert!(kinds.contains(&move_in.trigger.kind.as_str()), "[{tag}] what moved A: {move_in:?}");
        assert_eq!((move_in.from_host, move_in.to_host), (Some(from as u16 + 1), Some(to as u16 + 1)));
        let fixup_ms = |m: &MoveReport| {
            m.fixups.iter().map(|f| f.at_us).max().map(|last| last.saturating_sub(m.trigger.at_us) as f64 / 1000.0)
        };
        for (family, (i, o)) in [(0, (&move_in, &move_out)), (1, (&move_in6, &move_out6))] {
            if self.fixups {
                self.check_fixups(family, i, o, from);
            } else {
                assert!(i.fixups.is_empty() && o.fixups.is_empty(), "[{tag}] fix-ups were off");
            }
        }
        // Nobody who did not need it heard an ARP, NS, NA or redirect frame.
        self.still_quiet(&tag, &quiet, &before);
        // Both leaves' metrics count what their reports say (moves, fix-up frames).
        for l in [&self.fabric.leaves[to], &self.fabric.leaves[from]] {
            let m = l.assert_metrics_match_report();
            assert_eq!(m.value("roam_leaf_action_errors_total", &[("action", "fix-up")]), 0.0, "[{tag}] {}", l.name);
        }

        // The switches: A's announcements went up, trapped; every counter adds up.
        let announcements = wait_for("A's announcements sent up", Duration::from_secs(5), || {
            let n = self.hosts[to].port_stats("a").input.announcements;
            Some(n - dst_announcements).filter(|n| *n >= 1)
        });
        for vs in &self.hosts {
            let s = vs.stats();
            assert!(s.balanced, "[{tag}] counters do not add up: {s:#?}");
        }
        let (held, rerouted, released_by_fixup) = self.check_held(from, &src_stats, [&move_out, &move_out6]);
        let a_mac = crate::traffic::mac_bytes(&self.a.mac);
        let captured: Vec<_> = captures.into_iter().map(|c| c.map(|c| c.timed_frames()).unwrap_or_default()).collect();
        let frames = &captured[to];
        let from_a = |ethertype: [u8; 2]| {
            frames.iter().filter(|(_, f)| f.len() > 14 && f[6..12] == a_mac && f[12..14] == ethertype).count()
        };
        // The first frame from A at the new leaf after it resumed: its announcement (or
        // vswitchd's RARP for it), the first sign of life of the moved VM.
        let first_from_a = frames.iter().find(|(at, f)| *at >= resumed_us && f.len() > 14 && f[6..12] == a_mac);
        let (rarps, arps) = (from_a([0x80, 0x35]), from_a([0x08, 0x06]));
        if self.a.guest_announce {
            assert!(arps >= 1, "[{tag}] A announced itself with gratuitous ARPs: {arps} ARP, {rarps} RARP frames");
        } else {
            // QEMU asked vswitchd's vhost device for the RARP; the guest itself said nothing.
            assert!(
                rarps >= 1 && arps == 0,
                "[{tag}] a RARP-only A: {rarps} RARP and {arps} ARP frames at the new leaf"
            );
        }
        let done = move_in.done_us.max(move_out.done_us) as f64;
        let mut timeline = Timeline::new(migration.stopped_us);
        timeline.at("QEMU", "source STOP", migration.stopped_us);
        timeline.at("QEMU", "completed (seen)", micros(migration.completed_at));
        timeline.at("QEMU", "destination RESUME", resumed_us);
        self.host_marks(&mut timeline, from, to, since);
        if let Some((at, _)) = first_from_a {
            timeline.at(&format!("host {} (destination)", to + 1), "A's first frame (at the leaf)", *at);
        }
        for (m, role) in [(&move_in, "new"), (&move_out, "old")] {
            let leaf = if role == "new" { to } else { from };
            let lane = format!("{} ({role})", self.fabric.leaves[leaf].name);
            timeline.at(&lane, &format!("trigger: {}", m.trigger.kind), m.trigger.at_us);
            let mut t = m.started_us;
            for s in m.steps.iter().filter(|s| s.action != "fix-up") {
                t += s.us;
                timeline.at(&lane, if s.action == "bgp" { "BGP update sent" } else { "kernel route" }, t);
            }
            for f in &m.fixups {
                timeline.at(&lane, &format!("fix-up to {}", f.to.join(",")), f.at_us);
            }
        }
        for (i, stall) in stalls[0].iter().enumerate() {
            let times = (migration.stopped_us, resumed_us);
            let (name, ip) = OTHERS[i];
            crate::timeline::stream_span(
                &mut timeline,
                &captured,
                (name, ip, self.homes[i]),
                (from, to),
                *stall,
                times,
            );
        }
        Move {
            timeline,
            from,
            to,
            removal,
            blackout_ms: (resumed_us as f64 - migration.stopped_us as f64) / 1000.0,
            migration,
            stall_b: stalls[0][0],
            stall_c: stalls[0][1],
            stall_b6: stalls[1][0],
            stall_c6: stalls[1][1],
            trigger: move_in.trigger.kind.clone(),
            resume_to_seen_ms: (move_in.trigger.at_us as f64 - resumed_us as f64) / 1000.0,
            resume_to_first_frame_ms: first_from_a.map(|(at, _)| (*at as f64 - resumed_us as f64) / 1000.0),
            fixup_ms: [fixup_ms(&move_in), fixup_ms(&move_out)],
            resume_to_done_ms: (done - resumed_us as f64) / 1000.0,
            convergence_ms: move_out.done_us.saturating_sub(move_in.trigger.at_us) as f64 / 1000.0,
            held,
            rerouted,
            released_by_fixup,
            announcements,
        }
    }

    /// The host A is on and the one it moves to next.
    fn move_ends(&self) -> (usize, usize) {
        let to = if self.a_host == self.ends[0] { self.ends[1] } else { self.ends[0] };
        (self.a_host, to)
    }

    /// Only the VMs that need it are told, once, in each family (0: IPv4, 1: IPv6): the
    /// new leaf tells A about each VM left on the old host; the old leaf tells each of
    /// those about A. Their neighbour entries for each other are now the anycast MAC.
    fn check_fixups(&mut self, family: usize, move_in: &MoveReport, move_out: &MoveReport, from: usize) {
        let addr = |ip: &str| if family == 0 { ip.to_string() } else { v6_of(ip) };
        let a_ip = FAMILIES[family].1;
        let left: Vec<usize> = (0..OTHERS.len()).filter(|i| self.homes[*i] == from).collect();
        let mut told_a: Vec<String> = move_in.fixups.iter().map(|f| f.ip.to_string()).collect();
        told_a.sort();
        let expected: Vec<String> = left.iter().map(|i| addr(OTHERS[*i].1)).collect();
        assert_eq!(told_a, expected, "the new leaf tells A about the old host's VMs: {move_in:#?}");
        for f in &move_in.fixups {
            assert_eq!((f.to.as_slice(), f.sent.get("a")), (&["a".to_string()][..], Some(&1)), "{move_in:#?}");
        }
        let names: Vec<String> = left.iter().map(|i| OTHERS[*i].0.to_string()).collect();
        assert_eq!(move_out.fixups.len(), 1, "one fix-up from the old leaf: {move_out:#?}");
        let f = &move_out.fixups[0];
        assert_eq!((f.to.clone(), f.ip.to_string()), (names.clone(), a_ip.to_string()), "{move_out:#?}");
        for (i, name) in left.iter().zip(&names) {
            assert_eq!(f.sent.get(name), Some(&1), "{move_out:#?}");
            // A VM that never talked to A has no entry to fix (a fix-up makes none).
            let g = &mut self.others[*i];
            let entry = g.neighbour(a_ip);
            assert!(
                entry.as_deref() == Some(ANYCAST) || (entry.is_none() && *i >= STREAMING),
                "{name}'s entry for A ({a_ip}) after the fix-up: {entry:?}"
            );
            if let Some(mac) = self.a.neighbour(&addr(OTHERS[*i].1)) {
                assert_eq!(mac, ANYCAST, "A's entry for {name} ({}) after the fix-up", addr(OTHERS[*i].1));
            }
        }
    }

    /// The source host held what B and C sent A while A's port was down: each such frame
    /// went to the leaf when A was away or its port removed (`rerouted`), was released by
    /// the old leaf's fix-ups (one per family), or (from the uplink, without a fix-up)
    /// expired. Returns (held, rerouted, released by the fix-ups) for this move.
    fn check_held(&self, from: usize, before: &roam_api::views::StatsView, outs: [&MoveReport; 2]) -> (u64, u64, u64) {
        // Past the 2 s hold time, every held frame is accounted for.
        std::thread::sleep(Duration::from_millis(500));
        let now = self.hosts[from].stats();
        let delta = |f: &dyn Fn(&PortStats) -> u64| now.sum(f) - before.sum(f);
        let (held, released, dropped) =
            (delta(&|p| p.out.held), delta(&|p| p.out.released), delta(&|p| p.out.held_dropped));
        let rerouted = delta(&|p| p.out.rerouted);
        let holding = now.sum(|p| p.out.holding);
        let by_fixup: u64 = outs.iter().filter_map(|m| m.fixups.first()).map(|f| f.released as u64).sum();
        assert!(held > 0, "the source host held nothing for A while its port was down: {now:#?}");
        assert_eq!((held, holding), (released + dropped, 0), "the source's held frames do not add up: {now:#?}");
        assert_eq!(released, by_fixup + rerouted, "released {released}: {by_fixup} by the fix-up, {rerouted} rerouted");
        (held, rerouted, by_fixup)
    }

    /// The hosts' events of this move: A's link down, away and port removed at the source,
    /// its link up at the destination.
    fn host_marks(&self, t: &mut Timeline, from: usize, to: usize, since: u64) {
        use roam_api::Event;
        let (src, dst) = (format!("host {} (source)", from + 1), format!("host {} (destination)", to + 1));
        let mut mark = |host: usize, lane: &str, label: &str, pick: &dyn Fn(&Event) -> bool| {
            if let Some(at) = self.events[host].first_since(since, pick) {
                t.at(lane, label, at);
            }
        };
        mark(from, &src, "A's link down", &|e| matches!(e, Event::Link { name, up: false } if name == "a"));
        mark(from, &src, "A away", &|e| matches!(e, Event::Away { name, .. } if name == "a"));
        mark(from, &src, "A's port removed", &|e| matches!(e, Event::Detach { name, .. } if name == "a"));
        mark(to, &dst, "A's link up", &|e| matches!(e, Event::Link { name, up: true } if name == "a"));
    }
}
