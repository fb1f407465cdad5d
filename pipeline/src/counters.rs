//! Counters, kept per worker as plain integers (no atomics on the hot path) and summed on
//! read. For every input port: frames in = forwarded + flooded + underlay + dropped,
//! exactly.

use crate::ids::PortId;

/// Declares the drop reasons once: the enum, `COUNT`, `ALL` and the stable names.
macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Why a frame was dropped. Every drop has exactly one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// A stable snake_case name for APIs and logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Too short for its Ethernet (or tagged) header.
    Runt => "runt",
    /// Source MAC is multicast, broadcast or zero.
    BadSourceMac => "bad_source_mac",
    /// Port security: source MAC is not the vNIC's.
    SpoofedSourceMac => "spoofed_source_mac",
    /// Port security: ARP sender IP (or MAC) is not the vNIC's.
    SpoofedArpSender => "spoofed_arp_sender",
    /// ARP that is truncated or not Ethernet/IPv4 (wrong types or lengths).
    MalformedArp => "malformed_arp",
    /// Port security: a neighbor advertisement for an address that is not the vNIC's.
    SpoofedNaTarget => "spoofed_na_target",
    /// Port security: a duplicate address detection probe (NS from `::`) for an address
    /// that is not the vNIC's.
    SpoofedDadTarget => "spoofed_dad_target",
    /// Port security: an NS or NA whose link-layer address option is not the vNIC's MAC.
    SpoofedNdLladdr => "spoofed_nd_lladdr",
    /// Port security: an IPv6 source address that is not the vNIC's (nor `::` where
    /// neighbor discovery and MLD allow it).
    SpoofedIpv6Source => "spoofed_ipv6_source",
    /// Port security: an IPv6 frame too short for its header, or with a bad version or
    /// payload length.
    MalformedIpv6 => "malformed_ipv6",
    /// A neighbor solicitation or advertisement that is truncated or has a non-zero code.
    MalformedNd => "malformed_nd",
    /// A VM port sent an 802.1Q/802.1ad-tagged frame (VM ports are access ports).
    TaggedFromVnic => "tagged_from_vnic",
    /// A frame from the uplink without an 802.1Q tag.
    UplinkUntagged => "uplink_untagged",
    /// A frame from the uplink with two tags.
    UplinkDoubleTagged => "uplink_double_tagged",
    /// The uplink tag names no configured segment.
    UnknownSegment => "unknown_segment",
    /// Unicast from the uplink to a MAC that is no local vNIC of the segment.
    UplinkUnknownUnicast => "uplink_unknown_unicast",
    /// Unicast whose destination is the port it came from.
    Hairpin => "hairpin",
    /// Unicast that needs the uplink, and there is none.
    NoUplink => "no_uplink",
    /// Broadcast/multicast with nowhere to go (no other port in the segment, no uplink).
    NoFloodTarget => "no_flood_target",
    /// The input port is not configured (e.g. detached while frames were in flight).
    UnknownPort => "unknown_port",
    /// The MAC table names a destination port this worker's configuration does not have
    /// (yet, or any more): a port being attached or detached while frames are in flight.
    PortNotReady => "port_not_ready",
    /// The frame's buffer is shared and could not be rewritten.
    Unwritable => "unwritable",
    /// No headroom to push a tag (or VXLAN's outer headers).
    NoHeadroom => "no_headroom",
    /// For the host's VTEP, but too short for its outer IPv4, UDP and VXLAN headers, or
    /// their lengths disagree with each other or the frame.
    VxlanTruncated => "vxlan_truncated",
    /// For the host's VTEP with a bad outer IPv4 header (version, length, checksum), a
    /// fragment (never reassembled), or a VXLAN header without its valid-VNI flag.
    VxlanBadHeader => "vxlan_bad_header",
    /// VXLAN from an address that is none of the leaf's VTEPs.
    VxlanUnknownVtep => "vxlan_unknown_vtep",
    /// VXLAN for a VNI no segment here has.
    VxlanUnknownVni => "vxlan_unknown_vni",
    /// VXLAN whose inner frame is shorter than an Ethernet header, or tagged.
    VxlanBadInner => "vxlan_bad_inner",
    /// For the host's VTEP address, but neither VXLAN (UDP port 4789) nor ARP.
    UnderlayOther => "underlay_other",
    /// For a VXLAN segment, and no leaf VTEP's MAC is resolved yet.
    VtepUnresolved => "vtep_unresolved",
    /// For a VXLAN segment, and longer than the underlay's MTU allows.
    VxlanTooBig => "vxlan_too_big",
}

