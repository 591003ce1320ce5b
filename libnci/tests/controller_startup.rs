//! Start-up transcripts: PN7150 (NCI 1.0, NXP) and an NCI 2.0 controller; configuration read
//! before it is written; NXP EEPROM configuration with its reset; routing fallback.

mod transcript;

use libnci::controller::{Config, ControllerError, Param, State};
use libnci::routing::{Aid, AidMatch, RoutingMode, RoutingRule};
use libnci::wire::config::ParamId;
use libnci::wire::routing::PowerState;
use libnci::wire::{NciVersion, RfInterface, RfProtocol};
use transcript::{pn7150, pn7150_startup, Ev, Transcript};

#[test]
fn pn7150_start_up_to_ready() {
    let mut t = Transcript::default_config();
    t.expect_state(State::Initializing);
    pn7150_startup(&mut t);

    let info = t.ctl.info().expect("controller info");
    assert_eq!(info.nci_version, NciVersion::V1_0);
    assert!(info.is_nxp());
    let nxp = info.nxp_version().expect("NXP version");
    assert_eq!(nxp.chip(), Some("PN7150"));
    assert_eq!((nxp.fw_major, nxp.fw_minor), (0x01, 0xA0));
    assert_eq!(info.max_routing_table_size, 720);
    assert_eq!(info.max_control_payload, 255);
    assert_eq!(info.nfcee_count, Some(0));
    assert_eq!(info.interfaces.len(), 8);
    assert!(info.interfaces.contains(&RfInterface::IsoDep));

    let routing = t.ctl.routing().expect("programmed table");
    assert_eq!(routing.mode(), RoutingMode::Mixed);
    assert_eq!(routing.encoded_len(), 15);
    assert_eq!(routing.entries().count(), 3);
    // Nothing is pending: no timer while simply listening.
    assert_eq!(t.ctl.poll_timeout(), None);
}

#[test]
fn commands_wait_for_their_response() {
    let mut t = Transcript::default_config();
    t.expect_cmd(pn7150::CORE_RESET_CMD);
    // One command at a time (NCI 1.0 §3.2): nothing more until CORE_RESET_RSP.
    t.expect_no_transmit();
    assert!(t.ctl.poll_timeout().is_some());
    t.queue_rsp(pn7150::CORE_RESET_RSP);
    t.expect_cmd(pn7150::CORE_INIT_CMD);
    t.expect_no_transmit();
}

/// NCI 2.0: CORE_RESET_RSP carries a status only; the version comes in CORE_RESET_NTF, and
/// CORE_INIT_CMD has its two feature-enable octets. The configuration read back already
/// matches, so no CORE_SET_CONFIG_CMD is sent.
#[test]
fn nci2_start_up_to_ready() {
    let mut t = Transcript::default_config();
    t.exchange(
        "20 00 01 01", // CORE_RESET_CMD
        "40 00 01 00", // CORE_RESET_RSP: OK
    );
    t.expect_no_transmit(); // waiting for CORE_RESET_NTF
    t.queue_ntf(
        // CORE_RESET_NTF: reset command, configuration reset, NCI 2.0, manufacturer 0x02,
        // 26 octets of manufacturer information.
        "60 00 1F 02 01 20 02 1A 04 04 01 03 63 94 02 02 00 59 C0 C0 1B 59 C0 89 7F 00 00 00 02 \
         00 00 42 22 01",
    );
    t.exchange(
        "20 01 02 00 00", // CORE_INIT_CMD (NCI 2.0)
        // CORE_INIT_RSP (NCI 2.0): routing table 512, control payload 255, 5 interfaces.
        "40 01 18 00 1A 7E 06 00 02 00 02 FF FF 00 0C 01 05 01 00 02 00 03 00 00 00 90 00",
    );
    t.exchange(
        "20 03 05 04 32 38 58 80", // CORE_GET_CONFIG_CMD
        // CORE_GET_CONFIG_RSP: LI_A_RATS_TB1 0x70 is FWI 7, SFGI 0 under NCI 2.0.
        "40 03 0E 00 04 32 01 20 38 01 01 58 01 70 80 01 01",
    );
    t.exchange(
        "22 00 00",       // NFCEE_DISCOVER_CMD (NCI 2.0: no payload)
        "42 00 02 00 00", // NFCEE_DISCOVER_RSP: none
    );
    t.exchange(pn7150::RF_DISCOVER_MAP_CMD, pn7150::RF_DISCOVER_MAP_RSP);
    t.exchange(
        pn7150::RF_SET_LISTEN_MODE_ROUTING_CMD,
        pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP,
    );
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event(Ev::RoutingProgrammed {
        mode: RoutingMode::Mixed,
        used: 15,
        capacity: 512,
    });
    t.expect_event(Ev::Ready);
    t.expect_no_transmit();
    t.expect_state(State::Discovery);
    let info = t.ctl.info().unwrap();
    assert_eq!(info.nci_version, NciVersion::V2_0);
    assert_eq!(info.manufacturer.0, 0x02);
    assert!(!info.is_nxp());
    assert_eq!(info.manufacturer_info.len(), 26);
    assert_eq!(info.interfaces.len(), 5);
}

