//! The WS API's order path in SBE: the three ways a frame becomes the value the session acts on,
//! per message, in the same run.
//!
//! - **json**: the JSON text frame → [`wire::parse_frame`] → the typed value (the report at the
//!   instrument's decimals, or the answer's failure class and order ack);
//! - **transcode**: the SBE frame → [`transcode`] into JSON text → the same reader → the same;
//! - **direct**: the SBE frame → [`sbe_direct::read`] → the same, with no text.
//!
//! The messages are the hot ones: `executionReport` NEW, TRADE (a fill) and CANCELED, and the
//! answers to `order.place` (ACK and RESULT) and `order.cancel`. Each SBE frame is written by
//! the simulator's encoder from the very JSON the json side reads, so all three read the same
//! content; a warm-up checks that the three give equal values.
//!
//! Each of `PINION_BENCH_ROUNDS` rounds (default 31) runs every way over a batch of the same
//! frame, the ways in a rotating order; the figures are the medians over rounds of ns per
//! message, and the medians of the rounds' own ratios (json/direct, transcode/direct), with
//! the allocations per message of each way. Needs an otherwise idle core for stable absolute
//! numbers (the host state is printed first); on a shared host, read the ratios.
//!
//! `cargo bench -p pinion-benches --bench sbe_order_path`.

use std::hint::black_box;
use std::time::Instant;

use pinion_benches::median;
use pinion_exchange_sim::wsapi::sbe;
use pinion_gateway::binance::sbe::{Transcoded, transcode};
use pinion_gateway::binance::sbe_direct::{self, Direct};
use pinion_gateway::binance::wire::{self, ExecutionReport, Failure, Frame, OrderAck, UserEvent};
use pinion_testkit::alloc::{CountingAlloc, thread_allocations};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// BTCUSDT's price and quantity decimals.
const PX_DEC: u8 = 2;
const QTY_DEC: u8 = 5;
/// Messages per way per round.
const BATCH: usize = 2_000;

const NEW: &str = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1780000000500,"s":"BTCUSDT","c":"x-PNN0000000000000001","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100000","p":"60000.00000000","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":12,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1780000000499,"t":-1,"I":40,"w":true,"m":false,"M":false,"O":1780000000499,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1780000000499,"V":"EXPIRE_MAKER"}}"#;
const TRADE: &str = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1780000000900,"s":"BTCUSDT","c":"x-PNN0000000000000001","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100000","p":"60000.00000000","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE","X":"PARTIALLY_FILLED","r":"NONE","i":12,"l":"0.00040000","z":"0.00040000","L":"60000.00000000","n":"0.00000040","N":"BTC","T":1780000000899,"t":5000001,"I":41,"w":false,"m":true,"M":true,"O":1780000000499,"Z":"24.00000000","Y":"24.00000000","Q":"0.00000000","W":1780000000499,"V":"EXPIRE_MAKER"}}"#;
const CANCELED: &str = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1780000001500,"s":"BTCUSDT","c":"x-PNN0000000000000002","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100000","p":"60000.00000000","P":"0.00000000","F":"0.00000000","g":-1,"C":"x-PNN0000000000000001","x":"CANCELED","X":"CANCELED","r":"NONE","i":12,"l":"0.00000000","z":"0.00040000","L":"0.00000000","n":"0","N":null,"T":1780000001499,"t":-1,"I":42,"w":false,"m":false,"M":false,"O":1780000000499,"Z":"24.00000000","Y":"0.00000000","Q":"0.00000000","V":"EXPIRE_MAKER"}}"#;
const ACK: &str = r#"{"id":7,"status":200,"result":{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"x-PNN0000000000000001","transactTime":1780000000499},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1},{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000,"count":1},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":3}]}"#;
const RESULT: &str = r#"{"id":8,"status":200,"result":{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"x-PNN0000000000000001","transactTime":1780000000499,"price":"60000.00000000","origQty":"0.00100000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"NEW","timeInForce":"GTC","type":"LIMIT","side":"BUY","workingTime":1780000000499,"selfTradePreventionMode":"EXPIRE_MAKER"},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":1},{"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":160000,"count":1},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":3}]}"#;
const CANCEL: &str = r#"{"id":9,"status":200,"result":{"symbol":"BTCUSDT","origClientOrderId":"x-PNN0000000000000001","orderId":12,"orderListId":-1,"clientOrderId":"x-PNN0000000000000002","transactTime":1780000001499,"price":"60000.00000000","origQty":"0.00100000","executedQty":"0.00040000","cummulativeQuoteQty":"24.00000000","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY","selfTradePreventionMode":"EXPIRE_MAKER"},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":4}]}"#;

/// What the session takes from a message: a report, or an answer's failure class and (for a
/// placement) its ack.
#[derive(Debug, PartialEq, Eq)]
enum Value<'a> {
    Report(Option<ExecutionReport<'a>>),
    Answer(Option<Failure>, u32, Option<OrderAck<'a>>),
}

fn from_text(text: &str, place: bool) -> Option<Value<'_>> {
    match wire::parse_frame(text).ok()? {
        Frame::Event {
            event: UserEvent::ExecutionReport(raw),
            ..
        } => Some(Value::Report(raw.typed(PX_DEC, QTY_DEC).ok())),
        Frame::Response(r) => Some(Value::Answer(
            r.failure(),
            r.rate_limits.0.iter().map(|l| l.count).sum(),
            if place { r.order_ack().ok() } else { None },
        )),
        Frame::Event { .. } => None,
    }
}

