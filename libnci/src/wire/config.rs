//! Configuration parameters: the TLVs of CORE_SET_CONFIG_CMD and CORE_GET_CONFIG_RSP (NCI 1.0
//! Table 101; NCI 2.0 Table 150), including NXP's two-octet extension tags.
//!
//! What this module does: name the parameter identifiers, read and write one parameter
//! ([`ConfigParam`], an item of a [`List`]), and give typed constructors and accessors for the
//! parameters a card-emulation host sets. What it does not do: know defaults, or which parameter
//! may be set in which state.
//!
//! # Telling NXP two-octet identifiers from one-octet proprietary ones
//!
//! NCI reserves identifiers 0xA0–0xFE for proprietary use, one octet each. NXP's controllers
//! (PN7120, PN7150 — UM10936 §10 "Configurations" — and PN7160) use the octets 0xA0 and 0xA1 as a
//! *prefix*: the identifier is two octets, `A0 xx` or `A1 xx`, followed by the usual length and
//! value. Nothing in a TLV says which reading applies, so this module fixes one rule: **an
//! identifier whose first octet is 0xA0 or 0xA1 is a two-octet NXP identifier** ([`ParamId::Nxp`]);
//! every other octet, including 0xA2–0xFE, is a one-octet identifier ([`ParamId::Nci`]). A
//! controller that used 0xA0/0xA1 as one-octet proprietary identifiers would not parse with this
//! crate; none of the controllers this project targets does.
//!
//! # 0x58: LI_FWI (NCI 1.0) and LI_A_RATS_TB1 (NCI 2.0)
//!
//! NCI 1.0 names parameter 0x58 `LI_FWI`: one octet holding the Frame Waiting time Integer
//! (0–14) the NFCC announces when it emulates an ISO-DEP card. NCI 2.0 renamed it
//! `LI_A_RATS_TB1`: the whole TB(1) interface byte of the ATS (ISO/IEC 14443-4, ATS), with FWI
//! in the high nibble (b8–b5) and SFGI in the low nibble (b4–b1). The same FWI 7 is therefore
//! `0x07` as `LI_FWI` but `0x70` as `LI_A_RATS_TB1`. This crate names the code point with the
//! NCI 2.0 name and offers both encodings: [`ConfigParam::li_fwi`] / [`ConfigParam::as_li_fwi`]
//! and [`ConfigParam::li_a_rats_tb1`] / [`ConfigParam::as_li_a_rats_tb1`]; the caller picks by
//! the controller's NCI version.

use core::fmt;

use super::message::{FieldVisitor, HexBytes, List, ListItem, Reader, Value, Writer};
use super::{Error, Result};

