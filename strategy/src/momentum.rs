//! [`Momentum`]: follow the trend of short against long moving averages, with an optional RSI
//! filter.
//!
//! **Samples.** Prices (trade prices, or the mid of synced views: [`PriceSource`]) are sampled
//! in event time: the last price seen in each `sample_ns` bucket of receive time is that
//! bucket's sample; a bucket with no price repeats the previous sample. With
//! [`PriceSource::Candles`] each closed candle of `sample_ns` is a sample, its close price (the
//! venue's kline, or a candle the engine built from trades in trade time); a candle missing
//! between two repeats the previous close. The samples live in a fixed ring of [`MAX_SAMPLES`].
//!
//! **Signal**, at each closed bucket once `long_samples` are in: the simple averages of the
//! last `short_samples` and `long_samples` samples; the short above the long by more than
//! `min_gap_ppm` of it is up, below by as much is down, in between leaves the target as it was.
//! With an RSI filter (Wilder's ratio of average gain to average loss over `period` changes,
//! simple averages), an up signal is ignored at or above `overbought`, a down one at or below
//! `oversold`.
//!
//! **Orders.** Up sets the target position to `+order_qty`, down to `−order_qty` (within
//! `max_position`). While the position differs from the target, the difference is sent as an
//! immediate-or-cancel limit order at the opposite touch (taker), at most one per sample
//! bucket, on a synced view; what does not fill expires and is tried again in a later bucket.

use pinion_core::{BookTop, Candle, InstrumentId, Px, Qty, TradePrint};

use crate::order::{ExecReport, OrderIdSource, OrderSide, OrderType, TimeInForce};
use crate::reason::entry_or_exit;
use crate::slots::{OrderSlots, Quote};
use crate::{Intents, Strategy};

/// Most samples kept (the long window's limit).
pub const MAX_SAMPLES: usize = 256;

/// Which prices are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    /// Trade prices.
    Trades,
    /// The mid of each synced view.
    Mid,
    /// The close of each closed candle of `sample_ns`.
    Candles,
}

/// The RSI filter's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsiFilter {
    /// Price changes averaged (`1..MAX_SAMPLES`).
    pub period: usize,
    /// At or above this RSI (0–100) an up signal is ignored.
    pub overbought: i64,
    /// At or below this RSI a down signal is ignored.
    pub oversold: i64,
}

/// Settings of the momentum strategy (quantities in the instrument's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MomentumParams {
    /// Which prices are sampled.
    pub source: PriceSource,
    /// Length of a sample bucket, event-time ns.
    pub sample_ns: u64,
    /// Samples of the short average (`1..long_samples`).
    pub short_samples: usize,
    /// Samples of the long average (`..=MAX_SAMPLES`).
    pub long_samples: usize,
    /// How far apart the averages must be for a signal, ppm of the long one.
    pub min_gap_ppm: i64,
    /// The optional RSI filter.
    pub rsi: Option<RsiFilter>,
    /// Size of the target position.
    pub order_qty: Qty,
    /// Largest absolute position.
    pub max_position: Qty,
}

/// Event-time samples of a price in a fixed ring.
#[derive(Debug, Clone)]
struct Samples {
    ring: [i64; MAX_SAMPLES],
    /// Samples held (up to `MAX_SAMPLES`).
    len: usize,
    /// Where the next sample goes.
    head: usize,
    /// The open bucket and the last price in it.
    open: Option<(u64, i64)>,
}

impl Samples {
    const fn new() -> Self {
        Self {
            ring: [0; MAX_SAMPLES],
            len: 0,
            head: 0,
            open: None,
        }
    }

    fn push(&mut self, px: i64) {
        self.ring[self.head] = px;
        self.head = (self.head + 1) % MAX_SAMPLES;
        self.len = (self.len + 1).min(MAX_SAMPLES);
    }

    /// Takes `px` seen at event time `t`; true when this closed at least one bucket.
    fn observe(&mut self, bucket: u64, px: i64) -> bool {
        match self.open {
            Some((b, last)) if bucket > b => {
                let closed = (bucket - b).min(MAX_SAMPLES as u64);
                for _ in 0..closed {
                    self.push(last);
                }
                self.open = Some((bucket, px));
                true
            }
            // The same bucket, or time going back (never expected): the latest price counts.
            Some((b, _)) => {
                self.open = Some((b, px));
                false
            }
            None => {
                self.open = Some((bucket, px));
                false
            }
        }
    }

    /// The `i`-th latest sample (0 = newest).
    fn back(&self, i: usize) -> i64 {
        self.ring[(self.head + MAX_SAMPLES - 1 - i) % MAX_SAMPLES]
    }

