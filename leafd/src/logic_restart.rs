//! After a restart: GoBGP still holds leafd's own advertisements from before and reports
//! them when leafd watches its table again. They are never routed (that would route a
//! local VM via the leaf itself); an attached VM takes its address up again with the
//! sequence number it had, and an address no VM of a synced downlink has is withdrawn.

use std::net::IpAddr;

use super::{Action, Cause, Change, Downlink, Leaf, Path, Paths};

impl<R: Paths> Leaf<R> {
    /// Whether `path` is this leaf's own (its next hop is this leaf's fabric address): GoBGP
    /// reports the daemon's own paths when leafd (re)starts watching its table.
    pub(super) fn is_own(&self, path: &Path) -> bool {
        self.config.nexthop_for(path.nexthop) == Some(path.nexthop)
    }

    /// This leaf's own path for `ip`, as GoBGP still has it from before leafd restarted.
    pub(super) fn own_path(&mut self, ip: IpAddr, path: Path) -> Vec<Change> {
        if let Some(o) = self.owned.get_mut(&ip) {
            if path.seq <= o.seq {
                return Vec::new();
            }
            // Attached again before GoBGP's table came: the older advertisement's sequence
            // number is taken up again, so that the address never goes backwards.
            o.seq = path.seq;
            let host = self.hosts[o.downlink];
            return vec![Change {
                cause: Cause::Restored { ip },
                actions: vec![Action::Advertise { ip, host, seq: path.seq }],
            }];
        }
        match self.hosts.iter().position(|h| *h == path.host) {
            // Its downlink has told its VMs and none has the address: stale.
            Some(d) if self.synced[d] => {
                vec![Change { cause: Cause::Restored { ip }, actions: vec![Action::Withdraw { ip }] }]
            }
            _ => {
                self.restored.insert(ip, path);
                Vec::new()
            }
        }
    }

    /// Downlink `d`'s vswitchd has told its VMs: what this leaf advertised for that
    /// downlink before a restart and no VM there has now (it left, or was detached, while
    /// leafd was down) is withdrawn.
    pub(super) fn synced(&mut self, d: Downlink) -> Vec<Change> {
        self.synced[d] = true;
        let host = self.hosts[d];
        let mut stale: Vec<IpAddr> = self
            .restored
            .iter()
            .filter(|(ip, p)| p.host == host && !self.owned.contains_key(ip))
            .map(|(ip, _)| *ip)
            .collect();
        stale.sort();
        stale
            .into_iter()
            .map(|ip| {
                self.restored.remove(&ip);
                Change { cause: Cause::Restored { ip }, actions: vec![Action::Withdraw { ip }] }
            })
            .collect()
    }
}
