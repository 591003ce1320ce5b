//! The virtual NFC controller: a PN7150 (NCI 1.0) or a generic NCI 2.0 NFCC, sans-IO.
//!
//! What it does: answers the DH's commands the way a real controller does (start-up, NXP
//! proprietary extensions, configuration parameters with an EEPROM write counter, RF discovery
//! map, listen-mode routing with its capacity, discovery, deactivation, NFCEE discovery), runs
//! the RF state machine of NCI 1.0 §5.2 (RFST_IDLE, RFST_DISCOVERY, RFST_LISTEN_ACTIVE,
//! RFST_LISTEN_SLEEP), enforces the rules a real part enforces, and plays the card side of an
//! ISO-DEP link for a virtual reader (field, activation, APDUs, deactivation), with data flow
//! control by credits (NCI 1.0 §4.4).
//!
//! What it does not do: poll mode (no remote tags to discover), NFCEEs (it reports none),
//! applying the routing table (every ISO-DEP activation goes to the DH; the table is stored,
//! size-checked and returned), logical connections other than the static RF connection,
//! firmware download, power sub-states.
//!
//! Messages are encoded here by hand from the specification tables rather than with the
//! crate's own message codec, so that the simulation is an independent check of that codec.
//!
//! # Inputs and outputs
//!
//! Inputs: [`Nfcc::handle_packet`] (a whole NCI packet from the DH), [`Nfcc::handle_timeout`]
//! and the `reader_*` methods (the virtual reader's RF actions). Outputs:
//! [`Nfcc::poll_transmit`] (packets for the DH, each stamped with the time it became
//! available), [`Nfcc::poll_rf_event`] (what the reader receives), [`Nfcc::poll_timeout`] (when
//! to call `handle_timeout` next). Every input first runs whatever was due before its `now`.
//!
//! # Rules and the choices made where the specification leaves room
//!
//! - Before CORE_INIT every command but CORE_RESET_CMD and CORE_INIT_CMD is answered with
//!   its own response carrying `STATUS_NOT_INITIALIZED`. A second CORE_INIT_CMD without a
//!   reset, or a command not allowed in the current RF state, gets `STATUS_SEMANTIC_ERROR`;
//!   RF_DISCOVER_CMD during discovery gets `DISCOVERY_ALREADY_STARTED`.
//! - One command at a time (NCI 1.0 §4.2: the DH waits for the response before the next
//!   command). A command that arrives while the previous one's response has not been emitted
//!   yet (only possible with a non-zero [`NfccConfig::response_delay`]) is **ignored**: no
//!   response, counted in [`NfccStats::commands_ignored`]. This is what a DH sees from a busy
//!   controller; it must not rely on getting anything back.
//! - Unknown commands are answered with their own GID/OID and `STATUS_SYNTAX_ERROR`; packets
//!   that are not commands or data (a response or notification MT, a length field that
//!   disagrees with the packet) get CORE_GENERIC_ERROR_NTF(`STATUS_SYNTAX_ERROR`).
//! - A data packet the NFCC cannot take — no active RF connection, a connection other than the
//!   static RF connection, no credit left, or no C-APDU outstanding for the card to answer — is
//!   **discarded** and answered with CORE_INTERFACE_ERROR_NTF(`STATUS_REJECTED`, conn id).
//! - Listen-mode routing: entries from several RF_SET_LISTEN_MODE_ROUTING_CMD messages with
//!   More set are collected and replace the table when the last one (More = 0) arrives. When the
//!   collected entries exceed the capacity reported in CORE_INIT_RSP the command is answered
//!   `STATUS_MESSAGE_SIZE_EXCEEDED` and the partial table dropped; the old table stays. The
//!   PN7150 (NCI 1.0) refuses NCI 2.0 entry types and qualifiers with `STATUS_SYNTAX_ERROR`.
//!   Routing may be set in RFST_IDLE and RFST_DISCOVERY.
//! - CORE_SET_CONFIG_CMD sets every valid parameter and lists the others with
//!   `STATUS_INVALID_PARAM`; CORE_GET_CONFIG_CMD with an unknown parameter answers
//!   `STATUS_INVALID_PARAM` listing those with length 0 (NCI 1.0 §4.3).
//! - PN7150 NXP parameters `A0 xx` are kept in "EEPROM": they survive CORE_RESET, and every
//!   write of one counts in [`Nfcc::eeprom_writes`], whether or not the value changed, so tests
//!   can prove a DH writes only what differs.
//! - Credits: the static RF connection starts with 1 credit; each data packet from the DH uses
//!   one; it comes back with CORE_CONN_CREDITS_NTF once that packet has been sent over RF
//!   (after [`RfTiming`] if configured). The NCI 2.0 profile may instead carry returned credits
//!   in the CR field of a data packet it is sending to the DH anyway
//!   (see [`NfccConfig::credit_ntf_holdoff`]).

use std::collections::{BTreeMap, VecDeque};
use std::vec::Vec;

use super::bus::round_up_to_micros;
use super::rf::RfTiming;
use crate::time::{Duration, Instant};
use crate::wire::routing::{RoutingEntries, RoutingEntryRepr, RoutingEntryType, RoutingMessage};
use crate::wire::segment::{Reassembler, ReassemblyError, Segmenter};
use crate::wire::{
    ConfigStatus, DeactivationReason, DeactivationType, Gid, HeaderRepr, MessageType, NciVersion,
    Packet, PacketId, ResetTrigger, RfInterface, RfProtocol, RfTechMode, RfTechnology, Status,
};

// Opcodes (NCI 1.0 Table 102, NCI 2.0 Table 149; NXP proprietary from UM10936).
const CORE_RESET: u8 = 0x00;
const CORE_INIT: u8 = 0x01;
const CORE_SET_CONFIG: u8 = 0x02;
const CORE_GET_CONFIG: u8 = 0x03;
const CORE_CONN_CREDITS: u8 = 0x06;
const CORE_GENERIC_ERROR: u8 = 0x07;
const CORE_INTERFACE_ERROR: u8 = 0x08;
const RF_DISCOVER_MAP: u8 = 0x00;
const RF_SET_LISTEN_MODE_ROUTING: u8 = 0x01;
const RF_GET_LISTEN_MODE_ROUTING: u8 = 0x02;
const RF_DISCOVER: u8 = 0x03;
const RF_INTF_ACTIVATED: u8 = 0x05;
const RF_DEACTIVATE: u8 = 0x06;
const RF_FIELD_INFO: u8 = 0x07;
const NFCEE_DISCOVER: u8 = 0x00;
const NXP_STANDBY: u8 = 0x00;
const NXP_PROPRIETARY_ACT: u8 = 0x02;

/// Configuration parameter RF_FIELD_INFO (NCI 1.0 Table 101): 1 enables RF_FIELD_INFO_NTF.
pub const PARAM_RF_FIELD_INFO: u16 = 0x80;
/// First octet of the PN7150's two-octet proprietary parameter identifiers (`A0 xx`).
pub const NXP_PARAM_PREFIX: u8 = 0xA0;
/// Largest message the NFCC reassembles from the DH: the NCI maximum data message (an
/// extended-length R-APDU), which also covers any control message.
pub const RX_CAPACITY: usize = 65_544;

/// PN7150 CORE_RESET_RSP after a reset with RESET_CONFIGURATION: status OK, NCI 1.0,
/// configuration reset.
pub const PN7150_CORE_RESET_RSP: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x10, 0x01];

