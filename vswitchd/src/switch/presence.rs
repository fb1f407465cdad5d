//! Whether each VM is here: the control thread follows every VM port's link (every 5 ms),
//! its vhost connection and which of its queues the guest enabled. Down, the port's frames are held; away (connection closed,
//! or down longer than the hold), its neighbours' frames go to the leaf; up again, it is
//! local and gets what was held.

use std::time::{Duration, Instant};

use pipeline::PortId;

use super::{Switch, Vm};
use crate::api::views::{AwayReason, VmState};
use crate::api::Event;
use crate::worker::Link;

/// Whether a VM is here, as the control thread follows its port (`VmState` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    Booting,
    Up,
    /// Down since then; away once that is longer than the hold.
    Stopped(Instant),
    Away(AwayReason),
}

impl Presence {
    pub(super) fn state(self) -> (VmState, Option<AwayReason>) {
        match self {
            Presence::Booting => (VmState::Booting, None),
            Presence::Up => (VmState::Up, None),
            Presence::Stopped(_) => (VmState::Stopped, None),
            Presence::Away(r) => (VmState::Away, Some(r)),
        }
    }
}

impl Vm {
    /// Whether the VM's vhost-user connection closed (false for other ports, and for a
    /// vhost port whose device was never seen).
    fn disconnected(&self) -> bool {
        match (&self.attach.socket, self.vid) {
            (Some(socket), Some(vid)) => !dpdk::vhost_serves(vid, socket),
            _ => false,
        }
    }
}

/// How long a VM's link may stay down before it is away, unless set (`away_after_ms`).
pub const AWAY_AFTER: Duration = Duration::from_millis(200);

impl Switch {
    /// Link changes since the last call, to the ports' owner workers and as events. A VM
    /// whose link went down (paused, or in the last phase of a live migration) has the
    /// frames its port refuses held; once its vhost connection has closed, or its link
    /// has stayed down longer than the hold, it is away: its neighbours' frames for it go
    /// to the leaf (which routes by IP and knows where it is now), its held frames from
    /// them too. When its link comes back it is here again.
    pub fn poll_links(&mut self) {
        let now = Instant::now();
        let mut changes = Vec::new();
        for v in self.vms.values_mut() {
            // The guest's queue pairs as it enables them (a Linux guest: one a vCPU).
            while let Some(e) = v.port.vhost_queue_event() {
                if !e.rx {
                    tracing::info!(vm = %v.attach.name, queue = e.queue, enabled = e.enabled, "tx queue");
                    self.workers.tx_queue(PortId(v.port.id()), e.queue, e.enabled);
                }
            }
            let up = v.port.link().map(|l| l.up).unwrap_or(false);
            if up && v.presence != Presence::Up {
                v.vid = v.port.vhost_device();
            }
            let next = match (v.presence, up) {
                (Presence::Up, true) => continue,
                (_, true) => Presence::Up,
                (Presence::Up, false) if v.disconnected() => Presence::Away(AwayReason::Disconnected),
                (Presence::Up, false) => Presence::Stopped(now),
                (Presence::Stopped(since), false) => {
                    if v.disconnected() {
                        Presence::Away(AwayReason::Disconnected)
                    } else if now.duration_since(since) >= self.away_after {
                        Presence::Away(AwayReason::HoldExpired)
                    } else {
                        continue;
                    }
                }
                (Presence::Booting | Presence::Away(_), false) => continue,
            };
            changes.push((v.attach.name.clone(), PortId(v.port.id()), v.presence, next));
            v.presence = next;
        }
        for (name, port, was, now) in changes {
            if was == Presence::Up && now != Presence::Up {
                tracing::info!(vm = %name, up = false, "link");
                self.workers.link(port, Link::Down);
                self.emit(Event::Link { name: name.clone(), up: false });
            }
            match now {
                Presence::Up => {
                    if matches!(was, Presence::Away(_) | Presence::Booting) {
                        // Here (arrived, or back after a pause or a migration that failed):
                        // local first, so that its neighbours' frames come straight here,
                        // then its held frames.
                        self.set_away(port, false);
                    }
                    tracing::info!(vm = %name, up = true, "link");
                    self.workers.link(port, Link::Up);
                    self.emit(Event::Link { name, up: true });
                }
                Presence::Stopped(_) => {}
                Presence::Away(reason) => {
                    tracing::info!(vm = %name, reason = reason.as_str(), "away");
                    self.set_away(port, true);
                    self.workers.link(port, Link::Away);
                    self.emit(Event::Away { name, reason });
                }
                Presence::Booting => unreachable!("never a change"),
            }
        }
    }

    /// Marks a VM's port away (or here again) in the configuration every worker uses.
    fn set_away(&mut self, port: PortId, away: bool) {
        match self.config.set_away(port, away) {
            Ok(true) => self.workers.push_config(&self.config),
            Ok(false) => {}
            Err(e) => tracing::warn!(%port, "cannot mark the port {}: {e}", if away { "away" } else { "here" }),
        }
    }
}
