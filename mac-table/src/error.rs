//! Errors of the MAC table.

use crate::Key;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("MAC table is full ({capacity} entries)")]
    Full { capacity: usize },
    #[error("no free slot for {0:?}: both of its buckets are full")]
    BucketsFull(Key),
    #[error("{0:?} cannot be stored: the table holds unicast, non-zero MACs only")]
    InvalidKey(Key),
    #[error("capacity {0} is out of range (1 ..= {max})", max = crate::MAX_CAPACITY)]
    BadCapacity(usize),
    #[error("all {0} reader handles are in use")]
    TooManyReaders(usize),
    #[error("this CPU cannot run the {} key search", .0.name())]
    SearchUnsupported(crate::Search),
}
