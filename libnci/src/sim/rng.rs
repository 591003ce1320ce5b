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
    /// A generator started from `seed`. The all-zero state is a fixed point of xorshift, so a
    /// zero seed is replaced by a fixed odd constant.
    pub fn new(seed: u64) -> XorShift64 {
        XorShift64 {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
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
    fn first_value_matches_the_recurrence() {
        // x = 1: x ^= x << 13 → 0x2001; x ^= x >> 7 → 0x2041; x ^= x << 17 → 0x4082_2041.
        assert_eq!(XorShift64::new(1).next_u64(), 0x4082_2041);
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
