//! Order lists in the order table: an OCO leg's fill expiring its partner, an OTOCO's pending
//! bracket waiting for its entry, list cancels accepted and refused, rejections known and
//! unknown, and random interleavings of everything the exchange and the session can do, after
//! which the state must never contradict itself.

use pinion_core::{InstrumentId, Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::contingent::{ContingentLeg, LegSpec, ListIntent, ListShape, Trigger};
use pinion_gateway::binance::orders::{
    ListRequest, ListState, OrderState, OrderTable, OrderTableConfig,
};
use pinion_gateway::binance::wire::{Frame, ListStatusType, OrderSnapshot, UserEvent, parse_frame};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderSide, OrderStatus, RejectReason, TimeInForce,
};
use proptest::prelude::*;

const LIST: ClientOrderId = ClientOrderId(100);
const LEGS: [ClientOrderId; 3] = [ClientOrderId(101), ClientOrderId(102), ClientOrderId(103)];
const ORDER_LIST_ID: u64 = 629;

fn codec() -> ClientIdCodec {
    ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap())
}

fn id_text(id: ClientOrderId) -> String {
    let mut out = [0u8; CLIENT_ID_LEN];
    codec().encode(id, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn table() -> OrderTable {
    OrderTable::new(codec(), InstrumentId(0), 2, 3, OrderTableConfig::default())
}

fn leg(k: usize, side: OrderSide, spec: LegSpec) -> ContingentLeg {
    ContingentLeg {
        client_id: LEGS[k],
        side,
        qty: Qty(1_000),
        spec,
    }
}

/// A SELL OCO: take profit above (LIMIT_MAKER), stop below (STOP_LOSS_LIMIT).
fn oco() -> ListIntent {
    ListIntent {
        t0: 7,
        instrument: InstrumentId(0),
        list_id: LIST,
        shape: ListShape::Oco {
            above: leg(0, OrderSide::Sell, LegSpec::limit_maker(Px(11_000))),
            below: leg(
                1,
                OrderSide::Sell,
                LegSpec::stop_loss_limit(Trigger::Stop(Px(9_000)), Px(8_990), TimeInForce::Gtc),
            ),
        },
    }
}

/// A BUY entry at 100.00 and its SELL bracket: the take profit above (LIMIT_MAKER 110.00),
/// the stop below (STOP_LOSS from 90.00, then trailing by 1 %).
fn otoco() -> ListIntent {
    ListIntent {
        t0: 7,
        instrument: InstrumentId(0),
        list_id: LIST,
        shape: ListShape::Otoco {
            working: leg(
                0,
                OrderSide::Buy,
                LegSpec::limit(Px(10_000), TimeInForce::Gtc),
            ),
            above: leg(1, OrderSide::Sell, LegSpec::limit_maker(Px(11_000))),
            below: leg(
                2,
                OrderSide::Sell,
                LegSpec::stop_loss(Trigger::StopThenTrailing {
                    stop: Px(9_000),
                    delta: 100,
                }),
            ),
        },
    }
}

fn qty(q: i64) -> String {
    Qty(q).display(3).to_string()
}

/// An `executionReport` of leg `k`.
fn report(k: usize, x: &str, status: &str, last: i64, cum: i64, exec_id: u64) -> String {
    let c = id_text(LEGS[k]);
    let trade = if last > 0 { exec_id as i64 } else { -1 };
    format!(
        r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1,"s":"BTCUSDT","c":"{c}","S":"SELL","o":"LIMIT_MAKER","f":"GTC","q":"1.000","p":"110.00","P":"0.00","F":"0.000","g":{ORDER_LIST_ID},"C":"","x":"{x}","X":"{status}","r":"NONE","i":{i},"l":"{l}","z":"{z}","L":"110.00","n":"0","N":null,"T":{exec_id},"t":{trade},"I":{exec_id},"w":true,"m":true,"M":true,"O":1,"Z":"0","Y":"0","Q":"0","V":"NONE"}}}}"#,
        i = 900 + k,
        l = qty(last),
        z = qty(cum),
    )
}

