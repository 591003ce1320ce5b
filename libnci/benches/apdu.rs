//! Micro-benchmarks of the APDU helpers (ISO/IEC 7816-4 §5.1 command APDUs, §11.2.2 SELECT):
//! the first thing the daemon does with every command APDU of a tap.
//!
//! What is measured: [`CommandApdu::parse`] and then [`classify_select`] of a SELECT by DF name
//! (the EMV PPSE, `2PAY.SYS.DDF01`) and, for comparison, of a READ RECORD that is no SELECT.
//! What is not: AID resolution (nfcd's `hce` benchmark).
//!
//! Run: `cargo bench -p libnci --bench apdu`.

use divan::black_box;
use libnci::apdu::{classify_select, CommandApdu, Occurrence};

fn main() {
    check_vectors();
    divan::main();
}

/// SELECT by DF name, first occurrence, FCI: the PPSE `2PAY.SYS.DDF01` (EMV Book B §3.3), Le 00.
static SELECT_PPSE: [u8; 20] = [
    0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44, 0x44,
    0x46, 0x30, 0x31, 0x00,
];

/// READ RECORD 1 of SFI 1 (ISO/IEC 7816-4 §11.3.3), Le 00: case 2, not a SELECT.
static READ_RECORD: [u8; 5] = [0x00, 0xB2, 0x01, 0x0C, 0x00];

/// Parse and classify: `Some(name length)` for a SELECT by DF name, `None` otherwise.
fn select_name_len(bytes: &[u8]) -> Option<usize> {
    let command = CommandApdu::parse(bytes).ok()?;
    let select = classify_select(&command)?.ok()?;
    Some(select.name.len())
}

fn check_vectors() {
    let command = CommandApdu::parse(&SELECT_PPSE).expect("SELECT PPSE parses");
    let select = classify_select(&command)
        .and_then(Result::ok)
        .expect("SELECT PPSE is a SELECT by DF name");
    assert_eq!(select.name, b"2PAY.SYS.DDF01");
    assert_eq!(select.occurrence, Occurrence::First);
    assert!(CommandApdu::parse(&READ_RECORD).is_ok());
    assert_eq!(select_name_len(&READ_RECORD), None);
}

#[divan::bench(sample_size = 4096)]
fn parse_classify_select() -> Option<usize> {
    select_name_len(black_box(&SELECT_PPSE))
}

#[divan::bench(sample_size = 4096)]
fn parse_classify_read_record() -> Option<usize> {
    select_name_len(black_box(&READ_RECORD))
}
