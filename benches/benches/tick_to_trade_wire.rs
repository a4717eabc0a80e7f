//! Wire-to-wire tick-to-trade on loopback: from the moment the exchange simulator writes a market
//! frame to the moment it reads the `order.place` that frame caused, with pinion's whole live
//! path in between — TLS WebSocket feed, decoder, book, strategy, risk, the Binance venue's
//! request encoding and its send over the simulator's WS API (a session logged on with
//! Ed25519, so orders carry no signature of their own).
//!
//! Each round starts a fresh simulator (`LiveExchange`, the synthetic BTCUSDT market paced at a
//! fixed rate, the WS API on) and a fresh `pinion live --trade` session in this process
//! (`pinion_engine::pipeline`, placement `2`: market thread = feed + book, trading thread =
//! strategy + gateway), runs the market for the round's frames and stops both. Then the host's
//! own stalls are measured on the same cores for as long as the market ran (`pinion jitter`):
//! the floor under any latency here, taken interleaved with the rounds so it sees the same
//! machine.
//!
//! **One clock.** The simulator stamps with pinion's engine clock
//! ([`now_ns`](pinion_engine::runtime::now_ns), the clock of `t0` and of every pinion latency
//! figure), handed to its wire tap ([`WireTap`]): every market frame as it is written to the
//! session's socket, every `order.place` as its frame has been read (by `newClientOrderId`). So
//! no conversion between clocks is needed and no drift enters the differences.
//!
//! **Which frame caused an order.** pinion's account summary gives each order's `t0`: when the
//! feed stage had in hand the frame the decision was made on. The cause is the latest frame
//! written at or before `t0 − L`, where `L` is the round's smallest `t0 − write` over its orders
//! (a frame written less than `L` before `t0` cannot have been read by then; `L` is at most the
//! true minimum, so the true cause is never excluded). A frame whose trip took longer than the
//! gap to the next frame is still mistaken for that next one, and its figure comes out shorter
//! by about a gap (or several): the `in` tail below cannot go much past the frame gap, printed
//! beside it. The `out` part does not depend on the attribution.
//!
//! Figures per round (after its first few orders), then the median over rounds of each:
//!
//! - **wire-to-wire**: sim read − write of the causing frame (the headline);
//! - **in** (write → `t0`): the simulator's TLS write, loopback, pinion's wake-up, read, TLS and
//!   WebSocket framing, until the feed stage has the frame (depends on the attribution);
//! - **out** (`t0` → sim read): decode, book, hop, strategy, risk, encode, TLS write, loopback,
//!   the simulator's wake-up and read (exact: no attribution);
//! - **pinion tick_to_trade**: pinion's own histogram (`t0` → the order handed to the venue),
//!   which counts cancels too;
//! - **jitter**: per core, the wait of a random arrival (p50, p99) and the longest stall.
//!
//! A round that measured too few orders does not count: it is reported with what the venue and
//! the exchange saw and replaced, up to a few times. The usual cause is the strategy stopping
//! early (its one working order never closed, so no new one could go); a starved host is the
//! other.
//!
//! Run: `cargo bench -p pinion-benches --bench tick_to_trade_wire`. Options after `--`:
//! `--quick` for a short smoke run (also what `cargo test --benches` runs); `--wait park`,
//! `spin-then-yield` or `busy-spin` for the pipeline threads' wait (default spin-then-yield,
//! the setting for a shared host); `--tables` to print each session's own report; `--rate N` for N market frames a second instead of 2000 (a
//! wider gap between frames leaves less room for mistaking the cause). Results: a table on
//! stdout and `target/tick-to-trade-wire-bench.json`. On a shared machine the absolute numbers
//! say little; read them against the jitter floor beside them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pinion_engine::config::{Config, Overrides};
use pinion_engine::host::jitter;
use pinion_engine::latency::format_ns;
use pinion_engine::pipeline::{self, Console, PipelineReport};
use pinion_engine::runtime::placement::allowed_cores;
use pinion_engine::runtime::{clock, now_ns};
use pinion_exchange_sim::SelfSignedTls;
use pinion_exchange_sim::live::{LiveConfig, LiveExchange, LivePacing, WireTap};
use pinion_exchange_sim::wsapi::WsApiConfig;
use pinion_gateway::binance::sign::Signer;
use serde_json::json;

