//! The leaf's rules, one test each.

use super::*;
use pipeline::announce::Kind;

fn leaf(downlinks: &[u16], fixups: bool) -> Leaf {
    let mut text = format!("name = \"l\"\nanycast_mac = \"00:00:5e:00:01:01\"\ngateways = [\"10.1.1.254/24\", \"10.2.2.254/24\"]\nfabric_address = \"192.168.0.1\"\nfixups = {fixups}\n[bgp]\napi = \"unix:///x\"\n");
    for h in downlinks {
        text += &format!("[[downlinks]]\niface = \"d{h}\"\nvswitchd = \"/h{h}\"\nhost = {h}\n");
    }
    Leaf::new(crate::config::parse(&text).unwrap())
}

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 1, last)
}

fn ip(last: u8) -> IpAddr {
    v4(last).into()
}

fn vm(name: &str, last: u8) -> Vm {
    Vm { name: name.into(), mac: MacAddr([0x52, 0x54, 0, 0, 0, last]), ipv4: vec![v4(last)], ipv6: vec![] }
}

fn garp(last: u8) -> Announcement {
    Announcement { kind: Kind::GratuitousArp, mac: MacAddr([0x52, 0x54, 0, 0, 0, last]), ip: Some(ip(last)) }
}

fn path(host: u16, seq: u32) -> Path {
    Path { nexthop: Ipv4Addr::new(192, 168, 0, host as u8 + 1).into(), host, seq }
}

fn actions(changes: Vec<Change>) -> Vec<Action> {
    changes.into_iter().flat_map(|c| c.actions).collect()
}

#[test]
fn an_attached_vm_is_routed_and_advertised_and_a_detached_one_withdrawn() {
    let mut l = leaf(&[1], true);
    let a = vm("a", 1);
    assert_eq!(
        actions(l.handle(Input::Attached(0, a.clone()))),
        vec![
            Action::RouteLocal { ip: ip(1), mac: a.mac, downlink: 0 },
            Action::Advertise { ip: ip(1), host: 1, seq: 0 }
        ]
    );
    assert_eq!(actions(l.handle(Input::Attached(0, a.clone()))), vec![], "attaching twice changes nothing");
    assert_eq!(
        actions(l.handle(Input::Detached(0, "a".into()))),
        vec![Action::Unroute { ip: ip(1), was_on: Some(0) }, Action::Withdraw { ip: ip(1) }]
    );
    assert_eq!(actions(l.handle(Input::Detached(0, "a".into()))), vec![]);
}

#[test]
fn remote_paths_are_routed_and_unrouted() {
    let mut l = leaf(&[1], true);
    let p = path(2, 0);
    assert_eq!(
        actions(l.handle(Input::Best(ip(3), p))),
        vec![Action::RouteRemote { ip: ip(3), nexthop: p.nexthop, was_on: None }]
    );
    assert_eq!(actions(l.handle(Input::Withdrawn(ip(3), path(7, 0)))), vec![], "not the path we use");
    assert_eq!(actions(l.handle(Input::Withdrawn(ip(3), p))), vec![Action::Unroute { ip: ip(3), was_on: None }]);
}

/// The scenario seen from the new leaf: A arrives from host 1, where B is.
#[test]
fn a_vm_arriving_is_pending_until_it_announces_itself_then_moves_in_with_fixups() {
    let mut l = leaf(&[2], true);
    l.handle(Input::Best(ip(1), path(1, 0))); // A on host 1
    l.handle(Input::Best(ip(2), path(1, 0))); // B on host 1
    l.handle(Input::Best(ip(9), path(5, 0))); // somebody on host 5
    l.handle(Input::Attached(0, vm("c", 3)));
    l.handle(Input::Attached(0, vm("d", 4)));
    // The migration's destination port: attached, but A still runs on host 1.
    assert_eq!(actions(l.handle(Input::Attached(0, vm("a", 1)))), vec![]);
    assert_eq!(l.owner(ip(1)), None);
    let changes = l.handle(Input::Announced(0, garp(1)));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].cause, Cause::MoveIn { vm: "a".into(), ip: ip(1), from_host: Some(1), to_host: 2, seq: 1 });
    assert_eq!(
        changes[0].actions,
        vec![
            Action::RouteLocal { ip: ip(1), mac: vm("a", 1).mac, downlink: 0 },
            Action::Advertise { ip: ip(1), host: 2, seq: 1 },
            // A hears that B (its old neighbour on host 1) is at the anycast MAC; C and
            // D hear nothing; host 5's VM was never A's neighbour.
            Action::Fixup { downlink: 0, to: vec!["a".into()], ip: ip(2) },
        ]
    );
    assert_eq!(l.owner(ip(1)), Some(0));
    // The rest of the guest's announcements change nothing.
    assert!(matches!(l.handle(Input::Announced(0, garp(1)))[0].cause, Cause::Ignored { .. }));
    // The old leaf's path, lower in sequence, does not take it back.
    assert_eq!(actions(l.handle(Input::Best(ip(1), path(1, 0)))), vec![]);
    assert_eq!(l.owner(ip(1)), Some(0));
}

