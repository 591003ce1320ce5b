//! Start-up transcripts and the rules a real controller enforces, against the virtual NFCC.
#![cfg(feature = "sim")]

use libnci::sim::harness::TraceEntry;
use libnci::sim::nfcc::{PN7150_CORE_INIT_RSP, PN7150_CORE_RESET_RSP, PN7150_PROPRIETARY_ACT_RSP};
use libnci::sim::{
    nci2_setup, pn7150_setup, Direction, Harness, Nfcc, NfccConfig, RfState, ScriptedDh,
};
use libnci::time::{Duration, Instant};

fn no_card(_: &[u8]) -> Vec<u8> {
    vec![0x6F, 0x00]
}

type Dh = ScriptedDh<fn(&[u8]) -> Vec<u8>>;

fn dh(commands: Vec<Vec<u8>>) -> Dh {
    ScriptedDh::new(commands, no_card as fn(&[u8]) -> Vec<u8>)
}

/// The transcript as (direction, bytes), for comparison with a literal.
fn transcript(trace: &[TraceEntry]) -> Vec<(Direction, Vec<u8>)> {
    trace
        .iter()
        .map(|e| (e.direction, e.bytes.clone()))
        .collect()
}

const OUT: Direction = Direction::DhToNfcc;
const IN: Direction = Direction::NfccToDh;

/// Drive one NFCC directly: send `cmd` at `now`, return everything it emitted.
fn exchange(nfcc: &mut Nfcc, cmd: &[u8], now: Instant) -> Vec<Vec<u8>> {
    nfcc.handle_packet(cmd, now);
    std::iter::from_fn(|| nfcc.poll_transmit().map(|t| t.bytes)).collect()
}

fn initialized_pn7150() -> Nfcc {
    let mut nfcc = Nfcc::pn7150();
    exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x01], Instant::ZERO);
    exchange(&mut nfcc, &[0x20, 0x01, 0x00], Instant::ZERO);
    nfcc
}

#[test]
fn pn7150_start_up_transcript() {
    let mut h = Harness::new(dh(pn7150_setup()), Nfcc::pn7150());
    h.run_until_idle().unwrap();
    let expected: Vec<(Direction, Vec<u8>)> = vec![
        // CORE_RESET_CMD (reset configuration) / CORE_RESET_RSP: OK, NCI 1.0, config reset.
        (OUT, vec![0x20, 0x00, 0x01, 0x01]),
        (IN, PN7150_CORE_RESET_RSP.to_vec()),
        // CORE_INIT_CMD / CORE_INIT_RSP.
        (OUT, vec![0x20, 0x01, 0x00]),
        (IN, PN7150_CORE_INIT_RSP.to_vec()),
        // NXP proprietary activation.
        (OUT, vec![0x2F, 0x02, 0x00]),
        (IN, PN7150_PROPRIETARY_ACT_RSP.to_vec()),
        // CORE_SET_CONFIG_CMD RF_FIELD_INFO=1 / RSP OK, no invalid parameter.
        (OUT, vec![0x20, 0x02, 0x04, 0x01, 0x80, 0x01, 0x01]),
        (IN, vec![0x40, 0x02, 0x02, 0x00, 0x00]),
        // RF_DISCOVER_MAP_CMD / RSP.
        (OUT, vec![0x21, 0x00, 0x04, 0x01, 0x04, 0x02, 0x02]),
        (IN, vec![0x41, 0x00, 0x01, 0x00]),
        // RF_SET_LISTEN_MODE_ROUTING_CMD / RSP.
        (OUT, pn7150_setup()[5].clone()),
        (IN, vec![0x41, 0x01, 0x01, 0x00]),
        // RF_DISCOVER_CMD listen A, B, F / RSP.
        (
            OUT,
            vec![0x21, 0x03, 0x07, 0x03, 0x80, 0x01, 0x81, 0x01, 0x82, 0x01],
        ),
        (IN, vec![0x41, 0x03, 0x01, 0x00]),
    ];
    assert_eq!(transcript(h.trace()), expected);
    assert!(h.dh.is_idle());
    assert!(h.nfcc.is_initialized());
    assert_eq!(h.nfcc.rf_state(), RfState::Discovery);
    assert_eq!(h.nfcc.config_param(0x80), Some(&[0x01][..]));
    assert_eq!(h.nfcc.routing_entries().count(), 3);
}

