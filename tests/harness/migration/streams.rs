//! The scenario's TCP streams to A: from B and from C, each over IPv4 and IPv6, and the
//! neighbour traffic the other VMs hear.

use super::{Scenario, GAP_MS, OTHERS, STREAMING};
use crate::Guest;

/// The stream families: (name, A's address, the client's log in the guest).
pub(super) const FAMILIES: [(&str, &str, &str); 2] =
    [("IPv4", "10.1.1.1", "/tmp/stream.log"), ("IPv6", "2001:db8:1::1", "/tmp/stream6.log")];

/// Each stream's value: `[family][B, C]`.
pub type PerStream<T> = [[T; STREAMING]; 2];

/// The IPv6 address of one of `OTHERS` (10.1.1.N is 2001:db8:1::N, as the guests have it).
pub(super) fn v6_of(ip: &str) -> String {
    format!("2001:db8:1::{}", ip.rsplit('.').next().unwrap_or_default())
}

/// Starts B's and C's streams to A's address of each family.
pub(super) fn start(others: &mut [Guest]) {
    for g in &mut others[..STREAMING] {
        for (_, a, log) in FAMILIES {
            g.run(&format!("roam-probe client {a} 5001 3600 10 {GAP_MS} >{log} 2>&1 &"));
        }
    }
}

/// Waits until none of `guests` has received an ARP, NS, NA or redirect frame for 6 s
/// (Linux's own neighbour upkeep after the set-up traffic); returns their (ARP, ND) counts.
pub fn quiet_neighbours(guests: &mut [&mut Guest]) -> Vec<(u64, u64)> {
    let count = |gs: &mut [&mut Guest]| gs.iter_mut().map(|g| (g.arp_count(), g.nd_count())).collect::<Vec<_>>();
    let mut counts = count(guests);
    for round in 0.. {
        assert!(round < 12, "the guests never stopped receiving ARP and ND frames");
        std::thread::sleep(std::time::Duration::from_secs(6));
        let now = count(guests);
        if now == counts {
            return counts;
        }
        counts = now;
    }
    unreachable!()
}

impl Scenario {
    /// Every stream's echo count now.
    pub(super) fn progress(&mut self) -> PerStream<f64> {
        let mut p = [[0.0; STREAMING]; 2];
        for (f, (_, _, log)) in FAMILIES.iter().enumerate() {
            for (i, g) in self.others[..STREAMING].iter_mut().enumerate() {
                p[f][i] = g.stream_progress_in(log).0;
            }
        }
        p
    }

    /// Checks that every stream went on (100 echoes past `after`); returns each one's
    /// longest gap since the last call.
    pub(super) fn streams_went_on(&mut self, tag: &str, after: PerStream<f64>) -> PerStream<f64> {
        let now = self.progress();
        let mut stalls = [[0.0; STREAMING]; 2];
        for (f, (family, _, log)) in FAMILIES.iter().enumerate() {
            for i in 0..STREAMING {
                let (name, a, end) = (OTHERS[i].0, after[f][i], now[f][i]);
                assert!(end > a + 100.0, "[{tag}] {name}→A over {family} stopped: {a} → {end} echoes");
                let g = &mut self.others[i];
                (stalls[f][i], self.gaps_seen[f][i]) = new_gaps(g, self.gaps_seen[f][i], log);
            }
        }
        stalls
    }

    /// The VMs that must hear nothing, quiet first; their (ARP, ND) counts.
    pub(super) fn quiet(&mut self, who: &[usize]) -> Vec<(u64, u64)> {
        let mut gs: Vec<&mut Guest> =
            self.others.iter_mut().enumerate().filter(|(i, _)| who.contains(i)).map(|(_, g)| g).collect();
        quiet_neighbours(&mut gs)
    }

    /// Checks that the VMs `who` heard no ARP, NS, NA or redirect frame since `before`.
    pub(super) fn still_quiet(&mut self, tag: &str, who: &[usize], before: &[(u64, u64)]) {
        let now: Vec<(u64, u64)> =
            who.iter().map(|i| (self.others[*i].arp_count(), self.others[*i].nd_count())).collect();
        let names: Vec<&str> = who.iter().map(|i| OTHERS[*i].0).collect();
        assert_eq!(now, before, "[{tag}] {names:?} received ARP or ND frames ((ARP, ND) before/after)");
    }
}

/// The longest "gap AT_MS LEN_MS" line the stream client writing `log` in `g` printed
/// after its first `seen` ones; and how many there are now.
fn new_gaps(g: &mut Guest, seen: usize, log: &str) -> (f64, usize) {
    let out = g.run(&format!("grep '^gap ' {log} || true"));
    let gaps: Vec<f64> = out.lines().filter_map(|l| l.split_whitespace().nth(2).and_then(|w| w.parse().ok())).collect();
    (gaps.iter().skip(seen).copied().fold(0.0, f64::max), gaps.len())
}
