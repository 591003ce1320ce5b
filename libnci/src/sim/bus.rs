//! A timing model of the I²C bus between the DH and a PN7150-class NFCC.
//!
//! What it does: says how long each NCI packet occupies the bus, keeps the bus serial (one
//! transfer at a time, in the order they were started) and totals what a real bus would add to
//! a run. What it does not do: move bytes (the harness does), clock stretching, NACK retries or
//! electrical timing parameters (set-up/hold times, bus-free time), which are small against the
//! byte times at the speeds modelled.
//!
//! # Formula
//!
//! With `f` the SCL frequency and `T = 1/f` one bit-time, one I²C transaction carrying `n` data
//! bytes costs (I²C-bus specification UM10204, "Data transfer": 8 data bits and an acknowledge bit
//! per byte)
//!
//! ```text
//! t(n) = (1 START + 9 address/R-W/ACK + 9·n data/ACK + 1 STOP) · T = (9·n + 11) · T
//! ```
//!
//! In Hs-mode (3.4 MHz) every transaction is preceded by the master code, sent at Fast-mode
//! speed: START, 8 bits, NACK = 10 bit-times at 400 kHz = 25 µs (UM10204, "Hs-mode").
//!
//! A packet from the DH to the NFCC is one write transaction of the whole packet. A packet from
//! the NFCC to the DH is read in two transactions, the 3-octet header first and then the
//! payload (PN7150 user manual UM10936, host interface: the host learns the length from the
//! header), the second one omitted for an empty payload.
//!
//! At 400 kHz one byte costs 9 × 2.5 µs = 22.5 µs; a 261-byte R-APDU (two packets, 258 and 9
//! bytes) costs (9·258 + 11 + 9·9 + 11) × 2.5 µs = 6.06 ms on the write side.
//!
//! The simulated clock ([`Instant`]) has microsecond resolution: each transfer is rounded up to
//! the next whole microsecond when it is scheduled. [`BusStats`] keep the exact nanoseconds.

use crate::time::{Duration, Instant};
use crate::wire::HEADER_LEN;

/// Bit-times of one transaction without its data bytes: START, address byte with ACK, STOP.
pub const TRANSACTION_OVERHEAD_BITS: u64 = 11;
/// Bit-times per data byte: 8 data bits and the ACK/NACK bit.
pub const BITS_PER_BYTE: u64 = 9;
/// The Hs-mode master code preamble: START, 8 bits, NACK, at 400 kHz.
pub const HS_MASTER_CODE: Duration = Duration::from_nanos(25_000);

/// SCL frequency (I²C-bus specification UM10204: Standard-, Fast- and High-speed mode; the
/// PN7150 data sheet lists all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusSpeed {
    /// Standard-mode, 100 kHz.
    Standard,
    /// Fast-mode, 400 kHz: the usual setting on a Raspberry Pi.
    Fast,
    /// High-speed mode, 3.4 MHz.
    HighSpeed,
}

impl BusSpeed {
    /// SCL frequency in hertz.
    pub const fn hz(self) -> u64 {
        match self {
            BusSpeed::Standard => 100_000,
            BusSpeed::Fast => 400_000,
            BusSpeed::HighSpeed => 3_400_000,
        }
    }

    /// Time of one transaction carrying `data_bytes`, exact to the nanosecond (rounded up).
    pub fn transaction_time(self, data_bytes: usize) -> Duration {
        let bits = BITS_PER_BYTE
            .saturating_mul(data_bytes as u64)
            .saturating_add(TRANSACTION_OVERHEAD_BITS);
        let nanos = bits.saturating_mul(1_000_000_000).div_ceil(self.hz());
        let preamble = match self {
            BusSpeed::HighSpeed => HS_MASTER_CODE,
            BusSpeed::Standard | BusSpeed::Fast => Duration::ZERO,
        };
        Duration::from_nanos(nanos) + preamble
    }

    /// Time to move one NCI packet of `packet_len` octets (header included) in `direction`.
    pub fn packet_time(self, direction: Direction, packet_len: usize) -> Duration {
        match direction {
            Direction::DhToNfcc => self.transaction_time(packet_len),
            Direction::NfccToDh => {
                let payload = packet_len.saturating_sub(HEADER_LEN);
                let header = self.transaction_time(HEADER_LEN);
                if payload == 0 {
                    header
                } else {
                    header + self.transaction_time(payload)
                }
            }
        }
    }
}

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Commands and data from the device host: an I²C write.
    DhToNfcc,
    /// Responses, notifications and data from the controller: I²C reads.
    NfccToDh,
}