#[test]
fn pn7150_core_init_rsp_decodes_to_its_documented_limits() {
    let rsp = PN7150_CORE_INIT_RSP;
    assert_eq!(usize::from(rsp[2]), rsp.len() - 3);
    // Max routing table size, little endian: 720.
    assert_eq!(u16::from_le_bytes([rsp[18], rsp[19]]), 720);
    // Max control packet payload: 255. Manufacturer: NXP.
    assert_eq!(rsp[20], 0xFF);
    assert_eq!(rsp[23], 0x04);
}

#[test]
fn nci2_start_up_transcript() {
    let mut h = Harness::new(dh(nci2_setup()), Nfcc::nci2());
    h.run_until_idle().unwrap();
    let trace = transcript(h.trace());
    let expected_head: Vec<(Direction, Vec<u8>)> = vec![
        (OUT, vec![0x20, 0x00, 0x01, 0x01]),
        // CORE_RESET_RSP: status only.
        (IN, vec![0x40, 0x00, 0x01, 0x00]),
        // CORE_RESET_NTF: trigger CORE_RESET_CMD received, config reset, NCI 2.0,
        // manufacturer 0, 4 octets of manufacturer information.
        (
            IN,
            vec![
                0x60, 0x00, 0x09, 0x02, 0x01, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        // NCI 2.0 CORE_INIT_CMD with two Feature Enable octets.
        (OUT, vec![0x20, 0x01, 0x02, 0x00, 0x00]),
        // NCI 2.0 CORE_INIT_RSP.
        (
            IN,
            vec![
                0x40, 0x01, 0x16, // header
                0x00, // status OK
                0x03, 0x1E, 0x03, 0x00, // NFCC features
                0x02, // max logical connections
                0x00, 0x04, // max routing table size 1024
                0xFF, // max control packet payload
                0xFF, 0x01, // static HCI connection: max data payload, credits
                0x00, 0x01, // max NFC-V RF frame size 256
                0x04, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, // 4 RF interfaces
            ],
        ),
    ];
    assert_eq!(trace[..5], expected_head[..]);
    // The rest is answered OK, exactly as on the PN7150.
    let rest: Vec<_> = trace[5..].iter().map(|(d, b)| (*d, b.clone())).collect();
    assert_eq!(rest.len(), 8);
    for pair in rest.chunks(2) {
        assert_eq!(pair[0].0, OUT);
        assert_eq!(pair[1].0, IN);
        assert_eq!(
            pair[1].1[0],
            pair[0].1[0] + 0x20,
            "response to {:02X?}",
            pair[0].1
        );
        assert_eq!(pair[1].1[3], 0x00, "status OK for {:02X?}", pair[0].1);
    }
    assert_eq!(h.nfcc.rf_state(), RfState::Discovery);
}

#[test]
fn nci2_power_on_announces_itself() {
    let mut nfcc = Nfcc::nci2();
    nfcc.power_on(Instant::ZERO);
    let ntf = nfcc.poll_transmit().unwrap();
    // CORE_RESET_NTF, trigger POWERED_ON.
    assert_eq!(
        ntf.bytes,
        [0x60, 0x00, 0x09, 0x01, 0x01, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00]
    );
    // The PN7150 stays silent.
    let mut pn7150 = Nfcc::pn7150();
    pn7150.power_on(Instant::ZERO);
    assert_eq!(pn7150.poll_transmit(), None);
}

#[test]
fn commands_before_core_init_are_not_initialized() {
    let mut nfcc = Nfcc::pn7150();
    // RF_DISCOVER_CMD before CORE_INIT → RF_DISCOVER_RSP STATUS_NOT_INITIALIZED.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x21, 0x03, 0x03, 0x01, 0x80, 0x01],
            Instant::ZERO
        ),
        [vec![0x41, 0x03, 0x01, 0x04]]
    );
    // CORE_SET_CONFIG_CMD too.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x20, 0x02, 0x04, 0x01, 0x80, 0x01, 0x01],
            Instant::ZERO
        ),
        [vec![0x40, 0x02, 0x01, 0x04]]
    );
    // CORE_INIT works straight after power-on, and a second one is a semantic error.
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x01, 0x00], Instant::ZERO),
        [PN7150_CORE_INIT_RSP.to_vec()]
    );
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x01, 0x00], Instant::ZERO),
        [vec![0x40, 0x01, 0x01, 0x06]]
    );
    // The NCI 2.0 CORE_INIT_CMD layout is a syntax error on the NCI 1.0 part after a reset.
    exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x00], Instant::ZERO);
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x01, 0x02, 0x00, 0x00], Instant::ZERO),
        [vec![0x40, 0x01, 0x01, 0x05]]
    );
}

