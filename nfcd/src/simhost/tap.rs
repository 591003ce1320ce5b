//! What a simulated tap is asked to do, and how it is run: the reader scripts by name, the
//! reader's options, the faults by name, and the loop that runs a [`Reader`] against the
//! virtual controller in real time.
//!
//! Contract: names and options are parsed here once, for every front end (the `Simulator1`
//! D-Bus interface, the `nci-sim` command line, tests). The reader itself, its scripts and the
//! fault injector are libnci's; this module only picks them and drives the reader's sans-IO
//! loop with the wall clock. It does not decide what a tap "should" have returned beyond what
//! the script checks (status words), except for the time budgets of [`TapScript::budget`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use libnci::sim::nfcc::{NfccEndpoint, RfError, RfEvent, Transmit};
use libnci::sim::scripts::{self, EmvParams};
use libnci::sim::{Fault, Nfcc, Script, Step, TapOutcome, Trigger};
use libnci::time::Instant;
use libnci::wire::{DeactivationReason, RfTechnology, Status};

use super::SimError;

/// A reader script of libnci's `sim::scripts`, by the name clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapScript {
    /// `emv`: SELECT PPSE, SELECT the application it lists, GET PROCESSING OPTIONS, READ RECORD
    /// per AFL entry, GENERATE AC (EMV Book 3 §10, EMV Contactless Book B).
    Emv,
    /// `transit`: SELECT the transit application, READ BALANCE, DEBIT the fare.
    Transit,
    /// `sweep256`: SELECT of 256 different eight-octet AIDs in one activation, each `9000`.
    Sweep256,
    /// `unknown-aid`: SELECT of an AID nobody registers, expecting `6A82`.
    UnknownAid,
    /// `hostile`: malformed and invalid commands, absurd SELECTs, 64 KiB of command chaining
    /// and a storm of 300 APDUs, each expecting the status word ISO/IEC 7816-4 defines
    /// (libnci `sim::scripts::hostile`).
    Hostile,
}

impl TapScript {
    /// Every script, in documentation order.
    pub const ALL: [TapScript; 5] = [
        TapScript::Emv,
        TapScript::Transit,
        TapScript::Sweep256,
        TapScript::UnknownAid,
        TapScript::Hostile,
    ];

    /// The name clients use (`Simulator1.Tap`, `nci-sim`).
    pub fn name(self) -> &'static str {
        match self {
            TapScript::Emv => "emv",
            TapScript::Transit => "transit",
            TapScript::Sweep256 => "sweep256",
            TapScript::UnknownAid => "unknown-aid",
            TapScript::Hostile => "hostile",
        }
    }

    /// The time the whole tap may take, activation to field off, before a front end calls it
    /// too slow: EMV contactless ~500 ms, transit gates 300 ms, Android's HCE bar of 16 APDUs
    /// per second for the 256 SELECTs of the sweep, 100 ms for one SELECT, and for the
    /// hostile reader's 586 commands 15 s: its 64 KiB chain alone is about 6 s of air time at
    /// 106 kbit/s.
    pub fn budget(self) -> Duration {
        match self {
            TapScript::Emv => Duration::from_millis(500),
            TapScript::Transit => Duration::from_millis(300),
            TapScript::Sweep256 => Duration::from_secs(16),
            TapScript::UnknownAid => Duration::from_millis(100),
            TapScript::Hostile => Duration::from_secs(15),
        }
    }

    /// Whether the script's first SELECT may name another AID ([`TapOptions::aid`]). The EMV
    /// flow selects the PPSE and then whatever it lists; the sweep selects its own 256 AIDs.
    pub fn takes_aid(self) -> bool {
        matches!(self, TapScript::Transit | TapScript::UnknownAid)
    }

    /// The libnci script, its first SELECT retargeted to `aid` when one is given.
    pub fn build(self, aid: Option<&[u8]>) -> Result<Script, SimError> {
        let mut script = match self {
            TapScript::Emv => scripts::emv(&EmvParams::default()),
            TapScript::Transit => scripts::transit(&scripts::TransitDebitRepr::default()),
            TapScript::Sweep256 => scripts::sweep256(),
            TapScript::UnknownAid => scripts::unknown_aid(),
            TapScript::Hostile => scripts::hostile(),
        };
        if let Some(aid) = aid {
            if !self.takes_aid() {
                return Err(SimError::InvalidArgument(format!(
                    "script {} selects its own AIDs; it takes no AID",
                    self.name()
                )));
            }
            match script.steps.first_mut() {
                Some(Step::Send { apdu, .. }) => *apdu = scripts::select_aid(aid),
                _ => {
                    return Err(SimError::InvalidArgument(format!(
                        "script {} does not start with a SELECT",
                        self.name()
                    )))
                }
            }
        }
        Ok(script)
    }
}

