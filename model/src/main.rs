//! `roam-model`: a whole fabric (by default 1,000 leaves × 40 hosts × 25 VMs, 10,000
//! moves) run through leafd's own move logic and FIB filter; prints what moves cost and
//! what each leaf holds, as a Markdown table (and JSON, a chart on request).

mod plot;

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use roam_model::layout::{Scope, Spec};
use roam_model::{Fabric, LeafTables, MoveCost};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A model of a whole Roam fabric that runs leafd's own move logic and FIB filter for every leaf"
)]
struct Args {
    /// Leaves (top-of-rack switches).
    #[arg(long, default_value_t = 1000)]
    leaves: u32,
    /// Hosts (vswitchd) under each leaf.
    #[arg(long, default_value_t = 40)]
    hosts: u32,
    /// VMs on each host.
    #[arg(long, default_value_t = 25)]
    vms: u32,
    /// Leaves per pod (same-pod moves stay among them).
    #[arg(long, default_value_t = 20)]
    pod: u32,
    /// IPv4 subnets the VMs are spread over (1: one Virtual Subnet across the fabric).
    #[arg(long, default_value_t = 1)]
    subnets: u32,
    /// Give every VM an IPv6 address too.
    #[arg(long)]
    dual_stack: bool,
    /// Peers each VM talks to, anywhere in the fabric.
    #[arg(long, default_value_t = 4)]
    peers: u32,
    /// Live migrations.
    #[arg(long, default_value_t = 10_000)]
    moves: u32,
    /// Shares of same-leaf, same-pod and cross-fabric moves.
    #[arg(long, default_value = "0.2,0.3,0.5")]
    mix: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every move's cost and every leaf's tables here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Draw the summary as a PNG here.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// Mean, median and largest of some counts.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s.iter().sum::<f64>() / s.len() as f64, s[s.len() / 2], s[s.len() - 1])
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mix: Vec<f64> = a.mix.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?;
    let [same_leaf, same_pod, cross] = mix[..] else { bail!("--mix takes three shares, e.g. 0.2,0.3,0.5") };
    let spec = Spec {
        leaves: a.leaves,
        hosts_per_leaf: a.hosts,
        vms_per_host: a.vms,
        leaves_per_pod: a.pod,
        subnets: a.subnets,
        dual_stack: a.dual_stack,
        peers: a.peers,
        moves: a.moves,
        mix: [same_leaf, same_pod, cross],
        seed: a.seed,
    };
    let t0 = Instant::now();
    let layout = spec.layout()?;
    let vms = layout.vms.len();
    let mut fabric = Fabric::new(layout)?;
    let t_setup = t0.elapsed();
    let t1 = Instant::now();
    let moves = fabric.run_moves();
    let t_moves = t1.elapsed();
    let tables = fabric.tables();
    let total = t0.elapsed();
    println!(
        "# {} leaves × {} hosts × {} VMs = {vms} VMs ({} subnet(s){}), {} peers each, {} moves (mix {})\n",
        a.leaves,
        a.hosts,
        a.vms,
        a.subnets,
        if a.dual_stack { ", dual-stack" } else { ", IPv4" },
        a.peers,
        moves.len(),
        a.mix
    );
    println!("{}", per_move(&moves));
    println!("{}", per_leaf(&tables, vms));
    println!(
        "set-up {:.1} s, moves {:.1} s ({:.2} ms each), total {:.1} s; peak memory {:.0} MiB",
        t_setup.as_secs_f64(),
        t_moves.as_secs_f64(),
        t_moves.as_secs_f64() * 1000.0 / moves.len().max(1) as f64,
        total.as_secs_f64(),
        peak_mib()
    );
    if let Some(p) = &a.json {
        let out = serde_json::json!({ "moves": moves, "leaves": tables });
        std::fs::write(p, serde_json::to_vec(&out)?)?;
    }
    if let Some(p) = &a.plot {
        plot::chart(p, &moves, &tables, vms)?;
    }
    Ok(())
}

fn per_move(moves: &[MoveCost]) -> String {
    let mut t = String::from("| moves | count | fix-up frames (mean / median / max) | VMs told (mean / max) | flood frames (mean) | BGP UPDATEs sent + received by leaves (mean) | leafd best-path inputs (mean) |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    let kinds = [
        (None, "all"),
        (Some(Scope::SameLeaf), "same leaf"),
        (Some(Scope::SamePod), "same pod"),
        (Some(Scope::CrossFabric), "cross-fabric"),
    ];
    for (kind, name) in kinds {
        let m: Vec<&MoveCost> = moves.iter().filter(|m| kind.is_none() || m.scope == kind).collect();
        if m.is_empty() {
            continue;
        }
        let col = |f: &dyn Fn(&MoveCost) -> f64| stats(&m.iter().map(|x| f(x)).collect::<Vec<_>>());
        let frames = col(&|x| x.fixup_frames as f64);
        let told = col(&|x| x.vms_told as f64);
        let flood = col(&|x| x.flood_frames as f64);
        let bgp = col(&|x| (x.bgp.sent + x.bgp.received) as f64);
        let inputs = col(&|x| x.bgp_inputs as f64);
        t += &format!(
            "| {name} | {} | {:.1} / {:.0} / {:.0} | {:.1} / {:.0} | {:.0} | {:.0} | {:.0} |\n",
            m.len(),
            frames.0,
            frames.1,
            frames.2,
            told.0,
            told.2,
            flood.0,
            bgp.0,
            inputs.0
        );
    }
    t
}

/// One of a leaf's figures.
type Figure = fn(&LeafTables) -> usize;

fn per_leaf(tables: &[LeafTables], vms: usize) -> String {
    let mut t = format!("| per leaf ({vms} VMs in the fabric) | mean | median | max |\n| --- | --- | --- | --- |\n");
    let rows: [(&str, Figure); 6] = [
        ("RIB entries (remote host routes known)", |x| x.rib),
        ("FIB host routes, every route installed", |x| x.fib_all),
        ("FIB host routes, on demand", |x| x.fib_on_demand),
        ("neighbour entries: local hosts", |x| x.neighbours_local),
        ("neighbour entries: other leaves, every route installed", |x| x.neighbours_fabric_all),
        ("neighbour entries: other leaves, on demand", |x| x.neighbours_fabric_on_demand),
    ];
    for (name, f) in rows {
        let (mean, median, max) = stats(&tables.iter().map(|x| f(x) as f64).collect::<Vec<_>>());
        t += &format!("| {name} | {mean:.1} | {median:.0} | {max:.0} |\n");
    }
    t
}