/// The simulator's API key (checked by name only: the account is simulated).
const API_KEY: &str = "pinionBenchKey0123456789abcdefXYZ";
/// A throwaway Ed25519 test key (also in the gateway's tests), never registered anywhere.
const TEST_ONLY_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOL9C+S9+YZx6b7Tpmdlq0xLkyBRN5MlJOEAvMrD+oD/
-----END PRIVATE KEY-----
";
/// Where the session reads the key from, as `[live.orders]` names them.
const KEY_ENV: &str = "PINION_BENCH_W2W_API_KEY";
const SECRET_ENV: &str = "PINION_BENCH_W2W_SECRET";

/// The run's settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Rounds that count.
    rounds: usize,
    /// Rounds with fewer measured orders than this do not count (see [`Round::stalled`]).
    min_orders: u64,
    /// Market frames per second (fixed gap).
    frames_per_sec: f64,
    /// How long the market runs per round; the jitter measurement after it runs as long.
    market: Duration,
}

const FULL: Settings = Settings {
    rounds: 7,
    min_orders: 50,
    frames_per_sec: 2_000.0,
    market: Duration::from_millis(1_200),
};

const QUICK: Settings = Settings {
    rounds: 2,
    min_orders: 20,
    frames_per_sec: 2_000.0,
    market: Duration::from_millis(1_000),
};

/// Rounds run at most beyond `rounds`, to replace stalled ones.
const EXTRA_ROUNDS: usize = 3;

/// Orders at the start of each round left out of the wire figures (first writes on fresh
/// connections, first page touches); pinion's own histogram cannot leave them out.
const WARM_UP_ORDERS: usize = 10;

/// The Binance venue's order table keeps every order of a session and refuses new ones once it
/// holds this many (`OrderTableConfig`'s default); a round must stay below it, or the refused
/// orders, never sent, would enter pinion's own tick-to-trade histogram.
const VENUE_TABLE: usize = 256;

/// p50, p99, max and count of one series.
#[derive(Debug, Clone, Copy, Default)]
struct Pct {
    p50: u64,
    p99: u64,
    max: u64,
    count: u64,
}

impl Pct {
    /// Nearest-rank percentiles of `v` (sorted here).
    fn of(mut v: Vec<u64>) -> Pct {
        v.sort_unstable();
        let at = |q: f64| {
            if v.is_empty() {
                return 0;
            }
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        Pct {
            p50: at(0.50),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(0),
            count: v.len() as u64,
        }
    }
}

/// What one round measured.
#[derive(Debug, Clone)]
struct Round {
    wire: Pct,
    inbound: Pct,
    outbound: Pct,
    tick_to_trade: Pct,
    /// The attribution guard `L`, ns.
    guard_ns: u64,
    /// Orders the simulator read that pinion's summary did not have (or had no `t0` for).
    unmatched: u64,
    /// Orders with no frame written before their `t0`.
    unattributed: u64,
    frames: u64,
    /// Per jitter core: (core, p50 wait, p99 wait, longest stall).
    jitter: Vec<(usize, u64, u64, u64)>,
    /// What the venue saw (orders, those not closed, its last error): said when the round
    /// measured too few orders to count.
    stalled: Option<String>,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke run then.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let mut settings = if quick { QUICK } else { FULL };
    if let Some(rate) = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse::<f64>().ok())
        .filter(|r| r.is_finite() && *r >= 10.0)
    {
        settings.frames_per_sec = rate;
    }
    let wait = args
        .iter()
        .position(|a| a == "--wait")
        .and_then(|i| args.get(i + 1))
        .map_or("spin-then-yield", String::as_str)
        .to_owned();
    // SAFETY: set before any other thread of this process exists (the clock's calibration and
    // every simulator and pipeline thread start below), so nothing reads the environment
    // concurrently. The session's venue reads its key from these, as `pinion live` does.
    unsafe {
        std::env::set_var(KEY_ENV, API_KEY);
        std::env::set_var(SECRET_ENV, TEST_ONLY_ED25519_PEM);
    }
    clock::start();
    println!("host: {}", pinion_benches::host_state());
    println!(
        "wire-to-wire tick-to-trade, loopback TLS, placement 2 (wait {wait}), {} rounds of {:.1} s at {} frames/s (gap {}), jitter {:.1} s after each",
        settings.rounds,
        settings.market.as_secs_f64(),
        settings.frames_per_sec,
        format_ns((1e9 / settings.frames_per_sec) as u64),
        settings.market.as_secs_f64(),
    );
    let public = Signer::ed25519_pem(TEST_ONLY_ED25519_PEM)
        .expect("test key")
        .ed25519_public_key()
        .expect("an Ed25519 key")
        .to_vec();
    let allowed = allowed_cores();
    let cores: Vec<usize> = allowed.iter().copied().take(2).collect();
    let mut rounds = Vec::with_capacity(settings.rounds);
    let mut stalled = Vec::new();
    for n in 0..settings.rounds + EXTRA_ROUNDS {
        if rounds.len() == settings.rounds {
            break;
        }
        let mut round = run_round(&settings, n as u64, &public, &wait);
        let floor = jitter::measure(
            &cores,
            &allowed,
            settings.market,
            jitter::DEFAULT_MIN_GAP_NS,
        );
        round.jitter = floor
            .iter()
            .map(|r| {
                (
                    r.core,
                    r.wait_quantile(0.50),
                    r.wait_quantile(0.99),
                    r.max_gap_ns(),
                )
            })
            .collect();
        println!(
            "round {n}: {} orders, wire p50 {} p99 {}, in p50 {}, out p50 {}, tick_to_trade p50 {}, guard {}, {} frames",
            round.wire.count,
            format_ns(round.wire.p50),
            format_ns(round.wire.p99),
            format_ns(round.inbound.p50),
            format_ns(round.outbound.p50),
            format_ns(round.tick_to_trade.p50),
            format_ns(round.guard_ns),
            round.frames,
        );
        if round.wire.count < settings.min_orders {
            let why = round.stalled.take().unwrap_or_default();
            println!(
                "round {n}: {} orders measured, fewer than {}, not counted: {why}",
                round.wire.count, settings.min_orders
            );
            stalled.push(why);
        } else {
            rounds.push(round);
        }
    }
    report(&settings, &wait, &rounds, &stalled);
}

