//! The device-host state machine `libnci::controller::Controller`, wired to the virtual
//! controller of `libnci::sim` (a PN7150 or an NCI 2.0 NFCC) and driven by a tiny op-code
//! interpreter: the input decides which packet crosses next, which is dropped, damaged,
//! replayed or made up, when time advances, what the reader does and what the host asks.
//!
//! Input: a configuration byte, then one op-code byte per step with its operands (see
//! [`World::step`]). Pumping packets both ways brings the controller up and through taps; the
//! other ops break it in every way the wire allows.
//!
//! Checks (the call-order contract of the module documentation, from the outside):
//! - it never panics, and `poll_transmit` / `poll_event` run dry within a bounded number of
//!   calls after every input;
//! - everything it transmits is a well-formed NCI packet: a command that reassembles without
//!   interleaving and parses as a known command under NCI 1.0 or 2.0, or a data packet on the
//!   static RF connection;
//! - one command at a time (NCI 1.0 §3.2): no command but CORE_RESET_CMD leaves while an
//!   earlier one has neither been answered by a response packet nor timed out;
//! - while a command waits for its response, or a back-off runs, a timer is armed;
//! - `handle_timeout` at the deadline consumes it: the timer does not stay in the past;
//! - `send_data` is accepted only when a command APDU (`Event::Data`) awaits its answer;
//! - on a calm link — packets only delivered in order, time never advanced, no forced restart —
//!   the two independently written sides always agree: the controller never re-initialises,
//!   the virtual NFCC never sees a malformed packet, and once every packet has crossed the
//!   controller is not left waiting in `Initializing` or `Reconfiguring` (a hang).
#![no_main]

use std::collections::VecDeque;
use std::sync::OnceLock;

use heapless::Vec as HVec;
use libfuzzer_sys::fuzz_target;
use libnci::controller::{Config, Controller, Event, ListenTechs, Param, State, MAX_C_APDU};
use libnci::routing::{Aid, AidMatch, RoutingRule, MAX_RULES};
use libnci::sim::{Nfcc, NfccConfig};
use libnci::time::{Duration, Instant};
use libnci::wire::routing::PowerState;
use libnci::wire::segment::Reassembler;
use libnci::wire::{
    DeactivationReason, Gid, HeaderRepr, Message, MessageType, NciVersion, Packet, PacketId,
    RfProtocol, RfTechnology,
};
use nfcd_fuzz::Input;

/// Generous bound on what one input may produce; the real numbers are a handful.
const DRAIN_LIMIT: usize = 4096;

/// Command APDUs a payment terminal or transit gate sends.
const APDUS: [&[u8]; 5] = [
    // SELECT 2PAY.SYS.DDF01 (EMV PPSE).
    &[
        0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44,
        0x44, 0x46, 0x30, 0x31, 0x00,
    ],
    // SELECT A0000000031010 (Visa).
    &[
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00,
    ],
    // GET PROCESSING OPTIONS.
    &[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00],
    // READ RECORD SFI 1 record 1.
    &[0x00, 0xB2, 0x01, 0x0C, 0x00],
    // An extended-length case 2E command asking for 65 536 octets.
    &[0x00, 0xCA, 0x00, 0x00, 0x00, 0x00, 0x00],
];

struct World {
    ctl: Box<Controller>,
    nfcc: Nfcc,
    now: Instant,
    to_nfcc: VecDeque<Vec<u8>>,
    to_dh: VecDeque<Vec<u8>>,
    /// Commands the controller sent, reassembled, to check they parse.
    sent: Box<Reassembler<4096, 1>>,
    /// Name of the command sent and neither answered nor timed out since.
    outstanding: Option<&'static str>,
    /// An `Event::Data` has not been answered yet.
    answer_owed: bool,
    /// No packet was lost, damaged, replayed or made up, time never advanced and `start` was
    /// not called again: nothing the controller should have to recover from.
    calm: bool,
}

/// `NFCD_FUZZ_TRACE=1` prints every op and event, to follow a crashing input.
fn tracing() -> bool {
    static TRACING: OnceLock<bool> = OnceLock::new();
    *TRACING.get_or_init(|| std::env::var_os("NFCD_FUZZ_TRACE").is_some())
}

