//! What the loopback tests against the exchange simulator share: a simulator over TLS with
//! its certificate on disk, one session at a time, a live config pointing at it, and the
//! report's counters.

#![allow(dead_code)] // Each test binary uses part of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pinion_engine::config::{Config, Overrides};
use pinion_engine::pipeline::{self, BookView, Console, PipelineReport};
use pinion_exchange_sim::SelfSignedTls;
use pinion_exchange_sim::live::{FaultPlan, LiveConfig, LiveExchange, LivePacing, TruthBook};

/// How many simulator sessions of one test binary run at once: `PINION_TEST_SESSIONS`, else 2.
/// A session mostly waits on the simulator's clock (the trade tests use under half a core),
/// so two fit a 2-core machine without measuring the machine rather than the session; more
/// would, and one at a time doubles the wall time of the loopback test binaries.
fn sessions_at_once() -> usize {
    std::env::var("PINION_TEST_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// Sessions running now, against [`sessions_at_once`].
static RUNNING: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// A place among the sessions at once, held until dropped.
pub struct SessionPermit(());

impl SessionPermit {
    pub fn take() -> Self {
        let limit = sessions_at_once();
        let (count, freed) = &RUNNING;
        let mut running = count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *running >= limit {
            running = freed
                .wait(running)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *running += 1;
        SessionPermit(())
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        let mut running = count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *running -= 1;
        freed.notify_one();
    }
}

/// A running simulator and the file holding its certificate.
pub struct Sim {
    pub exchange: LiveExchange,
    pub cert: PathBuf,
    pub dir: TempDir,
    /// Dropped last, after the simulator: a waiting test starts once this one is gone.
    _permit: SessionPermit,
}

/// A directory removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pinion-live-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The simulator serving a recording.
pub fn start_sim(recording: &Path, faults: &str, seed: u64, frames_per_sec: f64) -> Sim {
    let path = recording.to_path_buf();
    start_sim_with(faults, seed, frames_per_sec, move || {
        pinion_feed::source::open(&path)
    })
}

/// The simulator serving the synthetic market (`messages` frames).
pub fn start_synthetic(messages: u64, faults: &str, seed: u64, frames_per_sec: f64) -> Sim {
    start_sim_with(faults, seed, frames_per_sec, move || {
        let config = pinion_feed::synth::SynthConfig {
            seed,
            messages,
            ..pinion_feed::synth::SynthConfig::default()
        };
        let market = pinion_feed::synth::SynthMarket::new(config)
            .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))?;
        Ok(Box::new(market) as Box<dyn pinion_feed::FrameSource + Send>)
    })
}

pub fn start_sim_with(
    faults: &str,
    seed: u64,
    frames_per_sec: f64,
    open: impl Fn() -> Result<Box<dyn pinion_feed::FrameSource + Send>, pinion_feed::SourceError>
    + Send
    + Sync
    + 'static,
) -> Sim {
    start_sim_tuned(faults, seed, frames_per_sec, |_| {}, open)
}

pub fn start_sim_tuned(
    faults: &str,
    seed: u64,
    frames_per_sec: f64,
    tune: impl FnOnce(&mut LiveConfig),
    open: impl Fn() -> Result<Box<dyn pinion_feed::FrameSource + Send>, pinion_feed::SourceError>
    + Send
    + Sync
    + 'static,
) -> Sim {
    // A few sessions at a time: each runs a simulator and a whole pipeline.
    let permit = SessionPermit::take();
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let dir = TempDir::new("sim");
    let cert = dir.0.join("sim-cert.pem");
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");
    let mut config = LiveConfig::spot();
    config.pacing = LivePacing::Rate { frames_per_sec };
    config.start_held = true;
    // Pings keep an idle market's connections alive under the tests' short idle timeout.
    config.ping_interval = Some(Duration::from_millis(1000));
    tune(&mut config);
    config.faults = FaultPlan::parse(faults, seed).expect("fault spec");
    let exchange = LiveExchange::start(
        "127.0.0.1:0".parse().expect("addr"),
        config,
        Some(Arc::clone(&tls.server_config)),
        open,
    )
    .expect("simulator");
    Sim {
        exchange,
        cert,
        dir,
        _permit: permit,
    }
}

/// A live config for the simulator at `addr`, with `extra` `[live]` keys.
pub fn live_config(addr: std::net::SocketAddr, cert: &Path, extra: &str) -> String {
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
read_idle_timeout_ms = 1500
stream_stale_ms = 0
ack_timeout_ms = 1000
{extra}

[placement]
mode = "2"
wait = "park"

[runtime]
progress = false

[[instrument]]
venue = "binance-spot"
symbol = "BTCUSDT"
tick_size = "0.01"
step_size = "0.00001"
qty_decimals = 8
"#,
        port = addr.port(),
        cert = cert.display(),
    )
}

