//! Behaviour of the table through its public API: single-threaded rules, a property test
//! against a HashMap model, and a fill to 4 M entries.

use std::collections::HashMap;
use std::sync::Arc;

use mac_table::{EntryKind, Error, Key, MacTable, Search, Value, BATCH};
use proptest::prelude::*;

/// MACs as the table knows them: 48-bit integers, first octet most significant.
const BROADCAST: u64 = 0xffff_ffff_ffff;

fn mac(i: u64) -> u64 {
    // Locally administered unicast: 02:xx:...
    0x02_00_00_00_00_00 | (i & 0xff_ffff_ffff)
}

fn key(i: u64, seg: u16) -> Key {
    Key::new(mac(i), seg)
}

fn val(port: u16) -> Value {
    Value::new(port, EntryKind::Local)
}

#[test]
fn insert_update_remove_and_lookup() {
    let t = Arc::new(MacTable::new(1000).unwrap());
    let mut r = t.reader().unwrap();
    assert_eq!(t.insert(key(1, 10), val(1)).unwrap(), None);
    assert_eq!(t.insert(key(1, 11), Value::new(9, EntryKind::Anycast)).unwrap(), None, "same MAC, other segment");
    assert_eq!(r.lookup(key(1, 10)), Some(val(1)));
    assert_eq!(r.lookup(key(1, 11)).map(|v| (v.port(), v.kind())), Some((9, EntryKind::Anycast)));
    assert_eq!(r.lookup(key(2, 10)), None);
    assert_eq!(t.insert(key(1, 10), val(2)).unwrap(), Some(val(1)), "update returns the old value");
    assert_eq!(t.get(key(1, 10)), Some(val(2)));
    assert_eq!(t.len(), 2);
    assert_eq!(t.remove(key(1, 10)), Some(val(2)));
    assert_eq!(t.remove(key(1, 10)), None);
    assert_eq!(r.lookup(key(1, 10)), None);
    assert_eq!(t.len(), 1);
    assert_eq!(t.entries(), vec![(key(1, 11), Value::new(9, EntryKind::Anycast))]);
}

#[test]
fn bad_keys_and_capacities_are_refused() {
    let t = MacTable::new(4).unwrap();
    for bad in [BROADCAST, 0, 0x0100_5e00_0001] {
        assert_eq!(t.insert(Key::new(bad, 1), val(1)), Err(Error::InvalidKey(Key::new(bad, 1))));
    }
    assert!(matches!(MacTable::new(0), Err(Error::BadCapacity(0))));
    assert!(matches!(MacTable::new(mac_table::MAX_CAPACITY + 1), Err(Error::BadCapacity(_))));
    assert!(t.is_empty());
}

/// The raw words the table uses as slot markers (all zeros: never used; all ones:
/// removed) are keys too, of the zero MAC in segment slot 0 and of the broadcast MAC in
/// slot 0xffff. Looking them up must find nothing, even once removed keys have left their
/// old values behind in slots that are marked again.
#[test]
fn the_marker_words_are_never_found() {
    let sentinels = [Key::new(0, 0), Key::new(BROADCAST, 0xffff)];
    for search in searches() {
        let t = Arc::new(MacTable::new(64).unwrap().with_search(search).unwrap());
        let mut r = t.reader().unwrap();
        // 5,000 removals: more than the writer lets wait, so it reclaims (marks the slots
        // empty again, values left in place) at least once.
        for round in 0..100u64 {
            for i in 0..50 {
                t.insert(key(round * 50 + i, 0), val(i as u16 + 1)).unwrap();
            }
            if round % 2 == 1 {
                // Half the rounds look up while slots are removed but not yet reclaimed.
                for k in sentinels {
                    assert_eq!(r.lookup(k), None, "{search:?} round {round}");
                }
            }
            for i in 0..50 {
                t.remove(key(round * 50 + i, 0)).unwrap();
                if i == 25 {
                    for k in sentinels {
                        assert_eq!(r.lookup(k), None, "{search:?} round {round}: {k:?} with tombstones");
                    }
                }
            }
            let mut out = [Some(val(9)); 2];
            assert_eq!(r.lookup_batch(&sentinels, &mut out), 0);
            assert_eq!(out, [None, None], "{search:?} round {round}");
        }
        assert!(t.writer_stats().grace_periods > 0, "{search:?}: reclaimed slots were checked");
    }
}

