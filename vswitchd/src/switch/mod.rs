//! The control plane's model of the switch: segments, VMs and their ports, the uplink, and
//! the MAC table's static entries. Every change is validated first, applied to DPDK, the
//! workers (`placement`) and the MAC table, then saved; a request that fails changes
//! nothing. What `show`, `fdb` and `stats` answer is built in `views`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use crossbeam::channel::{Receiver, Sender};
use dpdk::{Eal, Mempool, Port, PortConfig};
use pipeline::table::{key, value, EntryKind, Key, MacTable, Value};
use pipeline::{
    MacAddr, PortId, PortRole, SegmentConfig, SegmentId, SegmentSlot, SegmentSlots, SwitchConfig, VnicConfig,
};

use crate::api::views::{Announced, Attached, CrashRequested, Detached, FixupStats, Retried, SegmentSet};
use crate::api::{
    ApiError, ArpAnnounce, Attach, CheckedAttach, CheckedSegment, ErrorCode, Event, PortSpec, Segment, Underlay,
};
use crate::placement::Workers;
use crate::state::{FailedAttachment, State};
use crate::worker::Command;

mod presence;
mod underlay;
mod views;

use presence::Presence;
pub use presence::AWAY_AFTER;

/// A refusal with its API code (for `bail!`-style early returns).
fn refuse(code: ErrorCode, message: String) -> anyhow::Error {
    ApiError::new(code, message).into()
}

/// What an attachment has done so far (what a failure must undo).
struct AttachSteps {
    port: Option<PortId>,
    config: Option<SwitchConfig>,
    keys: Vec<Key>,
}

struct Vm {
    attach: Attach,
    mac: MacAddr,
    port: Port,
    presence: Presence,
    /// The vhost device behind the port, as last seen while its link was up.
    vid: Option<i32>,
}

pub struct Switch {
    eal: Eal,
    pool: Arc<Mempool>,
    table: Arc<MacTable>,
    slots: SegmentSlots,
    config: SwitchConfig,
    segments: BTreeMap<SegmentId, Segment>,
    vms: BTreeMap<String, Vm>,
    /// Attachments that could not be restored, with the reason (kept in the state file).
    failed: BTreeMap<String, FailedAttachment>,
    /// Whether debug requests (`debug-crash-worker`) are served.
    debug_api: bool,
    uplink: Option<Port>,
    workers: Workers,
    state_path: PathBuf,
    subscribers: Vec<Sender<Event>>,
    /// How long a VM's link may stay down (its connection open) before it is away.
    away_after: Duration,
    /// The underlay as configured (what the state file keeps).
    underlay: Option<Underlay>,
    resolver: underlay::Resolver,
    /// Leaf VTEPs' ARP answers, from the workers.
    learned: Receiver<(std::net::Ipv4Addr, MacAddr)>,
    /// Fix-ups served since start.
    fixups: FixupStats,
}

impl Switch {
    pub fn new(
        eal: Eal,
        pool: Arc<Mempool>,
        table: Arc<MacTable>,
        workers: Vec<Sender<Command>>,
        state_path: PathBuf,
        learned: Receiver<(std::net::Ipv4Addr, MacAddr)>,
    ) -> Switch {
        Switch {
            eal,
            pool,
            table,
            slots: SegmentSlots::new(),
            config: SwitchConfig::new(),
            segments: BTreeMap::new(),
            vms: BTreeMap::new(),
            failed: BTreeMap::new(),
            debug_api: false,
            uplink: None,
            workers: Workers::new(workers),
            state_path,
            subscribers: Vec::new(),
            away_after: AWAY_AFTER,
            underlay: None,
            resolver: underlay::Resolver::default(),
            learned,
            fixups: FixupStats::default(),
        }
    }

    /// How long a VM's link may stay down before it is away (`away_after_ms`).
    pub fn set_away_after(&mut self, hold: Duration) {
        self.away_after = hold;
    }