/// PN7150 CORE_INIT_RSP (NCI 1.0 Table 10): status OK; NFCC features 03 1E 03 00; eight RF
/// interfaces (NFCEE direct, frame, ISO-DEP, NFC-DEP, NXP 0x80–0x83); 2 logical connections;
/// routing table 720 octets; control payload 255; large parameters 2; manufacturer NXP (0x04)
/// with 4 octets of hardware/firmware version.
pub const PN7150_CORE_INIT_RSP: [u8; 28] = [
    0x40, 0x01, 0x19, 0x00, 0x03, 0x1E, 0x03, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82,
    0x83, 0x02, 0xD0, 0x02, 0xFF, 0x02, 0x00, 0x04, 0x88, 0x10, 0x01, 0xA0,
];

/// PN7150 answer to the NXP proprietary activation `2F 02 00`: status OK and four octets of
/// firmware build information, opaque to the DH.
pub const PN7150_PROPRIETARY_ACT_RSP: [u8; 8] = [0x4F, 0x02, 0x05, 0x00, 0x00, 0x01, 0x10, 0xA0];

/// RF_INTF_ACTIVATED_NTF for a listen-A ISO-DEP activation (NCI 1.0 Table 61): discovery id 1,
/// ISO-DEP interface, ISO-DEP protocol, NFC-A passive listen, max data payload 255, 1 credit,
/// no technology parameters, data exchange in NFC-A listen at 106 kbit/s both ways, activation
/// parameter RATS byte 2 = `80` (FSDI 8: the reader takes 256-octet frames, CID 0).
pub const RF_INTF_ACTIVATED_NTF_LISTEN_A: [u8; 15] = [
    0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
];

/// Which controller is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// NXP PN7150 (NCI 1.0, PN7150 user manual UM10936).
    Pn7150,
    /// A generic NCI 2.0 controller: status-only CORE_RESET_RSP followed by CORE_RESET_NTF,
    /// NCI 2.0 CORE_INIT layouts, AID prefix/subset routing, no NXP extensions.
    Nci2,
}

impl Profile {
    /// The NCI version the controller reports.
    pub fn nci_version(self) -> NciVersion {
        match self {
            Profile::Pn7150 => NciVersion::V1_0,
            Profile::Nci2 => NciVersion::V2_0,
        }
    }

    /// "Max Routing Table Size" of CORE_INIT_RSP, octets of routing entries.
    pub fn max_routing_table_size(self) -> usize {
        match self {
            Profile::Pn7150 => 720,
            Profile::Nci2 => 1024,
        }
    }

    /// "Max Control Packet Payload Size" of CORE_INIT_RSP.
    pub fn max_control_payload(self) -> u8 {
        255
    }

    /// "Max Data Packet Payload Size" of RF_INTF_ACTIVATED_NTF.
    pub fn max_data_payload(self) -> u8 {
        255
    }

    /// "Initial Number of Credits" of RF_INTF_ACTIVATED_NTF.
    pub fn initial_credits(self) -> u8 {
        1
    }

    /// Manufacturer ID reported at start-up (0x04 NXP; 0x00 for the generic controller).
    pub fn manufacturer_id(self) -> u8 {
        match self {
            Profile::Pn7150 => 0x04,
            Profile::Nci2 => 0x00,
        }
    }
}

/// How the virtual NFCC behaves in time and in the few places profiles allow a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfccConfig {
    /// The controller simulated.
    pub profile: Profile,
    /// Time between a command arriving and its response being available. Zero by default:
    /// controller processing time is not modelled unless set.
    pub response_delay: Duration,
    /// ISO-DEP over-the-air timing for the reader side; `None` makes RF transfers instant.
    pub rf_timing: Option<RfTiming>,
    /// NCI 2.0 only: how long a returned credit waits for a data packet to the DH that could
    /// carry it in its CR field before a CORE_CONN_CREDITS_NTF is sent instead. Zero (the
    /// default) carries credits in the CR field only when such a packet leaves at that very
    /// instant.
    pub credit_ntf_holdoff: Duration,
    /// NFCID0 reported in the ATTRIB command of a listen-B activation.
    pub nfcid0: [u8; 4],
}

impl NfccConfig {
    /// A PN7150 with instant processing and instant RF.
    pub fn pn7150() -> NfccConfig {
        NfccConfig::new(Profile::Pn7150)
    }

    /// A generic NCI 2.0 controller with instant processing and instant RF.
    pub fn nci2() -> NfccConfig {
        NfccConfig::new(Profile::Nci2)
    }

    /// Defaults for `profile`.
    pub fn new(profile: Profile) -> NfccConfig {
        NfccConfig {
            profile,
            response_delay: Duration::ZERO,
            rf_timing: None,
            credit_ntf_holdoff: Duration::ZERO,
            nfcid0: [0x08, 0x4E, 0x43, 0x49],
        }
    }
}

/// RF communication states of the NFCC (NCI 1.0 §5.2, listen side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RfState {
    /// RFST_IDLE: no discovery.
    Idle,
    /// RFST_DISCOVERY: polling and/or listening as RF_DISCOVER_CMD asked.
    Discovery,
    /// RFST_LISTEN_ACTIVE: a remote reader activated the emulated card.
    ListenActive,
    /// RFST_LISTEN_SLEEP: the reader put the card to sleep (DESELECT); it may wake it again.
    ListenSleep,
}

/// A packet for the DH, stamped with the simulated time it became available (for a real
/// controller: when it raised its IRQ line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// When the packet became available.
    pub at: Instant,
    /// The whole NCI packet.
    pub bytes: Vec<u8>,
}

/// What the virtual reader receives from the emulated card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RfEvent {
    /// The whole R-APDU arrived over the air at `at`.
    Response {
        /// When its last bit arrived.
        at: Instant,
        /// The R-APDU, status word included.
        apdu: Vec<u8>,
    },
    /// The ISO-DEP link ended at `at` (whoever caused it).
    Deactivated {
        /// When.
        at: Instant,
        /// The reason given to the DH in RF_DEACTIVATE_NTF.
        reason: DeactivationReason,
    },
}

/// Why the NFCC refused a reader action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RfError {
    /// The reader's field is off.
    FieldOff,
    /// Only NFC-A and NFC-B ISO-DEP cards are emulated.
    UnsupportedTechnology(RfTechnology),
    /// The NFCC is not in RFST_DISCOVERY (or RFST_LISTEN_SLEEP): nothing to activate.
    NotDiscovering,
    /// Discovery runs but not in the listen mode of this technology.
    NotListening(RfTechnology),
    /// RF_DISCOVER_MAP_CMD did not map ISO-DEP to the ISO-DEP interface in listen mode.
    IsoDepNotMapped,
    /// The card is already active.
    AlreadyActive,
    /// No ISO-DEP link is active.
    NotActive,
    /// The card has not answered the previous C-APDU yet (ISO-DEP is half duplex).
    Busy,
    /// An empty C-APDU.
    EmptyApdu,
}

impl core::fmt::Display for RfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RfError::FieldOff => f.write_str("reader field is off"),
            RfError::UnsupportedTechnology(t) => write!(f, "{t} is not emulated"),
            RfError::NotDiscovering => f.write_str("NFCC is not discovering"),
            RfError::NotListening(t) => write!(f, "NFCC is not listening in {t}"),
            RfError::IsoDepNotMapped => f.write_str("ISO-DEP is not mapped for listen mode"),
            RfError::AlreadyActive => f.write_str("card already active"),
            RfError::NotActive => f.write_str("no active ISO-DEP link"),
            RfError::Busy => f.write_str("previous C-APDU not answered yet"),
            RfError::EmptyApdu => f.write_str("empty C-APDU"),
        }
    }
}

impl std::error::Error for RfError {}

