//! On-demand FIB installation (the Virtual Subnet design's): between the leaf's decisions
//! (`logic`) and the kernel. Every remote host route leafd learns stays in its RIB view
//! here; with `fib.on_demand`, the kernel gets only the local hosts and the remote /32s
//! and /128s in use: one is installed when a local VM asks for it (its ARP request or
//! neighbour solicitation, trapped on the downlink), stays while traffic to it flows (the
//! kernel's own record of destinations it forwarded to, see `kernel::used`), and is
//! removed after `idle_secs` without any. A move updates an installed route at once; a
//! local host that moves away leaves its route installed (its neighbours were talking to
//! it) for the idle time. Without `on_demand` every route goes to the kernel, as before.
//!
//! Pure like `logic`: actions in, actions out, times given by the caller.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::logic::Action;
use crate::routes::Rib;

/// The RIB view (each remote host's next hop, in `R`) and what of it is in the kernel.
#[derive(Debug)]
pub struct Fib<R = HashMap<IpAddr, IpAddr>> {
    on_demand: bool,
    idle: Duration,
    rib: R,
    /// With on-demand installation: the remote routes installed, with when each was last
    /// wanted or used (seconds on the caller's clock). Without, every route is.
    installed: HashMap<IpAddr, f64>,
    /// Local hosts (routed to a downlink).
    local: HashSet<IpAddr>,
}

/// What a trapped request for an address led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Installed now (the actions install it): answer the request by proxy.
    Installed(Vec<Action>),
    /// Already installed (its idle time starts again).
    Refreshed,
    /// Not a remote route leafd knows (local, or unknown: no answer).
    Unknown,
}

impl Fib {
    pub fn new(on_demand: bool, idle: Duration) -> Fib {
        Fib::with_rib(on_demand, idle, HashMap::new())
    }
}

impl<R: Rib<IpAddr>> Fib<R> {
    /// A FIB whose RIB view holds `rib` already (none of it installed).
    pub fn with_rib(on_demand: bool, idle: Duration, rib: R) -> Fib<R> {
        Fib { on_demand, idle, rib, installed: HashMap::new(), local: HashSet::new() }
    }

    /// Remote host routes known (the RIB view).
    pub fn rib_len(&self) -> usize {
        self.rib.len()
    }

    /// Host routes in the kernel: local ones and installed remote ones.
    pub fn fib_len(&self) -> usize {
        self.local.len() + if self.on_demand { self.installed.len() } else { self.rib.len() }
    }

    /// The next hops of the remote routes in the kernel, each once: the other leaves the
    /// kernel needs a neighbour entry for.
    pub fn nexthops_in_use(&self) -> HashSet<IpAddr> {
        self.installed.keys().filter_map(|ip| self.rib.get(*ip)).collect()
    }

