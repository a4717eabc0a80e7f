//! The `pinion` command line (clap derive). Flags are turned into config [`Overrides`] once, so
//! a flag is checked exactly like the key it overrides; `main.rs` only wires this to the
//! library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Override, Overrides};
use crate::pipeline::DumpPoints;

/// pinion: a low-latency crypto trading engine.
///
/// Feed → book → strategy → gateway on pinned threads connected by lock-free rings, with HDR
/// latency histograms. `pinion replay` with no arguments runs the built-in main job: the
/// embedded configs/replay.toml on the built-in synthetic market.
#[derive(Debug, Parser)]
#[command(name = "pinion", version, about, long_about, after_long_help = CONFIG_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The config's shape, for `--help`; `pinion config --show` prints every key with its default.
const CONFIG_HELP: &str = "\
Config (TOML; unknown keys are errors; `pinion config --show` prints every key, documented):
  [input]          source (\"synthetic\" or a recording), venue, max_records, data_dir, read_ahead
  [pacing]         mode (max | paced), speed, rate, max_wait_ms
  [synthetic]      seed, records, interval_ns
  [placement]      mode (1 | 2 | 4 | custom), cores, wait (busy-spin | spin-then-yield | park),
                   spins, park_timeout_us, [[placement.threads]] name, core, wait, stages
  [rings]          capacity (a power of two, 16 to 2^20)
  [runtime]        mlockall, realtime_priority, progress
  [strategy]       kind, levels, threshold, order_qty, stale_after_ms
  [risk]           max_order_qty, max_notional, max_position, max_open_orders,
                   orders_per_second, order_burst, price_band_bps, max_daily_loss,
                   max_total_loss, max_drawdown, [risk.portfolio] the same three,
                   [risk.sizing] kind (fixed | fraction | kelly), capital, fraction,
                   kelly_scale, max_fraction, min_trades
  [gateway]        venue (sim), latency_us, entry_latency, response_latency, queue_model, seed
  [[instrument]]   venue, symbol, tick_size, step_size, qty_decimals, px_decimals
  [[exchange_info]] venue, path, optional, qty_decimals
  [report]         json, hgrm_dir, errors_out, allow_damaged
  [fees]           maker_bps, taker_bps, [fees.venues.<venue>] maker_bps, taker_bps
  [backtest]       period_ms, capital, max_fills, max_samples
  [log]            level, targets, file, format (json | text), capacity; PINION_LOG overrides
  [history]        db (the trade-history SQLite file; `pinion history` reads it), postgres, source,
                   postgres_ca_file, postgres_retry_ms, postgres_flush_secs (a shared PostgreSQL copy)
  [journal]        path, fsync (every | interval | never), interval_ms, capacity (live --trade)
Flags override keys; `--set key=value` overrides any key.";

/// `pinion replay`'s exit codes, for `--help` (the README has the same table).
const REPLAY_EXIT_CODES: &str = "\
Exit codes:
  0    the input replayed cleanly (or was damaged and --allow-damaged accepts it)
  1    the replay could not run: bad config, unreadable input, a report path that cannot be
       written (checked before the run), a failure during the run
  2    command-line usage error
  3    the input was damaged: source or decode errors, or a book fed depth data that never
       synced or ended unsynced (the report's warnings say which; --errors-out FILE lists every
       problem)
  130  stopped by Ctrl-C (the report still covers what was replayed)";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the synthetic market or a recording through the whole pipeline and report
    /// latency and throughput.
    ///
    /// Without --config the embedded configs/replay.toml is used (print it with
    /// `pinion config --show`). Every flag overrides one config key, named in its help; any
    /// other key can be set with --set. Latency figures are meaningful with --pacing paced.
    #[command(after_long_help = REPLAY_EXIT_CODES)]
    Replay(Box<ReplayArgs>),
    /// Run a strategy on a recording through the whole pipeline with the simulated venue, and
    /// measure what it earned: net PnL (gross, fees), return, Sharpe and Sortino, drawdown, win
    /// rate, profit factor, fills, maker share, orders and cancels.
    ///
    /// The same run as `pinion replay` (pacing `max` unless --set says otherwise), with every fill and the equity recorded in event time (the `[backtest]` table).
    /// Prints the replay's report and the backtest's table; --out DIR also writes report.json,
    /// fills.csv, equity.csv and SVG plots there. Exit codes as for replay.
    #[command(after_long_help = REPLAY_EXIT_CODES)]
    Backtest(Box<BacktestArgs>),
    /// Connect to the venue's live market streams (the `[live]` table of the config) and run them
    /// through book, strategy and the simulated venue (paper trading), with the same report as
    /// replay plus each connection's counters.
    ///
    /// Runs until Ctrl-C or --duration. Books sync by the venue's rule: the depth stream
    /// buffers, a REST snapshot is fetched, a gap resyncs that symbol alone, a lost connection
    /// is reopened with backoff. --endpoint and --rest-endpoint point it at another server (the
    /// exchange simulator), --ca-file trusts that server's certificate.
    Live(Box<LiveArgs>),
    /// Convert a recording (any format pinion reads) into pinion's own .pnr format.
    ///
    /// With --encoding sbe, Binance Spot market data frames become the SBE frames Binance's
    /// binary stream would have sent for them (trades, bookTicker as best bid/ask, diff and
    /// partial depth); other streams' frames are dropped, control replies and other venues'
    /// frames kept as they are.
    Convert(ConvertArgs),
    /// Print the books after message N, or after every N messages, and at the end, so they can
    /// be checked against another tool.
    ///
    /// The input goes through the same decoder and book sync as `pinion replay`, on one thread
    /// and without pacing; a message is one input record, counted from 1. Each book is shown
    /// with its sync state (`live`, `syncing`, `awaiting_snapshot:<reason>`), its last update
    /// id and its best levels as exact decimals. Takes the same config options as replay.
    Book(BookArgs),
    /// Check a config (every problem at once, with file and key), or print the embedded one.
    Config(ConfigArgs),
    /// Measure the host's own stalls: one thread per core only reads the clock, and every gap
    /// between two reads is time a pipeline thread on that core would lose.
    ///
    /// Prints, per core, the gaps of 10 µs and 100 µs or more, the share of time lost to them,
    /// and the wait of an event arriving at a random moment (p99, p99.9, and the chance of
    /// waiting more than 2 µs or 10 µs). A thread handed an event by another thread waits like
    /// that, so on the cores downstream of the feed it is a floor under tick-to-trade.
    Jitter(JitterArgs),
    /// Read the trade history that `pinion backtest --history DB` and `pinion live --history DB`
    /// (or any run whose config sets `[history] db`) write: the fills, or the PnL by day or by
    /// instrument, as a table or as CSV.
    ///
    /// Times are Unix nanoseconds, a UTC date (2025-12-05) or an RFC 3339 UTC time
    /// (2025-12-05T20:20:00Z); --from is inclusive, --to exclusive. Money is exact decimals of the
    /// quote asset.
    History(HistoryArgs),
}

