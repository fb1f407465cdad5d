//! dpdk-testpmd as a contender, driven in interactive mode: we write its commands to a
//! pipe (`start`, then `show port stats all` once a second, then `stop` and `quit`) and
//! compute rates from its absolute packet counters with our own clock.
//!
//! Why not `--auto-start --stats-period 1`: its standard input then matters (with
//! `/dev/null`, as under CI, it printed no statistics on some machines), its first periods
//! fall into start-up, and a slow start-up left a short run with no steady sample at all.
//! Here start-up is waited out (sampling begins once the counters move), whatever standard
//! input the harness itself has.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::Killed;

/// One `show port stats all`: when its answer arrived, the counters summed over ports,
/// and each port's (`[rx, tx]`, in port order).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: Instant,
    pub rx: u64,
    pub tx: u64,
    pub ports: Vec<[u64; 2]>,
}

/// Per-second rates (packets per second) between consecutive samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    pub rx: Vec<f64>,
    pub tx: Vec<f64>,
}

impl Rates {
    pub fn from_samples(samples: &[Sample]) -> Rates {
        let mut r = Rates::default();
        for w in samples.windows(2) {
            let dt = w[1].at.duration_since(w[0].at).as_secs_f64();
            // Answers that came together (asked during start-up) say nothing of a rate.
            if dt > 0.5 {
                r.rx.push(w[1].rx.saturating_sub(w[0].rx) as f64 / dt);
                r.tx.push(w[1].tx.saturating_sub(w[0].tx) as f64 / dt);
            }
        }
        r
    }
}

/// Parses testpmd's answers: each `NIC statistics for port 0` header starts a sample, and
/// the `RX-packets:`/`TX-packets:` lines inside each port's block (up to its closing line
/// of `#`s) add to it. Lines outside the blocks (testpmd's summary at `stop`) do not.
pub fn parse_samples(lines: &[(Instant, String)]) -> Vec<Sample> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut in_block = false;
    for (at, line) in lines {
        let l = line.trim();
        if l.contains("NIC statistics for port") {
            if l.contains("NIC statistics for port 0 ") {
                samples.push(Sample { at: *at, rx: 0, tx: 0, ports: Vec::new() });
            }
            if let Some(s) = samples.last_mut() {
                s.ports.push([0, 0]);
            }
            in_block = true;
            continue;
        }
        if is_closing(l) {
            in_block = false;
        }
        let Some(s) = samples.last_mut().filter(|_| in_block) else { continue };
        for (i, field) in ["RX-packets:", "TX-packets:"].into_iter().enumerate() {
            if let Some(rest) = l.strip_prefix(field) {
                let n = rest.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                if i == 0 {
                    s.rx += n
                } else {
                    s.tx += n
                }
                if let Some(p) = s.ports.last_mut() {
                    p[i] += n;
                }
            }
        }
    }
    samples
}

/// The line of `#`s that closes a port's block.
fn is_closing(l: &str) -> bool {
    l.len() > 20 && l.bytes().all(|b| b == b'#')
}

/// Runs `dpdk-testpmd` with `eal` and `app` arguments (`-i` is added) over `ports` ports
/// and measures `seconds` one-second samples once its counters start to move (at most
/// `startup` of waiting for that). Returns the rates and everything testpmd printed.
pub fn run(
    eal: &[String],
    app: &[String],
    ports: usize,
    seconds: u64,
    startup: Duration,
) -> Result<(Rates, Vec<String>)> {
    let (samples, out, ()) = run_with(eal, app, ports, seconds, startup, || Ok(()), |_| Ok(()))?;
    Ok((Rates::from_samples(&samples), out))
}

