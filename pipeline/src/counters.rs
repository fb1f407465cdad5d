//! Counters, kept per worker as plain integers (no atomics on the hot path) and summed on
//! read. For every input port: frames in = forwarded + flooded + dropped, exactly.

/// Why a frame was dropped. Every drop has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Too short for its Ethernet (or tagged) header.
    Runt,
    /// Source MAC is multicast, broadcast or zero.
    BadSourceMac,
    /// Port security: source MAC is not the vNIC's.
    SpoofedSourceMac,
    /// Port security: ARP sender IP (or MAC) is not the vNIC's.
    SpoofedArpSender,
    /// ARP that is truncated or not Ethernet/IPv4 (wrong types or lengths).
    MalformedArp,
    /// Port security: a neighbor advertisement for an address that is not the vNIC's.
    SpoofedNaTarget,
    /// A VM port sent an 802.1Q/802.1ad-tagged frame (VM ports are access ports).
    TaggedFromVnic,
    /// A frame from the uplink without an 802.1Q tag.
    UplinkUntagged,
    /// A frame from the uplink with two tags.
    UplinkDoubleTagged,
    /// The uplink tag names no configured segment.
    UnknownSegment,
    /// Unicast from the uplink to a MAC that is no local vNIC of the segment.
    UplinkUnknownUnicast,
    /// Unicast whose destination is the port it came from.
    Hairpin,
    /// Unicast that needs the uplink, and there is none.
    NoUplink,
    /// Broadcast/multicast with nowhere to go (no other port in the segment, no uplink).
    NoFloodTarget,
    /// The input port is not configured (e.g. detached while frames were in flight).
    UnknownPort,
    /// The frame's buffer is shared and could not be rewritten.
    Unwritable,
    /// No headroom to push a tag.
    NoHeadroom,
}

impl DropReason {
    pub const COUNT: usize = 17;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Runt,
        DropReason::BadSourceMac,
        DropReason::SpoofedSourceMac,
        DropReason::SpoofedArpSender,
        DropReason::MalformedArp,
        DropReason::SpoofedNaTarget,
        DropReason::TaggedFromVnic,
        DropReason::UplinkUntagged,
        DropReason::UplinkDoubleTagged,
        DropReason::UnknownSegment,
        DropReason::UplinkUnknownUnicast,
        DropReason::Hairpin,
        DropReason::NoUplink,
        DropReason::NoFloodTarget,
        DropReason::UnknownPort,
        DropReason::Unwritable,
        DropReason::NoHeadroom,
    ];

    /// A stable snake_case name for APIs and logs.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::BadSourceMac => "bad_source_mac",
            DropReason::SpoofedSourceMac => "spoofed_source_mac",
            DropReason::SpoofedArpSender => "spoofed_arp_sender",
            DropReason::MalformedArp => "malformed_arp",
            DropReason::SpoofedNaTarget => "spoofed_na_target",
            DropReason::TaggedFromVnic => "tagged_from_vnic",
            DropReason::UplinkUntagged => "uplink_untagged",
            DropReason::UplinkDoubleTagged => "uplink_double_tagged",
            DropReason::UnknownSegment => "unknown_segment",
            DropReason::UplinkUnknownUnicast => "uplink_unknown_unicast",
            DropReason::Hairpin => "hairpin",
            DropReason::NoUplink => "no_uplink",
            DropReason::NoFloodTarget => "no_flood_target",
            DropReason::UnknownPort => "unknown_port",
            DropReason::Unwritable => "unwritable",
            DropReason::NoHeadroom => "no_headroom",
        }
    }
}

/// One port's counters, as seen by one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames that came in on this port.
    pub rx: u64,
    /// Of those: sent to exactly one output (unicast, or a local ARP reply).
    pub forwarded: u64,
    /// Of those: flooded (the original; its copies are counted in `flood_copies`).
    pub flooded: u64,
    /// Of those: dropped, by reason.
    pub dropped: [u64; DropReason::COUNT],
    /// Frames queued out of this port (forwarded, flooded originals and copies).
    pub tx: u64,
    /// Unicast frames whose destination MAC was rewritten to an anycast MAC.
    pub rewritten: u64,
    /// Flood copies made for frames from this port.
    pub flood_copies: u64,
    /// Flood copies that could not be made (no buffer).
    pub flood_copy_failures: u64,
    /// ARP requests from this port answered by the local ARP responder.
    pub arp_replies: u64,
    /// Of `forwarded`: the VM's announcements of itself (gratuitous ARP, RARP, unsolicited
    /// NA), sent to the uplink only.
    pub announcements: u64,
}

impl PortCounters {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// rx = forwarded + flooded + dropped.
    pub fn balanced(&self) -> bool {
        self.rx == self.forwarded + self.flooded + self.dropped_total()
    }

    pub fn add(&mut self, o: &PortCounters) {
        self.rx += o.rx;
        self.forwarded += o.forwarded;
        self.flooded += o.flooded;
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.tx += o.tx;
        self.rewritten += o.rewritten;
        self.flood_copies += o.flood_copies;
        self.flood_copy_failures += o.flood_copy_failures;
        self.arp_replies += o.arp_replies;
        self.announcements += o.announcements;
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
    pub fn port(&mut self, port: u16) -> &mut PortCounters {
        let p = port as usize;
        if p >= self.ports.len() {
            self.ports.resize(p + 1, PortCounters::default());
        }
        &mut self.ports[p]
    }

    /// Makes sure ports up to `max` have counters.
    #[inline]
    pub fn ensure(&mut self, max: u16) {
        if self.ports.len() <= max as usize {
            self.ports.resize(max as usize + 1, PortCounters::default());
        }
    }

    /// The counters of a port that [`Counters::ensure`] made room for.
    #[inline]
    pub(crate) fn at(&mut self, port: u16) -> &mut PortCounters {
        &mut self.ports[port as usize]
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Counters) {
        if o.ports.len() > self.ports.len() {
            self.ports.resize(o.ports.len(), PortCounters::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.add(b);
        }
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
