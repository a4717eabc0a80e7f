//! Order encoding benchmark: intent → request bytes for Binance's WS API, pinion's
//! pre-serialised templates against the common way, in the same run.
//!
//! Three signing modes, each measured against its own baseline:
//!
//! - **logged-on** (after `session.logon`): no per-order signature;
//! - **HMAC**: a per-request HMAC-SHA256 signature over the sorted params;
//! - **Ed25519**: a per-request Ed25519 signature (kept off the hot path in production; here to
//!   show what it costs).
//!
//! Both sides end with the masked WebSocket frame ready to hand to TLS: what is measured is
//! intent → the bytes the socket write takes (the write itself, TLS and the kernel are the same
//! for both and left out).
//!
//! pinion: encode the client id, patch the template's slots (request id, price, quantity,
//! client id, timestamp) and, when signed, rebuild the sorted payload from the template's plan
//! and sign it; then mask it into the connection's kept frame buffer (`encode_masked_text`).
//! Baseline: build the params as a `serde_json` object, the sorted query string with
//! `format!`, sign it with the same `ring` primitives, hex or base64 with `format!`,
//! `serde_json::to_string` the request, and frame it as tungstenite does for `send` (a
//! `Message::Text`, masked, formatted into a new buffer): what a typical client does per
//! order.
//!
//! A second table compares, in the same run, a plain order with an **OTOCO** (an entry and its
//! bracket, three orders in one `orderList.place.otoco`: the list's and three orders' ids
//! encoded, 23 slots patched, optional params put in or blanked as the orders' types need)
//! from intent to bytes, each order timed alone and interleaved one by one, in the logged-on
//! and HMAC modes: p50 and p99 of each over all rounds, and the median of the rounds' own
//! OTOCO/plain p50 ratios. The lists alternate a long entry (take-profit `LIMIT_MAKER`, trailing
//! `STOP_LOSS_LIMIT`) and a short one (`STOP_LOSS`, `LIMIT_MAKER`), so every OTOCO changes which
//! optional params it carries. A third table breaks both down by stage (client ids, slot
//! values, template write, the signature alone, masked frame), each stage timed over a whole
//! round of orders, the two kinds interleaved round by round.
//!
//! Rounds interleave the two (each goes first in turn); every round gives a ratio
//! baseline/pinion of mean time per order, and the median of those ratios is reported, with the
//! median per-order latency (p50, each order timed alone; the timer's own ~20-30 ns included)
//! and the allocations per order of each side. Needs an otherwise idle core for stable numbers
//! (performance governor, turbo off); the host state is printed first.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use pinion_core::{Px, Qty};
use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_gateway::binance::contingent::{ContingentLeg, LegSpec, ListIntent, ListShape, Trigger};
use pinion_gateway::binance::sign::Signer;
use pinion_gateway::binance::template::{RequestTemplate, Signing, SlotValues, SymbolContext};
use pinion_net::wss::encode_masked_text;
use pinion_strategy::{ClientOrderId, OrderIntent, OrderSide, OrderType, TimeInForce};
use pinion_testkit::alloc::{CountingAlloc, thread_allocations};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
/// The exchange docs' example HMAC secret: a published test value, not a credential.
const HMAC_SECRET: &[u8] = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
/// A throwaway Ed25519 test key (also in the gateway's tests), never registered anywhere.
const TEST_ONLY_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/
-----END PRIVATE KEY-----
";
const PRICE_DECIMALS: u8 = 2;
const QTY_DECIMALS: u8 = 5;
const ROUNDS: usize = 31;
const ORDERS_PER_ROUND: usize = 2_000;

fn intents() -> Vec<OrderIntent> {
    (0..ORDERS_PER_ROUND as u64)
        .map(|i| {
            OrderIntent::new_limit(
                i,
                ClientOrderId(1_000 + i),
                pinion_core::InstrumentId(0),
                if i % 2 == 0 {
                    OrderSide::Buy
                } else {
                    OrderSide::Sell
                },
                Px(6_183_763 + (i as i64 % 500)),
                Qty(100 + (i as i64 % 77)),
                OrderType::Limit,
                TimeInForce::Gtc,
                pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
            )
        })
        .collect()
}

