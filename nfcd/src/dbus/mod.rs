//! The D-Bus layer of nfcd: `org.nfcd.Manager1`, `org.nfcd.Adapter1`, and calls to wallets'
//! `org.nfcd.HostService1`.
//!
//! Translates between D-Bus and the daemon core, nothing else. The exported objects turn method
//! calls and property writes into requests on channels ([`ManagerRequest`],
//! [`AdapterRequest`]) and serve the state the core publishes through handles
//! ([`ManagerHandle`], [`AdapterHandle`]); [`HostServiceClient`] and [`ApduChannel`] carry APDUs
//! to wallets; [`NameWatcher`] reports clients that leave. The interfaces are described in
//! `dbus/*.xml` (embedded here as [`MANAGER1_XML`], [`ADAPTER1_XML`], [`HOSTSERVICE1_XML`]) and
//! documented in `doc/*-api.md`. The HCE registry, AID resolution and controller control are
//! not here.

pub mod adapter;
pub mod caller;
pub mod channel;
pub mod error;
pub mod hostservice;
pub mod introspect;
pub mod manager;
pub mod monitor;
pub mod names;
pub mod options;
mod props;
pub mod simulator;
pub mod socket;

use std::fmt;

use tokio::sync::mpsc;
use zbus::fdo::{ObjectManager, RequestNameFlags};
use zbus::Connection;

pub use adapter::{AdapterHandle, AdapterRequest, AdapterState, RoutingEntry, ADAPTER_PATH};
pub use caller::{Caller, ExeDigest};
pub use channel::{ApduChannel, ChannelError};
pub use error::Error;
pub use hostservice::{CallError, HostServiceClient};
pub use manager::{ManagerHandle, ManagerRequest, ManagerState, ServiceInfo, MANAGER_PATH};
pub use names::{NameWatcher, OwnerGone};
pub use options::RegisterRequest;

/// The well-known bus name of nfcd.
pub const BUS_NAME: &str = "org.nfcd";

/// Shipped introspection data of `org.nfcd.Manager1` (`dbus/org.nfcd.Manager1.xml`).
pub const MANAGER1_XML: &str = include_str!("../../../dbus/org.nfcd.Manager1.xml");
/// Shipped introspection data of `org.nfcd.Adapter1` (`dbus/org.nfcd.Adapter1.xml`).
pub const ADAPTER1_XML: &str = include_str!("../../../dbus/org.nfcd.Adapter1.xml");
/// Shipped introspection data of `org.nfcd.HostService1` (`dbus/org.nfcd.HostService1.xml`).
pub const HOSTSERVICE1_XML: &str = include_str!("../../../dbus/org.nfcd.HostService1.xml");

/// How many requests of each kind may wait for the core before callers wait too.
const REQUEST_QUEUE: usize = 64;

use crate::config::BusSpec;

/// Why nfcd could not get onto the bus.
#[derive(Debug)]
pub enum ServeError {
    /// Connecting, exporting objects, or asking for the name failed.
    Bus {
        /// What was being done.
        doing: String,
        /// The error.
        error: zbus::Error,
    },
    /// Another connection owns `org.nfcd` (another nfcd running?).
    NameTaken {
        /// The owner's unique name, if the bus told.
        owner: Option<String>,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Bus { doing, error } => write!(f, "{doing}: {error}"),
            ServeError::NameTaken { owner: Some(o) } => write!(
                f,
                "{BUS_NAME} is already owned by {o}; is another nfcd running?"
            ),
            ServeError::NameTaken { owner: None } => {
                write!(f, "{BUS_NAME} is already owned; is another nfcd running?")
            }
        }
    }
}

impl std::error::Error for ServeError {}

fn bus_err(doing: impl Into<String>) -> impl FnOnce(zbus::Error) -> ServeError {
    let doing = doing.into();
    move |error| ServeError::Bus { doing, error }
}

/// Connect to `bus` (no name requested yet).
pub async fn connect(bus: &BusSpec) -> Result<Connection, ServeError> {
    socket::connect(bus)
        .await
        .map_err(bus_err(format!("connecting to D-Bus ({bus})")))
}

/// nfcd on the bus: the connection and the handles through which the core publishes state.
#[derive(Clone)]
pub struct Served {
    /// The daemon's bus connection (also for [`HostServiceClient`] and [`NameWatcher`]).
    pub conn: Connection,
    /// Publishes `org.nfcd.Manager1` state and signals.
    pub manager: ManagerHandle,
    /// Publishes `org.nfcd.Adapter1` state and signals.
    pub adapter: AdapterHandle,
    /// Feeds `org.nfcd.Monitor1` subscribers (a no-op while there are none).
    pub monitor: monitor::MonitorHandle,
}

/// What clients ask of the core.
pub struct Requests {
    /// `org.nfcd.Manager1` method calls.
    pub manager: mpsc::Receiver<ManagerRequest>,
    /// `org.nfcd.Adapter1` property writes.
    pub adapter: mpsc::Receiver<AdapterRequest>,
}

