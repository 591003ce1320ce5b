//! RF Management messages, GID 0001b (NCI 1.0 and NCI 2.0, RF management chapters): interface
//! mapping, listen mode routing, discovery, activation, deactivation and field information.
//!
//! Each message is a validated value with `parse`, [`Emit::buffer_len`] and [`Emit::emit`].
//! RF_INTF_ACTIVATED_NTF decodes its technology-specific and activation parameters for the
//! combinations a card-emulation host meets (NFC-A/B/F poll and listen, ISO-DEP activation in
//! all four directions); any other combination is kept as raw bytes and still round-trips.
//!
//! Listen mode routing entries are validated here only as TLV framing (type, length, value
//! within bounds, count matching); their typed meaning lives with the routing table code.
//! This module knows nothing of the RF state machine (which message is allowed when).

use core::fmt;

use super::message::{
    count_u8, list_payload, octet_fields, Emit, FieldVisitor, List, ListItem, Reader, Tlv, Value,
    Writer,
};
use super::{
    BitRate, DeactivationReason, DeactivationType, Error, Result, RfInterface, RfProtocol,
    RfTechMode,
};

/// Opcodes of the RF Management group (NCI 1.0 Table 102, NCI 2.0 Table 149: GID and OID
/// values).
pub mod oid {
    /// RF_DISCOVER_MAP_CMD / RSP.
    pub const RF_DISCOVER_MAP: u8 = 0x00;
    /// RF_SET_LISTEN_MODE_ROUTING_CMD / RSP.
    pub const RF_SET_LISTEN_MODE_ROUTING: u8 = 0x01;
    /// RF_GET_LISTEN_MODE_ROUTING_CMD / RSP / NTF.
    pub const RF_GET_LISTEN_MODE_ROUTING: u8 = 0x02;
    /// RF_DISCOVER_CMD / RSP / NTF.
    pub const RF_DISCOVER: u8 = 0x03;
    /// RF_DISCOVER_SELECT_CMD / RSP.
    pub const RF_DISCOVER_SELECT: u8 = 0x04;
    /// RF_INTF_ACTIVATED_NTF.
    pub const RF_INTF_ACTIVATED: u8 = 0x05;
    /// RF_DEACTIVATE_CMD / RSP / NTF.
    pub const RF_DEACTIVATE: u8 = 0x06;
    /// RF_FIELD_INFO_NTF.
    pub const RF_FIELD_INFO: u8 = 0x07;
    /// RF_T3T_POLLING_CMD / RSP / NTF (no layout in this crate).
    pub const RF_T3T_POLLING: u8 = 0x08;
    /// RF_NFCEE_ACTION_NTF.
    pub const RF_NFCEE_ACTION: u8 = 0x09;
    /// RF_NFCEE_DISCOVERY_REQ_NTF.
    pub const RF_NFCEE_DISCOVERY_REQ: u8 = 0x0A;
    /// RF_PARAMETER_UPDATE_CMD / RSP (no layout in this crate).
    pub const RF_PARAMETER_UPDATE: u8 = 0x0B;
}

/// The Mode octet of an RF interface mapping: which directions the mapping applies to (NCI 1.0
/// and NCI 2.0 RF_DISCOVER_MAP_CMD). Kept whole so that reserved bits round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MappingMode(pub u8);

impl MappingMode {
    /// Poll mode only.
    pub const POLL: MappingMode = MappingMode(0x01);
    /// Listen mode only.
    pub const LISTEN: MappingMode = MappingMode(0x02);
    /// Poll and listen.
    pub const POLL_AND_LISTEN: MappingMode = MappingMode(0x03);

    /// b0: applies in poll mode.
    pub fn poll(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// b1: applies in listen mode.
    pub fn listen(self) -> bool {
        self.0 & 0x02 != 0
    }
}

impl fmt::Display for MappingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.poll(), self.listen(), self.0 & !0x03) {
            (true, false, 0) => f.write_str("poll"),
            (false, true, 0) => f.write_str("listen"),
            (true, true, 0) => f.write_str("poll+listen"),
            _ => write!(f, "0x{:02X}", self.0),
        }
    }
}

/// One RF interface mapping: RF protocol, mode, RF interface (NCI 1.0 and NCI 2.0,
/// RF_DISCOVER_MAP_CMD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiscoverMapping {
    /// The RF protocol.
    pub protocol: RfProtocol,
    /// Poll and/or listen.
    pub mode: MappingMode,
    /// The RF interface the protocol is mapped to.
    pub interface: RfInterface,
}

impl<'a> ListItem<'a> for DiscoverMapping {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(DiscoverMapping {
            protocol: RfProtocol::from(r.u8()?),
            mode: MappingMode(r.u8()?),
            interface: RfInterface::from(r.u8()?),
        })
    }

    fn item_len(&self) -> usize {
        3
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[
            u8::from(self.protocol),
            self.mode.0,
            u8::from(self.interface),
        ])
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item_record_begin()?;
        v.field("protocol", Value::Name(&self.protocol))?;
        v.field("mode", Value::Name(&self.mode))?;
        v.field("interface", Value::Name(&self.interface))?;
        v.record_end()
    }
}

list_payload! {
    /// RF_DISCOVER_MAP_CMD (NCI 1.0 and NCI 2.0).
    pub struct RfDiscoverMapCmd<'a> {
        /// The mappings.
        pub mappings: List<'a, DiscoverMapping> => "mappings",
    }
}

/// The body shared by RF_SET_LISTEN_MODE_ROUTING_CMD and RF_GET_LISTEN_MODE_ROUTING_NTF (NCI
/// 1.0 and NCI 2.0): a More flag and routing entries.
///
/// Entries are validated as TLVs only (type octet, length octet, value within the payload,
/// count equal to the Number of Routing Entries); [`ListenModeRouting::raw_entries`] yields them
/// as `(type octet, value)` for a typed decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenModeRouting<'a> {
    /// `true` when more messages with further entries follow (the table is split).
    pub more: bool,
    /// The routing entries.
    pub entries: List<'a, Tlv<'a>>,
}

/// RF_SET_LISTEN_MODE_ROUTING_CMD (NCI 1.0 and NCI 2.0).
pub type RfSetListenModeRoutingCmd<'a> = ListenModeRouting<'a>;
/// RF_GET_LISTEN_MODE_ROUTING_NTF (NCI 1.0 and NCI 2.0).
pub type RfGetListenModeRoutingNtf<'a> = ListenModeRouting<'a>;

impl<'a> ListenModeRouting<'a> {
    /// Parse the payload. A More octet other than 0x00 or 0x01 is [`Error::BadValue`].
    pub fn parse(payload: &'a [u8]) -> Result<ListenModeRouting<'a>> {
        let mut r = Reader::new(payload);
        let more = match r.u8()? {
            0x00 => false,
            0x01 => true,
            _ => return Err(Error::BadValue),
        };
        let entries = List::read_counted(&mut r)?;
        r.finish()?;
        Ok(ListenModeRouting { more, entries })
    }

    /// Build from entries already encoded by a routing table builder: `count` TLVs in `bytes`,
    /// validated like a received payload.
    pub fn from_encoded(more: bool, count: u8, bytes: &'a [u8]) -> Result<ListenModeRouting<'a>> {
        Ok(ListenModeRouting {
            more,
            entries: List::parse(usize::from(count), bytes)?,
        })
    }

    /// The entries as `(type octet, value)`.
    pub fn raw_entries(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        self.entries.iter().map(|tlv| (tlv.tag, tlv.value))
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("more", Value::Flag(self.more))?;
        self.entries.visit("entries", v)
    }
}

impl Emit for ListenModeRouting<'_> {
    fn buffer_len(&self) -> usize {
        2 + self.entries.buffer_len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(u8::from(self.more))?;
        self.entries.write_counted(w)
    }
}

/// One discovery configuration: a technology-and-mode and how often to run it (NCI 1.0 and
/// NCI 2.0, RF_DISCOVER_CMD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiscoverConfig {
    /// RF technology and mode to poll or listen with.
    pub tech_mode: RfTechMode,
    /// Discovery frequency: 0x01 every period, 0x02–0x0A every n-th period (poll modes).
    pub frequency: u8,
}

