//! A VXLAN uplink end to end: vswitchd's VTEP on a veth to a leaf namespace, two tenants
//! (VNI 5000 and 5001) with the same subnet, the same gateway and the same VM address,
//! each tenant's gateway a Linux VXLAN device in its own namespace (its UDP socket in the
//! leaf's). Each guest reaches its own gateway and nothing of the other tenant's; vswitchd
//! resolves the leaf's VTEP and answers ARP for its own; a frame too big for the underlay
//! is counted; hostile underlay frames are dropped under their reasons.

use std::time::Duration;

use roam_tests::traffic::mac_bytes;
use roam_tests::{wait_for, Guest, Leaf, TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";
const HOST_VTEP: [u8; 4] = [192, 168, 100, 2];
const LEAF_VTEP: [u8; 4] = [192, 168, 100, 1];

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A VXLAN frame to the host's VTEP from `src` for `vni` around `inner`.
fn vxlan(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let total = (36 + inner.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&HOST_VTEP);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut f = [&dst_mac[..], &src_mac[..], &[8, 0]].concat();
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0xc3, 0x50, 0x12, 0xb5]);
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x08, 0, 0, 0]);
    f.extend_from_slice(&vni.to_be_bytes()[1..]);
    f.push(0);
    f.extend_from_slice(inner);
    f
}

