//! The core loop. See the module documentation of [`crate::daemon`] for what it owns.
//!
//! One iteration: open the transport if it is due, send everything the controller queued,
//! handle the controller's events (which may queue more), then wait for whichever comes first
//! — a packet, the controller's timer, a wallet's answer, a D-Bus request, a client leaving,
//! a retry timer or a signal — and feed it in.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use libnci::apdu::{classify_select, CommandApdu, StatusWord};
use libnci::controller::{
    Activation, Controller, ControllerError, Deactivation, Event, ReinitCause, State,
};
use libnci::time::Instant as NciInstant;
use libnci::wire::{HexBytes, Message, NciVersion};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn, Level};

use super::{convert, DaemonError};
use crate::config::Config;
use crate::dbus::monitor::{ApduDirection, NciDirection};
use crate::dbus::{
    self, AdapterRequest, ApduChannel, CallError, ChannelError, ManagerRequest, NameWatcher,
    OwnerGone, Requests, Served,
};
use crate::hce::store::DefaultsStore;
use crate::hce::{Action, Category, LockState, Registry, ServiceKey, Session};
use crate::identity::IdentityStore;
use crate::lock::LockWatcher;
use crate::logging::NCI_TARGET;
use crate::notify::Notifier;
use crate::transport::spec::TransportSpec;
use crate::transport::{AnyTransport, Packet, Transport, TransportError};
use crate::uevent::{DeviceEvent, DeviceWatch, UeventSocket};

/// First delay before reopening a transport or restarting a controller that gave up.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest delay between two such attempts.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// A wallet's answer: the R-APDU or why there is none.
type AppFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, AppFailure>> + Send>>;

/// Why a wallet did not answer an APDU; the reader gets `6F00` for each.
#[derive(Debug)]
enum AppFailure {
    /// The per-APDU deadline passed.
    Deadline(Duration),
    /// The D-Bus call failed (error reply, name gone, malformed reply).
    Call(CallError),
    /// The APDU channel failed.
    Channel(ChannelError),
}

impl std::fmt::Display for AppFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppFailure::Deadline(d) => write!(f, "no answer within {} ms", d.as_millis()),
            AppFailure::Call(e) => write!(f, "{e}"),
            AppFailure::Channel(e) => write!(f, "APDU channel: {e}"),
        }
    }
}

/// A wallet call in progress.
struct InFlight {
    key: ServiceKey,
    via_channel: bool,
    /// When the per-APDU deadline passes.
    due: Instant,
    fut: AppFuture,
}

/// Where the deadline timer rests while no call is in flight: far enough never to fire in
/// practice (0 wake-ups when idle), near enough for tokio's timer wheel.
const TIMER_AT_REST: Duration = Duration::from_secs(24 * 3600);

/// What a transaction (one service selected during one card session) has done so far.
struct Transaction {
    key: ServiceKey,
    id: String,
    started: Instant,
    apdus: u32,
    /// Where its `TransactionStarted` is.
    announcement: Announcement,
}

/// `TransactionStarted(id, aid)` is kept off the path of the SELECT it reports: it is emitted
/// once the first R-APDU of the transaction is written (doc/adapter-api.md), or before
/// `TransactionEnded` if the transaction ends first.
enum Announcement {
    /// No R-APDU yet; the AID the SELECT named.
    Waiting(Vec<u8>),
    /// The first R-APDU is queued: emit once it is written.
    Due(Vec<u8>),
    /// Emitted.
    Done,
}

impl Announcement {
    /// The AID to announce now, if the signal is still owed; it is not owed after this.
    fn take(&mut self) -> Option<Vec<u8>> {
        match std::mem::replace(self, Announcement::Done) {
            Announcement::Waiting(aid) | Announcement::Due(aid) => Some(aid),
            Announcement::Done => None,
        }
    }
}

/// A card session: from RF activation to deactivation.
struct Tap {
    session: Session,
    transaction: Option<Transaction>,
}

/// What the retry timer will do when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Open the transport.
    Open,
    /// Reset the controller through the transport and start it again.
    Restart,
}

