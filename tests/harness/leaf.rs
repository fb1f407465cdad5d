//! A leaf in a network namespace, and frame captures on it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A leaf in a network namespace: a veth whose leaf end holds the anycast gateway's MAC
/// and IP. The host end is vswitchd's uplink (`net_af_packet`).
pub struct Leaf {
    pub ns: String,
    pub host_if: String,
    pub leaf_if: String,
}

pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Leaf {
    /// A leaf holding the anycast gateway's MAC and address itself (no leafd).
    pub fn new(tag: &str, gateway_mac: &str, gateway_cidr: &str) -> Leaf {
        let leaf = Leaf::bare(tag);
        leaf.exec(&["ip", "link", "set", &leaf.leaf_if, "address", gateway_mac]);
        leaf.exec(&["ip", "addr", "add", gateway_cidr, "dev", &leaf.leaf_if]);
        leaf
    }

    /// A namespace and a veth pair, the leaf end up and bare (leafd configures it).
    pub fn bare(tag: &str) -> Leaf {
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let leaf = Leaf { ns: format!("roam-leaf-{id}"), host_if: format!("rh{id}"), leaf_if: format!("rl{id}") };
        let _ = Command::new("ip").args(["netns", "del", &leaf.ns]).output();
        ip(&["netns", "add", &leaf.ns]);
        ip(&["link", "add", &leaf.host_if, "type", "veth", "peer", "name", &leaf.leaf_if]);
        ip(&["link", "set", &leaf.leaf_if, "netns", &leaf.ns]);
        ip(&["link", "set", &leaf.host_if, "up"]);
        leaf.exec(&["ip", "link", "set", &leaf.leaf_if, "up"]);
        leaf.exec(&["ip", "link", "set", "lo", "up"]);
        leaf
    }

    /// Runs a command in the namespace; it must succeed.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.ns]).args(cmd).output().expect("ip netns exec");
        assert!(out.status.success(), "{}: {}", cmd.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// A tenant's routing domain behind this leaf: its own namespace holding a VXLAN
    /// device for `vni` whose UDP socket stays in the leaf's namespace (on `local`, towards
    /// `remote`), with the tenant's gateway MAC and address on it. The returned `Leaf`'s
    /// `leaf_if` is that device (it has no veth: `host_if` is empty).
    pub fn tenant(&self, vni: u32, local: &str, remote: &str, gateway_mac: &str, gateway_cidr: &str) -> Leaf {
        let t = self.tenant_bare(vni, local, remote);
        t.exec(&["ip", "link", "set", &t.leaf_if, "address", gateway_mac]);
        t.exec(&["ip", "addr", "add", gateway_cidr, "dev", &t.leaf_if]);
        t
    }

    /// As [`Leaf::tenant`], the device up and bare (a tenant's leafd configures it).
    pub fn tenant_bare(&self, vni: u32, local: &str, remote: &str) -> Leaf {
        let t = Leaf { ns: format!("{}-t{vni}", self.ns), host_if: String::new(), leaf_if: format!("vx{vni}") };
        let _ = Command::new("ip").args(["netns", "del", &t.ns]).output();
        ip(&["netns", "add", &t.ns]);
        self.vxlan_into(&t, &t.leaf_if, vni, local, remote, 4789);
        t.exec(&["ip", "link", "set", "lo", "up"]);
        t
    }

    /// A VXLAN device `name` for `vni` in the tenant namespace `t`, its UDP socket in this
    /// leaf's namespace (from `local` to `remote`, destination port `port`), up.
    pub fn vxlan_into(&self, t: &Leaf, name: &str, vni: u32, local: &str, remote: &str, port: u16) {
        let (vni, port) = (vni.to_string(), port.to_string());
        self.exec(&[
            "ip", "link", "add", name, "type", "vxlan", "id", &vni, "local", local, "remote", remote, "dstport", &port,
        ]);
        self.exec(&["ip", "link", "set", name, "netns", &t.ns]);
        t.exec(&["ip", "link", "set", name, "up"]);
    }

    /// Sends each frame once on the leaf's interface.
    pub fn send(&self, frames: &[Vec<u8>]) {
        const SCRIPT: &str = r#"
import socket, sys, binascii
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for h in sys.argv[2:]:
    s.send(binascii.unhexlify(h))
"#;
        let hex: Vec<String> = frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
        let mut cmd = vec!["python3", "-c", SCRIPT, &self.leaf_if];
        cmd.extend(hex.iter().map(String::as_str));
        self.exec(&cmd);
    }

    /// The uplink device string for vswitchd.
    pub fn uplink(&self) -> String {
        format!("net_af_packet0,iface={}", self.host_if)
    }

    /// Captures frames arriving on the leaf's interface for `secs` seconds (in the
    /// background); `Capture::frames` returns them.
    pub fn capture(&self, secs: f64) -> Capture {
        self.capture_on(&self.leaf_if, secs)
    }

    /// As [`Leaf::capture`], on another interface of the namespace.
    pub fn capture_on(&self, iface: &str, secs: f64) -> Capture {
        // Kernel receive timestamps (SO_TIMESTAMPNS): right even when the capture itself
        // waits for the CPU, so it runs at the guests' low priority.
        const SCRIPT: &str = r#"
import socket, struct, sys, time, binascii
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.setsockopt(socket.SOL_SOCKET, 35, 1)
s.bind((sys.argv[1], 0))
s.settimeout(0.2)
print('capturing', flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        d, anc, _, a = s.recvmsg(65535, 1024)
    except socket.timeout:
        continue
    at = time.time_ns() // 1000
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == 35 and len(data) >= 16:
            sec, nsec = struct.unpack('qq', data[:16])
            at = sec * 1000000 + nsec // 1000
    if a[2] != 4:
        print('%d %s' % (at, binascii.hexlify(d[:64]).decode()), flush=True)
"#;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nice", "-n", "10", "python3", "-c", SCRIPT, iface, &secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the capture");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("capture start");
        assert_eq!(first.trim(), "capturing");
        Capture { child, out }
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        if !self.host_if.is_empty() {
            let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

pub struct Capture {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Capture {
    /// Waits for the capture to end; returns each frame's first 64 bytes.
    pub fn frames(self) -> Vec<Vec<u8>> {
        self.timed_frames().into_iter().map(|(_, f)| f).collect()
    }

    /// As [`Capture::frames`], each with when it was captured (µs since the epoch).
    pub fn timed_frames(mut self) -> Vec<(u64, Vec<u8>)> {
        // Read to the end first: a capture that fills the pipe waits for its reader.
        let lines: Vec<String> = (&mut self.out).lines().map_while(Result::ok).collect();
        let _ = self.child.wait();
        lines
            .iter()
            .filter_map(|line| {
                let (at, hex) = line.split_once(' ')?;
                let bytes = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok());
                Some((at.parse().ok()?, bytes.collect()))
            })
            .collect()
    }
}
