//! The route reflectors, as far as the model needs them: each address's paths from the
//! leaves, the best of them, and how many UPDATE messages a change costs. Every leaf is a
//! client of every reflector (two in the real fabric, `tests/harness/reflectors.rs`) and
//! peers with nothing else.
//!
//! What a change costs, as FRR's `bgpd` does it (and the four-leaf test checks against
//! GoBGP's message counters): a leaf's advertisement or withdrawal is one UPDATE to each
//! reflector. When the best path changes, each reflector sends the new best to every client
//! but the one it came from (that one has it: it originated it) and withdraws from that one
//! the path it had been sent before, if another leaf's was best; when the last path goes,
//! each reflector withdraws it from every client but its originator. A change that leaves
//! the best path as it was (the old leaf withdrawing a path that lost) costs nothing more.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use leafd::logic::Path;

use crate::shared::Base;

/// What a leaf's GoBGP tells the reflectors.
#[derive(Debug, Clone, Copy)]
pub enum Update {
    Advertise { leaf: u32, ip: IpAddr, path: Path },
    Withdraw { leaf: u32, ip: IpAddr },
}

/// What the other leaves' GoBGPs then tell their leafd: the new best path (from
/// `leaf`), or that `leaf`'s best path is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Best { leaf: u32, ip: IpAddr, path: Path },
    Withdrawn { leaf: u32, ip: IpAddr, path: Path },
}

/// UPDATE messages, as the leaves count them (their sessions to the reflectors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Messages {
    /// Sent by leaves to the reflectors.
    pub sent: u64,
    /// Received by leaves from the reflectors.
    pub received: u64,
}

impl Messages {
    pub fn add(&mut self, o: Messages) {
        self.sent += o.sent;
        self.received += o.received;
    }
}

pub struct Reflectors {
    count: u64,
    clients: u64,
    base: Arc<Base>,
    /// Addresses whose paths changed since the start: each leaf's path.
    paths: HashMap<IpAddr, Vec<(u32, Path)>>,
}

/// The best of `paths`: the highest sequence number (leafd's local preference), then the
/// lowest leaf (router id).
fn best(paths: &[(u32, Path)]) -> Option<(u32, Path)> {
    paths.iter().copied().max_by(|(la, a), (lb, b)| a.seq.cmp(&b.seq).then(lb.cmp(la)))
}

impl Reflectors {
    pub fn new(count: u64, base: Arc<Base>) -> Reflectors {
        let clients = base.leaf_nexthops.len() as u64;
        Reflectors { count, clients, base, paths: HashMap::new() }
    }

    /// Takes one leaf's update; returns what it cost and what the other leaves learn.
    pub fn update(&mut self, u: Update) -> (Messages, Option<Outcome>) {
        let ip = match u {
            Update::Advertise { ip, .. } | Update::Withdraw { ip, .. } => ip,
        };
        let base = &self.base;
        let paths = self.paths.entry(ip).or_insert_with(|| base.start(ip).into_iter().collect());
        let before = best(paths);
        match u {
            Update::Advertise { leaf, path, .. } => {
                paths.retain(|(l, _)| *l != leaf);
                paths.push((leaf, path));
            }
            Update::Withdraw { leaf, .. } => paths.retain(|(l, _)| *l != leaf),
        }
        let after = best(paths);
        let mut m = Messages { sent: self.count, received: 0 };
        if before == after {
            return (m, None);
        }
        let outcome = match (before, after) {
            (_, Some((leaf, path))) => {
                m.received = self.count * (self.clients - 1);
                if before.is_some_and(|(l, _)| l != leaf) {
                    m.received += self.count;
                }
                Outcome::Best { leaf, ip, path }
            }
            (Some((leaf, path)), None) => {
                m.received = self.count * (self.clients - 1);
                Outcome::Withdrawn { leaf, ip, path }
            }
            (None, None) => unreachable!("unchanged"),
        };
        (m, Some(outcome))
    }
}