/// Counters a test can assert on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NfccStats {
    /// Commands answered.
    pub commands: u64,
    /// Commands ignored because the previous one was still being processed.
    pub commands_ignored: u64,
    /// Data packets accepted from the DH.
    pub data_packets: u64,
    /// Data packets discarded (CORE_INTERFACE_ERROR_NTF sent).
    pub data_packets_rejected: u64,
    /// Packets that were neither a command nor data, or malformed.
    pub malformed_packets: u64,
    /// Writes of non-volatile (NXP `A0 xx`) parameters.
    pub eeprom_writes: u64,
    /// CORE_CONN_CREDITS_NTF sent.
    pub credit_ntfs: u64,
    /// Credits returned in the CR field of data packets (NCI 2.0).
    pub credits_in_data_headers: u64,
}

/// The interface every simulated controller offers to the harness and the virtual reader:
/// the [`Nfcc`] itself and wrappers around it such as
/// [`FaultInjector`](super::fault::FaultInjector).
pub trait NfccEndpoint {
    /// A whole NCI packet from the DH arrived at `now`.
    fn handle_packet(&mut self, packet: &[u8], now: Instant);
    /// Time advanced to `now`; run what is due.
    fn handle_timeout(&mut self, now: Instant);
    /// The next packet for the DH.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When `handle_timeout` should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The reader switched its field on or off.
    fn reader_field(&mut self, on: bool, now: Instant);
    /// The reader activated the emulated card in `technology` (ISO/IEC 14443-3 anticollision
    /// and RATS/ATTRIB done).
    fn reader_activate(&mut self, technology: RfTechnology, now: Instant) -> Result<(), RfError>;
    /// The reader sent a C-APDU.
    fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError>;
    /// The link ended on the reader's side: `EndpointRequest` for a DESELECT, `RfLinkLoss`
    /// when the card left the field.
    fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError>;
    /// The next thing the reader receives.
    fn poll_rf_event(&mut self) -> Option<RfEvent>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CoreState {
    /// Reset (power-on or CORE_RESET_CMD), waiting for CORE_INIT_CMD.
    Reset,
    /// CORE_INIT done.
    Initialized,
}

#[derive(Debug)]
enum Action {
    /// Hand a packet to the DH.
    Emit(Vec<u8>),
    /// The reader's C-APDU has arrived over the air: forward it to the DH.
    ForwardToDh { epoch: u32, apdu: Vec<u8> },
    /// A data packet from the DH has been sent over the air; `last` ends the R-APDU.
    RfTxDone { epoch: u32, last: bool },
    /// Return owed credits with CORE_CONN_CREDITS_NTF if no data packet carried them.
    FlushCredits { epoch: u32 },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    action: Action,
}

/// The active static RF connection of an ISO-DEP listen activation.
#[derive(Debug)]
struct Conn {
    technology: RfTechnology,
    /// Credits the DH holds.
    dh_credits: u8,
    /// Credits earned back but not yet given to the DH.
    owed: u8,
    /// A C-APDU went to the DH and its R-APDU is not complete yet.
    awaiting_response: bool,
    /// The R-APDU, once its last packet arrived, until it is sent over the air.
    response: Option<Vec<u8>>,
}

/// The virtual NFCC. See the module documentation for its rules.
#[derive(Debug)]
pub struct Nfcc {
    config: NfccConfig,
    core: CoreState,
    rf: RfState,
    /// Response of the command being processed not emitted before this instant.
    busy_until: Option<Instant>,
    scheduled: Vec<Scheduled>,
    seq: u64,
    out: VecDeque<Transmit>,
    rf_out: VecDeque<RfEvent>,
    rx: Box<Reassembler<RX_CAPACITY, 1>>,
    /// Volatile NCI parameters.
    params: BTreeMap<u16, Vec<u8>>,
    /// Non-volatile NXP parameters (`A0 xx`).
    eeprom: BTreeMap<u16, Vec<u8>>,
    discover_map: Vec<[u8; 3]>,
    discover_modes: Vec<RfTechMode>,
    routing: Vec<u8>,
    routing_staged: Vec<u8>,
    field: bool,
    conn: Option<Conn>,
    /// Bumped whenever an RF connection opens or closes; stale RF work is dropped by it.
    epoch: u32,
    rf_free_at: Instant,
    standby: bool,
    stats: NfccStats,
}

impl NfccEndpoint for Nfcc {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        Nfcc::handle_packet(self, packet, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Nfcc::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Nfcc::poll_transmit(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Nfcc::poll_timeout(self)
    }
    fn reader_field(&mut self, on: bool, now: Instant) {
        Nfcc::reader_field(self, on, now)
    }
    fn reader_activate(&mut self, technology: RfTechnology, now: Instant) -> Result<(), RfError> {
        Nfcc::reader_activate(self, technology, now)
    }
    fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError> {
        Nfcc::reader_send_apdu(self, apdu, now)
    }
    fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError> {
        Nfcc::reader_deactivate(self, reason, now)
    }
    fn poll_rf_event(&mut self) -> Option<RfEvent> {
        Nfcc::poll_rf_event(self)
    }
}

impl Nfcc {
    /// A powered controller in its reset state, waiting for CORE_INIT_CMD (or CORE_RESET_CMD).
    pub fn new(config: NfccConfig) -> Nfcc {
        Nfcc {
            config,
            core: CoreState::Reset,
            rf: RfState::Idle,
            busy_until: None,
            scheduled: Vec::new(),
            seq: 0,
            out: VecDeque::new(),
            rf_out: VecDeque::new(),
            rx: Box::new(Reassembler::new()),
            params: BTreeMap::new(),
            eeprom: BTreeMap::new(),
            discover_map: Vec::new(),
            discover_modes: Vec::new(),
            routing: Vec::new(),
            routing_staged: Vec::new(),
            field: false,
            conn: None,
            epoch: 0,
            rf_free_at: Instant::ZERO,
            standby: false,
            stats: NfccStats::default(),
        }
    }

    /// A PN7150 with default timing.
    pub fn pn7150() -> Nfcc {
        Nfcc::new(NfccConfig::pn7150())
    }

    /// A generic NCI 2.0 controller with default timing.
    pub fn nci2() -> Nfcc {
        Nfcc::new(NfccConfig::nci2())
    }

    /// The configuration.
    pub fn config(&self) -> &NfccConfig {
        &self.config
    }

    /// Power-on (VEN high). An NCI 2.0 controller announces itself with CORE_RESET_NTF
    /// (trigger POWERED_ON, NCI 2.0 §4.1); the PN7150 (NCI 1.0) stays silent until the DH
    /// sends CORE_RESET_CMD. Resets everything volatile.
    pub fn power_on(&mut self, now: Instant) {
        self.run_due(now);
        self.reset_state(true);
        if self.config.profile == Profile::Nci2 {
            let ntf = self.core_reset_ntf(ResetTrigger::PoweredOn, ConfigStatus::Reset);
            self.schedule_control(now, MessageType::Notification, Gid::Core, CORE_RESET, &ntf);
        }
        self.run_due(now);
    }

    /// `true` once CORE_INIT succeeded (until the next reset).
    pub fn is_initialized(&self) -> bool {
        self.core == CoreState::Initialized
    }

    /// The RF state.
    pub fn rf_state(&self) -> RfState {
        self.rf
    }

    /// Whether the reader's field is on.
    pub fn field(&self) -> bool {
        self.field
    }

    /// Whether the NXP standby mode was enabled with `2F 00 01 01`.
    pub fn standby_enabled(&self) -> bool {
        self.standby
    }

    /// Counters.
    pub fn stats(&self) -> &NfccStats {
        &self.stats
    }

    /// Writes of non-volatile NXP parameters so far.
    pub fn eeprom_writes(&self) -> u64 {
        self.stats.eeprom_writes
    }

