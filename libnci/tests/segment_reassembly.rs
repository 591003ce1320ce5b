//! Reassembly of segmented NCI messages (NCI 1.0 §3.5), as byte transcripts.

use libnci::wire::segment::{Reassembler, ReassemblyError, Segmenter};
use libnci::wire::{Error, Gid, MessageType, PacketId};

/// One packet: the three header octets then the payload.
fn packet(header: [u8; 3], payload: &[u8]) -> Vec<u8> {
    assert_eq!(usize::from(header[2]), payload.len());
    let mut p = header.to_vec();
    p.extend_from_slice(payload);
    p
}

#[test]
fn notification_between_two_data_segments() {
    let mut r = Reassembler::<512>::new();
    // DATA conn 0, PBF=1: first half of an R-APDU.
    assert_eq!(
        r.push(&packet([0x10, 0x00, 0x03], &[0x6F, 0x10, 0x84])),
        Ok(None)
    );
    // CORE_CONN_CREDITS_NTF: 1 entry, conn 0, 1 credit — arrives between the two segments.
    let ntf = r
        .push(&[0x60, 0x06, 0x03, 0x01, 0x00, 0x01])
        .unwrap()
        .unwrap();
    assert_eq!(ntf.mt, MessageType::Notification);
    assert_eq!(
        ntf.id,
        PacketId::Control {
            gid: Gid::Core,
            oid: 0x06
        }
    );
    assert_eq!(ntf.payload, &[0x01, 0x00, 0x01]);
    // DATA conn 0, PBF=0: the rest, ending in 90 00.
    let last = packet([0x00, 0x00, 0x03], &[0x0E, 0x90, 0x00]);
    let data = r.push(&last).unwrap().unwrap();
    assert_eq!(data.mt, MessageType::Data);
    assert_eq!(data.payload, &[0x6F, 0x10, 0x84, 0x0E, 0x90, 0x00]);
    assert!(r.is_idle());
}

#[test]
fn interleaved_control_segments_are_an_error_and_the_new_message_survives() {
    let mut r = Reassembler::<512>::new();
    // CORE_GET_CONFIG_RSP, PBF=1: STATUS_OK, 1 parameter, TOTAL_DURATION, 2 octets…
    let rsp_first = packet([0x50, 0x03, 0x04], &[0x00, 0x01, 0x00, 0x02]);
    assert_eq!(r.push(&rsp_first), Ok(None));
    // RF_FIELD_INFO_NTF (field on) before the response's last segment: forbidden.
    let field_ntf = [0x61, 0x07, 0x01, 0x01];
    assert_eq!(r.push(&field_ntf), Err(ReassemblyError::Interleaved));
    // The partial response is gone; the notification was not consumed and goes through when
    // pushed again.
    let ntf = r.push(&field_ntf).unwrap().unwrap();
    assert_eq!(
        ntf.id,
        PacketId::Control {
            gid: Gid::Rf,
            oid: 0x07
        }
    );
    assert_eq!(ntf.payload, &[0x01]);
    assert!(r.is_idle());
}

#[test]
fn same_gid_oid_with_another_message_type_is_another_message() {
    let mut r = Reassembler::<512>::new();
    // RF_DISCOVER_NTF segment (PBF=1), then an RF_DISCOVER_RSP: MT differs.
    assert_eq!(r.push(&[0x71, 0x03, 0x01, 0x01]), Ok(None));
    assert_eq!(
        r.push(&[0x41, 0x03, 0x01, 0x00]),
        Err(ReassemblyError::Interleaved)
    );
}

