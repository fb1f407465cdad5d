//! The control thread's side of the workers: which worker owns (polls and sends on) each
//! port, and every command that goes to them, each waited for where the caller needs its
//! effect before going on (a configuration every worker uses before a MAC appears in the
//! table; a port gone from every worker before its device closes).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use crossbeam::channel::{bounded, Sender};
use dpdk::{Eal, Port, Ring};
use pipeline::MacAddr;
use pipeline::{PortId, SwitchConfig};

use crate::worker::{Command, Link, Snapshot};

/// How long a command's answer is waited for.
const ANSWER: Duration = Duration::from_secs(5);

pub struct Workers {
    /// One command channel per worker.
    senders: Vec<Sender<Command>>,
    /// Which worker owns each port.
    owners: BTreeMap<PortId, usize>,
    /// Hand-over rings get unique names.
    next_ring: u32,
}

impl Workers {
    pub fn new(senders: Vec<Sender<Command>>) -> Workers {
        Workers { senders, owners: BTreeMap::new(), next_ring: 0 }
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// The ports each worker owns, by worker.
    pub fn owned(&self, w: usize) -> impl Iterator<Item = PortId> + '_ {
        self.owners.iter().filter(move |(_, o)| **o == w).map(|(p, _)| *p)
    }

    /// Gives every worker `config` and waits until each uses it.
    pub fn push_config(&self, config: &SwitchConfig) {
        let cfg = Arc::new(config.clone());
        let waits: Vec<_> = self
            .senders
            .iter()
            .filter_map(|w| {
                let (done, wait) = bounded(1);
                w.send(Command::Config { config: cfg.clone(), done: Some(done) }).ok().map(|_| wait)
            })
            .collect();
        for wait in waits {
            let _ = wait.recv_timeout(ANSWER);
        }
    }

    /// Gives a port to the least loaded worker (it polls and sends on the port); the other
    /// workers get the port's hand-over ring.
    pub fn give(&mut self, eal: &Eal, port: &Port) -> Result<()> {
        let id = PortId(port.id());
        let owner = (0..self.senders.len()).min_by_key(|w| self.owned(*w).count()).unwrap_or(0);
        self.next_ring += 1;
        let handoff = Arc::new(Ring::new(eal, &format!("roam_tx_{}", self.next_ring), 1024)?);
        let rx = (0..port.rx_queue_count()).map(|q| port.rx_queue(q)).collect::<Result<Vec<_>, _>>()?;
        let mut queues = Some((rx, port.tx_queue(0)?));
        for (w, sender) in self.senders.iter().enumerate() {
            let cmd = match queues.take_if(|_| w == owner) {
                Some((rx, tx)) => Command::AddPort { id, rx, tx, handoff: handoff.clone() },
                None => Command::RemotePort { id, handoff: handoff.clone() },
            };
            sender.send(cmd).map_err(|_| anyhow!("worker {w} has stopped"))?;
        }
        self.owners.insert(id, owner);
        Ok(())
    }

    /// Takes a port from every worker: first from those that hand frames over to it, then
    /// from its owner, which drops (and counts) what is left in the hand-over ring and the
    /// port's rx queues.
    pub fn take(&mut self, id: PortId) {
        let owner = self.owners.remove(&id);
        let others = (0..self.senders.len()).filter(|w| Some(*w) != owner);
        for group in [others.collect::<Vec<_>>(), owner.into_iter().collect()] {
            let waits: Vec<_> = group
                .into_iter()
                .filter_map(|w| {
                    let (done, wait) = bounded(1);
                    self.senders[w].send(Command::RemovePort { id, done }).ok().map(|_| wait)
                })
                .collect();
            for wait in waits {
                let _ = wait.recv_timeout(ANSWER);
            }
        }
    }

    /// Tells the owner of `port` that its link came up, went down, or that its VM is away.
    pub fn link(&self, port: PortId, link: Link) {
        if let Some(w) = self.owner(port) {
            let _ = w.send(Command::Link { port, link });
        }
    }

    /// A fix-up: releases, on every worker, the frames held for `ip` towards `mac`, and
    /// sends each of `frames` out of its port (by the port's owner). Every
    /// command goes out before any answer is awaited, so the whole costs one round trip
    /// to the workers. Returns how many frames were released, and how many of each
    /// frame its port took.
    pub fn announce(
        &self,
        (ip, mac): (IpAddr, MacAddr),
        frames: Vec<(PortId, Vec<u8>)>,
    ) -> Result<(usize, Vec<usize>)> {
        let mut releases = Vec::new();
        for w in &self.senders {
            let (done, wait) = bounded(1);
            if w.send(Command::Release { ip, mac, done }).is_ok() {
                releases.push(wait);
            }
        }
        let mut injects = Vec::new();
        for (port, frame) in frames {
            let owner = self.owner(port).ok_or_else(|| anyhow!("no worker owns port {port}"))?;
            let (done, wait) = bounded(1);
            owner
                .send(Command::Inject { port, frames: vec![frame], done })
                .map_err(|_| anyhow!("the worker has stopped"))?;
            injects.push(wait);
        }
        let released = releases.iter().map(|w| w.recv_timeout(ANSWER).unwrap_or(0)).sum();
        Ok((released, injects.iter().map(|w| w.recv_timeout(ANSWER).unwrap_or(0)).collect()))
    }

    /// Sends `frames` out of `port` (by its owner), without waiting for the answer.
    pub fn inject(&self, port: PortId, frames: Vec<Vec<u8>>) -> Result<()> {
        let owner = self.owner(port).ok_or_else(|| anyhow!("no worker owns port {port}"))?;
        let (done, _) = bounded(1);
        owner.send(Command::Inject { port, frames, done }).map_err(|_| anyhow!("the worker has stopped"))
    }

    /// Every worker's counters, summed.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut total = Snapshot { pipeline: Default::default(), worker: Default::default() };
        for (w, sender) in self.senders.iter().enumerate() {
            let (reply, wait) = bounded(1);
            sender.send(Command::Snapshot(reply)).map_err(|_| anyhow!("worker {w} has stopped"))?;
            let s = wait.recv_timeout(ANSWER).map_err(|_| anyhow!("worker {w} did not answer"))?;
            total.pipeline.add(&s.pipeline);
            total.worker.add(&s.worker);
        }
        Ok(total)
    }

    /// Debug only: makes worker `w` panic.
    pub fn crash(&self, w: usize) -> Result<()> {
        let worker = self.senders.get(w).ok_or_else(|| anyhow!("no worker {w} (there are {})", self.senders.len()))?;
        worker.send(Command::Crash).map_err(|_| anyhow!("worker {w} has stopped"))
    }

    /// Stops every worker (at shutdown).
    pub fn stop(&self) {
        for w in &self.senders {
            let _ = w.send(Command::Stop);
        }
    }

    fn owner(&self, port: PortId) -> Option<&Sender<Command>> {
        self.owners.get(&port).and_then(|w| self.senders.get(*w))
    }
}
