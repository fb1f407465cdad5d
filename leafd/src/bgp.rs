//! Host routes in BGP, through GoBGP (Debian's `gobgpd`), over its gRPC API on the daemon's
//! unix socket: one connection for the whole run, each advertisement or withdrawal one
//! call (a fraction of a millisecond; the `gobgp` CLI took a process start per call), and
//! the best paths streamed by `WatchEvent`. GoBGP installs no kernel routes: leafd does,
//! from what that stream reports.
//!
//! IPv4 /32s go in the IPv4 unicast family with the leaf's IPv4 fabric address as next
//! hop, IPv6 /128s in the IPv6 unicast family (`MP_REACH_NLRI`) with its IPv6 one.
//!
//! What a host route carries (all inside BGP):
//! - community `65010:<host>`: the host (vswitchd) the address sits behind;
//! - community `65011:<seq>`: the mobility sequence number;
//! - local preference `100 + seq`: so that BGP's own best path is the newest location on
//!   every leaf (the leaves are one iBGP AS).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use crossbeam::channel::Sender;
use prost::Message;
use prost_types::Any;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::logic::{Input, Path};
use crate::vpn::{msg, Vrf};
use crate::Event;

pub const HOST_COMMUNITY: u16 = 65010;
pub const SEQ_COMMUNITY: u16 = 65011;
pub const BASE_LOCAL_PREF: u32 = 100;

/// The few messages of GoBGP's API (`apipb`, GoBGP 3.x) that leafd uses, with the field
/// numbers of its `gobgp.proto` and `attribute.proto`; fields leafd does not use are left
/// out (protobuf skips them when decoding).
pub mod api {
    use prost_types::Any;

