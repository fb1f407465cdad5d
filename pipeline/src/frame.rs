//! The small packet trait the pipeline works on, so the same code runs on DPDK mbufs in
//! vswitchd and on plain byte buffers in tests and benches.

use crate::wire::vlan::TAG_LEN;

/// A frame buffer the pipeline can read, rewrite, tag, untag and copy.
pub trait Frame: Sized {
    /// The frame's bytes.
    fn bytes(&self) -> &[u8];
    /// The frame's bytes for writing; `None` when the buffer is shared and must not be.
    fn bytes_mut(&mut self) -> Option<&mut [u8]>;
    /// Grows the frame by `n` bytes at its head; false when there is no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the head; false when the frame is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// A copy (for floods), or `None` when no buffer is free.
    fn duplicate(&self) -> Option<Self>;
    /// Another handle on the same frame, for a port that only reads it (a flood to a VM);
    /// no handle can write it afterwards. Defaults to a copy.
    #[inline]
    fn share(&self) -> Option<Self> {
        self.duplicate()
    }
}

/// Inserts an 802.1Q tag after the MAC addresses.
#[inline]
pub fn push_vlan<F: Frame>(f: &mut F, vid: u16) -> bool {
    if !f.prepend(TAG_LEN) {
        return false;
    }
    let Some(b) = f.bytes_mut() else { return false };
    if b.len() < 12 + TAG_LEN + 2 {
        return false;
    }
    b.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    b[12..14].copy_from_slice(&crate::wire::ethernet::ethertype::VLAN.to_be_bytes());
    b[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    true
}

/// Removes the 802.1Q tag after the MAC addresses.
#[inline]
pub fn pop_vlan<F: Frame>(f: &mut F) -> bool {
    let Some(b) = f.bytes_mut() else { return false };
    if b.len() < 12 + TAG_LEN + 2 {
        return false;
    }
    b.copy_within(0..12, TAG_LEN);
    f.adj(TAG_LEN)
}

/// A frame in a plain byte buffer with headroom: what tests and benches use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteFrame {
    buf: Vec<u8>,
    start: usize,
}

impl ByteFrame {
    /// Headroom every new frame gets (room for VXLAN's outer headers and a tag).
    pub const HEADROOM: usize = 64;

    pub fn new(bytes: &[u8]) -> ByteFrame {
        let mut buf = vec![0u8; Self::HEADROOM + bytes.len()];
        buf[Self::HEADROOM..].copy_from_slice(bytes);
        ByteFrame { buf, start: Self::HEADROOM }
    }
}

impl Frame for ByteFrame {
    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    #[inline]
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.buf[self.start..])
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn duplicate(&self) -> Option<Self> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_untags() {
        let orig: Vec<u8> = (0..20).collect();
        let mut f = ByteFrame::new(&orig);
        assert!(push_vlan(&mut f, 0x123));
        assert_eq!(&f.bytes()[..12], &orig[..12]);
        assert_eq!(&f.bytes()[12..16], &[0x81, 0x00, 0x01, 0x23]);
        assert_eq!(&f.bytes()[16..], &orig[12..]);
        assert!(pop_vlan(&mut f));
        assert_eq!(f.bytes(), &orig[..]);
        let mut short = ByteFrame::new(&orig[..10]);
        assert!(!pop_vlan(&mut short));
        assert!(!short.adj(11) && !short.prepend(ByteFrame::HEADROOM + 1));
    }
}
