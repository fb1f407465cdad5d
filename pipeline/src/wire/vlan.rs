//! 802.1Q tags: the 4 bytes after the MAC addresses (TPID 0x8100, then the TCI).

use super::{get_u16, set_u16, WireError, WireResult};

/// A tagged frame's header: MACs, TPID, TCI, inner EtherType.
pub const TAGGED_HEADER_LEN: usize = 18;
pub const TAG_LEN: usize = 4;

view! {
    /// A view over an 802.1Q-tagged Ethernet frame.
    VlanFrame,
    min_len: TAGGED_HEADER_LEN,
    rules: |f| {}
}

impl<T: AsRef<[u8]>> VlanFrame<T> {
    /// The tag protocol identifier (0x8100 for 802.1Q, 0x88a8 for an 802.1ad outer tag).
    #[inline]
    pub fn tpid(&self) -> u16 {
        get_u16(self.b(), 12)
    }

    #[inline]
    pub fn tci(&self) -> u16 {
        get_u16(self.b(), 14)
    }

    /// The VLAN id: the TCI's low 12 bits.
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    #[inline]
    pub fn inner_ethertype(&self) -> u16 {
        get_u16(self.b(), 16)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanFrame<T> {
    #[inline]
    pub fn set_tag(&mut self, tpid: u16, tci: u16) {
        set_u16(self.bm(), 12, tpid);
        set_u16(self.bm(), 14, tci);
    }
}

/// An 802.1Q tag's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRepr {
    pub vid: u16,
    pub pcp: u8,
    pub inner_ethertype: u16,
}

impl VlanRepr {
    pub fn parse<T: AsRef<[u8]>>(f: &VlanFrame<T>) -> WireResult<Self> {
        f.check_len()?;
        if f.tpid() != super::ethernet::ethertype::VLAN {
            return Err(WireError::Malformed);
        }
        Ok(VlanRepr { vid: f.vid(), pcp: f.pcp(), inner_ethertype: f.inner_ethertype() })
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut VlanFrame<T>) {
        f.set_tag(super::ethernet::ethertype::VLAN, (self.pcp as u16) << 13 | (self.vid & 0x0fff));
        set_u16(f.buffer.as_mut(), 16, self.inner_ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tag() {
        let mut b = [0u8; 18];
        VlanRepr { vid: 100, pcp: 5, inner_ethertype: 0x0800 }.emit(&mut VlanFrame::new_unchecked(&mut b[..]));
        assert_eq!(&b[12..18], &[0x81, 0x00, 0xa0, 0x64, 0x08, 0x00]);
        let f = VlanFrame::new_checked(&b[..]).unwrap();
        assert_eq!(VlanRepr::parse(&f).unwrap(), VlanRepr { vid: 100, pcp: 5, inner_ethertype: 0x0800 });
        assert_eq!(VlanFrame::new_checked(&b[..17]).err(), Some(WireError::Truncated));
        b[12] = 0x88;
        assert_eq!(VlanRepr::parse(&VlanFrame::new_unchecked(&b[..])).err(), Some(WireError::Malformed));
    }
}
