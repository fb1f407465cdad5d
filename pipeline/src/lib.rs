//! Roam's data path: what happens to every frame. Zero-copy views of Ethernet, 802.1Q,
//! ARP, IPv4, IPv6 and neighbor discovery ([`wire`]); VXLAN encapsulation ([`vxlan`]); the builders of ARP fix-up frames
//! ([`fixup`]); and burst processing ([`Processor`]) that classifies, looks up, rewrites,
//! floods and drops with a named reason, over any buffer type that implements [`Frame`].
//! No DPDK here: vswitchd implements [`Frame`] for mbufs.

pub mod announce;
pub mod config;
pub mod counters;
pub mod encap;
pub mod fixup;
pub mod frame;
pub mod hold;
pub mod ids;
#[cfg(feature = "table")]
mod ndp;
pub mod net;
#[cfg(feature = "table")]
mod output;
#[cfg(feature = "table")]
mod process;
#[cfg(feature = "table")]
pub mod table;
#[cfg(feature = "table")]
mod uplink;
pub mod vxlan;
pub mod wire;

pub use config::{ConfigError, IpNet, Ipv4Net, Ipv6Net, PortRole, SegmentConfig, SwitchConfig, VnicConfig};
pub use counters::{Counters, DropReason, PortCounters};
pub use encap::Encap;
pub use frame::{ByteFrame, Frame};
pub use hold::{HeldFrames, HoldCounters, Released};
pub use ids::{PortId, SegmentId, SegmentSlot, SegmentSlots, TooManySegments, VlanId, Vni, MAX_SEGMENT_ID};
#[cfg(feature = "table")]
pub use process::{Output, Processor};
#[cfg(feature = "table")]
pub use table::BATCH;
pub use wire::mac::{MacAddr, ParseMacError};
