//! The virtual reader: a payment terminal or transit gate tapping the emulated card.
//!
//! What it does: switches its field on, activates the card in NFC-A or NFC-B after an
//! activation time, runs a [`Script`] step by step through the virtual NFCC's RF side, records
//! every C-APDU, R-APDU, status word and time, and ends the tap with a DESELECT and field off
//! (or by simply vanishing: RF link loss). A response that does not arrive within the APDU
//! timeout ends the tap too (the real reader would give up after its frame waiting time
//! extensions).
//!
//! What it does not do: anticollision, RATS/ATTRIB, WTX or block-level ISO-DEP — the NFCC's
//! ISO-DEP interface hides those from the DH, which is all this simulation is about.
//!
//! It is sans-IO like everything else: [`Reader::poll`] acts at `now` and
//! [`Reader::poll_timeout`] says when it wants to act next.

use std::collections::VecDeque;
use std::string::String;
use std::vec::Vec;

use super::nfcc::{NfccEndpoint, RfError, RfEvent};
use super::scripts::{Expect, Script, Step, Values};
use crate::apdu::StatusWord;
use crate::time::{Duration, Instant};
use crate::wire::{DeactivationReason, RfTechnology};

/// One command/response pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApduRecord {
    /// The C-APDU.
    pub cmd: Vec<u8>,
    /// The R-APDU (status word included).
    pub rsp: Vec<u8>,
    /// Its status word, `None` when shorter than 2 octets.
    pub sw: Option<StatusWord>,
    /// When the reader started sending the C-APDU.
    pub sent_at: Instant,
    /// When the last bit of the R-APDU arrived.
    pub answered_at: Instant,
}

impl ApduRecord {
    /// Round trip as seen by the reader.
    pub fn latency(&self) -> Duration {
        self.answered_at - self.sent_at
    }
}

/// How a tap ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapOutcome {
    /// Every step ran and every status word was as expected.
    Completed,
    /// Step `step` (index into the APDUs sent) got an unexpected status word.
    UnexpectedStatus {
        /// Index of the APDU.
        step: usize,
        /// What the script expected.
        expected: Expect,
        /// What came back.
        got: Option<StatusWord>,
    },
    /// The card could not be activated.
    ActivationFailed(RfError),
    /// No response to APDU `step` within the APDU timeout.
    Timeout {
        /// Index of the APDU.
        step: usize,
    },
    /// The link ended while APDU `step` was the next to be answered or sent.
    LinkLoss {
        /// Index of the APDU.
        step: usize,
        /// Reason the NFCC gave.
        reason: DeactivationReason,
    },
    /// The NFCC refused a C-APDU.
    RfError {
        /// Index of the APDU.
        step: usize,
        /// Why.
        error: RfError,
    },
    /// A deciding step failed (e.g. the card's data made no sense).
    ScriptError {
        /// Index of the next APDU.
        step: usize,
        /// What went wrong.
        message: String,
    },
}

/// What the reader recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapReport {
    /// Script name.
    pub script: String,
    /// Technology the card was activated in.
    pub technology: RfTechnology,
    /// When the field came on.
    pub field_on_at: Instant,
    /// When the card was activated.
    pub activated_at: Option<Instant>,
    /// Every exchange, in order.
    pub apdus: Vec<ApduRecord>,
    /// From field on to the end of the tap.
    pub total: Duration,
    /// How it ended.
    pub outcome: TapOutcome,
    /// Facts the script extracted.
    pub values: Values,
}

impl TapReport {
    /// From activation to the last response: what transit and payment budgets are about.
    pub fn transaction_time(&self) -> Option<Duration> {
        let start = self.activated_at?;
        let end = self.apdus.last()?.answered_at;
        Some(end - start)
    }

    /// A recorded value.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(Vec::as_slice)
    }
}

/// How the reader ends a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapEnd {
    /// DESELECT, then field off (a well-behaved terminal).
    Deselect,
    /// Field off without DESELECT (the card is pulled away).
    LinkLoss,
}

/// Reader behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Technology to activate the card in.
    pub technology: RfTechnology,
    /// Field on → activation: polling, anticollision and RATS/ATTRIB. 5 ms by default, an
    /// assumption of this model (at least the NFC Forum Digital guard time of 5.1 ms minus
    /// what the first poll frames take).
    pub activation_time: Duration,
    /// How long to wait for each R-APDU. 1 s by default.
    pub apdu_timeout: Duration,
    /// Time between a response and the next command. Zero by default.
    pub think_time: Duration,
    /// How the tap ends.
    pub end: TapEnd,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            technology: RfTechnology::NfcA,
            activation_time: Duration::from_millis(5),
            apdu_timeout: Duration::from_secs(1),
            think_time: Duration::ZERO,
            end: TapEnd::Deselect,
        }
    }
}

#[derive(Debug)]
enum State {
    Start,
    Activating { at: Instant },
    Ready { at: Instant },
    Waiting { deadline: Instant },
    Done,
}

#[derive(Debug)]
struct Pending {
    cmd: Vec<u8>,
    expect: Expect,
    sent_at: Instant,
}

/// A reader running one script, once.
#[derive(Debug)]
pub struct Reader {
    config: ReaderConfig,
    script: String,
    steps: VecDeque<Step>,
    state: State,
    field_on_at: Instant,
    activated_at: Option<Instant>,
    ended_at: Instant,
    pending: Option<Pending>,
    records: Vec<ApduRecord>,
    values: Values,
    outcome: Option<TapOutcome>,
}

