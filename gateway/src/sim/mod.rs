//! [`SimVenue`]: an in-process simulated venue for replay and backtests.
//!
//! **Time.** Every time here is event time ([`VenueClock::Event`]): a request is submitted at
//! the event time it was decided, a market change happens at its receive time, and reports are
//! due at event times. Nothing reads a clock, so the same market and requests give the same
//! reports however fast the host runs them.
//!
//! **Latency.** A request reaches the venue its [`SimLatency::request`] latency after `submit`; a
//! report reaches the client its [`SimLatency::report`] latency after the venue event that
//! caused it. Each latency is a constant or a seeded draw ([`latency`]); requests, and reports,
//! each keep the order they were sent in, as on one connection, so a cancel never overtakes its
//! order. Requests the gateway refuses itself (hard limits, full queues) are answered at once.
//!
//! **Matching.** The venue sees the market through [`SimVenue::on_book`] (the top levels of the
//! real book) and [`SimVenue::on_trade`] (the real trades); our orders never change that market,
//! except that liquidity we take from the stored top levels is not taken twice.
//! - On arrival a limit order that crosses the stored opposite levels takes them, best first,
//!   as taker; a `LimitMaker` that would cross is rejected; what is left of an IOC or market
//!   order expires, an FOK that cannot fill completely expires untouched, a GTC limit rests.
//! - A resting order joins the back of its price level: the quantity visible there when it
//!   starts resting is queued ahead of it. Trades at its price on its side (sells hitting a bid,
//!   buys lifting an ask) first use up the queue ahead, then fill the order. What a later book
//!   whose level shows less quantity does to the queue ahead is the configured [`QueueModel`]
//!   ([`queue`]); in every model the queue ahead never exceeds the level's size.
//! - The market trading through its price (a trade at a worse price for the other side), or
//!   the opposite best reaching its price in a book update, fills the rest of it at its own
//!   price, as maker.
//!
//! Several of our own orders at one price share a trade's quantity in time priority, each
//! behind its own visible queue, so a trade can fill more in total than a real queue would give
//! when our orders are stacked; the strategy here keeps one order at a time.
//!
//! **Limits and capacity.** Orders live in a fixed-capacity table ([`MAX_SIM_ORDERS`]); requests
//! in flight and reports waiting for delivery are fixed-capacity queues, so nothing allocates
//! per order. Hard limits (quantity, open orders, tick and step grid, instrument) are checked
//! in `submit`. A report that finds its queue full is counted in
//! [`VenueStats::reports_dropped`]; `submit` refuses new requests (`Overloaded`) well before
//! that, so it only happens if the caller stops polling while the market keeps filling orders.

use arrayvec::ArrayVec;
use pinion_core::{BookTop, InstrumentId, InstrumentSpec, Level, Px, Qty, TOP_LEVELS, TradePrint};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderSide, OrderStatus, OrderType,
    RejectReason, TimeInForce, VenueOrderId,
};

use crate::{OrderVenue, VenueClock, VenueStats};

mod config;
pub mod latency;
pub mod queue;
mod rng;

pub use config::{SimLatency, SimVenueConfig};

pub use latency::{HgrmError, HgrmRow, LatencyModel, LatencyTable, MAX_HGRM_ROWS, SimLink};
pub use queue::QueueModel;
pub use rng::SplitMix64;

use queue::QueueSpot;

/// Most orders open at once at a [`SimVenue`].
pub const MAX_SIM_ORDERS: usize = 64;
/// Most requests on their way to the venue.
const MAX_IN_FLIGHT: usize = 128;
/// Most reports waiting for delivery.
const MAX_OUTGOING: usize = 512;
/// Free report slots `submit` insists on: one report per open order per market event, plus the
/// reports of one request.
const OUTGOING_HEADROOM: usize = 2 * MAX_SIM_ORDERS;

/// An order resting at the venue.
#[derive(Debug, Clone, Copy)]
struct SimOrder {
    id: ClientOrderId,
    venue_id: VenueOrderId,
    side: OrderSide,
    px: Px,
    leaves: i64,
    cum: i64,
    /// Where it stands in its level's queue.
    queue: QueueSpot,
    /// `t0` of the intent that placed it.
    t0: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    arrive_ns: u64,
    intent: OrderIntent,
}

