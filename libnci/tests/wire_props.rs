//! Properties of the message codec over arbitrary input:
//! - no byte string makes `Message::parse_packet` / `Message::parse` panic, for any header
//!   identity (MT, GID, OID) and either NCI version;
//! - every message that parses emits back to exactly the bytes it was parsed from;
//! - rendering a parsed message (text and field visitor) never panics.
//!
//! Besides uniform random payloads, which rarely get past the first length check, the seeds are
//! real and hand-built messages of every layout, mutated (bytes changed, cut, extended) so that
//! the deep parts of each layout are exercised.

use libnci::wire::{
    FieldVisitor, Gid, HeaderRepr, Message, MessageType, NciVersion, PacketId, Value,
};
use proptest::prelude::*;
use std::fmt;

const VERSIONS: [NciVersion; 2] = [NciVersion::V1_0, NciVersion::V2_0];

/// Golden packets of many layouts (both directions, both versions).
const SEEDS: &[&[u8]] = &[
    &[0x20, 0x00, 0x01, 0x01],
    &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01],
    &[0x40, 0x00, 0x01, 0x00],
    &[
        0x60, 0x00, 0x09, 0x02, 0x01, 0x20, 0x04, 0x04, 0x51, 0x12, 0x01, 0x90,
    ],
    &[0x60, 0x00, 0x02, 0x00, 0x01],
    &[0x20, 0x01, 0x00],
    &[0x20, 0x01, 0x02, 0x00, 0x00],
    &[
        0x40, 0x01, 0x19, 0x00, 0x03, 0x1E, 0x03, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x80, 0x81,
        0x82, 0x83, 0x02, 0xD0, 0x02, 0xFF, 0x02, 0x00, 0x04, 0x88, 0x10, 0x01, 0xA0,
    ],
    &[
        0x40, 0x01, 0x15, 0x00, 0x01, 0x0E, 0x02, 0x00, 0x01, 0x00, 0x02, 0xFF, 0xFF, 0x01, 0x00,
        0x02, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00, 0x03, 0x00,
    ],
    &[
        0x20, 0x02, 0x12, 0x04, 0x00, 0x02, 0xF4, 0x01, 0x32, 0x01, 0x20, 0x59, 0x04, 0x6E, 0x66,
        0x63, 0x64, 0xA0, 0x03, 0x01, 0x08,
    ],
    &[0x40, 0x02, 0x05, 0x09, 0x02, 0x32, 0xA0, 0x03],
    &[0x20, 0x03, 0x04, 0x02, 0x00, 0xA0, 0x07],
    &[
        0x40, 0x03, 0x0A, 0x00, 0x02, 0x00, 0x02, 0xE8, 0x03, 0xA0, 0x07, 0x01, 0x01,
    ],
    &[0x20, 0x04, 0x06, 0x03, 0x01, 0x01, 0x02, 0x02, 0x01],
    &[0x40, 0x04, 0x04, 0x00, 0xFF, 0x01, 0x01],
    &[0x60, 0x06, 0x03, 0x01, 0x00, 0x01],
    &[0x60, 0x07, 0x01, 0xA1],
    &[0x60, 0x08, 0x02, 0xB2, 0x00],
    &[0x21, 0x00, 0x07, 0x02, 0x04, 0x02, 0x02, 0x05, 0x03, 0x03],
    &[
        0x21, 0x01, 0x17, 0x01, 0x03, 0x00, 0x03, 0x00, 0x01, 0x00, 0x01, 0x03, 0x00, 0x01, 0x04,
        0x02, 0x09, 0x02, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10,
    ],
    &[0x21, 0x03, 0x07, 0x03, 0x80, 0x01, 0x81, 0x01, 0x82, 0x01],
    &[
        0x61, 0x03, 0x11, 0x01, 0x04, 0x01, 0x0C, 0x0B, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x81, 0x81, 0x02,
    ],
    &[
        0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
    ],
    &[
        0x61, 0x05, 0x14, 0x01, 0x02, 0x04, 0x81, 0xFF, 0x01, 0x00, 0x81, 0x00, 0x00, 0x09, 0x08,
        0x11, 0x22, 0x33, 0x44, 0x00, 0x08, 0x01, 0x00,
    ],
    &[
        0x61, 0x05, 0x1C, 0x01, 0x02, 0x04, 0x00, 0xFF, 0x01, 0x09, 0x04, 0x00, 0x04, 0x08, 0x12,
        0x34, 0x56, 0x01, 0x20, 0x00, 0x00, 0x00, 0x08, 0x07, 0x78, 0x80, 0x70, 0x02, 0x6E, 0x66,
        0x63,
    ],
    &[
        0x61, 0x05, 0x15, 0x01, 0x01, 0x03, 0x82, 0xFF, 0x01, 0x09, 0x08, 0x02, 0xFE, 0x01, 0x02,
        0x03, 0x04, 0x05, 0x06, 0x82, 0x01, 0x01, 0x01, 0xAB,
    ],
    &[0x61, 0x06, 0x02, 0x03, 0x02],
    &[0x61, 0x07, 0x01, 0x01],
    &[0x61, 0x09, 0x05, 0x02, 0x00, 0x02, 0xA0, 0x00],
    &[0x22, 0x00, 0x01, 0x01],
    &[
        0x62, 0x00, 0x0A, 0xC0, 0x00, 0x01, 0x80, 0x01, 0x00, 0x02, 0x12, 0x34, 0x01,
    ],
    &[0x2F, 0x02, 0x00],
    &[0x4F, 0x02, 0x05, 0x00, 0x00, 0x10, 0x01, 0xA0],
    &[0x2F, 0x00, 0x01, 0x01],
    &[0x6F, 0x11, 0x01, 0x01],
    &[0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00],
];

