//! NXP proprietary messages of the PN7150 (group 1111b; PN7150 User Manual UM10936 §6.3 and
//! §9.6, "[PN7150-NCI] extensions"), and the NXP reading of manufacturer-specific fields.
//!
//! Named here: the extension activation NCI_PROPRIETARY_ACT_CMD/RSP (`2F 02`), standby control
//! CORE_SET_POWER_MODE_CMD/RSP (`2F 00`), and the ISO-DEP presence check RF_PRES_CHECK_CMD/RSP/
//! NTF (`2F 11`). Every other message of the group — and a known one whose payload does not
//! have the documented shape — is kept whole as `Message::Proprietary`; the proprietary group
//! never yields a parse error.
//!
//! This module does not send anything: when to activate the extensions, or whether to leave
//! standby enabled (UM10936 recommends it), is the controller state machine's decision.

use core::fmt;

use super::message::{octet_fields, Emit, FieldVisitor, HexBytes, Reader, Value, Writer};
use super::{Result, Status};

/// Opcodes of the NXP proprietary group used by the PN7150 (UM10936).
pub mod oid {
    /// CORE_SET_POWER_MODE_CMD / RSP: standby control (UM10936 §9.6.1).
    pub const CORE_SET_POWER_MODE: u8 = 0x00;
    /// NCI_PROPRIETARY_ACT_CMD / RSP: enable the NXP extensions.
    pub const NCI_PROPRIETARY_ACT: u8 = 0x02;
    /// RF_T4T_SBLOCK_PARAM_CMD / RSP (UM10936 §6.3.4; no layout in this crate).
    pub const RF_T4T_SBLOCK_PARAM: u8 = 0x10;
    /// RF_PRES_CHECK_CMD / RSP / NTF: ISO-DEP presence check (UM10936 §6.3.3).
    pub const RF_PRES_CHECK: u8 = 0x11;
    /// RF_GET_TRANSITION_CMD / RSP (UM10936; no layout in this crate).
    pub const RF_GET_TRANSITION: u8 = 0x14;
}

/// The status of the CORE_GENERIC_ERROR_NTF a PN7150 sends after its anti-tearing recovery
/// restored the RF settings (behaviour documented by NXP's PN7150 reference library).
pub const STATUS_RF_SETTINGS_RESTORED: Status = Status::Unknown(0xE6);

open_enum! {
    /// Mode of CORE_SET_POWER_MODE_CMD (UM10936 Table 79).
    pub enum PowerMode(u8) {
        /// Standby disabled: higher consumption, for debugging only.
        StandbyDisabled = 0x00 => "STANDBY_DISABLED",
        /// Standby enabled (the default).
        StandbyEnabled = 0x01 => "STANDBY_ENABLED",
    }
}

octet_fields! {
    /// CORE_SET_POWER_MODE_CMD `2F 00 01 xx`: enable or disable the standby mode (UM10936 §9.6.1).
    pub struct CoreSetPowerModeCmd {
        /// Standby on or off.
        pub mode: PowerMode => "mode" name,
    }
}

/// NCI_PROPRIETARY_ACT_RSP `4F 02 ..`: status, then the firmware build number (4 octets in
/// NXP's documentation); anything the NFCC sends is kept, the build number decoded when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NciProprietaryActRsp<'a> {
    /// Outcome.
    pub status: Status,
    /// The octets after the status (the firmware build number).
    pub fw_build: &'a [u8],
}

impl<'a> NciProprietaryActRsp<'a> {
    /// Parse the payload (at least the status octet).
    pub fn parse(payload: &'a [u8]) -> Result<NciProprietaryActRsp<'a>> {
        let mut r = Reader::new(payload);
        let status = Status::from(r.u8()?);
        let fw_build = r.rest();
        Ok(NciProprietaryActRsp { status, fw_build })
    }

    /// The four-octet firmware build number, when the response carries one.
    pub fn fw_build_number(&self) -> Option<[u8; 4]> {
        <[u8; 4]>::try_from(self.fw_build.get(..4)?).ok()
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("status", Value::Name(&self.status))?;
        v.field("fw_build", Value::Hex(self.fw_build))
    }
}

impl Emit for NciProprietaryActRsp<'_> {
    fn buffer_len(&self) -> usize {
        1 + self.fw_build.len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(u8::from(self.status))?;
        w.bytes(self.fw_build)
    }
}

