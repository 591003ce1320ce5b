//! NCI Core messages, GID 0000b (NCI 1.0 and NCI 2.0, chapter "NCI Core Control Messages"): reset,
//! initialisation, configuration, logical connections, credits and error notifications.
//!
//! Each message is a validated value (`*Repr` in smoltcp's sense) with `parse`, and
//! [`Emit::buffer_len`] / [`Emit::emit`]; the payload layout is all this module knows. Where NCI
//! 1.0 and NCI 2.0 lay a message out differently the value says which layout it holds, so that
//! emitting never needs the version again.

use core::fmt;

use super::config::{ConfigParam, ParamId};
use super::message::{
    list_payload, octet_fields, Emit, FieldVisitor, List, ListItem, Reader, Tlv, Value, Writer,
};
use super::nxp::NxpVersionInfo;
use super::{ConfigStatus, NciVersion, ResetTrigger, ResetType, Result, RfInterface, Status};

/// Opcodes of the Core group (NCI 1.0 Table 102, NCI 2.0 Table 149: GID and OID values).
pub mod oid {
    /// CORE_RESET_CMD / RSP / NTF.
    pub const CORE_RESET: u8 = 0x00;
    /// CORE_INIT_CMD / RSP.
    pub const CORE_INIT: u8 = 0x01;
    /// CORE_SET_CONFIG_CMD / RSP.
    pub const CORE_SET_CONFIG: u8 = 0x02;
    /// CORE_GET_CONFIG_CMD / RSP.
    pub const CORE_GET_CONFIG: u8 = 0x03;
    /// CORE_CONN_CREATE_CMD / RSP.
    pub const CORE_CONN_CREATE: u8 = 0x04;
    /// CORE_CONN_CLOSE_CMD / RSP.
    pub const CORE_CONN_CLOSE: u8 = 0x05;
    /// CORE_CONN_CREDITS_NTF.
    pub const CORE_CONN_CREDITS: u8 = 0x06;
    /// CORE_GENERIC_ERROR_NTF.
    pub const CORE_GENERIC_ERROR: u8 = 0x07;
    /// CORE_INTERFACE_ERROR_NTF.
    pub const CORE_INTERFACE_ERROR: u8 = 0x08;
    /// NCI 2.0 CORE_SET_POWER_SUB_STATE_CMD / RSP.
    pub const CORE_SET_POWER_SUB_STATE: u8 = 0x09;
}

/// An IC manufacturer code (ISO/IEC 7816-6), as carried in CORE_INIT_RSP (NCI 1.0) and
/// CORE_RESET_NTF (NCI 2.0). Displays a short name for the codes of NFC controller makers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManufacturerId(pub u8);

impl ManufacturerId {
    /// NXP Semiconductors (PN7120, PN7150, PN7160).
    pub const NXP: ManufacturerId = ManufacturerId(0x04);

    /// A short name for well-known codes.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0x02 => Some("STMicroelectronics"),
            0x04 => Some("NXP"),
            0x05 => Some("Infineon"),
            0x07 => Some("Texas Instruments"),
            0x0E => Some("Samsung"),
            _ => None,
        }
    }
}

impl fmt::Display for ManufacturerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:02X}", self.0),
        }
    }
}

/// Describe the manufacturer fields, adding NXP's reading of the specific information.
fn visit_manufacturer(id: ManufacturerId, info: &[u8], v: &mut dyn FieldVisitor) -> fmt::Result {
    v.field("manufacturer", Value::Name(&id))?;
    v.field("manufacturer_info", Value::Hex(info))?;
    if id != ManufacturerId::NXP {
        return Ok(());
    }
    let Some(nxp) = NxpVersionInfo::from_manufacturer_info(info) else {
        return Ok(());
    };
    v.record_begin("nxp")?;
    v.field("hw", Value::Hex(&[nxp.hw_version]))?;
    v.field("fw", Value::Name(&nxp.fw_version()))?;
    if let Some(chip) = nxp.chip() {
        v.field("chip", Value::Name(&chip))?;
    }
    v.record_end()
}

octet_fields! {
    /// CORE_RESET_CMD (NCI 1.0 and NCI 2.0, same layout).
    pub struct CoreResetCmd {
        /// Keep or reset the configuration.
        pub reset_type: ResetType => "reset_type" name,
    }
}

/// CORE_RESET_RSP in its NCI 1.0 or NCI 2.0 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreResetRsp {
    /// NCI 1.0 layout: status, NCI version, configuration status (3 octets).
    Nci1 {
        /// Outcome.
        status: Status,
        /// The NCI version the NFCC implements.
        nci_version: NciVersion,
        /// Whether the configuration was kept or reset.
        config_status: ConfigStatus,
    },
    /// NCI 2.0 layout: status only (1 octet); the version follows in CORE_RESET_NTF.
    Nci2 {
        /// Outcome.
        status: Status,
    },
}

impl CoreResetRsp {
    /// Parse the payload. The layout is told by length, not by a version argument: this is
    /// the message the host learns the version from. One octet is the NCI 2.0 layout, three
    /// octets the NCI 1.0 layout; two octets are [`Error::Truncated`](super::Error::Truncated),
    /// more than three [`Error::TrailingBytes`](super::Error::TrailingBytes).
    pub fn parse(payload: &[u8]) -> Result<CoreResetRsp> {
        let mut r = Reader::new(payload);
        let status = Status::from(r.u8()?);
        if r.is_empty() {
            return Ok(CoreResetRsp::Nci2 { status });
        }
        let nci_version = NciVersion(r.u8()?);
        let config_status = ConfigStatus::from(r.u8()?);
        r.finish()?;
        Ok(CoreResetRsp::Nci1 {
            status,
            nci_version,
            config_status,
        })
    }

    /// Outcome of the reset.
    pub fn status(&self) -> Status {
        match self {
            CoreResetRsp::Nci1 { status, .. } | CoreResetRsp::Nci2 { status } => *status,
        }
    }

