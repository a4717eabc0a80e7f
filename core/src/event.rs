//! [`MarketEvent`]: the one record type that flows from the feed stage to the book stage.
//!
//! It is `Copy`, fixed-size and `#[repr(C)]`, so a ring slot holds it by value and nothing on the
//! hot path allocates. The price levels of a message live inline in the event. An exchange message
//! with more levels than [`MAX_LEVELS`] (a 1000-level snapshot, a busy depth update) is split into
//! several events that share the message's ids and times; the first carries
//! [`EventFlags::FIRST`], the last [`EventFlags::LAST`], so sequence checks and book commits
//! happen once per exchange message.
//!
//! The end of a stream is not an event: the engine's rings carry their own end marker, which
//! every stage passes on after flushing.
//!
//! The levels are a fixed array plus a length rather than an `arrayvec::ArrayVec`: `ArrayVec`
//! implements `Drop` and so can never be `Copy`. [`MarketEvent::push_level`] gives the same
//! bounded-push behaviour.
//!
//! How the fields are used per kind:
//!
//! | kind | ids | levels |
//! |---|---|---|
//! | `Depth` | Binance `U`/`u`/`pu` in `first_id`/`last_id`/`prev_id`; Bybit `u` in `first_id` and `last_id`, `seq` in `seq` | bids first (`n_bids` of them), then asks; qty 0 = remove |
//! | `Snapshot` | REST `lastUpdateId` (or Bybit `u`) in `last_id`; Bybit `seq` in `seq` | the full book, bids then asks |
//! | `PartialDepth` | `lastUpdateId` / `u` in `last_id` | top N bids then asks (replaces the top N) |
//! | `BookTicker` | `u` in `last_id` | `[best bid, best ask]`, `n_bids == 1` |
//! | `Trade` | trade id in `last_id` (aggregate: `a` in `seq`, `f`/`l` in `first_id`/`last_id`) | one level: price and quantity |
//! | `Kline` | candle start in `trans_ts`, interval (ns) in `prev_id`, first/last trade id in `first_id`/`last_id`, trade count in `seq`; [`EventFlags::CLOSED`] when final | open × volume, high × taker buy volume, low, close ([`crate::Candle`]) |
//! | `Ticker24h` | the [`crate::TickerFields`] carried in `prev_id` | last, open × volume, high, low ([`crate::Ticker24h`]) |

use crate::decimal::{Px, Qty};
use crate::instrument::InstrumentId;
use crate::record::ConnId;

/// Levels carried inline in one event. Chosen so the event stays around 512 bytes (eight cache
/// lines): most depth updates fit in one event, snapshots split into a few dozen.
pub const MAX_LEVELS: usize = 28;

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    /// Bids (buy orders).
    Bid = 0,
    /// Asks (sell orders).
    Ask = 1,
}

impl Side {
    /// The other side.
    #[inline]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

/// One price level: the new absolute quantity at a price (zero removes the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Level {
    /// The price.
    pub px: Px,
    /// The absolute quantity at that price.
    pub qty: Qty,
}

/// What an event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum EventKind {
    /// An incremental depth update (Binance `depthUpdate`, Bybit `delta`).
    #[default]
    Depth = 0,
    /// A full book that replaces the local one (REST snapshot, Bybit `snapshot`).
    Snapshot = 1,
    /// The top N levels of the book (Binance Spot `depth5/10/20`).
    PartialDepth = 2,
    /// Best bid and ask (Binance `bookTicker`).
    BookTicker = 3,
    /// A trade (Binance `trade` / `aggTrade`, Bybit `publicTrade`).
    Trade = 4,
    /// A candle, open or closed (Binance `kline`, Bybit `kline`).
    Kline = 5,
    /// Rolling 24-hour statistics (Binance `24hrTicker` / `24hrMiniTicker`, Bybit `tickers`).
    Ticker24h = 6,
}

/// Bit flags of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct EventFlags(pub u8);

