//! A deterministic synthetic market that emits real Binance Spot frames.
//!
//! [`SynthMarket`] is a [`crate::FrameSource`]: one connection (a `Connect` record with a
//! combined-stream URL), one REST depth snapshot, then `messages` combined-stream frames of
//! `@depth@100ms` diffs, `@bookTicker`s and `@trade`s, byte-for-byte in the shape Binance sends.
//! The whole pipeline, parser included, runs on it exactly as on a recording, so it is the
//! default input of the main job and of tests that need more data than the recordings hold.
//!
//! The market behind the frames:
//! - a fair price in ticks that takes random-walk steps;
//! - a book kept internally (module `book`), with levels spaced a few ticks apart and sizes
//!   drawn from a heavy-tailed distribution; quotes follow the fair price (stale touch levels are cancelled
//!   or traded through, the touch is refilled at the fair price), and levels deeper in the book
//!   change, appear and are cancelled;
//! - trades at the touch that consume the level's quantity.
//!
//! Invariants every run keeps (and `feed/tests/synth.rs` checks against an independently rebuilt
//! book):
//! - every book change has its own update id; a depth diff covers the ids `U..=u` since the
//!   previous diff (`U == previous u + 1`, the first `U == lastUpdateId + 1`) and carries each
//!   changed level's final absolute quantity (`0` = removed);
//! - a bookTicker's `u` is the id of the book state it reports, so when it equals the last diff's
//!   `u` the book rebuilt from snapshot and diffs has exactly that best bid and ask;
//! - the book is never crossed and neither side is ever empty;
//! - `t_recv` strictly increases.
//!
//! Everything is drawn from one seeded generator using integer arithmetic only, so the same
//! config gives the same bytes everywhere. After construction, generating frames allocates
//! nothing: the book, the pending-diff set and the frame buffer are allocated once.

mod book;
mod frame;
mod market;
mod rng;

pub use market::SynthMarket;

use pinion_core::decimal::DecimalError;
use pinion_core::instrument::{InstrumentError, InstrumentSpec};
use pinion_core::venue::Venue;

/// Most levels a side may be configured with.
pub const MAX_SYNTH_LEVELS: usize = 5000;

/// Most book updates one depth diff may cover on average (a diff's pending-level set is a fixed
/// array twice this size).
pub const MAX_UPDATES_PER_DIFF: u32 = 64;

/// How the synthetic market is set up. [`SynthConfig::default`] is a BTCUSDT market with the
/// real instrument's tick and step and message mix close to the 2024-08-08 recording
/// (about 70 % bookTicker, 20 % trades, 10 % depth diffs).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of the generator: same seed and config, same bytes.
    pub seed: u64,
    /// The symbol, as written in payloads (`BTCUSDT`); stream names use it in lower case.
    pub symbol: String,
    /// How many stream frames follow the snapshot (the `Connect` and snapshot records are extra).
    pub messages: u64,
    /// Tick size as Binance writes it (`"0.01"`).
    pub tick_size: String,
    /// Step (lot) size as Binance writes it (`"0.00001"`).
    pub step_size: String,
    /// Price the market starts at; rounded down to the tick grid.
    pub start_price: String,
    /// Levels per side in the snapshot; the book stays within about 10 % of this.
    pub levels: usize,
    /// Mean gap between consecutive frames' `t_recv`, ns.
    pub mean_interval_ns: u64,
    /// `t_recv` of the `Connect` record, ns since the epoch.
    pub start_ns: u64,
    /// How far the exchange's event time `E` is behind `t_recv`, ns.
    pub exchange_latency_ns: u64,
    /// `lastUpdateId` of the snapshot.
    pub first_update_id: u64,
    /// Id of the first trade.
    pub first_trade_id: u64,
    /// Mean number of book updates one depth diff covers (each diff draws from
    /// `1..2 × mean`).
    pub updates_per_diff: u32,
    /// A bookTicker is sent when the touch has changed and at least this many book updates
    /// have happened since the previous one.
    pub ticker_every: u32,
    /// Probability that a book update is a trade at the touch.
    pub trade_prob: f64,
    /// Probability, per book update, that the fair price steps.
    pub mid_step_prob: f64,
    /// Largest fair-price step, in ticks (steps are uniform in `1..=max`).
    pub mid_step_max_ticks: u32,
    /// Largest gap between adjacent levels, in ticks (gaps are uniform in `1..=max`).
    pub max_level_gap_ticks: u32,
    /// Typical resting level size as a decimal (`"0.25"`); sizes are heavy-tailed around it.
    pub level_qty: String,
    /// Typical trade size as a decimal (`"0.01"`).
    pub trade_qty: String,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0x5EED_B7C0_5D7A_2024,
            symbol: "BTCUSDT".to_owned(),
            messages: 100_000,
            tick_size: "0.01".to_owned(),
            step_size: "0.00001".to_owned(),
            start_price: "61837.63".to_owned(),
            levels: 200,
            mean_interval_ns: 7_000_000,
            start_ns: 1_723_161_253_937_085_768,
            exchange_latency_ns: 2_000_000,
            first_update_id: 50_093_239_218,
            first_trade_id: 3_735_683_259,
            updates_per_diff: 24,
            ticker_every: 3,
            trade_prob: 0.1,
            mid_step_prob: 0.05,
            mid_step_max_ticks: 3,
            max_level_gap_ticks: 5,
            level_qty: "0.25".to_owned(),
            trade_qty: "0.01".to_owned(),
        }
    }
}

