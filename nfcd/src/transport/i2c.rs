//! NCI over I²C with IRQ and VEN GPIO lines, the PN7150 way (UM10936 §3, AN11990).
//!
//! Contract: NCI packets travel over I²C as they are, with no extra framing (UM10936 §3.2).
//! The rules this transport follows:
//!
//! - **Read only when IRQ is high.** The controller raises IRQ while a packet waits for the
//!   host and drops it once the packet is read (UM10936 §3, read sequence).
//! - **Header, then payload.** Each packet is read in two I²C reads: the 3-octet header, then
//!   exactly the payload length it announces (UM10936 §3, read sequence), so the host never
//!   reads past the end of a packet.
//! - **Re-check IRQ after every packet.** Another packet may already be queued; the reader keeps
//!   reading while IRQ stays high instead of waiting for a new rising edge, which would not come.
//! - **Bounded read retries.** If IRQ stays high but the controller NACKs the read (nothing to
//!   read), the read is retried a few times after a short pause and then
//!   [`TransportError::IrqStuck`] is reported: a stuck line never turns into a busy loop.
//! - **A NACKed write is retried whole.** In standby the PN7150 NACKs the first I²C frame and
//!   wakes up (UM10936 §3.3, §9.6.2); the host sends the same frame again after a short pause.
//!   The tries are bounded; when every one is NACKed the controller is power-cycled through VEN
//!   (low for 10 ms, then high) and [`TransportError::NackStorm`] is reported.
//! - **Reads and writes never interleave on the bus**: both take the same bus lock.
//!
//! Blocking I²C and GPIO calls never run on the async executor. A reader thread waits for IRQ
//! and forwards whole packets through a tokio channel, so [`Transport::recv`] is a channel
//! receive and therefore cancel-safe. A writer thread performs writes and resets; `send` and
//! `reset` wait for its answer. After [`Transport::reset`], packets read before the reset are
//! discarded (each packet carries the reset generation it was read in).
//!
//! Hardware access is behind the [`I2cDevice`], [`IrqLine`] and [`VenLine`] traits; the Linux
//! implementations are [`LinuxI2cDevice`] (`/dev/i2c-N`, `I2C_SLAVE` ioctl) and [`GpioIrqLine`]
//! / [`GpioVenLine`] (GPIO character device, uAPI v2). Tests use
//! [`I2cSim`](super::i2c_sim::I2cSim).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use tokio::sync::{mpsc, oneshot};

use super::spec::{GpioLine, GpioLineSpec, I2cSpec, TransportSpec};
use super::{check_packet, packet_from, Packet, Transport, TransportError, NCI_HEADER_LEN};

/// An I²C slave at a fixed address; each call is one complete I²C transfer.
pub trait I2cDevice: Send + 'static {
    /// Write `buf` in one transfer. A NACK of the address or of a data byte comes back as an
    /// error with errno `EREMOTEIO`, `ENXIO` or `EAGAIN` (which one depends on the I²C adapter
    /// driver), see [`is_nack`].
    fn write(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Read exactly `buf.len()` octets in one transfer.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<()>;
}

/// The controller's IRQ output, active high (UM10936 §3, read sequence).
pub trait IrqLine: Send + 'static {
    /// Current level of the line.
    fn is_high(&mut self) -> io::Result<bool>;
    /// Block until a rising edge has been seen since the previous call, or `timeout` passes.
    /// Returns whether an edge was seen. Edges that happened while nobody was waiting count.
    fn wait_rising(&mut self, timeout: Duration) -> io::Result<bool>;
}

/// The controller's VEN input: low holds it in hard power-down, high lets it boot.
pub trait VenLine: Send + 'static {
    /// Drive the line high or low.
    fn set(&mut self, high: bool) -> io::Result<()>;
}

