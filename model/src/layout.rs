//! What the model runs on: leaves, hosts, VMs and their addresses, and the moves. Either
//! written out (the four-leaf test's fabric) or generated from a [`Spec`] (N leaves in
//! pods, H hosts per leaf, V VMs per host, random moves of three kinds).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Result};

#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub name: String,
    pub nexthop: Ipv4Addr,
    pub nexthop6: Ipv6Addr,
    pub pod: u32,
}

#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The fabric-wide host id (leafd's `host`, the BGP host community).
    pub id: u16,
    pub leaf: u32,
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    pub name: String,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// Its first host (index into `hosts`).
    pub host: u32,
    /// Its subnet (index into `gateways`' IPv4 entries), for the flood baseline.
    pub subnet: u32,
}

impl VmSpec {
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.ipv4.iter().map(|a| IpAddr::V4(*a)).chain(self.ipv6.iter().map(|a| IpAddr::V6(*a))).collect()
    }
}

/// A fabric and what happens in it.
#[derive(Debug, Clone)]
pub struct Layout {
    pub leaves: Vec<LeafSpec>,
    pub hosts: Vec<HostSpec>,
    pub vms: Vec<VmSpec>,
    /// Every leaf's anycast gateways (`10.1.1.254/24`, …), as in leafd's configuration.
    pub gateways: Vec<String>,
    /// The moves, in order: (VM index, destination host index).
    pub moves: Vec<(u32, u32)>,
    /// Conversations: pairs of VMs that talk to each other (what on-demand installation
    /// installs routes for).
    pub talks: Vec<(u32, u32)>,
}

/// What kind of move: to another host of the same leaf, to another leaf of the same pod,
/// or across the fabric to another pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Scope {
    SameLeaf,
    SamePod,
    CrossFabric,
}

/// A generated fabric.
#[derive(Debug, Clone)]
pub struct Spec {
    pub leaves: u32,
    pub hosts_per_leaf: u32,
    pub vms_per_host: u32,
    pub leaves_per_pod: u32,
    /// IPv4 subnets the VMs are spread over (VM i in subnet i mod subnets); one: the whole
    /// fabric is one Virtual Subnet.
    pub subnets: u32,
    pub dual_stack: bool,
    /// Peers each VM talks to (chosen at random across the fabric).
    pub peers: u32,
    pub moves: u32,
    /// Shares of same-leaf, same-pod and cross-fabric moves.
    pub mix: [f64; 3],
    pub seed: u64,
}

