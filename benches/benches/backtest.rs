//! Benchmark: backtest throughput, in market events per second, of every strategy through the
//! whole pipeline, against the minimal imbalance strategy (the pipeline's baseline) and against
//! hftbacktest's own backtester running a market-making loop on the same data, in the same run.
//!
//! pinion: `pinion_engine::backtest::run` on the shipped `configs/backtest-<kind>.toml` (imbalance,
//! market-making, spread-capture, quote-chase, momentum, grid) with only the input, the
//! placement and the progress bar overridden: the recording is read from a file, decoded, synced
//! into the book, handed to the strategy, its orders matched by the simulated venue on event
//! time (100 µs round trip, the configs' Binance Spot fees), fills and equity recorded.
//!
//! hftbacktest (0.9, the same crate the book benchmark compares against): its `Backtest` with a
//! `ROIVectorMarketDepth` spanning every price of the data, constant order latency of 50 µs each
//! way (the same round trip), `ProbQueueModel` with `PowerProbQueueFunc3(3)`, the
//! no-partial-fill exchange, a linear asset and 10 bps fees. Its loop, written here: on every
//! feed wake-up, quote one bid and one ask 0.5 bps either side of the mid (the shipped
//! market-making config's half spread) at 0.001, post-only; when the mid moves the wanted price,
//! cancel the quote and place the new one; no side that would take the position past 0.005.
//! hftbacktest takes its data as rows already in memory (its `.npz` files); they are converted
//! from pinion's decoding of the same recording before anything is timed.
//!
//! Input: `binance/spot-btcusdt-20240808.hbt.gz`, the recording the shipped configs name. Both
//! sides get the same market data: its REST snapshot, `@depth@100ms` diffs and `@trade` prints.
//! `@bookTicker` is left out of the common input because hftbacktest's L2 processors do not apply
//! best-bid/ask rows; pinion's market making also runs on the whole recording (its own row),
//! where the tickers are extra work the count below does not include. pinion reads a plain-text
//! copy written before the run (no gzip inflation in the timing, as hftbacktest reads none).
//!
//! Counting, the same for both: events = the depth level updates of the diffs the venue's sync
//! rule applies after the snapshot + the trade prints. That is the rows hftbacktest's loop is
//! fed, less the snapshot's. Events per second are that count over a pass's time.
//!
//! Two times per pass: `run`, the backtest itself (pinion: the stage threads from start to end,
//! which includes reading the file and decoding the JSON; hftbacktest: its loop from the first
//! wait to the end of the data), and `end to end`, the whole call (pinion: build, the first pass
//! over the file that finds its instruments, run, report; hftbacktest: building the backtest from
//! the rows, which copies them, the loop, and closing it).
//!
//! One more pinion row, `read + decode only`, times the common input read from its file and
//! decoded into market events with nothing after it: the part of pinion's run that hftbacktest's,
//! reading rows converted beforehand, does not do.
//!
//! And `market-making, predecoded`: pinion's market making on the common input decoded into
//! memory beforehand (what `pinion backtest --sweep --predecode` shares between its runs),
//! outside the timing, as hftbacktest's rows are converted outside its timing. Its `run` is the
//! like-for-like comparison with hftbacktest's loop: both start from decoded rows in memory.
//!
//! Method, for a noisy shared host: every configuration runs once (unmeasured, its outcome
//! checked), then [`DEFAULT_ROUNDS`] rounds (`PINION_BENCH_ROUNDS` to change; one round under
//! `cargo test --benches`), each round running every configuration once with the starting one
//! rotated. Reported per configuration: the median events/s, and the medians of each round's
//! own ratio to pinion's imbalance run and to hftbacktest's loop (above 1: faster).
//!
//! Placement: `PINION_BENCH_PLACEMENT` (default `1`: every stage fused on one thread, as
//! hftbacktest runs on one).
//!
//! Machine state: absolute figures mean something only on a quiet host with a fixed CPU
//! frequency and the run pinned to isolated cores; on a shared machine read the ratios.

