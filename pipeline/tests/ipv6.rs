//! IPv6 from VM ports: port security on source addresses and on neighbor discovery,
//! IPv6's announcements, and the local responder's neighbor advertisements, on byte-array
//! frames.

mod common;

use std::net::Ipv6Addr;

use common::*;
use pipeline::config::eui64_link_local;
use pipeline::wire::icmpv6::{na_flags, NdiscPacket, NdiscRepr};
use pipeline::wire::ipv6::{next_header, Ipv6Packet};
use pipeline::{DropReason, MacAddr, SegmentSlot};

const UDP: u8 = 17;
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

fn outside() -> Ipv6Addr {
    "2001:db9::1".parse().unwrap()
}

/// A UDP datagram from `from` to an address behind the leaf (unicast to the gateway MAC).
fn udp(src: MacAddr, from: Ipv6Addr) -> Vec<u8> {
    ipv6(GW, src, from, outside(), UDP, &[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0])
}

/// A router solicitation (type 133) and an MLDv2 report (type 143, after a hop-by-hop
/// header with router alert) from `::`, as an interface without an address sends them.
fn rs_and_mld_from_unspecified(src: MacAddr) -> [Vec<u8>; 2] {
    let rs = ipv6(
        MacAddr([0x33, 0x33, 0, 0, 0, 2]),
        src,
        Ipv6Addr::UNSPECIFIED,
        ALL_ROUTERS,
        58,
        &[133, 0, 0, 0, 0, 0, 0, 0],
    );
    let mut mld = vec![next_header::ICMPV6, 0, 5, 2, 0, 0, 1, 0];
    mld.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 0]);
    let mld = ipv6(MacAddr([0x33, 0x33, 0, 0, 0, 0x16]), src, Ipv6Addr::UNSPECIFIED, MLDV2_ROUTERS, 0, &mld);
    [rs, mld]
}

#[test]
fn ipv6_sources_must_be_the_vms_own_and_unspecified_only_where_nd_allows() {
    let mut p = processor(config(true));
    let [rs, mld] = rs_and_mld_from_unspecified(mac(A));
    let own = [udp(mac(A), ip6(A)), udp(mac(A), eui64_link_local(mac(A))), rs, mld];
    let out = run(&mut p, A, &own);
    assert!(out.drops.is_empty(), "{:?}", reasons(&out));
    let spoofed = [udp(mac(A), ip6(B)), udp(mac(A), eui64_link_local(mac(B))), udp(mac(A), Ipv6Addr::UNSPECIFIED)];
    let out = run(&mut p, A, &spoofed);
    assert_eq!(reasons(&out), vec![DropReason::SpoofedIpv6Source; 3]);
    // A header cut short, a wrong version, a payload length past the frame.
    let good = udp(mac(A), ip6(A));
    let short = good[..14 + 39].to_vec();
    let mut v4 = good.clone();
    v4[14] = 0x40;
    let mut long = good.clone();
    long[14 + 5] = 200;
    let out = run(&mut p, A, &[short.clone(), v4, long]);
    assert_eq!(reasons(&out), vec![DropReason::MalformedIpv6; 3]);
    // D has no port security: it may send anything.
    let out = run(&mut p, D, &[udp(mac(D), ip6(B)), short]);
    assert!(out.drops.is_empty(), "{:?}", reasons(&out));
    assert_eq!(balanced(&p).ports[A.index()].dropped_total(), 6);
}

