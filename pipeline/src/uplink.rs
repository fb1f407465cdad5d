//! Frames from the uplink: the segment each belongs to (its tag, its VNI, or the native
//! segment), then to the local VM it names or flooded to the segment's VMs; never back up.
//! ARP for the host's VTEP is answered in place, the leaf VTEPs' ARP replies go to the
//! control plane.

use crate::config::{PortId, SwitchConfig};
use crate::counters::{Counters, DropReason};
use crate::encap::{Strip, Uplinked};
use crate::frame::Frame;
use crate::ids::SegmentSlot;
use crate::process::{answer_arp, classify_and_look_up, drop_frame, enqueue, flood, Output, Verdict};
use crate::table::{port_of, EntryKind, Reader, BATCH};
use crate::vxlan::VtepArp;
use crate::wire::ethernet::HEADER_LEN;
use crate::wire::mac::MacAddr;

/// The verdict for a frame from the uplink, its segment, and what to strip from it.
#[inline]
fn classify_uplink(b: &[u8], cfg: &SwitchConfig) -> (Verdict, SegmentSlot, Strip) {
    let none = (SegmentSlot(0), Strip::Nothing);
    if b.len() < HEADER_LEN {
        return (Verdict::Drop(DropReason::Runt), none.0, none.1);
    }
    let (slot, strip) = match cfg.decap().classify(b) {
        Ok(Uplinked::Segment(slot, strip)) => (slot, strip),
        Ok(Uplinked::Vtep(VtepArp::Request(mac))) => return (Verdict::Reply(mac), none.0, none.1),
        Ok(Uplinked::Vtep(VtepArp::FromLeaf)) => return (Verdict::Underlay, none.0, none.1),
        Err(r) => return (Verdict::Drop(r), none.0, none.1),
    };
    let at = strip.offset();
    let src = MacAddr::at(b, at + 6);
    if src.is_multicast() || src == MacAddr::ZERO {
        return (Verdict::Drop(DropReason::BadSourceMac), slot, strip);
    }
    (if b[at] & 1 != 0 { Verdict::Flood } else { Verdict::Lookup }, slot, strip)
}

pub(crate) fn from_uplink<F: Frame>(
    cfg: &SwitchConfig,
    reader: &mut Reader,
    counters: &mut Counters,
    in_port: PortId,
    burst: &mut [Option<F>],
    out: &mut Output<F>,
) {
    let mut slots: [SegmentSlot; BATCH] = [SegmentSlot(0); BATCH];
    let mut strip = [Strip::Nothing; BATCH];
    let (verdicts, found) = classify_and_look_up(burst, reader, |i, b| {
        let verdict;
        (verdict, slots[i], strip[i]) = classify_uplink(b, cfg);
        (verdict, slots[i], strip[i].offset())
    });

    for (i, f) in burst.iter_mut().enumerate() {
        let Some(mut f) = f.take() else { continue };
        match verdicts[i] {
            Verdict::Drop(r) => drop_frame(counters, in_port, f, r, out),
            Verdict::Lookup => {
                let local = found[i].filter(|v| v.kind() != EntryKind::Anycast && port_of(*v) != in_port);
                match local {
                    // A port the table has and this snapshot does not (see `from_vnic`).
                    Some(v) if cfg.vnic(port_of(v)).is_none() => {
                        drop_frame(counters, in_port, f, DropReason::PortNotReady, out)
                    }
                    Some(v) if strip[i].apply(&mut f) => {
                        counters.at(in_port).forwarded += 1;
                        enqueue(counters, port_of(v), f, out);
                    }
                    Some(_) => drop_frame(counters, in_port, f, DropReason::Unwritable, out),
                    None => drop_frame(counters, in_port, f, DropReason::UplinkUnknownUnicast, out),
                }
            }
            Verdict::Flood => {
                if !strip[i].apply(&mut f) {
                    drop_frame(counters, in_port, f, DropReason::Unwritable, out);
                    continue;
                }
                flood(counters, in_port, f, cfg.members(slots[i]).iter().copied(), None, out);
            }
            // ARP for the host's VTEP: answered straight back, untagged.
            Verdict::Reply(mac) => answer_arp(counters, in_port, f, mac, out),
            Verdict::Underlay => {
                counters.at(in_port).underlay += 1;
                out.underlay.push(f);
            }
            Verdict::NdReply(_) | Verdict::Announce => {
                unreachable!("classify_uplink neither answers neighbor solicitations nor traps")
            }
        }
    }
}
