//! A test stored-value transit application: a balance in cents, debited by gates, each debit
//! answered with a receipt signed with ECDSA P-256.
//!
//! The command set, the byte layout of every command and response, the signed receipt message
//! and the status words are defined once, in `libnci::sim::scripts` (section "The transit
//! application's commands"), which the virtual reader's transit gate uses too: SELECT
//! [`TRANSIT_AID`], READ BALANCE → [`TransitBalanceRepr`], DEBIT [`TransitDebitRepr`] →
//! [`TransitReceiptRepr`], GET PUBLIC KEY → `04 ‖ X ‖ Y`. This card adds what the definition
//! leaves to the card: the receipt signature is ECDSA P-256 / SHA-256 (`ring`) over
//! [`transit_receipt_message`] with the key given at start, and the state can be kept in a file
//! ([`TransitState`]); a debit whose state cannot be saved is refused with
//! [`TRANSIT_SW_NOT_STORED`].
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

use crate::registration::ApduHandler;
use libnci::apdu::{CommandApdu, StatusWord};
use libnci::sim::cards::{response, status};
use libnci::sim::scripts::{
    transit_receipt_message, TransitBalanceRepr, TransitDebitRepr, TransitReceiptRepr, TRANSIT_AID,
    TRANSIT_CLA, TRANSIT_INS_DEBIT, TRANSIT_INS_GET_DATA, TRANSIT_INS_READ_BALANCE,
    TRANSIT_SW_INSUFFICIENT_FUNDS, TRANSIT_SW_NOT_STORED, TRANSIT_TAG_PUBLIC_KEY,
};
use libnci::sim::tlv;

/// The AID the card answers to unless told otherwise: the transit application's
/// [`TRANSIT_AID`], `F04E4643445452414E534954`.
pub const DEFAULT_AID: [u8; 12] = TRANSIT_AID;

/// Application label in the FCI.
pub const LABEL: &str = "NFCD TEST TRANSIT";

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

impl From<TransitState> for TransitBalanceRepr {
    fn from(state: TransitState) -> Self {
        TransitBalanceRepr {
            balance: state.balance,
            counter: state.counter,
        }
    }
}

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
            (TRANSIT_CLA, TRANSIT_INS_READ_BALANCE) => self.handle_read_balance(command),
            (TRANSIT_CLA, TRANSIT_INS_DEBIT) => self.handle_debit(command),
            (TRANSIT_CLA, TRANSIT_INS_GET_DATA) => self.handle_get_data(command),
            (0x00 | TRANSIT_CLA, _) => status(StatusWord::INS_NOT_SUPPORTED),
            _ => status(StatusWord::CLA_NOT_SUPPORTED),
        }
    }

    /// SELECT by DF name (ISO/IEC 7816-4 §11.1.1), first or only occurrence, full AID.
    fn handle_select(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if command.p1 != 0x04 || command.p2 != 0x00 {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if command.data != self.aid.as_slice() {
            return status(StatusWord::FILE_NOT_FOUND);
        }
        let fci = tlv::constructed(
            0x6F,
            &[
                tlv::encode(0x84, &self.aid),
                tlv::constructed(0xA5, &[tlv::encode(0x50, LABEL.as_bytes())]),
            ],
        );
        response(&fci, StatusWord::NO_ERROR)
    }

    fn handle_read_balance(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if !command.data.is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        response(
            &TransitBalanceRepr::from(self.state).emit(),
            StatusWord::NO_ERROR,
        )
    }

    /// Checks the balance, saves the new state (if a state file is set), then signs the
    /// receipt. The order matters: a receipt is only ever given for a debit that was kept.
    fn handle_debit(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        let Some(debit) = TransitDebitRepr::parse(command.data) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        let Some(after) = TransitBalanceRepr::from(self.state).debited(debit.fare) else {
            return status(TRANSIT_SW_INSUFFICIENT_FUNDS);
        };
        let new_state = TransitState {
            balance: after.balance,
            counter: after.counter,
        };
        if let Some(path) = &self.state_file {
            if let Err(e) = new_state.save(path) {
                tracing::error!("cannot save transit state to {}: {e}", path.display());
                return status(TRANSIT_SW_NOT_STORED);
            }
        }
        self.state = new_state;

        let message = transit_receipt_message(&debit, &after);
        let signature = self
            .key_pair
            .sign(&self.rng, &message)
            .ok()
            .and_then(|signature| signature.as_ref().try_into().ok());
        let Some(signature) = signature else {
            // The debit is kept (it was saved); the gate sees no receipt and can re-read the
            // balance. ring only fails here if the system RNG fails.
            return status(StatusWord::NO_PRECISE_DIAGNOSIS);
        };
        response(
            &TransitReceiptRepr { after, signature }.emit(),
            StatusWord::NO_ERROR,
        )
    }

    fn handle_get_data(&mut self, command: &CommandApdu<'_>) -> Vec<u8> {
        if !command.data.is_empty() {
            return status(StatusWord::WRONG_LENGTH);
        }
        if u16::from_be_bytes([command.p1, command.p2]) != TRANSIT_TAG_PUBLIC_KEY {
            return status(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        response(self.public_key(), StatusWord::NO_ERROR)
    }
}

impl ApduHandler for TransitCard {
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        match CommandApdu::parse(apdu) {
            Ok(command) => self.handle(&command),
            Err(_) => status(StatusWord::WRONG_LENGTH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        // DEBIT: 80 54 00 00, Lc 16, fare ‖ gate id ‖ timestamp, Le 72.
        let mut apdu = vec![0x80, 0x54, 0x00, 0x00, 0x10];
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
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
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
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        let public_key = r[..r.len() - 2].to_vec();
        assert_eq!((public_key.len(), public_key[0]), (65, 0x04));

        // DEBIT 2.75 at GATE0042 -> balance 17.25, counter 1, signature
        let r = card.process_apdu(&debit(275, 1_767_225_600));
        assert_eq!(StatusWord::from_response(&r), Some(StatusWord::NO_ERROR));
        assert_eq!(r.len(), 4 + 4 + 64 + 2);
        assert_eq!(r[..4], 1_725u32.to_be_bytes());
        assert_eq!(r[4..8], 1u32.to_be_bytes());
        let debited = TransitDebitRepr {
            fare: 275,
            gate_id: GATE,
            timestamp: 1_767_225_600,
        };
        let after = TransitBalanceRepr {
            balance: 1_725,
            counter: 1,
        };
        let message = transit_receipt_message(&debited, &after);
        let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key);
        assert!(verifier.verify(&message, &r[8..72]).is_ok());
        // The signature does not cover a different fare.
        let forged = transit_receipt_message(&TransitDebitRepr { fare: 1, ..debited }, &after);
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