/// The daemon core. Built by [`crate::daemon::run`].
pub struct Engine {
    config: Config,
    ctl: Box<Controller>,
    registry: Registry,
    store: DefaultsStore,
    served: Served,
    requests: Requests,
    gone: mpsc::UnboundedReceiver<OwnerGone>,
    _watcher: NameWatcher,
    host: dbus::HostServiceClient,
    channels: HashMap<ServiceKey, Arc<ApduChannel>>,
    tap: Option<Tap>,
    identities: IdentityStore,
    lock: tokio::sync::watch::Receiver<LockState>,
    _lock_watcher: LockWatcher,
    deadline: Duration,
    epoch: Instant,
    retry: Option<(Instant, Retry)>,
    retry_delay: Duration,
    ready_once: bool,
    /// The controller is re-initialising: discard the transport's input before its first
    /// command, so a byte stream whose framing slipped starts on a packet boundary again.
    resync: bool,
    notifier: Notifier,
}

impl Engine {
    /// Set up the core on a served bus connection.
    pub async fn new(
        config: Config,
        registry: Registry,
        store: DefaultsStore,
        identities: IdentityStore,
        served: Served,
        requests: Requests,
    ) -> Result<Engine, dbus::ServeError> {
        let (watcher, gone) =
            NameWatcher::start(&served.conn)
                .await
                .map_err(|error| dbus::ServeError::Bus {
                    doing: "watching clients leave the bus".to_owned(),
                    error,
                })?;
        let (lock_watcher, lock) = LockWatcher::start(&served.conn, config.lock)
            .await
            .map_err(|error| dbus::ServeError::Bus {
                doing: "following the session lock state".to_owned(),
                error,
            })?;
        let ctl = Box::new(Controller::new(convert::controller_config(&config)));
        let deadline = config.hce.apdu_deadline;
        let host = dbus::HostServiceClient::new(served.conn.clone());
        Ok(Engine {
            config,
            ctl,
            registry,
            store,
            served,
            requests,
            gone,
            _watcher: watcher,
            host,
            channels: HashMap::new(),
            tap: None,
            identities,
            lock,
            _lock_watcher: lock_watcher,
            deadline,
            epoch: Instant::now(),
            retry: Some((Instant::now(), Retry::Open)),
            retry_delay: FIRST_RETRY,
            ready_once: false,
            resync: false,
            notifier: Notifier::from_env().unwrap_or_else(|e| {
                warn!("NOTIFY_SOCKET is set but unusable: {e}");
                Notifier::disabled()
            }),
        })
    }