/// `pinion history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history file.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// What to show.
    #[command(subcommand)]
    pub query: HistoryQuery,
}

/// What `pinion history` shows.
#[derive(Debug, Subcommand)]
pub enum HistoryQuery {
    /// Every fill, in the order applied, with the account after it (the columns of fills.csv).
    Fills {
        /// Fills at or after this time.
        #[arg(long, value_name = "T", value_parser = parse_time)]
        from: Option<u64>,
        /// Fills before this time.
        #[arg(long, value_name = "T", value_parser = parse_time)]
        to: Option<u64>,
        /// Only this symbol's fills (BTCUSDT).
        #[arg(long, value_name = "SYMBOL")]
        instrument: Option<String>,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Realised, unrealised, fees and net PnL summed by UTC day, by instrument, by the
    /// strategy instance and reason of the orders filled, or by strategy instance (its orders,
    /// fills, and its own fills' realised PnL and fees, named as the run's config named it).
    Pnl {
        /// Group by `day`, `instrument`, `reason` or `strategy`.
        #[arg(long, value_enum, default_value = "day")]
        by: crate::ops::history::query::PnlBy,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
}

fn parse_time(s: &str) -> Result<u64, String> {
    crate::ops::civil::parse_time(s).ok_or_else(|| {
        format!(
            "\"{s}\" is not a time: Unix nanoseconds, a UTC date (2025-12-05) or a UTC time \
             (2025-12-05T20:20:00Z)"
        )
    })
}

/// `pinion jitter`.
#[derive(Debug, Args)]
pub struct JitterArgs {
    /// Cores to measure, comma-separated, each once, all at once. Default: every core the
    /// process may use.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub cores: Option<Vec<usize>>,
    /// How long to measure, in seconds (0.1 to 3600).
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub seconds: f64,
    /// Shortest gap counted as a stall, in ns (1 to 2000).
    #[arg(long, default_value_t = crate::host::jitter::DEFAULT_MIN_GAP_NS, value_name = "NS")]
    pub min_gap_ns: u64,
}

/// `pinion live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The config and generic overrides (the config must have a `[live]` table).
    #[command(flatten)]
    pub source: ConfigSource,
    /// The WebSocket base to connect to instead of the config's [live.ws_url].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The REST base instead of the config's [live.rest_url].
    #[arg(long, value_name = "URL")]
    pub rest_endpoint: Option<String>,
    /// Also trust the certificates in this PEM file [live.ca_file].
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Stop after this many seconds [live.duration_s].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Record the session to this .pnr file [live.record].
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Placement: 1, 2, 4 or custom [placement.mode].
    #[arg(short, long, value_name = "MODE")]
    pub placement: Option<String>,
    /// Wait strategy of every thread [placement.wait].
    #[arg(short, long, value_name = "WAIT")]
    pub wait: Option<String>,
    /// Write the final report as JSON too [report.json].
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write the final books (state, last update id, every level) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub books_out: Option<PathBuf>,
    /// No progress bar [runtime.progress = false].
    #[arg(long)]
    pub no_progress: bool,
    /// Send the strategy's orders to the venue over its WebSocket API ([live.orders]), with
    /// the key named there; without it orders go to the simulated venue.
    #[arg(long)]
    pub trade: bool,
    /// Trade even with a key that can withdraw funds (the start-up checks refuse such a key
    /// otherwise, with exit code 4).
    #[arg(long, requires = "trade")]
    pub allow_withdrawal_key: bool,
    /// The WebSocket API URL instead of the config's [live.orders.ws_api_url].
    #[arg(long, value_name = "URL")]
    pub ws_api_endpoint: Option<String>,
    /// Record every frame the order session receives to this .pnr file [live.orders.record].
    #[arg(long, value_name = "FILE")]
    pub record_orders: Option<PathBuf>,
    /// Write what the order venue knows at the end (orders, fills, balances) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub account_out: Option<PathBuf>,
    /// Serve Prometheus metrics, /health and /ready on this local address (`127.0.0.1:9464`)
    /// [metrics.listen].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Record the session's orders, fills and daily PnL in this SQLite file [history.db].
    #[arg(long, value_name = "DB")]
    pub history: Option<PathBuf>,
}

impl LiveArgs {
    /// The flags as config overrides, the generic `--set` ones last (they win).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        if let Some(v) = &self.endpoint {
            o.push(Override::string("live.ws_url", v.clone()));
        }
        if let Some(v) = &self.rest_endpoint {
            o.push(Override::string("live.rest_url", v.clone()));
        }
        if let Some(v) = &self.record_orders {
            o.push(Override::string(
                "live.orders.record",
                v.display().to_string(),
            ));
        }
        if let Some(v) = &self.ws_api_endpoint {
            o.push(Override::string("live.orders.ws_api_url", v.clone()));
        }
        if let Some(v) = &self.ca_file {
            o.push(Override::string("live.ca_file", v.display().to_string()));
        }
        if let Some(v) = self.duration {
            o.push(Override::value("live.duration_s", toml::Value::Float(v)));
        }
        if let Some(v) = &self.record {
            o.push(Override::string("live.record", v.display().to_string()));
        }
        if let Some(v) = &self.placement {
            o.push(Override::string("placement.mode", v.clone()));
        }
        if let Some(v) = &self.wait {
            o.push(Override::string("placement.wait", v.clone()));
        }
        if let Some(v) = &self.report_json {
            o.push(Override::string("report.json", v.display().to_string()));
        }
        if self.no_progress {
            o.push(Override::value("runtime.progress", false));
        }
        if let Some(v) = &self.metrics_listen {
            o.push(Override::string("metrics.listen", v.clone()));
        }
        if let Some(v) = &self.history {
            o.push(Override::string("history.db", v.display().to_string()));
        }
        for s in &self.source.set {
            o.push(s.clone());
        }
        o
    }
}

