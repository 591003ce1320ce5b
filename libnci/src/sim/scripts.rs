//! Reader scripts as data: what a payment terminal or transit gate sends during a tap.
//!
//! A [`Script`] is a list of [`Step`]s: send a C-APDU and check its status word, or decide the
//! next steps from what has been exchanged so far (e.g. one READ RECORD per AFL entry). The
//! [`Reader`](super::reader::Reader) runs them and records everything.
//!
//! Scripts:
//! - [`emv`]: SELECT PPSE → SELECT the AID from the FCI → GET PROCESSING OPTIONS with PDOL data
//!   → READ RECORD per AFL → GENERATE AC; records the application cryptogram (EMV Book 3
//!   §10, EMV Contactless Book B for PPSE).
//! - [`transit`]: SELECT the transit application → READ BALANCE → DEBIT the fare.
//! - [`sweep256`]: SELECT 256 eight-octet AIDs ([`sweep_aid`]) in one activation, each 9000.
//! - [`unknown_aid`]: SELECT [`UNKNOWN_AID`], expects 6A82.
//!
//! # The transit application's commands
//!
//! The transit wallet elsewhere in the project implements exactly these (proprietary class
//! `80`, ISO/IEC 7816-4 §5.4.1):
//!
//! | command | bytes | response |
//! |---|---|---|
//! | SELECT | `00 A4 04 00 08` [`TRANSIT_AID`] `00` | FCI, `9000` |
//! | READ BALANCE | [`TRANSIT_READ_BALANCE`] = `80 5C 00 00 04` | balance (4 octets, big-endian, minor units), `9000` |
//! | DEBIT | `80 54 00 00 04` amount (4 octets, big-endian) `04` ([`transit_debit`]) | new balance (4 octets), `9000`; [`TRANSIT_SW_INSUFFICIENT_FUNDS`] when the balance is short |

use std::collections::BTreeMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use super::reader::ApduRecord;
use super::rng::XorShift64;
use super::tlv;
use crate::apdu::{split_response, StatusWord};

/// Facts a script extracted during a tap (e.g. `"cryptogram"`), by name.
pub type Values = BTreeMap<String, Vec<u8>>;

/// A step that decides what comes next from the exchanges so far. It may record values;
/// returning `Err` ends the tap with [`TapOutcome::ScriptError`](super::reader::TapOutcome).
pub type Decider = Box<dyn FnMut(&[ApduRecord], &mut Values) -> Result<Vec<Step>, String>>;

/// What a step accepts as the status word of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this status word.
    Sw(StatusWord),
    /// Anything, even a response without a status word.
    Any,
}

impl Expect {
    /// `9000`.
    pub const OK: Expect = Expect::Sw(StatusWord::NO_ERROR);

    /// Whether `sw` satisfies this expectation.
    pub fn accepts(&self, sw: Option<StatusWord>) -> bool {
        match self {
            Expect::Sw(want) => sw == Some(*want),
            Expect::Any => true,
        }
    }
}

/// One step of a script.
pub enum Step {
    /// Send a C-APDU and check the status word of its R-APDU.
    Send {
        /// The C-APDU.
        apdu: Vec<u8>,
        /// The status word expected.
        expect: Expect,
    },
    /// Decide the next steps (inserted here) from the exchanges so far.
    Decide(Decider),
}

impl Step {
    /// A [`Step::Send`].
    pub fn send(apdu: impl Into<Vec<u8>>, expect: Expect) -> Step {
        Step::Send {
            apdu: apdu.into(),
            expect,
        }
    }

    /// A [`Step::Decide`].
    pub fn decide(
        f: impl FnMut(&[ApduRecord], &mut Values) -> Result<Vec<Step>, String> + 'static,
    ) -> Step {
        Step::Decide(Box::new(f))
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send { apdu, expect } => f
                .debug_struct("Send")
                .field("apdu", &Hex(apdu))
                .field("expect", expect)
                .finish(),
            Step::Decide(_) => f.write_str("Decide(..)"),
        }
    }
}

