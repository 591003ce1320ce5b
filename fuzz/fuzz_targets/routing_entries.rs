//! Listen-mode routing entries (NCI 1.0 §6.3.2 Tables 46–50, NCI 2.0 §6.3.2): the
//! `wire::routing` entry iterator, `RoutingEntryRepr` parse/emit, `RoutingMessage`, and the
//! table builder of `libnci::routing` whose output must parse.
//!
//! Input: a selector byte, then
//! - selector bit 0 clear — bytes as received: every entry the iterator yields emits back to
//!   exactly its own bytes and parses alone to the same value; the iterator stops after its
//!   first error; a payload `RoutingMessage::parse` accepts emits back unchanged and counts
//!   what the iterator yields. Then the same bytes read as entry values to emit: every known
//!   entry that emits parses back to the same value; whatever parses re-emits to the same
//!   bytes (an `Unknown` is written as given, so one carrying a known type octet may not
//!   parse).
//! - selector bit 0 set — a controller's limits and up to 80 rules for `RoutingTableBuilder`:
//!   every table it builds (after any number of refusals) fits the controller — each command
//!   within the control payload, the entries within the table size — with More set on all
//!   but the last command, parses entry by entry, and uses no NCI 2.0 qualifier or power
//!   state bits on an NCI 1.0 controller.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnci::routing::{
    Aid, AidMatch, RoutingError, RoutingLimits, RoutingRule, RoutingTableBuilder,
};
use libnci::wire::routing::{
    PowerState, Qualifiers, RoutingEntries, RoutingEntryRepr, RoutingMessage, MESSAGE_HEADER_LEN,
};
use libnci::wire::{NciVersion, RfProtocol, RfTechnology, Status};
use nfcd_fuzz::Input;

fn emit(entry: &RoutingEntryRepr<'_>) -> Option<Vec<u8>> {
    let mut out = vec![0u8; entry.buffer_len()];
    entry.emit(&mut out).ok().map(|()| out)
}

fn received(bytes: &[u8]) {
    let mut offset = 0;
    let mut entries = RoutingEntries::new(bytes);
    for entry in entries.by_ref() {
        let Ok(entry) = entry else {
            break;
        };
        let own = &bytes[offset..offset + entry.buffer_len()];
        offset += entry.buffer_len();
        assert_eq!(emit(&entry).as_deref(), Some(own), "{entry:?}");
        assert_eq!(RoutingEntryRepr::parse(own), Ok(entry));
        let unknown = matches!(entry, RoutingEntryRepr::Unknown { .. });
        assert_eq!(entry.route().is_none(), unknown);
        assert_eq!(entry.power_state().is_none(), unknown);
        assert_eq!(entry.qualifiers().is_none(), unknown);
    }
    assert!(
        entries.next().is_none(),
        "the iterator is fused after an error"
    );

    if let Ok(message) = RoutingMessage::parse(bytes) {
        let mut out = vec![0u8; message.buffer_len()];
        message
            .emit(&mut out)
            .expect("emit a parsed routing message");
        assert_eq!(out, bytes);
        let entries = message.iter().collect::<Result<Vec<_>, _>>();
        let entries = entries.expect("the entries of a parsed routing message parse");
        assert_eq!(usize::from(message.count), entries.len());
        let len: usize = entries.iter().map(RoutingEntryRepr::buffer_len).sum();
        assert_eq!(len + MESSAGE_HEADER_LEN, bytes.len());
    }
}

fn power_state(input: &mut Input<'_>) -> PowerState {
    PowerState::from_bits_retain(input.u8())
}

/// An entry value built from the input, valid or not.
fn built<'a>(input: &mut Input<'a>) -> RoutingEntryRepr<'a> {
    let kind = input.u8();
    let qualifiers = Qualifiers::from_bits(kind & 0x70).unwrap_or(Qualifiers::NONE);
    let route = input.u8();
    let power_state = power_state(input);
    match kind % 6 {
        0 => RoutingEntryRepr::Technology {
            qualifiers,
            route,
            power_state,
            technology: RfTechnology::from(input.u8()),
        },
        1 => RoutingEntryRepr::Protocol {
            qualifiers,
            route,
            power_state,
            protocol: RfProtocol::from(input.u8()),
        },
        2 => RoutingEntryRepr::Aid {
            qualifiers,
            route,
            power_state,
            aid: input.len_prefixed(),
        },
        3 => RoutingEntryRepr::SystemCode {
            qualifiers,
            route,
            power_state,
            system_codes: input.len_prefixed(),
        },
        4 => RoutingEntryRepr::ApduPattern {
            qualifiers,
            route,
            power_state,
            reference: input.len_prefixed(),
            mask: input.len_prefixed(),
        },
        _ => RoutingEntryRepr::Unknown {
            qualifier_type: route,
            value: input.len_prefixed(),
        },
    }
}

