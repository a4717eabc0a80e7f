//! Order lists (OCO, OTO, OTOCO) in the order table.
//!
//! A list is tracked twice over: each of its orders is an [`Order`] of the table like any
//! other (its own state, fills and queries, from its own `executionReport`s and snapshots), and
//! the list itself is an [`OrderList`] holding what only the list has: the exchange's
//! `orderListId`, the last `listStatusType` and `listOrderStatus` it sent, and where the list
//! stands ([`ListState`]).
//!
//! **Invariants.**
//!
//! * A list whose every order is closed is closed: [`ListState::AllDone`], or
//!   [`ListState::Rejected`] when none of them ever opened. A closed list never reopens.
//! * The exchange's `ALL_DONE` closes a list even before its orders' last reports arrive; an
//!   order still open then is queried at once, so it cannot stay open by a lost report.
//! * A list is `Rejected` only while none of its orders was accepted; a `REJECT` after that is
//!   a refused action on the list (a cancel), never a rejection of the orders.
//! * What an order list's request leads to when its answer cannot come is what it would be for
//!   its orders: unknown, resolved by user data or by querying each order.
//!
//! The strategy hears about the orders, never the list: each order's [`ExecReport`]s say what
//! happened to it (an OCO leg cancelled by its partner's fill is reported `Expired`, as the
//! exchange reports it). A pending order ([`OrderState::Waiting`]) is reported `New` once
//! accepted: the strategy's contract has no state for "accepted, not yet on the book".

use pinion_core::{Px, Qty};
use pinion_strategy::{ClientOrderId, ExecReport, OrderReason, OrderStatus, RejectReason};

use super::super::client_id::ClientIdKind;
use super::super::contingent::{ContingentLeg, ContingentOrder, ListIntent, ListKind};
use super::super::wire::{
    Failure, ListLegs, ListOrderStatus, ListSnapshot, ListStatusType, ListUpdate, Response,
};
use super::{Order, OrderState, OrderTable, reject_reason};

/// Lists tracked at once for a table of `capacity` orders (every list has at least two).
pub(super) const fn list_capacity(capacity: usize) -> usize {
    capacity / 2 + 1
}

/// Where an order list stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListState {
    /// Sent; no answer yet.
    PendingNew,
    /// Placed; some order of it still working or waiting.
    Executing,
    /// `orderList.cancel` is on its way.
    PendingCancel,
    /// Done: every order closed, or the exchange said `ALL_DONE` (closed).
    AllDone,
    /// Refused: none of its orders opened (closed).
    Rejected(RejectReason),
    /// The placement's outcome is not known yet.
    Unknown,
}

impl ListState {
    /// Whether the list is closed.
    pub const fn is_final(self) -> bool {
        matches!(self, ListState::AllDone | ListState::Rejected(_))
    }
}

/// One order list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderList {
    /// The list's client id (`listClientOrderId`).
    pub list_id: ClientOrderId,
    /// The exchange's `orderListId`, once known.
    pub order_list_id: Option<u64>,
    /// OCO, OTO or OTOCO.
    pub kind: ListKind,
    /// Its orders' client ids, in request order (working first; above before below).
    pub legs: [ClientOrderId; 3],
    /// How many of `legs` there are (2 or 3).
    pub leg_count: u8,
    /// Where it stands.
    pub state: ListState,
    /// The last `listStatusType` the exchange sent.
    pub status_type: Option<ListStatusType>,
    /// The last `listOrderStatus` the exchange sent.
    pub order_status: Option<ListOrderStatus>,
    /// `t0` of the intent that placed it.
    pub t0: u64,
    /// When the last request for it was written, ms.
    pub sent_ms: u64,
    /// Whether the last request for it was answered.
    pub(super) answered: bool,
    /// The open state a refused cancel returns to.
    working: ListState,
}

impl OrderList {
    /// Its orders' client ids.
    pub fn legs(&self) -> &[ClientOrderId] {
        &self.legs[..usize::from(self.leg_count)]
    }

    /// Whether the last request for it (its placement, or a cancel) is still unanswered: a
    /// cancel of it is refused until the answer comes.
    pub fn awaiting_answer(&self) -> bool {
        !self.answered
    }
}

/// A request about a list, for [`OrderTable::on_list_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListRequest {
    /// `orderList.place.oco`, `.oto` or `.otoco`.
    Place,
    /// `orderList.cancel`.
    Cancel,
}

impl OrderTable {
    /// The list with client id `id`.
    pub fn list(&self, id: ClientOrderId) -> Option<&OrderList> {
        self.lists.iter().find(|l| l.list_id == id)
    }

    /// Every tracked list.
    pub fn lists(&self) -> &[OrderList] {
        &self.lists
    }

    fn list_index(&self, id: ClientOrderId) -> Option<usize> {
        self.lists.iter().position(|l| l.list_id == id)
    }

