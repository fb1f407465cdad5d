//! Typed errors of the safe DPDK layer; each carries DPDK's own error text.

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong talking to DPDK.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the EAL is already initialized in this process (DPDK allows one init per process)")]
    EalAlreadyInitialized,
    #[error("EAL initialization failed: {text} (rte_errno {errno}); arguments: {args}")]
    EalInit { errno: i32, text: String, args: String },
    #[error("name or argument {0:?} contains a NUL byte")]
    BadName(String),
    #[error("mempool `{name}` could not be created: {text} (rte_errno {errno})")]
    MempoolCreate { name: String, errno: i32, text: String },
    #[error("mempool `{0}` is exhausted: no free mbuf")]
    MempoolExhausted(String),
    #[error("ring `{name}` could not be created: {text} (rte_errno {errno})")]
    RingCreate { name: String, errno: i32, text: String },
    #[error("rte_hash `{name}` could not be created: {text} (rte_errno {errno})")]
    HashCreate { name: String, errno: i32, text: String },
    #[error("rte_hash insert failed: {text} (errno {errno})")]
    HashInsert { errno: i32, text: String },
    #[error("cannot hot-plug device `{name}` ({args}): {text} (errno {errno})")]
    Hotplug { name: String, args: String, errno: i32, text: String },
    #[error("no DPDK port named `{0}`")]
    PortNotFound(String),
    #[error("port {port}: {op} failed: {text} (errno {errno})")]
    Port { port: u16, op: &'static str, errno: i32, text: String },
    #[error("port {port}: {kind} queue {queue} does not exist or is already in use")]
    QueueUnavailable { port: u16, kind: &'static str, queue: u16 },
    #[error("mbuf has no room for {0} more bytes")]
    NoRoom(usize),
    #[error("{what} failed: {text} (errno {errno})")]
    Dpdk { what: &'static str, errno: i32, text: String },
}

impl Error {
    /// A port operation failure from a negative DPDK return code.
    pub(crate) fn port(port: u16, op: &'static str, ret: i32) -> Self {
        let errno = ret.abs();
        Error::Port { port, op, errno, text: crate::errno_text(errno) }
    }
}
