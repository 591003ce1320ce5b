//! Application identifiers (AIDs) as the HCE registry stores them.
//!
//! An AID names an application on a card: a 5-byte registered application provider
//! identifier (RID) followed by up to 11 bytes of proprietary extension (PIX), so 5 to 16
//! bytes in all (ISO/IEC 7816-4 §8.2.1.2 and §12.2.3, ISO/IEC 7816-5). This module only
//! validates lengths and converts to and from hex text; it knows nothing of matching rules or
//! categories.

use core::fmt;
use core::str::FromStr;

/// Shortest AID: a bare RID (ISO/IEC 7816-5).
pub const MIN_AID_LEN: usize = 5;
/// Longest AID / DF name (ISO/IEC 7816-4 §8.2.1.2).
pub const MAX_AID_LEN: usize = 16;

/// A validated application identifier of 5 to 16 bytes (ISO/IEC 7816-4 §8.2.1.2).
///
/// Ordering is lexicographic over the bytes, so sorted AIDs keep every AID next to the AIDs
/// it is a prefix of — the registry's index relies on that.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid(heapless::Vec<u8, MAX_AID_LEN>);

/// Why bytes or text are not an [`Aid`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AidError {
    /// Fewer than 5 bytes.
    TooShort {
        /// Length in bytes.
        len: usize,
    },
    /// More than 16 bytes.
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// Hex text with an odd number of digits.
    OddHexLength {
        /// Number of hex digits.
        digits: usize,
    },
    /// A character that is not a hex digit.
    InvalidHexDigit {
        /// Position of the character (in characters, from 0).
        position: usize,
        /// The offending character.
        found: char,
    },
}

impl fmt::Display for AidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AidError::TooShort { len } => write!(
                f,
                "AID of {len} bytes is too short: ISO/IEC 7816-4 AIDs are {MIN_AID_LEN} to {MAX_AID_LEN} bytes"
            ),
            AidError::TooLong { len } => write!(
                f,
                "AID of {len} bytes is too long: ISO/IEC 7816-4 AIDs are {MIN_AID_LEN} to {MAX_AID_LEN} bytes"
            ),
            AidError::OddHexLength { digits } => {
                write!(f, "AID hex text has {digits} digits; two digits per byte expected")
            }
            AidError::InvalidHexDigit { position, found } => {
                write!(f, "AID hex text has {found:?} at position {position}; expected 0-9, A-F")
            }
        }
    }
}

impl std::error::Error for AidError {}

impl Aid {
    /// Validate `bytes` as an AID (5 to 16 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Aid, AidError> {
        if bytes.len() < MIN_AID_LEN {
            return Err(AidError::TooShort { len: bytes.len() });
        }
        heapless::Vec::from_slice(bytes)
            .map(Aid)
            .map_err(|_| AidError::TooLong { len: bytes.len() })
    }

    /// Parse hex text such as `A0000000041010` (either case, no separators).
    pub fn from_hex(text: &str) -> Result<Aid, AidError> {
        let mut digits = 0usize;
        let mut bytes = [0u8; MAX_AID_LEN];
        let mut len = 0usize;
        let mut high: Option<u8> = None;
        for (position, found) in text.chars().enumerate() {
            let nibble = found
                .to_digit(16)
                .ok_or(AidError::InvalidHexDigit { position, found })?
                as u8;
            digits += 1;
            match high.take() {
                None => high = Some(nibble),
                Some(h) => {
                    // Keep counting past 16 bytes so the error reports the real length.
                    if let Some(slot) = bytes.get_mut(len) {
                        *slot = (h << 4) | nibble;
                    }
                    len += 1;
                }
            }
        }
        if high.is_some() {
            return Err(AidError::OddHexLength { digits });
        }
        if len > MAX_AID_LEN {
            return Err(AidError::TooLong { len });
        }
        Aid::from_bytes(bytes.get(..len).unwrap_or_default())
    }

    /// The AID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (5 to 16).
    #[allow(clippy::len_without_is_empty)] // an AID is never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when `self` is a prefix of `other` (or equal to it).
    pub fn is_prefix_of(&self, other: &[u8]) -> bool {
        other.starts_with(self.as_bytes())
    }
}

impl TryFrom<&[u8]> for Aid {
    type Error = AidError;

    fn try_from(bytes: &[u8]) -> Result<Aid, AidError> {
        Aid::from_bytes(bytes)
    }
}

impl FromStr for Aid {
    type Err = AidError;

    fn from_str(text: &str) -> Result<Aid, AidError> {
        Aid::from_hex(text)
    }
}

impl AsRef<[u8]> for Aid {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Upper-case hex, no separators: the form [`Aid::from_hex`] reads.
impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hce_aid_lengths() {
        assert_eq!(
            Aid::from_bytes(&[0xA0, 0, 0, 0]),
            Err(AidError::TooShort { len: 4 })
        );
        assert_eq!(Aid::from_bytes(&[]), Err(AidError::TooShort { len: 0 }));
        let rid = Aid::from_bytes(&[0xA0, 0, 0, 0, 0x04]).unwrap();
        assert_eq!(rid.len(), 5);
        let longest = Aid::from_bytes(&[0xF0; 16]).unwrap();
        assert_eq!(longest.len(), 16);
        assert_eq!(
            Aid::from_bytes(&[0xF0; 17]),
            Err(AidError::TooLong { len: 17 })
        );
    }

    #[test]
    fn hce_aid_hex() {
        let mc: Aid = "A0000000041010".parse().unwrap();
        assert_eq!(mc.as_bytes(), [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]);
        assert_eq!(mc.to_string(), "A0000000041010");
        assert_eq!(format!("{mc:?}"), "Aid(A0000000041010)");
        assert_eq!(Aid::from_hex("a0000000041010"), Ok(mc.clone()));
        assert_eq!(
            Aid::from_hex("A00000000"),
            Err(AidError::OddHexLength { digits: 9 })
        );
        assert_eq!(
            Aid::from_hex("A0000000041G10"),
            Err(AidError::InvalidHexDigit {
                position: 11,
                found: 'G'
            })
        );
        assert_eq!(
            Aid::from_hex("A0 00"),
            Err(AidError::InvalidHexDigit {
                position: 2,
                found: ' '
            })
        );
        assert_eq!(Aid::from_hex(""), Err(AidError::TooShort { len: 0 }));
        assert_eq!(Aid::from_hex("A000"), Err(AidError::TooShort { len: 2 }));
        assert_eq!(
            Aid::from_hex(&"F0".repeat(17)),
            Err(AidError::TooLong { len: 17 })
        );
        assert_eq!(Aid::from_hex(&"F0".repeat(16)).unwrap().len(), 16);
    }

    #[test]
    fn hce_aid_prefix_and_order() {
        let rid: Aid = "A000000004".parse().unwrap();
        let mc: Aid = "A0000000041010".parse().unwrap();
        assert!(rid.is_prefix_of(mc.as_bytes()));
        assert!(!mc.is_prefix_of(rid.as_bytes()));
        assert!(rid < mc, "a prefix sorts before its extensions");
    }
}
