//! The real controller over a simulated I²C bus at 100, 400 and 3400 kHz, for the EMV and
//! transit scripts: what share of a tap the bus takes, and that the bus time is exactly the sum
//! of the per-packet times of the I²C formula (UM10204: 9 bit-times per byte, 11 per
//! transaction; Hs-mode adds the 25 µs master code; reads are header, then payload).
#![cfg(feature = "sim")]

mod i2c_formula;

use libnci::controller::Config;
use libnci::sim::bus::round_up_to_micros;
use libnci::sim::scripts::{self, EmvParams};
use libnci::sim::{
    BusSpeed, ControllerDh, Direction, Harness, HostApps, Nfcc, NfccConfig, Profile, Reader,
    ReaderConfig, RfTiming, Script, TapOutcome, TraceEntry,
};
use libnci::time::Duration;

use i2c_formula::{packet_ns, speeds};

fn formula(entries: &[TraceEntry], hz: u64) -> Duration {
    let ns = entries
        .iter()
        .map(|e| packet_ns(hz, e.direction, e.bytes.len() as u64))
        .sum();
    Duration::from_nanos(ns)
}

fn share(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64()
}

fn run(script: fn() -> Script, profile: Profile, speed: BusSpeed, hz: u64) {
    let mut nfcc = NfccConfig::new(profile);
    nfcc.rf_timing = Some(RfTiming::default());
    let dh = ControllerDh::new(Config::default(), HostApps::demo(1_000))
        .with_session_end(|host, _| host.end_session());
    let mut h = Harness::with_bus(dh, Nfcc::new(nfcc), speed);
    h.run_until_idle().unwrap();
    let startup = *h.bus_stats().unwrap();
    let since = h.trace().len();
    let startup_time = h.dh.last_ready_at().unwrap() - libnci::time::Instant::ZERO;

    let report = h
        .tap(Reader::new(script(), ReaderConfig::default()))
        .unwrap();
    h.run_until_idle().unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    let stats = *h.bus_stats().unwrap();

    // The whole run, start-up and tap: the bus time is the formula's sum over every packet.
    assert_eq!(stats.busy(), formula(h.trace(), hz), "{speed:?}");
    for (direction, totals) in [
        (Direction::DhToNfcc, stats.to_nfcc),
        (Direction::NfccToDh, stats.to_dh),
    ] {
        let packets: Vec<&TraceEntry> = h
            .trace()
            .iter()
            .filter(|e| e.direction == direction)
            .collect();
        assert_eq!(totals.packets, packets.len() as u64);
        let bytes: usize = packets.iter().map(|e| e.bytes.len()).sum();
        assert_eq!(totals.bytes, bytes as u64);
    }
    // Start-up alone, and the tap alone.
    assert_eq!(startup.busy(), formula(&h.trace()[..since], hz));
    let tap_busy = stats.busy() - startup.busy();
    assert_eq!(tap_busy, formula(&h.trace()[since..], hz));
    // The bus is serial: each packet takes the bus for its own time (rounded up to the
    // simulated clock's microsecond), after the previous one has left it.
    let mut free_at = libnci::time::Instant::ZERO;
    for e in h.trace() {
        let own = Duration::from_nanos(packet_ns(hz, e.direction, e.bytes.len() as u64));
        let start = e.sent_at.max(free_at);
        assert_eq!(e.delivered_at, start + round_up_to_micros(own));
        free_at = e.delivered_at;
    }

    let transaction = report.transaction_time().unwrap();
    println!(
        "{:>8} {profile:?} @ {:>4} kHz: start-up {startup_time:?} (bus {:?}); tap {:?}, \
         {} APDUs, activation → last answer {transaction:?}; bus busy {tap_busy:?} = {:.1}% \
         of the tap, waited {:?}",
        report.script,
        hz / 1_000,
        startup.busy(),
        report.total,
        report.apdus.len(),
        share(tap_busy, report.total),
        stats.waited - startup.waited,
    );
}

fn emv() -> Script {
    scripts::emv(&EmvParams::default())
}

#[test]
fn emv_bus_time_is_the_formula_at_every_speed() {
    for profile in [Profile::Pn7150, Profile::Nci2] {
        for (speed, hz) in speeds() {
            run(emv, profile, speed, hz);
        }
    }
}

fn demo_gate() -> Script {
    scripts::transit(&scripts::TransitDebitRepr::default())
}

#[test]
fn transit_bus_time_is_the_formula_at_every_speed() {
    for profile in [Profile::Pn7150, Profile::Nci2] {
        for (speed, hz) in speeds() {
            run(demo_gate, profile, speed, hz);
        }
    }
}
