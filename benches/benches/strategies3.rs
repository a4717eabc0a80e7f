//! Three strategy instances on one instrument against one: the same real Binance Spot recording
//! replayed through the whole pipeline (reader, decoder, book, strategy, simulated venue) with
//! one `[[strategy]]` (a market maker with a budget of its own) and with three (that market
//! maker, an imbalance trader and a quote chaser, each with a budget of its own) sharing the
//! strategy thread as slots of the instrument, and with the one instance again as the control:
//! how far two identical sides differ on this host is the noise the three/one figures are read
//! against. Every round runs the three sides once per measure, the first rotating, all in this
//! process.
//!
//! - Throughput: pacing `max`, placement 1 (every stage on one thread, pinned to the second
//!   allowed core), so the strategy's work is a visible share of each event's cost; the
//!   recording converted to `.pnr` first (so inflation does not hide the stages). Events (sent
//!   to the book stage) per second, each side's median and the medians of the rounds' own
//!   three/one and one-again/one ratios.
//! - Latency: pacing `paced` at 20 000 records/s, placement 2 (feed+book | strategy+gateway)
//!   pinned to the first two allowed cores, wait spin-then-yield, gzip inflated inline (as the
//!   e2e benchmark's latency runs); from the run's histograms, p50 and p99 of tick-to-trade
//!   (`t0` to the order handed to the venue), of `strategy.t0_to_decision` (`t0` to the end of
//!   every instance's decision on a view, for every view: the same views on both sides), of
//!   `strategy.t0_to_order_decision` (the same, for the views that led to an order) and of
//!   `strategy.service` (the stage's time per input); each side's median over the rounds and the
//!   medians of the rounds' own three/one and one-again/one ratios.
//!
//! Every run is checked to have traded: a throughput run reads the whole recording, and each of
//! its instances must have fills of its own; a latency run must have sent orders. The three
//! sides do different work by design (three instances decide on every view and trade more);
//! tick-to-trade compares different orders, the decision histograms the same views.
//!
//! `cargo bench -p pinion-benches --bench strategies3` (`PINION_BENCH_ROUNDS`, default 9;
//! `PINION_BENCH_MAX_RECORDS`: where the latency runs stop, default the whole recording). Figures
//! depend on the machine state printed first: on a shared or loaded host, read the three/one
//! ratios beside the control's, not the absolute figures.

use pinion_benches::{config_settings, median, run_replay};
use pinion_engine::latency::format_ns;
use pinion_engine::pipeline::{self, PipelineReport};
use pinion_engine::runtime::placement::allowed_cores;

/// The recording measured.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// Paced rate of the latency runs, records per second.
const PACED_RATE: u64 = 20_000;

/// The account and the instrument, as the shipped backtest configs have them; placement, pacing
/// and the input come from each run's overrides.
const ACCOUNT: &str = r#"
[risk]
max_order_qty = "0.01"
max_notional = "1000"
max_position = "0.005"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50

[fees]
maker_bps = 10.0
taker_bps = 10.0

[[instrument]]
venue = "binance-spot"
symbol = "BTCUSDT"
tick_size = "0.01"
step_size = "0.00001"
qty_decimals = 8
"#;

/// The instance of the one-strategy side, and the first of the three: market making on the
/// microprice, two levels a side (`configs/backtest-market-making.toml`'s settings), within a
/// budget of its own.
const MAKER: &str = r#"
[[strategy]]
name = "maker"
kind = "market-making"
order_qty = "0.001"
[strategy.market_making]
fair = "microprice"
half_spread_bps = 0.5
skew_bps = 2.0
requote_bps = 0.5
levels = 2
level_step_bps = 0.5
[strategy.risk]
max_position = "0.002"
"#;

/// The second and third of the three: an imbalance trader taking the touch and a quote chaser
/// joining it (`configs/backtest-quote-chase.toml`'s settings), each within a budget of its own.
const TAKER_AND_CHASER: &str = r#"
[[strategy]]
name = "taker"
kind = "imbalance"
order_qty = "0.001"
threshold = 0.5
[strategy.risk]
max_position = "0.002"
max_open_orders = 2

[[strategy]]
name = "chaser"
kind = "quote-chase"
order_qty = "0.001"
[strategy.quote_chase]
side = "buy"
improve_ticks = 0
limit_bps = 5.0
give_up_ms = 2000
cycle = true
[strategy.risk]
max_position = "0.002"
max_open_orders = 2
"#;

/// The config file name messages name.
const CONFIG_NAME: &str = "strategies3.toml";

