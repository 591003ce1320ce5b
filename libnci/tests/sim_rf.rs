//! The RF side: activation in listen A and B, APDUs both ways with segmentation and the credit
//! round trip, deactivation, NCI 2.0 credits in data headers.
#![cfg(feature = "sim")]

use libnci::sim::nfcc::RF_INTF_ACTIVATED_NTF_LISTEN_A;
use libnci::sim::scripts::{select_aid, sweep_aid};
use libnci::sim::{
    nci2_setup, pn7150_setup, Direction, Expect, Harness, Nfcc, NfccConfig, Reader, ReaderConfig,
    RfError, RfEvent, RfState, RfTiming, Script, ScriptedDh, Step, SweepCard, TapOutcome,
};
use libnci::time::{Duration, Instant};
use libnci::wire::{DeactivationReason, RfTechnology};

fn exchange(nfcc: &mut Nfcc, cmd: &[u8], now: Instant) -> Vec<Vec<u8>> {
    nfcc.handle_packet(cmd, now);
    drain(nfcc)
}

fn drain(nfcc: &mut Nfcc) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| nfcc.poll_transmit().map(|t| t.bytes)).collect()
}

/// A PN7150 set up by the standard commands, discovering in listen A, B and F.
fn discovering(config: NfccConfig) -> Nfcc {
    let setup = match config.profile {
        libnci::sim::Profile::Pn7150 => pn7150_setup(),
        libnci::sim::Profile::Nci2 => nci2_setup(),
    };
    let mut nfcc = Nfcc::new(config);
    for cmd in setup {
        exchange(&mut nfcc, &cmd, Instant::ZERO);
    }
    assert_eq!(nfcc.rf_state(), RfState::Discovery);
    nfcc
}

fn activated(config: NfccConfig) -> Nfcc {
    let mut nfcc = discovering(config);
    nfcc.reader_field(true, Instant::ZERO);
    nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO)
        .unwrap();
    drain(&mut nfcc);
    nfcc
}

#[test]
fn listen_a_activation_notifies_the_exact_pn7150_bytes() {
    let mut nfcc = discovering(NfccConfig::pn7150());
    nfcc.reader_field(true, Instant::ZERO);
    // RF_FIELD_INFO_NTF: field on (enabled by the set-up's RF_FIELD_INFO = 1).
    assert_eq!(drain(&mut nfcc), [vec![0x61, 0x07, 0x01, 0x01]]);
    nfcc.reader_activate(RfTechnology::NfcA, Instant::from_millis(5))
        .unwrap();
    let ntf = nfcc.poll_transmit().unwrap();
    assert_eq!(ntf.at, Instant::from_millis(5));
    assert_eq!(
        ntf.bytes,
        [
            0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01,
            0x80
        ]
    );
    assert_eq!(ntf.bytes, RF_INTF_ACTIVATED_NTF_LISTEN_A);
    assert_eq!(nfcc.rf_state(), RfState::ListenActive);
    assert_eq!(nfcc.dh_credits(), Some(1));
}

#[test]
fn listen_b_activation() {
    let mut nfcc = discovering(NfccConfig::pn7150());
    nfcc.reader_field(true, Instant::ZERO);
    drain(&mut nfcc);
    nfcc.reader_activate(RfTechnology::NfcB, Instant::ZERO)
        .unwrap();
    assert_eq!(
        drain(&mut nfcc),
        [vec![
            0x61, 0x05, 0x14, // RF_INTF_ACTIVATED_NTF, 20 octets
            0x01, 0x02, 0x04, 0x81, // id 1, ISO-DEP interface/protocol, NFC-B listen
            0xFF, 0x01, 0x00, // max payload 255, 1 credit, no tech parameters
            0x81, 0x00, 0x00, // data exchange NFC-B listen, 106 kbit/s
            0x09, 0x08, // activation parameters: ATTRIB command of 8 octets (from Byte 2)
            0x08, 0x4E, 0x43, 0x49, // NFCID0
            0x00, 0x08, 0x01, 0x00, // Param 1, Param 2 (FSDI 8), Param 3, Param 4 (CID 0)
        ]]
    );
}

