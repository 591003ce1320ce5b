//! The in-process virtual controller behind a simulated PN7150 I²C slave
//! (`--transport sim:pn7150@i2c`, `sim:nci2@i2c`, optionally `@i2c:100k|400k|3.4m`).
//!
//! Contract: a [`SimI2cBoard`] is a virtual controller board: libnci's virtual controller
//! ([`SimHost`], with its I²C bus timing model at the board's clock) wired by a bridge task to
//! the I²C slave interface of [`I2cSim`] — the bus, IRQ and VEN of PN7150 UM10936 §3. Each
//! packet the host writes to the slave goes to the controller; each packet the controller
//! sends is queued in the slave, which raises IRQ until the host has read it. VEN low powers
//! the slave down (transfers NACKed, queue lost); VEN high power-cycles the virtual controller,
//! dropping everything it had sent, and powers the slave up again. [`SimI2cTransport`] is the
//! daemon's real [`I2cTransport`] on such a board — the same IRQ wait, header-then-payload
//! reads, NACK retries and VEN resets as on hardware — so what the daemon does on I²C is
//! exercised without hardware, faults included: those of the bus ([`I2cFault`], applied to the
//! [`I2cSim`]) and those of the controller (libnci's, through the [`SimHandle`]).
//!
//! The board of a `sim:…@i2c` spec outlives the transport opened on it, as a soldered-on
//! controller outlives a daemon closing `/dev/i2c-1`: [`SimI2cTransport::open`] finds the
//! board it opened before in this process, in whatever state the faults left it.
//!
//! What it does not do: speak NCI (the controller is libnci's, the framing the I²C
//! transport's) or time the bus (the controller's bus model does).

use std::io;
use std::str::FromStr;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::i2c::{I2cTiming, I2cTransport, VenLine};
use super::i2c_sim::{I2cSim, SimVenLine};
use super::sim::SimTransport;
use super::spec::{SimI2cSpec, TransportSpec};
use super::{Packet, Transport, TransportError};
use crate::simhost::{SimError, SimHandle, SimHost, SimOptions};

/// How long VEN going high may take to power-cycle the virtual controller before the VEN
/// line reports an error: far more than the few hundred microseconds it takes.
const POWER_UP_LIMIT: Duration = Duration::from_secs(5);

/// What the bridge is asked to do.
enum BridgeCommand {
    /// A packet the host wrote to the slave, for the controller.
    Write(Vec<u8>),
    /// VEN went high: power-cycle the controller, then power the slave up; answer when done.
    PowerUp(std_mpsc::SyncSender<Result<(), String>>),
}

/// A virtual controller board. See the module documentation.
pub struct SimI2cBoard {
    spec: SimI2cSpec,
    handle: SimHandle,
    i2c: I2cSim,
    commands: mpsc::UnboundedSender<BridgeCommand>,
    bridge: JoinHandle<()>,
}

impl std::fmt::Debug for SimI2cBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimI2cBoard")
            .field("spec", &TransportSpec::SimI2c(self.spec).to_string())
            .finish_non_exhaustive()
    }
}

impl SimI2cBoard {
    /// A powered board with a controller of `spec.profile` in its reset state. Must run
    /// inside a tokio runtime.
    pub fn new(spec: SimI2cSpec) -> Result<SimI2cBoard, TransportError> {
        let describe = TransportSpec::SimI2c(spec).to_string();
        let host = SimHost::new(
            spec.profile.into(),
            SimOptions {
                bus: Some(spec.speed),
                ..SimOptions::default()
            },
        );
        let link = SimTransport::with_host(&host, format!("{describe}: controller side"))?;
        let i2c = I2cSim::new();
        let (commands, pending) = mpsc::unbounded_channel();
        let to_controller = commands.clone();
        i2c.set_responder(move |packet| {
            // The controller answers in its own time, through the bridge, not here.
            let _ = to_controller.send(BridgeCommand::Write(packet.to_vec()));
            Vec::new()
        });
        let bridge = tokio::spawn(bridge(link, i2c.clone(), pending));
        Ok(SimI2cBoard {
            spec,
            handle: host.handle(),
            i2c,
            commands,
            bridge,
        })
    }

    /// What the board simulates.
    pub fn spec(&self) -> SimI2cSpec {
        self.spec
    }

    /// The controller's RF side: taps, field, controller faults (`org.nfcd.Simulator1`).
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// The I²C slave: bus faults and what the host did on the bus.
    pub fn i2c(&self) -> I2cSim {
        self.i2c.clone()
    }

