//! Calling the wallets: the client side of `org.nfcd.HostService1`.
//!
//! `ProcessApdu` is on the tap path, so each call is one method-call message built directly on
//! the daemon's connection: no proxy, no introspection, no property cache, nothing per call but
//! the message. `Deactivated` is sent with NO_REPLY_EXPECTED. Deadlines are the caller's
//! (`tokio::time::timeout` around [`HostServiceClient::process_apdu`]; dropping the future
//! forgets the call and a late reply is discarded by the connection). This module does not turn
//! failures into status words.

use zbus::message::{Flags, Message};
use zbus::{Connection, DBusError};

use super::channel::{MAX_RESPONSE_APDU, MIN_RESPONSE_APDU};

/// Interface implemented by wallets.
pub const HOST_SERVICE_INTERFACE: &str = "org.nfcd.HostService1";

/// Why a call to a wallet failed.
#[derive(Debug)]
pub enum CallError {
    /// The wallet answered with a D-Bus error (including UnknownMethod / UnknownObject when it
    /// does not export the interface at that path).
    Remote {
        /// D-Bus error name.
        name: String,
        /// Its message, if any.
        message: Option<String>,
    },
    /// The destination is not on the bus, or left it before replying.
    NameGone(String),
    /// The reply is not one response APDU: wrong signature, or fewer than 2 / more than 65538
    /// bytes (ISO/IEC 7816-4 §5.1).
    BadReply(String),
    /// The daemon's own connection failed.
    Transport(zbus::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Remote { name, message } => {
                write!(f, "{name}: {}", message.as_deref().unwrap_or("no message"))
            }
            CallError::NameGone(why) => write!(f, "the service left the bus: {why}"),
            CallError::BadReply(why) => write!(f, "bad ProcessApdu reply: {why}"),
            CallError::Transport(e) => write!(f, "D-Bus connection: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Errors with which the bus (or zbus) reports that the destination is not, or no longer, there.
fn is_gone(e: &zbus::fdo::Error) -> bool {
    use zbus::fdo::Error as E;
    // NoReply comes from dbus-daemon when the destination disconnects while a call is pending;
    // its own reply timeout (25 s by default) is far beyond any APDU deadline.
    matches!(
        e,
        E::ServiceUnknown(_) | E::NameHasNoOwner(_) | E::NoReply(_) | E::Disconnected(_)
    )
}

impl From<zbus::Error> for CallError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::FDO(e) if is_gone(&e) => {
                CallError::NameGone(e.description().unwrap_or_default().to_owned())
            }
            zbus::Error::FDO(e) => CallError::Remote {
                name: e.name().to_string(),
                message: e.description().map(str::to_owned),
            },
            zbus::Error::MethodError(name, message, _) => CallError::Remote {
                name: name.to_string(),
                message,
            },
            other => CallError::Transport(other),
        }
    }
}

/// Calls `org.nfcd.HostService1` methods on wallets over one connection.
#[derive(Debug, Clone)]
pub struct HostServiceClient {
    conn: Connection,
}

impl HostServiceClient {
    /// A client sending on `conn` (the daemon's bus connection).
    pub fn new(conn: Connection) -> Self {
        HostServiceClient { conn }
    }

    /// `ProcessApdu(ay command) → ay response` on the object `path` of bus name `dest`.
    pub async fn process_apdu(
        &self,
        dest: &str,
        path: &str,
        command: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let reply = self
            .conn
            .call_method(
                Some(dest),
                path,
                Some(HOST_SERVICE_INTERFACE),
                "ProcessApdu",
                &(command,),
            )
            .await?;
        let body = reply.body();
        if *body.signature() != "ay" {
            return Err(CallError::BadReply(format!(
                "signature {:?}, expected \"ay\"",
                body.signature().to_string_no_parens()
            )));
        }
        let response: Vec<u8> = body
            .deserialize()
            .map_err(|e| CallError::BadReply(e.to_string()))?;
        if response.len() < MIN_RESPONSE_APDU {
            return Err(CallError::BadReply(format!(
                "{} byte(s), lacking SW1 SW2",
                response.len()
            )));
        }
        if response.len() > MAX_RESPONSE_APDU {
            return Err(CallError::BadReply(format!(
                "{} bytes, more than {MAX_RESPONSE_APDU}",
                response.len()
            )));
        }
        Ok(response)
    }

    /// `Deactivated(s reason)`, sent without waiting for (or wanting) a reply.
    pub async fn deactivated(&self, dest: &str, path: &str, reason: &str) -> Result<(), CallError> {
        let msg = Message::method_call(path, "Deactivated")
            .destination(dest)
            .interface(HOST_SERVICE_INTERFACE)
            .with_flags(Flags::NO_REPLY_EXPECTED | Flags::NO_AUTO_START)
            .build(&(reason,))?;
        self.conn.send(&msg).await?;
        Ok(())
    }
}
