//! Where the frames of a burst go once the rules have decided: a queue per output port,
//! and the drops with their reasons.

use crate::counters::DropReason;
use crate::ids::PortId;
use crate::table::BATCH;

/// Where the frames of a burst go: a queue per output port, and the drops with reasons.
/// Queues keep their capacity between bursts; the caller drains them after each call.
pub struct Output<F> {
    pub(crate) queues: Vec<Vec<F>>,
    pub drops: Vec<(F, DropReason)>,
    /// Frames for the control plane: the leaf VTEPs' ARP replies (see
    /// [`crate::vxlan::leaf_vtep_of`]).
    pub underlay: Vec<F>,
}

impl<F> Default for Output<F> {
    fn default() -> Self {
        Output { queues: Vec::new(), drops: Vec::with_capacity(BATCH), underlay: Vec::new() }
    }
}

impl<F> Output<F> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue of frames for `port`.
    #[inline]
    pub fn queue(&mut self, port: PortId) -> &mut Vec<F> {
        let p = port.index();
        if p >= self.queues.len() {
            self.queues.resize_with(p + 1, || Vec::with_capacity(BATCH));
        }
        &mut self.queues[p]
    }

    /// Makes sure there is a queue for every port up to `max`.
    #[inline]
    pub(crate) fn ensure(&mut self, max: PortId) {
        if self.queues.len() <= max.index() {
            self.queues.resize_with(max.index() + 1, || Vec::with_capacity(BATCH));
        }
    }

    /// Every non-empty queue, by port.
    pub fn queues_mut(&mut self) -> impl Iterator<Item = (PortId, &mut Vec<F>)> {
        self.queues.iter_mut().enumerate().filter(|(_, q)| !q.is_empty()).map(|(p, q)| (PortId(p as u16), q))
    }

    /// Frames queued in all queues.
    pub fn queued(&self) -> usize {
        self.queues.iter().map(Vec::len).sum()
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queues.iter_mut().for_each(Vec::clear);
        self.drops.clear();
        self.underlay.clear();
    }
}
