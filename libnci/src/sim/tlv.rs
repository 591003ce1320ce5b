//! Just enough BER-TLV (ISO/IEC 7816-4 §5.2, EMV Book 3 Annex B) for the reader scripts and
//! the demo cards: walk TLVs, find a tag in nested templates, read and build data object lists
//! (DOLs, EMV Book 3 §5.4).
//!
//! Tags are kept as the big-endian integer of their octets (`0x9F26`), the way EMV writes them.
//! Malformed input yields `None`, never a panic.

use std::vec::Vec;

/// One TLV: tag, value, and whether the tag marks a constructed object (bit 6 of its first
/// octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag octets as a big-endian number.
    pub tag: u32,
    /// `true` when the value is itself a sequence of TLVs.
    pub constructed: bool,
    /// The value.
    pub value: &'a [u8],
}

/// Read a tag at the front of `bytes`: `(tag, constructed, rest)`.
pub fn read_tag(bytes: &[u8]) -> Option<(u32, bool, &[u8])> {
    let (&first, mut rest) = bytes.split_first()?;
    let constructed = first & 0x20 != 0;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent octets follow while bit 8 is set; at most 3 in all is plenty for EMV.
        loop {
            let (&next, after) = rest.split_first()?;
            rest = after;
            tag = tag.checked_shl(8)? | u32::from(next);
            if tag > 0x00FF_FFFF {
                return None;
            }
            if next & 0x80 == 0 {
                break;
            }
        }
    }
    Some((tag, constructed, rest))
}

/// Read a length at the front of `bytes` (short form, or `81 xx` / `82 xx xx`).
pub fn read_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    match first {
        0x00..=0x7F => Some((usize::from(first), rest)),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            Some((usize::from(len), rest))
        }
        0x82 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            Some((usize::from(u16::from_be_bytes(*len)), rest))
        }
        _ => None,
    }
}

/// Iterator over the TLVs of one level. Stops at the first malformed object; `00`/`FF`
/// padding between objects is skipped (EMV Book 3 Annex B).
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

/// The TLVs at the top level of `bytes`.
pub fn iter(bytes: &[u8]) -> Tlvs<'_> {
    Tlvs { rest: bytes }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        while let Some((&pad, rest)) = self.rest.split_first() {
            if pad != 0x00 && pad != 0xFF {
                break;
            }
            self.rest = rest;
        }
        let parsed = read_tag(self.rest).and_then(|(tag, constructed, rest)| {
            let (len, rest) = read_len(rest)?;
            (len <= rest.len()).then(|| {
                let (value, rest) = rest.split_at(len);
                (
                    Tlv {
                        tag,
                        constructed,
                        value,
                    },
                    rest,
                )
            })
        });
        match parsed {
            Some((tlv, rest)) => {
                self.rest = rest;
                Some(tlv)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

/// The value of the first object with `tag`, searching constructed objects depth first.
pub fn find(bytes: &[u8], tag: u32) -> Option<&[u8]> {
    for tlv in iter(bytes) {
        if tlv.tag == tag {
            return Some(tlv.value);
        }
        if tlv.constructed {
            if let Some(found) = find(tlv.value, tag) {
                return Some(found);
            }
        }
    }
    None
}

/// Parse a data object list: tags with lengths, no values (EMV Book 3 §5.4).
pub fn parse_dol(dol: &[u8]) -> Option<Vec<(u32, usize)>> {
    let mut out = Vec::new();
    let mut rest = dol;
    while !rest.is_empty() {
        let (tag, _, after) = read_tag(rest)?;
        let (len, after) = read_len(after)?;
        out.push((tag, len));
        rest = after;
    }
    Some(out)
}

/// Append `tag` (as its significant octets) to `out`.
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Encode one TLV. Values longer than 65 535 octets are cut to that length.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let value = value.get(..usize::from(u16::MAX)).unwrap_or(value);
    let mut out = Vec::with_capacity(value.len() + 6);
    push_tag(&mut out, tag);
    match u8::try_from(value.len()) {
        Ok(len) if len < 0x80 => out.push(len),
        Ok(len) => out.extend_from_slice(&[0x81, len]),
        Err(_) => {
            out.push(0x82);
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_aid_in_ppse_fci() {
        // 6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 { 4F A0000000041010, 87 01 } } } }
        let entry = [
            encode(0x4F, &[0xA0, 0, 0, 0, 0x04, 0x10, 0x10]),
            encode(0x87, &[1]),
        ]
        .concat();
        let fci = encode(
            0x6F,
            &[
                encode(0x84, b"2PAY.SYS.DDF01"),
                encode(0xA5, &encode(0xBF0C, &encode(0x61, &entry))),
            ]
            .concat(),
        );
        assert_eq!(
            find(&fci, 0x4F),
            Some(&[0xA0, 0, 0, 0, 0x04, 0x10, 0x10][..])
        );
        assert_eq!(find(&fci, 0x87), Some(&[1][..]));
        assert_eq!(find(&fci, 0x9F38), None);
    }

    #[test]
    fn dol_round_trip() {
        let dol = [0x9F, 0x02, 0x06, 0x9F, 0x37, 0x04, 0x95, 0x05];
        assert_eq!(
            parse_dol(&dol),
            Some(vec![(0x9F02, 6), (0x9F37, 4), (0x95, 5)])
        );
        assert_eq!(parse_dol(&[0x9F]), None);
    }

    #[test]
    fn long_lengths() {
        let value = vec![0xAB; 200];
        let tlv = encode(0x70, &value);
        assert_eq!(&tlv[..3], &[0x70, 0x81, 200]);
        assert_eq!(find(&tlv, 0x70), Some(&value[..]));
        let long = vec![0; 300];
        assert_eq!(&encode(0x70, &long)[..4], &[0x70, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn garbage_never_panics() {
        for a in 0..=255u8 {
            for b in [0x00, 0x01, 0x81, 0x82, 0xFF] {
                let bytes = [a, b, 0x9F, 0x82, 0x05];
                let _ = find(&bytes, 0x9F26);
                let _ = parse_dol(&bytes);
                let _ = iter(&bytes).count();
            }
        }
    }
}
