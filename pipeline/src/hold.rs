//! Frames held for a VM port whose link went down (its VM stopped: paused, or in the last
//! phase of a live migration), instead of dropped. When the link comes back they go to the
//! port; when the leaf's fix-up says where an address went, the frames for it get the new
//! destination MAC and go on: back through the rules from the port they came in on, or,
//! if they came from the uplink, straight back to it, encapsulated for their segment.
//! Generic over [`Frame`]: the worker only moves buffers.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::ids::SegmentSlot;
use crate::wire::mac::MacAddr;

use crate::config::{PortId, SwitchConfig};
use crate::counters::per_port;
use crate::encap::Encap;
use crate::frame::Frame;
use crate::wire::ethernet::{ethertype, HEADER_LEN};

/// One port's hold counters. Always `held = released + dropped + holding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldCounters {
    /// Frames the port refused while its link was down, kept.
    pub held: u64,
    /// Held frames that left the hold: to the port, or towards a fix-up's MAC.
    pub released: u64,
    /// Held frames dropped: too old, too many, or not writable for a release.
    pub dropped: u64,
}

struct Held<F> {
    frame: F,
    /// Where it came in (a release runs it through the rules again from there).
    in_port: PortId,
    /// The port that refused it (its counters count the frame).
    port: PortId,
    /// Whether that port still exists (a removed port's id may be reused).
    attached: bool,
    /// The port's segment when held (a frame sent back to the uplink is encapsulated for it).
    segment: Option<SegmentSlot>,
    since: Instant,
}

/// Where released frames go.
pub struct Released<F> {
    /// Back through the rules, each from the port it came in on (runs of one port kept
    /// together, in arrival order).
    pub rerun: Vec<(PortId, F)>,
    /// Straight back to the uplink, already encapsulated.
    pub to_uplink: Vec<F>,
}

/// The held frames of one worker, oldest first, and their counters.
pub struct HeldFrames<F> {
    frames: VecDeque<Held<F>>,
    counters: Vec<HoldCounters>,
    limit: usize,
    max_age: Duration,
}

impl<F: Frame> HeldFrames<F> {
    /// Frames held at most (all ports of a worker): a few hundred milliseconds of one TCP
    /// stream's window, not a queue for a VM that never comes back.
    pub const LIMIT: usize = 1024;
    /// How long a held frame waits for its port or a fix-up before it is dropped.
    pub const MAX_AGE: Duration = Duration::from_secs(2);

