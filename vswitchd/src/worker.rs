//! A worker: polls the rx queues of the ports it owns, runs each burst through the
//! pipeline, and sends one tx burst per output port per burst. Only a port's owner sends on
//! it (vhost-user guests usually enable one queue pair); other workers hand frames for it
//! over through the port's MP/MC ring, which the owner drains every loop. Commands (ports,
//! configuration, frames to inject, counter snapshots) come from the control thread over a
//! channel, between bursts; nothing on the path locks, allocates once warm, or logs.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use dpdk::{Mbuf, MbufBurst, Mempool, Ring, RxQueue, TxQueue};
use mac_table::MacAddr;
use pipeline::{Counters, Output, PortId, PortRole, Processor, SwitchConfig};
use mac_table::SegmentSlot;
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
    /// The port's link went down (`true`: its VM stopped, e.g. for the last phase of a
    /// live migration) or came back up. While down, frames the port refuses are held
    /// instead of dropped; when it comes back up, they are sent to it.
    Hold { port: PortId, on: bool },
    /// The leaf says `ip` is now at `mac` (the ARP fix-up): held frames for `ip` get `mac`
    /// as their destination and go through the pipeline again from the port they came in
    /// on. `done` answers how many were released.
    Release { ip: Ipv4Addr, mac: MacAddr, done: Sender<usize> },
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
    /// Per port: frames held while the port's link was down (instead of `tx_full`).
    pub held: Vec<u64>,
    /// Per port: held frames sent on when the link came back, or released by a fix-up.
    pub released: Vec<u64>,
    /// Per port: held frames dropped: too old, too many, or nobody asked for them.
    pub held_dropped: Vec<u64>,
    /// Loops that found no frame, and sleeps taken in adaptive mode.
    pub idle_loops: u64,
    pub sleeps: u64,
}

