//! The pipeline on byte buffers: bursts of 32 × 64-byte frames from VM ports through parse
//! → batched lookup → rewrite/tag → per-port grouping, with a 1 M-entry MAC table (and a
//! 1 K one for contrast), on the mixed workload: 87.5 % known unicast spread over the whole
//! table, 10 % unknown unicast (rewritten to the anycast MAC, tagged to the uplink), 2.5 %
//! broadcast ARP (flooded to the segment's 7 other VMs and the uplink).
//!
//! Two numbers per table size: `roam` times `Processor::process` alone; `roam_with_rx_tx`
//! also times writing the frames into their buffers and taking them back afterwards.
//! Frames live in pooled buffers and move as pointers, as mbufs do (flood copies come from
//! a free list, as from a mempool's per-core cache); each iteration first
//! rewrites every frame from its template (what a NIC's DMA would do) and afterwards takes
//! the frames back from the output queues, so that work is inside the measured time too.
//!
//! `cargo bench -p roam-bench --bench pipeline`, then
//! `./target/release/criterion_table pipeline` for the table.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipeline::table::{key, key_parts, port_of, value, EntryKind, MacTable};
use pipeline::{
    Encap, Frame, MacAddr, Output, PortId, PortRole, Processor, SegmentConfig, SegmentSlot, SwitchConfig, VlanId,
    VnicConfig,
};

const BURST: usize = 32;
const SEGMENTS: u16 = 8;
const VMS_PER_SEGMENT: u16 = 8;
const UPLINK: PortId = PortId(0);
const GW: MacAddr = MacAddr([0, 0, 0x5e, 0, 1, 1]);
const FRAME_LEN: usize = 64;
const HEADROOM: usize = 16;

type Buf = Box<[u8; HEADROOM + 128]>;

thread_local! {
    /// Free buffers, as a mempool's per-core cache holds them: flood copies come from here
    /// and go back here when dropped.
    static FREE: std::cell::RefCell<Vec<Buf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A pooled frame buffer: moving it moves a pointer.
struct PoolFrame {
    buf: Option<Buf>,
    start: usize,
    len: usize,
}

impl Drop for PoolFrame {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            FREE.with(|f| f.borrow_mut().push(b));
        }
    }
}

impl PoolFrame {
    fn new() -> PoolFrame {
        let buf = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(|| Box::new([0; HEADROOM + 128]));
        PoolFrame { buf: Some(buf), start: HEADROOM, len: 0 }
    }

    #[inline]
    fn b(&self) -> &[u8; HEADROOM + 128] {
        self.buf.as_ref().expect("a live frame has its buffer")
    }

    #[inline]
    fn bm(&mut self) -> &mut [u8; HEADROOM + 128] {
        self.buf.as_mut().expect("a live frame has its buffer")
    }

    /// Receives a frame: its bytes are written into the buffer.
    #[inline]
    fn fill(&mut self, bytes: &[u8; FRAME_LEN]) {
        self.start = HEADROOM;
        self.len = FRAME_LEN;
        self.bm()[HEADROOM..HEADROOM + FRAME_LEN].copy_from_slice(bytes);
    }
}

impl Frame for PoolFrame {
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.b()[self.start..self.start + self.len]
    }
    #[inline]
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let (s, l) = (self.start, self.len);
        Some(&mut self.bm()[s..s + l])
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }
    fn duplicate(&self) -> Option<Self> {
        let mut c = PoolFrame::new();
        c.start = self.start;
        c.len = self.len;
        let (s, l) = (self.start, self.len);
        c.bm()[s..s + l].copy_from_slice(&self.b()[s..s + l]);
        Some(c)
    }
}

use roam_bench::Rng;

fn vm_mac(port: PortId) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0, (port.0 >> 8) as u8, port.0 as u8])
}

fn segment_of(port: PortId) -> SegmentSlot {
    SegmentSlot((port.0 - 1) / VMS_PER_SEGMENT)
}

fn frame(dst: MacAddr, src: MacAddr, ethertype: u16) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    if ethertype == 0x0806 {
        // ARP request from the VM for another address of its subnet.
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&src.0);
        f[28..32].copy_from_slice(&Ipv4Addr::new(10, 1, 1, src.0[5]).octets());
        f[38..42].copy_from_slice(&[10, 1, 1, 200]);
    } else {
        f[14] = 0x45;
    }
    f
}

/// A switch with 64 VMs in 8 segments and a table of `entries` MACs (the VMs, the gateway
/// per segment, and MACs behind the VMs to fill it), with bursts of the mixed workload.
/// A burst's input port and frame templates.
type Burst = (PortId, Vec<[u8; FRAME_LEN]>);