    /// Opens the uplink device (`name,args`) with `queues` rx and tx queues.
    pub fn set_uplink(&mut self, devargs: &str, queues: u16) -> Result<()> {
        let (name, args) = devargs.split_once(',').unwrap_or((devargs, ""));
        let cfg = PortConfig { rx_queues: queues, tx_queues: queues, ..PortConfig::default() };
        let port = Port::create_vdev(&self.eal, name, args, &cfg, self.pool.clone())
            .with_context(|| format!("uplink {devargs}"))?;
        let mut cfg = self.config.clone();
        cfg.set_port(PortId(port.id()), PortRole::Uplink)?;
        self.workers.give(&self.eal, &port, false)?;
        self.config = cfg;
        self.uplink = Some(port);
        self.sync_anycast_entries()?;
        self.workers.push_config(&self.config);
        Ok(())
    }

    /// Serves debug requests (`vswitchd --debug-api`; tests only).
    pub fn enable_debug_api(&mut self) {
        self.debug_api = true;
    }

    /// Applies a saved state (at start-up). An attachment that cannot be made again (its
    /// device refuses, its socket path is taken) is kept as failed, with the reason: in
    /// the state file, in `show`, and tried again by `retry` and at the next start.
    pub fn restore(&mut self, state: State) -> Result<()> {
        if let Some(u) = state.underlay {
            self.set_underlay(u).context("restoring the underlay")?;
        }
        for mut s in state.segments {
            // State files from before segments and VLANs were separate: the id was the VLAN.
            if s.vlan.is_none() && !s.native && s.vni.is_none() {
                tracing::info!(
                    segment = %s.segment,
                    "restoring a segment saved without its encapsulation: VLAN {}",
                    s.segment
                );
                s.vlan = u16::try_from(s.segment.get()).ok().and_then(pipeline::VlanId::new);
            }
            self.set_anycast(s).context("restoring a segment")?;
        }
        let failed = state.failed.into_iter().map(|f| f.attachment);
        for a in state.attachments.into_iter().chain(failed) {
            let name = a.name.clone();
            if let Err(e) = self.attach(a.clone()) {
                let error = format!("{e:#}");
                tracing::error!(vm = %name, error = %error, "cannot restore attachment; kept as failed (vsctl retry)");
                self.failed.insert(name, FailedAttachment { attachment: a, error });
            }
        }
        self.save()
    }

    /// Tries failed attachments again: the one named, or all. Answers which succeeded and,
    /// for the others, why not (they stay failed).
    pub fn retry(&mut self, name: Option<&str>) -> Result<Retried> {
        let names: Vec<String> = match name {
            Some(n) if self.failed.contains_key(n) => vec![n.to_string()],
            Some(n) => return Err(refuse(ErrorCode::NotFound, format!("no failed attachment named {n}"))),
            None => self.failed.keys().cloned().collect(),
        };
        let (mut attached, mut still_failed) = (Vec::new(), BTreeMap::new());
        for n in names {
            let Some(f) = self.failed.remove(&n) else { continue };
            match self.attach(f.attachment.clone()) {
                Ok(_) => attached.push(n),
                Err(e) => {
                    let error = format!("{e:#}");
                    still_failed.insert(n.clone(), error.clone());
                    self.failed.insert(n, FailedAttachment { attachment: f.attachment, error });
                }
            }
        }
        self.save()?;
        Ok(Retried { attached, failed: still_failed })
    }

    /// Debug only: makes worker `w` panic (which must take the daemon down).
    pub fn crash_worker(&mut self, w: usize) -> Result<CrashRequested> {
        if !self.debug_api {
            return Err(refuse(ErrorCode::Disabled, "debug requests are off (start vswitchd with --debug-api)".into()));
        }
        self.workers.crash(w)?;
        Ok(CrashRequested { worker: w })
    }

    fn save(&self) -> Result<()> {
        let state = State {
            segments: self.segments.values().cloned().collect(),
            underlay: self.underlay.clone(),
            attachments: self.vms.values().map(|v| v.attach.clone()).collect(),
            failed: self.failed.values().cloned().collect(),
        };
        state.save(&self.state_path)
    }