/// Where the config comes from and the generic overrides.
#[derive(Debug, Args)]
pub struct ConfigSource {
    /// The config file (TOML). Default: the embedded configs/replay.toml.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override any config key: `--set placement.mode=1`, `--set placement.threads[0].core=1`.
    /// Values are TOML (`2`, `true`, `[0, 1]`, `"x"`); anything else is taken as a string.
    /// Repeatable; later wins.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse)]
    pub set: Vec<Override>,
}

/// `pinion backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// The config (e.g. configs/backtest-market-making.toml) and generic overrides.
    #[command(flatten)]
    pub source: ConfigSource,
    /// The recording to run on (any format pinion reads) [input.source].
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<String>,
    /// Write report.json, fills.csv, equity.csv and the plots into DIR (created if needed).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Placement: 1, 2, 4 or custom [placement.mode]; the figures do not depend on it.
    #[arg(short, long, value_name = "MODE")]
    pub placement: Option<String>,
    /// Stop after this many records [input.max_records].
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// Exit 0 even if the input was damaged [report.allow_damaged = true].
    #[arg(long)]
    pub allow_damaged: bool,
    /// No progress bar [runtime.progress = false].
    #[arg(long)]
    pub no_progress: bool,
    /// Sweep a config key over values: `--sweep strategy.threshold=0.5,0.6,0.7`. Repeatable;
    /// every combination runs (fused on one thread each, --jobs at once) and one summary table
    /// is printed (and written to DIR/sweep.csv with --out).
    #[arg(long, value_name = "KEY=A,B,C", value_parser = crate::backtest::sweep::SweepAxis::parse)]
    pub sweep: Vec<crate::backtest::sweep::SweepAxis>,
    /// Sweep runs at once (default: the cores this process may use).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// With --sweep: decode the recording once, into memory (about 0.5 KB per market event),
    /// and run every combination on it instead of each run reading and decoding the file
    /// itself. The figures are the same; the sweep takes less time. Refused when a swept key
    /// changes what the input decodes to (input, instruments, max_records).
    #[arg(long, requires = "sweep")]
    pub predecode: bool,
    /// Record the run's fills and daily PnL in this SQLite file [history.db].
    #[arg(long, value_name = "DB")]
    pub history: Option<PathBuf>,
}