impl EventFlags {
    /// The first event of an exchange message.
    pub const FIRST: EventFlags = EventFlags(1);
    /// The last event of an exchange message: apply the sequence step and commit after it.
    pub const LAST: EventFlags = EventFlags(1 << 1);
    /// Trade: the buyer was the maker (the aggressor sold).
    pub const BUYER_MAKER: EventFlags = EventFlags(1 << 2);
    /// Trade: an aggregate of several fills (`aggTrade`).
    pub const AGGREGATE: EventFlags = EventFlags(1 << 3);
    /// Bybit: `u == 1`, the venue restarted the book; the local one must be replaced.
    pub const RESET: EventFlags = EventFlags(1 << 4);
    /// Kline: the candle's interval is over (Binance `x`, Bybit `confirm`).
    pub const CLOSED: EventFlags = EventFlags(1 << 5);

    /// Whether all bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: EventFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the bits of `other`.
    #[inline]
    pub fn insert(&mut self, other: EventFlags) {
        self.0 |= other.0;
    }
}

impl std::ops::BitOr for EventFlags {
    type Output = EventFlags;
    fn bitor(self, rhs: Self) -> Self {
        EventFlags(self.0 | rhs.0)
    }
}

/// One normalised market event. See the module docs for how each kind uses the fields.
///
/// Only the first `n_levels` of `levels` mean anything: a decoder may leave older values in the
/// rest (it does not clear hundreds of bytes it is not going to use), so equality and `Debug`
/// look at the used levels only.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct MarketEvent {
    /// When the frame was received: ns since the Unix epoch (socket read time, or the time the
    /// recording gives).
    pub t_recv: u64,
    /// When the engine read the frame or the replay released it: ns of the engine's monotonic
    /// clock. Tick-to-trade is measured from here.
    pub t0: u64,
    /// The exchange's event time (`E`, Bybit `ts`), ns since the epoch; 0 if absent.
    pub exch_ts: u64,
    /// The matching engine's time (`T`, Bybit `cts`), ns since the epoch; 0 if absent.
    pub trans_ts: u64,
    /// First update id (`U`), or the first trade id of an aggregate.
    pub first_id: u64,
    /// Final update id (`u`, `lastUpdateId`), or the trade id.
    pub last_id: u64,
    /// Previous final update id (`pu`, futures only).
    pub prev_id: u64,
    /// Bybit cross sequence (`seq`), or the aggregate trade id.
    pub seq: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The connection the frame came from.
    pub conn: ConnId,
    /// What the event says.
    pub kind: EventKind,
    /// [`EventFlags`] bits.
    pub flags: EventFlags,
    /// How many of `levels` are bids (they come first).
    pub n_bids: u8,
    /// How many of `levels` are used.
    pub n_levels: u8,
    /// The levels, bids first then asks; only the first `n_levels` are meaningful.
    pub levels: [Level; MAX_LEVELS],
}

impl Default for MarketEvent {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl PartialEq for MarketEvent {
    /// Equal when every field and every used level is; unused levels are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.head() == other.head() && self.used_levels() == other.used_levels()
    }
}

impl Eq for MarketEvent {}

impl std::fmt::Debug for MarketEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketEvent")
            .field("t_recv", &self.t_recv)
            .field("t0", &self.t0)
            .field("exch_ts", &self.exch_ts)
            .field("trans_ts", &self.trans_ts)
            .field("first_id", &self.first_id)
            .field("last_id", &self.last_id)
            .field("prev_id", &self.prev_id)
            .field("seq", &self.seq)
            .field("instrument", &self.instrument)
            .field("conn", &self.conn)
            .field("kind", &self.kind)
            .field("flags", &self.flags)
            .field("n_bids", &self.n_bids)
            .field("n_levels", &self.n_levels)
            .field("levels", &self.used_levels())
            .finish()
    }
}

impl MarketEvent {
    /// An event with every field zero.
    pub const EMPTY: MarketEvent = MarketEvent {
        t_recv: 0,
        t0: 0,
        exch_ts: 0,
        trans_ts: 0,
        first_id: 0,
        last_id: 0,
        prev_id: 0,
        seq: 0,
        instrument: InstrumentId(0),
        conn: ConnId(0),
        kind: EventKind::Depth,
        flags: EventFlags(0),
        n_bids: 0,
        n_levels: 0,
        levels: [Level {
            px: Px(0),
            qty: Qty(0),
        }; MAX_LEVELS],
    };

