//! Segmentation and reassembly of NCI messages (NCI 1.0 §3.5 "Segmentation and Reassembly",
//! NCI 2.0 §3.5).
//!
//! A message whose payload exceeds the peer's maximum packet payload travels as several packets
//! of the same message type and identity; every packet but the last has the packet boundary flag
//! (PBF) set. The limits come from the controller: "Max Control Packet Payload Size" in
//! CORE_INIT_RSP for control messages, "Max Data Packet Payload Size" in RF_INTF_ACTIVATED_NTF
//! (or CORE_CONN_CREATE_RSP) for data messages — 255 on the PN7150, so a 261-octet R-APDU is two
//! packets.
//!
//! - [`Segmenter`] cuts one whole message into packets, one at a time, into caller buffers.
//! - [`Reassembler`] takes whole packets as they arrive and hands back whole messages.
//!
//! This module does not count credits, does not know which message may follow which and does
//! not decide what a reassembly error means for the session: those belong to the controller
//! state machine. It never allocates: the reassembler's memory is fixed by its type parameters.

use heapless::Vec;

use super::header::MAX_PACKET_LEN;
use super::{Error, Gid, HeaderRepr, MessageType, Packet, PacketId, Result, HEADER_LEN};

/// Cuts one message into NCI packets (NCI 1.0 §3.5, NCI 2.0 §3.5).
///
/// Every packet carries the same message type and identity (GID/OID, or connection identifier
/// and NCI 2.0 credits field); all but the last have PBF set. An empty payload is one empty
/// packet: NCI messages with no payload (e.g. CORE_INIT_CMD under NCI 1.0) still occupy a packet.
///
/// ```
/// use libnci::wire::segment::Segmenter;
///
/// // A 261-octet R-APDU on the static RF connection, PN7150 "Max Data Packet Payload Size" 255.
/// let apdu = [0u8; 261];
/// let mut segmenter = Segmenter::data(0, 0, &apdu, 255)?;
/// let mut packet = [0u8; 258];
/// assert_eq!(segmenter.next_packet(&mut packet), Some(Ok(258)));
/// assert_eq!(&packet[..3], &[0x10, 0x00, 0xFF]);
/// assert_eq!(segmenter.next_packet(&mut packet), Some(Ok(9)));
/// assert_eq!(&packet[..3], &[0x00, 0x00, 0x06]);
/// assert_eq!(segmenter.next_packet(&mut packet), None);
/// # Ok::<(), libnci::wire::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Segmenter<'a> {
    mt: MessageType,
    id: PacketId,
    payload: &'a [u8],
    max_payload: usize,
    offset: usize,
    finished: bool,
}

