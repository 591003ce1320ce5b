//! A transcript harness for the controller state machine, after libncicore's unit tests: each
//! test is a list of what the controller must send next (`expect_cmd`), what the NFCC answers
//! (`queue_rsp`, `queue_ntf`, `queue_data`), simulated time (`advance`) and the events the host
//! must see (`expect_event`). Byte strings are written in hex as in NCI traces.
//!
//! Time is simulated: the harness owns the clock and fires the controller's timer exactly when
//! `poll_timeout` asks, so timeouts and back-offs are deterministic.

#![allow(dead_code)] // each test file uses part of the harness

use std::collections::VecDeque;

use libnci::controller::{
    Activation, Config, Controller, ControllerError, Deactivation, Event, ReinitCause, SendError,
    State,
};
use libnci::routing::RoutingMode;
use libnci::time::{Duration, Instant};

/// Parse "20 00 01 01" (spaces optional) into bytes.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not a hex digit in {s:?}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// Hex with spaces, for assertion messages.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An event with its data copied out, so that it outlives the controller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Ready,
    Activated(Activation),
    Data(Vec<u8>),
    Deactivated(Deactivation),
    FieldOn,
    FieldOff,
    RoutingProgrammed {
        mode: RoutingMode,
        used: usize,
        capacity: usize,
    },
    Reinitializing {
        cause: ReinitCause,
        attempt: u8,
        delay: Duration,
    },
    Error(ControllerError),
}

impl From<Event<'_>> for Ev {
    fn from(event: Event<'_>) -> Ev {
        match event {
            Event::Ready => Ev::Ready,
            Event::Activated(a) => Ev::Activated(a),
            Event::Data(d) => Ev::Data(d.to_vec()),
            Event::Deactivated(d) => Ev::Deactivated(d),
            Event::FieldOn => Ev::FieldOn,
            Event::FieldOff => Ev::FieldOff,
            Event::RoutingProgrammed {
                mode,
                used,
                capacity,
            } => Ev::RoutingProgrammed {
                mode,
                used,
                capacity,
            },
            Event::Reinitializing {
                cause,
                attempt,
                delay,
            } => Ev::Reinitializing {
                cause,
                attempt,
                delay,
            },
            Event::Error(e) => Ev::Error(e),
        }
    }
}

/// The controller under test, a simulated clock and the events seen so far.
pub struct Transcript {
    pub ctl: Box<Controller>,
    now: Instant,
    events: VecDeque<Ev>,
}

impl Transcript {
    /// A controller with `config`, started at time zero.
    pub fn new(config: Config) -> Transcript {
        let mut t = Transcript {
            ctl: Box::new(Controller::new(config)),
            now: Instant::ZERO,
            events: VecDeque::new(),
        };
        t.ctl.start(t.now);
        t.drain();
        t
    }