    fn emit(&mut self, e: Event) {
        self.subscribers.retain(|s| s.send(e.clone()).is_ok());
    }

    pub fn subscribe(&mut self, s: Sender<Event>) {
        self.subscribers.push(s);
    }

    /// The anycast entries the MAC table should hold, installed or removed to match.
    fn sync_anycast_entries(&mut self) -> Result<()> {
        let wanted: Vec<(Key, Value)> =
            self.config.table_entries().into_iter().filter(|(_, v)| v.kind() == EntryKind::Anycast).collect();
        self.table.remove_where(|k, v| v.kind() == EntryKind::Anycast && !wanted.iter().any(|(wk, _)| *wk == k));
        for (k, v) in wanted {
            self.table.insert(k, v)?;
        }
        Ok(())
    }

    pub fn set_anycast(&mut self, s: Segment) -> Result<SegmentSet> {
        let CheckedSegment { mac, subnets, encap } = s.check().map_err(ApiError::from)?;
        let mut slots = self.slots.clone();
        let slot = slots.intern(s.segment)?;
        let mut cfg = self.config.clone();
        cfg.set_segment(slot, SegmentConfig { encap, anycast: mac, subnets, arp_responder: s.arp_responder })?;
        let previous = self.segments.insert(s.segment, s.clone());
        let (old_cfg, old_slots) =
            (std::mem::replace(&mut self.config, cfg), std::mem::replace(&mut self.slots, slots));
        if let Err(e) = self.sync_anycast_entries().and_then(|_| self.save()) {
            self.config = old_cfg;
            self.slots = old_slots;
            match previous {
                Some(p) => self.segments.insert(s.segment, p),
                None => self.segments.remove(&s.segment),
            };
            let _ = self.sync_anycast_entries();
            return Err(e);
        }
        self.workers.push_config(&self.config);
        Ok(SegmentSet { segment: s.segment, slot: slot.0 })
    }