impl Reader {
    /// A reader that will run `script` when first polled.
    pub fn new(script: Script, config: ReaderConfig) -> Reader {
        Reader {
            config,
            script: script.name,
            steps: script.steps.into(),
            state: State::Start,
            field_on_at: Instant::ZERO,
            activated_at: None,
            ended_at: Instant::ZERO,
            pending: None,
            records: Vec::new(),
            values: Values::new(),
            outcome: None,
        }
    }

    /// `true` once the tap has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// When the reader wants to act next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Activating { at } | State::Ready { at } => Some(at),
            State::Waiting { deadline } => Some(deadline),
            State::Start | State::Done => None,
        }
    }

    /// The report, once done.
    pub fn report(&self) -> Option<TapReport> {
        let outcome = self.outcome.clone()?;
        Some(TapReport {
            script: self.script.clone(),
            technology: self.config.technology,
            field_on_at: self.field_on_at,
            activated_at: self.activated_at,
            apdus: self.records.clone(),
            total: self.ended_at - self.field_on_at,
            outcome,
            values: self.values.clone(),
        })
    }

    /// Act at `now` against `nfcc`'s RF side. Returns `true` when anything happened.
    pub fn poll<N: NfccEndpoint + ?Sized>(&mut self, now: Instant, nfcc: &mut N) -> bool {
        let mut progress = false;
        loop {
            let acted = self.poll_once(now, nfcc);
            progress |= acted;
            if !acted {
                return progress;
            }
        }
    }

    fn poll_once<N: NfccEndpoint + ?Sized>(&mut self, now: Instant, nfcc: &mut N) -> bool {
        match self.state {
            State::Done => {
                // Drain what the NFCC reports about the end we caused.
                nfcc.poll_rf_event().is_some()
            }
            State::Start => {
                nfcc.reader_field(true, now);
                self.field_on_at = now;
                self.state = State::Activating {
                    at: now + self.config.activation_time,
                };
                true
            }
            State::Activating { at } => {
                if now < at {
                    return false;
                }
                match nfcc.reader_activate(self.config.technology, now) {
                    Ok(()) => {
                        self.activated_at = Some(now);
                        self.state = State::Ready { at: now };
                    }
                    Err(error) => self.finish(TapOutcome::ActivationFailed(error), now, nfcc),
                }
                true
            }
            State::Ready { at } => {
                if let Some(RfEvent::Deactivated { reason, .. }) = nfcc.poll_rf_event() {
                    let step = self.records.len();
                    self.finish(TapOutcome::LinkLoss { step, reason }, now, nfcc);
                    return true;
                }
                if now < at {
                    return false;
                }
                self.next_step(now, nfcc);
                true
            }
            State::Waiting { deadline } => match nfcc.poll_rf_event() {
                Some(RfEvent::Response { at, apdu }) => {
                    self.answered(at, apdu, now, nfcc);
                    true
                }
                Some(RfEvent::Deactivated { reason, .. }) => {
                    let step = self.records.len();
                    self.finish(TapOutcome::LinkLoss { step, reason }, now, nfcc);
                    true
                }
                None if now >= deadline => {
                    let step = self.records.len();
                    self.finish(TapOutcome::Timeout { step }, now, nfcc);
                    true
                }
                None => false,
            },
        }
    }

    fn next_step<N: NfccEndpoint + ?Sized>(&mut self, now: Instant, nfcc: &mut N) {
        let step = self.records.len();
        match self.steps.pop_front() {
            None => self.finish(TapOutcome::Completed, now, nfcc),
            Some(Step::Decide(mut decide)) => match decide(&self.records, &mut self.values) {
                Ok(steps) => {
                    for s in steps.into_iter().rev() {
                        self.steps.push_front(s);
                    }
                }
                Err(message) => self.finish(TapOutcome::ScriptError { step, message }, now, nfcc),
            },
            Some(Step::Send { apdu, expect }) => match nfcc.reader_send_apdu(&apdu, now) {
                Ok(()) => {
                    self.pending = Some(Pending {
                        cmd: apdu,
                        expect,
                        sent_at: now,
                    });
                    self.state = State::Waiting {
                        deadline: now + self.config.apdu_timeout,
                    };
                }
                Err(error) => self.finish(TapOutcome::RfError { step, error }, now, nfcc),
            },
        }
    }

    fn answered<N: NfccEndpoint + ?Sized>(
        &mut self,
        at: Instant,
        rsp: Vec<u8>,
        now: Instant,
        nfcc: &mut N,
    ) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let sw = StatusWord::from_response(&rsp);
        let step = self.records.len();
        self.records.push(ApduRecord {
            cmd: pending.cmd,
            rsp,
            sw,
            sent_at: pending.sent_at,
            answered_at: at,
        });
        if pending.expect.accepts(sw) {
            self.state = State::Ready {
                at: at + self.config.think_time,
            };
        } else {
            let outcome = TapOutcome::UnexpectedStatus {
                step,
                expected: pending.expect,
                got: sw,
            };
            self.finish(outcome, now, nfcc);
        }
    }

    fn finish<N: NfccEndpoint + ?Sized>(
        &mut self,
        outcome: TapOutcome,
        now: Instant,
        nfcc: &mut N,
    ) {
        let link_lost = matches!(outcome, TapOutcome::LinkLoss { .. });
        if !link_lost && self.activated_at.is_some() && self.config.end == TapEnd::Deselect {
            // A DESELECT the card cannot take (already gone) changes nothing.
            let _ = nfcc.reader_deactivate(DeactivationReason::EndpointRequest, now);
        }
        nfcc.reader_field(false, now);
        self.outcome = Some(outcome);
        self.ended_at = now;
        self.state = State::Done;
    }
}
