//! A tenant's host routes as BGP/MPLS IP VPN routes (RFC 4364), as the Virtual Subnet
//! design signals them: one leafd per tenant, in the tenant's own network namespace, puts
//! its /32s and /128s into the tenant's VRF in the leaf's one GoBGP. GoBGP gives them the
//! VRF's route distinguisher and export route target and carries them in the VPN families
//! (`l3vpn-ipv4-unicast`, `l3vpn-ipv6-unicast`); every other leaf's leafd for the tenant
//! takes the best VPN paths that carry the tenant's route target. The host and sequence
//! communities and the local preference travel as they do without VRFs.

use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use prost::Message;
use prost_types::Any;
use serde::Deserialize;

use crate::bgp::{any, api};
use crate::logic::Path;

/// A tenant's VRF: its name in GoBGP, route distinguisher and route target (both
/// `ASN:NUMBER`, two-octet ASN).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrfConfig {
    pub name: String,
    pub rd: String,
    pub rt: String,
}

/// `ASN:NUMBER` with a two-octet ASN.
fn two_octet(what: &str, s: &str) -> Result<(u32, u32)> {
    let (asn, n) = s.split_once(':').with_context(|| format!("{what} {s:?}: expected ASN:NUMBER"))?;
    let asn: u16 = asn.parse().with_context(|| format!("{what} {s:?}: the ASN must be 1..=65535"))?;
    let n: u32 = n.parse().with_context(|| format!("{what} {s:?}: the number must be a 32-bit integer"))?;
    if asn == 0 {
        bail!("{what} {s:?}: the ASN must be 1..=65535");
    }
    Ok((asn.into(), n))
}

/// The checked VRF: what leafd puts into GoBGP and filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vrf {
    pub name: String,
    pub rd: (u32, u32),
    pub rt: (u32, u32),
}

impl VrfConfig {
    pub fn check(&self) -> Result<Vrf> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("vrf name {:?}: letters, digits, - and _ only", self.name);
        }
        Ok(Vrf { name: self.name.clone(), rd: two_octet("rd", &self.rd)?, rt: two_octet("rt", &self.rt)? })
    }
}

/// GoBGP's messages for VRFs and VPN routes (`gobgp.proto`, `attribute.proto` of 3.10).
pub mod msg {
    use prost_types::Any;

