//! Scraping a metrics endpoint as Prometheus would: curl for the HTTP, and the Prometheus
//! project's own text-format parser (Debian's `python3-prometheus-client`) for the text.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;

/// A free TCP port on loopback (bound and released; the daemon binds it next).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// An HTTP answer: status, `Content-Type`, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// GET `url` with curl.
pub fn get(url: &str) -> Answer {
    get_in(None, url)
}

/// GET `url` with curl, in network namespace `ns` if given.
pub fn get_in(ns: Option<&str>, url: &str) -> Answer {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    let out = cmd
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code} %{content_type}", url])
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, meta) = text.rsplit_once('\n').expect("curl's -w line");
    let (status, content_type) = meta.split_once(' ').unwrap_or((meta, ""));
    Answer { status: status.parse().expect("a status"), content_type: content_type.into(), body: body.into() }
}

/// One sample as the parser read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    /// The family's name and type (`counter`, `gauge`, ...).
    pub family: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
pub struct Scrape(pub Vec<Sample>);

impl Scrape {
    /// The value of sample `name` whose labels include all of `labels`; panics unless
    /// exactly one matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .0
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {} samples match", found.len());
        found[0].value
    }

    /// Every sample named `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.0.iter().filter(|s| s.name == name).collect()
    }
}

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
json.dump(out, sys.stdout)
"#;

/// Parses an exposition with `prometheus_client.parser` (Debian's python3, where the
/// package is installed); panics with the parser's message if it refuses the text.
pub fn parse(text: &str) -> Scrape {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/python3 (scripts/setup installs python3-prometheus-client)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("writing the exposition");
    let out = child.wait_with_output().expect("the parser");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape(serde_json::from_slice(&out.stdout).expect("the parser's JSON"))
}

/// GETs `url`, checks it is a Prometheus exposition, and parses it.
pub fn scrape(url: &str) -> Scrape {
    scrape_in(None, url)
}

/// [`scrape`] in network namespace `ns`, if given.
pub fn scrape_in(ns: Option<&str>, url: &str) -> Scrape {
    let a = get_in(ns, url);
    assert_eq!(a.status, 200, "{url}: {}", a.body);
    assert!(a.content_type.starts_with("text/plain; version=0.0.4"), "{url}: Content-Type {}", a.content_type);
    parse(&a.body)
}
