//! Packet-rate workloads: pcap files of frames that one source port sends into a switch.
//!
//! Sources are the "local vNIC" MACs behind the source port. Destinations are a mix of:
//! - **local**: MACs behind the three sink ports (what the switch must look up and
//!   switch locally; the table holds `table_macs` of them);
//! - **remote**: the anycast gateway MAC (the uplink; a guest resolves remote hosts to
//!   it through the leaf's proxy ARP);
//! - **unknown**: unicast MACs in no table (vswitchd rewrites them to the anycast MAC and
//!   sends them up; a learning switch floods them);
//! - **broadcast**: ARP requests.

use std::io::Write;
use std::path::Path;

use anyhow::{ensure, Result};

use crate::Rng;

pub const ANYCAST: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
pub const SINKS: usize = 3;

/// A workload's shape.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Frames in the file (the replay loops over them).
    pub frames: usize,
    /// Frame length without the FCS (60 for 64-byte frames on the wire).
    pub frame_len: usize,
    /// Source MACs behind the source port.
    pub sources: usize,
    /// MACs behind the sinks (the switch's table size, give or take the sources).
    pub table_macs: usize,
    /// Percentages of remote, unknown and broadcast frames; the rest are local.
    pub remote_pct: f64,
    pub unknown_pct: f64,
    pub broadcast_pct: f64,
    pub seed: u64,
}

impl Workload {
    /// The mixed workload: 60 % local, 27.5 % remote, 10 % unknown, 2.5 % broadcast.
    pub fn mixed(table_macs: usize) -> Workload {
        Workload {
            frames: 32768,
            frame_len: 60,
            sources: 256,
            table_macs,
            remote_pct: 27.5,
            unknown_pct: 10.0,
            broadcast_pct: 2.5,
            seed: 0x5eed,
        }
    }

    /// The i-th source MAC.
    pub fn source(i: usize) -> [u8; 6] {
        [0x52, 0x54, 0x00, 0x10, (i >> 8) as u8, i as u8]
    }

    /// The first MAC behind sink `k` (0-based) and how many there are.
    pub fn sink_range(&self, k: usize) -> ([u8; 6], usize) {
        let per = self.table_macs.div_ceil(SINKS);
        let count = per.min(self.table_macs.saturating_sub(k * per));
        ([0x02, 0x00, k as u8 + 1, 0, 0, 0], count)
    }

    /// The i-th MAC behind sink `k`.
    pub fn sink_mac(k: usize, i: usize) -> [u8; 6] {
        [0x02, 0x00, k as u8 + 1, (i >> 16) as u8, (i >> 8) as u8, i as u8]
    }