impl fmt::Display for TapScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TapScript {
    type Err = SimError;

    /// `emv`, `transit`, `sweep256`, `unknown-aid` (`unknown_aid`, libnci's own name, too) or
    /// `hostile`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "emv" => Ok(TapScript::Emv),
            "transit" => Ok(TapScript::Transit),
            "sweep256" => Ok(TapScript::Sweep256),
            "unknown-aid" | "unknown_aid" => Ok(TapScript::UnknownAid),
            "hostile" => Ok(TapScript::Hostile),
            other => Err(SimError::InvalidArgument(format!(
                "unknown script {other:?} (expected emv, transit, sweep256, unknown-aid or hostile)"
            ))),
        }
    }
}

/// The RF technology the reader polls and activates the card in (ISO/IEC 14443-3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Tech {
    /// NFC-A (Type A): what EMV terminals and most gates use first.
    #[default]
    A,
    /// NFC-B (Type B).
    B,
}

impl Tech {
    /// The name clients use: `a` or `b`.
    pub fn name(self) -> &'static str {
        match self {
            Tech::A => "a",
            Tech::B => "b",
        }
    }

    /// The NCI technology.
    pub fn technology(self) -> RfTechnology {
        match self {
            Tech::A => RfTechnology::NfcA,
            Tech::B => RfTechnology::NfcB,
        }
    }
}

impl FromStr for Tech {
    type Err = SimError;

    /// `a` or `b`, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "a" | "A" => Ok(Tech::A),
            "b" | "B" => Ok(Tech::B),
            other => Err(SimError::InvalidArgument(format!(
                "unknown technology {other:?} (expected a or b)"
            ))),
        }
    }
}

/// How the reader taps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapOptions {
    /// Technology to activate the card in.
    pub tech: Tech,
    /// The card leaves the field after this many complete command/response exchanges, before
    /// the reader sends anything else (DESELECT included): RF link loss, RF_DEACTIVATE_NTF with
    /// reason RF_LINK_LOSS to the host (NCI 1.0 §5.2.5). `None`: the tap runs to its end.
    pub link_loss_after: Option<u32>,
    /// AID the script's first SELECT names instead of its own; only for scripts where
    /// [`TapScript::takes_aid`].
    pub aid: Option<Vec<u8>>,
    /// How long the reader waits for each R-APDU before it gives up on the tap (1 s by
    /// default, libnci's `ReaderConfig::apdu_timeout`).
    pub apdu_timeout: Duration,
    /// Upper bound on the whole tap in real time. The reader gives up on a single missing
    /// response after `apdu_timeout`; this bounds everything else.
    pub timeout: Duration,
}

impl Default for TapOptions {
    fn default() -> Self {
        TapOptions {
            tech: Tech::A,
            link_loss_after: None,
            aid: None,
            apdu_timeout: libnci::sim::ReaderConfig::default().apdu_timeout,
            timeout: DEFAULT_TAP_TIMEOUT,
        }
    }
}

/// Default [`TapOptions::timeout`]: below the 25 s a D-Bus daemon lets a method call run, above
/// what the longest script (the 256-SELECT sweep) needs.
pub const DEFAULT_TAP_TIMEOUT: Duration = Duration::from_secs(20);

/// A short machine-readable name of how a tap ended: `completed`, `unexpected-status`,
/// `activation-failed`, `timeout`, `link-loss`, `rf-error` or `script-error`.
pub fn outcome_name(outcome: &TapOutcome) -> &'static str {
    match outcome {
        TapOutcome::Completed => "completed",
        TapOutcome::UnexpectedStatus { .. } => "unexpected-status",
        TapOutcome::ActivationFailed(_) => "activation-failed",
        TapOutcome::Timeout { .. } => "timeout",
        TapOutcome::LinkLoss { .. } => "link-loss",
        TapOutcome::RfError { .. } => "rf-error",
        TapOutcome::ScriptError { .. } => "script-error",
    }
}

/// What went wrong in a tap, for people; empty for a completed tap.
pub fn outcome_detail(outcome: &TapOutcome) -> String {
    match outcome {
        TapOutcome::Completed => String::new(),
        TapOutcome::UnexpectedStatus {
            step,
            expected,
            got,
        } => {
            let got = got.map_or_else(|| "no status word".to_owned(), |sw| sw.to_string());
            let expected = match expected {
                scripts::Expect::Sw(sw) => sw.to_string(),
                scripts::Expect::Any => "any status word".to_owned(),
            };
            format!("APDU {}: expected {expected}, got {got}", step + 1)
        }
        TapOutcome::ActivationFailed(error) => format!("activation failed: {error}"),
        TapOutcome::Timeout { step } => format!("APDU {}: no response in time", step + 1),
        TapOutcome::LinkLoss { step, reason } => {
            format!("link ended before APDU {} ({reason})", step + 1)
        }
        TapOutcome::RfError { step, error } => format!("APDU {}: {error}", step + 1),
        TapOutcome::ScriptError { step, message } => {
            format!("before APDU {}: {message}", step + 1)
        }
    }
}

