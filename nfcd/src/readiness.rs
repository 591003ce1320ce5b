//! Readable-only registration with the tokio reactor, and the duplicate a write waits on.
//!
//! nfcd's descriptors on the tap path — the UART line, the APDU channel to a wallet, and the
//! virtual controller's pty — are registered for readability only. Registered for writability
//! too, every read the far side makes frees room and wakes the owner with an edge-triggered
//! `EPOLLOUT` for nothing, typically in the middle of a hop it is waiting on. Writes are tried
//! at once without blocking; only when one finds the descriptor full does the writer wait, on a
//! duplicate from [`write_waiter`] registered for writability for as long as that write waits.
//!
//! This module does not write anything itself: each user keeps its own write loop and errors.

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;
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