/// One simulator and one session: the round's orders matched to their frames.
fn run_round(settings: &Settings, n: u64, public: &[u8], wait: &str) -> Round {
    let frames = (settings.frames_per_sec * settings.market.as_secs_f64()) as u64;
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("pinion-w2w-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert = dir.join("sim-cert.pem");
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");

    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::Rate {
        frames_per_sec: settings.frames_per_sec,
    };
    config.start_held = true;
    config.ping_interval = Some(Duration::from_secs(1));
    let mut api = WsApiConfig::new(API_KEY);
    api.ed25519_public_key = Some(public.to_vec());
    api.balances = vec![
        ("BTC".to_owned(), "1000".to_owned()),
        ("USDT".to_owned(), "100000000".to_owned()),
    ];
    // The bench measures latency, not the account's order budget.
    api.orders_per_10s = 1_000_000;
    api.orders_per_day = 100_000_000;
    config.ws_api = Some(api);
    let seed = 21 + n;
    let exchange = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(Arc::clone(&tls.server_config)),
        move || {
            let config = pinion_feed::synth::SynthConfig {
                seed,
                messages: frames,
                ..pinion_feed::synth::SynthConfig::default()
            };
            let market = pinion_feed::synth::SynthMarket::new(config)
                .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))?;
            Ok(Box::new(market) as Box<dyn pinion_feed::FrameSource + Send>)
        },
    )
    .expect("simulator");
    let tap = Arc::new(WireTap::new(now_ns, frames as usize + 4_096, 1 << 16));
    assert!(exchange.tap_wire(Arc::clone(&tap)), "a fresh simulator");

    let text = session_config(&exchange, &cert, wait);
    let parsed =
        Config::parse_with(&text, "w2w-bench.toml", &Overrides::default()).expect("config parses");
    let mut session = parsed.validate("w2w-bench.toml").expect("config valid");
    if let Some(live) = session.live.as_mut() {
        live.trade = true;
    }
    let (session, _) = pipeline::for_live(session).expect("live settings");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || pipeline::run(&session, stop, Console::QUIET))
    };
    // The market opens once the session has subscribed (and its venue has had a moment to
    // log on).
    let deadline = Instant::now() + Duration::from_secs(20);
    while exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    exchange.release();
    assert!(
        exchange.wait_exhausted(settings.market * 4 + Duration::from_secs(10)),
        "the simulator did not release its market in time"
    );
    // The last frames' orders.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let report = runner
        .join()
        .expect("pipeline thread")
        .expect("the session ran");
    if std::env::args().any(|a| a == "--tables") {
        println!("{}", report.table());
    }
    let mut round = attribute(&tap, &report);
    if let Some(why) = round.stalled.as_mut() {
        // The exchange's side of the orders pinion still had open.
        for o in exchange.sim_account().orders {
            if why.contains(&o.client_order_id) {
                why.push_str(&format!(
                    "; the exchange has {} {} executed {} of {}",
                    o.client_order_id, o.status, o.executed_qty, o.orig_qty
                ));
            }
        }
    }
    drop(exchange);
    let _ = std::fs::remove_dir_all(&dir);
    round
}

