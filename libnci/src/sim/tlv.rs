//! BER-TLV data objects (ISO/IEC 7816-4 §5.2; EMV Book 3 Annex B) and EMV data object lists
//! (DOLs, EMV Book 3 §5.4), for both sides of a contactless conversation: the card
//! applications that build FCIs, records and response templates, and the reader scripts that
//! read them back and answer the card's DOLs.
//!
//! What it does:
//! - reading: [`parse_one`], [`iter`], [`find`], [`find_path`] over borrowed bytes; no
//!   allocation, no panic, a [`TlvError`] for what is malformed;
//! - building: [`push`], [`encode`], [`constructed`] (definite lengths in their shortest form);
//! - DOLs: [`Dol`], a checked view over the tag/length list a card puts in a PDOL (`9F38`) or
//!   CDOL (`8C`/`8D`), with the length and the fields of the data a terminal sends for it.
//!
//! Tags are kept as the big-endian number their octets spell (`0x9F26`, `0xBF0C`), the way EMV
//! writes them, and have at most three octets. What it does not do: indefinite lengths (BER
//! allows them, ISO/IEC 7816-4 §5.2.2.2 and EMV do not), tags of four octets or more, schema
//! knowledge (which tags are constructed in which template is the caller's business).

use core::fmt;
use std::vec::Vec;

/// Why bytes are not a well-formed BER-TLV object or DOL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlvError {
    /// The object ends before its tag, length or value is complete.
    Truncated,
    /// The first tag octet is `00` or `FF` (ISO/IEC 7816-4 §5.2.2.1: invalid, used for
    /// padding), the first subsequent octet is `80` (a tag number written with a leading zero),
    /// or the tag is longer than three octets.
    BadTag,
    /// An indefinite (`80`) or over-long (`85`..`FF`) length field (ISO/IEC 7816-4 §5.2.2.2:
    /// one to five octets, definite form).
    BadLength,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::Truncated => write!(f, "BER-TLV object is truncated"),
            TlvError::BadTag => write!(f, "BER-TLV tag is malformed or longer than 3 octets"),
            TlvError::BadLength => write!(f, "BER-TLV length is indefinite or too long"),
        }
    }
}

impl core::error::Error for TlvError {}

/// One data object; `value` borrows from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag octets as a big-endian number (`0x9F02`).
    pub tag: u32,
    /// Bit 6 of the first tag octet: the value is itself a sequence of data objects
    /// (ISO/IEC 7816-4 §5.2.2.1).
    pub constructed: bool,
    /// The value field.
    pub value: &'a [u8],
}

/// Reads a tag at the front of `bytes`: `(tag, constructed, rest)` (ISO/IEC 7816-4 §5.2.2.1).
fn read_tag(bytes: &[u8]) -> Result<(u32, bool, &[u8]), TlvError> {
    let (&first, mut rest) = bytes.split_first().ok_or(TlvError::Truncated)?;
    if first == 0x00 || first == 0xFF {
        return Err(TlvError::BadTag);
    }
    let constructed = first & 0x20 != 0;
    let mut tag = u32::from(first);
    // Low five bits all set: subsequent octets follow, each with b8 set while another follows.
    if first & 0x1F == 0x1F {
        let mut octets = 1;
        loop {
            let (&next, after) = rest.split_first().ok_or(TlvError::Truncated)?;
            if octets == 1 && next == 0x80 {
                return Err(TlvError::BadTag);
            }
            rest = after;
            tag = tag << 8 | u32::from(next);
            octets += 1;
            if next & 0x80 == 0 {
                break;
            }
            if octets == 3 {
                return Err(TlvError::BadTag);
            }
        }
    }
    Ok((tag, constructed, rest))
}

/// Reads a definite length at the front of `bytes`: `00`..`7F`, or `81`..`84` followed by one
/// to four octets (ISO/IEC 7816-4 §5.2.2.2).
fn read_len(bytes: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let (&first, rest) = bytes.split_first().ok_or(TlvError::Truncated)?;
    match first {
        0x00..=0x7F => Ok((usize::from(first), rest)),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7F);
            if rest.len() < count {
                return Err(TlvError::Truncated);
            }
            let (octets, rest) = rest.split_at(count);
            let len = octets.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
            // A length the address space cannot hold is longer than any buffer it came in.
            let len = usize::try_from(len).map_err(|_| TlvError::Truncated)?;
            Ok((len, rest))
        }
        _ => Err(TlvError::BadLength),
    }
}

