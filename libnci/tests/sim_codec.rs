//! Cross-check: the virtual NFCC encodes its messages by hand from the specification tables,
//! the wire module has its own codec. Every packet of full simulated sessions — start-up,
//! configuration, routing, taps in A and B, errors — must parse with the codec and emit back
//! to the same bytes.
#![cfg(feature = "sim")]

use libnci::sim::cards::CardApplet;
use libnci::sim::scripts::{self, EmvParams};
use libnci::sim::{
    nci2_setup, pn7150_setup, EmvCard, Harness, Nfcc, Reader, ReaderConfig, ScriptedDh, SweepCard,
    TraceEntry,
};
use libnci::wire::{Message, NciVersion, RfTechnology};

fn check(trace: &[TraceEntry], version: NciVersion) -> usize {
    let mut checked = 0;
    for entry in trace {
        let bytes = &entry.bytes;
        // Segments (PBF set) are whole messages only once reassembled.
        if bytes.first().is_some_and(|b| b & 0x10 != 0) {
            continue;
        }
        let message = Message::parse_packet(bytes, version)
            .unwrap_or_else(|e| panic!("{entry:?} does not parse: {e}"));
        let mut out = [0u8; 258];
        let len = message
            .emit_packet(&mut out)
            .unwrap_or_else(|e| panic!("{entry:?} does not emit: {e}"));
        assert_eq!(&out[..len], &bytes[..], "{} round trip", message.name());
        checked += 1;
    }
    checked
}

fn session<A: CardApplet>(
    setup: Vec<Vec<u8>>,
    nfcc: Nfcc,
    card: A,
    technology: RfTechnology,
    mut extra: Vec<Vec<u8>>,
) -> Vec<TraceEntry> {
    extra.extend([
        // CORE_GET_CONFIG_CMD RF_FIELD_INFO, and an unknown id (INVALID_PARAM answer).
        vec![0x20, 0x03, 0x02, 0x01, 0x80],
        vec![0x20, 0x03, 0x02, 0x01, 0x7F],
        // CORE_SET_CONFIG_CMD with an unknown id.
        vec![0x20, 0x02, 0x04, 0x01, 0x7F, 0x01, 0x00],
        // RF_GET_LISTEN_MODE_ROUTING_CMD.
        vec![0x21, 0x02, 0x00],
    ]);
    // The routing read-back goes before discovery starts: insert before RF_DISCOVER_CMD.
    let mut commands = setup;
    let discover = commands.pop().unwrap_or_default();
    commands.append(&mut extra);
    commands.push(discover);
    let mut h = Harness::new(ScriptedDh::new(commands, card), nfcc);
    h.run_until_idle().unwrap();
    let config = ReaderConfig {
        technology,
        ..ReaderConfig::default()
    };
    h.tap(Reader::new(scripts::emv(&EmvParams::default()), config))
        .unwrap();
    h.run_until_idle().unwrap();
    // A late data packet: CORE_INTERFACE_ERROR_NTF. A malformed packet: CORE_GENERIC_ERROR_NTF.
    h.dh.send_raw(vec![0x00, 0x00, 0x02, 0x90, 0x00]);
    h.dh.send_raw(vec![0x20, 0x01, 0x05]);
    // Deactivate to idle.
    h.dh.push_command(vec![0x21, 0x06, 0x01, 0x00]);
    h.run_until_idle().unwrap();
    let trace = h.take_trace();
    for expected in [
        vec![0x60, 0x08, 0x02, 0x01, 0x00],
        vec![0x60, 0x07, 0x01, 0x05],
        vec![0x61, 0x06, 0x02, 0x00, 0x00],
    ] {
        assert!(trace.iter().any(|e| e.bytes == expected), "{expected:02X?}");
    }
    trace
}

#[test]
fn pn7150_session_parses_with_the_wire_codec() {
    for technology in [RfTechnology::NfcA, RfTechnology::NfcB] {
        // NXP parameters: set A0 5E, read it back; standby on.
        let nxp = vec![
            vec![0x20, 0x02, 0x05, 0x01, 0xA0, 0x5E, 0x01, 0x01],
            vec![0x20, 0x03, 0x03, 0x01, 0xA0, 0x5E],
            vec![0x2F, 0x00, 0x01, 0x01],
            vec![0x22, 0x00, 0x01, 0x01],
        ];
        let trace = session(
            pn7150_setup(),
            Nfcc::pn7150(),
            EmvCard::demo(),
            technology,
            nxp,
        );
        let checked = check(
            &trace
                .into_iter()
                // The deliberately malformed packet is not a message.
                .filter(|e| e.bytes != [0x20, 0x01, 0x05])
                .collect::<Vec<_>>(),
            NciVersion::V1_0,
        );
        assert!(checked > 40, "{checked}");
    }
}

#[test]
fn nci2_session_parses_with_the_wire_codec() {
    let trace = session(
        nci2_setup(),
        Nfcc::nci2(),
        SweepCard::new(),
        RfTechnology::NfcA,
        vec![vec![0x22, 0x00, 0x00]],
    );
    let trace: Vec<_> = trace
        .into_iter()
        .filter(|e| e.bytes != [0x20, 0x01, 0x05])
        .collect();
    assert!(check(&trace, NciVersion::V2_0) > 20);
}
