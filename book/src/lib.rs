//! pinion-book: the local order book, kept exactly equal to the exchange's.
//!
//! - A per-side fixed-size array of price levels (a window of `2^k` ticks indexed by
//!   `tick & mask`, anchored near the mid) with a bitset to find the best levels without scanning,
//!   and a bounded sorted overflow for levels outside the window.
//! - Per-venue sync state machines (Binance Spot, Binance futures, Bybit v5) that decide whether
//!   an update applies, is stale, or reveals a gap that needs a fresh snapshot.
//! - Analytics for the strategy: best bid/ask, spread, mid, microprice, depth, imbalance, VWAP.