#[test]
fn activation_needs_field_discovery_listen_mode_and_mapping() {
    let mut nfcc = discovering(NfccConfig::pn7150());
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO),
        Err(RfError::FieldOff)
    );
    nfcc.reader_field(true, Instant::ZERO);
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcF, Instant::ZERO),
        Err(RfError::UnsupportedTechnology(RfTechnology::NfcF))
    );
    // Discovery in listen A only: B is refused.
    exchange(&mut nfcc, &[0x21, 0x06, 0x01, 0x00], Instant::ZERO);
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO),
        Err(RfError::NotDiscovering)
    );
    exchange(
        &mut nfcc,
        &[0x21, 0x03, 0x03, 0x01, 0x80, 0x01],
        Instant::ZERO,
    );
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcB, Instant::ZERO),
        Err(RfError::NotListening(RfTechnology::NfcB))
    );
    // Without an ISO-DEP mapping nothing activates.
    let mut unmapped = Nfcc::pn7150();
    for cmd in [
        vec![0x20, 0x00, 0x01, 0x01],
        vec![0x20, 0x01, 0x00],
        vec![0x21, 0x03, 0x03, 0x01, 0x80, 0x01],
    ] {
        exchange(&mut unmapped, &cmd, Instant::ZERO);
    }
    unmapped.reader_field(true, Instant::ZERO);
    assert_eq!(
        unmapped.reader_activate(RfTechnology::NfcA, Instant::ZERO),
        Err(RfError::IsoDepNotMapped)
    );
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO),
        Ok(())
    );
    assert_eq!(
        nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO),
        Err(RfError::AlreadyActive)
    );
}

#[test]
fn c_apdu_reaches_the_dh_and_the_answer_returns_the_credit() {
    let mut nfcc = activated(NfccConfig::pn7150());
    let select = select_aid(&sweep_aid(1));
    nfcc.reader_send_apdu(&select, Instant::ZERO).unwrap();
    let mut expected = vec![0x00, 0x00, select.len() as u8];
    expected.extend_from_slice(&select);
    assert_eq!(drain(&mut nfcc), [expected]);
    // ISO-DEP is half duplex.
    assert_eq!(
        nfcc.reader_send_apdu(&select, Instant::ZERO),
        Err(RfError::Busy)
    );
    // R-APDU 90 00 on conn 0; after it went over the air: CORE_CONN_CREDITS_NTF(conn 0, 1).
    assert_eq!(
        exchange(
            &mut nfcc,
            &[0x00, 0x00, 0x02, 0x90, 0x00],
            Instant::from_micros(300)
        ),
        [vec![0x60, 0x06, 0x03, 0x01, 0x00, 0x01]]
    );
    assert_eq!(
        nfcc.poll_rf_event(),
        Some(RfEvent::Response {
            at: Instant::from_micros(300),
            apdu: vec![0x90, 0x00]
        })
    );
}

#[test]
fn data_without_credit_is_rejected() {
    // RF timing on, so the first packet's credit is still out while it is on the air.
    let mut config = NfccConfig::pn7150();
    config.rf_timing = Some(RfTiming::default());
    let mut nfcc = activated(config);
    nfcc.reader_send_apdu(&[0x00, 0xB0, 0x00, 0x00, 0x00], Instant::ZERO)
        .unwrap();
    nfcc.handle_timeout(Instant::from_millis(10));
    drain(&mut nfcc);
    let t = Instant::from_millis(10);
    assert!(exchange(&mut nfcc, &[0x10, 0x00, 0x01, 0xAA], t).is_empty());
    assert_eq!(nfcc.dh_credits(), Some(0));
    assert_eq!(
        exchange(&mut nfcc, &[0x00, 0x00, 0x02, 0x90, 0x00], t),
        [vec![0x60, 0x08, 0x02, 0x01, 0x00]]
    );
    // The credit comes back once the first packet has been on the air.
    let due = nfcc.poll_timeout().unwrap();
    assert!(due > t);
    nfcc.handle_timeout(due);
    assert_eq!(drain(&mut nfcc), [vec![0x60, 0x06, 0x03, 0x01, 0x00, 0x01]]);
}