/// Every key search this CPU runs (the scalar one always; SSE4.1 on most x86-64).
fn searches() -> Vec<Search> {
    [Search::Scalar, Search::Sse41].into_iter().filter(|s| s.is_supported()).collect()
}

/// The searches answer alike: same random table contents (with removals, so tombstones and
/// reused slots are in the buckets), every present key, every removed key, absent keys.
#[test]
fn every_search_gives_the_same_answers() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ops: Vec<(Key, bool)> =
        (0..20_000).map(|_| (key(next() % 3000, (next() % 3) as u16), next() % 4 == 0)).collect();
    // Every key the operations touched (present or removed), absent keys, the markers.
    let mut queries: Vec<Key> = ops.iter().map(|&(k, _)| k).collect();
    queries.sort();
    queries.dedup();
    queries.extend((0..1000).map(|i| key(i, 7)));
    queries.extend([Key::new(0, 0), Key::new(BROADCAST, 0xffff)]);
    let mut answers = Vec::new();
    for search in searches() {
        let t = Arc::new(MacTable::new(2048).unwrap().with_search(search).unwrap());
        assert_eq!(t.search(), search);
        for (i, &(k, remove)) in ops.iter().enumerate() {
            if remove {
                t.remove(k);
            } else {
                // Full tables refuse some inserts: the same ones for every search.
                let _ = t.insert(k, val(i as u16 + 1));
            }
        }
        let mut r = t.reader().unwrap();
        let single: Vec<Option<Value>> = queries.iter().map(|&k| r.lookup(k)).collect();
        let mut batched = vec![None; queries.len()];
        r.lookup_batch(&queries, &mut batched);
        assert_eq!(single, batched, "{search:?}: single and batched lookups differ");
        let model: Vec<Option<Value>> = queries.iter().map(|&k| t.get(k)).collect();
        assert_eq!(single, model, "{search:?}: reader and writer-side get differ");
        assert!(single.iter().filter(|v| v.is_some()).count() > 1000, "{search:?}: the table is well filled");
        answers.push(single);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "searches disagree");
    eprintln!("searches compared: {:?}", searches());
}

#[test]
fn a_search_the_cpu_lacks_is_refused() {
    assert!(Search::Scalar.is_supported());
    assert!(Search::detect().is_supported());
    if !Search::Sse41.is_supported() {
        assert_eq!(
            MacTable::new(8).unwrap().with_search(Search::Sse41).err(),
            Some(Error::SearchUnsupported(Search::Sse41))
        );
    }
}

#[test]
fn a_full_table_is_a_typed_error_and_frees_up_after_removal() {
    let t = MacTable::new(100).unwrap();
    for i in 0..100 {
        t.insert(key(i, 0), val(i as u16)).unwrap();
    }
    assert_eq!(t.insert(key(500, 0), val(1)), Err(Error::Full { capacity: 100 }));
    assert_eq!(t.insert(key(5, 0), val(77)).unwrap(), Some(val(5)), "updates still work when full");
    assert_eq!(t.remove(key(7, 0)), Some(val(7)));
    assert_eq!(t.insert(key(500, 0), val(1)).unwrap(), None);
    assert_eq!(t.len(), 100);
}

#[test]
fn removed_slots_are_reused_after_a_grace_period() {
    // Churn far more keys than the table holds through the same few buckets.
    let t = Arc::new(MacTable::new(8).unwrap());
    let mut r = t.reader().unwrap();
    for round in 0..2000u64 {
        for i in 0..8 {
            t.insert(key(round * 8 + i, 0), val(i as u16)).unwrap();
        }
        assert_eq!(r.lookup(key(round * 8 + 3, 0)), Some(val(3)));
        for i in 0..8 {
            assert_eq!(t.remove(key(round * 8 + i, 0)), Some(val(i as u16)));
        }
    }
    assert!(t.is_empty());
}

#[test]
fn batched_lookup_matches_single_lookups() {
    let t = Arc::new(MacTable::new(10_000).unwrap());
    for i in (0..10_000).step_by(2) {
        t.insert(key(i, 1), val(i as u16)).unwrap();
    }
    let mut r = t.reader().unwrap();
    let keys: Vec<Key> = (0..100).map(|i| key(i * 97 % 10_000, 1)).collect();
    let mut out = vec![None; keys.len()];
    let hits = r.lookup_batch(&keys, &mut out);
    let expected: Vec<Option<Value>> = keys.iter().map(|k| r.lookup(*k)).collect();
    assert_eq!(out, expected);
    assert_eq!(hits, expected.iter().filter(|v| v.is_some()).count());
    assert!(hits > 0 && hits < keys.len());
    assert!(keys.len() > BATCH, "covers more than one pass");
}