use pinion_benches::median;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hftbacktest::backtest::assettype::LinearAsset;
use hftbacktest::backtest::data::{Data, DataSource};
use hftbacktest::backtest::models::{
    CommonFees, ConstantLatency, PowerProbQueueFunc3, ProbQueueModel, TradingValueFeeModel,
};
use hftbacktest::backtest::{Backtest, ExchangeKind, L2AssetBuilder};
use hftbacktest::depth::{INVALID_MAX, INVALID_MIN, MarketDepth, ROIVectorMarketDepth};
use hftbacktest::types::{
    BUY_EVENT, Bot, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, EXCH_EVENT, ElapseResult, Event,
    LOCAL_EVENT, OrdType, SELL_EVENT, TRADE_EVENT, TimeInForce,
};
use pinion_book::SequenceRule;
use pinion_book::sync::{MsgIds, Verdict};
use pinion_core::{
    ConnId, EventFlags, EventKind, InstrumentSpec, Instruments, MarketEvent, RawRecord, RecordKind,
    Side, Venue,
};
use pinion_engine::backtest;
use pinion_engine::config::{Config, Override, Overrides, Settings};
use pinion_engine::pipeline::{Console, DecodedInput};
use pinion_feed::parse::{ConnCtx, Decoder};

/// The recording the shipped configs name.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// Rounds of the interleaved comparison when `PINION_BENCH_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 9;

/// The strategies, by the name their `configs/backtest-<kind>.toml` carries; the first is the
/// pipeline's baseline.
const KINDS: [&str; 6] = [
    "imbalance",
    "market-making",
    "spread-capture",
    "quote-chase",
    "momentum",
    "grid",
];

/// hftbacktest's order latency each way, ns: with both ways, pinion's simulated venue's
/// round trip (`gateway.latency_us = 100`).
const HFT_LATENCY_NS: i64 = 50_000;
/// The quotes' distance from the mid, as a fraction (0.5 bps, the market-making config's).
const HFT_HALF_SPREAD: f64 = 0.5e-4;
/// Quote size, BTC (the configs' `order_qty`).
const HFT_ORDER_QTY: f64 = 0.001;
/// No quote that could take the position past this, BTC (the market-making config's).
const HFT_MAX_POSITION: f64 = 0.005;
/// The instrument's tick, USDT.
const HFT_TICK: f64 = 0.01;
/// The orders' lot, BTC (the instrument's step).
const HFT_LOT: f64 = 0.00001;
/// Fees, as a fraction of the notional (Binance Spot's 10 bps, as the backtest configs).
const HFT_FEE: f64 = 0.001;
/// The longest wait for the next row, ns; a wait that ends without one just loops.
const HFT_WAIT_NS: i64 = 60_000_000_000;

/// The recording prepared for both backtesters, before anything is timed.
struct Input {
    /// Where the plain-text copies are, removed at the end.
    dir: PathBuf,
    /// Snapshot, depth diffs and trades (the common input).
    common: PathBuf,
    /// Every line of the recording.
    full: PathBuf,
    /// The counted events (see the module docs).
    events: u64,
    /// Depth messages applied after the snapshot, and their level updates.
    depth_messages: u64,
    depth_levels: u64,
    /// Trade prints.
    trades: u64,
    /// `@bookTicker` messages left out of the common input.
    tickers: u64,
    /// The common input as hftbacktest rows: snapshot, then diffs and trades in order.
    rows: Vec<Event>,
    /// The price range of every row, widened by a few ticks.
    roi: (f64, f64),
}

