//! Candles and 24-hour tickers: what a `Kline` or `Ticker24h` [`MarketEvent`] says, and the
//! [`CandleBuilder`] that makes the same candles from trades where no kline stream is read.
//!
//! Both are fixed-size `Copy` records. The builder keeps one open candle per instrument in a
//! vector sized at start-up, so building candles on the hot path allocates nothing.
//!
//! **Event time only.** A trade falls in the candle of its trade time (`T`, else the event time,
//! else the receive time), cut at multiples of the interval since the epoch, as the venues cut
//! their klines; a candle closes when a trade of a later candle arrives, or when
//! [`CandleBuilder::close_before`] is told event time has passed its end. So a backtest gives the
//! same candles on every run, whatever the replay speed.
//!
//! A venue's kline for a minute without trades repeats the previous close with zero volume;
//! the builder has nothing to open such a candle with and gives none.

use crate::decimal::{Px, Qty};
use crate::event::{EventFlags, EventKind, Level, MarketEvent, TradePrint};
use crate::instrument::InstrumentId;

/// One candle: open, high, low and close prices of an interval's trades, and their volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Candle {
    /// Start of the interval, ns since the epoch.
    pub start_ns: u64,
    /// Length of the interval, ns.
    pub interval_ns: u64,
    /// The exchange's event time of the message that brought the candle (its closing trade's
    /// for a built one), ns since the epoch; 0 if absent.
    pub exch_ts: u64,
    /// When that message was received, ns since the epoch.
    pub t_recv: u64,
    /// `t0` of that message (engine monotonic ns).
    pub t0: u64,
    /// First trade id in the candle (0 if the venue does not say).
    pub first_trade_id: u64,
    /// Last trade id in the candle (0 if the venue does not say).
    pub last_trade_id: u64,
    /// Number of trades (0 if the venue does not say).
    pub trades: u64,
    /// First trade's price.
    pub open: Px,
    /// Highest price.
    pub high: Px,
    /// Lowest price.
    pub low: Px,
    /// Last trade's price.
    pub close: Px,
    /// Base volume.
    pub volume: Qty,
    /// Base volume of trades whose taker bought (0 if the venue does not say).
    pub taker_buy_volume: Qty,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Whether the interval is over: no trade will change the candle any more.
    pub closed: bool,
}

impl Candle {
    /// End of the interval (exclusive), ns since the epoch.
    #[inline]
    pub const fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.interval_ns)
    }

    /// The candle of a `Kline` event; `None` for any other event or one without its four
    /// levels. See [`Candle::to_event`] for the layout.
    #[inline]
    pub fn from_event(ev: &MarketEvent) -> Option<Candle> {
        if ev.kind != EventKind::Kline || ev.n_levels < 4 {
            return None;
        }
        let l = &ev.levels;
        Some(Candle {
            start_ns: ev.trans_ts,
            interval_ns: ev.prev_id,
            exch_ts: ev.exch_ts,
            t_recv: ev.t_recv,
            t0: ev.t0,
            first_trade_id: ev.first_id,
            last_trade_id: ev.last_id,
            trades: ev.seq,
            open: l[0].px,
            high: l[1].px,
            low: l[2].px,
            close: l[3].px,
            volume: l[0].qty,
            taker_buy_volume: l[1].qty,
            instrument: ev.instrument,
            closed: ev.flags.contains(EventFlags::CLOSED),
        })
    }

    /// Writes the candle into `ev` as a `Kline` event: start in `trans_ts`, interval (ns) in
    /// `prev_id`, trade ids in `first_id`/`last_id`, trade count in `seq`, levels
    /// `[open × volume, high × taker buy volume, low × 0, close × 0]`, [`EventFlags::CLOSED`]
    /// when closed. Times other than `exch_ts`, the connection and the other flags are left.
    pub fn write_event(&self, ev: &mut MarketEvent) {
        ev.kind = EventKind::Kline;
        ev.instrument = self.instrument;
        ev.exch_ts = self.exch_ts;
        ev.trans_ts = self.start_ns;
        ev.prev_id = self.interval_ns;
        ev.first_id = self.first_trade_id;
        ev.last_id = self.last_trade_id;
        ev.seq = self.trades;
        ev.levels[0] = Level {
            px: self.open,
            qty: self.volume,
        };
        ev.levels[1] = Level {
            px: self.high,
            qty: self.taker_buy_volume,
        };
        ev.levels[2] = Level {
            px: self.low,
            qty: Qty(0),
        };
        ev.levels[3] = Level {
            px: self.close,
            qty: Qty(0),
        };
        ev.n_bids = 0;
        ev.n_levels = 4;
        if self.closed {
            ev.flags.insert(EventFlags::CLOSED);
        } else {
            ev.flags.0 &= !EventFlags::CLOSED.0;
        }
    }

    /// The candle as a complete `Kline` event (FIRST|LAST, with its receive times).
    pub fn to_event(&self) -> MarketEvent {
        let mut ev = MarketEvent::EMPTY;
        ev.t_recv = self.t_recv;
        ev.t0 = self.t0;
        ev.flags = EventFlags::FIRST | EventFlags::LAST;
        self.write_event(&mut ev);
        ev
    }
}

