//! The few BER-TLV and EMV data-object-list tools the wallets need (ISO/IEC 7816-4 §5.2 BER-TLV
//! data objects; EMV Book 3 Annex B "Rules for BER-TLV data objects" and §5.4 "Rules for using
//! a Data Object List (DOL)").
//!
//! Encoding builds FCIs, records and response templates; parsing reads them back (tests, and the
//! GPO command template `83`). Tags are written as the number their bytes spell (`0x9F02`,
//! `0xBF0C`), at most three bytes. Indefinite lengths, lengths over three bytes and the `00`/`FF`
//! padding some cards put between objects are refused, not skipped: the wallets never produce
//! them, and EMV forbids the first two.

use std::fmt;

/// Why bytes could not be read as BER-TLV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlvError {
    /// The object ends before its tag, length or value is complete.
    Truncated,
    /// A tag longer than three bytes, or a tag byte `00`.
    BadTag,
    /// An indefinite (`80`) or over-long (`84`..) length field (EMV Book 3 Annex B.2).
    BadLength,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::Truncated => write!(f, "BER-TLV object is truncated"),
            TlvError::BadTag => write!(f, "BER-TLV tag is malformed or too long"),
            TlvError::BadLength => write!(f, "BER-TLV length is indefinite or too long"),
        }
    }
}

impl std::error::Error for TlvError {}

/// Appends the tag bytes of `tag` (its big-endian bytes without leading zeros).
fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    out.extend_from_slice(&bytes[first..]);
}

/// Appends a definite length in its shortest form (ISO/IEC 7816-4 §5.2.2.2): `0..=7F` in one
/// byte, then `81 xx`, `82 xx xx`, `83 xx xx xx`.
fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            // BER allows more, but nothing a card sends comes near 16 MiB; clamp rather than
            // emit a length the value does not have.
            let len = len.min(0xFF_FFFF) as u32;
            out.push(0x83);
            out.extend_from_slice(&len.to_be_bytes()[1..]);
        }
    }
}

/// Appends one data object `tag | length | value`.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_length(out, value.len());
    out.extend_from_slice(value);
}

/// Encodes one data object `tag | length | value`.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

/// Encodes a constructed data object whose value is the concatenation of already encoded
/// `children` (an FCI `6F`, a record template `70`, a response template `77`).
pub fn constructed(tag: u32, children: &[Vec<u8>]) -> Vec<u8> {
    encode(tag, &children.concat())
}

/// One data object read from a buffer; `value` borrows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag as the number its bytes spell (`0x9F02`).
    pub tag: u32,
    /// The value field.
    pub value: &'a [u8],
}

/// Reads the first data object of `data`; returns it and the bytes after it.
pub fn parse_one(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = data.split_first().ok_or(TlvError::Truncated)?;
    if first == 0x00 {
        return Err(TlvError::BadTag);
    }
    let mut tag = u32::from(first);
    // ISO/IEC 7816-4 §5.2.2.1: low five bits all set means "subsequent bytes follow", each with
    // b8 set while another follows.
    if first & 0x1F == 0x1F {
        let mut count = 1;
        loop {
            let (&byte, after) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = after;
            tag = tag << 8 | u32::from(byte);
            count += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if count == 3 {
                return Err(TlvError::BadTag);
            }
        }
    }
    let (&len_byte, after) = rest.split_first().ok_or(TlvError::Truncated)?;
    rest = after;
    let len = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x83 => {
            let count = usize::from(len_byte & 0x7F);
            if rest.len() < count {
                return Err(TlvError::Truncated);
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        }
        _ => return Err(TlvError::BadLength),
    };
    if rest.len() < len {
        return Err(TlvError::Truncated);
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Iterates over the data objects at one level of `data`; stops after the first error.
pub fn iter(data: &[u8]) -> TlvIter<'_> {
    TlvIter { rest: data }
}

/// Iterator returned by [`iter`].
#[derive(Clone, Debug)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match parse_one(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Finds the value of the first object with `tag` at the top level of `data`.
pub fn find(data: &[u8], tag: u32) -> Option<&[u8]> {
    iter(data)
        .map_while(Result::ok)
        .find(|tlv| tlv.tag == tag)
        .map(|tlv| tlv.value)
}

/// Follows `path` through nested constructed objects (`[0x6F, 0xA5, 0xBF0C]`) and returns the
/// value of the last one.
pub fn find_path<'a>(data: &'a [u8], path: &[u32]) -> Option<&'a [u8]> {
    path.iter().try_fold(data, |level, &tag| find(level, tag))
}

/// An EMV Data Object List: the tags and lengths a card asks the terminal to send, in order
/// (EMV Book 3 §5.4). The terminal answers with the values concatenated, without tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dol {
    entries: &'static [(u32, u8)],
}

