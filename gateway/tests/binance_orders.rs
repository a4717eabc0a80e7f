//! The order state machine against a reference model of the exchange, over random
//! interleavings of answers and execution reports.

use pinion_core::{InstrumentId, Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::orders::{OrderState, OrderTable, OrderTableConfig, RequestKind};
use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderSide, OrderStatus, OrderType,
    RejectReason, TimeInForce,
};
use proptest::prelude::*;

const QTY_DEC: u8 = 3;
const PX_DEC: u8 = 2;
const ORDER: ClientOrderId = ClientOrderId(1);
const CANCEL: ClientOrderId = ClientOrderId(2);
const ORDER_ID: u64 = 900;

fn codec() -> ClientIdCodec {
    ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap())
}

fn id_text(id: ClientOrderId) -> String {
    let mut out = [0u8; CLIENT_ID_LEN];
    codec().encode(id, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn table() -> OrderTable {
    OrderTable::new(
        codec(),
        InstrumentId(0),
        PX_DEC,
        QTY_DEC,
        OrderTableConfig::default(),
    )
}

fn intent(qty: i64) -> OrderIntent {
    OrderIntent::new_limit(
        5,
        ORDER,
        InstrumentId(0),
        OrderSide::Buy,
        Px(10_000),
        Qty(qty),
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    )
}

fn fmt_qty(q: i64) -> String {
    Qty(q).display(QTY_DEC).to_string()
}

/// An `executionReport` frame.
#[allow(clippy::too_many_arguments)]
fn report(
    c: &str,
    orig: &str,
    x: &str,
    status: &str,
    last: i64,
    cum: i64,
    qty: i64,
    exec_id: u64,
    trade: i64,
) -> String {
    format!(
        r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1,"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"{q}","p":"100.00","P":"0.00","F":"0.000","g":-1,"C":"{orig}","x":"{x}","X":"{status}","r":"NONE","i":{ORDER_ID},"l":"{l}","z":"{z}","L":"100.00","n":"0","N":null,"T":{exec_id},"t":{trade},"I":{exec_id},"w":true,"m":true,"M":true,"O":1,"Z":"0","Y":"0","Q":"0","V":"NONE"}}}}"#,
        q = fmt_qty(qty),
        l = fmt_qty(last),
        z = fmt_qty(cum),
    )
}

fn feed(t: &mut OrderTable, text: &str, out: &mut Vec<ExecReport>) {
    match parse_frame(text).unwrap() {
        Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        } => {
            let (p, q) = t.decimals();
            let rep = raw.typed(p, q).unwrap();
            t.on_execution(&rep, |r| out.push(r));
        }
        other => panic!("{other:?}"),
    }
}

fn respond(
    t: &mut OrderTable,
    kind: RequestKind,
    id: ClientOrderId,
    text: &str,
    now: u64,
    out: &mut Vec<ExecReport>,
) {
    match parse_frame(text).unwrap() {
        Frame::Response(r) => t.on_response(kind, id, &r, now, |r| out.push(r)),
        other => panic!("{other:?}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Rest,
    Cancel,
    Expire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ack,
    /// -1007: execution status unknown (the exchange did execute it).
    Timeout,
    /// No answer at all (lost with the connection).
    Lost,
}

#[derive(Debug, Clone)]
struct Scenario {
    qty: i64,
    fills: Vec<i64>,
    ending: Ending,
    answer: Answer,
    duplicate_stream: bool,
    /// User data stops after this many events; the rest is learned by `order.status`.
    stream_cut: Option<usize>,
    picks: Vec<u8>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1i64..=20,
        prop::collection::vec(1i64..=6, 0..6),
        prop_oneof![
            Just(Ending::Rest),
            Just(Ending::Cancel),
            Just(Ending::Expire)
        ],
        prop_oneof![Just(Answer::Ack), Just(Answer::Timeout), Just(Answer::Lost)],
        any::<bool>(),
        prop::option::of(0usize..8),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(
            |(qty, raw_fills, ending, answer, duplicate_stream, stream_cut, picks)| {
                let mut fills = Vec::new();
                let mut sum = 0;
                for f in raw_fills {
                    if sum + f > qty {
                        break;
                    }
                    sum += f;
                    fills.push(f);
                }
                Scenario {
                    qty,
                    fills,
                    ending,
                    answer,
                    duplicate_stream,
                    stream_cut,
                    picks,
                }
            },
        )
}

/// What the exchange did: its event stream and the final truth.
struct Truth {
    events: Vec<String>,
    cum: i64,
    state: OrderState,
    /// Whether the order was still open when the cancel reached the exchange.
    cancel_found_it_open: bool,
}

fn exchange(s: &Scenario) -> Truth {
    let (c, cancel) = (id_text(ORDER), id_text(CANCEL));
    let mut events = vec![report(&c, "", "NEW", "NEW", 0, 0, s.qty, 1, -1)];
    let mut cum = 0;
    for (k, f) in s.fills.iter().enumerate() {
        cum += f;
        let status = if cum == s.qty {
            "FILLED"
        } else {
            "PARTIALLY_FILLED"
        };
        let id = 2 + k as u64;
        events.push(report(
            &c, "", "TRADE", status, *f, cum, s.qty, id, id as i64,
        ));
    }
    let next = 2 + s.fills.len() as u64;
    let filled = cum == s.qty;
    let state = match (filled, s.ending) {
        (true, _) => OrderState::Filled,
        (false, Ending::Rest) => {
            if cum > 0 {
                OrderState::PartiallyFilled
            } else {
                OrderState::New
            }
        }
        (false, Ending::Cancel) => {
            events.push(report(
                &cancel, &c, "CANCELED", "CANCELED", 0, cum, s.qty, next, -1,
            ));
            OrderState::Canceled
        }
        (false, Ending::Expire) => {
            events.push(report(
                &c, "", "EXPIRED", "EXPIRED", 0, cum, s.qty, next, -1,
            ));
            OrderState::Expired
        }
    };
    Truth {
        events,
        cum,
        state,
        cancel_found_it_open: !filled,
    }
}

enum Step {
    PlaceAnswer,
    CancelSubmit,
    CancelAnswer,
    Event(usize),
}

fn run(s: &Scenario) -> (OrderTable, Vec<ExecReport>, Truth) {
    let truth = exchange(s);
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(s.qty), 0).unwrap();

    let delivered = s
        .stream_cut
        .map_or(truth.events.len(), |n| n.min(truth.events.len()));
    let mut queues: Vec<Vec<Step>> = vec![(0..delivered).map(Step::Event).collect()];
    if s.duplicate_stream && s.stream_cut.is_none() {
        queues.push((0..delivered).map(Step::Event).collect());
    }
    if s.answer != Answer::Lost {
        queues.push(vec![Step::PlaceAnswer]);
    }
    if s.ending == Ending::Cancel {
        queues.push(vec![Step::CancelSubmit, Step::CancelAnswer]);
    }
    for q in &mut queues {
        q.reverse();
    }
    let mut picks = s.picks.iter().cycle();
    let mut cancel_sent = false;
    let mut now = 10;
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let qi = live[usize::from(*picks.next().unwrap()) % live.len()];
        now += 1;
        match queues[qi].pop().unwrap() {
            Step::Event(k) => feed(&mut t, &truth.events[k], &mut out),
            Step::PlaceAnswer => {
                let text = match s.answer {
                    Answer::Ack => format!(r#"{{"id":1,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{}","transactTime":1}}}}"#, id_text(ORDER)),
                    _ => r#"{"id":1,"status":400,"error":{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}}"#.to_owned(),
                };
                respond(&mut t, RequestKind::Place, ORDER, &text, now, &mut out);
            }
            Step::CancelSubmit => {
                let c = OrderIntent::cancel(
                    6,
                    CANCEL,
                    ORDER,
                    InstrumentId(0),
                    OrderSide::Buy,
                    pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
                );
                cancel_sent = t.submit(&c, now).is_ok();
            }
            Step::CancelAnswer => {
                if cancel_sent {
                    let text = if truth.cancel_found_it_open {
                        format!(
                            r#"{{"id":2,"status":200,"result":{{"symbol":"BTCUSDT","origClientOrderId":"{}","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{}","transactTime":1,"price":"100.00","origQty":"{}","executedQty":"{}","cummulativeQuoteQty":"0","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY"}}}}"#,
                            id_text(ORDER),
                            id_text(CANCEL),
                            fmt_qty(s.qty),
                            fmt_qty(truth.cum)
                        )
                    } else {
                        r#"{"id":2,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#.to_owned()
                    };
                    respond(&mut t, RequestKind::Cancel, ORDER, &text, now, &mut out);
                }
            }
        }
    }
    // Whatever is still unresolved is queried once its deadline passes; the exchange answers
    // with the truth.
    now += 60_000;
    t.check_timeouts(now);
    if s.stream_cut.is_some() {
        // The session saw user data stop: reconcile.
        t.reconcile_all(now, |_| false);
    }
    let mut due = Vec::new();
    t.due_queries(now, |id, order_id| due.push((id, order_id)));
    for (id, _) in due {
        let status = match truth.state {
            OrderState::Filled => "FILLED",
            OrderState::Canceled => "CANCELED",
            OrderState::Expired => "EXPIRED",
            OrderState::PartiallyFilled => "PARTIALLY_FILLED",
            _ => "NEW",
        };
        let text = format!(
            r#"{{"id":3,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{}","price":"100.00","origQty":"{}","executedQty":"{}","cummulativeQuoteQty":"0","status":"{status}","timeInForce":"GTC","type":"LIMIT","side":"BUY"}}}}"#,
            id_text(id),
            fmt_qty(s.qty),
            fmt_qty(truth.cum)
        );
        respond(&mut t, RequestKind::Status, id, &text, now, &mut out);
    }
    (t, out, truth)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn never_double_counts_never_negative_and_ends_where_the_exchange_did(s in scenario()) {
        let (t, out, truth) = run(&s);
        let o = *t.get(ORDER).unwrap();
        let mut cum = 0;
        let mut filled = 0;
        let mut finals = 0;
        for r in out.iter().filter(|r| r.client_id == ORDER) {
            prop_assert!(r.leaves_qty.0 >= 0, "{r:?}");
            prop_assert!(r.cum_qty.0 >= cum, "cum went back: {r:?}");
            prop_assert!(r.cum_qty.0 <= s.qty);
            prop_assert!(!matches!(r.status, OrderStatus::Rejected(_)), "an executed order reported rejected: {r:?}");
            cum = r.cum_qty.0;
            filled += r.last_qty.0;
            if r.status.is_final() {
                finals += 1;
            }
        }
        prop_assert_eq!(filled, truth.cum, "fills reported");
        prop_assert_eq!(o.cum_qty.0, truth.cum);
        prop_assert!(o.leaves_qty().0 >= 0);
        prop_assert_eq!(finals, usize::from(truth.state.is_final()), "final reports: {:?}", out);
        let state = match o.state {
            OrderState::PendingCancel => o.state,
            s => s,
        };
        if truth.state.is_final() {
            prop_assert_eq!(state, truth.state);
        } else {
            // Open at the exchange: open here too (a refused cancel put it back).
            prop_assert!(matches!(o.state, OrderState::New | OrderState::PartiallyFilled), "{:?}", o.state);
            prop_assert_eq!(o.state, truth.state);
        }
    }
}

#[test]
fn an_unknown_outcome_is_never_a_rejection_and_a_query_resolves_it() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(5), 0).unwrap();
    respond(
        &mut t,
        RequestKind::Place,
        ORDER,
        r#"{"id":1,"status":400,"error":{"code":-1006,"msg":"An unexpected response was received from the message bus. Execution status unknown."}}"#,
        1,
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Unknown);
    assert!(out.is_empty());
    let mut due = Vec::new();
    t.due_queries(2, |id, oid| due.push((id, oid)));
    assert!(due.is_empty(), "not before the deadline");
    t.due_queries(20_000, |id, oid| due.push((id, oid)));
    assert_eq!(due, vec![(ORDER, None)]);
    // The exchange never placed it.
    respond(
        &mut t,
        RequestKind::Status,
        ORDER,
        r#"{"id":3,"status":400,"error":{"code":-2013,"msg":"Order does not exist."}}"#,
        20_001,
        &mut out,
    );
    assert_eq!(
        t.get(ORDER).unwrap().state,
        OrderState::Rejected(RejectReason::UnknownOrder)
    );
    assert_eq!(out.len(), 1);

    // A 5xx and a timeout after the bytes left are unknown too; a resend proving the order
    // exists ("Duplicate order sent.") keeps it unknown until user data or a query.
    let mut t = table();
    t.submit(&intent(5), 0).unwrap();
    respond(
        &mut t,
        RequestKind::Place,
        ORDER,
        r#"{"id":1,"status":503,"error":{"code":-1000,"msg":"x"}}"#,
        1,
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Unknown);
    respond(
        &mut t,
        RequestKind::Place,
        ORDER,
        r#"{"id":1,"status":400,"error":{"code":-2010,"msg":"Duplicate order sent."}}"#,
        2,
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Unknown);
    let mut t = table();
    t.submit(&intent(5), 0).unwrap();
    t.check_timeouts(1_999);
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::PendingNew);
    t.check_timeouts(2_000);
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Unknown);
    let mut t = table();
    t.submit(&intent(5), 0).unwrap();
    t.on_disconnect(3);
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Unknown);
    assert_eq!(t.stats().unknown, 1);
}

