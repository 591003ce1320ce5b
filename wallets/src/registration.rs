//! Wallet side of the nfcd D-Bus API (DESIGN.md "D-Bus API"): export `org.nfcd.HostService1`
//! for an [`ApduHandler`], register it with `org.nfcd.Manager1.RegisterService`, optionally serve
//! the `OpenApduChannel` fast path, and unregister when the returned [`RegistrationHandle`] is
//! dropped.
//!
//! What it does not do: validate AIDs, categories or ids (the daemon is the authority, and its
//! `org.nfcd.Error.*` replies are passed through unchanged so that tests can see them), follow
//! the daemon across a restart (registrations die with either side's bus name, so a wallet that
//! wants to survive a daemon restart registers again), or run a handler concurrently with itself:
//! one handler sees one APDU at a time, in arrival order, like a card.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::socket::{getsockopt, recv, send, sockopt, MsgFlags, SockType};
use tokio::io::unix::AsyncFd;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;
use zbus::message::Header;
use zbus::{fdo, interface, Connection, DBusError, ObjectPath, OwnedObjectPath, Variant};

use libnci::apdu::{StatusWord, EXTENDED_MAX_NC};
use libnci::sim::cards::status;

/// Well-known bus name of the daemon.
pub const BUS_NAME: &str = "org.nfcd";
/// Object path of the daemon's manager object.
pub const MANAGER_PATH: &str = "/org/nfcd";
/// The daemon's registration interface.
pub const MANAGER_INTERFACE: &str = "org.nfcd.Manager1";
/// The interface a wallet exports at its service path.
pub const HOST_SERVICE_INTERFACE: &str = "org.nfcd.HostService1";

/// The application behind a registered service: it answers the APDUs of a tap.
///
/// Calls are serialised: `process_apdu` and `deactivated` never run at the same time for one
/// handler, and arrive in the order the daemon sent them. A handler may block (it runs on a
/// thread where blocking is allowed when the tokio runtime is multi-threaded), but every
/// millisecond it spends counts against the reader's frame waiting time (ISO/IEC 14443-4 §7.2,
/// FWT): the daemon answers `6F00` on its own once its deadline passes.
pub trait ApduHandler: Send + 'static {
    /// Answers one C-APDU with one R-APDU (data field followed by SW1 SW2, ISO/IEC 7816-4 §5.1).
    /// The SELECT by name that routed the tap here is delivered too, and the handler answers it
    /// with its own FCI.
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8>;

    /// The session with this service ended: `"deselected"` (another application was selected)
    /// or `"link-loss"` (the reader went away), or another reason the daemon documents.
    fn deactivated(&mut self, reason: &str) {
        let _ = reason;
    }
}

/// A boxed handler is a handler, so that a program can pick one at run time (`--verbose`
/// wrapping, test behaviours).
impl<H: ApduHandler + ?Sized> ApduHandler for Box<H> {
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        (**self).process_apdu(apdu)
    }

    fn deactivated(&mut self, reason: &str) {
        (**self).deactivated(reason)
    }
}

/// Which message bus to reach the daemon on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (the daemon's home in production).
    System,
    /// The session bus of the user (development).
    Session,
    /// Any D-Bus address, e.g. `unix:path=/tmp/nfcd-test/bus` of a private `dbus-daemon`.
    Address(String),
}

/// A `--bus` value that is neither `system`, `session`, nor a D-Bus address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseBusError(String);

impl fmt::Display for ParseBusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not `system`, `session` or a D-Bus address like `unix:path=/run/bus`",
            self.0
        )
    }
}

impl std::error::Error for ParseBusError {}

impl FromStr for Bus {
    type Err = ParseBusError;

    /// `system`, `session`, or a D-Bus address (anything of the form `transport:key=value`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "system" => Ok(Bus::System),
            "session" => Ok(Bus::Session),
            address if address.contains(':') => Ok(Bus::Address(address.to_owned())),
            other => Err(ParseBusError(other.to_owned())),
        }
    }
}

impl Bus {
    /// Opens a new connection to this bus. Must be called from within a tokio runtime.
    pub async fn connect(&self) -> zbus::Result<Connection> {
        match self {
            Bus::System => Connection::system().await,
            Bus::Session => Connection::session().await,
            Bus::Address(address) => {
                zbus::connection::Builder::address(address.as_str())
                    .build()
                    .await
            }
        }
    }
}