    /// Average of the latest `n` samples (`n <= len`).
    fn mean(&self, n: usize) -> i128 {
        let sum: i128 = (0..n).map(|i| i128::from(self.back(i))).sum();
        sum / n.max(1) as i128
    }

    /// RSI over the latest `period` changes, 0–100 (50 when nothing moved).
    fn rsi(&self, period: usize) -> i64 {
        let (mut up, mut down) = (0i128, 0i128);
        for i in 0..period {
            let d = i128::from(self.back(i)) - i128::from(self.back(i + 1));
            if d > 0 {
                up += d;
            } else {
                down -= d;
            }
        }
        if up + down == 0 {
            50
        } else {
            (100 * up / (up + down)) as i64
        }
    }
}

/// The momentum strategy for one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct Momentum {
    params: MomentumParams,
    orders: OrderSlots,
    samples: Samples,
    target: i64,
    /// The bucket of the last order sent.
    ordered_in: Option<u64>,
    /// Start of the last candle sampled.
    last_candle: Option<u64>,
}

impl Momentum {
    /// A strategy trading `instrument`, numbering orders from `ids`.
    pub fn new(instrument: InstrumentId, params: MomentumParams, ids: OrderIdSource) -> Self {
        let long = params.long_samples.clamp(2, MAX_SAMPLES);
        let short = params.short_samples.clamp(1, long - 1);
        Self {
            params: MomentumParams {
                long_samples: long,
                short_samples: short,
                sample_ns: params.sample_ns.max(1),
                ..params
            },
            orders: OrderSlots::new(instrument, 1, ids, params.max_position),
            samples: Samples::new(),
            target: 0,
            ordered_in: None,
            last_candle: None,
        }
    }

    /// The orders, what is known about them, the position and the counters.
    pub fn orders(&self) -> &OrderSlots {
        &self.orders
    }

    /// The position the strategy is working towards.
    pub fn target(&self) -> Qty {
        Qty(self.target)
    }

    /// Takes a price at `t`; a signal sets the target to `size` (capped by the position limit).
    fn observe(&mut self, t: u64, px: Px, size: Qty) {
        if !self.samples.observe(t / self.params.sample_ns, px.0) {
            return;
        }
        self.signal(size);
    }

    /// Samples a closed candle's close; one that is not later than the last is ignored.
    fn candle(&mut self, c: &Candle, size: Qty) {
        if let Some(last) = self.last_candle {
            if c.start_ns <= last {
                return;
            }
            // Candles missing in between (no trades) repeat the last close.
            let missing = ((c.start_ns - last) / self.params.sample_ns)
                .saturating_sub(1)
                .min(MAX_SAMPLES as u64);
            if missing > 0 && self.samples.len > 0 {
                let prev = self.samples.back(0);
                for _ in 0..missing {
                    self.samples.push(prev);
                }
            }
        }
        self.last_candle = Some(c.start_ns);
        self.samples.push(c.close.0);
        self.signal(size);
    }

    /// Compares the averages on the samples so far and sets the target.
    fn signal(&mut self, size: Qty) {
        let p = &self.params;
        let need = p.rsi.map_or(0, |r| r.period + 1).max(p.long_samples);
        if self.samples.len < need {
            return;
        }
        let long = self.samples.mean(p.long_samples);
        let short = self.samples.mean(p.short_samples);
        if long <= 0 {
            return;
        }
        let gap = (short - long) * 1_000_000 / long;
        let rsi = p.rsi.map(|r| (r, self.samples.rsi(r.period)));
        let size = size.0.min(p.max_position.0).max(0);
        if gap > i128::from(p.min_gap_ppm) && rsi.is_none_or(|(r, v)| v < r.overbought) {
            self.target = size;
        } else if gap < -i128::from(p.min_gap_ppm) && rsi.is_none_or(|(r, v)| v > r.oversold) {
            self.target = -size;
        }
    }
}

