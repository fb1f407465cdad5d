//! VXLAN on the uplink (RFC 7348): this host is a VTEP with an IPv4 address and a MAC on
//! the uplink, the leaf has one or more VTEPs, and a segment carried as VXLAN has a 24-bit
//! VNI. Going up, a VM's frame gets outer Ethernet, IPv4, UDP and VXLAN headers (50 bytes)
//! to one of the leaf's VTEPs, with a UDP source port taken from a hash of the inner
//! headers (entropy for ECMP in the underlay). Coming down, only frames from a known VTEP
//! for a known VNI are taken apart; the rest are dropped under a named reason. ARP for the
//! host's VTEP address is answered in place; the leaf VTEPs' ARP replies go to the control
//! plane, which resolves their MACs (see [`Underlay::remotes`]).

use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::counters::DropReason;
use crate::ids::{SegmentSlot, Vni};
use crate::wire::arp::{op, ArpPacket};
use crate::wire::ethernet::{ethertype, HEADER_LEN};
use crate::wire::mac::MacAddr;
use crate::wire::{checksum_add, checksum_finish};

/// VXLAN's IANA UDP port.
pub const UDP_PORT: u16 = 4789;
/// Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8).
pub const OVERHEAD: usize = 50;
/// What the outer IPv4 packet adds to the inner frame: IPv4, UDP and VXLAN headers.
const IP_OVERHEAD: usize = OVERHEAD - HEADER_LEN;
/// The VXLAN header's "valid VNI" flag.
const FLAG_I: u8 = 0x08;
/// Smallest IP MTU an underlay may have (IPv4's minimum).
pub const MIN_MTU: u16 = 576;

/// One of the leaf's VTEPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteVtep {
    pub ip: Ipv4Addr,
    /// Its MAC on the uplink, once resolved (ARP); until then nothing is sent to it.
    pub mac: Option<MacAddr>,
}

/// This host's end of the VXLAN underlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The host's VTEP address (answered for by ARP on the uplink).
    pub ip: Ipv4Addr,
    /// The host's VTEP MAC (the uplink's).
    pub mac: MacAddr,
    /// The leaf's VTEPs: frames go to one of those resolved (by flow hash) and come only
    /// from them.
    pub remotes: Vec<RemoteVtep>,
    /// The underlay's IP MTU: an inner frame longer than `mtu - 36` bytes is dropped
    /// (`vxlan_too_big`); a VM's MTU should be `mtu - 50`.
    pub mtu: u16,
}

impl Underlay {
    /// The largest inner frame (Ethernet header included, no FCS) that fits.
    pub fn max_inner_len(&self) -> usize {
        (self.mtu as usize).saturating_sub(IP_OVERHEAD)
    }
}

/// What the data path derives from an [`Underlay`] to encapsulate: a header template per
/// resolved leaf VTEP (VNI, lengths, checksum and source port filled in per frame).
#[derive(Debug, Clone, Default)]
pub struct VxlanTx {
    templates: Vec<[u8; OVERHEAD]>,
    /// The outer IPv4 header's checksum over its constant fields, per template.
    sums: Vec<u32>,
    max_inner: usize,
}

