//! What the end-to-end harnesses (`switch_bench`, `vhost_bench`) share about running a
//! contender: EAL memory settings, hugepages, a vswitchd process, per-second counters.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use roam_api::Client;

use crate::Killed;

/// The pages a contender's memory lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// 4 KiB pages (`--no-huge`).
    NoHuge,
    /// 2 MiB hugepages (reserved by [`reserve_hugepages`]).
    Huge,
}

impl Memory {
    /// `nohuge` or `huge`.
    pub fn parse(s: &str) -> Result<Memory> {
        match s {
            "nohuge" => Ok(Memory::NoHuge),
            "huge" => Ok(Memory::Huge),
            other => bail!("memory {other}: nohuge or huge"),
        }
    }

    /// EAL memory arguments for `mb` MiB.
    pub fn eal(self, mb: &'static str) -> Vec<&'static str> {
        match self {
            Memory::NoHuge => vec!["--no-huge", "-m", mb],
            // --huge-unlink: the page files go when the process does, so a contender
            // stopped by a signal leaves no hugepages behind (one run had left 1,024).
            Memory::Huge => vec!["-m", mb, "--huge-unlink"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Memory::NoHuge => "4K pages",
            Memory::Huge => "2M hugepages",
        }
    }
}

/// Reserves at least `want` 2 MiB hugepages (refusing fewer than `need`) and mounts
/// hugetlbfs if nothing has.
pub fn reserve_hugepages(want: usize, need: usize) -> Result<()> {
    let path = "/proc/sys/vm/nr_hugepages";
    let have: usize = std::fs::read_to_string(path)?.trim().parse().unwrap_or(0);
    if have < want {
        std::fs::write(path, want.to_string()).context("reserving hugepages (root needed)")?;
    }
    let got: usize = std::fs::read_to_string(path)?.trim().parse().unwrap_or(0);
    if got < need {
        bail!("only {got} hugepages could be reserved");
    }
    // EAL finds hugepages through a mounted hugetlbfs.
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    if !mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")) {
        std::fs::create_dir_all("/dev/hugepages")?;
        let status =
            Command::new("mount").args(["-t", "hugetlbfs", "nodev", "/dev/hugepages"]).status().context("mount")?;
        if !status.success() {
            bail!("could not mount hugetlbfs on /dev/hugepages");
        }
    }
    Ok(())
}

/// A binary of this workspace next to the running one (vswitchd, say).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let p = std::env::current_exe()?.with_file_name(name);
    if p.exists() {
        return Ok(p);
    }
    bail!("{} not found; build with `cargo build --release --workspace`", p.display())
}

/// Runs `c` to the end; its standard output, or its standard error as the error.
pub fn check(c: &mut Command) -> Result<String> {
    let out = c.output().with_context(|| format!("running {:?}", c.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?}: {}",
            c.get_program(),
            c.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Reads N counters once a second for `secs` seconds; returns each one's per-second
/// increases.
pub fn sample_rates<const N: usize>(secs: u64, mut read: impl FnMut() -> Result<[u64; N]>) -> Result<[Vec<f64>; N]> {
    let mut rates: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let (mut last, mut at) = (read()?, Instant::now());
    for _ in 0..secs {
        std::thread::sleep(Duration::from_secs(1).saturating_sub(at.elapsed()));
        let (now, t) = (read()?, Instant::now());
        for i in 0..N {
            rates[i].push(now[i].saturating_sub(last[i]) as f64 / t.duration_since(at).as_secs_f64());
        }
        (last, at) = (now, t);
    }
    Ok(rates)
}

/// How a benchmark's vswitchd runs.
pub struct VswitchdRun<'a> {
    pub bin: &'a Path,
    /// Its directory (configuration, socket, state, log), emptied first.
    pub dir: PathBuf,
    /// EAL memory arguments.
    pub memory: Vec<&'static str>,
    pub uplink: &'a str,
    pub mbufs: usize,
    pub fdb_capacity: usize,
    /// The cores the whole process runs on, one per worker (its control thread sleeps
    /// between requests).
    pub cores: Vec<usize>,
    /// Busy-polling workers; the uplink gets a queue pair for each.
    pub workers: usize,
}

impl VswitchdRun<'_> {
    /// Starts vswitchd (`workers` busy-polling workers) and connects to its API.
    pub fn start(&self) -> Result<(Killed, Client)> {
        let dir = &self.dir;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let (socket, config) = (dir.join("vswitchd.sock"), dir.join("vswitchd.toml"));
        let eal: Vec<String> = self.memory.iter().map(|a| format!("\"{a}\"")).collect();
        let cores: Vec<String> = self.cores.iter().map(usize::to_string).collect();
        std::fs::write(
            &config,
            format!(
                "eal = [{}, \"--no-pci\", \"--no-telemetry\", \"--file-prefix\", \"roam-bench-vswitchd\", \"--log-level\", \"lib.eal:error\"]
                socket = \"{}\"
                state = \"{}\"
                uplink = \"{}\"
                uplink_queues = {}
                poll_mode = \"busy\"
                workers = {}
                worker_cores = [{}]
                mbufs = {}
                fdb_capacity = {}
                ",
                eal.join(", "),
                socket.display(),
                dir.join("state.json").display(),
                self.uplink,
                self.workers,
                self.workers,
                cores.join(", "),
                self.mbufs,
                self.fdb_capacity,
            ),
        )?;
        let log = std::fs::File::create(dir.join("vswitchd.log"))?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cores.join(","))
            .arg(self.bin)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting vswitchd")?;
        let guard = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                bail!("vswitchd did not come up; see {}", dir.join("vswitchd.log").display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let client = Client::connect(&socket, Some(Duration::from_secs(60)))?;
        Ok((guard, client))
    }
}
