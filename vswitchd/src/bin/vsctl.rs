//! vsctl: the command line of vswitchd's control API. Readable tables by default, the raw
//! JSON result with `--json`. Exits non-zero when vswitchd refuses a request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde_json::Value;
use vswitchd::api::{ArpAnnounce, Attach, Client, ClientError, MacRange, Request, Segment};

#[derive(Parser)]
#[command(version, about = "Control Roam's vswitchd")]
struct Args {
    /// vswitchd's control socket.
    #[arg(long, global = true, default_value = "/run/roam/vswitchd.sock", env = "ROAM_SOCKET")]
    socket: PathBuf,
    /// Print the JSON result instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ports, link states, VMs and segments.
    Show,
    /// Attach a VM: create its port (vhost-user, or any DPDK vdev) and install its MAC.
    Attach {
        name: String,
        /// The VM's vhost-user socket (QEMU is the server unless --server).
        #[arg(long, required_unless_present = "device", conflicts_with = "device")]
        vhost_socket: Option<PathBuf>,
        /// Instead of vhost-user: a DPDK vdev, `driver<N>[,args]` (e.g. net_tap3,iface=vm3).
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        mac: String,
        /// Segment id (configured with set-anycast).
        #[arg(long)]
        segment: u32,
        /// The VM's addresses (IPv4 or IPv6; repeat).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// Turn port security off for this VM.
        #[arg(long)]
        no_port_security: bool,
        /// vswitchd creates the socket (vhost-user server mode).
        #[arg(long)]
        server: bool,
        /// vhost-user queue pairs (as QEMU's `-netdev vhost-user,queues=N`).
        #[arg(long, default_value_t = 1)]
        queues: u16,
        /// More MACs behind the port, as BASE/COUNT consecutive addresses (repeat).
        #[arg(long = "extra-macs", value_name = "BASE/COUNT")]
        extra_macs: Vec<String>,
    },
    /// Detach a VM.
    Detach { name: String },
    /// The MAC table.
    Fdb,
    /// Counters per port and per drop reason.
    Stats,
    /// Set a segment's anycast gateway MAC (creates the segment).
    SetAnycast {
        /// Segment id, up to 24 bits.
        #[arg(long)]
        segment: u32,
        /// Carry the segment tagged with this VLAN id on the uplink (or --native).
        #[arg(long, required_unless_present = "native", conflicts_with = "native")]
        vlan: Option<u16>,
        #[arg(long)]
        mac: String,
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// The segment's subnets, for the local ARP responder (repeat).
        #[arg(long = "subnet")]
        subnets: Vec<String>,
        /// Answer local VMs' ARP requests on the host.
        #[arg(long)]
        arp_responder: bool,
        /// Carry the segment untagged on the uplink (native VLAN; one segment at most).
        #[arg(long)]
        native: bool,
    },
    /// Tell the named VMs, and only them, that IP is at MAC (gratuitous ARP or NA).
    ArpAnnounce {
        /// VM names, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        #[arg(long)]
        ip: IpAddr,
        #[arg(long)]
        mac: String,
    },
    /// Stream attach, detach and link events (one JSON object per line).
    Events,
    /// Try failed attachments again (those a restart could not restore): all, or one.
    Retry { name: Option<String> },
}

