//! A worker: polls the rx queues of the ports it owns, runs each burst through the
//! pipeline, and sends one tx burst per output port per burst. Only a port's owner sends on
//! it (vhost-user guests usually enable one queue pair); other workers hand frames for it
//! over through the port's MP/MC ring, which the owner drains every loop. Commands (ports,
//! configuration, frames to inject, counter snapshots) come from the control thread over a
//! channel, between bursts; nothing on the path locks, allocates once warm, or logs.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use dpdk::{Mbuf, MbufBurst, Mempool, Ring, RxQueue, TxQueue};
use pipeline::{Counters, Output, PortId, Processor, SwitchConfig};
use serde::Serialize;

use crate::config::PollMode;
use crate::frame::MbufFrame;

/// What the control thread asks of a worker.
pub enum Command {
    /// This worker owns the port: it polls every queue of `rx`, sends on `tx`, and drains
    /// `handoff`.
    AddPort { id: PortId, rx: Vec<RxQueue>, tx: TxQueue, handoff: Arc<Ring> },
    /// Another worker owns the port: frames for it go into `handoff`.
    RemotePort { id: PortId, handoff: Arc<Ring> },
    /// Stop using a port; `done` answers once its queues and ring are dropped.
    RemovePort { id: PortId, done: Sender<()> },
    Config(Arc<SwitchConfig>),
    /// Send these frames out of `port`; `done` answers how many the port took.
    Inject { port: PortId, frames: Vec<Vec<u8>>, done: Sender<usize> },
    Snapshot(Sender<Snapshot>),
    Stop,
}

/// A worker's own counters, beside the pipeline's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerCounters {
    /// Per port: frames the pipeline queued that the tx queue refused (ring full).
    pub tx_full: Vec<u64>,
    /// Per port: frames queued for a port that is being removed.
    pub tx_no_port: Vec<u64>,
    /// Per port: fix-up frames injected.
    pub injected: Vec<u64>,
    /// Per port: frames handed to the port's owner worker.
    pub handed_over: Vec<u64>,
    /// Loops that found no frame, and sleeps taken in adaptive mode.
    pub idle_loops: u64,
    pub sleeps: u64,
}

