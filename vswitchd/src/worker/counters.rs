//! A worker's counters beside the pipeline's: per output port ([`PortTx`], declared with the
//! API's views, where `stats` shows them), and what a worker reports on request.

use pipeline::counters::{add_per_port, per_port};
use pipeline::{Counters, PortId};
pub use roam_api::PortTx;

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
