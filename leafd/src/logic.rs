//! The leaf's decisions, as a pure state machine: inputs (VMs attached to or detached from
//! a host's vswitchd, announcements trapped on a downlink, best paths from BGP) in, changes
//! (each a list of actions on the kernel, BGP and vswitchds) out. Nothing here does I/O,
//! so every rule is unit-tested; `main` runs the actions.
//!
//! Who owns an address: the leaf that advertises the highest *mobility sequence number*
//! for its /32. A VM attached here whose address another leaf (or another downlink)
//! already owns stays *pending* (QEMU attaches a migration's destination before the move)
//! until its port comes up or its announcement is trapped here, whichever is first; then
//! it is a move: the new owner advertises the old sequence number + 1, carried in BGP as a community and
//! as the local preference, so BGP's own best-path choice agrees with the sequence
//! everywhere. The old owner sees a better path with a higher sequence and steps back.
//!
//! Fix-ups after a move from host H (a downlink's vswitchd) to host H':
//! - the old leaf tells the VMs still on H in the moved address's subnet that the address
//!   is now at the anycast MAC;
//! - the new leaf tells the moved VM that every address of H in that subnet (known from
//!   the host community of their routes) is at the anycast MAC.
//!
//! Nobody else is told anything.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pipeline::announce::Announcement;
use pipeline::MacAddr;

use crate::config::Checked;
use crate::routes::{HostPaths, Paths};

/// A downlink, by its index in the configuration.
pub type Downlink = usize;

/// A VM attached to a host's vswitchd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    pub mac: MacAddr,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Vm {
    /// The addresses the fabric routes to it: its IPv4 ones and its IPv6 ones except
    /// link-local addresses (those never leave the segment).
    pub fn addrs(&self) -> Vec<IpAddr> {
        let v6 = self.ipv6.iter().filter(|a| !is_link_local(**a)).map(|a| IpAddr::V6(*a));
        self.ipv4.iter().map(|a| IpAddr::V4(*a)).chain(v6).collect()
    }

    fn has(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.ipv4.contains(&a),
            IpAddr::V6(a) => self.ipv6.contains(&a),
        }
    }
}

/// fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A host route (/32 or /128) learned from another leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub nexthop: IpAddr,
    /// The id of the host (vswitchd) the address sits behind.
    pub host: u16,
    /// The mobility sequence number.
    pub seq: u32,
}

#[derive(Debug, Clone)]
pub enum Input {
    /// A VM is attached to the downlink's vswitchd (also what a resync replays).
    Attached(Downlink, Vm),
    Detached(Downlink, String),
    /// The VMs a downlink's vswitchd has now (after a (re)connection).
    Sync(Downlink, Vec<Vm>),
    /// An announcement trapped on a downlink.
    Announced(Downlink, Announcement),
    /// A VM's port came up on the downlink's vswitchd. For a VM waiting here (the
    /// destination of a live migration) that is the moment it resumed: a move, usually
    /// some 40 ms before the guest's own gratuitous ARP.
    LinkUp(Downlink, String),
    /// Another leaf's path became the best for `ip`.
    Best(IpAddr, Path),
    /// Another leaf's best path for `ip` was withdrawn.
    Withdrawn(IpAddr, Path),
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `ip/32 dev <downlink>` and a permanent neighbour entry `ip → mac` there (the leaf
    /// never ARPs towards its hosts).
    RouteLocal {
        ip: IpAddr,
        mac: MacAddr,
        downlink: Downlink,
    },
    /// `ip/32 via nexthop`; removes the neighbour entry on `was_on` if the address was local.
    RouteRemote {
        ip: IpAddr,
        nexthop: IpAddr,
        was_on: Option<Downlink>,
    },
    /// No route for `ip/32` any more (and no neighbour entry on `was_on`).
    Unroute {
        ip: IpAddr,
        was_on: Option<Downlink>,
    },
    /// Originate `ip/32` in BGP with the downlink's host community and a sequence number.
    Advertise {
        ip: IpAddr,
        host: u16,
        seq: u32,
    },
    Withdraw {
        ip: IpAddr,
    },
    /// Tell the VMs `to` on the downlink's vswitchd that `ip` is at the anycast MAC.
    Fixup {
        downlink: Downlink,
        to: Vec<String>,
        ip: IpAddr,
    },
}

/// Why a change happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Attached {
        vm: String,
    },
    Detached {
        vm: String,
    },
    /// A VM arrived here from elsewhere (its port came up, or its announcement was trapped).
    MoveIn {
        vm: String,
        ip: IpAddr,
        from_host: Option<u16>,
        to_host: u16,
        seq: u32,
    },
    /// An address that was ours is now another leaf's (or another downlink's).
    MoveOut {
        vm: String,
        ip: IpAddr,
        from_host: u16,
        to_host: u16,
        seq: u32,
    },
    /// A path from another leaf, nothing of ours involved.
    Remote {
        ip: IpAddr,
    },
    /// An announcement that moved nothing (already here, or an unknown MAC).
    Ignored {
        why: String,
    },
    /// This leaf's own advertisement of `ip` from before leafd restarted, taken up again
    /// or withdrawn.
    Restored {
        ip: IpAddr,
    },
}

