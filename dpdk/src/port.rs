//! Ethdev ports: configured and started on open, stopped and closed when the last handle
//! (the port or one of its queues) drops. Each rx/tx queue is handed out once, as a
//! [`RxQueue`] or [`TxQueue`] that one thread owns, because DPDK queues are not thread-safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Eal, Error, MbufBurst, Mempool, Result, Ring};

/// How to configure a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Receive frames for every MAC (a switch port wants this).
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { rx_queues: 1, tx_queues: 1, rx_descriptors: 1024, tx_descriptors: 1024, promiscuous: true }
    }
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the device because rx queues were full.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// Rx failures for lack of mbufs.
    pub rx_no_mbuf: u64,
}

/// Link state (`rte_eth_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    /// Mbit/s as the driver reports it.
    pub speed_mbps: u32,
}

struct PortShared {
    id: u16,
    name: String,
    /// Created by hot-plug (`Port::create_vdev`): removed from the vdev bus on close.
    hotplugged: bool,
    rx_taken: Box<[AtomicBool]>,
    tx_taken: Box<[AtomicBool]>,
    // Kept alive as long as the device may use them.
    _pool: Arc<Mempool>,
    _rings: Vec<Arc<Ring>>,
    _eal: Eal,
}

/// A started ethdev port.
#[derive(Clone)]
pub struct Port {
    shared: Arc<PortShared>,
}

