//! On-demand routes, the I/O side (`fib` decides): a VM's trapped request for a remote
//! neighbour installs its host route and answers the VM by proxy (a gratuitous ARP or NA
//! for the address with the anycast MAC, sent by its vswitchd to that VM only: the kernel
//! saw the request before the route was there); a packet for a remote address whose route
//! aged out (its VM kept the neighbour entry) is a miss the kernel records, which installs
//! it again; every so often the kernel's record of
//! destinations in use (`kernel::used`) refreshes the installed routes and the idle ones
//! are removed. Each installation and removal is a report line, with the RIB and FIB sizes.

use std::time::{Duration, Instant};

use anyhow::Result;
use pipeline::MacAddr;
use serde_json::{json, Value};

use crate::fib::{Fib, Wanted};
use crate::kernel::{self, Kernel};
use crate::logic::{Action, Leaf};
use crate::micros;
use crate::trap::Asked;
use crate::vswitch::Announcer;

/// The on-demand FIB and its clock.
pub struct OnDemand {
    pub fib: Fib,
    start: Instant,
}

impl OnDemand {
    pub fn new(fib: Fib) -> OnDemand {
        OnDemand { fib, start: Instant::now() }
    }

    /// Seconds on the FIB's clock.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// How often to look at the kernel's misses (packets for a remote address whose route
    /// aged out: the first ones are lost, then the route is back).
    pub const MISSES: Duration = Duration::from_millis(200);

    /// Packets for known remote addresses without a route: installs their routes (no
    /// answer to send: the VM already has its neighbour entry); a report line each.
    pub fn missed(&mut self, kernel: &Kernel) -> Result<Vec<Value>> {
        let mut lines = Vec::new();
        for ip in kernel::missed()? {
            let Wanted::Installed(actions) = self.fib.wanted(ip, self.now()) else { continue };
            let errors = run_all(kernel, &actions);
            lines.push(self.finish(json!({ "fib": "install", "ip": ip, "for": "traffic" }), errors));
        }
        Ok(lines)
    }

    /// How often to look at the kernel's record of use: a quarter of the idle time.
    pub fn period(idle_secs: u64) -> Duration {
        Duration::from_secs((idle_secs / 4).max(1))
    }

    fn sizes(&self, line: &mut Value) {
        line["rib"] = json!(self.fib.rib_len());
        line["fib_routes"] = json!(self.fib.fib_len());
    }

    /// A VM asked for a neighbour: installs and answers when the address is a remote one
    /// not installed yet; the report line if anything was done.
    pub fn asked(
        &mut self,
        leaf: &Leaf,
        kernel: &Kernel,
        vswitches: &mut Announcer,
        anycast: MacAddr,
        a: Asked,
    ) -> Option<Value> {
        // Only a VM of that downlink's vswitchd (the leaf's own frames are not trapped).
        let vm = leaf.vm_by_mac(a.downlink, a.asked.mac)?.name.clone();
        let ip = a.asked.target;
        let Wanted::Installed(actions) = self.fib.wanted(ip, self.now()) else { return None };
        let mut line = json!({ "fib": "install", "ip": ip, "for": vm, "asked_us": micros(a.at) });
        let errors = run_all(kernel, &actions);
        match vswitches.arp_announce(a.downlink, std::slice::from_ref(&vm), ip, anycast) {
            Ok(r) => line["answered"] = json!(r.sent.get(&vm).copied().unwrap_or(0)),
            Err(e) => line["answer_error"] = json!(format!("{e:#}")),
        }
        Some(self.finish(line, errors))
    }

    /// A report line completed: when it was done, its errors, the sizes.
    fn finish(&self, mut line: Value, errors: Vec<String>) -> Value {
        line["done_us"] = json!(micros(std::time::SystemTime::now()));
        if !errors.is_empty() {
            line["errors"] = json!(errors);
        }
        self.sizes(&mut line);
        line
    }

    /// Refreshes the routes with traffic and removes the idle ones; a report line per
    /// removal.
    pub fn expire(&mut self, kernel: &Kernel) -> Result<Vec<Value>> {
        let used = kernel::used()?;
        let actions = self.fib.expire(&used, self.now());
        let mut lines = Vec::new();
        for a in &actions {
            let Action::Unroute { ip, .. } = a else { continue };
            let mut line = json!({ "fib": "idle", "ip": ip, "done_us": micros(std::time::SystemTime::now()) });
            if let Err(e) = run(kernel, a) {
                line["errors"] = json!([format!("{e:#}")]);
            }
            lines.push(line);
        }
        if let Some(last) = lines.last_mut() {
            self.sizes(last);
        }
        Ok(lines)
    }
}

/// Runs the actions; their errors.
fn run_all(kernel: &Kernel, actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| run(kernel, a).err()).map(|e| format!("{e:#}")).collect()
}

/// Installs or removes one remote host route.
fn run(kernel: &Kernel, a: &Action) -> Result<()> {
    match a {
        Action::RouteRemote { ip, nexthop, .. } => kernel.route_remote(*ip, *nexthop, None),
        Action::Unroute { ip, .. } => kernel.unroute(*ip, None),
        other => anyhow::bail!("not a route of the on-demand FIB: {other:?}"),
    }
}