open_enum! {
    /// One-octet configuration parameter identifiers (NCI 1.0 Table 101, NCI 2.0 Table 150).
    /// Names follow NCI 2.0; where NCI 1.0 used another name it is given in the variant's doc.
    pub enum NciParamId(u8) {
        /// Duration of one discovery period, ms (2 octets, little endian).
        TotalDuration = 0x00 => "TOTAL_DURATION",
        /// NCI 1.0: maximum number of devices per poll cycle.
        ConDevicesLimit = 0x01 => "CON_DEVICES_LIMIT",
        /// NCI 2.0: discovery behaviour flags.
        ConDiscoveryParam = 0x02 => "CON_DISCOVERY_PARAM",
        /// NFC-A poll bail-out.
        PaBailOut = 0x08 => "PA_BAIL_OUT",
        /// NCI 2.0: NFC-A devices limit.
        PaDevicesLimit = 0x09 => "PA_DEVICES_LIMIT",
        /// NFC-B Application Family Identifier.
        PbAfi = 0x10 => "PB_AFI",
        /// NFC-B poll bail-out.
        PbBailOut = 0x11 => "PB_BAIL_OUT",
        /// NFC-B ATTRIB Param 1.
        PbAttribParam1 = 0x12 => "PB_ATTRIB_PARAM1",
        /// NFC-B SENSB_REQ parameter.
        PbSensbReqParam = 0x13 => "PB_SENSB_REQ_PARAM",
        /// NCI 2.0: NFC-B devices limit.
        PbDevicesLimit = 0x14 => "PB_DEVICES_LIMIT",
        /// NFC-F poll bit rate.
        PfBitRate = 0x18 => "PF_BIT_RATE",
        /// NFC-F bail-out (NCI 1.0: `PF_RC_CODE`).
        PfBailOut = 0x19 => "PF_BAIL_OUT",
        /// NCI 2.0: NFC-F devices limit.
        PfDevicesLimit = 0x1A => "PF_DEVICES_LIMIT",
        /// ISO-DEP poll NFC-B higher layer info (NCI 1.0: `PB_H_INFO`).
        PiBHInfo = 0x20 => "PI_B_H_INFO",
        /// ISO-DEP poll bit rate.
        PiBitRate = 0x21 => "PI_BIT_RATE",
        /// NCI 1.0: NFC-A advanced features.
        PaAdvFeat = 0x22 => "PA_ADV_FEAT",
        /// NFC-DEP PSL (NCI 1.0: `PN_NFC_DEP_SPEED`).
        PnNfcDepPsl = 0x28 => "PN_NFC_DEP_PSL",
        /// NFC-DEP ATR_REQ general bytes.
        PnAtrReqGenBytes = 0x29 => "PN_ATR_REQ_GEN_BYTES",
        /// NFC-DEP ATR_REQ configuration.
        PnAtrReqConfig = 0x2A => "PN_ATR_REQ_CONFIG",
        /// NCI 2.0: NFC-V devices limit.
        PvDevicesLimit = 0x2F => "PV_DEVICES_LIMIT",
        /// NFC-A listen: SENS_RES (ATQA) byte 1, bit frame SDD.
        LaBitFrameSdd = 0x30 => "LA_BIT_FRAME_SDD",
        /// NFC-A listen: SENS_RES (ATQA) byte 2, platform configuration.
        LaPlatformConfig = 0x31 => "LA_PLATFORM_CONFIG",
        /// NFC-A listen: SEL_RES (SAK); bit 6 (0x20) announces ISO-DEP.
        LaSelInfo = 0x32 => "LA_SEL_INFO",
        /// NFC-A listen: NFCID1 (UID), 0, 4, 7 or 10 octets.
        LaNfcid1 = 0x33 => "LA_NFCID1",
        /// NFC-B listen: SENSB_RES protocol info; bit 1 (0x01) announces ISO-DEP.
        LbSensbInfo = 0x38 => "LB_SENSB_INFO",
        /// NFC-B listen: NFCID0 (PUPI).
        LbNfcid0 = 0x39 => "LB_NFCID0",
        /// NFC-B listen: application data of SENSB_RES.
        LbApplicationData = 0x3A => "LB_APPLICATION_DATA",
        /// NFC-B listen: SFGI.
        LbSfgi = 0x3B => "LB_SFGI",
        /// NFC-B listen: FWI and ADC/FO (NCI 1.0: `LB_ADC_FO`).
        LbFwiAdcFo = 0x3C => "LB_FWI_ADC_FO",
        /// NCI 2.0: NFC-B listen bit rate.
        LbBitRate = 0x3E => "LB_BIT_RATE",
        /// T3T identifier 1 (system code + NFCID2 [+ PMm in NCI 2.0]).
        LfT3tIdentifiers1 = 0x40 => "LF_T3T_IDENTIFIERS_1",
        /// T3T identifier 2.
        LfT3tIdentifiers2 = 0x41 => "LF_T3T_IDENTIFIERS_2",
        /// T3T identifier 3.
        LfT3tIdentifiers3 = 0x42 => "LF_T3T_IDENTIFIERS_3",
        /// T3T identifier 4.
        LfT3tIdentifiers4 = 0x43 => "LF_T3T_IDENTIFIERS_4",
        /// T3T identifier 5.
        LfT3tIdentifiers5 = 0x44 => "LF_T3T_IDENTIFIERS_5",
        /// T3T identifier 6.
        LfT3tIdentifiers6 = 0x45 => "LF_T3T_IDENTIFIERS_6",
        /// T3T identifier 7.
        LfT3tIdentifiers7 = 0x46 => "LF_T3T_IDENTIFIERS_7",
        /// T3T identifier 8.
        LfT3tIdentifiers8 = 0x47 => "LF_T3T_IDENTIFIERS_8",
        /// T3T identifier 9.
        LfT3tIdentifiers9 = 0x48 => "LF_T3T_IDENTIFIERS_9",
        /// T3T identifier 10.
        LfT3tIdentifiers10 = 0x49 => "LF_T3T_IDENTIFIERS_10",
        /// T3T identifier 11.
        LfT3tIdentifiers11 = 0x4A => "LF_T3T_IDENTIFIERS_11",
        /// T3T identifier 12.
        LfT3tIdentifiers12 = 0x4B => "LF_T3T_IDENTIFIERS_12",
        /// T3T identifier 13.
        LfT3tIdentifiers13 = 0x4C => "LF_T3T_IDENTIFIERS_13",
        /// T3T identifier 14.
        LfT3tIdentifiers14 = 0x4D => "LF_T3T_IDENTIFIERS_14",
        /// T3T identifier 15.
        LfT3tIdentifiers15 = 0x4E => "LF_T3T_IDENTIFIERS_15",
        /// T3T identifier 16.
        LfT3tIdentifiers16 = 0x4F => "LF_T3T_IDENTIFIERS_16",
        /// NFC-F listen: protocols announced; bit 2 (0x02) is NFC-DEP.
        LfProtocolType = 0x50 => "LF_PROTOCOL_TYPE",
        /// T3T PMm.
        LfT3tPmm = 0x51 => "LF_T3T_PMM",
        /// Number of T3T identifiers the NFCC supports (read-only).
        LfT3tMax = 0x52 => "LF_T3T_MAX",
        /// Which T3T identifiers are enabled.
        LfT3tFlags = 0x53 => "LF_T3T_FLAGS",
        /// NCI 1.0: NFC-F listen bit rates.
        LfConBitrF = 0x54 => "LF_CON_BITR_F",
        /// T3T read allowed (NCI 1.0: `LF_ADV_FEAT`).
        LfT3tRdAllowed = 0x55 => "LF_T3T_RD_ALLOWED",
        /// ATS TB(1) (NCI 1.0: `LI_FWI`; see the module documentation).
        LiARatsTb1 = 0x58 => "LI_A_RATS_TB1",
        /// ATS historical bytes (NCI 1.0: `LA_HIST_BY`).
        LiAHistBy = 0x59 => "LI_A_HIST_BY",
        /// Higher layer response of ATTRIB (NCI 1.0: `LB_H_INFO_RESP`).
        LiBHInfoResp = 0x5A => "LI_B_H_INFO_RESP",
        /// ISO-DEP listen bit rate (NCI 1.0: `LI_BIT_RATE`).
        LiABitRate = 0x5B => "LI_A_BIT_RATE",
        /// NCI 2.0: ATS TC(1).
        LiARatsTc1 = 0x5C => "LI_A_RATS_TC1",
        /// NFC-DEP listen waiting time.
        LnWt = 0x60 => "LN_WT",
        /// NFC-DEP ATR_RES general bytes.
        LnAtrResGenBytes = 0x61 => "LN_ATR_RES_GEN_BYTES",
        /// NFC-DEP ATR_RES configuration.
        LnAtrResConfig = 0x62 => "LN_ATR_RES_CONFIG",
        /// NCI 2.0: active poll bit rate.
        PacmBitRate = 0x68 => "PACM_BIT_RATE",
        /// Whether the NFCC sends RF_FIELD_INFO_NTF (0x01) or not (0x00).
        RfFieldInfo = 0x80 => "RF_FIELD_INFO",
        /// Whether the NFCC sends RF_NFCEE_ACTION_NTF.
        RfNfceeAction = 0x81 => "RF_NFCEE_ACTION",
        /// NFC-DEP operation parameter.
        NfcdepOp = 0x82 => "NFCDEP_OP",
        /// NCI 2.0: LLCP version.
        LlcpVersion = 0x83 => "LLCP_VERSION",
        /// NCI 2.0: whether the NFCC may manage the RF configuration itself (0x01) or not (0x00).
        NfccConfigControl = 0x85 => "NFCC_CONFIG_CONTROL",
    }
}

