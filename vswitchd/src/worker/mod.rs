//! A worker: polls the rx queues it was given (a port's queues may be spread over several
//! workers), runs each burst through the pipeline, and sends one tx burst per output port
//! per burst. A port's owner sends on its tx queue 0; another worker sends on a tx queue of
//! its own where the port has one for it and (vhost-user) the guest enabled it, and
//! otherwise hands its frames over through the port's MP/MC ring, which the owner drains
//! every loop. Commands (ports, configuration, frames to inject, counter snapshots) come
//! from the control thread over a channel, between bursts; nothing on the path locks,
//! allocates once warm, or logs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use dpdk::{Mbuf, MbufBurst, Mempool, Ring, RxQueue, TxQueue};

use pipeline::{HeldFrames, MacAddr, Output, PortId, Processor, SwitchConfig};

use crate::config::PollMode;
use crate::frame::MbufFrame;

/// What the control thread asks of a worker.
pub enum Command {
    /// The port's queues this worker uses: it polls every queue of `rx` and sends on `tx`
    /// (the owner always; another worker once its queue is enabled) or else into
    /// `handoff`, which the `owner` drains.
    AddPort {
        id: PortId,
        rx: Vec<RxQueue>,
        tx: Option<TxQueue>,
        handoff: Arc<Ring>,
        owner: bool,
        /// Whether a non-owner's `tx` may be used from the start (a vhost-user queue waits
        /// until the guest enables it).
        tx_enabled: bool,
    },
    /// The guest enabled (or disabled) the tx queue this worker has on `port`.
    TxQueue {
        port: PortId,
        enabled: bool,
    },
    /// Stop using a port; `done` answers once its queues and ring are dropped.
    RemovePort {
        id: PortId,
        done: Sender<()>,
    },
    /// A new configuration snapshot; `done` (if any) answers once the worker uses it.
    Config {
        config: Arc<SwitchConfig>,
        done: Option<Sender<()>>,
    },
    /// Send these frames out of `port`; `done` answers how many the port took.
    Inject {
        port: PortId,
        frames: Vec<Vec<u8>>,
        done: Sender<usize>,
    },
    Snapshot(Sender<Snapshot>),
    /// The port's link came up, went down (its VM stopped, e.g. for the last phase of a
    /// live migration), or its VM is away (gone, or stopped longer than the hold). While
    /// down or away, frames the port refuses are held instead of dropped; away, those from
    /// local VMs run through the pipeline again (whose configuration now sends them to the
    /// leaf). When it comes back up, the held frames are sent to it.
    Link {
        port: PortId,
        link: Link,
    },
    /// The leaf says `ip` is now at `mac` (the ARP fix-up): held frames for `ip` get `mac`
    /// as their destination and go through the pipeline again from the port they came in
    /// on. `done` answers how many were released.
    Release {
        ip: IpAddr,
        mac: MacAddr,
        done: Sender<usize>,
    },
    /// Panic (the debug API's `crash-worker`, for testing that a dead worker takes the
    /// daemon down).
    Crash,
    Stop,
}

mod counters;
mod held;
pub use counters::{PortTx, QueueUse, Snapshot, WorkerCounters};

struct WorkerPort {
    rx: Vec<RxQueue>,
    /// Frames received on each queue of `rx`.
    rx_frames: Vec<u64>,
    tx: Option<TxQueue>,
    tx_enabled: bool,
    handoff: Arc<Ring>,
    owner: bool,
    link: Link,
}

/// Where a worker's frames for a port go.
enum Sink<'a> {
    Queue(&'a mut TxQueue),
    Ring(&'a Ring),
}

impl WorkerPort {
    /// Its own tx queue (the owner's, or one the guest enabled), or the owner's ring.
    #[inline]
    fn sink(&mut self) -> Sink<'_> {
        match &mut self.tx {
            Some(tx) if self.owner || self.tx_enabled => Sink::Queue(tx),
            _ => Sink::Ring(&self.handoff),
        }
    }
}

/// What a port's link state makes of the frames it refuses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Never up yet (a VM still booting): refused frames are `link_down` drops.
    NeverUp,
    /// Up: refused frames are `tx_full` drops.
    Up,
    /// Went down after being up (its VM stopped, e.g. for the last phase of a live
    /// migration): refused frames are held.
    Down,
    /// Its VM is away: refused frames from the uplink are held, those from local VMs go
    /// through the pipeline again (to the leaf).
    Away,
}

impl Link {
    /// Where the frames `txb` still holds after a send go: held (true), or counted.
    #[inline]
    fn refused(self, txb: &MbufBurst, c: &mut PortTx) -> bool {
        match self {
            Link::Down | Link::Away => return !txb.is_empty(),
            Link::NeverUp => c.link_down += txb.len() as u64,
            Link::Up => c.tx_full += txb.len() as u64,
        }
        false
    }
}

/// Retries of a burst the tx queue partly refused, while each retry sends something (as
/// Open vSwitch's `tx-retries-max`, default 8, for vhost-user ports).
const TX_RETRIES: usize = 8;

