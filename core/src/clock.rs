//! Event time: the clock a simulation runs on.
//!
//! Two clocks exist in pinion and must not be confused. The engine's monotonic clock stamps
//! latency (`t0`, stage exits); it says how fast this host is. Event time is the venue's clock as
//! the market data carries it (a record's receive time in a recording, the wall clock live); it
//! drives everything a backtest's outcome depends on: the simulated venue's latency, queue and fee
//! models, and every order-rate throttle. With event time, the same recording and config give the
//! same orders and fills on any host and any thread placement.

/// A source of event time in nanoseconds since the Unix epoch.
///
/// The stage that owns the clock advances it as events pass; readers only ask for `now`. The
/// time never goes backwards.
pub trait EventClock {
    /// The current event time, ns since the Unix epoch.
    fn now_ns(&self) -> u64;
}

/// Event time taken from the data itself: the latest receive time seen so far.
///
/// Recordings may step back by a few microseconds between connections (two sockets read in
/// turn); the clock keeps the maximum, so time is monotonic and a throttle never sees a
/// negative interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataClock {
    now_ns: u64,
}

impl DataClock {
    /// A clock at `start_ns`.
    pub const fn starting_at(start_ns: u64) -> Self {
        Self { now_ns: start_ns }
    }

    /// Moves the clock to `t_ns` if that is later than now; returns the time after.
    #[inline]
    pub fn advance_to(&mut self, t_ns: u64) -> u64 {
        if t_ns > self.now_ns {
            self.now_ns = t_ns;
        }
        self.now_ns
    }
}

impl EventClock for DataClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_clock_never_steps_back() {
        let mut c = DataClock::starting_at(100);
        assert_eq!(c.advance_to(150), 150);
        assert_eq!(c.advance_to(120), 150);
        assert_eq!(c.now_ns(), 150);
        assert_eq!(c.advance_to(151), 151);
    }
}
