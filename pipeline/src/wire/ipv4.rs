//! IPv4 headers: enough to find the protocol, the addresses and the payload.

use std::net::Ipv4Addr;

use super::{checksum_add, checksum_finish, get_u16, set_u16, WireError, WireResult};

pub const MIN_HEADER_LEN: usize = 20;

view! {
    /// A view over an IPv4 packet: version 4, a header length within the buffer, and a
    /// total length within it.
    Ipv4Packet,
    min_len: MIN_HEADER_LEN,
    rules: |p| {
        if p.version() != 4 || p.header_len() < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let len = p.b().len();
        if len < p.header_len() || len < p.total_len() as usize {
            return Err(WireError::Truncated);
        }
        if (p.total_len() as usize) < p.header_len() {
            return Err(WireError::Malformed);
        }
    }
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    pub fn header_len(&self) -> usize {
        (self.b()[0] & 0x0f) as usize * 4
    }
    pub fn total_len(&self) -> u16 {
        get_u16(self.b(), 2)
    }
    pub fn ttl(&self) -> u8 {
        self.b()[8]
    }
    pub fn protocol(&self) -> u8 {
        self.b()[9]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), 10)
    }
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b()[12], self.b()[13], self.b()[14], self.b()[15])
    }
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b()[16], self.b()[17], self.b()[18], self.b()[19])
    }
    /// Whether the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum_finish(checksum_add(0, &self.b()[..self.header_len()])) == 0
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len() as usize]
    }
}

/// An IPv4 header's meaning (options are not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub payload_len: usize,
}

impl Ipv4Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> WireResult<Self> {
        let p = Ipv4Packet::new_checked(p.b())?;
        if !p.checksum_ok() {
            return Err(WireError::Malformed);
        }
        Ok(Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            payload_len: p.payload().len(),
        })
    }

    /// Writes a 20-byte header with a valid checksum; `buf` must hold 20 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[..MIN_HEADER_LEN].fill(0);
        buf[0] = 0x45;
        set_u16(buf, 2, (MIN_HEADER_LEN + self.payload_len) as u16);
        set_u16(buf, 6, 0x4000); // don't fragment
        buf[8] = self.ttl;
        buf[9] = self.protocol;
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum_finish(checksum_add(0, &buf[..MIN_HEADER_LEN]));
        set_u16(buf, 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_and_parses_with_a_valid_checksum() {
        let r = Ipv4Repr {
            src: Ipv4Addr::new(10, 1, 1, 1),
            dst: Ipv4Addr::new(10, 1, 1, 254),
            protocol: 1,
            ttl: 64,
            payload_len: 8,
        };
        let mut b = [0u8; 28];
        r.emit(&mut b);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.checksum_ok());
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
        b[10] ^= 1;
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&b[..])).err(), Some(WireError::Malformed));
        assert_eq!(
            Ipv4Packet::new_checked(&b[..27]).err(),
            Some(WireError::Truncated),
            "total length beyond the buffer"
        );
        b[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).err(), Some(WireError::Malformed), "IHL below 5");
    }
}
