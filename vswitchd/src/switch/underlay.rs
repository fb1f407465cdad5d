//! The uplink's VXLAN underlay: configured by `set-underlay`, kept in the state file, and
//! kept resolved. vswitchd sends an ARP request for each leaf VTEP out of the uplink every
//! second until it answers, then every 30 s; the workers hand the answers (which the
//! pipeline sets apart as `underlay` frames) to the control thread over a channel, and a
//! new MAC goes into the data path's configuration at once.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Result;
use pipeline::vxlan::vtep_arp_request;
use pipeline::{MacAddr, PortId};

use super::{refuse, Switch};
use crate::api::views::{LeafVtepView, UnderlayView};
use crate::api::{ApiError, ErrorCode, Underlay};

/// How often an unresolved leaf VTEP is asked for.
const ASK_UNRESOLVED: Duration = Duration::from_secs(1);
/// How often a resolved one is asked again (a leaf whose MAC changed answers).
const ASK_RESOLVED: Duration = Duration::from_secs(30);

/// When each leaf VTEP was last asked for.
#[derive(Default)]
pub(super) struct Resolver {
    asked: Vec<(Ipv4Addr, Instant)>,
}

impl Switch {
    /// Configures the underlay (replacing one; the MACs of leaf VTEPs that stay are kept).
    pub fn set_underlay(&mut self, u: Underlay) -> Result<UnderlayView> {
        let Some(uplink) = &self.uplink else {
            return Err(refuse(ErrorCode::Invalid, "an underlay needs the uplink (vswitchd --uplink)".into()));
        };
        let uplink_mac = MacAddr(uplink.mac_addr()?);
        let mut checked = u.check(uplink_mac).map_err(ApiError::from)?;
        let known = self.config.underlay().map(|o| o.remotes.clone()).unwrap_or_default();
        for r in &mut checked.remotes {
            r.mac = r.mac.or_else(|| known.iter().find(|k| k.ip == r.ip).and_then(|k| k.mac));
        }
        let mut cfg = self.config.clone();
        cfg.set_underlay(Some(checked)).map_err(|e| refuse(ErrorCode::Invalid, e.to_string()))?;
        let previous = self.underlay.replace(u);
        let old = std::mem::replace(&mut self.config, cfg);
        if let Err(e) = self.save() {
            self.config = old;
            self.underlay = previous;
            return Err(e);
        }
        self.workers.push_config(&self.config);
        self.resolver = Resolver::default();
        self.poll_underlay();
        Ok(self.underlay_view().expect("just configured"))
    }

    /// Puts the leaf VTEPs' MACs the workers passed on into the data path's configuration
    /// (not those configured in advance).
    fn learn_leaf_vteps(&mut self, learned: &[(Ipv4Addr, MacAddr)]) {
        let (Some(u), Some(configured)) = (self.config.underlay(), self.underlay.as_ref()) else { return };
        let mut updated = u.clone();
        for &(ip, mac) in learned {
            let fixed = configured.leaf_macs.contains_key(&ip);
            if let Some(r) = updated.remotes.iter_mut().find(|r| r.ip == ip && r.mac != Some(mac) && !fixed) {
                tracing::info!(vtep = %ip, %mac, previous = ?r.mac, "leaf VTEP resolved");
                r.mac = Some(mac);
            }
        }
        if Some(&updated) != self.config.underlay() {
            let mut cfg = self.config.clone();
            if cfg.set_underlay(Some(updated)).is_ok() {
                self.config = cfg;
                self.workers.push_config(&self.config);
            }
        }
    }

    /// The underlay as `show` reports it.
    pub(super) fn underlay_view(&self) -> Option<UnderlayView> {
        let u = self.config.underlay()?;
        Some(UnderlayView {
            local: u.ip,
            mac: u.mac,
            mtu: u.mtu,
            vm_mtu: u.mtu.saturating_sub(pipeline::vxlan::OVERHEAD as u16),
            leaf: u.remotes.iter().map(|r| LeafVtepView { ip: r.ip, mac: r.mac }).collect(),
        })
    }

    /// Takes the leaf VTEPs' answers the workers passed on, and asks those due.
    pub fn poll_underlay(&mut self) {
        let learned: Vec<(Ipv4Addr, MacAddr)> = self.learned.try_iter().collect();
        if !learned.is_empty() {
            self.learn_leaf_vteps(&learned);
        }
        let Some(up) = self.uplink.as_ref().map(|p| PortId(p.id())) else { return };
        let now = Instant::now();
        let (Some(u), Some(configured)) = (self.config.underlay(), self.underlay.as_ref()) else { return };
        let mut frames = Vec::new();
        for r in u.remotes.iter().filter(|r| !configured.leaf_macs.contains_key(&r.ip)) {
            let every = if r.mac.is_some() { ASK_RESOLVED } else { ASK_UNRESOLVED };
            let asked = &mut self.resolver.asked;
            let due = match asked.iter_mut().find(|(ip, _)| *ip == r.ip) {
                Some((_, at)) if now.duration_since(*at) < every => false,
                Some((_, at)) => {
                    *at = now;
                    true
                }
                None => {
                    asked.push((r.ip, now));
                    true
                }
            };
            if due {
                frames.push(vtep_arp_request(u.mac, u.ip, r.ip).to_vec());
            }
        }
        if !frames.is_empty() {
            if let Err(e) = self.workers.inject(up, frames) {
                tracing::warn!(error = %e, "cannot ask for the leaf VTEPs");
            }
        }
    }
}
