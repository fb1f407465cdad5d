//! Two tenants with one address plan on two hosts and two leaves over VXLAN (issue 16's
//! end-to-end proof). Both tenants use 10.1.1.0/24 and 2001:db8:1::/64 with the same VM
//! addresses: A (10.1.1.1) on host 1, B (10.1.1.2) on host 2, in VNI 5000 and in VNI
//! 5001. Each tenant has its own namespace and leafd on each leaf, its host routes travel
//! as VPN routes between the leaves' GoBGPs (see `harness/tenants.rs`). Checked: each
//! tenant's guests reach each other (across the fabric) and their gateway; captures on
//! both underlay links, on the fabric link and inside each tenant's namespace hold no
//! frame of one tenant in the other; a live migration of tenant 2's A from host 1 to
//! host 2 while B→A TCP streams run in both tenants: both streams survive, the VPN routes
//! follow, and tenant 1's guests hear no ARP (nor ND) frame at all.

use std::time::{Duration, SystemTime};

use roam_tests::migration::quiet_neighbours;
use roam_tests::tenants::{Tenants, VNIS};
use roam_tests::traffic::mac_bytes;
use roam_tests::{micros, wait_for, Capture, Guest, TestDir};

/// (A's MAC, B's MAC) of tenant `t`.
fn macs(t: usize) -> [String; 2] {
    [format!("52:54:00:5{t}:00:01"), format!("52:54:00:5{t}:00:02")]
}

/// The VNI of a VXLAN frame (outer IPv4, UDP to `port`), if it is one.
fn vni_of(f: &[u8], port: u16) -> Option<u32> {
    let vxlan = f.len() >= 62 && f[12..14] == [8, 0] && f[23] == 17 && u16::from_be_bytes([f[36], f[37]]) == port;
    vxlan.then(|| u32::from_be_bytes([0, f[46], f[47], f[48]]))
}

/// Checks that every VXLAN frame (to `port`) whose inner frame names one of a tenant's
/// MACs (`owners[t]`) carries that tenant's VNI; returns how many did.
fn check_vnis(what: &str, frames: &[Vec<u8>], port: u16, owners: &[Vec<[u8; 6]>; 2]) -> usize {
    let mut seen = 0;
    for f in frames {
        let Some(vni) = vni_of(f, port) else { continue };
        let (dst, src) = (&f[50..56], &f[56..62]);
        for (t, ms) in owners.iter().enumerate() {
            if ms.iter().any(|m| m == dst || m == src) {
                assert_eq!(vni, VNIS[t], "{what}: a frame of tenant {} in VNI {vni}: {f:02x?}", t + 1);
                seen += 1;
            }
        }
    }
    seen
}

/// Inside a tenant's namespace: how many frames named its own MACs; none named the
/// other's.
fn check_inside(what: &str, frames: &[Vec<u8>], own: &[[u8; 6]], other: &[[u8; 6]]) -> usize {
    let names = |f: &Vec<u8>, ms: &[[u8; 6]]| f.len() >= 12 && ms.iter().any(|m| f[..6] == *m || f[6..12] == *m);
    let foreign = frames.iter().filter(|f| names(f, other)).count();
    assert_eq!(foreign, 0, "{what}: {foreign} frames of the other tenant");
    frames.iter().filter(|f| names(f, own)).count()
}

