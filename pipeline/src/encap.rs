//! The uplink's encapsulations: how each segment's frames are carried between the host
//! and the leaf. Going up, [`Encap::encapsulate`] wraps a VM's frame for its segment; coming
//! down, [`Decap::classify`] names the segment of an uplink frame and what to strip to get
//! the VM's frame back. The rules in `process` call only these two: a kind of uplink is a
//! variant here. VXLAN ([`crate::vxlan`]) writes outer Ethernet, IPv4, UDP and VXLAN
//! headers into 50 bytes of headroom; its frames arrive untagged, beside the 802.1Q-tagged
//! VLAN segments and the native one.

use crate::counters::DropReason;
use crate::frame::{pop_vlan, push_vlan, Frame};
use crate::ids::{SegmentSlot, VlanId, Vni};
use crate::vxlan::{Underlaid, Underlay, VtepArp, VxlanRx, VxlanTx, OVERHEAD};
use crate::wire::ethernet::ethertype;
use crate::wire::vlan::TAGGED_HEADER_LEN;

/// How a segment is carried on the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Untagged: the trunk's native VLAN (one segment at most).
    Native,
    /// 802.1Q-tagged with this VLAN id.
    Vlan(VlanId),
    /// VXLAN with this VNI, to the leaf's VTEPs (the switch's [`Underlay`]).
    Vxlan(Vni),
}

/// A segment's encapsulation with what writing it takes (the VXLAN header templates of
/// the configuration it came from).
#[derive(Debug, Clone, Copy)]
pub struct Wrap<'a> {
    pub(crate) encap: Encap,
    pub(crate) vxlan: &'a VxlanTx,
}

impl Wrap<'_> {
    /// Whether wrapping writes the frame (a flood then gives the uplink its own copy).
    #[inline]
    pub fn writes(self) -> bool {
        self.encap != Encap::Native
    }

    /// Wraps a VM's frame for the uplink, or says why it cannot be (no headroom, a shared
    /// buffer, no leaf VTEP resolved, too big for the underlay).
    #[inline]
    pub fn encapsulate<F: Frame>(self, f: &mut F) -> Result<(), DropReason> {
        match self.encap {
            Encap::Native => Ok(()),
            Encap::Vlan(v) => push_vlan(f, v.get()).then_some(()).ok_or(DropReason::NoHeadroom),
            Encap::Vxlan(vni) => {
                if !self.vxlan.ready() {
                    return Err(DropReason::VtepUnresolved);
                }
                if !f.prepend(OVERHEAD) {
                    return Err(DropReason::NoHeadroom);
                }
                let Some(b) = f.bytes_mut() else {
                    f.adj(OVERHEAD);
                    return Err(DropReason::Unwritable);
                };
                let r = self.vxlan.write(b, vni);
                if r.is_err() {
                    f.adj(OVERHEAD);
                }
                r
            }
        }
    }
}

/// What to strip from an uplink frame to get the VM's frame back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strip {
    Nothing,
    VlanTag,
    /// The outer headers of a VXLAN frame: the inner frame starts this far in.
    Outer(u8),
}

impl Strip {
    /// Strips it; false when the buffer cannot be written.
    #[inline]
    pub fn apply<F: Frame>(self, f: &mut F) -> bool {
        match self {
            Strip::Nothing => true,
            Strip::VlanTag => pop_vlan(f),
            Strip::Outer(n) => f.adj(n as usize),
        }
    }

    /// Where the frame's own MACs start (a tag comes after them, outer headers before).
    #[inline]
    pub fn offset(self) -> usize {
        match self {
            Strip::Outer(n) => n as usize,
            Strip::Nothing | Strip::VlanTag => 0,
        }
    }
}

/// What an uplink frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uplinked {
    /// A segment's frame, and what to strip to get the VM's frame.
    Segment(SegmentSlot, Strip),
    /// ARP for or from the host's VTEP.
    Vtep(VtepArp),
}

/// No segment for this VLAN.
const NO_SEGMENT: SegmentSlot = SegmentSlot(u16::MAX);

/// The uplink's demultiplexer: from a frame's encapsulation to its segment. Built from the
/// configuration's segments; read per frame.
#[derive(Debug, Clone)]
pub struct Decap {
    by_vlan: Vec<SegmentSlot>,
    native: Option<SegmentSlot>,
    vxlan: VxlanRx,
}

impl Default for Decap {
    fn default() -> Self {
        Decap { by_vlan: vec![NO_SEGMENT; 4096], native: None, vxlan: VxlanRx::default() }
    }
}

