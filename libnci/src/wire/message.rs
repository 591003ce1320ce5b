//! Whole NCI messages: one [`Message`] enum over every control message this crate knows, plus
//! data messages and opaque proprietary ones; and the framing helpers the message modules share.
//!
//! What this module does:
//! - maps a header identity (MT, GID, OID — NCI 1.0 §3.4, Table 102) to a payload layout and
//!   back ([`Message::parse`], [`Message::header`], [`Message::emit`]);
//! - renders a message as one line of text ([`fmt::Display`]) or feeds its decoded fields to any
//!   [`FieldVisitor`] (e.g. a JSON writer) without allocating;
//! - provides the cursor types ([`Reader`], [`Writer`]), the counted [`List`] and the
//!   type-length-value item [`Tlv`] that every payload layout is written with.
//!
//! What it does not do: segmentation and reassembly (a message here is already whole), and any
//! judgement about whether a message is allowed in the current state.
//!
//! Parsing is strict: a payload shorter than its layout is [`Error::Truncated`], one longer is
//! [`Error::TrailingBytes`], and a length or count octet that disagrees with the bytes around it
//! is [`Error::BadLength`]. Every successfully parsed message emits back to the same bytes.
//! Unknown control messages in the standard groups are [`Error::UnknownMessage`]; any message in
//! the proprietary group (GID 1111b) parses, as [`Message::Proprietary`] when it has no named
//! layout.
//!
//! ```
//! use libnci::wire::core::CoreResetCmd;
//! use libnci::wire::{Message, NciVersion, ResetType};
//!
//! // Host to controller: build and emit CORE_RESET_CMD.
//! let reset = Message::CoreResetCmd(CoreResetCmd { reset_type: ResetType::ResetConfig });
//! let mut packet = [0u8; 258];
//! let len = reset.emit_packet(&mut packet).unwrap();
//! assert_eq!(&packet[..len], &[0x20, 0x00, 0x01, 0x01]);
//!
//! // Controller to host: parse the PN7150's CORE_RESET_RSP.
//! let rsp = Message::parse_packet(&[0x40, 0x00, 0x03, 0x00, 0x10, 0x01], NciVersion::V1_0);
//! let rsp = rsp.unwrap();
//! assert_eq!(
//!     rsp.to_string(),
//!     "CORE_RESET_RSP status=STATUS_OK nci_version=1.0 config_status=NCI_RF_CONFIGURATION_RESET"
//! );
//! ```

use core::fmt;

use super::core::{
    CoreConnCloseCmd, CoreConnCreateCmd, CoreConnCreateRsp, CoreConnCreditsNtf,
    CoreGenericErrorNtf, CoreGetConfigCmd, CoreGetConfigRsp, CoreInitCmd, CoreInitRsp,
    CoreInterfaceErrorNtf, CoreResetCmd, CoreResetNtf, CoreResetRsp, CoreSetConfigCmd,
    CoreSetConfigRsp, CoreSetPowerSubStateCmd,
};
use super::header::{HeaderRepr, Packet, HEADER_LEN, MAX_PAYLOAD_LEN};
use super::nfcee::{
    NfceeDiscoverCmd, NfceeDiscoverNtf, NfceeDiscoverRsp, NfceeModeSetCmd, NfceeModeSetNtf,
    NfceeStatusNtf,
};
use super::nxp::{CoreSetPowerModeCmd, NciProprietaryActRsp, RfPresCheckNtf};
use super::rf::{
    ListenModeRouting, RfDeactivateCmd, RfDeactivateNtf, RfDiscoverCmd, RfDiscoverMapCmd,
    RfDiscoverNtf, RfDiscoverSelectCmd, RfFieldInfoNtf, RfIntfActivatedNtf, RfNfceeActionNtf,
    RfNfceeDiscoveryReqNtf,
};
use super::{Error, Gid, MessageType, NciVersion, PacketId, Result, RfInterface, Status};

// ---------------------------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------------------------

/// A read cursor over a payload. Every read is bounds-checked and fails with a [`wire::Error`]
/// instead of panicking.
///
/// [`wire::Error`]: Error
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Octets not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// `true` when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Octets read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// One octet.
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// A little-endian 16-bit field (NCI sends multi-octet numbers least significant first).
    pub fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// `N` octets as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.bytes(N)?;
        <[u8; N]>::try_from(s).map_err(|_| Error::Truncated)
    }

    /// `n` octets.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A length octet and that many octets. A length pointing past the end of the payload is
    /// [`Error::BadLength`]: the length field disagrees with the data.
    pub fn len_prefixed(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(usize::from(n)).map_err(|_| Error::BadLength)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    /// Succeeds only when every octet has been read.
    pub fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
        }
    }
}

/// A write cursor over an output buffer; running out of room is [`Error::BufferTooSmall`].
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// `true` when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// One octet.
    pub fn u8(&mut self, v: u8) -> Result<()> {
        self.bytes(&[v])
    }

    /// A little-endian 16-bit field.
    pub fn u16_le(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Raw octets.
    pub fn bytes(&mut self, s: &[u8]) -> Result<()> {
        let end = self.pos.checked_add(s.len()).ok_or(Error::BufferTooSmall)?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        dst.copy_from_slice(s);
        self.pos = end;
        Ok(())
    }

    /// A length octet and the octets; more than 255 octets is [`Error::Capacity`].
    pub fn len_prefixed(&mut self, s: &[u8]) -> Result<()> {
        self.u8(count_u8(s.len())?)?;
        self.bytes(s)
    }
}

/// A count or length for a one-octet field; more than 255 is [`Error::Capacity`].
pub fn count_u8(n: usize) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::Capacity)
}

/// What every payload layout (`*Repr`) can do besides `parse`: say its size and write itself.
pub trait Emit {
    /// Length of the emitted payload in octets.
    fn buffer_len(&self) -> usize;

