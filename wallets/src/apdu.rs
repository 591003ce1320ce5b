//! Command APDUs as a card application sees them, and the status words the wallets answer with
//! (ISO/IEC 7816-4 §5.1 command-response pairs, §5.1.3 status bytes).
//!
//! This is the card side only: [`CommandApdu::parse`] splits a C-APDU into header, data field
//! and Le, and [`response`] builds an R-APDU. It does not know any command's meaning, does not
//! handle command chaining (CLA b5) or logical channels, and never allocates while parsing.

use std::fmt;

/// Status words (SW1-SW2) used by the wallets, as defined in ISO/IEC 7816-4 §5.1.3 (and EMV
/// Book 3 §6.3.5 for their use in payment).
pub mod sw {
    /// `9000`: normal processing, no further qualification.
    pub const NO_ERROR: u16 = 0x9000;
    /// `6581`: memory failure (a wallet could not persist its state, so nothing was changed).
    pub const MEMORY_FAILURE: u16 = 0x6581;
    /// `6700`: wrong length (Lc or the data field does not match what the command needs).
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// `6985`: conditions of use not satisfied (command out of sequence, insufficient funds).
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    /// `6A80`: incorrect parameters in the command data field.
    pub const WRONG_DATA: u16 = 0x6A80;
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    /// `6A83`: record not found.
    pub const RECORD_NOT_FOUND: u16 = 0x6A83;
    /// `6A86`: incorrect parameters P1-P2.
    pub const INCORRECT_P1_P2: u16 = 0x6A86;
    /// `6A88`: referenced data or reference data not found (GET DATA of an unknown tag).
    pub const REFERENCED_DATA_NOT_FOUND: u16 = 0x6A88;
    /// `6D00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    /// `6F00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: u16 = 0x6F00;
}

/// Why a C-APDU could not be split into its fields (ISO/IEC 7816-4 §5.1, table 1 "cases").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApduError {
    /// Fewer than the four header bytes CLA INS P1 P2.
    TooShort(usize),
    /// The body does not fit any of the cases 1, 2S, 3S, 4S, 2E, 3E, 4E: Lc disagrees with the
    /// number of bytes that follow.
    LengthMismatch,
}

impl fmt::Display for ApduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApduError::TooShort(len) => write!(f, "C-APDU of {len} bytes has no full header"),
            ApduError::LengthMismatch => write!(f, "C-APDU body does not match its Lc/Le"),
        }
    }
}

impl std::error::Error for ApduError {}

/// A parsed command APDU borrowing its data field from the received bytes.
///
/// ISO/IEC 7816-4 §5.1: header `CLA INS P1 P2`, optional `Lc` + data field, optional `Le`, in
/// short (one length byte) or extended (`00` + two length bytes) form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandApdu<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field (empty in cases 1 and 2).
    pub data: &'a [u8],
    /// Maximum number of response bytes expected: `None` when absent (cases 1 and 3); an encoded
    /// `00` means 256 (short) and `0000` means 65 536 (extended), as §5.1 specifies.
    pub le: Option<usize>,
}

impl<'a> CommandApdu<'a> {
    /// Largest C-APDU in bytes: extended case 4, `4 + 3 + 65 535 + 2` (ISO/IEC 7816-4 §5.1).
    pub const MAX_LEN: usize = 4 + 3 + 65_535 + 2;

    /// Splits `bytes` into a command APDU, recognising the seven cases of ISO/IEC 7816-4 §5.1.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let (header, body) = match bytes.split_first_chunk::<4>() {
            Some(split) => split,
            None => return Err(ApduError::TooShort(bytes.len())),
        };
        let [cla, ins, p1, p2] = *header;
        let (data, le) = split_body(body)?;
        Ok(CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }

    /// P1 and P2 as one big-endian number, the way EMV writes them (`P1P2 = 0000`).
    pub fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }
}

