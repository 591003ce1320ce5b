//! A whole PN7150 card-emulation session, written and read through the public wire API only:
//! every host command is built from typed values and must emit the bytes a real host sends;
//! every controller message is parsed and its fields checked.

use libnci::wire::core::{
    CoreInitCmd, CoreInitRspLayout, CoreResetCmd, CoreResetRsp, CoreSetConfigCmd, ManufacturerId,
};
use libnci::wire::nxp::NxpVersionInfo;
use libnci::wire::rf::{
    ActivationParams, DiscoverConfig, DiscoverMapping, ListenModeRouting, MappingMode,
    RfDiscoverCmd, RfDiscoverMapCmd, RfTechParams,
};
use libnci::wire::{
    config, ConfigParam, DeactivationReason, DeactivationType, List, Message, NciVersion,
    ResetType, RfInterface, RfProtocol, RfTechMode, Status,
};

/// `>` host to controller: the typed message must emit exactly `expected`.
fn send(msg: Message<'_>, expected: &[u8]) {
    let mut out = [0u8; 258];
    let n = msg.emit_packet(&mut out).expect("emit");
    assert_eq!(&out[..n], expected, "{msg}");
    // And the controller side would read it back as the same message.
    assert_eq!(Message::parse_packet(expected, NciVersion::V1_0), Ok(msg));
}

/// `<` controller to host.
fn receive(bytes: &[u8]) -> Message<'_> {
    Message::parse_packet(bytes, NciVersion::V1_0).expect("parse")
}