    /// Write the payload at the writer's position.
    fn write(&self, w: &mut Writer<'_>) -> Result<()>;

    /// Write the payload to the start of `out`; returns the number of octets written.
    fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(out);
        self.write(&mut w)?;
        Ok(w.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Counted lists
// ---------------------------------------------------------------------------------------------

/// An item of a counted list inside a payload (interfaces, TLVs, credit entries, ...).
pub trait ListItem<'a>: Sized + Copy {
    /// Read one item.
    fn read(r: &mut Reader<'a>) -> Result<Self>;
    /// Length of the item on the wire.
    fn item_len(&self) -> usize;
    /// Write one item.
    fn write(&self, w: &mut Writer<'_>) -> Result<()>;
    /// Describe the item as one list element.
    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result;
}

/// A list whose item count is carried in a separate octet of the payload.
///
/// A parsed list borrows the validated wire bytes and decodes items lazily; a list built with
/// [`List::from_items`] borrows caller-owned items. Both compare, iterate and emit alike.
#[derive(Clone, Copy)]
pub struct List<'a, T> {
    repr: ListRepr<'a, T>,
}

#[derive(Clone, Copy)]
enum ListRepr<'a, T> {
    Wire { count: usize, bytes: &'a [u8] },
    Items(&'a [T]),
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// A list of caller-owned items.
    pub fn from_items(items: &'a [T]) -> List<'a, T> {
        List {
            repr: ListRepr::Items(items),
        }
    }

    /// An empty list.
    pub fn empty() -> List<'a, T> {
        List {
            repr: ListRepr::Items(&[]),
        }
    }

    /// Read exactly `count` items at the reader's position. Items that run past the end of the
    /// payload mean the count disagrees with the data: [`Error::BadLength`].
    pub fn read(count: usize, r: &mut Reader<'a>) -> Result<List<'a, T>> {
        let start = r.clone();
        let before = r.position();
        for _ in 0..count {
            T::read(r).map_err(|e| match e {
                Error::Truncated => Error::BadLength,
                other => other,
            })?;
        }
        let mut start = start;
        let bytes = start.bytes(r.position() - before)?;
        Ok(List {
            repr: ListRepr::Wire { count, bytes },
        })
    }

    /// Read a count octet and that many items.
    pub fn read_counted(r: &mut Reader<'a>) -> Result<List<'a, T>> {
        let count = r.u8()?;
        List::read(usize::from(count), r)
    }

    /// Validate `bytes` as exactly `count` items and nothing else.
    pub fn parse(count: usize, bytes: &'a [u8]) -> Result<List<'a, T>> {
        let mut r = Reader::new(bytes);
        let list = List::read(count, &mut r)?;
        r.finish()?;
        Ok(list)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self.repr {
            ListRepr::Wire { count, .. } => count,
            ListRepr::Items(items) => items.len(),
        }
    }

    /// `true` when the list has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item count as the one-octet field that precedes the list.
    pub fn count_u8(&self) -> Result<u8> {
        count_u8(self.len())
    }

    /// The items, in wire order.
    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter {
            inner: match self.repr {
                ListRepr::Wire { count, bytes } => IterRepr::Wire {
                    reader: Reader::new(bytes),
                    left: count,
                },
                ListRepr::Items(items) => IterRepr::Items(items.iter()),
            },
        }
    }

    /// The wire bytes of a parsed list (`None` for a list built from items).
    pub fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            ListRepr::Wire { bytes, .. } => Some(bytes),
            ListRepr::Items(_) => None,
        }
    }

    /// Length of the items on the wire (without the count octet).
    pub fn buffer_len(&self) -> usize {
        match self.repr {
            ListRepr::Wire { bytes, .. } => bytes.len(),
            ListRepr::Items(items) => items.iter().map(ListItem::item_len).sum(),
        }
    }

    /// Write the items (without the count octet).
    pub fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        match self.repr {
            ListRepr::Wire { bytes, .. } => w.bytes(bytes),
            ListRepr::Items(items) => items.iter().try_for_each(|item| item.write(w)),
        }
    }

    /// Write the count octet and the items.
    pub fn write_counted(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.count_u8()?)?;
        self.write(w)
    }

    /// Describe the list as the field `key`.
    pub fn visit(&self, key: &str, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.list_begin(key)?;
        for item in self.iter() {
            item.visit(v)?;
        }
        v.list_end()
    }
}

impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: ListItem<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: ListItem<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over the items of a [`List`].
pub struct ListIter<'a, T> {
    inner: IterRepr<'a, T>,
}

enum IterRepr<'a, T> {
    Wire { reader: Reader<'a>, left: usize },
    Items(core::slice::Iter<'a, T>),
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            IterRepr::Wire { reader, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // The bytes were validated when the list was read, so this cannot fail; stop
                // quietly rather than panic if it ever did.
                T::read(reader).ok()
            }
            IterRepr::Items(items) => items.next().copied(),
        }
    }
}

/// A type-length-value item: one type octet, one length octet, the value (routing entries, NCI
/// 1.0 and 2.0 RF_SET_LISTEN_MODE_ROUTING_CMD; CORE_CONN_CREATE_CMD destination-specific
/// parameters; NFCEE information and discovery requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    /// The type octet, kept whole (routing entries carry qualifier bits in it).
    pub tag: u8,
    /// The value.
    pub value: &'a [u8],
}

impl<'a> ListItem<'a> for Tlv<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let tag = r.u8()?;
        let value = r.len_prefixed()?;
        Ok(Tlv { tag, value })
    }

    fn item_len(&self) -> usize {
        2 + self.value.len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.tag)?;
        w.len_prefixed(self.value)
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item_record_begin()?;
        v.field("type", Value::Hex(core::slice::from_ref(&self.tag)))?;
        v.field("value", Value::Hex(self.value))?;
        v.record_end()
    }
}

