//! leafd: run one per leaf network namespace (`ip netns exec LEAF leafd --config …`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Parser;
use leafd::bgp::Gobgp;
use leafd::config::{self, Checked};
use leafd::demand::OnDemand;
use leafd::fib::Fib;
use leafd::kernel::Kernel;
use leafd::logic::{Action, Cause, Change, Input, Leaf};
use leafd::metrics::Metrics;
use leafd::{micros, trap, vswitch, Event};
use roam_api::views::Announced;
use serde_json::{json, Value};

/// Roam's reference leaf: anycast gateway, proxy ARP, /32 host routes over BGP (GoBGP),
/// and selective ARP fix-ups after a VM moves.
const AFTER_HELP: &str = "Examples:
  leafd --config /etc/roam/leafd.toml
  ip netns exec leaf1 leafd --config /etc/roam/leaf1.toml --metrics 127.0.0.1:9479
  leafd --check-config --config /etc/roam/leafd.toml
  leafd --completions bash > /usr/share/bash-completion/completions/leafd

Exit codes:
  0  --check-config found the configuration good (leafd itself runs until killed)
  1  could not start, or failed while running (one line on stderr says why)
  2  bad usage (unknown option, bad value)";

#[derive(Parser, Debug)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// The configuration file (TOML; see leafd/README.md).
    #[arg(long, env = "LEAFD_CONFIG", required_unless_present = "completions")]
    config: Option<PathBuf>,
    /// Check the configuration file and exit: 0 when leafd would start with it, 1 with the
    /// reason when not (nothing is started or changed).
    #[arg(long)]
    check_config: bool,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<clap_complete::Shell>,
    /// Move host routes only; send no ARP fix-ups (overrides `fixups` in the file).
    #[arg(long)]
    no_fixups: bool,
    /// Append one JSON line per move to this file (overrides `report`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP at `IP:PORT` (overrides `metrics`; default off).
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<String>,
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
    if let Some(shell) = args.completions {
        clap_complete::generate(shell, &mut <Args as clap::CommandFactory>::command(), "leafd", &mut std::io::stdout());
        return Ok(());
    }
    let path = args.config.as_ref().context("--config is required")?;
    let mut cfg = config::load(path)?;
    if args.no_fixups {
        cfg.raw.fixups = false;
    }
    if args.report.is_some() {
        cfg.raw.report = args.report;
    }
    if args.metrics.is_some() {
        cfg.raw.metrics = args.metrics;
    }
    if let Some(m) = &cfg.raw.metrics {
        anyhow::ensure!(
            m.parse::<std::net::SocketAddr>().is_ok(),
            "metrics address {m:?} is not IP:PORT (e.g. 127.0.0.1:9479)"
        );
    }
    if args.check_config {
        println!(
            "leafd: configuration OK: leaf {}, {} downlink(s), gateways {}, fix-ups {}, on-demand FIB {}, metrics {}",
            cfg.raw.name,
            cfg.raw.downlinks.len(),
            cfg.raw.gateways.join(","),
            if cfg.raw.fixups { "on" } else { "off" },
            if cfg.raw.fib.on_demand { "on" } else { "off" },
            cfg.raw.metrics.as_deref().unwrap_or("off"),
        );
        return Ok(());
    }
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    if let Some(addr) = &cfg.raw.metrics {
        let endpoint = roam_api::metrics::Endpoint::bind(addr).map_err(anyhow::Error::msg)?;
        tracing::info!("metrics at http://{}/metrics", endpoint.addr());
        let (metrics, name) = (metrics.clone(), cfg.raw.name.clone());
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || endpoint.serve(|| Ok(lock(&metrics).exposition(&name))))?;
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
                let mut m = lock(&metrics);
                m.input(&event.input);
                for mut change in leaf.handle(event.input) {
                    change.actions = demand.fib.filter(change.actions, demand.now());
                    m.change(&change.cause);
                    let line = execute(&cfg, &kernel, &gobgp, &mut vswitches, &change, &trigger, &mut m);
                    match &change.cause {
                        Cause::MoveIn { .. } | Cause::MoveOut { .. } => {
                            tracing::info!("move: {line}");
                            write(&line)?;
                        }
                        Cause::Ignored { why } => tracing::debug!("ignored: {why}"),
                        _ => tracing::info!("{line}"),
                    }
                }
                m.sizes(&demand.fib);
            }
            recv(asks) -> asked => {
                let asked = asked.context("the downlinks' captures stopped")?;
                if let Some(line) = demand.asked(&leaf, &kernel, &mut vswitches, cfg.anycast, asked) {
                    tracing::info!("on demand: {line}");
                    lock(&metrics).on_demand(&line, &demand.fib);
                    write(&line)?;
                }
            }
            recv(misses) -> _ => {
                for line in on_demand_lines(demand.missed(&kernel), "the destinations without a route") {
                    lock(&metrics).on_demand(&line, &demand.fib);
                    write(&line)?;
                }
            }
            recv(tick) -> _ => {
                for line in on_demand_lines(demand.expire(&kernel), "the destinations in use") {
                    lock(&metrics).on_demand(&line, &demand.fib);
                    write(&line)?;
                }
            }
        }
    }
}

/// The metrics, whoever held them last (a panic elsewhere leaves them readable).
fn lock(m: &Mutex<Metrics>) -> std::sync::MutexGuard<'_, Metrics> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    metrics: &mut Metrics,
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
                        metrics.action(a, true);
                        metrics.fixup_frames += sent.values().sum::<usize>() as u64;
                        metrics.fixup_released += released as u64;
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
        metrics.action(a, result.is_ok());
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
