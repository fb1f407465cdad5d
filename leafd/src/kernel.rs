//! The leaf's data plane: Linux routing in the leaf's network namespace. Downlinks carry
//! the anycast gateway MAC and IPs (as /32s and /128s: the leaf never resolves across a
//! subnet towards its hosts) with proxy ARP on, so the kernel answers ARP for addresses
//! routed elsewhere and never for an address on the asking downlink (no hair-pinning).
//! Linux proxies neighbor discovery only for listed addresses, so each IPv6 host route
//! lists its address as a proxy entry on every downlink it is not behind: remote hosts on
//! all of them, a local host on the others. Local hosts get a host route and a permanent
//! neighbour entry; remote hosts a host route via the leaf that advertised them, so the
//! neighbour cache holds one entry per remote leaf, not one per remote VM.
//!
//! Set-up (once, at start) uses iproute2 and /proc/sys; the routes and neighbours of a move
//! go over one rtnetlink socket, each change acknowledged by the kernel before the next
//! action (a fix-up) runs: tens of microseconds, where an `ip` process took milliseconds.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use pipeline::MacAddr;

use crate::host_len;

pub struct Kernel {
    /// The routing protocol number of the routes leafd owns.
    pub protocol: u8,
    netlink: Socket,
    seq: Cell<u32>,
    /// Interface indexes by name.
    ifindex: RefCell<HashMap<String, u32>>,
    /// The downlinks set up, for IPv6 proxy entries.
    downlinks: RefCell<Vec<String>>,
}

/// The route and neighbour family of an address.
fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value).with_context(|| format!("setting {path} = {value}"))
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Loads an nftables ruleset (`rules`, for `what`) into the leaf's namespace.
fn nft(rules: &str, what: &str) -> Result<()> {
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running nft (nftables) {what}"))?;
    use std::io::Write;
    nft.stdin.take().context("nft's input")?.write_all(rules.as_bytes())?;
    let out = nft.wait_with_output()?;
    if !out.status.success() {
        bail!("nft {what}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// IPv6 has no `send_redirects`: a leaf that routes a VM's packet back down the downlink
/// it came from (its destination moved behind the same host) would send the VM an ICMPv6
/// redirect, and the VM would resolve the destination on the segment. An nftables rule
/// in the leaf's namespace drops them (the table is made anew, so a restart adds nothing).
fn no_redirects() -> Result<()> {
    let rules = "table ip6 roam_leafd\ndelete table ip6 roam_leafd\ntable ip6 roam_leafd {\n  chain output {\n    type filter hook output priority 0; policy accept;\n    icmpv6 type nd-redirect drop\n  }\n}\n";
    nft(rules, "to drop ICMPv6 redirects")
}

/// The kernel's record of the destinations it forwarded to (for on-demand routes): two
/// nftables sets in table `inet roam_fib`, each forwarded packet's destination added or
/// its timeout (`idle_secs`) started again, so an address in a set had traffic within the
/// idle time. And the misses: a packet for an address of the gateways' `subnets` with no
/// route (a VM still holding a neighbour entry for an address whose route aged out) is
/// dropped before routing (no ICMP error) and its destination put in a miss set for 1 s.
pub fn track_use(idle_secs: u64, subnets: &[pipeline::IpNet]) -> Result<()> {
    let set = |name: &str, kind: &str, secs: u64| {
        format!("  set {name} {{ type {kind}; size 1048576; flags dynamic,timeout; timeout {secs}s; }}\n")
    };
    let list = |v4: bool| {
        let nets: Vec<String> =
            subnets.iter().filter(|n| matches!(n, pipeline::IpNet::V4(_)) == v4).map(network).collect();
        (!nets.is_empty()).then(|| nets.join(", "))
    };
    let mut miss = String::new();
    if let Some(n) = list(true) {
        miss += &format!("    ip daddr {{ {n} }} fib daddr oif missing update @missed4 {{ ip daddr }} drop\n");
    }
    if let Some(n) = list(false) {
        miss += &format!("    ip6 daddr {{ {n} }} fib daddr oif missing update @missed6 {{ ip6 daddr }} drop\n");
    }
    let rules = format!(
        "table inet roam_fib\ndelete table inet roam_fib\ntable inet roam_fib {{\n{}{}{}{}  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    meta nfproto ipv4 update @used4 {{ ip daddr }}\n    meta nfproto ipv6 update @used6 {{ ip6 daddr }}\n  }}\n  chain prerouting {{\n    type filter hook prerouting priority 0; policy accept;\n{miss}  }}\n}}\n",
        set("used4", "ipv4_addr", idle_secs),
        set("used6", "ipv6_addr", idle_secs),
        set("missed4", "ipv4_addr", 1),
        set("missed6", "ipv6_addr", 1)
    );
    nft(&rules, "to record the destinations in use")
}

/// The destinations the kernel forwarded to within the idle time (see [`track_use`]).
pub fn used() -> Result<Vec<IpAddr>> {
    read_sets(["used4", "used6"])
}

/// The destinations it had no route for in the last second (see [`track_use`]).
pub fn missed() -> Result<Vec<IpAddr>> {
    read_sets(["missed4", "missed6"])
}

/// A subnet as nftables takes it: its network address and prefix length.
fn network(n: &pipeline::IpNet) -> String {
    match n {
        pipeline::IpNet::V4(n) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(n.prefix_len)).unwrap_or(0);
            format!("{}/{}", std::net::Ipv4Addr::from(u32::from(n.addr) & mask), n.prefix_len)
        }
        pipeline::IpNet::V6(n) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(n.prefix_len)).unwrap_or(0);
            format!("{}/{}", std::net::Ipv6Addr::from(u128::from(n.addr) & mask), n.prefix_len)
        }
    }
}