/// pinion's encoder for one mode: per-side templates, the codec, the signer.
struct Templates {
    buy: RequestTemplate,
    sell: RequestTemplate,
    codec: ClientIdCodec,
    signer: Option<Signer>,
    /// The frame buffer a connection keeps.
    frame: Vec<u8>,
    masks: u32,
}

impl Templates {
    fn new(signer: Option<Signer>) -> Self {
        let signing = if signer.is_some() {
            Signing::PerRequest {
                api_key: API_KEY.into(),
            }
        } else {
            Signing::LoggedOn
        };
        let ctx = SymbolContext {
            symbol: "BTCUSDT".into(),
            price_decimals: PRICE_DECIMALS,
            qty_decimals: QTY_DECIMALS,
            recv_window: None,
            stp_mode: None,
            signing,
        };
        let make = |side| {
            ctx.order_place(side, OrderType::Limit, TimeInForce::Gtc)
                .expect("template")
        };
        Self {
            buy: make(OrderSide::Buy),
            sell: make(OrderSide::Sell),
            codec: ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).expect("epoch")),
            signer,
            frame: Vec::with_capacity(4096),
            masks: 0x9E37_79B9,
        }
    }

    /// Request and frame: the bytes a socket write would take.
    #[inline]
    fn encode(&mut self, intent: &OrderIntent, request_id: u64, timestamp_ms: u64) -> usize {
        self.masks = self.masks.rotate_left(5) ^ 0x7F4A_7C15;
        let mask = self.masks.to_be_bytes();
        let mut frame = std::mem::take(&mut self.frame);
        encode_masked_text(
            self.encode_bytes(intent, request_id, timestamp_ms),
            mask,
            &mut frame,
        );
        let n = black_box(&frame).len();
        self.frame = frame;
        n
    }

    #[inline]
    fn encode_bytes(&mut self, intent: &OrderIntent, request_id: u64, timestamp_ms: u64) -> &[u8] {
        let mut id = [0u8; CLIENT_ID_LEN];
        self.codec.encode(intent.client_id, &mut id);
        let t = match intent.side {
            OrderSide::Buy => &mut self.buy,
            OrderSide::Sell => &mut self.sell,
        };
        let values = SlotValues {
            request_id,
            price: intent.px,
            qty: intent.qty,
            client_id: &id,
            timestamp_ms,
            ..SlotValues::default()
        };
        let out = t.write(&values, self.signer.as_ref()).expect("write");
        black_box(out)
    }
}

/// The common way, for the same request.
fn baseline(
    signer: Option<&Signer>,
    intent: &OrderIntent,
    request_id: u64,
    timestamp_ms: u64,
) -> usize {
    let text = baseline_text(signer, intent, request_id, timestamp_ms);
    let mut frame = Frame::message(text, OpCode::Data(Data::Text), true);
    // tungstenite draws the key from `rand`; a fixed one here spares the baseline that cost.
    frame.header_mut().mask = Some((request_id as u32).to_be_bytes());
    let mut out = Vec::new();
    frame.format(&mut out).expect("frame");
    black_box(out).len()
}