/// Reads the data object at the very front of `data` (no padding skipped) and returns it with
/// the bytes after it.
pub fn parse_one(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, constructed, rest) = read_tag(data)?;
    let (len, rest) = read_len(rest)?;
    if rest.len() < len {
        return Err(TlvError::Truncated);
    }
    let (value, rest) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            constructed,
            value,
        },
        rest,
    ))
}

/// The data objects at one level of `data`, in order.
///
/// `00` and `FF` octets before, between and after objects are skipped: EMV Book 3 Annex B1
/// allows `00` there (erased or modified objects) and ISO/IEC 7816-4 §5.2.2.1 reserves both as
/// padding. After the first malformed object the iterator yields its error, then ends.
pub fn iter(data: &[u8]) -> Tlvs<'_> {
    Tlvs { rest: data }
}

/// Iterator returned by [`iter`].
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self
            .rest
            .iter()
            .position(|&b| b != 0x00 && b != 0xFF)
            .unwrap_or(self.rest.len());
        self.rest = self.rest.get(start..).unwrap_or_default();
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

/// The value of the first object tagged `tag` at the top level of `data` (objects after a
/// malformed one are not looked at).
pub fn find(data: &[u8], tag: u32) -> Option<&[u8]> {
    iter(data)
        .map_while(Result::ok)
        .find(|tlv| tlv.tag == tag)
        .map(|tlv| tlv.value)
}

/// Follows `path` through nested objects (`[0x6F, 0xA5, 0xBF0C]`), taking the first match at
/// each level, and returns the value of the last one.
pub fn find_path<'a>(data: &'a [u8], path: &[u32]) -> Option<&'a [u8]> {
    path.iter().try_fold(data, |level, &tag| find(level, tag))
}

/// Appends the octets of `tag` (its big-endian bytes without leading zeros; tag `0` is `00`).
fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
}

/// Appends a definite length in its shortest form (ISO/IEC 7816-4 §5.2.2.2): `00`..`7F` in one
/// octet, else `8n` and n octets. Lengths beyond four octets, which no APDU comes near, use
/// more as BER allows (ISO/IEC 8825-1 §8.1.3.5) rather than misstate the value.
fn push_len(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let octets = bytes.get(skip..).unwrap_or_default();
            out.push(0x80 | octets.len() as u8);
            out.extend_from_slice(octets);
        }
    }
}

/// Appends one data object `tag | length | value` to `out`.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// One data object `tag | length | value`.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    push(&mut out, tag, value);
    out
}

/// A constructed data object whose value is the concatenation of the already encoded
/// `children` (an FCI `6F`, a record template `70`, a response template `77`).
pub fn constructed(tag: u32, children: &[Vec<u8>]) -> Vec<u8> {
    encode(tag, &children.concat())
}

/// One entry of a [`Dol`]: a data object the card asks for, and how many octets of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DolEntry {
    /// Tag of the data object.
    pub tag: u32,
    /// Octets the card wants for it (EMV Book 3 §5.4 says how a terminal fits its value).
    pub len: usize,
}

/// A data object list (EMV Book 3 §5.4): tags, each followed by a one-octet length, no values.
/// A card puts one in its FCI (PDOL `9F38`) or a record (CDOL1 `8C`, CDOL2 `8D`); the terminal
/// answers with the values concatenated in the same order, without tags or lengths.
///
/// A view over the encoded list, checked like a smoltcp packet view: [`Dol::new_checked`] for
/// bytes from elsewhere, [`Dol::new_unchecked`] for a card's own constant. Accessors never panic
/// either way; on an unchecked malformed list they stop at the first bad entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dol<'a> {
    bytes: &'a [u8],
}

impl<'a> Dol<'a> {
    /// Wraps `bytes` without checking them (for constants whose bytes a test checks).
    pub const fn new_unchecked(bytes: &'a [u8]) -> Dol<'a> {
        Dol { bytes }
    }

    /// Wraps `bytes` after checking that every entry is a tag and a length octet.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Dol<'a>, TlvError> {
        let dol = Dol { bytes };
        dol.entries().try_for_each(|entry| entry.map(drop))?;
        Ok(dol)
    }

    /// The encoded list, as it goes into a `9F38`, `8C` or `8D` object.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The entries, in order; after the first malformed one its error, then the end.
    pub fn entries(&self) -> DolEntries<'a> {
        DolEntries { rest: self.bytes }
    }

    /// Octets of data a terminal sends for this list (the well-formed entries' lengths).
    pub fn data_len(&self) -> usize {
        self.entries().map_while(Result::ok).map(|e| e.len).sum()
    }

    /// The value of `tag` inside DOL related `data`; `None` when the tag is not in the list or
    /// `data` is shorter than the list says.
    pub fn field<'d>(&self, data: &'d [u8], tag: u32) -> Option<&'d [u8]> {
        let mut offset = 0usize;
        for entry in self.entries().map_while(Result::ok) {
            let end = offset.checked_add(entry.len)?;
            if entry.tag == tag {
                return data.get(offset..end);
            }
            offset = end;
        }
        None
    }
}