/// Totals for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Packets moved.
    pub packets: u64,
    /// Octets moved (headers included).
    pub bytes: u64,
    /// Time the bus spent on them, exact.
    pub busy: Duration,
}

/// What the bus added to a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// DH → NFCC.
    pub to_nfcc: DirectionStats,
    /// NFCC → DH.
    pub to_dh: DirectionStats,
    /// Time packets waited for the bus to become free (the other direction was using it).
    pub waited: Duration,
}

impl BusStats {
    /// Total bus time in both directions.
    pub fn busy(&self) -> Duration {
        self.to_nfcc.busy + self.to_dh.busy
    }
}

/// One scheduled transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// When the bus started moving the packet.
    pub start: Instant,
    /// When the last bit arrived (rounded up to the microsecond).
    pub end: Instant,
}

/// A serial I²C bus: transfers never overlap.
#[derive(Debug, Clone)]
pub struct I2cBus {
    speed: BusSpeed,
    free_at: Instant,
    stats: BusStats,
}

impl I2cBus {
    /// An idle bus at `speed`.
    pub fn new(speed: BusSpeed) -> I2cBus {
        I2cBus {
            speed,
            free_at: Instant::ZERO,
            stats: BusStats::default(),
        }
    }

    /// The configured speed.
    pub fn speed(&self) -> BusSpeed {
        self.speed
    }

    /// When the current transfer (if any) ends.
    pub fn free_at(&self) -> Instant {
        self.free_at
    }

    /// Totals so far.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }

    /// Move a packet of `packet_len` octets that became ready at `ready`: it starts when both
    /// it is ready and the bus is free, and holds the bus until it is through.
    pub fn transfer(
        &mut self,
        direction: Direction,
        packet_len: usize,
        ready: Instant,
    ) -> Transfer {
        let exact = self.speed.packet_time(direction, packet_len);
        let start = ready.max(self.free_at);
        let end = start + round_up_to_micros(exact);
        self.free_at = end;
        self.stats.waited += start - ready;
        let stats = match direction {
            Direction::DhToNfcc => &mut self.stats.to_nfcc,
            Direction::NfccToDh => &mut self.stats.to_dh,
        };
        stats.packets += 1;
        stats.bytes += packet_len as u64;
        stats.busy += exact;
        Transfer { start, end }
    }
}

/// `d` rounded up to a whole number of microseconds (the resolution of [`Instant`]).
pub fn round_up_to_micros(d: Duration) -> Duration {
    let micros = d.as_nanos().div_ceil(1_000);
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_mode_costs_22_5_us_per_byte() {
        let one = BusSpeed::Fast.transaction_time(1);
        let two = BusSpeed::Fast.transaction_time(2);
        assert_eq!(two - one, Duration::from_nanos(22_500));
        // CORE_RESET_CMD, 4 octets: (36 + 11) × 2.5 µs.
        assert_eq!(
            BusSpeed::Fast.packet_time(Direction::DhToNfcc, 4),
            Duration::from_nanos(117_500)
        );
    }

    #[test]
    fn reads_are_header_then_payload() {
        // CORE_RESET_RSP (PN7150), 6 octets: (27 + 11) + (27 + 11) bit-times at 100 kHz.
        assert_eq!(
            BusSpeed::Standard.packet_time(Direction::NfccToDh, 6),
            Duration::from_micros(760)
        );
        // An empty-payload packet is one 3-byte read.
        assert_eq!(
            BusSpeed::Standard.packet_time(Direction::NfccToDh, 3),
            Duration::from_micros(380)
        );
    }

    #[test]
    fn high_speed_pays_the_master_code() {
        // 4 octets: 47 bit-times at 3.4 MHz = 13 823.5… ns, rounded up, plus 25 µs.
        assert_eq!(
            BusSpeed::HighSpeed.transaction_time(4),
            Duration::from_nanos(13_824 + 25_000)
        );
    }

    #[test]
    fn the_bus_is_serial() {
        let mut bus = I2cBus::new(BusSpeed::Fast);
        let a = bus.transfer(Direction::DhToNfcc, 4, Instant::ZERO);
        assert_eq!(a.end, Instant::from_micros(118));
        // Ready at 10 µs but the bus is busy until 118 µs.
        let b = bus.transfer(Direction::NfccToDh, 3, Instant::from_micros(10));
        assert_eq!(b.start, Instant::from_micros(118));
        assert_eq!(bus.stats().waited, Duration::from_micros(108));
        assert_eq!(bus.stats().to_nfcc.packets, 1);
        assert_eq!(bus.stats().to_dh.bytes, 3);
    }
}
