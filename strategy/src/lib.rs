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
//! - [`slots`]: a strategy's orders by slot and what the reports say about each, shared by
//!   every strategy below but the imbalance one.
//! - [`price`]: price arithmetic for quoting (ppm offsets, the tick).
//! - [`imbalance`]: the order-book imbalance strategy.
//! - [`market_making`]: market making with inventory skew and a quote ladder.
//! - [`spread_capture`]: quoting inside a wide spread.
//! - [`quote_chase`]: maker-only chasing of the touch up to a limit.
//! - [`momentum`]: short against long moving averages, with an RSI filter.
//! - [`grid`]: buy low / sell high on fixed price levels.
//!
//! Nothing here allocates after construction, locks or formats on the decision path.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod gate;
pub mod grid;
pub mod imbalance;
pub mod kind;
pub mod market_making;
pub mod momentum;
pub mod order;
pub mod position;
pub mod price;
pub mod quote_chase;
pub mod risk;
pub mod slots;
pub mod spread_capture;
#[cfg(test)]
mod testbook;

pub use gate::{GateStats, RiskGate};
pub use grid::{Grid, GridParams, GridSpacing};
pub use imbalance::{ImbalanceParams, ImbalanceStats, ImbalanceStrategy};
pub use kind::{AnyStrategy, StrategyParams, StrategyStats};
pub use market_making::{FairPrice, MarketMaking, MarketMakingParams};
pub use momentum::{Momentum, MomentumParams, PriceSource, RsiFilter};
pub use order::{
    ClientOrderId, ExecReport, OrderAction, OrderIdSource, OrderIntent, OrderSide, OrderStatus,
    OrderType, RejectReason, TimeInForce, VenueOrderId,
};
pub use position::Position;
pub use quote_chase::{QuoteChase, QuoteChaseParams};
pub use risk::{PreTradeRisk, RiskLimits, RiskReject, RiskState, TokenBucket};
pub use slots::{OrderSlots, OrderState, Quote};
pub use spread_capture::{SpreadCapture, SpreadCaptureParams};

use pinion_core::{BookTop, TradePrint};

/// Most intents one callback may produce.
pub const MAX_INTENTS: usize = 8;

/// The buffer a strategy writes its intents into; the stage drains it after each callback and
/// passes every intent through the [`RiskGate`].
///
/// It also tells the strategy whether a new order would be admitted by the order rate right
/// now ([`Intents::new_orders_allowed`]), so a strategy pauses while the rate is used up rather
/// than deciding orders the gate must refuse. Cancels are always allowed.
#[derive(Debug, Clone)]
pub struct Intents {
    buf: arrayvec::ArrayVec<OrderIntent, MAX_INTENTS>,
    new_orders_allowed: bool,
}

impl Default for Intents {
    fn default() -> Self {
        Self::new()
    }
}

impl Intents {
    /// An empty buffer that allows new orders.
    pub const fn new() -> Self {
        Self {
            buf: arrayvec::ArrayVec::new_const(),
            new_orders_allowed: true,
        }
    }

    /// Whether the order rate admits a new order now.
    #[inline]
    pub fn new_orders_allowed(&self) -> bool {
        self.new_orders_allowed
    }

    /// Sets what [`Intents::new_orders_allowed`] answers (the stage, before each callback).
    #[inline]
    pub fn set_new_orders_allowed(&mut self, allowed: bool) {
        self.new_orders_allowed = allowed;
    }

    /// Adds `intent`; false when the buffer is full (the intent is not sent).
    #[inline]
    pub fn push(&mut self, intent: OrderIntent) -> bool {
        self.buf.try_push(intent).is_ok()
    }

    /// The intents written so far, in order.
    #[inline]
    pub fn as_slice(&self) -> &[OrderIntent] {
        &self.buf
    }

    /// How many intents were written.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Discards the intents written (they are not sent).
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Takes the intents out, oldest first, leaving the buffer empty.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = OrderIntent> + '_ {
        self.buf.drain(..)
    }
}

impl std::ops::Index<usize> for Intents {
    type Output = OrderIntent;

    fn index(&self, i: usize) -> &OrderIntent {
        &self.buf[i]
    }
}

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
