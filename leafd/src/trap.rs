//! Traps announcements (gratuitous ARP, RARP, unsolicited NA, DAD probe) arriving on a downlink, with
//! libpcap in immediate mode. The kernel does not forward them (the leaf is a router), so
//! an announcement goes no further than this leaf. With on-demand routes, it also passes
//! on the VMs' requests for their neighbours (ARP requests, neighbor solicitations).

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use crossbeam::channel::Sender;
use pipeline::announce;

use crate::logic::{Downlink, Input};
use crate::Event;

/// A VM's request for a neighbour, trapped on downlink `downlink`.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub downlink: Downlink,
    pub asked: announce::Solicitation,
    pub at: SystemTime,
}

/// Opens the capture now (so a missing interface is an error at start) and reads it on a
/// thread.
pub fn spawn(d: Downlink, iface: &str, tx: Sender<Event>, asks: Option<Sender<Asked>>) -> Result<()> {
    let mut cap = pcap::Capture::from_device(iface)
        .with_context(|| format!("downlink {iface}"))?
        .immediate_mode(true)
        .snaplen(256)
        .timeout(1000)
        .open()
        .with_context(|| format!("capturing on downlink {iface}"))?;
    cap.direction(pcap::Direction::In).with_context(|| format!("capture direction on {iface}"))?;
    cap.filter("arp or rarp or icmp6", true).with_context(|| format!("capture filter on {iface}"))?;
    let iface = iface.to_string();
    std::thread::Builder::new().name(format!("trap-{iface}")).spawn(move || loop {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                let at = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(ts.tv_sec as u64)
                    + Duration::from_micros(ts.tv_usec as u64);
                let sent = match (announce::parse(p.data), &asks) {
                    (Some(a), _) => tx.send(Event { input: Input::Announced(d, a), at }).is_ok(),
                    (None, Some(asks)) => match announce::solicitation(p.data) {
                        Some(s) => asks.send(Asked { downlink: d, asked: s, at }).is_ok(),
                        None => true,
                    },
                    (None, None) => true,
                };
                if !sent {
                    return;
                }
            }
            Err(pcap::Error::TimeoutExpired) => {}
            Err(e) => {
                tracing::error!("capture on {iface} failed: {e}");
                return;
            }
        }
    })?;
    Ok(())
}
