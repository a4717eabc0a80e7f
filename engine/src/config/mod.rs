//! The engine's configuration: TOML read with serde, every table `deny_unknown_fields`, then
//! checked as a whole by [`Config::validate`], which reports every problem at once with the
//! file and the key (`replay.toml: placement.threads[1].core: core 7 does not exist (2 cores)`)
//! and turns the raw text fields into typed [`Settings`].
//!
//! Invariants: a mistyped key is an error, never a silent default; the defaults that apply when
//! a key is left out are the ones written in `configs/replay.toml`, which spells out every key.
//! Command-line flags override keys through [`Overrides`] (`placement.mode=2`), applied on the
//! TOML value tree before the typed parse, so an override is checked exactly like the file.

mod bot;
mod exit;
mod live;
mod money;
mod ops;
mod overrides;
mod protection;
mod settings;
mod sim;
mod strategies;
mod trading;
mod units;
mod validate;
mod watch;

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

pub use bot::{BotConfig, BotSettings};
pub use exit::ExitConfig;
pub use live::LiveConfig;
pub use money::{
    BacktestConfig, BacktestSpec, FeeSchedule, FeesConfig, MAX_RECORDED, VenueFeesConfig,
};
pub use ops::{
    HISTORY_POSTGRES_SECRET, HistoryConfig, HistoryPostgres, JournalConfig, LogConfig,
    MAX_JOURNAL_CAPACITY, MAX_LOG_CAPACITY,
};
pub use overrides::{Override, Overrides};
pub use protection::{ProtectMode, ProtectionConfig};
pub use settings::{
    InputSpec, InstrumentSource, LiveSettings, MetricsSettings, OrderEntrySettings, PacingSpec,
    PlacementSpec, Settings, StageKind, ThreadSpec,
};
pub use sim::{LatencyConfig, MAX_SIM_LATENCY_US, SimSpec, parse_queue_model};
pub use strategies::{
    GridConfig, MarketMakingConfig, MomentumConfig, PairsConfig, QuoteChaseConfig,
    SpreadCaptureConfig,
};
pub use trading::{
    DeriskSpec, FlattenSpec, GridSpec, ImbalanceSpec, InstanceSpec, LossSpec, MarketMakingSpec,
    MomentumSpec, MoneyRules, OnLossLimit, PairsSpec, QuoteChaseSpec, RiskSpec, SizingSpec,
    SpreadCaptureSpec, StrategyParams, StrategySpec, TradingSpec, VenueSpec, names_instrument,
};
pub use units::{with_px_decimals, with_qty_decimals};
pub use validate::{MAX_RING_CAPACITY, default_data_dir, machine_cores};
pub use watch::{HeartbeatConfig, WatchdogConfig};

/// The default main job, embedded so `pinion replay` needs no other file.
pub const REPLAY_TOML: &str = include_str!("../../../configs/replay.toml");

/// The name the embedded config is reported under.
pub const REPLAY_TOML_NAME: &str = "replay.toml";

