//! A small switch for the tests: an uplink, three VMs in segment 0 (VLAN 100), one in
//! segment 1 (VLAN 200), and frame builders.
#![allow(dead_code)] // each test file uses part of this module

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use pipeline::table::MacTable;
use pipeline::wire::arp::{op, ArpPacket, ArpRepr};
use pipeline::wire::icmpv6::{na_flags, NdiscRepr};
use pipeline::wire::ipv6::{next_header, Ipv6Repr};
use pipeline::{
    ByteFrame, Counters, DropReason, Encap, IpNet, MacAddr, Output, PortId, PortRole, Processor, SegmentConfig,
    SegmentSlot, SwitchConfig, VlanId, VnicConfig,
};

pub const UPLINK: PortId = PortId(0);
pub const A: PortId = PortId(1);
pub const B: PortId = PortId(2);
pub const C: PortId = PortId(3); // segment 1
pub const D: PortId = PortId(4); // segment 0, port security off

pub const GW: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x01]);
pub const GW2: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x02]);
pub const UNKNOWN: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x99, 0x99, 0x99]);

/// Segment `id`'s VLAN encapsulation.
pub fn vlan(id: u16) -> Encap {
    Encap::Vlan(VlanId::new(id).unwrap())
}

pub fn mac(port: PortId) -> MacAddr {
    MacAddr([0x52, 0x54, 0x00, 0x00, 0x00, port.0 as u8])
}

pub fn ip(port: PortId) -> Ipv4Addr {
    if port == C {
        Ipv4Addr::new(10, 2, 2, port.0 as u8)
    } else {
        Ipv4Addr::new(10, 1, 1, port.0 as u8)
    }
}

pub fn ip6(port: PortId) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, port.0)
}

pub fn config(with_uplink: bool) -> SwitchConfig {
    let mut c = SwitchConfig::new();
    let mut s0 = SegmentConfig::new(vlan(100), GW);
    s0.subnets.push("10.1.1.0/24".parse::<IpNet>().unwrap());
    s0.subnets.push("2001:db8::/64".parse::<IpNet>().unwrap());
    c.set_segment(SegmentSlot(0), s0).unwrap();
    c.set_segment(SegmentSlot(1), SegmentConfig::new(vlan(200), GW2)).unwrap();
    if with_uplink {
        c.set_port(UPLINK, PortRole::Uplink).unwrap();
    }
    for (p, seg) in [(A, 0), (B, 0), (C, 1), (D, 0)] {
        let mut v = VnicConfig::new(mac(p), SegmentSlot(seg));
        v.ipv4.push(ip(p));
        v.ipv6.push(ip6(p));
        v.port_security = p != D;
        c.set_port(p, PortRole::Vnic(v)).unwrap();
    }
    c
}

pub fn processor(cfg: SwitchConfig) -> Processor {
    let table = Arc::new(MacTable::new(1024).unwrap());
    for (k, v) in cfg.table_entries() {
        table.insert(k, v).unwrap();
    }
    Processor::new(table.reader().unwrap(), Arc::new(cfg))
}

/// An Ethernet frame padded to 60 bytes.
pub fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 frame with a recognizable payload.
pub fn ipv4(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 1, 2];
    p.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 8, 0, 0]);
    eth(dst, src, 0x0800, &p)
}

/// The same frame with an 802.1Q tag.
pub fn tagged(vlan: u16, f: &[u8]) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vlan.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

pub fn arp(dst: MacAddr, src: MacAddr, operation: u16, sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = [0u8; 28];
    ArpRepr { operation, sender_mac: sha, sender_ip: spa, target_mac: MacAddr::ZERO, target_ip: tpa }
        .emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    eth(dst, src, 0x0806, &p)
}

pub fn arp_request(from: PortId, tpa: Ipv4Addr) -> Vec<u8> {
    arp(MacAddr::BROADCAST, mac(from), op::REQUEST, mac(from), ip(from), tpa)
}

/// A neighbor advertisement from `src` for `target` to all-nodes, from the target itself.
pub fn na(src: MacAddr, target: Ipv6Addr) -> Vec<u8> {
    na_from(src, target, target)
}

/// A neighbor advertisement from (`src`, `from`) for `target` to all-nodes.
pub fn na_from(src: MacAddr, from: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let nd = NdiscRepr::Advert { flags: na_flags::OVERRIDE, target, target_lladdr: Some(src) };
    let mut m = vec![0u8; nd.buffer_len()];
    nd.emit(&mut m, &from, &all_nodes);
    ipv6(MacAddr([0x33, 0x33, 0, 0, 0, 1]), src, from, all_nodes, next_header::ICMPV6, &m)
}

/// Runs one burst from `port` and returns where everything went.
pub fn run(p: &mut Processor, port: PortId, frames: &[Vec<u8>]) -> Output<ByteFrame> {
    let mut out = Output::new();
    p.process(port, frames.iter().map(|f| ByteFrame::new(f)), &mut out);
    out
}

/// Frames queued for `port`, as bytes.
pub fn sent(out: &mut Output<ByteFrame>, port: PortId) -> Vec<Vec<u8>> {
    out.queue(port).iter().map(|f| pipeline::Frame::bytes(f).to_vec()).collect()
}

pub fn reasons(out: &Output<ByteFrame>) -> Vec<DropReason> {
    out.drops.iter().map(|(_, r)| *r).collect()
}

/// Checks rx = forwarded + flooded + dropped on every port, and returns the counters.
pub fn balanced(p: &Processor) -> &Counters {
    let c = p.counters();
    assert!(c.balanced(), "counters do not add up: {c:#?}");
    c
}

/// `cfg` with the local responder (ARP and NS) on in segment 0.
pub fn with_responder(mut cfg: SwitchConfig) -> SwitchConfig {
    let mut seg = cfg.segment(SegmentSlot(0)).unwrap().clone();
    seg.arp_responder = true;
    cfg.set_segment(SegmentSlot(0), seg).unwrap();
    cfg
}

/// An IPv6 frame: the fixed header and `payload` (the upper layer, or extension headers
/// first), to the Ethernet destination `dst`.
pub fn ipv6(dst: MacAddr, src: MacAddr, from: Ipv6Addr, to: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    Ipv6Repr { src: from, dst: to, next_header: next, hop_limit: 255, payload_len: payload.len() }.emit(&mut p);
    p.extend_from_slice(payload);
    eth(dst, src, 0x86dd, &p)
}

/// The solicited-node multicast address of `ip` and its Ethernet group.
pub fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, MacAddr) {
    let o = ip.octets();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, (o[14] as u16) << 8 | o[15] as u16);
    let g = group.octets();
    (group, MacAddr([0x33, 0x33, g[12], g[13], g[14], g[15]]))
}

/// A multicast neighbor solicitation for `target` from (`src`, `from`), with its source
/// link-layer option `sll` (DAD's from `::` carries none).
pub fn ns(src: MacAddr, from: Ipv6Addr, target: Ipv6Addr, sll: Option<MacAddr>) -> Vec<u8> {
    let (group, group_mac) = solicited_node(target);
    let nd = NdiscRepr::Solicit { target, source_lladdr: sll };
    let mut m = vec![0u8; nd.buffer_len()];
    nd.emit(&mut m, &from, &group);
    ipv6(group_mac, src, from, group, next_header::ICMPV6, &m)
}

/// A neighbor solicitation as a guest sends it when it resolves `target`: from its own
/// address `ip6(port)`, with its MAC in the source link-layer option.
pub fn ns_from(port: PortId, target: Ipv6Addr) -> Vec<u8> {
    ns(mac(port), ip6(port), target, Some(mac(port)))
}
