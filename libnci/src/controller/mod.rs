//! The device-host side of NCI for host card emulation: a sans-IO state machine that brings an
//! NFC controller up, keeps it configured, runs listen-mode discovery and carries APDUs between
//! a reader and the host.
//!
//! What it does: reset and initialisation for NCI 1.0 (PN7150) and NCI 2.0, NXP extension
//! activation and configuration, configuration without needless writes, NFCEE discovery, the
//! listen-mode discovery map, routing table programming with fallback, RF discovery, card
//! sessions (activation, reassembly of command APDUs, segmentation and credit flow control of
//! response APDUs, deactivation), field information, and recovery from every failure by
//! re-initialisation. What it does not do: I/O, clocks, threads, allocation, reader (poll)
//! mode, NFCEE (secure element) management, or deciding which application answers an APDU.
//!
//! # Driving it (quinn-proto style)
//!
//! The state machine never does I/O and never reads a clock. The caller owns the transport and
//! the timer and calls, in this order:
//!
//! 1. an input: [`Controller::start`], [`Controller::handle_packet`] (one whole NCI packet from
//!    the transport), [`Controller::handle_timeout`] (the timer fired), or a command
//!    ([`Controller::send_data`], [`Controller::set_routes`], [`Controller::set_listen`],
//!    [`Controller::set_enabled`]);
//! 2. [`Controller::poll_transmit`] until it returns `None`, writing each packet to the
//!    transport in order;
//! 3. [`Controller::poll_event`] until it returns `None` (an [`Event::Data`] borrows the
//!    controller's receive buffer and is valid until the next input);
//! 4. [`Controller::poll_timeout`], re-arming the single timer (or disarming it on `None`).
//!
//! Every input takes the current [`Instant`]. Nothing is lost by polling late, but events are
//! bounded: drain them after every input.
//!
//! ```
//! use libnci::controller::{Config, Controller, Event};
//! use libnci::time::Instant;
//!
//! let mut ctl = Box::new(Controller::new(Config::default()));
//! ctl.start(Instant::ZERO);
//! // CORE_RESET_CMD, reset configuration.
//! assert_eq!(ctl.poll_transmit().as_deref(), Some(&[0x20, 0x00, 0x01, 0x01][..]));
//! assert_eq!(ctl.poll_transmit(), None); // one command at a time
//! let deadline = ctl.poll_timeout(); // arm the timer: the response is due by then
//! assert!(deadline.is_some());
//!
//! // CORE_RESET_RSP from a PN7150: OK, NCI 1.0, configuration reset.
//! ctl.handle_packet(&[0x40, 0x00, 0x03, 0x00, 0x10, 0x01], Instant::from_millis(2));
//! // CORE_INIT_CMD.
//! assert_eq!(ctl.poll_transmit().as_deref(), Some(&[0x20, 0x01, 0x00][..]));
//! while let Some(event) = ctl.poll_event() {
//!     if let Event::Data(apdu) = event {
//!         // hand the command APDU to the host service, answer later with send_data()
//!         let _ = apdu;
//!     }
//! }
//! ```
//!
//! The controller holds two large buffers (a 65 544-octet command APDU, the longest
//! extended-length C-APDU, and a 65 538-octet response APDU) plus about 20 KiB of state
//! (routing tables, configuration, queues, control reassembly) — about 150 KiB in all: keep it
//! in a `Box` or a `static`, not on a small stack.
//!
//! # States
//!
//! [`Controller::state`] reports one of [`State`]:
//!
//! ```text
//!              start()                         all start-up steps done
//!   Off ──────────────────► Initializing ──────────────────────────────► Discovery ◄──┐
//!                             ▲    │                    (Event::Ready)    │   ▲  │    │
//!                             │    │ failure                 activation │   │  │ set_routes /
//!                  back-off   │    ▼                                    ▼   │  │ set_listen
//!                  expired    Recovering ◄──────── any failure ──── Active  │  ▼    │
//!                             │    (Event::Reinitializing)   deactivation ──┘ Reconfiguring
//!                             │                                               │
//!                             └── too many attempts ──► Failed  (start() again)
//!
//!   set_enabled(false) / no listen technology:  Discovery ──► Reconfiguring ──► Idle
//!   set_enabled(true):                          Idle ──► Reconfiguring ──► Discovery
//! ```
//!
//! - **Off**: created, nothing sent; packets are ignored.
//! - **Initializing**: the start-up sequence below runs, one command at a time.
//! - **Discovery**: RFST_DISCOVERY (NCI 1.0 §5.2.2): the controller listens on the configured
//!   technologies. Also RFST_LISTEN_SLEEP (§5.2.6), where a reader put the card to sleep.
//! - **Active**: RFST_LISTEN_ACTIVE (§5.2.5): a card session; APDUs flow.
//! - **Reconfiguring**: discovery is being stopped, the routing table reprogrammed, or
//!   discovery restarted.
//! - **Idle**: RFST_IDLE (§5.2.1): initialised, discovery off.
//! - **Recovering**: waiting out a back-off before resetting the controller.
//! - **Failed**: [`Config::max_reinit_attempts`] re-initialisations failed in a row; waits
//!   for [`Controller::start`] (the daemon may power-cycle the controller first).
//!
//! # Start-up
//!
//! Each step sends one command and waits for its response within
//! [`Config::command_timeout`] (NCI 1.0 §3.2: the DH sends the next command only after the
//! response to the previous one):
//!
//! 1. **CORE_RESET_CMD** (reset configuration, NCI 1.0 §4.1). NCI 1.0 answers with the version
//!    in CORE_RESET_RSP; NCI 2.0 answers with a status only and then sends CORE_RESET_NTF with
//!    the version and manufacturer (NCI 2.0 §4.1), which is awaited within the same timeout.
//!    A CORE_RESET_NTF arriving before the response (e.g. the power-on notification) is
//!    ignored. The version picks the layouts from here on.
//! 2. **CORE_INIT_CMD** (NCI 1.0: empty; NCI 2.0: two feature-enable octets, 0). The
//!    response is recorded as [`ControllerInfo`]: limits, interfaces, manufacturer.
//! 3. NXP controllers only (manufacturer 0x04): **NCI_PROPRIETARY_ACT_CMD** `2F 02 00`
//!    enables the NXP extensions (PN7150 UM10936 §6.3).
//! 4. NXP controllers with [`Config::nxp_params`]: **CORE_GET_CONFIG_CMD** of those tags, then
//!    **CORE_SET_CONFIG_CMD** of the ones that differ, nothing if none does. These tags live
//!    in EEPROM: reading first means a start never writes EEPROM needlessly. When a tag of
//!    [`NXP_TAGS_NEEDING_RESET`] (clock, RF transitions, PMU/TVDD: read only while the
//!    firmware boots) was written, the sequence starts over once from step 1 — as NXP's own
//!    stack does — and the second pass finds the values in place. A value still different
//!    after that reset is reported ([`ControllerError::NxpParamNotApplied`]) and written again
//!    without a further reset.
//! 5. **CORE_GET_CONFIG_CMD** of the NCI parameters of [`Config::wanted_core_params`]
//!    (LA_SEL_INFO, LB_SENSB_INFO, LI_FWI / LI_A_RATS_TB1, LI_A_HIST_BY, RF_FIELD_INFO, extra
//!    ones), then **CORE_SET_CONFIG_CMD** of those that differ, packed into as few commands as
//!    the control payload allows. A controller that answers STATUS_INVALID_PARAM (NCI 1.0
//!    §4.3.2: it lists the parameters it cannot report, with no values) is asked once more for
//!    the others; the unreportable ones are written anyway, and CORE_SET_CONFIG_RSP with
//!    STATUS_INVALID_PARAM (§4.3.1: the valid ones were set) is reported per parameter
//!    ([`ControllerError::ParamRejected`]) without stopping.
//! 6. **NFCEE_DISCOVER_CMD** (NCI 1.0: enable; NCI 2.0: empty, §9.2): records the number of
//!    NFCEEs (0 on a plain PN7150).
//! 7. **RF_DISCOVER_MAP_CMD**: ISO-DEP in listen mode to the ISO-DEP RF interface (NCI 1.0
//!    §7.2), so data packets carry whole APDUs. Poll mode is not mapped: card emulation only.
//! 8. **RF_SET_LISTEN_MODE_ROUTING_CMD** (NCI 1.0 §6.3.2) for the table
//!    [`crate::routing::RoutingTableBuilder`] builds from [`Config::routes`] against the
//!    controller's "Max Routing Table Size", one command per control packet with More set on
//!    all but the last. When the controller answers STATUS_MESSAGE_SIZE_EXCEEDED or
//!    STATUS_FAILED, the table is rebuilt one mode smaller (Mixed → Protocol → Technology)
//!    and sent again from its first command; if even technology entries are refused the
//!    controller keeps its default route ([`ControllerError::RoutingRefused`]).
//!    → [`Event::RoutingProgrammed`].
//! 9. **RF_DISCOVER_CMD** with the listen modes of [`Config::listen`] (NFC-A, NFC-B, NFC-F
//!    passive listen), unless discovery is disabled. → [`Event::Ready`].
//!
//! # Card sessions
//!
//! RF_INTF_ACTIVATED_NTF in a listen mode opens the session on the static RF connection
//! (conn id 0) → [`Event::Activated`]. Data packets are reassembled by their packet boundary
//! flag (NCI 1.0 §3.5) into one command APDU → [`Event::Data`]. The host answers with
//! [`Controller::send_data`]: the response is cut into packets of the activation's "Max Data
//! Packet Payload Size" and each packet spends one credit (NCI 1.0 §4.4.4). Credits start at
//! the activation's "Initial Number of Credits" (0xFF: no flow control) and come back with
//! CORE_CONN_CREDITS_NTF; under NCI 2.0 also in the CR field of received data packets (NCI 2.0
//! §3.4.3). On a PN7150 (1 credit, 255-octet payload) a 261-octet response is 255 octets, a
//! credit round trip, then 6 octets. A packet that waits longer than
//! [`Config::credit_timeout`] for a credit means the credit was lost: re-initialisation.
//!
//! RF_DEACTIVATE_NTF ends the session → [`Event::Deactivated`] (link loss, endpoint request —
//! the reader's DESELECT —, DH request...). A half-received command and a half-sent response
//! are dropped. With the Discovery type the controller is already listening again
//! (RFST_DISCOVERY); with the Sleep types it waits in RFST_LISTEN_SLEEP; nothing is sent. A
//! command APDU longer than 65 544 octets is dropped and answered with SW 67 00.
//! RF_FIELD_INFO_NTF → [`Event::FieldOn`] / [`Event::FieldOff`].
//!
//! # Changes while running
//!
//! [`Controller::set_routes`] and [`Controller::set_listen`] stop discovery
//! (RF_DEACTIVATE_CMD, Idle; from RFST_DISCOVERY the response alone ends it, NCI 1.0
//! §5.2.2), reprogram the routing table (routes only) and restart discovery. While a reader is
//! present (Active, or RFST_LISTEN_SLEEP) the change waits until the session is over, so a tap
//! is never cut short; during start-up it is picked up by the steps still to come or applied
//! right after [`Event::Ready`]. Routes that build the very table the controller already holds
//! (host AIDs take no table space, so most service changes) send nothing.
//! [`Controller::set_enabled`]`(false)` stops discovery at once,
//! ending a session in progress (RF_DEACTIVATE_NTF with DH_REQUEST follows the response).
//!
//! # Failures and recovery
//!
//! Each of these ends any session ([`Deactivation::Reinitialized`]), drops what was queued,
//! reports [`Event::Reinitializing`] and, after a back-off ([`Config::retry_delay`], doubling
//! up to [`Config::max_retry_delay`], expressed through [`Controller::poll_timeout`]), runs the
//! whole start-up again — which restores configuration and routing:
//!
//! - no response or awaited notification within [`Config::command_timeout`];
//! - a response with a failure status, except where noted above (config INVALID_PARAM,
//!   routing size refusals, RF_DISCOVER_RSP DISCOVERY_ALREADY_STARTED);
//! - a response nobody waits for, or a command from the controller;
//! - data on a logical connection that was never created (only the static RF connection 0
//!   and, under NCI 2.0, the static HCI connection 1 exist without CORE_CONN_CREATE_CMD, NCI
//!   1.0 §4.4.2): on a byte stream this is how a length octet that lied shows up;
//! - a malformed packet or message (header length mismatch, interleaved control segments, a
//!   control message longer than the reassembly buffer, a payload that does not parse);
//! - CORE_RESET_NTF outside the reset step: the controller reset itself;
//! - CORE_GENERIC_ERROR_NTF or CORE_INTERFACE_ERROR_NTF with STATUS_NOT_INITIALIZED,
//!   STATUS_FAILED, STATUS_SYNTAX_ERROR or STATUS_SEMANTIC_ERROR — the two sides no longer
//!   agree. Other statuses (DISCOVERY_TEAR_DOWN, DISCOVERY_TARGET_ACTIVATION_FAILED, the RF
//!   errors, NFCEE and proprietary statuses) are informational: [`Event::Error`], and for an
//!   interface error on the session the half-received command is dropped;
//! - a lost credit (above).
//!
//! After [`Config::max_reinit_attempts`] failures in a row without reaching [`Event::Ready`]
//! the state machine reports [`ControllerError::GaveUp`] and waits in [`State::Failed`].
//! Nothing from the controller ever makes it panic.
//!
//! Data sent with no session, with no command waiting for its answer, or while the previous
//! answer is still going out is refused with [`SendError`].