/// One problem found in a config: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key (`placement.threads[1].core`), or empty for the file as a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Everything wrong with a config, all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name (or `replay.toml` for the embedded one).
    pub origin: String,
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.key.is_empty() {
                write!(f, "{}: {}", self.origin, p.message)?;
            } else {
                write!(f, "{}: {}: {}", self.origin, p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl ConfigError {
    fn single(origin: &str, key: &str, message: String) -> Self {
        Self {
            origin: origin.to_owned(),
            problems: vec![Problem {
                key: key.to_owned(),
                message,
            }],
        }
    }
}

/// The whole config file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to replay.
    #[serde(default)]
    pub input: InputConfig,
    /// How fast to release recorded frames.
    #[serde(default)]
    pub pacing: PacingConfig,
    /// The built-in synthetic market (input `synthetic`).
    #[serde(default)]
    pub synthetic: SyntheticConfig,
    /// Which stages run on which threads and cores, and how idle threads wait.
    #[serde(default)]
    pub placement: PlacementConfig,
    /// Ring sizes between stages.
    #[serde(default)]
    pub rings: RingConfig,
    /// Process-wide runtime settings.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// The strategy and its parameters: one `[strategy]` table, or several instances as
    /// `[[strategy]]` tables (the first here, the others in [`StrategyConfig::more`]).
    #[serde(default, deserialize_with = "one_or_more_strategies")]
    pub strategy: StrategyConfig,
    /// Pre-trade risk limits (strategy stage) and hard limits (gateway).
    #[serde(default)]
    pub risk: RiskConfig,
    /// The simulated venue.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Instruments defined by hand.
    #[serde(default, rename = "instrument")]
    pub instruments: Vec<InstrumentConfig>,
    /// Exchange instrument lists to load specs from.
    #[serde(default)]
    pub exchange_info: Vec<ExchangeInfoConfig>,
    /// Where the final report goes.
    #[serde(default)]
    pub report: ReportConfig,
    /// Fee rates per venue.
    #[serde(default)]
    pub fees: FeesConfig,
    /// `[protection]`: stop-loss, take-profit and trailing stop held by the engine.
    #[serde(default)]
    pub protection: ProtectionConfig,
    /// `[exit]`: what a live trading run does with its open orders when it stops.
    #[serde(default)]
    pub exit: ExitConfig,
    /// `[watchdog]`: systemd's watchdog, fed while every stage thread makes progress.
    #[serde(default)]
    pub watchdog: WatchdogConfig,
    /// `[heartbeat]`: an outbound HTTPS ping while every stage thread makes progress.
    #[serde(default)]
    pub heartbeat: Option<HeartbeatConfig>,
    /// How `pinion backtest` samples and measures a run.
    #[serde(default)]
    pub backtest: BacktestConfig,
    /// Live market data (`pinion live`).
    #[serde(default)]
    pub live: Option<LiveConfig>,
    /// The metrics endpoint and the periodic status line.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The structured log.
    #[serde(default)]
    pub log: LogConfig,
    /// The trade-history file.
    #[serde(default)]
    pub history: HistoryConfig,
    /// The trading journal of `pinion live --trade` (absent: none).
    #[serde(default)]
    pub journal: Option<JournalConfig>,
    /// The operator bot (`[bot]`; absent: no bot).
    #[serde(default)]
    pub bot: Option<BotConfig>,
}

/// `[input]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// `"synthetic"`, or the path of a recording in any format `pinion_feed::source::open`
    /// reads (told from the content), or `-` for standard input.
    #[serde(default = "default_source")]
    pub source: String,
    /// The venue of connections the recording does not name (`binance-spot`, …).
    #[serde(default)]
    pub venue: Option<String>,
    /// Stop after this many records (0 = the whole input).
    #[serde(default)]
    pub max_records: u64,
    /// The directory relative `exchange_info` paths are read from; empty = the shared data
    /// directory (`$PINION_DATA_DIR` or `../shared/data`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Decompress a compressed recording (gzip, zstd, zip) on a helper thread ahead of the
    /// feed, rather than on the feed's own thread.
    #[serde(default = "default_read_ahead")]
    pub read_ahead: bool,
}

fn default_source() -> String {
    "synthetic".to_owned()
}

fn default_read_ahead() -> bool {
    true
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            source: default_source(),
            venue: None,
            max_records: 0,
            data_dir: None,
            read_ahead: default_read_ahead(),
        }
    }
}

/// `[pacing]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingConfig {
    /// `"max"` (as fast as possible) or `"paced"`.
    #[serde(default = "default_pacing_mode")]
    pub mode: String,
    /// Paced: recorded inter-arrival times are divided by this (2.0 = twice as fast).
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Paced: a fixed rate in records per second instead of the recorded times (0 = off).
    #[serde(default)]
    pub rate: u64,
    /// Paced: the longest wait for one frame, ms; a longer gap in the recording (a quiet
    /// night, a capture paused and resumed) is cut to it and counted (0 = no cap).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

fn default_max_wait_ms() -> u64 {
    1_000
}

fn default_pacing_mode() -> String {
    "paced".to_owned()
}

fn default_speed() -> f64 {
    1.0
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            mode: default_pacing_mode(),
            speed: default_speed(),
            rate: 0,
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

/// `[synthetic]`: the built-in market.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Seed of the deterministic generator.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Records to generate (after the connect and the snapshot).
    #[serde(default = "default_synth_records")]
    pub records: u64,
    /// Recorded time between records, ns (what `paced` replays at speed 1).
    #[serde(default = "default_synth_interval")]
    pub interval_ns: u64,
}

fn default_seed() -> u64 {
    7
}

fn default_synth_records() -> u64 {
    200_000
}