#[derive(Debug, Clone, Copy)]
struct Outgoing {
    due_ns: u64,
    report: ExecReport,
}

/// The simulated venue for one instrument. See the module docs for the model.
#[derive(Debug, Clone)]
pub struct SimVenue {
    instrument: InstrumentId,
    tick: Px,
    step: Qty,
    config: SimVenueConfig,
    orders: ArrayVec<SimOrder, MAX_SIM_ORDERS>,
    in_flight: ArrayVec<InFlight, MAX_IN_FLIGHT>,
    outgoing: ArrayVec<Outgoing, MAX_OUTGOING>,
    /// The market's top levels as last seen, best first, minus what our orders took.
    bids: ArrayVec<Level, TOP_LEVELS>,
    asks: ArrayVec<Level, TOP_LEVELS>,
    /// Requests on their way to the venue.
    request_link: SimLink,
    /// Reports on their way back.
    report_link: SimLink,
    next_venue_id: u64,
    stats: VenueStats,
}

impl SimVenue {
    /// A venue trading `instrument` (with the tick and step of `spec`).
    pub fn new(instrument: InstrumentId, spec: &InstrumentSpec, config: SimVenueConfig) -> Self {
        let stream = u64::from(instrument.0) * 2;
        Self {
            request_link: SimLink::new(
                config.latency.request,
                SplitMix64::stream(config.seed, stream),
            ),
            report_link: SimLink::new(
                config.latency.report,
                SplitMix64::stream(config.seed, stream + 1),
            ),
            instrument,
            tick: spec.tick,
            step: spec.step,
            config: SimVenueConfig {
                max_open_orders: config.max_open_orders.min(MAX_SIM_ORDERS),
                ..config
            },
            orders: ArrayVec::new(),
            in_flight: ArrayVec::new(),
            outgoing: ArrayVec::new(),
            bids: ArrayVec::new(),
            asks: ArrayVec::new(),
            next_venue_id: 1,
            stats: VenueStats::default(),
        }
    }

    /// A new state of the market's book, reached at `at_ns`: stored for matching arrivals, and
    /// any resting order the opposite best has reached is filled. A view that is not synced
    /// says nothing reliable about the market and is ignored (requests still arrive on time).
    ///
    /// Requests that arrived before `at_ns` meet the previous state; those arriving at `at_ns`
    /// meet this one. The strategy sends its orders ahead of the view they were decided on, so
    /// with no request latency an order still meets that view.
    fn on_book_at(&mut self, book: &BookTop, at_ns: u64) {
        if book.instrument != self.instrument {
            return;
        }
        self.process_arrivals(at_ns.saturating_sub(1));
        let now_ns = at_ns;
        if !book.synced {
            self.process_arrivals(now_ns);
            return;
        }
        self.bids.clear();
        self.asks.clear();
        self.bids.extend(book.bids().iter().copied());
        self.asks.extend(book.asks().iter().copied());
        let (best_bid, best_ask) = (book.best_bid(), book.best_ask());
        for i in 0..self.orders.len() {
            let o = self.orders[i];
            let reached = match o.side {
                OrderSide::Buy => best_ask.is_some_and(|a| a.px <= o.px),
                OrderSide::Sell => best_bid.is_some_and(|b| b.px >= o.px),
            };
            if reached {
                self.fill_resting(i, o.leaves, now_ns);
                continue;
            }
            let own = match o.side {
                OrderSide::Buy => book.bids(),
                OrderSide::Sell => book.asks(),
            };
            let visible = visible_qty(own, o.side, o.px);
            self.orders[i].queue.on_level(self.config.queue, visible);
        }
        self.orders.retain(|o| o.leaves > 0);
        self.process_arrivals(now_ns);
    }

    /// A trade in the market at `now_ns`: fills resting orders it trades through, or reaches in
    /// the queue.
    fn on_trade_at(&mut self, print: &TradePrint, now_ns: u64) {
        if print.instrument != self.instrument {
            return;
        }
        self.process_arrivals(now_ns);
        // The buyer was the maker: a seller hit the bids.
        let sell_aggressor = print.buyer_maker;
        let mut at_price = print.qty.0;
        for i in 0..self.orders.len() {
            let o = self.orders[i];
            let (through, same_side) = match o.side {
                OrderSide::Buy => (print.px < o.px, sell_aggressor),
                OrderSide::Sell => (print.px > o.px, !sell_aggressor),
            };
            if through {
                self.fill_resting(i, o.leaves, now_ns);
            } else if print.px == o.px && same_side {
                let past_queue = self.orders[i].queue.on_trade(print.qty.0, at_price);
                if past_queue > 0 {
                    let qty = past_queue.min(o.leaves);
                    at_price -= qty;
                    self.fill_resting(i, qty, now_ns);
                }
            }
        }
        self.orders.retain(|o| o.leaves > 0);
    }