fn legs_json(n: usize, event: bool) -> String {
    (0..n)
        .map(|k| {
            if event {
                format!(
                    r#"{{"s":"BTCUSDT","i":{},"c":"{}"}}"#,
                    900 + k,
                    id_text(LEGS[k])
                )
            } else {
                format!(
                    r#"{{"symbol":"BTCUSDT","orderId":{},"clientOrderId":"{}"}}"#,
                    900 + k,
                    id_text(LEGS[k])
                )
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A `listStatus` event.
fn list_status(n: usize, l: &str, big_l: &str) -> String {
    let c = if n == 2 { "OCO" } else { "OTO" };
    format!(
        r#"{{"subscriptionId":0,"event":{{"e":"listStatus","E":1,"s":"BTCUSDT","g":{ORDER_LIST_ID},"c":"{c}","l":"{l}","L":"{big_l}","r":"NONE","C":"{}","T":5,"O":[{}]}}}}"#,
        id_text(LIST),
        legs_json(n, true)
    )
}

/// The ACK answer to a list placement.
fn list_ack(n: usize) -> String {
    let c = if n == 2 { "OCO" } else { "OTO" };
    format!(
        r#"{{"id":1,"status":200,"result":{{"orderListId":{ORDER_LIST_ID},"contingencyType":"{c}","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"{}","transactionTime":5,"symbol":"BTCUSDT","orders":[{}]}}}}"#,
        id_text(LIST),
        legs_json(n, false)
    )
}

fn error(status: u16, code: i32, msg: &str) -> String {
    format!(r#"{{"id":1,"status":{status},"error":{{"code":{code},"msg":"{msg}"}}}}"#)
}

fn feed(t: &mut OrderTable, text: &str, out: &mut Vec<ExecReport>) {
    match parse_frame(text).unwrap() {
        Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        } => {
            let (p, q) = t.decimals();
            t.on_execution(&raw.typed(p, q).unwrap(), |r| out.push(r));
        }
        Frame::Event {
            event: UserEvent::ListStatus(raw),
            ..
        } => {
            assert!(t.on_list_status(&raw.typed().unwrap(), &raw.orders, 10, |r| out.push(r)));
        }
        other => panic!("{other:?}"),
    }
}

fn answer(t: &mut OrderTable, kind: ListRequest, text: &str, out: &mut Vec<ExecReport>) {
    match parse_frame(text).unwrap() {
        Frame::Response(r) => t.on_list_response(kind, LIST, &r, 10, |r| out.push(r)),
        other => panic!("{other:?}"),
    }
}

fn state(t: &OrderTable, k: usize) -> OrderState {
    t.get(LEGS[k]).unwrap().state
}

fn statuses(out: &[ExecReport], k: usize) -> Vec<OrderStatus> {
    out.iter()
        .filter(|r| r.client_id == LEGS[k])
        .map(|r| r.status)
        .collect()
}

#[test]
fn oco_leg_fill_expires_the_other_and_closes_the_list() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&oco(), 0).unwrap();
    assert_eq!(t.list(LIST).unwrap().state, ListState::PendingNew);
    answer(&mut t, ListRequest::Place, &list_ack(2), &mut out);
    let l = *t.list(LIST).unwrap();
    assert_eq!(l.state, ListState::Executing);
    assert_eq!(l.order_list_id, Some(ORDER_LIST_ID));
    assert_eq!(t.get(LEGS[1]).unwrap().order_id, Some(901));
    assert_eq!(
        (state(&t, 0), state(&t, 1)),
        (OrderState::New, OrderState::New)
    );
    feed(
        &mut t,
        &list_status(2, "EXEC_STARTED", "EXECUTING"),
        &mut out,
    );
    // The take profit fills; the exchange expires the stop and closes the list.
    feed(
        &mut t,
        &report(0, "TRADE", "FILLED", 1_000, 1_000, 11),
        &mut out,
    );
    assert_eq!(t.list(LIST).unwrap().state, ListState::Executing);
    feed(&mut t, &report(1, "EXPIRED", "EXPIRED", 0, 0, 12), &mut out);
    assert_eq!(t.list(LIST).unwrap().state, ListState::AllDone);
    feed(&mut t, &list_status(2, "ALL_DONE", "ALL_DONE"), &mut out);
    assert_eq!(
        (state(&t, 0), state(&t, 1)),
        (OrderState::Filled, OrderState::Expired)
    );
    assert_eq!(statuses(&out, 0), [OrderStatus::New, OrderStatus::Filled]);
    assert_eq!(statuses(&out, 1), [OrderStatus::New, OrderStatus::Expired]);
    let fill = out.iter().find(|r| r.is_fill()).unwrap();
    assert_eq!(
        (fill.last_qty, fill.last_px, fill.t0),
        (Qty(1_000), Px(11_000), 7)
    );
}

#[test]
fn oto_pending_bracket_waits_for_the_entry_then_works() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&otoco(), 0).unwrap();
    answer(&mut t, ListRequest::Place, &list_ack(3), &mut out);
    assert_eq!(
        (state(&t, 0), state(&t, 1), state(&t, 2)),
        (OrderState::New, OrderState::Waiting, OrderState::Waiting)
    );
    // The exchange reports the pending ones as PENDING_NEW: still waiting.
    feed(&mut t, &report(1, "NEW", "PENDING_NEW", 0, 0, 21), &mut out);
    feed(&mut t, &report(2, "NEW", "PENDING_NEW", 0, 0, 22), &mut out);
    assert_eq!(state(&t, 1), OrderState::Waiting);
    // A partial fill of the entry does not release the bracket.
    feed(
        &mut t,
        &report(0, "TRADE", "PARTIALLY_FILLED", 400, 400, 23),
        &mut out,
    );
    assert_eq!(state(&t, 2), OrderState::Waiting);
    feed(
        &mut t,
        &report(0, "TRADE", "FILLED", 600, 1_000, 24),
        &mut out,
    );
    feed(&mut t, &report(1, "NEW", "NEW", 0, 0, 25), &mut out);
    feed(&mut t, &report(2, "NEW", "NEW", 0, 0, 26), &mut out);
    assert_eq!(
        (state(&t, 0), state(&t, 1), state(&t, 2)),
        (OrderState::Filled, OrderState::New, OrderState::New)
    );
    assert_eq!(t.list(LIST).unwrap().state, ListState::Executing);
    // The stop triggers and fills; the take profit is expired by it.
    feed(
        &mut t,
        &report(2, "TRADE", "FILLED", 1_000, 1_000, 27),
        &mut out,
    );
    feed(&mut t, &list_status(3, "ALL_DONE", "ALL_DONE"), &mut out);
    assert_eq!(t.list(LIST).unwrap().state, ListState::AllDone);
    // The take profit's own report has not come: it is queried at once.
    let mut due = Vec::new();
    t.due_queries(10, |id, order_id| due.push((id, order_id)));
    assert_eq!(due, [(LEGS[1], Some(901))]);
    feed(&mut t, &report(1, "EXPIRED", "EXPIRED", 0, 0, 28), &mut out);
    assert_eq!(state(&t, 1), OrderState::Expired);
    // Each leg was accepted once, whatever the exchange repeated.
    for k in 0..3 {
        assert_eq!(
            statuses(&out, k)
                .iter()
                .filter(|s| **s == OrderStatus::New)
                .count(),
            1,
            "leg {k}"
        );
    }
}

