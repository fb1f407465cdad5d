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

use roam_tests::migration::{Move, Removal, Scenario, Shape};

#[test]
fn a_live_migration_between_leaves_that_do_not_peer_converges_through_the_reflectors() {
    let mut s = Scenario::start_on(Shape::Reflected, true, false, "x");
    let mut rows = Vec::new();
    for (i, removal) in [Removal::AtOnce, Removal::AtOnce].into_iter().enumerate() {
        let m = s.migrate(removal);
        let name = format!("reflected #{}", i + 1);
        eprintln!("\n{}", Move::table(&[(name.clone(), &m)]));
        rows.push((name, m));
    }
    let table: Vec<(String, &Move)> = rows.iter().map(|(n, m)| (n.clone(), m)).collect();
    eprintln!("\n{}", Move::table(&table));
}
