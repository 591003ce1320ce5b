//! A virtual NFC controller you can plug a host into: libnci's sans-IO virtual PN7150 / NCI 2.0
//! controller and virtual reader, run in real time behind a byte stream.
//!
//! What it does: [`SimHost`] owns one virtual controller ([`Nfcc`] inside a
//! [`FaultInjector`]) and serves it on any `AsyncRead + AsyncWrite` stream carrying raw NCI
//! packets back to back, delimited by the length octet of each 3-octet header (NCI 1.0 §3,
//! packet formats — the framing of NCI over UART and TCP): on a pseudo-terminal
//! ([`SimHost::serve_pty`]), on TCP ([`SimHost::serve_tcp`]), or on an in-process pipe
//! ([`SimHost::serve_duplex`]). Packets from the host go to the controller as they arrive;
//! packets from the controller are written when the time stamped on them arrives. An I²C bus
//! timing model (libnci `sim::bus`, PN7150 UM10936 §3 read/write sequence) can delay both
//! directions as a real bus would; it is off unless [`SimOptions::bus`] says otherwise.
//! [`SimHandle`], cloneable and usable from any task, drives the RF side: a reader tap that
//! runs a libnci [`Reader`] script to its end, the reader's field, fault injection, a power
//! cycle (VEN), and read-outs (RF state, routing table, counters, EEPROM writes).
//!
//! What it does not do: speak NCI itself (the controller model is libnci's), interpret what
//! the host does beyond what the model checks, or run several hosts at once — one stream is
//! served at a time (TCP replaces the connection on each new one).
//!
//! Time is real: libnci [`Instant`]s count microseconds from a `tokio::time::Instant` taken
//! when the host is made. The controller is advanced whenever something happens (a packet, a
//! deadline, a reader action), never by polling.
//!
//! A tap runs on a short-lived thread of its own: libnci's reader scripts hold their decision
//! steps as plain boxed closures, which cannot move between tokio worker threads, so the reader
//! lives on one thread and waits on a condition variable for the controller to change.

mod pty;
mod tap;

use std::collections::VecDeque;
use std::fmt;
use std::future::{pending, Future};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use libnci::sim::fault::ArmId;
use libnci::sim::nfcc::NfccStats;
use libnci::sim::{
    BusStats, Direction, FaultInjector, I2cBus, Nfcc, NfccConfig, NfccEndpoint, Reader,
    ReaderConfig, RfTiming,
};
use libnci::time::Instant;
use libnci::wire::HexBytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

use crate::transport::framing::RxBuffer;
use tap::{CutState, Endpoint, LinkCut};

pub use libnci::sim::{
    ApduRecord, BusSpeed, Fault, Profile, RfState, TapOutcome, TapReport, Trigger,
};
pub use pty::{open_pty, Pty, PtyMaster};
pub use tap::{
    outcome_detail, outcome_name, FaultSpec, TapOptions, TapScript, Tech, DEFAULT_TAP_TIMEOUT,
    DELAY_RESPONSE, FAULT_NAMES,
};

/// Buffer of each direction of the in-process pipe of [`SimHost::serve_duplex`]: room for a
/// few hundred packets, so neither side ever waits on the other in practice.
pub const DUPLEX_CAPACITY: usize = 64 * 1024;

/// NXP proprietary parameters `A0 00`..=`A0 FF` are the PN7150's EEPROM (UM10936 §10): they
/// survive a power cycle.
const NXP_EEPROM_IDS: std::ops::RangeInclusive<u16> = 0xA000..=0xA0FF;

/// Bound on rounds of one [`Core::pump`]; each round makes progress, so this only guards
/// against a model bug turning into a hang.
const MAX_PUMP_ROUNDS: usize = 1024;

/// How the virtual controller behaves in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// Model an I²C bus at this speed between host and controller (PN7150 UM10936 §3: a
    /// packet to the controller is one write; a packet to the host is read as header, then
    /// payload). `None` (the default): packets move as fast as the stream carries them.
    pub bus: Option<BusSpeed>,
    /// ISO-DEP air time of the reader's APDUs at 106 kbit/s (ISO/IEC 14443-2/-4). On by
    /// default, so tap latencies include what the air adds.
    pub rf_timing: Option<RfTiming>,
    /// Controller processing time per command (none by default).
    pub response_delay: Duration,
    /// Seed of the fault injector's random choices.
    pub seed: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bus: None,
            rf_timing: Some(RfTiming::default()),
            response_delay: Duration::ZERO,
            seed: 0x5EED,
        }
    }
}

