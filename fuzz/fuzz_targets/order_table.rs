//! Fuzz target: the Binance order table (`pinion_gateway::binance::orders::OrderTable`) driven by
//! any sequence of what a session meets: orders, cancels, replaces and amendments sent; answers of every
//! class (ack, refusal, -1007, 5xx, 409, 429, 418, -2015, duplicate, unknown order); execution
//! reports with any type, status, cumulative quantity (over the order's too) and execution id
//! (repeats included); lost answers, disconnects, timeouts, reconciliation, status queries and
//! their answers, `myTrades` fills and `openOrders` snapshots, and order lists (OCO, OTOCO)
//! placed and cancelled with their answers, `listStatus` events and losses — every one parsed
//! from the text the exchange would send.
//!
//! After every step: no order's filled quantity is negative or above its quantity; what the
//! table reported as filled for an order sums to its filled quantity; an order's reported
//! cumulative quantity never goes down; a closed order is never reported open again; a list
//! whose orders are all closed is closed, a closed list stays closed, and a rejected list has
//! no order that opened.

#![no_main]

use std::collections::{HashMap, HashSet};

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use pinion_core::{InstrumentId, Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::contingent::{ContingentLeg, LegSpec, ListIntent, ListShape, Trigger};
use pinion_gateway::binance::orders::{
    ListRequest, ListState, OrderState, OrderTable, OrderTableConfig, RequestKind,
};
use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderSide, OrderStatus, OrderType,
    TimeInForce,
};

const QTY_DEC: u8 = 3;
const PX_DEC: u8 = 2;

fn qty_text(q: i64) -> String {
    Qty(q).display(QTY_DEC).to_string()
}

struct World {
    table: OrderTable,
    codec: ClientIdCodec,
    ids: Vec<ClientOrderId>,
    next_id: u64,
    now: u64,
    /// Per client id: fills reported, last cumulative reported, closed.
    seen: HashMap<ClientOrderId, (i64, i64, bool)>,
    /// Lists placed, and those seen closed.
    lists: Vec<ClientOrderId>,
    closed_lists: HashSet<ClientOrderId>,
}

impl World {
    fn text(&self, id: ClientOrderId) -> String {
        let mut t = [0u8; CLIENT_ID_LEN];
        self.codec.encode(id, &mut t);
        String::from_utf8_lossy(&t).into_owned()
    }

    fn pick(&self, u: &mut Unstructured<'_>) -> Option<ClientOrderId> {
        if self.ids.is_empty() {
            return None;
        }
        let i = u.choose_index(self.ids.len()).ok()?;
        Some(self.ids[i])
    }

    fn check(&mut self, reports: Vec<ExecReport>) {
        for r in reports {
            let e = self.seen.entry(r.client_id).or_insert((0, 0, false));
            let closed = matches!(
                r.status,
                OrderStatus::Filled
                    | OrderStatus::Canceled
                    | OrderStatus::Expired
                    | OrderStatus::Rejected(_)
            );
            let open = matches!(r.status, OrderStatus::New | OrderStatus::PartiallyFilled);
            assert!(
                !(e.2 && open),
                "{:?} reported open after it closed",
                r.client_id
            );
            assert!(r.last_qty.0 >= 0, "negative fill {r:?}");
            e.0 += r.last_qty.0;
            if r.last_qty.0 > 0 || open || closed {
                assert!(r.cum_qty.0 >= e.1, "cumulative went down: {r:?}");
                e.1 = e.1.max(r.cum_qty.0);
            }
            e.2 |= closed;
        }
        for l in self.table.lists() {
            let legs: Vec<_> = l
                .legs()
                .iter()
                .filter_map(|&id| self.table.get(id))
                .collect();
            if legs.iter().all(|o| o.state.is_final()) {
                assert!(l.state.is_final(), "every order closed, list open: {l:?}");
            }
            if matches!(l.state, ListState::Rejected(_)) {
                for o in &legs {
                    assert!(
                        matches!(o.state, OrderState::Rejected(_)) && o.cum_qty.0 == 0,
                        "rejected list with {o:?}"
                    );
                }
            }
            if self.closed_lists.contains(&l.list_id) {
                assert!(l.state.is_final(), "closed list reopened: {l:?}");
            }
            if l.state.is_final() {
                self.closed_lists.insert(l.list_id);
            }
        }
        for o in self.table.orders() {
            assert!(o.cum_qty.0 >= 0 && o.cum_qty <= o.qty, "{o:?}");
            assert!(o.leaves_qty().0 >= 0, "{o:?}");
            if let Some(&(fills, _, _)) = self.seen.get(&o.client_id) {
                assert_eq!(fills, o.cum_qty.0, "fills reported != filled: {o:?}");
            }
        }
    }

