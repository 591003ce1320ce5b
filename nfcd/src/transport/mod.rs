//! Transports: move whole NCI packets between the daemon and an NFC controller.
//!
//! Contract: a transport knows the NCI packet framing and nothing else. Every NCI packet is a
//! 3-octet header followed by a payload whose length is octet 2 of the header (NCI 1.0 §3,
//! control and data packet formats), so a packet is at most 3 + 255 = 258 octets. A
//! transport delimits packets by that length octet, delivers them whole and in order, and
//! sends whole packets. It does not look at message types, GIDs/OIDs, connection IDs or
//! credits, does not segment or reassemble (the PBF bit is libnci's business) and never
//! retries at the NCI level. Link-level recovery that the hardware needs (the PN7150 standby
//! wake-up NACK on I²C, VEN power cycling) is done here, because only the transport can.
//!
//! The daemon is generic over [`Transport`]; [`AnyTransport`] picks the concrete transport at
//! run time from a [`TransportSpec`] given on the command line or in the configuration file.

pub(crate) mod framing;
pub mod i2c;
pub mod i2c_sim;
pub mod sim;
pub mod sim_i2c;
pub mod spec;
pub mod tcp;
pub mod uart;

use std::fmt;
use std::future::Future;
use std::io;

pub use i2c::I2cTransport;
pub use sim::SimTransport;
pub use sim_i2c::SimI2cTransport;
pub use spec::{
    GpioLine, GpioLineSpec, I2cSpec, SimI2cSpec, SimProfile, TcpSpec, TransportSpec,
    TransportSpecError, UartSpec,
};
pub use tcp::TcpTransport;
pub use uart::UartTransport;

/// Length of an NCI packet header (NCI 1.0 §3, packet formats).
pub const NCI_HEADER_LEN: usize = 3;

/// Largest NCI payload: the length field is one octet (NCI 1.0 §3, packet formats).
pub const NCI_MAX_PAYLOAD_LEN: usize = 255;

/// Largest NCI packet: header plus the largest payload.
pub const NCI_MAX_PACKET_LEN: usize = NCI_HEADER_LEN + NCI_MAX_PAYLOAD_LEN;

/// One whole NCI packet, header included. Fixed capacity: no allocation per packet.
pub type Packet = heapless::Vec<u8, NCI_MAX_PACKET_LEN>;

/// Moves whole NCI packets to and from one NFC controller.
///
/// The methods return futures that are `Send`, so a transport can live inside a spawned task.
/// Implementations may simply write `async fn`.
pub trait Transport: Send {
    /// Send one whole NCI packet (header + payload).
    ///
    /// The packet must be exactly `3 + packet[2]` octets long, else
    /// [`TransportError::Framing`]. Not cancel-safe: a send dropped half-way may have put part
    /// of the packet on the wire; the caller resets the controller after that.
    fn send(&mut self, packet: &[u8]) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Receive one whole NCI packet.
    ///
    /// Cancel-safe (it is used inside `tokio::select!`): octets of a packet that has only
    /// partly arrived stay buffered inside the transport and are not lost when the future is
    /// dropped.
    fn recv(&mut self) -> impl Future<Output = Result<Packet, TransportError>> + Send;

