//! NCI code spaces (NCI 1.0 / 2.0 Table 94 onwards: status codes, RF technologies and modes,
//! bit rates, protocols, interfaces, deactivation types and reasons, reset parameters).
//!
//! Every code space is open: values that are reserved or proprietary parse as `Unknown(raw)`
//! and emit back unchanged.

open_enum! {
    /// Status codes (NCI 1.0 Table 94, NCI 2.0 Table 140).
    pub enum Status(u8) {
        /// Command succeeded.
        Ok = 0x00 => "STATUS_OK",
        /// Command rejected (e.g. not allowed in the current state).
        Rejected = 0x01 => "STATUS_REJECTED",
        /// RF frame corrupted (NCI 1.0; reserved in 2.0).
        RfFrameCorrupted = 0x02 => "STATUS_RF_FRAME_CORRUPTED",
        /// Generic failure.
        Failed = 0x03 => "STATUS_FAILED",
        /// The NFCC is not initialised.
        NotInitialized = 0x04 => "STATUS_NOT_INITIALIZED",
        /// Syntax error in a command.
        SyntaxError = 0x05 => "STATUS_SYNTAX_ERROR",
        /// Semantic error in a command.
        SemanticError = 0x06 => "STATUS_SEMANTIC_ERROR",
        /// Invalid parameter.
        InvalidParam = 0x09 => "STATUS_INVALID_PARAM",
        /// A message exceeds what the NFCC accepts (e.g. a routing table over its capacity).
        MessageSizeExceeded = 0x0A => "STATUS_MESSAGE_SIZE_EXCEEDED",
        /// NCI 2.0: data received with a last octet of 1 bit length.
        Ok1Bit = 0x0B => "STATUS_OK_1_BIT",
        /// Discovery already started.
        DiscoveryAlreadyStarted = 0xA0 => "DISCOVERY_ALREADY_STARTED",
        /// Target activation failed.
        DiscoveryTargetActivationFailed = 0xA1 => "DISCOVERY_TARGET_ACTIVATION_FAILED",
        /// Discovery tear-down.
        DiscoveryTearDown = 0xA2 => "DISCOVERY_TEAR_DOWN",
        /// RF transmission error.
        RfTransmissionError = 0xB0 => "RF_TRANSMISSION_ERROR",
        /// RF protocol error.
        RfProtocolError = 0xB1 => "RF_PROTOCOL_ERROR",
        /// RF timeout.
        RfTimeoutError = 0xB2 => "RF_TIMEOUT_ERROR",
        /// NCI 2.0: RF unexpected data.
        RfUnexpectedData = 0xB3 => "RF_UNEXPECTED_DATA",
        /// NFCEE interface activation failed.
        NfceeInterfaceActivationFailed = 0xC0 => "NFCEE_INTERFACE_ACTIVATION_FAILED",
        /// NFCEE transmission error.
        NfceeTransmissionError = 0xC1 => "NFCEE_TRANSMISSION_ERROR",
        /// NFCEE protocol error.
        NfceeProtocolError = 0xC2 => "NFCEE_PROTOCOL_ERROR",
        /// NFCEE timeout.
        NfceeTimeoutError = 0xC3 => "NFCEE_TIMEOUT_ERROR",
    }
}

impl Status {
    /// `true` for `STATUS_OK` (and `STATUS_OK_1_BIT`, which also reports success).
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Ok | Status::Ok1Bit)
    }
}

open_enum! {
    /// RF technology and mode (NCI 1.0 Table 96, NCI 2.0 Table 142).
    pub enum RfTechMode(u8) {
        /// NFC-A passive poll.
        NfcAPassivePoll = 0x00 => "NFC_A_PASSIVE_POLL_MODE",
        /// NFC-B passive poll.
        NfcBPassivePoll = 0x01 => "NFC_B_PASSIVE_POLL_MODE",
        /// NFC-F passive poll.
        NfcFPassivePoll = 0x02 => "NFC_F_PASSIVE_POLL_MODE",
        /// NFC-A active poll (NCI 1.0); NFC active poll (NCI 2.0).
        NfcActivePoll = 0x03 => "NFC_A_ACTIVE_POLL_MODE",
        /// NFC-F active poll (NCI 1.0 only).
        NfcFActivePoll = 0x05 => "NFC_F_ACTIVE_POLL_MODE",
        /// NFC-V (ISO/IEC 15693) passive poll.
        NfcVPassivePoll = 0x06 => "NFC_15693_PASSIVE_POLL_MODE",
        /// NFC-A passive listen: the NFCC emulates a Type A card.
        NfcAPassiveListen = 0x80 => "NFC_A_PASSIVE_LISTEN_MODE",
        /// NFC-B passive listen: the NFCC emulates a Type B card.
        NfcBPassiveListen = 0x81 => "NFC_B_PASSIVE_LISTEN_MODE",
        /// NFC-F passive listen.
        NfcFPassiveListen = 0x82 => "NFC_F_PASSIVE_LISTEN_MODE",
        /// NFC-A active listen (NCI 1.0); NFC active listen (NCI 2.0).
        NfcActiveListen = 0x83 => "NFC_A_ACTIVE_LISTEN_MODE",
        /// NFC-F active listen (NCI 1.0 only).
        NfcFActiveListen = 0x85 => "NFC_F_ACTIVE_LISTEN_MODE",
        /// NFC-V passive listen.
        NfcVPassiveListen = 0x86 => "NFC_15693_PASSIVE_LISTEN_MODE",
    }
}