fn main() -> std::process::ExitCode {
    // One line on failure, every cause after a colon.
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vsctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let request = match args.command {
        Cmd::Show => Request::Show {},
        Cmd::Attach {
            name,
            vhost_socket: socket,
            device,
            mac,
            segment,
            ips,
            no_port_security,
            server,
            queues,
            extra_macs,
        } => {
            let ipv4: Vec<Ipv4Addr> =
                ips.iter().filter_map(|i| if let IpAddr::V4(a) = i { Some(*a) } else { None }).collect();
            let ipv6: Vec<Ipv6Addr> =
                ips.iter().filter_map(|i| if let IpAddr::V6(a) = i { Some(*a) } else { None }).collect();
            let mut ranges = Vec::new();
            for r in extra_macs {
                let Some((base, count)) = r.split_once('/').and_then(|(b, c)| Some((b.to_string(), c.parse().ok()?)))
                else {
                    eprintln!("vsctl: --extra-macs {r:?}: expected BASE/COUNT, e.g. 02:00:00:00:00:00/1000");
                    std::process::exit(2);
                };
                ranges.push(MacRange { base, count });
            }
            Request::Attach(Attach {
                name,
                socket,
                device,
                mac,
                segment,
                ipv4,
                ipv6,
                port_security: !no_port_security,
                server,
                queues,
                extra_macs: ranges,
            })
        }
        Cmd::Detach { name } => Request::Detach { name },
        Cmd::Fdb => Request::Fdb {},
        Cmd::Stats => Request::Stats {},
        Cmd::SetAnycast { segment, vlan, mac, gateway, subnets, arp_responder, native } => {
            Request::SetAnycast(Segment { segment, vlan, mac, gateway, subnets, arp_responder, native })
        }
        Cmd::ArpAnnounce { to, ip, mac } => Request::ArpAnnounce(ArpAnnounce { to, ip, mac }),
        Cmd::Events => Request::Events {},
        Cmd::Retry { name } => Request::Retry { name },
    };
    let mut client = Client::connect(&args.socket, None)?;
    if let Request::Events {} = request {
        let mut events = client.events()?;
        loop {
            match events.next_line() {
                Ok(line) => println!("{line}"),
                Err(ClientError::Closed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
    let result = client.call(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    match request {
        Request::Show {} => print_show(&result),
        Request::Fdb {} => {
            table(
                &["MAC", "SEGMENT", "PORT", "NAME", "KIND"],
                &result["entries"],
                &["mac", "segment", "port", "port_name", "kind"],
            );
            let n = result["entries"].as_array().map_or(0, Vec::len);
            let mib = result["memory_bytes"].as_f64().unwrap_or(0.0) / f64::from(1 << 20);
            println!(
                "{n} of {} entries, {mib:.1} MiB, {} key search",
                cell(&result["capacity"]),
                cell(&result["search"])
            );
        }
        Request::Stats {} => print_stats(&result),
        _ => println!("{}", serde_json::to_string(&result)?),
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A column-aligned table of `rows` (an array of objects), one column per key.
fn table(headers: &[&str], rows: &Value, keys: &[&str]) {
    let rows: Vec<Vec<String>> = rows
        .as_array()
        .map(|a| a.iter().map(|r| keys.iter().map(|k| cell(&r[*k])).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
}

fn print_show(r: &Value) {
    println!("Ports:");
    table(&["PORT", "NAME", "DEVICE", "LINK"], &r["ports"], &["port", "name", "device", "link_up"]);
    println!("\nVMs:");
    table(
        &["NAME", "PORT", "MAC", "SEGMENT", "IPS", "SECURE", "SOCKET"],
        &r["vms"],
        &["name", "port", "mac", "segment", "ipv4", "port_security", "socket"],
    );
    if r["failed"].as_array().is_some_and(|f| !f.is_empty()) {
        println!("\nFailed attachments (vsctl retry [NAME]; detach NAME drops one):");
        table(
            &["NAME", "MAC", "SEGMENT", "SOCKET", "DEVICE", "ERROR"],
            &r["failed"],
            &["name", "mac", "segment", "socket", "device", "error"],
        );
    }
    println!("\nSegments:");
    table(
        &["SEGMENT", "VLAN", "NATIVE", "ANYCAST MAC", "GATEWAY", "SUBNETS", "ARP RESPONDER"],
        &r["segments"],
        &["segment", "vlan", "native", "mac", "gateway", "subnets", "arp_responder"],
    );
    println!("\nmbufs: {} of {} free", cell(&r["mbufs"]["available"]), cell(&r["mbufs"]["capacity"]));
}

fn print_stats(r: &Value) {
    println!("In (rx = forwarded + flooded + dropped):");
    table(
        &["PORT", "NAME", "RX", "FORWARDED", "FLOODED", "DROPPED", "REWRITTEN", "BALANCED"],
        &r["ports"],
        &["port", "name", "rx", "forwarded", "flooded", "dropped", "rewritten", "balanced"],
    );
    if let Some(ports) = r["ports"].as_array() {
        for p in ports {
            if let Some(d) = p["drops"].as_object().filter(|d| !d.is_empty()) {
                let reasons: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("  {} drops: {}", cell(&p["name"]), reasons.join(" "));
            }
        }
    }
    println!("\nOut (queued + requeued + taken_over = sent + tx_full + link_down + held + no_port + handed_over; held = released + held_dropped + holding):");
    table(
        &[
            "PORT",
            "NAME",
            "QUEUED",
            "SENT",
            "TX_FULL",
            "LINK_DOWN",
            "RETRIES",
            "NO_PORT",
            "HANDED",
            "TAKEN",
            "REQUEUED",
            "HELD",
            "RELEASED",
            "HELD_DROPPED",
            "HOLDING",
            "INJECTED",
            "BALANCED",
        ],
        &r["ports"],
        &[
            "port",
            "name",
            "tx",
            "sent",
            "tx_full",
            "link_down",
            "tx_retries",
            "tx_no_port",
            "handed_over",
            "taken_over",
            "requeued",
            "held",
            "released",
            "held_dropped",
            "holding",
            "injected",
            "out_balanced",
        ],
    );
    println!("\nbalanced: {}", cell(&r["balanced"]));
}