fn is_response(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b >> 5 == 0b010)
}

impl World {
    fn new(input: &mut Input<'_>) -> World {
        let flags = input.u8();
        let mut config = Config {
            field_info: flags & 0x01 != 0,
            max_reinit_attempts: 1 + (flags >> 5),
            ..Config::default()
        };
        if flags & 0x04 != 0 {
            // PN7150 clock setting (UM10936 §10: CLOCK_SEL_CFG, read at boot): written
            // values that need a reset take the second start-up pass.
            if let Ok(param) = Param::nxp(0xA003, &[0x08]) {
                let _ = config.nxp_params.push(param);
            }
        }
        if flags & 0x08 != 0 {
            config.historical_bytes = HVec::from_slice(&[0x80, 0x73, 0xC0, 0x21]).ok();
        }
        if flags & 0x10 != 0 {
            config.fwi = None;
        }
        let nfcc_config = if flags & 0x02 == 0 {
            NfccConfig::pn7150()
        } else {
            NfccConfig::nci2()
        };
        let mut world = World {
            ctl: Box::new(Controller::new(config)),
            nfcc: Nfcc::new(nfcc_config),
            now: Instant::ZERO,
            to_nfcc: VecDeque::new(),
            to_dh: VecDeque::new(),
            sent: Box::new(Reassembler::new()),
            outstanding: None,
            answer_owed: false,
            calm: true,
        };
        world.nfcc.power_on(world.now);
        world.ctl.start(world.now);
        world.drain();
        world
    }

    /// Collect what both sides produced and check the controller's outputs.
    fn drain(&mut self) {
        let mut transmitted = 0;
        while let Some(packet) = self.ctl.poll_transmit() {
            transmitted += 1;
            assert!(transmitted < DRAIN_LIMIT, "poll_transmit never runs dry");
            if tracing() {
                eprintln!("  DH -> NFCC {:02X?}", &packet[..]);
            }
            self.check_transmit(&packet);
            self.to_nfcc.push_back(packet.to_vec());
        }
        let mut events = 0;
        while let Some(event) = self.ctl.poll_event() {
            if tracing() {
                eprintln!("  event {event:?}");
            }
            events += 1;
            assert!(events < DRAIN_LIMIT, "poll_event never runs dry");
            match event {
                Event::Data(apdu) => {
                    assert!(apdu.len() <= MAX_C_APDU);
                    self.answer_owed = true;
                }
                Event::Activated(_) | Event::Deactivated(_) => self.answer_owed = false,
                Event::Reinitializing { cause, .. } => {
                    assert!(!self.calm, "re-initialisation on a calm link: {cause:?}");
                    // Whatever was waiting is abandoned; the next command is CORE_RESET_CMD.
                    self.answer_owed = false;
                    self.outstanding = None;
                }
                _ => {}
            }
        }
        if self.calm {
            assert_eq!(
                self.nfcc.stats().malformed_packets,
                0,
                "the NFCC got a malformed packet"
            );
        }
        while let Some(t) = self.nfcc.poll_transmit() {
            self.to_dh.push_back(t.bytes);
        }
        while self.nfcc.poll_rf_event().is_some() {}

        if matches!(self.ctl.state(), State::Failed | State::Off) {
            self.outstanding = None;
        }
        let timer = self.ctl.poll_timeout();
        if let Some(command) = self.outstanding {
            assert!(
                timer.is_some(),
                "{command} awaits its response without a timer"
            );
        }
        if self.ctl.state() == State::Recovering {
            assert!(timer.is_some(), "a back-off without a timer");
        }
    }

