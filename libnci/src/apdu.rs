//! ISO/IEC 7816-4 command and response APDUs, as seen by a card emulated over ISO-DEP.
//!
//! What this module does:
//! - [`CommandApdu`]: a borrowed view of a command APDU (C-APDU) in any of the seven cases of
//!   ISO/IEC 7816-4 §5.1 (1, 2S, 3S, 4S, 2E, 3E, 4E), with checked [`CommandApdu::parse`] and
//!   [`CommandApdu::emit_into`]/[`CommandApdu::buffer_len`] for building one.
//! - [`select_by_df_name`] / [`classify_select`]: recognise `SELECT` by DF name (application
//!   identifier), ISO/IEC 7816-4 §11.2.2.
//! - [`StatusWord`]: the trailer SW1-SW2 of a response APDU (R-APDU), ISO/IEC 7816-4 §5.6.
//! - [`CommandApdu::header_error`]: the class and instruction bytes no card accepts (CLA `FF`,
//!   INS `6X`/`9X`, ISO/IEC 7816-4 §5.4.1–§5.4.2).
//!
//! What it does not do: secure messaging, command chaining (CLA bit 5), logical channel
//! management or `GET RESPONSE` handling. Those are the business of the application answering
//! the APDU. Nothing here allocates or panics, whatever the input bytes.

use core::fmt;

/// Why bytes are not a well-formed C-APDU, or why a [`CommandApdu`] cannot be encoded.
///
/// The length rules are those of ISO/IEC 7816-4 §5.1 ("Command-response pairs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApduError {
    /// Fewer than the four header bytes CLA INS P1 P2.
    TooShort {
        /// Number of bytes received.
        len: usize,
    },
    /// The byte after the header is `00` (the extended-length marker) but fewer than two
    /// further bytes follow, so neither an extended Lc nor an extended Le is complete.
    TruncatedExtendedLength {
        /// Number of bytes received.
        len: usize,
    },
    /// Extended length marker `00` followed by Lc `00 00` and more bytes: an extended Lc of
    /// zero is not allowed (§5.1: Nc is 1 to 65 535), and these bytes are no valid case 2E.
    ExtendedZeroLc,
    /// Lc announces more command data than the APDU holds.
    DataTruncated {
        /// Nc, the number of data bytes announced by Lc.
        lc: u16,
        /// Number of bytes actually following Lc.
        available: usize,
    },
    /// An extended-length case 4 whose Le field has one byte instead of two.
    TruncatedExtendedLe,
    /// Bytes follow the Le field (or the data field when Le is absent) that no case allows.
    TrailingBytes {
        /// Number of surplus bytes.
        extra: usize,
    },
    /// Encoding: the data field is longer than the encoding allows (255 short, 65 535
    /// extended).
    DataTooLong {
        /// Length of the data field.
        len: usize,
        /// Largest length the chosen encoding can announce.
        max: usize,
    },
    /// Encoding: Ne is 0 or larger than the encoding allows (256 short, 65 536 extended).
    LeOutOfRange {
        /// The requested Ne.
        le: u32,
        /// Largest Ne the chosen encoding can express.
        max: u32,
    },
    /// Encoding: the output buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl fmt::Display for ApduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ApduError::TooShort { len } => {
                write!(f, "C-APDU of {len} bytes is shorter than its 4-byte header")
            }
            ApduError::TruncatedExtendedLength { len } => write!(
                f,
                "C-APDU of {len} bytes starts an extended length field (00) but does not finish it"
            ),
            ApduError::ExtendedZeroLc => write!(f, "extended Lc of 0 is not allowed"),
            ApduError::DataTruncated { lc, available } => write!(
                f,
                "Lc announces {lc} data bytes but only {available} bytes follow"
            ),
            ApduError::TruncatedExtendedLe => {
                write!(f, "extended Le field has 1 byte instead of 2")
            }
            ApduError::TrailingBytes { extra } => {
                write!(f, "{extra} bytes follow the last field of the C-APDU")
            }
            ApduError::DataTooLong { len, max } => write!(
                f,
                "data field of {len} bytes exceeds the {max} bytes this length encoding allows"
            ),
            ApduError::LeOutOfRange { le, max } => {
                write!(f, "Ne {le} is outside 1..={max} for this length encoding")
            }
            ApduError::BufferTooSmall { needed, available } => write!(
                f,
                "C-APDU needs {needed} bytes but the buffer has {available}"
            ),
        }
    }
}

impl core::error::Error for ApduError {}

/// The seven C-APDU cases of ISO/IEC 7816-4 §5.1 (S = short, E = extended length fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApduCase {
    /// Header only: no data, no response data expected.
    Case1,
    /// Header + Le (1 byte).
    Case2Short,
    /// Header + Lc (1 byte) + data.
    Case3Short,
    /// Header + Lc (1 byte) + data + Le (1 byte).
    Case4Short,
    /// Header + `00` + Le (2 bytes).
    Case2Extended,
    /// Header + `00` + Lc (2 bytes) + data.
    Case3Extended,
    /// Header + `00` + Lc (2 bytes) + data + Le (2 bytes).
    Case4Extended,
}

