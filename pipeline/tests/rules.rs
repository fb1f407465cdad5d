//! Every data-path rule and every drop reason, on byte-array frames.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;

use pipeline::table::{key, value, EntryKind, MacTable};

use common::*;
use pipeline::wire::arp::{op, ArpPacket};
use pipeline::{ByteFrame, DropReason, Encap, Frame, MacAddr, Output, PortId, Processor, SegmentSlot};

#[test]
fn local_unicast_is_switched_with_real_macs() {
    let mut p = processor(config(true));
    let f = ipv4(mac(B), mac(A));
    let mut out = run(&mut p, A, std::slice::from_ref(&f));
    assert_eq!(sent(&mut out, B), vec![f]);
    assert_eq!(out.queued(), 1);
    let c = balanced(&p);
    assert_eq!((c.ports[A.index()].forwarded, c.ports[A.index()].rewritten, c.ports[B.index()].tx), (1, 0, 1));
}

#[test]
fn unknown_unicast_is_rewritten_to_the_anycast_mac_and_tagged_to_the_uplink() {
    let mut p = processor(config(true));
    let f = ipv4(UNKNOWN, mac(A));
    let mut out = run(&mut p, A, std::slice::from_ref(&f));
    let up = sent(&mut out, UPLINK);
    let mut expected = f.clone();
    expected[0..6].copy_from_slice(&GW.0);
    assert_eq!(up, vec![tagged(100, &expected)]);
    let c = balanced(&p);
    assert_eq!((c.ports[A.index()].rewritten, c.ports[UPLINK.index()].tx), (1, 1));
}

#[test]
fn frames_to_the_gateway_go_up_unchanged_but_tagged() {
    let mut p = processor(config(true));
    let f = ipv4(GW, mac(A));
    let mut out = run(&mut p, A, std::slice::from_ref(&f));
    assert_eq!(sent(&mut out, UPLINK), vec![tagged(100, &f)]);
    assert_eq!(balanced(&p).ports[A.index()].rewritten, 0);
}

#[test]
fn broadcast_floods_the_segment_and_the_uplink_never_rewritten_never_back() {
    let mut p = processor(config(true));
    let f = arp_request(A, ip(B));
    let mut out = run(&mut p, A, std::slice::from_ref(&f));
    assert_eq!(sent(&mut out, B), vec![f.clone()]);
    assert_eq!(sent(&mut out, D), vec![f.clone()]);
    assert_eq!(sent(&mut out, UPLINK), vec![tagged(100, &f)]);
    assert!(sent(&mut out, A).is_empty() && sent(&mut out, C).is_empty(), "not back, not to another segment");
    let c = balanced(&p);
    assert_eq!((c.ports[A.index()].flooded, c.ports[A.index()].flood_copies, c.ports[A.index()].rewritten), (1, 2, 0));
}

#[test]
fn multicast_is_flooded_too() {
    let mut p = processor(config(true));
    let f = ipv4(MacAddr([0x01, 0x00, 0x5e, 0, 0, 0xfb]), mac(C));
    let mut out = run(&mut p, C, std::slice::from_ref(&f));
    assert_eq!(sent(&mut out, UPLINK), vec![tagged(200, &f)]);
    assert_eq!(out.queued(), 1, "C is alone in segment 1");
}

#[test]
fn unicast_back_to_its_own_port_is_a_hairpin_drop() {
    let mut p = processor(config(true));
    let out = run(&mut p, A, &[ipv4(mac(A), mac(A))]);
    assert_eq!(reasons(&out), vec![DropReason::Hairpin]);
    balanced(&p);
}

#[test]
fn port_security_drops_spoofed_sources() {
    let mut p = processor(config(true));
    let out = run(&mut p, A, &[ipv4(mac(B), mac(B)), ipv4(mac(B), MacAddr([0x52, 0x54, 0, 0, 0, 0x77]))]);
    assert_eq!(reasons(&out), vec![DropReason::SpoofedSourceMac; 2]);
    // D has port security off: another source MAC is switched.
    let mut out = run(&mut p, D, &[ipv4(mac(B), MacAddr([0x52, 0x54, 0, 0, 0, 0x77]))]);
    assert_eq!(sent(&mut out, B).len(), 1);
    assert_eq!(balanced(&p).ports[A.index()].dropped[DropReason::SpoofedSourceMac as usize], 2);
}