impl<'a> ListItem<'a> for DiscoverConfig {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(DiscoverConfig {
            tech_mode: RfTechMode::from(r.u8()?),
            frequency: r.u8()?,
        })
    }

    fn item_len(&self) -> usize {
        2
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[u8::from(self.tech_mode), self.frequency])
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.item_record_begin()?;
        v.field("mode", Value::Name(&self.tech_mode))?;
        v.field("frequency", Value::Num(u64::from(self.frequency)))?;
        v.record_end()
    }
}

list_payload! {
    /// RF_DISCOVER_CMD (NCI 1.0 and NCI 2.0): start discovery.
    pub struct RfDiscoverCmd<'a> {
        /// What to poll and listen for.
        pub configs: List<'a, DiscoverConfig> => "configs",
    }
}

// ---------------------------------------------------------------------------------------------
// RF technology specific parameters
// ---------------------------------------------------------------------------------------------

/// NFC-A poll mode parameters (NCI 1.0 and NCI 2.0, "Specific Parameters for NFC-A Poll
/// Mode"; NCI 2.0 adds HRx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollAParams<'a> {
    /// SENS_RES (ATQA), 2 octets.
    pub sens_res: [u8; 2],
    /// NFCID1 (UID): 0, 4, 7 or 10 octets.
    pub nfcid1: &'a [u8],
    /// SEL_RES (SAK), when collision resolution completed.
    pub sel_res: Option<u8>,
    /// NCI 2.0: HR0 HR1 of a Type 1 Tag (`Some` with 0 or 2 octets when the field is present;
    /// `None` in the NCI 1.0 layout, which has no such field).
    pub hrx: Option<&'a [u8]>,
}

impl<'a> PollAParams<'a> {
    fn parse(bytes: &'a [u8]) -> Result<PollAParams<'a>> {
        let mut r = Reader::new(bytes);
        let sens_res = r.array()?;
        let nfcid1 = r.len_prefixed()?;
        if !matches!(nfcid1.len(), 0 | 4 | 7 | 10) {
            return Err(Error::BadValue);
        }
        let sel_res = match r.u8()? {
            0 => None,
            1 => Some(r.u8()?),
            _ => return Err(Error::BadValue),
        };
        let hrx = if r.is_empty() {
            None
        } else {
            let hrx = r.len_prefixed()?;
            if !matches!(hrx.len(), 0 | 2) {
                return Err(Error::BadValue);
            }
            Some(hrx)
        };
        r.finish()?;
        Ok(PollAParams {
            sens_res,
            nfcid1,
            sel_res,
            hrx,
        })
    }

    fn buffer_len(&self) -> usize {
        2 + 1
            + self.nfcid1.len()
            + 1
            + usize::from(self.sel_res.is_some())
            + self.hrx.map_or(0, |h| 1 + h.len())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&self.sens_res)?;
        w.len_prefixed(self.nfcid1)?;
        match self.sel_res {
            Some(sel_res) => w.bytes(&[1, sel_res])?,
            None => w.u8(0)?,
        }
        if let Some(hrx) = self.hrx {
            w.len_prefixed(hrx)?;
        }
        Ok(())
    }

    fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("sens_res", Value::Hex(&self.sens_res))?;
        v.field("nfcid1", Value::Hex(self.nfcid1))?;
        if let Some(sel_res) = self.sel_res {
            v.field("sel_res", Value::Hex(&[sel_res]))?;
        }
        if let Some(hrx) = self.hrx {
            v.field("hrx", Value::Hex(hrx))?;
        }
        Ok(())
    }
}

/// NFC-B poll mode parameters (NCI 1.0 and NCI 2.0): SENSB_RES from byte 2 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollBParams<'a> {
    /// SENSB_RES (ATQB) bytes 2–12 or 2–13: NFCID0, application data, protocol info.
    pub sensb_res: &'a [u8],
}

impl<'a> PollBParams<'a> {
    fn parse(bytes: &'a [u8]) -> Result<PollBParams<'a>> {
        let mut r = Reader::new(bytes);
        let sensb_res = r.len_prefixed()?;
        if !matches!(sensb_res.len(), 11 | 12) {
            return Err(Error::BadValue);
        }
        r.finish()?;
        Ok(PollBParams { sensb_res })
    }

    /// NFCID0 (PUPI), 4 octets.
    pub fn nfcid0(&self) -> Option<&'a [u8]> {
        self.sensb_res.get(..4)
    }

    /// Application data, 4 octets.
    pub fn application_data(&self) -> Option<&'a [u8]> {
        self.sensb_res.get(4..8)
    }

    /// Protocol info, 3 or 4 octets.
    pub fn protocol_info(&self) -> Option<&'a [u8]> {
        self.sensb_res.get(8..)
    }
}

/// NFC-F poll mode parameters (NCI 1.0 and NCI 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollFParams<'a> {
    /// Bit rate: 0x01 212 kbit/s, 0x02 424 kbit/s.
    pub bit_rate: u8,
    /// SENSF_RES bytes 2–17 or 2–19: NFCID2, PAD/PMm, optional request data.
    pub sensf_res: &'a [u8],
}

impl<'a> PollFParams<'a> {
    fn parse(bytes: &'a [u8]) -> Result<PollFParams<'a>> {
        let mut r = Reader::new(bytes);
        let bit_rate = r.u8()?;
        let sensf_res = r.len_prefixed()?;
        if !matches!(sensf_res.len(), 16 | 18) {
            return Err(Error::BadValue);
        }
        r.finish()?;
        Ok(PollFParams {
            bit_rate,
            sensf_res,
        })
    }

    /// NFCID2, 8 octets.
    pub fn nfcid2(&self) -> Option<&'a [u8]> {
        self.sensf_res.get(..8)
    }
}

