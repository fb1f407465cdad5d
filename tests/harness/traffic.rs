//! Test traffic: frame builders, pcap files for `net_pcap`, and a sender on a leaf
//! namespace's interface (the uplink's far end).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Leaf;

pub fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [&dst[..], &src[..], &ethertype.to_be_bytes()[..], payload].concat();
    f.resize(f.len().max(60), 0);
    f
}

pub fn ipv4(dst: [u8; 6], src: [u8; 6], from: [u8; 4], to: [u8; 4]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&from);
    ip.extend_from_slice(&to);
    ip.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
    eth(dst, src, 0x0800, &ip)
}

pub fn arp(dst: [u8; 6], src: [u8; 6], op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&src);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    eth(dst, src, 0x0806, &a)
}

/// A classic pcap file of `frames`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut f = std::fs::File::create(path).expect("pcap file");
    // Magic, version 2.4, zone, accuracy, snap length, Ethernet.
    let header = [&0xa1b2c3d4u32.to_le_bytes()[..], &2u16.to_le_bytes(), &4u16.to_le_bytes(), &[0; 8], &65535u32.to_le_bytes(), &1u32.to_le_bytes()].concat();
    f.write_all(&header).unwrap();
    for fr in frames {
        for w in [0u32, 0, fr.len() as u32, fr.len() as u32] {
            f.write_all(&w.to_le_bytes()).unwrap();
        }
        f.write_all(fr).unwrap();
    }
}

/// Sends `frames` round-robin on the leaf's interface, in bursts with a short sleep
/// between (tens of thousands a second), until killed.
pub fn start_sender(leaf: &Leaf, frames: &[Vec<u8>]) -> Child {
    const SCRIPT: &str = r#"
import socket, sys, time, binascii
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
frames = [binascii.unhexlify(h) for h in sys.argv[2:]]
while True:
    for _ in range(4):
        for f in frames:
            s.send(f)
    time.sleep(0.001)
"#;
    let hex: Vec<String> = frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
    Command::new("ip")
        .args(["netns", "exec", &leaf.ns, "python3", "-c", SCRIPT, &leaf.leaf_if])
        .args(&hex)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the uplink sender")
}