    /// Every frame, in file order.
    pub fn build(&self) -> Result<Vec<Vec<u8>>> {
        ensure!(self.frame_len >= 60 && self.frame_len <= 1514, "frame length must be 60..=1514");
        ensure!(
            (1..=65536).contains(&self.sources) && (SINKS..=(SINKS << 24)).contains(&self.table_macs),
            "sources 1..=65536, table MACs 3..=50M"
        );
        ensure!(
            self.remote_pct + self.unknown_pct + self.broadcast_pct <= 100.0,
            "the shares add up to more than 100 %"
        );
        let mut rng = Rng(self.seed | 1);
        let mut frames = Vec::with_capacity(self.frames);
        for n in 0..self.frames {
            let src = Workload::source((rng.next() % self.sources as u64) as usize);
            let roll = (rng.next() % 10_000) as f64 / 100.0;
            let frame = if roll < self.broadcast_pct {
                arp_request(src, [10, 1, (n >> 8) as u8, n as u8])
            } else {
                let dst = if roll < self.broadcast_pct + self.unknown_pct {
                    let r = rng.next();
                    [0x02, 0xff, (r >> 24) as u8, (r >> 16) as u8, (r >> 8) as u8, r as u8]
                } else if roll < self.broadcast_pct + self.unknown_pct + self.remote_pct {
                    ANYCAST
                } else {
                    let i = (rng.next() % self.table_macs as u64) as usize;
                    let per = self.table_macs.div_ceil(SINKS);
                    Workload::sink_mac(i / per, i % per)
                };
                udp(dst, src, self.frame_len, n as u16)
            };
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Writes the workload as a pcap file.
    pub fn write_pcap(&self, path: &Path) -> Result<()> {
        write_pcap(path, &self.build()?)
    }
}

/// The vhost-user workload: a VM with two vNICs sends out of vNIC 0, from `macs` source MACs
/// behind it, to `macs` MACs behind vNIC 1 (the switch must look each up), UDP frames of
/// one length. With one MAC each side, the MACs are the vNICs' own.
#[derive(Debug, Clone)]
pub struct VmPair {
    pub macs: usize,
    pub frame_len: usize,
    pub frames: usize,
    pub seed: u64,
}

impl VmPair {
    /// vNIC `k`'s own MAC (k = 0, 1).
    pub fn vnic(k: usize) -> [u8; 6] {
        VmPair::behind(k, 0)
    }

    /// The i-th MAC behind vNIC `k` (i = 0 is the vNIC's own).
    pub fn behind(k: usize, i: usize) -> [u8; 6] {
        // Consecutive: behind(k, i) is vnic(k) + i as a 48-bit number (a MAC range).
        [0x52, 0x54, 0x00, 0x20 + k as u8, (i >> 8) as u8, i as u8]
    }

    /// Every frame, in file order.
    pub fn build(&self) -> Result<Vec<Vec<u8>>> {
        ensure!(self.frame_len >= 60 && self.frame_len <= 1514, "frame length must be 60..=1514");
        ensure!((1..=65536).contains(&self.macs), "MACs per vNIC 1..=65536");
        let mut rng = Rng(self.seed | 1);
        Ok((0..self.frames)
            .map(|n| {
                let (s, d) = ((rng.next() % self.macs as u64) as usize, (rng.next() % self.macs as u64) as usize);
                udp(VmPair::behind(1, d), VmPair::behind(0, s), self.frame_len, n as u16)
            })
            .collect())
    }
}

fn udp(dst: [u8; 6], src: [u8; 6], len: usize, id: u16) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 1, src[4], src[5]]);
    ip[16..20].copy_from_slice(&[10, 2, dst[4], dst[5]]);
    let sum = checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f[34..36].copy_from_slice(&4000u16.to_be_bytes());
    f[36..38].copy_from_slice(&4001u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

fn arp_request(src: [u8; 6], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&src);
    f[28..32].copy_from_slice(&[10, 1, src[4], src[5]]);
    f[38..42].copy_from_slice(&target);
    f
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A classic pcap file (microsecond timestamps, Ethernet link type).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    for (i, f) in frames.iter().enumerate() {
        w.write_all(&(i as u32 / 1_000_000).to_le_bytes())?;
        w.write_all(&(i as u32 % 1_000_000).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(f)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_the_shares_asked_for_and_valid_frames() {
        let w = Workload::mixed(1024);
        let frames = w.build().unwrap();
        assert_eq!(frames.len(), 32768);
        let count =
            |f: &dyn Fn(&Vec<u8>) -> bool| frames.iter().filter(|x| f(x)).count() as f64 / frames.len() as f64 * 100.0;
        let bcast = count(&|f| f[0] == 0xff);
        let remote = count(&|f| f[0..6] == ANYCAST);
        let unknown = count(&|f| f[0] == 0x02 && f[1] == 0xff);
        let local = count(&|f| f[0] == 0x02 && f[1] == 0x00);
        for (got, want) in [(bcast, 2.5), (remote, 27.5), (unknown, 10.0), (local, 60.0)] {
            assert!((got - want).abs() < 1.0, "{got} vs {want}");
        }
        assert!(frames.iter().all(|f| f.len() == 60 && f[6] == 0x52));
        // Local destinations are inside the sinks' ranges.
        for f in frames.iter().filter(|f| f[0] == 0x02 && f[1] == 0x00) {
            let k = f[2] as usize - 1;
            let i = (f[3] as usize) << 16 | (f[4] as usize) << 8 | f[5] as usize;
            assert!(k < SINKS && i < w.sink_range(k).1);
        }
        assert_eq!((0..SINKS).map(|k| w.sink_range(k).1).sum::<usize>(), 1024);
        // IPv4 header checksums verify.
        let f = frames.iter().find(|f| f[12..14] == [8, 0]).unwrap();
        assert_eq!(checksum(&f[14..34]), 0);
    }

    #[test]
    fn the_pcap_file_has_a_header_and_every_record() {
        let dir = std::env::temp_dir().join(format!("roam-pcap-{}", std::process::id()));
        let w = Workload { frames: 10, frame_len: 508, ..Workload::mixed(30) };
        w.write_pcap(&dir).unwrap();
        let bytes = std::fs::read(&dir).unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(&bytes[0..4], &0xa1b2_c3d4u32.to_le_bytes());
        let broadcasts = w.build().unwrap().iter().filter(|f| f[0] == 0xff).count();
        assert_eq!(bytes.len(), 24 + 10 * 16 + (10 - broadcasts) * 508 + broadcasts * 60);
    }

    #[test]
    fn a_vm_pair_sends_from_its_first_vnics_macs_to_its_seconds() {
        let w = VmPair { macs: 1024, frame_len: 1514, frames: 4096, seed: 3 };
        let frames = w.build().unwrap();
        let own: std::collections::HashSet<[u8; 6]> = (0..1024).map(|i| VmPair::behind(0, i)).collect();
        let theirs: std::collections::HashSet<[u8; 6]> = (0..1024).map(|i| VmPair::behind(1, i)).collect();
        assert_eq!((own.len(), theirs.len()), (1024, 1024));
        assert!(own.is_disjoint(&theirs));
        assert_eq!((VmPair::behind(0, 0), VmPair::behind(1, 0)), (VmPair::vnic(0), VmPair::vnic(1)));
        let dsts: std::collections::HashSet<[u8; 6]> = frames.iter().map(|f| f[0..6].try_into().unwrap()).collect();
        assert!(dsts.len() > 1000 && dsts.is_subset(&theirs));
        assert!(frames.iter().all(|f| f.len() == 1514 && own.contains(&f[6..12]) && checksum(&f[14..34]) == 0));
        let two = VmPair { macs: 1, frame_len: 60, frames: 8, seed: 3 }.build().unwrap();
        assert!(two.iter().all(|f| f[0..6] == VmPair::vnic(1) && f[6..12] == VmPair::vnic(0)));
    }
}