impl WorkerCounters {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &WorkerCounters) {
        for (a, b) in [
            (&mut self.tx_full, &o.tx_full),
            (&mut self.tx_no_port, &o.tx_no_port),
            (&mut self.injected, &o.injected),
            (&mut self.handed_over, &o.handed_over),
            (&mut self.held, &o.held),
            (&mut self.released, &o.released),
            (&mut self.held_dropped, &o.held_dropped),
        ] {
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
    /// The link is down: refused frames are held.
    holding: bool,
}

/// A frame a port refused while its link was down.
struct Held {
    frame: Mbuf,
    /// Where it came in (a release runs it through the pipeline again from there).
    in_port: PortId,
    /// The port that refused it (its counters count the frame).
    port: PortId,
    /// Whether that port still exists (a removed port's id may be reused).
    attached: bool,
    /// The port's segment when held (a frame sent back to the uplink is tagged for it).
    segment: Option<SegmentSlot>,
    since: Instant,
}

/// Frames held at most (for all ports of a worker): a few hundred milliseconds of one TCP
/// stream's window, not a queue for a VM that never comes back.
const HOLD_LIMIT: usize = 1024;
/// How long a held frame waits for its port or a fix-up before it is dropped.
const HOLD_TIME: Duration = Duration::from_secs(2);

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
    /// Frames held for ports whose link is down, oldest first.
    held: VecDeque<Held>,
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
        Worker { processor, ports: Vec::new(), remote: Vec::new(), commands, pool, mode, counters: WorkerCounters::default(), handoffs: workers > 1, held: VecDeque::new() }
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
                    self.flush(id as PortId, &mut out, &mut txb);
                }
            }
            if !self.held.is_empty() {
                self.expire_held();
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
    /// pipeline) are freed. Frames a port refuses while its link is down are held.
    fn flush(&mut self, in_port: PortId, out: &mut Output<MbufFrame>, txb: &mut MbufBurst) {
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
                    if p.holding && !txb.is_empty() {
                        self.hold(in_port, port, txb);
                    }
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

    /// Keeps what `port` refused. Beyond [`HOLD_LIMIT`] frames in all, the oldest go.
    fn hold(&mut self, in_port: PortId, port: PortId, txb: &mut MbufBurst) {
        let since = Instant::now();
        let segment = match self.processor.config().port(port) {
            Some(PortRole::Vnic(v)) => Some(v.segment),
            _ => None,
        };
        bump(&mut self.counters.held, port, txb.len() as u64);
        for frame in txb.drain() {
            self.held.push_back(Held { frame, in_port, port, attached: true, segment, since });
        }
        while self.held.len() > HOLD_LIMIT {
            if let Some(h) = self.held.pop_front() {
                bump(&mut self.counters.held_dropped, h.port, 1);
            }
        }
    }

    /// Drops held frames older than [`HOLD_TIME`].
    fn expire_held(&mut self) {
        let now = Instant::now();
        while self.held.front().is_some_and(|h| now.duration_since(h.since) > HOLD_TIME) {
            if let Some(h) = self.held.pop_front() {
                bump(&mut self.counters.held_dropped, h.port, 1);
            }
        }
    }

    /// Takes the held frames `pick` selects, in arrival order.
    fn take_held(&mut self, mut pick: impl FnMut(&Held) -> bool) -> Vec<Held> {
        let (taken, kept): (Vec<Held>, Vec<Held>) = self.held.drain(..).partition(|h| pick(h));
        self.held = kept.into();
        taken
    }

    /// The link of `port` is back: its held frames go to it, in order.
    fn send_held(&mut self, port: PortId) {
        let mut frames = self.take_held(|h| h.attached && h.port == port).into_iter();
        let Some(p) = self.ports.get_mut(port as usize).and_then(Option::as_mut) else {
            bump(&mut self.counters.held_dropped, port, frames.len() as u64);
            return;
        };
        let mut b: MbufBurst = MbufBurst::new();
        while frames.len() > 0 {
            for h in frames.by_ref().take(dpdk::BURST_SIZE) {
                let _ = b.push(h.frame);
            }
            let sent = p.tx.tx_burst(&mut b);
            bump(&mut self.counters.released, port, sent as u64);
            bump(&mut self.counters.held_dropped, port, b.len() as u64);
            b.clear();
        }
    }

    /// Held frames for `ip` get `mac` as their destination; returns how many. Those from
    /// local VMs run through the pipeline again from the port they came in on. Those from
    /// the uplink go straight back to it, tagged for their segment as the pipeline would
    /// tag them (the pipeline never sends a frame back where it came from); the leaf now
    /// routes `ip` to its new place.
    fn release(&mut self, ip: Ipv4Addr, mac: MacAddr) -> usize {
        let cfg = self.processor.config().clone();
        let uplink = cfg.uplink();
        let taken = self.take_held(|h| ipv4_destination(h.frame.data()) == Some(ip));
        let mut frames: Vec<(PortId, MbufFrame)> = Vec::with_capacity(taken.len());
        let (mut out, mut txb) = (Output::new(), MbufBurst::new());
        let mut back = 0;
        for mut h in taken {
            let Some(b) = h.frame.data_mut() else {
                // Shared with another port's queue: not ours to rewrite.
                bump(&mut self.counters.held_dropped, h.port, 1);
                continue;
            };
            b[0..6].copy_from_slice(&mac.0);
            let mut f = MbufFrame(h.frame);
            match uplink {
                Some(up) if up == h.in_port => {
                    let tag = h.segment.filter(|s| cfg.native_segment() != Some(*s)).and_then(|s| cfg.segment(s)).map(|s| s.vlan);
                    if tag.is_none_or(|vid| pipeline::frame::push_vlan(&mut f, vid)) {
                        out.queue(up).push(f);
                        back += 1;
                    } else {
                        bump(&mut self.counters.held_dropped, h.port, 1);
                        continue;
                    }
                }
                _ => frames.push((h.in_port, f)),
            }
            bump(&mut self.counters.released, h.port, 1);
        }
        let n = frames.len() + back;
        if let Some(up) = uplink.filter(|_| back > 0) {
            self.flush(up, &mut out, &mut txb);
        }
        // Runs of frames from one input port go through the pipeline together.
        while let Some(&(in_port, _)) = frames.first() {
            let run = frames.iter().take_while(|(p, _)| *p == in_port).count();
            self.processor.process(in_port, frames.drain(..run).map(|(_, f)| f), &mut out);
            self.flush(in_port, &mut out, &mut txb);
        }
        n
    }

    /// Returns false on Stop.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::AddPort { id, rx, tx, handoff } => {
                let i = id as usize;
                if i >= self.ports.len() {
                    self.ports.resize_with(i + 1, || None);
                }
                self.ports[i] = Some(WorkerPort { rx, tx, handoff, holding: false });
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
                // Frames held for the port wait for a fix-up (its VM moved) or expire.
                for h in self.held.iter_mut().filter(|h| h.port == id) {
                    h.attached = false;
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
            Command::Hold { port, on } => {
                if let Some(p) = self.ports.get_mut(port as usize).and_then(Option::as_mut) {
                    p.holding = on;
                }
                if !on {
                    self.send_held(port);
                }
            }
            Command::Release { ip, mac, done } => {
                let n = self.release(ip, mac);
                let _ = done.send(n);
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

/// The IPv4 destination of an untagged Ethernet frame (frames queued for a VM port are).
fn ipv4_destination(b: &[u8]) -> Option<Ipv4Addr> {
    if b.len() < 34 || b[12..14] != [0x08, 0x00] {
        return None;
    }
    Some(Ipv4Addr::new(b[30], b[31], b[32], b[33]))
}