#[test]
fn overflow_drops_the_message_and_swallows_its_tail() {
    let mut r = Reassembler::<300>::new();
    let chunk = [0x55u8; 255];
    // Two PBF segments of 255 octets: the second does not fit 300 octets.
    assert_eq!(r.push(&packet([0x10, 0x00, 0xFF], &chunk)), Ok(None));
    assert_eq!(
        r.push(&packet([0x10, 0x00, 0xFF], &chunk)),
        Err(ReassemblyError::Capacity)
    );
    // The rest of the oversized message, including its last segment, is swallowed…
    assert_eq!(r.push(&packet([0x10, 0x00, 0xFF], &chunk)), Ok(None));
    assert_eq!(r.push(&packet([0x00, 0x00, 0x02], &[0x90, 0x00])), Ok(None));
    assert!(r.is_idle());
    // …and the next message on the connection is whole again.
    let next_packet = packet([0x00, 0x00, 0x02], &[0x6A, 0x82]);
    let next = r.push(&next_packet).unwrap().unwrap();
    assert_eq!(next.payload, &[0x6A, 0x82]);
}

#[test]
fn control_overflow_on_the_last_segment_leaves_nothing_to_swallow() {
    let mut r = Reassembler::<4>::new();
    assert_eq!(r.push(&[0x50, 0x03, 0x03, 0x00, 0x01, 0x00]), Ok(None));
    assert_eq!(
        r.push(&[0x40, 0x03, 0x02, 0x02, 0x01]),
        Err(ReassemblyError::Capacity)
    );
    assert!(r.is_idle());
    // CORE_GET_CONFIG_RSP that fits.
    let rsp = r.push(&[0x40, 0x03, 0x01, 0x00]).unwrap().unwrap();
    assert_eq!(rsp.payload, &[0x00]);
}

