//! Runs `io_fwd` (Roam's safe DPDK layer) and `dpdk-testpmd --forward-mode=io` on the same
//! two net_null ports, one forwarding core each, alternating for several rounds, and prints
//! both rates and their ratio. Rates are medians of per-second samples.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use roam_bench::{median, roam_tx_rates, run_for, steady_rate, testpmd};

#[derive(Parser)]
#[command(about = "io forwarding: Roam's safe DPDK layer against dpdk-testpmd, same ports, same core")]
struct Args {
    /// Rounds; each runs both contenders once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per contender per round.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// The forwarding core (testpmd's main lcore takes another one, as it always does).
    #[arg(long, default_value_t = 1)]
    core: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let io_fwd = sibling("io_fwd")?;
    let eal = |prefix: &str| -> Vec<String> {
        [
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
            "--no-telemetry",
            "--file-prefix",
            prefix,
            "--vdev",
            "net_null0",
            "--vdev",
            "net_null1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let main_core = if args.core == 0 { 1 } else { 0 };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let tp_eal: Vec<String> = ["-l".to_string(), format!("{main_core},{}", args.core)]
            .into_iter()
            .chain(eal("roam-bench-testpmd"))
            .collect();
        let tp_app = ["--total-num-mbufs=8192", "--forward-mode=io"].map(String::from);
        let (rates, out) = testpmd::run(&tp_eal, &tp_app, 2, args.seconds, Duration::from_secs(60))?;
        let rate_tp = steady_rate(&rates.tx).with_context(|| format!("testpmd sent nothing:\n{}", out.join("\n")))?;

        let mut rs = Command::new(&io_fwd);
        rs.arg("--").arg("-l").arg(args.core.to_string()).args(eal("roam-bench-iofwd"));
        let rate_rs =
            steady_rate(&roam_tx_rates(&run_for(&mut rs, args.seconds)?)).context("io_fwd reported no rate")?;

        println!(
            "round {round}: testpmd io {:.2} Mpps, roam io_fwd {:.2} Mpps, ratio {:.3}",
            rate_tp / 1e6,
            rate_rs / 1e6,
            rate_rs / rate_tp
        );
        theirs.push(rate_tp);
        ours.push(rate_rs);
    }
    let spread = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{:.2}-{:.2}", lo / 1e6, hi / 1e6)
    };
    println!();
    println!("| contender | median Mpps | range Mpps |");
    println!("| --- | --- | --- |");
    println!("| dpdk-testpmd io | {:.2} | {} |", median(&theirs) / 1e6, spread(&theirs));
    println!("| roam io_fwd (safe layer) | {:.2} | {} |", median(&ours) / 1e6, spread(&ours));
    let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| o / t).collect();
    println!();
    println!(
        "ratio roam/testpmd: median {:.3} (per round: {})",
        median(&ratios),
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// Another binary of this package, next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!("{} not found; build with `cargo build --release -p roam-bench`", path.display());
    }
    Ok(path)
}
