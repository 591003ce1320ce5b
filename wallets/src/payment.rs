//! A test EMV contactless payment application, in the style of an online-only M/Chip card:
//! SELECT PPSE → SELECT AID → GET PROCESSING OPTIONS → READ RECORD → GENERATE AC.
//!
//! Follows the command set of EMV Book 1 §11–12 (SELECT, PPSE) and Book 3 §6.5 (GENERATE AC,
//! GET DATA, GET PROCESSING OPTIONS, READ RECORD), with the response format 2 templates (`77`)
//! of Book 3 §6.5.5.4. It is a test card, not a real one:
//! - the card data is obviously fake: PAN `5555555555554444` (the well-known Mastercard test
//!   number), expiry 12/2029, cardholder `NFCD/TEST CARD`;
//! - the application cryptogram is not the scheme's (EMV Book 2 §8.1, 3DES/AES MACs with
//!   session keys): it is `HMAC-SHA256(card key, UN ‖ amount authorised ‖ ATC)` truncated to
//!   8 bytes ([`application_cryptogram`]), so a test issuer can check it with the card key;
//! - no offline data authentication (SDA/DDA/CDA), no PIN, no second GENERATE AC, no issuer
//!   scripts: the AIP says so and the card always asks to go online (ARQC) unless the
//!   terminal asks for a decline (AAC).
//!
//! The terminal's side of this flow, and what it takes from each answer, is documented once
//! in `libnci::sim::scripts` ("The EMV contactless flow"); its `emv` script completes a
//! purchase against this card (`tests/reader_scripts.rs`).
//!
//! The default AID is `A0000000041010` (Mastercard credit/debit) so that ordinary reader
//! scripts and test terminals select it; a real terminal would send the ARQC online and the
//! issuer would decline it.

use ring::{digest, hmac};

use crate::registration::ApduHandler;
use libnci::apdu::{CommandApdu, StatusWord};
use libnci::sim::cards::{response, status};
use libnci::sim::scripts::PPSE;
use libnci::sim::tlv::{self, Dol};

/// The Proximity Payment System Environment name, selected first by contactless terminals
/// (EMV Book B §3.3, EMV Book 1 §12.3.2); the reader scripts' [`PPSE`].
pub const PPSE_NAME: &[u8] = PPSE;

/// Default application identifier: `A0000000041010` (RID `A000000004`, PIX `1010`).
pub const DEFAULT_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];

/// The test PAN, Luhn-valid and never issued.
pub const PAN: &str = "5555555555554444";

/// Application label (`50`), shown by terminals.
pub const LABEL: &str = "NFCD TEST DEBIT";

/// Cardholder name (`5F20`).
pub const CARDHOLDER_NAME: &str = "NFCD/TEST CARD";

/// Expiry date (`5F24`, YYMMDD).
const EXPIRY: [u8; 3] = [0x29, 0x12, 0x31];

/// Effective date (`5F25`, YYMMDD).
const EFFECTIVE: [u8; 3] = [0x24, 0x01, 0x01];

/// Processing options DOL (`9F38`): amount authorised, transaction currency, unpredictable
/// number. The terminal sends their values in GET PROCESSING OPTIONS.
pub const PDOL: Dol<'static> = Dol::new_unchecked(&[
    0x9F, 0x02, 0x06, // amount authorised, n12
    0x5F, 0x2A, 0x02, // transaction currency code, n3
    0x9F, 0x37, 0x04, // unpredictable number
]);

/// Card risk management DOL 1 (`8C`), the data of the first GENERATE AC: amount authorised,
/// amount other, terminal country, TVR, transaction currency, date, type, unpredictable number.
pub const CDOL1: Dol<'static> = Dol::new_unchecked(&[
    0x9F, 0x02, 0x06, // amount authorised
    0x9F, 0x03, 0x06, // amount other
    0x9F, 0x1A, 0x02, // terminal country code
    0x95, 0x05, // terminal verification results
    0x5F, 0x2A, 0x02, // transaction currency code
    0x9A, 0x03, // transaction date
    0x9C, 0x01, // transaction type
    0x9F, 0x37, 0x04, // unpredictable number
]);

/// Application interchange profile (`82`, EMV Book 3 Annex C1): byte 1 = cardholder
/// verification supported (b5) + terminal risk management to be performed (b4); no SDA, DDA,
/// CDA or issuer authentication.
pub const AIP: [u8; 2] = [0x18, 0x00];

