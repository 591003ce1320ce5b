//! The connection to nfcd: bus selection, the "is nfcd running" check, proxies of the
//! `org.nfcd.*` interfaces, and the sorting of D-Bus errors into [`CtlError`]s.
//!
//! Contract: [`Client::connect`] either returns a client whose bus has an owner for `org.nfcd`
//! or fails with [`CtlError::BusUnreachable`] / [`CtlError::DaemonAbsent`]. It asks the bus
//! (`GetNameOwner`) rather than calling nfcd, so `nfcctl` never causes D-Bus activation of the
//! daemon. Every call waits at most the reply timeout (`--timeout`, 25 s by default: the
//! reply timeout of libdbus), so a wedged bus or daemon ends the run instead of hanging it.
//! [`Client::error`] is the one place where zbus errors become exit statuses.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use zbus::fdo::{self, DBusProxy, PropertiesProxy};
use zbus::names::{BusName, InterfaceName, OwnedUniqueName};
use zbus::proxy::{CacheProperties, Defaults};
use zbus::{proxy, Connection, DBusError, OwnedVariant, Variant};

use super::error::CtlError;
use crate::config::BusSpec;

pub use crate::dbus::adapter::{ADAPTER_INTERFACE, ADAPTER_PATH};
pub use crate::dbus::manager::{MANAGER_INTERFACE, MANAGER_PATH};
pub use crate::dbus::BUS_NAME;

/// Live NCI / APDU trace (doc/monitor-api.md).
pub const MONITOR_INTERFACE: &str = "org.nfcd.Monitor1";
/// Simulated taps on the virtual controller (doc/simulator-api.md).
pub const SIMULATOR_INTERFACE: &str = "org.nfcd.Simulator1";

/// `org.nfcd.Manager1`: the calls `nfcctl` makes (doc/manager-api.md).
#[proxy(
    interface = "org.nfcd.Manager1",
    default_service = "org.nfcd",
    default_path = "/org/nfcd"
)]
pub trait Manager1 {
    /// Make service `id` the default of `category`.
    fn set_default_service(&self, category: &str, id: &str) -> zbus::Result<()>;
}

/// `org.nfcd.Monitor1` (doc/monitor-api.md).
#[proxy(
    interface = "org.nfcd.Monitor1",
    default_service = "org.nfcd",
    default_path = "/org/nfcd/adapter0"
)]
pub trait Monitor1 {
    /// Start receiving `Nci` and `Apdu` signals until `Unsubscribe` or until the caller leaves.
    fn subscribe(&self) -> zbus::Result<()>;
    /// Stop receiving them.
    fn unsubscribe(&self) -> zbus::Result<()>;
}

/// `org.nfcd.Simulator1` (doc/simulator-api.md).
#[proxy(
    interface = "org.nfcd.Simulator1",
    default_service = "org.nfcd",
    default_path = "/org/nfcd/adapter0"
)]
pub trait Simulator1 {
    /// Run reader `script` against the daemon's virtual controller; one record per APDU, then
    /// a summary record.
    fn tap(
        &self,
        script: &str,
        options: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<Vec<HashMap<String, OwnedVariant>>>;
}

/// A connection to the bus on which nfcd was found running.
#[derive(Debug, Clone)]
pub struct Client {
    conn: Connection,
    bus: BusSpec,
    owner: OwnedUniqueName,
    timeout: Duration,
}

impl Client {
    /// Connect to `bus` and check that `org.nfcd` has an owner; every call of this client
    /// then waits at most `timeout` for its reply.
    pub async fn connect(bus: &BusSpec, timeout: Duration) -> Result<Client, CtlError> {
        let unreachable = |error| CtlError::BusUnreachable {
            bus: bus.clone(),
            error,
        };
        let ask = async {
            let conn = crate::dbus::socket::builder(bus)
                .await
                .map_err(unreachable)?
                .method_timeout(timeout)
                .build()
                .await
                .map_err(unreachable)?;
            let dbus = DBusProxy::new(&conn).await.map_err(unreachable)?;
            let name = BusName::from_static_str(BUS_NAME).map_err(unreachable)?;
            match dbus.get_name_owner(name).await {
                Ok(owner) => Ok((conn, owner)),
                Err(fdo::Error::NameHasNoOwner(_)) => {
                    Err(CtlError::DaemonAbsent { bus: bus.clone() })
                }
                Err(fdo::Error::ZBus(error)) => Err(unreachable(error)),
                Err(other) => Err(daemon_error(&other)),
            }
        };
        // Connecting (authentication, Hello) is not covered by the method timeout.
        let (conn, owner) =
            tokio::time::timeout(timeout, ask)
                .await
                .map_err(|_| CtlError::Timeout {
                    after: timeout,
                    bus: true,
                })??;
        Ok(Client {
            conn,
            bus: bus.clone(),
            owner,
            timeout,
        })
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The bus this client is on.
    pub fn bus(&self) -> &BusSpec {
        &self.bus
    }

    /// The unique name that owned `org.nfcd` when the client connected.
    pub fn owner(&self) -> &OwnedUniqueName {
        &self.owner
    }

    /// All properties of `interface` at `path` (`org.freedesktop.DBus.Properties.GetAll`).
    ///
    /// `Ok(None)` when the daemon has no such object or interface: the callers show the
    /// properties as missing instead of failing.
    pub async fn properties(
        &self,
        path: &'static str,
        interface: &'static str,
    ) -> Result<Option<HashMap<String, OwnedVariant>>, CtlError> {
        let proxy = PropertiesProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| self.error(e, String::new))?;
        let iface = InterfaceName::from_static_str_unchecked(interface);
        match proxy.get_all(iface).await {
            Ok(props) => Ok(Some(props)),
            Err(fdo::Error::UnknownObject(_)) | Err(fdo::Error::UnknownInterface(_)) => Ok(None),
            Err(err) => Err(self.fdo_error(err, String::new)),
        }
    }