#[test]
fn neighbor_discovery_is_checked_target_link_layer_address_and_form() {
    let mut p = processor(config(true));
    let foreign_sll = ns(mac(A), ip6(A), ip6(B), Some(mac(B)));
    let foreign_tll = {
        let mut f = na(mac(A), ip6(A));
        let at = f.len() - 6;
        f[at..].copy_from_slice(&mac(B).0);
        f
    };
    let dad_for_b = ns(mac(A), Ipv6Addr::UNSPECIFIED, ip6(B), None);
    let na_for_b = na_from(mac(A), ip6(A), ip6(B));
    let mut truncated = ns_from(A, ip6(B));
    truncated[14 + 5] = 20; // payload length: an ICMPv6 message of 20 bytes
    truncated.truncate(14 + 40 + 20);
    let mut code = ns_from(A, ip6(B));
    code[14 + 40 + 1] = 1;
    let out = run(&mut p, A, &[foreign_sll, foreign_tll, dad_for_b, na_for_b, truncated, code]);
    use DropReason::*;
    assert_eq!(
        reasons(&out),
        vec![SpoofedNdLladdr, SpoofedNdLladdr, SpoofedDadTarget, SpoofedNaTarget, MalformedNd, MalformedNd]
    );
    // A solicitation without a link-layer option (unicast NUD may omit it) is fine.
    let out = run(&mut p, A, &[ns(mac(A), ip6(A), ip6(B), None), ns_from(A, ip6(B))]);
    assert!(out.drops.is_empty());
    // Without port security only the form is checked.
    let mut code = ns(mac(D), ip6(D), ip6(B), Some(mac(B)));
    let out = run(&mut p, D, &[ns(mac(D), ip6(D), ip6(B), Some(mac(B))), na(mac(D), ip6(B)), code.clone()]);
    assert!(out.drops.is_empty(), "{:?}", reasons(&out));
    code[14 + 40 + 1] = 1;
    assert_eq!(reasons(&run(&mut p, D, &[code])), vec![MalformedNd]);
    balanced(&p);
}

#[test]
fn dad_probes_and_unsolicited_nas_go_to_the_uplink_only_and_the_leaf_parses_them() {
    use pipeline::announce::{parse, Kind};
    let mut p = processor(config(true));
    let dad = ns(mac(A), Ipv6Addr::UNSPECIFIED, ip6(A), None);
    let dad_ll = ns(mac(A), Ipv6Addr::UNSPECIFIED, eui64_link_local(mac(A)), None);
    let unsolicited = na(mac(A), ip6(A));
    let frames = [dad.clone(), dad_ll, unsolicited.clone()];
    let mut out = run(&mut p, A, &frames);
    assert_eq!(sent(&mut out, UPLINK), frames.iter().map(|f| tagged(100, f)).collect::<Vec<_>>());
    assert_eq!(out.queued(), 3, "B and D hear nothing");
    // An ordinary solicitation is flooded (B, D, the uplink) and is no announcement.
    let resolve = ns_from(A, ip6(B));
    assert_eq!(run(&mut p, A, std::slice::from_ref(&resolve)).queued(), 3);
    assert_eq!(balanced(&p).ports[A.index()].announcements, 3);
    let got = |f: &[u8]| parse(f).map(|a| (a.kind, a.mac, a.ip));
    assert_eq!(got(&dad), Some((Kind::DadProbe, mac(A), Some(ip6(A).into()))));
    assert_eq!(got(&unsolicited), Some((Kind::UnsolicitedNa, mac(A), Some(ip6(A).into()))));
    assert_eq!(got(&resolve), None);
    assert_eq!(Kind::DadProbe.as_str(), "dad-probe");
}

/// The advertisement the responder made: (Ethernet dst, src), (IPv6 src, dst, hop limit),
/// what it says, and whether its checksum verifies.
fn advert(f: &[u8]) -> ((MacAddr, MacAddr), (Ipv6Addr, Ipv6Addr, u8), NdiscRepr, bool) {
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let nd = NdiscPacket::new_checked(ip.payload()).unwrap();
    let repr = NdiscRepr::parse(&nd).unwrap();
    (
        (MacAddr::at(f, 0), MacAddr::at(f, 6)),
        (ip.src(), ip.dst(), ip.hop_limit()),
        repr,
        nd.checksum_ok(&ip.src(), &ip.dst()),
    )
}