/// Runs `pinion live` on `config` until the simulator has released its whole source and the
/// session has had `settle` to take the rest in; returns the report.
pub fn run_session(sim: &Sim, config: &str, settle: Duration) -> PipelineReport {
    let config =
        Config::parse_with(config, "live-test.toml", &Overrides::default()).expect("config parses");
    let settings = config.validate("live-test.toml").expect("config valid");
    let (settings, _) = pipeline::for_live(settings).expect("live settings");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || pipeline::run(&settings, stop, Console::QUIET))
    };
    // Let the session connect and subscribe before the market opens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    assert!(
        sim.exchange.wait_exhausted(Duration::from_secs(120)),
        "the simulator did not release its whole source in time"
    );
    // Then until the session has been quiet for a second (nothing sent to it, no snapshot,
    // no new session: a late reconnect and resync are done), and at least `settle`.
    let started = Instant::now();
    let activity = |s: &pinion_exchange_sim::live::LiveStats| {
        (
            s.frames_sent,
            s.snapshots_served,
            s.ws_sessions,
            s.control_requests,
        )
    };
    let mut last = activity(&sim.exchange.stats());
    let mut quiet_since = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
        let now = activity(&sim.exchange.stats());
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_secs(1) && started.elapsed() >= settle {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let report = runner
        .join()
        .expect("pipeline thread")
        .expect("the live session ran");
    eprintln!("{}", report.table());
    eprintln!("simulator: {:?}", sim.exchange.stats());
    report
}

pub fn levels(v: &[[String; 2]]) -> Vec<(String, String)> {
    v.iter().map(|[p, q]| (p.clone(), q.clone())).collect()
}

/// The session's book of `symbol` is live and equal to the simulator's, level by level, at the
/// same update id.
pub fn assert_equal_to_truth(books: &[BookView], truth: &TruthBook) {
    assert_top_equal_to_truth(books, truth, usize::MAX);
}

/// As [`assert_equal_to_truth`], for the best `depth` levels per side only: a book built from
/// a snapshot of limited depth knows nothing deeper than the snapshot reached.
pub fn assert_top_equal_to_truth(books: &[BookView], truth: &TruthBook, depth: usize) {
    let book = books
        .iter()
        .find(|b| b.symbol == truth.symbol)
        .unwrap_or_else(|| panic!("no book for {}", truth.symbol));
    assert_eq!(book.state, "live", "{} ended {}", book.symbol, book.state);
    assert_eq!(
        book.last_update_id, truth.last_update_id,
        "{}: update id",
        book.symbol
    );
    let top = |v: Vec<(String, String)>| v.into_iter().take(depth).collect::<Vec<_>>();
    assert_eq!(
        top(levels(&book.bids)),
        top(truth.bids.clone()),
        "{}: bids",
        book.symbol
    );
    assert_eq!(
        top(levels(&book.asks)),
        top(truth.asks.clone()),
        "{}: asks",
        book.symbol
    );
}

pub fn counter(report: &PipelineReport, stage: &str, name: &str) -> u64 {
    report
        .run
        .stages
        .iter()
        .filter(|s| s.stage == stage)
        .flat_map(|s| s.counters.iter())
        .find(|(k, _)| *k == name)
        .map_or(0, |(_, v)| *v)
}

pub fn live_counter(
    report: &PipelineReport,
    read: impl Fn(&pinion_feed::live::LiveCounters) -> u64,
) -> u64 {
    report.input.live.as_deref().map_or(0, read)
}

/// The API key the trading tests' simulated account answers to.
pub const TRADE_API_KEY: &str = "pinionTestKey0123456789abcdefXYZ";

/// An Ed25519 key pair: the PKCS#8 PEM pinion signs with, and the raw public key the
/// simulator checks against.
pub fn ed25519_key() -> (String, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
    (key.serialize_pem(), key.public_key_raw().to_vec())
}

/// The simulator's synthetic market (seed 5, 2000 frames a second, held until released) with
/// the WS API for one account holding 10 BTC and 1 000 000 USDT, checking logons against
/// `public_key`, with `order_faults` in its grammar.
pub fn start_trading_sim(public_key: Vec<u8>, order_faults: &str) -> Sim {
    start_trading_sim_with(public_key, order_faults, |_| {})
}

/// [`start_trading_sim`], the account's config then changed by `tune` (its key profile, its
/// commission).
pub fn start_trading_sim_with(
    public_key: Vec<u8>,
    order_faults: &str,
    tune: impl FnOnce(&mut pinion_exchange_sim::wsapi::WsApiConfig),
) -> Sim {
    start_trading_sim_on(public_key, order_faults, Vec::new(), tune)
}

