//! Micro-benchmark of one APDU round trip through the controller state machine, in the steady
//! state of a card session (RFST_LISTEN_ACTIVE, NCI 1.0 §5.2.5) on a PN7150.
//!
//! Set-up, outside the timed section: the PN7150 start-up is played from raw packets (each
//! command the controller sends is checked against the expected bytes and answered with the
//! PN7150's response), then RF_INTF_ACTIVATED_NTF opens a listen-A ISO-DEP session (max data
//! payload 255, 1 credit).
//!
//! Timed, per iteration, in the documented call order (input, `poll_transmit` until `None`,
//! `poll_event` until `None`, `poll_timeout`):
//! 1. `handle_packet` of the DATA packet holding the command APDU → [`Event::Data`];
//! 2. `send_data` of the response APDU → `poll_transmit` of its data packet(s);
//! 3. `handle_packet` of CORE_CONN_CREDITS_NTF after each packet, as the PN7150 returns its one
//!    credit once the packet went over RF (NCI 1.0 §4.4.4).
//!
//! Two sizes: SELECT PPSE answered with a short FCI (one packet each way), and READ BINARY
//! answered with 261 octets (255 + 6: two packets with a credit round trip between them).
//! What is not measured: the transport, the host service, and any I/O.
//!
//! Run: `cargo bench -p libnci --bench controller`.

use divan::{black_box, Bencher};
use libnci::controller::{Config, Controller, Event, State};
use libnci::time::{Duration, Instant};

fn main() {
    divan::main();
}

/// The PN7150 start-up with the default configuration: each command the controller must send
/// and the PN7150's answer (NCI 1.0 §4 and §7; NXP activation from UM10936 §6.3).
const STARTUP: &[(&str, &[u8], &[u8])] = &[
    (
        "CORE_RESET",
        &[0x20, 0x00, 0x01, 0x01],
        &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01],
    ),
    (
        "CORE_INIT",
        &[0x20, 0x01, 0x00],
        &[
            0x40, 0x01, 0x19, 0x00, 0x03, 0x1E, 0x03, 0x00, 0x08, 0x00, 0x01, 0x02, 0x03, 0x80,
            0x81, 0x82, 0x83, 0x02, 0xD0, 0x02, 0xFF, 0x02, 0x00, 0x04, 0x88, 0x10, 0x01, 0xA0,
        ],
    ),
    (
        "NCI_PROPRIETARY_ACT",
        &[0x2F, 0x02, 0x00],
        &[0x4F, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00],
    ),
    (
        // LA_SEL_INFO, LB_SENSB_INFO, LI_FWI, RF_FIELD_INFO; values after a configuration reset.
        "CORE_GET_CONFIG",
        &[0x20, 0x03, 0x05, 0x04, 0x32, 0x38, 0x58, 0x80],
        &[
            0x40, 0x03, 0x0E, 0x00, 0x04, 0x32, 0x01, 0x60, 0x38, 0x01, 0x01, 0x58, 0x01, 0x0E,
            0x80, 0x01, 0x00,
        ],
    ),
    (
        "CORE_SET_CONFIG",
        &[
            0x20, 0x02, 0x0A, 0x03, 0x32, 0x01, 0x20, 0x58, 0x01, 0x07, 0x80, 0x01, 0x01,
        ],
        &[0x40, 0x02, 0x02, 0x00, 0x00],
    ),
    (
        "NFCEE_DISCOVER",
        &[0x22, 0x00, 0x01, 0x01],
        &[0x42, 0x00, 0x02, 0x00, 0x00],
    ),
    (
        "RF_DISCOVER_MAP",
        &[0x21, 0x00, 0x04, 0x01, 0x04, 0x02, 0x02],
        &[0x41, 0x00, 0x01, 0x00],
    ),
    (
        // ISO-DEP → DH, NFC-A → DH, NFC-B → DH, switched on.
        "RF_SET_LISTEN_MODE_ROUTING",
        &[
            0x21, 0x01, 0x11, 0x00, 0x03, 0x01, 0x03, 0x00, 0x01, 0x04, 0x00, 0x03, 0x00, 0x01,
            0x00, 0x00, 0x03, 0x00, 0x01, 0x01,
        ],
        &[0x41, 0x01, 0x01, 0x00],
    ),
    (
        "RF_DISCOVER",
        &[0x21, 0x03, 0x05, 0x02, 0x80, 0x01, 0x81, 0x01],
        &[0x41, 0x03, 0x01, 0x00],
    ),
];

/// RF_INTF_ACTIVATED_NTF (NCI 1.0 §7.3.1): NFC-A listen, ISO-DEP interface and protocol, max
/// data payload 255, 1 credit, RATS byte 2 = 0x80.
const RF_INTF_ACTIVATED_NTF: [u8; 15] = [
    0x61, 0x05, 0x0C, 0x01, 0x02, 0x04, 0x80, 0xFF, 0x01, 0x00, 0x80, 0x00, 0x00, 0x01, 0x80,
];