/// A configuration parameter identifier: one NCI octet, or a two-octet NXP extension tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamId {
    /// A one-octet identifier (standard, or proprietary other than the NXP prefixes).
    Nci(NciParamId),
    /// An NXP two-octet identifier `0xA0xx` or `0xA1xx` (UM10936 §10), kept raw.
    Nxp(u16),
}

impl ParamId {
    /// TOTAL_DURATION.
    pub const TOTAL_DURATION: ParamId = ParamId::Nci(NciParamId::TotalDuration);
    /// LA_SEL_INFO.
    pub const LA_SEL_INFO: ParamId = ParamId::Nci(NciParamId::LaSelInfo);
    /// LA_NFCID1.
    pub const LA_NFCID1: ParamId = ParamId::Nci(NciParamId::LaNfcid1);
    /// LB_SENSB_INFO.
    pub const LB_SENSB_INFO: ParamId = ParamId::Nci(NciParamId::LbSensbInfo);
    /// LI_A_RATS_TB1 / LI_FWI.
    pub const LI_A_RATS_TB1: ParamId = ParamId::Nci(NciParamId::LiARatsTb1);
    /// LI_A_HIST_BY.
    pub const LI_A_HIST_BY: ParamId = ParamId::Nci(NciParamId::LiAHistBy);
    /// LI_B_H_INFO_RESP.
    pub const LI_B_H_INFO_RESP: ParamId = ParamId::Nci(NciParamId::LiBHInfoResp);
    /// LF_PROTOCOL_TYPE.
    pub const LF_PROTOCOL_TYPE: ParamId = ParamId::Nci(NciParamId::LfProtocolType);
    /// RF_FIELD_INFO.
    pub const RF_FIELD_INFO: ParamId = ParamId::Nci(NciParamId::RfFieldInfo);
    /// NFCC_CONFIG_CONTROL.
    pub const NFCC_CONFIG_CONTROL: ParamId = ParamId::Nci(NciParamId::NfccConfigControl);