impl BacktestArgs {
    /// The flags as config overrides: pacing `max` first (a backtest runs in event time, so
    /// waiting out the recording's gaps would change nothing but the wall time; `--set
    /// pacing.mode=paced` still asks for it), the generic `--set` ones last (they win).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.push(Override::string("pacing.mode", "max"));
        if let Some(v) = &self.input {
            o.push(Override::string("input.source", v.clone()));
        }
        if let Some(v) = &self.placement {
            o.push(Override::string("placement.mode", v.clone()));
        }
        if let Some(v) = self.max_records {
            o.push(Override::value("input.max_records", to_int(v)));
        }
        if self.allow_damaged {
            o.push(Override::value("report.allow_damaged", true));
        }
        if self.no_progress {
            o.push(Override::value("runtime.progress", false));
        }
        if let Some(v) = &self.history {
            o.push(Override::string("history.db", v.display().to_string()));
        }
        for s in &self.source.set {
            o.push(s.clone());
        }
        o
    }
}

/// `pinion replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The config and generic overrides.
    #[command(flatten)]
    pub source: ConfigSource,
    /// The recording to replay (any format pinion reads, told from its content; `-` for
    /// standard input), or `synthetic` [input.source].
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<String>,
    /// The venue of connections the recording does not name, e.g. binance-spot [input.venue].
    #[arg(long, value_name = "VENUE")]
    pub venue: Option<String>,
    /// Stop after this many records [input.max_records].
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// Records the synthetic market generates [synthetic.records].
    #[arg(long, value_name = "N")]
    pub records: Option<u64>,
    /// Placement: 1 (fused), 2 (feed+book | strategy+gateway), 4, or custom [placement.mode].
    #[arg(short, long, value_name = "MODE")]
    pub placement: Option<String>,
    /// Cores for the placement's threads, comma-separated [placement.cores].
    #[arg(long, value_name = "CORES", value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Wait strategy of every thread: busy-spin, spin-then-yield or park [placement.wait].
    #[arg(short, long, value_name = "WAIT")]
    pub wait: Option<String>,
    /// Pacing: max or paced [pacing.mode].
    #[arg(long, value_name = "MODE")]
    pub pacing: Option<String>,
    /// Paced replay speed factor; 2 = twice as fast as recorded [pacing.speed].
    #[arg(long, value_name = "X")]
    pub speed: Option<f64>,
    /// Paced replay at a fixed rate instead, records per second [pacing.rate].
    #[arg(long, value_name = "N")]
    pub rate: Option<u64>,
    /// Slots per ring, a power of two [rings.capacity].
    #[arg(long, value_name = "N")]
    pub ring_capacity: Option<usize>,
    /// Write the final report as JSON too [report.json].
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write one .hgrm percentile file per histogram into DIR [report.hgrm_dir].
    #[arg(long, value_name = "DIR")]
    pub hgrm_dir: Option<PathBuf>,
    /// Write every problem with the input, one JSON object a line, into FILE
    /// [report.errors_out].
    #[arg(long, value_name = "FILE")]
    pub errors_out: Option<PathBuf>,
    /// Exit 0 even if the input was damaged or a book did not end synced
    /// [report.allow_damaged = true].
    #[arg(long)]
    pub allow_damaged: bool,
    /// No progress bar [runtime.progress = false].
    #[arg(long)]
    pub no_progress: bool,
    /// Serve Prometheus metrics, /health and /ready on this local address (`127.0.0.1:9464`)
    /// [metrics.listen].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl ReplayArgs {
    /// The flags as config overrides, the generic `--set` ones last (they win).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        if let Some(v) = &self.input {
            o.push(Override::string("input.source", v.clone()));
        }
        if let Some(v) = &self.venue {
            o.push(Override::string("input.venue", v.clone()));
        }
        if let Some(v) = self.max_records {
            o.push(Override::value("input.max_records", to_int(v)));
        }
        if let Some(v) = self.records {
            o.push(Override::value("synthetic.records", to_int(v)));
        }
        if let Some(v) = &self.placement {
            o.push(Override::string("placement.mode", v.clone()));
        }
        if let Some(v) = &self.cores {
            let arr: Vec<toml::Value> = v.iter().map(|&c| to_int(c as u64)).collect();
            o.push(Override::value("placement.cores", arr));
        }
        if let Some(v) = &self.wait {
            o.push(Override::string("placement.wait", v.clone()));
        }
        if let Some(v) = &self.pacing {
            o.push(Override::string("pacing.mode", v.clone()));
        }
        if let Some(v) = self.speed {
            o.push(Override::value("pacing.speed", v));
        }
        if let Some(v) = self.rate {
            o.push(Override::value("pacing.rate", to_int(v)));
        }
        if let Some(v) = self.ring_capacity {
            o.push(Override::value("rings.capacity", to_int(v as u64)));
        }
        if let Some(v) = &self.report_json {
            o.push(Override::string("report.json", v.display().to_string()));
        }
        if let Some(v) = &self.hgrm_dir {
            o.push(Override::string("report.hgrm_dir", v.display().to_string()));
        }
        if let Some(v) = &self.errors_out {
            o.push(Override::string(
                "report.errors_out",
                v.display().to_string(),
            ));
        }
        if self.allow_damaged {
            o.push(Override::value("report.allow_damaged", true));
        }
        if self.no_progress {
            o.push(Override::value("runtime.progress", false));
        }
        if let Some(v) = &self.metrics_listen {
            o.push(Override::string("metrics.listen", v.clone()));
        }
        for s in &self.source.set {
            o.push(s.clone());
        }
        o
    }
}

