//! A model of a whole Roam fabric that runs leafd's own decisions (`leafd::logic::Leaf`)
//! and FIB filter (`leafd::fib::Fib`) for every leaf: VMs attach, live-migrate (the
//! destination port attached, then up; the source port removed once BGP has converged, as
//! an orchestrator that waits does), and every action a leaf takes is carried out in the
//! model: fix-ups counted as frames to VMs, advertisements and withdrawals through route
//! reflectors (`reflect`) to every other leaf as best-path inputs, routes through the
//! leaf's FIB with on-demand installation (a VM's conversations install its peers'
//! routes). Where the leaves start (every VM attached, every route known everywhere) is one
//! table shared by all leaves (`shared`).

pub mod layout;
pub mod reflect;
pub mod shared;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use leafd::fib::Fib;
use leafd::logic::{Action, Change, Input, Leaf, Path, Vm};
use pipeline::MacAddr;

use layout::{Layout, Scope};
use reflect::{Messages, Outcome, Reflectors, Update};
use shared::{Base, View};

/// How long an installed route stays idle before it goes (leafd's default).
const IDLE: Duration = Duration::from_secs(60);

/// What one move cost.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MoveCost {
    pub vm: u32,
    pub scope: Option<Scope>,
    /// The moved VM's addresses.
    pub addresses: usize,
    /// Fix-up instructions to vswitchds, frames they sent (one per VM told per address),
    /// and the distinct VMs told.
    pub fixups: u64,
    pub fixup_frames: u64,
    pub vms_told: u64,
    /// A flooding fabric instead: every other VM of the moved VM's subnet hears one
    /// gratuitous ARP (or unsolicited NA) per address.
    pub flood_frames: u64,
    /// UPDATE messages on the leaves' sessions to the reflectors.
    pub bgp: Messages,
    /// Best-path and withdrawal inputs the leaves' leafds took.
    pub bgp_inputs: u64,
}

/// One leaf's tables at the end of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LeafTables {
    /// Remote host routes known (the RIB view).
    pub rib: usize,
    /// Host routes in the kernel with every route installed, and with on-demand
    /// installation (after the idle time: only those in use).
    pub fib_all: usize,
    pub fib_on_demand: usize,
    /// Neighbour entries: permanent ones for local hosts, and the other leaves' next hops
    /// (one per address family) with every route installed and with on-demand installation.
    pub neighbours_local: usize,
    pub neighbours_fabric_all: usize,
    pub neighbours_fabric_on_demand: usize,
}

struct LeafState {
    logic: Leaf<View<Path>>,
    fib: Fib<View<IpAddr>>,
    /// Downlink index → host index.
    hosts: Vec<u32>,
}

/// The fabric and its leaves' states.
pub struct Fabric {
    pub layout: Layout,
    base: Arc<Base>,
    leaves: Vec<LeafState>,
    /// Each VM's host now.
    at: Vec<u32>,
    rr: Reflectors,
    queue: VecDeque<Update>,
    /// The model's clock (seconds): one second per move.
    now: f64,
    peers: Vec<Vec<u32>>,
    subnet_members: HashMap<u32, u64>,
}

fn vm_of(layout: &Layout, i: u32) -> Vm {
    let v = &layout.vms[i as usize];
    let b = i.to_be_bytes();
    Vm {
        name: v.name.clone(),
        mac: MacAddr([0x52, 0x54, b[0], b[1], b[2], b[3]]),
        ipv4: v.ipv4.clone(),
        ipv6: v.ipv6.clone(),
    }
}

fn config(layout: &Layout, leaf: u32, hosts: &[u32]) -> Result<leafd::config::Checked> {
    let l = &layout.leaves[leaf as usize];
    let gateways: Vec<String> = layout.gateways.iter().map(|g| format!("\"{g}\"")).collect();
    let mut t = format!(
        "name = \"{}\"\nanycast_mac = \"00:00:5e:00:01:01\"\ngateways = [{}]\nfabric_address = \"{}\"\nfabric_address6 = \"{}\"\n\n[bgp]\napi = \"unix:///nonexistent\"\n",
        l.name,
        gateways.join(", "),
        l.nexthop,
        l.nexthop6
    );
    for h in hosts {
        t += &format!(
            "\n[[downlinks]]\niface = \"h{h}\"\nvswitchd = \"/nonexistent\"\nhost = {}\n",
            layout.hosts[*h as usize].id
        );
    }
    leafd::config::parse(&t).with_context(|| format!("{}'s configuration", l.name))
}

