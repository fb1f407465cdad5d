//! The model on fabrics small enough to count by hand: each leaf's RIB view against the
//! shared start, and what a move costs in fix-up frames, UPDATE messages and routes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use leafd::logic::Path;
use leafd::routes::{Paths, Rib};
use roam_model::layout::{Scope, Spec};
use roam_model::shared::{Base, View};
use roam_model::Fabric;

/// 4 leaves in 2 pods, 2 hosts each, 3 VMs per host (24 VMs), IPv4 only, nobody talking.
fn spec() -> Spec {
    Spec {
        leaves: 4,
        hosts_per_leaf: 2,
        vms_per_host: 3,
        leaves_per_pod: 2,
        subnets: 1,
        dual_stack: false,
        peers: 0,
        moves: 0,
        mix: [1.0, 1.0, 1.0],
        seed: 7,
    }
}

fn v4(i: u32) -> IpAddr {
    // VM i's address in a one-subnet layout: 10.0.0.(i + 2).
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 2)) + i))
}

#[test]
fn a_view_starts_as_every_other_leafs_route_and_keeps_only_what_changed() {
    let layout = spec().layout().expect("layout");
    let base = Arc::new(Base::from_layout(&layout));
    // Leaf 0 holds hosts 0 and 1 (VMs 0..6); the other 18 VMs are remote.
    let mut view: View<Path> = View::new(base.clone(), 0, 18);
    assert_eq!(view.len(), 18);
    assert_eq!(view.get(v4(0)), None, "a local VM is not in the view");
    let start = view.get(v4(6)).expect("VM 6 (host 2, leaf 1) is remote");
    assert_eq!((start.host, start.seq), (3, 0));
    assert_eq!(view.on_host(3), vec![v4(6), v4(7), v4(8)]);

    // VM 6 moves to host 5 (leaf 2): replaced, same length, now behind host 6.
    let moved = Path { nexthop: base.leaf_nexthops[2].0, host: 6, seq: 1 };
    view.insert(v4(6), moved);
    assert_eq!((view.len(), view.changed()), (18, 1));
    assert_eq!(view.on_host(3), vec![v4(7), v4(8)]);
    assert_eq!(view.on_host(6), vec![v4(6), v4(15), v4(16), v4(17)]);
    // VM 0 leaves leaf 0 for host 7: a new remote route.
    view.insert(v4(0), Path { nexthop: base.leaf_nexthops[3].0, host: 8, seq: 1 });
    assert_eq!(view.len(), 19);
    // Both come back to where they started from this leaf's point of view.
    assert_eq!(view.remove(v4(0)).map(|p| p.host), Some(8));
    assert_eq!(view.remove(v4(0)), None);
    assert_eq!(view.len(), 18);
    assert_eq!(view.changed(), 1, "VM 0 was never in the view: no entry kept for it");
    view.insert(v4(6), start);
    assert_eq!(view.get(v4(6)), Some(start));
    assert_eq!(view.remove(v4(9)).map(|p| p.host), Some(4));
    assert_eq!((view.len(), view.get(v4(9))), (17, None));
}