/// Why a [`SynthConfig`] cannot be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// The symbol, tick size or step size do not make an instrument.
    #[error("synthetic market instrument: {0}")]
    Instrument(#[from] InstrumentError),
    /// A decimal field does not parse at the instrument's scale.
    #[error("synthetic market: bad {field}: {source}")]
    Decimal {
        /// The config field.
        field: &'static str,
        /// Why it failed.
        source: DecimalError,
    },
    /// A field is out of its allowed range.
    #[error("synthetic market: {field} {problem}")]
    OutOfRange {
        /// The config field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl SynthConfig {
    /// The instrument the market trades: Binance Spot, this symbol, tick and step.
    pub fn instrument_spec(&self) -> Result<InstrumentSpec, InstrumentError> {
        InstrumentSpec::new(
            Venue::BinanceSpot,
            &self.symbol,
            &self.tick_size,
            &self.step_size,
        )
    }

    /// Checks every field and returns the instrument with the start price and sizes in its
    /// units.
    fn resolve(&self) -> Result<Resolved, SynthError> {
        let spec = self.instrument_spec()?;
        let decimal = |field: &'static str, source| SynthError::Decimal { field, source };
        let range = |field: &'static str, problem: &'static str| {
            Err(SynthError::OutOfRange { field, problem })
        };
        let start = spec
            .px(self.start_price.as_bytes())
            .map_err(|e| decimal("start_price", e))?;
        let level_qty = spec
            .qty(self.level_qty.as_bytes())
            .map_err(|e| decimal("level_qty", e))?;
        let trade_qty = spec
            .qty(self.trade_qty.as_bytes())
            .map_err(|e| decimal("trade_qty", e))?;
        if !(2..=MAX_SYNTH_LEVELS).contains(&self.levels) {
            return range("levels", "must be in 2..=5000");
        }
        if self.mean_interval_ns == 0 {
            return range("mean_interval_ns", "must be positive");
        }
        if !(1..=MAX_UPDATES_PER_DIFF).contains(&self.updates_per_diff) {
            return range("updates_per_diff", "must be in 1..=64");
        }
        if self.ticker_every == 0 {
            return range("ticker_every", "must be positive");
        }
        if !(0.0..1.0).contains(&self.trade_prob) {
            return range("trade_prob", "must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.mid_step_prob) {
            return range("mid_step_prob", "must be in [0, 1]");
        }
        if !(1..=1000).contains(&self.mid_step_max_ticks) {
            return range("mid_step_max_ticks", "must be in 1..=1000");
        }
        if !(1..=1000).contains(&self.max_level_gap_ticks) {
            return range("max_level_gap_ticks", "must be in 1..=1000");
        }
        if level_qty.0 < spec.step.0 || trade_qty.0 < spec.step.0 {
            return range("level_qty/trade_qty", "must be at least one step");
        }
        let start_tick = spec.tick_index(start);
        // The deepest bid must stay above zero even after a long walk down.
        let depth_ticks = self.levels as i64 * i64::from(self.max_level_gap_ticks);
        if start_tick <= 4 * depth_ticks {
            return range("start_price", "is too low for the book's depth in ticks");
        }
        Ok(Resolved {
            spec,
            start_tick,
            level_qty: level_qty.0,
            trade_qty: trade_qty.0,
            min_tick: 2 * depth_ticks,
        })
    }
}

/// A validated config in instrument units.
#[derive(Debug, Clone)]
struct Resolved {
    spec: InstrumentSpec,
    start_tick: i64,
    /// Typical level size in quantity units.
    level_qty: i64,
    /// Typical trade size in quantity units.
    trade_qty: i64,
    /// The fair price never walks below this tick, so bids stay positive.
    min_tick: i64,
}
