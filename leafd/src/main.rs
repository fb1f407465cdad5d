//! leafd: run one per leaf network namespace (`ip netns exec LEAF leafd --config …`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Parser;
use leafd::bgp::Gobgp;
use leafd::config::{self, Checked};
use leafd::demand::OnDemand;
use leafd::fib::Fib;
use leafd::kernel::Kernel;
use leafd::logic::{Action, Cause, Change, Input, Leaf};
use leafd::{micros, trap, vswitch, Event};
use roam_api::views::Announced;
use serde_json::{json, Value};

/// Roam's reference leaf: anycast gateway, proxy ARP, /32 host routes over BGP (GoBGP),
/// and selective ARP fix-ups after a VM moves.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The configuration file (TOML; see leafd/README.md).
    #[arg(long, env = "LEAFD_CONFIG")]
    config: PathBuf,
    /// Move host routes only; send no ARP fix-ups (overrides `fixups` in the file).
    #[arg(long)]
    no_fixups: bool,
    /// Append one JSON line per move to this file (overrides `report`).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("leafd: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let mut cfg = config::load(&args.config)?;
    if args.no_fixups {
        cfg.raw.fixups = false;
    }
    if args.report.is_some() {
        cfg.raw.report = args.report;
    }
    let kernel = Kernel::new(cfg.raw.route_protocol)?;
    kernel.setup()?;
    let gateways: Vec<_> = cfg.gateways.iter().map(|(g, _)| *g).collect();
    for d in &cfg.raw.downlinks {
        kernel.setup_downlink(&d.iface, cfg.anycast, &gateways)?;
    }
    let gobgp = Gobgp::new(&cfg.raw.bgp.api, cfg.vrf.clone())?;
    if let Some(v) = &cfg.vrf {
        // gobgpd may still be starting: try for a while.
        let mut tries = 0;
        while let Err(e) = gobgp.ensure_vrf() {
            tries += 1;
            anyhow::ensure!(tries < 50, "creating VRF {} in GoBGP: {e:#}", v.name);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    let on_demand = cfg.raw.fib.on_demand;
    if on_demand {
        let subnets: Vec<_> = cfg.gateways.iter().map(|(_, n)| *n).collect();
        leafd::kernel::track_use(cfg.raw.fib.idle_secs, &subnets)?;
    }
    let (tx, rx) = crossbeam::channel::unbounded::<Event>();
    let (asks_tx, asks) = crossbeam::channel::unbounded::<trap::Asked>();
    for (i, d) in cfg.raw.downlinks.iter().enumerate() {
        trap::spawn(i, &d.iface, tx.clone(), on_demand.then(|| asks_tx.clone()))?;
        let (socket, segment, tx) = (d.vswitchd.clone(), d.segment, tx.clone());
        std::thread::Builder::new()
            .name(format!("vswitchd-{}", d.host))
            .spawn(move || vswitch::watch(i, socket, segment, tx))?;
    }
    {
        let (api, vrf, tx) = (cfg.raw.bgp.api.clone(), cfg.vrf.clone(), tx.clone());
        std::thread::Builder::new().name("bgp".into()).spawn(move || Gobgp::monitor(&api, vrf, tx))?;
    }
    drop(tx);
    drop(asks_tx);
    let mut report = match &cfg.raw.report {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening the report {}", p.display()))?,
        ),
        None => None,
    };
    tracing::info!(
        "leafd {} up: {} downlinks, fix-ups {}",
        cfg.raw.name,
        cfg.raw.downlinks.len(),
        if cfg.raw.fixups { "on" } else { "off" }
    );
    let mut leaf = Leaf::new(cfg.clone());
    let mut vswitches = vswitch::Announcer::new(cfg.raw.downlinks.iter().map(|d| d.vswitchd.clone()).collect());
    let mut demand = OnDemand::new(Fib::new(on_demand, Duration::from_secs(cfg.raw.fib.idle_secs)));
    let (asks, tick, misses) = if on_demand {
        let period = OnDemand::period(cfg.raw.fib.idle_secs);
        (asks, crossbeam::channel::tick(period), crossbeam::channel::tick(OnDemand::MISSES))
    } else {
        (crossbeam::channel::never(), crossbeam::channel::never(), crossbeam::channel::never())
    };
    let mut write = |line: &Value| -> Result<()> {
        if let Some(f) = report.as_mut() {
            writeln!(f, "{line}").and_then(|_| f.flush()).context("writing the report")?;
        }
        Ok(())
    };
    loop {
        crossbeam::channel::select! {
            recv(rx) -> event => {
                let Ok(event) = event else { return Ok(()) };
                let trigger = describe(&event);
                if let Input::Sync(d, _) = &event.input {
                    vswitches.connect(*d);
                }
                for mut change in leaf.handle(event.input) {
                    change.actions = demand.fib.filter(change.actions, demand.now());
                    let line = execute(&cfg, &kernel, &gobgp, &mut vswitches, &change, &trigger);
                    match &change.cause {
                        Cause::MoveIn { .. } | Cause::MoveOut { .. } => {
                            tracing::info!("move: {line}");
                            write(&line)?;
                        }
                        Cause::Ignored { why } => tracing::debug!("ignored: {why}"),
                        _ => tracing::info!("{line}"),
                    }
                }
            }
            recv(asks) -> asked => {
                let asked = asked.context("the downlinks' captures stopped")?;
                if let Some(line) = demand.asked(&leaf, &kernel, &mut vswitches, cfg.anycast, asked) {
                    tracing::info!("on demand: {line}");
                    write(&line)?;
                }
            }
            recv(misses) -> _ => {
                for line in on_demand_lines(demand.missed(&kernel), "the destinations without a route") {
                    write(&line)?;
                }
            }
            recv(tick) -> _ => {
                for line in on_demand_lines(demand.expire(&kernel), "the destinations in use") {
                    write(&line)?;
                }
            }
        }
    }
}

