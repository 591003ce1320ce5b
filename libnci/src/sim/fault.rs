//! Fault injection as a wrapper around a virtual controller, in the manner of smoltcp's
//! `FaultInjector` phy wrapper: the controller itself stays correct, the wrapper damages what
//! crosses the link.
//!
//! What it does: drops, delays or damages packets going to the DH, injects notifications a
//! sick controller sends, loses commands on their way in, ends the RF link in the middle of an
//! APDU, or plays dead. Each fault is armed with a [`Trigger`]: once (on the next packet it
//! applies to), on the n-th such packet, or on each such packet with a probability drawn from
//! a seeded [`XorShift64`], so every run replays exactly.
//!
//! What it does not do: change the controller's internal state (a dropped response was still
//! processed by the controller, exactly as when a real response is lost on the bus).
//!
//! Which packets each fault applies to is fixed by the fault (see [`Fault`]).

use std::collections::VecDeque;
use std::vec::Vec;

use super::nfcc::{NfccEndpoint, RfError, RfEvent, Transmit};
use super::rng::XorShift64;
use crate::time::{Duration, Instant};
use crate::wire::{DeactivationReason, MessageType, RfTechnology, Status};

/// The NCI 2.0 CORE_RESET_NTF [`Fault::SpuriousCoreResetNtf`] injects: trigger
/// UNRECOVERABLE_ERROR, configuration kept, NCI 2.0, manufacturer 0, four octets of
/// manufacturer information (NCI 2.0 Table 9). NCI 1.0 defines no such notification; a DH
/// talking to a PN7150 should treat it as a controller reset all the same.
pub const SPURIOUS_CORE_RESET_NTF: [u8; 12] = [
    0x60, 0x00, 0x09, 0x00, 0x00, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
];

/// What goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// A response to the DH is lost (applies to responses).
    DropResponse,
    /// A response to the DH, and everything the controller sends after it, is held back
    /// (applies to responses).
    DelayResponse(Duration),
    /// Octet 0 of a packet is XORed with `E0`: its message type becomes a reserved one
    /// (RSP `010` → `101`, NTF `011` → `100`, DATA `000` → `111`) (applies to every packet to
    /// the DH).
    CorruptHeader,
    /// The payload length field of a packet claims one octet more than the packet holds
    /// (applies to every packet to the DH).
    WrongLength,
    /// [`SPURIOUS_CORE_RESET_NTF`] goes to the DH just before a packet (applies to every
    /// packet to the DH).
    SpuriousCoreResetNtf,
    /// CORE_GENERIC_ERROR_NTF with this status goes to the DH just before a packet (applies
    /// to every packet to the DH).
    CoreGenericErrorNtf(Status),
    /// Any bytes go to the DH just before a packet (applies to every packet to the DH).
    Inject(Vec<u8>),
    /// A CORE_CONN_CREDITS_NTF is lost (applies to that notification).
    LoseCreditsNtf,
    /// The reader leaves the field right after a data packet went to the DH, while the card
    /// owes the answer: RF link loss in the middle of an APDU (applies to data packets to the
    /// DH).
    LinkLossMidApdu,
    /// A command from the DH is lost on its way in (applies to commands).
    DropCommand,
    /// The controller stops: from the packet this fires on, nothing goes in or out and the
    /// RF side is dead too (applies to every packet, both ways).
    Dead,
}

/// When an armed fault fires, counted over the packets it applies to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// On the next one, then disarmed.
    Once,
    /// On the n-th one (1-based), then disarmed.
    Nth(u32),
    /// On each one with probability `p`, drawn from the injector's seeded generator.
    Probability(f64),
}

/// Handle of an armed fault, to ask how often it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArmId(usize);

#[derive(Debug, Clone)]
struct Armed {
    fault: Fault,
    trigger: Trigger,
    seen: u32,
    fired: u32,
    spent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Out,
    In,
}