/// RF technology specific parameters of RF_DISCOVER_NTF and RF_INTF_ACTIVATED_NTF (NCI 1.0
/// and NCI 2.0, "Specific Parameters for ..." tables), chosen by the RF technology and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RfTechParams<'a> {
    /// NFC-A passive poll.
    PollA(PollAParams<'a>),
    /// NFC-B passive poll.
    PollB(PollBParams<'a>),
    /// NFC-F passive poll.
    PollF(PollFParams<'a>),
    /// NFC-A passive listen: no parameters (NCI 1.0 and NCI 2.0).
    ListenA,
    /// NFC-B passive listen: none in NCI 1.0; later versions add the SENSB_REQ parameter octet.
    ListenB {
        /// The SENSB_REQ parameter octet, when present.
        sensb_req: Option<u8>,
    },
    /// NFC-F passive listen: the local NFCID2 when the NFCC reports one.
    ListenF {
        /// `None` when the parameters are empty; otherwise the length-prefixed NFCID2 (0 or 8
        /// octets).
        local_nfcid2: Option<&'a [u8]>,
    },
    /// Any other technology and mode, or listen parameters of an unknown shape, kept as
    /// received.
    Raw(&'a [u8]),
}

impl<'a> RfTechParams<'a> {
    /// Decode the parameters that follow their length octet, for `tech_mode`. Malformed NFC-A,
    /// B or F poll parameters are errors; unexpected listen parameters are kept as `Raw`, since
    /// later NCI versions add listen fields.
    pub fn parse(tech_mode: RfTechMode, bytes: &'a [u8]) -> Result<RfTechParams<'a>> {
        Ok(match tech_mode {
            RfTechMode::NfcAPassivePoll => RfTechParams::PollA(PollAParams::parse(bytes)?),
            RfTechMode::NfcBPassivePoll => RfTechParams::PollB(PollBParams::parse(bytes)?),
            RfTechMode::NfcFPassivePoll => RfTechParams::PollF(PollFParams::parse(bytes)?),
            RfTechMode::NfcAPassiveListen if bytes.is_empty() => RfTechParams::ListenA,
            RfTechMode::NfcBPassiveListen => match bytes {
                [] => RfTechParams::ListenB { sensb_req: None },
                [b] => RfTechParams::ListenB {
                    sensb_req: Some(*b),
                },
                _ => RfTechParams::Raw(bytes),
            },
            RfTechMode::NfcFPassiveListen => match bytes {
                [] => RfTechParams::ListenF { local_nfcid2: None },
                [len, rest @ ..] if usize::from(*len) == rest.len() && matches!(*len, 0 | 8) => {
                    RfTechParams::ListenF {
                        local_nfcid2: Some(rest),
                    }
                }
                _ => RfTechParams::Raw(bytes),
            },
            _ => RfTechParams::Raw(bytes),
        })
    }

    /// Length of the parameters (without their length octet).
    pub fn buffer_len(&self) -> usize {
        match self {
            RfTechParams::PollA(p) => p.buffer_len(),
            RfTechParams::PollB(p) => 1 + p.sensb_res.len(),
            RfTechParams::PollF(p) => 2 + p.sensf_res.len(),
            RfTechParams::ListenA => 0,
            RfTechParams::ListenB { sensb_req } => usize::from(sensb_req.is_some()),
            RfTechParams::ListenF { local_nfcid2 } => local_nfcid2.map_or(0, |n| 1 + n.len()),
            RfTechParams::Raw(bytes) => bytes.len(),
        }
    }

    /// Write the length octet and the parameters.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(count_u8(self.buffer_len())?)?;
        match self {
            RfTechParams::PollA(p) => p.write(w),
            RfTechParams::PollB(p) => w.len_prefixed(p.sensb_res),
            RfTechParams::PollF(p) => {
                w.u8(p.bit_rate)?;
                w.len_prefixed(p.sensf_res)
            }
            RfTechParams::ListenA => Ok(()),
            RfTechParams::ListenB { sensb_req } => match sensb_req {
                Some(b) => w.u8(*b),
                None => Ok(()),
            },
            RfTechParams::ListenF { local_nfcid2 } => match local_nfcid2 {
                Some(n) => w.len_prefixed(n),
                None => Ok(()),
            },
            RfTechParams::Raw(bytes) => w.bytes(bytes),
        }
    }

    /// Describe the parameters as the sub-structure `tech_params`.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            RfTechParams::ListenA => return Ok(()),
            RfTechParams::ListenB { sensb_req: None } => return Ok(()),
            RfTechParams::ListenF { local_nfcid2: None } => return Ok(()),
            RfTechParams::Raw(bytes) => {
                return if bytes.is_empty() {
                    Ok(())
                } else {
                    v.field("tech_params", Value::Hex(bytes))
                }
            }
            _ => {}
        }
        v.record_begin("tech_params")?;
        match self {
            RfTechParams::PollA(p) => p.visit(v)?,
            RfTechParams::PollB(p) => v.field("sensb_res", Value::Hex(p.sensb_res))?,
            RfTechParams::PollF(p) => {
                v.field("bit_rate", Value::Num(u64::from(p.bit_rate)))?;
                v.field("sensf_res", Value::Hex(p.sensf_res))?;
            }
            RfTechParams::ListenB { sensb_req: Some(b) } => {
                v.field("sensb_req", Value::Hex(core::slice::from_ref(b)))?
            }
            RfTechParams::ListenF {
                local_nfcid2: Some(n),
            } => v.field("local_nfcid2", Value::Hex(n))?,
            _ => {}
        }
        v.record_end()
    }
}

// ---------------------------------------------------------------------------------------------
// Activation parameters
// ---------------------------------------------------------------------------------------------

/// The RATS response (ATS) of a Type A ISO-DEP card the NFCC activated in poll mode, from T0 on
/// (NCI 1.0 and 2.0 "Activation Parameters for NFC-A/ISO-DEP Poll Mode": the ATS without its
/// length byte TL; ISO/IEC 14443-4, Answer to Select).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RatsResponse<'a> {
    /// ATS bytes from T0.
    pub ats: &'a [u8],
}

impl<'a> RatsResponse<'a> {
    /// Format byte T0.
    pub fn t0(&self) -> Option<u8> {
        self.ats.first().copied()
    }

    /// FSCI: the card's maximum frame size index (T0 b4–b1).
    pub fn fsci(&self) -> Option<u8> {
        self.t0().map(|t0| t0 & 0x0F)
    }

    fn interface_byte(&self, present_bit: u8) -> Option<u8> {
        let t0 = self.t0()?;
        if t0 & present_bit == 0 {
            return None;
        }
        // TA, TB, TC follow T0 in that order, each only when its bit is set.
        let index = 1 + [0x10u8, 0x20, 0x40]
            .iter()
            .take_while(|&&bit| bit != present_bit)
            .filter(|&&bit| t0 & bit != 0)
            .count();
        self.ats.get(index).copied()
    }

    /// TA(1): supported bit rates.
    pub fn ta(&self) -> Option<u8> {
        self.interface_byte(0x10)
    }

    /// TB(1): FWI (b8–b5) and SFGI (b4–b1).
    pub fn tb(&self) -> Option<u8> {
        self.interface_byte(0x20)
    }

    /// TC(1): NAD and CID support.
    pub fn tc(&self) -> Option<u8> {
        self.interface_byte(0x40)
    }

    /// FWI from TB(1), when present.
    pub fn fwi(&self) -> Option<u8> {
        self.tb().map(|tb| tb >> 4)
    }

    /// Historical bytes (after T0 and the interface bytes present).
    pub fn historical_bytes(&self) -> &'a [u8] {
        let Some(t0) = self.t0() else {
            return &[];
        };
        let skip = 1 + (t0 & 0x70).count_ones() as usize;
        self.ats.get(skip..).unwrap_or(&[])
    }
}

/// The RATS command parameter byte a Type A reader sent when the NFCC emulated an ISO-DEP card
/// (NCI 1.0 and 2.0 "Activation Parameters for NFC-A/ISO-DEP Listen Mode": byte 2 of RATS;
/// ISO/IEC 14443-4, Request for Answer to Select).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RatsParam(pub u8);

