//! The table and its single (serialized) writer.

use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::bucket::{Bucket, EMPTY, SLOTS, TOMBSTONE};
use crate::sync::{fence, wait_turn, AtomicU64, AtomicUsize, Ordering};
use crate::{Error, Key, Reader, Result, Search, Value};

/// Largest capacity a table can be created with.
pub const MAX_CAPACITY: usize = 1 << 26;
/// Reader handles a table can hand out (one per worker thread).
pub const DEFAULT_MAX_READERS: usize = 64;
/// Tables whose buckets take more than this are prefetched in batched lookups (about the
/// size of an L2 cache; below it the prefetch pass is pure overhead).
const PREFETCH_ABOVE_BYTES: usize = 1 << 20;
/// Removed slots waiting for a grace period before the writer forces one.
const LIMBO_LIMIT: usize = 4096;

/// The concurrent MAC table. Share it in an `Arc`; workers read through [`Reader`]s, the
/// control thread writes through `&self` methods (serialized by an internal lock).
pub struct MacTable {
    pub(crate) buckets: Box<[Bucket]>,
    /// 64 - log2(bucket count): multiplicative hashing keeps the top bits.
    pub(crate) shift: u32,
    capacity: usize,
    /// Whether batched lookups prefetch: only when the buckets outgrow the L2 cache.
    pub(crate) prefetch: bool,
    /// How readers compare keys: the fastest this CPU runs, unless chosen.
    search: Search,
    len: AtomicUsize,
    /// Per reader: a sequence number, odd while that reader is inside a lookup.
    pub(crate) reader_seqs: Box<[CachePadded<AtomicU64>]>,
    reader_in_use: Mutex<Vec<bool>>,
    writer: Mutex<Limbo>,
}

/// Slots whose key was removed and that no new key may take before a grace period, and
/// the writer's own counters.
struct Limbo {
    slots: Vec<(u32, u8)>,
    stats: WriterStats,
}

/// What the writer has had to do, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Keys moved from their primary to their secondary bucket to make room.
    pub moves: u64,
    /// Grace periods waited for (each lets removed slots be reused).
    pub grace_periods: u64,
}

impl MacTable {
    /// A table for up to `capacity` entries, with room for 64 reader handles.
    pub fn new(capacity: usize) -> Result<MacTable> {
        MacTable::with_readers(capacity, DEFAULT_MAX_READERS)
    }

