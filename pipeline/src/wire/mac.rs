//! The Ethernet address, the one every Roam crate uses: in frames, in the configuration,
//! on the control API (as `52:54:00:12:34:56`, through serde) and, as a 48-bit integer, in
//! the MAC table's keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

    /// The address at `at` in `bytes` (which must hold six bytes there).
    #[inline(always)]
    pub fn at(bytes: &[u8], at: usize) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&bytes[at..at + 6]);
        MacAddr(m)
    }

    /// The address as the low 48 bits of an integer, first octet most significant (the
    /// MAC table's form).
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

    /// The address `n` after this one (within 48 bits, wrapping).
    pub const fn plus(self, n: u32) -> MacAddr {
        MacAddr::from_u64(self.to_u64().wrapping_add(n as u64))
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

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_integers_and_json_round_trip() {
        let mac: MacAddr = "52:54:00:ab:cd:ef".parse().unwrap();
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(MacAddr::from_u64(mac.to_u64()), mac);
        assert_eq!(mac.to_u64(), 0x5254_00ab_cdef);
        assert_eq!(mac.plus(0x11), "52:54:00:ab:ce:00".parse().unwrap());
        assert!(MacAddr::BROADCAST.is_multicast() && !mac.is_multicast());
        assert_eq!(serde_json::to_string(&mac).unwrap(), r#""52:54:00:ab:cd:ef""#);
        assert_eq!(serde_json::from_str::<MacAddr>(r#""52:54:00:AB:CD:EF""#).unwrap(), mac);
        let e = serde_json::from_str::<MacAddr>(r#""52:54:00""#).unwrap_err().to_string();
        assert!(e.contains("is not a MAC address"), "{e}");
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
