//! vswitchd's control API: newline-delimited JSON over a unix socket. A client writes one
//! request per line and reads one response per line; `events` turns the connection into a
//! stream of event lines. A client may open with `hello` to learn the protocol version
//! ([`PROTOCOL_VERSION`]; [`Client::connect`] does and refuses another). Every answer is
//! typed ([`views`]); every refusal carries a stable [`ErrorCode`] and a message. This
//! crate needs no DPDK: vsctl, leafd, the harnesses and the fuzzer use it as vswitchd does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod check;
pub mod client;
pub mod metrics;
pub mod views;
pub use check::{CheckedAttach, CheckedSegment, Invalid, PortSpec};
pub use client::{Client, ClientError, Events};
/// The data path's types the protocol carries, so that a client needs only this crate.
pub use pipeline::{DropReason, MacAddr, PortId, SegmentId, VlanId, Vni};
pub use views::PortTx;

/// The protocol version `hello` reports. It changes when a request, a view or an event
/// changes incompatibly (an added optional field is compatible).
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Decodes one request line (without its newline).
pub fn decode(line: &[u8]) -> Result<Request, ApiError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::new(ErrorCode::BadRequest, format!("request longer than {MAX_REQUEST_BYTES} bytes")));
    }
    serde_json::from_slice::<Request>(line)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("bad request: {e}")))
}

/// Why a request was refused, as a stable code (for programs) beside the message (for
/// people, which may change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Not a request: bad JSON, an unknown op or field, a value of the wrong type or range,
    /// a line too long.
    BadRequest,
    /// A well-formed request with a value the switch refuses on its own (a multicast MAC,
    /// a bad subnet, a VM name with a space).
    Invalid,
    /// It names a VM, segment, worker or failed attachment vswitchd does not have.
    NotFound,
    /// It conflicts with what exists: a name or MAC already attached, a socket in use.
    Conflict,
    /// The request needs something that is off (debug requests without `--debug-api`).
    Disabled,
    /// The client speaks another protocol version.
    Version,
    /// The switch tried and failed (DPDK refused a device, a worker did not answer, the
    /// state file could not be written); nothing was changed.
    Failed,
}

impl ErrorCode {
    /// The code as it is on the wire (`not-found`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Disabled => "disabled",
            ErrorCode::Version => "version",
            ErrorCode::Failed => "failed",
        }
    }
}

/// A refusal: code and message. vswitchd's handlers return these (or any other error,
/// which is answered as [`ErrorCode::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::new(ErrorCode::Invalid, e.to_string())
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The protocol version: the client's, answered with the daemon's ([`views::Hello`]);
    /// refused with [`ErrorCode::Version`] if they differ.
    Hello { version: u32 },
    /// Ports, link states, VMs, segments, workers.
    // Empty struct variants, not unit ones: serde refuses unknown fields only in these.
    Show {},
    /// Attach a VM: create its vhost-user port and install its MAC.
    Attach(Attach),
    /// Detach a VM: remove its MAC and its port.
    Detach { name: String },
    /// Configure a segment's anycast gateway (creates the segment).
    SetAnycast(Segment),
    /// Configure the uplink's VXLAN underlay (this host's VTEP and the leaf's), which
    /// VXLAN segments need.
    SetUnderlay(Underlay),
    /// The MAC table.
    Fdb {},
    /// Counters per port and per drop reason.
    Stats {},
    /// The counters as a Prometheus text exposition (what the metrics endpoint serves).
    Metrics {},
    /// ARP fix-up: tell the named VMs, and only them, that `ip` is at `mac`.
    ArpAnnounce(ArpAnnounce),
    /// Stream attach, detach and link events.
    Events {},
    /// Try failed attachments again (all, or the one named).
    Retry {
        #[serde(default)]
        name: Option<String>,
    },
    /// Debug only (vswitchd `--debug-api`): make a worker panic, to test that a dead
    /// worker takes the daemon down.
    DebugCrashWorker { worker: usize },
}

/// A VM attachment (also what the state file keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    pub name: String,
    /// The vhost-user socket (QEMU's `-chardev socket,path=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Instead of a vhost-user socket: any DPDK virtual device, `driver<N>[,args]`
    /// (e.g. `net_tap3,iface=vm3`, `net_memif0,…`, or `net_pcap0,rx_pcap=…` in benchmarks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub mac: MacAddr,
    /// The segment (configured with set-anycast).
    pub segment: SegmentId,
    /// Its IPv4 addresses (port security: the only ARP senders it may use).
    #[serde(default)]
    pub ipv4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses (port security: the only IPv6 sources and ND targets it may use,
    /// besides the EUI-64 link-local address of its MAC; list any other link-local one).
    #[serde(default)]
    pub ipv6: Vec<Ipv6Addr>,
    /// Drop what the VM sends from another MAC or address (on by default).
    #[serde(default = "yes")]
    pub port_security: bool,
    /// vswitchd is the vhost-user server on this socket (default: client, QEMU serves).
    #[serde(default)]
    pub server: bool,
    /// Queue pairs: vhost-user's as QEMU's `-netdev vhost-user,queues=N`; a device's rx
    /// and tx queues (it must support that many). Rx queue q is polled by the q-th worker
    /// after the port's owner, and each of those workers sends on a tx queue of its own.
    #[serde(default = "one_queue")]
    pub queues: u16,
    /// More MACs behind this port (containers or nested guests in the VM), each range
    /// `count` consecutive addresses from `base`, installed statically like the VM's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_macs: Vec<MacRange>,
}