fn default_synth_interval() -> u64 {
    20_000
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: default_seed(),
            records: default_synth_records(),
            interval_ns: default_synth_interval(),
        }
    }
}

/// `[placement]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// `"1"` (all four stages fused on one thread), `"2"` (feed+book | strategy+gateway),
    /// `"4"` (one thread per stage), or `"custom"` (the `threads` list).
    #[serde(
        default = "default_placement_mode",
        deserialize_with = "string_or_integer"
    )]
    pub mode: String,
    /// Cores for the preset modes' threads, in thread order (empty = not pinned).
    #[serde(default)]
    pub cores: Vec<usize>,
    /// The wait strategy of every thread that does not name its own: `"busy-spin"`,
    /// `"spin-then-yield"` or `"park"`.
    #[serde(default = "default_wait")]
    pub wait: String,
    /// `spin-then-yield`: spins before each yield.
    #[serde(default = "default_spins")]
    pub spins: u32,
    /// `park`: the longest park, µs.
    #[serde(default = "default_park_us")]
    pub park_timeout_us: u32,
    /// `custom`: the threads.
    #[serde(default)]
    pub threads: Vec<ThreadConfig>,
}

/// Accepts `mode = "2"` and `mode = 2` alike: both are natural to write.
fn string_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(i64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(s) => s,
        Either::Number(n) => n.to_string(),
    })
}

fn default_placement_mode() -> String {
    "2".to_owned()
}

fn default_wait() -> String {
    "spin-then-yield".to_owned()
}

fn default_spins() -> u32 {
    1_000
}

fn default_park_us() -> u32 {
    50
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            mode: default_placement_mode(),
            cores: Vec::new(),
            wait: default_wait(),
            spins: default_spins(),
            park_timeout_us: default_park_us(),
            threads: Vec::new(),
        }
    }
}

/// `[[placement.threads]]`: one thread of a custom placement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadConfig {
    /// The thread's name (shown in reports and by the OS).
    pub name: String,
    /// The core to pin it to (none = not pinned).
    #[serde(default)]
    pub core: Option<usize>,
    /// Its wait strategy (none = `placement.wait`).
    #[serde(default)]
    pub wait: Option<String>,
    /// The stages it runs, in data order: `feed`, `book`, `strategy`, `gateway`.
    pub stages: Vec<String>,
}

/// `[rings]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingConfig {
    /// Slots of every ring (a power of two).
    #[serde(default = "default_ring_capacity")]
    pub capacity: usize,
}

fn default_ring_capacity() -> usize {
    4096
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            capacity: default_ring_capacity(),
        }
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Lock all memory (`mlockall`) at start-up where allowed.
    #[serde(default)]
    pub mlockall: bool,
    /// `SCHED_FIFO` priority for pinned threads (none = normal scheduling).
    #[serde(default)]
    pub realtime_priority: Option<i32>,
    /// Show a progress bar on stderr for runs longer than a second or so.
    #[serde(default = "default_true")]
    pub progress: bool,
}

fn default_true() -> bool {
    true
}

/// `[metrics]`: the Prometheus endpoint and the status line, both off unless asked for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Local address to serve `/metrics`, `/health` and `/ready` on (`127.0.0.1:9464`); left
    /// out: no endpoint.
    #[serde(default)]
    pub listen: Option<String>,
    /// Seconds between one-line status reports on stderr (0 = none).
    #[serde(default)]
    pub status_interval_s: u64,
}

/// `strategy` as written: one `[strategy]` table, or an array of `[[strategy]]` tables whose
/// first becomes the config's `strategy` and the rest its [`StrategyConfig::more`]. Each table
/// is read as its own, so a mistake is reported with its key.
fn one_or_more_strategies<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<StrategyConfig, D::Error> {
    struct OneOrMore;
    impl<'de> serde::de::Visitor<'de> for OneOrMore {
        type Value = StrategyConfig;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a [strategy] table or [[strategy]] tables")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> Result<StrategyConfig, A::Error> {
            StrategyConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<StrategyConfig, A::Error> {
            let mut first: StrategyConfig = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(0, &"at least one [[strategy]]"))?;
            while let Some(more) = seq.next_element::<StrategyConfig>()? {
                first.more.push(more);
            }
            Ok(first)
        }
    }
    d.deserialize_any(OneOrMore)
}