pub struct Worker {
    processor: Processor,
    ports: Vec<Option<WorkerPort>>,
    /// Whether other workers may hand frames over to this one.
    handoffs: bool,
    commands: Receiver<Command>,
    pool: Arc<Mempool>,
    mode: PollMode,
    counters: WorkerCounters,
    /// Frames held for ports whose link is down.
    held: HeldFrames<MbufFrame>,
    /// Where the leaf VTEPs' ARP answers go (the control thread).
    learned: Sender<(Ipv4Addr, MacAddr)>,
}

const IDLE_LOOPS_BEFORE_SLEEP: u32 = 256;
const MIN_SLEEP: Duration = Duration::from_micros(20);
const MAX_SLEEP: Duration = Duration::from_millis(1);

/// Sends `txb` on `tx`; a burst the queue partly refuses is retried up to [`TX_RETRIES`]
/// times while each try sends something. What is still refused stays in `txb`.
#[inline]
fn send(tx: &mut TxQueue, txb: &mut MbufBurst, c: &mut PortTx) {
    let mut n = tx.tx_burst(txb);
    c.sent += n as u64;
    let mut tries = 0;
    while n > 0 && !txb.is_empty() && tries < TX_RETRIES {
        tries += 1;
        c.tx_retries += 1;
        n = tx.tx_burst(txb);
        c.sent += n as u64;
    }
}

