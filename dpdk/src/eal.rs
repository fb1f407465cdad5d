//! The Environment Abstraction Layer: initialized once per process, cleaned up when the
//! last handle (held by every pool, port and ring) is dropped.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const UP: u8 = 2;
const DONE: u8 = 3;

/// Linux EINVAL: what rte_eal_init sets for an argument it cannot parse.
const EINVAL: i32 = 22;

/// DPDK allows `rte_eal_init` to succeed once per process, and never again after
/// `rte_eal_cleanup`; this tracks where the process is in that life.
static STATE: AtomicU8 = AtomicU8::new(IDLE);

/// A handle on the initialized EAL. Cheap to clone; clean-up runs when the last one drops.
#[derive(Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

struct EalInner;

impl Eal {
    /// Initializes the EAL with `args` (EAL options only, without a program name), e.g.
    /// `["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "roam1", "--vdev", "net_null0"]`.
    ///
    /// Fails with [`Error::EalAlreadyInitialized`] if this process already has an EAL, and
    /// with [`Error::EalInit`] (DPDK's reason) on a bad argument; after a bad argument the
    /// EAL may be initialized again with good ones.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> =
            std::iter::once("roam".to_string()).chain(args.into_iter().map(|a| a.as_ref().to_string())).collect();
        let c_args = args.iter().map(|a| crate::c_name(a)).collect::<Result<Vec<CString>>>()?;
        if STATE.compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Error::EalAlreadyInitialized);
        }
        // The EAL may keep pointers into argv (it permutes it and some drivers keep their
        // devargs strings), so argv lives for the rest of the process: a few bytes, once.
        let argv: &'static mut [*mut c_char] = Vec::leak(c_args.into_iter().map(|c| c.into_raw()).collect::<Vec<_>>());
        let argc = argv.len() as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; STATE
        // guarantees no other thread of this process is inside rte_eal_init.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let errno = crate::rte_errno();
            // EAL resets its own run-once flag after an argument error, so a retry is
            // allowed; after any other failure DPDK refuses a second init, and so do we.
            let retry = if errno == EINVAL { IDLE } else { DONE };
            STATE.store(retry, Ordering::Release);
            return Err(Error::EalInit { errno, text: crate::errno_text(errno), args: args[1..].join(" ") });
        }
        STATE.store(UP, Ordering::Release);
        Ok(Eal { _inner: Arc::new(EalInner) })
    }

    /// The number of ethdev ports the EAL found (vdevs, PCI devices).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is up (we hold a handle); this reads ethdev's port table.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }

    /// Registers the calling thread with the EAL (`rte_thread_register`): it gets an lcore
    /// id, so mempool per-lcore caches serve its allocations and frees instead of the
    /// shared ring. The registration lasts until the guard drops (on this thread: the
    /// guard is not `Send`).
    pub fn register_thread(&self) -> Result<LcoreRegistration> {
        // SAFETY: the EAL is up (we hold a handle); registration only touches the calling
        // thread's per-lcore state.
        let ret = unsafe { dpdk_sys::roam_thread_register() };
        if ret < 0 {
            // SAFETY: reads this thread's rte_errno.
            let errno = unsafe { dpdk_sys::roam_errno() };
            return Err(Error::Dpdk { what: "rte_thread_register", errno, text: crate::errno_text(errno) });
        }
        // SAFETY: reads this thread's lcore id, just assigned.
        let lcore = unsafe { dpdk_sys::roam_lcore_id() };
        Ok(LcoreRegistration { lcore, _eal: self.clone(), _not_send: std::marker::PhantomData })
    }

    /// The NUMA socket of the calling thread (`rte_socket_id`).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: the EAL is up; reads a per-thread value.
        unsafe { dpdk_sys::rte_socket_id() as i32 }
    }
}

/// A thread's EAL registration (see [`Eal::register_thread`]).
pub struct LcoreRegistration {
    lcore: u32,
    _eal: Eal,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl LcoreRegistration {
    /// The lcore id the thread was given.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

impl Drop for LcoreRegistration {
    fn drop(&mut self) {
        // SAFETY: we are on the registered thread (the guard cannot leave it) and the EAL
        // is still up (we hold a handle).
        unsafe { dpdk_sys::roam_thread_unregister() };
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so no pool, port or ring of ours is alive; DPDK
        // is not re-entered after this (STATE = DONE refuses a new init).
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret < 0 {
            tracing::warn!(ret, "rte_eal_cleanup failed");
        }
        STATE.store(DONE, Ordering::Release);
    }
}