    /// Whether the bridge still runs (it stops with the tokio runtime it was started on).
    pub fn is_running(&self) -> bool {
        !self.bridge.is_finished() && !self.commands.is_closed()
    }

    /// The real I²C transport on this board, its VEN line included; as
    /// [`I2cTransport::new`] leaves it, not reset.
    pub fn transport(&self, timing: I2cTiming) -> Result<I2cTransport, TransportError> {
        let ven = BoardVen {
            ven: self.i2c.ven(),
            commands: self.commands.clone(),
        };
        I2cTransport::new(
            Box::new(self.i2c.device()),
            Box::new(self.i2c.irq()),
            Some(Box::new(ven)),
            timing,
            TransportSpec::SimI2c(self.spec).to_string(),
        )
    }
}

impl Drop for SimI2cBoard {
    fn drop(&mut self) {
        // The bridge holds the slave, whose responder holds a sender to the bridge: it would
        // never see its channel close.
        self.bridge.abort();
    }
}

/// Carries packets between the controller and the slave, and powers the controller up.
async fn bridge(
    mut link: SimTransport,
    i2c: I2cSim,
    mut commands: mpsc::UnboundedReceiver<BridgeCommand>,
) {
    let mut ven = i2c.ven();
    loop {
        tokio::select! {
            packet = link.recv() => match packet {
                // Queued packets raise IRQ; an unpowered slave drops them.
                Ok(packet) => i2c.queue(&packet),
                Err(e) => {
                    tracing::warn!("virtual I²C board: {e}");
                    return;
                }
            },
            command = commands.recv() => match command {
                None => return,
                Some(BridgeCommand::Write(packet)) => {
                    if let Err(e) = link.send(&packet).await {
                        tracing::warn!("virtual I²C board: {e}");
                        return;
                    }
                }
                Some(BridgeCommand::PowerUp(done)) => {
                    // No packet of the old controller reaches the slave after this.
                    let result = link.reset().await.map_err(|e| e.to_string());
                    let result = result.and_then(|()| ven.set(true).map_err(|e| e.to_string()));
                    let _ = done.send(result);
                }
            },
        }
    }
}

/// The board's VEN input: the slave's, with the virtual controller powered up behind it.
struct BoardVen {
    ven: SimVenLine,
    commands: mpsc::UnboundedSender<BridgeCommand>,
}

impl VenLine for BoardVen {
    fn set(&mut self, high: bool) -> io::Result<()> {
        if !high {
            return self.ven.set(false);
        }
        let (done, wait) = std_mpsc::sync_channel(1);
        self.commands
            .send(BridgeCommand::PowerUp(done))
            .map_err(|_| io::Error::other("the virtual controller stopped"))?;
        match wait.recv_timeout(POWER_UP_LIMIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io::Error::other(e)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the virtual controller did not power up",
            )),
        }
    }
}

/// Boards opened in this process, by what they simulate.
static BOARDS: Mutex<Vec<Arc<SimI2cBoard>>> = Mutex::new(Vec::new());

/// The board for `spec`: the one opened before in this process if its bridge still runs, else
/// a new one.
fn board_for(spec: SimI2cSpec) -> Result<Arc<SimI2cBoard>, TransportError> {
    let mut boards = BOARDS.lock().unwrap_or_else(|e| e.into_inner());
    boards.retain(|board| board.is_running());
    if let Some(board) = boards.iter().find(|board| board.spec == spec) {
        return Ok(Arc::clone(board));
    }
    let board = Arc::new(SimI2cBoard::new(spec)?);
    boards.push(Arc::clone(&board));
    Ok(board)
}

/// The daemon's I²C transport on a virtual board. See the module documentation.
#[derive(Debug)]
pub struct SimI2cTransport {
    inner: I2cTransport,
    board: Arc<SimI2cBoard>,
}

impl SimI2cTransport {
    /// The I²C transport, default timing, on this process's board for `spec` (made on first
    /// use). Must run inside a tokio runtime.
    pub fn open(spec: SimI2cSpec) -> Result<Self, TransportError> {
        Self::on(board_for(spec)?, I2cTiming::default())
    }

    /// The I²C transport with `timing` on `board`.
    pub fn on(board: Arc<SimI2cBoard>, timing: I2cTiming) -> Result<Self, TransportError> {
        let inner = board.transport(timing)?;
        Ok(SimI2cTransport { inner, board })
    }

