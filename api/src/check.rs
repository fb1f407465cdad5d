//! Validation of requests, as far as it needs no switch state: names, MACs, devices,
//! sockets, MAC ranges, subnets. The switch checks the rest (is the segment configured,
//! is the MAC taken) against its own state. Nothing here panics on any input (fuzzed:
//! `api/fuzz`).

use std::path::Path;

use pipeline::{Encap, IpNet, MacAddr};

use crate::{ArpAnnounce, Attach, MacRange, Segment, Underlay};

/// Why a request was refused before it reached the switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("VM name must be 1-64 characters of [A-Za-z0-9-_.], not {0:?}")]
    Name(String),
    #[error("{what} {value} is not a unicast MAC address")]
    Mac { what: &'static str, value: MacAddr },
    #[error("queues must be 1..=8, not {0}")]
    Queues(u16),
    #[error("socket path must be non-empty UTF-8 without commas")]
    Socket,
    #[error("device {0:?}: give a DPDK vdev as driver<N>[,args], e.g. net_tap3,iface=vm3")]
    Device(String),
    #[error("give exactly one of socket (vhost-user) and device (a DPDK vdev)")]
    PortKind,
    #[error("server mode is for vhost-user sockets only")]
    ServerWithoutSocket,
    #[error("extra MACs {base}+{count}: the range must be non-empty, unicast and within 48 bits")]
    MacRange { base: MacAddr, count: u32 },
    #[error("`{0}` is not an IP prefix like 10.1.1.0/24 or 2001:db8:1::/64")]
    Subnet(String),
    #[error("{0} is no VM address: it must be unicast (not unspecified, loopback, multicast or broadcast)")]
    Address(std::net::IpAddr),
    #[error("segment {0}: give exactly one uplink encapsulation: a VLAN (--vlan ID), native (--native) or VXLAN (--vni VNI)")]
    Encapsulation(u32),
    #[error("underlay: {0}")]
    Underlay(String),
}

/// What an attachment's port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// vhost-user on `socket`; vswitchd is the server if `server`, else QEMU is.
    Vhost { socket: String, server: bool, queues: u16 },
    /// Any DPDK virtual device, with `queues` rx and tx queues (the device must support
    /// that many: e.g. `net_pcap` with as many `rx_pcap`, `net_af_packet` with `qpairs`).
    Device { driver: String, args: String, queues: u16 },
}

/// An attachment that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAttach {
    pub mac: MacAddr,
    pub port: PortSpec,
    /// Extra MACs behind the port, each range as (first, count).
    pub extra: Vec<(MacAddr, u32)>,
}

/// A segment configuration that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSegment {
    pub mac: MacAddr,
    pub subnets: Vec<IpNet>,
    pub encap: Encap,
}

/// A unicast MAC: not multicast, broadcast or zero. (Strings that are no MAC at all are
/// refused when the request is decoded.)
pub fn unicast_mac(what: &'static str, m: MacAddr) -> Result<MacAddr, Invalid> {
    if m.is_multicast() || m == MacAddr::ZERO {
        return Err(Invalid::Mac { what, value: m });
    }
    Ok(m)
}

impl MacRange {
    /// The range's first address and count, checked: non-empty, inside the 48-bit space,
    /// and unicast from end to end.
    pub fn check(&self) -> Result<(MacAddr, u32), Invalid> {
        let bad = || Invalid::MacRange { base: self.base, count: self.count };
        let base = unicast_mac("extra MAC base", self.base).map_err(|_| bad())?;
        if self.count == 0 || base.to_u64() + self.count as u64 > 1 << 48 || base.plus(self.count - 1).is_multicast() {
            return Err(bad());
        }
        Ok((base, self.count))
    }
}

impl Attach {
    pub fn check(&self) -> Result<CheckedAttach, Invalid> {
        let n = &self.name;
        if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Invalid::Name(n.chars().take(64).collect()));
        }
        let mac = unicast_mac("MAC", self.mac)?;
        if !(1..=8).contains(&self.queues) {
            return Err(Invalid::Queues(self.queues));
        }
        let port = match (&self.socket, &self.device) {
            (Some(path), None) => {
                PortSpec::Vhost { socket: socket_path(path)?, server: self.server, queues: self.queues }
            }
            (None, Some(device)) if !self.server => {
                let (driver, args) = device.split_once(',').unwrap_or((device.as_str(), ""));
                if driver.is_empty() || !driver.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(Invalid::Device(device.chars().take(128).collect()));
                }
                PortSpec::Device { driver: driver.to_string(), args: args.to_string(), queues: self.queues }
            }
            (None, Some(_)) => return Err(Invalid::ServerWithoutSocket),
            _ => return Err(Invalid::PortKind),
        };
        let v4 = self.ipv4.iter().map(|a| std::net::IpAddr::V4(*a));
        if let Some(bad) = v4.chain(self.ipv6.iter().map(|a| std::net::IpAddr::V6(*a))).find(|a| !vm_address(*a)) {
            return Err(Invalid::Address(bad));
        }
        let extra = self.extra_macs.iter().map(MacRange::check).collect::<Result<_, _>>()?;
        Ok(CheckedAttach { mac, port, extra })
    }
}

