//! The I²C bus time, computed from first principles for the tests that check the simulator's
//! bus model (UM10204: START, address + ACK and STOP make 11 bit-times per transaction, 9 per
//! data byte; Hs-mode adds the 25 µs master code; the NFCC's packets are read as the 3-octet
//! header, then the payload).

use libnci::sim::{BusSpeed, Direction};

/// One I²C transaction of `n` data bytes, in nanoseconds (rounded up).
pub fn transaction_ns(hz: u64, n: u64) -> u64 {
    let bits = 9 * n + 11;
    let master_code = if hz == 3_400_000 { 25_000 } else { 0 };
    (bits * 1_000_000_000).div_ceil(hz) + master_code
}

/// An NCI packet of `len` octets: one write from the DH; the NFCC's is read as the header,
/// then the payload (none for an empty one).
pub fn packet_ns(hz: u64, direction: Direction, len: u64) -> u64 {
    match direction {
        Direction::DhToNfcc => transaction_ns(hz, len),
        Direction::NfccToDh if len > 3 => transaction_ns(hz, 3) + transaction_ns(hz, len - 3),
        Direction::NfccToDh => transaction_ns(hz, 3),
    }
}

/// The three bus speeds with their clock in Hz.
pub fn speeds() -> [(BusSpeed, u64); 3] {
    [
        (BusSpeed::Standard, 100_000),
        (BusSpeed::Fast, 400_000),
        (BusSpeed::HighSpeed, 3_400_000),
    ]
}
