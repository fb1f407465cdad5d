//! leafd's metrics (Prometheus): what it has handled and done since start, and the sizes of
//! its tables, served by the same endpoint and exposition writer as vswitchd's
//! (`roam_api::metrics`).

use std::collections::BTreeMap;

use roam_api::metrics::{Exposition, Kind};

use crate::fib::Fib;
use crate::logic::{Action, Cause, Input};

/// The label values every family shows from the start (at zero until they occur), so that
/// a rate over them is defined from the first scrape.
const ANNOUNCEMENTS: [&str; 4] = ["garp", "rarp", "unsolicited-na", "dad-probe"];
const BGP_RECEIVED: [&str; 2] = ["best", "withdrawn"];
const VSWITCHD_EVENTS: [&str; 4] = ["link-up", "attach", "detach", "sync"];
const ACTIONS: [&str; 6] = ["route-local", "route-remote", "unroute", "advertise", "withdraw", "fix-up"];

/// leafd's figures since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Announcements trapped on the downlinks, by kind.
    pub announcements: BTreeMap<&'static str, u64>,
    /// BGP best paths and withdrawals received from GoBGP.
    pub bgp_received: BTreeMap<&'static str, u64>,
    /// vswitchd events (link-up, attach, detach, sync on connecting).
    pub vswitchd_events: BTreeMap<&'static str, u64>,
    /// Moves handled: a VM arrived behind this leaf (`in`) or left it (`out`).
    pub moves_in: u64,
    pub moves_out: u64,
    /// Actions done and failed, by kind.
    pub actions: BTreeMap<&'static str, u64>,
    pub action_errors: BTreeMap<&'static str, u64>,
    /// Fix-up frames vswitchd sent to VMs for this leaf, and held frames it released.
    pub fixup_frames: u64,
    pub fixup_released: u64,
    /// On-demand FIB steps: routes installed (asked for, or a miss) and aged out.
    pub fib_installs: u64,
    pub fib_idle: u64,
    /// Remote host routes known (the RIB view) and host routes in the kernel (local and
    /// remote), as of the last change.
    pub rib_routes: u64,
    pub fib_routes: u64,
}

impl Metrics {
    /// Counts an input leafd is about to handle.
    pub fn input(&mut self, input: &Input) {
        let (map, kind) = match input {
            Input::Announced(_, a) => (&mut self.announcements, a.kind.as_str()),
            Input::Best(..) => (&mut self.bgp_received, "best"),
            Input::Withdrawn(..) => (&mut self.bgp_received, "withdrawn"),
            Input::LinkUp(..) => (&mut self.vswitchd_events, "link-up"),
            Input::Attached(..) => (&mut self.vswitchd_events, "attach"),
            Input::Detached(..) => (&mut self.vswitchd_events, "detach"),
            Input::Sync(..) => (&mut self.vswitchd_events, "sync"),
        };
        *map.entry(kind).or_default() += 1;
    }

    /// Counts a change's cause (moves).
    pub fn change(&mut self, cause: &Cause) {
        match cause {
            Cause::MoveIn { .. } => self.moves_in += 1,
            Cause::MoveOut { .. } => self.moves_out += 1,
            _ => {}
        }
    }

    /// Counts an action's outcome.
    pub fn action(&mut self, action: &Action, ok: bool) {
        let kind = action_kind(action);
        *self.actions.entry(kind).or_default() += 1;
        if !ok {
            *self.action_errors.entry(kind).or_default() += 1;
        }
    }

    /// Counts an on-demand report line (`fib` = `install` or `idle`), and the sizes after it.
    pub fn on_demand(&mut self, line: &serde_json::Value, fib: &Fib) {
        match line["fib"].as_str() {
            Some("install") => self.fib_installs += 1,
            Some("idle") => self.fib_idle += 1,
            _ => {}
        }
        self.sizes(fib);
    }

    /// The RIB view's and the kernel's sizes, now.
    pub fn sizes(&mut self, fib: &Fib) {
        self.rib_routes = fib.rib_len() as u64;
        self.fib_routes = fib.fib_len() as u64;
    }