    /// `TableType.VRF`.
    pub const TABLE_VRF: i32 = 4;
    /// `Family.Safi.SAFI_MPLS_VPN`.
    pub const SAFI_MPLS_VPN: i32 = 128;
    /// The route-target sub-type of a two-octet-AS-specific extended community.
    pub const SUBTYPE_ROUTE_TARGET: u32 = 2;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Vrf {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub rd: Option<Any>,
        #[prost(message, repeated, tag = "3")]
        pub import_rt: Vec<Any>,
        #[prost(message, repeated, tag = "4")]
        pub export_rt: Vec<Any>,
        #[prost(uint32, tag = "5")]
        pub id: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AddVrfRequest {
        #[prost(message, optional, tag = "1")]
        pub vrf: Option<Vrf>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RouteDistinguisherTwoOctetAsn {
        #[prost(uint32, tag = "1")]
        pub admin: u32,
        #[prost(uint32, tag = "2")]
        pub assigned: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TwoOctetAsSpecificExtended {
        #[prost(bool, tag = "1")]
        pub is_transitive: bool,
        #[prost(uint32, tag = "2")]
        pub sub_type: u32,
        #[prost(uint32, tag = "3")]
        pub asn: u32,
        #[prost(uint32, tag = "4")]
        pub local_admin: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExtendedCommunitiesAttribute {
        #[prost(message, repeated, tag = "1")]
        pub communities: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabeledVpnIpAddressPrefix {
        #[prost(uint32, repeated, tag = "1")]
        pub labels: Vec<u32>,
        #[prost(message, optional, tag = "2")]
        pub rd: Option<Any>,
        #[prost(uint32, tag = "3")]
        pub prefix_len: u32,
        #[prost(string, tag = "4")]
        pub prefix: String,
    }

    /// `AddPathRequest` with its VRF (`vrf_id`, tag 2).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AddPathRequest {
        #[prost(int32, tag = "1")]
        pub table_type: i32,
        #[prost(string, tag = "2")]
        pub vrf_id: String,
        #[prost(message, optional, tag = "3")]
        pub path: Option<super::api::Path>,
    }

    /// `DeletePathRequest` with its VRF.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DeletePathRequest {
        #[prost(int32, tag = "1")]
        pub table_type: i32,
        #[prost(string, tag = "2")]
        pub vrf_id: String,
        #[prost(message, optional, tag = "3")]
        pub family: Option<super::api::Family>,
        #[prost(message, optional, tag = "4")]
        pub path: Option<super::api::Path>,
    }
}

fn route_target((asn, n): (u32, u32)) -> Any {
    let rt = msg::TwoOctetAsSpecificExtended {
        is_transitive: true,
        sub_type: msg::SUBTYPE_ROUTE_TARGET,
        asn,
        local_admin: n,
    };
    any("TwoOctetAsSpecificExtended", &rt)
}

impl Vrf {
    /// GoBGP's `AddVrf` request: the tenant's RD, its RT imported and exported.
    pub fn add_request(&self) -> msg::AddVrfRequest {
        let rd = msg::RouteDistinguisherTwoOctetAsn { admin: self.rd.0, assigned: self.rd.1 };
        msg::AddVrfRequest {
            vrf: Some(msg::Vrf {
                name: self.name.clone(),
                rd: Some(any("RouteDistinguisherTwoOctetASN", &rd)),
                import_rt: vec![route_target(self.rt)],
                export_rt: vec![route_target(self.rt)],
                id: 0,
            }),
        }
    }

    /// Whether a path carries this tenant's route target.
    fn carries_rt(&self, p: &api::Path) -> bool {
        p.pattrs.iter().filter(|a| a.type_url == api::type_url("ExtendedCommunitiesAttribute")).any(|a| {
            let Ok(ext) = msg::ExtendedCommunitiesAttribute::decode(a.value.as_slice()) else { return false };
            ext.communities.iter().filter(|c| c.type_url == api::type_url("TwoOctetAsSpecificExtended")).any(|c| {
                msg::TwoOctetAsSpecificExtended::decode(c.value.as_slice())
                    .is_ok_and(|rt| rt.sub_type == msg::SUBTYPE_ROUTE_TARGET && (rt.asn, rt.local_admin) == self.rt)
            })
        })
    }

    /// Another leaf's VPN host path for this tenant, as leafd's state machine sees it
    /// (see [`crate::bgp::peer_path`]); None for other tenants' paths and anything that is
    /// no peer's host route.
    pub fn peer_path(&self, p: &api::Path) -> Option<(IpAddr, Path, bool)> {
        if p.family.as_ref().is_some_and(|f| f.safi != msg::SAFI_MPLS_VPN) || !self.carries_rt(p) {
            return None;
        }
        let nlri = p.nlri.as_ref().filter(|a| a.type_url == api::type_url("LabeledVPNIPAddressPrefix"))?;
        let vpn = msg::LabeledVpnIpAddressPrefix::decode(nlri.value.as_slice()).ok()?;
        // The same path with the plain prefix: the rest is read as for a unicast path.
        let plain = api::IpAddressPrefix { prefix_len: vpn.prefix_len, prefix: vpn.prefix };
        let unicast = api::Path { nlri: Some(any("IPAddressPrefix", &plain)), ..p.clone() };
        crate::bgp::peer_path(&unicast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrf() -> Vrf {
        VrfConfig { name: "t2".into(), rd: "65000:5001".into(), rt: "65000:5001".into() }.check().unwrap()
    }

    /// A peer's VPN path for `ip` with these route targets, as GoBGP would stream it.
    fn vpn_path(ip: &str, rts: &[(u32, u32)]) -> api::Path {
        let ip: IpAddr = ip.parse().unwrap();
        let mut p = crate::bgp::host_path(ip, "192.168.0.2".parse().unwrap(), 2, 5);
        let rd = msg::RouteDistinguisherTwoOctetAsn { admin: 65000, assigned: 5001 };
        let prefix = msg::LabeledVpnIpAddressPrefix {
            labels: vec![0],
            rd: Some(any("RouteDistinguisherTwoOctetASN", &rd)),
            prefix_len: crate::host_len(ip).into(),
            prefix: ip.to_string(),
        };
        p.nlri = Some(any("LabeledVPNIPAddressPrefix", &prefix));
        p.family =
            Some(api::Family { afi: if ip.is_ipv4() { api::AFI_IP } else { api::AFI_IP6 }, safi: msg::SAFI_MPLS_VPN });
        let ext = msg::ExtendedCommunitiesAttribute { communities: rts.iter().map(|rt| route_target(*rt)).collect() };
        p.pattrs.push(any("ExtendedCommunitiesAttribute", &ext));
        p.neighbor_ip = "192.168.0.2".into();
        api::Path::decode(p.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn a_tenants_vpn_paths_are_its_host_routes_and_other_tenants_are_not() {
        let v = vrf();
        let want = Some((
            "10.1.1.1".parse().unwrap(),
            Path { nexthop: "192.168.0.2".parse().unwrap(), host: 2, seq: 5 },
            false,
        ));
        assert_eq!(v.peer_path(&vpn_path("10.1.1.1", &[(65000, 5001)])), want);
        assert_eq!(v.peer_path(&vpn_path("10.1.1.1", &[(65000, 5000)])), None, "tenant 1's route");
        assert_eq!(v.peer_path(&vpn_path("10.1.1.1", &[])), None, "no route target");
        assert!(v.peer_path(&vpn_path("2001:db8:1::1", &[(65000, 5000), (65000, 5001)])).is_some());
        // A unicast path is no VPN path, whatever it carries.
        let mut unicast = vpn_path("10.1.1.1", &[(65000, 5001)]);
        unicast.family = Some(api::Family { afi: api::AFI_IP, safi: api::SAFI_UNICAST });
        assert_eq!(v.peer_path(&unicast), None);
    }

    #[test]
    fn the_vrf_request_carries_rd_and_rt_and_bad_values_are_refused() {
        let r = vrf().add_request().vrf.unwrap();
        let rd = msg::RouteDistinguisherTwoOctetAsn::decode(r.rd.unwrap().value.as_slice()).unwrap();
        assert_eq!((rd.admin, rd.assigned), (65000, 5001));
        let rt = msg::TwoOctetAsSpecificExtended::decode(r.export_rt[0].value.as_slice()).unwrap();
        assert_eq!((rt.sub_type, rt.asn, rt.local_admin, rt.is_transitive), (2, 65000, 5001, true));
        assert_eq!(r.import_rt, r.export_rt);
        for (name, rd, rt, why) in [
            ("t 2", "65000:1", "65000:1", "name"),
            ("t2", "65000", "65000:1", "ASN:NUMBER"),
            ("t2", "70000:1", "65000:1", "1..=65535"),
            ("t2", "65000:1", "0:1", "1..=65535"),
        ] {
            let c = VrfConfig { name: name.into(), rd: rd.into(), rt: rt.into() };
            let e = format!("{:#}", c.check().unwrap_err());
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