#[test]
fn two_tenants_with_one_subnet_share_a_vxlan_uplink_and_never_see_each_other() {
    let dir = TestDir::new("vxlan");
    let leaf = Leaf::bare("x");
    leaf.exec(&["ip", "addr", "add", "192.168.100.1/24", "dev", &leaf.leaf_if]);
    let t1 = leaf.tenant(5000, "192.168.100.1", "192.168.100.2", ANYCAST, "10.1.1.254/24");
    let t2 = leaf.tenant(5001, "192.168.100.1", "192.168.100.2", ANYCAST, "10.1.1.254/24");
    let vs = Vswitchd::start(&dir, "host1", Some(&leaf.uplink()));

    // A VXLAN segment before the underlay is refused, with the reason.
    let seg = |segment: u32, vni: u32| json!({ "op": "set-anycast", "segment": segment, "vni": vni, "mac": ANYCAST, "subnets": ["10.1.1.0/24"] });
    let (_, why) = vs.refused(seg(5000, 5000));
    assert!(why.contains("underlay"), "{why}");
    let (ok, out) = vs.vsctl(&["set-underlay", "--local", "192.168.100.2", "--leaf", "192.168.100.1"]);
    assert!(ok, "{out}");
    vs.ok(seg(5000, 5000));
    vs.ok(seg(5001, 5001));
    let underlay = wait_for("the leaf's VTEP to be resolved", Duration::from_secs(10), || {
        vs.show().underlay.filter(|u| u.leaf.iter().all(|l| l.mac.is_some()))
    });
    let leaf_mac = leaf.exec(&["cat", &format!("/sys/class/net/{}/address", leaf.leaf_if)]);
    assert_eq!(underlay.leaf[0].mac.map(|m| m.to_string()), Some(leaf_mac.trim().to_string()));
    assert_eq!((underlay.mtu, underlay.vm_mtu), (1500, 1450));
    let (ok, out) = vs.vsctl(&["show"]);
    assert!(ok && out.contains("vxlan vni=5000") && out.contains("Underlay: VTEP 192.168.100.2"), "{out}");

    // The same address in both tenants.
    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", "10.1.1.1");
    let mut b = Guest::start(&dir, "b", "52:54:00:00:00:02", "10.1.1.1");
    vs.attach(&a, 5000);
    vs.attach(&b, 5001);
    a.wait_ready();
    b.wait_ready();
    vs.wait_links_up(2, Duration::from_secs(60));
    for g in [&mut a, &mut b] {
        g.run("echo 1450 > /sys/class/net/eth0/mtu");
    }
    let (c1, c2) = (t1.capture(20.0), t2.capture(20.0));
    let under = leaf.capture(20.0);
    a.ping_until_reply("10.1.1.254");
    b.ping_until_reply("10.1.1.254");
    // A large ping fits the underlay (1,400 bytes of payload: a 1,442-byte frame).
    let out = a.run("ping -c 2 -s 1400 -W 2 10.1.1.254");
    assert!(out.contains("2 packets received"), "{out}");
    assert_eq!(a.neighbour("10.1.1.254").as_deref(), Some(ANYCAST));
    // The leaf knows each tenant's VM behind the host's VTEP, in that tenant only.
    let fdb1 = t1.exec(&["bridge", "fdb", "show", "dev", "vx5000"]);
    assert!(fdb1.contains("52:54:00:00:00:01") && !fdb1.contains("52:54:00:00:00:02"), "{fdb1}");
    let (f1, f2, fu) = (c1.frames(), c2.frames(), under.frames());
    let (am, bm) = (mac_bytes(&a.mac), mac_bytes(&b.mac));
    let from = |fs: &[Vec<u8>], m: [u8; 6]| fs.iter().filter(|f| f.len() >= 12 && f[6..12] == m).count();
    assert!(from(&f1, am) > 0 && from(&f2, bm) > 0, "each tenant saw its VM");
    assert_eq!((from(&f1, bm), from(&f2, am)), (0, 0), "a tenant saw the other tenant's VM");
    // On the underlay, every frame of a VM is VXLAN with its tenant's VNI.
    let mut seen = 0;
    for f in fu.iter().filter(|f| f.len() >= 64 && f[12..14] == [8, 0] && f[23] == 17) {
        let (vni, inner_src) = (u32::from_be_bytes([0, f[46], f[47], f[48]]), &f[56..62]);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 4789, "VXLAN's port");
        if inner_src == am || f[50..56] == am {
            assert_eq!(vni, 5000, "a's frame in VNI {vni}");
            seen += 1;
        }
        if inner_src == bm || f[50..56] == bm {
            assert_eq!(vni, 5001, "b's frame in VNI {vni}");
            seen += 1;
        }
    }
    assert!(seen > 4, "only {seen} VXLAN frames of the VMs on the underlay");

    // Too big for the underlay: counted at a's port, never sent.
    a.run("echo 1500 > /sys/class/net/eth0/mtu");
    let before = vs.port_stats("a").drops("vxlan_too_big");
    a.sh("ping -c 2 -s 1460 -W 1 10.1.1.254", Duration::from_secs(15));
    let after = vs.port_stats("a").drops("vxlan_too_big");
    assert!(after >= before + 2, "vxlan_too_big {before} -> {after}");
    a.run("echo 1450 > /sys/class/net/eth0/mtu");

    // Hostile underlay frames, each under its reason.
    let host_mac = vs.show().underlay.expect("underlay").mac.0;
    let lm = mac_bytes(leaf_mac.trim());
    let inner = roam_tests::traffic::ipv4(am, mac_bytes(ANYCAST), [10, 1, 1, 254], [10, 1, 1, 1]);
    let mut truncated = vxlan(host_mac, lm, LEAF_VTEP, 5000, &inner);
    truncated.truncate(46);
    let hostile = [
        (vxlan(host_mac, lm, LEAF_VTEP, 5002, &inner), "vxlan_unknown_vni"),
        (vxlan(host_mac, lm, [192, 168, 100, 9], 5000, &inner), "vxlan_unknown_vtep"),
        (truncated, "vxlan_truncated"),
        (vxlan(host_mac, lm, LEAF_VTEP, 5000, &inner[..8]), "vxlan_bad_inner"),
    ];
    let up = |r: &str| vs.port_stats("uplink").drops(r);
    let before: Vec<u64> = hostile.iter().map(|(_, r)| up(r)).collect();
    leaf.send(&hostile.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>());
    wait_for("the hostile frames to be counted", Duration::from_secs(5), || {
        hostile.iter().zip(&before).all(|((_, r), b)| up(r) == b + 1).then_some(())
    });
    let st = vs.stats();
    assert!(st.balanced, "counters do not add up: {st:#?}");
    let uplink = vs.port_stats("uplink");
    assert!(uplink.input.arp_replies >= 1 && uplink.input.underlay >= 1, "{uplink:?}");
    for g in ["a", "b"] {
        vs.ok(json!({ "op": "detach", "name": g }));
    }
    vs.wait_mbufs_returned(Duration::from_secs(5));
}
