//! The master side of a pseudo-terminal as a tokio byte stream, for serving the virtual
//! controller where a UART controller would be.
//!
//! Contract: [`open_pty`] makes a pty pair (both ends close-on-exec), puts the line in raw mode
//! and returns the master as a non-blocking [`PtyMaster`] (`AsyncRead + AsyncWrite` through
//! [`AsyncFd`]) together with the slave descriptor and its path. The caller keeps the slave
//! descriptor open for as long as it serves: while any slave descriptor is open the master
//! never reports a hang-up, so clients may open and close `/dev/pts/N` as often as they like.
//! Termios on the client's side (speed, raw mode) remains the client's business; this only
//! keeps the line from echoing controller output back before a client has set it up.
//!
//! The master is registered for readability only, and a write that finds the line full waits
//! on a duplicate registered for writability (`crate::readiness` says why).

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The master side of a pty, non-blocking, registered with the tokio reactor.
#[derive(Debug)]
pub struct PtyMaster {
    /// Registered for readability alone (see the module documentation).
    fd: AsyncFd<OwnedFd>,
    /// A duplicate registered for writability, while a write waits for room.
    write_wait: Option<AsyncFd<OwnedFd>>,
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

/// Open a pty pair in raw mode, both ends close-on-exec. Must run inside a tokio runtime.
pub fn open_pty() -> io::Result<Pty> {
    // Both ends are opened with O_CLOEXEC (openpty(3) cannot): a process started meanwhile —
    // the daemon under test, a wallet — must not inherit the master, or the line would never
    // hang up when the server closes it.
    let ptmx = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&ptmx)?;
    unlockpt(&ptmx)?;
    let slave_path = PathBuf::from(ptsname_r(&ptmx)?);
    let slave = open(
        &slave_path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let master = OwnedFd::from(ptmx);
    // With the default line discipline (ECHO, ICANON) the kernel would echo what the
    // controller writes back to the master as if the host had sent it, until a client sets
    // raw mode. Raw from the start closes that window.
    let mut tio = tcgetattr(&slave)?;
    cfmakeraw(&mut tio);
    tcsetattr(&slave, SetArg::TCSANOW, &tio)?;
    let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
    fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    if tokio::runtime::Handle::try_current().is_err() {
        // AsyncFd would panic without a reactor.
        return Err(io::Error::other(
            "a pty must be opened inside a tokio runtime",
        ));
    }
    let fd = crate::readiness::readable(master)?;
    Ok(Pty {
        master: PtyMaster {
            fd,
            write_wait: None,
        },
        slave,
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
            match crate::readiness::read_some(&mut guard, buf.initialize_unfilled()) {
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
        let this = self.get_mut();
        loop {
            if let Some(waiting) = this.write_wait.as_ref() {
                let mut guard = ready!(waiting.poll_write_ready(cx))?;
                match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), buf)?)) {
                    Ok(Ok(n)) => {
                        drop(guard);
                        this.write_wait = None;
                        return Poll::Ready(Ok(n));
                    }
                    Ok(Err(e)) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => {}
                }
                continue;
            }
            match nix::unistd::write(this.fd.get_ref(), buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    // The line is full: wait for room on a duplicate registered for it
                    // (close-on-exec, as both ends are).
                    let waiting = crate::readiness::write_waiter(this.fd.get_ref())?;
                    this.write_wait = Some(waiting);
                }
                Err(e) => return Poll::Ready(Err(e.into())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A write that finds the line full waits for room, and completes once the client reads.
    #[tokio::test]
    async fn a_full_line_waits_for_the_client_to_read() {
        let Pty {
            mut master, slave, ..
        } = open_pty().expect("pty");
        let chunk = [0x5A_u8; 4096];
        let mut written = 0usize;
        // Fill the line until a write has to wait.
        let waited = loop {
            match tokio::time::timeout(Duration::from_millis(50), master.write(&chunk)).await {
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) => panic!("write: {e}"),
                Err(_) => break true,
            }
            assert!(written < 16 << 20, "the line never filled up");
        };
        assert!(waited && written > 0);
        // The client reads everything on a thread; the waiting write then completes.
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut total = 0usize;
            while total < written + 1 {
                match nix::unistd::read(&slave, &mut buf) {
                    Ok(n) => total += n,
                    Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("read: {e}"),
                }
            }
            total
        });
        let n = tokio::time::timeout(Duration::from_secs(5), master.write(&chunk[..1]))
            .await
            .expect("the write completes once there is room")
            .expect("write");
        assert_eq!(n, 1);
        assert!(master.write_wait.is_none());
        assert!(reader.join().expect("reader") > written);
    }
}
