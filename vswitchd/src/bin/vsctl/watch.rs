//! `vsctl stats --watch`: snapshots at an interval and the rates between them.

use anyhow::Result;
use vswitchd::api::views::StatsView;
use vswitchd::api::Client;

use crate::tables::{print_stats, table};

/// `stats --watch`: a snapshot every `every` seconds, each port's and worker's rates since
/// the one before (frames per second over the time between the two answers). With --json,
/// one stats object per line, each with its `rates`.
pub(crate) fn watch_stats(socket: &std::path::Path, every: f64, count: Option<u64>, json: bool) -> Result<()> {
    anyhow::ensure!(every.is_finite() && every >= 0.1, "--watch {every}: give at least 0.1 seconds");
    use std::io::IsTerminal;
    let mut client = Client::connect(socket, Some(std::time::Duration::from_secs(10)))?;
    let clear = !json && std::io::stdout().is_terminal();
    let mut last: Option<(std::time::Instant, StatsView)> = None;
    let mut shown = 0;
    loop {
        let now = std::time::Instant::now();
        let stats = client.stats()?;
        let rates =
            last.as_ref().map(|(t, before)| Rates::between(before, &stats, now.duration_since(*t).as_secs_f64()));
        if json {
            let mut v = serde_json::to_value(&stats)?;
            v["rates"] = serde_json::to_value(&rates)?;
            println!("{}", serde_json::to_string(&v)?);
        } else {
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            print_rates(&stats, rates.as_ref(), every);
        }
        shown += 1;
        if count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        last = Some((now, stats));
        std::thread::sleep(std::time::Duration::from_secs_f64(every));
    }
}

/// Rates per second between two stats.
#[derive(serde::Serialize)]
struct Rates {
    seconds: f64,
    ports: Vec<PortRates>,
    workers: Vec<WorkerRates>,
}

#[derive(serde::Serialize)]
struct PortRates {
    name: String,
    rx: f64,
    sent: f64,
    dropped: f64,
    tx_full: f64,
    rewritten: f64,
    held: f64,
}

#[derive(serde::Serialize)]
struct WorkerRates {
    id: usize,
    frames: f64,
    /// Share of the polling cycles that found frames, over the interval.
    busy: f64,
    cycles_per_frame: f64,
}

impl Rates {
    fn between(before: &StatsView, after: &StatsView, seconds: f64) -> Rates {
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds.max(1e-9);
        let ports = after
            .ports
            .iter()
            .map(|p| {
                let b = before.port(&p.name);
                let was = |f: fn(&vswitchd::api::views::PortStats) -> u64| b.map_or(0, f);
                PortRates {
                    name: p.name.clone(),
                    rx: per_s(p.input.rx, was(|q| q.input.rx)),
                    sent: per_s(p.out.sent, was(|q| q.out.sent)),
                    dropped: per_s(p.dropped, was(|q| q.dropped)),
                    tx_full: per_s(p.out.tx_full, was(|q| q.out.tx_full)),
                    rewritten: per_s(p.input.rewritten, was(|q| q.input.rewritten)),
                    held: per_s(p.out.held, was(|q| q.out.held)),
                }
            })
            .collect();
        let workers = after
            .workers
            .iter()
            .map(|w| {
                let b = before.workers.iter().find(|x| x.id == w.id);
                let d = |f: fn(&vswitchd::api::views::WorkerStats) -> u64| f(w).saturating_sub(b.map_or(0, f));
                let (busy, idle, frames) = (d(|x| x.busy_cycles), d(|x| x.idle_cycles), d(|x| x.frames));
                WorkerRates {
                    id: w.id,
                    frames: frames as f64 / seconds.max(1e-9),
                    busy: busy as f64 / (busy + idle).max(1) as f64,
                    cycles_per_frame: busy as f64 / frames.max(1) as f64,
                }
            })
            .collect();
        Rates { seconds, ports, workers }
    }
}

fn print_rates(stats: &StatsView, rates: Option<&Rates>, every: f64) {
    let Some(r) = rates else {
        println!("vsctl stats --watch: first snapshot; rates from the next one ({every} s)");
        print_stats(stats);
        return;
    };
    println!("Rates over the last {:.2} s (frames/s); totals since start beside them:", r.seconds);
    let headers =
        ["NAME", "RX/S", "SENT/S", "DROPPED/S", "TX_FULL/S", "REWRITTEN/S", "HELD/S", "RX", "SENT", "DROPPED"];
    table(&headers, &r.ports, |p| {
        let s = stats.port(&p.name);
        let total = |f: fn(&vswitchd::api::views::PortStats) -> u64| s.map_or(0, f).to_string();
        vec![
            p.name.clone(),
            format!("{:.0}", p.rx),
            format!("{:.0}", p.sent),
            format!("{:.0}", p.dropped),
            format!("{:.0}", p.tx_full),
            format!("{:.0}", p.rewritten),
            format!("{:.0}", p.held),
            total(|q| q.input.rx),
            total(|q| q.out.sent),
            total(|q| q.dropped),
        ]
    });
    println!();
    table(&["WORKER", "FRAMES/S", "BUSY", "CYCLES/FRAME"], &r.workers, |w| {
        vec![
            w.id.to_string(),
            format!("{:.0}", w.frames),
            format!("{:.1}%", 100.0 * w.busy),
            format!("{:.0}", w.cycles_per_frame),
        ]
    });
    println!("\nbalanced: {}", stats.balanced);
}
