//! `Message::parse_packet` on one NCI packet (NCI 1.0 §3.4, NCI 2.0 §3.4).
//!
//! Input: one selector byte (low bit: 0 = NCI 1.0, 1 = NCI 2.0 layouts), then the packet.
//!
//! Checks, for every packet that parses:
//! - it emits back to the same bytes, except the header RFU bits that `parse_packet` documents
//!   as ignored (octet 1 bits 7–6 of a control packet, bits 7–2 of a data packet);
//! - the emitted packet parses to an equal message;
//! - its name agrees with `Message::name_for` of its header (but for the catch-all
//!   `Proprietary`);
//! - rendering it as text and walking its fields never panics, and the field walk nests.
#![no_main]

use std::fmt::{self, Write};

use libfuzzer_sys::fuzz_target;
use libnci::wire::header::MAX_PACKET_LEN;
use libnci::wire::{FieldVisitor, Message, MessageType, NciVersion, Value};

/// Octet 1 bits a receiver ignores (NCI 1.0 §3.4.2 control, §3.4.3 data: RFU).
fn rfu_mask(mt: MessageType) -> u8 {
    if mt == MessageType::Data {
        0x03
    } else {
        0x3F
    }
}

/// A field visitor that renders every value and checks that lists and records nest.
struct Nesting {
    open: Vec<char>,
    text: String,
}

impl Nesting {
    fn close(&mut self, kind: char) -> fmt::Result {
        assert_eq!(self.open.pop(), Some(kind), "unbalanced field walk");
        Ok(())
    }

    fn value(&mut self, value: Value<'_>) -> fmt::Result {
        match value {
            Value::Num(n) => write!(self.text, "{n}"),
            Value::Hex(bytes) => write!(self.text, "{bytes:02X?}"),
            Value::Name(name) => write!(self.text, "{name}"),
            Value::Flag(flag) => write!(self.text, "{flag}"),
        }
    }
}

impl FieldVisitor for Nesting {
    fn field(&mut self, key: &str, value: Value<'_>) -> fmt::Result {
        self.text.push_str(key);
        self.value(value)
    }
    fn list_begin(&mut self, key: &str) -> fmt::Result {
        self.text.push_str(key);
        self.open.push('[');
        Ok(())
    }
    fn list_end(&mut self) -> fmt::Result {
        self.close('[')
    }
    fn item(&mut self, value: Value<'_>) -> fmt::Result {
        assert_eq!(self.open.last(), Some(&'['), "list item outside a list");
        self.value(value)
    }
    fn item_record_begin(&mut self) -> fmt::Result {
        assert_eq!(self.open.last(), Some(&'['), "list item outside a list");
        self.open.push('{');
        Ok(())
    }
    fn record_begin(&mut self, key: &str) -> fmt::Result {
        self.text.push_str(key);
        self.open.push('{');
        Ok(())
    }
    fn record_end(&mut self) -> fmt::Result {
        self.close('{')
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        NciVersion::V1_0
    } else {
        NciVersion::V2_0
    };
    let Ok(message) = Message::parse_packet(packet, version) else {
        return;
    };

    let (mt, id) = message.header();
    // A proprietary message whose payload does not fit the named NXP layout of its header
    // parses as `Proprietary`; the header alone still names the NXP message.
    if !matches!(message, Message::Proprietary { .. }) {
        assert_eq!(Message::name_for(mt, id), Some(message.name()));
    }
    let _ = message.to_string();
    let mut walk = Nesting {
        open: Vec::new(),
        text: String::new(),
    };
    message.visit(&mut walk).expect("field walk");
    assert!(walk.open.is_empty(), "field walk left {:?} open", walk.open);

    let mut out = [0u8; MAX_PACKET_LEN];
    let len = match message.emit_packet(&mut out) {
        Ok(len) => len,
        Err(err) => panic!("{message} parsed but does not emit: {err}"),
    };
    let mut expected = packet.to_vec();
    expected[1] &= rfu_mask(mt);
    assert_eq!(&out[..len], &expected[..], "{message} does not round-trip");

    let again = Message::parse_packet(&out[..len], version).expect("emitted packet parses");
    assert_eq!(again, message);
});
