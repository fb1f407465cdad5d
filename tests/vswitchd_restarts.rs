//! Restarts under load with real QEMU guests: a guest's QEMU killed and started again 20
//! times on the same socket while traffic pours in; vswitchd SIGKILLed three times under a
//! running TCP stream, the guests never restarted; and vswitchd as the vhost-user server
//! (`attach --server`) with QEMU reconnecting across a vswitchd crash.

use std::time::{Duration, Instant};

use roam_api::views::StatsView;
use roam_api::ErrorCode;
use roam_tests::traffic::{arp, ipv4, mac_bytes, start_sender};
use roam_tests::{wait_for, Guest, Leaf, TestDir, Vswitchd};
use serde_json::json;

const ANYCAST: &str = "00:00:5e:00:01:01";
/// vswitchd SIGKILLs under the TCP stream, 8 s apart.
const KILLS: usize = 3;
const GATEWAY: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

fn links_up(vs: &Vswitchd, n: usize) {
    vs.wait_links_up(n, Duration::from_secs(60));
}

fn balanced(vs: &Vswitchd) -> StatsView {
    let s = vs.stats();
    assert_eq!((s.rx_balanced, s.out_balanced), (true, true), "counters do not add up: {s:#?}");
    s
}

/// Guests a (10.1.1.1) and b (10.1.1.2) in segment 100, booted, links up.
fn two_guests(dir: &TestDir, vs: &Vswitchd) -> (Guest, Guest) {
    let mut a = Guest::start(dir, "a", "52:54:00:00:00:01", "10.1.1.1");
    let mut b = Guest::start(dir, "b", "52:54:00:00:00:02", "10.1.1.2");
    vs.attach(&a, 100);
    vs.attach(&b, 100);
    a.wait_ready();
    b.wait_ready();
    links_up(vs, 2);
    (a, b)
}

fn detach_all_and_count_mbufs(vs: &Vswitchd, names: &[&str]) {
    for n in names {
        vs.ok(json!({ "op": "detach", "name": n }));
    }
    vs.wait_mbufs_returned(Duration::from_secs(10));
}