    fn now(&self) -> NciInstant {
        NciInstant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn to_tokio(&self, t: NciInstant) -> Instant {
        self.epoch + Duration::from_micros(t.total_micros())
    }

    /// Run until SIGTERM or SIGINT (`Ok`), or until the bus connection is lost
    /// ([`DaemonError::BusLost`]: without the bus no client can reach nfcd, so it ends and
    /// leaves the restart to the service manager).
    pub async fn run(mut self) -> Result<(), DaemonError> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        let conn = self.served.conn.clone();
        let bus_closed = conn.closed();
        tokio::pin!(bus_closed);
        let mut bus_lost = false;
        let mut transport: Option<AnyTransport> = None;
        let mut inflight: Option<InFlight> = None;
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        let mut devices = DeviceWatches::new(&self.config.transport);
        // One timer for every call's deadline, moved rather than created per call: a new timer
        // earlier than all others wakes tokio's driver through its eventfd, while moving a
        // pending one later costs nothing, and each call's deadline is later than the last's.
        let mut deadline = Box::pin(tokio::time::sleep(TIMER_AT_REST));
        loop {
            if transport.is_none() {
                self.maybe_open(&mut transport).await;
                if transport.is_some() {
                    // A symlinked device may have come back under another name: watch the
                    // node this open reached.
                    devices.refresh();
                }
            } else if self
                .retry
                .is_some_and(|(at, r)| r == Retry::Restart && at <= Instant::now())
            {
                self.restart(&mut transport).await;
            }
            if let Some(t) = transport.as_mut() {
                if let Err(e) = self.pump(t, &mut inflight).await {
                    self.transport_failed(e, &mut transport, &mut inflight)
                        .await;
                    continue;
                }
            }
            let ctl_at = if transport.is_some() {
                self.ctl.poll_timeout().map(|t| self.to_tokio(t))
            } else {
                None
            };
            let retry_at = self.retry.map(|(at, _)| at);
            if let Some(call) = inflight.as_ref() {
                if deadline.deadline() != call.due {
                    deadline.as_mut().reset(call.due);
                }
            }
            tokio::select! {
                biased;
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
                () = &mut bus_closed => {
                    bus_lost = true;
                    break;
                }
                res = recv(transport.as_mut()) => match res {
                    Ok(packet) => {
                        self.served.monitor.nci(NciDirection::Rx, &packet);
                        self.trace("<", &packet);
                        let now = self.now();
                        self.ctl.handle_packet(&packet, now);
                    }
                    Err(e) => self.transport_failed(e, &mut transport, &mut inflight).await,
                },
                res = answer(&mut inflight) => {
                    if let Some(call) = inflight.take() {
                        self.on_answer(call, res).await;
                    }
                }
                () = deadline.as_mut() => {
                    let now = Instant::now();
                    if let Some(call) = inflight.take_if(|call| call.due <= now) {
                        let late = AppFailure::Deadline(self.deadline);
                        self.on_answer(call, Err(late)).await;
                    }
                    let next = inflight.as_ref().map_or(now + TIMER_AT_REST, |c| c.due);
                    deadline.as_mut().reset(next);
                }
                _ = sleep_until(ctl_at) => {
                    let now = self.now();
                    self.ctl.handle_timeout(now);
                }
                _ = sleep_until(retry_at) => {}
                Some(req) = self.requests.manager.recv() => self.on_manager(req, &mut inflight).await,
                Some(req) = self.requests.adapter.recv() => self.on_adapter(req).await,
                Some(gone) = self.gone.recv() => self.on_owner_gone(gone, &mut inflight).await,
                _ = tick(watchdog.as_mut()) => {
                    let _ = self.notifier.watchdog();
                }
                event = devices.next() => match event {
                    DeviceEvent::Removed => {
                        if transport.is_some() {
                            self.transport_failed(
                                TransportError::Closed { context: "device removed".into(), partial: 0 },
                                &mut transport,
                                &mut inflight,
                            ).await;
                        }
                        if devices.follows_link() {
                            // Behind a /dev/serial/by-id/... link the device may return under
                            // another kernel name, whose `add` names no watched node: keep
                            // reopening the link with back-off.
                            info!("controller device removed; reopening its link with back-off");
                            self.status("controller device removed; retrying");
                        } else {
                            // Wait for the device to come back rather than polling for it.
                            info!("controller device removed; waiting for it to come back");
                            self.retry = None;
                            self.status("controller device removed; waiting for it to come back");
                        }
                    }
                    DeviceEvent::Added => {
                        if transport.is_none() {
                            info!("controller device is back");
                            self.retry_delay = FIRST_RETRY;
                            self.retry = Some((Instant::now(), Retry::Open));
                        }
                    }
                },
            }
        }
        info!("stopping");
        let _ = self.notifier.stopping();
        if let Some(tap) = self.tap.take() {
            self.end_tap(tap, "shutdown");
        }
        if bus_lost {
            return Err(DaemonError::BusLost);
        }
        Ok(())
    }

    /// Open the transport when the retry timer says so.
    async fn maybe_open(&mut self, transport: &mut Option<AnyTransport>) {
        let Some((at, Retry::Open)) = self.retry else {
            return;
        };
        if at > Instant::now() {
            return;
        }
        match AnyTransport::open(&self.config.transport).await {
            Ok(t) => {
                info!("transport {} open", t.describe());
                if let Some(sim) = t.sim_handle() {
                    let i2c = t.i2c_sim();
                    if let Err(e) = dbus::simulator::export(&self.served.conn, sim, i2c).await {
                        warn!("cannot export org.nfcd.Simulator1: {e}");
                    }
                }
                self.status(&format!("initialising the controller on {}", t.describe()));
                *transport = Some(t);
                self.retry = None;
                self.retry_delay = FIRST_RETRY;
                *self.ctl = Controller::new(convert::controller_config(&self.config));
                let now = self.now();
                self.ctl.start(now);
            }
            Err(e) => {
                warn!(
                    "cannot open {}: {e}; retrying in {} ms",
                    self.config.transport,
                    self.retry_delay.as_millis()
                );
                self.status(&format!(
                    "cannot open {}: {e}; retrying",
                    self.config.transport
                ));
                self.schedule(Retry::Open);
            }
        }
    }

    /// Reset a controller that gave up and start it again.
    async fn restart(&mut self, transport: &mut Option<AnyTransport>) {
        self.retry = None;
        let Some(t) = transport.as_mut() else {
            return;
        };
        info!("resetting the controller and starting again");
        if let Err(e) = t.reset().await {
            warn!("controller reset failed: {e}");
        }
        let now = self.now();
        self.ctl.start(now);
    }

    fn schedule(&mut self, what: Retry) {
        self.retry = Some((Instant::now() + self.retry_delay, what));
        self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
    }

