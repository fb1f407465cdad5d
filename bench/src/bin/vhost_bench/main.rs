//! The vhost-user harness: a "VM" with two vNICs, a DPDK `dpdk-testpmd` whose two
//! `net_virtio_user` ports serve vhost-user sockets as QEMU would, sends a pcap out of
//! vNIC 0 (`net_pcap`, replayed forever) and counts what arrives on vNIC 1 (then drops
//! it into `net_null`). The switch in between connects to both sockets as the vhost-user
//! client and forwards by destination MAC; its only data-plane work is vhost's copies and
//! the lookup. The contenders, alternating within each round, all on one forwarding core
//! (the VM's forwarding on the other):
//! - `vswitchd`: the real binary, the two ports attached through its API (MACs behind
//!   each vNIC as its extra MAC ranges);
//! - `ovs`: Open vSwitch 3.1 with DPDK, `dpdkvhostuserclient` ports, NORMAL with static
//!   MAC entries;
//! - `testpmd`: `dpdk-testpmd --forward-mode=io` over two `net_vhost` client ports (the
//!   limit: vhost's copies without a lookup).
//!
//! A contender's rate is the median of the VM's per-second receive rates on vNIC 1, the
//! first two left out; what the VM tried to send (read from its pcap) is printed beside
//! it: a switch that takes all of it is limited by the VM, not by itself. Prints a Markdown table (and the ratios against the limit and
//! OVS), writes it with a JSON copy and a PNG chart into `--out`.

mod contenders;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use roam_bench::contender::{reserve_hugepages, sibling, Memory};
use roam_bench::report::{chart, report};
use roam_bench::workload::{write_pcap, VmPair};
use roam_bench::{steady_rate, testpmd};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    about = "vhost-user to vhost-user: a VM's two vNICs (dpdk-testpmd over net_virtio_user) through vswitchd, OVS-DPDK and testpmd's io forwarding (the limit), one forwarding core each"
)]
struct Args {
    /// Rounds; each runs every contender once per workload.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per contender per round.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// The switch's forwarding core.
    #[arg(long, default_value_t = 0)]
    core: usize,
    /// The VM's forwarding core.
    #[arg(long, default_value_t = 1)]
    vm_core: usize,
    /// MACs behind each vNIC, comma-separated (1: the vNICs' own MACs only).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 1024])]
    macs: Vec<usize>,
    /// Frame lengths without FCS (60 = 64-byte frames, 1514 = 1518-byte).
    #[arg(long, value_delimiter = ',', default_values_t = [60usize, 1514])]
    frame_lens: Vec<usize>,
    /// Contenders to run.
    #[arg(long, value_delimiter = ',', default_values_t = ["vswitchd".to_string(), "ovs".into(), "testpmd".into()])]
    contenders: Vec<String>,
    /// The switches' memory: `nohuge` (4 KiB pages) or `huge` (2 MiB hugepages); the VM
    /// always runs on 4 KiB pages.
    #[arg(long, value_delimiter = ',', default_values_t = ["nohuge".to_string()])]
    memory: Vec<String>,
    /// Where the workloads, logs and results go.
    #[arg(long, default_value = "target/vhost-bench")]
    out: PathBuf,
    /// A short run that only checks that every contender forwards (CI smoke test).
    #[arg(long)]
    smoke: bool,
}

/// One workload under one memory setting.
pub struct Case {
    name: String,
    macs: usize,
    pcap: PathBuf,
    memory: Memory,
    /// The sockets of the VM's vNICs.
    sockets: [PathBuf; 2],
}

/// VM ports: the pcap (0), vNIC 0 (1), vNIC 1 (2), the sink (3); io forwarding pairs 0
/// with 1 and 2 with 3.
const VM_PORTS: usize = 4;
const PCAP: usize = 0;
const VNIC1: usize = 2;