    /// A table for up to `capacity` entries and `max_readers` reader handles.
    pub fn with_readers(capacity: usize, max_readers: usize) -> Result<MacTable> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Error::BadCapacity(capacity));
        }
        // Two entries per bucket at full capacity, out of five slots. Keys fill their
        // primary first; when both choices are full one key moves to its secondary (see
        // `move_one_to_secondary`). 4 M random keys fit (checked in the tests).
        let buckets = (capacity.div_ceil(2)).next_power_of_two().max(2);
        Ok(MacTable {
            buckets: bucket_array(buckets),
            shift: 64 - buckets.trailing_zeros(),
            capacity,
            prefetch: buckets * std::mem::size_of::<Bucket>() > PREFETCH_ABOVE_BYTES,
            search: Search::detect(),
            len: AtomicUsize::new(0),
            reader_seqs: (0..max_readers).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
            reader_in_use: Mutex::new(vec![false; max_readers]),
            writer: Mutex::new(Limbo { slots: Vec::new(), stats: WriterStats::default() }),
        })
    }

    /// The same table with readers comparing keys the way `search` does (to compare the
    /// ways, or to test both); fails when this CPU cannot run it.
    pub fn with_search(mut self, search: Search) -> Result<MacTable> {
        if !search.is_supported() {
            return Err(Error::SearchUnsupported(search));
        }
        self.search = search;
        Ok(self)
    }

    /// How readers compare keys.
    pub fn search(&self) -> Search {
        self.search
    }

    /// A handle for one reading thread; fails when all handles are taken.
    pub fn reader(self: &Arc<Self>) -> Result<Reader> {
        let mut used = self.reader_in_use.lock();
        let id = used.iter().position(|u| !u).ok_or(Error::TooManyReaders(used.len()))?;
        used[id] = true;
        let seq = self.reader_seqs[id].load(Ordering::Relaxed);
        Ok(Reader::new(self.clone(), id, seq))
    }

    pub(crate) fn release_reader(&self, id: usize) {
        self.reader_in_use.lock()[id] = false;
    }

    /// The buckets and their hash shift, copied out for a pass of lookups: the compiler
    /// keeps them in registers instead of reloading them after every Acquire load.
    #[inline(always)]
    pub(crate) fn probe(&self) -> Probe<'_> {
        Probe { buckets: &self.buckets, shift: self.shift, search: self.search }
    }

    /// The two candidate buckets of a key.
    #[inline(always)]
    pub(crate) fn bucket_pair(&self, key: u64) -> (usize, usize) {
        self.probe().bucket_pair(key)
    }

    /// Inserts or updates `key`; returns the value it replaced.
    pub fn insert(&self, key: Key, value: Value) -> Result<Option<Value>> {
        let k = key.raw();
        if key.is_multicast() || key.mac() == 0 {
            return Err(Error::InvalidKey(key));
        }
        let mut limbo = self.writer.lock();
        let (a, b) = self.bucket_pair(k);
        for bi in [a, b] {
            let bucket = &self.buckets[bi];
            if let Some(i) = bucket.position(k) {
                // Readers see the old or the new value, both written for this key.
                let old = bucket.values[i].swap(value.raw(), Ordering::Release);
                return Ok(Value::from_raw(old));
            }
        }
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            return Err(Error::Full { capacity: self.capacity });
        }
        let (ba, bb) = (&self.buckets[a], &self.buckets[b]);
        if ba.empty_slots() == 0 && bb.empty_slots() == 0 && ba.tombstones() + bb.tombstones() > 0 {
            self.reclaim(&mut limbo);
        }
        if ba.empty_slots() == 0 && bb.empty_slots() == 0 {
            if !self.move_one_to_secondary(&mut limbo, [a, b]) {
                return Err(Error::BucketsFull(key));
            }
            self.reclaim(&mut limbo);
        }
        let (ea, eb) = (ba.empty_slots(), bb.empty_slots());
        if ea == 0 && eb == 0 {
            return Err(Error::BucketsFull(key));
        }
        // First fit: the primary while it has room, so most lookups read one bucket.
        let bucket = if ea > 0 {
            ba
        } else {
            // Counted before the key is published: a reader that finds the key's primary
            // without it then looks in the secondary.
            ba.overflow.fetch_add(1, Ordering::Release);
            bb
        };
        let i = (0..SLOTS).find(|&i| bucket.keys[i].load(Ordering::Relaxed) == EMPTY).expect("counted an empty slot");
        // Value first, then the key with Release: a reader that sees the key sees the value.
        bucket.values[i].store(value.raw(), Ordering::Relaxed);
        bucket.keys[i].store(k, Ordering::Release);
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&self, key: Key) -> Option<Value> {
        let k = key.raw();
        let mut limbo = self.writer.lock();
        let (a, b) = self.bucket_pair(k);
        for bi in [a, b] {
            let bucket = &self.buckets[bi];
            if let Some(i) = bucket.position(k) {
                let old = Value::from_raw(bucket.values[i].load(Ordering::Relaxed));
                // The value stays: a reader that matched the key just before may still read it.
                bucket.keys[i].store(TOMBSTONE, Ordering::Release);
                if bi == b {
                    self.buckets[a].overflow.fetch_sub(1, Ordering::Release);
                }
                limbo.slots.push((bi as u32, i as u8));
                self.len.fetch_sub(1, Ordering::Relaxed);
                if limbo.slots.len() >= LIMBO_LIMIT {
                    self.reclaim(&mut limbo);
                }
                return old;
            }
        }
        None
    }

    /// Removes every entry for which `remove` returns true (e.g. all entries of a port);
    /// returns how many were removed.
    pub fn remove_where(&self, mut remove: impl FnMut(Key, Value) -> bool) -> usize {
        let doomed: Vec<Key> = self.entries().into_iter().filter(|(k, v)| remove(*k, *v)).map(|(k, _)| k).collect();
        doomed.into_iter().filter(|k| self.remove(*k).is_some()).count()
    }

    /// Writer-side read of one key (takes the writer lock; workers use a [`Reader`]).
    pub fn get(&self, key: Key) -> Option<Value> {
        let _w = self.writer.lock();
        self.find(key.raw())
    }

    /// The value of `key`, reading its secondary bucket only when the primary overflowed.
    #[inline(always)]
    pub(crate) fn find(&self, key: u64) -> Option<Value> {
        self.probe().find(key)
    }

    /// Every entry, as a consistent snapshot (writes are held off while it is taken),
    /// sorted by key.
    pub fn entries(&self) -> Vec<(Key, Value)> {
        let _w = self.writer.lock();
        let mut out = Vec::with_capacity(self.len());
        for bucket in self.buckets.iter() {
            for i in 0..SLOTS {
                let k = bucket.keys[i].load(Ordering::Relaxed);
                if k != EMPTY && k != TOMBSTONE {
                    if let Some(v) = Value::from_raw(bucket.values[i].load(Ordering::Relaxed)) {
                        out.push((Key::from_raw(k), v));
                    }
                }
            }
        }
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity fixed at creation.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.lock().stats
    }

    /// Bytes of memory the table holds (buckets, reader counters, limbo list).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
            + std::mem::size_of_val(&*self.reader_seqs)
            + self.writer.lock().slots.capacity() * std::mem::size_of::<(u32, u8)>()
            + std::mem::size_of::<Self>()
    }

    /// Makes room in one of `buckets` by moving a key that sits in its primary bucket to
    /// its secondary (one cuckoo step, only ever primary to secondary). Order matters for
    /// readers: count the overflow, publish the copy, then tombstone the original, so a
    /// reader always finds the key in one place or the other. The freed slot is reusable
    /// after the next grace period.
    fn move_one_to_secondary(&self, limbo: &mut Limbo, buckets: [usize; 2]) -> bool {
        for bi in buckets {
            let from = &self.buckets[bi];
            for i in 0..SLOTS {
                let k = from.keys[i].load(Ordering::Relaxed);
                if k == EMPTY || k == TOMBSTONE {
                    continue;
                }
                let (primary, secondary) = self.bucket_pair(k);
                if primary != bi {
                    continue;
                }
                let to = &self.buckets[secondary];
                let Some(j) = (0..SLOTS).find(|&j| to.keys[j].load(Ordering::Relaxed) == EMPTY) else { continue };
                from.overflow.fetch_add(1, Ordering::Release);
                to.values[j].store(from.values[i].load(Ordering::Relaxed), Ordering::Relaxed);
                to.keys[j].store(k, Ordering::Release);
                from.keys[i].store(TOMBSTONE, Ordering::Release);
                limbo.slots.push((bi as u32, i as u8));
                limbo.stats.moves += 1;
                return true;
            }
        }
        false
    }

    /// Waits for a grace period, then frees every slot in limbo.
    fn reclaim(&self, limbo: &mut Limbo) {
        self.synchronize();
        limbo.stats.grace_periods += 1;
        for &(b, i) in &limbo.slots {
            self.buckets[b as usize].keys[i as usize].store(EMPTY, Ordering::Relaxed);
        }
        limbo.slots.clear();
    }

    /// Returns once every reader that was inside a lookup when it was called has left it.
    /// Readers that enter later see every tombstone stored before (both sides fence).
    fn synchronize(&self) {
        fence(Ordering::SeqCst);
        for seq in self.reader_seqs.iter() {
            let s = seq.load(Ordering::Acquire);
            if s & 1 == 1 {
                let mut turn = 0;
                while seq.load(Ordering::Acquire) == s {
                    wait_turn(turn);
                    turn = turn.saturating_add(1);
                }
            }
        }
    }

    /// Entries per bucket, for the docs and the tests: how full the fullest buckets are.
    pub fn occupancy_histogram(&self) -> [usize; SLOTS + 1] {
        let _w = self.writer.lock();
        let mut h = [0; SLOTS + 1];
        for bucket in self.buckets.iter() {
            h[SLOTS - bucket.empty_slots() - bucket.tombstones()] += 1;
        }
        h
    }
}