fn read_sets(sets: [&str; 2]) -> Result<Vec<IpAddr>> {
    let mut all = Vec::new();
    for set in sets {
        let out =
            Command::new("nft").args(["-j", "list", "set", "inet", "roam_fib", set]).output().context("running nft")?;
        if !out.status.success() {
            bail!("nft list set {set}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        all.extend(parse_set(&String::from_utf8_lossy(&out.stdout))?);
    }
    Ok(all)
}

/// The addresses in `nft -j list set`'s output (plain or with their timeouts).
fn parse_set(json: &str) -> Result<Vec<IpAddr>> {
    let v: serde_json::Value = serde_json::from_str(json).context("nft's JSON")?;
    let sets = v["nftables"].as_array().into_iter().flatten().filter_map(|o| o.get("set"));
    let elems = sets.flat_map(|s| s["elem"].as_array().cloned().unwrap_or_default());
    Ok(elems
        .filter_map(|e| e.as_str().map(String::from).or_else(|| e["elem"]["val"].as_str().map(String::from)))
        .filter_map(|a| a.parse().ok())
        .collect())
}

impl Kernel {
    /// Opens the rtnetlink socket (in the namespace leafd runs in).
    pub fn new(protocol: u8) -> Result<Kernel> {
        let mut netlink = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
        netlink.bind_auto().context("binding the rtnetlink socket")?;
        netlink.connect(&SocketAddr::new(0, 0)).context("connecting the rtnetlink socket")?;
        let (ifindex, downlinks) = (RefCell::new(HashMap::new()), RefCell::new(Vec::new()));
        Ok(Kernel { protocol, netlink, seq: Cell::new(0), ifindex, downlinks })
    }

    /// Sends one request and waits for the kernel's acknowledgement; returns the messages
    /// that came before it (a `get`'s answer).
    fn request(&self, msg: RouteNetlinkMessage, flags: u16) -> std::io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.header.length as usize];
        m.serialize(&mut buf);
        self.netlink.send(&buf, 0)?;
        let mut answers = Vec::new();
        loop {
            let (data, _) = self.netlink.recv_from_full()?;
            let mut at = 0;
            while at + 16 <= data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..])
                    .map_err(|e| std::io::Error::other(format!("an rtnetlink answer: {e}")))?;
                at += (reply.header.length as usize).next_multiple_of(4).max(16);
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                    _ => {}
                }
            }
        }
    }

    fn index(&self, iface: &str) -> Result<u32> {
        if let Some(i) = self.ifindex.borrow().get(iface) {
            return Ok(*i);
        }
        let mut get = LinkMessage::default();
        get.attributes.push(LinkAttribute::IfName(iface.to_string()));
        let answers =
            self.request(RouteNetlinkMessage::GetLink(get), 0).with_context(|| format!("interface {iface}"))?;
        let index = answers
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or_else(|| anyhow!("interface {iface}: no answer"))?;
        self.ifindex.borrow_mut().insert(iface.to_string(), index);
        Ok(index)
    }

    fn host_route(&self, ip: IpAddr, scope: RouteScope) -> RouteMessage {
        let mut r = RouteMessage::default();
        r.header = RouteHeader {
            address_family: family(ip),
            destination_prefix_length: host_len(ip),
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: self.protocol.into(),
            scope,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        r.attributes.push(RouteAttribute::Destination(route_address(ip)));
        r
    }

    fn neighbour(&self, ip: IpAddr, ifindex: u32) -> NeighbourMessage {
        let mut n = NeighbourMessage::default();
        n.header.family = family(ip);
        n.header.ifindex = ifindex;
        let address = match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        };
        n.attributes.push(NeighbourAttribute::Destination(address));
        n
    }

    /// `ip -6 neigh add proxy IP dev IFACE` (or `del`, with `add` false); already there
    /// (or gone) is fine.
    fn proxy(&self, ip: Ipv6Addr, iface: &str, add: bool) -> Result<()> {
        let mut n = self.neighbour(ip.into(), self.index(iface)?);
        n.header.flags = NeighbourFlags::Proxy;
        let done = if add {
            self.request(RouteNetlinkMessage::NewNeighbour(n), NLM_F_CREATE | NLM_F_REPLACE)
        } else {
            self.request(RouteNetlinkMessage::DelNeighbour(n), 0)
        };
        match done {
            Ok(_) => Ok(()),
            Err(e) if !add && e.raw_os_error() == Some(2) => Ok(()), // ENOENT
            Err(e) => Err(anyhow!("proxy entry {ip} dev {iface}: {e}")),
        }
    }

    /// IPv6 proxy entries for `ip` on every downlink except `behind` (where the host is).
    fn proxy_everywhere_but(&self, ip: IpAddr, behind: Option<&str>) -> Result<()> {
        let IpAddr::V6(ip) = ip else { return Ok(()) };
        for d in self.downlinks.borrow().iter() {
            self.proxy(ip, d, Some(d.as_str()) != behind)?;
        }
        Ok(())
    }

    /// Forwarding on, and no routes left from an earlier run.
    pub fn setup(&self) -> Result<()> {
        sysctl("net/ipv4/ip_forward", "1")?;
        sysctl("net/ipv6/conf/all/forwarding", "1")?;
        // A leaf routes a VM's frame back down the downlink it came from when the
        // destination moved behind the same host: no ICMP redirect may tell the VM to go
        // direct (it would ARP, and the segment would hear it). The interface's value is
        // OR-ed with `all`.
        sysctl("net/ipv4/conf/all/send_redirects", "0")?;
        ip(&["-4", "route", "flush", "proto", &self.protocol.to_string()])?;
        ip(&["-6", "route", "flush", "proto", &self.protocol.to_string()])
    }

    /// A downlink: the anycast MAC and gateway addresses (IPv6 ones with the link-local
    /// gateway `fe80::1`, the same on every leaf, and no duplicate address detection:
    /// every leaf has them), proxy ARP and ND answering at once.
    pub fn setup_downlink(&self, iface: &str, anycast: MacAddr, gateways: &[IpAddr]) -> Result<()> {
        ip(&["link", "set", "dev", iface, "address", &anycast.to_string()])?;
        sysctl(&format!("net/ipv6/conf/{iface}/accept_dad"), "0")?;
        for g in gateways {
            let len = host_len(*g);
            ip(&["addr", "replace", &format!("{g}/{len}"), "dev", iface, "nodad"])?;
        }
        if gateways.iter().any(IpAddr::is_ipv6) {
            ip(&["addr", "replace", "fe80::1/64", "dev", iface, "nodad"])?;
            sysctl(&format!("net/ipv6/conf/{iface}/proxy_ndp"), "1")?;
            sysctl(&format!("net/ipv6/neigh/{iface}/proxy_delay"), "0")?;
            no_redirects()?;
        }
        sysctl(&format!("net/ipv4/conf/{iface}/proxy_arp"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/forwarding"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/send_redirects"), "0")?;
        // Linux delays proxied answers by up to 0.8 s by default.
        sysctl(&format!("net/ipv4/neigh/{iface}/proxy_delay"), "0")?;
        ip(&["link", "set", "dev", iface, "up"])?;
        self.index(iface)?;
        self.downlinks.borrow_mut().push(iface.to_string());
        Ok(())
    }

    /// `ip neigh replace IP lladdr MAC dev IFACE nud permanent` and
    /// `ip route replace IP/32 dev IFACE proto P` (/128 for IPv6, proxied on the other
    /// downlinks and not on this one).
    pub fn route_local(&self, ip: IpAddr, mac: MacAddr, iface: &str) -> Result<()> {
        let index = self.index(iface)?;
        let mut n = self.neighbour(ip, index);
        n.header.state = NeighbourState::Permanent;
        n.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
        self.request(RouteNetlinkMessage::NewNeighbour(n), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("neighbour {ip} lladdr {mac} dev {iface}"))?;
        let mut r = self.host_route(ip, RouteScope::Link);
        r.attributes.push(RouteAttribute::Oif(index));
        self.request(RouteNetlinkMessage::NewRoute(r), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("route {ip}/{} dev {iface}", host_len(ip)))?;
        self.proxy_everywhere_but(ip, Some(iface))
    }

    /// `ip route replace IP/32 via NEXTHOP proto P` (/128 for IPv6, proxied on every
    /// downlink), and the neighbour entry on `was_on` forgotten.
    pub fn route_remote(&self, ip: IpAddr, nexthop: IpAddr, was_on: Option<&str>) -> Result<()> {
        if ip.is_ipv4() != nexthop.is_ipv4() {
            bail!("route {ip}/{} via {nexthop}: the next hop must be of the same family", host_len(ip));
        }
        let mut r = self.host_route(ip, RouteScope::Universe);
        r.attributes.push(RouteAttribute::Gateway(route_address(nexthop)));
        self.request(RouteNetlinkMessage::NewRoute(r), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("route {ip}/{} via {nexthop}", host_len(ip)))?;
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        self.proxy_everywhere_but(ip, None)
    }

    /// No route for `ip` any more (already gone is fine), nor a neighbour entry on
    /// `was_on`, nor (IPv6) a proxy entry anywhere.
    pub fn unroute(&self, ip: IpAddr, was_on: Option<&str>) -> Result<()> {
        let r = self.host_route(ip, RouteScope::Universe);
        match self.request(RouteNetlinkMessage::DelRoute(r), 0) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(3) => {} // ESRCH: no such route
            Err(e) => return Err(anyhow!("removing the route {ip}/{}: {e}", host_len(ip))),
        }
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        if let IpAddr::V6(a) = ip {
            for d in self.downlinks.borrow().iter() {
                self.proxy(a, d, false)?;
            }
        }
        Ok(())
    }

    fn forget_neighbour(&self, ip: IpAddr, iface: &str) {
        // Already gone is fine.
        if let Ok(index) = self.index(iface) {
            let _ = self.request(RouteNetlinkMessage::DelNeighbour(self.neighbour(ip, index)), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nft_sets_are_read_with_or_without_timeouts() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "used4", "table": "roam_fib", "type": "ipv4_addr", "elem": [{"elem": {"val": "10.1.1.3", "timeout": 30, "expires": 29}}, "10.1.1.4"]}}]}"#;
        let got = super::parse_set(json).unwrap();
        assert_eq!(got, vec!["10.1.1.3".parse::<std::net::IpAddr>().unwrap(), "10.1.1.4".parse().unwrap()]);
        let empty = r#"{"nftables": [{"set": {"name": "used6", "type": "ipv6_addr"}}]}"#;
        let net = |s: &str| super::network(&s.parse().unwrap());
        assert_eq!((net("10.1.1.254/24"), net("2001:db8:1::fe/64")), ("10.1.1.0/24".into(), "2001:db8:1::/64".into()));
        assert!(super::parse_set(empty).unwrap().is_empty());
    }
}
