//! `org.nfcd.Adapter1` at `/org/nfcd/adapter0`: the NFC controller as D-Bus sees it.
//!
//! The daemon core owns the truth: it changes [`AdapterState`] through [`AdapterHandle::update`],
//! which emits `PropertiesChanged` for exactly the fields that changed, and announces taps with
//! [`AdapterHandle::transaction_started`] / [`AdapterHandle::transaction_ended`]. The only write,
//! `Powered`, becomes an [`AdapterRequest`] on a channel the core serves; the D-Bus caller gets
//! its reply once the core has answered. This module drives no controller and keeps no state
//! of its own besides the copy it serves.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, OwnedVariant, Type};

use super::error::Error;
use super::props::{emit_changed, push_if_changed, to_variant, PropertySet, Shared};

/// Object path of the (only) adapter.
pub const ADAPTER_PATH: &str = "/org/nfcd/adapter0";
/// Interface name.
pub const ADAPTER_INTERFACE: &str = "org.nfcd.Adapter1";

/// One decoded listen-mode routing entry, D-Bus type `(ssyy)`.
///
/// The fields follow the Listen Mode Routing entries of NCI 2.0 §6.3.2 (RF_SET_LISTEN_MODE_ROUTING).
/// Converts to and from a D-Bus structure value, so clients can decode the property with it.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type, zbus::Variant, zbus::OwnedVariant,
)]
pub struct RoutingEntry {
    /// Entry type: `technology`, `protocol`, `aid`, `aid-prefix`, `aid-subset`, `system-code`,
    /// or `unknown-0xNN` for a type this version does not name.
    pub kind: String,
    /// The value, by kind: a technology (`nfc-a`, `nfc-b`, `nfc-f`, `nfc-v`), a protocol
    /// (`iso-dep`, `nfc-dep`, `t1t`, `t2t`, `t3t`, `t5t`), an AID or system code in uppercase
    /// hex, or the raw value in hex for unknown kinds.
    pub value: String,
    /// NFCEE id the entry routes to; `0x00` is the device host (NCI 2.0 §10.1).
    pub route: u8,
    /// Power state bit field of the entry, as sent to the controller (NCI 2.0 §6.3.2).
    pub power_state: u8,
}

/// Everything `org.nfcd.Adapter1` shows, as the core last set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterState {
    /// The controller is initialised and its RF discovery may run (`Powered`).
    pub powered: bool,
    /// A controller answered on the configured transport (`Present`).
    pub present: bool,
    /// Transport kind and address, e.g. `i2c:/dev/i2c-1@0x28`, `uart:/dev/ttyS0`, `sim`
    /// (`Transport`).
    pub transport: String,
    /// Controller model or manufacturer, as reported in CORE_INIT_RSP / CORE_RESET_NTF
    /// (`Controller`).
    pub controller: String,
    /// NCI version spoken, `1.0` or `2.0` (`NciVersion`).
    pub nci_version: String,
    /// Technologies the controller listens on, e.g. `nfc-a`, `nfc-b` (`ListenTechnologies`).
    pub listen_technologies: Vec<String>,
    /// The routing table last accepted by the controller (`RoutingTable`).
    pub routing_table: Vec<RoutingEntry>,
    /// Routing table size the controller reports, in bytes (CORE_INIT_RSP "Max Routing Table
    /// Size", NCI 2.0 §4.2; `RoutingCapacity`).
    pub routing_capacity: u32,
    /// A reader's RF field is present (RF_FIELD_INFO_NTF, NCI 2.0 §5.3; `FieldPresent`).
    pub field_present: bool,
}

impl PropertySet for AdapterState {
    fn changed(&self, old: &Self) -> zbus::Result<Vec<(&'static str, OwnedVariant)>> {
        let mut out = Vec::new();
        push_if_changed(&mut out, "Powered", &self.powered, &old.powered)?;
        push_if_changed(&mut out, "Present", &self.present, &old.present)?;
        push_if_changed(&mut out, "Transport", &self.transport, &old.transport)?;
        push_if_changed(&mut out, "Controller", &self.controller, &old.controller)?;
        push_if_changed(&mut out, "NciVersion", &self.nci_version, &old.nci_version)?;
        push_if_changed(
            &mut out,
            "ListenTechnologies",
            &self.listen_technologies,
            &old.listen_technologies,
        )?;
        push_if_changed(
            &mut out,
            "RoutingTable",
            &self.routing_table,
            &old.routing_table,
        )?;
        push_if_changed(
            &mut out,
            "RoutingCapacity",
            &self.routing_capacity,
            &old.routing_capacity,
        )?;
        push_if_changed(
            &mut out,
            "FieldPresent",
            &self.field_present,
            &old.field_present,
        )?;
        Ok(out)
    }
}

