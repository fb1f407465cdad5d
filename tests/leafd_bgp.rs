//! leafd with real GoBGP and real vswitchd processes, without guests (fast): host routes
//! travel between the leaves with their host and sequence communities, the kernel routes
//! follow, a VM's port coming up on another host moves its /32 with the selective fix-ups,
//! and a detach withdraws it. VM ports are `net_null` devices here.

use std::time::Duration;

use roam_tests::fabric::{Fabric, ANYCAST};
use roam_tests::{wait_for, TestDir, Vswitchd};
use serde_json::json;

fn attach(vs: &Vswitchd, name: &str, device: &str, last: u8) {
    vs.ok(json!({ "op": "attach", "name": name, "device": device, "mac": format!("52:54:00:00:00:{last:02x}"), "segment": 100, "ipv4": [format!("10.1.1.{last}")] }));
}

#[test]
fn host_routes_move_between_leaves_with_fixups_for_the_right_vms_only() {
    let dir = TestDir::new("leafd");
    let (fabric, vs1, vs2) = Fabric::with_hosts(&dir, "b", true);
    attach(&vs1, "a", "net_null11,no-rx=1", 1);
    attach(&vs1, "b", "net_null12,no-rx=1", 2);
    attach(&vs2, "c", "net_null21,no-rx=1", 3);
    let (leaf1, leaf2) = (&fabric.leaves[0], &fabric.leaves[1]);

    // Each leaf learns the other's hosts, with the host that has them.
    let (nh, communities) = wait_for("A's route at leaf 2", Duration::from_secs(20), || leaf2.best_path("10.1.1.1/32"));
    assert_eq!(nh, leaf1.fabric_ip);
    assert_eq!(communities, vec!["65010:1", "65011:0"]);
    wait_for("C's route at leaf 1", Duration::from_secs(20), || {
        leaf1.best_path("10.1.1.3/32").filter(|(nh, _)| *nh == leaf2.fabric_ip)
    });
    assert!(
        leaf1.route("10.1.1.1").contains(&format!("dev {}", leaf1.leaf.leaf_if)),
        "local: {}",
        leaf1.route("10.1.1.1")
    );
    wait_for("leaf 2's kernel route to A", Duration::from_secs(10), || {
        leaf2.route("10.1.1.1").contains(&format!("via {}", leaf1.fabric_ip)).then_some(())
    });
    let neigh = leaf1.leaf.exec(&["ip", "neigh", "show", "10.1.1.1", "dev", &leaf1.leaf.leaf_if]);
    assert!(
        neigh.contains("52:54:00:00:00:01") && neigh.contains("PERMANENT"),
        "leaf 1 never ARPs for its hosts: {neigh}"
    );
    // The gateway is on the downlink, with the anycast MAC, as a /32.
    let link = leaf1.leaf.exec(&["ip", "link", "show", &leaf1.leaf.leaf_if]);
    assert!(link.contains(ANYCAST), "{link}");

    // A appears on host 2 (its port comes up there): it moves.
    attach(&vs2, "a", "net_null22,no-rx=1", 1);
    let (nh, communities) = wait_for("A's route to move to leaf 2", Duration::from_secs(20), || {
        leaf1.best_path("10.1.1.1/32").filter(|(nh, _)| *nh == leaf2.fabric_ip)
    });
    assert_eq!(
        (nh.as_str(), communities),
        (leaf2.fabric_ip.as_str(), vec!["65010:2".to_string(), "65011:1".to_string()])
    );
    wait_for("leaf 1's kernel route to A via leaf 2", Duration::from_secs(10), || {
        leaf1.route("10.1.1.1").contains(&format!("via {}", leaf2.fabric_ip)).then_some(())
    });
    assert!(leaf2.route("10.1.1.1").contains(&format!("dev {}", leaf2.leaf.leaf_if)));
    let moved_in = leaf2.wait_move("in", "10.1.1.1");
    let moved_out = leaf1.wait_move("out", "10.1.1.1");
    assert_eq!(moved_in.trigger.kind, "link-up", "{moved_in:?}");
    // A is told about B (its old neighbour); B about A; C hears nothing.
    moved_in.assert_one_fixup("a", "10.1.1.2");
    moved_out.assert_one_fixup("b", "10.1.1.1");
    assert_eq!(vs2.port_stats("c").out.injected, 0, "C was told nothing: {:?}", vs2.port_stats("c"));

    // The orchestrator unplugs A's old port: nothing changes (leaf 1 already stepped back).
    vs1.ok(json!({ "op": "detach", "name": "a" }));
    std::thread::sleep(Duration::from_millis(500));
    assert!(leaf2.best_path("10.1.1.1/32").is_some_and(|(nh, _)| nh == leaf2.fabric_ip));
    assert!(leaf1.best_path("10.1.1.1/32").is_some_and(|(nh, _)| nh == leaf2.fabric_ip));
    // C detached: its route is withdrawn everywhere.
    vs2.ok(json!({ "op": "detach", "name": "c" }));
    wait_for("C's route withdrawn at leaf 1", Duration::from_secs(10), || {
        leaf1.best_path("10.1.1.3/32").is_none().then_some(())
    });
    wait_for("leaf 1's kernel route to C removed", Duration::from_secs(10), || {
        leaf1.route("10.1.1.3").trim().is_empty().then_some(())
    });
}