/// Iterator returned by [`Dol::entries`].
#[derive(Debug, Clone)]
pub struct DolEntries<'a> {
    rest: &'a [u8],
}

impl Iterator for DolEntries<'_> {
    type Item = Result<DolEntry, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = read_tag(self.rest).and_then(|(tag, _, rest)| {
            let (&len, rest) = rest.split_first().ok_or(TlvError::Truncated)?;
            Ok((
                DolEntry {
                    tag,
                    len: usize::from(len),
                },
                rest,
            ))
        });
        match parsed {
            Ok((entry, rest)) => {
                self.rest = rest;
                Some(Ok(entry))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_two_and_three_octet_tags() {
        // 84 0E "2PAY.SYS.DDF01" (DF name)
        assert_eq!(encode(0x84, b"2PAY.SYS.DDF01")[..2], [0x84, 0x0E]);
        // 9F36 02 0001 (ATC)
        assert_eq!(
            encode(0x9F36, &[0x00, 0x01]),
            [0x9F, 0x36, 0x02, 0x00, 0x01]
        );
        // DF8117 (a three-octet kernel tag) round-trips.
        let tlv = encode(0xDF_8117, &[0x20]);
        assert_eq!(tlv, [0xDF, 0x81, 0x17, 0x01, 0x20]);
        let (object, rest) = parse_one(&tlv).unwrap();
        assert_eq!(
            (object.tag, object.value, rest),
            (0xDF_8117, &[0x20][..], &[][..])
        );
        // BF0C is constructed, 9F36 is not.
        assert!(parse_one(&encode(0xBF0C, &[])).unwrap().0.constructed);
        assert!(!parse_one(&encode(0x9F36, &[0, 1])).unwrap().0.constructed);
    }

    #[test]
    fn lengths_in_their_shortest_form() {
        assert_eq!(encode(0x70, &[0; 127])[..2], [0x70, 0x7F]);
        // 200 octets need 81 C8, 300 need 82 01 2C, 70 000 need 83 01 11 70.
        assert_eq!(encode(0x70, &[0; 200])[..3], [0x70, 0x81, 0xC8]);
        assert_eq!(encode(0x70, &[0; 300])[..4], [0x70, 0x82, 0x01, 0x2C]);
        let big = vec![0xAB; 70_000];
        let tlv = encode(0x70, &big);
        assert_eq!(tlv[..5], [0x70, 0x83, 0x01, 0x11, 0x70]);
        assert_eq!(find(&tlv, 0x70), Some(&big[..]));
        // A non-minimal length is still read (BER does not require the shortest form).
        assert_eq!(find(&[0x5A, 0x81, 0x01, 0x12], 0x5A), Some(&[0x12][..]));
    }

    #[test]
    fn finds_the_aid_in_a_ppse_fci() {
        // 6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 { 4F A0000000041010, 87 01 } } } }
        let entry = constructed(
            0x61,
            &[
                encode(0x4F, &[0xA0, 0, 0, 0, 0x04, 0x10, 0x10]),
                encode(0x87, &[1]),
            ],
        );
        let fci = constructed(
            0x6F,
            &[
                encode(0x84, b"2PAY.SYS.DDF01"),
                constructed(0xA5, &[constructed(0xBF0C, &[entry])]),
            ],
        );
        assert_eq!(
            find_path(&fci, &[0x6F, 0xA5, 0xBF0C, 0x61, 0x4F]),
            Some(&[0xA0, 0, 0, 0, 0x04, 0x10, 0x10][..])
        );
        assert_eq!(find_path(&fci, &[0x6F, 0x84]), Some(&b"2PAY.SYS.DDF01"[..]));
        // find looks at one level only.
        assert_eq!(find(&fci, 0x4F), None);
        assert_eq!(find_path(&fci, &[0x6F, 0x9F38]), None);
    }

    #[test]
    fn padding_between_objects_is_skipped() {
        // 00 5A 01 12 00 00 FF 5F24 03 291231 00 (EMV Book 3 Annex B1)
        let data = [
            0x00, 0x5A, 0x01, 0x12, 0x00, 0x00, 0xFF, 0x5F, 0x24, 0x03, 0x29, 0x12, 0x31, 0x00,
        ];
        let tags: Vec<u32> = iter(&data).map(|t| t.unwrap().tag).collect();
        assert_eq!(tags, [0x5A, 0x5F24]);
        assert_eq!(find(&data, 0x5F24), Some(&[0x29, 0x12, 0x31][..]));
        // parse_one itself takes no padding.
        assert_eq!(parse_one(&data), Err(TlvError::BadTag));
    }

    #[test]
    fn malformed_objects_are_errors() {
        assert_eq!(parse_one(&[]), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[0x9F]), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[0x9F, 0x02]), Err(TlvError::Truncated));
        assert_eq!(
            parse_one(&[0x9F, 0x02, 0x06, 0x00]),
            Err(TlvError::Truncated)
        );
        assert_eq!(parse_one(&[0x70, 0x82, 0x01]), Err(TlvError::Truncated));
        // Indefinite length, and a six-octet length field.
        assert_eq!(
            parse_one(&[0x70, 0x80, 0x00, 0x00]),
            Err(TlvError::BadLength)
        );
        assert_eq!(
            parse_one(&[0x70, 0x85, 0, 0, 0, 0, 1, 0]),
            Err(TlvError::BadLength)
        );
        // A four-octet tag, a tag number with a leading zero octet.
        assert_eq!(
            parse_one(&[0x1F, 0x81, 0x82, 0x03, 0x00]),
            Err(TlvError::BadTag)
        );
        assert_eq!(parse_one(&[0x1F, 0x80, 0x01, 0x00]), Err(TlvError::BadTag));
        // The iterator yields the error once, then ends.
        let mut broken = iter(&[0x5A, 0x01, 0x12, 0x5F]);
        assert!(matches!(broken.next(), Some(Ok(Tlv { tag: 0x5A, .. }))));
        assert_eq!(broken.next(), Some(Err(TlvError::Truncated)));
        assert_eq!(broken.next(), None);
    }

    #[test]
    fn dol_entries_length_and_fields() {
        // PDOL 9F02 06 | 5F2A 02 | 9F37 04
        let pdol = Dol::new_checked(&[0x9F, 0x02, 0x06, 0x5F, 0x2A, 0x02, 0x9F, 0x37, 0x04]);
        let pdol = pdol.unwrap();
        let entries: Vec<DolEntry> = pdol.entries().map(Result::unwrap).collect();
        assert_eq!(
            entries,
            [
                DolEntry {
                    tag: 0x9F02,
                    len: 6
                },
                DolEntry {
                    tag: 0x5F2A,
                    len: 2
                },
                DolEntry {
                    tag: 0x9F37,
                    len: 4
                },
            ]
        );
        assert_eq!(pdol.data_len(), 12);
        let data = [0, 0, 0, 0, 0x12, 0x34, 0x09, 0x78, 0xDE, 0xAD, 0xBE, 0xEF];
        assert_eq!(pdol.field(&data, 0x5F2A), Some(&[0x09, 0x78][..]));
        assert_eq!(
            pdol.field(&data, 0x9F37),
            Some(&[0xDE, 0xAD, 0xBE, 0xEF][..])
        );
        assert_eq!(pdol.field(&data[..10], 0x9F37), None);
        assert_eq!(pdol.field(&data, 0x9A), None);
        // An empty list asks for nothing.
        assert_eq!(Dol::new_checked(&[]).map(|d| d.data_len()), Ok(0));
    }

    #[test]
    fn malformed_dols_are_errors() {
        assert_eq!(Dol::new_checked(&[0x9F]), Err(TlvError::Truncated));
        assert_eq!(Dol::new_checked(&[0x9F, 0x02]), Err(TlvError::Truncated));
        assert_eq!(Dol::new_checked(&[0x00, 0x01]), Err(TlvError::BadTag));
        // Unchecked: the well-formed prefix counts, the rest is ignored.
        let dol = Dol::new_unchecked(&[0x9A, 0x03, 0x9F]);
        assert_eq!(dol.data_len(), 3);
        assert_eq!(dol.entries().nth(1), Some(Err(TlvError::Truncated)));
    }

    #[test]
    fn garbage_never_panics() {
        for a in 0..=255u8 {
            for b in [0x00, 0x01, 0x1F, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF] {
                let bytes = [a, b, 0x9F, 0x82, 0x05, 0x01];
                let _ = find_path(&bytes, &[u32::from(a), 0x9F26]);
                let _ = iter(&bytes).count();
                let _ = Dol::new_unchecked(&bytes).data_len();
                let _ = Dol::new_unchecked(&bytes).field(&bytes, 0x9F82);
            }
        }
    }
}
