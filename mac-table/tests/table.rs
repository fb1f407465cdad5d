//! Behaviour of the table through its public API: single-threaded rules, a property test
//! against a HashMap model, and a fill to 4 M entries.

use std::collections::HashMap;
use std::sync::Arc;

use mac_table::{EntryKind, Error, Key, MacAddr, MacTable, Value, BATCH};
use proptest::prelude::*;

fn mac(i: u64) -> MacAddr {
    // Locally administered unicast: 02:xx:...
    MacAddr::from_u64(0x02_00_00_00_00_00 | (i & 0xff_ffff_ffff))
}

fn key(i: u64, seg: u16) -> Key {
    Key::new(mac(i), seg)
}

fn val(port: u16) -> Value {
    Value::new(port, EntryKind::Local, 0)
}

#[test]
fn insert_update_remove_and_lookup() {
    let t = Arc::new(MacTable::new(1000).unwrap());
    let mut r = t.reader().unwrap();
    assert_eq!(t.insert(key(1, 10), val(1)).unwrap(), None);
    assert_eq!(t.insert(key(1, 11), Value::new(9, EntryKind::Anycast, 3)).unwrap(), None, "same MAC, other segment");
    assert_eq!(r.lookup(key(1, 10)), Some(val(1)));
    assert_eq!(r.lookup(key(1, 11)).map(|v| (v.port(), v.kind(), v.aux())), Some((9, EntryKind::Anycast, 3)));
    assert_eq!(r.lookup(key(2, 10)), None);
    assert_eq!(t.insert(key(1, 10), val(2)).unwrap(), Some(val(1)), "update returns the old value");
    assert_eq!(t.get(key(1, 10)), Some(val(2)));
    assert_eq!(t.len(), 2);
    assert_eq!(t.remove(key(1, 10)), Some(val(2)));
    assert_eq!(t.remove(key(1, 10)), None);
    assert_eq!(r.lookup(key(1, 10)), None);
    assert_eq!(t.len(), 1);
    assert_eq!(t.entries(), vec![(key(1, 11), Value::new(9, EntryKind::Anycast, 3))]);
}

#[test]
fn bad_keys_and_capacities_are_refused() {
    let t = MacTable::new(4).unwrap();
    for bad in [MacAddr::BROADCAST, MacAddr::ZERO, MacAddr([0x01, 0, 0x5e, 0, 0, 1])] {
        assert_eq!(t.insert(Key::new(bad, 1), val(1)), Err(Error::InvalidKey(Key::new(bad, 1))));
    }
    assert!(matches!(MacTable::new(0), Err(Error::BadCapacity(0))));
    assert!(matches!(MacTable::new(mac_table::MAX_CAPACITY + 1), Err(Error::BadCapacity(_))));
    assert!(t.is_empty());
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
        let m = MacAddr::from_u64(x & 0xfeff_ffff_ffff); // clear the group bit
        if m == MacAddr::ZERO {
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