    pub fn new(limit: usize, max_age: Duration) -> HeldFrames<F> {
        HeldFrames { frames: VecDeque::new(), counters: Vec::new(), limit, max_age }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn count(&mut self, port: PortId) -> &mut HoldCounters {
        per_port(&mut self.counters, port)
    }

    /// Keeps frames `port` refused, each with the port it came in on. Beyond the limit
    /// the oldest frames (of any port) are dropped.
    pub fn hold(
        &mut self,
        cfg: &SwitchConfig,
        port: PortId,
        frames: impl IntoIterator<Item = (PortId, F)>,
        now: Instant,
    ) {
        let segment = cfg.vnic(port).map(|v| v.segment);
        let mut n = 0;
        for (in_port, frame) in frames {
            self.frames.push_back(Held { frame, in_port, port, attached: true, segment, since: now });
            n += 1;
        }
        self.count(port).held += n;
        while self.frames.len() > self.limit {
            if let Some(h) = self.frames.pop_front() {
                self.count(h.port).dropped += 1;
            }
        }
    }

    /// Drops frames held longer than the maximum age.
    pub fn expire(&mut self, now: Instant) {
        while self.frames.front().is_some_and(|h| now.duration_since(h.since) > self.max_age) {
            if let Some(h) = self.frames.pop_front() {
                self.count(h.port).dropped += 1;
            }
        }
    }

    /// The port is gone: its frames wait for a fix-up (its VM moved) or expire; they never
    /// go to a new port that gets the same id.
    pub fn port_removed(&mut self, port: PortId) {
        for h in self.frames.iter_mut().filter(|h| h.port == port) {
            h.attached = false;
        }
    }

    /// Takes the held frames `pick` selects, in arrival order.
    fn take(&mut self, mut pick: impl FnMut(&Held<F>) -> bool) -> Vec<Held<F>> {
        let (taken, kept): (Vec<Held<F>>, Vec<Held<F>>) = self.frames.drain(..).partition(|h| pick(h));
        self.frames = kept.into();
        taken
    }

    /// The link of `port` is back: its frames, in order, to send to it.
    pub fn take_for_port(&mut self, port: PortId) -> Vec<F> {
        let taken = self.take(|h| h.attached && h.port == port);
        self.count(port).released += taken.len() as u64;
        taken.into_iter().map(|h| h.frame).collect()
    }

    /// The port's VM is away: the frames held for it that came from local VMs, in order,
    /// to run through the rules again (which now send them to the leaf). Those from the
    /// uplink stay: they wait for the port, a fix-up or their age.
    pub fn take_to_reroute(&mut self, cfg: &SwitchConfig, port: PortId) -> Vec<(PortId, F)> {
        let uplink = cfg.uplink();
        let taken = self.take(|h| h.attached && h.port == port && Some(h.in_port) != uplink);
        self.count(port).released += taken.len() as u64;
        taken.into_iter().map(|h| (h.in_port, h.frame)).collect()
    }

    /// The leaf says `ip` is now at `mac` (the ARP fix-up): the frames held for `ip` get
    /// `mac` as their destination. Those from local VMs go back through the rules; those
    /// from the uplink go back to it, encapsulated for their segment as the rules would
    /// (the rules never send a frame back where it came from), because the leaf now routes
    /// `ip` to its new place.
    pub fn release(&mut self, cfg: &SwitchConfig, ip: IpAddr, mac: MacAddr) -> Released<F> {
        let uplink = cfg.uplink();
        let taken = self.take(|h| ip_destination(h.frame.bytes()) == Some(ip));
        let mut out = Released { rerun: Vec::new(), to_uplink: Vec::new() };
        for mut h in taken {
            let Some(b) = h.frame.bytes_mut() else {
                // Shared with another port's queue: not ours to rewrite.
                self.count(h.port).dropped += 1;
                continue;
            };
            b[0..6].copy_from_slice(&mac.0);
            if uplink.is_some() && uplink == Some(h.in_port) {
                let encap = h.segment.and_then(|s| cfg.segment(s)).map_or(Encap::Native, |s| s.encap);
                if cfg.wrap(encap).encapsulate(&mut h.frame).is_err() {
                    self.count(h.port).dropped += 1;
                    continue;
                }
                out.to_uplink.push(h.frame);
            } else {
                out.rerun.push((h.in_port, h.frame));
            }
            self.count(h.port).released += 1;
        }
        out
    }

    /// One port's counters.
    pub fn counters(&self, port: PortId) -> HoldCounters {
        self.counters.get(port.index()).copied().unwrap_or_default()
    }

    /// Ports that have counters, with how many frames each has held right now.
    pub fn ports(&self) -> impl Iterator<Item = (PortId, HoldCounters, u64)> + '_ {
        self.counters.iter().enumerate().map(|(p, c)| {
            let port = PortId(p as u16);
            (port, *c, self.frames.iter().filter(|h| h.port == port).count() as u64)
        })
    }
}

