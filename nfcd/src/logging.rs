//! Logging setup: one `tracing` subscriber for the whole daemon.
//!
//! Contract: [`init`] installs the global subscriber once. Output goes to the systemd journal
//! (native protocol, structured fields kept) when the daemon runs as a service whose stderr is
//! connected to the journal, and to stderr otherwise. Verbosity comes from `-v` flags unless
//! `RUST_LOG` is set, which then decides alone. NCI packet traces are logged by the protocol
//! layers under the target [`NCI_TARGET`] at debug level, so `-v` shows them.

use std::env;
use std::fmt;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// `tracing` target of NCI packet traces (`tracing::debug!(target: NCI_TARGET, ...)`).
pub const NCI_TARGET: &str = "nci";

/// Socket of journald's native protocol.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogBackend {
    /// The systemd journal, native protocol.
    Journald,
    /// Human-readable lines on stderr.
    Stderr,
}

/// Why logging could not be set up.
#[derive(Debug)]
pub enum LoggingError {
    /// `RUST_LOG` is not a valid filter.
    Filter(String),
    /// A global subscriber is already installed.
    AlreadyInitialized(String),
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::Filter(e) => write!(f, "RUST_LOG: {e}"),
            LoggingError::AlreadyInitialized(e) => write!(f, "logging already set up: {e}"),
        }
    }
}

impl std::error::Error for LoggingError {}

/// Filter directives for a number of `-v` flags:
///
/// | flags | directives |
/// |---|---|
/// | none | `info` |
/// | `-v` | `info`, and `debug` for nfcd, libnci and the NCI trace |
/// | `-vv` | `debug`, and `trace` for nfcd, libnci and the NCI trace |
/// | `-vvv` | `trace` everywhere (also D-Bus and runtime internals) |
pub fn default_directives(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "info",
        1 => "info,nfcd=debug,libnci=debug,nci=debug",
        2 => "debug,nfcd=trace,libnci=trace,nci=trace",
        _ => "trace",
    }
}

/// The filter to use: `rust_log` when set and not empty, else the `-v` default.
pub fn build_filter(verbosity: u8, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => {
            EnvFilter::try_new(directives).map_err(|e| LoggingError::Filter(e.to_string()))
        }
        None => EnvFilter::try_new(default_directives(verbosity))
            .map_err(|e| LoggingError::Filter(e.to_string())),
    }
}

/// Whether to log to the journal: `JOURNAL_STREAM` is set (systemd connected stderr to the
/// journal), the journald socket exists, and `JOURNAL_STREAM`'s `DEVICE:INODE` still names
/// our stderr (systemd.exec(5): a program should check this, since stderr may have been
/// redirected after the variable was inherited).
pub fn journald_wanted(
    journal_stream: Option<&str>,
    socket: &Path,
    stderr_identity: Option<(u64, u64)>,
) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|s| s.trim().split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    if !socket.exists() {
        return false;
    }
    stderr_identity == Some((dev, ino))
}

/// Device and inode of our stderr, if it is open.
fn stderr_identity() -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    Some((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Install the global subscriber for `verbosity` (`-v` count); returns where logs go.
pub fn init(verbosity: u8) -> Result<LogBackend, LoggingError> {
    let rust_log = env::var("RUST_LOG").ok();
    let filter = build_filter(verbosity, rust_log.as_deref())?;
    let journal_stream = env::var("JOURNAL_STREAM").ok();
    if journald_wanted(
        journal_stream.as_deref(),
        Path::new(JOURNALD_SOCKET),
        stderr_identity(),
    ) {
        // If the socket cannot be opened after all, stderr still reaches the journal.
        if let Ok(journald) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter)
                .with(journald.with_syslog_identifier("nfcd".to_owned()))
                .try_init()
                .map_err(|e| LoggingError::AlreadyInitialized(e.to_string()))?;
            return Ok(LogBackend::Journald);
        }
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .map_err(|e| LoggingError::AlreadyInitialized(e.to_string()))?;
    Ok(LogBackend::Stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verbosity_has_a_valid_filter() {
        for v in 0..=5 {
            let filter = build_filter(v, None);
            assert!(filter.is_ok(), "-v x{v}");
        }
        assert_eq!(default_directives(0), "info");
        assert!(default_directives(1).contains("nci=debug"));
        assert!(default_directives(2).contains("nci=trace"));
        assert_eq!(default_directives(9), "trace");
    }

    #[test]
    fn rust_log_overrides_verbosity() {
        let filter = build_filter(0, Some("nci=trace,warn")).map(|f| f.to_string());
        assert!(
            matches!(&filter, Ok(s) if s.contains("nci=trace")),
            "{filter:?}"
        );
        // Empty RUST_LOG is ignored.
        let filter = build_filter(1, Some("  ")).map(|f| f.to_string());
        assert!(
            matches!(&filter, Ok(s) if s.contains("nci=debug")),
            "{filter:?}"
        );
    }

    #[test]
    fn bad_rust_log_is_an_error() {
        let err = build_filter(0, Some("nci=loud"))
            .err()
            .map(|e| e.to_string());
        assert!(
            matches!(&err, Some(s) if s.starts_with("RUST_LOG: ")),
            "{err:?}"
        );
    }

    #[test]
    fn journald_only_when_stream_matches_stderr_and_socket_exists() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        std::fs::write(&socket, b"").unwrap();
        let missing = dir.path().join("absent");

        assert!(journald_wanted(Some("8:1234"), &socket, Some((8, 1234))));
        // Not started by systemd.
        assert!(!journald_wanted(None, &socket, Some((8, 1234))));
        // No journald running.
        assert!(!journald_wanted(Some("8:1234"), &missing, Some((8, 1234))));
        // stderr was redirected after the variable was inherited.
        assert!(!journald_wanted(Some("8:1234"), &socket, Some((8, 99))));
        assert!(!journald_wanted(Some("8:1234"), &socket, None));
        // Malformed variable.
        assert!(!journald_wanted(Some("garbage"), &socket, Some((8, 1234))));
        assert!(!journald_wanted(Some("8:x"), &socket, Some((8, 1234))));
    }
}