impl VxlanTx {
    pub fn new(u: &Underlay) -> VxlanTx {
        let mut tx = VxlanTx { max_inner: u.max_inner_len(), ..VxlanTx::default() };
        for r in &u.remotes {
            let Some(mac) = r.mac else { continue };
            let mut h = [0u8; OVERHEAD];
            h[0..6].copy_from_slice(&mac.0);
            h[6..12].copy_from_slice(&u.mac.0);
            h[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            // IPv4: no options, don't fragment, TTL 64, UDP.
            h[14] = 0x45;
            h[20] = 0x40;
            h[22] = 64;
            h[23] = 17;
            h[26..30].copy_from_slice(&u.ip.octets());
            h[30..34].copy_from_slice(&r.ip.octets());
            h[36..38].copy_from_slice(&UDP_PORT.to_be_bytes());
            h[42] = FLAG_I;
            tx.sums.push(checksum_add(0, &h[14..34]));
            tx.templates.push(h);
        }
        tx
    }

    /// Writes the outer headers for `vni` in front of `inner` (the 50 bytes before it in
    /// `b`, which the caller has prepended): `b` is the whole outer frame.
    #[inline]
    pub fn write(&self, b: &mut [u8], vni: Vni) -> Result<(), DropReason> {
        if self.templates.is_empty() {
            return Err(DropReason::VtepUnresolved);
        }
        let inner_len = b.len() - OVERHEAD;
        if inner_len > self.max_inner {
            return Err(DropReason::VxlanTooBig);
        }
        let hash = flow_hash(&b[OVERHEAD..]);
        let i = (hash as usize) % self.templates.len();
        b[..OVERHEAD].copy_from_slice(&self.templates[i]);
        let total = (inner_len + IP_OVERHEAD) as u16;
        b[16..18].copy_from_slice(&total.to_be_bytes());
        let sum = checksum_finish(self.sums[i] + total as u32);
        b[24..26].copy_from_slice(&sum.to_be_bytes());
        // Source port in the dynamic range 49152..=65535.
        let sport = 0xc000 | (hash >> 18) as u16;
        b[34..36].copy_from_slice(&sport.to_be_bytes());
        b[38..40].copy_from_slice(&(total - 20).to_be_bytes());
        b[46..49].copy_from_slice(&vni.get().to_be_bytes()[1..]);
        Ok(())
    }

    /// Whether any leaf VTEP is resolved.
    pub fn ready(&self) -> bool {
        !self.templates.is_empty()
    }
}

/// A hash of the inner frame's addresses and, for TCP and UDP over IPv4 or IPv6 (without
/// extension headers), its ports: one flow, one UDP source port.
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    let mut h: u64 = 0;
    let mut mix = |bytes: &[u8]| {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        }
    };
    mix(&inner[..inner.len().min(HEADER_LEN)]);
    if inner.len() >= HEADER_LEN {
        let l3 = &inner[HEADER_LEN..];
        match u16::from_be_bytes([inner[12], inner[13]]) {
            ethertype::IPV4 if l3.len() >= 20 => {
                mix(&l3[12..20]);
                let ihl = (l3[0] & 0x0f) as usize * 4;
                if matches!(l3[9], 6 | 17) && ihl >= 20 && l3.len() >= ihl + 4 {
                    mix(&l3[ihl..ihl + 4]);
                }
            }
            ethertype::IPV6 if l3.len() >= 40 => {
                mix(&l3[8..40]);
                if matches!(l3[6], 6 | 17) && l3.len() >= 44 {
                    mix(&l3[40..44]);
                }
            }
            _ => {}
        }
    }
    (h ^ (h >> 32)) as u32
}

/// An underlay frame for the host's VTEP that is not VXLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtepArp {
    /// An ARP request for the host's VTEP address: answered in place with its MAC.
    Request(MacAddr),
    /// An ARP reply (or gratuitous ARP) from a leaf VTEP: for the control plane.
    FromLeaf,
}

/// The decapsulation side: the host's VTEP, the leaf's VTEPs and the VNIs configured.
#[derive(Debug, Clone, Default)]
pub struct VxlanRx {
    vtep: Option<(Ipv4Addr, MacAddr)>,
    remotes: Vec<Ipv4Addr>,
    by_vni: HashMap<u32, SegmentSlot>,
}

/// What the VXLAN side makes of an untagged uplink frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underlaid {
    /// Not for the host's VTEP (a native segment's frame, if there is one).
    NotOurs,
    /// A VXLAN frame of this segment whose inner frame starts at this offset.
    Segment(SegmentSlot, u8),
    Arp(VtepArp),
}

impl VxlanRx {
    pub fn new(underlay: Option<&Underlay>, vnis: impl IntoIterator<Item = (Vni, SegmentSlot)>) -> VxlanRx {
        VxlanRx {
            vtep: underlay.map(|u| (u.ip, u.mac)),
            remotes: underlay.map(|u| u.remotes.iter().map(|r| r.ip).collect()).unwrap_or_default(),
            by_vni: vnis.into_iter().map(|(v, s)| (v.get(), s)).collect(),
        }
    }

    /// The segment of a VNI, if configured.
    pub fn segment_of(&self, vni: Vni) -> Option<SegmentSlot> {
        self.by_vni.get(&vni.get()).copied()
    }