#[test]
fn definite_refusals_are_rejections_with_the_reason() {
    for (text, reason) in [
        (
            r#"{"id":1,"status":400,"error":{"code":-2010,"msg":"Order would immediately match and take."}}"#,
            RejectReason::WouldTakeLiquidity,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1013,"msg":"Filter failure: LOT_SIZE"}}"#,
            RejectReason::InvalidQty,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1013,"msg":"Filter failure: PRICE_FILTER"}}"#,
            RejectReason::InvalidPrice,
        ),
        (
            r#"{"id":1,"status":429,"error":{"code":-1015,"msg":"Too many new orders; current limit is 50 orders per 10 SECOND."}}"#,
            RejectReason::Overloaded,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}}"#,
            RejectReason::Venue,
        ),
        (
            r#"{"id":1,"status":400,"error":{"code":-2010,"msg":"Account has insufficient balance for requested action."}}"#,
            RejectReason::Venue,
        ),
    ] {
        let mut t = table();
        let mut out = Vec::new();
        t.submit(&intent(5), 0).unwrap();
        respond(&mut t, RequestKind::Place, ORDER, text, 1, &mut out);
        assert_eq!(
            t.get(ORDER).unwrap().state,
            OrderState::Rejected(reason),
            "{text}"
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, OrderStatus::Rejected(reason));
    }
}

