//! What the data path needs to know about ports and segments: built by the control plane,
//! read by workers as an immutable snapshot (`Arc<SwitchConfig>`) swapped between bursts.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ids::{SegmentSlot, VlanId, Vni};
#[cfg(feature = "table")]
use crate::table::{key, value, EntryKind, Key, Value};
use crate::wire::mac::MacAddr;
use hashbrown::HashMap;

use crate::encap::{Decap, Encap, Wrap};
use crate::vxlan::{Underlay, VxlanTx, MIN_MTU};

pub use crate::net::{IpNet, Ipv4Net, Ipv6Net};

/// A port's index in the switch (dense, chosen by the control plane).
pub use crate::ids::PortId;

/// A VM's virtual NIC on a switch port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnicConfig {
    pub mac: MacAddr,
    pub segment: SegmentSlot,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// Drop frames whose source MAC, ARP sender or NA target is not this vNIC's.
    pub port_security: bool,
    /// The VM is not here (not yet up, its vhost connection closed, or its link down
    /// longer than the switch's hold): unicast for it from local VMs goes to the leaf, as
    /// for an unknown MAC; floods leave it out; the ARP responder answers for its
    /// addresses with the anycast MAC. Frames for it from the uplink still go to its port,
    /// which holds them (never back up: nothing can loop).
    pub away: bool,
}

impl VnicConfig {
    /// A vNIC with port security on (the default).
    pub fn new(mac: MacAddr, segment: SegmentSlot) -> VnicConfig {
        VnicConfig { mac, segment, ipv4: Vec::new(), ipv6: Vec::new(), port_security: true, away: false }
    }
}

/// What a port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRole {
    Vnic(VnicConfig),
    /// The trunk to the leaf: every segment, 802.1Q-tagged with the segment's VLAN.
    Uplink,
}

/// A bridge domain: the VMs of one subnet on this host, and how it is carried on the uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Its encapsulation on the uplink (one segment per encapsulation).
    pub encap: Encap,
    /// The fabric's anycast gateway MAC for this segment: unknown unicast is rewritten to
    /// it, and it is in the MAC table, pointing at the uplink.
    pub anycast: MacAddr,
    /// The segment's subnets (IPv4 and IPv6), for the local responder.
    pub subnets: Vec<IpNet>,
    /// Answer local VMs' ARP requests and neighbor solicitations on the host (off by
    /// default).
    pub arp_responder: bool,
}

impl SegmentConfig {
    pub fn new(encap: Encap, anycast: MacAddr) -> SegmentConfig {
        SegmentConfig { encap, anycast, subnets: Vec::new(), arp_responder: false }
    }
}

/// Why a configuration change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("segment slot {0} is already the native (untagged) segment")]
    NativeInUse(SegmentSlot),
    #[error("VLAN {vlan} is already used by segment slot {slot}")]
    VlanInUse { vlan: VlanId, slot: SegmentSlot },
    #[error("VNI {vni} is already used by segment slot {slot}")]
    VniInUse { vni: Vni, slot: SegmentSlot },
    #[error("a VXLAN segment needs the uplink's underlay (a local VTEP and the leaf's) first")]
    NoUnderlay,
    #[error("the underlay still carries VXLAN segment slot {0}")]
    UnderlayInUse(SegmentSlot),
    #[error("bad underlay: {0}")]
    BadUnderlay(String),
    #[error("segment slot {0} is not configured")]
    NoSegment(SegmentSlot),
    #[error("a segment's anycast MAC must be unicast")]
    BadAnycast,
    #[error("MAC {0} is not a valid vNIC MAC (multicast or zero)")]
    BadMac(MacAddr),
    #[error("MAC {mac} is already on port {port} in this segment")]
    MacInUse { mac: MacAddr, port: PortId },
    #[error("port {0} is already configured")]
    PortInUse(PortId),
    #[error("port {0} is not configured")]
    NoPort(PortId),
    #[error("port {0} is no VM port")]
    NotVnic(PortId),
    #[error("an uplink is already configured (port {0})")]
    UplinkInUse(PortId),
    #[error("prefix length {len} is over {max}")]
    BadPrefix { len: u8, max: u8 },
    #[error("`{0}` is not an IP prefix like 10.1.1.0/24 or 2001:db8:1::/64")]
    BadNet(String),
}

