//! The leaf's data plane: Linux routing in the leaf's network namespace, programmed with
//! iproute2 and /proc/sys. Downlinks carry the anycast gateway MAC and IPs (as /32s: the
//! leaf never ARPs across a subnet towards its hosts) with proxy ARP on, so the kernel
//! answers ARP for addresses routed elsewhere and never for an address on the asking
//! downlink (no hair-pinning). Local hosts get a /32 and a permanent neighbour entry;
//! remote hosts a /32 via the leaf that advertised them, so the neighbour cache holds one
//! entry per remote leaf, not one per remote VM.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context, Result};
use pipeline::MacAddr;

pub struct Kernel {
    pub protocol: u8,
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value).with_context(|| format!("setting {path} = {value}"))
}

impl Kernel {
    fn ip(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
        if !out.status.success() {
            bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Forwarding on, and no routes left from an earlier run.
    pub fn setup(&self) -> Result<()> {
        sysctl("net/ipv4/ip_forward", "1")?;
        // A leaf routes a VM's frame back down the downlink it came from when the
        // destination moved behind the same host: no ICMP redirect may tell the VM to go
        // direct (it would ARP, and the segment would hear it). The interface's value is
        // OR-ed with `all`.
        sysctl("net/ipv4/conf/all/send_redirects", "0")?;
        self.ip(&["-4", "route", "flush", "proto", &self.protocol.to_string()])
    }

    /// A downlink: the anycast MAC and gateway addresses, proxy ARP answering at once.
    pub fn setup_downlink(&self, iface: &str, anycast: MacAddr, gateways: &[Ipv4Addr]) -> Result<()> {
        self.ip(&["link", "set", "dev", iface, "address", &anycast.to_string()])?;
        for g in gateways {
            self.ip(&["addr", "replace", &format!("{g}/32"), "dev", iface])?;
        }
        sysctl(&format!("net/ipv4/conf/{iface}/proxy_arp"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/forwarding"), "1")?;
        sysctl(&format!("net/ipv4/conf/{iface}/send_redirects"), "0")?;
        // Linux delays proxied answers by up to 0.8 s by default.
        sysctl(&format!("net/ipv4/neigh/{iface}/proxy_delay"), "0")?;
        self.ip(&["link", "set", "dev", iface, "up"])
    }

    pub fn route_local(&self, ip: Ipv4Addr, mac: MacAddr, iface: &str) -> Result<()> {
        self.ip(&["neigh", "replace", &ip.to_string(), "lladdr", &mac.to_string(), "dev", iface, "nud", "permanent"])?;
        self.ip(&["-4", "route", "replace", &format!("{ip}/32"), "dev", iface, "proto", &self.protocol.to_string()])
    }

    pub fn route_remote(&self, ip: Ipv4Addr, nexthop: Ipv4Addr, was_on: Option<&str>) -> Result<()> {
        self.ip(&[
            "-4",
            "route",
            "replace",
            &format!("{ip}/32"),
            "via",
            &nexthop.to_string(),
            "proto",
            &self.protocol.to_string(),
        ])?;
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        Ok(())
    }

    pub fn unroute(&self, ip: Ipv4Addr, was_on: Option<&str>) -> Result<()> {
        // Already gone is fine.
        let _ = self.ip(&["-4", "route", "del", &format!("{ip}/32"), "proto", &self.protocol.to_string()]);
        if let Some(iface) = was_on {
            self.forget_neighbour(ip, iface);
        }
        Ok(())
    }

    fn forget_neighbour(&self, ip: Ipv4Addr, iface: &str) {
        let _ = self.ip(&["neigh", "del", &ip.to_string(), "dev", iface]);
    }
}
