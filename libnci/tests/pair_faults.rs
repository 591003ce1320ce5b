//! Every fault of [`libnci::sim::fault::Fault`] against the real controller state machine, in
//! simulated time, during start-up and in the middle of a tap, for the PN7150 (NCI 1.0) and a
//! generic NCI 2.0 controller.
//!
//! Each run checks that the controller recovers the documented way — [`Event::Reinitializing`]
//! after the configured detection time, the back-off of [`Config::retry_delay`] doubling per
//! attempt, then [`Event::Ready`] —, that the NFCC holds the same routing table as before, and
//! that the next tap succeeds. The simulated recovery time (fault → Ready again) is printed and
//! checked against a bound computed from the configured timeouts and back-off alone.
//!
//! Where a fault cannot fire at some moment, the test says so: a listen-mode tap carries no
//! control responses, so the response faults are armed mid-tap together with a configuration
//! change the controller defers until the session is over, and they hit that change; credit
//! and data faults have nothing to apply to during start-up and fire in the first tap.
#![cfg(feature = "sim")]

use libnci::controller::{
    Config, ControllerError, Deactivation, Event, ListenTechs, ReinitCause, SendError, State,
};
use libnci::routing::{Aid, AidMatch};
use libnci::sim::fault::ArmId;
use libnci::sim::scripts::{self, select_aid, TRANSIT_FARE};
use libnci::sim::{
    ControllerDh, Direction, Expect, Fault, FaultInjector, Harness, HostApps, Nfcc, NfccConfig,
    NfccEndpoint, Profile, Reader, ReaderConfig, RfError, RfEvent, Script, Step, TapOutcome,
    TapReport, Transmit, Trigger,
};
use libnci::time::{Duration, Instant};
use libnci::wire::{DeactivationReason, DeactivationType, RfTechMode, RfTechnology, Status};

const PROFILES: [Profile; 2] = [Profile::Pn7150, Profile::Nci2];

/// The demo transit card's starting balance.
const BALANCE: u32 = 1_000;
/// The host service's time to answer an APDU.
const ANSWER_DELAY: Duration = Duration::from_micros(300);
/// The NFCC's time to answer a command, so that start-up takes time.
const RESPONSE_DELAY: Duration = Duration::from_micros(200);
/// The reader's pause between a response and its next command.
const THINK_TIME: Duration = Duration::from_millis(1);

/// AID of the test application that answers every APDU with 300 octets: its responses take
/// two data packets and a credit round trip.
const FILE_AID: [u8; 7] = [0xF0, 0x46, 0x49, 0x4C, 0x45, 0x30, 0x31];