impl<'a> Segmenter<'a> {
    /// Prepare to segment `payload` as a message of type `mt` and identity `id`, at most
    /// `max_payload` octets per packet.
    ///
    /// Errors: `BadValue` when `max_payload` is 0 (no packet could carry anything; CORE_INIT_RSP
    /// never reports 0 for control packets), when `mt` and `id` disagree
    /// (data type with a control identity or the reverse), when `mt` is not one of the four
    /// defined message types, or when a header field does not fit its bit width.
    pub fn new(
        mt: MessageType,
        id: PacketId,
        payload: &'a [u8],
        max_payload: u8,
    ) -> Result<Segmenter<'a>> {
        if max_payload == 0 {
            return Err(Error::BadValue);
        }
        match (mt, id) {
            (MessageType::Data, PacketId::Data { .. })
            | (
                MessageType::Command | MessageType::Response | MessageType::Notification,
                PacketId::Control { .. },
            ) => {}
            _ => return Err(Error::BadValue),
        }
        // Emitting a probe header checks the GID, OID, connection id and credits widths once,
        // so that `next_packet` cannot fail on them later.
        let probe = HeaderRepr {
            mt,
            pbf: false,
            id,
            payload_len: 0,
        };
        probe.emit(&mut [0u8; HEADER_LEN])?;
        Ok(Segmenter {
            mt,
            id,
            payload,
            max_payload: usize::from(max_payload),
            offset: 0,
            finished: false,
        })
    }

    /// Segment a control message (command, response or notification).
    pub fn control(
        mt: MessageType,
        gid: Gid,
        oid: u8,
        payload: &'a [u8],
        max_payload: u8,
    ) -> Result<Segmenter<'a>> {
        Segmenter::new(mt, PacketId::Control { gid, oid }, payload, max_payload)
    }

    /// Segment a data message on logical connection `conn_id`. `credits` is the NCI 2.0 CR
    /// field (2 bits, NCI 2.0 §3.4), written unchanged into every packet; 0 under NCI 1.0.
    pub fn data(
        conn_id: u8,
        credits: u8,
        payload: &'a [u8],
        max_payload: u8,
    ) -> Result<Segmenter<'a>> {
        Segmenter::new(
            MessageType::Data,
            PacketId::Data { conn_id, credits },
            payload,
            max_payload,
        )
    }

    /// Packets still to come from [`Segmenter::next_packet`].
    pub fn packets_left(&self) -> usize {
        if self.finished {
            return 0;
        }
        let remaining = self.payload.len().saturating_sub(self.offset);
        if remaining == 0 {
            // Only an empty message is in this state before its single packet went out.
            1
        } else {
            remaining.div_ceil(self.max_payload)
        }
    }

    /// Write the next packet into `out` and return its length, or `None` once the whole message
    /// has been produced.
    ///
    /// `Some(Err(BufferTooSmall))` when `out` cannot hold the packet (at most
    /// `3 + max_payload` octets); the segmenter does not advance, so the call can be repeated
    /// with a larger buffer.
    pub fn next_packet(&mut self, out: &mut [u8]) -> Option<Result<usize>> {
        if self.finished {
            return None;
        }
        let remaining = self.payload.get(self.offset..).unwrap_or(&[]);
        let take = remaining.len().min(self.max_payload);
        let last = take == remaining.len();
        let Some(out) = out.get_mut(..HEADER_LEN + take) else {
            return Some(Err(Error::BufferTooSmall));
        };
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let repr = HeaderRepr {
            mt: self.mt,
            pbf: !last,
            id: self.id,
            // `take` is at most `max_payload`, itself a `u8`.
            payload_len: u8::try_from(take).unwrap_or(u8::MAX),
        };
        if let Err(err) = repr.emit(header) {
            return Some(Err(err));
        }
        let Some(chunk) = remaining.get(..take) else {
            return Some(Err(Error::Truncated));
        };
        body.copy_from_slice(chunk);
        self.offset += take;
        self.finished = last;
        Some(Ok(HEADER_LEN + take))
    }
}

impl Iterator for Segmenter<'_> {
    /// One whole packet (header and payload).
    type Item = Vec<u8, MAX_PACKET_LEN>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        // A packet never exceeds MAX_PACKET_LEN and the header was validated by `new`, so the
        // error arm only ends the iteration defensively.
        let len = self.next_packet(&mut buf)?.ok()?;
        Vec::from_slice(buf.get(..len)?).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.packets_left();
        (left, Some(left))
    }
}

impl ExactSizeIterator for Segmenter<'_> {}

/// A whole message handed back by [`Reassembler::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassembled<'a> {
    /// Message type.
    pub mt: MessageType,
    /// Identity. For data messages this is the connection identifier with the CR field of the
    /// last segment; see [`Reassembled::credits_sum`] for all of them.
    pub id: PacketId,
    /// The whole message payload, all segments concatenated.
    pub payload: &'a [u8],
    /// Data messages: the sum of the NCI 2.0 CR fields of all segments, for callers that count
    /// credits per packet rather than per message (0 under NCI 1.0 and for control messages).
    pub credits_sum: u16,
}

/// Why [`Reassembler::push`] refused a packet. Whatever the error, the reassembler stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReassemblyError {
    /// The packet itself is malformed (length field disagrees with the buffer, or the message
    /// type is not one of the four NCI defines). Nothing changed.
    Malformed(Error),
    /// A control packet of another message (different MT, GID or OID) arrived while a
    /// segmented control message was incomplete (NCI 1.0 §3.5: segments of control messages
    /// are not interleaved). The partial message was dropped; the offending packet was *not*
    /// consumed — push it again to have it taken as the start of a fresh message.
    Interleaved,
    /// The message would exceed the reassembly buffer (`N` octets), or no data slot is free for
    /// another connection. The partial message was dropped, this packet consumed, and the
    /// remaining segments of the same message are swallowed silently up to and including its
    /// last one (PBF clear), so that its tail is never mistaken for a message of its own.
    Capacity,
}