#[test]
fn pn7150_card_emulation_session() {
    // > CORE_RESET_CMD (reset configuration)
    send(
        Message::CoreResetCmd(CoreResetCmd {
            reset_type: ResetType::ResetConfig,
        }),
        &[0x20, 0x00, 0x01, 0x01],
    );
    // < CORE_RESET_RSP: NCI 1.0
    let Message::CoreResetRsp(rsp) = receive(&[0x40, 0x00, 0x03, 0x00, 0x10, 0x01]) else {
        panic!()
    };
    assert_eq!(rsp.status(), Status::Ok);
    let version = rsp.nci_version().expect("NCI 1.0 layout");
    assert!(!version.is_v2());
    assert!(matches!(rsp, CoreResetRsp::Nci1 { .. }));

    // > CORE_INIT_CMD
    send(Message::CoreInitCmd(CoreInitCmd::Nci1), &[0x20, 0x01, 0x00]);
    // < CORE_INIT_RSP
    let init = [
        0x40, 0x01, 0x19, 0x00, 0x03, 0x1E, 0x03, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x80, 0x81,
        0x82, 0x83, 0x02, 0xD0, 0x02, 0xFF, 0x02, 0x00, 0x04, 0x88, 0x10, 0x01, 0xA0,
    ];
    let Message::CoreInitRsp(init) = receive(&init) else {
        panic!()
    };
    assert_eq!(init.max_routing_table_size, 720);
    assert_eq!(init.max_control_packet_payload, 255);
    assert!(init.features.aid_routing() && init.features.protocol_routing());
    assert!(init.interfaces().any(|i| i == RfInterface::IsoDep));
    let CoreInitRspLayout::Nci1 {
        manufacturer_id,
        manufacturer_info,
        ..
    } = init.layout
    else {
        panic!()
    };
    assert_eq!(manufacturer_id, ManufacturerId::NXP);
    let nxp = NxpVersionInfo::from_manufacturer_info(&manufacturer_info).expect("4 octets");
    assert_eq!(nxp.chip(), Some("PN7150"));

    // > NCI_PROPRIETARY_ACT_CMD / < RSP
    send(Message::NciProprietaryActCmd, &[0x2F, 0x02, 0x00]);
    let Message::NciProprietaryActRsp(act) =
        receive(&[0x4F, 0x02, 0x05, 0x00, 0x00, 0x10, 0x01, 0xA0])
    else {
        panic!()
    };
    assert_eq!(act.status, Status::Ok);

    // > CORE_SET_CONFIG_CMD: listen A as ISO-DEP, NXP clock source, field notifications
    let params = [
        ConfigParam::la_sel_info(config::LA_SEL_INFO_ISO_DEP),
        ConfigParam::lb_sensb_info(config::LB_SENSB_INFO_ISO_DEP),
        ConfigParam::rf_field_info(true),
        ConfigParam::nxp(0xA003, &[0x08]).expect("NXP tag"),
    ];
    send(
        Message::CoreSetConfigCmd(CoreSetConfigCmd {
            params: List::from_items(&params),
        }),
        &[
            0x20, 0x02, 0x0E, 0x04, 0x32, 0x01, 0x20, 0x38, 0x01, 0x01, 0x80, 0x01, 0x01, 0xA0,
            0x03, 0x01, 0x08,
        ],
    );
    let Message::CoreSetConfigRsp(rsp) = receive(&[0x40, 0x02, 0x02, 0x00, 0x00]) else {
        panic!()
    };
    assert!(rsp.status.is_ok() && rsp.invalid_params.is_empty());

    // > RF_DISCOVER_MAP_CMD: ISO-DEP listen on the ISO-DEP interface
    let mappings = [DiscoverMapping {
        protocol: RfProtocol::IsoDep,
        mode: MappingMode::LISTEN,
        interface: RfInterface::IsoDep,
    }];
    send(
        Message::RfDiscoverMapCmd(RfDiscoverMapCmd {
            mappings: List::from_items(&mappings),
        }),
        &[0x21, 0x00, 0x04, 0x01, 0x04, 0x02, 0x02],
    );
    receive(&[0x41, 0x00, 0x01, 0x00]);

    // > RF_SET_LISTEN_MODE_ROUTING_CMD: entries encoded by the routing table code
    let entries = [
        0x01, 0x03, 0x00, 0x01, 0x04, // protocol ISO-DEP → DH, switched on
        0x00, 0x03, 0x00, 0x01, 0x00, // technology NFC-A → DH
    ];
    send(
        Message::RfSetListenModeRoutingCmd(
            ListenModeRouting::from_encoded(false, 2, &entries).expect("valid entries"),
        ),
        &[
            0x21, 0x01, 0x0C, 0x00, 0x02, 0x01, 0x03, 0x00, 0x01, 0x04, 0x00, 0x03, 0x00, 0x01,
            0x00,
        ],
    );
    receive(&[0x41, 0x01, 0x01, 0x00]);

    // > RF_DISCOVER_CMD: listen A and B
    let configs =
        [RfTechMode::NfcAPassiveListen, RfTechMode::NfcBPassiveListen].map(|m| DiscoverConfig {
            tech_mode: m,
            frequency: 1,
        });
    send(
        Message::RfDiscoverCmd(RfDiscoverCmd {
            configs: List::from_items(&configs),
        }),
        &[0x21, 0x03, 0x05, 0x02, 0x80, 0x01, 0x81, 0x01],
    );
    receive(&[0x41, 0x03, 0x01, 0x00]);

    // < RF_FIELD_INFO_NTF: a reader comes close
    let Message::RfFieldInfoNtf(field) = receive(&[0x61, 0x07, 0x01, 0x01]) else {
        panic!()
    };
    assert!(field.field_on());

    // < RF_INTF_ACTIVATED_NTF: listen A, ISO-DEP
    let Message::RfIntfActivatedNtf(activated) = receive(&[
        0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
    ]) else {
        panic!()
    };
    assert_eq!(activated.interface, RfInterface::IsoDep);
    assert_eq!(activated.tech_params, RfTechParams::ListenA);
    assert_eq!(activated.max_data_packet_payload, 255);
    assert_eq!(activated.initial_credits, 1);
    let ActivationParams::IsoDepListenA(rats) = activated.activation_params else {
        panic!()
    };
    assert_eq!(rats.fsd(), Some(256));

    // < DATA: SELECT PPSE
    let select = [
        0x00, 0x00, 0x14, 0x00, 0xA4, 0x04, 0x00, 0x0E, b'2', b'P', b'A', b'Y', b'.', b'S', b'Y',
        b'S', b'.', b'D', b'D', b'F', b'0', b'1', 0x00,
    ];
    let Message::Data {
        conn_id, payload, ..
    } = receive(&select)
    else {
        panic!()
    };
    assert_eq!(conn_id, 0);
    assert_eq!(&payload[..4], &[0x00, 0xA4, 0x04, 0x00]);

    // > DATA: 6A82 (not found), then < CORE_CONN_CREDITS_NTF
    send(
        Message::Data {
            conn_id: 0,
            credits: 0,
            payload: &[0x6A, 0x82],
        },
        &[0x00, 0x00, 0x02, 0x6A, 0x82],
    );
    let Message::CoreConnCreditsNtf(credits) = receive(&[0x60, 0x06, 0x03, 0x01, 0x00, 0x01])
    else {
        panic!()
    };
    let entry = credits.entries.iter().next().expect("one entry");
    assert_eq!((entry.conn_id, entry.credits), (0, 1));

    // < RF_DEACTIVATE_NTF: the reader left
    let Message::RfDeactivateNtf(deactivated) = receive(&[0x61, 0x06, 0x02, 0x03, 0x02]) else {
        panic!()
    };
    assert_eq!(deactivated.deactivation_type, DeactivationType::Discovery);
    assert_eq!(deactivated.reason, DeactivationReason::RfLinkLoss);
}

#[test]
fn a_message_too_long_for_one_packet_is_refused() {
    let apdu = [0u8; 300];
    let msg = Message::Data {
        conn_id: 0,
        credits: 0,
        payload: &apdu,
    };
    let mut out = [0u8; 400];
    assert_eq!(
        msg.emit_packet(&mut out),
        Err(libnci::wire::Error::Capacity)
    );
    // The payload itself still emits (for segmentation).
    assert_eq!(msg.emit(&mut out), Ok(300));
    let mut small = [0u8; 4];
    assert_eq!(
        Message::NciProprietaryActCmd.emit_packet(&mut small[..2]),
        Err(libnci::wire::Error::BufferTooSmall)
    );
}