impl Decap {
    /// The demultiplexer for these segments (each slot with its encapsulation) and this
    /// underlay (VXLAN's, if any).
    pub fn new(segments: impl IntoIterator<Item = (SegmentSlot, Encap)>, underlay: Option<&Underlay>) -> Decap {
        let segments: Vec<(SegmentSlot, Encap)> = segments.into_iter().collect();
        let mut d = Decap::default();
        for &(slot, encap) in &segments {
            match encap {
                Encap::Native => d.native = Some(slot),
                Encap::Vlan(v) => d.by_vlan[v.get() as usize] = slot,
                Encap::Vxlan(_) => {}
            }
        }
        let vnis = segments.into_iter().filter_map(|(slot, e)| match e {
            Encap::Vxlan(v) => Some((v, slot)),
            _ => None,
        });
        d.vxlan = VxlanRx::new(underlay, vnis);
        d
    }

    /// The segment carried with this encapsulation, if any.
    #[inline]
    pub fn segment_of(&self, encap: Encap) -> Option<SegmentSlot> {
        match encap {
            Encap::Native => self.native,
            Encap::Vlan(v) => self.by_vlan.get(v.get() as usize).copied().filter(|s| *s != NO_SEGMENT),
            Encap::Vxlan(v) => self.vxlan.segment_of(v),
        }
    }

    /// The segment of an uplink frame and what to strip from it, or why it has none. The
    /// frame is at least an Ethernet header long.
    #[inline]
    pub fn classify(&self, b: &[u8]) -> Result<Uplinked, DropReason> {
        match u16::from_be_bytes([b[12], b[13]]) {
            ethertype::VLAN => {
                if b.len() < TAGGED_HEADER_LEN {
                    return Err(DropReason::Runt);
                }
                let vid = u16::from_be_bytes([b[14], b[15]]) & 0x0fff;
                let slot =
                    VlanId::new(vid).and_then(|v| self.segment_of(Encap::Vlan(v))).ok_or(DropReason::UnknownSegment)?;
                if matches!(u16::from_be_bytes([b[16], b[17]]), ethertype::VLAN | ethertype::QINQ) {
                    return Err(DropReason::UplinkDoubleTagged);
                }
                Ok(Uplinked::Segment(slot, Strip::VlanTag))
            }
            ethertype::QINQ => Err(DropReason::UplinkDoubleTagged),
            _ => match self.vxlan.classify(b, self.native.is_some())? {
                Underlaid::Segment(slot, at) => Ok(Uplinked::Segment(slot, Strip::Outer(at))),
                Underlaid::Arp(a) => Ok(Uplinked::Vtep(a)),
                Underlaid::NotOurs => {
                    self.native.map(|s| Uplinked::Segment(s, Strip::Nothing)).ok_or(DropReason::UplinkUntagged)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ByteFrame;

    #[test]
    fn vlan_ids_are_checked_and_frames_wrapped_and_unwrapped() {
        assert_eq!((VlanId::new(0), VlanId::new(4095)), (None, None));
        let v = Encap::Vlan(VlanId::new(100).unwrap());
        let orig: Vec<u8> = (0..60).collect();
        let mut f = ByteFrame::new(&orig);
        let tx = VxlanTx::default();
        assert_eq!(Wrap { encap: v, vxlan: &tx }.encapsulate(&mut f), Ok(()));
        assert_eq!(&f.bytes()[12..16], &[0x81, 0x00, 0x00, 100]);
        let d = Decap::new([(SegmentSlot(3), v), (SegmentSlot(4), Encap::Native)], None);
        assert_eq!(d.classify(f.bytes()), Ok(Uplinked::Segment(SegmentSlot(3), Strip::VlanTag)));
        assert!(Strip::VlanTag.apply(&mut f));
        assert_eq!(f.bytes(), &orig[..]);
        let mut untagged = orig.clone();
        untagged[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(d.classify(&untagged), Ok(Uplinked::Segment(SegmentSlot(4), Strip::Nothing)));
        assert_eq!(Decap::new([(SegmentSlot(3), v)], None).classify(&untagged), Err(DropReason::UplinkUntagged));
        // A VXLAN segment without a resolved leaf VTEP cannot be wrapped.
        let x = Wrap { encap: Encap::Vxlan(Vni::new(5000).unwrap()), vxlan: &tx };
        assert_eq!(x.encapsulate(&mut f), Err(DropReason::VtepUnresolved));
        assert_eq!(f.bytes(), &orig[..], "a refused frame is left as it was");
    }
}