impl core::fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReassemblyError::Malformed(err) => write!(f, "malformed packet: {err}"),
            ReassemblyError::Interleaved => {
                f.write_str("segments of different control messages interleaved")
            }
            ReassemblyError::Capacity => f.write_str("message exceeds the reassembly buffer"),
        }
    }
}

impl core::error::Error for ReassemblyError {}

impl From<Error> for ReassemblyError {
    fn from(err: Error) -> Self {
        ReassemblyError::Malformed(err)
    }
}

impl From<ReassemblyError> for Error {
    fn from(err: ReassemblyError) -> Self {
        match err {
            ReassemblyError::Malformed(err) => err,
            ReassemblyError::Interleaved => Error::BadValue,
            ReassemblyError::Capacity => Error::Capacity,
        }
    }
}

/// What makes two control segments part of the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ControlKey {
    mt: MessageType,
    gid: Gid,
    oid: u8,
}

#[derive(Debug)]
struct DataSlot<const N: usize> {
    conn_id: Option<u8>,
    buf: Vec<u8, N>,
    credits_sum: u16,
    delivered: bool,
}

impl<const N: usize> DataSlot<N> {
    const fn new() -> Self {
        DataSlot {
            conn_id: None,
            buf: Vec::new(),
            credits_sum: 0,
            delivered: false,
        }
    }

    fn free(&mut self) {
        self.conn_id = None;
        self.buf.clear();
        self.credits_sum = 0;
        self.delivered = false;
    }
}

/// Reassembles NCI messages from packets (NCI 1.0 §3.5, NCI 2.0 §3.5).
///
/// - Control and data messages are reassembled separately: the NFCC may send a notification
///   between two segments of a data message.
/// - Control segments of different messages may not interleave; see
///   [`ReassemblyError::Interleaved`].
/// - Data segments are collected per logical connection, in up to `C` slots (default 2: the
///   static RF connection and one more).
/// - A message that fits one packet is handed back by [`Reassembler::push`] straight from the
///   caller's buffer, without copying; [`Reassembler::push_copied`] copies it into the slot for
///   its kind instead, for a caller whose packet buffer does not outlive the call. Segmented
///   messages are always copied into their slot.
///
/// **Memory bound.** The reassembler holds at most `N` octets per data slot and `CONTROL`
/// octets (default `N`) for control messages: `size_of` is about `CONTROL + C × N` plus a few
/// dozen octets, fixed at compile time. No data message longer than `N` octets and no control
/// message longer than `CONTROL` octets is ever returned — a hostile 64 KiB chain of PBF
/// segments costs at most that much before it is dropped with [`ReassemblyError::Capacity`].
/// For extended-length APDUs (NCI data up to 65 544 octets) choose `N = 65_544` — and a
/// `CONTROL` of a few KiB, control messages being short — and keep the reassembler in a `Box`
/// or a `static`, not on a small stack.
///
/// Returned messages borrow the reassembler; the buffer they came from is released at the next
/// call to [`Reassembler::push`] or [`Reassembler::push_copied`]. Until then a data message is
/// also available from [`Reassembler::data_message`].
#[derive(Debug)]
pub struct Reassembler<const N: usize, const C: usize = 2, const CONTROL: usize = N> {
    control: Vec<u8, CONTROL>,
    control_key: Option<ControlKey>,
    control_delivered: bool,
    /// A control message dropped for capacity whose remaining segments are being swallowed.
    control_discarding: Option<ControlKey>,
    data: [DataSlot<N>; C],
    /// Connections (bit = connection id) whose current data message was dropped for capacity.
    data_discarding: u16,
}

/// Where the payload of a whole message is held.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// In the packet just pushed, after its header.
    Packet,
    /// In the control buffer.
    Control,
    /// In this data slot.
    Slot(usize),
}

/// A whole message, before its payload is borrowed.
#[derive(Debug, Clone, Copy)]
struct Whole {
    mt: MessageType,
    id: PacketId,
    credits_sum: u16,
    held: Held,
}

impl<const N: usize, const C: usize, const CONTROL: usize> Default for Reassembler<N, C, CONTROL> {
    fn default() -> Self {
        Reassembler::new()
    }
}

impl<const N: usize, const C: usize, const CONTROL: usize> Reassembler<N, C, CONTROL> {
    /// An empty reassembler.
    pub const fn new() -> Self {
        Reassembler {
            control: Vec::new(),
            control_key: None,
            control_delivered: false,
            control_discarding: None,
            data: [const { DataSlot::new() }; C],
            data_discarding: 0,
        }
    }