impl Fabric {
    /// Every leaf with its VMs attached and every other leaf's routes known, and the
    /// conversations' routes installed.
    pub fn new(layout: Layout) -> Result<Fabric> {
        let nl = layout.leaves.len();
        let base = Arc::new(Base::from_layout(&layout));
        let per_leaf = base.addrs_per_leaf();
        let total: usize = per_leaf.iter().sum();
        let mut leaves = Vec::with_capacity(nl);
        for l in 0..nl as u32 {
            let hosts: Vec<u32> =
                (0..layout.hosts.len() as u32).filter(|h| layout.hosts[*h as usize].leaf == l).collect();
            let remote = total - per_leaf[l as usize];
            let logic = Leaf::with_paths(config(&layout, l, &hosts)?, View::new(base.clone(), l, remote));
            let fib = Fib::with_rib(true, IDLE, View::new(base.clone(), l, remote));
            leaves.push(LeafState { logic, fib, hosts });
        }
        let mut peers = vec![Vec::new(); layout.vms.len()];
        for (a, b) in &layout.talks {
            peers[*a as usize].push(*b);
            peers[*b as usize].push(*a);
        }
        let mut subnet_members = HashMap::new();
        for v in &layout.vms {
            *subnet_members.entry(v.subnet).or_insert(0) += 1;
        }
        let mut f = Fabric {
            at: layout.vms.iter().map(|v| v.host).collect(),
            rr: Reflectors::new(2, base.clone()),
            layout,
            base,
            leaves,
            queue: VecDeque::new(),
            now: 0.0,
            peers,
            subnet_members,
        };
        // Attached everywhere: each leaf originates its own VMs' routes (the reflectors
        // and the other leaves have them already: the shared start).
        for vm in 0..f.layout.vms.len() as u32 {
            let (l, d) = f.downlink(f.at[vm as usize]);
            let changes = f.leaves[l].logic.handle(Input::Attached(d, vm_of(&f.layout, vm)));
            for c in changes {
                f.leaves[l].fib.filter(c.actions, 0.0);
            }
        }
        for vm in 0..f.layout.vms.len() as u32 {
            f.converse(vm);
        }
        Ok(f)
    }

    /// The leaf and downlink of host `h`.
    fn downlink(&self, h: u32) -> (usize, usize) {
        let l = self.layout.hosts[h as usize].leaf as usize;
        let d =
            self.leaves[l].hosts.iter().position(|x| *x == h).unwrap_or_else(|| unreachable!("host {h} on leaf {l}"));
        (l, d)
    }

    /// `vm`'s leaf asks for its peers' addresses (their ARP requests, trapped): the
    /// remote ones are installed there.
    fn converse(&mut self, vm: u32) {
        let (l, _) = self.downlink(self.at[vm as usize]);
        for p in self.peers[vm as usize].clone() {
            for ip in self.base.vm_addrs[p as usize].clone() {
                self.leaves[l].fib.wanted(ip, self.now);
            }
        }
    }

    /// Carries out a leaf's changes: through its FIB, fix-ups counted, BGP queued.
    fn apply(&mut self, l: usize, changes: Vec<Change>, cost: &mut MoveCost, told: &mut HashSet<String>) {
        let (v4, v6) = self.base.leaf_nexthops[l];
        for c in changes {
            for a in self.leaves[l].fib.filter(c.actions, self.now) {
                match a {
                    Action::Fixup { to, .. } => {
                        cost.fixups += 1;
                        cost.fixup_frames += to.len() as u64;
                        told.extend(to);
                    }
                    Action::Advertise { ip, host, seq } => {
                        let nexthop = if ip.is_ipv4() { v4 } else { v6 };
                        self.queue.push_back(Update::Advertise {
                            leaf: l as u32,
                            ip,
                            path: Path { nexthop, host, seq },
                        });
                    }
                    Action::Withdraw { ip } => self.queue.push_back(Update::Withdraw { leaf: l as u32, ip }),
                    Action::RouteLocal { .. } | Action::RouteRemote { .. } | Action::Unroute { .. } => {}
                }
            }
        }
    }

