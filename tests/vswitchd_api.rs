//! vswitchd's control API against the real daemon, no guests: bad requests get a clear
//! error and change nothing; attachments survive a crash through the state file.

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
    let before = (vs.ok(json!({"op":"show"})), vs.ok(json!({"op":"fdb"})), std::fs::read(&vs.state).unwrap());
    for (i, req) in bad_requests().iter().enumerate() {
        let line = vs.raw(req);
        let r: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("request {i} {req:?}: response {line:?} is not JSON: {e}"));
        assert_eq!(r["ok"], json!(false), "request {i} {req:?} was accepted: {r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "request {i} {req:?}: no error text: {r}");
    }
    let after = (vs.ok(json!({"op":"show"})), vs.ok(json!({"op":"fdb"})), std::fs::read(&vs.state).unwrap());
    assert_eq!(before.0["vms"], after.0["vms"]);
    assert_eq!(before.0["segments"], after.0["segments"]);
    assert_eq!(before.1, after.1, "the MAC table changed");
    assert_eq!(before.2, after.2, "the state file changed");
    // An over-long line is refused too, and the daemon keeps serving.
    let long = format!("{{\"op\":\"show\",\"pad\":\"{}\"}}", "x".repeat(70_000));
    assert!(vs.raw(&long).contains("longer than"));
    assert_eq!(vs.ok(json!({"op":"show"}))["vms"], before.0["vms"]);
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
    let fdb = vs.ok(json!({"op":"fdb"}));
    vs.restart(); // SIGKILL, then start again
    let show = vs.ok(json!({"op":"show"}));
    let names: Vec<&str> = show["vms"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["vm1"]);
    assert_eq!(show["segments"][0]["segment"], json!(100));
    assert_eq!(vs.ok(json!({"op":"fdb"}))["entries"], fdb["entries"]);
    let (ok, out) = vs.vsctl(&["fdb"]);
    assert!(ok && out.contains("52:54:00:00:00:01") && out.contains("anycast"), "{out}");
    let search = fdb["search"].as_str().unwrap_or_default();
    assert!(["sse4.1", "scalar"].contains(&search), "{fdb}");
    assert!(
        out.contains(&format!("of {} entries", fdb["capacity"])) && out.contains(&format!("{search} key search")),
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
    let ack: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(ack["result"]["subscribed"], json!(true));
    vs.ok(json!({ "op": "attach", "name": "vm1", "socket": dir.path("vm1.sock"), "mac": "52:54:00:00:00:01", "segment": 100, "ipv4": ["10.1.1.1"] }));
    vs.ok(json!({ "op": "detach", "name": "vm1" }));
    let e1: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let e2: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (e1["event"].as_str(), e1["name"].as_str(), e1["mac"].as_str()),
        (Some("attach"), Some("vm1"), Some("52:54:00:00:00:01"))
    );
    assert_eq!((e1["segment"].clone(), e1["ipv4"].clone()), (json!(100), json!(["10.1.1.1"])));
    assert_eq!((e2["event"].as_str(), e2["name"].as_str()), (Some("detach"), Some("vm1")));
}

/// A port that is not vhost-user (any DPDK vdev) with extra MACs behind it: all installed
/// statically, restored after a crash, and removed at detach.
#[test]
fn a_vdev_port_with_extra_macs_is_installed_restored_and_removed() {
    let dir = TestDir::new("vdev");
    let mut vs = Vswitchd::start(&dir, "host1", Some("net_null0,no-rx=1"));
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "vlan": 100, "mac": "00:00:5e:00:01:01" }));
    let r = vs.ok(json!({ "op": "attach", "name": "sink", "device": "net_null7,no-rx=1", "mac": "52:54:00:00:00:07", "segment": 100, "port_security": false,
                          "extra_macs": [{ "base": "02:00:00:00:00:fe", "count": 1000 }] }));
    assert_eq!(r["device"], json!("net_null7"), "{r}");
    let count = |vs: &Vswitchd| {
        vs.ok(json!({ "op": "fdb" }))["entries"]
            .as_array()
            .map(|e| e.iter().filter(|x| x["port_name"] == json!("sink")).count())
            .unwrap_or(0)
    };
    assert_eq!(count(&vs), 1001);
    let fdb = vs.ok(json!({ "op": "fdb" }));
    for mac in ["02:00:00:00:00:fe", "02:00:00:00:01:00", "02:00:00:00:04:e5"] {
        assert!(
            fdb["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["mac"] == json!(mac) && e["port_name"] == json!("sink")),
            "{mac} missing"
        );
    }
    // A second range overlapping the first is refused and changes nothing.
    let r = vs.request(&json!({ "op": "attach", "name": "other", "device": "net_null8", "mac": "52:54:00:00:00:08", "segment": 100, "extra_macs": [{ "base": "02:00:00:00:04:e5", "count": 2 }] }));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("already"), "{r}");
    vs.restart();
    assert_eq!(count(&vs), 1001, "restored from the state file");
    // A port whose link never went down holds nothing; stats and vsctl say so.
    let sink = vs.port_stats("sink");
    assert_eq!(
        (sink["held"].clone(), sink["released"].clone(), sink["held_dropped"].clone()),
        (json!(0), json!(0), json!(0)),
        "{sink}"
    );
    let (ok, out) = vs.vsctl(&["stats"]);
    assert!(ok && out.contains("HELD") && out.contains("RELEASED") && out.contains("sink"), "{out}");
    vs.ok(json!({ "op": "detach", "name": "sink" }));
    assert_eq!(count(&vs), 0);
    assert_eq!(
        vs.ok(json!({ "op": "fdb" }))["entries"].as_array().map(|e| e.len()),
        Some(1),
        "only the anycast entry is left"
    );
}
