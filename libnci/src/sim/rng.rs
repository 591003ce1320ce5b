//! A tiny seeded pseudo-random generator (Marsaglia's xorshift64, "Xorshift RNGs", 2003).
//!
//! The simulation must replay byte for byte from a seed, so every random choice (fault
//! probabilities, the EMV unpredictable number) draws from one of these instead of an
//! OS-seeded generator. Not for cryptography.

/// xorshift64 with the (13, 7, 17) shift triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator started from `seed`. The seed goes through the SplitMix64 finalizer first
    /// (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014) so that
    /// small seeds still give well-mixed first values; the all-zero state, a fixed point of
    /// xorshift, is avoided.
    pub fn new(seed: u64) -> XorShift64 {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift64 {
            state: if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z },
        }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// The next 32 pseudo-random bits (the high half, the better-mixed one).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// `true` with probability `p` (clamped to 0..=1). Always draws exactly one value, so the
    /// sequence of later draws does not depend on `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 bits give every representable double in [0, 1) the same spacing.
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p.clamp(0.0, 1.0)
    }

    /// Fill `out` with pseudo-random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = XorShift64::new(42);
        let mut b = XorShift64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(XorShift64::new(1).next_u64(), XorShift64::new(2).next_u64());
    }

    #[test]
    fn known_answer() {
        // SplitMix64(1) = 0x910A_2DEC_8902_5CC1, then one xorshift64 (13, 7, 17) round.
        assert_eq!(XorShift64::new(1).next_u64(), 0x7274_658B_CB6F_4838);
    }

    #[test]
    fn zero_seed_is_not_stuck() {
        let mut rng = XorShift64::new(0);
        assert_ne!(rng.next_u64(), 0);
    }

    #[test]
    fn chance_bounds() {
        let mut rng = XorShift64::new(7);
        assert!((0..1000).all(|_| !rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }

    #[test]
    fn fill_covers_odd_lengths() {
        let mut rng = XorShift64::new(3);
        let mut buf = [0u8; 11];
        rng.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
