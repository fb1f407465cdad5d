//! vsctl: the command line of vswitchd's control API. Readable tables by default, the raw
//! JSON result with `--json`. Exit codes (see [`EXIT_CODES`]): 0 done, 1 refused, 2 bad
//! usage, 3 vswitchd unreachable, 4 no such VM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use pipeline::{MacAddr, SegmentId, VlanId, Vni};
use vswitchd::api::views::{FdbView, MetricsView, ShowView, StatsView};
use vswitchd::api::{ArpAnnounce, Attach, Client, ClientError, ErrorCode, MacRange, Request, Segment, Underlay};

/// What `vsctl --help` ends with (and the README's "Operating Roam" repeats).
const EXIT_CODES: &str = "Exit codes:
  0  done
  1  vswitchd refused the request (the reason and its code on stderr)
  2  bad usage (unknown command or option, bad value)
  3  vswitchd unreachable (not running, wrong --socket, another protocol version)
  4  refused as not-found: no VM (or attachment) of that name";

const EXAMPLES: &str = "Examples:
  vsctl set-anycast --segment 100 --vlan 100 --mac 00:00:5e:00:01:01 --subnet 10.1.1.0/24
  vsctl attach vm-a --vhost-socket /run/roam/vm-a.sock --mac 52:54:00:00:00:01 --segment 100 --ip 10.1.1.1
  vsctl show
  vsctl stats --watch 2          # refresh every 2 s, with rates per second
  vsctl --json stats | jq '.ports[] | {name, rx, sent}'
  vsctl detach vm-a || [ $? -eq 4 ]   # already gone is fine";

#[derive(Parser)]
#[command(version, about = "Control Roam's vswitchd", after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
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
    /// Counters per port and per drop reason; with --watch, refreshed, with rates per second.
    Stats {
        /// Refresh every SECS seconds (default 1) and show rates since the last refresh.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
        /// Stop after N refreshes (default: until interrupted).
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
    },
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// libvirt's qemu hook (docs/libvirt.md; scripts/install puts it in
    /// /etc/libvirt/hooks/qemu.d/roam): reads the domain XML on stdin; attaches the
    /// domain's Roam ports before QEMU starts (prepare), detaches them once it is gone
    /// (release); a domain without Roam metadata is left alone.
    LibvirtHook { domain: String, operation: String, sub_operation: String, extra: Option<String> },
}

fn main() -> std::process::ExitCode {
    // One line on failure, every cause after a colon; the exit code says which kind.
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let code = match e.downcast_ref::<ClientError>() {
                Some(ClientError::Refused { code: ErrorCode::NotFound, .. }) => 4,
                Some(ClientError::Refused { code: ErrorCode::Version, .. }) => 3,
                Some(ClientError::Refused { code, message }) => {
                    eprintln!("vsctl: vswitchd refused ({}): {message}", code.as_str());
                    return std::process::ExitCode::from(1);
                }
                Some(_) => 3,
                None => 1,
            };
            eprintln!("vsctl: {e:#}");
            std::process::ExitCode::from(code)
        }
    }
}

fn run(args: Args) -> Result<()> {
    let workers = matches!(args.command, Cmd::Workers);
    let request = match args.command {
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Args::command(), "vsctl", &mut std::io::stdout());
            return Ok(());
        }
        Cmd::LibvirtHook { domain, operation, sub_operation, .. } => {
            return libvirt_hook(&args.socket, &domain, &operation, &sub_operation)
        }
        Cmd::Stats { watch: Some(every), count } => return watch_stats(&args.socket, every, count, args.json),
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
        Cmd::Stats { watch: None, .. } | Cmd::Workers => Request::Stats {},
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

/// `stats --watch`: a snapshot every `every` seconds, each port's and worker's rates since
/// the one before (frames per second over the time between the two answers). With --json,
/// one stats object per line, each with its `rates`.
fn watch_stats(socket: &std::path::Path, every: f64, count: Option<u64>, json: bool) -> Result<()> {
    anyhow::ensure!(every.is_finite() && every >= 0.1, "--watch {every}: give at least 0.1 seconds");
    use std::io::IsTerminal;
    let mut client = Client::connect(socket, Some(std::time::Duration::from_secs(10)))?;
    let clear = !json && std::io::stdout().is_terminal();
    let mut last: Option<(std::time::Instant, StatsView)> = None;
    let mut shown = 0;
    loop {
        let now = std::time::Instant::now();
        let stats = client.stats()?;
        let rates =
            last.as_ref().map(|(t, before)| Rates::between(before, &stats, now.duration_since(*t).as_secs_f64()));
        if json {
            let mut v = serde_json::to_value(&stats)?;
            v["rates"] = serde_json::to_value(&rates)?;
            println!("{}", serde_json::to_string(&v)?);
        } else {
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            print_rates(&stats, rates.as_ref(), every);
        }
        shown += 1;
        if count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        last = Some((now, stats));
        std::thread::sleep(std::time::Duration::from_secs_f64(every));
    }
}