/// Which fields of a [`Ticker24h`] a message carried (a Bybit futures `delta` carries only the
/// ones that changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct TickerFields(pub u8);

impl TickerFields {
    /// The last price.
    pub const LAST: TickerFields = TickerFields(1);
    /// The price 24 h ago (the window's open).
    pub const OPEN: TickerFields = TickerFields(1 << 1);
    /// The 24 h high.
    pub const HIGH: TickerFields = TickerFields(1 << 2);
    /// The 24 h low.
    pub const LOW: TickerFields = TickerFields(1 << 3);
    /// The 24 h base volume.
    pub const VOLUME: TickerFields = TickerFields(1 << 4);
    /// Every field.
    pub const ALL: TickerFields = TickerFields(0x1f);

    /// Whether all bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: TickerFields) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    #[inline]
    pub fn insert(&mut self, other: TickerFields) {
        self.0 |= other.0;
    }
}

/// A rolling 24-hour ticker: last price, the window's open, high and low, and its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Ticker24h {
    /// The exchange's event time of the latest message, ns since the epoch; 0 if absent.
    pub exch_ts: u64,
    /// When the latest message was received, ns since the epoch.
    pub t_recv: u64,
    /// Last price.
    pub last: Px,
    /// Price at the start of the window.
    pub open: Px,
    /// Highest price in the window.
    pub high: Px,
    /// Lowest price in the window.
    pub low: Px,
    /// Base volume in the window.
    pub volume: Qty,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Which of the fields above are known.
    pub fields: TickerFields,
}

impl Ticker24h {
    /// The fields a `Ticker24h` event carries (a partial one for a delta); `None` for any other
    /// event. Layout: `levels[0..4]` = last, open, high, low prices, `levels[1].qty` the volume,
    /// `prev_id` the [`TickerFields`] present.
    #[inline]
    pub fn from_event(ev: &MarketEvent) -> Option<Ticker24h> {
        if ev.kind != EventKind::Ticker24h || ev.n_levels < 4 {
            return None;
        }
        let l = &ev.levels;
        Some(Ticker24h {
            exch_ts: ev.exch_ts,
            t_recv: ev.t_recv,
            last: l[0].px,
            open: l[1].px,
            high: l[2].px,
            low: l[3].px,
            volume: l[1].qty,
            instrument: ev.instrument,
            fields: TickerFields((ev.prev_id & u64::from(TickerFields::ALL.0)) as u8),
        })
    }

