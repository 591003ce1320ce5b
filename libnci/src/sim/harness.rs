//! A deterministic in-process harness: a device host, the virtual NFCC and a virtual reader,
//! run in simulated time (the `Pair` idea of quinn-proto's tests).
//!
//! What it does: moves every packet between a [`DhEndpoint`] and an [`NfccEndpoint`] —
//! through an [`I2cBus`] timing model when one is configured —, calls their timeouts when
//! due, lets a [`Reader`] act on the NFCC's RF side, records a transcript of every packet,
//! and jumps the clock straight to the next event. Nothing runs in real time and nothing is
//! random unless seeded, so a run replays exactly.
//!
//! What it does not do: implement a device host. [`ScriptedDh`] is a test double that sends
//! a fixed list of raw commands, keeps the credit count and answers C-APDUs through a
//! [`CardApplet`]; [`ControllerDh`] plugs the real [`Controller`] state machine in through
//! [`DhEndpoint`], answering APDUs with a [`CardApplet`] — one card, or [`HostApps`], a host
//! that plays several applications and picks one by the SELECTed AID.
//!
//! Order of work at one instant (repeated until nothing happens, then the clock moves on):
//! due timeouts (DH, NFCC), DH output onto the bus, NFCC output onto the bus, deliveries that
//! are due, then the reader.

use std::any::Any;
use std::boxed::Box;
use std::collections::VecDeque;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use super::bus::{BusSpeed, BusStats, Direction, I2cBus};
use super::cards::{status, CardApplet, EmvCard, SweepCard, TransitCard};
use super::nfcc::{NfccEndpoint, RX_CAPACITY};
use super::reader::{Reader, TapReport};
use super::scripts::{PPSE, TRANSIT_AID};
use crate::apdu::{select_by_df_name, CommandApdu, StatusWord};
use crate::controller::{Config, Controller, Deactivation, Event, ListenTechs, SendError, State};
use crate::routing::{Aid, AidMatch, RoutingRule, MAX_RULES};
use crate::time::{Duration, Instant};
use crate::wire::segment::{Reassembler, Segmenter};
use crate::wire::HexBytes;
use crate::wire::{Gid, HeaderRepr, MessageType, Packet, PacketId};

/// The device-host side of the link, sans-IO (quinn-proto style): the harness feeds it packets
/// and time and polls it for packets and deadlines.
pub trait DhEndpoint {
    /// A whole NCI packet from the NFCC arrived at `now`.
    fn handle_packet(&mut self, packet: &[u8], now: Instant);
    /// Time advanced to `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The next whole NCI packet for the NFCC.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// When `handle_timeout` should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// One packet of the transcript.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// When the sender handed it over.
    pub sent_at: Instant,
    /// When the receiver got its last octet.
    pub delivered_at: Instant,
    /// Which way.
    pub direction: Direction,
    /// The packet.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::DhToNfcc => "DH → NFCC",
            Direction::NfccToDh => "NFCC → DH",
        };
        write!(f, "{} {arrow} {}", self.delivered_at, HexBytes(&self.bytes))
    }
}

/// Why a run stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarnessError {
    /// More steps than the limit: something keeps producing work without time passing, or
    /// never goes idle.
    StepLimit {
        /// Simulated time when the limit was hit.
        now: Instant,
    },
    /// The reader stopped without a report (nothing left to happen).
    TapUnfinished,
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::StepLimit { now } => write!(f, "step limit reached at {now}"),
            HarnessError::TapUnfinished => f.write_str("tap ended without a report"),
        }
    }
}

impl std::error::Error for HarnessError {}

#[derive(Debug)]
struct InFlight {
    sent_at: Instant,
    deliver_at: Instant,
    direction: Direction,
    bytes: Vec<u8>,
}

/// The harness. `dh` and `nfcc` stay public so tests can inspect and poke them between runs.
#[derive(Debug)]
pub struct Harness<D, N> {
    /// The device host.
    pub dh: D,
    /// The controller (possibly wrapped in a fault injector).
    pub nfcc: N,
    now: Instant,
    bus: Option<I2cBus>,
    in_flight: VecDeque<InFlight>,
    trace: Vec<TraceEntry>,
    reader: Option<Reader>,
    steps: u64,
    step_limit: u64,
}

/// Default bound on harness steps per run.
pub const DEFAULT_STEP_LIMIT: u64 = 1_000_000;

impl<D: DhEndpoint, N: NfccEndpoint> Harness<D, N> {
    /// Packets move instantly.
    pub fn new(dh: D, nfcc: N) -> Harness<D, N> {
        Harness {
            dh,
            nfcc,
            now: Instant::ZERO,
            bus: None,
            in_flight: VecDeque::new(),
            trace: Vec::new(),
            reader: None,
            steps: 0,
            step_limit: DEFAULT_STEP_LIMIT,
        }
    }

    /// Packets cross an I²C bus at `speed`.
    pub fn with_bus(dh: D, nfcc: N, speed: BusSpeed) -> Harness<D, N> {
        let mut harness = Harness::new(dh, nfcc);
        harness.bus = Some(I2cBus::new(speed));
        harness
    }

