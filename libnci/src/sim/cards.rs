//! Small card applications that answer the reader scripts: what a wallet would return.
//!
//! What they do: answer C-APDUs with fixed, documented data so that in-process runs have a
//! real conversation to carry — an EMV card ([`EmvCard`]), the demo transit wallet
//! ([`TransitCard`], the commands of [`scripts`](super::scripts)), and a card that accepts the
//! AID sweep ([`SweepCard`]). What they do not do: cryptography. The EMV "cryptogram" is a
//! deterministic checksum of the transaction data standing in for the issuer key's MAC, so
//! tests can recompute it; it proves nothing.
//!
//! Any `FnMut(&[u8]) -> Vec<u8>` is a [`CardApplet`] too.

use std::vec::Vec;

use super::scripts::{
    PPSE, TRANSIT_AID, TRANSIT_CLA, TRANSIT_INS_DEBIT, TRANSIT_INS_READ_BALANCE,
    TRANSIT_SW_INSUFFICIENT_FUNDS,
};
use super::tlv::encode;
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
/// AIP of [`EmvCard`]: SDA, cardholder verification, terminal risk management, EMV mode.
pub const EMV_AIP: [u8; 2] = [0x19, 0x80];

/// Octets of DOL related data a DOL asks for.
fn dol_len(dol: &[u8]) -> usize {
    super::tlv::parse_dol(dol).map_or(0, |entries| entries.iter().map(|(_, len)| len).sum())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmvSelected {
    None,
    Ppse,
    Application,
}

/// An EMV contactless card application behind a PPSE.
#[derive(Debug, Clone)]
pub struct EmvCard {
    aid: Vec<u8>,
    key: u64,
    atc: u16,
    selected: EmvSelected,
    processing: bool,
    last_cryptogram: Option<[u8; 8]>,
}

impl EmvCard {
    /// A card with application `aid` and a stand-in issuer key.
    pub fn new(aid: &[u8], key: u64) -> EmvCard {
        EmvCard {
            aid: aid.to_vec(),
            key,
            atc: 0,
            selected: EmvSelected::None,
            processing: false,
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

    /// Application transaction counter.
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
        let entry = [
            encode(0x4F, &self.aid),
            encode(0x50, b"DEMO CARD"),
            encode(0x87, &[0x01]),
        ]
        .concat();
        let issuer = encode(0xBF0C, &encode(0x61, &entry));
        encode(0x6F, &[encode(0x84, PPSE), encode(0xA5, &issuer)].concat())
    }

    fn application_fci(&self) -> Vec<u8> {
        let proprietary = [encode(0x50, b"DEMO CARD"), encode(0x9F38, &EMV_PDOL)].concat();
        encode(
            0x6F,
            &[encode(0x84, &self.aid), encode(0xA5, &proprietary)].concat(),
        )
    }

    fn record(sfi: u8, record: u8) -> Option<Vec<u8>> {
        let body = match (sfi, record) {
            // Track 2 equivalent data and cardholder name.
            (1, 1) => [
                encode(
                    0x57,
                    &[
                        0x54, 0x13, 0x33, 0x00, 0x89, 0x01, 0x00, 0x12, 0xD2, 0x81, 0x22, 0x01,
                    ],
                ),
                encode(0x5F20, b"DEMO/CARDHOLDER"),
            ]
            .concat(),
            // PAN, expiry, CDOL1.
            (2, 1) => [
                encode(0x5A, &[0x54, 0x13, 0x33, 0x00, 0x89, 0x01, 0x00, 0x12]),
                encode(0x5F24, &[0x28, 0x12, 0x31]),
                encode(0x8C, &EMV_CDOL1),
            ]
            .concat(),
            // Application usage control and CVM list.
            (2, 2) => [
                encode(0x9F07, &[0xFF, 0x00]),
                encode(0x8E, &[0, 0, 0, 0, 0, 0, 0, 0, 0x1F, 0x03]),
            ]
            .concat(),
            _ => return None,
        };
        Some(encode(0x70, &body))
    }
}

impl CardApplet for EmvCard {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(apdu) = CommandApdu::parse(command) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        if let Some(select) = select_by_df_name(&apdu) {
            return if select.name == PPSE {
                self.selected = EmvSelected::Ppse;
                self.processing = false;
                response(&self.ppse_fci(), StatusWord::NO_ERROR)
            } else if select.name == self.aid.as_slice() {
                self.selected = EmvSelected::Application;
                self.processing = false;
                response(&self.application_fci(), StatusWord::NO_ERROR)
            } else {
                status(StatusWord::FILE_NOT_FOUND)
            };
        }
        match (apdu.cla, apdu.ins) {
            // GET PROCESSING OPTIONS: 83, the PDOL data.
            (0x80, 0xA8) => {
                if self.selected != EmvSelected::Application {
                    return status(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                let want = dol_len(&EMV_PDOL);
                match apdu.data {
                    [0x83, len, data @ ..] if usize::from(*len) == want && data.len() == want => {
                        self.processing = true;
                        let body = [encode(0x82, &EMV_AIP), encode(0x94, &EMV_AFL)].concat();
                        response(&encode(0x77, &body), StatusWord::NO_ERROR)
                    }
                    _ => status(StatusWord::WRONG_LENGTH),
                }
            }
            // READ RECORD: P1 record, P2 SFI << 3 | 4.
            (0x00, 0xB2) => {
                if self.selected != EmvSelected::Application {
                    return status(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                if apdu.p2 & 0x07 != 0x04 {
                    return status(StatusWord::INCORRECT_P1_P2);
                }
                match EmvCard::record(apdu.p2 >> 3, apdu.p1) {
                    Some(record) => response(&record, StatusWord::NO_ERROR),
                    // Record not found.
                    None => status(StatusWord(0x6A83)),
                }
            }
            // GENERATE AC with the CDOL1 data.
            (0x80, 0xAE) => {
                if !self.processing {
                    return status(StatusWord::CONDITIONS_NOT_SATISFIED);
                }
                if apdu.data.len() != dol_len(&EMV_CDOL1) {
                    return status(StatusWord::WRONG_LENGTH);
                }
                self.processing = false;
                self.atc = self.atc.wrapping_add(1);
                let ac = EmvCard::cryptogram(self.key, self.atc, apdu.data);
                self.last_cryptogram = Some(ac);
                let body = [
                    // ARQC.
                    encode(0x9F27, &[0x80]),
                    encode(0x9F36, &self.atc.to_be_bytes()),
                    encode(0x9F26, &ac),
                    encode(0x9F10, &[0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00]),
                ]
                .concat();
                response(&encode(0x77, &body), StatusWord::NO_ERROR)
            }
            _ => status(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// The demo transit application: a stored balance, READ BALANCE and DEBIT as documented in
/// [`scripts`](super::scripts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitCard {
    balance: u32,
    selected: bool,
}

impl TransitCard {
    /// A card holding `balance` minor units.
    pub fn new(balance: u32) -> TransitCard {
        TransitCard {
            balance,
            selected: false,
        }
    }

    /// The balance.
    pub fn balance(&self) -> u32 {
        self.balance
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
            return status(StatusWord::CLA_NOT_SUPPORTED);
        }
        if !self.selected {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        match apdu.ins {
            TRANSIT_INS_READ_BALANCE => response(&self.balance.to_be_bytes(), StatusWord::NO_ERROR),
            TRANSIT_INS_DEBIT => {
                let Ok(amount) = <[u8; 4]>::try_from(apdu.data) else {
                    return status(StatusWord::WRONG_LENGTH);
                };
                let amount = u32::from_be_bytes(amount);
                match self.balance.checked_sub(amount) {
                    Some(left) => {
                        self.balance = left;
                        response(&left.to_be_bytes(), StatusWord::NO_ERROR)
                    }
                    None => status(TRANSIT_SW_INSUFFICIENT_FUNDS),
                }
            }
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