#[test]
fn a_move_to_another_leaf_tells_the_old_neighbours_and_the_mover_and_costs_a_reflected_update() {
    let mut layout = spec().layout().expect("layout");
    // VM 0 from host 0 (leaf 0, with VMs 1 and 2) to host 7 (leaf 3, pod 1).
    layout.moves = vec![(0, 7)];
    let mut fabric = Fabric::new(layout).expect("fabric");
    let costs = fabric.run_moves();
    let c = &costs[0];
    assert_eq!(c.scope, Some(Scope::CrossFabric));
    // VMs 1 and 2 learn VM 0 is behind the gateway now; VM 0 learns the same of them.
    assert_eq!((c.fixups, c.fixup_frames, c.vms_told), (3, 4, 3), "{c:?}");
    assert_eq!(c.flood_frames, 23);
    // Leaf 3 advertises to both reflectors (2), which reflect the new best to leaves 0, 1,
    // 2 and withdraw leaf 0's path from leaf 3 (2 × 4); leaf 0 withdraws its path (2).
    assert_eq!((c.bgp.sent, c.bgp.received), (4, 8), "{c:?}");
    // The three other leaves took the new best path, and nothing else.
    assert_eq!(c.bgp_inputs, 3);
    let tables = fabric.tables();
    let ribs: Vec<usize> = tables.iter().map(|t| t.rib).collect();
    assert_eq!(ribs, vec![19, 18, 18, 17]);
    assert!(tables.iter().all(|t| t.fib_all == 24), "{tables:?}");
    // Nobody talks: on demand, a leaf's kernel holds its local VMs only.
    let on_demand: Vec<usize> = tables.iter().map(|t| t.fib_on_demand).collect();
    assert_eq!(on_demand, vec![5, 6, 6, 7]);
}

#[test]
fn a_move_between_hosts_of_one_leaf_is_one_update_with_the_new_host() {
    let mut layout = spec().layout().expect("layout");
    layout.moves = vec![(0, 1)];
    let mut fabric = Fabric::new(layout).expect("fabric");
    let c = fabric.migrate(0, 1);
    assert_eq!(c.scope, Some(Scope::SameLeaf));
    assert_eq!(c.fixup_frames, 4, "{c:?}");
    // One advertisement per reflector; each reflects it to the three other leaves.
    assert_eq!((c.bgp.sent, c.bgp.received), (2, 6), "{c:?}");
}

#[test]
fn conversations_install_their_peers_routes_on_demand() {
    let mut spec = spec();
    spec.peers = 2;
    let layout = spec.layout().expect("layout");
    let talks = layout.talks.clone();
    assert!(!talks.is_empty());
    let mut fabric = Fabric::new(layout).expect("fabric");
    let tables = fabric.tables();
    for (l, t) in tables.iter().enumerate() {
        assert!(t.fib_on_demand >= 6 && t.fib_on_demand <= t.fib_all, "leaf {l}: {t:?}");
        assert!(t.neighbours_fabric_on_demand <= t.neighbours_fabric_all, "leaf {l}: {t:?}");
    }
    let installed: usize = tables.iter().map(|t| t.fib_on_demand - t.neighbours_local).sum();
    assert!(installed > 0, "some conversation crosses leaves: {talks:?}");
}

#[test]
fn layouts_that_cannot_be_built_are_refused() {
    let mut s = spec();
    s.leaves = 5;
    let e = s.layout().expect_err("a pod of one leaf");
    assert!(e.to_string().contains("two leaves in every pod"), "{e}");
    let mut s = spec();
    s.hosts_per_leaf = 20_000;
    assert!(s.layout().is_err(), "more hosts than 16-bit host ids");
    let mut s = spec();
    s.mix = [0.0, 0.0, 0.0];
    assert!(s.layout().is_err());
}

#[test]
fn a_dual_stack_move_moves_both_addresses_and_a_leaf_has_a_next_hop_per_family() {
    let mut spec = spec();
    spec.dual_stack = true;
    let mut fabric = Fabric::new(spec.layout().expect("layout")).expect("fabric");
    let c = fabric.migrate(0, 7);
    assert_eq!(c.addresses, 2);
    // Twice the single-stack move: both families, one UPDATE stream each.
    assert_eq!((c.fixup_frames, c.vms_told, c.flood_frames), (8, 3, 46), "{c:?}");
    assert_eq!((c.bgp.sent, c.bgp.received), (8, 16), "{c:?}");
    let tables = fabric.tables();
    assert!(tables.iter().all(|t| t.fib_all == 48 && t.neighbours_fabric_all == 6), "{tables:?}");
    // Nobody talks: no next hop in use on demand.
    assert!(tables.iter().all(|t| t.neighbours_fabric_on_demand == 0), "{tables:?}");
}