fn applies(fault: &Fault, way: Way, packet: &[u8]) -> bool {
    let mt = packet.first().map(|b| MessageType::from(b >> 5));
    match (fault, way) {
        (Fault::Dead, _) => true,
        (Fault::DropCommand, Way::In) => mt == Some(MessageType::Command),
        (_, Way::In) => false,
        (Fault::DropResponse | Fault::DelayResponse(_), Way::Out) => {
            mt == Some(MessageType::Response)
        }
        (Fault::LoseCreditsNtf, Way::Out) => packet.get(..2) == Some(&[0x60, 0x06]),
        (Fault::LinkLossMidApdu, Way::Out) => mt == Some(MessageType::Data),
        (Fault::DropCommand, Way::Out) => false,
        (
            Fault::CorruptHeader
            | Fault::WrongLength
            | Fault::SpuriousCoreResetNtf
            | Fault::CoreGenericErrorNtf(_)
            | Fault::Inject(_),
            Way::Out,
        ) => true,
    }
}

/// A fault-injecting wrapper around any [`NfccEndpoint`]; itself an [`NfccEndpoint`].
#[derive(Debug)]
pub struct FaultInjector<N> {
    inner: N,
    rng: XorShift64,
    armed: Vec<Armed>,
    ready: VecDeque<Transmit>,
    held: VecDeque<Transmit>,
    hold_until: Option<Instant>,
    dead: bool,
}

impl<N: NfccEndpoint> FaultInjector<N> {
    /// Wrap `inner`; probabilities draw from a generator seeded with `seed`.
    pub fn new(inner: N, seed: u64) -> FaultInjector<N> {
        FaultInjector {
            inner,
            rng: XorShift64::new(seed),
            armed: Vec::new(),
            ready: VecDeque::new(),
            held: VecDeque::new(),
            hold_until: None,
            dead: false,
        }
    }

    /// Arm `fault`.
    pub fn arm(&mut self, fault: Fault, trigger: Trigger) -> ArmId {
        self.armed.push(Armed {
            fault,
            trigger,
            seen: 0,
            fired: 0,
            spent: false,
        });
        ArmId(self.armed.len() - 1)
    }

    /// Disarm every fault (a dead controller stays dead).
    pub fn disarm_all(&mut self) {
        for armed in &mut self.armed {
            armed.spent = true;
        }
    }

    /// How often the fault armed as `id` fired.
    pub fn fired(&self, id: ArmId) -> u32 {
        self.armed.get(id.0).map_or(0, |a| a.fired)
    }

    /// Whether [`Fault::Dead`] fired.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Send `bytes` to the DH now, as if the controller had: for notifications no fault
    /// trigger describes.
    pub fn inject_now(&mut self, bytes: &[u8], now: Instant) {
        self.queue(Transmit {
            at: now,
            bytes: bytes.to_vec(),
        });
    }

