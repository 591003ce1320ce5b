//! What a real bus and a real RF link add: I²C transfer times at 100, 400 and 3400 kHz and
//! ISO-DEP frame times, checked against the formulas computed here from first principles.
#![cfg(feature = "sim")]

mod i2c_formula;

use libnci::sim::rf::message_time;
use libnci::sim::scripts::SELECT_PPSE;
use libnci::sim::{
    pn7150_setup, BusSpeed, Direction, Expect, Harness, Nfcc, NfccConfig, Reader, ReaderConfig,
    RfTiming, Script, ScriptedDh, Step, TapOutcome,
};
use libnci::time::Duration;

use i2c_formula::{packet_ns, speeds, transaction_ns};
use libnci::wire::RfTechnology;

fn no_card(_: &[u8]) -> Vec<u8> {
    vec![0x90, 0x00]
}

#[test]
fn published_per_byte_figure_at_400_khz() {
    // 22.5 µs per byte at 400 kHz.
    assert_eq!(
        transaction_ns(400_000, 101) - transaction_ns(400_000, 100),
        22_500
    );
    assert_eq!(
        BusSpeed::Fast.packet_time(Direction::DhToNfcc, 258),
        Duration::from_nanos(5_832_500)
    );
}

#[test]
fn start_up_bus_time_matches_the_formula_at_every_speed() {
    for (speed, hz) in speeds() {
        let dh = ScriptedDh::new(pn7150_setup(), no_card as fn(&[u8]) -> Vec<u8>);
        let mut h = Harness::with_bus(dh, Nfcc::pn7150(), speed);
        h.run_until_idle().unwrap();
        let mut to_nfcc = 0;
        let mut to_dh = 0;
        let mut micros = 0;
        for entry in h.trace() {
            let ns = packet_ns(hz, entry.direction, entry.bytes.len() as u64);
            match entry.direction {
                Direction::DhToNfcc => to_nfcc += ns,
                Direction::NfccToDh => to_dh += ns,
            }
            // Strict request/response: the bus is always free, each transfer takes its time
            // rounded up to the microsecond of the simulated clock.
            assert_eq!(
                (entry.delivered_at - entry.sent_at).as_micros(),
                u128::from(ns.div_ceil(1_000)),
                "{speed:?} {:02X?}",
                entry.bytes
            );
            micros += ns.div_ceil(1_000);
        }
        let stats = h.bus_stats().unwrap();
        assert_eq!(
            stats.to_nfcc.busy,
            Duration::from_nanos(to_nfcc),
            "{speed:?}"
        );
        assert_eq!(stats.to_dh.busy, Duration::from_nanos(to_dh), "{speed:?}");
        assert_eq!(stats.to_nfcc.packets, 7);
        assert_eq!(stats.to_dh.packets, 7);
        assert_eq!(stats.waited, Duration::ZERO);
        // With instant processing, start-up takes exactly the bus time.
        assert_eq!(h.now().total_micros(), micros, "{speed:?}");
    }
}

#[test]
fn start_up_figures() {
    // Totals for the 7-command PN7150 start-up, as the formula gives them.
    let totals: Vec<u64> = speeds()
        .iter()
        .map(|&(speed, _)| {
            let dh = ScriptedDh::new(pn7150_setup(), no_card as fn(&[u8]) -> Vec<u8>);
            let mut h = Harness::with_bus(dh, Nfcc::pn7150(), speed);
            h.run_until_idle().unwrap();
            h.now().total_micros()
        })
        .collect();
    // Slower bus, longer start-up; 400 kHz is four times 100 kHz within rounding.
    assert!(totals[0] > totals[1] && totals[1] > totals[2]);
    assert!(totals[0].abs_diff(totals[1] * 4) <= 4 * 14);
}

/// 259 data octets and 90 00.
fn long_card(_: &[u8]) -> Vec<u8> {
    let mut rsp = vec![0x42; 259];
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

#[test]
fn a_261_byte_r_apdu_costs_about_6_ms_at_400_khz() {
    let dh = ScriptedDh::new(pn7150_setup(), long_card as fn(&[u8]) -> Vec<u8>);
    let mut h = Harness::with_bus(dh, Nfcc::pn7150(), BusSpeed::Fast);
    h.run_until_idle().unwrap();
    let before = *h.bus_stats().unwrap();
    let script = Script {
        name: "read".into(),
        steps: vec![Step::send(vec![0x00, 0xB0, 0x00, 0x00, 0x00], Expect::OK)],
    };
    let report = h.tap(Reader::new(script, ReaderConfig::default())).unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    let after = *h.bus_stats().unwrap();
    // The DH wrote exactly the two R-APDU segments: 258 and 9 octets.
    let written = after.to_nfcc.busy - before.to_nfcc.busy;
    let expected = transaction_ns(400_000, 258) + transaction_ns(400_000, 9);
    assert_eq!(written, Duration::from_nanos(expected));
    assert_eq!(expected, 6_062_500);
    // Round trip seen by the reader (instant RF and processing): the reader sends at the
    // instant of activation, so the C-APDU waits for RF_INTF_ACTIVATED_NTF (15 octets) to be
    // read; then the C-APDU read (8 octets), first segment written, CORE_CONN_CREDITS_NTF read
    // (6 octets), last segment written; each transfer rounded up to the microsecond.
    let up = |ns: u64| ns.div_ceil(1_000);
    let rtt = up(packet_ns(400_000, Direction::NfccToDh, 15))
        + up(packet_ns(400_000, Direction::NfccToDh, 8))
        + up(transaction_ns(400_000, 258))
        + up(packet_ns(400_000, Direction::NfccToDh, 6))
        + up(transaction_ns(400_000, 9));
    assert_eq!(rtt, 393 + 235 + 5_833 + 190 + 230);
    assert_eq!(report.apdus[0].latency(), Duration::from_micros(rtt));
}

#[test]
fn rf_frame_times_add_to_the_round_trip() {
    let mut config = NfccConfig::pn7150();
    config.rf_timing = Some(RfTiming::default());
    let dh = ScriptedDh::new(pn7150_setup(), no_card as fn(&[u8]) -> Vec<u8>);
    let mut h = Harness::new(dh, Nfcc::new(config));
    h.run_until_idle().unwrap();
    let script = Script {
        name: "ppse".into(),
        steps: vec![Step::send(SELECT_PPSE, Expect::OK)],
    };
    let report = h.tap(Reader::new(script, ReaderConfig::default())).unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    // No bus, instant DH: the round trip is the C-APDU's and the R-APDU's air time, each
    // rounded up to the simulated clock's microsecond.
    let up = |d: Duration| d.as_nanos().div_ceil(1_000) as u64;
    let command = message_time(RfTechnology::NfcA, 20, 256);
    let response = message_time(RfTechnology::NfcA, 2, 256);
    let latency = report.apdus[0].latency().as_micros() as u64;
    assert_eq!(latency, up(command) + up(response));
    // 20 octets: 23-octet frame, 209 etu ≈ 1.97 ms; 2 octets: 5-octet frame, 47 etu ≈ 0.44 ms.
    assert_eq!(latency, 1_973 + 444);
}
