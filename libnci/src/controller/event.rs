//! What the controller state machine reports to the host: events, the activation record of a
//! card session, why a session ended, why the controller is being re-initialised, and errors
//! worth logging.
//!
//! Everything here is plain data; nothing refers back to the state machine except
//! [`Event::Data`], which borrows the reassembled command APDU until the next input.

use core::fmt;

use crate::routing::{RoutingError, RoutingMode};
use crate::time::Duration;
use crate::wire::config::ParamId;
use crate::wire::rf::{ActivationParams, RatsParam, RfIntfActivatedNtf};
use crate::wire::{
    BitRate, DeactivationReason, DeactivationType, RfInterface, RfProtocol, RfTechMode, Status,
};

/// One thing the host should know about, from [`crate::controller::Controller::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Start-up (or re-initialisation) finished: the controller is initialised and configured,
    /// the routing table is programmed, and RF discovery runs if it is enabled and at least one
    /// listen technology is configured.
    Ready,
    /// A reader activated the emulated card: RF_INTF_ACTIVATED_NTF in a listen mode
    /// (NCI 1.0 §7.3.1). The card session (static RF connection, conn id 0) is open.
    Activated(Activation),
    /// One whole command APDU from the reader, reassembled from its data packets
    /// (NCI 1.0 §3.5). Answer it with [`crate::controller::Controller::send_data`]. The slice
    /// is valid until the next input to the controller.
    Data(&'a [u8]),
    /// The card session ended.
    Deactivated(Deactivation),
    /// RF_FIELD_INFO_NTF: a reader's field appeared (NCI 1.0 §5.2.6).
    FieldOn,
    /// RF_FIELD_INFO_NTF: the reader's field is gone.
    FieldOff,
    /// The listen-mode routing table was accepted by the controller (RF_SET_LISTEN_MODE_ROUTING,
    /// NCI 1.0 §6.3.2).
    RoutingProgrammed {
        /// Mode the table was built in (after any fallback).
        mode: RoutingMode,
        /// Octets the entries take.
        used: usize,
        /// The controller's "Max Routing Table Size".
        capacity: usize,
    },
    /// Something went wrong and the controller will be reset and set up again after `delay`,
    /// restoring configuration and routing. A session in progress ended with
    /// [`Deactivation::Reinitialized`] just before this event.
    Reinitializing {
        /// What went wrong.
        cause: ReinitCause,
        /// Attempt number in the current run of failures, from 1.
        attempt: u8,
        /// Back-off before the reset is sent.
        delay: Duration,
    },
    /// Something the host should log; the state machine carries on (or, for
    /// [`ControllerError::GaveUp`], waits for [`crate::controller::Controller::start`]).
    Error(ControllerError),
}

/// A listen-mode activation: the fields of RF_INTF_ACTIVATED_NTF (NCI 1.0 §7.3.1 Table 61,
/// NCI 2.0 §7.3.1) the host needs for the card session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Activation {
    /// RF Discovery ID.
    pub discovery_id: u8,
    /// RF interface; ISO-DEP when the reader speaks ISO/IEC 14443-4 and the discovery map sent
    /// ISO-DEP to the ISO-DEP interface.
    pub interface: RfInterface,
    /// RF protocol.
    pub protocol: RfProtocol,
    /// Activation RF technology and mode (e.g. NFC-A passive listen).
    pub mode: RfTechMode,
    /// Max Data Packet Payload Size: longer response APDUs are segmented to this size.
    pub max_data_payload: u8,
    /// Initial Number of Credits for data packets to the controller (0xFF: no flow control).
    pub initial_credits: u8,
    /// Data exchange RF technology and mode.
    pub data_exchange_mode: RfTechMode,
    /// Data exchange transmit bit rate.
    pub tx_bit_rate: BitRate,
    /// Data exchange receive bit rate.
    pub rx_bit_rate: BitRate,
    /// ISO-DEP parameters the reader chose, when the interface is ISO-DEP.
    pub iso_dep: Option<IsoDepListenParams>,
}

