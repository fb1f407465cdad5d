//! Finds Debian's DPDK 22.11 with pkg-config, generates bindings with bindgen and compiles
//! the C shim. Missing prerequisites fail the build with the Debian package to install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the build with a message a newcomer can act on.
fn fail(msg: &str) -> ! {
    eprintln!("\n\ndpdk-sys: {msg}\n(`scripts/setup` installs everything Roam needs.)\n");
    std::process::exit(1);
}

fn pkg_config(args: &[&str]) -> String {
    let out = match Command::new("pkg-config").args(args).arg("libdpdk").output() {
        Ok(out) => out,
        Err(_) => fail("`pkg-config` not found: apt-get install pkg-config"),
    };
    if !out.status.success() {
        fail(
            "pkg-config cannot find `libdpdk` (DPDK 22.11 headers and libraries): \
             apt-get install libdpdk-dev",
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// bindgen panics with an obscure message when libclang is absent; check first.
fn check_libclang() {
    if env::var_os("LIBCLANG_PATH").is_some() {
        return;
    }
    let found = ["/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let dir = e.path();
            (name.starts_with("llvm-") && has_libclang(&dir.join("lib"))) || name.starts_with("libclang")
        });
    if !found {
        fail("libclang not found (bindgen needs it): apt-get install libclang-dev");
    }
}

fn has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("libclang")))
        .unwrap_or(false)
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"]);
    if !version.starts_with("22.11") {
        println!("cargo:warning=dpdk-sys is written against DPDK 22.11; found {version}");
    }
    // The cflags carry `-include rte_config.h -march=corei7`: both bindgen and the shim
    // need all of them (without -march, rte_memcpy.h refuses to compile).
    let cflags: Vec<String> = pkg_config(&["--cflags"]).split_whitespace().map(String::from).collect();
    let libs = pkg_config(&["--libs"]);

    // Link: every -L and -l that pkg-config names. PMDs are plugins DPDK loads at run time.
    for tok in libs.split_whitespace() {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = tok.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }

    // PMD libraries whose own API Roam calls (rte_eth_from_rings, rte_eth_vhost_*) are linked from DPDK's
    // plugin directory, the very files EAL dlopens at start-up, so each loads only once;
    // binaries find them through the rpath set in .cargo/config.toml (as dpdk-testpmd does).
    let libdir = pkg_config(&["--variable=libdir"]);
    let pmds = std::fs::read_dir(Path::new(&libdir).join("dpdk"))
        .ok()
        .and_then(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.join("librte_net_ring.so").exists()))
        .unwrap_or_else(|| {
            fail("DPDK's PMD plugin directory (with librte_net_ring.so) not found: apt-get install dpdk")
        });
    println!("cargo:rustc-link-search=native={}", pmds.display());
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    println!("cargo:rustc-link-lib=dylib=rte_net_vhost");
    println!("cargo:pmd_dir={}", pmds.display());

    let mut shim = cc::Build::new();
    shim.file("shim.c").include(".").opt_level(3).warnings(true);
    for f in &cflags {
        shim.flag(f);
    }
    shim.compile("roam_dpdk_shim");

    check_libclang();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-I.")
        .allowlist_function("roam_.*")
        .allowlist_function("rte_eth_from_ring.*")
        .allowlist_function("rte_(eal|lcore|socket|log|strerror|get_tsc|delay|mempool|pktmbuf|mbuf|eth|ring|vhost|hash|jhash|hash_crc).*")
        .allowlist_type("rte_(eth|mbuf|mempool|ring|vhost|hash|lcore|log).*")
        .allowlist_var("RTE_(MAX_ETHPORTS|MAX_LCORE|MBUF_DEFAULT.*|PKTMBUF_HEADROOM|ETHER_ADDR_LEN|ETH_NAME_MAX_LEN|ETH_DEV_NO_OWNER|MEMPOOL_CACHE_MAX_SIZE|RING_.*|HASH_EXTRA_FLAGS_.*|HASH_ENTRIES_MAX|HASH_NAMESIZE|ETH_LINK_.*|ETH_RX_OFFLOAD_.*|ETH_TX_OFFLOAD_.*|LOGTYPE_.*|LOG_.*)")
        .allowlist_var("SOCKET_ID_ANY|LCORE_ID_ANY|RING_F_.*")
        // Protocol headers reached through rte_ethdev.h generate Rust that does not compile
        // (a packed struct holding an aligned one; a missing Debug) and Roam never uses them.
        .blocklist_type("rte_l2tpv2.*|rte_gtp.*|rte_flow.*")
        .blocklist_function("rte_flow.*")
        .opaque_type("rte_l2tpv2.*|rte_gtp.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on DPDK's headers: {e}")));
    bindings.write_to_file(out.join("bindings.rs")).unwrap_or_else(|e| fail(&format!("cannot write bindings: {e}")));
}