    /// The NCI version, present in the NCI 1.0 layout only.
    pub fn nci_version(&self) -> Option<NciVersion> {
        match self {
            CoreResetRsp::Nci1 { nci_version, .. } => Some(*nci_version),
            CoreResetRsp::Nci2 { .. } => None,
        }
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            CoreResetRsp::Nci1 {
                status,
                nci_version,
                config_status,
            } => {
                v.field("status", Value::Name(status))?;
                v.field("nci_version", Value::Name(nci_version))?;
                v.field("config_status", Value::Name(config_status))
            }
            CoreResetRsp::Nci2 { status } => v.field("status", Value::Name(status)),
        }
    }
}

impl Emit for CoreResetRsp {
    fn buffer_len(&self) -> usize {
        match self {
            CoreResetRsp::Nci1 { .. } => 3,
            CoreResetRsp::Nci2 { .. } => 1,
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            CoreResetRsp::Nci1 {
                status,
                nci_version,
                config_status,
            } => {
                w.u8(u8::from(*status))?;
                w.u8(nci_version.0)?;
                w.u8(u8::from(*config_status))
            }
            CoreResetRsp::Nci2 { status } => w.u8(u8::from(*status)),
        }
    }
}

/// CORE_RESET_NTF in its NCI 1.0 or NCI 2.0 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreResetNtf<'a> {
    /// NCI 1.0 layout: reason code and configuration status, sent when the NFCC reset itself.
    Nci1 {
        /// Reason: 0x00 unspecified, 0xA0–0xFF proprietary.
        reason: u8,
        /// Whether the configuration was kept or reset.
        config_status: ConfigStatus,
    },
    /// NCI 2.0 layout: sent after every reset, carrying what CORE_RESET_RSP and CORE_INIT_RSP
    /// carried in NCI 1.0.
    Nci2 {
        /// Why the NFCC reset.
        trigger: ResetTrigger,
        /// Whether the configuration was kept or reset.
        config_status: ConfigStatus,
        /// The NCI version the NFCC implements.
        nci_version: NciVersion,
        /// IC manufacturer (ISO/IEC 7816-6).
        manufacturer_id: ManufacturerId,
        /// Manufacturer-specific information (for NXP: hardware and firmware versions).
        manufacturer_info: &'a [u8],
    },
}

impl<'a> CoreResetNtf<'a> {
    /// Parse the payload. As with [`CoreResetRsp::parse`] the layout is told by length: two
    /// octets are the NCI 1.0 layout, anything else the NCI 2.0 one (at least five octets).
    pub fn parse(payload: &'a [u8]) -> Result<CoreResetNtf<'a>> {
        let mut r = Reader::new(payload);
        if payload.len() == 2 {
            let reason = r.u8()?;
            let config_status = ConfigStatus::from(r.u8()?);
            return Ok(CoreResetNtf::Nci1 {
                reason,
                config_status,
            });
        }
        let trigger = ResetTrigger::from(r.u8()?);
        let config_status = ConfigStatus::from(r.u8()?);
        let nci_version = NciVersion(r.u8()?);
        let manufacturer_id = ManufacturerId(r.u8()?);
        let manufacturer_info = r.len_prefixed()?;
        r.finish()?;
        Ok(CoreResetNtf::Nci2 {
            trigger,
            config_status,
            nci_version,
            manufacturer_id,
            manufacturer_info,
        })
    }

    /// The NCI version, present in the NCI 2.0 layout only.
    pub fn nci_version(&self) -> Option<NciVersion> {
        match self {
            CoreResetNtf::Nci1 { .. } => None,
            CoreResetNtf::Nci2 { nci_version, .. } => Some(*nci_version),
        }
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            CoreResetNtf::Nci1 {
                reason,
                config_status,
            } => {
                v.field("reason", Value::Num(u64::from(*reason)))?;
                v.field("config_status", Value::Name(config_status))
            }
            CoreResetNtf::Nci2 {
                trigger,
                config_status,
                nci_version,
                manufacturer_id,
                manufacturer_info,
            } => {
                v.field("trigger", Value::Name(trigger))?;
                v.field("config_status", Value::Name(config_status))?;
                v.field("nci_version", Value::Name(nci_version))?;
                visit_manufacturer(*manufacturer_id, manufacturer_info, v)
            }
        }
    }
}

impl Emit for CoreResetNtf<'_> {
    fn buffer_len(&self) -> usize {
        match self {
            CoreResetNtf::Nci1 { .. } => 2,
            CoreResetNtf::Nci2 {
                manufacturer_info, ..
            } => 5 + manufacturer_info.len(),
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            CoreResetNtf::Nci1 {
                reason,
                config_status,
            } => {
                w.u8(*reason)?;
                w.u8(u8::from(*config_status))
            }
            CoreResetNtf::Nci2 {
                trigger,
                config_status,
                nci_version,
                manufacturer_id,
                manufacturer_info,
            } => {
                // Three octets would read back as... nothing valid; two as the NCI 1.0 layout.
                // The NCI 2.0 layout is never shorter than five octets, so no ambiguity arises.
                w.u8(u8::from(*trigger))?;
                w.u8(u8::from(*config_status))?;
                w.u8(nci_version.0)?;
                w.u8(manufacturer_id.0)?;
                w.len_prefixed(manufacturer_info)
            }
        }
    }
}

/// CORE_INIT_CMD in its NCI 1.0 or NCI 2.0 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreInitCmd {
    /// NCI 1.0 layout: empty.
    Nci1,
    /// NCI 2.0 layout: two Feature Enable octets (0x00 0x00: no optional feature).
    Nci2 {
        /// Feature Enable octets.
        feature_enable: [u8; 2],
    },
}

impl CoreInitCmd {
    /// Parse the payload in the layout of `version`.
    pub fn parse(payload: &[u8], version: NciVersion) -> Result<CoreInitCmd> {
        let mut r = Reader::new(payload);
        let cmd = if version.is_v2() {
            CoreInitCmd::Nci2 {
                feature_enable: r.array()?,
            }
        } else {
            CoreInitCmd::Nci1
        };
        r.finish()?;
        Ok(cmd)
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            CoreInitCmd::Nci1 => Ok(()),
            CoreInitCmd::Nci2 { feature_enable } => {
                v.field("feature_enable", Value::Hex(feature_enable))
            }
        }
    }
}

impl Emit for CoreInitCmd {
    fn buffer_len(&self) -> usize {
        match self {
            CoreInitCmd::Nci1 => 0,
            CoreInitCmd::Nci2 { .. } => 2,
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            CoreInitCmd::Nci1 => Ok(()),
            CoreInitCmd::Nci2 { feature_enable } => w.bytes(feature_enable),
        }
    }
}

