//! The leaf's data plane: Linux routing in the leaf's network namespace. Downlinks carry
//! the anycast gateway MAC and IPs (as /32s: the leaf never ARPs across a subnet towards
//! its hosts) with proxy ARP on, so the kernel answers ARP for addresses routed elsewhere
//! and never for an address on the asking downlink (no hair-pinning). Local hosts get a
//! /32 and a permanent neighbour entry; remote hosts a /32 via the leaf that advertised
//! them, so the neighbour cache holds one entry per remote leaf, not one per remote VM.
//!
//! Set-up (once, at start) uses iproute2 and /proc/sys; the routes and neighbours of a move
//! go over one rtnetlink socket, each change acknowledged by the kernel before the next
//! action (a fix-up) runs: tens of microseconds, where an `ip` process took milliseconds.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use pipeline::MacAddr;

pub struct Kernel {
    /// The routing protocol number of the routes leafd owns.
    pub protocol: u8,
    netlink: Socket,
    seq: Cell<u32>,
    /// Interface indexes by name.
    ifindex: RefCell<HashMap<String, u32>>,
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

impl Kernel {
    /// Opens the rtnetlink socket (in the namespace leafd runs in).
    pub fn new(protocol: u8) -> Result<Kernel> {
        let mut netlink = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
        netlink.bind_auto().context("binding the rtnetlink socket")?;
        netlink.connect(&SocketAddr::new(0, 0)).context("connecting the rtnetlink socket")?;
        Ok(Kernel { protocol, netlink, seq: Cell::new(0), ifindex: RefCell::new(HashMap::new()) })
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

    fn host_route(&self, ip: Ipv4Addr, scope: RouteScope) -> RouteMessage {
        let mut r = RouteMessage::default();
        r.header = RouteHeader {
            address_family: AddressFamily::Inet,
            destination_prefix_length: 32,
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: self.protocol.into(),
            scope,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        r.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(ip)));
        r
    }

    fn neighbour(&self, ip: Ipv4Addr, ifindex: u32) -> NeighbourMessage {
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Inet;
        n.header.ifindex = ifindex;
        n.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        n
    }

    /// Forwarding on, and no routes left from an earlier run.
    pub fn setup(&self) -> Result<()> {
        sysctl("net/ipv4/ip_forward", "1")?;
        // A leaf routes a VM's frame back down the downlink it came from when the
        // destination moved behind the same host: no ICMP redirect may tell the VM to go
        // direct (it would ARP, and the segment would hear it). The interface's value is
        // OR-ed with `all`.
        sysctl("net/ipv4/conf/all/send_redirects", "0")?;
        ip(&["-4", "route", "flush", "proto", &self.protocol.to_string()])
    }

    /// A downlink: the anycast MAC and gateway addresses, proxy ARP answering at once.
    pub fn setup_downlink(&self, iface: &str, anycast: MacAddr, gateways: &[Ipv4Addr]) -> Result<()> {
        ip(&["link", "set", "dev", iface, "address", &anycast.to_string()])?;
        for g in gateways {
            ip(&["addr", "replace", &format!("{g}/32"), "dev", iface])?;
        }
        sysctl(&format!("net/ipv4/conf/{iface}/proxy_arp"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/forwarding"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/send_redirects"), "0")?;
        // Linux delays proxied answers by up to 0.8 s by default.
        sysctl(&format!("net/ipv4/neigh/{iface}/proxy_delay"), "0")?;
        ip(&["link", "set", "dev", iface, "up"])?;
        self.index(iface).map(|_| ())
    }

    /// `ip neigh replace IP lladdr MAC dev IFACE nud permanent` and
    /// `ip route replace IP/32 dev IFACE proto P`.
    pub fn route_local(&self, ip: Ipv4Addr, mac: MacAddr, iface: &str) -> Result<()> {
        let index = self.index(iface)?;
        let mut n = self.neighbour(ip, index);
        n.header.state = NeighbourState::Permanent;
        n.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
        self.request(RouteNetlinkMessage::NewNeighbour(n), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("neighbour {ip} lladdr {mac} dev {iface}"))?;
        let mut r = self.host_route(ip, RouteScope::Link);
        r.attributes.push(RouteAttribute::Oif(index));
        self.request(RouteNetlinkMessage::NewRoute(r), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("route {ip}/32 dev {iface}"))?;
        Ok(())
    }

    /// `ip route replace IP/32 via NEXTHOP proto P`, and the neighbour entry on `was_on`
    /// forgotten.
    pub fn route_remote(&self, ip: Ipv4Addr, nexthop: Ipv4Addr, was_on: Option<&str>) -> Result<()> {
        let mut r = self.host_route(ip, RouteScope::Universe);
        r.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(nexthop)));
        self.request(RouteNetlinkMessage::NewRoute(r), NLM_F_CREATE | NLM_F_REPLACE)
            .with_context(|| format!("route {ip}/32 via {nexthop}"))?;
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        Ok(())
    }

    /// No route for `ip/32` any more (already gone is fine), nor a neighbour entry on
    /// `was_on`.
    pub fn unroute(&self, ip: Ipv4Addr, was_on: Option<&str>) -> Result<()> {
        let r = self.host_route(ip, RouteScope::Universe);
        match self.request(RouteNetlinkMessage::DelRoute(r), 0) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(3) => {} // ESRCH: no such route
            Err(e) => return Err(anyhow!("removing the route {ip}/32: {e}")),
        }
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        Ok(())
    }

    fn forget_neighbour(&self, ip: Ipv4Addr, iface: &str) {
        // Already gone is fine.
        if let Ok(index) = self.index(iface) {
            let _ = self.request(RouteNetlinkMessage::DelNeighbour(self.neighbour(ip, index)), 0);
        }
    }
}