    /// Preload a non-volatile NXP parameter (`0xA0xx`) as it would come from the factory,
    /// without counting a write. Values are cut to 255 octets, the most a parameter TLV holds.
    pub fn preset_eeprom(&mut self, id: u16, value: &[u8]) {
        let value = value.get(..255).unwrap_or(value);
        self.eeprom.insert(id, value.to_vec());
    }

    /// The stored value of a parameter: NCI ids `0x00..=0xFF`, NXP ids `0xA0xx`.
    pub fn config_param(&self, id: u16) -> Option<&[u8]> {
        if is_nxp_id(id) {
            self.eeprom.get(&id).map(Vec::as_slice)
        } else {
            self.params.get(&id).map(Vec::as_slice)
        }
    }

    /// The committed listen-mode routing table, as encoded entries.
    pub fn routing_table(&self) -> &[u8] {
        &self.routing
    }

    /// The committed routing entries.
    pub fn routing_entries(&self) -> RoutingEntries<'_> {
        RoutingEntries::new(&self.routing)
    }

    /// The RF technologies and modes of the running (or last) discovery.
    pub fn discovery_modes(&self) -> &[RfTechMode] {
        &self.discover_modes
    }

    /// Credits the DH holds on the active static RF connection.
    pub fn dh_credits(&self) -> Option<u8> {
        self.conn.as_ref().map(|c| c.dh_credits)
    }

    /// The next packet for the DH.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event for the reader.
    pub fn poll_rf_event(&mut self) -> Option<RfEvent> {
        self.rf_out.pop_front()
    }

    /// When something is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.scheduled.first().map(|s| s.at)
    }