/// Whether an I²C error means the slave did not acknowledge. Linux adapter drivers report a
/// NACK as `EREMOTEIO` (i2c fault codes), some as `ENXIO` (address NACK) or `EAGAIN`
/// (arbitration lost, retry); the PN7150 standby wake-up shows up as one of these.
pub fn is_nack(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EREMOTEIO | Errno::ENXIO | Errno::EAGAIN)
    )
}

/// Retry counts and delays of the I²C transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I2cTiming {
    /// How many times a NACKed write is tried in all before the controller is reset.
    pub write_tries: u32,
    /// Pause between write tries. NXP's pn5xx_i2c kernel driver waits 6–10 ms before retrying
    /// a write NACKed during the standby wake-up.
    pub nack_pause: Duration,
    /// How long VEN is held low for a hard reset (NXP's drivers use 10 ms).
    pub ven_low: Duration,
    /// How long to wait after VEN goes high before the controller accepts commands.
    pub ven_boot: Duration,
    /// How many NACKed reads are tolerated while IRQ is high before reporting a stuck IRQ.
    pub read_tries: u32,
    /// Pause between such reads. A packet just read can leave IRQ visibly high for a moment,
    /// so one NACKed read right after a packet is normal.
    pub read_retry_pause: Duration,
    /// Longest the reader thread blocks waiting for IRQ before checking whether the transport
    /// was dropped. Only affects how soon the thread exits.
    pub idle_wait: Duration,
}

impl Default for I2cTiming {
    fn default() -> Self {
        I2cTiming {
            write_tries: 5,
            nack_pause: Duration::from_millis(10),
            ven_low: Duration::from_millis(10),
            ven_boot: Duration::from_millis(10),
            read_tries: 5,
            read_retry_pause: Duration::from_millis(1),
            idle_wait: Duration::from_millis(500),
        }
    }
}

/// State shared by the async side and the two worker threads.
struct Shared {
    /// The I²C device; holding the lock is holding the bus.
    bus: Mutex<Box<dyn I2cDevice>>,
    /// Signalled when `generation` changes or the transport shuts down.
    wake: Condvar,
    /// Incremented by every reset, under the bus lock.
    generation: AtomicU64,
    /// Set when the transport is dropped.
    shutdown: AtomicBool,
}

impl Shared {
    fn lock_bus(&self) -> MutexGuard<'_, Box<dyn I2cDevice>> {
        // A panic in another holder cannot leave the device in a state we could repair by
        // refusing to use it; carry on.
        self.bus
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

type Reply = oneshot::Sender<Result<(), TransportError>>;

// Each command is moved once through a channel; boxing the packet would cost an allocation
// per packet for no gain.
#[allow(clippy::large_enum_variant)]
enum Command {
    Write { packet: Packet, reply: Reply },
    Reset { reply: Reply },
}

/// What the reader thread forwards: the reset generation the item belongs to, and the item.
type RxItem = (u64, Result<Packet, TransportError>);

/// Packets the reader may read ahead of the daemon. The controller holds further packets (and
/// IRQ) until the host reads them, so a small bound is enough.
const RX_QUEUE: usize = 16;

/// PN7150-style I²C transport.
///
/// After [`Transport::recv`] returns an error the reader thread pauses until
/// [`Transport::reset`] is called or the transport is dropped; the daemon drops the transport
/// after any transport error and opens a new one, which
/// [`AnyTransport::open`](super::AnyTransport::open) resets through VEN first.
///
/// Dropping the transport stops both threads; the reader notices within
/// [`I2cTiming::idle_wait`], and only then are the device and GPIO lines released (reopening
/// them sooner fails with `EBUSY`).
pub struct I2cTransport {
    commands: std_mpsc::Sender<Command>,
    packets: mpsc::Receiver<RxItem>,
    shared: Arc<Shared>,
    describe: String,
}

impl std::fmt::Debug for I2cTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I2cTransport")
            .field("describe", &self.describe)
            .field("generation", &self.shared.generation())
            .finish()
    }
}

