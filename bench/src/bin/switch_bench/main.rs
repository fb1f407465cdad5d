//! The end-to-end packet-rate harness: one workload (a pcap replayed forever with DPDK's
//! `net_pcap`, `infinite_rx=1`) into each contender on one forwarding core, sinks on
//! `net_null`, the contenders alternating within each round:
//! - `vswitchd`: the real binary with a config file, ports attached through its API;
//! - `dpdk-testpmd` in `io` and `macswap` modes (the limit: forwarders without a lookup);
//! - Open vSwitch 3.1 with DPDK (Debian's `openvswitch-switch-dpdk`): a private database
//!   and run directory, a netdev bridge with the NORMAL action, static MAC entries.
//!
//! The first table size at the first frame length also runs as a VXLAN workload: vswitchd
//! carries the segment as VXLAN (a VTEP on the `net_null` uplink, the leaf VTEP's MAC given
//! in advance), so every frame for the uplink is encapsulated; testpmd runs the same pcap
//! as the reference, OVS is left out of it (its VXLAN needs a tunnel port and routes).
//!
//! A contender's rate is the median of its per-second receive rates on the pcap port,
//! the first two seconds left out; a contender whose ports sent nothing in that time has
//! failed (in a smoke run, the harness fails). testpmd runs in interactive mode, driven
//! through a pipe (`roam_bench::testpmd`), so the harness's own standard input does not
//! matter. Prints a Markdown table, writes it with a JSON copy and a PNG bar chart into
//! `--out`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use pipeline::{MacAddr, SegmentId};
use roam_api::{Attach, MacRange, Segment, Underlay};
use roam_bench::contender::{reserve_hugepages, sample_rates, Memory, VswitchdRun};
use roam_bench::report::{chart, report};
use roam_bench::workload::{Workload, ANYCAST, SINKS};
use roam_bench::{contender::sibling, steady_rate, testpmd};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    about = "Packet rate of vswitchd against dpdk-testpmd (io, macswap) and OVS-DPDK: same pcap workload, same sinks, one forwarding core each"
)]
struct Args {
    /// Rounds; each runs every contender once per workload.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per contender per round.
    #[arg(long, default_value_t = 6)]
    seconds: u64,
    /// The forwarding core (the contenders' other threads go to another one).
    #[arg(long, default_value_t = 1)]
    core: usize,
    /// Forwarding cores per contender: vswitchd's workers, testpmd's forwarding lcores
    /// (from `--core` on, round the machine's cores). With more than one, the pcap port
    /// reads the workload on that many rx queues, every port has that many queue pairs,
    /// and OVS is left out.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Workloads, as table sizes (MACs behind the sinks), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1024usize, 1_048_576])]
    tables: Vec<usize>,
    /// Frame length without FCS (60 = 64-byte frames); a second length adds a variant of
    /// the first table size.
    #[arg(long, value_delimiter = ',', default_values_t = [60usize, 508])]
    frame_lens: Vec<usize>,
    /// Contenders to run.
    #[arg(long, value_delimiter = ',', default_values_t = ["vswitchd".to_string(), "testpmd-io".into(), "testpmd-macswap".into(), "ovs".into()])]
    contenders: Vec<String>,
    /// OVS is given static MAC entries one `ovs-appctl fdb/add` at a time: skip it for
    /// tables larger than this.
    #[arg(long, default_value_t = 4096)]
    ovs_max_table: usize,
    /// Where the workloads, logs and results go.
    #[arg(long, default_value = "target/switch-bench")]
    out: PathBuf,
    /// Memory settings to run every workload under: `nohuge` (4 KiB pages, `--no-huge`),
    /// `huge` (2 MiB hugepages, reserved by the harness), or both.
    #[arg(long, value_delimiter = ',', default_values_t = ["nohuge".to_string(), "huge".into()])]
    memory: Vec<String>,
    /// A short run that only checks that every contender forwards (CI smoke test).
    #[arg(long)]
    smoke: bool,
    /// Leave out the VXLAN workload.
    #[arg(long)]
    no_vxlan: bool,
}

