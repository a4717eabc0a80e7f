//! A copy of an order session's state for other threads: the venue's own counters are plain
//! fields on the gateway thread; this mirror is stored from there when they change, with relaxed
//! atomic stores on lines of its own, so a metrics thread reads them without a lock and without
//! the gateway ever waiting.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};

use pinion_feed::exchange_info::RateLimitKind;

use super::breaker::BreakerState;
use super::limits::{MAX_WINDOWS, WindowUsage};
use super::venue::SessionStats;

/// The circuit breaker's state without its details, as the mirror keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerPhase {
    /// Orders flow.
    #[default]
    Closed,
    /// New orders are refused.
    Open,
    /// One probe order may go (or is out).
    HalfOpen,
}

impl BreakerPhase {
    /// The phase of `state`.
    pub const fn of(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed { .. } => Self::Closed,
            BreakerState::Open { .. } => Self::Open,
            BreakerState::HalfOpen { .. } => Self::HalfOpen,
        }
    }

    /// Every phase, in code order.
    pub const ALL: [Self; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    /// A label value: `closed`, `open`, `half_open`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    const fn code(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }

    const fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// One rate-limit window as published: what it counts (0: no window), its length, limit,
/// count and the window the count is of.
#[derive(Debug, Default)]
struct LimitSlot {
    kind: AtomicU8,
    window_ms: AtomicU64,
    limit: AtomicU64,
    count: AtomicU64,
    bucket: AtomicU64,
}

const fn kind_code(k: RateLimitKind) -> u8 {
    match k {
        RateLimitKind::RequestWeight => 1,
        RateLimitKind::Orders => 2,
        RateLimitKind::RawRequests => 3,
    }
}

const fn kind_of(c: u8) -> Option<RateLimitKind> {
    match c {
        1 => Some(RateLimitKind::RequestWeight),
        2 => Some(RateLimitKind::Orders),
        3 => Some(RateLimitKind::RawRequests),
        _ => None,
    }
}

/// The session's readiness and [`SessionStats`], as last published by the gateway thread.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct SessionMirror {
    ready: AtomicBool,
    last_error: AtomicI32,
    counters: [AtomicU64; COUNTERS],
    limits: [LimitSlot; MAX_WINDOWS],
    breaker: AtomicU8,
}

const COUNTERS: usize = 21;

/// The counters of a [`SessionStats`] in a fixed order.
fn counters(s: &SessionStats) -> [u64; COUNTERS] {
    [
        s.connects,
        s.ready,
        s.disconnects,
        s.logon_refused,
        s.requests,
        s.answers,
        s.bad_frames,
        s.not_connected,
        s.rate_refused,
        s.foreign_open,
        s.cancel_all,
        s.reconciled_fills,
        s.status_queries,
        s.rate_limited,
        s.banned,
        s.unauthorized,
        s.limit_drift,
        s.limit_checks,
        s.breaker_opened,
        s.breaker_refused,
        u64::from(s.clock_drift_alarm),
    ]
}

