//! vswitchd: Roam's host switch. EAL and ports (vhost-user VM ports, one uplink), a worker
//! that runs the `pipeline` over bursts, and a control thread that serves the JSON API on a
//! unix socket, keeps the MAC table's static entries and persists attachments. `vsctl` is
//! its CLI; `api` is the protocol both speak.

/// The control protocol (its own crate, so that clients and fuzzers need no DPDK).
pub use roam_api as api;
pub mod config;
pub mod control;
pub mod frame;
pub mod libvirt;
pub mod placement;
pub mod state;
pub mod switch;
pub mod worker;
