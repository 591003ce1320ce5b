//! Small card applications that answer the reader scripts: what a wallet would return.
//!
//! What they do: answer C-APDUs with fixed, documented data so that in-process runs have a
//! real conversation to carry — an EMV card ([`EmvCard`]), the demo transit application
//! ([`TransitCard`], the commands of [`scripts`](super::scripts)), and a card that accepts the
//! AID sweep ([`SweepCard`]). What they do not do: cryptography. The EMV "cryptogram" is a
//! deterministic checksum of the transaction data standing in for the issuer key's MAC, so
//! tests can recompute it; it proves nothing. Transit receipts are unsigned. The example
//! wallets of `nfcd-wallets` answer the same scripts with real HMAC and ECDSA.
//!
//! Any `FnMut(&[u8]) -> Vec<u8>` is a [`CardApplet`] too.

use std::vec::Vec;

use super::scripts::{
    TransitBalanceRepr, TransitDebitRepr, TransitReceiptRepr, PPSE, TRANSIT_AID, TRANSIT_CLA,
    TRANSIT_INS_DEBIT, TRANSIT_INS_GET_DATA, TRANSIT_INS_READ_BALANCE, TRANSIT_SIGNATURE_LEN,
    TRANSIT_SW_INSUFFICIENT_FUNDS,
};
use super::tlv::{constructed, encode, parse_one, Dol, Tlv};
use crate::apdu::{select_by_df_name, CommandApdu, StatusWord};

/// Something that answers C-APDUs with R-APDUs (ISO/IEC 7816-4 §5.1).
pub trait CardApplet {
    /// Answer one C-APDU; the R-APDU ends with its status word.
    fn process(&mut self, command: &[u8]) -> Vec<u8>;
}

impl<F: FnMut(&[u8]) -> Vec<u8>> CardApplet for F {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        self(command)
    }
}

/// `data` followed by `sw`.
pub fn response(data: &[u8], sw: StatusWord) -> Vec<u8> {
    let mut out = data.to_vec();
    out.extend_from_slice(&sw.to_bytes());
    out
}

/// A status word alone.
pub fn status(sw: StatusWord) -> Vec<u8> {
    sw.to_bytes().to_vec()
}

/// PDOL of [`EmvCard`]: TTQ (9F66, 4), amount (9F02, 6), unpredictable number (9F37, 4),
/// currency (5F2A, 2).
pub const EMV_PDOL: [u8; 12] = [
    0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04, 0x5F, 0x2A, 0x02,
];
/// CDOL1 of [`EmvCard`]: amount, amount other, country, TVR, currency, date, type, UN.
pub const EMV_CDOL1: [u8; 21] = [
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04,
];
/// AFL of [`EmvCard`]: SFI 1 record 1; SFI 2 records 1–2.
pub const EMV_AFL: [u8; 8] = [0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x02, 0x00];
/// AIP of [`EmvCard`] (EMV Book 3 Annex C1): cardholder verification (byte 1 b5) and terminal
/// risk management (b4), no offline data authentication; EMV mode (byte 2 b8).
pub const EMV_AIP: [u8; 2] = [0x18, 0x80];

/// `6A83`: record not found (ISO/IEC 7816-4 §5.6).
const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);

/// Where the terminal is in the flow with an [`EmvCard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmvSession {
    /// Nothing selected.
    Idle,
    /// The PPSE is selected.
    Ppse,
    /// The application is selected; GET PROCESSING OPTIONS comes next.
    Selected,
    /// GET PROCESSING OPTIONS done (ATC counted): READ RECORD and GENERATE AC.
    Processing,
    /// The GENERATE AC of this transaction was answered; READ RECORD still works.
    Completed,
}

/// An EMV contactless card application behind a PPSE, answering the flow documented in
/// [`scripts`](super::scripts) ("The EMV contactless flow") the way the payment wallet of
/// `nfcd-wallets` does, with its own data objects: a PDOL that also asks for the TTQ, and
/// records in two SFIs, so the script is seen to follow the card rather than constants.
///
/// Like the wallet it counts the ATC at GET PROCESSING OPTIONS, answers one GENERATE AC per
/// transaction, always with an ARQC, and refuses commands out of order with `6985`. Unlike the
/// wallet, its cryptogram is [`EmvCard::cryptogram`], a stand-in without cryptography.
#[derive(Debug, Clone)]
pub struct EmvCard {
    aid: Vec<u8>,
    key: u64,
    atc: u16,
    session: EmvSession,
    last_cryptogram: Option<[u8; 8]>,
}

