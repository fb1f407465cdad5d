//! vsctl: the command line of vswitchd's control API. Readable tables by default, the raw
//! JSON result with `--json`. Exit codes (see [`EXIT_CODES`]): 0 done, 1 refused, 2 bad
//! usage, 3 vswitchd unreachable, 4 no such VM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use pipeline::{MacAddr, SegmentId, VlanId, Vni};
use vswitchd::api::views::{MetricsView, StatsView};

mod hook;
mod tables;
mod watch;

use tables::{print_fdb, print_show, print_stats, print_workers};
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
            return hook::libvirt_hook(&args.socket, &domain, &operation, &sub_operation)
        }
        Cmd::Stats { watch: Some(every), count } => return watch::watch_stats(&args.socket, every, count, args.json),
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