/// A 261-octet R-APDU: 259 data octets and 90 00.
fn long_answer(_: &[u8]) -> Vec<u8> {
    let mut rsp: Vec<u8> = (0..259u32).map(|i| (i % 251) as u8).collect();
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

#[test]
fn r_apdu_of_261_octets_takes_two_packets_and_a_credit_round_trip() {
    let dh = ScriptedDh::new(pn7150_setup(), long_answer as fn(&[u8]) -> Vec<u8>);
    let mut h = Harness::new(dh, Nfcc::pn7150());
    h.run_until_idle().unwrap();
    h.take_trace();
    let script = Script {
        name: "long".into(),
        steps: vec![Step::send(vec![0x00, 0xB0, 0x00, 0x00, 0x00], Expect::OK)],
    };
    let report = h.tap(Reader::new(script, ReaderConfig::default())).unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    assert_eq!(report.apdus[0].rsp, long_answer(&[]));
    let trace: Vec<(Direction, Vec<u8>)> = h
        .trace()
        .iter()
        .map(|e| (e.direction, e.bytes.clone()))
        .collect();
    let rsp = long_answer(&[]);
    let mut first = vec![0x10, 0x00, 0xFF];
    first.extend_from_slice(&rsp[..255]);
    let mut last = vec![0x00, 0x00, 0x06];
    last.extend_from_slice(&rsp[255..]);
    let credits = vec![0x60, 0x06, 0x03, 0x01, 0x00, 0x01];
    let expected = [
        (Direction::NfccToDh, vec![0x61, 0x07, 0x01, 0x01]),
        (Direction::NfccToDh, RF_INTF_ACTIVATED_NTF_LISTEN_A.to_vec()),
        (
            Direction::NfccToDh,
            vec![0x00, 0x00, 0x05, 0x00, 0xB0, 0x00, 0x00, 0x00],
        ),
        // First segment with the only credit, PBF set.
        (Direction::DhToNfcc, first),
        // The credit comes back before the last segment may go.
        (Direction::NfccToDh, credits.clone()),
        (Direction::DhToNfcc, last),
        (Direction::NfccToDh, credits),
        // DESELECT: sleep, endpoint request; field off: field info, link loss.
        (Direction::NfccToDh, vec![0x61, 0x06, 0x02, 0x01, 0x01]),
        (Direction::NfccToDh, vec![0x61, 0x07, 0x01, 0x00]),
        (Direction::NfccToDh, vec![0x61, 0x06, 0x02, 0x03, 0x02]),
    ];
    assert_eq!(trace, expected);
}

#[test]
fn long_c_apdu_is_segmented_to_the_dh() {
    let mut nfcc = activated(NfccConfig::pn7150());
    // A case-4 C-APDU with 255 data octets: 261 octets.
    let mut apdu = vec![0x80, 0xE2, 0x00, 0x00, 0xFF];
    apdu.extend(std::iter::repeat_n(0x5A, 255));
    apdu.push(0x00);
    nfcc.reader_send_apdu(&apdu, Instant::ZERO).unwrap();
    let out = drain(&mut nfcc);
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0][..3], &[0x10, 0x00, 0xFF]);
    assert_eq!(&out[1][..3], &[0x00, 0x00, 0x06]);
    assert_eq!([&out[0][3..], &out[1][3..]].concat(), apdu);
}

