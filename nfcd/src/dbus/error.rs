//! The errors of the nfcd D-Bus API, as they appear on the wire.
//!
//! One enum, [`Error`], whose variants are exactly the "Possible errors" listed in
//! doc/manager-api.md and doc/adapter-api.md. Each is sent as `org.nfcd.Error.<Variant>` with a
//! human-readable message as its only argument. Errors of the other layers (option decoding,
//! caller lookup, the daemon core) are translated into one of these before they reach a client;
//! this module does not decide which.

use zbus::DBusError;

/// Error name prefix of every nfcd error (`org.nfcd.Error.InvalidArguments`, ...).
pub const ERROR_PREFIX: &str = "org.nfcd.Error";

/// An error reply of an `org.nfcd.*` method or property write.
///
/// The variant name is the last element of the D-Bus error name; the string is the message shown
/// to the caller (it says what was wrong with which argument).
#[derive(DBusError, Debug, Clone, PartialEq, Eq)]
#[zbus(prefix = "org.nfcd.Error")]
pub enum Error {
    /// An argument or option is malformed: unknown option key, wrong D-Bus type, missing
    /// mandatory option, bad category, bad service Id.
    InvalidArguments(String),
    /// An AID is outside the 5–16 byte length of ISO/IEC 7816-4 §12.2.3 (registered application
    /// identifier), or is listed twice.
    InvalidAid(String),
    /// The service object path or the service Id is already registered.
    AlreadyExists(String),
    /// No registered service matches the given object path or Id.
    DoesNotExist(String),
    /// The caller may not act on this service (it was registered by another client), or may not
    /// use this category.
    NotAuthorized(String),
    /// The adapter cannot do this now: no controller is present, or the daemon is starting up or
    /// shutting down.
    NotReady(String),
    /// A limit was reached: too many AIDs in one service, too many services.
    LimitExceeded(String),
    /// The operation failed for a reason outside the caller's control (controller error, I/O
    /// error while persisting a choice).
    Failed(String),
}

impl Error {
    /// The D-Bus error name of this error, for logs and tests.
    pub fn dbus_name(&self) -> String {
        zbus::DBusError::name(self).to_string()
    }

    /// The message carried by this error.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArguments(m)
            | Error::InvalidAid(m)
            | Error::AlreadyExists(m)
            | Error::DoesNotExist(m)
            | Error::NotAuthorized(m)
            | Error::NotReady(m)
            | Error::LimitExceeded(m)
            | Error::Failed(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_org_nfcd_error_prefix() {
        let cases = [
            (
                Error::InvalidArguments(String::new()),
                "org.nfcd.Error.InvalidArguments",
            ),
            (
                Error::InvalidAid(String::new()),
                "org.nfcd.Error.InvalidAid",
            ),
            (
                Error::AlreadyExists(String::new()),
                "org.nfcd.Error.AlreadyExists",
            ),
            (
                Error::DoesNotExist(String::new()),
                "org.nfcd.Error.DoesNotExist",
            ),
            (
                Error::NotAuthorized(String::new()),
                "org.nfcd.Error.NotAuthorized",
            ),
            (Error::NotReady(String::new()), "org.nfcd.Error.NotReady"),
            (
                Error::LimitExceeded(String::new()),
                "org.nfcd.Error.LimitExceeded",
            ),
            (Error::Failed(String::new()), "org.nfcd.Error.Failed"),
        ];
        for (error, name) in cases {
            assert_eq!(error.dbus_name(), name);
            assert!(name.starts_with(ERROR_PREFIX));
        }
    }

    #[test]
    fn message_is_the_description() {
        let e = Error::InvalidAid("Aids[0] is 4 bytes".into());
        assert_eq!(e.message(), "Aids[0] is 4 bytes");
        assert_eq!(zbus::DBusError::description(&e), Some("Aids[0] is 4 bytes"));
        assert_eq!(
            e.to_string(),
            "org.nfcd.Error.InvalidAid: Aids[0] is 4 bytes"
        );
    }
}
