//! Order lists: `orderList.place.oco`, `orderList.place.oto`, `orderList.place.otoco`,
//! `orderList.cancel`, `orderList.status` and `openOrderLists.status`.
//!
//! - **OCO**: two legs on one side and quantity, one `STOP_LOSS`/`STOP_LOSS_LIMIT` and one
//!   `LIMIT_MAKER`/`TAKE_PROFIT`/`TAKE_PROFIT_LIMIT`, the stop-loss leg below the market on a
//!   sell and above it on a buy (`-1165`/`-1166`/`-1196`..`-1199` otherwise, `-1158` for a type
//!   an OCO does not take, `-1168` for two limit legs, `-2010` "The relationship of the prices
//!   for the orders is not correct." when the last price is not between them). When one leg
//!   trades or triggers, the other expires (`EXPIRED`, `eR` `OCO_TRIGGER`) and the list is
//!   done. The legs share one lock: the larger of their needs.
//! - **OTO**: a working `LIMIT`/`LIMIT_MAKER` order and a pending order (`PENDING_NEW`, not on
//!   the book, nothing locked) placed when the working order is fully filled; **OTOCO**: the
//!   same with an OCO pair as the pending orders. A working order that ends unfilled expires
//!   the pending ones (`eR` `OTO_PHASE_ONE_EXPIRED`). The contingency type of both is `OTO`.
//!
//! Legs are numbered stop-loss leg first (an OTO's working order before its pending orders),
//! as the exchange's examples show. Placement emits one `executionReport` `NEW` per order
//! (`X` `PENDING_NEW` for the pending ones) and a `listStatus` `EXEC_STARTED`/`EXECUTING`; the
//! pending orders going on the exchange emit theirs and another `EXEC_STARTED`; the list ends
//! with `ALL_DONE`/`ALL_DONE` when nothing contingent is left in it (an OCO when one leg took
//! the other out, an OTO when its pending order is placed, everything ended). Cancelling the
//! list, or any order of it, cancels every open order of it (`CANCELED`), answered in the
//! list's shape.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::contingent::{self, is_contingent, waiting_need};
use super::{
    Account, Order, Params, Plan, Refusal, Side, cancel_one, fixed, mandatory, order_fields,
    order_of, plan, publish, refuse, report, sub, work,
};
use crate::live::{Dec, LiveShared, MarketState, now_ms};

/// One order list.
#[derive(Debug, Clone)]
pub(super) struct OrderList {
    pub(super) id: u64,
    pub(super) client_id: String,
    pub(super) symbol: String,
    /// `OCO` or `OTO`.
    pub(super) contingency: &'static str,
    /// Its orders' ids, in the order they were numbered.
    pub(super) orders: Vec<u64>,
    /// Whether the first order is a working order whose fill places the others.
    pub(super) working_first: bool,
    /// `ALL_DONE`.
    pub(super) done: bool,
    pub(super) created: u64,
}

impl OrderList {
    /// The OCO pair's order ids (none in a plain OTO).
    fn pair(&self) -> &[u64] {
        match (self.working_first, self.orders.len()) {
            (false, _) => &self.orders,
            (true, 3) => &self.orders[1..],
            _ => &[],
        }
    }
}

/// The three placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Oco,
    Oto,
    Otoco,
}

fn at_of(account: &Account, order_id: u64) -> Option<usize> {
    account.orders.iter().position(|o| o.order_id == order_id)
}

/// The parameters of one order of a list, renamed to `order.place`'s.
fn leg(p: &Params, names: &[(&str, &str)]) -> Params {
    let mut out = BTreeMap::new();
    for (from, to) in names {
        if let Some(v) = p.get(from) {
            out.insert((*to).to_owned(), v.to_owned());
        }
    }
    if let Some(s) = p.get("symbol") {
        out.insert("symbol".into(), s.to_owned());
    }
    Params(out)
}

