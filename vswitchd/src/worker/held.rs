//! Frames held for a port whose link is down or whose VM is away: kept, rerouted to the
//! leaf, sent when the link is back, or released by a fix-up (see `pipeline::hold`).

use std::net::IpAddr;
use std::time::Instant;

use dpdk::MbufBurst;
use pipeline::{MacAddr, Output, PortId};

use super::{send, Link, Sink, Worker};
use crate::frame::MbufFrame;

impl Worker {
    /// Keeps what `port` refused; `in_port` is where the frames came in (None: each
    /// mbuf's own rx port).
    pub(super) fn hold(&mut self, in_port: Option<PortId>, port: PortId, txb: &mut MbufBurst) {
        let frames = txb.drain().map(|m| (in_port.unwrap_or(PortId(m.port())), MbufFrame(m)));
        self.held.hold(self.processor.config(), port, frames, Instant::now());
        if self.link(port) == Some(Link::Away) {
            // Sent before this worker (or the one that handed them over) knew the VM was
            // away: they go the way the configuration now says, to the leaf.
            self.reroute(port);
        }
    }

    pub(super) fn link(&self, port: PortId) -> Option<Link> {
        self.ports.get(port.index()).and_then(Option::as_ref).map(|p| p.link)
    }

    /// The VM of `port` is away: what local VMs sent it runs through the pipeline again.
    pub(super) fn reroute(&mut self, port: PortId) {
        let cfg = self.processor.config().clone();
        let frames = self.held.take_to_reroute(&cfg, port);
        self.counters.port(port).rerouted += frames.len() as u64;
        self.rerun(frames);
    }

    /// Runs frames through the pipeline again, each from the port it came in on (runs of
    /// frames from one input port together).
    pub(super) fn rerun(&mut self, mut frames: Vec<(PortId, MbufFrame)>) {
        let (mut out, mut txb) = (Output::new(), MbufBurst::new());
        while let Some(&(in_port, _)) = frames.first() {
            let run = frames.iter().take_while(|(p, _)| *p == in_port).count();
            self.processor.process(in_port, frames.drain(..run).map(|(_, f)| f), &mut out);
            self.flush(in_port, &mut out, &mut txb);
        }
    }

    /// The link of `port` is back: its held frames go to it, in order.
    pub(super) fn send_held(&mut self, port: PortId) {
        let frames = self.held.take_for_port(port);
        let c = self.counters.port(port);
        c.requeued += frames.len() as u64;
        let Some(p) = self.ports.get_mut(port.index()).and_then(Option::as_mut) else {
            c.tx_no_port += frames.len() as u64;
            return;
        };
        let mut b: MbufBurst = MbufBurst::new();
        let mut frames = frames.into_iter();
        while frames.len() > 0 {
            for f in frames.by_ref().take(dpdk::BURST_SIZE) {
                let _ = b.push(f.0);
            }
            match p.sink() {
                Sink::Queue(tx) => send(tx, &mut b, c),
                Sink::Ring(ring) => c.handed_over += ring.enqueue_burst(&mut b) as u64,
            }
            c.tx_full += b.len() as u64;
            b.clear();
        }
    }

    /// The fix-up for `ip` (now at `mac`) releases the frames held for it: those from local
    /// VMs run through the pipeline again, those from the uplink go back to it (see
    /// `pipeline::hold`). Returns how many.
    pub(super) fn release(&mut self, ip: IpAddr, mac: MacAddr) -> usize {
        let cfg = self.processor.config().clone();
        let released = self.held.release(&cfg, ip, mac);
        let n = released.rerun.len() + released.to_uplink.len();
        if let Some(up) = cfg.uplink() {
            let mut back: MbufBurst = MbufBurst::new();
            self.counters.port(up).requeued += released.to_uplink.len() as u64;
            for f in released.to_uplink {
                if let Err(m) = back.push(f.0) {
                    self.send_back(up, &mut back);
                    let _ = back.push(m);
                }
            }
            self.send_back(up, &mut back);
        }
        self.rerun(released.rerun);
        n
    }

    /// Sends released frames back to the uplink (owned here, or handed to its owner).
    fn send_back(&mut self, up: PortId, b: &mut MbufBurst) {
        let c = self.counters.port(up);
        match self.ports.get_mut(up.index()).and_then(Option::as_mut).map(|p| p.sink()) {
            Some(Sink::Queue(tx)) => send(tx, b, c),
            Some(Sink::Ring(ring)) => c.handed_over += ring.enqueue_burst(b) as u64,
            None => {
                c.tx_no_port += b.len() as u64;
                b.clear();
            }
        }
        c.tx_full += b.len() as u64;
        b.clear();
    }
}
