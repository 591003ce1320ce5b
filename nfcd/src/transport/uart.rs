//! NCI over a serial line or pseudo-terminal.
//!
//! Contract: the device is put in raw mode (no echo, no line editing, no CR/LF translation, no
//! software or hardware flow control, 8 data bits) at the requested speed, and the byte stream
//! is cut into NCI packets by their 3-octet header alone (NCI 1.0 §3, packet formats). There is no extra
//! framing on the wire: this is what NCI-over-UART controllers and virtual controllers on a pty
//! speak. End of file or a hang-up (the far side of a pty closed, a USB adapter unplugged) is
//! reported as [`TransportError::Closed`], never as a hang. `reset` cannot power-cycle anything
//! here; it only drops buffered input.
//!
//! The line is registered with the reactor for readability only, and a packet that finds it
//! full waits on a duplicate registered for writability (`crate::readiness` says why).
//! A read that returns less than it asked for drained the line: the transport then waits for
//! the next readiness event instead of reading again until `EAGAIN`, which on a tty waits for
//! the kernel's flip-buffer work (`crate::readiness::read_some` says more).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{
    cfmakeraw, cfsetspeed, tcflush, tcgetattr, tcsetattr, BaudRate, ControlFlags, FlushArg,
    InputFlags, SetArg, SpecialCharacterIndices,
};
use tokio::io::unix::AsyncFd;

use super::framing::RxBuffer;
use super::spec::UartSpec;
use super::{check_packet, Packet, Transport, TransportError};

/// A tty or pty carrying raw NCI packets.
pub struct UartTransport {
    fd: AsyncFd<OwnedFd>,
    rx: RxBuffer,
    describe: String,
}

impl std::fmt::Debug for UartTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UartTransport")
            .field("describe", &self.describe)
            .field("buffered", &self.rx.pending())
            .finish()
    }
}

impl UartTransport {
    /// Open `spec.device`, switch it to raw mode at `spec.baud` and drop whatever input was
    /// pending. Must run inside a tokio runtime.
    pub fn open(spec: &UartSpec) -> Result<Self, TransportError> {
        let describe = format!("uart:{}@{}", spec.device.display(), spec.baud);
        let fd = open_tty(&spec.device).map_err(|e| TransportError::io(&describe, e))?;
        Self::from_fd(fd, spec.baud, describe)
    }

    /// Use an already open tty or pty (for example the slave side of `openpty`): switch it to
    /// raw mode at `baud`, make it non-blocking and drop pending input. `describe` is what
    /// [`Transport::describe`] will return. Must run inside a tokio runtime.
    pub fn from_fd(fd: OwnedFd, baud: u32, describe: String) -> Result<Self, TransportError> {
        make_raw(&fd, baud).map_err(|e| TransportError::io(format!("{describe}: termios"), e))?;
        set_nonblocking(&fd).map_err(|e| TransportError::io(format!("{describe}: fcntl"), e))?;
        if tokio::runtime::Handle::try_current().is_err() {
            // AsyncFd would panic without a reactor.
            return Err(TransportError::Unsupported(format!(
                "{describe}: must be opened inside a tokio runtime"
            )));
        }
        let fd = crate::readiness::readable(fd)
            .map_err(|e| TransportError::io(format!("{describe}: register with tokio"), e))?;
        Ok(UartTransport {
            fd,
            rx: RxBuffer::new(),
            describe,
        })
    }

    fn closed(&self, how: &str) -> TransportError {
        TransportError::Closed {
            context: format!("{}: {how}", self.describe),
            partial: self.rx.pending(),
        }
    }
}

fn open_tty(path: &Path) -> io::Result<OwnedFd> {
    // O_NOCTTY: the daemon must never acquire the line as its controlling terminal (a hang-up
    // would then send it SIGHUP).
    Ok(open(
        path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

fn make_raw(fd: &OwnedFd, baud: u32) -> io::Result<()> {
    let speed = baud_rate(baud).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("baud rate {baud} is not supported"),
        )
    })?;
    let mut tio = tcgetattr(fd)?;
    cfmakeraw(&mut tio);
    cfsetspeed(&mut tio, speed)?;
    // NCI framing has no escape for XON/XOFF bytes and the controllers have no RTS/CTS in the
    // NCI-over-UART profile used here, so both kinds of flow control stay off.
    tio.control_flags &= !ControlFlags::CRTSCTS;
    tio.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD;
    tio.input_flags &= !(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    tio.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    tio.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    tcsetattr(fd, SetArg::TCSANOW, &tio)?;
    // Whatever arrived before we took the line over is not ours to interpret.
    tcflush(fd, FlushArg::TCIOFLUSH)?;
    Ok(())
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Map a numeric speed to the termios constant (Linux has no arbitrary-speed `cfsetspeed`).
fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        9_600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        460_800 => BaudRate::B460800,
        500_000 => BaudRate::B500000,
        576_000 => BaudRate::B576000,
        921_600 => BaudRate::B921600,
        1_000_000 => BaudRate::B1000000,
        1_152_000 => BaudRate::B1152000,
        1_500_000 => BaudRate::B1500000,
        2_000_000 => BaudRate::B2000000,
        2_500_000 => BaudRate::B2500000,
        3_000_000 => BaudRate::B3000000,
        3_500_000 => BaudRate::B3500000,
        4_000_000 => BaudRate::B4000000,
        _ => return None,
    })
}

impl Transport for UartTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet(packet)?;
        let mut written = 0;
        while written < packet.len() {
            // Waits for room only after a write found the line full (see the module
            // documentation).
            let rest = &packet[written..];
            let fd = self.fd.get_ref();
            let write = crate::readiness::write_when_room(fd, || nix::unistd::write(fd, rest))
                .await
                .map_err(|e| {
                    TransportError::io(format!("{}: waiting for room", self.describe), e)
                })?;
            match write {
                Ok(n) => written += n,
                Err(Errno::EIO) => return Err(self.closed("hang-up while writing")),
                Err(e) => {
                    return Err(TransportError::io(
                        format!("{}: write", self.describe),
                        e.into(),
                    ))
                }
            }
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        loop {
            if let Some(packet) = self.rx.take_packet()? {
                return Ok(packet);
            }
            // The only await point: if the future is dropped here nothing has been read yet.
            // The read itself is synchronous and lands in `self.rx` at once.
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| TransportError::io(format!("{}: poll", self.describe), e))?;
            match crate::readiness::read_some(&mut guard, self.rx.spare_mut()) {
                Ok(Ok(0)) => return Err(self.closed("end of file")),
                Ok(Ok(n)) => self.rx.commit(n),
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                // Linux reports a pty whose master side closed, and a vanished serial
                // adapter, as EIO on read.
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                    return Err(self.closed("hang-up"));
                }
                Ok(Err(e)) => {
                    return Err(TransportError::io(format!("{}: read", self.describe), e))
                }
                Err(_would_block) => {}
            }
        }
    }

    async fn reset(&mut self) -> Result<(), TransportError> {
        self.rx.clear();
        tcflush(self.fd.get_ref().as_fd(), FlushArg::TCIFLUSH)
            .map_err(|e| TransportError::io(format!("{}: flush input", self.describe), e.into()))
    }

    /// The same as [`Transport::reset`]: a serial line has nothing to toggle.
    async fn discard_input(&mut self) -> Result<(), TransportError> {
        self.reset().await
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