    /// Send what the controller queued and handle its events until neither is left.
    async fn pump(
        &mut self,
        transport: &mut AnyTransport,
        inflight: &mut Option<InFlight>,
    ) -> Result<(), TransportError> {
        loop {
            while let Some(packet) = self.ctl.poll_transmit() {
                if std::mem::take(&mut self.resync) {
                    transport.discard_input().await?;
                }
                self.trace(">", &packet);
                let handed_at = self.served.monitor.stamp();
                transport.send(&packet).await?;
                self.served.monitor.nci_sent(&packet, handed_at);
            }
            if let Some(t) = self.tap.as_mut().and_then(|tap| tap.transaction.as_mut()) {
                if let Announcement::Due(aid) = &mut t.announcement {
                    let (id, aid) = (t.id.clone(), std::mem::take(aid));
                    t.announcement = Announcement::Done;
                    let adapter = self.served.adapter.clone();
                    tokio::spawn(async move {
                        let _ = adapter.transaction_started(&id, &aid).await;
                    });
                }
            }
            let mut handled = false;
            while let Some(event) = self.next_event() {
                handled = true;
                self.on_event(event, inflight).await;
            }
            if !handled {
                return Ok(());
            }
        }
    }

    fn next_event(&mut self) -> Option<OwnedEvent> {
        self.ctl.poll_event().map(|event| match event {
            Event::Ready => OwnedEvent::Ready,
            Event::Activated(a) => OwnedEvent::Activated(a),
            Event::Data(apdu) => OwnedEvent::Data(apdu.to_vec()),
            Event::Deactivated(d) => OwnedEvent::Deactivated(d),
            Event::FieldOn => OwnedEvent::Field(true),
            Event::FieldOff => OwnedEvent::Field(false),
            Event::RoutingProgrammed {
                mode,
                used,
                capacity,
            } => OwnedEvent::Routing(format!("{mode:?}"), used, capacity),
            Event::Reinitializing {
                cause,
                attempt,
                delay,
            } => OwnedEvent::Reinitializing(cause, attempt, delay),
            Event::Error(e) => OwnedEvent::Error(e),
        })
    }

    async fn on_event(&mut self, event: OwnedEvent, inflight: &mut Option<InFlight>) {
        match event {
            OwnedEvent::Ready => self.on_ready().await,
            OwnedEvent::Activated(a) => self.on_activated(a),
            OwnedEvent::Data(apdu) => self.on_apdu(apdu, inflight),
            OwnedEvent::Deactivated(d) => {
                inflight.take();
                if let Some(tap) = self.tap.take() {
                    self.end_tap(tap, d.reason_str());
                }
                debug!("card session ended: {d:?}");
            }
            OwnedEvent::Field(on) => {
                let _ = self.served.adapter.update(|s| s.field_present = on).await;
            }
            OwnedEvent::Routing(mode, used, capacity) => {
                info!("routing table programmed: {mode} mode, {used} of {capacity} bytes");
            }
            OwnedEvent::Reinitializing(cause, attempt, delay) => {
                self.resync = true;
                self.status(&format!(
                    "re-initialising the controller (attempt {attempt})"
                ));
                warn!(
                    "controller re-initialising (attempt {attempt}, in {} ms): {cause:?}",
                    delay.as_millis(),
                );
            }
            OwnedEvent::Error(e) => {
                warn!("controller: {e}");
                if self.ctl.state() == State::Failed {
                    warn!(
                        "the controller gave up re-initialising; resetting it in {} ms",
                        self.retry_delay.as_millis()
                    );
                    self.status(&format!(
                        "controller not answering; resetting it in {} ms",
                        self.retry_delay.as_millis()
                    ));
                    self.schedule(Retry::Restart);
                }
            }
        }
    }

    async fn on_ready(&mut self) {
        self.retry_delay = FIRST_RETRY;
        let (controller, nci_version, capacity) = match self.ctl.info() {
            Some(info) => (
                describe_controller(info),
                info.nci_version.to_string(),
                u32::from(info.max_routing_table_size),
            ),
            None => (String::new(), String::new(), 0),
        };
        let routing = self
            .ctl
            .routing()
            .map(convert::routing_entries)
            .unwrap_or_default();
        info!("controller ready: {controller}, NCI {nci_version}; listening");
        let _ = self
            .served
            .adapter
            .update(|s| {
                s.present = true;
                s.controller = controller;
                s.nci_version = nci_version;
                s.routing_capacity = capacity;
                s.routing_table = routing;
            })
            .await;
        if !self.ready_once {
            let _ = self.notifier.ready();
        }
        self.status(&format!(
            "listening; {} service(s) registered",
            self.registry.services().count()
        ));
        self.ready_once = true;
    }

