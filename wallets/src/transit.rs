//! A test stored-value transit application: a balance in cents, debited by gates, each debit
//! answered with a receipt signed with ECDSA P-256.
//!
//! Command set (proprietary class `80`, ISO/IEC 7816-4 §5.4.1; status words from §5.1.3):
//!
//! | command | C-APDU | response data |
//! |---|---|---|
//! | SELECT | `00 A4 04 00 Lc <AID> 00` | FCI `6F { 84 AID, A5 { 50 label } }` |
//! | READ BALANCE | `80 5C 00 00 08` | balance (4) ‖ counter (4) |
//! | DEBIT | `80 54 00 00 10 <fare 4> <gate id 8> <timestamp 4> 00` | new balance (4) ‖ counter (4) ‖ signature (64) |
//! | GET PUBLIC KEY | `80 CA DF 20 00` | uncompressed P-256 point (65) |
//!
//! All numbers are unsigned big-endian: balance and fare in cents, counter = number of debits
//! so far, timestamp = Unix seconds as the gate knows it. The receipt signature is
//! ECDSA P-256 / SHA-256 in fixed `r ‖ s` form over [`receipt_message`]: gate id ‖ fare ‖ new
//! balance ‖ counter ‖ timestamp (24 bytes).
//!
//! Status words: `6985` insufficient funds (or counter exhausted) — nothing is debited; `6700`
//! wrong Lc; `6A86` P1-P2 not `0000`; `6A88` unknown GET DATA tag; `6581` the new state could
//! not be saved, nothing is debited; `6D00`/`6E00` unknown INS/CLA.
//!
//! The application keeps no session state: every command stands alone, so it does not care
//! whether it was selected in this tap (the daemon only routes to it after a SELECT anyway).
//! Not modelled: top-ups, passes, fare capping, anti-passback, key certificates.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::apdu::{self, sw, CommandApdu};
use crate::registration::ApduHandler;
use crate::tlv;

/// Default AID: `F0` (ISO/IEC 7816-5 category F, proprietary and unregistered) followed by
/// `NFCDTRANSIT` in ASCII, 12 bytes.
pub const DEFAULT_AID: [u8; 12] = *b"\xF0NFCDTRANSIT";

/// Application label in the FCI.
pub const LABEL: &str = "NFCD TEST TRANSIT";

/// INS of READ BALANCE.
pub const INS_READ_BALANCE: u8 = 0x5C;
/// INS of DEBIT.
pub const INS_DEBIT: u8 = 0x54;
/// INS of GET DATA (ISO/IEC 7816-4 §11.4.3), used for the public key.
pub const INS_GET_DATA: u8 = 0xCA;
/// GET DATA tag (P1-P2) of the receipt-signing public key.
pub const TAG_PUBLIC_KEY: u16 = 0xDF20;

/// Length of the DEBIT command data: fare (4) ‖ gate id (8) ‖ timestamp (4).
pub const DEBIT_DATA_LEN: usize = 16;

/// Balance and debit counter: everything that must survive a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitState {
    /// Stored value in cents.
    pub balance: u32,
    /// Number of debits so far.
    pub counter: u32,
}

/// Why a state file could not be read.
#[derive(Debug)]
pub enum StateError {
    /// Reading failed.
    Io(io::Error),
    /// A line is not `balance=N` or `counter=N`, or a key is missing.
    Malformed(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io(e) => write!(f, "{e}"),
            StateError::Malformed(why) => write!(f, "malformed state file: {why}"),
        }
    }
}

impl std::error::Error for StateError {}

impl TransitState {
    /// Parses the state file format: lines `balance=<cents>` and `counter=<n>`.
    pub fn parse(text: &str) -> Result<Self, StateError> {
        let (mut balance, mut counter) = (None, None);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| StateError::Malformed(format!("`{line}` is not key=value")))?;
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|_| StateError::Malformed(format!("`{line}`: not a 32-bit number")))?;
            match key.trim() {
                "balance" => balance = Some(value),
                "counter" => counter = Some(value),
                other => return Err(StateError::Malformed(format!("unknown key `{other}`"))),
            }
        }
        match (balance, counter) {
            (Some(balance), Some(counter)) => Ok(TransitState { balance, counter }),
            _ => Err(StateError::Malformed(
                "needs balance= and counter=".to_owned(),
            )),
        }
    }

    /// The state file text.
    pub fn render(&self) -> String {
        format!("balance={}\ncounter={}\n", self.balance, self.counter)
    }

    /// Reads `path`; `Ok(None)` if it does not exist yet.
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Io(e)),
        }
    }

    /// Writes `path` atomically (temporary file + rename), so a crash mid-write never leaves a
    /// half-written balance.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        fs::write(&temporary, self.render())?;
        fs::rename(&temporary, path)
    }
}

