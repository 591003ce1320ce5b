//! Readable-only registration with the tokio reactor, and the duplicate a write waits on.
//!
//! nfcd's descriptors on the tap path — the UART line, the APDU channel to a wallet, the bus
//! socket ([`crate::dbus::socket`]) and the virtual controller's pty — are registered for
//! readability only. Registered for writability
//! too, every read the far side makes frees room and wakes the owner with an edge-triggered
//! `EPOLLOUT` for nothing, typically in the middle of a hop it is waiting on. Writes are tried
//! at once without blocking; only when one finds the descriptor full does the writer wait, on a
//! duplicate from [`write_waiter`] registered for writability for as long as that write waits.
//!
//! A read that returns less than it asked for drained the descriptor, so [`read_some`] clears
//! readiness after it instead of leaving the next poll to read again until `EAGAIN`. On Linux
//! that extra read is not only a wasted call: a non-blocking read of a tty that finds no input
//! first waits for the tty's flip-buffer work to finish (`n_tty_read` →
//! `tty_buffer_flush_work`), which put nfcd to sleep in the kernel for 10–20 µs after most
//! packets from a pty (seen with `perf sched timehist`). Input that arrives after the read
//! raises a new edge, and tokio only clears readiness that no newer event has set
//! (`AsyncFdReadyGuard::clear_ready`), so nothing is missed.
//!
//! [`write_when_room`] is the one loop that waits for room: each user passes its own write
//! (`write(2)`, `send(2)`, `sendmsg(2)`) and maps that write's errors itself.

use std::io;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard, TryIoError};
use tokio::io::Interest;

/// `fd` registered with the reactor for readability alone. Must run inside a tokio runtime.
pub(crate) fn readable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is an `OwnedFd`, so it is open and valid; the `AsyncFd` takes ownership and
    // keeps it open (and its number the same) until it is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)
}

/// A close-on-exec duplicate of `fd` registered for writability alone: what a writer waits on
/// after a write found `fd` full. Dropping it deregisters and closes the duplicate.
pub(crate) fn write_waiter(fd: &OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    let dup = fd.try_clone()?;
    // SAFETY: `dup` is a new descriptor owned by the AsyncFd from here on, which keeps it open
    // (and its number the same) until it is dropped.
    unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }.map_err(io::Error::from)
}

/// `write`, one non-blocking write to `fd`, made at once and made again while it finds `fd` full
/// (`EAGAIN`; after the first, each time a [`write_waiter`] duplicate says there is room; the
/// duplicate is dropped on return) or is interrupted (`EINTR`). `Ok` holds the write's own
/// result, other errors included; `Err` is a failure to wait (the duplicate or its poll).
pub(crate) async fn write_when_room<T>(
    fd: &OwnedFd,
    mut write: impl FnMut() -> Result<T, Errno>,
) -> io::Result<Result<T, Errno>> {
    let mut waiting: Option<AsyncFd<OwnedFd>> = None;
    loop {
        if let Some(waiting) = &waiting {
            waiting.writable().await?.clear_ready();
        }
        match write() {
            Err(Errno::EAGAIN) if waiting.is_none() => waiting = Some(write_waiter(fd)?),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            result => return Ok(result),
        }
    }
}

/// One `read(2)` into `buf` on the descriptor behind `guard`, as `try_io` makes it (`Err` when
/// it would block, readiness cleared), and readiness cleared too when it returned less than
/// `buf` holds (see the module documentation).
pub(crate) fn read_some(
    guard: &mut AsyncFdReadyGuard<'_, OwnedFd>,
    buf: &mut [u8],
) -> Result<io::Result<usize>, TryIoError> {
    let wanted = buf.len();
    let read = guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), buf)?));
    if matches!(read, Ok(Ok(n)) if n < wanted) {
        guard.clear_ready();
    }
    read
}
