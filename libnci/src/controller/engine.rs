//! The state machine proper, apart from the control-message reassembler (which lends its
//! buffer to the message being handled, so it lives beside the engine in
//! [`super::Controller`]). Command APDUs are reassembled here, by a second [`Reassembler`]
//! that copies every one so that [`Event::Data`] can lend it out. The module documentation of
//! [`super`] describes the states and transitions; the comments here say why a step is done
//! the way it is.

use heapless::{Deque, Vec};

use super::config::{Config, Param, MAX_WANTED_PARAMS, NXP_TAGS_NEEDING_RESET};
use super::event::{Activation, ControllerError, Deactivation, Event, ReinitCause, SendError};
use super::info::{ControllerInfo, MAX_MANUFACTURER_INFO};
use super::{State, Transmit, MAX_C_APDU, MAX_R_APDU};
use crate::routing::{RoutingTable, RoutingTableBuilder};
use crate::time::{Duration, Instant};
use crate::wire::config::{ConfigParam, ParamId};
use crate::wire::core::{
    oid as core_oid, CoreGetConfigCmd, CoreGetConfigRsp, CoreInitCmd, CoreResetCmd, CoreResetNtf,
    CoreResetRsp, CoreSetConfigCmd, CoreSetConfigRsp, ManufacturerId,
};
use crate::wire::header::MAX_PACKET_LEN;
use crate::wire::nfcee::{NfceeDiscoverAction, NfceeDiscoverCmd};
use crate::wire::rf::{
    oid as rf_oid, DiscoverConfig, DiscoverMapping, ListenModeRouting, MappingMode,
    RfDeactivateCmd, RfDeactivateNtf, RfDiscoverCmd, RfDiscoverMapCmd, RfIntfActivatedNtf,
};
use crate::wire::segment::{Reassembler, ReassemblyError, Segmenter};
use crate::wire::{
    DeactivationType, Error, Gid, List, Message, MessageType, NciVersion, PacketId, ResetType,
    RfInterface, RfProtocol, Status, MAX_PAYLOAD_LEN,
};

/// Packets waiting for [`super::Controller::poll_transmit`]: one command, segmented to the
/// smallest control payload NCI allows (32 octets: 8 segments of a 255-octet command).
const TX_QUEUE: usize = 16;

/// Reassembly of command APDUs: one connection (the static RF connection), the longest
/// extended-length C-APDU, no control messages (those go through the controller's own
/// reassembler).
type DataReassembler = Reassembler<MAX_C_APDU, 1, 0>;

/// Events waiting for [`super::Controller::poll_event`].
const EVENT_QUEUE: usize = 32;

/// NCI 1.0 §4.2: "Max Control Packet Payload Size" is at least 32 octets. A smaller reported
/// value is not trusted.
const MIN_CONTROL_PAYLOAD: u8 = 32;

/// NCI 1.0 Table 61 / CORE_CONN_CREATE_RSP: an initial credit count of 0xFF means data flow
/// control is not used on the connection.
const CREDITS_FLOW_CONTROL_OFF: u8 = 0xFF;

/// The steps of every procedure, in the only order they ever run. A procedure is a subset
/// ([`PhaseSet`]): start-up runs Reset to StartDiscovery, a routing change runs
/// StopDiscovery, Routing, StartDiscovery, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    StopDiscovery,
    Reset,
    Init,
    NxpActivate,
    NxpConfig,
    CoreConfig,
    NfceeDiscover,
    DiscoverMap,
    Routing,
    StartDiscovery,
}