#[test]
fn the_local_responder_answers_solicitations_for_local_vms_and_the_subnet() {
    let mut p = processor(with_responder(config(true)));
    let on_subnet: Ipv6Addr = "2001:db8::50".parse().unwrap();
    let without_option = ns(mac(A), ip6(A), ip6(B), None);
    let frames = [ns_from(A, ip6(B)), ns_from(A, on_subnet), ns_from(A, outside()), without_option, ns_from(A, ip6(A))];
    let mut out = run(&mut p, A, &frames);
    let replies = sent(&mut out, A);
    assert_eq!(replies.len(), 2);
    for (reply, (answer, asked)) in replies.iter().zip([(mac(B), ip6(B)), (GW, on_subnet)]) {
        let (eth, ip, nd, checksum_ok) = advert(reply);
        assert_eq!(eth, (mac(A), answer), "back to the requester, from the answer");
        assert_eq!(ip, (asked, ip6(A), 255));
        let flags = na_flags::SOLICITED | na_flags::OVERRIDE;
        assert_eq!(nd, NdiscRepr::Advert { flags, target: asked, target_lladdr: Some(answer) });
        assert!(checksum_ok);
        assert_eq!(reply.len(), frames[0].len(), "made in place");
    }
    // The outside, option-less and self solicitations are flooded: B, D and the uplink each.
    assert_eq!(out.queued(), 2 + 3 * 3);
    let c = balanced(&p);
    let a = &c.ports[A.index()];
    assert_eq!((a.nd_replies, a.arp_replies, a.forwarded, a.flooded), (2, 0, 2, 3));
    // A VM that is away is answered for with the anycast MAC; the responder off answers nothing.
    let mut cfg = with_responder(config(true));
    cfg.set_away(B, true).unwrap();
    let mut p = processor(cfg);
    let mut out = run(&mut p, A, &[ns_from(A, ip6(B))]);
    assert_eq!(advert(&sent(&mut out, A)[0]).0, (mac(A), GW));
    let mut p = processor(config(true));
    let mut out = run(&mut p, A, &[ns_from(A, ip6(B))]);
    assert!(sent(&mut out, A).is_empty());
    assert_eq!(balanced(&p).ports[A.index()].nd_replies, 0);
    // In another segment the address is C's own, not segment 0's: C's segment has no
    // responder, so C's solicitation for B is flooded.
    let c6 = ip6(C);
    let mut p = processor(with_responder(config(true)));
    assert!(p.config().segment(SegmentSlot(1)).is_some());
    let out = run(&mut p, C, &[ns(mac(C), c6, ip6(B), Some(mac(C)))]);
    assert_eq!(balanced(&p).ports[C.index()].nd_replies, 0);
    assert!(out.drops.is_empty());
}

#[test]
fn the_leaf_recognizes_requests_for_a_neighbour_of_both_families() {
    use pipeline::announce::{solicitation, Solicitation};
    use pipeline::wire::arp::op;
    let asks = |mac, target: std::net::IpAddr| Some(Solicitation { mac, target });
    assert_eq!(solicitation(&arp_request(A, ip(B))), asks(mac(A), ip(B).into()));
    // A unicast refresh counts too.
    let unicast = arp(GW, mac(A), op::REQUEST, mac(A), ip(A), ip(B));
    assert_eq!(solicitation(&unicast), asks(mac(A), ip(B).into()));
    assert_eq!(solicitation(&ns_from(A, ip6(B))), asks(mac(A), ip6(B).into()));
    // Not requests: an answer, a gratuitous ARP, a probe, DAD, an advertisement, garbage.
    assert_eq!(solicitation(&arp(mac(A), mac(B), op::REPLY, mac(B), ip(B), ip(A))), None);
    assert_eq!(solicitation(&arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), ip(A), ip(A))), None);
    let probe = arp(MacAddr::BROADCAST, mac(A), op::REQUEST, mac(A), std::net::Ipv4Addr::UNSPECIFIED, ip(B));
    assert_eq!(solicitation(&probe), None);
    assert_eq!(solicitation(&ns(mac(A), Ipv6Addr::UNSPECIFIED, ip6(A), None)), None);
    assert_eq!(solicitation(&na(mac(A), ip6(A))), None);
    assert_eq!(solicitation(&[0xff; 13]), None);
}