    pub fn attach(&mut self, a: Attach) -> Result<Attached> {
        let CheckedAttach { mac, port: spec, extra } = a.check().map_err(ApiError::from)?;
        if self.vms.contains_key(&a.name) {
            return Err(refuse(ErrorCode::Conflict, format!("VM {} is already attached", a.name)));
        }
        if let Some(f) = self.failed.get(&a.name) {
            let n = &a.name;
            let why = format!("VM {n} has a failed attachment ({}): `vsctl retry {n}`, or detach it first", f.error);
            return Err(refuse(ErrorCode::Conflict, why));
        }
        let slot = self.slots.slot(a.segment).ok_or_else(|| {
            refuse(ErrorCode::NotFound, format!("segment {} is not configured (set-anycast first)", a.segment))
        })?;
        if self.vms.values().any(|v| v.mac == mac && v.attach.segment == a.segment) {
            return Err(refuse(ErrorCode::Conflict, format!("MAC {mac} is already attached in segment {}", a.segment)));
        }
        let extra = self.extra_keys(&extra, slot, a.segment)?;
        let vhost = matches!(spec, PortSpec::Vhost { .. });
        let (name, args, cfg) = match spec {
            PortSpec::Vhost { socket, server, queues } => {
                if server {
                    clear_stale_socket(std::path::Path::new(&socket))?;
                }
                let args = format!("iface={socket},client={},queues={queues}", if server { 0 } else { 1 });
                // A tx queue per queue pair: each worker that polls one of the guest's rx
                // queues can send on a queue of its own.
                let cfg = PortConfig { rx_queues: queues, tx_queues: queues, ..PortConfig::default() };
                (self.free_vhost_name(), args, cfg)
            }
            PortSpec::Device { driver, args, queues } => {
                (driver, args, PortConfig { rx_queues: queues, tx_queues: queues, ..PortConfig::default() })
            }
        };
        let port = Port::create_vdev(&self.eal, &name, &args, &cfg, self.pool.clone())?;
        let id = PortId(port.id());
        let mut cfg = self.config.clone();
        let mut vnic = VnicConfig::new(mac, slot);
        vnic.ipv4 = a.ipv4.clone();
        vnic.ipv6 = a.ipv6.clone();
        vnic.port_security = a.port_security;
        // Not here until its link comes up: a migration's destination port is attached
        // before the VM arrives, and its neighbours here must keep reaching it where it
        // still runs, through the leaf.
        vnic.away = true;
        cfg.set_port(id, PortRole::Vnic(vnic))?;
        // In this order, each step undone by `undo_attach` if a later one fails: the workers
        // get the port's queues, then the configuration (and use it), and only then do the
        // port's MACs appear in the table, where every worker's lookups see them at once.
        let mut done = AttachSteps { port: None, config: None, keys: Vec::new() };
        let result = (|| -> Result<()> {
            self.workers.give(&self.eal, &port, vhost)?;
            done.port = Some(id);
            done.config = Some(std::mem::replace(&mut self.config, cfg));
            self.workers.push_config(&self.config);
            for k in [key(mac, slot)].iter().chain(&extra) {
                self.table.insert(*k, value(id, EntryKind::Local))?;
                done.keys.push(*k);
            }
            self.vms
                .insert(a.name.clone(), Vm { attach: a.clone(), mac, port, presence: Presence::Booting, vid: None });
            // A restart must not lose an attachment we report as made.
            if let Err(e) = self.save() {
                self.vms.remove(&a.name);
                return Err(e);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.undo_attach(done);
            return Err(e);
        }
        tracing::info!(vm = %a.name, %mac, port = %id, segment = %a.segment, "attached");
        self.emit(Event::Attach {
            name: a.name.clone(),
            mac,
            segment: a.segment,
            ipv4: a.ipv4.clone(),
            ipv6: a.ipv6.clone(),
        });
        Ok(Attached { name: a.name, port: id, device: name })
    }

    /// The lowest `net_vhostN` no port uses. Names are reused, never counted up forever:
    /// DPDK PMDs may keep state per device name (its ring PMD keeps a removed device's
    /// rings, about 78 KiB a name, measured by `scripts/soak`).
    fn free_vhost_name(&self) -> String {
        (0..)
            .map(|n| format!("net_vhost{n}"))
            .find(|name| !self.vms.values().any(|v| v.port.name() == name))
            .expect("an unused name")
    }

    /// Undoes the steps of an attachment that failed half-way, last first.
    fn undo_attach(&mut self, done: AttachSteps) {
        for k in done.keys {
            self.table.remove(k);
        }
        if let Some(old) = done.config {
            self.config = old;
            self.workers.push_config(&self.config);
        }
        if let Some(id) = done.port {
            self.workers.take(id);
        }
    }

    /// The table keys of an attachment's extra MACs (checked ranges), refused if they do
    /// not fit or one is taken.
    fn extra_keys(&self, ranges: &[(MacAddr, u32)], slot: SegmentSlot, segment: SegmentId) -> Result<Vec<Key>> {
        let total: u64 = ranges.iter().map(|(_, n)| *n as u64).sum();
        if total as usize + self.table.len() >= self.table.capacity() {
            let (len, cap) = (self.table.len(), self.table.capacity());
            let why = format!("{total} extra MACs do not fit in the MAC table ({len} of {cap} used)");
            return Err(refuse(ErrorCode::Conflict, why));
        }
        let mut keys = Vec::with_capacity(total as usize);
        for &(base, count) in ranges {
            for i in 0..count {
                let k = key(base.plus(i), slot);
                if self.table.get(k).is_some() {
                    let why = format!("extra MAC {} is already in segment {segment}", base.plus(i));
                    return Err(refuse(ErrorCode::Conflict, why));
                }
                keys.push(k);
            }
        }
        Ok(keys)
    }

    pub fn detach(&mut self, name: &str) -> Result<Detached> {
        if !self.vms.contains_key(name) {
            if let Some(f) = self.failed.remove(name) {
                if let Err(e) = self.save() {
                    self.failed.insert(name.to_string(), f);
                    return Err(e);
                }
                tracing::info!(vm = %name, "failed attachment removed");
                return Ok(Detached { name: name.to_string(), port: None });
            }
        }
        let vm = self.vms.remove(name).ok_or_else(|| refuse(ErrorCode::NotFound, format!("no VM named {name}")))?;
        let id = PortId(vm.port.id());
        let slot = self.slots.slot(vm.attach.segment).ok_or_else(|| anyhow!("segment vanished"))?;
        self.table.remove(key(vm.mac, slot));
        for (base, count) in vm.attach.extra_macs.iter().filter_map(|r| r.check().ok()) {
            for i in 0..count {
                self.table.remove(key(base.plus(i), slot));
            }
        }
        let start = std::time::Instant::now();
        let _ = self.config.remove_port(id);
        self.workers.push_config(&self.config);
        self.workers.take(id);
        let workers_us = start.elapsed().as_micros();
        let a = vm.attach.clone();
        drop(vm); // stops, closes and removes the vhost device
        let device_us = start.elapsed().as_micros() - workers_us;
        self.save()?;
        let total_us = start.elapsed().as_micros();
        tracing::info!(vm = %name, workers_us, device_us, total_us, "detached");
        self.emit(Event::Detach {
            name: a.name.clone(),
            mac: a.mac,
            segment: a.segment,
            ipv4: a.ipv4.clone(),
            ipv6: a.ipv6.clone(),
        });
        Ok(Detached { name: name.to_string(), port: Some(id) })
    }

    /// ARP fix-up: gratuitous ARPs (or unsolicited NAs for IPv6) saying `ip` is at `mac`,
    /// unicast to each named VM, out of that VM's port only.
    pub fn arp_announce(&mut self, req: &ArpAnnounce) -> Result<Announced> {
        let mac = req.check().map_err(ApiError::from)?;
        let targets: Vec<(String, PortId, MacAddr)> = req
            .to
            .iter()
            .map(|n| {
                let vm = self.vms.get(n).ok_or_else(|| refuse(ErrorCode::NotFound, format!("no VM named {n}")))?;
                Ok((n.clone(), PortId(vm.port.id()), vm.mac))
            })
            .collect::<Result<_>>()?;
        let frames = targets
            .iter()
            .map(|(_, port, vm_mac)| {
                let frame = match req.ip {
                    IpAddr::V4(ip) => pipeline::fixup::gratuitous_arp(*vm_mac, ip, mac).to_vec(),
                    IpAddr::V6(ip) => pipeline::fixup::unsolicited_na(*vm_mac, ip, mac).to_vec(),
                };
                (*port, frame)
            })
            .collect();
        // Frames held for `ip` (either family) at a port that went down (its VM moved
        // away) go on towards `mac`: the leaf sends this once it routes `ip` to the VM's
        // new place.
        let (released, taken) = self.workers.announce((req.ip, mac), frames)?;
        self.fixups.requests += 1;
        self.fixups.frames += taken.iter().sum::<usize>() as u64;
        self.fixups.released += released as u64;
        let sent = targets.into_iter().zip(taken).map(|((name, _, _), n)| (name, n)).collect();
        Ok(Announced { ip: req.ip, mac, sent, released })
    }

    /// Stops the workers (at shutdown).
    pub fn stop(&mut self) {
        self.workers.stop();
    }
}

/// In server mode vswitchd creates the socket. One left by an earlier vswitchd that
/// crashed (a socket nobody listens on) is removed; anything else at that path is refused.
fn clear_stale_socket(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket; in server mode vswitchd creates the socket", path.display());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!("{} is in use: something listens on it", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
            tracing::info!(socket = %path.display(), "removed a stale vhost-user socket");
            Ok(())
        }
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}