#[test]
fn nci2_power_on_notification_before_response_is_ignored() {
    let mut t = Transcript::default_config();
    t.expect_cmd("20 00 01 01");
    // CORE_RESET_NTF "powered on", still from before our reset.
    t.queue_ntf("60 00 09 01 00 20 04 04 00 00 00 00");
    t.expect_no_event();
    t.queue_rsp("40 00 01 00");
    t.queue_ntf("60 00 09 02 01 20 04 04 50 12 01 02");
    // NXP (0x04) under NCI 2.0: CORE_INIT with feature octets, then the NXP extensions.
    t.exchange(
        "20 01 02 00 00",
        "40 01 18 00 1A 7E 06 00 02 00 02 FF FF 00 0C 01 05 01 00 02 00 03 00 00 00 90 00",
    );
    t.expect_cmd("2F 02 00");
    t.expect_no_event();
}

#[test]
fn get_config_matching_sends_no_set_config() {
    let mut t = Transcript::default_config();
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(
        pn7150::CORE_GET_CONFIG_CMD,
        pn7150::CORE_GET_CONFIG_RSP_MATCHING,
    );
    // Straight on to NFCEE discovery: no CORE_SET_CONFIG_CMD.
    t.expect_cmd(pn7150::NFCEE_DISCOVER_CMD);
}

#[test]
fn get_config_invalid_param_asks_again_and_sets_the_unknown_ones() {
    let mut t = Transcript::default_config();
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(
        pn7150::CORE_GET_CONFIG_CMD,
        // CORE_GET_CONFIG_RSP: STATUS_INVALID_PARAM, LI_FWI unknown (length 0).
        "40 03 04 09 01 58 00",
    );
    t.exchange(
        "20 03 04 03 32 38 80", // CORE_GET_CONFIG_CMD of the others
        "40 03 0B 00 03 32 01 20 38 01 01 80 01 00", // LA_SEL_INFO, LB_SENSB_INFO match
    );
    // LI_FWI is set although it could not be read; RF_FIELD_INFO differs.
    t.exchange(
        "20 02 07 02 58 01 07 80 01 01",
        // CORE_SET_CONFIG_RSP: STATUS_INVALID_PARAM, LI_FWI rejected.
        "40 02 03 09 01 58",
    );
    t.expect_event(Ev::Error(ControllerError::ParamRejected(
        ParamId::LI_A_RATS_TB1,
    )));
    // The others were set: start-up goes on.
    t.expect_cmd(pn7150::NFCEE_DISCOVER_CMD);
}

#[test]
fn set_config_is_split_to_the_control_payload() {
    let mut config = Config {
        fwi: None,
        field_info: false,
        ..Config::default()
    };
    // Four 40-octet values, 42 octets each on the wire: a controller with a 64-octet control
    // payload takes one per CORE_SET_CONFIG_CMD.
    for id in [0x50u8, 0x51, 0x52, 0x53] {
        let param = Param::new(ParamId::Nci(id.into()), &[id; 40]).unwrap();
        config.extra_params.push(param).unwrap();
    }
    let mut t = Transcript::new(config);
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    // CORE_INIT_RSP with Max Control Packet Payload Size 64.
    t.exchange(
        pn7150::CORE_INIT_CMD,
        "40 01 19 00 03 1E 03 00 08 00 01 02 03 80 81 82 83 02 D0 02 40 02 00 04 88 10 01 A0",
    );
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(
        "20 03 08 07 32 38 80 50 51 52 53",
        // Only the first three are reported: the extra ones will be written.
        "40 03 0B 00 03 32 01 20 38 01 01 80 01 00",
    );
    for id in [0x50u8, 0x51, 0x52, 0x53] {
        let mut cmd = vec![0x20, 0x02, 43, 0x01, id, 40];
        cmd.extend_from_slice(&[id; 40]);
        t.expect_bytes(&cmd);
        t.expect_no_transmit();
        t.queue_rsp(pn7150::CORE_SET_CONFIG_RSP);
    }
    t.expect_cmd(pn7150::NFCEE_DISCOVER_CMD);
}

