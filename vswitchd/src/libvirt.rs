//! The libvirt hook (`vsctl libvirt-hook`, installed as `/etc/libvirt/hooks/qemu.d/roam`):
//! libvirt runs it at each step of a domain's life with the domain XML on stdin. A domain's
//! `<interface type='vhostuser'>` whose MAC its Roam metadata names is attached to
//! vswitchd before QEMU starts (`prepare`, also on a migration's destination) and detached
//! once QEMU is gone (`release`, also on a migration's source):
//!
//! ```xml
//! <metadata>
//!   <roam:switch xmlns:roam="urn:roam:libvirt:1" socket="/run/roam/vswitchd.sock">
//!     <roam:port mac="52:54:00:00:00:01" segment="100" name="vm1" port-security="yes">
//!       <roam:ip>10.1.1.1</roam:ip>
//!       <roam:ip>2001:db8:1::1</roam:ip>
//!     </roam:port>
//!   </roam:switch>
//! </metadata>
//! ```
//!
//! `socket` (the control socket) and `name` (the port's name in vswitchd: the domain's by
//! default, then `<domain>-1`, `-2` ... for further ports) are optional; `segment` and
//! `mac` are not. The socket path and queue count come from the interface itself.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::api::{Attach, MacAddr, SegmentId};

/// The namespace of Roam's metadata element.
pub const NAMESPACE: &str = "urn:roam:libvirt:1";

/// What the hook does for a domain: attach these ports on vswitchd at `socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// vswitchd's control socket, if the metadata names one.
    pub socket: Option<PathBuf>,
    pub ports: Vec<Attach>,
}

/// Why a domain's XML cannot be acted on (libvirt shows the message when it refuses to
/// start the domain).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the domain XML does not parse: {0}")]
    Xml(#[from] roxmltree::Error),
    #[error("roam:port {0}")]
    Port(String),
}

/// Reads the Roam ports of domain `domain` from its XML: none when it has no Roam metadata.
pub fn plan(domain: &str, xml: &str) -> Result<Plan, HookError> {
    let doc = roxmltree::Document::parse(xml)?;
    let root = doc.root_element();
    let Some(switch) = root
        .children()
        .find(|n| n.has_tag_name("metadata"))
        .and_then(|m| m.children().find(|n| n.has_tag_name((NAMESPACE, "switch"))))
    else {
        return Ok(Plan { socket: None, ports: Vec::new() });
    };
    // The domain's vhost-user interfaces by MAC: (socket path, mode, queues).
    let interfaces: Vec<(MacAddr, Option<String>, Option<String>, u16)> = root
        .descendants()
        .filter(|n| n.has_tag_name("interface") && n.attribute("type") == Some("vhostuser"))
        .filter_map(|i| {
            let child = |tag: &str| i.children().find(|c| c.has_tag_name(tag));
            let mac = child("mac")?.attribute("address")?.parse().ok()?;
            let source = child("source");
            let queues = child("driver").and_then(|d| d.attribute("queues")).and_then(|q| q.parse().ok()).unwrap_or(1);
            Some((
                mac,
                source.and_then(|s| s.attribute("path")).map(String::from),
                source.and_then(|s| s.attribute("mode")).map(String::from),
                queues,
            ))
        })
        .collect();
    let mut ports = Vec::new();
    for (n, p) in switch.children().filter(|n| n.has_tag_name((NAMESPACE, "port"))).enumerate() {
        let attr = |a: &str| p.attribute(a).ok_or_else(|| HookError::Port(format!("#{}: no {a} attribute", n + 1)));
        let mac: MacAddr = attr("mac")?
            .parse()
            .map_err(|e| HookError::Port(format!("#{}: mac {:?}: {e}", n + 1, p.attribute("mac"))))?;
        let segment: SegmentId = attr("segment")?
            .parse()
            .map_err(|e| HookError::Port(format!("{mac}: segment {:?}: {e}", p.attribute("segment"))))?;
        let Some((_, path, mode, queues)) = interfaces.iter().find(|i| i.0 == mac) else {
            return Err(HookError::Port(format!(
                "{mac}: the domain has no <interface type='vhostuser'> with that MAC"
            )));
        };
        let Some(path) = path else {
            return Err(HookError::Port(format!("{mac}: its interface has no <source path=...>")));
        };
        // QEMU must be the socket's server: vswitchd connects to it (and reconnects after
        // its own restart without the VM noticing).
        if mode.as_deref() != Some("server") {
            return Err(HookError::Port(format!(
                "{mac}: its interface's <source> must have mode='server' (QEMU serves the socket, vswitchd connects)"
            )));
        }
        let name = match p.attribute("name") {
            Some(name) => name.to_string(),
            None if n == 0 => domain.to_string(),
            None => format!("{domain}-{n}"),
        };
        let port_security = match p.attribute("port-security") {
            None | Some("yes") => true,
            Some("no") => false,
            Some(other) => return Err(HookError::Port(format!("{mac}: port-security {other:?}: yes or no"))),
        };
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        for ip in p.children().filter(|c| c.has_tag_name((NAMESPACE, "ip"))) {
            let text = ip.text().unwrap_or("").trim();
            match text.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => ipv4.push(a),
                Ok(IpAddr::V6(a)) => ipv6.push(a),
                Err(_) => return Err(HookError::Port(format!("{mac}: ip {text:?} is no IP address"))),
            }
        }
        ports.push(Attach {
            name,
            socket: Some(PathBuf::from(path)),
            device: None,
            mac,
            segment,
            ipv4,
            ipv6,
            port_security,
            server: false,
            queues: *queues,
            extra_macs: Vec::new(),
        });
    }
    Ok(Plan { socket: switch.attribute("socket").map(PathBuf::from), ports })
}

