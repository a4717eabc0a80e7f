//! Request-weight accounting against an exchange's fixed-window limit, and a pacer for the
//! control messages of a stream connection.
//!
//! [`WeightWindow`] models Binance's `REQUEST_WEIGHT` limiter: a count per IP that starts again
//! at every window boundary (calendar minutes for the `1m` limiter), here held to a share of
//! the limit so other users of the same IP (another process, the WebSocket API) keep room.
//! A request is taken only when its weight fits the budget of the current window
//! ([`WeightWindow::try_take`]); the server's own count, reported with every response
//! (`X-MBX-USED-WEIGHT-1M`), replaces the local one ([`WeightWindow::observe`]): the server
//! sees every request from the IP, so its count wins. A 429 or 418 answer is a hard pause until
//! its `Retry-After` ([`WeightWindow::observe_response`]): nothing is taken before then, whatever
//! the count says, because requests after a 429 are what gets an IP banned.
//!
//! [`MessagePacer`] spaces the messages a client sends on a stream connection (SUBSCRIBE,
//! pings, pongs: Binance counts them all against 5 per second and closes with 1008 past that)
//! as a token bucket with an integer emission interval (GCRA): at most `burst + rate - 1`
//! messages in any one-second span, so `rate = 4, burst = 1` stays at 4.
//!
//! Time is passed in as nanoseconds, so tests are deterministic and the limiter runs on
//! whatever clock the caller keeps. For [`WeightWindow`] that clock must have the exchange's
//! window boundaries: nanoseconds since the Unix epoch (wall clock, corrected by the estimated
//! server offset where there is one). The pacer needs only a monotonic clock.

use std::time::Duration;

/// Why a limiter was built with values it cannot work with.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitConfigError {
    /// The share of the limit is not in (0, 1].
    #[error("share of the limit must be in (0, 1], got {share}")]
    Share {
        /// The share given.
        share: f64,
    },
    /// A limit, rate, burst or window of zero.
    #[error("{what} must be positive")]
    Zero {
        /// Which value.
        what: &'static str,
    },
}

/// Why a request cannot be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Wait {
    /// The current window's budget is spent; the next window starts at `until_ns`.
    #[error("weight budget of this window spent; next window at {until_ns} ns")]
    WindowFull {
        /// When to try again.
        until_ns: u64,
    },
    /// A 429 or 418 paused all requests until `until_ns`.
    #[error("paused by a {status} until {until_ns} ns")]
    Paused {
        /// When the pause ends.
        until_ns: u64,
        /// The HTTP status that caused it (429 or 418).
        status: u16,
    },
    /// The request weighs more than a whole window's budget: it can never be sent.
    #[error("weight {weight} exceeds the whole budget of {budget} per window")]
    TooHeavy {
        /// The request's weight.
        weight: u32,
        /// The budget per window.
        budget: u32,
    },
}

impl Wait {
    /// When to try again; `None` for [`Wait::TooHeavy`].
    pub fn until_ns(&self) -> Option<u64> {
        match *self {
            Wait::WindowFull { until_ns } | Wait::Paused { until_ns, .. } => Some(until_ns),
            Wait::TooHeavy { .. } => None,
        }
    }
}

/// The request weight of a Binance Spot `GET /api/v3/depth` for `limit` levels (5, 25, 50,
/// 250 for up to 100, 500, 1000, 5000; the server caps a larger limit at 5000).
pub fn spot_depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// The request weight of a Binance USD-M `GET /fapi/v1/depth` for `limit` levels (2, 5, 10, 20
/// for up to 50, 100, 500, 1000).
pub fn usdm_depth_weight(limit: u32) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// Fixed-window weight accounting: `share` of `limit` per `window`. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct WeightWindow {
    limit: u32,
    budget: u32,
    window_ns: u64,
    /// Start of the window `used` counts in.
    window_start_ns: u64,
    used: u32,
    paused_until_ns: u64,
    pause_status: u16,
}