impl<'a> ListItem<'a> for u8 {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.u8()
    }

    fn item_len(&self) -> usize {
        1
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(*self)
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item(Value::Num(u64::from(*self)))
    }
}

impl<'a> ListItem<'a> for RfInterface {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.u8().map(RfInterface::from)
    }

    fn item_len(&self) -> usize {
        1
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(u8::from(*self))
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item(Value::Name(self))
    }
}

// ---------------------------------------------------------------------------------------------
// Decoded fields
// ---------------------------------------------------------------------------------------------

/// A decoded field value handed to a [`FieldVisitor`].
#[derive(Clone, Copy)]
pub enum Value<'a> {
    /// A number, rendered in decimal.
    Num(u64),
    /// Octets, rendered as hex.
    Hex(&'a [u8]),
    /// A symbolic value (a code point's specification name, or its hex value when unnamed).
    Name(&'a dyn fmt::Display),
    /// A flag.
    Flag(bool),
}

/// Receives the decoded fields of a message in wire order. Implemented by the one-line text
/// rendering ([`fmt::Display`] of [`Message`]) and by structured writers such as `ncidump --json`.
///
/// Calls nest: `list_begin`/`list_end` enclose items (`item`, or `item_record_begin` ...
/// `record_end`), and `record_begin`/`record_end` enclose the fields of a named sub-structure.
pub trait FieldVisitor {
    /// A named scalar field.
    fn field(&mut self, key: &str, value: Value<'_>) -> fmt::Result;
    /// Start of a named list.
    fn list_begin(&mut self, key: &str) -> fmt::Result;
    /// End of the innermost list.
    fn list_end(&mut self) -> fmt::Result;
    /// A scalar list item.
    fn item(&mut self, value: Value<'_>) -> fmt::Result;
    /// Start of a list item that has fields of its own.
    fn item_record_begin(&mut self) -> fmt::Result;
    /// Start of a named sub-structure.
    fn record_begin(&mut self, key: &str) -> fmt::Result;
    /// End of the innermost record (named or list item).
    fn record_end(&mut self) -> fmt::Result;
}

/// Octets rendered as space-separated upper-case hex (`03 1E 03 00`), `-` when empty.
#[derive(Clone, Copy)]
pub struct HexBytes<'a>(pub &'a [u8]);

impl fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The one-line text rendering: `key=value` pairs separated by spaces, lists in `[...]`,
/// sub-structures in `{...}`.
pub struct TextFields<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    need_sep: bool,
}

impl<'a, 'b> TextFields<'a, 'b> {
    /// A renderer writing to `f`; `need_sep` says whether something precedes the first field.
    pub fn new(f: &'a mut fmt::Formatter<'b>, need_sep: bool) -> TextFields<'a, 'b> {
        TextFields { f, need_sep }
    }

    fn sep(&mut self) -> fmt::Result {
        if self.need_sep {
            self.f.write_str(" ")?;
        }
        Ok(())
    }

    fn value(&mut self, value: Value<'_>) -> fmt::Result {
        match value {
            Value::Num(n) => write!(self.f, "{n}"),
            Value::Hex(b) => write!(self.f, "{}", HexBytes(b)),
            Value::Name(d) => write!(self.f, "{d}"),
            Value::Flag(b) => write!(self.f, "{b}"),
        }
    }
}

impl FieldVisitor for TextFields<'_, '_> {
    fn field(&mut self, key: &str, value: Value<'_>) -> fmt::Result {
        self.sep()?;
        write!(self.f, "{key}=")?;
        self.value(value)?;
        self.need_sep = true;
        Ok(())
    }

    fn list_begin(&mut self, key: &str) -> fmt::Result {
        self.sep()?;
        write!(self.f, "{key}=[")?;
        self.need_sep = false;
        Ok(())
    }

    fn list_end(&mut self) -> fmt::Result {
        self.need_sep = true;
        self.f.write_str("]")
    }

    fn item(&mut self, value: Value<'_>) -> fmt::Result {
        self.sep()?;
        self.value(value)?;
        self.need_sep = true;
        Ok(())
    }

    fn item_record_begin(&mut self) -> fmt::Result {
        self.sep()?;
        self.need_sep = false;
        self.f.write_str("{")
    }

    fn record_begin(&mut self, key: &str) -> fmt::Result {
        self.sep()?;
        write!(self.f, "{key}={{")?;
        self.need_sep = false;
        Ok(())
    }

    fn record_end(&mut self) -> fmt::Result {
        self.need_sep = true;
        self.f.write_str("}")
    }
}

/// Declares a payload made only of one-octet fields (a status, a code point, an identifier),
/// with `parse`, `visit` and [`Emit`]. Each field names its key in the decoded output and how it
/// renders: `name` (a code point's specification name), `num` (decimal) or `hex`.
macro_rules! octet_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident: $ty:ty => $key:literal $render:ident,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )+
        }

        impl $name {
            /// Parse the payload: exactly one octet per field.
            pub fn parse(payload: &[u8]) -> $crate::wire::Result<$name> {
                let mut r = $crate::wire::message::Reader::new(payload);
                let parsed = $name {
                    $( $field: <$ty>::from(r.u8()?), )+
                };
                r.finish()?;
                Ok(parsed)
            }

            /// Describe the fields.
            pub fn visit(
                &self,
                v: &mut dyn $crate::wire::FieldVisitor,
            ) -> ::core::fmt::Result {
                $( $crate::wire::message::octet_fields!(@visit v $key $render self.$field); )+
                Ok(())
            }
        }

        impl $crate::wire::Emit for $name {
            fn buffer_len(&self) -> usize {
                [$( stringify!($field) ),+].len()
            }

            fn write(
                &self,
                w: &mut $crate::wire::message::Writer<'_>,
            ) -> $crate::wire::Result<()> {
                w.bytes(&[$( u8::from(self.$field) ),+])
            }
        }
    };
    (@visit $v:ident $key:literal name $value:expr) => {
        $v.field($key, $crate::wire::Value::Name(&$value))?
    };
    (@visit $v:ident $key:literal num $value:expr) => {
        $v.field($key, $crate::wire::Value::Num(u64::from(u8::from($value))))?
    };
    (@visit $v:ident $key:literal hex $value:expr) => {
        $v.field($key, $crate::wire::Value::Hex(&[u8::from($value)]))?
    };
}
pub(crate) use octet_fields;

