//! What one move of the live-migration scenario measured, and its table.

use super::Removal;
use crate::timeline::Timeline;
use crate::Migration;

/// What one move measured.
#[derive(Debug, Clone)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub removal: Removal,
    pub migration: Migration,
    /// The source QEMU's `STOP` → the destination's `RESUME` (their QMP events), in ms.
    pub blackout_ms: f64,
    /// The longest gap between echoes of each stream across the move (B→A, C→A), in ms.
    pub stall_b: f64,
    pub stall_c: f64,
    /// The same over IPv6.
    pub stall_b6: f64,
    pub stall_c6: f64,
    /// What made the new leaf see the move (`link-up`, `garp`, `rarp`).
    pub trigger: String,
    /// The destination's `RESUME` → the new leaf saw the move, in ms.
    pub resume_to_seen_ms: f64,
    /// The destination's `RESUME` → the first frame from A at the new leaf (its own
    /// announcement, or the RARP vswitchd sent for it), in ms.
    pub resume_to_first_frame_ms: Option<f64>,
    /// Each leaf's trigger → its last fix-up (new leaf, old leaf), in ms.
    pub fixup_ms: [Option<f64>; 2],
    /// The destination's `RESUME` → both leaves done (routes, BGP, fix-ups), in ms.
    pub resume_to_done_ms: f64,
    /// The move's convergence across the fabric: the new leaf's trigger → the old leaf
    /// done with its step back (BGP from one to the other, directly or reflected), in ms.
    pub convergence_ms: f64,
    /// The source host: frames held for A, of them sent to the leaf when A was away or
    /// its port removed, and released by the old leaf's fix-up.
    pub held: u64,
    pub rerouted: u64,
    pub released_by_fixup: u64,
    /// A's announcements the destination host sent up (and, for a RARP-only guest, that
    /// they were RARPs: its guest sent no gratuitous ARP).
    pub announcements: u64,
    /// What happened when, for the chart.
    pub timeline: Timeline,
}

impl Move {
    /// The worst stream's stall minus QEMU's downtime, in ms.
    pub fn excess_ms(&self) -> f64 {
        self.worst_stall() - self.migration.downtime_ms as f64
    }

    /// The longest of the four streams' stalls, in ms.
    pub fn worst_stall(&self) -> f64 {
        [self.stall_b, self.stall_c, self.stall_b6, self.stall_c6].into_iter().fold(0.0, f64::max)
    }

    /// Moves as a Markdown table.
    pub fn table(moves: &[(String, &Move)]) -> String {
        let columns = [
            "move",
            "port removed",
            "QEMU downtime",
            "STOP → RESUME",
            "B→A stall",
            "C→A stall",
            "B→A / C→A stall (IPv6)",
            "worst − downtime",
            "RESUME → move seen",
            "RESUME → A's first frame",
            "trigger → last fix-up (new, old leaf)",
            "convergence (new leaf's trigger → old leaf done)",
            "source held / rerouted / by fix-up",
        ];
        let mut t = format!("| {} |\n|{}\n", columns.join(" | "), " --- |".repeat(columns.len()));
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        for (name, m) in moves {
            t += &format!(
                "| {name} (host {} → {}) | {} | {} ms | {:.0} ms | {} | {} | {} / {} | {:.0} ms | {:.1} ms ({}) | {} ms | {} / {} ms | {:.1} ms | {} / {} / {} |\n",
                m.from + 1,
                m.to + 1,
                m.removal.label(),
                m.migration.downtime_ms,
                m.blackout_ms,
                stall(m.stall_b),
                stall(m.stall_c),
                stall(m.stall_b6),
                stall(m.stall_c6),
                m.excess_ms(),
                m.resume_to_seen_ms,
                m.trigger,
                ms(m.resume_to_first_frame_ms),
                ms(m.fixup_ms[0]),
                ms(m.fixup_ms[1]),
                m.convergence_ms,
                m.held,
                m.rerouted,
                m.released_by_fixup
            );
        }
        t
    }
}

/// The shortest gap between echoes the streams' probe reports (its echoes come every
/// 10 ms; shorter gaps are the guests' own scheduling under TCG).
pub(super) const GAP_MS: u32 = 30;

/// A stall as the tables show it: the probe reports gaps over `GAP_MS` only.
pub(super) fn stall(ms: f64) -> String {
    if ms == 0.0 {
        format!("< {GAP_MS} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