/// The bytes a receipt signature covers: gate id (8) ‖ fare (4) ‖ new balance (4) ‖ counter
/// (4) ‖ timestamp (4), numbers big-endian.
pub fn receipt_message(
    gate_id: &[u8; 8],
    fare: u32,
    new_balance: u32,
    counter: u32,
    timestamp: u32,
) -> [u8; 24] {
    let mut message = [0u8; 24];
    message[..8].copy_from_slice(gate_id);
    message[8..12].copy_from_slice(&fare.to_be_bytes());
    message[12..16].copy_from_slice(&new_balance.to_be_bytes());
    message[16..20].copy_from_slice(&counter.to_be_bytes());
    message[20..].copy_from_slice(&timestamp.to_be_bytes());
    message
}

/// Generates a new P-256 key pair, returned as PKCS#8 v1 DER (to keep or throw away).
pub fn generate_key_pkcs8() -> Result<Vec<u8>, ring::error::Unspecified> {
    let rng = SystemRandom::new();
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map(|document| document.as_ref().to_vec())
}

/// The transit application; an [`ApduHandler`].
pub struct TransitCard {
    aid: Vec<u8>,
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
    state: TransitState,
    state_file: Option<PathBuf>,
}

impl fmt::Debug for TransitCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitCard")
            .field("aid", &self.aid)
            .field("state", &self.state)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

