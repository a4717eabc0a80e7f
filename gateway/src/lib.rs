//! pinion-gateway: the venues orders go to.
//!
//! Every venue implements [`OrderVenue`]: the gateway stage hands it [`OrderIntent`]s and polls
//! it for [`ExecReport`]s (the contract is owned by `pinion-strategy`). [`SimVenue`] is the
//! in-process simulated venue for replay and backtests; [`AnyVenue`] is the set of venues a
//! stage can hold, dispatched by `match`, where a live venue is one more variant.
//!
//! **Clocks.** A venue says which clock drives it ([`VenueClock`]). A live venue runs on the
//! wall clock. The simulated venue runs on event time, the receive time of the market data:
//! requests are submitted at the event time they were decided, its latencies, queue and fills
//! follow that clock, and its reports are released as the event time the strategy has reached
//! passes their due time. So a replay gives the same orders and fills on any host.
//!
//! **Market tap.** A simulated venue matches against the market the strategy saw, so it
//! subscribes to the views and trades ([`OrderVenue::taps_market`]); a live venue has the real
//! market and does not, so nothing but orders crosses the order ring when trading live.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod binance;
pub mod exit;
pub mod sim;

pub use exit::{ExitOutcome, ExitPolicy};
pub use sim::{LatencyModel, LatencyTable, QueueModel, SimLatency, SimVenue, SimVenueConfig};

use pinion_core::{BookTop, TradePrint};
use pinion_strategy::{ExecReport, OrderIntent};

/// The clock a venue runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueClock {
    /// The wall clock: a real venue. Requests go out at once; reports come when it answers.
    Wall,
    /// Event time (ns since the Unix epoch, the market data's receive time): a simulated
    /// venue, whose every time argument is event time.
    Event,
}

/// What a venue has done, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VenueStats {
    /// Requests submitted.
    pub submitted: u64,
    /// Orders accepted.
    pub accepted: u64,
    /// Orders and cancels rejected (by the gateway's hard limits or the venue).
    pub rejected: u64,
    /// Orders cancelled on request.
    pub canceled: u64,
    /// Fills.
    pub fills: u64,
    /// Total quantity filled.
    pub filled_qty: i64,
    /// Reports lost because the report queue was full (should stay 0).
    pub reports_dropped: u64,
}

/// A place orders can be sent to.
///
/// Every call is non-blocking and must not allocate on the hot path. Hard limits are enforced
/// here again, whatever the strategy stage checked: a request that breaks one is answered with
/// a `Rejected` report instead of being sent. Times are of the venue's [`VenueClock`].
pub trait OrderVenue {
    /// The clock this venue's times are on.
    fn clock(&self) -> VenueClock;

    /// Whether the venue subscribes to the market tap (the views and trades the strategy saw,
    /// in the order it saw them, through [`OrderVenue::on_book`] and [`OrderVenue::on_trade`]).
    fn taps_market(&self) -> bool {
        false
    }

    /// The market reached the state `book` at `at_ns` (only called when tapping the market).
    fn on_book(&mut self, book: &BookTop, at_ns: u64) {
        let _ = (book, at_ns);
    }

    /// A trade happened in the market at `at_ns` (only called when tapping the market).
    fn on_trade(&mut self, print: &TradePrint, at_ns: u64) {
        let _ = (print, at_ns);
    }

    /// Whether the venue can keep a position's protective orders resting at the exchange
    /// (`protect = "exchange"`); without, the engine holds them.
    fn native_protection(&self) -> bool {
        false
    }

    /// Sends `intent`, decided at `now_ns`.
    fn submit(&mut self, intent: &OrderIntent, now_ns: u64);

    /// Hands every report that has arrived by `now_ns` to `emit`, oldest first.
    fn poll(&mut self, now_ns: u64, emit: impl FnMut(ExecReport));

    /// Whether nothing is resting, on its way or waiting for delivery: no report can come until
    /// a new request is submitted.
    fn is_idle(&self) -> bool;

    /// Orders open at the venue now.
    fn open_orders(&self) -> usize;

    /// Counters.
    fn stats(&self) -> VenueStats;

    /// The run is ending: finish what the venue must before it is dropped (a live venue
    /// cancels its open orders and waits up to `grace_ns` for the exchange to confirm), handing
    /// every report that still comes to `emit`. Called until it returns true.
    fn wind_down(&mut self, grace_ns: u64, emit: impl FnMut(ExecReport)) -> bool {
        let _ = (grace_ns, emit);
        true
    }
}

/// The limits a venue enforces again on every request, whatever the strategy stage checked:
/// the exchange's filters (price and quantity grid and range, minimum notional) and the
/// engine's hard limits (order quantity, open orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardLimits {
    /// The instrument the venue trades.
    pub instrument: pinion_core::InstrumentId,
    /// Price grid, in price units.
    pub tick: pinion_core::Px,
    /// Quantity grid, in quantity units.
    pub step: pinion_core::Qty,
    /// The exchange's price range (0: no bound).
    pub min_price: pinion_core::Px,
    /// See `min_price`.
    pub max_price: pinion_core::Px,
    /// The exchange's smallest order quantity (0: none).
    pub min_qty: pinion_core::Qty,
    /// The exchange's smallest notional, in price units × quantity units (0: none).
    pub min_notional: i128,
    /// Largest order quantity: the engine's limit, or the exchange's when that is lower.
    pub max_order_qty: pinion_core::Qty,
    /// Most open (or pending) orders.
    pub max_open_orders: usize,
}

