//! Two tenants on a VXLAN fabric: two leaves (GoBGP between them carrying VPN routes),
//! two hosts whose vswitchds have a VXLAN uplink to their leaf, and per leaf and tenant a
//! network namespace with the tenant's routing domain and its own leafd (its VRF in the
//! leaf's GoBGP, its segment on the host's vswitchd). In a tenant's namespace on leaf N:
//! `vxVNI`, the VXLAN downlink to host N's VTEP (UDP 4789, socket in the leaf's
//! namespace), and `trVNI`, the tenant's transit to the other leaf (a VXLAN device on UDP
//! 4790 over the fabric link, holding the leaf's fabric addresses, so that the VPN
//! routes' next hops are reachable inside the tenant). Every tenant uses 10.1.1.0/24 and
//! 2001:db8:1::/64 and the same gateway.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use serde_json::json;

use crate::fabric::{moves_in, wait_move_in, Fabric, LeafdConfig, MoveReport, ANYCAST};
use crate::{wait_for, Leaf, TestDir, Vswitchd};

/// The tenants' VNIs (each also its segment id on the hosts).
pub const VNIS: [u32; 2] = [5000, 5001];
/// The UDP port of the leaves' tenant transit VXLAN (4789 is the downlinks').
const TRANSIT_PORT: u16 = 4790;

/// Host N's VTEP (N = 1, 2) and its leaf's, on their link.
pub fn host_vtep(n: usize) -> String {
    format!("172.16.{n}.2")
}
pub fn leaf_vtep(n: usize) -> String {
    format!("172.16.{n}.1")
}

/// One tenant on one leaf: its namespace and its leafd.
pub struct TenantLeaf {
    pub name: String,
    pub ns: Leaf,
    pub report: PathBuf,
    leafd: Child,
}

impl TenantLeaf {
    /// The kernel's host route for `ip` in the tenant's namespace.
    pub fn route(&self, ip: &str) -> String {
        let family = if ip.contains(':') { ["-6", "/128"] } else { ["-4", "/32"] };
        self.ns.exec(&["ip", family[0], "route", "show", &format!("{ip}{}", family[1])])
    }

    pub fn moves(&self) -> Vec<MoveReport> {
        moves_in(&self.report)
    }

    pub fn wait_move_since(&self, direction: &str, ip: &str, since_us: u64) -> MoveReport {
        wait_move_in(&self.name, &self.report, direction, ip, since_us)
    }
}

impl Drop for TenantLeaf {
    fn drop(&mut self) {
        let _ = self.leafd.kill();
        let _ = self.leafd.wait();
    }
}

/// The whole fabric. Dropped in field order: the tenants' leafds go before GoBGP.
pub struct Tenants {
    /// `[leaf][tenant]`, tenants in `VNIS` order.
    pub tenants: Vec<Vec<TenantLeaf>>,
    pub hosts: [Vswitchd; 2],
    pub fabric: Fabric,
}

impl Tenants {
    pub fn start(dir: &TestDir, tag: &str) -> Tenants {
        let fabric = Fabric::new(dir, tag);
        let mut hosts = Vec::new();
        for (i, l) in fabric.leaves.iter().enumerate() {
            let n = i + 1;
            l.leaf.exec(&["ip", "addr", "add", &format!("{}/24", leaf_vtep(n)), "dev", &l.leaf.leaf_if]);
            let vs = Vswitchd::start(dir, &format!("host{n}"), Some(&l.leaf.uplink()));
            let (ok, out) = vs.vsctl(&["set-underlay", "--local", &host_vtep(n), "--leaf", &leaf_vtep(n)]);
            assert!(ok, "set-underlay on host {n}: {out}");
            for vni in VNIS {
                vs.ok(json!({ "op": "set-anycast", "segment": vni, "vni": vni, "mac": ANYCAST, "subnets": ["10.1.1.0/24", "2001:db8:1::/64"] }));
            }
            hosts.push(vs);
        }
        let mut tenants = Vec::new();
        for (i, l) in fabric.leaves.iter().enumerate() {
            let (n, other) = (i + 1, &fabric.leaves[1 - i]);
            let mut here = Vec::new();
            for vni in VNIS {
                let ns = l.leaf.tenant_bare(vni, &leaf_vtep(n), &host_vtep(n));
                let transit = format!("tr{vni}");
                l.leaf.vxlan_into(&ns, &transit, vni, &l.fabric_ip, &other.fabric_ip, TRANSIT_PORT);
                ns.exec(&["ip", "addr", "add", &format!("{}/30", l.fabric_ip), "dev", &transit]);
                ns.exec(&["ip", "-6", "addr", "add", &format!("{}/64", l.fabric_ip6), "dev", &transit, "nodad"]);
                let name = format!("{}-t{vni}", l.name);
                let report = dir.path(&format!("{name}-moves.jsonl"));
                let config = LeafdConfig {
                    name: &name,
                    fabric_ip: &l.fabric_ip,
                    fabric_ip6: &l.fabric_ip6,
                    api: &l.api,
                    report: &report,
                    fixups: true,
                    vrf: Some(format!("{{ name = \"t{vni}\", rd = \"65000:{vni}\", rt = \"65000:{vni}\" }}")),
                    iface: &ns.leaf_if,
                    vswitchd: &hosts[i].socket,
                    host: n as u16,
                    segment: Some(vni),
                    on_demand: None,
                };
                let leafd = config.spawn(&dir.0, &ns.ns);
                here.push(TenantLeaf { name, ns, report, leafd });
            }
            tenants.push(here);
        }
        for (n, vs) in hosts.iter().enumerate() {
            wait_for(&format!("host {}'s leaf VTEP resolved", n + 1), Duration::from_secs(10), || {
                vs.show().underlay.filter(|u| u.leaf.iter().all(|l| l.mac.is_some()))
            });
        }
        let hosts: [Vswitchd; 2] = hosts.try_into().unwrap_or_else(|_| unreachable!());
        Tenants { tenants, hosts, fabric }
    }

    /// Tenant `t`'s (index into `VNIS`) namespace on leaf `l`.
    pub fn tenant(&self, l: usize, t: usize) -> &TenantLeaf {
        &self.tenants[l][t]
    }
}