impl TransitCard {
    /// A card answering to `aid` with the P-256 key in `pkcs8` (PKCS#8 DER, as made by
    /// [`generate_key_pkcs8`] or `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256 | openssl pkcs8 -topk8 -nocrypt -outform DER`).
    pub fn new(
        aid: Vec<u8>,
        pkcs8: &[u8],
        state: TransitState,
    ) -> Result<Self, ring::error::KeyRejected> {
        let rng = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)?;
        Ok(TransitCard {
            aid,
            key_pair,
            rng,
            state,
            state_file: None,
        })
    }

    /// Saves the state to `path` after every debit, before answering it.
    pub fn with_state_file(mut self, path: PathBuf) -> Self {
        self.state_file = Some(path);
        self
    }

    /// Balance and counter now.
    pub fn state(&self) -> TransitState {
        self.state
    }

    /// The receipt-signing public key: uncompressed point `04 ‖ X ‖ Y` (SEC 1 §2.3.3).
    pub fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    fn handle(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        match (command.cla, command.ins) {
            (0x00, 0xA4) => self.handle_select(command),
            (0x80, INS_READ_BALANCE) => self.handle_read_balance(command),
            (0x80, INS_DEBIT) => self.handle_debit(command),
            (0x80, INS_GET_DATA) => self.handle_get_data(command),
            (0x00 | 0x80, _) => apdu::status(sw::INS_NOT_SUPPORTED),
            _ => apdu::status(sw::CLA_NOT_SUPPORTED),
        }
    }

    /// SELECT by DF name (ISO/IEC 7816-4 §11.1.1), first or only occurrence, full AID.
    fn handle_select(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p1 != 0x04 || command.p2 != 0x00 {
            return apdu::status(sw::INCORRECT_P1_P2);
        }
        if command.data != self.aid.as_slice() {
            return apdu::status(sw::FILE_NOT_FOUND);
        }
        let fci = tlv::constructed(
            0x6F,
            &[
                tlv::encode(0x84, &self.aid),
                tlv::constructed(0xA5, &[tlv::encode(0x50, LABEL.as_bytes())]),
            ],
        );
        apdu::response(&fci, sw::NO_ERROR)
    }

    fn handle_read_balance(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p1p2() != 0x0000 {
            return apdu::status(sw::INCORRECT_P1_P2);
        }
        if !command.data.is_empty() {
            return apdu::status(sw::WRONG_LENGTH);
        }
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&self.state.balance.to_be_bytes());
        data[4..].copy_from_slice(&self.state.counter.to_be_bytes());
        apdu::response(&data, sw::NO_ERROR)
    }

    /// Checks the balance, saves the new state (if a state file is set), then signs the
    /// receipt. The order matters: a receipt is only ever given for a debit that was kept.
    fn handle_debit(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p1p2() != 0x0000 {
            return apdu::status(sw::INCORRECT_P1_P2);
        }
        let Ok(data) = <&[u8; DEBIT_DATA_LEN]>::try_from(command.data) else {
            return apdu::status(sw::WRONG_LENGTH);
        };
        let (fare, rest) = data.split_at(4);
        let (gate_id, timestamp) = rest.split_at(8);
        let fare = u32::from_be_bytes([fare[0], fare[1], fare[2], fare[3]]);
        let timestamp =
            u32::from_be_bytes([timestamp[0], timestamp[1], timestamp[2], timestamp[3]]);
        let mut gate = [0u8; 8];
        gate.copy_from_slice(gate_id);

        let (Some(balance), Some(counter)) = (
            self.state.balance.checked_sub(fare),
            self.state.counter.checked_add(1),
        ) else {
            return apdu::status(sw::CONDITIONS_NOT_SATISFIED);
        };
        let new_state = TransitState { balance, counter };
        if let Some(path) = &self.state_file {
            if let Err(e) = new_state.save(path) {
                tracing::error!("cannot save transit state to {}: {e}", path.display());
                return apdu::status(sw::MEMORY_FAILURE);
            }
        }
        self.state = new_state;

        let message = receipt_message(&gate, fare, balance, counter, timestamp);
        let Ok(signature) = self.key_pair.sign(&self.rng, &message) else {
            // The debit is kept (it was saved); the gate sees no receipt and can re-read the
            // balance. ring only fails here if the system RNG fails.
            return apdu::status(sw::NO_PRECISE_DIAGNOSIS);
        };
        let mut response = Vec::with_capacity(8 + 64 + 2);
        response.extend_from_slice(&balance.to_be_bytes());
        response.extend_from_slice(&counter.to_be_bytes());
        response.extend_from_slice(signature.as_ref());
        response.extend_from_slice(&sw::NO_ERROR.to_be_bytes());
        response
    }

    fn handle_get_data(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if !command.data.is_empty() {
            return apdu::status(sw::WRONG_LENGTH);
        }
        if command.p1p2() != TAG_PUBLIC_KEY {
            return apdu::status(sw::REFERENCED_DATA_NOT_FOUND);
        }
        apdu::response(self.public_key(), sw::NO_ERROR)
    }
}

