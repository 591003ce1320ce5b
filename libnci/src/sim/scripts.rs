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
//! - [`transit`]: SELECT the transit application → READ BALANCE → DEBIT the fare; checks
//!   the receipt's balance and counter and records its signature.
//! - [`sweep256`]: SELECT 256 eight-octet AIDs ([`sweep_aid`]) in one activation, each 9000.
//! - [`unknown_aid`]: SELECT [`UNKNOWN_AID`], expects 6A82.
//! - [`hostile`]: malformed and invalid commands, absurd SELECTs, 64 KiB of command chaining
//!   and an APDU storm, each with the status word an ISO/IEC 7816-4 card must answer (see
//!   [the hostile reader](#the-hostile-reader)).
//!
//! # The EMV contactless flow
//!
//! What [`emv`] sends and what it takes from each answer. A card application that answers this
//! way completes the script: the payment wallet of `nfcd-wallets` and the demo
//! [`EmvCard`](super::cards::EmvCard) both do, with different data objects. Like a real
//! terminal, the script assumes nothing about the card beyond this flow: the AID, the PDOL, the
//! records to read and the CDOL1 all come from the card's own data objects.
//!
//! | step | C-APDU | the card answers (then `9000`) | the terminal takes |
//! |---|---|---|---|
//! | SELECT PPSE | [`SELECT_PPSE`] | FCI `6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 { 4F AID, 50 label, 87 priority } … } } }` | the `4F` of the `61` entry with the highest priority |
//! | SELECT AID | [`select_aid`] | FCI `6F { 84 AID, A5 { 9F38 PDOL, … } }` | the PDOL; none is an empty one |
//! | GET PROCESSING OPTIONS | [`get_processing_options`]: `83` with the PDOL data | `77 { 82 AIP, 94 AFL, … }` (format 2) or `80` AIP ‖ AFL (format 1) | AIP, AFL |
//! | READ RECORD | [`read_record`] for each record of each AFL entry, in order | `70 { … }` | CDOL1 (`8C`), from whichever record holds it |
//! | GENERATE AC | [`generate_ac`]: ARQC requested, with the CDOL1 data | `77 { 9F27 CID, 9F36 ATC, 9F26 AC, … }` or `80` CID ‖ ATC ‖ AC ‖ IAD | CID, ATC, cryptogram |
//!
//! - Priority (EMV Book B §3.3, Book 1 §12.2.3): the low nibble of `87`, 1 highest; `0` or no
//!   `87` ranks last; equal ranks keep the card's order.
//! - DOL data (EMV Book 3 §5.4): the terminal's value of each listed tag ([`EmvParams`]; the
//!   same unpredictable number in the PDOL and the CDOL1 data), fitted to the length the card
//!   asks for — numeric (`n`) values lose leading octets or gain leading zeros, the others lose
//!   trailing octets or gain trailing zeros — and zeros for tags the terminal has no value for
//!   (the TVR `95` among them: this terminal has nothing to report).
//! - Any status word but `9000` ends the tap. The cryptogram is the card's and its issuer's
//!   business: the script records it and does not check it.
//!
//! # The transit application's commands
//!
//! Defined here once, for the transit wallet (`nfcd-wallets`, which signs receipts), the demo
//! [`TransitCard`](super::cards::TransitCard) and the [`transit`] gate. Proprietary class `80`
//! (ISO/IEC 7816-4 §5.4.1); all numbers unsigned big-endian, money in cents, time in Unix
//! seconds.
//!
//! | command | C-APDU | response data, then `9000` |
//! |---|---|---|
//! | SELECT | `00 A4 04 00 0C` [`TRANSIT_AID`] `00` ([`select_aid`]) | FCI `6F { 84 AID, … }` |
//! | READ BALANCE | [`TRANSIT_READ_BALANCE`] = `80 5C 00 00 08` | [`TransitBalanceRepr`]: balance (4) ‖ counter (4) |
//! | DEBIT | `80 54 00 00 10` [`TransitDebitRepr`]: fare (4) ‖ gate id (8) ‖ timestamp (4), `48` ([`transit_debit`]) | [`TransitReceiptRepr`]: new balance (4) ‖ counter (4) ‖ signature (64) |
//! | GET PUBLIC KEY | [`TRANSIT_GET_PUBLIC_KEY`] = `80 CA DF 20 41` | `04 ‖ X ‖ Y` (65) |
//!
//! The counter is the number of debits so far; a DEBIT adds one. The receipt signature is
//! ECDSA P-256 / SHA-256 in fixed `r ‖ s` form over [`transit_receipt_message`]: gate id ‖
//! fare ‖ new balance ‖ counter ‖ timestamp (24 octets), verifiable with the GET PUBLIC KEY
//! point. Status words: [`TRANSIT_SW_INSUFFICIENT_FUNDS`] (`6985`) and
//! [`TRANSIT_SW_NOT_STORED`] (`6581`) leave balance and counter unchanged; `6700` wrong Lc,
//! `6A86` P1-P2 not `0000`, `6A88` other GET DATA tags, `6D00` other INS, `6E00` other CLA.
//!
//! # The hostile reader
//!
//! What [`hostile`] sends, and the status word each command must get. The answers in the
//! first part come from whoever parses the command before any application sees it (for nfcd:
//! its card emulation session and the controller driver); they do not depend on which
//! services are registered. The script then selects [`HOSTILE_AID`]: when a service answers
//! that SELECT with `9000`, it is assumed to answer `9000` to every well-formed command it is
//! given (nfcd's `test-wallet --behaviour ok` or `echo` does), and the commands forwarded to
//! it expect `9000`; when nobody registers the AID (`6A82`), the same commands expect `6F00`
//! (a command with nothing selected). Any other answer to that SELECT ends the tap with a
//! script error. The value `selected` records which case it was (`01` or `00`).
//!
//! | # | command | why it is hostile | answer |
//! |---|---|---|---|
//! | 1–3 | `00`, `00 A4`, `00 A4 04` | shorter than the 4-byte header (§5.1) | `6700` |
//! | 4 | `00 DA 01 00 05 01 02` | Lc 5, 2 data octets | `6700` |
//! | 5 | `00 DA 01 00 02 01 02 03 04` | Lc 2, 4 data octets (2 trailing) | `6700` |
//! | 6 | `00 CA 01 00 00 00 02 AA BB 01` | extended Lc, Le of one octet | `6700` |
//! | 7 | `00 CA 01 00 00 01` | extended marker, length unfinished | `6700` |
//! | 8 | `00 DA 01 00 00 00 00 01 02` | extended Lc of 0 with data | `6700` |
//! | 9 | `00 CA 01 00 00 00 01 AA 00 00 FF` | octets after the extended Le | `6700` |
//! | 10 | `FF CA 00 00 00` | CLA `FF` (§5.4.1) | `6E00` |
//! | 11–12 | `00 6A 00 00 00`, `00 94 00 00 00` | INS `6X` / `9X` (§5.4.2) | `6D00` |
//! | 13 | `00 B0 00 00 00` | well-formed, nothing selected | `6F00` |
//! | 14 | `00 A4 04 00` | SELECT by DF name without a name | `6700` |
//! | 15 | `00 A4 04 00 00` | SELECT with "Lc 0" (really Le 256), no name | `6700` |
//! | 16 | `00 A4 04 00 FF` 255 octets `00` | SELECT of a 255-octet name (> 16, §8.2.1.2) | `6700` |
//! | 17 | `00 A4 04 00 00 FF FF` [`HOSTILE_AID`] | extended Lc 65 535 with 8 octets | `6700` |
//! | 18 | `00 A4 04 00 00 01 00` 256 octets `00 00` | extended SELECT of a 256-octet name | `6700` |
//! | 19 | `00 A4 04 01 08` [`HOSTILE_AID`] `00` | P2 "last occurrence" | `6A86` |
//! | 20 | `00 A4 04 00 04 F0 48 4F 53 00` | a 4-octet name (an AID has 5–16) | `6A82` |
//! | 21 | SELECT [`UNKNOWN_AID`] | nobody has it | `6A82` |
//! | 22 | `00 A4 04 00 00 00 08` [`HOSTILE_AID`] `00 00` | SELECT in extended form | `9000` or `6A82` |
//! | 23 | `FF CA 00 00 00` | CLA `FF`, now with a selection | `6E00` |
//! | 24 | `00 9F 00 00 00` | INS `9X`, now with a selection | `6D00` |
//! | 25 | `00 A4 04` | malformed, now with a selection | `6700` |
//! | 26 | SELECT [`UNKNOWN_AID`] | a failed SELECT keeps the selection (§11.2.2) | `6A82` |
//! | 27 | GET DATA `80 CA 9F 36 00` | the selection is still there | forwarded |
//! | 28… | PUT DATA `10 DA 01 00 FF` …, last `00 DA 01 00 01` … | [`HOSTILE_CHAIN_LEN`] (64 KiB) of data as a command chain (CLA bit `10`, §5.4.1): 257 links of 255 octets and a last one of 1 | forwarded, each |
//! | … | [`HOSTILE_STORM`] commands back to back, in turn: GET DATA, SELECT [`UNKNOWN_AID`], `00 A4 04`, `FF CA 00 00 00`, SELECT [`HOSTILE_AID`] | a storm | forwarded, `6A82`, `6700`, `6E00`, `9000`/`6A82` |
//! | last | GET DATA `80 CA 9F 36 00` | still answering | forwarded |
//!
//! "Forwarded" is `9000` with a service at [`HOSTILE_AID`], `6F00` without. Command chaining
//! is the application's business: a card emulation layer passes each link on as it comes and
//! never holds the chain, so 64 KiB of chained data costs it no more memory than one APDU.
//! [`hostile_apdu_count`] is the number of commands.

