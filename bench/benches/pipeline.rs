//! The pipeline on byte buffers: bursts of 32 × 64-byte frames from VM ports through parse
//! → batched lookup → rewrite/tag → per-port grouping, with a 1 M-entry MAC table (and a
//! 1 K one for contrast), on the mixed workload: 87.5 % known unicast spread over the whole
//! table, 10 % unknown unicast (rewritten to the anycast MAC, tagged to the uplink), 2.5 %
//! broadcast ARP (flooded to the segment's 7 other VMs and the uplink). `mixed6` is the
//! same mix in IPv6: unicast frames from the VM's IPv6 address (which port security
//! checks, where it checks no IPv4 source) and multicast neighbor solicitations (86 bytes,
//! with the source link-layer option, which port security checks too) in place of the
//! ARP broadcasts. `mixed_vxlan` is the IPv4 mix with every segment carried as VXLAN
//! (VNI per segment) instead of 802.1Q: what goes to the uplink gets 50 bytes of outer
//! headers, a flow hash for the UDP source port and an IPv4 header checksum.
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

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipeline::table::{key, key_parts, port_of, value, EntryKind, MacTable};
use pipeline::vxlan::{RemoteVtep, Underlay};
use pipeline::{
    Encap, Frame, MacAddr, Output, PortId, PortRole, Processor, SegmentConfig, SegmentSlot, SwitchConfig, VlanId, Vni,
    VnicConfig,
};

const BURST: usize = 32;
const SEGMENTS: u16 = 8;
const VMS_PER_SEGMENT: u16 = 8;
const UPLINK: PortId = PortId(0);
const GW: MacAddr = MacAddr([0, 0, 0x5e, 0, 1, 1]);
const FRAME_LEN: usize = 64;
/// A neighbor solicitation with its source link-layer address option.
const NS_LEN: usize = 14 + 40 + 32;
const MAX_LEN: usize = NS_LEN;
const HEADROOM: usize = 64;

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
    fn fill(&mut self, t: &Template) {
        self.start = HEADROOM;
        self.len = t.len;
        self.bm()[HEADROOM..HEADROOM + t.len].copy_from_slice(&t.bytes[..t.len]);
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

/// A frame a NIC would write into a buffer.
struct Template {
    bytes: [u8; MAX_LEN],
    len: usize,
}

/// What a workload's frames carry.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    V4,
    V6,
}

fn vm_ipv6(port: PortId) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, port.0)
}

/// A unicast data frame from the VM at `port` to `dst`.
fn data(family: Family, dst: MacAddr, port: PortId) -> Template {
    let mut f = [0u8; MAX_LEN];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&vm_mac(port).0);
    match family {
        Family::V4 => {
            f[12..14].copy_from_slice(&[8, 0]);
            f[14] = 0x45;
        }
        Family::V6 => {
            // UDP from the VM's address to another of its subnet, no payload bytes.
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60;
            f[18..20].copy_from_slice(&((FRAME_LEN - 54) as u16).to_be_bytes());
            f[20] = 17;
            f[21] = 64;
            f[22..38].copy_from_slice(&vm_ipv6(port).octets());
            f[38..54].copy_from_slice(&vm_ipv6(PortId(200)).octets());
        }
    }
    Template { bytes: f, len: FRAME_LEN }
}

/// The VM at `port` asks for another address of its subnet (not a local VM's).
fn request(family: Family, port: PortId) -> Template {
    let mut f = [0u8; MAX_LEN];
    let src = vm_mac(port);
    f[6..12].copy_from_slice(&src.0);
    match family {
        Family::V4 => {
            f[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
            f[12..14].copy_from_slice(&[8, 6]);
            f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f[22..28].copy_from_slice(&src.0);
            f[28..32].copy_from_slice(&Ipv4Addr::new(10, 1, 1, src.0[5]).octets());
            f[38..42].copy_from_slice(&[10, 1, 1, 200]);
            Template { bytes: f, len: FRAME_LEN }
        }
        Family::V6 => {
            // To the target's solicited-node group, with the source link-layer option.
            let target = vm_ipv6(PortId(200)).octets();
            f[0..6].copy_from_slice(&[0x33, 0x33, 0xff, target[13], target[14], target[15]]);
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60;
            f[18..20].copy_from_slice(&32u16.to_be_bytes());
            f[20] = 58;
            f[21] = 255;
            f[22..38].copy_from_slice(&vm_ipv6(port).octets());
            f[38..54]
                .copy_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15]]);
            f[54] = 135;
            f[62..78].copy_from_slice(&target);
            f[78..80].copy_from_slice(&[1, 1]);
            f[80..86].copy_from_slice(&src.0);
            Template { bytes: f, len: NS_LEN }
        }
    }
}