impl ApduHandler for TransitCard {
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        match CommandApdu::parse(apdu) {
            Ok(command) => self.handle(&command),
            Err(_) => apdu::status(sw::WRONG_LENGTH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::status_of;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn card(balance: u32) -> TransitCard {
        let pkcs8 = generate_key_pkcs8().unwrap();
        TransitCard::new(
            DEFAULT_AID.to_vec(),
            &pkcs8,
            TransitState {
                balance,
                counter: 0,
            },
        )
        .unwrap()
    }

    const GATE: [u8; 8] = *b"GATE0042";

    fn debit(fare: u32, timestamp: u32) -> Vec<u8> {
        let mut apdu = vec![0x80, INS_DEBIT, 0x00, 0x00, 0x10];
        apdu.extend_from_slice(&fare.to_be_bytes());
        apdu.extend_from_slice(&GATE);
        apdu.extend_from_slice(&timestamp.to_be_bytes());
        apdu.push(0x48);
        apdu
    }

    #[test]
    fn select_then_read_balance() {
        let mut card = card(2_000);
        // SELECT F04E4643445452414E534954 -> FCI
        let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x0C];
        select.extend_from_slice(&DEFAULT_AID);
        select.push(0x00);
        let r = card.process_apdu(&select);
        assert_eq!(status_of(&r), Some(0x9000));
        assert_eq!(
            tlv::find_path(&r[..r.len() - 2], &[0x6F, 0x84]),
            Some(&DEFAULT_AID[..])
        );
        // SELECT of another AID -> 6A82
        select[5] = 0xF1;
        assert_eq!(card.process_apdu(&select), [0x6A, 0x82]);
        // READ BALANCE -> 000007D0 00000000 9000
        assert_eq!(
            card.process_apdu(&[0x80, 0x5C, 0x00, 0x00, 0x08]),
            [0x00, 0x00, 0x07, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x90, 0x00]
        );
    }

    #[test]
    fn debit_signs_a_receipt_that_verifies_with_the_public_key() {
        let mut card = card(2_000);
        // GET PUBLIC KEY -> 65-byte uncompressed point
        let r = card.process_apdu(&[0x80, 0xCA, 0xDF, 0x20, 0x00]);
        assert_eq!(status_of(&r), Some(0x9000));
        let public_key = r[..r.len() - 2].to_vec();
        assert_eq!((public_key.len(), public_key[0]), (65, 0x04));

        // DEBIT 2.75 at GATE0042 -> balance 17.25, counter 1, signature
        let r = card.process_apdu(&debit(275, 1_767_225_600));
        assert_eq!(status_of(&r), Some(0x9000));
        assert_eq!(r.len(), 4 + 4 + 64 + 2);
        assert_eq!(r[..4], 1_725u32.to_be_bytes());
        assert_eq!(r[4..8], 1u32.to_be_bytes());
        let message = receipt_message(&GATE, 275, 1_725, 1, 1_767_225_600);
        let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key);
        assert!(verifier.verify(&message, &r[8..72]).is_ok());
        // The signature does not cover a different fare.
        let forged = receipt_message(&GATE, 1, 1_725, 1, 1_767_225_600);
        assert!(verifier.verify(&forged, &r[8..72]).is_err());
        assert_eq!(
            card.state(),
            TransitState {
                balance: 1_725,
                counter: 1
            }
        );
    }

    #[test]
    fn insufficient_funds_debits_nothing() {
        let mut card = card(100);
        // DEBIT 2.75 with 1.00 on the card -> 6985
        assert_eq!(card.process_apdu(&debit(275, 0)), [0x69, 0x85]);
        assert_eq!(
            card.state(),
            TransitState {
                balance: 100,
                counter: 0
            }
        );
        // Exactly the balance is fine and leaves zero.
        let r = card.process_apdu(&debit(100, 0));
        assert_eq!(r[..8], [0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_commands() {
        let mut card = card(100);
        // DEBIT with 15 data bytes -> 6700
        let mut short = debit(1, 0);
        short.remove(5);
        short[4] = 0x0F;
        assert_eq!(card.process_apdu(&short), [0x67, 0x00]);
        // READ BALANCE with P1 = 01 -> 6A86
        assert_eq!(
            card.process_apdu(&[0x80, 0x5C, 0x01, 0x00, 0x08]),
            [0x6A, 0x86]
        );
        // GET DATA of another tag -> 6A88
        assert_eq!(
            card.process_apdu(&[0x80, 0xCA, 0x9F, 0x36, 0x00]),
            [0x6A, 0x88]
        );
        // Unknown INS -> 6D00, unknown CLA -> 6E00
        assert_eq!(card.process_apdu(&[0x80, 0x50, 0x00, 0x00]), [0x6D, 0x00]);
        assert_eq!(card.process_apdu(&[0xA0, 0x5C, 0x00, 0x00]), [0x6E, 0x00]);
    }

    #[test]
    fn state_file_round_trip_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transit.state");
        assert!(TransitState::load(&path).unwrap().is_none());
        let mut card = card(1_000).with_state_file(path.clone());
        card.process_apdu(&debit(250, 0));
        assert_eq!(
            TransitState::load(&path).unwrap(),
            Some(TransitState {
                balance: 750,
                counter: 1
            })
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "balance=750\ncounter=1\n"
        );
        assert!(TransitState::parse("balance=1\n").is_err());
        assert!(TransitState::parse("balance=-1\ncounter=0").is_err());
        assert!(TransitState::parse("credit=1\ncounter=0").is_err());
    }

    #[test]
    fn unsavable_state_refuses_the_debit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("transit.state");
        let mut card = card(1_000).with_state_file(path);
        assert_eq!(card.process_apdu(&debit(250, 0)), [0x65, 0x81]);
        assert_eq!(
            card.state(),
            TransitState {
                balance: 1_000,
                counter: 0
            }
        );
    }
}