/// Why a simulator operation failed.
#[derive(Debug)]
pub enum SimError {
    /// A script, technology, fault or option is not one this simulator knows.
    InvalidArgument(String),
    /// A tap needs RF discovery running (RFST_DISCOVERY, or RFST_LISTEN_SLEEP; NCI 1.0 §5.2)
    /// and the controller is elsewhere: the host has not initialised it yet, stopped
    /// discovery, or the controller is dead.
    NotDiscovering(RfState),
    /// Another tap is running; the field belongs to it.
    Busy,
    /// The tap did not end within [`TapOptions::timeout`].
    Timeout(Duration),
    /// An operating-system call failed.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The reader's thread ended without a report.
    Stopped,
}

impl SimError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> SimError {
        let context = context.into();
        move |source| SimError::Io { context, source }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::InvalidArgument(what) => f.write_str(what),
            SimError::NotDiscovering(state) => write!(
                f,
                "the virtual controller is not discovering (RF state {state:?}); \
                 has the host initialised it?"
            ),
            SimError::Busy => f.write_str("another tap is running"),
            SimError::Timeout(limit) => {
                write!(f, "the tap did not end within {} ms", limit.as_millis())
            }
            SimError::Io { context, source } => write!(f, "{context}: {source}"),
            SimError::Stopped => f.write_str("the virtual reader stopped without a report"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Counters of a [`SimHost`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// The controller's own counters since it was last powered on.
    pub nfcc: NfccStats,
    /// Power cycles ([`SimHandle::power_cycle`], new TCP connections).
    pub power_cycles: u64,
    /// Packets received from the host.
    pub packets_from_host: u64,
    /// Packets the controller sent towards the host.
    pub packets_to_host: u64,
    /// Taps that ran to a report.
    pub taps: u64,
    /// What the I²C bus model added, when one is configured.
    pub bus: Option<BusStats>,
}

/// An armed fault, to ask how often it fired. Valid until the next power cycle, which
/// disarms every fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId {
    generation: u64,
    id: ArmId,
}

/// A packet crossing the link, due at `at`.
#[derive(Debug)]
struct Pending {
    at: Instant,
    bytes: Vec<u8>,
    /// Power-cycle generation of the controller that sent it; stale ones are never written.
    generation: u64,
}

fn insert_by_time(queue: &mut VecDeque<Pending>, packet: Pending) {
    let index = queue.partition_point(|p| p.at <= packet.at);
    queue.insert(index, packet);
}

/// Everything behind the lock: the controller and the packets in flight.
struct Core {
    config: NfccConfig,
    seed: u64,
    nfcc: Endpoint,
    generation: u64,
    /// Latest time handed to the controller; its inputs never go back in time.
    clock: Instant,
    bus: Option<I2cBus>,
    /// Host → controller packets still on the modelled bus.
    inbound: VecDeque<Pending>,
    /// Controller → host packets waiting for their time.
    outbound: VecDeque<Pending>,
    /// The reader's field as last set by [`SimHandle::field`].
    field: bool,
    tap_running: bool,
    eeprom_writes_before: u64,
    power_cycles: u64,
    packets_from_host: u64,
    packets_to_host: u64,
    taps: u64,
}

impl Core {
    fn new(config: NfccConfig, seed: u64, bus: Option<BusSpeed>) -> Core {
        Core {
            nfcc: FaultInjector::new(Nfcc::new(config.clone()), seed),
            config,
            seed,
            generation: 0,
            clock: Instant::ZERO,
            bus: bus.map(I2cBus::new),
            inbound: VecDeque::new(),
            outbound: VecDeque::new(),
            field: false,
            tap_running: false,
            eeprom_writes_before: 0,
            power_cycles: 0,
            packets_from_host: 0,
            packets_to_host: 0,
            taps: 0,
        }
    }

    /// `t`, but never earlier than what the controller was already given.
    fn at(&mut self, t: Instant) -> Instant {
        self.clock = self.clock.max(t);
        self.clock
    }