    fn check_transmit(&mut self, packet: &[u8]) {
        let header = Packet::new_checked(packet)
            .and_then(|p| HeaderRepr::parse(&p))
            .unwrap_or_else(|e| panic!("malformed packet sent: {packet:02X?}: {e}"));
        match (header.mt, header.id) {
            (MessageType::Command, PacketId::Control { gid, oid }) => {
                let whole = match self.sent.push(packet) {
                    Ok(Some(whole)) => whole,
                    Ok(None) => return,
                    Err(e) => panic!("command segments {packet:02X?}: {e}"),
                };
                let message = Message::parse(whole.mt, whole.id, whole.payload, NciVersion::V1_0)
                    .or_else(|_| {
                        Message::parse(whole.mt, whole.id, whole.payload, NciVersion::V2_0)
                    })
                    .unwrap_or_else(|e| panic!("unparseable command {packet:02X?}: {e}"));
                let reset = gid == Gid::Core && oid == 0x00;
                if let (Some(waiting), false) = (self.outstanding, reset) {
                    panic!(
                        "{} sent while {waiting} awaits its response",
                        message.name()
                    );
                }
                self.outstanding = Some(message.name());
            }
            (MessageType::Data, PacketId::Data { conn_id, .. }) => {
                assert_eq!(conn_id, 0, "data on a connection never opened");
            }
            _ => panic!("the device host sent {packet:02X?}"),
        }
    }

    fn feed_controller(&mut self, packet: &[u8]) {
        if tracing() {
            eprintln!("  NFCC -> DH {packet:02X?}");
        }
        if is_response(packet) {
            self.outstanding = None;
        }
        self.ctl.handle_packet(packet, self.now);
    }

    fn deliver_to_nfcc(&mut self) -> bool {
        let Some(packet) = self.to_nfcc.pop_front() else {
            return false;
        };
        self.nfcc.handle_packet(&packet, self.now);
        true
    }

    fn deliver_to_dh(&mut self) -> bool {
        let Some(packet) = self.to_dh.pop_front() else {
            return false;
        };
        self.feed_controller(&packet);
        true
    }