/// A named sequence of steps.
#[derive(Debug)]
pub struct Script {
    /// Name, for reports.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Hex formatting of octets for debug output.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// ---- Building blocks ------------------------------------------------------------------------

/// The PPSE name (EMV Contactless Book B §3.3).
pub const PPSE: &[u8; 14] = b"2PAY.SYS.DDF01";

/// SELECT PPSE: `00 A4 04 00 0E "2PAY.SYS.DDF01" 00`.
pub const SELECT_PPSE: [u8; 20] = [
    0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44, 0x44,
    0x46, 0x30, 0x31, 0x00,
];

/// SELECT by DF name, first occurrence, FCI, Le 00 (ISO/IEC 7816-4 §11.2.2). Names over 255
/// octets are cut (a valid AID has at most 16).
pub fn select_aid(aid: &[u8]) -> Vec<u8> {
    let aid = aid.get(..255).unwrap_or(aid);
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    apdu.extend_from_slice(aid);
    apdu.push(0x00);
    apdu
}

/// READ RECORD `record` of short file `sfi` (ISO/IEC 7816-4 §11.3.3; P2 = SFI << 3 | 4).
pub fn read_record(sfi: u8, record: u8) -> [u8; 5] {
    [0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00]
}

/// GET PROCESSING OPTIONS with the PDOL related data in tag 83 (EMV Book 3 §6.5.8).
pub fn get_processing_options(pdol_data: &[u8]) -> Vec<u8> {
    let body = tlv::encode(0x83, pdol_data);
    let mut apdu = vec![0x80, 0xA8, 0x00, 0x00, body.len() as u8];
    apdu.extend_from_slice(&body);
    apdu.push(0x00);
    apdu
}

/// GENERATE AC asking for an ARQC (P1 `80`) with the CDOL1 related data (EMV Book 3 §6.5.5).
pub fn generate_ac(cdol_data: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x80, 0xAE, 0x80, 0x00, cdol_data.len() as u8];
    apdu.extend_from_slice(cdol_data);
    apdu.push(0x00);
    apdu
}

/// Terminal side of an EMV transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmvParams {
    /// Amount authorised, minor units (tag 9F02, n12).
    pub amount: u64,
    /// Transaction currency code, ISO 4217 numeric as BCD (tag 5F2A; `0x0978` = EUR).
    pub currency: u16,
    /// Terminal country code, ISO 3166 numeric as BCD (tag 9F1A; `0x0276` = Germany).
    pub country: u16,
    /// Transaction date YYMMDD, BCD (tag 9A).
    pub date: [u8; 3],
    /// Transaction type (tag 9C; `00` = purchase).
    pub transaction_type: u8,
    /// Seed of the unpredictable number (tag 9F37).
    pub seed: u64,
}

impl Default for EmvParams {
    fn default() -> Self {
        EmvParams {
            amount: 1_250,
            currency: 0x0978,
            country: 0x0276,
            date: [0x26, 0x01, 0x15],
            transaction_type: 0x00,
            seed: 0x5EED,
        }
    }
}

/// `value` as `len` octets of BCD, most significant digit first.
pub fn bcd(value: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut rest = value;
    for octet in out.iter_mut().rev() {
        let low = (rest % 10) as u8;
        rest /= 10;
        let high = (rest % 10) as u8;
        rest /= 10;
        *octet = (high << 4) | low;
    }
    out
}

/// The terminal's value for a DOL entry, fitted to `len` octets (numeric values keep their
/// rightmost octets or are left-padded with zeros; unknown tags are zeros).
fn terminal_value(params: &EmvParams, unpredictable: [u8; 4], tag: u32, len: usize) -> Vec<u8> {
    let natural: Vec<u8> = match tag {
        0x9F02 => bcd(params.amount, 6),
        0x9F03 => vec![0; 6],
        0x9F1A => params.country.to_be_bytes().to_vec(),
        0x5F2A => params.currency.to_be_bytes().to_vec(),
        0x9A => params.date.to_vec(),
        0x9C => vec![params.transaction_type],
        0x9F37 => unpredictable.to_vec(),
        // Terminal transaction qualifiers: contactless EMV mode, online capable.
        0x9F66 => vec![0x36, 0x00, 0x40, 0x00],
        // Terminal type: attended, online with offline capability, merchant.
        0x9F35 => vec![0x22],
        _ => Vec::new(),
    };
    if natural.len() >= len {
        natural[natural.len() - len..].to_vec()
    } else {
        let mut out = vec![0; len - natural.len()];
        out.extend_from_slice(&natural);
        out
    }
}

