//! leafd's configuration file (TOML).
//!
//! ```toml
//! name = "leaf1"
//! anycast_mac = "00:00:5e:00:01:01"
//! gateways = ["10.1.1.254/24", "2001:db8:1::fe/64"]  # the anycast gateway IPs, one per subnet
//! fabric_address = "192.168.0.1"      # the next hop this leaf advertises its /32s with
//! fabric_address6 = "fd00::1"         # and its /128s (needed with an IPv6 gateway)
//! route_protocol = 200                # kernel routes leafd owns (`ip route … proto 200`)
//! fixups = true                       # selective ARP fix-ups after a move
//! report = "/var/log/leafd-moves.jsonl"   # optional: one JSON line per move
//! metrics = "127.0.0.1:9479"          # optional: Prometheus metrics over HTTP (default off)
//!
//! [fib]                               # optional
//! on_demand = true                    # remote host routes into the kernel only when in use
//! idle_secs = 60                      # and out after this long without traffic
//!
//! [bgp]
//! api = "unix:///run/leaf1/gobgp.sock"  # gobgpd's gRPC API (its `--api-hosts`)
//! # optional, one leafd per tenant: the tenant's VRF (VPN routes, RFC 4364)
//! vrf = { name = "t2", rd = "65000:5001", rt = "65000:5001" }
//!
//! [[downlinks]]
//! iface = "down1"                     # the veth/port towards one vswitchd host
//! vswitchd = "/run/roam/host1.ctl"    # that vswitchd's control socket
//! host = 1                            # the host's fabric-wide id (carried in BGP)
//! segment = 5001                      # optional: only that segment's VMs (one tenant's)
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pipeline::{IpNet, MacAddr, SegmentId};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub anycast_mac: String,
    pub gateways: Vec<String>,
    pub fabric_address: Ipv4Addr,
    /// The next hop of this leaf's IPv6 host routes (the kernel routes no IPv6 prefix via
    /// an IPv4 next hop, so the fabric needs IPv6 addresses for them).
    #[serde(default)]
    pub fabric_address6: Option<Ipv6Addr>,
    #[serde(default = "default_protocol")]
    pub route_protocol: u8,
    #[serde(default = "default_true")]
    pub fixups: bool,
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Where to serve Prometheus metrics over HTTP, `IP:PORT` (in leafd's namespace);
    /// off when absent.
    #[serde(default)]
    pub metrics: Option<String>,
    #[serde(default)]
    pub fib: FibConfig,
    pub bgp: BgpConfig,
    pub downlinks: Vec<DownlinkConfig>,
}

/// Which remote host routes go into the kernel (see `fib`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FibConfig {
    /// Only those in use (asked for by a local VM, with traffic since); all when false.
    #[serde(default)]
    pub on_demand: bool,
    /// How long an installed remote route stays without traffic.
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
}

impl Default for FibConfig {
    fn default() -> FibConfig {
        FibConfig { on_demand: false, idle_secs: default_idle() }
    }
}

fn default_idle() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    /// gobgpd's gRPC API, as given to its `--api-hosts` (`unix:///PATH.sock`).
    pub api: String,
    /// The tenant's VRF in that GoBGP, when this leafd serves one tenant of several (its
    /// routes are then VPN routes; see `vpn`).
    #[serde(default)]
    pub vrf: Option<crate::vpn::VrfConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownlinkConfig {
    pub iface: String,
    pub vswitchd: PathBuf,
    pub host: u16,
    /// The segment on that vswitchd this leafd serves (a tenant's); every VM when absent.
    #[serde(default)]
    pub segment: Option<SegmentId>,
}

fn default_protocol() -> u8 {
    200
}

fn default_true() -> bool {
    true
}

/// The configuration, checked and parsed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub raw: Config,
    pub anycast: MacAddr,
    /// (gateway address, its subnet), IPv4 and IPv6.
    pub gateways: Vec<(IpAddr, IpNet)>,
    pub vrf: Option<crate::vpn::Vrf>,
}

impl Checked {
    /// The configured subnet holding `ip`, if any.
    pub fn subnet_of(&self, ip: IpAddr) -> Option<IpNet> {
        self.gateways.iter().map(|(_, n)| *n).find(|n| n.contains(ip))
    }

    /// The next hop this leaf advertises an address of this family with.
    pub fn nexthop_for(&self, ip: IpAddr) -> Option<IpAddr> {
        match ip {
            IpAddr::V4(_) => Some(self.raw.fabric_address.into()),
            IpAddr::V6(_) => self.raw.fabric_address6.map(IpAddr::V6),
        }
    }
}

