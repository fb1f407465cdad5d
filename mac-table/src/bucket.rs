//! The 64-byte bucket: the unit of a lookup, one cache line.
//!
//! ```text
//! offset  0..40   keys:   [AtomicU64; 5]   (MAC | segment slot << 48; EMPTY, TOMBSTONE)
//! offset 40..60   values: [AtomicU32; 5]   (Value packed, never 0 for a live key)
//! offset 60..64   spare:  AtomicU32
//! ```
//! 5 × 8 + 5 × 4 + 4 = 64 bytes, aligned to 64: a lookup that hits in its first bucket
//! touches exactly one cache line, and a miss touches two.

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
    _spare: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

impl Bucket {
    pub(crate) fn new() -> Bucket {
        Bucket {
            keys: std::array::from_fn(|_| AtomicU64::new(EMPTY)),
            values: std::array::from_fn(|_| AtomicU32::new(0)),
            _spare: AtomicU32::new(0),
        }
    }

    /// Reader side: the value stored for `key`, if the bucket holds it. The Acquire load
    /// of the key makes the value written before it (or a later one for the same key)
    /// visible.
    #[inline(always)]
    pub(crate) fn find(&self, key: u64) -> Option<Value> {
        for i in 0..SLOTS {
            if self.keys[i].load(Ordering::Acquire) == key {
                return Value::from_raw(self.values[i].load(Ordering::Acquire));
            }
        }
        None
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