/// EAL memory (MiB) for a workload (the pcap is preloaded into mbufs; the large workload
/// needs more).
fn memory_mb(w: &Workload) -> &'static str {
    if w.frames > 8192 {
        "2048"
    } else {
        "1024"
    }
}

/// One workload of the run, under one memory setting.
struct Case {
    name: String,
    /// Forwarding cores (and queue pairs a port).
    workers: usize,
    workload: Workload,
    pcap: PathBuf,
    memory: Memory,
    /// vswitchd carries the segment as VXLAN (else untagged).
    vxlan: bool,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.rounds = 1;
        // Start-up (EAL memory, the pcap preload) can take seconds on a busy machine, and
        // the first two samples are left out.
        args.seconds = 7;
        args.tables = vec![1024];
        args.frame_lens = vec![60];
        args.memory = vec!["nohuge".into()];
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    anyhow::ensure!((1..=cpus).contains(&args.workers), "--workers must be 1..={cpus} (this machine's cores)");
    let memories = args.memory.iter().map(|m| Memory::parse(m)).collect::<Result<Vec<_>>>()?;
    if memories.contains(&Memory::Huge) {
        // One contender at a time, and a margin.
        reserve_hugepages(1100, 1030)?;
    }
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.canonicalize()?;
    let vswitchd = sibling("vswitchd")?;
    let mut cases = Vec::new();
    for &memory in &memories {
        for (i, &t) in args.tables.iter().enumerate() {
            let frames = if t > 65536 { 65536 } else { 8192 };
            let lens: Vec<usize> = if i == 0 { args.frame_lens.clone() } else { args.frame_lens[..1].to_vec() };
            for (j, len) in lens.into_iter().enumerate() {
                let w = Workload { frames, frame_len: len, ..Workload::mixed(t) };
                let vxlan = i == 0 && j == 0 && !args.no_vxlan;
                for encap in [false, vxlan] {
                    let tail = if encap { ", VXLAN" } else { "" };
                    let cores = match args.workers {
                        1 => String::new(),
                        n => format!(", {n} cores"),
                    };
                    cases.push(Case {
                        name: format!("{} MACs, {} B, {}{tail}{cores}", human(t), len + 4, memory.name()),
                        workers: args.workers,
                        pcap: out.join(format!("mixed-{t}-{len}.pcap")),
                        workload: w.clone(),
                        memory,
                        vxlan: encap,
                    });
                    if !vxlan {
                        break;
                    }
                }
            }
        }
    }
    let mut written = std::collections::HashSet::new();
    for c in &cases {
        if written.insert(c.pcap.clone()) {
            c.workload.write_pcap(&c.pcap)?;
        }
    }
    // results[case][contender] = per-round rates
    let mut results: Vec<Vec<(String, Vec<f64>)>> =
        cases.iter().map(|_| args.contenders.iter().map(|c| (c.clone(), Vec::new())).collect()).collect();
    let started = Instant::now();
    for round in 1..=args.rounds {
        for (ci, case) in cases.iter().enumerate() {
            for (k, contender) in args.contenders.iter().enumerate() {
                if contender == "ovs"
                    && (case.workload.table_macs > args.ovs_max_table || case.vxlan || case.workers > 1)
                {
                    continue;
                }
                let rate = match contender.as_str() {
                    "vswitchd" => run_vswitchd(&vswitchd, case, &out, args.core, args.seconds),
                    "testpmd-io" => run_testpmd("io", case, args.core, args.seconds),
                    "testpmd-macswap" => run_testpmd("macswap", case, args.core, args.seconds),
                    "ovs" => run_ovs(case, &out, args.core, args.seconds),
                    other => bail!("unknown contender {other}"),
                }
                .with_context(|| format!("{contender} on {}", case.name));
                let rate = rate.and_then(|r| {
                    if r.tx > 0.0 {
                        Ok(r)
                    } else {
                        Err(anyhow::anyhow!("{contender} took frames in ({:.2} Mpps) but sent none", r.rx / 1e6))
                    }
                });
                match rate {
                    Ok(rate) => {
                        println!(
                            "round {round} | {} | {contender}: {:.2} Mpps in, {:.2} Mpps out",
                            case.name,
                            rate.rx / 1e6,
                            rate.tx / 1e6
                        );
                        results[ci][k].1.push(rate.rx);
                    }
                    // A smoke run must see every contender work; a full run reports what it
                    // could measure.
                    Err(e) if !args.smoke => println!("round {round} | {} | {contender}: FAILED: {e:#}", case.name),
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let report = report(&names, &results, &["ovs", "testpmd-macswap", "testpmd-io"]);
    println!("\n{report}");
    std::fs::write(out.join("results.md"), &report)?;
    let json: Vec<Value> = cases
        .iter()
        .zip(&results)
        .map(|(c, r)| json!({ "workload": c.name, "table_macs": c.workload.table_macs, "frame_len": c.workload.frame_len + 4, "rates_pps": r.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>() }))
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
                if rates.iter().any(|x| *x <= 0.0) {
                    bail!("smoke: {name} forwarded nothing on {}", c.name);
                }
            }
        }
    }
    Ok(())
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}M", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

/// A contender's steady rates: frames taken in from the pcap port (the rate reported) and
/// frames its ports sent (the proof that it really forwarded).
struct Rates {
    rx: f64,
    tx: f64,
}

fn mbufs_for(case: &Case) -> usize {
    // net_pcap keeps the whole file in mbufs on every rx queue, plus rings and bursts in
    // flight.
    (case.workload.frames * (case.workers + 1) + 16384).next_power_of_two() - 1
}

/// The pcap source: the workload on `case.workers` rx queues (each replays the whole file).
fn pcap_source(case: &Case) -> String {
    let files: Vec<String> = (0..case.workers).map(|_| format!("rx_pcap={}", case.pcap.display())).collect();
    format!("net_pcap0,{},infinite_rx=1", files.join(","))
}

/// The forwarding cores from `core` on, round the machine's cores.
fn forwarding_cores(core: usize, n: usize) -> Vec<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).map(|i| (core + i) % cpus).collect()
}