    /// Fire whatever timers are due at `self.now`.
    fn timers(&mut self) {
        for _ in 0..16 {
            match self.ctl.poll_timeout() {
                Some(deadline) if deadline <= self.now => {
                    self.outstanding = None;
                    self.ctl.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        if let Some(deadline) = self.ctl.poll_timeout() {
            assert!(
                deadline > self.now,
                "the timer stays at {deadline:?} after firing"
            );
        }
        if self.nfcc.poll_timeout().is_some_and(|d| d <= self.now) {
            self.nfcc.handle_timeout(self.now);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.timers();
    }

    fn send_data(&mut self, apdu: &[u8]) {
        let owed = self.answer_owed;
        if self.ctl.send_data(apdu, self.now).is_ok() {
            assert!(
                owed,
                "send_data accepted with no command APDU awaiting an answer"
            );
            self.answer_owed = false;
        }
    }

    fn routes(input: &mut Input<'_>) -> HVec<RoutingRule, MAX_RULES> {
        let mut routes = HVec::new();
        for _ in 0..input.u8() % 6 {
            let kind = input.u8();
            let route = input.u8() & 0x81;
            let power_state = PowerState::from_bits_retain(input.u8() & 0x3F);
            let rule = match kind % 3 {
                0 => RoutingRule::Technology {
                    route,
                    power_state,
                    technology: RfTechnology::from(kind >> 4 & 0x03),
                },
                1 => RoutingRule::Protocol {
                    route,
                    power_state,
                    protocol: RfProtocol::from(kind >> 4 & 0x07),
                },
                _ => {
                    let Ok(aid) = Aid::new(input.len_prefixed()) else {
                        continue;
                    };
                    RoutingRule::Aid {
                        route,
                        power_state,
                        aid,
                        matching: match kind >> 4 & 0x03 {
                            0 => AidMatch::Exact,
                            1 => AidMatch::Prefix,
                            _ => AidMatch::Subset,
                        },
                    }
                }
            };
            let _ = routes.push(rule);
        }
        routes
    }

    /// Deliver packets both ways until both sides are quiet (or `rounds` run out).
    fn pump(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let moved = self.deliver_to_nfcc() | self.deliver_to_dh();
            self.drain();
            if !moved {
                break;
            }
        }
    }

    /// At the end of a calm run: let everything cross, then the controller must have settled.
    fn settle(&mut self) {
        if !self.calm {
            return;
        }
        self.pump(4096);
        if self.to_nfcc.is_empty() && self.to_dh.is_empty() {
            let state = self.ctl.state();
            assert!(
                !matches!(state, State::Initializing | State::Reconfiguring),
                "stuck in {state:?} with nothing in flight"
            );
        }
    }

    /// One operation.
    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.u8() % 21;
        if tracing() {
            eprintln!("{:?} {:?}: op {op}", self.now, self.ctl.state());
        }
        if (4..=10).contains(&op) || op == 20 {
            self.calm = false;
        }
        match op {
            // Packets cross one at a time, or until both sides are quiet.
            0 => {
                self.deliver_to_nfcc();
            }
            1 => {
                self.deliver_to_dh();
            }
            2 | 3 => self.pump(256),
            // The link loses, damages, replays or makes up packets to the host.
            4 => {
                self.to_dh.pop_front();
            }
            5 => {
                let at = usize::from(input.u8());
                let xor = input.u8() | 0x01;
                if let Some(packet) = self.to_dh.front_mut() {
                    let at = at % packet.len().max(1);
                    if let Some(b) = packet.get_mut(at) {
                        *b ^= xor;
                    }
                }
            }
            6 => {
                let packet = input.len_prefixed().to_vec();
                self.feed_controller(&packet);
            }
            7 => {
                let mut packet = input.take(3).to_vec();
                packet.resize(3, 0);
                let len = usize::from(packet[2]);
                packet.extend_from_slice(input.take(len));
                packet.resize(3 + len, 0);
                self.feed_controller(&packet);
            }
            8 => {
                if let Some(packet) = self.to_dh.front().cloned() {
                    self.to_dh.push_front(packet);
                }
            }
            // Time.
            9 => {
                let ms = u64::from(input.u16() % 5000);
                self.advance(Duration::from_millis(ms));
            }
            10 => {
                let next = [self.ctl.poll_timeout(), self.nfcc.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(next) = next {
                    self.now = self.now.max(next);
                }
                self.timers();
            }
            // The reader.
            11 => self.nfcc.reader_field(input.bool(), self.now),
            12 => {
                let tech = if input.bool() {
                    RfTechnology::NfcB
                } else {
                    RfTechnology::NfcA
                };
                let _ = self.nfcc.reader_activate(tech, self.now);
            }
            13 => {
                let choice = input.u8();
                let apdu = match choice {
                    0..=199 => APDUS[usize::from(choice) % APDUS.len()].to_vec(),
                    200..=239 => input.len_prefixed().to_vec(),
                    _ => {
                        // A long extended-length command: several data packets.
                        let n = usize::from(input.u16() % 1024) + 1;
                        let mut apdu = vec![0x80, 0xE2, 0x00, 0x00, 0x00];
                        apdu.extend_from_slice(&(n as u16).to_be_bytes());
                        apdu.extend((0..n).map(|i| i as u8));
                        apdu
                    }
                };
                let _ = self.nfcc.reader_send_apdu(&apdu, self.now);
            }
            14 => {
                let reason = DeactivationReason::from(input.u8() % 4);
                let _ = self.nfcc.reader_deactivate(reason, self.now);
            }
            // The host.
            15 => {
                let mut apdu = input.len_prefixed().to_vec();
                apdu.extend_from_slice(&[0x90, 0x00]);
                self.send_data(&apdu);
            }
            16 => {
                let n = usize::from(input.u16() % 1200);
                let mut apdu: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                apdu.extend_from_slice(&[0x90, 0x00]);
                self.send_data(&apdu);
            }
            17 => {
                let routes = World::routes(input);
                self.ctl.set_routes(routes, self.now);
            }
            18 => {
                let bits = input.u8();
                let techs = ListenTechs {
                    a: bits & 1 != 0,
                    b: bits & 2 != 0,
                    f: bits & 4 != 0,
                };
                self.ctl.set_listen(techs, self.now);
            }
            19 => self.ctl.set_enabled(input.bool(), self.now),
            _ => {
                self.outstanding = None;
                self.ctl.start(self.now);
            }
        }
        self.drain();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut world = World::new(&mut input);
    while !input.is_empty() {
        world.step(&mut input);
    }
    world.settle();
});
