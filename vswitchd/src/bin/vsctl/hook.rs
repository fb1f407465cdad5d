//! `vsctl libvirt-hook`: libvirt's qemu hook (see `vswitchd::libvirt` and docs/libvirt.md).

use anyhow::Result;
use vswitchd::api::{Client, ClientError, ErrorCode, Request};

/// `libvirt-hook`: see `vswitchd::libvirt`. Exits 0 at once for steps and domains that are
/// not Roam's, so that a stopped vswitchd never blocks other domains.
pub(crate) fn libvirt_hook(socket: &std::path::Path, domain: &str, operation: &str, sub_operation: &str) -> Result<()> {
    use std::io::Read;
    use vswitchd::libvirt::{plan, step, Step};
    let what = step(operation, sub_operation);
    if what == Step::Nothing {
        return Ok(());
    }
    let mut xml = String::new();
    std::io::stdin().read_to_string(&mut xml)?;
    let plan = plan(domain, &xml).map_err(|e| anyhow::anyhow!("domain {domain}: {e}"))?;
    if plan.ports.is_empty() {
        return Ok(());
    }
    let socket = plan.socket.as_deref().unwrap_or(socket);
    let mut client = Client::connect(socket, Some(std::time::Duration::from_secs(30)))?;
    match what {
        Step::Attach => {
            // A port of this name left by a run whose release never came (libvirtd killed)
            // is replaced.
            let show = client.show()?;
            let mut done = Vec::new();
            for a in &plan.ports {
                if show.vms.iter().any(|v| v.name == a.name) || show.failed.iter().any(|f| f.name == a.name) {
                    client.call(&Request::Detach { name: a.name.clone() })?;
                }
                if let Err(e) = client.call(&Request::Attach(a.clone())) {
                    // All or nothing: the domain does not start with half its ports.
                    for name in done {
                        let _ = client.call(&Request::Detach { name });
                    }
                    return Err(anyhow::Error::new(e).context(format!("domain {domain}: attaching {}", a.name)));
                }
                eprintln!("vsctl libvirt-hook: {domain}: attached {} ({}, segment {})", a.name, a.mac, a.segment);
                done.push(a.name.clone());
            }
        }
        Step::Detach => {
            let mut failed = None;
            for a in &plan.ports {
                match client.call(&Request::Detach { name: a.name.clone() }) {
                    Ok(_) => eprintln!("vsctl libvirt-hook: {domain}: detached {}", a.name),
                    Err(ClientError::Refused { code: ErrorCode::NotFound, .. }) => {}
                    Err(e) => {
                        failed = Some(anyhow::Error::new(e).context(format!("domain {domain}: detaching {}", a.name)))
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Step::Nothing => {}
    }
    Ok(())
}
