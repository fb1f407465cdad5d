//! The scenario's fabric as `roam-model` sees it, so that the model can be run on the same
//! leaves, hosts, VMs and moves as the real thing and its counts checked against the real
//! run's (`tests/live_migration_reflected.rs`).

use std::net::{Ipv4Addr, Ipv6Addr};

use roam_model::layout::{HostSpec, Layout, LeafSpec, VmSpec};

use super::{Scenario, Shape, OTHERS};

/// What the model must match after each move, read off the real fabric: fix-up frames
/// the leafds had vswitchd send (their move reports), UPDATE messages the leaves' GoBGPs
/// sent and received, and the host routes in each leaf's kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    pub fixup_frames: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
}

impl Counts {
    /// What happened between `before` and these counts.
    pub fn since(&self, before: &Counts) -> Counts {
        Counts {
            fixup_frames: self.fixup_frames - before.fixup_frames,
            updates_sent: self.updates_sent - before.updates_sent,
            updates_received: self.updates_received - before.updates_received,
        }
    }
}

impl Scenario {
    /// This fabric (only [`Shape::Reflected`]: the model's BGP is two reflectors) and
    /// `moves` moves of A between its two hosts, as a model layout. VM indices: A, then
    /// B, C, D, then E.
    pub fn model_layout(&self, moves: usize) -> Layout {
        assert_eq!(self.homes, Shape::Reflected.homes(), "the model knows the reflected fabric only");
        let leaves = self
            .fabric
            .leaves
            .iter()
            .map(|l| LeafSpec {
                name: l.name.clone(),
                nexthop: l.fabric_ip.parse().expect("a leaf's IPv4 fabric address"),
                nexthop6: l.fabric_ip6.parse().expect("a leaf's IPv6 fabric address"),
                pod: 0,
            })
            .collect();
        // Host i is under leaf i, its leafd's `host = i + 1` (`Fabric::start_hosts`).
        let hosts = (0..self.hosts.len()).map(|i| HostSpec { id: i as u16 + 1, leaf: i as u32 }).collect();
        let vm = |name: &str, v4: &str, host: usize| {
            let v4: Ipv4Addr = v4.parse().expect("an IPv4 address");
            let v6 = Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000u128 | u128::from(v4.octets()[3]));
            VmSpec { name: name.into(), ipv4: vec![v4], ipv6: vec![v6], host: host as u32, subnet: 0 }
        };
        let mut vms = vec![vm("a", "10.1.1.1", self.ends[0])];
        vms.extend(OTHERS.iter().zip(self.homes).map(|((name, ip), home)| vm(name, ip, home)));
        vms.push(vm("e", "10.1.1.5", 2));
        let moves = (0..moves).map(|i| (0, self.ends[(i + 1) % 2] as u32)).collect();
        Layout {
            leaves,
            hosts,
            vms,
            gateways: vec!["10.1.1.254/24".into(), "2001:db8:1::fe/64".into()],
            moves,
            talks: Vec::new(),
        }
    }

    /// The real fabric's counts so far (summed over every leaf).
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for l in &self.fabric.leaves {
            let frames: usize = l.moves().iter().flat_map(|m| &m.fixups).flat_map(|f| f.sent.values()).sum();
            c.fixup_frames += frames as u64;
            let (sent, received) = l.bgp_updates();
            c.updates_sent += sent;
            c.updates_received += received;
        }
        c
    }

    /// Each leaf's host routes in its kernel now.
    pub fn kernel_host_routes(&self) -> Vec<usize> {
        self.fabric.leaves.iter().map(|l| l.kernel_host_routes()).collect()
    }
}