    fn host_packet(&mut self, bytes: &[u8], now: Instant) {
        self.packets_from_host += 1;
        match self.bus.as_mut() {
            Some(bus) => {
                let end = bus.transfer(Direction::DhToNfcc, bytes.len(), now).end;
                let generation = self.generation;
                insert_by_time(
                    &mut self.inbound,
                    Pending {
                        at: end,
                        bytes: bytes.to_vec(),
                        generation,
                    },
                );
            }
            None => {
                let t = self.at(now);
                self.nfcc.handle_packet(bytes, t);
            }
        }
    }

    /// Run everything due at `now`: deliveries off the bus, controller timers, and the
    /// controller's output onto the way to the host. `true` if anything happened.
    fn pump(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut acted = false;
            while self.inbound.front().is_some_and(|p| p.at <= now) {
                if let Some(p) = self.inbound.pop_front() {
                    let t = self.at(p.at);
                    self.nfcc.handle_packet(&p.bytes, t);
                    acted = true;
                }
            }
            if self.nfcc.poll_timeout().is_some_and(|t| t <= now) {
                let t = self.at(now);
                self.nfcc.handle_timeout(t);
                acted = true;
            }
            while let Some(transmit) = self.nfcc.poll_transmit() {
                let at = match self.bus.as_mut() {
                    Some(bus) => {
                        bus.transfer(Direction::NfccToDh, transmit.bytes.len(), transmit.at)
                            .end
                    }
                    None => transmit.at,
                };
                self.packets_to_host += 1;
                let generation = self.generation;
                insert_by_time(
                    &mut self.outbound,
                    Pending {
                        at,
                        bytes: transmit.bytes,
                        generation,
                    },
                );
                acted = true;
            }
            if !acted {
                break;
            }
            progress = true;
        }
        progress
    }

