//! IPv6 from a VM port: port security on source addresses and on neighbor discovery (the
//! NS/NA target and link-layer address options), IPv6's announcements (unsolicited NAs,
//! DAD probes), and the local responder's answer to a neighbor solicitation.
//!
//! A VM's own IPv6 addresses are those configured for it plus the EUI-64 link-local
//! address of its MAC (a guest using another link-local scheme, such as stable privacy
//! addresses, must list that address too). The unspecified source `::` is allowed only
//! where RFC 4861 and the MLD RFCs allow it: DAD's neighbor solicitations, router
//! solicitations and multicast listener reports of an interface that has no address yet.

use std::net::Ipv6Addr;

use crate::config::{PortId, SegmentConfig, SwitchConfig, VnicConfig};
use crate::counters::DropReason;
use crate::process::Verdict;
use crate::wire::ethernet::HEADER_LEN;
use crate::wire::icmpv6::{
    na_flags, NdiscPacket, NdiscRepr, MLDV2_REPORT, MLD_DONE, MLD_REPORT, ND_LEN, NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT,
    ROUTER_SOLICIT,
};
use crate::wire::ipv6::{self, next_header, Ipv6Packet};
use crate::wire::mac::MacAddr;

/// The verdict for an IPv6 frame from a VM port (untagged, `b` the whole frame), or `None`
/// when the ordinary rules apply (lookup or flood).
#[inline]
pub(crate) fn classify(
    b: &[u8],
    cfg: &SwitchConfig,
    port: PortId,
    v: &VnicConfig,
    seg: &SegmentConfig,
    dst_multicast: bool,
) -> Option<Verdict> {
    let drop = |r| Some(Verdict::Drop(r));
    let Ok(p) = Ipv6Packet::new_checked(&b[HEADER_LEN..]) else {
        // Without a header there is no source to check.
        return if v.port_security { drop(DropReason::MalformedIpv6) } else { None };
    };
    let src = p.src();
    let icmp = p.upper_layer().filter(|(nh, _)| *nh == next_header::ICMPV6).map(|(_, m)| m);
    let icmp_type = icmp.and_then(|m| m.first().copied());
    let own = cfg.nd_targets(port);
    if v.port_security && !own.contains(&src) && !(src.is_unspecified() && may_be_unspecified(icmp_type)) {
        return drop(DropReason::SpoofedIpv6Source);
    }
    let (Some(m), Some(NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT)) = (icmp, icmp_type) else { return None };
    let nd = match NdiscPacket::new_checked(m) {
        Ok(nd) if nd.code() == 0 => nd,
        _ => return drop(DropReason::MalformedNd),
    };
    if v.port_security && nd.lladdr().is_some_and(|ll| ll != v.mac) {
        return drop(DropReason::SpoofedNdLladdr);
    }
    let target = nd.target();
    let target_is_own = own.contains(&target);
    if nd.msg_type() == NEIGHBOR_ADVERT {
        if v.port_security && !target_is_own {
            return drop(DropReason::SpoofedNaTarget);
        }
        // Unsolicited (to all-nodes): the VM announces itself.
        return dst_multicast.then_some(Verdict::Announce);
    }
    if src.is_unspecified() {
        // DAD: the VM probes an address it is about to use, which makes it an
        // announcement; a probe for another VM's address would look like that VM moving.
        if v.port_security && !target_is_own {
            return drop(DropReason::SpoofedDadTarget);
        }
        return dst_multicast.then_some(Verdict::Announce);
    }
    if seg.arp_responder && dst_multicast && answerable(&p, m) && !target_is_own && target != src {
        if let Some(mac) = answer(cfg, v, seg, target) {
            return Some(Verdict::NdReply(mac));
        }
    }
    None
}

/// ICMPv6 messages that may come from `::`.
fn may_be_unspecified(icmp_type: Option<u8>) -> bool {
    matches!(icmp_type, Some(NEIGHBOR_SOLICIT | ROUTER_SOLICIT | MLD_REPORT | MLD_DONE | MLDV2_REPORT))
}

/// The responder answers a solicitation it can turn into the advertisement in place: no
/// extension headers, and exactly one option, the source link-layer address (which a
/// multicast solicitation from a specified source must carry).
fn answerable<T: AsRef<[u8]>>(p: &Ipv6Packet<T>, m: &[u8]) -> bool {
    p.next_header() == next_header::ICMPV6 && m.len() == ND_LEN + 8 && m[ND_LEN] == 1 && m[ND_LEN + 1] == 1
}

/// A local VM's real MAC for its address, the anycast MAC for any other address of the
/// segment's subnets (a VM that is away has no local entry: the leaf knows where it is).
fn answer(cfg: &SwitchConfig, v: &VnicConfig, seg: &SegmentConfig, target: Ipv6Addr) -> Option<MacAddr> {
    match cfg.local_ipv6_mac(v.segment, target) {
        Some(mac) => Some(mac),
        None => seg.subnets.iter().any(|n| n.contains(target.into())).then_some(seg.anycast),
    }
}

/// Turns a neighbor solicitation (checked by [`classify`]) into the solicited advertisement
/// "target is at `mac`", back to its sender: Ethernet and IPv6 addresses swapped (the
/// target answers), flags solicited and override, the target link-layer option, a new
/// checksum. The frame keeps its length.
pub(crate) fn make_na_reply(b: &mut [u8], mac: MacAddr) {
    let requester = MacAddr::at(b, 6);
    b[0..6].copy_from_slice(&requester.0);
    b[6..12].copy_from_slice(&mac.0);
    let ip = &mut b[HEADER_LEN..];
    let p = Ipv6Packet::new_unchecked(&*ip);
    let (asker, target) = (p.src(), NdiscPacket::new_unchecked(&ip[ipv6::HEADER_LEN..]).target());
    ip[7] = 255;
    ip[8..24].copy_from_slice(&target.octets());
    ip[24..40].copy_from_slice(&asker.octets());
    let na = NdiscRepr::Advert { flags: na_flags::SOLICITED | na_flags::OVERRIDE, target, target_lladdr: Some(mac) };
    na.emit(&mut ip[ipv6::HEADER_LEN..], &target, &asker);
}
