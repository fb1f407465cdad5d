//! The OVS-DPDK contender: Open vSwitch 3.1 with DPDK (Debian's `openvswitch-switch-dpdk`)
//! with a private database and run directory, a netdev bridge with the NORMAL action, the
//! same ports as `dpdk` interfaces, and static MAC entries before traffic starts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pipeline::MacAddr;
use roam_bench::workload::{Workload, ANYCAST, SINKS};
use roam_bench::{steady_rate, Killed};

use super::{sample_rates, Case, Rates};

const OVS_VSWITCHD: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

pub(super) fn run_ovs(case: &Case, out: &Path, core: usize, secs: u64) -> Result<Rates> {
    let w = &case.workload;
    let dir = out.join("ovs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("conf.db");
    let db_sock = format!("unix:{}", dir.join("db.sock").display());
    let ctl = dir.join("ovs-vswitchd.ctl");
    let env = |c: &mut Command| {
        c.env("OVS_RUNDIR", &dir).env("OVS_DBDIR", &dir).env("OVS_LOGDIR", &dir).env("OVS_SYSCONFDIR", &dir);
    };
    let mut c = Command::new("ovsdb-tool");
    c.arg("create").arg(&db).arg("/usr/share/openvswitch/vswitch.ovsschema");
    check(&mut c)?;
    // An OVS daemon in the private directory, logging there, killed when dropped.
    let daemon = |program: &str, args: &[&str], unixctl: &Path, log: &str| -> Result<Killed> {
        let mut c = Command::new(program);
        env(&mut c);
        c.args(args)
            .arg(format!("--unixctl={}", unixctl.display()))
            .arg(format!("--log-file={}", dir.join(log).display()))
            .arg("--no-chdir")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child =
            c.spawn().with_context(|| format!("starting {program} (apt-get install openvswitch-switch-dpdk)"))?;
        Ok(Killed(child))
    };
    let (db_arg, remote) = (db.display().to_string(), format!("--remote=p{db_sock}"));
    let _db = daemon("ovsdb-server", &[&db_arg, &remote], &dir.join("ovsdb-server.ctl"), "ovsdb-server.log")?;
    let vsctl = |args: &[&str]| -> Result<String> {
        let mut c = Command::new("ovs-vsctl");
        env(&mut c);
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
    let main_core = if core == 0 { 1 } else { 0 };
    vsctl(&[
        "--no-wait",
        "set",
        "Open_vSwitch",
        ".",
        "other_config:dpdk-init=true",
        // --legacy-mem: without it OVS adds --in-memory, which EAL refuses with --no-huge.
        &format!(
            "other_config:dpdk-extra={} --legacy-mem --no-pci --no-telemetry --file-prefix roam-bench-ovs",
            case.memory.eal(case.workload.frames).join(" ")
        ),
        &format!("other_config:dpdk-lcore-mask={:#x}", 1u64 << main_core),
        &format!("other_config:pmd-cpu-mask={:#x}", 1u64 << core),
    ])?;
    let _vs = daemon(OVS_VSWITCHD, &[&db_sock], &ctl, "ovs-vswitchd.log")?;
    vsctl(&["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"])?;
    let add_port = |name: &str, devargs: &str| {
        vsctl(&[
            "add-port",
            "br0",
            name,
            "--",
            "set",
            "Interface",
            name,
            "type=dpdk",
            &format!("options:dpdk-devargs={devargs}"),
        ])
    };
    add_port("uplink", "net_null0,no-rx=1")?;
    for k in 0..SINKS {
        add_port(&format!("sink{}", k + 1), &format!("net_null{},no-rx=1", k + 1))?;
    }
    // Static entries before traffic starts (otherwise OVS floods until it learns): the
    // sinks' MACs, and the anycast MAC behind the uplink.
    let appctl = |args: &[&str]| -> Result<String> {
        let mut c = Command::new("ovs-appctl");
        env(&mut c);
        c.arg("-t").arg(&ctl).args(args);
        check(&mut c)
    };
    appctl(&["fdb/add", "br0", "uplink", "0", &MacAddr(ANYCAST).to_string()])?;
    for k in 0..SINKS {
        for i in 0..w.sink_range(k).1 {
            appctl(&[
                "fdb/add",
                "br0",
                &format!("sink{}", k + 1),
                "0",
                &MacAddr(Workload::sink_mac(k, i)).to_string(),
            ])?;
        }
    }
    add_port("src", &format!("net_pcap0,rx_pcap={},infinite_rx=1", case.pcap.display()))?;
    // OVSDB's interface statistics are refreshed every 5 s; the PMD's own counter is live
    // (its only receiving port is the pcap port), and so are the datapath's port counters.
    let counts = || -> Result<[u64; 2]> {
        let s = appctl(&["dpif-netdev/pmd-stats-show"])?;
        let rx = s
            .lines()
            .find_map(|l| l.trim().strip_prefix("packets received:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no packet count in pmd-stats-show:\n{s}"))?;
        Ok([rx, ovs_tx_packets(&appctl(&["dpctl/show", "-s"])?)])
    };
    let [rx, tx] = sample_rates(secs, counts)?;
    let nothing = || format!("OVS forwarded nothing; see {}", dir.display());
    Ok(Rates { rx: steady_rate(&rx).with_context(nothing)?, tx: steady_rate(&tx).unwrap_or(0.0) })
}

/// The sum of every port's `TX packets:` in `ovs-appctl dpctl/show -s`.
fn ovs_tx_packets(show: &str) -> u64 {
    show.lines()
        .filter_map(|l| l.trim().strip_prefix("TX packets:"))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn check(c: &mut Command) -> Result<String> {
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