    /// The levels in use (`n_levels` of them, at most [`MAX_LEVELS`]): bids, then asks.
    #[inline]
    pub fn used_levels(&self) -> &[Level] {
        &self.levels[..usize::from(self.n_levels).min(MAX_LEVELS)]
    }

    /// Every field but the levels, for equality.
    #[allow(clippy::type_complexity)]
    fn head(
        &self,
    ) -> (
        [u64; 8],
        InstrumentId,
        ConnId,
        EventKind,
        EventFlags,
        u8,
        u8,
    ) {
        (
            [
                self.t_recv,
                self.t0,
                self.exch_ts,
                self.trans_ts,
                self.first_id,
                self.last_id,
                self.prev_id,
                self.seq,
            ],
            self.instrument,
            self.conn,
            self.kind,
            self.flags,
            self.n_bids,
            self.n_levels,
        )
    }

    /// The bid levels.
    #[inline]
    pub fn bids(&self) -> &[Level] {
        let n = usize::from(self.n_levels).min(MAX_LEVELS);
        &self.levels[..usize::from(self.n_bids).min(n)]
    }

    /// The ask levels.
    #[inline]
    pub fn asks(&self) -> &[Level] {
        let n = usize::from(self.n_levels).min(MAX_LEVELS);
        &self.levels[usize::from(self.n_bids).min(n)..n]
    }

    /// All used levels with their side.
    #[inline]
    pub fn sided_levels(&self) -> impl Iterator<Item = (Side, Level)> + '_ {
        self.bids()
            .iter()
            .map(|l| (Side::Bid, *l))
            .chain(self.asks().iter().map(|l| (Side::Ask, *l)))
    }

    /// Whether there is no room for another level.
    #[inline]
    pub const fn is_full(&self) -> bool {
        self.n_levels as usize >= MAX_LEVELS
    }

    /// Appends a level on `side`. Bids must be pushed before asks. Returns the level back if
    /// the event is full (the caller then emits this event and continues in a new one).
    #[inline]
    pub fn push_level(&mut self, side: Side, level: Level) -> Result<(), Level> {
        if self.is_full() {
            return Err(level);
        }
        debug_assert!(
            side == Side::Ask || self.n_bids == self.n_levels,
            "bids must come before asks"
        );
        self.levels[usize::from(self.n_levels)] = level;
        self.n_levels += 1;
        if side == Side::Bid {
            self.n_bids += 1;
        }
        Ok(())
    }

    /// Removes all levels, keeping the header.
    #[inline]
    pub fn clear_levels(&mut self) {
        self.n_levels = 0;
        self.n_bids = 0;
    }

    /// Whether this is the first event of its exchange message.
    #[inline]
    pub const fn is_first(&self) -> bool {
        self.flags.contains(EventFlags::FIRST)
    }

    /// Whether this is the last event of its exchange message.
    #[inline]
    pub const fn is_last(&self) -> bool {
        self.flags.contains(EventFlags::LAST)
    }

    /// Best bid of a `BookTicker` event.
    #[inline]
    pub fn ticker_bid(&self) -> Option<Level> {
        self.bids().first().copied()
    }

    /// Best ask of a `BookTicker` event.
    #[inline]
    pub fn ticker_ask(&self) -> Option<Level> {
        self.asks().first().copied()
    }
}

/// One trade print: the part of a `Trade` [`MarketEvent`] that strategies and venues use,
/// small enough (64 bytes) to pass between stages by value where the full event would be 520.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct TradePrint {
    /// `t0` of the frame (engine monotonic ns).
    pub t0: u64,
    /// When the frame was received (ns since the epoch).
    pub t_recv: u64,
    /// The exchange's event time, ns since the epoch; 0 if absent.
    pub exch_ts: u64,
    /// The trade time, ns since the epoch; 0 if absent.
    pub trade_ts: u64,
    /// The venue's trade id (the last one of an aggregate).
    pub trade_id: u64,
    /// The price.
    pub px: Px,
    /// The quantity.
    pub qty: Qty,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The buyer was the maker: a seller took the bids.
    pub buyer_maker: bool,
}