/// The `a{sv}` options of `RegisterService` (DESIGN.md "D-Bus API"). Unset fields are left out
/// of the dictionary so that the daemon applies its own defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    /// `Id` (s): stable reverse-DNS id, used by `SetDefaultService`.
    pub id: Option<String>,
    /// `Category` (s): `payment`, `transit` or `other`.
    pub category: Option<String>,
    /// `Aids` (aay): exact AIDs (ISO/IEC 7816-4 §12.2.3, 5–16 bytes).
    pub aids: Vec<Vec<u8>>,
    /// `PrefixAids` (aay): AIDs matched as prefixes (`A000000004*`).
    pub prefix_aids: Vec<Vec<u8>>,
    /// `SubsetAids` (aay): AIDs that match any SELECT of which they are a prefix.
    pub subset_aids: Vec<Vec<u8>>,
    /// `Name` (s): human-readable name.
    pub name: Option<String>,
    /// `RequiresUnlock` (b): only serve taps while the device is unlocked.
    pub requires_unlock: Option<bool>,
    /// `Express` (b): transit express mode, works while locked / screen off.
    pub express: Option<bool>,
}

impl ServiceOptions {
    /// The options as the `a{sv}` dictionary `RegisterService` takes.
    pub fn to_dict(&self) -> HashMap<&'static str, Variant<'_>> {
        let mut dict = HashMap::new();
        let strings = [
            ("Id", &self.id),
            ("Category", &self.category),
            ("Name", &self.name),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                dict.insert(key, Variant::from(value.as_str()));
            }
        }
        let aid_lists = [
            ("Aids", &self.aids),
            ("PrefixAids", &self.prefix_aids),
            ("SubsetAids", &self.subset_aids),
        ];
        for (key, aids) in aid_lists {
            if !aids.is_empty() {
                dict.insert(key, Variant::from(aids.clone()));
            }
        }
        let flags = [
            ("RequiresUnlock", self.requires_unlock),
            ("Express", self.express),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                dict.insert(key, Variant::from(value));
            }
        }
        dict
    }
}

/// Why registering, unregistering or a manager call failed.
#[derive(Debug)]
pub enum Error {
    /// The daemon (or the bus on its behalf) answered with a D-Bus error: `org.nfcd.Error.*`
    /// from the daemon, `org.freedesktop.DBus.Error.ServiceUnknown` / `NameHasNoOwner` when no
    /// daemon runs.
    MethodError {
        /// The D-Bus error name.
        name: String,
        /// The error's message, empty if it had none.
        message: String,
    },
    /// Connecting to the bus or exchanging messages on it failed.
    Bus(zbus::Error),
    /// The service path is not a valid D-Bus object path.
    InvalidPath(String),
    /// This connection already exports `org.nfcd.HostService1` at the path.
    PathInUse(String),
    /// The descriptor returned by `OpenApduChannel` is not a usable `SOCK_SEQPACKET` socket.
    Channel(io::Error),
}

impl Error {
    /// A D-Bus error name for this failure: the reply's own name for [`Error::MethodError`],
    /// `org.freedesktop.DBus.Error.InvalidArgs` for a bad path, and
    /// `org.freedesktop.DBus.Error.Failed` for local failures.
    pub fn dbus_name(&self) -> &str {
        match self {
            Error::MethodError { name, .. } => name,
            Error::InvalidPath(_) | Error::PathInUse(_) => "org.freedesktop.DBus.Error.InvalidArgs",
            Error::Bus(_) | Error::Channel(_) => "org.freedesktop.DBus.Error.Failed",
        }
    }