fn dol_data(params: &EmvParams, unpredictable: [u8; 4], dol: &[u8]) -> Result<Vec<u8>, String> {
    let entries = tlv::parse_dol(dol).ok_or("malformed DOL")?;
    Ok(entries
        .into_iter()
        .flat_map(|(tag, len)| terminal_value(params, unpredictable, tag, len))
        .collect())
}

fn last_response_data(records: &[ApduRecord]) -> Result<&[u8], String> {
    let last = records.last().ok_or("no response yet")?;
    split_response(&last.rsp)
        .map(|(data, _)| data)
        .ok_or_else(|| "response without a status word".to_string())
}

// ---- EMV ----------------------------------------------------------------------------------

/// The EMV contactless purchase flow (EMV Book 3 §10; PPSE per EMV Contactless Book B).
///
/// Values recorded: `aid`, `unpredictable_number`, `aip`, `afl`, `cryptogram` (9F26), `cid`
/// (9F27), `atc` (9F36).
pub fn emv(params: &EmvParams) -> Script {
    let params = params.clone();
    Script {
        name: "emv".to_string(),
        steps: vec![
            Step::send(SELECT_PPSE, Expect::OK),
            Step::decide(move |records, values| {
                let fci = last_response_data(records)?;
                let aid = tlv::find(fci, 0x4F).ok_or("PPSE FCI lists no application (4F)")?;
                values.insert("aid".to_string(), aid.to_vec());
                let params = params.clone();
                Ok(vec![
                    Step::send(select_aid(aid), Expect::OK),
                    Step::decide(move |records, values| emv_gpo(&params, records, values)),
                ])
            }),
        ],
    }
}

fn emv_gpo(
    params: &EmvParams,
    records: &[ApduRecord],
    values: &mut Values,
) -> Result<Vec<Step>, String> {
    let fci = last_response_data(records)?;
    let pdol = tlv::find(fci, 0x9F38).unwrap_or(&[]);
    let unpredictable = XorShift64::new(params.seed).next_u32().to_be_bytes();
    values.insert("unpredictable_number".to_string(), unpredictable.to_vec());
    let data = dol_data(params, unpredictable, pdol)?;
    let params = params.clone();
    Ok(vec![
        Step::send(get_processing_options(&data), Expect::OK),
        Step::decide(move |records, values| emv_read_records(&params, records, values)),
    ])
}

fn emv_read_records(
    params: &EmvParams,
    records: &[ApduRecord],
    values: &mut Values,
) -> Result<Vec<Step>, String> {
    let data = last_response_data(records)?;
    // Format 2 (template 77) or format 1 (template 80: AIP then AFL), EMV Book 3 §6.5.8.4.
    let (aip, afl) = match tlv::iter(data).next() {
        Some(t) if t.tag == 0x77 => (
            tlv::find(t.value, 0x82).ok_or("GPO response without AIP (82)")?,
            tlv::find(t.value, 0x94).ok_or("GPO response without AFL (94)")?,
        ),
        Some(t) if t.tag == 0x80 && t.value.len() >= 2 => t.value.split_at(2),
        _ => return Err("GPO response is neither format 1 nor format 2".to_string()),
    };
    values.insert("aip".to_string(), aip.to_vec());
    values.insert("afl".to_string(), afl.to_vec());
    if afl.is_empty() || afl.len() % 4 != 0 {
        return Err("AFL length is not a multiple of 4".to_string());
    }
    let mut steps = Vec::new();
    for entry in afl.chunks_exact(4) {
        let (sfi, first, last) = (entry[0] >> 3, entry[1], entry[2]);
        if sfi == 0 || first == 0 || last < first {
            return Err(format!("malformed AFL entry {}", Hex(entry)));
        }
        for record in first..=last {
            steps.push(Step::send(read_record(sfi, record), Expect::OK));
        }
    }
    let params = params.clone();
    steps.push(Step::decide(move |records, values| {
        emv_generate_ac(&params, records, values)
    }));
    Ok(steps)
}