    /// The exposition, for leaf `name`.
    pub fn exposition(&self, name: &str) -> String {
        let mut e = Exposition::new();
        e.family("roam_build_info", Kind::Gauge, "The daemon and its version (always 1).");
        e.sample(&[("daemon", "leafd"), ("version", env!("CARGO_PKG_VERSION")), ("leaf", name)], 1);
        let by_kind = |e: &mut Exposition,
                       family: &str,
                       help: &str,
                       label: &str,
                       known: &[&'static str],
                       map: &BTreeMap<&'static str, u64>| {
            e.family(family, Kind::Counter, help);
            for k in known {
                e.sample(&[(label, k)], map.get(k).copied().unwrap_or(0));
            }
        };
        by_kind(
            &mut e,
            "roam_leaf_announcements_total",
            "Announcements (gratuitous ARP, RARP, unsolicited NA, DAD probe) trapped on the downlinks.",
            "kind",
            &ANNOUNCEMENTS,
            &self.announcements,
        );
        by_kind(
            &mut e,
            "roam_leaf_bgp_received_total",
            "BGP best paths and withdrawals received from GoBGP.",
            "kind",
            &BGP_RECEIVED,
            &self.bgp_received,
        );
        by_kind(
            &mut e,
            "roam_leaf_vswitchd_events_total",
            "Events from the vswitchds below (link-up, attach, detach, sync on connecting).",
            "kind",
            &VSWITCHD_EVENTS,
            &self.vswitchd_events,
        );
        e.family(
            "roam_leaf_moves_total",
            Kind::Counter,
            "Moves handled: a VM arrived behind this leaf (in) or left it (out).",
        );
        e.sample(&[("direction", "in")], self.moves_in).sample(&[("direction", "out")], self.moves_out);
        by_kind(
            &mut e,
            "roam_leaf_actions_total",
            "Actions done (kernel routes, BGP advertisements and withdrawals, fix-ups), failed ones included.",
            "action",
            &ACTIONS,
            &self.actions,
        );
        by_kind(
            &mut e,
            "roam_leaf_action_errors_total",
            "Actions that failed (each is logged).",
            "action",
            &ACTIONS,
            &self.action_errors,
        );
        e.single(
            "roam_leaf_fixup_frames_total",
            Kind::Counter,
            "Fix-up frames vswitchd sent to VMs at this leaf's request.",
            self.fixup_frames,
        );
        e.single(
            "roam_leaf_fixup_released_frames_total",
            Kind::Counter,
            "Held frames vswitchd sent on at this leaf's fix-ups.",
            self.fixup_released,
        );
        e.family(
            "roam_leaf_fib_on_demand_total",
            Kind::Counter,
            "On-demand FIB steps: remote routes installed, and aged out idle.",
        );
        e.sample(&[("event", "install")], self.fib_installs).sample(&[("event", "idle")], self.fib_idle);
        e.single(
            "roam_leaf_rib_routes",
            Kind::Gauge,
            "Remote host routes known (leafd's view of the BGP RIB).",
            self.rib_routes,
        );
        e.single(
            "roam_leaf_fib_routes",
            Kind::Gauge,
            "Host routes in the kernel: local hosts, and remote ones (all, or those in use on demand).",
            self.fib_routes,
        );
        e.finish()
    }
}

fn action_kind(a: &Action) -> &'static str {
    match a {
        Action::RouteLocal { .. } => "route-local",
        Action::RouteRemote { .. } => "route-remote",
        Action::Unroute { .. } => "unroute",
        Action::Advertise { .. } => "advertise",
        Action::Withdraw { .. } => "withdraw",
        Action::Fixup { .. } => "fix-up",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_exports_every_known_kind() {
        let mut m = Metrics::default();
        m.action(&Action::Withdraw { ip: "10.1.1.1".parse().unwrap() }, true);
        m.action(&Action::Withdraw { ip: "10.1.1.2".parse().unwrap() }, false);
        let fib = Fib::with_rib(
            true,
            std::time::Duration::from_secs(60),
            [("10.1.1.9".parse().unwrap(), "192.168.0.2".parse().unwrap())].into_iter().collect(),
        );
        m.on_demand(&serde_json::json!({ "fib": "install" }), &fib);
        let text = m.exposition("leaf1");
        assert!(text.contains("roam_leaf_actions_total{action=\"withdraw\"} 2\n"), "{text}");
        assert!(text.contains("roam_leaf_action_errors_total{action=\"withdraw\"} 1\n"), "{text}");
        assert!(text.contains("roam_leaf_action_errors_total{action=\"fix-up\"} 0\n"), "{text}");
        assert!(text.contains("roam_leaf_fib_on_demand_total{event=\"install\"} 1\n"), "{text}");
        assert!(text.contains("roam_leaf_announcements_total{kind=\"dad-probe\"} 0\n"), "{text}");
        assert!(text.contains("roam_leaf_rib_routes 1\n") && text.contains("roam_leaf_fib_routes 0\n"), "{text}");
    }
}
