//! Persistent state: segments and attachments, written atomically (temporary file, fsync,
//! rename, fsync of the directory) after every change and restored at start-up.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::{Attach, Segment, Underlay};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// The uplink's VXLAN underlay, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay: Option<Underlay>,
    #[serde(default)]
    pub attachments: Vec<Attach>,
    /// Attachments whose restore failed: kept, with the reason, and tried again at the next
    /// start or on request (`vsctl retry`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedAttachment>,
}

/// An attachment that could not be made again, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedAttachment {
    pub attachment: Attach,
    pub error: String,
}

impl State {
    /// Reads the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> anyhow::Result<State> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("state file {} is corrupt: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read state file {}: {e}", path.display())),
        }
    }

    /// Writes the state so that a crash leaves either the old or the new file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = std::env::temp_dir().join(format!("roam-state-{}", std::process::id()));
        let path = dir.join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let s = State {
            segments: vec![Segment {
                segment: pipeline::SegmentId::new(100).unwrap(),
                vlan: pipeline::VlanId::new(100),
                mac: "00:00:5e:00:01:01".parse().unwrap(),
                gateway: None,
                subnets: vec![],
                arp_responder: false,
                native: false,
                vni: None,
            }],
            underlay: Some(crate::api::Underlay {
                local: "192.168.100.2".parse().unwrap(),
                mac: None,
                leaf: vec!["192.168.100.1".parse().unwrap()],
                leaf_macs: Default::default(),
                mtu: 1500,
            }),
            attachments: vec![],
            failed: vec![],
        };
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        assert!(!path.with_extension("tmp").exists());
        std::fs::write(&path, "{oops").unwrap();
        assert!(State::load(&path).unwrap_err().to_string().contains("corrupt"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