/// Largest Nc of a short Lc field (ISO/IEC 7816-4 §5.1).
pub const SHORT_MAX_NC: usize = 255;
/// Largest Ne of a short Le field: `00` means 256 (ISO/IEC 7816-4 §5.1).
pub const SHORT_MAX_NE: u32 = 256;
/// Largest Nc of an extended Lc field (ISO/IEC 7816-4 §5.1).
pub const EXTENDED_MAX_NC: usize = 65_535;
/// Largest Ne of an extended Le field: `00 00` means 65 536 (ISO/IEC 7816-4 §5.1).
pub const EXTENDED_MAX_NE: u32 = 65_536;

/// A command APDU (ISO/IEC 7816-4 §5.1): header CLA INS P1 P2, optional data field (Nc bytes
/// announced by Lc), optional Le.
///
/// `le` holds **Ne**, the decoded maximum number of response data bytes, never the raw Le
/// byte(s): a short Le of `00` is `Some(256)`, an extended Le of `00 00` is `Some(65536)`, any
/// other value is itself. `None` means the command has no Le field. `Some(0)` is never produced
/// by [`parse`](Self::parse) and is refused by [`emit_into`](Self::emit_into).
///
/// `extended` says whether the length fields use the extended (3/2-byte) form; it is
/// meaningless for case 1 (no length fields), which [`parse`](Self::parse) reports as `false`.
/// For any bytes that parse, `emit_into` reproduces them exactly.
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
    /// Command data field (empty when there is no Lc).
    pub data: &'a [u8],
    /// Ne, decoded (see the type documentation); `None` when Le is absent.
    pub le: Option<u32>,
    /// Extended length fields (ISO/IEC 7816-4 §5.1) rather than short ones.
    pub extended: bool,
}

