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
use crate::{Search, Value};

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
    /// a key is random, and a branch per slot would mispredict on most lookups. The keys
    /// are read with Acquire before the value is, so the value read is the one written
    /// before the matching key was published, or a later one for the same key.
    #[inline(always)]
    pub(crate) fn find_raw(&self, key: u64, search: Search) -> u32 {
        // One bit per matching slot. A reader can see a key in two slots at once (removed
        // from one and put back into another while it read): both values are that key's,
        // and the first match is taken. With no match the index is clamped in bounds and
        // the value masked to 0.
        let hits = match search {
            // SAFETY: `Search::Sse41` is only ever chosen on a CPU that has SSE4.1
            // (`Search::detect`, `MacTable::with_search`).
            Search::Sse41 => unsafe { self.match_mask_sse41(key) },
            Search::Scalar => self.match_mask_scalar(key),
        };
        let slot = (hits | 1 << (SLOTS - 1)).trailing_zeros() as usize;
        self.values[slot].load(Ordering::Acquire) & ((hits != 0) as u32).wrapping_neg()
    }

    /// Bit `i` set when slot `i` holds `key`: one Acquire load and compare per slot.
    #[inline(always)]
    fn match_mask_scalar(&self, key: u64) -> u32 {
        let mut hits = 0u32;
        for i in 0..SLOTS {
            hits |= ((self.keys[i].load(Ordering::Acquire) == key) as u32) << i;
        }
        hits
    }

    /// As [`Bucket::match_mask_scalar`], with three loads and three compares of 128-bit
    /// vectors instead of five of each: at 1 K entries, where everything is in L1 and only
    /// instructions count, lookups are about 20 % faster (see DESIGN.md).
    ///
    /// # Safety
    /// The CPU must have SSE4.1 (`pcmpeqq`).
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    #[inline(always)]
    unsafe fn match_mask_sse41(&self, key: u64) -> u32 {
        let hits: u32;
        // The block only reads bytes 0..40 of this live bucket: keys 0-1 and 2-3 with
        // aligned 16-byte loads (the bucket is 64-byte aligned), key 4 with an 8-byte load.
        // Each key is an aligned quadword, which x86 reads atomically within any load
        // (Intel SDM vol. 3A, 9.1.1; on CPUs with AVX the 16-byte loads are atomic as a
        // whole), so the block reads what five Relaxed loads would: never a torn key. The
        // protocol needs nothing more (it never relies on two keys being read at one
        // instant), and the Acquire fence after the block gives those loads the ordering
        // `match_mask_scalar` gets from its Acquire loads; on x86 it is free.
        // SAFETY: the caller guarantees SSE4.1; reads inside this bucket only, each key
        // read atomically (above); no stack, no writes to memory.
        unsafe {
            core::arch::asm!(
                "movq {k}, {key}",
                "punpcklqdq {k}, {k}",
                "movdqa {a}, xmmword ptr [{b}]",
                "pcmpeqq {a}, {k}",
                "movdqa {c}, xmmword ptr [{b} + 16]",
                "pcmpeqq {c}, {k}",
                "movq {d}, qword ptr [{b} + 32]",
                "pcmpeqq {d}, {k}",
                "movmskpd {h:e}, {a}",
                "movmskpd {t:e}, {c}",
                "lea {h:e}, [{h:r} + 4*{t:r}]",
                "movmskpd {t:e}, {d}",
                "and {t:e}, 1",
                "shl {t:e}, 4",
                "or {h:e}, {t:e}",
                key = in(reg) key,
                b = in(reg) self as *const Bucket,
                k = out(xmm_reg) _,
                a = out(xmm_reg) _,
                c = out(xmm_reg) _,
                d = out(xmm_reg) _,
                h = out(reg) hits,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
        crate::sync::fence(Ordering::Acquire);
        hits
    }

    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    #[inline(always)]
    unsafe fn match_mask_sse41(&self, key: u64) -> u32 {
        self.match_mask_scalar(key)
    }

    /// Reader side: as [`Bucket::find_raw`], as a value.
    #[inline(always)]
    pub(crate) fn find(&self, key: u64, search: Search) -> Option<Value> {
        Value::from_raw(self.find_raw(key, search))
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
