//! The safe DPDK layer against real DPDK: EAL, mempools, mbufs, rings, ring-pair ports and
//! net_null ports. Every test checks that all its mbufs are back in their pool.

mod common;

use std::sync::Arc;

use dpdk::{Eal, Error, Mbuf, MbufBurst, Mempool, MempoolConfig, Port, PortConfig, Ring};

fn pool(name: &str, size: u32, cache_size: u32) -> Arc<Mempool> {
    let cfg = MempoolConfig { size, cache_size, ..MempoolConfig::default() };
    Arc::new(Mempool::new(common::eal(), name, &cfg).expect("mempool"))
}

fn assert_all_back(pool: &Mempool) {
    assert_eq!(pool.available(), pool.capacity(), "mbufs leaked from pool {}", pool.name());
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn eal_comes_up_once() {
    let eal = common::eal();
    assert!(eal.port_count() >= 2, "the two net_null vdevs are ports");
    match Eal::init(common::test_eal_args(&[])) {
        Err(Error::EalAlreadyInitialized) => {}
        other => panic!("second init must be refused, got {:?}", other.err()),
    }
}

/// A frame whose bytes are a function of its sequence number.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8).collect();
    f[..4].copy_from_slice(&seq.to_be_bytes());
    f
}

#[test]
fn hundred_thousand_mbufs_round_trip_through_a_ring_pair() {
    let eal = common::eal();
    let pool = pool("rt_pool", 4095, 64);
    let a_to_b = Arc::new(Ring::new(eal, "rt_ab", 256).unwrap());
    let b_to_a = Arc::new(Ring::new(eal, "rt_ba", 256).unwrap());
    let cfg = PortConfig::default();
    let a = Port::from_rings(eal, "net_rt_a", b_to_a.clone(), a_to_b.clone(), &cfg, pool.clone()).unwrap();
    let b = Port::from_rings(eal, "net_rt_b", a_to_b.clone(), b_to_a.clone(), &cfg, pool.clone()).unwrap();
    assert_eq!(b.name(), "net_ring_net_rt_b");
    assert_eq!(Port::id_by_name(eal, b.name()).unwrap(), b.id());
    let (mut a_rx, mut a_tx) = (a.rx_queue(0).unwrap(), a.tx_queue(0).unwrap());
    let (mut b_rx, mut b_tx) = (b.rx_queue(0).unwrap(), b.tx_queue(0).unwrap());

    const TOTAL: u32 = 100_000;
    let (mut sent, mut echoed, mut returned) = (0u32, 0u32, 0u32);
    let mut burst: MbufBurst = MbufBurst::new();
    while returned < TOTAL {
        // A sends a burst of numbered frames of varying length.
        while sent < TOTAL && !burst.is_full() {
            let len = 60 + (sent as usize % 1400);
            burst.push(Mbuf::from_slice(&pool, &frame(sent, len)).unwrap()).unwrap();
            sent += 1;
        }
        let n = burst.len();
        assert_eq!(a_tx.tx_burst(&mut burst), n, "ring has room for a whole burst");
        // B checks each frame and echoes it back.
        b_rx.rx_burst(&mut burst);
        for m in burst.as_slice() {
            assert_eq!(m.data(), &frame(echoed, 60 + (echoed as usize % 1400))[..], "frame {echoed} corrupted A->B");
            echoed += 1;
        }
        let n = burst.len();
        assert_eq!(b_tx.tx_burst(&mut burst), n);
        // A checks what came back.
        a_rx.rx_burst(&mut burst);
        for m in burst.as_slice() {
            let seq = u32::from_be_bytes(m.data()[..4].try_into().unwrap());
            assert_eq!(seq, returned, "frames came back out of order");
            assert_eq!(m.data(), &frame(returned, 60 + (returned as usize % 1400))[..]);
            returned += 1;
        }
        burst.clear();
    }
    assert_eq!((sent, echoed, returned), (TOTAL, TOTAL, TOTAL));
    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!((sa.tx_packets, sa.rx_packets), (TOTAL as u64, TOTAL as u64));
    assert_eq!((sb.tx_packets, sb.rx_packets), (TOTAL as u64, TOTAL as u64));
    assert!(a_to_b.is_empty() && b_to_a.is_empty());
    assert_all_back(&pool);
}

#[test]
fn an_exhausted_mempool_is_an_error_not_a_crash() {
    let pool = pool("exhaust_pool", 63, 0);
    let mut held = Vec::new();
    let err = loop {
        match Mbuf::alloc(&pool) {
            Ok(m) => held.push(m),
            Err(e) => break e,
        }
    };
    assert_eq!(held.len(), 63);
    assert!(matches!(err, Error::MempoolExhausted(ref n) if n == "exhaust_pool"), "{err}");
    assert!(err.to_string().contains("exhausted"));
    assert_eq!(pool.available(), 0);
    drop(held);
    assert_all_back(&pool);
}

