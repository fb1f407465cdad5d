//! Multi-producer, multi-consumer rings of mbufs (`rte_ring`).

use std::ffi::c_void;
use std::ptr::NonNull;

use crate::{Eal, Error, MbufBurst, Result};

/// A bounded MP/MC queue of mbufs, safe to share between threads. Mbufs left in it when it
/// drops are freed.
pub struct Ring {
    ptr: NonNull<dpdk_sys::rte_ring>,
    name: String,
    _eal: Eal,
}

// SAFETY: the ring is created without SP/SC flags, so concurrent enqueue and dequeue from
// any threads are safe; it carries owned mbufs, which are Send.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a ring that holds exactly `capacity` mbufs; `name` must be unique.
    pub fn new(eal: &Eal, name: &str, capacity: u32) -> Result<Ring> {
        let c_name = crate::c_name(name)?;
        let (socket, flags) = (eal.socket_id(), dpdk_sys::RING_F_EXACT_SZ);
        // SAFETY: the EAL is up; c_name outlives the call. Flags: MP/MC, exact size.
        let ptr = unsafe { dpdk_sys::rte_ring_create(c_name.as_ptr(), capacity, socket, flags) };
        match NonNull::new(ptr) {
            Some(ptr) => Ok(Ring { ptr, name: name.to_string(), _eal: eal.clone() }),
            None => {
                let errno = crate::rte_errno();
                Err(Error::RingCreate { name: name.to_string(), errno, text: crate::errno_text(errno) })
            }
        }
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves mbufs from the front of `burst` into the ring; returns how many fit. The rest
    /// stay in the burst.
    pub fn enqueue_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        let (ptr, len) = burst.filled_raw();
        // SAFETY: ptr holds len owned mbufs; the ring takes ownership of the first n.
        let n = unsafe {
            dpdk_sys::roam_ring_enqueue_burst(
                self.ptr.as_ptr(),
                ptr as *const *mut c_void,
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        burst.consumed_front(n);
        n
    }

    /// Moves mbufs from the ring into the burst's free slots; returns how many.
    pub fn dequeue_burst<const N: usize>(&self, burst: &mut MbufBurst<N>) -> usize {
        let (ptr, room) = burst.spare_raw();
        // SAFETY: the ring only ever holds owned mbufs (enqueued by us or by a ring port);
        // ptr has room for `room` pointers.
        let n = unsafe {
            dpdk_sys::roam_ring_dequeue_burst(
                self.ptr.as_ptr(),
                ptr as *mut *mut c_void,
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: n owned mbufs were written to the spare slots.
        unsafe { burst.commit(n) };
        n
    }

    /// Mbufs waiting in the ring.
    pub fn len(&self) -> usize {
        // SAFETY: ptr is a live ring.
        unsafe { dpdk_sys::roam_ring_count(self.ptr.as_ptr()) as usize }
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots.
    pub fn free_space(&self) -> usize {
        // SAFETY: ptr is a live ring.
        unsafe { dpdk_sys::roam_ring_free_count(self.ptr.as_ptr()) as usize }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.ptr.as_ptr()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut burst: MbufBurst = MbufBurst::new();
        while self.dequeue_burst(&mut burst) > 0 {
            burst.clear();
        }
        // SAFETY: nothing else holds the ring (ports keep an Arc<Ring>), and it is empty.
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}