mod ovs;
use ovs::run_ovs;

// ---- testpmd

fn run_testpmd(mode: &str, case: &Case, core: usize, secs: u64) -> Result<Rates> {
    let main_core = if core == 0 { 1 } else { 0 };
    // The main lcore (it only reads commands) shares a core; lcore i + 1 forwards on the
    // i-th forwarding core.
    let lcores: Vec<String> =
        forwarding_cores(core, case.workers).iter().enumerate().map(|(i, c)| format!("{}@{c}", i + 1)).collect();
    let mut eal: Vec<String> = vec!["--lcores".into(), format!("0@{main_core},{}", lcores.join(","))];
    eal.extend(case.memory.eal(memory_mb(&case.workload)).iter().map(|s| s.to_string()));
    eal.extend(["--no-pci", "--no-telemetry", "--file-prefix", "roam-bench-testpmd"].map(String::from));
    eal.extend(["--vdev".into(), pcap_source(case), "--vdev".into(), "net_null0,no-rx=1".into()]);
    let n = case.workers;
    let app = [
        format!("--total-num-mbufs={}", mbufs_for(case)),
        format!("--forward-mode={mode}"),
        format!("--nb-cores={n}"),
        format!("--rxq={n}"),
        format!("--txq={n}"),
    ];
    // Start-up (EAL memory, the pcap preload) is waited out before sampling begins.
    let (rates, out) = testpmd::run(&eal, &app, 2, secs, Duration::from_secs(60))?;
    let no_rate = || format!("testpmd reported no rate:\n{}", out.join("\n"));
    Ok(Rates { rx: steady_rate(&rates.rx).with_context(no_rate)?, tx: steady_rate(&rates.tx).unwrap_or(0.0) })
}

