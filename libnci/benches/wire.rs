//! Micro-benchmarks of the NCI wire codec: the work done on every packet that crosses the
//! transport (NCI 1.0 §3.4 packet format, §4 and §7 message layouts).
//!
//! What is measured: [`Message::parse_packet`] of real PN7150 packets (CORE_INIT_RSP,
//! RF_INTF_ACTIVATED_NTF, a full 255-octet data packet, CORE_CONN_CREDITS_NTF), the header
//! check alone, and [`Message::emit_packet`] of a data packet and a CORE_SET_CONFIG_CMD.
//! What is not: segmentation (`segment` benchmark) and the state machine (`controller`).
//!
//! Run: `cargo bench -p libnci --bench wire`. Target (doc/performance.md): one NCI packet
//! parsed in ≤ 100 ns.

use divan::{black_box, Bencher};
use libnci::wire::config::ConfigParam;
use libnci::wire::core::CoreSetConfigCmd;
use libnci::wire::{HeaderRepr, List, Message, NciVersion, Packet, HEADER_LEN};

fn main() {
    check_vectors();
    divan::main();
}

/// CORE_INIT_RSP of a PN7150 (NCI 1.0 §4.2, Table 10): features 03 1E 03 00, 8 interfaces,
/// 2 logical connections, routing table 720, control payload 255, large parameters 2, NXP
/// (0x04), HW 0x88, ROM 0x10, FW 01.A0.
static CORE_INIT_RSP: [u8; 28] = [
    0x40, 0x01, 0x19, 0x00, 0x03, 0x1E, 0x03, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82,
    0x83, 0x02, 0xD0, 0x02, 0xFF, 0x02, 0x00, 0x04, 0x88, 0x10, 0x01, 0xA0,
];

/// RF_INTF_ACTIVATED_NTF (NCI 1.0 §7.3.1, Table 61): NFC-A listen, ISO-DEP interface and
/// protocol, max data payload 255, 1 credit, RATS byte 2 = 0x80.
static RF_INTF_ACTIVATED_NTF: [u8; 15] = [
    0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
];

/// CORE_CONN_CREDITS_NTF (NCI 1.0 §4.4.4): connection 0, 1 credit.
static CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];

/// A data packet on the static RF connection with the PN7150's largest payload, 255 octets
/// (NCI 1.0 §3.4.3): the first segment of every long APDU.
static DATA_255: [u8; HEADER_LEN + 255] = data_packet_255();

const fn data_packet_255() -> [u8; HEADER_LEN + 255] {
    let mut packet = [0u8; HEADER_LEN + 255];
    packet[2] = 0xFF;
    let mut i = HEADER_LEN;
    while i < packet.len() {
        packet[i] = (i % 251) as u8;
        i += 1;
    }
    packet
}

/// CORE_SET_CONFIG_CMD the controller sends at start-up on a configuration-reset PN7150:
/// LA_SEL_INFO 0x20 (ISO-DEP), LI_FWI 7, RF_FIELD_INFO 1 (NCI 1.0 §4.3.1, Table 101).
static CORE_SET_CONFIG_CMD: [u8; 13] = [
    0x20, 0x02, 0x0A, 0x03, 0x32, 0x01, 0x20, 0x58, 0x01, 0x07, 0x80, 0x01, 0x01,
];

