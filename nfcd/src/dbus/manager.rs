//! `org.nfcd.Manager1` at `/org/nfcd`: registration of host card emulation services.
//!
//! A thin translation. Each method identifies its caller ([`Caller`]), decodes and checks its
//! arguments ([`RegisterRequest`]), and hands a [`ManagerRequest`] to the daemon core, which
//! owns the service registry and answers on a oneshot channel; the answer becomes the D-Bus
//! reply. `OpenApduChannel` additionally creates the socket pair ([`ApduChannel::pair`]) and
//! returns the wallet's end once the core has accepted the other. Properties are the core's
//! [`ManagerState`], updated through [`ManagerHandle::update`]. No registry logic lives here.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{
    interface, Connection, DeserializeDict, ObjectPath, OwnedFd, OwnedObjectPath, OwnedVariant,
    SerializeDict, Type,
};

use super::caller::{Caller, ExeDigest};
use super::channel::ApduChannel;
use super::error::Error;
use super::options::{Quoted, RegisterOptions, RegisterRequest, MAX_ID_LEN};
use super::props::{push_if_changed, PropertySet, Shared};

/// Object path of the manager (and of the ObjectManager).
pub const MANAGER_PATH: &str = "/org/nfcd";
/// Interface name.
pub const MANAGER_INTERFACE: &str = "org.nfcd.Manager1";

/// One registered service as listed in the `Services` property: a dictionary `a{sv}` so that
/// later versions can add keys.
///
/// Converts to and from a D-Bus dictionary value, so clients can decode the property with it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    SerializeDict,
    DeserializeDict,
    Type,
    zbus::Variant,
    zbus::OwnedVariant,
)]
#[zbus(signature = "a{sv}", rename_all = "PascalCase")]
pub struct ServiceInfo {
    /// Object path the owner exports `org.nfcd.HostService1` at.
    pub path: OwnedObjectPath,
    /// Unique bus name of the owner.
    pub owner: String,
    /// Service Id.
    pub id: String,
    /// `payment`, `transit` or `other`.
    pub category: String,
    /// Display name.
    pub name: String,
    /// Exact AIDs.
    pub aids: Vec<Vec<u8>>,
    /// Prefix AIDs.
    pub prefix_aids: Vec<Vec<u8>>,
    /// Subset AIDs.
    pub subset_aids: Vec<Vec<u8>>,
    /// Only reachable while unlocked.
    pub requires_unlock: bool,
    /// Transit express mode.
    pub express: bool,
    /// Currently the preferred service (`SetPreferredService`).
    pub preferred: bool,
    /// The default service of its category (`SetDefaultService`, or the only payment service).
    pub default: bool,
    /// User id the service's Id is bound to (the registering process's uid).
    pub uid: u32,
    /// SHA-256 of the executable the Id is bound to, lowercase hex; empty when nfcd could not
    /// read it (another user's process without CAP_SYS_PTRACE).
    pub exe_sha256: String,
}

/// Everything `org.nfcd.Manager1` shows, as the core last set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerState {
    /// Registered services (`Services`).
    pub services: Vec<ServiceInfo>,
    /// Default service Id per category (`DefaultServices`).
    pub default_services: BTreeMap<String, String>,
}

impl PropertySet for ManagerState {
    fn changed(&self, old: &Self) -> zbus::Result<Vec<(&'static str, OwnedVariant)>> {
        let mut out = Vec::new();
        push_if_changed(&mut out, "Services", &self.services, &old.services)?;
        push_if_changed(
            &mut out,
            "DefaultServices",
            &self.default_services,
            &old.default_services,
        )?;
        Ok(out)
    }
}

/// The core's answer to a [`ManagerRequest`].
pub type Reply = oneshot::Sender<Result<(), Error>>;

