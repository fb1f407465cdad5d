//! Shared pieces of Roam's benchmark harnesses: running a contender process for a while
//! and reading its per-second packet rates (dpdk-testpmd's in `testpmd`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod contender;
pub mod ovs;
pub mod report;
pub mod testpmd;
pub mod workload;

/// A small xorshift generator: reproducible workloads without a dependency.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A child that is stopped (SIGINT, then SIGKILL) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Median of a non-empty sample.
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mid = s.len() / 2;
    if s.len() % 2 == 0 {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    }
}

/// Runs `cmd` for `secs` seconds, stops it with SIGINT, and returns every line it printed
/// on stdout and stderr.
pub fn run_for(cmd: &mut Command, secs: u64) -> Result<Vec<String>> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let err_reader =
        std::thread::spawn(move || BufReader::new(stderr).lines().map_while(|l| l.ok()).collect::<Vec<_>>());
    let out_reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(|l| l.ok()).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait()?.is_none() {
        // SIGINT: both testpmd and our forwarders stop cleanly on it.
        Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
        let stop_by = Instant::now() + Duration::from_secs(10);
        while child.try_wait()?.is_none() {
            if Instant::now() > stop_by {
                child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let status = child.wait()?;
    let mut lines = out_reader.join().unwrap_or_default();
    lines.extend(err_reader.join().unwrap_or_default());
    if !status.success() && status.code() != Some(130) && status.code().is_some() {
        bail!("{program} failed ({status}):\n{}", lines.join("\n"));
    }
    Ok(lines)
}

/// Our forwarders' output: one `tx_pps <value>` line per second.
pub fn roam_tx_rates(lines: &[String]) -> Vec<f64> {
    lines.iter().filter_map(|l| l.strip_prefix("tx_pps ")).filter_map(|v| v.trim().parse().ok()).collect()
}

/// The steady-state rate of a run: the median of its per-second samples, leaving out the
/// first two (start-up) and any zero (not yet forwarding).
pub fn steady_rate(samples: &[f64]) -> Option<f64> {
    let steady: Vec<f64> = samples.iter().copied().skip(2).filter(|r| *r > 0.0).collect();
    (!steady.is_empty()).then(|| median(&steady))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_skips_start_up_and_zeros() {
        assert_eq!(steady_rate(&[1.0, 2.0, 0.0, 10.0, 30.0, 20.0]), Some(20.0));
        assert_eq!(steady_rate(&[5.0, 5.0]), None);
        assert_eq!(median(&[1.0, 4.0, 2.0, 3.0]), 2.5);
    }
}
