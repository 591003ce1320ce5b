//! `org.nfcd.Monitor1` at `/org/nfcd/adapter0`: a live trace of NCI packets and APDUs, sent
//! to subscribers alone (doc/monitor-api.md).
//!
//! The daemon core reports what crosses the transport and what a tap exchanges through a
//! [`MonitorHandle`] ([`MonitorHandle::nci`], [`MonitorHandle::apdu`]). Those calls never wait
//! and never fail: with no subscriber they return after one atomic load; otherwise they stamp
//! the event with `CLOCK_MONOTONIC` and offer it to each subscriber's bounded queue, dropping it
//! (and counting the drop) for a subscriber whose queue is full. One task per subscriber empties
//! its queue into unicast signals, in queue order, preceded by a `Lost` after drops.
//!
//! Those tasks share the daemon's thread and its bus connection with the tap path, and the
//! subscriber and the bus share the device's CPUs with the service answering the tap. So they
//! hold back for as long as a card session lasts (from RF activation to deactivation, at most
//! [`MAX_SESSION_HOLD`], or until a subscriber's queue is three quarters full) and, past that,
//! while an APDU is with a service (from the `command` report to the `response` report, at most
//! [`MAX_HOLD`]); and they yield after each signal. Serialising, routing and decoding the trace
//! of a tap while the tap runs would compete with it: with `ProcessApdu` calls on the bus, with
//! the wallet for a CPU, with the next packet on nfcd's thread. The trace still arrives whole and
//! in order, just after the tap.
//!
//! A subscription ends with `Unsubscribe`, with [`MonitorHandle::owner_gone`], or when the
//! subscriber's task sees the bus announce that its unique name has no owner any more
//! (`NameOwnerChanged`, D-Bus specification "org.freedesktop.DBus.NameOwnerChanged"), so a
//! crashed client is dropped even if the core never forwards the loss.
//!
//! This module decodes nothing and keeps no history: what a packet means is the subscriber's
//! business (`nfcctl monitor`, [`crate::ctl::monitor`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use futures_util::StreamExt;
use nix::time::{clock_gettime, ClockId};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;
use tracing::{debug, info};
use zbus::message::{Header, Type as MessageType};
use zbus::names::{BusName, UniqueName};
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection, MatchRule, MessageStream};

use super::adapter::ADAPTER_PATH;
use super::caller::{Caller, ExeDigest};
use super::error::Error;
use super::names::name_has_owner;

pub use crate::ctl::monitor::{ApduDirection, NciDirection};

/// Interface name.
pub const MONITOR_INTERFACE: &str = "org.nfcd.Monitor1";

/// Shipped introspection data of `org.nfcd.Monitor1` (`dbus/org.nfcd.Monitor1.xml`).
pub const MONITOR1_XML: &str = include_str!("../../../dbus/org.nfcd.Monitor1.xml");

/// How many subscriptions may be alive at once (doc/monitor-api.md, `Subscribe`).
pub const MAX_SUBSCRIBERS: usize = 8;

/// How many events may wait for one subscriber before further ones are dropped and counted.
/// With NCI packets of at most 258 bytes (NCI 1.0 §3.4) and short APDUs of at most 261
/// (ISO/IEC 7816-4 §5.1), a full queue holds a few hundred KiB.
pub const QUEUE_CAPACITY: usize = 1024;

/// Longest time signals are held back for one APDU that is with a service: past it (a slow
/// service, or an exchange that ended without a response, such as a link loss) they flow again.
pub const MAX_HOLD: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest time signals are held back for one card session: a contactless transaction is over
/// well within it (EMV ≈ 500 ms, transit gates 200–300 ms); a card left in a reader's field
/// longer gets its trace live, held back only for each APDU's hop.
pub const MAX_SESSION_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// The uid allowed to subscribe: a trace shows every service's APDUs.
const ROOT_UID: u32 = 0;

const DBUS_NAME: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";

/// One traced event, shared by every subscriber it is queued for.
#[derive(Debug)]
enum Trace {
    Nci {
        timestamp_us: u64,
        direction: NciDirection,
        packet: Box<[u8]>,
    },
    Apdu {
        timestamp_us: u64,
        direction: ApduDirection,
        service_id: Box<str>,
        apdu: Box<[u8]>,
    },
}

impl Trace {
    fn timestamp_us(&self) -> u64 {
        match self {
            Trace::Nci { timestamp_us, .. } | Trace::Apdu { timestamp_us, .. } => *timestamp_us,
        }
    }
}

