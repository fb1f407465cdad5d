//! Prometheus metrics: the text exposition format (version 0.0.4) written by [`Exposition`],
//! and vswitchd's metrics made from the same `stats` and `show` views the API answers
//! ([`vswitchd`]), so that a scrape and `vsctl stats` of one moment agree by construction.
//! leafd writes its own with the same writer.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::views::{PortStats, ShowView, StatsView, VmState};

/// The `Content-Type` of an exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at zero when the daemon does); its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
}

/// An exposition being written: families in order, each a `# HELP` and a `# TYPE` line
/// followed by its samples. A family name is written once (a scraper refuses a second).
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    names: BTreeSet<String>,
    current: Option<String>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts the family `name`: the samples written after it are its own.
    ///
    /// # Panics
    /// If `name` was started before, or is not a valid metric name (both are programming
    /// errors: names are constants).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Exposition {
        assert!(valid_name(name), "bad metric name {name:?}");
        assert!(self.names.insert(name.to_string()), "metric family {name} written twice");
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "counter {name} must end in _total");
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self.current = Some(name.to_string());
        self
    }

    /// A sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: u64) -> &mut Exposition {
        self.sample_text(labels, &value.to_string())
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: u64) -> &mut Exposition {
        self.family(name, kind, help).sample(&[], value)
    }

    /// A sample with a fractional value.
    pub fn sample_f64(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Exposition {
        let v = if value.is_nan() {
            "NaN".to_string()
        } else if value.is_infinite() {
            if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
        } else {
            value.to_string()
        };
        self.sample_text(labels, &v)
    }

    fn sample_text(&mut self, labels: &[(&str, &str)], value: &str) -> &mut Exposition {
        let name = self.current.as_deref().expect("a sample before its family");
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_label(k), "bad label name {k:?}");
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v, true));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Escapes a label value (`\`, `"`, newline) or a help text (`\`, newline).
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// One per-port figure of `stats`: its field in a port's JSON object (what `vsctl stats
/// --json` shows), the metric it is exported as, its type and its help.
pub struct PortMetric {
    pub field: &'static str,
    pub metric: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn counter(field: &'static str, metric: &'static str, help: &'static str) -> PortMetric {
    PortMetric { field, metric, kind: Kind::Counter, help }
}

/// Every per-port number of `stats` but the drops by reason (one family with a `reason`
/// label, [`DROPPED`]) and their sum (which `sum by (port)` gives). A test checks that no
/// field of a port's JSON is missing here.
pub const PORT_METRICS: &[PortMetric] = &[
    counter("rx", "roam_port_rx_frames_total", "Frames received on the port."),
    counter("forwarded", "roam_port_forwarded_frames_total", "Received frames sent to exactly one output."),
    counter("flooded", "roam_port_flooded_frames_total", "Received broadcast and multicast frames flooded."),
    counter(
        "underlay",
        "roam_port_underlay_frames_total",
        "Received frames for the control plane (leaf VTEP ARP replies).",
    ),
    counter(
        "tx",
        "roam_port_queued_frames_total",
        "Frames the pipeline queued out of the port (forwarded, flooded, flood copies).",
    ),
    counter(
        "rewritten",
        "roam_port_rewritten_frames_total",
        "Received unicast frames whose destination MAC was rewritten to the anycast gateway MAC.",
    ),
    counter(
        "to_away",
        "roam_port_to_away_frames_total",
        "Of the rewritten frames: those for a VM that is away, sent to the leaf.",
    ),
    counter("flood_copies", "roam_port_flood_copies_total", "Flood copies made for frames from the port."),
    counter(
        "flood_copy_failures",
        "roam_port_flood_copy_failures_total",
        "Flood copies that could not be made (no buffer).",
    ),
    counter(
        "arp_replies",
        "roam_port_arp_replies_total",
        "ARP requests from the port answered by the local responder.",
    ),
    counter(
        "nd_replies",
        "roam_port_nd_replies_total",
        "Neighbor solicitations from the port answered by the local responder.",
    ),
    counter(
        "announcements",
        "roam_port_announcements_total",
        "The VM's announcements of itself (gratuitous ARP, RARP, unsolicited NA, DAD), sent to the uplink only.",
    ),
    counter("sent", "roam_port_tx_frames_total", "Frames the port's tx queues took."),
    counter(
        "tx_full",
        "roam_port_tx_full_frames_total",
        "Frames dropped because the tx queue or hand-over ring stayed full.",
    ),
    counter(
        "link_down",
        "roam_port_link_down_frames_total",
        "Frames dropped because the port's link had never come up.",
    ),
    counter("tx_retries", "roam_port_tx_retries_total", "Retries of partly refused tx bursts."),
    counter(
        "tx_no_port",
        "roam_port_tx_no_port_frames_total",
        "Frames dropped for a port the worker does not know (being added or removed).",
    ),
    counter(
        "handed_over",
        "roam_port_handed_over_frames_total",
        "Frames handed to the port's owner worker through its ring.",
    ),
    counter("taken_over", "roam_port_taken_over_frames_total", "Frames the port's owner took from the hand-over ring."),
    counter("requeued", "roam_port_requeued_frames_total", "Held frames sent on to the port without the pipeline."),
    counter("held", "roam_port_held_frames_total", "Frames held while the port's link was down."),
    counter("released", "roam_port_released_frames_total", "Held frames that left the hold."),
    counter(
        "held_dropped",
        "roam_port_held_dropped_frames_total",
        "Held frames dropped (too old, too many, not writable).",
    ),
    PortMetric {
        field: "holding",
        metric: "roam_port_holding_frames",
        kind: Kind::Gauge,
        help: "Frames held right now.",
    },
    counter(
        "rerouted",
        "roam_port_rerouted_frames_total",
        "Released frames from local VMs sent through the pipeline again (towards the leaf).",
    ),
    counter(
        "injected",
        "roam_port_injected_frames_total",
        "Fix-up frames (gratuitous ARPs, unsolicited NAs) the port took.",
    ),
];

/// Received frames dropped, by port and reason (every reason, zeros too).
pub const DROPPED: &str = "roam_port_dropped_frames_total";

/// vswitchd's metrics, from one `stats` and one `show` of the same moment.
pub fn vswitchd(stats: &StatsView, show: &ShowView, version: &str) -> String {
    let mut e = Exposition::new();
    e.family("roam_build_info", Kind::Gauge, "The daemon and its version (always 1).");
    e.sample(&[("daemon", "vswitchd"), ("version", version)], 1);

    e.family("roam_port_info", Kind::Gauge, "Each port with its DPDK device (always 1).");
    for p in &show.ports {
        e.sample(&[("port", &p.name), ("device", &p.device), ("port_id", &p.port.to_string())], 1);
    }
    e.family("roam_port_link_up", Kind::Gauge, "Whether the port's link is up (1) or not (0).");
    for p in &show.ports {
        e.sample(&[("port", &p.name)], p.link_up as u64);
    }
    let fields: Vec<serde_json::Map<String, serde_json::Value>> = stats.ports.iter().map(port_fields).collect();
    for m in PORT_METRICS {
        e.family(m.metric, m.kind, m.help);
        for (p, f) in stats.ports.iter().zip(&fields) {
            e.sample(&[("port", &p.name)], f.get(m.field).and_then(serde_json::Value::as_u64).unwrap_or(0));
        }
    }
    e.family(DROPPED, Kind::Counter, "Received frames dropped, by reason (every reason, zeros too).");
    for p in &stats.ports {
        for r in pipeline::DropReason::ALL {
            e.sample(&[("port", &p.name), ("reason", r.name())], p.drops(r.name()));
        }
    }
    e.family("roam_port_balanced", Kind::Gauge, "Whether the port's input and output counters balance (1) or not (0).");
    for p in &stats.ports {
        e.sample(&[("port", &p.name)], (p.balanced && p.out_balanced) as u64);
    }

    e.family("roam_vms", Kind::Gauge, "Attached VMs by state.");
    for state in [VmState::Booting, VmState::Up, VmState::Stopped, VmState::Away] {
        e.sample(&[("state", state.as_str())], show.vms.iter().filter(|v| v.state == state).count() as u64);
    }
    worker_metrics(&mut e, stats);

    let m = &stats.mbufs;
    let singles: [(&str, Kind, &str, u64); 10] = [
        ("roam_mbufs_capacity", Kind::Gauge, "Packet buffers in the pool.", m.capacity),
        (
            "roam_mbufs_available",
            Kind::Gauge,
            "Packet buffers free in the pool (per-worker caches count as in use).",
            m.available,
        ),
        (
            "roam_mbufs_in_use",
            Kind::Gauge,
            "Packet buffers in use: in queues, held, or in per-worker caches.",
            m.capacity.saturating_sub(m.available),
        ),
        ("roam_fdb_entries", Kind::Gauge, "MAC table entries (VM MACs, extra MACs, anycast MACs).", stats.fdb.entries),
        ("roam_fdb_capacity", Kind::Gauge, "MAC table capacity.", stats.fdb.capacity),
        ("roam_fixup_requests_total", Kind::Counter, "Fix-up requests (arp-announce) served.", stats.fixups.requests),
        (
            "roam_fixup_frames_total",
            Kind::Counter,
            "Fix-up frames (gratuitous ARPs, unsolicited NAs) sent to VMs.",
            stats.fixups.frames,
        ),
        (
            "roam_fixup_released_frames_total",
            Kind::Counter,
            "Held frames a fix-up sent on towards the address's new MAC.",
            stats.fixups.released,
        ),
        (
            "roam_stats_balanced",
            Kind::Gauge,
            "Whether every port's counters balance (1) or not (0).",
            stats.balanced as u64,
        ),
        (
            "roam_failed_attachments",
            Kind::Gauge,
            "Attachments that could not be restored (see vsctl show).",
            show.failed.len() as u64,
        ),
    ];
    for (name, kind, help, value) in singles {
        e.single(name, kind, help, value);
    }
    e.finish()
}

fn worker_metrics(e: &mut Exposition, stats: &StatsView) {
    type Figure = fn(&crate::views::WorkerStats) -> u64;
    let figures: [(&str, Kind, &str, Figure); 7] = [
        ("roam_worker_busy_cycles_total", Kind::Counter, "TSC cycles in polling loops that found frames.", |w| {
            w.busy_cycles
        }),
        (
            "roam_worker_idle_cycles_total",
            Kind::Counter,
            "TSC cycles in polling loops that found none (sleeps not counted).",
            |w| w.idle_cycles,
        ),
        ("roam_worker_tsc_hz", Kind::Gauge, "TSC cycles per second (to turn cycles into seconds).", |w| w.tsc_hz),
        (
            "roam_worker_bursts_total",
            Kind::Counter,
            "Rx bursts that brought frames (frames per burst: rate of frames over rate of bursts).",
            |w| w.bursts,
        ),
        ("roam_worker_rx_frames_total", Kind::Counter, "Frames the worker received on all its rx queues.", |w| {
            w.frames
        }),
        ("roam_worker_idle_loops_total", Kind::Counter, "Polling loops that found no frame.", |w| w.idle_loops),
        ("roam_worker_sleeps_total", Kind::Counter, "Back-off sleeps (adaptive polling).", |w| w.sleeps),
    ];
    for (name, kind, help, figure) in figures {
        e.family(name, kind, help);
        for w in &stats.workers {
            e.sample(&[("worker", &w.id.to_string())], figure(w));
        }
    }
    e.family("roam_worker_rx_queue_frames_total", Kind::Counter, "Frames received on each rx queue a worker polls.");
    for w in &stats.workers {
        for q in &w.rx_queues {
            e.sample(&[("worker", &w.id.to_string()), ("port", &q.port), ("queue", &q.queue.to_string())], q.frames);
        }
    }
    e.family(
        "roam_worker_tx_queue_enabled",
        Kind::Gauge,
        "Whether a worker's tx queue is in use (1) or its frames go to the port's owner (0).",
    );
    for w in &stats.workers {
        for q in &w.tx_queues {
            e.sample(
                &[("worker", &w.id.to_string()), ("port", &q.port), ("queue", &q.queue.to_string())],
                q.enabled as u64,
            );
        }
    }
}

/// A port's `stats` as its JSON object (the API's field names).
pub fn port_fields(p: &PortStats) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(p) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// A bound metrics endpoint: `GET /metrics` answers the exposition, any other path 404,
/// any other method 405. One thread serves it, one request at a time (a scraper asks every
/// few seconds); the HTTP is tiny_http's.
#[cfg(feature = "http")]
pub struct Endpoint {
    server: tiny_http::Server,
    addr: std::net::SocketAddr,
}

#[cfg(feature = "http")]
impl Endpoint {
    /// Binds `addr` (`IP:PORT`, e.g. `127.0.0.1:9478` or `[::1]:9478`; port 0 picks one).
    pub fn bind(addr: &str) -> Result<Endpoint, String> {
        let parsed: std::net::SocketAddr =
            addr.parse().map_err(|_| format!("metrics address {addr:?} is not IP:PORT (e.g. 127.0.0.1:9478)"))?;
        let server = tiny_http::Server::http(parsed).map_err(|e| format!("metrics endpoint {parsed}: {e}"))?;
        let addr = server.server_addr().to_ip().unwrap_or(parsed);
        Ok(Endpoint { server, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Answers requests until the process ends; `render` makes each exposition (an error
    /// answers 503 with its message).
    pub fn serve(self, render: impl Fn() -> Result<String, String>) {
        for request in self.server.incoming_requests() {
            let get = matches!(request.method(), tiny_http::Method::Get | tiny_http::Method::Head);
            let path = request.url().split('?').next().unwrap_or("");
            let (status, content_type, body) = match (get, path) {
                (false, _) => (405, "text/plain", "only GET\n".to_string()),
                (true, "/metrics") => match render() {
                    Ok(text) => (200, CONTENT_TYPE, text),
                    Err(e) => (503, "text/plain", format!("{e}\n")),
                },
                (true, _) => (404, "text/plain", "not found: the metrics are at /metrics\n".to_string()),
            };
            let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
            let response = tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
            // A scraper that hung up early is its own problem.
            let _ = request.respond(response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_and_escapes() {
        let mut e = Exposition::new();
        e.family("a_total", Kind::Counter, "Help with \\ and\nnewline.");
        e.sample(&[("port", "x\"y\\z\nw")], 7).sample(&[], 0);
        e.family("b", Kind::Gauge, "B.");
        e.sample_f64(&[("k", "v")], 0.5);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP a_total Help with \\\\ and\\nnewline.\n# TYPE a_total counter\na_total{port=\"x\\\"y\\\\z\\nw\"} 7\na_total 0\n\
             # HELP b B.\n# TYPE b gauge\nb{k=\"v\"} 0.5\n"
        );
    }

    #[test]
    #[should_panic(expected = "written twice")]
    fn refuses_a_family_twice() {
        let mut e = Exposition::new();
        e.family("a", Kind::Gauge, "A.");
        e.family("a", Kind::Gauge, "A.");
    }

    /// Every number a port's `stats` carries is exported (or is the drops' sum), so a
    /// counter added to the API cannot be left out of the metrics unnoticed.
    #[test]
    fn every_port_field_has_a_metric() {
        let p = PortStats {
            port: pipeline::PortId(1),
            name: "vm1".into(),
            input: Default::default(),
            dropped: 0,
            drops: Default::default(),
            balanced: true,
            out_balanced: true,
            out: Default::default(),
        };
        let known: BTreeSet<&str> = PORT_METRICS.iter().map(|m| m.field).collect();
        assert_eq!(known.len(), PORT_METRICS.len(), "a field listed twice");
        for (field, value) in port_fields(&p) {
            if value.is_u64() && !["port", "dropped"].contains(&field.as_str()) {
                assert!(known.contains(field.as_str()), "port field {field} has no metric");
            }
        }
        let names: BTreeSet<&str> = PORT_METRICS.iter().map(|m| m.metric).collect();
        assert_eq!(names.len(), PORT_METRICS.len(), "a metric name used twice");
    }
}