/// A request from a D-Bus client that the core must carry out.
#[derive(Debug)]
pub enum AdapterRequest {
    /// A client wrote `Powered`. The core powers the controller up or down, reflects the result
    /// with [`AdapterHandle::update`], then answers on `reply` (the client's `Set` returns then).
    SetPowered {
        /// Requested value.
        powered: bool,
        /// The outcome for the client: `Ok`, or e.g. [`Error::NotReady`] without a controller.
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// The exported `org.nfcd.Adapter1` object.
pub struct Adapter {
    shared: Arc<Shared<AdapterState>>,
    requests: mpsc::Sender<AdapterRequest>,
}

/// The core's side of the adapter object: change state, emit signals.
#[derive(Clone)]
pub struct AdapterHandle {
    shared: Arc<Shared<AdapterState>>,
    emitter: SignalEmitter<'static>,
}

/// Make the adapter object (to serve at [`ADAPTER_PATH`] on `conn`) and its handle.
pub fn adapter(
    conn: &Connection,
    initial: AdapterState,
    requests: mpsc::Sender<AdapterRequest>,
) -> zbus::Result<(Adapter, AdapterHandle)> {
    let shared = Shared::new(initial);
    let emitter = SignalEmitter::new(conn, ADAPTER_PATH)?.into_owned();
    Ok((
        Adapter {
            shared: Arc::clone(&shared),
            requests,
        },
        AdapterHandle { shared, emitter },
    ))
}

fn interface_name() -> InterfaceName<'static> {
    InterfaceName::from_static_str_unchecked(ADAPTER_INTERFACE)
}

impl AdapterHandle {
    /// Change the state with `f` and emit one `PropertiesChanged` with the fields that changed
    /// (none if nothing did).
    pub async fn update(&self, f: impl FnOnce(&mut AdapterState)) -> zbus::Result<()> {
        self.shared
            .update(&self.emitter, &interface_name(), f)
            .await
    }

    /// A copy of the current state.
    pub fn state(&self) -> AdapterState {
        self.shared.read(Clone::clone)
    }

    /// Emit `TransactionStarted(id, aid)`: the first SELECT of a tap was routed to service `id`.
    pub async fn transaction_started(&self, id: &str, aid: &[u8]) -> zbus::Result<()> {
        Adapter::transaction_started(&self.emitter, id, aid).await
    }

    /// Emit `TransactionEnded(id, reason, apdus, duration_us)` when a service's part of a tap
    /// ends (`deselected`, `link-loss`, `error`, `timeout`).
    pub async fn transaction_ended(
        &self,
        id: &str,
        reason: &str,
        apdus: u32,
        duration: Duration,
    ) -> zbus::Result<()> {
        let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        Adapter::transaction_ended(&self.emitter, id, reason, apdus, us).await
    }
}

#[interface(name = "org.nfcd.Adapter1")]
impl Adapter {
    /// Whether the controller is powered (readwrite).
    #[zbus(property)]
    fn powered(&self) -> bool {
        self.shared.read(|s| s.powered)
    }

    /// Ask the core to power the controller up or down; returns once it has.
    #[zbus(property)]
    async fn set_powered(
        &self,
        powered: bool,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        // The generated setter signals `Powered` once this returns Ok; while the core works on
        // it, its own update of `Powered` leaves the signal to us.
        let hold = self.shared.hold("Powered");
        let (reply, outcome) = oneshot::channel();
        let sent = self
            .requests
            .send(AdapterRequest::SetPowered { powered, reply })
            .await;
        let result = match sent {
            Ok(()) => outcome.await.unwrap_or_else(|_| {
                Err(Error::Failed("the adapter dropped the request".to_owned()))
            }),
            Err(_) => Err(Error::NotReady("the adapter is not running".to_owned())),
        };
        let owed = hold.release();
        if result.is_err() && owed {
            // No generated signal follows an error, yet the value did change.
            let value = self.shared.read(|s| s.powered);
            let changes = to_variant(&value)
                .map(|v| vec![("Powered", v)])
                .map_err(|e| Error::Failed(e.to_string()))?;
            emit_changed(&emitter, &interface_name(), &changes)
                .await
                .map_err(|e| Error::Failed(e.to_string()))?;
        }
        result
    }

    /// Whether a controller is present.
    #[zbus(property)]
    fn present(&self) -> bool {
        self.shared.read(|s| s.present)
    }

    /// Transport kind and address.
    #[zbus(property)]
    fn transport(&self) -> String {
        self.shared.read(|s| s.transport.clone())
    }

    /// Controller model.
    #[zbus(property)]
    fn controller(&self) -> String {
        self.shared.read(|s| s.controller.clone())
    }

    /// NCI version, `1.0` or `2.0`.
    #[zbus(property)]
    fn nci_version(&self) -> String {
        self.shared.read(|s| s.nci_version.clone())
    }

    /// Technologies listened on.
    #[zbus(property)]
    fn listen_technologies(&self) -> Vec<String> {
        self.shared.read(|s| s.listen_technologies.clone())
    }

    /// Decoded listen-mode routing table, `a(ssyy)`.
    #[zbus(property)]
    fn routing_table(&self) -> Vec<RoutingEntry> {
        self.shared.read(|s| s.routing_table.clone())
    }

    /// Routing table capacity in bytes.
    #[zbus(property)]
    fn routing_capacity(&self) -> u32 {
        self.shared.read(|s| s.routing_capacity)
    }

    /// Whether a reader field is present.
    #[zbus(property)]
    fn field_present(&self) -> bool {
        self.shared.read(|s| s.field_present)
    }

    /// A tap's first SELECT went to service `id` for `aid`.
    #[zbus(signal)]
    async fn transaction_started(
        emitter: &SignalEmitter<'_>,
        id: &str,
        aid: &[u8],
    ) -> zbus::Result<()>;

    /// A service's part of a tap ended.
    #[zbus(signal)]
    async fn transaction_ended(
        emitter: &SignalEmitter<'_>,
        id: &str,
        reason: &str,
        apdus: u32,
        duration_us: u64,
    ) -> zbus::Result<()>;
}
