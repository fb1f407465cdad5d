//! vswitchd's control API against the real daemon, no guests: bad requests get a clear
//! error and change nothing; attachments survive a crash through the state file.

use roam_api::views::{Attached, Hello};
use roam_api::{ErrorCode, Event, Response, PROTOCOL_VERSION};
use roam_tests::{TestDir, Vswitchd};
use serde_json::json;

/// A thousand malformed or invalid requests of many kinds.
fn bad_requests() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let fixed = [
        "",
        "{",
        "null",
        "[]",
        "42",
        r#"{"op":"nope"}"#,
        r#"{"op":"show","extra":1}"#,
        r#"{"op":"attach"}"#,
        r#"{"op":"attach","name":1,"socket":"/tmp/x","mac":"52:54:00:00:00:01","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"ff:ff:ff:ff:ff:ff","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"00:00:00:00:00:00","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"52:54:00:00:00:zz","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"52:54:00:00:00:09","segment":999}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"52:54:00:00:00:09","segment":70000}"#,
        r#"{"op":"attach","name":"","socket":"/tmp/x","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"a b","socket":"/tmp/x","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/a,b","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm1","socket":"/tmp/x","mac":"52:54:00:00:00:01","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","mac":"52:54:00:00:00:09","segment":100,"ipv4":["10.1.1.300"]}"#,
        r#"{"op":"attach","name":"vm","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","socket":"/tmp/x","device":"net_null9","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","device":"net null","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","device":"net_nosuchdriver0","mac":"52:54:00:00:00:09","segment":100}"#,
        r#"{"op":"attach","name":"vm","device":"net_null9","mac":"52:54:00:00:00:09","segment":100,"extra_macs":[{"base":"01:00:00:00:00:00","count":5}]}"#,
        r#"{"op":"attach","name":"vm","device":"net_null9","mac":"52:54:00:00:00:09","segment":100,"extra_macs":[{"base":"02:00:00:00:00:00","count":0}]}"#,
        r#"{"op":"attach","name":"vm","device":"net_null9","mac":"52:54:00:00:00:09","segment":100,"extra_macs":[{"base":"52:54:00:00:00:00","count":5}]}"#,
        r#"{"op":"attach","name":"vm","device":"net_null9","mac":"52:54:00:00:00:09","segment":100,"extra_macs":[{"base":"02:00:00:00:00:00","count":99999999}]}"#,
        r#"{"op":"detach","name":"ghost"}"#,
        r#"{"op":"detach"}"#,
        r#"{"op":"set-anycast","segment":0,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":4095,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":16777216,"vlan":200,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":200,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":200,"native":true,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":100,"mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":200,"mac":"01:00:5e:00:00:01"}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":200,"mac":"00:00:5e:00:01:01","subnets":["10.0.0.0/40"]}"#,
        r#"{"op":"set-anycast","segment":200,"vlan":200,"mac":"00:00:5e:00:01:01","subnets":["nonsense"]}"#,
        r#"{"op":"arp-announce","to":["ghost"],"ip":"10.1.1.2","mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"arp-announce","to":["vm1"],"ip":"10.1.1.2","mac":"ff:ff:ff:ff:ff:ff"}"#,
        r#"{"op":"arp-announce","to":["vm1","ghost"],"ip":"10.1.1.2","mac":"00:00:5e:00:01:01"}"#,
        r#"{"op":"arp-announce","to":["vm1"],"ip":"not-an-ip","mac":"00:00:5e:00:01:01"}"#,
    ];
    while v.len() < 1000 {
        for f in fixed {
            v.push(f.to_string());
        }
        // Random bytes that are not JSON, and truncations of good requests.
        let n = v.len();
        v.push(format!("{{\"op\":\"attach\",\"name\":\"x{n}\",\"socket\":"));
        v.push(format!("\u{1}\u{2}garbage{n}\u{7f}"));
    }
    v.truncate(1000);
    v
}

