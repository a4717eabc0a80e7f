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
//! - [`reason`]: why each order was sent, carried on the intent.
//! - [`risk`]: pre-trade risk rules and the exchange's filters.
//! - [`gate`]: the risk gate every intent of every strategy passes.
//! - [`position`]: position and PnL from fills.
//! - [`money`]: loss and drawdown limits on net PnL, and order sizing.
//! - [`slots`]: a strategy's orders by slot and what the reports say about each, shared by
//!   every strategy below but the imbalance one.
//! - [`price`]: price arithmetic for quoting (ppm offsets, the tick).
//! - [`protect`]: stop-loss, take-profit and trailing stops held by the engine.
//! - [`imbalance`]: the order-book imbalance strategy.
//! - [`market_making`]: market making with inventory skew and a quote ladder.
//! - [`spread_capture`]: quoting inside a wide spread.
//! - [`quote_chase`]: maker-only chasing of the touch up to a limit.
//! - [`momentum`]: short against long moving averages, with an RSI filter.
//! - [`grid`]: buy low / sell high on fixed price levels.
//! - [`pairs`]: two instruments traded together on their price ratio.
//!
//! Nothing here allocates after construction, locks or formats on the decision path.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod flatten;
pub mod gate;
pub mod grid;
pub mod imbalance;
pub mod kind;
pub mod market_making;
pub mod momentum;
pub mod money;
pub mod order;
pub mod pairs;
pub mod position;
pub mod price;
pub mod protect;
pub mod quote_chase;
pub mod reason;
pub mod risk;
pub mod slots;
pub mod spread_capture;
#[cfg(test)]
mod testbook;

pub use flatten::{
    DeriskParams, FlattenCause, FlattenOutcome, FlattenParams, FlattenStats, FlattenStep,
    Flattener, Slice, derisk_target,
};
pub use gate::{GateStats, RiskGate};
pub use grid::{Grid, GridParams, GridSpacing};
pub use imbalance::{ImbalanceParams, ImbalanceStats, ImbalanceStrategy};
pub use kind::{AnyStrategy, StrategyParams, StrategyStats};
pub use market_making::{FairPrice, MarketMaking, MarketMakingParams};
pub use momentum::{Momentum, MomentumParams, PriceSource, RsiFilter};
pub use money::{Breach, Edge, LossGuard, LossLimits, LossWatch, RoundTrips, Sizer, Sizing};
pub use order::{
    ClientOrderId, ExecReport, OrderAction, OrderIdSource, OrderIntent, OrderSide, OrderStatus,
    OrderType, RejectReason, TimeInForce, VenueOrderId,
};
pub use pairs::{PairState, Pairs, PairsParams};
pub use position::{FeeRates, Position};
pub use protect::{Exit, ExitKind, ProtectParams, ProtectStats, Protector};
pub use quote_chase::{QuoteChase, QuoteChaseParams};
pub use reason::{OrderReason, ReasonCode};
pub use risk::{PreTradeRisk, RiskLimits, RiskReject, RiskState, TokenBucket};
pub use slots::{OrderSlots, OrderState, Quote};
pub use spread_capture::{SpreadCapture, SpreadCaptureParams};

use pinion_core::{BookTop, Candle, Qty, TradePrint};

/// Most intents one callback may produce.
pub const MAX_INTENTS: usize = 8;