    /// The next time the controller side needs attention (not counting packets waiting to be
    /// written, which are the stream's business).
    fn controller_deadline(&self) -> Option<Instant> {
        [self.inbound.front().map(|p| p.at), self.nfcc.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.controller_deadline(),
            self.outbound.front().map(|p| p.at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Pending> {
        let mut due = Vec::new();
        while self.outbound.front().is_some_and(|p| p.at <= now) {
            if let Some(p) = self.outbound.pop_front() {
                due.push(p);
            }
        }
        due
    }

    /// VEN low, then high (PN7150 UM10936 §3.3): a new controller with the old EEPROM. Packets
    /// in flight are lost, faults disarmed, a dead controller revived. The reader's field, a
    /// thing of the outside world, stays as it was.
    fn power_cycle(&mut self, now: Instant) {
        let old = self.nfcc.inner();
        let eeprom: Vec<(u16, Vec<u8>)> = NXP_EEPROM_IDS
            .filter_map(|id| old.config_param(id).map(|v| (id, v.to_vec())))
            .collect();
        self.eeprom_writes_before += old.eeprom_writes();
        let mut fresh = Nfcc::new(self.config.clone());
        for (id, value) in &eeprom {
            fresh.preset_eeprom(*id, value);
        }
        let t = self.at(now);
        fresh.power_on(t);
        if self.field {
            fresh.reader_field(true, t);
        }
        self.generation += 1;
        self.power_cycles += 1;
        self.inbound.clear();
        self.outbound.clear();
        self.nfcc = FaultInjector::new(fresh, self.seed.wrapping_add(self.generation));
        self.pump(now);
    }

    fn rf_state(&self) -> RfState {
        self.nfcc.inner().rf_state()
    }

    fn is_discovering(&self) -> bool {
        !self.nfcc.is_dead() && self.rf_state() == RfState::Discovery
    }
}

/// State shared by the host, its handles, the serving task and a running tap.
struct Shared {
    core: Mutex<Core>,
    profile: Profile,
    epoch: tokio::time::Instant,
    /// Signalled whenever the controller changed; a running tap waits on it.
    changed: Condvar,
    /// Bumped whenever the controller changed; async waiters watch it.
    updates: watch::Sender<u64>,
    /// Wakes the serving task: new packets to write or a new deadline.
    wake: Notify,
    /// Held while a packet is written to the stream, and by a power cycle: no packet of a
    /// controller that was power-cycled reaches the stream afterwards.
    write_gate: tokio::sync::Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // The core holds plain data; a panic elsewhere cannot leave it worse than the panic did.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Instant {
        let micros = self.epoch.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_micros(t.total_micros())
    }

    /// Tell waiters (a tap, `wait_ready`) that the controller changed.
    fn publish(&self) {
        self.changed.notify_all();
        self.updates.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Tell the serving task to look at its queue and deadlines again.
    fn kick(&self) {
        self.wake.notify_one();
    }
}

/// Exclusive right to put packets on the stream; see [`SimHandle::lock_writes`].
pub(crate) struct WriteGate<'a>(#[allow(dead_code)] tokio::sync::MutexGuard<'a, ()>);

/// A virtual NFC controller served on a byte stream. See the module documentation.
pub struct SimHost {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHost")
            .field("profile", &self.shared.profile)
            .finish_non_exhaustive()
    }
}

impl SimHost {
    /// A powered controller of `profile` in its reset state, waiting for CORE_RESET_CMD.
    pub fn new(profile: Profile, options: SimOptions) -> SimHost {
        let mut config = NfccConfig::new(profile);
        config.rf_timing = options.rf_timing;
        config.response_delay = options.response_delay;
        let core = Core::new(config, options.seed, options.bus);
        let (updates, _) = watch::channel(0);
        SimHost {
            shared: Arc::new(Shared {
                core: Mutex::new(core),
                profile,
                epoch: tokio::time::Instant::now(),
                changed: Condvar::new(),
                updates,
                wake: Notify::new(),
                write_gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A handle to drive the RF side and read the controller's state.
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serve the controller on `stream` until the far end closes it (`Ok`) or it fails. The
    /// future owns what it needs and may be spawned. Serve one stream at a time.
    pub fn serve<S>(&self, stream: S) -> impl Future<Output = Result<(), SimError>> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_stream(Arc::clone(&self.shared), stream, None)
    }

    /// Serve on an in-process pipe: returns the host's end and the serving task, which ends
    /// when the host's end is dropped. Must run inside a tokio runtime.
    pub fn serve_duplex(&self) -> (DuplexStream, JoinHandle<Result<(), SimError>>) {
        let (host_end, task, _) = self.serve_duplex_counted();
        (host_end, task)
    }

    /// [`SimHost::serve_duplex`], also counting the octets read from the host's end (see
    /// [`SimHandle::wait_consumed`]).
    pub(crate) fn serve_duplex_counted(
        &self,
    ) -> (DuplexStream, JoinHandle<Result<(), SimError>>, Consumed) {
        let (host_end, controller_end) = tokio::io::duplex(DUPLEX_CAPACITY);
        let consumed = Consumed::default();
        let serve = serve_stream(
            Arc::clone(&self.shared),
            controller_end,
            Some(consumed.clone()),
        );
        (host_end, tokio::spawn(serve), consumed)
    }

    /// Serve on a new pseudo-terminal: returns the path a host opens like a serial port
    /// (`uart:/dev/pts/N`) and the serving task, which runs until aborted; hosts may close and
    /// reopen the line meanwhile. Must run inside a tokio runtime.
    pub fn serve_pty(&self) -> Result<(PathBuf, JoinHandle<Result<(), SimError>>), SimError> {
        let Pty {
            master,
            slave,
            slave_path,
        } = open_pty().map_err(SimError::io("opening a pseudo-terminal"))?;
        let serve = self.serve(master);
        let task = tokio::spawn(async move {
            // Held open for as long as the line is served (see `pty`).
            let _slave = slave;
            serve.await
        });
        Ok((slave_path, task))
    }

    /// Listen on `addr` (port 0 picks a free one) and serve each accepted connection. A new
    /// connection replaces the one being served and power-cycles the controller, as plugging
    /// a controller in again would. Returns the bound address and the listening task, which
    /// runs until aborted.
    pub async fn serve_tcp(
        &self,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, JoinHandle<Result<(), SimError>>), SimError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(SimError::io(format!("listening on {addr}")))?;
        let local = listener
            .local_addr()
            .map_err(SimError::io("reading the bound address"))?;
        let task = tokio::spawn(serve_listener(Arc::clone(&self.shared), listener));
        Ok((local, task))
    }
}

type ServeFuture = Pin<Box<dyn Future<Output = Result<(), SimError>> + Send>>;

async fn serve_listener(shared: Arc<Shared>, listener: TcpListener) -> Result<(), SimError> {
    let mut current: Option<ServeFuture> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    // The peer gave up before we got to it; keep listening.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(e) => return Err(SimError::io("accepting a connection")(e)),
                };
                // Small latency-critical packets: no Nagle delay on our side either.
                stream
                    .set_nodelay(true)
                    .map_err(SimError::io(format!("{peer}: TCP_NODELAY")))?;
                // Dropping the old connection's future stops it before the new one starts.
                drop(current.take());
                let handle = SimHandle { shared: Arc::clone(&shared) };
                handle.power_cycle().await;
                tracing::debug!("virtual controller: connection from {peer}");
                current = Some(Box::pin(serve_stream(Arc::clone(&shared), stream, None)));
            }
            result = async {
                match current.as_mut() {
                    Some(serving) => serving.await,
                    None => pending().await,
                }
            } => {
                current = None;
                match result {
                    Ok(()) => tracing::debug!("virtual controller: connection closed"),
                    Err(e) => tracing::debug!("virtual controller: connection ended: {e}"),
                }
            }
        }
    }
}

