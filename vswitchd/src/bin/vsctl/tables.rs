//! vsctl's readable tables: `show`, `fdb`, `stats` and `workers` as aligned columns.

use vswitchd::api::views::{FdbView, ShowView, StatsView};

/// A list of items as text (`-` when empty).
pub(crate) fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

pub(crate) fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

/// A column-aligned table, one row of cells per item.
pub(crate) fn table<T>(headers: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) {
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

pub(crate) fn print_show(r: &ShowView) {
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

pub(crate) fn print_fdb(r: &FdbView) {
    table(&["MAC", "SEGMENT", "PORT", "NAME", "KIND"], &r.entries, |e| {
        vec![e.mac.to_string(), e.segment.to_string(), e.port.to_string(), e.port_name.clone(), e.kind.clone()]
    });
    let mib = r.memory_bytes as f64 / f64::from(1 << 20);
    println!("{} of {} entries, {mib:.1} MiB, {} key search", r.entries.len(), r.capacity, r.search);
}

pub(crate) fn print_stats(r: &StatsView) {
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

pub(crate) fn print_workers(r: &StatsView) {
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