/// One entry of a subscriber's queue: the event, and how many events were dropped for this
/// subscriber just before it (sent first, as `Lost`).
#[derive(Debug)]
struct Queued {
    lost: u32,
    trace: Arc<Trace>,
}

/// One alive subscription.
struct Subscription {
    /// Distinguishes this subscription from an earlier one of the same name.
    id: u64,
    /// The subscriber's unique bus name, the destination of its signals.
    name: String,
    /// Feeds its emitting task; dropping it tells the task to stop.
    queue: mpsc::Sender<Queued>,
    /// Events dropped since the last one queued.
    lost: u32,
}

#[derive(Default)]
struct Subscriptions {
    alive: Vec<Subscription>,
    next_id: u64,
}

/// State shared by the exported object, the handles and the emitting tasks.
struct Shared {
    /// Mirrors `!subscriptions.alive.is_empty()`, so the tap path can skip everything without
    /// taking the lock.
    active: AtomicBool,
    /// `CLOCK_MONOTONIC` µs of the `command` report of the APDU now with a service; 0 when none
    /// is. While set, signals are held back (see the module documentation).
    held_since: AtomicU64,
    /// `CLOCK_MONOTONIC` µs of the start of the card session now open; 0 when none is or its
    /// hold ended early. While set, signals are held back too.
    session_since: AtomicU64,
    /// Signalled when `held_since` or `session_since` goes back to 0.
    released: Notify,
    subscriptions: Mutex<Subscriptions>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            active: AtomicBool::new(false),
            held_since: AtomicU64::new(0),
            session_since: AtomicU64::new(0),
            released: Notify::new(),
            subscriptions: Mutex::new(Subscriptions::default()),
        }
    }

    /// An APDU went to a service at `timestamp_us`: hold signals back.
    fn hold(&self, timestamp_us: u64) {
        self.held_since
            .store(timestamp_us.max(1), Ordering::Relaxed);
    }

    /// The APDU's answer is back: let signals go.
    fn release(&self) {
        if self.held_since.swap(0, Ordering::Relaxed) != 0 {
            self.released.notify_waiters();
        }
    }

    /// A card session opened at `timestamp_us`: hold signals back until it ends.
    fn hold_session(&self, timestamp_us: u64) {
        self.session_since
            .store(timestamp_us.max(1), Ordering::Relaxed);
    }

    /// The card session ended, or its trace must flow before it does.
    fn release_session(&self) {
        if self.session_since.swap(0, Ordering::Relaxed) != 0 {
            self.released.notify_waiters();
        }
    }

    /// Wait while a card session is open, at most until [`MAX_SESSION_HOLD`] after it opened,
    /// and while an APDU is with a service, at most until [`MAX_HOLD`] after it went there.
    async fn wait_released(&self) {
        let holds = [
            (&self.held_since, MAX_HOLD),
            (&self.session_since, MAX_SESSION_HOLD),
        ];
        loop {
            // Registered before the check, so a release in between is not missed.
            let released = self.released.notified();
            let now = monotonic_us();
            // The latest end of a hold still in force.
            let until = holds
                .iter()
                .filter_map(|(since, max)| {
                    let since = since.load(Ordering::Relaxed);
                    let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
                    (since != 0).then(|| since.saturating_add(max))
                })
                .filter(|&until| until > now)
                .max();
            let Some(until) = until else {
                return;
            };
            let left = std::time::Duration::from_micros(until - now);
            if tokio::time::timeout(left, released).await.is_err() {
                return;
            }
        }
    }

    /// The subscriptions. Nothing panics while holding the lock, so a poisoned lock still holds
    /// consistent data.
    fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Set [`Shared::active`] from the list, under its lock.
    fn refresh(&self, subs: &Subscriptions) {
        self.active.store(!subs.alive.is_empty(), Ordering::Relaxed);
    }

    /// Offer `trace` to every subscriber: queued, or dropped and counted when its queue is full.
    fn publish(&self, trace: Trace) {
        let trace = Arc::new(trace);
        let mut subs = self.lock();
        let mut closed = false;
        let mut crowded = false;
        for sub in &mut subs.alive {
            let queued = Queued {
                lost: sub.lost,
                trace: Arc::clone(&trace),
            };
            match sub.queue.try_send(queued) {
                Ok(()) => sub.lost = 0,
                Err(TrySendError::Full(_)) => sub.lost = sub.lost.saturating_add(1),
                // Its task ended (name gone, connection closed) before it could remove itself.
                Err(TrySendError::Closed(_)) => closed = true,
            }
            // A card session's hold ends once a queue is three quarters full, so that a long
            // session's trace is sent rather than dropped.
            crowded |= sub.queue.capacity() < sub.queue.max_capacity() / 4;
        }
        if crowded {
            self.release_session();
        }
        if closed {
            subs.alive.retain(|s| !s.queue.is_closed());
            self.refresh(&subs);
        }
    }

    /// Remove the subscription of `name`; whether there was one.
    fn remove_name(&self, name: &str) -> bool {
        let mut subs = self.lock();
        let before = subs.alive.len();
        subs.alive.retain(|s| s.name != name);
        let removed = subs.alive.len() != before;
        self.refresh(&subs);
        removed
    }

    /// Remove subscription `id`, if it is still alive.
    fn remove_id(&self, id: u64) {
        let mut subs = self.lock();
        subs.alive.retain(|s| s.id != id);
        self.refresh(&subs);
    }
}

