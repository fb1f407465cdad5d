//! Owned packet buffers and the fixed-size bursts the fast path moves them in.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

use crate::{Error, Mempool, Result};

/// The burst size Roam uses everywhere (rx, pipeline, tx).
pub const BURST_SIZE: usize = 32;

/// `RTE_MBUF_F_INDIRECT` and `RTE_MBUF_F_EXTERNAL`: the data belongs to another buffer.
const SHARED_DATA_FLAGS: u64 = (1 << 62) | (1 << 61);

/// An owned mbuf, returned to its pool when dropped. Only the first segment's data is
/// exposed; Roam's frames fit in one segment (jumbo frames use a larger data room).
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its buffer; mempool free is thread-safe.
unsafe impl Send for Mbuf {}
// SAFETY: shared references only read the buffer.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    /// Allocates an empty mbuf, or [`Error::MempoolExhausted`] when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Result<Mbuf> {
        // SAFETY: pool is a live mempool; a returned non-null mbuf is ours alone.
        let ptr = unsafe { dpdk_sys::roam_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(ptr).map(Mbuf).ok_or_else(|| Error::MempoolExhausted(pool.name().to_string()))
    }

    /// Allocates an mbuf holding a copy of `bytes`.
    pub fn from_slice(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf> {
        let mut m = Mbuf::alloc(pool)?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Ok(m)
    }

    /// The frame's bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: an owned mbuf's buf_addr + data_off points at data_len initialized bytes
        // inside its buffer, which lives as long as the mbuf; we hold a shared borrow.
        unsafe {
            let m = self.0.as_ref();
            std::slice::from_raw_parts((m.buf_addr as *const u8).add(m.data_off as usize), m.data_len as usize)
        }
    }

    /// The frame's bytes for writing, or `None` when the data is shared with another mbuf
    /// (reference count above one, or attached to another buffer).
    #[inline]
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        // SAFETY: as in `data`; in addition the buffer is not shared (checked), and we hold
        // the unique borrow of its only owner, so no other reference to the bytes exists.
        unsafe {
            let m = self.0.as_ref();
            if m.refcnt != 1 || m.ol_flags & SHARED_DATA_FLAGS != 0 {
                return None;
            }
            Some(std::slice::from_raw_parts_mut((m.buf_addr as *mut u8).add(m.data_off as usize), m.data_len as usize))
        }
    }

    /// A copy of the frame in a new mbuf from the same pool (for floods), or
    /// [`Error::MempoolExhausted`].
    pub fn copy(&self) -> Result<Mbuf> {
        // SAFETY: reading the pool pointer of a live mbuf we own; mbufs always carry the
        // pool they came from, and that pool outlives them (see `Mempool`'s drop).
        let pool = unsafe { self.0.as_ref().pool };
        // SAFETY: pool is the live mempool this mbuf came from.
        let ptr = unsafe { dpdk_sys::roam_pktmbuf_alloc(pool) };
        let mut m = NonNull::new(ptr).map(Mbuf).ok_or_else(|| Error::MempoolExhausted("(copy)".into()))?;
        m.append(self.len())?.copy_from_slice(self.data());
        Ok(m)
    }

    /// Another handle on the same buffer (its reference count goes up; each handle frees
    /// one reference). Neither handle can write the data afterwards (`data_mut` is `None`
    /// while it is shared). How a frame goes to several ports without a copy.
    pub fn share(&self) -> Result<Mbuf> {
        // SAFETY: reading the reference count of a live mbuf we own.
        let refs = unsafe { dpdk_sys::roam_mbuf_refcnt_read(self.0.as_ptr()) };
        if refs >= u16::MAX - 1 {
            return Err(Error::NoRoom(0));
        }
        // SAFETY: we own a reference, so the mbuf is live; the update is atomic, and the
        // new reference is owned by the handle returned (its drop frees it).
        unsafe { dpdk_sys::roam_mbuf_refcnt_update(self.0.as_ptr(), 1) };
        Ok(Mbuf(self.0))
    }

    /// Length of the first segment's data.
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: reading a field of a live mbuf we own.
        unsafe { self.0.as_ref().data_len as usize }
    }

    /// Whether the mbuf holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input port DPDK recorded at rx.
    #[inline]
    pub fn port(&self) -> u16 {
        // SAFETY: reading a field of a live mbuf we own.
        unsafe { self.0.as_ref().port }
    }

    /// Grows the data at its tail by `len` bytes and returns them (uninitialized contents
    /// are whatever the buffer held; callers overwrite them).
    pub fn append(&mut self, len: usize) -> Result<&mut [u8]> {
        let n = u16::try_from(len).map_err(|_| Error::NoRoom(len))?;
        // SAFETY: we own the mbuf; append returns NULL when the tailroom is too small.
        let ptr = unsafe { dpdk_sys::roam_pktmbuf_append(self.0.as_ptr(), n) };
        if ptr.is_null() {
            return Err(Error::NoRoom(len));
        }
        // SAFETY: append returned a pointer to `len` bytes inside our buffer.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) })
    }

    /// Grows the data at its head by `len` bytes (e.g. to push a VLAN tag) and returns them.
    pub fn prepend(&mut self, len: usize) -> Result<&mut [u8]> {
        let n = u16::try_from(len).map_err(|_| Error::NoRoom(len))?;
        // SAFETY: we own the mbuf; prepend returns NULL when the headroom is too small.
        let ptr = unsafe { dpdk_sys::roam_pktmbuf_prepend(self.0.as_ptr(), n) };
        if ptr.is_null() {
            return Err(Error::NoRoom(len));
        }
        // SAFETY: prepend returned a pointer to `len` bytes at the new start of data.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) })
    }

    /// Removes `len` bytes from the head of the data (e.g. to pop a VLAN tag).
    pub fn adj(&mut self, len: usize) -> Result<()> {
        let n = u16::try_from(len).map_err(|_| Error::NoRoom(len))?;
        // SAFETY: we own the mbuf; adj returns NULL when len exceeds the data length.
        let ptr = unsafe { dpdk_sys::roam_pktmbuf_adj(self.0.as_ptr(), n) };
        if ptr.is_null() {
            return Err(Error::NoRoom(len));
        }
        Ok(())
    }

    /// Removes `len` bytes from the tail of the data.
    pub fn trim(&mut self, len: usize) -> Result<()> {
        let n = u16::try_from(len).map_err(|_| Error::NoRoom(len))?;
        // SAFETY: we own the mbuf; trim returns -1 when len exceeds the data length.
        let ret = unsafe { dpdk_sys::roam_pktmbuf_trim(self.0.as_ptr(), n) };
        if ret != 0 {
            return Err(Error::NoRoom(len));
        }
        Ok(())
    }

    /// Free bytes before the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: reads fields of a live mbuf we own.
        unsafe { dpdk_sys::roam_pktmbuf_headroom(self.0.as_ptr()) as usize }
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        // SAFETY: reads fields of a live mbuf we own.
        unsafe { dpdk_sys::roam_pktmbuf_tailroom(self.0.as_ptr()) as usize }
    }

    /// Gives up ownership: the caller must hand the pointer to DPDK or back to `from_raw`.
    pub fn into_raw(self) -> NonNull<rte_mbuf> {
        ManuallyDrop::new(self).0
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free.
    pub unsafe fn from_raw(ptr: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we are the unique owner; after this the pointer is never used.
        unsafe { dpdk_sys::roam_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf").field("len", &self.len()).field("port", &self.port()).finish()
    }
}

/// Up to `N` owned mbufs in a fixed array: what rx fills, the pipeline sorts and tx drains,
/// with no allocation. Mbufs still inside when it drops are freed in one bulk call.
pub struct MbufBurst<const N: usize = BURST_SIZE> {
    // Invariant: slots[..len] are distinct, owned, non-null mbufs.
    slots: [*mut rte_mbuf; N],
    len: usize,
}

// SAFETY: the burst owns its mbufs exactly as a Vec<Mbuf> would; Mbuf is Send.
unsafe impl<const N: usize> Send for MbufBurst<N> {}

impl<const N: usize> Default for MbufBurst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MbufBurst<N> {
    /// An empty burst.
    pub const fn new() -> Self {
        MbufBurst { slots: [std::ptr::null_mut(); N], len: 0 }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the burst is full.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Adds an mbuf at the end; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> std::result::Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len] = m.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slots[len] was owned and non-null by the invariant; it leaves the burst.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(self.slots[self.len])) })
    }

    /// The mbufs as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of
        // *mut rte_mbuf, and slots[..len] are non-null by the invariant.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    /// The mbufs as a mutable slice (to edit frames in place or reorder them).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`; a &mut Mbuf cannot store null, so the invariant holds.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Moves every mbuf out, in order, leaving the burst empty.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let len = self.len;
        self.len = 0;
        Drain { burst: self, next: 0, end: len }
    }

    /// Frees every mbuf (one bulk call).
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots[..len] are owned mbufs that the burst forgets right after.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Room left, and a pointer to it, for an FFI call that fills slots[len..].
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= N, so the pointer stays within (or one past) the array.
        (unsafe { self.slots.as_mut_ptr().add(self.len) }, N - self.len)
    }

    /// Records that an FFI call stored `n` owned mbufs at slots[len..len + n].
    ///
    /// # Safety
    /// Those slots must now hold `n` valid, owned, non-null mbufs.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// The owned mbufs for an FFI call that may consume a prefix of them.
    pub(crate) fn filled_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        (self.slots.as_mut_ptr(), self.len)
    }

    /// Forgets the first `n` mbufs (an FFI call took ownership) and moves the rest forward.
    pub(crate) fn consumed_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.slots.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl<const N: usize> Drop for MbufBurst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator returned by [`MbufBurst::drain`]; mbufs not taken are freed when it drops.
pub struct Drain<'a, const N: usize> {
    burst: &'a mut MbufBurst<N>,
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;
    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let p = self.burst.slots[self.next];
        self.next += 1;
        // SAFETY: slots[next] was owned and non-null; the burst's len is already 0, so this
        // is now its only owner.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
    }
}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end - self.next;
        if rest > 0 {
            // SAFETY: slots[next..end] are still owned and not yet handed out.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.burst.slots.as_mut_ptr().add(self.next), rest as u32) };
        }
    }
}
