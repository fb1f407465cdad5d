//! vswitchd: see the crate docs and `vswitchd --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use dpdk::{Eal, Mempool, MempoolConfig};
use mac_table::MacTable;
use parking_lot::Mutex;
use pipeline::{Processor, SwitchConfig};
use vswitchd::config::{Config, PollMode};
use vswitchd::state::State;
use vswitchd::switch::Switch;
use vswitchd::worker::Worker;

const AFTER_HELP: &str = "Examples:
  vswitchd --config /etc/roam/vswitchd.toml
  vswitchd --check-config --config /etc/roam/vswitchd.toml
  vswitchd --uplink net_af_packet0,iface=eth1 --workers 2 --worker-cores 2,3 \\
           --metrics 127.0.0.1:9478 -- -m 1024 --no-pci --file-prefix roam
  vswitchd --completions bash > /usr/share/bash-completion/completions/vswitchd

Exit codes:
  0    stopped by SIGTERM or SIGINT (workers stopped, control socket removed), or
       --check-config found the configuration good
  1    could not start, or failed while running (one line on stderr says why)
  2    bad usage (unknown option, bad value)
  134  aborted after a panic (SIGABRT; one log line names the thread): restart it, the
       state file restores the attachments";

#[derive(Parser)]
#[command(
    version,
    about = "Roam's host switch: vhost-user VM ports, an uplink to the leaf, a JSON control API",
    after_help = AFTER_HELP
)]
struct Args {
    /// TOML configuration file (see README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Control socket path.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// State file path (attachments and segments survive restarts here).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Uplink as a DPDK virtual device, `name,args` (e.g. `net_af_packet0,iface=up0`).
    #[arg(long)]
    uplink: Option<String>,
    /// The uplink's rx and tx queues (one per worker at most is useful) [default: 1].
    #[arg(long)]
    uplink_queues: Option<u16>,
    /// Worker polling: `adaptive` sleeps briefly when idle, `busy` spins.
    #[arg(long, value_enum)]
    poll_mode: Option<PollMode>,
    /// Worker threads (each port is owned by one; its other rx queues go to the next ones).
    #[arg(long)]
    workers: Option<usize>,
    /// CPUs to pin the workers to, worker w to the w-th, e.g. `2,3` [default: none, every
    /// worker may run on any CPU the process was started with].
    #[arg(long, value_delimiter = ',')]
    worker_cores: Option<Vec<usize>>,
    /// How long (ms) a VM's link may stay down, its vhost connection open, before the VM
    /// is away and its neighbours' frames for it go to the leaf [default: 200].
    #[arg(long)]
    away_after_ms: Option<u64>,
    /// Serve Prometheus metrics over HTTP at `IP:PORT`, e.g. `127.0.0.1:9478` [default: off].
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<String>,
    /// Check the configuration (file, flags, worker CPUs, state file) and exit: 0 when
    /// vswitchd would start with it, 1 with the reason when not.
    #[arg(long)]
    check_config: bool,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<clap_complete::Shell>,
    /// Serve debug requests (`debug-crash-worker`); for tests.
    #[arg(long, hide = true)]
    debug_api: bool,
    /// EAL arguments after `--` (replace the configuration's).
    #[arg(last = true)]
    eal: Vec<String>,
}

/// A panic anywhere (a worker's above all) ends the process at once, with one log line:
/// a daemon whose data plane died must not go on answering the API as if it were alive.
/// Its supervisor restarts it, and the state file brings every attachment back.
fn die_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!("thread {thread} panicked at {at}: {what}; vswitchd aborts (restart it: the state file restores the attachments)");
        std::process::abort();
    }));
}

/// Removes the control socket when vswitchd stops, whether cleanly or on an error after
/// binding it (never a socket vswitchd did not create).
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    die_on_panic();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // One line, every cause after a colon: what a supervisor's log shows.
        Err(e) => {
            eprintln!("vswitchd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration file with the flags over it, checked.
fn settle(args: &Args) -> Result<Config> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::defaults(),
    };
    if let Some(ms) = args.away_after_ms {
        cfg.away_after_ms = ms;
    }
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if args.worker_cores.is_some() {
        cfg.worker_cores = args.worker_cores.clone();
    }
    if let Some(q) = args.uplink_queues {
        cfg.uplink_queues = q;
    }
    anyhow::ensure!((1..=8).contains(&cfg.uplink_queues), "uplink_queues must be 1..=8, not {}", cfg.uplink_queues);
    anyhow::ensure!((1..=64).contains(&cfg.workers), "workers must be 1..=64, not {}", cfg.workers);
    if let Some(s) = &args.socket {
        cfg.socket = s.clone();
    }
    if let Some(s) = &args.state {
        cfg.state = s.clone();
    }
    if args.uplink.is_some() {
        cfg.uplink = args.uplink.clone();
    }
    if let Some(m) = args.poll_mode {
        cfg.poll_mode = m;
    }
    if args.metrics.is_some() {
        cfg.metrics = args.metrics.clone();
    }
    if !args.eal.is_empty() {
        cfg.eal = args.eal.clone();
    }
    if let Some(m) = &cfg.metrics {
        m.parse::<std::net::SocketAddr>()
            .map_err(|_| anyhow::anyhow!("metrics address {m:?} is not IP:PORT (e.g. 127.0.0.1:9478)"))?;
    }
    Ok(cfg)
}