/// Connect to `bus`, export `/org/nfcd` (ObjectManager, Manager1) and `/org/nfcd/adapter0`
/// (Adapter1), then take the name `org.nfcd`.
///
/// The name is requested last, so a client that sees it finds every object in place. It is
/// requested without queueing or replacement: if another connection owns it, this fails with
/// [`ServeError::NameTaken`].
pub async fn serve(
    bus: &BusSpec,
    manager_state: ManagerState,
    adapter_state: AdapterState,
) -> Result<(Served, Requests), ServeError> {
    let conn = connect(bus).await?;
    let (manager_tx, manager_rx) = mpsc::channel(REQUEST_QUEUE);
    let (adapter_tx, adapter_rx) = mpsc::channel(REQUEST_QUEUE);
    let (manager, manager_handle) = manager::manager(&conn, manager_state, manager_tx)
        .map_err(bus_err("creating the manager object"))?;
    let (adapter, adapter_handle) = adapter::adapter(&conn, adapter_state, adapter_tx)
        .map_err(bus_err("creating the adapter object"))?;

    let server = conn.object_server();
    server
        .at(MANAGER_PATH, ObjectManager)
        .await
        .map_err(bus_err(format!(
            "exporting the object manager at {MANAGER_PATH}"
        )))?;
    server
        .at(MANAGER_PATH, manager)
        .await
        .map_err(bus_err(format!(
            "exporting org.nfcd.Manager1 at {MANAGER_PATH}"
        )))?;
    server
        .at(ADAPTER_PATH, adapter)
        .await
        .map_err(bus_err(format!(
            "exporting org.nfcd.Adapter1 at {ADAPTER_PATH}"
        )))?;
    let monitor = monitor::export(&conn).await.map_err(bus_err(format!(
        "exporting org.nfcd.Monitor1 at {ADAPTER_PATH}"
    )))?;

    request_name(&conn).await?;
    Ok((
        Served {
            conn,
            manager: manager_handle,
            adapter: adapter_handle,
            monitor,
        },
        Requests {
            manager: manager_rx,
            adapter: adapter_rx,
        },
    ))
}

async fn request_name(conn: &Connection) -> Result<(), ServeError> {
    match conn
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
    {
        Ok(_) => Ok(()),
        Err(zbus::Error::NameTaken) => {
            let owner = conn
                .call_method(
                    Some("org.freedesktop.DBus"),
                    "/org/freedesktop/DBus",
                    Some("org.freedesktop.DBus"),
                    "GetNameOwner",
                    &(BUS_NAME,),
                )
                .await
                .ok()
                .and_then(|reply| reply.body().deserialize::<String>().ok());
            Err(ServeError::NameTaken { owner })
        }
        Err(error) => Err(ServeError::Bus {
            doing: format!(
                "requesting the name {BUS_NAME} (on the system bus, nfcd must run as the user \
                 the bus policy dbus/org.nfcd.conf allows)"
            ),
            error,
        }),
    }
}

/// Why a served interface does not match its shipped description.
#[derive(Debug)]
pub enum ServedMismatch {
    /// `Introspect` failed.
    Call {
        /// Object path asked.
        path: String,
        /// The error.
        error: zbus::Error,
    },
    /// The served data differs from (or lacks) the shipped interface.
    Differs {
        /// Object path asked.
        path: String,
        /// The difference.
        error: introspect::IntrospectError,
    },
}

impl fmt::Display for ServedMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServedMismatch::Call { path, error } => write!(f, "introspecting {path}: {error}"),
            ServedMismatch::Differs { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for ServedMismatch {}

/// Check that `dest` serves interface `interface` at `path` exactly as `shipped_xml` describes
/// it (methods, arguments, signals, properties; see [`introspect`]).
pub async fn check_served_interface(
    conn: &Connection,
    dest: &str,
    path: &str,
    interface: &str,
    shipped_xml: &str,
) -> Result<(), ServedMismatch> {
    let call_err = |error| ServedMismatch::Call {
        path: path.to_owned(),
        error,
    };
    let reply = conn
        .call_method(
            Some(dest),
            path,
            Some("org.freedesktop.DBus.Introspectable"),
            "Introspect",
            &(),
        )
        .await
        .map_err(call_err)?;
    let served: String = reply.body().deserialize().map_err(call_err)?;
    introspect::compare_xml(&served, shipped_xml, interface).map_err(|error| {
        ServedMismatch::Differs {
            path: path.to_owned(),
            error,
        }
    })
}

/// Check both interfaces nfcd serves under the name `dest` against `dbus/*.xml`.
pub async fn check_served(conn: &Connection, dest: &str) -> Result<(), ServedMismatch> {
    check_served_interface(
        conn,
        dest,
        MANAGER_PATH,
        manager::MANAGER_INTERFACE,
        MANAGER1_XML,
    )
    .await?;
    check_served_interface(
        conn,
        dest,
        ADAPTER_PATH,
        adapter::ADAPTER_INTERFACE,
        ADAPTER1_XML,
    )
    .await?;
    check_served_interface(
        conn,
        dest,
        ADAPTER_PATH,
        monitor::MONITOR_INTERFACE,
        monitor::MONITOR1_XML,
    )
    .await
}
