//! Card session transcripts on a PN7150: activation, APDU exchange, segmentation with a credit
//! round trip, reassembly, link loss, sleep, deferred reconfiguration.

mod transcript;

use libnci::controller::{
    Activation, ControllerError, Deactivation, IsoDepListenParams, ListenTechs, ReinitCause,
    SendError, State,
};
use libnci::wire::{
    BitRate, DeactivationReason, DeactivationType, RfInterface, RfProtocol, RfTechMode,
};
use transcript::{data_packet, hex, pn7150, pn7150_active, pn7150_ready, Ev};

/// SELECT PPSE (2PAY.SYS.DDF01), 20 octets.
const SELECT_PPSE: &str = "00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00";

fn apdu(len: usize, sw: [u8; 2]) -> Vec<u8> {
    let mut apdu: Vec<u8> = (0..len - 2).map(|i| (i % 251) as u8).collect();
    apdu.extend_from_slice(&sw);
    apdu
}

#[test]
fn apdu_exchange() {
    let mut t = pn7150_ready();
    t.queue_ntf(pn7150::RF_FIELD_INFO_NTF_ON);
    t.expect_event(Ev::FieldOn);
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    t.expect_event(Ev::Activated(Activation {
        discovery_id: 1,
        interface: RfInterface::IsoDep,
        protocol: RfProtocol::IsoDep,
        mode: RfTechMode::NfcAPassiveListen,
        max_data_payload: 255,
        initial_credits: 1,
        data_exchange_mode: RfTechMode::NfcAPassiveListen,
        tx_bit_rate: BitRate::Kbps106,
        rx_bit_rate: BitRate::Kbps106,
        iso_dep: Some(IsoDepListenParams {
            fsd: Some(256),
            did: Some(0),
        }),
    }));
    t.expect_state(State::Active);

    // DATA: SELECT PPSE, one packet.
    t.queue_data(&format!("00 00 14 {SELECT_PPSE}"));
    assert_eq!(t.expect_data(), hex(SELECT_PPSE));
    t.expect_no_transmit();

    // The host answers with FCI + 90 00.
    t.send_data(&hex("6F 05 84 03 01 02 03 90 00")).unwrap();
    t.expect_cmd("00 00 09 6F 05 84 03 01 02 03 90 00");
    t.expect_no_transmit();
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);

    // A second command on the same session.
    t.queue_data("00 00 05 80 CA 9F 36 00");
    assert_eq!(t.expect_data(), hex("80 CA 9F 36 00"));
    t.send_data(&hex("6A 88")).unwrap();
    t.expect_cmd("00 00 02 6A 88");
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);

    // The reader sends DESELECT: the controller reports an endpoint request and is back in
    // discovery by itself; nothing is sent.
    t.queue_ntf(pn7150::RF_DEACTIVATE_NTF_ENDPOINT);
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Discovery,
        reason: DeactivationReason::EndpointRequest,
    }));
    t.queue_ntf(pn7150::RF_FIELD_INFO_NTF_OFF);
    t.expect_event(Ev::FieldOff);
    t.expect_no_transmit();
    t.expect_no_event();
    t.expect_state(State::Discovery);
    assert_eq!(t.ctl.poll_timeout(), None);
}

#[test]
fn response_of_261_octets_is_255_then_6_with_a_credit_round_trip() {
    let mut t = pn7150_active();
    t.queue_data("00 00 05 00 B0 00 00 00");
    t.expect_data();
    let response = apdu(261, [0x90, 0x00]);
    t.send_data(&response).unwrap();

    // First segment: PBF set, 255 octets, spends the only credit.
    let mut first = vec![0x10, 0x00, 0xFF];
    first.extend_from_slice(&response[..255]);
    t.expect_bytes(&first);
    t.expect_no_transmit();
    // Waiting for the credit is guarded by a timer.
    assert!(t.ctl.poll_timeout().is_some());

    t.advance(2);
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);
    let mut last = vec![0x00, 0x00, 0x06];
    last.extend_from_slice(&response[255..]);
    t.expect_bytes(&last);
    t.expect_no_transmit();
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);
    assert_eq!(t.ctl.poll_timeout(), None);
    t.expect_no_event();
}

