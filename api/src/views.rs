//! What `show`, `fdb`, `stats` and the other requests answer, typed: vswitchd builds these,
//! every client reads them ([`crate::Client`]'s typed calls). On the wire each is the
//! `result` of a response, as JSON objects with these field names (what `vsctl --json`
//! prints). Clients ignore fields they do not know, so a field can be added without
//! breaking one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use pipeline::{MacAddr, PortCounters, PortId, SegmentId};
use serde::{Deserialize, Serialize};

use crate::Segment;

/// `show`: ports, VMs, failed attachments, segments, workers, buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowView {
    pub ports: Vec<PortView>,
    pub vms: Vec<VmView>,
    pub failed: Vec<FailedView>,
    pub segments: Vec<Segment>,
    pub workers: Vec<WorkerView>,
    pub mbufs: MbufsView,
    /// The uplink's VXLAN underlay, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay: Option<UnderlayView>,
}

/// The VXLAN underlay as the data path uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnderlayView {
    /// This host's VTEP.
    pub local: Ipv4Addr,
    pub mac: MacAddr,
    /// The underlay's IP MTU, and the MTU a VM's frames fit in (50 less).
    pub mtu: u16,
    pub vm_mtu: u16,
    pub leaf: Vec<LeafVtepView>,
}

/// A leaf VTEP, with its MAC once ARP resolved it (until then, VXLAN frames are dropped as
/// `vtep_unresolved`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafVtepView {
    pub ip: Ipv4Addr,
    pub mac: Option<MacAddr>,
}

/// A port: the uplink or a VM's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    pub name: String,
    pub port: PortId,
    pub device: String,
    pub link_up: bool,
}

/// An attached VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmView {
    pub name: String,
    pub port: PortId,
    pub device: String,
    pub socket: Option<PathBuf>,
    pub mac: MacAddr,
    pub segment: SegmentId,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub port_security: bool,
    pub link_up: bool,
    /// Whether the VM is here: see [`VmState`].
    pub state: VmState,
    /// Why it is away (only when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<AwayReason>,
}

/// Whether a VM is here, as its port shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmState {
    /// Its link has never been up (the VM is booting, or its QEMU waits for a migration):
    /// as for an away VM, its neighbours' frames for it go to the leaf.
    Booting,
    /// Its link is up: frames for it go to its port.
    Up,
    /// Its link went down (the VM paused, or in the last phase of a live migration) less
    /// than the hold ago: frames for it are held.
    Stopped,
    /// Not here any more: its vhost connection closed, or its link stayed down longer than
    /// the hold. Its neighbours' frames for it go to the leaf; frames for it from the
    /// uplink are held for its port.
    Away,
}

/// Why a VM is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AwayReason {
    /// Its vhost-user connection closed (its QEMU quit, e.g. after a migration).
    Disconnected,
    /// Its link stayed down longer than the hold (`away_after_ms`).
    HoldExpired,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Booting => "booting",
            VmState::Up => "up",
            VmState::Stopped => "stopped",
            VmState::Away => "away",
        }
    }
}

impl AwayReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AwayReason::Disconnected => "disconnected",
            AwayReason::HoldExpired => "hold-expired",
        }
    }
}

/// An attachment vswitchd could not restore (kept until retried or detached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedView {
    pub name: String,
    pub mac: MacAddr,
    pub segment: SegmentId,
    pub socket: Option<PathBuf>,
    pub device: Option<String>,
    pub error: String,
}

/// A worker, the ports it owns (by name) and the queues it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub id: usize,
    pub ports: Vec<String>,
    /// The rx queues it polls, and the tx queues it sends on (one a port at most).
    #[serde(default)]
    pub rx_queues: Vec<QueueView>,
    #[serde(default)]
    pub tx_queues: Vec<QueueView>,
}

/// One queue of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub port: String,
    pub queue: u16,
}

/// `stats`: one worker's figures (as Open vSwitch's `pmd-perf-show` and `pmd-rxq-show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub id: usize,
    /// TSC cycles in loops that found frames, and in loops that found none (sleeps not
    /// counted); what TSC counts per second.
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub tsc_hz: u64,
    /// Rx bursts that brought frames, and those frames.
    pub bursts: u64,
    pub frames: u64,
    pub idle_loops: u64,
    pub sleeps: u64,
    /// Frames received on each rx queue it polls.
    pub rx_queues: Vec<RxQueueStats>,
    /// Frames sent on each tx queue it has, and whether it uses it (a vhost-user queue
    /// the guest has not enabled is not: its frames go to the port's owner).
    pub tx_queues: Vec<TxQueueStats>,
}

impl WorkerStats {
    /// Frames per non-empty burst, busy cycles per frame, and the busy share of the cycles.
    pub fn frames_per_burst(&self) -> f64 {
        self.frames as f64 / self.bursts.max(1) as f64
    }

    pub fn cycles_per_frame(&self) -> f64 {
        self.busy_cycles as f64 / self.frames.max(1) as f64
    }

