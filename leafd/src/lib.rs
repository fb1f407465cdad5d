//! leafd, Roam's reference leaf (top-of-rack): the anycast gateway on every downlink, proxy
//! ARP for remote hosts, /32 host routes shared with the other leaves over BGP (GoBGP),
//! and the selective ARP update after a VM moves. See `logic` for the rules.

pub mod bgp;
pub mod config;
pub mod demand;
pub mod fib;
pub mod kernel;
pub mod logic;
pub mod metrics;
pub mod routes;
pub mod trap;
pub mod vpn;
pub mod vswitch;

use std::net::IpAddr;
use std::time::SystemTime;

/// A host route's prefix length: 32 for IPv4, 128 for IPv6.
pub fn host_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// An input with the time it was seen (a trapped frame's capture time).
#[derive(Debug, Clone)]
pub struct Event {
    pub input: logic::Input,
    pub at: SystemTime,
}

/// Microseconds since the Unix epoch (what the move reports use).
pub fn micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}