fn emitted(bytes: &[u8]) {
    let mut input = Input::new(bytes);
    while !input.is_empty() {
        let entry = built(&mut input);
        let Some(out) = emit(&entry) else {
            continue;
        };
        let parsed = match RoutingEntryRepr::parse(&out) {
            Ok(parsed) => parsed,
            // `Unknown` is written as given; with the type octet of a known type its value
            // need not fit that type's layout.
            Err(_) if matches!(entry, RoutingEntryRepr::Unknown { .. }) => continue,
            Err(err) => panic!("{entry:?} emitted {out:02X?}, which does not parse: {err}"),
        };
        if !matches!(entry, RoutingEntryRepr::Unknown { .. }) {
            assert_eq!(parsed, entry);
        }
        assert_eq!(emit(&parsed).as_deref(), Some(&out[..]));
    }
}

fn rule(input: &mut Input<'_>) -> Result<RoutingRule, RoutingError> {
    let kind = input.u8();
    // Mostly the host or one NFCEE, so that rules collide and replace each other.
    let route = match input.u8() {
        r @ 0..=0x7F => r & 0x01,
        r => r,
    };
    let power_state = power_state(input);
    Ok(match kind % 3 {
        0 => RoutingRule::Technology {
            route,
            power_state,
            technology: RfTechnology::from(input.u8() & 0x83),
        },
        1 => RoutingRule::Protocol {
            route,
            power_state,
            protocol: RfProtocol::from(input.u8() & 0x87),
        },
        _ => RoutingRule::Aid {
            route,
            power_state,
            aid: Aid::new(input.len_prefixed())?,
            matching: match kind / 3 % 3 {
                0 => AidMatch::Exact,
                1 => AidMatch::Prefix,
                _ => AidMatch::Subset,
            },
        },
    })
}

fn builder(bytes: &[u8]) {
    let mut input = Input::new(bytes);
    let limits = RoutingLimits {
        version: if input.bool() {
            NciVersion::V2_0
        } else {
            NciVersion::V1_0
        },
        max_table_size: input.u16(),
        max_control_payload: input.u8(),
    };
    let refusals = input.u8() % 4;
    let mut builder = RoutingTableBuilder::new(limits);
    for _ in 0..80 {
        if input.is_empty() {
            break;
        }
        if let Ok(rule) = rule(&mut input) {
            let _ = builder.add(rule);
        }
    }
    for _ in 0..=refusals {
        let table = match builder.build() {
            Ok(table) => table,
            Err(RoutingError::Encoding(err)) => panic!("accepted rules failed to encode: {err}"),
            Err(_) => return,
        };
        assert!(table.encoded_len() <= usize::from(limits.max_table_size));
        assert_eq!(table.capacity(), usize::from(limits.max_table_size));
        let count = table.command_count();
        assert!(count >= 1, "an empty table is one command");
        let mut entries_len = 0;
        let mut entries = 0;
        for (i, command) in table.commands().enumerate() {
            assert!(command.len() <= usize::from(limits.max_control_payload));
            let message = RoutingMessage::parse(command).expect("a built command parses");
            assert_eq!(
                message.more,
                i + 1 < count,
                "More on command {i} of {count}"
            );
            for entry in message.iter() {
                let entry = entry.expect("a built entry parses");
                entries_len += entry.buffer_len();
                entries += 1;
                if !limits.version.is_v2() {
                    assert_eq!(entry.qualifiers(), Some(Qualifiers::NONE), "{entry:?}");
                    let power = entry.power_state().expect("a known entry");
                    assert_eq!(power, power.for_nci1(), "{entry:?}");
                }
            }
        }
        assert_eq!(entries_len, table.encoded_len());
        assert_eq!(table.entries().count(), entries);
        if builder
            .handle_refusal(Status::MessageSizeExceeded)
            .is_none()
        {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        received(bytes);
        emitted(bytes);
    } else {
        builder(bytes);
    }
});