fn emv_generate_ac(
    params: &EmvParams,
    records: &[ApduRecord],
    values: &mut Values,
) -> Result<Vec<Step>, String> {
    let cdol1 = records
        .iter()
        .filter(|r| r.cmd.get(1) == Some(&0xB2))
        .find_map(|r| split_response(&r.rsp).and_then(|(data, _)| tlv::find(data, 0x8C)))
        .ok_or("no record holds CDOL1 (8C)")?;
    let unpredictable: [u8; 4] = values
        .get("unpredictable_number")
        .and_then(|v| v.as_slice().try_into().ok())
        .ok_or("unpredictable number missing")?;
    let data = dol_data(params, unpredictable, cdol1)?;
    Ok(vec![
        Step::send(generate_ac(&data), Expect::OK),
        Step::decide(|records, values| {
            let data = last_response_data(records)?;
            match tlv::iter(data).next() {
                Some(t) if t.tag == 0x77 => {
                    for (tag, name) in [(0x9F26, "cryptogram"), (0x9F27, "cid"), (0x9F36, "atc")] {
                        let value = tlv::find(t.value, tag)
                            .ok_or_else(|| format!("GENERATE AC response without {tag:X}"))?;
                        values.insert(name.to_string(), value.to_vec());
                    }
                }
                // Format 1: CID (1), ATC (2), cryptogram (8), issuer application data.
                Some(t) if t.tag == 0x80 && t.value.len() >= 11 => {
                    values.insert("cid".to_string(), t.value[..1].to_vec());
                    values.insert("atc".to_string(), t.value[1..3].to_vec());
                    values.insert("cryptogram".to_string(), t.value[3..11].to_vec());
                }
                _ => return Err("GENERATE AC response is neither format 1 nor 2".to_string()),
            }
            Ok(Vec::new())
        }),
    ])
}

// ---- Transit ------------------------------------------------------------------------------

/// AID of the demo transit application: proprietary category `F` (ISO/IEC 7816-5), then
/// "NFCDTR1".
pub const TRANSIT_AID: [u8; 8] = [0xF0, 0x4E, 0x46, 0x43, 0x44, 0x54, 0x52, 0x31];
/// Class byte of the transit commands (proprietary).
pub const TRANSIT_CLA: u8 = 0x80;
/// INS of READ BALANCE.
pub const TRANSIT_INS_READ_BALANCE: u8 = 0x5C;
/// INS of DEBIT.
pub const TRANSIT_INS_DEBIT: u8 = 0x54;
/// READ BALANCE: case 2, Le 4.
pub const TRANSIT_READ_BALANCE: [u8; 5] = [TRANSIT_CLA, TRANSIT_INS_READ_BALANCE, 0x00, 0x00, 0x04];
/// The fare the gate debits, minor units.
pub const TRANSIT_FARE: u32 = 250;
/// Status word of a DEBIT larger than the balance: conditions of use not satisfied.
pub const TRANSIT_SW_INSUFFICIENT_FUNDS: StatusWord = StatusWord::CONDITIONS_NOT_SATISFIED;

/// DEBIT `amount`: case 4, Lc 4, Le 4.
pub fn transit_debit(amount: u32) -> [u8; 10] {
    let a = amount.to_be_bytes();
    [
        TRANSIT_CLA,
        TRANSIT_INS_DEBIT,
        0x00,
        0x00,
        0x04,
        a[0],
        a[1],
        a[2],
        a[3],
        0x04,
    ]
}

fn balance_of(records: &[ApduRecord]) -> Result<u32, String> {
    let data = last_response_data(records)?;
    let bytes: [u8; 4] = data.try_into().map_err(|_| "balance is not 4 octets")?;
    Ok(u32::from_be_bytes(bytes))
}