/// `pinion live --trade`'s config against the simulator: placement 2, the imbalance strategy
/// turning its order over quickly (a short stale time), risk limits that do not bind.
fn session_config(exchange: &LiveExchange, cert: &std::path::Path, wait: &str) -> String {
    let port = exchange.local_addr().port();
    format!(
        r#"
[live]
venue = "binance-spot"
ws_url = "wss://localhost:{port}/stream"
rest_url = "https://localhost:{port}"
symbols = ["BTCUSDT"]
streams = ["depth@100ms", "bookTicker", "trade"]
ca_file = "{cert}"
reconnect_base_ms = 20
reconnect_cap_ms = 500
read_idle_timeout_ms = 3000
stream_stale_ms = 0
ack_timeout_ms = 2000

[live.orders]
ws_api_url = "wss://localhost:{port}/ws-api/v3"
key_kind = "ed25519"
api_key_env = "{KEY_ENV}"
secret_env = "{SECRET_ENV}"
recv_window_ms = 5000
answer_timeout_ms = 2000
query_after_ms = 3000

[placement]
mode = "2"
wait = "{wait}"

[runtime]
progress = false

[strategy]
kind = "imbalance"
levels = 5
threshold = 0.3
order_qty = "0.001"
stale_after_ms = 5

[risk]
max_order_qty = "0.01"
max_notional = "1000"
max_position = "10"
max_open_orders = 10
orders_per_second = 1000
order_burst = 100
price_band_bps = 50

[[instrument]]
venue = "binance-spot"
symbol = "BTCUSDT"
tick_size = "0.01"
step_size = "0.00001"
qty_decimals = 8
"#,
        cert = cert.display(),
    )
}