fn nxp_tvdd_config() -> Config {
    let mut config = Config::default();
    // PMU / TVDD configuration: VBAT 5 V, TxLDO 3.3 V (a tag read only at boot).
    config
        .nxp_params
        .push(Param::nxp(0xA00E, &[0x16, 0x09, 0x00]).unwrap())
        .unwrap();
    config
}

const GET_TVDD_CMD: &str = "20 03 03 01 A0 0E";
const GET_TVDD_RSP_OLD: &str = "40 03 08 00 01 A0 0E 03 11 01 00";
const GET_TVDD_RSP_NEW: &str = "40 03 08 00 01 A0 0E 03 16 09 00";
const SET_TVDD_CMD: &str = "20 02 07 01 A0 0E 03 16 09 00";

#[test]
fn nxp_config_that_differs_is_written_then_the_controller_is_reset() {
    let mut t = Transcript::new(nxp_tvdd_config());
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(GET_TVDD_CMD, GET_TVDD_RSP_OLD);
    t.exchange(SET_TVDD_CMD, pn7150::CORE_SET_CONFIG_RSP);
    // A0 0E is read at boot: reset and initialise again; now it reads back as written and
    // nothing is written a second time.
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(GET_TVDD_CMD, GET_TVDD_RSP_NEW);
    t.exchange(pn7150::CORE_GET_CONFIG_CMD, pn7150::CORE_GET_CONFIG_RSP);
    t.exchange(pn7150::CORE_SET_CONFIG_CMD, pn7150::CORE_SET_CONFIG_RSP);
    t.exchange(pn7150::NFCEE_DISCOVER_CMD, pn7150::NFCEE_DISCOVER_RSP);
    t.exchange(pn7150::RF_DISCOVER_MAP_CMD, pn7150::RF_DISCOVER_MAP_RSP);
    t.exchange(
        pn7150::RF_SET_LISTEN_MODE_ROUTING_CMD,
        pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP,
    );
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    // A planned reset, not a failure: no Reinitializing event.
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { .. })
    });
    t.expect_event(Ev::Ready);
    t.expect_no_event();
}

#[test]
fn nxp_config_already_in_eeprom_is_not_written() {
    let mut t = Transcript::new(nxp_tvdd_config());
    t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
    t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
    t.exchange(
        pn7150::NCI_PROPRIETARY_ACT_CMD,
        pn7150::NCI_PROPRIETARY_ACT_RSP,
    );
    t.exchange(GET_TVDD_CMD, GET_TVDD_RSP_NEW);
    // No CORE_SET_CONFIG_CMD of A0 0E, no reset: on to the NCI parameters.
    t.expect_cmd(pn7150::CORE_GET_CONFIG_CMD);
}

#[test]
fn nxp_config_not_applied_after_reset_is_reported_and_not_looped() {
    let mut t = Transcript::new(nxp_tvdd_config());
    for _ in 0..2 {
        t.exchange(pn7150::CORE_RESET_CMD, pn7150::CORE_RESET_RSP);
        t.exchange(pn7150::CORE_INIT_CMD, pn7150::CORE_INIT_RSP);
        t.exchange(
            pn7150::NCI_PROPRIETARY_ACT_CMD,
            pn7150::NCI_PROPRIETARY_ACT_RSP,
        );
        t.exchange(GET_TVDD_CMD, GET_TVDD_RSP_OLD);
        t.exchange(SET_TVDD_CMD, pn7150::CORE_SET_CONFIG_RSP);
    }
    t.expect_event(Ev::Error(ControllerError::NxpParamNotApplied(
        ParamId::Nxp(0xA00E),
    )));
    // No third reset.
    t.expect_cmd(pn7150::CORE_GET_CONFIG_CMD);
}

#[test]
fn nxp_params_are_ignored_on_other_controllers() {
    let mut t = Transcript::new(nxp_tvdd_config());
    t.exchange("20 00 01 01", "40 00 01 00");
    t.queue_ntf("60 00 09 02 01 20 02 04 01 02 03 04");
    t.exchange(
        "20 01 02 00 00",
        "40 01 18 00 1A 7E 06 00 02 00 02 FF FF 00 0C 01 05 01 00 02 00 03 00 00 00 90 00",
    );
    // Manufacturer 0x02: neither NCI_PROPRIETARY_ACT nor A0 0E.
    t.expect_cmd("20 03 05 04 32 38 58 80");
}

fn off_host_aid_routes(aids: usize) -> heapless::Vec<RoutingRule, 64> {
    let mut routes: heapless::Vec<RoutingRule, 64> = Config::default().routes;
    for i in 0..aids {
        let mut aid = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0x00];
        aid[7] = i as u8;
        routes
            .push(RoutingRule::Aid {
                route: 0x02,
                power_state: PowerState::SWITCHED_ON,
                aid: Aid::new(&aid).unwrap(),
                matching: AidMatch::Exact,
            })
            .unwrap();
    }
    routes
}