/// The buffer a strategy writes its intents into; the stage drains it after each callback and
/// passes every intent through the [`RiskGate`].
///
/// It also tells the strategy whether a new order would be admitted by the order rate right
/// now ([`Intents::new_orders_allowed`]), so a strategy pauses while the rate is used up rather
/// than deciding orders the gate must refuse. Cancels are always allowed.
///
/// The rate is a budget of new orders for the callback: [`Intents::set_new_order_budget`] gives
/// the number of order-rate tokens available; [`Intents::set_new_orders_allowed`] knows only
/// whether there is at least one, and allows one. Each new order (or replace) written uses one,
/// so a strategy that places several orders in one callback stops when the budget is spent
/// instead of sending orders the gate would refuse. A strategy that trades a second instrument
/// in the same callback (a pairs instance's other leg) has that instrument's tokens as a budget
/// of their own ([`Intents::set_leg_budget`]): each leg's orders spend their own instrument's.
///
/// **Order size.** The stage may also say how large a new order should be now
/// ([`Intents::set_order_qty`], from the sizing rule of `[risk.sizing]`:
/// [`Sizer`]); a strategy asks [`Intents::order_qty`] with its own configured
/// size, which is what it gets when the stage says nothing. The size is the strategy's unit of
/// exposure (each quote, each grid order, the momentum target, a chase); a size of zero means
/// no new exposure now (the equity is gone), and a strategy then opens nothing.
///
/// **Reasons.** The stage says which strategy instance writes into the buffer
/// ([`Intents::set_strategy`]); a strategy stamps each intent with [`Intents::reason`] of the
/// code of its decision, so it never needs to know its own index.
#[derive(Debug, Clone)]
pub struct Intents {
    buf: arrayvec::ArrayVec<OrderIntent, MAX_INTENTS>,
    new_order_budget: u32,
    new_orders_written: u32,
    /// A second instrument's own budget in this callback: (instrument, budget, written).
    leg: Option<(pinion_core::InstrumentId, u32, u32)>,
    order_qty: Option<Qty>,
    strategy: u8,
}

impl Default for Intents {
    fn default() -> Self {
        Self::new()
    }
}

impl Intents {
    /// An empty buffer with no order-rate limit.
    pub const fn new() -> Self {
        Self {
            buf: arrayvec::ArrayVec::new_const(),
            new_order_budget: u32::MAX,
            new_orders_written: 0,
            leg: None,
            order_qty: None,
            strategy: 0,
        }
    }

    /// Sets the strategy instance whose intents are written next (the stage, before each
    /// callback; 0 until then).
    #[inline]
    pub fn set_strategy(&mut self, strategy: u8) {
        self.strategy = strategy;
    }

    /// The reason `code` of the strategy instance writing now.
    #[inline]
    pub const fn reason(&self, code: ReasonCode) -> OrderReason {
        OrderReason::new(self.strategy, code)
    }

    /// The size a new order should have: what the stage set, or `configured` (the strategy's
    /// own) when it set none.
    #[inline]
    pub fn order_qty(&self, configured: Qty) -> Qty {
        self.order_qty.unwrap_or(configured)
    }

    /// Sets the size of new orders (the stage, before each callback); `None` leaves it to each
    /// strategy's own configuration.
    #[inline]
    pub fn set_order_qty(&mut self, qty: Option<Qty>) {
        self.order_qty = qty;
    }

    /// Whether the order rate admits a new order now (counting those written in this callback).
    #[inline]
    pub fn new_orders_allowed(&self) -> bool {
        self.new_orders_written < self.new_order_budget
    }

    /// Sets whether the order rate admits a new order (the stage, before each callback): when it
    /// does, one new order may be written.
    #[inline]
    pub fn set_new_orders_allowed(&mut self, allowed: bool) {
        self.set_new_order_budget(u32::from(allowed));
    }

    /// Whether the order rate of `instrument` admits a new order on it now: its own budget
    /// when [`Intents::set_leg_budget`] gave it one, else [`Intents::new_orders_allowed`].
    #[inline]
    pub fn new_orders_allowed_on(&self, instrument: pinion_core::InstrumentId) -> bool {
        match self.leg {
            Some((leg, budget, written)) if leg == instrument => written < budget,
            _ => self.new_orders_allowed(),
        }
    }

    /// Sets how many new orders the order rate admits now (the stage, before each callback).
    /// Clears any leg's budget.
    #[inline]
    pub fn set_new_order_budget(&mut self, budget: u32) {
        self.new_order_budget = budget;
        self.new_orders_written = 0;
        self.leg = None;
    }

    /// Gives `instrument`, a second instrument the callback may trade, a budget of `budget`
    /// new orders of its own (the stage, after [`Intents::set_new_order_budget`]): its orders
    /// spend this budget, not the first's.
    #[inline]
    pub fn set_leg_budget(&mut self, instrument: pinion_core::InstrumentId, budget: u32) {
        self.leg = Some((instrument, budget, 0));
    }