impl<'a> CommandApdu<'a> {
    /// Parse a C-APDU, classifying it into one of the cases of ISO/IEC 7816-4 §5.1.
    ///
    /// Every byte string yields either a `CommandApdu` whose fields cover the input exactly,
    /// or an [`ApduError`]; nothing panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let (header, body) = match bytes {
            [cla, ins, p1, p2, body @ ..] => ([*cla, *ins, *p1, *p2], body),
            _ => return Err(ApduError::TooShort { len: bytes.len() }),
        };
        let [cla, ins, p1, p2] = header;
        let apdu = |data: &'a [u8], le: Option<u32>, extended: bool| CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
            extended,
        };
        match body {
            // Case 1.
            [] => Ok(apdu(&[], None, false)),
            // Case 2S: a single byte after the header is Le.
            [le] => Ok(apdu(&[], Some(short_ne(*le)), false)),
            // Extended length: first byte 00 and at least two more.
            [0, rest @ ..] => {
                let (b1, b2, after) = match rest {
                    [b1, b2, after @ ..] => (*b1, *b2, after),
                    _ => return Err(ApduError::TruncatedExtendedLength { len: bytes.len() }),
                };
                let field = u16::from_be_bytes([b1, b2]);
                if after.is_empty() {
                    // Case 2E: 00 Le1 Le2.
                    return Ok(apdu(&[], Some(extended_ne(field)), true));
                }
                if field == 0 {
                    return Err(ApduError::ExtendedZeroLc);
                }
                let nc = usize::from(field);
                if after.len() < nc {
                    return Err(ApduError::DataTruncated {
                        lc: field,
                        available: after.len(),
                    });
                }
                let (data, le) = after.split_at(nc);
                match le {
                    [] => Ok(apdu(data, None, true)),
                    [_] => Err(ApduError::TruncatedExtendedLe),
                    [l1, l2] => Ok(apdu(
                        data,
                        Some(extended_ne(u16::from_be_bytes([*l1, *l2]))),
                        true,
                    )),
                    [_, _, extra @ ..] => Err(ApduError::TrailingBytes { extra: extra.len() }),
                }
            }
            // Short Lc (1..=255).
            [lc, after @ ..] => {
                let nc = usize::from(*lc);
                if after.len() < nc {
                    return Err(ApduError::DataTruncated {
                        lc: u16::from(*lc),
                        available: after.len(),
                    });
                }
                let (data, le) = after.split_at(nc);
                match le {
                    [] => Ok(apdu(data, None, false)),
                    [le] => Ok(apdu(data, Some(short_ne(*le)), false)),
                    [_, extra @ ..] => Err(ApduError::TrailingBytes { extra: extra.len() }),
                }
            }
        }
    }

    /// Whether the header uses a class or instruction byte that ISO/IEC 7816-4 declares
    /// invalid: CLA `FF` (§5.4.1; the value is reserved for protocol and parameter selection,
    /// ISO/IEC 7816-3) and INS `6X` or `9X` (§5.4.2; on T=0 those bytes are procedure bytes
    /// and status bytes). No application can be addressed with such a command, whatever its
    /// class, so a card refuses it before looking further.
    pub fn header_error(&self) -> Option<HeaderError> {
        if self.cla == INVALID_CLA {
            return Some(HeaderError::InvalidClass);
        }
        if matches!(self.ins & 0xF0, 0x60 | 0x90) {
            return Some(HeaderError::InvalidInstruction(self.ins));
        }
        None
    }

    /// The ISO/IEC 7816-4 §5.1 case of this command.
    pub fn case(&self) -> ApduCase {
        match (self.data.is_empty(), self.le.is_some(), self.extended) {
            (true, false, _) => ApduCase::Case1,
            (true, true, false) => ApduCase::Case2Short,
            (true, true, true) => ApduCase::Case2Extended,
            (false, false, false) => ApduCase::Case3Short,
            (false, false, true) => ApduCase::Case3Extended,
            (false, true, false) => ApduCase::Case4Short,
            (false, true, true) => ApduCase::Case4Extended,
        }
    }

    /// Number of bytes [`emit_into`](Self::emit_into) writes, after checking that the fields
    /// fit the chosen encoding (short or extended, ISO/IEC 7816-4 §5.1).
    pub fn buffer_len(&self) -> Result<usize, ApduError> {
        let (max_nc, max_ne, lc_len, le_len) = if self.extended {
            (EXTENDED_MAX_NC, EXTENDED_MAX_NE, 3, 2)
        } else {
            (SHORT_MAX_NC, SHORT_MAX_NE, 1, 1)
        };
        if self.data.len() > max_nc {
            return Err(ApduError::DataTooLong {
                len: self.data.len(),
                max: max_nc,
            });
        }
        if let Some(le) = self.le {
            if le == 0 || le > max_ne {
                return Err(ApduError::LeOutOfRange { le, max: max_ne });
            }
        }
        let len = match self.case() {
            ApduCase::Case1 => 4,
            ApduCase::Case2Short => 4 + le_len,
            // The extended Le of case 2E is preceded by the 00 marker.
            ApduCase::Case2Extended => 4 + 1 + le_len,
            ApduCase::Case3Short | ApduCase::Case3Extended => 4 + lc_len + self.data.len(),
            ApduCase::Case4Short | ApduCase::Case4Extended => 4 + lc_len + self.data.len() + le_len,
        };
        Ok(len)
    }

    /// Encode into `buf`, returning the number of bytes written.
    ///
    /// Ne of 256 (short) / 65 536 (extended) is written as `00` / `00 00` (ISO/IEC 7816-4 §5.1).
    pub fn emit_into(&self, buf: &mut [u8]) -> Result<usize, ApduError> {
        let len = self.buffer_len()?;
        let available = buf.len();
        let out = buf.get_mut(..len).ok_or(ApduError::BufferTooSmall {
            needed: len,
            available,
        })?;
        let mut w = Writer { out, pos: 0 };
        w.put(&[self.cla, self.ins, self.p1, self.p2]);
        // Both lengths were range-checked by buffer_len, so the truncating casts below keep
        // exactly the bits the standard encodes (256 -> 00, 65536 -> 00 00).
        if !self.data.is_empty() {
            if self.extended {
                let [hi, lo] = (self.data.len() as u16).to_be_bytes();
                w.put(&[0, hi, lo]);
            } else {
                w.put(&[self.data.len() as u8]);
            }
            w.put(self.data);
        }
        if let Some(ne) = self.le {
            if self.extended {
                if self.data.is_empty() {
                    w.put(&[0]);
                }
                w.put(&(ne as u16).to_be_bytes());
            } else {
                w.put(&[ne as u8]);
            }
        }
        Ok(w.pos)
    }
}

/// Cursor over a buffer already sized by `buffer_len`.
struct Writer<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.out.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
}

fn short_ne(le: u8) -> u32 {
    if le == 0 {
        SHORT_MAX_NE
    } else {
        u32::from(le)
    }
}

fn extended_ne(le: u16) -> u32 {
    if le == 0 {
        EXTENDED_MAX_NE
    } else {
        u32::from(le)
    }
}

/// The class byte ISO/IEC 7816-4 §5.4.1 declares invalid (reserved for PPS, ISO/IEC 7816-3).
pub const INVALID_CLA: u8 = 0xFF;

/// A command header no card may accept (ISO/IEC 7816-4 §5.4.1 and §5.4.2); see
/// [`CommandApdu::header_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// CLA `FF`. Answered with [`StatusWord::CLA_NOT_SUPPORTED`] (`6E00`).
    InvalidClass,
    /// INS `6X` or `9X`. Answered with [`StatusWord::INS_NOT_SUPPORTED`] (`6D00`).
    InvalidInstruction(u8),
}

