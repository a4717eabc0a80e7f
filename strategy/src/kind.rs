//! [`AnyStrategy`]: the strategies the product offers, chosen from config, dispatched by
//! `match` so the hot path has no virtual call and the compiler can inline each one.
//!
//! A new strategy is a new variant here and a new arm in each method; the stage and the risk
//! gate do not change.

use pinion_core::{BookTop, TradePrint};

use crate::imbalance::{ImbalanceStats, ImbalanceStrategy};
use crate::order::ExecReport;
use crate::position::Position;
use crate::{Intents, Strategy};

/// One strategy instance, of any kind.
#[derive(Debug, Clone)]
pub enum AnyStrategy {
    /// Order-book imbalance ([`ImbalanceStrategy`]).
    Imbalance(ImbalanceStrategy),
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
    /// The strategy's counters.
    pub fn stats(&self) -> StrategyStats {
        match self {
            AnyStrategy::Imbalance(s) => s.stats().into(),
        }
    }

    /// The position as the strategy counts it.
    pub fn position(&self) -> &Position {
        match self {
            AnyStrategy::Imbalance(s) => s.position(),
        }
    }

    /// The kind's name, as configs write it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStrategy::Imbalance(_) => "imbalance",
        }
    }
}

impl Strategy for AnyStrategy {
    #[inline]
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        match self {
            AnyStrategy::Imbalance(s) => s.on_book(book, out),
        }
    }

    #[inline]
    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents) {
        match self {
            AnyStrategy::Imbalance(s) => s.on_trade(trade, out),
        }
    }

    #[inline]
    fn on_exec(&mut self, rep: &ExecReport, out: &mut Intents) {
        match self {
            AnyStrategy::Imbalance(s) => s.on_exec(rep, out),
        }
    }
}