/// Octets the serving task has read from one stream, whole packets or not.
#[derive(Debug, Clone, Default)]
pub(crate) struct Consumed(Arc<AtomicU64>);

async fn serve_stream<S>(
    shared: Arc<Shared>,
    stream: S,
    consumed: Option<Consumed>,
) -> Result<(), SimError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rx = RxBuffer::new();
    loop {
        let (due, deadline) = {
            let mut core = shared.lock();
            let now = shared.now();
            let progress = core.pump(now);
            let due = core.take_due(now);
            let deadline = core.next_deadline();
            drop(core);
            if progress {
                shared.publish();
            }
            (due, deadline)
        };
        for packet in due {
            let _gate = shared.write_gate.lock().await;
            let stale = shared.lock().generation != packet.generation;
            if stale {
                continue;
            }
            tracing::trace!("virtual controller → host: {}", HexBytes(&packet.bytes));
            writer
                .write_all(&packet.bytes)
                .await
                .map_err(SimError::io("writing to the host"))?;
        }
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(shared.to_tokio(t)).await,
                None => pending().await,
            }
        };
        tokio::select! {
            read = reader.read(rx.spare_mut()) => {
                match read {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        rx.commit(n);
                        let mut core = shared.lock();
                        let now = shared.now();
                        while let Some(packet) = rx.take_packet().map_err(|e| SimError::Io {
                            context: "reading from the host".to_owned(),
                            source: io::Error::other(e.to_string()),
                        })? {
                            tracing::trace!("host → virtual controller: {}", HexBytes(&packet));
                            core.host_packet(&packet, now);
                        }
                        drop(core);
                        if let Some(consumed) = &consumed {
                            consumed.0.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        shared.publish();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(SimError::io("reading from the host")(e)),
                }
            }
            () = sleep => {}
            () = shared.wake.notified() => {}
        }
    }
}

/// Drives the RF side of a [`SimHost`] and reads its state; cheap to clone, usable from any
/// task or thread.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("profile", &self.shared.profile)
            .field("rf_state", &self.rf_state())
            .finish_non_exhaustive()
    }
}

/// Clears the "tap running" mark however the reader's thread ends.
struct TapGuard(Arc<Shared>);

impl Drop for TapGuard {
    fn drop(&mut self) {
        self.0.lock().tap_running = false;
        self.0.publish();
    }
}

impl SimHandle {
    /// The controller simulated.
    pub fn profile(&self) -> Profile {
        self.shared.profile
    }

    /// Let the virtual reader tap: field on, activation in `options.tech`, the script's
    /// APDUs one after the other, then DESELECT and field off (or link loss, see
    /// [`TapOptions::link_loss_after`]). Returns the reader's report once the tap is over;
    /// what went wrong *during* the tap (a status word, a timeout, link loss) is in its
    /// outcome, not an error.
    ///
    /// Errors: [`SimError::NotDiscovering`] unless the controller is in RFST_DISCOVERY or
    /// RFST_LISTEN_SLEEP (NCI 1.0 §5.2) when the tap starts, [`SimError::Busy`] while another
    /// tap runs, [`SimError::InvalidArgument`] for an AID the script does not take,
    /// [`SimError::Timeout`] when the tap outlives [`TapOptions::timeout`].
    pub async fn tap(&self, script: TapScript, options: TapOptions) -> Result<TapReport, SimError> {
        if options.aid.is_some() && !script.takes_aid() {
            // Same check and message as when the thread builds the script.
            script.build(options.aid.as_deref())?;
        }
        let aid = options.aid.clone();
        self.tap_with(move || script.build(aid.as_deref()), options)
            .await
    }

