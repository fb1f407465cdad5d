//! A real libvirtd (Debian's, qemu driver) for one test: in a mount namespace of its own,
//! where `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`, `/var/log/libvirt` and
//! `/var/cache/libvirt` are the test's directories, so that it touches nothing of the
//! machine's libvirt and its hooks directory holds Roam's hook (the file `scripts/install`
//! installs, pointed at this build's vsctl). QEMU runs as root without a security driver
//! or cgroups (none of which these test machines give a daemon); everything else is
//! libvirt's own behaviour. virsh reaches it on its socket in the test directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::{bin, root, spawn_logged, wait_for, TestDir};

const STATE_DIRS: [&str; 5] =
    ["/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt"];

pub struct Libvirtd {
    child: Option<Child>,
    pub dir: PathBuf,
    /// virsh's connection URI.
    pub uri: String,
}

impl Libvirtd {
    /// Starts libvirtd with Roam's hook installed; `name` names its directory.
    pub fn start(dir: &TestDir, name: &str) -> Libvirtd {
        Libvirtd::start_with_uuid(dir, name, "8a9e6f1c-0000-4000-8000-000000000001")
    }

    /// As [`Libvirtd::start`], with its host UUID (libvirt refuses to migrate a domain to
    /// a libvirtd with its own UUID: two on one machine need two).
    pub fn start_with_uuid(dir: &TestDir, name: &str, uuid: &str) -> Libvirtd {
        let base = dir.path(&format!("libvirt-{name}"));
        let own = |d: &str| base.join(d.trim_start_matches('/').replace('/', "-"));
        for d in STATE_DIRS {
            std::fs::create_dir_all(own(d)).expect("libvirt state directory");
            // The mount points must exist on the host side (empty, unused by anyone).
            std::fs::create_dir_all(d).expect("libvirt mount point");
        }
        let etc = own("/etc/libvirt");
        let run = own("/run/libvirt");
        std::fs::write(
            etc.join("libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\nunix_sock_rw_perms = \"0700\"\n\
                 host_uuid = \"{uuid}\"\nlog_outputs = \"1:file:{}\"\n",
                run.display(),
                base.join("libvirtd.log").display()
            ),
        )
        .unwrap();
        std::fs::write(
            etc.join("qemu.conf"),
            "user = \"root\"\ngroup = \"root\"\ndynamic_ownership = 0\nremember_owner = 0\nsecurity_driver = \"none\"\n\
             cgroup_controllers = [ ]\nnamespaces = [ ]\nstdio_handler = \"file\"\n",
        )
        .unwrap();
        // The hook as scripts/install writes it, running this build's vsctl.
        let hooks = etc.join("hooks/qemu.d");
        std::fs::create_dir_all(&hooks).unwrap();
        let hook = std::fs::read_to_string(root().join("dist/libvirt/roam-hook"))
            .expect("dist/libvirt/roam-hook")
            .replace("/usr/local/bin/vsctl", &bin("vsctl").display().to_string());
        std::fs::write(hooks.join("roam"), hook).unwrap();
        std::fs::set_permissions(hooks.join("roam"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

        let mut script = String::from("set -e\n");
        for d in STATE_DIRS {
            script += &format!("mount --bind {} {d}\n", own(d).display());
        }
        script += &format!(
            "exec libvirtd --config /etc/libvirt/libvirtd.conf --pid-file {}\n",
            base.join("libvirtd.pid").display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "bash", "-c", &script]);
        let child = spawn_logged(&mut cmd, &base.join("libvirtd.out"), "libvirtd");
        let socket = run.join("libvirt-sock");
        let l = Libvirtd { child: Some(child), uri: format!("qemu:///system?socket={}", socket.display()), dir: base };
        wait_for("libvirtd to answer", Duration::from_secs(30), || l.try_virsh(&["version"]).ok().map(|_| ()));
        l
    }

    /// Runs virsh against this libvirtd: its output, or its error output.
    pub fn try_virsh(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("virsh").arg("-c").arg(&self.uri).args(args).output().expect("running virsh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned() + &text)
        }
    }

    /// Runs virsh; it must succeed.
    pub fn virsh(&self, args: &[&str]) -> String {
        self.try_virsh(args)
            .unwrap_or_else(|e| panic!("virsh {}: {e}\nlibvirtd's log: {}", args.join(" "), self.log_tail()))
    }

    /// The end of libvirtd's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("libvirtd.log")).unwrap_or_default();
        let lines: Vec<&str> =
            log.lines().filter(|l| !l.contains("dmidecode") && !l.contains("udevGetDMIData")).collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The log libvirt keeps of one domain's QEMU (its command line, and what QEMU said).
    pub fn qemu_log(&self, domain: &str) -> String {
        std::fs::read_to_string(self.dir.join("var-log-libvirt").join("qemu").join(format!("{domain}.log")))
            .unwrap_or_default()
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        // Its domains first (their QEMUs are not libvirtd's children once started).
        if let Ok(list) = self.try_virsh(&["list", "--name"]) {
            for d in list.lines().filter(|l| !l.trim().is_empty()) {
                let _ = self.try_virsh(&["destroy", d.trim()]);
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test domain's XML: the test image booted directly (TCG), its vNIC a vhost-user
/// interface served by QEMU at `socket` with Roam's metadata (vswitchd at `vswitchd`,
/// segment 100), its console in `console` and its control shell on `ctl`.
pub struct Domain<'a> {
    pub name: &'a str,
    pub mac: &'a str,
    pub ip: &'a str,
    pub ip6: &'a str,
    pub cmdline: &'a str,
    pub vswitchd: &'a Path,
    pub socket: &'a Path,
    pub console: &'a Path,
    pub ctl: &'a Path,
    /// The interface's `<source mode=…>` (`server` is what Roam needs).
    pub mode: &'a str,
}

impl Domain<'_> {
    /// The domain's UUID, from its name: the same on every host (a migration keeps it).
    pub fn uuid(&self) -> String {
        let n = self.name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        format!("{:08x}-0000-4000-8000-{:012x}", n >> 32, n & 0xffff_ffff_ffff)
    }

    pub fn xml(&self) -> String {
        let (kernel, initrd) = crate::guest_image();
        format!(
            r#"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <roam:switch xmlns:roam="urn:roam:libvirt:1" socket="{vswitchd}">
      <roam:port mac="{mac}" segment="100">
        <roam:ip>{ip}</roam:ip>
        <roam:ip>{ip6}</roam:ip>
      </roam:port>
    </roam:switch>
  </metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='vhostuser'>
      <mac address='{mac}'/>
      <source type='unix' path='{socket}' mode='{mode}'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <serial type='unix'>
      <source mode='bind' path='{ctl}'/>
      <target port='1'/>
    </serial>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <!-- QEMU 7.2 under TCG crashes when a vhost-user virtio-net device uses MSI-X (as in
       the harness's own guests): the device gets no vectors. -->
  <qemu:override>
    <qemu:device alias='net0'>
      <qemu:frontend>
        <qemu:property name='vectors' type='unsigned' value='0'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
"#,
            name = self.name,
            uuid = self.uuid(),
            vswitchd = self.vswitchd.display(),
            mac = self.mac,
            ip = self.ip,
            ip6 = self.ip6,
            kernel = kernel.display(),
            initrd = initrd.display(),
            cmdline = self.cmdline,
            socket = self.socket.display(),
            mode = self.mode,
            console = self.console.display(),
            ctl = self.ctl.display(),
        )
    }
}
