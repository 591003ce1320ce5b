//! Receive buffer that cuts a byte stream (UART, TCP) into NCI packets.
//!
//! Contract: bytes go in as they arrive, whole packets come out, delimited only by the length
//! octet of each 3-octet header (NCI 1.0 §3, packet formats). Bytes of an unfinished packet stay here
//! between calls, which is what makes the stream transports' `recv` cancel-safe: the reader
//! copies into [`RxBuffer::spare_mut`] synchronously and commits at once, so no received byte
//! ever lives only inside a dropped future.

use super::{packet_from, Packet, TransportError, NCI_HEADER_LEN, NCI_MAX_PACKET_LEN};

/// Room for several packets so one `read` can pick up a burst (a response plus
/// notifications) in a single system call. Must be at least one largest packet, so that a
/// full buffer always holds a complete packet and reading can always make progress.
const RX_CAPACITY: usize = 4 * NCI_MAX_PACKET_LEN;

/// Bytes received from a stream and not yet handed out as packets.
pub(crate) struct RxBuffer {
    buf: [u8; RX_CAPACITY],
    len: usize,
}

impl RxBuffer {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        RxBuffer {
            buf: [0; RX_CAPACITY],
            len: 0,
        }
    }

    /// Take the first whole packet, if one has fully arrived.
    pub(crate) fn take_packet(&mut self) -> Result<Option<Packet>, TransportError> {
        let Some(&payload_len) = self.buf.get(2).filter(|_| self.len >= NCI_HEADER_LEN) else {
            return Ok(None);
        };
        let total = NCI_HEADER_LEN + usize::from(payload_len);
        if self.len < total {
            return Ok(None);
        }
        let packet = packet_from(&self.buf[..total])?;
        self.buf.copy_within(total..self.len, 0);
        self.len -= total;
        Ok(Some(packet))
    }

    /// Free space to read into. Never empty while [`take_packet`](Self::take_packet) returns
    /// `None`, because the capacity exceeds the largest packet.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Record that `n` bytes were written into [`spare_mut`](Self::spare_mut).
    pub(crate) fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(RX_CAPACITY);
    }

    /// Number of buffered bytes (of packets not yet complete, once drained).
    pub(crate) fn pending(&self) -> usize {
        self.len
    }

    /// Drop everything buffered.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(rx: &mut RxBuffer, bytes: &[u8]) {
        rx.spare_mut()[..bytes.len()].copy_from_slice(bytes);
        rx.commit(bytes.len());
    }

    #[test]
    fn header_split_across_reads() {
        let mut rx = RxBuffer::new();
        // CORE_RESET_RSP (NCI 1.0 §4.1): 40 00 03 | 00 11 01
        feed(&mut rx, &[0x40, 0x00]);
        assert_eq!(rx.take_packet().ok().flatten(), None);
        feed(&mut rx, &[0x03, 0x00]);
        assert_eq!(rx.take_packet().ok().flatten(), None);
        feed(&mut rx, &[0x11, 0x01]);
        let p = rx.take_packet().ok().flatten();
        assert_eq!(
            p.as_deref(),
            Some(&[0x40, 0x00, 0x03, 0x00, 0x11, 0x01][..])
        );
        assert_eq!(rx.pending(), 0);
    }

    #[test]
    fn several_packets_in_one_read() {
        let mut rx = RxBuffer::new();
        feed(
            &mut rx,
            &[
                0x40, 0x01, 0x00, // empty payload
                0x60, 0x06, 0x03, 0x01, 0x00, 0x01, // CORE_CONN_CREDITS_NTF
                0x00, 0x00, // first 2 octets of a data packet header
            ],
        );
        assert_eq!(
            rx.take_packet().ok().flatten().as_deref(),
            Some(&[0x40, 0x01, 0x00][..])
        );
        assert_eq!(
            rx.take_packet().ok().flatten().as_deref(),
            Some(&[0x60, 0x06, 0x03, 0x01, 0x00, 0x01][..])
        );
        assert_eq!(rx.take_packet().ok().flatten(), None);
        assert_eq!(rx.pending(), 2);
        rx.clear();
        assert_eq!(rx.pending(), 0);
    }

    #[test]
    fn largest_packet_fits() {
        let mut rx = RxBuffer::new();
        let mut p = vec![0x00, 0x00, 0xFF];
        p.resize(NCI_MAX_PACKET_LEN, 0x5A);
        feed(&mut rx, &p);
        assert_eq!(rx.take_packet().ok().flatten().as_deref(), Some(&p[..]));
    }
}
