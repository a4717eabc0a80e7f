//! [`SplitMix64`]: the venue's pseudo-random numbers, seeded from the config.
//!
//! A backtest must give the same fills on every run and every host, so the venue draws from a
//! generator whose whole state is one `u64` set from the configured seed, never from the OS or a
//! clock. SplitMix64 (Steele, Lea and Flood, 2014) passes the usual statistical batteries, needs
//! no warm-up, and spreads even adjacent seeds (0, 1, 2…) over unrelated streams, which is what
//! lets one configured seed feed several independent streams ([`SplitMix64::stream`]).

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator: a counter advanced by a fixed odd constant, each value passed through
/// a bijective mixing function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started at `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Generator number `stream` for `seed`: streams of one seed do not overlap in practice (the
    /// start is itself a mixed value), so each consumer (one per latency path and instrument)
    /// draws from its own sequence and adding draws to one leaves the others unchanged.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut g = Self::new(seed ^ mix(stream.wrapping_add(1).wrapping_mul(GAMMA)));
        Self::new(g.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A uniform draw from the open interval (0, 1), with 53 random bits: never exactly 0 or 1,
    /// so its logarithm is finite.
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform draw from `0..n` (`n > 0`), by the multiply-shift reduction (bias below
    /// `n / 2^64`, far under anything a latency draw can show).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// SplitMix64's finaliser (a variant of MurmurHash3's `fmix64`).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