    /// Adds `intent`; false when the buffer is full (the intent is not sent).
    #[inline]
    pub fn push(&mut self, intent: OrderIntent) -> bool {
        if self.buf.try_push(intent).is_err() {
            return false;
        }
        if matches!(intent.action, OrderAction::New | OrderAction::Replace) {
            match self.leg.as_mut() {
                Some((leg, _, written)) if *leg == intent.instrument => {
                    *written = written.saturating_add(1);
                }
                _ => self.new_orders_written = self.new_orders_written.saturating_add(1),
            }
        }
        true
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

    /// A closed candle of [`Strategy::candle_interval_ns`]: the venue's kline, or one built
    /// from trades in event time where no kline stream is read. Strategies that read no
    /// candles ignore it.
    fn on_candle(&mut self, _candle: &Candle, _out: &mut Intents) {}

    /// The length of the candles the strategy reads, ns; `None` (the default) when it reads
    /// none, and the engine then builds none for it.
    fn candle_interval_ns(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{InstrumentId, Px};

    fn new_order(id: u64) -> OrderIntent {
        OrderIntent::new_limit(
            0,
            ClientOrderId(id),
            InstrumentId(0),
            OrderSide::Buy,
            Px(1),
            Qty(1),
            OrderType::Limit,
            TimeInForce::Gtc,
            OrderReason::new(0, ReasonCode::Entry),
        )
    }

    #[test]
    fn a_legs_orders_spend_its_own_budget_not_the_first_instruments() {
        let mut out = Intents::new();
        let leg = InstrumentId(1);
        let on_leg = |id| OrderIntent {
            instrument: leg,
            ..new_order(id)
        };
        // The first instrument has one token, the leg none: the leg's order is not allowed
        // although the first's budget has room, and the first's order does not use the leg's.
        out.set_new_order_budget(1);
        out.set_leg_budget(leg, 0);
        assert!(out.new_orders_allowed_on(InstrumentId(0)));
        assert!(!out.new_orders_allowed_on(leg));
        // Two for the leg, one for the first: each spends its own.
        out.set_new_order_budget(1);
        out.set_leg_budget(leg, 2);
        assert!(out.push(on_leg(1)));
        assert!(
            out.new_orders_allowed_on(InstrumentId(0)),
            "the first's untouched"
        );
        assert!(out.push(new_order(2)));
        assert!(!out.new_orders_allowed_on(InstrumentId(0)));
        assert!(out.new_orders_allowed_on(leg), "one left on the leg");
        assert!(out.push(on_leg(3)));
        assert!(!out.new_orders_allowed_on(leg));
        // A new budget for the first clears the leg's: the leg then shares the first's.
        out.set_new_order_budget(1);
        assert!(out.new_orders_allowed_on(leg));
        assert!(out.push(on_leg(4)));
        assert!(!out.new_orders_allowed_on(InstrumentId(0)));
    }

    #[test]
    fn the_new_order_budget_is_spent_by_new_orders_only() {
        let mut out = Intents::new();
        assert!(out.new_orders_allowed(), "no limit by default");
        out.set_new_order_budget(2);
        assert!(out.push(new_order(1)));
        assert!(out.new_orders_allowed());
        assert!(out.push(OrderIntent::cancel(
            0,
            ClientOrderId(9),
            ClientOrderId(1),
            InstrumentId(0),
            OrderSide::Buy,
            out.reason(ReasonCode::Entry)
        )));
        assert!(out.new_orders_allowed(), "a cancel uses no budget");
        assert!(out.push(new_order(2)));
        assert!(!out.new_orders_allowed());
        // Knowing only that a token is there allows one order.
        out.set_new_orders_allowed(true);
        assert!(out.new_orders_allowed());
        out.push(new_order(3));
        assert!(!out.new_orders_allowed());
        out.set_new_orders_allowed(false);
        assert!(!out.new_orders_allowed());
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn reasons_take_the_instance_the_stage_set() {
        let mut out = Intents::new();
        assert_eq!(
            out.reason(ReasonCode::Chase),
            OrderReason::new(0, ReasonCode::Chase)
        );
        out.set_strategy(4);
        assert_eq!(out.reason(ReasonCode::Exit).strategy, 4);
        assert_eq!(out.reason(ReasonCode::Exit).code, ReasonCode::Exit);
    }
}
