//! vsctl: the command line of vswitchd's control API. Readable tables by default, the raw
//! JSON result with `--json`. Exits non-zero when vswitchd refuses a request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use pipeline::{MacAddr, SegmentId, VlanId, Vni};
use vswitchd::api::views::{FdbView, MetricsView, ShowView, StatsView};
use vswitchd::api::{ArpAnnounce, Attach, Client, ClientError, MacRange, Request, Segment, Underlay};

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
    /// Ports, link states, VMs (and whether each is here) and segments.
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
        mac: MacAddr,
        /// Segment id (configured with set-anycast).
        #[arg(long)]
        segment: SegmentId,
        /// The VM's addresses (IPv4 or IPv6; repeat).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// Turn port security off for this VM.
        #[arg(long)]
        no_port_security: bool,
        /// vswitchd creates the socket (vhost-user server mode).
        #[arg(long)]
        server: bool,
        /// Queue pairs: vhost-user's (as QEMU's `-netdev vhost-user,queues=N`), or a
        /// device's rx and tx queues (the device must support that many).
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
    /// The counters as a Prometheus text exposition, as the metrics endpoint serves it
    /// (e.g. for node_exporter's textfile collector when no endpoint is configured).
    Metrics,
    /// Each worker's queues (rx queues polled, tx queues sent on, frames on each) and its
    /// figures since start: busy share, frames per burst, cycles per frame (as Open
    /// vSwitch's pmd-rxq-show and pmd-perf-show).
    Workers,
    /// Set a segment's anycast gateway MAC (creates the segment).
    SetAnycast {
        /// Segment id, up to 24 bits.
        #[arg(long)]
        segment: SegmentId,
        /// Carry the segment tagged with this VLAN id on the uplink (or --native, or --vni).
        #[arg(long, required_unless_present_any = ["native", "vni"], conflicts_with_all = ["native", "vni"])]
        vlan: Option<VlanId>,
        /// Carry the segment as VXLAN with this VNI (needs `set-underlay` first).
        #[arg(long, conflicts_with = "native")]
        vni: Option<Vni>,
        #[arg(long)]
        mac: MacAddr,
        #[arg(long)]
        gateway: Option<Ipv4Addr>,
        /// The segment's subnets, IPv4 or IPv6, for the local responder (repeat).
        #[arg(long = "subnet")]
        subnets: Vec<String>,
        /// Answer local VMs' ARP requests and IPv6 neighbor solicitations on the host.
        #[arg(long)]
        arp_responder: bool,
        /// Carry the segment untagged on the uplink (native VLAN; one segment at most).
        #[arg(long)]
        native: bool,
    },
    /// Configure the uplink's VXLAN underlay: this host's VTEP and the leaf's (VXLAN
    /// segments need it; vswitchd answers ARP for LOCAL and resolves each leaf VTEP).
    SetUnderlay {
        /// This host's VTEP address.
        #[arg(long)]
        local: Ipv4Addr,
        /// A leaf VTEP address (repeat for several).
        #[arg(long = "leaf", required = true)]
        leaf: Vec<Ipv4Addr>,
        /// This host's VTEP MAC [default: the uplink port's].
        #[arg(long)]
        mac: Option<MacAddr>,
        /// A leaf VTEP's MAC known in advance, `IP=MAC` (repeat; the others are resolved by ARP).
        #[arg(long = "leaf-mac", value_parser = parse_leaf_mac)]
        leaf_macs: Vec<(Ipv4Addr, MacAddr)>,
        /// The underlay's IP MTU (a VM's MTU should be 50 less).
        #[arg(long, default_value_t = 1500)]
        mtu: u16,
    },
    /// Tell the named VMs, and only them, that IP is at MAC (gratuitous ARP or NA).
    ArpAnnounce {
        /// VM names, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        #[arg(long)]
        ip: IpAddr,
        #[arg(long)]
        mac: MacAddr,
    },
    /// Stream attach, detach, link and away events (one JSON object per line).
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
    let workers = matches!(args.command, Cmd::Workers);
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
                let Some((base, count)) = r.split_once('/').and_then(|(b, c)| Some((b.parse().ok()?, c.parse().ok()?)))
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
        Cmd::Stats | Cmd::Workers => Request::Stats {},
        Cmd::Metrics => Request::Metrics {},
        Cmd::SetAnycast { segment, vlan, vni, mac, gateway, subnets, arp_responder, native } => {
            Request::SetAnycast(Segment { segment, vlan, vni, mac, gateway, subnets, arp_responder, native })
        }
        Cmd::SetUnderlay { local, leaf, mac, leaf_macs, mtu } => {
            Request::SetUnderlay(Underlay { local, leaf, mac, leaf_macs: leaf_macs.into_iter().collect(), mtu })
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
    if workers {
        let stats: StatsView = serde_json::from_value(result)?;
        match args.json {
            true => println!("{}", serde_json::to_string_pretty(&stats.workers)?),
            false => print_workers(&stats),
        }
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    match request {
        Request::Show {} => print_show(&serde_json::from_value(result)?),
        Request::Fdb {} => print_fdb(&serde_json::from_value(result)?),
        Request::Stats {} => print_stats(&serde_json::from_value(result)?),
        Request::Metrics {} => print!("{}", serde_json::from_value::<MetricsView>(result)?.text),
        _ => println!("{}", serde_json::to_string(&result)?),
    }
    Ok(())
}

/// `IP=MAC`, for `--leaf-mac`.
fn parse_leaf_mac(s: &str) -> Result<(Ipv4Addr, MacAddr), String> {
    let (ip, mac) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected IP=MAC"))?;
    Ok((
        ip.parse().map_err(|_| format!("`{ip}` is no IPv4 address"))?,
        mac.parse().map_err(|_| format!("`{mac}` is no MAC"))?,
    ))
}

/// A list of items as text (`-` when empty).
fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

/// A column-aligned table, one row of cells per item.
fn table<T>(headers: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) {
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
    for r in rows {
        println!("{}", line(&r));
    }
}

fn print_show(r: &ShowView) {
    println!("Ports:");
    table(&["PORT", "NAME", "DEVICE", "LINK"], &r.ports, |p| {
        vec![p.port.to_string(), p.name.clone(), p.device.clone(), p.link_up.to_string()]
    });
    println!("\nVMs:");
    table(&["NAME", "PORT", "MAC", "SEGMENT", "IPS", "SECURE", "STATE", "SOCKET"], &r.vms, |v| {
        let socket = v.socket.as_ref().map(|s| s.display().to_string());
        let state = match v.away {
            Some(why) => format!("{} ({})", v.state.as_str(), why.as_str()),
            None => v.state.as_str().to_string(),
        };
        let ips: Vec<String> =
            v.ipv4.iter().map(|a| a.to_string()).chain(v.ipv6.iter().map(|a| a.to_string())).collect();
        let row = [&v.name, &v.port.to_string(), &v.mac.to_string(), &v.segment.to_string(), &list(&ips)];
        row.into_iter().cloned().chain([v.port_security.to_string(), state, opt(&socket)]).collect()
    });
    if !r.failed.is_empty() {
        println!("\nFailed attachments (vsctl retry [NAME]; detach NAME drops one):");
        table(&["NAME", "MAC", "SEGMENT", "SOCKET", "DEVICE", "ERROR"], &r.failed, |f| {
            let socket = f.socket.as_ref().map(|s| s.display().to_string());
            vec![
                f.name.clone(),
                f.mac.to_string(),
                f.segment.to_string(),
                opt(&socket),
                opt(&f.device),
                f.error.clone(),
            ]
        });
    }
    println!("\nSegments:");
    table(&["SEGMENT", "ENCAP", "ANYCAST MAC", "GATEWAY", "SUBNETS", "ARP RESPONDER"], &r.segments, |s| {
        let encap = match (s.vlan, s.vni) {
            (Some(v), _) => format!("vlan {v}"),
            (None, Some(v)) => format!("vxlan vni={v}"),
            (None, None) => "native".to_string(),
        };
        vec![
            s.segment.to_string(),
            encap,
            s.mac.to_string(),
            opt(&s.gateway),
            list(&s.subnets),
            s.arp_responder.to_string(),
        ]
    });
    if let Some(u) = &r.underlay {
        println!("\nUnderlay: VTEP {} at {}, MTU {} (VMs {}); leaf VTEPs:", u.local, u.mac, u.mtu, u.vm_mtu);
        table(&["LEAF VTEP", "MAC"], &u.leaf, |l| {
            vec![l.ip.to_string(), l.mac.map_or_else(|| "unresolved".into(), |m| m.to_string())]
        });
    }
    println!("\nmbufs: {} of {} free", r.mbufs.available, r.mbufs.capacity);
}

fn print_fdb(r: &FdbView) {
    table(&["MAC", "SEGMENT", "PORT", "NAME", "KIND"], &r.entries, |e| {
        vec![e.mac.to_string(), e.segment.to_string(), e.port.to_string(), e.port_name.clone(), e.kind.clone()]
    });
    let mib = r.memory_bytes as f64 / f64::from(1 << 20);
    println!("{} of {} entries, {mib:.1} MiB, {} key search", r.entries.len(), r.capacity, r.search);
}

fn print_stats(r: &StatsView) {
    println!("In (rx = forwarded + flooded + underlay + dropped):");
    let headers = ["PORT", "NAME", "RX", "FORWARDED", "FLOODED", "UNDERLAY", "DROPPED", "REWRITTEN", "BALANCED"];
    table(&headers, &r.ports, |p| {
        let i = &p.input;
        let n = [i.rx, i.forwarded, i.flooded, i.underlay, p.dropped, i.rewritten].map(|c| c.to_string());
        [p.port.to_string(), p.name.clone()].into_iter().chain(n).chain([p.balanced.to_string()]).collect()
    });
    for p in r.ports.iter().filter(|p| !p.drops.is_empty()) {
        let reasons: Vec<String> = p.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {} drops: {}", p.name, reasons.join(" "));
    }
    println!("\nOut (queued + requeued + taken_over = sent + tx_full + link_down + held + no_port + handed_over; held = released + held_dropped + holding):");
    let headers = [
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
    ];
    table(&headers, &r.ports, |p| {
        let o = &p.out;
        let n = [
            p.input.tx,
            o.sent,
            o.tx_full,
            o.link_down,
            o.tx_retries,
            o.tx_no_port,
            o.handed_over,
            o.taken_over,
            o.requeued,
            o.held,
            o.released,
            o.held_dropped,
            o.holding,
            o.injected,
        ];
        [p.port.to_string(), p.name.clone()]
            .into_iter()
            .chain(n.map(|c| c.to_string()))
            .chain([p.out_balanced.to_string()])
            .collect()
    });
    println!("\nbalanced: {}", r.balanced);
    print_workers(r);
}

fn print_workers(r: &StatsView) {
    println!(
        "\nWorkers (busy: share of polling cycles in loops that found frames; cycles per frame: busy cycles / frames):"
    );
    let headers = ["WORKER", "FRAMES", "BURSTS", "FRAMES/BURST", "BUSY", "CYCLES/FRAME", "SLEEPS"];
    table(&headers, &r.workers, |w| {
        vec![
            w.id.to_string(),
            w.frames.to_string(),
            w.bursts.to_string(),
            format!("{:.1}", w.frames_per_burst()),
            format!("{:.1}%", 100.0 * w.busy_share()),
            format!("{:.0}", w.cycles_per_frame()),
            w.sleeps.to_string(),
        ]
    });
    let mut queues: Vec<[String; 5]> = Vec::new();
    for w in &r.workers {
        for q in &w.rx_queues {
            queues.push([
                w.id.to_string(),
                q.port.clone(),
                format!("rx {}", q.queue),
                q.frames.to_string(),
                "-".into(),
            ]);
        }
        for q in &w.tx_queues {
            let state = if q.enabled { "sending" } else { "to owner" };
            queues.push([
                w.id.to_string(),
                q.port.clone(),
                format!("tx {}", q.queue),
                q.sent.to_string(),
                state.into(),
            ]);
        }
    }
    table(&["WORKER", "PORT", "QUEUE", "FRAMES", "STATE"], &queues, |q| q.to_vec());
}
