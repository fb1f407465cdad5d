//! The switches between the VM's two vNICs, each started while the VM starts (its first
//! `net_virtio_user` port waits for a client before the second socket exists) and kept
//! running until the VM's measurement is over.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use pipeline::{MacAddr, SegmentId};
use roam_api::{Attach, Client, MacRange, Segment};
use roam_bench::contender::VswitchdRun;
use roam_bench::ovs::Ovs;
use roam_bench::workload::{VmPair, ANYCAST};
use roam_bench::Killed;

use super::Case;

/// A running contender (stopped when dropped).
pub enum Running {
    Vswitchd(Killed, Client),
    Ovs(Ovs),
    Testpmd(Killed),
}

pub fn start(name: &str, case: &Case, out: &Path, vswitchd: &Path, core: usize, other: usize) -> Result<Running> {
    match name {
        "vswitchd" => start_vswitchd(case, out, vswitchd, core),
        "ovs" => start_ovs(case, out, core, other),
        "testpmd" => start_testpmd(case, out, core, other),
        other => bail!("unknown contender {other} (vswitchd, ovs, testpmd)"),
    }
}

fn start_vswitchd(case: &Case, out: &Path, bin: &Path, core: usize) -> Result<Running> {
    let run = VswitchdRun {
        bin,
        dir: out.join("vswitchd"),
        memory: case.memory.eal("1024"),
        uplink: "net_null0,no-rx=1",
        mbufs: 16383,
        fdb_capacity: (2 * case.macs + 16).next_power_of_two() * 2,
        cores: vec![core],
        workers: 1,
    };
    let (guard, mut client) = run.start()?;
    let segment = SegmentId::new(100).expect("a valid segment id");
    client.set_anycast(Segment {
        segment,
        vlan: None,
        vni: None,
        mac: MacAddr(ANYCAST),
        gateway: None,
        subnets: Vec::new(),
        arp_responder: false,
        native: true,
    })?;
    for (k, socket) in case.sockets.iter().enumerate() {
        let extra =
            (case.macs > 1).then(|| MacRange { base: MacAddr(VmPair::behind(k, 1)), count: case.macs as u32 - 1 });
        client.attach(Attach {
            name: format!("vnic{k}"),
            socket: Some(socket.clone()),
            device: None,
            mac: MacAddr(VmPair::vnic(k)),
            segment,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            port_security: false,
            server: false,
            queues: 1,
            extra_macs: extra.into_iter().collect(),
        })?;
    }
    Ok(Running::Vswitchd(guard, client))
}

fn start_ovs(case: &Case, out: &Path, core: usize, other: usize) -> Result<Running> {
    let eal = case.memory.eal("1024").join(" ");
    let ovs = Ovs::start(&out.join("ovs"), &eal, other, core, &["per-port-memory=true"])?;
    for (k, socket) in case.sockets.iter().enumerate() {
        let port = format!("vnic{k}");
        ovs.add_port(&port, "dpdkvhostuserclient", &[("vhost-server-path", &socket.display().to_string())])?;
    }
    // Static entries: what is behind each vNIC (otherwise OVS floods until it learns).
    for k in 0..2 {
        for i in 0..case.macs {
            ovs.fdb_add(&format!("vnic{k}"), MacAddr(VmPair::behind(k, i)))?;
        }
    }
    Ok(Running::Ovs(ovs))
}

fn start_testpmd(case: &Case, out: &Path, core: usize, other: usize) -> Result<Running> {
    let mut c = Command::new("dpdk-testpmd");
    c.args(["-l", &format!("{other},{core}"), "--main-lcore", &other.to_string()]);
    c.args(case.memory.eal("1024"));
    c.args(["--no-pci", "--no-telemetry", "--file-prefix", "roam-vhost-limit"]);
    for (k, socket) in case.sockets.iter().enumerate() {
        c.args(["--vdev", &format!("net_vhost{k},iface={},client=1,queues=1", socket.display())]);
    }
    c.args(["--", "--forward-mode=io", "--auto-start"]);
    let log = std::fs::File::create(out.join("testpmd-limit.log"))?;
    // Its standard input stays open (the pipe is kept in the child): without `-i` testpmd
    // runs until a line arrives there.
    c.stdin(Stdio::piped()).stdout(log.try_clone()?).stderr(log);
    Ok(Running::Testpmd(Killed(c.spawn().context("starting dpdk-testpmd (apt-get install dpdk)")?)))
}

impl Running {
    /// Fails if the contender is gone (a crash during the measurement voids its rate) or,
    /// for the switches, if its own counters say it forwarded nothing. Called while the VM
    /// still runs: OVS reports no statistics for a vhost port whose peer has gone.
    pub fn check(&mut self) -> Result<()> {
        let alive = |k: &mut Killed, what: &str| match k.0.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("{what} exited during the measurement ({status})"),
        };
        match self {
            Running::Vswitchd(k, client) => {
                alive(k, "vswitchd")?;
                let sent = client.stats()?.port("vnic1").map_or(0, |p| p.out.sent);
                if sent == 0 {
                    bail!("vswitchd sent nothing to vNIC 1");
                }
                Ok(())
            }
            Running::Ovs(ovs) => {
                if ovs.tx_packets()? == 0 {
                    bail!("OVS sent nothing; see {}", ovs.dir().display());
                }
                Ok(())
            }
            Running::Testpmd(k) => alive(k, "testpmd"),
        }
    }
}
