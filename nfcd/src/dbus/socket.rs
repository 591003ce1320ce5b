//! The socket under nfcd's own bus connection: a unix stream registered with tokio for
//! readability only.
//!
//! zbus registers the socket of a connection it opens for readability and writability. Each
//! time `dbus-daemon` takes a message off the socket (a `ProcessApdu` call on its way to a
//! wallet, say), the freed room is an edge-triggered `EPOLLOUT` for the sender, whose thread
//! leaves `epoll_wait`, finds nothing to do and goes back: a wake-up in the middle of every hop
//! to a wallet, on the CPU that `dbus-daemon` and the wallet need next (`perf sched`: one such
//! run per hop, 6–9 µs). nfcd's other descriptors on the tap path already avoid it
//! ([`crate::readiness`]); this does the same for the bus.
//!
//! [`connect`] resolves the bus address as zbus does and, for a `unix:path=` or
//! `unix:abstract=` address (the system bus, the session bus, the test buses), connects the
//! socket itself and hands zbus a [`BusSocket`]; zbus still does the authentication, the
//! `Hello` and everything above the bytes. Any other address goes to zbus's own transport.
//!
//! - Reads: one `recvmsg` takes in as much as the socket holds, up to [`READ_AHEAD`] octets;
//!   zbus's reads (a message's fixed header, then the rest) are served from that buffer. A read
//!   that returns less than it asked for, with no file descriptors, drained the socket, so
//!   readiness is cleared without a read to `EAGAIN` (the rule of [`crate::readiness::read_some`]).
//!   A read that brought descriptors may have stopped early: Linux ends a stream read after the
//!   segment that carries them, so readiness is kept and the next read goes to the socket.
//! - File descriptors: a bus sends those of a message with the write of its first octets, in
//!   its own write, so those one `recvmsg` returns belong to the message that starts in the last
//!   segment of that read, which is also where the read ends. They are handed to zbus with the
//!   octets that empty the buffer, which are that message's.
//! - Writes are tried at once without blocking; a write that finds the socket full waits on a
//!   duplicate registered for writability for as long as it waits
//!   ([`crate::readiness::write_when_room`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, shutdown, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, UnixAddr,
};
use tokio::io::unix::AsyncFd;
use zbus::address::transport::{Transport, UnixSocket};
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::export::async_trait::async_trait;
use zbus::{connection, Address, Connection};

use crate::config::BusSpec;

/// Octets one read takes in at most: a few messages of the tap's size (a `ProcessApdu` of a
/// 261-octet APDU is about 400). A longer message is read straight into zbus's buffer.
pub const READ_AHEAD: usize = 4096;

/// The most descriptors the kernel passes with one write (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// A connection builder for `bus`: over a [`BusSocket`], connected here, when its address is a
/// unix socket; for zbus's own transport otherwise. Options are the caller's to add.
pub async fn builder(bus: &BusSpec) -> zbus::Result<connection::Builder<'static>> {
    let address = match bus {
        BusSpec::System => Address::system()?,
        BusSpec::Session => Address::session()?,
        BusSpec::Address(a) => a.as_str().try_into()?,
    };
    let Some(target) = unix_target(&address)? else {
        return Ok(connection::Builder::address(address));
    };
    let stream = tokio::net::UnixStream::connect_addr(&target.into()).await?;
    let socket = BusSocket::new(stream.into_std()?.into())?;
    Ok(connection::Builder::socket(socket))
}

/// Connect to `bus` ([`builder`] without options).
pub async fn connect(bus: &BusSpec) -> zbus::Result<Connection> {
    builder(bus).await?.build().await
}

/// The socket address of a `unix:path=` or `unix:abstract=` address; `None` for any other.
fn unix_target(address: &Address) -> io::Result<Option<std::os::unix::net::SocketAddr>> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::SocketAddr;

    let Transport::Unix(unix) = address.transport() else {
        return Ok(None);
    };
    match unix.path() {
        UnixSocket::File(path) => SocketAddr::from_pathname(path).map(Some),
        UnixSocket::Abstract(name) => SocketAddr::from_abstract_name(name.as_bytes()).map(Some),
        _ => Ok(None),
    }
}

/// A connected unix stream registered for readability only; zbus splits it into a
/// [`BusReader`] and a [`BusWriter`].
#[derive(Debug)]
pub struct BusSocket {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl BusSocket {
    /// Take over `fd`, a connected `AF_UNIX` stream socket in non-blocking mode. Must run inside
    /// a tokio runtime, which then drives the connection.
    pub fn new(fd: OwnedFd) -> io::Result<BusSocket> {
        Ok(BusSocket {
            fd: Arc::new(crate::readiness::readable(fd)?),
        })
    }
}

impl Socket for BusSocket {
    type ReadHalf = BusReader;
    type WriteHalf = BusWriter;

