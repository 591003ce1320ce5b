//! A simulated PN7150 on I²C, for tests of the I²C transport and of anything above it.
//!
//! Contract: models the controller's host interface only — the bus behaviour of UM10936 §3 —
//! not NCI. It implements [`I2cDevice`], [`IrqLine`] and [`VenLine`] over one shared state:
//!
//! - IRQ is high while the controller has a packet queued (or while the stuck-IRQ fault is
//!   on) and the controller is powered.
//! - Reads hand out the queued packets byte for byte, in whatever chunks the host asks for; a
//!   packet leaves the queue once all its octets were read. A read with nothing queued is
//!   NACKed (`EREMOTEIO`), as the real controller does.
//! - In standby (see [`I2cSim::enter_standby`]) the first write is NACKed and wakes the
//!   controller (UM10936 §9.6.2); the host must send it again.
//! - VEN low powers the controller down: the queue is emptied, standby and the stuck-IRQ fault
//!   end, and every transfer is NACKed (`ENXIO`) until VEN is high again.
//! - The test scripts the controller side with a responder: given each packet the host
//!   writes, it returns the packets to queue in answer (several at once if wanted). Packets
//!   can also be queued at any time with [`I2cSim::queue`] (notifications).
//! - Faults: NACK every write ([`I2cSim::set_nack_storm`], or from the next write on for a
//!   while or until VEN goes low: [`I2cSim::nack_storm`]), fail a read with an errno
//!   ([`I2cSim::fail_next_read`], [`I2cSim::fail_read_after`]), hold IRQ high with nothing to read
//!   ([`I2cSim::set_irq_stuck`], or once some reads are done: [`I2cSim::stick_irq_after`]).
//!   VEN low ends every fault but [`I2cSim::set_nack_storm`]'s.
//!
//! Everything the host did is recorded for assertions: written packets, read sizes, write and
//! read attempts, VEN transitions with timestamps, IRQ rising edges.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::i2c::{I2cDevice, I2cTiming, I2cTransport, IrqLine, VenLine};
use super::TransportError;

/// Controller-side script: given a packet the host wrote, the packets to queue in answer.
pub type Responder = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>> + Send>;

#[derive(Default)]
struct SimState {
    powered: bool,
    standby: bool,
    outbox: VecDeque<Vec<u8>>,
    /// Octets of the front packet already read.
    read_pos: usize,
    irq_edges: u64,
    nack_storm: bool,
    irq_stuck: bool,
    /// Reads still to succeed before the armed read error, and the error.
    read_error: Option<(usize, Errno)>,
    /// Reads still to succeed before IRQ sticks high.
    irq_stick_after: Option<usize>,
    /// A storm of [`I2cSim::nack_storm`]: its length, and when its first NACK was.
    storm: Option<(Option<Duration>, Option<Instant>)>,
    responder: Option<Responder>,
    host_packets: Vec<Vec<u8>>,
    read_sizes: Vec<usize>,
    write_attempts: usize,
    write_nacks: usize,
    ven_log: Vec<(Instant, bool)>,
}

impl SimState {
    fn irq_level(&self) -> bool {
        self.powered && (!self.outbox.is_empty() || self.irq_stuck)
    }
}

struct SimShared {
    state: Mutex<SimState>,
    changed: Condvar,
}

/// Handle on one simulated PN7150. Cheap to clone; all clones see the same controller.
#[derive(Clone)]
pub struct I2cSim {
    shared: Arc<SimShared>,
}

impl Default for I2cSim {
    fn default() -> Self {
        Self::new()
    }
}