/// Run a PN7150 start-up up to the first routing command.
fn pn7150_until_routing(config: Config) -> Transcript {
    let mut t = Transcript::new(config);
    for step in &transcript::PN7150_STEPS[..7] {
        t.exchange(step.cmd, step.rsp);
    }
    t
}

#[test]
fn routing_table_refused_for_size_falls_back_to_protocol_entries() {
    let config = Config {
        routes: off_host_aid_routes(2),
        ..Config::default()
    };
    let mut t = pn7150_until_routing(config);
    // Mixed: two AID entries (A0 00 00 00 04 10 10 0x → NFCEE 0x02), then ISO-DEP, NFC-A, NFC-B.
    t.exchange(
        "21 01 29 00 05 \
         02 0A 02 01 A0 00 00 00 04 10 10 00 \
         02 0A 02 01 A0 00 00 00 04 10 10 01 \
         01 03 00 01 04 00 03 00 01 00 00 03 00 01 01",
        "41 01 01 0A", // STATUS_MESSAGE_SIZE_EXCEEDED
    );
    // Protocol mode: the AID entries are gone, the table is sent again from its start.
    t.exchange(
        pn7150::RF_SET_LISTEN_MODE_ROUTING_CMD,
        pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP,
    );
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event(Ev::RoutingProgrammed {
        mode: RoutingMode::Protocol,
        used: 15,
        capacity: 720,
    });
    t.expect_event(Ev::Ready);
    assert_eq!(t.ctl.routing().unwrap().mode(), RoutingMode::Protocol);
}

#[test]
fn routing_refused_down_to_technology_then_keeps_the_default_route() {
    let mut t = pn7150_until_routing(Config::default());
    t.exchange(pn7150::RF_SET_LISTEN_MODE_ROUTING_CMD, "41 01 01 03"); // STATUS_FAILED
    t.exchange(
        "21 01 0C 00 02 00 03 00 01 00 00 03 00 01 01", // technology entries only
        "41 01 01 0A",
    );
    t.expect_event(Ev::Error(ControllerError::RoutingRefused(
        libnci::wire::Status::MessageSizeExceeded,
    )));
    // Discovery still starts.
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event(Ev::Ready);
    assert!(t.ctl.routing().is_none());
}

#[test]
fn routing_table_over_one_command_uses_the_more_flag() {
    // 21 AID entries of 12 octets: 252 + 15 octets of protocol and technology entries fit the
    // 720-octet table but not one 255-octet command.
    let config = Config {
        routes: off_host_aid_routes(21),
        ..Config::default()
    };
    let mut t = pn7150_until_routing(config);
    let first = t.ctl.poll_transmit().expect("first routing command");
    assert_eq!(&first[..2], &[0x21, 0x01]);
    assert_eq!(first[3], 0x01, "More = 1 on the first command");
    t.expect_no_transmit();
    t.queue_rsp(pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP);
    let second = t.ctl.poll_transmit().expect("second routing command");
    assert_eq!(second[3], 0x00, "More = 0 on the last command");
    let entries = usize::from(first[4]) + usize::from(second[4]);
    assert_eq!(entries, 24);
    t.queue_rsp(pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP);
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event(Ev::RoutingProgrammed {
        mode: RoutingMode::Mixed,
        used: 21 * 12 + 15,
        capacity: 720,
    });
    t.expect_event(Ev::Ready);
}

#[test]
fn listen_technologies_and_disabled_discovery() {
    let config = Config {
        enabled: false,
        ..Config::default()
    };
    let mut t = Transcript::new(config);
    for step in &transcript::PN7150_STEPS[..8] {
        t.exchange(step.cmd, step.rsp);
    }
    // Discovery off: initialised and routed, but no RF_DISCOVER_CMD.
    t.expect_no_transmit();
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { .. })
    });
    t.expect_event(Ev::Ready);
    t.expect_state(State::Idle);

    t.set_listen(libnci::controller::ListenTechs {
        a: true,
        b: false,
        f: true,
    });
    t.expect_no_transmit();
    t.set_enabled(true);
    t.exchange("21 03 05 02 80 01 82 01", pn7150::RF_DISCOVER_RSP);
    t.expect_state(State::Discovery);
    assert_eq!(
        t.ctl.config().routes.first(),
        Some(&RoutingRule::Protocol {
            route: 0x00,
            power_state: PowerState::SWITCHED_ON,
            protocol: RfProtocol::IsoDep,
        })
    );
}
