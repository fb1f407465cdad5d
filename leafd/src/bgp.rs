//! Host routes in BGP, through GoBGP (Debian's `gobgpd`, driven with its `gobgp` CLI over
//! the daemon's API socket). GoBGP installs no kernel routes: leafd does, from what
//! `gobgp monitor global rib` reports.
//!
//! What a /32 carries (all inside BGP):
//! - community `65010:<host>`: the host (vswitchd) the address sits behind;
//! - community `65011:<seq>`: the mobility sequence number;
//! - local preference `100 + seq`: so that BGP's own best path is the newest location on
//!   every leaf (the leaves are one iBGP AS).

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use crossbeam::channel::Sender;
use serde_json::Value;

use crate::logic::{Input, Path};
use crate::Event;

pub const HOST_COMMUNITY: u16 = 65010;
pub const SEQ_COMMUNITY: u16 = 65011;
pub const BASE_LOCAL_PREF: u32 = 100;

/// The GoBGP CLI pointed at one daemon.
#[derive(Debug, Clone)]
pub struct Gobgp {
    pub bin: PathBuf,
    pub target: String,
}

impl Gobgp {
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("--target")
            .arg(&self.target)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("gobgp {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Originates `ip/32`.
    pub fn advertise(&self, ip: Ipv4Addr, nexthop: Ipv4Addr, host: u16, seq: u32) -> Result<()> {
        let communities = format!("{HOST_COMMUNITY}:{host},{SEQ_COMMUNITY}:{}", seq.min(65535));
        let lp = (BASE_LOCAL_PREF + seq).to_string();
        self.run(&[
            "global",
            "rib",
            "add",
            "-a",
            "ipv4",
            &format!("{ip}/32"),
            "nexthop",
            &nexthop.to_string(),
            "community",
            &communities,
            "local-pref",
            &lp,
        ])?;
        Ok(())
    }

    pub fn withdraw(&self, ip: Ipv4Addr) -> Result<()> {
        self.run(&["global", "rib", "del", "-a", "ipv4", &format!("{ip}/32")])?;
        Ok(())
    }

    /// Streams other leaves' best /32 paths into `tx` (the current ones first), forever;
    /// restarts the monitor if it exits (gobgpd not up yet, or restarted).
    pub fn monitor(&self, tx: Sender<Event>) {
        loop {
            match self.monitor_once(&tx) {
                Ok(()) => tracing::warn!("gobgp monitor ended; restarting it"),
                Err(e) => tracing::warn!("gobgp monitor: {e:#}; retrying"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn monitor_once(&self, tx: &Sender<Event>) -> Result<()> {
        let mut child = Command::new(&self.bin)
            .arg("--target")
            .arg(&self.target)
            .args(["monitor", "global", "rib", "--current", "-j", "-a", "ipv4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let out = child.stdout.take().context("no stdout")?;
        for line in BufReader::new(out).lines() {
            let line = line?;
            let at = SystemTime::now();
            for (ip, path, withdrawn) in parse_monitor_line(&line) {
                let input = if withdrawn { Input::Withdrawn(ip, path) } else { Input::Best(ip, path) };
                if tx.send(Event { input, at }).is_err() {
                    let _ = child.kill();
                    return Ok(());
                }
            }
        }
        let _ = child.wait();
        Ok(())
    }
}

/// The other leaves' /32 paths in one line of `gobgp monitor global rib -j`: (address,
/// path, withdrawn). Paths this daemon originated (no `neighbor-ip`) are left out.
pub fn parse_monitor_line(line: &str) -> Vec<(Ipv4Addr, Path, bool)> {
    let Ok(Value::Array(paths)) = serde_json::from_str::<Value>(line) else { return Vec::new() };
    paths.iter().filter_map(parse_path).collect()
}

fn parse_path(p: &Value) -> Option<(Ipv4Addr, Path, bool)> {
    p.get("neighbor-ip")?;
    let prefix = p["nlri"]["prefix"].as_str()?;
    let ip: Ipv4Addr = prefix.strip_suffix("/32")?.parse().ok()?;
    let mut nexthop = None;
    let (mut host, mut seq) = (None, 0);
    for a in p["attrs"].as_array()? {
        match a["type"].as_u64() {
            Some(3) => nexthop = a["nexthop"].as_str().and_then(|s| s.parse().ok()),
            Some(8) => {
                for c in a["communities"].as_array()?.iter().filter_map(Value::as_u64) {
                    let (hi, lo) = ((c >> 16) as u16, (c & 0xffff) as u32);
                    match hi {
                        HOST_COMMUNITY => host = Some(lo as u16),
                        SEQ_COMMUNITY => seq = lo,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let withdrawn = p["withdrawal"].as_bool().unwrap_or(false);
    Some((ip, Path { nexthop: nexthop?, host: host?, seq }, withdrawn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_give_peer_paths_with_host_and_sequence() {
        // As gobgp 3.10 prints them.
        let line = r#"[{"nlri":{"prefix":"10.1.1.1/32"},"age":1795259132,"best":false,"attrs":[{"type":1,"value":2},{"type":2,"as_paths":[]},{"type":3,"nexthop":"192.168.0.2"},{"type":5,"value":101},{"type":8,"communities":[4260495362,4260560897]}],"stale":false,"source-id":"192.168.0.2","neighbor-ip":"192.168.0.2"}]"#;
        let got = parse_monitor_line(line);
        assert_eq!(
            got,
            vec![(
                "10.1.1.1".parse().unwrap(),
                Path { nexthop: "192.168.0.2".parse().unwrap(), host: 2, seq: 1 },
                false
            )]
        );
        let withdrawn = line.replace(r#""stale":false,"#, r#""stale":false,"withdrawal":true,"#);
        assert!(parse_monitor_line(&withdrawn)[0].2);
        // Our own path (no neighbor-ip), a /24, no host community, garbage: nothing.
        let own = r#"[{"nlri":{"prefix":"10.1.1.1/32"},"attrs":[{"type":3,"nexthop":"192.168.0.1"},{"type":8,"communities":[4260495361]}]}]"#;
        assert!(parse_monitor_line(own).is_empty());
        assert!(parse_monitor_line(&line.replace("/32", "/24")).is_empty());
        assert!(parse_monitor_line(&line.replace("4260495362,", "")).is_empty());
        assert!(parse_monitor_line("[]").is_empty() && parse_monitor_line("nonsense").is_empty());
    }
}
