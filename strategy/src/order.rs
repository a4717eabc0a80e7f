//! The order contract between the strategy stage and the gateway: [`OrderIntent`] out,
//! [`ExecReport`] back.
//!
//! Both are small `Copy` values with no heap data, so they travel by value through the SPSC
//! rings. Prices and quantities are the instrument's scaled integers ([`Px`], [`Qty`]); times are
//! `u64` nanoseconds. Every intent carries the `t0` of the market data that caused it, and every
//! report carries it back, so tick-to-trade and tick-to-ack can be measured wherever they land.
//!
//! Identity: each request gets a fresh [`ClientOrderId`] from an [`OrderIdSource`]. A `New` names
//! the order it creates; a `Cancel` or `Replace` also names the order it acts on in
//! [`OrderIntent::target`]. Reports are always about an order (its client id), never about the
//! cancel request that touched it.

use pinion_core::{InstrumentId, Px, Qty, Side};

use crate::reason::OrderReason;

/// A client order id, unique per engine run (from an [`OrderIdSource`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct ClientOrderId(pub u64);

/// The venue's id of an order (assigned when the venue accepts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct VenueOrderId(pub u64);

/// Hands out client order ids from a counter: no allocation, no formatting.
#[derive(Debug, Clone)]
pub struct OrderIdSource {
    next: u64,
}

impl OrderIdSource {
    /// Ids starting at `first` (use a per-run base, e.g. start time, so ids of two runs differ).
    pub const fn new(first: u64) -> Self {
        Self { next: first }
    }

    /// The next id.
    #[inline]
    pub fn next_id(&mut self) -> ClientOrderId {
        let id = ClientOrderId(self.next);
        self.next = self.next.wrapping_add(1);
        id
    }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderSide {
    /// Buy: rests on the bid side.
    Buy = 0,
    /// Sell: rests on the ask side.
    Sell = 1,
}

impl OrderSide {
    /// The book side a resting order of this side joins.
    #[inline]
    pub const fn book_side(self) -> Side {
        match self {
            OrderSide::Buy => Side::Bid,
            OrderSide::Sell => Side::Ask,
        }
    }

    /// The other side.
    #[inline]
    pub const fn opposite(self) -> OrderSide {
        match self {
            OrderSide::Buy => OrderSide::Sell,
            OrderSide::Sell => OrderSide::Buy,
        }
    }

    /// `+1` for a buy, `-1` for a sell: the sign of the position change a fill causes.
    #[inline]
    pub const fn sign(self) -> i64 {
        match self {
            OrderSide::Buy => 1,
            OrderSide::Sell => -1,
        }
    }
}

/// What an intent asks the venue to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderAction {
    /// Place a new order.
    New = 0,
    /// Cancel [`OrderIntent::target`].
    Cancel = 1,
    /// Cancel [`OrderIntent::target`] and place a new order (Binance `order.cancelReplace`).
    Replace = 2,
    /// Reduce [`OrderIntent::target`]'s quantity to [`OrderIntent::qty`], keeping its place in
    /// the queue (Binance `order.amend.keepPriority`). The order keeps its client id
    /// (`client_id` is `target`'s). Answered with a report of the order at its new quantity
    /// (`New` or `PartiallyFilled`, `leaves_qty` reduced), or `CancelRejected` when refused.
    Amend = 3,
}

/// The order type (Binance Spot names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderType {
    /// A limit order.
    Limit = 0,
    /// A post-only limit order: rejected if it would trade on arrival.
    LimitMaker = 1,
    /// A market order: `px` is ignored.
    Market = 2,
}

impl OrderType {
    /// Whether an order of this type protects a position rather than opens or quotes one
    /// (stop-loss and take-profit types): what an exit policy that keeps protective orders
    /// leaves at the exchange. The match names every type, so a new one must say which it is.
    pub const fn is_protective(self) -> bool {
        match self {
            Self::Limit | Self::LimitMaker | Self::Market => false,
        }
    }
}

/// How long an order may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc = 0,
    /// Immediate or cancel: what does not fill on arrival is expired.
    Ioc = 1,
    /// Fill or kill: fills completely on arrival or not at all.
    Fok = 2,
}

/// An order request from the strategy stage. Fixed-size and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct OrderIntent {
    /// `t0` of the market data that caused this intent (engine monotonic ns).
    pub t0: u64,
    /// The id of this request; for `New` and `Replace` the id of the order it creates.
    pub client_id: ClientOrderId,
    /// For `Cancel` and `Replace`: the order acted on. For `New`: equal to `client_id`.
    pub target: ClientOrderId,
    /// Limit price (ignored for `Market`).
    pub px: Px,
    /// Quantity.
    pub qty: Qty,
    /// The instrument.
    pub instrument: InstrumentId,
    /// New, cancel or replace.
    pub action: OrderAction,
    /// Buy or sell.
    pub side: OrderSide,
    /// Limit, limit-maker or market.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Why it was sent (strategy instance and reason code): in what was tail padding, so the
    /// intent is no larger for it.
    pub reason: OrderReason,
}

impl OrderIntent {
    /// A new limit order.
    #[allow(clippy::too_many_arguments)]
    pub const fn new_limit(
        t0: u64,
        client_id: ClientOrderId,
        instrument: InstrumentId,
        side: OrderSide,
        px: Px,
        qty: Qty,
        order_type: OrderType,
        tif: TimeInForce,
        reason: OrderReason,
    ) -> Self {
        Self {
            t0,
            client_id,
            target: client_id,
            px,
            qty,
            instrument,
            action: OrderAction::New,
            side,
            order_type,
            tif,
            reason,
        }
    }