    /// `true` for the octets NXP controllers use as the first octet of a two-octet identifier.
    pub fn is_nxp_prefix(octet: u8) -> bool {
        matches!(octet, 0xA0 | 0xA1)
    }

    /// LF_T3T_IDENTIFIERS_`n` for `n` in 1..=16.
    pub fn lf_t3t_identifiers(n: u8) -> Result<ParamId> {
        if (1..=16).contains(&n) {
            Ok(ParamId::Nci(NciParamId::from(0x3F + n)))
        } else {
            Err(Error::BadValue)
        }
    }

    /// Octets the identifier takes on the wire.
    pub fn wire_len(self) -> usize {
        match self {
            ParamId::Nci(_) => 1,
            ParamId::Nxp(_) => 2,
        }
    }

    /// Read an identifier, applying the NXP prefix rule of the module documentation.
    pub fn read(r: &mut Reader<'_>) -> Result<ParamId> {
        let first = r.u8()?;
        if ParamId::is_nxp_prefix(first) {
            let second = r.u8()?;
            Ok(ParamId::Nxp(u16::from_be_bytes([first, second])))
        } else {
            Ok(ParamId::Nci(NciParamId::from(first)))
        }
    }

    /// Write an identifier. An identifier that would read back differently (a one-octet 0xA0 or
    /// 0xA1, or an NXP identifier without an NXP prefix) is [`Error::BadValue`].
    pub fn write(self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            ParamId::Nci(id) => {
                let raw = u8::from(id);
                if ParamId::is_nxp_prefix(raw) {
                    return Err(Error::BadValue);
                }
                w.u8(raw)
            }
            ParamId::Nxp(raw) => {
                let [first, second] = raw.to_be_bytes();
                if !ParamId::is_nxp_prefix(first) {
                    return Err(Error::BadValue);
                }
                w.bytes(&[first, second])
            }
        }
    }
}

impl fmt::Display for ParamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamId::Nci(id) => fmt::Display::fmt(id, f),
            ParamId::Nxp(raw) => write!(f, "0x{raw:04X}"),
        }
    }
}

impl<'a> ListItem<'a> for ParamId {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        ParamId::read(r)
    }

    fn item_len(&self) -> usize {
        self.wire_len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        ParamId::write(*self, w)
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item(Value::Name(self))
    }
}

/// SEL_RES bit announcing ISO-DEP (ISO/IEC 14443-4 compliance), for [`ConfigParam::la_sel_info`].
pub const LA_SEL_INFO_ISO_DEP: u8 = 0x20;
/// SEL_RES bit announcing NFC-DEP, for [`ConfigParam::la_sel_info`].
pub const LA_SEL_INFO_NFC_DEP: u8 = 0x40;
/// SENSB_RES protocol-type bit announcing ISO-DEP, for [`ConfigParam::lb_sensb_info`].
pub const LB_SENSB_INFO_ISO_DEP: u8 = 0x01;
/// LF_PROTOCOL_TYPE bit announcing NFC-DEP.
pub const LF_PROTOCOL_TYPE_NFC_DEP: u8 = 0x02;