    fn split(self) -> Split<BusReader, BusWriter> {
        Split::new(
            BusReader {
                fd: self.fd.clone(),
                buf: vec![0; READ_AHEAD].into_boxed_slice(),
                start: 0,
                end: 0,
                fds: Vec::new(),
                cmsg: nix::cmsg_space!([RawFd; MAX_FDS]),
            },
            BusWriter { fd: self.fd },
        )
    }
}

/// The read half: octets read ahead and the descriptors that came with them.
#[derive(Debug)]
pub struct BusReader {
    fd: Arc<AsyncFd<OwnedFd>>,
    buf: Box<[u8]>,
    /// `buf[start..end]` is read and not yet handed to zbus.
    start: usize,
    end: usize,
    /// Descriptors of the last read, handed over with its last octets.
    fds: Vec<OwnedFd>,
    /// Room for the control message of a read, allocated once: a new one per read would be a
    /// large-bin allocation, which makes glibc consolidate its fast bins first.
    cmsg: Vec<u8>,
}

impl BusReader {
    /// One `recvmsg` into `into` (the read-ahead buffer, or zbus's own for a long message) as
    /// soon as the socket is readable; the octets read, descriptors added to `fds`.
    async fn read(
        fd: &AsyncFd<OwnedFd>,
        into: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        cmsg: &mut [u8],
    ) -> io::Result<usize> {
        loop {
            let mut guard = fd.readable().await?;
            let before = fds.len();
            match guard.try_io(|fd| receive(fd.get_ref().as_raw_fd(), into, fds, cmsg)) {
                Ok(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the bus closed the connection",
                    ))
                }
                Ok(Ok(n)) => {
                    if n < into.len() && fds.len() == before {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

#[async_trait]
impl ReadHalf for BusReader {
    async fn recvmsg(&mut self, out: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        if out.is_empty() {
            return Ok((0, Vec::new()));
        }
        if self.start == self.end {
            if out.len() >= self.buf.len() {
                let mut fds = Vec::new();
                let n = Self::read(&self.fd, out, &mut fds, &mut self.cmsg).await?;
                return Ok((n, fds));
            }
            // Cancelled while waiting, this leaves the buffer as it was: empty.
            let n = Self::read(&self.fd, &mut self.buf, &mut self.fds, &mut self.cmsg).await?;
            (self.start, self.end) = (0, n);
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        let fds = if self.start == self.end {
            std::mem::take(&mut self.fds)
        } else {
            Vec::new()
        };
        Ok((n, fds))
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }
}

/// The write half.
#[derive(Debug)]
pub struct BusWriter {
    fd: Arc<AsyncFd<OwnedFd>>,
}

#[async_trait]
impl WriteHalf for BusWriter {
    async fn sendmsg(&mut self, buffer: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let fd = self.fd.get_ref();
        crate::readiness::write_when_room(fd, || send(fd.as_raw_fd(), buffer, &raw))
            .await?
            .map_err(io::Error::from)
    }

    async fn close(&mut self) -> io::Result<()> {
        match shutdown(self.fd.get_ref().as_raw_fd(), Shutdown::Both) {
            Ok(()) | Err(Errno::ENOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }
}

/// One non-blocking `recvmsg(2)`, the control message into `cmsg` (sized by `cmsg_space!`);
/// descriptors received are close-on-exec and appended to `fds`.
fn receive(
    fd: RawFd,
    into: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    cmsg: &mut [u8],
) -> io::Result<usize> {
    let mut iov = [IoSliceMut::new(into)];
    let msg = recvmsg::<UnixAddr>(
        fd,
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let bytes = msg.bytes;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = c {
            // SAFETY: the kernel just installed these descriptors in this process for us;
            // nothing else owns them.
            fds.extend(
                received
                    .into_iter()
                    .map(|r| unsafe { OwnedFd::from_raw_fd(r) }),
            );
        }
    }
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the bus sent more file descriptors than one read can take",
        ));
    }
    Ok(bytes)
}

/// One non-blocking `sendmsg(2)` of `buffer`, with `fds` as `SCM_RIGHTS` if any.
fn send(fd: RawFd, buffer: &[u8], fds: &[RawFd]) -> Result<usize, Errno> {
    let iov = [IoSlice::new(buffer)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<UnixAddr>(
        fd,
        &iov,
        cmsgs,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        None,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::os::fd::AsFd;

    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    use super::*;

    /// A connected pair: ours split into halves, the peer's end as a plain descriptor.
    fn pair() -> (BusReader, BusWriter, OwnedFd) {
        let (ours, peer) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (reader, writer) = BusSocket::new(ours).unwrap().split().take();
        (reader, writer, peer)
    }

    /// Some descriptor to pass (one end of a new pair; keep the other alive).
    fn descriptor_to_pass() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn peer_send(peer: &OwnedFd, bytes: &[u8], fds: &[RawFd]) {
        assert_eq!(send(peer.as_raw_fd(), bytes, fds), Ok(bytes.len()));
    }

    /// `recvmsg` of exactly `len` octets, failing the test if it waits more than a second.
    async fn take(reader: &mut BusReader, len: usize) -> (Vec<u8>, Vec<OwnedFd>) {
        let mut out = vec![0; len];
        let (n, fds) = tokio::time::timeout(Duration::from_secs(1), reader.recvmsg(&mut out))
            .await
            .expect("recvmsg waited although octets were there")
            .unwrap();
        out.truncate(n);
        (out, fds)
    }

    #[tokio::test]
    async fn reads_ahead_and_hands_out_in_zbus_sized_pieces() {
        let (mut reader, _writer, peer) = pair();
        // Two messages in one write: header-sized and rest-sized pieces come from one read.
        let two: Vec<u8> = (0..40u8).collect();
        peer_send(&peer, &two, &[]);
        assert_eq!(take(&mut reader, 16).await.0, two[..16]);
        assert_eq!(take(&mut reader, 4).await.0, two[16..20]);
        assert_eq!(take(&mut reader, 64).await.0, two[20..]);
        // The buffer is empty and the short read cleared readiness: the next piece waits until
        // the peer writes, and then comes.
        let mut out = [0; 8];
        let waiting = tokio::time::timeout(Duration::from_millis(50), reader.recvmsg(&mut out));
        assert!(
            waiting.await.is_err(),
            "a read returned with nothing written"
        );
        peer_send(&peer, b"later", &[]);
        assert_eq!(take(&mut reader, 8).await.0, b"later");
    }

    #[tokio::test]
    async fn descriptors_go_with_the_message_they_came_with() {
        let (mut reader, _writer, peer) = pair();
        let (passed, _other_end) = descriptor_to_pass();
        // A message without descriptors, one with, and one more after it, all waiting before
        // the first read: Linux ends the read after the segment with the descriptor.
        peer_send(&peer, b"first-message", &[]);
        peer_send(&peer, b"second", &[passed.as_raw_fd()]);
        peer_send(&peer, b"third", &[]);
        let (first, fds) = take(&mut reader, 13).await;
        assert_eq!((first.as_slice(), fds.len()), (&b"first-message"[..], 0));
        let (second, fds) = take(&mut reader, 6).await;
        assert_eq!((second.as_slice(), fds.len()), (&b"second"[..], 1));
        // The read that brought the descriptor kept readiness: the third comes without a write.
        let (third, fds) = take(&mut reader, 5).await;
        assert_eq!((third.as_slice(), fds.len()), (&b"third"[..], 0));
    }

    #[tokio::test]
    async fn a_long_message_is_read_straight_into_the_callers_buffer() {
        let (mut reader, _writer, peer) = pair();
        let long: Vec<u8> = (0..READ_AHEAD + 100).map(|i| i as u8).collect();
        peer_send(&peer, &long, &[]);
        let mut got = Vec::new();
        while got.len() < long.len() {
            got.extend(take(&mut reader, long.len() - got.len()).await.0);
        }
        assert_eq!(got, long);
    }

    #[tokio::test]
    async fn the_peer_closing_is_an_error_not_an_empty_read() {
        let (mut reader, _writer, peer) = pair();
        drop(peer);
        let mut out = [0; 16];
        let e = reader.recvmsg(&mut out).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn writes_carry_descriptors_and_wait_while_the_socket_is_full() {
        let (_reader, mut writer, peer) = pair();
        let (passed, _other_end) = descriptor_to_pass();
        let sent = writer.sendmsg(b"with-fd", &[passed.as_fd()]).await.unwrap();
        assert_eq!(sent, 7);
        let mut buf = [0; 64];
        let mut fds = Vec::new();
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        assert_eq!(
            receive(peer.as_raw_fd(), &mut buf, &mut fds, &mut cmsg).unwrap(),
            7
        );
        assert_eq!((&buf[..7], fds.len()), (&b"with-fd"[..], 1));

        // Fill the socket until a write would block, then have the peer drain it later: the
        // write waits for room instead of failing or spinning, and then goes through.
        let chunk = vec![0x5A; 64 * 1024];
        let mut filled = 0;
        while let Ok(n) = send(writer.fd.get_ref().as_raw_fd(), &chunk, &[]) {
            filled += n;
        }
        let drain = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut sink = vec![0; 64 * 1024];
            let mut total = 0;
            while total < filled + 5 {
                match nix::unistd::read(&peer, &mut sink) {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("draining: {e}"),
                }
            }
            total
        });
        let waited = tokio::time::timeout(Duration::from_secs(5), writer.sendmsg(b"after", &[]))
            .await
            .expect("the write never found room");
        assert_eq!(waited.unwrap(), 5);
        assert_eq!(drain.join().unwrap(), filled + 5);
    }
}
