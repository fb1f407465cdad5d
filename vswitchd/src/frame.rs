//! The pipeline's packet trait on DPDK mbufs.

use dpdk::Mbuf;
use pipeline::Frame;

/// An mbuf as a pipeline frame (moving it moves a pointer).
#[repr(transparent)]
pub struct MbufFrame(pub Mbuf);

impl Frame for MbufFrame {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0.data()
    }
    #[inline]
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        self.0.data_mut()
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n).is_ok()
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n).is_ok()
    }
    fn duplicate(&self) -> Option<Self> {
        self.0.copy().ok().map(MbufFrame)
    }
    #[inline]
    fn share(&self) -> Option<Self> {
        self.0.share().ok().map(MbufFrame)
    }
}
