//! Parse + process over arbitrary bytes with a small table: the first byte picks the input
//! port and switch options, the rest is cut into frames. Then what went to VM 1 is held (as
//! if its link were down) and released by IPv4 and IPv6 fix-ups for its addresses. Nothing
//! may panic, the counters must add up after every burst, and every held frame is
//! accounted for. The uplink also carries a VXLAN segment (VNI 5000, VM 4) to one leaf
//! VTEP, resolved or not. `scripts/fuzz` seeds the corpus with ARP, NS, NA and DAD frames,
//! a VXLAN frame and ARP for the host's VTEP.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pipeline::table::MacTable;
use pipeline::vxlan::{flow_hash, leaf_vtep_of, RemoteVtep, Underlay};
use pipeline::wire::{
    arp::ArpPacket, ethernet::EthernetFrame, icmpv6::NdiscPacket, ipv4::Ipv4Packet, ipv6::Ipv6Packet, vlan::VlanFrame,
};
use pipeline::{
    ByteFrame, Encap, Frame, HeldFrames, MacAddr, Output, PortId, PortRole, Processor, SegmentConfig, SegmentSlot,
    SwitchConfig, VlanId, Vni, VnicConfig,
};

fn switch(responder: bool, resolved: bool) -> Processor {
    let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
    let mut c = SwitchConfig::new();
    let mut s = SegmentConfig::new(Encap::Vlan(VlanId::new(100).unwrap()), gw);
    s.arp_responder = responder;
    s.subnets.push("10.1.1.0/24".parse().unwrap());
    s.subnets.push("2001:db8::/64".parse().unwrap());
    c.set_segment(SegmentSlot(0), s).unwrap();
    c.set_segment(SegmentSlot(1), SegmentConfig::new(Encap::Vlan(VlanId::new(200).unwrap()), gw)).unwrap();
    c.set_port(PortId(0), PortRole::Uplink).unwrap();
    let leaf = RemoteVtep { ip: [192, 168, 100, 1].into(), mac: resolved.then_some(MacAddr([2, 0, 0, 0, 0, 1])) };
    let underlay =
        Underlay { ip: [192, 168, 100, 2].into(), mac: MacAddr([2, 0, 0, 0, 0, 2]), remotes: vec![leaf], mtu: 1500 };
    c.set_underlay(Some(underlay)).unwrap();
    c.set_segment(SegmentSlot(2), SegmentConfig::new(Encap::Vxlan(Vni::new(5000).unwrap()), gw)).unwrap();
    for p in 1..=4u8 {
        let slot = match p {
            3 => 1,
            4 => 2,
            _ => 0,
        };
        let mut v = VnicConfig::new(MacAddr([0x52, 0x54, 0, 0, 0, p]), SegmentSlot(slot));
        v.ipv4.push(std::net::Ipv4Addr::new(10, 1, 1, p));
        v.ipv6.push(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, p as u16));
        v.port_security = p != 2;
        c.set_port(PortId(p as u16), PortRole::Vnic(v)).unwrap();
    }
    let table = Arc::new(MacTable::new(64).unwrap());
    for (k, v) in c.table_entries() {
        table.insert(k, v).unwrap();
    }
    Processor::new(table.reader().unwrap(), Arc::new(c))
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    // The views alone, on the raw bytes.
    let _ = EthernetFrame::new_checked(rest).map(|f| (f.dst(), f.src(), f.ethertype()));
    let _ = VlanFrame::new_checked(rest).map(|f| (f.vid(), f.inner_ethertype()));
    let _ = ArpPacket::new_checked(rest).map(|a| (a.sender_ip(), a.target_mac()));
    let _ = Ipv4Packet::new_checked(rest).map(|p| (p.checksum_ok(), p.payload().len()));
    let _ = Ipv6Packet::new_checked(rest).map(|p| p.upper_layer().map(|(nh, b)| (nh, b.len())));
    let _ = NdiscPacket::new_checked(rest).map(|p| (p.target(), p.lladdr()));
    let _ = (leaf_vtep_of(rest), flow_hash(rest));

    let mut p = switch(head & 0x80 != 0, head & 0x40 == 0);
    let port = PortId((head & 0x07) as u16);
    // Frames separated by 0xfe bytes, so the fuzzer can build several in one input.
    let frames: Vec<ByteFrame> = rest.split(|b| *b == 0xfe).map(ByteFrame::new).collect();
    let mut out = Output::new();
    p.process(port, frames, &mut out);
    assert!(p.counters().balanced());
    for f in &out.underlay {
        assert!(leaf_vtep_of(f.bytes()).is_some(), "the control plane gets only ARP from a leaf VTEP");
    }

    let cfg = p.config().clone();
    let vm = PortId(1);
    let mut held = HeldFrames::new(64, Duration::from_secs(2));
    let queued: Vec<(PortId, ByteFrame)> = out.queue(vm).drain(..).map(|f| (port, f)).collect();
    let n = queued.len() as u64;
    held.hold(&cfg, vm, queued, Instant::now());
    let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
    let mut released = 0;
    for ip in [IpAddr::from([10, 1, 1, 1]), IpAddr::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))] {
        let r = held.release(&cfg, ip, gw);
        released += (r.rerun.len() + r.to_uplink.len()) as u64;
    }
    let c = held.counters(vm);
    let holding = held.take_for_port(vm).len() as u64;
    assert_eq!(c.held, n);
    assert_eq!(c.held, c.released + c.dropped + holding);
    assert_eq!(c.released, released);
});