impl RatsParam {
    /// FSDI: the reader's maximum frame size index (b8–b5).
    pub fn fsdi(self) -> u8 {
        self.0 >> 4
    }

    /// The reader's maximum frame size in octets (FSD), per ISO/IEC 14443-4 (FSDI to FSD); `None`
    /// for reserved indices.
    pub fn fsd(self) -> Option<u16> {
        const FSD: [u16; 13] = [16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096];
        FSD.get(usize::from(self.fsdi())).copied()
    }

    /// DID: the logical card identifier the reader assigned (b4–b1).
    pub fn did(self) -> u8 {
        self.0 & 0x0F
    }
}

/// The ATTRIB response of a Type B ISO-DEP card the NFCC activated in poll mode (NCI 1.0
/// and 2.0 "Activation Parameters for NFC-B/ISO-DEP Poll Mode"; ISO/IEC 14443-3, Answer to
/// ATTRIB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttribResponse<'a> {
    /// The response from its first byte (MBLI and CID) on.
    pub bytes: &'a [u8],
}

impl<'a> AttribResponse<'a> {
    /// MBLI (b8–b5 of the first byte).
    pub fn mbli(&self) -> Option<u8> {
        self.bytes.first().map(|b| b >> 4)
    }

    /// CID (b4–b1 of the first byte).
    pub fn cid(&self) -> Option<u8> {
        self.bytes.first().map(|b| b & 0x0F)
    }

    /// Higher-layer response.
    pub fn higher_layer_response(&self) -> &'a [u8] {
        self.bytes.get(1..).unwrap_or(&[])
    }
}

/// The ATTRIB command a Type B reader sent when the NFCC emulated an ISO-DEP card (NCI 1.0
/// and 2.0 "Activation Parameters for NFC-B/ISO-DEP Listen Mode": ATTRIB from byte 2 on;
/// ISO/IEC 14443-3, ATTRIB). At least 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttribCommand<'a> {
    /// Identifier (NFCID0), Param 1–4, higher-layer INF.
    pub bytes: &'a [u8],
}

impl<'a> AttribCommand<'a> {
    /// The NFCID0 the reader addressed.
    pub fn nfcid0(&self) -> Option<&'a [u8]> {
        self.bytes.get(..4)
    }

    /// Param 1 to Param 4.
    pub fn params(&self) -> Option<&'a [u8]> {
        self.bytes.get(4..8)
    }

    /// FSDI: the reader's maximum frame size index (Param 2 b4–b1).
    pub fn fsdi(&self) -> Option<u8> {
        self.bytes.get(5).map(|p2| p2 & 0x0F)
    }

    /// CID (Param 4 b4–b1).
    pub fn cid(&self) -> Option<u8> {
        self.bytes.get(7).map(|p4| p4 & 0x0F)
    }

    /// Higher-layer INF.
    pub fn higher_layer_inf(&self) -> &'a [u8] {
        self.bytes.get(8..).unwrap_or(&[])
    }
}

/// Activation parameters of RF_INTF_ACTIVATED_NTF (NCI 1.0 and NCI 2.0, ISO-DEP RF interface),
/// chosen by the RF interface and the activation technology and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationParams<'a> {
    /// ISO-DEP interface, NFC-A poll: the ATS.
    IsoDepPollA(RatsResponse<'a>),
    /// ISO-DEP interface, NFC-B poll: the ATTRIB response.
    IsoDepPollB(AttribResponse<'a>),
    /// ISO-DEP interface, NFC-A listen: the RATS parameter byte.
    IsoDepListenA(RatsParam),
    /// ISO-DEP interface, NFC-B listen: the ATTRIB command.
    IsoDepListenB(AttribCommand<'a>),
    /// Any other combination, and empty parameter blocks, kept as received.
    Raw(&'a [u8]),
}

impl<'a> ActivationParams<'a> {
    /// Decode the parameters that follow their length octet. A parameter block of a typed
    /// combination that does not have the typed shape is an error.
    pub fn parse(
        interface: RfInterface,
        tech_mode: RfTechMode,
        bytes: &'a [u8],
    ) -> Result<ActivationParams<'a>> {
        if bytes.is_empty() || interface != RfInterface::IsoDep {
            return Ok(ActivationParams::Raw(bytes));
        }
        let mut r = Reader::new(bytes);
        let params = match tech_mode {
            RfTechMode::NfcAPassivePoll => ActivationParams::IsoDepPollA(RatsResponse {
                ats: r.len_prefixed()?,
            }),
            RfTechMode::NfcBPassivePoll => ActivationParams::IsoDepPollB(AttribResponse {
                bytes: r.len_prefixed()?,
            }),
            RfTechMode::NfcAPassiveListen => ActivationParams::IsoDepListenA(RatsParam(r.u8()?)),
            RfTechMode::NfcBPassiveListen => {
                let bytes = r.len_prefixed()?;
                if bytes.len() < 8 {
                    return Err(Error::BadValue);
                }
                ActivationParams::IsoDepListenB(AttribCommand { bytes })
            }
            _ => return Ok(ActivationParams::Raw(bytes)),
        };
        r.finish()?;
        Ok(params)
    }

    /// Length of the parameters (without their length octet).
    pub fn buffer_len(&self) -> usize {
        match self {
            ActivationParams::IsoDepPollA(p) => 1 + p.ats.len(),
            ActivationParams::IsoDepPollB(p) => 1 + p.bytes.len(),
            ActivationParams::IsoDepListenA(_) => 1,
            ActivationParams::IsoDepListenB(p) => 1 + p.bytes.len(),
            ActivationParams::Raw(bytes) => bytes.len(),
        }
    }

    /// Write the length octet and the parameters.
    pub fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(count_u8(self.buffer_len())?)?;
        match self {
            ActivationParams::IsoDepPollA(p) => w.len_prefixed(p.ats),
            ActivationParams::IsoDepPollB(p) => w.len_prefixed(p.bytes),
            ActivationParams::IsoDepListenA(p) => w.u8(p.0),
            ActivationParams::IsoDepListenB(p) => w.len_prefixed(p.bytes),
            ActivationParams::Raw(bytes) => w.bytes(bytes),
        }
    }

    /// Describe the parameters as the sub-structure `activation`.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        match self {
            ActivationParams::Raw([]) => return Ok(()),
            ActivationParams::Raw(bytes) => return v.field("activation", Value::Hex(bytes)),
            _ => {}
        }
        v.record_begin("activation")?;
        match self {
            ActivationParams::IsoDepPollA(p) => {
                v.field("ats", Value::Hex(p.ats))?;
                if let Some(fwi) = p.fwi() {
                    v.field("fwi", Value::Num(u64::from(fwi)))?;
                }
                v.field("historical", Value::Hex(p.historical_bytes()))?;
            }
            ActivationParams::IsoDepPollB(p) => v.field("attrib_res", Value::Hex(p.bytes))?,
            ActivationParams::IsoDepListenA(p) => {
                v.field("rats_param", Value::Hex(&[p.0]))?;
                v.field("fsdi", Value::Num(u64::from(p.fsdi())))?;
                if let Some(fsd) = p.fsd() {
                    v.field("fsd", Value::Num(u64::from(fsd)))?;
                }
                v.field("did", Value::Num(u64::from(p.did())))?;
            }
            ActivationParams::IsoDepListenB(p) => {
                v.field("attrib_cmd", Value::Hex(p.bytes))?;
                if let Some(nfcid0) = p.nfcid0() {
                    v.field("nfcid0", Value::Hex(nfcid0))?;
                }
                if let Some(fsdi) = p.fsdi() {
                    v.field("fsdi", Value::Num(u64::from(fsdi)))?;
                }
            }
            ActivationParams::Raw(_) => {}
        }
        v.record_end()
    }
}

