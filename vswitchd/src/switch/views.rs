//! What `show`, `fdb` and `stats` answer: the switch's state and counters as the API's
//! JSON views.

use anyhow::Result;
use pipeline::{DropReason, PortId};
use serde_json::{json, Value as Json};

use super::Switch;

impl Switch {
    pub(super) fn port_name(&self, id: PortId) -> String {
        if self.uplink.as_ref().is_some_and(|u| u.id() == id) {
            return "uplink".into();
        }
        self.vms
            .values()
            .find(|v| v.port.id() == id)
            .map(|v| v.attach.name.clone())
            .unwrap_or_else(|| format!("port{id}"))
    }

    pub fn show(&self) -> Result<Json> {
        let mut ports = Vec::new();
        if let Some(u) = &self.uplink {
            ports.push(json!({ "name": "uplink", "port": u.id(), "device": u.name(), "link_up": u.link().map(|l| l.up).unwrap_or(false) }));
        }
        let vms: Vec<Json> = self
            .vms
            .values()
            .map(|v| {
                json!({
                    "name": v.attach.name, "port": v.port.id(), "device": v.port.name(), "socket": v.attach.socket,
                    "mac": v.mac.to_string(), "segment": v.attach.segment, "ipv4": v.attach.ipv4, "ipv6": v.attach.ipv6,
                    "port_security": v.attach.port_security, "link_up": v.port.link().map(|l| l.up).unwrap_or(false),
                })
            })
            .collect();
        for v in &vms {
            ports.push(json!({ "name": v["name"], "port": v["port"], "device": v["device"], "link_up": v["link_up"] }));
        }
        let failed: Vec<Json> = self
            .failed
            .values()
            .map(|f| json!({ "name": f.attachment.name, "mac": f.attachment.mac, "segment": f.attachment.segment, "socket": f.attachment.socket, "device": f.attachment.device, "error": f.error }))
            .collect();
        Ok(json!({
            "ports": ports,
            "vms": vms,
            "failed": failed,
            "segments": self.segments.values().collect::<Vec<_>>(),
            "workers": (0..self.workers.len()).map(|w| json!({ "id": w, "ports": self.workers.owned(w).map(|p| self.port_name(p)).collect::<Vec<_>>() })).collect::<Vec<_>>(),
            "mbufs": { "capacity": self.pool.capacity(), "available": self.pool.available() },
        }))
    }

    pub fn fdb(&self) -> Result<Json> {
        let entries: Vec<Json> = self
            .table
            .entries()
            .into_iter()
            .map(|(k, v)| {
                let seg = self.slots.id(k.segment()).unwrap_or(u32::MAX);
                json!({ "mac": k.mac().to_string(), "segment": seg, "port": v.port(), "port_name": self.port_name(v.port()), "kind": v.kind().name() })
            })
            .collect();
        Ok(
            json!({ "entries": entries, "capacity": self.table.capacity(), "memory_bytes": self.table.memory_bytes(), "search": self.table.search().name() }),
        )
    }

    pub fn stats(&self) -> Result<Json> {
        let snap = self.workers.snapshot()?;
        let mut ports = Vec::new();
        let last = snap.pipeline.ports.len().max(snap.worker.ports.len()).max(self.config.max_port() as usize + 1);
        let (mut all_in, mut all_out) = (true, true);
        for id in 0..last {
            let c = snap.pipeline.ports.get(id).copied().unwrap_or_default();
            let t = snap.worker.ports.get(id).copied().unwrap_or_default();
            let id = id as PortId;
            if c.rx == 0 && c.tx == 0 && t == Default::default() && self.config.port(id).is_none() {
                continue;
            }
            let (in_balanced, out_balanced) = (c.balanced(), t.balanced(c.tx));
            all_in &= in_balanced;
            all_out &= out_balanced;
            let drops: serde_json::Map<String, Json> = DropReason::ALL
                .iter()
                .filter(|r| c.dropped[**r as usize] > 0)
                .map(|r| (r.name().to_string(), json!(c.dropped[*r as usize])))
                .collect();
            let mut port = json!({
                "port": id, "name": self.port_name(id),
                "rx": c.rx, "forwarded": c.forwarded, "flooded": c.flooded, "dropped": c.dropped_total(), "drops": drops,
                "tx": c.tx, "rewritten": c.rewritten, "flood_copies": c.flood_copies, "flood_copy_failures": c.flood_copy_failures,
                "arp_replies": c.arp_replies, "announcements": c.announcements,
                "balanced": in_balanced, "out_balanced": out_balanced,
            });
            if let (Some(obj), Json::Object(tx)) = (port.as_object_mut(), serde_json::to_value(t)?) {
                obj.extend(tx);
            }
            ports.push(port);
        }
        Ok(
            json!({ "ports": ports, "balanced": all_in && all_out, "rx_balanced": all_in, "out_balanced": all_out, "idle_loops": snap.worker.idle_loops, "sleeps": snap.worker.sleeps }),
        )
    }
}