/// A `Manager1` method call, decoded, for the core to carry out.
///
/// Every variant carries the identified [`Caller`] and a [`Reply`]; the D-Bus caller gets the
/// reply as its method return or error.
#[derive(Debug)]
pub enum ManagerRequest {
    /// `RegisterService(o service, a{sv} options)`. The caller's executable digest is computed.
    RegisterService {
        /// Who registers.
        caller: Caller,
        /// Where the caller exports `org.nfcd.HostService1`.
        service: OwnedObjectPath,
        /// The checked options.
        request: RegisterRequest,
        /// Outcome.
        reply: Reply,
    },
    /// `UnregisterService(o service)`.
    UnregisterService {
        /// Who asks.
        caller: Caller,
        /// The service's object path.
        service: OwnedObjectPath,
        /// Outcome.
        reply: Reply,
    },
    /// `SetDefaultService(s category, s id)`; `category` is `payment` or `transit`.
    SetDefaultService {
        /// Who asks.
        caller: Caller,
        /// `payment` or `transit`.
        category: String,
        /// Service Id.
        id: String,
        /// Outcome.
        reply: Reply,
    },
    /// `SetPreferredService(o service)`.
    SetPreferredService {
        /// Who asks.
        caller: Caller,
        /// The service's object path.
        service: OwnedObjectPath,
        /// Outcome.
        reply: Reply,
    },
    /// `ClearPreferredService()`.
    ClearPreferredService {
        /// Who asks.
        caller: Caller,
        /// Outcome.
        reply: Reply,
    },
    /// `OpenApduChannel(o service) → h`. On `Ok`, the core keeps `channel` for the service
    /// (dropping any earlier one) and the caller receives the other end of the socket pair; on
    /// `Err` both ends are closed.
    OpenApduChannel {
        /// Who asks.
        caller: Caller,
        /// The service's object path.
        service: OwnedObjectPath,
        /// nfcd's end of the new channel.
        channel: ApduChannel,
        /// Outcome.
        reply: Reply,
    },
}

/// The exported `org.nfcd.Manager1` object.
pub struct Manager {
    shared: Arc<Shared<ManagerState>>,
    requests: mpsc::Sender<ManagerRequest>,
}

/// The core's side of the manager object: change state, emit signals.
#[derive(Clone)]
pub struct ManagerHandle {
    shared: Arc<Shared<ManagerState>>,
    emitter: SignalEmitter<'static>,
}

/// Make the manager object (to serve at [`MANAGER_PATH`] on `conn`) and its handle.
pub fn manager(
    conn: &Connection,
    initial: ManagerState,
    requests: mpsc::Sender<ManagerRequest>,
) -> zbus::Result<(Manager, ManagerHandle)> {
    let shared = Shared::new(initial);
    let emitter = SignalEmitter::new(conn, MANAGER_PATH)?.into_owned();
    Ok((
        Manager {
            shared: Arc::clone(&shared),
            requests,
        },
        ManagerHandle { shared, emitter },
    ))
}

impl ManagerHandle {
    /// Change the state with `f` and emit one `PropertiesChanged` with the fields that changed.
    pub async fn update(&self, f: impl FnOnce(&mut ManagerState)) -> zbus::Result<()> {
        let iface = InterfaceName::from_static_str_unchecked(MANAGER_INTERFACE);
        self.shared.update(&self.emitter, &iface, f).await
    }

    /// A copy of the current state.
    pub fn state(&self) -> ManagerState {
        self.shared.read(Clone::clone)
    }

    /// Emit `AidConflict(aid, ids)`: services `ids` of the `other` category all claim `aid`.
    pub async fn aid_conflict(&self, aid: &[u8], ids: &[String]) -> zbus::Result<()> {
        Manager::aid_conflict(&self.emitter, aid, ids).await
    }
}

impl Manager {
    /// Send `make(reply)` to the core and wait for its answer.
    async fn ask(&self, make: impl FnOnce(Reply) -> ManagerRequest) -> Result<(), Error> {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| Error::NotReady("the service registry is not running".to_owned()))?;
        outcome
            .await
            .unwrap_or_else(|_| Err(Error::Failed("the registry dropped the request".to_owned())))
    }
}

