//! The fast APDU path: one command APDU per message to the wallet, one response APDU back.
//!
//! `org.nfcd.Manager1.OpenApduChannel` creates an `AF_UNIX` / `SOCK_SEQPACKET` socket pair. The
//! wallet gets one end (blocking, as any fd passed over D-Bus keeps the file status flags it has
//! here); nfcd keeps the other as an [`ApduChannel`] driven by tokio. SOCK_SEQPACKET keeps
//! message boundaries and order (unix(7)), so no framing is added: a message is exactly one
//! C-APDU or one R-APDU (ISO/IEC 7816-4 §5.1).
//!
//! Stale responses. A deadline is applied by the caller of [`ApduChannel::exchange`] (dropping
//! its future); the wallet may still answer that command later. Because the wallet answers every
//! command exactly once and in order, the channel counts commands sent minus responses received;
//! after sending, it takes responses until that count reaches zero, and the last one is the
//! answer to the newest command; the ones before it are late answers to abandoned commands and
//! are dropped. Before sending, anything already queued is drained the same way, so a message
//! the wallet sent unasked cannot pass for the next answer. A wallet that never answers some
//! command leaves the count above zero: every later exchange then waits for one answer more
//! than it gets and times out, which fails safe (6F00 at the reader) instead of pairing a command
//! with the wrong answer. Closing and reopening the channel starts afresh.
//!
//! Readiness. nfcd's end is registered with the reactor for readability only; a command is sent
//! with one non-blocking `send`, and one that finds the socket full waits on a duplicate
//! registered for writability (`crate::readiness` says why).
//!
//! This module does not decide deadlines, status words, or what to do when a channel fails.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{recvmsg, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use tokio::io::unix::AsyncFd;
use tokio::sync::Mutex;

/// Longest command APDU: extended case 4 (ISO/IEC 7816-4 §5.1): header 4 + Lc 3 + 65535 data +
/// Le 2 bytes.
pub const MAX_COMMAND_APDU: usize = 4 + 3 + 65_535 + 2;
/// Longest response APDU: 65536 data bytes (extended Le = 0000) + SW1 SW2 (ISO/IEC 7816-4 §5.1).
pub const MAX_RESPONSE_APDU: usize = 65_536 + 2;
/// Shortest command APDU: CLA INS P1 P2 (ISO/IEC 7816-4 §5.1, case 1).
pub const MIN_COMMAND_APDU: usize = 4;
/// Shortest response APDU: the trailer SW1 SW2 alone.
pub const MIN_RESPONSE_APDU: usize = 2;

/// Why an exchange failed.
#[derive(Debug)]
pub enum ChannelError {
    /// The wallet closed its end (or sent an empty message, which reads the same); the channel
    /// stays closed.
    Closed,
    /// The command is shorter than 4 or longer than [`MAX_COMMAND_APDU`] bytes.
    CommandLength(usize),
    /// The response is shorter than SW1 SW2.
    ResponseTooShort(usize),
    /// The response is longer than [`MAX_RESPONSE_APDU`] bytes (the message was truncated).
    ResponseTooLong,
    /// Any other socket error.
    Io(io::Error),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Closed => write!(f, "the APDU channel is closed"),
            ChannelError::CommandLength(n) => write!(
                f,
                "command APDU of {n} bytes; {MIN_COMMAND_APDU} to {MAX_COMMAND_APDU} are allowed"
            ),
            ChannelError::ResponseTooShort(n) => {
                write!(f, "response APDU of {n} byte(s) lacks SW1 SW2")
            }
            ChannelError::ResponseTooLong => {
                write!(f, "response APDU longer than {MAX_RESPONSE_APDU} bytes")
            }
            ChannelError::Io(e) => write!(f, "APDU channel: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

impl From<io::Error> for ChannelError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EPIPE) | Some(Errno::ECONNRESET) => ChannelError::Closed,
            _ => ChannelError::Io(e),
        }
    }
}

struct State {
    /// Commands sent whose answer has not been received.
    unanswered: u64,
    closed: bool,
    /// Receive buffer, one byte longer than the longest response to detect longer ones.
    buf: Vec<u8>,
}

/// nfcd's end of an APDU channel.
pub struct ApduChannel {
    fd: AsyncFd<OwnedFd>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ApduChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApduChannel")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .finish_non_exhaustive()
    }
}