#[test]
fn zero_and_group_source_macs_are_dropped_even_without_port_security() {
    let mut p = processor(config(true));
    let frames = [
        ipv4(mac(B), MacAddr::ZERO),
        ipv4(mac(B), MacAddr::BROADCAST),
        ipv4(mac(B), MacAddr([0x01, 0, 0x5e, 0, 0, 1])),
    ];
    let out = run(&mut p, D, &frames);
    assert_eq!(reasons(&out), vec![DropReason::BadSourceMac; 3]);
    balanced(&p);
}

#[test]
fn tagged_frames_from_a_vm_are_dropped() {
    let mut p = processor(config(true));
    let once = tagged(100, &ipv4(mac(B), mac(A)));
    let twice = tagged(5, &once);
    let mut qinq = once.clone();
    qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
    let out = run(&mut p, A, &[once, twice, qinq]);
    assert_eq!(reasons(&out), vec![DropReason::TaggedFromVnic; 3]);
}

#[test]
fn runts_are_dropped() {
    let mut p = processor(config(true));
    let out = run(&mut p, A, &[vec![], vec![0x52; 13]]);
    assert_eq!(reasons(&out), vec![DropReason::Runt; 2]);
    let out = run(&mut p, UPLINK, &[tagged(100, &ipv4(mac(A), mac(B)))[..17].to_vec()]);
    assert_eq!(reasons(&out), vec![DropReason::Runt]);
    balanced(&p);
}

#[test]
fn arp_with_a_foreign_sender_is_dropped_and_probes_pass() {
    let mut p = processor(config(true));
    let foreign_ip = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), Ipv4Addr::new(10, 1, 1, 9), ip(B));
    let foreign_mac = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(B), ip(A), ip(B));
    let probe = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), Ipv4Addr::UNSPECIFIED, ip(A));
    let out = run(&mut p, A, &[foreign_ip, foreign_mac, probe]);
    assert_eq!(reasons(&out), vec![DropReason::SpoofedArpSender; 2]);
    assert_eq!(out.queued(), 3, "the probe is flooded to B, D and the uplink");
    balanced(&p);
}

#[test]
fn malformed_arp_is_dropped() {
    let mut p = processor(config(true));
    let good = arp_request(A, ip(B));
    let mut truncated = good[..14 + 27].to_vec();
    truncated.truncate(41);
    let mut bad_hlen = good.clone();
    bad_hlen[14 + 4] = 7;
    let mut bad_plen = good.clone();
    bad_plen[14 + 5] = 16;
    let mut bad_ptype = good.clone();
    bad_ptype[14 + 2] = 0x86;
    let out = run(&mut p, A, &[truncated, bad_hlen, bad_plen, bad_ptype]);
    assert_eq!(reasons(&out), vec![DropReason::MalformedArp; 4]);
}

#[test]
fn neighbor_advertisements_for_foreign_targets_are_dropped() {
    let mut p = processor(config(true));
    let own = na(mac(A), ip6(A));
    let link_local = na(mac(A), pipeline::config::eui64_link_local(mac(A)));
    let foreign = na_from(mac(A), ip6(A), ip6(B));
    let out = run(&mut p, A, &[own, link_local, foreign]);
    assert_eq!(reasons(&out), vec![DropReason::SpoofedNaTarget]);
    assert_eq!(out.queued(), 2, "the two unsolicited NAs are announcements: to the uplink only");
}