#[test]
fn list_cancel_closes_every_order_and_a_refused_one_changes_nothing() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&otoco(), 0).unwrap();
    // Not before the placement is answered.
    assert_eq!(t.cancel_list(LIST, 1), Err(RejectReason::UnknownOrder));
    answer(&mut t, ListRequest::Place, &list_ack(3), &mut out);
    t.cancel_list(LIST, 2).unwrap();
    assert_eq!(t.list(LIST).unwrap().state, ListState::PendingCancel);
    // Refused: back to executing, each open order told.
    answer(
        &mut t,
        ListRequest::Cancel,
        &error(400, -2011, "Order list does not exist."),
        &mut out,
    );
    assert_eq!(t.list(LIST).unwrap().state, ListState::Executing);
    for k in 0..3 {
        assert_eq!(
            statuses(&out, k).last(),
            Some(&OrderStatus::CancelRejected(RejectReason::UnknownOrder))
        );
    }
    // Again, accepted: the answer does not close anything, the reports do.
    t.cancel_list(LIST, 3).unwrap();
    answer(&mut t, ListRequest::Cancel, &list_ack(3), &mut out);
    assert_eq!(t.list(LIST).unwrap().state, ListState::PendingCancel);
    // The list renamed by the cancel's own id is still known by its orderListId.
    let renamed = list_status(3, "EXEC_STARTED", "EXECUTING")
        .replace(&id_text(LIST), &id_text(ClientOrderId(999)));
    feed(&mut t, &renamed, &mut out);
    assert_eq!(
        t.list(LIST).unwrap().status_type,
        Some(ListStatusType::ExecStarted)
    );
    for (k, exec) in [(0, 31), (1, 32), (2, 33)] {
        feed(
            &mut t,
            &report(k, "CANCELED", "CANCELED", 0, 0, exec),
            &mut out,
        );
    }
    assert_eq!(t.list(LIST).unwrap().state, ListState::AllDone);
    for k in 0..3 {
        assert_eq!(statuses(&out, k).last(), Some(&OrderStatus::Canceled));
    }
    assert_eq!(t.cancel_list(LIST, 4), Err(RejectReason::UnknownOrder));
    // Swept once closed: list and orders.
    t.sweep_closed();
    assert!(t.list(LIST).is_none() && t.orders().is_empty());
}

