//! Test traffic: frame builders, pcap files for `net_pcap`, and a sender on a leaf
//! namespace's interface (the uplink's far end).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Leaf;

/// The anycast gateway's MAC, the hostile source VM's, and one nobody has.
pub const GATEWAY: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
pub const SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const UNKNOWN: [u8; 6] = [0x02, 0x00, 0x00, 0x99, 0x99, 0x99];

/// The MAC of churned VM port `k` (the stress tests reuse four, round after round).
pub fn churn_mac(k: usize) -> [u8; 6] {
    [0x02, 0x00, 0x00, 0x00, 0x01, k as u8]
}

/// What a VM port sends: frames to the churned MACs, floods, unknown unicast, and the
/// hostile kinds of the pipeline's tests (runts, tags, spoofed sources, bad ARP, a GARP).
pub fn vm_frames() -> Vec<Vec<u8>> {
    let me = [10, 1, 1, 100];
    let mut v: Vec<Vec<u8>> = (0..4).map(|k| ipv4(churn_mac(k), SRC, me, [10, 1, 1, 10 + k as u8])).collect();
    v.push(arp([0xff; 6], SRC, 1, me, [10, 1, 1, 11]));
    v.push(ipv4(UNKNOWN, SRC, me, [10, 1, 1, 77]));
    v.push(eth([0x33, 0x33, 0, 0, 0, 1], SRC, 0x86dd, &[0x60; 40]));
    v.push(eth([0xff; 6], SRC, 0x0806, &[0; 4])); // truncated ARP
    v.push(ipv4(churn_mac(1), [0x02, 0, 0, 0, 0, 0x66], me, [10, 1, 1, 11])); // spoofed source
    v.push(eth(churn_mac(2), SRC, 0x8100, &[0, 100, 8, 0, 0x45])); // tagged from a VM
    v.push(ipv4(churn_mac(3), [0x01, 0, 0x5e, 0, 0, 1], me, [10, 1, 1, 13])); // group source
    v.push(arp([0xff; 6], SRC, 1, me, me)); // a gratuitous ARP: an announcement
    v.push(vec![0xff; 10]); // a runt
    v
}

/// What the leaf sends down the uplink (the segment is the trunk's native one).
pub fn uplink_frames() -> Vec<Vec<u8>> {
    let gw = [10, 1, 1, 254];
    let mut v: Vec<Vec<u8>> =
        (0..4).map(|k| ipv4(churn_mac(k), GATEWAY, [10, 9, 9, 9], [10, 1, 1, 10 + k as u8])).collect();
    v.push(arp([0xff; 6], GATEWAY, 1, gw, [10, 1, 1, 12]));
    v.push(ipv4(UNKNOWN, GATEWAY, [10, 9, 9, 9], [10, 1, 1, 77]));
    v.push(eth([0x01, 0, 0x5e, 0, 0, 1], GATEWAY, 0x0800, &[0x45; 20]));
    v.push(eth(churn_mac(0), GATEWAY, 0x8100, &[0, 7, 8, 0, 0x45])); // a VLAN nobody has
    v.push(ipv4(churn_mac(2), [0; 6], [10, 9, 9, 9], [10, 1, 1, 12])); // zero source
    v
}

pub fn mac_str(m: [u8; 6]) -> String {
    roam_api::MacAddr(m).to_string()
}

/// The bytes of a MAC written as `52:54:00:12:34:56`.
pub fn mac_bytes(s: &str) -> [u8; 6] {
    s.parse::<roam_api::MacAddr>().unwrap_or_else(|e| panic!("{e}")).0
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
    let header = [
        &0xa1b2c3d4u32.to_le_bytes()[..],
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &[0; 8],
        &65535u32.to_le_bytes(),
        &1u32.to_le_bytes(),
    ]
    .concat();
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