/// What one non-blocking receive found.
enum Received {
    /// A message of this many bytes is in the buffer.
    Message(usize),
    /// A message longer than the buffer; its excess was discarded by the kernel.
    Truncated,
    /// End of file (or an empty message).
    Eof,
}

impl ApduChannel {
    /// Create a socket pair: nfcd's end as an `ApduChannel`, and the wallet's (blocking,
    /// close-on-exec) end to pass over D-Bus. Needs a tokio runtime.
    pub fn pair() -> io::Result<(ApduChannel, OwnedFd)> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // O_NONBLOCK lives on the open file description, which the wallet's end does not share.
        fcntl(&ours, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
        Ok((ApduChannel::from_fd(ours)?, theirs))
    }

    /// Wrap an already non-blocking SOCK_SEQPACKET socket.
    fn from_fd(fd: OwnedFd) -> io::Result<ApduChannel> {
        // Registering without a reactor would panic.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let fd = crate::readiness::readable(fd)?;
        Ok(ApduChannel {
            fd,
            state: Mutex::new(State {
                unanswered: 0,
                closed: false,
                buf: vec![0; MAX_RESPONSE_APDU + 1],
            }),
        })
    }

    /// Send `command` and wait for its response.
    ///
    /// Cancel-safe: dropping the future (a deadline) leaves the channel usable; a late answer to
    /// the abandoned command is dropped by a later exchange (see the module documentation).
    /// Exchanges are serialised.
    pub async fn exchange(&self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if !(MIN_COMMAND_APDU..=MAX_COMMAND_APDU).contains(&command.len()) {
            return Err(ChannelError::CommandLength(command.len()));
        }
        let mut st = self.state.lock().await;
        if st.closed {
            return Err(ChannelError::Closed);
        }

        // Late or unasked messages already here are not the answer to what we are about to send.
        loop {
            let received = match self.try_recv(&mut st.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            };
            match received {
                Received::Eof => {
                    st.closed = true;
                    return Err(ChannelError::Closed);
                }
                Received::Message(_) | Received::Truncated => {
                    st.unanswered = st.unanswered.saturating_sub(1);
                }
            }
        }

        // Waits for room only after a send found the socket full (see the module
        // documentation).
        let fd = self.fd.get_ref();
        let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
        let sent = crate::readiness::write_when_room(fd, || send(fd.as_raw_fd(), command, flags));
        if let Err(e) = sent.await? {
            let e = ChannelError::from(io::Error::from(e));
            if matches!(e, ChannelError::Closed) {
                st.closed = true;
            }
            return Err(e);
        }
        // Counted as soon as it is sent: from here on, cancelling leaves an answer owed.
        st.unanswered += 1;

        loop {
            let mut ready = self.fd.readable().await?;
            let State { buf, .. } = &mut *st;
            let received = match ready.try_io(|_| self.try_recv(buf)) {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            };
            match received {
                Received::Eof => {
                    st.closed = true;
                    return Err(ChannelError::Closed);
                }
                Received::Message(n) => {
                    st.unanswered = st.unanswered.saturating_sub(1);
                    if st.unanswered > 0 {
                        // The answer to an abandoned command.
                        continue;
                    }
                    if n < MIN_RESPONSE_APDU {
                        return Err(ChannelError::ResponseTooShort(n));
                    }
                    return Ok(st.buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default());
                }
                Received::Truncated => {
                    st.unanswered = st.unanswered.saturating_sub(1);
                    if st.unanswered > 0 {
                        continue;
                    }
                    return Err(ChannelError::ResponseTooLong);
                }
            }
        }
    }