    /// [`SimHandle::tap`] with any libnci [`Script`](libnci::sim::Script): `build` makes it on
    /// the reader's thread (a script's decision steps are not `Send`). [`TapOptions::aid`] is
    /// not applied; the script names its own AIDs. Same errors as [`SimHandle::tap`], plus
    /// whatever `build` returns.
    pub async fn tap_with<F>(&self, build: F, options: TapOptions) -> Result<TapReport, SimError>
    where
        F: FnOnce() -> Result<libnci::sim::Script, SimError> + Send + 'static,
    {
        {
            let mut core = self.shared.lock();
            if core.tap_running {
                return Err(SimError::Busy);
            }
            let state = core.rf_state();
            let listening = matches!(state, RfState::Discovery | RfState::ListenSleep);
            if core.nfcc.is_dead() || !listening {
                return Err(SimError::NotDiscovering(state));
            }
            core.tap_running = true;
        }
        let guard = TapGuard(Arc::clone(&self.shared));
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("nci-sim-reader".to_owned())
            .spawn(move || {
                let result = build().and_then(|script| run_tap(&guard.0, script, &options));
                if result.is_ok() {
                    guard.0.lock().taps += 1;
                }
                drop(guard);
                let _ = tx.send(result);
            })
            .map_err(SimError::io("starting the virtual reader"))?;
        rx.await.map_err(|_| SimError::Stopped)?
    }

    /// Switch the reader's field on or off without a tap (RF_FIELD_INFO_NTF to the host if it
    /// enabled them, NCI 1.0 §5.2.6; off during an activation is an RF link loss).
    /// [`SimError::Busy`] while a tap runs: the field is the tap's then.
    pub fn field(&self, on: bool) -> Result<(), SimError> {
        let mut core = self.shared.lock();
        if core.tap_running {
            return Err(SimError::Busy);
        }
        let now = self.shared.now();
        let t = core.at(now);
        core.field = on;
        core.nfcc.reader_field(on, t);
        core.pump(now);
        drop(core);
        self.shared.publish();
        self.shared.kick();
        Ok(())
    }

    /// Arm `fault` (libnci [`FaultInjector`]): it fires on the packets the fault applies to,
    /// as `trigger` says. A power cycle disarms it.
    pub fn arm_fault(&self, fault: Fault, trigger: Trigger) -> FaultId {
        let mut core = self.shared.lock();
        let id = core.nfcc.arm(fault, trigger);
        FaultId {
            generation: core.generation,
            id,
        }
    }

    /// How often the fault armed as `id` fired (0 once the controller was power-cycled).
    pub fn fault_fired(&self, id: FaultId) -> u32 {
        let core = self.shared.lock();
        if core.generation == id.generation {
            core.nfcc.fired(id.id)
        } else {
            0
        }
    }

    /// Power-cycle the controller (VEN low, then high; PN7150 UM10936 §3.3): all volatile
    /// state is gone, packets not yet written to the host are dropped, faults are disarmed,
    /// the EEPROM stays. The PN7150 then sends nothing until the host's CORE_RESET_CMD; the
    /// NCI 2.0 controller announces itself with CORE_RESET_NTF (NCI 2.0 §4.1). When this
    /// returns, no packet of the old controller will be written any more.
    pub async fn power_cycle(&self) {
        let gate = self.lock_writes().await;
        self.power_cycle_locked(&gate);
    }

    /// Wait until the serving task counting into `consumed` has read `bytes` octets from its
    /// stream in all: everything the host wrote before has reached the controller (or its
    /// bus).
    pub(crate) async fn wait_consumed(&self, consumed: &Consumed, bytes: u64) {
        let mut updates = self.shared.updates.subscribe();
        while consumed.0.load(Ordering::SeqCst) < bytes {
            if updates.changed().await.is_err() {
                return;
            }
        }
    }