    /// Adds `leg` as a new order; its price is its limit price, or its stop price for a
    /// market stop (0 for a trailing one).
    fn push_order(
        &mut self,
        leg: &ContingentLeg,
        t0: u64,
        now_ms: u64,
        list: Option<ClientOrderId>,
    ) {
        let price = leg
            .spec
            .price
            .or(leg.spec.trigger.and_then(|t| t.stop_price()))
            .unwrap_or(Px::ZERO);
        self.orders.push(Order {
            client_id: leg.client_id,
            order_id: None,
            side: leg.side,
            price,
            qty: leg.qty,
            cum_qty: Qty::ZERO,
            state: OrderState::PendingNew,
            working: OrderState::PendingNew,
            t0,
            sent_ms: now_ms,
            query_at_ms: None,
            answered: false,
            accepted_reported: false,
            last_error: 0,
            amend_qty: Qty::ZERO,
            list,
            reason: OrderReason::new(0, leg.spec.reason()),
        });
    }

    /// Records a protective order (`order.place` of a triggered type) whose bytes were written
    /// at `now_ms`; answered through [`OrderTable::on_response`] with
    /// [`super::RequestKind::Place`] like any order. Its price is its limit price, or its stop
    /// price for a market stop (0 for a trailing one).
    pub fn submit_contingent(
        &mut self,
        order: &ContingentOrder,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        let leg = &order.leg;
        if self.index(leg.client_id).is_some() {
            return Err(RejectReason::DuplicateId);
        }
        if self.orders.len() >= self.config.capacity {
            return Err(RejectReason::Overloaded);
        }
        self.push_order(leg, order.t0, now_ms, None);
        Ok(())
    }

    /// Records an order list whose bytes were written at `now_ms`: the list and each of its
    /// orders. `Err` says why it cannot be tracked (and so must not be sent).
    pub fn submit_list(&mut self, list: &ListIntent, now_ms: u64) -> Result<(), RejectReason> {
        let legs = list.legs();
        if self.list_index(list.list_id).is_some()
            || self.index(list.list_id).is_some()
            || legs.iter().any(|l| self.index(l.client_id).is_some())
        {
            return Err(RejectReason::DuplicateId);
        }
        if self.orders.len() + legs.len() > self.config.capacity
            || self.lists.len() >= list_capacity(self.config.capacity)
        {
            return Err(RejectReason::Overloaded);
        }
        let mut ids = [ClientOrderId(0); 3];
        for (k, leg) in legs.iter().enumerate() {
            ids[k] = leg.client_id;
            self.push_order(leg, list.t0, now_ms, Some(list.list_id));
        }
        self.lists.push(OrderList {
            list_id: list.list_id,
            order_list_id: None,
            kind: list.kind(),
            legs: ids,
            leg_count: legs.len() as u8,
            state: ListState::PendingNew,
            status_type: None,
            order_status: None,
            t0: list.t0,
            sent_ms: now_ms,
            answered: false,
            working: ListState::PendingNew,
        });
        Ok(())
    }

    /// Records an `orderList.cancel` of list `id` written at `now_ms`. `Err` when the list is
    /// not open, or a request for it is still unanswered.
    pub fn cancel_list(&mut self, id: ClientOrderId, now_ms: u64) -> Result<(), RejectReason> {
        let i = self.list_index(id).ok_or(RejectReason::UnknownOrder)?;
        let l = &mut self.lists[i];
        if l.state.is_final() || !l.answered {
            return Err(RejectReason::UnknownOrder);
        }
        if l.state != ListState::PendingCancel {
            l.working = l.state;
        }
        l.state = ListState::PendingCancel;
        l.sent_ms = now_ms;
        l.answered = false;
        Ok(())
    }