fn baseline_text(
    signer: Option<&Signer>,
    intent: &OrderIntent,
    request_id: u64,
    timestamp_ms: u64,
) -> String {
    let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).expect("epoch"));
    let mut id = [0u8; CLIENT_ID_LEN];
    codec.encode(intent.client_id, &mut id);
    let mut params: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    params.insert("symbol", "BTCUSDT".into());
    params.insert(
        "side",
        match intent.side {
            OrderSide::Buy => "BUY",
            OrderSide::Sell => "SELL",
        }
        .into(),
    );
    params.insert("type", "LIMIT".into());
    params.insert("timeInForce", "GTC".into());
    params.insert(
        "quantity",
        intent.qty.display(QTY_DECIMALS).to_string().into(),
    );
    params.insert(
        "price",
        intent.px.display(PRICE_DECIMALS).to_string().into(),
    );
    params.insert(
        "newClientOrderId",
        String::from_utf8_lossy(&id).into_owned().into(),
    );
    params.insert("newOrderRespType", "ACK".into());
    params.insert("timestamp", timestamp_ms.into());
    if let Some(signer) = signer {
        params.insert("apiKey", API_KEY.into());
        let query = params
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join("&");
        let signature = match signer {
            Signer::Hmac(key) => ring::hmac::sign(key, query.as_bytes())
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            Signer::Ed25519(key) => base64(key.sign(query.as_bytes()).as_ref()),
        };
        params.insert("signature", signature.into());
    }
    let request = serde_json::json!({
        "id": request_id,
        "method": "order.place",
        "params": params,
    });
    serde_json::to_string(&request).expect("json")
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

struct Figures {
    pinion_mean_ns: f64,
    base_mean_ns: f64,
    ratio: f64,
    pinion_p50: u64,
    pinion_p99: u64,
    base_p50: u64,
    pinion_allocs: f64,
    base_allocs: f64,
}

fn measure(mode: &str, signer: Option<Signer>) -> Figures {
    let intents = intents();
    let baseline_signer = signer.as_ref().map(|s| match s {
        Signer::Hmac(_) => Signer::hmac(HMAC_SECRET),
        Signer::Ed25519(_) => Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key"),
    });
    let mut t = Templates::new(signer);
    // Warm-up, checking that the two produce the same request.
    for (i, intent) in intents.iter().enumerate() {
        let ours: serde_json::Value =
            serde_json::from_slice(t.encode_bytes(intent, i as u64, 1_764_921_600_000))
                .expect("pinion's request is JSON");
        let theirs: serde_json::Value = serde_json::from_str(&baseline_text(
            baseline_signer.as_ref(),
            intent,
            i as u64,
            1_764_921_600_000,
        ))
        .expect("baseline JSON");
        assert_eq!(ours, theirs, "{mode}: the two requests differ");
    }
    let (mut ratios, mut p_means, mut b_means) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_lat, mut b_lat) = (Vec::new(), Vec::new());
    let (mut p_alloc, mut b_alloc) = (0u64, 0u64);
    let mut ts = 1_764_921_600_000u64;
    for round in 0..ROUNDS {
        let mut run_pinion = |ts: &mut u64| {
            let a = thread_allocations();
            let start = Instant::now();
            for (i, intent) in intents.iter().enumerate() {
                *ts += 1;
                t.encode(intent, i as u64, *ts);
            }
            let ns = start.elapsed().as_nanos() as f64 / ORDERS_PER_ROUND as f64;
            p_alloc += thread_allocations() - a;
            ns
        };
        let mut run_base = |ts: &mut u64| {
            let a = thread_allocations();
            let start = Instant::now();
            for (i, intent) in intents.iter().enumerate() {
                *ts += 1;
                baseline(baseline_signer.as_ref(), intent, i as u64, *ts);
            }
            let ns = start.elapsed().as_nanos() as f64 / ORDERS_PER_ROUND as f64;
            b_alloc += thread_allocations() - a;
            ns
        };
        let (p, b) = if round % 2 == 0 {
            let p = run_pinion(&mut ts);
            (p, run_base(&mut ts))
        } else {
            let b = run_base(&mut ts);
            (run_pinion(&mut ts), b)
        };
        ratios.push(b / p);
        p_means.push(p);
        b_means.push(b);
    }
    // Per-order latency, each order timed alone, interleaved one by one.
    for (i, intent) in intents
        .iter()
        .enumerate()
        .cycle()
        .take(ORDERS_PER_ROUND * 10)
    {
        ts += 1;
        let s = Instant::now();
        t.encode(intent, i as u64, ts);
        p_lat.push(s.elapsed().as_nanos() as u64);
        let s = Instant::now();
        baseline(baseline_signer.as_ref(), intent, i as u64, ts);
        b_lat.push(s.elapsed().as_nanos() as u64);
    }
    let orders = (ROUNDS * ORDERS_PER_ROUND) as f64;
    let f = Figures {
        pinion_mean_ns: median(&mut p_means),
        base_mean_ns: median(&mut b_means),
        ratio: median(&mut ratios),
        pinion_p50: percentile(&mut p_lat, 0.5),
        pinion_p99: percentile(&mut p_lat, 0.99),
        base_p50: percentile(&mut b_lat, 0.5),
        pinion_allocs: p_alloc as f64 / orders,
        base_allocs: b_alloc as f64 / orders,
    };
    println!(
        "{mode:<10} pinion {:>8.0} ns/order (p50 {:>6} ns, p99 {:>6} ns, {:.2} allocs)   baseline {:>8.0} ns/order (p50 {:>6} ns, {:.1} allocs)   baseline/pinion median of {ROUNDS} rounds: {:.1}x",
        f.pinion_mean_ns,
        f.pinion_p50,
        f.pinion_p99,
        f.pinion_allocs,
        f.base_mean_ns,
        f.base_p50,
        f.base_allocs,
        f.ratio,
    );
    f
}