/// `CLOCK_MONOTONIC` in microseconds: the clock of the journal's
/// `_SOURCE_MONOTONIC_TIMESTAMP` (doc/monitor-api.md, "Signals").
fn monotonic_us() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux (clock_gettime(2)); 0 keeps the event if it did.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let micros = u64::try_from(t.tv_nsec() / 1_000).unwrap_or(0);
        secs.saturating_mul(1_000_000).saturating_add(micros)
    })
}

/// The `direction` argument of `Nci`.
fn nci_direction_name(direction: NciDirection) -> &'static str {
    match direction {
        NciDirection::Tx => "tx",
        NciDirection::Rx => "rx",
    }
}

/// The `direction` argument of `Apdu`.
fn apdu_direction_name(direction: ApduDirection) -> &'static str {
    match direction {
        ApduDirection::Command => "command",
        ApduDirection::Response => "response",
    }
}

/// The core's side of the monitor: report events, forward departed clients.
///
/// Every method is synchronous and cheap; none waits for a subscriber.
#[derive(Clone)]
pub struct MonitorHandle {
    shared: Arc<Shared>,
}

impl MonitorHandle {
    /// Whether anyone is subscribed: one atomic load. A caller may skip preparing an event
    /// when this is false.
    pub fn active(&self) -> bool {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Report one NCI packet (3-byte header and payload, NCI 1.0 §3.4 / NCI 2.0 §3.4; one call
    /// per segment, NCI 1.0 §3.5) that crossed the transport just now: `Rx` when a read
    /// returned. A packet written is reported with [`MonitorHandle::nci_sent`]. Emitted as
    /// `Nci`.
    pub fn nci(&self, direction: NciDirection, packet: &[u8]) {
        self.publish_nci(direction, packet, self.stamp());
    }

    /// The time at which a packet is handed to the transport, for
    /// [`MonitorHandle::nci_sent`]; `None` (and no clock read) without subscribers.
    pub fn stamp(&self) -> Option<u64> {
        self.active().then(monotonic_us)
    }

    /// Report one NCI packet whose write to the transport, started at `handed_at` (from
    /// [`MonitorHandle::stamp`] just before the write), succeeded: emitted as `Nci` `tx` with
    /// that time. A packet leaves nfcd when it is handed to the kernel, as a read's packet
    /// arrives when the read returns; the write's own duration (a pty's flip-buffer work, an
    /// I²C transfer) is the transport's, like the read's.
    pub fn nci_sent(&self, packet: &[u8], handed_at: Option<u64>) {
        self.publish_nci(NciDirection::Tx, packet, handed_at);
    }

    fn publish_nci(&self, direction: NciDirection, packet: &[u8], at: Option<u64>) {
        let Some(timestamp_us) = at else {
            return;
        };
        if !self.active() {
            return;
        }
        self.shared.publish(Trace::Nci {
            timestamp_us,
            direction,
            packet: packet.into(),
        });
    }

    /// Report one APDU of a card emulation session (ISO/IEC 7816-4 §5.1): a C-APDU from the
    /// reader (`Command`) or the R-APDU sent back (`Response`), with the `Id` of the service
    /// concerned, empty when nfcd answered itself. Emitted as `Apdu`.
    ///
    /// A `Command` holds the subscribers' signals back until the next `Response` (at most
    /// [`MAX_HOLD`]); see the module documentation.
    pub fn apdu(&self, direction: ApduDirection, service_id: &str, apdu: &[u8]) {
        if direction == ApduDirection::Response {
            // Also without subscribers: one may have left while the APDU was out.
            self.shared.release();
        }
        if !self.active() {
            return;
        }
        let timestamp_us = monotonic_us();
        if direction == ApduDirection::Command {
            self.shared.hold(timestamp_us);
        }
        self.shared.publish(Trace::Apdu {
            timestamp_us,
            direction,
            service_id: service_id.into(),
            apdu: apdu.into(),
        });
    }

    /// A card session opened (RF_INTF_ACTIVATED_NTF in listen mode): hold the subscribers'
    /// signals back until [`MonitorHandle::session_ended`] (at most [`MAX_SESSION_HOLD`]; see
    /// the module documentation). Recorded also without subscribers, for one who subscribes
    /// during the session.
    pub fn session_started(&self) {
        self.shared.hold_session(monotonic_us());
    }

    /// The card session ended: send its trace.
    pub fn session_ended(&self) {
        self.shared.release_session();
    }

    /// The connection `unique_name` left the bus: end its subscription, if it had one. Events
    /// still queued for it are not sent.
    pub fn owner_gone(&self, unique_name: &str) {
        if self.shared.remove_name(unique_name) {
            info!("monitor: {unique_name} left the bus; its subscription ended");
        }
    }
}

/// The exported `org.nfcd.Monitor1` object.
pub struct Monitor {
    shared: Arc<Shared>,
}

/// Export `org.nfcd.Monitor1` at [`ADAPTER_PATH`] on `conn`, next to `org.nfcd.Adapter1`, and
/// return the handle that feeds it. Fails if it is exported there already.
pub async fn export(conn: &Connection) -> zbus::Result<MonitorHandle> {
    let shared = Arc::new(Shared::new());
    let refused = conn
        .object_server()
        .at(
            ADAPTER_PATH,
            Monitor {
                shared: Arc::clone(&shared),
            },
        )
        .await?;
    // An interface already there is kept, and ours handed back.
    if refused.is_some() {
        return Err(zbus::Error::Failure(format!(
            "{MONITOR_INTERFACE} is already served at {ADAPTER_PATH}"
        )));
    }
    Ok(MonitorHandle { shared })
}

/// Match rule for `NameOwnerChanged` of `name` alone (arg0).
fn owner_changes(name: &str) -> zbus::Result<MatchRule<'static>> {
    MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(DBUS_NAME)
        .path(DBUS_PATH)
        .interface(DBUS_NAME)
        .member("NameOwnerChanged")
        .arg(0, name.to_owned())
        .build()
}

/// Why an emitting task ended on its own.
enum TaskEnd {
    /// The subscriber's name has no owner any more.
    Gone,
    /// Sending failed (the daemon's bus connection closed).
    SendFailed(zbus::Error),
    /// The bus connection closed while waiting.
    BusClosed,
}

/// Empty one subscriber's queue into signals until the subscription ends.
///
/// Ends without sending more when the subscription is removed (the queue's sender dropped),
/// and removes the subscription itself when the subscriber leaves the bus or a send fails.
async fn deliver(
    shared: Weak<Shared>,
    id: u64,
    emitter: SignalEmitter<'static>,
    mut queue: mpsc::Receiver<Queued>,
    mut owner: MessageStream,
) {
    let end = loop {
        tokio::select! {
            // A departure outranks queued events: they would go nowhere.
            biased;
            change = owner.next() => match change {
                Some(Ok(msg)) => {
                    // arg0 is the subscriber's name; an empty new owner means it left.
                    let left = msg
                        .body()
                        .deserialize::<(String, String, String)>()
                        .is_ok_and(|(_, _, new_owner)| new_owner.is_empty());
                    if left {
                        break TaskEnd::Gone;
                    }
                }
                Some(Err(e)) => debug!("monitor: unreadable NameOwnerChanged: {e}"),
                None => break TaskEnd::BusClosed,
            },
            item = queue.recv() => {
                // Removed (Unsubscribe, owner_gone): what is still queued is not sent.
                let Some(item) = item else { return };
                if queue.is_closed() {
                    return;
                }
                if let Some(shared) = shared.upgrade() {
                    shared.wait_released().await;
                }
                if let Err(e) = emit(&emitter, &item).await {
                    break TaskEnd::SendFailed(e);
                }
                // A packet that arrived meanwhile is handled before the next signal.
                tokio::task::yield_now().await;
            }
        }
    };
    let who = emitter
        .destination()
        .map(|d| d.to_string())
        .unwrap_or_default();
    match end {
        TaskEnd::Gone => info!("monitor: {who} left the bus; its subscription ended"),
        TaskEnd::SendFailed(e) => info!("monitor: cannot send to {who} ({e}); subscription ended"),
        TaskEnd::BusClosed => debug!("monitor: bus connection closed; subscription of {who} ended"),
    }
    if let Some(shared) = shared.upgrade() {
        shared.remove_id(id);
    }
}

/// Send one queued event, after a `Lost` if events were dropped before it.
async fn emit(emitter: &SignalEmitter<'_>, item: &Queued) -> zbus::Result<()> {
    let timestamp_us = item.trace.timestamp_us();
    if item.lost > 0 {
        Monitor::lost(emitter, timestamp_us, item.lost).await?;
    }
    match &*item.trace {
        Trace::Nci {
            direction, packet, ..
        } => {
            Monitor::nci(
                emitter,
                timestamp_us,
                nci_direction_name(*direction),
                packet,
            )
            .await
        }
        Trace::Apdu {
            direction,
            service_id,
            apdu,
            ..
        } => {
            Monitor::apdu(
                emitter,
                timestamp_us,
                apdu_direction_name(*direction),
                service_id,
                apdu,
            )
            .await
        }
    }
}

impl Monitor {
    /// Add `name` as a subscriber unless it is one already or the limit is reached. `owner` is
    /// its `NameOwnerChanged` stream, set up before so that no departure is missed.
    fn add(
        &self,
        conn: &Connection,
        name: &UniqueName<'_>,
        owner: MessageStream,
    ) -> Result<Option<u64>, Error> {
        let emitter = SignalEmitter::new(conn, ADAPTER_PATH)
            .map_err(|e| Error::Failed(e.to_string()))?
            .set_destination(BusName::Unique(name.to_owned()))
            .into_owned();
        let mut subs = self.shared.lock();
        if subs.alive.iter().any(|s| s.name == name.as_str()) {
            return Ok(None);
        }
        if subs.alive.len() >= MAX_SUBSCRIBERS {
            return Err(limit_exceeded());
        }
        let id = subs.next_id;
        subs.next_id = subs.next_id.wrapping_add(1);
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        subs.alive.push(Subscription {
            id,
            name: name.as_str().to_owned(),
            queue: tx,
            lost: 0,
        });
        self.shared.refresh(&subs);
        tokio::spawn(deliver(
            Arc::downgrade(&self.shared),
            id,
            emitter,
            rx,
            owner,
        ));
        Ok(Some(id))
    }

