//! [`EventBarrier`]: keeps the strategy and a simulated venue in event-time order across threads.
//!
//! A simulated venue runs on event time, but its reports travel back to the strategy over a ring,
//! and on their own the two stages would meet at whatever point the host's speed put them: the
//! strategy could decide on a view before or after a fill that was due earlier, and the run
//! would depend on the machine and the placement. The barrier makes the order exact with three
//! values the two stages publish to each other (no locks, one writer each):
//!
//! - the strategy publishes [`EventBarrier::strategy_at`], the event time `T` of the input it
//!   is about to handle, once everything it sent before is in the order ring;
//! - the gateway, having read `T` and then emptied the order ring, moves its venues to `T`
//!   (requests that arrive before `T` are acted on, reports due before `T` are released) and,
//!   once those reports are in the report ring, publishes [`EventBarrier::venue_at`] = `T`;
//! - when every venue is idle (nothing resting, travelling or waiting for delivery) the gateway
//!   publishes how many order messages it had handled then ([`EventBarrier::quiet_at`]): while
//!   the strategy has sent no more than that, no report can come, and it need not wait.
//!
//! So before an input at `T` the strategy has applied exactly the reports due before `T`, in
//! the order the venues released them, whatever the threads did meanwhile. Inputs at the same
//! event time as the last one need no new round; with strategy and gateway on one thread (the
//! placements `1` and `2`) the round costs one pass of the thread's loop.
//!
//! Only event-time venues need this: with a live venue the builder makes no barrier and reports
//! are applied as they come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// The values the strategy and gateway stages publish to each other. See the module docs.
#[derive(Debug, Default)]
pub struct EventBarrier {
    strategy_at: CachePadded<AtomicU64>,
    venue_at: CachePadded<AtomicU64>,
    quiet_at: CachePadded<AtomicU64>,
}

impl EventBarrier {
    /// A barrier at event time 0 with idle venues, shared by the two stages.
    pub fn shared() -> Arc<EventBarrier> {
        Arc::new(EventBarrier::default())
    }

    /// Strategy: the event time of the input it is about to handle, published once all it
    /// sent before is in the order ring.
    #[inline]
    pub fn strategy_at(&self) -> u64 {
        self.strategy_at.load(Ordering::Acquire)
    }

    /// Strategy side of [`EventBarrier::strategy_at`].
    #[inline]
    pub fn publish_strategy_at(&self, t: u64) {
        self.strategy_at.store(t, Ordering::Release);
    }

    /// Gateway: every venue event before this event time has happened, and every report due
    /// before it is in the report ring.
    #[inline]
    pub fn venue_at(&self) -> u64 {
        self.venue_at.load(Ordering::Acquire)
    }

    /// Gateway side of [`EventBarrier::venue_at`].
    #[inline]
    pub fn publish_venue_at(&self, t: u64) {
        self.venue_at.store(t, Ordering::Release);
    }

    /// Gateway: the number of order messages it had handled when it last found every venue
    /// idle, with all reports in the report ring.
    #[inline]
    pub fn quiet_at(&self) -> u64 {
        self.quiet_at.load(Ordering::Acquire)
    }

    /// Gateway side of [`EventBarrier::quiet_at`].
    #[inline]
    pub fn publish_quiet_at(&self, orders_handled: u64) {
        self.quiet_at.store(orders_handled, Ordering::Release);
    }

    /// Whether the strategy, having sent `orders_sent` order messages, has every report due
    /// before `t` in its ring (once it has published `t`).
    #[inline]
    pub fn reports_complete_before(&self, t: u64, orders_sent: u64) -> bool {
        self.quiet_at() == orders_sent || self.venue_at() >= t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_once_the_venue_has_reached_the_time_or_is_quiet() {
        let b = EventBarrier::shared();
        // Nothing sent, nothing can come.
        assert!(b.reports_complete_before(100, 0));
        // One order out: wait for the venue to reach the time.
        assert!(!b.reports_complete_before(100, 1));
        b.publish_strategy_at(100);
        assert_eq!(b.strategy_at(), 100);
        b.publish_venue_at(99);
        assert!(!b.reports_complete_before(100, 1));
        b.publish_venue_at(100);
        assert!(b.reports_complete_before(100, 1));
        assert!(!b.reports_complete_before(101, 1));
        // Quiet after the one order: nothing more can come at any time.
        b.publish_quiet_at(1);
        assert!(b.reports_complete_before(u64::MAX, 1));
        assert!(!b.reports_complete_before(u64::MAX, 2));
    }
}