    pub fn busy_share(&self) -> f64 {
        self.busy_cycles as f64 / (self.busy_cycles + self.idle_cycles).max(1) as f64
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxQueueStats {
    pub port: String,
    pub queue: u16,
    pub frames: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxQueueStats {
    pub port: String,
    pub queue: u16,
    pub enabled: bool,
    pub sent: u64,
}

/// The packet buffer pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MbufsView {
    pub capacity: u64,
    pub available: u64,
}

/// `fdb`: the MAC table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbView {
    pub entries: Vec<FdbEntry>,
    pub capacity: usize,
    pub memory_bytes: usize,
    /// The key search the table runs on this CPU (`sse4.1` or `scalar`).
    pub search: String,
}

/// One MAC table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbEntry {
    pub mac: MacAddr,
    pub segment: SegmentId,
    pub port: PortId,
    pub port_name: String,
    /// `local` (a VM's), `away` (a VM's that is not here: gone, stopped longer than the
    /// hold, or not up yet; frames for it from local VMs go to the leaf) or `anycast` (a
    /// segment's gateway, at the uplink).
    pub kind: String,
}

/// `stats`: counters per port, and whether they all balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    pub ports: Vec<PortStats>,
    /// Every port's input and output balance holds.
    pub balanced: bool,
    pub rx_balanced: bool,
    pub out_balanced: bool,
    pub idle_loops: u64,
    pub sleeps: u64,
    /// Each worker's figures.
    #[serde(default)]
    pub workers: Vec<WorkerStats>,
    /// The packet buffer pool, the MAC table's size and the fix-ups served, read with the
    /// counters (what the metrics export beside them).
    #[serde(default)]
    pub mbufs: MbufsView,
    #[serde(default)]
    pub fdb: FdbSize,
    #[serde(default)]
    pub fixups: FixupStats,
}

/// The MAC table's entries and capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbSize {
    pub entries: u64,
    pub capacity: u64,
}

/// Fix-ups (`arp-announce`) served since start: requests, the frames they sent to VMs, and
/// the held frames they sent on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixupStats {
    pub requests: u64,
    pub frames: u64,
    pub released: u64,
}

/// `metrics`: the Prometheus text exposition of this moment (what the metrics endpoint
/// serves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsView {
    pub text: String,
}

impl StatsView {
    /// The counters of the port named `name` (a VM's name, or `uplink`).
    pub fn port(&self, name: &str) -> Option<&PortStats> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The sum of one counter over all ports.
    pub fn sum(&self, counter: impl Fn(&PortStats) -> u64) -> u64 {
        self.ports.iter().map(counter).sum()
    }
}

/// One port's counters: the pipeline's ([`PortCounters`], the input side:
/// `rx = forwarded + flooded + dropped`) and the workers' output counters ([`PortTx`]), in
/// one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    pub port: PortId,
    pub name: String,
    /// The pipeline's counters; their drops by reason are `dropped` and `drops` here.
    #[serde(flatten)]
    pub input: PortCounters,
    /// Frames dropped, all reasons.
    pub dropped: u64,
    /// Drops by reason (only reasons that occurred), by their stable names.
    pub drops: BTreeMap<String, u64>,
    pub balanced: bool,
    pub out_balanced: bool,
    #[serde(flatten)]
    pub out: PortTx,
}

impl PortStats {
    /// Drops for one reason (by its stable name).
    pub fn drops(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

/// Declares the per-port output counters once: the struct, its sum, and the names the
/// API shows them under.
macro_rules! port_tx_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A worker's counters for one output port, beside the pipeline's. Per port, for
        /// every worker and so for their sum, exactly:
        /// `queued + requeued + taken_over = sent + tx_full + link_down + held + tx_no_port + handed_over`
        /// (the output balance; `queued` is the pipeline's `tx`), and
        /// `held = released + held_dropped + holding` (the hold balance).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
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
    /// Of `released`: frames from local VMs that went through the pipeline again because
    /// the port's VM is away or its port was removed (towards the leaf).
    rerouted,
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

/// `attach`: the port the VM got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    pub name: String,
    pub port: PortId,
    pub device: String,
}

/// `detach`: the port the VM had (none for a failed attachment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detached {
    pub name: String,
    pub port: Option<PortId>,
}

/// `set-anycast`: the segment and its slot in the MAC table's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSet {
    pub segment: SegmentId,
    pub slot: u16,
}

/// `arp-announce`: the fix-up frames each VM got, and how many held frames for the
/// address vswitchd sent on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub sent: BTreeMap<String, usize>,
    pub released: usize,
}

/// `retry`: the attachments that succeeded, and why the others did not (they stay failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retried {
    pub attached: Vec<String>,
    pub failed: BTreeMap<String, String>,
}

/// `events`: the acknowledgement before the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    pub subscribed: bool,
}

/// `debug-crash-worker`: the worker told to panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashRequested {
    pub worker: usize,
}

/// `hello`: the protocol the daemon speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// `vswitchd`, and its package version.
    pub daemon: String,
    pub daemon_version: String,
}
