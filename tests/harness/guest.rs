//! QEMU guests built by `scripts/mkguest`, attached over vhost-user, with a shell on their
//! second serial port, and QEMU's QMP for live migration.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{guest_image, wait_for, Qmp, TestDir};

/// A QEMU guest on a vhost-user socket it serves (vswitchd connects as the client).
pub struct Guest {
    child: Option<Child>,
    pub name: String,
    pub mac: String,
    pub ip: String,
    /// vhost-user queue pairs.
    pub queues: u16,
    pub vhost_socket: PathBuf,
    console: PathBuf,
    ctl_path: PathBuf,
    /// QEMU's QMP socket.
    pub qmp_path: PathBuf,
    /// `-incoming tcp:127.0.0.1:PORT`: this QEMU waits for a live migration.
    incoming: Option<u16>,
    /// QEMU is the vhost-user client (`reconnect=1`) of a socket vswitchd serves.
    client: bool,
    /// The guest may announce itself after a migration (virtio's GUEST_ANNOUNCE); without,
    /// QEMU asks the vhost-user backend to send a RARP for it.
    pub guest_announce: bool,
    ctl: Option<(UnixStream, BufReader<UnixStream>)>,
    seq: u64,
}

/// What QEMU reported for a completed live migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub total_ms: u64,
    pub downtime_ms: u64,
    /// When the harness saw `completed`.
    pub completed_at: std::time::SystemTime,
    /// When the source QEMU stopped the guest (its `STOP` event), µs since the epoch.
    pub stopped_us: u64,
}

/// Where [`Guest::migrate_and_fail`] kills the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAt {
    /// While RAM is copied: the guest never stops.
    Copy,
    /// At switchover, the guest stopped for this long first.
    Switchover(Duration),
}

/// What QEMU reported for a migration that failed.
#[derive(Debug, Clone, Copy)]
pub struct FailedMigration {
    /// When the harness saw `failed`.
    pub failed_at: std::time::SystemTime,
    /// The source's `STOP` and `RESUME` events (a switchover failure), µs since the epoch.
    pub stopped_us: Option<u64>,
    pub resumed_us: Option<u64>,
}

