//! leafd's side of vswitchd's control socket: the VMs attached (`show`, then the `events`
//! stream) and the ARP fix-ups (`arp-announce`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use crossbeam::channel::Sender;
use pipeline::MacAddr;
use roam_api::{ArpAnnounce, Client, Event as ApiEvent, Request};
use serde_json::Value;

use crate::logic::{Downlink, Input, Vm};
use crate::Event;

/// One request, one answer.
fn request(socket: &Path, req: &Request) -> Result<Value> {
    Ok(Client::connect(socket, Some(Duration::from_secs(10)))?.call(req)?)
}

/// Tells the VMs `to` that `ip` is at `mac`. Returns how many frames each got, and how
/// many frames for `ip` vswitchd had held (at the moved VM's old port) and sent on.
pub fn arp_announce(socket: &Path, to: &[String], ip: Ipv4Addr, mac: MacAddr) -> Result<(Value, Value)> {
    let r =
        request(socket, &Request::ArpAnnounce(ArpAnnounce { to: to.to_vec(), ip: ip.into(), mac: mac.to_string() }))?;
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
    let events = Client::connect(socket, None)?.events()?;
    let show = request(socket, &Request::Show {})?;
    let vms: Vec<Vm> = show["vms"].as_array().map(|a| a.iter().filter_map(parse_vm).collect()).unwrap_or_default();
    tracing::info!("vswitchd at {}: {} VMs", socket.display(), vms.len());
    tx.send(Event { input: Input::Sync(d, vms), at: SystemTime::now() })?;
    for e in events {
        let input = match e? {
            ApiEvent::Attach { name, mac, ipv4, .. } => {
                mac.parse().ok().map(|mac| Input::Attached(d, Vm { name, mac, ipv4 }))
            }
            ApiEvent::Detach { name, .. } => Some(Input::Detached(d, name)),
            ApiEvent::Link { name, up: true } => Some(Input::LinkUp(d, name)),
            ApiEvent::Link { up: false, .. } => None,
        };
        if let Some(input) = input {
            tx.send(Event { input, at: SystemTime::now() })?;
        }
    }
    bail!("vswitchd closed the event stream")
}
