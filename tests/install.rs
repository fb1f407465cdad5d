//! `scripts/install` into a staging root: every file in place, the systemd units accepted
//! by systemd's own checker (`systemd-analyze verify`), the example configuration accepted
//! by `vswitchd --check-config`, the hook executable and pointing at the installed vsctl.
//! (systemd itself cannot run here: the test machines have no systemd as PID 1, so
//! `Restart=on-failure` is systemd's to keep; `vswitchd_restarts` tests what a restart
//! brings back.)

use std::path::Path;
use std::process::Command;

use roam_tests::{root, TestDir};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

#[test]
fn install_stages_units_hook_completions_and_a_config_that_checks() {
    let dir = TestDir::new("install");
    let stage = dir.path("root");
    let prefix = "/opt/roam";
    run(Command::new("bash").arg(root().join("scripts/install")).args([
        "--root",
        &stage.display().to_string(),
        "--prefix",
        prefix,
        "--no-build",
    ]));
    let at = |p: &str| stage.join(p.trim_start_matches('/'));
    for f in [
        "/opt/roam/bin/vswitchd",
        "/opt/roam/bin/vsctl",
        "/opt/roam/bin/leafd",
        "/etc/systemd/system/roam-vswitchd.service",
        "/etc/systemd/system/roam-leafd.service",
        "/etc/libvirt/hooks/qemu.d/roam",
        "/etc/roam/vswitchd.toml",
        "/opt/roam/share/doc/roam/libvirt.md",
        "/usr/share/bash-completion/completions/vsctl",
        "/usr/share/zsh/vendor-completions/_vswitchd",
    ] {
        assert!(at(f).is_file(), "{f} is not installed");
    }
    // The units name the prefix's binaries; the hook runs the prefix's vsctl.
    let unit = std::fs::read_to_string(at("/etc/systemd/system/roam-vswitchd.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/roam/bin/vswitchd --config /etc/roam/vswitchd.toml"), "{unit}");
    assert!(unit.contains("Restart=on-failure") && unit.contains("RuntimeDirectoryPreserve=yes"), "{unit}");
    let hook = std::fs::read_to_string(at("/etc/libvirt/hooks/qemu.d/roam")).unwrap();
    assert!(hook.contains("exec /opt/roam/bin/vsctl libvirt-hook"), "{hook}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(at("/etc/libvirt/hooks/qemu.d/roam")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "the hook is executable");

    // systemd's checker, on copies that point at the staged binaries (it checks that they
    // exist and are executable).
    let units = dir.path("units");
    std::fs::create_dir_all(&units).unwrap();
    let mut paths = Vec::new();
    for u in ["roam-vswitchd.service", "roam-leafd.service"] {
        let text = std::fs::read_to_string(at(&format!("/etc/systemd/system/{u}"))).unwrap();
        let staged = text.replace("/opt/roam", &at(prefix).display().to_string());
        std::fs::write(units.join(u), staged).unwrap();
        paths.push(units.join(u).display().to_string());
    }
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&paths).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");

    // The example configuration checks (its state file left out: none yet is fine).
    let config = at("/etc/roam/vswitchd.toml");
    let state = dir.path("state.json").display().to_string();
    let said = run(Command::new(at("/opt/roam/bin/vswitchd"))
        .args(["--check-config", "--config"])
        .arg(&config)
        .args(["--state", &state, "--socket", &dir.path("ctl").display().to_string()]));
    assert!(said.contains("configuration OK"), "{said}");
    // leafd's check, with a leaf's configuration: good, then a bad metrics address.
    let leaf = dir.path("leaf1.toml");
    std::fs::write(
        &leaf,
        "name = \"leaf1\"\nanycast_mac = \"00:00:5e:00:01:01\"\ngateways = [\"10.1.1.254/24\"]\nfabric_address = \"192.168.0.1\"\n\
         metrics = \"127.0.0.1:9479\"\n\n[bgp]\napi = \"unix:///run/leaf1/gobgp.sock\"\n\n\
         [[downlinks]]\niface = \"down1\"\nvswitchd = \"/run/roam/host1.ctl\"\nhost = 1\n",
    )
    .unwrap();
    let leafd = at("/opt/roam/bin/leafd");
    let said = run(Command::new(&leafd).arg("--check-config").arg("--config").arg(&leaf));
    assert!(
        said.contains("configuration OK: leaf leaf1, 1 downlink(s)") && said.contains("metrics 127.0.0.1:9479"),
        "{said}"
    );
    let out = Command::new(&leafd)
        .arg("--check-config")
        .arg("--config")
        .arg(&leaf)
        .args(["--metrics", "nowhere"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("is not IP:PORT"), "{err}");

    // A second install keeps an edited configuration.
    std::fs::write(&config, "# mine\n").unwrap();
    run(Command::new("bash").arg(root().join("scripts/install")).args([
        "--root",
        &stage.display().to_string(),
        "--prefix",
        prefix,
        "--no-build",
    ]));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    assert!(Path::new(&at("/etc/roam")).is_dir());
}
