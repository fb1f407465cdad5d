//! The scenario's fabric shapes and its set-up: the guests on their hosts, the host
//! routes everywhere, the streams running.

use std::time::Duration;

use serde_json::json;

use super::{streams, Scenario, FAMILIES, OTHERS, STREAMING};
use crate::fabric::{Fabric, LeafNode, ANYCAST};
use crate::{Guest, TestDir};

/// The fabric a scenario runs on; a host (a vswitchd) under every leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Two leaves in a full iBGP mesh. A moves between hosts 1 and 2; B is on host 1, C
    /// and D on host 2.
    Mesh,
    /// Four leaves whose GoBGPs peer only with two FRR route reflectors. A moves between
    /// hosts 1 and 4 (leaves 1 and 4 have no session with each other); B is on host 1, C
    /// on host 4, D on host 2 (a third leaf's VM, which must hear nothing of any move)
    /// and a `net_null` VM E on host 3, so that every leaf has a host of its own.
    Reflected,
}

impl Shape {
    /// The host of each of `OTHERS` (B, C, D).
    pub(super) fn homes(self) -> [usize; 3] {
        match self {
            Shape::Mesh => [0, 1, 1],
            Shape::Reflected => [0, 3, 1],
        }
    }

    /// The two hosts A moves between, A's first host first.
    pub(super) fn ends(self) -> [usize; 2] {
        match self {
            Shape::Mesh => [0, 1],
            Shape::Reflected => [0, 3],
        }
    }
}

/// Waits until every leaf's best path for `prefix` is `owner`'s (its fabric address of
/// the prefix's family as the next hop).
fn everywhere(leaves: &[LeafNode], prefix: &str, owner: usize) {
    let o = &leaves[owner];
    let nh = if prefix.contains(':') { &o.fabric_ip6 } else { &o.fabric_ip };
    for l in leaves.iter().filter(|l| l.name != o.name) {
        crate::wait_for(
            &format!("{}'s best path for {prefix} from {}", l.name, o.name),
            Duration::from_secs(30),
            || l.best_path(prefix).filter(|p| p.0 == *nh),
        );
    }
}

impl Scenario {
    /// [`Scenario::start_on`] the two-leaf full mesh.
    pub fn start(fixups: bool, rarp_only: bool, tag: &str) -> Scenario {
        Scenario::start_on(Shape::Mesh, fixups, rarp_only, tag)
    }

    /// Sets everything up on a fabric of this shape and starts the streams; `rarp_only`:
    /// A cannot announce itself (its QEMU asks vswitchd to send a RARP for it after each
    /// move).
    pub fn start_on(shape: Shape, fixups: bool, rarp_only: bool, tag: &str) -> Scenario {
        let dir = TestDir::new(&format!("migrate-{tag}"));
        let mut fabric = match shape {
            Shape::Mesh => Fabric::new(&dir, tag),
            Shape::Reflected => Fabric::reflected(&dir, tag, 4),
        };
        let hosts = fabric.start_hosts(&dir, fixups);
        let (homes, ends) = (shape.homes(), shape.ends());
        let mut a = if rarp_only {
            Guest::start_rarp_only(&dir, "a", "52:54:00:00:00:01", super::A_IP)
        } else {
            Guest::start(&dir, "a", "52:54:00:00:00:01", super::A_IP)
        };
        let mut others: Vec<Guest> = OTHERS
            .iter()
            .enumerate()
            .map(|(i, (name, ip))| Guest::start(&dir, name, &format!("52:54:00:00:00:0{}", i + 2), ip))
            .collect();
        hosts[ends[0]].attach(&a, 100);
        for (g, h) in others.iter().zip(homes) {
            hosts[h].attach(g, 100);
        }
        if shape == Shape::Reflected {
            hosts[2].ok(json!({ "op": "attach", "name": "e", "device": "net_null31,no-rx=1", "mac": "52:54:00:00:00:05", "segment": 100, "ipv4": ["10.1.1.5"], "ipv6": ["2001:db8:1::5"] }));
        }
        a.wait_ready();
        for g in others.iter_mut() {
            g.wait_ready();
        }
        for (h, vs) in hosts.iter().enumerate() {
            let guests = homes.iter().filter(|at| **at == h).count() + usize::from(h == ends[0]);
            if guests > 0 {
                vs.wait_links_up(guests, Duration::from_secs(90));
            }
        }
        // Every VM's /32 and /128 at every other leaf, from its own leaf.
        let mut owners = vec![(1, ends[0])];
        owners.extend(homes.iter().enumerate().map(|(i, h)| (i + 2, *h)));
        if shape == Shape::Reflected {
            owners.push((5, 2));
        }
        for (n, leaf) in owners {
            everywhere(&fabric.leaves, &format!("10.1.1.{n}/32"), leaf);
            everywhere(&fabric.leaves, &format!("2001:db8:1::{n}/128"), leaf);
        }
        // Before any move: B reaches A directly (same host, real MAC); C through its
        // leaf, which answers C's ARP and NS for A by proxy with the anycast MAC.
        a.run("roam-probe server 5001 >/dev/null 2>&1 &");
        for g in &mut others[..STREAMING] {
            g.ping_until_reply(super::A_IP);
        }
        streams::start(&mut others);
        std::thread::sleep(Duration::from_secs(3));
        for (_, a_ip, log) in FAMILIES {
            let (b, c) = (others[0].neighbour(a_ip), others[1].neighbour(a_ip));
            let state = |g: &mut Guest| g.run(&format!("ip addr; ip neigh; ip -6 neigh; ip -6 route; tail -n 3 {log}"));
            if b.as_deref() != Some("52:54:00:00:00:01") || c.as_deref() != Some(ANYCAST) {
                let (sb, sc) = (state(&mut others[0]), state(&mut others[1]));
                panic!("B should know A ({a_ip}) by its real MAC, C by the anycast MAC (its leaf's proxy answer): B {b:?}, C {c:?}\nB:\n{sb}\nC:\n{sc}");
            }
            for g in &mut others[..STREAMING] {
                assert!(g.stream_progress_in(log).0 > 50.0, "{}'s stream to {a_ip} runs", g.name);
            }
        }
        let events = hosts.iter().map(|h| h.watch_events()).collect();
        Scenario {
            events,
            dir,
            fabric,
            hosts,
            a,
            a_host: ends[0],
            homes,
            ends,
            others,
            fixups,
            tag: tag.to_string(),
            moves: 0,
            stale: None,
            gaps_seen: [[0; STREAMING]; 2],
        }
    }
}
