//! The state of every order pinion has sent to Binance, merged from responses and user data.
//!
//! **Sources.** An order changes on three kinds of input, which may arrive in any order (the
//! WS API is asynchronous: a fill can come before the `order.place` answer, and a cancel's
//! answer can race the fills that preceded it):
//!
//! * what pinion did: [`OrderTable::submit`] when the request's bytes are written,
//!   [`OrderTable::on_lost`] / [`OrderTable::on_disconnect`] when its answer cannot come;
//! * the answer to a request ([`OrderTable::on_response`]);
//! * user data `executionReport`s ([`OrderTable::on_execution`]) and, after a deadline,
//!   `order.status` answers (through [`OrderTable::on_response`] with [`RequestKind::Status`]).
//!
//! **Invariants.**
//!
//! * Fills are applied by cumulative quantity `z`: a report whose `z` is not above what is known
//!   adds nothing, so a duplicate (a second subscription, a replayed event) or a late event
//!   never double-counts, and the fill reported is `z − known`, never a blind sum of `l`. Every
//!   execution id `I` seen recently is also remembered and a repeat is dropped outright.
//! * `leaves = qty − cum` never goes below zero; a state never goes back from closed to open.
//! * An outcome that is not known is **never** a rejection: a timeout, a disconnect after the
//!   bytes left, `-1006`, `-1007`, a 5xx or `"Duplicate order sent."` make the order
//!   [`OrderState::Unknown`], resolved by user data or by `order.status` once
//!   [`OrderTable::due_queries`] says it is time. A resend, if any, uses the same client id
//!   (then `"Duplicate order sent."` proves the first one arrived).
//! * A cancel's answer does not close the order: the `CANCELED` execution report does (it
//!   follows every fill of the order on the stream). `-2011 "Unknown order sent."` is a refused
//!   cancel of an order that may have filled: user data or a query will say.
//! * `-1021` (outside `recvWindow`) refuses the order and is counted for the clock estimator;
//!   nothing here resends it.
//!
//! Reports for the strategy ([`ExecReport`]) are handed to an `emit` callback; nothing here
//! allocates after [`OrderTable::new`] (the table has a fixed capacity; a full table refuses
//! new orders with [`RejectReason::Overloaded`]).

use pinion_core::{InstrumentId, Px, Qty};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderReason, OrderSide, OrderStatus,
    RejectReason, VenueOrderId,
};

use super::client_id::{ClientIdCodec, ClientIdKind};

mod lists;
use super::wire::{ExecType, ExecutionReport, Failure, OrderSnapshot, Response, VenueStatus};
use lists::list_capacity;
pub use lists::{ListRequest, ListState, OrderList};

/// Where an order stands, as far as pinion knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Sent; no answer and no user data yet.
    PendingNew,
    /// Accepted and open, nothing filled.
    New,
    /// A pending order of an OTO or OTOCO list (`PENDING_NEW`): accepted, but not on the
    /// book until the list's working order has filled.
    Waiting,
    /// Partly filled and open.
    PartiallyFilled,
    /// Completely filled (closed).
    Filled,
    /// A cancel is on its way.
    PendingCancel,
    /// Cancelled (closed).
    Canceled,
    /// A cancel-replace is on its way for this order.
    PendingReplace,
    /// Refused (closed): the order never opened.
    Rejected(RejectReason),
    /// Expired by the exchange: IOC/FOK remainder, self-trade prevention (closed).
    Expired,
    /// The outcome of a request is not known (timeout, disconnect, -1006, -1007, 5xx): open as
    /// far as risk is concerned until user data or a query says otherwise.
    Unknown,
}

impl OrderState {
    /// Whether the order is closed.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Filled
                | OrderState::Canceled
                | OrderState::Rejected(_)
                | OrderState::Expired
        )
    }

    /// Whether a request for this order is awaiting its answer.
    pub const fn is_pending(self) -> bool {
        matches!(
            self,
            OrderState::PendingNew | OrderState::PendingCancel | OrderState::PendingReplace
        )
    }
}

/// One order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// pinion's id.
    pub client_id: ClientOrderId,
    /// The exchange's id, once known.
    pub order_id: Option<u64>,
    /// Side.
    pub side: OrderSide,
    /// Limit price.
    pub price: Px,
    /// Order quantity.
    pub qty: Qty,
    /// Filled so far (the exchange's `z`).
    pub cum_qty: Qty,
    /// State.
    pub state: OrderState,
    /// The open state a refused cancel returns to.
    working: OrderState,
    /// `t0` of the intent that placed it.
    pub t0: u64,
    /// When the last request for it was written, ms.
    pub sent_ms: u64,
    /// When to query it if nothing has resolved it, ms.
    pub query_at_ms: Option<u64>,
    /// Whether an answer to the last request has come.
    answered: bool,
    /// Whether `New` (or a fill) has been reported to the strategy.
    accepted_reported: bool,
    /// The exchange's last error code for it (0 = none).
    pub last_error: i32,
    /// The quantity an amendment on its way asks for.
    amend_qty: Qty,
    /// The order list it belongs to (the list's client id).
    list: Option<ClientOrderId>,
    /// Why it was placed: what the account's orders (`/orders`, the history) show beside it.
    pub reason: OrderReason,
}

