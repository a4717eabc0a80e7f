//! pinion-strategy: decisions and the order contract.
//!
//! The strategy stage sees the top of each book, trades and execution reports, and writes
//! [`OrderIntent`]s into a fixed-capacity [`Intents`] buffer. This crate owns the contract it
//! produces and consumes ([`order`]: `OrderIntent` out, `ExecReport` in); the gateway implements
//! it. Its input from the book is [`BookTop`], the shared top-of-book value from `pinion-core`
//! with its integer analytics, read where the book stage left it: strategies depend on neither
//! the book crate nor a copy of its output.
//!
//! - [`order`]: the order contract.
//! - [`risk`]: pre-trade risk rules and the exchange's filters.
//! - [`gate`]: the risk gate every intent of every strategy passes.
//! - [`position`]: position and PnL from fills.
//! - [`imbalance`]: the order-book imbalance strategy.
//!
//! Nothing here allocates after construction, locks or formats on the decision path.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod gate;
pub mod imbalance;
pub mod order;
pub mod position;
pub mod risk;

pub use gate::{GateStats, RiskGate};
pub use imbalance::{ImbalanceParams, ImbalanceStats, ImbalanceStrategy};
pub use order::{
    ClientOrderId, ExecReport, OrderAction, OrderIdSource, OrderIntent, OrderSide, OrderStatus,
    OrderType, RejectReason, TimeInForce, VenueOrderId,
};
pub use position::Position;
pub use risk::{PreTradeRisk, RiskLimits, RiskReject, RiskState, TokenBucket};

use pinion_core::{BookTop, TradePrint};

/// Most intents one callback may produce.
pub const MAX_INTENTS: usize = 8;

/// The buffer a strategy writes its intents into; the stage drains it after each callback.
pub type Intents = arrayvec::ArrayVec<OrderIntent, MAX_INTENTS>;

/// A trading strategy: reacts to market data and execution reports with order intents.
///
/// Implementations must not allocate, lock or block; they write at most [`MAX_INTENTS`]
/// intents per call (a full buffer is the strategy's own bug and must be handled without
/// panicking, e.g. by not sending).
pub trait Strategy {
    /// A new state of an instrument's book: its top levels, as of `book.t0`.
    fn on_book(&mut self, book: &BookTop, out: &mut Intents);

    /// A trade in the market.
    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents);

    /// A report about one of our orders.
    fn on_exec(&mut self, rep: &ExecReport, out: &mut Intents);
}