/// A switch with 64 VMs in 8 segments and a table of `entries` MACs (the VMs, the gateway
/// per segment, and MACs behind the VMs to fill it), with bursts of the mixed workload.
/// A burst's input port and frame templates.
type Burst = (PortId, Vec<Template>);

fn setup(entries: usize, family: Family, vxlan: bool) -> (Processor, Vec<Burst>) {
    let mut cfg = SwitchConfig::new();
    if vxlan {
        let leaf = RemoteVtep { ip: Ipv4Addr::new(192, 168, 100, 1), mac: Some(MacAddr([2, 0, 0, 0, 0, 1])) };
        let underlay = Underlay {
            ip: Ipv4Addr::new(192, 168, 100, 2),
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            remotes: vec![leaf],
            mtu: 1500,
        };
        cfg.set_underlay(Some(underlay)).unwrap();
    }
    for s in 0..SEGMENTS {
        let encap = if vxlan {
            Encap::Vxlan(Vni::new(5000 + s as u32).unwrap())
        } else {
            Encap::Vlan(VlanId::new(100 + s).unwrap())
        };
        cfg.set_segment(SegmentSlot(s), SegmentConfig::new(encap, GW)).unwrap();
    }
    cfg.set_port(UPLINK, PortRole::Uplink).unwrap();
    let vms: Vec<PortId> = (1..=SEGMENTS * VMS_PER_SEGMENT).map(PortId).collect();
    for &p in &vms {
        let mut v = VnicConfig::new(vm_mac(p), segment_of(p));
        v.ipv4.push(Ipv4Addr::new(10, 1, 1, p.0 as u8));
        v.ipv6.push(vm_ipv6(p));
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
                        request(family, src)
                    } else if r < 125 {
                        data(family, MacAddr::from_u64(0x0600_0000_0000 | (rng.next() & 0xff_ffff_ffff)), src)
                    } else {
                        // A MAC behind another VM (one behind the sender would be a hairpin).
                        let dst = loop {
                            let (d, port) = known[seg][(rng.next() % known[seg].len() as u64) as usize];
                            if port != src {
                                break d;
                            }
                        };
                        data(family, dst, src)
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
    let runs = [
        (1 << 20, "1M", Family::V4),
        (1 << 10, "1K", Family::V4),
        (1 << 20, "1M", Family::V6),
        (1 << 10, "1K", Family::V6),
    ];
    let runs = runs
        .iter()
        .map(|&(e, n, f)| (e, n, f, false))
        .chain([(1 << 20, "1M", Family::V4, true), (1 << 10, "1K", Family::V4, true)]);
    for (entries, name, family, vxlan) in runs {
        let workload = match (family, vxlan) {
            (Family::V4, false) => "mixed",
            (Family::V6, _) => "mixed6",
            (Family::V4, true) => "mixed_vxlan",
        };
        let (mut p, bursts) = setup(entries, family, vxlan);
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
        g.bench_function(format!("roam/{workload}/{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(false)).sum())
        });
        g.bench_function(format!("roam_with_rx_tx/{workload}/{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(true)).sum())
        });
        let total = p.counters().total();
        assert!(p.counters().balanced());
        assert_eq!(total.dropped_total(), 0, "the workload has nothing to drop");
        eprintln!(
            "{workload} {name}: rx {} forwarded {} flooded {} dropped {} rewritten {} flood copies {}",
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
