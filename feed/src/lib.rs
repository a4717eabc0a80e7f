//! pinion-feed: everything between the wire and the order book.
//!
//! - [`decimal`]: exact scaled-integer prices and quantities ([`Px`], [`Qty`]) parsed straight
//!   from the exchanges' decimal strings, never through `f64`.
//! - [`instrument`]: instrument specs (tick, step, filters) and the registry that maps a venue's
//!   symbol to a compact [`InstrumentId`].
//! - [`event`]: [`MarketEvent`], the fixed-size `Copy` record that flows through the rings.
//! - [`record`]: [`RawRecord`], what every source yields: receive time, connection, raw bytes.
//!
//! Live and replayed data go through the same parser, so a recording exercises exactly the code
//! that runs in production.

#![forbid(unsafe_code)]

pub mod decimal;
pub mod error;
pub mod event;
pub mod instrument;
pub mod mem;
pub mod parse;
pub mod record;
pub mod recording;
pub mod source;
pub mod synth;
pub mod testdata;
pub mod venue;

pub use decimal::{DecimalError, Px, Qty};
pub use error::{FeedError, SourceError};
pub use event::{EventFlags, EventKind, Level, MarketEvent, Side, TradePrint};
pub use instrument::{InstrumentId, InstrumentSpec, Instruments, Symbol};
pub use record::{ConnId, ConnInfo, FrameSource, RawRecord, RecordKind};
pub use venue::Venue;