mod config;
mod engine;
mod event;
mod info;

pub use config::{
    set_param, Config, ListenTechs, Param, ParamError, ParamList, MAX_HISTORICAL_BYTES, MAX_PARAMS,
    MAX_PARAM_LEN, MAX_WANTED_PARAMS, NXP_TAGS_NEEDING_RESET,
};
pub use event::{
    Activation, ControllerError, Deactivation, Event, IsoDepListenParams, ReinitCause, SendError,
};
pub use info::{ControllerInfo, MAX_INTERFACES, MAX_MANUFACTURER_INFO};

use heapless::Vec;

use crate::routing::{RoutingRule, RoutingTable, MAX_RULES};
use crate::time::Instant;
use crate::wire::header::MAX_PACKET_LEN;
use crate::wire::segment::{Reassembler, ReassemblyError};
use crate::wire::{Error, HeaderRepr, MessageType, Packet, PacketId};
use engine::Engine;

/// Longest command APDU: an extended-length C-APDU with 65 535 data octets and Le
/// (4 + 3 + 65 535 + 2, ISO/IEC 7816-4 §5.1).
pub const MAX_C_APDU: usize = 65_544;

/// Longest response APDU: 65 536 data octets and SW1 SW2 (ISO/IEC 7816-4 §5.1).
pub const MAX_R_APDU: usize = 65_538;

