//! Two leaves for end-to-end tests: network namespaces joined by a fabric link, GoBGP
//! (Debian's `gobgpd`) in each as one iBGP AS (unicast and L3VPN families, IPv4 and
//! IPv6), and `leafd` in each, with a downlink veth
//! whose host end is a vswitchd's uplink.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::leaf::ip;
use crate::{bin, spawn_logged, wait_for, Leaf, TestDir, Vswitchd};

/// One line of leafd's move report (`report = …` in its configuration): the fields the
/// tests read.
#[derive(Debug, Clone, Deserialize)]
pub struct MoveReport {
    /// `in` or `out`; absent for a change that was not a move.
    #[serde(rename = "move")]
    pub direction: Option<String>,
    pub ip: Option<IpAddr>,
    pub trigger: Trigger,
    pub from_host: Option<u16>,
    pub to_host: Option<u16>,
    pub fixups: Vec<FixupReport>,
    pub done_us: u64,
    /// When leafd started on the change's actions, and each action's duration in order.
    #[serde(default)]
    pub started_us: u64,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// One action of a change and how long it took.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// `kernel`, `bgp` or `fix-up`.
    pub action: String,
    pub us: u64,
}

/// What set a change off.
#[derive(Debug, Clone, Deserialize)]
pub struct Trigger {
    /// `link-up`, `garp`, `rarp`, `unsolicited-na`, `bgp-best`, …
    pub kind: String,
    pub at_us: u64,
}

/// One `arp-announce` a change made.
#[derive(Debug, Clone, Deserialize)]
pub struct FixupReport {
    pub to: Vec<String>,
    pub ip: IpAddr,
    /// Fix-up frames each VM got.
    pub sent: BTreeMap<String, usize>,
    /// Held frames for `ip` the vswitchd sent on.
    pub released: usize,
    pub at_us: u64,
}

impl MoveReport {
    /// The move's only fix-up told exactly `vm` (one frame) that `ip` is at the anycast MAC.
    pub fn assert_one_fixup(&self, vm: &str, ip: &str) -> &FixupReport {
        assert_eq!(self.fixups.len(), 1, "one fix-up: {self:#?}");
        let f = &self.fixups[0];
        assert_eq!((f.to.as_slice(), f.ip.to_string().as_str()), (&[vm.to_string()][..], ip), "{self:#?}");
        assert_eq!(f.sent.get(vm), Some(&1), "{self:#?}");
        f
    }
}

pub const ASN: u32 = 65000;

/// One leaf: its namespace and downlink, its BGP daemon, and leafd once started.
pub struct LeafNode {
    pub leaf: Leaf,
    pub name: String,
    pub fabric_ip: String,
    /// Its IPv6 fabric address, the next hop of its /128s.
    pub fabric_ip6: String,
    /// Its end of the fabric link.
    pub fabric_if: String,
    pub api: String,
    gobgpd: Child,
    leafd: Option<Child>,
    /// leafd's on-demand FIB with this idle time (seconds), set before it starts.
    pub on_demand: Option<u64>,
    pub report: PathBuf,
    dir: PathBuf,
}

