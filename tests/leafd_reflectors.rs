//! leafd over route reflectors (fast, no guests): four leaves whose GoBGPs peer only with
//! two FRR `bgpd` route reflectors (`harness/reflectors.rs`), a vswitchd host under each
//! leaf with `net_null` VM ports. Host routes reach every leaf through the reflectors with
//! their host and sequence communities and their local preference (the sequence) intact;
//! a move between two leaves that do not peer with each other converges on all four, with
//! the selective fix-ups for the right VMs only; with one reflector killed, a move back
//! still converges over the other. The convergence time (the new leaf's trigger to the
//! old leaf's step back) is printed beside a full mesh's.

use std::time::Duration;

use roam_tests::fabric::{Fabric, LeafNode};
use roam_tests::{wait_for, TestDir, Vswitchd};
use serde_json::json;

fn attach(vs: &Vswitchd, name: &str, device: &str, last: u8) {
    vs.ok(json!({ "op": "attach", "name": name, "device": device, "mac": format!("52:54:00:00:00:{last:02x}"), "segment": 100, "ipv4": [format!("10.1.1.{last}")] }));
}

/// Waits until every leaf's best path for `prefix` is from `owner` with these
/// communities, and its kernel routes it there.
fn everywhere(fabric: &Fabric, prefix: &str, owner: usize, communities: &[&str]) {
    let o = &fabric.leaves[owner];
    let ip = prefix.split('/').next().unwrap_or_default();
    for l in &fabric.leaves {
        let (nh, c) =
            wait_for(&format!("{}'s best path for {prefix} from {}", l.name, o.name), Duration::from_secs(20), || {
                l.best_path(prefix).filter(|(nh, _)| *nh == o.fabric_ip)
            });
        assert_eq!(
            (nh.as_str(), c.iter().map(String::as_str).collect::<Vec<_>>()),
            (o.fabric_ip.as_str(), communities.to_vec())
        );
        let want = if l.name == o.name { format!("dev {}", l.leaf.leaf_if) } else { format!("via {}", o.fabric_ip) };
        wait_for(&format!("{}'s kernel route for {ip}", l.name), Duration::from_secs(10), || {
            l.route(ip).contains(&want).then_some(())
        });
    }
}

/// Milliseconds from the new leaf's trigger to the old leaf's step back, for the move of
/// `ip` whose trigger came at or after `since_us`.
fn convergence(new: &LeafNode, old: &LeafNode, ip: &str, since_us: u64) -> f64 {
    let i = new.wait_move_since("in", ip, since_us);
    let o = old.wait_move_since("out", ip, since_us);
    o.done_us.saturating_sub(i.trigger.at_us) as f64 / 1000.0
}

fn micros_now() -> u64 {
    roam_tests::micros(std::time::SystemTime::now())
}

#[test]
fn host_routes_and_moves_cross_two_frr_route_reflectors() {
    let dir = TestDir::new("reflect");
    let mut fabric = Fabric::reflected(&dir, "r", 4);
    let hosts = fabric.start_hosts(&dir, true);
    // A and B on host 1, C on host 4, D on host 2.
    attach(&hosts[0], "a", "net_null11,no-rx=1", 1);
    attach(&hosts[0], "b", "net_null12,no-rx=1", 2);
    attach(&hosts[3], "c", "net_null41,no-rx=1", 3);
    attach(&hosts[1], "d", "net_null21,no-rx=1", 4);
    everywhere(&fabric, "10.1.1.1/32", 0, &["65010:1", "65011:0"]);
    everywhere(&fabric, "10.1.1.3/32", 3, &["65010:4", "65011:0"]);
    // Reflected: GoBGP on leaf 2 has A's path from a reflector, with FRR's reflection
    // attributes beside leafd's own.
    let rib = fabric.leaves[1].gobgp(&["global", "rib", "10.1.1.1/32"]);
    assert!(rib.contains("Originator: 192.168.0.1") && rib.contains("ClusterList: [192.168.0.100]"), "{rib}");
    assert!(rib.contains("LocalPref: 100"), "the sequence 0 as local preference 100: {rib}");

    // A's port comes up on host 4 (leaf 4, which has no session with leaf 1): it moves.
    let since = micros_now();
    attach(&hosts[3], "a", "net_null42,no-rx=1", 1);
    everywhere(&fabric, "10.1.1.1/32", 3, &["65010:4", "65011:1"]);
    let (leaf1, leaf4) = (&fabric.leaves[0], &fabric.leaves[3]);
    let reflected_ms = convergence(leaf4, leaf1, "10.1.1.1", since);
    // A hears about B (its old neighbour), B about A; C (on A's new host) and D nothing.
    leaf4.wait_move_since("in", "10.1.1.1", since).assert_one_fixup("a", "10.1.1.2");
    leaf1.wait_move_since("out", "10.1.1.1", since).assert_one_fixup("b", "10.1.1.1");
    assert_eq!(hosts[3].port_stats("c").out.injected, 0, "C was told nothing");
    assert_eq!(hosts[1].port_stats("d").out.injected, 0, "D was told nothing");
    for l in &fabric.leaves[1..3] {
        assert!(l.moves().is_empty(), "{} saw no move of its own: {:?}", l.name, l.moves());
    }
    hosts[0].ok(json!({ "op": "detach", "name": "a" }));

    // One reflector gone: the other carries the move back.
    fabric.reflectors[0].kill();
    fabric.wait_reflector_sessions(1);
    let since = micros_now();
    attach(&hosts[0], "a", "net_null13,no-rx=1", 1);
    everywhere(&fabric, "10.1.1.1/32", 0, &["65010:1", "65011:2"]);
    let one_rr_ms = convergence(&fabric.leaves[0], &fabric.leaves[3], "10.1.1.1", since);
    // Still everywhere: C's route, learned before the reflector went.
    everywhere(&fabric, "10.1.1.3/32", 3, &["65010:4", "65011:0"]);

    // The same move in a full mesh of two leaves, for comparison.
    let mesh_dir = TestDir::new("reflect-mesh");
    let (mesh, m1, m2) = Fabric::with_hosts(&mesh_dir, "rm", true);
    attach(&m1, "a", "net_null51,no-rx=1", 1);
    everywhere(&mesh, "10.1.1.1/32", 0, &["65010:1", "65011:0"]);
    let since = micros_now();
    attach(&m2, "a", "net_null52,no-rx=1", 1);
    everywhere(&mesh, "10.1.1.1/32", 1, &["65010:2", "65011:1"]);
    let mesh_ms = convergence(&mesh.leaves[1], &mesh.leaves[0], "10.1.1.1", since);
    eprintln!(
        "move convergence (new leaf's trigger → old leaf's step back): {reflected_ms:.1} ms through two reflectors, {one_rr_ms:.1} ms through one, {mesh_ms:.1} ms in a full mesh"
    );
}