open_enum! {
    /// Notification Type of RF_DISCOVER_NTF (NCI 1.0 and NCI 2.0).
    pub enum DiscoverNtfType(u8) {
        /// Last notification.
        Last = 0x00 => "LAST_NOTIFICATION",
        /// Last notification, the NFCC hit a limit.
        LastLimit = 0x01 => "LAST_NOTIFICATION_NFCC_LIMIT",
        /// More notifications follow.
        More = 0x02 => "MORE_NOTIFICATIONS",
    }
}

/// RF_DISCOVER_NTF (NCI 1.0 and NCI 2.0): one remote endpoint found while polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfDiscoverNtf<'a> {
    /// Identifier to select the endpoint with.
    pub discovery_id: u8,
    /// RF protocol of the endpoint.
    pub protocol: RfProtocol,
    /// Technology and mode it was found with.
    pub tech_mode: RfTechMode,
    /// Technology specific parameters.
    pub tech_params: RfTechParams<'a>,
    /// Whether more notifications follow.
    pub notification_type: DiscoverNtfType,
}

impl<'a> RfDiscoverNtf<'a> {
    /// Parse the payload.
    pub fn parse(payload: &'a [u8]) -> Result<RfDiscoverNtf<'a>> {
        let mut r = Reader::new(payload);
        let discovery_id = r.u8()?;
        let protocol = RfProtocol::from(r.u8()?);
        let tech_mode = RfTechMode::from(r.u8()?);
        let tech_params = RfTechParams::parse(tech_mode, r.len_prefixed()?)?;
        let notification_type = DiscoverNtfType::from(r.u8()?);
        r.finish()?;
        Ok(RfDiscoverNtf {
            discovery_id,
            protocol,
            tech_mode,
            tech_params,
            notification_type,
        })
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("discovery_id", Value::Num(u64::from(self.discovery_id)))?;
        v.field("protocol", Value::Name(&self.protocol))?;
        v.field("mode", Value::Name(&self.tech_mode))?;
        self.tech_params.visit(v)?;
        v.field("type", Value::Name(&self.notification_type))
    }
}

impl Emit for RfDiscoverNtf<'_> {
    fn buffer_len(&self) -> usize {
        3 + 1 + self.tech_params.buffer_len() + 1
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[
            self.discovery_id,
            u8::from(self.protocol),
            u8::from(self.tech_mode),
        ])?;
        self.tech_params.write(w)?;
        w.u8(u8::from(self.notification_type))
    }
}

octet_fields! {
    /// RF_DISCOVER_SELECT_CMD (NCI 1.0 and NCI 2.0).
    pub struct RfDiscoverSelectCmd {
        /// The endpoint, from RF_DISCOVER_NTF.
        pub discovery_id: u8 => "discovery_id" num,
        /// The protocol to activate.
        pub protocol: RfProtocol => "protocol" name,
        /// The interface to activate.
        pub interface: RfInterface => "interface" name,
    }
}

/// RF_INTF_ACTIVATED_NTF (NCI 1.0 and NCI 2.0, same layout): an RF interface is
/// active — in card emulation, a reader has selected us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfIntfActivatedNtf<'a> {
    /// The endpoint.
    pub discovery_id: u8,
    /// The RF interface now active (ISO-DEP for HCE).
    pub interface: RfInterface,
    /// The RF protocol.
    pub protocol: RfProtocol,
    /// Technology and mode of the activation.
    pub activation_tech_mode: RfTechMode,
    /// Maximum payload of data packets on the static RF connection.
    pub max_data_packet_payload: u8,
    /// Initial credits of the static RF connection.
    pub initial_credits: u8,
    /// Technology specific parameters.
    pub tech_params: RfTechParams<'a>,
    /// Technology and mode of the data exchange.
    pub data_exchange_tech_mode: RfTechMode,
    /// Data exchange transmit bit rate.
    pub tx_bit_rate: BitRate,
    /// Data exchange receive bit rate.
    pub rx_bit_rate: BitRate,
    /// Activation parameters.
    pub activation_params: ActivationParams<'a>,
}

impl<'a> RfIntfActivatedNtf<'a> {
    /// Parse the payload.
    pub fn parse(payload: &'a [u8]) -> Result<RfIntfActivatedNtf<'a>> {
        let mut r = Reader::new(payload);
        let discovery_id = r.u8()?;
        let interface = RfInterface::from(r.u8()?);
        let protocol = RfProtocol::from(r.u8()?);
        let activation_tech_mode = RfTechMode::from(r.u8()?);
        let max_data_packet_payload = r.u8()?;
        let initial_credits = r.u8()?;
        let tech_params = RfTechParams::parse(activation_tech_mode, r.len_prefixed()?)?;
        let data_exchange_tech_mode = RfTechMode::from(r.u8()?);
        let tx_bit_rate = BitRate::from(r.u8()?);
        let rx_bit_rate = BitRate::from(r.u8()?);
        let activation_params =
            ActivationParams::parse(interface, activation_tech_mode, r.len_prefixed()?)?;
        r.finish()?;
        Ok(RfIntfActivatedNtf {
            discovery_id,
            interface,
            protocol,
            activation_tech_mode,
            max_data_packet_payload,
            initial_credits,
            tech_params,
            data_exchange_tech_mode,
            tx_bit_rate,
            rx_bit_rate,
            activation_params,
        })
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("discovery_id", Value::Num(u64::from(self.discovery_id)))?;
        v.field("interface", Value::Name(&self.interface))?;
        v.field("protocol", Value::Name(&self.protocol))?;
        v.field("mode", Value::Name(&self.activation_tech_mode))?;
        v.field(
            "max_data_payload",
            Value::Num(u64::from(self.max_data_packet_payload)),
        )?;
        v.field("credits", Value::Num(u64::from(self.initial_credits)))?;
        self.tech_params.visit(v)?;
        v.field("data_mode", Value::Name(&self.data_exchange_tech_mode))?;
        v.field("tx_rate", Value::Name(&self.tx_bit_rate))?;
        v.field("rx_rate", Value::Name(&self.rx_bit_rate))?;
        self.activation_params.visit(v)
    }
}

impl Emit for RfIntfActivatedNtf<'_> {
    fn buffer_len(&self) -> usize {
        6 + 1 + self.tech_params.buffer_len() + 3 + 1 + self.activation_params.buffer_len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[
            self.discovery_id,
            u8::from(self.interface),
            u8::from(self.protocol),
            u8::from(self.activation_tech_mode),
            self.max_data_packet_payload,
            self.initial_credits,
        ])?;
        self.tech_params.write(w)?;
        w.bytes(&[
            u8::from(self.data_exchange_tech_mode),
            u8::from(self.tx_bit_rate),
            u8::from(self.rx_bit_rate),
        ])?;
        self.activation_params.write(w)
    }
}

octet_fields! {
    /// RF_DEACTIVATE_CMD (NCI 1.0 and NCI 2.0).
    pub struct RfDeactivateCmd {
        /// Where to go: idle, sleep, or back to discovery.
        pub deactivation_type: DeactivationType => "type" name,
    }
}