/// Application file locator (`94`, EMV Book 3 §10.2): SFI 1, records 1 to 2, none of them
/// used for offline data authentication.
pub const AFL: [u8; 4] = [0x01 << 3, 0x01, 0x02, 0x00];

/// `6A83`: record not found (ISO/IEC 7816-4 §5.6, table 6).
const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);

/// The short file identifier the records live in.
const SFI: u8 = 1;

/// Issuer application data (`9F10`): key index 01, cryptogram version `99` (this test
/// algorithm; not a scheme CVN), two bytes of card verification results left zero.
pub const ISSUER_APPLICATION_DATA: [u8; 4] = [0x01, 0x99, 0x00, 0x00];

/// Cryptogram information data (`9F27`, EMV Book 3 §6.5.5.4): type of the cryptogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptogramType {
    /// Application authentication cryptogram: declined.
    Aac,
    /// Transaction certificate: approved offline (never produced: the card is online-only).
    Tc,
    /// Authorisation request cryptogram: go online.
    Arqc,
}

impl CryptogramType {
    /// The reference control parameter of GENERATE AC P1 bits 8–7 (EMV Book 3 Table 12).
    pub fn from_p1(p1: u8) -> Option<Self> {
        match p1 & 0xC0 {
            0x00 => Some(CryptogramType::Aac),
            0x40 => Some(CryptogramType::Tc),
            0x80 => Some(CryptogramType::Arqc),
            _ => None,
        }
    }

    /// The value of the cryptogram information data (`9F27`).
    pub fn cid(self) -> u8 {
        match self {
            CryptogramType::Aac => 0x00,
            CryptogramType::Tc => 0x40,
            CryptogramType::Arqc => 0x80,
        }
    }
}

/// The card key derived from a service id when none is given:
/// `SHA-256("nfcd-payment-wallet test key v1:" ‖ id)`. Public on purpose: a test issuer
/// recomputes it to check cryptograms.
pub fn derive_card_key(id: &str) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"nfcd-payment-wallet test key v1:");
    context.update(id.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// The application cryptogram (`9F26`) of this test card:
/// `HMAC-SHA256(key, UN ‖ amount authorised ‖ ATC)`, first 8 bytes.
pub fn application_cryptogram(
    key: &[u8; 32],
    unpredictable_number: &[u8; 4],
    amount_authorised: &[u8; 6],
    atc: u16,
) -> [u8; 8] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(unpredictable_number);
    context.update(amount_authorised);
    context.update(&atc.to_be_bytes());
    let tag = context.sign();
    let mut cryptogram = [0u8; 8];
    cryptogram.copy_from_slice(&tag.as_ref()[..8]);
    cryptogram
}

/// Packs decimal digits and the track 2 field separator `D` into BCD nibbles, padding an odd
/// count with `F` (EMV Book 3 Annex A, format `cn` / track 2 equivalent data `57`).
/// `None` if a character is neither a digit nor `D`.
pub fn pack_nibbles(text: &str) -> Option<Vec<u8>> {
    let mut nibbles = text
        .chars()
        .map(|c| match c {
            'D' => Some(0x0D),
            _ => c.to_digit(10).map(|d| d as u8),
        })
        .collect::<Option<Vec<u8>>>()?;
    if nibbles.len() % 2 == 1 {
        nibbles.push(0x0F);
    }
    Some(
        nibbles
            .chunks_exact(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect(),
    )
}

/// Where the terminal is in the flow with this card (one session = one tap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Session {
    /// Nothing selected yet, or the session was deactivated.
    Idle,
    /// The PPSE was selected; the application is not.
    Ppse,
    /// The application is selected; GET PROCESSING OPTIONS comes next.
    Selected,
    /// GET PROCESSING OPTIONS done (ATC counted): READ RECORD and GENERATE AC are allowed.
    Processing,
    /// The one GENERATE AC of this tap was answered.
    Completed,
}

/// The outcome of the last GENERATE AC, for logging and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorisation {
    /// Type of cryptogram returned.
    pub cryptogram_type: CryptogramType,
    /// Application transaction counter used.
    pub atc: u16,
    /// Amount authorised (`9F02`, n12 BCD).
    pub amount_authorised: [u8; 6],
    /// The terminal's unpredictable number (`9F37`).
    pub unpredictable_number: [u8; 4],
    /// The application cryptogram (`9F26`).
    pub cryptogram: [u8; 8],
}