/// The four NFCC Features octets of CORE_INIT_RSP (NCI 1.0 and NCI 2.0, "NFCC Features").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NfccFeatures(pub [u8; 4]);

impl NfccFeatures {
    fn bit(&self, octet: usize, bit: u8) -> bool {
        self.0.get(octet).is_some_and(|o| o & (1 << bit) != 0)
    }

    /// Octet 0 b0: the DH may set the discovery frequency per technology.
    pub fn discovery_frequency_configuration(&self) -> bool {
        self.bit(0, 0)
    }

    /// Octet 0 b2–b1: discovery configuration mode (0: DH only; 1: NFCC handles input from
    /// several NFCEEs and the DH).
    pub fn discovery_configuration_mode(&self) -> u8 {
        (self.0[0] >> 1) & 0x03
    }

    /// Octet 1 b1: technology-based listen mode routing.
    pub fn technology_routing(&self) -> bool {
        self.bit(1, 1)
    }

    /// Octet 1 b2: protocol-based listen mode routing.
    pub fn protocol_routing(&self) -> bool {
        self.bit(1, 2)
    }

    /// Octet 1 b3: AID-based listen mode routing.
    pub fn aid_routing(&self) -> bool {
        self.bit(1, 3)
    }

    /// Octet 1 b4: NCI 2.0 system-code-based listen mode routing.
    pub fn system_code_routing(&self) -> bool {
        self.bit(1, 4)
    }

    /// Octet 1 b5: NCI 2.0 APDU-pattern-based listen mode routing.
    pub fn apdu_pattern_routing(&self) -> bool {
        self.bit(1, 5)
    }

    /// Octet 2 b0: listen mode routing in the battery-off state.
    pub fn battery_off_state(&self) -> bool {
        self.bit(2, 0)
    }

    /// Octet 2 b1: listen mode routing in the switched-off state.
    pub fn switched_off_state(&self) -> bool {
        self.bit(2, 1)
    }

    /// Octet 3: proprietary capabilities.
    pub fn proprietary(&self) -> u8 {
        self.0[3]
    }
}

/// A supported RF interface in an NCI 2.0 CORE_INIT_RSP: the interface and its extensions
/// (NCI 2.0 CORE_INIT_RSP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfInterfaceExt<'a> {
    /// The interface.
    pub interface: RfInterface,
    /// Identifiers of the interface extensions it supports.
    pub extensions: &'a [u8],
}

impl<'a> ListItem<'a> for RfInterfaceExt<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let interface = RfInterface::from(r.u8()?);
        let extensions = r.len_prefixed()?;
        Ok(RfInterfaceExt {
            interface,
            extensions,
        })
    }

    fn item_len(&self) -> usize {
        2 + self.extensions.len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(u8::from(self.interface))?;
        w.len_prefixed(self.extensions)
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        // Always a record, so that structured output has one shape per list.
        v.item_record_begin()?;
        v.field("interface", Value::Name(&self.interface))?;
        if !self.extensions.is_empty() {
            v.field("extensions", Value::Hex(self.extensions))?;
        }
        v.record_end()
    }
}

/// The fields of CORE_INIT_RSP that only one NCI version has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreInitRspLayout<'a> {
    /// NCI 1.0 layout: interfaces after the features; large-parameter size and manufacturer
    /// fields at the end.
    Nci1 {
        /// Supported RF interfaces.
        interfaces: List<'a, RfInterface>,
        /// Maximum size for large parameters (octets).
        max_large_params: u16,
        /// IC manufacturer (ISO/IEC 7816-6).
        manufacturer_id: ManufacturerId,
        /// Manufacturer-specific information (for NXP: hardware version, ROM code version,
        /// firmware major and minor; see `wire::nxp`).
        manufacturer_info: [u8; 4],
    },
    /// NCI 2.0 layout: HCI data payload, credits and NFC-V frame size; interfaces with their
    /// extensions at the end (manufacturer fields moved to CORE_RESET_NTF).
    Nci2 {
        /// Maximum payload of data packets on the static HCI connection.
        max_data_packet_payload: u8,
        /// Initial credits of the static HCI connection.
        initial_credits: u8,
        /// Maximum NFC-V RF frame size.
        max_nfcv_frame_size: u16,
        /// Supported RF interfaces with their extensions.
        interfaces: List<'a, RfInterfaceExt<'a>>,
    },
}

/// CORE_INIT_RSP (NCI 1.0 and NCI 2.0; the layouts differ, see [`CoreInitRspLayout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreInitRsp<'a> {
    /// Outcome.
    pub status: Status,
    /// NFCC Features.
    pub features: NfccFeatures,
    /// Maximum number of dynamic logical connections.
    pub max_logical_connections: u8,
    /// Maximum size of the listen mode routing table, octets (PN7150: 720).
    pub max_routing_table_size: u16,
    /// Maximum payload of a control packet (PN7150: 255).
    pub max_control_packet_payload: u8,
    /// Version-specific fields, including the RF interface list.
    pub layout: CoreInitRspLayout<'a>,
}

