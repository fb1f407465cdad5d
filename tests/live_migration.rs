//! The scenario Roam exists for, end to end and real (see `harness/migration.rs`): two
//! hosts, two leaves with BGP, QEMU live migrations of VM-A between the hosts under two
//! TCP streams (from B on host 1 and C on host 2). Twice two moves, with leafd's fix-ups
//! and without (a fabric that only moves host routes), the source port removed at once,
//! then never (with fix-ups) or 2 s later (without; with fix-ups that case is the
//! four-leaf test's, `live_migration_reflected.rs`). Checked at every move:
//! 1. both sessions survive (their stalls, QEMU's downtime and the blackout are printed);
//! 2. with fix-ups, exactly the VMs left on the old host and A are told, and their
//!    neighbour entries for each other become the anycast MAC;
//! 3. the VMs that needed nothing (all of them without fix-ups) receive no ARP frame;
//! 4. both leaves' BGP tables and kernels have A's /32 at its new leaf, from its new host;
//! 5. every frame the source host held for A is accounted for, and every counter adds up.
//!
//! Before the moves with fix-ups, two migrations that fail (the destination QEMU killed
//! during the RAM copy, and at switchover with A stopped): A carries on at its source, nothing moves, nobody hears an
//! ARP frame, the sessions survive and every frame held for A reaches it.
//!
//! Without fix-ups A is a guest that cannot announce itself (`guest_announce=off`): its
//! QEMU asks vswitchd to send a RARP for it, which is all the new leaf hears from it.

use std::time::Duration;

use roam_tests::migration::{FailedMove, Move, Removal, Scenario};
use roam_tests::FailAt;

#[test]
fn live_migrations_keep_tcp_sessions_and_only_the_right_vms_hear_arp() {
    let mut rows = Vec::new();
    for (fixups, tag) in [(true, "m"), (false, "n")] {
        let removals = if fixups {
            [Removal::AtOnce, Removal::Never]
        } else {
            [Removal::AtOnce, Removal::After(Duration::from_secs(2))]
        };
        let mut s = Scenario::start(fixups, !fixups, tag);
        if fixups {
            let failed: Vec<FailedMove> = [FailAt::Copy, FailAt::Switchover(Duration::from_millis(500))]
                .into_iter()
                .map(|at| s.fail_migration(at))
                .collect();
            eprintln!("\n{}", FailedMove::table(&failed));
        }
        for (i, removal) in removals.iter().enumerate() {
            let m = s.migrate(*removal);
            let name = format!("{} #{}", if fixups { "fix-ups" } else { "no fix-ups, RARP-only guest" }, i + 1);
            eprintln!("\n{}", Move::table(&[(name.clone(), &m)]));
            rows.push((name, m));
        }
    }
    let table: Vec<(String, &Move)> = rows.iter().map(|(n, m)| (n.clone(), m)).collect();
    eprintln!("\n{}", Move::table(&table));
}