impl EmvCard {
    /// A card with application `aid` and a stand-in issuer key.
    pub fn new(aid: &[u8], key: u64) -> EmvCard {
        EmvCard {
            aid: aid.to_vec(),
            key,
            atc: 0,
            session: EmvSession::Idle,
            last_cryptogram: None,
        }
    }

    /// A Mastercard-branded demo card (AID A0000000041010).
    pub fn demo() -> EmvCard {
        EmvCard::new(
            &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
            0x0123_4567_89AB_CDEF,
        )
    }

    /// The application identifier.
    pub fn aid(&self) -> &[u8] {
        &self.aid
    }

    /// Application transaction counter: GET PROCESSING OPTIONS answered so far.
    pub fn atc(&self) -> u16 {
        self.atc
    }

    /// The cryptogram of the last GENERATE AC.
    pub fn last_cryptogram(&self) -> Option<[u8; 8]> {
        self.last_cryptogram
    }

    /// The stand-in cryptogram over `cdol_data` at `atc`: FNV-1a of key, ATC and data,
    /// finished with an xorshift round. Deterministic, not secret.
    pub fn cryptogram(key: u64, atc: u16, cdol_data: &[u8]) -> [u8; 8] {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ key;
        for &b in atc.to_be_bytes().iter().chain(cdol_data) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        h.to_be_bytes()
    }

    fn ppse_fci(&self) -> Vec<u8> {
        let entry = constructed(
            0x61,
            &[
                encode(0x4F, &self.aid),
                encode(0x50, b"DEMO CARD"),
                encode(0x87, &[0x01]),
            ],
        );
        constructed(
            0x6F,
            &[
                encode(0x84, PPSE),
                constructed(0xA5, &[constructed(0xBF0C, &[entry])]),
            ],
        )
    }

    fn application_fci(&self) -> Vec<u8> {
        constructed(
            0x6F,
            &[
                encode(0x84, &self.aid),
                constructed(
                    0xA5,
                    &[encode(0x50, b"DEMO CARD"), encode(0x9F38, &EMV_PDOL)],
                ),
            ],
        )
    }

    /// Record `record` of SFI `sfi`: `Err` is the status word (unknown SFI or record).
    fn record(sfi: u8, record: u8) -> Result<Vec<u8>, StatusWord> {
        let body = match (sfi, record) {
            // Track 2 equivalent data and cardholder name.
            (1, 1) => vec![
                encode(
                    0x57,
                    &[
                        0x54, 0x13, 0x33, 0x00, 0x89, 0x01, 0x00, 0x12, 0xD2, 0x81, 0x22, 0x01,
                    ],
                ),
                encode(0x5F20, b"DEMO/CARDHOLDER"),
            ],
            // PAN, expiry, CDOL1.
            (2, 1) => vec![
                encode(0x5A, &[0x54, 0x13, 0x33, 0x00, 0x89, 0x01, 0x00, 0x12]),
                encode(0x5F24, &[0x28, 0x12, 0x31]),
                encode(0x8C, &EMV_CDOL1),
            ],
            // Application usage control and CVM list.
            (2, 2) => vec![
                encode(0x9F07, &[0xFF, 0x00]),
                encode(0x8E, &[0, 0, 0, 0, 0, 0, 0, 0, 0x1F, 0x03]),
            ],
            (1 | 2, _) => return Err(RECORD_NOT_FOUND),
            _ => return Err(StatusWord::FILE_NOT_FOUND),
        };
        Ok(constructed(0x70, &body))
    }

