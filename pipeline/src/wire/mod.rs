//! Zero-copy views over frame bytes and the `Repr`s that build frames, smoltcp-style: a
//! view checks its length once (`new_checked`), after which no accessor can panic; a
//! `Repr` parses from a view and emits into one.

/// Declares a view over a header's bytes, smoltcp-style: the struct; `new_unchecked`;
/// `check_len` (at least `min_len` bytes); `new_checked`, which runs `check_len` and then
/// the header's own `rules` (given the view); and `b`/`bm`, the bytes the
/// accessors each header adds read and write.
macro_rules! view {
    ($(#[$attr:meta])* $name:ident, min_len: $min:expr, rules: |$p:ident| $rules:block) => {
        $(#[$attr])*
        #[derive(Debug, Clone)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// A view whose length and header rules are checked: after this no accessor
            /// can panic or misread.
            pub fn new_checked(buffer: T) -> WireResult<Self> {
                let $p = Self::new_unchecked(buffer);
                $p.check_len()?;
                $rules
                Ok($p)
            }

            pub fn check_len(&self) -> WireResult<()> {
                if self.buffer.as_ref().len() < $min {
                    return Err(WireError::Truncated);
                }
                Ok(())
            }

            #[inline]
            fn b(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            #[inline]
            #[allow(dead_code)] // the views of headers Roam never writes
            fn bm(&mut self) -> &mut [u8] {
                self.buffer.as_mut()
            }
        }
    };
}

pub mod arp;
pub mod ethernet;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mac;
pub mod vlan;

/// Why bytes are not a valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header needs.
    Truncated,
    /// A field holds a value the header does not allow (e.g. ARP hardware length 7).
    Malformed,
}

pub type WireResult<T> = Result<T, WireError>;

#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The Internet checksum (RFC 1071) over `data`, starting from a partial `sum`.
pub fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

/// Folds a partial sum into the final one's-complement checksum.
pub fn checksum_finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