impl LeafNode {
    /// Runs the GoBGP CLI against this leaf's daemon.
    pub fn gobgp(&self, args: &[&str]) -> String {
        let out = Command::new("gobgp").arg("--target").arg(&self.api).args(args).output().expect("running gobgp");
        assert!(out.status.success(), "gobgp {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The best path for `prefix` (an IPv4 or IPv6 one) in this leaf's BGP table: (next
    /// hop, communities as "a:b" strings), if there is one.
    pub fn best_path(&self, prefix: &str) -> Option<(String, Vec<String>)> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let out = Command::new("gobgp")
            .arg("--target")
            .arg(&self.api)
            .args(["global", "rib", "-a", family, "-j", prefix])
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let paths = v.get(prefix)?.as_array()?;
        let best = paths.iter().find(|p| p["best"] == Value::Bool(true))?;
        let mut nexthop = None;
        let mut communities = Vec::new();
        for a in best["attrs"].as_array()? {
            match a["type"].as_u64() {
                // NEXT_HOP (IPv4), or MP_REACH_NLRI's next hop (IPv6).
                Some(3) | Some(14) => nexthop = a["nexthop"].as_str().map(String::from),
                Some(8) => {
                    communities = a["communities"]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                        .collect()
                }
                _ => {}
            }
        }
        Some((nexthop?, communities))
    }

    /// The kernel's host route for `ip` (IPv4 or IPv6) in the leaf namespace.
    pub fn route(&self, ip: &str) -> String {
        if ip.contains(':') {
            self.leaf.exec(&["ip", "-6", "route", "show", &format!("{ip}/128")])
        } else {
            self.leaf.exec(&["ip", "-4", "route", "show", &format!("{ip}/32")])
        }
    }

    /// Starts leafd for this leaf with one downlink to `vswitchd` (host id `host`).
    pub fn start_leafd(&mut self, vswitchd: &std::path::Path, host: u16, fixups: bool) {
        let config = LeafdConfig {
            name: &self.name,
            fabric_ip: &self.fabric_ip,
            fabric_ip6: &self.fabric_ip6,
            api: &self.api,
            report: &self.report,
            fixups,
            vrf: None,
            iface: &self.leaf.leaf_if,
            vswitchd,
            host,
            segment: None,
            on_demand: self.on_demand,
        };
        self.leafd = Some(config.spawn(&self.dir, &self.leaf.ns));
    }

    /// Kills this leaf's leafd (SIGKILL, as a crash or an upgrade's stop would leave
    /// things) and starts it again with the same downlink.
    pub fn restart_leafd(&mut self, vswitchd: &std::path::Path, host: u16, fixups: bool) {
        if let Some(mut c) = self.leafd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.start_leafd(vswitchd, host, fixups);
    }

    /// leafd's metrics, scraped in the leaf's namespace and parsed.
    pub fn metrics(&self) -> crate::prometheus::Scrape {
        crate::prometheus::scrape_in(Some(&self.leaf.ns), &format!("http://127.0.0.1:{LEAFD_METRICS_PORT}/metrics"))
    }

    /// Checks leafd's metrics against its report file (they count the same things: moves
    /// each way, fix-up frames, on-demand installs and idles), once both have settled;
    /// returns the scrape.
    pub fn assert_metrics_match_report(&self) -> crate::prometheus::Scrape {
        let from_report = || {
            let lines: Vec<Value> = std::fs::read_to_string(&self.report)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let count = |k: &str, v: &str| lines.iter().filter(|l| l[k] == v).count() as f64;
            let frames: u64 = lines
                .iter()
                .filter_map(|l| l["fixups"].as_array())
                .flatten()
                .filter_map(|f| f["sent"].as_object())
                .flat_map(|sent| sent.values().filter_map(Value::as_u64))
                .sum();
            [count("move", "in"), count("move", "out"), frames as f64, count("fib", "install"), count("fib", "idle")]
        };
        let from_metrics = |m: &crate::prometheus::Scrape| {
            [
                m.value("roam_leaf_moves_total", &[("direction", "in")]),
                m.value("roam_leaf_moves_total", &[("direction", "out")]),
                m.value("roam_leaf_fixup_frames_total", &[]),
                m.value("roam_leaf_fib_on_demand_total", &[("event", "install")]),
                m.value("roam_leaf_fib_on_demand_total", &[("event", "idle")]),
            ]
        };
        let mut last = None;
        let settled = (0..50).find_map(|_| {
            let (want, m) = (from_report(), self.metrics());
            let got = from_metrics(&m);
            if got == want {
                return Some(m);
            }
            last = Some((want, got));
            std::thread::sleep(Duration::from_millis(100));
            None
        });
        settled.unwrap_or_else(|| {
            panic!(
                "{}: report (moves in, out, fix-up frames, installs, idles) {:?} != metrics {:?}",
                self.name,
                last.as_ref().map(|l| l.0),
                last.as_ref().map(|l| l.1)
            )
        })
    }

    /// The moves leafd has reported so far (one JSON object each).
    pub fn moves(&self) -> Vec<MoveReport> {
        moves_in(&self.report)
    }

    /// Waits for leafd's report of `ip` moving `direction` (`in` or `out`).
    pub fn wait_move(&self, direction: &str, ip: &str) -> MoveReport {
        self.wait_move_since(direction, ip, 0)
    }

    /// Waits for leafd's first report of `ip` moving `direction` triggered at or after
    /// `since_us` (µs since the epoch).
    pub fn wait_move_since(&self, direction: &str, ip: &str, since_us: u64) -> MoveReport {
        wait_move_in(&self.name, &self.report, direction, ip, since_us)
    }
}

/// The moves a leafd has reported so far in `report` (one JSON object each).
pub fn moves_in(report: &Path) -> Vec<MoveReport> {
    std::fs::read_to_string(report).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Waits for the first report in `report` (leafd `name`'s) of `ip` moving `direction`
/// triggered at or after `since_us` (µs since the epoch).
pub fn wait_move_in(name: &str, report: &Path, direction: &str, ip: &str, since_us: u64) -> MoveReport {
    wait_for(&format!("{name}'s report of {ip} moving {direction}"), Duration::from_secs(10), || {
        moves_in(report).into_iter().find(|m| {
            m.direction.as_deref() == Some(direction)
                && m.ip.is_some_and(|a| a.to_string() == ip)
                && m.trigger.at_us >= since_us
        })
    })
}

/// Where every leafd of the harness serves its metrics, in its own namespace.
pub const LEAFD_METRICS_PORT: u16 = 9479;

/// One leafd's configuration: the harness's gateways (10.1.1.254/24, 2001:db8:1::fe/64),
/// the leaf's fabric addresses and GoBGP, one downlink.
pub struct LeafdConfig<'a> {
    pub name: &'a str,
    pub fabric_ip: &'a str,
    pub fabric_ip6: &'a str,
    pub api: &'a str,
    pub report: &'a Path,
    pub fixups: bool,
    /// A tenant's VRF (`{ name = …, rd = …, rt = … }`), for one tenant's leafd.
    pub vrf: Option<String>,
    pub iface: &'a str,
    pub vswitchd: &'a Path,
    pub host: u16,
    /// The tenant's segment on that vswitchd.
    pub segment: Option<u32>,
    /// On-demand remote routes with this idle time (seconds).
    pub on_demand: Option<u64>,
}

impl LeafdConfig<'_> {
    fn toml(&self) -> String {
        let mut t = format!(
            "name = \"{}\"\nanycast_mac = \"{ANYCAST}\"\ngateways = [\"10.1.1.254/24\", \"2001:db8:1::fe/64\"]\nfabric_address = \"{}\"\nfabric_address6 = \"{}\"\nfixups = {}\nreport = \"{}\"\nmetrics = \"127.0.0.1:{LEAFD_METRICS_PORT}\"\n\n[bgp]\napi = \"{}\"\n",
            self.name,
            self.fabric_ip,
            self.fabric_ip6,
            self.fixups,
            self.report.display(),
            self.api
        );
        if let Some(v) = &self.vrf {
            t += &format!("vrf = {v}\n");
        }
        if let Some(idle) = self.on_demand {
            t += &format!("\n[fib]\non_demand = true\nidle_secs = {idle}\n");
        }
        t += &format!(
            "\n[[downlinks]]\niface = \"{}\"\nvswitchd = \"{}\"\nhost = {}\n",
            self.iface,
            self.vswitchd.display(),
            self.host
        );
        if let Some(s) = self.segment {
            t += &format!("segment = {s}\n");
        }
        t
    }

    /// Writes the configuration into `dir`, runs leafd in namespace `ns` (its log beside
    /// it), and waits for it to configure its downlink.
    pub fn spawn(&self, dir: &Path, ns: &str) -> Child {
        let config = dir.join(format!("{}-leafd.toml", self.name));
        std::fs::write(&config, self.toml()).expect("writing leafd's config");
        let log = dir.join(format!("{}-leafd.log", self.name));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(bin("leafd")).arg("--config").arg(&config).env("RUST_LOG", "info");
        let child = spawn_logged(&mut cmd, &log, "leafd");
        wait_for(&format!("{} to configure its downlink", self.name), Duration::from_secs(20), || {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "ip", "-4", "addr", "show", "dev", self.iface])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).contains("10.1.1.254/32").then_some(())
        });
        child
    }
}