    fn respond(&mut self, kind: RequestKind, id: ClientOrderId, text: &str) {
        let mut out = Vec::new();
        if let Ok(Frame::Response(r)) = parse_frame(text) {
            self.table
                .on_response(kind, id, &r, self.now, |r| out.push(r));
        }
        self.check(out);
    }

    fn answer(&self, u: &mut Unstructured<'_>, id: ClientOrderId) -> String {
        let text = self.text(id);
        let order_id = u64::from(id.0 as u32);
        let (status, code, msg) = match u.int_in_range(0u8..=10).unwrap_or(0) {
            0 => {
                return format!(
                    r#"{{"id":1,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{order_id},"orderListId":-1,"clientOrderId":"{text}","transactTime":1}}}}"#
                );
            }
            1 => (
                400,
                -2010,
                "Account has insufficient balance for requested action.",
            ),
            2 => (400, -1013, "Filter failure: PRICE_FILTER"),
            3 => (
                400,
                -1007,
                "Timeout waiting for response from backend server.",
            ),
            4 => (503, -1000, "An unknown error occurred."),
            5 => (409, -2021, "Order cancel-replace partially failed."),
            6 => (429, -1015, "Too many new orders."),
            7 => (418, -1003, "Way too much request weight used."),
            8 => (
                400,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ),
            9 => (400, -2010, "Duplicate order sent."),
            _ => (400, -2011, "Unknown order sent."),
        };
        format!(r#"{{"id":1,"status":{status},"error":{{"code":{code},"msg":"{msg}"}}}}"#)
    }

    fn execution(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let Some(id) = self.pick(u) else {
            return Ok(());
        };
        let qty = self.table.get(id).map_or(1000, |o| o.qty.0);
        let (x, status) = [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
            ("CANCELED", "CANCELED"),
            ("EXPIRED", "EXPIRED"),
            ("REJECTED", "REJECTED"),
            ("REPLACED", "NEW"),
            ("TRADE_PREVENTION", "EXPIRED"),
        ][u.choose_index(8)?];
        let cum = i64::from(u.int_in_range(0u16..=2000)?) * qty / 1000;
        let last = i64::from(u.int_in_range(0u16..=1000)?) * qty / 1000;
        let exec_id = u.int_in_range(0u64..=40)?;
        let trade: i64 = if x == "TRADE" { exec_id as i64 } else { -1 };
        let order_id = u64::from(id.0 as u32);
        let (c, orig) = if u.arbitrary::<bool>()? {
            (self.text(id), String::new())
        } else {
            ("cancelReq123".to_owned(), self.text(id))
        };
        let text = format!(
            r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1,"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"{q}","p":"100.00","P":"0.00","F":"0.000","g":-1,"C":"{orig}","x":"{x}","X":"{status}","r":"NONE","i":{order_id},"l":"{l}","z":"{z}","L":"100.00","n":"0","N":null,"T":{exec_id},"t":{trade},"I":{exec_id},"w":true,"m":true,"M":true,"O":1,"Z":"0","Y":"0","Q":"0","V":"NONE"}}}}"#,
            q = qty_text(qty),
            l = qty_text(last),
            z = qty_text(cum),
        );
        let mut out = Vec::new();
        if let Ok(Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        }) = parse_frame(&text)
            && let Ok(rep) = raw.typed(PX_DEC, QTY_DEC)
        {
            self.table.on_execution(&rep, |r| out.push(r));
        }
        self.check(out);
        Ok(())
    }

    fn pick_list(&self, u: &mut Unstructured<'_>) -> Option<ClientOrderId> {
        if self.lists.is_empty() {
            return None;
        }
        let i = u.choose_index(self.lists.len()).ok()?;
        Some(self.lists[i])
    }