/// Whether a VM may have this address: unicast and not loopback.
fn vm_address(a: std::net::IpAddr) -> bool {
    match a {
        std::net::IpAddr::V4(a) => !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast()),
        std::net::IpAddr::V6(a) => !(a.is_unspecified() || a.is_loopback() || a.is_multicast()),
    }
}

/// A socket path usable in DPDK devargs (`iface=PATH,...`).
fn socket_path(path: &Path) -> Result<String, Invalid> {
    path.to_str().filter(|s| !s.is_empty() && !s.contains(',')).map(String::from).ok_or(Invalid::Socket)
}

impl Segment {
    pub fn check(&self) -> Result<CheckedSegment, Invalid> {
        let encap = match (self.vlan, self.native, self.vni) {
            (Some(v), false, None) => Encap::Vlan(v),
            (None, true, None) => Encap::Native,
            (None, false, Some(v)) => Encap::Vxlan(v),
            _ => return Err(Invalid::Encapsulation(self.segment.get())),
        };
        let mac = unicast_mac("anycast MAC", self.mac)?;
        let subnets = self
            .subnets
            .iter()
            .map(|n| n.parse::<IpNet>().map_err(|_| Invalid::Subnet(n.chars().take(64).collect())))
            .collect::<Result<_, _>>()?;
        Ok(CheckedSegment { mac, subnets, encap })
    }
}

impl Underlay {
    /// The data path's underlay, with `uplink_mac` for a missing MAC and no leaf VTEP
    /// resolved yet; the rest of the checks are the configuration's
    /// ([`pipeline::SwitchConfig::set_underlay`]), done here too so that a refusal says why
    /// before anything changes.
    pub fn check(&self, uplink_mac: MacAddr) -> Result<pipeline::vxlan::Underlay, Invalid> {
        let mut leaf = self.leaf.clone();
        leaf.sort();
        leaf.dedup();
        if leaf.len() != self.leaf.len() {
            return Err(Invalid::Underlay("a leaf VTEP is listed twice".into()));
        }
        if let Some(ip) = self.leaf_macs.keys().find(|ip| !self.leaf.contains(ip)) {
            return Err(Invalid::Underlay(format!("a MAC is given for {ip}, which is no leaf VTEP")));
        }
        let u = pipeline::vxlan::Underlay {
            ip: self.local,
            mac: self.mac.unwrap_or(uplink_mac),
            remotes: self
                .leaf
                .iter()
                .map(|ip| pipeline::vxlan::RemoteVtep { ip: *ip, mac: self.leaf_macs.get(ip).copied() })
                .collect(),
            mtu: self.mtu,
        };
        pipeline::SwitchConfig::new().set_underlay(Some(u.clone())).map_err(|e| Invalid::Underlay(e.to_string()))?;
        Ok(u)
    }
}

