//! A live migration that fails: the destination QEMU dies before `completed`. A carries on
//! at its source; nothing moves.

use std::time::Duration;

use roam_api::views::{PortStats, VmState};

use super::{stall, Scenario, FAMILIES, OTHERS};
use crate::{wait_for, FailAt};

/// What a failed migration measured.
#[derive(Debug, Clone)]
pub struct FailedMove {
    pub at: FailAt,
    /// The source's `STOP` → its `RESUME` (a switchover failure), in ms.
    pub stopped_ms: Option<f64>,
    /// The longest gap between echoes of B→A and C→A across the attempt, in ms, over
    /// IPv4 and over IPv6.
    pub stall_b: f64,
    pub stall_c: f64,
    pub stall_b6: f64,
    pub stall_c6: f64,
    /// The source host: frames held for A while it was stopped, of them sent to the leaf
    /// while A was away (they came back and were held again), and dropped (none may be).
    pub held: u64,
    pub rerouted: u64,
    pub dropped: u64,
}

impl FailedMove {
    /// Failed moves as a Markdown table.
    pub fn table(moves: &[FailedMove]) -> String {
        let mut t = "| destination killed | source STOP → RESUME | B→A stall | C→A stall | B→A / C→A stall (IPv6) | source held / rerouted / dropped |\n".to_string();
        t += "| --- | --- | --- | --- | --- | --- |\n";
        for m in moves {
            t += &m.row();
            t.push('\n');
        }
        t
    }

    fn row(&self) -> String {
        let at = match self.at {
            FailAt::Copy => "during the RAM copy".to_string(),
            FailAt::Switchover(d) => format!("at switchover, after {} ms stopped", d.as_millis()),
        };
        let stopped = self.stopped_ms.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        format!(
            "| {at} | {stopped} | {} | {} | {} / {} | {} / {} / {} |",
            stall(self.stall_b),
            stall(self.stall_c),
            stall(self.stall_b6),
            stall(self.stall_c6),
            self.held,
            self.rerouted,
            self.dropped
        )
    }
}

impl Scenario {
    /// Starts a live migration of A to the other host and kills the destination QEMU on
    /// the way (`at`); the orchestrator then removes the destination port. Checks that A
    /// carries on at its source: the sessions survive, every frame held for A while it was
    /// stopped reaches it, the leaves move nothing and nobody hears an ARP or ND frame.
    pub fn fail_migration(&mut self, at: FailAt) -> FailedMove {
        let (from, to) = self.move_ends();
        self.moves += 1;
        let tag = format!("{}#{} (fails)", self.tag, self.moves);
        if self.stale.take() == Some(to) {
            self.hosts[to].client().detach("a").expect("detaching A's stale port");
        }
        let everybody: Vec<usize> = (0..OTHERS.len()).collect();
        let before = self.quiet(&everybody);
        let src_stats = self.hosts[from].stats();
        let reports: Vec<usize> = self.fabric.leaves.iter().map(|l| l.moves().len()).collect();

        let port = 47000 + (std::process::id() % 500) as u16 * 8 + self.moves as u16;
        let mut next = self.a.incoming(&self.dir, &format!("a-{}", self.moves), port);
        self.hosts[to].attach(&next, 100);
        std::thread::sleep(Duration::from_secs(1));
        let after = self.progress();
        let failed = self.a.migrate_and_fail(&mut next, port, at);
        // The destination port never came up: A never ran there.
        let dst = self.hosts[to].show().vms.into_iter().find(|v| v.name == "a").expect("A's destination port");
        assert_eq!(dst.state, VmState::Booting, "[{tag}] A's destination port: {dst:?}");
        self.hosts[to].client().detach("a").expect("removing A's destination port");
        let src = wait_for("A's source port up again", Duration::from_secs(10), || {
            let v = self.hosts[from].show().vms.into_iter().find(|v| v.name == "a")?;
            (v.state == VmState::Up).then_some(v)
        });
        assert!(src.link_up, "[{tag}] A's source port: {src:?}");
        eprintln!("[{tag}] host {} → {} failed {:?}: {failed:?}", from + 1, to + 1, at);

        // Every session survives.
        std::thread::sleep(Duration::from_secs(6));
        let stalls = self.streams_went_on(&tag, after);

        // The leaves moved nothing: no move reported, A's /32 and /128 still at its leaf.
        let home = &self.fabric.leaves[from];
        for (l, n) in self.fabric.leaves.iter().zip(&reports) {
            let moves = l.moves();
            assert_eq!(moves.len(), *n, "[{tag}] {} reported a move: {:?}", l.name, &moves[*n..]);
            for (prefix, nh) in [("10.1.1.1/32", &home.fabric_ip), ("2001:db8:1::1/128", &home.fabric_ip6)] {
                let best = l.best_path(prefix);
                assert_eq!(best.as_ref().map(|(n, _)| n), Some(nh), "[{tag}] {}: {prefix}", l.name);
            }
        }
        for (_, a_ip, _) in FAMILIES {
            let dev = home.route(a_ip);
            assert!(dev.contains(&format!("dev {}", home.leaf.leaf_if)), "[{tag}] A's leaf's route for {a_ip}: {dev}");
        }
        self.still_quiet(&tag, &everybody, &before);

        // Every frame held for A at its source reached it; every counter adds up.
        let now = self.hosts[from].stats();
        let delta = |f: &dyn Fn(&PortStats) -> u64| now.sum(f) - src_stats.sum(f);
        let (held, released, dropped) =
            (delta(&|p| p.out.held), delta(&|p| p.out.released), delta(&|p| p.out.held_dropped));
        let rerouted = delta(&|p| p.out.rerouted);
        assert_eq!((held, dropped, now.sum(|p| p.out.holding)), (released, 0, 0), "[{tag}] held frames: {now:#?}");
        if matches!(at, FailAt::Switchover(_)) {
            assert!(held > 0, "[{tag}] nothing was held for A while it was stopped: {now:#?}");
        }
        for vs in &self.hosts {
            let s = vs.stats();
            assert!(s.balanced, "[{tag}] counters do not add up: {s:#?}");
        }
        let stopped_ms = failed.stopped_us.zip(failed.resumed_us).map(|(s, r)| (r as f64 - s as f64) / 1000.0);
        let [[stall_b, stall_c], [stall_b6, stall_c6]] = stalls;
        FailedMove { at, stopped_ms, stall_b, stall_c, stall_b6, stall_c6, held, rerouted, dropped }
    }
}