/// `--check-config`: everything start-up reads, checked without starting (no EAL, no
/// socket): the file, the flags, the worker placement and the state file.
fn check_config(args: &Args) -> Result<()> {
    let cfg = settle(args)?;
    let cpus = dpdk::cpus::thread_cpus().context("the process's CPUs")?;
    let placement = worker_placement(&cfg, &cpus)?;
    let state = State::load(&cfg.state)?;
    println!(
        "vswitchd: configuration OK: socket {}, state {} ({} attachments, {} segments), {} worker(s) on CPUs {:?}, \
         uplink {}, metrics {}",
        cfg.socket.display(),
        cfg.state.display(),
        state.attachments.len(),
        state.segments.len(),
        cfg.workers,
        placement,
        cfg.uplink.as_deref().unwrap_or("none"),
        cfg.metrics.as_deref().unwrap_or("off"),
    );
    Ok(())
}

fn run(args: Args) -> Result<()> {
    if let Some(shell) = args.completions {
        clap_complete::generate(
            shell,
            &mut <Args as clap::CommandFactory>::command(),
            "vswitchd",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if args.check_config {
        return check_config(&args);
    }
    let cfg = settle(&args)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let state = State::load(&cfg.state)?;
    let listener = vswitchd::control::bind(&cfg.socket)?;
    let _socket = SocketFile(cfg.socket.clone());
    // Before the EAL pins this thread to its main lcore's CPU.
    let cpus = dpdk::cpus::thread_cpus().context("the process's CPUs")?;
    let placement = worker_placement(&cfg, &cpus)?;
    let eal = Eal::init(&cfg.eal).context("EAL")?;
    let pool = Arc::new(Mempool::new(&eal, "roam_pkts", &MempoolConfig { size: cfg.mbufs, ..Default::default() })?);
    let table = Arc::new(MacTable::new(cfg.fdb_capacity)?);

    let mut commands = Vec::new();
    let mut worker_threads = Vec::new();
    // Leaf VTEPs' ARP answers, from the workers to the control thread.
    let (learned_tx, learned) = crossbeam::channel::bounded(256);
    for (w, cores) in placement.iter().cloned().enumerate() {
        let (tx, rx) = crossbeam::channel::unbounded();
        let processor = Processor::new(table.reader()?, Arc::new(SwitchConfig::new()));
        let worker = Worker::new(processor, rx, pool.clone(), cfg.poll_mode, cfg.workers, learned_tx.clone());
        let eal = eal.clone();
        worker_threads.push(std::thread::Builder::new().name(format!("roam-worker{w}")).spawn(move || {
            // Where it runs, before the EAL records its CPU set with its lcore id.
            if let Err(e) = dpdk::cpus::set_thread_cpus(&cores) {
                tracing::warn!("worker {w} could not be placed on CPUs {cores:?}: {e}");
            }
            // An lcore id for the worker: the mempool's per-lcore cache then serves its
            // mbuf allocations and frees (without one, every one goes to the shared ring).
            let _lcore = match eal.register_thread() {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!("worker {w} runs without an lcore id (no mempool cache): {e}");
                    None
                }
            };
            worker.run()
        })?);
        commands.push(tx);
    }

    let switch =
        Arc::new(Mutex::new(Switch::new(eal.clone(), pool.clone(), table, commands, cfg.state.clone(), learned)));
    if args.debug_api {
        switch.lock().enable_debug_api();
    }
    switch.lock().set_away_after(Duration::from_millis(cfg.away_after_ms));
    if let Some(up) = &cfg.uplink {
        switch.lock().set_uplink(up, cfg.uplink_queues)?;
    }
    switch.lock().restore(state)?;
    if let Some(addr) = &cfg.metrics {
        let endpoint = vswitchd::api::metrics::Endpoint::bind(addr).map_err(anyhow::Error::msg)?;
        tracing::info!(address = %endpoint.addr(), "metrics at http://{}/metrics", endpoint.addr());
        let switch = switch.clone();
        std::thread::Builder::new()
            .name("roam-metrics".into())
            .spawn(move || endpoint.serve(|| switch.lock().metrics().map(|m| m.text).map_err(|e| format!("{e:#}"))))?;
    }
    {
        let switch = switch.clone();
        std::thread::Builder::new().name("roam-control".into()).spawn(move || {
            if let Err(e) = dpdk::cpus::set_thread_cpus(&cpus) {
                tracing::warn!("the control thread could not be placed on CPUs {cpus:?}: {e}");
            }
            vswitchd::control::serve(listener, switch)
        })?;
    }
    tracing::info!(
        socket = %cfg.socket.display(),
        poll_mode = ?cfg.poll_mode,
        workers = cfg.workers,
        worker_cpus = ?placement,
        away_after_ms = cfg.away_after_ms,
        "vswitchd ready"
    );
    // Link changes are events: a migrated VM's port comes up on its new host the moment
    // the VM resumes there, and leafd reacts to that, so look often (a link read is a
    // memory read).
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
        let mut s = switch.lock();
        s.poll_links();
        s.poll_underlay();
    }
    tracing::info!("shutting down");
    switch.lock().stop();
    for t in worker_threads {
        let _ = t.join();
    }
    Ok(())
}

/// The CPUs each worker may run on: its one pinned CPU (`worker_cores`, each of which must
/// be one the process was started with), or all of the process's CPUs.
fn worker_placement(cfg: &Config, cpus: &[usize]) -> Result<Vec<Vec<usize>>> {
    let Some(cores) = &cfg.worker_cores else { return Ok(vec![cpus.to_vec(); cfg.workers]) };
    anyhow::ensure!(!cores.is_empty(), "worker_cores is empty (leave it out to let workers use every CPU)");
    if let Some(c) = cores.iter().find(|c| !cpus.contains(c)) {
        anyhow::bail!("worker_cores: CPU {c} is not one this process may run on ({cpus:?})");
    }
    Ok((0..cfg.workers).map(|w| vec![cores[w % cores.len()]]).collect())
}