    fn is_subscribed(&self, name: &str) -> bool {
        self.shared.lock().alive.iter().any(|s| s.name == name)
    }

    fn is_full(&self) -> bool {
        self.shared.lock().alive.len() >= MAX_SUBSCRIBERS
    }
}

fn limit_exceeded() -> Error {
    Error::LimitExceeded(format!(
        "{MAX_SUBSCRIBERS} monitor subscriptions are alive already"
    ))
}

#[interface(name = "org.nfcd.Monitor1")]
impl Monitor {
    /// Start sending `Nci`, `Apdu` and `Lost` to the caller alone, until `Unsubscribe` or until
    /// its unique name leaves the bus. Only for uid 0; idempotent.
    async fn subscribe(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let caller = Caller::from_header(conn, &header, ExeDigest::Skip)
            .await
            .map_err(|e| Error::Failed(format!("cannot identify the caller: {e}")))?;
        if caller.uid != ROOT_UID {
            return Err(Error::NotAuthorized(format!(
                "the trace shows every service's APDUs; only uid {ROOT_UID} may subscribe \
                 (caller runs as uid {})",
                caller.uid
            )));
        }
        let name = header
            .sender()
            .ok_or_else(|| Error::Failed("the call has no sender".to_owned()))?;
        // Cheap answers first, without touching the bus.
        if self.is_subscribed(name.as_str()) {
            return Ok(());
        }
        if self.is_full() {
            return Err(limit_exceeded());
        }
        let failed = |e: zbus::Error| Error::Failed(format!("cannot watch the caller: {e}"));
        let rule = owner_changes(name.as_str()).map_err(failed)?;
        // The match rule is in place once this returns: any later departure reaches the task.
        let owner = MessageStream::for_match_rule(rule, conn, std::num::NonZeroUsize::new(4))
            .await
            .map_err(failed)?;
        let Some(id) = self.add(conn, name, owner)? else {
            return Ok(());
        };
        // A departure before the match rule existed is only visible this way.
        if !name_has_owner(conn, name.as_str()).await.unwrap_or(false) {
            self.shared.remove_id(id);
            return Err(Error::Failed(format!(
                "{name} left the bus while subscribing"
            )));
        }
        info!(
            "monitor: {name} (pid {}) subscribed to the trace",
            caller.pid
        );
        Ok(())
    }