/// `[strategy]`, or one `[[strategy]]` instance of several.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// The instance's name in reports, metrics, the history and the bot (`[[strategy]]`:
    /// required and unique; a lone `[strategy]` is named after its kind).
    #[serde(default)]
    pub name: Option<String>,
    /// The symbols this instance trades (left out: every instrument that has a book), each
    /// bare (`"BTCUSDT"`, on any venue) or with its venue (`"bybit-spot:BTCUSDT"`).
    #[serde(default)]
    pub instruments: Option<Vec<String>>,
    /// `[strategy.risk]`: the instance's own budget, checked before the account's `[risk]`
    /// limits (which then hold for the net of every instance); each key left out is the
    /// account's, and `[strategy.risk.sizing]` left out is the instrument's sizing.
    #[serde(default)]
    pub risk: Option<InstanceRiskConfig>,
    /// `"imbalance"`, `"market-making"`, `"spread-capture"`, `"quote-chase"`, `"momentum"`,
    /// `"grid"` or `"pairs"`.
    #[serde(default = "default_strategy_kind")]
    pub kind: String,
    /// Levels per side the imbalance is computed over.
    #[serde(default = "default_levels")]
    pub levels: usize,
    /// Imbalance (−1…1) beyond which the strategy trades.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Order quantity, as a decimal string in the instrument's units (`"0.001"`).
    #[serde(default = "default_order_qty")]
    pub order_qty: String,
    /// A working order older than this is cancelled, ms.
    #[serde(default = "default_stale_ms")]
    pub stale_after_ms: u64,
    /// `[strategy.market_making]`.
    #[serde(default)]
    pub market_making: Option<MarketMakingConfig>,
    /// `[strategy.spread_capture]`.
    #[serde(default)]
    pub spread_capture: Option<SpreadCaptureConfig>,
    /// `[strategy.quote_chase]`.
    #[serde(default)]
    pub quote_chase: Option<QuoteChaseConfig>,
    /// `[strategy.momentum]`.
    #[serde(default)]
    pub momentum: Option<MomentumConfig>,
    /// `[strategy.grid]`.
    #[serde(default)]
    pub grid: Option<GridConfig>,
    /// `[strategy.pairs]`.
    #[serde(default)]
    pub pairs: Option<PairsConfig>,
    /// Where the `[protection]` exits are kept: `"engine"` (the default), `"exchange"` (native
    /// orders resting on the venue) or `"both"`.
    #[serde(default = "default_protect")]
    pub protect: String,
    /// The other `[[strategy]]` instances, after this first one (none for `[strategy]`).
    #[serde(skip)]
    pub more: Vec<StrategyConfig>,
}

/// `[strategy.risk]`: one instance's own limits (each left out: the account's `[risk]` one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRiskConfig {
    /// Largest order quantity, decimal string.
    #[serde(default)]
    pub max_order_qty: Option<String>,
    /// Largest order notional in the quote asset, decimal string.
    #[serde(default)]
    pub max_notional: Option<String>,
    /// Largest absolute position of this instance's own fills, decimal string.
    #[serde(default)]
    pub max_position: Option<String>,
    /// Most of this instance's orders open at once.
    #[serde(default)]
    pub max_open_orders: Option<u32>,
    /// This instance's orders per second.
    #[serde(default)]
    pub orders_per_second: Option<u32>,
    /// This instance's burst.
    #[serde(default)]
    pub order_burst: Option<u32>,
    /// Most this instance may lose in a UTC day (its own fills' net PnL), quote asset.
    #[serde(default)]
    pub max_daily_loss: Option<String>,
    /// Most this instance may lose in all, quote asset.
    #[serde(default)]
    pub max_total_loss: Option<String>,
    /// Largest fall of this instance's net PnL from its peak, quote asset.
    #[serde(default)]
    pub max_drawdown: Option<String>,
    /// `[strategy.risk.sizing]`: how large this instance's orders are, the keys of
    /// `[risk.sizing]`, its capital its own (equity is that plus its own fills' net PnL); left
    /// out: the instrument's sizing. Alone in `[strategy.risk]` it sets no limit, so the
    /// instance gets no gate of its own.
    #[serde(default)]
    pub sizing: Option<SizingConfig>,
}

