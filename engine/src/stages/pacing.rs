//! Replay pacing: when the feed stage may release a recorded frame.
//!
//! `max` releases every frame at once. `paced` releases a frame at the engine time
//! `start + (t_recv − first t_recv) / speed`, where `start` is when the first frame was
//! released, or at `start + n / rate` for a fixed rate. A frame whose time has already passed
//! (the pipeline fell behind, or the recording's clock stepped back) is released at once; the
//! schedule does not shift, so a stall is caught up rather than carried forward.

use crate::config::PacingSpec;

/// Decides the release time of each frame. See the module docs.
#[derive(Debug, Clone)]
pub struct Pacer {
    spec: PacingSpec,
    /// Engine ns of the first release and the first frame's `t_recv`.
    origin: Option<(u64, u64)>,
    released: u64,
}

impl Pacer {
    /// A pacer following `spec`.
    pub fn new(spec: PacingSpec) -> Self {
        Self {
            spec,
            origin: None,
            released: 0,
        }
    }

    /// Whether frames are released at once.
    pub fn is_max(&self) -> bool {
        matches!(self.spec, PacingSpec::Max)
    }

    /// The engine time at which the next frame, received at `t_recv`, is due; `now` is the
    /// engine time at the call (it becomes the schedule's origin on the first frame). Call once
    /// per frame, in order.
    #[inline]
    pub fn due(&mut self, t_recv: u64, now: u64) -> u64 {
        let n = self.released;
        self.released += 1;
        let (start, first) = *self.origin.get_or_insert((now, t_recv));
        match self.spec {
            PacingSpec::Max => now,
            PacingSpec::Recorded { speed } => {
                let gap = t_recv.saturating_sub(first);
                let scaled = if speed == 1.0 {
                    gap
                } else {
                    (gap as f64 / speed) as u64
                };
                start.saturating_add(scaled)
            }
            PacingSpec::Rate { per_second } => {
                let offset = u128::from(n) * 1_000_000_000 / u128::from(per_second.max(1));
                start.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_pace_scales_gaps_from_the_first_frame() {
        let mut p = Pacer::new(PacingSpec::Recorded { speed: 2.0 });
        assert_eq!(p.due(1_000_000, 500), 500);
        assert_eq!(p.due(1_000_400, 600), 700);
        // A clock step back releases at once (due in the past).
        assert_eq!(p.due(999_000, 700), 500);
        let mut p = Pacer::new(PacingSpec::Recorded { speed: 1.0 });
        assert_eq!(p.due(10, 0), 0);
        assert_eq!(p.due(1_000_010, 5), 1_000_000);
    }

    #[test]
    fn fixed_rate_ignores_recorded_times() {
        let mut p = Pacer::new(PacingSpec::Rate { per_second: 1_000 });
        assert_eq!(p.due(7, 100), 100);
        assert_eq!(p.due(7, 100), 1_000_100);
        assert_eq!(p.due(0, 100), 2_000_100);
    }

    #[test]
    fn max_is_always_now() {
        let mut p = Pacer::new(PacingSpec::Max);
        assert!(p.is_max());
        assert_eq!(p.due(5, 42), 42);
        assert_eq!(p.due(1, 43), 43);
    }
}
