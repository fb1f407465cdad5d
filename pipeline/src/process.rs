//! Burst processing: classify every frame of a burst from one input port, look all unicast
//! destinations up in one batched MAC-table call, then forward, rewrite, flood or drop
//! each, grouping output frames per port. Nothing here allocates once the output queues
//! have grown to a burst, locks, or logs.

use std::sync::Arc;

use crate::ids::SegmentSlot;
use crate::table::{key, port_of, EntryKind, Key, Reader, Value, BATCH};
use crate::wire::mac::MacAddr;

use crate::announce::is_gratuitous;
use crate::config::{PortId, PortRole, SegmentConfig, SwitchConfig, VnicConfig};
use crate::counters::{Counters, DropReason};
use crate::encap::Wrap;
use crate::frame::Frame;
pub use crate::output::Output;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{ethertype, HEADER_LEN};

#[derive(Clone, Copy)]
pub(crate) enum Verdict {
    /// Unicast: look the destination up.
    Lookup,
    /// Broadcast or multicast.
    Flood,
    /// A VM's announcement of itself (gratuitous ARP, RARP, unsolicited NA): to the uplink
    /// only, where the leaf traps it; local VMs never hear it.
    Announce,
    /// An ARP request the local responder answers with this MAC.
    Reply(MacAddr),
    /// A neighbor solicitation the local responder answers with this MAC.
    NdReply(MacAddr),
    /// For the control plane (a leaf VTEP's ARP reply).
    Underlay,
    Drop(DropReason),
}

/// One worker's pipeline: its MAC-table reader, the configuration snapshot it works with,
/// and its counters.
pub struct Processor {
    reader: Reader,
    config: Arc<SwitchConfig>,
    counters: Counters,
}

impl Processor {
    pub fn new(reader: Reader, config: Arc<SwitchConfig>) -> Processor {
        Processor { reader, config, counters: Counters::default() }
    }

    /// Switches to a new configuration (between bursts).
    pub fn set_config(&mut self, config: Arc<SwitchConfig>) {
        self.config = config;
    }