impl Drop for LeafNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.leafd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.gobgpd.kill();
        let _ = self.gobgpd.wait();
    }
}

pub const ANYCAST: &str = "00:00:5e:00:01:01";

/// Leaves with BGP established between them: two in a full mesh (`Fabric::new`), or
/// any number with FRR route reflectors (`Fabric::reflected`, `reflectors.rs`).
pub struct Fabric {
    pub leaves: Vec<LeafNode>,
    pub reflectors: Vec<crate::reflectors::Reflector>,
    /// The namespace holding the reflected fabric's switch (a Linux bridge).
    pub(crate) _switch: Option<Leaf>,
}

impl Fabric {
    /// Two hosts, one under each leaf, segment 100 native on both uplinks, and leafd on
    /// each leaf (fix-ups on or off).
    pub fn with_hosts(dir: &TestDir, tag: &str, fixups: bool) -> (Fabric, Vswitchd, Vswitchd) {
        let mut fabric = Fabric::new(dir, tag);
        let [vs1, vs2]: [Vswitchd; 2] = fabric.start_hosts(dir, fixups).try_into().unwrap_or_else(|_| unreachable!());
        (fabric, vs1, vs2)
    }

    /// A host (vswitchd `hostN`) under each leaf N, segment 100 native on its uplink, and
    /// leafd on each leaf (fix-ups on or off).
    pub fn start_hosts(&mut self, dir: &TestDir, fixups: bool) -> Vec<Vswitchd> {
        let mut hosts = Vec::new();
        for (i, l) in self.leaves.iter_mut().enumerate() {
            let vs = Vswitchd::start(dir, &format!("host{}", i + 1), Some(&l.leaf.uplink()));
            // The test kernel has no 802.1Q devices: the segment is the trunk's native VLAN.
            vs.ok(
                json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24", "2001:db8:1::/64"], "native": true }),
            );
            l.start_leafd(&vs.socket, i as u16 + 1, fixups);
            hosts.push(vs);
        }
        hosts
    }