    /// Bound the number of steps of each run.
    pub fn set_step_limit(&mut self, limit: u64) {
        self.step_limit = limit;
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Every packet delivered so far.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Take the transcript, leaving it empty.
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        core::mem::take(&mut self.trace)
    }

    /// What the bus added, when there is one.
    pub fn bus_stats(&self) -> Option<&BusStats> {
        self.bus.as_ref().map(I2cBus::stats)
    }

    /// Run until nothing is in flight and nobody has a deadline.
    pub fn run_until_idle(&mut self) -> Result<(), HarnessError> {
        self.steps = 0;
        loop {
            self.settle()?;
            match self.next_event() {
                Some(at) => self.advance_to(at)?,
                None => return Ok(()),
            }
        }
    }

    /// Run everything due up to `end`, then set the clock to `end`.
    pub fn run_until(&mut self, end: Instant) -> Result<(), HarnessError> {
        self.steps = 0;
        loop {
            self.settle()?;
            match self.next_event() {
                Some(at) if at <= end => self.advance_to(at)?,
                _ => {
                    self.now = self.now.max(end);
                    return self.settle();
                }
            }
        }
    }

    /// Run for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), HarnessError> {
        self.run_until(self.now + duration)
    }

    /// Let `reader` tap and run until its tap is over; returns its report. Packets the tap
    /// caused may still be in flight: run on to deliver them.
    pub fn tap(&mut self, reader: Reader) -> Result<TapReport, HarnessError> {
        self.begin_tap(reader);
        self.finish_tap()
    }

    /// Bring `reader` into the field without running anything yet: [`Harness::run_until`] and
    /// [`Harness::run_for`] then move the tap along with everything else, so a test can act in
    /// the middle of it (change routes, arm a fault); [`Harness::finish_tap`] runs it to its
    /// end. A reader already present is replaced.
    pub fn begin_tap(&mut self, reader: Reader) {
        self.reader = Some(reader);
    }

    /// Run the tap started with [`Harness::begin_tap`] until the reader is done; returns its
    /// report ([`HarnessError::TapUnfinished`] without a reader).
    pub fn finish_tap(&mut self) -> Result<TapReport, HarnessError> {
        self.steps = 0;
        loop {
            self.settle()?;
            if self.reader.as_ref().is_some_and(Reader::is_done) {
                break;
            }
            match self.next_event() {
                Some(at) => self.advance_to(at)?,
                None => break,
            }
        }
        let reader = self.reader.take().ok_or(HarnessError::TapUnfinished)?;
        reader.report().ok_or(HarnessError::TapUnfinished)
    }

    fn advance_to(&mut self, at: Instant) -> Result<(), HarnessError> {
        self.count()?;
        self.now = self.now.max(at);
        Ok(())
    }

    fn count(&mut self) -> Result<(), HarnessError> {
        self.steps += 1;
        if self.steps > self.step_limit {
            Err(HarnessError::StepLimit { now: self.now })
        } else {
            Ok(())
        }
    }

    fn settle(&mut self) -> Result<(), HarnessError> {
        while self.step() {
            self.count()?;
        }
        Ok(())
    }

    fn next_event(&self) -> Option<Instant> {
        [
            self.dh.poll_timeout(),
            self.nfcc.poll_timeout(),
            self.in_flight.front().map(|f| f.deliver_at),
            self.reader.as_ref().and_then(Reader::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut progress = false;
        if self.dh.poll_timeout().is_some_and(|t| t <= now) {
            self.dh.handle_timeout(now);
            progress = true;
        }
        if self.nfcc.poll_timeout().is_some_and(|t| t <= now) {
            self.nfcc.handle_timeout(now);
            progress = true;
        }
        while let Some(bytes) = self.dh.poll_transmit() {
            self.launch(Direction::DhToNfcc, bytes, now);
            progress = true;
        }
        while let Some(transmit) = self.nfcc.poll_transmit() {
            self.launch(Direction::NfccToDh, transmit.bytes, transmit.at.max(now));
            progress = true;
        }
        while self.in_flight.front().is_some_and(|f| f.deliver_at <= now) {
            if let Some(packet) = self.in_flight.pop_front() {
                self.deliver(packet);
                progress = true;
            }
        }
        if let Some(reader) = self.reader.as_mut() {
            progress |= reader.poll(now, &mut self.nfcc);
        }
        progress
    }

    fn launch(&mut self, direction: Direction, bytes: Vec<u8>, ready: Instant) {
        let deliver_at = match self.bus.as_mut() {
            Some(bus) => bus.transfer(direction, bytes.len(), ready).end,
            None => ready,
        };
        let packet = InFlight {
            sent_at: ready,
            deliver_at,
            direction,
            bytes,
        };
        let index = self
            .in_flight
            .partition_point(|f| f.deliver_at <= packet.deliver_at);
        self.in_flight.insert(index, packet);
    }

    fn deliver(&mut self, packet: InFlight) {
        match packet.direction {
            Direction::DhToNfcc => self.nfcc.handle_packet(&packet.bytes, packet.deliver_at),
            Direction::NfccToDh => self.dh.handle_packet(&packet.bytes, packet.deliver_at),
        }
        self.trace.push(TraceEntry {
            sent_at: packet.sent_at,
            delivered_at: packet.deliver_at,
            direction: packet.direction,
            bytes: packet.bytes,
        });
    }
}

// ---- A scripted device host -----------------------------------------------------------------

/// PN7150 start-up and card-emulation set-up as raw commands (the bytes a DH sends):
///
/// ```text
/// 20 00 01 01                   CORE_RESET_CMD, reset configuration
/// 20 01 00                      CORE_INIT_CMD (NCI 1.0)
/// 2F 02 00                      NXP proprietary extensions on
/// 20 02 04 01 80 01 01          CORE_SET_CONFIG_CMD RF_FIELD_INFO = 1
/// 21 00 04 01 04 02 02          RF_DISCOVER_MAP_CMD ISO-DEP, listen → ISO-DEP interface
/// 21 01 11 00 03 01 03 00 01 04 RF_SET_LISTEN_MODE_ROUTING_CMD: ISO-DEP → DH,
///       00 03 00 01 00 00 03 00 01 01      NFC-A → DH, NFC-B → DH (switched on)
/// 21 03 07 03 80 01 81 01 82 01 RF_DISCOVER_CMD listen A, B, F
/// ```
pub fn pn7150_setup() -> Vec<Vec<u8>> {
    let mut commands = vec![
        vec![0x20, 0x00, 0x01, 0x01],
        vec![0x20, 0x01, 0x00],
        vec![0x2F, 0x02, 0x00],
    ];
    commands.extend(listen_setup());
    commands
}

/// Generic NCI 2.0 start-up and card-emulation set-up: CORE_RESET_CMD, NCI 2.0
/// CORE_INIT_CMD (`20 01 02 00 00`, no features enabled), then the same configuration,
/// discovery map, routing and discovery as [`pn7150_setup`].
pub fn nci2_setup() -> Vec<Vec<u8>> {
    let mut commands = vec![
        vec![0x20, 0x00, 0x01, 0x01],
        vec![0x20, 0x01, 0x02, 0x00, 0x00],
    ];
    commands.extend(listen_setup());
    commands
}

fn listen_setup() -> Vec<Vec<u8>> {
    vec![
        vec![0x20, 0x02, 0x04, 0x01, 0x80, 0x01, 0x01],
        vec![0x21, 0x00, 0x04, 0x01, 0x04, 0x02, 0x02],
        vec![
            0x21, 0x01, 0x11, 0x00, 0x03, 0x01, 0x03, 0x00, 0x01, 0x04, 0x00, 0x03, 0x00, 0x01,
            0x00, 0x00, 0x03, 0x00, 0x01, 0x01,
        ],
        vec![0x21, 0x03, 0x07, 0x03, 0x80, 0x01, 0x81, 0x01, 0x82, 0x01],
    ]
}

/// A test double for the device host: sends raw commands one at a time (each after the
/// previous one's response), tracks data credits of the static RF connection from
/// RF_INTF_ACTIVATED_NTF, CORE_CONN_CREDITS_NTF and the NCI 2.0 CR field, reassembles C-APDUs,
/// has them answered by a [`CardApplet`] after an optional delay, and sends the R-APDUs
/// segmented at the announced maximum data payload, one packet per credit.
///
/// It has no recovery, no timers of its own beyond the answer delay, and no opinion about
/// what the NFCC says: it records everything in [`ScriptedDh::received`] for the test to check.
pub struct ScriptedDh<A> {
    card: A,
    commands: VecDeque<Vec<u8>>,
    awaiting: Option<(Gid, u8)>,
    out: VecDeque<Vec<u8>>,
    received: Vec<(Instant, Vec<u8>)>,
    answer_delay: Duration,
    answers: VecDeque<(Instant, Vec<u8>)>,
    tx_queue: VecDeque<Vec<u8>>,
    credits: u8,
    max_data_payload: u8,
    rx: Box<Reassembler<RX_CAPACITY, 1>>,
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<A> fmt::Debug for ScriptedDh<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedDh")
            .field("commands_left", &self.commands.len())
            .field("awaiting", &self.awaiting)
            .field("credits", &self.credits)
            .field("received", &self.received.len())
            .finish()
    }
}