/// `count` consecutive MAC addresses from `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacRange {
    pub base: MacAddr,
    pub count: u32,
}

fn one_queue() -> u16 {
    1
}

fn yes() -> bool {
    true
}

/// A segment's gateway configuration (also what the state file keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The segment id, up to 24 bits (1..=16777215); how it is carried on the uplink is
    /// `vlan`, `native` or `vni`, exactly one of them.
    pub segment: SegmentId,
    /// Carry this segment 802.1Q-tagged with this VLAN id (1..=4094) on the uplink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanId>,
    /// Carry this segment as VXLAN with this VNI (1..=16777215) to the leaf's VTEPs (see
    /// [`Underlay`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<Vni>,
    /// The anycast gateway MAC.
    pub mac: MacAddr,
    /// The anycast gateway IP (informational; the leaf owns it).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Subnets of the segment (IPv4 and IPv6 prefixes), for the local responder.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Answer local VMs' ARP requests and neighbor solicitations on the host.
    #[serde(default)]
    pub arp_responder: bool,
    /// Carry this segment untagged on the uplink (the trunk's native VLAN; one at most).
    #[serde(default)]
    pub native: bool,
}

/// The uplink's VXLAN underlay (also what the state file keeps): this host's VTEP and the
/// leaf's. vswitchd answers ARP for `local` on the uplink and resolves each leaf VTEP's MAC
/// by ARP (`show` says which are resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    /// This host's VTEP address.
    pub local: Ipv4Addr,
    /// This host's VTEP MAC [default: the uplink port's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The leaf's VTEP addresses (one or more; with several, flows are spread over them).
    pub leaf: Vec<Ipv4Addr>,
    /// Leaf VTEP MACs known in advance (never asked for by ARP); the others are resolved.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub leaf_macs: std::collections::BTreeMap<Ipv4Addr, MacAddr>,
    /// The underlay's IP MTU: a VM's frames may be up to `mtu - 36` bytes (its MTU
    /// `mtu - 50`); longer ones are dropped as `vxlan_too_big` [default: 1500].
    #[serde(default = "default_underlay_mtu")]
    pub mtu: u16,
}

fn default_underlay_mtu() -> u16 {
    1500
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpAnnounce {
    /// VM names.
    pub to: Vec<String>,
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// One response: `ok` with the request's `result` (a view), or not, with the error's
/// `code` and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

impl Response {
    /// A success; `result` is one of the [`views`].
    pub fn ok(result: &impl Serialize) -> Response {
        match serde_json::to_value(result) {
            Ok(v) => Response { ok: true, error: None, code: None, result: Some(v) },
            Err(e) => Response::error(&ApiError::new(ErrorCode::Failed, format!("answer not encodable: {e}"))),
        }
    }

    pub fn error(e: &ApiError) -> Response {
        Response { ok: false, error: Some(e.message.clone()), code: Some(e.code), result: None }
    }
}

/// An event on the `events` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Attach {
        name: String,
        mac: MacAddr,
        segment: SegmentId,
        ipv4: Vec<Ipv4Addr>,
        ipv6: Vec<Ipv6Addr>,
    },
    Detach {
        name: String,
        mac: MacAddr,
        segment: SegmentId,
        ipv4: Vec<Ipv4Addr>,
        ipv6: Vec<Ipv6Addr>,
    },
    Link {
        name: String,
        up: bool,
    },
    /// The VM is not here any more (see [`views::VmState::Away`]); a later `link` event
    /// with `up` says it is back.
    Away {
        name: String,
        reason: views::AwayReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_read_as_on_the_wire() {
        for c in [ErrorCode::BadRequest, ErrorCode::NotFound, ErrorCode::Version, ErrorCode::Failed] {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }

    #[test]
    fn requests_parse_and_refuse_unknown_fields() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","name":"a","socket":"/tmp/a","mac":"52:54:00:00:00:01","segment":100,"ipv4":["10.1.1.1"]}"#).unwrap();
        match r {
            Request::Attach(a) => assert!(a.port_security && !a.server && a.ipv4 == vec![Ipv4Addr::new(10, 1, 1, 1)]),
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<Request>(r#"{"op":"show","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"nope"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"detach"}"#).is_err());
        let e = serde_json::to_string(&Event::Link { name: "a".into(), up: true }).unwrap();
        assert_eq!(e, r#"{"event":"link","name":"a","up":true}"#);
        assert_eq!(decode(br#"{"op":"fdb","x":1}"#).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(decode(br#"{"op":"hello","version":1}"#).unwrap(), Request::Hello { version: 1 });
        let refused = serde_json::to_string(&Response::error(&ApiError::new(ErrorCode::NotFound, "no VM named x")));
        assert_eq!(refused.unwrap(), r#"{"ok":false,"error":"no VM named x","code":"not-found"}"#);
    }
}