fn vm_eal(case: &Case, main_core: usize, core: usize) -> Vec<String> {
    let mut eal: Vec<String> = vec!["-l".into(), format!("{main_core},{core}")];
    eal.extend(
        ["--no-huge", "-m", "1024", "--no-pci", "--no-telemetry", "--file-prefix", "roam-vhost-vm"].map(String::from),
    );
    eal.extend(["--vdev".into(), format!("net_pcap0,rx_pcap={},infinite_rx=1", case.pcap.display())]);
    for (k, socket) in case.sockets.iter().enumerate() {
        let mac = pipeline::MacAddr(VmPair::vnic(k));
        eal.extend([
            "--vdev".into(),
            format!("net_virtio_user{k},path={},server=1,queues=1,queue_size=1024,mac={mac}", socket.display()),
        ]);
    }
    eal.extend(["--vdev".into(), "net_null0,no-rx=1".into()]);
    eal
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.rounds = 1;
        args.seconds = 5;
        args.macs = vec![1024];
        args.frame_lens = vec![60];
        args.memory = vec!["nohuge".into()];
    }
    if args.core == args.vm_core {
        bail!("--core and --vm-core must differ");
    }
    let memories = args.memory.iter().map(|m| Memory::parse(m)).collect::<Result<Vec<_>>>()?;
    if memories.contains(&Memory::Huge) {
        reserve_hugepages(600, 520)?;
    }
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.canonicalize()?;
    let vswitchd = sibling("vswitchd")?;
    let sockets = [out.join("vnic0.sock"), out.join("vnic1.sock")];
    let mut cases = Vec::new();
    for &memory in &memories {
        for &macs in &args.macs {
            for &len in &args.frame_lens {
                let pcap = out.join(format!("vm-{macs}-{len}.pcap"));
                let w = VmPair { macs, frame_len: len, frames: 4096, seed: 0x5eed };
                write_pcap(&pcap, &w.build()?)?;
                let what = if macs == 1 { "2 MACs".to_string() } else { format!("{macs} MACs a vNIC") };
                cases.push(Case {
                    name: format!("{what}, {} B, {}", len + 4, memory.name()),
                    macs,
                    pcap,
                    memory,
                    sockets: sockets.clone(),
                });
            }
        }
    }
    let vm_main = args.core;
    let mut results: Vec<Vec<(String, Vec<f64>)>> =
        cases.iter().map(|_| args.contenders.iter().map(|c| (c.clone(), Vec::new())).collect()).collect();
    let started = Instant::now();
    for round in 1..=args.rounds {
        for (ci, case) in cases.iter().enumerate() {
            for (k, contender) in args.contenders.iter().enumerate() {
                for s in &case.sockets {
                    let _ = std::fs::remove_file(s);
                }
                let eal = vm_eal(case, vm_main, args.vm_core);
                let app = ["--forward-mode=io".to_string(), "--txd=1024".into(), "--rxd=1024".into()];
                let during = || contenders::start(contender, case, &out, &vswitchd, args.core, args.vm_core);
                let check = |switch: &mut contenders::Running| switch.check();
                let rate =
                    testpmd::run_with(&eal, &app, VM_PORTS, args.seconds, Duration::from_secs(60), during, check)
                        .and_then(|(samples, lines, _switch)| {
                            let counter = |port: usize, dir: usize| -> Vec<u64> {
                                samples.iter().map(|s| s.ports.get(port).map_or(0, |p| p[dir])).collect()
                            };
                            let received =
                                steady_rate(&per_second(&samples, &counter(VNIC1, 0))).with_context(|| {
                                    format!(
                                        "nothing reached vNIC 1:\n{}",
                                        lines[lines.len().saturating_sub(40)..].join("\n")
                                    )
                                })?;
                            // What the VM read from its pcap to send: what vNIC 0 could not send is dropped.
                            let offered = steady_rate(&per_second(&samples, &counter(PCAP, 0))).unwrap_or(0.0);
                            Ok((received, offered))
                        })
                        .with_context(|| format!("{contender} on {}", case.name));
                match rate {
                    Ok((rate, offered)) => {
                        println!(
                            "round {round} | {} | {contender}: {:.2} Mpps received ({:.2} Mpps offered)",
                            case.name,
                            rate / 1e6,
                            offered / 1e6
                        );
                        results[ci][k].1.push(rate);
                    }
                    Err(e) if !args.smoke => println!("round {round} | {} | {contender}: FAILED: {e:#}", case.name),
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let table = report(&names, &results, &["testpmd", "ovs"]);
    println!("\n{table}");
    std::fs::write(out.join("results.md"), &table)?;
    let json: Vec<Value> = cases
        .iter()
        .zip(&results)
        .map(|(c, r)| json!({ "workload": c.name, "macs": c.macs, "rates_pps": r.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>() }))
        .collect();
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let png = out.join("results.png");
    match chart(&png, &names, &results) {
        Ok(()) => println!("chart: {}", png.display()),
        Err(e) => println!("chart not drawn: {e:#}"),
    }
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    if args.smoke {
        for (c, r) in cases.iter().zip(&results) {
            for (name, rates) in r {
                if rates.is_empty() || rates.iter().any(|x| *x <= 0.0) {
                    bail!("smoke: {name} forwarded nothing on {}", c.name);
                }
            }
        }
    }
    Ok(())
}

/// Per-second increases of one counter read at each sample's time.
fn per_second(samples: &[testpmd::Sample], counter: &[u64]) -> Vec<f64> {
    samples
        .windows(2)
        .zip(counter.windows(2))
        .filter_map(|(s, c)| {
            let dt = s[1].at.duration_since(s[0].at).as_secs_f64();
            (dt > 0.5).then(|| c[1].saturating_sub(c[0]) as f64 / dt)
        })
        .collect()
}