impl InstanceRiskConfig {
    /// Whether it sets any limit of its own on orders or position (its sizing and its loss
    /// limits are not checked by a gate).
    pub fn sets_limits(&self) -> bool {
        self.max_order_qty.is_some()
            || self.max_notional.is_some()
            || self.max_position.is_some()
            || self.max_open_orders.is_some()
            || self.orders_per_second.is_some()
            || self.order_burst.is_some()
    }
}

fn default_protect() -> String {
    "engine".to_owned()
}

fn default_stale_ms() -> u64 {
    1_000
}

fn default_strategy_kind() -> String {
    "imbalance".to_owned()
}

fn default_levels() -> usize {
    5
}

fn default_threshold() -> f64 {
    0.6
}

fn default_order_qty() -> String {
    "0.001".to_owned()
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            kind: default_strategy_kind(),
            levels: default_levels(),
            threshold: default_threshold(),
            order_qty: default_order_qty(),
            stale_after_ms: default_stale_ms(),
            market_making: None,
            spread_capture: None,
            quote_chase: None,
            momentum: None,
            grid: None,
            pairs: None,
            protect: default_protect(),
            name: None,
            instruments: None,
            risk: None,
            more: Vec::new(),
        }
    }
}

/// `[risk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Largest order quantity, decimal string.
    #[serde(default = "default_max_qty")]
    pub max_order_qty: String,
    /// Largest order notional (price × quantity) in the quote asset, decimal string.
    #[serde(default = "default_max_notional")]
    pub max_notional: String,
    /// Largest absolute position, decimal string.
    #[serde(default = "default_max_position")]
    pub max_position: String,
    /// Most orders open at once.
    #[serde(default = "default_max_open")]
    pub max_open_orders: u32,
    /// Orders per second (token bucket).
    #[serde(default = "default_rate")]
    pub orders_per_second: u32,
    /// Orders that may go at once after a quiet spell (the bucket's size).
    #[serde(default = "default_burst")]
    pub order_burst: u32,
    /// Price band around the mid, basis points.
    #[serde(default = "default_band")]
    pub price_band_bps: u32,
    /// Start with the kill switch on: no new orders, only cancels (`SIGUSR1` and the operator
    /// bot turn it on while running).
    #[serde(default)]
    pub kill_switch: bool,
    /// Largest loss of net PnL (realised and unrealised at the mid, less fees) of one
    /// instrument within a UTC day of event time, in the quote asset, decimal string; left
    /// out: no limit. Reaching it kills trading (`loss_limit`).
    #[serde(default)]
    pub max_daily_loss: Option<String>,
    /// Largest loss of one instrument's net PnL since the start; left out: no limit.
    #[serde(default)]
    pub max_total_loss: Option<String>,
    /// Largest fall of one instrument's net PnL from its highest; left out: no limit. Reaching
    /// it kills trading (`drawdown`).
    #[serde(default)]
    pub max_drawdown: Option<String>,
    /// `[risk.portfolio]`: the same limits on the sum over every instrument the strategy stage
    /// trades (one quote asset assumed).
    #[serde(default)]
    pub portfolio: LossConfig,
    /// `[risk.sizing]`: how large orders are; left out: each strategy's own `order_qty`.
    #[serde(default)]
    pub sizing: SizingConfig,
    /// What a loss or drawdown limit reached does after the kill: `"stop"` (no new orders,
    /// open ones cancelled, the position left) or `"flatten"` (and then every position closed
    /// as `[risk.flatten]` says).
    #[serde(default = "default_on_loss_limit")]
    pub on_loss_limit: String,
    /// `[risk.flatten]`: how a flatten closes a position.
    #[serde(default)]
    pub flatten: FlattenConfig,
    /// `[risk.derisk]`: cut a position that has grown too large for the account (absent: off).
    #[serde(default)]
    pub derisk: Option<DeriskConfig>,
}

fn default_on_loss_limit() -> String {
    "stop".to_owned()
}

/// `[risk.flatten]`: closing a position on command (the bot's `/flatten`, SIGUSR2), on a loss
/// limit under `on_loss_limit = "flatten"`, or in part for a de-risk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {
    /// Largest closing order, decimal string; left out: `risk.max_order_qty`.
    #[serde(default)]
    pub slice_qty: Option<String>,
    /// How long a run may take (event time) before it gives up and says what is left, s.
    #[serde(default = "default_flatten_deadline")]
    pub deadline_s: f64,
    /// How far through the touch each closing order is priced, bps (held inside
    /// `risk.price_band_bps`).
    #[serde(default = "default_flatten_slippage")]
    pub slippage_bps: f64,
}