/// The same move seen from the old leaf, both orders of "BGP says it moved" and "the
/// orchestrator detached it".
#[test]
fn the_old_leaf_steps_back_and_fixes_up_only_the_old_neighbours() {
    for detach_first in [false, true] {
        let mut l = leaf(&[1], true);
        for (n, last) in [("a", 1), ("b", 2)] {
            l.handle(Input::Attached(0, vm(n, last)));
        }
        l.handle(Input::Attached(
            0,
            Vm {
                name: "other-subnet".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 9]),
                ipv4: vec![Ipv4Addr::new(10, 2, 2, 9)],
                ipv6: vec![],
            },
        ));
        let new = path(2, 1);
        let mut all = Vec::new();
        if detach_first {
            all.extend(actions(l.handle(Input::Detached(0, "a".into()))));
        }
        let changes = l.handle(Input::Best(ip(1), new));
        assert!(
            matches!(&changes[0].cause, Cause::MoveOut { vm, from_host: 1, to_host: 2, seq: 1, .. } if vm == "a"),
            "{changes:?}"
        );
        all.extend(actions(changes));
        if !detach_first {
            all.extend(actions(l.handle(Input::Detached(0, "a".into()))));
        }
        assert!(
            all.contains(&Action::RouteRemote {
                ip: ip(1),
                nexthop: new.nexthop,
                was_on: if detach_first { None } else { Some(0) }
            }),
            "{all:?}"
        );
        assert!(all.contains(&Action::Withdraw { ip: ip(1) }));
        let fixups: Vec<&Action> = all.iter().filter(|a| matches!(a, Action::Fixup { .. })).collect();
        assert_eq!(
            fixups,
            vec![&Action::Fixup { downlink: 0, to: vec!["b".into()], ip: ip(1) }],
            "detach first: {detach_first}"
        );
        assert_eq!(l.owner(ip(1)), None);
    }
}

#[test]
fn the_port_coming_up_moves_a_waiting_vm_in_and_nothing_else() {
    let mut l = leaf(&[2], true);
    l.handle(Input::Best(ip(1), path(1, 0)));
    l.handle(Input::Best(ip(2), path(1, 0)));
    l.handle(Input::Attached(0, vm("c", 3)));
    l.handle(Input::Attached(0, vm("a", 1)));
    assert_eq!(actions(l.handle(Input::LinkUp(0, "c".into()))), vec![], "c is at home here");
    assert_eq!(actions(l.handle(Input::LinkUp(0, "nobody".into()))), vec![]);
    let changes = l.handle(Input::LinkUp(0, "a".into()));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].cause, Cause::MoveIn { vm: "a".into(), ip: ip(1), from_host: Some(1), to_host: 2, seq: 1 });
    assert!(changes[0].actions.contains(&Action::Fixup { downlink: 0, to: vec!["a".into()], ip: ip(2) }));
    // Its gratuitous ARPs, a moment later, change nothing.
    assert!(matches!(l.handle(Input::Announced(0, garp(1)))[0].cause, Cause::Ignored { .. }));
}

