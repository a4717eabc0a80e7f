//! The offset between the local wall clock and Binance's, for stamping `timestamp`.
//!
//! The exchange refuses a request whose `timestamp` is more than 1 s ahead of its clock or
//! older than `recvWindow` (`-1021`). So requests are stamped with the *exchange's* time when
//! their bytes are written: local time plus an estimated offset.
//!
//! **Estimate.** A `time` request sent at local `t0` and answered at local `t1` with
//! `serverTime = s` says the server read its clock somewhere in `[t0, t1]`; taking the middle,
//! `offset = s − (t0 + t1) / 2`, wrong by at most half the round trip (plus the server's 1 ms
//! resolution). Queueing only ever lengthens a round trip, so of the last [`SAMPLES`] answers
//! the one with the **shortest round trip** is kept (a minimum-RTT filter): its error bound is
//! the smallest.
//!
//! **Drift alarm.** When a new best estimate moves by more than the configured threshold from
//! the one in use, [`ClockOffset::drift_alarm`] is raised: the local clock stepped or slews,
//! and the operator should know.
//!
//! **`-1021`.** A refused timestamp means the estimate is wrong *now*: the samples are dropped,
//! new `time` requests are due at once ([`ClockOffset::wants_sample`]), and nothing is stamped
//! until a fresh estimate exists. The refused request is not resent: its staleness bound
//! (`recvWindow`) is the point of having one.
//!
//! Times are integers (µs locally, ms from the server); nothing allocates.

/// How many recent samples the minimum-RTT filter looks at.
pub const SAMPLES: usize = 16;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockConfig {
    /// Raise the drift alarm when the estimate moves by more than this, µs.
    pub drift_alarm_us: i64,
    /// Take a new sample when the last one is older than this, µs.
    pub resample_every_us: u64,
    /// Samples needed before the first estimate is used.
    pub warm_up: usize,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            drift_alarm_us: 20_000,
            resample_every_us: 30_000_000,
            warm_up: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    offset_us: i64,
    rtt_us: u64,
}

/// The clock offset estimator. See the module docs.
#[derive(Debug, Clone)]
pub struct ClockOffset {
    config: ClockConfig,
    samples: [Option<Sample>; SAMPLES],
    next: usize,
    taken: usize,
    in_use: Option<Sample>,
    /// The last estimate used, kept across a `-1021` reset so a jump still raises the alarm.
    last_offset_us: Option<i64>,
    last_sample_us: Option<u64>,
    drift_alarm: bool,
    rejections: u64,
}

impl ClockOffset {
    /// An estimator with no samples yet.
    pub fn new(config: ClockConfig) -> Self {
        Self {
            config,
            samples: [None; SAMPLES],
            next: 0,
            taken: 0,
            in_use: None,
            last_offset_us: None,
            last_sample_us: None,
            drift_alarm: false,
            rejections: 0,
        }
    }

    /// A `time` answer: sent at local `sent_us`, received at local `received_us`, saying
    /// `server_ms`. Answers with a negative round trip (a local clock step) are ignored.
    pub fn on_time(&mut self, sent_us: u64, received_us: u64, server_ms: u64) {
        let Some(rtt_us) = received_us.checked_sub(sent_us) else {
            return;
        };
        // The server's clock read is truncated to the ms: its middle is 500 µs later.
        let server_us = server_ms.saturating_mul(1000).saturating_add(500) as i128;
        let mid_us = (i128::from(sent_us) + i128::from(received_us)) / 2;
        let offset_us =
            (server_us - mid_us).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.samples[self.next] = Some(Sample { offset_us, rtt_us });
        self.next = (self.next + 1) % SAMPLES;
        self.taken += 1;
        self.last_sample_us = Some(received_us);
        if self.taken < self.config.warm_up {
            return;
        }
        let best = self
            .samples
            .iter()
            .flatten()
            .min_by_key(|s| s.rtt_us)
            .copied();
        if let (Some(best), Some(used)) = (best, self.last_offset_us)
            && (best.offset_us - used).abs() > self.config.drift_alarm_us
        {
            self.drift_alarm = true;
        }
        self.in_use = best;
        self.last_offset_us = best.map(|s| s.offset_us);
    }

    /// The estimated offset (server − local), µs, once warmed up.
    pub fn offset_us(&self) -> Option<i64> {
        self.in_use.map(|s| s.offset_us)
    }

    /// The bound on the estimate's error, µs: half the round trip of the sample in use plus
    /// the server's 1 ms resolution.
    pub fn error_bound_us(&self) -> Option<u64> {
        self.in_use.map(|s| s.rtt_us / 2 + 500)
    }

    /// The exchange's time in ms for a request written at local `now_us`, or `None` while
    /// there is no estimate (nothing may be stamped).
    pub fn server_time_ms(&self, now_us: u64) -> Option<u64> {
        let offset = self.in_use?.offset_us;
        let t = i128::from(now_us) + i128::from(offset);
        u64::try_from(t / 1000).ok()
    }

    /// Whether a `time` request is due: warming up, stale, or after a `-1021`.
    pub fn wants_sample(&self, now_us: u64) -> bool {
        self.in_use.is_none()
            || self
                .last_sample_us
                .is_none_or(|t| now_us.saturating_sub(t) >= self.config.resample_every_us)
    }

    /// A request was refused with `-1021`: the estimate is wrong now. Drops every sample;
    /// stamping stops until a fresh estimate exists. Never resend the request.
    pub fn on_timestamp_rejected(&mut self) {
        self.rejections += 1;
        self.samples = [None; SAMPLES];
        self.taken = 0;
        self.in_use = None;
        self.last_sample_us = None;
    }

    /// `-1021` answers so far.
    pub fn timestamp_rejections(&self) -> u64 {
        self.rejections
    }

    /// Whether the estimate moved by more than the alarm threshold from the one used before it
    /// (cleared by [`ClockOffset::clear_drift_alarm`]).
    pub fn drift_alarm(&self) -> bool {
        self.drift_alarm
    }

    /// Acknowledges the drift alarm.
    pub fn clear_drift_alarm(&mut self) {
        self.drift_alarm = false;
    }
}
