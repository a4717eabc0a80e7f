//! [`Settings`]: a validated config, typed — what the engine runs from. Built only by
//! [`Config::validate`](super::Config::validate), so every value here has been checked.

use std::path::PathBuf;

use pinion_core::{InstrumentSpec, Venue};
use pinion_feed::source::Decompress;

use crate::runtime::WaitStrategy;

use super::money::{BacktestSpec, FeeSchedule};
use super::trading::TradingSpec;
use super::{ReportConfig, RuntimeConfig};

/// A pipeline stage, in data order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    /// Source read, pacing, parse.
    Feed,
    /// Book apply and sync.
    Book,
    /// Strategy and pre-trade risk: stage 0 runs every instance no other strategy stage names;
    /// stage `g` ≥ 1 the instances of [`PlacementSpec::strategy_stages`]`[g - 1]`.
    Strategy(u8),
    /// Hard limits and the venue.
    Gateway,
}

impl StageKind {
    /// All stages in data order.
    pub const ALL: [StageKind; 4] = [
        StageKind::Feed,
        StageKind::Book,
        StageKind::Strategy(0),
        StageKind::Gateway,
    ];

    /// The name used in configs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            StageKind::Feed => "feed",
            StageKind::Book => "book",
            StageKind::Strategy(_) => "strategy",
            StageKind::Gateway => "gateway",
        }
    }

    /// The stage's place in data order (every strategy stage at the same place).
    pub const fn rank(self) -> u8 {
        match self {
            StageKind::Feed => 0,
            StageKind::Book => 1,
            StageKind::Strategy(_) => 2,
            StageKind::Gateway => 3,
        }
    }

    pub(super) fn from_name(s: &str) -> Option<StageKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One thread of the placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSpec {
    /// Its name.
    pub name: String,
    /// The core it is pinned to.
    pub core: Option<usize>,
    /// How it waits when idle.
    pub wait: WaitStrategy,
    /// Its stages in data order.
    pub stages: Vec<StageKind>,
}

/// Which stages run on which threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementSpec {
    /// `1`, `2`, `4` or `custom`.
    pub label: String,
    /// The threads.
    pub threads: Vec<ThreadSpec>,
    /// The strategy stages after the first (`"strategy:NAME[+NAME…]"` in a custom placement):
    /// the instance numbers each runs. Empty: one strategy stage runs every instance.
    pub strategy_stages: Vec<Vec<u8>>,
}

impl PlacementSpec {
    /// How many strategy stages run (at least one).
    pub fn strategy_stage_count(&self) -> usize {
        1 + self.strategy_stages.len()
    }

    /// The strategy stage that runs instance `k`.
    pub fn stage_of_instance(&self, k: u8) -> usize {
        self.strategy_stages
            .iter()
            .position(|g| g.contains(&k))
            .map_or(0, |g| g + 1)
    }
}

/// How fast recorded frames are released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacingSpec {
    /// As fast as the pipeline takes them.
    Max,
    /// At the recorded inter-arrival times divided by `speed`.
    Recorded {
        /// 2.0 = twice as fast as recorded.
        speed: f64,
        /// The longest wait between two frames, ns; longer gaps are cut to it (`None`: never).
        max_wait_ns: Option<u64>,
    },
    /// At a fixed rate.
    Rate {
        /// Records per second.
        per_second: u64,
        /// The longest wait between two frames, ns (`None`: never cut).
        max_wait_ns: Option<u64>,
    },
}

impl PacingSpec {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        let cap = |max: &Option<u64>| {
            max.map_or_else(String::new, |ns| {
                format!(", waits cut at {} ms", ns / 1_000_000)
            })
        };
        match self {
            PacingSpec::Max => "max".to_owned(),
            PacingSpec::Recorded { speed, max_wait_ns } => {
                format!("paced x{speed}{}", cap(max_wait_ns))
            }
            PacingSpec::Rate {
                per_second,
                max_wait_ns,
            } => format!("paced {per_second}/s{}", cap(max_wait_ns)),
        }
    }

    /// The longest wait between two frames, if paced and capped.
    pub fn max_wait_ns(&self) -> Option<u64> {
        match self {
            PacingSpec::Max => None,
            PacingSpec::Recorded { max_wait_ns, .. } | PacingSpec::Rate { max_wait_ns, .. } => {
                *max_wait_ns
            }
        }
    }
}

/// What to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// The built-in synthetic market.
    Synthetic {
        /// Generator seed.
        seed: u64,
        /// Records after the connect and snapshot.
        records: u64,
        /// Recorded time between records, ns.
        interval_ns: u64,
    },
    /// The venue's live streams (`pinion live`).
    Live(Box<LiveSettings>),
    /// A recording file.
    Recording {
        /// The file.
        path: PathBuf,
        /// The venue of connections the recording does not name.
        venue: Option<Venue>,
        /// Where a compressed recording is decompressed.
        decompress: Decompress,
    },
}

/// Where instrument specs come from, besides the recording itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstrumentSource {
    /// A saved exchange instrument list.
    ExchangeInfo {
        /// The venue of its symbols.
        venue: Venue,
        /// The resolved file path.
        path: PathBuf,
        /// Whether a missing file is skipped (with a start-up notice).
        optional: bool,
        /// Quantity decimals for all its instruments, when finer than their steps.
        qty_decimals: Option<u8>,
    },
}