    /// Runs BGP until it is quiet: every update through the reflectors, every outcome to
    /// every other leaf.
    fn converge(&mut self, cost: &mut MoveCost, told: &mut HashSet<String>) {
        while let Some(u) = self.queue.pop_front() {
            let (m, outcome) = self.rr.update(u);
            cost.bgp.add(m);
            let Some(o) = outcome else { continue };
            let (from, input) = match o {
                Outcome::Best { leaf, ip, path } => (leaf, Input::Best(ip, path)),
                Outcome::Withdrawn { leaf, ip, path } => (leaf, Input::Withdrawn(ip, path)),
            };
            for l in (0..self.leaves.len()).filter(|l| *l != from as usize) {
                cost.bgp_inputs += 1;
                let changes = self.leaves[l].logic.handle(input.clone());
                self.apply(l, changes, cost, told);
            }
        }
    }

    /// Live-migrates `vm` to host `to`; returns what it cost.
    pub fn migrate(&mut self, vm: u32, to: u32) -> MoveCost {
        self.now += 1.0;
        let from = self.at[vm as usize];
        let v = vm_of(&self.layout, vm);
        let subnet = self.layout.vms[vm as usize].subnet;
        let addresses = v.addrs().len();
        let mut cost = MoveCost {
            vm,
            scope: Some(layout::scope(&self.layout, from, to)),
            addresses,
            flood_frames: (self.subnet_members[&subnet] - 1) * addresses as u64,
            ..MoveCost::default()
        };
        let mut told = HashSet::new();
        let ((lf, df), (lt, dt)) = (self.downlink(from), self.downlink(to));
        // The destination port (the incoming QEMU), then the VM resumes there.
        let changes = self.leaves[lt].logic.handle(Input::Attached(dt, v.clone()));
        self.apply(lt, changes, &mut cost, &mut told);
        let changes = self.leaves[lt].logic.handle(Input::LinkUp(dt, v.name.clone()));
        self.apply(lt, changes, &mut cost, &mut told);
        self.converge(&mut cost, &mut told);
        // The source port goes once BGP has converged.
        let changes = self.leaves[lf].logic.handle(Input::Detached(df, v.name.clone()));
        self.apply(lf, changes, &mut cost, &mut told);
        self.converge(&mut cost, &mut told);
        self.at[vm as usize] = to;
        // Its conversations go on from the new leaf: a miss there installs each peer's route.
        self.converse(vm);
        cost.vms_told = told.len() as u64;
        cost
    }

    /// Runs every move of the layout.
    pub fn run_moves(&mut self) -> Vec<MoveCost> {
        let moves = self.layout.moves.clone();
        moves.into_iter().map(|(vm, to)| self.migrate(vm, to)).collect()
    }

    /// Every leaf's tables now, after the idle time has passed for every route not in use
    /// (the ones the leaf's VMs talk to).
    pub fn tables(&mut self) -> Vec<LeafTables> {
        let later = self.now + IDLE.as_secs_f64() + 1.0;
        let mut used: Vec<Vec<IpAddr>> = vec![Vec::new(); self.leaves.len()];
        let mut local = vec![0; self.leaves.len()];
        for vm in 0..self.layout.vms.len() {
            let l = self.layout.hosts[self.at[vm] as usize].leaf as usize;
            local[l] += self.base.vm_addrs[vm].len();
            for p in &self.peers[vm] {
                used[l].extend(self.base.vm_addrs[*p as usize].iter().copied());
            }
        }
        // Every leaf's next hop of each family its VMs have addresses of.
        let nexthops: HashSet<(u32, bool)> = (0..self.layout.vms.len())
            .flat_map(|vm| {
                let l = self.layout.hosts[self.at[vm] as usize].leaf;
                self.base.vm_addrs[vm].iter().map(move |a| (l, a.is_ipv4()))
            })
            .collect();
        (0..self.leaves.len())
            .map(|l| {
                let s = &mut self.leaves[l];
                s.fib.expire(&used[l], later);
                LeafTables {
                    rib: s.fib.rib_len(),
                    fib_all: local[l] + s.fib.rib_len(),
                    fib_on_demand: s.fib.fib_len(),
                    neighbours_local: local[l],
                    neighbours_fabric_all: nexthops.iter().filter(|(x, _)| *x as usize != l).count(),
                    neighbours_fabric_on_demand: s.fib.nexthops_in_use().len(),
                }
            })
            .collect()
    }
}