    /// A cancel of `target` (whose side and instrument are repeated for the venue's sake), for
    /// `reason`.
    pub const fn cancel(
        t0: u64,
        client_id: ClientOrderId,
        target: ClientOrderId,
        instrument: InstrumentId,
        side: OrderSide,
        reason: OrderReason,
    ) -> Self {
        Self {
            t0,
            client_id,
            target,
            px: Px::ZERO,
            qty: Qty::ZERO,
            instrument,
            action: OrderAction::Cancel,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            reason,
        }
    }
}

/// Why the venue (or the gateway's own hard limits) refused a request. A small code, `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    /// The order table is full / too many open orders.
    MaxOpenOrders = 1,
    /// The quantity is above the hard limit.
    MaxQty = 2,
    /// Zero or off-grid quantity.
    InvalidQty = 3,
    /// Zero, negative or off-grid price.
    InvalidPrice = 4,
    /// A `LimitMaker` order would have traded on arrival.
    WouldTakeLiquidity = 5,
    /// The order named by a cancel or replace is not open.
    UnknownOrder = 6,
    /// A client id that is already in use.
    DuplicateId = 7,
    /// A market order found nothing to trade against.
    NoLiquidity = 8,
    /// The notional is above the hard limit.
    MaxNotional = 9,
    /// The venue is not accepting requests (kill switch, halted).
    Halted = 10,
    /// The order is for an instrument this venue does not trade.
    UnknownInstrument = 11,
    /// Too many requests in flight; the gateway's fixed queues are full.
    Overloaded = 12,
    /// Stopped by the engine's own pre-trade risk gate; never sent.
    Risk = 13,
    /// Refused by the venue for a reason none of the codes above names (the gateway keeps the
    /// venue's own error code for the log).
    Venue = 14,
    /// The venue's session is down, or not ready (logging on, reconciling): refused at once,
    /// never queued to go out late.
    NotConnected = 15,
}

/// The state of an order after the event a report describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Accepted by the venue and resting (or about to trade).
    New,
    /// Some quantity filled, the rest still open.
    PartiallyFilled,
    /// Completely filled; the order is closed.
    Filled,
    /// Cancelled (on request); the order is closed.
    Canceled,
    /// Refused; the order never opened.
    Rejected(RejectReason),
    /// A cancel or replace was refused; the order it named is unaffected (or already closed).
    CancelRejected(RejectReason),
    /// Closed by the venue without a request (IOC/FOK remainder).
    Expired,
}

impl OrderStatus {
    /// Whether the order is closed after this report.
    #[inline]
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected(_)
                | OrderStatus::Expired
        )
    }
}

/// An execution report from the venue, about one order. `Copy`, fixed-size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecReport {
    /// The order's client id.
    pub client_id: ClientOrderId,
    /// The venue's id (0 when rejected before it got one).
    pub venue_id: VenueOrderId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: OrderSide,
    /// The order's state after this event.
    pub status: OrderStatus,
    /// Price of this fill (0 when the report is not a fill).
    pub last_px: Px,
    /// Quantity of this fill (0 when the report is not a fill).
    pub last_qty: Qty,
    /// Total filled so far.
    pub cum_qty: Qty,
    /// Quantity still open (0 once final).
    pub leaves_qty: Qty,
    /// Whether this fill was as maker (resting) rather than taker.
    pub maker: bool,
    /// `t0` of the intent this report answers (for a fill: of the intent that placed the order).
    pub t0: u64,
    /// The venue's time of the event, ns.
    pub venue_ts: u64,
}

impl ExecReport {
    /// The answer to `intent` when it was refused before anything traded: `status` is a
    /// `Rejected` or `CancelRejected`, at `venue_ts`; no fill, nothing open.
    pub const fn refusal(intent: &OrderIntent, status: OrderStatus, venue_ts: u64) -> Self {
        Self {
            client_id: intent.client_id,
            venue_id: VenueOrderId(0),
            instrument: intent.instrument,
            side: intent.side,
            status,
            last_px: Px::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: Qty::ZERO,
            leaves_qty: Qty::ZERO,
            maker: false,
            t0: intent.t0,
            venue_ts,
        }
    }

    /// Whether this report carries a fill.
    #[inline]
    pub const fn is_fill(&self) -> bool {
        self.last_qty.0 > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_types_are_small_and_copy() {
        fn is_copy<T: Copy>() {}
        is_copy::<OrderIntent>();
        is_copy::<ExecReport>();
        // The reason's two bytes took the tail padding: 48 bytes before it and after.
        assert_eq!(std::mem::size_of::<OrderIntent>(), 48);
        assert_eq!(std::mem::offset_of!(OrderIntent, reason), 46);
        assert!(std::mem::size_of::<ExecReport>() <= 96);
    }

    #[test]
    fn ids_count_up_and_sides_map_to_the_book() {
        let mut ids = OrderIdSource::new(100);
        assert_eq!(ids.next_id(), ClientOrderId(100));
        assert_eq!(ids.next_id(), ClientOrderId(101));
        assert_eq!(OrderSide::Buy.book_side(), Side::Bid);
        assert_eq!(OrderSide::Sell.opposite(), OrderSide::Buy);
        assert_eq!(OrderSide::Sell.sign(), -1);
        let c = OrderIntent::cancel(
            5,
            ClientOrderId(2),
            ClientOrderId(1),
            InstrumentId(0),
            OrderSide::Buy,
            OrderReason::new(0, crate::ReasonCode::Kill),
        );
        assert_eq!(
            (c.action, c.target),
            (OrderAction::Cancel, ClientOrderId(1))
        );
        assert!(OrderStatus::Rejected(RejectReason::MaxQty).is_final());
        assert!(!OrderStatus::CancelRejected(RejectReason::UnknownOrder).is_final());
        assert!(!OrderStatus::PartiallyFilled.is_final());
    }
}
