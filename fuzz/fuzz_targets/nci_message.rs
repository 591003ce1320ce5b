//! `Message::parse(mt, id, payload, version)` on whole (reassembled) messages, whose payload
//! may be longer than one packet (NCI 1.0 §3.5).
//!
//! Input: `flags`, `gid_or_conn`, `oid`, then the payload.
//! - `flags` bits 2–0: message type (4–7 are the reserved types); bit 3: NCI 2.0 layouts;
//!   bit 4: a data identity instead of a control one (independent of the message type, so the
//!   mismatched pairs are tried too); bits 6–5: the NCI 2.0 credits field of a data identity.
//! - `gid_or_conn` low nibble: GID or connection identifier.
//! - `oid` low six bits: OID.
//!
//! Checks, for every message that parses: it reports the header it was parsed from; its
//! payload emits back to exactly the input payload; `buffer_len` agrees; emitting into a
//! buffer one octet short fails cleanly; the emitted payload parses to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnci::wire::{Error, Gid, Message, MessageType, NciVersion, PacketId};

fuzz_target!(|data: &[u8]| {
    let [flags, gid_or_conn, oid, payload @ ..] = data else {
        return;
    };
    let mt = MessageType::from(flags & 0x07);
    let version = if flags & 0x08 == 0 {
        NciVersion::V1_0
    } else {
        NciVersion::V2_0
    };
    let id = if flags & 0x10 == 0 {
        PacketId::Control {
            gid: Gid::from(gid_or_conn & 0x0F),
            oid: oid & 0x3F,
        }
    } else {
        PacketId::Data {
            conn_id: gid_or_conn & 0x0F,
            credits: (flags >> 5) & 0x03,
        }
    };
    let Ok(message) = Message::parse(mt, id, payload, version) else {
        return;
    };

    assert_eq!(message.header(), (mt, id), "{message}");
    assert_eq!(message.buffer_len(), payload.len(), "{message}");
    let _ = message.to_string();

    let mut out = vec![0u8; payload.len()];
    assert_eq!(message.emit(&mut out), Ok(payload.len()), "{message}");
    assert_eq!(out, payload, "{message} does not round-trip");
    if let Some(short) = payload.len().checked_sub(1) {
        assert_eq!(
            message.emit(&mut out[..short]),
            Err(Error::BufferTooSmall),
            "{message} into a short buffer"
        );
    }

    let mut again = vec![0u8; payload.len()];
    message.emit(&mut again).expect("emit");
    let reparsed = Message::parse(mt, id, &again, version).expect("emitted payload parses");
    assert_eq!(reparsed, message);
});
