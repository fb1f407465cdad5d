//! The end-to-end test harness: vswitchd processes (the real binary), QEMU guests built by
//! `scripts/mkguest` attached over vhost-user, and a shell in each guest on its second
//! serial port. Everything a test starts is stopped when its handle drops.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use roam_api::views::{FdbView, PortStats, ShowView, StatsView};
use roam_api::{Client, ErrorCode, Response};
use serde_json::{json, Value};

pub mod fabric;
mod guest;
mod qmp;
pub use guest::{micros, FailAt, FailedMigration, Guest, Migration};
pub use qmp::Qmp;
mod leaf;
pub use leaf::{Capture, Leaf};
pub mod libvirt;
pub mod migration;
pub mod prometheus;
pub mod reflectors;
pub mod tenants;
pub mod timeline;
pub mod traffic;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// A release binary of the workspace (scripts/test builds them before the tests run).
pub fn bin(name: &str) -> PathBuf {
    let p = root().join("target/release").join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --release --workspace` first", p.display());
    p
}

/// The guest kernel and initramfs, built once per test process by scripts/mkguest.
pub fn guest_image() -> &'static (PathBuf, PathBuf) {
    static IMAGE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let status =
            Command::new("bash").arg(root().join("scripts/mkguest")).status().expect("running scripts/mkguest");
        assert!(status.success(), "scripts/mkguest failed");
        let dir = root().join("target/guest");
        (dir.join("vmlinuz"), dir.join("initramfs.gz"))
    })
}

/// A scratch directory, removed when the test passes (kept for a look when it fails, or
/// when `ROAM_KEEP_TESTDIR` is set).
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let p = std::env::temp_dir().join(format!("roam-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a test directory");
        TestDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("ROAM_KEEP_TESTDIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `cmd` with no input and its output appended to the file `log`; panics with
/// `what` if it cannot start.
pub fn spawn_logged(cmd: &mut Command, log: &Path, what: &str) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"))
}

/// A vswitchd process.
pub struct Vswitchd {
    child: Option<Child>,
    pub socket: PathBuf,
    pub state: PathBuf,
    log: PathBuf,
    name: String,
    uplink: Option<String>,
    workers: usize,
    /// More vswitchd flags (e.g. `--debug-api`).
    args: Vec<String>,
}

impl Vswitchd {
    /// A vswitchd with one worker.
    pub fn start(dir: &TestDir, name: &str, uplink: Option<&str>) -> Vswitchd {
        Vswitchd::start_with_workers(dir, name, uplink, 1)
    }

    pub fn start_with_workers(dir: &TestDir, name: &str, uplink: Option<&str>, workers: usize) -> Vswitchd {
        Vswitchd::start_with_args(dir, name, uplink, workers, &[])
    }

    /// As [`Vswitchd::start_with_workers`], with more vswitchd flags.
    pub fn start_with_args(dir: &TestDir, name: &str, uplink: Option<&str>, workers: usize, args: &[&str]) -> Vswitchd {
        let mut v = Vswitchd {
            child: None,
            socket: dir.path(&format!("{name}.ctl")),
            state: dir.path(&format!("{name}.state.json")),
            log: dir.path(&format!("{name}.log")),
            name: name.to_string(),
            uplink: uplink.map(String::from),
            workers,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        v.spawn();
        v
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(bin("vswitchd"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--state")
            .arg(&self.state)
            .arg("--workers")
            .arg(self.workers.to_string());
        if let Some(u) = &self.uplink {
            cmd.arg("--uplink").arg(u);
        }
        cmd.args(&self.args);
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("roam-{}-{}-{n}", self.name, std::process::id());
        cmd.args([
            "--",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-telemetry",
            "--log-level",
            "lib.eal:error",
            "--file-prefix",
            &prefix,
        ]);
        cmd.args(["--lcores", "0@(0-1)"]);
        self.child = Some(spawn_logged(&mut cmd, &self.log, "vswitchd"));
        let sock = self.socket.clone();
        wait_for("vswitchd's control socket", Duration::from_secs(20), || UnixStream::connect(&sock).ok().map(|_| ()));
    }

    /// Sends one raw line; returns the response line.
    pub fn raw(&self, line: &str) -> String {
        let conn = UnixStream::connect(&self.socket).expect("connecting to vswitchd");
        conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut w = conn.try_clone().expect("socket");
        // vswitchd answers an over-long line and hangs up before it has all been written:
        // a failed write still leaves its answer to read.
        let _ = w.write_all(line.as_bytes()).and_then(|_| w.write_all(b"\n"));
        let mut resp = String::new();
        BufReader::new(conn).read_line(&mut resp).expect("reading a response");
        resp
    }

    /// Sends a request; returns the whole response.
    pub fn request(&self, req: &Value) -> Value {
        serde_json::from_str(&self.raw(&req.to_string())).expect("a JSON response")
    }

    /// Sends a request that must be refused; returns the refusal's code and message.
    pub fn refused(&self, req: Value) -> (ErrorCode, String) {
        let r: Response = serde_json::from_str(&self.raw(&req.to_string())).expect("a response");
        assert!(!r.ok, "request {req} was accepted: {r:?}");
        let message = r.error.unwrap_or_default();
        assert!(!message.is_empty(), "request {req}: no error text");
        (r.code.unwrap_or_else(|| panic!("request {req}: no error code")), message)
    }

    /// Sends a request that must succeed; returns its result.
    pub fn ok(&self, req: Value) -> Value {
        let r = self.request(&req);
        assert_eq!(r["ok"], json!(true), "request {req} failed: {r}");
        r["result"].clone()
    }

    /// Runs vsctl against this vswitchd.
    pub fn vsctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin("vsctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("running vsctl");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    }

    /// Segment `segment`, carried on the uplink with the same number as its VLAN id.
    pub fn set_anycast(&self, segment: u16, mac: &str) {
        self.ok(
            json!({ "op": "set-anycast", "segment": segment, "vlan": segment, "mac": mac, "subnets": ["10.1.1.0/24", "2001:db8:1::/64"] }),
        );
    }

    pub fn attach(&self, g: &Guest, segment: u16) -> Value {
        self.ok(json!({ "op": "attach", "name": g.name, "socket": g.vhost_socket, "mac": g.mac, "segment": segment, "ipv4": [g.ip], "ipv6": [g.ip6()], "queues": g.queues }))
    }

    /// A client of the API (the one vsctl and leafd use).
    pub fn client(&self) -> Client {
        Client::connect(&self.socket, Some(Duration::from_secs(30))).expect("connecting to vswitchd")
    }

    pub fn show(&self) -> ShowView {
        self.client().show().expect("show")
    }

    pub fn fdb(&self) -> FdbView {
        self.client().fdb().expect("fdb")
    }

    pub fn stats(&self) -> StatsView {
        self.client().stats().expect("stats")
    }

    /// Collects this vswitchd's events from now on, each with when it came.
    pub fn watch_events(&self) -> EventLog {
        let events = self.client().events().expect("subscribing to events");
        let log = EventLog::default();
        let seen = log.0.clone();
        std::thread::spawn(move || {
            for e in events {
                let Ok(e) = e else { return };
                seen.lock().unwrap().push((Instant::now(), micros(std::time::SystemTime::now()), e));
            }
        });
        log
    }

    /// Waits (up to `timeout`) until exactly `n` VMs have their link up.
    pub fn wait_links_up(&self, n: usize, timeout: Duration) {
        wait_for("VM links up", timeout, || {
            let up = self.show().vms.iter().filter(|vm| vm.link_up).count();
            (up == n).then_some(())
        });
    }

    /// The counters of a port, by name (a VM's, or `uplink`).
    pub fn port_stats(&self, name: &str) -> PortStats {
        let s = self.stats();
        s.port(name).cloned().unwrap_or_else(|| panic!("no port named {name} in stats: {s:?}"))
    }

    /// Waits (up to `timeout`) until every mbuf is back in the pool; returns the pool.
    pub fn wait_mbufs_returned(&self, timeout: Duration) -> roam_api::views::MbufsView {
        let m = wait_for("every mbuf back in the pool", timeout, || {
            Some(self.show().mbufs).filter(|m| m.available == m.capacity)
        });
        assert!(m.capacity > 0, "{m:?}");
        m
    }

    /// How vswitchd exited, if it did within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Everything vswitchd has logged (all its runs in this test).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts vswitchd again after it exited (or was killed).
    pub fn start_again(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGKILL, no clean-up: what a crash looks like.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// Events of a vswitchd, collected by a thread as they come (`Vswitchd::watch_events`).
#[derive(Clone, Default)]
pub struct EventLog(std::sync::Arc<std::sync::Mutex<Vec<(Instant, u64, roam_api::Event)>>>);

impl EventLog {
    /// Waits (up to `timeout`) for the first event since `since` that `pick` accepts.
    pub fn wait(
        &self,
        what: &str,
        since: Instant,
        timeout: Duration,
        pick: impl Fn(&roam_api::Event) -> bool,
    ) -> (Instant, roam_api::Event) {
        wait_for(what, timeout, || {
            self.0.lock().unwrap().iter().find(|(t, _, e)| *t >= since && pick(e)).map(|(t, _, e)| (*t, e.clone()))
        })
    }

    /// Every event so far.
    pub fn all(&self) -> Vec<roam_api::Event> {
        self.0.lock().unwrap().iter().map(|(_, _, e)| e.clone()).collect()
    }

    /// When the first event at or after `since_us` (µs since the epoch) that `pick`
    /// accepts came, if one did.
    pub fn first_since(&self, since_us: u64, pick: impl Fn(&roam_api::Event) -> bool) -> Option<u64> {
        self.0.lock().unwrap().iter().find(|(_, at, e)| *at >= since_us && pick(e)).map(|(_, at, _)| *at)
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        self.kill();
    }
}