impl<'a> CoreInitRsp<'a> {
    /// Parse the payload in the layout of `version`.
    pub fn parse(payload: &'a [u8], version: NciVersion) -> Result<CoreInitRsp<'a>> {
        let mut r = Reader::new(payload);
        let status = Status::from(r.u8()?);
        let features = NfccFeatures(r.array()?);
        let rsp = if version.is_v2() {
            let max_logical_connections = r.u8()?;
            let max_routing_table_size = r.u16_le()?;
            let max_control_packet_payload = r.u8()?;
            let max_data_packet_payload = r.u8()?;
            let initial_credits = r.u8()?;
            let max_nfcv_frame_size = r.u16_le()?;
            let interfaces = List::read_counted(&mut r)?;
            CoreInitRsp {
                status,
                features,
                max_logical_connections,
                max_routing_table_size,
                max_control_packet_payload,
                layout: CoreInitRspLayout::Nci2 {
                    max_data_packet_payload,
                    initial_credits,
                    max_nfcv_frame_size,
                    interfaces,
                },
            }
        } else {
            let interfaces = List::read_counted(&mut r)?;
            let max_logical_connections = r.u8()?;
            let max_routing_table_size = r.u16_le()?;
            let max_control_packet_payload = r.u8()?;
            let max_large_params = r.u16_le()?;
            let manufacturer_id = ManufacturerId(r.u8()?);
            let manufacturer_info = r.array()?;
            CoreInitRsp {
                status,
                features,
                max_logical_connections,
                max_routing_table_size,
                max_control_packet_payload,
                layout: CoreInitRspLayout::Nci1 {
                    interfaces,
                    max_large_params,
                    manufacturer_id,
                    manufacturer_info,
                },
            }
        };
        r.finish()?;
        Ok(rsp)
    }

    /// The supported RF interfaces, whichever the layout.
    pub fn interfaces(&self) -> impl Iterator<Item = RfInterface> + 'a {
        let (v1, v2) = match self.layout {
            CoreInitRspLayout::Nci1 { interfaces, .. } => (Some(interfaces.iter()), None),
            CoreInitRspLayout::Nci2 { interfaces, .. } => (None, Some(interfaces.iter())),
        };
        v1.into_iter()
            .flatten()
            .chain(v2.into_iter().flatten().map(|ext| ext.interface))
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("status", Value::Name(&self.status))?;
        v.field("features", Value::Hex(&self.features.0))?;
        match &self.layout {
            CoreInitRspLayout::Nci1 {
                interfaces,
                max_large_params,
                manufacturer_id,
                manufacturer_info,
            } => {
                interfaces.visit("interfaces", v)?;
                self.visit_common(v)?;
                v.field("max_large_params", Value::Num(u64::from(*max_large_params)))?;
                visit_manufacturer(*manufacturer_id, manufacturer_info, v)
            }
            CoreInitRspLayout::Nci2 {
                max_data_packet_payload,
                initial_credits,
                max_nfcv_frame_size,
                interfaces,
            } => {
                self.visit_common(v)?;
                v.field(
                    "max_data_payload",
                    Value::Num(u64::from(*max_data_packet_payload)),
                )?;
                v.field("credits", Value::Num(u64::from(*initial_credits)))?;
                v.field(
                    "max_nfcv_frame",
                    Value::Num(u64::from(*max_nfcv_frame_size)),
                )?;
                interfaces.visit("interfaces", v)
            }
        }
    }

    fn visit_common(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field(
            "max_conns",
            Value::Num(u64::from(self.max_logical_connections)),
        )?;
        v.field(
            "routing_table",
            Value::Num(u64::from(self.max_routing_table_size)),
        )?;
        v.field(
            "max_ctrl_payload",
            Value::Num(u64::from(self.max_control_packet_payload)),
        )
    }
}

impl Emit for CoreInitRsp<'_> {
    fn buffer_len(&self) -> usize {
        // status, features, max conns, routing table size, max control payload
        let common = 1 + 4 + 1 + 2 + 1;
        common
            + match &self.layout {
                CoreInitRspLayout::Nci1 { interfaces, .. } => 1 + interfaces.buffer_len() + 7,
                CoreInitRspLayout::Nci2 { interfaces, .. } => 4 + 1 + interfaces.buffer_len(),
            }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(u8::from(self.status))?;
        w.bytes(&self.features.0)?;
        match &self.layout {
            CoreInitRspLayout::Nci1 {
                interfaces,
                max_large_params,
                manufacturer_id,
                manufacturer_info,
            } => {
                interfaces.write_counted(w)?;
                w.u8(self.max_logical_connections)?;
                w.u16_le(self.max_routing_table_size)?;
                w.u8(self.max_control_packet_payload)?;
                w.u16_le(*max_large_params)?;
                w.u8(manufacturer_id.0)?;
                w.bytes(manufacturer_info)
            }
            CoreInitRspLayout::Nci2 {
                max_data_packet_payload,
                initial_credits,
                max_nfcv_frame_size,
                interfaces,
            } => {
                w.u8(self.max_logical_connections)?;
                w.u16_le(self.max_routing_table_size)?;
                w.u8(self.max_control_packet_payload)?;
                w.u8(*max_data_packet_payload)?;
                w.u8(*initial_credits)?;
                w.u16_le(*max_nfcv_frame_size)?;
                interfaces.write_counted(w)
            }
        }
    }
}

list_payload! {
    /// CORE_SET_CONFIG_CMD (NCI 1.0 and NCI 2.0): parameters to set.
    pub struct CoreSetConfigCmd<'a> {
        /// The parameters, in order.
        pub params: List<'a, ConfigParam<'a>> => "params",
    }
}

list_payload! {
    /// CORE_SET_CONFIG_RSP (NCI 1.0 and NCI 2.0): status and the parameters that were invalid.
    pub struct CoreSetConfigRsp<'a> {
        /// Outcome.
        pub status: Status => "status",
        /// Identifiers of the rejected parameters.
        pub invalid_params: List<'a, ParamId> => "invalid",
    }
}

list_payload! {
    /// CORE_GET_CONFIG_CMD (NCI 1.0 and NCI 2.0): parameters to read.
    pub struct CoreGetConfigCmd<'a> {
        /// Identifiers to read.
        pub params: List<'a, ParamId> => "params",
    }
}

list_payload! {
    /// CORE_GET_CONFIG_RSP (NCI 1.0 and NCI 2.0): status and parameter TLVs.
    pub struct CoreGetConfigRsp<'a> {
        /// Outcome.
        pub status: Status => "status",
        /// The parameters (on failure: the invalid ones, with empty values).
        pub params: List<'a, ConfigParam<'a>> => "params",
    }
}

open_enum! {
    /// Destination types of CORE_CONN_CREATE_CMD (NCI 1.0 and NCI 2.0).
    pub enum DestinationType(u8) {
        /// Loop-back inside the NFCC (testing).
        NfccLoopback = 0x01 => "NFCC_LOOPBACK",
        /// A remote NFC endpoint.
        RemoteNfcEndpoint = 0x02 => "REMOTE_NFC_ENDPOINT",
        /// An NFC execution environment (secure element).
        Nfcee = 0x03 => "NFCEE",
    }
}