/// [`start_trading_sim_with`], the synthetic markets `more` served beside BTCUSDT (merged by
/// receive time, one connection each), every symbol tradable on the WS API. The account's
/// balances are `tune`'s to add for their assets.
pub fn start_trading_sim_on(
    public_key: Vec<u8>,
    order_faults: &str,
    more: Vec<pinion_feed::synth::SynthConfig>,
    tune: impl FnOnce(&mut pinion_exchange_sim::wsapi::WsApiConfig),
) -> Sim {
    let faults =
        pinion_exchange_sim::wsapi::OrderFaultPlan::parse(order_faults).expect("order faults");
    start_sim_tuned(
        "",
        5,
        2_000.0,
        |c: &mut LiveConfig| {
            let mut api = pinion_exchange_sim::wsapi::WsApiConfig::new(TRADE_API_KEY);
            api.ed25519_public_key = Some(public_key);
            api.balances = vec![
                ("BTC".to_owned(), "10".to_owned()),
                ("USDT".to_owned(), "1000000".to_owned()),
            ];
            api.faults = faults;
            tune(&mut api);
            c.ws_api = Some(api);
        },
        move || {
            let open = |config: pinion_feed::synth::SynthConfig| {
                pinion_feed::synth::SynthMarket::new(config)
                    .map(|m| Box::new(m) as Box<dyn pinion_feed::FrameSource + Send>)
                    .map_err(|e| pinion_feed::SourceError::Io(std::io::Error::other(e.to_string())))
            };
            let btc = open(pinion_feed::synth::SynthConfig {
                seed: 5,
                messages: 400_000,
                ..pinion_feed::synth::SynthConfig::default()
            })?;
            if more.is_empty() {
                return Ok(btc);
            }
            let mut sources = vec![btc];
            for config in &more {
                sources.push(open(config.clone())?);
            }
            Ok(Box::new(pinion_exchange_sim::MergedSource::new(sources))
                as Box<dyn pinion_feed::FrameSource + Send>)
        },
    )
}

/// A live config trading on `sim`'s WS API with the key from `PINION_TEST_API_KEY` and
/// `PINION_TEST_SECRET`, `[live.orders]` keys `orders` added, and risk limits paced under the
/// venue's 50 orders per 10 s.
pub fn trading_config(sim: &Sim, orders: &str) -> String {
    let addr = sim.exchange.local_addr();
    format!(
        "{}
[live.orders]
ws_api_url = \"wss://localhost:{port}/ws-api/v3\"
key_kind = \"ed25519\"
api_key_env = \"PINION_TEST_API_KEY\"
secret_env = \"PINION_TEST_SECRET\"
{orders}

[risk]
max_order_qty = \"0.01\"
max_notional = \"1000\"
max_position = \"0.1\"
max_open_orders = 10
orders_per_second = 3
order_burst = 5
price_band_bps = 50
",
        live_config(addr, &sim.cert, ""),
        port = addr.port(),
    )
}

/// A market-making strategy whose quotes rest (so a session leaves orders open at the
/// exchange) and fill as the simulator's market moves: appended to [`trading_config`]'s text.
pub const RESTING_QUOTES: &str = "
[strategy]
kind = \"market-making\"
order_qty = \"0.001\"

[strategy.market_making]
fair = \"mid\"
half_spread_bps = 0.5
skew_bps = 0.0
requote_bps = 2.0
levels = 1
level_step_bps = 0.5
";

/// Two strategy instances on the one instrument, each with a budget of its own: two market
/// makers quoting a hair either side of their fair price, one at the mid, one at the
/// microprice. When the book leans, the second's bid is above the first's ask (or its ask
/// below the first's bid): those quotes would trade with each other.
pub const TWO_INSTANCES: &str = "
[[strategy]]
name = \"mid\"
kind = \"market-making\"
order_qty = \"0.001\"
[strategy.market_making]
fair = \"mid\"
half_spread_bps = 0.001
skew_bps = 0.0
requote_bps = 0.5
levels = 1
[strategy.risk]
max_position = \"0.002\"
orders_per_second = 2
order_burst = 3

[[strategy]]
name = \"micro\"
kind = \"market-making\"
order_qty = \"0.001\"
[strategy.market_making]
fair = \"microprice\"
half_spread_bps = 0.001
skew_bps = 0.0
requote_bps = 0.5
levels = 1
[strategy.risk]
max_position = \"0.003\"
orders_per_second = 2
order_burst = 3
";