impl<A: CardApplet> ScriptedDh<A> {
    /// A DH that will send `commands` in order and answer C-APDUs with `card`.
    pub fn new(commands: impl IntoIterator<Item = Vec<u8>>, card: A) -> ScriptedDh<A> {
        let mut dh = ScriptedDh {
            card,
            commands: commands.into_iter().collect(),
            awaiting: None,
            out: VecDeque::new(),
            received: Vec::new(),
            answer_delay: Duration::ZERO,
            answers: VecDeque::new(),
            tx_queue: VecDeque::new(),
            credits: 0,
            max_data_payload: 255,
            rx: Box::new(Reassembler::new()),
            exchanges: Vec::new(),
        };
        dh.next_command();
        dh
    }

    /// The card application takes `delay` to answer each C-APDU.
    pub fn with_answer_delay(mut self, delay: Duration) -> ScriptedDh<A> {
        self.answer_delay = delay;
        self
    }

    /// Queue another command, sent after the pending ones.
    pub fn push_command(&mut self, command: Vec<u8>) {
        self.commands.push_back(command);
        self.next_command();
    }

    /// Send `packet` at the next poll, without waiting for anything and without tracking an
    /// answer (for tests that break the rules on purpose).
    pub fn send_raw(&mut self, packet: Vec<u8>) {
        self.out.push_back(packet);
    }