/// Two settings that cannot both apply, one of them a flag: rather than ignore one, the command
/// refuses both and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} cannot go with {other}: {why}")]
pub struct FlagConflict {
    /// The flag as given (`--speed 2`).
    pub flag: String,
    /// What it conflicts with: another flag as given, or the config key it contradicts.
    pub other: String,
    /// Why the two do not go together.
    pub why: &'static str,
}

impl ReplayArgs {
    /// Flags that another flag, or the config they override, would leave without effect.
    /// `config` is the config with these flags applied, not yet validated, so a key that
    /// comes from a flag is named by its flag and one from the file by its key.
    pub fn check_conflicts(&self, config: &Config) -> Result<(), FlagConflict> {
        let conflict = |flag: String, other: String, why| Err(FlagConflict { flag, other, why });
        let pacing = &config.pacing;
        let mode = || match &self.pacing {
            Some(m) => format!("--pacing {m}"),
            None => format!("pacing.mode = {:?} in the config", pacing.mode),
        };
        if pacing.mode == "max" {
            if let Some(v) = self.speed {
                return conflict(
                    format!("--speed {v}"),
                    mode(),
                    "the speed scales a paced replay's waits, and max pacing does not wait",
                );
            }
            if let Some(v) = self.rate {
                return conflict(
                    format!("--rate {v}"),
                    mode(),
                    "a rate paces the replay, and max pacing releases every frame at once",
                );
            }
        }
        if let Some(v) = self.speed
            && pacing.rate > 0
        {
            let other = match self.rate {
                Some(r) => format!("--rate {r}"),
                None => format!("pacing.rate = {} in the config", pacing.rate),
            };
            return conflict(
                format!("--speed {v}"),
                other,
                "a fixed rate ignores the recorded times the speed would scale",
            );
        }
        let input = || match &self.input {
            Some(i) => format!("--input {i}"),
            None => format!("input.source = {:?} in the config", config.input.source),
        };
        let synthetic = config.input.source == "synthetic";
        if let Some(v) = self.records
            && !synthetic
        {
            return conflict(
                format!("--records {v}"),
                input(),
                "--records sets the length of the synthetic market; a recording is replayed \
                 to its end (--max-records stops it early)",
            );
        }
        if let Some(v) = &self.venue
            && synthetic
        {
            return conflict(
                format!("--venue {v}"),
                input(),
                "--venue names the venue of a recording's connections; the synthetic market is \
                 Binance Spot",
            );
        }
        let placement = || match &self.placement {
            Some(p) => format!("--placement {p}"),
            None => "placement.mode = \"custom\" in the config".to_owned(),
        };
        if config.placement.mode == "custom" {
            if let Some(cores) = &self.cores {
                return conflict(
                    format!("--cores {}", join(cores)),
                    placement(),
                    "a custom placement's threads name their own cores ([[placement.threads]] core)",
                );
            }
            if let Some(w) = &self.wait
                && !config.placement.threads.is_empty()
                && config.placement.threads.iter().all(|t| t.wait.is_some())
            {
                return conflict(
                    format!("--wait {w}"),
                    placement(),
                    "every thread of the custom placement names its own wait strategy",
                );
            }
        }
        Ok(())
    }
}

