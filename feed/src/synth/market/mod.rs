//! [`SynthMarket`]: the market's dynamics and the frames that describe them.
//!
//! Each book update (one id) is one of: a trade at the touch, a stale touch level pulled, the
//! touch refilled at the fair price, a deep level added or removed to keep the side near its
//! configured depth, or a random change (size change, cancel, new level) concentrated near the
//! touch. Messages are released in the order a subscriber would see them: a trade as soon as it
//! happens, a depth diff when its batch of updates is complete, then a bookTicker for the same
//! state, so a ticker's `u` often equals the diff's `u` and the two can be cross-checked.
//!
//! The frame writers and the [`crate::FrameSource`] implementation are in [`emit`].

mod emit;

use arrayvec::ArrayVec;

use super::book::{SideBook, SynthLevel};
use super::frame::WireScale;
use super::rng::{SplitMix64, probability_threshold};
use super::{MAX_UPDATES_PER_DIFF, SynthConfig, SynthError};
use pinion_core::event::Side;
use pinion_core::instrument::InstrumentSpec;
use pinion_core::record::{ConnId, ConnInfo};
use pinion_core::venue::Venue;

/// Distinct levels one diff can carry: each update changes at most two levels (an insert into a
/// full side also drops its worst level), and a diff closes before this could overflow.
const MAX_PENDING: usize = 4 * MAX_UPDATES_PER_DIFF as usize;

/// The connection id of the market's only connection.
const CONN: ConnId = ConnId(0);

/// How long after connecting the REST snapshot arrives, ns.
const SNAPSHOT_DELAY_NS: u64 = 50_000_000;

/// Where the source is in its fixed record sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Snapshot,
    Stream,
}

/// A trade that happened and has not been sent yet.
#[derive(Debug, Clone, Copy)]
struct TradePrint {
    tick: i64,
    qty: i64,
    buyer_maker: bool,
}

/// The synthetic market as a [`crate::FrameSource`]. See the [module docs](super).
#[derive(Debug)]
pub struct SynthMarket {
    spec: InstrumentSpec,
    conns: Vec<ConnInfo>,
    px_wire: WireScale,
    qty_wire: WireScale,
    rng: SplitMix64,

    // Settings, in instrument units.
    messages: u64,
    levels: usize,
    slack: usize,
    mean_interval_ns: u64,
    exchange_latency_ns: u64,
    updates_per_diff: u32,
    ticker_every: u32,
    trade_threshold: u64,
    mid_step_threshold: u64,
    mid_step_max: u64,
    max_gap: u64,
    level_qty: i64,
    trade_qty: i64,
    min_tick: i64,

    // Market state.
    bids: SideBook,
    asks: SideBook,
    /// The fair price as the tick the best ask should sit at; the best bid belongs one below.
    fair: i64,
    update_id: u64,
    next_trade_id: u64,

    // What has changed since the last message of each stream.
    pending: ArrayVec<(Side, i64), MAX_PENDING>,
    pending_updates: u32,
    diff_target: u32,
    updates_since_ticker: u32,
    touch_changed: bool,
    trade: Option<TradePrint>,
    diff_due: bool,
    ticker_due: bool,

    // Output.
    phase: Phase,
    emitted: u64,
    t_recv: u64,
    ws_url: Vec<u8>,
    rest_url: Vec<u8>,
    depth_prefix: Vec<u8>,
    ticker_prefix: Vec<u8>,
    trade_prefix: Vec<u8>,
    symbol_field: Vec<u8>,
    buf: Vec<u8>,
}

