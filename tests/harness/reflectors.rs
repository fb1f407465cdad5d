//! A fabric of N leaves whose GoBGPs peer only with two route reflectors: FRR's `bgpd`
//! (Debian's `frr`), each in its own namespace, run without zebra (a reflector installs no
//! route). Leaves and reflectors share one layer-2 fabric: a Linux bridge in a namespace of
//! its own, 192.168.0.0/24 and fd00::/64 (leaf N at .N and ::N, reflector R at .10R and
//! ::10R). Both reflectors are in one cluster (cluster id 192.168.0.100) and take any leaf
//! of the subnet as a client (`bgp listen range`).

use std::process::{Child, Command};
use std::time::Duration;

use crate::fabric::{fabric_addresses, Fabric, LeafNode, ASN};
use crate::leaf::ip;
use crate::{spawn_logged, wait_for, Leaf, TestDir};

/// One route reflector: its namespace and its bgpd.
pub struct Reflector {
    pub ns: Leaf,
    pub address: String,
    bgpd: Option<Child>,
    /// Where its bgpd's log is.
    pub log: std::path::PathBuf,
}

impl Reflector {
    /// Stops its bgpd (the fabric carries on over the other reflector).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.bgpd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// FRR's configuration of reflector `address`: every family leafd uses, all leaves clients.
fn bgpd_conf(address: &str) -> String {
    let mut c = format!(
        "frr defaults datacenter
hostname rr-{address}
router bgp {ASN}
 bgp router-id {address}
 bgp cluster-id 192.168.0.100
 no bgp default ipv4-unicast
 neighbor LEAVES peer-group
 neighbor LEAVES remote-as {ASN}
 neighbor LEAVES timers 3 9
 bgp listen range 192.168.0.0/24 peer-group LEAVES
"
    );
    for family in ["ipv4 unicast", "ipv6 unicast", "ipv4 vpn", "ipv6 vpn"] {
        c += &format!(
            " address-family {family}\n  neighbor LEAVES activate\n  neighbor LEAVES route-reflector-client\n exit-address-family\n"
        );
    }
    c
}

/// A veth from the switch's bridge into namespace `into` (named `name` there).
fn plug(switch: &Leaf, into: &str, name: &str) {
    let outer = format!("s{name}");
    ip(&["link", "add", &outer, "type", "veth", "peer", "name", name]);
    ip(&["link", "set", &outer, "netns", &switch.ns]);
    ip(&["link", "set", name, "netns", into]);
    switch.exec(&["ip", "link", "set", &outer, "master", "br0", "up"]);
}

impl Fabric {
    /// `n` leaves (no hosts yet) and two FRR route reflectors, every leaf's two sessions
    /// (to the reflectors) established.
    pub fn reflected(dir: &TestDir, tag: &str, n: usize) -> Fabric {
        let id = std::process::id() % 100_000;
        let switch = Leaf::bare(&format!("{tag}sw"));
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec(&["ip", "link", "set", "br0", "up"]);
        let mut reflectors = Vec::new();
        for r in 1..=2 {
            let ns = Leaf::bare(&format!("{tag}rr{r}"));
            let (iface, address) = (format!("f{tag}r{r}{id}"), format!("192.168.0.{}", 100 + r));
            plug(&switch, &ns.ns, &iface);
            fabric_addresses(&ns, &iface, 100 + r, 24);
            let conf = dir.path(&format!("rr{r}-bgpd.conf"));
            std::fs::write(&conf, bgpd_conf(&address)).expect("writing bgpd's config");
            let log = dir.path(&format!("rr{r}-bgpd.log"));
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns.ns, "/usr/lib/frr/bgpd", "-f"])
                .arg(&conf)
                .arg("-i")
                .arg(dir.path(&format!("rr{r}-bgpd.pid")))
                .arg("--vty_socket")
                .arg(&dir.0)
                .args(["-Z", "-n", "-S", "-u", "root", "-g", "root", "-P", "0", "-l", &address]);
            let bgpd = Some(spawn_logged(&mut cmd, &log, "bgpd"));
            reflectors.push(Reflector { ns, address, bgpd, log });
        }
        let peers: Vec<(String, bool)> = reflectors.iter().map(|r| (r.address.clone(), false)).collect();
        let mut leaves = Vec::new();
        for i in 1..=n {
            let leaf = Leaf::bare(&format!("{tag}{i}"));
            let iface = format!("f{tag}l{i}{id}");
            plug(&switch, &leaf.ns, &iface);
            fabric_addresses(&leaf, &iface, i, 24);
            leaves.push(LeafNode::start(dir, leaf, i, iface, &peers));
        }
        let fabric = Fabric { leaves, reflectors, _switch: Some(switch) };
        fabric.wait_sessions();
        fabric
    }

    /// Waits until every leaf's sessions to the reflectors still running are established
    /// (after one was killed, the other must carry everything).
    pub fn wait_reflector_sessions(&self, up: usize) {
        for l in &self.leaves {
            wait_for(&format!("{}'s sessions to {up} reflectors", l.name), Duration::from_secs(60), || {
                let out = l.gobgp(&["neighbor"]);
                (out.matches("Establ").count() == up).then_some(())
            });
        }
    }
}

impl crate::fabric::LeafNode {
    /// UPDATE messages this leaf's GoBGP has sent to and received from all its peers
    /// (GoBGP's message counters).
    pub fn bgp_updates(&self) -> (u64, u64) {
        let list = self.gobgp(&["neighbor"]);
        let peers: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.parse::<std::net::IpAddr>().is_ok())
            .collect();
        let mut total = (0, 0);
        for p in peers {
            let detail = self.gobgp(&["neighbor", p]);
            let line = detail.lines().find(|l| l.trim_start().starts_with("Updates:"));
            let n: Vec<u64> =
                line.map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect()).unwrap_or_default();
            assert_eq!(n.len(), 2, "{}: no update counters for {p}: {detail}", self.name);
            total = (total.0 + n[0], total.1 + n[1]);
        }
        total
    }

    /// Host routes (/32 and /128) leafd has in this leaf's kernel.
    pub fn kernel_host_routes(&self) -> usize {
        ["-4", "-6"]
            .iter()
            .map(|f| {
                let out = self.leaf.exec(&["ip", f, "route", "show", "proto", "200"]);
                out.lines().filter(|l| l.split_whitespace().next().is_some_and(|d| !d.contains('/'))).count()
            })
            .sum()
    }
}
