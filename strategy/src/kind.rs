//! [`AnyStrategy`]: the strategies the product offers, chosen from config, dispatched by
//! `match` so the hot path has no virtual call and the compiler can inline each one.
//!
//! A new strategy is a new variant here and a new arm in each method; the stage and the risk
//! gate do not change.

use pinion_core::{BookTop, TradePrint};

use pinion_core::InstrumentId;

use crate::grid::{Grid, GridParams};
use crate::imbalance::{ImbalanceParams, ImbalanceStats, ImbalanceStrategy};
use crate::market_making::{MarketMaking, MarketMakingParams};
use crate::momentum::{Momentum, MomentumParams};
use crate::order::{ExecReport, OrderIdSource};
use crate::pairs::{Pairs, PairsParams};
use crate::position::Position;
use crate::quote_chase::{QuoteChase, QuoteChaseParams};
use crate::slots::OrderSlots;
use crate::spread_capture::{SpreadCapture, SpreadCaptureParams};
use crate::{Intents, Strategy};

/// One strategy instance, of any kind.
///
/// Its size is its largest kind's (a few KiB: fixed order slots, a momentum sample ring). Each
/// instance is built once per traded instrument and stays where the stage put it, so nothing
/// copies it on the decision path; boxing the large kinds would only add an indirection to
/// every call.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per instrument and never moved on the decision path"
)]
pub enum AnyStrategy {
    /// Order-book imbalance ([`ImbalanceStrategy`]).
    Imbalance(ImbalanceStrategy),
    /// Market making with inventory skew ([`MarketMaking`]).
    MarketMaking(MarketMaking),
    /// Quoting inside a wide spread ([`SpreadCapture`]).
    SpreadCapture(SpreadCapture),
    /// Maker-only chasing of the touch ([`QuoteChase`]).
    QuoteChase(QuoteChase),
    /// Moving-average momentum ([`Momentum`]).
    Momentum(Momentum),
    /// A price grid ([`Grid`]).
    Grid(Grid),
    /// Two instruments traded together on their price ratio ([`Pairs`]).
    Pairs(Pairs),
}

/// Any strategy's parameters, in one instrument's units: what [`AnyStrategy::new`] builds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyParams {
    /// See [`AnyStrategy::Imbalance`].
    Imbalance(ImbalanceParams),
    /// See [`AnyStrategy::MarketMaking`].
    MarketMaking(MarketMakingParams),
    /// See [`AnyStrategy::SpreadCapture`].
    SpreadCapture(SpreadCaptureParams),
    /// See [`AnyStrategy::QuoteChase`].
    QuoteChase(QuoteChaseParams),
    /// See [`AnyStrategy::Momentum`].
    Momentum(MomentumParams),
    /// See [`AnyStrategy::Grid`].
    Grid(GridParams),
    /// See [`AnyStrategy::Pairs`]: one leg's units.
    Pairs(PairsParams),
}

/// Dispatches `$body` to the strategy inside `$s`, whatever its kind, as `$x`.
macro_rules! each {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            AnyStrategy::Imbalance($x) => $body,
            AnyStrategy::MarketMaking($x) => $body,
            AnyStrategy::SpreadCapture($x) => $body,
            AnyStrategy::QuoteChase($x) => $body,
            AnyStrategy::Momentum($x) => $body,
            AnyStrategy::Grid($x) => $body,
            AnyStrategy::Pairs($x) => $body,
        }
    };
}

/// A strategy's counters, whatever its kind, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StrategyStats {
    /// Book views seen.
    pub books: u64,
    /// Orders decided.
    pub orders: u64,
    /// Cancels decided.
    pub cancels: u64,
    /// Signals not acted on because the order rate was used up.
    pub throttled: u64,
    /// Orders the risk gate refused.
    pub risk_rejects: u64,
    /// Orders the venue rejected.
    pub venue_rejects: u64,
    /// Fills received.
    pub fills: u64,
}

impl std::ops::AddAssign for StrategyStats {
    fn add_assign(&mut self, o: Self) {
        self.books += o.books;
        self.orders += o.orders;
        self.cancels += o.cancels;
        self.throttled += o.throttled;
        self.risk_rejects += o.risk_rejects;
        self.venue_rejects += o.venue_rejects;
        self.fills += o.fills;
    }
}

impl From<ImbalanceStats> for StrategyStats {
    fn from(s: ImbalanceStats) -> Self {
        Self {
            books: s.books,
            orders: s.orders,
            cancels: s.cancels,
            throttled: s.throttled,
            risk_rejects: s.risk_rejects,
            venue_rejects: s.venue_rejects,
            fills: s.fills,
        }
    }
}

