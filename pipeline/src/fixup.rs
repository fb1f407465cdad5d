//! The frames ARP fix-ups are made of: "IP X is at MAC Y", sent unicast to one VM.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::mac::MacAddr;

use crate::wire::arp::{op, ArpPacket, ArpRepr};
use crate::wire::ethernet::{ethertype, EthernetFrame, EthernetRepr, HEADER_LEN};
use crate::wire::icmpv6::{na_flags, NdiscRepr};
use crate::wire::ipv6::{next_header, Ipv6Repr};

/// Length of a gratuitous ARP frame (padded to the 60-byte Ethernet minimum).
pub const GARP_LEN: usize = 60;

/// A gratuitous ARP reply telling one VM (`to`, its MAC) that `ip` is at `mac`.
///
/// It is a reply with sender = target = (`mac`, `ip`): Linux treats such a frame as
/// gratuitous, so it overrides an existing neighbour entry at once (no locktime) and marks
/// it reachable, while creating no entry where there was none. Ethernet destination is the
/// VM's own MAC, so no other VM ever receives it.
pub fn gratuitous_arp(to: MacAddr, ip: Ipv4Addr, mac: MacAddr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    EthernetRepr { dst: to, src: mac, ethertype: ethertype::ARP }.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    ArpRepr { operation: op::REPLY, sender_mac: mac, sender_ip: ip, target_mac: mac, target_ip: ip }
        .emit(&mut ArpPacket::new_unchecked(&mut f[HEADER_LEN..]));
    f
}

/// Length of an unsolicited neighbor advertisement frame with its target link-layer option.
pub const NA_LEN: usize = HEADER_LEN + 40 + 32;

/// An unsolicited neighbor advertisement (override set, solicited clear) telling one VM
/// (`to`) that `ip` is at `mac`. Sent to all-nodes at the IP layer, which Linux accepts
/// without the solicited flag, but to the VM's own MAC at the Ethernet layer.
pub fn unsolicited_na(to: MacAddr, ip: Ipv6Addr, mac: MacAddr) -> [u8; NA_LEN] {
    let mut f = [0u8; NA_LEN];
    EthernetRepr { dst: to, src: mac, ethertype: ethertype::IPV6 }.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let na = NdiscRepr::Advert { flags: na_flags::OVERRIDE, target: ip, target_lladdr: Some(mac) };
    Ipv6Repr {
        src: ip,
        dst: all_nodes,
        next_header: next_header::ICMPV6,
        hop_limit: 255,
        payload_len: na.buffer_len(),
    }
    .emit(&mut f[HEADER_LEN..]);
    na.emit(&mut f[HEADER_LEN + 40..], &ip, &all_nodes);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv6::NdiscPacket;
    use crate::wire::ipv6::Ipv6Packet;

    #[test]
    fn gratuitous_arp_is_unicast_to_the_vm() {
        let vm = MacAddr([0x52, 0x54, 0, 0, 0, 2]);
        let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
        let f = gratuitous_arp(vm, Ipv4Addr::new(10, 1, 1, 1), gw);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!((e.dst(), e.src(), e.ethertype()), (vm, gw, ethertype::ARP));
        let a = ArpRepr::parse(&ArpPacket::new_unchecked(e.payload())).unwrap();
        assert_eq!(
            a,
            ArpRepr {
                operation: op::REPLY,
                sender_mac: gw,
                sender_ip: Ipv4Addr::new(10, 1, 1, 1),
                target_mac: gw,
                target_ip: Ipv4Addr::new(10, 1, 1, 1)
            }
        );
    }

    #[test]
    fn unsolicited_na_overrides_and_verifies() {
        let vm = MacAddr([0x52, 0x54, 0, 0, 0, 2]);
        let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
        let ip: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let f = unsolicited_na(vm, ip, gw);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!((e.dst(), e.ethertype()), (vm, ethertype::IPV6));
        let p = Ipv6Packet::new_checked(e.payload()).unwrap();
        assert_eq!(p.hop_limit(), 255);
        let (nh, icmp) = p.upper_layer().unwrap();
        assert_eq!(nh, next_header::ICMPV6);
        let nd = NdiscPacket::new_checked(icmp).unwrap();
        assert!(nd.checksum_ok(&p.src(), &p.dst()));
        assert_eq!(
            NdiscRepr::parse(&nd).unwrap(),
            NdiscRepr::Advert { flags: na_flags::OVERRIDE, target: ip, target_lladdr: Some(gw) }
        );
    }
}