octet_fields! {
    /// RF_DEACTIVATE_NTF (NCI 1.0 and NCI 2.0): the interface was deactivated (in card
    /// emulation: the reader left, or deselected us).
    pub struct RfDeactivateNtf {
        /// Where the RF state machine went.
        pub deactivation_type: DeactivationType => "type" name,
        /// Why.
        pub reason: DeactivationReason => "reason" name,
    }
}

/// RF_FIELD_INFO_NTF (NCI 1.0 and NCI 2.0): an external RF field appeared or vanished;
/// sent only when RF_FIELD_INFO is enabled in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfFieldInfoNtf {
    /// RF Field Status octet; b0 set means a field is present. Kept whole for round-trips.
    pub field_status: u8,
}

impl RfFieldInfoNtf {
    /// Parse the payload.
    pub fn parse(payload: &[u8]) -> Result<RfFieldInfoNtf> {
        let mut r = Reader::new(payload);
        let field_status = r.u8()?;
        r.finish()?;
        Ok(RfFieldInfoNtf { field_status })
    }

    /// `true` when a reader's field is present.
    pub fn field_on(&self) -> bool {
        self.field_status & 0x01 != 0
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("field_on", Value::Flag(self.field_on()))?;
        if self.field_status & !0x01 != 0 {
            v.field("field_status", Value::Hex(&[self.field_status]))?;
        }
        Ok(())
    }
}

impl Emit for RfFieldInfoNtf {
    fn buffer_len(&self) -> usize {
        1
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.field_status)
    }
}

/// RF_NFCEE_ACTION_NTF (NCI 1.0 and 2.0): the NFCC routed something to an NFCEE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfNfceeActionNtf<'a> {
    /// The NFCEE.
    pub nfcee_id: u8,
    /// What triggered the action (0x00: SELECT with an AID; 0x01–0x03: routing by protocol,
    /// technology or system code; 0x10–0x7F application specific).
    pub trigger: u8,
    /// Supporting data (e.g. the AID).
    pub data: &'a [u8],
}

impl<'a> RfNfceeActionNtf<'a> {
    /// Parse the payload.
    pub fn parse(payload: &'a [u8]) -> Result<RfNfceeActionNtf<'a>> {
        let mut r = Reader::new(payload);
        let nfcee_id = r.u8()?;
        let trigger = r.u8()?;
        let data = r.len_prefixed()?;
        r.finish()?;
        Ok(RfNfceeActionNtf {
            nfcee_id,
            trigger,
            data,
        })
    }

    /// Describe the fields.
    pub fn visit(&self, v: &mut dyn FieldVisitor) -> fmt::Result {
        v.field("nfcee_id", Value::Hex(&[self.nfcee_id]))?;
        v.field("trigger", Value::Num(u64::from(self.trigger)))?;
        v.field("data", Value::Hex(self.data))
    }
}

impl Emit for RfNfceeActionNtf<'_> {
    fn buffer_len(&self) -> usize {
        3 + self.data.len()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.bytes(&[self.nfcee_id, self.trigger])?;
        w.len_prefixed(self.data)
    }
}