/// CORE_CONN_CREDITS_NTF: connection 0, 1 credit.
const CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];

/// DATA on the static RF connection: SELECT PPSE (`2PAY.SYS.DDF01`), 20 octets.
const DATA_SELECT_PPSE: [u8; 23] = [
    0x00, 0x00, 0x14, 0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53,
    0x2E, 0x44, 0x44, 0x46, 0x30, 0x31, 0x00,
];

/// A short FCI for the PPSE (DF name, then 90 00).
const FCI_PPSE: [u8; 20] = [
    0x6F, 0x10, 0x84, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44, 0x44, 0x46,
    0x30, 0x31, 0x90, 0x00,
];

/// DATA on the static RF connection: READ BINARY, offset 0, Le 00 (ISO/IEC 7816-4 §11.3.3).
const DATA_READ_BINARY: [u8; 8] = [0x00, 0x00, 0x05, 0x00, 0xB0, 0x00, 0x00, 0x00];

/// A PN7150 controller state machine with a card session open, and the simulated clock.
struct Session {
    ctl: Box<Controller>,
    now: Instant,
}

impl Session {
    fn open() -> Session {
        let mut s = Session {
            ctl: Box::new(Controller::new(Config::default())),
            now: Instant::ZERO,
        };
        s.ctl.start(s.now);
        for (name, cmd, rsp) in STARTUP {
            let sent = s.ctl.poll_transmit();
            assert_eq!(sent.as_deref(), Some(*cmd), "{name} command");
            assert_eq!(s.ctl.poll_transmit(), None, "one command at a time");
            s.tick();
            s.ctl.handle_packet(rsp, s.now);
            s.drain_events();
        }
        assert_eq!(s.ctl.state(), State::Discovery);
        assert_eq!(s.ctl.poll_transmit(), None);
        s.tick();
        s.ctl.handle_packet(&RF_INTF_ACTIVATED_NTF, s.now);
        assert_eq!(s.ctl.poll_transmit(), None);
        s.drain_events();
        assert_eq!(s.ctl.state(), State::Active);
        s
    }

    fn tick(&mut self) {
        self.now += Duration::from_micros(500);
    }

    /// Drain the events; returns the length of the command APDU delivered, if any.
    fn drain_events(&mut self) -> Option<usize> {
        let mut apdu = None;
        while let Some(event) = self.ctl.poll_event() {
            if let Event::Data(bytes) = event {
                apdu = Some(black_box(bytes).len());
            }
        }
        apdu
    }

    /// Write out every packet due; returns the octets "written".
    fn drain_transmit(&mut self) -> usize {
        let mut written = 0;
        while let Some(packet) = self.ctl.poll_transmit() {
            written += black_box(&packet).len();
        }
        written
    }

    /// One command APDU in, its response out, the credits back. Returns the octets sent.
    fn round_trip(&mut self, command: &[u8], response: &[u8]) -> usize {
        self.tick();
        self.ctl.handle_packet(command, self.now);
        self.drain_transmit();
        if self.drain_events().is_none() {
            return 0;
        }
        let _ = self.ctl.poll_timeout();
        if self.ctl.send_data(response, self.now).is_err() {
            return 0;
        }
        let mut sent = 0;
        loop {
            let written = self.drain_transmit();
            self.drain_events();
            let _ = self.ctl.poll_timeout();
            if written == 0 {
                break;
            }
            sent += written;
            // The PN7150 returns the credit once the packet went out over RF.
            self.tick();
            self.ctl.handle_packet(&CORE_CONN_CREDITS_NTF, self.now);
        }
        sent
    }
}

#[divan::bench(sample_size = 1024)]
fn round_trip_select_ppse(bencher: Bencher) {
    let mut session = Session::open();
    // One packet of 3 + 20 octets out; the session stays open for the next iteration.
    assert_eq!(session.round_trip(&DATA_SELECT_PPSE, &FCI_PPSE), 23);
    assert_eq!(session.ctl.state(), State::Active);
    bencher.bench_local(|| session.round_trip(black_box(&DATA_SELECT_PPSE), black_box(&FCI_PPSE)));
}

#[divan::bench(sample_size = 1024)]
fn round_trip_261_octet_response(bencher: Bencher) {
    let response: Vec<u8> = (0..259u32)
        .map(|i| (i % 251) as u8)
        .chain([0x90, 0x00])
        .collect();
    let mut session = Session::open();
    // Two packets: 3 + 255 and 3 + 6 octets, a credit round trip between them.
    assert_eq!(session.round_trip(&DATA_READ_BINARY, &response), 267);
    assert_eq!(session.ctl.state(), State::Active);
    bencher.bench_local(|| session.round_trip(black_box(&DATA_READ_BINARY), black_box(&response)));
}