impl I2cTransport {
    /// Open the I²C device and GPIO lines named by `spec` with default timing.
    pub fn open(spec: &I2cSpec) -> Result<Self, TransportError> {
        let describe = TransportSpec::I2c(spec.clone()).to_string();
        let dev = LinuxI2cDevice::open(&spec.device, spec.address).map_err(|e| {
            TransportError::io(format!("{describe}: open {}", spec.device.display()), e)
        })?;
        let irq = GpioIrqLine::open(&spec.irq)
            .map_err(|e| TransportError::io(format!("{describe}: IRQ line {}", spec.irq), e))?;
        let ven = match &spec.ven {
            Some(line) => Some(Box::new(
                GpioVenLine::open(line)
                    .map_err(|e| TransportError::io(format!("{describe}: VEN line {line}"), e))?,
            ) as Box<dyn VenLine>),
            None => None,
        };
        Self::new(
            Box::new(dev),
            Box::new(irq),
            ven,
            I2cTiming::default(),
            describe,
        )
    }

    /// Build the transport on any device and lines (real or simulated) and start its reader
    /// and writer threads. `describe` is what [`Transport::describe`] returns.
    pub fn new(
        dev: Box<dyn I2cDevice>,
        irq: Box<dyn IrqLine>,
        ven: Option<Box<dyn VenLine>>,
        timing: I2cTiming,
        describe: String,
    ) -> Result<Self, TransportError> {
        let shared = Arc::new(Shared {
            bus: Mutex::new(dev),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
        });
        let (packets_tx, packets) = mpsc::channel(RX_QUEUE);
        let (commands, commands_rx) = std_mpsc::channel();

        let reader = Reader {
            shared: Arc::clone(&shared),
            irq,
            packets: packets_tx,
            timing: timing.clone(),
            describe: describe.clone(),
        };
        thread::Builder::new()
            .name("nfcd-i2c-rx".into())
            .spawn(move || reader.run())
            .map_err(|e| TransportError::io(format!("{describe}: start reader thread"), e))?;

        let writer = Writer {
            shared: Arc::clone(&shared),
            ven,
            timing,
            describe: describe.clone(),
        };
        if let Err(e) = thread::Builder::new()
            .name("nfcd-i2c-tx".into())
            .spawn(move || writer.run(commands_rx))
        {
            shared.shutdown.store(true, Ordering::Release);
            return Err(TransportError::io(
                format!("{describe}: start writer thread"),
                e,
            ));
        }

        Ok(I2cTransport {
            commands,
            packets,
            shared,
            describe,
        })
    }

    fn worker_gone(&self) -> TransportError {
        TransportError::Closed {
            context: format!("{}: I²C worker thread stopped", self.describe),
            partial: 0,
        }
    }

    async fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), TransportError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| self.worker_gone())?;
        done.await.map_err(|_| self.worker_gone())?
    }
}

impl Drop for I2cTransport {
    fn drop(&mut self) {
        // The writer exits when `commands` is dropped; the reader notices this flag within
        // `idle_wait`. Neither is joined: joining could block the executor.
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake.notify_all();
    }
}

