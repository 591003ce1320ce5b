//! How an `nfcctl` run can fail, and the exit status of each way.
//!
//! Contract: [`CtlError`] is the only error the commands return. Its [`Display`](fmt::Display)
//! is the line printed on stderr (after `nfcctl: `); [`CtlError::exit_status`] is the documented
//! exit status (doc/nfcctl.md, "Exit status"). D-Bus errors are sorted into these kinds by
//! [`crate::ctl::bus`], not here.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::config::BusSpec;

/// Exit status of `nfcctl` (doc/nfcctl.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The command did what was asked.
    Ok = 0,
    /// The daemon answered with an error (`org.nfcd.Error.*` or another error reply), or with
    /// a reply this client cannot read, or not within the timeout; or the output could not be
    /// written.
    Failed = 1,
    /// The command line is malformed (reported by the argument parser).
    Usage = 2,
    /// nfcd is not running: `org.nfcd` has no owner on the bus.
    DaemonAbsent = 3,
    /// The bus itself cannot be reached (no socket, connection refused, authentication failed,
    /// no answer within the timeout).
    BusUnreachable = 4,
    /// The daemon runs but does not offer what the command needs (the simulator on a real
    /// controller, the monitor on a daemon without `org.nfcd.Monitor1`).
    Unsupported = 5,
    /// A simulated tap ran to its end, but its result was not `ok`.
    TapFailed = 6,
}

impl ExitStatus {
    /// The numeric status for `std::process::exit`.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum CtlError {
    /// Connecting to the bus failed.
    BusUnreachable {
        /// The bus asked for.
        bus: BusSpec,
        /// What zbus reported.
        error: zbus::Error,
    },
    /// The connection to the bus broke during the command.
    BusLost {
        /// What zbus reported.
        error: zbus::Error,
    },
    /// `org.nfcd` has no owner on the bus, or lost it during the command.
    DaemonAbsent {
        /// The bus asked for.
        bus: BusSpec,
    },
    /// No reply came within the reply timeout (`--timeout`).
    Timeout {
        /// The timeout.
        after: Duration,
        /// Whether it was the bus (connecting, `GetNameOwner`) that did not answer, rather
        /// than nfcd.
        bus: bool,
    },
    /// The daemon (or the bus on its behalf) answered with an error reply.
    Daemon {
        /// D-Bus error name, e.g. `org.nfcd.Error.DoesNotExist`.
        name: String,
        /// The error's message; empty when the reply carried none.
        message: String,
    },
    /// The daemon lacks the interface or object the command needs.
    Unsupported {
        /// What is missing and what to do about it.
        what: String,
    },
    /// A reply or signal does not have the documented shape.
    BadReply {
        /// What could not be read.
        what: String,
    },
    /// A simulated tap finished with a result other than `ok`.
    TapFailed {
        /// The `Result` of the tap's summary.
        result: String,
        /// The `Error` of the summary (may be empty).
        error: String,
    },
    /// Writing to stdout failed for another reason than a closed pipe.
    Output(io::Error),
    /// The SIGINT / SIGTERM handlers could not be installed.
    Signals(io::Error),
    /// stdout was closed by its reader (e.g. `nfcctl monitor | head`): stop quietly.
    OutputClosed,
}

impl CtlError {
    /// The exit status this error ends the run with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CtlError::BusUnreachable { .. } | CtlError::BusLost { .. } => {
                ExitStatus::BusUnreachable
            }
            CtlError::DaemonAbsent { .. } => ExitStatus::DaemonAbsent,
            CtlError::Timeout { bus: true, .. } => ExitStatus::BusUnreachable,
            CtlError::Timeout { bus: false, .. } => ExitStatus::Failed,
            CtlError::Daemon { .. }
            | CtlError::BadReply { .. }
            | CtlError::Output(_)
            | CtlError::Signals(_) => ExitStatus::Failed,
            CtlError::Unsupported { .. } => ExitStatus::Unsupported,
            CtlError::TapFailed { .. } => ExitStatus::TapFailed,
            CtlError::OutputClosed => ExitStatus::Ok,
        }
    }

    /// The line to print on stderr, or `None` when the run should end silently.
    pub fn message(&self) -> Option<String> {
        match self {
            CtlError::OutputClosed => None,
            other => Some(other.to_string()),
        }
    }

    /// Sort an error writing to stdout.
    pub fn from_output(err: io::Error) -> CtlError {
        if err.kind() == io::ErrorKind::BrokenPipe {
            CtlError::OutputClosed
        } else {
            CtlError::Output(err)
        }
    }
}

/// "the system bus", "the session bus", "the bus at unix:path=...".
pub(crate) struct BusLabel<'a>(pub &'a BusSpec);

impl fmt::Display for BusLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            BusSpec::System => f.write_str("the system bus"),
            BusSpec::Session => f.write_str("the session bus"),
            BusSpec::Address(address) => write!(f, "the bus at {address}"),
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::BusUnreachable { bus, error } => {
                write!(f, "cannot connect to {}: {error}", BusLabel(bus))
            }
            CtlError::BusLost { error } => write!(f, "lost the connection to the bus: {error}"),
            CtlError::DaemonAbsent { bus } => write!(
                f,
                "nfcd is not running on {} (org.nfcd has no owner)",
                BusLabel(bus)
            ),
            CtlError::Timeout { after, bus: true } => {
                write!(f, "the bus did not answer within {} s", after.as_secs())
            }
            CtlError::Timeout { after, bus: false } => {
                write!(f, "nfcd did not answer within {} s", after.as_secs())
            }
            CtlError::Daemon { name, message } if message.is_empty() => f.write_str(name),
            CtlError::Daemon { name, message } => write!(f, "{name}: {message}"),
            CtlError::Unsupported { what } => f.write_str(what),
            CtlError::BadReply { what } => write!(f, "unexpected reply from nfcd: {what}"),
            CtlError::TapFailed { result, error } if error.is_empty() => {
                write!(f, "the simulated tap failed: {result}")
            }
            CtlError::TapFailed { result, error } => {
                write!(f, "the simulated tap failed: {result}: {error}")
            }
            CtlError::Output(err) => write!(f, "cannot write the output: {err}"),
            CtlError::Signals(err) => write!(f, "cannot install the Ctrl-C handler: {err}"),
            CtlError::OutputClosed => f.write_str("output closed"),
        }
    }
}

impl std::error::Error for CtlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_statuses() {
        let absent = CtlError::DaemonAbsent {
            bus: BusSpec::System,
        };
        assert_eq!(
            absent.to_string(),
            "nfcd is not running on the system bus (org.nfcd has no owner)"
        );
        assert_eq!(absent.exit_status().code(), 3);

        let daemon = CtlError::Daemon {
            name: "org.nfcd.Error.DoesNotExist".into(),
            message: "no service com.example.pay".into(),
        };
        assert_eq!(
            daemon.to_string(),
            "org.nfcd.Error.DoesNotExist: no service com.example.pay"
        );
        assert_eq!(daemon.exit_status(), ExitStatus::Failed);

        let closed = CtlError::from_output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(closed.message(), None);
        assert_eq!(closed.exit_status(), ExitStatus::Ok);
        let full = CtlError::from_output(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(full.exit_status(), ExitStatus::Failed);

        let tap = CtlError::TapFailed {
            result: "timeout".into(),
            error: String::new(),
        };
        assert_eq!(tap.to_string(), "the simulated tap failed: timeout");
        assert_eq!(tap.exit_status().code(), 6);
    }
}