/// An entry at the intent's price and a bracket 1 % either side of it, the stop trailing.
fn otoco_of(intent: &OrderIntent) -> ListIntent {
    let px = intent.px.0;
    let exit = intent.side.opposite();
    let leg = |k: u64, side, spec| ContingentLeg {
        client_id: ClientOrderId(intent.client_id.0 * 4 + k),
        side,
        qty: intent.qty,
        spec,
    };
    let (above, below) = match intent.side {
        // A long entry: take profit above, stop below.
        OrderSide::Buy => (
            LegSpec::limit_maker(Px(px + px / 100)),
            LegSpec::stop_loss_limit(
                Trigger::StopThenTrailing {
                    stop: Px(px - px / 100),
                    delta: 100,
                },
                Px(px - px / 50),
                TimeInForce::Gtc,
            ),
        ),
        OrderSide::Sell => (
            LegSpec::stop_loss(Trigger::Stop(Px(px + px / 100))),
            LegSpec::limit_maker(Px(px - px / 100)),
        ),
    };
    ListIntent {
        t0: intent.t0,
        instrument: intent.instrument,
        list_id: ClientOrderId(intent.client_id.0 * 4),
        shape: ListShape::Otoco {
            working: leg(1, intent.side, LegSpec::limit(intent.px, TimeInForce::Gtc)),
            above: leg(2, exit, above),
            below: leg(3, exit, below),
        },
    }
}

/// pinion's OTOCO encoder: one template, the codec, the signer, the kept frame.
struct ListTemplate {
    otoco: RequestTemplate,
    codec: ClientIdCodec,
    signer: Option<Signer>,
    frame: Vec<u8>,
}

impl ListTemplate {
    fn new(signer: Option<Signer>) -> Self {
        let signing = if signer.is_some() {
            Signing::PerRequest {
                api_key: API_KEY.into(),
            }
        } else {
            Signing::LoggedOn
        };
        let ctx = SymbolContext {
            symbol: "BTCUSDT".into(),
            price_decimals: PRICE_DECIMALS,
            qty_decimals: QTY_DECIMALS,
            recv_window: None,
            stp_mode: None,
            signing,
        };
        Self {
            otoco: ctx.order_list_otoco().expect("template"),
            codec: ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).expect("epoch")),
            signer,
            frame: Vec::with_capacity(4096),
        }
    }

    #[inline]
    fn encode(&mut self, list: &ListIntent, request_id: u64, timestamp_ms: u64) -> usize {
        let mut ids = [[0u8; CLIENT_ID_LEN]; 4];
        self.codec.encode(list.list_id, &mut ids[0]);
        let legs = list.legs();
        for (k, leg) in legs.iter().enumerate() {
            self.codec.encode(leg.client_id, &mut ids[k + 1]);
        }
        let mut values = SlotValues {
            request_id,
            timestamp_ms,
            list_client_id: &ids[0],
            ..SlotValues::default()
        };
        for (k, leg) in legs.iter().enumerate() {
            values.legs[k] = leg.values(&ids[k + 1]);
        }
        let out = self
            .otoco
            .write(&values, self.signer.as_ref())
            .expect("write");
        let mask = (request_id as u32).rotate_left(7).to_be_bytes();
        let mut frame = std::mem::take(&mut self.frame);
        encode_masked_text(out, mask, &mut frame);
        let n = black_box(&frame).len();
        self.frame = frame;
        n
    }
}