#[test]
fn a_thousand_bad_requests_each_get_an_error_and_change_nothing() {
    let dir = TestDir::new("api-bad");
    let vs = Vswitchd::start(&dir, "vs", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, "00:00:5e:00:01:01");
    vs.ok(json!({ "op": "attach", "name": "vm1", "socket": dir.path("vm1.sock"), "mac": "52:54:00:00:00:01", "segment": 100, "ipv4": ["10.1.1.1"] }));
    let before = (vs.show(), vs.fdb(), std::fs::read(&vs.state).unwrap());
    for (i, req) in bad_requests().iter().enumerate() {
        let line = vs.raw(req);
        let r: Response = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("request {i} {req:?}: response {line:?} is not a response: {e}"));
        assert!(!r.ok, "request {i} {req:?} was accepted: {r:?}");
        assert!(r.error.as_ref().is_some_and(|e| !e.is_empty()), "request {i} {req:?}: no error text: {r:?}");
        assert!(r.code.is_some(), "request {i} {req:?}: no error code: {r:?}");
    }
    let after = (vs.show(), vs.fdb(), std::fs::read(&vs.state).unwrap());
    assert_eq!(before.0.vms, after.0.vms);
    assert_eq!(before.0.segments, after.0.segments);
    assert_eq!(before.1, after.1, "the MAC table changed");
    assert_eq!(before.2, after.2, "the state file changed");
    // An over-long line is refused too, and the daemon keeps serving.
    let long = format!("{{\"op\":\"show\",\"pad\":\"{}\"}}", "x".repeat(70_000));
    assert!(vs.raw(&long).contains("longer than"));
    assert_eq!(vs.show().vms, before.0.vms);
}

/// `hello` reports the protocol version and refuses another; refusals carry stable codes
/// by kind (what a program tests), beside the message (what a person reads).
#[test]
fn hello_and_error_codes() {
    let dir = TestDir::new("api-codes");
    let vs = Vswitchd::start(&dir, "vs", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, "00:00:5e:00:01:01");
    let hello: Hello = serde_json::from_value(vs.ok(json!({ "op": "hello", "version": PROTOCOL_VERSION }))).unwrap();
    assert_eq!((hello.version, hello.daemon.as_str()), (PROTOCOL_VERSION, "vswitchd"), "{hello:?}");
    let (code, message) = vs.refused(json!({ "op": "hello", "version": PROTOCOL_VERSION + 1 }));
    assert!(code == ErrorCode::Version && message.contains("protocol version"), "{code:?} {message}");
    for (req, want) in [
        (json!({ "op": "nope" }), ErrorCode::BadRequest),
        (
            json!({ "op": "set-anycast", "segment": 16_777_216, "vlan": 200, "mac": "00:00:5e:00:01:01" }),
            ErrorCode::BadRequest,
        ),
        (
            json!({ "op": "attach", "name": "a b", "device": "net_null1", "mac": "52:54:00:00:00:01", "segment": 100 }),
            ErrorCode::Invalid,
        ),
        (
            json!({ "op": "attach", "name": "vm", "device": "net_null1", "mac": "52:54:00:00:00:01", "segment": 999 }),
            ErrorCode::NotFound,
        ),
        (json!({ "op": "detach", "name": "ghost" }), ErrorCode::NotFound),
        (json!({ "op": "set-anycast", "segment": 200, "vlan": 100, "mac": "00:00:5e:00:01:01" }), ErrorCode::Conflict),
        (
            json!({ "op": "attach", "name": "vm", "device": "net_nosuchdriver0", "mac": "52:54:00:00:00:01", "segment": 100 }),
            ErrorCode::Failed,
        ),
        (json!({ "op": "debug-crash-worker", "worker": 0 }), ErrorCode::Disabled),
    ] {
        let (code, message) = vs.refused(req.clone());
        assert_eq!(code, want, "{req}: {message}");
    }
    // The client says hello itself.
    assert_eq!(vs.client().show().expect("show").segments.len(), 1);
}