#[test]
fn announcements_go_to_the_uplink_only_and_are_never_rewritten() {
    let mut p = processor(config(true));
    let garp_request = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), ip(A), ip(A));
    let garp_reply = arp(MacAddr::BROADCAST, mac(A), op::REPLY, mac(A), ip(A), ip(A));
    let rarp = eth(MacAddr::BROADCAST, mac(A), 0x8035, &[0, 1, 8, 0, 6, 4, 0, 3]);
    let na = na(mac(A), ip6(A));
    let frames = [garp_request, garp_reply, rarp, na];
    let mut out = run(&mut p, A, &frames);
    let expected: Vec<Vec<u8>> = frames.iter().map(|f| tagged(100, f)).collect();
    assert_eq!(sent(&mut out, UPLINK), expected);
    assert_eq!(out.queued(), 4, "B and D hear nothing");
    // An ARP probe (sender 0.0.0.0) and an ordinary request are still flooded.
    let probe = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), Ipv4Addr::UNSPECIFIED, ip(A));
    let out = run(&mut p, A, &[probe, arp_request(A, ip(B))]);
    assert_eq!(out.queued(), 2 * 3);
    let c = balanced(&p);
    assert_eq!((c.ports[A.index()].announcements, c.ports[A.index()].forwarded, c.ports[A.index()].flooded), (4, 4, 2));
    // Without an uplink there is no leaf to trap them: they are flooded like any broadcast.
    let mut p = processor(config(false));
    let out = run(&mut p, A, &[arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), ip(A), ip(A))]);
    assert_eq!(out.queued(), 2, "to B and D");
    assert_eq!(balanced(&p).ports[A.index()].announcements, 0);
}

#[test]
fn jumbo_frames_are_switched_and_tagged_intact() {
    let mut p = processor(config(true));
    let mut jumbo = ipv4(mac(B), mac(A));
    jumbo.resize(9000, 0xab);
    let mut unknown = jumbo.clone();
    unknown[0..6].copy_from_slice(&UNKNOWN.0);
    let mut out = run(&mut p, A, &[jumbo.clone(), unknown]);
    assert_eq!(sent(&mut out, B), vec![jumbo]);
    assert_eq!(sent(&mut out, UPLINK)[0].len(), 9004);
}

#[test]
fn uplink_unicast_to_a_local_vnic_is_delivered_untagged() {
    let mut p = processor(config(true));
    let f = ipv4(mac(A), GW);
    let mut out = run(&mut p, UPLINK, &[tagged(100, &f)]);
    assert_eq!(sent(&mut out, A), vec![f]);
    let c = balanced(&p);
    assert_eq!(c.ports[UPLINK.index()].forwarded, 1);
}

#[test]
fn uplink_drops_what_it_cannot_place() {
    let mut p = processor(config(true));
    let to_a = ipv4(mac(A), GW);
    let mut qinq = tagged(100, &to_a);
    qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
    let frames = [
        to_a.clone(),                              // untagged
        tagged(300, &to_a),                        // no such segment
        tagged(100, &tagged(7, &to_a)),            // double tag
        qinq,                                      // 802.1ad outer tag
        tagged(100, &ipv4(UNKNOWN, GW)),           // unknown unicast
        tagged(200, &to_a),                        // A is not in segment 1
        tagged(100, &ipv4(GW, GW2)),               // the gateway MAC is not local
        tagged(100, &ipv4(mac(A), MacAddr::ZERO)), // bad source
    ];
    let out = run(&mut p, UPLINK, &frames);
    assert_eq!(
        reasons(&out),
        vec![
            DropReason::UplinkUntagged,
            DropReason::UnknownSegment,
            DropReason::UplinkDoubleTagged,
            DropReason::UplinkDoubleTagged,
            DropReason::UplinkUnknownUnicast,
            DropReason::UplinkUnknownUnicast,
            DropReason::UplinkUnknownUnicast,
            DropReason::BadSourceMac,
        ]
    );
    balanced(&p);
}

#[test]
fn uplink_broadcast_floods_the_segments_vms_untagged() {
    let mut p = processor(config(true));
    let f = arp(MacAddr::BROADCAST, GW, op::REQUEST, GW, Ipv4Addr::new(10, 1, 1, 254), ip(A));
    let mut out = run(&mut p, UPLINK, &[tagged(100, &f)]);
    for port in [A, B, D] {
        assert_eq!(sent(&mut out, port), vec![f.clone()], "port {port}");
    }
    assert!(sent(&mut out, C).is_empty() && sent(&mut out, UPLINK).is_empty());
    let c = balanced(&p);
    assert_eq!((c.ports[UPLINK.index()].flooded, c.ports[UPLINK.index()].flood_copies), (1, 2));
}