    /// A proxy of one of the `org.nfcd.*` interfaces at its default path, without a property
    /// cache (`nfcctl` reads properties with one `GetAll`, when it needs them).
    async fn proxy<P>(&self) -> Result<P, CtlError>
    where
        P: From<zbus::Proxy<'static>> + Defaults,
    {
        proxy::Builder::<P>::new(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| self.error(e, String::new))
    }

    /// A proxy of `org.nfcd.Manager1`.
    pub async fn manager(&self) -> Result<Manager1Proxy<'static>, CtlError> {
        self.proxy().await
    }

    /// A proxy of `org.nfcd.Monitor1`.
    pub async fn monitor(&self) -> Result<Monitor1Proxy<'static>, CtlError> {
        self.proxy().await
    }

    /// A proxy of `org.nfcd.Simulator1`.
    pub async fn simulator(&self) -> Result<Simulator1Proxy<'static>, CtlError> {
        self.proxy().await
    }

    /// Sort a zbus error of a call to nfcd. `missing` says what the daemon lacks when it
    /// answers `UnknownObject` / `UnknownInterface` / `UnknownMethod`.
    pub fn error(&self, err: zbus::Error, missing: impl FnOnce() -> String) -> CtlError {
        match err {
            zbus::Error::FDO(e) => self.fdo_error(*e, missing),
            zbus::Error::MethodError(name, message, _) => CtlError::Daemon {
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::InputOutput(e) if e.kind() == io::ErrorKind::TimedOut => {
                CtlError::Timeout {
                    after: self.timeout,
                    bus: false,
                }
            }
            error @ (zbus::Error::InputOutput(_) | zbus::Error::Connection(..)) => {
                CtlError::BusLost { error }
            }
            other => CtlError::BadReply {
                what: other.to_string(),
            },
        }
    }

    /// [`Client::error`] for errors of the `fdo` proxies.
    pub fn fdo_error(&self, err: fdo::Error, missing: impl FnOnce() -> String) -> CtlError {
        match err {
            fdo::Error::ZBus(e) => self.error(e, missing),
            fdo::Error::ServiceUnknown(_) | fdo::Error::NameHasNoOwner(_) => {
                CtlError::DaemonAbsent {
                    bus: self.bus.clone(),
                }
            }
            ref e @ (fdo::Error::UnknownObject(_)
            | fdo::Error::UnknownInterface(_)
            | fdo::Error::UnknownMethod(_)) => {
                let what = missing();
                if what.is_empty() {
                    daemon_error(e)
                } else {
                    CtlError::Unsupported { what }
                }
            }
            other => daemon_error(&other),
        }
    }
}

/// An error reply, shown by its D-Bus name and message.
fn daemon_error(err: &fdo::Error) -> CtlError {
    CtlError::Daemon {
        name: err.name().to_string(),
        message: err.description().unwrap_or_default().to_owned(),
    }
}