    /// The human-readable part of the failure, without the D-Bus error name.
    pub fn message(&self) -> String {
        match self {
            Error::MethodError { message, .. } => message.clone(),
            Error::Bus(e) => e.to_string(),
            Error::InvalidPath(path) => format!("`{path}` is not a valid D-Bus object path"),
            Error::PathInUse(path) => format!("a host service is already exported at {path}"),
            Error::Channel(e) => format!("APDU channel: {e}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.dbus_name(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<zbus::Error> for Error {
    fn from(error: zbus::Error) -> Self {
        match error {
            zbus::Error::MethodError(name, message, _) => Error::MethodError {
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::FDO(fdo) => Error::MethodError {
                name: fdo.name().to_string(),
                message: fdo.description().unwrap_or_default().to_owned(),
            },
            other => Error::Bus(other),
        }
    }
}

/// A handler shared by the D-Bus object and the channel task; the mutex is what serialises calls.
type SharedHandler = Arc<Mutex<Box<dyn ApduHandler>>>;

/// Runs `f` on the handler. On a multi-threaded runtime it runs under `block_in_place`, so a
/// handler that blocks (slow crypto, a sleep, file I/O) does not stall the connection's other
/// tasks. Returns `None` if the handler panicked; the mutex is recovered from poisoning because
/// the next tap deserves an answer more than the panic deserves a repeat.
fn with_handler<R>(
    handler: &SharedHandler,
    f: impl FnOnce(&mut dyn ApduHandler) -> R,
) -> Option<R> {
    let run = || {
        let mut guard = handler.lock().unwrap_or_else(PoisonError::into_inner);
        catch_unwind(AssertUnwindSafe(|| f(guard.as_mut()))).ok()
    };
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// The exported `org.nfcd.HostService1` object.
struct HostService {
    handler: SharedHandler,
    /// Unique bus name allowed to call; `None` accepts anyone (development only).
    caller: Option<String>,
}

impl HostService {
    /// APDUs carry payment credentials: only the daemon that the service registered with may ask
    /// for them. The bus policy should say the same; this check holds on a session bus too.
    fn check_caller(&self, header: &Header<'_>) -> fdo::Result<()> {
        match (&self.caller, header.sender()) {
            (None, _) => Ok(()),
            (Some(allowed), Some(sender)) if sender.as_str() == allowed => Ok(()),
            (Some(_), sender) => Err(fdo::Error::AccessDenied(format!(
                "{} only answers the nfcd daemon, not {}",
                HOST_SERVICE_INTERFACE,
                sender.map_or("an anonymous peer", |s| s.as_str())
            ))),
        }
    }
}

/// `org.nfcd.HostService1`, implemented by wallets (DESIGN.md "D-Bus API").
///
/// `spawn = false`: calls are handled one after the other in arrival order, because a card
/// application is a sequential machine and `Deactivated` must not overtake an APDU.
#[interface(name = "org.nfcd.HostService1", spawn = false)]
impl HostService {
    /// ProcessApdu(ay command) → ay response: one C-APDU in, one R-APDU out (ISO/IEC 7816-4
    /// §5.1), the routing SELECT included.
    #[zbus(out_args("response"))]
    async fn process_apdu(
        &self,
        #[zbus(header)] header: Header<'_>,
        command: Vec<u8>,
    ) -> fdo::Result<Vec<u8>> {
        self.check_caller(&header)?;
        with_handler(&self.handler, |handler| handler.process_apdu(&command))
            .ok_or_else(|| fdo::Error::Failed("the APDU handler panicked".to_owned()))
    }

    /// Deactivated(s reason): the session with this service ended (no reply expected).
    async fn deactivated(
        &self,
        #[zbus(header)] header: Header<'_>,
        reason: String,
    ) -> fdo::Result<()> {
        self.check_caller(&header)?;
        with_handler(&self.handler, |handler| handler.deactivated(&reason))
            .ok_or_else(|| fdo::Error::Failed("the APDU handler panicked".to_owned()))
    }
}

/// Builder of a service registration: where to connect, where to export, what to register.
///
/// ```no_run
/// # use nfcd_wallets::{ApduHandler, Bus, Registration};
/// struct Card;
/// impl ApduHandler for Card {
///     fn process_apdu(&mut self, _apdu: &[u8]) -> Vec<u8> { vec![0x90, 0x00] }
/// }
/// # async fn run() -> Result<(), nfcd_wallets::Error> {
/// let handle = Registration::new("/com/example/Wallet")
///     .bus(Bus::Session)
///     .id("com.example.wallet")
///     .category("other")
///     .aid(vec![0xF0, 0x01, 0x02, 0x03, 0x04, 0x05])
///     .register(Card)
///     .await?;
/// // ... serve until told to stop; dropping `handle` unregisters.
/// handle.unregister().await
/// # }
/// ```
#[derive(Debug)]
pub struct Registration {
    bus: Bus,
    connection: Option<Connection>,
    path: String,
    options: ServiceOptions,
    channel: bool,
    accept_any_caller: bool,
}

impl Registration {
    /// A registration of a service exported at `path`, on the system bus unless
    /// [`Registration::bus`] or [`Registration::connection`] says otherwise.
    pub fn new(path: impl Into<String>) -> Self {
        Registration {
            bus: Bus::System,
            connection: None,
            path: path.into(),
            options: ServiceOptions::default(),
            channel: false,
            accept_any_caller: false,
        }
    }

    /// Connects to this bus when registering.
    pub fn bus(mut self, bus: Bus) -> Self {
        self.bus = bus;
        self
    }

    /// Uses an existing connection instead of opening one (several services on one
    /// connection, or a connection the application already has).
    pub fn connection(mut self, connection: Connection) -> Self {
        self.connection = Some(connection);
        self
    }

    /// Sets the `Id` option.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.options.id = Some(id.into());
        self
    }

    /// Sets the `Category` option (`payment`, `transit`, `other`).
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.options.category = Some(category.into());
        self
    }

    /// Adds an exact AID to `Aids`.
    pub fn aid(mut self, aid: Vec<u8>) -> Self {
        self.options.aids.push(aid);
        self
    }

    /// Adds a prefix AID to `PrefixAids`.
    pub fn prefix_aid(mut self, aid: Vec<u8>) -> Self {
        self.options.prefix_aids.push(aid);
        self
    }

    /// Adds a subset AID to `SubsetAids`.
    pub fn subset_aid(mut self, aid: Vec<u8>) -> Self {
        self.options.subset_aids.push(aid);
        self
    }

    /// Sets the `Name` option.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = Some(name.into());
        self
    }

    /// Sets the `RequiresUnlock` option.
    pub fn requires_unlock(mut self, requires_unlock: bool) -> Self {
        self.options.requires_unlock = Some(requires_unlock);
        self
    }

    /// Sets the `Express` option (transit services that work while the device is locked).
    pub fn express(mut self, express: bool) -> Self {
        self.options.express = Some(express);
        self
    }

    /// Also serves APDUs from the `OpenApduChannel` fast path (a `SOCK_SEQPACKET` socket, one
    /// C-APDU per message in, one R-APDU per message out). `ProcessApdu` stays served.
    pub fn use_channel(mut self, channel: bool) -> Self {
        self.channel = channel;
        self
    }

    /// Answers `ProcessApdu` from any peer, not only the owner of `org.nfcd`. For poking a
    /// wallet with `busctl` during development; never for a wallet that holds real credentials.
    pub fn accept_any_caller(mut self, accept: bool) -> Self {
        self.accept_any_caller = accept;
        self
    }

    /// The options as they will be sent.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// Exports `org.nfcd.HostService1` for `handler` at the path, calls `RegisterService`, and
    /// opens the APDU channel if asked. On any failure nothing stays exported or registered.
    pub async fn register<H: ApduHandler>(self, handler: H) -> Result<RegistrationHandle, Error> {
        let path = OwnedObjectPath::try_from(self.path.as_str())
            .map_err(|_| Error::InvalidPath(self.path.clone()))?;
        let connection = match self.connection {
            Some(connection) => connection,
            None => self.bus.connect().await?,
        };
        let caller = if self.accept_any_caller {
            None
        } else {
            Some(daemon_owner(&connection).await?)
        };
        let handler: SharedHandler = Arc::new(Mutex::new(Box::new(handler)));
        let service = HostService {
            handler: handler.clone(),
            caller,
        };
        if connection
            .object_server()
            .at(path.as_ref(), service)
            .await?
            .is_some()
        {
            return Err(Error::PathInUse(path.to_string()));
        }
        let mut handle = RegistrationHandle {
            connection,
            path,
            channel_task: None,
            registered: false,
            serving: true,
        };
        let options = self.options.to_dict();
        if let Err(error) = handle
            .call_manager("RegisterService", &(handle.path.as_ref(), options))
            .await
        {
            handle.stop_serving().await;
            return Err(error);
        }
        handle.registered = true;
        if self.channel {
            match handle.open_channel(handler).await {
                Ok(task) => handle.channel_task = Some(task),
                Err(error) => {
                    // Best effort: the caller learns about the channel, not about this.
                    let _ = handle.unregister_now().await;
                    return Err(error);
                }
            }
        }
        tracing::debug!(path = %handle.path, "service registered");
        Ok(handle)
    }
}

/// Unique bus name that owns `org.nfcd` now.
async fn daemon_owner(connection: &Connection) -> Result<String, Error> {
    let reply = connection
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetNameOwner",
            &BUS_NAME,
        )
        .await?;
    Ok(reply.body().deserialize::<String>()?)
}

/// A registered service. Dropping it unregisters (best effort, on the current tokio runtime)
/// and stops serving; [`RegistrationHandle::unregister`] does the same and reports errors.
#[must_use = "dropping the handle unregisters the service at once"]
#[derive(Debug)]
pub struct RegistrationHandle {
    connection: Connection,
    path: OwnedObjectPath,
    channel_task: Option<JoinHandle<()>>,
    /// `RegisterService` succeeded and `UnregisterService` was not called yet.
    registered: bool,
    /// The object is (still) exported.
    serving: bool,
}

impl RegistrationHandle {
    /// The connection the service is exported and registered on.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The service's object path.
    pub fn path(&self) -> &ObjectPath<'static> {
        &self.path
    }

