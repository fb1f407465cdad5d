//! A VM's announcements of itself: gratuitous ARP, RARP, unsolicited IPv6 neighbor
//! advertisements and duplicate address detection probes (a neighbor solicitation from
//! `::`, which a guest sends for each address it takes up). vswitchd sends them to the uplink only; the leaf traps them to learn
//! that a VM has arrived (after a live migration, a virtio guest sends a few gratuitous
//! ARPs; QEMU or the vhost library send a RARP when the guest cannot).

use std::net::{IpAddr, Ipv6Addr};

use crate::wire::mac::MacAddr;

use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{ethertype, HEADER_LEN};
use crate::wire::icmpv6::{NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT};
use crate::wire::ipv6::{next_header, Ipv6Packet};

/// What kind of announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GratuitousArp,
    Rarp,
    UnsolicitedNa,
    DadProbe,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GratuitousArp => "garp",
            Kind::Rarp => "rarp",
            Kind::UnsolicitedNa => "unsolicited-na",
            Kind::DadProbe => "dad-probe",
        }
    }
}

/// An announcement: who (the MAC) and, except for RARP, which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub kind: Kind,
    pub mac: MacAddr,
    pub ip: Option<IpAddr>,
}

/// Whether an ARP packet announces its sender: sender IP = target IP, and not a probe
/// (0.0.0.0). Both the request and the reply forms count.
pub fn is_gratuitous<T: AsRef<[u8]>>(a: &ArpPacket<T>) -> bool {
    let spa = a.sender_ip();
    !spa.is_unspecified() && spa == a.target_ip()
}

/// The target of a neighbor advertisement, if this IPv6 packet is one.
pub fn advertised_target(ip: &[u8]) -> Option<Ipv6Addr> {
    let p = Ipv6Packet::new_checked(ip).ok()?;
    let (nh, icmp) = p.upper_layer()?;
    if nh != next_header::ICMPV6 || icmp.len() < 24 || icmp[0] != NEIGHBOR_ADVERT {
        return None;
    }
    let t: [u8; 16] = icmp[8..24].try_into().ok()?;
    Some(t.into())
}

/// The address a duplicate address detection probe (NS from `::`) is for, if this IPv6
/// packet is one.
pub fn probed_target(ip: &[u8]) -> Option<Ipv6Addr> {
    let p = Ipv6Packet::new_checked(ip).ok()?;
    let (nh, icmp) = p.upper_layer()?;
    if !p.src().is_unspecified() || nh != next_header::ICMPV6 || icmp.len() < 24 || icmp[0] != NEIGHBOR_SOLICIT {
        return None;
    }
    let t: [u8; 16] = icmp[8..24].try_into().ok()?;
    Some(t.into())
}

/// The announcement an untagged Ethernet frame carries, if any. Only frames to a broadcast
/// or multicast address are announcements.
pub fn parse(frame: &[u8]) -> Option<Announcement> {
    if frame.len() < HEADER_LEN || frame[0] & 1 == 0 {
        return None;
    }
    let mut src = [0u8; 6];
    src.copy_from_slice(&frame[6..12]);
    let payload = &frame[HEADER_LEN..];
    match u16::from_be_bytes([frame[12], frame[13]]) {
        ethertype::ARP => {
            let a = ArpPacket::new_checked(payload).ok()?;
            is_gratuitous(&a).then(|| Announcement {
                kind: Kind::GratuitousArp,
                mac: a.sender_mac(),
                ip: Some(IpAddr::V4(a.sender_ip())),
            })
        }
        ethertype::RARP => Some(Announcement { kind: Kind::Rarp, mac: MacAddr(src), ip: None }),
        ethertype::IPV6 => {
            let (kind, t) = match advertised_target(payload) {
                Some(t) => (Kind::UnsolicitedNa, t),
                None => (Kind::DadProbe, probed_target(payload)?),
            };
            Some(Announcement { kind, mac: MacAddr(src), ip: Some(IpAddr::V6(t)) })
        }
        _ => None,
    }
}

/// A host asking for a neighbour's address: who asked (its MAC) and for which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    pub mac: MacAddr,
    pub target: IpAddr,
}

/// The request an untagged Ethernet frame carries, if it is one: an ARP request (not a
/// gratuitous one, not a probe from 0.0.0.0), or a neighbor solicitation from an address
/// (not DAD's from `::`). Broadcast, multicast and unicast requests all count (a host
/// refreshing an entry asks by unicast). What the leaf traps to install a host route on
/// demand.
pub fn solicitation(frame: &[u8]) -> Option<Solicitation> {
    if frame.len() < HEADER_LEN {
        return None;
    }
    let payload = &frame[HEADER_LEN..];
    match u16::from_be_bytes([frame[12], frame[13]]) {
        ethertype::ARP => {
            let a = ArpPacket::new_checked(payload).ok()?;
            let asks =
                a.operation() == crate::wire::arp::op::REQUEST && !a.sender_ip().is_unspecified() && !is_gratuitous(&a);
            asks.then(|| Solicitation { mac: a.sender_mac(), target: IpAddr::V4(a.target_ip()) })
        }
        ethertype::IPV6 => {
            let p = Ipv6Packet::new_checked(payload).ok()?;
            let (nh, icmp) = p.upper_layer()?;
            if p.src().is_unspecified() || nh != next_header::ICMPV6 || icmp.len() < 24 || icmp[0] != NEIGHBOR_SOLICIT {
                return None;
            }
            let t: [u8; 16] = icmp[8..24].try_into().ok()?;
            let mut src = [0u8; 6];
            src.copy_from_slice(&frame[6..12]);
            Some(Solicitation { mac: MacAddr(src), target: IpAddr::V6(t.into()) })
        }
        _ => None,
    }
}
