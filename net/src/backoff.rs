//! When to reconnect: capped exponential backoff with full jitter, reset only after healthy
//! data, under a per-IP budget of connection attempts.
//!
//! After the `n`-th failure in a row the delay is drawn uniformly from
//! `[0, min(cap, base · 2ⁿ)]` ("full jitter"): many clients cut at once spread out instead of
//! reconnecting in lockstep. The failure count goes back to zero only once a connection has
//! carried data for [`BackoffPolicy::healthy_after`] since it connected
//! ([`Reconnect::on_healthy`]); a connect alone never resets it, so a server that accepts and then
//! drops every connection sees the delays keep growing rather than a reconnect storm.
//!
//! Independently, [`AttemptBudget`] holds connection attempts to `max` per sliding `window`
//! (Binance: 300 per 5 minutes per IP, `-1034` past that): an attempt that would exceed it is
//! delayed until the oldest attempt in the window leaves it. A sliding window is stricter than
//! the exchange's, so the budget holds however the exchange aligns its own.
//!
//! Everything is deterministic: time is passed in as nanoseconds on the caller's monotonic
//! clock, and the jitter comes from a seeded [`SplitMix64`].

use std::collections::VecDeque;
use std::time::Duration;

/// The SplitMix64 generator: 64 bits of state, statistically sound for jitter, reproducible
/// from its seed. Not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, bound]` (Lemire's multiply-shift; the bias is below 2⁻⁶⁴·bound).
    pub fn up_to(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            None => self.next_u64(),
            Some(range) => ((u128::from(self.next_u64()) * u128::from(range)) >> 64) as u64,
        }
    }
}

/// How reconnect delays grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The ceiling of the first delay's range.
    pub base: Duration,
    /// No delay is longer.
    pub cap: Duration,
    /// How long a connection must have carried data since it connected before the failure
    /// count resets.
    pub healthy_after: Duration,
}

impl BackoffPolicy {
    /// The ceiling of the delay's range after `failures` failures in a row:
    /// `min(cap, base · 2^failures)`, in ns.
    pub fn ceiling_ns(&self, failures: u32) -> u64 {
        let cap = nanos(self.cap);
        let grown = u128::from(nanos(self.base)) << failures.min(64);
        u64::try_from(grown).map_or(cap, |g| g.min(cap))
    }
}

impl Default for BackoffPolicy {
    /// 250 ms base, 30 s cap, healthy after 10 s.
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            healthy_after: Duration::from_secs(10),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// At most `max` connection attempts in any `window`. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct AttemptBudget {
    max: usize,
    window_ns: u64,
    /// Times of the attempts still inside the window, oldest first; never more than `max`.
    recent: VecDeque<u64>,
}

impl AttemptBudget {
    /// `max` attempts per `window` (Binance: 300 per 5 minutes; a share of it when several
    /// processes share the IP). `max` is at least 1.
    pub fn new(max: usize, window: Duration) -> Self {
        let max = max.max(1);
        AttemptBudget {
            max,
            window_ns: nanos(window),
            recent: VecDeque::with_capacity(max),
        }
    }

    /// The earliest time at or after `now_ns` when an attempt keeps within the budget.
    pub fn next_allowed(&self, now_ns: u64) -> u64 {
        if self.recent.len() < self.max {
            return now_ns;
        }
        // Full: the attempt `max` back must have left the window.
        let oldest = self.recent[self.recent.len() - self.max];
        now_ns.max(oldest.saturating_add(self.window_ns))
    }

    /// Records an attempt at `now_ns`. `Err` with the allowed time, recording nothing, when it
    /// would exceed the budget.
    pub fn record(&mut self, now_ns: u64) -> Result<(), u64> {
        while self
            .recent
            .front()
            .is_some_and(|&t| t.saturating_add(self.window_ns) <= now_ns)
        {
            self.recent.pop_front();
        }
        let allowed = self.next_allowed(now_ns);
        if allowed > now_ns {
            return Err(allowed);
        }
        self.recent.push_back(now_ns);
        Ok(())
    }

    /// Attempts recorded in the window ending at `now_ns`.
    pub fn in_window(&self, now_ns: u64) -> usize {
        self.recent
            .iter()
            .filter(|&&t| t.saturating_add(self.window_ns) > now_ns)
            .count()
    }
}