    fn status(&self, text: &str) {
        let _ = self.notifier.status(text);
    }

    fn on_activated(&mut self, activation: Activation) {
        debug!(
            "card session started: {:?} {:?}",
            activation.mode, activation.protocol
        );
        self.served.monitor.session_started();
        self.tap = Some(Tap {
            session: Session::new(),
            transaction: None,
        });
    }

    fn on_apdu(&mut self, apdu: Vec<u8>, inflight: &mut Option<InFlight>) {
        let Some(tap) = self.tap.as_mut() else {
            warn!("command APDU outside a card session ignored");
            return;
        };
        if let Some(old) = inflight.take() {
            warn!(
                "new command APDU while {} had not answered the last one; that answer is dropped",
                old.key
            );
        }
        let lock = *self.lock.borrow();
        match tap.session.on_apdu(&self.registry, &apdu, &lock) {
            Action::Reply(sw) => {
                debug!("answering {sw} ourselves");
                self.served.monitor.apdu(ApduDirection::Command, "", &apdu);
                self.respond(&sw.to_bytes(), "");
            }
            Action::Forward { to, deselected } => {
                if deselected.is_some() || tap.transaction.as_ref().is_some_and(|t| t.key != to) {
                    if let Some(t) = tap.transaction.take() {
                        self.transaction_ended(t, "deselected");
                    }
                }
                if let Some(old) = deselected {
                    self.send_deactivated(old, "deselected");
                }
                let Some(tap) = self.tap.as_mut() else {
                    return;
                };
                let transaction = tap.transaction.get_or_insert_with(|| {
                    let id = self
                        .registry
                        .get(&to)
                        .map(|s| s.options.id.clone())
                        .unwrap_or_default();
                    Transaction {
                        key: to.clone(),
                        id,
                        started: Instant::now(),
                        apdus: 0,
                        announcement: Announcement::Waiting(selected_name(&apdu)),
                    }
                });
                transaction.apdus += 1;
                if self.served.monitor.active() {
                    let id = transaction.id.clone();
                    self.served.monitor.apdu(ApduDirection::Command, &id, &apdu);
                }
                *inflight = Some(self.call(to, apdu));
            }
        }
    }

    /// Start the wallet call for one APDU, through its channel if it opened one.
    /// The deadline is kept by [`Engine::run`]'s timer, not by the call.
    fn call(&self, key: ServiceKey, apdu: Vec<u8>) -> InFlight {
        let due = Instant::now() + self.deadline;
        if let Some(channel) = self.channels.get(&key).cloned() {
            let fut = async move { channel.exchange(&apdu).await.map_err(AppFailure::Channel) };
            return InFlight {
                key,
                via_channel: true,
                due,
                fut: Box::pin(fut),
            };
        }
        let host = self.host.clone();
        let (owner, path) = (key.owner.clone(), key.path.clone());
        let fut = async move {
            host.process_apdu(&owner, &path, &apdu)
                .await
                .map_err(AppFailure::Call)
        };
        InFlight {
            key,
            via_channel: false,
            due,
            fut: Box::pin(fut),
        }
    }