impl Port {
    /// The id of the port DPDK knows as `name` (e.g. `net_null0`).
    pub fn id_by_name(_eal: &Eal, name: &str) -> Result<u16> {
        let c_name = crate::c_name(name)?;
        let mut id = 0u16;
        // SAFETY: the EAL is up; c_name and id outlive the call.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(Error::PortNotFound(name.to_string()));
        }
        Ok(id)
    }

    /// Configures and starts the port DPDK knows as `name`, taking rx buffers from `pool`.
    pub fn open(eal: &Eal, name: &str, cfg: &PortConfig, pool: Arc<Mempool>) -> Result<Port> {
        let id = Port::id_by_name(eal, name)?;
        Port::configure(eal, id, cfg, pool, Vec::new(), false)
    }

    /// Hot-plugs the virtual device `name` with `args` (e.g. `net_vhost0` with
    /// `iface=/run/vm0.sock,client=1`), then configures and starts it. The device is
    /// removed again when the last handle drops.
    pub fn create_vdev(eal: &Eal, name: &str, args: &str, cfg: &PortConfig, pool: Arc<Mempool>) -> Result<Port> {
        let (c_bus, c_name, c_args) = (crate::c_name("vdev")?, crate::c_name(name)?, crate::c_name(args)?);
        // SAFETY: the EAL is up; the three strings outlive the call.
        let ret = unsafe { dpdk_sys::rte_eal_hotplug_add(c_bus.as_ptr(), c_name.as_ptr(), c_args.as_ptr()) };
        if ret < 0 {
            return Err(Error::Hotplug {
                name: name.to_string(),
                args: args.to_string(),
                errno: -ret,
                text: crate::errno_text(-ret),
            });
        }
        let id = match Port::id_by_name(eal, name) {
            Ok(id) => id,
            Err(e) => {
                hotplug_remove(name);
                return Err(e);
            }
        };
        Port::configure(eal, id, cfg, pool, Vec::new(), true).inspect_err(|_| {
            // SAFETY: the device exists and nothing else holds it.
            unsafe { dpdk_sys::rte_eth_dev_close(id) };
            hotplug_remove(name);
        })
    }

    /// Creates a port over two rings (`rte_eth_from_rings`): what it sends goes into `tx`,
    /// what it receives comes from `rx`. Two such ports over crossed rings form a pair.
    /// DPDK names the device `net_ring_<name>`.
    pub fn from_rings(
        eal: &Eal,
        name: &str,
        rx: Arc<Ring>,
        tx: Arc<Ring>,
        cfg: &PortConfig,
        pool: Arc<Mempool>,
    ) -> Result<Port> {
        let c_name = crate::c_name(name)?;
        let rxq = [rx.as_ptr()];
        let txq = [tx.as_ptr()];
        // SAFETY: the EAL is up; both ring pointers are live rings kept alive by the port
        // (stored in `_rings`) for as long as the device exists.
        let ret = unsafe {
            dpdk_sys::rte_eth_from_rings(c_name.as_ptr(), rxq.as_ptr(), 1, txq.as_ptr(), 1, eal.socket_id() as u32)
        };
        if ret < 0 {
            let errno = crate::rte_errno();
            return Err(Error::Port {
                port: u16::MAX,
                op: "rte_eth_from_rings",
                errno,
                text: crate::errno_text(errno),
            });
        }
        let cfg = PortConfig { rx_queues: 1, tx_queues: 1, ..cfg.clone() };
        Port::configure(eal, ret as u16, &cfg, pool, vec![rx, tx], false)
    }

    fn configure(
        eal: &Eal,
        id: u16,
        cfg: &PortConfig,
        pool: Arc<Mempool>,
        rings: Vec<Arc<Ring>>,
        hotplugged: bool,
    ) -> Result<Port> {
        let name = device_name(id)?;
        let conf = dpdk_sys::rte_eth_conf::default();
        // SAFETY: id names an existing port; conf outlives the call.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if ret < 0 {
            return Err(Error::port(id, "rte_eth_dev_configure", ret));
        }
        let (mut nb_rx, mut nb_tx) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: id is a configured port; both counters outlive the call.
        let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
        if ret < 0 {
            return Err(Error::port(id, "rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: id is a configured port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { dpdk_sys::SOCKET_ID_ANY } else { socket } as u32;
        for q in 0..cfg.rx_queues {
            let (rx_conf, mp) = (std::ptr::null(), pool.as_ptr());
            // SAFETY: q < configured rx queues; pool is a live mempool that the port keeps
            // alive (`_pool`); a null rx_conf selects the driver's defaults.
            let ret = unsafe { dpdk_sys::rte_eth_rx_queue_setup(id, q, nb_rx, socket, rx_conf, mp) };
            if ret < 0 {
                return Err(Error::port(id, "rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: q < configured tx queues; a null tx_conf selects the driver's defaults.
            let ret = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, nb_tx, socket, std::ptr::null()) };
            if ret < 0 {
                return Err(Error::port(id, "rte_eth_tx_queue_setup", ret));
            }
        }
        if cfg.promiscuous {
            // SAFETY: id is a configured port. Virtual devices that cannot filter by MAC
            // answer -ENOTSUP, which is fine: they receive everything anyway.
            let ret = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
            if ret < 0 && ret != -95 {
                return Err(Error::port(id, "rte_eth_promiscuous_enable", ret));
            }
        }
        // SAFETY: id is a configured port with all its queues set up.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if ret < 0 {
            return Err(Error::port(id, "rte_eth_dev_start", ret));
        }
        let flags = |n: u16| (0..n).map(|_| AtomicBool::new(false)).collect::<Box<[_]>>();
        Ok(Port {
            shared: Arc::new(PortShared {
                id,
                name,
                hotplugged,
                rx_taken: flags(cfg.rx_queues),
                tx_taken: flags(cfg.tx_queues),
                _pool: pool,
                _rings: rings,
                _eal: eal.clone(),
            }),
        })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// The device name the port was opened with.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Rx queues the port was configured with.
    pub fn rx_queue_count(&self) -> u16 {
        self.shared.rx_taken.len() as u16
    }

    /// Takes rx queue `queue`; each queue can be taken once.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue> {
        take(&self.shared.rx_taken, queue).ok_or(Error::QueueUnavailable { port: self.id(), kind: "rx", queue })?;
        Ok(RxQueue { port: self.shared.id, queue, _shared: self.shared.clone(), _not_sync: Default::default() })
    }

    /// Takes tx queue `queue`; each queue can be taken once.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue> {
        take(&self.shared.tx_taken, queue).ok_or(Error::QueueUnavailable { port: self.id(), kind: "tx", queue })?;
        Ok(TxQueue { port: self.shared.id, queue, _shared: self.shared.clone(), _not_sync: Default::default() })
    }

    /// The device's counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: the port is started and s outlives the call.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.id(), &mut s) };
        if ret < 0 {
            return Err(Error::port(self.id(), "rte_eth_stats_get", ret));
        }
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// The port's MAC address, as bytes (callers have their own MAC type; this layer
    /// keeps none).
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: the port exists and a outlives the call.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id(), &mut a) };
        if ret < 0 {
            return Err(Error::port(self.id(), "rte_eth_macaddr_get", ret));
        }
        Ok(a.addr_bytes)
    }

    /// Link state, without waiting for negotiation.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: the port exists and l outlives the call.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id(), &mut l) };
        if ret < 0 {
            return Err(Error::port(self.id(), "rte_eth_link_get_nowait", ret));
        }
        Ok(LinkStatus { up: l.link_status() != 0, speed_mbps: l.link_speed })
    }

    /// The vhost device (`vid`) behind this `net_vhost` port while its VM runs; None for
    /// a port that is no vhost port or whose rings are stopped (the driver forgets the
    /// device then, although the connection may still be open: see [`vhost_serves`]).
    pub fn vhost_device(&self) -> Option<i32> {
        // SAFETY: the port exists; the call only reads the port's queue data.
        let vid = unsafe { dpdk_sys::rte_eth_vhost_get_vid_from_port_id(self.id()) };
        (vid >= 0).then_some(vid)
    }
}

/// A change of one of a `net_vhost` port's queues, as the guest enabled or disabled it
/// (seen from the port: an `rx` queue is one the port receives on, the guest's transmit
/// ring). A guest may enable fewer queue pairs than it has (Linux enables one a vCPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEvent {
    pub queue: u16,
    pub rx: bool,
    pub enabled: bool,
}