#[test]
fn reset_keep_configuration_reports_kept() {
    let mut nfcc = initialized_pn7150();
    exchange(
        &mut nfcc,
        &[0x20, 0x02, 0x04, 0x01, 0x80, 0x01, 0x01],
        Instant::ZERO,
    );
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x00], Instant::ZERO),
        [vec![0x40, 0x00, 0x03, 0x00, 0x10, 0x00]]
    );
    assert_eq!(nfcc.config_param(0x80), Some(&[0x01][..]));
    assert!(!nfcc.is_initialized());
    // Reset with RESET_CONFIGURATION forgets it.
    exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x01], Instant::ZERO);
    assert_eq!(nfcc.config_param(0x80), None);
}

#[test]
fn second_command_in_flight_is_ignored() {
    let mut config = NfccConfig::pn7150();
    config.response_delay = Duration::from_millis(1);
    let mut nfcc = Nfcc::new(config);
    let t0 = Instant::ZERO;
    // CORE_RESET_CMD at 0; CORE_INIT_CMD at 100 µs, before the reset response (due at 1 ms).
    assert!(exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x01], t0).is_empty());
    assert!(exchange(&mut nfcc, &[0x20, 0x01, 0x00], Instant::from_micros(100)).is_empty());
    assert_eq!(nfcc.poll_timeout(), Some(Instant::from_millis(1)));
    nfcc.handle_timeout(Instant::from_millis(1));
    let out = nfcc.poll_transmit().unwrap();
    assert_eq!(out.at, Instant::from_millis(1));
    assert_eq!(out.bytes, PN7150_CORE_RESET_RSP);
    // Only the reset was answered; CORE_INIT was dropped.
    assert_eq!(nfcc.poll_transmit(), None);
    assert_eq!(nfcc.stats().commands_ignored, 1);
    assert!(!nfcc.is_initialized());
    // After the response, the next command is taken.
    nfcc.handle_packet(&[0x20, 0x01, 0x00], Instant::from_millis(2));
    nfcc.handle_timeout(Instant::from_millis(3));
    assert_eq!(nfcc.poll_transmit().unwrap().bytes, PN7150_CORE_INIT_RSP);
}

/// An RF_SET_LISTEN_MODE_ROUTING_CMD payload with `count` AID entries of 16 octets (18 each
/// with their type and length, plus route and power: 20).
fn aid_routing(more: bool, count: u8, first: u8) -> Vec<u8> {
    let mut payload = vec![u8::from(more), count];
    for i in 0..count {
        // AID-based, length 18: route DH, switched on, a 16-octet AID.
        payload.extend_from_slice(&[0x02, 18, 0x00, 0x01]);
        payload.extend_from_slice(&[0xA0, 0x00, 0x00, 0x00, first.wrapping_add(i)]);
        payload.extend_from_slice(&[0x11; 11]);
    }
    let mut cmd = vec![0x21, 0x01, payload.len() as u8];
    cmd.extend_from_slice(&payload);
    cmd
}