    /// The wrapped controller.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// The wrapped controller, mutably.
    pub fn inner_mut(&mut self) -> &mut N {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> N {
        self.inner
    }

    /// Decide which armed faults fire for this packet.
    fn firing(&mut self, way: Way, packet: &[u8]) -> Vec<Fault> {
        let mut fire = Vec::new();
        for armed in &mut self.armed {
            if armed.spent || !applies(&armed.fault, way, packet) {
                continue;
            }
            armed.seen = armed.seen.saturating_add(1);
            let hit = match armed.trigger {
                Trigger::Once => {
                    armed.spent = true;
                    true
                }
                Trigger::Nth(n) => {
                    let hit = armed.seen == n;
                    armed.spent = armed.seen >= n;
                    hit
                }
                Trigger::Probability(p) => self.rng.chance(p),
            };
            if hit {
                armed.fired = armed.fired.saturating_add(1);
                fire.push(armed.fault.clone());
            }
        }
        fire
    }

    fn queue(&mut self, mut transmit: Transmit) {
        match self.hold_until {
            Some(until) => {
                transmit.at = transmit.at.max(until);
                self.held.push_back(transmit);
            }
            None => self.ready.push_back(transmit),
        }
    }

    fn release(&mut self, now: Instant) {
        if self.hold_until.is_some_and(|until| until <= now) {
            self.hold_until = None;
            self.ready.append(&mut self.held);
        }
    }

    fn process_output(&mut self, transmit: Transmit) {
        if self.dead {
            return;
        }
        let faults = self.firing(Way::Out, &transmit.bytes);
        let at = transmit.at;
        let mut packet = Some(transmit);
        let mut link_loss = false;
        for fault in faults {
            match fault {
                Fault::Dead => {
                    self.dead = true;
                    self.ready.clear();
                    self.held.clear();
                    self.hold_until = None;
                    return;
                }
                Fault::DropResponse | Fault::LoseCreditsNtf => packet = None,
                Fault::DelayResponse(delay) => {
                    let until = (at + delay).max(self.hold_until.unwrap_or(at));
                    self.hold_until = Some(until);
                }
                Fault::CorruptHeader => {
                    if let Some(octet) = packet.as_mut().and_then(|p| p.bytes.first_mut()) {
                        *octet ^= 0xE0;
                    }
                }
                Fault::WrongLength => {
                    if let Some(octet) = packet.as_mut().and_then(|p| p.bytes.get_mut(2)) {
                        *octet = octet.wrapping_add(1);
                    }
                }
                Fault::SpuriousCoreResetNtf => self.queue(Transmit {
                    at,
                    bytes: SPURIOUS_CORE_RESET_NTF.to_vec(),
                }),
                Fault::CoreGenericErrorNtf(status) => self.queue(Transmit {
                    at,
                    bytes: vec![0x60, 0x07, 0x01, u8::from(status)],
                }),
                Fault::Inject(bytes) => self.queue(Transmit { at, bytes }),
                Fault::LinkLossMidApdu => link_loss = true,
                Fault::DropCommand => {}
            }
        }
        if let Some(packet) = packet {
            self.queue(packet);
        }
        if link_loss {
            // The reader is gone with the field; the controller notices the loss.
            self.inner.reader_field(false, at);
        }
    }
}

impl<N: NfccEndpoint> NfccEndpoint for FaultInjector<N> {
    fn handle_packet(&mut self, packet: &[u8], now: Instant) {
        self.release(now);
        if self.dead {
            return;
        }
        let faults = self.firing(Way::In, packet);
        if faults.contains(&Fault::Dead) {
            self.dead = true;
            self.ready.clear();
            self.held.clear();
            return;
        }
        if faults.contains(&Fault::DropCommand) {
            return;
        }
        self.inner.handle_packet(packet, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.release(now);
        if !self.dead {
            self.inner.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            if let Some(transmit) = self.ready.pop_front() {
                return Some(transmit);
            }
            if self.dead {
                return None;
            }
            let transmit = self.inner.poll_transmit()?;
            self.process_output(transmit);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.dead {
            return None;
        }
        match (self.inner.poll_timeout(), self.hold_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn reader_field(&mut self, on: bool, now: Instant) {
        if !self.dead {
            self.inner.reader_field(on, now);
        }
    }

    fn reader_activate(&mut self, technology: RfTechnology, now: Instant) -> Result<(), RfError> {
        if self.dead {
            return Err(RfError::NotDiscovering);
        }
        self.inner.reader_activate(technology, now)
    }

    fn reader_send_apdu(&mut self, apdu: &[u8], now: Instant) -> Result<(), RfError> {
        if self.dead {
            return Err(RfError::NotActive);
        }
        self.inner.reader_send_apdu(apdu, now)
    }

    fn reader_deactivate(
        &mut self,
        reason: DeactivationReason,
        now: Instant,
    ) -> Result<(), RfError> {
        if self.dead {
            return Err(RfError::NotActive);
        }
        self.inner.reader_deactivate(reason, now)
    }

    fn poll_rf_event(&mut self) -> Option<RfEvent> {
        if self.dead {
            return None;
        }
        self.inner.poll_rf_event()
    }
}