/// The reconnect schedule of one connection (or one group sharing an IP budget).
///
/// Call [`Reconnect::schedule`] when a connection is lost or an attempt fails, wait until the
/// time it answers, then [`Reconnect::on_attempt`] as the connect starts,
/// [`Reconnect::on_connected`] when it is up, [`Reconnect::on_healthy`] for data received, and
/// [`Reconnect::on_disconnect`] when it goes down.
#[derive(Debug, Clone)]
pub struct Reconnect {
    policy: BackoffPolicy,
    rng: SplitMix64,
    budget: AttemptBudget,
    failures: u32,
    connected_at_ns: Option<u64>,
    healthy: bool,
}

impl Reconnect {
    /// A schedule with `policy`, jitter from `rng` and attempts held to `budget`.
    pub fn new(policy: BackoffPolicy, rng: SplitMix64, budget: AttemptBudget) -> Self {
        Reconnect {
            policy,
            rng,
            budget,
            failures: 0,
            connected_at_ns: None,
            healthy: false,
        }
    }

    /// Failures since the last healthy stretch.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure (lost connection or failed attempt) at `now_ns` and answers when to
    /// attempt again: a full-jitter delay for the failures so far, later if the attempt budget
    /// needs it.
    pub fn schedule(&mut self, now_ns: u64) -> u64 {
        let delay = self.rng.up_to(self.policy.ceiling_ns(self.failures));
        self.failures = self.failures.saturating_add(1);
        self.connected_at_ns = None;
        self.budget.next_allowed(now_ns.saturating_add(delay))
    }

    /// Records an attempt starting at `now_ns` against the budget; `Err` with the allowed time
    /// when it would exceed it (the attempt must not be made).
    pub fn on_attempt(&mut self, now_ns: u64) -> Result<(), u64> {
        self.budget.record(now_ns)
    }

    /// The connection is up (handshakes done). Does not reset the backoff.
    pub fn on_connected(&mut self, now_ns: u64) {
        self.connected_at_ns = Some(now_ns);
        self.healthy = false;
    }

    /// Data arrived at `now_ns`. Once the connection has been up for
    /// [`BackoffPolicy::healthy_after`], the failure count resets; answers whether it is
    /// (now) healthy.
    pub fn on_healthy(&mut self, now_ns: u64) -> bool {
        if let Some(at) = self.connected_at_ns
            && !self.healthy
            && now_ns.saturating_sub(at) >= nanos(self.policy.healthy_after)
        {
            self.healthy = true;
            self.failures = 0;
        }
        self.healthy
    }

    /// The connection went down at `now_ns`; follow with [`Reconnect::schedule`].
    pub fn on_disconnect(&mut self, _now_ns: u64) {
        self.connected_at_ns = None;
        self.healthy = false;
    }