#[test]
fn routing_table_is_collected_across_more_and_capped_at_720() {
    let mut nfcc = initialized_pn7150();
    // 12 entries × 20 = 240 octets per message; three messages = 720 fit exactly.
    assert_eq!(
        exchange(&mut nfcc, &aid_routing(true, 12, 0), Instant::ZERO),
        [vec![0x41, 0x01, 0x01, 0x00]]
    );
    assert!(
        nfcc.routing_table().is_empty(),
        "not committed before More = 0"
    );
    exchange(&mut nfcc, &aid_routing(true, 12, 12), Instant::ZERO);
    assert_eq!(
        exchange(&mut nfcc, &aid_routing(false, 12, 24), Instant::ZERO),
        [vec![0x41, 0x01, 0x01, 0x00]]
    );
    assert_eq!(nfcc.routing_table().len(), 720);
    assert_eq!(nfcc.routing_entries().count(), 36);

    // One more entry over four messages: STATUS_MESSAGE_SIZE_EXCEEDED, old table kept.
    for first in [0, 12, 24] {
        exchange(&mut nfcc, &aid_routing(true, 12, first), Instant::ZERO);
    }
    assert_eq!(
        exchange(&mut nfcc, &aid_routing(false, 1, 99), Instant::ZERO),
        [vec![0x41, 0x01, 0x01, 0x0A]]
    );
    assert_eq!(nfcc.routing_table().len(), 720);
    // The partial table was dropped: a fresh small table goes in.
    exchange(&mut nfcc, &aid_routing(false, 1, 7), Instant::ZERO);
    assert_eq!(nfcc.routing_table().len(), 20);
}

#[test]
fn pn7150_refuses_nci2_qualifiers_nci2_accepts_them() {
    // AID prefix match (qualifier-type 0x12): A0 00 00 00 04* → DH.
    let cmd = [
        0x21, 0x01, 0x0B, 0x00, 0x01, 0x12, 0x07, 0x00, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04,
    ];
    let mut pn7150 = initialized_pn7150();
    assert_eq!(
        exchange(&mut pn7150, &cmd, Instant::ZERO),
        [vec![0x41, 0x01, 0x01, 0x05]]
    );
    let mut nci2 = Nfcc::nci2();
    exchange(&mut nci2, &[0x20, 0x00, 0x01, 0x01], Instant::ZERO);
    exchange(&mut nci2, &[0x20, 0x01, 0x02, 0x00, 0x00], Instant::ZERO);
    assert_eq!(
        exchange(&mut nci2, &cmd, Instant::ZERO),
        [vec![0x41, 0x01, 0x01, 0x00]]
    );
    assert_eq!(nci2.routing_table(), &cmd[5..]);
}

#[test]
fn get_listen_mode_routing_returns_the_table_in_notifications() {
    let mut nfcc = initialized_pn7150();
    for first in [0, 12] {
        exchange(&mut nfcc, &aid_routing(true, 12, first), Instant::ZERO);
    }
    exchange(&mut nfcc, &aid_routing(false, 12, 24), Instant::ZERO);
    let out = exchange(&mut nfcc, &[0x21, 0x02, 0x00], Instant::ZERO);
    // RSP OK, then 720 octets in notifications of at most 12 entries (12 × 20 = 240 ≤ 253).
    assert_eq!(out[0], [0x41, 0x02, 0x01, 0x00]);
    assert_eq!(out.len(), 4);
    let mut table = Vec::new();
    for (i, ntf) in out[1..].iter().enumerate() {
        assert_eq!(&ntf[..2], &[0x61, 0x02]);
        assert_eq!(ntf[3], u8::from(i < 2), "More flag");
        assert_eq!(ntf[4], 12);
        table.extend_from_slice(&ntf[5..]);
    }
    assert_eq!(table, nfcc.routing_table());
    // An empty table is one notification with no entries.
    let mut empty = initialized_pn7150();
    assert_eq!(
        exchange(&mut empty, &[0x21, 0x02, 0x00], Instant::ZERO),
        [
            vec![0x41, 0x02, 0x01, 0x00],
            vec![0x61, 0x02, 0x02, 0x00, 0x00]
        ]
    );
}

