//! Roam under a real libvirtd (Debian 12's libvirt 9.0, qemu driver, TCG), as
//! docs/libvirt.md has it: the domain's vNIC a vhost-user interface QEMU serves, Roam's
//! metadata naming its segment and addresses, and Roam's hook in libvirt's hooks directory.
//! `virsh define` + `virsh start`: the hook attaches the port before QEMU runs; the guest
//! pings its gateway (a leaf namespace on the uplink) through vswitchd; `virsh destroy`
//! detaches it; a second start attaches it again; a domain whose interface is not
//! QEMU-served is refused with the hook's message and never reaches vswitchd.

use std::time::Duration;

use roam_tests::libvirt::{Domain, Libvirtd};
use roam_tests::{wait_for, Guest, Leaf, TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";

#[test]
fn virsh_start_attaches_the_port_the_guest_pings_and_destroy_detaches_it() {
    let dir = TestDir::new("libvirt");
    let leaf = Leaf::new("lv", ANYCAST, "10.1.1.254/24");
    let vs = Vswitchd::start(&dir, "lvhost", Some(&leaf.uplink()));
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let libvirt = Libvirtd::start(&dir, "host1");

    let (console, ctl, socket) = (dir.path("a.console"), dir.path("a.serial"), dir.path("a.vhost"));
    let mut a = Guest::external("a", "52:54:00:00:00:01", "10.1.1.1", &console, &ctl);
    let (ip6, cmdline) = (a.ip6(), a.cmdline());
    let domain = Domain {
        name: "a",
        mac: "52:54:00:00:00:01",
        ip: "10.1.1.1",
        ip6: &ip6,
        cmdline: &cmdline,
        vswitchd: &vs.socket,
        socket: &socket,
        console: &console,
        ctl: &ctl,
        mode: "server",
    };
    let xml = dir.path("a.xml");
    std::fs::write(&xml, domain.xml()).unwrap();
    libvirt.virsh(&["define", &xml.display().to_string()]);
    assert!(vs.show().vms.is_empty(), "defining attaches nothing");

    libvirt.virsh(&["start", "a"]);
    let vm = vs.show().vms.into_iter().find(|v| v.name == "a").expect("the hook attached a at start");
    assert_eq!((vm.mac.to_string().as_str(), vm.segment.get()), ("52:54:00:00:00:01", 100));
    assert_eq!(vm.socket.as_deref(), Some(socket.as_path()));
    assert_eq!(vm.ipv4, vec!["10.1.1.1".parse::<std::net::Ipv4Addr>().unwrap()]);
    a.wait_ready();
    wait_for("a's link up", Duration::from_secs(30), || {
        vs.show().vms.iter().any(|v| v.name == "a" && v.link_up).then_some(())
    });
    a.ping_until_reply("10.1.1.254");
    let out = a.run("ping -c 3 -W 2 10.1.1.254");
    assert!(out.contains(" 0% packet loss"), "{out}");
    let port = vs.port_stats("a");
    assert!(port.input.rx >= 3 && port.out.sent >= 3, "the pings went through vswitchd: {port:?}");
    // The command line libvirt ran (its QEMU log): QEMU serves the vNIC's socket.
    let log = libvirt.qemu_log("a");
    let served = format!("path={},server=on", socket.display());
    assert!(log.contains("vhost-user") && log.contains(&served), "libvirt's QEMU log: {log}");

    libvirt.virsh(&["destroy", "a"]);
    wait_for("the hook to detach a", Duration::from_secs(10), || vs.show().vms.is_empty().then_some(()));
    assert!(vs.fdb().entries.iter().all(|e| e.port_name != "a"), "a's MAC is gone from the table");

    // Started again: attached again, reachable again.
    libvirt.virsh(&["start", "a"]);
    assert!(vs.show().vms.iter().any(|v| v.name == "a"), "attached at the second start");
    let mut a = Guest::external("a", "52:54:00:00:00:01", "10.1.1.1", &console, &ctl);
    a.wait_ready();
    a.ping_until_reply("10.1.1.254");
    libvirt.virsh(&["destroy", "a"]);
    wait_for("the hook to detach a again", Duration::from_secs(10), || vs.show().vms.is_empty().then_some(()));
    libvirt.virsh(&["undefine", "a"]);

    // A vNIC QEMU does not serve cannot be Roam's: libvirt refuses to start the domain,
    // with the hook's reason, and vswitchd never hears of it.
    let (bsock, bcons, bctl) = (dir.path("b.vhost"), dir.path("b.console"), dir.path("b.serial"));
    let bad = Domain {
        name: "b",
        mac: "52:54:00:00:00:02",
        ip: "10.1.1.2",
        socket: &bsock,
        console: &bcons,
        ctl: &bctl,
        mode: "client",
        ..domain
    };
    let xml = dir.path("b.xml");
    std::fs::write(&xml, bad.xml()).unwrap();
    libvirt.virsh(&["define", &xml.display().to_string()]);
    let refused = libvirt.try_virsh(&["start", "b"]).expect_err("a client-mode vNIC must not start");
    assert!(refused.contains("hook") && refused.contains("mode='server'"), "{refused}");
    assert!(vs.show().vms.is_empty());
    assert!(!libvirt.virsh(&["list", "--name"]).contains('b'), "b is not running");
}

/// `virsh migrate --live` between two libvirtds on this one machine (each in its own mount
/// namespace, with its own host UUID), each host with its own vswitchd and leaf: the
/// destination's hook attaches the port before its QEMU runs, the source's detaches it
/// once its QEMU is gone, and the guest reaches its gateway from its new host. On one
/// machine the two QEMUs cannot serve one socket path, nor the two hosts' vswitchds share
/// one control socket: the destination gets its own through `virsh migrate --xml` (what an
/// operator would also use for host-specific paths); between two machines the same XML
/// serves both.
#[test]
fn virsh_migrate_live_moves_the_port_between_hosts() {
    let dir = TestDir::new("libvirt-migrate");
    let leaves = [Leaf::new("lm1", ANYCAST, "10.1.1.254/24"), Leaf::new("lm2", ANYCAST, "10.1.1.254/24")];
    let switches: Vec<Vswitchd> = leaves
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let vs = Vswitchd::start(&dir, &format!("lmhost{}", i + 1), Some(&l.uplink()));
            vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
            vs
        })
        .collect();
    let hosts = [
        Libvirtd::start_with_uuid(&dir, "h1", "8a9e6f1c-0000-4000-8000-000000000001"),
        Libvirtd::start_with_uuid(&dir, "h2", "8a9e6f1c-0000-4000-8000-000000000002"),
    ];
    let a = Guest::external("a", "52:54:00:00:00:01", "10.1.1.1", &dir.path("x"), &dir.path("x"));
    let (ip6, cmdline) = (a.ip6(), a.cmdline());
    let paths: Vec<[std::path::PathBuf; 3]> =
        (1..=2).map(|h| ["vhost", "console", "serial"].map(|k| dir.path(&format!("a-h{h}.{k}")))).collect();
    let xml: Vec<std::path::PathBuf> = (0..2)
        .map(|h| {
            let d = Domain {
                name: "a",
                mac: "52:54:00:00:00:01",
                ip: "10.1.1.1",
                ip6: &ip6,
                cmdline: &cmdline,
                vswitchd: &switches[h].socket,
                socket: &paths[h][0],
                console: &paths[h][1],
                ctl: &paths[h][2],
                mode: "server",
            };
            let file = dir.path(&format!("a-h{}.xml", h + 1));
            std::fs::write(&file, d.xml()).unwrap();
            file
        })
        .collect();
    hosts[0].virsh(&["define", &xml[0].display().to_string()]);
    hosts[0].virsh(&["start", "a"]);
    let mut a = Guest::external("a", "52:54:00:00:00:01", "10.1.1.1", &paths[0][1], &paths[0][2]);
    a.wait_ready();
    a.ping_until_reply("10.1.1.254");
    assert!(switches[0].show().vms.iter().any(|v| v.name == "a"));

    let port = 49152 + (std::process::id() % 1000) as u16;
    let migrated = hosts[0].try_virsh(&[
        "migrate",
        "--live",
        "--verbose",
        "--xml",
        &xml[1].display().to_string(),
        "a",
        &hosts[1].uri,
        &format!("tcp://127.0.0.1:{port}"),
        "--listen-address",
        "127.0.0.1",
    ]);
    if let Err(e) = &migrated {
        panic!(
            "virsh migrate: {e}\nsource libvirtd: {}\ndestination libvirtd: {}",
            hosts[0].log_tail(),
            hosts[1].log_tail()
        );
    }
    assert!(hosts[1].virsh(&["list", "--name"]).contains('a'), "a runs at host 2");
    wait_for("host 1's hook to detach a", Duration::from_secs(20), || switches[0].show().vms.is_empty().then_some(()));
    let there = switches[1].show().vms.into_iter().find(|v| v.name == "a").expect("host 2's hook attached a");
    assert_eq!(there.socket.as_deref(), Some(paths[1][0].as_path()));
    wait_for("a's link up at host 2", Duration::from_secs(30), || {
        switches[1].show().vms.iter().any(|v| v.name == "a" && v.link_up).then_some(())
    });
    // Its shell came along in its memory: reach it on host 2's serial socket.
    let mut a = Guest::external("a", "52:54:00:00:00:01", "10.1.1.1", &paths[1][1], &paths[1][2]);
    a.connect();
    a.ping_until_reply("10.1.1.254");
    let p = switches[1].port_stats("a");
    assert!(p.input.rx >= 1 && p.out.sent >= 1, "a's frames go through host 2's vswitchd: {p:?}");
    hosts[1].virsh(&["destroy", "a"]);
    wait_for("host 2's hook to detach a", Duration::from_secs(10), || switches[1].show().vms.is_empty().then_some(()));
}
