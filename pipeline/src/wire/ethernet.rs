//! Ethernet II frames.

use crate::wire::mac::MacAddr;

use super::{get_u16, set_u16, WireError, WireResult};

pub const HEADER_LEN: usize = 14;

/// EtherTypes Roam looks at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

view! {
    /// A view over an Ethernet frame.
    EthernetFrame,
    min_len: HEADER_LEN,
    rules: |f| {}
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn dst(&self) -> MacAddr {
        MacAddr(self.b()[field::DST].try_into().unwrap_or_default())
    }

    #[inline]
    pub fn src(&self) -> MacAddr {
        MacAddr(self.b()[field::SRC].try_into().unwrap_or_default())
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.b(), field::ETHERTYPE)
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.bm()[field::DST].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.bm()[field::SRC].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        set_u16(self.bm(), field::ETHERTYPE, t);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bm()[HEADER_LEN..]
    }
}

/// An Ethernet header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl EthernetRepr {
    pub fn parse<T: AsRef<[u8]>>(f: &EthernetFrame<T>) -> WireResult<Self> {
        f.check_len()?;
        Ok(EthernetRepr { dst: f.dst(), src: f.src(), ethertype: f.ethertype() })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut EthernetFrame<T>) {
        f.set_dst(self.dst);
        f.set_src(self.src);
        f.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_emits() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06, 0xaa];
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(
            r,
            EthernetRepr { dst: MacAddr::BROADCAST, src: MacAddr([0x52, 0x54, 0, 0, 0, 1]), ethertype: ethertype::ARP }
        );
        assert_eq!(f.payload(), &[0xaa]);
        let mut out = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &bytes[..14]);
        assert_eq!(EthernetFrame::new_checked(&bytes[..13]).err(), Some(WireError::Truncated));
    }
}
