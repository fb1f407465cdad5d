//! VXLAN on the uplink, on byte buffers: a segment carried with a VNI beside the VLAN ones,
//! its frames wrapped to the leaf's VTEP and unwrapped from it, ARP for the host's VTEP,
//! and every kind of hostile underlay frame dropped under its reason.

mod common;

use std::net::Ipv4Addr;

use common::*;
use pipeline::vxlan::{flow_hash, leaf_vtep_of, RemoteVtep, Underlay, OVERHEAD, UDP_PORT};
use pipeline::wire::arp::op;
use pipeline::wire::{checksum_add, checksum_finish};
use pipeline::{
    ConfigError, DropReason, Encap, MacAddr, PortId, PortRole, SegmentConfig, SegmentSlot, SwitchConfig, Vni,
    VnicConfig,
};

/// A VM of the VXLAN segment with A's MAC and IPv4 address (tenants overlap).
const E: PortId = PortId(5);
const F: PortId = PortId(6);
const VNI: u32 = 5000;
const GW3: MacAddr = MacAddr([0x00, 0x00, 0x5e, 0x00, 0x01, 0x03]);
const HOST_VTEP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);
const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const LEAF_VTEP: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
const LEAF_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const SLOT: SegmentSlot = SegmentSlot(2);

fn underlay(resolved: bool, mtu: u16) -> Underlay {
    Underlay {
        ip: HOST_VTEP,
        mac: HOST_MAC,
        remotes: vec![RemoteVtep { ip: LEAF_VTEP, mac: resolved.then_some(LEAF_MAC) }],
        mtu,
    }
}

/// The common switch plus a VXLAN segment (slot 2, VNI 5000) with E (A's MAC and address)
/// and F.
fn vxlan_config(resolved: bool, mtu: u16) -> SwitchConfig {
    let mut c = config(true);
    c.set_underlay(Some(underlay(resolved, mtu))).unwrap();
    c.set_segment(SLOT, SegmentConfig::new(Encap::Vxlan(Vni::new(VNI).unwrap()), GW3)).unwrap();
    for (p, m) in [(E, mac(A)), (F, mac(F))] {
        let mut v = VnicConfig::new(m, SLOT);
        v.ipv4.push(if p == E { ip(A) } else { Ipv4Addr::new(10, 1, 1, 6) });
        c.set_port(p, PortRole::Vnic(v)).unwrap();
    }
    c
}

/// A VXLAN frame from the leaf (`src` VTEP) for `vni` around `inner`.
fn outer(inner: &[u8], vni: u32, src: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&HOST_MAC.0);
    f.extend_from_slice(&LEAF_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + 8 + inner.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&HOST_VTEP.octets());
    let sum = checksum_finish(checksum_add(0, &ip));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&50000u16.to_be_bytes());
    f.extend_from_slice(&UDP_PORT.to_be_bytes());
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[0x08, 0, 0, 0]);
    f.extend_from_slice(&vni.to_be_bytes()[1..]);
    f.push(0);
    f.extend_from_slice(inner);
    f
}

/// Recomputes the outer IPv4 header checksum after a test changed the header.
fn fix_checksum(f: &mut [u8]) {
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = checksum_finish(checksum_add(0, &f[14..34]));
    f[24..26].copy_from_slice(&sum.to_be_bytes());
}

/// A TCP segment from E to `dst` between these ports.
fn tcp(dst: MacAddr, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 1, 1, 1, 10, 9, 9, 9];
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.resize(40, 0);
    eth(dst, mac(A), 0x0800, &p)
}

/// Checks a wrapped frame's outer headers and returns its inner frame and UDP source port.
fn unwrap_checked(f: &[u8], vni: u32) -> (Vec<u8>, u16) {
    assert_eq!((&f[0..6], &f[6..12], &f[12..14]), (&LEAF_MAC.0[..], &HOST_MAC.0[..], &[8u8, 0][..]));
    let ip = &f[14..34];
    assert_eq!((ip[0], ip[6] & 0x40, ip[8], ip[9]), (0x45, 0x40, 64, 17), "IPv4, DF, TTL 64, UDP");
    assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, f.len() - 14, "outer total length");
    assert_eq!(checksum_finish(checksum_add(0, ip)), 0, "outer checksum");
    assert_eq!((&ip[12..16], &ip[16..20]), (&HOST_VTEP.octets()[..], &LEAF_VTEP.octets()[..]));
    let udp = &f[34..42];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    assert!(sport >= 49152, "source port {sport} is in the dynamic range");
    assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), UDP_PORT);
    assert_eq!(u16::from_be_bytes([udp[4], udp[5]]) as usize, f.len() - 34, "UDP length");
    assert_eq!(&f[42..50], &[0x08, 0, 0, 0, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0]);
    (f[OVERHEAD..].to_vec(), sport)
}