    /// Everything the NFCC sent, with arrival times.
    pub fn received(&self) -> &[(Instant, Vec<u8>)] {
        &self.received
    }

    /// Packets received, without times.
    pub fn received_packets(&self) -> Vec<Vec<u8>> {
        self.received.iter().map(|(_, p)| p.clone()).collect()
    }

    /// `true` when every command was sent and answered.
    pub fn is_idle(&self) -> bool {
        self.commands.is_empty() && self.awaiting.is_none()
    }

    /// Credits held on the static RF connection.
    pub fn credits(&self) -> u8 {
        self.credits
    }

    /// R-APDU packets waiting for a credit.
    pub fn packets_waiting_for_credit(&self) -> usize {
        self.tx_queue.len()
    }

    /// C-APDU / R-APDU pairs the card answered.
    pub fn exchanges(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.exchanges
    }

    /// The card application.
    pub fn card(&self) -> &A {
        &self.card
    }

    /// The card application, mutably.
    pub fn card_mut(&mut self) -> &mut A {
        &mut self.card
    }

    fn next_command(&mut self) {
        if self.awaiting.is_some() {
            return;
        }
        if let Some(command) = self.commands.pop_front() {
            self.awaiting = HeaderRepr::parse_prefix(&command)
                .ok()
                .and_then(|h| match h.id {
                    PacketId::Control { gid, oid } => Some((gid, oid)),
                    PacketId::Data { .. } => None,
                });
            self.out.push_back(command);
        }
    }

    fn flush(&mut self) {
        while self.credits > 0 {
            let Some(packet) = self.tx_queue.pop_front() else {
                break;
            };
            self.credits -= 1;
            self.out.push_back(packet);
        }
    }

    fn link_ended(&mut self) {
        self.credits = 0;
        self.tx_queue.clear();
        self.answers.clear();
        self.rx.reset();
    }
}

impl<A: CardApplet> DhEndpoint for ScriptedDh<A> {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.received.push((now, packet.to_vec()));
        let Ok(header) = Packet::new_checked(packet).and_then(|p| HeaderRepr::parse(&p)) else {
            return;
        };
        let payload = packet.get(3..).unwrap_or_default();
        match (header.mt, header.id) {
            (MessageType::Response, PacketId::Control { gid, oid })
                if self.awaiting == Some((gid, oid)) && !header.pbf =>
            {
                self.awaiting = None;
                self.next_command();
            }
            // CORE_CONN_CREDITS_NTF: entries of (conn id, credits).
            (
                MessageType::Notification,
                PacketId::Control {
                    gid: Gid::Core,
                    oid: 0x06,
                },
            ) => {
                if let Some((_, entries)) = payload.split_first() {
                    for entry in entries.chunks_exact(2) {
                        if entry[0] == 0 {
                            self.credits = self.credits.saturating_add(entry[1]);
                        }
                    }
                }
                self.flush();
            }
            // RF_INTF_ACTIVATED_NTF: max data payload (octet 4), initial credits (octet 5).
            (
                MessageType::Notification,
                PacketId::Control {
                    gid: Gid::Rf,
                    oid: 0x05,
                },
            ) => {
                self.link_ended();
                if let (Some(&max), Some(&credits)) = (payload.get(4), payload.get(5)) {
                    self.max_data_payload = max.max(1);
                    self.credits = credits;
                }
            }
            // RF_DEACTIVATE_NTF.
            (
                MessageType::Notification,
                PacketId::Control {
                    gid: Gid::Rf,
                    oid: 0x06,
                },
            ) => {
                self.link_ended();
            }
            (
                MessageType::Data,
                PacketId::Data {
                    conn_id: 0,
                    credits,
                },
            ) => {
                self.credits = self.credits.saturating_add(credits);
                let command = match self.rx.push(packet) {
                    Ok(Some(message)) => message.payload.to_vec(),
                    _ => {
                        self.flush();
                        return;
                    }
                };
                let answer = self.card.process(&command);
                self.exchanges.push((command, answer.clone()));
                self.answers.push_back((now + self.answer_delay, answer));
                self.handle_timeout(now);
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.answers.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, answer)) = self.answers.pop_front() {
                if let Ok(segmenter) = Segmenter::data(0, 0, &answer, self.max_data_payload) {
                    self.tx_queue.extend(segmenter.map(|p| p.to_vec()));
                }
            }
        }
        self.flush();
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.answers.front().map(|(at, _)| *at)
    }
}

// ---- The real controller state machine as the device host -----------------------------------

