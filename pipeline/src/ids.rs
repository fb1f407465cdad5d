//! The numbers the data path is made of, each its own type so that none passes for another:
//! a port ([`PortId`], DPDK's port id), a segment ([`SegmentId`], up to 24 bits, what the
//! operator configures), its dense slot ([`SegmentSlot`], 16 bits, what the MAC table's keys
//! and the per-segment arrays hold) and an 802.1Q VLAN id ([`VlanId`], 12 bits, one way of
//! carrying a segment on the uplink, as a VXLAN [`Vni`] is another). [`SegmentSlots`] gives segments their slots.

use std::fmt;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

/// A port: DPDK's port id, the index of the pipeline's per-port tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PortId(pub u16);

impl PortId {
    /// The index into per-port tables.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Largest segment id: 24 bits (a VXLAN VNI's size).
pub const MAX_SEGMENT_ID: u32 = (1 << 24) - 1;

/// Declares an id valid only in `1..=max`: `new` (None outside), `get`, the conversions
/// (serde reads it through `TryFrom`, so a value out of range is refused as the JSON is
/// decoded), `FromStr` (for command lines) and `Display`.
macro_rules! bounded_id {
    ($(#[$attr:meta])* $name:ident($int:ty, $int_name:literal), max: $max:expr, what: $what:literal) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = $int_name, into = $int_name)]
        pub struct $name($int);

        impl $name {
            pub const fn new(id: $int) -> Option<$name> {
                if id >= 1 && id <= $max {
                    Some($name(id))
                } else {
                    None
                }
            }

            pub const fn get(self) -> $int {
                self.0
            }
        }

        impl TryFrom<$int> for $name {
            type Error = String;
            fn try_from(id: $int) -> Result<$name, String> {
                $name::new(id).ok_or_else(|| format!("{} {id} is out of range (1..={})", $what, $max))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                s.parse::<$int>().map_err(|_| format!("`{s}` is not a {} id (1..={})", $what, $max))?.try_into()
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> $int {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_id! {
    /// A segment: one tenant network, 1..=16777215.
    SegmentId(u32, "u32"), max: MAX_SEGMENT_ID, what: "segment"
}

/// A segment's dense slot: what the MAC table's keys and the per-segment arrays hold, so
/// that a (MAC, segment) key packs into one `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SegmentSlot(pub u16);

impl SegmentSlot {
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for SegmentSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

bounded_id! {
    /// An 802.1Q VLAN id, 1..=4094 (0 and 4095 are reserved).
    VlanId(u16, "u16"), max: 4094, what: "VLAN"
}

bounded_id! {
    /// A VXLAN network identifier, 1..=16777215 (24 bits; 0 is left out, as most VTEPs
    /// reserve it).
    Vni(u32, "u32"), max: MAX_SEGMENT_ID, what: "VNI"
}

/// Why a segment got no slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("all 65536 segment slots are in use")]
pub struct TooManySegments;

/// The mapping between segment ids and slots. Owned by the control plane; the data plane
/// keeps each port's slot. A host serves far fewer than 65,536 segments.
#[derive(Debug, Default, Clone)]
pub struct SegmentSlots {
    by_id: HashMap<SegmentId, SegmentSlot>,
    ids: Vec<Option<SegmentId>>,
}

impl SegmentSlots {
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot of segment `id`, allocating one on first use.
    pub fn intern(&mut self, id: SegmentId) -> Result<SegmentSlot, TooManySegments> {
        if let Some(&s) = self.by_id.get(&id) {
            return Ok(s);
        }
        let slot = match self.ids.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.ids.len() <= u16::MAX as usize => {
                self.ids.push(None);
                self.ids.len() - 1
            }
            None => return Err(TooManySegments),
        };
        self.ids[slot] = Some(id);
        let slot = SegmentSlot(slot as u16);
        self.by_id.insert(id, slot);
        Ok(slot)
    }

    /// The slot of `id`, if it has one.
    pub fn slot(&self, id: SegmentId) -> Option<SegmentSlot> {
        self.by_id.get(&id).copied()
    }

    /// The segment id in `slot`.
    pub fn id(&self, slot: SegmentSlot) -> Option<SegmentId> {
        self.ids.get(slot.index()).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_24_bit_ids_into_dense_slots() {
        let (a, b) = (SegmentId::new(100).unwrap(), SegmentId::new(MAX_SEGMENT_ID).unwrap());
        let mut s = SegmentSlots::new();
        assert_eq!(s.intern(a).unwrap(), SegmentSlot(0));
        assert_eq!(s.intern(b).unwrap(), SegmentSlot(1));
        assert_eq!(s.intern(a).unwrap(), SegmentSlot(0));
        assert_eq!((s.slot(b), s.id(SegmentSlot(1))), (Some(SegmentSlot(1)), Some(b)));
        assert_eq!((SegmentId::new(0), SegmentId::new(MAX_SEGMENT_ID + 1)), (None, None));
        assert!(serde_json::from_str::<SegmentId>("16777216").is_err());
        assert_eq!(serde_json::to_string(&a).unwrap(), "100");
        assert_eq!((VlanId::new(0), VlanId::new(4095), VlanId::new(4094).map(VlanId::get)), (None, None, Some(4094)));
    }
}
