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
//! [`CardApplet`]; the real controller state machine plugs in through [`DhEndpoint`].
//!
//! Order of work at one instant (repeated until nothing happens, then the clock moves on):
//! due timeouts (DH, NFCC), DH output onto the bus, NFCC output onto the bus, deliveries that
//! are due, then the reader.

use std::collections::VecDeque;
use std::fmt;
use std::vec::Vec;

use super::bus::{BusSpeed, BusStats, Direction, I2cBus};
use super::cards::CardApplet;
use super::nfcc::{NfccEndpoint, RX_CAPACITY};
use super::reader::{Reader, TapReport};
use super::scripts::Hex;
use crate::time::{Duration, Instant};
use crate::wire::segment::{Reassembler, Segmenter};
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
        write!(f, "{} {arrow} {}", self.delivered_at, Hex(&self.bytes))
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
        self.steps = 0;
        self.reader = Some(reader);
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
