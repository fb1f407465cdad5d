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

use crate::api::views::{Hello, Subscribed};
use crate::api::{ApiError, ErrorCode, Request, Response, MAX_REQUEST_BYTES, PROTOCOL_VERSION};
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
                reply(&mut writer, &Response::error(&e))?;
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
            reply(&mut writer, &Response::ok(&Subscribed { subscribed: true }))?;
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
    match request {
        Request::Hello { version } => answer(hello(version)),
        Request::Show {} => Response::ok(&s.show()),
        Request::Attach(a) => answer(s.attach(a)),
        Request::Detach { name } => answer(s.detach(&name)),
        Request::SetAnycast(seg) => answer(s.set_anycast(seg)),
        Request::SetUnderlay(u) => answer(s.set_underlay(u)),
        Request::Fdb {} => Response::ok(&s.fdb()),
        Request::Stats {} => answer(s.stats()),
        Request::Metrics {} => answer(s.metrics()),
        Request::ArpAnnounce(a) => answer(s.arp_announce(&a)),
        Request::Retry { name } => answer(s.retry(name.as_deref())),
        Request::DebugCrashWorker { worker } => answer(s.crash_worker(worker)),
        Request::Events {} => unreachable!("handled by the connection"),
    }
}

fn answer(r: Result<impl serde::Serialize>) -> Response {
    match r {
        Ok(v) => Response::ok(&v),
        Err(e) => Response::error(&refusal(&e)),
    }
}

/// The daemon's protocol version, if the client speaks it.
fn hello(version: u32) -> Result<Hello> {
    if version != PROTOCOL_VERSION {
        let why = format!("this client speaks protocol version {version}, vswitchd speaks {PROTOCOL_VERSION}");
        return Err(ApiError::new(ErrorCode::Version, why).into());
    }
    Ok(Hello { version, daemon: "vswitchd".into(), daemon_version: env!("CARGO_PKG_VERSION").into() })
}

/// What a failed request answers: the handler's code if it gave one, else `failed`; the
/// message with every cause.
fn refusal(e: &anyhow::Error) -> ApiError {
    let code = if let Some(a) = e.downcast_ref::<ApiError>() {
        a.code
    } else if e.downcast_ref::<pipeline::ConfigError>().is_some()
        || e.downcast_ref::<pipeline::TooManySegments>().is_some()
    {
        // The configuration refused it: it clashes with what is configured (a VLAN or
        // MAC in use, no segment slot left).
        ErrorCode::Conflict
    } else {
        ErrorCode::Failed
    };
    ApiError::new(code, format!("{e:#}"))
}

fn reply(w: &mut UnixStream, r: &Response) -> Result<()> {
    writeln!(w, "{}", serde_json::to_string(r)?)?;
    Ok(())
}