impl HeaderError {
    /// The status word a card answers this error with (ISO/IEC 7816-4 §5.6, table 6).
    pub fn status_word(&self) -> StatusWord {
        match self {
            HeaderError::InvalidClass => StatusWord::CLA_NOT_SUPPORTED,
            HeaderError::InvalidInstruction(_) => StatusWord::INS_NOT_SUPPORTED,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::InvalidClass => f.write_str("CLA FF is invalid"),
            HeaderError::InvalidInstruction(ins) => write!(f, "INS {ins:02X} is invalid"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// Instruction byte of `SELECT` (ISO/IEC 7816-4 §11.2.2).
pub const INS_SELECT: u8 = 0xA4;
/// P1 of `SELECT`: select by DF name (ISO/IEC 7816-4 §11.2.2, table 39).
pub const P1_SELECT_BY_DF_NAME: u8 = 0x04;
/// Longest DF name (ISO/IEC 7816-4 §8.2.1.2: up to 16 bytes).
pub const MAX_DF_NAME_LEN: usize = 16;

/// Which occurrence a `SELECT` by DF name asks for (P2 bits 2-1, ISO/IEC 7816-4 §11.2.2,
/// table 40). Only the two that a host card emulation resolver can answer are represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occurrence {
    /// `00`: first or only occurrence.
    First,
    /// `10`: next occurrence (partial DF names matching several applications).
    Next,
}

/// What the `SELECT` asks to get back (P2 bits 4-3, ISO/IEC 7816-4 §11.2.2, table 40).
/// All four are accepted; the application answering the `SELECT` builds the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectResponse {
    /// `00`: return FCI template (P2 `x0`); what EMV and most HCE readers send.
    Fci,
    /// `01`: return FCP template (P2 `x4`).
    Fcp,
    /// `10`: return FMD template (P2 `x8`).
    Fmd,
    /// `11`: no response data, or proprietary (P2 `xC`).
    NoneOrProprietary,
}

/// A recognised `SELECT` by DF name: `CLA A4 04 P2 Lc name [Le]` (ISO/IEC 7816-4 §11.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectByName<'a> {
    /// The DF name (for applications: the AID, full or partial), 1 to 16 bytes.
    pub name: &'a [u8],
    /// First or next occurrence.
    pub occurrence: Occurrence,
    /// Requested response template.
    pub response: SelectResponse,
}

impl SelectByName<'_> {
    /// True when P2 asked for the next occurrence (`02`, `06`, `0A`, `0E`).
    pub fn is_next_occurrence(&self) -> bool {
        self.occurrence == Occurrence::Next
    }
}

/// Why a command shaped like `SELECT` by DF name (interindustry CLA, INS `A4`, P1 `04`) is not
/// one this module accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// P2 asks for the last or previous occurrence (bits 2-1 = `01`/`11`), or has any of bits
    /// 8-5 set (RFU). Answered with [`StatusWord::INCORRECT_P1_P2`].
    UnsupportedP2(u8),
    /// The DF name is empty or longer than 16 bytes. Answered with
    /// [`StatusWord::WRONG_LENGTH`].
    NameLength(usize),
}

impl SelectError {
    /// The status word a card answers this error with (ISO/IEC 7816-4 §5.6).
    pub fn status_word(&self) -> StatusWord {
        match self {
            SelectError::UnsupportedP2(_) => StatusWord::INCORRECT_P1_P2,
            SelectError::NameLength(_) => StatusWord::WRONG_LENGTH,
        }
    }
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::UnsupportedP2(p2) => write!(
                f,
                "SELECT by DF name with P2 {p2:02X}: only first (00) and next (02) occurrence are supported"
            ),
            SelectError::NameLength(len) => {
                write!(f, "SELECT by DF name with a {len}-byte name (1 to 16 allowed)")
            }
        }
    }
}

impl core::error::Error for SelectError {}

/// Classify a command as `SELECT` by DF name (ISO/IEC 7816-4 §11.2.2).
///
/// - `None`: not a `SELECT` by DF name at all — CLA is proprietary (bit 8 set, ISO/IEC 7816-4
///   §5.4.1), INS is not `A4`, or P1 is not `04`.
/// - `Some(Ok(_))`: P2 is `0000 xx y0` with `y` = 0 (first or only occurrence) or 1 (next
///   occurrence) and any response template `xx` (`00` FCI, `04` FCP, `08` FMD, `0C` none),
///   and the name is 1 to 16 bytes.
/// - `Some(Err(_))`: shaped like one but with an unsupported P2 or a bad name length.
///
/// Interindustry CLA values with a logical channel number or secure messaging indication are
/// accepted as they are: the application receives the whole APDU and may refuse it.
pub fn classify_select<'a>(
    apdu: &CommandApdu<'a>,
) -> Option<Result<SelectByName<'a>, SelectError>> {
    if apdu.cla & 0x80 != 0 || apdu.ins != INS_SELECT || apdu.p1 != P1_SELECT_BY_DF_NAME {
        return None;
    }
    let p2 = apdu.p2;
    let occurrence = match p2 & 0xF3 {
        0x00 => Occurrence::First,
        0x02 => Occurrence::Next,
        _ => return Some(Err(SelectError::UnsupportedP2(p2))),
    };
    let response = match p2 & 0x0C {
        0x00 => SelectResponse::Fci,
        0x04 => SelectResponse::Fcp,
        0x08 => SelectResponse::Fmd,
        _ => SelectResponse::NoneOrProprietary,
    };
    if apdu.data.is_empty() || apdu.data.len() > MAX_DF_NAME_LEN {
        return Some(Err(SelectError::NameLength(apdu.data.len())));
    }
    Some(Ok(SelectByName {
        name: apdu.data,
        occurrence,
        response,
    }))
}