/// The switch as the data path sees it. Derived lookup tables are rebuilt on every change
/// (changes are rare; lookups are per frame).
#[derive(Debug, Clone, Default)]
pub struct SwitchConfig {
    ports: Vec<Option<PortRole>>,
    segments: Vec<Option<SegmentConfig>>,
    uplink: Option<PortId>,
    underlay: Option<Underlay>,
    // Derived:
    decap: Decap,
    vxlan_tx: VxlanTx,
    members: Vec<Vec<PortId>>,
    local_ipv4: HashMap<(SegmentSlot, Ipv4Addr), MacAddr>,
    local_ipv6: HashMap<(SegmentSlot, Ipv6Addr), MacAddr>,
    nd_targets: Vec<Vec<Ipv6Addr>>,
}

impl SwitchConfig {
    pub fn new() -> SwitchConfig {
        let mut c = SwitchConfig::default();
        c.rebuild();
        c
    }

    /// Adds or replaces a segment.
    pub fn set_segment(&mut self, slot: SegmentSlot, seg: SegmentConfig) -> Result<(), ConfigError> {
        if seg.anycast.is_multicast() || seg.anycast == MacAddr::ZERO {
            return Err(ConfigError::BadAnycast);
        }
        if matches!(seg.encap, Encap::Vxlan(_)) && self.underlay.is_none() {
            return Err(ConfigError::NoUnderlay);
        }
        if let Some(other) = self.decap.segment_of(seg.encap).filter(|s| *s != slot) {
            return Err(match seg.encap {
                Encap::Native => ConfigError::NativeInUse(other),
                Encap::Vlan(vlan) => ConfigError::VlanInUse { vlan, slot: other },
                Encap::Vxlan(vni) => ConfigError::VniInUse { vni, slot: other },
            });
        }
        let i = slot.index();
        if i >= self.segments.len() {
            self.segments.resize(i + 1, None);
        }
        self.segments[i] = Some(seg);
        self.rebuild();
        Ok(())
    }