fn default_flatten_deadline() -> f64 {
    30.0
}

fn default_flatten_slippage() -> f64 {
    10.0
}

impl Default for FlattenConfig {
    fn default() -> Self {
        Self {
            slice_qty: None,
            deadline_s: default_flatten_deadline(),
            slippage_bps: default_flatten_slippage(),
        }
    }
}

/// `[risk.derisk]`: when an instrument's exposure (`|position| × mid`) is above `above_pct`
/// of its equity (capital plus net PnL), a de-risk closes `by_pct` of the position.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriskConfig {
    /// The largest exposure, percent of equity (above 0; above 100 allows leverage).
    pub above_pct: f64,
    /// The share of the position a de-risk closes, percent (above 0, at most 100).
    pub by_pct: f64,
    /// The capital equity starts from, in the quote asset, decimal string; left out:
    /// `risk.sizing.capital` (one of the two is required).
    #[serde(default)]
    pub capital: Option<String>,
}

/// `[risk.portfolio]`: loss limits on the net PnL of all instruments together, in the quote
/// asset, decimal strings; each left out is off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Largest loss within a UTC day of event time.
    #[serde(default)]
    pub max_daily_loss: Option<String>,
    /// Largest loss since the start.
    #[serde(default)]
    pub max_total_loss: Option<String>,
    /// Largest fall from the highest net PnL.
    #[serde(default)]
    pub max_drawdown: Option<String>,
}

/// `[risk.sizing]`: how large each new order is, per instrument. Every size is rounded down to
/// the instrument's step and capped by `max_order_qty` and `max_position`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingConfig {
    /// `"fixed"` (the strategy's `order_qty`), `"fraction"` (`fraction × equity / price`) or
    /// `"kelly"` (`kelly_scale × Kelly fraction × equity / price`, from the strategy's closed
    /// round trips, never below `order_qty`).
    #[serde(default = "default_sizing_kind")]
    pub kind: String,
    /// Starting capital per instrument, in the quote asset, decimal string: equity is this plus
    /// the instrument's net PnL. Required by `fraction` and `kelly`.
    #[serde(default)]
    pub capital: Option<String>,
    /// `fraction`: the share of equity each order is worth (`0 < fraction <= 1`).
    #[serde(default)]
    pub fraction: Option<f64>,
    /// `kelly`: the share of the Kelly fraction bet (`0.5`, "half Kelly", when left out).
    #[serde(default)]
    pub kelly_scale: Option<f64>,
    /// `kelly`: the largest share of equity per order, whatever the edge (`0.05` when left
    /// out).
    #[serde(default)]
    pub max_fraction: Option<f64>,
    /// `kelly`: round trips closed before the edge is trusted; until then orders are
    /// `order_qty` (`20` when left out).
    #[serde(default)]
    pub min_trades: Option<u64>,
}

fn default_sizing_kind() -> String {
    "fixed".to_owned()
}

impl Default for SizingConfig {
    fn default() -> Self {
        Self {
            kind: default_sizing_kind(),
            capital: None,
            fraction: None,
            kelly_scale: None,
            max_fraction: None,
            min_trades: None,
        }
    }
}

fn default_max_qty() -> String {
    "0.01".to_owned()
}

fn default_max_notional() -> String {
    "1000".to_owned()
}

fn default_burst() -> u32 {
    10
}

fn default_max_position() -> String {
    "0.1".to_owned()
}

fn default_max_open() -> u32 {
    10
}

fn default_rate() -> u32 {
    100
}

