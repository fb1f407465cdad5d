//! Roam's concurrent MAC table: the workers look up every frame's destination here, the
//! control thread writes when VMs attach, detach or move. Readers never wait for the
//! writer. See `DESIGN.md` beside this crate for the protocol, the cache-line arithmetic
//! and the measured rates.

mod bucket;
mod error;
mod key;
mod reader;
mod search;
mod sync;
mod table;

pub use error::{Error, Result};
pub use key::{EntryKind, Key, Value};
pub use reader::{Reader, BATCH};
pub use search::Search;
pub use table::{MacTable, WriterStats, DEFAULT_MAX_READERS, MAX_CAPACITY};

/// Entries per 64-byte bucket.
pub const BUCKET_SLOTS: usize = bucket::SLOTS;