/// Matches the simulator's order reads to pinion's orders by client id, and each to the frame
/// that caused it (see the module docs).
fn attribute(tap: &WireTap, report: &PipelineReport) -> Round {
    let mut frames = tap.frames();
    frames.sort_unstable();
    let mut t0_of = std::collections::HashMap::new();
    let mut stalled = None;
    for slot in &report.input.accounts {
        if let Some(summary) = slot.lock().ok().and_then(|s| s.clone()) {
            if summary.orders.len() >= VENUE_TABLE {
                eprintln!(
                    "warning: the venue's order table filled ({} orders): shorten the round",
                    summary.orders.len()
                );
            }
            let open: Vec<String> = summary
                .orders
                .iter()
                .filter(|o| !o.state.is_final())
                .map(|o| format!("{} {:?}", o.client_order_id, o.state))
                .collect();
            stalled = Some(format!(
                "{} orders; not closed: [{}]; the venue's last error {}, bad frames {}, ready {}",
                summary.orders.len(),
                open.join(", "),
                summary.session.last_error,
                summary.session.bad_frames,
                summary.session.ready,
            ));
            for o in summary.orders {
                if o.t0 != 0 {
                    t0_of.insert(o.client_order_id, o.t0);
                }
            }
        }
    }
    let mut reads = tap.orders();
    reads.sort_unstable_by_key(|r| r.at);
    let mut unmatched = 0;
    let mut pairs = Vec::with_capacity(reads.len());
    for r in reads.iter().skip(WARM_UP_ORDERS) {
        match t0_of.get(r.client_order_id()) {
            Some(&t0) if t0 <= r.at => pairs.push((t0, r.at)),
            _ => unmatched += 1,
        }
    }
    // The latest frame written at or before `t`.
    let before = |t: u64| {
        let i = frames.partition_point(|&w| w <= t);
        i.checked_sub(1).map(|i| frames[i])
    };
    let guard_ns = pairs
        .iter()
        .filter_map(|&(t0, _)| before(t0).map(|w| t0 - w))
        .min()
        .unwrap_or(0);
    let (mut wire, mut inbound, mut outbound) = (Vec::new(), Vec::new(), Vec::new());
    let mut unattributed = 0;
    for &(t0, read) in &pairs {
        let Some(w) = before(t0.saturating_sub(guard_ns)) else {
            unattributed += 1;
            continue;
        };
        wire.push(read - w);
        inbound.push(t0 - w);
        outbound.push(read - t0);
    }
    let tick_to_trade = report
        .latency
        .get("tick_to_trade")
        .map(|h| Pct {
            p50: h.hist.value_at_quantile(0.50),
            p99: h.hist.value_at_quantile(0.99),
            max: h.hist.max(),
            count: h.hist.len(),
        })
        .unwrap_or_default();
    if tap.dropped() > 0 {
        eprintln!("warning: the wire tap dropped {} stamps", tap.dropped());
    }
    Round {
        wire: Pct::of(wire),
        inbound: Pct::of(inbound),
        outbound: Pct::of(outbound),
        tick_to_trade,
        guard_ns,
        unmatched,
        unattributed,
        frames: frames.len() as u64,
        jitter: Vec::new(),
        stalled,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn report(settings: &Settings, wait: &str, rounds: &[Round], stalled: &[String]) {
    let med = |f: &dyn Fn(&Round) -> u64| median(rounds.iter().map(f).collect());
    type Pick = fn(&Round) -> Pct;
    let series: [(&str, Pick); 4] = [
        ("wire-to-wire (sim write → sim read)", |r| r.wire),
        ("  in: write → t0", |r| r.inbound),
        ("  out: t0 → sim read", |r| r.outbound),
        ("pinion tick_to_trade (t0 → venue)", |r| r.tick_to_trade),
    ];
    println!();
    println!(
        "{:<38} {:>10} {:>10} {:>10} {:>8}",
        "median over rounds", "p50", "p99", "max", "count"
    );
    let mut json_series = serde_json::Map::new();
    for (name, f) in &series {
        let p50 = med(&|r| f(r).p50);
        let p99 = med(&|r| f(r).p99);
        let max = med(&|r| f(r).max);
        let count: u64 = rounds.iter().map(|r| f(r).count).sum();
        println!(
            "{:<38} {:>10} {:>10} {:>10} {:>8}",
            name,
            format_ns(p50),
            format_ns(p99),
            format_ns(max),
            count
        );
        json_series.insert(
            name.trim().to_owned(),
            json!({
                "p50_ns": p50, "p99_ns": p99, "max_ns": max, "count": count,
                "per_round_p50_ns": rounds.iter().map(|r| f(r).p50).collect::<Vec<_>>(),
                "per_round_p99_ns": rounds.iter().map(|r| f(r).p99).collect::<Vec<_>>(),
            }),
        );
    }
    let n_cores = rounds.first().map_or(0, |r| r.jitter.len());
    let mut json_jitter = Vec::new();
    for c in 0..n_cores {
        let core = rounds[0].jitter[c].0;
        let p50 = med(&|r| r.jitter.get(c).map_or(0, |j| j.1));
        let p99 = med(&|r| r.jitter.get(c).map_or(0, |j| j.2));
        let max = med(&|r| r.jitter.get(c).map_or(0, |j| j.3));
        println!(
            "{:<38} {:>10} {:>10} {:>10} {:>8}",
            format!("jitter floor, core {core} (wait, stall)"),
            format_ns(p50),
            format_ns(p99),
            format_ns(max),
            "-"
        );
        json_jitter.push(
            json!({"core": core, "wait_p50_ns": p50, "wait_p99_ns": p99, "max_stall_ns": max}),
        );
    }
    let unmatched: u64 = rounds.iter().map(|r| r.unmatched).sum();
    let unattributed: u64 = rounds.iter().map(|r| r.unattributed).sum();
    println!(
        "attribution guard L (median) {}; orders read but not matched {unmatched}, without a frame before t0 {unattributed}; frame gap {}",
        format_ns(med(&|r| r.guard_ns)),
        format_ns((1e9 / settings.frames_per_sec) as u64),
    );
    if !stalled.is_empty() {
        println!(
            "{} round(s) had too few orders and were replaced (see above)",
            stalled.len()
        );
    }
    let out = json!({
        "rounds": rounds.len(),
        "stalled_rounds": stalled,
        "frames_per_sec": settings.frames_per_sec,
        "market_secs": settings.market.as_secs_f64(),
        "placement": "2",
        "wait": wait,
        "series": json_series,
        "jitter": json_jitter,
        "guard_ns_median": med(&|r| r.guard_ns),
        "unmatched": unmatched,
        "unattributed": unattributed,
    });
    let path = target_dir().join("tick-to-trade-wire-bench.json");
    match serde_json::to_string_pretty(&out).map(|t| std::fs::write(&path, t)) {
        Ok(Ok(())) => println!("results written to {}", path.display()),
        Ok(Err(e)) => eprintln!("could not write {}: {e}", path.display()),
        Err(e) => eprintln!("could not serialise the results: {e}"),
    }
}

/// The workspace's `target/`.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
}
