//! leafd's side of vswitchd's control socket: the VMs attached (`show`, then the `events`
//! stream) and the ARP fix-ups (`arp-announce`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use crossbeam::channel::Sender;
use pipeline::MacAddr;
use roam_api::views::Announced;
use roam_api::{ArpAnnounce, Client, Event as ApiEvent};

use crate::logic::{Downlink, Input, Vm};
use crate::Event;

/// A connection for one request and its answer.
fn client(socket: &Path) -> Result<Client> {
    Ok(Client::connect(socket, Some(Duration::from_secs(10)))?)
}

/// Tells the VMs `to` that `ip` is at `mac`: how many frames each got, and how many frames
/// for `ip` vswitchd had held (at the moved VM's old port) and sent on.
pub fn arp_announce(socket: &Path, to: &[String], ip: Ipv4Addr, mac: MacAddr) -> Result<Announced> {
    Ok(client(socket)?.arp_announce(ArpAnnounce { to: to.to_vec(), ip: ip.into(), mac })?)
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
    let show = client(socket)?.show()?;
    let vms: Vec<Vm> = show.vms.into_iter().map(|v| Vm { name: v.name, mac: v.mac, ipv4: v.ipv4 }).collect();
    tracing::info!("vswitchd at {}: {} VMs", socket.display(), vms.len());
    tx.send(Event { input: Input::Sync(d, vms), at: SystemTime::now() })?;
    for e in events {
        let input = match e? {
            ApiEvent::Attach { name, mac, ipv4, .. } => Some(Input::Attached(d, Vm { name, mac, ipv4 })),
            ApiEvent::Detach { name, .. } => Some(Input::Detached(d, name)),
            ApiEvent::Link { name, up: true } => Some(Input::LinkUp(d, name)),
            // The move is decided where the VM arrives (its port up there, or its
            // announcement) and by BGP; a VM that stopped or left here changes nothing yet.
            ApiEvent::Link { up: false, .. } | ApiEvent::Away { .. } => None,
        };
        if let Some(input) = input {
            tx.send(Event { input, at: SystemTime::now() })?;
        }
    }
    bail!("vswitchd closed the event stream")
}
