//! Micro-benchmarks of segmentation and reassembly (NCI 1.0 §3.5): a command APDU longer than
//! one data packet is reassembled from its segments, a long response APDU is cut into them.
//!
//! What is measured: [`Reassembler::push_copied`] of every packet of a 261-octet and a
//! 4 KiB APDU (255-octet segments, the PN7150's "Max Data Packet Payload Size"), with the
//! reassembler the controller uses for command APDUs; [`Segmenter::next_packet`] of the same
//! APDUs into one packet buffer. What is not: credits and the state machine around them (see the
//! `controller` benchmark).
//!
//! Run: `cargo bench -p libnci --bench segment`.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use libnci::controller::MAX_C_APDU;
use libnci::wire::header::MAX_PACKET_LEN;
use libnci::wire::segment::{Reassembler, Segmenter};

fn main() {
    divan::main();
}

/// The PN7150's "Max Data Packet Payload Size" (RF_INTF_ACTIVATED_NTF).
const MAX_DATA_PAYLOAD: u8 = 255;

/// APDU lengths: 261 octets is 255 + 6 (two packets, the classic long EMV record); 4 KiB is
/// 16 full packets and 16 octets (an extended-length transit or ID document read).
const LENGTHS: [usize; 2] = [261, 4096];

/// The data reassembler of the controller: one slot (the static RF connection), room for the
/// longest extended-length C-APDU, no control buffer. About 64 KiB, so it lives in a `Box`.
type DataReassembler = Reassembler<MAX_C_APDU, 1, 0>;

fn apdu(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The data packets of `apdu` on connection 0, as the NFCC sends them.
fn packets(apdu: &[u8]) -> Vec<Vec<u8>> {
    Segmenter::data(0, 0, apdu, MAX_DATA_PAYLOAD)
        .expect("connection 0 and a non-zero payload size are valid")
        .map(|packet| packet.to_vec())
        .collect()
}

/// Push every packet; return the length of the whole message handed back by the last one.
fn reassemble(rx: &mut DataReassembler, packets: &[Vec<u8>]) -> usize {
    let mut whole = 0;
    for packet in packets {
        if let Ok(Some(message)) = rx.push_copied(black_box(packet)) {
            whole = message.payload.len();
        }
    }
    whole
}

#[divan::bench(args = LENGTHS, sample_size = 4096)]
fn reassembly(bencher: Bencher, len: usize) {
    let apdu = apdu(len);
    let packets = packets(&apdu);
    let mut rx: Box<DataReassembler> = Box::default();
    // The whole APDU comes back, once, from the last packet.
    assert_eq!(reassemble(&mut rx, &packets), len);
    assert_eq!(rx.data_message(0), Some(&apdu[..]));
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| reassemble(&mut rx, &packets));
}

#[divan::bench(args = LENGTHS, sample_size = 4096)]
fn segmentation(bencher: Bencher, len: usize) {
    let apdu = apdu(len);
    let expected: usize = packets(&apdu).iter().map(Vec::len).sum();
    let mut out = [0u8; MAX_PACKET_LEN];
    let segment = |apdu: &[u8], out: &mut [u8; MAX_PACKET_LEN]| -> usize {
        let mut total = 0;
        let Ok(mut segmenter) = Segmenter::data(0, 0, apdu, MAX_DATA_PAYLOAD) else {
            return 0;
        };
        while let Some(Ok(n)) = segmenter.next_packet(out) {
            // Stands for the transport write of each packet.
            black_box(&out[..n]);
            total += n;
        }
        total
    };
    assert_eq!(segment(&apdu, &mut out), expected);
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| segment(black_box(&apdu), &mut out));
}