// ---- vswitchd

/// The benchmark's one segment, untagged on the uplink.
fn bench_segment() -> SegmentId {
    SegmentId::new(100).expect("a valid segment id")
}

/// A VM port of the benchmark: a DPDK device with MACs behind it, port security off.
fn device_port(name: &str, device: String, queues: u16, own: [u8; 6], extra: ([u8; 6], u32)) -> Attach {
    Attach {
        name: name.to_string(),
        socket: None,
        device: Some(device),
        mac: MacAddr(own),
        segment: bench_segment(),
        ipv4: Vec::new(),
        ipv6: Vec::new(),
        port_security: false,
        server: false,
        queues,
        extra_macs: vec![MacRange { base: MacAddr(extra.0), count: extra.1 }],
    }
}

fn run_vswitchd(bin: &Path, case: &Case, out: &Path, core: usize, secs: u64) -> Result<Rates> {
    let w = &case.workload;
    let run = VswitchdRun {
        bin,
        dir: out.join("vswitchd"),
        memory: case.memory.eal(memory_mb(w)),
        uplink: "net_null0,no-rx=1",
        mbufs: mbufs_for(case),
        fdb_capacity: (w.table_macs + w.sources + 16).next_power_of_two() * 2,
        cores: forwarding_cores(core, case.workers),
        workers: case.workers,
    };
    let (_guard, mut client) = run.start()?;
    let segment = Segment {
        segment: bench_segment(),
        vlan: None,
        mac: MacAddr(ANYCAST),
        gateway: None,
        subnets: Vec::new(),
        arp_responder: false,
        native: !case.vxlan,
        vni: case.vxlan.then(|| pipeline::Vni::new(5000).expect("a valid VNI")),
    };
    if case.vxlan {
        let leaf = "192.168.100.1".parse()?;
        client.set_underlay(Underlay {
            local: "192.168.100.2".parse()?,
            mac: None,
            leaf: vec![leaf],
            leaf_macs: [(leaf, MacAddr([0x02, 0, 0, 0, 0, 0x01]))].into(),
            mtu: 1500,
        })?;
    }
    client.set_anycast(segment)?;
    for k in 0..SINKS {
        let (base, count) = w.sink_range(k);
        let sink = format!("sink{}", k + 1);
        client.attach(device_port(
            &sink,
            format!("net_null{},no-rx=1", k + 1),
            case.workers as u16,
            [0x02, 0x00, k as u8 + 1, 0xff, 0xff, 0xff],
            (base, count as u32),
        ))?;
    }
    client.attach(device_port(
        "src",
        pcap_source(case),
        case.workers as u16,
        Workload::source(0),
        (Workload::source(1), w.sources as u32 - 1),
    ))?;
    // In: the source port's rx. Out: what the sinks and the uplink sent.
    let counts = || -> Result<[u64; 2]> {
        let s = client.stats()?;
        let rx = s.port("src").context("no counters for src")?.input.rx;
        let tx = s.ports.iter().filter(|p| p.name != "src").map(|p| p.out.sent).sum();
        Ok([rx, tx])
    };
    let [rx, tx] = sample_rates(secs, counts)?;
    if case.vxlan {
        // Every frame for the uplink was encapsulated and sent, none refused.
        let s = client.stats()?;
        let (up, src) = (s.port("uplink").context("no uplink")?, s.port("src").context("no src")?);
        let refused: u64 = ["vtep_unresolved", "vxlan_too_big", "no_headroom"].iter().map(|r| src.drops(r)).sum();
        if up.out.sent == 0 || refused > 0 {
            bail!("VXLAN: the uplink sent {} frames, {refused} were refused", up.out.sent);
        }
    }
    Ok(Rates { rx: steady_rate(&rx).context("vswitchd took no frames in")?, tx: steady_rate(&tx).unwrap_or(0.0) })
}
