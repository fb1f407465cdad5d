//! Roam's safe layer over DPDK 22.11: RAII types for the EAL, mempools, mbufs, ethdev ports
//! and rings, typed errors carrying DPDK's own error text, and burst containers that move
//! frames without allocating. Raw pointers never leave this crate.
//!
//! Lifetimes are kept sound without per-packet cost: every object holds a handle on the
//! [`Eal`], so EAL clean-up runs only after the last of them is gone; a [`Mempool`] that is
//! dropped while some of its mbufs are still alive is leaked instead of freed.

pub mod cpus;
mod eal;
mod error;
#[cfg(feature = "rte-hash")]
mod hash;
mod mbuf;
mod mempool;
mod port;
mod ring;
pub mod time;

pub use eal::{Eal, LcoreRegistration};
pub use error::{Error, Result};
#[cfg(feature = "rte-hash")]
pub use hash::{RteHash, HASH_BULK_MAX};
pub use mbuf::{Mbuf, MbufBurst, BURST_SIZE};
pub use mempool::{Mempool, MempoolConfig};
pub use port::{vhost_serves, LinkStatus, Port, PortConfig, PortStats, QueueEvent, RxQueue, TxQueue};
pub use ring::Ring;

/// The text DPDK gives for an errno value (`rte_strerror`).
pub(crate) fn errno_text(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a static or
    // thread-local NUL-terminated string, which we copy out at once.
    let ptr = unsafe { dpdk_sys::rte_strerror(errno) };
    if ptr.is_null() {
        return format!("errno {errno}");
    }
    // SAFETY: non-null, NUL-terminated as per rte_strerror's contract.
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// The calling thread's `rte_errno`.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local integer; no preconditions.
    unsafe { dpdk_sys::roam_errno() }
}

/// A DPDK name as a C string (DPDK names are short and may not hold NUL).
pub(crate) fn c_name(name: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| Error::BadName(name.to_string()))
}