/// The value of a parameter: borrowed from a payload or the caller, or a short value held
/// inline so that typed constructors need no buffer.
#[derive(Clone, Copy)]
enum ParamValue<'a> {
    Borrowed(&'a [u8]),
    Inline { bytes: [u8; 2], len: u8 },
}

/// One configuration parameter: identifier, length, value (NCI 1.0 and NCI 2.0,
/// CORE_SET_CONFIG_CMD).
#[derive(Clone, Copy)]
pub struct ConfigParam<'a> {
    /// The identifier.
    pub id: ParamId,
    value: ParamValue<'a>,
}

impl<'a> ConfigParam<'a> {
    /// A parameter with any value (at most 255 octets are representable; longer values fail to
    /// emit with [`Error::Capacity`]).
    pub fn new(id: ParamId, value: &'a [u8]) -> ConfigParam<'a> {
        ConfigParam {
            id,
            value: ParamValue::Borrowed(value),
        }
    }

    fn inline_u8(id: ParamId, v: u8) -> ConfigParam<'a> {
        ConfigParam {
            id,
            value: ParamValue::Inline {
                bytes: [v, 0],
                len: 1,
            },
        }
    }

    /// The value octets.
    pub fn value(&self) -> &[u8] {
        match &self.value {
            ParamValue::Borrowed(v) => v,
            ParamValue::Inline { bytes, len } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
        }
    }

    /// The value as one octet, when it is exactly one octet long.
    pub fn as_u8(&self) -> Option<u8> {
        match self.value() {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// The value as a little-endian 16-bit number, when it is exactly two octets long.
    pub fn as_u16_le(&self) -> Option<u16> {
        match self.value() {
            [a, b] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    fn typed(&self, id: ParamId) -> Option<&[u8]> {
        (self.id == id).then(|| self.value())
    }

    /// TOTAL_DURATION: the discovery period in milliseconds (NCI 1.0 Table 101).
    pub fn total_duration(ms: u16) -> ConfigParam<'a> {
        ConfigParam {
            id: ParamId::TOTAL_DURATION,
            value: ParamValue::Inline {
                bytes: ms.to_le_bytes(),
                len: 2,
            },
        }
    }

    /// The milliseconds of a TOTAL_DURATION parameter.
    pub fn as_total_duration(&self) -> Option<u16> {
        self.typed(ParamId::TOTAL_DURATION)?;
        self.as_u16_le()
    }

    /// LA_SEL_INFO: the SEL_RES (SAK) the NFCC answers with when emulating a Type A card; set
    /// [`LA_SEL_INFO_ISO_DEP`] for ISO-DEP (NCI 1.0 Table 101; NFC Forum Digital, SEL_RES).
    pub fn la_sel_info(sel_res: u8) -> ConfigParam<'a> {
        ConfigParam::inline_u8(ParamId::LA_SEL_INFO, sel_res)
    }

    /// Whether an LA_SEL_INFO parameter announces ISO-DEP.
    pub fn as_la_sel_info_iso_dep(&self) -> Option<bool> {
        self.typed(ParamId::LA_SEL_INFO)?;
        self.as_u8().map(|v| v & LA_SEL_INFO_ISO_DEP != 0)
    }

    /// LA_NFCID1: the UID of the emulated Type A card: 4, 7 or 10 octets, or empty to let the
    /// NFCC pick a random one (NCI 1.0 Table 101). Other lengths are [`Error::BadValue`].
    pub fn la_nfcid1(nfcid1: &'a [u8]) -> Result<ConfigParam<'a>> {
        if matches!(nfcid1.len(), 0 | 4 | 7 | 10) {
            Ok(ConfigParam::new(ParamId::LA_NFCID1, nfcid1))
        } else {
            Err(Error::BadValue)
        }
    }

    /// The NFCID1 of an LA_NFCID1 parameter.
    pub fn as_la_nfcid1(&self) -> Option<&[u8]> {
        self.typed(ParamId::LA_NFCID1)
    }

    /// LB_SENSB_INFO: protocol bits of the SENSB_RES; set [`LB_SENSB_INFO_ISO_DEP`] for ISO-DEP
    /// over NFC-B.
    pub fn lb_sensb_info(info: u8) -> ConfigParam<'a> {
        ConfigParam::inline_u8(ParamId::LB_SENSB_INFO, info)
    }

    /// Whether an LB_SENSB_INFO parameter announces ISO-DEP.
    pub fn as_lb_sensb_info_iso_dep(&self) -> Option<bool> {
        self.typed(ParamId::LB_SENSB_INFO)?;
        self.as_u8().map(|v| v & LB_SENSB_INFO_ISO_DEP != 0)
    }

    /// NCI 2.0 LI_A_RATS_TB1: the ATS TB(1) octet, FWI in b8–b5 and SFGI in b4–b1 (both 0–14,
    /// ISO/IEC 14443-4, ATS interface byte TB(1)); other values are [`Error::BadValue`].
    pub fn li_a_rats_tb1(fwi: u8, sfgi: u8) -> Result<ConfigParam<'a>> {
        if fwi > 14 || sfgi > 14 {
            return Err(Error::BadValue);
        }
        Ok(ConfigParam::inline_u8(
            ParamId::LI_A_RATS_TB1,
            (fwi << 4) | sfgi,
        ))
    }

    /// `(FWI, SFGI)` of parameter 0x58 read as NCI 2.0 LI_A_RATS_TB1.
    pub fn as_li_a_rats_tb1(&self) -> Option<(u8, u8)> {
        self.typed(ParamId::LI_A_RATS_TB1)?;
        self.as_u8().map(|tb1| (tb1 >> 4, tb1 & 0x0F))
    }

    /// NCI 1.0 LI_FWI: the Frame Waiting time Integer (0–14) as a plain octet, same code point
    /// as LI_A_RATS_TB1 (see the module documentation). FWT = 302 µs × 2^FWI.
    pub fn li_fwi(fwi: u8) -> Result<ConfigParam<'a>> {
        if fwi > 14 {
            return Err(Error::BadValue);
        }
        Ok(ConfigParam::inline_u8(ParamId::LI_A_RATS_TB1, fwi))
    }

