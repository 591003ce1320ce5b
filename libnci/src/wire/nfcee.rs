//! NFCEE Management messages, GID 0010b (NCI 1.0 and NCI 2.0, NFCEE discovery and mode set):
//! discovering NFC execution environments (secure elements, the HCI network) and enabling or
//! disabling them.
//!
//! A host-card-emulation host mostly needs to see these go by; NFCEE_DISCOVER_NTF is therefore
//! parsed to its identifier and status, the rest kept raw (with a best-effort accessor for the
//! protocol list). Nothing here knows which NFCEE the routing table should point at.

use core::fmt;

use super::message::{octet_fields, Emit, FieldVisitor, Reader, Value, Writer};
use super::{NciVersion, Result, Status};

/// Opcodes of the NFCEE Management group (NCI 1.0 Table 102, NCI 2.0 Table 149: GID and OID
/// values).
pub mod oid {
    /// NFCEE_DISCOVER_CMD / RSP / NTF.
    pub const NFCEE_DISCOVER: u8 = 0x00;
    /// NFCEE_MODE_SET_CMD / RSP (and NCI 2.0 NTF).
    pub const NFCEE_MODE_SET: u8 = 0x01;
    /// NCI 2.0 NFCEE_STATUS_NTF.
    pub const NFCEE_STATUS: u8 = 0x02;
}

open_enum! {
    /// NCI 1.0 NFCEE_DISCOVER_CMD Discovery Action.
    pub enum NfceeDiscoverAction(u8) {
        /// Stop NFCEE discovery.
        Disable = 0x00 => "DISABLE_DISCOVERY",
        /// Start NFCEE discovery.
        Enable = 0x01 => "ENABLE_DISCOVERY",
    }
}

/// NFCEE_DISCOVER_CMD in its NCI 1.0 or NCI 2.0 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NfceeDiscoverCmd {
    /// NCI 1.0: one Discovery Action octet.
    Nci1 {
        /// Start or stop discovery.
        action: NfceeDiscoverAction,
    },
    /// NCI 2.0: empty (discovery always runs once).
    Nci2,
}

impl NfceeDiscoverCmd {
    /// Parse the payload in the layout of `version`.
    pub fn parse(payload: &[u8], version: NciVersion) -> Result<NfceeDiscoverCmd> {
        let mut r = Reader::new(payload);
        let cmd = if version.is_v2() {
            NfceeDiscoverCmd::Nci2
        } else {
            NfceeDiscoverCmd::Nci1 {
                action: NfceeDiscoverAction::from(r.u8()?),
            }
        };
        r.finish()?;
        Ok(cmd)
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            NfceeDiscoverCmd::Nci1 { action } => v.field("action", Value::Name(action)),
            NfceeDiscoverCmd::Nci2 => Ok(()),
        }
    }
}

impl Emit for NfceeDiscoverCmd {
    fn buffer_len(&self) -> usize {
        match self {
            NfceeDiscoverCmd::Nci1 { .. } => 1,
            NfceeDiscoverCmd::Nci2 => 0,
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            NfceeDiscoverCmd::Nci1 { action } => w.u8(u8::from(*action)),
            NfceeDiscoverCmd::Nci2 => Ok(()),
        }
    }
}

octet_fields! {
    /// NFCEE_DISCOVER_RSP: status and the number of NFCEEs that will be reported.
    pub struct NfceeDiscoverRsp {
        /// Outcome.
        pub status: Status => "status" name,
        /// How many NFCEE_DISCOVER_NTF follow.
        pub number_of_nfcees: u8 => "nfcees" num,
    }
}

open_enum! {
    /// NFCEE status in NFCEE_DISCOVER_NTF.
    pub enum NfceeStatus(u8) {
        /// Connected and enabled.
        Enabled = 0x00 => "NFCEE_ENABLED",
        /// Connected, disabled.
        Disabled = 0x01 => "NFCEE_DISABLED",
        /// Removed (NCI 2.0: unresponsive).
        Removed = 0x02 => "NFCEE_REMOVED",
    }
}

/// NFCEE_DISCOVER_NTF: one NFCEE. The identifier and status are decoded; the protocol list,
/// information TLVs and (NCI 2.0) power supply octet are kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NfceeDiscoverNtf<'a> {
    /// The NFCEE identifier.
    pub nfcee_id: u8,
    /// Its status.
    pub status: NfceeStatus,
    /// Everything after the status octet.
    pub rest: &'a [u8],
}

impl<'a> NfceeDiscoverNtf<'a> {
    /// Parse the payload.
    pub fn parse(payload: &'a [u8]) -> Result<NfceeDiscoverNtf<'a>> {
        let mut r = Reader::new(payload);
        let nfcee_id = r.u8()?;
        let status = NfceeStatus::from(r.u8()?);
        let rest = r.rest();
        Ok(NfceeDiscoverNtf {
            nfcee_id,
            status,
            rest,
        })
    }

    /// The supported NFCEE protocols (the count octet and list at the start of `rest`), when
    /// they are within bounds.
    pub fn protocols(&self) -> Option<&'a [u8]> {
        Reader::new(self.rest).len_prefixed().ok()
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("nfcee_id", Value::Hex(&[self.nfcee_id]))?;
        v.field("status", Value::Name(&self.status))?;
        if let Some(protocols) = self.protocols() {
            v.field("protocols", Value::Hex(protocols))?;
        }
        v.field("rest", Value::Hex(self.rest))
    }
}

