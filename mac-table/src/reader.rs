//! The workers' side: wait-free lookups, one at a time or in batches with prefetching.

use std::sync::Arc;

use crate::sync::{fence, prefetch, Ordering};
use crate::table::Probe;
use crate::{Key, MacTable, Search, Value};

/// Most keys a batched lookup handles in one pass (a burst).
pub const BATCH: usize = 32;

/// One reading thread's handle. A lookup is a critical section: its sequence number is odd
/// from entry to exit, which is all the writer waits on before reusing a removed slot.
/// Nothing in a lookup waits for the writer.
pub struct Reader {
    table: Arc<MacTable>,
    id: usize,
    seq: u64,
}

impl Reader {
    pub(crate) fn new(table: Arc<MacTable>, id: usize, seq: u64) -> Reader {
        Reader { table, id, seq }
    }

    /// The table this reader reads.
    pub fn table(&self) -> &Arc<MacTable> {
        &self.table
    }

    /// Looks up one key.
    #[inline]
    pub fn lookup(&mut self, key: Key) -> Option<Value> {
        let Reader { table, id, seq } = self;
        enter(table, *id, seq);
        let v = table.find(key.raw());
        exit(table, *id, seq);
        v
    }

    /// Looks up `keys` (any number, in passes of [`BATCH`]) into `out[..keys.len()]`;
    /// returns the number of hits. Each pass hashes every key and prefetches its primary
    /// bucket before the first compare, so the cache misses overlap.
    ///
    /// Panics if `out` is shorter than `keys`.
    #[inline]
    pub fn lookup_batch(&mut self, keys: &[Key], out: &mut [Option<Value>]) -> usize {
        assert!(out.len() >= keys.len(), "lookup_batch: out is shorter than keys");
        let mut hits = 0;
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            hits += self.pass(keys, out);
        }
        hits
    }

    #[inline(always)]
    fn pass(&mut self, keys: &[Key], out: &mut [Option<Value>]) -> usize {
        let Reader { table, id, seq } = self;
        let t = table.probe();
        // A table that fits in the caches gains nothing from a prefetch pass.
        if table.prefetch {
            for k in keys {
                prefetch(t.primary(k.raw()));
            }
        }
        enter(table, *id, seq);
        // One copy of the loop per search, so the choice is not made again for every key.
        let hits = match t.search {
            Search::Sse41 => find_all(Probe { search: Search::Sse41, ..t }, keys, out),
            Search::Scalar => find_all(Probe { search: Search::Scalar, ..t }, keys, out),
        };
        exit(table, *id, seq);
        hits
    }
}

#[inline(always)]
fn find_all(t: Probe<'_>, keys: &[Key], out: &mut [Option<Value>]) -> usize {
    let mut hits = 0;
    for (k, o) in keys.iter().zip(out.iter_mut()) {
        let v = t.find(k.raw());
        hits += v.is_some() as usize;
        *o = v;
    }
    hits
}

/// Opens reader `id`'s critical section: its sequence number becomes odd.
#[inline(always)]
fn enter(table: &MacTable, id: usize, seq: &mut u64) {
    *seq += 1;
    table.reader_seqs[id].store(*seq, Ordering::Relaxed);
    // Pairs with the writer's fence in `synchronize`: either the writer sees us inside, or
    // we see every tombstone it stored before looking.
    fence(Ordering::SeqCst);
}

/// Closes reader `id`'s critical section: its sequence number becomes even again.
#[inline(always)]
fn exit(table: &MacTable, id: usize, seq: &mut u64) {
    *seq += 1;
    // Release: our loads of slots happen before the writer sees us out.
    table.reader_seqs[id].store(*seq, Ordering::Release);
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A reader dropped inside a lookup (its thread panicked there) must not hold up
        // the writer's grace periods for ever.
        if self.seq & 1 == 1 {
            exit(&self.table, self.id, &mut self.seq);
        }
        self.table.release_reader(self.id);
    }
}
