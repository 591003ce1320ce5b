//! Each fault of the injector produces exactly the expected bytes, omission or RF event.
#![cfg(feature = "sim")]

use libnci::sim::fault::SPURIOUS_CORE_RESET_NTF;
use libnci::sim::nfcc::{PN7150_CORE_INIT_RSP, PN7150_CORE_RESET_RSP};
use libnci::sim::{
    pn7150_setup, Direction, Expect, Fault, FaultInjector, Harness, Nfcc, NfccEndpoint, Reader,
    ReaderConfig, RfError, Script, ScriptedDh, Step, TapOutcome, Trigger, XorShift64,
};
use libnci::time::{Duration, Instant};
use libnci::wire::{DeactivationReason, Status};

type Card = fn(&[u8]) -> Vec<u8>;

fn ok_card(_: &[u8]) -> Vec<u8> {
    vec![0x90, 0x00]
}

/// 259 data octets and 90 00: two packets from the DH.
fn long_card(_: &[u8]) -> Vec<u8> {
    let mut rsp = vec![0x42; 259];
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

fn harness(card: Card) -> Harness<ScriptedDh<Card>, FaultInjector<Nfcc>> {
    Harness::new(
        ScriptedDh::new(pn7150_setup(), card),
        FaultInjector::new(Nfcc::pn7150(), 7),
    )
}

fn transcript<D, N>(h: &Harness<D, N>) -> Vec<(Direction, Vec<u8>)>
where
    D: libnci::sim::DhEndpoint,
    N: NfccEndpoint,
{
    h.trace()
        .iter()
        .map(|e| (e.direction, e.bytes.clone()))
        .collect()
}

const OUT: Direction = Direction::DhToNfcc;
const IN: Direction = Direction::NfccToDh;

fn one_apdu() -> Script {
    Script {
        name: "one".into(),
        steps: vec![Step::send(vec![0x00, 0xB0, 0x00, 0x00, 0x00], Expect::OK)],
    }
}

#[test]
fn drop_response_loses_the_core_init_rsp() {
    let mut h = harness(ok_card);
    let id = h.nfcc.arm(Fault::DropResponse, Trigger::Nth(2));
    h.run_until_idle().unwrap();
    assert_eq!(
        transcript(&h),
        [
            (OUT, vec![0x20, 0x00, 0x01, 0x01]),
            (IN, PN7150_CORE_RESET_RSP.to_vec()),
            (OUT, vec![0x20, 0x01, 0x00]),
        ]
    );
    assert_eq!(h.nfcc.fired(id), 1);
    // The controller did the work; only the answer was lost.
    assert!(h.nfcc.inner().is_initialized());
    assert!(!h.dh.is_idle());
}

#[test]
fn delay_response_holds_it_and_what_follows() {
    let mut h = harness(ok_card);
    h.nfcc.arm(
        Fault::DelayResponse(Duration::from_millis(5)),
        Trigger::Once,
    );
    h.run_until_idle().unwrap();
    let trace = h.trace();
    assert_eq!(trace[1].bytes, PN7150_CORE_RESET_RSP);
    assert_eq!(trace[1].delivered_at, Instant::from_millis(5));
    // Everything after it comes later, in order, and the start-up completes.
    assert!(trace[2..]
        .iter()
        .all(|e| e.delivered_at >= Instant::from_millis(5)));
    assert!(h.dh.is_idle());
}

#[test]
fn corrupt_header_makes_the_message_type_reserved() {
    let mut h = harness(ok_card);
    h.nfcc.arm(Fault::CorruptHeader, Trigger::Once);
    h.run_until_idle().unwrap();
    // 0x40 (RSP, GID CORE) ^ 0xE0 = 0xA0: MT 101, reserved.
    assert_eq!(
        transcript(&h)[1],
        (IN, vec![0xA0, 0x00, 0x03, 0x00, 0x10, 0x01])
    );
    assert!(!h.dh.is_idle());
}

#[test]
fn wrong_length_claims_one_octet_more() {
    let mut h = harness(ok_card);
    h.nfcc.arm(Fault::WrongLength, Trigger::Once);
    h.run_until_idle().unwrap();
    assert_eq!(
        transcript(&h)[1],
        (IN, vec![0x40, 0x00, 0x04, 0x00, 0x10, 0x01])
    );
}

#[test]
fn spurious_core_reset_ntf_and_generic_error_are_injected_before_a_packet() {
    let mut h = harness(ok_card);
    h.nfcc.arm(Fault::SpuriousCoreResetNtf, Trigger::Once);
    h.nfcc
        .arm(Fault::CoreGenericErrorNtf(Status::Failed), Trigger::Nth(2));
    h.run_until_idle().unwrap();
    let trace = transcript(&h);
    assert_eq!(
        trace[..6],
        [
            (OUT, vec![0x20, 0x00, 0x01, 0x01]),
            // CORE_RESET_NTF: unrecoverable error, configuration kept, NCI 2.0.
            (IN, SPURIOUS_CORE_RESET_NTF.to_vec()),
            (IN, PN7150_CORE_RESET_RSP.to_vec()),
            (OUT, vec![0x20, 0x01, 0x00]),
            // CORE_GENERIC_ERROR_NTF(STATUS_FAILED).
            (IN, vec![0x60, 0x07, 0x01, 0x03]),
            (IN, PN7150_CORE_INIT_RSP.to_vec()),
        ]
    );
    assert!(h.dh.is_idle());
}

#[test]
fn inject_now_sends_any_bytes() {
    let mut nfcc = FaultInjector::new(Nfcc::pn7150(), 1);
    nfcc.inject_now(&[0x60, 0x07, 0x01, 0x06], Instant::from_millis(3));
    let out = nfcc.poll_transmit().unwrap();
    assert_eq!(out.bytes, [0x60, 0x07, 0x01, 0x06]);
    assert_eq!(out.at, Instant::from_millis(3));
}

#[test]
fn lost_credits_ntf_stalls_the_second_segment_until_the_reader_gives_up() {
    let mut h = harness(long_card);
    h.run_until_idle().unwrap();
    let id = h.nfcc.arm(Fault::LoseCreditsNtf, Trigger::Once);
    let config = ReaderConfig {
        apdu_timeout: Duration::from_millis(500),
        ..ReaderConfig::default()
    };
    let report = h.tap(Reader::new(one_apdu(), config)).unwrap();
    assert_eq!(report.outcome, TapOutcome::Timeout { step: 0 });
    assert_eq!(h.nfcc.fired(id), 1);
    // The last segment never got a credit; the DH dropped it when the link ended.
    assert_eq!(h.dh.packets_waiting_for_credit(), 0);
    let from_dh: Vec<_> = transcript(&h)
        .into_iter()
        .filter(|(d, b)| *d == OUT && b[0] >> 5 == 0)
        .collect();
    assert_eq!(from_dh.len(), 1, "only the first segment went out");
    assert_eq!(&from_dh[0].1[..3], &[0x10, 0x00, 0xFF]);
}

#[test]
fn link_loss_mid_apdu() {
    let mut h = harness(ok_card);
    h.run_until_idle().unwrap();
    h.take_trace();
    let id = h.nfcc.arm(Fault::LinkLossMidApdu, Trigger::Once);
    let report = h
        .tap(Reader::new(one_apdu(), ReaderConfig::default()))
        .unwrap();
    h.run_until_idle().unwrap();
    assert_eq!(h.nfcc.fired(id), 1);
    assert_eq!(
        report.outcome,
        TapOutcome::LinkLoss {
            step: 0,
            reason: DeactivationReason::RfLinkLoss
        }
    );
    assert!(report.apdus.is_empty());
    let trace = transcript(&h);
    let c_apdu = (IN, vec![0x00, 0x00, 0x05, 0x00, 0xB0, 0x00, 0x00, 0x00]);
    let at = trace.iter().position(|p| *p == c_apdu).unwrap();
    assert_eq!(
        trace[at + 1..at + 3],
        [
            // Field gone, then the link loss.
            (IN, vec![0x61, 0x07, 0x01, 0x00]),
            (IN, vec![0x61, 0x06, 0x02, 0x03, 0x02]),
        ]
    );
    // The DH answered before it learnt of the loss: the NFCC refuses the late R-APDU.
    assert!(trace.contains(&(OUT, vec![0x00, 0x00, 0x02, 0x90, 0x00])));
    assert_eq!(
        trace.last(),
        Some(&(IN, vec![0x60, 0x08, 0x02, 0x01, 0x00]))
    );
}

#[test]
fn drop_command_loses_it_on_the_way_in() {
    let mut h = harness(ok_card);
    h.nfcc.arm(Fault::DropCommand, Trigger::Once);
    h.run_until_idle().unwrap();
    assert_eq!(transcript(&h), [(OUT, vec![0x20, 0x00, 0x01, 0x01])]);
    assert_eq!(h.nfcc.inner().stats().commands, 0);
}

#[test]
fn dead_controller_never_answers() {
    let mut h = harness(ok_card);
    // Packets: CORE_RESET_CMD (1), CORE_RESET_RSP (2), CORE_INIT_CMD (3): dead from there on.
    h.nfcc.arm(Fault::Dead, Trigger::Nth(3));
    h.run_until_idle().unwrap();
    assert_eq!(
        transcript(&h),
        [
            (OUT, vec![0x20, 0x00, 0x01, 0x01]),
            (IN, PN7150_CORE_RESET_RSP.to_vec()),
            (OUT, vec![0x20, 0x01, 0x00]),
        ]
    );
    assert!(h.nfcc.is_dead());
    assert!(!h.nfcc.inner().is_initialized());
    // Its RF side is dead too.
    h.nfcc.reader_field(true, h.now());
    assert_eq!(
        h.nfcc
            .reader_activate(libnci::wire::RfTechnology::NfcA, h.now()),
        Err(RfError::NotDiscovering)
    );
    // And it stays dead through a reset.
    h.dh.push_command(vec![0x20, 0x00, 0x01, 0x01]);
    h.run_until_idle().unwrap();
    assert_eq!(h.trace().len(), 3);
}

/// Send `n` CORE_GET_CONFIG_CMDs through an injector and count the responses.
fn responses_through(mut nfcc: FaultInjector<Nfcc>, n: usize) -> Vec<bool> {
    nfcc.handle_packet(&[0x20, 0x00, 0x01, 0x01], Instant::ZERO);
    nfcc.handle_packet(&[0x20, 0x01, 0x00], Instant::ZERO);
    while nfcc.poll_transmit().is_some() {}
    (0..n)
        .map(|_| {
            nfcc.handle_packet(&[0x20, 0x03, 0x02, 0x01, 0x80], Instant::ZERO);
            let mut got = false;
            while nfcc.poll_transmit().is_some() {
                got = true;
            }
            got
        })
        .collect()
}

#[test]
fn probabilistic_faults_replay_from_their_seed() {
    let seed = 0xC0FFEE;
    let mut nfcc = FaultInjector::new(Nfcc::pn7150(), seed);
    // Armed before start-up, so the two start-up responses draw too.
    nfcc.arm(Fault::DropResponse, Trigger::Probability(0.3));
    let delivered = responses_through(nfcc, 200);
    // The injector draws once per response: 2 for start-up, then one per GET_CONFIG.
    let mut rng = XorShift64::new(seed);
    let _ = (rng.chance(0.3), rng.chance(0.3));
    let expected: Vec<bool> = (0..200).map(|_| !rng.chance(0.3)).collect();
    assert_eq!(delivered, expected);
    let dropped = delivered.iter().filter(|d| !**d).count();
    assert!((30..90).contains(&dropped), "{dropped} of 200 dropped");

    let mut never = FaultInjector::new(Nfcc::pn7150(), seed);
    never.arm(Fault::DropResponse, Trigger::Probability(0.0));
    assert!(responses_through(never, 50).iter().all(|d| *d));
    let mut always = FaultInjector::new(Nfcc::pn7150(), seed);
    always.arm(Fault::DropResponse, Trigger::Probability(1.0));
    assert!(responses_through(always, 50).iter().all(|d| !*d));
}

#[test]
fn identical_seeds_give_identical_runs() {
    let run = || {
        let mut h = harness(ok_card);
        h.nfcc.arm(Fault::CorruptHeader, Trigger::Probability(0.5));
        h.run_until_idle().unwrap();
        transcript(&h)
    };
    assert_eq!(run(), run());
}
