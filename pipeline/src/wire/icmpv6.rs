//! ICMPv6 neighbor solicitation (135) and advertisement (136), RFC 4861, with the
//! source/target link-layer address options.

use std::net::Ipv6Addr;

use crate::wire::mac::MacAddr;

use super::{checksum_add, checksum_finish, get_u16, set_u16, WireError, WireResult};

/// Multicast listener report and done (MLDv1, RFC 2710) and report (MLDv2, RFC 3810).
pub const MLD_REPORT: u8 = 131;
pub const MLD_DONE: u8 = 132;
pub const MLDV2_REPORT: u8 = 143;
pub const ROUTER_SOLICIT: u8 = 133;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;
/// Type, code, checksum, flags/reserved, target address.
pub const ND_LEN: usize = 24;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

view! {
    /// A view over a neighbor solicitation or advertisement (the ICMPv6 message).
    NdiscPacket,
    min_len: ND_LEN,
    rules: |p| {
        if p.msg_type() != NEIGHBOR_SOLICIT && p.msg_type() != NEIGHBOR_ADVERT {
            return Err(WireError::Malformed);
        }
    }
}

impl<T: AsRef<[u8]>> NdiscPacket<T> {
    pub fn msg_type(&self) -> u8 {
        self.b()[0]
    }
    pub fn code(&self) -> u8 {
        self.b()[1]
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), 2)
    }
    /// NA flags (R, S, O) in the high bits of byte 4.
    pub fn flags(&self) -> u8 {
        self.b()[4]
    }
    pub fn target(&self) -> Ipv6Addr {
        let a: [u8; 16] = self.b()[8..24].try_into().unwrap_or_default();
        Ipv6Addr::from(a)
    }
    /// The link-layer address option (source for NS, target for NA), if present and sane.
    pub fn lladdr(&self) -> Option<MacAddr> {
        let mut opts = &self.b()[ND_LEN..];
        while opts.len() >= 8 {
            let len = opts[1] as usize * 8;
            if len == 0 || len > opts.len() {
                return None;
            }
            if (opts[0] == OPT_SOURCE_LLADDR || opts[0] == OPT_TARGET_LLADDR) && len == 8 {
                return Some(MacAddr(opts[2..8].try_into().unwrap_or_default()));
            }
            opts = &opts[len..];
        }
        None
    }
    /// Whether the checksum over the IPv6 pseudo-header verifies.
    pub fn checksum_ok(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum_finish(pseudo_sum(src, dst, self.b().len()) + checksum_add(0, self.b())) == 0
    }
}

fn pseudo_sum(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize) -> u32 {
    let mut s = checksum_add(0, &src.octets());
    s = checksum_add(s, &dst.octets());
    s + len as u32 + super::ipv6::next_header::ICMPV6 as u32
}

/// A neighbor solicitation or advertisement's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    Solicit { target: Ipv6Addr, source_lladdr: Option<MacAddr> },
    Advert { flags: u8, target: Ipv6Addr, target_lladdr: Option<MacAddr> },
}

impl NdiscRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &NdiscPacket<T>) -> WireResult<Self> {
        let p = NdiscPacket::new_checked(p.b())?;
        if p.code() != 0 {
            return Err(WireError::Malformed);
        }
        Ok(match p.msg_type() {
            NEIGHBOR_SOLICIT => NdiscRepr::Solicit { target: p.target(), source_lladdr: p.lladdr() },
            _ => NdiscRepr::Advert { flags: p.flags(), target: p.target(), target_lladdr: p.lladdr() },
        })
    }

    /// Bytes the message takes (with its one link-layer option, if any).
    pub fn buffer_len(&self) -> usize {
        let opt = match self {
            NdiscRepr::Solicit { source_lladdr: o, .. } | NdiscRepr::Advert { target_lladdr: o, .. } => o.is_some(),
        };
        ND_LEN + if opt { 8 } else { 0 }
    }

    /// Writes the message with its checksum for the given IPv6 addresses.
    pub fn emit(&self, buf: &mut [u8], src: &Ipv6Addr, dst: &Ipv6Addr) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf.fill(0);
        let (ty, flags, target, opt) = match *self {
            NdiscRepr::Solicit { target, source_lladdr } => {
                (NEIGHBOR_SOLICIT, 0, target, source_lladdr.map(|m| (OPT_SOURCE_LLADDR, m)))
            }
            NdiscRepr::Advert { flags, target, target_lladdr } => {
                (NEIGHBOR_ADVERT, flags, target, target_lladdr.map(|m| (OPT_TARGET_LLADDR, m)))
            }
        };
        buf[0] = ty;
        buf[4] = flags;
        buf[8..24].copy_from_slice(&target.octets());
        if let Some((kind, mac)) = opt {
            buf[24] = kind;
            buf[25] = 1;
            buf[26..32].copy_from_slice(&mac.0);
        }
        let c = checksum_finish(pseudo_sum(src, dst, len) + checksum_add(0, buf));
        set_u16(buf, 2, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advert_round_trips_with_its_checksum() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = ("2001:db8::5".parse().unwrap(), "ff02::1".parse().unwrap());
        let r = NdiscRepr::Advert {
            flags: na_flags::OVERRIDE,
            target: src,
            target_lladdr: Some(MacAddr([0, 0, 0x5e, 0, 1, 1])),
        };
        let mut b = [0u8; 32];
        r.emit(&mut b, &src, &dst);
        let p = NdiscPacket::new_checked(&b[..]).unwrap();
        assert!(p.checksum_ok(&src, &dst));
        assert!(!p.checksum_ok(&dst, &dst));
        assert_eq!(NdiscRepr::parse(&p).unwrap(), r);
        assert_eq!(NdiscPacket::new_checked(&b[..23]).err(), Some(WireError::Truncated));
        b[24 + 1] = 0; // a zero-length option must not loop
        assert_eq!(NdiscPacket::new_unchecked(&b[..]).lladdr(), None);
    }
}
