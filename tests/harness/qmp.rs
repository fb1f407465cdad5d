//! QEMU's machine protocol (QMP): commands, and the events QEMU sends with their times.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::wait_for;

/// A QMP connection, and the events QEMU sent on it (name, µs since the epoch).
pub struct Qmp {
    w: UnixStream,
    r: BufReader<UnixStream>,
    pub events: Vec<(String, u64)>,
}

impl Qmp {
    pub fn connect(path: &Path) -> Qmp {
        let w = wait_for("QEMU's QMP socket", Duration::from_secs(20), || UnixStream::connect(path).ok());
        w.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut q = Qmp { r: BufReader::new(w.try_clone().expect("socket")), w, events: Vec::new() };
        let mut greeting = String::new();
        q.r.read_line(&mut greeting).expect("QMP greeting");
        q.execute(json!({ "execute": "qmp_capabilities" }));
        q
    }

    /// Runs a command; returns its `return` value (events on the way are kept).
    pub fn execute(&mut self, cmd: Value) -> Value {
        writeln!(self.w, "{cmd}").expect("writing to QMP");
        loop {
            let v = self.read();
            if let Some(r) = v.get("return") {
                return r.clone();
            }
            assert!(v.get("error").is_none(), "QMP {cmd}: {v}");
        }
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("reading from QMP");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("QMP said {line:?}"));
        if let Some(name) = v["event"].as_str() {
            let t = &v["timestamp"];
            let us = t["seconds"].as_u64().unwrap_or(0) * 1_000_000 + t["microseconds"].as_u64().unwrap_or(0);
            self.events.push((name.to_string(), us));
        }
        v
    }

    /// When QEMU sent the event `name` (waiting for it up to `timeout`), µs since the epoch.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            if let Some((_, at)) = self.events.iter().find(|(n, _)| n == name) {
                return *at;
            }
            assert!(start.elapsed() < timeout, "no QMP event {name} in {timeout:?}: {:?}", self.events);
            self.read();
        }
    }
}
