//! pinion-book: the local order book, kept exactly equal to the exchange's.
//!
//! - [`OrderBook`]: per side a fixed-size array of price levels (a window of `2^k` ticks indexed
//!   by `tick & mask`, re-anchored near the touch) with a bitset to find the best levels without
//!   scanning, and a bounded sorted overflow for levels outside the window.
//! - [`ReferenceBook`]: a plain `BTreeMap` book, the yardstick for tests and benchmarks.
//! - [`BookView`] / [`L2Book`]: reading and writing any L2 book; the analytics the strategy uses
//!   (spread, mid, microprice, depth within bps, imbalance, VWAP, slippage) live on `BookView`.
//! - [`BookSync`]: per-venue sync state machines (Binance Spot, Binance futures, Bybit v5) that
//!   decide whether an update applies, is stale, or reveals a gap that needs a fresh snapshot.
//! - [`BookSnapshot`]: the top `K` levels, `Copy`, what the book stage sends to the strategy.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bitset;
pub mod book;
pub mod error;
mod overflow;
pub mod reference;
mod side;
pub mod snapshot;
pub mod sync;
pub mod view;

pub use book::{BookConfig, BookStats, OrderBook};
pub use error::BookError;
pub use reference::ReferenceBook;
pub use snapshot::{BookSnapshot, DEFAULT_SNAPSHOT_DEPTH};
pub use sync::{
    BookSync, ResyncReason, SequenceRule, SyncConfig, SyncCounters, SyncOutcome, SyncState,
    TickerCheck, TickerCounters, TickerOutcome,
};
pub use view::{BookView, Cross, L2Book, Sweep};