#[test]
fn attachments_and_segments_survive_a_crash() {
    let dir = TestDir::new("api-restart");
    let mut vs = Vswitchd::start(&dir, "vs", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, "00:00:5e:00:01:01");
    for (i, name) in ["vm1", "vm2"].iter().enumerate() {
        vs.ok(json!({ "op": "attach", "name": name, "socket": dir.path(&format!("{name}.sock")), "mac": format!("52:54:00:00:00:0{}", i + 1), "segment": 100 }));
    }
    vs.ok(json!({ "op": "detach", "name": "vm2" }));
    let fdb = vs.fdb();
    vs.restart(); // SIGKILL, then start again
    let show = vs.show();
    let names: Vec<&str> = show.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["vm1"]);
    assert_eq!(show.segments[0].segment.get(), 100);
    assert_eq!(vs.fdb().entries, fdb.entries);
    let (ok, out) = vs.vsctl(&["fdb"]);
    assert!(ok && out.contains("52:54:00:00:00:01") && out.contains("anycast"), "{out}");
    let search = fdb.search.as_str();
    assert!(["sse4.1", "scalar"].contains(&search), "{fdb:?}");
    assert!(
        out.contains(&format!("of {} entries", fdb.capacity)) && out.contains(&format!("{search} key search")),
        "{out}"
    );
}

#[test]
fn the_event_stream_reports_attach_and_detach() {
    use std::io::{BufRead, BufReader, Write};
    let dir = TestDir::new("api-events");
    let vs = Vswitchd::start(&dir, "vs", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, "00:00:5e:00:01:01");
    let conn = std::os::unix::net::UnixStream::connect(&vs.socket).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut w = conn.try_clone().unwrap();
    writeln!(w, "{}", json!({ "op": "events" })).unwrap();
    let mut lines = BufReader::new(conn).lines();
    let ack: Response = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(ack.result, Some(json!({ "subscribed": true })), "{ack:?}");
    vs.ok(json!({ "op": "attach", "name": "vm1", "socket": dir.path("vm1.sock"), "mac": "52:54:00:00:00:01", "segment": 100, "ipv4": ["10.1.1.1"] }));
    vs.ok(json!({ "op": "detach", "name": "vm1" }));
    let e1: Event = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let e2: Event = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let Event::Attach { name, mac, segment, ipv4, .. } = e1 else { panic!("not an attach event: {e1:?}") };
    assert_eq!((name.as_str(), mac.to_string().as_str()), ("vm1", "52:54:00:00:00:01"));
    assert_eq!((segment.get(), ipv4), (100, vec!["10.1.1.1".parse::<std::net::Ipv4Addr>().unwrap()]));
    assert!(matches!(&e2, Event::Detach { name, .. } if name == "vm1"), "{e2:?}");
}

/// A port that is not vhost-user (any DPDK vdev) with extra MACs behind it: all installed
/// statically, restored after a crash, and removed at detach.
#[test]
fn a_vdev_port_with_extra_macs_is_installed_restored_and_removed() {
    let dir = TestDir::new("vdev");
    let mut vs = Vswitchd::start(&dir, "host1", Some("net_null0,no-rx=1"));
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "vlan": 100, "mac": "00:00:5e:00:01:01" }));
    let r: Attached = serde_json::from_value(vs.ok(json!({ "op": "attach", "name": "sink", "device": "net_null7,no-rx=1", "mac": "52:54:00:00:00:07", "segment": 100, "port_security": false,
                          "extra_macs": [{ "base": "02:00:00:00:00:fe", "count": 1000 }] }))).unwrap();
    assert_eq!(r.device, "net_null7", "{r:?}");
    let count = |vs: &Vswitchd| vs.fdb().entries.iter().filter(|x| x.port_name == "sink").count();
    assert_eq!(count(&vs), 1001);
    let fdb = vs.fdb();
    for mac in ["02:00:00:00:00:fe", "02:00:00:00:01:00", "02:00:00:00:04:e5"] {
        assert!(fdb.entries.iter().any(|e| e.mac.to_string() == mac && e.port_name == "sink"), "{mac} missing");
    }
    // A second range overlapping the first is refused and changes nothing.
    let (code, error) = vs.refused(json!({ "op": "attach", "name": "other", "device": "net_null8", "mac": "52:54:00:00:00:08", "segment": 100, "extra_macs": [{ "base": "02:00:00:00:04:e5", "count": 2 }] }));
    assert!(code == ErrorCode::Conflict && error.contains("already"), "{code:?} {error}");
    vs.restart();
    assert_eq!(count(&vs), 1001, "restored from the state file");
    // A port whose link never went down holds nothing; stats and vsctl say so.
    let sink = vs.port_stats("sink");
    assert_eq!((sink.out.held, sink.out.released, sink.out.held_dropped), (0, 0, 0), "{sink:?}");
    let (ok, out) = vs.vsctl(&["stats"]);
    assert!(ok && out.contains("HELD") && out.contains("RELEASED") && out.contains("sink"), "{out}");
    vs.ok(json!({ "op": "detach", "name": "sink" }));
    assert_eq!(count(&vs), 0);
    assert_eq!(vs.fdb().entries.len(), 1, "only the anycast entry is left");
}