    async fn on_answer(&mut self, call: InFlight, result: Result<Vec<u8>, AppFailure>) {
        match result {
            Ok(rsp) => {
                let id = if self.served.monitor.active() {
                    self.registry
                        .get(&call.key)
                        .map(|s| s.options.id.clone())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                self.respond(&rsp, &id);
            }
            Err(failure) => {
                warn!("{} failed an APDU, answering 6F00: {failure}", call.key);
                if call.via_channel && matches!(failure, AppFailure::Channel(_)) {
                    // A broken channel is closed; later APDUs go through ProcessApdu.
                    self.channels.remove(&call.key);
                }
                self.app_failed();
            }
        }
    }

    /// The selected app failed: answer 6F00 and close its transaction.
    fn app_failed(&mut self) {
        let Some(tap) = self.tap.as_mut() else {
            return;
        };
        let action = tap.session.on_app_failed();
        let transaction = tap.transaction.take();
        if let Some(t) = transaction {
            self.transaction_ended(t, "error");
        }
        let sw = match action {
            Action::Reply(sw) => sw,
            Action::Forward { .. } => StatusWord::NO_PRECISE_DIAGNOSIS,
        };
        self.respond(&sw.to_bytes(), "");
    }

    /// Send an R-APDU to the reader; `service` is the Id of the service that produced it,
    /// empty when nfcd answered itself.
    fn respond(&mut self, rsp: &[u8], service: &str) {
        self.served
            .monitor
            .apdu(ApduDirection::Response, service, rsp);
        let now = self.now();
        if let Err(e) = self.ctl.send_data(rsp, now) {
            warn!("cannot send the response APDU: {e}");
        }
        if let Some(t) = self.tap.as_mut().and_then(|tap| tap.transaction.as_mut()) {
            if let Announcement::Waiting(aid) = &mut t.announcement {
                t.announcement = Announcement::Due(std::mem::take(aid));
            }
        }
    }

    fn end_tap(&mut self, mut tap: Tap, reason: &str) {
        self.served.monitor.session_ended();
        if let Some(t) = tap.transaction.take() {
            self.transaction_ended(t, reason);
        }
        if let Some(key) = tap.session.end() {
            self.send_deactivated(key, reason);
        }
    }

    fn transaction_ended(&self, mut t: Transaction, reason: &str) {
        let adapter = self.served.adapter.clone();
        let reason = reason.to_owned();
        // A TransactionStarted still owed goes first, from the same task, so that the two
        // signals keep their order.
        let start = t.announcement.take();
        let elapsed = t.started.elapsed();
        debug!(
            "transaction of {} ended ({reason}): {} APDUs in {} µs",
            t.id,
            t.apdus,
            elapsed.as_micros()
        );
        tokio::spawn(async move {
            if let Some(aid) = start {
                let _ = adapter.transaction_started(&t.id, &aid).await;
            }
            let _ = adapter
                .transaction_ended(&t.id, &reason, t.apdus, elapsed)
                .await;
        });
    }

    fn send_deactivated(&self, key: ServiceKey, reason: &str) {
        let host = self.host.clone();
        let reason = reason.to_owned();
        tokio::spawn(async move {
            if let Err(e) = host.deactivated(&key.owner, &key.path, &reason).await {
                debug!("Deactivated({reason}) to {key}: {e}");
            }
        });
    }

    async fn transport_failed(
        &mut self,
        error: TransportError,
        transport: &mut Option<AnyTransport>,
        inflight: &mut Option<InFlight>,
    ) {
        warn!(
            "transport failed: {error}; reopening in {} ms",
            self.retry_delay.as_millis()
        );
        *transport = None;
        inflight.take();
        if let Some(tap) = self.tap.take() {
            self.end_tap(tap, "link-loss");
        }
        self.schedule(Retry::Open);
        let _ = self
            .served
            .adapter
            .update(|s| {
                s.present = false;
                s.field_present = false;
            })
            .await;
    }

    async fn on_owner_gone(&mut self, gone: OwnerGone, inflight: &mut Option<InFlight>) {
        self.served.monitor.owner_gone(&gone.name);
        let removed = self.registry.remove_owner(&gone.name);
        if removed.is_empty() {
            return;
        }
        for key in &removed {
            info!("{key} left the bus; its registration is dropped");
            self.channels.remove(key);
        }
        if inflight
            .as_ref()
            .is_some_and(|call| call.key.owner == gone.name)
        {
            inflight.take();
            warn!("{} left the bus mid-APDU, answering 6F00", gone.name);
            self.app_failed();
        }
        if let Some(tap) = self.tap.as_mut() {
            for key in &removed {
                tap.session.on_service_removed(key);
            }
        }
        self.publish_services().await;
    }

    async fn publish_services(&self) {
        let services = convert::services(&self.registry, &self.identities);
        let defaults = convert::default_services(self.registry.defaults());
        let _ = self
            .served
            .manager
            .update(|s| {
                s.services = services;
                s.default_services = defaults;
            })
            .await;
    }

    async fn on_adapter(&mut self, req: AdapterRequest) {
        match req {
            AdapterRequest::SetPowered { powered, reply } => {
                let now = self.now();
                self.ctl.set_enabled(powered, now);
                let _ = self.served.adapter.update(|s| s.powered = powered).await;
                let _ = reply.send(Ok(()));
            }
        }
    }

    async fn on_manager(&mut self, req: ManagerRequest, inflight: &mut Option<InFlight>) {
        match req {
            ManagerRequest::RegisterService {
                caller,
                service,
                request,
                reply,
            } => {
                let key = ServiceKey::new(caller.unique_name.clone(), service.as_str());
                let result = self.register(key.clone(), &caller, &request).await;
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    info!("{key} registered {} ({})", request.id, request.category);
                    self.publish_services().await;
                }
            }
            ManagerRequest::UnregisterService {
                caller,
                service,
                reply,
            } => {
                let key = ServiceKey::new(caller.unique_name, service.as_str());
                let result = self
                    .registry
                    .unregister(&key)
                    .map(|_| ())
                    .map_err(convert::register_error);
                if result.is_ok() {
                    self.channels.remove(&key);
                    if inflight.as_ref().is_some_and(|c| c.key == key) {
                        inflight.take();
                        self.app_failed();
                    }
                    if let Some(tap) = self.tap.as_mut() {
                        tap.session.on_service_removed(&key);
                    }
                }
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    self.publish_services().await;
                }
            }
            ManagerRequest::SetDefaultService {
                caller,
                category,
                id,
                reply,
            } => {
                let result = self.set_default(&caller, &category, &id);
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    self.publish_services().await;
                }
            }
            ManagerRequest::SetPreferredService {
                caller,
                service,
                reply,
            } => {
                let key = ServiceKey::new(caller.unique_name, service.as_str());
                let result = self
                    .registry
                    .set_preferred(&key)
                    .map_err(convert::register_error);
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    self.publish_services().await;
                }
            }
            ManagerRequest::ClearPreferredService { caller, reply } => {
                self.registry.clear_preferred(&caller.unique_name);
                let _ = reply.send(Ok(()));
                self.publish_services().await;
            }
            ManagerRequest::OpenApduChannel {
                caller,
                service,
                channel,
                reply,
            } => {
                let key = ServiceKey::new(caller.unique_name, service.as_str());
                if self.registry.get(&key).is_some() {
                    self.channels.insert(key, Arc::new(channel));
                    let _ = reply.send(Ok(()));
                } else {
                    let _ = reply.send(Err(dbus::Error::DoesNotExist(format!(
                        "no service registered by this connection at {}",
                        service.as_str()
                    ))));
                }
            }
        }
    }

    async fn register(
        &mut self,
        key: ServiceKey,
        caller: &dbus::Caller,
        request: &dbus::RegisterRequest,
    ) -> Result<(), dbus::Error> {
        let options = convert::service_options(request)?;
        let registered = self
            .registry
            .register(key.clone(), options, &convert::hce_caller(caller))
            .map_err(convert::register_error)?;
        // Bound after the registry accepted it, so a refused registration binds nothing.
        if let Err(e) = self.identities.check_and_bind(
            &request.id,
            caller.uid,
            caller.exe_sha256,
            self.config.access.allow_id_rebind,
        ) {
            let _ = self.registry.unregister(&key);
            return Err(e.into());
        }
        // The client may have left between its call and now; its OwnerGone may already have
        // been handled, so check that it is still there.
        match dbus::names::name_has_owner(&self.served.conn, &key.owner).await {
            Ok(false) => {
                let _ = self.registry.unregister(&key);
                return Err(dbus::Error::Failed(format!(
                    "{} left the bus while registering",
                    key.owner
                )));
            }
            Ok(true) => {}
            Err(e) => debug!("NameHasOwner({}): {e}", key.owner),
        }
        for conflict in registered.conflicts {
            info!(
                "AID {} is claimed by {}",
                conflict.aid,
                conflict.ids.join(", ")
            );
            let manager = self.served.manager.clone();
            tokio::spawn(async move {
                let _ = manager
                    .aid_conflict(conflict.aid.as_bytes(), &conflict.ids)
                    .await;
            });
        }
        Ok(())
    }

    fn set_default(
        &mut self,
        caller: &dbus::Caller,
        category: &str,
        id: &str,
    ) -> Result<(), dbus::Error> {
        let category = convert::category(category, "category")?;
        if !self
            .registry
            .policy()
            .allows(category, &convert::hce_caller(caller))
        {
            return Err(dbus::Error::NotAuthorized(format!(
                "this caller may not choose the default {category} service"
            )));
        }
        let before = self.registry.defaults().clone();
        self.registry
            .set_default(category, id)
            .map_err(convert::register_error)?;
        if let Err(e) = self.store.save(self.registry.defaults()) {
            // Keep memory and disk in agreement: undo.
            let previous = match category {
                Category::Payment => before.payment,
                Category::Transit => before.transit,
                Category::Other => None,
            };
            let _ = match previous {
                Some(old) => self.registry.set_default(category, &old),
                None => self.registry.clear_default(category),
            };
            return Err(dbus::Error::Failed(format!(
                "saving the default service: {e}"
            )));
        }
        info!("default {category} service is now {id}");
        Ok(())
    }

    fn trace(&self, dir: &str, packet: &[u8]) {
        if tracing::enabled!(target: NCI_TARGET, Level::DEBUG) {
            let version = self
                .ctl
                .info()
                .map(|i| i.nci_version)
                .unwrap_or(NciVersion::V1_0);
            match Message::parse_packet(packet, version) {
                Ok(m) => debug!(target: NCI_TARGET, "{dir} {m}"),
                Err(_) => debug!(target: NCI_TARGET, "{dir} {}", HexBytes(packet)),
            }
        }
    }
}