impl Drop for Input {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The instrument as the decoder sees it: quantities at the 8 decimals Binance Spot sends.
fn spec() -> InstrumentSpec {
    InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").expect("valid spec")
}

/// A `@bookTicker` line of a combined stream.
fn is_ticker(json: &[u8]) -> bool {
    let head = &json[..json.len().min(64)];
    head.windows(b"@bookTicker\"".len())
        .any(|w| w == b"@bookTicker\"")
}

/// Reads the recording, writes the plain copies, decodes it and converts it to hftbacktest's
/// rows; `None` when it is missing (outside CI).
fn prepare() -> Option<Input> {
    let lines = pinion_benches::hbt_lines(RECORDING)?;
    let dir = std::env::temp_dir().join(format!("pinion-bench-backtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    // The `spot-` prefix names the venue, as the recordings' own names do.
    let common = dir.join("spot-btcusdt-20240808-depth-trades.hbt");
    let full = dir.join("spot-btcusdt-20240808.hbt");
    let mut out_common = std::io::BufWriter::new(std::fs::File::create(&common).expect("create"));
    let mut out_full = std::io::BufWriter::new(std::fs::File::create(&full).expect("create"));
    let mut tickers = 0;
    for l in &lines {
        let write = |w: &mut std::io::BufWriter<std::fs::File>| {
            w.write_all(format!("{} ", l.t_recv).as_bytes())
                .and_then(|()| w.write_all(&l.json))
                .and_then(|()| w.write_all(b"\n"))
                .expect("write the plain copy");
        };
        write(&mut out_full);
        if l.is_stream() && is_ticker(&l.json) {
            tickers += 1;
        } else {
            write(&mut out_common);
        }
    }
    out_common.flush().expect("flush");
    out_full.flush().expect("flush");

    let spec = spec();
    let mut reg = Instruments::new();
    let id = reg.add(spec.clone()).expect("one instrument");
    let mut dec = Decoder::new(reg);
    let ctx = ConnCtx {
        venue: Venue::BinanceSpot,
        default_instrument: Some(id),
    };
    let mut events = Vec::new();
    for l in lines
        .iter()
        .filter(|l| !(l.is_stream() && is_ticker(&l.json)))
    {
        let rec = RawRecord {
            t_recv: l.t_recv,
            conn: ConnId(0),
            kind: if l.is_stream() {
                RecordKind::Frame
            } else {
                RecordKind::RestSnapshot
            },
            meta: b"",
            payload: &l.json,
        };
        dec.decode(&ctx, &rec, l.t_recv, |e| events.push(*e))
            .expect("the recording decodes");
    }
    let mut input = Input {
        dir,
        common,
        full,
        events: 0,
        depth_messages: 0,
        depth_levels: 0,
        trades: 0,
        tickers,
        rows: Vec::new(),
        roi: (f64::MAX, f64::MIN),
    };
    convert(&mut input, &events, &spec);
    let tick = spec.tick.0 as f64 / price_scale(&spec);
    input.roi = (input.roi.0 - 8.0 * tick, input.roi.1 + 8.0 * tick);
    input.events = input.depth_levels + input.trades;
    assert!(
        input.depth_messages > 1000 && input.trades > 1000,
        "the recording's streams"
    );
    Some(input)
}

fn price_scale(spec: &InstrumentSpec) -> f64 {
    10f64.powi(i32::from(spec.price_decimals))
}

fn qty_scale(spec: &InstrumentSpec) -> f64 {
    10f64.powi(i32::from(spec.qty_decimals))
}

/// Selects what the sync rule applies (the snapshot, the diffs buffered before it that bridge
/// its `lastUpdateId`, every diff after) and turns it, with the trades, into hftbacktest rows
/// seen by the exchange and the local side at the receive time; the bridging diffs at the
/// snapshot's.
fn convert(input: &mut Input, events: &[MarketEvent], spec: &InstrumentSpec) {
    let (ps, qs) = (price_scale(spec), qty_scale(spec));
    let rule = SequenceRule::for_venue(Venue::BinanceSpot);
    let mut pending: Vec<MarketEvent> = Vec::new();
    let mut snapshot_id: Option<u64> = None;
    let mut last: Option<MsgIds> = None;
    let mut take = false;
    let mut t_last: i64 = 0;
    let mut row = |input: &mut Input, ev: u64, t: u64, px: i64, qty: i64| {
        // Receive times never go back in the recording; a row never goes before the last.
        let t = i64::try_from(t).expect("a time in range").max(t_last);
        t_last = t;
        let px = px as f64 / ps;
        input.roi = (input.roi.0.min(px), input.roi.1.max(px));
        input.rows.push(Event {
            ev: ev | EXCH_EVENT | LOCAL_EVENT,
            exch_ts: t,
            local_ts: t,
            px,
            qty: qty as f64 / qs,
            order_id: 0,
            ival: 0,
            fval: 0.0,
        });
    };
    let side_flag = |side: Side| {
        if side == Side::Bid {
            BUY_EVENT
        } else {
            SELL_EVENT
        }
    };
    // Applies one diff event by the rule, counting it and emitting its rows at `t`.
    let mut diff = |input: &mut Input,
                    row: &mut dyn FnMut(&mut Input, u64, u64, i64, i64),
                    e: &MarketEvent,
                    snapshot_id: u64,
                    t: u64| {
        if e.is_first() {
            let ids = MsgIds::of(e);
            let verdict = match last {
                None => rule.first_after_snapshot(snapshot_id, ids),
                Some(l) => rule.next(l, ids),
            };
            take = match verdict {
                Verdict::Apply => {
                    last = Some(ids);
                    true
                }
                Verdict::Stale | Verdict::Duplicate => false,
                Verdict::Gap { expected, got } => {
                    panic!("gap in the recording: expected {expected}, got {got}")
                }
            };
        }
        if take {
            input.depth_messages += u64::from(e.is_last());
            for (side, l) in e.sided_levels() {
                input.depth_levels += 1;
                row(input, DEPTH_EVENT | side_flag(side), t, l.px.0, l.qty.0);
            }
        }
    };
    for e in events {
        match (e.kind, snapshot_id) {
            (EventKind::Snapshot, None) => {
                for (side, l) in e.sided_levels() {
                    row(
                        input,
                        DEPTH_SNAPSHOT_EVENT | side_flag(side),
                        e.t_recv,
                        l.px.0,
                        l.qty.0,
                    );
                }
                if e.is_last() {
                    snapshot_id = Some(e.last_id);
                    for p in std::mem::take(&mut pending) {
                        diff(input, &mut row, &p, e.last_id, e.t_recv);
                    }
                }
            }
            (EventKind::Depth, None) => pending.push(*e),
            (EventKind::Depth, Some(id)) => diff(input, &mut row, e, id, e.t_recv),
            (EventKind::Trade, _) if e.n_levels > 0 => {
                input.trades += 1;
                let l = e.levels[0];
                // The taker's side: a buyer-maker print was a sell taking the bid.
                let taker = if e.flags.contains(EventFlags::BUYER_MAKER) {
                    SELL_EVENT
                } else {
                    BUY_EVENT
                };
                row(input, TRADE_EVENT | taker, e.t_recv, l.px.0, l.qty.0);
            }
            _ => {}
        }
    }
    assert!(
        snapshot_id.is_some(),
        "the recording holds its REST snapshot"
    );
}

/// What one pass did and how long it took.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// The backtest itself, s.
    run: f64,
    /// The whole call, s.
    total: f64,
    orders: u64,
    fills: u64,
}

/// `configs/backtest-<kind>.toml` on `source`, in `placement`, without the progress bar.
fn settings(kind: &str, source: &Path, placement: &str) -> Settings {
    let name = format!("backtest-{kind}.toml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(&name);
    let text = std::fs::read_to_string(&path).expect("the shipped config");
    let mut o = Overrides::default();
    o.push(Override::string(
        "input.source",
        source.to_str().expect("a UTF-8 path"),
    ));
    o.push(Override::string("placement.mode", placement));
    o.push(Override::value("runtime.progress", false));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Config::parse_with(&text, &name, &o)
        .unwrap_or_else(|e| panic!("{e}"))
        .validate_for(&name, cores, &pinion_testkit::data::data_dir())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn pinion_pass(settings: &Settings) -> Pass {
    let t = Instant::now();
    let (report, _) = backtest::run(settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .unwrap_or_else(|e| panic!("{}: {e}", settings.origin));
    let total = t.elapsed().as_secs_f64();
    assert_eq!(
        report.trading.len(),
        1,
        "{}: one traded instrument",
        settings.origin
    );
    let stats = report.trading[0].stats;
    Pass {
        run: report.throughput.seconds,
        total,
        orders: report.throughput.orders,
        fills: stats.fills,
    }
}

/// [`pinion_pass`] on the input decoded beforehand (`pinion backtest --sweep --predecode`):
/// the decoded messages are built once, outside the timing, as hftbacktest's rows are.
fn pinion_decoded_pass(settings: &Settings, decoded: &DecodedInput) -> Pass {
    let t = Instant::now();
    let (report, _) = backtest::run_decoded(
        settings,
        decoded,
        Arc::new(AtomicBool::new(false)),
        Console::QUIET,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", settings.origin));
    let total = t.elapsed().as_secs_f64();
    let stats = report.trading[0].stats;
    Pass {
        run: report.throughput.seconds,
        total,
        orders: report.throughput.orders,
        fills: stats.fills,
    }
}

/// pinion's input alone: the common input read from its file and decoded into market events,
/// as the feed stage does, with nothing after it (no book, strategy or venue).
fn decode_pass(input: &Input) -> Pass {
    let t = Instant::now();
    let mut reg = Instruments::new();
    let id = reg.add(spec()).expect("one instrument");
    let mut dec = Decoder::new(reg);
    let ctx = ConnCtx {
        venue: Venue::BinanceSpot,
        default_instrument: Some(id),
    };
    let mut source = pinion_feed::source::open(&input.common).expect("the plain copy opens");
    let mut events = 0u64;
    while let Some(rec) = source.next_record().expect("the plain copy reads") {
        let t_recv = rec.t_recv;
        dec.decode(&ctx, &rec, t_recv, |e| {
            events += 1;
            std::hint::black_box(e);
        })
        .expect("the recording decodes");
    }
    assert!(
        events >= input.depth_messages + input.trades,
        "every message decoded"
    );
    let run = t.elapsed().as_secs_f64();
    Pass {
        run,
        total: run,
        orders: 0,
        fills: 0,
    }
}

fn hft_pass(input: &Input) -> Pass {
    let t = Instant::now();
    let tick = HFT_TICK;
    let (lo, hi) = input.roi;
    let asset = L2AssetBuilder::new()
        .data(vec![DataSource::Data(Data::from_data(&input.rows))])
        .parallel_load(false)
        .latency_model(ConstantLatency::new(HFT_LATENCY_NS, HFT_LATENCY_NS))
        .asset_type(LinearAsset::new(1.0))
        .fee_model(TradingValueFeeModel::new(CommonFees::new(HFT_FEE, HFT_FEE)))
        .exchange(ExchangeKind::NoPartialFillExchange)
        .queue_model(ProbQueueModel::new(PowerProbQueueFunc3::new(3.0)))
        .depth(move || ROIVectorMarketDepth::new(tick, HFT_LOT, lo, hi))
        .build()
        .expect("hftbacktest's asset");
    let mut hbt = Backtest::builder()
        .add_asset(asset)
        .build()
        .expect("hftbacktest's backtest");
    let t_run = Instant::now();
    let orders = quote_around_mid(&mut hbt, tick);
    let run = t_run.elapsed().as_secs_f64();
    let fills = hbt.state_values(0).num_trades as u64;
    hbt.close().expect("hftbacktest closes");
    Pass {
        run,
        total: t.elapsed().as_secs_f64(),
        orders,
        fills,
    }
}

/// One side's quote in the hftbacktest loop: its order and the price tick it rests at.
#[derive(Debug, Clone, Copy)]
struct Quote {
    id: u64,
    tick: i64,
}

/// The hftbacktest market-making loop (see the module docs); returns the orders placed.
fn quote_around_mid<MD: MarketDepth>(hbt: &mut Backtest<MD>, tick: f64) -> u64 {
    let mut quotes: [Option<Quote>; 2] = [None, None];
    let mut next_id = 1u64;
    loop {
        if hbt
            .wait_next_feed(false, HFT_WAIT_NS)
            .expect("the loop runs")
            == ElapseResult::EndOfData
        {
            break;
        }
        let depth = hbt.depth(0);
        let (best_bid, best_ask) = (depth.best_bid_tick(), depth.best_ask_tick());
        if best_bid == INVALID_MIN || best_ask == INVALID_MAX {
            continue;
        }
        let mid = (best_bid + best_ask) as f64 * 0.5 * tick;
        let position = hbt.position(0);
        // Post-only prices, never through the other side of the book.
        let want = [
            (position + HFT_ORDER_QTY <= HFT_MAX_POSITION + 1e-12)
                .then(|| ((mid * (1.0 - HFT_HALF_SPREAD) / tick).floor() as i64).min(best_ask - 1)),
            (position - HFT_ORDER_QTY >= -HFT_MAX_POSITION - 1e-12)
                .then(|| ((mid * (1.0 + HFT_HALF_SPREAD) / tick).ceil() as i64).max(best_bid + 1)),
        ];
        for (i, want) in want.into_iter().enumerate() {
            let live = quotes[i].filter(|q| hbt.orders(0).get(&q.id).is_some_and(|o| o.active()));
            if live.map(|q| q.tick) == want {
                continue;
            }
            if let Some(q) = live
                && hbt.orders(0).get(&q.id).is_some_and(|o| o.cancellable())
            {
                hbt.cancel(0, q.id, false).expect("a cancel");
            }
            quotes[i] = None;
            if let Some(px_tick) = want {
                let px = px_tick as f64 * tick;
                let id = next_id;
                next_id += 1;
                let sent = if i == 0 {
                    hbt.submit_buy_order(
                        0,
                        id,
                        px,
                        HFT_ORDER_QTY,
                        TimeInForce::GTX,
                        OrdType::Limit,
                        false,
                    )
                } else {
                    hbt.submit_sell_order(
                        0,
                        id,
                        px,
                        HFT_ORDER_QTY,
                        TimeInForce::GTX,
                        OrdType::Limit,
                        false,
                    )
                };
                sent.expect("an order");
                quotes[i] = Some(Quote { id, tick: px_tick });
            }
        }
        hbt.clear_inactive_orders(Some(0));
    }
    next_id - 1
}

/// One configuration of the comparison.
struct Contender<'a> {
    name: String,
    /// Whether it runs a strategy (and must place orders and get fills).
    trades: bool,
    pass: Box<dyn FnMut() -> Pass + 'a>,
}

/// The median of each round's ratio of `a`'s rate to `b`'s (times are per pass: b / a).
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    median(a.iter().zip(b).map(|(ta, tb)| tb / ta).collect())
}

fn rounds() -> usize {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and must stay quick.
    if !std::env::args().any(|a| a == "--bench") {
        return 1;
    }
    match std::env::var("PINION_BENCH_ROUNDS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("PINION_BENCH_ROUNDS={v:?}: expected a positive count")),
        Err(_) => DEFAULT_ROUNDS,
    }
}

fn main() {
    eprintln!("backtest bench: host: {}", pinion_benches::host_state());
    let Some(input) = prepare() else {
        eprintln!("backtest bench: {RECORDING} missing, nothing measured");
        return;
    };
    let placement = std::env::var("PINION_BENCH_PLACEMENT").unwrap_or_else(|_| "1".to_owned());
    let rounds = rounds();
    eprintln!(
        "backtest bench: {RECORDING}: {} events counted = {} depth level updates ({} diffs \
         applied after the snapshot) + {} trades; {} bookTicker messages only in the full-recording \
         row; hftbacktest gets {} rows",
        input.events,
        input.depth_levels,
        input.depth_messages,
        input.trades,
        input.tickers,
        input.rows.len()
    );
    eprintln!(
        "backtest bench: pinion placement {placement} (configs/backtest-<kind>.toml, input and \
         placement overridden), {rounds} rounds"
    );

    let mut contenders: Vec<Contender<'_>> = Vec::new();
    for kind in KINDS {
        let s = settings(kind, &input.common, &placement);
        contenders.push(Contender {
            name: format!("pinion {kind}"),
            trades: true,
            pass: Box::new(move || pinion_pass(&s)),
        });
    }
    let full = settings("market-making", &input.full, &placement);
    contenders.push(Contender {
        name: "pinion market-making, +bookTicker".to_owned(),
        trades: true,
        pass: Box::new(move || pinion_pass(&full)),
    });
    let mm = settings("market-making", &input.common, &placement);
    let decoded = pinion_engine::pipeline::predecode(&mm).expect("the common input decodes");
    contenders.push(Contender {
        name: "pinion market-making, predecoded".to_owned(),
        trades: true,
        pass: Box::new(move || pinion_decoded_pass(&mm, &decoded)),
    });
    let input_ref = &input;
    contenders.push(Contender {
        name: "pinion read + decode only".to_owned(),
        trades: false,
        pass: Box::new(move || decode_pass(input_ref)),
    });
    contenders.push(Contender {
        name: "hftbacktest market-making".to_owned(),
        trades: true,
        pass: Box::new(move || hft_pass(input_ref)),
    });
    let base = 0;
    let hft = contenders.len() - 1;

    // One unmeasured pass each: warms the page cache and checks that every one trades.
    let first: Vec<Pass> = contenders.iter_mut().map(|c| (c.pass)()).collect();
    for (c, p) in contenders.iter().zip(&first).filter(|(c, _)| c.trades) {
        assert!(p.orders > 0, "{}: no orders", c.name);
        assert!(p.fills > 0, "{}: no fills", c.name);
    }

    let n = contenders.len();
    let mut run = vec![Vec::with_capacity(rounds); n];
    let mut total = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for j in 0..n {
            let i = (round + j) % n;
            let p = (contenders[i].pass)();
            run[i].push(p.run);
            total[i].push(p.total);
        }
    }

    let events = input.events as f64;
    eprintln!(
        "\nbacktest throughput, events/s (median of {rounds} interleaved rounds; ratios = median \
         of the rounds' own ratios, above 1 = faster)"
    );
    eprintln!(
        "{:<36} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "configuration",
        "run",
        "end to end",
        "/imbal.",
        "/hftbt",
        "/imbal.",
        "/hftbt",
        "orders",
        "fills"
    );
    eprintln!(
        "{:<36} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "", "", "", "run", "run", "e2e", "e2e"
    );
    for (i, (c, p)) in contenders.iter().zip(&first).enumerate() {
        eprintln!(
            "{:<36} {:>11.0} {:>11.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>6}",
            c.name,
            events / median(run[i].clone()),
            events / median(total[i].clone()),
            ratio(&run[i], &run[base]),
            ratio(&run[i], &run[hft]),
            ratio(&total[i], &total[base]),
            ratio(&total[i], &total[hft]),
            p.orders,
            p.fills,
        );
    }
    let worst = (1..KINDS.len())
        .map(|i| (ratio(&run[i], &run[base]), &contenders[i].name))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("strategies");
    let mm = ratio(&run[1], &run[hft]);
    eprintln!(
        "\ngoal: every strategy within 20 % of the imbalance pipeline (run ratio >= 0.80): \
         lowest {:.3} ({}) -> {}",
        worst.0,
        worst.1,
        if worst.0 >= 0.8 { "met" } else { "not met" }
    );
    eprintln!(
        "goal: pinion market-making faster than hftbacktest's loop on the same data: run ratio \
         {mm:.3} -> {}",
        if mm > 1.0 { "met" } else { "not met" }
    );
    let decoded = contenders
        .iter()
        .position(|c| c.name.ends_with("predecoded"))
        .map(|i| ratio(&run[i], &run[hft]));
    if let Some(r) = decoded {
        eprintln!(
            "      like for like (both loops on rows decoded in memory beforehand): run ratio \
             {r:.3} -> {}",
            if r > 1.0 { "met" } else { "not met" }
        );
    }
}