impl SynthMarket {
    /// A market for `config`, with its initial book built and every buffer allocated.
    pub fn new(config: SynthConfig) -> Result<Self, SynthError> {
        let r = config.resolve()?;
        let spec = r.spec;
        let slack = (config.levels / 10).max(1);
        // Room for the depth band plus the transient inserts a walk of the fair price causes.
        let side_capacity = config.levels + slack + 2 * config.mid_step_max_ticks as usize + 8;
        let px_wire = WireScale::new(spec.price_decimals);
        let qty_wire = WireScale::new(spec.qty_decimals);
        let highest_tick = r.start_tick.saturating_mul(4);
        if !px_wire.fits(highest_tick.saturating_mul(spec.tick.0)) {
            return Err(SynthError::OutOfRange {
                field: "start_price",
                problem: "is too large to write with eight decimals",
            });
        }

        let lower = config.symbol.to_ascii_lowercase();
        let upper = spec.symbol.as_str().as_bytes().to_vec();
        let ws_url = format!(
            "wss://stream.binance.com:9443/stream?streams={lower}@depth@100ms/{lower}@bookTicker/{lower}@trade"
        );
        let rest_url = format!(
            "https://api.binance.com/api/v3/depth?symbol={}&limit={}",
            spec.symbol, config.levels
        );
        let stream_prefix = |stream: &str, rest: &str| {
            format!("{{\"stream\":\"{lower}@{stream}\",\"data\":{{{rest}").into_bytes()
        };
        let mut symbol_field = b",\"s\":\"".to_vec();
        symbol_field.extend_from_slice(&upper);
        symbol_field.push(b'"');

        // The largest frame is the snapshot or a full diff; a level is at most two quoted
        // decimals plus punctuation.
        let level_bytes = 2 * (pinion_core::decimal::MAX_FORMATTED_LEN + 2) + 3;
        let buf_capacity = 256 + level_bytes * (2 * side_capacity).max(MAX_PENDING);

        let mut market = Self {
            conns: vec![ConnInfo {
                id: CONN,
                venue: Some(Venue::BinanceSpot),
                url: ws_url.clone(),
            }],
            px_wire,
            qty_wire,
            rng: SplitMix64::new(config.seed),
            messages: config.messages,
            levels: config.levels,
            slack,
            mean_interval_ns: config.mean_interval_ns,
            exchange_latency_ns: config.exchange_latency_ns,
            updates_per_diff: config.updates_per_diff,
            ticker_every: config.ticker_every,
            trade_threshold: probability_threshold(config.trade_prob),
            mid_step_threshold: probability_threshold(config.mid_step_prob),
            mid_step_max: u64::from(config.mid_step_max_ticks),
            max_gap: u64::from(config.max_level_gap_ticks),
            level_qty: r.level_qty,
            trade_qty: r.trade_qty,
            min_tick: r.min_tick,
            bids: SideBook::with_capacity(Side::Bid, side_capacity),
            asks: SideBook::with_capacity(Side::Ask, side_capacity),
            fair: r.start_tick,
            update_id: config.first_update_id,
            next_trade_id: config.first_trade_id,
            pending: ArrayVec::new(),
            pending_updates: 0,
            diff_target: config.updates_per_diff,
            updates_since_ticker: 0,
            touch_changed: false,
            trade: None,
            diff_due: false,
            ticker_due: false,
            phase: Phase::Connect,
            emitted: 0,
            t_recv: config.start_ns,
            ws_url: ws_url.into_bytes(),
            rest_url: rest_url.into_bytes(),
            depth_prefix: stream_prefix("depth@100ms", "\"e\":\"depthUpdate\",\"E\":"),
            ticker_prefix: stream_prefix("bookTicker", "\"u\":"),
            trade_prefix: stream_prefix("trade", "\"e\":\"trade\",\"E\":"),
            symbol_field,
            buf: Vec::with_capacity(buf_capacity),
            spec,
        };
        market.build_initial_book();
        market.diff_target = market.draw_diff_target();
        Ok(market)
    }

    /// The instrument the frames describe.
    pub fn spec(&self) -> &InstrumentSpec {
        &self.spec
    }

    /// Stream frames still to come.
    pub fn remaining(&self) -> u64 {
        self.messages - self.emitted
    }

    fn build_initial_book(&mut self) {
        let mut tick = self.fair;
        for _ in 0..self.levels {
            let qty = self.draw_qty(self.level_qty);
            self.asks.set(tick, qty);
            tick += self.draw_gap();
        }
        let mut tick = self.fair - 1;
        for _ in 0..self.levels {
            let qty = self.draw_qty(self.level_qty);
            self.bids.set(tick, qty);
            tick -= self.draw_gap();
        }
    }

    // ---- random draws -------------------------------------------------------------------

    /// A heavy-tailed size around `typical`, a positive multiple of the step: uniform below
    /// `typical × 2^k` with `k` geometric, so `P(size > x)` falls off roughly as `1/x`.
    fn draw_qty(&mut self, typical: i64) -> i64 {
        let step = self.spec.step.0;
        let typical_steps = (typical / step).max(1) as u64;
        let k = self.rng.geometric_half(10);
        let steps = 1 + self.rng.below(typical_steps << k) / 2;
        steps as i64 * step
    }