    /// A `listStatus` event (`event`) or a list answer of `list` with its orders.
    fn list_text(&self, list: ClientOrderId, l: &str, big_l: &str, event: bool) -> String {
        let legs = self
            .table
            .list(list)
            .map(|x| x.legs().to_vec())
            .unwrap_or_default();
        let orders: Vec<String> = legs
            .iter()
            .map(|&id| {
                if event {
                    format!(
                        r#"{{"s":"BTCUSDT","i":{},"c":"{}"}}"#,
                        id.0 as u32,
                        self.text(id)
                    )
                } else {
                    format!(
                        r#"{{"symbol":"BTCUSDT","orderId":{},"clientOrderId":"{}"}}"#,
                        id.0 as u32,
                        self.text(id)
                    )
                }
            })
            .collect();
        let c = if legs.len() == 2 { "OCO" } else { "OTO" };
        if event {
            format!(
                r#"{{"subscriptionId":0,"event":{{"e":"listStatus","E":1,"s":"BTCUSDT","g":{g},"c":"{c}","l":"{l}","L":"{big_l}","r":"NONE","C":"{}","T":1,"O":[{}]}}}}"#,
                self.text(list),
                orders.join(","),
                g = list.0 as u32
            )
        } else {
            format!(
                r#"{{"id":1,"status":200,"result":{{"orderListId":{g},"contingencyType":"{c}","listStatusType":"{l}","listOrderStatus":"{big_l}","listClientOrderId":"{}","transactionTime":1,"symbol":"BTCUSDT","orders":[{}]}}}}"#,
                self.text(list),
                orders.join(","),
                g = list.0 as u32
            )
        }
    }