/// [`run`], with `during` called once testpmd has been started (before its counters are
/// read): what it returns (a peer process, say) is kept until the measurement is over,
/// and `last` is called with it after the last sample, before testpmd stops (a peer's
/// counters on ports to testpmd may be gone once testpmd is).
/// Returns the samples from the first one whose counters moved.
pub fn run_with<T>(
    eal: &[String],
    app: &[String],
    ports: usize,
    seconds: u64,
    startup: Duration,
    during: impl FnOnce() -> Result<T>,
    last: impl FnOnce(&mut T) -> Result<()>,
) -> Result<(Vec<Sample>, Vec<String>, T)> {
    // Line-buffered: we read the answers while it runs.
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "-eL", "dpdk-testpmd"]).args(eal).arg("--").arg("-i").args(app);
    let mut child = Killed(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting dpdk-testpmd (apt-get install dpdk)")?,
    );
    let mut stdin = child.0.stdin.take().context("stdin")?;
    let (tx, lines) = mpsc::channel::<(Instant, String)>();
    for out in [
        Box::new(child.0.stdout.take().context("stdout")?) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().context("stderr")?),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let _ = tx.send((Instant::now(), l));
            }
        });
    }
    drop(tx);
    let mut seen: Vec<(Instant, String)> = Vec::new();
    let mut kept = during()?;
    writeln!(stdin, "start").context("writing to testpmd")?;
    let begun = Instant::now();
    let mut moving_since: Option<usize> = None;
    loop {
        // One question at a time: the next only once the last is answered, so that
        // questions queued during start-up are not answered all at once.
        let asked = Instant::now();
        let answered = answers(&seen, ports);
        writeln!(stdin, "show port stats all").context("writing to testpmd (did it exit?)")?;
        while answers(&seen, ports) == answered {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("testpmd exited:\n{}", text(&seen)),
            }
            if begun.elapsed() > startup + Duration::from_secs(seconds + 10) {
                bail!("testpmd stopped answering:\n{}", text(&seen));
            }
        }
        let samples = parse_samples(&seen);
        if moving_since.is_none() {
            moving_since = samples.iter().position(|s| s.rx > 0 || s.tx > 0);
        }
        match moving_since {
            Some(first) if samples.len() > first + seconds as usize => break,
            None if begun.elapsed() > startup => {
                bail!("testpmd forwarded nothing within {startup:?}:\n{}", text(&seen))
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(asked.elapsed()));
    }
    let checked = last(&mut kept);
    let _ = writeln!(stdin, "stop");
    let _ = writeln!(stdin, "quit");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    seen.extend(lines.try_iter());
    let mut samples = parse_samples(&seen);
    samples.drain(..moving_since.unwrap_or(0).min(samples.len()));
    checked?;
    Ok((samples, seen.into_iter().map(|(_, l)| l).collect(), kept))
}

/// Complete answers to `show port stats all` for `ports` ports so far.
fn answers(lines: &[(Instant, String)], ports: usize) -> usize {
    lines.iter().filter(|(_, l)| is_closing(l.trim())).count() / ports
}

fn text(lines: &[(Instant, String)]) -> String {
    lines.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sum_ports_and_rates_use_their_times() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let lines: Vec<(Instant, String)> = [
            (0, "testpmd> "),
            (0, "  ######################## NIC statistics for port 0  ########################"),
            (0, "  RX-packets: 10         RX-missed: 0          RX-bytes:  0"),
            (0, "  TX-packets: 5          TX-errors: 0          TX-bytes:  0"),
            (1, "  ######################## NIC statistics for port 1  ########################"),
            (1, "  RX-packets: 0          RX-missed: 0          RX-bytes:  0"),
            (1, "  TX-packets: 5          TX-errors: 0          TX-bytes:  0"),
            (500, "  ######################## NIC statistics for port 0  ########################"),
            (500, "  RX-packets: 1010"),
            (500, "  TX-packets: 505"),
            (500, "  ######################## NIC statistics for port 1  ########################"),
            (500, "  TX-packets: 505"),
            (500, "  ############################################################################"),
            (1500, "  ######################## NIC statistics for port 0  ########################"),
            (1500, "  TX-packets: 1505"),
            (1500, "  ############################################################################"),
            (1500, "  ######################## NIC statistics for port 1  ########################"),
            (1500, "  TX-packets: 1505"),
            (1500, "  ############################################################################"),
            (1600, "  TX-packets: 99999999      TX-dropped: 0"),
        ]
        .iter()
        .map(|(ms, l)| (at(*ms), l.to_string()))
        .collect();
        let s = parse_samples(&lines);
        assert_eq!(s.len(), 3);
        assert_eq!(answers(&lines, 2), 1, "one answer has both of its blocks closed");
        assert_eq!((s[0].rx, s[0].tx, s[1].rx, s[1].tx, s[2].tx), (10, 10, 1010, 1010, 3010));
        assert_eq!(s[0].ports, vec![[10, 5], [0, 5]]);
        assert_eq!(s[2].ports, vec![[0, 1505], [0, 1505]]);
        let r = Rates::from_samples(&s);
        // 0 -> 500 ms is too close to say anything; 500 -> 1500 ms: 2000 frames a second.
        assert_eq!(r.tx, vec![2000.0]);
    }
}