/// A visitor that checks the nesting of the calls it receives.
#[derive(Default)]
struct NestingChecker {
    depth: usize,
}

impl FieldVisitor for NestingChecker {
    fn field(&mut self, key: &str, _: Value<'_>) -> fmt::Result {
        assert!(!key.is_empty());
        Ok(())
    }
    fn list_begin(&mut self, _: &str) -> fmt::Result {
        self.depth += 1;
        Ok(())
    }
    fn list_end(&mut self) -> fmt::Result {
        self.depth = self.depth.checked_sub(1).expect("unbalanced list_end");
        Ok(())
    }
    fn item(&mut self, _: Value<'_>) -> fmt::Result {
        assert!(self.depth > 0, "item outside a list");
        Ok(())
    }
    fn item_record_begin(&mut self) -> fmt::Result {
        assert!(self.depth > 0, "record item outside a list");
        self.depth += 1;
        Ok(())
    }
    fn record_begin(&mut self, _: &str) -> fmt::Result {
        self.depth += 1;
        Ok(())
    }
    fn record_end(&mut self) -> fmt::Result {
        self.depth = self.depth.checked_sub(1).expect("unbalanced record_end");
        Ok(())
    }
}

/// Everything that must hold for one parsed message whose payload was `payload`.
fn check_parsed(msg: &Message<'_>, mt: MessageType, id: PacketId, payload: &[u8]) {
    assert_eq!(msg.header(), (mt, id), "{msg:?}");
    assert_eq!(msg.buffer_len(), payload.len(), "{msg:?}");
    let mut out = vec![0u8; payload.len() + 8];
    let n = msg.emit(&mut out).expect("emit of a parsed message");
    assert_eq!(&out[..n], payload, "{msg:?}");
    // A buffer one octet short must be refused, not overrun.
    if !payload.is_empty() {
        let mut short = vec![0u8; payload.len() - 1];
        assert!(msg.emit(&mut short).is_err());
    }
    let text = msg.to_string();
    assert!(text.starts_with(msg.name()));
    let mut checker = NestingChecker::default();
    msg.visit(&mut checker).unwrap();
    assert_eq!(checker.depth, 0, "{msg:?}");
    assert!(Message::name_for(mt, id).is_some());
}

