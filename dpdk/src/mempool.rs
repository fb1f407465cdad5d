//! Packet mempools (`rte_pktmbuf_pool_create`).

use std::ptr::NonNull;

use crate::{Eal, Error, Result};

/// How a packet mempool is sized.
#[derive(Debug, Clone)]
pub struct MempoolConfig {
    /// Number of mbufs (DPDK recommends 2^q - 1).
    pub size: u32,
    /// Per-lcore cache (0 disables; at most 512).
    pub cache_size: u32,
    /// Bytes of data room per mbuf, headroom included.
    pub data_room: u16,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig { size: 8191, cache_size: 250, data_room: dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16 }
    }
}

/// A pool of packet buffers. Thread-safe: any thread may allocate and free.
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    eal: Option<Eal>,
}

// SAFETY: DPDK's default mempool ops (ring_mp_mc) are multi-producer/multi-consumer, so
// allocation and free from any thread are safe; the pointer itself is never mutated.
unsafe impl Send for Mempool {}
// SAFETY: as above; shared references only allocate, free and read counters.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a packet mempool named `name` (unique in the process) on the caller's socket.
    pub fn new(eal: &Eal, name: &str, cfg: &MempoolConfig) -> Result<Mempool> {
        let c_name = crate::c_name(name)?;
        // SAFETY: the EAL is up (we hold a handle) and c_name outlives the call.
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                cfg.size,
                cfg.cache_size,
                0,
                cfg.data_room,
                eal.socket_id(),
            )
        };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Mempool { ptr, name: name.to_string(), eal: Some(eal.clone()) }),
            None => {
                let errno = crate::rte_errno();
                Err(Error::MempoolCreate { name: name.to_string(), errno, text: crate::errno_text(errno) })
            }
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs free in the pool, per-lcore caches included (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: ptr is a live mempool for as long as self exists.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool (`rte_mempool_in_use_count`).
    pub fn in_use(&self) -> u32 {
        // SAFETY: ptr is a live mempool for as long as self exists.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Total number of mbufs the pool was created with.
    pub fn capacity(&self) -> u32 {
        // SAFETY: ptr is a live mempool; `size` is set at creation and never changes.
        unsafe { self.ptr.as_ref().size }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use > 0 {
            // Freeing would leave live mbufs pointing into freed memory: leak the pool
            // (and with it the EAL handle, so the EAL is never cleaned up under them).
            tracing::error!(pool = %self.name, in_use, "mempool dropped with mbufs in use; leaking it");
            std::mem::forget(self.eal.take());
            return;
        }
        // SAFETY: no mbuf of this pool is alive (in_use == 0) and no port holds the pool
        // (ports keep an Arc<Mempool>), so nothing can touch it after this.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