#[test]
fn command_of_300_octets_is_reassembled() {
    let mut t = pn7150_active();
    let command = apdu(300, [0x00, 0x00]);
    t.queue(&data_packet(true, &command[..255]));
    t.expect_no_event();
    t.queue(&data_packet(false, &command[255..]));
    assert_eq!(t.expect_data(), command);
    t.expect_no_event();
}

#[test]
fn link_loss_mid_command_drops_the_partial_apdu() {
    let mut t = pn7150_active();
    let command = apdu(300, [0x00, 0x00]);
    t.queue(&data_packet(true, &command[..255]));
    t.queue_ntf(pn7150::RF_DEACTIVATE_NTF_LINK_LOSS);
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Discovery,
        reason: DeactivationReason::RfLinkLoss,
    }));
    t.expect_no_event();
    t.expect_state(State::Discovery);
    assert_eq!(t.send_data(&hex("90 00")), Err(SendError::NoSession));

    // The next tap starts clean: no leftover octets in front of the new command.
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    t.queue_data(&format!("00 00 14 {SELECT_PPSE}"));
    assert_eq!(t.expect_data(), hex(SELECT_PPSE));
}

#[test]
fn link_loss_mid_response_drops_the_rest() {
    let mut t = pn7150_active();
    t.queue_data("00 00 05 00 B0 00 00 00");
    t.expect_data();
    t.send_data(&apdu(261, [0x90, 0x00])).unwrap();
    let first = t.ctl.poll_transmit().unwrap();
    assert_eq!(&first[..3], &[0x10, 0x00, 0xFF]);
    t.queue_ntf(pn7150::RF_DEACTIVATE_NTF_LINK_LOSS);
    t.expect_event_where("Deactivated", |e| matches!(e, Ev::Deactivated(_)));
    // A late credit must not release the rest of the dropped response.
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);
    t.expect_no_transmit();
    assert_eq!(t.ctl.poll_timeout(), None);
}

#[test]
fn lost_credit_reinitialises() {
    let mut t = pn7150_active();
    t.queue_data("00 00 05 00 B0 00 00 00");
    t.expect_data();
    t.send_data(&apdu(261, [0x90, 0x00])).unwrap();
    t.ctl.poll_transmit().unwrap();
    t.expect_no_transmit();
    // No CORE_CONN_CREDITS_NTF within the credit timeout (1 s).
    t.advance(999);
    t.expect_no_event();
    t.advance(1);
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    assert_eq!(t.expect_reinit(), ReinitCause::CreditLost);
    t.expect_state(State::Recovering);
    t.advance(10);
    transcript::pn7150_startup(&mut t);
}

#[test]
fn send_data_is_refused_outside_an_exchange() {
    let mut t = pn7150_ready();
    assert_eq!(t.send_data(&hex("90 00")), Err(SendError::NoSession));
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    // Activated, but no command yet.
    assert_eq!(t.send_data(&hex("90 00")), Err(SendError::NotExpected));
    t.queue_data("00 00 05 00 B0 00 00 00");
    assert_eq!(t.send_data(&[]), Err(SendError::Empty));
    assert_eq!(t.send_data(&vec![0u8; 65_539]), Err(SendError::TooLong));
    t.send_data(&hex("90 00")).unwrap();
    // One response per command.
    assert_eq!(t.send_data(&hex("90 00")), Err(SendError::NotExpected));
}

#[test]
fn data_outside_a_session_is_reported_and_dropped() {
    let mut t = pn7150_ready();
    t.queue_data("00 00 02 90 00");
    t.expect_event(Ev::Error(ControllerError::UnexpectedData { conn_id: 0 }));
    t.expect_state(State::Discovery);
    t.expect_no_transmit();
}

#[test]
fn sleep_then_reactivation() {
    let mut t = pn7150_active();
    // RF_DEACTIVATE_NTF: sleep mode, endpoint request (DESELECT).
    t.queue_ntf("61 06 02 01 01");
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Sleep,
        reason: DeactivationReason::EndpointRequest,
    }));
    t.expect_state(State::Discovery);
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    t.expect_state(State::Active);
}

#[test]
fn overlong_command_is_answered_with_wrong_length() {
    let mut t = pn7150_active();
    // 258 segments of 255 octets: more than an extended-length C-APDU.
    for _ in 0..258 {
        t.queue(&data_packet(true, &[0x11; 255]));
    }
    t.expect_event(Ev::Error(ControllerError::ApduTooLong));
    t.queue(&data_packet(false, &[0x11; 10]));
    t.expect_no_event();
    // SW 67 00 goes out with the credit of the activation.
    t.expect_cmd("00 00 02 67 00");
    // The session goes on.
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);
    t.queue_data("00 00 05 00 B0 00 00 00");
    assert_eq!(t.expect_data(), hex("00 B0 00 00 00"));
}