/// The transit gate: SELECT, READ BALANCE, DEBIT [`TRANSIT_FARE`]. Values recorded:
/// `balance_before`, `balance_after` (4 octets each); fails when the new balance is not the
/// old one minus the fare.
pub fn transit() -> Script {
    Script {
        name: "transit".to_string(),
        steps: vec![
            Step::send(select_aid(&TRANSIT_AID), Expect::OK),
            Step::send(TRANSIT_READ_BALANCE, Expect::OK),
            Step::decide(|records, values| {
                let before = balance_of(records)?;
                values.insert("balance_before".to_string(), before.to_be_bytes().to_vec());
                Ok(vec![
                    Step::send(transit_debit(TRANSIT_FARE), Expect::OK),
                    Step::decide(move |records, values| {
                        let after = balance_of(records)?;
                        values.insert("balance_after".to_string(), after.to_be_bytes().to_vec());
                        if before.checked_sub(TRANSIT_FARE) == Some(after) {
                            Ok(Vec::new())
                        } else {
                            Err(format!("balance {before} − fare {TRANSIT_FARE} ≠ {after}"))
                        }
                    }),
                ])
            }),
        ],
    }
}

// ---- AID sweep and unknown AID ------------------------------------------------------------

/// The `i`-th AID of the sweep: `F0 00 00 00 00 00 00 i` (proprietary category `F`).
pub fn sweep_aid(i: u8) -> [u8; 8] {
    [0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, i]
}

/// SELECT each of the 256 [`sweep_aid`]s in one activation, expecting `9000` each.
pub fn sweep256() -> Script {
    Script {
        name: "sweep256".to_string(),
        steps: (0..=255u8)
            .map(|i| Step::send(select_aid(&sweep_aid(i)), Expect::OK))
            .collect(),
    }
}

/// An AID no service registers.
pub const UNKNOWN_AID: [u8; 8] = [0xF0, 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x00, 0x01];

/// SELECT [`UNKNOWN_AID`], expecting `6A82` (file or application not found).
pub fn unknown_aid() -> Script {
    Script {
        name: "unknown_aid".to_string(),
        steps: vec![Step::send(
            select_aid(&UNKNOWN_AID),
            Expect::Sw(StatusWord::FILE_NOT_FOUND),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes() {
        assert_eq!(select_aid(PPSE), SELECT_PPSE);
        assert_eq!(read_record(2, 1), [0x00, 0xB2, 0x01, 0x14, 0x00]);
        assert_eq!(
            transit_debit(TRANSIT_FARE),
            [0x80, 0x54, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0xFA, 0x04]
        );
        assert_eq!(
            get_processing_options(&[0xAA, 0xBB]),
            [0x80, 0xA8, 0x00, 0x00, 0x04, 0x83, 0x02, 0xAA, 0xBB, 0x00]
        );
    }

    #[test]
    fn bcd_amounts() {
        assert_eq!(bcd(1_250, 6), [0x00, 0x00, 0x00, 0x00, 0x12, 0x50]);
        assert_eq!(bcd(7, 1), [0x07]);
    }

    #[test]
    fn terminal_values_fit_their_length() {
        let p = EmvParams::default();
        assert_eq!(terminal_value(&p, [1, 2, 3, 4], 0x9F37, 4), [1, 2, 3, 4]);
        assert_eq!(terminal_value(&p, [0; 4], 0x9F02, 6), bcd(1_250, 6));
        assert_eq!(terminal_value(&p, [0; 4], 0x5F2A, 3), [0x00, 0x09, 0x78]);
        assert_eq!(terminal_value(&p, [0; 4], 0xDF01, 2), [0, 0]);
    }

    #[test]
    fn sweep_has_256_distinct_selects() {
        let script = sweep256();
        assert_eq!(script.steps.len(), 256);
        let Step::Send { apdu, .. } = &script.steps[255] else {
            panic!("send step expected");
        };
        assert_eq!(&apdu[5..13], &sweep_aid(255));
    }
}
