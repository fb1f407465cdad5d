//! A small blocking client of the control socket: one request, one answer, or the event
//! stream. vsctl, leafd and the benchmark harness use it instead of their own socket code.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Event, Request, Response};

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
    #[error("vswitchd's answer is not a response")]
    Malformed(#[from] serde_json::Error),
    /// vswitchd refused the request; its reason.
    #[error("vswitchd: {0}")]
    Refused(String),
}

/// One connection to vswitchd.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects; answers are waited for at most `timeout` (None: forever).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Client, ClientError> {
        let s =
            UnixStream::connect(path).map_err(|source| ClientError::Connect { path: path.to_path_buf(), source })?;
        s.set_read_timeout(timeout)?;
        Ok(Client { reader: BufReader::new(s.try_clone()?), writer: s })
    }

    /// Sends a request and returns its result (what `--json` shows), or why vswitchd
    /// refused it.
    pub fn call(&mut self, request: &Request) -> Result<serde_json::Value, ClientError> {
        writeln!(self.writer, "{}", serde_json::to_string(request)?)?;
        let response: Response = serde_json::from_str(&self.line()?)?;
        match response {
            Response { ok: true, result, .. } => Ok(result.unwrap_or(serde_json::Value::Null)),
            Response { error, .. } => Err(ClientError::Refused(error.unwrap_or_default())),
        }
    }

    /// Subscribes to the event stream: this connection carries nothing else afterwards.
    pub fn events(mut self) -> Result<Events, ClientError> {
        self.call(&Request::Events {})?;
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