/// Rates per second between two stats.
#[derive(serde::Serialize)]
struct Rates {
    seconds: f64,
    ports: Vec<PortRates>,
    workers: Vec<WorkerRates>,
}

#[derive(serde::Serialize)]
struct PortRates {
    name: String,
    rx: f64,
    sent: f64,
    dropped: f64,
    tx_full: f64,
    rewritten: f64,
    held: f64,
}

#[derive(serde::Serialize)]
struct WorkerRates {
    id: usize,
    frames: f64,
    /// Share of the polling cycles that found frames, over the interval.
    busy: f64,
    cycles_per_frame: f64,
}

impl Rates {
    fn between(before: &StatsView, after: &StatsView, seconds: f64) -> Rates {
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds.max(1e-9);
        let ports = after
            .ports
            .iter()
            .map(|p| {
                let b = before.port(&p.name);
                let was = |f: fn(&vswitchd::api::views::PortStats) -> u64| b.map_or(0, f);
                PortRates {
                    name: p.name.clone(),
                    rx: per_s(p.input.rx, was(|q| q.input.rx)),
                    sent: per_s(p.out.sent, was(|q| q.out.sent)),
                    dropped: per_s(p.dropped, was(|q| q.dropped)),
                    tx_full: per_s(p.out.tx_full, was(|q| q.out.tx_full)),
                    rewritten: per_s(p.input.rewritten, was(|q| q.input.rewritten)),
                    held: per_s(p.out.held, was(|q| q.out.held)),
                }
            })
            .collect();
        let workers = after
            .workers
            .iter()
            .map(|w| {
                let b = before.workers.iter().find(|x| x.id == w.id);
                let d = |f: fn(&vswitchd::api::views::WorkerStats) -> u64| f(w).saturating_sub(b.map_or(0, f));
                let (busy, idle, frames) = (d(|x| x.busy_cycles), d(|x| x.idle_cycles), d(|x| x.frames));
                WorkerRates {
                    id: w.id,
                    frames: frames as f64 / seconds.max(1e-9),
                    busy: busy as f64 / (busy + idle).max(1) as f64,
                    cycles_per_frame: busy as f64 / frames.max(1) as f64,
                }
            })
            .collect();
        Rates { seconds, ports, workers }
    }
}

fn print_rates(stats: &StatsView, rates: Option<&Rates>, every: f64) {
    let Some(r) = rates else {
        println!("vsctl stats --watch: first snapshot; rates from the next one ({every} s)");
        print_stats(stats);
        return;
    };
    println!("Rates over the last {:.2} s (frames/s); totals since start beside them:", r.seconds);
    let headers =
        ["NAME", "RX/S", "SENT/S", "DROPPED/S", "TX_FULL/S", "REWRITTEN/S", "HELD/S", "RX", "SENT", "DROPPED"];
    table(&headers, &r.ports, |p| {
        let s = stats.port(&p.name);
        let total = |f: fn(&vswitchd::api::views::PortStats) -> u64| s.map_or(0, f).to_string();
        vec![
            p.name.clone(),
            format!("{:.0}", p.rx),
            format!("{:.0}", p.sent),
            format!("{:.0}", p.dropped),
            format!("{:.0}", p.tx_full),
            format!("{:.0}", p.rewritten),
            format!("{:.0}", p.held),
            total(|q| q.input.rx),
            total(|q| q.out.sent),
            total(|q| q.dropped),
        ]
    });
    println!();
    table(&["WORKER", "FRAMES/S", "BUSY", "CYCLES/FRAME"], &r.workers, |w| {
        vec![
            w.id.to_string(),
            format!("{:.0}", w.frames),
            format!("{:.1}%", 100.0 * w.busy),
            format!("{:.0}", w.cycles_per_frame),
        ]
    });
    println!("\nbalanced: {}", stats.balanced);
}

/// `libvirt-hook`: see `vswitchd::libvirt`. Exits 0 at once for steps and domains that are
/// not Roam's, so that a stopped vswitchd never blocks other domains.
fn libvirt_hook(socket: &std::path::Path, domain: &str, operation: &str, sub_operation: &str) -> Result<()> {
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
