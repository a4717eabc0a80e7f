//! The exit policy: what a live run does with the orders it has open at the exchange when it
//! stops cleanly (SIGTERM, Ctrl-C, the end of `--duration`), and what it reports it did.
//!
//! - [`ExitPolicy::CancelAll`] (the default): every open order of the traded symbols is
//!   cancelled with one `openOrders.cancelAll`, orders this run did not place included.
//! - [`ExitPolicy::KeepProtective`]: the strategy stage cancels the orders its gates know open
//!   whose type does not protect a position ([`OrderType::is_protective`]); protective orders
//!   and orders this run did not place stay at the exchange, to guard the position after the
//!   engine is gone.
//! - [`ExitPolicy::Leave`]: nothing is cancelled.
//!
//! Either way the order session then waits (within its grace) for the answers to what it sent,
//! so the final states in the account summary are the exchange's, and [`ExitOutcome`] counts
//! what happened to each order open at the stop.

use pinion_strategy::OrderType;

/// What to do with open orders on a clean stop. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ExitPolicy {
    /// Cancel every open order of the traded symbols.
    #[default]
    CancelAll,
    /// Cancel all but the protective orders (stop-loss and take-profit types).
    KeepProtective,
    /// Cancel nothing.
    Leave,
}

impl ExitPolicy {
    /// Every policy, in the order configs list them.
    pub const ALL: [Self; 3] = [Self::CancelAll, Self::KeepProtective, Self::Leave];

    /// The name configs and reports use (`cancel_all`, `keep_protective`, `leave`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CancelAll => "cancel_all",
            Self::KeepProtective => "keep_protective",
            Self::Leave => "leave",
        }
    }

    /// The policy named `name`, if any is.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether the order session cancels every open order of its symbol itself at the stop.
    pub const fn venue_cancels_all(self) -> bool {
        matches!(self, Self::CancelAll)
    }

    /// Whether an open order of type `ty` is cancelled at the stop under this policy.
    pub const fn cancels(self, ty: OrderType) -> bool {
        match self {
            Self::CancelAll => true,
            Self::KeepProtective => !ty.is_protective(),
            Self::Leave => false,
        }
    }
}

impl std::fmt::Display for ExitPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the exit policy did with the orders one order session had open when the run stopped.
/// The counts are of this run's orders (the order table's); with [`ExitPolicy::CancelAll`] the
/// exchange also cancels any order of the symbol this run did not place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitOutcome {
    /// The policy that ran.
    pub policy: ExitPolicy,
    /// Whether the session was connected when the run stopped. When it was not, nothing could
    /// be cancelled: every order open at the stop is left open (as far as this run knows).
    pub connected: bool,
    /// Orders open (or with a request in flight) when the run stopped.
    pub open_at_stop: usize,
    /// Of those, cancelled by the end of the session.
    pub cancelled: usize,
    /// Of those, filled or expired by the end of the session.
    pub closed_otherwise: usize,
    /// Of those, still open at the end (kept, left, or not known closed).
    pub left_open: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_default_cancels_everything() {
        for p in ExitPolicy::ALL {
            assert_eq!(ExitPolicy::from_name(p.as_str()), Some(p));
        }
        assert_eq!(ExitPolicy::from_name("cancel-all"), None);
        assert_eq!(ExitPolicy::default(), ExitPolicy::CancelAll);
        assert!(ExitPolicy::CancelAll.venue_cancels_all());
        assert!(!ExitPolicy::KeepProtective.venue_cancels_all());
        assert!(!ExitPolicy::Leave.venue_cancels_all());
    }

    #[test]
    fn only_keep_protective_sorts_by_type() {
        for ty in [OrderType::Limit, OrderType::LimitMaker, OrderType::Market] {
            assert!(ExitPolicy::CancelAll.cancels(ty));
            assert!(!ExitPolicy::Leave.cancels(ty));
            assert_eq!(
                ExitPolicy::KeepProtective.cancels(ty),
                !ty.is_protective(),
                "{ty:?}"
            );
        }
    }
}
