//! vswitchd's configuration: a TOML file, overridable by command-line flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How workers poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PollMode {
    /// Spin on the rx queues: lowest latency, a whole core per worker.
    Busy,
    /// Back off to short sleeps when idle, wake on traffic or a command.
    Adaptive,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments, e.g. `["--no-huge", "-m", "1024", "--no-pci", "--file-prefix", "h1"]`.
    #[serde(default)]
    pub eal: Vec<String>,
    /// The control socket (created with mode 0600).
    pub socket: PathBuf,
    /// The state file (attachments and segments, restored at start-up).
    pub state: PathBuf,
    /// The uplink as a DPDK virtual device, `name,args` (e.g. `net_af_packet0,iface=up0`).
    #[serde(default)]
    pub uplink: Option<String>,
    /// The uplink's rx and tx queues (the device must support that many, e.g.
    /// `net_af_packet` with `qpairs=N`): rx queue q goes to the q-th worker after the
    /// uplink's owner, and each worker with a queue sends on its own.
    #[serde(default = "one_queue")]
    pub uplink_queues: u16,
    #[serde(default = "adaptive")]
    pub poll_mode: PollMode,
    /// Mbufs in the packet pool.
    #[serde(default = "mbufs")]
    pub mbufs: u32,
    /// MAC table capacity.
    #[serde(default = "fdb_capacity")]
    pub fdb_capacity: usize,
    /// Worker threads. Each port is owned by one (its rx queue 0, tx queue 0); its rx queue
    /// q goes to the q-th worker after the owner.
    #[serde(default = "one")]
    pub workers: usize,
    /// The CPUs the workers are pinned to, worker w to the w-th (round the list). Without
    /// it every worker may run on any CPU the process was started with (the EAL pins its
    /// own main thread to one, and threads started after it would inherit that one CPU).
    #[serde(default)]
    pub worker_cores: Option<Vec<usize>>,
    /// How long (ms) a VM's link may stay down, its vhost connection open, before the VM
    /// counts as away: its neighbours' frames for it then go to the leaf. A closed
    /// connection makes it away at once.
    #[serde(default = "away_after_ms")]
    pub away_after_ms: u64,
    /// Where to serve Prometheus metrics over HTTP, `IP:PORT` (e.g. `127.0.0.1:9478`).
    /// Off when absent: an open TCP port is the operator's decision (`vsctl metrics`
    /// prints the same exposition over the control socket).
    #[serde(default)]
    pub metrics: Option<String>,
}

fn away_after_ms() -> u64 {
    crate::switch::AWAY_AFTER.as_millis() as u64
}

fn one() -> usize {
    1
}

fn one_queue() -> u16 {
    1
}

fn adaptive() -> PollMode {
    PollMode::Adaptive
}
fn mbufs() -> u32 {
    16383
}
fn fdb_capacity() -> usize {
    1 << 16
}

impl Config {
    /// The configuration without a file: every default.
    pub fn defaults() -> Config {
        Config {
            eal: Vec::new(),
            socket: PathBuf::from("/run/roam/vswitchd.sock"),
            state: PathBuf::from("/var/lib/roam/state.json"),
            uplink: None,
            uplink_queues: 1,
            poll_mode: PollMode::Adaptive,
            mbufs: mbufs(),
            fdb_capacity: fdb_capacity(),
            workers: 1,
            worker_cores: None,
            away_after_ms: away_after_ms(),
            metrics: None,
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        // toml's own message spans several lines (a source excerpt): say it in one.
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(" line {l}:")).unwrap_or_default();
            anyhow::anyhow!("config {}:{at} {}", path.display(), e.message().trim())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_refuses_typos() {
        let c: Config = toml::from_str("socket = \"/tmp/s\"\nstate = \"/tmp/st\"\n").unwrap();
        assert_eq!((c.poll_mode, c.mbufs, c.uplink, c.away_after_ms), (PollMode::Adaptive, 16383, None, 200));
        assert!(toml::from_str::<Config>("socket = \"/tmp/s\"\nstate = \"/tmp/st\"\npoll = \"busy\"\n").is_err());
        let c: Config =
            toml::from_str("socket = \"/s\"\nstate = \"/t\"\npoll_mode = \"busy\"\nuplink = \"net_tap0\"\n").unwrap();
        assert_eq!((c.poll_mode, c.uplink.as_deref()), (PollMode::Busy, Some("net_tap0")));
    }
}