    /// Two leaves in a full mesh (one iBGP session) over one fabric link.
    pub fn new(dir: &TestDir, tag: &str) -> Fabric {
        let id = std::process::id() % 100_000;
        let (fa, fb) = (format!("fa{tag}{id}"), format!("fb{tag}{id}"));
        let nodes: Vec<Leaf> = (0..2).map(|i| Leaf::bare(&format!("{tag}{}", i + 1))).collect();
        ip(&["link", "add", &fa, "type", "veth", "peer", "name", &fb]);
        for (i, (leaf, end)) in nodes.iter().zip([&fa, &fb]).enumerate() {
            ip(&["link", "set", end, "netns", &leaf.ns]);
            fabric_addresses(leaf, end, i + 1, 30);
        }
        let mut leaves = Vec::new();
        for (i, (leaf, fabric_if)) in nodes.into_iter().zip([fa, fb]).enumerate() {
            // Leaf 2 only listens: when both sides connect at once, GoBGP's collision
            // handling once kept closing the session for over a minute.
            let peer = [(format!("192.168.0.{}", 2 - i), i == 1)];
            leaves.push(LeafNode::start(dir, leaf, i + 1, fabric_if, &peer));
        }
        let fabric = Fabric { leaves, reflectors: Vec::new(), _switch: None };
        fabric.wait_sessions();
        fabric
    }