#[test]
fn without_fixups_routes_still_move() {
    let mut l = leaf(&[2], false);
    l.handle(Input::Best(ip(1), path(1, 0)));
    l.handle(Input::Best(ip(2), path(1, 0)));
    l.handle(Input::Attached(0, vm("a", 1)));
    let acts = actions(l.handle(Input::Announced(0, garp(1))));
    assert_eq!(
        acts,
        vec![
            Action::RouteLocal { ip: ip(1), mac: vm("a", 1).mac, downlink: 0 },
            Action::Advertise { ip: ip(1), host: 2, seq: 1 }
        ]
    );
}

#[test]
fn a_move_between_two_hosts_of_one_leaf_needs_no_bgp_peer() {
    let mut l = leaf(&[1, 2], true);
    l.handle(Input::Attached(0, vm("a", 1)));
    l.handle(Input::Attached(0, vm("b", 2)));
    l.handle(Input::Attached(1, vm("c", 3)));
    l.handle(Input::Attached(1, vm("a", 1)));
    assert_eq!(l.owner(ip(1)), Some(0), "pending on host 2");
    let rarp = Announcement { kind: Kind::Rarp, mac: vm("a", 1).mac, ip: None };
    let changes = l.handle(Input::Announced(1, rarp));
    assert_eq!(changes[0].cause, Cause::MoveIn { vm: "a".into(), ip: ip(1), from_host: Some(1), to_host: 2, seq: 1 });
    assert_eq!(
        changes[0].actions,
        vec![
            Action::RouteLocal { ip: ip(1), mac: vm("a", 1).mac, downlink: 1 },
            Action::Advertise { ip: ip(1), host: 2, seq: 1 },
            Action::Fixup { downlink: 0, to: vec!["b".into()], ip: ip(1) },
            Action::Fixup { downlink: 1, to: vec!["a".into()], ip: ip(2) },
        ]
    );
    // The orchestrator then detaches the old port: nothing to withdraw any more.
    assert_eq!(actions(l.handle(Input::Detached(0, "a".into()))), vec![]);
    assert_eq!(l.owner(ip(1)), Some(1));
}

#[test]
fn a_withdrawn_origin_is_remembered_for_a_late_announcement() {
    let mut l = leaf(&[2], true);
    l.handle(Input::Best(ip(1), path(1, 4)));
    l.handle(Input::Best(ip(2), path(1, 0)));
    l.handle(Input::Attached(0, vm("a", 1)));
    l.handle(Input::Withdrawn(ip(1), path(1, 4)));
    assert_eq!(l.owner(ip(1)), None, "a withdrawal alone moves nothing");
    let changes = l.handle(Input::Announced(0, garp(1)));
    assert_eq!(changes[0].cause, Cause::MoveIn { vm: "a".into(), ip: ip(1), from_host: Some(1), to_host: 2, seq: 5 });
    assert!(changes[0].actions.contains(&Action::Fixup { downlink: 0, to: vec!["a".into()], ip: ip(2) }));
}

#[test]
fn announcements_from_strangers_or_for_foreign_addresses_are_ignored() {
    let mut l = leaf(&[1], true);
    l.handle(Input::Attached(0, vm("a", 1)));
    for a in [garp(7), Announcement { kind: Kind::GratuitousArp, mac: vm("a", 1).mac, ip: Some(ip(9)) }] {
        let c = l.handle(Input::Announced(0, a));
        assert!(matches!(c[0].cause, Cause::Ignored { .. }) && c[0].actions.is_empty(), "{c:?}");
    }
}

#[test]
fn a_sync_detaches_what_vanished_and_attaches_what_appeared() {
    let mut l = leaf(&[1], true);
    l.handle(Input::Attached(0, vm("a", 1)));
    l.handle(Input::Attached(0, vm("b", 2)));
    let acts = actions(l.handle(Input::Sync(0, vec![vm("b", 2), vm("c", 3)])));
    assert!(
        acts.contains(&Action::Withdraw { ip: ip(1) })
            && acts.contains(&Action::Advertise { ip: ip(3), host: 1, seq: 0 }),
        "{acts:?}"
    );
    assert!(!acts.iter().any(|a| matches!(a, Action::Advertise { ip, .. } if *ip == ip_b())), "b was already there");
    fn ip_b() -> Ipv4Addr {
        Ipv4Addr::new(10, 1, 1, 2)
    }
}

