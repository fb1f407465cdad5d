//! A worker's counters beside the pipeline's: per output port (declared once, with the
//! output and hold balances), and what a worker reports on request.

use pipeline::counters::{add_per_port, per_port};
use pipeline::{Counters, PortId};
use serde::Serialize;

/// Declares the per-port output counters once: the struct, its sum, and the names the
/// API shows them under.
macro_rules! port_tx_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A worker's counters for one output port, beside the pipeline's. Per port, for
        /// every worker and so for their sum, exactly:
        /// `queued + requeued + taken_over = sent + tx_full + link_down + held + tx_no_port + handed_over`
        /// (the output balance; `queued` is the pipeline's `tx`), and
        /// `held = released + held_dropped + holding` (the hold balance).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct PortTx {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl PortTx {
            pub fn add(&mut self, o: &PortTx) {
                $(self.$name += o.$name;)*
            }
        }
    };
}

port_tx_counters! {
    /// Frames the port's tx queue took.
    sent,
    /// Frames the tx queue (or the hand-over ring) refused, after retries: dropped.
    tx_full,
    /// Frames the port refused before its link ever came up (a VM whose driver is not up
    /// yet, e.g. while it boots): dropped.
    link_down,
    /// Retries of partly refused bursts (each retry sent something more).
    tx_retries,
    /// Frames queued for a port this worker does not know (being added or removed): dropped.
    tx_no_port,
    /// Frames handed to the port's owner worker through its ring.
    handed_over,
    /// Frames the owner took from that ring (another worker's `handed_over`).
    taken_over,
    /// Held frames sent on to this port without the pipeline: a link that came back, or
    /// frames from the uplink returned to it by a fix-up.
    requeued,
    /// Frames held while the port's link was down (instead of dropped). This and the next
    /// three are the hold's own counters (`pipeline::hold`), copied in at each snapshot.
    held,
    /// Held frames that left the hold: to the port, back through the pipeline, or back to
    /// the uplink.
    released,
    /// Held frames dropped: too old, too many, or not writable.
    held_dropped,
    /// Frames held right now.
    holding,
    /// Fix-up frames the port took.
    injected,
}

impl PortTx {
    /// The output balance (see the struct).
    pub fn balanced(&self, queued: u64) -> bool {
        queued + self.requeued + self.taken_over
            == self.sent + self.tx_full + self.link_down + self.held + self.tx_no_port + self.handed_over
            && self.held == self.released + self.held_dropped + self.holding
    }
}

/// A worker's own counters, beside the pipeline's.
#[derive(Debug, Clone, Default)]
pub struct WorkerCounters {
    /// Per output port (indexed by port id).
    pub ports: Vec<PortTx>,
    /// Loops that found no frame, and sleeps taken in adaptive mode.
    pub idle_loops: u64,
    pub sleeps: u64,
}

impl WorkerCounters {
    /// The counters of `port`, growing the table if the port is new.
    #[inline]
    pub fn port(&mut self, port: PortId) -> &mut PortTx {
        per_port(&mut self.ports, port)
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &WorkerCounters) {
        add_per_port(&mut self.ports, &o.ports, PortTx::add);
        self.idle_loops += o.idle_loops;
        self.sleeps += o.sleeps;
    }
}

/// What a worker reports on request.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pipeline: Counters,
    pub worker: WorkerCounters,
}