/// One port's counters, as seen by one worker. The API's `stats` shows them (serde) with
/// the drops by reason apart, by name: `dropped` is not carried as this array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortCounters {
    /// Frames that came in on this port.
    pub rx: u64,
    /// Of those: sent to exactly one output (unicast, or a local ARP or NA reply).
    pub forwarded: u64,
    /// Of those: flooded (the original; its copies are counted in `flood_copies`).
    pub flooded: u64,
    /// Of those: for the control plane (the leaf VTEPs' ARP replies, uplink only).
    pub underlay: u64,
    /// Of those: dropped, by reason.
    #[serde(skip)]
    pub dropped: [u64; DropReason::COUNT],
    /// Frames queued out of this port (forwarded, flooded originals and copies).
    pub tx: u64,
    /// Unicast frames whose destination MAC was rewritten to an anycast MAC.
    pub rewritten: u64,
    /// Of `rewritten`: frames for a VM that is away (gone from this host, or stopped for
    /// longer than the hold), sent to the leaf, which routes them by IP.
    pub to_away: u64,
    /// Flood copies made for frames from this port.
    pub flood_copies: u64,
    /// Flood copies that could not be made (no buffer).
    pub flood_copy_failures: u64,
    /// ARP requests from this port answered by the local ARP responder.
    pub arp_replies: u64,
    /// Neighbor solicitations from this port answered by the local responder.
    pub nd_replies: u64,
    /// Of `forwarded`: the VM's announcements of itself (gratuitous ARP, RARP, unsolicited
    /// NA, DAD probe), sent to the uplink only.
    pub announcements: u64,
}

impl PortCounters {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// rx = forwarded + flooded + underlay + dropped.
    pub fn balanced(&self) -> bool {
        self.rx == self.forwarded + self.flooded + self.underlay + self.dropped_total()
    }

    pub fn add(&mut self, o: &PortCounters) {
        self.rx += o.rx;
        self.forwarded += o.forwarded;
        self.flooded += o.flooded;
        self.underlay += o.underlay;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.tx += o.tx;
        self.rewritten += o.rewritten;
        self.to_away += o.to_away;
        self.flood_copies += o.flood_copies;
        self.flood_copy_failures += o.flood_copy_failures;
        self.arp_replies += o.arp_replies;
        self.nd_replies += o.nd_replies;
        self.announcements += o.announcements;
    }
}

/// The entry of `port` in a table indexed by port id, growing the table if the port is new
/// (the pipeline's, the hold's and vswitchd's per-port counters all use it).
#[inline]
pub fn per_port<T: Default + Clone>(table: &mut Vec<T>, port: PortId) -> &mut T {
    let p = port.index();
    if p >= table.len() {
        table.resize(p + 1, T::default());
    }
    &mut table[p]
}

/// Adds `other`'s per-port entries to `table`'s, growing it as needed.
pub fn add_per_port<T: Default + Clone>(table: &mut Vec<T>, other: &[T], add: impl Fn(&mut T, &T)) {
    if other.len() > table.len() {
        table.resize(other.len(), T::default());
    }
    for (a, b) in table.iter_mut().zip(other) {
        add(a, b);
    }
}

/// A worker's counters for every port (indexed by port id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub ports: Vec<PortCounters>,
}

impl Counters {
    /// The counters of `port`, growing the table if the port is new.
    #[inline]
    pub fn port(&mut self, port: PortId) -> &mut PortCounters {
        per_port(&mut self.ports, port)
    }

    /// Makes sure ports up to `max` have counters.
    #[inline]
    pub fn ensure(&mut self, max: PortId) {
        if self.ports.len() <= max.index() {
            self.ports.resize(max.index() + 1, PortCounters::default());
        }
    }

    /// The counters of a port that [`Counters::ensure`] made room for.
    #[inline]
    #[cfg(feature = "table")] // the processor's
    pub(crate) fn at(&mut self, port: PortId) -> &mut PortCounters {
        &mut self.ports[port.index()]
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Counters) {
        add_per_port(&mut self.ports, &o.ports, PortCounters::add);
    }

    /// Every port balances.
    pub fn balanced(&self) -> bool {
        self.ports.iter().all(PortCounters::balanced)
    }

    /// All ports together.
    pub fn total(&self) -> PortCounters {
        let mut t = PortCounters::default();
        for p in &self.ports {
            t.add(p);
        }
        t
    }
}