#[test]
fn a_fill_before_the_ack_and_a_cancel_racing_a_fill() {
    let (c, cancel) = (id_text(ORDER), id_text(CANCEL));
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    // The fill comes first; the late NEW and ACK add nothing.
    feed(
        &mut t,
        &report(&c, "", "TRADE", "PARTIALLY_FILLED", 4, 4, 10, 2, 2),
        &mut out,
    );
    feed(
        &mut t,
        &report(&c, "", "NEW", "NEW", 0, 0, 10, 1, -1),
        &mut out,
    );
    respond(
        &mut t,
        RequestKind::Place,
        ORDER,
        &format!(
            r#"{{"id":1,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{c}","transactTime":1}}}}"#
        ),
        3,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].status, out[0].last_qty, out[0].leaves_qty),
        (OrderStatus::PartiallyFilled, Qty(4), Qty(6))
    );
    assert_eq!(t.get(ORDER).unwrap().order_id, Some(ORDER_ID));
    // Cancel sent; the exchange fills 6 more before it arrives: "Unknown order sent.".
    t.submit(
        &OrderIntent::cancel(
            6,
            CANCEL,
            ORDER,
            InstrumentId(0),
            OrderSide::Buy,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        ),
        4,
    )
    .unwrap();
    respond(
        &mut t,
        RequestKind::Cancel,
        ORDER,
        r#"{"id":2,"status":400,"error":{"code":-2011,"msg":"Unknown order sent."}}"#,
        5,
        &mut out,
    );
    assert_eq!(
        out.last().unwrap().status,
        OrderStatus::CancelRejected(RejectReason::UnknownOrder)
    );
    assert_eq!(
        t.get(ORDER).unwrap().state,
        OrderState::PartiallyFilled,
        "not closed by the refusal"
    );
    feed(
        &mut t,
        &report(&c, "", "TRADE", "FILLED", 6, 10, 10, 3, 3),
        &mut out,
    );
    // The same event again (a second subscription) and a stale one: nothing more.
    feed(
        &mut t,
        &report(&c, "", "TRADE", "FILLED", 6, 10, 10, 3, 3),
        &mut out,
    );
    feed(
        &mut t,
        &report(&c, "", "TRADE", "PARTIALLY_FILLED", 4, 4, 10, 2, 2),
        &mut out,
    );
    let fills: i64 = out.iter().map(|r| r.last_qty.0).sum();
    assert_eq!(fills, 10);
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Filled);
    assert_eq!(t.stats().duplicate_executions, 2);
    // A cancel by its own id (`c`) with the order in `C` closes the right order.
    let mut t = table();
    t.submit(&intent(10), 0).unwrap();
    t.submit(
        &OrderIntent::cancel(
            6,
            CANCEL,
            ORDER,
            InstrumentId(0),
            OrderSide::Buy,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        ),
        1,
    )
    .unwrap();
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::PendingCancel);
    feed(
        &mut t,
        &report(&cancel, &c, "CANCELED", "CANCELED", 0, 0, 10, 9, -1),
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Canceled);
    // Foreign ids are counted, not applied.
    feed(
        &mut t,
        &report("web_abc", "", "NEW", "NEW", 0, 0, 10, 10, -1),
        &mut out,
    );
    assert_eq!(t.stats().foreign, 1);
}

