//! The OVS-DPDK contender (`roam_bench::ovs`): the same ports as `dpdk` interfaces, static
//! MAC entries before traffic starts.

use std::path::Path;

use anyhow::{Context, Result};
use pipeline::MacAddr;
use roam_bench::contender::sample_rates;
use roam_bench::ovs::Ovs;
use roam_bench::steady_rate;
use roam_bench::workload::{Workload, ANYCAST, SINKS};

use super::{Case, Rates};

pub(super) fn run_ovs(case: &Case, out: &Path, core: usize, secs: u64) -> Result<Rates> {
    let w = &case.workload;
    let main_core = if core == 0 { 1 } else { 0 };
    let eal = case.memory.eal(super::memory_mb(w)).join(" ");
    let ovs = Ovs::start(&out.join("ovs"), &eal, main_core, core, &[])?;
    let null = |k: usize| format!("net_null{k},no-rx=1");
    ovs.add_port("uplink", "dpdk", &[("dpdk-devargs", &null(0))])?;
    for k in 0..SINKS {
        ovs.add_port(&format!("sink{}", k + 1), "dpdk", &[("dpdk-devargs", &null(k + 1))])?;
    }
    // Static entries before traffic starts (otherwise OVS floods until it learns): the
    // sinks' MACs, and the anycast MAC behind the uplink.
    ovs.fdb_add("uplink", MacAddr(ANYCAST))?;
    for k in 0..SINKS {
        for i in 0..w.sink_range(k).1 {
            ovs.fdb_add(&format!("sink{}", k + 1), MacAddr(Workload::sink_mac(k, i)))?;
        }
    }
    let pcap = format!("net_pcap0,rx_pcap={},infinite_rx=1", case.pcap.display());
    ovs.add_port("src", "dpdk", &[("dpdk-devargs", &pcap)])?;
    // The PMD's only receiving port is the pcap port.
    let [rx, tx] = sample_rates(secs, || Ok([ovs.pmd_rx()?, ovs.tx_packets()?]))?;
    let nothing = || format!("OVS forwarded nothing; see {}", ovs.dir().display());
    Ok(Rates { rx: steady_rate(&rx).with_context(nothing)?, tx: steady_rate(&tx).unwrap_or(0.0) })
}