/// The report lines of an on-demand step, logged; a failure to read the kernel's `what`
/// is logged and reported as nothing (the next period tries again).
fn on_demand_lines(result: Result<Vec<Value>>, what: &str) -> Vec<Value> {
    match result {
        Ok(lines) => {
            for line in &lines {
                tracing::info!("on demand: {line}");
            }
            lines
        }
        Err(e) => {
            tracing::error!("reading {what}: {e:#}");
            Vec::new()
        }
    }
}

/// `ip/32` or `ip/128`.
fn host(ip: &std::net::IpAddr) -> String {
    format!("{ip}/{}", leafd::host_len(*ip))
}

/// What set a change off, for the report.
fn describe(e: &Event) -> Value {
    let at = micros(e.at);
    match &e.input {
        Input::Announced(d, a) => {
            json!({ "kind": a.kind.as_str(), "mac": a.mac.to_string(), "ip": a.ip, "downlink": d, "at_us": at })
        }
        Input::Best(ip, p) => {
            json!({ "kind": "bgp-best", "ip": ip, "nexthop": p.nexthop, "host": p.host, "seq": p.seq, "at_us": at })
        }
        Input::Withdrawn(ip, p) => json!({ "kind": "bgp-withdrawn", "ip": ip, "nexthop": p.nexthop, "at_us": at }),
        Input::LinkUp(d, name) => json!({ "kind": "link-up", "vm": name, "downlink": d, "at_us": at }),
        Input::Attached(_, vm) => json!({ "kind": "attach", "vm": vm.name, "at_us": at }),
        Input::Detached(_, name) => json!({ "kind": "detach", "vm": name, "at_us": at }),
        Input::Sync(_, vms) => json!({ "kind": "sync", "vms": vms.len(), "at_us": at }),
    }
}