#[test]
fn set_and_get_config_with_invalid_parameters() {
    let mut nfcc = initialized_pn7150();
    // Set LI_FWI (0x58) = 8, RFU id 0x7F = 1, NXP A0 5E = 01: 0x7F is listed invalid, the
    // others are set.
    let cmd = [
        0x20, 0x02, 0x0B, 0x03, 0x58, 0x01, 0x08, 0x7F, 0x01, 0x01, 0xA0, 0x5E, 0x01, 0x01,
    ];
    assert_eq!(
        exchange(&mut nfcc, &cmd, Instant::ZERO),
        [vec![0x40, 0x02, 0x03, 0x09, 0x01, 0x7F]]
    );
    assert_eq!(nfcc.config_param(0x58), Some(&[0x08][..]));
    assert_eq!(nfcc.config_param(0xA05E), Some(&[0x01][..]));
    // Get LI_FWI and A0 5E.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x20, 0x03, 0x04, 0x02, 0x58, 0xA0, 0x5E],
            Instant::ZERO
        ),
        [vec![
            0x40, 0x03, 0x09, 0x00, 0x02, 0x58, 0x01, 0x08, 0xA0, 0x5E, 0x01, 0x01
        ]]
    );
    // Getting an unknown one: STATUS_INVALID_PARAM, listing it with length 0.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x20, 0x03, 0x03, 0x02, 0x58, 0x7F],
            Instant::ZERO
        ),
        [vec![0x40, 0x03, 0x04, 0x09, 0x01, 0x7F, 0x00]]
    );
    // A truncated TLV is a syntax error.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x20, 0x02, 0x03, 0x01, 0x58, 0x02],
            Instant::ZERO
        ),
        [vec![0x40, 0x02, 0x02, 0x05, 0x00]]
    );
}

#[test]
fn nxp_parameters_live_in_eeprom_and_every_write_counts() {
    let mut nfcc = initialized_pn7150();
    nfcc.preset_eeprom(0xA00E, &[0x02]);
    assert_eq!(nfcc.eeprom_writes(), 0);
    let write = [0x20, 0x02, 0x05, 0x01, 0xA0, 0x0E, 0x01, 0x02];
    exchange(&mut nfcc, &write, Instant::ZERO);
    // The same value written again still costs a write: the DH must read first.
    exchange(&mut nfcc, &write, Instant::ZERO);
    assert_eq!(nfcc.eeprom_writes(), 2);
    // A CORE_RESET with configuration reset keeps EEPROM content.
    exchange(&mut nfcc, &[0x20, 0x00, 0x01, 0x01], Instant::ZERO);
    assert_eq!(nfcc.config_param(0xA00E), Some(&[0x02][..]));
    // NCI parameters do not count.
    exchange(&mut nfcc, &[0x20, 0x01, 0x00], Instant::ZERO);
    exchange(
        &mut nfcc,
        &[0x20, 0x02, 0x04, 0x01, 0x80, 0x01, 0x01],
        Instant::ZERO,
    );
    assert_eq!(nfcc.eeprom_writes(), 2);
}

