//! The listen-mode routing table builder against PN7150 (NCI 1.0) and NCI 2.0 limits, as the
//! RF_SET_LISTEN_MODE_ROUTING_CMD bytes it produces.

use libnci::routing::{
    Aid, AidMatch, RoutingError, RoutingLimits, RoutingMode, RoutingRule, RoutingTableBuilder,
    MAX_RULES,
};
use libnci::wire::routing::{
    PowerState, Qualifiers, RoutingEntryRepr, RoutingEntryType, RoutingMessage, ROUTE_DH,
};
use libnci::wire::segment::Segmenter;
use libnci::wire::{Gid, MessageType, NciVersion, RfProtocol, Status};

/// An off-host NFCEE (e.g. an embedded secure element).
const ESE: u8 = 0xC0;

const NCI2: RoutingLimits = RoutingLimits {
    version: NciVersion::V2_0,
    max_table_size: 2048,
    max_control_payload: 255,
};

/// Entry: protocol ISO-DEP → DH, switched on.
const ISO_DEP_DH: [u8; 5] = [0x01, 0x03, 0x00, 0x01, 0x04];
/// Entry: technology NFC-A → DH, switched on.
const TECH_A_DH: [u8; 5] = [0x00, 0x03, 0x00, 0x01, 0x00];
/// Entry: technology NFC-B → DH, switched on.
const TECH_B_DH: [u8; 5] = [0x00, 0x03, 0x00, 0x01, 0x01];

/// A 16-octet AID whose last octet is `n`.
fn aid16(n: u8) -> Aid {
    Aid::new(&[
        0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, n,
    ])
    .unwrap()
}

fn off_host_aid(n: u8) -> RoutingRule {
    RoutingRule::Aid {
        route: ESE,
        power_state: PowerState::SWITCHED_ON,
        aid: aid16(n),
        matching: AidMatch::Exact,
    }
}

/// The AID entry `off_host_aid(n)` becomes.
fn off_host_aid_entry(n: u8) -> Vec<u8> {
    let mut entry = vec![0x02, 0x12, ESE, 0x01];
    entry.extend_from_slice(aid16(n).as_bytes());
    entry
}

fn hce_builder(limits: RoutingLimits) -> RoutingTableBuilder {
    let mut builder = RoutingTableBuilder::new(limits);
    builder.add_host_iso_dep(PowerState::SWITCHED_ON).unwrap();
    builder
}

#[test]
fn host_only_hce_table_on_the_pn7150() {
    let mut builder = hce_builder(RoutingLimits::PN7150);
    // Host AIDs are resolved by the daemon and cost no table space.
    builder
        .add(RoutingRule::Aid {
            route: ROUTE_DH,
            power_state: PowerState::SWITCHED_ON,
            aid: Aid::new(&[0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53]).unwrap(),
            matching: AidMatch::Exact,
        })
        .unwrap();
    let table = builder.build().unwrap();
    assert_eq!(table.mode(), RoutingMode::Mixed);
    assert_eq!(table.encoded_len(), 15);
    assert_eq!(table.command_count(), 1);
    // RF_SET_LISTEN_MODE_ROUTING_CMD: last message, 3 entries.
    let mut expected = vec![0x00, 0x03];
    expected.extend_from_slice(&ISO_DEP_DH);
    expected.extend_from_slice(&TECH_A_DH);
    expected.extend_from_slice(&TECH_B_DH);
    assert_eq!(table.command(0), Some(&expected[..]));

    // On the wire: one control packet, 21 01 11 followed by the payload.
    let payload = table.command(0).unwrap();
    let packets: Vec<_> = Segmenter::control(MessageType::Command, Gid::Rf, 0x01, payload, 255)
        .unwrap()
        .collect();
    assert_eq!(packets.len(), 1);
    assert_eq!(
        &packets[0][..],
        &[
            0x21, 0x01, 0x11, 0x00, 0x03, 0x01, 0x03, 0x00, 0x01, 0x04, 0x00, 0x03, 0x00, 0x01,
            0x00, 0x00, 0x03, 0x00, 0x01, 0x01
        ]
    );
}

#[test]
fn off_host_aids_past_720_octets_fall_back_to_protocol_mode() {
    let mut builder = hce_builder(RoutingLimits::PN7150);
    // 36 AID entries of 20 octets = 720, plus 15 for ISO-DEP/A/B = 735 > 720.
    for n in 0..36 {
        builder.add(off_host_aid(n)).unwrap();
    }
    assert_eq!(builder.encoded_len(RoutingMode::Mixed), 735);
    let table = builder.build().unwrap();
    assert_eq!(table.mode(), RoutingMode::Protocol);
    assert_eq!(builder.mode(), RoutingMode::Protocol);
    let mut expected = vec![0x00, 0x03];
    expected.extend_from_slice(&ISO_DEP_DH);
    expected.extend_from_slice(&TECH_A_DH);
    expected.extend_from_slice(&TECH_B_DH);
    assert_eq!(table.commands().collect::<Vec<_>>(), [&expected[..]]);
}

