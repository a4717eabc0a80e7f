//! The values that travel on the rings between stages. All are `Copy` and fixed-size, so a
//! ring slot holds them by value and nothing on the hot path allocates.
//!
//! Every ring carries an explicit end-of-stream variant: shutdown is the marker travelling
//! through the pipeline, so each stage flushes what came before it and then reports `Done`.

use pinion_core::{BookTop, Candle, ConnId, InstrumentId, MarketEvent, Ticker24h, TradePrint};
use pinion_strategy::{ExecReport, OrderIntent};

use crate::latency::{NamedHistogram, Recorder};

/// Feed → book.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)] // The event is the payload; boxing it would allocate.
pub enum MarketMsg {
    /// A decoded event (one part of an exchange message).
    Event(MarketEvent),
    /// The connection was reopened, closed, or lost frames: the books it feeds must resync.
    Resync {
        /// The connection.
        conn: ConnId,
        /// Only this instrument's book (a stream of it went stale); `None`: every book the
        /// connection fed.
        instrument: Option<InstrumentId>,
        /// Engine ns when the feed read the record.
        t0: u64,
    },
    /// The source has ended (or the run was stopped).
    End,
}

/// What a view, or an order decided on it, comes from: tick-to-trade is reported for each, as
/// the work between the frame and the decision differs by an order of magnitude (a book
/// ticker is one level; a depth message is parsed and applied in full, up to a thousand
/// levels, before its view exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A committed depth message.
    Depth,
    /// A book ticker ahead of the book.
    Ticker,
    /// Anything else: a trade, an execution report, a book that lost sync.
    Other,
}

impl Trigger {
    /// Every trigger, each at its index (`trigger as usize`).
    pub const ALL: [Trigger; 3] = [Trigger::Depth, Trigger::Ticker, Trigger::Other];

    /// One recorder per trigger, at its index, named `<base>.on_<trigger>`.
    pub fn recorders(base: &str) -> [Recorder; 3] {
        Self::ALL.map(|t| {
            let on = match t {
                Trigger::Depth => "on_depth",
                Trigger::Ticker => "on_ticker",
                Trigger::Other => "on_other",
            };
            Recorder::new(format!("{base}.{on}"))
        })
    }

    /// The histograms of `recorders` that recorded anything, for a stage's report.
    pub fn take_used(recorders: &mut [Recorder; 3], into: &mut Vec<NamedHistogram>) {
        into.extend(
            recorders
                .iter_mut()
                .filter(|r| r.count() > 0)
                .map(Recorder::take),
        );
    }
}

/// Book → strategy.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)] // Fixed-size ring slots are the point.
pub enum BookMsg {
    /// The top of one instrument's book, and what brought it about.
    Book(BookTop, Trigger),
    /// A trade print (all the strategy and the simulated venue use of a trade event).
    Trade(TradePrint),
    /// A venue's kline, open or closed.
    Candle(Candle),
    /// A venue's 24-hour ticker (only the fields its message carried: see
    /// [`pinion_core::TickerFields`]).
    Ticker(Ticker24h),
    /// End of stream.
    End,
}

/// Strategy → gateway. The simulated venue matches against the real market, so the market the
/// strategy saw goes to the gateway too, ahead of the orders decided on it.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)] // Fixed-size ring slots are the point.
pub enum OrderMsg {
    /// An order request, and what it was decided on.
    Order(OrderIntent, Trigger),
    /// The top of book the strategy just saw.
    Book(BookTop),
    /// A trade the strategy just saw.
    Trade(TradePrint),
    /// End of stream.
    End,
}

/// Gateway → strategy: an execution report.
pub type ExecMsg = ExecReport;
