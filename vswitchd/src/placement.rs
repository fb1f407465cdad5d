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

/// A port's queue.
pub type Queue = (PortId, u16);

/// How long a command's answer is waited for.
const ANSWER: Duration = Duration::from_secs(5);

pub struct Workers {
    /// One command channel per worker.
    senders: Vec<Sender<Command>>,
    /// Which worker owns each port.
    owners: BTreeMap<PortId, usize>,
    /// Which worker polls each rx queue of a port, and which sends on each tx queue.
    rx: BTreeMap<PortId, Vec<usize>>,
    tx: BTreeMap<PortId, Vec<usize>>,
    /// Hand-over rings get unique names.
    next_ring: u32,
}

impl Workers {
    pub fn new(senders: Vec<Sender<Command>>) -> Workers {
        Workers { senders, owners: BTreeMap::new(), rx: BTreeMap::new(), tx: BTreeMap::new(), next_ring: 0 }
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

    /// The rx queues worker `w` polls, and the tx queues it has (one a port at most).
    pub fn queues(&self, w: usize) -> (Vec<Queue>, Vec<Queue>) {
        let of = |m: &BTreeMap<PortId, Vec<usize>>| {
            m.iter()
                .flat_map(|(p, ws)| ws.iter().enumerate().filter(|(_, o)| **o == w).map(|(q, _)| (*p, q as u16)))
                .collect()
        };
        (of(&self.rx), of(&self.tx))
    }

    /// Gives a port's queues to the workers. The one polling the fewest rx queues owns the
    /// port: it polls rx queue 0, sends on tx queue 0, drains the port's hand-over ring and
    /// sends what is injected. Rx queue q goes to the q-th worker after the owner (round
    /// the workers), and so does tx queue q where the port has one; a worker without a tx
    /// queue of its own hands its frames for the port to the owner through the ring. A
    /// vhost-user port's other tx queues wait until the guest enables them
    /// ([`Workers::tx_queue`]); until then their workers hand over too.
    pub fn give(&mut self, eal: &Eal, port: &Port, vhost: bool) -> Result<()> {
        let id = PortId(port.id());
        let n = self.senders.len().max(1);
        let load = |w: usize| self.rx.values().flatten().filter(|o| **o == w).count();
        let owner = (0..n).min_by_key(|w| load(*w)).unwrap_or(0);
        self.next_ring += 1;
        let handoff = Arc::new(Ring::new(eal, &format!("roam_tx_{}", self.next_ring), 1024)?);
        let mut rx: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        let rx_owners: Vec<usize> = (0..port.rx_queue_count()).map(|q| (owner + q as usize) % n).collect();
        for (q, w) in rx_owners.iter().enumerate() {
            rx[*w].push(port.rx_queue(q as u16)?);
        }
        let mut tx_owners = Vec::new();
        let mut commands = Vec::new();
        for k in 0..n {
            let w = (owner + k) % n;
            let tx = match k < usize::from(port.tx_queue_count()) {
                true => {
                    tx_owners.push(w);
                    Some(port.tx_queue(k as u16)?)
                }
                false => None,
            };
            let rx = std::mem::take(&mut rx[w]);
            commands.push((
                w,
                Command::AddPort { id, rx, tx, handoff: handoff.clone(), owner: k == 0, tx_enabled: !vhost },
            ));
        }
        for (w, cmd) in commands {
            self.senders[w].send(cmd).map_err(|_| anyhow!("worker {w} has stopped"))?;
        }
        self.owners.insert(id, owner);
        self.rx.insert(id, rx_owners);
        self.tx.insert(id, tx_owners);
        Ok(())
    }

    /// The guest enabled (or disabled) tx queue `queue` of `port`: the worker that has it
    /// sends on it (or hands over to the owner again). Queue 0 is the owner's, always used.
    pub fn tx_queue(&self, port: PortId, queue: u16, enabled: bool) {
        let Some(w) = self.tx.get(&port).and_then(|ws| ws.get(usize::from(queue))) else { return };
        if queue > 0 {
            let _ = self.senders[*w].send(Command::TxQueue { port, enabled });
        }
    }

    /// Takes a port from every worker: first from those that hand frames over to it, then
    /// from its owner, which drops (and counts) what is left in the hand-over ring and the
    /// port's rx queues.
    pub fn take(&mut self, id: PortId) {
        let owner = self.owners.remove(&id);
        self.rx.remove(&id);
        self.tx.remove(&id);
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

    /// Tells every worker (the owner first) that the link of `port` came up, went down,
    /// or that its VM is away: each one that sends on a tx queue of the port holds what it
    /// refuses.
    pub fn link(&self, port: PortId, link: Link) {
        let Some(owner) = self.owners.get(&port) else { return };
        for w in (0..self.senders.len()).map(|k| (owner + k) % self.senders.len()) {
            let _ = self.senders[w].send(Command::Link { port, link });
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

    /// Each worker's counters (every request out before any answer is awaited).
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut waits = Vec::new();
        for (w, sender) in self.senders.iter().enumerate() {
            let (reply, wait) = bounded(1);
            sender.send(Command::Snapshot(reply)).map_err(|_| anyhow!("worker {w} has stopped"))?;
            waits.push(wait);
        }
        waits
            .into_iter()
            .enumerate()
            .map(|(w, wait)| wait.recv_timeout(ANSWER).map_err(|_| anyhow!("worker {w} did not answer")))
            .collect()
    }

    /// Every worker's counters, summed.
    pub fn sum(snapshots: &[Snapshot]) -> Snapshot {
        let mut total = Snapshot { pipeline: Default::default(), worker: Default::default(), queues: Vec::new() };
        for s in snapshots {
            total.pipeline.add(&s.pipeline);
            total.worker.add(&s.worker);
            total.queues.extend(&s.queues);
        }
        total
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