    /// Run everything due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_due(now);
    }

    /// A whole NCI packet from the DH.
    pub fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.run_due(now);
        self.receive(packet, now);
        self.run_due(now);
    }

    fn receive(&mut self, packet: &[u8], now: Instant) {
        let header = match Packet::new_checked(packet).and_then(|p| HeaderRepr::parse(&p)) {
            Ok(header) => header,
            Err(_) => return self.generic_error(now, Status::SyntaxError),
        };
        match (header.mt, header.id) {
            (MessageType::Data, PacketId::Data { conn_id, .. }) => self.receive_data(
                packet,
                conn_id,
                header.pbf,
                usize::from(header.payload_len),
                now,
            ),
            (MessageType::Command, PacketId::Control { .. }) => {
                let message = match self.rx.push(packet) {
                    Ok(Some(m)) => Some((m.id, m.payload.to_vec())),
                    Ok(None) => None,
                    Err(ReassemblyError::Interleaved) => match self.rx.push(packet) {
                        Ok(Some(m)) => Some((m.id, m.payload.to_vec())),
                        Ok(None) => None,
                        Err(_) => return self.generic_error(now, Status::SyntaxError),
                    },
                    Err(ReassemblyError::Capacity) => {
                        return self.generic_error(now, Status::MessageSizeExceeded)
                    }
                    Err(ReassemblyError::Malformed(_)) => {
                        return self.generic_error(now, Status::SyntaxError)
                    }
                };
                if let Some((PacketId::Control { gid, oid }, payload)) = message {
                    self.receive_command(gid, oid, &payload, now);
                }
            }
            _ => self.generic_error(now, Status::SyntaxError),
        }
    }

    fn receive_command(&mut self, gid: Gid, oid: u8, payload: &[u8], now: Instant) {
        if self.busy_until.is_some_and(|until| now < until) {
            self.stats.commands_ignored += 1;
            return;
        }
        self.stats.commands += 1;
        let at = now + self.config.response_delay;
        self.busy_until = Some(at);
        let allowed_uninitialized = gid == Gid::Core && matches!(oid, CORE_RESET | CORE_INIT);
        if self.core != CoreState::Initialized && !allowed_uninitialized {
            return self.respond(at, gid, oid, &[u8::from(Status::NotInitialized)]);
        }
        let pn7150 = self.config.profile == Profile::Pn7150;
        match (gid, oid) {
            (Gid::Core, CORE_RESET) => self.core_reset(at, payload),
            (Gid::Core, CORE_INIT) => self.core_init(at, payload),
            (Gid::Core, CORE_SET_CONFIG) => self.core_set_config(at, payload),
            (Gid::Core, CORE_GET_CONFIG) => self.core_get_config(at, payload),
            (Gid::Rf, RF_DISCOVER_MAP) => self.rf_discover_map(at, payload),
            (Gid::Rf, RF_SET_LISTEN_MODE_ROUTING) => self.rf_set_routing(at, payload),
            (Gid::Rf, RF_GET_LISTEN_MODE_ROUTING) => self.rf_get_routing(at, payload),
            (Gid::Rf, RF_DISCOVER) => self.rf_discover(at, payload),
            (Gid::Rf, RF_DEACTIVATE) => self.rf_deactivate(at, payload),
            (Gid::Nfcee, NFCEE_DISCOVER) => self.nfcee_discover(at, payload),
            (Gid::Proprietary, NXP_STANDBY) if pn7150 => self.nxp_standby(at, payload),
            (Gid::Proprietary, NXP_PROPRIETARY_ACT) if pn7150 => {
                if payload.is_empty() {
                    self.respond(at, gid, oid, &PN7150_PROPRIETARY_ACT_RSP[3..]);
                } else {
                    self.respond_status(at, gid, oid, Status::SyntaxError);
                }
            }
            _ => self.respond_status(at, gid, oid, Status::SyntaxError),
        }
    }

    // ---- CORE -------------------------------------------------------------------------------

    fn core_reset(&mut self, at: Instant, payload: &[u8]) {
        let reset_config = match payload {
            [0x00] => false,
            [0x01] => true,
            _ => return self.respond_status(at, Gid::Core, CORE_RESET, Status::SyntaxError),
        };
        self.reset_state(reset_config);
        let config_status = if reset_config {
            ConfigStatus::Reset
        } else {
            ConfigStatus::Kept
        };
        match self.config.profile {
            Profile::Pn7150 => {
                let version = self.config.profile.nci_version().0;
                let rsp = [u8::from(Status::Ok), version, u8::from(config_status)];
                self.respond(at, Gid::Core, CORE_RESET, &rsp);
            }
            Profile::Nci2 => {
                self.respond_status(at, Gid::Core, CORE_RESET, Status::Ok);
                let ntf = self.core_reset_ntf(ResetTrigger::ResetCommand, config_status);
                self.schedule_control(at, MessageType::Notification, Gid::Core, CORE_RESET, &ntf);
            }
        }
    }

    /// NCI 2.0 CORE_RESET_NTF payload (NCI 2.0 Table 9): trigger, configuration status, NCI
    /// version, manufacturer ID, manufacturer-specific information (4 octets).
    fn core_reset_ntf(&self, trigger: ResetTrigger, config_status: ConfigStatus) -> Vec<u8> {
        let profile = self.config.profile;
        vec![
            u8::from(trigger),
            u8::from(config_status),
            profile.nci_version().0,
            profile.manufacturer_id(),
            0x04,
            0x00,
            0x00,
            0x00,
            0x00,
        ]
    }

    fn reset_state(&mut self, reset_config: bool) {
        self.core = CoreState::Reset;
        self.rf = RfState::Idle;
        self.close_connection();
        self.discover_map.clear();
        self.discover_modes.clear();
        self.routing_staged.clear();
        self.standby = false;
        if reset_config {
            self.params.clear();
            self.routing.clear();
        }
    }

    fn core_init(&mut self, at: Instant, payload: &[u8]) {
        if self.core == CoreState::Initialized {
            return self.respond_status(at, Gid::Core, CORE_INIT, Status::SemanticError);
        }
        match self.config.profile {
            Profile::Pn7150 => {
                // NCI 1.0 CORE_INIT_CMD has no payload.
                if !payload.is_empty() {
                    return self.respond_status(at, Gid::Core, CORE_INIT, Status::SyntaxError);
                }
                self.core = CoreState::Initialized;
                self.respond(at, Gid::Core, CORE_INIT, &PN7150_CORE_INIT_RSP[3..]);
            }
            Profile::Nci2 => {
                // NCI 2.0 CORE_INIT_CMD: Feature Enable, 2 octets.
                if payload.len() != 2 {
                    return self.respond_status(at, Gid::Core, CORE_INIT, Status::SyntaxError);
                }
                self.core = CoreState::Initialized;
                let rsp = self.nci2_init_rsp();
                self.respond(at, Gid::Core, CORE_INIT, &rsp);
            }
        }
    }

    /// NCI 2.0 CORE_INIT_RSP payload (NCI 2.0 Table 10).
    fn nci2_init_rsp(&self) -> Vec<u8> {
        let profile = self.config.profile;
        let routing = u16::try_from(profile.max_routing_table_size())
            .unwrap_or(u16::MAX)
            .to_le_bytes();
        let mut rsp = vec![
            u8::from(Status::Ok),
            // NFCC features: discovery frequency and configuration; technology, protocol,
            // AID and system-code routing; switched-off and battery-off states.
            0x03,
            0x1E,
            0x03,
            0x00,
            // Max logical connections.
            0x02,
            routing[0],
            routing[1],
            profile.max_control_payload(),
            // Static HCI connection: max data payload and credits.
            0xFF,
            0x01,
            // Max NFC-V RF frame size, 256.
            0x00,
            0x01,
        ];
        // Supported RF interfaces, each with no extension.
        let interfaces = [
            RfInterface::NfceeDirect,
            RfInterface::Frame,
            RfInterface::IsoDep,
            RfInterface::NfcDep,
        ];
        rsp.push(interfaces.len() as u8);
        for interface in interfaces {
            rsp.extend_from_slice(&[u8::from(interface), 0x00]);
        }
        rsp
    }

    /// Parse the parameter list of CORE_SET_CONFIG_CMD / CORE_GET_CONFIG_CMD identifiers.
    /// The PN7150 uses two-octet identifiers `A0 xx` for its proprietary parameters.
    fn split_param_id<'a>(&self, bytes: &'a [u8]) -> Option<(u16, &'a [u8])> {
        let (&first, rest) = bytes.split_first()?;
        if first == NXP_PARAM_PREFIX && self.config.profile == Profile::Pn7150 {
            let (&second, rest) = rest.split_first()?;
            Some((u16::from_be_bytes([first, second]), rest))
        } else {
            Some((u16::from(first), rest))
        }
    }

    fn is_known_param(&self, id: u16) -> bool {
        if is_nxp_id(id) {
            return self.config.profile == Profile::Pn7150;
        }
        let Ok(id) = u8::try_from(id) else {
            return false;
        };
        KNOWN_NCI1_PARAMS.contains(&id)
            || (self.config.profile == Profile::Nci2 && KNOWN_NCI2_PARAMS.contains(&id))
    }

    fn core_set_config(&mut self, at: Instant, payload: &[u8]) {
        let syntax_error = [u8::from(Status::SyntaxError), 0];
        let Some((&count, mut rest)) = payload.split_first() else {
            return self.respond(at, Gid::Core, CORE_SET_CONFIG, &syntax_error);
        };
        let mut values = Vec::new();
        for _ in 0..count {
            let Some((id, after_id)) = self.split_param_id(rest) else {
                return self.respond(at, Gid::Core, CORE_SET_CONFIG, &syntax_error);
            };
            let Some((&len, after_len)) = after_id.split_first() else {
                return self.respond(at, Gid::Core, CORE_SET_CONFIG, &syntax_error);
            };
            let Some((value, after_value)) = split_at_checked(after_len, usize::from(len)) else {
                return self.respond(at, Gid::Core, CORE_SET_CONFIG, &syntax_error);
            };
            values.push((id, value));
            rest = after_value;
        }
        if !rest.is_empty() {
            return self.respond(at, Gid::Core, CORE_SET_CONFIG, &syntax_error);
        }
        let mut invalid = Vec::new();
        let mut invalid_count = 0u8;
        for (id, value) in values {
            if !self.is_known_param(id) {
                push_param_id(&mut invalid, id);
                invalid_count = invalid_count.saturating_add(1);
                continue;
            }
            if is_nxp_id(id) {
                self.stats.eeprom_writes += 1;
                self.eeprom.insert(id, value.to_vec());
            } else {
                self.params.insert(id, value.to_vec());
            }
        }
        let status = if invalid.is_empty() {
            Status::Ok
        } else {
            Status::InvalidParam
        };
        let mut rsp = vec![u8::from(status), invalid_count];
        rsp.extend_from_slice(&invalid);
        self.respond(at, Gid::Core, CORE_SET_CONFIG, &rsp);
    }

    fn core_get_config(&mut self, at: Instant, payload: &[u8]) {
        let syntax_error = [u8::from(Status::SyntaxError), 0];
        let Some((&count, mut rest)) = payload.split_first() else {
            return self.respond(at, Gid::Core, CORE_GET_CONFIG, &syntax_error);
        };
        let mut ids = Vec::new();
        for _ in 0..count {
            let Some((id, after)) = self.split_param_id(rest) else {
                return self.respond(at, Gid::Core, CORE_GET_CONFIG, &syntax_error);
            };
            ids.push(id);
            rest = after;
        }
        if !rest.is_empty() {
            return self.respond(at, Gid::Core, CORE_GET_CONFIG, &syntax_error);
        }
        let invalid: Vec<u16> = ids
            .iter()
            .copied()
            .filter(|&id| !self.is_known_param(id))
            .collect();
        let mut rsp = Vec::new();
        if invalid.is_empty() {
            rsp.push(u8::from(Status::Ok));
            rsp.push(count);
            for id in ids {
                let value = self.param_value(id);
                push_param_id(&mut rsp, id);
                // Stored values came from a one-octet length field.
                rsp.push(value.len() as u8);
                rsp.extend_from_slice(&value);
            }
        } else {
            rsp.push(u8::from(Status::InvalidParam));
            rsp.push(invalid.len() as u8);
            for id in invalid {
                push_param_id(&mut rsp, id);
                rsp.push(0);
            }
        }
        self.respond(at, Gid::Core, CORE_GET_CONFIG, &rsp);
    }

    /// A parameter's current value: the stored one, the specification default where this
    /// model knows it, else empty.
    fn param_value(&self, id: u16) -> Vec<u8> {
        if let Some(value) = self.config_param(id) {
            return value.to_vec();
        }
        match id {
            // RF_FIELD_INFO defaults to disabled (NCI 1.0 Table 101).
            PARAM_RF_FIELD_INFO => vec![0x00],
            _ => Vec::new(),
        }
    }

    fn field_info_enabled(&self) -> bool {
        self.params.get(&PARAM_RF_FIELD_INFO).map(Vec::as_slice) == Some(&[0x01])
    }

    // ---- RF management ----------------------------------------------------------------------

    fn rf_discover_map(&mut self, at: Instant, payload: &[u8]) {
        if self.rf != RfState::Idle {
            return self.respond_status(at, Gid::Rf, RF_DISCOVER_MAP, Status::SemanticError);
        }
        let Some((&count, entries)) = payload.split_first() else {
            return self.respond_status(at, Gid::Rf, RF_DISCOVER_MAP, Status::SyntaxError);
        };
        if entries.len() != usize::from(count) * 3 {
            return self.respond_status(at, Gid::Rf, RF_DISCOVER_MAP, Status::SyntaxError);
        }
        self.discover_map = entries
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        self.respond_status(at, Gid::Rf, RF_DISCOVER_MAP, Status::Ok);
    }

    fn rf_set_routing(&mut self, at: Instant, payload: &[u8]) {
        if !matches!(self.rf, RfState::Idle | RfState::Discovery) {
            return self.respond_status(
                at,
                Gid::Rf,
                RF_SET_LISTEN_MODE_ROUTING,
                Status::SemanticError,
            );
        }
        let message = match RoutingMessage::parse(payload) {
            Ok(message) => message,
            Err(_) => {
                self.routing_staged.clear();
                return self.respond_status(
                    at,
                    Gid::Rf,
                    RF_SET_LISTEN_MODE_ROUTING,
                    Status::SyntaxError,
                );
            }
        };
        if self.config.profile == Profile::Pn7150
            && message.iter().any(|e| !nci1_entry(e.as_ref().ok()))
        {
            self.routing_staged.clear();
            return self.respond_status(
                at,
                Gid::Rf,
                RF_SET_LISTEN_MODE_ROUTING,
                Status::SyntaxError,
            );
        }
        let total = self.routing_staged.len() + message.entries.len();
        if total > self.config.profile.max_routing_table_size() {
            self.routing_staged.clear();
            return self.respond_status(
                at,
                Gid::Rf,
                RF_SET_LISTEN_MODE_ROUTING,
                Status::MessageSizeExceeded,
            );
        }
        self.routing_staged.extend_from_slice(message.entries);
        if !message.more {
            self.routing = core::mem::take(&mut self.routing_staged);
        }
        self.respond_status(at, Gid::Rf, RF_SET_LISTEN_MODE_ROUTING, Status::Ok);
    }

    fn rf_get_routing(&mut self, at: Instant, payload: &[u8]) {
        if !payload.is_empty() {
            return self.respond_status(
                at,
                Gid::Rf,
                RF_GET_LISTEN_MODE_ROUTING,
                Status::SyntaxError,
            );
        }
        self.respond_status(at, Gid::Rf, RF_GET_LISTEN_MODE_ROUTING, Status::Ok);
        // Entries go out in as many notifications as the control payload limit needs, split
        // at entry boundaries, More = 1 on all but the last (NCI 1.0 §6.3.3).
        let room = usize::from(self.config.profile.max_control_payload()) - 2;
        let mut messages: Vec<(u8, Vec<u8>)> = vec![(0, Vec::new())];
        let mut rest: &[u8] = &self.routing;
        while !rest.is_empty() {
            let Ok((entry, after)) = RoutingEntryRepr::parse_first(rest) else {
                break;
            };
            let len = entry.buffer_len();
            let fits = messages
                .last()
                .is_some_and(|(_, bytes)| bytes.len() + len <= room);
            if !fits {
                messages.push((0, Vec::new()));
            }
            if let Some((count, bytes)) = messages.last_mut() {
                *count += 1;
                bytes.extend_from_slice(rest.get(..len).unwrap_or_default());
            }
            rest = after;
        }
        let last = messages.len() - 1;
        for (i, (count, entries)) in messages.into_iter().enumerate() {
            let mut ntf = vec![u8::from(i != last), count];
            ntf.extend_from_slice(&entries);
            self.schedule_control(
                at,
                MessageType::Notification,
                Gid::Rf,
                RF_GET_LISTEN_MODE_ROUTING,
                &ntf,
            );
        }
    }

    fn rf_discover(&mut self, at: Instant, payload: &[u8]) {
        match self.rf {
            RfState::Idle => {}
            RfState::Discovery => {
                return self.respond_status(
                    at,
                    Gid::Rf,
                    RF_DISCOVER,
                    Status::DiscoveryAlreadyStarted,
                )
            }
            RfState::ListenActive | RfState::ListenSleep => {
                return self.respond_status(at, Gid::Rf, RF_DISCOVER, Status::SemanticError)
            }
        }
        let Some((&count, configs)) = payload.split_first() else {
            return self.respond_status(at, Gid::Rf, RF_DISCOVER, Status::SyntaxError);
        };
        if count == 0 || configs.len() != usize::from(count) * 2 {
            return self.respond_status(at, Gid::Rf, RF_DISCOVER, Status::SyntaxError);
        }
        self.discover_modes = configs
            .chunks_exact(2)
            .map(|c| RfTechMode::from(c[0]))
            .collect();
        self.rf = RfState::Discovery;
        self.respond_status(at, Gid::Rf, RF_DISCOVER, Status::Ok);
    }

    fn rf_deactivate(&mut self, at: Instant, payload: &[u8]) {
        let &[raw] = payload else {
            return self.respond_status(at, Gid::Rf, RF_DEACTIVATE, Status::SyntaxError);
        };
        let kind = DeactivationType::from(raw);
        let next = match (self.rf, kind) {
            (RfState::Discovery, DeactivationType::Idle) => RfState::Idle,
            (RfState::ListenActive | RfState::ListenSleep, DeactivationType::Idle) => RfState::Idle,
            (RfState::ListenActive | RfState::ListenSleep, DeactivationType::Discovery) => {
                RfState::Discovery
            }
            (RfState::ListenActive, DeactivationType::Sleep | DeactivationType::SleepAf) => {
                RfState::ListenSleep
            }
            (_, DeactivationType::Unknown(_)) => {
                return self.respond_status(at, Gid::Rf, RF_DEACTIVATE, Status::SyntaxError)
            }
            _ => return self.respond_status(at, Gid::Rf, RF_DEACTIVATE, Status::SemanticError),
        };
        self.rf = next;
        self.respond_status(at, Gid::Rf, RF_DEACTIVATE, Status::Ok);
        let ntf = [raw, u8::from(DeactivationReason::DhRequest)];
        self.schedule_control(at, MessageType::Notification, Gid::Rf, RF_DEACTIVATE, &ntf);
        if self.conn.is_some() {
            self.push_rf_event(RfEvent::Deactivated {
                at,
                reason: DeactivationReason::DhRequest,
            });
        }
        self.close_connection();
    }

    fn nfcee_discover(&mut self, at: Instant, payload: &[u8]) {
        let well_formed = match self.config.profile {
            // NCI 1.0: Discovery Action, 0x00 disable or 0x01 enable.
            Profile::Pn7150 => matches!(payload, [0x00] | [0x01]),
            // NCI 2.0: no payload.
            Profile::Nci2 => payload.is_empty(),
        };
        if !well_formed {
            return self.respond_status(at, Gid::Nfcee, NFCEE_DISCOVER, Status::SyntaxError);
        }
        // No NFCEE is connected: status OK, number of NFCEEs 0, and no NFCEE_DISCOVER_NTF.
        self.respond(at, Gid::Nfcee, NFCEE_DISCOVER, &[u8::from(Status::Ok), 0]);
    }

    fn nxp_standby(&mut self, at: Instant, payload: &[u8]) {
        match payload {
            [0x00] => self.standby = false,
            [0x01] => self.standby = true,
            _ => {
                return self.respond_status(at, Gid::Proprietary, NXP_STANDBY, Status::SyntaxError)
            }
        }
        self.respond_status(at, Gid::Proprietary, NXP_STANDBY, Status::Ok);
    }

    // ---- Data -------------------------------------------------------------------------------

    fn receive_data(&mut self, packet: &[u8], conn_id: u8, pbf: bool, len: usize, now: Instant) {
        let acceptable = conn_id == 0
            && self.rf == RfState::ListenActive
            && self
                .conn
                .as_ref()
                .is_some_and(|c| c.dh_credits > 0 && c.awaiting_response);
        if !acceptable {
            self.stats.data_packets_rejected += 1;
            let ntf = [u8::from(Status::Rejected), conn_id];
            return self.schedule_control(
                now,
                MessageType::Notification,
                Gid::Core,
                CORE_INTERFACE_ERROR,
                &ntf,
            );
        }
        self.stats.data_packets += 1;
        let whole = match self.rx.push(packet) {
            Ok(Some(message)) => Some(message.payload.to_vec()),
            Ok(None) => None,
            Err(_) => {
                self.stats.data_packets_rejected += 1;
                let ntf = [u8::from(Status::MessageSizeExceeded), conn_id];
                return self.schedule_control(
                    now,
                    MessageType::Notification,
                    Gid::Core,
                    CORE_INTERFACE_ERROR,
                    &ntf,
                );
            }
        };
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        conn.dh_credits -= 1;
        let technology = conn.technology;
        if let Some(apdu) = whole {
            conn.response = Some(apdu);
        }
        // The packet goes over the air (a chained I-block while PBF is set) after whatever is
        // on the air already; its credit comes back when it is through.
        let airtime = self.config.rf_timing.map_or(Duration::ZERO, |rf| {
            round_up_to_micros(rf.response_time(technology, len))
        });
        let done = now.max(self.rf_free_at) + airtime;
        self.rf_free_at = done;
        let epoch = self.epoch;
        self.schedule(done, Action::RfTxDone { epoch, last: !pbf });
    }

    fn credits_ntf(&mut self, at: Instant, credits: u8) {
        self.stats.credit_ntfs += 1;
        // One entry: the static RF connection (NCI 1.0 Table 17).
        let ntf = [1, 0, credits];
        self.schedule_control(
            at,
            MessageType::Notification,
            Gid::Core,
            CORE_CONN_CREDITS,
            &ntf,
        );
    }

    // ---- RF side (the virtual reader) -------------------------------------------------------

    /// The reader switched its field on or off. Sends RF_FIELD_INFO_NTF when the DH enabled
    /// it (parameter RF_FIELD_INFO = 1) and discovery runs; switching the field off during an
    /// activation is an RF link loss.
    pub fn reader_field(&mut self, on: bool, now: Instant) {
        self.run_due(now);
        if self.field != on {
            self.field = on;
            if self.rf != RfState::Idle && self.field_info_enabled() {
                self.schedule_control(
                    now,
                    MessageType::Notification,
                    Gid::Rf,
                    RF_FIELD_INFO,
                    &[u8::from(on)],
                );
            }
            if !on && matches!(self.rf, RfState::ListenActive | RfState::ListenSleep) {
                self.remote_deactivation(DeactivationReason::RfLinkLoss, now);
            }
        }
        self.run_due(now);
    }

    /// The reader activated the emulated card: RF_INTF_ACTIVATED_NTF to the DH, RFST_LISTEN_ACTIVE.
    pub fn reader_activate(
        &mut self,
        technology: RfTechnology,
        now: Instant,
    ) -> Result<(), RfError> {
        self.run_due(now);
        let mode = match technology {
            RfTechnology::NfcA => RfTechMode::NfcAPassiveListen,
            RfTechnology::NfcB => RfTechMode::NfcBPassiveListen,
            other => return Err(RfError::UnsupportedTechnology(other)),
        };
        if !self.field {
            return Err(RfError::FieldOff);
        }
        match self.rf {
            RfState::Discovery | RfState::ListenSleep => {}
            RfState::ListenActive => return Err(RfError::AlreadyActive),
            RfState::Idle => return Err(RfError::NotDiscovering),
        }
        if !self.discover_modes.contains(&mode) {
            return Err(RfError::NotListening(technology));
        }
        let iso_dep = u8::from(RfProtocol::IsoDep);
        let iso_dep_intf = u8::from(RfInterface::IsoDep);
        let mapped = self
            .discover_map
            .iter()
            .any(|&[protocol, mode, interface]| {
                protocol == iso_dep && mode & 0x02 != 0 && interface == iso_dep_intf
            });
        if !mapped {
            return Err(RfError::IsoDepNotMapped);
        }
        self.close_connection();
        let initial_credits = self.config.profile.initial_credits();
        self.conn = Some(Conn {
            technology,
            dh_credits: initial_credits,
            owed: 0,
            awaiting_response: false,
            response: None,
        });
        self.rf = RfState::ListenActive;
        let ntf = self.intf_activated_ntf(mode);
        self.schedule_control(
            now,
            MessageType::Notification,
            Gid::Rf,
            RF_INTF_ACTIVATED,
            &ntf,
        );
        self.run_due(now);
        Ok(())
    }

    /// RF_INTF_ACTIVATED_NTF payload for an ISO-DEP listen activation (NCI 1.0 Table 61; the
    /// NCI 2.0 layout is the same).
    fn intf_activated_ntf(&self, mode: RfTechMode) -> Vec<u8> {
        let profile = self.config.profile;
        let mut ntf = vec![
            0x01,
            u8::from(RfInterface::IsoDep),
            u8::from(RfProtocol::IsoDep),
            u8::from(mode),
            profile.max_data_payload(),
            profile.initial_credits(),
            // No RF technology specific parameters in listen A/B (NCI 1.0 §7.1).
            0x00,
            u8::from(mode),
            // 106 kbit/s both ways.
            0x00,
            0x00,
        ];
        if mode == RfTechMode::NfcBPassiveListen {
            // Activation parameters for NFC-B/ISO-DEP listen mode (NCI 1.0 §8.3.2.2, Table
            // 79): the ATTRIB command the reader sent from its Byte 2 on — without the `1D`
            // command code and without CRC: NFCID0, Param 1 (default TR0/TR1, EOF/SOF
            // required), Param 2 (FSDI 8 = 256 octets, 106 kbit/s), Param 3 (ISO/IEC 14443-4
            // compliant), Param 4 (CID 0).
            let attrib = [
                self.config.nfcid0[0],
                self.config.nfcid0[1],
                self.config.nfcid0[2],
                self.config.nfcid0[3],
                0x00,
                0x08,
                0x01,
                0x00,
            ];
            ntf.push(attrib.len() as u8 + 1);
            ntf.push(attrib.len() as u8);
            ntf.extend_from_slice(&attrib);
        } else {
            // Activation parameters for NFC-A/ISO-DEP listen mode (NCI 1.0 §8.2.2): RATS
            // parameter byte, FSDI 8 (256 octets), CID 0.
            ntf.extend_from_slice(&[0x01, 0x80]);
        }
        ntf
    }

    /// The reader sent a C-APDU; it reaches the DH as data packets on the static RF
    /// connection, segmented at the maximum data payload (PBF, NCI 1.0 §3.5), once it has
    /// crossed the air.
    pub fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError> {
        self.run_due(now);
        if apdu.is_empty() {
            return Err(RfError::EmptyApdu);
        }
        if self.rf != RfState::ListenActive {
            return Err(RfError::NotActive);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RfError::NotActive);
        };
        if conn.awaiting_response {
            return Err(RfError::Busy);
        }
        conn.awaiting_response = true;
        let technology = conn.technology;
        let airtime = self.config.rf_timing.map_or(Duration::ZERO, |rf| {
            round_up_to_micros(rf.command_time(technology, apdu.len()))
        });
        let arrival = now.max(self.rf_free_at) + airtime;
        self.rf_free_at = arrival;
        let epoch = self.epoch;
        self.schedule(
            arrival,
            Action::ForwardToDh {
                epoch,
                apdu: apdu.to_vec(),
            },
        );
        self.run_due(now);
        Ok(())
    }

    /// The link ended on the reader's side. `EndpointRequest` (a DESELECT) puts an active card
    /// to sleep: RF_DEACTIVATE_NTF(Sleep, Endpoint Request), RFST_LISTEN_SLEEP. Any other
    /// reason ends the activation: RF_DEACTIVATE_NTF(Discovery, reason), RFST_DISCOVERY
    /// (NCI 1.0 §5.2.5 and §5.2.6).
    pub fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError> {
        self.run_due(now);
        let allowed = match self.rf {
            RfState::ListenActive => true,
            // A sleeping card can still leave the field; it cannot be deselected twice.
            RfState::ListenSleep => reason != DeactivationReason::EndpointRequest,
            RfState::Idle | RfState::Discovery => false,
        };
        if !allowed {
            return Err(RfError::NotActive);
        }
        self.remote_deactivation(reason, now);
        self.run_due(now);
        Ok(())
    }

    fn remote_deactivation(&mut self, reason: DeactivationReason, now: Instant) {
        let (kind, next) = if reason == DeactivationReason::EndpointRequest {
            (DeactivationType::Sleep, RfState::ListenSleep)
        } else {
            (DeactivationType::Discovery, RfState::Discovery)
        };
        self.rf = next;
        let ntf = [u8::from(kind), u8::from(reason)];
        self.schedule_control(now, MessageType::Notification, Gid::Rf, RF_DEACTIVATE, &ntf);
        self.push_rf_event(RfEvent::Deactivated { at: now, reason });
        self.close_connection();
    }

    fn close_connection(&mut self) {
        if self.conn.take().is_some() {
            self.epoch = self.epoch.wrapping_add(1);
        }
        // A partial message of the closed connection must not prefix the next one.
        self.rx.reset();
    }

    fn push_rf_event(&mut self, event: RfEvent) {
        self.rf_out.push_back(event);
    }

    // ---- Scheduling -------------------------------------------------------------------------

    fn schedule(&mut self, at: Instant, action: Action) {
        let seq = self.seq;
        self.seq += 1;
        let index = self
            .scheduled
            .partition_point(|s| (s.at, s.seq) <= (at, seq));
        self.scheduled.insert(index, Scheduled { at, seq, action });
    }

    fn schedule_control(
        &mut self,
        at: Instant,
        mt: MessageType,
        gid: Gid,
        oid: u8,
        payload: &[u8],
    ) {
        let max = self.config.profile.max_control_payload();
        if let Ok(segmenter) = Segmenter::control(mt, gid, oid, payload, max) {
            for packet in segmenter {
                self.schedule(at, Action::Emit(packet.to_vec()));
            }
        }
    }

    fn respond(&mut self, at: Instant, gid: Gid, oid: u8, payload: &[u8]) {
        self.schedule_control(at, MessageType::Response, gid, oid, payload);
    }

    fn respond_status(&mut self, at: Instant, gid: Gid, oid: u8, status: Status) {
        self.respond(at, gid, oid, &[u8::from(status)]);
    }

    fn generic_error(&mut self, now: Instant, status: Status) {
        self.stats.malformed_packets += 1;
        self.schedule_control(
            now,
            MessageType::Notification,
            Gid::Core,
            CORE_GENERIC_ERROR,
            &[u8::from(status)],
        );
    }

    fn run_due(&mut self, now: Instant) {
        while self.scheduled.first().is_some_and(|s| s.at <= now) {
            let Scheduled { at, action, .. } = self.scheduled.remove(0);
            self.execute(at, action);
        }
    }

    fn execute(&mut self, at: Instant, action: Action) {
        match action {
            Action::Emit(bytes) => self.out.push_back(Transmit { at, bytes }),
            Action::ForwardToDh { epoch, apdu } => self.forward_to_dh(at, epoch, &apdu),
            Action::RfTxDone { epoch, last } => {
                if epoch != self.epoch {
                    return;
                }
                let Some(conn) = self.conn.as_mut() else {
                    return;
                };
                conn.owed = conn.owed.saturating_add(1);
                if last {
                    conn.awaiting_response = false;
                    if let Some(apdu) = conn.response.take() {
                        self.push_rf_event(RfEvent::Response { at, apdu });
                    }
                }
                let holdoff = match self.config.profile {
                    Profile::Nci2 => self.config.credit_ntf_holdoff,
                    Profile::Pn7150 => Duration::ZERO,
                };
                self.schedule(at + holdoff, Action::FlushCredits { epoch });
            }
            Action::FlushCredits { epoch } => {
                if epoch != self.epoch {
                    return;
                }
                let Some(conn) = self.conn.as_mut() else {
                    return;
                };
                let owed = core::mem::take(&mut conn.owed);
                if owed > 0 {
                    conn.dh_credits = conn.dh_credits.saturating_add(owed);
                    self.credits_ntf(at, owed);
                }
            }
        }
    }

    fn forward_to_dh(&mut self, at: Instant, epoch: u32, apdu: &[u8]) {
        if epoch != self.epoch {
            return;
        }
        let nci2 = self.config.profile == Profile::Nci2;
        let max = self.config.profile.max_data_payload();
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        // NCI 2.0: credits owed to the DH ride in the CR field of the first packet.
        let credits = if nci2 { conn.owed.min(3) } else { 0 };
        conn.owed -= credits;
        conn.dh_credits = conn.dh_credits.saturating_add(credits);
        self.stats.credits_in_data_headers += u64::from(credits);
        let mut first = true;
        if let Ok(segmenter) = Segmenter::data(0, 0, apdu, max) {
            for packet in segmenter {
                let mut bytes = packet.to_vec();
                if first {
                    if let Some(octet) = bytes.get_mut(1) {
                        *octet |= credits & 0x03;
                    }
                    first = false;
                }
                self.out.push_back(Transmit { at, bytes });
            }
        }
    }
}

