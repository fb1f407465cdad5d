//! The scenario Roam exists for, end to end and real (see `harness/migration.rs`): two
//! hosts, two leaves with BGP, a QEMU live migration of VM-A from host 1 to host 2 under
//! two TCP streams. Checked, with fix-ups and then without:
//! 1. both sessions survive (their longest stalls and QEMU's downtime are printed);
//! 2. (with fix-ups) B's neighbour entry for A and A's for B become the anycast MAC;
//! 3. C and D receive no ARP frame during the move (counted inside the guests);
//! 4. both leaves' BGP tables have A's /32 at leaf 2, from host 2;
//! 5. without fix-ups (DMAC rewrite alone) both sessions survive too.

use roam_tests::migration::{scenario, Outcome};

#[test]
fn a_live_migration_keeps_tcp_sessions_and_only_the_right_vms_hear_arp() {
    let with = scenario(true, "m");
    let without = scenario(false, "n");
    eprintln!("\n{}", Outcome::table(&[("fix-ups + DMAC rewrite", &with), ("DMAC rewrite alone", &without)]));
}