impl Worker {
    /// `workers` is how many workers the switch runs: with one, nothing is ever handed
    /// over, and the hand-over rings are not polled.
    pub fn new(
        processor: Processor,
        commands: Receiver<Command>,
        pool: Arc<Mempool>,
        mode: PollMode,
        workers: usize,
        learned: Sender<(Ipv4Addr, MacAddr)>,
    ) -> Worker {
        Worker {
            processor,
            ports: Vec::new(),
            commands,
            pool,
            mode,
            counters: WorkerCounters::default(),
            handoffs: workers > 1,
            learned,
            held: HeldFrames::new(HeldFrames::<MbufFrame>::LIMIT, HeldFrames::<MbufFrame>::MAX_AGE),
        }
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
            let started = dpdk::time::rdtsc();
            let mut got = 0;
            for id in 0..self.ports.len() {
                if self.handoffs {
                    got += self.take_over(PortId(id as u16), &mut txb);
                }
                let queues = self.ports[id].as_ref().map_or(0, |p| p.rx.len());
                for q in 0..queues {
                    let Some(port) = self.ports[id].as_mut() else { break };
                    let n = port.rx[q].rx_burst(&mut burst);
                    if n == 0 {
                        continue;
                    }
                    port.rx_frames[q] += n as u64;
                    self.counters.bursts += 1;
                    self.counters.frames += n as u64;
                    got += n;
                    self.processor.process(PortId(id as u16), burst.drain().map(MbufFrame), &mut out);
                    self.flush(PortId(id as u16), &mut out, &mut txb);
                }
            }
            if !self.held.is_empty() {
                self.held.expire(Instant::now());
            }
            let cycles = dpdk::time::rdtsc().wrapping_sub(started);
            if got > 0 {
                self.counters.busy_cycles += cycles;
            } else {
                self.counters.idle_cycles += cycles;
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

    /// Sends the frames other workers handed over for `id` (a port this worker owns);
    /// returns how many it took from the ring. While the port's link is down they are held
    /// like the worker's own.
    fn take_over(&mut self, id: PortId, txb: &mut MbufBurst) -> usize {
        let Some(port) = self.ports.get_mut(id.index()).and_then(Option::as_mut) else { return 0 };
        let (true, Some(tx)) = (port.owner, port.tx.as_mut()) else { return 0 };
        if port.handoff.is_empty() {
            return 0;
        }
        let n = port.handoff.dequeue_burst(txb);
        let c = self.counters.port(id);
        c.taken_over += n as u64;
        send(tx, txb, c);
        if port.link.refused(txb, c) {
            // Their input port is on another worker (the mbuf says which); a release by a
            // fix-up runs them through this worker's pipeline as if they came in here,
            // which is what that worker would have done with them.
            self.hold(None, id, txb);
        }
        txb.clear();
        n
    }

    /// One tx burst (or ring hand-over) per output port; drops (already counted by the
    /// pipeline) are freed. Frames a port refuses while its link is down are held.
    fn flush(&mut self, in_port: PortId, out: &mut Output<MbufFrame>, txb: &mut MbufBurst) {
        for (port, q) in out.queues_mut() {
            let c = self.counters.port(port);
            let Some(p) = self.ports.get_mut(port.index()).and_then(Option::as_mut) else {
                c.tx_no_port += q.len() as u64;
                q.clear();
                continue;
            };
            for f in q.drain(..) {
                if txb.push(f.0).is_err() {
                    c.tx_full += 1;
                }
            }
            match p.sink() {
                Sink::Queue(tx) => {
                    send(tx, txb, c);
                    if p.link.refused(txb, c) {
                        self.hold(Some(in_port), port, txb);
                    }
                }
                Sink::Ring(ring) => {
                    c.handed_over += ring.enqueue_burst(txb) as u64;
                    c.tx_full += txb.len() as u64;
                }
            }
            txb.clear();
        }
        out.drops.clear();
        // The leaf VTEPs' ARP answers: their address and MAC to the control thread (a full
        // channel loses one; the next answer comes within a second).
        for f in out.underlay.drain(..) {
            if let Some(vtep) = pipeline::vxlan::leaf_vtep_of(pipeline::Frame::bytes(&f)) {
                let _ = self.learned.try_send(vtep);
            }
        }
    }

    /// Returns false on Stop.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::AddPort { id, rx, tx, handoff, owner, tx_enabled } => {
                let i = id.index();
                if i >= self.ports.len() {
                    self.ports.resize_with(i + 1, || None);
                }
                let rx_frames = vec![0; rx.len()];
                self.ports[i] = Some(WorkerPort { rx, rx_frames, tx, tx_enabled, handoff, owner, link: Link::NeverUp });
            }
            Command::TxQueue { port, enabled } => {
                if let Some(p) = self.ports.get_mut(port.index()).and_then(Option::as_mut) {
                    p.tx_enabled = enabled;
                }
            }
            Command::RemovePort { id, done } => {
                self.drain_rx(id);
                if let Some(p) = self.ports.get_mut(id.index()).and_then(Option::take).filter(|p| p.owner) {
                    // Frames still in the hand-over ring are dropped with the port.
                    let mut b: MbufBurst = MbufBurst::new();
                    while p.handoff.dequeue_burst(&mut b) > 0 {
                        let c = self.counters.port(id);
                        c.taken_over += b.len() as u64;
                        c.tx_no_port += b.len() as u64;
                        b.clear();
                    }
                }
                // The VM is gone: what local VMs sent it goes to the leaf (the table no
                // longer has its MAC), as if it were away; what came from the uplink waits
                // for a fix-up (its VM moved) or expires.
                self.reroute(id);
                self.held.port_removed(id);
                let _ = done.send(());
            }
            Command::Config { config, done } => {
                self.processor.set_config(config);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::Inject { port, frames, done } => {
                let sent = self.inject(port, &frames);
                let _ = done.send(sent);
            }
            Command::Snapshot(reply) => {
                let mut worker = self.counters.clone();
                for (port, h, holding) in self.held.ports() {
                    let c = worker.port(port);
                    (c.held, c.released, c.held_dropped, c.holding) = (h.held, h.released, h.dropped, holding);
                }
                let queues = self
                    .ports
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| Some((PortId(i as u16), p.as_ref()?)))
                    .flat_map(|(id, p)| {
                        let rx = p.rx.iter().zip(&p.rx_frames).map(move |(q, n)| QueueUse::Rx(id, q.queue(), *n));
                        rx.chain(p.tx.as_ref().map(|t| QueueUse::Tx(id, t.queue(), p.owner || p.tx_enabled)))
                    })
                    .collect();
                let _ = reply.send(Snapshot { pipeline: self.processor.counters().clone(), worker, queues });
            }
            Command::Link { port, link } => {
                if let Some(p) = self.ports.get_mut(port.index()).and_then(Option::as_mut) {
                    p.link = link;
                }
                match link {
                    Link::Up => self.send_held(port),
                    Link::Away => self.reroute(port),
                    Link::Down | Link::NeverUp => {}
                }
            }
            Command::Release { ip, mac, done } => {
                let n = self.release(ip, mac);
                let _ = done.send(n);
            }
            Command::Crash => panic!("crash requested through the debug API"),
            Command::Stop => return false,
        }
        true
    }

    /// Before a port goes: what its rx queues still hold (a ring-based port keeps frames
    /// in its rings even when closed) goes through the pipeline, which no longer knows
    /// the port and drops it as `unknown_port`, counted. Bounded: a device that keeps
    /// receiving cannot hold the worker.
    fn drain_rx(&mut self, id: PortId) {
        let mut burst: MbufBurst = MbufBurst::new();
        let (mut out, mut txb) = (Output::new(), MbufBurst::new());
        let queues = self.ports.get(id.index()).and_then(Option::as_ref).map_or(0, |p| p.rx.len());
        for q in 0..queues {
            for _ in 0..64 {
                let Some(p) = self.ports.get_mut(id.index()).and_then(Option::as_mut) else { return };
                if p.rx[q].rx_burst(&mut burst) == 0 {
                    break;
                }
                self.processor.process(id, burst.drain().map(MbufFrame), &mut out);
                self.flush(id, &mut out, &mut txb);
            }
        }
    }

    fn inject(&mut self, port: PortId, frames: &[Vec<u8>]) -> usize {
        let Some(tx) = self.ports.get_mut(port.index()).and_then(Option::as_mut).and_then(|p| p.tx.as_mut()) else {
            return 0;
        };
        let mut b: MbufBurst = MbufBurst::new();
        for f in frames.iter().take(dpdk::BURST_SIZE) {
            if let Ok(m) = Mbuf::from_slice(&self.pool, f) {
                let _ = b.push(m);
            }
        }
        let sent = tx.tx_burst(&mut b);
        self.counters.port(port).injected += sent as u64;
        sent
    }
}