impl Transport for I2cTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet(packet)?;
        let packet = packet_from(packet)?;
        self.call(|reply| Command::Write { packet, reply }).await
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        loop {
            // `mpsc::Receiver::recv` is cancel-safe: a dropped call loses no item.
            let Some((generation, item)) = self.packets.recv().await else {
                return Err(self.worker_gone());
            };
            if generation == self.shared.generation() {
                return item;
            }
            // Read before the last reset: belongs to the controller's previous life.
        }
    }

    async fn reset(&mut self) -> Result<(), TransportError> {
        // Packets read before the reset may still sit in the queue; `recv` skips them by
        // their generation.
        self.call(|reply| Command::Reset { reply }).await
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Why a packet read failed.
enum ReadFailure {
    /// The header read was NACKed: nothing to read although IRQ is high.
    Nack(io::Error),
    /// Any other failure; reported as is.
    Failed(TransportError),
}

/// Read one packet: the 3-octet header, then exactly the payload it announces
/// (UM10936 §3, read sequence).
fn read_packet(dev: &mut dyn I2cDevice, describe: &str) -> Result<Packet, ReadFailure> {
    let mut header = [0u8; NCI_HEADER_LEN];
    if let Err(e) = dev.read(&mut header) {
        return Err(if is_nack(&e) {
            ReadFailure::Nack(e)
        } else {
            ReadFailure::Failed(TransportError::io(format!("{describe}: read header"), e))
        });
    }
    let total = NCI_HEADER_LEN + usize::from(header[2]);
    let mut packet = packet_from(&header).map_err(ReadFailure::Failed)?;
    packet.resize(total, 0).map_err(|_| {
        ReadFailure::Failed(TransportError::Framing {
            len: total,
            reason: "longer than the largest NCI packet (258 octets)",
        })
    })?;
    if total > NCI_HEADER_LEN {
        dev.read(&mut packet[NCI_HEADER_LEN..]).map_err(|e| {
            ReadFailure::Failed(TransportError::io(format!("{describe}: read payload"), e))
        })?;
    }
    Ok(packet)
}

/// The reader thread: waits for IRQ, reads packets, forwards them.
struct Reader {
    shared: Arc<Shared>,
    irq: Box<dyn IrqLine>,
    packets: mpsc::Sender<RxItem>,
    timing: I2cTiming,
    describe: String,
}

impl Reader {
    fn run(mut self) {
        let mut nacked_reads = 0u32;
        while !self.shared.is_shut_down() && !self.packets.is_closed() {
            match self.irq.is_high() {
                Ok(true) => {}
                Ok(false) => {
                    nacked_reads = 0;
                    // Edges that arrived since the level check are queued by the GPIO
                    // subsystem, so none can be missed between the check and the wait.
                    if let Err(e) = self.irq.wait_rising(self.timing.idle_wait) {
                        let err = TransportError::io(format!("{}: wait for IRQ", self.describe), e);
                        self.fail(err);
                    }
                    continue;
                }
                Err(e) => {
                    let err = TransportError::io(format!("{}: IRQ level", self.describe), e);
                    self.fail(err);
                    continue;
                }
            }

            let (generation, result) = {
                let mut bus = self.shared.lock_bus();
                // Read under the bus lock, which a reset also holds: the packet belongs to
                // exactly this generation.
                let generation = self.shared.generation();
                (generation, read_packet(bus.as_mut(), &self.describe))
            };
            match result {
                Ok(packet) => {
                    nacked_reads = 0;
                    if self
                        .packets
                        .blocking_send((generation, Ok(packet)))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(ReadFailure::Nack(e)) => {
                    nacked_reads += 1;
                    if nacked_reads >= self.timing.read_tries.max(1) {
                        tracing::warn!(
                            transport = %self.describe,
                            tries = nacked_reads,
                            error = %e,
                            "IRQ stays high but every read is NACKed"
                        );
                        let err = TransportError::IrqStuck {
                            tries: nacked_reads,
                        };
                        nacked_reads = 0;
                        self.fail(err);
                    } else {
                        thread::sleep(self.timing.read_retry_pause);
                    }
                }
                Err(ReadFailure::Failed(err)) => self.fail(err),
            }
        }
    }

    /// Report `err` to the async side, then stay off the bus until the next reset (or until
    /// the transport is dropped): a failing controller is not polled further.
    fn fail(&self, err: TransportError) {
        let generation = self.shared.generation();
        if self.packets.blocking_send((generation, Err(err))).is_err() {
            return;
        }
        let mut bus = self.shared.lock_bus();
        while self.shared.generation() == generation
            && !self.shared.is_shut_down()
            && !self.packets.is_closed()
        {
            bus = match self.shared.wake.wait_timeout(bus, self.timing.idle_wait) {
                Ok((bus, _)) => bus,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The writer thread: writes packets (with the standby retry) and performs resets.
struct Writer {
    shared: Arc<Shared>,
    ven: Option<Box<dyn VenLine>>,
    timing: I2cTiming,
    describe: String,
}

impl Writer {
    fn run(mut self, commands: std_mpsc::Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            match command {
                Command::Write { packet, reply } => {
                    let _ = reply.send(self.write_packet(&packet));
                }
                Command::Reset { reply } => {
                    let _ = reply.send(self.hard_reset());
                }
            }
        }
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake.notify_all();
    }

    fn write_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        let tries = self.timing.write_tries.max(1);
        for attempt in 1..=tries {
            let result = self.shared.lock_bus().write(packet);
            match result {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::debug!(
                            transport = %self.describe,
                            attempt,
                            "write accepted after standby wake-up"
                        );
                    }
                    return Ok(());
                }
                Err(e) if is_nack(&e) => {
                    tracing::debug!(transport = %self.describe, attempt, error = %e, "write NACKed");
                    if attempt < tries {
                        thread::sleep(self.timing.nack_pause);
                    }
                }
                Err(e) => {
                    return Err(TransportError::io(format!("{}: write", self.describe), e));
                }
            }
        }
        let reset = self.ven.is_some();
        tracing::warn!(
            transport = %self.describe,
            tries,
            reset,
            "controller NACKs every write try"
        );
        if reset {
            self.hard_reset()?;
        }
        Err(TransportError::NackStorm { tries, reset })
    }

    /// Power-cycle the controller through VEN (if there is one) and start a new generation so
    /// that everything read before is discarded.
    fn hard_reset(&mut self) -> Result<(), TransportError> {
        // Hold the bus for the whole cycle: the reader must not touch a rebooting controller.
        let bus = self.shared.lock_bus();
        let toggled = match self.ven.as_mut() {
            Some(ven) => (|| {
                ven.set(false)?;
                thread::sleep(self.timing.ven_low);
                ven.set(true)?;
                thread::sleep(self.timing.ven_boot);
                Ok(())
            })(),
            None => Ok(()),
        };
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        drop(bus);
        self.shared.wake.notify_all();
        toggled.map_err(|e| TransportError::io(format!("{}: VEN", self.describe), e))
    }
}

nix::ioctl_write_int_bad!(
    /// `I2C_SLAVE` from `<linux/i2c-dev.h>`: select the slave address for later reads and
    /// writes on this file descriptor.
    i2c_slave,
    0x0703
);

/// `/dev/i2c-N` with the slave address selected; blocking plain `read`/`write`, one I²C
/// transfer each.
#[derive(Debug)]
pub struct LinuxI2cDevice {
    fd: OwnedFd,
    path: PathBuf,
}

impl LinuxI2cDevice {
    /// Open `path` and select the 7-bit slave `address`.
    pub fn open(path: &Path, address: u16) -> io::Result<Self> {
        let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
        // SAFETY: I2C_SLAVE takes the address by value (no pointer) and `fd` is an open file
        // descriptor owned by this function.
        let selected = unsafe { i2c_slave(fd.as_raw_fd(), libc_int(address)) };
        match selected {
            Ok(_) => Ok(LinuxI2cDevice {
                fd,
                path: path.to_owned(),
            }),
            Err(Errno::EBUSY) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "I²C address {address:#04x} is claimed by a kernel driver \
                     (blacklist nxp_nci_i2c so the daemon can own the controller)"
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn libc_int(address: u16) -> std::os::raw::c_int {
    std::os::raw::c_int::from(address)
}

impl I2cDevice for LinuxI2cDevice {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = nix::unistd::write(&self.fd, buf)?;
        if n != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short I²C write: {n} of {} octets", buf.len()),
            ));
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let n = nix::unistd::read(&self.fd, buf)?;
        if n != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("short I²C read: {n} of {} octets", buf.len()),
            ));
        }
        Ok(())
    }
}