#[test]
fn reader_handles_are_limited_and_returned() {
    let t = Arc::new(MacTable::with_readers(16, 2).unwrap());
    let a = t.reader().unwrap();
    let _b = t.reader().unwrap();
    assert!(matches!(t.reader(), Err(Error::TooManyReaders(2))));
    drop(a);
    assert!(t.reader().is_ok());
}

#[test]
fn remove_where_drops_a_ports_entries() {
    let t = MacTable::new(100).unwrap();
    for i in 0..30 {
        t.insert(key(i, 0), val((i % 3) as u16)).unwrap();
    }
    assert_eq!(t.remove_where(|_, v| v.port() == 1), 10);
    assert_eq!(t.len(), 20);
    assert!(t.entries().iter().all(|(_, v)| v.port() != 1));
}

#[test]
fn memory_report_counts_the_buckets() {
    let t = MacTable::new(1 << 20).unwrap();
    // 2^20 entries -> 2^19 buckets of 64 bytes = 32 MiB.
    assert!(t.memory_bytes() >= 32 << 20 && t.memory_bytes() < 33 << 20, "{}", t.memory_bytes());
}

/// Fills a table to its 4 M capacity with random unicast MACs in several segments: the
/// two-choice placement must never find both buckets full.
#[test]
fn fills_to_four_million_entries() {
    let cap = 4 << 20;
    let t = MacTable::new(cap).unwrap();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut inserted = 0;
    while inserted < cap {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let m = x & 0xfeff_ffff_ffff; // clear the group bit
        if m == 0 {
            continue;
        }
        if t.insert(Key::new(m, (x >> 60) as u16), val(1)).unwrap().is_none() {
            inserted += 1;
        }
    }
    assert_eq!(t.len(), cap);
    let h = t.occupancy_histogram();
    assert_eq!(h.iter().sum::<usize>(), cap / 2, "2 M buckets");
    eprintln!("bucket occupancy at 4 M entries (entries per bucket 0..=5): {h:?}");
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u16),
    Remove(u8),
    Lookup(u8),
    Batch(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => any::<u8>().prop_map(Op::Remove),
        2 => any::<u8>().prop_map(Op::Lookup),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Batch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of operations leaves the table agreeing with a HashMap, including the
    /// capacity limit (64 entries over 256 possible keys).
    #[test]
    fn agrees_with_a_hashmap_model(ops in proptest::collection::vec(op(), 1..400)) {
        const CAP: usize = 64;
        let t = Arc::new(MacTable::new(CAP).unwrap());
        let mut r = t.reader().unwrap();
        let mut model: HashMap<Key, Value> = HashMap::new();
        let k = |b: u8| key(b as u64, (b % 3) as u16);
        for op in ops {
            match op {
                Op::Insert(b, p) => {
                    let got = t.insert(k(b), val(p));
                    if model.contains_key(&k(b)) || model.len() < CAP {
                        prop_assert_eq!(got, Ok(model.insert(k(b), val(p))));
                    } else {
                        prop_assert_eq!(got, Err(Error::Full { capacity: CAP }));
                    }
                }
                Op::Remove(b) => prop_assert_eq!(t.remove(k(b)), model.remove(&k(b))),
                Op::Lookup(b) => prop_assert_eq!(r.lookup(k(b)), model.get(&k(b)).copied()),
                Op::Batch(bs) => {
                    let keys: Vec<Key> = bs.iter().map(|b| k(*b)).collect();
                    let mut out = vec![None; keys.len()];
                    let hits = r.lookup_batch(&keys, &mut out);
                    let expected: Vec<Option<Value>> = keys.iter().map(|x| model.get(x).copied()).collect();
                    prop_assert_eq!(hits, expected.iter().filter(|v| v.is_some()).count());
                    prop_assert_eq!(out, expected);
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
        let mut snapshot: Vec<(Key, Value)> = model.into_iter().collect();
        snapshot.sort_by_key(|(k, _)| *k);
        prop_assert_eq!(t.entries(), snapshot);
    }
}