/// One side of the comparison.
struct Side {
    name: &'static str,
    /// The config: the account and its `[[strategy]]` tables.
    config: String,
    /// The instances' names, in config order.
    instances: &'static [&'static str],
}

/// A histogram's percentile `p` (or its count, for `None`) in a run; 0 when absent.
fn figure(r: &PipelineReport, histogram: &str, p: Option<f64>) -> f64 {
    r.latency.get(histogram).map_or(0.0, |h| match p {
        Some(p) => h.hist.value_at_quantile(p) as f64,
        None => h.count() as f64,
    })
}

/// Each instance's fills in a run, in config order.
///
/// # Panics
/// When the run did not trade the recording's one instrument with `side`'s instances, or one
/// of them has no fill: a side that did not trade would measure nothing.
fn fills_checked(r: &PipelineReport, side: &Side) -> Vec<u64> {
    let [t] = r.trading.as_slice() else {
        panic!(
            "{}: {} instruments traded, expected the recording's one",
            side.name,
            r.trading.len()
        );
    };
    let names: Vec<&str> = t.instances.iter().map(|i| &*i.name).collect();
    assert_eq!(names, side.instances, "{}: the instances", side.name);
    let fills: Vec<u64> = t.instances.iter().map(|i| i.fills).collect();
    for (name, f) in side.instances.iter().zip(&fills) {
        assert!(
            *f > 0,
            "{}: instance {name} has no fill: the comparison would mean nothing",
            side.name
        );
    }
    fills
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    println!("strategies3: host: {}", pinion_benches::host_state());
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        println!("strategies3: {RECORDING} not found; nothing to measure");
        return;
    };
    let rounds: usize = env_number("PINION_BENCH_ROUNDS").unwrap_or(if full { 9 } else { 1 });
    let max_records: u64 =
        env_number("PINION_BENCH_MAX_RECORDS").unwrap_or(if full { 0 } else { 5_000 });
    let scratch = std::env::temp_dir().join(format!("pinion-strategies3-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        panic!("creating {}: {e}", scratch.display());
    }
    let pnr = scratch.join("spot.pnr");
    if let Err(e) =
        pipeline::convert_recording(&pinion_benches::replay_settings(&path, &[]), &path, &pnr)
    {
        panic!("converting {RECORDING}: {e}");
    }

    let one = Side {
        name: "one",
        config: format!("{ACCOUNT}{MAKER}"),
        instances: &["maker"],
    };
    let three = Side {
        name: "three",
        config: format!("{ACCOUNT}{MAKER}{TAKER_AND_CHASER}"),
        instances: &["maker", "taker", "chaser"],
    };
    let again = Side {
        name: "one again",
        config: one.config.clone(),
        instances: one.instances,
    };
    let sides = [one, three, again];

    let allowed = allowed_cores();
    let cores: Vec<String> = allowed.iter().take(2).map(ToString::to_string).collect();
    let pinned = format!("[{}]", cores.join(", "));
    let fused = format!("[{}]", cores.last().map_or("0", String::as_str));
    let rate = PACED_RATE.to_string();
    let max_records_text = max_records.to_string();
    let throughput_of = |side: &Side| {
        config_settings(
            &side.config,
            CONFIG_NAME,
            &pnr,
            &[
                ("placement.mode", "1"),
                ("placement.cores", &fused),
                ("placement.wait", "spin-then-yield"),
                ("pacing.mode", "max"),
            ],
        )
    };
    let latency_of = |side: &Side| {
        config_settings(
            &side.config,
            CONFIG_NAME,
            &path,
            &[
                ("placement.mode", "2"),
                ("placement.cores", &pinned),
                ("placement.wait", "spin-then-yield"),
                ("pacing.mode", "paced"),
                ("pacing.rate", &rate),
                ("input.read_ahead", "false"),
                ("input.max_records", &max_records_text),
            ],
        )
    };
    let tput_settings: Vec<_> = sides.iter().map(throughput_of).collect();
    let lat_settings: Vec<_> = sides.iter().map(latency_of).collect();

    // An unmeasured pass of each side, which also shows what each instance does in a run.
    let mut fills_per_side = Vec::new();
    for (side, s) in sides.iter().zip(&tput_settings) {
        let r = run_replay(s);
        let fills = fills_checked(&r, side);
        let t = &r.trading[0];
        let each: Vec<String> = t
            .instances
            .iter()
            .map(|i| {
                format!(
                    "{} ({}) {} orders {} fills",
                    i.name,
                    i.strategy,
                    i.stats.orders.saturating_sub(i.stats.risk_rejects),
                    i.fills
                )
            })
            .collect();
        println!(
            "strategies3: {}: {} records, {} events, {} orders a run; {}; self-trades stopped {}",
            side.name,
            r.throughput.records,
            r.throughput.events,
            r.throughput.orders,
            each.join(", "),
            r.counter("strategy", "self_trades_stopped"),
        );
        fills_per_side.push(fills);
    }

    let mut tput: [Vec<PipelineReport>; 3] = Default::default();
    let mut lat: [Vec<PipelineReport>; 3] = Default::default();
    let mut same_fills = true;
    for round in 0..rounds {
        // Which side goes first rotates from round to round, so a host whose speed drifts
        // favours none.
        let order = [0, 1, 2].map(|k| (k + round) % 3);
        for k in order {
            let r = run_replay(&tput_settings[k]);
            same_fills &= fills_checked(&r, &sides[k]) == fills_per_side[k];
            tput[k].push(r);
        }
        for k in order {
            let r = run_replay(&lat_settings[k]);
            assert!(
                figure(&r, "tick_to_trade", None) > 0.0,
                "{}: a latency run sent no order",
                sides[k].name
            );
            lat[k].push(r);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!();
    println!(
        "{RECORDING}, {rounds} rounds, each running one, three and one again (the control) once \
         per measure, the first rotating, all in this process; one = maker (market-making); \
         three = maker, taker (imbalance), chaser (quote-chase), each with a budget of its own"
    );
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let eps = |r: &PipelineReport| r.throughput.events_per_second();
    let ratios = |runs: &[Vec<PipelineReport>; 3], k: usize, f: &dyn Fn(&PipelineReport) -> f64| {
        runs[k]
            .iter()
            .zip(&runs[0])
            .map(|(a, b)| f(a) / f(b))
            .collect::<Vec<f64>>()
    };
    let (three_one, control) = (ratios(&tput, 1, &eps), ratios(&tput, 2, &eps));
    println!(
        "throughput (placement 1 pinned to {fused}, pacing max, the recording as .pnr), events/s \
         median: one {:.0}, three {:.0}, one again {:.0}",
        median(tput[0].iter().map(eps).collect()),
        median(tput[1].iter().map(eps).collect()),
        median(tput[2].iter().map(eps).collect()),
    );
    println!(
        "  three/one {:.3} (median of the rounds' ratios: {}); control one-again/one {:.3} ({})",
        median(three_one.clone()),
        list(&three_one),
        median(control.clone()),
        list(&control),
    );
    println!(
        "latency (placement 2 pinned to {pinned}, paced {PACED_RATE}/s, spin-then-yield, gzip \
         inline{}), median over the rounds; three/one and control = medians of the rounds' own \
         ratios (above 1: slower)",
        if max_records == 0 {
            String::new()
        } else {
            format!(", first {max_records} records")
        }
    );
    println!(
        "{:<34} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "histogram", "count 1", "count 3", "one", "three", "one again", "three/one", "control"
    );
    for (histogram, label, p) in [
        ("tick_to_trade", "p50", 0.5),
        ("tick_to_trade", "p99", 0.99),
        ("strategy.t0_to_decision", "p50", 0.5),
        ("strategy.t0_to_decision", "p99", 0.99),
        ("strategy.t0_to_order_decision", "p50", 0.5),
        ("strategy.t0_to_order_decision", "p99", 0.99),
        ("strategy.service", "p50", 0.5),
        ("strategy.service", "p99", 0.99),
    ] {
        let at = |r: &PipelineReport| figure(r, histogram, Some(p));
        let med = |k: usize| format_ns(median(lat[k].iter().map(at).collect()) as u64);
        let count = |k: usize| median(lat[k].iter().map(|r| figure(r, histogram, None)).collect());
        println!(
            "{:<34} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10.3} {:>8.3}",
            format!("{histogram} {label}"),
            count(0),
            count(1),
            med(0),
            med(1),
            med(2),
            median(ratios(&lat, 1, &at)),
            median(ratios(&lat, 2, &at)),
        );
    }
    let decision = |r: &PipelineReport| figure(r, "strategy.t0_to_decision", Some(0.5));
    println!(
        "  strategy.t0_to_decision p50 rounds' ratios: three/one {}; control {}",
        list(&ratios(&lat, 1, &decision)),
        list(&ratios(&lat, 2, &decision)),
    );
    if !same_fills {
        println!(
            "note: a side's fills differed between its runs: the runs did not all do the same work"
        );
    }
}
