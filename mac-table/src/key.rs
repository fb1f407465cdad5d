//! Table keys and values: (MAC, segment slot) packed in a `u64`; a value packed in a
//! non-zero `u32` so that `Option<Value>` costs nothing. The table knows MACs as 48-bit
//! integers and segments and ports as numbers; their types (`pipeline::MacAddr`,
//! `SegmentSlot`, `PortId`) live with the data path, which converts at its edge.

use std::fmt;
use std::num::NonZeroU32;

/// A table key: MAC in bits 0..48 (first octet most significant), segment slot in bits
/// 48..64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    #[inline]
    pub const fn new(mac: u64, segment: u16) -> Key {
        Key((segment as u64) << 48 | (mac & MAC_BITS))
    }

    /// The MAC as the low 48 bits.
    #[inline]
    pub const fn mac(self) -> u64 {
        self.0 & MAC_BITS
    }

    /// Whether the MAC is a group address (the I/G bit of its first octet).
    #[inline]
    pub const fn is_multicast(self) -> bool {
        self.0 & (1 << 40) != 0
    }

    #[inline]
    pub const fn segment(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// A key from its packed form.
    #[inline]
    pub const fn from_raw(raw: u64) -> Key {
        Key(raw)
    }

    /// The packed form.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }
}

const MAC_BITS: u64 = (1 << 48) - 1;

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(")?;
        for (i, b) in self.mac().to_be_bytes()[2..].iter().enumerate() {
            write!(f, "{}{b:02x}", if i == 0 { "" } else { ":" })?;
        }
        write!(f, ", seg {})", self.segment())
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A vNIC's own MAC, installed when the VM attaches, removed when it detaches.
    Local = 1,
    /// The segment's anycast gateway MAC; points at the uplink.
    Anycast = 2,
}

impl EntryKind {
    pub const fn name(self) -> &'static str {
        match self {
            EntryKind::Local => "local",
            EntryKind::Anycast => "anycast",
        }
    }
}

/// What a lookup returns: the output port and the entry kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value(NonZeroU32);

impl Value {
    #[inline]
    pub const fn new(port: u16, kind: EntryKind) -> Value {
        // The kind byte is never zero, so the packed word is never zero.
        match NonZeroU32::new((port as u32) << 16 | (kind as u32) << 8) {
            Some(v) => Value(v),
            None => unreachable!(),
        }
    }

    #[inline]
    pub const fn port(self) -> u16 {
        (self.0.get() >> 16) as u16
    }

    #[inline]
    pub const fn kind(self) -> EntryKind {
        match (self.0.get() >> 8) as u8 {
            1 => EntryKind::Local,
            _ => EntryKind::Anycast,
        }
    }

    #[inline]
    pub(crate) const fn raw(self) -> u32 {
        self.0.get()
    }

    /// A stored word back to a value; `None` for 0 (never stored for a live key).
    #[inline]
    pub(crate) const fn from_raw(v: u32) -> Option<Value> {
        match NonZeroU32::new(v) {
            Some(v) => Some(Value(v)),
            None => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value(port {}, {})", self.port(), self.kind().name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let mac = 0x5254_00ab_cdef;
        let k = Key::new(mac, 0xbeef);
        assert_eq!((k.mac(), k.segment()), (mac, 0xbeef));
        assert_eq!(format!("{k:?}"), "Key(52:54:00:ab:cd:ef, seg 48879)");
        assert!(Key::new(0xffff_ffff_ffff, 0).is_multicast() && !k.is_multicast());
        let v = Value::new(65535, EntryKind::Anycast);
        assert_eq!((v.port(), v.kind()), (65535, EntryKind::Anycast));
        assert_eq!(Value::new(0, EntryKind::Local).kind(), EntryKind::Local);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 4);
    }
}