list_payload! {
    /// CORE_CONN_CREATE_CMD (NCI 1.0 and NCI 2.0).
    pub struct CoreConnCreateCmd<'a> {
        /// What the connection leads to.
        pub destination_type: DestinationType => "destination",
        /// Destination-specific parameters (TLVs).
        pub params: List<'a, Tlv<'a>> => "params",
    }
}

octet_fields! {
    /// CORE_CONN_CREATE_RSP (NCI 1.0 and NCI 2.0).
    pub struct CoreConnCreateRsp {
        /// Outcome.
        pub status: Status => "status" name,
        /// Maximum payload of data packets on the new connection.
        pub max_data_packet_payload: u8 => "max_data_payload" num,
        /// Credits the DH starts with.
        pub initial_credits: u8 => "credits" num,
        /// Identifier of the new connection.
        pub conn_id: u8 => "conn_id" num,
    }
}

octet_fields! {
    /// CORE_CONN_CLOSE_CMD (NCI 1.0 and NCI 2.0).
    pub struct CoreConnCloseCmd {
        /// The connection to close.
        pub conn_id: u8 => "conn_id" num,
    }
}

/// One entry of CORE_CONN_CREDITS_NTF: credits granted on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnCredit {
    /// The connection.
    pub conn_id: u8,
    /// Credits added.
    pub credits: u8,
}

impl<'a> ListItem<'a> for ConnCredit {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(ConnCredit {
            conn_id: r.u8()?,
            credits: r.u8()?,
        })
    }

    fn item_len(&self) -> usize {
        2
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[self.conn_id, self.credits])
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item_record_begin()?;
        v.field("conn_id", Value::Num(u64::from(self.conn_id)))?;
        v.field("credits", Value::Num(u64::from(self.credits)))?;
        v.record_end()
    }
}

list_payload! {
    /// CORE_CONN_CREDITS_NTF (NCI 1.0 and NCI 2.0): the NFCC returns data credits.
    pub struct CoreConnCreditsNtf<'a> {
        /// One entry per connection.
        pub entries: List<'a, ConnCredit> => "entries",
    }
}

octet_fields! {
    /// CORE_GENERIC_ERROR_NTF (NCI 1.0 and NCI 2.0).
    pub struct CoreGenericErrorNtf {
        /// What went wrong (e.g. DISCOVERY_TARGET_ACTIVATION_FAILED).
        pub status: Status => "status" name,
    }
}

octet_fields! {
    /// CORE_INTERFACE_ERROR_NTF (NCI 1.0 and NCI 2.0): an error on a logical connection.
    pub struct CoreInterfaceErrorNtf {
        /// What went wrong (e.g. RF_TIMEOUT_ERROR).
        pub status: Status => "status" name,
        /// The connection.
        pub conn_id: u8 => "conn_id" num,
    }
}