/// Splits the body (everything after the header) into data field and Le.
fn split_body(body: &[u8]) -> Result<(&[u8], Option<usize>), ApduError> {
    let short_le = |byte: u8| if byte == 0 { 256 } else { usize::from(byte) };
    let extended_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
        0 => 65_536,
        n => usize::from(n),
    };
    match body {
        // Case 1: header only.
        [] => Ok((&[], None)),
        // Case 2S: Le only.
        [le] => Ok((&[], Some(short_le(*le)))),
        // Case 2E: 00 + two Le bytes.
        [0, hi, lo] => Ok((&[], Some(extended_le(*hi, *lo)))),
        // Extended cases 3E/4E: 00 + two Lc bytes (non-zero), data, optionally two Le bytes.
        [0, lc_hi, lc_lo, rest @ ..] => {
            let lc = usize::from(u16::from_be_bytes([*lc_hi, *lc_lo]));
            if lc == 0 {
                return Err(ApduError::LengthMismatch);
            }
            match rest.len().checked_sub(lc) {
                Some(0) => Ok((rest, None)),
                Some(2) => {
                    let (data, le) = rest.split_at(lc);
                    Ok((data, Some(extended_le(le[0], le[1]))))
                }
                _ => Err(ApduError::LengthMismatch),
            }
        }
        // Short cases 3S/4S: Lc (non-zero), data, optionally one Le byte.
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            if lc == 0 {
                return Err(ApduError::LengthMismatch);
            }
            match rest.len().checked_sub(lc) {
                Some(0) => Ok((rest, None)),
                Some(1) => {
                    let (data, le) = rest.split_at(lc);
                    Ok((data, Some(short_le(le[0]))))
                }
                _ => Err(ApduError::LengthMismatch),
            }
        }
    }
}

/// Builds an R-APDU: the response data field followed by SW1 SW2 (ISO/IEC 7816-4 §5.1).
pub fn response(data: &[u8], sw: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(&sw.to_be_bytes());
    out
}

/// Builds an R-APDU with no data field, only the status word.
pub fn status(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

/// The status word at the end of an R-APDU, `None` if it is shorter than two bytes.
pub fn status_of(rapdu: &[u8]) -> Option<u16> {
    let (_, sw) = rapdu.split_last_chunk::<2>()?;
    Some(u16::from_be_bytes(*sw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_1_header_only() {
        // VERIFY without data (ISO/IEC 7816-4 §11.5.6 "retry counter" form): 00 20 00 80
        let apdu = CommandApdu::parse(&[0x00, 0x20, 0x00, 0x80]).unwrap();
        assert_eq!(
            (apdu.cla, apdu.ins, apdu.p1, apdu.p2),
            (0x00, 0x20, 0x00, 0x80)
        );
        assert!(apdu.data.is_empty());
        assert_eq!(apdu.le, None);
    }

    #[test]
    fn case_2s_read_record_with_le_00() {
        // READ RECORD 1, SFI 1: 00 B2 01 0C 00 -> Le = 256
        let apdu = CommandApdu::parse(&[0x00, 0xB2, 0x01, 0x0C, 0x00]).unwrap();
        assert_eq!(apdu.le, Some(256));
        assert!(apdu.data.is_empty());
    }

    #[test]
    fn case_4s_select_ppse() {
        // SELECT 2PAY.SYS.DDF01: 00 A4 04 00 0E <name> 00
        let mut bytes = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
        bytes.extend_from_slice(b"2PAY.SYS.DDF01");
        bytes.push(0x00);
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.data, b"2PAY.SYS.DDF01");
        assert_eq!(apdu.le, Some(256));
        assert_eq!(apdu.p1p2(), 0x0400);
    }

    #[test]
    fn case_3s_without_le() {
        let apdu = CommandApdu::parse(&[0x80, 0x54, 0x00, 0x00, 0x02, 0xAA, 0xBB]).unwrap();
        assert_eq!(apdu.data, &[0xAA, 0xBB]);
        assert_eq!(apdu.le, None);
    }

    #[test]
    fn extended_cases() {
        // Case 2E: 00 B0 00 00 00 00 00 -> Le = 65 536
        let apdu = CommandApdu::parse(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(apdu.le, Some(65_536));
        // Case 4E: Lc = 0x0102 bytes of data, Le = 0x0200
        let mut bytes = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x02];
        bytes.extend(std::iter::repeat_n(0x5A, 0x0102));
        bytes.extend_from_slice(&[0x02, 0x00]);
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.data.len(), 0x0102);
        assert_eq!(apdu.le, Some(0x0200));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04]),
            Err(ApduError::TooShort(3))
        );
        // Lc = 5 but only 2 data bytes.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00]),
            Err(ApduError::LengthMismatch)
        );
        // A short Lc of 0 is not a valid encoding either: 00 A4 04 00 00 01
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x01]),
            Err(ApduError::LengthMismatch)
        );
        // Extended Lc = 0 is not a valid encoding.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01]),
            Err(ApduError::LengthMismatch)
        );
    }

    #[test]
    fn responses_end_with_the_status_word() {
        assert_eq!(
            response(&[0x01, 0x02], sw::NO_ERROR),
            [0x01, 0x02, 0x90, 0x00]
        );
        assert_eq!(status(sw::FILE_NOT_FOUND), [0x6A, 0x82]);
        assert_eq!(status_of(&[0x6F, 0x00]), Some(sw::NO_PRECISE_DIAGNOSIS));
        assert_eq!(status_of(&[0x90]), None);
    }
}
