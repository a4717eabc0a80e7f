//! The generator's pseudo-random numbers: SplitMix64.
//!
//! Hand-written so the synthetic market depends on nothing but its seed: the same seed gives the
//! same byte stream on every platform and every build, because only integer arithmetic is used
//! (no `f64` transcendental functions whose last bit could differ between libms).

/// SplitMix64 (Steele, Lea and Flood): a 64-bit counter passed through a mixing function.
/// Statistically strong enough for a market simulation and a handful of instructions per draw.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`; every seed, zero included, is usable.
    pub(crate) const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (0 when `n` is 0), by the multiply-shift method, whose bias
    /// is at most `n / 2^64`.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `threshold / 2^64` (see [`probability_threshold`]).
    #[inline]
    pub(crate) fn chance(&mut self, threshold: u64) -> bool {
        self.next_u64() < threshold
    }

    /// A fair coin.
    #[inline]
    pub(crate) fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// The number of successes before the first failure of a coin that succeeds with
    /// probability `1/2`, capped at `cap`: `P(k) = 2^-(k+1)`.
    #[inline]
    pub(crate) fn geometric_half(&mut self, cap: u32) -> u32 {
        // Trailing ones of a uniform word are geometrically distributed.
        self.next_u64().trailing_ones().min(cap)
    }
}

/// The threshold for [`SplitMix64::chance`] that gives probability `p` (clamped to `[0, 1]`).
/// The conversion is exact IEEE arithmetic, so it is the same everywhere.
pub(crate) fn probability_threshold(p: f64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        u64::MAX
    } else {
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut c = SplitMix64::new(8);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn draws_stay_in_range_and_cover_it() {
        let mut r = SplitMix64::new(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = r.below(10);
            assert!(x < 10);
            seen[x as usize] += 1;
        }
        // Each bucket expects 1000; a fair generator stays well inside 800..1200.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn chance_matches_probability() {
        let mut r = SplitMix64::new(3);
        let t = probability_threshold(0.25);
        let hits = (0..40_000).filter(|_| r.chance(t)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert_eq!(probability_threshold(0.0), 0);
        assert_eq!(probability_threshold(2.0), u64::MAX);
        assert_eq!(probability_threshold(f64::NAN), 0);
    }
}