    // ---- gateway side -------------------------------------------------------------------

    fn open_and_pending(&self) -> usize {
        let pending_new = self
            .in_flight
            .iter()
            .filter(|f| f.intent.action == OrderAction::New)
            .count();
        self.orders.len() + pending_new
    }

    /// The gateway's hard limits; `Err` is the reason to refuse.
    fn hard_limits(&self, intent: &OrderIntent) -> Result<(), RejectReason> {
        if intent.instrument == self.instrument
            && (self.in_flight.is_full() || self.outgoing.remaining_capacity() < OUTGOING_HEADROOM)
        {
            return Err(RejectReason::Overloaded);
        }
        // The grid and the engine's limits; the exchange's other filters are the risk gate's.
        crate::HardLimits {
            instrument: self.instrument,
            tick: self.tick,
            step: self.step,
            min_price: Px::ZERO,
            max_price: Px::ZERO,
            min_qty: Qty::ZERO,
            min_notional: 0,
            max_order_qty: self.config.max_order_qty,
            max_open_orders: self.config.max_open_orders,
        }
        .check(intent, self.open_and_pending())
    }

    // ---- venue side ---------------------------------------------------------------------

    /// Queues `report` for delivery at `due_ns`.
    fn push_report(&mut self, due_ns: u64, report: ExecReport) {
        if self.outgoing.try_push(Outgoing { due_ns, report }).is_err() {
            self.stats.reports_dropped += 1;
        }
    }

    /// Queues a report of a venue event at `at_ns`; it arrives after the report latency.
    fn report(&mut self, at_ns: u64, report: ExecReport) {
        let due_ns = self.report_link.deliver(at_ns);
        self.push_report(due_ns, report);
    }

    /// A report about an order that never rested (rejects, or replies about an unknown id),
    /// made at `at_ns` and delivered at `due_ns`.
    fn reply(
        &mut self,
        at_ns: u64,
        due_ns: u64,
        intent: &OrderIntent,
        id: ClientOrderId,
        status: OrderStatus,
    ) {
        if matches!(
            status,
            OrderStatus::Rejected(_) | OrderStatus::CancelRejected(_)
        ) {
            self.stats.rejected += 1;
        }
        self.push_report(
            due_ns,
            ExecReport {
                client_id: id,
                ..ExecReport::refusal(intent, status, at_ns)
            },
        );
    }

    /// [`SimVenue::reply`] for a venue decision at `at_ns`, delivered after the report latency.
    fn venue_reply(
        &mut self,
        at_ns: u64,
        intent: &OrderIntent,
        id: ClientOrderId,
        status: OrderStatus,
    ) {
        let due_ns = self.report_link.deliver(at_ns);
        self.reply(at_ns, due_ns, intent, id, status);
    }

    /// A report about `o` as it is now.
    fn order_report(
        &mut self,
        at_ns: u64,
        o: &SimOrder,
        status: OrderStatus,
        fill: Option<(Px, i64, bool)>,
    ) {
        let (last_px, last_qty, maker) = fill.map_or((Px::ZERO, 0, false), |f| f);
        self.report(
            at_ns,
            ExecReport {
                client_id: o.id,
                venue_id: o.venue_id,
                instrument: self.instrument,
                side: o.side,
                status,
                last_px,
                last_qty: Qty(last_qty),
                cum_qty: Qty(o.cum),
                leaves_qty: Qty(if status.is_final() { 0 } else { o.leaves }),
                maker,
                t0: o.t0,
                venue_ts: at_ns,
            },
        );
    }