impl Port {
    /// The next queue change of this `net_vhost` port not yet returned (each queue's
    /// latest state once), or None when there is none or the port is no vhost port.
    pub fn vhost_queue_event(&self) -> Option<QueueEvent> {
        let mut e = dpdk_sys::rte_eth_vhost_queue_event { queue_id: 0, rx: false, enable: false };
        // SAFETY: the port exists while `self` does; the call writes only into `e` and
        // fails (negative) for a port of another driver or without a pending change.
        let ret = unsafe { dpdk_sys::rte_eth_vhost_get_queue_event(self.id(), &mut e) };
        (ret == 0).then_some(QueueEvent { queue: e.queue_id, rx: e.rx, enabled: e.enable })
    }

    /// Tx queues the port was configured with.
    pub fn tx_queue_count(&self) -> u16 {
        self.shared.tx_taken.len() as u16
    }
}

/// Removes a hot-plugged virtual device from the vdev bus.
fn hotplug_remove(name: &str) {
    let (Ok(c_bus), Ok(c_name)) = (crate::c_name("vdev"), crate::c_name(name)) else { return };
    // SAFETY: the EAL is up (the caller holds a handle); the strings outlive the call.
    let ret = unsafe { dpdk_sys::rte_eal_hotplug_remove(c_bus.as_ptr(), c_name.as_ptr()) };
    if ret < 0 {
        tracing::warn!(device = name, ret, "rte_eal_hotplug_remove failed");
    }
}

/// The name ethdev knows port `id` by.
fn device_name(id: u16) -> Result<String> {
    let mut buf = [0 as std::ffi::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: id names an existing port; buf holds RTE_ETH_NAME_MAX_LEN bytes as required.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret < 0 {
        return Err(Error::port(id, "rte_eth_dev_get_name_by_port", ret));
    }
    // SAFETY: on success DPDK wrote a NUL-terminated name into buf.
    Ok(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

fn take(flags: &[AtomicBool], queue: u16) -> Option<()> {
    let f = flags.get(queue as usize)?;
    (!f.swap(true, Ordering::AcqRel)).then_some(())
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so no queue of this port is in use; stop then
        // close releases the device and the mbufs its rings still hold.
        unsafe {
            let ret = dpdk_sys::rte_eth_dev_stop(self.id);
            if ret < 0 {
                tracing::warn!(port = self.id, ret, "rte_eth_dev_stop failed");
            }
            let ret = dpdk_sys::rte_eth_dev_close(self.id);
            if ret < 0 {
                tracing::warn!(port = self.id, ret, "rte_eth_dev_close failed");
            }
        }
        if self.hotplugged {
            hotplug_remove(&self.name);
        }
    }
}

/// One rx queue of a port, owned by one thread at a time.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _shared: Arc<PortShared>,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl RxQueue {
    /// The queue's index on its port.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the burst's free slots; returns how many frames arrived.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
        let (ptr, room) = burst.spare_raw();
        // SAFETY: this queue handle is unique and !Sync, so no other thread polls the
        // queue; ptr has room for `room` pointers, and rx_burst writes at most that many.
        let n = unsafe { dpdk_sys::roam_eth_rx_burst(self.port, self.queue, ptr, room.min(u16::MAX as usize) as u16) }
            as usize;
        // SAFETY: rx_burst stored n owned mbufs at those slots.
        unsafe { burst.commit(n) };
        n
    }

    /// The port id this queue belongs to.
    pub fn port_id(&self) -> u16 {
        self.port
    }
}

/// One tx queue of a port, owned by one thread at a time.
pub struct TxQueue {
    port: u16,
    queue: u16,
    _shared: Arc<PortShared>,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl TxQueue {
    /// The queue's index on its port.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Sends from the front of the burst; returns how many the device took. Frames it did
    /// not take stay in the burst (retry them, or `clear()` to drop them).
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
        let (ptr, len) = burst.filled_raw();
        // SAFETY: this queue handle is unique and !Sync; ptr holds len owned mbufs, and the
        // device takes ownership of the first n it returns.
        let n = unsafe { dpdk_sys::roam_eth_tx_burst(self.port, self.queue, ptr, len.min(u16::MAX as usize) as u16) }
            as usize;
        burst.consumed_front(n);
        n
    }

    /// The port id this queue belongs to.
    pub fn port_id(&self) -> u16 {
        self.port
    }
}

/// Whether the vhost device `vid` still exists and serves `socket`: its vhost-user
/// connection is open. The link of a `net_vhost` port goes down both when its VM stops
/// (QEMU stops the rings: a pause, or a migration's last phase) and when the connection
/// closes (QEMU quit); only in the first case does the device still exist. A `vid` freed
/// by a closed connection may be taken by another connection: that one serves another
/// socket.
pub fn vhost_serves(vid: i32, socket: &std::path::Path) -> bool {
    let mut buf = [0 as std::ffi::c_char; 4096];
    // SAFETY: buf outlives the call and its length is passed; a vid that names no device
    // returns an error.
    let ret = unsafe { dpdk_sys::rte_vhost_get_ifname(vid, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        return false;
    }
    // SAFETY: on success DPDK wrote a NUL-terminated name into buf.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    name.to_bytes() == std::os::unix::ffi::OsStrExt::as_bytes(socket.as_os_str())
}