/// A leaf with an IPv4 and an IPv6 subnet.
fn dual_leaf(downlinks: &[u16]) -> Leaf {
    let mut text = "name = \"l\"\nanycast_mac = \"00:00:5e:00:01:01\"\ngateways = [\"10.1.1.254/24\", \"2001:db8:1::fe/64\"]\nfabric_address = \"192.168.0.1\"\nfabric_address6 = \"fd00::1\"\n[bgp]\napi = \"unix:///x\"\n".to_string();
    for h in downlinks {
        text += &format!("[[downlinks]]\niface = \"d{h}\"\nvswitchd = \"/h{h}\"\nhost = {h}\n");
    }
    Leaf::new(crate::config::parse(&text).unwrap())
}

fn v6(last: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, last as u16))
}

/// A VM with 10.1.1.N, 2001:db8:1::N and its link-local address.
fn dual(name: &str, last: u8) -> Vm {
    let IpAddr::V6(global) = v6(last) else { unreachable!() };
    let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe00, last as u16);
    Vm { ipv6: vec![global, link_local], ..vm(name, last) }
}

fn v6_path(host: u16, seq: u32) -> Path {
    Path { nexthop: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, host + 1)), host, seq }
}

#[test]
fn a_dual_stack_vm_gets_both_host_routes_and_never_its_link_local_one() {
    let mut l = dual_leaf(&[1]);
    let a = dual("a", 1);
    assert_eq!(a.addrs(), vec![ip(1), v6(1)]);
    assert_eq!(
        actions(l.handle(Input::Attached(0, a.clone()))),
        vec![
            Action::RouteLocal { ip: ip(1), mac: a.mac, downlink: 0 },
            Action::Advertise { ip: ip(1), host: 1, seq: 0 },
            Action::RouteLocal { ip: v6(1), mac: a.mac, downlink: 0 },
            Action::Advertise { ip: v6(1), host: 1, seq: 0 },
        ]
    );
    assert_eq!(
        actions(l.handle(Input::Detached(0, "a".into()))),
        vec![
            Action::Unroute { ip: ip(1), was_on: Some(0) },
            Action::Withdraw { ip: ip(1) },
            Action::Unroute { ip: v6(1), was_on: Some(0) },
            Action::Withdraw { ip: v6(1) },
        ]
    );
}

/// A arrives at the new leaf from host 1, where B is: any announcement of A's own (a
/// gratuitous ARP, an NA for its address or its link-local one, a DAD probe, a RARP)
/// moves both its addresses, and A hears about B's in both families.
#[test]
fn any_announcement_of_a_dual_stack_vm_moves_both_families_with_fixups_for_each() {
    let announcements = [
        garp(1),
        Announcement { kind: Kind::UnsolicitedNa, mac: dual("a", 1).mac, ip: Some(v6(1)) },
        Announcement { kind: Kind::UnsolicitedNa, mac: dual("a", 1).mac, ip: Some(dual("a", 1).ipv6[1].into()) },
        Announcement { kind: Kind::DadProbe, mac: dual("a", 1).mac, ip: Some(v6(1)) },
        Announcement { kind: Kind::Rarp, mac: dual("a", 1).mac, ip: None },
    ];
    for a in announcements {
        let mut l = dual_leaf(&[2]);
        for (addr, p) in [(ip(1), path(1, 0)), (ip(2), path(1, 0)), (v6(1), v6_path(1, 4)), (v6(2), v6_path(1, 0))] {
            l.handle(Input::Best(addr, p));
        }
        l.handle(Input::Attached(0, dual("c", 3)));
        assert_eq!(actions(l.handle(Input::Attached(0, dual("a", 1)))), vec![], "pending");
        let changes = l.handle(Input::Announced(0, a));
        let causes: Vec<&Cause> = changes.iter().map(|c| &c.cause).collect();
        assert_eq!(
            causes,
            vec![
                &Cause::MoveIn { vm: "a".into(), ip: ip(1), from_host: Some(1), to_host: 2, seq: 1 },
                &Cause::MoveIn { vm: "a".into(), ip: v6(1), from_host: Some(1), to_host: 2, seq: 5 },
            ],
            "{a:?}"
        );
        let fixups: Vec<&Action> =
            changes.iter().flat_map(|c| &c.actions).filter(|a| matches!(a, Action::Fixup { .. })).collect();
        assert_eq!(
            fixups,
            vec![
                &Action::Fixup { downlink: 0, to: vec!["a".into()], ip: ip(2) },
                &Action::Fixup { downlink: 0, to: vec!["a".into()], ip: v6(2) },
            ],
            "A hears of B in each family, C of nothing: {a:?}"
        );
        assert_eq!((l.owner(ip(1)), l.owner(v6(1))), (Some(0), Some(0)));
    }
}

