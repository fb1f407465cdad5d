//! The data path's types at the MAC table's edge: the table knows a MAC as a 48-bit integer
//! and a segment slot and a port as plain numbers; these convert.

pub use mac_table::{EntryKind, Key, MacTable, Reader, Value, BATCH};

use crate::ids::{PortId, SegmentSlot};
use crate::wire::mac::MacAddr;

/// The table key of `mac` in segment `slot`.
#[inline]
pub const fn key(mac: MacAddr, slot: SegmentSlot) -> Key {
    Key::new(mac.to_u64(), slot.0)
}

/// The MAC and segment slot of a key.
#[inline]
pub const fn key_parts(k: Key) -> (MacAddr, SegmentSlot) {
    (MacAddr::from_u64(k.mac()), SegmentSlot(k.segment()))
}

/// A table value: frames for the key go out of `port`.
#[inline]
pub const fn value(port: PortId, kind: EntryKind) -> Value {
    Value::new(port.0, kind)
}

/// The output port of a value.
#[inline]
pub const fn port_of(v: Value) -> PortId {
    PortId(v.port())
}
