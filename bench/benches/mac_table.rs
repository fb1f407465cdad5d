//! Batched MAC lookups (32 keys a batch): Roam's table (with the key search it picks for
//! this CPU, and with the portable scalar search) against single-threaded hashbrown,
//! hashbrown behind a parking_lot RwLock, and DPDK's rte_hash (lock-free RW mode, bulk
//! lookup), on the same keys, at 1 K, 64 K, 1 M and 4 M entries, all-hit and 50 % miss,
//! without and with a concurrent writer doing 100 k updates/s.
//!
//! `cargo bench -p roam-bench --bench mac_table`, then
//! `./target/release/criterion_table mac_lookup` for the table of rates and ratios.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dpdk::{Eal, RteHash};
use hashbrown::HashMap;
use mac_table::{EntryKind, Key, MacTable, Search, Value};
use parking_lot::RwLock;

const BATCH: usize = 32;
const QUERIES: usize = 1 << 16;
const SIZES: [(usize, &str); 4] = [(1 << 10, "1K"), (1 << 16, "64K"), (1 << 20, "1M"), (1 << 22, "4M")];
const UPDATES_PER_SEC: u64 = 100_000;

use roam_bench::Rng;

/// Present keys have first octet 0x02, absent ones 0x06: never equal.
fn make_key(rng: &mut Rng, first_octet: u64) -> Key {
    let x = rng.next();
    Key::new(first_octet << 40 | (x & 0xff_ffff_ffff), (x >> 62) as u16)
}

fn value_of(i: usize) -> Value {
    Value::new(i as u16, EntryKind::Local)
}

/// Updates random present keys at 100 k/s until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(keys: Arc<Vec<Key>>, update: impl Fn(Key, Value) + Send + 'static) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(0xdead_beef);
            let start = Instant::now();
            let mut done: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                let due = start.elapsed().as_micros() as u64 * UPDATES_PER_SEC / 1_000_000;
                while done < due {
                    let i = (rng.next() % keys.len() as u64) as usize;
                    update(keys[i], value_of(i ^ done as usize));
                    done += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            done
        });
        Writer { stop, thread: Some(thread) }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bench(c: &mut Criterion) {
    let eal = Eal::init([
        "--no-huge",
        "-m",
        "3072",
        "--no-pci",
        "--no-telemetry",
        "--lcores",
        "0@(0-1)",
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
        &format!("roam-bench-mac-{}", std::process::id()),
    ])
    .expect("EAL init");
    for (size, size_name) in SIZES {
        let mut rng = Rng(0x1234_5678 + size as u64);
        let present: Vec<Key> = {
            let mut seen = hashbrown::HashSet::new();
            std::iter::from_fn(|| Some(make_key(&mut rng, 0x02))).filter(|k| seen.insert(*k)).take(size).collect()
        };
        let present = Arc::new(present);
        let roam = Arc::new(MacTable::new(size).unwrap());
        // The same table read with the portable search, to show what the vector one gives.
        let roam_scalar = Arc::new(MacTable::new(size).unwrap().with_search(Search::Scalar).unwrap());
        let mut plain: HashMap<u64, Value> = HashMap::with_capacity(size);
        let rte = Arc::new(RteHash::new(&eal, &format!("bench{size_name}"), size as u32 + size as u32 / 4).unwrap());
        for (i, k) in present.iter().enumerate() {
            roam.insert(*k, value_of(i)).unwrap();
            roam_scalar.insert(*k, value_of(i)).unwrap();
            plain.insert(k.raw(), value_of(i));
            rte.insert(k.raw(), value_of(i).port() as u64 + 1).unwrap();
        }
        let locked = Arc::new(RwLock::new(plain.clone()));

        for (workload, miss_every) in [("hit", 0usize), ("miss50", 2)] {
            let queries: Vec<Key> = (0..QUERIES)
                .map(|q| {
                    if miss_every > 0 && q % miss_every == 1 {
                        make_key(&mut rng, 0x06)
                    } else {
                        present[(rng.next() % size as u64) as usize]
                    }
                })
                .collect();
            let raw: Vec<u64> = queries.iter().map(|k| k.raw()).collect();

            for writer in ["nowriter", "writer100k"] {
                let mut g = c.benchmark_group(format!("mac_lookup/{size_name}/{workload}/{writer}"));
                g.throughput(Throughput::Elements(BATCH as u64));
                g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));

                // The table as created (the fastest search this CPU has), and, without a
                // writer, the same contents read with the portable search.
                for (name, table) in [("roam", &roam), ("roam_scalar", &roam_scalar)] {
                    if name == "roam_scalar" && (writer != "nowriter" || roam.search() == Search::Scalar) {
                        continue;
                    }
                    let _w = (writer != "nowriter").then(|| {
                        let t = Arc::clone(table);
                        Writer::start(present.clone(), move |k, v| {
                            t.insert(k, v).unwrap();
                        })
                    });
                    let mut reader = table.reader().unwrap();
                    let mut out = [None; BATCH];
                    let mut at = 0;
                    g.bench_function(name, |b| {
                        b.iter(|| {
                            at = (at + BATCH) % QUERIES;
                            black_box(reader.lookup_batch(&queries[at..at + BATCH], &mut out));
                            black_box(&out);
                        })
                    });
                }
                if writer == "nowriter" {
                    let mut out = [None; BATCH];
                    let mut at = 0;
                    g.bench_function("hashbrown", |b| {
                        b.iter(|| {
                            at = (at + BATCH) % QUERIES;
                            for (o, k) in out.iter_mut().zip(&raw[at..at + BATCH]) {
                                *o = plain.get(k).copied();
                            }
                            black_box(&out);
                        })
                    });
                }
                {
                    let _w = (writer != "nowriter").then(|| {
                        let t = locked.clone();
                        Writer::start(present.clone(), move |k, v| {
                            t.write().insert(k.raw(), v);
                        })
                    });
                    let mut out = [None; BATCH];
                    let mut at = 0;
                    g.bench_function("hashbrown_rwlock", |b| {
                        b.iter(|| {
                            at = (at + BATCH) % QUERIES;
                            let map = locked.read();
                            for (o, k) in out.iter_mut().zip(&raw[at..at + BATCH]) {
                                *o = map.get(k).copied();
                            }
                            drop(map);
                            black_box(&out);
                        })
                    });
                }
                {
                    let _w = (writer != "nowriter").then(|| {
                        let t = rte.clone();
                        Writer::start(present.clone(), move |k, v| {
                            t.insert(k.raw(), v.port() as u64 + 1).unwrap();
                        })
                    });
                    let mut out = [None; BATCH];
                    let mut at = 0;
                    g.bench_function("rte_hash", |b| {
                        b.iter(|| {
                            at = (at + BATCH) % QUERIES;
                            black_box(rte.lookup_bulk(&raw[at..at + BATCH], &mut out));
                            black_box(&out);
                        })
                    });
                }
                g.finish();
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