impl I2cSim {
    /// A powered, awake controller with nothing queued and no responder.
    pub fn new() -> Self {
        I2cSim {
            shared: Arc::new(SimShared {
                state: Mutex::new(SimState {
                    powered: true,
                    ..SimState::default()
                }),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Apply `f` to the state, count an IRQ rising edge if the level went from low to high,
    /// and wake every waiter.
    fn mutate<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut state = self.lock();
        let before = state.irq_level();
        let result = f(&mut state);
        if !before && state.irq_level() {
            state.irq_edges += 1;
        }
        drop(state);
        self.shared.changed.notify_all();
        result
    }

    /// The bus side, to hand to [`I2cTransport::new`].
    pub fn device(&self) -> SimI2cDevice {
        SimI2cDevice { sim: self.clone() }
    }

    /// The IRQ line, to hand to [`I2cTransport::new`].
    pub fn irq(&self) -> SimIrqLine {
        let seen = self.lock().irq_edges;
        SimIrqLine {
            sim: self.clone(),
            seen,
        }
    }

    /// The VEN line, to hand to [`I2cTransport::new`].
    pub fn ven(&self) -> SimVenLine {
        SimVenLine { sim: self.clone() }
    }

    /// An [`I2cTransport`] wired to this controller, with a VEN line.
    pub fn transport(&self, timing: I2cTiming) -> Result<I2cTransport, TransportError> {
        I2cTransport::new(
            Box::new(self.device()),
            Box::new(self.irq()),
            Some(Box::new(self.ven())),
            timing,
            "i2c:sim".into(),
        )
    }

    /// Script the controller: `responder` is called with every packet the host writes
    /// successfully and returns the packets to queue in answer. It runs without the
    /// simulator's lock held, so it may call back into the simulator.
    pub fn set_responder(&self, responder: impl FnMut(&[u8]) -> Vec<Vec<u8>> + Send + 'static) {
        self.mutate(|s| s.responder = Some(Box::new(responder)));
    }

    /// Queue a packet from the controller (e.g. a notification); raises IRQ.
    pub fn queue(&self, packet: &[u8]) {
        self.mutate(|s| {
            if s.powered {
                s.outbox.push_back(packet.to_vec());
            }
        });
    }

    /// Enter standby: the next write is NACKed and wakes the controller.
    pub fn enter_standby(&self) {
        self.mutate(|s| s.standby = true);
    }

    /// NACK every write while `on`.
    pub fn set_nack_storm(&self, on: bool) {
        self.mutate(|s| s.nack_storm = on);
    }

    /// Fail the next read transfer (header or payload) with `errno`.
    pub fn fail_next_read(&self, errno: Errno) {
        self.fail_read_after(0, errno);
    }

    /// Let `reads` more read transfers succeed, then fail one with `errno` (e.g. `1` with a
    /// packet queued fails its payload read).
    pub fn fail_read_after(&self, reads: usize, errno: Errno) {
        self.mutate(|s| s.read_error = Some((reads, errno)));
    }

    /// Hold IRQ high even with nothing queued while `on` (ends at power-down too).
    pub fn set_irq_stuck(&self, on: bool) {
        self.mutate(|s| s.irq_stuck = on);
    }

    /// Let `reads` more read transfers succeed, then hold IRQ high with nothing to read, as
    /// [`I2cSim::set_irq_stuck`] (`0`: at once). Power-down ends it, or disarms it.
    pub fn stick_irq_after(&self, reads: usize) {
        self.mutate(|s| {
            if reads == 0 {
                s.irq_stuck = true;
            } else {
                s.irq_stick_after = Some(reads);
            }
        });
    }

    /// NACK every write from the next one on: for `length` from that first NACK, or, with
    /// `None`, until VEN goes low (a controller only a hard reset brings back).
    pub fn nack_storm(&self, length: Option<Duration>) {
        self.mutate(|s| s.storm = Some((length, None)));
    }

    /// Packets the host wrote and the controller accepted, in order.
    pub fn host_packets(&self) -> Vec<Vec<u8>> {
        self.lock().host_packets.clone()
    }

    /// Length of every read transfer the host attempted, in order.
    pub fn read_sizes(&self) -> Vec<usize> {
        self.lock().read_sizes.clone()
    }

    /// Number of read transfers the host attempted.
    pub fn read_attempts(&self) -> usize {
        self.lock().read_sizes.len()
    }

    /// Number of write transfers the host attempted, NACKed ones included.
    pub fn write_attempts(&self) -> usize {
        self.lock().write_attempts
    }

    /// Number of writes NACKed (standby wake-up or NACK storm).
    pub fn write_nacks(&self) -> usize {
        self.lock().write_nacks
    }

    /// Every VEN level the host drove, with when.
    pub fn ven_log(&self) -> Vec<(Instant, bool)> {
        self.lock().ven_log.clone()
    }

    /// How many times IRQ went from low to high.
    pub fn irq_rising_edges(&self) -> u64 {
        self.lock().irq_edges
    }

    /// Packets queued and not yet fully read.
    pub fn pending(&self) -> usize {
        self.lock().outbox.len()
    }

    /// Block until `done` holds for the state or `timeout` passes; returns whether it held.
    /// Meant for tests that must wait for the reader thread.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&I2cSim) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let state = self.lock();
            // Woken by any change; re-evaluate outside the lock so `done` may call getters.
            let _unused = self
                .shared
                .changed
                .wait_timeout(state, (deadline - now).min(Duration::from_millis(20)));
        }
    }
}

/// The simulated controller's I²C slave interface.
pub struct SimI2cDevice {
    sim: I2cSim,
}

impl I2cDevice for SimI2cDevice {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let responder = self.sim.mutate(|s| {
            s.write_attempts += 1;
            if !s.powered {
                return Err(io::Error::from(Errno::ENXIO));
            }
            if let Some((length, since)) = &mut s.storm {
                let now = Instant::now();
                let since = *since.get_or_insert(now);
                if length.is_some_and(|length| now.duration_since(since) >= length) {
                    s.storm = None;
                } else {
                    s.write_nacks += 1;
                    return Err(io::Error::from(Errno::EREMOTEIO));
                }
            }
            if s.nack_storm || s.standby {
                s.standby = false;
                s.write_nacks += 1;
                return Err(io::Error::from(Errno::EREMOTEIO));
            }
            s.host_packets.push(buf.to_vec());
            Ok(s.responder.take())
        })?;
        if let Some(mut responder) = responder {
            let answers = responder(buf);
            self.sim.mutate(|s| {
                if s.powered {
                    s.outbox.extend(answers);
                }
                if s.responder.is_none() {
                    s.responder = Some(responder);
                }
            });
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.sim.mutate(|s| {
            s.read_sizes.push(buf.len());
            if !s.powered {
                return Err(io::Error::from(Errno::ENXIO));
            }
            match s.read_error {
                Some((0, errno)) => {
                    s.read_error = None;
                    return Err(io::Error::from(errno));
                }
                Some((ref mut left, _)) => *left -= 1,
                None => {}
            }
            let Some(front) = s.outbox.front() else {
                return Err(io::Error::from(Errno::EREMOTEIO));
            };
            let rest = front.get(s.read_pos..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            let (head, tail) = buf.split_at_mut(n);
            head.copy_from_slice(rest.get(..n).unwrap_or_default());
            // Reading past the end of a packet yields padding, as on the real bus.
            tail.fill(0);
            s.read_pos += n;
            if s.read_pos >= front.len() {
                s.outbox.pop_front();
                s.read_pos = 0;
            }
            match s.irq_stick_after {
                Some(1) => {
                    s.irq_stick_after = None;
                    s.irq_stuck = true;
                }
                Some(ref mut left) => *left -= 1,
                None => {}
            }
            Ok(())
        })
    }
}

/// The simulated controller's IRQ output.
pub struct SimIrqLine {
    sim: I2cSim,
    seen: u64,
}

impl IrqLine for SimIrqLine {
    fn is_high(&mut self) -> io::Result<bool> {
        Ok(self.sim.lock().irq_level())
    }

    fn wait_rising(&mut self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut state = self.sim.lock();
        loop {
            if state.irq_edges > self.seen {
                self.seen = state.irq_edges;
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            state = match self.sim.shared.changed.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The simulated controller's VEN input.
pub struct SimVenLine {
    sim: I2cSim,
}

impl VenLine for SimVenLine {
    fn set(&mut self, high: bool) -> io::Result<()> {
        self.sim.mutate(|s| {
            s.ven_log.push((Instant::now(), high));
            s.powered = high;
            if !high {
                s.outbox.clear();
                s.read_pos = 0;
                s.standby = false;
                s.irq_stuck = false;
                s.irq_stick_after = None;
                s.read_error = None;
                s.storm = None;
            }
        });
        Ok(())
    }
}