fn default_band() -> u32 {
    50
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_qty: default_max_qty(),
            max_notional: default_max_notional(),
            max_position: default_max_position(),
            max_open_orders: default_max_open(),
            orders_per_second: default_rate(),
            order_burst: default_burst(),
            price_band_bps: default_band(),
            kill_switch: false,
            max_daily_loss: None,
            max_total_loss: None,
            max_drawdown: None,
            portfolio: LossConfig::default(),
            sizing: SizingConfig::default(),
            on_loss_limit: default_on_loss_limit(),
            flatten: FlattenConfig::default(),
            derisk: None,
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// `"sim"`: the in-process simulated venue.
    #[serde(default = "default_gateway_kind")]
    pub venue: String,
    /// Simulated venue round trip, µs, split evenly between the two directions: the constant
    /// latency of each direction not given a model below.
    #[serde(default = "default_sim_latency")]
    pub latency_us: u64,
    /// Latency from sending a request to the venue acting on it (order entry); default: half
    /// of `latency_us`.
    #[serde(default)]
    pub entry_latency: Option<LatencyConfig>,
    /// Latency from a venue event to its report reaching the engine (responses); default: half
    /// of `latency_us`.
    #[serde(default)]
    pub response_latency: Option<LatencyConfig>,
    /// How cancels at a resting order's price move it forward: `"conservative"` (only trades
    /// do; the venue's original model), `"optimistic"` (every cancel is ahead of us),
    /// `"power:<n>"` or `"log"` (hftbacktest's probabilistic models).
    #[serde(default = "default_queue_model")]
    pub queue_model: String,
    /// Seed of the drawn latencies: the same seed gives the same run.
    #[serde(default = "default_sim_seed")]
    pub seed: u64,
}

fn default_queue_model() -> String {
    "conservative".to_owned()
}

fn default_sim_seed() -> u64 {
    1
}

fn default_gateway_kind() -> String {
    "sim".to_owned()
}

fn default_sim_latency() -> u64 {
    100
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            venue: default_gateway_kind(),
            latency_us: default_sim_latency(),
            entry_latency: None,
            response_latency: None,
            queue_model: default_queue_model(),
            seed: default_sim_seed(),
        }
    }
}

/// `[[instrument]]`: an instrument defined by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// `binance-spot`, `binance-usdm`, `binance-coinm`, `bybit-spot`, `bybit-linear`,
    /// `bybit-inverse`.
    pub venue: String,
    /// The exchange's symbol (`BTCUSDT`).
    pub symbol: String,
    /// Price tick, as the exchange writes it (`"0.01"`).
    pub tick_size: String,
    /// Quantity step, as the exchange writes it (`"0.00001"`).
    pub step_size: String,
    /// Decimals of the quantities the venue sends, when finer than the step (Binance Spot
    /// writes book quantities at the base asset's precision, 8, and books hold levels left over
    /// from finer steps of the past). Orders still follow the step.
    #[serde(default)]
    pub qty_decimals: Option<u8>,
    /// Decimals of the prices the venue sends, when finer than the tick (a recording taken
    /// after a tick change holds deep levels on the old, finer grid). The book then keeps
    /// levels on this finer grid; orders still follow the tick.
    #[serde(default)]
    pub px_decimals: Option<u8>,
}

/// `[[exchange_info]]`: a saved Binance `exchangeInfo` response to take specs from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeInfoConfig {
    /// The venue its symbols trade on.
    pub venue: String,
    /// The file (plain or `.gz`; the raw JSON body or a `<url> -> <time>: <JSON>` line),
    /// relative to `input.data_dir`.
    pub path: PathBuf,
    /// When true a missing file is reported at start-up and skipped (for the embedded config,
    /// which must run where the shared data is absent); when false it is a config error.
    #[serde(default)]
    pub optional: bool,
    /// Decimals of the quantities the venue sends, for every instrument of the file (see
    /// `[[instrument]]`'s `qty_decimals`).
    #[serde(default)]
    pub qty_decimals: Option<u8>,
}

/// `[report]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Write the report as JSON to this file too.
    #[serde(default)]
    pub json: Option<PathBuf>,
    /// Write one `.hgrm` percentile file per histogram into this directory.
    #[serde(default)]
    pub hgrm_dir: Option<PathBuf>,
    /// Write every problem with the input (source, decode, sync), one JSON object a line,
    /// into this file.
    #[serde(default)]
    pub errors_out: Option<PathBuf>,
    /// Exit 0 even when the input was damaged or a book did not end synced (the warnings are
    /// still printed).
    #[serde(default)]
    pub allow_damaged: bool,
}

impl Config {
    /// Parses a config's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            ConfigError::single(origin, "", e.to_string().trim_end().replace('\n', "\n  "))
        })
    }

    /// Parses a config's text with command-line overrides applied on top.
    pub fn parse_with(
        text: &str,
        origin: &str,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        // Parse the file alone first, so its own errors carry its line numbers.
        let plain = Self::parse(text, origin)?;
        if overrides.is_empty() {
            return Ok(plain);
        }
        overrides.apply(text, origin)
    }
}