/// Plain order against OTOCO, intent → masked frame, each timed alone and interleaved, in 10
/// rounds of [`ORDERS_PER_ROUND`] pairs.
fn measure_lists(mode: &str, signer: Option<Signer>) -> (u64, u64, f64) {
    let intents = intents();
    let lists: Vec<ListIntent> = intents.iter().map(otoco_of).collect();
    for l in &lists {
        l.check().expect("a list the exchange takes");
    }
    let clone = |s: &Option<Signer>| {
        s.as_ref().map(|s| match s {
            Signer::Hmac(_) => Signer::hmac(HMAC_SECRET),
            Signer::Ed25519(_) => Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key"),
        })
    };
    let mut plain = Templates::new(clone(&signer));
    let mut list_t = ListTemplate::new(signer);
    let mut ts = 1_764_921_600_000u64;
    // Warm-up.
    for (i, l) in lists.iter().enumerate() {
        plain.encode(&intents[i], i as u64, ts);
        list_t.encode(l, i as u64, ts);
    }
    let mut p_lat = Vec::with_capacity(ORDERS_PER_ROUND * 10);
    let mut l_lat = Vec::with_capacity(ORDERS_PER_ROUND * 10);
    let a = thread_allocations();
    for (i, (intent, list)) in intents
        .iter()
        .zip(&lists)
        .enumerate()
        .cycle()
        .take(ORDERS_PER_ROUND * 10)
    {
        ts += 1;
        if i % 2 == 0 {
            let s = Instant::now();
            plain.encode(intent, i as u64, ts);
            p_lat.push(s.elapsed().as_nanos() as u64);
            let s = Instant::now();
            list_t.encode(list, i as u64, ts);
            l_lat.push(s.elapsed().as_nanos() as u64);
        } else {
            let s = Instant::now();
            list_t.encode(list, i as u64, ts);
            l_lat.push(s.elapsed().as_nanos() as u64);
            let s = Instant::now();
            plain.encode(intent, i as u64, ts);
            p_lat.push(s.elapsed().as_nanos() as u64);
        }
    }
    let allocs = (thread_allocations() - a) as f64 / (2 * ORDERS_PER_ROUND * 10) as f64;
    // Each round's own ratio of p50s, before the whole run's samples are sorted.
    let mut ratios: Vec<f64> = p_lat
        .chunks_mut(ORDERS_PER_ROUND)
        .zip(l_lat.chunks_mut(ORDERS_PER_ROUND))
        .map(|(p, l)| percentile(l, 0.5) as f64 / percentile(p, 0.5).max(1) as f64)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let (p50, l50) = (percentile(&mut p_lat, 0.5), percentile(&mut l_lat, 0.5));
    println!(
        "{mode:<10} plain order.place p50 {p50:>6} ns (p99 {:>6} ns)   OTOCO p50 {l50:>6} ns (p99 {:>6} ns, {} bytes)   OTOCO/plain p50 {:.2}x (median of {} rounds' ratios {:.2}x, range {:.2}-{:.2}), {allocs:.2} allocs",
        percentile(&mut p_lat, 0.99),
        percentile(&mut l_lat, 0.99),
        list_t.otoco.len(),
        l50 as f64 / p50.max(1) as f64,
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    );
    (p50, l50, allocs)
}

