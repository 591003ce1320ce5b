//! Wire formats: the layout of NCI packets and messages, nothing else.
//!
//! Modelled on smoltcp's `wire`: zero-copy views with checked constructors
//! ([`header::Packet::new_checked`]; no accessor panics once the length is checked) and validated
//! `*Repr` values with `parse` / `buffer_len` / `emit`. Code spaces are open enums whose
//! `Unknown(_)` arm keeps values this crate does not name, so that everything round-trips.
//!
//! This module knows nothing of state: which message may follow which, timers and credits live
//! in the controller state machine.

#[macro_use]
mod macros;
pub mod codes;
pub mod config;
pub mod core;
pub mod header;
pub mod message;
pub mod nfcee;
pub mod nxp;
pub mod rf;
pub mod routing;
pub mod segment;

pub use codes::*;
pub use config::{ConfigParam, NciParamId, ParamId};
pub use header::{Gid, HeaderRepr, MessageType, Packet, PacketId, HEADER_LEN, MAX_PAYLOAD_LEN};
pub use message::{Emit, FieldVisitor, HexBytes, List, Message, StatusRsp, Tlv, Value};

use ::core::fmt;

/// Why bytes could not be parsed or emitted. Allocation-free and small on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before a field the format requires.
    Truncated,
    /// Bytes follow the end of a structure whose length is fully determined by its fields.
    TrailingBytes,
    /// A length or count field disagrees with the data around it.
    BadLength,
    /// A field holds a value the format forbids (not merely one this crate does not name).
    BadValue,
    /// The header names a message (MT/GID/OID) that has no layout in this direction.
    UnknownMessage,
    /// The output buffer is too small for `emit`.
    BufferTooSmall,
    /// A value does not fit the fixed capacity of this crate's containers.
    Capacity,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "truncated",
            Error::TrailingBytes => "trailing bytes after the end of the structure",
            Error::BadLength => "length field disagrees with the data",
            Error::BadValue => "field holds a forbidden value",
            Error::UnknownMessage => "unknown message",
            Error::BufferTooSmall => "output buffer too small",
            Error::Capacity => "value exceeds a fixed capacity",
        };
        f.write_str(s)
    }
}

impl ::core::error::Error for Error {}

/// Result of wire operations.
pub type Result<T> = ::core::result::Result<T, Error>;