impl WeightWindow {
    /// `limit` per `window` (Binance Spot: 6000 per minute), of which this client may use
    /// `share` (e.g. 0.5), rounded down.
    pub fn new(limit: u32, share: f64, window: Duration) -> Result<Self, LimitConfigError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(LimitConfigError::Share { share });
        }
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        if window_ns == 0 {
            return Err(LimitConfigError::Zero { what: "window" });
        }
        // `share` is at most 1, so the product fits.
        let budget = (f64::from(limit) * share).floor() as u32;
        if budget == 0 {
            return Err(LimitConfigError::Zero {
                what: "limit × share",
            });
        }
        Ok(WeightWindow {
            limit,
            budget,
            window_ns,
            window_start_ns: 0,
            used: 0,
            paused_until_ns: 0,
            pause_status: 0,
        })
    }

    /// The exchange's limit per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The weight this client may use per window.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Weight counted in the window that holds `now_ns`.
    pub fn used(&mut self, now_ns: u64) -> u32 {
        self.roll(now_ns);
        self.used
    }

    /// When the pause from a 429 or 418 ends; `None` when there is none at `now_ns`.
    pub fn paused_until(&self, now_ns: u64) -> Option<u64> {
        (now_ns < self.paused_until_ns).then_some(self.paused_until_ns)
    }

    /// Whether a 418 (IP ban) pause is in force at `now_ns`: worth an alert, not only a wait.
    pub fn banned(&self, now_ns: u64) -> bool {
        self.pause_status == 418 && now_ns < self.paused_until_ns
    }

    /// Takes `weight` from the window holding `now_ns` if it fits the budget and no pause is
    /// in force; else says until when to wait.
    pub fn try_take(&mut self, weight: u32, now_ns: u64) -> Result<(), Wait> {
        if weight > self.budget {
            return Err(Wait::TooHeavy {
                weight,
                budget: self.budget,
            });
        }
        if let Some(until_ns) = self.paused_until(now_ns) {
            return Err(Wait::Paused {
                until_ns,
                status: self.pause_status,
            });
        }
        self.roll(now_ns);
        if self.used.saturating_add(weight) > self.budget {
            return Err(Wait::WindowFull {
                until_ns: self.window_start_ns.saturating_add(self.window_ns),
            });
        }
        self.used += weight;
        Ok(())
    }

    /// Replaces the local count with the server's (`X-MBX-USED-WEIGHT-1M` of a response
    /// received at `now_ns`): it counts every request from the IP, this client's and others'.
    pub fn observe(&mut self, used: u32, now_ns: u64) {
        self.roll(now_ns);
        self.used = used;
    }

    /// Pauses every request until `until_ns` (a later pause already in force is kept).
    /// `status` is the HTTP status that asked for it (429, or 418 for a ban).
    pub fn pause_until(&mut self, until_ns: u64, status: u16) {
        if until_ns > self.paused_until_ns {
            self.paused_until_ns = until_ns;
            self.pause_status = status;
        }
    }

    /// Applies what a response received at `now_ns` says about the limit: the server's count
    /// when given, and for a 429 or 418 a pause of `retry_after` (or, without one, until the
    /// window ends).
    pub fn observe_response(
        &mut self,
        status: u16,
        used_weight: Option<u32>,
        retry_after: Option<Duration>,
        now_ns: u64,
    ) {
        if let Some(used) = used_weight {
            self.observe(used, now_ns);
        }
        if status == 429 || status == 418 {
            self.roll(now_ns);
            let until_ns = match retry_after {
                Some(wait) => {
                    now_ns.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX))
                }
                None => self.window_start_ns.saturating_add(self.window_ns),
            };
            self.pause_until(until_ns, status);
        }
    }

    /// Moves to the window holding `now_ns`, clearing the count when that is a new one. A
    /// time before the current window (a clock stepped back) keeps the current count: the
    /// safe side.
    fn roll(&mut self, now_ns: u64) {
        let start = now_ns - now_ns % self.window_ns;
        if start > self.window_start_ns {
            self.window_start_ns = start;
            self.used = 0;
        }
    }
}

/// A token bucket for outgoing control messages: `rate` per second with bursts of `burst`.
/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct MessagePacer {
    /// Nanoseconds per message, rounded up so the rate is never exceeded.
    interval_ns: u64,
    /// How far ahead of the schedule a burst may run.
    tolerance_ns: u64,
    /// The theoretical time the next message is due (GCRA).
    due_ns: u64,
    sent: u64,
}

impl MessagePacer {
    /// At most `rate` messages per second on average, `burst` at once (Binance Spot streams:
    /// rate 4, burst 1 under a limit of 5 per second).
    pub fn new(rate: u32, burst: u32) -> Result<Self, LimitConfigError> {
        if rate == 0 {
            return Err(LimitConfigError::Zero { what: "rate" });
        }
        if burst == 0 {
            return Err(LimitConfigError::Zero { what: "burst" });
        }
        let interval_ns = 1_000_000_000u64.div_ceil(u64::from(rate));
        Ok(MessagePacer {
            interval_ns,
            tolerance_ns: interval_ns * u64::from(burst - 1),
            due_ns: 0,
            sent: 0,
        })
    }