#[test]
fn rejected_placements_known_and_unknown() {
    // Refused outright: every order and the list.
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&oco(), 0).unwrap();
    answer(
        &mut t,
        ListRequest::Place,
        &error(
            400,
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        &mut out,
    );
    assert!(matches!(
        t.list(LIST).unwrap().state,
        ListState::Rejected(_)
    ));
    assert!(matches!(state(&t, 0), OrderState::Rejected(_)));
    assert!(matches!(statuses(&out, 1)[..], [OrderStatus::Rejected(_)]));

    // Unknown (-1007): the orders are unknown and queried; the exchange then says REJECT.
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&oco(), 0).unwrap();
    answer(
        &mut t,
        ListRequest::Place,
        &error(
            408,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        ),
        &mut out,
    );
    assert_eq!(t.list(LIST).unwrap().state, ListState::Unknown);
    assert_eq!(state(&t, 0), OrderState::Unknown);
    assert!(out.is_empty(), "an unknown outcome is never a rejection");
    feed(&mut t, &list_status(2, "RESPONSE", "REJECT"), &mut out);
    assert_eq!(
        t.list(LIST).unwrap().state,
        ListState::Rejected(RejectReason::Venue)
    );
    assert_eq!(state(&t, 1), OrderState::Rejected(RejectReason::Venue));

    // A REJECT after an order was accepted is not a rejection of the list.
    let mut t = table();
    let mut out = Vec::new();
    t.submit_list(&oco(), 0).unwrap();
    t.on_list_lost(LIST, 3_000);
    assert_eq!(t.list(LIST).unwrap().state, ListState::Unknown);
    feed(&mut t, &report(0, "NEW", "NEW", 0, 0, 41), &mut out);
    assert_eq!(t.list(LIST).unwrap().state, ListState::Executing);
    feed(&mut t, &list_status(2, "RESPONSE", "REJECT"), &mut out);
    assert_eq!(t.list(LIST).unwrap().state, ListState::Executing);
    assert_eq!(state(&t, 0), OrderState::New);
    assert_eq!(t.stats().contradictions, 1);
}