    /// Places an OCO or an OTOCO with fresh ids.
    fn place_list(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let base = self.next_id;
        self.next_id += 4;
        let qty = Qty(i64::from(u.int_in_range(1u16..=1000)?));
        let leg = |k: u64, side, spec| ContingentLeg {
            client_id: ClientOrderId(base + k),
            side,
            qty,
            spec,
        };
        let take = leg(2, OrderSide::Sell, LegSpec::limit_maker(Px(11_000)));
        let stop = leg(
            3,
            OrderSide::Sell,
            LegSpec::stop_loss(Trigger::Trailing(u32::from(u.int_in_range(1u16..=2000)?))),
        );
        let shape = if u.arbitrary()? {
            ListShape::Oco {
                above: take,
                below: ContingentLeg {
                    client_id: ClientOrderId(base + 1),
                    ..stop
                },
            }
        } else {
            ListShape::Otoco {
                working: leg(
                    1,
                    OrderSide::Buy,
                    LegSpec::limit(Px(10_000), TimeInForce::Gtc),
                ),
                above: take,
                below: stop,
            }
        };
        let list = ListIntent {
            t0: 1,
            instrument: InstrumentId(0),
            list_id: ClientOrderId(base),
            shape,
        };
        if self.table.submit_list(&list, self.now).is_ok() {
            self.lists.push(list.list_id);
            for l in list.legs() {
                self.ids.push(l.client_id);
            }
        }
        Ok(())
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        self.now += u64::from(u.int_in_range(0u16..=5000)?);
        match u.int_in_range(0u8..=16)? {
            0 => {
                let id = ClientOrderId(self.next_id);
                self.next_id += 1;
                let side = if u.arbitrary()? {
                    OrderSide::Buy
                } else {
                    OrderSide::Sell
                };
                let qty = Qty(i64::from(u.int_in_range(1u16..=1000)?));
                let intent = OrderIntent::new_limit(
                    1,
                    id,
                    InstrumentId(0),
                    side,
                    Px(10_000),
                    qty,
                    OrderType::Limit,
                    TimeInForce::Gtc,
                    pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
                );
                if self.table.submit(&intent, self.now).is_ok() {
                    self.ids.push(id);
                }
            }
            1 | 2 => {
                let Some(target) = self.pick(u) else {
                    return Ok(());
                };
                let mut intent = OrderIntent::new_limit(
                    1,
                    ClientOrderId(self.next_id),
                    InstrumentId(0),
                    OrderSide::Buy,
                    Px(10_000),
                    Qty(100),
                    OrderType::Limit,
                    TimeInForce::Gtc,
                    pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
                );
                self.next_id += 1;
                intent.target = target;
                intent.action = match u.int_in_range(0u8..=2)? {
                    0 => OrderAction::Cancel,
                    1 => OrderAction::Replace,
                    _ => {
                        intent.client_id = target;
                        intent.qty = Qty(i64::from(u.int_in_range(0u16..=1000)?));
                        OrderAction::Amend
                    }
                };
                if self.table.submit(&intent, self.now).is_ok()
                    && intent.action == OrderAction::Replace
                {
                    self.ids.push(intent.client_id);
                }
            }
            3 => {
                if let Some(id) = self.pick(u) {
                    let text = self.answer(u, id);
                    self.respond(RequestKind::Place, id, &text);
                }
            }
            4 => {
                if let Some(id) = self.pick(u) {
                    let text = self.answer(u, id);
                    let kind = if u.arbitrary()? {
                        RequestKind::Cancel
                    } else {
                        RequestKind::Amend
                    };
                    self.respond(kind, id, &text);
                }
            }
            5 | 6 | 7 => self.execution(u)?,
            8 => {
                if let Some(id) = self.pick(u) {
                    self.table.on_lost(id, self.now);
                }
            }
            9 => self.table.on_disconnect(self.now),
            10 => {
                self.table.check_timeouts(self.now);
                self.table.reconcile_all(self.now, |_| false);
            }
            11 => {
                let mut due = Vec::new();
                self.table.due_queries(self.now, |id, _| due.push(id));
                for id in due {
                    let qty = self.table.get(id).map_or(0, |o| o.qty.0);
                    let cum = i64::from(u.int_in_range(0u16..=1000)?) * qty / 1000;
                    let status = ["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"]
                        [u.choose_index(5)?];
                    let text = if u.arbitrary()? {
                        format!(
                            r#"{{"id":3,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{},"orderListId":-1,"clientOrderId":"{}","price":"100.00","origQty":"{}","executedQty":"{}","cummulativeQuoteQty":"0","status":"{status}","timeInForce":"GTC","type":"LIMIT","side":"BUY"}}}}"#,
                            id.0 as u32,
                            self.text(id),
                            qty_text(qty),
                            qty_text(cum)
                        )
                    } else {
                        r#"{"id":3,"status":400,"error":{"code":-2013,"msg":"Order does not exist."}}"#
                            .to_owned()
                    };
                    self.respond(RequestKind::Status, id, &text);
                }
            }
            13 => self.place_list(u)?,
            14 => {
                if let Some(list) = self.pick_list(u) {
                    let text = match u.int_in_range(0u8..=3)? {
                        0 => self.list_text(list, "EXEC_STARTED", "EXECUTING", false),
                        1 => r#"{"id":1,"status":400,"error":{"code":-2010,"msg":"Order would immediately trigger."}}"#.to_owned(),
                        2 => r#"{"id":1,"status":400,"error":{"code":-1007,"msg":"Timeout waiting for response from backend server."}}"#.to_owned(),
                        _ => r#"{"id":1,"status":400,"error":{"code":-2011,"msg":"Unknown order list sent."}}"#.to_owned(),
                    };
                    let kind = if u.arbitrary()? {
                        ListRequest::Place
                    } else {
                        ListRequest::Cancel
                    };
                    let mut out = Vec::new();
                    if let Ok(Frame::Response(r)) = parse_frame(&text) {
                        self.table
                            .on_list_response(kind, list, &r, self.now, |r| out.push(r));
                    }
                    self.check(out);
                }
            }
            15 => {
                if let Some(list) = self.pick_list(u) {
                    let (l, big_l) = [
                        ("EXEC_STARTED", "EXECUTING"),
                        ("ALL_DONE", "ALL_DONE"),
                        ("RESPONSE", "REJECT"),
                        ("UPDATED", "EXECUTING"),
                    ][u.choose_index(4)?];
                    let text = self.list_text(list, l, big_l, true);
                    let mut out = Vec::new();
                    if let Ok(Frame::Event {
                        event: UserEvent::ListStatus(raw),
                        ..
                    }) = parse_frame(&text)
                        && let Ok(update) = raw.typed()
                    {
                        self.table
                            .on_list_status(&update, &raw.orders, self.now, |r| out.push(r));
                    }
                    self.check(out);
                }
            }
            16 => {
                if let Some(list) = self.pick_list(u) {
                    if u.arbitrary()? {
                        let _ = self.table.cancel_list(list, self.now);
                    } else {
                        self.table.on_list_lost(list, self.now);
                    }
                }
            }
            _ => {
                if let Some(id) = self.pick(u) {
                    let qty = Qty(i64::from(u.int_in_range(0u16..=600)?));
                    let mut out = Vec::new();
                    self.table.on_trade(
                        u64::from(id.0 as u32),
                        Px(10_000),
                        qty,
                        u.arbitrary()?,
                        self.now,
                        |r| out.push(r),
                    );
                    self.check(out);
                }
            }
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).expect("epoch"));
    let mut world = World {
        table: OrderTable::new(
            codec,
            InstrumentId(0),
            PX_DEC,
            QTY_DEC,
            OrderTableConfig {
                capacity: 32,
                answer_timeout_ms: 2_000,
                query_after_ms: 11_000,
            },
        ),
        codec,
        ids: Vec::new(),
        next_id: 1,
        now: 1_000_000,
        seen: HashMap::new(),
        lists: Vec::new(),
        closed_lists: HashSet::new(),
    };
    let mut u = Unstructured::new(data);
    while !u.is_empty() {
        if world.step(&mut u).is_err() {
            break;
        }
    }
});
