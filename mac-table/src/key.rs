//! Table keys and values: (MAC, segment slot) packed in a `u64`; a value packed in a
//! non-zero `u32` so that `Option<Value>` costs nothing.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Group (multicast or broadcast) address: the I/G bit of the first octet.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// The address as the low 48 bits of an integer, first octet most significant.
    #[inline]
    pub const fn to_u64(self) -> u64 {
        let b = self.0;
        (b[0] as u64) << 40
            | (b[1] as u64) << 32
            | (b[2] as u64) << 24
            | (b[3] as u64) << 16
            | (b[4] as u64) << 8
            | b[5] as u64
    }

    /// The inverse of [`MacAddr::to_u64`] (bits above 48 are ignored).
    #[inline]
    pub const fn from_u64(v: u64) -> MacAddr {
        MacAddr([(v >> 40) as u8, (v >> 32) as u8, (v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8, v as u8])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a MAC address string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex octets like 52:54:00:12:34:56)")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// A segment's slot in the table: segments (VLAN ids today, 24-bit VNIs tomorrow) are
/// given dense 16-bit slots by [`crate::SegmentSlots`] so that a key fits in one `u64`.
pub type SegmentSlot = u16;

/// A table key: MAC in bits 0..48, segment slot in bits 48..64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    #[inline]
    pub const fn new(mac: MacAddr, segment: SegmentSlot) -> Key {
        Key((segment as u64) << 48 | mac.to_u64())
    }

    #[inline]
    pub const fn mac(self) -> MacAddr {
        MacAddr::from_u64(self.0)
    }

    #[inline]
    pub const fn segment(self) -> SegmentSlot {
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

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, seg {})", self.mac(), self.segment())
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
        let mac: MacAddr = "52:54:00:ab:cd:ef".parse().unwrap();
        let k = Key::new(mac, 0xbeef);
        assert_eq!((k.mac(), k.segment()), (mac, 0xbeef));
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
        let v = Value::new(65535, EntryKind::Anycast);
        assert_eq!((v.port(), v.kind()), (65535, EntryKind::Anycast));
        assert_eq!(Value::new(0, EntryKind::Local).kind(), EntryKind::Local);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 4);
        assert!(MacAddr::BROADCAST.is_multicast() && !mac.is_multicast());
    }

    #[test]
    fn bad_mac_strings_are_refused() {
        for s in
            ["", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:00", "52:54:00:ab:cd:zz", "525:4:00:ab:cd:ef", "52::00:ab:cd:ef"]
        {
            assert!(s.parse::<MacAddr>().is_err(), "{s}");
        }
        assert_eq!("52-54-00-AB-CD-EF".parse::<MacAddr>().unwrap().to_string(), "52:54:00:ab:cd:ef");
    }
}