/// The `SELECT` by DF name in `apdu`, if it is a well-formed one (see [`classify_select`] for
/// exactly what is accepted).
pub fn select_by_df_name<'a>(apdu: &CommandApdu<'a>) -> Option<SelectByName<'a>> {
    classify_select(apdu).and_then(Result::ok)
}

/// The status word SW1-SW2 that ends every response APDU (ISO/IEC 7816-4 §5.1.3 and §5.6,
/// tables 5 and 6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: normal processing, no further qualification.
    pub const NO_ERROR: StatusWord = StatusWord(0x9000);
    /// `6283`: selected file or application deactivated (warning).
    pub const SELECTED_FILE_DEACTIVATED: StatusWord = StatusWord(0x6283);
    /// `6400`: execution error, state of non-volatile memory unchanged.
    pub const EXECUTION_ERROR: StatusWord = StatusWord(0x6400);
    /// `6700`: wrong length; no further indication.
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// `6881`: logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: StatusWord = StatusWord(0x6881);
    /// `6982`: security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// `6A80`: incorrect parameters in the command data field.
    pub const INCORRECT_DATA: StatusWord = StatusWord(0x6A80);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A86`: incorrect parameters P1-P2.
    pub const INCORRECT_P1_P2: StatusWord = StatusWord(0x6A86);
    /// `6A88`: referenced data or reference data not found.
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    /// `6B00`: wrong parameters P1-P2.
    pub const WRONG_P1_P2: StatusWord = StatusWord(0x6B00);
    /// `6D00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// `6F00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);

    /// The status word ending an R-APDU (its last two bytes), or `None` if the response is
    /// shorter than the mandatory trailer (ISO/IEC 7816-4 §5.1).
    pub fn from_response(response: &[u8]) -> Option<StatusWord> {
        split_response(response).map(|(_, sw)| sw)
    }

    /// SW1, the first byte.
    pub fn sw1(self) -> u8 {
        self.to_bytes()[0]
    }

    /// SW2, the second byte.
    pub fn sw2(self) -> u8 {
        self.to_bytes()[1]
    }

    /// Normal processing (ISO/IEC 7816-4 §5.6, table 5): `9000`, or `61XX` (SW2 more response
    /// bytes available with `GET RESPONSE`).
    pub fn is_success(self) -> bool {
        self.0 == 0x9000 || self.sw1() == 0x61
    }

    /// Warning processing (ISO/IEC 7816-4 §5.6, table 5): SW1 `62` or `63`.
    pub fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }

    /// The two trailer bytes SW1 SW2, as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