/// RF_PRES_CHECK_NTF `6F 11 01 xx`: whether the ISO-DEP card is still in the field (UM10936
/// Table 54: 0x00 gone, 0x01 present).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfPresCheckNtf {
    /// The Presence octet, kept whole.
    pub presence: u8,
}

impl RfPresCheckNtf {
    /// Parse the payload.
    pub fn parse(payload: &[u8]) -> Result<RfPresCheckNtf> {
        let mut r = Reader::new(payload);
        let presence = r.u8()?;
        r.finish()?;
        Ok(RfPresCheckNtf { presence })
    }

    /// `true` when the card is still in the field.
    pub fn present(&self) -> bool {
        self.presence == 0x01
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("present", Value::Flag(self.present()))
    }
}

impl Emit for RfPresCheckNtf {
    fn buffer_len(&self) -> usize {
        1
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.presence)
    }
}

/// NXP's reading of the four manufacturer-specific octets of an NCI 1.0 CORE_INIT_RSP (and of
/// an NCI 2.0 CORE_RESET_NTF from an NXP controller): hardware version, ROM code version,
/// firmware major and minor version, as NXP's reference libraries decode them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NxpVersionInfo {
    /// Hardware version.
    pub hw_version: u8,
    /// ROM code version: 0x08 for the PN7120, 0x10 for the PN7150.
    pub rom_code_version: u8,
    /// Firmware major version.
    pub fw_major: u8,
    /// Firmware minor version.
    pub fw_minor: u8,
}

impl NxpVersionInfo {
    /// Decode the first four manufacturer-specific octets; `None` when there are fewer.
    pub fn from_manufacturer_info(info: &[u8]) -> Option<NxpVersionInfo> {
        match info {
            [hw_version, rom_code_version, fw_major, fw_minor, ..] => Some(NxpVersionInfo {
                hw_version: *hw_version,
                rom_code_version: *rom_code_version,
                fw_major: *fw_major,
                fw_minor: *fw_minor,
            }),
            _ => None,
        }
    }

    /// The controller generation the ROM code version indicates.
    pub fn chip(&self) -> Option<&'static str> {
        match self.rom_code_version {
            0x08 => Some("PN7120"),
            0x10 => Some("PN7150"),
            _ => None,
        }
    }

    /// The firmware version as NXP writes it: ROM code, major, minor (`10.01.A0`).
    pub fn fw_version(&self) -> impl fmt::Display {
        FwVersion([self.rom_code_version, self.fw_major, self.fw_minor])
    }
}

struct FwVersion([u8; 3]);

impl fmt::Display for FwVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a:02X}.{b:02X}.{c:02X}")
    }
}