/// Declares a payload that is a counted list — a count octet and that many items — optionally
/// after one leading octet that holds a code point (a status, a destination type), with
/// `parse`, `visit` and [`Emit`].
macro_rules! list_payload {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> {
            $(#[$hmeta:meta])*
            pub $head:ident: $hty:ty => $hkey:literal,
            $(#[$fmeta:meta])*
            pub $field:ident: List<$lt2:lifetime, $item:ty> => $key:literal,
        }
    ) => {
        $crate::wire::message::list_payload!(@emit $(#[$meta])* $name $lt
            [$(#[$hmeta])* $head: $hty => $hkey]
            $(#[$fmeta])* $field $lt2 $item => $key);
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> {
            $(#[$fmeta:meta])*
            pub $field:ident: List<$lt2:lifetime, $item:ty> => $key:literal,
        }
    ) => {
        $crate::wire::message::list_payload!(@emit $(#[$meta])* $name $lt
            []
            $(#[$fmeta])* $field $lt2 $item => $key);
    };
    (
        @emit $(#[$meta:meta])* $name:ident $lt:lifetime
        [$( $(#[$hmeta:meta])* $head:ident: $hty:ty => $hkey:literal )?]
        $(#[$fmeta:meta])* $field:ident $lt2:lifetime $item:ty => $key:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<$lt> {
            $( $(#[$hmeta])* pub $head: $hty, )?
            $(#[$fmeta])*
            pub $field: $crate::wire::List<$lt2, $item>,
        }

        impl<$lt> $name<$lt> {
            /// Parse the payload.
            pub fn parse(payload: &$lt [u8]) -> $crate::wire::Result<$name<$lt>> {
                let mut r = $crate::wire::message::Reader::new(payload);
                $( let $head = <$hty>::from(r.u8()?); )?
                let $field = $crate::wire::List::read_counted(&mut r)?;
                r.finish()?;
                Ok($name { $( $head, )? $field })
            }

            /// Describe the fields.
            pub fn visit(
                &self,
                v: &mut dyn $crate::wire::FieldVisitor,
            ) -> ::core::fmt::Result {
                $( v.field($hkey, $crate::wire::Value::Name(&self.$head))?; )?
                self.$field.visit($key, v)
            }
        }

        impl $crate::wire::Emit for $name<'_> {
            fn buffer_len(&self) -> usize {
                <[&str]>::len(&[$( stringify!($head) )?]) + 1 + self.$field.buffer_len()
            }

            fn write(
                &self,
                w: &mut $crate::wire::message::Writer<'_>,
            ) -> $crate::wire::Result<()> {
                $( w.u8(u8::from(self.$head))?; )?
                self.$field.write_counted(w)
            }
        }
    };
}
pub(crate) use list_payload;

// ---------------------------------------------------------------------------------------------
// Payloads shared by several groups
// ---------------------------------------------------------------------------------------------

octet_fields! {
    /// A response whose whole payload is a status octet (e.g. RF_DISCOVER_RSP, NCI 1.0 and 2.0).
    pub struct StatusRsp {
        /// Outcome of the command.
        pub status: Status => "status" name,
    }
}

// ---------------------------------------------------------------------------------------------
// The message table
// ---------------------------------------------------------------------------------------------

/// Declares [`Message`] from one table row per message: variant, payload type, header identity,
/// the specification's name and the parse expression (with the payload and version bound to the
/// given names). Rows without a payload type have an empty payload.
macro_rules! messages {
    (
        $(
            $variant:ident $( ($ty:ty) )? = $mt:ident $gid:ident $oid:expr, $name:literal
                $( => |$p:ident, $v:ident| $parse:expr )? ;
        )*
    ) => {
        /// One whole NCI message of any group, in either direction (NCI 1.0 and NCI 2.0 control
        /// and data messages; NXP PN7150 extensions from UM10936).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Message<'a> {
            $(
                #[doc = concat!("`", $name, "`.")]
                $variant $( ($ty) )?,
            )*
            /// Any other message of the proprietary group (GID 1111b), kept as received.
            Proprietary {
                /// Message type.
                mt: MessageType,
                /// Opcode.
                oid: u8,
                /// Payload, not interpreted.
                payload: &'a [u8],
            },
            /// A data message on a logical connection (NCI 1.0 §3.4, data packets).
            Data {
                /// Connection identifier; 0 is the static RF connection.
                conn_id: u8,
                /// NCI 2.0 credits field of the header (0 under NCI 1.0).
                credits: u8,
                /// Payload (an APDU on the ISO-DEP RF interface).
                payload: &'a [u8],
            },
        }

        impl<'a> Message<'a> {
            fn parse_control(
                mt: MessageType,
                gid: Gid,
                oid: u8,
                payload: &'a [u8],
                version: NciVersion,
            ) -> Result<Message<'a>> {
                $(
                    if mt == MessageType::$mt && gid == Gid::$gid && oid == $oid {
                        return messages!(
                            @parse $variant payload version $( $ty => |$p, $v| $parse )?
                        );
                    }
                )*
                let _ = (payload, version);
                Err(Error::UnknownMessage)
            }

            /// The message type and identity to put in the packet header(s).
            pub fn header(&self) -> (MessageType, PacketId) {
                match self {
                    $(
                        messages!(@pat $variant $( $ty )?) => (
                            MessageType::$mt,
                            PacketId::Control { gid: Gid::$gid, oid: $oid },
                        ),
                    )*
                    Message::Proprietary { mt, oid, .. } => {
                        (*mt, PacketId::Control { gid: Gid::Proprietary, oid: *oid })
                    }
                    Message::Data { conn_id, credits, .. } => (
                        MessageType::Data,
                        PacketId::Data { conn_id: *conn_id, credits: *credits },
                    ),
                }
            }

            /// The name of the message a header announces, without looking at the payload (for
            /// segments, and for logging messages that failed to parse): `None` for an unknown
            /// message in a standard group.
            pub fn name_for(mt: MessageType, id: PacketId) -> Option<&'static str> {
                match id {
                    PacketId::Data { .. } => (mt == MessageType::Data).then_some("DATA"),
                    PacketId::Control { gid, oid } => {
                        $(
                            if mt == MessageType::$mt && gid == Gid::$gid && oid == $oid {
                                return Some($name);
                            }
                        )*
                        (gid == Gid::Proprietary).then(|| proprietary_name(mt))
                    }
                }
            }

            /// The specification's name of the message (`"CORE_INIT_RSP"`, `"DATA"`, ...).
            /// Unnamed proprietary messages are `PROPRIETARY_CMD`, `_RSP` or `_NTF`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( messages!(@pat $variant $( $ty )?) => $name, )*
                    Message::Proprietary { mt, .. } => proprietary_name(*mt),
                    Message::Data { .. } => "DATA",
                }
            }

            /// Length of the payload in octets.
            pub fn buffer_len(&self) -> usize {
                match self {
                    $( messages!(@bind $variant m $( $ty )?) => messages!(@len m $( $ty )?), )*
                    Message::Proprietary { payload, .. } | Message::Data { payload, .. } => {
                        payload.len()
                    }
                }
            }

            fn write(&self, w: &mut Writer<'_>) -> Result<()> {
                match self {
                    $( messages!(@bind $variant m $( $ty )?) => messages!(@write m w $( $ty )?), )*
                    Message::Proprietary { payload, .. } | Message::Data { payload, .. } => {
                        w.bytes(payload)
                    }
                }
            }

            /// Feed the decoded fields (not the name) to `v`, in wire order.
            pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
                match self {
                    $( messages!(@bind $variant m $( $ty )?) => messages!(@visit m v $( $ty )?), )*
                    Message::Proprietary { oid, payload, .. } => {
                        v.field("oid", Value::Num(u64::from(*oid)))?;
                        v.field("payload", Value::Hex(payload))
                    }
                    Message::Data { conn_id, credits, payload } => {
                        v.field("conn_id", Value::Num(u64::from(*conn_id)))?;
                        v.field("credits", Value::Num(u64::from(*credits)))?;
                        v.field("len", Value::Num(payload.len() as u64))?;
                        v.field("payload", Value::Hex(payload))
                    }
                }
            }
        }
    };

    (
        @parse $variant:ident $payload:ident $version:ident
        $ty:ty => |$p:ident, $v:ident| $parse:expr
    ) => {{
        let $p = $payload;
        #[allow(unused_variables)]
        let $v = $version;
        let parsed: Result<$ty> = $parse;
        parsed.map(Message::$variant)
    }};
    (@parse $variant:ident $payload:ident $version:ident) => {
        if $payload.is_empty() {
            Ok(Message::$variant)
        } else {
            Err(Error::TrailingBytes)
        }
    };
    (@pat $variant:ident $ty:ty) => { Message::$variant(_) };
    (@pat $variant:ident) => { Message::$variant };
    (@bind $variant:ident $m:ident $ty:ty) => { Message::$variant($m) };
    (@bind $variant:ident $m:ident) => { Message::$variant };
    (@len $m:ident $ty:ty) => { $m.buffer_len() };
    (@len $m:ident) => { 0 };
    (@write $m:ident $w:ident $ty:ty) => { $m.write($w) };
    (@write $m:ident $w:ident) => { Ok(()) };
    (@visit $m:ident $v:ident $ty:ty) => { $m.visit($v) };
    (@visit $m:ident $v:ident) => { Ok(()) };
}

fn proprietary_name(mt: MessageType) -> &'static str {
    match mt {
        MessageType::Command => "PROPRIETARY_CMD",
        MessageType::Response => "PROPRIETARY_RSP",
        MessageType::Notification => "PROPRIETARY_NTF",
        _ => "PROPRIETARY",
    }
}

use super::core::oid as core_oid;
use super::nfcee::oid as nfcee_oid;
use super::nxp::oid as nxp_oid;
use super::rf::oid as rf_oid;

messages! {
    CoreResetCmd(CoreResetCmd) = Command Core core_oid::CORE_RESET, "CORE_RESET_CMD"
        => |p, v| CoreResetCmd::parse(p);
    CoreResetRsp(CoreResetRsp) = Response Core core_oid::CORE_RESET, "CORE_RESET_RSP"
        => |p, v| CoreResetRsp::parse(p);
    CoreResetNtf(CoreResetNtf<'a>) = Notification Core core_oid::CORE_RESET, "CORE_RESET_NTF"
        => |p, v| CoreResetNtf::parse(p);
    CoreInitCmd(CoreInitCmd) = Command Core core_oid::CORE_INIT, "CORE_INIT_CMD"
        => |p, v| CoreInitCmd::parse(p, v);
    CoreInitRsp(CoreInitRsp<'a>) = Response Core core_oid::CORE_INIT, "CORE_INIT_RSP"
        => |p, v| CoreInitRsp::parse(p, v);
    CoreSetConfigCmd(CoreSetConfigCmd<'a>) = Command Core core_oid::CORE_SET_CONFIG,
        "CORE_SET_CONFIG_CMD" => |p, v| CoreSetConfigCmd::parse(p);
    CoreSetConfigRsp(CoreSetConfigRsp<'a>) = Response Core core_oid::CORE_SET_CONFIG,
        "CORE_SET_CONFIG_RSP" => |p, v| CoreSetConfigRsp::parse(p);
    CoreGetConfigCmd(CoreGetConfigCmd<'a>) = Command Core core_oid::CORE_GET_CONFIG,
        "CORE_GET_CONFIG_CMD" => |p, v| CoreGetConfigCmd::parse(p);
    CoreGetConfigRsp(CoreGetConfigRsp<'a>) = Response Core core_oid::CORE_GET_CONFIG,
        "CORE_GET_CONFIG_RSP" => |p, v| CoreGetConfigRsp::parse(p);
    CoreConnCreateCmd(CoreConnCreateCmd<'a>) = Command Core core_oid::CORE_CONN_CREATE,
        "CORE_CONN_CREATE_CMD" => |p, v| CoreConnCreateCmd::parse(p);
    CoreConnCreateRsp(CoreConnCreateRsp) = Response Core core_oid::CORE_CONN_CREATE,
        "CORE_CONN_CREATE_RSP" => |p, v| CoreConnCreateRsp::parse(p);
    CoreConnCloseCmd(CoreConnCloseCmd) = Command Core core_oid::CORE_CONN_CLOSE,
        "CORE_CONN_CLOSE_CMD" => |p, v| CoreConnCloseCmd::parse(p);
    CoreConnCloseRsp(StatusRsp) = Response Core core_oid::CORE_CONN_CLOSE, "CORE_CONN_CLOSE_RSP"
        => |p, v| StatusRsp::parse(p);
    CoreConnCreditsNtf(CoreConnCreditsNtf<'a>) = Notification Core core_oid::CORE_CONN_CREDITS,
        "CORE_CONN_CREDITS_NTF" => |p, v| CoreConnCreditsNtf::parse(p);
    CoreGenericErrorNtf(CoreGenericErrorNtf) = Notification Core core_oid::CORE_GENERIC_ERROR,
        "CORE_GENERIC_ERROR_NTF" => |p, v| CoreGenericErrorNtf::parse(p);
    CoreInterfaceErrorNtf(CoreInterfaceErrorNtf) = Notification Core
        core_oid::CORE_INTERFACE_ERROR, "CORE_INTERFACE_ERROR_NTF"
        => |p, v| CoreInterfaceErrorNtf::parse(p);
    CoreSetPowerSubStateCmd(CoreSetPowerSubStateCmd) = Command Core
        core_oid::CORE_SET_POWER_SUB_STATE, "CORE_SET_POWER_SUB_STATE_CMD"
        => |p, v| CoreSetPowerSubStateCmd::parse(p);
    CoreSetPowerSubStateRsp(StatusRsp) = Response Core core_oid::CORE_SET_POWER_SUB_STATE,
        "CORE_SET_POWER_SUB_STATE_RSP" => |p, v| StatusRsp::parse(p);

    RfDiscoverMapCmd(RfDiscoverMapCmd<'a>) = Command Rf rf_oid::RF_DISCOVER_MAP,
        "RF_DISCOVER_MAP_CMD" => |p, v| RfDiscoverMapCmd::parse(p);
    RfDiscoverMapRsp(StatusRsp) = Response Rf rf_oid::RF_DISCOVER_MAP, "RF_DISCOVER_MAP_RSP"
        => |p, v| StatusRsp::parse(p);
    RfSetListenModeRoutingCmd(ListenModeRouting<'a>) = Command Rf
        rf_oid::RF_SET_LISTEN_MODE_ROUTING, "RF_SET_LISTEN_MODE_ROUTING_CMD"
        => |p, v| ListenModeRouting::parse(p);
    RfSetListenModeRoutingRsp(StatusRsp) = Response Rf rf_oid::RF_SET_LISTEN_MODE_ROUTING,
        "RF_SET_LISTEN_MODE_ROUTING_RSP" => |p, v| StatusRsp::parse(p);
    RfGetListenModeRoutingCmd = Command Rf rf_oid::RF_GET_LISTEN_MODE_ROUTING,
        "RF_GET_LISTEN_MODE_ROUTING_CMD";
    RfGetListenModeRoutingRsp(StatusRsp) = Response Rf rf_oid::RF_GET_LISTEN_MODE_ROUTING,
        "RF_GET_LISTEN_MODE_ROUTING_RSP" => |p, v| StatusRsp::parse(p);
    RfGetListenModeRoutingNtf(ListenModeRouting<'a>) = Notification Rf
        rf_oid::RF_GET_LISTEN_MODE_ROUTING, "RF_GET_LISTEN_MODE_ROUTING_NTF"
        => |p, v| ListenModeRouting::parse(p);
    RfDiscoverCmd(RfDiscoverCmd<'a>) = Command Rf rf_oid::RF_DISCOVER, "RF_DISCOVER_CMD"
        => |p, v| RfDiscoverCmd::parse(p);
    RfDiscoverRsp(StatusRsp) = Response Rf rf_oid::RF_DISCOVER, "RF_DISCOVER_RSP"
        => |p, v| StatusRsp::parse(p);
    RfDiscoverNtf(RfDiscoverNtf<'a>) = Notification Rf rf_oid::RF_DISCOVER, "RF_DISCOVER_NTF"
        => |p, v| RfDiscoverNtf::parse(p);
    RfDiscoverSelectCmd(RfDiscoverSelectCmd) = Command Rf rf_oid::RF_DISCOVER_SELECT,
        "RF_DISCOVER_SELECT_CMD" => |p, v| RfDiscoverSelectCmd::parse(p);
    RfDiscoverSelectRsp(StatusRsp) = Response Rf rf_oid::RF_DISCOVER_SELECT,
        "RF_DISCOVER_SELECT_RSP" => |p, v| StatusRsp::parse(p);
    RfIntfActivatedNtf(RfIntfActivatedNtf<'a>) = Notification Rf rf_oid::RF_INTF_ACTIVATED,
        "RF_INTF_ACTIVATED_NTF" => |p, v| RfIntfActivatedNtf::parse(p);
    RfDeactivateCmd(RfDeactivateCmd) = Command Rf rf_oid::RF_DEACTIVATE, "RF_DEACTIVATE_CMD"
        => |p, v| RfDeactivateCmd::parse(p);
    RfDeactivateRsp(StatusRsp) = Response Rf rf_oid::RF_DEACTIVATE, "RF_DEACTIVATE_RSP"
        => |p, v| StatusRsp::parse(p);
    RfDeactivateNtf(RfDeactivateNtf) = Notification Rf rf_oid::RF_DEACTIVATE,
        "RF_DEACTIVATE_NTF" => |p, v| RfDeactivateNtf::parse(p);
    RfFieldInfoNtf(RfFieldInfoNtf) = Notification Rf rf_oid::RF_FIELD_INFO, "RF_FIELD_INFO_NTF"
        => |p, v| RfFieldInfoNtf::parse(p);
    RfNfceeActionNtf(RfNfceeActionNtf<'a>) = Notification Rf rf_oid::RF_NFCEE_ACTION,
        "RF_NFCEE_ACTION_NTF" => |p, v| RfNfceeActionNtf::parse(p);
    RfNfceeDiscoveryReqNtf(RfNfceeDiscoveryReqNtf<'a>) = Notification Rf
        rf_oid::RF_NFCEE_DISCOVERY_REQ, "RF_NFCEE_DISCOVERY_REQ_NTF"
        => |p, v| RfNfceeDiscoveryReqNtf::parse(p);

    NfceeDiscoverCmd(NfceeDiscoverCmd) = Command Nfcee nfcee_oid::NFCEE_DISCOVER,
        "NFCEE_DISCOVER_CMD" => |p, v| NfceeDiscoverCmd::parse(p, v);
    NfceeDiscoverRsp(NfceeDiscoverRsp) = Response Nfcee nfcee_oid::NFCEE_DISCOVER,
        "NFCEE_DISCOVER_RSP" => |p, v| NfceeDiscoverRsp::parse(p);
    NfceeDiscoverNtf(NfceeDiscoverNtf<'a>) = Notification Nfcee nfcee_oid::NFCEE_DISCOVER,
        "NFCEE_DISCOVER_NTF" => |p, v| NfceeDiscoverNtf::parse(p);
    NfceeModeSetCmd(NfceeModeSetCmd) = Command Nfcee nfcee_oid::NFCEE_MODE_SET,
        "NFCEE_MODE_SET_CMD" => |p, v| NfceeModeSetCmd::parse(p);
    NfceeModeSetRsp(StatusRsp) = Response Nfcee nfcee_oid::NFCEE_MODE_SET, "NFCEE_MODE_SET_RSP"
        => |p, v| StatusRsp::parse(p);
    NfceeModeSetNtf(NfceeModeSetNtf) = Notification Nfcee nfcee_oid::NFCEE_MODE_SET,
        "NFCEE_MODE_SET_NTF" => |p, v| NfceeModeSetNtf::parse(p);
    NfceeStatusNtf(NfceeStatusNtf) = Notification Nfcee nfcee_oid::NFCEE_STATUS,
        "NFCEE_STATUS_NTF" => |p, v| NfceeStatusNtf::parse(p);

    CoreSetPowerModeCmd(CoreSetPowerModeCmd) = Command Proprietary nxp_oid::CORE_SET_POWER_MODE,
        "CORE_SET_POWER_MODE_CMD" => |p, v| CoreSetPowerModeCmd::parse(p);
    CoreSetPowerModeRsp(StatusRsp) = Response Proprietary nxp_oid::CORE_SET_POWER_MODE,
        "CORE_SET_POWER_MODE_RSP" => |p, v| StatusRsp::parse(p);
    NciProprietaryActCmd = Command Proprietary nxp_oid::NCI_PROPRIETARY_ACT,
        "NCI_PROPRIETARY_ACT_CMD";
    NciProprietaryActRsp(NciProprietaryActRsp<'a>) = Response Proprietary
        nxp_oid::NCI_PROPRIETARY_ACT, "NCI_PROPRIETARY_ACT_RSP"
        => |p, v| NciProprietaryActRsp::parse(p);
    RfPresCheckCmd = Command Proprietary nxp_oid::RF_PRES_CHECK, "RF_PRES_CHECK_CMD";
    RfPresCheckRsp(StatusRsp) = Response Proprietary nxp_oid::RF_PRES_CHECK, "RF_PRES_CHECK_RSP"
        => |p, v| StatusRsp::parse(p);
    RfPresCheckNtf(RfPresCheckNtf) = Notification Proprietary nxp_oid::RF_PRES_CHECK,
        "RF_PRES_CHECK_NTF" => |p, v| RfPresCheckNtf::parse(p);
}

impl<'a> Message<'a> {
    /// Parse a whole message (payload already reassembled from segments).
    ///
    /// `version` selects between the NCI 1.0 and NCI 2.0 layouts where they differ
    /// ([`NciVersion::is_v2`]): CORE_INIT_CMD/RSP and NFCEE_DISCOVER_CMD. CORE_RESET_RSP and
    /// CORE_RESET_NTF are told apart by their length instead, because they are what the version
    /// is learnt from (see [`CoreResetRsp::parse`]).
    pub fn parse(
        mt: MessageType,
        id: PacketId,
        payload: &'a [u8],
        version: NciVersion,
    ) -> Result<Message<'a>> {
        match (mt, id) {
            (MessageType::Data, PacketId::Data { conn_id, credits }) => Ok(Message::Data {
                conn_id,
                credits,
                payload,
            }),
            (MessageType::Data, PacketId::Control { .. }) | (_, PacketId::Data { .. }) => {
                Err(Error::UnknownMessage)
            }
            (
                mt,
                PacketId::Control {
                    gid: Gid::Proprietary,
                    oid,
                },
            ) => Ok(
                Message::parse_control(mt, Gid::Proprietary, oid, payload, version)
                    .unwrap_or(Message::Proprietary { mt, oid, payload }),
            ),
            (mt, PacketId::Control { gid, oid }) => {
                Message::parse_control(mt, gid, oid, payload, version)
            }
        }
    }

    /// Parse one unsegmented packet (header and payload, nothing more). A packet with the
    /// packet boundary flag set is only the first part of a message: [`Error::Truncated`].
    ///
    /// The RFU bits of the header's second octet are ignored, as NCI 1.0 §3.4 asks of a
    /// receiver; [`Message::emit_packet`] writes them as zero. They are the only bits of a
    /// parsed packet that do not survive a round trip.
    pub fn parse_packet(packet: &'a [u8], version: NciVersion) -> Result<Message<'a>> {
        let packet = Packet::new_checked(packet)?;
        let header = HeaderRepr::parse(&packet)?;
        if header.pbf {
            return Err(Error::Truncated);
        }
        let payload = packet.into_inner().get(HEADER_LEN..).unwrap_or(&[]);
        Message::parse(header.mt, header.id, payload, version)
    }

    /// Write the payload to the start of `payload_out`; returns its length.
    pub fn emit(&self, payload_out: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(payload_out);
        self.write(&mut w)?;
        Ok(w.len())
    }

    /// Write header and payload as one packet. A payload longer than one packet can carry
    /// (255 octets) is [`Error::Capacity`]: segment it instead.
    pub fn emit_packet(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > MAX_PAYLOAD_LEN {
            return Err(Error::Capacity);
        }
        let (mt, id) = self.header();
        let header = HeaderRepr {
            mt,
            pbf: false,
            id,
            payload_len: count_u8(len)?,
        };
        let total = HEADER_LEN + len;
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        header.emit(out)?;
        let written = self.emit(out.get_mut(HEADER_LEN..).ok_or(Error::BufferTooSmall)?)?;
        if written != len {
            // A layout whose buffer_len disagrees with what it writes is a bug in this crate;
            // report it rather than send a packet with a wrong length field.
            return Err(Error::BadLength);
        }
        Ok(total)
    }
}

impl fmt::Display for Message<'_> {
    /// One line: the message name followed by its decoded fields, e.g.
    /// `CORE_RESET_RSP status=STATUS_OK nci_version=1.0 config_status=NCI_RF_CONFIGURATION_RESET`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        self.visit(&mut TextFields::new(f, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03]);
        assert_eq!(r.u16_le(), Ok(0x0201));
        assert_eq!(r.u16_le(), Err(Error::Truncated));
        assert_eq!(r.u8(), Ok(0x03));
        assert_eq!(r.u8(), Err(Error::Truncated));
        assert_eq!(r.bytes(usize::MAX), Err(Error::Truncated));
        assert!(r.finish().is_ok());

        let mut r = Reader::new(&[0x03, 0xAA]);
        assert_eq!(r.len_prefixed(), Err(Error::BadLength));
    }

    #[test]
    fn writer_reports_a_short_buffer() {
        let mut out = [0u8; 2];
        let mut w = Writer::new(&mut out);
        assert_eq!(w.u16_le(0x1234), Ok(()));
        assert_eq!(w.u8(0), Err(Error::BufferTooSmall));
        assert_eq!(out, [0x34, 0x12]);
        let long = [0u8; 256];
        let mut big = [0u8; 300];
        assert_eq!(
            Writer::new(&mut big).len_prefixed(&long),
            Err(Error::Capacity)
        );
    }

    #[test]
    fn list_count_must_match_the_items() {
        // Two TLVs announced, one present.
        let bytes = [0x01, 0x01, 0xAA];
        assert_eq!(
            List::<Tlv<'_>>::parse(2, &bytes).err(),
            Some(Error::BadLength)
        );
        // One TLV announced, more bytes follow.
        assert_eq!(
            List::<Tlv<'_>>::parse(0, &bytes).err(),
            Some(Error::TrailingBytes)
        );
        let list = List::<Tlv<'_>>::parse(1, &bytes).unwrap();
        let items = [Tlv {
            tag: 0x01,
            value: &[0xAA],
        }];
        assert_eq!(list, List::from_items(&items));
        assert_eq!(list.buffer_len(), 3);
    }

    #[test]
    fn names_from_the_header_alone() {
        let control = |gid, oid| PacketId::Control { gid, oid };
        assert_eq!(
            Message::name_for(MessageType::Response, control(Gid::Core, 0x01)),
            Some("CORE_INIT_RSP")
        );
        assert_eq!(
            Message::name_for(MessageType::Notification, control(Gid::Rf, 0x05)),
            Some("RF_INTF_ACTIVATED_NTF")
        );
        assert_eq!(
            Message::name_for(MessageType::Command, control(Gid::Proprietary, 0x3E)),
            Some("PROPRIETARY_CMD")
        );
        assert_eq!(
            Message::name_for(MessageType::Command, control(Gid::Core, 0x3E)),
            None
        );
        assert_eq!(
            Message::name_for(
                MessageType::Data,
                PacketId::Data {
                    conn_id: 0,
                    credits: 0
                }
            ),
            Some("DATA")
        );
    }

    #[test]
    fn hex_rendering() {
        assert_eq!(HexBytes(&[0x03, 0x1E]).to_string(), "03 1E");
        assert_eq!(HexBytes(&[]).to_string(), "-");
    }
}