/// Stage means of one round, ns per order: client ids, slot values, template write (slots
/// patched, and when signed the payload rebuilt and signed), the signature alone (over the
/// same payload), the masked frame.
#[derive(Default, Clone, Copy)]
struct Stages {
    ids: f64,
    values: f64,
    write: f64,
    sign: f64,
    frame: f64,
}

/// Mean ns per item of `f` over `n` items.
fn per_item(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Where a plain order's and an OTOCO's time goes, stage by stage, each stage over all
/// [`ORDERS_PER_ROUND`] orders at once (one timer per stage, so no timer cost per order), the
/// two kinds interleaved in each of [`ROUNDS`] rounds, each going first in turn; the medians
/// over rounds are printed, with each request's bytes, slots and signed payload.
fn breakdown(mode: &str, signer: Option<Signer>) {
    let intents = intents();
    let lists: Vec<ListIntent> = intents.iter().map(otoco_of).collect();
    let clone = |s: &Option<Signer>| {
        s.as_ref().map(|s| match s {
            Signer::Hmac(_) => Signer::hmac(HMAC_SECRET),
            Signer::Ed25519(_) => Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key"),
        })
    };
    let mut plain = Templates::new(clone(&signer));
    let mut list_t = ListTemplate::new(signer);
    let codec = plain.codec;
    let n = intents.len();
    let mut plain_ids = vec![[0u8; CLIENT_ID_LEN]; n];
    let mut list_ids = vec![[[0u8; CLIENT_ID_LEN]; 4]; n];
    let mut rounds: Vec<[Stages; 2]> = Vec::with_capacity(ROUNDS);
    let mut ts = 1_764_921_600_000u64;
    let mut frame = Vec::with_capacity(4096);
    let mut sig = [0u8; pinion_gateway::binance::sign::ED25519_B64_LEN];
    for round in 0..ROUNDS {
        let mut st = [Stages::default(); 2];
        for k in 0..2 {
            // Each kind goes first in turn.
            let otoco = (k + round) % 2 == 1;
            let s = &mut st[usize::from(otoco)];
            if !otoco {
                s.ids = per_item(n, |i| codec.encode(intents[i].client_id, &mut plain_ids[i]));
                s.values = per_item(n, |i| {
                    black_box(SlotValues {
                        request_id: i as u64,
                        price: intents[i].px,
                        qty: intents[i].qty,
                        client_id: &plain_ids[i],
                        timestamp_ms: ts,
                        ..SlotValues::default()
                    });
                });
                s.write = per_item(n, |i| {
                    ts += 1;
                    let t = match intents[i].side {
                        OrderSide::Buy => &mut plain.buy,
                        OrderSide::Sell => &mut plain.sell,
                    };
                    let values = SlotValues {
                        request_id: i as u64,
                        price: intents[i].px,
                        qty: intents[i].qty,
                        client_id: &plain_ids[i],
                        timestamp_ms: ts,
                        ..SlotValues::default()
                    };
                    black_box(t.write(&values, plain.signer.as_ref()).expect("write"));
                });
                if let Some(signer) = &plain.signer {
                    let payload = plain.buy.last_payload();
                    s.sign = per_item(n, |_| {
                        black_box(signer.sign(black_box(payload), &mut sig));
                    });
                }
                let bytes = plain
                    .buy
                    .write(
                        &SlotValues {
                            client_id: &plain_ids[0],
                            ..SlotValues::default()
                        },
                        plain.signer.as_ref(),
                    )
                    .expect("write")
                    .to_vec();
                s.frame = per_item(n, |i| {
                    encode_masked_text(&bytes, (i as u32).to_be_bytes(), &mut frame);
                    black_box(&frame);
                });
            } else {
                s.ids = per_item(n, |i| {
                    let ids = &mut list_ids[i];
                    codec.encode(lists[i].list_id, &mut ids[0]);
                    for (k, leg) in lists[i].legs().iter().enumerate() {
                        codec.encode(leg.client_id, &mut ids[k + 1]);
                    }
                });
                let values_of = |i: usize, ts: u64| {
                    let ids = &list_ids[i];
                    let mut values = SlotValues {
                        request_id: i as u64,
                        timestamp_ms: ts,
                        list_client_id: &ids[0],
                        ..SlotValues::default()
                    };
                    for (k, leg) in lists[i].legs().iter().enumerate() {
                        values.legs[k] = leg.values(&ids[k + 1]);
                    }
                    values
                };
                s.values = per_item(n, |i| {
                    black_box(values_of(i, ts));
                });
                let all: Vec<SlotValues<'_>> = (0..n).map(|i| values_of(i, ts)).collect();
                s.write = per_item(n, |i| {
                    let mut values = all[i];
                    ts += 1;
                    values.timestamp_ms = ts;
                    black_box(
                        list_t
                            .otoco
                            .write(&values, list_t.signer.as_ref())
                            .expect("write"),
                    );
                });
                if let Some(signer) = &list_t.signer {
                    let payload = list_t.otoco.last_payload();
                    s.sign = per_item(n, |_| {
                        black_box(signer.sign(black_box(payload), &mut sig));
                    });
                }
                let bytes = list_t
                    .otoco
                    .write(&all[0], list_t.signer.as_ref())
                    .expect("write")
                    .to_vec();
                s.frame = per_item(n, |i| {
                    encode_masked_text(&bytes, (i as u32).to_be_bytes(), &mut frame);
                    black_box(&frame);
                });
            }
        }
        rounds.push(st);
    }
    let med = |kind: usize, f: fn(&Stages) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(|r| f(&r[kind])).collect();
        median(&mut v)
    };
    type Stage = (&'static str, fn(&Stages) -> f64);
    let stages: [Stage; 5] = [
        ("client ids", |s| s.ids),
        ("slot values", |s| s.values),
        ("template write", |s| s.write),
        ("  of which signature", |s| s.sign),
        ("masked frame", |s| s.frame),
    ];
    println!(
        "{mode}: stage means, ns per order (median of {ROUNDS} rounds): plain / OTOCO ({} / {} bytes, {} / {} slots, signed payload {} / {} bytes)",
        plain.buy.len(),
        list_t.otoco.len(),
        plain.buy.slots().count(),
        list_t.otoco.slots().count(),
        plain.buy.last_payload().len(),
        list_t.otoco.last_payload().len(),
    );
    for (name, f) in stages {
        let (p, l) = (med(0, f), med(1, f));
        println!("  {name:<22} {p:>7.1} / {l:>7.1}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (three cases only).
    println!("host: {}", pinion_benches::host_state());
    println!(
        "order.place, LIMIT GTC BTCUSDT, {ROUNDS} interleaved rounds of {ORDERS_PER_ROUND} orders per mode"
    );
    let logged_on = measure("logged-on", None);
    let hmac = measure("hmac", Some(Signer::hmac(HMAC_SECRET)));
    let ed = measure(
        "ed25519",
        Some(Signer::ed25519_pem(TEST_ONLY_ED25519_PEM).expect("key")),
    );
    println!(
        "plain order vs OTOCO (entry + bracket), intent -> masked frame, {} orders each, interleaved",
        ORDERS_PER_ROUND * 10
    );
    let (_, _, list_allocs_on) = measure_lists("logged-on", None);
    let (_, _, list_allocs_hmac) = measure_lists("hmac", Some(Signer::hmac(HMAC_SECRET)));
    breakdown("logged-on", None);
    breakdown("hmac", Some(Signer::hmac(HMAC_SECRET)));
    assert_eq!(
        list_allocs_on + list_allocs_hmac,
        0.0,
        "OTOCO encoding allocated"
    );
    let goal = logged_on.pinion_p50 < 1_000 && logged_on.ratio >= 5.0;
    println!(
        "goal (logged-on p50 < 1 µs and >= 5x the baseline, 0 allocations): {}",
        if goal
            && logged_on.pinion_allocs == 0.0
            && hmac.pinion_allocs == 0.0
            && ed.pinion_allocs == 0.0
        {
            "met"
        } else {
            "NOT met"
        }
    );
}