fn join(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// TOML integers are i64; larger values saturate (and then fail validation where it matters).
fn to_int(v: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

/// `pinion book`.
#[derive(Debug, Args)]
pub struct BookArgs {
    /// The config and generic overrides.
    #[command(flatten)]
    pub source: ConfigSource,
    /// The recording to read, or `synthetic` [input.source].
    #[arg(short, long, value_name = "FILE")]
    pub input: String,
    /// The venue of connections the recording does not name, e.g. binance-spot [input.venue].
    #[arg(long, value_name = "VENUE")]
    pub venue: Option<String>,
    /// Show the books after message N (counted from 1), and at the end.
    #[arg(long, value_name = "N", conflicts_with = "every",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub at: Option<u64>,
    /// Show the books after every N-th message, and at the end.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// Levels shown per side (1 to 100000).
    #[arg(long, value_name = "K", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BOOK_DEPTH))]
    pub depth: u64,
    /// Also write every point as one JSON object a line to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No text on stdout (with --json, only the file is written).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The most levels per side `pinion book --depth` shows.
pub const MAX_BOOK_DEPTH: u64 = 100_000;

impl BookArgs {
    /// The flags as config overrides, the generic `--set` ones last (they win).
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.push(Override::string("input.source", self.input.clone()));
        if let Some(v) = &self.venue {
            o.push(Override::string("input.venue", v.clone()));
        }
        for s in &self.source.set {
            o.push(s.clone());
        }
        o
    }

    /// When to show the books.
    pub fn points(&self) -> DumpPoints {
        match (self.at, self.every) {
            (Some(n), _) => DumpPoints::At(n),
            (_, Some(n)) => DumpPoints::Every(n),
            (None, None) => DumpPoints::End,
        }
    }
}

/// `pinion convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The recording to read (any format pinion reads, told from its content; a cryptofeed .ws
    /// with its .http beside it).
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// The .pnr file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// How the market data frames are written: `json` as recorded, or `sbe`, Binance Spot's
    /// binary encoding.
    #[arg(long, value_enum, default_value = "json")]
    pub encoding: crate::pipeline::ConvertEncoding,
}

/// `pinion config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config and generic overrides to check.
    #[command(flatten)]
    pub source: ConfigSource,
    /// Print the embedded configs/replay.toml (every key with its default, documented).
    #[arg(long)]
    pub show: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `pinion replay <flags>` against the embedded config, or against `file` when given.
    fn conflicts(flags: &[&str], file: Option<&str>) -> Result<(), FlagConflict> {
        let cli = Cli::parse_from(["pinion", "replay"].iter().chain(flags));
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        let text = file.unwrap_or(crate::config::REPLAY_TOML);
        let config = Config::parse_with(text, "t.toml", &args.overrides()).expect("parses");
        args.check_conflicts(&config)
    }

    #[test]
    fn conflicting_flags_are_refused_with_the_reason() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--speed", "2", "--pacing", "max"],
                "--speed 2 cannot go with --pacing max: the speed scales",
            ),
            (
                &["--pacing", "max", "--rate", "1000"],
                "--rate 1000 cannot go with --pacing max: a rate paces",
            ),
            (
                &["--speed", "2", "--rate", "1000"],
                "--speed 2 cannot go with --rate 1000: a fixed rate ignores",
            ),
            (
                &["--input", "day.hbt.gz", "--records", "5"],
                "--records 5 cannot go with --input day.hbt.gz: --records sets the length of the \
                 synthetic market",
            ),
            (
                &["--venue", "binance-usdm"],
                "--venue binance-usdm cannot go with input.source = \"synthetic\" in the config",
            ),
            (
                &["--input", "synthetic", "--venue", "binance-usdm"],
                "--venue binance-usdm cannot go with --input synthetic",
            ),
            (
                &["--placement", "custom", "--cores", "0,1"],
                "--cores 0,1 cannot go with --placement custom",
            ),
        ];
        for (flags, want) in cases {
            let err = conflicts(flags, None).expect_err(&format!("{flags:?}"));
            assert!(err.to_string().starts_with(want), "{flags:?}: {err}");
        }
        // The same flags alone, or with what they need, are fine.
        for flags in [
            &["--speed", "2"][..],
            &["--pacing", "paced", "--rate", "1000"],
            &["--pacing", "max"],
            &["--records", "5"],
            &["--input", "synthetic", "--records", "5"],
            &[
                "--input",
                "day.hbt.gz",
                "--venue",
                "binance-usdm",
                "--max-records",
                "9",
            ],
            &["--placement", "2", "--cores", "0,1"],
        ] {
            assert_eq!(conflicts(flags, None), Ok(()), "{flags:?}");
        }
    }

    #[test]
    fn a_flag_the_config_file_would_ignore_names_the_key() {
        let max = "[pacing]\nmode = \"max\"\n";
        let err = conflicts(&["--speed", "3"], Some(max)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--speed 3 cannot go with pacing.mode = \"max\" in the config: the speed scales a \
             paced replay's waits, and max pacing does not wait"
        );
        // `--pacing paced` on the command line overrides the file: no conflict.
        assert_eq!(
            conflicts(&["--speed", "3", "--pacing", "paced"], Some(max)),
            Ok(())
        );
        let rate = "[pacing]\nmode = \"paced\"\nrate = 500\n";
        let err = conflicts(&["--speed", "3"], Some(rate)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--speed 3 cannot go with pacing.rate = 500 in the config"),
            "{err}"
        );
        let recording = "[input]\nsource = \"day.hbt.gz\"\n";
        let err = conflicts(&["--records", "7"], Some(recording)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--records 7 cannot go with input.source = \"day.hbt.gz\""),
            "{err}"
        );
        let custom = "[placement]\nmode = \"custom\"\n[[placement.threads]]\nname = \"a\"\n\
                      wait = \"park\"\nstages = [\"feed\", \"book\", \"strategy\", \"gateway\"]\n";
        let err = conflicts(&["--wait", "busy-spin"], Some(custom)).unwrap_err();
        assert!(
            err.to_string()
                .contains("every thread of the custom placement names its own wait"),
            "{err}"
        );
        assert_eq!(conflicts(&["--wait", "busy-spin"], None), Ok(()));
    }

    #[test]
    fn flags_become_overrides() {
        let cli = Cli::parse_from([
            "pinion",
            "replay",
            "--input",
            "a.hbt.gz",
            "--placement",
            "1",
            "--cores",
            "0,1",
            "--pacing",
            "max",
            "--set",
            "placement.mode=4",
        ]);
        let Command::Replay(args) = cli.command else {
            panic!("not replay");
        };
        let o = args.overrides();
        let keys: Vec<&str> = o.0.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "input.source",
                "placement.mode",
                "placement.cores",
                "pacing.mode",
                "placement.mode"
            ]
        );
        // The generic --set comes last, so it wins.
        assert_eq!(o.0[4].value, toml::Value::Integer(4));
    }
}
