//! Properties of routing entries and of the routing table builder (NCI 1.0 / 2.0 §6.3.2).

use libnci::routing::{
    Aid, AidMatch, RoutingError, RoutingLimits, RoutingMode, RoutingRule, RoutingTableBuilder,
};
use libnci::wire::routing::{PowerState, RoutingEntryRepr, RoutingMessage};
use libnci::wire::{NciVersion, RfProtocol, RfTechnology};
use proptest::prelude::*;

fn rule() -> impl Strategy<Value = RoutingRule> {
    let route = prop_oneof![Just(0x00u8), Just(0x10), Just(0xC0)];
    let power = any::<u8>().prop_map(PowerState::from_bits_retain);
    prop_oneof![
        (route.clone(), power.clone(), 0u8..4).prop_map(|(route, power_state, t)| {
            RoutingRule::Technology {
                route,
                power_state,
                technology: RfTechnology::from(t),
            }
        }),
        (route.clone(), power.clone(), 0u8..8).prop_map(|(route, power_state, p)| {
            RoutingRule::Protocol {
                route,
                power_state,
                protocol: RfProtocol::from(p),
            }
        }),
        (
            route,
            power,
            proptest::collection::vec(any::<u8>(), 5..=16),
            0u8..3
        )
            .prop_map(|(route, power_state, aid, m)| RoutingRule::Aid {
                route,
                power_state,
                aid: Aid::new(&aid).unwrap(),
                matching: [AidMatch::Exact, AidMatch::Prefix, AidMatch::Subset][usize::from(m)],
            }),
    ]
}

proptest! {
    /// Whatever the rules and limits, a built table fits the controller and every command
    /// parses on its own with the right More flag.
    #[test]
    fn built_tables_respect_the_limits(
        rules in proptest::collection::vec(rule(), 0..80),
        v2 in any::<bool>(),
        max_table_size in 0u16..1600,
        max_control_payload in 22u8..=255,
    ) {
        let limits = RoutingLimits {
            version: if v2 { NciVersion::V2_0 } else { NciVersion::V1_0 },
            max_table_size,
            max_control_payload,
        };
        let mut builder = RoutingTableBuilder::new(limits);
        for rule in rules {
            match builder.add(rule) {
                Ok(()) | Err(RoutingError::TooManyRules) => {}
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let table = match builder.build() {
            Ok(table) => table,
            Err(RoutingError::TableTooLarge { needed, capacity }) => {
                prop_assert_eq!(builder.encoded_len(RoutingMode::Technology), needed);
                prop_assert!(needed > capacity);
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert!(table.encoded_len() <= usize::from(max_table_size));
        prop_assert_eq!(table.encoded_len(), builder.encoded_len(table.mode()));
        let n = table.command_count();
        let mut entries = 0;
        let mut tlv_octets = 0;
        for (i, command) in table.commands().enumerate() {
            prop_assert!(command.len() <= usize::from(max_control_payload));
            let message = RoutingMessage::parse(command).unwrap();
            prop_assert_eq!(message.more, i + 1 < n);
            for entry in message.iter() {
                let entry = entry.unwrap();
                if !v2 {
                    prop_assert!(entry.qualifiers().unwrap().is_empty());
                    prop_assert_eq!(entry.power_state().unwrap().bits() & !0x07, 0);
                }
                if let RoutingEntryRepr::Aid { route, .. } = entry {
                    prop_assert_ne!(route, 0x00);
                    prop_assert_eq!(table.mode(), RoutingMode::Mixed);
                }
                entries += 1;
                tlv_octets += entry.buffer_len();
            }
        }
        prop_assert_eq!(table.entries().count(), entries);
        prop_assert_eq!(tlv_octets, table.encoded_len());
    }

    /// Any bytes: parsing never panics, and what parses emits back unchanged.
    #[test]
    fn entries_parse_without_panic_and_round_trip(
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        if let Ok((entry, rest)) = RoutingEntryRepr::parse_first(&bytes) {
            let len = entry.buffer_len();
            prop_assert_eq!(len + rest.len(), bytes.len());
            let mut out = vec![0u8; len];
            entry.emit(&mut out).unwrap();
            prop_assert_eq!(&out[..], &bytes[..len]);
        }
        let _ = RoutingMessage::parse(&bytes);
    }
}
