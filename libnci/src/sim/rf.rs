//! RF timing of ISO-DEP exchanges at 106 kbit/s, for the reader side of a simulated tap.
//!
//! What it does: estimates how long an APDU takes over the air, framed as ISO/IEC 14443-4
//! I-blocks (PCB, INF, CRC_A/CRC_B), chained when it exceeds the receiver's frame size, with
//! an R(ACK) block and two frame delay times between chained blocks. What it does not do:
//! modulation details, S(WTX) extensions, retransmissions, bit rates above 106 kbit/s.
//!
//! Figures (ISO/IEC 14443-2 and -3):
//! - one elementary time unit (etu) at 106 kbit/s is 128/fc, fc = 13.56 MHz: 9.44 µs;
//! - Type A: each byte is 8 data bits and a parity bit (9 etu), plus 1 etu start of frame and
//!   1 etu end of frame;
//! - Type B: each character is start bit, 8 data bits, stop bit (10 etu, no extra guard time),
//!   plus a 12 etu SOF and a 10 etu EOF (the minimum values);
//! - turnaround between frames: Type A frame delay time 1172/fc (86.4 µs, the minimum for
//!   n = 9); Type B TR0 minimum 1024/fc (75.5 µs).
//!
//! A frame carries at most FSD (reader receiving) or FSC (card receiving) octets including the
//! 1-octet PCB and 2-octet CRC, so at most `FS − 3` INF octets (ISO/IEC 14443-4 §7.1, no CID,
//! no NAD). The activation parameters this crate's virtual controller reports (RATS byte 2
//! `0x80`, ATTRIB param 2 `0x08`) both mean 256.

use crate::time::Duration;
use crate::wire::RfTechnology;

/// Carrier frequency fc, 13.56 MHz.
pub const FC_HZ: u64 = 13_560_000;
/// Carrier cycles per etu at 106 kbit/s.
pub const ETU_IN_FC: u64 = 128;
/// ISO-DEP block overhead without CID and NAD: PCB (1) and CRC (2).
pub const BLOCK_OVERHEAD: usize = 3;
/// Type A frame delay time PCD → PICC response, minimum, in carrier cycles.
pub const FDT_A_FC: u64 = 1172;
/// Type B TR0 minimum, in carrier cycles.
pub const TR0_B_FC: u64 = 1024;

/// Frame sizes of the two ends of the ISO-DEP link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfTiming {
    /// FSC: largest frame the emulated card accepts (reader → card blocks).
    pub fsc: u16,
    /// FSD: largest frame the reader accepts (card → reader blocks).
    pub fsd: u16,
}

impl Default for RfTiming {
    fn default() -> Self {
        RfTiming { fsc: 256, fsd: 256 }
    }
}

impl RfTiming {
    /// Time for the reader to send a C-APDU of `len` octets to the card.
    pub fn command_time(&self, tech: RfTechnology, len: usize) -> Duration {
        message_time(tech, len, self.fsc)
    }

    /// Time for the card to send an R-APDU (or one segment of it) of `len` octets.
    pub fn response_time(&self, tech: RfTechnology, len: usize) -> Duration {
        message_time(tech, len, self.fsd)
    }
}

/// Etus of one frame of `frame_len` octets (PCB and CRC included).
pub fn frame_etus(tech: RfTechnology, frame_len: usize) -> u64 {
    let n = frame_len as u64;
    match tech {
        RfTechnology::NfcB => 10 * n + 12 + 10,
        // Type A framing; other technologies are not timed separately.
        _ => 9 * n + 2,
    }
}

fn turnaround_fc(tech: RfTechnology) -> u64 {
    match tech {
        RfTechnology::NfcB => TR0_B_FC,
        _ => FDT_A_FC,
    }
}

fn fc_to_duration(cycles: u64) -> Duration {
    Duration::from_nanos(cycles.saturating_mul(1_000_000_000).div_ceil(FC_HZ))
}

/// Time to move `len` INF octets as one chain of I-blocks limited to `frame_size` octets per
/// frame, including the R(ACK) blocks and turnarounds between chained blocks.
pub fn message_time(tech: RfTechnology, len: usize, frame_size: u16) -> Duration {
    let max_inf = usize::from(frame_size)
        .saturating_sub(BLOCK_OVERHEAD)
        .max(1);
    let blocks = len.div_ceil(max_inf).max(1);
    let mut etus = 0u64;
    let mut left = len;
    for _ in 0..blocks {
        let inf = left.min(max_inf);
        left -= inf;
        etus += frame_etus(tech, inf + BLOCK_OVERHEAD);
    }
    let chained = (blocks - 1) as u64;
    // Each extra block costs an R(ACK) frame (PCB + CRC) from the receiver.
    etus += chained * frame_etus(tech, BLOCK_OVERHEAD);
    let cycles = etus * ETU_IN_FC + chained * 2 * turnaround_fc(tech);
    fc_to_duration(cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_etu_is_about_9_44_us() {
        assert_eq!(fc_to_duration(ETU_IN_FC), Duration::from_nanos(9_440));
    }

    #[test]
    fn short_type_a_frame() {
        // SELECT PPSE (20 octets) in one I-block: 23 octets → 9·23 + 2 = 209 etu.
        let t = message_time(RfTechnology::NfcA, 20, 256);
        assert_eq!(t, fc_to_duration(209 * 128));
        // ≈ 1.97 ms.
        assert!(t > Duration::from_micros(1_970) && t < Duration::from_micros(1_975));
    }

    #[test]
    fn long_messages_chain() {
        // 261 octets with FS 256: I-blocks of 253 and 8 INF octets and one R(ACK).
        let t = message_time(RfTechnology::NfcA, 261, 256);
        let etus = (9 * 256 + 2) + (9 * 11 + 2) + (9 * 3 + 2);
        assert_eq!(t, fc_to_duration(etus * 128 + 2 * FDT_A_FC));
    }

    #[test]
    fn type_b_characters_are_ten_etu() {
        let t = message_time(RfTechnology::NfcB, 2, 256);
        assert_eq!(t, fc_to_duration((10 * 5 + 22) * 128));
    }
}