#[test]
fn a_vms_frames_are_wrapped_for_its_vni_and_the_leafs_unwrapped_to_that_tenant_only() {
    let mut p = processor(vxlan_config(true, 1500));
    // Unknown unicast from E: rewritten to its segment's anycast MAC, wrapped for VNI 5000.
    let f = ipv4(UNKNOWN, mac(A));
    let mut out = run(&mut p, E, std::slice::from_ref(&f));
    let up = sent(&mut out, UPLINK);
    assert_eq!(up.len(), 1);
    let (inner, _) = unwrap_checked(&up[0], VNI);
    let mut expected = f.clone();
    expected[0..6].copy_from_slice(&GW3.0);
    assert_eq!(inner, expected);
    // A broadcast from E: F gets it as it is, the uplink a wrapped copy; segment 0 nothing.
    let mut out = run(&mut p, E, &[arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), ip(A), ip(B))]);
    assert_eq!((sent(&mut out, F).len(), sent(&mut out, A).len(), sent(&mut out, B).len()), (1, 0, 0));
    let (inner, _) = unwrap_checked(&sent(&mut out, UPLINK)[0], VNI);
    assert_eq!(&inner[0..6], &[0xff; 6]);
    // From the leaf, unicast to A's MAC in VNI 5000: E gets the inner frame, A (the same MAC
    // in segment 0) nothing.
    let inner = ipv4(mac(A), GW3);
    let mut out = run(&mut p, UPLINK, &[outer(&inner, VNI, LEAF_VTEP)]);
    assert_eq!((sent(&mut out, E), sent(&mut out, A).len()), (vec![inner.clone()], 0));
    // The same to segment 0 tagged with VLAN 100 reaches A, not E.
    let mut out = run(&mut p, UPLINK, &[tagged(100, &inner)]);
    assert_eq!((sent(&mut out, A), sent(&mut out, E).len()), (vec![inner], 0));
    // A broadcast from the leaf in VNI 5000 reaches E and F only.
    let bcast = arp(MacAddr::BROADCAST, GW3, op::REQUEST, GW3, Ipv4Addr::new(10, 1, 1, 254), ip(A));
    let mut out = run(&mut p, UPLINK, &[outer(&bcast, VNI, LEAF_VTEP)]);
    let got: Vec<usize> = [E, F, A, B, D].iter().map(|q| sent(&mut out, *q).len()).collect();
    assert_eq!(got, vec![1, 1, 0, 0, 0]);
    assert_eq!(sent(&mut out, E)[0], bcast);
    let c = balanced(&p);
    assert_eq!(
        (
            c.ports[E.index()].forwarded,
            c.ports[E.index()].flooded,
            c.ports[UPLINK.index()].forwarded,
            c.ports[UPLINK.index()].flooded
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(c.total().dropped_total(), 0);
}

#[test]
fn the_udp_source_port_follows_the_inner_flow() {
    let mut p = processor(vxlan_config(true, 1500));
    let mut ports = std::collections::BTreeSet::new();
    for flow in 0..32u16 {
        let f = tcp(UNKNOWN, 40000 + flow, 80);
        let mut out = run(&mut p, E, &[f.clone(), f]);
        let up = sent(&mut out, UPLINK);
        let (a, b) = (unwrap_checked(&up[0], VNI).1, unwrap_checked(&up[1], VNI).1);
        assert_eq!(a, b, "one flow, one source port");
        ports.insert(a);
    }
    assert!(ports.len() >= 24, "32 flows got only {} source ports", ports.len());
    // The hash covers the addresses too, and frames shorter than their headers.
    assert_ne!(flow_hash(&tcp(UNKNOWN, 1, 2)), flow_hash(&tcp(GW3, 1, 2)));
    assert_eq!(flow_hash(&[1, 2, 3]), flow_hash(&[1, 2, 3]));
}

#[test]
fn hostile_underlay_frames_are_dropped_under_their_reasons() {
    let mut p = processor(vxlan_config(true, 1500));
    let inner = ipv4(mac(A), GW3);
    let good = outer(&inner, VNI, LEAF_VTEP);
    let mut cases: Vec<(Vec<u8>, DropReason)> = vec![
        (outer(&inner, 5001, LEAF_VTEP), DropReason::VxlanUnknownVni),
        (outer(&inner, VNI, Ipv4Addr::new(192, 168, 100, 9)), DropReason::VxlanUnknownVtep),
        (good[..40].to_vec(), DropReason::VxlanTruncated),
        (good[..30].to_vec(), DropReason::VxlanTruncated),
        (outer(&inner[..10], VNI, LEAF_VTEP), DropReason::VxlanBadInner),
        (outer(&tagged(100, &inner), VNI, LEAF_VTEP), DropReason::VxlanBadInner),
        (outer(&ipv4(mac(A), MacAddr::BROADCAST), VNI, LEAF_VTEP), DropReason::BadSourceMac),
    ];
    let mut edit = |what: DropReason, change: &dyn Fn(&mut Vec<u8>), checksum: bool| {
        let mut f = good.clone();
        change(&mut f);
        if checksum {
            fix_checksum(&mut f);
        }
        cases.push((f, what));
    };
    // The IPv4 total length past the frame's end, and UDP's length disagreeing with it.
    edit(DropReason::VxlanTruncated, &|f| f[16..18].copy_from_slice(&2000u16.to_be_bytes()), true);
    edit(DropReason::VxlanTruncated, &|f| f[38..40].copy_from_slice(&9u16.to_be_bytes()), false);
    edit(DropReason::VxlanBadHeader, &|f| f[22] = 63, false); // checksum no longer verifies
    edit(DropReason::VxlanBadHeader, &|f| f[20] = 0x20, true); // more fragments
    edit(DropReason::VxlanBadHeader, &|f| f[14] = 0x44, true); // header length 16
    edit(DropReason::VxlanBadHeader, &|f| f[42] = 0, false); // no valid-VNI flag
    edit(DropReason::UnderlayOther, &|f| f[36..38].copy_from_slice(&4790u16.to_be_bytes()), false);
    edit(DropReason::UnderlayOther, &|f| f[23] = 1, true); // ICMP to the VTEP
    let frames: Vec<Vec<u8>> = cases.iter().map(|(f, _)| f.clone()).collect();
    let out = run(&mut p, UPLINK, &frames);
    let want: Vec<DropReason> = cases.iter().map(|(_, r)| *r).collect();
    assert_eq!(reasons(&out), want);
    let c = balanced(&p);
    assert_eq!(c.ports[UPLINK.index()].dropped_total(), want.len() as u64);
    assert_eq!(c.total().forwarded + c.total().flooded, 0);
    // Untagged frames that are not for the VTEP, with no native segment: as before.
    let out = run(&mut p, UPLINK, &[inner.clone(), arp_request(A, ip(B))]);
    assert_eq!(reasons(&out), vec![DropReason::UplinkUntagged; 2]);
}

#[test]
fn arp_for_the_vtep_is_answered_and_the_leafs_replies_go_to_the_control_plane() {
    let mut p = processor(vxlan_config(false, 1500));
    let ask = arp(MacAddr::BROADCAST, LEAF_MAC, op::REQUEST, LEAF_MAC, LEAF_VTEP, HOST_VTEP);
    let reply = arp(HOST_MAC, LEAF_MAC, op::REPLY, LEAF_MAC, LEAF_VTEP, HOST_VTEP);
    let stranger = arp(HOST_MAC, UNKNOWN, op::REPLY, UNKNOWN, Ipv4Addr::new(192, 168, 100, 9), HOST_VTEP);
    let mut out = run(&mut p, UPLINK, &[ask, reply.clone(), stranger]);
    let answers = sent(&mut out, UPLINK);
    assert_eq!(answers.len(), 1);
    let a = &answers[0];
    assert_eq!((&a[0..6], &a[6..12], &a[12..14]), (&LEAF_MAC.0[..], &HOST_MAC.0[..], &[8u8, 6][..]));
    assert_eq!(leaf_vtep_of(a), Some((HOST_VTEP, HOST_MAC)), "the reply says the VTEP is at the host's MAC");
    assert_eq!(u16::from_be_bytes([a[20], a[21]]), op::REPLY);
    let under: Vec<Vec<u8>> = out.underlay.iter().map(|f| pipeline::Frame::bytes(f).to_vec()).collect();
    assert_eq!(under, vec![reply.clone()]);
    assert_eq!(leaf_vtep_of(&under[0]), Some((LEAF_VTEP, LEAF_MAC)));
    assert_eq!(reasons(&out), vec![DropReason::UplinkUntagged], "an ARP reply from a stranger");
    let c = &balanced(&p).ports[UPLINK.index()];
    assert_eq!((c.forwarded, c.arp_replies, c.underlay), (1, 1, 1));
}

#[test]
fn without_a_resolved_leaf_vtep_or_within_the_mtu_frames_are_counted_drops() {
    let mut p = processor(vxlan_config(false, 1500));
    let out = run(&mut p, E, &[ipv4(UNKNOWN, mac(A))]);
    assert_eq!(reasons(&out), vec![DropReason::VtepUnresolved]);
    // The underlay's MTU of 1500 takes inner frames of up to 1464 bytes.
    let mut p = processor(vxlan_config(true, 1500));
    let mut big = ipv4(UNKNOWN, mac(A));
    big.resize(1464, 0);
    let mut bigger = big.clone();
    bigger.push(0);
    let mut out = run(&mut p, E, &[big, bigger]);
    assert_eq!(reasons(&out), vec![DropReason::VxlanTooBig]);
    assert_eq!(sent(&mut out, UPLINK)[0].len(), 1464 + OVERHEAD);
    balanced(&p);
}

#[test]
fn a_native_segment_takes_the_untagged_frames_that_are_not_for_the_vtep() {
    let mut c = vxlan_config(true, 1500);
    c.set_segment(SegmentSlot(1), SegmentConfig::new(Encap::Native, GW2)).unwrap();
    let mut p = processor(c);
    let to_c = ipv4(mac(C), GW2);
    let inner = ipv4(mac(A), GW3);
    let mut out = run(&mut p, UPLINK, &[to_c.clone(), outer(&inner, VNI, LEAF_VTEP)]);
    assert_eq!((sent(&mut out, C), sent(&mut out, E)), (vec![to_c], vec![inner]));
    balanced(&p);
}

#[test]
fn the_configuration_refuses_what_cannot_work() {
    let vxlan = |v| SegmentConfig::new(Encap::Vxlan(Vni::new(v).unwrap()), GW3);
    let mut c = config(true);
    assert_eq!(c.set_segment(SLOT, vxlan(VNI)), Err(ConfigError::NoUnderlay));
    c.set_underlay(Some(underlay(true, 1500))).unwrap();
    c.set_segment(SLOT, vxlan(VNI)).unwrap();
    let err = c.set_segment(SegmentSlot(3), vxlan(VNI)).unwrap_err();
    assert_eq!(err, ConfigError::VniInUse { vni: Vni::new(VNI).unwrap(), slot: SLOT });
    assert_eq!(c.set_underlay(None), Err(ConfigError::UnderlayInUse(SLOT)));
    let bad = |change: &dyn Fn(&mut Underlay)| {
        let mut u = underlay(true, 1500);
        change(&mut u);
        matches!(config(true).set_underlay(Some(u)), Err(ConfigError::BadUnderlay(_)))
    };
    assert!(bad(&|u| u.ip = Ipv4Addr::UNSPECIFIED));
    assert!(bad(&|u| u.mac = MacAddr::BROADCAST));
    assert!(bad(&|u| u.remotes.clear()));
    assert!(bad(&|u| u.remotes[0].ip = HOST_VTEP));
    assert!(bad(&|u| u.mtu = 500));
    assert_eq!((Vni::new(0), Vni::new(1 << 24)), (None, None));
}

#[test]
fn a_held_frame_from_the_leaf_goes_back_up_wrapped_for_its_vni_when_released() {
    use std::time::{Duration, Instant};
    let cfg = vxlan_config(true, 1500);
    let mut p = processor(cfg.clone());
    // From the leaf to E, whose link is down: the worker holds what E's port refuses.
    let inner = ipv4(mac(A), GW3);
    let mut out = run(&mut p, UPLINK, &[outer(&inner, VNI, LEAF_VTEP)]);
    let to_e: Vec<(PortId, pipeline::ByteFrame)> = out.queue(E).drain(..).map(|f| (UPLINK, f)).collect();
    assert_eq!(to_e.len(), 1);
    let mut held = pipeline::HeldFrames::new(16, Duration::from_secs(2));
    held.hold(&cfg, E, to_e, Instant::now());
    // The fix-up for the frame's destination (10.1.1.2 in `ipv4`) sends it back up: the
    // leaf routes that address elsewhere now.
    let released = held.release(&cfg, "10.1.1.2".parse().unwrap(), GW3);
    assert_eq!((released.rerun.len(), released.to_uplink.len()), (0, 1));
    let back = pipeline::Frame::bytes(&released.to_uplink[0]).to_vec();
    let (again, _) = unwrap_checked(&back, VNI);
    let mut expected = inner;
    expected[0..6].copy_from_slice(&GW3.0);
    assert_eq!(again, expected);
}