#[test]
fn deactivation_by_the_reader_and_by_the_dh() {
    let mut nfcc = activated(NfccConfig::pn7150());
    // DESELECT: RF_DEACTIVATE_NTF(Sleep, Endpoint request), RFST_LISTEN_SLEEP.
    nfcc.reader_deactivate(DeactivationReason::EndpointRequest, Instant::ZERO)
        .unwrap();
    assert_eq!(drain(&mut nfcc), [vec![0x61, 0x06, 0x02, 0x01, 0x01]]);
    assert_eq!(nfcc.rf_state(), RfState::ListenSleep);
    assert!(matches!(
        nfcc.poll_rf_event(),
        Some(RfEvent::Deactivated {
            reason: DeactivationReason::EndpointRequest,
            ..
        })
    ));
    // The reader wakes the card again.
    nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO)
        .unwrap();
    assert_eq!(drain(&mut nfcc), [RF_INTF_ACTIVATED_NTF_LISTEN_A.to_vec()]);
    // The DH deactivates to discovery: RSP, NTF(Discovery, DH request); the reader sees it.
    assert_eq!(
        exchange(&mut nfcc, &[0x21, 0x06, 0x01, 0x03], Instant::ZERO),
        [
            vec![0x41, 0x06, 0x01, 0x00],
            vec![0x61, 0x06, 0x02, 0x03, 0x00]
        ]
    );
    assert!(matches!(
        nfcc.poll_rf_event(),
        Some(RfEvent::Deactivated {
            reason: DeactivationReason::DhRequest,
            ..
        })
    ));
    assert_eq!(nfcc.rf_state(), RfState::Discovery);
    // Link loss from an active card: NTF(Discovery, RF link loss).
    nfcc.reader_activate(RfTechnology::NfcA, Instant::ZERO)
        .unwrap();
    drain(&mut nfcc);
    nfcc.reader_deactivate(DeactivationReason::RfLinkLoss, Instant::ZERO)
        .unwrap();
    assert_eq!(drain(&mut nfcc), [vec![0x61, 0x06, 0x02, 0x03, 0x02]]);
    assert_eq!(
        nfcc.reader_deactivate(DeactivationReason::RfLinkLoss, Instant::ZERO),
        Err(RfError::NotActive)
    );
}

#[test]
fn nci2_returns_credits_in_the_data_header_when_a_packet_is_going_anyway() {
    let mut config = NfccConfig::nci2();
    config.credit_ntf_holdoff = Duration::from_millis(1);
    let dh = ScriptedDh::new(nci2_setup(), SweepCard::new());
    let mut h = Harness::new(dh, Nfcc::new(config));
    h.run_until_idle().unwrap();
    h.take_trace();
    let script = Script {
        name: "two selects".into(),
        steps: (0..2)
            .map(|i| Step::send(select_aid(&sweep_aid(i)), Expect::OK))
            .collect(),
    };
    let report = h.tap(Reader::new(script, ReaderConfig::default())).unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    h.run_until_idle().unwrap();
    let from_nfcc: Vec<Vec<u8>> = h
        .trace()
        .iter()
        .filter(|e| e.direction == Direction::NfccToDh)
        .map(|e| e.bytes.clone())
        .collect();
    // The first SELECT arrives with CR = 0; the second carries the credit the first answer
    // earned (CR = 1) and no CORE_CONN_CREDITS_NTF is sent for it.
    let data: Vec<&Vec<u8>> = from_nfcc.iter().filter(|p| p[0] >> 5 == 0).collect();
    assert_eq!(data.len(), 2);
    assert_eq!(&data[0][..2], &[0x00, 0x00]);
    assert_eq!(&data[1][..2], &[0x00, 0x01]);
    // The second answer's credit had no packet to ride on and the tap ended: after the
    // deactivation nothing is owed on a closed connection.
    assert!(!from_nfcc.contains(&vec![0x60, 0x06, 0x03, 0x01, 0x00, 0x01]));
    assert_eq!(h.nfcc.stats().credits_in_data_headers, 1);
    assert_eq!(h.dh.exchanges().len(), 2);
}