#[test]
fn a_full_ring_leaves_the_rest_in_the_burst() {
    let eal = common::eal();
    let pool = pool("full_pool", 255, 0);
    let ring = Ring::new(eal, "full_ring", 20).unwrap();
    let mut burst: MbufBurst = MbufBurst::new();
    for i in 0..32u32 {
        burst.push(Mbuf::from_slice(&pool, &frame(i, 64)).unwrap()).unwrap();
    }
    assert!(burst.push(Mbuf::alloc(&pool).unwrap()).is_err(), "a full burst refuses a 33rd mbuf");
    assert_eq!(ring.enqueue_burst(&mut burst), 20);
    assert_eq!((burst.len(), ring.len(), ring.free_space()), (12, 20, 0));
    // What stayed in the burst is what did not fit: frames 20..32, in order.
    let seqs: Vec<u8> = burst.as_slice().iter().map(|m| m.data()[3]).collect();
    assert_eq!(seqs, (20..32).collect::<Vec<u8>>());
    // Part of the burst is taken out by drain; the rest is freed when the drain drops.
    let first = burst.drain().next().unwrap();
    assert_eq!(first.data()[3], 20);
    assert!(burst.is_empty());
    drop(first);
    drop(ring); // frees the 20 still queued
    assert_all_back(&pool);
}

#[test]
fn mbuf_head_and_tail_edits() {
    let pool = pool("edit_pool", 63, 0);
    let mut m = Mbuf::from_slice(&pool, &[1, 2, 3, 4]).unwrap();
    let (head, tail) = (m.headroom(), m.tailroom());
    assert_eq!(head, dpdk_sys::RTE_PKTMBUF_HEADROOM as usize);
    m.prepend(4).unwrap().copy_from_slice(&[9, 9, 9, 9]);
    assert_eq!(m.data(), &[9, 9, 9, 9, 1, 2, 3, 4]);
    m.adj(6).unwrap();
    m.trim(1).unwrap();
    assert_eq!(m.data(), &[3]);
    m.data_mut().expect("an unshared mbuf is writable")[0] = 7;
    assert_eq!((m.data(), m.len(), m.is_empty()), (&[7u8][..], 1, false));
    assert!(matches!(m.append(tail + 10), Err(Error::NoRoom(_))));
    assert!(matches!(m.prepend(head + 10), Err(Error::NoRoom(_))));
    assert!(matches!(m.adj(5), Err(Error::NoRoom(5))));
    assert!(matches!(m.trim(5), Err(Error::NoRoom(5))));
    // Shared handles: one buffer, read-only while shared, freed with the last handle.
    let shared = m.share().unwrap();
    let third = shared.share().unwrap();
    assert_eq!((shared.data(), third.data()), (&[7u8][..], &[7u8][..]));
    assert!(m.data_mut().is_none(), "a shared mbuf is not writable");
    assert_eq!(pool.available(), pool.capacity() - 1, "one buffer for three handles");
    drop(shared);
    drop(m);
    assert_eq!(pool.available(), pool.capacity() - 1, "still held by the last handle");
    let mut last = third;
    assert!(last.data_mut().is_some(), "writable again once it is the only handle");
    drop(last);
    assert_all_back(&pool);
}

#[test]
fn null_ports_receive_send_and_count() {
    let eal = common::eal();
    let pool = pool("null_pool", 1023, 32);
    let src = Port::open(eal, "net_null0", &PortConfig::default(), pool.clone()).unwrap();
    let sink = Port::open(eal, "net_null1", &PortConfig::default(), pool.clone()).unwrap();
    assert!(src.link().unwrap().up);
    let mac = src.mac_addr().unwrap();
    assert!(mac[0] & 1 == 0 && mac != [0; 6], "a ring port has a unicast MAC: {mac:02x?}");
    let mut rx = src.rx_queue(0).unwrap();
    assert!(matches!(src.rx_queue(0), Err(Error::QueueUnavailable { .. })), "a queue is taken once");
    assert!(matches!(src.rx_queue(5), Err(Error::QueueUnavailable { .. })));
    let mut tx = sink.tx_queue(0).unwrap();
    let mut burst: MbufBurst = MbufBurst::new();
    let mut moved = 0;
    for _ in 0..100 {
        rx.rx_burst(&mut burst);
        moved += tx.tx_burst(&mut burst);
        burst.clear();
    }
    assert_eq!(moved, 100 * 32, "net_null fills every burst and swallows every frame");
    assert_eq!(src.stats().unwrap().rx_packets, moved as u64);
    assert_eq!(sink.stats().unwrap().tx_packets, moved as u64);
    assert!(matches!(Port::open(eal, "net_nope9", &PortConfig::default(), pool.clone()), Err(Error::PortNotFound(_))));
    drop((rx, tx, src, sink));
    assert_all_back(&pool);
}

#[cfg(feature = "rte-hash")]
#[test]
fn rte_hash_inserts_updates_and_bulk_looks_up() {
    let h = dpdk::RteHash::new(common::eal(), "test_hash", 1024).unwrap();
    for k in 0..500u64 {
        h.insert(k * 3, k + 1).unwrap();
    }
    h.insert(3, 99).unwrap();
    let keys: Vec<u64> = (0..40).collect();
    let mut out = [None; 40];
    let hits = h.lookup_bulk(&keys, &mut out);
    assert_eq!(hits, 14);
    for (k, o) in keys.iter().zip(out) {
        let expected = (k % 3 == 0).then(|| if *k == 3 { 99 } else { k / 3 + 1 });
        assert_eq!(o, expected, "key {k}");
    }
}