#[test]
fn cancel_replace_legs() {
    const NEW: ClientOrderId = ClientOrderId(3);
    let replace = OrderIntent {
        client_id: NEW,
        target: ORDER,
        action: pinion_strategy::OrderAction::Replace,
        ..intent(8)
    };
    let c = id_text(ORDER);
    // 409: the cancel went through, the new order did not.
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    feed(
        &mut t,
        &report(&c, "", "NEW", "NEW", 0, 0, 10, 1, -1),
        &mut out,
    );
    t.submit(&replace, 1).unwrap();
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::PendingReplace);
    assert_eq!(t.get(NEW).unwrap().state, OrderState::PendingNew);
    respond(
        &mut t,
        RequestKind::CancelReplace { new: NEW },
        ORDER,
        r#"{"id":4,"status":409,"error":{"code":-2021,"msg":"Order cancel-replace partially failed.","data":{"cancelResult":"SUCCESS","newOrderResult":"FAILURE"}}}"#,
        2,
        &mut out,
    );
    assert_eq!(
        t.get(NEW).unwrap().state,
        OrderState::Rejected(RejectReason::Venue)
    );
    assert_eq!(
        t.get(ORDER).unwrap().state,
        OrderState::PendingReplace,
        "closed by user data"
    );
    let cancel_id = id_text(ClientOrderId(77));
    feed(
        &mut t,
        &report(&cancel_id, &c, "CANCELED", "CANCELED", 0, 0, 10, 2, -1),
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::Canceled);
    // 400 -2022: neither leg: the old order is back to working, the new one refused.
    let mut t = table();
    t.submit(&intent(10), 0).unwrap();
    feed(
        &mut t,
        &report(&c, "", "NEW", "NEW", 0, 0, 10, 1, -1),
        &mut out,
    );
    t.submit(&replace, 1).unwrap();
    out.clear();
    respond(
        &mut t,
        RequestKind::CancelReplace { new: NEW },
        ORDER,
        r#"{"id":4,"status":400,"error":{"code":-2022,"msg":"Order cancel-replace failed.","data":{"cancelResult":"FAILURE","newOrderResult":"NOT_ATTEMPTED"}}}"#,
        2,
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::New);
    assert!(matches!(t.get(NEW).unwrap().state, OrderState::Rejected(_)));
    assert_eq!(out.len(), 2);
    assert!(matches!(out[0].status, OrderStatus::CancelRejected(_)));
    // Another replace of the working order goes; one of an unknown order is refused unsent.
    assert_eq!(
        t.submit(
            &OrderIntent {
                client_id: ClientOrderId(5),
                ..replace
            },
            3
        ),
        Ok(())
    );
    assert_eq!(
        t.submit(
            &OrderIntent {
                client_id: ClientOrderId(6),
                target: ClientOrderId(99),
                ..replace
            },
            3
        ),
        Err(RejectReason::UnknownOrder)
    );
}