/// A validated config: what the engine runs from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the config came from (for reports).
    pub origin: String,
    /// What to replay.
    pub input: InputSpec,
    /// Stop after this many records (0 = all).
    pub max_records: u64,
    /// Pacing.
    pub pacing: PacingSpec,
    /// Placement.
    pub placement: PlacementSpec,
    /// Slots per ring.
    pub ring_capacity: usize,
    /// Runtime settings.
    pub runtime: RuntimeConfig,
    /// The strategy, its risk limits and the venue.
    pub trading: TradingSpec,
    /// Every strategy instance, the first being `trading`'s strategy (its own limits in its
    /// spec where it set any; `trading.risk` is the account's, held on the net of all).
    pub instances: Vec<super::trading::InstanceSpec>,
    /// Instruments defined in the config.
    pub instruments: Vec<InstrumentSpec>,
    /// Instruments whose book keeps levels on the price unit's grid rather than the tick's
    /// (those given `px_decimals`).
    pub unit_price_grid: Vec<(Venue, pinion_core::Symbol)>,
    /// Instrument lists to load.
    pub instrument_sources: Vec<InstrumentSource>,
    /// Report outputs.
    pub report: ReportConfig,
    /// Fee rates per venue.
    pub fees: FeeSchedule,
    /// The position's protective exits (`[protection]`).
    pub protection: pinion_strategy::ProtectParams,
    /// Where they are kept (`[strategy] protect`).
    pub protect: super::ProtectMode,
    /// What a live trading run does with its open orders when it stops (`[exit]`).
    pub exit: pinion_gateway::ExitPolicy,
    /// `[watchdog] enabled`: notify systemd (`READY=1`, `WATCHDOG=1`) when run under it.
    pub watchdog: bool,
    /// `[heartbeat]`, checked: the outbound ping while every stage thread makes progress.
    pub heartbeat: Option<crate::watchdog::HeartbeatSettings>,
    /// How a backtest samples and measures the run.
    pub backtest: BacktestSpec,
    /// `[live]`, when the config has it (`pinion live` runs from it).
    pub live: Option<LiveSettings>,
    /// `[metrics]`, checked.
    pub metrics: MetricsSettings,
    /// `[log]`, checked (`PINION_LOG` not yet applied).
    pub log: crate::ops::log::LogSettings,
    /// `[history] db`: the trade-history file runs write to; `None`: none.
    pub history: Option<PathBuf>,
    /// `[history] postgres`, checked: the shared PostgreSQL copy of the history; `None`: none.
    pub history_postgres: Option<super::ops::HistoryPostgres>,
    /// `[journal]`, checked: the trading journal `pinion live --trade` appends to and resumes.
    pub journal: Option<crate::ops::journal::JournalSettings>,
    /// `[bot]`, checked, when the config has it.
    pub bot: Option<super::BotSettings>,
}

impl Settings {
    /// What instrument `symbol` of `venue` is traded under: the strategy of the first
    /// instance that trades it (the one whose order size the instrument's sizer falls back
    /// to), with the account's limits and the venue. [`Settings::trading`] when no instance
    /// names it.
    pub fn trading_for(&self, venue: pinion_core::Venue, symbol: &str) -> TradingSpec {
        self.instances
            .iter()
            .find(|i| i.trades(venue, symbol))
            .map_or(self.trading, |i| TradingSpec {
                strategy: i.trading.strategy,
                ..self.trading
            })
    }
}

/// `[metrics]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSettings {
    /// Where to serve the endpoint; `None`: not served.
    pub listen: Option<std::net::SocketAddr>,
    /// Time between status lines on stderr; `None`: none.
    pub status_interval: Option<std::time::Duration>,
}

/// `[live]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// The connections and their behaviour.
    pub spec: pinion_feed::live::LiveSpec,
    /// Options for every socket (besides `TCP_NODELAY`, always on).
    pub socket: pinion_net::sockopt::SocketOptions,
    /// Extra trusted certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// The instrument list cache.
    pub exchange_info_cache: Option<PathBuf>,
    /// Record the session to this `.pnr` file.
    pub record: Option<PathBuf>,
    /// Stop after this long.
    pub duration: Option<std::time::Duration>,
    /// `[live.orders]`, checked.
    pub orders: Option<OrderEntrySettings>,
    /// Send the strategy's orders to the venue (`pinion live --trade`); otherwise they go to
    /// the simulated venue.
    pub trade: bool,
    /// The variable holding the API key of SBE connections, when the session has any.
    pub sbe_api_key_env: Option<String>,
}

/// `[live.orders]`, checked. The secrets themselves are read from the environment when the
/// venue is made, never kept here.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEntrySettings {
    /// The WS API URL.
    pub ws_api_url: String,
    /// Key kind and the variables naming the key and secret.
    pub credentials: pinion_gateway::binance::sign::CredentialsConfig,
    /// `recvWindow`.
    pub recv_window: Option<pinion_gateway::binance::template::RecvWindow>,
    /// Self-trade prevention mode.
    pub stp_mode: Option<pinion_gateway::binance::template::StpMode>,
    /// Orders found open at start-up.
    pub open_orders: pinion_gateway::binance::OpenOrdersPolicy,
    /// Answer deadline, ms.
    pub answer_timeout_ms: u64,
    /// Query delay for unknown outcomes, ms.
    pub query_after_ms: u64,
    /// Connects per 5 minutes.
    pub connects_per_5min: usize,
    /// Record the order session's frames here.
    pub record: Option<PathBuf>,
    /// The circuit breaker in front of new orders.
    pub breaker: pinion_gateway::binance::breaker::BreakerConfig,
    /// JSON or SBE answers and user data.
    pub response_format: pinion_gateway::binance::ResponseFormat,
}