/// A fault of libnci's [`FaultInjector`](libnci::sim::FaultInjector) by name, with its trigger.
///
/// Text form: `NAME` (fires on the next packet the fault applies to) or `NAME@N` (on the N-th
/// such packet, N ≥ 1). Names:
///
/// | name | fault |
/// |---|---|
/// | `drop-response` | the next response to the host is lost |
/// | `delay-response` | the next response, and all after it, is held back 1.5 s (longer than the host's 1 s command timeout) |
/// | `corrupt-header` | the message type bits of the next packet to the host become reserved ones |
/// | `wrong-length` | the length octet of the next packet to the host claims one octet more |
/// | `spurious-reset` | a CORE_RESET_NTF (NCI 2.0 §4.1, trigger "unrecoverable error") goes to the host before the next packet |
/// | `generic-error` | CORE_GENERIC_ERROR_NTF(STATUS_FAILED) goes to the host before the next packet |
/// | `lose-credit` | the next CORE_CONN_CREDITS_NTF is lost (NCI 1.0 §4.4) |
/// | `link-loss-mid-apdu` | the reader leaves the field right after a C-APDU went to the host |
/// | `drop-command` | the next command from the host is lost |
/// | `dead` | the controller stops answering until it is power-cycled |
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// The fault.
    pub fault: Fault,
    /// When it fires.
    pub trigger: Trigger,
}

/// The fault names [`FaultSpec`] accepts.
pub const FAULT_NAMES: [&str; 10] = [
    "drop-response",
    "delay-response",
    "corrupt-header",
    "wrong-length",
    "spurious-reset",
    "generic-error",
    "lose-credit",
    "link-loss-mid-apdu",
    "drop-command",
    "dead",
];

/// How long `delay-response` holds packets back: past the host's 1 s command timeout (libnci
/// `controller::Config::command_timeout` default), so the host must recover.
pub const DELAY_RESPONSE: Duration = Duration::from_millis(1500);

impl FromStr for FaultSpec {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, trigger) = match s.split_once('@') {
            None => (s, Trigger::Once),
            Some((name, n)) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => (name, Trigger::Nth(n)),
                _ => {
                    return Err(SimError::InvalidArgument(format!(
                        "fault {s:?}: the count after '@' must be a number from 1"
                    )))
                }
            },
        };
        let fault = match name {
            "drop-response" => Fault::DropResponse,
            "delay-response" => Fault::DelayResponse(DELAY_RESPONSE),
            "corrupt-header" => Fault::CorruptHeader,
            "wrong-length" => Fault::WrongLength,
            "spurious-reset" => Fault::SpuriousCoreResetNtf,
            "generic-error" => Fault::CoreGenericErrorNtf(Status::Failed),
            "lose-credit" => Fault::LoseCreditsNtf,
            "link-loss-mid-apdu" => Fault::LinkLossMidApdu,
            "drop-command" => Fault::DropCommand,
            "dead" => Fault::Dead,
            other => {
                return Err(SimError::InvalidArgument(format!(
                    "unknown fault {other:?} (expected one of {})",
                    FAULT_NAMES.join(", ")
                )))
            }
        };
        Ok(FaultSpec { fault, trigger })
    }
}

/// The reader's view of the controller during one tap: passes everything through, and makes
/// the card leave the field after [`TapOptions::link_loss_after`] exchanges.
///
/// The cut happens when the reader next looks for an RF event after the n-th response, which
/// it does before every further action, so it sees the link loss instead of sending.
pub(crate) struct LinkCut<'a, N> {
    pub(crate) inner: &'a mut N,
    pub(crate) now: Instant,
    pub(crate) state: &'a mut CutState,
}

/// What [`LinkCut`] remembers between polls.
#[derive(Debug, Default)]
pub(crate) struct CutState {
    pub(crate) after: Option<u32>,
    pub(crate) responses: u32,
    pub(crate) cut: bool,
}