impl Activation {
    /// The host-relevant fields of an RF_INTF_ACTIVATED_NTF.
    pub fn from_ntf(ntf: &RfIntfActivatedNtf<'_>) -> Activation {
        let iso_dep = match ntf.activation_params {
            ActivationParams::IsoDepListenA(rats) => Some(IsoDepListenParams {
                fsd: rats.fsd(),
                did: Some(rats.did()),
            }),
            ActivationParams::IsoDepListenB(attrib) => Some(IsoDepListenParams {
                fsd: attrib.fsdi().and_then(|fsdi| RatsParam(fsdi << 4).fsd()),
                did: attrib.cid(),
            }),
            _ => None,
        };
        Activation {
            discovery_id: ntf.discovery_id,
            interface: ntf.interface,
            protocol: ntf.protocol,
            mode: ntf.activation_tech_mode,
            max_data_payload: ntf.max_data_packet_payload,
            initial_credits: ntf.initial_credits,
            data_exchange_mode: ntf.data_exchange_tech_mode,
            tx_bit_rate: ntf.tx_bit_rate,
            rx_bit_rate: ntf.rx_bit_rate,
            iso_dep,
        }
    }
}

/// ISO-DEP parameters of a listen-mode activation (NCI 1.0 Tables 78 and 79): what the reader
/// sent in RATS (NFC-A) or ATTRIB (NFC-B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IsoDepListenParams {
    /// The reader's maximum frame size (FSD, ISO/IEC 14443-4 Table 1), `None` if reserved or
    /// absent.
    pub fsd: Option<u16>,
    /// DID (NFC-A) or CID (NFC-B) the reader assigned.
    pub did: Option<u8>,
}

/// Why a card session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deactivation {
    /// RF_DEACTIVATE_NTF (NCI 1.0 §5.2.5, Tables 63–64).
    Ntf {
        /// Where the controller went: back to discovery, to sleep, or to idle.
        kind: DeactivationType,
        /// Why: link loss, endpoint request (the reader sent DESELECT), DH request...
        reason: DeactivationReason,
    },
    /// The controller is being re-initialised; the session is gone with it.
    Reinitialized,
}

impl Deactivation {
    /// A short reason for the host (`"link-loss"`, `"deselected"`, `"dh-request"`,
    /// `"bad-afi"`, `"reset"`, `"other"`).
    pub fn reason_str(&self) -> &'static str {
        match self {
            Deactivation::Ntf { reason, .. } => match reason {
                DeactivationReason::RfLinkLoss => "link-loss",
                DeactivationReason::EndpointRequest => "deselected",
                DeactivationReason::DhRequest | DeactivationReason::DhRequestFailed => "dh-request",
                DeactivationReason::NfcBBadAfi => "bad-afi",
                DeactivationReason::Unknown(_) => "other",
            },
            Deactivation::Reinitialized => "reset",
        }
    }
}

/// Why the controller is re-initialised (NCI 1.0 §4.1 "Reset and Initialization" is the way
/// back to a known state from any of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReinitCause {
    /// No response (or awaited notification) within [`crate::controller::Config::command_timeout`].
    Timeout {
        /// Name of the awaited message, e.g. `"CORE_INIT_RSP"`.
        waiting_for: &'static str,
    },
    /// A response reported a failure the state machine cannot work around.
    Failed {
        /// Name of the response.
        response: &'static str,
        /// Its status.
        status: Status,
    },
    /// A packet or message could not be parsed (NCI 1.0 §3.4, or the message's own layout).
    Malformed {
        /// Name of the message when the header identified it, else `"packet"`.
        message: &'static str,
        /// What was wrong.
        error: crate::wire::Error,
    },
    /// A response that was not awaited, or a command from the controller.
    Unexpected {
        /// Name of the message, or `"unknown"`.
        message: &'static str,
    },
    /// CORE_RESET_NTF outside a reset: the controller reset itself (NCI 2.0 §4.1,
    /// trigger "unrecoverable error"; PN7150 after a firmware fault).
    ControllerReset,
    /// CORE_GENERIC_ERROR_NTF with a status the state machine treats as fatal.
    GenericError(Status),
    /// CORE_INTERFACE_ERROR_NTF with a status the state machine treats as fatal.
    InterfaceError(Status),
    /// A data packet waited longer than [`crate::controller::Config::credit_timeout`] for
    /// CORE_CONN_CREDITS_NTF (NCI 1.0 §4.4.4): the credit is lost.
    CreditLost,
    /// The NXP extension configuration was written and needs a reset to take effect. Not a
    /// failure: reported only through the state, never as [`Event::Reinitializing`].
    NxpConfigChanged,
}