/// The benchmarks measure the success path: make sure every vector parses (and the emitted
/// packets are the expected bytes) before timing anything.
fn check_vectors() {
    let v1 = NciVersion::V1_0;
    assert!(matches!(
        Message::parse_packet(&CORE_INIT_RSP, v1),
        Ok(Message::CoreInitRsp(_))
    ));
    assert!(matches!(
        Message::parse_packet(&RF_INTF_ACTIVATED_NTF, v1),
        Ok(Message::RfIntfActivatedNtf(_))
    ));
    assert!(matches!(
        Message::parse_packet(&CORE_CONN_CREDITS_NTF, v1),
        Ok(Message::CoreConnCreditsNtf(_))
    ));
    assert!(matches!(
        Message::parse_packet(&DATA_255, v1),
        Ok(Message::Data { payload, .. }) if payload.len() == 255
    ));
    let mut out = [0u8; HEADER_LEN + 255];
    assert_eq!(data_message().emit_packet(&mut out), Ok(DATA_255.len()));
    assert_eq!(out, DATA_255);
    let params = set_config_params();
    let len = set_config_message(&params).emit_packet(&mut out);
    assert_eq!(len, Ok(CORE_SET_CONFIG_CMD.len()));
    assert_eq!(
        out.get(..CORE_SET_CONFIG_CMD.len()),
        Some(&CORE_SET_CONFIG_CMD[..])
    );
}

/// `Message::parse_packet`: header check, identity lookup and the payload layout.
#[divan::bench_group(sample_size = 4096)]
mod parse_packet {
    use super::*;

    #[divan::bench]
    fn core_init_rsp() -> libnci::wire::Result<Message<'static>> {
        Message::parse_packet(black_box(&CORE_INIT_RSP), NciVersion::V1_0)
    }

    #[divan::bench]
    fn rf_intf_activated_ntf() -> libnci::wire::Result<Message<'static>> {
        Message::parse_packet(black_box(&RF_INTF_ACTIVATED_NTF), NciVersion::V1_0)
    }

    #[divan::bench]
    fn data_255() -> libnci::wire::Result<Message<'static>> {
        Message::parse_packet(black_box(&DATA_255), NciVersion::V1_0)
    }

    #[divan::bench]
    fn core_conn_credits_ntf() -> libnci::wire::Result<Message<'static>> {
        Message::parse_packet(black_box(&CORE_CONN_CREDITS_NTF), NciVersion::V1_0)
    }
}

/// The header alone (NCI 1.0 §3.4.1): what the controller's dispatch reads of every packet
/// before it knows whether it is data or control.
#[divan::bench_group(sample_size = 4096)]
mod header {
    use super::*;

    /// Length check against the whole packet, then the fields.
    #[divan::bench]
    fn checked_data_255() -> libnci::wire::Result<HeaderRepr> {
        Packet::new_checked(black_box(&DATA_255[..])).and_then(|p| HeaderRepr::parse(&p))
    }

    /// The three octets only, as a transport reads them before the payload arrives.
    #[divan::bench]
    fn prefix() -> libnci::wire::Result<HeaderRepr> {
        HeaderRepr::parse_prefix(black_box(&DATA_255[..]))
    }
}

fn data_message() -> Message<'static> {
    Message::Data {
        conn_id: 0,
        credits: 0,
        payload: DATA_255.get(HEADER_LEN..).unwrap_or(&[]),
    }
}

fn set_config_params() -> [ConfigParam<'static>; 3] {
    [
        ConfigParam::la_sel_info(0x20),
        ConfigParam::li_fwi(7).expect("LI_FWI 7 is in range"),
        ConfigParam::rf_field_info(true),
    ]
}

fn set_config_message<'a>(params: &'a [ConfigParam<'a>]) -> Message<'a> {
    Message::CoreSetConfigCmd(CoreSetConfigCmd {
        params: List::from_items(params),
    })
}

/// `Message::emit_packet` into a caller buffer: header, length accounting, payload layout.
#[divan::bench_group(sample_size = 4096)]
mod emit_packet {
    use super::*;

    #[divan::bench]
    fn data_255(bencher: Bencher) {
        let message = data_message();
        let mut out = [0u8; HEADER_LEN + 255];
        bencher.bench_local(|| black_box(&message).emit_packet(black_box(&mut out)));
    }

    #[divan::bench]
    fn core_set_config_cmd(bencher: Bencher) {
        let params = set_config_params();
        let message = set_config_message(&params);
        let mut out = [0u8; HEADER_LEN + 255];
        bencher.bench_local(|| black_box(&message).emit_packet(black_box(&mut out)));
    }
}
