//! The uplink's encapsulations: how each segment's frames are carried between the host
//! and the leaf. Going up, [`Encap::encapsulate`] wraps a VM's frame for its segment; coming
//! down, [`Decap::classify`] names the segment of an uplink frame and what to strip to get
//! the VM's frame back. The rules in `process` call only these two, so a new kind of
//! uplink (VXLAN: outer Ethernet, IPv4, UDP and VXLAN headers, 50 bytes of headroom) is a
//! new variant here and nothing else.

use crate::counters::DropReason;
use crate::frame::{pop_vlan, push_vlan, Frame};
use crate::ids::{SegmentSlot, VlanId};
use crate::wire::ethernet::ethertype;
use crate::wire::vlan::TAGGED_HEADER_LEN;

/// How a segment is carried on the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Untagged: the trunk's native VLAN (one segment at most).
    Native,
    /// 802.1Q-tagged with this VLAN id.
    Vlan(VlanId),
}

impl Encap {
    /// Whether wrapping writes the frame (a flood then gives the uplink its own copy).
    #[inline]
    pub fn writes(self) -> bool {
        self != Encap::Native
    }

    /// Wraps a VM's frame for the uplink; false when the buffer has no room (or cannot be
    /// written).
    #[inline]
    pub fn encapsulate<F: Frame>(self, f: &mut F) -> bool {
        match self {
            Encap::Native => true,
            Encap::Vlan(v) => push_vlan(f, v.get()),
        }
    }
}

/// What to strip from an uplink frame to get the VM's frame back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strip {
    Nothing,
    VlanTag,
}

impl Strip {
    /// Strips it; false when the buffer cannot be written.
    #[inline]
    pub fn apply<F: Frame>(self, f: &mut F) -> bool {
        match self {
            Strip::Nothing => true,
            Strip::VlanTag => pop_vlan(f),
        }
    }
}

/// No segment for this VLAN.
const NO_SEGMENT: SegmentSlot = SegmentSlot(u16::MAX);

/// The uplink's demultiplexer: from a frame's encapsulation to its segment. Built from the
/// configuration's segments; read per frame.
#[derive(Debug, Clone)]
pub struct Decap {
    by_vlan: Vec<SegmentSlot>,
    native: Option<SegmentSlot>,
}

impl Default for Decap {
    fn default() -> Self {
        Decap { by_vlan: vec![NO_SEGMENT; 4096], native: None }
    }
}

impl Decap {
    /// The demultiplexer for these segments (each slot with its encapsulation).
    pub fn new(segments: impl IntoIterator<Item = (SegmentSlot, Encap)>) -> Decap {
        let mut d = Decap::default();
        for (slot, encap) in segments {
            match encap {
                Encap::Native => d.native = Some(slot),
                Encap::Vlan(v) => d.by_vlan[v.get() as usize] = slot,
            }
        }
        d
    }

    /// The segment carried with this encapsulation, if any.
    #[inline]
    pub fn segment_of(&self, encap: Encap) -> Option<SegmentSlot> {
        match encap {
            Encap::Native => self.native,
            Encap::Vlan(v) => self.by_vlan.get(v.get() as usize).copied().filter(|s| *s != NO_SEGMENT),
        }
    }

    /// The segment of an uplink frame and what to strip from it, or why it has none. The
    /// frame is at least an Ethernet header long.
    #[inline]
    pub fn classify(&self, b: &[u8]) -> Result<(SegmentSlot, Strip), DropReason> {
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
                Ok((slot, Strip::VlanTag))
            }
            ethertype::QINQ => Err(DropReason::UplinkDoubleTagged),
            _ => self.native.map(|s| (s, Strip::Nothing)).ok_or(DropReason::UplinkUntagged),
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
        assert!(v.encapsulate(&mut f));
        assert_eq!(&f.bytes()[12..16], &[0x81, 0x00, 0x00, 100]);
        let d = Decap::new([(SegmentSlot(3), v), (SegmentSlot(4), Encap::Native)]);
        assert_eq!(d.classify(f.bytes()), Ok((SegmentSlot(3), Strip::VlanTag)));
        assert!(Strip::VlanTag.apply(&mut f));
        assert_eq!(f.bytes(), &orig[..]);
        let mut untagged = orig.clone();
        untagged[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(d.classify(&untagged), Ok((SegmentSlot(4), Strip::Nothing)));
        assert_eq!(Decap::new([(SegmentSlot(3), v)]).classify(&untagged), Err(DropReason::UplinkUntagged));
    }
}
