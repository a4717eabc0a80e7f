//! The circuit breaker in front of new orders: repeated transport or server failures open it,
//! and while it is open new orders are held back (refused at once; cancels always flow).
//!
//! * **Closed**: orders flow; each failure (a lost connection, an answer of unknown outcome: a
//!   5xx, `-1000`, `-1006`, `-1007`, or no answer in time) counts, each clean answer resets
//!   the count. `threshold` failures in a row open it.
//! * **Open** for `open_for_ns`: every new order is refused.
//! * **Half-open**: one order goes through as a probe; its clean answer closes the breaker, a
//!   failure opens it again for another `open_for_ns`.
//!
//! Times are ns on any monotonic clock the caller keeps; nothing allocates.

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker (0: never opens).
    pub threshold: u32,
    /// How long it stays open before a probe, ns.
    pub open_for_ns: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            open_for_ns: 5_000_000_000,
        }
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Orders flow; `failures` in a row so far.
    Closed {
        /// Failures since the last clean answer.
        failures: u32,
    },
    /// New orders are refused until `until_ns`.
    Open {
        /// When a probe may go.
        until_ns: u64,
    },
    /// One probe may go; `probing` once it has.
    HalfOpen {
        /// Whether the probe is out.
        probing: bool,
    },
}

/// The breaker. See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    opened: u64,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: BreakerState::Closed { failures: 0 },
            opened: 0,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How many times it has opened.
    pub fn times_opened(&self) -> u64 {
        self.opened
    }

    /// Whether a new order may go at `now_ns`; in half-open, the first one asked is the probe.
    pub fn allow_order(&mut self, now_ns: u64) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until_ns } if now_ns >= until_ns => {
                self.state = BreakerState::HalfOpen { probing: true };
                true
            }
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                true
            }
            BreakerState::HalfOpen { probing: true } => false,
        }
    }

    /// A clean answer came.
    pub fn on_success(&mut self) {
        match self.state {
            BreakerState::Open { .. } => {}
            _ => self.state = BreakerState::Closed { failures: 0 },
        }
    }

    /// A failure at `now_ns`.
    pub fn on_failure(&mut self, now_ns: u64) {
        if self.config.threshold == 0 {
            return;
        }
        match self.state {
            BreakerState::Closed { failures } if failures + 1 < self.config.threshold => {
                self.state = BreakerState::Closed {
                    failures: failures + 1,
                };
            }
            BreakerState::Open { .. } => {}
            _ => self.open(now_ns),
        }
    }

    fn open(&mut self, now_ns: u64) {
        self.opened += 1;
        self.state = BreakerState::Open {
            until_ns: now_ns.saturating_add(self.config.open_for_ns),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: BreakerConfig = BreakerConfig {
        threshold: 3,
        open_for_ns: 1_000,
    };

    #[test]
    fn opens_after_failures_in_a_row_and_a_success_resets_the_count() {
        let mut b = CircuitBreaker::new(CONFIG);
        b.on_failure(0);
        b.on_failure(1);
        b.on_success();
        b.on_failure(2);
        b.on_failure(3);
        assert!(b.allow_order(4), "two in a row: still closed");
        b.on_failure(5);
        assert_eq!(b.state(), BreakerState::Open { until_ns: 1_005 });
        assert!(!b.allow_order(6));
        assert!(!b.allow_order(1_004));
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_answer_decides() {
        let mut b = CircuitBreaker::new(CONFIG);
        for t in 0..3 {
            b.on_failure(t);
        }
        assert!(b.allow_order(1_002), "the probe");
        assert!(!b.allow_order(1_003), "only one probe");
        b.on_failure(1_010);
        assert_eq!(b.state(), BreakerState::Open { until_ns: 2_010 });
        assert!(b.allow_order(2_010));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert!(b.allow_order(2_011));
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let mut b = CircuitBreaker::new(BreakerConfig {
            threshold: 0,
            open_for_ns: 1,
        });
        for t in 0..100 {
            b.on_failure(t);
        }
        assert!(b.allow_order(100));
    }
}
