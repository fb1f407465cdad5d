//! The 64-byte bucket: the unit of a lookup, one cache line.
//!
//! ```text
//! offset  0..40   keys:   [AtomicU64; 5]   (MAC | segment slot << 48; EMPTY, TOMBSTONE)
//! offset 40..60   values: [AtomicU32; 5]   (Value packed, never 0 for a live key)
//! offset 60..64   overflow: AtomicU32      (keys whose primary is this bucket, stored in
//!                                             their secondary bucket)
//! ```
//! 5 × 8 + 5 × 4 + 4 = 64 bytes, aligned to 64. Keys go to their primary bucket while it
//! has room, so a lookup reads one cache line, and a second one only when the primary's
//! overflow count says some key of it lives in its secondary.

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::Value;

/// Five slots per bucket; two under loom, to keep the model checker's state space small.
pub(crate) const SLOTS: usize = if cfg!(loom) { 2 } else { 5 };
/// A slot that never held a key, or whose key's grace period is over.
pub(crate) const EMPTY: u64 = 0;
/// A removed key's slot, not reusable until every reader that might still be reading it
/// has left its critical section. Its MAC (ff:ff:..) is a group address: never a key.
pub(crate) const TOMBSTONE: u64 = u64::MAX;

#[repr(C, align(64))]
pub(crate) struct Bucket {
    pub(crate) keys: [AtomicU64; SLOTS],
    pub(crate) values: [AtomicU32; SLOTS],
    pub(crate) overflow: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

impl Bucket {
    pub(crate) fn new() -> Bucket {
        Bucket {
            keys: std::array::from_fn(|_| AtomicU64::new(EMPTY)),
            values: std::array::from_fn(|_| AtomicU32::new(0)),
            overflow: AtomicU32::new(0),
        }
    }

    /// Reader side: the packed value stored for `key`, or 0. Branch-free: which slot holds
    /// a key is random, and a branch per slot would mispredict on most lookups. The
    /// Acquire loads of the keys come before the value load, so the value read is the one
    /// written before the matching key was published, or a later one for the same key.
    #[inline(always)]
    pub(crate) fn find_raw(&self, key: u64) -> u32 {
        // One bit per matching slot. A reader can see a key in two slots at once (removed
        // from one and put back into another while it read): both values are that key's,
        // and the first match is taken. With no match the index is clamped in bounds and
        // the value masked to 0.
        let mut hits = 0u32;
        for i in 0..SLOTS {
            hits |= ((self.keys[i].load(Ordering::Acquire) == key) as u32) << i;
        }
        let slot = (hits.trailing_zeros() as usize).min(SLOTS - 1);
        self.values[slot].load(Ordering::Acquire) & ((hits != 0) as u32).wrapping_neg()
    }

    /// Reader side: as [`Bucket::find_raw`], as a value.
    #[inline(always)]
    pub(crate) fn find(&self, key: u64) -> Option<Value> {
        Value::from_raw(self.find_raw(key))
    }

    /// Writer side: the slot holding `key`.
    pub(crate) fn position(&self, key: u64) -> Option<usize> {
        (0..SLOTS).find(|&i| self.keys[i].load(Ordering::Relaxed) == key)
    }

    /// Writer side: slots ready for a new key.
    pub(crate) fn empty_slots(&self) -> usize {
        (0..SLOTS).filter(|&i| self.keys[i].load(Ordering::Relaxed) == EMPTY).count()
    }

    pub(crate) fn tombstones(&self) -> usize {
        (0..SLOTS).filter(|&i| self.keys[i].load(Ordering::Relaxed) == TOMBSTONE).count()
    }
}