pub fn load(path: &Path) -> Result<Checked> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse(text: &str) -> Result<Checked> {
    let raw: Config = toml::from_str(text)?;
    let anycast: MacAddr =
        raw.anycast_mac.parse().map_err(|e| anyhow::anyhow!("anycast_mac {:?}: {e}", raw.anycast_mac))?;
    if anycast.is_multicast() || anycast == MacAddr::ZERO {
        bail!("anycast_mac {anycast} must be a unicast address");
    }
    let mut gateways = Vec::new();
    for g in &raw.gateways {
        let net: IpNet = g.parse().map_err(|e| anyhow::anyhow!("gateway {g:?}: {e}"))?;
        let (addr, wide_enough) = match net {
            IpNet::V4(n) => (IpAddr::V4(n.addr), n.prefix_len < 31),
            IpNet::V6(n) => (IpAddr::V6(n.addr), n.prefix_len < 127),
        };
        if !wide_enough {
            bail!("gateway {g}: give the subnet's prefix length (e.g. 10.1.1.254/24, 2001:db8:1::fe/64)");
        }
        if addr.is_ipv6() && raw.fabric_address6.is_none() {
            bail!("gateway {g}: an IPv6 gateway needs fabric_address6 (the next hop of this leaf's /128s)");
        }
        gateways.push((addr, net));
    }
    if let Some(m) = &raw.metrics {
        if m.parse::<std::net::SocketAddr>().is_err() {
            bail!("metrics address {m:?} is not IP:PORT (e.g. 127.0.0.1:9479)");
        }
    }
    if gateways.is_empty() {
        bail!("no gateways: give at least one, e.g. gateways = [\"10.1.1.254/24\"]");
    }
    if raw.downlinks.is_empty() {
        bail!("no downlinks");
    }
    for (i, d) in raw.downlinks.iter().enumerate() {
        if raw.downlinks[..i].iter().any(|o| o.iface == d.iface || o.host == d.host) {
            bail!("downlink {} (host {}) is listed twice", d.iface, d.host);
        }
    }
    if matches!(raw.route_protocol, 0..=4 | 186..=198 | 255) {
        bail!(
            "route_protocol {} is reserved (kernel, boot, static or a routing daemon's): use e.g. 200",
            raw.route_protocol
        );
    }
    if raw.fib.on_demand && !(2..=86_400).contains(&raw.fib.idle_secs) {
        bail!("fib.idle_secs {}: give 2 to 86400 seconds", raw.fib.idle_secs);
    }
    let vrf = raw.bgp.vrf.as_ref().map(|v| v.check()).transpose()?;
    Ok(Checked { raw, anycast, gateways, vrf })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "leaf1"
anycast_mac = "00:00:5e:00:01:01"
gateways = ["10.1.1.254/24"]
fabric_address = "192.168.0.1"
[bgp]
api = "unix:///tmp/g.sock"
[[downlinks]]
iface = "d1"
vswitchd = "/tmp/h1.ctl"
host = 1
"#;

    #[test]
    fn a_good_config_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!((c.raw.route_protocol, c.raw.fixups, c.gateways.len()), (200, true, 1));
        assert_eq!(c.subnet_of("10.1.1.7".parse().unwrap()).map(|n| n.to_string()).as_deref(), Some("10.1.1.254/24"));
        assert_eq!(c.subnet_of("10.1.2.7".parse().unwrap()), None);
        let dual = GOOD.replace(r#"["10.1.1.254/24"]"#, r#"["10.1.1.254/24", "2001:db8:1::fe/64"]"#);
        let c = parse(&dual.replace("[bgp]", "fabric_address6 = \"fd00::1\"\n[bgp]")).unwrap();
        let v6 = "2001:db8:1::7".parse().unwrap();
        assert_eq!(c.subnet_of(v6).map(|n| n.to_string()).as_deref(), Some("2001:db8:1::fe/64"));
        assert_eq!(c.nexthop_for(v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(c.nexthop_for("10.1.1.7".parse().unwrap()), Some("192.168.0.1".parse().unwrap()));
        let e = format!("{:#}", parse(&dual).unwrap_err());
        assert!(e.contains("needs fabric_address6"), "{e}");
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        for (bad, why) in [
            (GOOD.replace("00:00:5e:00:01:01", "01:00:5e:00:01:01"), "unicast"),
            (GOOD.replace("10.1.1.254/24", "10.1.1.254/32"), "prefix length"),
            (GOOD.replace("10.1.1.254/24", "10.1.1.300/24"), "gateway"),
            (GOOD.replace("10.1.1.254/24", "2001:db8::fe/128"), "prefix length"),
            (GOOD.replace("name = ", "nmae = "), "unknown field"),
            (GOOD.replace("[bgp]", "route_protocol = 186\n[bgp]"), "reserved"),
            (GOOD.to_string() + "[[downlinks]]\niface = \"d1\"\nvswitchd = \"/x\"\nhost = 2\n", "twice"),
            (GOOD.replace("host = 1", "host = 1\nsegment = 16777216"), "out of range"),
            (GOOD.replace("[bgp]", "[fib]\non_demand = true\nidle_secs = 1\n[bgp]"), "idle_secs"),
        ] {
            let e = format!("{:#}", parse(&bad).unwrap_err());
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
