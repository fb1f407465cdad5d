//! The control socket: newline-delimited JSON requests, one response line each; `events`
//! streams event lines until the client hangs up. Requests are served one at a time against
//! the switch (the control plane's lock; workers never take it).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use parking_lot::Mutex;

use crate::api::{Request, Response, MAX_REQUEST_BYTES};
use crate::switch::Switch;

/// Binds the control socket (mode 0600), replacing a stale one.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A socket left by a vswitchd that crashed is replaced; anything else is refused, and
    // nothing vswitchd did not create is ever removed.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!("control socket {} exists and is not a socket", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!("control socket {} is in use by a running vswitchd", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale control socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until the listener fails.
pub fn serve(listener: UnixListener, switch: Arc<Mutex<Switch>>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let switch = switch.clone();
        std::thread::Builder::new()
            .name("roam-conn".into())
            .spawn(move || {
                if let Err(e) = connection(conn, switch) {
                    tracing::debug!(error = %e, "control connection ended");
                }
            })
            .ok();
    }
}

fn connection(conn: UnixStream, switch: Arc<Mutex<Switch>>) -> Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader).take(MAX_REQUEST_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let too_long = line.len() > MAX_REQUEST_BYTES;
        let request = match crate::api::decode(&line) {
            Ok(r) => r,
            Err(e) => {
                reply(&mut writer, &Response::error(e))?;
                // The rest of an over-long line would be read as more requests.
                if too_long {
                    return Ok(());
                }
                continue;
            }
        };
        if let Request::Events {} = request {
            let (tx, rx) = crossbeam::channel::unbounded();
            switch.lock().subscribe(tx);
            reply(&mut writer, &Response::ok(serde_json::json!({ "subscribed": true })))?;
            for event in rx {
                writeln!(writer, "{}", serde_json::to_string(&event)?)?;
            }
            return Ok(());
        }
        let response = execute(&switch, request);
        reply(&mut writer, &response)?;
    }
}

fn execute(switch: &Mutex<Switch>, request: Request) -> Response {
    let mut s = switch.lock();
    let result = match request {
        Request::Show {} => s.show(),
        Request::Attach(a) => s.attach(a),
        Request::Detach { name } => s.detach(&name),
        Request::SetAnycast(seg) => s.set_anycast(seg),
        Request::Fdb {} => s.fdb(),
        Request::Stats {} => s.stats(),
        Request::ArpAnnounce(a) => s.arp_announce(&a),
        Request::Retry { name } => s.retry(name.as_deref()),
        Request::DebugCrashWorker { worker } => s.crash_worker(worker),
        Request::Events {} => unreachable!("handled by the connection"),
    };
    match result {
        Ok(v) => Response::ok(v),
        Err(e) => Response::error(format!("{e:#}")),
    }
}

fn reply(w: &mut UnixStream, r: &Response) -> Result<()> {
    writeln!(w, "{}", serde_json::to_string(r)?)?;
    Ok(())
}