impl fmt::Display for ReinitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReinitCause::Timeout { waiting_for } => write!(f, "timeout waiting for {waiting_for}"),
            ReinitCause::Failed { response, status } => write!(f, "{response}: {status}"),
            ReinitCause::Malformed { message, error } => write!(f, "malformed {message}: {error}"),
            ReinitCause::Unexpected { message } => write!(f, "unexpected {message}"),
            ReinitCause::ControllerReset => f.write_str("controller reset itself"),
            ReinitCause::GenericError(status) => write!(f, "CORE_GENERIC_ERROR_NTF {status}"),
            ReinitCause::InterfaceError(status) => write!(f, "CORE_INTERFACE_ERROR_NTF {status}"),
            ReinitCause::CreditLost => f.write_str("data credit lost"),
            ReinitCause::NxpConfigChanged => f.write_str("NXP configuration changed"),
        }
    }
}

/// Something the host should log. None of these stops the state machine except
/// [`ControllerError::GaveUp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControllerError {
    /// CORE_GENERIC_ERROR_NTF with an informational status (RF or discovery trouble the
    /// controller handles itself).
    GenericError(Status),
    /// CORE_INTERFACE_ERROR_NTF with an RF status: the exchange in progress was dropped, the
    /// session stays.
    InterfaceError {
        /// Status.
        status: Status,
        /// Logical connection.
        conn_id: u8,
    },
    /// CORE_SET_CONFIG_RSP named a parameter the controller does not accept
    /// (STATUS_INVALID_PARAM, NCI 1.0 §4.3.1); the others were written.
    ParamRejected(ParamId),
    /// An NXP tag read back different after the reset that should have applied it.
    NxpParamNotApplied(ParamId),
    /// A route could not be added or the table built (the controller keeps its default route).
    Routing(RoutingError),
    /// The controller refused even the smallest routing table; it keeps its default route.
    RoutingRefused(Status),
    /// A data packet arrived with no card session, or on the NCI 2.0 static HCI connection
    /// this host does not use; it was dropped. (Data on a connection that does not exist at
    /// all re-initialises the controller instead.)
    UnexpectedData {
        /// Connection identifier of the packet.
        conn_id: u8,
    },
    /// A command APDU exceeded the 65 544 octets of an extended-length C-APDU; it was dropped
    /// and answered with SW 67 00 (wrong length, ISO/IEC 7816-4 §5.6).
    ApduTooLong,
    /// The event queue was full and an event was dropped: the host does not drain
    /// [`crate::controller::Controller::poll_event`] after every input.
    EventsDropped,
    /// [`crate::controller::Config::max_reinit_attempts`] re-initialisations in a row failed;
    /// the state machine waits for [`crate::controller::Controller::start`].
    GaveUp {
        /// Attempts made.
        attempts: u8,
        /// The last cause.
        last: ReinitCause,
    },
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControllerError::GenericError(status) => write!(f, "CORE_GENERIC_ERROR_NTF {status}"),
            ControllerError::InterfaceError { status, conn_id } => {
                write!(
                    f,
                    "CORE_INTERFACE_ERROR_NTF {status} on connection {conn_id}"
                )
            }
            ControllerError::ParamRejected(id) => write!(f, "parameter {id} rejected"),
            ControllerError::NxpParamNotApplied(id) => {
                write!(f, "NXP parameter {id} not applied after reset")
            }
            ControllerError::Routing(err) => write!(f, "routing: {err}"),
            ControllerError::RoutingRefused(status) => write!(f, "routing table refused: {status}"),
            ControllerError::UnexpectedData { conn_id } => {
                write!(f, "data on connection {conn_id} outside a session")
            }
            ControllerError::ApduTooLong => f.write_str("command APDU too long"),
            ControllerError::EventsDropped => f.write_str("events dropped"),
            ControllerError::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
        }
    }
}

/// Why [`crate::controller::Controller::send_data`] refused a response APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendError {
    /// No card session is active.
    NoSession,
    /// No command APDU is waiting for its response (ISO-DEP is half duplex: one response per
    /// command), or the previous response is still being sent.
    NotExpected,
    /// Longer than an extended-length response (65 536 data octets and SW1 SW2).
    TooLong,
    /// An empty APDU; a response has at least SW1 SW2.
    Empty,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NoSession => "no card session",
            SendError::NotExpected => "no command waiting for a response",
            SendError::TooLong => "response APDU too long",
            SendError::Empty => "empty response APDU",
        })
    }
}

impl core::error::Error for SendError {}