    /// The earliest time at or after `now_ns` when a message may be sent.
    pub fn next_allowed(&self, now_ns: u64) -> u64 {
        now_ns.max(self.due_ns.saturating_sub(self.tolerance_ns))
    }

    /// Counts a message sent at `now_ns` if the pacer allows it then; else answers when it
    /// will. Every control frame goes through here, pongs included.
    pub fn try_send(&mut self, now_ns: u64) -> Result<(), u64> {
        let at = self.next_allowed(now_ns);
        if at > now_ns {
            return Err(at);
        }
        self.due_ns = self.due_ns.max(now_ns) + self.interval_ns;
        self.sent += 1;
        Ok(())
    }

    /// Messages counted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: u64 = 60_000_000_000;
    const SEC: u64 = 1_000_000_000;

    fn spot() -> WeightWindow {
        WeightWindow::new(6000, 0.5, Duration::from_secs(60)).expect("valid")
    }

    #[test]
    fn depth_weights_follow_the_published_tables() {
        let spot: Vec<u32> = [1, 100, 101, 500, 501, 1000, 1001, 5000, 9999]
            .map(spot_depth_weight)
            .to_vec();
        assert_eq!(spot, [5, 5, 25, 25, 50, 50, 250, 250, 250]);
        let usdm: Vec<u32> = [5, 50, 51, 100, 101, 500, 501, 1000]
            .map(usdm_depth_weight)
            .to_vec();
        assert_eq!(usdm, [2, 2, 5, 5, 10, 10, 20, 20]);
    }

    #[test]
    fn refuses_unworkable_settings() {
        let minute = Duration::from_secs(60);
        assert!(matches!(
            WeightWindow::new(6000, 0.0, minute),
            Err(LimitConfigError::Share { .. })
        ));
        assert!(matches!(
            WeightWindow::new(6000, 1.5, minute),
            Err(LimitConfigError::Share { .. })
        ));
        assert!(matches!(
            WeightWindow::new(6000, f64::NAN, minute),
            Err(LimitConfigError::Share { .. })
        ));
        assert!(WeightWindow::new(6000, 0.5, Duration::ZERO).is_err());
        assert!(WeightWindow::new(1, 0.5, minute).is_err());
        assert!(MessagePacer::new(0, 1).is_err());
        assert!(MessagePacer::new(4, 0).is_err());
    }

    #[test]
    fn the_budget_is_the_share_and_resets_at_the_window_boundary() {
        let mut w = spot();
        assert_eq!(w.budget(), 3000);
        let t0 = 1_700_000_000 * SEC + 59 * SEC; // one second before a minute boundary
        // 12 snapshots of weight 250 fill the budget exactly.
        for _ in 0..12 {
            w.try_take(250, t0).expect("fits");
        }
        assert_eq!(w.used(t0), 3000);
        let boundary = t0 - t0 % MIN + MIN;
        assert_eq!(
            w.try_take(1, t0),
            Err(Wait::WindowFull { until_ns: boundary })
        );
        assert_eq!(
            w.try_take(1, boundary - 1),
            Err(Wait::WindowFull { until_ns: boundary })
        );
        w.try_take(250, boundary).expect("a new window");
        assert_eq!(w.used(boundary), 250);
        assert_eq!(
            w.try_take(3001, boundary),
            Err(Wait::TooHeavy {
                weight: 3001,
                budget: 3000
            })
        );
    }

    #[test]
    fn the_servers_count_replaces_the_local_one() {
        let mut w = spot();
        let t = 5 * MIN;
        w.try_take(50, t).expect("fits");
        // Another process on the IP has used 2900.
        w.observe(2950, t + SEC);
        assert_eq!(
            w.try_take(100, t + SEC),
            Err(Wait::WindowFull { until_ns: 6 * MIN })
        );
        w.try_take(50, t + SEC).expect("exactly the rest");
        // A lower server count (a local take whose request never arrived) lowers it too.
        w.observe(10, t + 2 * SEC);
        assert_eq!(w.used(t + 2 * SEC), 10);
        // A count observed in a later window belongs to that window.
        w.observe(7, 6 * MIN + 1);
        assert_eq!(w.used(6 * MIN + 2), 7);
    }

    #[test]
    fn a_429_pauses_everything_until_retry_after() {
        let mut w = spot();
        let t = 10 * MIN + 30 * SEC;
        w.observe_response(429, Some(100), Some(Duration::from_secs(45)), t);
        let until = t + 45 * SEC;
        assert_eq!(w.paused_until(t), Some(until));
        // Past the window boundary, with a fresh count, still paused.
        assert_eq!(
            w.try_take(1, 11 * MIN + SEC),
            Err(Wait::Paused {
                until_ns: until,
                status: 429
            })
        );
        assert!(!w.banned(t));
        w.try_take(1, until).expect("pause over");
        // A shorter pause never cuts a longer one short.
        w.pause_until(until + SEC, 429);
        w.observe_response(429, None, Some(Duration::from_millis(1)), until);
        assert_eq!(w.paused_until(until), Some(until + SEC));
    }