/// Parse a whole packet; on success it must emit back to the same packet, except for the RFU
/// bits of the header's second octet, which a receiver ignores and a sender sets to zero
/// (NCI 1.0 §3.4).
fn check_packet(bytes: &[u8], version: NciVersion) {
    if let Ok(msg) = Message::parse_packet(bytes, version) {
        let mut out = vec![0u8; bytes.len() + 8];
        let n = msg
            .emit_packet(&mut out)
            .expect("emit_packet of a parsed packet");
        let mut expected = bytes.to_vec();
        expected[1] &= if msg.header().0 == MessageType::Data {
            0x03
        } else {
            0x3F
        };
        assert_eq!(&out[..n], expected.as_slice(), "{msg:?}");
        let header = HeaderRepr::parse_prefix(bytes).unwrap();
        check_parsed(&msg, header.mt, header.id, &bytes[3..]);
    }
}

fn packet_id() -> impl Strategy<Value = (MessageType, PacketId)> {
    prop_oneof![
        (0u8..8, 0u8..16, 0u8..64).prop_map(|(mt, gid, oid)| {
            (
                MessageType::from(mt),
                PacketId::Control {
                    gid: Gid::from(gid),
                    oid,
                },
            )
        }),
        (0u8..16, 0u8..4).prop_map(|(conn_id, credits)| {
            (MessageType::Data, PacketId::Data { conn_id, credits })
        }),
    ]
}

/// A seed with random edits: overwritten octets, a cut, or appended octets; the length octet
/// of the header is fixed up half of the time so that the payload reaches the layout parser.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SEEDS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(seed, edits, cut, tail, fix_len)| {
            let mut bytes = SEEDS[seed].to_vec();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.extend_from_slice(&tail);
            if fix_len && bytes.len() >= 3 && bytes.len() - 3 <= 255 {
                bytes[2] = (bytes.len() - 3) as u8;
            }
            bytes
        })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Integration tests have no lib.rs beside them to anchor a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_packets_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        for version in VERSIONS {
            check_packet(&bytes, version);
        }
    }

    #[test]
    fn arbitrary_payloads_for_every_identity(
        (mt, id) in packet_id(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        v2 in any::<bool>(),
    ) {
        let version = if v2 { NciVersion::V2_0 } else { NciVersion::V1_0 };
        if let Ok(msg) = Message::parse(mt, id, &payload, version) {
            check_parsed(&msg, mt, id, &payload);
        }
    }

}

proptest! {
    #![proptest_config(config(8192))]

    #[test]
    fn mutated_golden_packets(bytes in mutated_seed()) {
        for version in VERSIONS {
            check_packet(&bytes, version);
        }
    }
}

/// Every defined message type, group and low opcode with every payload of up to one octet and
/// many of two octets, exhaustively.
#[test]
fn every_identity_with_tiny_payloads() {
    let mut payloads: Vec<Vec<u8>> = vec![vec![]];
    for a in 0..=255u8 {
        payloads.push(vec![a]);
    }
    for a in [0x00u8, 0x01, 0x02, 0xA0] {
        for b in 0..=255u8 {
            payloads.push(vec![a, b]);
        }
    }
    let oids = (0..0x14u8).chain([0x3F]);
    for version in VERSIONS {
        for mt in 0..5u8 {
            for gid in [0x0u8, 0x1, 0x2, 0x3, 0x4, 0xF] {
                for oid in oids.clone() {
                    let mt = MessageType::from(mt);
                    let id = PacketId::Control {
                        gid: Gid::from(gid),
                        oid,
                    };
                    for payload in &payloads {
                        if let Ok(msg) = Message::parse(mt, id, payload, version) {
                            check_parsed(&msg, mt, id, payload);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_seed_parses_and_round_trips() {
    for seed in SEEDS {
        let parsed = VERSIONS
            .iter()
            .any(|&v| Message::parse_packet(seed, v).is_ok());
        assert!(parsed, "seed does not parse: {seed:02X?}");
        for version in VERSIONS {
            check_packet(seed, version);
        }
    }
}