#[test]
fn discovery_state_machine() {
    let mut nfcc = initialized_pn7150();
    let discover = [0x21, 0x03, 0x03, 0x01, 0x80, 0x01];
    // RF_DEACTIVATE in RFST_IDLE: semantic error.
    assert_eq!(
        exchange(&mut nfcc, &[0x21, 0x06, 0x01, 0x00], Instant::ZERO),
        [vec![0x41, 0x06, 0x01, 0x06]]
    );
    assert_eq!(
        exchange(&mut nfcc, &discover, Instant::ZERO),
        [vec![0x41, 0x03, 0x01, 0x00]]
    );
    // Again while discovering: DISCOVERY_ALREADY_STARTED.
    assert_eq!(
        exchange(&mut nfcc, &discover, Instant::ZERO),
        [vec![0x41, 0x03, 0x01, 0xA0]]
    );
    // RF_DISCOVER_MAP only in RFST_IDLE.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x21, 0x00, 0x04, 0x01, 0x04, 0x02, 0x02],
            Instant::ZERO
        ),
        [vec![0x41, 0x00, 0x01, 0x06]]
    );
    // Deactivate to idle: RSP, then RF_DEACTIVATE_NTF(Idle, DH request).
    assert_eq!(
        exchange(&mut nfcc, &[0x21, 0x06, 0x01, 0x00], Instant::ZERO),
        [
            vec![0x41, 0x06, 0x01, 0x00],
            vec![0x61, 0x06, 0x02, 0x00, 0x00]
        ]
    );
    assert_eq!(nfcc.rf_state(), RfState::Idle);
    // A malformed RF_DISCOVER_CMD (count disagrees) is a syntax error.
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x21, 0x03, 0x03, 0x02, 0x80, 0x01],
            Instant::ZERO
        ),
        [vec![0x41, 0x03, 0x01, 0x05]]
    );
}

#[test]
fn nfcee_discovery_and_nxp_standby() {
    let mut nfcc = initialized_pn7150();
    // NFCEE_DISCOVER_CMD enable: OK, no NFCEE.
    assert_eq!(
        exchange(&mut nfcc, &[0x22, 0x00, 0x01, 0x01], Instant::ZERO),
        [vec![0x42, 0x00, 0x02, 0x00, 0x00]]
    );
    // NXP standby on.
    assert_eq!(
        exchange(&mut nfcc, &[0x2F, 0x00, 0x01, 0x01], Instant::ZERO),
        [vec![0x4F, 0x00, 0x01, 0x00]]
    );
    assert!(nfcc.standby_enabled());
    // An unknown proprietary command: syntax error with its own GID/OID.
    assert_eq!(
        exchange(&mut nfcc, &[0x2F, 0x3E, 0x01, 0x00], Instant::ZERO),
        [vec![0x4F, 0x3E, 0x01, 0x05]]
    );
}

#[test]
fn packets_that_are_not_commands_get_a_generic_error() {
    let mut nfcc = initialized_pn7150();
    // A length field that disagrees with the packet.
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x01, 0x05], Instant::ZERO),
        [vec![0x60, 0x07, 0x01, 0x05]]
    );
    // A response MT from the DH.
    assert_eq!(
        exchange(&mut nfcc, &[0x40, 0x00, 0x00], Instant::ZERO),
        [vec![0x60, 0x07, 0x01, 0x05]]
    );
    assert_eq!(nfcc.stats().malformed_packets, 2);
}

#[test]
fn data_without_an_active_connection_is_rejected() {
    let mut nfcc = initialized_pn7150();
    // DATA on conn 0 in RFST_IDLE: discarded, CORE_INTERFACE_ERROR_NTF(REJECTED, conn 0).
    assert_eq!(
        exchange(&mut nfcc, &[0x00, 0x00, 0x02, 0x90, 0x00], Instant::ZERO),
        [vec![0x60, 0x08, 0x02, 0x01, 0x00]]
    );
    assert_eq!(nfcc.stats().data_packets_rejected, 1);
}

#[test]
fn segmented_commands_are_reassembled() {
    let mut nfcc = initialized_pn7150();
    // CORE_SET_CONFIG_CMD RF_FIELD_INFO=1 in two segments (PBF on the first).
    assert!(exchange(&mut nfcc, &[0x30, 0x02, 0x02, 0x01, 0x80], Instant::ZERO).is_empty());
    assert_eq!(
        exchange(&mut nfcc, &[0x20, 0x02, 0x02, 0x01, 0x01], Instant::ZERO),
        [vec![0x40, 0x02, 0x02, 0x00, 0x00]]
    );
    assert_eq!(nfcc.config_param(0x80), Some(&[0x01][..]));
}