impl RfTechMode {
    /// Listen modes have bit 7 set (NCI 1.0 Table 96).
    pub fn is_listen(self) -> bool {
        u8::from(self) & 0x80 != 0
    }

    /// The RF technology this mode runs on, when it is one of A, B, F or V.
    pub fn technology(self) -> Option<RfTechnology> {
        match u8::from(self) & 0x7F {
            0x00 => Some(RfTechnology::NfcA),
            0x01 => Some(RfTechnology::NfcB),
            0x02 | 0x05 => Some(RfTechnology::NfcF),
            0x06 => Some(RfTechnology::NfcV),
            _ => None,
        }
    }
}

open_enum! {
    /// RF technologies (NCI 1.0 Table 95, NCI 2.0 Table 141), as used in routing entries.
    pub enum RfTechnology(u8) {
        /// NFC-A (ISO/IEC 14443 Type A).
        NfcA = 0x00 => "NFC_RF_TECHNOLOGY_A",
        /// NFC-B (ISO/IEC 14443 Type B).
        NfcB = 0x01 => "NFC_RF_TECHNOLOGY_B",
        /// NFC-F (FeliCa).
        NfcF = 0x02 => "NFC_RF_TECHNOLOGY_F",
        /// NFC-V (ISO/IEC 15693).
        NfcV = 0x03 => "NFC_RF_TECHNOLOGY_V",
    }
}

open_enum! {
    /// Bit rates (NCI 1.0 Table 97, NCI 2.0 Table 143).
    pub enum BitRate(u8) {
        /// 106 kbit/s.
        Kbps106 = 0x00 => "NFC_BIT_RATE_106",
        /// 212 kbit/s.
        Kbps212 = 0x01 => "NFC_BIT_RATE_212",
        /// 424 kbit/s.
        Kbps424 = 0x02 => "NFC_BIT_RATE_424",
        /// 848 kbit/s.
        Kbps848 = 0x03 => "NFC_BIT_RATE_848",
        /// 1695 kbit/s.
        Kbps1695 = 0x04 => "NFC_BIT_RATE_1695",
        /// 3390 kbit/s.
        Kbps3390 = 0x05 => "NFC_BIT_RATE_3390",
        /// 6780 kbit/s.
        Kbps6780 = 0x06 => "NFC_BIT_RATE_6780",
        /// NCI 2.0: 26 kbit/s (NFC-V).
        Kbps26 = 0x20 => "NFC_BIT_RATE_26",
    }
}

open_enum! {
    /// RF protocols (NCI 1.0 Table 98, NCI 2.0 Table 144).
    pub enum RfProtocol(u8) {
        /// Not determined yet.
        Undetermined = 0x00 => "PROTOCOL_UNDETERMINED",
        /// Type 1 Tag.
        T1t = 0x01 => "PROTOCOL_T1T",
        /// Type 2 Tag.
        T2t = 0x02 => "PROTOCOL_T2T",
        /// Type 3 Tag.
        T3t = 0x03 => "PROTOCOL_T3T",
        /// ISO-DEP (ISO/IEC 14443-4): what payment and transit cards speak.
        IsoDep = 0x04 => "PROTOCOL_ISO_DEP",
        /// NFC-DEP (peer to peer).
        NfcDep = 0x05 => "PROTOCOL_NFC_DEP",
        /// NCI 2.0: Type 5 Tag.
        T5t = 0x06 => "PROTOCOL_T5T",
        /// NXP proprietary: MIFARE Classic.
        NxpMifare = 0x80 => "PROTOCOL_MIFARE",
    }
}

open_enum! {
    /// RF interfaces (NCI 1.0 Table 99, NCI 2.0 Table 145).
    pub enum RfInterface(u8) {
        /// NFCEE direct.
        NfceeDirect = 0x00 => "NFCEE_DIRECT_RF_INTERFACE",
        /// Frame RF interface.
        Frame = 0x01 => "FRAME_RF_INTERFACE",
        /// ISO-DEP RF interface: the NFCC runs ISO/IEC 14443-4; data packets carry whole APDUs.
        IsoDep = 0x02 => "ISO_DEP_RF_INTERFACE",
        /// NFC-DEP RF interface.
        NfcDep = 0x03 => "NFC_DEP_RF_INTERFACE",
        /// NXP proprietary: MIFARE (tag command) interface.
        NxpTagCmd = 0x80 => "TAG_CMD_RF_INTERFACE",
    }
}