impl ArpAnnounce {
    /// The MAC the fix-up announces. An empty `to` is allowed: it tells nobody and only
    /// releases frames held for the address.
    pub fn check(&self) -> Result<MacAddr, Invalid> {
        unicast_mac("fix-up MAC", self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;
    use pipeline::{SegmentId, VlanId};

    fn attach(json: &str) -> Attach {
        match serde_json::from_str::<Request>(json).unwrap() {
            Request::Attach(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attachments_are_checked_without_a_switch() {
        let a = attach(
            r#"{"op":"attach","name":"vm-1","socket":"/run/vm.sock","mac":"52:54:00:00:00:01","segment":100,"queues":2}"#,
        );
        assert_eq!(
            a.check().unwrap().port,
            PortSpec::Vhost { socket: "/run/vm.sock".into(), server: false, queues: 2 }
        );
        let d = attach(
            r#"{"op":"attach","name":"d","device":"net_tap3,iface=vm3","mac":"52:54:00:00:00:01","segment":1,"extra_macs":[{"base":"02:00:00:00:00:00","count":3}]}"#,
        );
        let c = d.check().unwrap();
        assert_eq!(c.port, PortSpec::Device { driver: "net_tap3".into(), args: "iface=vm3".into(), queues: 1 });
        assert_eq!(c.extra, vec![(MacAddr([2, 0, 0, 0, 0, 0]), 3)]);
        for (bad, want) in [
            (r#"{"op":"attach","name":"a b","socket":"/s","mac":"52:54:00:00:00:01","segment":1}"#, "VM name"),
            (r#"{"op":"attach","name":"a","socket":"/s","mac":"ff:ff:ff:ff:ff:ff","segment":1}"#, "unicast"),
            (r#"{"op":"attach","name":"a","socket":"/a,b","mac":"52:54:00:00:00:01","segment":1}"#, "socket path"),
            (r#"{"op":"attach","name":"a","socket":"/s","mac":"52:54:00:00:00:01","segment":1,"queues":9}"#, "queues"),
            (r#"{"op":"attach","name":"a","mac":"52:54:00:00:00:01","segment":1}"#, "exactly one"),
            (r#"{"op":"attach","name":"a","device":"net null","mac":"52:54:00:00:00:01","segment":1}"#, "DPDK vdev"),
            (
                r#"{"op":"attach","name":"a","device":"net_null1","server":true,"mac":"52:54:00:00:00:01","segment":1}"#,
                "server mode",
            ),
            (
                r#"{"op":"attach","name":"a","device":"net_null1","mac":"52:54:00:00:00:01","segment":1,"extra_macs":[{"base":"ff:ff:ff:ff:ff:f0","count":1}]}"#,
                "extra MACs",
            ),
            (
                r#"{"op":"attach","name":"a","socket":"/s","mac":"52:54:00:00:00:01","segment":1,"ipv6":["2001:db8::1","ff02::1"]}"#,
                "ff02::1 is no VM address",
            ),
            (
                r#"{"op":"attach","name":"a","socket":"/s","mac":"52:54:00:00:00:01","segment":1,"ipv6":["::"]}"#,
                ":: is no VM address",
            ),
            (
                r#"{"op":"attach","name":"a","socket":"/s","mac":"52:54:00:00:00:01","segment":1,"ipv4":["255.255.255.255"]}"#,
                "255.255.255.255 is no VM address",
            ),
            (
                r#"{"op":"attach","name":"a","device":"net_null1","mac":"52:54:00:00:00:01","segment":1,"extra_macs":[{"base":"fe:ff:ff:ff:ff:ff","count":2}]}"#,
                "extra MACs",
            ),
        ] {
            let e = attach(bad).check().unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn segments_and_fixups_are_checked() {
        let s = Segment {
            segment: SegmentId::new(100).unwrap(),
            vlan: VlanId::new(100),
            mac: "00:00:5e:00:01:01".parse().unwrap(),
            gateway: None,
            subnets: vec!["10.1.1.0/24".into(), "2001:db8:1::/64".into()],
            arp_responder: false,
            native: false,
            vni: None,
        };
        assert_eq!(s.check().unwrap().subnets.len(), 2);
        assert_eq!(s.check().unwrap().encap, Encap::Vlan(VlanId::new(100).unwrap()));
        let seg = |json: &str| match serde_json::from_str::<Request>(json) {
            Ok(Request::SetAnycast(s)) => Ok(s),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let json = |segment: u32, vlan: u16| {
            format!(r#"{{"op":"set-anycast","segment":{segment},"vlan":{vlan},"mac":"00:00:5e:00:01:01"}}"#)
        };
        assert!(seg(&json(0, 100)).unwrap_err().contains("segment 0 is out of range"));
        assert!(seg(&json(1 << 24, 100)).unwrap_err().contains("segment 16777216 is out of range"));
        assert!(seg(&json(5_000_000, 100)).unwrap().check().is_ok(), "segment ids are 24 bits, VLAN ids 12");
        assert!(seg(&json(100, 4095)).unwrap_err().contains("VLAN 4095 is out of range"));
        assert_eq!(Segment { vlan: None, ..s.clone() }.check(), Err(Invalid::Encapsulation(100)));
        assert_eq!(Segment { native: true, ..s.clone() }.check(), Err(Invalid::Encapsulation(100)));
        assert_eq!(Segment { vlan: None, native: true, ..s.clone() }.check().unwrap().encap, Encap::Native);
        let vni = pipeline::Vni::new(5000);
        assert_eq!(Segment { vni, ..s.clone() }.check(), Err(Invalid::Encapsulation(100)));
        assert_eq!(Segment { vlan: None, vni, ..s.clone() }.check().unwrap().encap, Encap::Vxlan(vni.unwrap()));
        assert!(seg(r#"{"op":"set-anycast","segment":7,"vni":16777216,"mac":"00:00:5e:00:01:01"}"#)
            .unwrap_err()
            .contains("VNI 16777216 is out of range"));
        for bad in ["10.0.0.0/40", "2001:db8::/129", "2001:db8::"] {
            assert!(matches!(Segment { subnets: vec![bad.into()], ..s.clone() }.check(), Err(Invalid::Subnet(_))));
        }
        let f = ArpAnnounce { to: vec![], ip: "10.1.1.2".parse().unwrap(), mac: "00:00:5e:00:01:01".parse().unwrap() };
        assert_eq!(f.check(), Ok(MacAddr([0, 0, 0x5e, 0, 1, 1])));
        let multicast = "01:00:5e:00:00:01".parse().unwrap();
        assert!(matches!(ArpAnnounce { mac: multicast, ..f }.check(), Err(Invalid::Mac { .. })));
        let e = serde_json::from_str::<Request>(
            r#"{"op":"attach","name":"a","socket":"/s","mac":"52:54:00:00:00:zz","segment":1}"#,
        );
        assert!(e.unwrap_err().to_string().contains("is not a MAC address"));
    }
}