#[test]
fn without_an_uplink_unknown_unicast_and_lonely_floods_are_dropped() {
    let mut p = processor(config(false));
    let out = run(&mut p, A, &[ipv4(UNKNOWN, mac(A))]);
    assert_eq!(reasons(&out), vec![DropReason::NoUplink]);
    let out = run(&mut p, C, &[arp_request(C, Ipv4Addr::new(10, 2, 2, 9))]);
    assert_eq!(reasons(&out), vec![DropReason::NoFloodTarget]);
    let mut out = run(&mut p, A, &[arp_request(A, ip(B))]);
    assert_eq!((sent(&mut out, B).len(), sent(&mut out, D).len()), (1, 1), "floods still reach the segment");
    balanced(&p);
}

/// The MAC table is shared and written by the control plane; a worker's configuration is
/// its own snapshot. A MAC installed for a port the snapshot does not have yet (beyond
/// every port it knows, or in a gap), or still there for one it no longer has, must never
/// be indexed: the frame is dropped and counted.
#[test]
fn a_table_entry_for_a_port_the_snapshot_lacks_is_a_counted_drop() {
    let cfg = config(true);
    let table = Arc::new(MacTable::new(1024).unwrap());
    for (k, v) in cfg.table_entries() {
        table.insert(k, v).unwrap();
    }
    let (beyond, gap) = (MacAddr([0x52, 0x54, 0, 0, 0, 0x77]), MacAddr([0x52, 0x54, 0, 0, 0, 0x78]));
    table.insert(key(beyond, SegmentSlot(0)), value(PortId(cfg.max_port().0 + 3), EntryKind::Local)).unwrap();
    let mut cfg2 = cfg.clone();
    cfg2.remove_port(B).unwrap();
    table.insert(key(gap, SegmentSlot(0)), value(B, EntryKind::Local)).unwrap();
    let mut p = Processor::new(table.reader().unwrap(), Arc::new(cfg2));
    let out = run(&mut p, A, &[ipv4(beyond, mac(A)), ipv4(gap, mac(A))]);
    assert_eq!(reasons(&out), vec![DropReason::PortNotReady, DropReason::PortNotReady]);
    let out = run(&mut p, UPLINK, &[tagged(100, &ipv4(beyond, GW)), tagged(100, &ipv4(gap, GW))]);
    assert_eq!(reasons(&out), vec![DropReason::PortNotReady, DropReason::PortNotReady]);
    let c = balanced(&p);
    assert_eq!(c.ports[A.index()].dropped[DropReason::PortNotReady as usize], 2);
}

#[test]
fn frames_from_an_unconfigured_port_are_dropped() {
    let mut p = processor(config(true));
    let out = run(&mut p, PortId(42), &[ipv4(mac(A), mac(B))]);
    assert_eq!(reasons(&out), vec![DropReason::UnknownPort]);
    balanced(&p);
}

#[test]
fn the_local_arp_responder_answers_for_local_vms_and_the_subnet() {
    let mut p = processor(with_responder(config(true)));
    let outside = Ipv4Addr::new(192, 168, 1, 1);
    let garp = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), ip(A), ip(A));
    let mut out = run(
        &mut p,
        A,
        &[arp_request(A, ip(B)), arp_request(A, Ipv4Addr::new(10, 1, 1, 50)), arp_request(A, outside), garp],
    );
    let replies = sent(&mut out, A);
    assert_eq!(replies.len(), 2);
    for (reply, (answer, asked)) in replies.iter().zip([(mac(B), ip(B)), (GW, Ipv4Addr::new(10, 1, 1, 50))]) {
        assert_eq!(&reply[0..6], &mac(A).0, "back to the requester");
        assert_eq!(&reply[6..12], &answer.0);
        let a = ArpPacket::new_checked(&reply[14..]).unwrap();
        assert_eq!((a.operation(), a.sender_mac(), a.sender_ip()), (op::REPLY, answer, asked));
        assert_eq!((a.target_mac(), a.target_ip()), (mac(A), ip(A)));
    }
    assert_eq!(sent(&mut out, UPLINK).len(), 2, "the outside query (flooded) and the announcement (trapped)");
    let c = balanced(&p);
    let a = &c.ports[A.index()];
    assert_eq!((a.arp_replies, a.announcements, a.forwarded, a.flooded), (2, 1, 3, 1));
}