impl HardLimits {
    /// The limits of `instrument` with the exchange filters of `spec`.
    pub fn new(
        instrument: pinion_core::InstrumentId,
        spec: &pinion_core::InstrumentSpec,
        max_order_qty: pinion_core::Qty,
        max_open_orders: usize,
    ) -> Self {
        let max_order_qty = if spec.max_qty.0 > 0 {
            max_order_qty.min(spec.max_qty)
        } else {
            max_order_qty
        };
        Self {
            instrument,
            tick: spec.tick,
            step: spec.step,
            min_price: spec.min_price,
            max_price: spec.max_price,
            min_qty: spec.min_qty,
            min_notional: spec.min_notional,
            max_order_qty,
            max_open_orders,
        }
    }

    /// Why `intent` may not be sent with `open` orders open or pending, if it may not.
    #[inline]
    pub fn check(
        &self,
        intent: &OrderIntent,
        open: usize,
    ) -> Result<(), pinion_strategy::RejectReason> {
        use pinion_strategy::{OrderAction, OrderType, RejectReason};
        if intent.instrument != self.instrument {
            return Err(RejectReason::UnknownInstrument);
        }
        if intent.action == OrderAction::Cancel {
            return Ok(());
        }
        if intent.action == OrderAction::Amend {
            return if intent.qty.0 > 0 && intent.qty.0 % self.step.0.max(1) == 0 {
                Ok(())
            } else {
                Err(RejectReason::InvalidQty)
            };
        }
        if intent.qty.0 <= 0 || intent.qty.0 % self.step.0.max(1) != 0 || intent.qty < self.min_qty
        {
            return Err(RejectReason::InvalidQty);
        }
        if intent.qty > self.max_order_qty {
            return Err(RejectReason::MaxQty);
        }
        if intent.order_type != OrderType::Market {
            let px = intent.px;
            if px.0 <= 0
                || px.0 % self.tick.0.max(1) != 0
                || px < self.min_price
                || (self.max_price.0 > 0 && px > self.max_price)
            {
                return Err(RejectReason::InvalidPrice);
            }
            if i128::from(px.0) * i128::from(intent.qty.0) < self.min_notional {
                return Err(RejectReason::MaxNotional);
            }
        }
        if intent.action == OrderAction::New && open >= self.max_open_orders {
            return Err(RejectReason::MaxOpenOrders);
        }
        Ok(())
    }
}

/// The venues a gateway stage can hold, one type for every kind so the stage and the messages
/// stay the same when one is added (a live Binance venue is the next variant).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per instrument, made at start-up; never moved after.
pub enum AnyVenue {
    /// The in-process simulated venue.
    Sim(SimVenue),
    /// Binance Spot over the WebSocket API.
    Binance(binance::BinanceVenue),
}

impl OrderVenue for AnyVenue {
    #[inline]
    fn clock(&self) -> VenueClock {
        match self {
            AnyVenue::Sim(v) => v.clock(),
            AnyVenue::Binance(v) => v.clock(),
        }
    }

    #[inline]
    fn taps_market(&self) -> bool {
        match self {
            AnyVenue::Sim(v) => v.taps_market(),
            AnyVenue::Binance(v) => v.taps_market(),
        }
    }

    #[inline]
    fn on_book(&mut self, book: &BookTop, at_ns: u64) {
        match self {
            AnyVenue::Sim(v) => v.on_book(book, at_ns),
            AnyVenue::Binance(v) => v.on_book(book, at_ns),
        }
    }

    #[inline]
    fn on_trade(&mut self, print: &TradePrint, at_ns: u64) {
        match self {
            AnyVenue::Sim(v) => v.on_trade(print, at_ns),
            AnyVenue::Binance(v) => v.on_trade(print, at_ns),
        }
    }

    fn native_protection(&self) -> bool {
        match self {
            AnyVenue::Sim(v) => v.native_protection(),
            AnyVenue::Binance(v) => v.native_protection(),
        }
    }

    #[inline]
    fn submit(&mut self, intent: &OrderIntent, now_ns: u64) {
        match self {
            AnyVenue::Sim(v) => v.submit(intent, now_ns),
            AnyVenue::Binance(v) => v.submit(intent, now_ns),
        }
    }

    #[inline]
    fn poll(&mut self, now_ns: u64, emit: impl FnMut(ExecReport)) {
        match self {
            AnyVenue::Sim(v) => v.poll(now_ns, emit),
            AnyVenue::Binance(v) => v.poll(now_ns, emit),
        }
    }

    #[inline]
    fn is_idle(&self) -> bool {
        match self {
            AnyVenue::Sim(v) => v.is_idle(),
            AnyVenue::Binance(v) => v.is_idle(),
        }
    }

    fn open_orders(&self) -> usize {
        match self {
            AnyVenue::Sim(v) => OrderVenue::open_orders(v),
            AnyVenue::Binance(v) => OrderVenue::open_orders(v),
        }
    }

    fn stats(&self) -> VenueStats {
        match self {
            AnyVenue::Sim(v) => OrderVenue::stats(v),
            AnyVenue::Binance(v) => OrderVenue::stats(v),
        }
    }

    fn wind_down(&mut self, grace_ns: u64, emit: impl FnMut(ExecReport)) -> bool {
        match self {
            AnyVenue::Sim(v) => v.wind_down(grace_ns, emit),
            AnyVenue::Binance(v) => v.wind_down(grace_ns, emit),
        }
    }
}