/// The parameters of an OCO leg named `prefix…` (`above`, `pendingBelow`, …).
fn oco_leg(p: &Params, prefix: &str, side: &str, qty: &str) -> Params {
    let name = |s: &str| format!("{prefix}{s}");
    let names = [
        (name("Type"), "type"),
        (name("Price"), "price"),
        (name("StopPrice"), "stopPrice"),
        (name("TrailingDelta"), "trailingDelta"),
        (name("TimeInForce"), "timeInForce"),
        (name("ClientOrderId"), "newClientOrderId"),
        (side.to_owned(), "side"),
        (qty.to_owned(), "quantity"),
        (
            "selfTradePreventionMode".to_owned(),
            "selfTradePreventionMode",
        ),
    ];
    let names: Vec<(&str, &str)> = names.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    leg(p, &names)
}

fn working_leg(p: &Params) -> Params {
    leg(
        p,
        &[
            ("workingType", "type"),
            ("workingSide", "side"),
            ("workingPrice", "price"),
            ("workingQuantity", "quantity"),
            ("workingTimeInForce", "timeInForce"),
            ("workingClientOrderId", "newClientOrderId"),
            ("selfTradePreventionMode", "selfTradePreventionMode"),
        ],
    )
}

fn stop_loss(t: &str) -> bool {
    t.starts_with("STOP_LOSS")
}

