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
    let bad = Domain { name: "b", mac: "52:54:00:00:00:02", ip: "10.1.1.2", socket: &bsock, console: &bcons, ctl: &bctl, mode: "client", ..domain };
    let xml = dir.path("b.xml");
    std::fs::write(&xml, bad.xml()).unwrap();
    libvirt.virsh(&["define", &xml.display().to_string()]);
    let refused = libvirt.try_virsh(&["start", "b"]).expect_err("a client-mode vNIC must not start");
    assert!(refused.contains("hook") && refused.contains("mode='server'"), "{refused}");
    assert!(vs.show().vms.is_empty());
    assert!(!libvirt.virsh(&["list", "--name"]).contains('b'), "b is not running");
}