impl TradePrint {
    /// The print of a `Trade` event; `None` for any other event, or a trade without its level.
    #[inline]
    pub fn from_event(ev: &MarketEvent) -> Option<TradePrint> {
        if ev.kind != EventKind::Trade || ev.n_levels == 0 {
            return None;
        }
        let l = ev.levels[0];
        Some(TradePrint {
            t0: ev.t0,
            t_recv: ev.t_recv,
            exch_ts: ev.exch_ts,
            trade_ts: ev.trans_ts,
            trade_id: ev.last_id,
            px: l.px,
            qty: l.qty,
            instrument: ev.instrument,
            buyer_maker: ev.flags.contains(EventFlags::BUYER_MAKER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_print_is_small_and_takes_the_trade_fields() {
        assert_eq!(std::mem::size_of::<TradePrint>(), 64);
        let mut e = MarketEvent::EMPTY;
        e.kind = EventKind::Trade;
        e.t0 = 5;
        e.last_id = 77;
        e.trans_ts = 9;
        e.instrument = InstrumentId(3);
        e.flags = EventFlags::BUYER_MAKER;
        assert_eq!(TradePrint::from_event(&e), None, "no level");
        e.push_level(
            Side::Bid,
            Level {
                px: Px(100),
                qty: Qty(2),
            },
        )
        .unwrap();
        let t = TradePrint::from_event(&e).unwrap();
        assert_eq!(
            (
                t.t0,
                t.trade_id,
                t.trade_ts,
                t.px,
                t.qty,
                t.instrument,
                t.buyer_maker
            ),
            (5, 77, 9, Px(100), Qty(2), InstrumentId(3), true)
        );
        e.kind = EventKind::BookTicker;
        assert_eq!(TradePrint::from_event(&e), None);
    }

    #[test]
    fn event_size_is_pinned() {
        // 8 u64 header fields, 8 bytes of small fields, 28 levels of 16 bytes.
        assert_eq!(std::mem::size_of::<Level>(), 16);
        assert_eq!(std::mem::size_of::<MarketEvent>(), 72 + MAX_LEVELS * 16);
        assert_eq!(std::mem::size_of::<MarketEvent>(), 520);
        assert_eq!(std::mem::align_of::<MarketEvent>(), 8);
    }

    #[test]
    fn push_splits_bids_and_asks() {
        let mut e = MarketEvent::EMPTY;
        e.push_level(
            Side::Bid,
            Level {
                px: Px(10),
                qty: Qty(1),
            },
        )
        .unwrap();
        e.push_level(
            Side::Bid,
            Level {
                px: Px(9),
                qty: Qty(2),
            },
        )
        .unwrap();
        e.push_level(
            Side::Ask,
            Level {
                px: Px(11),
                qty: Qty(3),
            },
        )
        .unwrap();
        assert_eq!(e.bids().len(), 2);
        assert_eq!(
            e.asks(),
            &[Level {
                px: Px(11),
                qty: Qty(3)
            }]
        );
        let sides: Vec<Side> = e.sided_levels().map(|(s, _)| s).collect();
        assert_eq!(sides, [Side::Bid, Side::Bid, Side::Ask]);
        for _ in 3..MAX_LEVELS {
            e.push_level(Side::Ask, Level::default()).unwrap();
        }
        assert!(e.is_full());
        assert!(e.push_level(Side::Ask, Level::default()).is_err());
    }

    #[test]
    fn corrupt_counts_never_index_out_of_bounds() {
        let mut e = MarketEvent::EMPTY;
        e.n_bids = 200;
        e.n_levels = 250;
        assert_eq!(e.bids().len(), MAX_LEVELS);
        assert!(e.asks().is_empty());
    }
}