/// What one input led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub cause: Cause,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owned {
    downlink: Downlink,
    seq: u32,
}

/// The leaf's state; its remote best paths in `R` (leafd's: [`HostPaths`]).
pub struct Leaf<R = HostPaths> {
    hosts: Vec<u16>,
    config: Checked,
    /// Attached VMs per downlink, by name.
    vms: Vec<HashMap<String, Vm>>,
    /// Addresses this leaf originates.
    owned: HashMap<IpAddr, Owned>,
    /// The best path another leaf offers for an address we do not own.
    remote: R,
    /// Addresses whose remote path was withdrawn, with that path: a VM arriving later
    /// still knows where it came from.
    gone: HashMap<IpAddr, Path>,
    /// Owned addresses whose VM was detached, with where it was: if another leaf
    /// advertises the address later, that was a move away from that downlink.
    departed: HashMap<IpAddr, (Owned, String)>,
    /// This leaf's own advertisements from before leafd restarted, not yet matched with a
    /// VM (see `logic_restart.rs`).
    restored: HashMap<IpAddr, Path>,
    /// Whether each downlink's vswitchd has told its VMs (`Sync`) since leafd started.
    synced: Vec<bool>,
}

impl Leaf {
    pub fn new(config: Checked) -> Leaf {
        Leaf::with_paths(config, HostPaths::default())
    }
}

impl<R: Paths> Leaf<R> {
    /// A leaf that knows the remote best paths in `remote` already.
    pub fn with_paths(config: Checked, remote: R) -> Leaf<R> {
        let hosts: Vec<u16> = config.raw.downlinks.iter().map(|d| d.host).collect();
        Leaf {
            vms: vec![HashMap::new(); hosts.len()],
            synced: vec![false; hosts.len()],
            hosts,
            config,
            owned: HashMap::new(),
            remote,
            gone: HashMap::new(),
            departed: HashMap::new(),
            restored: HashMap::new(),
        }
    }

    pub fn handle(&mut self, input: Input) -> Vec<Change> {
        match input {
            Input::Attached(d, vm) => self.attached(d, vm),
            Input::Detached(d, name) => self.detached(d, &name),
            Input::Sync(d, vms) => self.sync(d, vms),
            Input::Announced(d, a) => self.announced(d, a),
            Input::LinkUp(d, name) => self.link_up(d, &name),
            Input::Best(ip, path) => self.best(ip, path),
            Input::Withdrawn(ip, path) => self.withdrawn(ip, path),
        }
    }

    /// Whether this leaf originates `ip` (and from which downlink).
    pub fn owner(&self, ip: IpAddr) -> Option<Downlink> {
        self.owned.get(&ip).map(|o| o.downlink)
    }

    /// The VM with this MAC on downlink `d`'s vswitchd, if it is attached there.
    pub fn vm_by_mac(&self, d: Downlink, mac: MacAddr) -> Option<&Vm> {
        self.vms[d].values().find(|v| v.mac == mac)
    }