#[test]
fn capacity_exactly_at_the_limit_fits() {
    let mut rules = hce_builder(RoutingLimits::PN7150);
    for n in 0..36 {
        rules.add(off_host_aid(n)).unwrap();
    }
    let at_limit = RoutingLimits {
        max_table_size: 735,
        ..RoutingLimits::PN7150
    };
    let mut builder = RoutingTableBuilder::new(at_limit);
    for rule in rules.rules() {
        builder.add(rule.clone()).unwrap();
    }
    let table = builder.build().unwrap();
    assert_eq!(table.mode(), RoutingMode::Mixed);
    assert_eq!(table.encoded_len(), 735);
    assert_eq!(table.capacity(), 735);
    // 36 AIDs and 3 host entries packed greedily at 255 octets per command: 12 AIDs
    // (2 + 240), 12 AIDs, 12 AIDs with ISO-DEP and NFC-A (2 + 240 + 10 = 252), then NFC-B.
    let counts: Vec<_> = table.commands().map(|c| (c[0], c[1], c.len())).collect();
    assert_eq!(
        counts,
        [(1, 12, 242), (1, 12, 242), (1, 14, 252), (0, 1, 7)]
    );

    let one_short = RoutingLimits {
        max_table_size: 734,
        ..RoutingLimits::PN7150
    };
    let mut builder = RoutingTableBuilder::new(one_short);
    for rule in rules.rules() {
        builder.add(rule.clone()).unwrap();
    }
    assert_eq!(builder.build().unwrap().mode(), RoutingMode::Protocol);
}