#[test]
fn lists_are_refused_when_their_ids_are_taken_or_the_table_is_full() {
    let mut t = OrderTable::new(
        codec(),
        InstrumentId(0),
        2,
        3,
        OrderTableConfig {
            capacity: 4,
            ..OrderTableConfig::default()
        },
    );
    t.submit_list(&oco(), 0).unwrap();
    assert_eq!(t.submit_list(&oco(), 0), Err(RejectReason::DuplicateId));
    let mut other = otoco();
    other.list_id = ClientOrderId(200);
    other.shape = match other.shape {
        ListShape::Otoco {
            mut working,
            mut above,
            mut below,
        } => {
            working.client_id = ClientOrderId(201);
            above.client_id = ClientOrderId(202);
            below.client_id = ClientOrderId(203);
            ListShape::Otoco {
                working,
                above,
                below,
            }
        }
        s => s,
    };
    // 2 + 3 orders do not fit in 4.
    assert_eq!(t.submit_list(&other, 0), Err(RejectReason::Overloaded));
    assert!(t.list(ClientOrderId(200)).is_none());
    assert_eq!(t.orders().len(), 2);
}

/// One thing that can happen to an OTOCO.
#[derive(Debug, Clone)]
enum Step {
    Ack,
    Refused,
    UnknownAnswer,
    Lost,
    Disconnect,
    /// Leg, exec type/status, and a fill of that many lots (cumulative grows).
    Report(usize, u8, i64),
    ListStatus(u8),
    Cancel,
    CancelAnswer(bool),
    Query(usize, u8, i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Ack),
        Just(Step::Refused),
        Just(Step::UnknownAnswer),
        Just(Step::Lost),
        Just(Step::Disconnect),
        (0..3usize, 0..6u8, 0..600i64).prop_map(|(k, s, q)| Step::Report(k, s, q)),
        (0..4u8).prop_map(Step::ListStatus),
        Just(Step::Cancel),
        any::<bool>().prop_map(Step::CancelAnswer),
        (0..3usize, 0..6u8, 0..600i64).prop_map(|(k, s, q)| Step::Query(k, s, q)),
    ]
}