fn mac_of(ns: &roam_tests::Leaf, dev: &str) -> [u8; 6] {
    mac_bytes(ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")]).trim())
}

#[test]
fn two_tenants_with_one_address_plan_stay_apart_and_a_migration_in_one_is_unheard_in_the_other() {
    let dir = TestDir::new("tenants");
    let fab = Tenants::start(&dir, "tn");
    let mut guests: Vec<[Guest; 2]> = (0..2)
        .map(|t| {
            let [am, bm] = macs(t);
            [
                Guest::start(&dir, &format!("a{}", t + 1), &am, "10.1.1.1"),
                Guest::start(&dir, &format!("b{}", t + 1), &bm, "10.1.1.2"),
            ]
        })
        .collect();
    for (t, [a, b]) in guests.iter().enumerate() {
        fab.hosts[0].attach(a, VNIS[t] as u16);
        fab.hosts[1].attach(b, VNIS[t] as u16);
    }
    for g in guests.iter_mut().flatten() {
        g.wait_ready();
    }
    for vs in &fab.hosts {
        vs.wait_links_up(2, Duration::from_secs(90));
    }
    let vm_mtu = fab.hosts[0].show().underlay.expect("underlay").vm_mtu;
    assert_eq!(vm_mtu, 1450);
    for g in guests.iter_mut().flatten() {
        g.run(&format!("echo {vm_mtu} > /sys/class/net/eth0/mtu"));
    }
    // Each tenant's host routes, as VPN routes, in the other leaf's namespace of that
    // tenant: A behind leaf 1, B behind leaf 2.
    let (leaf1, leaf2) = (&fab.fabric.leaves[0], &fab.fabric.leaves[1]);
    for t in 0..2 {
        wait_for(&format!("tenant {}'s VPN routes", t + 1), Duration::from_secs(30), || {
            let a = fab.tenant(1, t).route("10.1.1.1").contains(&format!("via {}", leaf1.fabric_ip));
            let b = fab.tenant(0, t).route("10.1.1.2").contains(&format!("via {}", leaf2.fabric_ip));
            let a6 = fab.tenant(1, t).route("2001:db8:1::1").contains(&format!("via {}", leaf1.fabric_ip6));
            (a && b && a6).then_some(())
        });
    }

    // Who owns which MAC on the wire: the tenant's VMs (on the underlay and inside the
    // tenant), its transit devices (on the fabric link).
    let transit: Vec<Vec<[u8; 6]>> =
        (0..2).map(|t| (0..2).map(|l| mac_of(&fab.tenant(l, t).ns, &format!("tr{}", VNIS[t]))).collect()).collect();
    let vms: Vec<Vec<[u8; 6]>> = (0..2).map(|t| macs(t).iter().map(|m| mac_bytes(m)).collect()).collect();
    let [vm_owners, transit_owners] = [[vms[0].clone(), vms[1].clone()], [transit[0].clone(), transit[1].clone()]];

    // Reachability, captured everywhere.
    let captures = |secs: f64| -> Vec<Capture> {
        let mut c =
            vec![leaf1.leaf.capture(secs), leaf2.leaf.capture(secs), leaf1.leaf.capture_on(&leaf1.fabric_if, secs)];
        for (t, vni) in VNIS.iter().enumerate() {
            let ns = &fab.tenant(1, t).ns;
            c.push(ns.capture(secs));
            c.push(ns.capture_on(&format!("tr{vni}"), secs));
        }
        c
    };
    let running = captures(25.0);
    for [a, b] in guests.iter_mut() {
        a.ping_until_reply("10.1.1.2");
        a.ping_until_reply("2001:db8:1::2");
        b.ping_until_reply("10.1.1.254");
        b.ping_until_reply("10.1.1.1");
        // Across the fabric, through the anycast gateway (leaf 1's proxy answer).
        assert_eq!(a.neighbour("10.1.1.2").as_deref(), Some(roam_tests::fabric::ANYCAST));
    }
    let frames: Vec<Vec<Vec<u8>>> = running.into_iter().map(|c| c.frames()).collect();
    for (i, what) in ["host 1's underlay", "host 2's underlay"].iter().enumerate() {
        let n = check_vnis(what, &frames[i], 4789, &vm_owners);
        assert!(n >= 8, "{what}: only {n} VXLAN frames of the VMs");
        eprintln!("{what}: {n} VXLAN frames of the VMs, each in its tenant's VNI");
    }
    let n = check_vnis("the fabric link", &frames[2], 4790, &transit_owners);
    assert!(n >= 8, "the fabric link: only {n} transit frames");
    eprintln!("the fabric link: {n} transit frames, each in its tenant's VNI");
    for t in 0..2 {
        let own = check_inside(&format!("tenant {}'s downlink", t + 1), &frames[3 + 2 * t], &vms[t], &vms[1 - t]);
        let routed =
            check_inside(&format!("tenant {}'s transit", t + 1), &frames[4 + 2 * t], &transit[t], &transit[1 - t]);
        assert!(own >= 4 && routed >= 4, "tenant {}: {own} frames on its downlink, {routed} on its transit", t + 1);
        eprintln!(
            "inside tenant {} on leaf 2: {own} frames on its downlink, {routed} on its transit, none of the other",
            t + 1
        );
    }

    // B→A TCP streams in both tenants (A's address is the same in both).
    for [a, b] in guests.iter_mut() {
        a.run("roam-probe server 5001 >/dev/null 2>&1 &");
        b.run("roam-probe client 10.1.1.1 5001 3600 10 100 >/tmp/stream.log 2>&1 &");
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut progress: Vec<f64> = guests.iter_mut().map(|[_, b]| b.stream_progress().0).collect();
    assert!(progress.iter().all(|p| *p > 50.0), "both streams run: {progress:?}");
    let quiet_before = {
        let [a1, b1] = &mut guests[0];
        quiet_neighbours(&mut [a1, b1])
    };
    let stats_before = fab.hosts[1].stats();

    // Tenant 2's A moves from host 1 to host 2.
    let port = 47000 + (std::process::id() % 500) as u16 * 4;
    let mut next = guests[1][0].incoming(&dir, "a2-moved", port);
    fab.hosts[1].attach(&next, VNIS[1] as u16);
    std::thread::sleep(Duration::from_secs(1));
    let moving = [leaf1.leaf.capture(10.0), leaf2.leaf.capture(10.0), leaf1.leaf.capture_on(&leaf1.fabric_if, 10.0)];
    let since = micros(SystemTime::now());
    let m = guests[1][0].migrate_to(port, Duration::ZERO);
    guests[1][0].kill();
    fab.hosts[0].client().detach("a2").expect("detaching A's old port");
    next.connect();
    guests[1][0] = next;
    eprintln!("tenant 2's A moved: total {} ms, downtime {} ms", m.total_ms, m.downtime_ms);

    // Both streams go on.
    std::thread::sleep(Duration::from_secs(6));
    for (t, [_, b]) in guests.iter_mut().enumerate() {
        let (now, gap) = b.stream_progress();
        assert!(now > progress[t] + 100.0, "tenant {}'s stream stopped: {} → {now} echoes", t + 1, progress[t]);
        eprintln!("tenant {}: B→A longest gap {gap} ms", t + 1);
        progress[t] = now;
    }
    // Tenant 2's routes follow A; tenant 1's stay.
    let (t2_old, t2_new) = (fab.tenant(0, 1), fab.tenant(1, 1));
    let moved_in = t2_new.wait_move_since("in", "10.1.1.1", since);
    let moved_out = t2_old.wait_move_since("out", "10.1.1.1", since);
    assert_eq!((moved_in.from_host, moved_in.to_host), (Some(1), Some(2)), "{moved_in:?}");
    assert_eq!(moved_out.to_host, Some(2), "{moved_out:?}");
    let told = |m: &roam_tests::fabric::MoveReport| m.fixups.iter().flat_map(|f| f.to.clone()).collect::<Vec<_>>();
    eprintln!(
        "tenant 2's leafds: move seen ({}) → fix-ups to {:?} (new leaf), {:?} (old leaf)",
        moved_in.trigger.kind,
        told(&moved_in),
        told(&moved_out)
    );
    let via = t2_old.route("10.1.1.1");
    assert!(via.contains(&format!("via {}", leaf2.fabric_ip)), "tenant 2's old leaf: {via}");
    let dev = t2_new.route("10.1.1.1");
    assert!(dev.contains("dev vx5001"), "tenant 2's new leaf: {dev}");
    for l in 0..2 {
        let t1 = fab.tenant(l, 0);
        let late: Vec<_> = t1.moves().into_iter().filter(|m| m.trigger.at_us >= since).collect();
        assert!(late.is_empty(), "tenant 1's leafd on leaf {} saw a move: {late:?}", l + 1);
    }
    let t1_route = fab.tenant(1, 0).route("10.1.1.1");
    assert!(t1_route.contains(&format!("via {}", leaf1.fabric_ip)), "tenant 1's A stays behind leaf 1: {t1_route}");

    // Tenant 1 heard nothing.
    {
        let [a1, b1] = &mut guests[0];
        let after: Vec<(u64, u64)> = [a1, b1].iter_mut().map(|g| (g.arp_count(), g.nd_count())).collect();
        assert_eq!(after, quiet_before, "tenant 1's guests (ARP, ND frames) before and after tenant 2's move");
    }
    let frames: Vec<Vec<Vec<u8>>> = moving.into_iter().map(|c| c.frames()).collect();
    for (i, what) in ["host 1's underlay (move)", "host 2's underlay (move)"].iter().enumerate() {
        check_vnis(what, &frames[i], 4789, &vm_owners);
    }
    check_vnis("the fabric link (move)", &frames[2], 4790, &transit_owners);

    // Tenant 2's A answers at its new place, from both its neighbours' sides.
    guests[1][1].ping_until_reply("10.1.1.1");
    guests[1][0].ping_until_reply("10.1.1.254");
    for vs in &fab.hosts {
        let s = vs.stats();
        assert!(s.balanced, "counters do not add up: {s:#?}");
    }
    let drops = |s: &roam_api::views::StatsView, r: &str| s.ports.iter().map(|p| p.drops(r)).sum::<u64>();
    let stats_after = fab.hosts[1].stats();
    for r in ["vxlan_unknown_vni", "vxlan_unknown_vtep", "vtep_unresolved", "vxlan_too_big"] {
        assert_eq!(drops(&stats_after, r), drops(&stats_before, r), "host 2 dropped frames as {r}");
    }
}