/// Runs a change's actions in order; returns its report line. A failed action is logged
/// and reported, and the rest still run.
fn execute(
    cfg: &Checked,
    kernel: &Kernel,
    gobgp: &Gobgp,
    vswitches: &mut vswitch::Announcer,
    change: &Change,
    trigger: &Value,
) -> Value {
    let iface = |d: usize| cfg.raw.downlinks[d].iface.as_str();
    let mut routes = Vec::new();
    let mut fixups = Vec::new();
    let mut errors = Vec::new();
    let mut last_fixup = None;
    // Each action's duration, in order: where a move's time goes.
    let mut steps = Vec::new();
    let started = micros(SystemTime::now());
    for a in &change.actions {
        let t0 = std::time::Instant::now();
        let (what, result) = match a {
            Action::RouteLocal { ip, mac, downlink } => (
                format!("route {} dev {} ({mac})", host(ip), iface(*downlink)),
                kernel.route_local(*ip, *mac, iface(*downlink)),
            ),
            Action::RouteRemote { ip, nexthop, was_on } => {
                (format!("route {} via {nexthop}", host(ip)), kernel.route_remote(*ip, *nexthop, was_on.map(iface)))
            }
            Action::Unroute { ip, was_on } => (format!("unroute {}", host(ip)), kernel.unroute(*ip, was_on.map(iface))),
            Action::Advertise { ip, host: h, seq } => (
                format!("advertise {} host {h} seq {seq}", host(ip)),
                match cfg.nexthop_for(*ip) {
                    Some(nexthop) => gobgp.advertise(*ip, nexthop, *h, *seq),
                    None => Err(anyhow::anyhow!("no fabric address of {ip}'s family (fabric_address6)")),
                },
            ),
            Action::Withdraw { ip } => (format!("withdraw {}", host(ip)), gobgp.withdraw(*ip)),
            Action::Fixup { downlink, to, ip } => {
                let r = vswitches.arp_announce(*downlink, to, *ip, cfg.anycast);
                let at = micros(SystemTime::now());
                last_fixup = Some(at);
                steps.push(json!({ "action": "fix-up", "us": t0.elapsed().as_micros() as u64 }));
                match r {
                    Ok(Announced { sent, released, .. }) => {
                        fixups.push(json!({ "downlink": iface(*downlink), "to": to, "ip": ip, "mac": cfg.anycast, "sent": sent, "released": released, "at_us": at }));
                        continue;
                    }
                    Err(e) => (format!("fix-up {ip} to {to:?}"), Err(e)),
                }
            }
        };
        let kind = match a {
            Action::RouteLocal { .. } | Action::RouteRemote { .. } | Action::Unroute { .. } => "kernel",
            Action::Advertise { .. } | Action::Withdraw { .. } => "bgp",
            Action::Fixup { .. } => "fix-up",
        };
        if kind != "fix-up" {
            steps.push(json!({ "action": kind, "us": t0.elapsed().as_micros() as u64 }));
        }
        match result {
            Ok(()) => routes.push(what),
            Err(e) => {
                tracing::error!("{what}: {e:#}");
                errors.push(format!("{what}: {e:#}"));
            }
        }
    }
    let done = micros(SystemTime::now());
    let mut line = json!({ "leaf": cfg.raw.name, "trigger": trigger, "started_us": started, "steps": steps, "routes": routes, "fixups": fixups, "done_us": done });
    // The two kinds of move carry the same facts (from_host is optional only moving in).
    let moved = match &change.cause {
        Cause::MoveIn { vm, ip, from_host, to_host, seq } => Some(("in", vm, ip, json!(from_host), to_host, seq)),
        Cause::MoveOut { vm, ip, from_host, to_host, seq } => Some(("out", vm, ip, json!(from_host), to_host, seq)),
        _ => None,
    };
    match moved {
        Some((dir, vm, ip, from_host, to_host, seq)) => {
            for (k, v) in [
                ("move", json!(dir)),
                ("vm", json!(vm)),
                ("ip", json!(ip)),
                ("from_host", from_host),
                ("to_host", json!(to_host)),
                ("seq", json!(seq)),
            ] {
                line[k] = v;
            }
        }
        None => line["cause"] = json!(format!("{:?}", change.cause)),
    }
    if let (Some(last), Some(t)) = (last_fixup, trigger["at_us"].as_u64()) {
        line["trigger_to_last_fixup_ms"] = json!(last.saturating_sub(t) as f64 / 1000.0);
    }
    line["fixups_enabled"] = json!(cfg.raw.fixups);
    if !errors.is_empty() {
        line["errors"] = json!(errors);
    }
    line
}