impl Strategy for Momentum {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        if book.instrument != self.orders.instrument() {
            return;
        }
        self.orders.count_book();
        if !book.synced {
            return;
        }
        if self.params.source == PriceSource::Mid
            && let Some(mid) = book.mid()
        {
            self.observe(book.t_recv, mid, out.order_qty(self.params.order_qty));
        }
        let bucket = book.t_recv / self.params.sample_ns;
        let diff = self.target - self.orders.position().qty().0;
        if diff == 0 || self.ordered_in == Some(bucket) || !self.orders.is_free(0) {
            return;
        }
        let (side, touch) = if diff > 0 {
            (OrderSide::Buy, book.best_ask())
        } else {
            (OrderSide::Sell, book.best_bid())
        };
        let Some(touch) = touch else {
            return;
        };
        let quote = Quote {
            side,
            px: touch.px,
            qty: Qty(diff.abs()),
            order_type: OrderType::Limit,
            tif: TimeInForce::Ioc,
            code: entry_or_exit(self.orders.position().qty(), side),
        };
        if self.orders.place(0, quote, book.t0, book.t_recv, out) {
            self.ordered_in = Some(bucket);
        }
    }

    fn on_trade(&mut self, trade: &TradePrint, out: &mut Intents) {
        if trade.instrument == self.orders.instrument() && self.params.source == PriceSource::Trades
        {
            self.observe(trade.t_recv, trade.px, out.order_qty(self.params.order_qty));
        }
    }

    fn on_exec(&mut self, rep: &ExecReport, _out: &mut Intents) {
        self.orders.on_exec(rep);
    }

    fn on_candle(&mut self, candle: &Candle, out: &mut Intents) {
        if self.params.source == PriceSource::Candles
            && candle.closed
            && candle.instrument == self.orders.instrument()
            && candle.interval_ns == self.params.sample_ns
        {
            self.candle(candle, out.order_qty(self.params.order_qty));
        }
    }

    fn candle_interval_ns(&self) -> Option<u64> {
        (self.params.source == PriceSource::Candles).then_some(self.params.sample_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderAction, OrderStatus};
    use crate::slots::tests::{INST, report};
    use crate::testbook::book;

    fn params() -> MomentumParams {
        MomentumParams {
            source: PriceSource::Trades,
            sample_ns: 100,
            short_samples: 2,
            long_samples: 4,
            min_gap_ppm: 100,
            rsi: None,
            order_qty: Qty(5),
            max_position: Qty(10),
        }
    }

    fn trade(t: u64, px: i64) -> TradePrint {
        TradePrint {
            t0: t,
            t_recv: t,
            exch_ts: 0,
            trade_ts: 0,
            trade_id: t,
            px: Px(px),
            qty: Qty(1),
            instrument: INST,
            buyer_maker: false,
        }
    }

    fn feed(s: &mut Momentum, prices: &[(u64, i64)]) {
        for &(t, px) in prices {
            s.on_trade(&trade(t, px), &mut Intents::new());
        }
    }

    fn run(s: &mut Momentum, t: u64) -> Intents {
        let mut out = Intents::new();
        s.on_book(&book(t, 99_990, 100_010), &mut out);
        out
    }

    #[test]
    fn samples_are_the_last_price_per_bucket_and_gaps_repeat_it() {
        let mut s = Samples::new();
        assert!(!s.observe(0, 10));
        assert!(!s.observe(0, 11));
        assert!(s.observe(3, 20));
        // Buckets 0, 1 and 2 closed, all at 11.
        assert_eq!((s.len, s.back(0), s.back(2)), (3, 11, 11));
        assert!(s.observe(4, 30));
        assert_eq!(s.back(0), 20);
        assert_eq!(s.mean(2), 15);
        // Changes 11→11→11→20: all up.
        assert_eq!(s.rsi(3), 100);
    }

    #[test]
    fn a_rising_short_average_buys_at_the_ask_and_a_falling_one_sells_through() {
        let mut s = Momentum::new(INST, params(), OrderIdSource::new(1));
        // Four flat samples, no signal yet.
        feed(
            &mut s,
            &[
                (0, 1_000),
                (100, 1_000),
                (200, 1_000),
                (300, 1_000),
                (400, 1_000),
            ],
        );
        assert_eq!(s.target(), Qty(0));
        assert!(run(&mut s, 450).is_empty());
        // Rising: samples 1000, 1000, 1010, 1020: short 1015, long 1007 (0.74 %): up.
        feed(&mut s, &[(500, 1_010), (600, 1_020), (700, 1_020)]);
        assert_eq!(s.target(), Qty(5));
        let out = run(&mut s, 750);
        let o = out[0];
        assert_eq!(
            (o.action, o.side, o.px, o.qty, o.order_type, o.tif),
            (
                OrderAction::New,
                OrderSide::Buy,
                Px(100_010),
                Qty(5),
                OrderType::Limit,
                TimeInForce::Ioc
            )
        );
        // Expired unfilled: not again in the same bucket, again in the next.
        s.on_exec(
            &report(o.client_id, o.side, OrderStatus::Expired, 0, 0, 0),
            &mut Intents::new(),
        );
        assert!(run(&mut s, 760).is_empty());
        let o = run(&mut s, 800)[0];
        s.on_exec(
            &report(o.client_id, o.side, OrderStatus::Filled, 100_010, 5, 0),
            &mut Intents::new(),
        );
        assert!(run(&mut s, 900).is_empty(), "at the target");
        // Falling hard: the target flips to -5, so sell 10 at the bid.
        feed(&mut s, &[(900, 900), (1_000, 800), (1_100, 800)]);
        assert_eq!(s.target(), Qty(-5));
        let o = run(&mut s, 1_150)[0];
        assert_eq!(
            (o.side, o.px, o.qty),
            (OrderSide::Sell, Px(99_990), Qty(10))
        );
    }

    fn candle(start: u64, close: i64) -> Candle {
        let mut b = pinion_core::CandleBuilder::new(100, 4);
        let mut t = trade(start, close);
        t.trade_ts = start;
        b.on_trade(&t, t.trade_id);
        b.close_before(INST, u64::MAX).unwrap()
    }

    #[test]
    fn candle_closes_are_the_samples_and_the_rsi_filter_applies_to_them() {
        let p = MomentumParams {
            source: PriceSource::Candles,
            ..params()
        };
        let mut s = Momentum::new(INST, p, OrderIdSource::new(1));
        assert_eq!(s.candle_interval_ns(), Some(100));
        let on = |s: &mut Momentum, c: Candle| s.on_candle(&c, &mut Intents::new());
        for (i, px) in [1_000, 1_000, 1_000, 1_000].into_iter().enumerate() {
            on(&mut s, candle(i as u64 * 100, px));
        }
        // Trades and open candles do not count; a candle of another length neither.
        feed(&mut s, &[(500, 2_000), (600, 2_000), (700, 2_000)]);
        on(
            &mut s,
            Candle {
                closed: false,
                ..candle(400, 2_000)
            },
        );
        on(
            &mut s,
            Candle {
                interval_ns: 60,
                ..candle(400, 2_000)
            },
        );
        assert_eq!(s.target(), Qty(0));
        // Two closes up: short 1015 over long 1007.5.
        on(&mut s, candle(400, 1_010));
        on(&mut s, candle(500, 1_020));
        assert_eq!(s.target(), Qty(5));
        // A candle again, or an older one, is not a new sample.
        on(&mut s, candle(500, 500));
        on(&mut s, candle(300, 500));
        assert_eq!((s.samples.len, s.samples.back(0)), (6, 1_020));
        // A gap of two candles repeats 1020 twice before the new close.
        on(&mut s, candle(800, 900));
        assert_eq!(s.samples.len, 9);
        assert_eq!(
            (s.samples.back(0), s.samples.back(1), s.samples.back(2)),
            (900, 1_020, 1_020)
        );

        // With the RSI filter, a run of rising closes is overbought: no entry.
        let mut s = Momentum::new(
            INST,
            MomentumParams {
                rsi: Some(RsiFilter {
                    period: 3,
                    overbought: 70,
                    oversold: 30,
                }),
                ..p
            },
            OrderIdSource::new(1),
        );
        for (i, px) in [1_000, 1_000, 1_000, 1_000, 1_010, 1_020, 1_030]
            .into_iter()
            .enumerate()
        {
            on(&mut s, candle(i as u64 * 100, px));
        }
        assert_eq!(s.target(), Qty(0));
        let trades_only = Momentum::new(INST, params(), OrderIdSource::new(1));
        assert_eq!(trades_only.candle_interval_ns(), None);
    }

    #[test]
    fn the_rsi_filter_holds_back_an_overbought_entry() {
        let mut p = params();
        p.rsi = Some(RsiFilter {
            period: 3,
            overbought: 70,
            oversold: 30,
        });
        let mut s = Momentum::new(INST, p, OrderIdSource::new(1));
        feed(
            &mut s,
            &[
                (0, 1_000),
                (100, 1_000),
                (200, 1_000),
                (300, 1_000),
                (400, 1_000),
            ],
        );
        feed(&mut s, &[(500, 1_010), (600, 1_020), (700, 1_020)]);
        // Every one of the last three changes was up: RSI 100, overbought.
        assert_eq!(s.target(), Qty(0));
        let mut s = Momentum::new(
            INST,
            MomentumParams {
                source: PriceSource::Mid,
                ..params()
            },
            OrderIdSource::new(1),
        );
        feed(&mut s, &[(500, 1_010), (600, 1_020), (700, 1_020)]);
        assert_eq!(
            s.target(),
            Qty(0),
            "trades do not count when the mid is sampled"
        );
    }
}