    /// The FWI of parameter 0x58 read as NCI 1.0 LI_FWI.
    pub fn as_li_fwi(&self) -> Option<u8> {
        self.typed(ParamId::LI_A_RATS_TB1)?;
        self.as_u8()
    }

    /// LI_A_HIST_BY: the historical bytes of the ATS, at most 15 (ISO/IEC 14443-4, ATS).
    pub fn li_a_hist_by(historical: &'a [u8]) -> Result<ConfigParam<'a>> {
        if historical.len() > 15 {
            return Err(Error::BadValue);
        }
        Ok(ConfigParam::new(ParamId::LI_A_HIST_BY, historical))
    }

    /// The historical bytes of an LI_A_HIST_BY parameter.
    pub fn as_li_a_hist_by(&self) -> Option<&[u8]> {
        self.typed(ParamId::LI_A_HIST_BY)
    }

    /// LI_B_H_INFO_RESP: the higher-layer response the NFCC puts in its ATTRIB response.
    pub fn li_b_h_info_resp(response: &'a [u8]) -> ConfigParam<'a> {
        ConfigParam::new(ParamId::LI_B_H_INFO_RESP, response)
    }

    /// The higher-layer response of an LI_B_H_INFO_RESP parameter.
    pub fn as_li_b_h_info_resp(&self) -> Option<&[u8]> {
        self.typed(ParamId::LI_B_H_INFO_RESP)
    }

    /// LF_T3T_IDENTIFIERS_`n` (`n` in 1..=16): system code (2 octets) and NFCID2 (8 octets),
    /// plus PMm (8 octets) under NCI 2.0. Other lengths are [`Error::BadValue`].
    pub fn lf_t3t_identifiers(n: u8, identifier: &'a [u8]) -> Result<ConfigParam<'a>> {
        if !matches!(identifier.len(), 10 | 18) {
            return Err(Error::BadValue);
        }
        Ok(ConfigParam::new(
            ParamId::lf_t3t_identifiers(n)?,
            identifier,
        ))
    }

    /// `(index, system code, NFCID2)` of an LF_T3T_IDENTIFIERS_n parameter.
    pub fn as_lf_t3t_identifiers(&self) -> Option<(u8, [u8; 2], [u8; 8])> {
        let ParamId::Nci(id) = self.id else {
            return None;
        };
        let raw = u8::from(id);
        if !(0x40..=0x4F).contains(&raw) {
            return None;
        }
        let value = self.value();
        let system_code = <[u8; 2]>::try_from(value.get(..2)?).ok()?;
        let nfcid2 = <[u8; 8]>::try_from(value.get(2..10)?).ok()?;
        Some((raw - 0x3F, system_code, nfcid2))
    }

    /// LF_PROTOCOL_TYPE: protocols announced in NFC-F listen ([`LF_PROTOCOL_TYPE_NFC_DEP`]).
    pub fn lf_protocol_type(protocols: u8) -> ConfigParam<'a> {
        ConfigParam::inline_u8(ParamId::LF_PROTOCOL_TYPE, protocols)
    }

    /// RF_FIELD_INFO: ask the NFCC to report the reader's field with RF_FIELD_INFO_NTF.
    pub fn rf_field_info(enabled: bool) -> ConfigParam<'a> {
        ConfigParam::inline_u8(ParamId::RF_FIELD_INFO, u8::from(enabled))
    }

    /// Whether an RF_FIELD_INFO parameter enables the notification.
    pub fn as_rf_field_info(&self) -> Option<bool> {
        self.typed(ParamId::RF_FIELD_INFO)?;
        self.as_u8().map(|v| v & 0x01 != 0)
    }

    /// NCI 2.0 NFCC_CONFIG_CONTROL: whether the NFCC may manage the RF configuration itself
    /// (NCI 2.0 Table 150).
    pub fn nfcc_config_control(nfcc_may_manage: bool) -> ConfigParam<'a> {
        ConfigParam::inline_u8(ParamId::NFCC_CONFIG_CONTROL, u8::from(nfcc_may_manage))
    }