/// vsctl as scripts use it: documented exit codes, `stats --watch` with rates that follow
/// from its own totals, and shell completions that a shell accepts.
#[test]
fn vsctl_exit_codes_watch_rates_and_completions() {
    use roam_tests::traffic::{churn_mac, mac_str, vm_frames, write_pcap, SRC};
    let dir = TestDir::new("vsctl-cli");
    let vs = Vswitchd::start(&dir, "cli", Some("net_null0,no-rx=1"));
    let vsctl = |args: &[&str]| {
        let out = std::process::Command::new(roam_tests::bin("vsctl")).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let socket = vs.socket.display().to_string();
    let s = socket.as_str();
    let (code, _, err) = vsctl(&["--socket", s, "detach", "nobody"]);
    assert_eq!(code, Some(4), "not-found: {err}");
    let (code, _, err) =
        vsctl(&["--socket", s, "set-anycast", "--segment", "100", "--vlan", "100", "--mac", "ff:ff:ff:ff:ff:ff"]);
    assert!(code == Some(1) && err.contains("refused (invalid)"), "refused: {code:?} {err}");
    let (code, _, err) = vsctl(&["--socket", &dir.path("nothing.sock").display().to_string(), "show"]);
    assert!(code == Some(3) && err.contains("is it running"), "unreachable: {code:?} {err}");
    let (code, _, _) = vsctl(&["--socket", s, "no-such-command"]);
    assert_eq!(code, Some(2), "usage");
    let (code, help, _) = vsctl(&["--help"]);
    assert!(code == Some(0) && help.contains("Exit codes:") && help.contains("Examples:"), "{help}");

    // Traffic that goes on: the rates are the totals' differences over the interval.
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": "00:00:5e:00:01:01", "native": true }));
    vs.ok(json!({ "op": "attach", "name": "sink", "device": "net_null1,no-rx=1", "mac": mac_str(churn_mac(0)), "segment": 100 }));
    let pcap = dir.path("vm.pcap");
    write_pcap(&pcap, &vm_frames());
    vs.ok(
        json!({ "op": "attach", "name": "src", "device": format!("net_pcap2,rx_pcap={},infinite_rx=1", pcap.display()),
                  "mac": mac_str(SRC), "segment": 100, "ipv4": ["10.1.1.100"] }),
    );
    let (code, out, err) = vsctl(&["--socket", s, "--json", "stats", "--watch", "0.5", "--count", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["rates"].is_null(), "no rates before a second snapshot");
    let rx = |v: &serde_json::Value| {
        v["ports"].as_array().unwrap().iter().find(|p| p["name"] == "src").unwrap()["rx"].as_f64().unwrap()
    };
    let r = &lines[2]["rates"];
    let seconds = r["seconds"].as_f64().unwrap();
    let rate = r["ports"].as_array().unwrap().iter().find(|p| p["name"] == "src").unwrap()["rx"].as_f64().unwrap();
    assert!((0.4..5.0).contains(&seconds), "{seconds}");
    assert!(rate > 0.0, "src is sending: {r}");
    assert!((rate * seconds - (rx(&lines[2]) - rx(&lines[1]))).abs() < 1.0, "rate {rate} over {seconds} s: {r}");
    let (code, table, _) = vsctl(&["--socket", s, "stats", "--watch", "0.2", "--count", "2"]);
    assert!(code == Some(0) && table.contains("RX/S") && table.contains("CYCLES/FRAME"), "{table}");

    // Completions: bash loads them and completes the subcommands.
    let (code, script, _) = vsctl(&["completions", "bash"]);
    assert_eq!(code, Some(0));
    let file = dir.path("vsctl.bash");
    std::fs::write(&file, script).unwrap();
    let check = format!("source {}; complete -p vsctl", file.display());
    let out = std::process::Command::new("bash").args(["-c", &check]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("vsctl"), "{out:?}");
}
