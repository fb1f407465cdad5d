//! The TSC clock DPDK uses for cheap timestamps on the fast path.

/// Current TSC value (`rte_rdtsc`).
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the CPU's time-stamp counter; no memory is touched.
    unsafe { dpdk_sys::roam_rdtsc() }
}

/// TSC ticks per second as measured by the EAL (0 before EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at init; safe to call at any time.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

/// A spin-wait hint (`rte_pause`).
#[inline]
pub fn pause() {
    // SAFETY: executes the PAUSE instruction; no memory is touched.
    unsafe { dpdk_sys::roam_pause() }
}