    fn get_processing_options(&mut self, apdu: &CommandApdu<'_>) -> Vec<u8> {
        if (apdu.p1, apdu.p2) != (0x00, 0x00) {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if self.session != EmvSession::Selected {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let pdol_data = match parse_one(apdu.data) {
            Ok((
                Tlv {
                    tag: 0x83, value, ..
                },
                [],
            )) => value,
            _ => return status(StatusWord::INCORRECT_DATA),
        };
        if pdol_data.len() != Dol::new_unchecked(&EMV_PDOL).data_len() {
            return status(StatusWord::WRONG_LENGTH);
        }
        // An exhausted ATC blocks the application rather than repeat cryptogram inputs.
        let Some(atc) = self.atc.checked_add(1) else {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        self.atc = atc;
        self.session = EmvSession::Processing;
        let template = constructed(0x77, &[encode(0x82, &EMV_AIP), encode(0x94, &EMV_AFL)]);
        response(&template, StatusWord::NO_ERROR)
    }

    fn read_record(&mut self, apdu: &CommandApdu<'_>) -> Vec<u8> {
        if apdu.p2 & 0x07 != 0x04 || apdu.p1 == 0 {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if !matches!(self.session, EmvSession::Processing | EmvSession::Completed) {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        match EmvCard::record(apdu.p2 >> 3, apdu.p1) {
            Ok(record) => response(&record, StatusWord::NO_ERROR),
            Err(sw) => status(sw),
        }
    }

    fn generate_ac(&mut self, apdu: &CommandApdu<'_>) -> Vec<u8> {
        if self.session != EmvSession::Processing {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if apdu.data.len() != Dol::new_unchecked(&EMV_CDOL1).data_len() {
            return status(StatusWord::WRONG_LENGTH);
        }
        self.session = EmvSession::Completed;
        let ac = EmvCard::cryptogram(self.key, self.atc, apdu.data);
        self.last_cryptogram = Some(ac);
        let template = constructed(
            0x77,
            &[
                // ARQC: this card always goes online.
                encode(0x9F27, &[0x80]),
                encode(0x9F36, &self.atc.to_be_bytes()),
                encode(0x9F26, &ac),
                encode(0x9F10, &[0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00]),
            ],
        );
        response(&template, StatusWord::NO_ERROR)
    }
}

impl CardApplet for EmvCard {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(apdu) = CommandApdu::parse(command) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        if let Some(select) = select_by_df_name(&apdu) {
            return if select.name == PPSE {
                self.session = EmvSession::Ppse;
                response(&self.ppse_fci(), StatusWord::NO_ERROR)
            } else if select.name == self.aid.as_slice() {
                self.session = EmvSession::Selected;
                response(&self.application_fci(), StatusWord::NO_ERROR)
            } else {
                status(StatusWord::FILE_NOT_FOUND)
            };
        }
        match (apdu.cla, apdu.ins) {
            (0x80, 0xA8) => self.get_processing_options(&apdu),
            (0x00, 0xB2) => self.read_record(&apdu),
            (0x80, 0xAE) => self.generate_ac(&apdu),
            _ => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// The demo transit application: a stored balance and a debit counter behind the commands
/// documented in [`scripts`](super::scripts) (READ BALANCE, DEBIT).
///
/// It cannot sign: its receipts carry an all-zero signature, which any gate that checks
/// receipts rejects, and it answers GET PUBLIC KEY with `6A88` (no key). The transit wallet
/// of `nfcd-wallets` answers the same commands with real ECDSA P-256 receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitCard {
    state: TransitBalanceRepr,
    selected: bool,
}

impl TransitCard {
    /// A card holding `balance` cents, no debits yet.
    pub fn new(balance: u32) -> TransitCard {
        TransitCard {
            state: TransitBalanceRepr {
                balance,
                counter: 0,
            },
            selected: false,
        }
    }

    /// The balance.
    pub fn balance(&self) -> u32 {
        self.state.balance
    }

    /// Debits so far.
    pub fn counter(&self) -> u32 {
        self.state.counter
    }

    fn debit(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(debit) = TransitDebitRepr::parse(data) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        let Some(after) = self.state.debited(debit.fare) else {
            return status(TRANSIT_SW_INSUFFICIENT_FUNDS);
        };
        self.state = after;
        let receipt = TransitReceiptRepr {
            after: self.state,
            signature: [0; TRANSIT_SIGNATURE_LEN],
        };
        response(&receipt.emit(), StatusWord::NO_ERROR)
    }
}

impl CardApplet for TransitCard {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(apdu) = CommandApdu::parse(command) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        if let Some(select) = select_by_df_name(&apdu) {
            self.selected = select.name == TRANSIT_AID;
            return if self.selected {
                response(
                    &encode(0x6F, &encode(0x84, &TRANSIT_AID)),
                    StatusWord::NO_ERROR,
                )
            } else {
                status(StatusWord::FILE_NOT_FOUND)
            };
        }
        if apdu.cla != TRANSIT_CLA {
            // Class 00 is known (SELECT), just not with this INS.
            return status(match apdu.cla {
                0x00 => StatusWord::INS_NOT_SUPPORTED,
                _ => StatusWord::CLA_NOT_SUPPORTED,
            });
        }
        if !self.selected {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let p1p2 = u16::from_be_bytes([apdu.p1, apdu.p2]);
        match apdu.ins {
            TRANSIT_INS_READ_BALANCE | TRANSIT_INS_DEBIT if p1p2 != 0 => {
                status(StatusWord::INCORRECT_P1_P2)
            }
            TRANSIT_INS_READ_BALANCE if !apdu.data.is_empty() => status(StatusWord::WRONG_LENGTH),
            TRANSIT_INS_READ_BALANCE => response(&self.state.emit(), StatusWord::NO_ERROR),
            TRANSIT_INS_DEBIT => self.debit(apdu.data),
            TRANSIT_INS_GET_DATA => status(StatusWord::REFERENCED_DATA_NOT_FOUND),
            _ => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// Accepts SELECT of every [`sweep_aid`](super::scripts::sweep_aid) with `9000` (no FCI) and
/// answers `6A82` to any other SELECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepCard {
    selects: u32,
}

impl SweepCard {
    /// A new card.
    pub fn new() -> SweepCard {
        SweepCard::default()
    }

    /// SELECTs answered with `9000`.
    pub fn selects(&self) -> u32 {
        self.selects
    }
}

impl CardApplet for SweepCard {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(apdu) = CommandApdu::parse(command) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        match select_by_df_name(&apdu) {
            Some(select)
                if select.name.len() == 8 && select.name[..7] == [0xF0, 0, 0, 0, 0, 0, 0] =>
            {
                self.selects += 1;
                status(StatusWord::NO_ERROR)
            }
            Some(_) => status(StatusWord::FILE_NOT_FOUND),
            None => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scripts::{
        generate_ac, get_processing_options, read_record, select_aid, transit_debit, SELECT_PPSE,
        TRANSIT_GET_PUBLIC_KEY, TRANSIT_READ_BALANCE,
    };

    fn sw(rapdu: &[u8]) -> Option<StatusWord> {
        StatusWord::from_response(rapdu)
    }

    const ARQC_DATA: [u8; 29] = [0; 29];

    #[test]
    fn emv_card_refuses_commands_out_of_order() {
        let mut card = EmvCard::demo();
        let aid = card.aid().to_vec();
        let pdol_data = [0u8; 16];
        // GPO before SELECT, READ RECORD and GENERATE AC before GPO → 6985.
        let gpo = get_processing_options(&pdol_data);
        assert_eq!(
            sw(&card.process(&gpo)),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        card.process(&select_aid(&aid));
        assert_eq!(
            sw(&card.process(&read_record(1, 1))),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        assert_eq!(
            sw(&card.process(&generate_ac(&ARQC_DATA))),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        // GPO after the PPSE only → 6985, and the ATC is not spent.
        card.process(&SELECT_PPSE);
        assert_eq!(
            sw(&card.process(&gpo)),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        assert_eq!(card.atc(), 0);

        // SELECT AID, GPO → 77 { 82 1880, 94 AFL } 9000, ATC 1.
        card.process(&select_aid(&aid));
        let mut want = std::vec![0x77, 0x0E, 0x82, 0x02, 0x18, 0x80, 0x94, 0x08];
        want.extend_from_slice(&EMV_AFL);
        want.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(card.process(&gpo), want);
        assert_eq!(card.atc(), 1);
        // READ RECORD: unknown record 6A83, unknown SFI 6A82.
        assert_eq!(card.process(&read_record(2, 3)), [0x6A, 0x83]);
        assert_eq!(card.process(&read_record(3, 1)), [0x6A, 0x82]);
        // One GENERATE AC per transaction: the second → 6985; records stay readable.
        assert_eq!(
            sw(&card.process(&generate_ac(&ARQC_DATA))),
            Some(StatusWord::NO_ERROR)
        );
        assert_eq!(
            card.last_cryptogram(),
            Some(EmvCard::cryptogram(0x0123_4567_89AB_CDEF, 1, &ARQC_DATA))
        );
        assert_eq!(
            sw(&card.process(&generate_ac(&ARQC_DATA))),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        assert_eq!(
            sw(&card.process(&read_record(1, 1))),
            Some(StatusWord::NO_ERROR)
        );
    }

    #[test]
    fn emv_card_checks_the_gpo_and_generate_ac_data() {
        let mut card = EmvCard::demo();
        let aid = card.aid().to_vec();
        card.process(&select_aid(&aid));
        // Not an 83 template → 6A80; PDOL data of the wrong length → 6700.
        let no_template = [0x80, 0xA8, 0x00, 0x00, 0x02, 0x84, 0x00, 0x00];
        assert_eq!(card.process(&no_template), [0x6A, 0x80]);
        assert_eq!(
            card.process(&get_processing_options(&[0; 12])),
            [0x67, 0x00]
        );
        // P1-P2 other than 0000 → 6A86.
        let mut wrong_p1 = get_processing_options(&[0; 16]);
        wrong_p1[2] = 0x01;
        assert_eq!(card.process(&wrong_p1), [0x6A, 0x86]);
        card.process(&get_processing_options(&[0; 16]));
        // CDOL1 data of the wrong length → 6700.
        assert_eq!(card.process(&generate_ac(&[0; 28])), [0x67, 0x00]);
    }

    #[test]
    fn transit_card_transcript() {
        let mut card = TransitCard::new(300);
        // Before SELECT → 6985; SELECT → 6F { 84 AID } 9000.
        assert_eq!(card.process(&TRANSIT_READ_BALANCE), [0x69, 0x85]);
        let mut fci = std::vec![0x6F, 0x0E, 0x84, 0x0C];
        fci.extend_from_slice(&TRANSIT_AID);
        fci.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(card.process(&select_aid(&TRANSIT_AID)), fci);
        // READ BALANCE → 0000012C 00000000 9000.
        assert_eq!(
            card.process(&TRANSIT_READ_BALANCE),
            [0x00, 0x00, 0x01, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x90, 0x00]
        );
        // DEBIT 2.50 → 00000032 00000001, unsigned receipt, 9000.
        let debit = TransitDebitRepr {
            fare: 250,
            gate_id: *b"NFCDGATE",
            timestamp: 0,
        };
        let r = card.process(&transit_debit(&debit));
        assert_eq!(r.len(), TransitReceiptRepr::LEN + 2);
        assert_eq!(r[..8], [0x00, 0x00, 0x00, 0x32, 0x00, 0x00, 0x00, 0x01]);
        assert!(r[8..72].iter().all(|&b| b == 0));
        // DEBIT beyond the balance → 6985, nothing debited.
        assert_eq!(card.process(&transit_debit(&debit)), [0x69, 0x85]);
        assert_eq!((card.balance(), card.counter()), (50, 1));
        // Short DEBIT data → 6700; P1-P2 not 0000 → 6A86; no key → 6A88; other INS → 6D00.
        assert_eq!(
            card.process(&[0x80, 0x54, 0x00, 0x00, 0x02, 0x00, 0x01, 0x48]),
            [0x67, 0x00]
        );
        assert_eq!(card.process(&[0x80, 0x5C, 0x01, 0x00, 0x08]), [0x6A, 0x86]);
        assert_eq!(card.process(&TRANSIT_GET_PUBLIC_KEY), [0x6A, 0x88]);
        assert_eq!(card.process(&[0x80, 0x50, 0x00, 0x00]), [0x6D, 0x00]);
        assert_eq!(card.process(&[0x00, 0x5C, 0x00, 0x00, 0x08]), [0x6D, 0x00]);
        assert_eq!(card.process(&[0xA0, 0x5C, 0x00, 0x00, 0x08]), [0x6E, 0x00]);
    }
}