    fn apply_fill(&mut self, o: &mut SimOrder, px: Px, qty: i64, maker: bool, at_ns: u64) {
        o.leaves -= qty;
        o.cum += qty;
        self.stats.fills += 1;
        self.stats.filled_qty += qty;
        let status = if o.leaves == 0 {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        self.order_report(at_ns, o, status, Some((px, qty, maker)));
    }

    /// Fills `qty` of resting order `i` at its own price, as maker. The caller removes filled
    /// orders afterwards.
    fn fill_resting(&mut self, i: usize, qty: i64, at_ns: u64) {
        let mut o = self.orders[i];
        let qty = qty.min(o.leaves);
        if qty > 0 {
            let px = o.px;
            self.apply_fill(&mut o, px, qty, true, at_ns);
        }
        self.orders[i] = o;
    }

    fn process_arrivals(&mut self, now_ns: u64) {
        // The request link delivers in the order sent, so the queue is in arrival order.
        while let Some(f) = self.in_flight.first().copied() {
            if f.arrive_ns > now_ns {
                break;
            }
            self.in_flight.remove(0);
            self.process(&f.intent, f.arrive_ns);
        }
    }

    fn process(&mut self, intent: &OrderIntent, at_ns: u64) {
        match intent.action {
            OrderAction::New => self.place(intent, at_ns),
            OrderAction::Amend => {
                // The quantity goes down and the order keeps its place (and its queue ahead).
                let Some(i) = self.orders.iter().position(|o| o.id == intent.target) else {
                    let status = OrderStatus::CancelRejected(RejectReason::UnknownOrder);
                    self.venue_reply(at_ns, intent, intent.target, status);
                    return;
                };
                let o = self.orders[i];
                let leaves = intent.qty.0 - o.cum;
                if intent.qty.0 >= o.cum + o.leaves || leaves <= 0 {
                    let status = OrderStatus::CancelRejected(RejectReason::InvalidQty);
                    self.venue_reply(at_ns, intent, intent.target, status);
                    return;
                }
                self.orders[i].leaves = leaves;
                let o = SimOrder {
                    t0: intent.t0,
                    ..self.orders[i]
                };
                let status = if o.cum > 0 {
                    OrderStatus::PartiallyFilled
                } else {
                    OrderStatus::New
                };
                self.order_report(at_ns, &o, status, None);
            }
            OrderAction::Cancel | OrderAction::Replace => {
                let Some(i) = self.orders.iter().position(|o| o.id == intent.target) else {
                    let status = OrderStatus::CancelRejected(RejectReason::UnknownOrder);
                    self.venue_reply(at_ns, intent, intent.target, status);
                    return;
                };
                let o = self.orders.remove(i);
                self.stats.canceled += 1;
                let report_for = SimOrder { t0: intent.t0, ..o };
                self.order_report(at_ns, &report_for, OrderStatus::Canceled, None);
                if intent.action == OrderAction::Replace {
                    self.place(intent, at_ns);
                }
            }
        }
    }

    fn place(&mut self, intent: &OrderIntent, at_ns: u64) {
        if self.orders.iter().any(|o| o.id == intent.client_id) {
            let status = OrderStatus::Rejected(RejectReason::DuplicateId);
            self.venue_reply(at_ns, intent, intent.client_id, status);
            return;
        }
        if self.orders.is_full() {
            let status = OrderStatus::Rejected(RejectReason::MaxOpenOrders);
            self.venue_reply(at_ns, intent, intent.client_id, status);
            return;
        }
        let side = intent.side;
        let market = intent.order_type == OrderType::Market;
        let crosses = |l: &Level| {
            market
                || match side {
                    OrderSide::Buy => l.px <= intent.px,
                    OrderSide::Sell => l.px >= intent.px,
                }
        };
        let opposite = match side {
            OrderSide::Buy => &self.asks,
            OrderSide::Sell => &self.bids,
        };
        let available: i64 = opposite
            .iter()
            .take_while(|l| crosses(l))
            .map(|l| l.qty.0)
            .sum();
        if intent.order_type == OrderType::LimitMaker && available > 0 {
            let status = OrderStatus::Rejected(RejectReason::WouldTakeLiquidity);
            self.venue_reply(at_ns, intent, intent.client_id, status);
            return;
        }
        if market && available == 0 {
            let status = OrderStatus::Rejected(RejectReason::NoLiquidity);
            self.venue_reply(at_ns, intent, intent.client_id, status);
            return;
        }
        let mut o = SimOrder {
            id: intent.client_id,
            venue_id: VenueOrderId(self.next_venue_id),
            side,
            px: intent.px,
            leaves: intent.qty.0,
            cum: 0,
            queue: QueueSpot::join(None),
            t0: intent.t0,
        };
        self.next_venue_id += 1;
        self.stats.accepted += 1;
        if intent.tif == TimeInForce::Fok && available < o.leaves {
            self.order_report(at_ns, &o, OrderStatus::Expired, None);
            return;
        }
        self.order_report(at_ns, &o, OrderStatus::New, None);

        // Take the crossing levels, best first, and remove what was taken from our copy.
        let mut k = 0;
        while o.leaves > 0 {
            let opposite = match side {
                OrderSide::Buy => &mut self.asks,
                OrderSide::Sell => &mut self.bids,
            };
            let Some(level) = opposite.get(k).copied().filter(|l| crosses(l)) else {
                break;
            };
            let qty = level.qty.0.min(o.leaves);
            opposite[k].qty.0 -= qty;
            if opposite[k].qty.0 == 0 {
                k += 1;
            }
            self.apply_fill(&mut o, level.px, qty, false, at_ns);
        }
        let opposite = match side {
            OrderSide::Buy => &mut self.asks,
            OrderSide::Sell => &mut self.bids,
        };
        opposite.retain(|l| l.qty.0 > 0);
        if o.leaves == 0 {
            return;
        }
        if market || intent.tif != TimeInForce::Gtc {
            self.order_report(at_ns, &o, OrderStatus::Expired, None);
            return;
        }
        let own = match side {
            OrderSide::Buy => &self.bids,
            OrderSide::Sell => &self.asks,
        };
        o.queue = QueueSpot::join(visible_qty(own, side, o.px));
        // Cannot fail: the table was checked for room above.
        let _ = self.orders.try_push(o);
    }
}

/// The quantity visible at `px` on a best-first side: `Some(0)` when `px` lies within the
/// levels shown but has none, `None` when it is beyond them (unknown).
fn visible_qty(levels: &[Level], side: OrderSide, px: Px) -> Option<i64> {
    if let Some(l) = levels.iter().find(|l| l.px == px) {
        return Some(l.qty.0);
    }
    let worst = levels.last()?;
    let within = match side {
        OrderSide::Buy => px > worst.px,
        OrderSide::Sell => px < worst.px,
    };
    within.then_some(0)
}

impl OrderVenue for SimVenue {
    fn clock(&self) -> VenueClock {
        VenueClock::Event
    }

