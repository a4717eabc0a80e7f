//! pinion-gateway: the venues orders go to.
//!
//! Every venue implements [`OrderVenue`]: the gateway stage hands it [`OrderIntent`]s and polls
//! it for [`ExecReport`]s (the contract is owned by `pinion-strategy`). [`SimVenue`] is the
//! in-process simulated venue for replay and backtests; live venues come later behind the same
//! trait.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod sim;

pub use sim::{SimLatency, SimVenue, SimVenueConfig, SimVenueStats};

use pinion_strategy::{ExecReport, OrderIntent};

/// A place orders can be sent to.
///
/// Both calls are non-blocking and must not allocate on the hot path. Hard limits are enforced
/// here again, whatever the strategy stage checked: a request that breaks one is answered with
/// a `Rejected` report instead of being sent.
pub trait OrderVenue {
    /// Sends `intent` at `now_ns` (engine monotonic ns).
    fn submit(&mut self, intent: &OrderIntent, now_ns: u64);

    /// Hands every report that has arrived by `now_ns` to `emit`, oldest first.
    fn poll(&mut self, now_ns: u64, emit: impl FnMut(ExecReport));
}
