//! Dense 16-bit slots for segment ids of up to 24 bits (VLAN ids, VNIs), so that a
//! (MAC, segment) key packs into one `u64`. A host serves far fewer than 65,536 segments.

use hashbrown::HashMap;

use crate::{Error, SegmentSlot};

/// Largest segment id: 24 bits.
pub const MAX_SEGMENT_ID: u32 = (1 << 24) - 1;

/// The mapping between segment ids and slots. Owned by the control plane; the data plane
/// keeps each port's slot and an array from VLAN id to slot.
#[derive(Debug, Default, Clone)]
pub struct SegmentSlots {
    by_id: HashMap<u32, SegmentSlot>,
    ids: Vec<Option<u32>>,
}

impl SegmentSlots {
    pub fn new() -> Self {
        Self::default()
    }

    /// The slot of segment `id`, allocating one on first use.
    pub fn intern(&mut self, id: u32) -> Result<SegmentSlot, Error> {
        if id > MAX_SEGMENT_ID {
            return Err(Error::SegmentOutOfRange(id));
        }
        if let Some(&s) = self.by_id.get(&id) {
            return Ok(s);
        }
        let slot = match self.ids.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.ids.len() <= SegmentSlot::MAX as usize => {
                self.ids.push(None);
                self.ids.len() - 1
            }
            None => return Err(Error::TooManySegments),
        };
        self.ids[slot] = Some(id);
        self.by_id.insert(id, slot as SegmentSlot);
        Ok(slot as SegmentSlot)
    }

    /// The slot of `id`, if it has one.
    pub fn slot(&self, id: u32) -> Option<SegmentSlot> {
        self.by_id.get(&id).copied()
    }

    /// The segment id in `slot`.
    pub fn id(&self, slot: SegmentSlot) -> Option<u32> {
        self.ids.get(slot as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_24_bit_ids_into_dense_slots() {
        let mut s = SegmentSlots::new();
        assert_eq!(s.intern(100).unwrap(), 0);
        assert_eq!(s.intern(MAX_SEGMENT_ID).unwrap(), 1);
        assert_eq!(s.intern(100).unwrap(), 0);
        assert_eq!((s.slot(MAX_SEGMENT_ID), s.id(1)), (Some(1), Some(MAX_SEGMENT_ID)));
        assert!(matches!(s.intern(MAX_SEGMENT_ID + 1), Err(Error::SegmentOutOfRange(_))));
    }
}
