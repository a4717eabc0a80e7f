//! pinion-core: the vocabulary every pinion crate shares, defined once.
//!
//! - [`decimal`]: exact scaled-integer prices and quantities ([`Px`], [`Qty`]) parsed straight
//!   from the exchanges' decimal strings, never through `f64`.
//! - [`instrument`]: instrument specs (tick, step, filters) and the registry that maps a venue's
//!   symbol to a compact [`InstrumentId`].
//! - [`venue`]: the markets pinion knows ([`Venue`]).
//! - [`event`]: [`MarketEvent`], the fixed-size `Copy` record that flows through the rings, with
//!   [`Level`], [`Side`] and [`TradePrint`].
//! - [`top`]: [`BookTop`], the top `K` levels of a book, the one value the book stage fills and
//!   the strategy reads, with integer analytics (mid, microprice, spread, imbalance, depth
//!   within ±bps, sweep and VWAP).
//! - [`record`]: [`RawRecord`], what every source yields: receive time, connection, raw bytes.
//! - [`clock`]: event time ([`EventClock`]), which drives simulation, apart from the engine
//!   clock that stamps latency.
//! - [`mem`]: prefaulting, so the hot path never takes a page fault on memory made at start-up.
//!
//! Its dependencies are deliberately light (`arrayvec`, `thiserror`): the strategy and the
//! simulated venue build on it without compiling parsers or decompressors.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod candle;
pub mod clock;
pub mod decimal;
pub mod event;
pub mod instrument;
pub mod mem;
pub mod record;
pub mod top;
pub mod venue;

pub use candle::{Candle, CandleBuilder, Ticker24h, TickerFields};
pub use clock::{DataClock, EventClock};
pub use decimal::{Decimal, DecimalError, Px, Qty};
pub use event::{EventFlags, EventKind, Level, MarketEvent, Side, TradePrint};
pub use instrument::{
    INVERSE_MONEY_DECIMALS, InstrumentError, InstrumentId, InstrumentSpec, Instruments, Symbol,
    default_inverse_contract_size,
};
pub use record::{ConnId, ConnInfo, RawRecord, RecordKind};
pub use top::{BookTop, BpsBand, Sweep, TOP_LEVELS};
pub use venue::Venue;