    /// Whether an NFCC_CONFIG_CONTROL parameter lets the NFCC manage the RF configuration.
    pub fn as_nfcc_config_control(&self) -> Option<bool> {
        self.typed(ParamId::NFCC_CONFIG_CONTROL)?;
        self.as_u8().map(|v| v & 0x01 != 0)
    }

    /// An NXP extension parameter `0xA0xx` / `0xA1xx` with a raw value (UM10936 §10). An
    /// identifier without an NXP prefix octet is [`Error::BadValue`].
    pub fn nxp(id: u16, value: &'a [u8]) -> Result<ConfigParam<'a>> {
        if !ParamId::is_nxp_prefix(id.to_be_bytes()[0]) {
            return Err(Error::BadValue);
        }
        Ok(ConfigParam::new(ParamId::Nxp(id), value))
    }
}

impl PartialEq for ConfigParam<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.value() == other.value()
    }
}

impl Eq for ConfigParam<'_> {}

impl fmt::Debug for ConfigParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigParam")
            .field("id", &self.id)
            .field("value", &HexBytes(self.value()))
            .finish()
    }
}

impl<'a> ListItem<'a> for ConfigParam<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let id = ParamId::read(r)?;
        let value = r.len_prefixed()?;
        Ok(ConfigParam::new(id, value))
    }

    fn item_len(&self) -> usize {
        self.id.wire_len() + 1 + self.value().len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        self.id.write(w)?;
        w.len_prefixed(self.value())
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item_record_begin()?;
        v.field("id", Value::Name(&self.id))?;
        v.field("value", Value::Hex(self.value()))?;
        v.record_end()
    }
}