fn json(text: &str, place: bool) -> Option<Value<'_>> {
    from_text(text, place)
}

/// The transcoded text stays in `buf` (the session's kept buffer); the value is reduced to what
/// does not borrow it, for the timing loop.
fn via_transcode(frame: &[u8], buf: &mut Vec<u8>, place: bool) -> u64 {
    let Ok(Transcoded::Json) = transcode(frame, buf) else {
        return 0;
    };
    let Ok(text) = std::str::from_utf8(buf) else {
        return 0;
    };
    digest(from_text(text, place))
}

fn direct(frame: &[u8], place: bool) -> Option<Value<'_>> {
    match sbe_direct::read(frame) {
        Direct::Report(r) => Some(Value::Report(r.typed(PX_DEC, QTY_DEC).ok())),
        Direct::Answer(a) => Some(Value::Answer(
            a.failure(),
            a.rate_limits.0.iter().map(|l| l.count).sum(),
            if place { a.order_ack().ok() } else { None },
        )),
        Direct::Transcode => None,
    }
}

/// A number that depends on the whole value, so the optimiser keeps the work.
fn digest(v: Option<Value<'_>>) -> u64 {
    match v {
        Some(Value::Report(Some(r))) => {
            r.execution_id ^ r.cum_qty.0 as u64 ^ r.last_px.0 as u64 ^ r.client_id.len() as u64
        }
        Some(Value::Answer(f, n, ack)) => {
            u64::from(f.is_some()) ^ u64::from(n) ^ ack.map_or(0, |a| a.order_id)
        }
        _ => 0,
    }
}

struct Message {
    name: &'static str,
    json: &'static str,
    sbe: Vec<u8>,
    place: bool,
}

fn messages() -> Vec<Message> {
    let event = |name, json: &'static str| Message {
        name,
        json,
        sbe: sbe::event(json),
        place: false,
    };
    let answer = |name, json: &'static str, method, place| Message {
        name,
        json,
        sbe: sbe::response(json, method),
        place,
    };
    vec![
        event("executionReport NEW", NEW),
        event("executionReport TRADE", TRADE),
        event("executionReport CANCELED", CANCELED),
        answer("order.place ACK", ACK, "order.place", true),
        answer("order.place RESULT", RESULT, "order.place", true),
        answer("order.cancel", CANCEL, "order.cancel", false),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    let rounds: usize = if full {
        std::env::var("PINION_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(31)
    } else {
        3
    };
    let batch = if full { BATCH } else { 10 };
    println!("sbe_order_path: host: {}", pinion_benches::host_state());
    println!(
        "frame -> the value the session acts on, {rounds} rounds of {batch} per way, ways in rotating order"
    );
    println!(
        "{:<26} {:>9} {:>11} {:>9}   {:>13} {:>18}   allocs/msg json/transcode/direct",
        "message", "json ns", "transcode", "direct", "json/direct", "transcode/direct"
    );
    let mut buf = Vec::with_capacity(4096);
    for m in messages() {
        // The three ways give the same value.
        let want = json(m.json, m.place).expect("the JSON reads");
        assert!(
            matches!(&want, Value::Report(Some(_)) | Value::Answer(None, _, _)),
            "{}: {want:?}",
            m.name
        );
        assert_eq!(
            direct(&m.sbe, m.place).as_ref(),
            Some(&want),
            "{}: direct",
            m.name
        );
        assert_eq!(
            via_transcode(&m.sbe, &mut buf, m.place),
            digest(Some(want)),
            "{}: transcode",
            m.name
        );
        let mut ns = [Vec::new(), Vec::new(), Vec::new()];
        let mut allocs = [0u64; 3];
        let (mut json_over, mut transcode_over) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut per = [0f64; 3];
            for k in 0..3 {
                let way = (k + round) % 3;
                let a = thread_allocations();
                let start = Instant::now();
                let mut acc = 0u64;
                for _ in 0..batch {
                    acc ^= match way {
                        0 => digest(json(black_box(m.json), m.place)),
                        1 => via_transcode(black_box(&m.sbe), &mut buf, m.place),
                        _ => digest(direct(black_box(&m.sbe), m.place)),
                    };
                }
                per[way] = start.elapsed().as_nanos() as f64 / batch as f64;
                allocs[way] += thread_allocations() - a;
                black_box(acc);
            }
            json_over.push(per[0] / per[2]);
            transcode_over.push(per[1] / per[2]);
            for way in 0..3 {
                ns[way].push(per[way]);
            }
        }
        let n = (rounds * batch) as f64;
        let [a, b, c] = ns;
        println!(
            "{:<26} {:>9.0} {:>11.0} {:>9.0}   {:>12.1}x {:>17.1}x   {:.2} / {:.2} / {:.2}",
            m.name,
            median(a),
            median(b),
            median(c),
            median(json_over),
            median(transcode_over),
            allocs[0] as f64 / n,
            allocs[1] as f64 / n,
            allocs[2] as f64 / n,
        );
        assert_eq!(allocs[2], 0, "{}: the direct path allocated", m.name);
    }
    println!(
        "sbe_order_path: host after: {}",
        pinion_benches::host_state()
    );
}
