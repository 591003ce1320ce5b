//! Hexadecimal text for APDUs and AIDs as they appear on command lines and in the test wallet's
//! output lines.
//!
//! Strict on input (even number of hex digits, nothing else) so that a typo in an AID on a
//! command line is an error instead of a silently different AID. Not a general-purpose codec.

use std::fmt;

/// Why a hex string was refused by [`decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HexError {
    /// The string has an odd number of digits, so it does not describe whole bytes.
    OddLength(usize),
    /// A character that is not a hex digit, at this byte offset.
    InvalidDigit(usize),
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::OddLength(len) => write!(f, "odd number of hex digits ({len})"),
            HexError::InvalidDigit(at) => write!(f, "not a hex digit at offset {at}"),
        }
    }
}

impl std::error::Error for HexError {}

/// Encodes bytes as upper-case hex without separators (`00A40400`), the way APDU traces are
/// usually written.
pub fn encode_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
    }
    out
}

/// Decodes a hex string (either case, no separators) into bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(HexError::OddLength(digits.len()));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(index, pair)| {
            let high = nibble(pair[0]).ok_or(HexError::InvalidDigit(index * 2))?;
            let low = nibble(pair[1]).ok_or(HexError::InvalidDigit(index * 2 + 1))?;
            Ok(high << 4 | low)
        })
        .collect()
}

/// Bytes given as hex on a command line (`--aid A0000000041010`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl std::str::FromStr for HexBytes {
    type Err = HexError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        decode(text).map(HexBytes)
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_a_select_command() {
        let select_ppse = decode("00a404000e325041592e5359532e444446303100").unwrap();
        assert_eq!(select_ppse.len(), 20);
        assert_eq!(
            encode_upper(&select_ppse),
            "00A404000E325041592E5359532E444446303100"
        );
    }

    #[test]
    fn refuses_odd_length_and_non_digits() {
        assert_eq!(decode("A00"), Err(HexError::OddLength(3)));
        assert_eq!(decode("A0 0"), Err(HexError::InvalidDigit(2)));
        assert_eq!(decode("A00x"), Err(HexError::InvalidDigit(3)));
        assert_eq!(decode(""), Ok(Vec::new()));
    }
}