/// What [`ControllerDh`] recorded from the controller's [`Event`]s, with the simulated time it
/// was polled. [`Event::Data`] is not recorded here but as a [`HostExchange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhRecord {
    /// When the event was drained (the time of the input that caused it).
    pub at: Instant,
    /// The event; never [`Event::Data`].
    pub event: Event<'static>,
}

/// One command APDU the controller delivered and what the host answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostExchange {
    /// When [`Event::Data`] was drained.
    pub received_at: Instant,
    /// The command APDU.
    pub command: Vec<u8>,
    /// The applet's response APDU.
    pub response: Vec<u8>,
    /// When it was handed to [`Controller::send_data`], or dropped because the session ended
    /// while the host was still working on it.
    pub answered_at: Instant,
    /// What [`Controller::send_data`] said; [`SendError::NoSession`] also for an answer
    /// dropped because the session ended first (it must never answer the next session's
    /// command).
    pub sent: Result<(), SendError>,
}

/// A change of the controller's [`State`] or [`Controller::poll_timeout`], seen after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhTimelineEntry {
    /// When.
    pub at: Instant,
    /// The state after the input.
    pub state: State,
    /// The timer the controller asked for after the input.
    pub timeout: Option<Instant>,
}

/// Every non-data event as an owned value, so it can outlive the controller's borrow.
fn owned_event(event: Event<'_>) -> Option<Event<'static>> {
    Some(match event {
        Event::Data(_) => return None,
        Event::Ready => Event::Ready,
        Event::Activated(activation) => Event::Activated(activation),
        Event::Deactivated(how) => Event::Deactivated(how),
        Event::FieldOn => Event::FieldOn,
        Event::FieldOff => Event::FieldOff,
        Event::RoutingProgrammed {
            mode,
            used,
            capacity,
        } => Event::RoutingProgrammed {
            mode,
            used,
            capacity,
        },
        Event::Reinitializing {
            cause,
            attempt,
            delay,
        } => Event::Reinitializing {
            cause,
            attempt,
            delay,
        },
        Event::Error(error) => Event::Error(error),
    })
}

/// The real [`Controller`] state machine as the device host of a [`Harness`].
///
/// It follows the controller's documented call order after every input: drain
/// [`Controller::poll_event`], hand each [`Event::Data`] to the [`CardApplet`] and answer with
/// [`Controller::send_data`] (at once, or after [`ControllerDh::with_answer_delay`], as a host
/// service that takes time), then let the harness poll transmits and the timer. Every event is
/// recorded with its simulated time, so tests can assert what happened and when.
///
/// The controller starts ([`Controller::start`]) at [`Instant::ZERO`] when the adapter is
/// created; [`ControllerDh::start`] starts it again (the way out of [`State::Failed`]).
pub struct ControllerDh<A> {
    controller: Box<Controller>,
    applet: A,
    answer_delay: Duration,
    /// Called when a card session ends (e.g. [`HostApps::end_session`]).
    session_end: Option<fn(&mut A, Deactivation)>,
    /// Answers waiting for their delay: when due, and the index of the exchange.
    answers: VecDeque<(Instant, usize)>,
    now: Instant,
    records: Vec<DhRecord>,
    exchanges: Vec<HostExchange>,
    timeline: Vec<DhTimelineEntry>,
    transmits: u64,
    timeouts: u64,
}

impl<A> fmt::Debug for ControllerDh<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerDh")
            .field("controller", &self.controller)
            .field("records", &self.records.len())
            .field("exchanges", &self.exchanges.len())
            .field("transmits", &self.transmits)
            .finish_non_exhaustive()
    }
}

impl<A: CardApplet> ControllerDh<A> {
    /// A controller with `config`, started at [`Instant::ZERO`], answering APDUs with `applet`.
    pub fn new(config: Config, applet: A) -> ControllerDh<A> {
        let mut dh = ControllerDh {
            controller: Box::new(Controller::new(config)),
            applet,
            answer_delay: Duration::ZERO,
            session_end: None,
            answers: VecDeque::new(),
            now: Instant::ZERO,
            records: Vec::new(),
            exchanges: Vec::new(),
            timeline: Vec::new(),
            transmits: 0,
            timeouts: 0,
        };
        dh.start(Instant::ZERO);
        dh
    }

    /// The host takes `delay` to answer each command APDU.
    pub fn with_answer_delay(mut self, delay: Duration) -> ControllerDh<A> {
        self.answer_delay = delay;
        self
    }

    /// Tell the applet when a card session ends ([`Event::Deactivated`]), e.g.
    /// `|host: &mut HostApps, _| host.end_session()`: a selection lasts one session
    /// (ISO/IEC 7816-4 §7.1).
    pub fn with_session_end(mut self, hook: fn(&mut A, Deactivation)) -> ControllerDh<A> {
        self.session_end = Some(hook);
        self
    }

    /// [`Controller::start`] at `now`: a fresh start-up (also after [`State::Failed`]).
    pub fn start(&mut self, now: Instant) {
        self.now = now;
        self.controller.start(now);
        self.after_input();
    }