list_payload! {
    /// RF_NFCEE_DISCOVERY_REQ_NTF (NCI 1.0 and NCI 2.0): NFCEEs asking to be discovered
    /// (TLVs: 0x00 add, 0x01 remove a discovery request).
    pub struct RfNfceeDiscoveryReqNtf<'a> {
        /// The request TLVs.
        pub requests: List<'a, Tlv<'a>> => "requests",
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::Message;
    use super::super::NciVersion;
    use super::*;

    fn packet(msg: &Message<'_>) -> heapless::Vec<u8, 300> {
        let mut out = [0u8; 300];
        let n = msg.emit_packet(&mut out).unwrap();
        heapless::Vec::from_slice(&out[..n]).unwrap()
    }

    fn roundtrip(bytes: &[u8]) -> Message<'_> {
        for version in [NciVersion::V1_0, NciVersion::V2_0] {
            let msg = Message::parse_packet(bytes, version).unwrap();
            assert_eq!(packet(&msg).as_slice(), bytes, "{msg}");
        }
        Message::parse_packet(bytes, NciVersion::V1_0).unwrap()
    }

    // > RF_DISCOVER_MAP_CMD: ISO-DEP listen → ISO-DEP interface, NFC-DEP poll+listen → NFC-DEP
    const RF_DISCOVER_MAP_CMD: [u8; 10] =
        [0x21, 0x00, 0x07, 0x02, 0x04, 0x02, 0x02, 0x05, 0x03, 0x03];
    // > RF_DISCOVER_CMD: listen NFC-A, NFC-B, NFC-F, every period
    const RF_DISCOVER_CMD: [u8; 10] = [0x21, 0x03, 0x07, 0x03, 0x80, 0x01, 0x81, 0x01, 0x82, 0x01];
    // > RF_SET_LISTEN_MODE_ROUTING_CMD, more entries follow: technology NFC-A → DH (power
    //   state 0x01), protocol ISO-DEP → DH, AID A0000000041010 → NFCEE 0x02
    const RF_SET_LISTEN_MODE_ROUTING_CMD: [u8; 26] = [
        0x21, 0x01, 0x17, // header
        0x01, // more
        0x03, // 3 entries
        0x00, 0x03, 0x00, 0x01, 0x00, // technology: route DH, power 0x01, NFC-A
        0x01, 0x03, 0x00, 0x01, 0x04, // protocol: route DH, power 0x01, ISO-DEP
        0x02, 0x09, 0x02, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, // AID
    ];
    // < RF_INTF_ACTIVATED_NTF: listen A, ISO-DEP interface and protocol, max payload 255,
    //   1 credit, 106 kbit/s both ways, RATS parameter 0x80 (FSDI 8, DID 0)
    const LISTEN_A_ISO_DEP: [u8; 15] = [
        0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
    ];
    // < RF_INTF_ACTIVATED_NTF: listen B, ISO-DEP, ATTRIB command with NFCID0 11 22 33 44,
    //   Param1 00, Param2 08 (FSDI 8), Param3 01, Param4 00
    const LISTEN_B_ISO_DEP: [u8; 23] = [
        0x61, 0x05, 0x14, 0x01, 0x02, 0x04, 0x81, 0xFF, 0x01, 0x00, 0x81, 0x00, 0x00, 0x09, 0x08,
        0x11, 0x22, 0x33, 0x44, 0x00, 0x08, 0x01, 0x00,
    ];
    // < RF_INTF_ACTIVATED_NTF: poll A, ISO-DEP, SENS_RES 04 00, NFCID1 08 12 34 56, SAK 20,
    //   ATS 78 80 70 02 "nfc" (FSCI 8, TA 80, TB 70 = FWI 7, TC 02, historical "nfc")
    const POLL_A_ISO_DEP: [u8; 31] = [
        0x61, 0x05, 0x1C, 0x01, 0x02, 0x04, 0x00, 0xFF, 0x01, // id, intf, proto, mode, ...
        0x09, 0x04, 0x00, 0x04, 0x08, 0x12, 0x34, 0x56, 0x01, 0x20, // tech params
        0x00, 0x00, 0x00, // data mode, rates
        0x08, 0x07, 0x78, 0x80, 0x70, 0x02, b'n', b'f', b'c', // activation: ATS length 7
    ];
    // < RF_DEACTIVATE_NTF: discovery, link loss
    const RF_DEACTIVATE_NTF: [u8; 5] = [0x61, 0x06, 0x02, 0x03, 0x02];
    // < RF_FIELD_INFO_NTF: field on
    const RF_FIELD_INFO_NTF: [u8; 4] = [0x61, 0x07, 0x01, 0x01];

    #[test]
    fn discover_map() {
        let msg = roundtrip(&RF_DISCOVER_MAP_CMD);
        let Message::RfDiscoverMapCmd(cmd) = msg else {
            panic!("{msg:?}")
        };
        let mappings = [
            DiscoverMapping {
                protocol: RfProtocol::IsoDep,
                mode: MappingMode::LISTEN,
                interface: RfInterface::IsoDep,
            },
            DiscoverMapping {
                protocol: RfProtocol::NfcDep,
                mode: MappingMode::POLL_AND_LISTEN,
                interface: RfInterface::NfcDep,
            },
        ];
        assert_eq!(cmd.mappings, List::from_items(&mappings));
        assert_eq!(
            msg.to_string(),
            "RF_DISCOVER_MAP_CMD mappings=[{protocol=PROTOCOL_ISO_DEP mode=listen \
             interface=ISO_DEP_RF_INTERFACE} {protocol=PROTOCOL_NFC_DEP mode=poll+listen \
             interface=NFC_DEP_RF_INTERFACE}]"
        );
        roundtrip(&[0x41, 0x00, 0x01, 0x00]);
    }

    #[test]
    fn discover_listen_a_b_f() {
        let msg = roundtrip(&RF_DISCOVER_CMD);
        let configs = [0x80, 0x81, 0x82].map(|m| DiscoverConfig {
            tech_mode: RfTechMode::from(m),
            frequency: 1,
        });
        let built = Message::RfDiscoverCmd(RfDiscoverCmd {
            configs: List::from_items(&configs),
        });
        assert_eq!(msg, built);
        assert_eq!(packet(&built).as_slice(), &RF_DISCOVER_CMD);
        assert_eq!(
            msg.to_string(),
            "RF_DISCOVER_CMD configs=[{mode=NFC_A_PASSIVE_LISTEN_MODE frequency=1} \
             {mode=NFC_B_PASSIVE_LISTEN_MODE frequency=1} {mode=NFC_F_PASSIVE_LISTEN_MODE frequency=1}]"
        );
        roundtrip(&[0x41, 0x03, 0x01, 0x00]); // RF_DISCOVER_RSP
    }

    #[test]
    fn listen_mode_routing() {
        let msg = roundtrip(&RF_SET_LISTEN_MODE_ROUTING_CMD);
        let Message::RfSetListenModeRoutingCmd(cmd) = msg else {
            panic!("{msg:?}")
        };
        assert!(cmd.more);
        let entries: heapless::Vec<(u8, &[u8]), 4> = cmd.raw_entries().collect();
        assert_eq!(
            entries.as_slice(),
            &[
                (0x00, &[0x00, 0x01, 0x00][..]),
                (0x01, &[0x00, 0x01, 0x04][..]),
                (
                    0x02,
                    &[0x02, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10][..]
                ),
            ]
        );
        // Built from entries a routing table builder encoded.
        let built =
            ListenModeRouting::from_encoded(true, 3, &RF_SET_LISTEN_MODE_ROUTING_CMD[5..]).unwrap();
        assert_eq!(
            packet(&Message::RfSetListenModeRoutingCmd(built)).as_slice(),
            &RF_SET_LISTEN_MODE_ROUTING_CMD
        );
        // The same body as RF_GET_LISTEN_MODE_ROUTING_NTF.
        let mut ntf = RF_SET_LISTEN_MODE_ROUTING_CMD;
        ntf[0] = 0x61;
        ntf[1] = 0x02;
        let msg = roundtrip(&ntf);
        assert_eq!(msg, Message::RfGetListenModeRoutingNtf(cmd));
        roundtrip(&[0x21, 0x02, 0x00]); // RF_GET_LISTEN_MODE_ROUTING_CMD
        roundtrip(&[0x41, 0x02, 0x01, 0x00]); // RF_GET_LISTEN_MODE_ROUTING_RSP
        roundtrip(&[0x41, 0x01, 0x01, 0x0A]); // RF_SET_LISTEN_MODE_ROUTING_RSP: size exceeded

        // Framing errors: count too high, a value past the end, a bad More octet.
        let mut bad = RF_SET_LISTEN_MODE_ROUTING_CMD;
        bad[4] = 4;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::BadLength)
        );
        let mut bad = RF_SET_LISTEN_MODE_ROUTING_CMD;
        bad[16] = 0x0A;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::BadLength)
        );
        let mut bad = RF_SET_LISTEN_MODE_ROUTING_CMD;
        bad[4] = 2;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::TrailingBytes)
        );
        let mut bad = RF_SET_LISTEN_MODE_ROUTING_CMD;
        bad[3] = 2;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::BadValue)
        );
        assert_eq!(
            ListenModeRouting::from_encoded(false, 1, &[0x00, 0x03, 0x00]).err(),
            Some(Error::BadLength)
        );
    }

    #[test]
    fn listen_a_iso_dep_activation() {
        let msg = roundtrip(&LISTEN_A_ISO_DEP);
        let Message::RfIntfActivatedNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(
            ntf,
            RfIntfActivatedNtf {
                discovery_id: 1,
                interface: RfInterface::IsoDep,
                protocol: RfProtocol::IsoDep,
                activation_tech_mode: RfTechMode::NfcAPassiveListen,
                max_data_packet_payload: 255,
                initial_credits: 1,
                tech_params: RfTechParams::ListenA,
                data_exchange_tech_mode: RfTechMode::NfcAPassiveListen,
                tx_bit_rate: BitRate::Kbps106,
                rx_bit_rate: BitRate::Kbps106,
                activation_params: ActivationParams::IsoDepListenA(RatsParam(0x80)),
            }
        );
        let ActivationParams::IsoDepListenA(rats) = ntf.activation_params else {
            unreachable!()
        };
        assert_eq!((rats.fsdi(), rats.fsd(), rats.did()), (8, Some(256), 0));
        assert_eq!(
            msg.to_string(),
            "RF_INTF_ACTIVATED_NTF discovery_id=1 interface=ISO_DEP_RF_INTERFACE \
             protocol=PROTOCOL_ISO_DEP mode=NFC_A_PASSIVE_LISTEN_MODE max_data_payload=255 \
             credits=1 data_mode=NFC_A_PASSIVE_LISTEN_MODE tx_rate=NFC_BIT_RATE_106 \
             rx_rate=NFC_BIT_RATE_106 activation={rats_param=80 fsdi=8 fsd=256 did=0}"
        );
    }

    #[test]
    fn listen_b_iso_dep_activation() {
        let msg = roundtrip(&LISTEN_B_ISO_DEP);
        let Message::RfIntfActivatedNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(ntf.tech_params, RfTechParams::ListenB { sensb_req: None });
        let ActivationParams::IsoDepListenB(attrib) = ntf.activation_params else {
            panic!("{ntf:?}")
        };
        assert_eq!(attrib.nfcid0(), Some(&[0x11, 0x22, 0x33, 0x44][..]));
        assert_eq!(attrib.params(), Some(&[0x00, 0x08, 0x01, 0x00][..]));
        assert_eq!((attrib.fsdi(), attrib.cid()), (Some(8), Some(0)));
        assert_eq!(attrib.higher_layer_inf(), &[] as &[u8]);
        // An ATTRIB command shorter than its fixed part.
        let mut bad = [0u8; 19];
        bad[..14].copy_from_slice(&LISTEN_B_ISO_DEP[..14]);
        bad[2] = 16;
        bad[13] = 5;
        bad[14] = 4;
        assert_eq!(
            Message::parse_packet(&bad, NciVersion::V1_0),
            Err(Error::BadValue)
        );
    }

    #[test]
    fn poll_a_iso_dep_activation() {
        let msg = roundtrip(&POLL_A_ISO_DEP);
        let Message::RfIntfActivatedNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(
            ntf.tech_params,
            RfTechParams::PollA(PollAParams {
                sens_res: [0x04, 0x00],
                nfcid1: &[0x08, 0x12, 0x34, 0x56],
                sel_res: Some(0x20),
                hrx: None,
            })
        );
        let ActivationParams::IsoDepPollA(ats) = ntf.activation_params else {
            panic!("{ntf:?}")
        };
        assert_eq!(ats.fsci(), Some(8));
        assert_eq!(
            (ats.ta(), ats.tb(), ats.tc()),
            (Some(0x80), Some(0x70), Some(0x02))
        );
        assert_eq!(ats.fwi(), Some(7));
        assert_eq!(ats.historical_bytes(), b"nfc");
        // NFCID1 of a length NFC-A does not have.
        let mut bad = POLL_A_ISO_DEP;
        bad[12] = 3;
        assert!(Message::parse_packet(&bad, NciVersion::V1_0).is_err());
    }

    #[test]
    fn poll_b_and_f_discovery() {
        // < RF_DISCOVER_NTF: id 1, ISO-DEP, poll B, SENSB_RES (11 octets), more to come
        let poll_b: [u8; 20] = [
            0x61, 0x03, 0x11, 0x01, 0x04, 0x01, 0x0C, 0x0B, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x81, 0x81, 0x02,
        ];
        let msg = roundtrip(&poll_b);
        let Message::RfDiscoverNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        let RfTechParams::PollB(b) = ntf.tech_params else {
            panic!("{ntf:?}")
        };
        assert_eq!(b.nfcid0(), Some(&[1, 2, 3, 4][..]));
        assert_eq!(b.protocol_info(), Some(&[0x00, 0x81, 0x81][..]));
        assert_eq!(ntf.notification_type, DiscoverNtfType::More);
        // < RF_DISCOVER_NTF: id 2, T3T, poll F 212 kbit/s, SENSF_RES (16 octets), last
        let mut poll_f = [0u8; 26];
        poll_f[..9].copy_from_slice(&[0x61, 0x03, 0x17, 0x02, 0x03, 0x02, 0x12, 0x01, 0x10]);
        poll_f[9..17].copy_from_slice(&[0x01, 0x2E, 0x3D, 0x4C, 0x5B, 0x6A, 0x79, 0x88]);
        let msg = roundtrip(&poll_f);
        let Message::RfDiscoverNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        let RfTechParams::PollF(f) = ntf.tech_params else {
            panic!("{ntf:?}")
        };
        assert_eq!(f.bit_rate, 1);
        assert_eq!(f.nfcid2(), Some(&poll_f[9..17]));
        // SENSF_RES of a length NFC-F does not have.
        let mut bad = poll_f;
        bad[8] = 0x0F;
        assert!(Message::parse_packet(&bad, NciVersion::V1_0).is_err());
    }

    #[test]
    fn listen_f_and_unknown_parameters_round_trip() {
        // Listen F with a local NFCID2; Frame interface so activation parameters stay raw.
        let listen_f: [u8; 24] = [
            0x61, 0x05, 0x15, 0x01, 0x01, 0x03, 0x82, 0xFF, 0x01, 0x09, 0x08, 0x02, 0xFE, 0x01,
            0x02, 0x03, 0x04, 0x05, 0x06, 0x82, 0x01, 0x01, 0x01, 0xAB,
        ];
        let msg = roundtrip(&listen_f);
        let Message::RfIntfActivatedNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(
            ntf.tech_params,
            RfTechParams::ListenF {
                local_nfcid2: Some(&[0x02, 0xFE, 1, 2, 3, 4, 5, 6])
            }
        );
        assert_eq!(ntf.activation_params, ActivationParams::Raw(&[0xAB]));
        // Listen A with unexpected parameters keeps them raw.
        let mut odd = LISTEN_A_ISO_DEP;
        odd[2] = 0x0D;
        let odd_packet = [&odd[..9], &[0x01, 0x55], &odd[10..]].concat();
        let msg = roundtrip(&odd_packet);
        let Message::RfIntfActivatedNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(ntf.tech_params, RfTechParams::Raw(&[0x55]));
    }

    #[test]
    fn deactivation_and_field_info() {
        let msg = roundtrip(&RF_DEACTIVATE_NTF);
        assert_eq!(
            msg,
            Message::RfDeactivateNtf(RfDeactivateNtf {
                deactivation_type: DeactivationType::Discovery,
                reason: DeactivationReason::RfLinkLoss,
            })
        );
        assert_eq!(
            msg.to_string(),
            "RF_DEACTIVATE_NTF type=DISCOVERY reason=RF_LINK_LOSS"
        );
        let msg = roundtrip(&RF_FIELD_INFO_NTF);
        let Message::RfFieldInfoNtf(ntf) = msg else {
            panic!("{msg:?}")
        };
        assert!(ntf.field_on());
        assert_eq!(msg.to_string(), "RF_FIELD_INFO_NTF field_on=true");
        let off = roundtrip(&[0x61, 0x07, 0x01, 0x00]);
        assert_eq!(off.to_string(), "RF_FIELD_INFO_NTF field_on=false");
        roundtrip(&[0x21, 0x06, 0x01, 0x00]); // RF_DEACTIVATE_CMD idle
        roundtrip(&[0x41, 0x06, 0x01, 0x00]); // RF_DEACTIVATE_RSP
        roundtrip(&[0x21, 0x04, 0x03, 0x01, 0x04, 0x02]); // RF_DISCOVER_SELECT_CMD
        roundtrip(&[0x41, 0x04, 0x01, 0x00]); // RF_DISCOVER_SELECT_RSP
        roundtrip(&[0x61, 0x09, 0x05, 0x02, 0x00, 0x02, 0xA0, 0x00]); // RF_NFCEE_ACTION_NTF
        roundtrip(&[0x61, 0x0A, 0x06, 0x01, 0x00, 0x03, 0x02, 0x01, 0x00]); // DISCOVERY_REQ
        assert_eq!(
            Message::parse_packet(&[0x61, 0x07, 0x02, 0x01, 0x00], NciVersion::V1_0),
            Err(Error::TrailingBytes)
        );
        assert_eq!(
            Message::parse_packet(&[0x61, 0x06, 0x01, 0x03], NciVersion::V1_0),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn unknown_rf_opcodes_are_errors() {
        // RF_T3T_POLLING has no layout here.
        assert_eq!(
            Message::parse_packet(&[0x21, 0x08, 0x00], NciVersion::V1_0),
            Err(Error::UnknownMessage)
        );
        assert_eq!(
            Message::parse_packet(&[0x61, 0x30, 0x00], NciVersion::V2_0),
            Err(Error::UnknownMessage)
        );
    }
}
