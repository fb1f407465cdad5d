//! IPv6 fixed headers and the walk over extension headers to the upper layer.

use std::net::Ipv6Addr;

use super::{get_u16, set_u16, WireError, WireResult};

pub const HEADER_LEN: usize = 40;

pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const DEST_OPTS: u8 = 60;
}

view! {
    /// A view over an IPv6 packet: version 6, its payload length within the buffer.
    Ipv6Packet,
    min_len: HEADER_LEN,
    rules: |p| {
        if p.version() != 6 {
            return Err(WireError::Malformed);
        }
        if p.b().len() < HEADER_LEN + p.payload_len() as usize {
            return Err(WireError::Truncated);
        }
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    pub fn payload_len(&self) -> u16 {
        get_u16(self.b(), 4)
    }
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    pub fn src(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.b()[8..24].try_into().unwrap_or_default();
        Ipv6Addr::from(a)
    }
    pub fn dst(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.b()[24..40].try_into().unwrap_or_default();
        Ipv6Addr::from(a)
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }

    /// The upper-layer protocol and its bytes, past up to four extension headers;
    /// `None` when the chain is longer, truncated, or fragmented.
    pub fn upper_layer(&self) -> Option<(u8, &[u8])> {
        let mut nh = self.next_header();
        let mut rest = self.payload();
        for _ in 0..4 {
            match nh {
                next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                    if rest.len() < 8 {
                        return None;
                    }
                    let len = (rest[1] as usize + 1) * 8;
                    if rest.len() < len {
                        return None;
                    }
                    nh = rest[0];
                    rest = &rest[len..];
                }
                next_header::FRAGMENT => return None,
                _ => return Some((nh, rest)),
            }
        }
        None
    }
}

/// An IPv6 fixed header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub payload_len: usize,
}

impl Ipv6Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> WireResult<Self> {
        let p = Ipv6Packet::new_checked(p.b())?;
        Ok(Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            hop_limit: p.hop_limit(),
            payload_len: p.payload_len() as usize,
        })
    }

    /// Writes the 40-byte header; `buf` must hold 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[..HEADER_LEN].fill(0);
        buf[0] = 0x60;
        set_u16(buf, 4, self.payload_len as u16);
        buf[6] = self.next_header;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_extension_headers() {
        let r = Ipv6Repr {
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::1".parse().unwrap(),
            next_header: next_header::HOP_BY_HOP,
            hop_limit: 255,
            payload_len: 8 + 4,
        };
        let mut b = [0u8; 52];
        r.emit(&mut b);
        b[40] = next_header::ICMPV6; // hop-by-hop header, 8 bytes
        b[48..52].copy_from_slice(&[136, 0, 0, 0]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
        let (nh, up) = p.upper_layer().unwrap();
        assert_eq!((nh, up), (next_header::ICMPV6, &[136u8, 0, 0, 0][..]));
        assert_eq!(Ipv6Packet::new_checked(&b[..51]).err(), Some(WireError::Truncated));
        b[41] = 9; // extension header longer than the packet
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(), None);
    }
}