fn gpio_error(e: gpiocdev::Error) -> io::Error {
    io::Error::other(e)
}

/// Find the chip path and line offset for `spec`, looking the name up if needed.
fn resolve_line(spec: &GpioLineSpec) -> io::Result<(PathBuf, u32)> {
    let path = spec.chip_path();
    match &spec.line {
        GpioLine::Offset(offset) => Ok((path, *offset)),
        GpioLine::Name(name) => {
            let chip = gpiocdev::Chip::from_path(&path).map_err(gpio_error)?;
            match chip.find_line_info(name) {
                Some(info) => Ok((path, info.offset)),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no GPIO line named '{name}' on {}", path.display()),
                )),
            }
        }
    }
}

/// The IRQ line through the GPIO character device, with rising-edge events.
pub struct GpioIrqLine {
    request: gpiocdev::Request,
    offset: u32,
}

impl GpioIrqLine {
    /// Request the line as an input with rising-edge detection.
    pub fn open(spec: &GpioLineSpec) -> io::Result<Self> {
        let (chip, offset) = resolve_line(spec)?;
        let request = gpiocdev::Request::builder()
            .on_chip(chip)
            .with_consumer("nfcd-irq")
            .with_line(offset)
            .as_input()
            .with_edge_detection(gpiocdev::line::EdgeDetection::RisingEdge)
            .request()
            .map_err(gpio_error)?;
        Ok(GpioIrqLine { request, offset })
    }
}

