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
    /// TSC cycles of loops that found frames (busy) and of loops that found none (idle;
    /// sleeps not counted), rx bursts that brought frames, and those frames.
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub bursts: u64,
    pub frames: u64,
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
        self.busy_cycles += o.busy_cycles;
        self.idle_cycles += o.idle_cycles;
        self.bursts += o.bursts;
        self.frames += o.frames;
    }
}

/// What a worker reports on request.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pipeline: Counters,
    pub worker: WorkerCounters,
    /// The queues the worker uses.
    pub queues: Vec<QueueUse>,
}

/// A queue a worker uses: an rx queue and the frames received on it, or its tx queue and
/// whether it sends on it (or hands its frames to the port's owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueUse {
    Rx(PortId, u16, u64),
    Tx(PortId, u16, bool),
}