impl Order {
    /// The client id of the order list it belongs to, if any.
    pub fn list(&self) -> Option<ClientOrderId> {
        self.list
    }

    /// Quantity still open (0 once closed; never negative).
    pub fn leaves_qty(&self) -> Qty {
        if self.state.is_final() {
            Qty::ZERO
        } else {
            Qty((self.qty.0 - self.cum_qty.0).max(0))
        }
    }
}

/// An order placed before a restart, for [`OrderTable::adopt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// pinion's id.
    pub client_id: ClientOrderId,
    /// The exchange's id, when known.
    pub order_id: Option<u64>,
    /// Side.
    pub side: OrderSide,
    /// Limit price.
    pub price: Px,
    /// Order quantity.
    pub qty: Qty,
    /// Filled, as far as the engine knows.
    pub cum_qty: Qty,
    /// `t0` of the intent that placed it.
    pub t0: u64,
    /// Why it was placed, as the journal knows it.
    pub reason: OrderReason,
}

/// What a request was, for [`OrderTable::on_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `order.place`.
    Place,
    /// `order.cancel`.
    Cancel,
    /// `order.cancelReplace`; the client id passed is the cancelled order's, `new` the new one's.
    CancelReplace {
        /// The order it places.
        new: ClientOrderId,
    },
    /// `order.status`.
    Status,
    /// `order.amend.keepPriority`: the order's quantity down, its place kept.
    Amend,
}

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderTableConfig {
    /// Most orders tracked at once (open, pending or unknown, plus closed ones not yet swept).
    pub capacity: usize,
    /// How long an answer may take before its outcome is unknown, ms.
    pub answer_timeout_ms: u64,
    /// How long after an outcome became unknown to query it, ms (longer than the exchange's
    /// 10 s backend timeout, after which it will not act on the request any more).
    pub query_after_ms: u64,
}