fn setup(entries: usize) -> (Processor, Vec<Burst>) {
    let mut cfg = SwitchConfig::new();
    for s in 0..SEGMENTS {
        cfg.set_segment(SegmentSlot(s), SegmentConfig::new(Encap::Vlan(VlanId::new(100 + s).unwrap()), GW)).unwrap();
    }
    cfg.set_port(UPLINK, PortRole::Uplink).unwrap();
    let vms: Vec<PortId> = (1..=SEGMENTS * VMS_PER_SEGMENT).map(PortId).collect();
    for &p in &vms {
        let mut v = VnicConfig::new(vm_mac(p), segment_of(p));
        v.ipv4.push(Ipv4Addr::new(10, 1, 1, p.0 as u8));
        cfg.set_port(p, PortRole::Vnic(v)).unwrap();
    }
    let table = Arc::new(MacTable::new(entries).unwrap());
    let mut known: Vec<Vec<(MacAddr, PortId)>> = vec![Vec::new(); SEGMENTS as usize];
    for (k, v) in cfg.table_entries() {
        table.insert(k, v).unwrap();
        if v.kind() == EntryKind::Local {
            let (mac, slot) = key_parts(k);
            known[slot.index()].push((mac, port_of(v)));
        }
    }
    let mut rng = Rng(0x5eed);
    while table.len() < entries {
        let p = vms[(rng.next() % vms.len() as u64) as usize];
        let m = MacAddr::from_u64(0x0200_0000_0000 | (rng.next() & 0xff_ffff_ffff));
        if table.insert(key(m, segment_of(p)), value(p, EntryKind::Local)).unwrap().is_none() {
            known[segment_of(p).index()].push((m, p));
        }
    }
    // 256 bursts, each from one VM.
    let bursts = (0..256)
        .map(|_| {
            let src = vms[(rng.next() % vms.len() as u64) as usize];
            let seg = segment_of(src).index();
            let frames = (0..BURST)
                .map(|_| {
                    let r = rng.next() % 1000;
                    if r < 25 {
                        frame(MacAddr::BROADCAST, vm_mac(src), 0x0806)
                    } else if r < 125 {
                        frame(MacAddr::from_u64(0x0600_0000_0000 | (rng.next() & 0xff_ffff_ffff)), vm_mac(src), 0x0800)
                    } else {
                        // A MAC behind another VM (one behind the sender would be a hairpin).
                        let dst = loop {
                            let (d, port) = known[seg][(rng.next() % known[seg].len() as u64) as usize];
                            if port != src {
                                break d;
                            }
                        };
                        frame(dst, vm_mac(src), 0x0800)
                    }
                })
                .collect();
            (src, frames)
        })
        .collect();
    (Processor::new(table.reader().unwrap(), Arc::new(cfg)), bursts)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (entries, name) in [(1 << 20, "1M"), (1 << 10, "1K")] {
        let (mut p, bursts) = setup(entries);
        let mut pool: Vec<PoolFrame> = (0..BURST).map(|_| PoolFrame::new()).collect();
        let mut out: Output<PoolFrame> = Output::new();
        let mut at = 0;
        // One iteration: frames written into the buffers (rx), the pipeline, buffers taken
        // back from the output queues (tx completion). `timed` says which part is measured.
        let mut round = |timed_all: bool| -> Duration {
            let (port, templates) = &bursts[at % bursts.len()];
            at += 1;
            let t0 = Instant::now();
            for (f, t) in pool.iter_mut().zip(templates) {
                f.fill(t);
            }
            let t1 = Instant::now();
            p.process(*port, pool.drain(..), &mut out);
            let t2 = Instant::now();
            for (_, q) in out.queues_mut() {
                for f in q.drain(..) {
                    if pool.len() < BURST {
                        pool.push(f);
                    }
                }
            }
            for (f, _) in out.drops.drain(..) {
                if pool.len() < BURST {
                    pool.push(f);
                }
            }
            assert_eq!(pool.len(), BURST);
            if timed_all {
                t0.elapsed()
            } else {
                t2 - t1
            }
        };
        g.bench_function(format!("roam/mixed/{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(false)).sum())
        });
        g.bench_function(format!("roam_with_rx_tx/mixed/{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(true)).sum())
        });
        let total = p.counters().total();
        assert!(p.counters().balanced());
        assert_eq!(total.dropped_total(), 0, "the workload has nothing to drop");
        eprintln!(
            "{name}: rx {} forwarded {} flooded {} dropped {} rewritten {} flood copies {}",
            total.rx,
            total.forwarded,
            total.flooded,
            total.dropped_total(),
            total.rewritten,
            total.flood_copies
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