    /// Hold back every write to the stream until the gate is dropped (a packet being written
    /// is finished first).
    pub(crate) async fn lock_writes(&self) -> WriteGate<'_> {
        WriteGate(self.shared.write_gate.lock().await)
    }

    /// [`SimHandle::power_cycle`] for a caller that already holds the write gate.
    pub(crate) fn power_cycle_locked(&self, _gate: &WriteGate<'_>) {
        let mut core = self.shared.lock();
        let now = self.shared.now();
        core.power_cycle(now);
        drop(core);
        self.shared.publish();
        self.shared.kick();
    }

    /// The controller's RF state.
    pub fn rf_state(&self) -> RfState {
        self.shared.lock().rf_state()
    }

    /// Whether discovery runs (RFST_DISCOVERY) on a live controller: a tap can start.
    pub fn is_ready(&self) -> bool {
        self.shared.lock().is_discovering()
    }

    /// Wait until [`SimHandle::is_ready`]. Cancel-safe; bound it with a timeout.
    pub async fn wait_ready(&self) {
        self.wait_until(SimHandle::is_ready).await;
    }

    /// Wait until `condition` holds, checking it now and again whenever the controller changes
    /// (a packet in or out, a timer, a step of a tap, a power cycle), never by polling: e.g.
    /// until an armed fault fired, or a counter of [`SimHandle::stats`] moved. Cancel-safe;
    /// bound it with a timeout.
    pub async fn wait_until(&self, mut condition: impl FnMut(&SimHandle) -> bool) {
        let mut updates = self.shared.updates.subscribe();
        while !condition(self) {
            // The sender lives in `shared`, which this handle keeps alive.
            if updates.changed().await.is_err() {
                return;
            }
        }
    }

    /// The listen-mode routing table the controller holds, as its encoded entries
    /// (RF_SET_LISTEN_MODE_ROUTING_CMD, NCI 1.0 §6.3.2; decode with libnci's `RoutingEntries`).
    pub fn routing_table(&self) -> Vec<u8> {
        self.shared.lock().nfcc.inner().routing_table().to_vec()
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        let core = self.shared.lock();
        SimStats {
            nfcc: *core.nfcc.inner().stats(),
            power_cycles: core.power_cycles,
            packets_from_host: core.packets_from_host,
            packets_to_host: core.packets_to_host,
            taps: core.taps,
            bus: core.bus.as_ref().map(|bus| *bus.stats()),
        }
    }

    /// Writes of non-volatile NXP parameters (`A0 xx`, PN7150 UM10936 §10) since the host was
    /// made, across power cycles: a host that writes only what differs leaves this alone on a
    /// second start.
    pub fn eeprom_writes(&self) -> u64 {
        let core = self.shared.lock();
        core.eeprom_writes_before + core.nfcc.inner().eeprom_writes()
    }
}

