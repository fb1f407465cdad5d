//! One table of where every VM started, shared by every leaf, and each leaf's RIB view as
//! its differences from it. A thousand leaves each holding a million host routes would
//! need some 60 GB; what a leaf's view differs from the start by is the routes that moved
//! (a few per move), so the model keeps only those per leaf. leafd's logic and FIB filter
//! see each view through the same traits as leafd's own maps (`leafd::routes`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use leafd::logic::Path;
use leafd::routes::{Paths, Rib};

use crate::layout::Layout;

/// Where every VM started: its host, and each host's leaf and that leaf's next hops.
#[derive(Debug)]
pub struct Base {
    /// Address → VM index.
    pub by_ip: HashMap<IpAddr, u32>,
    /// VM index → its first host's index.
    pub vm_host: Vec<u32>,
    /// Host index → the VMs that started there.
    pub host_vms: Vec<Vec<u32>>,
    /// Host index → its leaf's index.
    pub host_leaf: Vec<u32>,
    /// Host index → its fabric-wide id (the BGP host community).
    pub host_id: Vec<u16>,
    /// Host id → host index.
    pub id_host: HashMap<u16, u32>,
    /// Leaf index → its next hops (IPv4, IPv6).
    pub leaf_nexthops: Vec<(IpAddr, IpAddr)>,
    /// VM index → its addresses.
    pub vm_addrs: Vec<Vec<IpAddr>>,
}

impl Base {
    /// Where `layout`'s VMs start.
    pub fn from_layout(layout: &Layout) -> Base {
        let mut host_vms = vec![Vec::new(); layout.hosts.len()];
        for (i, v) in layout.vms.iter().enumerate() {
            host_vms[v.host as usize].push(i as u32);
        }
        Base {
            by_ip: layout
                .vms
                .iter()
                .enumerate()
                .flat_map(|(i, v)| v.addrs().into_iter().map(move |a| (a, i as u32)))
                .collect(),
            vm_host: layout.vms.iter().map(|v| v.host).collect(),
            host_vms,
            host_leaf: layout.hosts.iter().map(|h| h.leaf).collect(),
            host_id: layout.hosts.iter().map(|h| h.id).collect(),
            id_host: layout.hosts.iter().enumerate().map(|(i, h)| (h.id, i as u32)).collect(),
            leaf_nexthops: layout.leaves.iter().map(|l| (IpAddr::V4(l.nexthop), IpAddr::V6(l.nexthop6))).collect(),
            vm_addrs: layout.vms.iter().map(|v| v.addrs()).collect(),
        }
    }

    /// The leaf `ip` started at, and its starting path there.
    pub fn start(&self, ip: IpAddr) -> Option<(u32, Path)> {
        let vm = *self.by_ip.get(&ip)?;
        let host = self.vm_host[vm as usize] as usize;
        let leaf = self.host_leaf[host];
        let (v4, v6) = self.leaf_nexthops[leaf as usize];
        let nexthop = if ip.is_ipv4() { v4 } else { v6 };
        Some((leaf, Path { nexthop, host: self.host_id[host], seq: 0 }))
    }

    /// How many addresses started at each leaf.
    pub fn addrs_per_leaf(&self) -> Vec<usize> {
        let mut n = vec![0; self.leaf_nexthops.len()];
        for (vm, host) in self.vm_host.iter().enumerate() {
            n[self.host_leaf[*host as usize] as usize] += self.vm_addrs[vm].len();
        }
        n
    }
}

/// What a view keeps of a starting path.
pub trait FromStart: Copy {
    fn from_start(p: Path) -> Self;
    fn host(&self) -> Option<u16>;
}

impl FromStart for Path {
    fn from_start(p: Path) -> Path {
        p
    }
    fn host(&self) -> Option<u16> {
        Some(self.host)
    }
}

impl FromStart for IpAddr {
    fn from_start(p: Path) -> IpAddr {
        p.nexthop
    }
    fn host(&self) -> Option<u16> {
        None
    }
}

/// One leaf's RIB view: every address that started at another leaf, except where this
/// leaf's view has changed since.
#[derive(Debug)]
pub struct View<V> {
    base: Arc<Base>,
    leaf: u32,
    /// Changed addresses: their value now, or `None` when not in the view any more.
    delta: HashMap<IpAddr, Option<V>>,
    /// Addresses given a path behind each host since the start (checked when read).
    moved_to: HashMap<u16, HashSet<IpAddr>>,
    len: usize,
}

impl<V: FromStart> View<V> {
    /// Leaf `leaf`'s view at the start: every address of the other leaves.
    pub fn new(base: Arc<Base>, leaf: u32, len: usize) -> View<V> {
        View { base, leaf, delta: HashMap::new(), moved_to: HashMap::new(), len }
    }

    fn at_start(&self, ip: IpAddr) -> Option<V> {
        self.base.start(ip).filter(|(l, _)| *l != self.leaf).map(|(_, p)| V::from_start(p))
    }

    /// The addresses whose value differs from the start (what the view costs).
    pub fn changed(&self) -> usize {
        self.delta.len()
    }
}

impl<V: FromStart> Rib<V> for View<V> {
    fn get(&self, ip: IpAddr) -> Option<V> {
        match self.delta.get(&ip) {
            Some(v) => *v,
            None => self.at_start(ip),
        }
    }

    fn insert(&mut self, ip: IpAddr, v: V) {
        if self.get(ip).is_none() {
            self.len += 1;
        }
        if let Some(h) = v.host() {
            self.moved_to.entry(h).or_default().insert(ip);
        }
        self.delta.insert(ip, Some(v));
    }

    fn remove(&mut self, ip: IpAddr) -> Option<V> {
        let old = self.get(ip)?;
        self.len -= 1;
        if self.at_start(ip).is_some() {
            self.delta.insert(ip, None);
        } else {
            self.delta.remove(&ip);
        }
        Some(old)
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Paths for View<Path> {
    fn on_host(&self, host: u16) -> Vec<IpAddr> {
        let started = self
            .base
            .id_host
            .get(&host)
            .map(|i| {
                self.base.host_vms[*i as usize].iter().flat_map(|vm| self.base.vm_addrs[*vm as usize].iter().copied())
            })
            .into_iter()
            .flatten();
        let arrived = self.moved_to.get(&host).into_iter().flatten().copied();
        let mut all: Vec<IpAddr> =
            started.chain(arrived).filter(|ip| self.get(*ip).is_some_and(|p| p.host == host)).collect();
        all.sort();
        all.dedup();
        all
    }
}