    /// [`Controller::set_routes`] at `now`.
    pub fn set_routes(&mut self, routes: heapless::Vec<RoutingRule, MAX_RULES>, now: Instant) {
        self.now = now;
        self.controller.set_routes(routes, now);
        self.after_input();
    }

    /// [`Controller::set_listen`] at `now`.
    pub fn set_listen(&mut self, techs: ListenTechs, now: Instant) {
        self.now = now;
        self.controller.set_listen(techs, now);
        self.after_input();
    }

    /// [`Controller::set_enabled`] at `now`.
    pub fn set_enabled(&mut self, on: bool, now: Instant) {
        self.now = now;
        self.controller.set_enabled(on, now);
        self.after_input();
    }

    /// The controller state machine, for queries ([`Controller::state`],
    /// [`Controller::routing`], [`Controller::info`]...).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The applet.
    pub fn applet(&self) -> &A {
        &self.applet
    }

    /// The applet, mutably.
    pub fn applet_mut(&mut self) -> &mut A {
        &mut self.applet
    }

    /// Every event so far, in order.
    pub fn records(&self) -> &[DhRecord] {
        &self.records
    }

    /// The events, without times.
    pub fn events(&self) -> impl Iterator<Item = Event<'static>> + '_ {
        self.records.iter().map(|r| r.event)
    }

    /// Every command APDU and its answer, in order.
    pub fn exchanges(&self) -> &[HostExchange] {
        &self.exchanges
    }

    /// Every change of state or timer, in order.
    pub fn timeline(&self) -> &[DhTimelineEntry] {
        &self.timeline
    }

    /// Packets the controller handed to the transport so far.
    pub fn transmits(&self) -> u64 {
        self.transmits
    }

    /// Calls of [`Controller::handle_timeout`] so far.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// When the last [`Event::Ready`] was reported.
    pub fn last_ready_at(&self) -> Option<Instant> {
        self.records
            .iter()
            .rev()
            .find(|r| r.event == Event::Ready)
            .map(|r| r.at)
    }

    /// Records from index `from` on (e.g. `records().len()` taken before a tap).
    pub fn records_since(&self, from: usize) -> &[DhRecord] {
        self.records.get(from..).unwrap_or_default()
    }

    fn after_input(&mut self) {
        while let Some(event) = self.controller.poll_event() {
            let command = match event {
                Event::Data(apdu) => apdu.to_vec(),
                other => {
                    if let Some(event) = owned_event(other) {
                        self.record(event);
                    }
                    continue;
                }
            };
            let response = self.applet.process(&command);
            self.exchanges.push(HostExchange {
                received_at: self.now,
                command,
                response,
                answered_at: self.now,
                sent: Ok(()),
            });
            let index = self.exchanges.len() - 1;
            if self.answer_delay.is_zero() {
                self.answer(index);
            } else {
                self.answers
                    .push_back((self.now + self.answer_delay, index));
            }
        }
        let entry = DhTimelineEntry {
            at: self.now,
            state: self.controller.state(),
            timeout: self.controller.poll_timeout(),
        };
        let changed = self
            .timeline
            .last()
            .is_none_or(|last| (last.state, last.timeout) != (entry.state, entry.timeout));
        if changed {
            self.timeline.push(entry);
        }
    }

    fn record(&mut self, event: Event<'static>) {
        if let Event::Deactivated(how) = event {
            self.drop_answers();
            if let Some(hook) = self.session_end {
                hook(&mut self.applet, how);
            }
        }
        self.records.push(DhRecord {
            at: self.now,
            event,
        });
    }

    /// The session ended: answers still being worked on have nobody to go to.
    fn drop_answers(&mut self) {
        for (_, index) in core::mem::take(&mut self.answers) {
            if let Some(exchange) = self.exchanges.get_mut(index) {
                exchange.answered_at = self.now;
                exchange.sent = Err(SendError::NoSession);
            }
        }
    }

    /// Hand the response of exchange `index` to the controller: an input, so drain again.
    fn answer(&mut self, index: usize) {
        let now = self.now;
        let Some(exchange) = self.exchanges.get_mut(index) else {
            return;
        };
        exchange.answered_at = now;
        exchange.sent = self.controller.send_data(&exchange.response, now);
        self.after_input();
    }
}

impl<A: CardApplet> DhEndpoint for ControllerDh<A> {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.now = now;
        self.controller.handle_packet(packet, now);
        self.after_input();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.controller.poll_timeout().is_some_and(|t| t <= now) {
            self.timeouts += 1;
            self.controller.handle_timeout(now);
            self.after_input();
        }
        while self.answers.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, index)) = self.answers.pop_front() {
                self.answer(index);
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let packet = self.controller.poll_transmit()?;
        self.transmits += 1;
        Some(packet.to_vec())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let answer = self.answers.front().map(|(at, _)| *at);
        [self.controller.poll_timeout(), answer]
            .into_iter()
            .flatten()
            .min()
    }
}

// ---- A host playing several applications --------------------------------------------------

/// Object-safe applet with a way back to its concrete type, so [`HostApps::applet`] can hand
/// out a registered card for inspection.
trait HostApplet: CardApplet {
    fn as_any(&self) -> &dyn Any;
}