    /// Hard-reset the controller (VEN toggle on I²C; nothing to toggle elsewhere) and drop all
    /// input buffered so far, so that the next [`recv`](Transport::recv) returns only what the
    /// controller sends after the reset.
    fn reset(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Drop every octet received and not yet returned as a whole packet, without touching the
    /// controller, so that the next [`recv`](Transport::recv) starts on a packet boundary.
    ///
    /// A byte stream (UART, TCP, the in-process pipe) is delimited only by the length octet of
    /// each header: one that lied shifts every header after it, and nothing in the stream
    /// itself ever realigns it. The daemon calls this before the first command of every
    /// re-initialisation of the controller. The default does nothing, which is right where
    /// every packet is read on its own, header first (I²C, UM10936 §3).
    fn discard_input(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Short description for logs and the `Adapter1.Transport` property, e.g.
    /// `uart:/dev/ttyUSB0@115200`.
    fn describe(&self) -> String;
}

/// What went wrong on a transport.
#[derive(Debug)]
pub enum TransportError {
    /// An operating-system call failed.
    Io {
        /// What was being done, e.g. `uart:/dev/ttyUSB0@115200: read`.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The link is gone: end of file, TTY hang-up, TCP connection closed by the peer, or the
    /// transport's worker thread stopped.
    Closed {
        /// Which link, and how it closed.
        context: String,
        /// Octets of an unfinished packet that were buffered and are now dropped.
        partial: usize,
    },
    /// An operation did not complete in time.
    Timeout {
        /// What timed out.
        context: String,
    },
    /// The controller NACKed every try of an I²C write (more than a standby wake-up explains,
    /// PN7150 UM10936 §3.3). The transport reset the controller by VEN if it has a VEN line.
    NackStorm {
        /// How many times the whole write was tried.
        tries: u32,
        /// Whether the controller was power-cycled by VEN afterwards.
        reset: bool,
    },
    /// The IRQ line stays high but the controller has nothing to read (PN7150 UM10936 §3, read
    /// sequence: IRQ high means a packet is waiting). Reported after a bounded number of read tries
    /// instead of spinning on the bus.
    IrqStuck {
        /// How many reads were tried while IRQ was high.
        tries: u32,
    },
    /// A packet handed to [`Transport::send`] is not one whole NCI packet.
    Framing {
        /// Length of the rejected buffer.
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The requested transport is not available in this build or on this system.
    Unsupported(String),
}

impl TransportError {
    /// Shorthand for [`TransportError::Io`].
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        TransportError::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Io { context, source } => write!(f, "{context}: {source}"),
            TransportError::Closed { context, partial } => {
                write!(f, "{context}: link closed")?;
                if *partial > 0 {
                    write!(f, " ({partial} octets of an unfinished packet dropped)")?;
                }
                Ok(())
            }
            TransportError::Timeout { context } => write!(f, "{context}: timed out"),
            TransportError::NackStorm { tries, reset } => {
                write!(f, "i2c: controller NACKed {tries} write tries in a row")?;
                if *reset {
                    write!(f, "; controller reset by VEN")
                } else {
                    write!(f, "; no VEN line to reset it")
                }
            }
            TransportError::IrqStuck { tries } => write!(
                f,
                "i2c: IRQ stays high but the controller has nothing to read ({tries} tries)"
            ),
            TransportError::Framing { len, reason } => {
                write!(f, "not one whole NCI packet ({len} octets): {reason}")
            }
            TransportError::Unsupported(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Check that `packet` is exactly one whole NCI packet: a 3-octet header whose length octet
/// matches the payload that follows (NCI 1.0 §3, packet formats).
pub fn check_packet(packet: &[u8]) -> Result<(), TransportError> {
    let Some(&len) = packet.get(2) else {
        return Err(TransportError::Framing {
            len: packet.len(),
            reason: "shorter than the 3-octet NCI header",
        });
    };
    if packet.len() != NCI_HEADER_LEN + usize::from(len) {
        return Err(TransportError::Framing {
            len: packet.len(),
            reason: "length octet of the header does not match the payload length",
        });
    }
    Ok(())
}

/// Copy a checked packet into a fixed-capacity [`Packet`].
fn packet_from(bytes: &[u8]) -> Result<Packet, TransportError> {
    Packet::from_slice(bytes).map_err(|_| TransportError::Framing {
        len: bytes.len(),
        reason: "longer than the largest NCI packet (258 octets)",
    })
}

/// The concrete transports behind one type, chosen at run time from a [`TransportSpec`].
#[derive(Debug)]
pub enum AnyTransport {
    /// PN7150-style I²C with IRQ and VEN GPIO lines.
    I2c(I2cTransport),
    /// NCI over a serial line or pseudo-terminal.
    Uart(UartTransport),
    /// NCI over TCP.
    Tcp(TcpTransport),
    /// The in-process virtual controller.
    Sim(SimTransport),
    /// The in-process virtual controller behind a simulated I²C slave, on the I²C transport.
    SimI2c(SimI2cTransport),
}

impl AnyTransport {
    /// Open the transport that `spec` names. Must run inside a tokio runtime (the UART, TCP
    /// and sim transports register with it).
    ///
    /// An I²C controller is hard-reset through VEN (when there is a VEN line) as soon as its
    /// transport is open: VEN low holds the PN7150 in hard power-down (UM10936), so whatever
    /// an earlier run left behind — IRQ stuck high, a packet half read, a controller that
    /// NACKs every write — is gone, and reopening the transport after an error is a reset.
    pub async fn open(spec: &TransportSpec) -> Result<Self, TransportError> {
        match spec {
            TransportSpec::I2c(i2c) => {
                let mut transport = I2cTransport::open(i2c)?;
                transport.reset().await?;
                Ok(AnyTransport::I2c(transport))
            }
            TransportSpec::SimI2c(sim) => {
                let mut transport = SimI2cTransport::open(*sim)?;
                transport.reset().await?;
                Ok(AnyTransport::SimI2c(transport))
            }
            TransportSpec::Uart(uart) => Ok(AnyTransport::Uart(UartTransport::open(uart)?)),
            TransportSpec::Tcp(tcp) => Ok(AnyTransport::Tcp(TcpTransport::connect(tcp).await?)),
            TransportSpec::Sim(profile) => Ok(AnyTransport::Sim(SimTransport::open(*profile)?)),
        }
    }

    /// The virtual controller's handle when this is the `sim` transport (the daemon exports
    /// `org.nfcd.Simulator1` with it), else `None`.
    pub fn sim_handle(&self) -> Option<crate::simhost::SimHandle> {
        match self {
            AnyTransport::Sim(t) => Some(t.handle()),
            AnyTransport::SimI2c(t) => Some(t.board().handle()),
            _ => None,
        }
    }

    /// The simulated I²C slave when this is the `sim:…@i2c` transport (its bus faults are
    /// injected through `org.nfcd.Simulator1`), else `None`.
    pub fn i2c_sim(&self) -> Option<i2c_sim::I2cSim> {
        match self {
            AnyTransport::SimI2c(t) => Some(t.board().i2c()),
            _ => None,
        }
    }
}

impl Transport for AnyTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        match self {
            AnyTransport::I2c(t) => t.send(packet).await,
            AnyTransport::Uart(t) => t.send(packet).await,
            AnyTransport::Tcp(t) => t.send(packet).await,
            AnyTransport::Sim(t) => t.send(packet).await,
            AnyTransport::SimI2c(t) => t.send(packet).await,
        }
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        match self {
            AnyTransport::I2c(t) => t.recv().await,
            AnyTransport::Uart(t) => t.recv().await,
            AnyTransport::Tcp(t) => t.recv().await,
            AnyTransport::Sim(t) => t.recv().await,
            AnyTransport::SimI2c(t) => t.recv().await,
        }
    }

    async fn reset(&mut self) -> Result<(), TransportError> {
        match self {
            AnyTransport::I2c(t) => t.reset().await,
            AnyTransport::Uart(t) => t.reset().await,
            AnyTransport::Tcp(t) => t.reset().await,
            AnyTransport::Sim(t) => t.reset().await,
            AnyTransport::SimI2c(t) => t.reset().await,
        }
    }

    async fn discard_input(&mut self) -> Result<(), TransportError> {
        match self {
            AnyTransport::I2c(t) => t.discard_input().await,
            AnyTransport::Uart(t) => t.discard_input().await,
            AnyTransport::Tcp(t) => t.discard_input().await,
            AnyTransport::Sim(t) => t.discard_input().await,
            AnyTransport::SimI2c(t) => t.discard_input().await,
        }
    }

    fn describe(&self) -> String {
        match self {
            AnyTransport::I2c(t) => t.describe(),
            AnyTransport::Uart(t) => t.describe(),
            AnyTransport::Tcp(t) => t.describe(),
            AnyTransport::Sim(t) => t.describe(),
            AnyTransport::SimI2c(t) => t.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_packet_accepts_whole_packets() {
        // CORE_RESET_CMD, reset configuration (NCI 1.0 §4.1)
        assert!(check_packet(&[0x20, 0x00, 0x01, 0x01]).is_ok());
        // CORE_INIT_CMD, empty payload
        assert!(check_packet(&[0x20, 0x01, 0x00]).is_ok());
        let mut largest = vec![0x00, 0x00, 0xFF];
        largest.resize(NCI_MAX_PACKET_LEN, 0xAB);
        assert!(check_packet(&largest).is_ok());
    }

    #[test]
    fn check_packet_rejects_broken_framing() {
        assert!(matches!(
            check_packet(&[0x20, 0x00]),
            Err(TransportError::Framing { len: 2, .. })
        ));
        // length octet says 1, two payload octets follow
        assert!(matches!(
            check_packet(&[0x20, 0x00, 0x01, 0x01, 0x00]),
            Err(TransportError::Framing { len: 5, .. })
        ));
        // length octet says 2, one payload octet follows
        assert!(matches!(
            check_packet(&[0x20, 0x00, 0x02, 0x01]),
            Err(TransportError::Framing { len: 4, .. })
        ));
    }

    #[test]
    fn errors_display_what_happened() {
        let e = TransportError::Closed {
            context: "tcp:127.0.0.1:4000".into(),
            partial: 2,
        };
        assert_eq!(
            e.to_string(),
            "tcp:127.0.0.1:4000: link closed (2 octets of an unfinished packet dropped)"
        );
        let e = TransportError::NackStorm {
            tries: 5,
            reset: true,
        };
        assert_eq!(
            e.to_string(),
            "i2c: controller NACKed 5 write tries in a row; controller reset by VEN"
        );
    }
}