/// What the hook does at a libvirt operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Before QEMU starts (a start, a restore, or a migration's destination).
    Attach,
    /// After QEMU is gone (a stop, a crash, or a migration's source).
    Detach,
    /// Anything else: nothing to do.
    Nothing,
}

/// The step for libvirt's `operation` and `sub-operation` (libvirt's hook documentation).
pub fn step(operation: &str, sub_operation: &str) -> Step {
    match (operation, sub_operation) {
        ("prepare", "begin") => Step::Attach,
        ("release", "end") => Step::Detach,
        _ => Step::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = r#"<domain type='qemu'>
  <name>vm1</name>
  <metadata>
    <roam:switch xmlns:roam="urn:roam:libvirt:1" socket="/run/roam/h1.sock">
      <roam:port mac="52:54:00:00:00:01" segment="100">
        <roam:ip>10.1.1.1</roam:ip>
        <roam:ip> 2001:db8:1::1 </roam:ip>
      </roam:port>
      <roam:port mac="52:54:00:00:00:02" segment="200" port-security="no"/>
    </roam:switch>
    <other:thing xmlns:other="urn:other"/>
  </metadata>
  <devices>
    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:01'/>
      <source type='unix' path='/run/roam/vm1.sock' mode='server'/>
      <model type='virtio'/>
      <driver queues='2'/>
    </interface>
    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:02'/>
      <source type='unix' path='/run/roam/vm1-b.sock' mode='server'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:03'/>
      <source network='default'/>
    </interface>
  </devices>
</domain>"#;

    #[test]
    fn reads_the_ports_from_metadata_and_interfaces() {
        let p = plan("vm1", DOMAIN).unwrap();
        assert_eq!(p.socket, Some(PathBuf::from("/run/roam/h1.sock")));
        assert_eq!(p.ports.len(), 2);
        let (a, b) = (&p.ports[0], &p.ports[1]);
        assert_eq!((a.name.as_str(), a.segment.get(), a.queues, a.port_security), ("vm1", 100, 2, true));
        assert_eq!(a.socket, Some(PathBuf::from("/run/roam/vm1.sock")));
        assert_eq!((a.ipv4.len(), a.ipv6.len()), (1, 1));
        assert_eq!((b.name.as_str(), b.segment.get(), b.queues, b.port_security), ("vm1-1", 200, 1, false));
        assert!(!a.server, "QEMU is the server");
    }

    #[test]
    fn a_domain_without_roam_metadata_is_left_alone() {
        let p = plan("x", "<domain><name>x</name><devices/></domain>").unwrap();
        assert!(p.ports.is_empty() && p.socket.is_none());
    }

    #[test]
    fn bad_metadata_is_one_clear_error() {
        let cases = [
            (DOMAIN.replace("mode='server'", "mode='client'"), "mode='server'"),
            (DOMAIN.replace(r#"segment="100""#, ""), "no segment attribute"),
            (DOMAIN.replace("10.1.1.1<", "10.1.1.x<"), "no IP address"),
            (
                DOMAIN.replace("<mac address='52:54:00:00:00:02'/>", "<mac address='52:54:00:00:00:09'/>"),
                "no <interface",
            ),
            (DOMAIN.replace("</domain>", ""), "does not parse"),
        ];
        for (xml, want) in cases {
            let e = plan("vm1", &xml).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn steps_follow_libvirts_operations() {
        assert_eq!(step("prepare", "begin"), Step::Attach);
        assert_eq!(step("release", "end"), Step::Detach);
        for (op, sub) in
            [("start", "begin"), ("started", "begin"), ("stopped", "end"), ("migrate", "begin"), ("reconnect", "begin")]
        {
            assert_eq!(step(op, sub), Step::Nothing, "{op} {sub}");
        }
    }
}