#[test]
fn extended_length_command_fits() {
    let mut t = pn7150_active();
    let command = apdu(65_544, [0x01, 0x00]);
    let mut chunks = command.chunks(255).peekable();
    while let Some(chunk) = chunks.next() {
        t.queue(&data_packet(chunks.peek().is_some(), chunk));
    }
    assert_eq!(t.expect_data(), command);
}

#[test]
fn routing_change_waits_for_the_end_of_the_session() {
    let mut t = pn7150_active();
    let mut routes = libnci::controller::Config::default().routes;
    routes.truncate(1); // ISO-DEP → DH only
    t.set_routes(routes);
    // Nothing while the reader is there.
    t.expect_no_transmit();
    t.expect_state(State::Active);
    t.queue_ntf(pn7150::RF_DEACTIVATE_NTF_LINK_LOSS);
    t.expect_event_where("Deactivated", |e| matches!(e, Ev::Deactivated(_)));
    // Back in discovery: stop it (response only, NCI 1.0 §5.2.2), program, restart.
    t.expect_state(State::Reconfiguring);
    t.exchange("21 06 01 00", "41 06 01 00");
    t.exchange("21 01 07 00 01 01 03 00 01 04", "41 01 01 00");
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event(Ev::RoutingProgrammed {
        mode: libnci::routing::RoutingMode::Mixed,
        used: 5,
        capacity: 720,
    });
    t.expect_no_event();
    t.expect_state(State::Discovery);
}

#[test]
fn listen_change_in_discovery_restarts_discovery() {
    let mut t = pn7150_ready();
    t.set_listen(ListenTechs {
        a: true,
        b: false,
        f: false,
    });
    t.exchange("21 06 01 00", "41 06 01 00");
    t.exchange("21 03 03 01 80 01", pn7150::RF_DISCOVER_RSP);
    t.expect_no_transmit();
    t.expect_no_event();
    t.expect_state(State::Discovery);
}

#[test]
fn activation_racing_the_stop_of_discovery() {
    let mut t = pn7150_ready();
    t.set_listen(ListenTechs {
        a: true,
        b: false,
        f: false,
    });
    t.expect_cmd("21 06 01 00");
    // A reader got there first: the controller was in RFST_LISTEN_ACTIVE when our command
    // arrived, so RF_DEACTIVATE_NTF follows the response.
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    t.queue_rsp("41 06 01 00");
    t.expect_no_transmit();
    t.queue_ntf("61 06 02 00 00"); // idle, DH request
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Idle,
        reason: DeactivationReason::DhRequest,
    }));
    t.exchange("21 03 03 01 80 01", pn7150::RF_DISCOVER_RSP);
    t.expect_state(State::Discovery);
}

#[test]
fn disabling_ends_the_session_at_once() {
    let mut t = pn7150_active();
    t.set_enabled(false);
    // The session lasts until the controller confirms its end.
    t.expect_state(State::Active);
    t.exchange("21 06 01 00", "41 06 01 00");
    // From RFST_LISTEN_ACTIVE the notification follows the response.
    t.expect_no_transmit();
    t.queue_ntf("61 06 02 00 00");
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Idle,
        reason: DeactivationReason::DhRequest,
    }));
    t.expect_no_transmit();
    t.expect_state(State::Idle);
    t.set_enabled(true);
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_state(State::Discovery);
}

#[test]
fn deactivate_notification_missing_after_response_times_out() {
    let mut t = pn7150_active();
    t.set_enabled(false);
    t.exchange("21 06 01 00", "41 06 01 00");
    t.advance(1000);
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    assert_eq!(
        t.expect_reinit(),
        ReinitCause::Timeout {
            waiting_for: "RF_DEACTIVATE_NTF"
        }
    );
}

#[test]
fn interface_error_drops_the_partial_command_and_keeps_the_session() {
    let mut t = pn7150_active();
    t.queue(&data_packet(true, &[0x22; 255]));
    // CORE_INTERFACE_ERROR_NTF: RF_PROTOCOL_ERROR on connection 0.
    t.queue_ntf("60 08 02 B1 00");
    t.expect_event(Ev::Error(ControllerError::InterfaceError {
        status: libnci::wire::Status::RfProtocolError,
        conn_id: 0,
    }));
    t.expect_state(State::Active);
    t.queue_data("00 00 05 00 B0 00 00 00");
    assert_eq!(t.expect_data(), hex("00 B0 00 00 00"));
}

