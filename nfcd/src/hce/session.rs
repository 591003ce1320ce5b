//! One card emulation session: the APDUs of one RF activation (ISO/IEC 14443-4 ISO-DEP link)
//! and which service each goes to.
//!
//! The session starts when the reader activates ISO-DEP and ends when the link goes (RF field
//! off, deactivation). No service is called before the first APDU. For each command APDU
//! ([`Session::on_apdu`]) the session either answers itself with a status word or tells the
//! dispatcher to forward the APDU unchanged to a service:
//!
//! | command | outcome |
//! |---|---|
//! | not a well-formed C-APDU (ISO/IEC 7816-4 §5.1) | `6700` wrong length; selection unchanged |
//! | CLA `FF` (invalid, ISO/IEC 7816-4 §5.4.1) | `6E00` class not supported; selection unchanged |
//! | INS `6X` or `9X` (invalid, ISO/IEC 7816-4 §5.4.2) | `6D00` instruction not supported; selection unchanged |
//! | `SELECT` by DF name, name resolved | forwarded to the service, which answers with its own FCI; it becomes the selected service, a different previous one is `deselected` |
//! | `SELECT` by DF name, next occurrence (P2 `02`) | the service after the selected one among the matches (`Registry::resolve_next`), or `6A82` past the last one |
//! | `SELECT` by DF name, no match | `6A82`; the previous selection stays (ISO/IEC 7816-4 §11.2.2: a failed `SELECT` leaves the current selection as it was) |
//! | `SELECT` by DF name, match only unusable while locked | `6982`; selection unchanged |
//! | `SELECT` by DF name with P2 last/previous occurrence or RFU bits | `6A86`; selection unchanged |
//! | `SELECT` by DF name with an empty or > 16-byte name | `6700`; selection unchanged |
//! | any other command, a service selected | forwarded to the selected service |
//! | any other command, nothing selected | `6F00` |
//!
//! Other `SELECT` forms (by file identifier, path, …) are "any other command": an application
//! that owns a file system answers them. So are the links of a command chain (CLA bit `10`,
//! ISO/IEC 7816-4 §5.4.1): each is forwarded as it comes and the chain is never collected here,
//! so a chain of any length costs no more than one APDU. Commands with an invalid class or
//! instruction byte reach no service: no application can be addressed by them.
//!
//! When the service fails to answer — D-Bus error, crash, deadline missed —
//! [`Session::on_app_failed`] gives `6F00` at once and drops the selection, so the following
//! APDUs get `6F00` immediately instead of waiting on the broken service again; a new `SELECT`
//! can select it (or another) again. The failed service gets no `Deactivated` call.
//!
//! The lock state is checked when a `SELECT` is resolved; an already selected service keeps
//! the session if the device locks during the tap. This module does not time anything: the
//! dispatcher owns deadlines and calls `on_app_failed`.

use libnci::apdu::{classify_select, CommandApdu, Occurrence, StatusWord};

use super::registry::{LockState, Registry, Resolution, ServiceKey};

/// What to do with one command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer the reader with this status word alone (no response data).
    Reply(StatusWord),
    /// Forward the APDU unchanged to `to` (`HostService1.ProcessApdu`) and relay its answer.
    Forward {
        /// The service that answers.
        to: ServiceKey,
        /// The previously selected service that lost the selection: send it
        /// `Deactivated("deselected")` before forwarding.
        deselected: Option<ServiceKey>,
    },
}

/// APDU routing state of one RF activation. See the module documentation for every rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    selected: Option<ServiceKey>,
    apdus: u32,
}

impl Session {
    /// A session at RF activation: nothing selected, no APDU seen.
    pub fn new() -> Session {
        Session::default()
    }

    /// Decide what to do with the command APDU `apdu`.
    pub fn on_apdu(&mut self, reg: &Registry, apdu: &[u8], lock: &LockState) -> Action {
        self.apdus = self.apdus.saturating_add(1);
        let command = match CommandApdu::parse(apdu) {
            Ok(command) => command,
            Err(_) => return Action::Reply(StatusWord::WRONG_LENGTH),
        };
        if let Some(invalid) = command.header_error() {
            return Action::Reply(invalid.status_word());
        }
        let select = match classify_select(&command) {
            None => {
                return match &self.selected {
                    Some(key) => Action::Forward {
                        to: key.clone(),
                        deselected: None,
                    },
                    None => Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS),
                }
            }
            Some(Err(e)) => return Action::Reply(e.status_word()),
            Some(Ok(select)) => select,
        };
        let resolution = match (select.occurrence, &self.selected) {
            (Occurrence::Next, Some(current)) => reg.resolve_next(select.name, current, lock),
            (occurrence, _) => reg.resolve(select.name, occurrence == Occurrence::Next, lock),
        };
        match resolution {
            Resolution::Service { key, .. } => {
                let deselected = match self.selected.replace(key.clone()) {
                    Some(previous) if previous != key => Some(previous),
                    _ => None,
                };
                Action::Forward {
                    to: key,
                    deselected,
                }
            }
            Resolution::NotFound => Action::Reply(StatusWord::FILE_NOT_FOUND),
            Resolution::LockedOut { .. } => {
                Action::Reply(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
            }
        }
    }

    /// The service the last APDU was forwarded to did not answer in time, returned an error
    /// or vanished: reply `6F00` and drop the selection.
    pub fn on_app_failed(&mut self) -> Action {
        self.selected = None;
        Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS)
    }

    /// The registration of `key` went away during the tap: if it was selected, nothing is
    /// selected any more (and it cannot be told so).
    pub fn on_service_removed(&mut self, key: &ServiceKey) {
        if self.selected.as_ref() == Some(key) {
            self.selected = None;
        }
    }

    /// The link ended: the selected service, if any, gets `Deactivated("link-loss")`.
    pub fn end(self) -> Option<ServiceKey> {
        self.selected
    }

    /// The selected service, if any.
    pub fn selected(&self) -> Option<&ServiceKey> {
        self.selected.as_ref()
    }

    /// Number of command APDUs seen so far (for `TransactionEnded`).
    pub fn apdus(&self) -> u32 {
        self.apdus
    }
}