    /// Classifies an untagged uplink frame (at least an Ethernet header long) against the
    /// host's VTEP. `native` says whether a native segment could take what is not ours.
    #[inline]
    pub fn classify(&self, b: &[u8], native: bool) -> Result<Underlaid, DropReason> {
        let Some((vtep_ip, vtep_mac)) = self.vtep else { return Ok(Underlaid::NotOurs) };
        match u16::from_be_bytes([b[12], b[13]]) {
            ethertype::ARP => {
                let Ok(a) = ArpPacket::new_checked(&b[HEADER_LEN..]) else { return Ok(Underlaid::NotOurs) };
                let (spa, tpa) = (a.sender_ip(), a.target_ip());
                let from_leaf = self.remotes.contains(&spa);
                Ok(match a.operation() {
                    op::REQUEST if tpa == vtep_ip && spa != vtep_ip => Underlaid::Arp(VtepArp::Request(vtep_mac)),
                    op::REPLY if from_leaf && tpa == vtep_ip => Underlaid::Arp(VtepArp::FromLeaf),
                    _ if from_leaf && tpa == spa => Underlaid::Arp(VtepArp::FromLeaf),
                    _ => Underlaid::NotOurs,
                })
            }
            ethertype::IPV4 if b.len() < HEADER_LEN + 20 => {
                if native {
                    Ok(Underlaid::NotOurs)
                } else {
                    Err(DropReason::VxlanTruncated)
                }
            }
            ethertype::IPV4 if b[30..34] == vtep_ip.octets() => {
                self.decap(&b[HEADER_LEN..]).map(|(s, at)| Underlaid::Segment(s, (HEADER_LEN + at) as u8))
            }
            _ => Ok(Underlaid::NotOurs),
        }
    }

    /// Checks an IPv4 packet for the host's VTEP: its segment and where (from the IPv4
    /// header) the inner frame starts.
    #[inline]
    fn decap(&self, ip: &[u8]) -> Result<(SegmentSlot, usize), DropReason> {
        let ihl = (ip[0] & 0x0f) as usize * 4;
        if ip[0] >> 4 != 4 || ihl < 20 {
            return Err(DropReason::VxlanBadHeader);
        }
        if ip.len() < ihl {
            return Err(DropReason::VxlanTruncated);
        }
        if checksum_finish(checksum_add(0, &ip[..ihl])) != 0 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            // A corrupt header, or a fragment (never reassembled).
            return Err(DropReason::VxlanBadHeader);
        }
        if ip[9] != 17 {
            return Err(DropReason::UnderlayOther);
        }
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let udp = ihl;
        if total > ip.len() || total < udp + 8 {
            return Err(DropReason::VxlanTruncated);
        }
        if u16::from_be_bytes([ip[udp + 2], ip[udp + 3]]) != UDP_PORT {
            return Err(DropReason::UnderlayOther);
        }
        let inner = udp + 16;
        if total < inner || u16::from_be_bytes([ip[udp + 4], ip[udp + 5]]) as usize != total - udp {
            return Err(DropReason::VxlanTruncated);
        }
        if ip[udp + 8] & FLAG_I == 0 {
            return Err(DropReason::VxlanBadHeader);
        }
        if !self.remotes.contains(&Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])) {
            return Err(DropReason::VxlanUnknownVtep);
        }
        let vni = u32::from_be_bytes([0, ip[udp + 12], ip[udp + 13], ip[udp + 14]]);
        let slot = *self.by_vni.get(&vni).ok_or(DropReason::VxlanUnknownVni)?;
        if total - inner < HEADER_LEN
            || matches!(u16::from_be_bytes([ip[inner + 12], ip[inner + 13]]), ethertype::VLAN | ethertype::QINQ)
        {
            return Err(DropReason::VxlanBadInner);
        }
        Ok((slot, inner))
    }
}

/// The leaf VTEP's address and MAC in an ARP frame [`VtepArp::FromLeaf`] named (for the
/// control plane).
pub fn leaf_vtep_of(b: &[u8]) -> Option<(Ipv4Addr, MacAddr)> {
    let a = ArpPacket::new_checked(b.get(HEADER_LEN..)?).ok()?;
    Some((a.sender_ip(), a.sender_mac()))
}

/// The ARP request (broadcast, padded to 60 bytes) the host's VTEP (`mac`, `ip`) sends to
/// resolve a leaf VTEP's MAC.
pub fn vtep_arp_request(mac: MacAddr, ip: Ipv4Addr, leaf: Ipv4Addr) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
    crate::wire::arp::ArpRepr {
        operation: op::REQUEST,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: MacAddr::ZERO,
        target_ip: leaf,
    }
    .emit(&mut ArpPacket::new_unchecked(&mut f[HEADER_LEN..HEADER_LEN + 28]));
    f
}