/// `true` for an entry an NCI 1.0 controller knows: technology, protocol or AID based, with no
/// NCI 2.0 qualifier bits, or a proprietary type (Table 46: 0xA0–0xFF).
fn nci1_entry(entry: Option<&RoutingEntryRepr<'_>>) -> bool {
    let Some(entry) = entry else {
        return false;
    };
    match entry.entry_type() {
        RoutingEntryType::Technology | RoutingEntryType::Protocol | RoutingEntryType::Aid => {
            entry.qualifiers().is_some_and(|q| q.is_empty())
        }
        RoutingEntryType::Unknown(qualifier_type) => qualifier_type >= 0xA0,
        _ => false,
    }
}

fn is_nxp_id(id: u16) -> bool {
    id >> 8 == u16::from(NXP_PARAM_PREFIX)
}

fn push_param_id(out: &mut Vec<u8>, id: u16) {
    if is_nxp_id(id) {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.push(id as u8);
    }
}

fn split_at_checked(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    (at <= bytes.len()).then(|| bytes.split_at(at))
}

/// Configuration parameter identifiers of NCI 1.0 Table 101 (common, poll and listen
/// parameters, RF_FIELD_INFO, RF_NFCEE_ACTION, NFCDEP_OP).
const KNOWN_NCI1_PARAMS: &[u8] = &[
    0x00, 0x01, 0x08, 0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x20, 0x21, 0x22, 0x28, 0x29, 0x2A, 0x30,
    0x31, 0x32, 0x33, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
    0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x58, 0x59,
    0x5A, 0x5B, 0x60, 0x61, 0x62, 0x80, 0x81, 0x82,
];

/// Identifiers NCI 2.0 adds to that table (LLCP_VERSION, NFCC_CONFIG_CONTROL).
const KNOWN_NCI2_PARAMS: &[u8] = &[0x83, 0x85];
