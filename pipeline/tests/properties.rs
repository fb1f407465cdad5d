//! Hostile input: random frames (biased towards the MACs, EtherTypes and tags the switch
//! knows) from random ports. Nothing panics, every frame is accounted for, the counters add
//! up, uplink frames are always tagged, and nothing goes back out of its input port except
//! the local responder's ARP replies and neighbor advertisements.

mod common;

use common::*;
use pipeline::{ByteFrame, Frame, MacAddr, Output, PortId, SegmentSlot};
use proptest::prelude::*;

fn mac_choice() -> impl Strategy<Value = MacAddr> {
    prop_oneof![
        Just(mac(A)),
        Just(mac(B)),
        Just(mac(C)),
        Just(mac(D)),
        Just(UNKNOWN),
        Just(GW),
        Just(MacAddr::BROADCAST),
        Just(MacAddr::ZERO),
        any::<[u8; 6]>().prop_map(MacAddr),
    ]
}

fn ethertype() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0x0800u16), Just(0x0806), Just(0x86dd), Just(0x8100), Just(0x88a8), any::<u16>()]
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    (mac_choice(), mac_choice(), ethertype(), proptest::collection::vec(any::<u8>(), 0..120), 0usize..200).prop_map(
        |(dst, src, et, body, cut)| {
            let mut f = Vec::new();
            f.extend_from_slice(&dst.0);
            f.extend_from_slice(&src.0);
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&body);
            f.truncate(cut.max(1));
            f
        },
    )
}

fn ip6_choice() -> impl Strategy<Value = std::net::Ipv6Addr> {
    prop_oneof![
        Just(ip6(A)),
        Just(ip6(B)),
        Just(ip6(D)),
        Just(std::net::Ipv6Addr::UNSPECIFIED),
        Just(pipeline::config::eui64_link_local(mac(A))),
        any::<u128>().prop_map(std::net::Ipv6Addr::from),
    ]
}

/// Neighbor solicitations and advertisements from any of the VMs' addresses and MACs,
/// then one byte changed or the frame cut.
fn nd_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        mac_choice(),
        ip6_choice(),
        ip6_choice(),
        prop_oneof![Just(None), mac_choice().prop_map(Some)],
        any::<bool>(),
        any::<(u8, u8)>(),
        0usize..100,
    )
        .prop_map(|(src, from, target, ll, solicit, (at, to), cut)| {
            let mut f = if solicit { ns(src, from, target, ll) } else { na_from(src, from, target) };
            let at = 14 + at as usize % (f.len() - 14);
            if to % 4 == 0 {
                f[at] = to;
            }
            if cut > 90 {
                f.truncate(14 + cut % (f.len() - 14));
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_burst_is_fully_accounted_for(
        bursts in proptest::collection::vec((prop_oneof![Just(UPLINK), Just(A), Just(B), Just(C), Just(D), Just(PortId(9))], proptest::collection::vec(prop_oneof![3 => frame(), 1 => nd_frame()], 0..40)), 1..6),
        responder in any::<bool>(),
        with_uplink in any::<bool>(),
    ) {
        let mut cfg = config(with_uplink);
        let mut seg = cfg.segment(SegmentSlot(0)).unwrap().clone();
        seg.arp_responder = responder;
        cfg.set_segment(SegmentSlot(0), seg).unwrap();
        let mut p = processor(cfg);
        for (port, frames) in bursts {
            let before = p.counters().clone();
            let mut out: Output<ByteFrame> = Output::new();
            p.process(port, frames.iter().map(|f| ByteFrame::new(f)), &mut out);
            let after = p.counters().clone();
            prop_assert!(after.balanced());
            let mine = |c: &pipeline::Counters| c.ports.get(port.index()).copied().unwrap_or_default();
            let (b, a) = (mine(&before), mine(&after));
            prop_assert_eq!(a.rx - b.rx, frames.len() as u64);
            prop_assert_eq!(out.drops.len() as u64, a.dropped_total() - b.dropped_total());
            let copies = a.flood_copies - b.flood_copies;
            let sent_once = (a.forwarded - b.forwarded) + (a.flooded - b.flooded);
            prop_assert_eq!(out.queued() as u64, sent_once + copies, "queued = originals + copies");
            let back = out.queue(port).len() as u64;
            let replies = (a.arp_replies - b.arp_replies) + (a.nd_replies - b.nd_replies);
            prop_assert_eq!(back, replies, "only the responder's replies go back out");
            if with_uplink {
                for f in out.queue(UPLINK).iter() {
                    prop_assert_eq!(&f.bytes()[12..14], &[0x81, 0x00]);
                }
            }
            for vm in [A, B, C, D] {
                for f in out.queue(vm).iter() {
                    prop_assert!(f.bytes().len() >= 14);
                    prop_assert_ne!(&f.bytes()[12..14], &[0x81, 0x00], "VMs get untagged frames");
                }
            }
        }
    }
}