/// The payment application; an [`ApduHandler`].
#[derive(Debug)]
pub struct PaymentCard {
    aid: Vec<u8>,
    key: [u8; 32],
    atc: u16,
    session: Session,
    last_authorisation: Option<Authorisation>,
}

impl PaymentCard {
    /// A card answering to `aid`, computing cryptograms with `key`, ATC starting at 0 (the first
    /// tap uses ATC 1).
    pub fn new(aid: Vec<u8>, key: [u8; 32]) -> Self {
        PaymentCard {
            aid,
            key,
            atc: 0,
            session: Session::Idle,
            last_authorisation: None,
        }
    }

    /// The application transaction counter (`9F36`): number of GET PROCESSING OPTIONS so far.
    pub fn atc(&self) -> u16 {
        self.atc
    }

    /// The AID this card answers to.
    pub fn aid(&self) -> &[u8] {
        &self.aid
    }

    /// The last GENERATE AC answered, if any.
    pub fn last_authorisation(&self) -> Option<&Authorisation> {
        self.last_authorisation.as_ref()
    }

    /// Dispatches on CLA and INS (ISO/IEC 7816-4 §5.4.1; EMV uses CLA `00` for the
    /// inter-industry commands and `80` for its own).
    fn handle(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        match (command.cla, command.ins) {
            (0x00, 0xA4) => self.handle_select(command),
            (0x00, 0xB2) => self.handle_read_record(command),
            (0x80, 0xA8) => self.handle_get_processing_options(command),
            (0x80, 0xAE) => self.handle_generate_ac(command),
            (0x80, 0xCA) => self.handle_get_data(command),
            (0x00 | 0x80, _) => status(StatusWord::INS_NOT_SUPPORTED),
            _ => status(StatusWord::CLA_NOT_SUPPORTED),
        }
    }