/// Split an R-APDU into its response data field and its status word (ISO/IEC 7816-4 §5.1),
/// or `None` when it is shorter than two bytes.
pub fn split_response(response: &[u8]) -> Option<(&[u8], StatusWord)> {
    let split = response.len().checked_sub(2)?;
    match response.split_at(split) {
        (data, [sw1, sw2]) => Some((data, StatusWord(u16::from_be_bytes([*sw1, *sw2])))),
        _ => None,
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl From<StatusWord> for [u8; 2] {
    fn from(sw: StatusWord) -> Self {
        sw.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn emit(apdu: &CommandApdu<'_>) -> Vec<u8> {
        let mut buf = std::vec![0u8; 70_000];
        let n = apdu.emit_into(&mut buf).expect("emit");
        buf.truncate(n);
        buf
    }

    /// EMV Book B / PPSE: SELECT "2PAY.SYS.DDF01", case 4S, Le 00.
    const SELECT_PPSE: [u8; 20] = [
        0x00, 0xA4, 0x04, 0x00, 0x0E, // SELECT by DF name, first, FCI; Lc 14
        0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44, 0x44, 0x46, 0x30,
        0x31, // "2PAY.SYS.DDF01"
        0x00, // Le 00 = 256
    ];

    #[test]
    fn apdu_select_ppse_golden() {
        let apdu = CommandApdu::parse(&SELECT_PPSE).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case4Short);
        assert_eq!(
            (apdu.cla, apdu.ins, apdu.p1, apdu.p2),
            (0x00, 0xA4, 0x04, 0x00)
        );
        assert_eq!(apdu.data, b"2PAY.SYS.DDF01");
        assert_eq!(apdu.le, Some(256));
        assert!(!apdu.extended);
        let sel = select_by_df_name(&apdu).unwrap();
        assert_eq!(sel.name, b"2PAY.SYS.DDF01");
        assert_eq!(sel.occurrence, Occurrence::First);
        assert_eq!(sel.response, SelectResponse::Fci);
        assert!(!sel.is_next_occurrence());
        assert_eq!(apdu.buffer_len(), Ok(20));
        assert_eq!(emit(&apdu), SELECT_PPSE);
    }

    #[test]
    fn apdu_select_mastercard_aid_golden() {
        // SELECT A0000000041010 (Mastercard credit/debit), case 4S.
        let bytes = [
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0x00,
        ];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        let sel = select_by_df_name(&apdu).unwrap();
        assert_eq!(sel.name, [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]);
    }

    #[test]
    fn apdu_gpo_golden() {
        // GET PROCESSING OPTIONS (EMV Book 3 §6.5.8): 80 A8 00 00, Lc 02, PDOL data 83 00, Le 00.
        let bytes = [0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case4Short);
        assert_eq!((apdu.cla, apdu.ins), (0x80, 0xA8));
        assert_eq!(apdu.data, [0x83, 0x00]);
        assert_eq!(apdu.le, Some(256));
        // Proprietary CLA: never a SELECT, whatever INS says.
        assert_eq!(classify_select(&apdu), None);
        assert_eq!(emit(&apdu), bytes);
    }

    #[test]
    fn apdu_read_record_golden() {
        // READ RECORD record 1, SFI 1 (P2 = 0C): case 2S, Le 00.
        let bytes = [0x00, 0xB2, 0x01, 0x0C, 0x00];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case2Short);
        assert_eq!((apdu.ins, apdu.p1, apdu.p2), (0xB2, 0x01, 0x0C));
        assert!(apdu.data.is_empty());
        assert_eq!(apdu.le, Some(256));
        assert_eq!(classify_select(&apdu), None);
        assert_eq!(emit(&apdu), bytes);
    }

    #[test]
    fn apdu_case1_golden() {
        let bytes = [0x00, 0x70, 0x00, 0x00]; // MANAGE CHANNEL open, no Le
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case1);
        assert_eq!(apdu.le, None);
        assert_eq!(emit(&apdu), bytes);
    }

    #[test]
    fn apdu_case3_short_golden() {
        // UPDATE BINARY 3 bytes at offset 0, no Le.
        let bytes = [0x00, 0xD6, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case3Short);
        assert_eq!(apdu.data, [1, 2, 3]);
        assert_eq!(apdu.le, None);
        assert_eq!(emit(&apdu), bytes);
    }

    #[test]
    fn apdu_extended_golden() {
        // Case 4E: READ BINARY-like command with 300 data bytes and Le 00 00 (65536).
        let mut bytes = Vec::from([0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x2C]);
        bytes.extend((0..300u16).map(|i| i as u8));
        bytes.extend([0x00, 0x00]);
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case4Extended);
        assert_eq!(apdu.data.len(), 300);
        assert_eq!(apdu.le, Some(65_536));
        assert!(apdu.extended);
        assert_eq!(apdu.buffer_len(), Ok(bytes.len()));
        assert_eq!(emit(&apdu), bytes);

        // Case 2E: GET DATA, Le 01 00 (256 bytes, extended form).
        let bytes = [0x00, 0xCA, 0x9F, 0x7F, 0x00, 0x01, 0x00];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case2Extended);
        assert_eq!(apdu.le, Some(256));
        assert_eq!(emit(&apdu), bytes);

        // Case 3E: 2 data bytes announced on 3 bytes.
        let bytes = [0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x02, 0xAA, 0xBB];
        let apdu = CommandApdu::parse(&bytes).unwrap();
        assert_eq!(apdu.case(), ApduCase::Case3Extended);
        assert_eq!(apdu.data, [0xAA, 0xBB]);
        assert_eq!(apdu.le, None);
        assert_eq!(emit(&apdu), bytes);
    }

    #[test]
    fn apdu_malformed_shapes() {
        assert_eq!(CommandApdu::parse(&[]), Err(ApduError::TooShort { len: 0 }));
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04]),
            Err(ApduError::TooShort { len: 3 })
        );
        // 00 marker followed by a single byte.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x05]),
            Err(ApduError::TruncatedExtendedLength { len: 6 })
        );
        // Extended Lc 00 00 with data.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]),
            Err(ApduError::ExtendedZeroLc)
        );
        // Lc 0E but 3 bytes of data.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41]),
            Err(ApduError::DataTruncated {
                lc: 14,
                available: 3
            })
        );
        // Extended Lc 01 00 but 2 bytes.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x00, 0xAA, 0xBB]),
            Err(ApduError::DataTruncated {
                lc: 256,
                available: 2
            })
        );
        // Short case 4 with two bytes after the data.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xAA, 0x00, 0x00]),
            Err(ApduError::TrailingBytes { extra: 1 })
        );
        // Extended case 4 with a 1-byte Le.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x01, 0xAA, 0x00]),
            Err(ApduError::TruncatedExtendedLe)
        );
        // Extended case 4 with 3 bytes after the data.
        assert_eq!(
            CommandApdu::parse(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x01, 0xAA, 0, 0, 0]),
            Err(ApduError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn apdu_emit_errors() {
        let long = [0u8; 256];
        let short_too_long = CommandApdu {
            cla: 0,
            ins: 0xD6,
            p1: 0,
            p2: 0,
            data: &long,
            le: None,
            extended: false,
        };
        assert_eq!(
            short_too_long.buffer_len(),
            Err(ApduError::DataTooLong { len: 256, max: 255 })
        );
        let extended = CommandApdu {
            extended: true,
            ..short_too_long
        };
        assert_eq!(extended.buffer_len(), Ok(4 + 3 + 256));

        let le_zero = CommandApdu {
            data: &[],
            le: Some(0),
            ..short_too_long
        };
        assert_eq!(
            le_zero.buffer_len(),
            Err(ApduError::LeOutOfRange { le: 0, max: 256 })
        );
        let le_big = CommandApdu {
            le: Some(257),
            ..le_zero
        };
        assert_eq!(
            le_big.buffer_len(),
            Err(ApduError::LeOutOfRange { le: 257, max: 256 })
        );

        let apdu = CommandApdu::parse(&SELECT_PPSE).unwrap();
        let mut small = [0u8; 19];
        assert_eq!(
            apdu.emit_into(&mut small),
            Err(ApduError::BufferTooSmall {
                needed: 20,
                available: 19
            })
        );
    }

    #[test]
    fn apdu_select_p2_variants() {
        fn select(cla: u8, p2: u8, data: &[u8]) -> CommandApdu<'_> {
            CommandApdu {
                cla,
                ins: INS_SELECT,
                p1: P1_SELECT_BY_DF_NAME,
                p2,
                data,
                le: Some(256),
                extended: false,
            }
        }
        let name: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x04];
        for (p2, occurrence, response) in [
            (0x00, Occurrence::First, SelectResponse::Fci),
            (0x04, Occurrence::First, SelectResponse::Fcp),
            (0x08, Occurrence::First, SelectResponse::Fmd),
            (0x0C, Occurrence::First, SelectResponse::NoneOrProprietary),
            (0x02, Occurrence::Next, SelectResponse::Fci),
            (0x06, Occurrence::Next, SelectResponse::Fcp),
            (0x0A, Occurrence::Next, SelectResponse::Fmd),
            (0x0E, Occurrence::Next, SelectResponse::NoneOrProprietary),
        ] {
            let sel = select_by_df_name(&select(0x00, p2, name)).unwrap();
            assert_eq!(
                (sel.occurrence, sel.response),
                (occurrence, response),
                "P2 {p2:02X}"
            );
        }
        // Last (01) and previous (03) occurrence, RFU high nibble.
        for p2 in [0x01, 0x03, 0x0D, 0x10, 0x80, 0xF0] {
            assert_eq!(
                classify_select(&select(0x00, p2, name)),
                Some(Err(SelectError::UnsupportedP2(p2)))
            );
        }
        assert_eq!(
            SelectError::UnsupportedP2(1).status_word(),
            StatusWord::INCORRECT_P1_P2
        );
        // Name length.
        assert_eq!(
            classify_select(&select(0x00, 0x00, &[])),
            Some(Err(SelectError::NameLength(0)))
        );
        let long: &[u8] = &[0xA0; 17];
        assert_eq!(
            classify_select(&select(0x00, 0x00, long)),
            Some(Err(SelectError::NameLength(17)))
        );
        assert_eq!(
            SelectError::NameLength(17).status_word(),
            StatusWord::WRONG_LENGTH
        );
        // Logical channel 1 (CLA 01) is interindustry: still a SELECT.
        assert!(select_by_df_name(&select(0x01, 0x00, name)).is_some());
        // Proprietary CLA, other P1 (select by file id), other INS: not a SELECT by name.
        assert_eq!(classify_select(&select(0x80, 0x00, name)), None);
        let by_fid = CommandApdu {
            p1: 0x00,
            ..select(0x00, 0x0C, name)
        };
        assert_eq!(classify_select(&by_fid), None);
    }

    #[test]
    fn apdu_status_words() {
        // R-APDU of a PPSE SELECT: FCI ... 90 00.
        let rsp = [0x6F, 0x02, 0x84, 0x00, 0x90, 0x00];
        assert_eq!(StatusWord::from_response(&rsp), Some(StatusWord::NO_ERROR));
        assert_eq!(
            split_response(&rsp),
            Some((&rsp[..4], StatusWord::NO_ERROR))
        );
        assert_eq!(
            StatusWord::from_response(&[0x6A, 0x82]),
            Some(StatusWord::FILE_NOT_FOUND)
        );
        assert_eq!(StatusWord::from_response(&[0x90]), None);
        assert_eq!(StatusWord::from_response(&[]), None);

        assert!(StatusWord::NO_ERROR.is_success());
        assert!(StatusWord(0x6110).is_success());
        assert!(!StatusWord::FILE_NOT_FOUND.is_success());
        assert!(!StatusWord::NO_PRECISE_DIAGNOSIS.is_success());
        assert!(StatusWord::SELECTED_FILE_DEACTIVATED.is_warning());
        assert!(!StatusWord::NO_ERROR.is_warning());

        assert_eq!(StatusWord::FILE_NOT_FOUND.to_bytes(), [0x6A, 0x82]);
        assert_eq!(StatusWord::NO_PRECISE_DIAGNOSIS.to_bytes(), [0x6F, 0x00]);
        assert_eq!(StatusWord::INS_NOT_SUPPORTED.to_bytes(), [0x6D, 0x00]);
        assert_eq!(StatusWord::CLA_NOT_SUPPORTED.to_bytes(), [0x6E, 0x00]);
        assert_eq!(StatusWord::WRONG_LENGTH.to_bytes(), [0x67, 0x00]);
        assert_eq!(StatusWord::INCORRECT_P1_P2.to_bytes(), [0x6A, 0x86]);
        assert_eq!(
            StatusWord::CONDITIONS_NOT_SATISFIED.to_bytes(),
            [0x69, 0x85]
        );
        assert_eq!(StatusWord::FUNCTION_NOT_SUPPORTED.to_bytes(), [0x6A, 0x81]);
        assert_eq!(
            (StatusWord(0x6A82).sw1(), StatusWord(0x6A82).sw2()),
            (0x6A, 0x82)
        );
        assert_eq!(std::format!("{}", StatusWord::FILE_NOT_FOUND), "6A82");
        assert_eq!(
            std::format!("{:?}", StatusWord::NO_ERROR),
            "StatusWord(9000)"
        );
    }

    #[test]
    fn apdu_invalid_class_and_instructions() {
        // Case 1 commands: CLA INS 00 00.
        let header = |cla: u8, ins: u8| CommandApdu {
            cla,
            ins,
            p1: 0x00,
            p2: 0x00,
            data: &[],
            le: None,
            extended: false,
        };
        // FF CA 00 00: CLA FF is reserved for PPS (ISO/IEC 7816-4 §5.4.1) -> 6E00.
        let e = header(0xFF, 0xCA).header_error();
        assert_eq!(e, Some(HeaderError::InvalidClass));
        assert_eq!(e.map(|e| e.status_word()), Some(StatusWord(0x6E00)));
        // 00 6X / 00 9X: INS values that are T=0 procedure or status bytes (§5.4.2) -> 6D00.
        for ins in [0x60, 0x61, 0x6C, 0x6F, 0x90, 0x9F] {
            let e = header(0x00, ins).header_error();
            assert_eq!(e, Some(HeaderError::InvalidInstruction(ins)));
            assert_eq!(e.map(|e| e.status_word()), Some(StatusWord(0x6D00)));
        }
        // CLA FF wins over an invalid INS; proprietary classes and every other INS are fine.
        assert_eq!(
            header(0xFF, 0x6A).header_error(),
            Some(HeaderError::InvalidClass)
        );
        for (cla, ins) in [
            (0x00, 0xA4),
            (0x80, 0xCA),
            (0x10, 0xDA),
            (0xFE, 0x5F),
            (0x00, 0xB0),
        ] {
            assert_eq!(header(cla, ins).header_error(), None, "{cla:02X} {ins:02X}");
        }
    }

    /// A valid command built from parts, in its normal form (case 1 is never "extended").
    fn arb_command() -> impl Strategy<Value = (u8, u8, u8, u8, Vec<u8>, Option<u32>, bool)> {
        (
            any::<[u8; 4]>(),
            any::<bool>(),
            prop_oneof![Just(0usize), 1usize..=255, 256usize..=1_000],
            proptest::option::of(1u32..=65_536),
        )
            .prop_flat_map(|(h, extended, nc, le)| {
                // Lengths beyond the short encoding force the extended one.
                let extended =
                    extended || nc > SHORT_MAX_NC || le.is_some_and(|ne| ne > SHORT_MAX_NE);
                let extended = extended && (nc > 0 || le.is_some());
                (
                    Just(h),
                    proptest::collection::vec(any::<u8>(), nc),
                    Just(le),
                    Just(extended),
                )
            })
            .prop_map(|(h, data, le, extended)| (h[0], h[1], h[2], h[3], data, le, extended))
    }

    proptest! {
        #[test]
        fn apdu_parse_never_panics_and_reemits(bytes in prop_oneof![
            // Short strings hit every case often; long ones exercise extended lengths.
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(any::<u8>(), 0..400),
        ]) {
            if let Ok(apdu) = CommandApdu::parse(&bytes) {
                // Whatever parses re-encodes to exactly the same bytes.
                prop_assert_eq!(emit(&apdu), bytes.clone());
                if let Some(le) = apdu.le {
                    prop_assert!(le >= 1);
                }
            }
            let _ = StatusWord::from_response(&bytes);
        }

        #[test]
        fn apdu_built_round_trips((cla, ins, p1, p2, data, le, extended) in arb_command()) {
            let apdu = CommandApdu { cla, ins, p1, p2, data: &data, le, extended };
            let bytes = emit(&apdu);
            prop_assert_eq!(apdu.buffer_len(), Ok(bytes.len()));
            prop_assert_eq!(CommandApdu::parse(&bytes), Ok(apdu));
        }
    }
}
