//! The daemon core: one task that owns the controller, the transport and the HCE registry.
//!
//! Everything that happens on the tap path happens on this task, without a thread hop: a
//! packet from the transport is fed to the sans-IO [`libnci::controller::Controller`]; a
//! command APDU it reassembles is resolved by the [`crate::hce::Session`] and forwarded to the
//! selected wallet (over D-Bus or the wallet's SOCK_SEQPACKET channel) with the per-APDU
//! deadline; the wallet's answer goes back through the controller to the transport. D-Bus
//! method calls reach the core as requests on channels ([`crate::dbus::Requests`]) and are
//! answered from the same loop, so the registry needs no lock.
//!
//! What the core does not do: D-Bus encoding (module [`crate::dbus`]), NCI (libnci), APDU
//! routing rules ([`crate::hce`]) or packet framing ([`crate::transport`]).
//!
//! Failure handling: a transport that cannot be opened or fails is retried with back-off
//! (the adapter shows `Present=false` meanwhile); a controller that gives up re-initialising is
//! reset through the transport (VEN on I²C) and started again with back-off. Registrations and
//! defaults are kept through all of it; nothing exits but a signal.

mod convert;
mod engine;

use std::fmt;
use std::path::PathBuf;

use tracing::{info, warn};

use crate::config::Config;
use crate::dbus::{self, AdapterState, ManagerState};
use crate::hce::{store::DefaultsStore, Defaults, Registry};
use crate::identity::IdentityStore;

pub use engine::Engine;

/// Why the daemon could not start (it never stops on its own once running).
#[derive(Debug)]
pub enum DaemonError {
    /// The bus could not be reached or the name is taken.
    Bus(dbus::ServeError),
    /// The state directory is unusable.
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// A configured user or group name does not exist.
    Access(String),
    /// Installing a signal handler failed.
    Signals(std::io::Error),
    /// The bus connection was closed under nfcd (`dbus-daemon` exited or dropped it).
    BusLost,
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Bus(e) => write!(f, "D-Bus: {e}"),
            DaemonError::StateDir { path, error } => {
                write!(f, "state directory {}: {error}", path.display())
            }
            DaemonError::Access(e) => write!(f, "access configuration: {e}"),
            DaemonError::Signals(e) => write!(f, "installing signal handlers: {e}"),
            DaemonError::BusLost => write!(f, "lost the connection to the D-Bus bus"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&config.state_dir).map_err(|error| DaemonError::StateDir {
        path: config.state_dir.clone(),
        error,
    })?;
    let store = DefaultsStore::new(&config.state_dir);
    let defaults = match store.load() {
        Ok(d) => d,
        Err(e) => {
            warn!("starting without saved default services: {e}");
            Defaults::default()
        }
    };
    let identities = IdentityStore::load(&config.state_dir).unwrap_or_else(|e| {
        warn!("{e}");
        *e.store
    });
    let policy = convert::access_policy(&config.access).map_err(DaemonError::Access)?;
    let registry = Registry::new(policy, defaults);

    let manager_state = ManagerState {
        default_services: convert::default_services(registry.defaults()),
        ..ManagerState::default()
    };
    let adapter_state = AdapterState {
        powered: true,
        present: false,
        transport: config.transport.to_string(),
        listen_technologies: convert::listen_names(&config.listen),
        ..AdapterState::default()
    };
    let bus = config.bus.clone();
    let (served, requests) = dbus::serve(&bus, manager_state, adapter_state)
        .await
        .map_err(DaemonError::Bus)?;
    info!(
        "serving {} on the {bus} as {}",
        dbus::BUS_NAME,
        served
            .conn
            .unique_name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    );
    let engine = Engine::new(config, registry, store, identities, served, requests)
        .await
        .map_err(DaemonError::Bus)?;
    engine.run().await
}