#[test]
fn a_hostile_64_kib_chain_stays_bounded() {
    let mut r = Reassembler::<1024>::new();
    let chunk = [0xEEu8; 255];
    let segment = packet([0x10, 0x00, 0xFF], &chunk);
    let mut refused = 0;
    // 257 PBF segments ≈ 64 KiB that never end.
    for _ in 0..257 {
        match r.push(&segment) {
            Ok(None) => {}
            Err(ReassemblyError::Capacity) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Reported once, at the first octet past 1024.
    assert_eq!(refused, 1);
    // The memory is the type's, whatever the chain length: (1 + 2 slots) × 1024 plus bookkeeping.
    assert!(core::mem::size_of::<Reassembler<1024>>() < 3 * 1024 + 256);
    // The chain ends; a notification and a fresh data message go through untouched.
    assert_eq!(r.push(&packet([0x00, 0x00, 0x01], &[0x00])), Ok(None));
    let ntf = r.push(&[0x61, 0x07, 0x01, 0x00]).unwrap().unwrap();
    assert_eq!(ntf.payload, &[0x00]);
    let fresh = packet([0x00, 0x00, 0x02], &[0x90, 0x00]);
    let data = r.push(&fresh).unwrap().unwrap();
    assert_eq!(data.payload, &[0x90, 0x00]);
}

#[test]
fn data_segments_are_collected_per_connection() {
    let mut r = Reassembler::<64>::new();
    // Conn 0 and conn 1 (e.g. an NFCEE connection) interleave segment by segment.
    assert_eq!(r.push(&[0x10, 0x00, 0x01, 0xA0]), Ok(None));
    assert_eq!(r.push(&[0x11, 0x00, 0x01, 0xB0]), Ok(None));
    assert_eq!(r.push(&[0x10, 0x00, 0x01, 0xA1]), Ok(None));
    let one = r.push(&[0x01, 0x00, 0x01, 0xB1]).unwrap().unwrap();
    assert_eq!(
        one.id,
        PacketId::Data {
            conn_id: 1,
            credits: 0
        }
    );
    assert_eq!(one.payload, &[0xB0, 0xB1]);
    let zero = r.push(&[0x00, 0x00, 0x01, 0xA2]).unwrap().unwrap();
    assert_eq!(zero.payload, &[0xA0, 0xA1, 0xA2]);
}

#[test]
fn no_free_data_slot_drops_only_the_newcomer() {
    let mut r = Reassembler::<64, 1>::new();
    assert_eq!(r.push(&[0x10, 0x00, 0x01, 0xA0]), Ok(None));
    // Conn 2 starts a segmented message, but the only slot is busy with conn 0.
    assert_eq!(
        r.push(&[0x12, 0x00, 0x01, 0xC0]),
        Err(ReassemblyError::Capacity)
    );
    // Conn 2's last segment belongs to the dropped message and is swallowed.
    assert_eq!(r.push(&[0x02, 0x00, 0x01, 0xC1]), Ok(None));
    // A single-packet message on conn 2 needs no slot.
    let single = r.push(&[0x02, 0x00, 0x01, 0xC2]).unwrap().unwrap();
    assert_eq!(single.payload, &[0xC2]);
    let zero = r.push(&[0x00, 0x00, 0x01, 0xA1]).unwrap().unwrap();
    assert_eq!(zero.payload, &[0xA0, 0xA1]);
}

#[test]
fn malformed_packets_change_nothing() {
    let mut r = Reassembler::<64>::new();
    assert_eq!(r.push(&[0x10, 0x00, 0x01, 0xA0]), Ok(None));
    // Length field says 2, one octet present.
    assert_eq!(
        r.push(&[0x00, 0x00, 0x02, 0xA1]),
        Err(ReassemblyError::Malformed(Error::Truncated))
    );
    // MT 100b is not defined.
    assert_eq!(
        r.push(&[0x80, 0x00, 0x00]),
        Err(ReassemblyError::Malformed(Error::UnknownMessage))
    );
    let data = r.push(&[0x00, 0x00, 0x01, 0xA1]).unwrap().unwrap();
    assert_eq!(data.payload, &[0xA0, 0xA1]);
}

#[test]
fn reset_forgets_partial_messages() {
    let mut r = Reassembler::<64>::new();
    assert_eq!(r.push(&[0x10, 0x00, 0x01, 0xA0]), Ok(None));
    assert_eq!(r.push(&[0x50, 0x03, 0x01, 0x00]), Ok(None));
    assert!(!r.is_idle());
    r.reset();
    assert!(r.is_idle());
    let data = r.push(&[0x00, 0x00, 0x01, 0xA1]).unwrap().unwrap();
    assert_eq!(data.payload, &[0xA1]);
}

#[test]
fn extended_length_apdu_of_65544_octets() {
    // Case 4E C-APDU: 7-octet header, 65 535 data octets, 2-octet Le.
    let apdu: Vec<u8> = (0..65_544u32).map(|i| (i * 7 % 256) as u8).collect();
    let segmenter = Segmenter::data(0, 0, &apdu, 255).unwrap();
    assert_eq!(segmenter.len(), 258);
    let mut r = Box::new(Reassembler::<65_544, 1>::new());
    let mut whole = None;
    for p in segmenter {
        if let Some(message) = r.push(&p).unwrap() {
            whole = Some(message.payload.to_vec());
        }
    }
    assert_eq!(whole.as_deref(), Some(&apdu[..]));
}

#[test]
fn segmented_control_message_round_trips() {
    // A 300-octet RF_SET_LISTEN_MODE_ROUTING_CMD payload at the PN7150's 255-octet control limit.
    let payload: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let packets: Vec<_> = Segmenter::control(MessageType::Command, Gid::Rf, 0x01, &payload, 255)
        .unwrap()
        .collect();
    assert_eq!(&packets[0][..3], &[0x31, 0x01, 0xFF]);
    assert_eq!(&packets[1][..3], &[0x21, 0x01, 0x2D]);
    let mut r = Reassembler::<512>::new();
    assert_eq!(r.push(&packets[0]), Ok(None));
    let cmd = r.push(&packets[1]).unwrap().unwrap();
    assert_eq!(cmd.mt, MessageType::Command);
    assert_eq!(cmd.payload, &payload[..]);
}