/// Checks the types of an OCO pair and where they sit, before anything else.
fn check_types(
    side: Option<&str>,
    above: Option<&str>,
    below: Option<&str>,
) -> Result<(), Refusal> {
    let ok_type = |t: Option<&str>| {
        matches!(
            t,
            Some(
                "STOP_LOSS"
                    | "STOP_LOSS_LIMIT"
                    | "LIMIT_MAKER"
                    | "TAKE_PROFIT"
                    | "TAKE_PROFIT_LIMIT"
            )
        )
    };
    let (Some(above), Some(below)) = (above, below) else {
        return Err(refuse(-1158, "Order type not supported in OCO."));
    };
    if !ok_type(Some(above)) || !ok_type(Some(below)) {
        return Err(refuse(-1158, "Order type not supported in OCO."));
    }
    if above == "LIMIT_MAKER" && below == "LIMIT_MAKER" {
        return Err(refuse(-1168, "At least one OCO order must be contingent."));
    }
    if stop_loss(above) == stop_loss(below) {
        return Err(refuse(-1158, "Order type not supported in OCO."));
    }
    let side = match side {
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        _ => return Err(refuse(-1117, "Invalid side.")),
    };
    // The limit-side leg (limit maker or take profit) must be below on a buy, above on a sell.
    let limit_is_above = !stop_loss(above);
    let maker = if limit_is_above { above } else { below } == "LIMIT_MAKER";
    match (side, limit_is_above, maker) {
        (Side::Buy, true, true) => {
            return Err(refuse(-1165, "A limit order in a buy OCO must be below."));
        }
        (Side::Buy, true, false) => {
            return Err(refuse(
                -1198,
                "A take profit order in a buy OCO must be below.",
            ));
        }
        (Side::Sell, false, true) => {
            return Err(refuse(-1166, "A limit order in a sell OCO must be above."));
        }
        (Side::Sell, false, false) => {
            return Err(refuse(
                -1199,
                "A take profit order in a sell OCO must be above.",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Checks an OCO pair's prices (`above`, `below`, types already checked) as the exchange
/// does; returns them stop-loss leg first.
fn check_pair(
    above: (Plan, Params),
    below: (Plan, Params),
    last: Option<Dec>,
) -> Result<[(Plan, Params); 2], Refusal> {
    let side = above.0.side;
    let (limit_leg, stop_leg) = if stop_loss(above.0.ty) {
        (&below.0, &above.0)
    } else {
        (&above.0, &below.0)
    };
    let maker = limit_leg.ty == "LIMIT_MAKER";
    if !limit_leg.fills.is_empty() && maker {
        return Err(refuse(-2010, "Order would immediately match and take."));
    }
    // Prices: limit side < last < stop-loss stop on a buy, the reverse on a sell.
    let limit_ref = if maker {
        limit_leg.price
    } else {
        limit_leg.trigger.and_then(|t| t.stop)
    };
    let stop_ref = stop_leg.trigger.and_then(|t| t.stop);
    let below_above = |lo: Option<Dec>, hi: Option<Dec>| match (lo, hi) {
        (Some(lo), Some(hi)) => lo < hi,
        _ => true,
    };
    let ordered = match side {
        Side::Buy => {
            below_above(limit_ref, last)
                && below_above(last, stop_ref)
                && below_above(limit_ref, stop_ref)
        }
        Side::Sell => {
            below_above(stop_ref, last)
                && below_above(last, limit_ref)
                && below_above(stop_ref, limit_ref)
        }
    };
    if !ordered {
        return Err(refuse(
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ));
    }
    Ok(if stop_loss(above.0.ty) {
        [above, below]
    } else {
        [below, above]
    })
}

fn planned(shared: &LiveShared, p: Params) -> Result<(Plan, Params), Refusal> {
    Ok((plan(shared, &p)?, p))
}

/// `orderList.place.oco`, `.oto` and `.otoco`.
pub(super) fn place(shared: &LiveShared, p: &Params, kind: Kind) -> Result<Value, Refusal> {
    let last = {
        let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
        shared.ws_api.lock().last_price.get(&symbol).copied()
    };
    // Every order checked as `order.place` would, then as a list.
    let mut legs: Vec<(Plan, Params)> = Vec::new();
    let working = matches!(kind, Kind::Oto | Kind::Otoco);
    if working {
        if !matches!(p.get("workingType"), Some("LIMIT" | "LIMIT_MAKER")) {
            return Err(refuse(-1116, "Invalid orderType."));
        }
        let w = planned(shared, working_leg(p))?;
        if w.0.ty == "LIMIT_MAKER" && !w.0.fills.is_empty() {
            return Err(refuse(-2010, "Order would immediately match and take."));
        }
        legs.push(w);
    }
    match kind {
        Kind::Oco => {
            check_types(p.get("side"), p.get("aboveType"), p.get("belowType"))?;
            let above = planned(shared, oco_leg(p, "above", "side", "quantity"))?;
            let below = planned(shared, oco_leg(p, "below", "side", "quantity"))?;
            legs.extend(check_pair(above, below, last)?);
        }
        Kind::Otoco => {
            for name in ["pendingAboveType", "pendingBelowType"] {
                if p.get(name).is_none() {
                    return Err(mandatory(name));
                }
            }
            check_types(
                p.get("pendingSide"),
                p.get("pendingAboveType"),
                p.get("pendingBelowType"),
            )?;
            let above = planned(
                shared,
                oco_leg(p, "pendingAbove", "pendingSide", "pendingQuantity"),
            )?;
            let below = planned(
                shared,
                oco_leg(p, "pendingBelow", "pendingSide", "pendingQuantity"),
            )?;
            legs.extend(check_pair(above, below, last)?);
        }
        Kind::Oto => {
            let pending = leg(
                p,
                &[
                    ("pendingType", "type"),
                    ("pendingSide", "side"),
                    ("pendingPrice", "price"),
                    ("pendingStopPrice", "stopPrice"),
                    ("pendingTrailingDelta", "trailingDelta"),
                    ("pendingQuantity", "quantity"),
                    ("pendingTimeInForce", "timeInForce"),
                    ("pendingClientOrderId", "newClientOrderId"),
                    ("selfTradePreventionMode", "selfTradePreventionMode"),
                ],
            );
            legs.push(planned(shared, pending)?);
        }
    }
    let resp_type = match p.get("newOrderRespType") {
        None | Some("FULL") => "FULL",
        Some("RESULT") => "RESULT",
        Some("ACK") => "ACK",
        Some(_) => return Err(mandatory("newOrderRespType")),
    };
    let symbol = legs[0].0.symbol.clone();
    let now = now_ms();
    let market = shared.market();
    let mut account = shared.ws_api.lock();
    // Client ids: unique among open orders and open lists.
    let mut ids = Vec::new();
    for (next, (_, lp)) in (account.next_order_id..).zip(&legs) {
        let id = lp
            .get("newClientOrderId")
            .map_or_else(|| format!("sim{next}"), str::to_owned);
        if ids.contains(&id)
            || account
                .orders
                .iter()
                .any(|o| o.is_open() && o.symbol == symbol && o.client_id == id)
        {
            return Err(refuse(-2010, "Duplicate order sent."));
        }
        ids.push(id);
    }
    let list_id = account.next_list_id;
    let list_client = p
        .get("listClientOrderId")
        .map_or_else(|| format!("simlist{list_id}"), str::to_owned);
    if account
        .lists
        .iter()
        .any(|l| !l.done && l.client_id == list_client)
    {
        return Err(refuse(-2010, "Duplicate order sent."));
    }
    // Funds: an OTO pays for its working order now, its pending orders when they are placed;
    // an OCO locks the larger of its legs' needs once.
    let shapes: Vec<Order> = legs
        .iter()
        .zip(&ids)
        .map(|((pl, _), id)| order_of(pl, 0, id, now, Dec::default()))
        .collect();
    let (pay, need) = if working {
        let w = &legs[0].0;
        let taken = w
            .fills
            .iter()
            .fold(Dec::default(), |acc, (px, q)| match w.side {
                Side::Buy => super::add(acc, super::mul(*px, *q)),
                Side::Sell => super::add(acc, *q),
            });
        let rests = w.tif == "GTC" && !w.left.is_zero();
        let resting = match (rests, w.side) {
            (false, _) => Dec::default(),
            (true, Side::Buy) => super::mul(w.price.unwrap_or_default(), w.left),
            (true, Side::Sell) => w.left,
        };
        (
            contingent::pay_asset(&shapes[0]),
            super::add(taken, resting),
        )
    } else {
        let need = shapes.iter().map(needs).max().unwrap_or_default();
        (contingent::pay_asset(&shapes[0]), need)
    };
    let free = account.balances.get(&pay).map_or(Dec::default(), |b| b.0);
    if free < need {
        return Err(refuse(
            -2010,
            "Account has insufficient balance for requested action.",
        ));
    }
    account.next_list_id += 1;
    let step = super::lot_step(shared, &symbol);
    let mut order_ids = Vec::new();
    let mut events = Vec::new();
    let mut ats = Vec::new();
    for (i, ((pl, _), id)) in legs.iter().zip(&ids).enumerate() {
        let order_id = account.next_order_id;
        account.next_order_id += 1;
        let mut o = order_of(pl, order_id, id, now, step);
        o.list = Some(list_id);
        let pending = working && i > 0;
        if pending {
            o.status = "PENDING_NEW";
            o.working = None;
        } else if is_contingent(o.ty) {
            o.working = None;
        }
        if let Some(t) = o.trigger.as_mut()
            && !pending
            && t.delta.is_some()
            && t.stop.is_none()
            && last.is_some()
        {
            t.best = last;
            t.since = Some(now);
        }
        account.orders.push(o);
        ats.push(account.orders.len() - 1);
        order_ids.push(order_id);
    }
    account.lists.push(OrderList {
        id: list_id,
        client_id: list_client,
        symbol: symbol.clone(),
        contingency: if working { "OTO" } else { "OCO" },
        orders: order_ids,
        working_first: working,
        done: false,
        created: now,
    });
    let li = account.lists.len() - 1;
    for &at in &ats {
        let o = account.orders[at].clone();
        events.push(report(&mut account, &o, "NEW", None, now));
    }
    let mut fills = Vec::new();
    if working {
        let w = &legs[0].0;
        fills = work(&mut account, ats[0], &w.fills, w.left, now, &mut events).fills;
    } else {
        // The OCO's one lock, spread so the legs together hold the larger need: a limit maker
        // its own, the waiting leg the rest.
        let mut held = Dec::default();
        let mut by_kind = ats.clone();
        by_kind.sort_by_key(|&at| is_contingent(account.orders[at].ty));
        for &at in &by_kind {
            let lock = sub(needs(&account.orders[at]), held);
            contingent::take_lock(&mut account, at, lock);
            held = super::add(held, lock);
        }
        let (base, quote) = super::assets(&symbol);
        events.push(super::account_position(&account, &[&base, &quote], now));
    }
    let list = account.lists[li].clone();
    events.push(status_event(&account, &list, "EXEC_STARTED", now));
    let answer = list_json(&account, &list, now, |o| {
        let mut r = json!({"symbol": o.symbol, "orderId": o.order_id, "orderListId": list_id,
            "clientOrderId": o.client_id, "transactTime": now});
        if let (Value::Object(r), Value::Object(e)) = (&mut r, order_fields(o)) {
            r.extend(e);
        }
        if resp_type == "FULL" {
            let mine = if ats
                .first()
                .is_some_and(|&a| account.orders[a].order_id == o.order_id)
                && working
            {
                fills.clone()
            } else {
                Vec::new()
            };
            r["fills"] = Value::Array(mine);
        }
        Some(r)
    });
    settle(&mut account, &market, now, &mut events);
    publish(&mut account, events);
    let mut answer = answer;
    if resp_type == "ACK"
        && let Value::Object(m) = &mut answer
    {
        m.remove("orderReports");
    }
    Ok(answer)
}

/// What a leg of an OCO needs locked: a waiting order its waiting need, a resting limit
/// maker its price × quantity (a buy) or quantity (a sell).
fn needs(o: &Order) -> Dec {
    if is_contingent(o.ty) {
        waiting_need(o)
    } else {
        match o.side {
            Side::Buy => super::mul(o.price, o.remaining()),
            Side::Sell => o.remaining(),
        }
    }
}

/// A list in the exchange's shape; `report` gives each order's entry of `orderReports`
/// (`None` everywhere: no `orderReports`).
fn list_json(
    account: &Account,
    list: &OrderList,
    now: u64,
    report: impl Fn(&Order) -> Option<Value>,
) -> Value {
    let orders: Vec<&Order> = list
        .orders
        .iter()
        .filter_map(|id| at_of(account, *id).map(|at| &account.orders[at]))
        .collect();
    let status = if list.done { "ALL_DONE" } else { "EXECUTING" };
    let kind = if list.done {
        "ALL_DONE"
    } else {
        "EXEC_STARTED"
    };
    let mut v = json!({"orderListId": list.id, "contingencyType": list.contingency,
        "listStatusType": kind, "listOrderStatus": status, "listClientOrderId": list.client_id,
        "transactionTime": now, "symbol": list.symbol,
        "orders": orders.iter().map(|o| json!({"symbol": o.symbol, "orderId": o.order_id,
            "clientOrderId": o.client_id})).collect::<Vec<_>>()});
    let reports: Vec<Value> = orders.iter().filter_map(|o| report(o)).collect();
    if !reports.is_empty() {
        v["orderReports"] = Value::Array(reports);
    }
    v
}

/// The `listStatus` event of `list`, `l` its list status type.
fn status_event(account: &Account, list: &OrderList, l: &str, now: u64) -> Value {
    let orders: Vec<Value> = list
        .orders
        .iter()
        .filter_map(|id| at_of(account, *id))
        .map(|at| {
            let o = &account.orders[at];
            json!({"s": o.symbol, "i": o.order_id, "c": o.client_id})
        })
        .collect();
    json!({"e": "listStatus", "E": now, "s": list.symbol, "g": list.id,
        "c": list.contingency, "l": l, "L": if l == "ALL_DONE" { "ALL_DONE" } else { "EXECUTING" },
        "r": "NONE", "C": list.client_id, "T": now, "O": orders})
}

/// When order `at` triggers, the other leg of its OCO pair (placed or still pending) expires
/// (`eR` `OCO_TRIGGER`) before it works.
pub(super) fn expire_sibling(account: &mut Account, at: usize, now: u64, events: &mut Vec<Value>) {
    let Some(list_id) = account.orders[at].list else {
        return;
    };
    let me = account.orders[at].order_id;
    let Some(list) = account.lists.iter().find(|l| l.id == list_id).cloned() else {
        return;
    };
    let pair = list.pair();
    if !pair.contains(&me) {
        return;
    }
    for other in pair.iter().filter(|id| **id != me) {
        if let Some(b) = at_of(account, *other)
            && account.orders[b].is_open()
        {
            contingent::expire(account, b, "OCO_TRIGGER", now, events);
        }
    }
}

/// Whether an OCO leg has taken its pair's contingency: it traded, triggered or ended.
fn engaged(o: &Order) -> bool {
    o.status != "PENDING_NEW"
        && (!o.executed.is_zero() || o.trigger.is_some_and(|t| t.fired) || !o.is_open())
}

/// Runs the lists' rules after orders moved: a filled working order places its pending
/// orders, an unfilled one expires them; an OCO leg that traded, triggered or ended takes the
/// other out (and keeps only the lock it needs itself); a list with nothing contingent left
/// is `ALL_DONE`. Repeats until nothing changes (a pending stop may trigger at once).
pub(super) fn settle(
    account: &mut Account,
    market: &MarketState,
    now: u64,
    events: &mut Vec<Value>,
) {
    loop {
        let mut changed = false;
        for li in 0..account.lists.len() {
            if account.lists[li].done {
                continue;
            }
            let list = account.lists[li].clone();
            let ats: Vec<usize> = list
                .orders
                .iter()
                .filter_map(|id| at_of(account, *id))
                .collect();
            if ats.len() != list.orders.len() {
                continue;
            }
            let book = market
                .symbols
                .get(&list.symbol)
                .filter(|s| s.seeded)
                .map(|s| &s.book);
            if list.working_first {
                let pending: Vec<usize> = ats[1..]
                    .iter()
                    .copied()
                    .filter(|&a| account.orders[a].status == "PENDING_NEW")
                    .collect();
                let w = &account.orders[ats[0]];
                if !pending.is_empty() && w.status == "FILLED" {
                    // Orders for the book first (they lock their own need), then the waiting
                    // ones lock what the pair needs beyond that.
                    let mut pending = pending;
                    pending.sort_by_key(|&a| is_contingent(account.orders[a].ty));
                    let mut held = Dec::default();
                    for a in pending {
                        if account.orders[a].status != "PENDING_NEW" {
                            continue;
                        }
                        if is_contingent(account.orders[a].ty) {
                            let lock = sub(waiting_need(&account.orders[a]), held);
                            contingent::wait(account, a, lock, book, now, events);
                        } else {
                            contingent::start(account, a, book, now, events);
                        }
                        held = super::add(held, account.orders[a].lock);
                    }
                    events.push(status_event(account, &list, "EXEC_STARTED", now));
                    changed = true;
                } else if !pending.is_empty() && !w.is_open() {
                    for a in pending {
                        contingent::expire(account, a, "OTO_PHASE_ONE_EXPIRED", now, events);
                    }
                    changed = true;
                }
            }
            let pair: Vec<usize> = list
                .pair()
                .iter()
                .filter_map(|id| at_of(account, *id))
                .collect();
            if let [a, b] = pair[..] {
                for (x, y) in [(a, b), (b, a)] {
                    if engaged(&account.orders[x])
                        && account.orders[y].is_open()
                        && account.orders[y].status != "PENDING_NEW"
                    {
                        contingent::expire(account, y, "OCO_TRIGGER", now, events);
                        trim_lock(account, x, now, events);
                        changed = true;
                    }
                }
            }
            let open = ats.iter().filter(|&&a| account.orders[a].is_open()).count();
            let pending = ats
                .iter()
                .any(|&a| account.orders[a].status == "PENDING_NEW");
            let working_open = list.working_first && account.orders[ats[0]].is_open();
            if open <= 1 && !pending && !working_open {
                account.lists[li].done = true;
                let list = account.lists[li].clone();
                events.push(status_event(account, &list, "ALL_DONE", now));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// An OCO leg left alone keeps only the lock it needs itself (it may hold its pair's larger
/// need).
fn trim_lock(account: &mut Account, at: usize, now: u64, events: &mut Vec<Value>) {
    let o = &account.orders[at];
    if !o.is_open() {
        return;
    }
    let own = if o.working.is_some() {
        needs(o)
    } else {
        waiting_need(o)
    };
    let excess = sub(o.lock, own);
    if excess.is_zero() {
        return;
    }
    let asset = contingent::pay_asset(o);
    let symbol = o.symbol.clone();
    account.orders[at].lock = own;
    let b = account.balances.entry(asset).or_default();
    b.1 = sub(b.1, excess);
    b.0 = super::add(b.0, excess);
    let (base, quote) = super::assets(&symbol);
    events.push(super::account_position(account, &[&base, &quote], now));
}

/// Finds an open list of `symbol` by `orderListId` / `listClientOrderId` (`by_client`'s name).
fn find_list(account: &Account, p: &Params, client_param: &str) -> Result<Option<usize>, Refusal> {
    let by_id = p.u64("orderListId")?;
    let by_client = p.get(client_param);
    if by_id.is_none() && by_client.is_none() {
        return Err(refuse(
            -1102,
            format!(
                "Param '{client_param}' or 'orderListId' must be sent, but both were empty/null!"
            ),
        ));
    }
    Ok(account.lists.iter().rposition(|l| {
        by_id.is_none_or(|id| l.id == id) && by_client.is_none_or(|c| l.client_id == c)
    }))
}

/// Cancels every open order of list `li` (`CANCELED`) and ends it; the answer in the list's
/// shape.
pub(super) fn cancel_list(
    account: &mut Account,
    li: usize,
    now: u64,
    events: &mut Vec<Value>,
) -> Value {
    let list = account.lists[li].clone();
    let mut reports = BTreeMap::new();
    for id in &list.orders {
        let Some(at) = at_of(account, *id) else {
            continue;
        };
        if account.orders[at].is_open() {
            let cancel_id = super::cancel_id_for(account);
            let (result, mut evs) = cancel_one(account, at, &cancel_id, now);
            events.append(&mut evs);
            reports.insert(*id, result);
        }
    }
    account.lists[li].done = true;
    let list = account.lists[li].clone();
    events.push(status_event(account, &list, "ALL_DONE", now));
    list_json(account, &list, now, |o| {
        Some(reports.get(&o.order_id).cloned().unwrap_or_else(|| {
            let mut r = json!({"symbol": o.symbol, "orderId": o.order_id,
                "orderListId": list.id, "clientOrderId": o.client_id, "transactTime": now});
            if let (Value::Object(r), Value::Object(mut e)) = (&mut r, order_fields(o)) {
                e.remove("workingTime");
                r.extend(e);
            }
            r
        }))
    })
}

/// `orderList.cancel`.
pub(super) fn cancel(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let now = now_ms();
    let mut account = shared.ws_api.lock();
    let li = find_list(&account, p, "listClientOrderId")?
        .filter(|&li| !account.lists[li].done && account.lists[li].symbol == symbol)
        .ok_or_else(|| refuse(-2011, "Unknown order list sent."))?;
    let mut events = Vec::new();
    let answer = cancel_list(&mut account, li, now, &mut events);
    publish(&mut account, events);
    Ok(answer)
}

/// `orderList.status` (`origClientOrderId` is the list's client id).
pub(super) fn status(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let account = shared.ws_api.lock();
    let by_client = p.get("origClientOrderId");
    let li = match by_client {
        // Both sent: only `origClientOrderId` is used.
        Some(c) => account.lists.iter().rposition(|l| l.client_id == c),
        None => find_list(&account, p, "origClientOrderId")?,
    }
    .ok_or_else(|| refuse(-2013, "Order list does not exist."))?;
    let list = &account.lists[li];
    Ok(list_json(&account, list, list.created, |_| None))
}

/// `openOrderLists.status`.
pub(super) fn open_lists(shared: &LiveShared) -> Value {
    let account = shared.ws_api.lock();
    Value::Array(
        account
            .lists
            .iter()
            .filter(|l| !l.done)
            .map(|l| list_json(&account, l, l.created, |_| None))
            .collect(),
    )
}

/// The `stopPrice` of an order's answers: present for the contingent types.
pub(super) fn stop_text(o: &Order) -> Option<String> {
    is_contingent(o.ty).then(|| fixed(o.trigger.and_then(|t| t.stop).unwrap_or_default()))
}