impl fmt::Display for NxpVersionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hw={} fw={}",
            HexBytes(&[self.hw_version]),
            self.fw_version()
        )?;
        if let Some(chip) = self.chip() {
            write!(f, " ({chip})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Message;
    use super::super::{MessageType, NciVersion};
    use super::*;

    fn roundtrip(bytes: &[u8]) -> Message<'_> {
        let msg = Message::parse_packet(bytes, NciVersion::V1_0).unwrap();
        let mut out = [0u8; 300];
        let n = msg.emit_packet(&mut out).unwrap();
        assert_eq!(&out[..n], bytes, "{msg}");
        msg
    }

    #[test]
    fn proprietary_activation() {
        // > NCI_PROPRIETARY_ACT_CMD
        let msg = roundtrip(&[0x2F, 0x02, 0x00]);
        assert_eq!(msg, Message::NciProprietaryActCmd);
        assert_eq!(msg.to_string(), "NCI_PROPRIETARY_ACT_CMD");
        // < NCI_PROPRIETARY_ACT_RSP: STATUS_OK, firmware build number
        let msg = roundtrip(&[0x4F, 0x02, 0x05, 0x00, 0x00, 0x10, 0x01, 0xA0]);
        let Message::NciProprietaryActRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(rsp.status, Status::Ok);
        assert_eq!(rsp.fw_build_number(), Some([0x00, 0x10, 0x01, 0xA0]));
        assert_eq!(
            msg.to_string(),
            "NCI_PROPRIETARY_ACT_RSP status=STATUS_OK fw_build=00 10 01 A0"
        );
        // A failure carrying only the status still parses.
        let msg = roundtrip(&[0x4F, 0x02, 0x01, 0x03]);
        let Message::NciProprietaryActRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(rsp.fw_build_number(), None);
    }

    #[test]
    fn standby_control() {
        let msg = roundtrip(&[0x2F, 0x00, 0x01, 0x00]);
        assert_eq!(
            msg,
            Message::CoreSetPowerModeCmd(CoreSetPowerModeCmd {
                mode: PowerMode::StandbyDisabled
            })
        );
        let msg = roundtrip(&[0x2F, 0x00, 0x01, 0x01]);
        assert_eq!(
            msg.to_string(),
            "CORE_SET_POWER_MODE_CMD mode=STANDBY_ENABLED"
        );
        let msg = roundtrip(&[0x4F, 0x00, 0x01, 0x00]);
        assert_eq!(msg.to_string(), "CORE_SET_POWER_MODE_RSP status=STATUS_OK");
    }

    #[test]
    fn presence_check() {
        roundtrip(&[0x2F, 0x11, 0x00]);
        roundtrip(&[0x4F, 0x11, 0x01, 0x00]);
        let msg = roundtrip(&[0x6F, 0x11, 0x01, 0x01]);
        assert_eq!(msg.to_string(), "RF_PRES_CHECK_NTF present=true");
        let msg = roundtrip(&[0x6F, 0x11, 0x01, 0x00]);
        assert_eq!(msg, Message::RfPresCheckNtf(RfPresCheckNtf { presence: 0 }));
    }

    #[test]
    fn anything_else_in_the_group_is_kept_opaque() {
        // RF_GET_TRANSITION_RSP: no layout here.
        let msg = roundtrip(&[0x4F, 0x14, 0x03, 0x00, 0x01, 0x42]);
        assert_eq!(
            msg,
            Message::Proprietary {
                mt: MessageType::Response,
                oid: 0x14,
                payload: &[0x00, 0x01, 0x42]
            }
        );
        assert_eq!(msg.name(), "PROPRIETARY_RSP");
        assert_eq!(msg.to_string(), "PROPRIETARY_RSP oid=20 payload=00 01 42");
        // A known opcode with a payload of the wrong shape.
        let msg = roundtrip(&[0x2F, 0x00, 0x02, 0x01, 0x01]);
        assert!(matches!(msg, Message::Proprietary { oid: 0x00, .. }));
        // Reserved message types in the proprietary group.
        let msg = roundtrip(&[0x8F, 0x01, 0x00]);
        assert_eq!(
            msg,
            Message::Proprietary {
                mt: MessageType::Unknown(4),
                oid: 1,
                payload: &[]
            }
        );
        assert_eq!(msg.name(), "PROPRIETARY");
    }

    #[test]
    fn pn7150_version_info() {
        let info = NxpVersionInfo::from_manufacturer_info(&[0x88, 0x10, 0x01, 0xA0]).unwrap();
        assert_eq!(info.chip(), Some("PN7150"));
        assert_eq!(info.fw_version().to_string(), "10.01.A0");
        assert_eq!(info.to_string(), "hw=88 fw=10.01.A0 (PN7150)");
        assert_eq!(NxpVersionInfo::from_manufacturer_info(&[0x88]), None);
    }
}
