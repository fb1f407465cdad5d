//! Model checks of the read/write protocol with loom (`RUSTFLAGS="--cfg loom"`; buckets
//! shrink to two slots). Two buckets, four slots, all full: the writer removes a key and
//! inserts another, which can only take the removed key's slot after a grace period. Under
//! every interleaving loom explores, a reader never pairs a key with another key's value
//! and never misses a key the writer did not touch.
#![cfg(loom)]

use std::sync::Arc;

use mac_table::{EntryKind, Key, MacAddr, MacTable, Value};

fn key(i: u64) -> Key {
    Key::new(MacAddr::from_u64(0x0200_0000_0000 | i), 0)
}

fn val(i: u64) -> Value {
    Value::new(i as u16, EntryKind::Local, 0)
}

fn full_table() -> Arc<MacTable> {
    let t = Arc::new(MacTable::with_readers(4, 1).unwrap());
    for i in 1..=4 {
        t.insert(key(i), val(i)).unwrap();
    }
    t
}

#[test]
fn a_reused_slot_never_pairs_the_old_key_with_the_new_value() {
    loom::model(|| {
        let t = full_table();
        let mut r = t.reader().unwrap();
        let reader = loom::thread::spawn(move || {
            let old = r.lookup(key(1));
            assert!(old.is_none() || old == Some(val(1)), "key 1 read as {old:?}");
            assert_eq!(r.lookup(key(2)), Some(val(2)), "untouched key missed");
        });
        assert_eq!(t.remove(key(1)), Some(val(1)));
        t.insert(key(9), val(9)).unwrap();
        reader.join().unwrap();
        assert_eq!(t.get(key(9)), Some(val(9)));
    });
}

#[test]
fn a_new_key_is_seen_with_its_own_value() {
    loom::model(|| {
        let t = full_table();
        let mut r = t.reader().unwrap();
        let reader = loom::thread::spawn(move || {
            let new = r.lookup(key(9));
            assert!(new.is_none() || new == Some(val(9)), "key 9 read as {new:?}");
        });
        t.remove(key(1));
        t.insert(key(9), val(9)).unwrap();
        reader.join().unwrap();
    });
}