/// Controller events with the borrowed APDU copied out.
enum OwnedEvent {
    Ready,
    Activated(Activation),
    Data(Vec<u8>),
    Deactivated(Deactivation),
    Field(bool),
    Routing(String, usize, usize),
    Reinitializing(ReinitCause, u8, Duration),
    Error(ControllerError),
}

async fn recv(transport: Option<&mut AnyTransport>) -> Result<Packet, TransportError> {
    match transport {
        Some(t) => t.recv().await,
        None => std::future::pending().await,
    }
}

async fn answer(inflight: &mut Option<InFlight>) -> Result<Vec<u8>, AppFailure> {
    match inflight {
        Some(call) => call.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Kernel uevents for the transport's device nodes (the UART tty, or the I²C bus and GPIO
/// chips). Without a device node (TCP, sim) or without a uevent socket nothing is reported.
struct DeviceWatches {
    socket: Option<UeventSocket>,
    watches: Vec<DeviceWatch>,
}

impl DeviceWatches {
    fn new(spec: &TransportSpec) -> DeviceWatches {
        let nodes: Vec<std::path::PathBuf> = match spec {
            TransportSpec::Uart(u) => vec![u.device.clone()],
            TransportSpec::I2c(i) => {
                let mut nodes = vec![i.device.clone()];
                nodes.push(gpiochip_node(&i.irq.chip));
                if let Some(ven) = &i.ven {
                    nodes.push(gpiochip_node(&ven.chip));
                }
                nodes
            }
            _ => Vec::new(),
        };
        let watches: Vec<DeviceWatch> = nodes
            .iter()
            .filter_map(|n| match DeviceWatch::new(n) {
                Ok(w) => Some(w),
                Err(e) => {
                    debug!("not watching {}: {e}", n.display());
                    None
                }
            })
            .collect();
        let socket = if watches.is_empty() {
            None
        } else {
            match UeventSocket::open() {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!("cannot watch device hotplug (kernel uevents): {e}");
                    None
                }
            }
        };
        DeviceWatches { socket, watches }
    }

    /// Resolve symlinked nodes again after the transport opened them.
    fn refresh(&mut self) {
        for w in &mut self.watches {
            if w.refresh() {
                info!("watching /dev/{} for hotplug now", w.devname());
            }
        }
    }

    /// Whether a watched node is reached through a symlink (see [`DeviceWatch::follows_link`]).
    fn follows_link(&self) -> bool {
        self.watches.iter().any(DeviceWatch::follows_link)
    }

    /// The next added/removed event for a watched node.
    async fn next(&mut self) -> DeviceEvent {
        let Some(socket) = self.socket.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match socket.next().await {
                Ok(event) => {
                    if let Some(e) = self.watches.iter().find_map(|w| w.classify(&event)) {
                        return e;
                    }
                }
                Err(e) => debug!("uevent: {e}"),
            }
        }
    }
}

fn gpiochip_node(chip: &str) -> std::path::PathBuf {
    if chip.starts_with('/') {
        std::path::PathBuf::from(chip)
    } else {
        std::path::Path::new("/dev").join(chip)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The DF name of a SELECT, for `TransactionStarted`; empty for anything else.
fn selected_name(apdu: &[u8]) -> Vec<u8> {
    CommandApdu::parse(apdu)
        .ok()
        .and_then(|c| classify_select(&c))
        .and_then(|s| s.ok())
        .map(|s| s.name.to_vec())
        .unwrap_or_default()
}

fn describe_controller(info: &libnci::controller::ControllerInfo) -> String {
    match info.nxp_version() {
        Some(v) => format!(
            "{} (hardware 0x{:02X}, firmware {:02X}.{:02X})",
            info.manufacturer, v.hw_version, v.fw_major, v.fw_minor
        ),
        None => info.manufacturer.to_string(),
    }
}