const STATUSES: [(&str, &str); 6] = [
    ("NEW", "PENDING_NEW"),
    ("NEW", "NEW"),
    ("TRADE", "PARTIALLY_FILLED"),
    ("TRADE", "FILLED"),
    ("CANCELED", "CANCELED"),
    ("EXPIRED", "EXPIRED"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_events_makes_a_list_contradict_itself(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut t = table();
        let mut out = Vec::new();
        t.submit_list(&otoco(), 0).unwrap();
        let mut cum = [0i64; 3];
        let mut exec = 1_000u64;
        let mut prev_list = ListState::PendingNew;
        let mut prev_legs = [OrderState::PendingNew; 3];
        let mut closed_reported = [false; 3];
        for s in steps {
            let s = &s;
            exec += 1;
            let reports_before = out.len();
            match *s {
                Step::Ack => answer(&mut t, ListRequest::Place, &list_ack(3), &mut out),
                Step::Refused => answer(
                    &mut t,
                    ListRequest::Place,
                    &error(400, -2010, "Order would immediately trigger."),
                    &mut out,
                ),
                Step::UnknownAnswer => answer(
                    &mut t,
                    ListRequest::Place,
                    &error(503, -1006, "An unexpected response was received from the message bus. Execution status unknown."),
                    &mut out,
                ),
                Step::Lost => t.on_list_lost(LIST, 5_000),
                Step::Disconnect => t.on_disconnect(5_000),
                Step::Report(k, st, lots) | Step::Query(k, st, lots) => {
                    let by_query = matches!(s, Step::Query(..));
                    let (x, status) = STATUSES[st as usize];
                    let (last, z) = if x == "TRADE" {
                        let z = if status == "FILLED" { 1_000 } else { (cum[k] + lots).min(999) };
                        (z - cum[k], z)
                    } else {
                        (0, cum[k])
                    };
                    if z < cum[k] || (x == "TRADE" && last <= 0) {
                        continue;
                    }
                    cum[k] = z;
                    if by_query {
                        // What `order.status` or `openOrders.status` would list.
                        let (text, executed) = (id_text(LEGS[k]), qty(z));
                        let snap = OrderSnapshot {
                            symbol: "BTCUSDT",
                            order_id: 900 + k as u64,
                            client_order_id: &text,
                            orig_client_order_id: None,
                            price: "110.00",
                            orig_qty: "1.000",
                            executed_qty: &executed,
                            cummulative_quote_qty: "0",
                            status,
                        };
                        t.on_snapshot(&snap, 7_000, |r| out.push(r));
                    } else {
                        feed(&mut t, &report(k, x, status, last, z, exec), &mut out);
                    }
                }
                Step::ListStatus(l) => {
                    let (a, b) = [
                        ("EXEC_STARTED", "EXECUTING"),
                        ("ALL_DONE", "ALL_DONE"),
                        ("RESPONSE", "REJECT"),
                        ("UPDATED", "EXECUTING"),
                    ][l as usize];
                    feed(&mut t, &list_status(3, a, b), &mut out);
                }
                Step::Cancel => {
                    let _ = t.cancel_list(LIST, 6_000);
                }
                Step::CancelAnswer(ok) => {
                    let text = if ok {
                        list_ack(3)
                    } else {
                        error(400, -2011, "Unknown order list sent.")
                    };
                    answer(&mut t, ListRequest::Cancel, &text, &mut out);
                }
            }
            let list = *t.list(LIST).unwrap();
            let legs: Vec<_> = (0..3).map(|k| *t.get(LEGS[k]).unwrap()).collect();
            // A closed list stays closed; a closed order stays as it closed.
            if prev_list.is_final() {
                prop_assert_eq!(list.state, prev_list);
            }
            for k in 0..3 {
                if prev_legs[k].is_final() {
                    prop_assert_eq!(legs[k].state, prev_legs[k], "leg {}", k);
                }
                prop_assert!(legs[k].cum_qty <= legs[k].qty);
                prop_assert!(legs[k].cum_qty.0 <= cum[k]);
                if legs[k].state == OrderState::Waiting {
                    prop_assert_eq!(legs[k].cum_qty, Qty::ZERO);
                }
            }
            // Every order closed: the list is closed.
            if legs.iter().all(|o| o.state.is_final()) {
                prop_assert!(list.state.is_final(), "{:?} with {:?}", list.state, legs);
            }
            // A rejected list: none of its orders opened.
            if matches!(list.state, ListState::Rejected(_)) {
                for o in &legs {
                    prop_assert!(matches!(o.state, OrderState::Rejected(_)), "{:?}", o);
                    prop_assert_eq!(o.cum_qty, Qty::ZERO);
                }
            }
            // Nothing is reported about an order after its final report; the fills
            // reported add up to what is known filled.
            for r in &out[reports_before..] {
                let k = LEGS.iter().position(|&l| l == r.client_id).unwrap();
                prop_assert!(!closed_reported[k], "report after close: {:?}", r);
                if r.status.is_final() {
                    closed_reported[k] = true;
                }
            }
            for k in 0..3 {
                let filled: i64 = out
                    .iter()
                    .filter(|r| r.client_id == LEGS[k])
                    .map(|r| r.last_qty.0)
                    .sum();
                prop_assert_eq!(filled, legs[k].cum_qty.0, "leg {}", k);
            }
            prev_list = list.state;
            for k in 0..3 {
                prev_legs[k] = legs[k].state;
            }
        }
    }
}
