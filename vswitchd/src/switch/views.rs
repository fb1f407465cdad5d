//! What `show`, `fdb` and `stats` answer: the switch's state and counters as the API's
//! typed views (`roam_api::views`).

use anyhow::Result;
use pipeline::table::{key_parts, port_of};
use pipeline::{DropReason, PortId, SegmentId};

use super::Switch;
use crate::api::views::{
    FailedView, FdbEntry, FdbSize, FdbView, MbufsView, MetricsView, PortStats, PortView, QueueView, RxQueueStats,
    ShowView, StatsView, TxQueueStats, VmView, WorkerStats, WorkerView,
};
use crate::placement::Workers;
use crate::worker::QueueUse;

impl Switch {
    pub(super) fn port_name(&self, id: PortId) -> String {
        if self.uplink.as_ref().is_some_and(|u| u.id() == id.0) {
            return "uplink".into();
        }
        self.vms
            .values()
            .find(|v| v.port.id() == id.0)
            .map(|v| v.attach.name.clone())
            .unwrap_or_else(|| format!("port{id}"))
    }

    pub fn show(&self) -> ShowView {
        let vms: Vec<VmView> = self
            .vms
            .values()
            .map(|v| {
                let (state, away) = v.presence.state();
                VmView {
                    name: v.attach.name.clone(),
                    port: PortId(v.port.id()),
                    device: v.port.name().to_string(),
                    socket: v.attach.socket.clone(),
                    mac: v.mac,
                    segment: v.attach.segment,
                    ipv4: v.attach.ipv4.clone(),
                    ipv6: v.attach.ipv6.clone(),
                    port_security: v.attach.port_security,
                    link_up: v.port.link().map(|l| l.up).unwrap_or(false),
                    state,
                    away,
                }
            })
            .collect();
        let uplink = self.uplink.iter().map(|u| PortView {
            name: "uplink".into(),
            port: PortId(u.id()),
            device: u.name().to_string(),
            link_up: u.link().map(|l| l.up).unwrap_or(false),
        });
        let ports = uplink
            .chain(vms.iter().map(|v| PortView {
                name: v.name.clone(),
                port: v.port,
                device: v.device.clone(),
                link_up: v.link_up,
            }))
            .collect();
        let failed = self
            .failed
            .values()
            .map(|f| FailedView {
                name: f.attachment.name.clone(),
                mac: f.attachment.mac,
                segment: f.attachment.segment,
                socket: f.attachment.socket.clone(),
                device: f.attachment.device.clone(),
                error: f.error.clone(),
            })
            .collect();
        ShowView {
            ports,
            vms,
            failed,
            segments: self.segments.values().cloned().collect(),
            workers: (0..self.workers.len())
                .map(|w| {
                    let (rx, tx) = self.workers.queues(w);
                    let view = |q: Vec<(PortId, u16)>| {
                        q.into_iter().map(|(p, queue)| QueueView { port: self.port_name(p), queue }).collect()
                    };
                    WorkerView {
                        id: w,
                        ports: self.workers.owned(w).map(|p| self.port_name(p)).collect(),
                        rx_queues: view(rx),
                        tx_queues: view(tx),
                    }
                })
                .collect(),
            mbufs: self.mbufs(),
            underlay: self.underlay_view(),
        }
    }

    pub fn fdb(&self) -> FdbView {
        let entries = self
            .table
            .entries()
            .into_iter()
            .filter_map(|(k, v)| {
                let (mac, slot) = key_parts(k);
                let segment: SegmentId = self.slots.id(slot)?;
                let port = port_of(v);
                let away = self.config.vnic(port).is_some_and(|c| c.away);
                let kind = if away { "away".into() } else { v.kind().name().into() };
                Some(FdbEntry { mac, segment, port, port_name: self.port_name(port), kind })
            })
            .collect();
        FdbView {
            entries,
            capacity: self.table.capacity(),
            memory_bytes: self.table.memory_bytes(),
            search: self.table.search().name().into(),
        }
    }

    pub fn stats(&self) -> Result<StatsView> {
        let snapshots = self.workers.snapshots()?;
        let workers = snapshots.iter().enumerate().map(|(w, s)| self.worker_stats(w, s)).collect();
        let snap = Workers::sum(&snapshots);
        let mut ports = Vec::new();
        let last = snap.pipeline.ports.len().max(snap.worker.ports.len()).max(self.config.max_port().index() + 1);
        for i in 0..last {
            let c = snap.pipeline.ports.get(i).copied().unwrap_or_default();
            let out = snap.worker.ports.get(i).copied().unwrap_or_default();
            let id = PortId(i as u16);
            if c.rx == 0 && c.tx == 0 && out == Default::default() && self.config.port(id).is_none() {
                continue;
            }
            ports.push(PortStats {
                port: id,
                name: self.port_name(id),
                input: c,
                dropped: c.dropped_total(),
                drops: DropReason::ALL
                    .iter()
                    .filter(|r| c.dropped[**r as usize] > 0)
                    .map(|r| (r.name().to_string(), c.dropped[*r as usize]))
                    .collect(),
                balanced: c.balanced(),
                out_balanced: out.balanced(c.tx),
                out,
            });
        }
        let rx_balanced = ports.iter().all(|p| p.balanced);
        let out_balanced = ports.iter().all(|p| p.out_balanced);
        Ok(StatsView {
            ports,
            balanced: rx_balanced && out_balanced,
            rx_balanced,
            out_balanced,
            idle_loops: snap.worker.idle_loops,
            sleeps: snap.worker.sleeps,
            workers,
            mbufs: self.mbufs(),
            fdb: FdbSize { entries: self.table.len() as u64, capacity: self.table.capacity() as u64 },
            fixups: self.fixups,
        })
    }

    /// The counters and state of this moment as a Prometheus exposition.
    pub fn metrics(&self) -> Result<MetricsView> {
        let text = crate::api::metrics::vswitchd(&self.stats()?, &self.show(), env!("CARGO_PKG_VERSION"));
        Ok(MetricsView { text })
    }

    fn mbufs(&self) -> MbufsView {
        MbufsView { capacity: self.pool.capacity() as u64, available: self.pool.available() as u64 }
    }

    fn worker_stats(&self, id: usize, s: &crate::worker::Snapshot) -> WorkerStats {
        let c = &s.worker;
        let (mut rx_queues, mut tx_queues) = (Vec::new(), Vec::new());
        for q in &s.queues {
            match *q {
                QueueUse::Rx(port, queue, frames) => {
                    rx_queues.push(RxQueueStats { port: self.port_name(port), queue, frames })
                }
                QueueUse::Tx(port, queue, enabled) => {
                    let sent = c.ports.get(port.index()).map_or(0, |p| p.sent);
                    tx_queues.push(TxQueueStats { port: self.port_name(port), queue, enabled, sent })
                }
            }
        }
        WorkerStats {
            id,
            busy_cycles: c.busy_cycles,
            idle_cycles: c.idle_cycles,
            tsc_hz: dpdk::time::tsc_hz(),
            bursts: c.bursts,
            frames: c.frames,
            idle_loops: c.idle_loops,
            sleeps: c.sleeps,
            rx_queues,
            tx_queues,
        }
    }
}