fn long_file(_: &[u8]) -> Vec<u8> {
    let mut rsp = vec![0x4C; 298];
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

// ---- A fault injector that remembers when each armed fault fired -----------------------------

/// The fault injector around the virtual NFCC, noting the simulated time at which each fault
/// armed through it first fired (the time of the input or output it fired on).
struct Watched {
    injector: FaultInjector<Nfcc>,
    armed: Vec<ArmId>,
    fired_at: Vec<Option<Instant>>,
    now: Instant,
}

impl Watched {
    fn new(profile: Profile) -> Watched {
        let mut config = NfccConfig::new(profile);
        config.response_delay = RESPONSE_DELAY;
        Watched {
            injector: FaultInjector::new(Nfcc::new(config), 7),
            armed: Vec::new(),
            fired_at: Vec::new(),
            now: Instant::ZERO,
        }
    }

    /// Arm `fault`; the handle is for [`Watched::fired_at`].
    fn arm(&mut self, fault: Fault, trigger: Trigger) -> usize {
        self.armed.push(self.injector.arm(fault, trigger));
        self.fired_at.push(None);
        self.armed.len() - 1
    }

    fn fired_at(&self, handle: usize) -> Option<Instant> {
        self.fired_at[handle]
    }

    fn nfcc(&self) -> &Nfcc {
        self.injector.inner()
    }

    /// The dead controller comes back: power-cycled (VEN low, then high: NCI 2.0 announces
    /// itself with CORE_RESET_NTF), its volatile state gone; the reader that was in the field
    /// when it died has left.
    fn revive(&mut self, now: Instant) {
        let dead = std::mem::replace(&mut self.injector, FaultInjector::new(Nfcc::pn7150(), 0));
        let mut nfcc = dead.into_inner();
        nfcc.power_on(now);
        nfcc.reader_field(false, now);
        self.injector = FaultInjector::new(nfcc, 7);
        self.armed.clear();
    }

    fn observe(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn note_fired(&mut self) {
        for (id, at) in self.armed.iter().zip(self.fired_at.iter_mut()) {
            if at.is_none() && self.injector.fired(*id) > 0 {
                *at = Some(self.now);
            }
        }
    }
}

impl NfccEndpoint for Watched {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.observe(now);
        self.injector.handle_packet(packet, now);
        self.note_fired();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        self.injector.handle_timeout(now);
        self.note_fired();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.injector.poll_transmit();
        self.note_fired();
        transmit
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.injector.poll_timeout()
    }

    fn reader_field(&mut self, on: bool, now: Instant) {
        self.observe(now);
        self.injector.reader_field(on, now);
        self.note_fired();
    }

    fn reader_activate(&mut self, technology: RfTechnology, now: Instant) -> Result<(), RfError> {
        self.observe(now);
        let result = self.injector.reader_activate(technology, now);
        self.note_fired();
        result
    }

    fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError> {
        self.observe(now);
        let result = self.injector.reader_send_apdu(apdu, now);
        self.note_fired();
        result
    }

    fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError> {
        self.observe(now);
        let result = self.injector.reader_deactivate(reason, now);
        self.note_fired();
        result
    }

    fn poll_rf_event(&mut self) -> Option<RfEvent> {
        self.injector.poll_rf_event()
    }
}

// ---- Set-up ---------------------------------------------------------------------------------

type Pair = Harness<ControllerDh<HostApps>, Watched>;

fn host() -> HostApps {
    let mut host = HostApps::demo(BALANCE);
    let aid = Aid::new(&FILE_AID).unwrap();
    host.register(
        "file",
        [(aid, AidMatch::Exact)],
        long_file as fn(&[u8]) -> Vec<u8>,
    );
    host
}

fn pair(profile: Profile) -> Pair {
    let dh = ControllerDh::new(Config::default(), host())
        .with_answer_delay(ANSWER_DELAY)
        .with_session_end(|host, _| host.end_session());
    Harness::new(dh, Watched::new(profile))
}

fn reader(script: Script) -> Reader {
    let config = ReaderConfig {
        think_time: THINK_TIME,
        ..ReaderConfig::default()
    };
    Reader::new(script, config)
}

/// A reader that waits for each answer longer than the controller waits for a lost credit, so
/// that the credit timeout, not the reader, ends a session whose credit went missing.
fn patient_reader(script: Script) -> Reader {
    let config = ReaderConfig {
        think_time: THINK_TIME,
        apdu_timeout: Config::default().credit_timeout + Duration::from_secs(1),
        ..ReaderConfig::default()
    };
    Reader::new(script, config)
}

fn tap(h: &mut Pair, script: Script) -> TapReport {
    let report = h.tap(reader(script)).unwrap();
    h.run_until_idle().unwrap();
    report
}

/// SELECT the file application, then READ BINARY: both answers are 300 octets.
fn read_file() -> Script {
    Script {
        name: "read-file".into(),
        steps: vec![
            Step::send(select_aid(&FILE_AID), Expect::OK),
            Step::send(vec![0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x2A], Expect::OK),
        ],
    }
}

/// What a fault-free start-up looks like for `profile`: how long it takes and the routing
/// table it leaves in the NFCC.
struct Reference {
    startup: Duration,
    routing: Vec<u8>,
}

fn reference(profile: Profile) -> Reference {
    let mut h = pair(profile);
    h.run_until_idle().unwrap();
    Reference {
        startup: h.dh.last_ready_at().unwrap() - Instant::ZERO,
        routing: h.nfcc.nfcc().routing_table().to_vec(),
    }
}

/// The back-off before re-initialisation attempt `attempt` (1-based), as the controller
/// documents it: `retry_delay` doubling per attempt, at most `max_retry_delay`.
fn backoff(config: &Config, attempt: u8) -> Duration {
    let doubled = config
        .retry_delay
        .saturating_mul(1 << (attempt.saturating_sub(1)).min(16));
    doubled.min(config.max_retry_delay)
}

/// How long a fault may go unnoticed, from the configuration alone.
#[derive(Debug, Clone, Copy)]
enum Detection {
    /// The damaged packet itself is refused.
    Immediate,
    /// No response within the command timeout.
    CommandTimeout,
    /// The next response waits in vain for its credit: the reader's think time before the next
    /// command, the host's answer time, then the credit timeout.
    CreditTimeout,
}

impl Detection {
    fn bound(self, config: &Config) -> Duration {
        match self {
            Detection::Immediate => Duration::ZERO,
            Detection::CommandTimeout => config.command_timeout,
            Detection::CreditTimeout => THINK_TIME + ANSWER_DELAY + config.credit_timeout,
        }
    }
}

/// Fault → Ready again: detection, then per attempt its back-off, every attempt but the first
/// after a further command timeout at most, then one fault-free start-up.
fn recovery_bound(
    config: &Config,
    detection: Detection,
    attempts: u8,
    reference: &Reference,
) -> Duration {
    let backoffs: Duration = (1..=attempts).map(|a| backoff(config, a)).sum();
    let retries = config
        .command_timeout
        .saturating_mul(u32::from(attempts.saturating_sub(1)));
    detection.bound(config) + backoffs + retries + reference.startup
}

/// The re-initialisations reported from record `since` on, and when Ready came back after them.
struct Recovery {
    reinits: Vec<(Instant, ReinitCause, u8, Duration)>,
    ready_at: Instant,
}

#[track_caller]
fn recovery(h: &Pair, since: usize) -> Recovery {
    let records = h.dh.records_since(since);
    let reinits: Vec<_> = records
        .iter()
        .filter_map(|r| match r.event {
            Event::Reinitializing {
                cause,
                attempt,
                delay,
            } => Some((r.at, cause, attempt, delay)),
            _ => None,
        })
        .collect();
    let last = reinits.last().map_or(Instant::ZERO, |r| r.0);
    let ready_at = records
        .iter()
        .find(|r| r.event == Event::Ready && r.at >= last)
        .map(|r| r.at)
        .expect("Ready after the last re-initialisation");
    Recovery { reinits, ready_at }
}

/// The recovery went the documented way, within the bound; prints the simulated times.
#[track_caller]
fn check_recovery(
    h: &Pair,
    since: usize,
    label: &str,
    fault_at: Instant,
    detection: Detection,
    max_attempts: u8,
    reference: &Reference,
) {
    let config = h.dh.controller().config().clone();
    let rec = recovery(h, since);
    let attempts = rec.reinits.len() as u8;
    assert!(
        (1..=max_attempts).contains(&attempts),
        "{label}: {attempts} attempts"
    );
    for (i, (at, cause, attempt, delay)) in rec.reinits.iter().enumerate() {
        assert_eq!(usize::from(*attempt), i + 1, "{label}: {cause}");
        assert_eq!(*delay, backoff(&config, *attempt), "{label}");
        // The controller waits its back-off, then sends CORE_RESET_CMD and nothing before.
        let reset = h
            .trace()
            .iter()
            .find(|e| e.direction == Direction::DhToNfcc && e.sent_at >= *at)
            .expect("CORE_RESET_CMD after the back-off");
        assert_eq!(reset.bytes, [0x20, 0x00, 0x01, 0x01], "{label}");
        assert_eq!(reset.sent_at, *at + *delay, "{label}");
    }
    let first = rec.reinits[0].0;
    assert!(
        first - fault_at <= detection.bound(&config),
        "{label}: detected after {:?}",
        first - fault_at
    );
    let took = rec.ready_at - fault_at;
    let bound = recovery_bound(&config, detection, attempts, reference);
    let causes: Vec<String> = rec.reinits.iter().map(|r| r.1.to_string()).collect();
    println!(
        "{label}: fault at {fault_at}, detected after {:?}, {attempts} attempt(s) [{}], \
         Ready again after {took:?} (bound {bound:?})",
        first - fault_at,
        causes.join("; "),
    );
    assert!(took <= bound, "{label}: recovery took {took:?} > {bound:?}");
    // No faster than the back-off either: the controller never skips it.
    assert!(took >= backoff(&config, 1), "{label}");
    assert_eq!(h.dh.controller().state(), State::Discovery, "{label}");
}

/// The next gate debits the fare: the controller is fully usable again.
#[track_caller]
fn next_tap_succeeds(h: &mut Pair, label: &str) {
    let report = tap(h, scripts::transit(&scripts::TransitDebitRepr::default()));
    assert_eq!(report.outcome, TapOutcome::Completed, "{label}");
    let before = u32::from_be_bytes(report.value("balance_before").unwrap().try_into().unwrap());
    let after = u32::from_be_bytes(report.value("balance_after").unwrap().try_into().unwrap());
    assert_eq!(after, before - TRANSIT_FARE, "{label}");
}

// ---- Faults during start-up -----------------------------------------------------------------

struct Case {
    fault: Fault,
    trigger: Trigger,
    detection: Detection,
    max_attempts: u8,
}

fn startup_cases(config: &Config) -> Vec<Case> {
    let case = |fault, detection, max_attempts| Case {
        fault,
        trigger: Trigger::Nth(3),
        detection,
        max_attempts,
    };
    vec![
        // The third response is lost: nothing comes before the command timeout.
        case(Fault::DropResponse, Detection::CommandTimeout, 1),
        // The third response comes half a second after the command timeout: the controller
        // has re-initialised by then, and the late response (now one nobody waits for) costs
        // one more attempt.
        case(
            Fault::DelayResponse(config.command_timeout + Duration::from_millis(500)),
            Detection::CommandTimeout,
            2,
        ),
        // The third command never reaches the controller: no response either.
        case(Fault::DropCommand, Detection::CommandTimeout, 1),
        case(Fault::CorruptHeader, Detection::Immediate, 1),
        case(Fault::WrongLength, Detection::Immediate, 1),
        case(Fault::SpuriousCoreResetNtf, Detection::Immediate, 1),
        case(
            Fault::CoreGenericErrorNtf(Status::Failed),
            Detection::Immediate,
            1,
        ),
    ]
}

#[test]
fn faults_during_start_up_end_in_a_clean_re_initialisation() {
    for profile in PROFILES {
        let reference = reference(profile);
        for case in startup_cases(&Config::default()) {
            let label = format!("{profile:?} start-up {:?}", case.fault);
            let mut h = pair(profile);
            let handle = h.nfcc.arm(case.fault.clone(), case.trigger);
            h.run_until_idle().unwrap();
            let fault_at = h.nfcc.fired_at(handle).expect("fired during start-up");
            // Ready only once, after the recovery.
            assert_eq!(h.dh.events().filter(|e| *e == Event::Ready).count(), 1);
            check_recovery(
                &h,
                0,
                &label,
                fault_at,
                case.detection,
                case.max_attempts,
                &reference,
            );
            assert_eq!(h.nfcc.nfcc().routing_table(), reference.routing, "{label}");
            next_tap_succeeds(&mut h, &label);
        }
    }
}

#[test]
fn credit_and_data_faults_wait_for_the_first_tap() {
    for profile in PROFILES {
        let mut h = pair(profile);
        let credits = h.nfcc.arm(Fault::LoseCreditsNtf, Trigger::Once);
        let link = h.nfcc.arm(Fault::LinkLossMidApdu, Trigger::Once);
        h.run_until_idle().unwrap();
        // Start-up has no credit notification and no data packet: nothing to apply to.
        assert_eq!(h.nfcc.fired_at(credits), None);
        assert_eq!(h.nfcc.fired_at(link), None);
        assert!(!h
            .dh
            .events()
            .any(|e| matches!(e, Event::Reinitializing { .. })));
        // The first C-APDU's data packet ends the link.
        let report = tap(
            &mut h,
            scripts::transit(&scripts::TransitDebitRepr::default()),
        );
        assert!(h.nfcc.fired_at(link).is_some());
        assert!(
            matches!(report.outcome, TapOutcome::LinkLoss { step: 0, .. }),
            "{report:?}"
        );
    }
}

// ---- Faults in the middle of a tap ----------------------------------------------------------

fn mid_tap_cases() -> Vec<(Case, &'static str)> {
    let case = |fault, trigger, detection| Case {
        fault,
        trigger,
        detection,
        max_attempts: 1,
    };
    // Packets to the DH in a tap: RF_FIELD_INFO_NTF, RF_INTF_ACTIVATED_NTF, then the first
    // C-APDU's data packet (the third).
    vec![
        (
            case(Fault::CorruptHeader, Trigger::Nth(3), Detection::Immediate),
            "the SELECT's data packet with a reserved message type",
        ),
        (
            case(Fault::WrongLength, Trigger::Nth(3), Detection::Immediate),
            "the SELECT's data packet one octet short of its length field",
        ),
        (
            case(
                Fault::SpuriousCoreResetNtf,
                Trigger::Nth(3),
                Detection::Immediate,
            ),
            "CORE_RESET_NTF just before the SELECT",
        ),
        (
            case(
                Fault::CoreGenericErrorNtf(Status::Failed),
                Trigger::Nth(3),
                Detection::Immediate,
            ),
            "CORE_GENERIC_ERROR_NTF(FAILED) just before the SELECT",
        ),
        (
            case(
                Fault::LoseCreditsNtf,
                Trigger::Once,
                Detection::CreditTimeout,
            ),
            "the credit of the SELECT's answer is lost; READ BALANCE's answer waits for it",
        ),
    ]
}

#[test]
fn faults_mid_tap_re_initialise_and_restore_routing() {
    for profile in PROFILES {
        let reference = reference(profile);
        for (case, what) in mid_tap_cases() {
            let label = format!("{profile:?} mid-tap {:?}", case.fault);
            let mut h = pair(profile);
            h.run_until_idle().unwrap();
            let routing = h.nfcc.nfcc().routing_table().to_vec();
            let since = h.dh.records().len();
            let handle = h.nfcc.arm(case.fault.clone(), case.trigger);
            let report = h
                .tap(patient_reader(scripts::transit(
                    &scripts::TransitDebitRepr::default(),
                )))
                .unwrap();
            h.run_until_idle().unwrap();
            let fault_at = h.nfcc.fired_at(handle).expect(what);
            // The tap in progress is lost: the reader waits for an answer that never comes.
            assert!(
                matches!(report.outcome, TapOutcome::Timeout { .. }),
                "{label}: {:?}",
                report.outcome
            );
            // The session ended with the re-initialisation, before Reinitializing.
            let events: Vec<Event<'static>> =
                h.dh.records_since(since).iter().map(|r| r.event).collect();
            let ended = events
                .iter()
                .position(|e| *e == Event::Deactivated(Deactivation::Reinitialized));
            let reinit = events
                .iter()
                .position(|e| matches!(e, Event::Reinitializing { .. }));
            assert!(ended.is_some() && ended < reinit, "{label}: {events:?}");
            check_recovery(
                &h,
                since,
                &label,
                fault_at,
                case.detection,
                case.max_attempts,
                &reference,
            );
            assert_eq!(h.nfcc.nfcc().routing_table(), routing, "{label}");
            next_tap_succeeds(&mut h, &label);
        }
    }
}

#[test]
fn a_lost_credit_ends_with_the_session_when_the_reader_gives_up_first() {
    for profile in PROFILES {
        let label = format!("{profile:?} mid-tap LoseCreditsNtf, impatient reader");
        let mut h = pair(profile);
        h.run_until_idle().unwrap();
        let since = h.dh.records().len();
        let handle = h.nfcc.arm(Fault::LoseCreditsNtf, Trigger::Once);
        // The reader waits 1 s for READ BALANCE's answer; the controller would wait 1 s from
        // the host's answer (later) for the credit: the reader gives up first.
        let report = tap(
            &mut h,
            scripts::transit(&scripts::TransitDebitRepr::default()),
        );
        let fault_at = h.nfcc.fired_at(handle).unwrap();
        assert_eq!(report.outcome, TapOutcome::Timeout { step: 1 }, "{label}");
        // Its DESELECT ends the session, and with it the response waiting for a credit: the
        // next activation brings fresh credits (NCI 1.0 §4.4.4), so nothing needs a reset.
        let records = h.dh.records_since(since);
        assert!(!records
            .iter()
            .any(|r| matches!(r.event, Event::Reinitializing { .. })));
        let ended = records
            .iter()
            .find(|r| matches!(r.event, Event::Deactivated(_)))
            .unwrap();
        assert_eq!(
            ended.event,
            Event::Deactivated(Deactivation::Ntf {
                kind: DeactivationType::Sleep,
                reason: DeactivationReason::EndpointRequest,
            })
        );
        println!(
            "{label}: credit lost at {fault_at}, session ended by the reader after {:?}",
            ended.at - fault_at
        );
        assert_eq!(h.dh.controller().state(), State::Discovery);
        next_tap_succeeds(&mut h, &label);
    }
}

#[test]
fn response_faults_hit_the_reconfiguration_a_tap_deferred() {
    let config = Config::default();
    let faults = [
        (Fault::DropResponse, 1),
        (
            Fault::DelayResponse(config.command_timeout + Duration::from_millis(500)),
            2,
        ),
    ];
    for profile in PROFILES {
        let reference = reference(profile);
        for (fault, max_attempts) in faults.clone() {
            let label = format!("{profile:?} mid-tap {fault:?}");
            let mut h = pair(profile);
            h.run_until_idle().unwrap();
            let routing = h.nfcc.nfcc().routing_table().to_vec();
            let since = h.dh.records().len();
            let sent_before = h.dh.transmits();

            // Into the tap: activated 5 ms after the field came on, the SELECT on its way to
            // the host.
            let field_on = h.now();
            h.begin_tap(reader(scripts::transit(
                &scripts::TransitDebitRepr::default(),
            )));
            let activation = field_on + ReaderConfig::default().activation_time;
            h.run_until(activation + ANSWER_DELAY / 2).unwrap();
            assert_eq!(h.dh.controller().state(), State::Active, "{label}");
            // A wallet changes the listen technologies now: the controller defers it (no
            // command while a reader is present), and the next response goes wrong.
            let handle = h.nfcc.arm(fault.clone(), Trigger::Once);
            h.dh.set_listen(
                ListenTechs {
                    a: true,
                    b: false,
                    f: false,
                },
                h.now(),
            );
            assert_eq!(h.dh.controller().state(), State::Active, "{label}");
            let report = h.finish_tap().unwrap();
            h.run_until_idle().unwrap();
            // The tap itself was not disturbed.
            assert_eq!(report.outcome, TapOutcome::Completed, "{label}");
            // The first command after the session was RF_DEACTIVATE_CMD (to idle), and its
            // response is what the fault hit.
            let tap_end = report.field_on_at + report.total;
            let first_command = h
                .trace()
                .iter()
                .filter(|e| e.direction == Direction::DhToNfcc && e.bytes[0] & 0xE0 == 0x20)
                .find(|e| e.sent_at >= field_on)
                .unwrap();
            assert!(first_command.sent_at >= tap_end, "{label}");
            assert_eq!(first_command.bytes, [0x21, 0x06, 0x01, 0x00], "{label}");
            let fault_at = h.nfcc.fired_at(handle).expect("fired on RF_DEACTIVATE_RSP");
            assert!(fault_at >= tap_end, "{label}");
            assert!(h.dh.transmits() > sent_before);
            check_recovery(
                &h,
                since,
                &label,
                fault_at,
                Detection::CommandTimeout,
                max_attempts,
                &reference,
            );
            // The change was not lost with the re-initialisation.
            assert_eq!(
                h.nfcc.nfcc().discovery_modes(),
                [RfTechMode::NfcAPassiveListen],
                "{label}"
            );
            assert_eq!(h.nfcc.nfcc().routing_table(), routing, "{label}");
            next_tap_succeeds(&mut h, &label);
        }
    }
}

#[test]
fn link_loss_mid_apdu_ends_the_session_without_a_reset() {
    for profile in PROFILES {
        let label = format!("{profile:?} mid-tap LinkLossMidApdu");
        let mut h = pair(profile);
        h.run_until_idle().unwrap();
        let routing = h.nfcc.nfcc().routing_table().to_vec();
        let since = h.dh.records().len();
        // The card leaves the field as READ BALANCE (the second C-APDU) reaches the host.
        let handle = h.nfcc.arm(Fault::LinkLossMidApdu, Trigger::Nth(2));
        let report = tap(
            &mut h,
            scripts::transit(&scripts::TransitDebitRepr::default()),
        );
        let fault_at = h.nfcc.fired_at(handle).unwrap();
        assert_eq!(
            report.outcome,
            TapOutcome::LinkLoss {
                step: 1,
                reason: DeactivationReason::RfLinkLoss
            },
            "{label}"
        );
        let records = h.dh.records_since(since);
        let lost = records
            .iter()
            .find(|r| matches!(r.event, Event::Deactivated(_)))
            .unwrap();
        assert_eq!(
            lost.event,
            Event::Deactivated(Deactivation::Ntf {
                kind: DeactivationType::Discovery,
                reason: DeactivationReason::RfLinkLoss,
            })
        );
        // Nothing to recover: the controller is listening again the same instant.
        assert_eq!(lost.at, fault_at, "{label}");
        println!("{label}: fault at {fault_at}, listening again after 0s (no re-initialisation)");
        assert!(!records
            .iter()
            .any(|r| matches!(r.event, Event::Reinitializing { .. })));
        // The host was still working on READ BALANCE when the reader left: its answer is
        // dropped with the session, and no data packet goes out after the loss.
        let last = h.dh.exchanges().last().unwrap();
        assert_eq!(last.command, scripts::TRANSIT_READ_BALANCE);
        assert_eq!(last.sent, Err(SendError::NoSession));
        assert_eq!(last.answered_at, fault_at);
        assert!(!h.trace().iter().any(|e| e.direction == Direction::DhToNfcc
            && e.bytes[0] & 0xE0 == 0x00
            && e.sent_at >= fault_at));
        assert_eq!(h.dh.controller().state(), State::Discovery);
        assert_eq!(h.nfcc.nfcc().routing_table(), routing, "{label}");
        next_tap_succeeds(&mut h, &label);
    }
}

// ---- A dead controller ----------------------------------------------------------------------

fn core_resets_since(h: &Pair, since: Instant) -> Vec<Instant> {
    h.trace()
        .iter()
        .filter(|e| {
            e.direction == Direction::DhToNfcc
                && e.bytes == [0x20, 0x00, 0x01, 0x01]
                && e.sent_at >= since
        })
        .map(|e| e.sent_at)
        .collect()
}

#[test]
fn a_dead_controller_is_retried_with_back_off_then_given_up_until_started_again() {
    let config = Config::default();
    let attempts = config.max_reinit_attempts;
    for profile in PROFILES {
        let label = format!("{profile:?} dead at start-up");
        let mut h = pair(profile);
        // Dies as the third packet crosses the link (CORE_INIT_CMD under NCI 1.0, the
        // CORE_RESET_NTF under NCI 2.0).
        let handle = h.nfcc.arm(Fault::Dead, Trigger::Nth(3));
        h.run_until_idle().unwrap();
        let died = h.nfcc.fired_at(handle).unwrap();

        // Bounded: max_reinit_attempts re-initialisations, each after its back-off, then the
        // controller gives up and asks for nothing more.
        let reinits = recovery_attempts(&h);
        assert_eq!(reinits.len(), usize::from(attempts), "{label}");
        for (i, (_, attempt, delay)) in reinits.iter().enumerate() {
            assert_eq!(usize::from(*attempt), i + 1);
            assert_eq!(*delay, backoff(&config, *attempt));
        }
        let gave_up =
            h.dh.records()
                .iter()
                .find(|r| matches!(r.event, Event::Error(ControllerError::GaveUp { .. })))
                .unwrap();
        assert!(matches!(
            gave_up.event,
            Event::Error(ControllerError::GaveUp { attempts: a, last: ReinitCause::Timeout { .. } })
                if a == attempts
        ));
        assert_eq!(h.dh.controller().state(), State::Failed);
        assert_eq!(h.dh.controller().poll_timeout(), None);

        // One CORE_RESET_CMD per attempt, spaced by command timeout + back-off: the
        // back-off doubles and is visible in the timeline of poll_timeout.
        let resets = core_resets_since(&h, died + Duration::from_micros(1));
        assert_eq!(resets.len(), usize::from(attempts), "{label}");
        for (i, (at, attempt, delay)) in reinits.iter().enumerate() {
            assert_eq!(resets[i], *at + *delay, "{label} attempt {attempt}");
            assert!(h.dh.timeline().iter().any(|t| t.at == *at
                && t.state == State::Recovering
                && t.timeout == Some(*at + *delay)));
            assert!(h.dh.timeline().iter().any(|t| t.at == *at + *delay
                && t.state == State::Initializing
                && t.timeout == Some(*at + *delay + config.command_timeout)));
        }
        // No busy loop: the DH sent only the resets after death, and its timer fired once per
        // deadline — the first command timeout, then a back-off and a command timeout per
        // attempt.
        let after_death = h
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::DhToNfcc && e.sent_at > died)
            .count();
        assert_eq!(after_death, usize::from(attempts), "{label}");
        assert_eq!(h.dh.timeouts(), 1 + 2 * u64::from(attempts), "{label}");
        let gave_up_after = gave_up.at - died;
        let expected: Duration = config.command_timeout * (u32::from(attempts) + 1)
            + (1..=attempts)
                .map(|a| backoff(&config, a))
                .sum::<Duration>();
        assert_eq!(gave_up_after, expected, "{label}");
        println!("{label}: gave up {gave_up_after:?} after the controller died, {attempts} resets");

        // It comes back (the daemon power-cycled it) and the host starts again.
        let back = h.now() + Duration::from_secs(1);
        h.run_until(back).unwrap();
        h.nfcc.revive(back);
        h.dh.start(back);
        h.run_until_idle().unwrap();
        let ready = h.dh.last_ready_at().unwrap();
        println!("{label}: back at {back}, Ready after {:?}", ready - back);
        assert_eq!(h.dh.controller().state(), State::Discovery);
        assert_eq!(h.nfcc.nfcc().routing_table(), reference(profile).routing);
        next_tap_succeeds(&mut h, &label);
    }
}

