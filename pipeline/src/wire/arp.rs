//! ARP for IPv4 over Ethernet (RFC 826), the only kind Roam switches, answers or builds.

use std::net::Ipv4Addr;

use crate::wire::mac::MacAddr;

use super::{get_u16, set_u16, WireError, WireResult};

/// Ethernet/IPv4 ARP is 28 bytes.
pub const PACKET_LEN: usize = 28;

pub mod op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
    /// RARP request (QEMU announces a migrated guest that cannot announce itself).
    pub const RARP_REQUEST: u16 = 3;
}

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

view! {
    /// A view over an ARP packet (the Ethernet payload): Ethernet/IPv4 ARP only (hardware
    /// type 1, protocol 0x0800, lengths 6 and 4).
    ArpPacket,
    min_len: PACKET_LEN,
    rules: |p| {
        if p.htype() != 1 || p.ptype() != super::ethernet::ethertype::IPV4 || p.hlen() != 6 || p.plen() != 4 {
            return Err(WireError::Malformed);
        }
    }
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn htype(&self) -> u16 {
        get_u16(self.b(), field::HTYPE)
    }
    pub fn ptype(&self) -> u16 {
        get_u16(self.b(), field::PTYPE)
    }
    pub fn hlen(&self) -> u8 {
        self.b()[field::HLEN]
    }
    pub fn plen(&self) -> u8 {
        self.b()[field::PLEN]
    }
    pub fn operation(&self) -> u16 {
        get_u16(self.b(), field::OPER)
    }
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr(self.b()[field::SHA..field::SHA + 6].try_into().unwrap_or_default())
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.b()[field::SPA..field::SPA + 4].try_into().unwrap_or_default();
        Ipv4Addr::from(b)
    }
    pub fn target_mac(&self) -> MacAddr {
        MacAddr(self.b()[field::THA..field::THA + 6].try_into().unwrap_or_default())
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.b()[field::TPA..field::TPA + 4].try_into().unwrap_or_default();
        Ipv4Addr::from(b)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    pub fn set_operation(&mut self, v: u16) {
        set_u16(self.bm(), field::OPER, v)
    }
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.bm()[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
        self.bm()[field::SPA..field::SPA + 4].copy_from_slice(&ip.octets());
    }
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.bm()[field::THA..field::THA + 6].copy_from_slice(&mac.0);
        self.bm()[field::TPA..field::TPA + 4].copy_from_slice(&ip.octets());
    }
}

/// An Ethernet/IPv4 ARP packet's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> WireResult<Self> {
        let p = ArpPacket::new_checked(p.b())?;
        Ok(ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    /// Writes the 28 bytes; `p` must hold at least [`PACKET_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) {
        let b = p.bm();
        set_u16(b, field::HTYPE, 1);
        set_u16(b, field::PTYPE, super::ethernet::ethertype::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        p.set_operation(self.operation);
        p.set_sender(self.sender_mac, self.sender_ip);
        p.set_target(self.target_mac, self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request captured from a Linux guest: who has 10.1.1.2? tell 10.1.1.1.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 10, 1, 1, 1, 0, 0, 0, 0, 0,
        0, 10, 1, 1, 2,
    ];

    #[test]
    fn parses_a_request_and_round_trips() {
        let r = ArpRepr::parse(&ArpPacket::new_unchecked(&REQUEST[..])).unwrap();
        assert_eq!(r.operation, op::REQUEST);
        assert_eq!((r.sender_ip, r.target_ip), (Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(10, 1, 1, 2)));
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn refuses_wrong_lengths_and_types() {
        assert_eq!(ArpPacket::new_checked(&REQUEST[..27]).err(), Some(WireError::Truncated));
        for (at, v) in [(4, 7u8), (5, 16), (1, 6), (2, 0x86)] {
            let mut b = REQUEST;
            b[at] = v;
            assert_eq!(ArpPacket::new_checked(&b[..]).err(), Some(WireError::Malformed), "byte {at} = {v}");
        }
    }
}
