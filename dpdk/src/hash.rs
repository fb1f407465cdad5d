//! DPDK's cuckoo hash (`rte_hash`) with 8-byte keys and 8-byte data, in lock-free
//! read/write concurrency mode: any number of readers alongside one writer at a time.
//! Roam uses its own MAC table; this wrapper is the reference it is measured against.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::{Eal, Error, Result};

/// Keys a bulk lookup takes at once (`RTE_HASH_LOOKUP_BULK_MAX`).
pub const HASH_BULK_MAX: usize = 64;

/// An `rte_hash` of `u64` keys to `u64` data.
pub struct RteHash {
    ptr: NonNull<dpdk_sys::rte_hash>,
    writer: Mutex<()>,
    _eal: Eal,
}

// SAFETY: in RW_CONCURRENCY_LF mode rte_hash allows concurrent lookups from any threads
// with one writer; writers are serialized by `writer`.
unsafe impl Send for RteHash {}
// SAFETY: as above.
unsafe impl Sync for RteHash {}

impl RteHash {
    /// A hash for `entries` keys, CRC32 hashing, lock-free readers.
    pub fn new(eal: &Eal, name: &str, entries: u32) -> Result<RteHash> {
        let c_name = crate::c_name(name)?;
        let params = dpdk_sys::rte_hash_parameters {
            name: c_name.as_ptr(),
            entries,
            reserved: 0,
            key_len: 8,
            hash_func: Some(dpdk_sys::roam_hash_crc),
            hash_func_init_val: 0,
            socket_id: eal.socket_id(),
            extra_flag: dpdk_sys::RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF as u8,
        };
        // SAFETY: the EAL is up; params and the name it points to outlive the call.
        let ptr = unsafe { dpdk_sys::rte_hash_create(&params) };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(RteHash { ptr, writer: Mutex::new(()), _eal: eal.clone() }),
            None => {
                let errno = crate::rte_errno();
                Err(Error::HashCreate { name: name.to_string(), errno, text: crate::errno_text(errno) })
            }
        }
    }

    /// Adds `key` or updates its data.
    pub fn insert(&self, key: u64, data: u64) -> Result<()> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the hash is live; the key pointer is valid for 8 bytes during the call;
        // data is stored as an opaque pointer-sized integer, never dereferenced.
        let ret = unsafe {
            dpdk_sys::rte_hash_add_key_data(
                self.ptr.as_ptr(),
                &key as *const u64 as *const c_void,
                data as usize as *mut c_void,
            )
        };
        if ret < 0 {
            return Err(Error::HashInsert { errno: -ret, text: crate::errno_text(-ret) });
        }
        Ok(())
    }

    /// Looks up to [`HASH_BULK_MAX`] keys at once into `out`; returns the number of hits.
    pub fn lookup_bulk(&self, keys: &[u64], out: &mut [Option<u64>]) -> usize {
        let n = keys.len().min(out.len()).min(HASH_BULK_MAX);
        let mut key_ptrs = [std::ptr::null::<c_void>(); HASH_BULK_MAX];
        for (p, k) in key_ptrs.iter_mut().zip(&keys[..n]) {
            *p = k as *const u64 as *const c_void;
        }
        let mut data = [std::ptr::null_mut::<c_void>(); HASH_BULK_MAX];
        let mut hit_mask: u64 = 0;
        // SAFETY: key_ptrs[..n] point at live u64 keys; data has room for n results; the
        // hash allows concurrent lookups in lock-free mode.
        let hits = unsafe {
            dpdk_sys::rte_hash_lookup_bulk_data(
                self.ptr.as_ptr(),
                key_ptrs.as_mut_ptr(),
                n as u32,
                &mut hit_mask,
                data.as_mut_ptr(),
            )
        };
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = (hit_mask >> i & 1 == 1).then_some(data[i] as usize as u64);
        }
        hits.max(0) as usize
    }
}

impl Drop for RteHash {
    fn drop(&mut self) {
        // SAFETY: we own the hash and nothing can use it after drop.
        unsafe { dpdk_sys::rte_hash_free(self.ptr.as_ptr()) }
    }
}
