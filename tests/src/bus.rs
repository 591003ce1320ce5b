//! D-Bus clients of the tests: `org.nfcd.Manager1` and `org.nfcd.Adapter1` proxies written from
//! doc/manager-api.md and doc/adapter-api.md, waiting on properties, and a bus monitor that
//! sees the calls nfcd makes to wallets.
//!
//! Contract: clients only, as any wallet or tool would be; nothing here is served. Property
//! waits use the proxies' `PropertiesChanged` streams (current value first, then each change),
//! never polling.

use std::collections::HashMap;

use futures_util::StreamExt;
use zbus::fdo::DBusProxy;
use zbus::message::Type as MessageType;
use zbus::names::BusName;
use zbus::{Connection, Message, MessageStream, ObjectPath, OwnedFd, OwnedVariant, Variant};

pub use nfcd::dbus::ServiceInfo;

use crate::{within, WAIT};

/// `org.nfcd.Manager1` at `/org/nfcd` (doc/manager-api.md).
#[zbus::proxy(
    interface = "org.nfcd.Manager1",
    default_service = "org.nfcd",
    default_path = "/org/nfcd"
)]
pub trait Manager1 {
    /// `RegisterService(o service, a{sv} options)`.
    fn register_service(
        &self,
        service: &ObjectPath<'_>,
        options: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<()>;

    /// `UnregisterService(o service)`.
    fn unregister_service(&self, service: &ObjectPath<'_>) -> zbus::Result<()>;

    /// `SetDefaultService(s category, s id)`.
    fn set_default_service(&self, category: &str, id: &str) -> zbus::Result<()>;

    /// `SetPreferredService(o service)`.
    fn set_preferred_service(&self, service: &ObjectPath<'_>) -> zbus::Result<()>;

    /// `ClearPreferredService()`.
    fn clear_preferred_service(&self) -> zbus::Result<()>;

    /// `OpenApduChannel(o service) → h`.
    fn open_apdu_channel(&self, service: &ObjectPath<'_>) -> zbus::Result<OwnedFd>;

    /// `AidConflict(ay aid, as ids)`.
    #[zbus(signal)]
    fn aid_conflict(&self, aid: Vec<u8>, ids: Vec<String>) -> zbus::Result<()>;

    /// `Version`.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// `Services`.
    #[zbus(property)]
    fn services(&self) -> zbus::Result<Vec<ServiceInfo>>;

    /// `DefaultServices`.
    #[zbus(property)]
    fn default_services(&self) -> zbus::Result<HashMap<String, String>>;
}

/// `org.nfcd.Adapter1` at `/org/nfcd/adapter0` (doc/adapter-api.md).
#[zbus::proxy(
    interface = "org.nfcd.Adapter1",
    default_service = "org.nfcd",
    default_path = "/org/nfcd/adapter0"
)]
pub trait Adapter1 {
    /// `TransactionStarted(s id, ay aid)`.
    #[zbus(signal)]
    fn transaction_started(&self, id: String, aid: Vec<u8>) -> zbus::Result<()>;

    /// `TransactionEnded(s id, s reason, u apdus, t duration_us)`.
    #[zbus(signal)]
    fn transaction_ended(
        &self,
        id: String,
        reason: String,
        apdus: u32,
        duration_us: u64,
    ) -> zbus::Result<()>;

    /// `Powered` (read-write).
    #[zbus(property)]
    fn powered(&self) -> zbus::Result<bool>;

    /// Set `Powered`.
    #[zbus(property)]
    fn set_powered(&self, value: bool) -> zbus::Result<()>;

    /// `Present`.
    #[zbus(property)]
    fn present(&self) -> zbus::Result<bool>;

    /// `Transport`.
    #[zbus(property)]
    fn transport(&self) -> zbus::Result<String>;

    /// `Controller`.
    #[zbus(property)]
    fn controller(&self) -> zbus::Result<String>;

    /// `NciVersion`.
    #[zbus(property)]
    fn nci_version(&self) -> zbus::Result<String>;
}

/// The `org.nfcd.Error.*` (or other) D-Bus error name of a failed call, or a description of
/// what else went wrong.
pub fn error_name<T: std::fmt::Debug>(result: &zbus::Result<T>) -> String {
    match result {
        Ok(value) => format!("no error (got {value:?})"),
        Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
        Err(zbus::Error::FDO(e)) => format!("org.freedesktop.DBus.Error.{e:?}"),
        Err(other) => format!("not a D-Bus error reply: {other}"),
    }
}

/// The unique name owning `name` now, if any.
pub async fn name_owner(conn: &Connection, name: &'static str) -> Option<String> {
    let dbus = DBusProxy::new(conn)
        .await
        .unwrap_or_else(|e| panic!("org.freedesktop.DBus proxy: {e}"));
    let bus_name = BusName::try_from(name).unwrap_or_else(|e| panic!("bus name {name}: {e}"));
    dbus.get_name_owner(bus_name)
        .await
        .ok()
        .map(|o| o.to_string())
}

/// Wait (at most [`WAIT`]) until `name` has an owner on the bus other than `not` (the owner
/// before a restart, whose release the bus may not have processed yet); returns it.
pub async fn wait_for_new_owner(
    conn: &Connection,
    name: &'static str,
    not: Option<&str>,
) -> String {
    let dbus = DBusProxy::new(conn)
        .await
        .unwrap_or_else(|e| panic!("org.freedesktop.DBus proxy: {e}"));
    // Subscribe before asking, so an owner that arrives in between is not missed.
    let mut changes = dbus
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .unwrap_or_else(|e| panic!("NameOwnerChanged subscription: {e}"));
    if let Some(owner) = name_owner(conn, name).await {
        if Some(owner.as_str()) != not {
            return owner;
        }
    }
    within(&format!("{name} on the bus"), WAIT, async {
        while let Some(signal) = changes.next().await {
            let Ok(args) = signal.args() else { continue };
            if let Some(owner) = args.new_owner.as_ref().map(|o| o.to_string()) {
                if Some(owner.as_str()) != not {
                    return owner;
                }
            }
        }
        panic!("the bus connection closed");
    })
    .await
}

/// Wait (at most [`WAIT`]) until `Services` satisfies `want`; returns that value.
pub async fn wait_services(
    manager: &Manager1Proxy<'_>,
    what: &str,
    want: impl Fn(&[ServiceInfo]) -> bool,
) -> Vec<ServiceInfo> {
    let mut changes = manager.receive_services_changed().await;
    let mut last = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(change) = changes.next().await {
            if let Ok(services) = change.get().await {
                if want(&services) {
                    return Some(services);
                }
                last = services;
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(services)) => services,
        _ => panic!(
            "Services: waiting for {what}: not within {} ms; last value: {last:#?}",
            WAIT.as_millis()
        ),
    }
}

/// Wait until the service Id `id` is registered; returns its entry.
pub async fn wait_registered(manager: &Manager1Proxy<'_>, id: &str) -> ServiceInfo {
    let services = wait_services(manager, &format!("{id} registered"), |s| {
        s.iter().any(|i| i.id == id)
    })
    .await;
    match services.into_iter().find(|i| i.id == id) {
        Some(info) => info,
        None => unreachable!("the wait returned a list holding {id}"),
    }
}

/// Wait until no service with Id `id` is registered.
pub async fn wait_unregistered(manager: &Manager1Proxy<'_>, id: &str) {
    wait_services(manager, &format!("{id} gone"), |s| {
        s.iter().all(|i| i.id != id)
    })
    .await;
}

/// Wait (at most [`WAIT`]) until `DefaultServices` names `id` for `category`.
pub async fn wait_default(manager: &Manager1Proxy<'_>, category: &str, id: &str) {
    let mut changes = manager.receive_default_services_changed().await;
    within(
        &format!("DefaultServices[{category}] = {id}"),
        WAIT,
        async {
            while let Some(change) = changes.next().await {
                if let Ok(defaults) = change.get().await {
                    if defaults.get(category).map(String::as_str) == Some(id) {
                        return;
                    }
                }
            }
        },
    )
    .await;
}

/// Wait (at most [`WAIT`]) until `Present` is `present`.
pub async fn wait_present(adapter: &Adapter1Proxy<'_>, present: bool) {
    let mut changes = adapter.receive_present_changed().await;
    within(&format!("Adapter1.Present = {present}"), WAIT, async {
        while let Some(change) = changes.next().await {
            if change.get().await.ok() == Some(present) {
                return;
            }
        }
    })
    .await;
}

/// One record of a `Simulator1.Tap` reply (doc/simulator-api.md).
pub type TapRecord = HashMap<String, OwnedVariant>;

/// `org.nfcd.Simulator1.Tap(script, options)` on nfcd's built-in virtual controller.
pub async fn simulator_tap(
    conn: &Connection,
    script: &str,
    options: HashMap<&str, Variant<'_>>,
) -> zbus::Result<Vec<TapRecord>> {
    let reply = conn
        .call_method(
            Some("org.nfcd"),
            "/org/nfcd/adapter0",
            Some("org.nfcd.Simulator1"),
            "Tap",
            &(script, options),
        )
        .await?;
    reply.body().deserialize::<Vec<TapRecord>>()
}

/// `org.nfcd.Simulator1.InjectFault(fault)` on nfcd's built-in virtual controller.
pub async fn simulator_inject_fault(conn: &Connection, fault: &str) -> zbus::Result<()> {
    conn.call_method(
        Some("org.nfcd"),
        "/org/nfcd/adapter0",
        Some("org.nfcd.Simulator1"),
        "InjectFault",
        &(fault,),
    )
    .await
    .map(drop)
}

/// The string under `key` of a record, if it is one.
pub fn record_str<'r>(record: &'r TapRecord, key: &str) -> Option<&'r str> {
    match record.get(key).map(|v| &**v) {
        Some(Variant::Str(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// The number under `key` of a record (`q`, `u` or `t`), if it is one.
pub fn record_number(record: &TapRecord, key: &str) -> Option<u64> {
    match record.get(key).map(|v| &**v) {
        Some(Variant::U16(n)) => Some(u64::from(*n)),
        Some(Variant::U32(n)) => Some(u64::from(*n)),
        Some(Variant::U64(n)) => Some(*n),
        _ => None,
    }
}

/// The bytes under `key` of a record (`ay`), if they are.
pub fn record_bytes(record: &TapRecord, key: &str) -> Option<Vec<u8>> {
    match record.get(key).map(|v| &**v) {
        Some(Variant::Array(array)) => array
            .inner()
            .iter()
            .map(|b| match b {
                Variant::U8(b) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `org.freedesktop.DBus.Introspectable.Introspect` of `path` at `destination`.
pub async fn introspect(conn: &Connection, destination: &str, path: &str) -> String {
    let reply = conn
        .call_method(
            Some(destination),
            path,
            Some("org.freedesktop.DBus.Introspectable"),
            "Introspect",
            &(),
        )
        .await
        .unwrap_or_else(|e| panic!("Introspect {destination} {path}: {e}"));
    reply
        .body()
        .deserialize::<String>()
        .unwrap_or_else(|e| panic!("Introspect {destination} {path}: reply: {e}"))
}

/// A bus monitor (D-Bus specification, `org.freedesktop.DBus.Monitoring.BecomeMonitor`): a
/// connection that receives a copy of every message matching its rules, whoever sends it.
pub struct Monitor {
    stream: MessageStream,
    seen: Vec<Message>,
}

/// Interface of the `Ping` used as a marker by [`Monitor::collect_until_marker`].
const PEER: &str = "org.freedesktop.DBus.Peer";

impl Monitor {
    /// Start monitoring method calls to interface `interface` on the bus at `address`.
    pub async fn method_calls(address: &str, interface: &str) -> Monitor {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .unwrap_or_else(|e| panic!("monitor: connecting: {e}"));
        let rules = [
            format!("type='method_call',interface='{interface}'"),
            format!("type='method_call',interface='{PEER}',member='Ping'"),
        ];
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        // The stream must exist before the bus starts sending copies.
        let stream = MessageStream::from(&conn);
        conn.call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus.Monitoring"),
            "BecomeMonitor",
            &(rules, 0u32),
        )
        .await
        .unwrap_or_else(|e| panic!("BecomeMonitor: {e}"));
        Monitor {
            stream,
            seen: Vec::new(),
        }
    }

    /// Ping `destination` from `conn` and collect what the monitor received up to that Ping.
    /// The bus forwards messages to a monitor in the order it routes them, so everything routed
    /// before the Ping was sent is in by then.
    pub async fn collect_until_marker(&mut self, conn: &Connection, destination: &str) {
        // Routed (and copied to the monitor) whatever the answer is.
        let _ = conn
            .call_method(Some(destination), "/", Some(PEER), "Ping", &())
            .await;
        let seen = &mut self.seen;
        let stream = &mut self.stream;
        within("the monitor's copy of the marker Ping", WAIT, async {
            while let Some(Ok(message)) = stream.next().await {
                let header = message.header();
                let is_marker = message.message_type() == MessageType::MethodCall
                    && header.interface().map(|i| i.as_str()) == Some(PEER)
                    && header.member().map(|m| m.as_str()) == Some("Ping");
                if is_marker {
                    return;
                }
                seen.push(message);
            }
            panic!("the monitor connection closed");
        })
        .await;
    }

    /// Method calls seen so far with this member name, as (destination, path) pairs.
    pub fn calls(&self, member: &str) -> Vec<(String, String)> {
        self.seen
            .iter()
            .filter(|m| m.message_type() == MessageType::MethodCall)
            .filter_map(|m| {
                let header = m.header();
                if header.member().map(|n| n.as_str()) != Some(member) {
                    return None;
                }
                Some((
                    header
                        .destination()
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    header.path().map(|p| p.to_string()).unwrap_or_default(),
                ))
            })
            .collect()
    }
}