    /// The simulated venue matches against the market the strategy saw.
    fn taps_market(&self) -> bool {
        true
    }

    #[inline]
    fn on_book(&mut self, book: &BookTop, at_ns: u64) {
        self.on_book_at(book, at_ns);
    }

    #[inline]
    fn on_trade(&mut self, print: &TradePrint, at_ns: u64) {
        self.on_trade_at(print, at_ns);
    }

    #[inline]
    fn is_idle(&self) -> bool {
        self.orders.is_empty() && self.in_flight.is_empty() && self.outgoing.is_empty()
    }

    fn open_orders(&self) -> usize {
        self.orders.len()
    }

    fn stats(&self) -> VenueStats {
        self.stats
    }

    fn submit(&mut self, intent: &OrderIntent, now_ns: u64) {
        self.stats.submitted += 1;
        self.process_arrivals(now_ns);
        if let Err(reason) = self.hard_limits(intent) {
            let (id, status) = match intent.action {
                OrderAction::Cancel => (intent.target, OrderStatus::CancelRejected(reason)),
                _ => (intent.client_id, OrderStatus::Rejected(reason)),
            };
            // Refused in the gateway: answered now, not after the venue's latencies.
            self.reply(now_ns, now_ns, intent, id, status);
            return;
        }
        let arrive_ns = self.request_link.deliver(now_ns);
        // Cannot fail: `hard_limits` checked for room.
        let _ = self.in_flight.try_push(InFlight {
            arrive_ns,
            intent: *intent,
        });
    }

    fn poll(&mut self, now_ns: u64, mut emit: impl FnMut(ExecReport)) {
        self.process_arrivals(now_ns);
        let mut i = 0;
        while i < self.outgoing.len() {
            if self.outgoing[i].due_ns <= now_ns {
                emit(self.outgoing.remove(i).report);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