#[test]
fn nci2_credits_in_data_packets_are_counted() {
    let mut t = transcript::Transcript::default_config();
    t.exchange("20 00 01 01", "40 00 01 00");
    t.queue_ntf("60 00 09 02 01 20 02 04 01 02 03 04");
    t.exchange(
        "20 01 02 00 00",
        "40 01 18 00 1A 7E 06 00 02 00 02 FF FF 00 0C 01 05 01 00 02 00 03 00 00 00 90 00",
    );
    t.exchange(
        "20 03 05 04 32 38 58 80",
        "40 03 0E 00 04 32 01 20 38 01 01 58 01 70 80 01 01",
    );
    t.exchange("22 00 00", "42 00 02 00 00");
    for step in &transcript::PN7150_STEPS[6..] {
        t.exchange(step.cmd, step.rsp);
    }
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { .. })
    });
    t.expect_event(Ev::Ready);
    // Activation with no initial credit.
    t.queue_ntf("61 05 0C 01 02 04 80 FF 00 00 80 00 00 01 80");
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    // NCI 2.0 §3.4.3: the command comes with CR = 1, a credit for our response.
    t.queue_data("00 01 05 00 B0 00 00 00");
    assert_eq!(t.expect_data(), hex("00 B0 00 00 00"));
    t.send_data(&hex("90 00")).unwrap();
    t.expect_cmd("00 00 02 90 00");
}

#[test]
fn nci1_ignores_the_credit_bits_of_data_packets() {
    let mut t = pn7150_ready();
    t.queue_ntf("61 05 0C 01 02 04 80 FF 00 00 80 00 00 01 80");
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    // Octet 1 is RFU under NCI 1.0: no credit from it.
    t.queue_data("00 01 05 00 B0 00 00 00");
    t.expect_data();
    t.send_data(&hex("90 00")).unwrap();
    t.expect_no_transmit();
    t.queue_ntf(pn7150::CORE_CONN_CREDITS_NTF);
    t.expect_cmd("00 00 02 90 00");
}

#[test]
fn controller_going_idle_by_itself_restarts_discovery() {
    let mut t = pn7150_active();
    // RF_DEACTIVATE_NTF: idle, link loss — discovery stopped without being asked.
    t.queue_ntf("61 06 02 00 02");
    t.expect_event(Ev::Deactivated(Deactivation::Ntf {
        kind: DeactivationType::Idle,
        reason: DeactivationReason::RfLinkLoss,
    }));
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_no_event();
    t.expect_state(State::Discovery);
}

#[test]
fn routing_change_during_start_up_is_applied_after_ready() {
    let mut t = transcript::Transcript::default_config();
    for step in &transcript::PN7150_STEPS[..8] {
        t.exchange(step.cmd, step.rsp);
    }
    // The default table is programmed; now the routes change before discovery starts.
    let mut routes = libnci::controller::Config::default().routes;
    routes.truncate(1);
    t.set_routes(routes);
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { used: 15, .. })
    });
    t.expect_event(Ev::Ready);
    // Right after Ready: stop, reprogram, restart.
    t.exchange("21 06 01 00", "41 06 01 00");
    t.exchange("21 01 07 00 01 01 03 00 01 04", "41 01 01 00");
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { used: 5, .. })
    });
    t.expect_state(State::Discovery);
}

#[test]
fn unchanged_routes_do_not_interrupt_discovery() {
    let mut t = pn7150_ready();
    // A host AID route costs no table space: the table stays as programmed.
    let mut routes = libnci::controller::Config::default().routes;
    routes
        .push(libnci::routing::RoutingRule::Aid {
            route: 0x00,
            power_state: libnci::wire::routing::PowerState::SWITCHED_ON,
            aid: libnci::routing::Aid::new(&hex("A0 00 00 00 04 10 10")).unwrap(),
            matching: libnci::routing::AidMatch::Exact,
        })
        .unwrap();
    t.set_routes(routes);
    t.expect_no_transmit();
    t.expect_no_event();
    t.expect_state(State::Discovery);
}