/// A transparent huge page (x86-64). Bucket arrays of two or more (4 MiB: 64 K buckets,
/// capacities over 64 K) ask the kernel for them.
const HUGE_PAGE: usize = 2 << 20;

/// `n` empty buckets. Large arrays are backed by transparent huge pages where the kernel
/// allows them (`madvise` mode included): at 4 M entries the 128 MiB of buckets span
/// 32 K small pages, far beyond the TLB, and nearly every lookup paid a page walk.
fn bucket_array(n: usize) -> Box<[Bucket]> {
    let mut v: Vec<Bucket> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<Bucket>();
    #[cfg(all(target_os = "linux", not(loom)))]
    if bytes >= 2 * HUGE_PAGE {
        // The whole huge pages inside the allocation, advised before the first touch so
        // that the first faults already get huge pages.
        let start = (v.as_mut_ptr() as usize).next_multiple_of(HUGE_PAGE);
        let end = (v.as_mut_ptr() as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // MADV_HUGEPAGE changes only how the kernel backs the range, never its
            // contents; a kernel without THP answers EINVAL, which is harmless.
            // SAFETY: [start, end) lies inside the allocation `v` owns, page aligned.
            let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    let _ = (bytes, HUGE_PAGE);
    v.extend((0..n).map(|_| Bucket::new()));
    v.into_boxed_slice()
}

/// The read side's view of a table: its buckets and the shift that maps a hash to one.
#[derive(Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub(crate) buckets: &'a [Bucket],
    /// 64 - log2(bucket count): multiplicative hashing keeps the top bits.
    pub(crate) shift: u32,
    pub(crate) search: Search,
}

impl<'a> Probe<'a> {
    /// A key's primary bucket (multiplicative hashing keeps the product's top bits).
    #[inline(always)]
    fn primary_index(self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// A key's secondary bucket, never its primary.
    #[inline(always)]
    fn secondary_index(self, key: u64, primary: usize) -> usize {
        let b = ((key ^ (key >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> self.shift) as usize;
        if b == primary {
            b ^ 1
        } else {
            b
        }
    }

    /// The two candidate buckets of a key.
    #[inline(always)]
    fn bucket_pair(self, key: u64) -> (usize, usize) {
        let a = self.primary_index(key);
        (a, self.secondary_index(key, a))
    }

    /// Bucket `i`, where `i` came from [`Probe::primary_index`] or
    /// [`Probe::secondary_index`]: both are in bounds by construction, so the hot path
    /// skips the bounds check.
    #[inline(always)]
    fn bucket(self, i: usize) -> &'a Bucket {
        debug_assert!(i < self.buckets.len());
        // There are 2^(64 - shift) buckets (see `MacTable::with_readers`), and a u64
        // shifted right by `shift` is below 2^(64 - shift). The secondary index flips bit
        // 0 of such an index, and the count is even (at least 2), so it stays below it.
        // SAFETY: `i` is in bounds by construction (above).
        unsafe { self.buckets.get_unchecked(i) }
    }

    /// The primary bucket of a key, for prefetching.
    #[inline(always)]
    pub(crate) fn primary(self, key: u64) -> &'a Bucket {
        self.bucket(self.primary_index(key))
    }

    /// The value of `key`, reading its secondary bucket only when the primary overflowed.
    #[inline(always)]
    pub(crate) fn find(self, key: u64) -> Option<Value> {
        // The markers EMPTY and TOMBSTONE are keys too (the zero MAC in segment slot 0,
        // the broadcast MAC in slot 0xffff): they would match marked slots, whose values
        // are stale. Never stored, so never found. A branch that is never taken in
        // practice costs less than masking every answer.
        if key.wrapping_add(1) <= 1 {
            return None;
        }
        let a = self.primary_index(key);
        let primary = self.bucket(a);
        let v = primary.find_raw(key, self.search);
        if v == 0 && primary.overflow.load(Ordering::Acquire) != 0 {
            return self.bucket(self.secondary_index(key, a)).find(key, self.search);
        }
        Value::from_raw(v)
    }
}