/// The reader's loop, on its own thread: poll the reader against the controller, then sleep
/// until the reader's next deadline, the controller's, or a change made by the host.
fn run_tap(
    shared: &Shared,
    script: libnci::sim::Script,
    options: &TapOptions,
) -> Result<TapReport, SimError> {
    let config = ReaderConfig {
        technology: options.tech.technology(),
        apdu_timeout: options.apdu_timeout,
        ..ReaderConfig::default()
    };
    let mut reader = Reader::new(script, config);
    let mut cut = CutState {
        after: options.link_loss_after,
        ..CutState::default()
    };
    let mut core = shared.lock();
    let give_up = shared.now() + options.timeout;
    loop {
        let now = shared.now();
        core.pump(now);
        {
            let core = &mut *core;
            core.at(now);
            let mut view = LinkCut {
                inner: &mut core.nfcc,
                now,
                state: &mut cut,
            };
            reader.poll(now, &mut view);
        }
        core.pump(now);
        shared.publish();
        shared.kick();
        if reader.is_done() {
            core.field = false;
            break;
        }
        if now >= give_up {
            // Take the field away so the controller goes back to discovery.
            let t = core.at(now);
            core.nfcc.reader_field(false, t);
            core.field = false;
            core.pump(now);
            shared.publish();
            shared.kick();
            return Err(SimError::Timeout(options.timeout));
        }
        let next = [
            reader.poll_timeout(),
            core.controller_deadline(),
            Some(give_up),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(give_up);
        let wait = next - now;
        if wait.is_zero() {
            continue;
        }
        core = match shared.changed.wait_timeout(core, wait) {
            Ok((core, _)) => core,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    drop(core);
    reader.report().ok_or(SimError::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CORE_RESET_CMD, reset configuration (NCI 1.0 §4.1).
    const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
    /// CORE_INIT_CMD (NCI 1.0).
    const CORE_INIT_CMD: [u8; 3] = [0x20, 0x01, 0x00];
    /// NCI_PROPRIETARY_ACT_CMD (UM10936 §6.3).
    const NXP_ACT_CMD: [u8; 3] = [0x2F, 0x02, 0x00];
    /// CORE_SET_CONFIG_CMD of one NXP EEPROM parameter, A0 0E = 16 09 00.
    const SET_A00E: [u8; 10] = [0x20, 0x02, 0x07, 0x01, 0xA0, 0x0E, 0x03, 0x16, 0x09, 0x00];

    #[test]
    fn power_cycle_keeps_eeprom_and_drops_the_rest() {
        let mut core = Core::new(NfccConfig::pn7150(), 1, None);
        let t = Instant::from_millis(1);
        for cmd in [&CORE_RESET_CMD[..], &CORE_INIT_CMD, &NXP_ACT_CMD, &SET_A00E] {
            core.host_packet(cmd, t);
            core.pump(t);
        }
        assert!(core.nfcc.inner().is_initialized());
        assert_eq!(core.nfcc.inner().eeprom_writes(), 1);
        // Responses still queued for the host: CORE_RESET_RSP, CORE_INIT_RSP, ...
        assert_eq!(core.outbound.len(), 4);
        core.arm_dead_for_test();
        core.power_cycle(Instant::from_millis(2));
        assert!(
            core.outbound.is_empty(),
            "the PN7150 says nothing after power-on"
        );
        assert!(!core.nfcc.inner().is_initialized());
        assert!(
            !core.nfcc.is_dead(),
            "a power cycle revives a dead controller"
        );
        assert_eq!(
            core.nfcc.inner().config_param(0xA00E),
            Some(&[0x16, 0x09, 0x00][..])
        );
        assert_eq!(core.eeprom_writes_before, 1);
        assert_eq!(core.generation, 1);
    }

    #[test]
    fn nci2_announces_itself_after_a_power_cycle() {
        let mut core = Core::new(NfccConfig::nci2(), 1, None);
        core.power_cycle(Instant::from_millis(1));
        let first = core.outbound.front().map(|p| p.bytes.clone());
        // CORE_RESET_NTF, trigger POWERED_ON (NCI 2.0 §4.1, Table 9): 60 00 09 | 01 ...
        assert_eq!(
            first.as_deref().and_then(|b| b.get(..4)),
            Some(&[0x60, 0x00, 0x09, 0x01][..])
        );
    }

    #[test]
    fn the_bus_model_delays_both_directions() {
        let mut core = Core::new(NfccConfig::pn7150(), 1, Some(BusSpeed::Fast));
        core.host_packet(&CORE_RESET_CMD, Instant::ZERO);
        // CORE_RESET_CMD, 4 octets at 400 kHz: (36 + 11) × 2.5 µs = 117.5 µs → 118 µs.
        assert_eq!(core.controller_deadline(), Some(Instant::from_micros(118)));
        core.pump(Instant::from_micros(117));
        assert!(core.outbound.is_empty());
        core.pump(Instant::from_micros(118));
        // CORE_RESET_RSP, 6 octets read as header then payload: 2 × (27 + 11) × 2.5 µs.
        assert_eq!(
            core.outbound.front().map(|p| p.at),
            Some(Instant::from_micros(118 + 190))
        );
        assert!(core.take_due(Instant::from_micros(300)).is_empty());
        assert_eq!(core.take_due(Instant::from_micros(308)).len(), 1);
    }

    impl Core {
        fn arm_dead_for_test(&mut self) {
            self.nfcc.arm(Fault::Dead, Trigger::Once);
            self.host_packet(&CORE_INIT_CMD, self.clock);
            assert!(self.nfcc.is_dead());
        }
    }
}
