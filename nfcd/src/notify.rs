//! Service-manager notifications: readiness, status text and the watchdog (sd_notify(3)).
//!
//! The daemon runs as a `Type=notify` systemd service with `WatchdogSec=`: it must say
//! `READY=1` once the controller is initialised and the bus name is owned, and then pet the
//! watchdog (`WATCHDOG=1`) more often than `WATCHDOG_USEC`. This module is the only place that
//! speaks that protocol. It formats messages with the `sd-notify` crate's [`NotifyState`] and
//! sends them itself, because the crate re-reads `NOTIFY_SOCKET` on every call and cannot reach
//! abstract-namespace sockets (`@name`), which service managers in containers use.
//!
//! What it does not do: it does not pass file descriptors (`FDSTORE=1`), does not unset the
//! environment (the daemon starts no children), and it never blocks on anything but the
//! datagram send itself, exactly as libsystemd's `sd_notify()` does.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

pub use sd_notify::NotifyState;

/// Environment variable naming the service manager's notification socket (sd_notify(3)).
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Environment variable carrying the watchdog timeout in microseconds (sd_watchdog_enabled(3)).
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// Environment variable naming the process the watchdog settings are meant for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Where notifications go, parsed from `NOTIFY_SOCKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddr {
    /// A socket in the file system (`/run/systemd/notify`).
    Path(PathBuf),
    /// A socket in the abstract namespace; `NOTIFY_SOCKET` spells it with a leading `@`,
    /// which stands for the leading NUL byte of the kernel address (unix(7)).
    Abstract(Vec<u8>),
}

impl NotifyAddr {
    /// Parses a `NOTIFY_SOCKET` value the way libsystemd does: `@name` is abstract, an absolute
    /// path is a file-system socket, anything else (relative paths, `vsock:` addresses, empty)
    /// is refused with [`io::ErrorKind::InvalidInput`].
    pub fn parse(value: &OsStr) -> io::Result<Self> {
        let bytes = value.as_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) if !name.is_empty() => Ok(Self::Abstract(name.to_vec())),
            None if bytes.starts_with(b"/") => Ok(Self::Path(PathBuf::from(value))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported {NOTIFY_SOCKET} address {value:?}"),
            )),
        }
    }
}

/// Sends sd_notify(3) messages to the service manager, or does nothing when the daemon was not
/// started by one (`NOTIFY_SOCKET` unset).
///
/// Created once at start-up; every method is a single datagram send.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use nfcd::notify::Notifier;
///
/// let notifier = Notifier::from_env()?;
/// // ... controller initialised, bus name owned ...
/// notifier.ready()?;
/// let mut pet = notifier.watchdog_interval().map(tokio::time::interval);
/// loop {
///     tokio::select! {
///         _ = async {
///             match pet.as_mut() {
///                 Some(interval) => _ = interval.tick().await,
///                 None => std::future::pending().await,
///             }
///         } => notifier.watchdog()?,
///         // ... the daemon's other events ...
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, NotifyAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    ///
    /// `NOTIFY_SOCKET` unset gives a notifier whose methods do nothing. A value that is not a
    /// usable address is an error, so that a misconfigured unit is reported at start-up instead
    /// of timing out later.
    pub fn from_env() -> io::Result<Self> {
        let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
            return Ok(Self::disabled());
        };
        let watchdog = watchdog_from_env();
        Self::with_addr(&socket, watchdog)
    }

    /// A notifier that sends to `socket` (a `NOTIFY_SOCKET`-style address), with the given
    /// watchdog timeout (the full `WATCHDOG_USEC`, not the petting interval).
    pub fn with_addr(socket: &OsStr, watchdog: Option<Duration>) -> io::Result<Self> {
        let addr = NotifyAddr::parse(socket)?;
        let sock = UnixDatagram::unbound()?;
        Ok(Self {
            target: Some((sock, addr)),
            watchdog: watchdog.filter(|d| !d.is_zero()),
        })
    }

    /// A notifier that sends nothing (not started by a service manager).
    pub fn disabled() -> Self {
        Self {
            target: None,
            watchdog: None,
        }
    }

    /// Whether messages are actually sent somewhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: start-up is finished (the controller answered CORE_INIT and the bus name is
    /// owned); systemd then considers the unit started.
    pub fn ready(&self) -> io::Result<()> {
        self.notify(&[NotifyState::Ready])
    }

    /// `STATUS=...`: one line of free text shown by `systemctl status`.
    ///
    /// Line breaks are replaced by spaces: the text may come from a controller or a config
    /// file, and a newline would start a new assignment (say `READY=1`) in the datagram.
    pub fn status(&self, text: &str) -> io::Result<()> {
        let line = text.replace(['\n', '\r'], " ");
        self.notify(&[NotifyState::Status(&line)])
    }

    /// `WATCHDOG=1`: the main loop is alive. Call it every [`Notifier::watchdog_interval`].
    pub fn watchdog(&self) -> io::Result<()> {
        self.notify(&[NotifyState::Watchdog])
    }

    /// `STOPPING=1`: shutdown has begun (the controller is being reset and the bus name
    /// released), so systemd does not mistake the exit for a crash in progress.
    pub fn stopping(&self) -> io::Result<()> {
        self.notify(&[NotifyState::Stopping])
    }

    /// Sends several assignments in one datagram, one per line, without a trailing newline
    /// (the framing libsystemd uses).
    pub fn notify(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        let Some((sock, addr)) = &self.target else {
            return Ok(());
        };
        let msg = states
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let sent = match addr {
            NotifyAddr::Path(path) => sock.send_to(msg.as_bytes(), path)?,
            NotifyAddr::Abstract(name) => {
                let to = SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(msg.as_bytes(), &to)?
            }
        };
        if sent == msg.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification datagram truncated",
            ))
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, the margin sd_watchdog_enabled(3)
    /// recommends. `None` when no watchdog is configured for this process (unset, zero, or
    /// `WATCHDOG_PID` names another process) or when there is no socket to send to.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|d| d / 2).filter(|d| !d.is_zero())
    }
}

/// `WATCHDOG_USEC`, if it is meant for this process.
///
/// `sd_notify::watchdog_enabled` checks `WATCHDOG_PID` against our pid but treats an
/// unparsable `WATCHDOG_PID` as absent; libsystemd treats it as "not for us", and so do we.
fn watchdog_from_env() -> Option<Duration> {
    if let Some(pid) = std::env::var_os(WATCHDOG_PID) {
        let ours = pid
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| p == std::process::id());
        if !ours {
            return None;
        }
    }
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}
