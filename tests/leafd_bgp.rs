//! leafd with real GoBGP and real vswitchd processes, without guests (fast): host routes
//! travel between the leaves with their host and sequence communities, the kernel routes
//! follow, a VM's port coming up on another host moves its /32 with the selective fix-ups,
//! and a detach withdraws it. VM ports are `net_null` devices here. And tenants: one
//! address in two tenants' VRFs travels as two VPN routes, each reaching only its own
//! tenant's leafd, with its host and sequence communities.

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
    let (mut fabric, vs1, vs2) = Fabric::with_hosts(&dir, "b", true);
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

    // leafd restarted (killed, as an upgrade or a crash would): it keeps no state file.
    // It flushes its kernel routes and installs them again from its vswitchd and GoBGP,
    // and the routes it advertised stay as they were for the other leaves; a move after the
    // restart still wins (its sequence number is above the one advertised before).
    let (ip1, ip2) = (fabric.leaves[0].fabric_ip.clone(), fabric.leaves[1].fabric_ip.clone());
    fabric.leaves[1].restart_leafd(&vs2.socket, 2, true);
    let (leaf1, leaf2) = (&fabric.leaves[0], &fabric.leaves[1]);
    wait_for("leaf 2's local route to A again", Duration::from_secs(10), || {
        leaf2.route("10.1.1.1").contains(&format!("dev {}", leaf2.leaf.leaf_if)).then_some(())
    });
    wait_for("leaf 2's route to B (at leaf 1) again", Duration::from_secs(10), || {
        leaf2.route("10.1.1.2").contains(&format!("via {ip1}")).then_some(())
    });
    let (nh, communities) = leaf1.best_path("10.1.1.1/32").expect("A's route at leaf 1 after leaf 2's restart");
    assert_eq!((nh.as_str(), communities[0].as_str()), (ip2.as_str(), "65010:2"), "{communities:?}");
    // A goes back to host 1 (its port there up again): leaf 1's advertisement must beat
    // the restarted leaf's.
    vs2.ok(json!({ "op": "detach", "name": "a" }));
    attach(&vs1, "a", "net_null13,no-rx=1", 1);
    let (nh, communities) = wait_for("A's route back at leaf 1 after the restart", Duration::from_secs(20), || {
        leaf2.best_path("10.1.1.1/32").filter(|(nh, _)| *nh == ip1)
    });
    assert_eq!(communities[0], "65010:1", "{nh} {communities:?}");
    wait_for("leaf 2's kernel route to A via leaf 1", Duration::from_secs(10), || {
        leaf2.route("10.1.1.1").contains(&format!("via {ip1}")).then_some(())
    });
}

/// Tenant routes through real GoBGP as VPN routes (RFC 4364), with leafd's own client: the
/// same address in two tenants, each seen only by its tenant, host and sequence intact.
#[test]
fn tenant_routes_travel_as_vpn_routes_and_reach_their_own_tenant_only() {
    use leafd::bgp::Gobgp;
    use leafd::logic::{Input, Path};
    use leafd::vpn::VrfConfig;

    let dir = TestDir::new("vpn");
    let fabric = Fabric::new(&dir, "v");
    let (leaf1, leaf2) = (&fabric.leaves[0], &fabric.leaves[1]);
    let vrf = |name: &str, n: u32| {
        let (rd, rt) = (format!("65000:{n}"), format!("65000:{n}"));
        VrfConfig { name: name.into(), rd, rt }.check().unwrap()
    };
    let (t1, t2) = (vrf("t1", 5000), vrf("t2", 5001));
    let client = |api: &str, v: &leafd::vpn::Vrf| {
        let g = Gobgp::new(api, Some(v.clone())).unwrap();
        g.ensure_vrf().unwrap();
        g.ensure_vrf().expect("an existing VRF is kept");
        g
    };
    let (a1, a2) = (client(&leaf1.api, &t1), client(&leaf1.api, &t2));
    for v in [&t1, &t2] {
        client(&leaf2.api, v);
    }
    let watch = |v: &leafd::vpn::Vrf| {
        let (tx, rx) = crossbeam::channel::unbounded();
        let (api, v) = (leaf2.api.clone(), v.clone());
        std::thread::spawn(move || Gobgp::monitor(&api, Some(v), tx));
        rx
    };
    let (w1, w2) = (watch(&t1), watch(&t2));
    let ip: std::net::IpAddr = "10.1.1.1".parse().unwrap();
    let nexthop: std::net::IpAddr = leaf1.fabric_ip.parse().unwrap();
    a1.advertise(ip, nexthop, 1, 0).unwrap();
    a2.advertise(ip, nexthop, 7, 3).unwrap();
    let ip6: std::net::IpAddr = "2001:db8:1::1".parse().unwrap();
    a2.advertise(ip6, leaf1.fabric_ip6.parse().unwrap(), 7, 3).unwrap();
    // (address, path, withdrawn) of the next path a watch reports.
    let next = |rx: &crossbeam::channel::Receiver<leafd::Event>| {
        let event = rx.recv_timeout(Duration::from_secs(20)).expect("a path within 20 s");
        match event.input {
            Input::Best(i, p) => (i, p, false),
            Input::Withdrawn(i, p) => (i, p, true),
            other => panic!("not a path: {other:?}"),
        }
    };
    let want = |host, seq| (ip, Path { nexthop, host, seq }, false);
    assert_eq!(next(&w1), want(1, 0), "tenant 1's leafd sees tenant 1's route");
    let seen = [next(&w2), next(&w2)];
    let v6 = (ip6, Path { nexthop: leaf1.fabric_ip6.parse().unwrap(), host: 7, seq: 3 }, false);
    assert!(seen.contains(&want(7, 3)) && seen.contains(&v6), "tenant 2's: {seen:?}");
    // Nothing else arrives: neither tenant sees the other's route.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((w1.try_iter().count(), w2.try_iter().count()), (0, 0));
    // GoBGP itself imported each into its tenant's VRF only.
    let rib = leaf2.gobgp(&["vrf", "t2", "rib"]);
    assert!(rib.contains("10.1.1.1/32") && rib.contains("65010:7"), "{rib}");
    // A withdrawal in tenant 2 reaches tenant 2 only.
    a2.withdraw(ip).unwrap();
    let (gone, _, withdrawn) = next(&w2);
    assert_eq!((gone, withdrawn), (ip, true));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w1.try_iter().count(), 0, "tenant 1 heard tenant 2's withdrawal");
    assert!(leaf2.gobgp(&["vrf", "t1", "rib"]).contains("10.1.1.1/32"), "tenant 1's route stays");
}