impl IrqLine for GpioIrqLine {
    fn is_high(&mut self) -> io::Result<bool> {
        let value = self.request.value(self.offset).map_err(gpio_error)?;
        Ok(value == gpiocdev::line::Value::Active)
    }

    fn wait_rising(&mut self, timeout: Duration) -> io::Result<bool> {
        if !self.request.wait_edge_event(timeout).map_err(gpio_error)? {
            return Ok(false);
        }
        // Consume every queued event so stale edges do not wake us again.
        let mut rising = false;
        loop {
            let event = self.request.read_edge_event().map_err(gpio_error)?;
            rising |= event.kind == gpiocdev::line::EdgeKind::Rising;
            if !self.request.has_edge_event().map_err(gpio_error)? {
                break;
            }
        }
        Ok(rising)
    }
}

/// The VEN line through the GPIO character device.
pub struct GpioVenLine {
    request: gpiocdev::Request,
    offset: u32,
}

impl GpioVenLine {
    /// Request the line as an output, driven high (controller enabled).
    pub fn open(spec: &GpioLineSpec) -> io::Result<Self> {
        let (chip, offset) = resolve_line(spec)?;
        let request = gpiocdev::Request::builder()
            .on_chip(chip)
            .with_consumer("nfcd-ven")
            .with_line(offset)
            .as_output(gpiocdev::line::Value::Active)
            .request()
            .map_err(gpio_error)?;
        Ok(GpioVenLine { request, offset })
    }
}

impl VenLine for GpioVenLine {
    fn set(&mut self, high: bool) -> io::Result<()> {
        let value = if high {
            gpiocdev::line::Value::Active
        } else {
            gpiocdev::line::Value::Inactive
        };
        self.request
            .set_value(self.offset, value)
            .map(drop)
            .map_err(gpio_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_errnos() {
        for errno in [Errno::EREMOTEIO, Errno::ENXIO, Errno::EAGAIN] {
            assert!(is_nack(&io::Error::from(errno)), "{errno}");
        }
        assert!(!is_nack(&io::Error::from(Errno::EIO)));
        assert!(!is_nack(&io::Error::other("not an errno")));
    }

    #[test]
    fn missing_i2c_device_is_an_error() {
        let err = LinuxI2cDevice::open(Path::new("/nonexistent/i2c-9"), 0x28);
        assert!(matches!(err, Err(e) if e.kind() == io::ErrorKind::NotFound));
    }
}