    /// Writes the ticker into `ev` as a `Ticker24h` event (see [`Ticker24h::from_event`]).
    pub fn write_event(&self, ev: &mut MarketEvent) {
        ev.kind = EventKind::Ticker24h;
        ev.instrument = self.instrument;
        ev.exch_ts = self.exch_ts;
        ev.prev_id = u64::from(self.fields.0);
        ev.levels[0] = Level {
            px: self.last,
            qty: Qty(0),
        };
        ev.levels[1] = Level {
            px: self.open,
            qty: self.volume,
        };
        ev.levels[2] = Level {
            px: self.high,
            qty: Qty(0),
        };
        ev.levels[3] = Level {
            px: self.low,
            qty: Qty(0),
        };
        ev.n_bids = 0;
        ev.n_levels = 4;
    }

    /// Takes the fields `update` carries over this ticker's, and its times.
    pub fn merge(&mut self, update: &Ticker24h) {
        let f = update.fields;
        if f.contains(TickerFields::LAST) {
            self.last = update.last;
        }
        if f.contains(TickerFields::OPEN) {
            self.open = update.open;
        }
        if f.contains(TickerFields::HIGH) {
            self.high = update.high;
        }
        if f.contains(TickerFields::LOW) {
            self.low = update.low;
        }
        if f.contains(TickerFields::VOLUME) {
            self.volume = update.volume;
        }
        self.fields.insert(f);
        self.instrument = update.instrument;
        self.exch_ts = update.exch_ts.max(self.exch_ts);
        self.t_recv = update.t_recv;
    }

    /// Last price minus the window's open, when both are known.
    #[inline]
    pub fn change(&self) -> Option<i64> {
        let both = TickerFields(TickerFields::LAST.0 | TickerFields::OPEN.0);
        self.fields
            .contains(both)
            .then(|| self.last.0.saturating_sub(self.open.0))
    }

    /// The change in hundredths of a per cent of the open (basis points), when known and the
    /// open is above zero.
    #[inline]
    pub fn change_bps(&self) -> Option<i64> {
        let change = self.change()?;
        if self.open.0 <= 0 {
            return None;
        }
        let bps = i128::from(change) * 10_000 / i128::from(self.open.0);
        i64::try_from(bps).ok()
    }
}

/// The event time a trade belongs to: its trade time, else the event time, else the receive
/// time.
#[inline]
pub const fn trade_time(trade: &TradePrint) -> u64 {
    if trade.trade_ts != 0 {
        trade.trade_ts
    } else if trade.exch_ts != 0 {
        trade.exch_ts
    } else {
        trade.t_recv
    }
}

/// One instrument's open candle.
#[derive(Debug, Clone, Copy)]
struct Open {
    candle: Candle,
    /// Whether `candle` holds a trade.
    live: bool,
}

/// Builds candles of one interval from trades, per instrument, in event time. See the module
/// docs.
#[derive(Debug, Clone)]
pub struct CandleBuilder {
    interval_ns: u64,
    /// Indexed by instrument id.
    open: Vec<Open>,
    /// Trades of instruments past the table, or older than their open candle.
    refused: u64,
}

impl CandleBuilder {
    /// A builder of `interval_ns` candles (at least 1 ns) for instrument ids below `instruments`.
    pub fn new(interval_ns: u64, instruments: usize) -> Self {
        let empty = Open {
            candle: Candle {
                start_ns: 0,
                interval_ns: interval_ns.max(1),
                exch_ts: 0,
                t_recv: 0,
                t0: 0,
                first_trade_id: 0,
                last_trade_id: 0,
                trades: 0,
                open: Px(0),
                high: Px(0),
                low: Px(0),
                close: Px(0),
                volume: Qty(0),
                taker_buy_volume: Qty(0),
                instrument: InstrumentId(0),
                closed: false,
            },
            live: false,
        };
        Self {
            interval_ns: interval_ns.max(1),
            open: vec![empty; instruments],
            refused: 0,
        }
    }

    /// The candle length, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Trades not taken: an instrument past the table, or a trade older than its open candle
    /// or of a candle already closed.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The open candle of `instrument`, if it has a trade.
    pub fn open_candle(&self, instrument: InstrumentId) -> Option<&Candle> {
        self.open
            .get(usize::from(instrument.0))
            .filter(|o| o.live)
            .map(|o| &o.candle)
    }