/// Microseconds since the Unix epoch.
pub fn micros(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

impl Guest {
    /// The guest's IPv6 address, derived from its IPv4 one: 10.X.Y.Z is 2001:db8:Y::Z (the
    /// segment's 2001:db8:1::/64 for the tests' 10.1.1.0/24). Every test guest is dual-stack,
    /// its IPv6 default route via the anycast gateway's link-local `fe80::1`.
    pub fn ip6(&self) -> String {
        let o: Vec<&str> = self.ip.split('.').collect();
        format!("2001:db8:{}::{}", o[2], o[3])
    }

    /// Starts QEMU; the guest boots once a vswitchd attaches its socket.
    pub fn start(dir: &TestDir, name: &str, mac: &str, ip: &str) -> Guest {
        Guest::start_with_queues(dir, name, mac, ip, 1)
    }

    /// As [`Guest::start`], with `queues` vhost-user queue pairs.
    pub fn start_with_queues(dir: &TestDir, name: &str, mac: &str, ip: &str, queues: u16) -> Guest {
        Guest::build(dir, name, name, mac, ip, queues, None)
    }

    /// The destination of a live migration of the guest `name`: the same machine, waiting
    /// on `-incoming tcp:127.0.0.1:PORT`; its sockets are named after `tag`.
    pub fn start_incoming(dir: &TestDir, name: &str, tag: &str, mac: &str, ip: &str, port: u16) -> Guest {
        Guest::build(dir, name, tag, mac, ip, 1, Some(port))
    }

    /// The destination of a live migration of this guest, with the same devices: waiting
    /// on `-incoming tcp:127.0.0.1:PORT`, its sockets named after `tag`.
    pub fn incoming(&self, dir: &TestDir, tag: &str, port: u16) -> Guest {
        let mut g = Guest::new(dir, &self.name, tag, &self.mac, &self.ip, self.queues, Some(port));
        g.guest_announce = self.guest_announce;
        g.spawn();
        g
    }

    /// A guest that cannot announce itself (`guest_announce=off` on its virtio-net device):
    /// after a migration QEMU asks the vhost-user backend to send a RARP for it.
    pub fn start_rarp_only(dir: &TestDir, name: &str, mac: &str, ip: &str) -> Guest {
        let mut g = Guest::new(dir, name, name, mac, ip, 1, None);
        g.guest_announce = false;
        g.spawn();
        g
    }

    /// A guest whose QEMU is the vhost-user client of `socket`, which vswitchd serves
    /// (`attach --server`); QEMU reconnects every second when the server goes away. The
    /// socket must exist first (attach it, then start the guest).
    pub fn start_client(dir: &TestDir, name: &str, mac: &str, ip: &str, socket: &Path) -> Guest {
        let mut g = Guest::new(dir, name, name, mac, ip, 1, None);
        g.vhost_socket = socket.to_path_buf();
        g.client = true;
        g.spawn();
        g
    }

    /// A guest another program runs (libvirt): the harness reaches its console file and
    /// its control shell's socket at `console` and `ctl`, and never starts or stops it.
    pub fn external(name: &str, mac: &str, ip: &str, console: &Path, ctl: &Path) -> Guest {
        Guest {
            child: None,
            name: name.to_string(),
            mac: mac.to_string(),
            ip: ip.to_string(),
            queues: 1,
            vhost_socket: PathBuf::new(),
            console: console.to_path_buf(),
            ctl_path: ctl.to_path_buf(),
            qmp_path: PathBuf::new(),
            incoming: None,
            client: false,
            guest_announce: true,
            ctl: None,
            seq: 0,
        }
    }

    /// The kernel command line the test image reads its name and addresses from.
    pub fn cmdline(&self) -> String {
        format!(
            "console=ttyS0 quiet vmname={} vmip={}/24 vmgw=10.1.1.254 vmip6={}/64 vmgw6=fe80::1",
            self.name,
            self.ip,
            self.ip6()
        )
    }

    fn build(dir: &TestDir, name: &str, tag: &str, mac: &str, ip: &str, queues: u16, incoming: Option<u16>) -> Guest {
        let mut g = Guest::new(dir, name, tag, mac, ip, queues, incoming);
        g.spawn();
        g
    }

    fn new(dir: &TestDir, name: &str, tag: &str, mac: &str, ip: &str, queues: u16, incoming: Option<u16>) -> Guest {
        Guest {
            child: None,
            name: name.to_string(),
            mac: mac.to_string(),
            ip: ip.to_string(),
            queues,
            vhost_socket: dir.path(&format!("{tag}.vhost")),
            console: dir.path(&format!("{tag}.console")),
            ctl_path: dir.path(&format!("{tag}.serial")),
            qmp_path: dir.path(&format!("{tag}.qmp")),
            incoming,
            client: false,
            guest_announce: true,
            ctl: None,
            seq: 0,
        }
    }

    fn spawn(&mut self) {
        let (kernel, initrd) = guest_image();
        let _ = std::fs::remove_file(&self.console);
        // Guests run at a lower priority than the switches and leaves. On a real host they
        // run under KVM on cores of their own, and the switch's threads on theirs; here
        // every guest is TCG emulation that would take all of both cores, and a switch or
        // leaf thread that wakes would wait milliseconds behind them.
        let mut cmd = Command::new("nice");
        cmd.args(["-n", "10", "qemu-system-x86_64"]);
        if let Some(port) = self.incoming {
            cmd.arg("-incoming").arg(format!("tcp:127.0.0.1:{port}"));
        }
        let child = cmd
            // A vCPU a queue pair: Linux enables one queue pair a vCPU, and sends on the
            // queue of the vCPU it runs on.
            .args(["-accel", "tcg", "-m", "256", "-smp", &self.queues.to_string(), "-nodefaults", "-display", "none"])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(self.cmdline())
            .args(["-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-numa", "node,memdev=mem"])
            .arg("-chardev")
            .arg(if self.client {
                format!("socket,id=c0,path={},reconnect=1", self.vhost_socket.display())
            } else {
                format!("socket,id=c0,path={},server=on,wait=off", self.vhost_socket.display())
            })
            .arg("-netdev")
            .arg(format!("vhost-user,id=n0,chardev=c0,queues={}", self.queues))
            // vectors=0: QEMU 7.2 under TCG crashes (SIGSEGV in msix_set_vector_notifiers,
            // from vhost_net_start) when a vhost-user virtio-net device uses MSI-X.
            .arg("-device")
            .arg(format!(
                "virtio-net-pci,netdev=n0,romfile=,vectors=0,mq={},mac={},guest_announce={}",
                if self.queues > 1 { "on" } else { "off" },
                self.mac,
                if self.guest_announce { "on" } else { "off" }
            ))
            .arg("-serial")
            .arg(format!("file:{}", self.console.display()))
            .arg("-serial")
            .arg(format!("unix:{},server=on,wait=off", self.ctl_path.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", self.qmp_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting qemu-system-x86_64");
        self.child = Some(child);
        if !self.client {
            let sock = self.vhost_socket.clone();
            wait_for("QEMU's vhost-user socket", Duration::from_secs(20), || sock.exists().then_some(()));
        }
    }

    /// Whether this guest's QEMU is still the process the harness started.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the guest's control shell and connects to it (once: the serial line
    /// does not survive reconnections).
    pub fn wait_ready(&mut self) {
        let console = self.console.clone();
        wait_for(&format!("guest {} to boot", self.name), Duration::from_secs(120), || {
            std::fs::read_to_string(&console).ok().filter(|c| c.contains("control shell")).map(|_| ())
        });
        self.connect();
    }

    /// Connects to the control shell of a guest that is already running (a migrated guest
    /// does not boot again: its shell came along in its memory).
    pub fn connect(&mut self) {
        let s = UnixStream::connect(&self.ctl_path).expect("connecting to the guest's serial port");
        s.set_read_timeout(Some(Duration::from_secs(1))).ok();
        let r = BufReader::new(s.try_clone().expect("socket"));
        self.ctl = Some((s, r));
    }

    /// The latest "progress N max_gap_ms G" of the stream client running in this guest
    /// (`roam-probe client`, its output in `/tmp/stream.log`): (echoes, longest gap in
    /// ms). Panics if the session died.
    pub fn stream_progress(&mut self) -> (f64, f64) {
        self.stream_progress_in("/tmp/stream.log")
    }

    /// As [`Guest::stream_progress`], for the stream client whose output is in `log`.
    pub fn stream_progress_in(&mut self, log: &str) -> (f64, f64) {
        // The stream's own lines only: a burst of "gap" lines can fill any fixed tail.
        let out = self.run(&format!("grep -v '^gap ' {log} | tail -n 2"));
        assert!(!out.contains("closed") && !out.contains("connect:"), "guest {}'s TCP session died: {out}", self.name);
        let last = out
            .lines()
            .rev()
            .find(|l| l.starts_with("progress"))
            .unwrap_or_else(|| panic!("no progress from {}'s stream ({log}): {out}", self.name));
        let n = crate::fabric::numbers_after(last, "progress").expect("numbers");
        (n[0], n[1])
    }

    /// Stops the guest's CPUs and devices (QMP `stop`), as a pause does.
    pub fn pause(&mut self) {
        Qmp::connect(&self.qmp_path).execute(json!({ "execute": "stop" }));
    }

    /// Lets a paused guest run again (QMP `cont`).
    pub fn resume(&mut self) {
        Qmp::connect(&self.qmp_path).execute(json!({ "execute": "cont" }));
    }

    /// Live-migrates this guest to the QEMU waiting on 127.0.0.1:`port`, over QMP; returns
    /// as soon as QEMU reports the migration completed (with its downtime). A non-zero
    /// `pause` stretches the downtime by that much: QEMU's `pause-before-switchover`
    /// stops the guest before its last state goes over, and `migrate-continue` follows
    /// after `pause`.
    pub fn migrate_to(&mut self, port: u16, pause: Duration) -> Migration {
        let mut qmp = Qmp::connect(&self.qmp_path);
        qmp.execute(json!({ "execute": "migrate-set-parameters", "arguments": { "max-bandwidth": 4_000_000_000u64 } }));
        if !pause.is_zero() {
            qmp.execute(json!({ "execute": "migrate-set-capabilities", "arguments": { "capabilities": [{ "capability": "pause-before-switchover", "state": true }] } }));
        }
        qmp.execute(json!({ "execute": "migrate", "arguments": { "uri": format!("tcp:127.0.0.1:{port}") } }));
        let start = Instant::now();
        loop {
            let r = qmp.execute(json!({ "execute": "query-migrate" }));
            match r["status"].as_str() {
                Some("pre-switchover") => {
                    std::thread::sleep(pause);
                    qmp.execute(json!({ "execute": "migrate-continue", "arguments": { "state": "pre-switchover" } }));
                }
                // `completed` can come before QEMU fills in the times: ask again.
                Some("completed")
                    if r["downtime"].as_u64().unwrap_or(0) > 0 && r["total-time"].as_u64().unwrap_or(0) > 0 =>
                {
                    let completed_at = std::time::SystemTime::now();
                    return Migration {
                        total_ms: r["total-time"].as_u64().unwrap(),
                        downtime_ms: r["downtime"].as_u64().unwrap(),
                        completed_at,
                        stopped_us: qmp.wait_event("STOP", Duration::from_secs(5)),
                    };
                }
                Some("failed") | Some("cancelled") => panic!("migration of {} failed: {r}", self.name),
                _ => {}
            }
            assert!(start.elapsed() < Duration::from_secs(120), "migration of {} did not complete: {r}", self.name);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts a live migration of this guest to `dest` (waiting on 127.0.0.1:`port`) and
    /// kills `dest` on the way, as a crashed destination host would: while RAM is copied
    /// (`FailAt::Copy`, the guest runs on), or at switchover, once the guest has been
    /// stopped for the given time (`FailAt::Switchover`). Returns when QEMU reports the
    /// migration failed and the guest runs here again.
    pub fn migrate_and_fail(&mut self, dest: &mut Guest, port: u16, at: FailAt) -> FailedMigration {
        let mut qmp = Qmp::connect(&self.qmp_path);
        // Slow enough that the copy is still going when the destination dies.
        let bandwidth: u64 = if at == FailAt::Copy { 2_000_000 } else { 4_000_000_000 };
        qmp.execute(json!({ "execute": "migrate-set-parameters", "arguments": { "max-bandwidth": bandwidth } }));
        qmp.execute(json!({ "execute": "migrate-set-capabilities", "arguments": { "capabilities": [{ "capability": "pause-before-switchover", "state": true }] } }));
        qmp.execute(json!({ "execute": "migrate", "arguments": { "uri": format!("tcp:127.0.0.1:{port}") } }));
        let start = Instant::now();
        let mut killed = false;
        loop {
            let r = qmp.execute(json!({ "execute": "query-migrate" }));
            let status = r["status"].as_str().unwrap_or("").to_string();
            match (status.as_str(), at) {
                ("active", FailAt::Copy) if !killed && start.elapsed() > Duration::from_millis(500) => {
                    dest.kill();
                    killed = true;
                }
                ("pre-switchover", FailAt::Switchover(stopped)) if !killed => {
                    std::thread::sleep(stopped);
                    dest.kill();
                    killed = true;
                    qmp.execute(json!({ "execute": "migrate-continue", "arguments": { "state": "pre-switchover" } }));
                }
                ("failed", _) if killed => break,
                ("completed", _) | ("cancelled", _) | ("failed", _) => {
                    panic!("the migration of {} was to fail when its destination died: {r}", self.name)
                }
                _ => {}
            }
            assert!(start.elapsed() < Duration::from_secs(60), "migration of {} did not fail: {r}", self.name);
            std::thread::sleep(Duration::from_millis(5));
        }
        let failed_at = std::time::SystemTime::now();
        let stopped = matches!(at, FailAt::Switchover(_));
        let resumed_us = stopped.then(|| qmp.wait_event("RESUME", Duration::from_secs(10)));
        let status = qmp.execute(json!({ "execute": "query-status" }));
        assert_eq!(status["status"], "running", "{} runs at its source after the failed migration", self.name);
        // The next migration from here is a plain one.
        qmp.execute(json!({ "execute": "migrate-set-capabilities", "arguments": { "capabilities": [{ "capability": "pause-before-switchover", "state": false }] } }));
        let stopped_us = qmp.events.iter().find(|(n, _)| n == "STOP").map(|(_, at)| *at);
        assert_eq!(stopped_us.is_some(), stopped, "{}: STOP events {:?}", self.name, qmp.events);
        FailedMigration { failed_at, stopped_us, resumed_us }
    }

    /// Runs a shell command in the guest; returns its output and exit status.
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> (String, i32) {
        self.seq += 1;
        let marker = format!("__ROAM_DONE_{}__", self.seq);
        let (w, r) = self.ctl.as_mut().expect("wait_ready first");
        writeln!(w, "{cmd}\necho {marker} $?").expect("writing to the guest");
        let start = Instant::now();
        let mut out = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => panic!("guest {} closed its serial port", self.name),
                Ok(_) => {
                    if let Some(rest) = line.trim_end().strip_prefix(&marker) {
                        return (out, rest.trim().parse().unwrap_or(-1));
                    }
                    out.push_str(&line);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    out.push_str(&line);
                    // The emulated UART sometimes holds output until input arrives (a lost
                    // transmit interrupt under TCG); an empty line is a no-op for the shell.
                    let _ = w.write_all(b"\n");
                }
                Err(e) => panic!("reading from guest {}: {e}", self.name),
            }
            assert!(
                start.elapsed() < timeout,
                "guest {}: `{cmd}` did not finish in {timeout:?}; output so far:\n{out}",
                self.name
            );
        }
    }

    /// Runs a command that must succeed.
    pub fn run(&mut self, cmd: &str) -> String {
        let (out, status) = self.sh(cmd, Duration::from_secs(60));
        assert_eq!(status, 0, "guest {}: `{cmd}` failed:\n{out}", self.name);
        out
    }

    /// Pings `ip` until one answer comes (ARP and a booting peer may take a moment).
    pub fn ping_until_reply(&mut self, ip: &str) {
        for _ in 0..20 {
            if self.sh(&format!("ping -c 1 -W 1 {ip}"), Duration::from_secs(10)).1 == 0 {
                return;
            }
        }
        panic!("guest {} never reached {ip}", self.name);
    }

    /// ARP frames this guest has received since boot.
    pub fn arp_count(&mut self) -> u64 {
        self.run("cat /tmp/arp-count").trim().parse().expect("a count")
    }

    /// How many IPv6 neighbor solicitations, advertisements and redirects the guest has
    /// received.
    pub fn nd_count(&mut self) -> u64 {
        self.nd_counts().0
    }

    /// How many IPv6 neighbor discovery frames (as [`Guest::nd_count`]) and, of them,
    /// neighbor solicitations the guest has received.
    pub fn nd_counts(&mut self) -> (u64, u64) {
        let out = self.run("cat /tmp/nd-count");
        let n: Vec<u64> = out.split_whitespace().map(|w| w.parse().expect("a count")).collect();
        assert_eq!(n.len(), 2, "guest {}: /tmp/nd-count holds {out:?}", self.name);
        (n[0], n[1])
    }

    /// The guest's neighbour entry for `ip` (the MAC), if any.
    pub fn neighbour(&mut self, ip: &str) -> Option<String> {
        let out = self.run(&format!("ip neigh show {ip}"));
        let words: Vec<&str> = out.split_whitespace().collect();
        words.iter().position(|w| *w == "lladdr").and_then(|i| words.get(i + 1)).map(|s| s.to_string())
    }

    pub fn kill(&mut self) {
        self.ctl = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills QEMU and starts it again on the same sockets.
    pub fn restart(&mut self) {
        self.kill();
        if !self.client {
            let _ = std::fs::remove_file(&self.vhost_socket);
        }
        let _ = std::fs::remove_file(&self.ctl_path);
        self.spawn();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}
