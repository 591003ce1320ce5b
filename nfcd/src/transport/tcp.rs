//! NCI over TCP.
//!
//! Contract: raw NCI packets back to back on a TCP stream, delimited by their 3-octet header
//! (NCI 1.0 §3, packet formats) — the framing virtual NFC controllers and NCI proxies use. Nagle's
//! algorithm is switched off (TCP_NODELAY) because every packet is latency-critical and small.
//! The peer closing or resetting the connection is [`TransportError::Closed`]. `reset` cannot
//! power-cycle anything; it drops buffered input, including bytes already queued in the socket.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::framing::RxBuffer;
use super::spec::TcpSpec;
use super::{check_packet, Packet, Transport, TransportError};

/// How long [`TcpTransport::connect`] waits for the connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection carrying raw NCI packets.
pub struct TcpTransport {
    stream: TcpStream,
    rx: RxBuffer,
    describe: String,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("describe", &self.describe)
            .field("buffered", &self.rx.pending())
            .finish()
    }
}

impl TcpTransport {
    /// Connect to `spec.host:spec.port` (all resolved addresses are tried in turn), giving up
    /// after [`CONNECT_TIMEOUT`].
    pub async fn connect(spec: &TcpSpec) -> Result<Self, TransportError> {
        let describe = super::TransportSpec::Tcp(spec.clone()).to_string();
        let connect = TcpStream::connect((spec.host.as_str(), spec.port));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(TransportError::io(format!("{describe}: connect"), e)),
            Err(_elapsed) => {
                return Err(TransportError::Timeout {
                    context: format!("{describe}: connect"),
                })
            }
        };
        Self::from_stream(stream, describe)
    }

    /// Use an already connected stream (e.g. one accepted from a listener). `describe` is what
    /// [`Transport::describe`] will return.
    pub fn from_stream(stream: TcpStream, describe: String) -> Result<Self, TransportError> {
        stream
            .set_nodelay(true)
            .map_err(|e| TransportError::io(format!("{describe}: TCP_NODELAY"), e))?;
        Ok(TcpTransport {
            stream,
            rx: RxBuffer::new(),
            describe,
        })
    }

    /// Whether Nagle's algorithm is off on the socket, as it should be.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.stream.nodelay()
    }

    fn closed(&self, how: &str) -> TransportError {
        TransportError::Closed {
            context: format!("{}: {how}", self.describe),
            partial: self.rx.pending(),
        }
    }

    fn is_disconnect(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    }
}

impl Transport for TcpTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet(packet)?;
        match self.stream.write_all(packet).await {
            Ok(()) => Ok(()),
            Err(e) if Self::is_disconnect(&e) => Err(self.closed("connection lost while writing")),
            Err(e) => Err(TransportError::io(format!("{}: write", self.describe), e)),
        }
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        loop {
            if let Some(packet) = self.rx.take_packet()? {
                return Ok(packet);
            }
            // `TcpStream::read` is cancel-safe: if the future is dropped, no data was read.
            match self.stream.read(self.rx.spare_mut()).await {
                Ok(0) => return Err(self.closed("connection closed by peer")),
                Ok(n) => self.rx.commit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Self::is_disconnect(&e) => {
                    return Err(self.closed("connection reset by peer"))
                }
                Err(e) => return Err(TransportError::io(format!("{}: read", self.describe), e)),
            }
        }
    }

    async fn reset(&mut self) -> Result<(), TransportError> {
        self.rx.clear();
        // Drain what the kernel already holds, without waiting for more; bounded so a peer
        // that never stops sending cannot keep us here.
        let mut scratch = [0u8; 512];
        for _ in 0..128 {
            match self.stream.try_read(&mut scratch) {
                Ok(0) => return Err(self.closed("connection closed by peer")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Self::is_disconnect(&e) => {
                    return Err(self.closed("connection reset by peer"))
                }
                Err(e) => return Err(TransportError::io(format!("{}: read", self.describe), e)),
            }
        }
        Ok(())
    }

    /// The same as [`Transport::reset`]: a TCP link has nothing to toggle.
    async fn discard_input(&mut self) -> Result<(), TransportError> {
        self.reset().await
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
