//! Wait strategies: what a thread does when none of its stages has work, and what a producer
//! does while its output ring is full.
//!
//! The choice trades latency against CPU: [`WaitStrategy::BusySpin`] reacts within nanoseconds but
//! burns its core (only sensible on an isolated core), [`WaitStrategy::SpinThenYield`] spins
//! briefly then lets other threads run, [`WaitStrategy::Park`] sleeps in short slices (tests, CI,
//! machines with fewer cores than threads). A [`Waiter`] holds the state of one idle episode; it
//! is reset whenever work shows up, so a busy thread never yields or parks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a thread waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WaitStrategy {
    /// Spin with the CPU's spin-loop hint; never gives up the core.
    BusySpin,
    /// Spin `spins` times, then call `sched_yield` on every further idle round.
    SpinThenYield {
        /// Idle rounds spent spinning before yielding.
        spins: u32,
    },
    /// Park the thread for up to `timeout_us` microseconds per idle round. Nothing unparks it
    /// early, so this adds up to `timeout_us` of latency per hop; it costs almost no CPU.
    Park {
        /// Longest single sleep, in microseconds (0 is treated as 1).
        timeout_us: u32,
    },
}

impl WaitStrategy {
    /// A strategy safe on a shared 2-core machine: a short spin, then yield.
    pub const SHARED_HOST: WaitStrategy = WaitStrategy::SpinThenYield { spins: 100 };

    /// The name configs and reports use (`busy-spin`, `spin-then-yield`, `park`); the config
    /// reads these names, with the counts from `placement.spins` and `placement.park_timeout_us`.
    pub const fn name(self) -> &'static str {
        match self {
            WaitStrategy::BusySpin => "busy-spin",
            WaitStrategy::SpinThenYield { .. } => "spin-then-yield",
            WaitStrategy::Park { .. } => "park",
        }
    }

    /// True if this strategy keeps its core busy when idle (it should only be used on a core
    /// the thread has to itself).
    pub fn spins_forever(self) -> bool {
        matches!(self, WaitStrategy::BusySpin)
    }
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SHARED_HOST
    }
}

/// The state of one idle episode under a [`WaitStrategy`].
#[derive(Debug, Clone)]
pub struct Waiter {
    strategy: WaitStrategy,
    idle_rounds: u32,
}

impl Waiter {
    /// A waiter at the start of an idle episode.
    pub fn new(strategy: WaitStrategy) -> Waiter {
        Waiter {
            strategy,
            idle_rounds: 0,
        }
    }

    /// The strategy this waiter follows.
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Work showed up: the next idle round starts a new episode (spinning again first).
    #[inline]
    pub fn reset(&mut self) {
        self.idle_rounds = 0;
    }

    /// Waits one idle round.
    #[inline]
    pub fn wait(&mut self) {
        match self.strategy {
            WaitStrategy::BusySpin => std::hint::spin_loop(),
            WaitStrategy::SpinThenYield { spins } => {
                if self.idle_rounds < spins {
                    self.idle_rounds += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            WaitStrategy::Park { timeout_us } => {
                std::thread::park_timeout(Duration::from_micros(u64::from(timeout_us.max(1))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_then_yield_counts_spins_and_resets() {
        let mut w = Waiter::new(WaitStrategy::SpinThenYield { spins: 3 });
        for _ in 0..5 {
            w.wait();
        }
        assert_eq!(w.idle_rounds, 3);
        w.reset();
        assert_eq!(w.idle_rounds, 0);
    }

    #[test]
    fn strategy_reads_from_toml_style_json() {
        let s: WaitStrategy = serde_json::from_str(r#"{"park":{"timeout_us":50}}"#).unwrap();
        assert_eq!(s, WaitStrategy::Park { timeout_us: 50 });
        let s: WaitStrategy = serde_json::from_str(r#""busy_spin""#).unwrap();
        assert!(s.spins_forever());
        assert_eq!(s.name(), "busy-spin");
    }
}