    /// Whether APDUs are also served from an `OpenApduChannel` socket that is still open.
    pub fn has_channel(&self) -> bool {
        self.channel_task
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    /// `SetDefaultService(category, id)`: makes the service with `id` the default of `category`
    /// (DESIGN.md "Card emulation model": only the default payment service receives payment
    /// AIDs).
    pub async fn set_default_service(&self, category: &str, id: &str) -> Result<(), Error> {
        self.call_manager("SetDefaultService", &(category, id))
            .await
            .map(drop)
    }

    /// Calls `UnregisterService` and stops serving. The service is no longer exported even when
    /// the call fails (for instance because the daemon already went away).
    pub async fn unregister(mut self) -> Result<(), Error> {
        self.unregister_now().await
    }

    async fn unregister_now(&mut self) -> Result<(), Error> {
        let result = if self.registered {
            self.registered = false;
            self.call_manager("UnregisterService", &(self.path.as_ref(),))
                .await
                .map(drop)
        } else {
            Ok(())
        };
        self.stop_serving().await;
        result
    }

    async fn stop_serving(&mut self) {
        if let Some(task) = self.channel_task.take() {
            task.abort();
        }
        self.serving = false;
        let _ = self
            .connection
            .object_server()
            .remove::<HostService, _>(self.path.as_ref())
            .await;
    }

    async fn call_manager<B>(&self, method: &str, body: &B) -> Result<zbus::Message, Error>
    where
        B: serde::ser::Serialize + zbus::DynamicType,
    {
        Ok(self
            .connection
            .call_method(
                Some(BUS_NAME),
                MANAGER_PATH,
                Some(MANAGER_INTERFACE),
                method,
                body,
            )
            .await?)
    }

    /// `OpenApduChannel(o service) → h`, then serves the socket on a task.
    async fn open_channel(&self, handler: SharedHandler) -> Result<JoinHandle<()>, Error> {
        let reply = self
            .call_manager("OpenApduChannel", &(self.path.as_ref(),))
            .await?;
        let fd: zbus::OwnedFd = reply.body().deserialize()?;
        let fd = ApduChannel::new(OwnedFd::from(fd)).map_err(Error::Channel)?;
        let path = self.path.clone();
        Ok(tokio::spawn(async move {
            match fd.serve(handler).await {
                Ok(()) => tracing::info!(%path, "APDU channel closed by the daemon"),
                Err(e) => tracing::warn!(%path, "APDU channel failed: {e}"),
            }
        }))
    }
}

impl Drop for RegistrationHandle {
    fn drop(&mut self) {
        if let Some(task) = self.channel_task.take() {
            task.abort();
        }
        if !self.registered && !self.serving {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            // No runtime to talk on; closing the connection ends the registration anyway.
            return;
        };
        let connection = self.connection.clone();
        let path = self.path.clone();
        let registered = std::mem::take(&mut self.registered);
        runtime.spawn(async move {
            if registered {
                let _ = connection
                    .call_method(
                        Some(BUS_NAME),
                        MANAGER_PATH,
                        Some(MANAGER_INTERFACE),
                        "UnregisterService",
                        &(path.as_ref(),),
                    )
                    .await;
            }
            let _ = connection
                .object_server()
                .remove::<HostService, _>(path.as_ref())
                .await;
        });
    }
}

/// Largest C-APDU in bytes: extended case 4, header (4) + `00` and Lc (3) + 65 535 data bytes +
/// Le (2), ISO/IEC 7816-4 §5.1.
const MAX_COMMAND_APDU_LEN: usize = 4 + 3 + EXTENDED_MAX_NC + 2;

/// The wallet end of an `OpenApduChannel` socket.
///
/// One C-APDU per `SOCK_SEQPACKET` message in, one R-APDU per message out. A message longer
/// than the largest C-APDU (ISO/IEC 7816-4 §5.1, 65 544 bytes) is answered `6700`; a handler
/// panic is answered `6F00`. The channel ends when the daemon closes its end, which `recv`
/// reports as a zero-length read (so a zero-length message also ends it: it is not an APDU).
struct ApduChannel {
    fd: AsyncFd<OwnedFd>,
}

impl ApduChannel {
    fn new(fd: OwnedFd) -> io::Result<Self> {
        let kind = getsockopt(&fd, sockopt::SockType).map_err(io::Error::from)?;
        if kind != SockType::SeqPacket {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected a SOCK_SEQPACKET socket, got {kind:?}"),
            ));
        }
        // SAFETY: an `OwnedFd` is an open descriptor that it alone closes, and its `as_raw_fd`
        // returns the same number for as long as the `AsyncFd` owns it.
        let fd = unsafe { AsyncFd::register(fd) }?;
        Ok(ApduChannel { fd })
    }

    async fn serve(&self, handler: SharedHandler) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_COMMAND_APDU_LEN];
        loop {
            let len = self.recv(&mut buf).await?;
            if len == 0 {
                return Ok(());
            }
            // MSG_TRUNC makes recv report the real length of a message longer than the buffer.
            let response = match buf.get(..len) {
                Some(command) => with_handler(&handler, |handler| handler.process_apdu(command))
                    .unwrap_or_else(|| status(StatusWord::NO_PRECISE_DIAGNOSIS)),
                None => status(StatusWord::WRONG_LENGTH),
            };
            self.send(&response).await?;
        }
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
            match ready.try_io(|fd| recv(fd.as_raw_fd(), buf, flags).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    async fn send(&self, message: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            // MSG_NOSIGNAL: a daemon that closed its end must give EPIPE, not kill the wallet.
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match ready.try_io(|fd| send(fd.as_raw_fd(), message, flags).map_err(io::Error::from)) {
                Ok(Ok(sent)) if sent == message.len() => return Ok(()),
                Ok(Ok(sent)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("sent {sent} of {} bytes of an R-APDU", message.len()),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libnci::apdu::CommandApdu;
    use libnci::sim::cards::response;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag};

    /// Answers `data || 9000` and records deactivations.
    struct Echo {
        deactivations: Arc<Mutex<Vec<String>>>,
    }

    impl ApduHandler for Echo {
        fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
            match CommandApdu::parse(command) {
                Ok(apdu) => response(apdu.data, StatusWord::NO_ERROR),
                Err(_) => status(StatusWord::WRONG_LENGTH),
            }
        }

        fn deactivated(&mut self, reason: &str) {
            if let Ok(mut log) = self.deactivations.lock() {
                log.push(reason.to_owned());
            }
        }
    }

    struct Panics;

    impl ApduHandler for Panics {
        fn process_apdu(&mut self, _command: &[u8]) -> Vec<u8> {
            panic!("handler bug");
        }
    }

    fn shared(handler: impl ApduHandler) -> SharedHandler {
        Arc::new(Mutex::new(Box::new(handler)))
    }

    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    /// The daemon's side of the channel, written with blocking calls on a plain thread.
    fn exchange(daemon: &OwnedFd, command: &[u8]) -> Vec<u8> {
        send(daemon.as_raw_fd(), command, MsgFlags::empty()).unwrap();
        let mut buf = vec![0u8; 70_000];
        let len = recv(daemon.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        buf.truncate(len);
        buf
    }

    #[test]
    fn options_dictionary_has_only_the_set_keys() {
        let registration = Registration::new("/com/example/Wallet")
            .id("com.example.wallet")
            .category("transit")
            .aid(vec![0xF0, 0x01, 0x02, 0x03, 0x04])
            .aid(vec![0xF0, 0x01, 0x02, 0x03, 0x05])
            .express(true);
        let dict = registration.options().to_dict();
        let mut keys: Vec<_> = dict.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["Aids", "Category", "Express", "Id"]);
        assert_eq!(dict["Category"], Variant::from("transit"));
        assert_eq!(dict["Express"], Variant::from(true));
        assert_eq!(
            dict["Aids"],
            Variant::from(vec![
                vec![0xF0u8, 0x01, 0x02, 0x03, 0x04],
                vec![0xF0u8, 0x01, 0x02, 0x03, 0x05]
            ])
        );
    }

    #[test]
    fn bus_argument_forms() {
        assert_eq!("system".parse(), Ok(Bus::System));
        assert_eq!("session".parse(), Ok(Bus::Session));
        assert_eq!(
            "unix:path=/tmp/bus".parse(),
            Ok(Bus::Address("unix:path=/tmp/bus".to_owned()))
        );
        assert!("sytem".parse::<Bus>().is_err());
    }

    #[test]
    fn method_errors_keep_their_name() {
        let error = Error::from(zbus::Error::FDO(Box::new(fdo::Error::ServiceUnknown(
            "The name org.nfcd was not provided by any .service files".to_owned(),
        ))));
        assert_eq!(
            error.dbus_name(),
            "org.freedesktop.DBus.Error.ServiceUnknown"
        );
        assert!(error.message().contains("org.nfcd"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_answers_one_message_per_apdu_until_closed() {
        let (wallet, daemon) = seqpacket_pair();
        let channel = ApduChannel::new(wallet).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let task =
            tokio::spawn(async move { channel.serve(shared(Echo { deactivations: log })).await });
        let daemon = tokio::task::spawn_blocking(move || {
            // SELECT F0 01 02 03 04 -> echoed AID + 9000
            let select = [
                0x00, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x00,
            ];
            assert_eq!(
                exchange(&daemon, &select),
                [0xF0, 0x01, 0x02, 0x03, 0x04, 0x90, 0x00]
            );
            // A message longer than any C-APDU -> 6700 (wrong length)
            let oversized = vec![0x00; MAX_COMMAND_APDU_LEN + 1];
            assert_eq!(exchange(&daemon, &oversized), [0x67, 0x00]);
            // Three bytes are no APDU at all; the handler says so.
            assert_eq!(exchange(&daemon, &[0x00, 0xA4, 0x04]), [0x67, 0x00]);
            drop(daemon);
        });
        daemon.await.unwrap();
        assert!(
            task.await.unwrap().is_ok(),
            "a closed channel is a clean end"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_answers_6f00_when_the_handler_panics() {
        let (wallet, daemon) = seqpacket_pair();
        let channel = ApduChannel::new(wallet).unwrap();
        let task = tokio::spawn(async move { channel.serve(shared(Panics)).await });
        let answers = tokio::task::spawn_blocking(move || {
            let first = exchange(&daemon, &[0x00, 0xB2, 0x01, 0x0C, 0x00]);
            let second = exchange(&daemon, &[0x00, 0xB2, 0x01, 0x0C, 0x00]);
            (first, second)
        })
        .await
        .unwrap();
        assert_eq!(answers, (vec![0x6F, 0x00], vec![0x6F, 0x00]));
        assert!(task.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn channel_refuses_a_stream_socket() {
        let (wallet, _daemon) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let error = ApduChannel::new(wallet).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