    pub const AFI_IP: i32 = 1;
    pub const AFI_IP6: i32 = 2;
    pub const SAFI_UNICAST: i32 = 1;
    /// `TableType.GLOBAL`.
    pub const TABLE_GLOBAL: i32 = 0;
    /// `WatchEventRequest.Table.Filter.Type.BEST`.
    pub const FILTER_BEST: i32 = 0;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Family {
        #[prost(int32, tag = "1")]
        pub afi: i32,
        #[prost(int32, tag = "2")]
        pub safi: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Path {
        #[prost(message, optional, tag = "1")]
        pub nlri: Option<Any>,
        #[prost(message, repeated, tag = "2")]
        pub pattrs: Vec<Any>,
        #[prost(bool, tag = "5")]
        pub is_withdraw: bool,
        #[prost(message, optional, tag = "9")]
        pub family: Option<Family>,
        /// Empty for the daemon's own paths.
        #[prost(string, tag = "15")]
        pub neighbor_ip: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AddPathRequest {
        #[prost(int32, tag = "1")]
        pub table_type: i32,
        #[prost(message, optional, tag = "3")]
        pub path: Option<Path>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AddPathResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub uuid: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DeletePathRequest {
        #[prost(int32, tag = "1")]
        pub table_type: i32,
        #[prost(message, optional, tag = "3")]
        pub family: Option<Family>,
        #[prost(message, optional, tag = "4")]
        pub path: Option<Path>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WatchEventRequest {
        #[prost(message, optional, tag = "2")]
        pub table: Option<WatchTable>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WatchTable {
        #[prost(message, repeated, tag = "1")]
        pub filters: Vec<WatchFilter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WatchFilter {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// Send the current table first.
        #[prost(bool, tag = "2")]
        pub init: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WatchEventResponse {
        /// The `table` member of the `event` oneof (peer events, tag 2, are skipped).
        #[prost(message, optional, tag = "3")]
        pub table: Option<TableEvent>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TableEvent {
        #[prost(message, repeated, tag = "2")]
        pub paths: Vec<Path>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IpAddressPrefix {
        #[prost(uint32, tag = "1")]
        pub prefix_len: u32,
        #[prost(string, tag = "2")]
        pub prefix: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OriginAttribute {
        #[prost(uint32, tag = "1")]
        pub origin: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NextHopAttribute {
        #[prost(string, tag = "1")]
        pub next_hop: String,
    }

    /// How GoBGP carries the next hop of a family other than IPv4 unicast.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MpReachNlriAttribute {
        #[prost(message, optional, tag = "1")]
        pub family: Option<Family>,
        #[prost(string, repeated, tag = "2")]
        pub next_hops: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        pub nlris: Vec<Any>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LocalPrefAttribute {
        #[prost(uint32, tag = "1")]
        pub local_pref: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CommunitiesAttribute {
        #[prost(uint32, repeated, tag = "1")]
        pub communities: Vec<u32>,
    }

    /// The `Any` type URL of an `apipb` message.
    pub fn type_url(name: &str) -> String {
        format!("type.googleapis.com/apipb.{name}")
    }
}

/// An `apipb` message packed as `Any`.
pub(crate) fn any(name: &str, m: &impl Message) -> Any {
    Any { type_url: api::type_url(name), value: m.encode_to_vec() }
}

/// The unicast family of `ip`.
fn unicast(ip: IpAddr) -> Option<api::Family> {
    let afi = if ip.is_ipv4() { api::AFI_IP } else { api::AFI_IP6 };
    Some(api::Family { afi, safi: api::SAFI_UNICAST })
}

/// The path leafd originates for `ip/32` or `ip/128`.
pub fn host_path(ip: IpAddr, nexthop: IpAddr, host: u16, seq: u32) -> api::Path {
    let communities = vec![(HOST_COMMUNITY as u32) << 16 | host as u32, (SEQ_COMMUNITY as u32) << 16 | seq.min(65535)];
    let nlri = any(
        "IPAddressPrefix",
        &api::IpAddressPrefix { prefix_len: crate::host_len(ip).into(), prefix: ip.to_string() },
    );
    let next_hop = match ip {
        IpAddr::V4(_) => any("NextHopAttribute", &api::NextHopAttribute { next_hop: nexthop.to_string() }),
        IpAddr::V6(_) => any(
            "MpReachNLRIAttribute",
            &api::MpReachNlriAttribute {
                family: unicast(ip),
                next_hops: vec![nexthop.to_string()],
                nlris: vec![nlri.clone()],
            },
        ),
    };
    api::Path {
        nlri: Some(nlri),
        pattrs: vec![
            any("OriginAttribute", &api::OriginAttribute { origin: 0 }),
            next_hop,
            any("CommunitiesAttribute", &api::CommunitiesAttribute { communities }),
            any("LocalPrefAttribute", &api::LocalPrefAttribute { local_pref: BASE_LOCAL_PREF + seq }),
        ],
        family: unicast(ip),
        ..Default::default()
    }
}

/// Another leaf's /32 or /128 path, as leafd's state machine sees it: (address, path,
/// withdrawn). None for the daemon's own paths (no neighbour), other prefixes, and paths
/// without a host community.
pub fn peer_path(p: &api::Path) -> Option<(IpAddr, Path, bool)> {
    if p.neighbor_ip.is_empty() {
        return None;
    }
    let nlri = p.nlri.as_ref().filter(|a| a.type_url == api::type_url("IPAddressPrefix"))?;
    let prefix = api::IpAddressPrefix::decode(nlri.value.as_slice()).ok()?;
    let ip: IpAddr = prefix.prefix.parse().ok()?;
    if prefix.prefix_len != u32::from(crate::host_len(ip)) {
        return None;
    }
    let (mut nexthop, mut host, mut seq) = (None, None, 0);
    for a in &p.pattrs {
        if a.type_url == api::type_url("NextHopAttribute") {
            nexthop = api::NextHopAttribute::decode(a.value.as_slice()).ok().and_then(|n| n.next_hop.parse().ok());
        } else if a.type_url == api::type_url("MpReachNLRIAttribute") {
            let mp = api::MpReachNlriAttribute::decode(a.value.as_slice()).ok()?;
            nexthop = mp.next_hops.first().and_then(|n| n.parse().ok());
        } else if a.type_url == api::type_url("CommunitiesAttribute") {
            for c in api::CommunitiesAttribute::decode(a.value.as_slice()).ok()?.communities {
                match (c >> 16) as u16 {
                    HOST_COMMUNITY => host = Some((c & 0xffff) as u16),
                    SEQ_COMMUNITY => seq = c & 0xffff,
                    _ => {}
                }
            }
        }
    }
    Some((ip, Path { nexthop: nexthop?, host: host?, seq }, p.is_withdraw))
}

/// A GoBGP daemon's API (`unix:///PATH.sock`), with the runtime its calls run on. The
/// connection is made at the first call and again after the daemon restarts.
pub struct Gobgp {
    target: String,
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    /// The tenant's VRF, if leafd serves one (see `vpn`): its routes go there.
    vrf: Option<Vrf>,
}

/// How long one call may take.
const CALL: Duration = Duration::from_secs(5);

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the gRPC runtime")
}

fn channel(target: &str) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(target.to_string())
        .map_err(|e| anyhow!("GoBGP API address {target}: {e}"))?
        .connect_timeout(CALL);
    Ok(endpoint.connect_lazy())
}

impl Gobgp {
    pub fn new(target: &str, vrf: Option<Vrf>) -> Result<Gobgp> {
        let runtime = runtime()?;
        // The lazy channel's connector needs the runtime it will run on.
        let channel = {
            let _guard = runtime.enter();
            channel(target)?
        };
        Ok(Gobgp { target: target.to_string(), runtime, channel, vrf })
    }

    fn unary<Req, Resp>(&self, method: &'static str, req: Req) -> Result<Resp>
    where
        Req: Message + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let path = PathAndQuery::from_static(method);
        let call = async move {
            grpc.ready().await.map_err(|e| anyhow!("connecting: {e}"))?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            grpc.unary(tonic::Request::new(req), path, codec).await.map_err(|s| anyhow!("{}", s.message()))
        };
        self.runtime
            .block_on(async {
                tokio::time::timeout(CALL, call).await.unwrap_or_else(|_| Err(anyhow!("no answer in {CALL:?}")))
            })
            .map(tonic::Response::into_inner)
            .with_context(|| format!("GoBGP {method} at {}", self.target))
    }

    /// Creates the tenant's VRF (once GoBGP is up; an existing one is kept).
    pub fn ensure_vrf(&self) -> Result<()> {
        let Some(v) = &self.vrf else { return Ok(()) };
        match self.unary::<_, ()>("/apipb.GobgpApi/AddVrf", v.add_request()) {
            Err(e) if format!("{e:#}").contains("already exists") => Ok(()),
            r => r,
        }
    }

    /// Originates `ip/32` or `ip/128` (in the tenant's VRF, if any).
    pub fn advertise(&self, ip: IpAddr, nexthop: IpAddr, host: u16, seq: u32) -> Result<()> {
        let path = Some(host_path(ip, nexthop, host, seq));
        if let Some(v) = &self.vrf {
            let req = msg::AddPathRequest { table_type: msg::TABLE_VRF, vrf_id: v.name.clone(), path };
            return self.unary::<_, api::AddPathResponse>("/apipb.GobgpApi/AddPath", req).map(|_| ());
        }
        let req = api::AddPathRequest { table_type: api::TABLE_GLOBAL, path };
        self.unary::<_, api::AddPathResponse>("/apipb.GobgpApi/AddPath", req).map(|_| ())
    }

    /// Stops originating `ip/32` or `ip/128`.
    pub fn withdraw(&self, ip: IpAddr) -> Result<()> {
        let unspecified = match ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let mut path = host_path(ip, unspecified, 0, 0);
        path.is_withdraw = true;
        if let Some(v) = &self.vrf {
            let (vrf_id, family, path) = (v.name.clone(), unicast(ip), Some(path));
            let req = msg::DeletePathRequest { table_type: msg::TABLE_VRF, vrf_id, family, path };
            return self.unary::<_, ()>("/apipb.GobgpApi/DeletePath", req);
        }
        let req = api::DeletePathRequest { table_type: api::TABLE_GLOBAL, family: unicast(ip), path: Some(path) };
        self.unary::<_, ()>("/apipb.GobgpApi/DeletePath", req)
    }

    /// Streams other leaves' best /32 and /128 paths into `tx` (the current ones first), forever,
    /// on its own connection; watches again if the stream ends (gobgpd not up yet, or
    /// restarted).
    pub fn monitor(target: &str, vrf: Option<Vrf>, tx: Sender<Event>) {
        loop {
            match Gobgp::new(target, vrf.clone()).and_then(|g| g.watch(&tx)) {
                Ok(()) => return, // leafd is stopping: nobody reads the events
                Err(e) => tracing::warn!("GoBGP watch: {e:#}; watching again"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Returns Ok when `tx` is closed, an error when the stream fails or ends.
    fn watch(&self, tx: &Sender<Event>) -> Result<()> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let req = api::WatchEventRequest {
            table: Some(api::WatchTable { filters: vec![api::WatchFilter { r#type: api::FILTER_BEST, init: true }] }),
        };
        self.runtime.block_on(async move {
            grpc.ready().await.map_err(|e| anyhow!("connecting to {}: {e}", self.target))?;
            let codec = tonic_prost::ProstCodec::<api::WatchEventRequest, api::WatchEventResponse>::default();
            let path = PathAndQuery::from_static("/apipb.GobgpApi/WatchEvent");
            // No deadline: the stream lasts as long as leafd.
            let mut stream = grpc
                .server_streaming(tonic::Request::new(req), path, codec)
                .await
                .map_err(|s| anyhow!("WatchEvent: {}", s.message()))?
                .into_inner();
            while let Some(event) = stream.message().await.map_err(|s| anyhow!("WatchEvent: {}", s.message()))? {
                let at = SystemTime::now();
                let paths = event.table.iter().flat_map(|t| t.paths.iter());
                let ours = |p: &api::Path| match &self.vrf {
                    Some(v) => v.peer_path(p),
                    None => peer_path(p),
                };
                for (ip, path, withdrawn) in paths.filter_map(ours) {
                    let input = if withdrawn { Input::Withdrawn(ip, path) } else { Input::Best(ip, path) };
                    if tx.send(Event { input, at }).is_err() {
                        return Ok(());
                    }
                }
            }
            Err(anyhow!("the WatchEvent stream ended"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path as a peer's would arrive: ours, with a neighbour.
    fn from_peer(ip: &str, host: u16, seq: u32) -> api::Path {
        let ip: IpAddr = ip.parse().unwrap();
        let nexthop = if ip.is_ipv4() { "192.168.0.2" } else { "fd00::2" };
        let mut p = host_path(ip, nexthop.parse().unwrap(), host, seq);
        p.neighbor_ip = "192.168.0.2".into();
        p
    }

    #[test]
    fn host_paths_carry_host_and_sequence_and_come_back_as_peer_paths() {
        let p = host_path("10.1.1.1".parse().unwrap(), "192.168.0.1".parse().unwrap(), 2, 7);
        assert_eq!(p.pattrs.len(), 4);
        let communities = p.pattrs.iter().find(|a| a.type_url.ends_with(".CommunitiesAttribute")).unwrap();
        let c = api::CommunitiesAttribute::decode(communities.value.as_slice()).unwrap().communities;
        assert_eq!(c, vec![65010 << 16 | 2, 65011 << 16 | 7]);
        let lp = p.pattrs.iter().find(|a| a.type_url.ends_with(".LocalPrefAttribute")).unwrap();
        assert_eq!(api::LocalPrefAttribute::decode(lp.value.as_slice()).unwrap().local_pref, 107);
        // Through the wire and back.
        let wire = from_peer("10.1.1.1", 2, 1).encode_to_vec();
        let back = api::Path::decode(wire.as_slice()).unwrap();
        assert_eq!(
            peer_path(&back),
            Some((
                "10.1.1.1".parse().unwrap(),
                Path { nexthop: "192.168.0.2".parse().unwrap(), host: 2, seq: 1 },
                false
            ))
        );
        let mut withdrawn = back.clone();
        withdrawn.is_withdraw = true;
        assert!(peer_path(&withdrawn).unwrap().2);
        // A /128 in the IPv6 family, its next hop in MP_REACH_NLRI.
        let v6 = host_path("2001:db8::1".parse().unwrap(), "fd00::1".parse().unwrap(), 2, 3);
        assert_eq!(v6.family, Some(api::Family { afi: api::AFI_IP6, safi: api::SAFI_UNICAST }));
        let mp = v6.pattrs.iter().find(|a| a.type_url.ends_with(".MpReachNLRIAttribute")).unwrap();
        let mp = api::MpReachNlriAttribute::decode(mp.value.as_slice()).unwrap();
        assert_eq!((mp.next_hops, mp.nlris.len()), (vec!["fd00::1".to_string()], 1));
        let back = api::Path::decode(from_peer("2001:db8::1", 2, 3).encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            peer_path(&back),
            Some((
                "2001:db8::1".parse().unwrap(),
                Path { nexthop: "fd00::2".parse().unwrap(), host: 2, seq: 3 },
                false
            ))
        );
    }

    #[test]
    fn own_paths_other_prefixes_and_paths_without_a_host_are_not_peer_paths() {
        let own = host_path("10.1.1.1".parse().unwrap(), "192.168.0.1".parse().unwrap(), 1, 0);
        assert_eq!(peer_path(&own), None);
        let mut wide = from_peer("10.1.1.0", 2, 0);
        wide.nlri = Some(any("IPAddressPrefix", &api::IpAddressPrefix { prefix_len: 24, prefix: "10.1.1.0".into() }));
        assert_eq!(peer_path(&wide), None);
        let mut no_host = from_peer("10.1.1.1", 2, 0);
        no_host.pattrs.retain(|a| !a.type_url.ends_with(".CommunitiesAttribute"));
        assert_eq!(peer_path(&no_host), None);
        let mut v6_32 = from_peer("2001:db8::1", 2, 0);
        v6_32.nlri =
            Some(any("IPAddressPrefix", &api::IpAddressPrefix { prefix_len: 32, prefix: "2001:db8::1".into() }));
        assert_eq!(peer_path(&v6_32), None, "an IPv6 /32 is no host route");
    }
}
