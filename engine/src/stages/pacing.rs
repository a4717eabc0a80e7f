//! Replay pacing: when the feed stage may release a recorded frame.
//!
//! `max` releases every frame at once. `paced` releases a frame at the engine time
//! `start + (t_recv − first t_recv) / speed`, where `start` is when the first frame was
//! released, or at `start + n / rate` for a fixed rate. A frame whose time has already passed
//! (the pipeline fell behind, or the recording's clock stepped back) is released at once; the
//! schedule does not shift, so a stall is caught up rather than carried forward.
//!
//! One wait is capped (`pacing.max_wait_ms`): a frame scheduled more than the cap after the
//! latest frame before it (a quiet night, a capture paused and resumed, a clock jump) is
//! scheduled at the cap instead, and every later frame moves earlier by the same amount, so the
//! gaps after the jump are kept. Each cut is counted with the time it skipped, so a report can
//! say that the run did not follow the recording's clock there.

use crate::config::PacingSpec;

/// Decides the release time of each frame. See the module docs.
#[derive(Debug, Clone)]
pub struct Pacer {
    spec: PacingSpec,
    /// Engine ns of the first release and the first frame's `t_recv`.
    origin: Option<(u64, u64)>,
    released: u64,
    /// The latest time any frame so far was due at (after cuts).
    latest_due: u64,
    /// Waiting cut from the schedule so far, ns: every later frame is due this much earlier.
    skipped_ns: u64,
    /// Waits that were cut.
    jumps: u64,
}

impl Pacer {
    /// A pacer following `spec`.
    pub fn new(spec: PacingSpec) -> Self {
        Self {
            spec,
            origin: None,
            released: 0,
            latest_due: 0,
            skipped_ns: 0,
            jumps: 0,
        }
    }

    /// Whether frames are released at once.
    pub fn is_max(&self) -> bool {
        matches!(self.spec, PacingSpec::Max)
    }

    /// Waits longer than the cap that were cut to it.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// The waiting those cuts skipped, ns of engine time (recorded time divided by the speed).
    pub fn skipped_ns(&self) -> u64 {
        self.skipped_ns
    }

    /// The engine time at which the next frame, received at `t_recv`, is due; `now` is the
    /// engine time at the call (it becomes the schedule's origin on the first frame). Call once
    /// per frame, in order.
    #[inline]
    pub fn due(&mut self, t_recv: u64, now: u64) -> u64 {
        let n = self.released;
        self.released += 1;
        let (start, first) = *self.origin.get_or_insert((now, t_recv));
        let (scheduled, max_wait) = match self.spec {
            PacingSpec::Max => return now,
            PacingSpec::Recorded { speed, max_wait_ns } => {
                let gap = t_recv.saturating_sub(first);
                let scaled = if speed == 1.0 {
                    gap
                } else {
                    (gap as f64 / speed) as u64
                };
                (start.saturating_add(scaled), max_wait_ns)
            }
            PacingSpec::Rate {
                per_second,
                max_wait_ns,
            } => {
                let offset = u128::from(n) * 1_000_000_000 / u128::from(per_second.max(1));
                (
                    start.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX)),
                    max_wait_ns,
                )
            }
        };
        let mut due = scheduled.saturating_sub(self.skipped_ns).max(start);
        if n > 0
            && let Some(max) = max_wait
        {
            let limit = self.latest_due.saturating_add(max);
            if due > limit {
                self.jumps += 1;
                self.skipped_ns += due - limit;
                due = limit;
            }
        }
        self.latest_due = self.latest_due.max(due);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_pace_scales_gaps_from_the_first_frame() {
        let mut p = Pacer::new(PacingSpec::Recorded {
            speed: 2.0,
            max_wait_ns: None,
        });
        assert_eq!(p.due(1_000_000, 500), 500);
        assert_eq!(p.due(1_000_400, 600), 700);
        // A clock step back releases at once (due in the past).
        assert_eq!(p.due(999_000, 700), 500);
        let mut p = Pacer::new(PacingSpec::Recorded {
            speed: 1.0,
            max_wait_ns: None,
        });
        assert_eq!(p.due(10, 0), 0);
        assert_eq!(p.due(1_000_010, 5), 1_000_000);
    }

    #[test]
    fn fixed_rate_ignores_recorded_times() {
        let mut p = Pacer::new(PacingSpec::Rate {
            per_second: 1_000,
            max_wait_ns: None,
        });
        assert_eq!(p.due(7, 100), 100);
        assert_eq!(p.due(7, 100), 1_000_100);
        assert_eq!(p.due(0, 100), 2_000_100);
    }

    #[test]
    fn a_long_wait_is_cut_to_the_cap_and_later_gaps_are_kept() {
        let mut p = Pacer::new(PacingSpec::Recorded {
            speed: 1.0,
            max_wait_ns: Some(1_000),
        });
        assert_eq!(p.due(0, 100), 100);
        assert_eq!(p.due(500, 100), 600);
        // 1 000 000 ns after the last frame: cut to 1 000.
        assert_eq!(p.due(1_000_500, 100), 1_600);
        assert_eq!((p.jumps(), p.skipped_ns()), (1, 999_000));
        // The gaps after the jump are as recorded.
        assert_eq!(p.due(1_000_700, 100), 1_800);
        // A step back is released at once and moves nothing; the next gap counts from the
        // latest frame.
        assert_eq!(p.due(1_000_000, 100), 1_100);
        assert_eq!(p.due(1_000_900, 100), 2_000);
        assert_eq!(p.jumps(), 1);
        // At speed 2 the cap applies to the scaled wait.
        let mut p = Pacer::new(PacingSpec::Recorded {
            speed: 2.0,
            max_wait_ns: Some(1_000),
        });
        assert_eq!(p.due(0, 0), 0);
        assert_eq!(p.due(2_000, 0), 1_000);
        assert_eq!(p.due(6_000, 0), 2_000);
        assert_eq!((p.jumps(), p.skipped_ns()), (1, 1_000));
    }

    #[test]
    fn the_cap_applies_to_a_fixed_rate() {
        let mut p = Pacer::new(PacingSpec::Rate {
            per_second: 1,
            max_wait_ns: Some(250_000_000),
        });
        assert_eq!(p.due(0, 0), 0);
        assert_eq!(p.due(0, 0), 250_000_000);
        assert_eq!(p.due(0, 0), 500_000_000);
        assert_eq!((p.jumps(), p.skipped_ns()), (2, 1_500_000_000));
    }

    #[test]
    fn max_is_always_now() {
        let mut p = Pacer::new(PacingSpec::Max);
        assert!(p.is_max());
        assert_eq!(p.due(5, 42), 42);
        assert_eq!(p.due(1, 43), 43);
    }
}