/// A frame whose buffer cannot be written, grown or copied.
struct Stuck(Vec<u8>);

impl Frame for Stuck {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        None
    }
    fn prepend(&mut self, _: usize) -> bool {
        false
    }
    fn adj(&mut self, _: usize) -> bool {
        false
    }
    fn duplicate(&self) -> Option<Self> {
        None
    }
}

#[test]
fn unwritable_buffers_no_headroom_and_failed_copies_are_counted() {
    let mut p = processor(config(true));
    let mut out: Output<Stuck> = Output::new();
    let frames = [ipv4(UNKNOWN, mac(A)), ipv4(GW, mac(A)), arp_request(A, ip(B))];
    p.process(A, frames.iter().map(|f| Stuck(f.clone())), &mut out);
    let r: Vec<DropReason> = out.drops.iter().map(|(_, r)| *r).collect();
    assert_eq!(r, vec![DropReason::Unwritable, DropReason::NoHeadroom]);
    // The broadcast: the uplink's own copy (to tag) and B's share fail; the original
    // still reaches D.
    assert_eq!(out.queue(D).len(), 1);
    let c = balanced(&p);
    assert_eq!((c.ports[A.index()].flood_copy_failures, c.ports[A.index()].flooded), (2, 1));
}

#[test]
fn bursts_longer_than_32_are_processed_in_passes_and_in_order() {
    let mut p = processor(config(true));
    let frames: Vec<Vec<u8>> = (0..100u8)
        .map(|i| {
            let mut f = ipv4(mac(B), mac(A));
            f[50] = i;
            f
        })
        .collect();
    let mut out = run(&mut p, A, &frames);
    let got: Vec<u8> = sent(&mut out, B).iter().map(|f| f[50]).collect();
    assert_eq!(got, (0..100).collect::<Vec<u8>>());
    assert_eq!(balanced(&p).ports[A.index()].rx, 100);
}

#[test]
fn every_drop_reason_is_named_and_counted_somewhere() {
    let names: std::collections::HashSet<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::COUNT);
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "ALL is in discriminant order");
    }
    let _ = ByteFrame::new(&[]);
}

#[test]
fn a_native_segment_is_untagged_on_the_uplink() {
    let mut cfg = config(true);
    let mut seg1 = cfg.segment(SegmentSlot(1)).unwrap().clone();
    seg1.encap = Encap::Native;
    cfg.set_segment(SegmentSlot(1), seg1.clone()).unwrap();
    let mut other = cfg.segment(SegmentSlot(0)).unwrap().clone();
    other.encap = Encap::Native;
    assert_eq!(
        cfg.set_segment(SegmentSlot(0), other),
        Err(pipeline::ConfigError::NativeInUse(SegmentSlot(1))),
        "one native segment at most"
    );
    let mut p = processor(cfg);
    // Up: unknown unicast from C is rewritten and sent untagged; segment 0 stays tagged.
    let mut out = run(&mut p, C, &[ipv4(UNKNOWN, mac(C))]);
    let mut expected = ipv4(UNKNOWN, mac(C));
    expected[0..6].copy_from_slice(&GW2.0);
    assert_eq!(sent(&mut out, UPLINK), vec![expected]);
    let mut out = run(&mut p, A, &[ipv4(UNKNOWN, mac(A))]);
    assert_eq!(&sent(&mut out, UPLINK)[0][12..16], &[0x81, 0x00, 0x00, 100]);
    // Down: untagged frames belong to the native segment; its VLAN tag is not accepted.
    let to_c = ipv4(mac(C), GW2);
    let bcast = arp(MacAddr::BROADCAST, GW2, op::REQUEST, GW2, Ipv4Addr::new(10, 2, 2, 254), ip(C));
    let mut out = run(&mut p, UPLINK, &[to_c.clone(), bcast.clone(), tagged(200, &to_c), ipv4(mac(A), GW)]);
    assert_eq!(sent(&mut out, C), vec![to_c, bcast]);
    assert_eq!(reasons(&out), vec![DropReason::UnknownSegment, DropReason::UplinkUnknownUnicast]);
    balanced(&p);
}

