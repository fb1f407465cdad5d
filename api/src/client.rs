//! A small blocking client of the control socket: one request, one typed answer, or the
//! event stream. vsctl, leafd, the benchmark harness and the test harness use it instead of
//! their own socket code.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::views::{
    Announced, Attached, Detached, FdbView, Hello, Retried, SegmentSet, ShowView, StatsView, Subscribed,
};
use crate::{ArpAnnounce, Attach, ErrorCode, Event, Request, Response, Segment, PROTOCOL_VERSION};

/// What went wrong talking to vswitchd. The causes are sources, not part of the message:
/// `{:#}` (anyhow's alternate form) prints the whole chain once.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to vswitchd at {} (is it running?)", path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("talking to vswitchd")]
    Io(#[from] std::io::Error),
    #[error("vswitchd closed the connection")]
    Closed,
    #[error("vswitchd's answer is not what was asked for")]
    Malformed(#[from] serde_json::Error),
    /// vswitchd refused the request: its code and reason.
    #[error("vswitchd: {message}")]
    Refused { code: ErrorCode, message: String },
}

/// One connection to vswitchd.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects and says `hello`: a vswitchd speaking another protocol version is refused
    /// here, before any request. Answers are waited for at most `timeout` (None: forever).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Client, ClientError> {
        let s =
            UnixStream::connect(path).map_err(|source| ClientError::Connect { path: path.to_path_buf(), source })?;
        s.set_read_timeout(timeout)?;
        let mut c = Client { reader: BufReader::new(s.try_clone()?), writer: s };
        let _: Hello = c.request(&Request::Hello { version: PROTOCOL_VERSION })?;
        Ok(c)
    }

    /// Sends a request and returns its result as JSON (what `vsctl --json` shows), or why
    /// vswitchd refused it.
    pub fn call(&mut self, request: &Request) -> Result<serde_json::Value, ClientError> {
        writeln!(self.writer, "{}", serde_json::to_string(request)?)?;
        let response: Response = serde_json::from_str(&self.line()?)?;
        match response {
            Response { ok: true, result, .. } => Ok(result.unwrap_or(serde_json::Value::Null)),
            Response { error, code, .. } => Err(ClientError::Refused {
                code: code.unwrap_or(ErrorCode::Failed),
                message: error.unwrap_or_default(),
            }),
        }
    }

    /// Sends a request and returns its result as the view `T`.
    pub fn request<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ClientError> {
        Ok(serde_json::from_value(self.call(request)?)?)
    }

    pub fn show(&mut self) -> Result<ShowView, ClientError> {
        self.request(&Request::Show {})
    }

    pub fn fdb(&mut self) -> Result<FdbView, ClientError> {
        self.request(&Request::Fdb {})
    }

    pub fn stats(&mut self) -> Result<StatsView, ClientError> {
        self.request(&Request::Stats {})
    }

    pub fn attach(&mut self, a: Attach) -> Result<Attached, ClientError> {
        self.request(&Request::Attach(a))
    }

    pub fn detach(&mut self, name: &str) -> Result<Detached, ClientError> {
        self.request(&Request::Detach { name: name.to_string() })
    }

    pub fn set_anycast(&mut self, s: Segment) -> Result<SegmentSet, ClientError> {
        self.request(&Request::SetAnycast(s))
    }

    pub fn set_underlay(&mut self, u: crate::Underlay) -> Result<crate::views::UnderlayView, ClientError> {
        self.request(&Request::SetUnderlay(u))
    }

    pub fn arp_announce(&mut self, a: ArpAnnounce) -> Result<Announced, ClientError> {
        self.request(&Request::ArpAnnounce(a))
    }

    pub fn retry(&mut self, name: Option<&str>) -> Result<Retried, ClientError> {
        self.request(&Request::Retry { name: name.map(String::from) })
    }

    /// Subscribes to the event stream: this connection carries nothing else afterwards.
    pub fn events(mut self) -> Result<Events, ClientError> {
        let _: Subscribed = self.request(&Request::Events {})?;
        Ok(Events { client: self })
    }

    fn line(&mut self) -> Result<String, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Closed);
        }
        Ok(line)
    }
}

/// The event stream, one event per line, until vswitchd goes away.
pub struct Events {
    client: Client,
}

impl Events {
    /// The next event as its raw line (what `vsctl events` prints).
    pub fn next_line(&mut self) -> Result<String, ClientError> {
        self.client.line().map(|l| l.trim_end().to_string())
    }
}

impl Iterator for Events {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_line() {
            Ok(l) => Some(serde_json::from_str(&l).map_err(ClientError::from)),
            Err(ClientError::Closed) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
