//! leafd's side of vswitchd's control socket: the VMs attached (`show`, then the `events`
//! stream) and the ARP fix-ups (`arp-announce`).

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use crossbeam::channel::Sender;
use pipeline::MacAddr;
use serde_json::{json, Value};

use crate::logic::{Downlink, Input, Vm};
use crate::Event;

fn send(w: &mut UnixStream, req: &Value) -> Result<()> {
    w.write_all(format!("{req}\n").as_bytes())?;
    Ok(())
}

fn read_response(r: &mut impl BufRead) -> Result<Value> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("vswitchd closed the connection");
    }
    let v: Value = serde_json::from_str(&line).context("vswitchd's answer is not JSON")?;
    if v["ok"] != json!(true) {
        bail!("vswitchd: {}", v["error"].as_str().unwrap_or("request failed"));
    }
    Ok(v["result"].clone())
}

/// One request, one answer.
pub fn request(socket: &Path, req: &Value) -> Result<Value> {
    let mut s =
        UnixStream::connect(socket).with_context(|| format!("connecting to vswitchd at {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    send(&mut s, req)?;
    read_response(&mut BufReader::new(s))
}

/// Tells the VMs `to` that `ip` is at `mac`. Returns how many frames each got, and how
/// many frames for `ip` vswitchd had held (at the moved VM's old port) and sent on.
pub fn arp_announce(socket: &Path, to: &[String], ip: Ipv4Addr, mac: MacAddr) -> Result<(Value, Value)> {
    let r = request(socket, &json!({ "op": "arp-announce", "to": to, "ip": ip, "mac": mac.to_string() }))?;
    Ok((r["sent"].clone(), r["released"].clone()))
}

fn parse_vm(v: &Value) -> Option<Vm> {
    Some(Vm {
        name: v["name"].as_str()?.to_string(),
        mac: v["mac"].as_str()?.parse().ok()?,
        ipv4: v["ipv4"].as_array()?.iter().filter_map(|a| a.as_str()?.parse().ok()).collect(),
    })
}

/// Follows a vswitchd: subscribes to its events, then reads `show` (so nothing falls
/// between the two), and forwards attach/detach as inputs. Reconnects when vswitchd
/// restarts.
pub fn watch(d: Downlink, socket: PathBuf, tx: Sender<Event>) {
    loop {
        if let Err(e) = watch_once(d, &socket, &tx) {
            tracing::debug!("vswitchd at {}: {e:#}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn watch_once(d: Downlink, socket: &Path, tx: &Sender<Event>) -> Result<()> {
    let mut s = UnixStream::connect(socket)?;
    send(&mut s, &json!({ "op": "events" }))?;
    let mut r = BufReader::new(s.try_clone()?);
    read_response(&mut r)?;
    let show = request(socket, &json!({ "op": "show" }))?;
    let vms: Vec<Vm> = show["vms"].as_array().map(|a| a.iter().filter_map(parse_vm).collect()).unwrap_or_default();
    tracing::info!("vswitchd at {}: {} VMs", socket.display(), vms.len());
    tx.send(Event { input: Input::Sync(d, vms), at: SystemTime::now() })?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("vswitchd closed the event stream");
        }
        let Ok(e) = serde_json::from_str::<Value>(&line) else { continue };
        let input = match e["event"].as_str() {
            Some("attach") => parse_vm(&e).map(|vm| Input::Attached(d, vm)),
            Some("detach") => e["name"].as_str().map(|n| Input::Detached(d, n.to_string())),
            Some("link") if e["up"] == json!(true) => e["name"].as_str().map(|n| Input::LinkUp(d, n.to_string())),
            _ => None,
        };
        if let Some(input) = input {
            tx.send(Event { input, at: SystemTime::now() })?;
        }
    }
}