impl AnyStrategy {
    /// The strategy `params` describe, trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: StrategyParams, ids: OrderIdSource) -> Self {
        match params {
            StrategyParams::Imbalance(p) => {
                AnyStrategy::Imbalance(ImbalanceStrategy::new(instrument, p, ids))
            }
            StrategyParams::MarketMaking(p) => {
                AnyStrategy::MarketMaking(MarketMaking::new(instrument, p, ids))
            }
            StrategyParams::SpreadCapture(p) => {
                AnyStrategy::SpreadCapture(SpreadCapture::new(instrument, p, ids))
            }
            StrategyParams::QuoteChase(p) => {
                AnyStrategy::QuoteChase(QuoteChase::new(instrument, p, ids))
            }
            StrategyParams::Momentum(p) => AnyStrategy::Momentum(Momentum::new(instrument, p, ids)),
            StrategyParams::Grid(p) => AnyStrategy::Grid(Grid::new(instrument, p, ids)),
            StrategyParams::Pairs(p) => AnyStrategy::Pairs(Pairs::new(instrument, p, ids)),
        }
    }

    /// The strategy's counters.
    pub fn stats(&self) -> StrategyStats {
        match self {
            AnyStrategy::Imbalance(s) => s.stats().into(),
            AnyStrategy::Pairs(s) => s.stats(),
            _ => self.orders().map(OrderSlots::stats).unwrap_or_default(),
        }
    }

    /// The counters of its orders on `instrument`: all of them, but for a strategy that
    /// trades several instruments ([`AnyStrategy::Pairs`]).
    pub fn stats_on(&self, instrument: InstrumentId) -> StrategyStats {
        match self {
            AnyStrategy::Pairs(s) => s.stats_on(instrument),
            _ => self.stats(),
        }
    }

    /// The pairs strategy inside, if it is one.
    pub fn as_pairs_mut(&mut self) -> Option<&mut Pairs> {
        match self {
            AnyStrategy::Pairs(s) => Some(s),
            _ => None,
        }
    }

    /// The pairs strategy inside, if it is one.
    pub fn as_pairs(&self) -> Option<&Pairs> {
        match self {
            AnyStrategy::Pairs(s) => Some(s),
            _ => None,
        }
    }

    /// The position as the strategy counts it (of its first instrument, for one that trades
    /// several).
    pub fn position(&self) -> &Position {
        match self.slots() {
            Ok(o) => o.position(),
            Err(s) => s.position(),
        }
    }

    /// The strategy's orders by slot, for the kinds that keep them in [`OrderSlots`].
    pub fn orders(&self) -> Option<&OrderSlots> {
        self.slots().ok()
    }

    /// The orders by slot (every kind but the imbalance one, which keeps its one order itself).
    fn slots(&self) -> Result<&OrderSlots, &ImbalanceStrategy> {
        match self {
            AnyStrategy::Imbalance(s) => Err(s),
            AnyStrategy::MarketMaking(s) => Ok(s.orders()),
            AnyStrategy::SpreadCapture(s) => Ok(s.orders()),
            AnyStrategy::QuoteChase(s) => Ok(s.orders()),
            AnyStrategy::Momentum(s) => Ok(s.orders()),
            AnyStrategy::Grid(s) => Ok(s.orders()),
            AnyStrategy::Pairs(s) => Ok(s.orders()),
        }
    }

    /// The kind's name, as configs write it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStrategy::Imbalance(_) => "imbalance",
            AnyStrategy::MarketMaking(_) => "market-making",
            AnyStrategy::SpreadCapture(_) => "spread-capture",
            AnyStrategy::QuoteChase(_) => "quote-chase",
            AnyStrategy::Momentum(_) => "momentum",
            AnyStrategy::Grid(_) => "grid",
            AnyStrategy::Pairs(_) => "pairs",
        }
    }
}

impl Strategy for AnyStrategy {
    #[inline]
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        each!(self, s => s.on_book(book, out))
    }

    #[inline]
    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents) {
        each!(self, s => s.on_trade(trade, out))
    }

    #[inline]
    fn on_exec(&mut self, rep: &ExecReport, out: &mut Intents) {
        each!(self, s => s.on_exec(rep, out))
    }

    #[inline]
    fn on_candle(&mut self, candle: &pinion_core::Candle, out: &mut Intents) {
        each!(self, s => s.on_candle(candle, out))
    }

    fn candle_interval_ns(&self) -> Option<u64> {
        each!(self, s => s.candle_interval_ns())
    }
}