    /// Passes `logic`'s actions on, keeping remote routes that are not in use out of the
    /// kernel. `now` is the caller's clock in seconds.
    pub fn filter(&mut self, actions: Vec<Action>, now: f64) -> Vec<Action> {
        let mut out = Vec::with_capacity(actions.len());
        for a in actions {
            match a {
                Action::RouteLocal { ip, .. } => {
                    // Local now: out of the RIB view (the kernel's route is replaced).
                    self.rib.remove(ip);
                    self.installed.remove(&ip);
                    self.local.insert(ip);
                    out.push(a);
                }
                Action::RouteRemote { ip, nexthop, was_on } => {
                    let was_installed = self.installed.get(&ip).copied();
                    let was_local = self.local.remove(&ip) || was_on.is_some();
                    self.rib.insert(ip, nexthop);
                    if !self.on_demand {
                        out.push(a);
                    } else if was_installed.is_some() || was_local {
                        // In use: an installed route, or a local host that moved away
                        // (its neighbours were talking to it).
                        self.installed.insert(ip, was_installed.unwrap_or(now));
                        out.push(a);
                    }
                }
                Action::Unroute { ip, was_on } => {
                    let was_installed = self.installed.remove(&ip).is_some();
                    self.rib.remove(ip);
                    let was_local = self.local.remove(&ip) || was_on.is_some();
                    if was_installed || was_local || !self.on_demand {
                        out.push(a);
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// A local VM asked for `ip` (ARP request, neighbour solicitation) at `now`.
    pub fn wanted(&mut self, ip: IpAddr, now: f64) -> Wanted {
        let Some(nexthop) = self.rib.get(ip) else { return Wanted::Unknown };
        if self.installed.insert(ip, now).is_some() {
            return Wanted::Refreshed;
        }
        Wanted::Installed(vec![Action::RouteRemote { ip, nexthop, was_on: None }])
    }

    /// The kernel forwarded traffic to each of `used` recently (at `now`): their idle
    /// time starts again. Installed routes idle for longer than the idle time are removed
    /// (the actions remove them). Nothing to do without on-demand installation.
    pub fn expire(&mut self, used: &[IpAddr], now: f64) -> Vec<Action> {
        if !self.on_demand {
            return Vec::new();
        }
        for ip in used {
            if let Some(at) = self.installed.get_mut(ip) {
                *at = now;
            }
        }
        let idle = self.idle.as_secs_f64();
        let mut gone: Vec<IpAddr> =
            self.installed.iter().filter(|(_, at)| now - **at >= idle).map(|(ip, _)| *ip).collect();
        gone.sort();
        gone.into_iter()
            .map(|ip| {
                self.installed.remove(&ip);
                Action::Unroute { ip, was_on: None }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::MacAddr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 1, 1, last])
    }

    fn via(last: u8, nh: u8) -> Action {
        Action::RouteRemote { ip: ip(last), nexthop: IpAddr::from([192, 168, 0, nh]), was_on: None }
    }

    #[test]
    fn without_on_demand_everything_goes_to_the_kernel() {
        let mut f = Fib::new(false, Duration::from_secs(30));
        assert_eq!(f.filter(vec![via(1, 2), via(2, 3)], 0.0), vec![via(1, 2), via(2, 3)]);
        assert_eq!((f.rib_len(), f.fib_len()), (2, 2));
        assert_eq!(f.expire(&[], 1000.0), vec![], "nothing ages out");
    }

    #[test]
    fn a_remote_route_is_installed_when_wanted_and_removed_when_idle() {
        let mut f = Fib::new(true, Duration::from_secs(30));
        assert_eq!(f.filter(vec![via(1, 2), via(2, 3)], 0.0), vec![], "learned, not installed");
        assert_eq!((f.rib_len(), f.fib_len()), (2, 0));
        assert_eq!(f.wanted(ip(9), 1.0), Wanted::Unknown, "an address nobody advertises");
        assert_eq!(f.wanted(ip(1), 1.0), Wanted::Installed(vec![via(1, 2)]));
        assert_eq!(f.wanted(ip(1), 2.0), Wanted::Refreshed);
        assert_eq!(f.fib_len(), 1);
        // Traffic at 20 s keeps it past 32 s; without any after that, it goes at 50 s.
        assert_eq!(f.expire(&[ip(1)], 20.0), vec![]);
        assert_eq!(f.expire(&[], 49.0), vec![]);
        assert_eq!(f.expire(&[], 50.0), vec![Action::Unroute { ip: ip(1), was_on: None }]);
        assert_eq!((f.rib_len(), f.fib_len()), (2, 0), "still in the RIB view");
        assert_eq!(f.expire(&[ip(1)], 60.0), vec![], "used without a route: nothing to refresh");
        assert_eq!(f.wanted(ip(1), 61.0), Wanted::Installed(vec![via(1, 2)]), "wanted again");
    }

    #[test]
    fn a_move_updates_an_installed_route_at_once_and_an_idle_one_in_the_rib_only() {
        let mut f = Fib::new(true, Duration::from_secs(30));
        f.filter(vec![via(1, 2), via(2, 2)], 0.0);
        f.wanted(ip(1), 1.0);
        assert_eq!(f.filter(vec![via(1, 4), via(2, 4)], 5.0), vec![via(1, 4)], "only the installed one");
        assert_eq!(f.wanted(ip(2), 6.0), Wanted::Installed(vec![via(2, 4)]), "the new next hop");
        // The move keeps the idle clock: wanted at 1 s, gone at 31 s.
        let gone = f.expire(&[], 31.0);
        assert_eq!(gone, vec![Action::Unroute { ip: ip(1), was_on: None }]);
        // Withdrawn: an installed route leaves the kernel, an idle one only the RIB view.
        let w = |l| Action::Unroute { ip: ip(l), was_on: None };
        f.filter(vec![via(3, 2)], 40.0);
        assert_eq!(f.filter(vec![w(2), w(3)], 41.0), vec![w(2)]);
        assert_eq!((f.rib_len(), f.fib_len()), (1, 0));
    }

    #[test]
    fn local_hosts_are_always_installed_and_one_moving_away_stays_installed_until_idle() {
        let mut f = Fib::new(true, Duration::from_secs(30));
        let local = Action::RouteLocal { ip: ip(1), mac: MacAddr([2, 0, 0, 0, 0, 1]), downlink: 0 };
        assert_eq!(f.filter(vec![local.clone()], 0.0), vec![local.clone()]);
        assert_eq!(f.filter(vec![local.clone()], 1.0), vec![local], "routed again (another downlink)");
        assert_eq!((f.rib_len(), f.fib_len()), (0, 1));
        // It moved to another leaf: the kernel's local route becomes the remote one.
        let away = Action::RouteRemote { ip: ip(1), nexthop: IpAddr::from([192, 168, 0, 4]), was_on: Some(0) };
        assert_eq!(f.filter(vec![away.clone()], 10.0), vec![away]);
        assert_eq!((f.rib_len(), f.fib_len()), (1, 1));
        assert_eq!(f.expire(&[], 40.0), vec![Action::Unroute { ip: ip(1), was_on: None }]);
        assert_eq!(f.fib_len(), 0);
    }
}