fn amend(qty: i64) -> OrderIntent {
    let mut a = intent(qty);
    a.action = OrderAction::Amend;
    a
}

const ACK: &str = r#"{"id":1,"status":200,"result":{"symbol":"BTCUSDT","orderId":900,"orderListId":-1,"clientOrderId":"x","transactTime":1}}"#;

#[test]
fn an_amendment_lowers_the_quantity_and_keeps_the_order() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    respond(&mut t, RequestKind::Place, ORDER, ACK, 1, &mut out);
    out.clear();
    // Only down, and not below what is filled; only while the order is open.
    assert_eq!(t.submit(&amend(10), 2), Err(RejectReason::InvalidQty));
    assert_eq!(t.submit(&amend(0), 2), Err(RejectReason::InvalidQty));
    t.submit(&amend(6), 2).unwrap();
    assert_eq!(t.get(ORDER).unwrap().state, OrderState::PendingReplace);
    assert_eq!(
        t.submit(&amend(5), 2),
        Err(RejectReason::UnknownOrder),
        "one at a time"
    );
    respond(
        &mut t,
        RequestKind::Amend,
        ORDER,
        r#"{"id":2,"status":200,"result":{"transactTime":3}}"#,
        3,
        &mut out,
    );
    let o = t.get(ORDER).unwrap();
    assert_eq!(
        (o.state, o.qty, o.leaves_qty()),
        (OrderState::New, Qty(6), Qty(6))
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].status, out[0].leaves_qty),
        (OrderStatus::New, Qty(6))
    );
    // A refusal leaves it as it was, and says so.
    out.clear();
    t.submit(&amend(3), 4).unwrap();
    respond(
        &mut t,
        RequestKind::Amend,
        ORDER,
        r#"{"id":3,"status":400,"error":{"code":-2038,"msg":"Order amend (quantity increase) rejected."}}"#,
        5,
        &mut out,
    );
    let o = t.get(ORDER).unwrap();
    assert_eq!((o.state, o.qty), (OrderState::New, Qty(6)));
    assert!(matches!(out[0].status, OrderStatus::CancelRejected(_)));
}

