//! pinion-book: the local order book, kept exactly equal to the exchange's.
//!
//! - [`OrderBook`]: per side a fixed-size array of price levels (a window of `2^k` ticks indexed
//!   by `tick & mask`, re-anchored near the touch) with a bitset to find the best levels without
//!   scanning, and a bounded sorted overflow for levels outside the window.
//! - [`ReferenceBook`]: a plain `BTreeMap` book, the yardstick for tests and benchmarks.
//! - [`BookLevels`] / [`L2Book`]: reading and writing any L2 book. Reading gives the best
//!   levels, the best-first walk, the cross check and depth within ±bps, and fills a
//!   [`BookTop`](pinion_core::BookTop), the top-of-book value the strategy reads, which carries
//!   the top-of-book analytics.
//! - [`BookSync`]: per-venue sync state machines (Binance Spot, Binance futures, Bybit v5) that
//!   decide whether an update applies, is stale, or reveals a gap that needs a fresh snapshot.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bitset;
pub mod book;
pub mod error;
pub mod levels;
mod overflow;
pub mod reference;
mod side;
pub mod sync;

pub use book::{BookConfig, BookStats, OrderBook};
pub use error::BookError;
pub use levels::{BookLevels, Cross, L2Book};
pub use reference::ReferenceBook;
pub use sync::{
    BookSync, ResyncReason, SequenceRule, SyncConfig, SyncCounters, SyncOutcome, SyncState,
    TickerCheck, TickerCounters, TickerOutcome,
};