/// Issue check: a guest's QEMU killed and restarted 20 times in a row on the same socket
/// under traffic (frames to it, broadcasts, from the uplink the whole time): traffic
/// resumes each time, and no mbuf leaked at the end.
#[test]
fn a_guest_restarted_twenty_times_under_traffic_talks_again_each_time() {
    let dir = TestDir::new("qemu-restarts");
    let leaf = Leaf::new("qr", ANYCAST, "10.1.1.254/24");
    let mut vs = Vswitchd::start_with_workers(&dir, "host", Some(&leaf.uplink()), 2);
    vs.ok(json!({ "op": "set-anycast", "segment": 100, "mac": ANYCAST, "subnets": ["10.1.1.0/24"], "native": true }));
    let (mut a, mut b) = two_guests(&dir, &vs);
    let bm = mac_bytes(&b.mac);
    let frames = vec![
        ipv4(bm, GATEWAY, [10, 9, 9, 9], [10, 1, 1, 2]),
        arp([0xff; 6], GATEWAY, 1, [10, 1, 1, 254], [10, 1, 1, 3]),
        ipv4(mac_bytes(&a.mac), GATEWAY, [10, 9, 9, 9], [10, 1, 1, 1]),
    ];
    let mut sender = start_sender(&leaf, &frames);

    let started = Instant::now();
    let mut boots = Vec::new();
    for round in 1..=20 {
        let t = Instant::now();
        b.restart();
        b.wait_ready();
        links_up(&vs, 2);
        b.ping_until_reply("10.1.1.1");
        boots.push(t.elapsed().as_secs_f64());
        assert!(vs.is_running(), "vswitchd died in round {round}:\n{}", vs.log());
        let s = balanced(&vs);
        let to_b = s.port("b").map_or(0, |p| p.out.sent);
        assert!(to_b > 0, "round {round}: nothing reached b: {s:#?}");
    }
    println!(
        "20 QEMU restarts in {:.0} s; kill to first ping reply: median {:.1} s, longest {:.1} s",
        started.elapsed().as_secs_f64(),
        median(&boots),
        boots.iter().cloned().fold(0.0, f64::max)
    );
    a.ping_until_reply("10.1.1.2");
    let _ = sender.kill();
    let _ = sender.wait();
    // Frames held for b while its link was down have gone (sent on, or expired and
    // counted) before the pool is counted.
    std::thread::sleep(Duration::from_millis(2500));
    let s = balanced(&vs);
    assert_eq!(s.sum(|p| p.out.holding), 0, "{s:#?}");
    detach_all_and_count_mbufs(&vs, &["a", "b"]);
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// The gaps the probe client reported (`gap AT_MS LEN_MS`), and whether it ended well.
fn probe_result(out: &str) -> (Vec<(f64, f64)>, Option<u64>) {
    let gaps = out
        .lines()
        .filter_map(|l| l.strip_prefix("gap "))
        .filter_map(|r| {
            let mut w = r.split_whitespace().map(|x| x.parse::<f64>().ok());
            Some((w.next()??, w.next()??))
        })
        .collect();
    let echoes = out
        .lines()
        .find_map(|l| l.strip_prefix("done echoes "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    (gaps, echoes)
}

/// Issue check: vswitchd SIGKILLed and restarted three times while two guests run a TCP
/// stream through it: the guests are never restarted, the stream survives every restart,
/// and each restart's stall is reported.
#[test]
fn a_tcp_stream_survives_three_vswitchd_sigkills() {
    let dir = TestDir::new("vs-restarts");
    let mut vs = Vswitchd::start(&dir, "host", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, ANYCAST);
    let (mut a, mut b) = two_guests(&dir, &vs);
    b.ping_until_reply("10.1.1.1");
    a.run("roam-probe server 5001 >/tmp/server.log 2>&1 &");
    let seconds = 40;
    b.run(&format!("roam-probe client 10.1.1.1 5001 {seconds} 5 >/tmp/client.log 2>&1 &"));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        kills.push(t0.elapsed().as_secs_f64() * 1000.0);
        vs.restart();
        links_up(&vs, 2);
        std::thread::sleep(Duration::from_secs(8));
    }
    assert!(a.is_running() && b.is_running(), "a guest's QEMU stopped");
    let done = wait_for("the TCP stream to end", Duration::from_secs(seconds + 60), || {
        let out = b.run("cat /tmp/client.log");
        (out.contains("done echoes") || out.contains("closed")).then_some(out)
    });
    let (gaps, echoes) = probe_result(&done);
    assert!(echoes.is_some_and(|n| n > 1000), "the TCP stream did not survive:\n{done}");
    // Which gap belongs to which restart: the first that ends after the kill (the
    // client's clock starts a moment after ours; a second of slack either way).
    let mut report = Vec::new();
    for (i, k) in kills.iter().enumerate() {
        let stall = gaps
            .iter()
            .filter(|(at, len)| at + len > k - 1000.0 && *at < k + 15_000.0)
            .map(|(_, len)| *len)
            .fold(0.0, f64::max);
        report.push(format!("restart {}: stall {:.0} ms", i + 1, stall));
    }
    println!("TCP stream over {KILLS} vswitchd SIGKILLs: {} echoes; {}", echoes.unwrap_or(0), report.join(", "));
    println!("all gaps over 100 ms (at, length, ms): {gaps:?}");
    let show = vs.show();
    assert_eq!((show.vms.len(), show.failed.len()), (2, 0), "{show:?}");
    balanced(&vs);
}

/// Issue check: `attach --server` end to end. vswitchd serves the socket, QEMU is the
/// client (`reconnect=1`); after a vswitchd SIGKILL the socket file is stale, the restarted
/// vswitchd replaces it, QEMU reconnects, and the guest talks again without a restart.
#[test]
fn server_mode_survives_a_vswitchd_sigkill() {
    let dir = TestDir::new("server-mode");
    let mut vs = Vswitchd::start(&dir, "host", Some("net_null0,no-rx=1"));
    vs.set_anycast(100, ANYCAST);
    let mut a = Guest::start(&dir, "a", "52:54:00:00:00:01", "10.1.1.1");
    vs.attach(&a, 100);
    let socket = dir.path("s.vhost");
    let (ok, out) = vs.vsctl(&[
        "attach",
        "s",
        "--vhost-socket",
        socket.to_str().unwrap(),
        "--mac",
        "52:54:00:00:00:05",
        "--segment",
        "100",
        "--ip",
        "10.1.1.5",
        "--server",
    ]);
    assert!(ok, "{out}");
    assert!(socket.exists(), "vswitchd did not create {}", socket.display());
    let mut s = Guest::start_client(&dir, "s", "52:54:00:00:00:05", "10.1.1.5", &socket);
    a.wait_ready();
    s.wait_ready();
    links_up(&vs, 2);
    s.ping_until_reply("10.1.1.1");

    vs.kill();
    assert!(socket.exists(), "the SIGKILLed vswitchd's socket is gone: nothing to test");
    vs.start_again();
    let show = vs.show();
    assert_eq!(show.failed, [], "the server-mode attachment was not restored: {show:?}");
    links_up(&vs, 2);
    s.run("ip neigh flush dev eth0");
    s.ping_until_reply("10.1.1.1");
    a.ping_until_reply("10.1.1.5");
    assert!(s.is_running() && a.is_running(), "a guest's QEMU stopped");
    // A second server-mode attachment on a path that holds a regular file is refused,
    // and the file stays.
    let file = dir.path("not-a-socket");
    std::fs::write(&file, "data").unwrap();
    let (code, _) = vs.refused(json!({ "op": "attach", "name": "t", "socket": file, "server": true, "mac": "52:54:00:00:00:06", "segment": 100 }));
    assert_eq!(code, ErrorCode::Failed);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    balanced(&vs);
}