    /// The attempt budget.
    pub fn budget(&self) -> &AttemptBudget {
        &self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    fn schedule(seed: u64, max_attempts: usize) -> Reconnect {
        Reconnect::new(
            BackoffPolicy::default(),
            SplitMix64::new(seed),
            AttemptBudget::new(max_attempts, Duration::from_secs(300)),
        )
    }

    #[test]
    fn splitmix_is_reproducible_and_bounded() {
        let a: Vec<u64> = (0..5)
            .scan(SplitMix64::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(SplitMix64::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        // The published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut r = SplitMix64::new(1);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let v = r.up_to(3);
            seen[v as usize] = true;
        }
        assert_eq!(seen, [true; 4], "every value in [0, 3] comes up");
        assert_eq!(r.up_to(0), 0);
        let _ = r.up_to(u64::MAX);
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let p = BackoffPolicy::default();
        assert_eq!(p.ceiling_ns(0), 250 * MS);
        assert_eq!(p.ceiling_ns(1), 500 * MS);
        assert_eq!(p.ceiling_ns(6), 16 * SEC);
        assert_eq!(p.ceiling_ns(7), 30 * SEC);
        assert_eq!(p.ceiling_ns(63), 30 * SEC);
        assert_eq!(p.ceiling_ns(u32::MAX), 30 * SEC);
    }

    #[test]
    fn delays_grow_stay_under_the_cap_and_are_jittered() {
        // Over many seeds, the mean delay of the n-th failure follows the ceiling's growth.
        let mut means = [0u64; 10];
        for seed in 0..400 {
            let mut r = schedule(seed, 10_000);
            let mut now = 0;
            for (n, mean) in means.iter_mut().enumerate() {
                let at = r.schedule(now);
                let delay = at - now;
                assert!(delay <= BackoffPolicy::default().ceiling_ns(n as u32));
                assert!(delay <= 30 * SEC);
                *mean += delay / 400;
                now = at;
            }
        }
        for n in 1..7 {
            assert!(means[n] > means[n - 1] * 3 / 2, "{means:?}");
        }
        // Capped: the last ones hover around half the cap.
        assert!(means[9] > 12 * SEC && means[9] < 18 * SEC, "{means:?}");
        // Two seeds do not reconnect in lockstep.
        let (mut a, mut b) = (schedule(1, 10), schedule(2, 10));
        assert_ne!(a.schedule(0), b.schedule(0));
    }

    #[test]
    fn a_connect_alone_never_resets_only_a_healthy_stretch_does() {
        let mut r = schedule(3, 10_000);
        let mut now = 0;
        for _ in 0..5 {
            now = r.schedule(now);
            r.on_attempt(now).expect("within budget");
            r.on_connected(now);
            // Data flows, but for less than the healthy stretch.
            assert!(!r.on_healthy(now + 9 * SEC));
            r.on_disconnect(now + 9 * SEC);
            now += 9 * SEC;
        }
        assert_eq!(r.failures(), 5);
        now = r.schedule(now);
        r.on_connected(now);
        assert!(!r.on_healthy(now));
        assert_eq!(r.failures(), 6);
        assert!(r.on_healthy(now + 10 * SEC));
        assert_eq!(r.failures(), 0);
        // Data before any connect (or after a disconnect) resets nothing.
        r.on_disconnect(now + 11 * SEC);
        let _ = r.schedule(now + 11 * SEC);
        assert!(!r.on_healthy(now + 100 * SEC));
        assert_eq!(r.failures(), 1);
    }

    #[test]
    fn the_budget_delays_the_attempt_that_would_exceed_it() {
        let mut b = AttemptBudget::new(3, Duration::from_secs(10));
        for t in [0, SEC, 2 * SEC] {
            b.record(t).expect("within");
        }
        assert_eq!(b.next_allowed(3 * SEC), 10 * SEC);
        assert_eq!(b.record(3 * SEC), Err(10 * SEC));
        assert_eq!(b.in_window(3 * SEC), 3);
        b.record(10 * SEC).expect("the first left the window");
        assert_eq!(b.record(10 * SEC), Err(11 * SEC));
    }

    #[test]
    fn a_server_that_kills_every_connection_never_gets_more_than_the_budget() {
        // Every connection is cut right after its handshake, for an hour, by many seeds; the
        // budget is small enough that the backoff alone would exceed it.
        let policy = BackoffPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
            healthy_after: Duration::from_secs(10),
        };
        for seed in 0..20 {
            let mut r = Reconnect::new(
                policy,
                SplitMix64::new(seed),
                AttemptBudget::new(30, Duration::from_secs(300)),
            );
            let mut attempts = Vec::new();
            let mut now = 0;
            let mut gaps = Vec::new();
            while now < 3600 * SEC {
                let at = r.schedule(now);
                gaps.push(at - now);
                r.on_attempt(at).expect("schedule keeps within the budget");
                attempts.push(at);
                r.on_connected(at + MS);
                r.on_healthy(at + 2 * MS);
                r.on_disconnect(at + 2 * MS);
                now = at + 2 * MS;
            }
            for (i, &t) in attempts.iter().enumerate() {
                let in_window = attempts[i..]
                    .iter()
                    .take_while(|&&u| u < t + 300 * SEC)
                    .count();
                assert!(
                    in_window <= 30,
                    "seed {seed}: {in_window} attempts from {t}"
                );
            }
            // The budget, not the backoff, sets the pace: about 30 per 5 minutes.
            assert!(attempts.len() >= 12 * 30 && attempts.len() <= 12 * 30 + 30);
            assert!(r.failures() as usize == attempts.len());
        }
    }
}
