//! The in-process virtual controller as a transport (`--transport sim`, `sim:pn7150`,
//! `sim:nci2`).
//!
//! Contract: a [`SimHost`] serves libnci's virtual controller on one end of an in-process pipe
//! (`tokio::io::duplex`); this transport holds the other end and frames it exactly like the
//! UART and TCP transports, by the length octet of each 3-octet header (NCI 1.0 §3, packet
//! formats), with the same receive buffer. [`Transport::reset`] power-cycles the virtual
//! controller, which a UART or TCP link cannot do. [`SimTransport::handle`] gives the daemon
//! the [`SimHandle`] it exports as `org.nfcd.Simulator1`. Nothing here knows NCI messages.

use std::io;

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::framing::RxBuffer;
use super::spec::{SimProfile, TransportSpec};
use super::{check_packet, Packet, Transport, TransportError};
use crate::simhost::{
    Consumed, Profile, SimError, SimHandle, SimHost, SimOptions, DUPLEX_CAPACITY,
};

/// Reads of stale output after a power cycle, at most: the pipe holds [`DUPLEX_CAPACITY`]
/// octets, so this always empties it.
const DRAIN_READS: usize = DUPLEX_CAPACITY / 512 + 1;

impl From<SimProfile> for Profile {
    fn from(profile: SimProfile) -> Profile {
        match profile {
            SimProfile::Pn7150 => Profile::Pn7150,
            SimProfile::Nci2 => Profile::Nci2,
        }
    }
}

/// The daemon's end of the pipe to an in-process virtual controller.
pub struct SimTransport {
    stream: DuplexStream,
    rx: RxBuffer,
    handle: SimHandle,
    task: JoinHandle<Result<(), SimError>>,
    describe: String,
    /// Octets written to the controller so far, to know when it has read them all.
    written: u64,
    /// Octets the controller has read so far.
    consumed: Consumed,
}

impl std::fmt::Debug for SimTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTransport")
            .field("describe", &self.describe)
            .field("buffered", &self.rx.pending())
            .finish()
    }
}

impl SimTransport {
    /// Start a virtual controller of `profile` with default timing and connect to it. Must
    /// run inside a tokio runtime.
    pub fn open(profile: SimProfile) -> Result<Self, TransportError> {
        let host = SimHost::new(profile.into(), SimOptions::default());
        Self::with_host(&host, TransportSpec::Sim(profile).to_string())
    }

    /// Connect to `host` (e.g. one made with other [`SimOptions`]), which must not serve any
    /// other stream meanwhile. `describe` is what [`Transport::describe`] will return. Must run inside a
    /// tokio runtime.
    pub fn with_host(host: &SimHost, describe: String) -> Result<Self, TransportError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::Unsupported(format!(
                "{describe}: must be opened inside a tokio runtime"
            )));
        }
        let (stream, task, consumed) = host.serve_duplex_counted();
        Ok(SimTransport {
            stream,
            rx: RxBuffer::new(),
            handle: host.handle(),
            task,
            describe,
            written: 0,
            consumed,
        })
    }

    /// The handle that drives the virtual controller's RF side (taps, field, faults).
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    fn closed(&self, how: &str) -> TransportError {
        TransportError::Closed {
            context: format!("{}: {how}", self.describe),
            partial: self.rx.pending(),
        }
    }

    fn io_error(&self, doing: &str, e: io::Error) -> TransportError {
        TransportError::io(format!("{}: {doing}", self.describe), e)
    }

    /// Drop whatever the controller already put in the pipe, without waiting for more.
    fn drain(&mut self) -> Result<(), TransportError> {
        let mut scratch = [0u8; 512];
        for _ in 0..DRAIN_READS {
            match self.stream.read(&mut scratch).now_or_never() {
                Some(Ok(0)) => return Err(self.closed("virtual controller stopped")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(self.io_error("read", e)),
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

impl Drop for SimTransport {
    fn drop(&mut self) {
        // The serving task would also end when it sees our end close; do not leave it to that.
        self.task.abort();
    }
}

impl Transport for SimTransport {
    async fn send(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet(packet)?;
        match self.stream.write_all(packet).await {
            Ok(()) => {
                self.written += packet.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                Err(self.closed("virtual controller stopped"))
            }
            Err(e) => Err(self.io_error("write", e)),
        }
    }

    async fn recv(&mut self) -> Result<Packet, TransportError> {
        loop {
            if let Some(packet) = self.rx.take_packet()? {
                return Ok(packet);
            }
            // `DuplexStream::read` is cancel-safe: if the future is dropped, no data was read.
            match self.stream.read(self.rx.spare_mut()).await {
                Ok(0) => return Err(self.closed("virtual controller stopped")),
                Ok(n) => self.rx.commit(n),
                Err(e) => return Err(self.io_error("read", e)),
            }
        }
    }

    /// Power-cycle the virtual controller and drop everything it sent before.
    ///
    /// Packets sent before the reset reach the old controller first (it may answer them; the
    /// answers are dropped), so nothing written before the reset is seen by the new one.
    async fn reset(&mut self) -> Result<(), TransportError> {
        let handle = self.handle.clone();
        let written = self.written;
        let consumed = self.consumed.clone();
        // Wait until the controller has read everything sent so far, then take the write
        // gate, reading (and dropping) meanwhile: the controller may be in the middle of
        // writing into a full pipe, and only reading lets it go on.
        let gate = {
            let acquire = async {
                handle.wait_consumed(&consumed, written).await;
                handle.lock_writes().await
            };
            tokio::pin!(acquire);
            let mut scratch = [0u8; 512];
            loop {
                tokio::select! {
                    gate = &mut acquire => break gate,
                    read = self.stream.read(&mut scratch) => match read {
                        Ok(0) => return Err(self.closed("virtual controller stopped")),
                        Ok(_) => {}
                        Err(e) => return Err(self.io_error("read", e)),
                    },
                }
            }
        };
        // Nothing more is written while the gate is held: what is in the pipe now is all
        // from the controller being switched off.
        self.drain()?;
        handle.power_cycle_locked(&gate);
        drop(gate);
        self.rx.clear();
        Ok(())
    }

    /// Drop what the pipe and the receive buffer hold; the virtual controller runs on.
    async fn discard_input(&mut self) -> Result<(), TransportError> {
        self.drain()?;
        self.rx.clear();
        Ok(())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