octet_fields! {
    /// CORE_SET_POWER_SUB_STATE_CMD (NCI 2.0 only).
    pub struct CoreSetPowerSubStateCmd {
        /// 0x00 switched on, 0x01–0x03 switched-on sub-states 1–3 (e.g. screen off, locked).
        pub power_state: u8 => "power_state" num,
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Message;
    use super::super::Error;
    use super::*;

    fn emit_payload(m: &dyn Emit) -> heapless::Vec<u8, 300> {
        let mut out = [0u8; 300];
        let n = m.emit(&mut out).unwrap();
        assert_eq!(n, m.buffer_len());
        heapless::Vec::from_slice(&out[..n]).unwrap()
    }

    fn packet(msg: &Message<'_>) -> heapless::Vec<u8, 300> {
        let mut out = [0u8; 300];
        let n = msg.emit_packet(&mut out).unwrap();
        heapless::Vec::from_slice(&out[..n]).unwrap()
    }

    // > CORE_RESET_CMD, reset configuration (PN7150 start-up)
    const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
    // < CORE_RESET_RSP, NCI 1.0: STATUS_OK, version 1.0, configuration reset
    const CORE_RESET_RSP_V1: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x10, 0x01];
    // < CORE_RESET_RSP, NCI 2.0: STATUS_OK
    const CORE_RESET_RSP_V2: [u8; 4] = [0x40, 0x00, 0x01, 0x00];
    // < CORE_RESET_NTF, NCI 2.0: CORE_RESET_CMD received, configuration reset, NCI 2.0, NXP,
    //   4 octets of manufacturer information
    const CORE_RESET_NTF_V2: [u8; 12] = [
        0x60, 0x00, 0x09, 0x02, 0x01, 0x20, 0x04, 0x04, 0x51, 0x12, 0x01, 0x90,
    ];
    // > CORE_INIT_CMD, NCI 1.0
    const CORE_INIT_CMD_V1: [u8; 3] = [0x20, 0x01, 0x00];
    // > CORE_INIT_CMD, NCI 2.0, no optional feature
    const CORE_INIT_CMD_V2: [u8; 5] = [0x20, 0x01, 0x02, 0x00, 0x00];
    // < CORE_INIT_RSP from a PN7150 (NCI 1.0)
    const PN7150_CORE_INIT_RSP: [u8; 28] = [
        0x40, 0x01, 0x19, // header
        0x00, // STATUS_OK
        0x03, 0x1E, 0x03, 0x00, // NFCC features
        0x08, // 8 RF interfaces
        0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82, 0x83, // ...
        0x02, // max logical connections
        0xD0, 0x02, // max routing table size 720
        0xFF, // max control packet payload 255
        0x02, 0x00, // max size for large parameters
        0x04, // manufacturer NXP
        0x88, 0x10, 0x01, 0xA0, // HW version, ROM code, FW major, FW minor
    ];
    // < CORE_INIT_RSP, NCI 2.0: features, 1 dynamic connection, routing table 512, control
    //   payload 255, HCI data payload 255, 1 credit, NFC-V frame 512, interfaces FRAME,
    //   ISO-DEP (with extension 0x00) and NFC-DEP
    const CORE_INIT_RSP_V2: [u8; 24] = [
        0x40, 0x01, 0x15, // header
        0x00, // STATUS_OK
        0x01, 0x0E, 0x02, 0x00, // features
        0x01, // max logical connections
        0x00, 0x02, // routing table 512
        0xFF, // max control payload
        0xFF, // max data payload (HCI)
        0x01, // credits
        0x00, 0x02, // NFC-V frame 512
        0x03, // 3 interfaces
        0x01, 0x00, // FRAME, no extension
        0x02, 0x01, 0x00, // ISO-DEP, 1 extension: 0x00
        0x03, 0x00, // NFC-DEP, no extension
    ];
    // > CORE_SET_CONFIG_CMD: TOTAL_DURATION 500 ms, LA_SEL_INFO ISO-DEP, LI_A_HIST_BY
    //   "nfcd", NXP A003 (clock source) = 0x08
    const CORE_SET_CONFIG_CMD: [u8; 21] = [
        0x20, 0x02, 0x12, // header
        0x04, // 4 parameters
        0x00, 0x02, 0xF4, 0x01, // TOTAL_DURATION
        0x32, 0x01, 0x20, // LA_SEL_INFO
        0x59, 0x04, b'n', b'f', b'c', b'd', // LI_A_HIST_BY
        0xA0, 0x03, 0x01, 0x08, // NXP 0xA003
    ];
    // < CORE_SET_CONFIG_RSP: STATUS_INVALID_PARAM, LA_SEL_INFO and NXP 0xA003 rejected
    const CORE_SET_CONFIG_RSP: [u8; 8] = [0x40, 0x02, 0x05, 0x09, 0x02, 0x32, 0xA0, 0x03];
    // > CORE_GET_CONFIG_CMD: TOTAL_DURATION and NXP 0xA007
    const CORE_GET_CONFIG_CMD: [u8; 7] = [0x20, 0x03, 0x04, 0x02, 0x00, 0xA0, 0x07];
    // < CORE_GET_CONFIG_RSP: STATUS_OK, TOTAL_DURATION = 1000 ms, NXP 0xA007 = 0x01
    const CORE_GET_CONFIG_RSP: [u8; 13] = [
        0x40, 0x03, 0x0A, 0x00, 0x02, 0x00, 0x02, 0xE8, 0x03, 0xA0, 0x07, 0x01, 0x01,
    ];
    // < CORE_CONN_CREDITS_NTF: one entry, connection 0 gets 1 credit
    const CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];
    // < CORE_GENERIC_ERROR_NTF: DISCOVERY_TARGET_ACTIVATION_FAILED
    const CORE_GENERIC_ERROR_NTF: [u8; 4] = [0x60, 0x07, 0x01, 0xA1];
    // < CORE_INTERFACE_ERROR_NTF: RF_TIMEOUT_ERROR on connection 0
    const CORE_INTERFACE_ERROR_NTF: [u8; 5] = [0x60, 0x08, 0x02, 0xB2, 0x00];
    // > CORE_CONN_CREATE_CMD to NFCEE: one parameter (type 0x01: NFCEE ID 0x02, protocol 0x01)
    const CORE_CONN_CREATE_CMD: [u8; 9] = [0x20, 0x04, 0x06, 0x03, 0x01, 0x01, 0x02, 0x02, 0x01];
    // < CORE_CONN_CREATE_RSP: STATUS_OK, max payload 255, 1 credit, connection 1
    const CORE_CONN_CREATE_RSP: [u8; 7] = [0x40, 0x04, 0x04, 0x00, 0xFF, 0x01, 0x01];

    fn roundtrip(bytes: &[u8], version: NciVersion) -> Message<'_> {
        let msg = Message::parse_packet(bytes, version).unwrap();
        assert_eq!(packet(&msg).as_slice(), bytes, "{msg}");
        msg
    }

    #[test]
    fn core_reset() {
        let msg = roundtrip(&CORE_RESET_CMD, NciVersion::V1_0);
        assert_eq!(
            msg,
            Message::CoreResetCmd(CoreResetCmd {
                reset_type: ResetType::ResetConfig
            })
        );
        assert_eq!(
            msg.to_string(),
            "CORE_RESET_CMD reset_type=RESET_CONFIGURATION"
        );

        // The layout of CORE_RESET_RSP does not depend on the version argument.
        for version in [NciVersion::V1_0, NciVersion::V2_0] {
            let msg = roundtrip(&CORE_RESET_RSP_V1, version);
            let Message::CoreResetRsp(rsp) = msg else {
                panic!("{msg:?}")
            };
            assert_eq!(rsp.status(), Status::Ok);
            assert_eq!(rsp.nci_version(), Some(NciVersion::V1_0));
            assert_eq!(
                msg.to_string(),
                "CORE_RESET_RSP status=STATUS_OK nci_version=1.0 \
                 config_status=NCI_RF_CONFIGURATION_RESET"
            );
            let msg = roundtrip(&CORE_RESET_RSP_V2, version);
            assert_eq!(
                msg,
                Message::CoreResetRsp(CoreResetRsp::Nci2 { status: Status::Ok })
            );
        }
        assert_eq!(CoreResetRsp::parse(&[0x00, 0x10]), Err(Error::Truncated));
        assert_eq!(
            CoreResetRsp::parse(&[0x00, 0x10, 0x01, 0x00]),
            Err(Error::TrailingBytes)
        );
        assert_eq!(CoreResetRsp::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn core_reset_ntf() {
        let msg = roundtrip(&CORE_RESET_NTF_V2, NciVersion::V1_0);
        let Message::CoreResetNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(ntf.nci_version(), Some(NciVersion::V2_0));
        assert_eq!(
            ntf,
            CoreResetNtf::Nci2 {
                trigger: ResetTrigger::ResetCommand,
                config_status: ConfigStatus::Reset,
                nci_version: NciVersion::V2_0,
                manufacturer_id: ManufacturerId::NXP,
                manufacturer_info: &[0x51, 0x12, 0x01, 0x90],
            }
        );
        assert_eq!(
            msg.to_string(),
            "CORE_RESET_NTF trigger=CORE_RESET_CMD_RECEIVED config_status=NCI_RF_CONFIGURATION_RESET \
             nci_version=2.0 manufacturer=NXP manufacturer_info=51 12 01 90 \
             nxp={hw=51 fw=12.01.90}"
        );
        // NCI 1.0: reason unspecified, configuration kept.
        let msg = roundtrip(&[0x60, 0x00, 0x02, 0x00, 0x00], NciVersion::V1_0);
        assert_eq!(
            msg,
            Message::CoreResetNtf(CoreResetNtf::Nci1 {
                reason: 0,
                config_status: ConfigStatus::Kept
            })
        );
        // Manufacturer information length past the end.
        assert_eq!(
            CoreResetNtf::parse(&[0x02, 0x01, 0x20, 0x04, 0x05, 0x51]),
            Err(Error::BadLength)
        );
        assert_eq!(
            CoreResetNtf::parse(&[0x02, 0x01, 0x20]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn core_init_cmd() {
        let msg = roundtrip(&CORE_INIT_CMD_V1, NciVersion::V1_0);
        assert_eq!(msg, Message::CoreInitCmd(CoreInitCmd::Nci1));
        let msg = roundtrip(&CORE_INIT_CMD_V2, NciVersion::V2_0);
        assert_eq!(
            msg,
            Message::CoreInitCmd(CoreInitCmd::Nci2 {
                feature_enable: [0, 0]
            })
        );
        assert_eq!(
            Message::parse_packet(&CORE_INIT_CMD_V1, NciVersion::V2_0),
            Err(Error::Truncated)
        );
        assert_eq!(
            Message::parse_packet(&CORE_INIT_CMD_V2, NciVersion::V1_0),
            Err(Error::TrailingBytes)
        );
    }

    #[test]
    fn pn7150_core_init_rsp() {
        let msg = roundtrip(&PN7150_CORE_INIT_RSP, NciVersion::V1_0);
        let Message::CoreInitRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(rsp.status, Status::Ok);
        assert_eq!(rsp.features, NfccFeatures([0x03, 0x1E, 0x03, 0x00]));
        assert!(rsp.features.discovery_frequency_configuration());
        assert_eq!(rsp.features.discovery_configuration_mode(), 1);
        assert!(rsp.features.technology_routing());
        assert!(rsp.features.protocol_routing());
        assert!(rsp.features.aid_routing());
        assert!(rsp.features.battery_off_state());
        assert!(rsp.features.switched_off_state());
        assert_eq!(rsp.max_logical_connections, 2);
        assert_eq!(rsp.max_routing_table_size, 720);
        assert_eq!(rsp.max_control_packet_payload, 255);
        let interfaces: heapless::Vec<RfInterface, 8> = rsp.interfaces().collect();
        assert_eq!(
            interfaces.as_slice(),
            &[
                RfInterface::NfceeDirect,
                RfInterface::Frame,
                RfInterface::IsoDep,
                RfInterface::NfcDep,
                RfInterface::NxpTagCmd,
                RfInterface::Unknown(0x81),
                RfInterface::Unknown(0x82),
                RfInterface::Unknown(0x83),
            ]
        );
        let CoreInitRspLayout::Nci1 {
            max_large_params,
            manufacturer_id,
            manufacturer_info,
            ..
        } = rsp.layout
        else {
            panic!("{rsp:?}")
        };
        assert_eq!(max_large_params, 2);
        assert_eq!(manufacturer_id, ManufacturerId::NXP);
        assert_eq!(manufacturer_info, [0x88, 0x10, 0x01, 0xA0]);
        assert_eq!(
            msg.to_string(),
            "CORE_INIT_RSP status=STATUS_OK features=03 1E 03 00 interfaces=[NFCEE_DIRECT_RF_INTERFACE \
             FRAME_RF_INTERFACE ISO_DEP_RF_INTERFACE NFC_DEP_RF_INTERFACE TAG_CMD_RF_INTERFACE \
             0x81 0x82 0x83] max_conns=2 routing_table=720 max_ctrl_payload=255 \
             max_large_params=2 manufacturer=NXP manufacturer_info=88 10 01 A0 \
             nxp={hw=88 fw=10.01.A0 chip=PN7150}"
        );
        // The same bytes are not a valid NCI 2.0 CORE_INIT_RSP.
        assert!(Message::parse_packet(&PN7150_CORE_INIT_RSP, NciVersion::V2_0).is_err());
        // Emitting from a hand-built value gives the controller's bytes.
        let ifaces = [0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82, 0x83].map(RfInterface::from);
        let built = CoreInitRsp {
            status: Status::Ok,
            features: NfccFeatures([0x03, 0x1E, 0x03, 0x00]),
            max_logical_connections: 2,
            max_routing_table_size: 720,
            max_control_packet_payload: 255,
            layout: CoreInitRspLayout::Nci1 {
                interfaces: List::from_items(&ifaces),
                max_large_params: 2,
                manufacturer_id: ManufacturerId::NXP,
                manufacturer_info: [0x88, 0x10, 0x01, 0xA0],
            },
        };
        assert_eq!(built, rsp);
        assert_eq!(emit_payload(&built).as_slice(), &PN7150_CORE_INIT_RSP[3..]);
    }

    #[test]
    fn nci2_core_init_rsp() {
        let msg = roundtrip(&CORE_INIT_RSP_V2, NciVersion::V2_0);
        let Message::CoreInitRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(rsp.max_routing_table_size, 512);
        let CoreInitRspLayout::Nci2 {
            max_data_packet_payload,
            initial_credits,
            max_nfcv_frame_size,
            interfaces,
        } = rsp.layout
        else {
            panic!("{rsp:?}")
        };
        assert_eq!(
            (
                max_data_packet_payload,
                initial_credits,
                max_nfcv_frame_size
            ),
            (255, 1, 512)
        );
        let items = [
            RfInterfaceExt {
                interface: RfInterface::Frame,
                extensions: &[],
            },
            RfInterfaceExt {
                interface: RfInterface::IsoDep,
                extensions: &[0x00],
            },
            RfInterfaceExt {
                interface: RfInterface::NfcDep,
                extensions: &[],
            },
        ];
        assert_eq!(interfaces, List::from_items(&items));
        assert_eq!(
            msg.to_string(),
            "CORE_INIT_RSP status=STATUS_OK features=01 0E 02 00 max_conns=1 routing_table=512 \
             max_ctrl_payload=255 max_data_payload=255 credits=1 max_nfcv_frame=512 \
             interfaces=[{interface=FRAME_RF_INTERFACE} {interface=ISO_DEP_RF_INTERFACE \
             extensions=00} {interface=NFC_DEP_RF_INTERFACE}]"
        );
        // An extension count running past the end of the payload.
        let mut bad = CORE_INIT_RSP_V2;
        bad[20] = 0x05;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V2_0),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn core_init_rsp_count_mismatch() {
        let mut bad = PN7150_CORE_INIT_RSP;
        bad[8] = 0x09; // 9 interfaces announced, 8 present: the rest shifts
        assert!(Message::parse_packet(&bad, NciVersion::V1_0).is_err());
        bad[8] = 0xFF;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::BadLength)
        );
        // Truncated after the interface list.
        assert_eq!(
            CoreInitRsp::parse(&PN7150_CORE_INIT_RSP[3..20], NciVersion::V1_0),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn core_set_config() {
        let packet_bytes = &CORE_SET_CONFIG_CMD[..];
        let msg = roundtrip(packet_bytes, NciVersion::V1_0);
        let Message::CoreSetConfigCmd(cmd) = msg else {
            panic!("{msg:?}")
        };
        let params = [
            ConfigParam::total_duration(500),
            ConfigParam::la_sel_info(crate::wire::config::LA_SEL_INFO_ISO_DEP),
            ConfigParam::li_a_hist_by(b"nfcd").unwrap(),
            ConfigParam::nxp(0xA003, &[0x08]).unwrap(),
        ];
        assert_eq!(cmd.params, List::from_items(&params));
        let built = Message::CoreSetConfigCmd(CoreSetConfigCmd {
            params: List::from_items(&params),
        });
        assert_eq!(packet(&built).as_slice(), packet_bytes);
        assert_eq!(
            msg.to_string(),
            "CORE_SET_CONFIG_CMD params=[{id=TOTAL_DURATION value=F4 01} \
             {id=LA_SEL_INFO value=20} {id=LI_A_HIST_BY value=6E 66 63 64} \
             {id=0xA003 value=08}]"
        );

        let msg = roundtrip(&CORE_SET_CONFIG_RSP, NciVersion::V1_0);
        let Message::CoreSetConfigRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(rsp.status, Status::InvalidParam);
        let ids = [ParamId::LA_SEL_INFO, ParamId::Nxp(0xA003)];
        assert_eq!(rsp.invalid_params, List::from_items(&ids));
        assert_eq!(
            msg.to_string(),
            "CORE_SET_CONFIG_RSP status=STATUS_INVALID_PARAM invalid=[LA_SEL_INFO 0xA003]"
        );
    }

    #[test]
    fn core_get_config() {
        let msg = roundtrip(&CORE_GET_CONFIG_CMD, NciVersion::V1_0);
        assert_eq!(
            msg.to_string(),
            "CORE_GET_CONFIG_CMD params=[TOTAL_DURATION 0xA007]"
        );
        let msg = roundtrip(&CORE_GET_CONFIG_RSP, NciVersion::V1_0);
        let Message::CoreGetConfigRsp(rsp) = msg else {
            panic!("{msg:?}")
        };
        let mut params = rsp.params.iter();
        assert_eq!(
            params.next().and_then(|p| p.as_total_duration()),
            Some(1000)
        );
        assert_eq!(
            params.next(),
            Some(ConfigParam::nxp(0xA007, &[0x01]).unwrap())
        );
        assert_eq!(params.next(), None);
        // Payload longer than the TLVs.
        let mut long = [0u8; 14];
        long[..13].copy_from_slice(&CORE_GET_CONFIG_RSP);
        long[2] = 0x0B;
        assert_eq!(
            Message::parse_packet(&long, NciVersion::V1_0),
            Err(Error::TrailingBytes)
        );
    }

    #[test]
    fn core_connections_and_errors() {
        let msg = roundtrip(&CORE_CONN_CREDITS_NTF, NciVersion::V1_0);
        let Message::CoreConnCreditsNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        let entries = [ConnCredit {
            conn_id: 0,
            credits: 1,
        }];
        assert_eq!(ntf.entries, List::from_items(&entries));
        assert_eq!(
            msg.to_string(),
            "CORE_CONN_CREDITS_NTF entries=[{conn_id=0 credits=1}]"
        );
        assert_eq!(
            CoreConnCreditsNtf::parse(&[0x02, 0x00, 0x01]),
            Err(Error::BadLength)
        );

        let msg = roundtrip(&CORE_GENERIC_ERROR_NTF, NciVersion::V1_0);
        assert_eq!(
            msg.to_string(),
            "CORE_GENERIC_ERROR_NTF status=DISCOVERY_TARGET_ACTIVATION_FAILED"
        );
        let msg = roundtrip(&CORE_INTERFACE_ERROR_NTF, NciVersion::V1_0);
        assert_eq!(
            msg,
            Message::CoreInterfaceErrorNtf(CoreInterfaceErrorNtf {
                status: Status::RfTimeoutError,
                conn_id: 0
            })
        );
        let msg = roundtrip(&CORE_CONN_CREATE_CMD, NciVersion::V1_0);
        assert_eq!(
            msg.to_string(),
            "CORE_CONN_CREATE_CMD destination=NFCEE params=[{type=01 value=02 01}]"
        );
        let msg = roundtrip(&CORE_CONN_CREATE_RSP, NciVersion::V1_0);
        assert_eq!(
            msg,
            Message::CoreConnCreateRsp(CoreConnCreateRsp {
                status: Status::Ok,
                max_data_packet_payload: 255,
                initial_credits: 1,
                conn_id: 1
            })
        );
        roundtrip(&[0x20, 0x05, 0x01, 0x01], NciVersion::V1_0); // CORE_CONN_CLOSE_CMD
        roundtrip(&[0x40, 0x05, 0x01, 0x00], NciVersion::V1_0); // CORE_CONN_CLOSE_RSP
        roundtrip(&[0x20, 0x09, 0x01, 0x02], NciVersion::V2_0); // CORE_SET_POWER_SUB_STATE_CMD
    }

    #[test]
    fn unknown_core_opcodes_are_errors() {
        assert_eq!(
            Message::parse_packet(&[0x20, 0x3F, 0x00], NciVersion::V1_0),
            Err(Error::UnknownMessage)
        );
        // A response to CORE_CONN_CREDITS does not exist.
        assert_eq!(
            Message::parse_packet(&[0x40, 0x06, 0x00], NciVersion::V1_0),
            Err(Error::UnknownMessage)
        );
    }
}