#[test]
fn a_table_over_one_packet_goes_out_in_several_commands() {
    let mut builder = RoutingTableBuilder::new(NCI2);
    for n in 0..20 {
        builder.add(off_host_aid(n)).unwrap();
    }
    builder.add_host_iso_dep(PowerState::SWITCHED_ON).unwrap();
    let table = builder.build().unwrap();
    assert_eq!(table.mode(), RoutingMode::Mixed);
    assert_eq!(table.command_count(), 2);

    // First command: More = 1, 12 AID entries (2 + 12 × 20 = 242 octets; a 13th would make 262).
    let first = table.command(0).unwrap();
    assert_eq!(&first[..2], &[0x01, 0x0C]);
    let first_entries: Vec<u8> = (0..12).flat_map(off_host_aid_entry).collect();
    assert_eq!(&first[2..], &first_entries[..]);

    // Last command: More = 0, 8 AIDs then ISO-DEP, NFC-A, NFC-B → DH.
    let last = table.command(1).unwrap();
    assert_eq!(&last[..2], &[0x00, 0x0B]);
    let mut last_entries: Vec<u8> = (12..20).flat_map(off_host_aid_entry).collect();
    last_entries.extend_from_slice(&ISO_DEP_DH);
    last_entries.extend_from_slice(&TECH_A_DH);
    last_entries.extend_from_slice(&TECH_B_DH);
    assert_eq!(&last[2..], &last_entries[..]);

    // Each command parses on its own and fits one control packet.
    for command in table.commands() {
        assert!(command.len() <= 255);
        RoutingMessage::parse(command).unwrap();
        assert_eq!(
            Segmenter::control(MessageType::Command, Gid::Rf, 0x01, command, 255)
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn small_control_packets_carry_one_aid_entry_each() {
    let limits = RoutingLimits {
        max_control_payload: 32,
        ..NCI2
    };
    let mut builder = RoutingTableBuilder::new(limits);
    for n in 0..3 {
        builder.add(off_host_aid(n)).unwrap();
    }
    builder.add_host_iso_dep(PowerState::SWITCHED_ON).unwrap();
    let table = builder.build().unwrap();
    let shape: Vec<_> = table.commands().map(|c| (c[0], c[1], c.len())).collect();
    // One AID entry per command (2 + 20 + 20 > 32); the third shares its command with ISO-DEP
    // and NFC-A (2 + 20 + 5 + 5 = 32, exactly the limit); NFC-B goes last.
    assert_eq!(shape, [(1, 1, 22), (1, 1, 22), (1, 3, 32), (0, 1, 7)]);
    assert!(table.commands().all(|c| c.len() <= 32));

    let too_small = RoutingLimits {
        max_control_payload: 21,
        ..NCI2
    };
    let mut builder = RoutingTableBuilder::new(too_small);
    builder.add(off_host_aid(0)).unwrap();
    assert_eq!(builder.build(), Err(RoutingError::ControlPayloadTooSmall));
}

fn transit_rules(builder: &mut RoutingTableBuilder) {
    // Express transit on the secure element: works with the screen off and locked.
    let express = PowerState::SWITCHED_ON | PowerState::SWITCHED_ON_SUB_STATE_3;
    builder
        .add(RoutingRule::Aid {
            route: 0x10,
            power_state: express,
            aid: Aid::new(&[0xA0, 0x00, 0x00, 0x00, 0x04]).unwrap(),
            matching: AidMatch::Prefix,
        })
        .unwrap();
    builder
        .add(RoutingRule::Aid {
            route: 0x10,
            power_state: PowerState::SWITCHED_ON,
            aid: Aid::new(&[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0xAB]).unwrap(),
            matching: AidMatch::Subset,
        })
        .unwrap();
    // The same octets as the prefix rule, exact, to another NFCEE.
    builder
        .add(RoutingRule::Aid {
            route: 0x11,
            power_state: PowerState::SWITCHED_ON,
            aid: Aid::new(&[0xA0, 0x00, 0x00, 0x00, 0x04]).unwrap(),
            matching: AidMatch::Exact,
        })
        .unwrap();
}

#[test]
fn nci2_keeps_prefix_and_subset_qualifiers_and_power_sub_states() {
    let mut builder = RoutingTableBuilder::new(NCI2);
    transit_rules(&mut builder);
    let table = builder.build().unwrap();
    assert_eq!(table.aids_narrowed(), 0);
    assert_eq!(
        table.command(0).unwrap(),
        &[
            0x00, 0x03, //
            // AID, prefix match (0x10 | 0x02) → NFCEE 0x10, switched on + sub-state 3.
            0x12, 0x07, 0x10, 0x21, 0xA0, 0x00, 0x00, 0x00, 0x04, //
            // AID, subset match (0x20 | 0x02) → NFCEE 0x10, switched on.
            0x22, 0x0A, 0x10, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0xAB, //
            // AID, exact → NFCEE 0x11.
            0x02, 0x07, 0x11, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04,
        ][..]
    );
}

#[test]
fn nci1_narrows_prefix_and_subset_to_plain_aid_entries() {
    let mut builder = RoutingTableBuilder::new(RoutingLimits::PN7150);
    transit_rules(&mut builder);
    let table = builder.build().unwrap();
    // Both qualified rules become exact entries; the exact rule for the same octets is a
    // duplicate after narrowing and the first rule added wins.
    assert_eq!(table.aids_narrowed(), 2);
    assert_eq!(
        table.command(0).unwrap(),
        &[
            0x00, 0x02, //
            // AID → NFCEE 0x10; sub-state 3 folded into switched on.
            0x02, 0x07, 0x10, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, //
            0x02, 0x0A, 0x10, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0xAB,
        ][..]
    );
}

#[test]
fn every_fallback_step_on_controller_refusal() {
    let mut builder = hce_builder(NCI2);
    builder.add(off_host_aid(1)).unwrap();
    let mixed = builder.build().unwrap();
    assert_eq!(mixed.mode(), RoutingMode::Mixed);
    assert_eq!(mixed.entries().count(), 4);

    // STATUS_REJECTED is about state, not size: no fallback.
    assert_eq!(builder.handle_refusal(Status::Rejected), None);
    assert_eq!(builder.mode(), RoutingMode::Mixed);

    // RF_SET_LISTEN_MODE_ROUTING_RSP(STATUS_MESSAGE_SIZE_EXCEEDED): protocol mode.
    assert_eq!(
        builder.handle_refusal(Status::MessageSizeExceeded),
        Some(RoutingMode::Protocol)
    );
    let protocol = builder.build().unwrap();
    assert_eq!(protocol.mode(), RoutingMode::Protocol);
    let mut expected = vec![0x00, 0x03];
    expected.extend_from_slice(&ISO_DEP_DH);
    expected.extend_from_slice(&TECH_A_DH);
    expected.extend_from_slice(&TECH_B_DH);
    assert_eq!(protocol.command(0), Some(&expected[..]));

    // RF_SET_LISTEN_MODE_ROUTING_RSP(STATUS_FAILED): technology mode.
    assert_eq!(
        builder.handle_refusal(Status::Failed),
        Some(RoutingMode::Technology)
    );
    let technology = builder.build().unwrap();
    let mut expected = vec![0x00, 0x02];
    expected.extend_from_slice(&TECH_A_DH);
    expected.extend_from_slice(&TECH_B_DH);
    assert_eq!(technology.command(0), Some(&expected[..]));

    // Nothing below technology.
    assert_eq!(builder.handle_refusal(Status::Failed), None);
    assert_eq!(builder.next_fallback(), None);
    assert_eq!(builder.mode(), RoutingMode::Technology);

    // Raised again by hand, e.g. after the off-host rules went away.
    builder.set_mode(RoutingMode::Mixed);
    assert_eq!(builder.next_fallback(), Some(RoutingMode::Protocol));
}

#[test]
fn a_table_that_fits_in_no_mode_is_an_error() {
    let tiny = RoutingLimits {
        max_table_size: 9,
        ..RoutingLimits::PN7150
    };
    let mut builder = hce_builder(tiny);
    assert_eq!(
        builder.build(),
        Err(RoutingError::TableTooLarge {
            needed: 10,
            capacity: 9
        })
    );
    // The mode is left where it was.
    assert_eq!(builder.mode(), RoutingMode::Mixed);
}

#[test]
fn an_empty_table_is_one_command_without_entries() {
    let mut builder = RoutingTableBuilder::new(RoutingLimits {
        max_table_size: 0,
        ..RoutingLimits::PN7150
    });
    let table = builder.build().unwrap();
    assert_eq!(table.commands().collect::<Vec<_>>(), [&[0x00, 0x00][..]]);
    assert_eq!(table.entries().count(), 0);
}

#[test]
fn decoded_view_for_the_routing_table_property() {
    let mut builder = hce_builder(NCI2);
    builder.add(off_host_aid(7)).unwrap();
    let table = builder.build().unwrap();
    let view: Vec<_> = table
        .entries()
        .map(|e| (e.entry_type(), e.route(), e.power_state()))
        .collect();
    assert_eq!(
        view,
        [
            (
                RoutingEntryType::Aid,
                Some(ESE),
                Some(PowerState::SWITCHED_ON)
            ),
            (
                RoutingEntryType::Protocol,
                Some(ROUTE_DH),
                Some(PowerState::SWITCHED_ON)
            ),
            (
                RoutingEntryType::Technology,
                Some(ROUTE_DH),
                Some(PowerState::SWITCHED_ON)
            ),
            (
                RoutingEntryType::Technology,
                Some(ROUTE_DH),
                Some(PowerState::SWITCHED_ON)
            ),
        ]
    );
    let first = table.entries().next().unwrap();
    assert_eq!(
        first,
        RoutingEntryRepr::Aid {
            qualifiers: Qualifiers::NONE,
            route: ESE,
            power_state: PowerState::SWITCHED_ON,
            aid: aid16(7).as_bytes(),
        }
    );
}

#[test]
fn rules_for_the_same_thing_replace_each_other() {
    let mut builder = RoutingTableBuilder::new(RoutingLimits::PN7150);
    builder.add_host_iso_dep(PowerState::SWITCHED_ON).unwrap();
    // ISO-DEP moves to the secure element, in every NCI 1.0 power state.
    builder
        .add(RoutingRule::Protocol {
            route: ESE,
            power_state: PowerState::ALL_NCI1,
            protocol: RfProtocol::IsoDep,
        })
        .unwrap();
    assert_eq!(builder.rules().len(), 3);
    let table = builder.build().unwrap();
    assert_eq!(
        table.command(0).unwrap(),
        &[
            0x00, 0x03, 0x01, 0x03, 0xC0, 0x07, 0x04, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03,
            0x00, 0x01, 0x01
        ][..]
    );
    builder.clear();
    assert!(builder.rules().is_empty());
}

#[test]
fn limits_on_rules_and_aids() {
    assert_eq!(
        Aid::new(&[0xA0, 0x00, 0x00, 0x00]),
        Err(RoutingError::AidLength)
    );
    assert_eq!(Aid::new(&[0xA0; 17]), Err(RoutingError::AidLength));
    assert!(Aid::new(&[0xA0; 16]).is_ok());

    let mut builder = RoutingTableBuilder::new(NCI2);
    for n in 0..MAX_RULES {
        builder.add(off_host_aid(n as u8)).unwrap();
    }
    assert_eq!(
        builder.add(off_host_aid(200)),
        Err(RoutingError::TooManyRules)
    );
    // Replacing an existing rule still works when full.
    assert_eq!(builder.add(off_host_aid(0)), Ok(()));
    // The largest table: 64 AID entries of 20 octets, 12 per command.
    let table = builder.build().unwrap();
    assert_eq!(table.encoded_len(), 64 * 20);
    assert_eq!(table.command_count(), 6);
    assert_eq!(table.entries().count(), 64);
}