    /// End the caller's subscription.
    async fn unsubscribe(&self, #[zbus(header)] header: Header<'_>) -> Result<(), Error> {
        let name = header
            .sender()
            .ok_or_else(|| Error::DoesNotExist("the call has no sender".to_owned()))?;
        if !self.shared.remove_name(name.as_str()) {
            return Err(Error::DoesNotExist(format!(
                "{name} has no monitor subscription"
            )));
        }
        info!("monitor: {name} unsubscribed");
        Ok(())
    }

    /// One NCI packet as it crossed the transport (NCI 1.0 §3.4).
    #[zbus(signal)]
    async fn nci(
        emitter: &SignalEmitter<'_>,
        timestamp_us: u64,
        direction: &str,
        packet: &[u8],
    ) -> zbus::Result<()>;

    /// One APDU of a tap (ISO/IEC 7816-4 §5.1) and the service concerned.
    #[zbus(signal)]
    async fn apdu(
        emitter: &SignalEmitter<'_>,
        timestamp_us: u64,
        direction: &str,
        service_id: &str,
        apdu: &[u8],
    ) -> zbus::Result<()>;

    /// `count` events for this subscriber were dropped because its queue was full.
    #[zbus(signal)]
    async fn lost(emitter: &SignalEmitter<'_>, timestamp_us: u64, count: u32) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscription with a queue of `capacity`, added directly (no bus, no task).
    fn subscribe(shared: &Shared, name: &str, capacity: usize) -> mpsc::Receiver<Queued> {
        let (tx, rx) = mpsc::channel(capacity);
        let mut subs = shared.lock();
        let id = subs.next_id;
        subs.next_id += 1;
        subs.alive.push(Subscription {
            id,
            name: name.to_owned(),
            queue: tx,
            lost: 0,
        });
        shared.refresh(&subs);
        rx
    }

    fn handle() -> MonitorHandle {
        MonitorHandle {
            shared: Arc::new(Shared::new()),
        }
    }

    /// The packet of a queued NCI event.
    fn packet(item: &Queued) -> &[u8] {
        match &*item.trace {
            Trace::Nci { packet, .. } => packet,
            Trace::Apdu { .. } => &[],
        }
    }

    #[test]
    fn nothing_is_queued_without_subscribers() {
        let h = handle();
        assert!(!h.active());
        // CORE_RESET_CMD: goes nowhere.
        h.nci(NciDirection::Tx, &[0x20, 0x00, 0x01, 0x01]);
        assert!(!h.active());
    }

    #[test]
    fn full_queue_drops_and_counts_then_reports_before_the_next_event() {
        let h = handle();
        let mut rx = subscribe(&h.shared, ":1.7", 2);
        assert!(h.active());
        // Five CORE_CONN_CREDITS_NTF with credits 0..5; the queue holds two.
        for credits in 0..5u8 {
            h.nci(NciDirection::Rx, &[0x60, 0x06, 0x03, 0x01, 0x00, credits]);
        }
        let first = rx.try_recv().expect("first queued");
        let second = rx.try_recv().expect("second queued");
        assert_eq!((first.lost, packet(&first)[5]), (0, 0));
        assert_eq!((second.lost, packet(&second)[5]), (0, 1));
        assert!(rx.try_recv().is_err(), "three were dropped");
        // Room again: the next event carries the count of the three dropped.
        h.apdu(ApduDirection::Response, "", &[0x6A, 0x82]);
        let next = rx.try_recv().expect("queued after the drops");
        assert_eq!(next.lost, 3);
        match &*next.trace {
            Trace::Apdu {
                direction,
                service_id,
                apdu,
                ..
            } => {
                assert_eq!(*direction, ApduDirection::Response);
                assert_eq!(&**service_id, "");
                assert_eq!(&**apdu, &[0x6A, 0x82]);
            }
            other => panic!("expected an APDU, got {other:?}"),
        }
        // And the count starts again from zero.
        h.nci(NciDirection::Tx, &[0x20, 0x00, 0x01, 0x01]);
        assert_eq!(rx.try_recv().expect("queued").lost, 0);
    }

    /// A command to a service holds the signals back until its response; the response
    /// releases them at once.
    #[tokio::test]
    async fn signals_wait_while_an_apdu_is_with_a_service() {
        let h = handle();
        let _rx = subscribe(&h.shared, ":1.7", 8);
        // SELECT by name, forwarded to a service.
        h.apdu(
            ApduDirection::Command,
            "org.example",
            &[0x00, 0xA4, 0x04, 0x00],
        );
        assert_ne!(h.shared.held_since.load(Ordering::Relaxed), 0);
        let shared = Arc::clone(&h.shared);
        let waiter = tokio::spawn(async move { shared.wait_released().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "held while the service works");
        h.apdu(ApduDirection::Response, "org.example", &[0x90, 0x00]);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released by the response")
            .expect("waiter");
        assert_eq!(h.shared.held_since.load(Ordering::Relaxed), 0);
    }

    /// An exchange that never gets its response (a link loss) holds nothing back for longer
    /// than MAX_HOLD after the command.
    #[tokio::test]
    async fn a_hold_without_response_expires() {
        let h = handle();
        let _rx = subscribe(&h.shared, ":1.7", 8);
        let long_ago =
            monotonic_us().saturating_sub(u64::try_from(MAX_HOLD.as_micros()).unwrap_or(0) + 1_000);
        h.shared.hold(long_ago.max(1));
        tokio::time::timeout(std::time::Duration::from_secs(1), h.shared.wait_released())
            .await
            .expect("an expired hold does not wait");
        // Without a hold nothing waits either.
        h.shared.release();
        tokio::time::timeout(std::time::Duration::from_secs(1), h.shared.wait_released())
            .await
            .expect("no hold, no wait");
    }

    /// Whether a task waiting for the release is still waiting after a few turns of the
    /// runtime.
    async fn still_held(waiter: &tokio::task::JoinHandle<()>) -> bool {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        !waiter.is_finished()
    }

    fn waiter(h: &MonitorHandle) -> tokio::task::JoinHandle<()> {
        let shared = Arc::clone(&h.shared);
        tokio::spawn(async move { shared.wait_released().await })
    }

    /// A card session holds the signals back across its APDU exchanges until it ends.
    #[tokio::test]
    async fn signals_wait_for_the_end_of_a_card_session() {
        let h = handle();
        let _rx = subscribe(&h.shared, ":1.7", 64);
        h.session_started();
        let waiter = waiter(&h);
        assert!(still_held(&waiter).await, "held from the activation");
        h.apdu(
            ApduDirection::Command,
            "org.example",
            &[0x00, 0xA4, 0x04, 0x00],
        );
        h.apdu(ApduDirection::Response, "org.example", &[0x90, 0x00]);
        assert!(
            still_held(&waiter).await,
            "an answer does not end the session's hold"
        );
        h.session_ended();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released by the end of the session")
            .expect("waiter");
    }

    /// An APDU still with a service when its session's hold ends keeps its own hold.
    #[tokio::test]
    async fn the_end_of_a_session_leaves_an_apdu_hold_in_force() {
        let h = handle();
        let _rx = subscribe(&h.shared, ":1.7", 64);
        h.session_started();
        h.apdu(
            ApduDirection::Command,
            "org.example",
            &[0x80, 0xCA, 0x00, 0x00],
        );
        let waiter = waiter(&h);
        h.session_ended();
        assert!(still_held(&waiter).await, "the APDU is still out");
        h.apdu(ApduDirection::Response, "org.example", &[0x90, 0x00]);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released by the answer")
            .expect("waiter");
    }

    /// A session's hold ends when a subscriber's queue is three quarters full, before anything
    /// is dropped.
    #[tokio::test]
    async fn a_crowded_queue_ends_the_session_hold() {
        let h = handle();
        let mut rx = subscribe(&h.shared, ":1.7", QUEUE_CAPACITY);
        h.session_started();
        let waiter = waiter(&h);
        let mut sent = 0usize;
        while QUEUE_CAPACITY - sent >= QUEUE_CAPACITY / 4 {
            assert!(still_held(&waiter).await, "held with {sent} queued");
            h.nci(NciDirection::Rx, &[0x60, 0x06, 0x03, 0x01, 0x00, 0x01]);
            sent += 1;
        }
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released before the queue fills")
            .expect("waiter");
        assert_eq!(h.shared.session_since.load(Ordering::Relaxed), 0);
        let mut queued = 0;
        while let Ok(item) = rx.try_recv() {
            assert_eq!(item.lost, 0);
            queued += 1;
        }
        assert_eq!(queued, sent, "nothing dropped");
    }

    /// A session that outlasts MAX_SESSION_HOLD gets its trace live.
    #[tokio::test]
    async fn a_session_hold_expires() {
        let h = handle();
        let _rx = subscribe(&h.shared, ":1.7", 8);
        let max = u64::try_from(MAX_SESSION_HOLD.as_micros()).unwrap_or(0);
        h.shared
            .hold_session(monotonic_us().saturating_sub(max + 1_000).max(1));
        tokio::time::timeout(std::time::Duration::from_secs(1), h.shared.wait_released())
            .await
            .expect("an expired session hold does not wait");
    }

    /// A packet written is stamped when it was handed to the transport, not when it is
    /// reported; a stamp taken without subscribers reports nothing.
    #[test]
    fn a_sent_packet_carries_the_time_it_was_handed_over() {
        let h = handle();
        assert_eq!(h.stamp(), None, "no clock read without subscribers");
        let mut rx = subscribe(&h.shared, ":1.7", 4);
        h.nci_sent(&[0x20, 0x00, 0x01, 0x01], None);
        assert!(
            rx.try_recv().is_err(),
            "stamped before anyone subscribed: not reported"
        );
        let handed_at = h.stamp().expect("a subscriber: a stamp");
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.nci_sent(&[0x20, 0x00, 0x01, 0x01], Some(handed_at));
        let item = rx.try_recv().expect("reported");
        assert_eq!(item.trace.timestamp_us(), handed_at);
        match &*item.trace {
            Trace::Nci { direction, .. } => assert_eq!(*direction, NciDirection::Tx),
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    #[test]
    fn each_subscriber_counts_its_own_drops() {
        let h = handle();
        let mut slow = subscribe(&h.shared, ":1.7", 1);
        let mut fast = subscribe(&h.shared, ":1.8", 8);
        for n in 0..3u8 {
            h.nci(NciDirection::Rx, &[0x00, 0x00, 0x01, n]);
        }
        assert_eq!(slow.try_recv().map(|q| q.lost).ok(), Some(0));
        for n in 0..3u8 {
            let item = fast.try_recv().expect("fast subscriber keeps up");
            assert_eq!((item.lost, packet(&item)[3]), (0, n));
        }
        h.nci(NciDirection::Rx, &[0x00, 0x00, 0x01, 3]);
        assert_eq!(slow.try_recv().map(|q| q.lost).ok(), Some(2));
        assert_eq!(fast.try_recv().map(|q| q.lost).ok(), Some(0));
    }

    #[test]
    fn timestamps_follow_the_monotonic_clock() {
        let h = handle();
        let mut rx = subscribe(&h.shared, ":1.7", 4);
        let before = monotonic_us();
        h.nci(NciDirection::Tx, &[0x20, 0x00, 0x01, 0x01]);
        h.nci(NciDirection::Rx, &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01]);
        let after = monotonic_us();
        let a = rx.try_recv().expect("first").trace.timestamp_us();
        let b = rx.try_recv().expect("second").trace.timestamp_us();
        assert!(
            before <= a && a <= b && b <= after,
            "{before} {a} {b} {after}"
        );
    }

    #[test]
    fn owner_gone_and_closed_queues_end_subscriptions() {
        let h = handle();
        let rx7 = subscribe(&h.shared, ":1.7", 4);
        let _rx8 = subscribe(&h.shared, ":1.8", 4);
        h.owner_gone(":1.8");
        assert!(h.active(), ":1.7 is still subscribed");
        assert_eq!(h.shared.lock().alive.len(), 1);
        // :1.7's task ended without removing it (its receiver is gone): the next event finds out.
        drop(rx7);
        h.nci(NciDirection::Tx, &[0x20, 0x00, 0x01, 0x01]);
        assert!(!h.active());
        // Forwarding an unknown departure is harmless.
        h.owner_gone(":1.99");
        assert!(!h.active());
    }

    #[test]
    fn direction_names_are_the_documented_ones() {
        assert_eq!(nci_direction_name(NciDirection::Tx), "tx");
        assert_eq!(nci_direction_name(NciDirection::Rx), "rx");
        assert_eq!(apdu_direction_name(ApduDirection::Command), "command");
        assert_eq!(apdu_direction_name(ApduDirection::Response), "response");
    }
}