#[test]
fn an_amendment_of_unknown_outcome_is_settled_by_the_order_as_listed() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    respond(&mut t, RequestKind::Place, ORDER, ACK, 1, &mut out);
    t.submit(&amend(4), 2).unwrap();
    respond(
        &mut t,
        RequestKind::Amend,
        ORDER,
        r#"{"id":2,"status":400,"error":{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}}"#,
        3,
        &mut out,
    );
    assert_eq!(t.get(ORDER).unwrap().qty, Qty(10), "not known yet");
    let listed = format!(
        r#"{{"id":3,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{}","price":"100.00","origQty":"0.004","executedQty":"0.000","cummulativeQuoteQty":"0","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY"}}}}"#,
        id_text(ORDER)
    );
    respond(
        &mut t,
        RequestKind::Status,
        ORDER,
        &listed,
        20_000,
        &mut out,
    );
    let o = t.get(ORDER).unwrap();
    assert_eq!(
        (o.qty, o.leaves_qty()),
        (Qty(4), Qty(4)),
        "the amendment took effect"
    );
}

/// An acceptance later than the query that found no such order: the order stays closed (the
/// strategy was told it was refused, and a closed order is never reopened), and the
/// contradiction is counted.
#[test]
fn an_acceptance_after_the_query_found_no_order_never_reopens_it() {
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    t.on_lost(ORDER, 1);
    let mut due = Vec::new();
    t.due_queries(20_000, |id, _| due.push(id));
    assert_eq!(due, vec![ORDER]);
    respond(
        &mut t,
        RequestKind::Status,
        ORDER,
        r#"{"id":3,"status":400,"error":{"code":-2013,"msg":"Order does not exist."}}"#,
        20_001,
        &mut out,
    );
    assert!(matches!(out[0].status, OrderStatus::Rejected(_)));
    out.clear();
    respond(&mut t, RequestKind::Place, ORDER, ACK, 20_002, &mut out);
    assert!(out.is_empty(), "reopened: {out:?}");
    assert_eq!(t.stats().contradictions, 1);
}