impl Emit for NfceeDiscoverNtf<'_> {
    fn buffer_len(&self) -> usize {
        2 + self.rest.len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[self.nfcee_id, u8::from(self.status)])?;
        w.bytes(self.rest)
    }
}

open_enum! {
    /// NFCEE_MODE_SET_CMD mode.
    pub enum NfceeMode(u8) {
        /// Disable the NFCEE.
        Disable = 0x00 => "DISABLE",
        /// Enable the NFCEE.
        Enable = 0x01 => "ENABLE",
    }
}

octet_fields! {
    /// NFCEE_MODE_SET_CMD: enable or disable an NFCEE.
    pub struct NfceeModeSetCmd {
        /// The NFCEE.
        pub nfcee_id: u8 => "nfcee_id" hex,
        /// Enable or disable.
        pub mode: NfceeMode => "mode" name,
    }
}

octet_fields! {
    /// NCI 2.0 NFCEE_MODE_SET_NTF: the outcome of a mode change, once it completed.
    pub struct NfceeModeSetNtf {
        /// Outcome.
        pub status: Status => "status" name,
    }
}

octet_fields! {
    /// NCI 2.0 NFCEE_STATUS_NTF: an NFCEE's status changed (0x00 unrecoverable error, 0x01
    /// initialisation started, 0x02 initialisation completed).
    pub struct NfceeStatusNtf {
        /// The NFCEE.
        pub nfcee_id: u8 => "nfcee_id" hex,
        /// The new status.
        pub nfcee_status: u8 => "nfcee_status" num,
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Message;
    use super::super::Error;
    use super::*;

    fn roundtrip(bytes: &[u8], version: NciVersion) -> Message<'_> {
        let msg = Message::parse_packet(bytes, version).unwrap();
        let mut out = [0u8; 300];
        let n = msg.emit_packet(&mut out).unwrap();
        assert_eq!(&out[..n], bytes, "{msg}");
        msg
    }

    #[test]
    fn nfcee_discover() {
        // > NFCEE_DISCOVER_CMD, NCI 1.0: enable discovery
        let msg = roundtrip(&[0x22, 0x00, 0x01, 0x01], NciVersion::V1_0);
        assert_eq!(
            msg,
            Message::NfceeDiscoverCmd(NfceeDiscoverCmd::Nci1 {
                action: NfceeDiscoverAction::Enable
            })
        );
        // > NFCEE_DISCOVER_CMD, NCI 2.0: empty
        let msg = roundtrip(&[0x22, 0x00, 0x00], NciVersion::V2_0);
        assert_eq!(msg, Message::NfceeDiscoverCmd(NfceeDiscoverCmd::Nci2));
        assert_eq!(
            Message::parse_packet(&[0x22, 0x00, 0x00], NciVersion::V1_0),
            Err(Error::Truncated)
        );
        // < NFCEE_DISCOVER_RSP: STATUS_OK, 1 NFCEE
        let msg = roundtrip(&[0x42, 0x00, 0x02, 0x00, 0x01], NciVersion::V1_0);
        assert_eq!(
            msg.to_string(),
            "NFCEE_DISCOVER_RSP status=STATUS_OK nfcees=1"
        );
        // < NFCEE_DISCOVER_NTF: NFCEE 0xC0 enabled, 1 protocol (0x80), 1 TLV, power supply 0x01
        let ntf = [
            0x62, 0x00, 0x0A, 0xC0, 0x00, 0x01, 0x80, 0x01, 0x00, 0x02, 0x12, 0x34, 0x01,
        ];
        let msg = roundtrip(&ntf, NciVersion::V2_0);
        let Message::NfceeDiscoverNtf(n) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(n.nfcee_id, 0xC0);
        assert_eq!(n.status, NfceeStatus::Enabled);
        assert_eq!(n.protocols(), Some(&[0x80][..]));
        assert_eq!(
            msg.to_string(),
            "NFCEE_DISCOVER_NTF nfcee_id=C0 status=NFCEE_ENABLED protocols=80 \
             rest=01 80 01 00 02 12 34 01"
        );
        assert_eq!(
            Message::parse_packet(&[0x62, 0x00, 0x01, 0xC0], NciVersion::V1_0),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn nfcee_mode_set() {
        let msg = roundtrip(&[0x22, 0x01, 0x02, 0xC0, 0x01], NciVersion::V1_0);
        assert_eq!(
            msg.to_string(),
            "NFCEE_MODE_SET_CMD nfcee_id=C0 mode=ENABLE"
        );
        roundtrip(&[0x42, 0x01, 0x01, 0x00], NciVersion::V1_0);
        let msg = roundtrip(&[0x62, 0x01, 0x01, 0x00], NciVersion::V2_0);
        assert_eq!(
            msg,
            Message::NfceeModeSetNtf(NfceeModeSetNtf { status: Status::Ok })
        );
        roundtrip(&[0x62, 0x02, 0x02, 0xC0, 0x02], NciVersion::V2_0);
    }
}