    /// SELECT by DF name (EMV Book 1 §11.3): P1 `04`, P2 `00` (first or only occurrence) or
    /// `02` (next occurrence, of which there is none). A partial name selects the application
    /// if it is a prefix of the AID (Book 1 §12.3.3).
    fn handle_select(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p1 != 0x04 || !matches!(command.p2, 0x00 | 0x02) {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        let name = command.data;
        let is_ppse = name == PPSE_NAME;
        let is_aid = name.len() >= 5 && self.aid.starts_with(name);
        if command.p2 == 0x02 || !(is_ppse || is_aid) {
            return status(StatusWord::FILE_NOT_FOUND);
        }
        if is_ppse {
            self.session = Session::Ppse;
            response(&self.ppse_fci(), StatusWord::NO_ERROR)
        } else {
            self.session = Session::Selected;
            response(&self.application_fci(), StatusWord::NO_ERROR)
        }
    }

    /// FCI of the PPSE (EMV Book B Table 3-2): `6F { 84 name, A5 { BF0C { 61 { 4F AID, 50
    /// label, 87 priority } } } }`.
    fn ppse_fci(&self) -> Vec<u8> {
        let directory_entry = tlv::constructed(
            0x61,
            &[
                tlv::encode(0x4F, &self.aid),
                tlv::encode(0x50, LABEL.as_bytes()),
                tlv::encode(0x87, &[0x01]),
            ],
        );
        tlv::constructed(
            0x6F,
            &[
                tlv::encode(0x84, PPSE_NAME),
                tlv::constructed(0xA5, &[tlv::constructed(0xBF0C, &[directory_entry])]),
            ],
        )
    }

    /// FCI of the application (EMV Book 1 Table 45): `6F { 84 AID, A5 { 50 label, 87
    /// priority, 9F38 PDOL, 5F2D language } }`.
    fn application_fci(&self) -> Vec<u8> {
        tlv::constructed(
            0x6F,
            &[
                tlv::encode(0x84, &self.aid),
                tlv::constructed(
                    0xA5,
                    &[
                        tlv::encode(0x50, LABEL.as_bytes()),
                        tlv::encode(0x87, &[0x01]),
                        tlv::encode(0x9F38, PDOL.as_bytes()),
                        tlv::encode(0x5F2D, b"en"),
                    ],
                ),
            ],
        )
    }

    /// GET PROCESSING OPTIONS (EMV Book 3 §6.5.8): P1P2 `0000`, data `83 L <PDOL data>`.
    /// Counts the transaction (ATC + 1) and answers format 2: `77 { 82 AIP, 94 AFL }`.
    fn handle_get_processing_options(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if self.session != Session::Selected {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let pdol_data = match tlv::parse_one(command.data) {
            Ok((
                tlv::Tlv {
                    tag: 0x83, value, ..
                },
                [],
            )) => value,
            Ok(_) | Err(_) => return status(StatusWord::INCORRECT_DATA),
        };
        if pdol_data.len() != PDOL.data_len() {
            return status(StatusWord::WRONG_LENGTH);
        }
        // An exhausted ATC blocks the application (EMV Book 3 §6.5.8.4 lets the card refuse
        // GPO); wrapping around would repeat cryptogram inputs.
        let Some(atc) = self.atc.checked_add(1) else {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        self.atc = atc;
        self.session = Session::Processing;
        let template = tlv::constructed(0x77, &[tlv::encode(0x82, &AIP), tlv::encode(0x94, &AFL)]);
        response(&template, StatusWord::NO_ERROR)
    }

    /// READ RECORD (EMV Book 3 §6.5.11): P1 record number, P2 `SFI << 3 | 100b`.
    fn handle_read_record(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p2 & 0x07 != 0x04 || command.p1 == 0 {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if !command.data.is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        if !matches!(self.session, Session::Processing | Session::Completed) {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if command.p2 >> 3 != SFI {
            return status(StatusWord::FILE_NOT_FOUND);
        }
        match record(command.p1) {
            Some(record) => response(&record, StatusWord::NO_ERROR),
            None => status(RECORD_NOT_FOUND),
        }
    }

    /// GENERATE APPLICATION CRYPTOGRAM (EMV Book 3 §6.5.5): P1 reference control parameter,
    /// P2 `00`, data = CDOL1 data. Answers format 2: `77 { 9F27 CID, 9F36 ATC, 9F26 AC, 9F10
    /// IAD }`. The card is online-only: a TC request gets an ARQC, an AAC request an AAC.
    fn handle_generate_ac(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        // P1 b6-b1 must be zero: no CDA signature (b5), nothing RFU.
        let requested = match CryptogramType::from_p1(command.p1) {
            Some(kind) if command.p1 & 0x3F == 0 && command.p2 == 0x00 => kind,
            _ => return status(StatusWord::INCORRECT_P1_P2),
        };
        if self.session != Session::Processing {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if command.data.len() != CDOL1.data_len() {
            return status(StatusWord::WRONG_LENGTH);
        }
        let field = |tag| CDOL1.field(command.data, tag);
        let (Some(amount), Some(un)) = (field(0x9F02), field(0x9F37)) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        let (Ok(amount_authorised), Ok(unpredictable_number)) =
            (<[u8; 6]>::try_from(amount), <[u8; 4]>::try_from(un))
        else {
            return status(StatusWord::WRONG_LENGTH);
        };
        let cryptogram_type = match requested {
            CryptogramType::Aac => CryptogramType::Aac,
            CryptogramType::Tc | CryptogramType::Arqc => CryptogramType::Arqc,
        };
        let cryptogram = application_cryptogram(
            &self.key,
            &unpredictable_number,
            &amount_authorised,
            self.atc,
        );
        self.last_authorisation = Some(Authorisation {
            cryptogram_type,
            atc: self.atc,
            amount_authorised,
            unpredictable_number,
            cryptogram,
        });
        self.session = Session::Completed;
        let template = tlv::constructed(
            0x77,
            &[
                tlv::encode(0x9F27, &[cryptogram_type.cid()]),
                tlv::encode(0x9F36, &self.atc.to_be_bytes()),
                tlv::encode(0x9F26, &cryptogram),
                tlv::encode(0x9F10, &ISSUER_APPLICATION_DATA),
            ],
        );
        response(&template, StatusWord::NO_ERROR)
    }

    /// GET DATA (EMV Book 3 §6.5.7): only the ATC (`9F36`) is available.
    fn handle_get_data(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if !command.data.is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        if matches!(self.session, Session::Idle | Session::Ppse) {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        match (command.p1, command.p2) {
            (0x9F, 0x36) => response(
                &tlv::encode(0x9F36, &self.atc.to_be_bytes()),
                StatusWord::NO_ERROR,
            ),
            _ => status(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }
}

/// The records of SFI 1 (EMV Book 3 §10.2, template `70`).
fn record(number: u8) -> Option<Vec<u8>> {
    match number {
        // Track 2 equivalent data and cardholder name: what a magstripe-era terminal needs.
        1 => {
            let track2 = pack_nibbles(&format!("{PAN}D2912201{}", "0".repeat(13)))?;
            Some(tlv::constructed(
                0x70,
                &[
                    tlv::encode(0x57, &track2),
                    tlv::encode(0x5F20, CARDHOLDER_NAME.as_bytes()),
                ],
            ))
        }
        // Chip data: PAN, dates, country, CDOL1, CVM list, usage control, version.
        2 => Some(tlv::constructed(
            0x70,
            &[
                tlv::encode(0x5A, &pack_nibbles(PAN)?),
                tlv::encode(0x5F24, &EXPIRY),
                tlv::encode(0x5F25, &EFFECTIVE),
                tlv::encode(0x5F28, &[0x08, 0x40]),
                tlv::encode(0x5F34, &[0x01]),
                tlv::encode(0x8C, CDOL1.as_bytes()),
                // CVM list (Book 3 §10.5): amounts X = Y = 0; signature if the terminal
                // supports it, else continue (5E 03); then no CVM required (1F 00).
                tlv::encode(0x8E, &[0, 0, 0, 0, 0, 0, 0, 0, 0x5E, 0x03, 0x1F, 0x00]),
                tlv::encode(0x9F07, &[0xFF, 0x00]),
                tlv::encode(0x9F08, &[0x00, 0x02]),
            ],
        )),
        _ => None,
    }
}

impl ApduHandler for PaymentCard {
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        match CommandApdu::parse(apdu) {
            Ok(command) => self.handle(&command),
            Err(_) => status(StatusWord::WRONG_LENGTH),
        }
    }

    /// A new tap starts from scratch: the terminal selects again.
    fn deactivated(&mut self, _reason: &str) {
        self.session = Session::Idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    fn card() -> PaymentCard {
        PaymentCard::new(DEFAULT_AID.to_vec(), KEY)
    }

    fn data(rapdu: &[u8]) -> &[u8] {
        &rapdu[..rapdu.len() - 2]
    }

    fn select(name: &[u8]) -> Vec<u8> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, name.len() as u8];
        apdu.extend_from_slice(name);
        apdu.push(0x00);
        apdu
    }

    /// GPO with PDOL data: amount 12.34, currency 0978 (EUR), UN.
    fn gpo(un: [u8; 4]) -> Vec<u8> {
        let mut apdu = vec![0x80, 0xA8, 0x00, 0x00, 0x0E, 0x83, 0x0C];
        apdu.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x09, 0x78]);
        apdu.extend_from_slice(&un);
        apdu.push(0x00);
        apdu
    }

    /// GENERATE AC requesting `p1` with CDOL1 data for `amount` and `un`.
    fn generate_ac(p1: u8, amount: [u8; 6], un: [u8; 4]) -> Vec<u8> {
        let mut apdu = vec![0x80, 0xAE, p1, 0x00, 0x1D];
        apdu.extend_from_slice(&amount); // 9F02 amount authorised
        apdu.extend_from_slice(&[0; 6]); // 9F03 amount other
        apdu.extend_from_slice(&[0x02, 0x76]); // 9F1A terminal country (DE)
        apdu.extend_from_slice(&[0; 5]); // 95 TVR
        apdu.extend_from_slice(&[0x09, 0x78]); // 5F2A currency (EUR)
        apdu.extend_from_slice(&[0x26, 0x05, 0x17]); // 9A date
        apdu.push(0x00); // 9C purchase
        apdu.extend_from_slice(&un); // 9F37 unpredictable number
        apdu.push(0x00);
        apdu
    }

    const AMOUNT: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x12, 0x34];

    /// Runs a whole tap and returns the GENERATE AC response data.
    fn tap(card: &mut PaymentCard, un: [u8; 4], amount: [u8; 6]) -> Vec<u8> {
        assert_eq!(
            StatusWord::from_response(&card.process_apdu(&select(PPSE_NAME))),
            Some(StatusWord::NO_ERROR)
        );
        assert_eq!(
            StatusWord::from_response(&card.process_apdu(&select(&DEFAULT_AID))),
            Some(StatusWord::NO_ERROR)
        );
        assert_eq!(
            StatusWord::from_response(&card.process_apdu(&gpo(un))),
            Some(StatusWord::NO_ERROR)
        );
        for record in [1u8, 2] {
            let read = [0x00, 0xB2, record, 0x0C, 0x00];
            assert_eq!(
                StatusWord::from_response(&card.process_apdu(&read)),
                Some(StatusWord::NO_ERROR)
            );
        }
        let response = card.process_apdu(&generate_ac(0x80, amount, un));
        assert_eq!(
            StatusWord::from_response(&response),
            Some(StatusWord::NO_ERROR)
        );
        card.deactivated("link-loss");
        data(&response).to_vec()
    }

    #[test]
    fn full_tap_transcript() {
        let mut card = card();

        // SELECT 2PAY.SYS.DDF01 -> FCI listing the application
        let r = card.process_apdu(&select(PPSE_NAME));
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        assert_eq!(tlv::find_path(data(&r), &[0x6F, 0x84]), Some(PPSE_NAME));
        let entry = tlv::find_path(data(&r), &[0x6F, 0xA5, 0xBF0C, 0x61]).unwrap();
        assert_eq!(tlv::find(entry, 0x4F), Some(&DEFAULT_AID[..]));
        assert_eq!(tlv::find(entry, 0x50), Some(LABEL.as_bytes()));

        // SELECT A0000000041010 -> FCI with the PDOL
        let r = card.process_apdu(&select(&DEFAULT_AID));
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        assert_eq!(
            tlv::find_path(data(&r), &[0x6F, 0x84]),
            Some(&DEFAULT_AID[..])
        );
        assert_eq!(
            tlv::find_path(data(&r), &[0x6F, 0xA5, 0x9F38]),
            Some(&[0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9F, 0x37, 0x04][..])
        );

        // GET PROCESSING OPTIONS -> 77 { 82 1800, 94 08010200 }, ATC 1
        let r = card.process_apdu(&gpo([1, 2, 3, 4]));
        assert_eq!(
            r,
            [0x77, 0x0A, 0x82, 0x02, 0x18, 0x00, 0x94, 0x04, 0x08, 0x01, 0x02, 0x00, 0x90, 0x00]
        );
        assert_eq!(card.atc(), 1);

        // READ RECORD 1, SFI 1 -> track 2 equivalent data and name
        let r = card.process_apdu(&[0x00, 0xB2, 0x01, 0x0C, 0x00]);
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        let track2 = tlv::find_path(data(&r), &[0x70, 0x57]).unwrap();
        assert_eq!(
            track2,
            [
                0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x44, 0x44, 0xD2, 0x91, 0x22, 0x01, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x0F
            ]
        );
        assert_eq!(
            tlv::find_path(data(&r), &[0x70, 0x5F20]),
            Some(CARDHOLDER_NAME.as_bytes())
        );

        // READ RECORD 2, SFI 1 -> PAN, expiry, CDOL1
        let r = card.process_apdu(&[0x00, 0xB2, 0x02, 0x0C, 0x00]);
        assert_eq!(
            tlv::find_path(data(&r), &[0x70, 0x5A]),
            Some(&[0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x44, 0x44][..])
        );
        assert_eq!(tlv::find_path(data(&r), &[0x70, 0x5F24]), Some(&EXPIRY[..]));
        assert_eq!(
            tlv::find_path(data(&r), &[0x70, 0x8C]).map(<[u8]>::len),
            Some(CDOL1.as_bytes().len())
        );

        // READ RECORD 3 -> 6A83 record not found
        assert_eq!(
            card.process_apdu(&[0x00, 0xB2, 0x03, 0x0C, 0x00]),
            [0x6A, 0x83]
        );

        // GENERATE AC (ARQC) -> 77 { 9F27 80, 9F36 0001, 9F26 AC, 9F10 IAD }
        let un = [0xCA, 0xFE, 0xBA, 0xBE];
        let r = card.process_apdu(&generate_ac(0x80, AMOUNT, un));
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        let template = tlv::find(data(&r), 0x77).unwrap();
        assert_eq!(tlv::find(template, 0x9F27), Some(&[0x80][..]));
        assert_eq!(tlv::find(template, 0x9F36), Some(&[0x00, 0x01][..]));
        assert_eq!(
            tlv::find(template, 0x9F10),
            Some(&ISSUER_APPLICATION_DATA[..])
        );
        let ac = tlv::find(template, 0x9F26).unwrap();
        assert_eq!(ac, application_cryptogram(&KEY, &un, &AMOUNT, 1));
        assert_eq!(card.last_authorisation().unwrap().cryptogram, ac);

        // A second GENERATE AC in the same tap -> 6985
        assert_eq!(
            card.process_apdu(&generate_ac(0x80, AMOUNT, un)),
            [0x69, 0x85]
        );
    }

    #[test]
    fn cryptogram_verifies_with_the_key_and_changes_with_un_and_atc() {
        let mut card = card();
        let first = tap(&mut card, [1, 1, 1, 1], AMOUNT);
        let second_un = tap(&mut card, [2, 2, 2, 2], AMOUNT);
        let same_un_again = tap(&mut card, [2, 2, 2, 2], AMOUNT);
        let ac = |template: &[u8]| tlv::find_path(template, &[0x77, 0x9F26]).unwrap().to_vec();
        let atc = |template: &[u8]| tlv::find_path(template, &[0x77, 0x9F36]).unwrap().to_vec();
        assert_eq!(atc(&first), [0, 1]);
        assert_eq!(atc(&second_un), [0, 2]);
        assert_eq!(atc(&same_un_again), [0, 3]);
        assert_ne!(ac(&first), ac(&second_un), "UN changes the cryptogram");
        assert_ne!(
            ac(&second_un),
            ac(&same_un_again),
            "ATC changes the cryptogram"
        );

        // An issuer with the key recomputes the HMAC over UN || amount || ATC independently.
        let issuer_key = hmac::Key::new(hmac::HMAC_SHA256, &KEY);
        let mut message = vec![2, 2, 2, 2];
        message.extend_from_slice(&AMOUNT);
        message.extend_from_slice(&[0x00, 0x03]);
        let full = hmac::sign(&issuer_key, &message);
        assert_eq!(ac(&same_un_again), &full.as_ref()[..8]);

        // A different key does not produce the same cryptogram.
        let other = application_cryptogram(&[0x43; 32], &[2, 2, 2, 2], &AMOUNT, 3);
        assert_ne!(ac(&same_un_again), other);
    }

    #[test]
    fn aac_request_is_honoured_and_tc_becomes_arqc() {
        let mut card = card();
        for (p1, cid) in [(0x00, 0x00), (0x40, 0x80), (0x80, 0x80)] {
            card.process_apdu(&select(&DEFAULT_AID));
            card.process_apdu(&gpo([9, 9, 9, 9]));
            let r = card.process_apdu(&generate_ac(p1, AMOUNT, [9, 9, 9, 9]));
            assert_eq!(tlv::find_path(data(&r), &[0x77, 0x9F27]), Some(&[cid][..]));
        }
    }

    #[test]
    fn commands_out_of_sequence_are_refused() {
        let mut card = card();
        // GPO before SELECT -> 6985
        assert_eq!(card.process_apdu(&gpo([0; 4])), [0x69, 0x85]);
        // READ RECORD before GPO -> 6985
        card.process_apdu(&select(&DEFAULT_AID));
        assert_eq!(
            card.process_apdu(&[0x00, 0xB2, 0x01, 0x0C, 0x00]),
            [0x69, 0x85]
        );
        // GENERATE AC before GPO -> 6985
        assert_eq!(
            card.process_apdu(&generate_ac(0x80, AMOUNT, [0; 4])),
            [0x69, 0x85]
        );
        // GPO after PPSE only -> 6985, and the ATC is not spent
        card.process_apdu(&select(PPSE_NAME));
        assert_eq!(card.process_apdu(&gpo([0; 4])), [0x69, 0x85]);
        assert_eq!(card.atc(), 0);
        // After deactivation the tap starts over.
        card.process_apdu(&select(&DEFAULT_AID));
        card.process_apdu(&gpo([0; 4]));
        card.deactivated("link-loss");
        assert_eq!(
            card.process_apdu(&generate_ac(0x80, AMOUNT, [0; 4])),
            [0x69, 0x85]
        );
    }

    #[test]
    fn malformed_commands_get_iso_status_words() {
        let mut card = card();
        // Unknown INS -> 6D00; unknown CLA -> 6E00
        assert_eq!(
            card.process_apdu(&[0x00, 0x84, 0x00, 0x00, 0x08]),
            [0x6D, 0x00]
        );
        assert_eq!(
            card.process_apdu(&[0x90, 0xA4, 0x04, 0x00, 0x00]),
            [0x6E, 0x00]
        );
        // SELECT with P1 = 00 (by file id) -> 6A86; next occurrence -> 6A82
        assert_eq!(
            card.process_apdu(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]),
            [0x6A, 0x86]
        );
        let mut next = select(&DEFAULT_AID);
        next[3] = 0x02;
        assert_eq!(card.process_apdu(&next), [0x6A, 0x82]);
        // SELECT of an AID this card does not have -> 6A82
        assert_eq!(
            card.process_apdu(&select(&[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10])),
            [0x6A, 0x82]
        );
        // Partial selection by the RID finds the application.
        let r = card.process_apdu(&select(&DEFAULT_AID[..5]));
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        // GPO with P1P2 != 0000 -> 6A86; with short PDOL data -> 6700; without 83 -> 6A80
        let mut bad = gpo([0; 4]);
        bad[2] = 0x01;
        assert_eq!(card.process_apdu(&bad), [0x6A, 0x86]);
        assert_eq!(
            card.process_apdu(&[0x80, 0xA8, 0x00, 0x00, 0x04, 0x83, 0x02, 0x00, 0x00, 0x00]),
            [0x67, 0x00]
        );
        assert_eq!(
            card.process_apdu(&[0x80, 0xA8, 0x00, 0x00, 0x02, 0x84, 0x00, 0x00]),
            [0x6A, 0x80]
        );
        card.process_apdu(&gpo([0; 4]));
        // READ RECORD with P2 not "record number in P1" -> 6A86; other SFI -> 6A82
        assert_eq!(
            card.process_apdu(&[0x00, 0xB2, 0x01, 0x0D, 0x00]),
            [0x6A, 0x86]
        );
        assert_eq!(
            card.process_apdu(&[0x00, 0xB2, 0x01, 0x14, 0x00]),
            [0x6A, 0x82]
        );
        // GENERATE AC with CDA requested (P1 b5) or RFU type -> 6A86; short data -> 6700
        assert_eq!(
            card.process_apdu(&generate_ac(0x90, AMOUNT, [0; 4])),
            [0x6A, 0x86]
        );
        assert_eq!(
            card.process_apdu(&generate_ac(0xC0, AMOUNT, [0; 4])),
            [0x6A, 0x86]
        );
        assert_eq!(
            card.process_apdu(&[0x80, 0xAE, 0x80, 0x00, 0x02, 0x00, 0x00, 0x00]),
            [0x67, 0x00]
        );
        // GET DATA ATC -> 9F36 0001; unknown tag -> 6A88
        assert_eq!(
            card.process_apdu(&[0x80, 0xCA, 0x9F, 0x36, 0x00]),
            [0x9F, 0x36, 0x02, 0x00, 0x01, 0x90, 0x00]
        );
        assert_eq!(
            card.process_apdu(&[0x80, 0xCA, 0x9F, 0x17, 0x00]),
            [0x6A, 0x88]
        );
        // Not an APDU at all -> 6700
        assert_eq!(card.process_apdu(&[0x00, 0xA4]), [0x67, 0x00]);
    }

    #[test]
    fn exhausted_atc_blocks_the_application() {
        let mut card = card();
        card.atc = u16::MAX;
        card.process_apdu(&select(&DEFAULT_AID));
        assert_eq!(card.process_apdu(&gpo([0; 4])), [0x69, 0x85]);
        assert_eq!(card.atc(), u16::MAX);
    }

    #[test]
    fn data_object_lists_are_well_formed() {
        assert_eq!(
            Dol::new_checked(PDOL.as_bytes()).map(|d| d.data_len()),
            Ok(12)
        );
        assert_eq!(
            Dol::new_checked(CDOL1.as_bytes()).map(|d| d.data_len()),
            Ok(29)
        );
    }

    #[test]
    fn key_derivation_is_stable_and_per_id() {
        assert_eq!(derive_card_key("a"), derive_card_key("a"));
        assert_ne!(derive_card_key("a"), derive_card_key("b"));
        let expected = digest::digest(
            &digest::SHA256,
            b"nfcd-payment-wallet test key v1:org.example",
        );
        assert_eq!(derive_card_key("org.example"), expected.as_ref());
    }

    #[test]
    fn nibble_packing() {
        assert_eq!(pack_nibbles("123"), Some(vec![0x12, 0x3F]));
        assert_eq!(pack_nibbles("5D29"), Some(vec![0x5D, 0x29]));
        assert_eq!(pack_nibbles("12x4"), None);
    }
}