    /// Sets (or, with `None`, removes) the uplink's VXLAN underlay: this host's VTEP and the
    /// leaf's. Removing it is refused while a VXLAN segment uses it.
    pub fn set_underlay(&mut self, underlay: Option<Underlay>) -> Result<(), ConfigError> {
        let bad = |why: &str| Err(ConfigError::BadUnderlay(why.to_string()));
        match &underlay {
            None => {
                if let Some((slot, _)) = self.segments().find(|(_, s)| matches!(s.encap, Encap::Vxlan(_))) {
                    return Err(ConfigError::UnderlayInUse(slot));
                }
            }
            Some(u) => {
                let unicast = |ip: std::net::Ipv4Addr| !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast());
                if !unicast(u.ip) {
                    return bad("the local VTEP address must be a unicast address");
                }
                if u.mac.is_multicast() || u.mac == MacAddr::ZERO {
                    return bad("the local VTEP MAC must be unicast");
                }
                if u.remotes.is_empty() {
                    return bad("at least one leaf VTEP is needed");
                }
                if let Some(r) = u.remotes.iter().find(|r| !unicast(r.ip) || r.ip == u.ip) {
                    return bad(&format!("leaf VTEP {} is not a unicast address apart from the local one", r.ip));
                }
                if u.remotes.iter().any(|r| r.mac.is_some_and(|m| m.is_multicast() || m == MacAddr::ZERO)) {
                    return bad("a leaf VTEP's MAC must be unicast");
                }
                if u.mtu < MIN_MTU {
                    return bad(&format!("the underlay MTU must be at least {MIN_MTU}"));
                }
            }
        }
        self.underlay = underlay;
        self.rebuild();
        Ok(())
    }

    /// The uplink's VXLAN underlay, if any.
    pub fn underlay(&self) -> Option<&Underlay> {
        self.underlay.as_ref()
    }

    /// A segment's encapsulation, ready to write.
    #[inline]
    pub fn wrap(&self, encap: Encap) -> Wrap<'_> {
        Wrap { encap, vxlan: &self.vxlan_tx }
    }

    /// Configures port `id`.
    pub fn set_port(&mut self, id: PortId, role: PortRole) -> Result<(), ConfigError> {
        if self.port(id).is_some() {
            return Err(ConfigError::PortInUse(id));
        }
        match &role {
            PortRole::Uplink => {
                if let Some(u) = self.uplink {
                    return Err(ConfigError::UplinkInUse(u));
                }
            }
            PortRole::Vnic(v) => {
                if v.mac.is_multicast() || v.mac == MacAddr::ZERO {
                    return Err(ConfigError::BadMac(v.mac));
                }
                if self.segment(v.segment).is_none() {
                    return Err(ConfigError::NoSegment(v.segment));
                }
                for (p, other) in self.vnics() {
                    if other.segment == v.segment && other.mac == v.mac {
                        return Err(ConfigError::MacInUse { mac: v.mac, port: p });
                    }
                }
            }
        }
        let i = id.index();
        if i >= self.ports.len() {
            self.ports.resize(i + 1, None);
        }
        self.ports[i] = Some(role);
        self.rebuild();
        Ok(())
    }

    /// Unconfigures port `id`.
    /// Marks a vNIC away (or here again); returns whether that changed anything.
    pub fn set_away(&mut self, id: PortId, away: bool) -> Result<bool, ConfigError> {
        let Some(Some(PortRole::Vnic(v))) = self.ports.get_mut(id.index()) else {
            return Err(ConfigError::NotVnic(id));
        };
        if v.away == away {
            return Ok(false);
        }
        v.away = away;
        self.rebuild();
        Ok(true)
    }

    pub fn remove_port(&mut self, id: PortId) -> Result<PortRole, ConfigError> {
        let role = self.ports.get_mut(id.index()).and_then(Option::take).ok_or(ConfigError::NoPort(id))?;
        self.rebuild();
        Ok(role)
    }

    fn rebuild(&mut self) {
        self.uplink = self.ports.iter().position(|p| matches!(p, Some(PortRole::Uplink))).map(|p| PortId(p as u16));
        self.decap = Decap::new(self.segments().map(|(slot, s)| (slot, s.encap)), self.underlay.as_ref());
        self.vxlan_tx = self.underlay.as_ref().map(VxlanTx::new).unwrap_or_default();
        self.members = vec![Vec::new(); self.segments.len()];
        self.local_ipv4.clear();
        self.local_ipv6.clear();
        self.nd_targets = vec![Vec::new(); self.ports.len()];
        for (id, port) in self.ports.iter().enumerate() {
            let Some(PortRole::Vnic(v)) = port else { continue };
            if !v.away {
                self.members[v.segment.index()].push(PortId(id as u16));
                for ip in &v.ipv4 {
                    self.local_ipv4.insert((v.segment, *ip), v.mac);
                }
                for ip in &v.ipv6 {
                    self.local_ipv6.insert((v.segment, *ip), v.mac);
                }
            }
            let mut targets = v.ipv6.clone();
            targets.push(eui64_link_local(v.mac));
            self.nd_targets[id] = targets;
        }
    }

    /// The highest port id that has ever been configured (0 when none).
    #[inline]
    pub fn max_port(&self) -> PortId {
        PortId(self.ports.len().saturating_sub(1) as u16)
    }

    pub fn port(&self, id: PortId) -> Option<&PortRole> {
        self.ports.get(id.index()).and_then(Option::as_ref)
    }

    /// The vNIC on port `id`, if that port is one.
    #[inline]
    pub fn vnic(&self, id: PortId) -> Option<&VnicConfig> {
        match self.port(id) {
            Some(PortRole::Vnic(v)) => Some(v),
            _ => None,
        }
    }

    pub fn vnics(&self) -> impl Iterator<Item = (PortId, &VnicConfig)> {
        self.ports.iter().enumerate().filter_map(|(i, p)| match p {
            Some(PortRole::Vnic(v)) => Some((PortId(i as u16), v)),
            _ => None,
        })
    }

    #[inline]
    pub fn uplink(&self) -> Option<PortId> {
        self.uplink
    }

    #[inline]
    pub fn segment(&self, slot: SegmentSlot) -> Option<&SegmentConfig> {
        self.segments.get(slot.index()).and_then(Option::as_ref)
    }

    pub fn segments(&self) -> impl Iterator<Item = (SegmentSlot, &SegmentConfig)> {
        self.segments.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (SegmentSlot(i as u16), s)))
    }

    /// The uplink's demultiplexer (which segment an uplink frame belongs to).
    #[inline]
    pub fn decap(&self) -> &Decap {
        &self.decap
    }

    /// The vNIC ports of a segment.
    #[inline]
    pub fn members(&self, slot: SegmentSlot) -> &[PortId] {
        self.members.get(slot.index()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The MAC of a local VM with this IPv4 address in this segment.
    pub fn local_ipv4_mac(&self, slot: SegmentSlot, ip: Ipv4Addr) -> Option<MacAddr> {
        self.local_ipv4.get(&(slot, ip)).copied()
    }

    /// The MAC of a local VM with this IPv6 address in this segment.
    pub fn local_ipv6_mac(&self, slot: SegmentSlot, ip: Ipv6Addr) -> Option<MacAddr> {
        self.local_ipv6.get(&(slot, ip)).copied()
    }

    /// IPv6 addresses a vNIC may advertise (its own, plus its EUI-64 link-local).
    pub fn nd_targets(&self, id: PortId) -> &[Ipv6Addr] {
        self.nd_targets.get(id.index()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every entry the MAC table should hold for this configuration: each vNIC's MAC in
    /// its segment, and each segment's anycast MAC pointing at the uplink.
    #[cfg(feature = "table")]
    pub fn table_entries(&self) -> Vec<(Key, Value)> {
        let mut out: Vec<(Key, Value)> =
            self.vnics().map(|(p, v)| (key(v.mac, v.segment), value(p, EntryKind::Local))).collect();
        if let Some(up) = self.uplink {
            out.extend(self.segments().map(|(slot, seg)| (key(seg.anycast, slot), value(up, EntryKind::Anycast))));
        }
        out
    }
}

/// The link-local address Linux derives from a MAC (modified EUI-64).
pub fn eui64_link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(b: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, b])
    }

    fn vlan(id: u16) -> Encap {
        Encap::Vlan(VlanId::new(id).unwrap())
    }

    #[test]
    #[cfg(feature = "table")]
    fn builds_members_vlans_and_table_entries() {
        let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
        let mut c = SwitchConfig::new();
        c.set_segment(SegmentSlot(0), SegmentConfig::new(vlan(100), gw)).unwrap();
        c.set_port(PortId(0), PortRole::Uplink).unwrap();
        c.set_port(
            PortId(1),
            PortRole::Vnic(VnicConfig {
                ipv4: vec![Ipv4Addr::new(10, 1, 1, 1)],
                ..VnicConfig::new(mac(1), SegmentSlot(0))
            }),
        )
        .unwrap();
        c.set_port(PortId(2), PortRole::Vnic(VnicConfig::new(mac(2), SegmentSlot(0)))).unwrap();
        assert_eq!(c.members(SegmentSlot(0)), &[PortId(1), PortId(2)]);
        assert_eq!((c.decap().segment_of(vlan(100)), c.decap().segment_of(vlan(101))), (Some(SegmentSlot(0)), None));
        assert_eq!(c.local_ipv4_mac(SegmentSlot(0), Ipv4Addr::new(10, 1, 1, 1)), Some(mac(1)));
        assert_eq!(c.nd_targets(PortId(1)), &["fe80::5054:ff:fe00:1".parse::<Ipv6Addr>().unwrap()]);
        let e = c.table_entries();
        assert_eq!(e.len(), 3);
        assert!(e.contains(&(key(gw, SegmentSlot(0)), value(PortId(0), EntryKind::Anycast))));
        // An away VM is no flood target and no local address; back, it is both again.
        assert_eq!(c.set_away(PortId(1), true), Ok(true));
        assert_eq!(c.set_away(PortId(1), true), Ok(false));
        assert!(c.vnic(PortId(1)).is_some_and(|v| v.away));
        assert_eq!(c.members(SegmentSlot(0)), &[PortId(2)]);
        assert_eq!(c.local_ipv4_mac(SegmentSlot(0), Ipv4Addr::new(10, 1, 1, 1)), None);
        assert_eq!(c.set_away(PortId(1), false), Ok(true));
        assert_eq!(c.local_ipv4_mac(SegmentSlot(0), Ipv4Addr::new(10, 1, 1, 1)), Some(mac(1)));
        assert_eq!(
            (c.set_away(PortId(0), true), c.set_away(PortId(9), true)),
            (Err(ConfigError::NotVnic(PortId(0))), Err(ConfigError::NotVnic(PortId(9))))
        );
        c.remove_port(PortId(2)).unwrap();
        assert_eq!(c.members(SegmentSlot(0)), &[PortId(1)]);
    }

    #[test]
    fn refuses_bad_changes() {
        let gw = MacAddr([0, 0, 0x5e, 0, 1, 1]);
        let mut c = SwitchConfig::new();
        assert_eq!(
            c.set_segment(SegmentSlot(0), SegmentConfig::new(vlan(10), MacAddr::BROADCAST)),
            Err(ConfigError::BadAnycast)
        );
        c.set_segment(SegmentSlot(0), SegmentConfig::new(vlan(10), gw)).unwrap();
        assert_eq!(
            c.set_segment(SegmentSlot(1), SegmentConfig::new(vlan(10), gw)),
            Err(ConfigError::VlanInUse { vlan: VlanId::new(10).unwrap(), slot: SegmentSlot(0) })
        );
        assert_eq!(
            c.set_port(PortId(1), PortRole::Vnic(VnicConfig::new(mac(1), SegmentSlot(7)))),
            Err(ConfigError::NoSegment(SegmentSlot(7)))
        );
        assert_eq!(
            c.set_port(PortId(1), PortRole::Vnic(VnicConfig::new(MacAddr::BROADCAST, SegmentSlot(0)))),
            Err(ConfigError::BadMac(MacAddr::BROADCAST))
        );
        c.set_port(PortId(1), PortRole::Vnic(VnicConfig::new(mac(1), SegmentSlot(0)))).unwrap();
        assert_eq!(c.set_port(PortId(1), PortRole::Uplink), Err(ConfigError::PortInUse(PortId(1))));
        assert_eq!(
            c.set_port(PortId(2), PortRole::Vnic(VnicConfig::new(mac(1), SegmentSlot(0)))),
            Err(ConfigError::MacInUse { mac: mac(1), port: PortId(1) })
        );
        c.set_port(PortId(3), PortRole::Uplink).unwrap();
        assert_eq!(c.set_port(PortId(4), PortRole::Uplink), Err(ConfigError::UplinkInUse(PortId(3))));
        assert_eq!(c.remove_port(PortId(9)), Err(ConfigError::NoPort(PortId(9))));
        let net: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(Ipv4Addr::new(10, 1, 200, 3)) && !net.contains(Ipv4Addr::new(10, 2, 0, 1)));
    }
}