    #[test]
    fn a_418_is_a_ban_and_a_429_without_retry_after_waits_out_the_window() {
        let mut w = spot();
        let t = 3 * MIN + 20 * SEC;
        w.observe_response(429, None, None, t);
        assert_eq!(w.paused_until(t), Some(4 * MIN));
        w.observe_response(418, None, Some(Duration::from_secs(120)), t);
        assert!(w.banned(t));
        assert_eq!(
            w.try_take(1, 4 * MIN).map_err(|e| e.until_ns()),
            Err(Some(t + 120 * SEC))
        );
        assert!(!w.banned(t + 120 * SEC));
        // An ordinary answer only corrects the count.
        w.observe_response(200, Some(42), None, t + 120 * SEC);
        assert_eq!(w.used(t + 120 * SEC), 42);
        assert_eq!(w.paused_until(t + 120 * SEC), None);
    }

    #[test]
    fn the_pacer_keeps_four_per_second_with_no_burst() {
        let mut p = MessagePacer::new(4, 1).expect("valid");
        let t = 7 * SEC;
        p.try_send(t).expect("first");
        assert_eq!(p.try_send(t), Err(t + SEC / 4));
        assert_eq!(p.next_allowed(t + 1), t + SEC / 4);
        p.try_send(t + SEC / 4).expect("on schedule");
        // Idle time does not bank tokens beyond the burst.
        let later = t + 100 * SEC;
        p.try_send(later).expect("after idle");
        assert_eq!(p.try_send(later), Err(later + SEC / 4));
        assert_eq!(p.sent(), 3);
    }

    /// Sends as fast as the pacer allows from `start`, plus extra attempts at the times in
    /// `pokes`, and returns the send times.
    fn storm(p: &mut MessagePacer, start: u64, pokes: &[u64], count: usize) -> Vec<u64> {
        let mut sent = Vec::new();
        let mut pokes = pokes.iter().map(|d| start + d).peekable();
        let mut now = start;
        while sent.len() < count {
            if p.try_send(now).is_ok() {
                sent.push(now);
            }
            // The next moment something tries to send: a poke, or the pacer's own answer.
            let due = p.next_allowed(now);
            now = match pokes.peek() {
                Some(&poke) if poke < due && poke >= now => {
                    pokes.next();
                    poke
                }
                _ => due.max(now + 1),
            };
        }
        sent
    }

    proptest! {
        /// Under any storm of attempts, no span of one second holds more than
        /// `burst + rate - 1` messages.
        #[test]
        fn no_second_holds_more_than_the_bucket_allows(
            rate in 1u32..12,
            burst in 1u32..4,
            mut pokes in proptest::collection::vec(0u64..5 * SEC, 0..200),
        ) {
            pokes.sort_unstable();
            let mut p = MessagePacer::new(rate, burst).expect("valid");
            let sent = storm(&mut p, 3 * SEC, &pokes, 60);
            let cap = (burst + rate - 1) as usize;
            for (i, &t) in sent.iter().enumerate() {
                let within = sent[i..].iter().take_while(|&&u| u < t + SEC).count();
                prop_assert!(within <= cap, "{within} sends in a second from {t}, cap {cap}");
            }
            // And it is not slower than the rate: 60 sends take no longer than 60 intervals.
            let span = sent[sent.len() - 1] - sent[0];
            prop_assert!(span <= 60 * SEC.div_ceil(u64::from(rate)));
        }

        /// Whatever is taken and observed, a take never lets the local count pass the budget.
        #[test]
        fn takes_never_exceed_the_budget(
            steps in proptest::collection::vec((0u32..400, 0u64..20 * SEC, proptest::option::of(0u32..3500)), 1..300),
        ) {
            let mut w = spot();
            let mut now = 0u64;
            for (weight, dt, seen) in steps {
                now += dt;
                if let Some(seen) = seen {
                    w.observe(seen, now);
                }
                let before = w.used(now);
                match w.try_take(weight, now) {
                    Ok(()) => prop_assert!(before + weight <= w.budget()),
                    Err(Wait::WindowFull { until_ns }) => {
                        prop_assert!(before + weight > w.budget());
                        prop_assert!(until_ns > now && until_ns % MIN == 0);
                    }
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
        }
    }
}
