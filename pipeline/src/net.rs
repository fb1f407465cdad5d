//! IP prefixes (a segment's subnets): IPv4, IPv6, and either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::ConfigError;

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Net, ConfigError> {
        if prefix_len > 32 {
            return Err(ConfigError::BadPrefix { len: prefix_len, max: 32 });
        }
        Ok(Ipv4Net { addr, prefix_len })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix_len == 0 { 0 } else { u32::MAX << (32 - self.prefix_len) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// An IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
}

impl Ipv6Net {
    pub fn new(addr: Ipv6Addr, prefix_len: u8) -> Result<Ipv6Net, ConfigError> {
        if prefix_len > 128 {
            return Err(ConfigError::BadPrefix { len: prefix_len, max: 128 });
        }
        Ok(Ipv6Net { addr, prefix_len })
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = if self.prefix_len == 0 { 0 } else { u128::MAX << (128 - self.prefix_len) };
        u128::from(ip) & mask == u128::from(self.addr) & mask
    }
}

/// A prefix of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpNet {
    V4(Ipv4Net),
    V6(Ipv6Net),
}

impl IpNet {
    /// Whether `ip` is inside (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (IpNet::V4(n), IpAddr::V4(ip)) => n.contains(ip),
            (IpNet::V6(n), IpAddr::V6(ip)) => n.contains(ip),
            _ => false,
        }
    }
}

impl From<Ipv4Net> for IpNet {
    fn from(n: Ipv4Net) -> IpNet {
        IpNet::V4(n)
    }
}

impl From<Ipv6Net> for IpNet {
    fn from(n: Ipv6Net) -> IpNet {
        IpNet::V6(n)
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl std::fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpNet::V4(n) => n.fmt(f),
            IpNet::V6(n) => n.fmt(f),
        }
    }
}

/// `ADDR/LEN` split, or the error naming `s`.
fn split(s: &str) -> Result<(&str, u8), ConfigError> {
    let (a, p) = s.split_once('/').ok_or_else(|| ConfigError::BadNet(s.to_string()))?;
    Ok((a, p.parse().map_err(|_| ConfigError::BadNet(s.to_string()))?))
}

impl std::str::FromStr for Ipv4Net {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = split(s)?;
        Ipv4Net::new(a.parse().map_err(|_| ConfigError::BadNet(s.to_string()))?, p)
    }
}

impl std::str::FromStr for Ipv6Net {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = split(s)?;
        Ipv6Net::new(a.parse().map_err(|_| ConfigError::BadNet(s.to_string()))?, p)
    }
}

impl std::str::FromStr for IpNet {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = split(s)?;
        match a.parse::<IpAddr>().map_err(|_| ConfigError::BadNet(s.to_string()))? {
            IpAddr::V4(a) => Ipv4Net::new(a, p).map(IpNet::V4),
            IpAddr::V6(a) => Ipv6Net::new(a, p).map(IpNet::V6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_contain_within_their_family() {
        let v4: IpNet = "10.1.0.0/16".parse().unwrap();
        let v6: IpNet = "2001:db8:1::/64".parse().unwrap();
        assert!(v4.contains("10.1.200.3".parse().unwrap()) && !v4.contains("10.2.0.1".parse().unwrap()));
        assert!(v6.contains("2001:db8:1::7".parse().unwrap()) && !v6.contains("2001:db8:2::7".parse().unwrap()));
        assert!(!v4.contains("::ffff:10.1.0.1".parse().unwrap()), "never across families");
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        let all: Ipv6Net = "::/0".parse().unwrap();
        assert!(all.contains(Ipv6Addr::LOCALHOST));
        assert_eq!(v6.to_string(), "2001:db8:1::/64");
        for bad in ["10.1.1.0/33", "2001:db8::/129", "10.1.1.0", "x/8", "10.1.1.0/x", "2001:db8::"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!("10.0.0.0/40".parse::<IpNet>(), Err(ConfigError::BadPrefix { len: 40, max: 32 }));
        assert!("2001:db8::/64".parse::<Ipv4Net>().is_err() && "10.0.0.0/8".parse::<Ipv6Net>().is_err());
    }
}