impl<T: CardApplet + Any> HostApplet for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct HostApp {
    name: String,
    aids: Vec<(Aid, AidMatch)>,
    applet: Box<dyn HostApplet>,
    apdus: u64,
}

/// A tiny host that plays several card applications at once and picks one by the AID of each
/// SELECT by DF name, as the host card emulation layer does (the default route is the host;
/// the host resolves every SELECT itself).
///
/// - A SELECT by DF name (ISO/IEC 7816-4 §11.2.2) is resolved among the registered AIDs:
///   exact, prefix (`F0000000000000*` takes every longer name starting with it) or subset (a
///   truncated name); the longest registered AID wins, an exact match before the others at
///   equal length. The SELECT goes to the application, which answers with its own FCI, and
///   the application stays selected for the following APDUs.
/// - A SELECT that matches nothing is answered `6A82` (file or application not found) and the
///   selection does not change.
/// - Any other APDU goes to the selected application; before any selection it is answered
///   `6F00` (no precise diagnosis).
#[derive(Default)]
pub struct HostApps {
    apps: Vec<HostApp>,
    selected: Option<usize>,
}

impl fmt::Debug for HostApps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.apps.iter().map(|a| a.name.as_str()).collect();
        f.debug_struct("HostApps")
            .field("apps", &names)
            .field("selected", &self.selected())
            .finish()
    }
}

impl HostApps {
    /// No application: every SELECT is answered `6A82`.
    pub fn new() -> HostApps {
        HostApps::default()
    }

    /// The demo host: `"emv"` — [`EmvCard::demo`] on the PPSE and its AID; `"transit"` — a
    /// [`TransitCard`] holding `transit_balance` on [`TRANSIT_AID`]; `"sweep"` — a
    /// [`SweepCard`] on the prefix `F0 00 00 00 00 00 00` of every [`sweep_aid`].
    ///
    /// [`sweep_aid`]: super::scripts::sweep_aid
    pub fn demo(transit_balance: u32) -> HostApps {
        let emv = EmvCard::demo();
        let emv_aids =
            [PPSE.as_slice(), emv.aid()].map(|aid| Aid::new(aid).map(|aid| (aid, AidMatch::Exact)));
        let transit = Aid::new(&TRANSIT_AID).map(|aid| (aid, AidMatch::Exact));
        let sweep = Aid::new(&[0xF0, 0, 0, 0, 0, 0, 0]).map(|aid| (aid, AidMatch::Prefix));
        let mut host = HostApps::new();
        // Every AID above is 5 to 16 octets long.
        host.register("emv", emv_aids.into_iter().flatten(), emv);
        host.register("transit", transit, TransitCard::new(transit_balance));
        host.register("sweep", sweep, SweepCard::new());
        host
    }

    /// Add `applet` as `name`, reached by `aids`.
    pub fn register<T: CardApplet + Any>(
        &mut self,
        name: &str,
        aids: impl IntoIterator<Item = (Aid, AidMatch)>,
        applet: T,
    ) {
        self.apps.push(HostApp {
            name: name.to_string(),
            aids: aids.into_iter().collect(),
            applet: Box::new(applet),
            apdus: 0,
        });
    }

    /// The application registered as `name`, if it is a `T`.
    pub fn applet<T: Any>(&self, name: &str) -> Option<&T> {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.applet.as_any().downcast_ref())
    }

    /// The selected application's name.
    pub fn selected(&self) -> Option<&str> {
        self.selected
            .and_then(|i| self.apps.get(i))
            .map(|a| a.name.as_str())
    }

    /// APDUs (SELECT included) the application `name` answered.
    pub fn apdus_for(&self, name: &str) -> u64 {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .map_or(0, |a| a.apdus)
    }

    /// Forget the selection: the card session ended (see [`ControllerDh::with_session_end`]).
    pub fn end_session(&mut self) {
        self.selected = None;
    }

    /// The application a SELECT of `name` reaches: the longest matching AID, exact first.
    fn resolve(&self, name: &[u8]) -> Option<usize> {
        let mut best: Option<(usize, (usize, bool))> = None;
        for (index, app) in self.apps.iter().enumerate() {
            for (aid, how) in &app.aids {
                let aid = aid.as_bytes();
                let hit = match how {
                    AidMatch::Exact => name == aid,
                    AidMatch::Prefix => name.starts_with(aid),
                    AidMatch::Subset => aid.starts_with(name),
                };
                if !hit {
                    continue;
                }
                let score = (aid.len(), *how == AidMatch::Exact);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((index, score));
                }
            }
        }
        best.map(|(index, _)| index)
    }

    fn forward(&mut self, index: usize, command: &[u8]) -> Vec<u8> {
        match self.apps.get_mut(index) {
            Some(app) => {
                app.apdus += 1;
                app.applet.process(command)
            }
            None => status(StatusWord::NO_PRECISE_DIAGNOSIS),
        }
    }
}