use std::collections::BTreeMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use super::reader::ApduRecord;
use super::rng::XorShift64;
use super::tlv;
use crate::apdu::{split_response, StatusWord};
use crate::wire::HexBytes;

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
                .field("apdu", &HexBytes(apdu))
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

/// Terminal side of an EMV transaction. Besides these, the terminal answers a DOL with fixed
/// values for terminal transaction qualifiers (`9F66` = `36004000`: contactless EMV mode,
/// online capable) and terminal type (`9F35` = `22`: attended, online with offline
/// capability), and zeros for anything else.
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

/// How a DOL value is fitted to the length a card asks for (EMV Book 3 §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DolFormat {
    /// Format `n`: right-aligned, so leading octets are cut or zeros added in front.
    Numeric,
    /// Formats `b`, `an`, …: left-aligned, so trailing octets are cut or zeros appended.
    Other,
}

/// The terminal's value for a DOL entry and its format; empty for tags it has no value for.
fn terminal_value(params: &EmvParams, unpredictable: [u8; 4], tag: u32) -> (Vec<u8>, DolFormat) {
    use DolFormat::{Numeric, Other};
    match tag {
        0x9F02 => (bcd(params.amount, 6), Numeric),
        0x9F03 => (vec![0; 6], Numeric),
        0x9F1A => (params.country.to_be_bytes().to_vec(), Numeric),
        0x5F2A => (params.currency.to_be_bytes().to_vec(), Numeric),
        0x9A => (params.date.to_vec(), Numeric),
        0x9C => (vec![params.transaction_type], Numeric),
        0x9F35 => (vec![0x22], Numeric),
        0x9F37 => (unpredictable.to_vec(), Other),
        0x9F66 => (vec![0x36, 0x00, 0x40, 0x00], Other),
        _ => (Vec::new(), Other),
    }
}