async fn caller(
    conn: &Connection,
    header: &Header<'_>,
    digest: ExeDigest,
) -> Result<Caller, Error> {
    Caller::from_header(conn, header, digest)
        .await
        .map_err(|e| Error::Failed(e.to_string()))
}

#[interface(name = "org.nfcd.Manager1")]
impl Manager {
    /// Register the caller's `org.nfcd.HostService1` object at `service` with `options`.
    async fn register_service(
        &self,
        service: ObjectPath<'_>,
        options: RegisterOptions,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let request = RegisterRequest::from_values(&options)?;
        let caller = caller(conn, &header, ExeDigest::Compute).await?;
        let service = service.into();
        self.ask(|reply| ManagerRequest::RegisterService {
            caller,
            service,
            request,
            reply,
        })
        .await
    }

    /// Unregister the caller's service at `service`.
    async fn unregister_service(
        &self,
        service: ObjectPath<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let caller = caller(conn, &header, ExeDigest::Skip).await?;
        let service = service.into();
        self.ask(|reply| ManagerRequest::UnregisterService {
            caller,
            service,
            reply,
        })
        .await
    }

    /// Make service `id` the default of `category` (`payment` or `transit`).
    async fn set_default_service(
        &self,
        category: &str,
        id: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        if category != "payment" && category != "transit" {
            return Err(Error::InvalidArguments(format!(
                "category {} has no default service; it is payment or transit",
                Quoted(category)
            )));
        }
        if id.is_empty() {
            return Err(Error::InvalidArguments("id is empty".to_owned()));
        }
        // No registered service has a longer Id; refusing it here keeps the error short.
        if id.len() > MAX_ID_LEN {
            return Err(Error::InvalidArguments(format!(
                "id {} is {} bytes; at most {MAX_ID_LEN} are allowed",
                Quoted(id),
                id.len()
            )));
        }
        let caller = caller(conn, &header, ExeDigest::Skip).await?;
        let (category, id) = (category.to_owned(), id.to_owned());
        self.ask(|reply| ManagerRequest::SetDefaultService {
            caller,
            category,
            id,
            reply,
        })
        .await
    }

    /// Prefer the caller's service at `service` while the caller wants it.
    async fn set_preferred_service(
        &self,
        service: ObjectPath<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let caller = caller(conn, &header, ExeDigest::Skip).await?;
        let service = service.into();
        self.ask(|reply| ManagerRequest::SetPreferredService {
            caller,
            service,
            reply,
        })
        .await
    }

    /// Drop the caller's preference.
    async fn clear_preferred_service(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let caller = caller(conn, &header, ExeDigest::Skip).await?;
        self.ask(|reply| ManagerRequest::ClearPreferredService { caller, reply })
            .await
    }

    /// Open the fast APDU path for the caller's service at `service`.
    #[zbus(out_args("channel"))]
    async fn open_apdu_channel(
        &self,
        service: ObjectPath<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<OwnedFd, Error> {
        let caller = caller(conn, &header, ExeDigest::Skip).await?;
        let (channel, wallet_end) = ApduChannel::pair()
            .map_err(|e| Error::Failed(format!("cannot create the APDU channel: {e}")))?;
        let service = service.into();
        self.ask(|reply| ManagerRequest::OpenApduChannel {
            caller,
            service,
            channel,
            reply,
        })
        .await?;
        Ok(OwnedFd::from(wallet_end))
    }

    /// Version of nfcd.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// Registered services, one `a{sv}` each.
    #[zbus(property)]
    fn services(&self) -> Vec<ServiceInfo> {
        self.shared.read(|s| s.services.clone())
    }

    /// Default service Id per category.
    #[zbus(property)]
    fn default_services(&self) -> BTreeMap<String, String> {
        self.shared.read(|s| s.default_services.clone())
    }

    /// Several `other` services claim `aid`; `ids` lists them, the one that wins first.
    #[zbus(signal)]
    async fn aid_conflict(
        emitter: &SignalEmitter<'_>,
        aid: &[u8],
        ids: &[String],
    ) -> zbus::Result<()>;
}