/// The IP destination of an untagged Ethernet frame (frames queued for a VM port are).
fn ip_destination(b: &[u8]) -> Option<IpAddr> {
    match u16::from_be_bytes([*b.get(12)?, *b.get(13)?]) {
        ethertype::IPV4 if b.len() >= HEADER_LEN + 20 => Some(Ipv4Addr::new(b[30], b[31], b[32], b[33]).into()),
        ethertype::IPV6 if b.len() >= HEADER_LEN + 40 => {
            let a: [u8; 16] = b[HEADER_LEN + 24..HEADER_LEN + 40].try_into().ok()?;
            Some(Ipv6Addr::from(a).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PortRole, SegmentConfig, VnicConfig};
    use crate::frame::ByteFrame;

    const UP: PortId = PortId(0);
    const A: PortId = PortId(1);
    const B: PortId = PortId(2);
    const GW: MacAddr = MacAddr([0, 0, 0x5e, 0, 1, 1]);

    fn cfg(native: bool) -> SwitchConfig {
        let mut c = SwitchConfig::new();
        let encap = if native { Encap::Native } else { Encap::Vlan(crate::ids::VlanId::new(100).unwrap()) };
        c.set_segment(SegmentSlot(0), SegmentConfig::new(encap, GW)).unwrap();
        c.set_port(UP, PortRole::Uplink).unwrap();
        for p in [A, B] {
            c.set_port(p, PortRole::Vnic(VnicConfig::new(MacAddr([0x52, 0x54, 0, 0, 0, p.0 as u8]), SegmentSlot(0))))
                .unwrap();
        }
        c
    }

    /// An IPv4 frame to `dst_ip`, numbered by its last byte.
    fn to(dst_ip: [u8; 4], n: u8) -> ByteFrame {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[0x52, 0x54, 0, 0, 0, A.0 as u8]);
        f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0, 0, B.0 as u8]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[30..34].copy_from_slice(&dst_ip);
        f[59] = n;
        ByteFrame::new(&f)
    }

    fn check_balance(h: &HeldFrames<ByteFrame>) {
        for (port, c, holding) in h.ports() {
            assert_eq!(c.held, c.released + c.dropped + holding, "port {port}: {c:?}, {holding} holding");
        }
    }

    #[test]
    fn a_link_back_up_gets_its_frames_in_order_and_a_removed_port_does_not() {
        let c = cfg(true);
        let mut h = HeldFrames::new(16, HeldFrames::<ByteFrame>::MAX_AGE);
        let now = Instant::now();
        h.hold(&c, A, (0..3).map(|n| (B, to([10, 1, 1, 1], n))), now);
        h.hold(&c, B, [(A, to([10, 1, 1, 2], 9))], now);
        let back = h.take_for_port(A);
        assert_eq!(back.iter().map(|f| f.bytes()[59]).collect::<Vec<_>>(), vec![0, 1, 2]);
        h.port_removed(B);
        assert!(h.take_for_port(B).is_empty(), "a removed port's frames never go to its successor");
        assert_eq!((h.counters(A).released, h.counters(B).held), (3, 1));
        check_balance(&h);
    }

    #[test]
    fn an_away_port_gives_back_what_local_vms_sent_and_keeps_what_came_from_the_uplink() {
        let c = cfg(true);
        let mut h = HeldFrames::new(16, HeldFrames::<ByteFrame>::MAX_AGE);
        let now = Instant::now();
        h.hold(&c, A, [(B, to([10, 1, 1, 1], 1)), (UP, to([10, 1, 1, 1], 2)), (B, to([10, 1, 1, 1], 3))], now);
        h.hold(&c, B, [(A, to([10, 1, 1, 2], 4))], now);
        let again = h.take_to_reroute(&c, A);
        assert_eq!(again.iter().map(|(p, f)| (*p, f.bytes()[59])).collect::<Vec<_>>(), vec![(B, 1), (B, 3)]);
        assert_eq!(h.counters(A), HoldCounters { held: 3, released: 2, dropped: 0 });
        // Back (a pause, not a move): what came from the uplink goes to it.
        assert_eq!(h.take_for_port(A).iter().map(|f| f.bytes()[59]).collect::<Vec<_>>(), vec![2]);
        assert_eq!(h.take_for_port(B).len(), 1);
        check_balance(&h);
    }

    #[test]
    fn the_oldest_go_beyond_the_limit_and_old_ones_expire() {
        let c = cfg(true);
        let mut h = HeldFrames::new(4, Duration::from_millis(100));
        let t0 = Instant::now();
        h.hold(&c, A, (0..6).map(|n| (B, to([10, 1, 1, 1], n))), t0);
        assert_eq!(h.counters(A).dropped, 2);
        h.hold(&c, B, [(A, to([10, 1, 1, 2], 7))], t0 + Duration::from_millis(80));
        h.expire(t0 + Duration::from_millis(150));
        // Two over the limit at once, one more when B's frame came, the other three too old.
        assert_eq!((h.counters(A).dropped, h.counters(B).dropped), (6, 0));
        assert_eq!(h.take_for_port(B).len(), 1);
        assert!(h.is_empty());
        check_balance(&h);
    }

    #[test]
    fn a_fixup_releases_frames_for_its_address_only_rewritten_and_encapsulated() {
        for native in [true, false] {
            let c = cfg(native);
            let mut h = HeldFrames::new(16, HeldFrames::<ByteFrame>::MAX_AGE);
            let now = Instant::now();
            // To A (10.1.1.1): one from B, one from the uplink; one to another address.
            h.hold(&c, A, [(B, to([10, 1, 1, 1], 1)), (UP, to([10, 1, 1, 1], 2)), (B, to([10, 1, 1, 9], 3))], now);
            let r = h.release(&c, Ipv4Addr::new(10, 1, 1, 1).into(), GW);
            assert_eq!(r.rerun.len(), 1);
            assert_eq!((r.rerun[0].0, &r.rerun[0].1.bytes()[0..6]), (B, &GW.0[..]));
            assert_eq!(r.to_uplink.len(), 1);
            let up = r.to_uplink[0].bytes();
            assert_eq!(&up[0..6], &GW.0);
            if native {
                assert_eq!(&up[12..14], &[0x08, 0x00], "a native segment goes up untagged");
            } else {
                assert_eq!(&up[12..16], &[0x81, 0x00, 0x00, 100], "tagged for its segment");
            }
            assert_eq!(h.counters(A), HoldCounters { held: 3, released: 2, dropped: 0 });
            check_balance(&h);
        }
    }

    #[test]
    fn a_fixup_releases_its_family_only_and_never_arp_or_runts() {
        let c = cfg(true);
        let mut h = HeldFrames::new(16, HeldFrames::<ByteFrame>::MAX_AGE);
        let mut arp = to([10, 1, 1, 1], 0).bytes().to_vec();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        // An IPv6 frame to 2001:db8::1 whose last destination bytes read 10.1.1.1 as IPv4's would.
        let mut v6 = vec![0u8; 14 + 40 + 8];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[14] = 0x60;
        let a6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        v6[38..54].copy_from_slice(&a6.octets());
        v6[30..34].copy_from_slice(&[10, 1, 1, 1]);
        let short6 = v6[..14 + 39].to_vec();
        let frames = [arp, vec![0u8; 20], short6, v6];
        h.hold(&c, A, frames.iter().map(|f| (B, ByteFrame::new(f))), Instant::now());
        let r = h.release(&c, Ipv4Addr::new(10, 1, 1, 1).into(), GW);
        assert!(r.rerun.is_empty() && r.to_uplink.is_empty(), "an IPv4 fix-up takes no IPv6 frame");
        let r = h.release(&c, a6.into(), GW);
        assert_eq!(r.rerun.len(), 1, "the IPv6 fix-up takes the IPv6 frame, not the truncated one");
        assert_eq!(&r.rerun[0].1.bytes()[0..6], &GW.0);
        assert_eq!(h.counters(A), HoldCounters { held: 4, released: 1, dropped: 0 });
        check_balance(&h);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hold { port: PortId, from: PortId, ip: u8, n: u8 },
        Tick(u16),
        LinkUp(PortId),
        Release(u8),
        Remove(PortId),
        Away(PortId),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u16..3, 0u16..3, 1u8..4, 1u8..40).prop_map(|(port, from, ip, n)| Op::Hold {
                port: PortId(port),
                from: PortId(from),
                ip,
                n
            }),
            (0u16..800).prop_map(Op::Tick),
            (0u16..3).prop_map(|p| Op::LinkUp(PortId(p))),
            (1u8..4).prop_map(Op::Release),
            (0u16..3).prop_map(|p| Op::Remove(PortId(p))),
            (0u16..3).prop_map(|p| Op::Away(PortId(p))),
        ]
    }

    proptest::proptest! {
        /// Against any sequence of holds, expiries, links back up, fix-ups and removals:
        /// every frame held comes out exactly once (to a port, released, or dropped) or is
        /// still held, each port's counters balance, and never more than the limit is held.
        #[test]
        fn every_held_frame_is_accounted_for(ops in proptest::collection::vec(op(), 1..60), native in proptest::bool::ANY) {
            let c = cfg(native);
            let mut h = HeldFrames::new(64, Duration::from_millis(500));
            let mut now = Instant::now();
            let (mut put, mut out) = (0u64, 0u64);
            for o in ops {
                match o {
                    Op::Hold { port, from, ip, n } => {
                        h.hold(&c, port, (0..n).map(|i| (from, to([10, 1, 1, ip], i))), now);
                        put += n as u64;
                    }
                    Op::Tick(ms) => {
                        now += Duration::from_millis(ms as u64);
                        h.expire(now);
                    }
                    Op::LinkUp(port) => out += h.take_for_port(port).len() as u64,
                    Op::Release(ip) => {
                        let r = h.release(&c, Ipv4Addr::new(10, 1, 1, ip).into(), GW);
                        for (_, f) in &r.rerun {
                            proptest::prop_assert_eq!(&f.bytes()[0..6], &GW.0[..]);
                        }
                        out += (r.rerun.len() + r.to_uplink.len()) as u64;
                    }
                    Op::Remove(port) => h.port_removed(port),
                    Op::Away(port) => {
                        let again = h.take_to_reroute(&c, port);
                        proptest::prop_assert!(again.iter().all(|(from, _)| *from != UP));
                        out += again.len() as u64;
                    }
                }
                proptest::prop_assert!(h.frames.len() <= 64);
                let (mut dropped, mut holding) = (0, 0);
                for (_, counters, now_held) in h.ports() {
                    proptest::prop_assert_eq!(counters.held, counters.released + counters.dropped + now_held);
                    dropped += counters.dropped;
                    holding += now_held;
                }
                proptest::prop_assert_eq!(put, out + dropped + holding);
            }
        }
    }
}