/// Longest control message reassembled from segments. Control messages a listen-only host
/// receives are short (CORE_INIT_RSP, CORE_GET_CONFIG_RSP of a few parameters); a longer one is
/// treated as malformed.
pub const MAX_CONTROL_MESSAGE: usize = 2048;

/// One NCI packet to write to the transport, header included.
pub type Transmit = Vec<u8, MAX_PACKET_LEN>;

/// What the state machine is doing; see the module documentation for the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created; [`Controller::start`] not called yet.
    Off,
    /// Reset, initialisation, configuration and routing in progress.
    Initializing,
    /// Listening (RFST_DISCOVERY or RFST_LISTEN_SLEEP).
    Discovery,
    /// A card session is open (RFST_LISTEN_ACTIVE).
    Active,
    /// Stopping discovery, reprogramming routing or restarting discovery.
    Reconfiguring,
    /// Initialised, discovery off (RFST_IDLE): disabled, or no listen technology.
    Idle,
    /// Waiting for the back-off before a re-initialisation.
    Recovering,
    /// Gave up after too many failed re-initialisations; [`Controller::start`] tries again.
    Failed,
}

/// The NCI device-host state machine for host card emulation. See the module documentation
/// for the call order, the states and the behaviour.
pub struct Controller {
    /// Control-message reassembly lives outside the engine: the message being handled borrows
    /// its buffer while the engine changes state.
    reassembler: Reassembler<MAX_CONTROL_MESSAGE, 0>,
    engine: Engine,
}