#[test]
fn announcements_are_recognized_by_what_the_leaf_parses() {
    use pipeline::announce::{parse, Kind};
    let garp = arp(MacAddr::BROADCAST, mac(A), op::REPLY, mac(A), ip(A), ip(A));
    let got = parse(&garp).unwrap();
    assert_eq!((got.kind, got.mac, got.ip), (Kind::GratuitousArp, mac(A), Some(ip(A).into())));
    let rarp = eth(MacAddr::BROADCAST, mac(B), 0x8035, &[0, 1, 8, 0, 6, 4, 0, 3]);
    assert_eq!(parse(&rarp).map(|a| (a.kind, a.mac, a.ip)), Some((Kind::Rarp, mac(B), None)));
    let na = na(mac(A), ip6(A));
    assert_eq!(parse(&na).map(|a| (a.kind, a.ip)), Some((Kind::UnsolicitedNa, Some(ip6(A).into()))));
    // Not announcements: a request for someone else, a probe, unicast, garbage.
    assert_eq!(parse(&arp_request(A, ip(B))), None);
    assert_eq!(parse(&arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), Ipv4Addr::UNSPECIFIED, ip(A))), None);
    assert_eq!(parse(&arp(mac(B), mac(A), op::REPLY, mac(A), ip(A), ip(A))), None);
    assert_eq!(parse(&[0xff; 13]), None);
    assert_eq!(parse(&eth(MacAddr::BROADCAST, mac(A), 0x0806, &[1, 2, 3])), None);
}

#[test]
fn a_vm_that_is_away_is_reached_through_the_leaf_and_never_flooded_to() {
    let mut cfg = with_responder(config(true));
    cfg.set_away(A, true).unwrap();
    let mut p = processor(cfg);
    // From B: unicast to A's real MAC goes up with the anycast MAC, as unknown unicast
    // does; a broadcast skips A; the responder answers for A's address with the anycast MAC.
    let to_a = ipv4(mac(A), mac(B));
    let outside = arp_request(B, Ipv4Addr::new(192, 168, 1, 1));
    let mut out = run(&mut p, B, &[to_a.clone(), outside, arp_request(B, ip(A))]);
    let mut expected = to_a.clone();
    expected[0..6].copy_from_slice(&GW.0);
    let up = sent(&mut out, UPLINK);
    assert_eq!(up[0], tagged(100, &expected));
    assert_eq!(up.len(), 2, "the rerouted frame and the flooded request");
    assert!(sent(&mut out, A).is_empty(), "nothing to the away VM's port from its neighbours");
    assert_eq!(sent(&mut out, D).len(), 1, "the broadcast still reaches D");
    let replies = sent(&mut out, B);
    assert_eq!(replies.len(), 1);
    assert_eq!(ArpPacket::new_checked(&replies[0][14..]).unwrap().sender_mac(), GW, "A's address is at the gateway");
    // From the uplink: frames for A still go to its port (which holds them), never back up.
    let mut out = run(&mut p, UPLINK, &[tagged(100, &ipv4(mac(A), GW))]);
    assert_eq!(sent(&mut out, A).len(), 1);
    assert!(sent(&mut out, UPLINK).is_empty());
    let c = balanced(&p);
    let b = &c.ports[B.index()];
    assert_eq!((b.to_away, b.rewritten, b.forwarded, b.flooded, b.arp_replies), (1, 1, 2, 1, 1));
    // Here again: B reaches A directly.
    let mut cfg = p.config().as_ref().clone();
    cfg.set_away(A, false).unwrap();
    p.set_config(Arc::new(cfg));
    let mut out = run(&mut p, B, std::slice::from_ref(&to_a));
    assert_eq!(sent(&mut out, A), vec![to_a]);
    assert_eq!(balanced(&p).ports[B.index()].to_away, 1);
}
