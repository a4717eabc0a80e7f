//! The `pinion` command line (clap derive). Flags are turned into config [`Overrides`] once, so
//! a flag is checked exactly like the key it overrides; `main.rs` only wires this to the
//! library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Override, Overrides};

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
                   orders_per_second, order_burst, price_band_bps
  [gateway]        venue (sim), latency_us
  [[instrument]]   venue, symbol, tick_size, step_size, qty_decimals, px_decimals
  [[exchange_info]] venue, path, optional, qty_decimals
  [report]         json, hgrm_dir
Flags override keys; `--set key=value` overrides any key.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the synthetic market or a recording through the whole pipeline and report
    /// latency and throughput.
    ///
    /// Without --config the embedded configs/replay.toml is used (print it with
    /// `pinion config --show`). Every flag overrides one config key, named in its help; any
    /// other key can be set with --set. Latency figures are meaningful with --pacing paced.
    Replay(Box<ReplayArgs>),
    /// Convert a recording (any format pinion reads) into pinion's own .pnr format.
    Convert(ConvertArgs),
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
    /// No progress bar [runtime.progress = false].
    #[arg(long)]
    pub no_progress: bool,
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
        if self.no_progress {
            o.push(Override::value("runtime.progress", false));
        }
        for s in &self.source.set {
            o.push(s.clone());
        }
        o
    }
}

/// TOML integers are i64; larger values saturate (and then fail validation where it matters).
fn to_int(v: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
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