impl CardApplet for HostApps {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        let select = CommandApdu::parse(command)
            .ok()
            .and_then(|apdu| select_by_df_name(&apdu).map(|s| self.resolve(s.name)));
        match (select, self.selected) {
            (Some(Some(index)), _) => {
                self.selected = Some(index);
                self.forward(index, command)
            }
            (Some(None), _) => status(StatusWord::FILE_NOT_FOUND),
            (None, Some(index)) => self.forward(index, command),
            (None, None) => status(StatusWord::NO_PRECISE_DIAGNOSIS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scripts::{select_aid, sweep_aid, TRANSIT_READ_BALANCE, UNKNOWN_AID};

    fn sw(response: &[u8]) -> Option<StatusWord> {
        StatusWord::from_response(response)
    }

    #[test]
    fn host_apps_route_by_the_selected_aid() {
        let mut host = HostApps::demo(500);
        // Before any selection: 6F00.
        assert_eq!(
            sw(&host.process(&TRANSIT_READ_BALANCE)),
            Some(StatusWord::NO_PRECISE_DIAGNOSIS)
        );
        // The transit application answers its SELECT with its FCI and stays selected.
        assert_eq!(
            sw(&host.process(&select_aid(&TRANSIT_AID))),
            Some(StatusWord::NO_ERROR)
        );
        assert_eq!(host.selected(), Some("transit"));
        // Balance 500 (0x1F4) ‖ counter 0, then 9000.
        assert_eq!(
            host.process(&TRANSIT_READ_BALANCE),
            [0x00, 0x00, 0x01, 0xF4, 0x00, 0x00, 0x00, 0x00, 0x90, 0x00]
        );
        // An unknown AID: 6A82 from the host, the selection unchanged.
        assert_eq!(
            sw(&host.process(&select_aid(&UNKNOWN_AID))),
            Some(StatusWord::FILE_NOT_FOUND)
        );
        assert_eq!(host.selected(), Some("transit"));
        assert_eq!(host.apdus_for("transit"), 2);
        // A prefix registration takes every longer AID starting with it.
        assert_eq!(
            sw(&host.process(&select_aid(&sweep_aid(7)))),
            Some(StatusWord::NO_ERROR)
        );
        assert_eq!(host.selected(), Some("sweep"));
        assert_eq!(
            host.applet::<SweepCard>("sweep").map(SweepCard::selects),
            Some(1)
        );
        assert!(host.applet::<TransitCard>("sweep").is_none());
        host.end_session();
        assert_eq!(host.selected(), None);
    }

    #[test]
    fn the_longest_registered_aid_wins_and_exact_beats_prefix() {
        let aid = |bytes: &[u8]| Aid::new(bytes).unwrap();
        let named = |name: &'static str| move |_: &[u8]| name.as_bytes().to_vec();
        let mut host = HostApps::new();
        host.register(
            "short",
            [(aid(&[0xA0, 0, 0, 0, 4]), AidMatch::Prefix)],
            named("short"),
        );
        host.register(
            "long",
            [(aid(&[0xA0, 0, 0, 0, 4, 0x10]), AidMatch::Prefix)],
            named("long"),
        );
        host.register(
            "exact",
            [(aid(&[0xA0, 0, 0, 0, 4, 0x10]), AidMatch::Exact)],
            named("exact"),
        );
        host.register(
            "subset",
            [(aid(&[0xB0, 1, 2, 3, 4, 5, 6, 7]), AidMatch::Subset)],
            named("subset"),
        );
        let select = |host: &mut HostApps, name: &[u8]| host.process(&select_aid(name));
        assert_eq!(select(&mut host, &[0xA0, 0, 0, 0, 4, 0x10]), b"exact");
        assert_eq!(select(&mut host, &[0xA0, 0, 0, 0, 4, 0x10, 0x10]), b"long");
        assert_eq!(select(&mut host, &[0xA0, 0, 0, 0, 4, 0x20]), b"short");
        // A truncated name reaches the application registered with the whole AID.
        assert_eq!(select(&mut host, &[0xB0, 1, 2, 3, 4]), b"subset");
        assert_eq!(
            sw(&select(&mut host, &[0xA0, 0, 0, 0, 3])),
            Some(StatusWord::FILE_NOT_FOUND)
        );
    }

    #[test]
    fn controller_dh_answers_the_first_command_of_a_pn7150() {
        let dh = ControllerDh::new(Config::default(), HostApps::demo(0));
        let mut h = Harness::new(dh, crate::sim::Nfcc::pn7150());
        h.run_until_idle().unwrap();
        assert_eq!(h.trace()[0].bytes, [0x20, 0x00, 0x01, 0x01]);
        assert_eq!(h.dh.controller().state(), State::Discovery);
        assert_eq!(h.dh.last_ready_at(), Some(Instant::ZERO));
        // Every packet it sent was counted; no timer fired on a healthy start-up.
        let sent = h
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::DhToNfcc)
            .count();
        assert_eq!(h.dh.transmits(), sent as u64);
        assert_eq!(h.dh.timeouts(), 0);
        assert_eq!(
            h.dh.timeline().last().map(|t| t.state),
            Some(State::Discovery)
        );
    }
}
