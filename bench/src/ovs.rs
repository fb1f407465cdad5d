//! Open vSwitch 3.1 with DPDK (Debian's `openvswitch-switch-dpdk`) as a contender: a
//! private database and run directory, daemons killed when dropped, a netdev bridge with
//! the NORMAL action, ports added and waited for, static MAC entries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pipeline::MacAddr;

use crate::contender::check;
use crate::Killed;

const OVS_VSWITCHD: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

/// A running OVS: `ovsdb-server` and `ovs-vswitchd` in `dir`, bridge `br0`.
pub struct Ovs {
    dir: PathBuf,
    db_sock: String,
    ctl: PathBuf,
    // Dropped in this order: the switch, then its database.
    _vswitchd: Killed,
    _db: Killed,
}

fn env(dir: &Path, c: &mut Command) {
    c.env("OVS_RUNDIR", dir).env("OVS_DBDIR", dir).env("OVS_LOGDIR", dir).env("OVS_SYSCONFDIR", dir);
}

/// An OVS daemon in the private directory, logging there.
fn daemon(dir: &Path, program: &str, args: &[&str], unixctl: &Path, log: &str) -> Result<Killed> {
    let mut c = Command::new(program);
    env(dir, &mut c);
    c.args(args)
        .arg(format!("--unixctl={}", unixctl.display()))
        .arg(format!("--log-file={}", dir.join(log).display()))
        .arg("--no-chdir")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().with_context(|| format!("starting {program} (apt-get install openvswitch-switch-dpdk)"))?;
    Ok(Killed(child))
}

impl Ovs {
    /// Starts OVS in `dir` (emptied first) with EAL arguments `eal_extra`, its main thread
    /// on `main_core` and its one PMD thread on `pmd_core`, and creates `br0`.
    /// `other_config` adds settings (`per-port-memory=true`, …).
    pub fn start(dir: &Path, eal_extra: &str, main_core: usize, pmd_core: usize, other_config: &[&str]) -> Result<Ovs> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let db = dir.join("conf.db");
        let db_sock = format!("unix:{}", dir.join("db.sock").display());
        let mut c = Command::new("ovsdb-tool");
        c.arg("create").arg(&db).arg("/usr/share/openvswitch/vswitch.ovsschema");
        check(&mut c)?;
        let (db_arg, remote) = (db.display().to_string(), format!("--remote=p{db_sock}"));
        let db_daemon =
            daemon(dir, "ovsdb-server", &[&db_arg, &remote], &dir.join("ovsdb-server.ctl"), "ovsdb-server.log")?;
        let vsctl = |args: &[&str]| -> Result<String> {
            let mut c = Command::new("ovs-vsctl");
            env(dir, &mut c);
            c.arg(format!("--db={db_sock}")).arg("--timeout=60").args(args);
            check(&mut c)
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while vsctl(&["--no-wait", "init"]).is_err() {
            if Instant::now() > deadline {
                bail!("ovsdb-server did not come up");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut settings = vec![
            "--no-wait".to_string(),
            "set".into(),
            "Open_vSwitch".into(),
            ".".into(),
            "other_config:dpdk-init=true".into(),
            // --legacy-mem: without it OVS adds --in-memory, which EAL refuses with --no-huge.
            format!(
                "other_config:dpdk-extra={eal_extra} --legacy-mem --no-pci --no-telemetry --file-prefix roam-bench-ovs"
            ),
            format!("other_config:dpdk-lcore-mask={:#x}", 1u64 << main_core),
            format!("other_config:pmd-cpu-mask={:#x}", 1u64 << pmd_core),
        ];
        settings.extend(other_config.iter().map(|s| format!("other_config:{s}")));
        vsctl(&settings.iter().map(String::as_str).collect::<Vec<_>>())?;
        let ctl = dir.join("ovs-vswitchd.ctl");
        let vswitchd = daemon(dir, OVS_VSWITCHD, &[&db_sock], &ctl, "ovs-vswitchd.log")?;
        let ovs = Ovs { dir: dir.to_path_buf(), db_sock, ctl, _vswitchd: vswitchd, _db: db_daemon };
        ovs.vsctl(&["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"])?;
        Ok(ovs)
    }

    /// `ovs-vsctl` against this OVS's database.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new("ovs-vsctl");
        env(&self.dir, &mut c);
        c.arg(format!("--db={}", self.db_sock)).arg("--timeout=60").args(args);
        check(&mut c)
    }

    /// `ovs-appctl` against this OVS's switch.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new("ovs-appctl");
        env(&self.dir, &mut c);
        c.arg("-t").arg(&self.ctl).args(args);
        check(&mut c)
    }

    /// Adds port `name` to `br0` as an interface of `kind` (`dpdk`, `dpdkvhostuserclient`)
    /// with `options`, and waits until the switch has given it an OpenFlow port: `add-port`
    /// returns once the database has the port, which can be before ovs-vswitchd has set it
    /// up, and `fdb/add` then fails ("odp port is present but no ofp port"; seen with
    /// hugepages, where a DPDK port takes longer).
    pub fn add_port(&self, name: &str, kind: &str, options: &[(&str, &str)]) -> Result<()> {
        let mut args = vec!["add-port".to_string(), "br0".into(), name.into(), "--".into(), "set".into()];
        args.extend(["Interface".to_string(), name.into(), format!("type={kind}")]);
        args.extend(options.iter().map(|(k, v)| format!("options:{k}={v}")));
        self.vsctl(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ofport = self.vsctl(&["get", "Interface", name, "ofport"])?;
            if ofport.trim().parse::<i64>().is_ok_and(|n| n > 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let error = self.vsctl(&["get", "Interface", name, "error"]).unwrap_or_default();
                bail!(
                    "OVS gave port {name} no OpenFlow port in 30 s (ofport {}, error {})",
                    ofport.trim(),
                    error.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A static MAC entry for `mac` on `port` (VLAN 0), tried again for a while if the
    /// port is not in OpenFlow yet.
    pub fn fdb_add(&self, port: &str, mac: MacAddr) -> Result<()> {
        let mac = mac.to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.appctl(&["fdb/add", "br0", port, "0", &mac]) {
                Ok(_) => return Ok(()),
                Err(e) if e.to_string().contains("no ofp port") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Packets the PMD threads received (live; OVSDB's interface statistics are refreshed
    /// only every 5 s).
    pub fn pmd_rx(&self) -> Result<u64> {
        let s = self.appctl(&["dpif-netdev/pmd-stats-show"])?;
        let rx: Vec<u64> = s
            .lines()
            .filter_map(|l| l.trim().strip_prefix("packets received:"))
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        if rx.is_empty() {
            bail!("no packet count in pmd-stats-show:\n{s}");
        }
        Ok(rx.iter().sum())
    }

    /// The sum of every datapath port's `TX packets:`.
    pub fn tx_packets(&self) -> Result<u64> {
        Ok(tx_packets(&self.appctl(&["dpctl/show", "-s"])?))
    }

    /// Where its logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The sum of every port's `TX packets:` in `ovs-appctl dpctl/show -s`.
fn tx_packets(show: &str) -> u64 {
    show.lines()
        .filter_map(|l| l.trim().strip_prefix("TX packets:"))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