impl Controller {
    /// A controller state machine with `config`. Nothing is sent until [`Controller::start`].
    pub fn new(config: Config) -> Controller {
        Controller {
            reassembler: Reassembler::new(),
            engine: Engine::new(config),
        }
    }

    /// Begin the start-up sequence (CORE_RESET_CMD first). Also the way out of
    /// [`State::Failed`], and a forced restart from any other state: a session in progress ends
    /// with [`Deactivation::Reinitialized`].
    pub fn start(&mut self, now: Instant) {
        self.engine.set_now(now);
        self.engine.start();
        self.after_input();
    }

    /// One whole NCI packet from the transport (header and exactly the announced payload).
    ///
    /// Malformed input never panics: it leads to re-initialisation ([`Event::Reinitializing`]
    /// with [`ReinitCause::Malformed`]). Packets are ignored in [`State::Off`],
    /// [`State::Recovering`] and [`State::Failed`].
    pub fn handle_packet(&mut self, bytes: &[u8], now: Instant) {
        self.engine.set_now(now);
        if self.engine.accepts_input() {
            self.dispatch(bytes);
        }
        self.after_input();
    }

    fn dispatch(&mut self, bytes: &[u8]) {
        let header = match Packet::new_checked(bytes).and_then(|p| HeaderRepr::parse(&p)) {
            Ok(header) => header,
            Err(error) => return self.malformed("packet", error),
        };
        match (header.mt, header.id) {
            (MessageType::Data, PacketId::Data { conn_id, credits }) => {
                self.engine.handle_data(bytes, conn_id, credits, header.pbf)
            }
            (MessageType::Unknown(_), _) => self.malformed("packet", Error::UnknownMessage),
            _ => match self.reassembler.push(bytes) {
                Ok(Some(message)) => {
                    self.engine
                        .handle_control(message.mt, message.id, message.payload)
                }
                Ok(None) => {}
                Err(ReassemblyError::Malformed(error)) => self.malformed("packet", error),
                // NCI 1.0 §3.5: segments of different control messages never interleave.
                Err(ReassemblyError::Interleaved) => {
                    self.malformed("segmented control message", Error::BadValue)
                }
                Err(ReassemblyError::Capacity) => {
                    self.malformed("segmented control message", Error::Capacity)
                }
            },
        }
    }

