//! One EAL per test process (DPDK allows a single init), shared by every test in it.
#![allow(dead_code)] // each test binary uses part of this module

use std::sync::OnceLock;

use dpdk::Eal;

/// EAL options for tests: no hugepages, no PCI, a file prefix of this process's own.
pub fn test_eal_args(vdevs: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--lcores", "0@(0-1)", "--log-level", "lib.eal:error"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.push("--file-prefix".into());
    args.push(format!("roam-test-{}", std::process::id()));
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v.to_string());
    }
    args
}

static EAL: OnceLock<Eal> = OnceLock::new();

/// The process's EAL, brought up on first use with two `net_null` ports.
pub fn eal() -> &'static Eal {
    EAL.get_or_init(|| Eal::init(test_eal_args(&["net_null0", "net_null1,no-rx=1"])).expect("EAL init"))
}