impl SessionMirror {
    /// Publishes `ready` and `stats` (gateway thread only).
    #[inline]
    pub fn store(&self, ready: bool, stats: &SessionStats) {
        self.ready.store(ready, Ordering::Relaxed);
        self.last_error.store(stats.last_error, Ordering::Relaxed);
        for (slot, v) in self.counters.iter().zip(counters(stats)) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    /// Publishes the rate-limit model's windows (gateway thread only): a few relaxed stores
    /// each, on the mirror's own lines.
    #[inline]
    pub fn store_limits(&self, usage: impl Iterator<Item = WindowUsage>) {
        let mut n = 0;
        for (slot, u) in self.limits.iter().zip(usage) {
            slot.window_ms.store(u.window_ms, Ordering::Relaxed);
            slot.limit.store(u64::from(u.limit), Ordering::Relaxed);
            slot.count.store(u64::from(u.count), Ordering::Relaxed);
            slot.bucket.store(u.bucket, Ordering::Relaxed);
            slot.kind.store(kind_code(u.kind), Ordering::Relaxed);
            n += 1;
        }
        for slot in &self.limits[n..] {
            slot.kind.store(0, Ordering::Relaxed);
        }
    }

    /// The rate-limit windows as last published.
    pub fn limits(&self) -> Vec<WindowUsage> {
        self.limits
            .iter()
            .filter_map(|s| {
                Some(WindowUsage {
                    kind: kind_of(s.kind.load(Ordering::Relaxed))?,
                    window_ms: s.window_ms.load(Ordering::Relaxed),
                    limit: u32::try_from(s.limit.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
                    count: u32::try_from(s.count.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
                    bucket: s.bucket.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// Publishes the circuit breaker's phase (gateway thread only).
    #[inline]
    pub fn store_breaker(&self, phase: BreakerPhase) {
        self.breaker.store(phase.code(), Ordering::Relaxed);
    }

    /// The circuit breaker's phase as last published.
    pub fn breaker(&self) -> BreakerPhase {
        BreakerPhase::from_code(self.breaker.load(Ordering::Relaxed))
    }

    /// Whether the session was ready (logged on, subscribed, reconciled) when last published.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The counters as last published.
    pub fn stats(&self) -> SessionStats {
        let c: [u64; COUNTERS] = std::array::from_fn(|i| self.counters[i].load(Ordering::Relaxed));
        SessionStats {
            connects: c[0],
            ready: c[1],
            disconnects: c[2],
            logon_refused: c[3],
            requests: c[4],
            answers: c[5],
            bad_frames: c[6],
            not_connected: c[7],
            rate_refused: c[8],
            foreign_open: c[9],
            cancel_all: c[10],
            reconciled_fills: c[11],
            status_queries: c[12],
            last_error: self.last_error.load(Ordering::Relaxed),
            rate_limited: c[13],
            banned: c[14],
            unauthorized: c[15],
            limit_drift: c[16],
            limit_checks: c[17],
            breaker_opened: c[18],
            breaker_refused: c[19],
            clock_drift_alarm: c[20] != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_session_reads_back() {
        let m = SessionMirror::default();
        let s = SessionStats {
            connects: 1,
            ready: 2,
            disconnects: 3,
            logon_refused: 4,
            requests: 5,
            answers: 6,
            bad_frames: 7,
            not_connected: 8,
            rate_refused: 9,
            foreign_open: 10,
            cancel_all: 11,
            reconciled_fills: 12,
            status_queries: 13,
            last_error: -1003,
            rate_limited: 14,
            banned: 15,
            unauthorized: 16,
            limit_drift: 17,
            limit_checks: 18,
            breaker_opened: 19,
            breaker_refused: 20,
            clock_drift_alarm: true,
        };
        assert!(!m.is_ready());
        m.store(true, &s);
        assert!(m.is_ready());
        assert_eq!(m.stats(), s);
    }

    #[test]
    fn limits_and_the_breaker_read_back_and_a_window_past_counts_nothing() {
        let m = SessionMirror::default();
        assert!(m.limits().is_empty());
        assert_eq!(m.breaker(), BreakerPhase::Closed);
        let w = |kind, window_ms, limit, count, bucket| WindowUsage {
            kind,
            window_ms,
            limit,
            count,
            bucket,
        };
        let two = [
            w(RateLimitKind::RequestWeight, 60_000, 6_000, 42, 7),
            w(RateLimitKind::Orders, 10_000, 100, 3, 43),
        ];
        m.store_limits(two.iter().copied());
        assert_eq!(m.limits(), two);
        // Fewer windows later: the rest are cleared.
        m.store_limits(two[..1].iter().copied());
        assert_eq!(m.limits(), two[..1]);
        assert_eq!(two[0].count_at(7 * 60_000 + 59_999), 42);
        assert_eq!(two[0].count_at(8 * 60_000), 0, "the window rolled");
        m.store_breaker(BreakerPhase::of(BreakerState::Open { until_ns: 5 }));
        assert_eq!(m.breaker(), BreakerPhase::Open);
        m.store_breaker(BreakerPhase::of(BreakerState::HalfOpen { probing: true }));
        assert_eq!(m.breaker(), BreakerPhase::HalfOpen);
    }
}
