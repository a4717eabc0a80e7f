//! A copy of an order session's state for other threads: the venue's own counters are plain
//! fields on the gateway thread; this mirror is stored from there when they change, with relaxed
//! atomic stores on lines of its own, so a metrics thread reads them without a lock and without
//! the gateway ever waiting.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use super::venue::SessionStats;

/// The session's readiness and [`SessionStats`], as last published by the gateway thread.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct SessionMirror {
    ready: AtomicBool,
    last_error: AtomicI32,
    counters: [AtomicU64; COUNTERS],
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
}