impl Default for OrderTableConfig {
    fn default() -> Self {
        Self {
            capacity: 256,
            answer_timeout_ms: 2_000,
            query_after_ms: 11_000,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderTableStats {
    /// Execution reports dropped as exact duplicates (same `I`).
    pub duplicate_executions: u64,
    /// Execution reports that added nothing (stale `z`, or about a closed order).
    pub stale_executions: u64,
    /// Reports about ids that are not this run's.
    pub foreign: u64,
    /// Outcomes that became unknown.
    pub unknown: u64,
    /// `-1021` answers (for the clock estimator).
    pub timestamp_rejects: u64,
    /// Execution reports whose `z` exceeded the order quantity (clamped).
    pub overfills: u64,
    /// Closed orders forgotten to make room ([`OrderTable::sweep_closed`]).
    pub swept: u64,
    /// Answers that said an order closed as refused was accepted after all (the exchange
    /// contradicting an earlier answer); the order stays closed here.
    pub contradictions: u64,
}

const RECENT_EXECUTIONS: usize = 256;

/// The orders of one instrument. See the module docs.
#[derive(Debug, Clone)]
pub struct OrderTable {
    codec: ClientIdCodec,
    instrument: InstrumentId,
    price_decimals: u8,
    qty_decimals: u8,
    config: OrderTableConfig,
    orders: Vec<Order>,
    lists: Vec<OrderList>,
    recent: [u64; RECENT_EXECUTIONS],
    recent_len: usize,
    recent_at: usize,
    stats: OrderTableStats,
}

/// The strategy's status for an order state.
fn status_of(state: OrderState) -> OrderStatus {
    match state {
        OrderState::PendingNew
        | OrderState::New
        | OrderState::Waiting
        | OrderState::Unknown
        | OrderState::PendingCancel
        | OrderState::PendingReplace => OrderStatus::New,
        OrderState::PartiallyFilled => OrderStatus::PartiallyFilled,
        OrderState::Filled => OrderStatus::Filled,
        OrderState::Canceled => OrderStatus::Canceled,
        OrderState::Rejected(r) => OrderStatus::Rejected(r),
        OrderState::Expired => OrderStatus::Expired,
    }
}

/// The strategy's reason for a refusal the exchange gave as `code` and `msg`.
pub fn reject_reason(code: i32, msg: &str) -> RejectReason {
    let has = |s: &str| msg.contains(s);
    match code {
        -1013 | -2010 if has("PRICE_FILTER") || has("PERCENT_PRICE") => RejectReason::InvalidPrice,
        -1013 | -2010 if has("LOT_SIZE") => RejectReason::InvalidQty,
        -1013 | -2010 if has("NOTIONAL") => RejectReason::MaxNotional,
        -1013 | -2010 if has("MAX_NUM_ORDERS") => RejectReason::MaxOpenOrders,
        -2010 if has("immediately match and take") => RejectReason::WouldTakeLiquidity,
        -2010 if has("Duplicate order") => RejectReason::DuplicateId,
        -2010 if has("Market is closed") => RejectReason::Halted,
        -2011 | -2013 => RejectReason::UnknownOrder,
        -1111 => RejectReason::InvalidQty,
        -1003 | -1015 => RejectReason::Overloaded,
        _ => RejectReason::Venue,
    }
}

impl OrderTable {
    /// A table for `instrument` (prices and quantities at the given decimals), decoding ids
    /// with `codec`. Allocates its fixed capacity here, once.
    pub fn new(
        codec: ClientIdCodec,
        instrument: InstrumentId,
        price_decimals: u8,
        qty_decimals: u8,
        config: OrderTableConfig,
    ) -> Self {
        Self {
            codec,
            instrument,
            price_decimals,
            qty_decimals,
            config,
            orders: Vec::with_capacity(config.capacity),
            lists: Vec::with_capacity(list_capacity(config.capacity)),
            recent: [0; RECENT_EXECUTIONS],
            recent_len: 0,
            recent_at: 0,
            stats: OrderTableStats::default(),
        }
    }

    /// The (price, quantity) decimals execution reports must be converted at
    /// ([`super::wire::RawExecutionReport::typed`]).
    pub fn decimals(&self) -> (u8, u8) {
        (self.price_decimals, self.qty_decimals)
    }

    /// Counters.
    pub fn stats(&self) -> OrderTableStats {
        self.stats
    }

    /// The order with client id `id`.
    pub fn get(&self, id: ClientOrderId) -> Option<&Order> {
        self.orders.iter().find(|o| o.client_id == id)
    }

    /// Every tracked order.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// Orders not closed (open, pending or unknown).
    pub fn open_count(&self) -> usize {
        self.orders.iter().filter(|o| !o.state.is_final()).count()
    }

    /// Forgets closed orders (call when idle; their late duplicates are then counted as
    /// foreign-to-the-table and dropped).
    pub fn sweep_closed(&mut self) {
        let before = self.orders.len();
        // A closed order of a list still open stays: the list's state is read from it.
        let lists = &self.lists;
        self.orders.retain(|o| {
            !o.state.is_final()
                || o.list
                    .is_some_and(|l| lists.iter().any(|x| x.list_id == l && !x.state.is_final()))
        });
        self.lists.retain(|l| !l.state.is_final());
        self.stats.swept += (before - self.orders.len()) as u64;
    }

    /// Most orders tracked at once.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    fn index(&self, id: ClientOrderId) -> Option<usize> {
        self.orders.iter().position(|o| o.client_id == id)
    }

    fn report(
        &self,
        o: &Order,
        status: OrderStatus,
        last_px: Px,
        last_qty: Qty,
        maker: bool,
        ts_ms: u64,
    ) -> ExecReport {
        ExecReport {
            client_id: o.client_id,
            venue_id: VenueOrderId(o.order_id.unwrap_or(0)),
            instrument: self.instrument,
            side: o.side,
            status,
            last_px,
            last_qty,
            cum_qty: o.cum_qty,
            leaves_qty: o.leaves_qty(),
            maker,
            t0: o.t0,
            venue_ts: ts_ms.saturating_mul(1_000_000),
        }
    }

    /// Records a request whose bytes were written at `now_ms`. `Err` says why it cannot be
    /// tracked (and so must not be sent): a duplicate id, a full table, or a cancel of an order
    /// that is not open.
    pub fn submit(&mut self, intent: &OrderIntent, now_ms: u64) -> Result<(), RejectReason> {
        match intent.action {
            OrderAction::New => self.insert(intent, now_ms),
            OrderAction::Amend => {
                let i = self
                    .index(intent.target)
                    .ok_or(RejectReason::UnknownOrder)?;
                let o = &mut self.orders[i];
                if !matches!(o.state, OrderState::New | OrderState::PartiallyFilled) {
                    return Err(RejectReason::UnknownOrder);
                }
                if intent.qty >= o.qty || intent.qty <= o.cum_qty {
                    return Err(RejectReason::InvalidQty);
                }
                o.amend_qty = intent.qty;
                o.state = OrderState::PendingReplace;
                o.sent_ms = now_ms;
                o.answered = false;
                Ok(())
            }
            OrderAction::Cancel | OrderAction::Replace => {
                let i = self
                    .index(intent.target)
                    .ok_or(RejectReason::UnknownOrder)?;
                let o = &self.orders[i];
                if o.state.is_final() || o.state.is_pending() && o.state != OrderState::PendingNew {
                    return Err(RejectReason::UnknownOrder);
                }
                if intent.action == OrderAction::Replace {
                    self.insert(intent, now_ms)?;
                }
                let o = &mut self.orders[i];
                o.state = if intent.action == OrderAction::Cancel {
                    OrderState::PendingCancel
                } else {
                    OrderState::PendingReplace
                };
                o.sent_ms = now_ms;
                o.answered = false;
                Ok(())
            }
        }
    }

    fn insert(&mut self, intent: &OrderIntent, now_ms: u64) -> Result<(), RejectReason> {
        if self.index(intent.client_id).is_some() {
            return Err(RejectReason::DuplicateId);
        }
        if self.orders.len() >= self.config.capacity {
            return Err(RejectReason::Overloaded);
        }
        self.orders.push(Order {
            client_id: intent.client_id,
            order_id: None,
            side: intent.side,
            price: intent.px,
            qty: intent.qty,
            cum_qty: Qty::ZERO,
            state: OrderState::PendingNew,
            working: OrderState::PendingNew,
            t0: intent.t0,
            sent_ms: now_ms,
            query_at_ms: None,
            answered: false,
            accepted_reported: false,
            last_error: 0,
            amend_qty: Qty::ZERO,
            list: None,
            reason: intent.reason,
        });
        Ok(())
    }

    /// Takes in an order placed before a restart (known from the engine's journal; its id of
    /// this table's epoch), `cum_qty` of it filled as far as the journal knows, so that the
    /// reconciliation after connect moves it to what the exchange says: its state is unknown
    /// and it is due an `order.status` at once, unless the open-order list settles it first.
    /// `Err` when its id is tracked already or the table is full.
    pub fn adopt(&mut self, order: Adopted) -> Result<(), RejectReason> {
        if self.index(order.client_id).is_some() {
            return Err(RejectReason::DuplicateId);
        }
        if self.orders.len() >= self.config.capacity {
            return Err(RejectReason::Overloaded);
        }
        self.orders.push(Order {
            client_id: order.client_id,
            order_id: order.order_id,
            side: order.side,
            price: order.price,
            qty: order.qty,
            cum_qty: order.cum_qty,
            state: OrderState::Unknown,
            working: OrderState::Unknown,
            t0: order.t0,
            sent_ms: 0,
            query_at_ms: Some(0),
            answered: true,
            accepted_reported: true,
            last_error: 0,
            amend_qty: Qty::ZERO,
            // The journal holds the strategies' own orders, never a list's legs.
            list: None,
            reason: order.reason,
        });
        Ok(())
    }

    /// The answer to a request about order `id` (for a cancel-replace: the cancelled order).
    pub fn on_response(
        &mut self,
        kind: RequestKind,
        id: ClientOrderId,
        resp: &Response<'_>,
        now_ms: u64,
        mut emit: impl FnMut(ExecReport),
    ) {
        let failure = resp.failure();
        let (code, msg) = match &resp.outcome {
            Err(e) => (e.code, &*e.msg),
            Ok(_) => (0, ""),
        };
        if failure == Some(Failure::Timestamp) {
            self.stats.timestamp_rejects += 1;
        }
        match kind {
            RequestKind::Place => {
                let Some(i) = self.index(id) else { return };
                self.orders[i].answered = true;
                match failure {
                    None => {
                        if let Ok(ack) = resp.order_ack() {
                            self.orders[i].order_id = Some(ack.order_id);
                        }
                        let o = &mut self.orders[i];
                        if matches!(o.working, OrderState::PendingNew | OrderState::Unknown) {
                            o.working = OrderState::New;
                        }
                        if matches!(o.state, OrderState::PendingNew | OrderState::Unknown) {
                            o.state = OrderState::New;
                            o.query_at_ms = None;
                        }
                        self.report_accepted(i, now_ms, &mut emit);
                    }
                    Some(f) => self.place_failed(i, f, code, msg, now_ms, &mut emit),
                }
            }
            RequestKind::Cancel => {
                let Some(i) = self.index(id) else { return };
                self.orders[i].answered = true;
                self.cancel_answered(i, failure, code, msg, now_ms, &mut emit);
            }
            RequestKind::Amend => {
                let Some(i) = self.index(id) else { return };
                self.orders[i].answered = true;
                match failure {
                    None => {
                        let o = &mut self.orders[i];
                        if o.state.is_final() {
                            return;
                        }
                        // The amendment is done: the new quantity, the same place in the queue.
                        o.qty = o.amend_qty.max(o.cum_qty);
                        if o.state == OrderState::PendingReplace {
                            o.state = o.working;
                        }
                        let o = *o;
                        let status = status_of(o.state);
                        emit(self.report(&o, status, Px::ZERO, Qty::ZERO, false, now_ms));
                    }
                    // Whether it was applied is not known: the order's own state says, later.
                    Some(Failure::Unknown) => {
                        self.stats.unknown += 1;
                        self.orders[i].query_at_ms = Some(now_ms + self.config.query_after_ms);
                    }
                    Some(_) => self.cancel_answered(i, failure, code, msg, now_ms, &mut emit),
                }
            }
            RequestKind::CancelReplace { new } => {
                let target = self.index(id);
                let placed = self.index(new);
                if let Some(i) = target {
                    self.orders[i].answered = true;
                }
                if let Some(j) = placed {
                    self.orders[j].answered = true;
                }
                match failure {
                    // Both legs succeeded: user data closes the old order and opens the new.
                    None => {
                        for k in [target, placed].into_iter().flatten() {
                            self.orders[k].query_at_ms = Some(now_ms + self.config.query_after_ms);
                        }
                    }
                    // One leg succeeded (STOP_ON_FAILURE: the cancel did, the new order did
                    // not): the old order closes through user data, the new one is refused.
                    Some(Failure::PartialSuccess) => {
                        if let Some(k) = target {
                            self.orders[k].query_at_ms = Some(now_ms + self.config.query_after_ms);
                        }
                        if let Some(j) = placed {
                            self.place_failed(j, Failure::Refused, code, msg, now_ms, &mut emit);
                        }
                    }
                    Some(f) => {
                        if let Some(k) = target {
                            self.cancel_answered(k, Some(f), code, msg, now_ms, &mut emit);
                        }
                        if let Some(j) = placed {
                            self.place_failed(j, f, code, msg, now_ms, &mut emit);
                        }
                    }
                }
            }
            RequestKind::Status => {
                let Some(i) = self.index(id) else { return };
                match failure {
                    None => {
                        if let Ok(snap) = resp.order_snapshot() {
                            self.apply_snapshot(i, &snap, now_ms, &mut emit);
                        }
                    }
                    // The exchange has no such order, past the time it could still act on
                    // the request: it was never placed.
                    Some(Failure::Refused) if code == -2013 => {
                        let o = &mut self.orders[i];
                        if matches!(o.state, OrderState::Unknown | OrderState::PendingNew) {
                            o.state = OrderState::Rejected(RejectReason::UnknownOrder);
                            o.last_error = code;
                            o.query_at_ms = None;
                            if let Some(list) = o.list {
                                self.settle_list(list);
                            }
                            let r = self.report(
                                &self.orders[i],
                                status_of(self.orders[i].state),
                                Px::ZERO,
                                Qty::ZERO,
                                false,
                                now_ms,
                            );
                            emit(r);
                        }
                    }
                    // Anything else: ask again later.
                    Some(_) => {
                        self.orders[i].query_at_ms = Some(now_ms + self.config.query_after_ms);
                    }
                }
            }
        }
    }

    /// An order as the exchange lists it (`openOrders.status` after a reconnect): the state and
    /// cumulative quantity it gives are applied as an execution would be. `false` when the
    /// order is not this table's (another run's, another program's, or one already swept).
    pub fn on_snapshot(
        &mut self,
        snap: &OrderSnapshot<'_>,
        now_ms: u64,
        mut emit: impl FnMut(ExecReport),
    ) -> bool {
        let Ok(ClientIdKind::Ours(id)) = self.codec.decode(snap.client_order_id.as_bytes()) else {
            return false;
        };
        let Some(i) = self.index(id) else {
            return false;
        };
        self.apply_snapshot(i, snap, now_ms, &mut emit);
        true
    }

    fn apply_snapshot(
        &mut self,
        i: usize,
        snap: &OrderSnapshot<'_>,
        now_ms: u64,
        emit: &mut impl FnMut(ExecReport),
    ) {
        let (Ok(status), Ok(cum)) = (
            VenueStatus::parse(snap.status),
            Qty::parse(snap.executed_qty.as_bytes(), self.qty_decimals),
        ) else {
            return;
        };
        self.orders[i].order_id = Some(snap.order_id);
        if let Ok(orig) = Qty::parse(snap.orig_qty.as_bytes(), self.qty_decimals)
            && orig < self.orders[i].qty
            && orig >= self.orders[i].cum_qty
        {
            // An amendment whose answer was lost took effect.
            self.orders[i].qty = orig;
        }
        let px = self.orders[i].price;
        // A snapshot does not say at which prices the fills were: the order's limit price
        // stands in (myTrades, applied first on a reconnect, gives the exact ones).
        self.apply(i, status, cum, px, false, now_ms, RejectReason::Venue, emit);
        self.orders[i].query_at_ms = None;
    }

    /// One of the account's trades as `myTrades` lists it (after a reconnect, for fills the
    /// interrupted user data did not bring): its quantity is added to the order's cumulative
    /// quantity at its own price, so a later `executionReport` or snapshot for the same fill
    /// adds nothing. The order stays open until an event or a snapshot closes it. `false` when
    /// the trade is not of an order in this table.
    pub fn on_trade(
        &mut self,
        order_id: u64,
        px: Px,
        qty: Qty,
        maker: bool,
        ts_ms: u64,
        mut emit: impl FnMut(ExecReport),
    ) -> bool {
        let Some(i) = self
            .orders
            .iter()
            .position(|o| o.order_id == Some(order_id))
        else {
            return false;
        };
        let o = &self.orders[i];
        if o.state.is_final() {
            return false;
        }
        let cum = Qty(o.cum_qty.0.saturating_add(qty.0));
        let status = if cum >= o.qty {
            VenueStatus::Filled
        } else {
            VenueStatus::PartiallyFilled
        };
        self.apply(
            i,
            status,
            cum,
            px,
            maker,
            ts_ms,
            RejectReason::Venue,
            &mut emit,
        );
        true
    }

    /// Whether any order's answer, or its unknown outcome, is still to be resolved.
    pub fn unresolved(&self) -> usize {
        self.orders
            .iter()
            .filter(|o| !o.state.is_final() && (!o.answered || o.state == OrderState::Unknown))
            .count()
    }

    fn report_accepted(&mut self, i: usize, ts_ms: u64, emit: &mut impl FnMut(ExecReport)) {
        if self.orders[i].state.is_final() {
            // An acceptance after the order was closed (an answer later than the query that
            // found no such order): the strategy was told it closed, and a closed order is
            // never reopened. Counted, for the operator to look at.
            if !self.orders[i].accepted_reported {
                self.orders[i].accepted_reported = true;
                self.stats.contradictions += 1;
            }
            return;
        }
        if !self.orders[i].accepted_reported {
            self.orders[i].accepted_reported = true;
            let r = self.report(
                &self.orders[i],
                OrderStatus::New,
                Px::ZERO,
                Qty::ZERO,
                false,
                ts_ms,
            );
            emit(r);
        }
    }

    fn place_failed(
        &mut self,
        i: usize,
        f: Failure,
        code: i32,
        msg: &str,
        now_ms: u64,
        emit: &mut impl FnMut(ExecReport),
    ) {
        let query_after = self.config.query_after_ms;
        let o = &mut self.orders[i];
        o.last_error = code;
        // User data may already have said more than the answer does.
        if o.state.is_final() || !matches!(o.working, OrderState::PendingNew | OrderState::Unknown)
        {
            return;
        }
        let rejected = match f {
            Failure::Unknown | Failure::Duplicate | Failure::PartialSuccess => {
                if o.working != OrderState::Unknown {
                    self.stats.unknown += 1;
                }
                o.working = OrderState::Unknown;
                if o.state == OrderState::PendingNew {
                    o.state = OrderState::Unknown;
                }
                o.query_at_ms = Some(now_ms + query_after);
                return;
            }
            Failure::Refused
            | Failure::CancelUnknownOrder
            | Failure::Timestamp
            | Failure::Unauthorized => reject_reason(code, msg),
            Failure::RateLimited => RejectReason::Overloaded,
            Failure::Banned => RejectReason::Halted,
        };
        o.state = OrderState::Rejected(rejected);
        o.query_at_ms = None;
        if let Some(list) = o.list {
            self.settle_list(list);
        }
        let r = self.report(
            &self.orders[i],
            OrderStatus::Rejected(rejected),
            Px::ZERO,
            Qty::ZERO,
            false,
            now_ms,
        );
        emit(r);
    }

    fn cancel_answered(
        &mut self,
        i: usize,
        failure: Option<Failure>,
        code: i32,
        msg: &str,
        now_ms: u64,
        emit: &mut impl FnMut(ExecReport),
    ) {
        let query_after = self.config.query_after_ms;
        let o = &mut self.orders[i];
        if o.state.is_final() {
            return;
        }
        let refused = |o: &mut Order, reason: RejectReason| {
            if matches!(
                o.state,
                OrderState::PendingCancel | OrderState::PendingReplace
            ) {
                o.state = o.working;
            }
            reason
        };
        let reason = match failure {
            // Accepted: the CANCELED execution report closes it, after every fill before it.
            None => {
                o.query_at_ms = Some(now_ms + query_after);
                return;
            }
            Some(Failure::Unknown) => {
                self.stats.unknown += 1;
                o.query_at_ms = Some(now_ms + query_after);
                return;
            }
            // The order may have filled or closed: user data or a query will say.
            Some(Failure::CancelUnknownOrder) => {
                o.query_at_ms = Some(now_ms);
                refused(o, RejectReason::UnknownOrder)
            }
            Some(Failure::RateLimited) => refused(o, RejectReason::Overloaded),
            Some(Failure::Banned) => refused(o, RejectReason::Halted),
            Some(_) => refused(o, reject_reason(code, msg)),
        };
        o.last_error = code;
        let r = self.report(
            &self.orders[i],
            OrderStatus::CancelRejected(reason),
            Px::ZERO,
            Qty::ZERO,
            false,
            now_ms,
        );
        emit(r);
    }

    /// A user data `executionReport` (converted at this table's decimals).
    pub fn on_execution(&mut self, rep: &ExecutionReport<'_>, mut emit: impl FnMut(ExecReport)) {
        // On a cancel, `c` is the cancel request's id and `C` the order's.
        let text = if rep.orig_client_id.is_empty() {
            rep.client_id
        } else {
            rep.orig_client_id
        };
        let id = match self.codec.decode(text.as_bytes()) {
            Ok(ClientIdKind::Ours(id)) => id,
            _ => {
                self.stats.foreign += 1;
                return;
            }
        };
        if self.seen(rep.execution_id) {
            self.stats.duplicate_executions += 1;
            return;
        }
        let Some(i) = self.index(id) else {
            self.stats.stale_executions += 1;
            return;
        };
        if self.orders[i].order_id.is_none() {
            self.orders[i].order_id = Some(rep.order_id);
        }
        if rep.exec_type == ExecType::Replaced {
            // keepPriority amend: the quantity went down, nothing else changed.
            self.orders[i].qty = rep.qty;
        }
        let reason = match rep.reject_reason {
            "WOULD_MATCH_IMMEDIATELY" => RejectReason::WouldTakeLiquidity,
            _ => RejectReason::Venue,
        };
        self.apply(
            i,
            rep.status,
            rep.cum_qty,
            rep.last_px,
            rep.maker,
            rep.transact_time,
            reason,
            &mut emit,
        );
    }

    fn seen(&mut self, execution_id: u64) -> bool {
        if self.recent[..self.recent_len].contains(&execution_id) {
            return true;
        }
        self.recent[self.recent_at] = execution_id;
        self.recent_at = (self.recent_at + 1) % RECENT_EXECUTIONS;
        self.recent_len = (self.recent_len + 1).min(RECENT_EXECUTIONS);
        false
    }

    /// Moves order `i` to what the exchange says: `status` with `cum` filled.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        i: usize,
        status: VenueStatus,
        cum: Qty,
        last_px: Px,
        maker: bool,
        ts_ms: u64,
        reject: RejectReason,
        emit: &mut impl FnMut(ExecReport),
    ) {
        let o = &mut self.orders[i];
        if o.state.is_final() {
            self.stats.stale_executions += 1;
            return;
        }
        let mut cum = cum;
        if cum > o.qty {
            self.stats.overfills += 1;
            cum = o.qty;
        }
        let fill = if cum > o.cum_qty {
            Qty(cum.0 - o.cum_qty.0)
        } else {
            Qty::ZERO
        };
        o.cum_qty = o.cum_qty.max(cum);
        let open = if o.cum_qty.0 > 0 {
            OrderState::PartiallyFilled
        } else {
            OrderState::New
        };
        let next = match status {
            VenueStatus::Filled => OrderState::Filled,
            VenueStatus::Canceled => OrderState::Canceled,
            VenueStatus::Expired | VenueStatus::ExpiredInMatch => OrderState::Expired,
            VenueStatus::Rejected => OrderState::Rejected(reject),
            // A list's pending order, not yet on the book: only ever before it opened.
            VenueStatus::PendingNew
                if o.cum_qty.0 == 0
                    && matches!(
                        o.working,
                        OrderState::PendingNew | OrderState::Unknown | OrderState::Waiting
                    ) =>
            {
                o.working = OrderState::Waiting;
                match o.state {
                    OrderState::PendingCancel | OrderState::PendingReplace => o.state,
                    _ => OrderState::Waiting,
                }
            }
            VenueStatus::New
            | VenueStatus::PendingNew
            | VenueStatus::PartiallyFilled
            | VenueStatus::PendingCancel => {
                o.working = open;
                match o.state {
                    // A request is still out: keep saying so.
                    OrderState::PendingCancel | OrderState::PendingReplace => o.state,
                    _ => open,
                }
            }
        };
        let newly_open =
            !o.state.is_final() && matches!(o.state, OrderState::PendingNew | OrderState::Unknown);
        o.state = next;
        if newly_open || next.is_final() {
            o.query_at_ms = None;
        }
        let o = *o;
        if let Some(list) = o.list {
            self.settle_list(list);
        }
        if fill.0 > 0 {
            self.orders[i].accepted_reported = true;
            let status = if next.is_final() {
                status_of(next)
            } else {
                OrderStatus::PartiallyFilled
            };
            emit(self.report(&o, status, last_px, fill, maker, ts_ms));
        } else if next.is_final() {
            emit(self.report(&o, status_of(next), Px::ZERO, Qty::ZERO, false, ts_ms));
        } else {
            self.report_accepted(i, ts_ms, emit);
        }
    }

    /// The answer to the last request for `id` cannot come (its deadline passed, the
    /// connection dropped after the bytes left, a partial write): its outcome is unknown.
    pub fn on_lost(&mut self, id: ClientOrderId, now_ms: u64) {
        let query_after = self.config.query_after_ms;
        let Some(i) = self.index(id) else { return };
        let o = &mut self.orders[i];
        if o.state.is_final() || o.answered {
            return;
        }
        o.answered = true;
        self.stats.unknown += 1;
        if o.state == OrderState::PendingNew {
            o.state = OrderState::Unknown;
            o.working = OrderState::Unknown;
        }
        // The exchange stops acting on a request a fixed time after it was sent, not after
        // the loss was noticed.
        o.query_at_ms = Some(o.sent_ms.saturating_add(query_after).max(now_ms));
    }

    /// An event about the order whose client id is `text` (`c` or `C`) could not be read: what
    /// it said is lost, so the order's state is unknown until a query or a later event settles
    /// it. `false` when the id is not of an order here.
    pub fn lose_track_of(&mut self, text: &str, now_ms: u64) -> bool {
        let Ok(ClientIdKind::Ours(id)) = self.codec.decode(text.as_bytes()) else {
            return false;
        };
        let Some(i) = self.index(id) else {
            return false;
        };
        let o = &mut self.orders[i];
        if o.state.is_final() {
            return true;
        }
        if o.state != OrderState::Unknown {
            self.stats.unknown += 1;
        }
        o.state = OrderState::Unknown;
        o.working = OrderState::Unknown;
        o.query_at_ms = Some(now_ms);
        true
    }

    /// User data can no longer be had (the key was revoked): every order not closed is now
    /// unknown, queried (in vain until the key works again) after the usual delay.
    pub fn lose_track_of_all(&mut self, now_ms: u64) {
        let query_after = self.config.query_after_ms;
        for o in &mut self.orders {
            if o.state.is_final() {
                continue;
            }
            if o.state != OrderState::Unknown {
                self.stats.unknown += 1;
            }
            o.state = OrderState::Unknown;
            o.working = OrderState::Unknown;
            o.query_at_ms = Some(now_ms + query_after);
        }
    }

    /// The connection dropped at `now_ms`: every unanswered request's outcome is unknown.
    pub fn on_disconnect(&mut self, now_ms: u64) {
        for k in 0..self.orders.len() {
            let id = self.orders[k].client_id;
            self.on_lost(id, now_ms);
        }
        for k in 0..self.lists.len() {
            let id = self.lists[k].list_id;
            self.on_list_lost(id, now_ms);
        }
    }

    /// Requests unanswered for longer than the answer timeout become unknown.
    pub fn check_timeouts(&mut self, now_ms: u64) {
        for k in 0..self.orders.len() {
            let o = &self.orders[k];
            if !o.answered
                && !o.state.is_final()
                && now_ms.saturating_sub(o.sent_ms) >= self.config.answer_timeout_ms
            {
                let id = o.client_id;
                self.on_lost(id, now_ms);
            }
        }
        for k in 0..self.lists.len() {
            let l = &self.lists[k];
            if !l.answered
                && !l.state.is_final()
                && now_ms.saturating_sub(l.sent_ms) >= self.config.answer_timeout_ms
            {
                let id = l.list_id;
                self.on_list_lost(id, now_ms);
            }
        }
    }

    /// User data was interrupted (a reconnect, `eventStreamTerminated`) and the open orders
    /// have been listed: every order not closed that `listed` does not hold (by exchange order
    /// id) is due an `order.status` now, since events may have been missed. An order whose
    /// outcome is unknown keeps its later query time: the exchange may still act on its request
    /// until then, so an earlier "no such order" would prove nothing.
    pub fn reconcile_all(&mut self, now_ms: u64, listed: impl Fn(u64) -> bool) {
        for o in &mut self.orders {
            if o.state.is_final() || o.order_id.is_some_and(&listed) {
                continue;
            }
            o.query_at_ms = Some(match o.query_at_ms {
                Some(at) if o.state == OrderState::Unknown => at,
                _ => now_ms,
            });
        }
    }

    /// Calls `query(client_id, order_id)` for every order due an `order.status` (by order id
    /// when known) and schedules the next attempt.
    pub fn due_queries(&mut self, now_ms: u64, mut query: impl FnMut(ClientOrderId, Option<u64>)) {
        let again = self.config.query_after_ms;
        for o in &mut self.orders {
            if let Some(at) = o.query_at_ms
                && at <= now_ms
                && !o.state.is_final()
            {
                o.query_at_ms = Some(now_ms + again);
                query(o.client_id, o.order_id);
            }
        }
    }
}
