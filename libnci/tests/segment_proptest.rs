//! Properties of segmentation and reassembly (NCI 1.0 §3.5).

use libnci::wire::segment::{Reassembler, Segmenter};
use libnci::wire::{Gid, MessageType, PacketId};
use proptest::prelude::*;

fn message_kind() -> impl Strategy<Value = (MessageType, PacketId)> {
    prop_oneof![
        (0u8..16, 0u8..4).prop_map(|(conn_id, credits)| (
            MessageType::Data,
            PacketId::Data { conn_id, credits }
        )),
        (1u8..4, 0u8..16, 0u8..64).prop_map(|(mt, gid, oid)| (
            MessageType::from(mt),
            PacketId::Control {
                gid: Gid::from(gid),
                oid
            }
        )),
    ]
}

proptest! {
    /// Segmenting then reassembling gives back the message, whatever its length and the limit.
    #[test]
    fn segment_then_reassemble_is_identity(
        (mt, id) in message_kind(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        max_payload in 1u8..=255,
    ) {
        let segmenter = Segmenter::new(mt, id, &payload, max_payload).unwrap();
        let expected_packets = payload.len().div_ceil(usize::from(max_payload)).max(1);
        prop_assert_eq!(segmenter.len(), expected_packets);
        let mut r = Reassembler::<1500>::new();
        let mut out = None;
        let mut count = 0;
        for packet in segmenter {
            count += 1;
            // PBF on all but the last.
            prop_assert_eq!(packet[0] & 0x10 != 0, count < expected_packets);
            prop_assert!(usize::from(packet[2]) <= usize::from(max_payload));
            prop_assert!(out.is_none());
            if let Some(message) = r.push(&packet).unwrap() {
                prop_assert_eq!(message.mt, mt);
                prop_assert_eq!(message.id, id);
                out = Some(message.payload.to_vec());
            }
        }
        prop_assert_eq!(count, expected_packets);
        prop_assert_eq!(out, Some(payload));
        prop_assert!(r.is_idle());
    }

    /// Arbitrary bytes never panic the reassembler and never produce a message above N.
    #[test]
    fn arbitrary_packets_never_panic(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40),
    ) {
        let mut r = Reassembler::<48, 2>::new();
        for mut p in packets {
            if p.len() >= 3 && p[0] & 0x80 == 0 {
                // Make most packets well-formed so that reassembly paths are exercised.
                p[2] = (p.len() - 3) as u8;
            }
            if let Ok(Some(message)) = r.push(&p) {
                prop_assert!(message.payload.len() <= 48);
            }
        }
    }
}