open_enum! {
    /// RF_DEACTIVATE types (NCI 1.0 Table 63).
    pub enum DeactivationType(u8) {
        /// Back to RFST_IDLE: discovery stops.
        Idle = 0x00 => "IDLE_MODE",
        /// Sleep mode (poll side).
        Sleep = 0x01 => "SLEEP_MODE",
        /// Sleep AF mode.
        SleepAf = 0x02 => "SLEEP_AF_MODE",
        /// Back to RFST_DISCOVERY: discovery continues.
        Discovery = 0x03 => "DISCOVERY",
    }
}

open_enum! {
    /// RF_DEACTIVATE_NTF reasons (NCI 1.0 Table 64, NCI 2.0 Table 108).
    pub enum DeactivationReason(u8) {
        /// The DH asked for it.
        DhRequest = 0x00 => "DH_REQUEST",
        /// The remote endpoint asked for it (e.g. the reader sent DESELECT).
        EndpointRequest = 0x01 => "ENDPOINT_REQUEST",
        /// The RF link was lost (card left the field).
        RfLinkLoss = 0x02 => "RF_LINK_LOSS",
        /// NFC-B bad AFI.
        NfcBBadAfi = 0x03 => "NFC_B_BAD_AFI",
        /// NCI 2.0: a DH request failed due to an error.
        DhRequestFailed = 0x04 => "DH_REQUEST_FAILED",
    }
}

open_enum! {
    /// CORE_RESET_CMD reset types (NCI 1.0 Table 6).
    pub enum ResetType(u8) {
        /// Keep the configuration.
        KeepConfig = 0x00 => "KEEP_CONFIGURATION",
        /// Reset the configuration to defaults.
        ResetConfig = 0x01 => "RESET_CONFIGURATION",
    }
}

open_enum! {
    /// Configuration status in NCI 1.0 CORE_RESET_RSP and NCI 2.0 CORE_RESET_NTF (Table 7 / 9).
    pub enum ConfigStatus(u8) {
        /// NCI RF configuration has been kept.
        Kept = 0x00 => "NCI_RF_CONFIGURATION_KEPT",
        /// NCI RF configuration has been reset.
        Reset = 0x01 => "NCI_RF_CONFIGURATION_RESET",
    }
}

open_enum! {
    /// NCI 2.0 CORE_RESET_NTF reset trigger (Table 8).
    pub enum ResetTrigger(u8) {
        /// Unrecoverable error in the NFCC.
        UnrecoverableError = 0x00 => "UNRECOVERABLE_ERROR",
        /// The NFCC was powered on.
        PoweredOn = 0x01 => "POWERED_ON",
        /// CORE_RESET_CMD was received.
        ResetCommand = 0x02 => "CORE_RESET_CMD_RECEIVED",
    }
}

/// An NCI version octet: major version in the high nibble, minor in the low (NCI 1.0 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NciVersion(pub u8);

impl NciVersion {
    /// NCI 1.0 (`0x10`), spoken by the PN7150.
    pub const V1_0: NciVersion = NciVersion(0x10);
    /// NCI 1.1 (`0x11`).
    pub const V1_1: NciVersion = NciVersion(0x11);
    /// NCI 2.0 (`0x20`), spoken by the PN7160 and most current controllers.
    pub const V2_0: NciVersion = NciVersion(0x20);

    /// Major version.
    pub fn major(self) -> u8 {
        self.0 >> 4
    }

    /// Minor version.
    pub fn minor(self) -> u8 {
        self.0 & 0x0F
    }

    /// `true` for NCI 2.x message layouts.
    pub fn is_v2(self) -> bool {
        self.major() >= 2
    }
}

impl core::fmt::Display for NciVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major(), self.minor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_code_points_round_trip() {
        for raw in 0..=u8::MAX {
            assert_eq!(u8::from(Status::from(raw)), raw);
            assert_eq!(u8::from(RfTechMode::from(raw)), raw);
            assert_eq!(u8::from(RfProtocol::from(raw)), raw);
            assert_eq!(u8::from(RfInterface::from(raw)), raw);
            assert_eq!(u8::from(DeactivationReason::from(raw)), raw);
        }
    }

    #[test]
    fn names_follow_the_specification() {
        assert_eq!(
            Status::from(0x0A).spec_name(),
            Some("STATUS_MESSAGE_SIZE_EXCEEDED")
        );
        assert_eq!(RfProtocol::from(0x04), RfProtocol::IsoDep);
        assert_eq!(RfInterface::from(0x77), RfInterface::Unknown(0x77));
        assert!(RfTechMode::NfcBPassiveListen.is_listen());
        assert_eq!(
            RfTechMode::NfcAPassiveListen.technology(),
            Some(RfTechnology::NfcA)
        );
        assert_eq!(NciVersion(0x20).to_string(), "2.0");
        assert!(!NciVersion::V1_0.is_v2());
    }
}
