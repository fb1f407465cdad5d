//! The live-migration scenario on a fabric of four leaves whose GoBGPs peer only with two
//! FRR route reflectors (`harness/migration/setup.rs`, `Shape::Reflected`): a host under
//! every leaf; A and B on host 1, C on host 4, D on host 2, a `net_null` VM on host 3. A is
//! live-migrated from host 1 to host 4 and back (leaves 1 and 4 have no session with each
//! other: every route between them is reflected) under B's and C's TCP streams over IPv4
//! and IPv6. Checked at each move, as in the two-leaf test: every session survives;
//! exactly the VMs left on the old host and A are told, in both families, and their
//! neighbour entries become the anycast MAC; C and D (a third leaf's VM) hear no ARP and no
//! ND frame; all four leaves' BGP tables carry A's /32 and /128 at the new leaf with the new
//! host's community, and all four kernels route them there; every frame the source host
//! held is accounted for; every counter adds up. The table prints each move's convergence
//! (the new leaf's trigger → the old leaf done), to set beside the two-leaf full mesh's in
//! `live_migration`'s table.
//!
//! The fabric model (`roam-model`) runs the same fabric and moves through leafd's own
//! logic beside the real run: after every move its fix-up frames, its UPDATE messages
//! sent and received by the leaves, and every leaf's host routes must be the real ones.
//! The old port goes 2 s after the move (once BGP has converged, as the model's
//! orchestrator does), so that the order of events, and with it the counts, is fixed.

use std::time::Duration;

use roam_tests::migration::{Move, Removal, Scenario, Shape};

#[test]
fn a_live_migration_between_leaves_that_do_not_peer_converges_through_the_reflectors() {
    let mut s = Scenario::start_on(Shape::Reflected, true, false, "x");
    let moves = 2;
    let mut model = roam_model::Fabric::new(s.model_layout(moves)).expect("the model of this fabric");
    let planned = model.layout.moves.clone();
    let mut before = s.counts();
    let mut rows = Vec::new();
    for (i, (vm, to)) in planned.into_iter().enumerate() {
        let m = s.migrate(Removal::After(Duration::from_secs(2)));
        let name = format!("reflected #{}", i + 1);
        eprintln!("\n{}", Move::table(&[(name.clone(), &m)]));
        rows.push((name, m));

        let now = s.counts();
        let real = now.since(&before);
        before = now;
        let cost = model.migrate(vm, to);
        let modelled = roam_tests::migration::Counts {
            fixup_frames: cost.fixup_frames,
            updates_sent: cost.bgp.sent,
            updates_received: cost.bgp.received,
        };
        eprintln!("[x#{}] real {real:?}, model {modelled:?}", i + 1);
        assert_eq!(real, modelled, "move {}: the model's counts against the real run's", i + 1);
        let routes: Vec<usize> = model.tables().iter().map(|t| t.fib_all).collect();
        assert_eq!(s.kernel_host_routes(), routes, "move {}: each leaf's host routes, real and modelled", i + 1);
    }
    let table: Vec<(String, &Move)> = rows.iter().map(|(n, m)| (n.clone(), m)).collect();
    eprintln!("\n{}", Move::table(&table));
}
