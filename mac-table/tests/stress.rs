//! Readers against a busy writer, for real threads: every value a reader sees was written
//! for that key, and keys the writer never touches are always found.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mac_table::{EntryKind, Key, MacTable, Search, Value};

const STABLE: u64 = 20_000;
const CHURN: u64 = 2_000;

fn key(i: u64) -> Key {
    Key::new(0x0200_0000_0000 | i, (i % 4) as u16)
}

/// A value names its key: port = key index, so a value read for another key is caught.
/// Its kind flips with the version, so that every update writes another word.
fn value_for(i: u64, version: u8) -> Value {
    Value::new(i as u16, if version % 2 == 0 { EntryKind::Local } else { EntryKind::Anycast })
}

#[test]
fn readers_never_see_torn_entries_or_false_misses_scalar_search() {
    stress(Search::Scalar);
}

/// The vector search reads keys with 16-byte loads from inline assembly: the same checks.
#[test]
fn readers_never_see_torn_entries_or_false_misses_sse41_search() {
    if !Search::Sse41.is_supported() {
        eprintln!("skipped: this CPU has no SSE4.1, and tables never use that search here");
        return;
    }
    stress(Search::Sse41);
}

fn stress(search: Search) {
    // Small enough that churned keys keep reusing each other's slots.
    let t = Arc::new(MacTable::new((STABLE + CHURN / 2) as usize).unwrap().with_search(search).unwrap());
    for i in 0..STABLE {
        t.insert(key(i), value_for(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|seed| {
            let (t, stop, lookups) = (t.clone(), stop.clone(), lookups.clone());
            std::thread::spawn(move || {
                let mut r = t.reader().unwrap();
                let mut x = 0x9e37_79b9u64 + seed;
                let mut keys = [key(0); 32];
                let mut out = [None; 32];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut idx = [0u64; 32];
                    for j in 0..32 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        idx[j] = (x >> 33) % (STABLE + CHURN);
                        keys[j] = key(idx[j]);
                    }
                    r.lookup_batch(&keys, &mut out);
                    for j in 0..32 {
                        let i = idx[j];
                        match out[j] {
                            Some(v) => {
                                assert_eq!(v.port() as u64, i, "torn read: value of key {} seen for key {i}", v.port())
                            }
                            None => assert!(i >= STABLE, "false miss for untouched key {i}"),
                        }
                        if i < STABLE {
                            assert_eq!(out[j], Some(value_for(i, 0)));
                        }
                    }
                    n += 32;
                }
                lookups.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    // The writer churns keys STABLE..STABLE+CHURN: insert, update, remove, over and over.
    let start = Instant::now();
    let mut writes = 0u64;
    let mut version = 0u8;
    while start.elapsed() < Duration::from_secs(3) {
        version = version.wrapping_add(1);
        for i in STABLE..STABLE + CHURN {
            if (i + version as u64) % 3 == 0 {
                t.remove(key(i));
            } else if t.insert(key(i), value_for(i, version)).is_ok() {
                writes += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("a reader saw a torn entry or a false miss");
    }
    let total = lookups.load(Ordering::Relaxed);
    eprintln!("{search:?}: {total} lookups against {writes} writes");
    assert!(total > 100_000 && writes > 10_000, "both sides made progress");
}