    fn malformed(&mut self, message: &'static str, error: Error) {
        self.engine
            .reinit(ReinitCause::Malformed { message, error });
    }

    fn after_input(&mut self) {
        if self.engine.reset_reassembly {
            self.engine.reset_reassembly = false;
            self.reassembler.reset();
        }
    }

    /// The timer armed from [`Controller::poll_timeout`] fired. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.set_now(now);
        self.engine.handle_timeout();
        self.after_input();
    }

    /// The next packet to write to the transport, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.engine.poll_transmit()
    }

    /// When [`Controller::handle_timeout`] must be called next: a response deadline, a credit
    /// deadline or the end of a back-off. `None`: no timer needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// The next event. [`Event::Data`] borrows the receive buffer until the next input.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.engine.poll_event()
    }

    /// Answer the command APDU of the last [`Event::Data`] with `apdu` (response data and
    /// SW1 SW2). It is segmented to the activation's max data payload and sent as credits allow
    /// (NCI 1.0 §3.5, §4.4.4).
    pub fn send_data(&mut self, apdu: &[u8], now: Instant) -> Result<(), SendError> {
        self.engine.set_now(now);
        let result = self.engine.send_data(apdu);
        self.after_input();
        result
    }

    /// Replace the wanted listen-mode routes and reprogram the controller: stop discovery,
    /// send the new table, restart discovery. Deferred while a reader is present and during
    /// start-up (see the module documentation).
    pub fn set_routes(&mut self, routes: Vec<RoutingRule, MAX_RULES>, now: Instant) {
        self.engine.set_now(now);
        self.engine.config.routes = routes;
        self.engine.set_routes();
        self.after_input();
    }

    /// Change the listen technologies: stop and restart discovery with the new listen modes.
    /// Deferred like [`Controller::set_routes`].
    pub fn set_listen(&mut self, techs: ListenTechs, now: Instant) {
        self.engine.set_now(now);
        self.engine.config.listen = techs;
        self.engine.set_listen();
        self.after_input();
    }

    /// Turn RF discovery on or off (the daemon's `Adapter1.Powered`). Off takes effect at once,
    /// ending a session in progress; on starts discovery once initialised.
    pub fn set_enabled(&mut self, on: bool, now: Instant) {
        self.engine.set_now(now);
        self.engine.config.enabled = on;
        self.engine.set_enabled();
        self.after_input();
    }

    /// What the controller reported about itself; `None` before the first CORE_INIT_RSP. Kept
    /// through a re-initialisation until the next CORE_INIT_RSP replaces it.
    pub fn info(&self) -> Option<&ControllerInfo> {
        self.engine.info.as_ref()
    }

    /// What the state machine is doing.
    pub fn state(&self) -> State {
        self.engine.state()
    }

    /// The routing table the controller last accepted: mode, octets used, capacity and the
    /// decoded entries ([`RoutingTable::entries`]). `None` before the first one.
    pub fn routing(&self) -> Option<&RoutingTable> {
        self.engine.programmed.as_ref()
    }

    /// The configuration in use (including changes made through the `set_*` methods).
    pub fn config(&self) -> &Config {
        &self.engine.config
    }
}

impl core::fmt::Debug for Controller {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Controller")
            .field("state", &self.state())
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}