/// The `TRADE_PREVENTION` report of `report`'s order: self-trade prevention took `prevented`
/// (match 7, against order 901), `cum` executed before.
fn prevention(c: &str, cum: i64, qty: i64, prevented: i64, exec_id: u64) -> String {
    let base = report(
        c,
        "",
        "TRADE_PREVENTION",
        "EXPIRED_IN_MATCH",
        0,
        cum,
        qty,
        exec_id,
        -1,
    );
    let body = base.strip_suffix("}}").expect("an event frame");
    format!(
        r#"{body},"v":7,"A":"{a}","B":"{a}","u":-1,"U":901,"Cs":"BTCUSDT","pl":"{a}","pL":"100.00","pY":"0"}}}}"#,
        a = fmt_qty(prevented),
    )
}

#[test]
fn an_order_expired_in_match_ends_expired_with_what_it_filled() {
    let c = id_text(ORDER);
    // Through user data: 4 of 10 traded, then the exchange's self-trade prevention took the
    // other 6 (EXPIRE_TAKER).
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    feed(
        &mut t,
        &report(&c, "", "NEW", "NEW", 0, 0, 10, 1, -1),
        &mut out,
    );
    feed(
        &mut t,
        &report(&c, "", "TRADE", "PARTIALLY_FILLED", 4, 4, 10, 2, 2),
        &mut out,
    );
    feed(&mut t, &prevention(&c, 4, 10, 6, 3), &mut out);
    let o = t.get(ORDER).unwrap();
    assert_eq!((o.state, o.cum_qty), (OrderState::Expired, Qty(4)));
    let last = out.last().unwrap();
    assert_eq!(
        (last.status, last.last_qty, last.cum_qty, last.leaves_qty),
        (OrderStatus::Expired, Qty::ZERO, Qty(4), Qty::ZERO)
    );
    let fills: i64 = out.iter().map(|r| r.last_qty.0).sum();
    assert_eq!(fills, 4, "the prevented quantity is no fill");
    // The same report again, and a late fill report: the order stays as it ended.
    let before = out.len();
    feed(&mut t, &prevention(&c, 4, 10, 6, 3), &mut out);
    feed(
        &mut t,
        &report(&c, "", "TRADE", "PARTIALLY_FILLED", 1, 5, 10, 4, 4),
        &mut out,
    );
    assert_eq!(out.len(), before);
    assert_eq!(t.get(ORDER).unwrap().cum_qty, Qty(4));

    // Through an `order.status` answer (user data lost): the same end.
    let mut t = table();
    let mut out = Vec::new();
    t.submit(&intent(10), 0).unwrap();
    respond(
        &mut t,
        RequestKind::Status,
        ORDER,
        &format!(
            r#"{{"id":3,"status":200,"result":{{"symbol":"BTCUSDT","orderId":{ORDER_ID},"orderListId":-1,"clientOrderId":"{c}","price":"100.00","origQty":"0.010","executedQty":"0.004","origQuoteOrderQty":"0","cummulativeQuoteQty":"0.40","status":"EXPIRED_IN_MATCH","timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0","icebergQty":"0","time":1,"updateTime":2,"isWorking":true,"workingTime":1,"selfTradePreventionMode":"EXPIRE_TAKER","preventedMatchId":7,"preventedQuantity":"0.006"}}}}"#
        ),
        5,
        &mut out,
    );
    let o = t.get(ORDER).unwrap();
    assert_eq!((o.state, o.cum_qty), (OrderState::Expired, Qty(4)));
    assert_eq!(o.order_id, Some(ORDER_ID));
    let last = out.last().unwrap();
    assert_eq!(
        (last.status, last.cum_qty, last.leaves_qty),
        (OrderStatus::Expired, Qty(4), Qty::ZERO)
    );
}
