//! A Rust io-forwarding loop through Roam's safe DPDK layer, the twin of
//! `dpdk-testpmd --forward-mode=io`: ports 0 and 1, rx burst 32 from one, tx burst to the
//! other, frames the tx queue refuses are freed. Prints `tx_pps N` once a second until
//! SIGINT or `--seconds`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use dpdk::{Eal, MbufBurst, Mempool, MempoolConfig, Port, PortConfig};

#[derive(Parser)]
#[command(about = "io forwarding between DPDK ports 0 and 1 through Roam's safe DPDK layer")]
struct Args {
    /// Stop after this many seconds (0: run until SIGINT).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// The two ports to forward between.
    #[arg(long, num_args = 2, default_values = ["net_null0", "net_null1"])]
    ports: Vec<String>,
    /// EAL arguments, after `--` (e.g. `-l 1 --no-huge --vdev net_null0 --vdev net_null1`).
    #[arg(last = true, required = true)]
    eal: Vec<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let eal = Eal::init(&args.eal)?;
    // The same pool testpmd makes with --total-num-mbufs=8192 (cache 250, 2176-byte room).
    let pool = Arc::new(Mempool::new(&eal, "io_fwd_pool", &MempoolConfig { size: 8192, ..Default::default() })?);
    let cfg = PortConfig::default();
    let p0 = Port::open(&eal, &args.ports[0], &cfg, pool.clone()).context("port 0")?;
    let p1 = Port::open(&eal, &args.ports[1], &cfg, pool.clone()).context("port 1")?;
    let (mut rx0, mut tx0) = (p0.rx_queue(0)?, p0.tx_queue(0)?);
    let (mut rx1, mut tx1) = (p1.rx_queue(0)?, p1.tx_queue(0)?);

    let hz = dpdk::time::tsc_hz();
    let end = (args.seconds > 0).then(|| dpdk::time::rdtsc() + args.seconds * hz);
    let mut burst: MbufBurst = MbufBurst::new();
    let mut sent: u64 = 0;
    let mut last_sent = 0;
    let mut next_report = dpdk::time::rdtsc() + hz;
    let mut loops: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        if rx0.rx_burst(&mut burst) > 0 {
            sent += tx1.tx_burst(&mut burst) as u64;
            burst.clear();
        }
        if rx1.rx_burst(&mut burst) > 0 {
            sent += tx0.tx_burst(&mut burst) as u64;
            burst.clear();
        }
        loops = loops.wrapping_add(1);
        if loops % 256 == 0 {
            let now = dpdk::time::rdtsc();
            if now >= next_report {
                println!("tx_pps {}", sent - last_sent);
                last_sent = sent;
                next_report += hz;
            }
            if end.is_some_and(|e| now >= e) {
                break;
            }
        }
    }
    println!("tx_total {sent}");
    Ok(())
}