/// Validate `bytes` as exactly `count` parameter TLVs (the body of CORE_SET_CONFIG_CMD or
/// CORE_GET_CONFIG_RSP after its count octet).
pub fn parse_params(count: u8, bytes: &[u8]) -> Result<List<'_, ConfigParam<'_>>> {
    List::parse(usize::from(count), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // TOTAL_DURATION = 500 ms, LA_SEL_INFO = ISO-DEP, NXP A003 (clock) = 0x08.
    const PARAMS: [u8; 12] = [
        0x00, 0x02, 0xF4, 0x01, // TOTAL_DURATION 0x01F4
        0x32, 0x01, 0x20, // LA_SEL_INFO
        0xA0, 0x03, 0x01, 0x08, // NXP 0xA003
        0x80, // (not part of the 3 TLVs)
    ];

    #[test]
    fn parse_mixed_one_and_two_octet_ids() {
        let list = parse_params(3, &PARAMS[..11]).unwrap();
        let params: heapless::Vec<ConfigParam<'_>, 4> = list.iter().collect();
        assert_eq!(params[0].as_total_duration(), Some(500));
        assert_eq!(params[1].as_la_sel_info_iso_dep(), Some(true));
        assert_eq!(params[2].id, ParamId::Nxp(0xA003));
        assert_eq!(params[2].value(), &[0x08]);
        assert_eq!(params[2].id.to_string(), "0xA003");
        assert_eq!(params[0].id.to_string(), "TOTAL_DURATION");
    }

    #[test]
    fn strict_framing() {
        assert_eq!(parse_params(3, &PARAMS).err(), Some(Error::TrailingBytes));
        assert_eq!(parse_params(4, &PARAMS[..11]).err(), Some(Error::BadLength));
        // A value length running past the end.
        assert_eq!(
            parse_params(1, &[0x00, 0x05, 0x01]).err(),
            Some(Error::BadLength)
        );
        // An NXP prefix without its second octet.
        assert_eq!(parse_params(1, &[0xA0]).err(), Some(Error::BadLength));
    }

    #[test]
    fn typed_constructors_emit_the_spec_encoding() {
        let params = [
            ConfigParam::total_duration(500),
            ConfigParam::la_sel_info(LA_SEL_INFO_ISO_DEP),
            ConfigParam::nxp(0xA003, &[0x08]).unwrap(),
        ];
        let list = List::from_items(&params);
        let mut out = [0u8; 16];
        let mut w = Writer::new(&mut out);
        list.write(&mut w).unwrap();
        assert_eq!(w.len(), 11);
        assert_eq!(list.buffer_len(), 11);
        assert_eq!(&out[..11], &PARAMS[..11]);
        assert_eq!(list, parse_params(3, &PARAMS[..11]).unwrap());
    }

    #[test]
    fn li_fwi_and_rats_tb1_share_a_code_point() {
        let tb1 = ConfigParam::li_a_rats_tb1(7, 0).unwrap();
        assert_eq!(tb1.value(), &[0x70]);
        assert_eq!(tb1.as_li_a_rats_tb1(), Some((7, 0)));
        let fwi = ConfigParam::li_fwi(7).unwrap();
        assert_eq!(fwi.id, tb1.id);
        assert_eq!(fwi.value(), &[0x07]);
        assert_eq!(fwi.as_li_fwi(), Some(7));
        assert_eq!(ConfigParam::li_fwi(15).err(), Some(Error::BadValue));
    }

    #[test]
    fn constructors_validate() {
        assert!(ConfigParam::la_nfcid1(&[1, 2, 3, 4]).is_ok());
        assert_eq!(
            ConfigParam::la_nfcid1(&[1, 2, 3]).err(),
            Some(Error::BadValue)
        );
        assert_eq!(
            ConfigParam::li_a_hist_by(&[0; 16]).err(),
            Some(Error::BadValue)
        );
        assert_eq!(ConfigParam::nxp(0xB003, &[]).err(), Some(Error::BadValue));
        let t3t = [0x12, 0xFC, 1, 2, 3, 4, 5, 6, 7, 8];
        let p = ConfigParam::lf_t3t_identifiers(16, &t3t).unwrap();
        assert_eq!(p.id, ParamId::Nci(NciParamId::LfT3tIdentifiers16));
        assert_eq!(
            p.as_lf_t3t_identifiers(),
            Some((16, [0x12, 0xFC], [1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert_eq!(ParamId::lf_t3t_identifiers(0).err(), Some(Error::BadValue));
        assert_eq!(ConfigParam::rf_field_info(true).value(), &[0x01]);
        assert_eq!(
            ConfigParam::nfcc_config_control(false).as_nfcc_config_control(),
            Some(false)
        );
    }

    #[test]
    fn ambiguous_ids_do_not_emit() {
        let mut out = [0u8; 4];
        let p = ConfigParam::new(ParamId::Nci(NciParamId::from(0xA0)), &[]);
        assert_eq!(p.write(&mut Writer::new(&mut out)), Err(Error::BadValue));
        let p = ConfigParam::new(ParamId::Nxp(0x0032), &[]);
        assert_eq!(p.write(&mut Writer::new(&mut out)), Err(Error::BadValue));
    }
}