#[test]
fn the_old_leaf_tells_the_old_neighbours_in_each_family_and_ignores_foreign_probes() {
    let mut l = dual_leaf(&[1]);
    for (n, last) in [("a", 1), ("b", 2)] {
        l.handle(Input::Attached(0, dual(n, last)));
    }
    l.handle(Input::Attached(0, vm("v4-only", 5)));
    let out = actions(l.handle(Input::Best(v6(1), v6_path(2, 1))));
    assert_eq!(
        out,
        vec![
            Action::RouteRemote { ip: v6(1), nexthop: v6_path(2, 1).nexthop, was_on: Some(0) },
            Action::Fixup { downlink: 0, to: vec!["b".into()], ip: v6(1) },
            Action::Withdraw { ip: v6(1) },
        ],
        "only B, which has an address in A's IPv6 subnet, is told"
    );
    // A probe or NA from B's MAC for A's address is B's mistake (or a spoof): no move.
    let foreign = Announcement { kind: Kind::DadProbe, mac: dual("b", 2).mac, ip: Some(v6(1)) };
    assert!(matches!(l.handle(Input::Announced(0, foreign))[0].cause, Cause::Ignored { .. }));
}

/// The leaf's own path (next hop its fabric address), as GoBGP reports it when a restarted
/// leafd watches its table again.
fn own(host: u16, seq: u32) -> Path {
    Path { nexthop: Ipv4Addr::new(192, 168, 0, 1).into(), host, seq }
}

#[test]
fn after_a_restart_its_own_paths_are_never_routed_and_take_their_sequence_up_again() {
    // GoBGP's table first, then the vswitchd's VMs.
    let mut l = leaf(&[1], true);
    assert_eq!(actions(l.handle(Input::Best(ip(1), own(1, 3)))), vec![], "no route via itself");
    assert_eq!(actions(l.handle(Input::Best(ip(2), own(1, 1)))), vec![]);
    let changes = l.handle(Input::Sync(0, vec![vm("a", 1)]));
    assert_eq!(
        actions(changes),
        vec![
            Action::RouteLocal { ip: ip(1), mac: vm("a", 1).mac, downlink: 0 },
            Action::Advertise { ip: ip(1), host: 1, seq: 3 },
            // 10.1.1.2's VM left while leafd was down: its old advertisement goes.
            Action::Withdraw { ip: ip(2) },
        ]
    );
    // A later own path (after the sync) of an address nobody here has is withdrawn at once.
    assert_eq!(actions(l.handle(Input::Best(ip(3), own(1, 0)))), vec![Action::Withdraw { ip: ip(3) }]);
    // A move to another leaf still wins over the restored sequence number.
    let changes = l.handle(Input::Best(ip(1), path(2, 4)));
    assert!(matches!(&changes[0].cause, Cause::MoveOut { seq: 4, .. }), "{changes:?}");

    // The vswitchd's VMs first, then GoBGP's table: the advertisement is raised to the
    // sequence number it had.
    let mut l = leaf(&[1], true);
    let first = actions(l.handle(Input::Sync(0, vec![vm("a", 1)])));
    assert!(first.contains(&Action::Advertise { ip: ip(1), host: 1, seq: 0 }), "{first:?}");
    let changes = l.handle(Input::Best(ip(1), own(1, 2)));
    assert_eq!(changes[0].cause, Cause::Restored { ip: ip(1) });
    assert_eq!(actions(changes), vec![Action::Advertise { ip: ip(1), host: 1, seq: 2 }]);
    assert_eq!(actions(l.handle(Input::Best(ip(1), own(1, 2)))), vec![], "once");
    assert_eq!(actions(l.handle(Input::Withdrawn(ip(1), own(1, 2)))), vec![], "its own withdrawal moves nothing");
}