fn recovery_attempts(h: &Pair) -> Vec<(Instant, u8, Duration)> {
    h.dh.records()
        .iter()
        .filter_map(|r| match r.event {
            Event::Reinitializing { attempt, delay, .. } => Some((r.at, attempt, delay)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_controller_that_dies_mid_tap_and_comes_back_is_recovered_without_a_restart() {
    let config = Config::default();
    for profile in PROFILES {
        let label = format!("{profile:?} dead mid-tap");
        let reference = reference(profile);
        let mut h = pair(profile);
        h.run_until_idle().unwrap();
        let routing = h.nfcc.nfcc().routing_table().to_vec();
        let since = h.dh.records().len();
        // Packets of the tap: RF_FIELD_INFO_NTF, RF_INTF_ACTIVATED_NTF, the SELECT, then the
        // first of the two packets of its 300-octet answer: the controller dies taking it.
        let handle = h.nfcc.arm(Fault::Dead, Trigger::Nth(4));
        let report = h.tap(reader(read_file())).unwrap();
        let died = h.nfcc.fired_at(handle).unwrap();
        assert!(matches!(report.outcome, TapOutcome::Timeout { step: 0 }));

        // Only the wait for the credit notices: the second packet cannot go. It stays dead
        // for two attempts and comes back in the middle of the third back-off.
        let first = died + config.credit_timeout;
        let third = first
            + backoff(&config, 1)
            + config.command_timeout
            + backoff(&config, 2)
            + config.command_timeout;
        let back = third + backoff(&config, 3) / 2;
        assert!(h.now() < first, "{label}");
        h.run_until(back).unwrap();
        // While it was dead the DH sent one CORE_RESET_CMD per attempt and nothing else.
        let while_dead: Vec<&[u8]> = h
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::DhToNfcc && e.sent_at > died)
            .map(|e| e.bytes.as_slice())
            .collect();
        assert_eq!(while_dead, [[0x20, 0x00, 0x01, 0x01]; 2], "{label}");
        h.nfcc.revive(back);
        h.run_until_idle().unwrap();
        let rec = recovery(&h, since);
        assert_eq!(rec.reinits.len(), 3, "{label}");
        assert_eq!(rec.reinits[0].0, first, "{label}");
        assert_eq!(rec.reinits[0].1, ReinitCause::CreditLost, "{label}");
        assert_eq!(rec.reinits[2].0, third, "{label}");
        let took = rec.ready_at - died;
        let bound = recovery_bound(&config, Detection::CreditTimeout, 3, &reference);
        println!(
            "{label}: died at {died}, back at {back}, Ready again after {took:?} (bound {bound:?})"
        );
        assert!(took <= bound, "{label}");
        assert!(!h
            .dh
            .events()
            .any(|e| matches!(e, Event::Error(ControllerError::GaveUp { .. }))));
        assert_eq!(h.nfcc.nfcc().routing_table(), routing, "{label}");
        next_tap_succeeds(&mut h, &label);
    }
}
