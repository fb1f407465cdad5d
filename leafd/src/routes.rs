//! Where leafd keeps the remote host routes it learns (its RIB view): the decisions
//! (`logic`) keep each address's best path, with an index by host (a move asks for every
//! address of the host the VM left); the FIB filter (`fib`) keeps each address's next hop.
//! leafd keeps both in hash maps ([`HostPaths`], `HashMap`). The traits let the fabric
//! model (`roam-model`) run the same decisions for a thousand leaves over one shared table
//! of where every VM started, each leaf keeping only its differences from it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::logic::Path;

/// A map from host addresses to what is known of their routes.
pub trait Rib<V> {
    fn get(&self, ip: IpAddr) -> Option<V>;
    fn insert(&mut self, ip: IpAddr, v: V);
    fn remove(&mut self, ip: IpAddr) -> Option<V>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Best paths from other leaves, by address and by the host they are behind.
pub trait Paths: Rib<Path> {
    /// Every address whose best path is behind `host` (in no particular order).
    fn on_host(&self, host: u16) -> Vec<IpAddr>;
}

impl<V: Copy> Rib<V> for HashMap<IpAddr, V> {
    fn get(&self, ip: IpAddr) -> Option<V> {
        HashMap::get(self, &ip).copied()
    }
    fn insert(&mut self, ip: IpAddr, v: V) {
        HashMap::insert(self, ip, v);
    }
    fn remove(&mut self, ip: IpAddr) -> Option<V> {
        HashMap::remove(self, &ip)
    }
    fn len(&self) -> usize {
        HashMap::len(self)
    }
}

/// leafd's [`Paths`]: a hash map and a per-host index.
#[derive(Debug, Default)]
pub struct HostPaths {
    by_ip: HashMap<IpAddr, Path>,
    by_host: HashMap<u16, HashSet<IpAddr>>,
}

impl HostPaths {
    fn unindex(&mut self, ip: IpAddr, host: u16) {
        if let Some(set) = self.by_host.get_mut(&host) {
            set.remove(&ip);
            if set.is_empty() {
                self.by_host.remove(&host);
            }
        }
    }
}

impl Rib<Path> for HostPaths {
    fn get(&self, ip: IpAddr) -> Option<Path> {
        self.by_ip.get(&ip).copied()
    }
    fn insert(&mut self, ip: IpAddr, path: Path) {
        if let Some(old) = self.by_ip.insert(ip, path) {
            self.unindex(ip, old.host);
        }
        self.by_host.entry(path.host).or_default().insert(ip);
    }
    fn remove(&mut self, ip: IpAddr) -> Option<Path> {
        let old = self.by_ip.remove(&ip)?;
        self.unindex(ip, old.host);
        Some(old)
    }
    fn len(&self) -> usize {
        self.by_ip.len()
    }
}

impl Paths for HostPaths {
    fn on_host(&self, host: u16) -> Vec<IpAddr> {
        self.by_host.get(&host).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(host: u16, seq: u32) -> Path {
        Path { nexthop: "192.168.0.2".parse().unwrap(), host, seq }
    }

    #[test]
    fn the_host_index_follows_every_insert_replace_and_remove() {
        let mut p = HostPaths::default();
        let (a, b): (IpAddr, IpAddr) = ("10.1.1.1".parse().unwrap(), "10.1.1.2".parse().unwrap());
        p.insert(a, path(1, 0));
        p.insert(b, path(1, 0));
        let mut on1 = p.on_host(1);
        on1.sort();
        assert_eq!(on1, vec![a, b]);
        p.insert(a, path(2, 1));
        assert_eq!((p.on_host(1), p.on_host(2), p.len()), (vec![b], vec![a], 2));
        assert_eq!(p.remove(b), Some(path(1, 0)));
        assert_eq!((p.on_host(1), p.remove(b), p.len()), (vec![], None, 1));
        assert!(!p.by_host.contains_key(&1), "an empty host leaves no index entry");
    }
}