    /// Largest data message this reassembler returns, in octets.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Largest control message this reassembler returns, in octets.
    pub const fn control_capacity(&self) -> usize {
        CONTROL
    }

    /// Forget every partial message, e.g. after CORE_RESET or when an RF connection closes.
    pub fn reset(&mut self) {
        self.control.clear();
        self.control_key = None;
        self.control_delivered = false;
        self.control_discarding = None;
        for slot in &mut self.data {
            slot.free();
        }
        self.data_discarding = 0;
    }

    /// `true` when no message is partially received (nothing buffered, nothing being dropped).
    pub fn is_idle(&self) -> bool {
        self.control_key.is_none()
            && self.control_discarding.is_none()
            && self.data_discarding == 0
            && self
                .data
                .iter()
                .all(|slot| slot.conn_id.is_none() || slot.delivered)
    }

    /// Take one whole packet. Returns the message once its last segment has arrived,
    /// `Ok(None)` while more segments are expected.
    pub fn push<'a>(
        &'a mut self,
        packet: &'a [u8],
    ) -> core::result::Result<Option<Reassembled<'a>>, ReassemblyError> {
        let whole = self.accept(packet, false)?;
        Ok(whole.map(|whole| self.reassembled(whole, packet)))
    }

    /// Like [`Reassembler::push`], but a message that fits one packet is copied into the
    /// reassembler too, so the message borrows only the reassembler: for a caller that must
    /// keep it after its packet buffer is gone (until the next push).
    pub fn push_copied(
        &mut self,
        packet: &[u8],
    ) -> core::result::Result<Option<Reassembled<'_>>, ReassemblyError> {
        let whole = self.accept(packet, true)?;
        // With copying, no message is left in the packet.
        Ok(whole.map(|whole| self.reassembled(whole, &[])))
    }

    /// The whole data message last returned for connection `conn_id`, while the reassembler
    /// still holds it: a segmented one, or any one taken with [`Reassembler::push_copied`],
    /// until the next push.
    pub fn data_message(&self, conn_id: u8) -> Option<&[u8]> {
        self.data
            .iter()
            .find(|slot| slot.delivered && slot.conn_id == Some(conn_id))
            .map(|slot| slot.buf.as_slice())
    }

    /// `true` while the rest of a data message on `conn_id` that was dropped for
    /// [`ReassemblyError::Capacity`] is being swallowed: the packet that ends it (PBF clear)
    /// is swallowed too and ends this state.
    pub fn is_discarding(&self, conn_id: u8) -> bool {
        conn_id < 16 && self.data_discarding & (1u16 << conn_id) != 0
    }

    fn reassembled<'a>(&'a self, whole: Whole, packet: &'a [u8]) -> Reassembled<'a> {
        let payload = match whole.held {
            Held::Packet => packet.get(HEADER_LEN..).unwrap_or(&[]),
            Held::Control => self.control.as_slice(),
            Held::Slot(index) => self.data.get(index).map_or(&[][..], |s| s.buf.as_slice()),
        };
        Reassembled {
            mt: whole.mt,
            id: whole.id,
            payload,
            credits_sum: whole.credits_sum,
        }
    }

    fn accept(
        &mut self,
        packet: &[u8],
        copy: bool,
    ) -> core::result::Result<Option<Whole>, ReassemblyError> {
        self.release_delivered();
        let view = Packet::new_checked(packet)?;
        let header = HeaderRepr::parse(&view)?;
        let payload = packet.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        match (header.mt, header.id) {
            (MessageType::Unknown(_), _) => Err(Error::UnknownMessage.into()),
            (mt, PacketId::Control { gid, oid }) => {
                self.push_control(ControlKey { mt, gid, oid }, header.pbf, payload, copy)
            }
            (_, PacketId::Data { conn_id, credits }) => {
                self.push_data(conn_id, credits, header.pbf, payload, copy)
            }
        }
    }

    fn release_delivered(&mut self) {
        if self.control_delivered {
            self.control.clear();
            self.control_delivered = false;
        }
        for slot in &mut self.data {
            if slot.delivered {
                slot.free();
            }
        }
    }

    fn push_control(
        &mut self,
        key: ControlKey,
        pbf: bool,
        payload: &[u8],
        copy: bool,
    ) -> core::result::Result<Option<Whole>, ReassemblyError> {
        if let Some(dropped) = self.control_discarding {
            if dropped == key {
                if !pbf {
                    self.control_discarding = None;
                }
                return Ok(None);
            }
            // Another message: the dropped one ended without its last segment.
            self.control_discarding = None;
        }
        let whole = |held| Whole {
            mt: key.mt,
            id: PacketId::Control {
                gid: key.gid,
                oid: key.oid,
            },
            credits_sum: 0,
            held,
        };
        match self.control_key {
            Some(current) if current != key => {
                self.control.clear();
                self.control_key = None;
                Err(ReassemblyError::Interleaved)
            }
            None if !pbf && !copy => {
                if payload.len() > CONTROL {
                    return Err(ReassemblyError::Capacity);
                }
                Ok(Some(whole(Held::Packet)))
            }
            _ => {
                if self.control.extend_from_slice(payload).is_err() {
                    self.control.clear();
                    self.control_key = None;
                    if pbf {
                        self.control_discarding = Some(key);
                    }
                    return Err(ReassemblyError::Capacity);
                }
                if pbf {
                    self.control_key = Some(key);
                    return Ok(None);
                }
                self.control_key = None;
                self.control_delivered = true;
                Ok(Some(whole(Held::Control)))
            }
        }
    }

    fn push_data(
        &mut self,
        conn_id: u8,
        credits: u8,
        pbf: bool,
        payload: &[u8],
        copy: bool,
    ) -> core::result::Result<Option<Whole>, ReassemblyError> {
        // The connection id is a 4-bit header field, so the shift stays inside the u16.
        let bit = 1u16 << (conn_id & 0x0F);
        if self.data_discarding & bit != 0 {
            if !pbf {
                self.data_discarding &= !bit;
            }
            return Ok(None);
        }
        let index = match self.data.iter().position(|s| s.conn_id == Some(conn_id)) {
            Some(index) => index,
            None if !pbf && !copy => {
                if payload.len() > N {
                    return Err(ReassemblyError::Capacity);
                }
                return Ok(Some(Whole {
                    mt: MessageType::Data,
                    id: PacketId::Data { conn_id, credits },
                    credits_sum: u16::from(credits),
                    held: Held::Packet,
                }));
            }
            None => match self.data.iter().position(|s| s.conn_id.is_none()) {
                Some(index) => index,
                None => {
                    // A whole message has no rest to swallow.
                    if pbf {
                        self.data_discarding |= bit;
                    }
                    return Err(ReassemblyError::Capacity);
                }
            },
        };
        let Some(slot) = self.data.get_mut(index) else {
            return Err(ReassemblyError::Capacity);
        };
        if slot.buf.extend_from_slice(payload).is_err() {
            slot.free();
            if pbf {
                self.data_discarding |= bit;
            }
            return Err(ReassemblyError::Capacity);
        }
        slot.conn_id = Some(conn_id);
        slot.credits_sum = slot.credits_sum.saturating_add(u16::from(credits));
        if pbf {
            return Ok(None);
        }
        slot.delivered = true;
        Ok(Some(Whole {
            mt: MessageType::Data,
            id: PacketId::Data { conn_id, credits },
            credits_sum: slot.credits_sum,
            held: Held::Slot(index),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 261-octet R-APDU of the golden vectors: 259 octets of data, then SW1 SW2 = 90 00.
    fn r_apdu() -> [u8; 261] {
        let mut apdu = [0u8; 261];
        for (i, b) in apdu.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        apdu[259] = 0x90;
        apdu[260] = 0x00;
        apdu
    }

    #[test]
    fn r_apdu_of_261_octets_is_two_pn7150_data_packets() {
        let apdu = r_apdu();
        let packets: std::vec::Vec<_> = Segmenter::data(0, 0, &apdu, 255).unwrap().collect();
        assert_eq!(packets.len(), 2);
        // DATA conn 0, PBF=1, 255 octets.
        assert_eq!(&packets[0][..3], &[0x10, 0x00, 0xFF]);
        assert_eq!(&packets[0][3..], &apdu[..255]);
        // DATA conn 0, PBF=0, 6 octets: 4 data octets and 90 00.
        assert_eq!(
            &packets[1][..],
            &[0x00, 0x00, 0x06, apdu[255], apdu[256], apdu[257], apdu[258], 0x90, 0x00]
        );
    }

    #[test]
    fn r_apdu_of_261_octets_reassembles() {
        let apdu = r_apdu();
        let mut first = [0u8; 258];
        first[..3].copy_from_slice(&[0x10, 0x00, 0xFF]);
        first[3..].copy_from_slice(&apdu[..255]);
        let mut last = [0u8; 9];
        last[..3].copy_from_slice(&[0x00, 0x00, 0x06]);
        last[3..].copy_from_slice(&apdu[255..]);

        let mut reassembler = Reassembler::<300>::new();
        assert_eq!(reassembler.push(&first), Ok(None));
        let message = reassembler.push(&last).unwrap().unwrap();
        assert_eq!(message.mt, MessageType::Data);
        assert_eq!(
            message.id,
            PacketId::Data {
                conn_id: 0,
                credits: 0
            }
        );
        assert_eq!(message.payload, &apdu[..]);
        assert!(reassembler.is_idle());
    }

    #[test]
    fn nci2_credits_field_is_kept_on_every_segment() {
        let payload = [0xAB; 5];
        let packets: std::vec::Vec<_> = Segmenter::data(1, 1, &payload, 2).unwrap().collect();
        let headers: std::vec::Vec<_> = packets.iter().map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(
            headers,
            [[0x11, 0x01, 0x02], [0x11, 0x01, 0x02], [0x01, 0x01, 0x01]]
        );
        let mut reassembler = Reassembler::<16>::new();
        assert_eq!(reassembler.push(&packets[0]), Ok(None));
        assert_eq!(reassembler.push(&packets[1]), Ok(None));
        let message = reassembler.push(&packets[2]).unwrap().unwrap();
        assert_eq!(
            message.id,
            PacketId::Data {
                conn_id: 1,
                credits: 1
            }
        );
        assert_eq!(message.credits_sum, 3);
        assert_eq!(message.payload, &payload);
    }

    #[test]
    fn empty_message_is_one_empty_packet() {
        // CORE_INIT_CMD (NCI 1.0): no payload.
        let mut segmenter =
            Segmenter::control(MessageType::Command, Gid::Core, 0x01, &[], 255).unwrap();
        assert_eq!(segmenter.packets_left(), 1);
        let mut out = [0u8; 3];
        assert_eq!(segmenter.next_packet(&mut out), Some(Ok(3)));
        assert_eq!(out, [0x20, 0x01, 0x00]);
        assert_eq!(segmenter.next_packet(&mut out), None);

        let mut reassembler = Reassembler::<0>::new();
        let message = reassembler.push(&out).unwrap().unwrap();
        assert_eq!(message.payload, &[] as &[u8]);
        assert_eq!(
            message.id,
            PacketId::Control {
                gid: Gid::Core,
                oid: 0x01
            }
        );
    }

    #[test]
    fn segmenter_rejects_bad_parameters() {
        assert_eq!(Segmenter::data(0, 0, &[1], 0).err(), Some(Error::BadValue));
        assert_eq!(Segmenter::data(16, 0, &[1], 1).err(), Some(Error::BadValue));
        assert_eq!(
            Segmenter::new(
                MessageType::Data,
                PacketId::Control {
                    gid: Gid::Core,
                    oid: 0
                },
                &[],
                1
            )
            .err(),
            Some(Error::BadValue)
        );
        let mut segmenter = Segmenter::data(0, 0, &[1, 2, 3], 3).unwrap();
        let mut small = [0u8; 5];
        assert_eq!(
            segmenter.next_packet(&mut small),
            Some(Err(Error::BufferTooSmall))
        );
        // Nothing was consumed: a large enough buffer gets the whole packet.
        let mut big = [0u8; 6];
        assert_eq!(segmenter.next_packet(&mut big), Some(Ok(6)));
        assert_eq!(big, [0x00, 0x00, 0x03, 1, 2, 3]);
    }

    #[test]
    fn push_copied_keeps_a_single_packet_message_after_the_packet_is_gone() {
        let mut reassembler = Reassembler::<300, 1, 0>::new();
        {
            // DATA conn 0, 5 octets: SELECT's header.
            let packet = std::vec![0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00];
            let message = reassembler.push_copied(&packet).unwrap().unwrap();
            assert_eq!(message.payload, &packet[3..]);
        }
        assert_eq!(
            reassembler.data_message(0),
            Some(&[0x00, 0xA4, 0x04, 0x00, 0x00][..])
        );
        assert_eq!(reassembler.data_message(1), None);
        // The next packet releases it.
        assert_eq!(reassembler.push_copied(&[0x10, 0x00, 0x01, 0xAA]), Ok(None));
        assert_eq!(reassembler.data_message(0), None);
        let message = reassembler
            .push_copied(&[0x00, 0x00, 0x01, 0xBB])
            .unwrap()
            .unwrap();
        assert_eq!(message.payload, &[0xAA, 0xBB]);
        assert_eq!(reassembler.data_message(0), Some(&[0xAA, 0xBB][..]));
    }

    #[test]
    fn control_capacity_is_separate_from_data_capacity() {
        let mut reassembler = Reassembler::<300, 1, 4>::new();
        assert_eq!(
            (reassembler.capacity(), reassembler.control_capacity()),
            (300, 4)
        );
        // A 5-octet response does not fit the control buffer, copied or not.
        let five = [0x40, 0x01, 0x05, 1, 2, 3, 4, 5];
        assert_eq!(reassembler.push(&five), Err(ReassemblyError::Capacity));
        assert_eq!(
            reassembler.push_copied(&five),
            Err(ReassemblyError::Capacity)
        );
        let four = [0x40, 0x01, 0x04, 1, 2, 3, 4];
        let message = reassembler.push_copied(&four).unwrap().unwrap();
        assert_eq!(message.payload, &[1, 2, 3, 4]);
        // A 255-octet data packet fits its slot.
        let mut data = std::vec![0x00, 0x00, 0xFF];
        data.extend_from_slice(&[0x5A; 255]);
        let message = reassembler.push_copied(&data).unwrap().unwrap();
        assert_eq!(message.payload.len(), 255);
        assert!(core::mem::size_of::<Reassembler<300, 1, 4>>() < 300 + 4 + 64);
    }

    #[test]
    fn a_dropped_data_chain_is_reported_until_its_last_segment() {
        let mut reassembler = Reassembler::<4, 1, 0>::new();
        assert!(!reassembler.is_discarding(0));
        assert_eq!(
            reassembler.push_copied(&[0x10, 0x00, 0x03, 1, 2, 3]),
            Ok(None)
        );
        assert_eq!(
            reassembler.push_copied(&[0x10, 0x00, 0x03, 4, 5, 6]),
            Err(ReassemblyError::Capacity)
        );
        assert!(reassembler.is_discarding(0));
        assert!(!reassembler.is_discarding(1));
        assert_eq!(reassembler.push_copied(&[0x00, 0x00, 0x01, 7]), Ok(None));
        assert!(!reassembler.is_discarding(0));
        assert!(reassembler.is_idle());
        // A whole message too long for the slot is refused, with nothing left to swallow.
        assert_eq!(
            reassembler.push_copied(&[0x00, 0x00, 0x05, 1, 2, 3, 4, 5]),
            Err(ReassemblyError::Capacity)
        );
        assert!(!reassembler.is_discarding(0));
        assert!(!reassembler.is_discarding(200));
    }

    #[test]
    fn push_and_push_copied_return_the_same_messages() {
        let packets: [&[u8]; 7] = [
            &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01], // CORE_RESET_RSP
            &[0x10, 0x00, 0x02, 0xAA, 0xBB],       // DATA, first segment
            &[0x60, 0x06, 0x03, 0x01, 0x00, 0x01], // CORE_CONN_CREDITS_NTF in between
            &[0x00, 0x00, 0x01, 0xCC],             // DATA, last segment
            &[0x00, 0x00, 0x02, 0x90, 0x00],       // DATA, one packet
            &[0x50, 0x01, 0x02, 0x01, 0x02],       // control, first segment
            &[0x40, 0x01, 0x01, 0x03],             // control, last segment
        ];
        let mut borrowed = Reassembler::<16, 1>::new();
        let mut copied = Reassembler::<16, 1>::new();
        for packet in packets {
            let a = borrowed
                .push(packet)
                .map(|m| m.map(|m| (m.mt, m.id, m.payload.to_vec(), m.credits_sum)));
            let b = copied
                .push_copied(packet)
                .map(|m| m.map(|m| (m.mt, m.id, m.payload.to_vec(), m.credits_sum)));
            assert_eq!(a, b, "{packet:02X?}");
        }
    }
}