const ALL_PHASES: [Phase; 10] = [
    Phase::StopDiscovery,
    Phase::Reset,
    Phase::Init,
    Phase::NxpActivate,
    Phase::NxpConfig,
    Phase::CoreConfig,
    Phase::NfceeDiscover,
    Phase::DiscoverMap,
    Phase::Routing,
    Phase::StartDiscovery,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PhaseSet(u16);

impl PhaseSet {
    const EMPTY: PhaseSet = PhaseSet(0);
    /// Start-up and re-initialisation: everything but StopDiscovery (CORE_RESET stops it).
    const INIT: PhaseSet = PhaseSet(0b11_1111_1110);

    fn with(self, phase: Phase) -> PhaseSet {
        PhaseSet(self.0 | (1 << phase as u16))
    }

    fn contains(self, phase: Phase) -> bool {
        self.0 & (1 << phase as u16) != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The RF state of the controller as NCI 1.0 §5.2 defines it, as far as a listen-only host
/// sees it (the poll-side states never occur: the discovery map and RF_DISCOVER_CMD configure
/// listen modes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RfState {
    /// RFST_IDLE.
    Idle,
    /// RFST_DISCOVERY: listening.
    Discovery,
    /// RFST_LISTEN_ACTIVE: a reader activated the card; the static RF connection carries data.
    ListenActive,
    /// RFST_LISTEN_SLEEP: the reader put the card to sleep (HLTA, SLPB, DESELECT); it may wake
    /// it again or the controller returns to RFST_DISCOVERY.
    ListenSleep,
}

/// The message the state machine waits for, and until when.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    kind: MessageType,
    gid: Gid,
    oid: u8,
    name: &'static str,
    deadline: Instant,
}

impl Awaiting {
    fn is(&self, kind: MessageType, gid: Gid, oid: u8) -> bool {
        self.kind == kind && self.gid == gid && self.oid == oid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamState {
    /// Not read yet.
    Unknown,
    /// The controller holds the wanted value: nothing to write.
    Matches,
    /// Differs, or could not be read: written by CORE_SET_CONFIG_CMD.
    Write,
}

/// One configuration step (NXP extension parameters or NCI parameters): read, compare, write
/// what differs.
#[derive(Debug, Default)]
struct ConfigJob {
    wanted: Vec<Param, MAX_WANTED_PARAMS>,
    state: Vec<ParamState, MAX_WANTED_PARAMS>,
    /// STATUS_INVALID_PARAM already led to a second CORE_GET_CONFIG_CMD.
    get_retried: bool,
    /// Index in `wanted` from which the next CORE_SET_CONFIG_CMD is packed.
    next_set: usize,
}

impl ConfigJob {
    fn start(&mut self, wanted: Vec<Param, MAX_WANTED_PARAMS>) {
        self.state.clear();
        for _ in 0..wanted.len() {
            // Same capacity as `wanted`.
            let _ = self.state.push(ParamState::Unknown);
        }
        self.wanted = wanted;
        self.get_retried = false;
        self.next_set = 0;
    }

    fn clear(&mut self) {
        self.wanted.clear();
        self.state.clear();
        self.get_retried = false;
        self.next_set = 0;
    }

    fn ids_in(&self, state: ParamState) -> Vec<ParamId, MAX_WANTED_PARAMS> {
        let mut ids = Vec::new();
        for (param, s) in self.wanted.iter().zip(self.state.iter()) {
            if *s == state {
                // At most as many as `wanted` holds.
                let _ = ids.push(param.id);
            }
        }
        ids
    }

    fn unknown_ids(&self) -> Vec<ParamId, MAX_WANTED_PARAMS> {
        self.ids_in(ParamState::Unknown)
    }

    fn mark(&mut self, id: ParamId, state: ParamState) {
        for (param, s) in self.wanted.iter().zip(self.state.iter_mut()) {
            if param.id == id && *s == ParamState::Unknown {
                *s = state;
            }
        }
    }

    fn written_ids(&self) -> Vec<ParamId, MAX_WANTED_PARAMS> {
        self.ids_in(ParamState::Write)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credits {
    /// Flow control off (initial credits 0xFF).
    Unlimited,
    Count(u8),
}

impl Credits {
    fn available(self) -> bool {
        !matches!(self, Credits::Count(0))
    }
}

/// An event as queued: [`Event::Data`] is kept as the generation of the receive buffer it
/// refers to, so that a stale one (the buffer was reused) is skipped rather than shown with
/// the wrong bytes.
#[derive(Debug, Clone, Copy)]
enum Queued {
    Data(u32),
    Plain(Event<'static>),
}

/// `Ok((gid, oid))` of the command queued, or the command's name and the encoding error.
type QueueResult = core::result::Result<(Gid, u8), (&'static str, Error)>;

/// Encode `msg` and queue it, segmented to `max_payload`.
fn queue_command(
    queue: &mut Deque<Transmit, TX_QUEUE>,
    max_payload: u8,
    msg: &Message<'_>,
) -> QueueResult {
    let name = msg.name();
    let (mt, id) = msg.header();
    let PacketId::Control { gid, oid } = id else {
        return Err((name, Error::UnknownMessage));
    };
    let mut payload = [0u8; MAX_PAYLOAD_LEN];
    let len = msg.emit(&mut payload).map_err(|e| (name, e))?;
    let body = payload.get(..len).ok_or((name, Error::BufferTooSmall))?;
    let mut segmenter = Segmenter::new(mt, id, body, max_payload).map_err(|e| (name, e))?;
    if segmenter.packets_left() > queue.capacity() - queue.len() {
        return Err((name, Error::Capacity));
    }
    let mut buf = [0u8; MAX_PACKET_LEN];
    while let Some(next) = segmenter.next_packet(&mut buf) {
        let n = next.map_err(|e| (name, e))?;
        let packet = buf
            .get(..n)
            .and_then(|p| Transmit::from_slice(p).ok())
            .ok_or((name, Error::Capacity))?;
        queue
            .push_back(packet)
            .map_err(|_| (name, Error::Capacity))?;
    }
    Ok((gid, oid))
}

fn backoff(base: Duration, max: Duration, attempt: u8) -> Duration {
    let shift = u32::from(attempt.saturating_sub(1)).min(16);
    base.saturating_mul(1 << shift).min(max)
}

pub(crate) struct Engine {
    pub(crate) config: Config,
    started: bool,
    /// Start-up completed since the last reset: settle() may start procedures.
    initialized: bool,
    failed: bool,
    version: NciVersion,
    /// NCI 2.0: manufacturer from CORE_RESET_NTF, for ControllerInfo at CORE_INIT_RSP.
    reset_manufacturer: Option<(ManufacturerId, Vec<u8, MAX_MANUFACTURER_INFO>)>,
    pub(crate) info: Option<ControllerInfo>,
    rf: RfState,
    plan: PhaseSet,
    phase: Option<Phase>,
    awaiting: Option<Awaiting>,
    /// RF_DEACTIVATE_NTF arrived before RF_DEACTIVATE_RSP.
    deactivate_ntf_seen: bool,
    job: ConfigJob,
    /// The NXP configuration was written and the controller reset once in this start-up.
    nxp_reset_done: bool,
    /// NXP tags written before that reset, to check they read back as written.
    nxp_written: Vec<ParamId, MAX_WANTED_PARAMS>,
    builder: Option<RoutingTableBuilder>,
    sending: Option<RoutingTable>,
    routing_index: usize,
    pub(crate) programmed: Option<RoutingTable>,
    pending_routes: bool,
    pending_listen: bool,
    attempts: u8,
    retry_at: Option<Instant>,
    now: Instant,
    /// Tells [`super::Controller`] to drop partial control messages.
    pub(crate) reset_reassembly: bool,
    tx_queue: Deque<Transmit, TX_QUEUE>,
    events: Deque<Queued, EVENT_QUEUE>,
    events_dropped: bool,
    // The card session (static RF connection).
    session: Option<Activation>,
    credits: Credits,
    credit_wait_since: Option<Instant>,
    /// A whole C-APDU was delivered and its response not yet accepted by send_data.
    awaiting_response: bool,
    /// Reassembly of command APDUs on the static RF connection. It copies even one-packet
    /// commands, so that [`Event::Data`] can borrow the command until the next input.
    rx: DataReassembler,
    rx_generation: u32,
    tx_apdu: Vec<u8, MAX_R_APDU>,
    tx_offset: usize,
    tx_active: bool,
}

impl Engine {
    pub(crate) fn new(config: Config) -> Engine {
        Engine {
            config,
            started: false,
            initialized: false,
            failed: false,
            version: NciVersion::V1_0,
            reset_manufacturer: None,
            info: None,
            rf: RfState::Idle,
            plan: PhaseSet::EMPTY,
            phase: None,
            awaiting: None,
            deactivate_ntf_seen: false,
            job: ConfigJob::default(),
            nxp_reset_done: false,
            nxp_written: Vec::new(),
            builder: None,
            sending: None,
            routing_index: 0,
            programmed: None,
            pending_routes: false,
            pending_listen: false,
            attempts: 0,
            retry_at: None,
            now: Instant::ZERO,
            reset_reassembly: false,
            tx_queue: Deque::new(),
            events: Deque::new(),
            events_dropped: false,
            session: None,
            credits: Credits::Count(0),
            credit_wait_since: None,
            awaiting_response: false,
            rx: Reassembler::new(),
            rx_generation: 0,
            tx_apdu: Vec::new(),
            tx_offset: 0,
            tx_active: false,
        }
    }

    // ---------------------------------------------------------------------------------------
    // Host-facing queries
    // ---------------------------------------------------------------------------------------

    pub(crate) fn state(&self) -> State {
        if self.failed {
            State::Failed
        } else if self.retry_at.is_some() {
            State::Recovering
        } else if !self.started {
            State::Off
        } else if self.plan.contains(Phase::Reset) {
            State::Initializing
        } else if self.rf == RfState::ListenActive {
            State::Active
        } else if !self.plan.is_empty() {
            State::Reconfiguring
        } else {
            match self.rf {
                RfState::Discovery | RfState::ListenSleep => State::Discovery,
                RfState::ListenActive => State::Active,
                RfState::Idle => State::Idle,
            }
        }
    }

    /// Packets are looked at only while the controller is being driven: before `start`, while
    /// waiting to retry and after giving up, whatever arrives belongs to a state about to be
    /// reset.
    pub(crate) fn accepts_input(&self) -> bool {
        self.started && !self.failed && self.retry_at.is_none()
    }

    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    // ---------------------------------------------------------------------------------------
    // Host commands
    // ---------------------------------------------------------------------------------------

    pub(crate) fn start(&mut self) {
        self.attempts = 0;
        self.begin_init();
    }

    pub(crate) fn set_routes(&mut self) {
        self.pending_routes = true;
        self.settle();
    }

    pub(crate) fn set_listen(&mut self) {
        self.pending_listen = true;
        self.settle();
    }

    pub(crate) fn set_enabled(&mut self) {
        self.settle();
    }

    pub(crate) fn send_data(&mut self, apdu: &[u8]) -> Result<(), SendError> {
        if self.session.is_none() {
            return Err(SendError::NoSession);
        }
        if apdu.is_empty() {
            return Err(SendError::Empty);
        }
        if apdu.len() > MAX_R_APDU {
            return Err(SendError::TooLong);
        }
        if !self.awaiting_response || self.tx_active {
            return Err(SendError::NotExpected);
        }
        self.tx_apdu.clear();
        self.tx_apdu
            .extend_from_slice(apdu)
            .map_err(|_| SendError::TooLong)?;
        self.start_tx();
        Ok(())
    }

    fn start_tx(&mut self) {
        self.tx_offset = 0;
        self.tx_active = true;
        self.awaiting_response = false;
        self.credit_wait_since = if self.credits.available() {
            None
        } else {
            Some(self.now)
        };
    }

    // ---------------------------------------------------------------------------------------
    // Outputs
    // ---------------------------------------------------------------------------------------

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(packet) = self.tx_queue.pop_front() {
            return Some(packet);
        }
        self.next_data_packet()
    }

    /// The next segment of the response APDU, if a credit allows (NCI 1.0 §4.4.4: one credit
    /// per data packet, segments included).
    fn next_data_packet(&mut self) -> Option<Transmit> {
        if !self.tx_active || !self.credits.available() {
            return None;
        }
        let max_payload = self.session.as_ref()?.max_data_payload;
        let rest = self.tx_apdu.get(self.tx_offset..).unwrap_or(&[]);
        let mut buf = [0u8; MAX_PACKET_LEN];
        // The activation was checked to have a non-zero payload size; NCI 1.0 data packets
        // carry the connection id only (the NCI 2.0 credits field is for the NFCC to set).
        let len = Segmenter::data(0, 0, rest, max_payload)
            .ok()?
            .next_packet(&mut buf)?
            .ok()?;
        let packet = Transmit::from_slice(buf.get(..len)?).ok()?;
        self.tx_offset += len.saturating_sub(crate::wire::HEADER_LEN);
        if self.tx_offset >= self.tx_apdu.len() {
            self.tx_active = false;
            self.tx_apdu.clear();
            self.tx_offset = 0;
        }
        if let Credits::Count(n) = &mut self.credits {
            *n = n.saturating_sub(1);
        }
        self.credit_wait_since = if self.tx_active && !self.credits.available() {
            Some(self.now)
        } else {
            None
        };
        Some(packet)
    }

    fn credit_deadline(&self) -> Option<Instant> {
        if self.tx_active && !self.credits.available() {
            self.credit_wait_since
                .map(|since| since + self.config.credit_timeout)
        } else {
            None
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.retry_at,
            self.awaiting.map(|a| a.deadline),
            self.credit_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event<'_>> {
        loop {
            let Some(queued) = self.events.pop_front() else {
                if self.events_dropped {
                    self.events_dropped = false;
                    return Some(Event::Error(ControllerError::EventsDropped));
                }
                return None;
            };
            match queued {
                Queued::Plain(event) => return Some(event),
                Queued::Data(generation) => {
                    if generation == self.rx_generation {
                        if let Some(apdu) = self.rx.data_message(0) {
                            return Some(Event::Data(apdu));
                        }
                    }
                }
            }
        }
    }

    fn push(&mut self, event: Event<'static>) {
        if self.events.push_back(Queued::Plain(event)).is_err() {
            self.events_dropped = true;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Timers
    // ---------------------------------------------------------------------------------------

    pub(crate) fn handle_timeout(&mut self) {
        let now = self.now;
        if let Some(at) = self.retry_at {
            if now >= at {
                self.begin_init();
            }
            return;
        }
        if let Some(awaiting) = self.awaiting {
            if now >= awaiting.deadline {
                self.reinit(ReinitCause::Timeout {
                    waiting_for: awaiting.name,
                });
                return;
            }
        }
        if self
            .credit_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            self.reinit(ReinitCause::CreditLost);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Procedures
    // ---------------------------------------------------------------------------------------

    fn max_control_payload(&self) -> u8 {
        self.info
            .as_ref()
            .map_or(u8::MAX, |info| info.max_control_payload)
            .max(MIN_CONTROL_PAYLOAD)
    }

    /// Queue `msg` and wait for its response.
    fn send(&mut self, msg: &Message<'_>, response: &'static str) {
        let max_payload = self.max_control_payload();
        let queued = queue_command(&mut self.tx_queue, max_payload, msg);
        self.expect_response(queued, response);
    }

    fn expect_response(&mut self, queued: QueueResult, response: &'static str) {
        match queued {
            Ok((gid, oid)) => {
                self.awaiting = Some(Awaiting {
                    kind: MessageType::Response,
                    gid,
                    oid,
                    name: response,
                    deadline: self.now + self.config.command_timeout,
                });
            }
            // Only a value this crate built can fail to encode; re-initialising reports it and
            // keeps the loop bounded by max_reinit_attempts.
            Err((message, error)) => self.reinit(ReinitCause::Malformed { message, error }),
        }
    }

    fn expect_notification(&mut self, gid: Gid, oid: u8, name: &'static str) {
        self.awaiting = Some(Awaiting {
            kind: MessageType::Notification,
            gid,
            oid,
            name,
            deadline: self.now + self.config.command_timeout,
        });
    }

    /// Drop whatever procedure runs: queued commands, the awaited message, partial steps.
    fn abort_procedure(&mut self) {
        self.plan = PhaseSet::EMPTY;
        self.phase = None;
        self.awaiting = None;
        self.tx_queue.clear();
        self.job.clear();
        self.builder = None;
        self.sending = None;
        self.routing_index = 0;
        self.deactivate_ntf_seen = false;
    }

    /// Fresh start-up: `start()`, or a retry after a failure.
    fn begin_init(&mut self) {
        self.end_session(Deactivation::Reinitialized);
        self.abort_procedure();
        self.started = true;
        self.failed = false;
        self.retry_at = None;
        self.initialized = false;
        self.rf = RfState::Idle;
        self.version = NciVersion::V1_0;
        self.reset_manufacturer = None;
        self.nxp_reset_done = false;
        self.nxp_written.clear();
        self.pending_routes = false;
        self.pending_listen = false;
        self.reset_reassembly = true;
        self.start_plan(PhaseSet::INIT);
    }

    fn start_plan(&mut self, plan: PhaseSet) {
        self.plan = plan;
        self.phase = None;
        self.next_phase();
    }

    /// Enter the next phase of the plan; phases with nothing to do are passed over. When the
    /// plan is done, report and look for more work.
    fn next_phase(&mut self) {
        let plan = self.plan;
        let mut from = self.phase;
        while let Some(phase) = ALL_PHASES
            .iter()
            .copied()
            .find(|p| plan.contains(*p) && from.is_none_or(|f| *p > f))
        {
            self.phase = Some(phase);
            self.enter_phase(phase);
            // Either a command went out, or enter_phase re-initialised (plan dropped), or it
            // moved on by itself (NXP restart): in all these cases this loop is done.
            if self.awaiting.is_some() || self.plan != plan || self.phase != Some(phase) {
                return;
            }
            from = Some(phase);
        }
        let was_init = plan.contains(Phase::Reset);
        self.plan = PhaseSet::EMPTY;
        self.phase = None;
        if was_init {
            self.initialized = true;
            self.attempts = 0;
            self.push(Event::Ready);
        }
        self.settle();
    }

    /// Send the first command of `phase`, or leave `awaiting` empty to pass over it.
    fn enter_phase(&mut self, phase: Phase) {
        match phase {
            Phase::StopDiscovery => {
                if self.rf != RfState::Idle {
                    self.deactivate_ntf_seen = false;
                    let cmd = RfDeactivateCmd {
                        deactivation_type: DeactivationType::Idle,
                    };
                    self.send(&Message::RfDeactivateCmd(cmd), "RF_DEACTIVATE_RSP");
                }
            }
            Phase::Reset => {
                self.reset_reassembly = true;
                self.rf = RfState::Idle;
                // Reset the configuration too: every parameter is then read and, where it
                // differs, written, so the controller ends up in one known configuration.
                let cmd = CoreResetCmd {
                    reset_type: ResetType::ResetConfig,
                };
                self.send(&Message::CoreResetCmd(cmd), "CORE_RESET_RSP");
            }
            Phase::Init => {
                let cmd = if self.version.is_v2() {
                    CoreInitCmd::Nci2 {
                        feature_enable: [0x00, 0x00],
                    }
                } else {
                    CoreInitCmd::Nci1
                };
                self.send(&Message::CoreInitCmd(cmd), "CORE_INIT_RSP");
            }
            Phase::NxpActivate => {
                if self.is_nxp() {
                    self.send(&Message::NciProprietaryActCmd, "NCI_PROPRIETARY_ACT_RSP");
                }
            }
            Phase::NxpConfig => {
                if self.is_nxp() {
                    let wanted = self.config.wanted_nxp_params();
                    if !wanted.is_empty() {
                        self.job.start(wanted);
                        self.send_get_config();
                    }
                }
            }
            Phase::CoreConfig => {
                let wanted = self.config.wanted_core_params(self.version);
                if !wanted.is_empty() {
                    self.job.start(wanted);
                    self.send_get_config();
                }
            }
            Phase::NfceeDiscover => {
                let cmd = if self.version.is_v2() {
                    NfceeDiscoverCmd::Nci2
                } else {
                    NfceeDiscoverCmd::Nci1 {
                        action: NfceeDiscoverAction::Enable,
                    }
                };
                self.send(&Message::NfceeDiscoverCmd(cmd), "NFCEE_DISCOVER_RSP");
            }
            Phase::DiscoverMap => {
                // Card emulation only: ISO-DEP in listen mode goes to the ISO-DEP RF interface,
                // so that data packets carry whole APDUs (NCI 1.0 §8.3).
                let mappings = [DiscoverMapping {
                    protocol: RfProtocol::IsoDep,
                    mode: MappingMode::LISTEN,
                    interface: RfInterface::IsoDep,
                }];
                let cmd = RfDiscoverMapCmd {
                    mappings: List::from_items(&mappings),
                };
                self.send(&Message::RfDiscoverMapCmd(cmd), "RF_DISCOVER_MAP_RSP");
            }
            Phase::Routing => self.enter_routing(),
            Phase::StartDiscovery => {
                self.pending_listen = false;
                if self.config.enabled && !self.config.listen.is_empty() {
                    let mut configs: Vec<DiscoverConfig, 3> = Vec::new();
                    for tech_mode in self.config.listen.tech_modes() {
                        // Frequency 1: every discovery period (NCI 1.0 Table 52). Three modes
                        // at most.
                        let _ = configs.push(DiscoverConfig {
                            tech_mode,
                            frequency: 0x01,
                        });
                    }
                    let cmd = RfDiscoverCmd {
                        configs: List::from_items(&configs),
                    };
                    self.send(&Message::RfDiscoverCmd(cmd), "RF_DISCOVER_RSP");
                }
            }
        }
    }

    fn is_nxp(&self) -> bool {
        self.info.as_ref().is_some_and(ControllerInfo::is_nxp)
    }

    /// Look for work once no procedure runs: discovery to stop or start, a deferred routing or
    /// listen change. Changes wait while a reader is present (RFST_LISTEN_ACTIVE or _SLEEP)
    /// so that a tap is never cut short — except switching off, which the host asked for.
    fn settle(&mut self) {
        if !self.initialized || self.failed || self.retry_at.is_some() || !self.plan.is_empty() {
            return;
        }
        if self.pending_routes && self.routes_unchanged() {
            // Host AIDs cost no table space, so most service changes leave the table as it
            // is: no reason to interrupt discovery for them.
            self.pending_routes = false;
        }
        let want_discovery = self.config.enabled && !self.config.listen.is_empty();
        let mut plan = PhaseSet::EMPTY;
        match self.rf {
            RfState::ListenActive | RfState::ListenSleep => {
                if !self.config.enabled {
                    plan = plan.with(Phase::StopDiscovery);
                }
            }
            RfState::Discovery => {
                if !want_discovery {
                    plan = plan.with(Phase::StopDiscovery);
                } else if self.pending_routes || self.pending_listen {
                    plan = plan.with(Phase::StopDiscovery).with(Phase::StartDiscovery);
                    if self.pending_routes {
                        plan = plan.with(Phase::Routing);
                    }
                }
            }
            RfState::Idle => {
                if self.pending_routes {
                    plan = plan.with(Phase::Routing);
                }
                if want_discovery {
                    plan = plan.with(Phase::StartDiscovery);
                }
            }
        }
        if !plan.is_empty() {
            self.start_plan(plan);
        }
    }

    /// Something went wrong: end the session, forget the procedure, and schedule a fresh
    /// start-up after a back-off — or give up after too many attempts in a row.
    pub(crate) fn reinit(&mut self, cause: ReinitCause) {
        self.end_session(Deactivation::Reinitialized);
        self.abort_procedure();
        self.rf = RfState::Idle;
        self.initialized = false;
        self.reset_reassembly = true;
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts > self.config.max_reinit_attempts {
            self.failed = true;
            self.retry_at = None;
            self.push(Event::Error(ControllerError::GaveUp {
                attempts: self.attempts - 1,
                last: cause,
            }));
            return;
        }
        let delay = backoff(
            self.config.retry_delay,
            self.config.max_retry_delay,
            self.attempts,
        );
        self.retry_at = Some(self.now + delay);
        self.push(Event::Reinitializing {
            cause,
            attempt: self.attempts,
            delay,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Configuration: read, compare, write what differs
    // ---------------------------------------------------------------------------------------

    fn send_get_config(&mut self) {
        let ids = self.job.unknown_ids();
        let cmd = CoreGetConfigCmd {
            params: List::from_items(&ids),
        };
        self.send(&Message::CoreGetConfigCmd(cmd), "CORE_GET_CONFIG_RSP");
    }

    fn on_get_config(&mut self, rsp: &CoreGetConfigRsp<'_>) {
        match rsp.status {
            Status::Ok => {
                for param in rsp.params.iter() {
                    self.compare(&param);
                }
                // Asked for but not returned: write it.
                for s in self.job.state.iter_mut() {
                    if *s == ParamState::Unknown {
                        *s = ParamState::Write;
                    }
                }
            }
            Status::InvalidParam => {
                // NCI 1.0 §4.3.2: the response lists the parameters the NFCC does not know,
                // each with length 0, and no values. Those are written anyway (a controller may
                // accept a parameter it cannot report, and CORE_SET_CONFIG_RSP names those it
                // really rejects); the rest are asked for once more on their own.
                for param in rsp.params.iter() {
                    if param.value().is_empty() {
                        self.job.mark(param.id, ParamState::Write);
                    } else {
                        self.compare(&param);
                    }
                }
                if !self.job.get_retried && !self.job.unknown_ids().is_empty() {
                    self.job.get_retried = true;
                    self.send_get_config();
                    return;
                }
                for s in self.job.state.iter_mut() {
                    if *s == ParamState::Unknown {
                        *s = ParamState::Write;
                    }
                }
            }
            status => {
                return self.reinit(ReinitCause::Failed {
                    response: "CORE_GET_CONFIG_RSP",
                    status,
                })
            }
        }
        self.send_set_config();
    }

    fn compare(&mut self, current: &ConfigParam<'_>) {
        let matches = self
            .job
            .wanted
            .iter()
            .any(|w| w.id == current.id && w.value.as_slice() == current.value());
        let state = if matches {
            ParamState::Matches
        } else {
            ParamState::Write
        };
        self.job.mark(current.id, state);
    }

    /// Send the next CORE_SET_CONFIG_CMD: as many differing parameters as fit one control
    /// packet payload; the step ends when none is left.
    fn send_set_config(&mut self) {
        let max_payload = self.max_control_payload();
        let max = usize::from(max_payload);
        let (index, queued) = {
            let mut chosen: Vec<ConfigParam<'_>, MAX_WANTED_PARAMS> = Vec::new();
            let mut size = 1;
            let mut index = self.job.next_set;
            while let (Some(param), Some(state)) =
                (self.job.wanted.get(index), self.job.state.get(index))
            {
                if *state == ParamState::Write {
                    let len = param.id.wire_len() + 1 + param.value.len();
                    if !chosen.is_empty() && size + len > max {
                        break;
                    }
                    size += len;
                    // Capacity equals that of `wanted`.
                    let _ = chosen.push(param.as_config_param());
                }
                index += 1;
            }
            let queued = if chosen.is_empty() {
                None
            } else {
                let cmd = CoreSetConfigCmd {
                    params: List::from_items(&chosen),
                };
                Some(queue_command(
                    &mut self.tx_queue,
                    max_payload,
                    &Message::CoreSetConfigCmd(cmd),
                ))
            };
            (index, queued)
        };
        self.job.next_set = index;
        match queued {
            Some(queued) => self.expect_response(queued, "CORE_SET_CONFIG_RSP"),
            None => self.config_done(),
        }
    }

    fn on_set_config(&mut self, rsp: &CoreSetConfigRsp<'_>) {
        match rsp.status {
            Status::Ok => {}
            // NCI 1.0 §4.3.1: the NFCC set every valid parameter and names the others.
            Status::InvalidParam => {
                for id in rsp.invalid_params.iter() {
                    self.push(Event::Error(ControllerError::ParamRejected(id)));
                }
            }
            status => {
                return self.reinit(ReinitCause::Failed {
                    response: "CORE_SET_CONFIG_RSP",
                    status,
                })
            }
        }
        self.send_set_config();
    }

    fn config_done(&mut self) {
        if self.phase == Some(Phase::NxpConfig) {
            let written = self.job.written_ids();
            for id in &written {
                if self.nxp_written.contains(id) {
                    self.push(Event::Error(ControllerError::NxpParamNotApplied(*id)));
                }
            }
            let needs_reset = written
                .iter()
                .any(|id| matches!(id, ParamId::Nxp(tag) if NXP_TAGS_NEEDING_RESET.contains(tag)));
            self.nxp_written = written;
            self.job.clear();
            if needs_reset && !self.nxp_reset_done {
                // The firmware reads these tags only while booting: reset and initialise once
                // more (the written values now read back equal, so nothing is written again).
                self.nxp_reset_done = true;
                self.start_plan(PhaseSet::INIT);
                return;
            }
        }
        self.job.clear();
        self.next_phase();
    }

    // ---------------------------------------------------------------------------------------
    // Routing
    // ---------------------------------------------------------------------------------------

    fn enter_routing(&mut self) {
        self.pending_routes = false;
        let Some(limits) = self.info.as_ref().map(ControllerInfo::routing_limits) else {
            return;
        };
        let mut builder = RoutingTableBuilder::new(limits);
        for index in 0..self.config.routes.len() {
            let Some(rule) = self.config.routes.get(index).cloned() else {
                break;
            };
            if let Err(err) = builder.add(rule) {
                self.push(Event::Error(ControllerError::Routing(err)));
            }
        }
        match builder.build() {
            Ok(table) => {
                self.sending = Some(table);
                self.builder = Some(builder);
                self.routing_index = 0;
                self.send_routing_command();
            }
            // Without a table the controller keeps its default route (the host).
            Err(err) => self.push(Event::Error(ControllerError::Routing(err))),
        }
    }

    /// The wanted routes build, in the mode last programmed, exactly the table the controller
    /// holds.
    fn routes_unchanged(&self) -> bool {
        let (Some(info), Some(programmed)) = (self.info.as_ref(), self.programmed.as_ref()) else {
            return false;
        };
        let mut builder = RoutingTableBuilder::new(info.routing_limits());
        for rule in &self.config.routes {
            if builder.add(rule.clone()).is_err() {
                return false;
            }
        }
        builder.set_mode(programmed.mode());
        builder
            .build()
            .is_ok_and(|table| table.commands().eq(programmed.commands()))
    }

    fn send_routing_command(&mut self) {
        let max = self.max_control_payload();
        let queued = match self
            .sending
            .as_ref()
            .and_then(|table| table.command(self.routing_index))
            .map(ListenModeRouting::parse)
        {
            Some(Ok(cmd)) => queue_command(
                &mut self.tx_queue,
                max,
                &Message::RfSetListenModeRoutingCmd(cmd),
            ),
            Some(Err(err)) => Err(("RF_SET_LISTEN_MODE_ROUTING_CMD", err)),
            None => Err(("RF_SET_LISTEN_MODE_ROUTING_CMD", Error::Truncated)),
        };
        self.expect_response(queued, "RF_SET_LISTEN_MODE_ROUTING_RSP");
    }

    fn on_routing_rsp(&mut self, status: Status) {
        if status.is_ok() {
            self.routing_index += 1;
            let count = self.sending.as_ref().map_or(0, RoutingTable::command_count);
            if self.routing_index < count {
                return self.send_routing_command();
            }
            if let Some(table) = self.sending.take() {
                self.push(Event::RoutingProgrammed {
                    mode: table.mode(),
                    used: table.encoded_len(),
                    capacity: table.capacity(),
                });
                self.programmed = Some(table);
            }
            self.builder = None;
            return self.next_phase();
        }
        let Some(builder) = self.builder.as_mut() else {
            return self.reinit(ReinitCause::Failed {
                response: "RF_SET_LISTEN_MODE_ROUTING_RSP",
                status,
            });
        };
        // Mixed → Protocol → Technology: the controller counts the table differently or has
        // less room than it reported; send the smaller table from its start. A mode that
        // yields the same commands (Mixed without off-host AIDs is Protocol) is passed over.
        let mut rebuilt = None;
        while builder.handle_refusal(status).is_some() {
            match builder.build() {
                Ok(table) => {
                    let same = self
                        .sending
                        .as_ref()
                        .is_some_and(|old| old.commands().eq(table.commands()));
                    if !same {
                        rebuilt = Some(Ok(table));
                        break;
                    }
                }
                Err(err) => {
                    rebuilt = Some(Err(err));
                    break;
                }
            }
        }
        if let Some(result) = rebuilt {
            match result {
                Ok(table) => {
                    self.sending = Some(table);
                    self.routing_index = 0;
                    return self.send_routing_command();
                }
                Err(err) => self.push(Event::Error(ControllerError::Routing(err))),
            }
        } else if matches!(status, Status::MessageSizeExceeded | Status::Failed) {
            // Even technology entries do not fit: the controller keeps its default route.
            self.push(Event::Error(ControllerError::RoutingRefused(status)));
        } else {
            return self.reinit(ReinitCause::Failed {
                response: "RF_SET_LISTEN_MODE_ROUTING_RSP",
                status,
            });
        }
        self.sending = None;
        self.builder = None;
        self.next_phase();
    }

    // ---------------------------------------------------------------------------------------
    // Incoming control messages
    // ---------------------------------------------------------------------------------------

    /// A whole control message (reassembled).
    pub(crate) fn handle_control(&mut self, mt: MessageType, id: PacketId, payload: &[u8]) {
        let PacketId::Control { gid, oid } = id else {
            return;
        };
        let parsed = Message::parse(mt, id, payload, self.version);
        match mt {
            MessageType::Response => self.on_response(gid, oid, parsed, payload),
            MessageType::Notification => self.on_notification(gid, oid, parsed),
            // Commands travel DH → NFCC only (NCI 1.0 §3.2).
            _ => self.reinit(ReinitCause::Unexpected {
                message: parsed.map_or("message", |m| m.name()),
            }),
        }
    }

    fn on_response(
        &mut self,
        gid: Gid,
        oid: u8,
        parsed: crate::wire::Result<Message<'_>>,
        payload: &[u8],
    ) {
        let name = parsed.as_ref().map_or("response", |m| m.name());
        let Some(awaiting) = self
            .awaiting
            .filter(|a| a.is(MessageType::Response, gid, oid))
        else {
            // NCI 1.0 §3.2: one command at a time; a response to nothing means the two sides
            // disagree about the state.
            return self.reinit(ReinitCause::Unexpected { message: name });
        };
        self.awaiting = None;
        let msg = match parsed {
            Ok(msg) => msg,
            Err(error) => {
                // A failure response may be shorter than the success layout.
                return match payload.first().map(|&s| Status::from(s)) {
                    Some(status) if !status.is_ok() => self.reinit(ReinitCause::Failed {
                        response: awaiting.name,
                        status,
                    }),
                    _ => self.reinit(ReinitCause::Malformed {
                        message: awaiting.name,
                        error,
                    }),
                };
            }
        };
        self.on_phase_response(awaiting.name, &msg);
    }

    fn fail_if_not_ok(&mut self, response: &'static str, status: Status) -> bool {
        if status.is_ok() {
            false
        } else {
            self.reinit(ReinitCause::Failed { response, status });
            true
        }
    }

    fn on_phase_response(&mut self, name: &'static str, msg: &Message<'_>) {
        match (self.phase, msg) {
            (Some(Phase::Reset), Message::CoreResetRsp(rsp)) => {
                if self.fail_if_not_ok(name, rsp.status()) {
                    return;
                }
                match rsp {
                    // NCI 1.0 §4.1: the version comes with the response.
                    CoreResetRsp::Nci1 { nci_version, .. } => {
                        self.version = *nci_version;
                        self.next_phase();
                    }
                    // NCI 2.0 §4.1: status only; CORE_RESET_NTF follows with the version.
                    CoreResetRsp::Nci2 { .. } => {
                        self.expect_notification(Gid::Core, core_oid::CORE_RESET, "CORE_RESET_NTF")
                    }
                }
            }
            (Some(Phase::Init), Message::CoreInitRsp(rsp)) => {
                if self.fail_if_not_ok(name, rsp.status) {
                    return;
                }
                let manufacturer = self
                    .reset_manufacturer
                    .as_ref()
                    .map(|(id, info)| (*id, info.as_slice()));
                self.info = Some(ControllerInfo::from_init_rsp(
                    self.version,
                    rsp,
                    manufacturer,
                ));
                self.next_phase();
            }
            (Some(Phase::NxpActivate), Message::NciProprietaryActRsp(rsp)) => {
                if !self.fail_if_not_ok(name, rsp.status) {
                    self.next_phase();
                }
            }
            (Some(Phase::NxpConfig | Phase::CoreConfig), Message::CoreGetConfigRsp(rsp)) => {
                self.on_get_config(rsp)
            }
            (Some(Phase::NxpConfig | Phase::CoreConfig), Message::CoreSetConfigRsp(rsp)) => {
                self.on_set_config(rsp)
            }
            (Some(Phase::NfceeDiscover), Message::NfceeDiscoverRsp(rsp)) => {
                if self.fail_if_not_ok(name, rsp.status) {
                    return;
                }
                if let Some(info) = self.info.as_mut() {
                    info.nfcee_count = Some(rsp.number_of_nfcees);
                }
                self.next_phase();
            }
            (Some(Phase::DiscoverMap), Message::RfDiscoverMapRsp(rsp)) => {
                if !self.fail_if_not_ok(name, rsp.status) {
                    self.next_phase();
                }
            }
            (Some(Phase::Routing), Message::RfSetListenModeRoutingRsp(rsp)) => {
                self.on_routing_rsp(rsp.status)
            }
            (Some(Phase::StartDiscovery), Message::RfDiscoverRsp(rsp)) => {
                // A discovery already running is what was asked for.
                if rsp.status != Status::DiscoveryAlreadyStarted
                    && self.fail_if_not_ok(name, rsp.status)
                {
                    return;
                }
                self.rf = RfState::Discovery;
                self.next_phase();
            }
            (Some(Phase::StopDiscovery), Message::RfDeactivateRsp(rsp)) => {
                if self.fail_if_not_ok(name, rsp.status) {
                    return;
                }
                // NCI 1.0 §5.2.2: from RFST_DISCOVERY the response alone ends in RFST_IDLE;
                // from the listen states (§5.2.5, §5.2.6) RF_DEACTIVATE_NTF follows.
                let listening = matches!(self.rf, RfState::ListenActive | RfState::ListenSleep);
                if listening && !self.deactivate_ntf_seen {
                    self.expect_notification(Gid::Rf, rf_oid::RF_DEACTIVATE, "RF_DEACTIVATE_NTF");
                } else {
                    self.rf = RfState::Idle;
                    self.next_phase();
                }
            }
            (_, other) => self.reinit(ReinitCause::Unexpected {
                message: other.name(),
            }),
        }
    }

    fn on_notification(&mut self, gid: Gid, oid: u8, parsed: crate::wire::Result<Message<'_>>) {
        let msg = match parsed {
            Ok(msg) => msg,
            // Notifications this crate has no layout for (RFU or another vendor's) carry
            // nothing the state machine needs.
            Err(Error::UnknownMessage) => return,
            Err(error) => {
                let message = notification_name(gid, oid);
                return self.reinit(ReinitCause::Malformed { message, error });
            }
        };
        match msg {
            Message::CoreResetNtf(ntf) => self.on_reset_ntf(&ntf),
            Message::CoreConnCreditsNtf(ntf) => {
                for entry in ntf.entries.iter() {
                    if entry.conn_id == 0 {
                        self.add_credits(entry.credits);
                    }
                }
            }
            Message::CoreGenericErrorNtf(ntf) => {
                if is_fatal_status(ntf.status) {
                    self.reinit(ReinitCause::GenericError(ntf.status));
                } else {
                    self.push(Event::Error(ControllerError::GenericError(ntf.status)));
                }
            }
            Message::CoreInterfaceErrorNtf(ntf) => {
                if is_fatal_status(ntf.status) {
                    self.reinit(ReinitCause::InterfaceError(ntf.status));
                } else {
                    self.push(Event::Error(ControllerError::InterfaceError {
                        status: ntf.status,
                        conn_id: ntf.conn_id,
                    }));
                    // The command APDU being received is lost; the reader repeats or gives up.
                    if ntf.conn_id == 0 && !self.rx.is_idle() {
                        self.rx.reset();
                    }
                }
            }
            Message::RfIntfActivatedNtf(ntf) => self.on_activated(&ntf),
            Message::RfDeactivateNtf(ntf) => self.on_deactivated(ntf),
            Message::RfFieldInfoNtf(ntf) => self.push(if ntf.field_on() {
                Event::FieldOn
            } else {
                Event::FieldOff
            }),
            // NFCEE_DISCOVER_NTF, RF_NFCEE_ACTION_NTF, proprietary notifications...: nothing
            // for a host card emulation host to act on.
            _ => {}
        }
    }

    fn on_reset_ntf(&mut self, ntf: &CoreResetNtf<'_>) {
        let awaited = self
            .awaiting
            .is_some_and(|a| a.is(MessageType::Notification, Gid::Core, core_oid::CORE_RESET));
        if awaited {
            self.awaiting = None;
            return match ntf {
                CoreResetNtf::Nci2 {
                    nci_version,
                    manufacturer_id,
                    manufacturer_info,
                    ..
                } => {
                    self.version = *nci_version;
                    let take = manufacturer_info.len().min(MAX_MANUFACTURER_INFO);
                    let info = Vec::from_slice(manufacturer_info.get(..take).unwrap_or(&[]))
                        .unwrap_or_default();
                    self.reset_manufacturer = Some((*manufacturer_id, info));
                    self.next_phase();
                }
                CoreResetNtf::Nci1 { .. } => self.reinit(ReinitCause::Malformed {
                    message: "CORE_RESET_NTF",
                    error: Error::Truncated,
                }),
            };
        }
        let resetting = self.phase == Some(Phase::Reset)
            && self
                .awaiting
                .is_some_and(|a| a.is(MessageType::Response, Gid::Core, core_oid::CORE_RESET));
        if resetting {
            // A notification from before our CORE_RESET_CMD (power-on, NCI 2.0 §4.1 trigger
            // "powered on"): the reset in progress supersedes it.
            return;
        }
        self.reinit(ReinitCause::ControllerReset);
    }

    // ---------------------------------------------------------------------------------------
    // RF activation and deactivation
    // ---------------------------------------------------------------------------------------

    fn on_activated(&mut self, ntf: &RfIntfActivatedNtf<'_>) {
        if self.rf == RfState::Idle {
            return self.reinit(ReinitCause::Unexpected {
                message: "RF_INTF_ACTIVATED_NTF",
            });
        }
        if ntf.max_data_packet_payload == 0 {
            // NCI 1.0 Table 61: 1–255. No response could ever be sent.
            return self.reinit(ReinitCause::Malformed {
                message: "RF_INTF_ACTIVATED_NTF",
                error: Error::BadValue,
            });
        }
        self.clear_data_path();
        let activation = Activation::from_ntf(ntf);
        self.credits = if ntf.initial_credits == CREDITS_FLOW_CONTROL_OFF {
            Credits::Unlimited
        } else {
            Credits::Count(ntf.initial_credits)
        };
        self.session = Some(activation);
        self.rf = RfState::ListenActive;
        self.push(Event::Activated(activation));
    }

    fn on_deactivated(&mut self, ntf: RfDeactivateNtf) {
        let rf = match ntf.deactivation_type {
            DeactivationType::Idle => RfState::Idle,
            DeactivationType::Discovery => RfState::Discovery,
            DeactivationType::Sleep | DeactivationType::SleepAf => RfState::ListenSleep,
            DeactivationType::Unknown(_) => {
                return self.reinit(ReinitCause::Unexpected {
                    message: "RF_DEACTIVATE_NTF",
                })
            }
        };
        self.end_session(Deactivation::Ntf {
            kind: ntf.deactivation_type,
            reason: ntf.reason,
        });
        self.rf = rf;
        if self.phase == Some(Phase::StopDiscovery) {
            if let Some(awaiting) = self.awaiting {
                if awaiting.is(MessageType::Notification, Gid::Rf, rf_oid::RF_DEACTIVATE) {
                    self.awaiting = None;
                    self.rf = RfState::Idle;
                    return self.next_phase();
                }
                if awaiting.kind == MessageType::Response {
                    self.deactivate_ntf_seen = true;
                }
            }
            return;
        }
        self.settle();
    }

    fn end_session(&mut self, how: Deactivation) {
        if self.session.take().is_some() {
            self.push(Event::Deactivated(how));
        }
        // A half-received command or half-sent response has no meaning past the session.
        self.clear_data_path();
    }

    fn clear_data_path(&mut self) {
        self.rx.reset();
        self.rx_generation = self.rx_generation.wrapping_add(1);
        self.tx_apdu.clear();
        self.tx_offset = 0;
        self.tx_active = false;
        self.awaiting_response = false;
        self.credits = Credits::Count(0);
        self.credit_wait_since = None;
    }

    fn add_credits(&mut self, credits: u8) {
        if self.session.is_none() {
            return;
        }
        if let Credits::Count(n) = &mut self.credits {
            *n = n.saturating_add(credits);
        }
        if self.credits.available() {
            self.credit_wait_since = None;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Data packets
    // ---------------------------------------------------------------------------------------

    /// One data packet (NCI 1.0 §3.4.3): a segment of a command APDU on the static RF
    /// connection. `packet` is the whole packet, header included, whose header fields the
    /// caller already parsed.
    pub(crate) fn handle_data(&mut self, packet: &[u8], conn_id: u8, credits: u8, pbf: bool) {
        if !self.connection_exists(conn_id) {
            // This DH never sends CORE_CONN_CREATE_CMD: the only connections are the static
            // ones. Data on any other means the two sides no longer agree on the stream — on
            // a byte stream typically a length octet that lied and shifted every header after
            // it — and only a re-initialisation brings them together again.
            return self.reinit(ReinitCause::Unexpected {
                message: "DATA on a connection never created",
            });
        }
        if conn_id != 0 || self.session.is_none() {
            self.push(Event::Error(ControllerError::UnexpectedData { conn_id }));
            return;
        }
        // NCI 2.0 §3.4.3: the NFCC may return credits in the CR field of the data packets it
        // sends, instead of CORE_CONN_CREDITS_NTF. NCI 1.0 has no such field (RFU, sent 0).
        if self.version.is_v2() && credits > 0 {
            self.add_credits(credits);
        }
        // Any packet releases the command delivered before it: an Event::Data of that one
        // still queued must not show what comes now.
        self.rx_generation = self.rx_generation.wrapping_add(1);
        let discarding = self.rx.is_discarding(conn_id);
        match self.rx.push_copied(packet) {
            Ok(Some(_)) => {}
            Ok(None) => {
                // The last segment of a command dropped as too long: the reader still needs
                // an answer to keep the exchange going.
                if discarding && !pbf {
                    self.answer_wrong_length();
                }
                return;
            }
            Err(ReassemblyError::Capacity) => {
                // Longer than an extended-length C-APDU; the rest of it is swallowed.
                self.push(Event::Error(ControllerError::ApduTooLong));
                if !pbf {
                    self.answer_wrong_length();
                }
                return;
            }
            // The caller parsed this very header; only data packets come here.
            Err(error) => {
                return self.reinit(ReinitCause::Malformed {
                    message: "DATA",
                    error: error.into(),
                })
            }
        }
        // ISO-DEP is half duplex: a new command means any response still going out is stale.
        self.tx_active = false;
        self.tx_apdu.clear();
        self.tx_offset = 0;
        self.credit_wait_since = None;
        self.awaiting_response = true;
        if self
            .events
            .push_back(Queued::Data(self.rx_generation))
            .is_err()
        {
            self.events_dropped = true;
        }
    }

    /// Whether logical connection `conn_id` exists without CORE_CONN_CREATE_CMD: the static
    /// RF connection 0 (NCI 1.0 §4.4.2), and under NCI 2.0 the static HCI connection 1
    /// (NCI 2.0 §4.4.2).
    fn connection_exists(&self, conn_id: u8) -> bool {
        conn_id == 0 || (conn_id == 1 && self.version.is_v2())
    }

    /// No host service can be given a command longer than an extended-length C-APDU; the
    /// reader still needs an answer to keep the exchange going.
    fn answer_wrong_length(&mut self) {
        self.tx_apdu.clear();
        // Two octets always fit.
        let _ = self.tx_apdu.extend_from_slice(&[0x67, 0x00]);
        self.start_tx();
    }
}

/// CORE_GENERIC_ERROR_NTF and CORE_INTERFACE_ERROR_NTF statuses that mean the two sides no
/// longer agree (the NFCC lost its initialisation, or could not make sense of what the DH
/// sent): only a reset brings them back together. RF and discovery statuses
/// (DISCOVERY_TEAR_DOWN, DISCOVERY_TARGET_ACTIVATION_FAILED, RF_*_ERROR), NFCEE statuses and
/// statuses this crate does not name (e.g. NXP's 0xE6 "RF settings restored") are reported and
/// otherwise ignored: the controller deals with them and keeps running.
fn is_fatal_status(status: Status) -> bool {
    matches!(
        status,
        Status::NotInitialized | Status::Failed | Status::SyntaxError | Status::SemanticError
    )
}

fn notification_name(gid: Gid, oid: u8) -> &'static str {
    match (gid, oid) {
        (Gid::Core, core_oid::CORE_RESET) => "CORE_RESET_NTF",
        (Gid::Core, core_oid::CORE_CONN_CREDITS) => "CORE_CONN_CREDITS_NTF",
        (Gid::Core, core_oid::CORE_GENERIC_ERROR) => "CORE_GENERIC_ERROR_NTF",
        (Gid::Core, core_oid::CORE_INTERFACE_ERROR) => "CORE_INTERFACE_ERROR_NTF",
        (Gid::Rf, rf_oid::RF_INTF_ACTIVATED) => "RF_INTF_ACTIVATED_NTF",
        (Gid::Rf, rf_oid::RF_DEACTIVATE) => "RF_DEACTIVATE_NTF",
        (Gid::Rf, rf_oid::RF_FIELD_INFO) => "RF_FIELD_INFO_NTF",
        _ => "notification",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_sets() {
        assert!(!PhaseSet::INIT.contains(Phase::StopDiscovery));
        for phase in &ALL_PHASES[1..] {
            assert!(PhaseSet::INIT.contains(*phase));
        }
        let plan = PhaseSet::EMPTY.with(Phase::Routing);
        assert!(plan.contains(Phase::Routing) && !plan.contains(Phase::Reset));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(50);
        assert_eq!(backoff(base, max, 1), Duration::from_millis(10));
        assert_eq!(backoff(base, max, 2), Duration::from_millis(20));
        assert_eq!(backoff(base, max, 3), Duration::from_millis(40));
        assert_eq!(backoff(base, max, 4), max);
        assert_eq!(backoff(base, max, 200), max);
    }
}