    /// Waits until every leaf's every BGP session is established.
    pub(crate) fn wait_sessions(&self) {
        for l in &self.leaves {
            wait_for(&format!("{}'s BGP sessions", l.name), Duration::from_secs(60), || {
                let out = Command::new("gobgp").arg("--target").arg(&l.api).args(["neighbor", "-j"]).output().ok()?;
                let v: Value = serde_json::from_slice(&out.stdout).ok()?;
                let all = v.as_array()?;
                (!all.is_empty() && all.iter().all(|n| n["state"]["session_state"] == 6)).then_some(())
            });
        }
    }
}

/// Leaf `n`'s fabric addresses (192.168.0.N, fd00::N) on `iface`, up.
pub(crate) fn fabric_addresses(leaf: &Leaf, iface: &str, n: usize, len: u8) {
    leaf.exec(&["ip", "addr", "add", &format!("192.168.0.{n}/{len}"), "dev", iface]);
    leaf.exec(&["ip", "-6", "addr", "add", &format!("fd00::{n}/64"), "dev", iface, "nodad"]);
    leaf.exec(&["ip", "link", "set", iface, "up"]);
}

impl LeafNode {
    /// Leaf `n` (named leafN, fabric address 192.168.0.N) in `leaf`'s namespace: its GoBGP
    /// with a session to each of `peers` (address, passive), unicast and L3VPN families of
    /// both IP versions.
    pub(crate) fn start(dir: &TestDir, leaf: Leaf, n: usize, fabric_if: String, peers: &[(String, bool)]) -> LeafNode {
        let name = format!("leaf{n}");
        let me = format!("192.168.0.{n}");
        let mut conf = format!("[global.config]\nas = {ASN}\nrouter-id = \"{me}\"\nlocal-address-list = [\"{me}\"]\n");
        for (peer, passive) in peers {
            conf += &format!(
                "
[[neighbors]]
[neighbors.config]
neighbor-address = \"{peer}\"
peer-as = {ASN}
[neighbors.timers.config]
connect-retry = 1
hold-time = 9
keepalive-interval = 3
[neighbors.transport.config]
local-address = \"{me}\"
passive-mode = {passive}
"
            );
            for family in ["ipv4-unicast", "ipv6-unicast", "l3vpn-ipv4-unicast", "l3vpn-ipv6-unicast"] {
                conf +=
                    &format!("[[neighbors.afi-safis]]\n[neighbors.afi-safis.config]\nafi-safi-name = \"{family}\"\n");
            }
        }
        let path = dir.path(&format!("{name}-gobgpd.toml"));
        std::fs::write(&path, conf).expect("writing gobgpd's config");
        let api = format!("unix://{}", dir.path(&format!("{name}-gobgp.sock")).display());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &leaf.ns, "gobgpd", "-f"]).arg(&path).args(["--api-hosts", &api, "-l", "warn"]);
        let gobgpd = spawn_logged(&mut cmd, &dir.path(&format!("{name}-gobgpd.log")), "gobgpd");
        LeafNode {
            leaf,
            report: dir.path(&format!("{name}-moves.jsonl")),
            name,
            fabric_ip: me,
            fabric_ip6: format!("fd00::{n}"),
            fabric_if,
            api,
            gobgpd,
            leafd: None,
            on_demand: None,
            dir: dir.0.clone(),
        }
    }
}

/// Lines of a guest command's output that start with `prefix`, parsed as the numbers
/// after it ("done echoes N max_gap_ms G" → [N, G]).
pub fn numbers_after(out: &str, prefix: &str) -> Option<Vec<f64>> {
    let line = out.lines().find(|l| l.trim_start().starts_with(prefix))?;
    Some(line.split_whitespace().filter_map(|w| w.parse().ok()).collect())
}