    /// The board.
    pub fn board(&self) -> &Arc<SimI2cBoard> {
        &self.board
    }
}

impl Transport for SimI2cTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        self.inner.send(packet).await
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        self.inner.recv().await
    }

    async fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A fault of the simulated I²C bus, by the name `org.nfcd.Simulator1.InjectFault` takes
/// (doc/simulator-api.md). Each models what a PN7150 on a real bus can do (UM10936 §3):
///
/// | name | fault |
/// |---|---|
/// | `i2c-nack-storm` | from the next write on, the controller NACKs every write until VEN goes low |
/// | `i2c-nack-storm@MS` | the same for MS milliseconds from the first NACK |
/// | `i2c-read-error` | the next read transfer fails on the bus (EIO) |
/// | `i2c-read-error@N` | the N-th read transfer from now fails (a packet is two: header, payload) |
/// | `irq-stuck` | IRQ stays high with nothing to read, from now until VEN goes low |
/// | `irq-stuck@N` | the same once N more read transfers have succeeded |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum I2cFault {
    /// Every write NACKed, for this long from the first NACK, or until VEN goes low.
    NackStorm(Option<Duration>),
    /// The `nth` read transfer from now (1-based) fails with EIO.
    ReadError {
        /// Which read transfer.
        nth: usize,
    },
    /// IRQ sticks high with nothing to read once `after` more read transfers succeeded.
    IrqStuck {
        /// Read transfers before it sticks (0: at once).
        after: usize,
    },
}

/// The names [`I2cFault`] accepts.
pub const I2C_FAULT_NAMES: [&str; 3] = ["i2c-nack-storm", "i2c-read-error", "irq-stuck"];

impl I2cFault {
    /// Arm the fault on `i2c`.
    pub fn apply(self, i2c: &I2cSim) {
        match self {
            I2cFault::NackStorm(length) => i2c.nack_storm(length),
            I2cFault::ReadError { nth } => i2c.fail_read_after(nth.saturating_sub(1), Errno::EIO),
            I2cFault::IrqStuck { after } => i2c.stick_irq_after(after),
        }
    }

    /// Whether `text` names an I²C fault (with or without its `@` part).
    pub fn is_i2c_fault(text: &str) -> bool {
        let name = text.split_once('@').map_or(text, |(name, _)| name);
        I2C_FAULT_NAMES.contains(&name)
    }
}

impl FromStr for I2cFault {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, count) = match s.split_once('@') {
            None => (s, None),
            Some((name, n)) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => (name, Some(n)),
                _ => {
                    return Err(SimError::InvalidArgument(format!(
                        "fault {s:?}: the number after '@' must be a number from 1"
                    )))
                }
            },
        };
        match name {
            "i2c-nack-storm" => Ok(I2cFault::NackStorm(
                count.map(|ms| Duration::from_millis(u64::from(ms))),
            )),
            "i2c-read-error" => Ok(I2cFault::ReadError {
                nth: count.map_or(1, count_of),
            }),
            "irq-stuck" => Ok(I2cFault::IrqStuck {
                after: count.map_or(0, count_of),
            }),
            other => Err(SimError::InvalidArgument(format!(
                "unknown I²C fault {other:?} (expected one of {})",
                I2C_FAULT_NAMES.join(", ")
            ))),
        }
    }
}

fn count_of(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names() {
        let parse = |s: &str| s.parse::<I2cFault>().ok();
        assert_eq!(parse("i2c-nack-storm"), Some(I2cFault::NackStorm(None)));
        assert_eq!(
            parse("i2c-nack-storm@30"),
            Some(I2cFault::NackStorm(Some(Duration::from_millis(30))))
        );
        assert_eq!(
            parse("i2c-read-error"),
            Some(I2cFault::ReadError { nth: 1 })
        );
        assert_eq!(
            parse("i2c-read-error@6"),
            Some(I2cFault::ReadError { nth: 6 })
        );
        assert_eq!(parse("irq-stuck"), Some(I2cFault::IrqStuck { after: 0 }));
        assert_eq!(parse("irq-stuck@6"), Some(I2cFault::IrqStuck { after: 6 }));
        assert_eq!(parse("irq-stuck@0"), None);
        assert_eq!(parse("i2c-melt"), None);
        for name in I2C_FAULT_NAMES {
            assert!(I2cFault::is_i2c_fault(name));
            assert!(I2cFault::is_i2c_fault(&format!("{name}@2")));
        }
        assert!(!I2cFault::is_i2c_fault("dead"));
    }
}