    fn attached(&mut self, d: Downlink, vm: Vm) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(old) = self.vms[d].get(&vm.name) {
            if *old == vm {
                return changes;
            }
            changes.extend(self.detached(d, &vm.name.clone()));
        }
        let mut actions = Vec::new();
        for ip in vm.addrs() {
            let elsewhere = self.owned.get(&ip).is_some_and(|o| o.downlink != d) || self.remote.get(ip).is_some();
            if elsewhere || self.owned.contains_key(&ip) {
                // Someone else has it: wait for the VM to announce itself here.
                continue;
            }
            self.departed.remove(&ip);
            self.gone.remove(&ip);
            // Advertised by this leaf before leafd restarted: the same sequence number again.
            let seq = self.restored.remove(&ip).map_or(0, |p| p.seq);
            actions.extend(self.originate(ip, d, vm.mac, seq));
        }
        changes.push(Change { cause: Cause::Attached { vm: vm.name.clone() }, actions });
        self.vms[d].insert(vm.name.clone(), vm);
        changes
    }

    fn detached(&mut self, d: Downlink, name: &str) -> Vec<Change> {
        let Some(vm) = self.vms[d].remove(name) else { return Vec::new() };
        let mut actions = Vec::new();
        for ip in vm.addrs() {
            if let Some(o) = self.owned.get(&ip).copied().filter(|o| o.downlink == d) {
                actions.extend(self.step_back(ip, d));
                self.departed.insert(ip, (o, name.to_string()));
            }
        }
        vec![Change { cause: Cause::Detached { vm: name.to_string() }, actions }]
    }

    fn sync(&mut self, d: Downlink, vms: Vec<Vm>) -> Vec<Change> {
        let mut changes = Vec::new();
        let gone: Vec<String> = self.vms[d].keys().filter(|n| !vms.iter().any(|v| &v.name == *n)).cloned().collect();
        for name in gone {
            changes.extend(self.detached(d, &name));
        }
        for vm in vms {
            changes.extend(self.attached(d, vm));
        }
        changes.extend(self.synced(d));
        changes
    }

    fn announced(&mut self, d: Downlink, a: Announcement) -> Vec<Change> {
        let Some(vm) = self.vms[d].values().find(|v| v.mac == a.mac).cloned() else {
            return vec![Change {
                cause: Cause::Ignored {
                    why: format!("{} from {}, which no VM of this downlink has", a.kind.as_str(), a.mac),
                },
                actions: Vec::new(),
            }];
        };
        // Any announcement of the VM's own (a gratuitous ARP, NA or DAD probe for one of
        // its addresses or its link-local one, or a RARP) says the VM is here: all its
        // addresses, of both families, move.
        let own = match a.ip {
            None => true,
            Some(IpAddr::V6(ip)) if is_link_local(ip) => true,
            Some(ip) => vm.has(ip),
        };
        if !own {
            let ip = a.ip.map(|i| i.to_string()).unwrap_or_default();
            return vec![Change {
                cause: Cause::Ignored { why: format!("{} for {ip}, which is not {}'s", a.kind.as_str(), vm.name) },
                actions: Vec::new(),
            }];
        }
        let ips = vm.addrs();
        let mut changes = Vec::new();
        for ip in ips {
            if self.owned.get(&ip).is_some_and(|o| o.downlink == d) {
                continue;
            }
            changes.push(self.move_in(ip, d, &vm));
        }
        if changes.is_empty() {
            changes.push(Change {
                cause: Cause::Ignored { why: format!("{} from {}: already here", a.kind.as_str(), vm.name) },
                actions: Vec::new(),
            });
        }
        changes
    }

    fn link_up(&mut self, d: Downlink, name: &str) -> Vec<Change> {
        let Some(vm) = self.vms[d].get(name).cloned() else { return Vec::new() };
        let pending: Vec<IpAddr> =
            vm.addrs().into_iter().filter(|ip| self.owned.get(ip).is_none_or(|o| o.downlink != d)).collect();
        pending.into_iter().map(|ip| self.move_in(ip, d, &vm)).collect()
    }

    /// `vm` (on downlink `d`) now has `ip`: route it here, advertise it with a higher
    /// sequence number, and fix up whoever needs it.
    fn move_in(&mut self, ip: IpAddr, d: Downlink, vm: &Vm) -> Change {
        let mut actions = Vec::new();
        let (from_host, prev_seq, former): (Option<u16>, Option<u32>, Vec<IpAddr>) =
            if let Some(o) = self.owned.get(&ip).copied() {
                // From another downlink of this leaf: its VMs in the subnet hear that `ip` is
                // remote now.
                let to = self.neighbours(o.downlink, ip, None);
                if !to.is_empty() && self.config.raw.fixups {
                    actions.push(Action::Fixup { downlink: o.downlink, to, ip });
                }
                let former = self
                    .owned
                    .iter()
                    .filter(|(a, x)| x.downlink == o.downlink && **a != ip && self.same_subnet(**a, ip))
                    .map(|(a, _)| *a)
                    .collect();
                self.owned.remove(&ip);
                (Some(self.hosts[o.downlink]), Some(o.seq), former)
            } else if let Some(p) = self.remote.remove(ip).or_else(|| self.gone.remove(&ip)) {
                let former =
                    self.remote.on_host(p.host).into_iter().filter(|a| *a != ip && self.same_subnet(*a, ip)).collect();
                (Some(p.host), Some(p.seq), former)
            } else if let Some((o, _)) = self.departed.remove(&ip) {
                (Some(self.hosts[o.downlink]), Some(o.seq), Vec::new())
            } else {
                (None, None, Vec::new())
            };
        let seq = prev_seq.map_or(0, |s| s + 1);
        let mut first = self.originate(ip, d, vm.mac, seq);
        first.append(&mut actions);
        let mut actions = first;
        if self.config.raw.fixups {
            let mut former = former;
            former.sort();
            for n in former {
                actions.push(Action::Fixup { downlink: d, to: vec![vm.name.clone()], ip: n });
            }
        }
        Change { cause: Cause::MoveIn { vm: vm.name.clone(), ip, from_host, to_host: self.hosts[d], seq }, actions }
    }

    fn best(&mut self, ip: IpAddr, path: Path) -> Vec<Change> {
        if self.is_own(&path) {
            return self.own_path(ip, path);
        }
        if let Some(o) = self.owned.get(&ip).copied() {
            if path.seq <= o.seq {
                // Ours is newer (BGP agrees, by local preference); keep it.
                self.remote.insert(ip, path);
                return Vec::new();
            }
            self.remote.insert(ip, path);
            let vm = self.vm_with(o.downlink, ip).map(|v| v.name.clone()).unwrap_or_default();
            let mut actions = vec![Action::RouteRemote { ip, nexthop: path.nexthop, was_on: Some(o.downlink) }];
            let to = self.neighbours(o.downlink, ip, Some(&vm));
            if !to.is_empty() && self.config.raw.fixups {
                actions.push(Action::Fixup { downlink: o.downlink, to, ip });
            }
            actions.push(Action::Withdraw { ip });
            self.owned.remove(&ip);
            return vec![Change {
                cause: Cause::MoveOut { vm, ip, from_host: self.hosts[o.downlink], to_host: path.host, seq: path.seq },
                actions,
            }];
        }
        self.remote.insert(ip, path);
        self.gone.remove(&ip);
        let mut actions = vec![Action::RouteRemote { ip, nexthop: path.nexthop, was_on: None }];
        if let Some((o, vm)) = self.departed.remove(&ip) {
            if path.seq <= o.seq {
                self.departed.insert(ip, (o, vm));
                return vec![Change { cause: Cause::Remote { ip }, actions }];
            }
            // Detached here first, now advertised elsewhere: it moved away.
            let to = self.neighbours(o.downlink, ip, None);
            if !to.is_empty() && self.config.raw.fixups {
                actions.push(Action::Fixup { downlink: o.downlink, to, ip });
            }
            return vec![Change {
                cause: Cause::MoveOut { vm, ip, from_host: self.hosts[o.downlink], to_host: path.host, seq: path.seq },
                actions,
            }];
        }
        vec![Change { cause: Cause::Remote { ip }, actions }]
    }

    fn withdrawn(&mut self, ip: IpAddr, path: Path) -> Vec<Change> {
        if self.is_own(&path) {
            self.restored.remove(&ip);
            return Vec::new();
        }
        if self.remote.get(ip).is_none_or(|p| p.nexthop != path.nexthop) {
            return Vec::new();
        }
        self.remote.remove(ip);
        self.gone.insert(ip, path);
        if self.owned.contains_key(&ip) {
            return Vec::new();
        }
        vec![Change { cause: Cause::Remote { ip }, actions: vec![Action::Unroute { ip, was_on: None }] }]
    }

    /// Routes `ip` to downlink `d` and advertises it.
    fn originate(&mut self, ip: IpAddr, d: Downlink, mac: MacAddr, seq: u32) -> Vec<Action> {
        self.owned.insert(ip, Owned { downlink: d, seq });
        vec![Action::RouteLocal { ip, mac, downlink: d }, Action::Advertise { ip, host: self.hosts[d], seq }]
    }

    /// Stops originating `ip` (its VM left downlink `d`).
    fn step_back(&mut self, ip: IpAddr, d: Downlink) -> Vec<Action> {
        self.owned.remove(&ip);
        let route = match self.remote.get(ip) {
            Some(p) => Action::RouteRemote { ip, nexthop: p.nexthop, was_on: Some(d) },
            None => Action::Unroute { ip, was_on: Some(d) },
        };
        vec![route, Action::Withdraw { ip }]
    }

    fn same_subnet(&self, a: IpAddr, b: IpAddr) -> bool {
        self.config.subnet_of(a).is_some_and(|n| n.contains(b))
    }

    fn vm_with(&self, d: Downlink, ip: IpAddr) -> Option<&Vm> {
        self.vms[d].values().find(|v| v.has(ip))
    }

    /// The VMs on downlink `d` with an address in `ip`'s subnet (except `ip`'s own VM and
    /// `except`), sorted by name.
    fn neighbours(&self, d: Downlink, ip: IpAddr, except: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = self.vms[d]
            .values()
            .filter(|v| {
                !v.has(ip) && Some(v.name.as_str()) != except && v.addrs().iter().any(|a| self.same_subnet(*a, ip))
            })
            .map(|v| v.name.clone())
            .collect();
        v.sort();
        v
    }
}

/// What a restarted leafd does with its own advertisements (`Cause::Restored`).
#[path = "logic_restart.rs"]
mod restart;

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;