    /// Adds one print (an aggregate's trade ids `first_id..=last_id`; a single trade has both
    /// equal). Returns the instrument's previous candle, closed, when this trade starts a later
    /// one.
    #[inline]
    pub fn on_trade(&mut self, trade: &TradePrint, first_id: u64) -> Option<Candle> {
        let t = trade_time(trade);
        let start = t - t % self.interval_ns;
        let Some(slot) = self.open.get_mut(usize::from(trade.instrument.0)) else {
            self.refused += 1;
            return None;
        };
        let mut closed = None;
        if !slot.live && slot.candle.closed && start <= slot.candle.start_ns {
            // A late trade of a candle already closed (by event time passing its end).
            self.refused += 1;
            return None;
        }
        if slot.live {
            if start < slot.candle.start_ns {
                self.refused += 1;
                return None;
            }
            if start > slot.candle.start_ns {
                slot.candle.closed = true;
                closed = Some(slot.candle);
                slot.live = false;
            }
        }
        let first_id = first_id.min(trade.trade_id);
        let count = trade.trade_id - first_id + 1;
        let c = &mut slot.candle;
        if slot.live {
            c.high = c.high.max(trade.px);
            c.low = c.low.min(trade.px);
            c.volume = Qty(c.volume.0.saturating_add(trade.qty.0));
            c.trades = c.trades.saturating_add(count);
            c.last_trade_id = trade.trade_id;
        } else {
            *c = Candle {
                start_ns: start,
                interval_ns: self.interval_ns,
                first_trade_id: first_id,
                last_trade_id: trade.trade_id,
                trades: count,
                open: trade.px,
                high: trade.px,
                low: trade.px,
                volume: trade.qty,
                taker_buy_volume: Qty(0),
                instrument: trade.instrument,
                closed: false,
                ..*c
            };
            slot.live = true;
        }
        c.close = trade.px;
        if !trade.buyer_maker {
            c.taker_buy_volume = Qty(c.taker_buy_volume.0.saturating_add(trade.qty.0));
        }
        c.exch_ts = trade.exch_ts;
        c.t_recv = trade.t_recv;
        c.t0 = trade.t0;
        closed
    }

