//! The NCI packet header (NCI 1.0 §3.4 "Packet Formats", NCI 2.0 §3.4).
//!
//! ```text
//!            7   6   5   4   3   2   1   0
//! octet 0   [   MT    ][PBF][  GID / Conn ID ]
//! octet 1   [RFU][    OID (control)         ]    control packets
//!           [        RFU        ][   CR     ]    data packets (CR: NCI 2.0 credits)
//! octet 2   [        payload length         ]
//! ```
//!
//! A packet is the header and at most 255 payload octets. A message longer than the controller's
//! maximum payload is sent as several packets, all but the last with PBF set (segmentation).
//! This module reads and writes single packets only; see the reassembly module for whole messages.

use super::{Error, Result};

/// Length of the packet header.
pub const HEADER_LEN: usize = 3;
/// Largest payload a packet can carry (the length field is one octet).
pub const MAX_PAYLOAD_LEN: usize = 255;
/// Largest packet.
pub const MAX_PACKET_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

open_enum! {
    /// Message type, octet 0 bits 7–5 (NCI 1.0 Table 2).
    pub enum MessageType(u8) {
        /// Data packet.
        Data = 0b000 => "DATA",
        /// Control packet, command (DH → NFCC).
        Command = 0b001 => "CMD",
        /// Control packet, response (NFCC → DH).
        Response = 0b010 => "RSP",
        /// Control packet, notification (NFCC → DH).
        Notification = 0b011 => "NTF",
    }
}

open_enum! {
    /// Group identifier of control packets (NCI 1.0 Table 102, NCI 2.0 Table 149).
    pub enum Gid(u8) {
        /// NCI core.
        Core = 0x0 => "CORE",
        /// RF management.
        Rf = 0x1 => "RF",
        /// NFCEE management.
        Nfcee = 0x2 => "NFCEE",
        /// NCI 2.0: NFCC management (e.g. CORE_SET_POWER_SUB_STATE lives in CORE; this group is reserved for it).
        NfccManagement = 0x3 => "NFCC_MGMT",
        /// Proprietary (NXP on the PN7150).
        Proprietary = 0xF => "PROP",
    }
}

/// What a packet belongs to: a control message (group and opcode) or a logical connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketId {
    /// Control packet (command, response or notification).
    Control {
        /// Group identifier (4 bits).
        gid: Gid,
        /// Opcode identifier (6 bits).
        oid: u8,
    },
    /// Data packet on a logical connection.
    Data {
        /// Connection identifier (4 bits); 0 is the static RF connection.
        conn_id: u8,
        /// NCI 2.0 credits field (2 bits); 0 under NCI 1.0.
        credits: u8,
    },
}