    /// The answer to a request about list `id`.
    pub fn on_list_response(
        &mut self,
        kind: ListRequest,
        id: ClientOrderId,
        resp: &Response<'_>,
        now_ms: u64,
        mut emit: impl FnMut(ExecReport),
    ) {
        let Some(i) = self.list_index(id) else { return };
        self.lists[i].answered = true;
        let failure = resp.failure();
        let (code, msg) = match &resp.outcome {
            Err(e) => (e.code, &*e.msg),
            Ok(_) => (0, ""),
        };
        if failure == Some(Failure::Timestamp) {
            self.stats.timestamp_rejects += 1;
        }
        let l = self.lists[i];
        match (kind, failure) {
            (ListRequest::Place, None) => {
                if let Ok(snap) = resp.order_list() {
                    self.learn_ids(i, snap.order_list_id, &snap.orders);
                }
                for (k, &leg) in l.legs().iter().enumerate() {
                    let Some(j) = self.index(leg) else { continue };
                    self.orders[j].answered = true;
                    // The pending orders of an OTO/OTOCO wait for the working order's fill.
                    let open = if k > 0 && l.kind != ListKind::Oco {
                        OrderState::Waiting
                    } else {
                        OrderState::New
                    };
                    let o = &mut self.orders[j];
                    if matches!(o.working, OrderState::PendingNew | OrderState::Unknown) {
                        o.working = open;
                    }
                    if matches!(o.state, OrderState::PendingNew | OrderState::Unknown) {
                        o.state = open;
                        o.query_at_ms = None;
                    }
                    self.report_accepted(j, now_ms, &mut emit);
                }
                let l = &mut self.lists[i];
                if matches!(l.state, ListState::PendingNew | ListState::Unknown) {
                    l.state = ListState::Executing;
                }
                let id = l.list_id;
                self.settle_list(id);
            }
            (ListRequest::Place, Some(f)) => {
                for &leg in l.legs() {
                    let Some(j) = self.index(leg) else { continue };
                    self.orders[j].answered = true;
                    self.place_failed(j, f, code, msg, now_ms, &mut emit);
                }
                let l = &mut self.lists[i];
                if l.state == ListState::PendingNew
                    && matches!(
                        f,
                        Failure::Unknown | Failure::Duplicate | Failure::PartialSuccess
                    )
                {
                    l.state = ListState::Unknown;
                }
                self.settle_list(id);
            }
            (ListRequest::Cancel, None | Some(Failure::Unknown)) => {
                // The orders' CANCELED reports close them; if they do not come, the queries
                // will say.
                if failure.is_some() {
                    self.stats.unknown += 1;
                }
                self.query_legs(i, now_ms + self.config.query_after_ms);
            }
            (ListRequest::Cancel, Some(f)) => {
                let reason = match f {
                    Failure::RateLimited => RejectReason::Overloaded,
                    Failure::Banned => RejectReason::Halted,
                    _ => reject_reason(code, msg),
                };
                if f == Failure::CancelUnknownOrder {
                    // The list may have finished: its orders will say.
                    self.query_legs(i, now_ms);
                }
                self.cancel_refused(i, reason, now_ms, &mut emit);
            }
        }
    }

    /// A refused `orderList.cancel`: the list is as it was, each open order is told so.
    fn cancel_refused(
        &mut self,
        i: usize,
        reason: RejectReason,
        now_ms: u64,
        emit: &mut impl FnMut(ExecReport),
    ) {
        let l = &mut self.lists[i];
        if l.state != ListState::PendingCancel {
            return;
        }
        l.state = l.working;
        let l = *l;
        for &leg in l.legs() {
            let Some(j) = self.index(leg) else { continue };
            let o = self.orders[j];
            if o.state.is_final() {
                continue;
            }
            emit(self.report(
                &o,
                OrderStatus::CancelRejected(reason),
                Px::ZERO,
                Qty::ZERO,
                false,
                now_ms,
            ));
        }
    }

    fn query_legs(&mut self, i: usize, at_ms: u64) {
        let l = self.lists[i];
        for &leg in l.legs() {
            if let Some(j) = self.index(leg)
                && !self.orders[j].state.is_final()
            {
                let q = &mut self.orders[j].query_at_ms;
                *q = Some(q.map_or(at_ms, |q| q.min(at_ms)));
            }
        }
    }

    /// The exchange's ids of the list and of its orders (matched by client id).
    fn learn_ids(&mut self, i: usize, order_list_id: u64, orders: &ListLegs<'_>) {
        self.lists[i].order_list_id = Some(order_list_id);
        for leg in &orders.0 {
            if let Ok(ClientIdKind::Ours(id)) = self.codec.decode(leg.client_id.as_bytes())
                && let Some(j) = self.index(id)
                && self.orders[j].list == Some(self.lists[i].list_id)
                && self.orders[j].order_id.is_none()
            {
                self.orders[j].order_id = Some(leg.order_id);
            }
        }
    }