impl WorkerCounters {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &WorkerCounters) {
        for (a, b) in [(&mut self.tx_full, &o.tx_full), (&mut self.tx_no_port, &o.tx_no_port), (&mut self.injected, &o.injected), (&mut self.handed_over, &o.handed_over)] {
            if b.len() > a.len() {
                a.resize(b.len(), 0);
            }
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
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

struct WorkerPort {
    rx: Vec<RxQueue>,
    tx: TxQueue,
    handoff: Arc<Ring>,
}

pub struct Worker {
    processor: Processor,
    ports: Vec<Option<WorkerPort>>,
    remote: Vec<Option<Arc<Ring>>>,
    /// Whether other workers may hand frames over to this one.
    handoffs: bool,
    commands: Receiver<Command>,
    pool: Arc<Mempool>,
    mode: PollMode,
    counters: WorkerCounters,
}

fn bump(v: &mut Vec<u64>, port: PortId, n: u64) {
    let p = port as usize;
    if p >= v.len() {
        v.resize(p + 1, 0);
    }
    v[p] += n;
}

const IDLE_LOOPS_BEFORE_SLEEP: u32 = 256;
const MIN_SLEEP: Duration = Duration::from_micros(20);
const MAX_SLEEP: Duration = Duration::from_millis(1);

impl Worker {
    /// `workers` is how many workers the switch runs: with one, nothing is ever handed
    /// over, and the hand-over rings are not polled.
    pub fn new(processor: Processor, commands: Receiver<Command>, pool: Arc<Mempool>, mode: PollMode, workers: usize) -> Worker {
        Worker { processor, ports: Vec::new(), remote: Vec::new(), commands, pool, mode, counters: WorkerCounters::default(), handoffs: workers > 1 }
    }

    /// Runs until `Command::Stop` or the control side goes away.
    pub fn run(mut self) {
        let mut burst: MbufBurst = MbufBurst::new();
        let mut out: Output<MbufFrame> = Output::new();
        let mut txb: MbufBurst = MbufBurst::new();
        let mut idle: u32 = 0;
        let mut sleep = MIN_SLEEP;
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => {
                    if !self.handle(cmd) {
                        return;
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            let mut got = 0;
            for id in 0..self.ports.len() {
                let Some(port) = self.ports[id].as_mut() else { continue };
                // Frames other workers handed over for this port.
                if self.handoffs && !port.handoff.is_empty() {
                    got += port.handoff.dequeue_burst(&mut txb);
                    port.tx.tx_burst(&mut txb);
                    if !txb.is_empty() {
                        bump(&mut self.counters.tx_full, id as PortId, txb.len() as u64);
                        txb.clear();
                    }
                }
                let queues = self.ports[id].as_ref().map_or(0, |p| p.rx.len());
                for q in 0..queues {
                    let Some(port) = self.ports[id].as_mut() else { break };
                    let n = port.rx[q].rx_burst(&mut burst);
                    if n == 0 {
                        continue;
                    }
                    got += n;
                    self.processor.process(id as PortId, burst.drain().map(MbufFrame), &mut out);
                    self.flush(&mut out, &mut txb);
                }
            }
            if got > 0 || self.mode == PollMode::Busy {
                idle = 0;
                sleep = MIN_SLEEP;
                continue;
            }
            self.counters.idle_loops += 1;
            idle += 1;
            if idle >= IDLE_LOOPS_BEFORE_SLEEP {
                // Sleep on the command channel: a command wakes us at once.
                self.counters.sleeps += 1;
                match self.commands.recv_timeout(sleep) {
                    Ok(cmd) => {
                        if !self.handle(cmd) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                sleep = (sleep * 2).min(MAX_SLEEP);
            }
        }
    }

    /// One tx burst (or ring hand-over) per output port; drops (already counted by the
    /// pipeline) are freed.
    fn flush(&mut self, out: &mut Output<MbufFrame>, txb: &mut MbufBurst) {
        for (port, q) in out.queues_mut() {
            let owned = self.ports.get_mut(port as usize).and_then(Option::as_mut);
            let remote = self.remote.get(port as usize).and_then(Option::as_ref);
            if owned.is_none() && remote.is_none() {
                bump(&mut self.counters.tx_no_port, port, q.len() as u64);
                q.clear();
                continue;
            }
            for f in q.drain(..) {
                if txb.push(f.0).is_err() {
                    bump(&mut self.counters.tx_full, port, 1);
                }
            }
            match (owned, remote) {
                (Some(p), _) => {
                    p.tx.tx_burst(txb);
                }
                (None, Some(ring)) => {
                    let n = ring.enqueue_burst(txb);
                    bump(&mut self.counters.handed_over, port, n as u64);
                }
                (None, None) => unreachable!("checked above"),
            }
            if !txb.is_empty() {
                bump(&mut self.counters.tx_full, port, txb.len() as u64);
                txb.clear();
            }
        }
        out.drops.clear();
    }

    /// Returns false on Stop.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::AddPort { id, rx, tx, handoff } => {
                let i = id as usize;
                if i >= self.ports.len() {
                    self.ports.resize_with(i + 1, || None);
                }
                self.ports[i] = Some(WorkerPort { rx, tx, handoff });
            }
            Command::RemotePort { id, handoff } => {
                let i = id as usize;
                if i >= self.remote.len() {
                    self.remote.resize_with(i + 1, || None);
                }
                self.remote[i] = Some(handoff);
            }
            Command::RemovePort { id, done } => {
                if let Some(p) = self.ports.get_mut(id as usize) {
                    *p = None;
                }
                if let Some(r) = self.remote.get_mut(id as usize) {
                    *r = None;
                }
                let _ = done.send(());
            }
            Command::Config(cfg) => self.processor.set_config(cfg),
            Command::Inject { port, frames, done } => {
                let sent = self.inject(port, &frames);
                let _ = done.send(sent);
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(Snapshot { pipeline: self.processor.counters().clone(), worker: self.counters.clone() });
            }
            Command::Stop => return false,
        }
        true
    }

    fn inject(&mut self, port: PortId, frames: &[Vec<u8>]) -> usize {
        let Some(p) = self.ports.get_mut(port as usize).and_then(Option::as_mut) else { return 0 };
        let mut b: MbufBurst = MbufBurst::new();
        for f in frames.iter().take(dpdk::BURST_SIZE) {
            if let Ok(m) = Mbuf::from_slice(&self.pool, f) {
                let _ = b.push(m);
            }
        }
        let sent = p.tx.tx_burst(&mut b);
        bump(&mut self.counters.injected, port, sent as u64);
        sent
    }
}
