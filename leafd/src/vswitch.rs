//! leafd's side of vswitchd's control socket: the VMs attached (`show`, then the `events`
//! stream) and the fix-ups (`arp-announce`: gratuitous ARPs, or NAs for IPv6 addresses).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use crossbeam::channel::Sender;
use pipeline::{MacAddr, SegmentId};
use roam_api::views::Announced;
use roam_api::{ArpAnnounce, Client, Event as ApiEvent};

use crate::logic::{Downlink, Input, Vm};
use crate::Event;

/// A connection for one request and its answer.
fn client(socket: &Path) -> Result<Client> {
    Ok(Client::connect(socket, Some(Duration::from_secs(10)))?)
}

/// The connections fix-ups go over, one per downlink's vswitchd, kept open between moves
/// (a new connection and its `hello` cost more than the fix-up itself).
pub struct Announcer {
    sockets: Vec<PathBuf>,
    clients: Vec<Option<Client>>,
}

impl Announcer {
    pub fn new(sockets: Vec<PathBuf>) -> Announcer {
        Announcer { clients: sockets.iter().map(|_| None).collect(), sockets }
    }

    /// Opens downlink `d`'s connection now (when its vswitchd is seen, at start or after a
    /// restart), so that the first fix-up after it does not pay for the connection.
    pub fn connect(&mut self, d: Downlink) {
        match client(&self.sockets[d]) {
            Ok(c) => self.clients[d] = Some(c),
            Err(e) => tracing::warn!("vswitchd at {}: {e:#} (the next fix-up tries again)", self.sockets[d].display()),
        }
    }

    /// Tells the VMs `to` on downlink `d`'s vswitchd that `ip` is at `mac`: how many frames
    /// each got, and how many frames for `ip` vswitchd had held (at the moved VM's old
    /// port) and sent on. A connection that broke (vswitchd restarted) is made again once.
    pub fn arp_announce(&mut self, d: Downlink, to: &[String], ip: IpAddr, mac: MacAddr) -> Result<Announced> {
        let req = ArpAnnounce { to: to.to_vec(), ip, mac };
        if let Some(c) = self.clients[d].as_mut() {
            match c.arp_announce(req.clone()) {
                Ok(a) => return Ok(a),
                // A refusal is vswitchd's answer; anything else, try a new connection.
                Err(e @ roam_api::ClientError::Refused { .. }) => return Err(e.into()),
                Err(_) => self.clients[d] = None,
            }
        }
        let mut c = client(&self.sockets[d])?;
        let a = c.arp_announce(req)?;
        self.clients[d] = Some(c);
        Ok(a)
    }
}

/// Follows a vswitchd: subscribes to its events, then reads `show` (so nothing falls
/// between the two), and forwards attach/detach as inputs. Reconnects when vswitchd
/// restarts.
/// With `segment` set, only that segment's VMs exist for this leafd (one tenant's leafd
/// beside other tenants' on the same vswitchd).
pub fn watch(d: Downlink, socket: PathBuf, segment: Option<SegmentId>, tx: Sender<Event>) {
    loop {
        if let Err(e) = watch_once(d, &socket, segment, &tx) {
            tracing::debug!("vswitchd at {}: {e:#}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn watch_once(d: Downlink, socket: &Path, segment: Option<SegmentId>, tx: &Sender<Event>) -> Result<()> {
    let ours = |s: SegmentId| segment.is_none_or(|m| m == s);
    let events = Client::connect(socket, None)?.events()?;
    let show = client(socket)?.show()?;
    let vms: Vec<Vm> = show
        .vms
        .into_iter()
        .filter(|v| ours(v.segment))
        .map(|v| Vm { name: v.name, mac: v.mac, ipv4: v.ipv4, ipv6: v.ipv6 })
        .collect();
    tracing::info!("vswitchd at {}: {} VMs", socket.display(), vms.len());
    // The names of this leafd's VMs there: link events carry only a name.
    let mut names: HashSet<String> = vms.iter().map(|v| v.name.clone()).collect();
    tx.send(Event { input: Input::Sync(d, vms), at: SystemTime::now() })?;
    for e in events {
        let input = match e? {
            ApiEvent::Attach { name, mac, segment, ipv4, ipv6 } if ours(segment) => {
                names.insert(name.clone());
                Some(Input::Attached(d, Vm { name, mac, ipv4, ipv6 }))
            }
            ApiEvent::Detach { name, segment, .. } if ours(segment) => {
                names.remove(&name);
                Some(Input::Detached(d, name))
            }
            ApiEvent::Attach { .. } | ApiEvent::Detach { .. } => None,
            ApiEvent::Link { name, up: true } if names.contains(&name) => Some(Input::LinkUp(d, name)),
            ApiEvent::Link { up: true, .. } => None,
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
