//! The master side of a pseudo-terminal as a tokio byte stream, for serving the virtual
//! controller where a UART controller would be.
//!
//! Contract: [`open_pty`] makes a pty pair, puts the line in raw mode and returns the master as
//! a non-blocking [`PtyMaster`] (`AsyncRead + AsyncWrite` through [`AsyncFd`]) together with
//! the slave descriptor and its path. The caller keeps the slave descriptor open for as long
//! as it serves: while any slave descriptor is open the master never reports a hang-up, so
//! clients may open and close `/dev/pts/N` as often as they like. Termios on the client's side
//! (speed, raw mode) remains the client's business; this only keeps the line from echoing
//! controller output back before a client has set it up.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The master side of a pty, non-blocking, registered with the tokio reactor.
#[derive(Debug)]
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

/// A freshly opened pty: the master to serve on, the slave to keep open, the slave's path.
#[derive(Debug)]
pub struct Pty {
    /// The controller's end.
    pub master: PtyMaster,
    /// Held by the server so the line never hangs up between clients.
    pub slave: OwnedFd,
    /// The path clients open, e.g. `/dev/pts/3`.
    pub slave_path: PathBuf,
}

/// Open a pty pair in raw mode. Must run inside a tokio runtime.
pub fn open_pty() -> io::Result<Pty> {
    let pair = openpty(None, None)?;
    // With the default line discipline (ECHO, ICANON) the kernel would echo what the
    // controller writes back to the master as if the host had sent it, until a client sets
    // raw mode. Raw from the start closes that window.
    let mut tio = tcgetattr(&pair.slave)?;
    cfmakeraw(&mut tio);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &tio)?;
    let slave_path = nix::unistd::ttyname(&pair.slave)?;
    // openpty(3) leaves both descriptors inheritable: every process started afterwards (the
    // daemon under test, wallets) would hold the master open, and closing it here would
    // never hang the line up.
    for fd in [&pair.master, &pair.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
    fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    if tokio::runtime::Handle::try_current().is_err() {
        // AsyncFd would panic without a reactor.
        return Err(io::Error::other(
            "a pty must be opened inside a tokio runtime",
        ));
    }
    // SAFETY: `pair.master` is an `OwnedFd`, so it is open and valid; the `AsyncFd` takes
    // ownership and keeps it open for its whole lifetime, and `OwnedFd::as_raw_fd` always
    // returns that same descriptor.
    let fd = unsafe { AsyncFd::register(pair.master) }.map_err(io::Error::from)?;
    Ok(Pty {
        master: PtyMaster { fd },
        slave: pair.slave,
        slave_path,
    })
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), unfilled)?)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                // Linux reports a master whose every slave descriptor is closed as EIO: the
                // line hung up, which is an end of file here.
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                    return Poll::Ready(Ok(()))
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), buf)?)) {
                Ok(Ok(n)) => return Poll::Ready(Ok(n)),
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the line discipline; nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