    /// One non-blocking `recvmsg`.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            self.fd.get_ref().as_raw_fd(),
            &mut iov,
            None,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        Ok(if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            Received::Truncated
        } else if msg.bytes == 0 {
            Received::Eof
        } else {
            Received::Message(msg.bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    /// SELECT PPSE: 00 A4 04 00 0E "2PAY.SYS.DDF01" 00 (EMV Book 1 §11.3.2).
    const SELECT_PPSE: &[u8] = b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00";
    /// GET PROCESSING OPTIONS with an empty PDOL: 80 A8 00 00 02 83 00 00.
    const GPO: &[u8] = &[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00];
    const SW_OK: [u8; 2] = [0x90, 0x00];

    /// The wallet side: blocking receive of one message.
    fn wallet_recv(fd: &OwnedFd) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_COMMAND_APDU + 1];
        let n = nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())
            .expect("wallet recv");
        buf.truncate(n);
        buf
    }

    fn wallet_send(fd: &OwnedFd, msg: &[u8]) {
        send(fd.as_raw_fd(), msg, MsgFlags::MSG_NOSIGNAL).expect("wallet send");
    }

    /// Answer each command with its INS byte followed by 90 00.
    fn echo_ins(fd: OwnedFd, commands: usize) -> thread::JoinHandle<Vec<Vec<u8>>> {
        thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..commands {
                let c = wallet_recv(&fd);
                wallet_send(&fd, &[c[1], SW_OK[0], SW_OK[1]]);
                seen.push(c);
            }
            seen
        })
    }

    #[tokio::test]
    async fn one_apdu_per_message_each_way() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = echo_ins(wallet, 2);
        // SELECT PPSE → A4 90 00; GPO → A8 90 00
        assert_eq!(
            ch.exchange(SELECT_PPSE).await.expect("select"),
            [0xA4, 0x90, 0x00]
        );
        assert_eq!(ch.exchange(GPO).await.expect("gpo"), [0xA8, 0x90, 0x00]);
        assert_eq!(
            w.join().expect("wallet"),
            vec![SELECT_PPSE.to_vec(), GPO.to_vec()]
        );
    }

    #[tokio::test]
    async fn wallet_end_is_blocking_and_ours_is_not() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let flags =
            |fd: &OwnedFd| OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).expect("getfl"));
        assert!(!flags(&wallet).contains(OFlag::O_NONBLOCK));
        assert!(flags(ch.fd.get_ref()).contains(OFlag::O_NONBLOCK));
    }

    #[tokio::test]
    async fn longest_extended_apdus_pass_whole() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        // Case 4E: 00 DA 00 00 | 00 FF FF | 65535 bytes | FF FF
        let mut command = vec![0x00, 0xDA, 0x00, 0x00, 0x00, 0xFF, 0xFF];
        command.extend(std::iter::repeat_n(0x5A, 65_535));
        command.extend([0xFF, 0xFF]);
        assert_eq!(command.len(), MAX_COMMAND_APDU);
        let w = thread::spawn(move || {
            let c = wallet_recv(&wallet);
            let mut r = vec![0xA5; 65_536];
            r.extend(SW_OK);
            wallet_send(&wallet, &r);
            c.len()
        });
        let r = ch.exchange(&command).await.expect("exchange");
        assert_eq!(r.len(), MAX_RESPONSE_APDU);
        assert_eq!(r[65_536..], SW_OK);
        assert_eq!(w.join().expect("wallet"), MAX_COMMAND_APDU);
    }

    /// nfcd's end is registered for readability alone: a send that finds the socket full
    /// must still go out once the wallet reads.
    #[tokio::test]
    async fn a_full_socket_waits_for_the_wallet_to_read() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        // Fill the socket from nfcd's side with 4-octet "90 90 90 90" messages until it takes
        // no more.
        let filler = [0x90u8; 4];
        let mut queued = 0usize;
        while send(
            ch.fd.get_ref().as_raw_fd(),
            &filler,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        )
        .is_ok()
        {
            queued += 1;
        }
        assert!(queued > 0);
        let w = thread::spawn(move || {
            // Let the exchange find the socket full, then drain the fillers and answer the
            // SELECT PPSE: 6F 00 90 00 (an FCI stand-in).
            thread::sleep(Duration::from_millis(50));
            for _ in 0..queued {
                assert_eq!(wallet_recv(&wallet), filler);
            }
            let c = wallet_recv(&wallet);
            assert_eq!(c, SELECT_PPSE);
            wallet_send(&wallet, &[0x6F, 0x00, 0x90, 0x00]);
        });
        let answer = tokio::time::timeout(Duration::from_secs(5), ch.exchange(SELECT_PPSE))
            .await
            .expect("sent once the wallet read")
            .expect("answer");
        assert_eq!(answer, [0x6F, 0x00, 0x90, 0x00]);
        w.join().expect("wallet");
    }

    #[tokio::test]
    async fn late_answer_to_a_timed_out_command_is_dropped() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = thread::spawn(move || {
            // First command: answer only after nfcd has given up on it.
            let c1 = wallet_recv(&wallet);
            thread::sleep(Duration::from_millis(150));
            wallet_send(&wallet, &[c1[1], 0x90, 0x00]);
            // Second command, answered at once.
            let c2 = wallet_recv(&wallet);
            wallet_send(&wallet, &[c2[1], 0x90, 0x00]);
        });
        let first = tokio::time::timeout(Duration::from_millis(30), ch.exchange(SELECT_PPSE)).await;
        assert!(first.is_err(), "the first exchange must miss its deadline");
        // Sent before the late A4 90 00 arrives: the count, not a drain, drops it.
        assert_eq!(ch.exchange(GPO).await.expect("gpo"), [0xA8, 0x90, 0x00]);
        w.join().expect("wallet");
    }

    #[tokio::test]
    async fn late_answer_already_queued_is_drained() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = thread::spawn(move || {
            let c1 = wallet_recv(&wallet);
            thread::sleep(Duration::from_millis(60));
            wallet_send(&wallet, &[c1[1], 0x90, 0x00]);
            let c2 = wallet_recv(&wallet);
            wallet_send(&wallet, &[c2[1], 0x90, 0x00]);
        });
        let first = tokio::time::timeout(Duration::from_millis(20), ch.exchange(SELECT_PPSE)).await;
        assert!(first.is_err());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(ch.exchange(GPO).await.expect("gpo"), [0xA8, 0x90, 0x00]);
        w.join().expect("wallet");
    }

    #[tokio::test]
    async fn unasked_message_is_not_taken_for_an_answer() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        wallet_send(&wallet, &[0x6F, 0x00]);
        let w = echo_ins(wallet, 1);
        // Give the kernel the unasked message before the exchange starts.
        assert_eq!(ch.exchange(GPO).await.expect("gpo"), [0xA8, 0x90, 0x00]);
        w.join().expect("wallet");
    }

    #[tokio::test]
    async fn wallet_closing_is_closed_and_stays_closed() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = thread::spawn(move || {
            let _ = wallet_recv(&wallet);
            drop(wallet);
        });
        assert!(matches!(
            ch.exchange(SELECT_PPSE).await,
            Err(ChannelError::Closed)
        ));
        w.join().expect("wallet");
        assert!(matches!(ch.exchange(GPO).await, Err(ChannelError::Closed)));
    }

    #[tokio::test]
    async fn closed_before_send_is_closed() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        drop(wallet);
        assert!(matches!(
            ch.exchange(SELECT_PPSE).await,
            Err(ChannelError::Closed)
        ));
    }

    #[tokio::test]
    async fn response_without_status_word() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = thread::spawn(move || {
            let _ = wallet_recv(&wallet);
            wallet_send(&wallet, &[0x90]);
            wallet
        });
        assert!(matches!(
            ch.exchange(SELECT_PPSE).await,
            Err(ChannelError::ResponseTooShort(1))
        ));
        drop(w.join().expect("wallet"));
    }

    #[tokio::test]
    async fn oversized_response_is_refused_and_the_channel_goes_on() {
        let (ch, wallet) = ApduChannel::pair().expect("socketpair");
        let w = thread::spawn(move || {
            let _ = wallet_recv(&wallet);
            wallet_send(&wallet, &vec![0x00; MAX_RESPONSE_APDU + 10]);
            let c = wallet_recv(&wallet);
            wallet_send(&wallet, &[c[1], 0x90, 0x00]);
        });
        assert!(matches!(
            ch.exchange(SELECT_PPSE).await,
            Err(ChannelError::ResponseTooLong)
        ));
        assert_eq!(ch.exchange(GPO).await.expect("gpo"), [0xA8, 0x90, 0x00]);
        w.join().expect("wallet");
    }

    #[tokio::test]
    async fn command_lengths() {
        let (ch, _wallet) = ApduChannel::pair().expect("socketpair");
        assert!(matches!(
            ch.exchange(&[0x00, 0xA4, 0x04]).await,
            Err(ChannelError::CommandLength(3))
        ));
        assert!(matches!(
            ch.exchange(&vec![0; MAX_COMMAND_APDU + 1]).await,
            Err(ChannelError::CommandLength(_))
        ));
    }
}