    /// A `listStatus` event (or a list as `openOrderLists.status` gives it). `false` when the
    /// list is not this table's.
    pub fn on_list_status(
        &mut self,
        update: &ListUpdate<'_>,
        orders: &ListLegs<'_>,
        now_ms: u64,
        mut emit: impl FnMut(ExecReport),
    ) -> bool {
        // After `orderList.cancel` the list's client id may be the cancel's own
        // (`newClientOrderId` renames the list): its `orderListId` still names it.
        let by_client = match self.codec.decode(update.list_client_id.as_bytes()) {
            Ok(ClientIdKind::Ours(id)) => self.list_index(id),
            _ => None,
        };
        let Some(i) = by_client.or_else(|| {
            self.lists
                .iter()
                .position(|l| l.order_list_id == Some(update.order_list_id))
        }) else {
            self.stats.foreign += 1;
            return false;
        };
        self.learn_ids(i, update.order_list_id, orders);
        let l = &mut self.lists[i];
        l.status_type = Some(update.status_type);
        l.order_status = Some(update.order_status);
        if l.state.is_final() {
            return true;
        }
        match update.order_status {
            ListOrderStatus::AllDone => {
                l.state = ListState::AllDone;
                // Its orders' own reports close them; any that does not come is asked for.
                self.query_legs(i, now_ms);
            }
            ListOrderStatus::Executing => {
                if matches!(l.state, ListState::PendingNew | ListState::Unknown) {
                    l.state = ListState::Executing;
                }
                if l.state != ListState::PendingCancel {
                    l.working = l.state;
                }
            }
            ListOrderStatus::Reject => {
                if l.state == ListState::PendingCancel {
                    self.cancel_refused(i, RejectReason::Venue, now_ms, &mut emit);
                } else if matches!(l.state, ListState::PendingNew | ListState::Unknown)
                    && !self.any_leg_accepted(i)
                {
                    let l = self.lists[i];
                    for &leg in l.legs() {
                        let Some(j) = self.index(leg) else { continue };
                        let o = &mut self.orders[j];
                        if o.state.is_final() {
                            continue;
                        }
                        o.state = OrderState::Rejected(RejectReason::Venue);
                        o.query_at_ms = None;
                        let o = *o;
                        emit(self.report(
                            &o,
                            OrderStatus::Rejected(RejectReason::Venue),
                            Px::ZERO,
                            Qty::ZERO,
                            false,
                            update.transact_time,
                        ));
                    }
                    self.lists[i].state = ListState::Rejected(RejectReason::Venue);
                } else {
                    self.stats.contradictions += 1;
                }
            }
        }
        let id = self.lists[i].list_id;
        self.settle_list(id);
        true
    }

    /// A list as `openOrderLists.status` lists it after a reconnect: applied as a `listStatus`.
    /// `false` when it is not this table's.
    pub fn on_list_snapshot(
        &mut self,
        snap: &ListSnapshot<'_>,
        now_ms: u64,
        emit: impl FnMut(ExecReport),
    ) -> bool {
        match snap.typed() {
            Ok(update) => self.on_list_status(&update, &snap.orders, now_ms, emit),
            Err(_) => false,
        }
    }

    /// The answer to the last request for list `id` cannot come: the placement's outcome is
    /// unknown (its orders are queried), a cancel's is resolved by its orders' reports or
    /// queries.
    pub fn on_list_lost(&mut self, id: ClientOrderId, now_ms: u64) {
        let Some(i) = self.list_index(id) else { return };
        let l = &mut self.lists[i];
        if l.state.is_final() || l.answered {
            return;
        }
        l.answered = true;
        if l.state == ListState::PendingNew {
            l.state = ListState::Unknown;
        }
        let at = l
            .sent_ms
            .saturating_add(self.config.query_after_ms)
            .max(now_ms);
        let l = *l;
        for &leg in l.legs() {
            self.on_lost(leg, now_ms);
        }
        self.query_legs(i, at);
    }

    fn any_leg_accepted(&self, i: usize) -> bool {
        self.lists[i].legs().iter().any(|&leg| {
            self.get(leg).is_some_and(|o| {
                o.accepted_reported
                    || o.cum_qty.0 > 0
                    || !matches!(
                        o.state,
                        OrderState::PendingNew | OrderState::Unknown | OrderState::Rejected(_)
                    )
            })
        })
    }

    /// Brings list `id` in line with its orders: closed once every order is (rejected when
    /// none ever opened), executing once one was accepted.
    pub(super) fn settle_list(&mut self, id: ClientOrderId) {
        let Some(i) = self.list_index(id) else { return };
        if self.lists[i].state.is_final() {
            return;
        }
        let l = self.lists[i];
        let mut all_final = true;
        let mut rejected = None;
        let mut all_rejected = true;
        for &leg in l.legs() {
            match self.get(leg).map(|o| o.state) {
                Some(OrderState::Rejected(r)) => rejected = rejected.or(Some(r)),
                Some(s) if s.is_final() => all_rejected = false,
                // Forgotten (swept) orders were closed.
                None => all_rejected = false,
                Some(_) => {
                    all_final = false;
                    all_rejected = false;
                }
            }
        }
        let accepted = self.any_leg_accepted(i);
        let l = &mut self.lists[i];
        if all_final {
            // Rejected only if none of its orders ever opened or traded: a leg that did makes
            // the list one that ran, whatever a late refusal says.
            l.state = match rejected {
                Some(r) if all_rejected && !accepted => ListState::Rejected(r),
                _ => ListState::AllDone,
            };
        } else if accepted && matches!(l.state, ListState::PendingNew | ListState::Unknown) {
            l.state = ListState::Executing;
            l.working = ListState::Executing;
        }
    }
}