impl<N: NfccEndpoint> NfccEndpoint for LinkCut<'_, N> {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.inner.handle_packet(packet, now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.inner.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn reader_field(&mut self, on: bool, now: Instant) {
        self.inner.reader_field(on, now);
    }
    fn reader_activate(&mut self, technology: RfTechnology, now: Instant) -> Result<(), RfError> {
        self.inner.reader_activate(technology, now)
    }
    fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError> {
        self.inner.reader_send_apdu(apdu, now)
    }
    fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError> {
        self.inner.reader_deactivate(reason, now)
    }
    fn poll_rf_event(&mut self) -> Option<RfEvent> {
        let state = &mut *self.state;
        if !state.cut && state.after.is_some_and(|n| state.responses >= n) {
            state.cut = true;
            self.inner.reader_field(false, self.now);
        }
        let event = self.inner.poll_rf_event();
        if matches!(event, Some(RfEvent::Response { .. })) {
            state.responses = state.responses.saturating_add(1);
        }
        event
    }
}

/// Keeps the type of the controller the reader talks to in one place.
pub(crate) type Endpoint = libnci::sim::FaultInjector<Nfcc>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_round_trip() {
        for script in TapScript::ALL {
            assert_eq!(script.name().parse::<TapScript>().ok(), Some(script));
        }
        assert_eq!(
            "unknown_aid".parse::<TapScript>().ok(),
            Some(TapScript::UnknownAid)
        );
        assert!(matches!(
            "ppse".parse::<TapScript>(),
            Err(SimError::InvalidArgument(_))
        ));
    }

    #[test]
    fn aid_retargets_the_first_select() {
        let aid = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
        let script = TapScript::UnknownAid.build(Some(&aid)).ok();
        let first = script.as_ref().and_then(|s| s.steps.first());
        let Some(Step::Send { apdu, .. }) = first else {
            panic!("a SELECT step expected, got {first:?}");
        };
        // SELECT by DF name: 00 A4 04 00 07 <aid> 00 (ISO/IEC 7816-4 §11.2.2)
        assert_eq!(
            apdu,
            &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00]
        );
        assert!(matches!(
            TapScript::Emv.build(Some(&aid)),
            Err(SimError::InvalidArgument(_))
        ));
        assert!(TapScript::Sweep256.build(None).is_ok());
        assert!(matches!(
            TapScript::Hostile.build(Some(&aid)),
            Err(SimError::InvalidArgument(_))
        ));
        let hostile = TapScript::Hostile.build(None).ok();
        assert_eq!(hostile.map(|s| s.name), Some("hostile".to_owned()));
    }

    /// The hostile script's budget covers its air time at 106 kbit/s (ISO/IEC 14443-4 framing)
    /// with a quarter left for the daemon and the service: every command, each answered by a
    /// service saying its Id (about 20 octets) and the status word.
    #[test]
    fn hostile_budget_covers_its_air_time() {
        use libnci::apdu::StatusWord;
        use libnci::sim::{ApduRecord, RfTiming};
        let rf = RfTiming::default();
        let tech = RfTechnology::NfcA;
        let mut steps: std::collections::VecDeque<Step> = match TapScript::Hostile.build(None) {
            Ok(script) => script.steps.into(),
            Err(e) => panic!("{e}"),
        };
        let selected = ApduRecord {
            cmd: Vec::new(),
            rsp: vec![0x90, 0x00],
            sw: Some(StatusWord::NO_ERROR),
            sent_at: Instant::ZERO,
            answered_at: Instant::ZERO,
        };
        let (mut air, mut commands) = (Duration::ZERO, 0);
        let mut values = libnci::sim::scripts::Values::new();
        while let Some(step) = steps.pop_front() {
            match step {
                Step::Send { apdu, .. } => {
                    commands += 1;
                    air += rf.command_time(tech, apdu.len()) + rf.response_time(tech, 22);
                }
                Step::Decide(mut decide) => {
                    let more = decide(std::slice::from_ref(&selected), &mut values)
                        .unwrap_or_else(|e| panic!("{e}"));
                    for step in more.into_iter().rev() {
                        steps.push_front(step);
                    }
                }
            }
        }
        assert_eq!(commands, libnci::sim::scripts::hostile_apdu_count());
        let budget = TapScript::Hostile.budget();
        assert!(
            air * 4 < budget * 3,
            "{} ms of air time against a budget of {} ms",
            air.as_millis(),
            budget.as_millis()
        );
    }

    #[test]
    fn fault_names() {
        for name in FAULT_NAMES {
            let spec: FaultSpec = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(spec.trigger, Trigger::Once);
        }
        let spec: Result<FaultSpec, _> = "spurious-reset@4".parse();
        assert_eq!(
            spec.ok(),
            Some(FaultSpec {
                fault: Fault::SpuriousCoreResetNtf,
                trigger: Trigger::Nth(4)
            })
        );
        assert!("spurious-reset@0".parse::<FaultSpec>().is_err());
        assert!("melt".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn technologies() {
        assert_eq!("b".parse::<Tech>().ok(), Some(Tech::B));
        assert_eq!(Tech::A.technology(), RfTechnology::NfcA);
        assert!("f".parse::<Tech>().is_err());
    }
}