/// `value` fitted to `len` octets the way `format` says (EMV Book 3 §5.4).
fn fit(value: &[u8], len: usize, format: DolFormat) -> Vec<u8> {
    let mut out = vec![0; len];
    let n = value.len().min(len);
    match format {
        DolFormat::Numeric => out[len - n..].copy_from_slice(&value[value.len() - n..]),
        DolFormat::Other => out[..n].copy_from_slice(&value[..n]),
    }
    out
}

/// The DOL related data for `dol`, at most `max` octets (what the command can carry).
fn dol_data(
    params: &EmvParams,
    unpredictable: [u8; 4],
    dol: &[u8],
    max: usize,
) -> Result<Vec<u8>, String> {
    let dol = tlv::Dol::new_checked(dol).map_err(|e| format!("malformed DOL: {e}"))?;
    if dol.data_len() > max {
        return Err(format!(
            "DOL asks for {} octets, more than the {max} the command carries",
            dol.data_len()
        ));
    }
    Ok(dol
        .entries()
        .map_while(Result::ok)
        .flat_map(|entry| {
            let (value, format) = terminal_value(params, unpredictable, entry.tag);
            fit(&value, entry.len, format)
        })
        .collect())
}

/// The AID of the directory entry (`61`) a terminal picks from a PPSE FCI: highest priority
/// (`87` low nibble, 1 first; 0 or none last), the card's order among equals.
fn ppse_choice(fci: &[u8]) -> Option<&[u8]> {
    let directory = tlv::find_path(fci, &[0x6F, 0xA5, 0xBF0C])?;
    tlv::iter(directory)
        .map_while(Result::ok)
        .filter(|entry| entry.tag == 0x61)
        .filter_map(|entry| {
            let aid = tlv::find(entry.value, 0x4F)?;
            let priority = match tlv::find(entry.value, 0x87) {
                Some([p, ..]) if p & 0x0F != 0 => p & 0x0F,
                _ => 0x10,
            };
            Some((priority, aid))
        })
        .enumerate()
        .min_by_key(|&(order, (priority, _))| (priority, order))
        .map(|(_, (_, aid))| aid)
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
                let aid = ppse_choice(fci).ok_or("PPSE FCI lists no application (4F)")?;
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
    let pdol = tlv::find_path(fci, &[0x6F, 0xA5, 0x9F38]).unwrap_or(&[]);
    let unpredictable = XorShift64::new(params.seed).next_u32().to_be_bytes();
    values.insert("unpredictable_number".to_string(), unpredictable.to_vec());
    // Lc holds 255 octets: 83, the length (81 xx beyond 127 octets), the data.
    let data = dol_data(params, unpredictable, pdol, 252)?;
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
        Some(Ok(t)) if t.tag == 0x77 => (
            tlv::find(t.value, 0x82).ok_or("GPO response without AIP (82)")?,
            tlv::find(t.value, 0x94).ok_or("GPO response without AFL (94)")?,
        ),
        Some(Ok(t)) if t.tag == 0x80 && t.value.len() >= 2 => t.value.split_at(2),
        _ => return Err("GPO response is neither format 1 nor format 2".to_string()),
    };
    values.insert("aip".to_string(), aip.to_vec());
    values.insert("afl".to_string(), afl.to_vec());
    if afl.is_empty() || afl.len() % 4 != 0 {
        return Err("AFL length is not a multiple of 4".to_string());
    }
    let mut steps = Vec::new();
    for entry in afl.chunks_exact(4) {
        // SFI in b8-b4 (1 to 30), first and last record, records for offline authentication.
        let (sfi, first, last) = (entry[0] >> 3, entry[1], entry[2]);
        if !(1..=30).contains(&sfi) || first == 0 || last < first {
            return Err(format!("malformed AFL entry {}", HexBytes(entry)));
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
        .find_map(|r| {
            split_response(&r.rsp).and_then(|(data, _)| tlv::find_path(data, &[0x70, 0x8C]))
        })
        .ok_or("no record holds CDOL1 (8C)")?;
    let unpredictable: [u8; 4] = values
        .get("unpredictable_number")
        .and_then(|v| v.as_slice().try_into().ok())
        .ok_or("unpredictable number missing")?;
    let data = dol_data(params, unpredictable, cdol1, 255)?;
    Ok(vec![
        Step::send(generate_ac(&data), Expect::OK),
        Step::decide(|records, values| {
            let data = last_response_data(records)?;
            match tlv::iter(data).next() {
                Some(Ok(t)) if t.tag == 0x77 => {
                    for (tag, name) in [(0x9F26, "cryptogram"), (0x9F27, "cid"), (0x9F36, "atc")] {
                        let value = tlv::find(t.value, tag)
                            .ok_or_else(|| format!("GENERATE AC response without {tag:X}"))?;
                        values.insert(name.to_string(), value.to_vec());
                    }
                }
                // Format 1: CID (1), ATC (2), cryptogram (8), issuer application data.
                Some(Ok(t)) if t.tag == 0x80 && t.value.len() >= 11 => {
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

/// AID of the transit application: `F0` (ISO/IEC 7816-5 category F: proprietary, unregistered)
/// followed by `NFCDTRANSIT` in ASCII; `F04E4643445452414E534954`, 12 octets.
pub const TRANSIT_AID: [u8; 12] = *b"\xF0NFCDTRANSIT";
/// Class byte of the transit commands: proprietary (ISO/IEC 7816-4 §5.4.1, b8 set).
pub const TRANSIT_CLA: u8 = 0x80;
/// INS of READ BALANCE.
pub const TRANSIT_INS_READ_BALANCE: u8 = 0x5C;
/// INS of DEBIT.
pub const TRANSIT_INS_DEBIT: u8 = 0x54;
/// INS of GET DATA (the ISO/IEC 7816-4 §11.4.3 code, under the proprietary class), used for
/// the receipt-signing public key.
pub const TRANSIT_INS_GET_DATA: u8 = 0xCA;
/// GET DATA tag (P1-P2) of the receipt-signing public key.
pub const TRANSIT_TAG_PUBLIC_KEY: u16 = 0xDF20;
/// Length of the public key: an uncompressed P-256 point `04 ‖ X ‖ Y` (SEC 1 §2.3.3).
pub const TRANSIT_PUBLIC_KEY_LEN: usize = 65;
/// Length of a receipt signature: ECDSA P-256 in fixed `r ‖ s` form.
pub const TRANSIT_SIGNATURE_LEN: usize = 64;
/// READ BALANCE: case 2, Le 8 ([`TransitBalanceRepr::LEN`]).
pub const TRANSIT_READ_BALANCE: [u8; 5] = [
    TRANSIT_CLA,
    TRANSIT_INS_READ_BALANCE,
    0x00,
    0x00,
    TransitBalanceRepr::LEN as u8,
];
/// GET PUBLIC KEY: GET DATA `DF20`, case 2, Le 65.
pub const TRANSIT_GET_PUBLIC_KEY: [u8; 5] = [
    TRANSIT_CLA,
    TRANSIT_INS_GET_DATA,
    0xDF,
    0x20,
    TRANSIT_PUBLIC_KEY_LEN as u8,
];
/// The fare the demo gate debits ([`TransitDebitRepr::default`]), in cents.
pub const TRANSIT_FARE: u32 = 250;
/// DEBIT of more than the balance (or with the debit counter exhausted): conditions of use not
/// satisfied (ISO/IEC 7816-4 §5.6). Nothing is debited.
pub const TRANSIT_SW_INSUFFICIENT_FUNDS: StatusWord = StatusWord::CONDITIONS_NOT_SATISFIED;
/// DEBIT whose new state the card could not store: memory failure `6581` (ISO/IEC 7816-4 §5.6).
/// Nothing is debited.
pub const TRANSIT_SW_NOT_STORED: StatusWord = StatusWord(0x6581);

/// Balance and debit counter: the response data of READ BALANCE, and the first eight octets of
/// a DEBIT receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitBalanceRepr {
    /// Stored value, cents.
    pub balance: u32,
    /// Debits so far.
    pub counter: u32,
}

impl TransitBalanceRepr {
    /// Encoded length: balance (4) ‖ counter (4).
    pub const LEN: usize = 8;

    /// Reads exactly [`Self::LEN`] octets.
    pub fn parse(data: &[u8]) -> Option<TransitBalanceRepr> {
        let (balance, counter) = <&[u8; Self::LEN]>::try_from(data).ok()?.split_at(4);
        Some(TransitBalanceRepr {
            balance: u32::from_be_bytes(balance.try_into().ok()?),
            counter: u32::from_be_bytes(counter.try_into().ok()?),
        })
    }

    /// The state after a DEBIT of `fare`: balance less the fare, counter plus one. `None` when
    /// the balance is short or the counter exhausted: the card answers
    /// [`TRANSIT_SW_INSUFFICIENT_FUNDS`] and keeps its state.
    pub fn debited(&self, fare: u32) -> Option<TransitBalanceRepr> {
        Some(TransitBalanceRepr {
            balance: self.balance.checked_sub(fare)?,
            counter: self.counter.checked_add(1)?,
        })
    }

    /// The octets: balance ‖ counter, big-endian.
    pub fn emit(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..4].copy_from_slice(&self.balance.to_be_bytes());
        out[4..].copy_from_slice(&self.counter.to_be_bytes());
        out
    }
}

/// What a gate debits: the command data of DEBIT, and the gate side of a [`transit`] tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitDebitRepr {
    /// Fare, cents.
    pub fare: u32,
    /// The gate's identity, as the receipt will name it.
    pub gate_id: [u8; 8],
    /// The gate's clock, Unix seconds.
    pub timestamp: u32,
}

impl Default for TransitDebitRepr {
    /// The demo gate: [`TRANSIT_FARE`] at gate `NFCDGATE`, at 2026-01-01T00:00:00Z (simulated
    /// gates have no clock of their own).
    fn default() -> Self {
        TransitDebitRepr {
            fare: TRANSIT_FARE,
            gate_id: *b"NFCDGATE",
            timestamp: 1_767_225_600,
        }
    }
}

impl TransitDebitRepr {
    /// Encoded length: fare (4) ‖ gate id (8) ‖ timestamp (4).
    pub const LEN: usize = 16;

    /// Reads exactly [`Self::LEN`] octets.
    pub fn parse(data: &[u8]) -> Option<TransitDebitRepr> {
        let data = <&[u8; Self::LEN]>::try_from(data).ok()?;
        let (fare, rest) = data.split_at(4);
        let (gate_id, timestamp) = rest.split_at(8);
        Some(TransitDebitRepr {
            fare: u32::from_be_bytes(fare.try_into().ok()?),
            gate_id: gate_id.try_into().ok()?,
            timestamp: u32::from_be_bytes(timestamp.try_into().ok()?),
        })
    }

    /// The octets: fare ‖ gate id ‖ timestamp, numbers big-endian.
    pub fn emit(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..4].copy_from_slice(&self.fare.to_be_bytes());
        out[4..12].copy_from_slice(&self.gate_id);
        out[12..].copy_from_slice(&self.timestamp.to_be_bytes());
        out
    }
}

/// The answer to a DEBIT: the state after it and the card's signature over
/// [`transit_receipt_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitReceiptRepr {
    /// Balance and counter after the debit.
    pub after: TransitBalanceRepr,
    /// ECDSA P-256 / SHA-256 signature, fixed `r ‖ s`. All zero from a card that cannot sign
    /// (the demo [`TransitCard`](super::cards::TransitCard)).
    pub signature: [u8; TRANSIT_SIGNATURE_LEN],
}

impl TransitReceiptRepr {
    /// Encoded length: balance (4) ‖ counter (4) ‖ signature (64).
    pub const LEN: usize = TransitBalanceRepr::LEN + TRANSIT_SIGNATURE_LEN;

    /// Reads exactly [`Self::LEN`] octets.
    pub fn parse(data: &[u8]) -> Option<TransitReceiptRepr> {
        if data.len() != Self::LEN {
            return None;
        }
        let (after, signature) = data.split_at(TransitBalanceRepr::LEN);
        Some(TransitReceiptRepr {
            after: TransitBalanceRepr::parse(after)?,
            signature: signature.try_into().ok()?,
        })
    }

    /// The octets: balance ‖ counter ‖ signature.
    pub fn emit(&self) -> [u8; Self::LEN] {
        let mut out = [0; Self::LEN];
        out[..TransitBalanceRepr::LEN].copy_from_slice(&self.after.emit());
        out[TransitBalanceRepr::LEN..].copy_from_slice(&self.signature);
        out
    }
}

/// DEBIT: `80 54 00 00 10` [`TransitDebitRepr`] `48` (case 4, Le 72 = [`TransitReceiptRepr::LEN`]).
pub fn transit_debit(debit: &TransitDebitRepr) -> [u8; 5 + TransitDebitRepr::LEN + 1] {
    let mut apdu = [0; 5 + TransitDebitRepr::LEN + 1];
    apdu[..5].copy_from_slice(&[
        TRANSIT_CLA,
        TRANSIT_INS_DEBIT,
        0x00,
        0x00,
        TransitDebitRepr::LEN as u8,
    ]);
    apdu[5..5 + TransitDebitRepr::LEN].copy_from_slice(&debit.emit());
    apdu[5 + TransitDebitRepr::LEN] = TransitReceiptRepr::LEN as u8;
    apdu
}

/// The 24 octets a receipt signature covers: gate id (8) ‖ fare (4) ‖ new balance (4) ‖
/// counter (4) ‖ timestamp (4), numbers big-endian.
pub fn transit_receipt_message(debit: &TransitDebitRepr, after: &TransitBalanceRepr) -> [u8; 24] {
    let mut message = [0u8; 24];
    message[..8].copy_from_slice(&debit.gate_id);
    message[8..12].copy_from_slice(&debit.fare.to_be_bytes());
    message[12..20].copy_from_slice(&after.emit());
    message[20..].copy_from_slice(&debit.timestamp.to_be_bytes());
    message
}

fn response_data_as<T>(
    records: &[ApduRecord],
    what: &str,
    parse: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, String> {
    let data = last_response_data(records)?;
    parse(data).ok_or_else(|| format!("{what} response of {} octets is malformed", data.len()))
}

/// The transit gate: SELECT [`TRANSIT_AID`], READ BALANCE, DEBIT as `debit` says.
///
/// Fails when the receipt's balance is not the old one minus the fare or its counter is not the
/// old one plus one. It does not check the signature (that needs the card's public key and
/// ECDSA, which a gate's back office has and this crate does not): it records what a verifier
/// needs. Values recorded: `balance_before`, `counter_before`, `balance_after`,
/// `counter_after` (4 octets each), `receipt_message` ([`transit_receipt_message`], 24 octets)
/// and `receipt_signature` (64 octets).
pub fn transit(debit: &TransitDebitRepr) -> Script {
    let debit = *debit;
    Script {
        name: "transit".to_string(),
        steps: vec![
            Step::send(select_aid(&TRANSIT_AID), Expect::OK),
            Step::send(TRANSIT_READ_BALANCE, Expect::OK),
            Step::decide(move |records, values| {
                let before = response_data_as(records, "READ BALANCE", TransitBalanceRepr::parse)?;
                values.insert(
                    "balance_before".to_string(),
                    before.balance.to_be_bytes().to_vec(),
                );
                values.insert(
                    "counter_before".to_string(),
                    before.counter.to_be_bytes().to_vec(),
                );
                Ok(vec![
                    Step::send(transit_debit(&debit), Expect::OK),
                    Step::decide(move |records, values| {
                        let receipt =
                            response_data_as(records, "DEBIT", TransitReceiptRepr::parse)?;
                        let after = receipt.after;
                        values.insert(
                            "balance_after".to_string(),
                            after.balance.to_be_bytes().to_vec(),
                        );
                        values.insert(
                            "counter_after".to_string(),
                            after.counter.to_be_bytes().to_vec(),
                        );
                        values.insert(
                            "receipt_message".to_string(),
                            transit_receipt_message(&debit, &after).to_vec(),
                        );
                        values.insert("receipt_signature".to_string(), receipt.signature.to_vec());
                        if Some(after) == before.debited(debit.fare) {
                            Ok(Vec::new())
                        } else {
                            Err(format!(
                                "DEBIT {} on balance {} counter {}: receipt says balance {} counter {}",
                                debit.fare, before.balance, before.counter, after.balance, after.counter
                            ))
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

// ---- Hostile reader -------------------------------------------------------------------------

/// The AID the [`hostile`] reader selects: `F0` ‖ "HOSTILE" (proprietary category `F`).
pub const HOSTILE_AID: [u8; 8] = [0xF0, 0x48, 0x4F, 0x53, 0x54, 0x49, 0x4C, 0x45];

/// Command data the [`hostile`] reader sends as one command chain: 64 KiB.
pub const HOSTILE_CHAIN_LEN: usize = 65_536;

/// Data octets per link of the chain: the most a short Lc announces (ISO/IEC 7816-4 §5.1).
const HOSTILE_CHAIN_LINK: usize = 255;

/// Commands of the [`hostile`] reader's storm.
pub const HOSTILE_STORM: usize = 300;

/// Class bit of command chaining: "the command is not the last of a chain" (ISO/IEC 7816-4
/// §5.4.1).
pub const CLA_CHAINING: u8 = 0x10;

/// GET DATA of the ATC (`80 CA 9F 36 00`): a harmless case 2 command for the selected service.
const GET_DATA_ATC: [u8; 5] = [0x80, 0xCA, 0x9F, 0x36, 0x00];

/// CLA `FF`: invalid (ISO/IEC 7816-4 §5.4.1).
const INVALID_CLASS: [u8; 5] = [0xFF, 0xCA, 0x00, 0x00, 0x00];

/// Three octets: shorter than any command header.
const TRUNCATED_HEADER: [u8; 3] = [0x00, 0xA4, 0x04];

/// The links of the command chain carrying [`HOSTILE_CHAIN_LEN`] octets of PUT DATA (INS
/// `DA`, P1-P2 `0100`, ISO/IEC 7816-4 §11.4.6): every link but the last has the chaining bit.
fn hostile_chain() -> Vec<Vec<u8>> {
    let data: Vec<u8> = (0..HOSTILE_CHAIN_LEN)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8))
        .collect();
    let links = data.chunks(HOSTILE_CHAIN_LINK).count();
    data.chunks(HOSTILE_CHAIN_LINK)
        .enumerate()
        .map(|(i, chunk)| {
            let cla = if i + 1 < links { CLA_CHAINING } else { 0x00 };
            let mut apdu = vec![cla, 0xDA, 0x01, 0x00, chunk.len() as u8];
            apdu.extend_from_slice(chunk);
            apdu
        })
        .collect()
}

/// SELECT by DF name in the extended form: `00 A4 04 00 00 Lc1 Lc2 name 00 00`.
fn select_extended(name: &[u8]) -> Vec<u8> {
    let lc = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, 0x00];
    apdu.extend_from_slice(&lc.to_be_bytes());
    apdu.extend_from_slice(name);
    apdu.extend_from_slice(&[0x00, 0x00]);
    apdu
}

/// The first part of [`hostile`]: answers that do not depend on any service.
fn hostile_unselected() -> Vec<(Vec<u8>, StatusWord)> {
    let wrong_length = StatusWord::WRONG_LENGTH;
    let mut select_255 = vec![0x00, 0xA4, 0x04, 0x00, 0xFF];
    select_255.extend(core::iter::repeat_n(0xA0, 255));
    select_255.push(0x00);
    let mut absurd_lc = vec![0x00, 0xA4, 0x04, 0x00, 0x00, 0xFF, 0xFF];
    absurd_lc.extend_from_slice(&HOSTILE_AID);
    let mut last_occurrence = select_aid(&HOSTILE_AID);
    last_occurrence[3] = 0x01;
    vec![
        (vec![0x00], wrong_length),
        (vec![0x00, 0xA4], wrong_length),
        (TRUNCATED_HEADER.to_vec(), wrong_length),
        (vec![0x00, 0xDA, 0x01, 0x00, 0x05, 0x01, 0x02], wrong_length),
        (
            vec![0x00, 0xDA, 0x01, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04],
            wrong_length,
        ),
        (
            vec![0x00, 0xCA, 0x01, 0x00, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0x01],
            wrong_length,
        ),
        (vec![0x00, 0xCA, 0x01, 0x00, 0x00, 0x01], wrong_length),
        (
            vec![0x00, 0xDA, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02],
            wrong_length,
        ),
        (
            vec![
                0x00, 0xCA, 0x01, 0x00, 0x00, 0x00, 0x01, 0xAA, 0x00, 0x00, 0xFF,
            ],
            wrong_length,
        ),
        (INVALID_CLASS.to_vec(), StatusWord::CLA_NOT_SUPPORTED),
        (
            vec![0x00, 0x6A, 0x00, 0x00, 0x00],
            StatusWord::INS_NOT_SUPPORTED,
        ),
        (
            vec![0x00, 0x94, 0x00, 0x00, 0x00],
            StatusWord::INS_NOT_SUPPORTED,
        ),
        (
            vec![0x00, 0xB0, 0x00, 0x00, 0x00],
            StatusWord::NO_PRECISE_DIAGNOSIS,
        ),
        (vec![0x00, 0xA4, 0x04, 0x00], wrong_length),
        (vec![0x00, 0xA4, 0x04, 0x00, 0x00], wrong_length),
        (select_255, wrong_length),
        (absurd_lc, wrong_length),
        (select_extended(&[0xA0; 256]), wrong_length),
        (last_occurrence, StatusWord::INCORRECT_P1_P2),
        (select_aid(&HOSTILE_AID[..4]), StatusWord::FILE_NOT_FOUND),
        (select_aid(&UNKNOWN_AID), StatusWord::FILE_NOT_FOUND),
    ]
}

/// The second part of [`hostile`], after the extended SELECT of [`HOSTILE_AID`]: `selected`
/// says whether a service took it.
fn hostile_selected(selected: bool) -> Vec<(Vec<u8>, StatusWord)> {
    let forwarded = if selected {
        StatusWord::NO_ERROR
    } else {
        StatusWord::NO_PRECISE_DIAGNOSIS
    };
    let reselect = if selected {
        StatusWord::NO_ERROR
    } else {
        StatusWord::FILE_NOT_FOUND
    };
    let mut steps = vec![
        (INVALID_CLASS.to_vec(), StatusWord::CLA_NOT_SUPPORTED),
        (
            vec![0x00, 0x9F, 0x00, 0x00, 0x00],
            StatusWord::INS_NOT_SUPPORTED,
        ),
        (TRUNCATED_HEADER.to_vec(), StatusWord::WRONG_LENGTH),
        (select_aid(&UNKNOWN_AID), StatusWord::FILE_NOT_FOUND),
        (GET_DATA_ATC.to_vec(), forwarded),
    ];
    steps.extend(hostile_chain().into_iter().map(|link| (link, forwarded)));
    steps.extend((0..HOSTILE_STORM).map(|i| match i % 5 {
        0 => (GET_DATA_ATC.to_vec(), forwarded),
        1 => (select_aid(&UNKNOWN_AID), StatusWord::FILE_NOT_FOUND),
        2 => (TRUNCATED_HEADER.to_vec(), StatusWord::WRONG_LENGTH),
        3 => (INVALID_CLASS.to_vec(), StatusWord::CLA_NOT_SUPPORTED),
        _ => (select_aid(&HOSTILE_AID), reselect),
    }));
    steps.push((GET_DATA_ATC.to_vec(), forwarded));
    steps
}

/// Number of commands [`hostile`] sends (the same with and without a service at
/// [`HOSTILE_AID`]).
pub fn hostile_apdu_count() -> usize {
    hostile_unselected().len() + 1 + hostile_selected(true).len()
}

/// The hostile reader: every command of the table in [the hostile
/// reader](#the-hostile-reader), each expecting its status word; completes only if every
/// answer is the defined one. Values recorded: `selected` (`01` when a service took
/// [`HOSTILE_AID`], `00` when nobody registers it).
pub fn hostile() -> Script {
    let mut steps: Vec<Step> = hostile_unselected()
        .into_iter()
        .map(|(apdu, sw)| Step::send(apdu, Expect::Sw(sw)))
        .collect();
    steps.push(Step::send(select_extended(&HOSTILE_AID), Expect::Any));
    steps.push(Step::decide(|records, values| {
        let selected = match records.last().and_then(|r| r.sw) {
            Some(StatusWord::NO_ERROR) => true,
            Some(StatusWord::FILE_NOT_FOUND) => false,
            other => {
                return Err(format!(
                    "SELECT of the hostile AID answered {}, expected 9000 or 6A82",
                    other.map_or_else(|| "no status word".to_string(), |sw| sw.to_string())
                ))
            }
        };
        values.insert("selected".to_string(), vec![u8::from(selected)]);
        Ok(hostile_selected(selected)
            .into_iter()
            .map(|(apdu, sw)| Step::send(apdu, Expect::Sw(sw)))
            .collect())
    }));
    Script {
        name: "hostile".to_string(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes() {
        assert_eq!(select_aid(PPSE), SELECT_PPSE);
        assert_eq!(read_record(2, 1), [0x00, 0xB2, 0x01, 0x14, 0x00]);
        // DEBIT 2.50 at gate "NFCDGATE", 2026-01-01T00:00:00Z, Le 72.
        let mut debit = vec![0x80, 0x54, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0xFA];
        debit.extend_from_slice(b"NFCDGATE");
        debit.extend_from_slice(&[0x69, 0x55, 0xB9, 0x00, 0x48]);
        assert_eq!(transit_debit(&TransitDebitRepr::default())[..], debit[..]);
        assert_eq!(TRANSIT_READ_BALANCE, [0x80, 0x5C, 0x00, 0x00, 0x08]);
        assert_eq!(TRANSIT_GET_PUBLIC_KEY, [0x80, 0xCA, 0xDF, 0x20, 0x41]);
        assert_eq!(
            select_aid(&TRANSIT_AID),
            [
                0x00, 0xA4, 0x04, 0x00, 0x0C, 0xF0, 0x4E, 0x46, 0x43, 0x44, 0x54, 0x52, 0x41, 0x4E,
                0x53, 0x49, 0x54, 0x00
            ]
        );
        assert_eq!(
            get_processing_options(&[0xAA, 0xBB]),
            [0x80, 0xA8, 0x00, 0x00, 0x04, 0x83, 0x02, 0xAA, 0xBB, 0x00]
        );
    }

    #[test]
    fn transit_reprs_round_trip() {
        let debit = TransitDebitRepr {
            fare: 275,
            gate_id: *b"GATE0042",
            timestamp: 0x0102_0304,
        };
        assert_eq!(TransitDebitRepr::parse(&debit.emit()), Some(debit));
        assert_eq!(TransitDebitRepr::parse(&debit.emit()[..15]), None);
        // READ BALANCE data: 17.25, counter 1.
        let after = TransitBalanceRepr {
            balance: 1_725,
            counter: 1,
        };
        assert_eq!(
            after.emit(),
            [0x00, 0x00, 0x06, 0xBD, 0x00, 0x00, 0x00, 0x01]
        );
        assert_eq!(TransitBalanceRepr::parse(&after.emit()), Some(after));
        assert_eq!(TransitBalanceRepr::parse(&[0; 9]), None);
        // A debit takes the fare and counts one; a short balance or a full counter refuse it.
        let before = TransitBalanceRepr {
            balance: 2_000,
            counter: 0,
        };
        assert_eq!(before.debited(275), Some(after));
        assert_eq!(before.debited(2_001), None);
        let full = TransitBalanceRepr {
            counter: u32::MAX,
            ..before
        };
        assert_eq!(full.debited(1), None);
        let receipt = TransitReceiptRepr {
            after,
            signature: [0x5A; TRANSIT_SIGNATURE_LEN],
        };
        assert_eq!(TransitReceiptRepr::parse(&receipt.emit()), Some(receipt));
        assert_eq!(TransitReceiptRepr::parse(&receipt.emit()[..71]), None);
        // Signed: gate id ‖ fare ‖ new balance ‖ counter ‖ timestamp.
        let mut message = b"GATE0042".to_vec();
        message.extend_from_slice(&[0, 0, 0x01, 0x13, 0, 0, 0x06, 0xBD, 0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(transit_receipt_message(&debit, &after)[..], message[..]);
    }

    #[test]
    fn bcd_amounts() {
        assert_eq!(bcd(1_250, 6), [0x00, 0x00, 0x00, 0x00, 0x12, 0x50]);
        assert_eq!(bcd(7, 1), [0x07]);
    }

    #[test]
    fn dol_data_fits_each_value_to_its_length() {
        let p = EmvParams::default();
        let un = [1, 2, 3, 4];
        // 9F37 04 | 9F02 06 | 5F2A 03 | DF01 02: exact, exact, numeric padded, unknown.
        let dol = [
            0x9F, 0x37, 0x04, 0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x03, 0xDF, 0x01, 0x02,
        ];
        let mut want = un.to_vec();
        want.extend_from_slice(&bcd(1_250, 6));
        want.extend_from_slice(&[0x00, 0x09, 0x78, 0x00, 0x00]);
        assert_eq!(dol_data(&p, un, &dol, 255), Ok(want));
        // Binary values are left-aligned, numeric ones right-aligned (EMV Book 3 §5.4).
        let dol = [
            0x9F, 0x37, 0x06, 0x9F, 0x37, 0x02, 0x9F, 0x02, 0x02, 0x9A, 0x04,
        ];
        assert_eq!(
            dol_data(&p, un, &dol, 255),
            Ok(vec![
                1, 2, 3, 4, 0, 0, 1, 2, 0x12, 0x50, 0x00, 0x26, 0x01, 0x15
            ])
        );
        // A DOL asking for more than the command carries, or a malformed one, ends the tap.
        assert!(dol_data(&p, un, &[0x9F, 0x02, 0xFF], 252).is_err());
        assert!(dol_data(&p, un, &[0x9F, 0x02], 252).is_err());
        assert_eq!(dol_data(&p, un, &[], 252), Ok(Vec::new()));
    }

    #[test]
    fn ppse_entry_with_the_highest_priority_wins() {
        let entry = |aid: &[u8], priority: Option<u8>| {
            let mut children = vec![tlv::encode(0x4F, aid)];
            children.extend(priority.map(|p| tlv::encode(0x87, &[p])));
            tlv::constructed(0x61, &children)
        };
        let fci = |entries: Vec<Vec<u8>>| {
            tlv::constructed(
                0x6F,
                &[
                    tlv::encode(0x84, PPSE),
                    tlv::constructed(0xA5, &[tlv::constructed(0xBF0C, &entries)]),
                ],
            )
        };
        let (a, b, c) = (
            &[0xA0, 0, 0, 0, 1][..],
            &[0xA0, 0, 0, 0, 2][..],
            &[0xA0, 0, 0, 0, 3][..],
        );
        // 87 02 beats no priority and 87 00; 87 01 beats 87 02; equal ranks keep card order.
        let three = fci(vec![
            entry(a, None),
            entry(b, Some(0x02)),
            entry(c, Some(0x00)),
        ]);
        assert_eq!(ppse_choice(&three), Some(b));
        let two = fci(vec![entry(b, Some(0x82)), entry(c, Some(0x01))]);
        assert_eq!(ppse_choice(&two), Some(c));
        assert_eq!(
            ppse_choice(&fci(vec![entry(a, None), entry(b, None)])),
            Some(a)
        );
        assert_eq!(ppse_choice(&fci(Vec::new())), None);
    }

    #[test]
    fn hostile_commands() {
        // 21 commands before the selection, the extended SELECT, 5 more, the chain of 257
        // links of 255 octets and one of 1 (64 KiB), the storm and a last GET DATA.
        assert_eq!(hostile_apdu_count(), 21 + 1 + 5 + 258 + HOSTILE_STORM + 1);
        let chain = hostile_chain();
        assert_eq!(chain.len(), 258);
        let carried: usize = chain.iter().map(|link| link.len() - 5).sum();
        assert_eq!(carried, HOSTILE_CHAIN_LEN);
        assert!(chain[..257]
            .iter()
            .all(|link| link[0] == CLA_CHAINING && link[4] == 0xFF && link.len() == 260));
        assert_eq!(&chain[257][..5], &[0x00, 0xDA, 0x01, 0x00, 0x01]);
        // SELECT F0 'HOSTILE', extended: 00 A4 04 00 00 00 08 F0484F5354494C45 00 00.
        assert_eq!(
            select_extended(&HOSTILE_AID),
            [
                0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x08, 0xF0, 0x48, 0x4F, 0x53, 0x54, 0x49, 0x4C,
                0x45, 0x00, 0x00
            ]
        );
        // Every command of the first part fails to parse or is refused as the table says.
        for (apdu, sw) in hostile_unselected() {
            let parsed = crate::apdu::CommandApdu::parse(&apdu);
            let why = match &parsed {
                Err(_) => StatusWord::WRONG_LENGTH,
                Ok(c) => match (c.header_error(), crate::apdu::classify_select(c)) {
                    (Some(e), _) => e.status_word(),
                    (None, Some(Err(e))) => e.status_word(),
                    (None, Some(Ok(_))) => StatusWord::FILE_NOT_FOUND,
                    (None, None) => StatusWord::NO_PRECISE_DIAGNOSIS,
                },
            };
            assert_eq!(why, sw, "{}", HexBytes(&apdu));
        }
        let script = hostile();
        assert_eq!(script.name, "hostile");
        assert!(matches!(script.steps.last(), Some(Step::Decide(_))));
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
