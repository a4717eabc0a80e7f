//! pinion-feed: everything between the wire and the order book's input.
//!
//! - [`parse`]: the venues' messages (Binance Spot and futures, Bybit v5) decoded exactly into
//!   [`pinion_core::MarketEvent`]s, through simd-json or the strict flat scanner.
//! - [`source`]: the [`FrameSource`] trait and readers of recordings in the formats found in the
//!   wild, and of packet captures.
//! - [`recording`]: pinion's own `.pnr` format and its recorder.
//! - [`synth`]: the synthetic market.
//! - [`exchange_info`]: instrument specs from a venue's `exchangeInfo` / `instruments-info`.
//! - [`sbe`]: the layout of Binance Spot's binary (SBE) market-data messages.
//! - [`sbe_encode`]: JSON stream messages into the SBE frames Binance would have sent.
//! - [`survey`]: a first pass over a recording: venues, symbols and number shapes from content.
//! - [`live`]: the venues' live market streams as a source (feature `live`).
//!
//! The vocabulary (prices, instruments, events, raw records) is `pinion-core`'s. Live and
//! replayed data go through the same parser, so a recording exercises exactly the code that runs
//! in production.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod exchange_info;
pub mod live;
pub mod parse;
pub mod recording;
pub mod sbe;
pub mod sbe_encode;
pub mod source;
pub mod survey;
pub mod synth;

pub use error::{FeedError, SourceError};
pub use source::{FrameSource, SourceLine};