    pub fn config(&self) -> &Arc<SwitchConfig> {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Processes the frames that came in on `in_port` (in passes of up to [`BATCH`]).
    /// Afterwards every frame is in exactly one of `out`'s queues or its drops, plus flood
    /// copies in further queues.
    pub fn process<F: Frame>(&mut self, in_port: PortId, frames: impl IntoIterator<Item = F>, out: &mut Output<F>) {
        let mut frames = frames.into_iter();
        loop {
            let mut burst: [Option<F>; BATCH] = std::array::from_fn(|_| None);
            let mut n = 0;
            for slot in burst.iter_mut() {
                match frames.next() {
                    Some(f) => *slot = Some(f),
                    None => break,
                }
                n += 1;
            }
            if n == 0 {
                return;
            }
            self.process_burst(in_port, &mut burst[..n], out);
            if n < BATCH {
                return;
            }
        }
    }

    fn process_burst<F: Frame>(&mut self, in_port: PortId, burst: &mut [Option<F>], out: &mut Output<F>) {
        let Processor { reader, config, counters } = self;
        let cfg: &SwitchConfig = config;
        // Size counters and queues once per burst; the per-frame paths only index.
        let max = cfg.max_port().max(in_port);
        counters.ensure(max);
        out.ensure(max);
        counters.at(in_port).rx += burst.len() as u64;
        match cfg.port(in_port) {
            Some(PortRole::Vnic(v)) => from_vnic(cfg, reader, counters, in_port, v, burst, out),
            Some(PortRole::Uplink) => crate::uplink::from_uplink(cfg, reader, counters, in_port, burst, out),
            None => {
                for f in burst.iter_mut().filter_map(Option::take) {
                    drop_frame(counters, in_port, f, DropReason::UnknownPort, out);
                }
            }
        }
    }
}

#[inline]
pub(crate) fn drop_frame<F>(counters: &mut Counters, in_port: PortId, f: F, reason: DropReason, out: &mut Output<F>) {
    counters.at(in_port).dropped[reason as usize] += 1;
    out.drops.push((f, reason));
}

#[inline]
pub(crate) fn enqueue<F>(counters: &mut Counters, port: PortId, f: F, out: &mut Output<F>) {
    counters.at(port).tx += 1;
    out.queues[port.index()].push(f);
}

/// The verdict for a frame from a VM port.
#[inline]
fn classify_vnic(
    b: &[u8],
    cfg: &SwitchConfig,
    port: PortId,
    v: &VnicConfig,
    seg: &SegmentConfig,
    anycast: MacAddr,
) -> Verdict {
    if b.len() < HEADER_LEN {
        return Verdict::Drop(DropReason::Runt);
    }
    let src = MacAddr::at(b, 6);
    if src.is_multicast() || src == MacAddr::ZERO {
        return Verdict::Drop(DropReason::BadSourceMac);
    }
    if v.port_security && src != v.mac {
        return Verdict::Drop(DropReason::SpoofedSourceMac);
    }
    let dst_multicast = b[0] & 1 != 0;
    match u16::from_be_bytes([b[12], b[13]]) {
        ethertype::VLAN | ethertype::QINQ => return Verdict::Drop(DropReason::TaggedFromVnic),
        ethertype::ARP => {
            let Ok(a) = ArpPacket::new_checked(&b[HEADER_LEN..]) else {
                return Verdict::Drop(DropReason::MalformedArp);
            };
            let spa = a.sender_ip();
            if v.port_security && (a.sender_mac() != v.mac || !(spa.is_unspecified() || v.ipv4.contains(&spa))) {
                return Verdict::Drop(DropReason::SpoofedArpSender);
            }
            if dst_multicast && is_gratuitous(&a) {
                return Verdict::Announce;
            }
            if seg.arp_responder && dst_multicast && a.operation() == arp::op::REQUEST {
                if let Some(mac) = responder_answer(cfg, v, seg, anycast, spa, a.target_ip()) {
                    return Verdict::Reply(mac);
                }
            }
        }
        ethertype::RARP if dst_multicast => return Verdict::Announce,
        ethertype::IPV6 if v.port_security || dst_multicast => {
            if let Some(verdict) = crate::ndp::classify(b, cfg, port, v, seg, dst_multicast) {
                return verdict;
            }
        }
        _ => {}
    }
    if dst_multicast {
        Verdict::Flood
    } else {
        Verdict::Lookup
    }
}

/// The local ARP responder's answer: a local VM's real MAC, or the anycast MAC for any
/// other address of the segment's subnets; nothing for announcements and self-queries.
fn responder_answer(
    cfg: &SwitchConfig,
    v: &VnicConfig,
    seg: &SegmentConfig,
    anycast: MacAddr,
    spa: std::net::Ipv4Addr,
    tpa: std::net::Ipv4Addr,
) -> Option<MacAddr> {
    if tpa == spa || v.ipv4.contains(&tpa) {
        return None;
    }
    match cfg.local_ipv4_mac(v.segment, tpa) {
        Some(mac) => Some(mac),
        None => seg.subnets.iter().any(|n| n.contains(tpa.into())).then_some(anycast),
    }
}

/// Answers an ARP request in place with `mac`, back out of the port it came in on.
#[inline]
pub(crate) fn answer_arp<F: Frame>(
    counters: &mut Counters,
    in_port: PortId,
    mut f: F,
    mac: MacAddr,
    out: &mut Output<F>,
) {
    if make_arp_reply(&mut f, mac) {
        let c = counters.at(in_port);
        c.forwarded += 1;
        c.arp_replies += 1;
        enqueue(counters, in_port, f, out);
    } else {
        drop_frame(counters, in_port, f, DropReason::Unwritable, out);
    }
}

/// Turns an ARP request into the reply "target IP is at `mac`", back to its sender.
fn make_arp_reply<F: Frame>(f: &mut F, mac: MacAddr) -> bool {
    let Some(b) = f.bytes_mut() else { return false };
    let requester = MacAddr::at(b, 6);
    let (eth, payload) = b.split_at_mut(HEADER_LEN);
    let mut a = ArpPacket::new_unchecked(payload);
    let (spa, tpa) = (a.sender_ip(), a.target_ip());
    a.set_operation(arp::op::REPLY);
    a.set_sender(mac, tpa);
    a.set_target(requester, spa);
    eth[0..6].copy_from_slice(&requester.0);
    eth[6..12].copy_from_slice(&mac.0);
    true
}

/// Wraps a frame for the uplink in its segment's encapsulation and queues it.
#[inline]
fn to_uplink<F: Frame>(
    counters: &mut Counters,
    in_port: PortId,
    uplink: PortId,
    wrap: Wrap,
    mut f: F,
    out: &mut Output<F>,
) -> bool {
    match wrap.encapsulate(&mut f) {
        Ok(()) => {
            enqueue(counters, uplink, f, out);
            true
        }
        Err(reason) => {
            drop_frame(counters, in_port, f, reason, out);
            false
        }
    }
}

/// Classifies every frame of a burst and looks all unicast destinations up in one batched
/// table call. `classify` gives a frame's verdict, its segment and where its own
/// destination MAC is (past outer headers). Returns each frame's verdict and, for lookups,
/// what the table holds (both indexed by the frame's place in the burst).
#[inline(always)]
pub(crate) fn classify_and_look_up<F: Frame>(
    burst: &[Option<F>],
    reader: &mut Reader,
    mut classify: impl FnMut(usize, &[u8]) -> (Verdict, SegmentSlot, usize),
) -> ([Verdict; BATCH], [Option<Value>; BATCH]) {
    let mut verdicts = [Verdict::Lookup; BATCH];
    let mut keys = [Key::from_raw(0); BATCH];
    let mut frame_of = [0u8; BATCH];
    let mut m = 0;
    for (i, f) in burst.iter().enumerate() {
        let Some(f) = f else { continue };
        let b = f.bytes();
        let (verdict, slot, at) = classify(i, b);
        verdicts[i] = verdict;
        if let Verdict::Lookup = verdict {
            keys[m] = key(MacAddr::at(b, at), slot);
            frame_of[m] = i as u8;
            m += 1;
        }
    }
    let mut found: [Option<Value>; BATCH] = [None; BATCH];
    reader.lookup_batch(&keys[..m], &mut found[..m]);
    let mut per_frame: [Option<Value>; BATCH] = [None; BATCH];
    for j in 0..m {
        per_frame[frame_of[j] as usize] = found[j];
    }
    (verdicts, per_frame)
}

fn from_vnic<F: Frame>(
    cfg: &SwitchConfig,
    reader: &mut Reader,
    counters: &mut Counters,
    in_port: PortId,
    v: &VnicConfig,
    burst: &mut [Option<F>],
    out: &mut Output<F>,
) {
    let slot: SegmentSlot = v.segment;
    let Some(seg) = cfg.segment(slot) else {
        for f in burst.iter_mut().filter_map(Option::take) {
            drop_frame(counters, in_port, f, DropReason::UnknownPort, out);
        }
        return;
    };
    let anycast = seg.anycast;
    let uplink = cfg.uplink();
    let uplink_encap = cfg.wrap(seg.encap);

    // 1-2. Classify, then one batched lookup for the whole burst.
    let (verdicts, found) =
        classify_and_look_up(burst, reader, |_, b| (classify_vnic(b, cfg, in_port, v, seg, anycast), slot, 0));

    // 3. Act, in arrival order.
    for (i, f) in burst.iter_mut().enumerate() {
        let Some(mut f) = f.take() else { continue };
        match verdicts[i] {
            Verdict::Drop(r) => drop_frame(counters, in_port, f, r, out),
            Verdict::Lookup => {
                let (up, rewrite) = match found[i] {
                    Some(val) if port_of(val) == in_port => {
                        drop_frame(counters, in_port, f, DropReason::Hairpin, out);
                        continue;
                    }
                    Some(val) if val.kind() != EntryKind::Anycast && Some(port_of(val)) != uplink => {
                        // The table may name a port this snapshot does not have yet (being
                        // attached) or any more (detached): never index past what we know.
                        match cfg.vnic(port_of(val)) {
                            None => {
                                drop_frame(counters, in_port, f, DropReason::PortNotReady, out);
                                continue;
                            }
                            Some(d) if !d.away => {
                                counters.at(in_port).forwarded += 1;
                                enqueue(counters, port_of(val), f, out);
                                continue;
                            }
                            // Away: the leaf knows where its addresses live now.
                            Some(_) => {
                                counters.at(in_port).to_away += 1;
                                (uplink, true)
                            }
                        }
                    }
                    // A gateway MAC goes up as it is; unknown unicast gets the anycast MAC.
                    hit => (uplink, hit.is_none()),
                };
                // Up to the leaf, which routes by IP.
                let Some(up) = up else {
                    drop_frame(counters, in_port, f, DropReason::NoUplink, out);
                    continue;
                };
                if rewrite {
                    let Some(b) = f.bytes_mut() else {
                        drop_frame(counters, in_port, f, DropReason::Unwritable, out);
                        continue;
                    };
                    b[0..6].copy_from_slice(&anycast.0);
                    counters.at(in_port).rewritten += 1;
                }
                if to_uplink(counters, in_port, up, uplink_encap, f, out) {
                    counters.at(in_port).forwarded += 1;
                }
            }
            Verdict::Reply(mac) => answer_arp(counters, in_port, f, mac, out),
            Verdict::NdReply(mac) => match f.bytes_mut() {
                Some(b) => {
                    crate::ndp::make_na_reply(b, mac);
                    let c = counters.at(in_port);
                    c.forwarded += 1;
                    c.nd_replies += 1;
                    enqueue(counters, in_port, f, out);
                }
                None => drop_frame(counters, in_port, f, DropReason::Unwritable, out),
            },
            Verdict::Announce if uplink.is_some() => {
                let up = uplink.expect("checked by the guard");
                if to_uplink(counters, in_port, up, uplink_encap, f, out) {
                    let c = counters.at(in_port);
                    c.forwarded += 1;
                    c.announcements += 1;
                }
            }
            // Without an uplink there is no leaf to trap it: an ordinary broadcast.
            Verdict::Underlay => unreachable!("a VM's frame never goes to the control plane"),
            Verdict::Flood | Verdict::Announce => {
                let others = cfg.members(slot).iter().copied().filter(|p| *p != in_port);
                flood(counters, in_port, f, others, uplink.map(|u| (u, uplink_encap)), out);
            }
        }
    }
}

/// Sends `f` to every port of `vnics` and to the uplink (tagged) when there is one. Never
/// back out of the input port; never rewritten. The VMs get shared handles on the frame
/// (no copy); only an uplink that needs a tag gets a copy of its own to write.
pub(crate) fn flood<F: Frame>(
    counters: &mut Counters,
    in_port: PortId,
    f: F,
    vnics: impl Iterator<Item = PortId> + Clone,
    uplink: Option<(PortId, Wrap)>,
    out: &mut Output<F>,
) {
    let targets = vnics.clone().count();
    if targets == 0 && uplink.is_none() {
        drop_frame(counters, in_port, f, DropReason::NoFloodTarget, out);
        return;
    }
    let mut up = uplink;
    if let (Some((port, encap)), true) = (uplink, targets > 0 && uplink.is_some_and(|(_, e)| e.writes())) {
        // The original goes to a VM below; the uplink gets its own copy to wrap.
        up = None;
        match f.duplicate() {
            Some(copy) => {
                if to_uplink(counters, in_port, port, encap, copy, out) {
                    counters.at(in_port).flood_copies += 1;
                }
            }
            None => counters.at(in_port).flood_copy_failures += 1,
        }
    }
    // The original goes last (to an untagged uplink, or the last VM); shares to the rest.
    let shares = if up.is_none() { targets - 1 } else { targets };
    let mut last = None;
    for (n, p) in vnics.enumerate() {
        if n == shares {
            last = Some(p);
            break;
        }
        match f.share() {
            Some(copy) => {
                counters.at(in_port).flood_copies += 1;
                enqueue(counters, p, copy, out);
            }
            None => counters.at(in_port).flood_copy_failures += 1,
        }
    }
    match (up, last) {
        (Some((port, encap)), _) => {
            if to_uplink(counters, in_port, port, encap, f, out) {
                counters.at(in_port).flooded += 1;
            }
        }
        (None, Some(p)) => {
            counters.at(in_port).flooded += 1;
            enqueue(counters, p, f, out);
        }
        (None, None) => unreachable!("targets > 0 when the original does not go up"),
    }
}