impl Dol {
    /// A DOL of `(tag, length)` entries.
    pub const fn new(entries: &'static [(u32, u8)]) -> Self {
        Dol { entries }
    }

    /// The DOL itself as it is put in a PDOL (`9F38`) or CDOL (`8C`/`8D`): tag, length, ...
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &(tag, len) in self.entries {
            push_tag(&mut out, tag);
            out.push(len);
        }
        out
    }

    /// Length of the data a terminal sends for this DOL.
    pub fn data_len(&self) -> usize {
        self.entries.iter().map(|&(_, len)| usize::from(len)).sum()
    }

    /// The value of `tag` inside DOL-related `data`, `None` if the tag is not in the DOL or the
    /// data is shorter than the DOL says.
    pub fn field<'a>(&self, data: &'a [u8], tag: u32) -> Option<&'a [u8]> {
        let mut offset = 0usize;
        for &(entry_tag, len) in self.entries {
            let end = offset + usize::from(len);
            if entry_tag == tag {
                return data.get(offset..end);
            }
            offset = end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_one_and_two_byte_tags_and_long_lengths() {
        // 84 0E "2PAY.SYS.DDF01" (DF Name)
        assert_eq!(encode(0x84, b"2PAY.SYS.DDF01")[..2], [0x84, 0x0E]);
        // 9F36 02 0001 (ATC)
        assert_eq!(
            encode(0x9F36, &[0x00, 0x01]),
            [0x9F, 0x36, 0x02, 0x00, 0x01]
        );
        // A 200-byte value needs 81 C8.
        assert_eq!(encode(0x70, &[0; 200])[..3], [0x70, 0x81, 0xC8]);
        // A 300-byte value needs 82 01 2C.
        assert_eq!(encode(0x70, &[0; 300])[..4], [0x70, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn parses_nested_fci() {
        // PPSE FCI: 6F { 84 name, A5 { BF0C { 61 { 4F AID } } } }
        let entry = constructed(0x61, &[encode(0x4F, &[0xA0, 0x00, 0x00, 0x00, 0x04])]);
        let fci = constructed(
            0x6F,
            &[
                encode(0x84, b"2PAY.SYS.DDF01"),
                constructed(0xA5, &[constructed(0xBF0C, &[entry])]),
            ],
        );
        assert_eq!(
            find_path(&fci, &[0x6F, 0xA5, 0xBF0C, 0x61, 0x4F]),
            Some(&[0xA0, 0x00, 0x00, 0x00, 0x04][..])
        );
        assert_eq!(find_path(&fci, &[0x6F, 0x84]), Some(&b"2PAY.SYS.DDF01"[..]));
        assert_eq!(find_path(&fci, &[0x6F, 0x50]), None);
    }

    #[test]
    fn refuses_truncated_and_indefinite_objects() {
        assert_eq!(parse_one(&[0x9F]), Err(TlvError::Truncated));
        assert_eq!(
            parse_one(&[0x9F, 0x02, 0x06, 0x00]),
            Err(TlvError::Truncated)
        );
        assert_eq!(
            parse_one(&[0x70, 0x80, 0x00, 0x00]),
            Err(TlvError::BadLength)
        );
        assert_eq!(
            parse_one(&[0x70, 0x84, 0, 0, 0, 1, 0]),
            Err(TlvError::BadLength)
        );
        assert_eq!(
            parse_one(&[0x1F, 0x81, 0x82, 0x03, 0x00]),
            Err(TlvError::BadTag)
        );
        assert_eq!(parse_one(&[0x00, 0x00]), Err(TlvError::BadTag));
        let mut broken = iter(&[0x5A, 0x01, 0x12, 0x5F]);
        assert!(matches!(broken.next(), Some(Ok(Tlv { tag: 0x5A, .. }))));
        assert_eq!(broken.next(), Some(Err(TlvError::Truncated)));
        assert_eq!(broken.next(), None);
    }

    #[test]
    fn dol_encoding_and_fields() {
        // PDOL 9F02 06 | 5F2A 02 | 9F37 04
        const PDOL: Dol = Dol::new(&[(0x9F02, 6), (0x5F2A, 2), (0x9F37, 4)]);
        assert_eq!(
            PDOL.encode(),
            [0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9F, 0x37, 0x04]
        );
        assert_eq!(PDOL.data_len(), 12);
        let data = [0, 0, 0, 0, 0x12, 0x34, 0x09, 0x78, 0xDE, 0xAD, 0xBE, 0xEF];
        assert_eq!(PDOL.field(&data, 0x5F2A), Some(&[0x09, 0x78][..]));
        assert_eq!(
            PDOL.field(&data, 0x9F37),
            Some(&[0xDE, 0xAD, 0xBE, 0xEF][..])
        );
        assert_eq!(PDOL.field(&data[..10], 0x9F37), None);
        assert_eq!(PDOL.field(&data, 0x9A), None);
    }
}