    /// A controller with the default configuration (ISO-DEP host card emulation on A and B).
    pub fn default_config() -> Transcript {
        Transcript::new(Config::default())
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    fn drain(&mut self) {
        while let Some(event) = self.ctl.poll_event() {
            self.events.push_back(Ev::from(event));
        }
    }

    /// The controller must transmit exactly these bytes next.
    #[track_caller]
    pub fn expect_cmd(&mut self, bytes: &str) {
        self.expect_bytes(&hex(bytes));
    }

    /// The controller must transmit exactly these bytes next.
    #[track_caller]
    pub fn expect_bytes(&mut self, want: &[u8]) {
        match self.ctl.poll_transmit() {
            Some(got) => assert_eq!(
                to_hex(&got),
                to_hex(want),
                "transmitted packet differs (state {:?})",
                self.ctl.state()
            ),
            None => panic!(
                "expected {} but nothing was transmitted (state {:?}, events {:?})",
                to_hex(want),
                self.ctl.state(),
                self.events
            ),
        }
    }

    /// Nothing more to transmit now.
    #[track_caller]
    pub fn expect_no_transmit(&mut self) {
        if let Some(got) = self.ctl.poll_transmit() {
            panic!("unexpected transmit {}", to_hex(&got));
        }
    }

    /// The NFCC sends a packet (response, notification or data; the names only document).
    pub fn queue(&mut self, bytes: &[u8]) {
        self.ctl.handle_packet(bytes, self.now);
        self.drain();
    }

    /// The NFCC answers.
    pub fn queue_rsp(&mut self, bytes: &str) {
        self.queue(&hex(bytes));
    }

    /// The NFCC notifies.
    pub fn queue_ntf(&mut self, bytes: &str) {
        self.queue(&hex(bytes));
    }

    /// The NFCC sends a data packet.
    pub fn queue_data(&mut self, bytes: &str) {
        self.queue(&hex(bytes));
    }

    /// `expect_cmd(cmd)` then `queue_rsp(rsp)`.
    #[track_caller]
    pub fn exchange(&mut self, cmd: &str, rsp: &str) {
        self.expect_cmd(cmd);
        self.expect_no_transmit();
        self.queue_rsp(rsp);
    }

    /// Let `ms` milliseconds pass, firing the controller's timer whenever it is due.
    pub fn advance(&mut self, ms: u64) {
        self.advance_by(Duration::from_millis(ms));
    }

    pub fn advance_by(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..1000 {
            match self.ctl.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.ctl.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// The next event must be `want`.
    #[track_caller]
    pub fn expect_event(&mut self, want: Ev) {
        assert_eq!(self.events.pop_front(), Some(want), "next event");
    }

    /// The next event must satisfy `pred`; returns it.
    #[track_caller]
    pub fn expect_event_where(&mut self, what: &str, pred: impl Fn(&Ev) -> bool) -> Ev {
        match self.events.pop_front() {
            Some(ev) if pred(&ev) => ev,
            other => panic!("expected {what}, got {other:?}"),
        }
    }

    /// The next event must be `Reinitializing`; returns its cause.
    #[track_caller]
    pub fn expect_reinit(&mut self) -> ReinitCause {
        match self.events.pop_front() {
            Some(Ev::Reinitializing { cause, .. }) => cause,
            other => panic!("expected Reinitializing, got {other:?}"),
        }
    }

    /// The next event must be `Data`; returns the APDU.
    #[track_caller]
    pub fn expect_data(&mut self) -> Vec<u8> {
        match self.events.pop_front() {
            Some(Ev::Data(apdu)) => apdu,
            other => panic!("expected Data, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn expect_no_event(&mut self) {
        assert_eq!(self.events.pop_front(), None, "no more events expected");
    }

    pub fn events(&self) -> &VecDeque<Ev> {
        &self.events
    }

    #[track_caller]
    pub fn expect_state(&self, state: State) {
        assert_eq!(self.ctl.state(), state);
    }

    pub fn send_data(&mut self, apdu: &[u8]) -> Result<(), SendError> {
        let result = self.ctl.send_data(apdu, self.now);
        self.drain();
        result
    }

    pub fn set_routes(&mut self, routes: heapless::Vec<libnci::routing::RoutingRule, 64>) {
        self.ctl.set_routes(routes, self.now);
        self.drain();
    }

    pub fn set_listen(&mut self, techs: libnci::controller::ListenTechs) {
        self.ctl.set_listen(techs, self.now);
        self.drain();
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.ctl.set_enabled(on, self.now);
        self.drain();
    }

    pub fn start(&mut self) {
        self.ctl.start(self.now);
        self.drain();
    }
}

// ---------------------------------------------------------------------------------------------
// PN7150 (NCI 1.0, NXP) traffic
// ---------------------------------------------------------------------------------------------

pub mod pn7150 {
    /// CORE_RESET_CMD, reset configuration.
    pub const CORE_RESET_CMD: &str = "20 00 01 01";
    /// CORE_RESET_RSP: OK, NCI 1.0, configuration reset.
    pub const CORE_RESET_RSP: &str = "40 00 03 00 10 01";
    /// CORE_INIT_CMD (NCI 1.0: no payload).
    pub const CORE_INIT_CMD: &str = "20 01 00";
    /// CORE_INIT_RSP of a PN7150: features 03 1E 03 00, 8 interfaces, 2 logical connections,
    /// routing table 720 (0x02D0), control payload 255, large parameters 2, NXP (0x04),
    /// HW 0x88, ROM 0x10, FW 01.A0.
    pub const CORE_INIT_RSP: &str =
        "40 01 19 00 03 1E 03 00 08 00 01 02 03 80 81 82 83 02 D0 02 FF 02 00 04 88 10 01 A0";
    /// NCI_PROPRIETARY_ACT_CMD.
    pub const NCI_PROPRIETARY_ACT_CMD: &str = "2F 02 00";
    /// NCI_PROPRIETARY_ACT_RSP: OK and four octets of firmware build.
    pub const NCI_PROPRIETARY_ACT_RSP: &str = "4F 02 05 00 00 00 00 00";
    /// CORE_GET_CONFIG_CMD: LA_SEL_INFO, LB_SENSB_INFO, LI_FWI, RF_FIELD_INFO.
    pub const CORE_GET_CONFIG_CMD: &str = "20 03 05 04 32 38 58 80";
    /// CORE_GET_CONFIG_RSP after a configuration reset: LA_SEL_INFO 0x60, LB_SENSB_INFO 0x01,
    /// LI_FWI 0x0E, RF_FIELD_INFO 0x00.
    pub const CORE_GET_CONFIG_RSP: &str = "40 03 0E 00 04 32 01 60 38 01 01 58 01 0E 80 01 00";
    /// CORE_GET_CONFIG_RSP where every value already is what the host wants.
    pub const CORE_GET_CONFIG_RSP_MATCHING: &str =
        "40 03 0E 00 04 32 01 20 38 01 01 58 01 07 80 01 01";
    /// CORE_SET_CONFIG_CMD of the three that differ: LA_SEL_INFO 0x20, LI_FWI 7,
    /// RF_FIELD_INFO 1.
    pub const CORE_SET_CONFIG_CMD: &str = "20 02 0A 03 32 01 20 58 01 07 80 01 01";
    /// CORE_SET_CONFIG_RSP: OK, no invalid parameter.
    pub const CORE_SET_CONFIG_RSP: &str = "40 02 02 00 00";
    /// NFCEE_DISCOVER_CMD: enable.
    pub const NFCEE_DISCOVER_CMD: &str = "22 00 01 01";
    /// NFCEE_DISCOVER_RSP: OK, no NFCEE.
    pub const NFCEE_DISCOVER_RSP: &str = "42 00 02 00 00";
    /// RF_DISCOVER_MAP_CMD: ISO-DEP, listen, ISO-DEP interface.
    pub const RF_DISCOVER_MAP_CMD: &str = "21 00 04 01 04 02 02";
    /// RF_DISCOVER_MAP_RSP: OK.
    pub const RF_DISCOVER_MAP_RSP: &str = "41 00 01 00";
    /// RF_SET_LISTEN_MODE_ROUTING_CMD, mixed table: ISO-DEP → DH, NFC-A → DH, NFC-B → DH,
    /// switched on.
    pub const RF_SET_LISTEN_MODE_ROUTING_CMD: &str =
        "21 01 11 00 03 01 03 00 01 04 00 03 00 01 00 00 03 00 01 01";
    /// RF_SET_LISTEN_MODE_ROUTING_RSP: OK.
    pub const RF_SET_LISTEN_MODE_ROUTING_RSP: &str = "41 01 01 00";
    /// RF_DISCOVER_CMD: NFC-A passive listen, NFC-B passive listen.
    pub const RF_DISCOVER_CMD: &str = "21 03 05 02 80 01 81 01";
    /// RF_DISCOVER_RSP: OK.
    pub const RF_DISCOVER_RSP: &str = "41 03 01 00";
    /// RF_INTF_ACTIVATED_NTF: NFC-A listen, ISO-DEP interface and protocol, max payload 255,
    /// 1 credit, RATS parameter 0x80 (FSD 256, DID 0).
    pub const RF_INTF_ACTIVATED_NTF_LISTEN_A: &str = "61 05 0C 01 02 04 80 FF 01 00 80 00 00 01 80";
    /// CORE_CONN_CREDITS_NTF: connection 0, 1 credit.
    pub const CORE_CONN_CREDITS_NTF: &str = "60 06 03 01 00 01";
    /// RF_DEACTIVATE_NTF: discovery, RF link loss.
    pub const RF_DEACTIVATE_NTF_LINK_LOSS: &str = "61 06 02 03 02";
    /// RF_DEACTIVATE_NTF: discovery, endpoint request.
    pub const RF_DEACTIVATE_NTF_ENDPOINT: &str = "61 06 02 03 01";
    /// RF_FIELD_INFO_NTF: field on / off.
    pub const RF_FIELD_INFO_NTF_ON: &str = "61 07 01 01";
    pub const RF_FIELD_INFO_NTF_OFF: &str = "61 07 01 00";
}

/// One start-up step: the command, its good response, a failed one, a broken one.
pub struct Step {
    pub name: &'static str,
    pub cmd: &'static str,
    pub rsp: &'static str,
    pub error: &'static str,
    pub broken: &'static str,
}

/// The PN7150 start-up, step by step.
pub const PN7150_STEPS: &[Step] = &[
    Step {
        name: "CORE_RESET",
        cmd: pn7150::CORE_RESET_CMD,
        rsp: pn7150::CORE_RESET_RSP,
        error: "40 00 03 03 10 01",
        broken: "40 00 02 00 10",
    },
    Step {
        name: "CORE_INIT",
        cmd: pn7150::CORE_INIT_CMD,
        rsp: pn7150::CORE_INIT_RSP,
        error: "40 01 01 03",
        broken: "40 01 05 00 03 1E 03 00",
    },
    Step {
        name: "NCI_PROPRIETARY_ACT",
        cmd: pn7150::NCI_PROPRIETARY_ACT_CMD,
        rsp: pn7150::NCI_PROPRIETARY_ACT_RSP,
        error: "4F 02 01 03",
        broken: "4F 02 00",
    },
    Step {
        name: "CORE_GET_CONFIG",
        cmd: pn7150::CORE_GET_CONFIG_CMD,
        rsp: pn7150::CORE_GET_CONFIG_RSP,
        error: "40 03 02 03 00",
        broken: "40 03 05 00 02 32 01 60",
    },
    Step {
        name: "CORE_SET_CONFIG",
        cmd: pn7150::CORE_SET_CONFIG_CMD,
        rsp: pn7150::CORE_SET_CONFIG_RSP,
        error: "40 02 02 03 00",
        broken: "40 02 01 00",
    },
    Step {
        name: "NFCEE_DISCOVER",
        cmd: pn7150::NFCEE_DISCOVER_CMD,
        rsp: pn7150::NFCEE_DISCOVER_RSP,
        error: "42 00 02 03 00",
        broken: "42 00 01 00",
    },
    Step {
        name: "RF_DISCOVER_MAP",
        cmd: pn7150::RF_DISCOVER_MAP_CMD,
        rsp: pn7150::RF_DISCOVER_MAP_RSP,
        error: "41 00 01 03",
        broken: "41 00 00",
    },
    Step {
        name: "RF_SET_LISTEN_MODE_ROUTING",
        cmd: pn7150::RF_SET_LISTEN_MODE_ROUTING_CMD,
        rsp: pn7150::RF_SET_LISTEN_MODE_ROUTING_RSP,
        // STATUS_REJECTED: not a size refusal, so no fallback.
        error: "41 01 01 01",
        broken: "41 01 00",
    },
    Step {
        name: "RF_DISCOVER",
        cmd: pn7150::RF_DISCOVER_CMD,
        rsp: pn7150::RF_DISCOVER_RSP,
        error: "41 03 01 03",
        broken: "41 03 00",
    },
];

/// Run the PN7150 start-up from CORE_RESET_CMD to `Ready`, checking every command.
#[track_caller]
pub fn pn7150_startup(t: &mut Transcript) {
    for step in PN7150_STEPS {
        t.exchange(step.cmd, step.rsp);
    }
    t.expect_event(Ev::RoutingProgrammed {
        mode: RoutingMode::Mixed,
        used: 15,
        capacity: 720,
    });
    t.expect_event(Ev::Ready);
    t.expect_no_event();
    t.expect_no_transmit();
    t.expect_state(State::Discovery);
}

/// A PN7150 started and listening.
pub fn pn7150_ready() -> Transcript {
    let mut t = Transcript::default_config();
    pn7150_startup(&mut t);
    t
}

/// A PN7150 with a listen-A ISO-DEP session open.
pub fn pn7150_active() -> Transcript {
    let mut t = pn7150_ready();
    t.queue_ntf(pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A);
    t.expect_event_where("Activated", |e| matches!(e, Ev::Activated(_)));
    t.expect_state(State::Active);
    t
}

/// One data packet on the static RF connection: header (with PBF) and payload.
pub fn data_packet(pbf: bool, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![if pbf { 0x10 } else { 0x00 }, 0x00, payload.len() as u8];
    packet.extend_from_slice(payload);
    packet
}