/// splitmix64: small, fast, and good enough to pick VMs and hosts.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * n as u64) >> 32) as u32
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Spec {
    pub fn layout(&self) -> Result<Layout> {
        let hosts_total = self.leaves as u64 * self.hosts_per_leaf as u64;
        if self.leaves == 0 || self.hosts_per_leaf == 0 || self.vms_per_host == 0 || self.subnets == 0 {
            bail!("leaves, hosts per leaf, VMs per host and subnets must be at least 1");
        }
        if hosts_total > u16::MAX as u64 {
            bail!("{hosts_total} hosts: leafd's host ids are 16 bits (at most {})", u16::MAX);
        }
        let vms_total = hosts_total * self.vms_per_host as u64;
        // The subnets split 10.0.0.0/8 evenly.
        let bits = 32 - (self.subnets - 1).leading_zeros();
        let size = 1u64 << (24 - bits.min(24));
        if vms_total.div_ceil(self.subnets as u64) + 2 >= size {
            bail!("{vms_total} VMs do not fit {} subnets of 10.0.0.0/8 (/{} each)", self.subnets, 8 + bits);
        }
        if self.mix.iter().any(|m| *m < 0.0) || self.mix.iter().sum::<f64>() <= 0.0 {
            bail!("the move mix needs non-negative shares, not all zero");
        }
        if self.mix[0] > 0.0 && self.hosts_per_leaf < 2 {
            bail!("same-leaf moves need two hosts per leaf");
        }
        if self.leaves_per_pod == 0 {
            bail!("a pod needs at least one leaf");
        }
        let pods = self.leaves.div_ceil(self.leaves_per_pod);
        if self.mix[1] > 0.0 && (self.leaves_per_pod < 2 || self.leaves % self.leaves_per_pod == 1) {
            bail!(
                "same-pod moves need two leaves in every pod ({} leaves in pods of {})",
                self.leaves,
                self.leaves_per_pod
            );
        }
        if self.mix[2] > 0.0 && pods < 2 {
            bail!("cross-fabric moves need two pods");
        }
        let leaves = (0..self.leaves)
            .map(|l| LeafSpec {
                name: format!("leaf{}", l + 1),
                nexthop: Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + l + 1),
                nexthop6: Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)) + l as u128 + 1),
                pod: l / self.leaves_per_pod,
            })
            .collect();
        let hosts =
            (0..hosts_total as u32).map(|h| HostSpec { id: h as u16 + 1, leaf: h / self.hosts_per_leaf }).collect();
        let subnet_base = |k: u32| u32::from(Ipv4Addr::new(10, 0, 0, 0)) + k * size as u32;
        let vms = (0..vms_total as u32)
            .map(|i| {
                let (k, j) = (i % self.subnets, i / self.subnets);
                let ipv6 = if self.dual_stack {
                    vec![Ipv6Addr::from(((0x2001_0db8u128 << 96) | ((k as u128) << 64)) + j as u128 + 2)]
                } else {
                    Vec::new()
                };
                VmSpec {
                    name: format!("v{i}"),
                    ipv4: vec![Ipv4Addr::from(subnet_base(k) + j + 2)],
                    ipv6,
                    host: i / self.vms_per_host,
                    subnet: k,
                }
            })
            .collect();
        let mut gateways: Vec<String> =
            (0..self.subnets).map(|k| format!("{}/{}", Ipv4Addr::from(subnet_base(k) + 1), 8 + bits)).collect();
        if self.dual_stack {
            gateways.extend(
                (0..self.subnets)
                    .map(|k| format!("{}/64", Ipv6Addr::from((0x2001_0db8u128 << 96) | ((k as u128) << 64) | 1))),
            );
        }
        let mut rng = Rng::new(self.seed);
        let n = vms_total as u32;
        let talks = (0..(n as u64 * self.peers as u64 / 2))
            .filter_map(|_| {
                let (a, b) = (rng.below(n), rng.below(n));
                (a != b).then_some((a, b))
            })
            .collect();
        let mut layout = Layout { leaves, hosts, vms, gateways, moves: Vec::new(), talks };
        let mut at: Vec<u32> = layout.vms.iter().map(|v| v.host).collect();
        for _ in 0..self.moves {
            let vm = rng.below(n);
            let from = at[vm as usize];
            let to = self.destination(&layout, from, &mut rng);
            layout.moves.push((vm, to));
            at[vm as usize] = to;
        }
        Ok(layout)
    }

    /// A destination host for a VM on `from`, of a kind drawn from the mix.
    fn destination(&self, layout: &Layout, from: u32, rng: &mut Rng) -> u32 {
        let total: f64 = self.mix.iter().sum();
        let r = rng.unit() * total;
        let scope = if r < self.mix[0] {
            Scope::SameLeaf
        } else if r < self.mix[0] + self.mix[1] {
            Scope::SamePod
        } else {
            Scope::CrossFabric
        };
        let hpl = self.hosts_per_leaf;
        let leaf = layout.hosts[from as usize].leaf;
        let pod = layout.leaves[leaf as usize].pod;
        let pods = self.leaves.div_ceil(self.leaves_per_pod);
        let in_pod =
            |p: u32| (p * self.leaves_per_pod..((p + 1) * self.leaves_per_pod).min(self.leaves)).collect::<Vec<u32>>();
        let to_leaf = match scope {
            Scope::SameLeaf => leaf,
            Scope::SamePod => {
                let others: Vec<u32> = in_pod(pod).into_iter().filter(|l| *l != leaf).collect();
                others[rng.below(others.len() as u32) as usize]
            }
            Scope::CrossFabric => {
                let p = (pod + 1 + rng.below(pods - 1)) % pods;
                let ls = in_pod(p);
                ls[rng.below(ls.len() as u32) as usize]
            }
        };
        loop {
            let h = to_leaf * hpl + rng.below(hpl);
            if h != from {
                return h;
            }
        }
    }
}

/// The kind of a move from host `from` to host `to`.
pub fn scope(layout: &Layout, from: u32, to: u32) -> Scope {
    let (a, b) = (layout.hosts[from as usize].leaf, layout.hosts[to as usize].leaf);
    if a == b {
        Scope::SameLeaf
    } else if layout.leaves[a as usize].pod == layout.leaves[b as usize].pod {
        Scope::SamePod
    } else {
        Scope::CrossFabric
    }
}