/// A read/write view of one NCI packet in a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it. Accessors may panic until [`Packet::check_len`] passes;
    /// prefer [`Packet::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer holding exactly one packet: the header plus as many payload octets as the
    /// length field says, no more, no fewer.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensure no accessor will panic: the buffer holds a header and exactly the announced payload.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let want = HEADER_LEN + usize::from(self.payload_len());
        match len.cmp(&want) {
            core::cmp::Ordering::Less => Err(Error::Truncated),
            core::cmp::Ordering::Greater => Err(Error::TrailingBytes),
            core::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn octet(&self, i: usize) -> u8 {
        self.buffer.as_ref()[i]
    }

    /// Message type (MT).
    pub fn message_type(&self) -> MessageType {
        MessageType::from(self.octet(0) >> 5)
    }

    /// Packet boundary flag: `true` when more segments of this message follow.
    pub fn pbf(&self) -> bool {
        self.octet(0) & 0x10 != 0
    }

    /// GID of a control packet, or connection identifier of a data packet (octet 0 bits 3–0).
    pub fn gid_or_conn_id(&self) -> u8 {
        self.octet(0) & 0x0F
    }

    /// OID of a control packet (octet 1 bits 5–0).
    pub fn oid(&self) -> u8 {
        self.octet(1) & 0x3F
    }

    /// NCI 2.0 credits field of a data packet (octet 1 bits 1–0).
    pub fn credits(&self) -> u8 {
        self.octet(1) & 0x03
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u8 {
        self.octet(2)
    }

    /// Control or data identity.
    pub fn id(&self) -> PacketId {
        if self.message_type() == MessageType::Data {
            PacketId::Data {
                conn_id: self.gid_or_conn_id(),
                credits: self.credits(),
            }
        } else {
            PacketId::Control {
                gid: Gid::from(self.gid_or_conn_id()),
                oid: self.oid(),
            }
        }
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A validated packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderRepr {
    /// Message type. `Unknown` types (MT 100–111) parse but cannot be given a layout.
    pub mt: MessageType,
    /// Packet boundary flag (segment follows).
    pub pbf: bool,
    /// Control or data identity.
    pub id: PacketId,
    /// Payload length.
    pub payload_len: u8,
}

impl HeaderRepr {
    /// Read the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<HeaderRepr> {
        packet.check_len()?;
        Ok(HeaderRepr {
            mt: packet.message_type(),
            pbf: packet.pbf(),
            id: packet.id(),
            payload_len: packet.payload_len(),
        })
    }

    /// Read just the three header octets (e.g. before the payload has arrived).
    pub fn parse_prefix(bytes: &[u8]) -> Result<HeaderRepr> {
        let header = bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        let packet = Packet::new_unchecked(header);
        Ok(HeaderRepr {
            mt: packet.message_type(),
            pbf: packet.pbf(),
            id: packet.id(),
            payload_len: packet.payload_len(),
        })
    }

    /// A control packet header.
    pub fn control(mt: MessageType, gid: Gid, oid: u8, payload_len: u8) -> HeaderRepr {
        HeaderRepr {
            mt,
            pbf: false,
            id: PacketId::Control { gid, oid },
            payload_len,
        }
    }

    /// A data packet header.
    pub fn data(conn_id: u8, credits: u8, payload_len: u8) -> HeaderRepr {
        HeaderRepr {
            mt: MessageType::Data,
            pbf: false,
            id: PacketId::Data { conn_id, credits },
            payload_len,
        }
    }

    /// Whole packet length this header announces.
    pub fn packet_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len)
    }

    /// Write the three header octets. Fields wider than their bit width are rejected.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let out = out.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let mt = u8::from(self.mt);
        if mt > 0b111 {
            return Err(Error::BadValue);
        }
        let (low, octet1) = match self.id {
            PacketId::Control { gid, oid } => (u8::from(gid), oid),
            PacketId::Data { conn_id, credits } => (conn_id, credits),
        };
        let octet1_max = match self.id {
            PacketId::Control { .. } => 0x3F,
            PacketId::Data { .. } => 0x03,
        };
        if low > 0x0F || octet1 > octet1_max {
            return Err(Error::BadValue);
        }
        out[0] = (mt << 5) | (u8::from(self.pbf) << 4) | low;
        out[1] = octet1;
        out[2] = self.payload_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // CORE_RESET_CMD, reset configuration (PN7150 start-up).
    const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
    // A data packet on the static RF connection, more segments follow.
    const DATA_SEGMENT: [u8; 5] = [0x10, 0x00, 0x02, 0x90, 0x00];

    #[test]
    fn parse_control_header() {
        let packet = Packet::new_checked(&CORE_RESET_CMD[..]).unwrap();
        let repr = HeaderRepr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            HeaderRepr::control(MessageType::Command, Gid::Core, 0x00, 1)
        );
        assert_eq!(packet.payload(), &[0x01]);
    }

    #[test]
    fn parse_data_header_with_pbf() {
        let packet = Packet::new_checked(&DATA_SEGMENT[..]).unwrap();
        let repr = HeaderRepr::parse(&packet).unwrap();
        assert!(repr.pbf);
        assert_eq!(
            repr.id,
            PacketId::Data {
                conn_id: 0,
                credits: 0
            }
        );
        assert_eq!(packet.payload(), &[0x90, 0x00]);
    }

    #[test]
    fn emit_round_trips() {
        let mut out = [0u8; 3];
        let mut repr = HeaderRepr::data(0, 0, 2);
        repr.pbf = true;
        repr.emit(&mut out).unwrap();
        assert_eq!(out, DATA_SEGMENT[..3]);
        HeaderRepr::control(MessageType::Command, Gid::Core, 0, 1)
            .emit(&mut out)
            .unwrap();
        assert_eq!(out, CORE_RESET_CMD[..3]);
        // NCI 2.0 credits field in a data header.
        HeaderRepr::data(0, 1, 0).emit(&mut out).unwrap();
        assert_eq!(out, [0x00, 0x01, 0x00]);
    }

    #[test]
    fn length_mismatches_are_errors() {
        assert_eq!(
            Packet::new_checked(&[0x20, 0x00][..]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&[0x20, 0x00, 0x02, 0x01][..]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&[0x20, 0x00, 0x00, 0x01][..]).err(),
            Some(Error::TrailingBytes)
        );
    }

    #[test]
    fn emit_rejects_out_of_range_fields() {
        let mut out = [0u8; 3];
        let bad_oid = HeaderRepr::control(MessageType::Command, Gid::Core, 0x40, 0);
        assert_eq!(bad_oid.emit(&mut out), Err(Error::BadValue));
        let bad_conn = HeaderRepr::data(0x10, 0, 0);
        assert_eq!(bad_conn.emit(&mut out), Err(Error::BadValue));
        assert_eq!(
            HeaderRepr::data(0, 0, 0).emit(&mut out[..2]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn any_bytes_parse_without_panic() {
        let mut buf = [0u8; 8];
        for a in 0..=255u8 {
            buf[0] = a;
            buf[1] = a.rotate_left(3);
            buf[2] = a % 6;
            for len in 0..buf.len() {
                if let Ok(p) = Packet::new_checked(&buf[..len]) {
                    let _ = HeaderRepr::parse(&p);
                    let _ = p.payload();
                }
            }
        }
    }
}