    /// Closes `instrument`'s open candle if it ends at or before event time `t`, and returns
    /// it: for when event time is known to have moved on without a trade (a later kline or
    /// ticker, a later book update).
    #[inline]
    pub fn close_before(&mut self, instrument: InstrumentId, t: u64) -> Option<Candle> {
        let slot = self.open.get_mut(usize::from(instrument.0))?;
        if !slot.live || slot.candle.end_ns() > t {
            return None;
        }
        slot.live = false;
        slot.candle.closed = true;
        Some(slot.candle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: InstrumentId = InstrumentId(1);

    fn print(t: u64, id: u64, px: i64, qty: i64, buyer_maker: bool) -> TradePrint {
        TradePrint {
            t0: t,
            t_recv: t + 5,
            exch_ts: t + 1,
            trade_ts: t,
            trade_id: id,
            px: Px(px),
            qty: Qty(qty),
            instrument: I,
            buyer_maker,
        }
    }

    #[test]
    fn trades_make_candles_cut_at_interval_multiples() {
        let mut b = CandleBuilder::new(60, 2);
        assert_eq!(b.on_trade(&print(61, 10, 100, 2, false), 8), None);
        assert_eq!(b.on_trade(&print(70, 11, 105, 1, true), 11), None);
        assert_eq!(b.on_trade(&print(119, 12, 99, 3, false), 12), None);
        let open = *b.open_candle(I).unwrap();
        assert_eq!(
            (open.start_ns, open.open, open.high, open.low, open.close),
            (60, Px(100), Px(105), Px(99), Px(99))
        );
        assert_eq!(
            (open.volume, open.taker_buy_volume, open.trades),
            (Qty(6), Qty(5), 5)
        );
        assert_eq!((open.first_trade_id, open.last_trade_id), (8, 12));
        assert!(!open.closed);
        // A trade of a later minute closes it; a trade from before the open candle is refused.
        let closed = b.on_trade(&print(185, 13, 101, 1, false), 13).unwrap();
        assert_eq!(
            closed,
            Candle {
                closed: true,
                ..open
            }
        );
        assert_eq!(b.on_trade(&print(100, 14, 1, 1, false), 14), None);
        assert_eq!(b.refused(), 1);
        assert_eq!(b.open_candle(I).unwrap().start_ns, 180);
        assert_eq!(b.close_before(I, 239), None);
        let c = b.close_before(I, 240).unwrap();
        assert_eq!(
            (c.start_ns, c.open, c.trades, c.closed),
            (180, Px(101), 1, true)
        );
        assert_eq!(b.close_before(I, 500), None, "closed once");
        assert_eq!(b.open_candle(I), None);
        // A late trade of the candle closed by time is refused, not a second candle.
        assert_eq!(b.on_trade(&print(200, 15, 1, 1, false), 15), None);
        assert_eq!((b.open_candle(I), b.refused()), (None, 2));
        assert_eq!(b.on_trade(&print(240, 16, 7, 1, false), 16), None);
        assert_eq!(b.open_candle(I).unwrap().start_ns, 240);
        // An instrument past the table is refused, not a panic.
        let mut far = print(1, 1, 1, 1, false);
        far.instrument = InstrumentId(9);
        assert_eq!(b.on_trade(&far, 1), None);
        assert_eq!(b.refused(), 3);
    }

    #[test]
    fn candles_and_tickers_round_trip_through_events() {
        let mut b = CandleBuilder::new(60, 2);
        b.on_trade(&print(61, 10, 100, 2, false), 10);
        let c = b.close_before(I, 1_000).unwrap();
        let ev = c.to_event();
        assert_eq!(ev.kind, EventKind::Kline);
        assert!(ev.is_first() && ev.is_last());
        assert_eq!(Candle::from_event(&ev), Some(c));
        let mut open = c;
        open.closed = false;
        let mut ev2 = ev;
        open.write_event(&mut ev2);
        assert!(!ev2.flags.contains(EventFlags::CLOSED) && ev2.is_last());
        assert_eq!(Ticker24h::from_event(&ev), None);

        let t = Ticker24h {
            exch_ts: 9,
            t_recv: 10,
            last: Px(110),
            open: Px(100),
            high: Px(120),
            low: Px(90),
            volume: Qty(7),
            instrument: I,
            fields: TickerFields::ALL,
        };
        let mut ev = MarketEvent::EMPTY;
        ev.t_recv = 10;
        t.write_event(&mut ev);
        assert_eq!(Ticker24h::from_event(&ev), Some(t));
        assert_eq!(Candle::from_event(&ev), None);
        assert_eq!((t.change(), t.change_bps()), (Some(10), Some(1_000)));
    }

    #[test]
    fn a_partial_ticker_merges_only_what_it_carries() {
        let mut t = Ticker24h::default();
        assert_eq!(t.change(), None);
        t.merge(&Ticker24h {
            last: Px(50),
            open: Px(40),
            high: Px(60),
            low: Px(30),
            volume: Qty(3),
            fields: TickerFields::ALL,
            exch_ts: 5,
            ..Ticker24h::default()
        });
        t.merge(&Ticker24h {
            last: Px(45),
            fields: TickerFields::LAST,
            exch_ts: 6,
            ..Ticker24h::default()
        });
        assert_eq!(
            (t.last, t.open, t.high, t.low, t.volume, t.exch_ts),
            (Px(45), Px(40), Px(60), Px(30), Qty(3), 6)
        );
        assert_eq!(t.change_bps(), Some(1_250));
    }
}