    fn draw_gap(&mut self) -> i64 {
        1 + self.rng.below(self.max_gap) as i64
    }

    /// Depth index of a random change: mostly near the touch (mean 3), capped at the side.
    fn draw_depth(&mut self, len: usize) -> usize {
        let d =
            self.rng.geometric_half(63) + self.rng.geometric_half(63) + self.rng.geometric_half(63);
        (d as usize).min(len.saturating_sub(1))
    }

    fn draw_diff_target(&mut self) -> u32 {
        1 + self.rng.below(u64::from(2 * self.updates_per_diff - 1)) as u32
    }

    /// Gap to the next frame: a burst component (70 %, mean `m/4`) and a quiet one (30 %,
    /// mean `11m/4`), mean `m` overall; at least 1 ns so `t_recv` strictly increases.
    fn draw_interval(&mut self) -> u64 {
        let m = self.mean_interval_ns;
        let gap = if self.rng.below(10) < 7 {
            self.rng.below(m / 2)
        } else {
            self.rng.below(m.saturating_mul(11) / 2)
        };
        gap.max(1)
    }

    // ---- dynamics -----------------------------------------------------------------------

    fn side_book(&self, side: Side) -> &SideBook {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    fn side_book_mut(&mut self, side: Side) -> &mut SideBook {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    fn touch(&self) -> (Option<SynthLevel>, Option<SynthLevel>) {
        (self.bids.best(), self.asks.best())
    }

    fn note_pending(&mut self, side: Side, tick: i64) {
        if !self.pending.iter().any(|&(s, t)| s == side && t == tick) {
            // Cannot fail: a diff is forced out long before the set fills (see MAX_PENDING).
            let _ = self.pending.try_push((side, tick));
        }
    }

    /// Sets a level's absolute quantity and remembers it for the next diff. A new level in a
    /// full side pushes out that side's worst level, so the side never reallocates.
    fn change(&mut self, side: Side, tick: i64, qty: i64) {
        if !self.side_book_mut(side).set(tick, qty) {
            if let Some(worst) = self.side_book(side).worst() {
                self.side_book_mut(side).set(worst.tick, 0);
                self.note_pending(side, worst.tick);
            }
            self.side_book_mut(side).set(tick, qty);
        }
        self.note_pending(side, tick);
    }

    /// One book update: one new update id.
    fn step(&mut self) {
        if self.rng.chance(self.mid_step_threshold) {
            let size = 1 + self.rng.below(self.mid_step_max) as i64;
            self.fair = if self.rng.coin() {
                self.fair + size
            } else {
                (self.fair - size).max(self.min_tick)
            };
        }
        let before = self.touch();
        let traded = self.rng.chance(self.trade_threshold) && self.trade_at_touch();
        if !traded {
            self.book_update();
        }
        self.update_id += 1;
        self.pending_updates += 1;
        self.updates_since_ticker += 1;
        let after = self.touch();
        self.touch_changed |= after != before;
        if self.touch_changed
            && self.updates_since_ticker >= self.ticker_every
            && after.0.is_some()
            && after.1.is_some()
        {
            self.ticker_due = true;
        }
        if self.pending_updates >= self.diff_target || self.pending.len() + 2 > MAX_PENDING {
            self.diff_due = true;
        }
    }

    /// A taker hits the bid or lifts the ask. A touch level the fair price has left behind is
    /// taken whole (that is how the price moves through it); otherwise the size is drawn and
    /// capped at the level. Returns false when the book has no touch to trade at.
    fn trade_at_touch(&mut self) -> bool {
        let (Some(bid), Some(ask)) = self.touch() else {
            return false;
        };
        let stale_ask = ask.tick < self.fair;
        let stale_bid = bid.tick > self.fair - 1;
        let buy = if stale_ask {
            true
        } else if stale_bid {
            false
        } else {
            self.rng.coin()
        };
        let (side, level, sweep) = if buy {
            (Side::Ask, ask, stale_ask)
        } else {
            (Side::Bid, bid, stale_bid)
        };
        let mut qty = if sweep {
            level.qty
        } else {
            self.draw_qty(self.trade_qty).min(level.qty)
        };
        if self.side_book(side).len() == 1 && qty == level.qty {
            // The last level of a side is never taken whole, so neither side is ever empty.
            if level.qty <= self.spec.step.0 {
                return false;
            }
            qty -= self.spec.step.0;
        }
        self.change(side, level.tick, level.qty - qty);
        self.trade = Some(TradePrint {
            tick: level.tick,
            qty,
            buyer_maker: !buy,
        });
        true
    }

    /// A resting-order change. Keeping the touch at the fair price comes first, then keeping
    /// each side's depth in band, then random activity concentrated near the touch.
    fn book_update(&mut self) {
        let fair_bid = self.fair - 1;
        let (bid, ask) = self.touch();
        if let Some(a) = ask.filter(|a| a.tick < self.fair) {
            if self.asks.len() > 1 {
                self.change(Side::Ask, a.tick, 0);
            } else {
                // Never empty a side: quote beyond the fair price first, pull the stale level
                // later. The book was not crossed, so every bid is below `a.tick < fair`.
                let (qty, tick) = (self.draw_qty(self.level_qty), self.fair + self.draw_gap());
                self.change(Side::Ask, tick, qty);
            }
            return;
        }
        if let Some(b) = bid.filter(|b| b.tick > fair_bid) {
            if self.bids.len() > 1 {
                self.change(Side::Bid, b.tick, 0);
            } else {
                let (qty, tick) = (self.draw_qty(self.level_qty), fair_bid - self.draw_gap());
                self.change(Side::Bid, tick, qty);
            }
            return;
        }
        // A side the fair price has run through is rebuilt from the far end before anything
        // else, so it keeps depth even when the touch is busy.
        for side in [Side::Bid, Side::Ask] {
            if self.side_book(side).len() * 2 < self.levels {
                self.extend_far_end(side);
                return;
            }
        }
        // Refill only once the other side has made room, so the book never crosses.
        if bid.is_none_or(|b| b.tick < fair_bid) {
            let qty = self.draw_qty(self.level_qty);
            self.change(Side::Bid, fair_bid, qty);
            return;
        }
        if ask.is_none_or(|a| a.tick > self.fair) {
            let qty = self.draw_qty(self.level_qty);
            self.change(Side::Ask, self.fair, qty);
            return;
        }

        let side = if self.rng.coin() {
            Side::Bid
        } else {
            Side::Ask
        };
        let away: i64 = match side {
            Side::Bid => -1,
            Side::Ask => 1,
        };
        let book = self.side_book(side);
        let len = book.len();
        let (Some(best), Some(worst)) = (book.best(), book.worst()) else {
            return;
        };
        if len > self.levels + self.slack {
            self.change(side, worst.tick, 0);
            return;
        }
        if len + self.slack < self.levels {
            self.extend_far_end(side);
            return;
        }
        match self.rng.below(10) {
            0..=5 => {
                let d = self.draw_depth(len);
                let tick = self.side_book(side).levels()[d].tick;
                let qty = self.draw_qty(self.level_qty);
                self.change(side, tick, qty);
            }
            6 | 7 => {
                // Never the touch: pulling it is the fair price's job.
                let d = self.draw_depth(len).max(1).min(len - 1);
                let tick = self.side_book(side).levels()[d].tick;
                let qty = if d == 0 {
                    self.draw_qty(self.level_qty)
                } else {
                    0
                };
                self.change(side, tick, qty);
            }
            _ => {
                let span = (worst.tick - best.tick).unsigned_abs().max(1);
                let offset = 1 + self.rng.below(span.min(4 * self.max_gap)) as i64;
                let tick = best.tick + away * offset;
                let qty = self.draw_qty(self.level_qty);
                self.change(side, tick, qty);
            }
        }
    }

    /// Adds a level beyond the worst one of `side` (one gap further from the touch).
    fn extend_far_end(&mut self, side: Side) {
        let Some(worst) = self.side_book(side).worst() else {
            return;
        };
        let tick = match side {
            Side::Bid => worst.tick - self.draw_gap(),
            Side::Ask => worst.tick + self.draw_gap(),
        };
        let qty = self.draw_qty(self.level_qty);
        self.change(side, tick, qty);
    }
}
