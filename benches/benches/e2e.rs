//! End-to-end benchmark: the whole pipeline (reader, parser, book, strategy, simulated venue)
//! on the real Binance recordings.
//!
//! - Throughput: records per second with `max` pacing, placements `1` (fused) and `2`
//!   (feed+book | strategy+gateway), pinned, median of several runs; a gzip recording both with
//!   its inflation on the feed's thread and on the read-ahead thread. The in-run baseline is the
//!   reader and decoder alone in one loop on the same file, decompressing the same way: the
//!   ceiling the pipeline can approach.
//! - Latency: `paced` replay at a fixed rate with placement `2`; tick-to-trade (`t0` → order
//!   handed to the venue), for all orders and split by what each was decided on (a book
//!   ticker, or a depth message parsed and applied in full), median of several runs, with the two
//!   threads pinned to the first two allowed cores. Its in-run baseline is the host's own stalls
//!   on those cores (`pinion jitter`): the wait of an event arriving at a random moment. A view
//!   reaches the strategy+gateway thread that way, so that core's wait is a floor under
//!   tick-to-trade that no code on the host goes below.
//!
//! Figures depend on the machine state printed first (cores, load, governor): on a shared or
//! loaded host they are upper bounds for latency and lower bounds for throughput. Run with
//! `cargo bench -p pinion-benches --bench e2e` (or `scripts/bench.sh e2e`). Histograms are
//! written as `.hgrm` files to `target/e2e-hgrm/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pinion_benches::{median, run_replay};
use pinion_engine::config::Settings;
use pinion_engine::host::jitter;
use pinion_engine::latency::format_ns;
use pinion_engine::pipeline::{self, PipelineReport};
use pinion_engine::runtime::placement::allowed_cores;
use pinion_feed::parse::Decoder;

/// Runs per throughput figure (the median is reported).
const RUNS: usize = 9;
/// Paced rate for the latency runs, records per second.
const PACED_RATE: u64 = 20_000;
/// Runs per latency figure (the median of each percentile is reported): a run has only a few
/// hundred orders, so its p99 is its second or third worst and one stalled moment moves it.
const LATENCY_RUNS: usize = 3;
/// Seconds of the host-stall baseline.
const JITTER_SECS: u64 = 4;

/// Reader + decoder in one loop: records per second (the baseline).
fn baseline(settings: &Settings) -> f64 {
    let prepared = match pipeline::prepare(settings) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let mut source = prepared.source;
    let conns = prepared.conns;
    let mut decoder = Decoder::new(prepared.instruments);
    let mut events = 0u64;
    let mut records = 0u64;
    let start = Instant::now();
    while let Ok(Some(rec)) = source.next_record() {
        records += 1;
        if let Some(ctx) = conns.get(rec.conn) {
            let _ = decoder.decode(ctx, &rec, 0, |_| events += 1);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(events);
    records as f64 / secs
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    println!("e2e: host: {}", pinion_benches::host_state());
    let files = [
        "binance/spot-btcusdt-20240808.hbt.gz",
        "binance/usdm-btcusdt-20240808.hbt.gz",
    ];
    let mut paths: Vec<(String, PathBuf)> = files
        .iter()
        .filter_map(|f| pinion_testkit::data::require(f).map(|p| ((*f).to_owned(), p)))
        .collect();
    if paths.is_empty() {
        println!("e2e: no recordings found; nothing to measure");
        return;
    }
    // The same recordings converted to pinion's own format: the pipeline without gzip and line
    // splitting in front of it.
    let pnr_dir = std::env::temp_dir().join(format!("pinion-e2e-{}", std::process::id()));
    if full && std::fs::create_dir_all(&pnr_dir).is_ok() {
        let originals: Vec<(String, PathBuf)> = paths.clone();
        for (name, path) in originals {
            let stem = name.replace('/', "_").replace(".hbt.gz", "");
            let out = pnr_dir.join(format!("{stem}.pnr"));
            let s = pinion_benches::replay_settings(&path, &[]);
            match pipeline::convert_recording(&s, &path, &out) {
                Ok(_) => paths.push((format!("{name} (as .pnr)"), out)),
                Err(e) => println!("e2e: could not convert {name}: {e}"),
            }
        }
    }
    if !full {
        // A smoke run: one fused replay of the first recording, so the harness is exercised.
        let s = pinion_benches::replay_settings(
            &paths[0].1,
            &[("placement.mode", "1"), ("pacing.mode", "max")],
        );
        let r = run_replay(&s);
        println!("e2e smoke: {} records", r.throughput.records);
        return;
    }

    // Every run is pinned: placement 1's thread to the second allowed core (the first is left
    // to the read-ahead thread and the rest of the host), placement 2's two threads to the
    // first two. The latency runs' host-stall baseline is measured on the same two cores.
    let allowed = allowed_cores();
    let cores: Vec<usize> = allowed.iter().copied().take(2).collect();
    let core_list = |cs: &[usize]| {
        format!(
            "[{}]",
            cs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let pinned = core_list(&cores);
    let fused_core = core_list(&cores[cores.len().saturating_sub(1)..]);
    let cores_for = |placement: &str| -> &str {
        if placement == "1" {
            &fused_core
        } else {
            &pinned
        }
    };

    println!();
    println!(
        "throughput, pacing max, wait spin-then-yield (median of {RUNS} rounds, each running \
         every configuration of a recording once; baseline = reader + decoder alone, \
         decompressing the same way; ratio = median of the rounds' own ratios); gzip inflated \
         on the feed's thread (inline) or on a helper thread ahead of it (ahead)"
    );
    println!(
        "{:<50} {:>9} {:>7} {:<10} {:>14} {:>14} {:>9}",
        "recording", "placement", "cores", "decompress", "records/s", "baseline/s", "ratio"
    );
    for (name, path) in &paths {
        let runs: &[(&str, &str, bool)] = if name.ends_with(".hbt.gz") {
            &[
                ("1", "inline", false),
                ("1", "ahead", true),
                ("2", "ahead", true),
            ]
        } else {
            &[("1", "-", true), ("2", "-", true)]
        };
        // Every configuration once a round, the baselines too, so each median covers the same
        // minutes of a host whose speed drifts; the ratio is the median of each round's own.
        let base_settings = [false, true].map(|ahead| {
            let read_ahead = ahead.to_string();
            pinion_benches::replay_settings(
                path,
                &[("pacing.mode", "max"), ("input.read_ahead", &read_ahead)],
            )
        });
        let run_settings: Vec<Settings> = runs
            .iter()
            .map(|&(placement, _, ahead)| {
                let on = cores_for(placement);
                let read_ahead = ahead.to_string();
                pinion_benches::replay_settings(
                    path,
                    &[
                        ("placement.mode", placement),
                        ("placement.cores", on),
                        ("placement.wait", "spin-then-yield"),
                        ("pacing.mode", "max"),
                        ("input.read_ahead", &read_ahead),
                    ],
                )
            })
            .collect();
        let used_bases: Vec<bool> = [false, true]
            .into_iter()
            .filter(|&ahead| runs.iter().any(|r| r.2 == ahead))
            .collect();
        let mut bases = [Vec::new(), Vec::new()];
        let mut rates = vec![Vec::new(); runs.len()];
        for _ in 0..RUNS {
            for &ahead in &used_bases {
                bases[usize::from(ahead)].push(baseline(&base_settings[usize::from(ahead)]));
            }
            for (rate, s) in rates.iter_mut().zip(&run_settings) {
                rate.push(run_replay(s).throughput.records_per_second());
            }
        }
        for (&(placement, decompress, ahead), rate) in runs.iter().zip(&rates) {
            let base = &bases[usize::from(ahead)];
            let ratio = median(rate.iter().zip(base).map(|(r, b)| r / b).collect());
            let on = cores_for(placement);
            println!(
                "{name:<50} {placement:>9} {on:>7} {decompress:<10} {:>14.0} {:>14.0} {ratio:>9.2}",
                median(rate.clone()),
                median(base.clone()),
            );
        }
    }

    println!();
    println!(
        "latency, pacing paced at {PACED_RATE} records/s, placement 2, gzip inflated inline; \
         each figure the median of {LATENCY_RUNS} runs; all orders, then those decided on a \
         book ticker and on a depth commit"
    );
    println!(
        "{:<40} {:<16} {:>7} {:>9} {:>9} {:>9} {:>9} | {:>6} {:>9} {:>9} | {:>6} {:>9} {:>9}",
        "recording",
        "wait",
        "orders",
        "t2t p50",
        "t2t p90",
        "t2t p99",
        "t2t max",
        "ticker",
        "p50",
        "p99",
        "depth",
        "p50",
        "p99"
    );
    let hgrm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-hgrm");
    for (name, path) in paths.iter().filter(|(n, _)| !n.ends_with("(as .pnr)")) {
        for wait in ["busy-spin", "spin-then-yield"] {
            let rate = PACED_RATE.to_string();
            // Inflation on the feed's thread: the two threads take both cores here, so a
            // read-ahead thread would have to preempt one of them, while inline inflation comes
            // before a frame's `t0` and stays outside tick-to-trade.
            let s = pinion_benches::replay_settings(
                path,
                &[
                    ("placement.mode", "2"),
                    ("placement.cores", &pinned),
                    ("placement.wait", wait),
                    ("pacing.mode", "paced"),
                    ("pacing.rate", &rate),
                    ("input.read_ahead", "false"),
                ],
            );
            let runs: Vec<PipelineReport> = (0..LATENCY_RUNS).map(|_| run_replay(&s)).collect();
            // The median over the runs of one histogram's count or percentile.
            let med = |h: &str, p: Option<f64>| {
                median(
                    runs.iter()
                        .map(|r| {
                            r.latency.get(h).map_or(0.0, |h| match p {
                                Some(p) => h.hist.value_at_quantile(p) as f64,
                                None => h.count() as f64,
                            })
                        })
                        .collect(),
                )
            };
            let ns = |h: &str, p: f64| format_ns(med(h, Some(p)) as u64);
            let (all, tick, depth) = (
                "tick_to_trade",
                "tick_to_trade.on_ticker",
                "tick_to_trade.on_depth",
            );
            println!(
                "{name:<40} {wait:<16} {:>7} {:>9} {:>9} {:>9} {:>9} | {:>6} {:>9} {:>9} | {:>6} {:>9} {:>9}",
                med(all, None),
                ns(all, 0.5),
                ns(all, 0.9),
                ns(all, 0.99),
                ns(all, 1.0),
                med(tick, None),
                ns(tick, 0.5),
                ns(tick, 0.99),
                med(depth, None),
                ns(depth, 0.5),
                ns(depth, 0.99),
            );
            let stem = name.replace('/', "_").replace(".hbt.gz", "");
            let dir = hgrm.join(format!("{stem}-p2-{wait}"));
            if let Some(last) = runs.last()
                && let Err(e) = last.write_hgrm(&dir)
            {
                println!("  (could not write .hgrm files to {}: {e})", dir.display());
            }
        }
    }
    // The same cores with nothing but a clock-reading thread on each: how long a thread there
    // waits for the host alone. The strategy+gateway core's wait is a floor under the
    // tick-to-trade above (each view arrives there at a random moment).
    println!();
    if cores.len() < 2 {
        println!("baseline: fewer than two allowed cores ({cores:?}); host stalls not measured");
    } else {
        println!(
            "baseline in the same run: the host's own stalls on the latency runs' cores (feed+book \
             {}, strategy+gateway {}), one clock-reading thread per core, both at once, \
             {JITTER_SECS} s; \"wait\" = how long an event arriving at a random moment waits for \
             the thread to run",
            cores[0], cores[1]
        );
        let reports = jitter::measure(
            &cores,
            &allowed,
            Duration::from_secs(JITTER_SECS),
            jitter::DEFAULT_MIN_GAP_NS,
        );
        print!("{}", jitter::table(&reports));
    }
    println!();
    println!("histograms: {}", hgrm.display());
    let _ = std::fs::remove_dir_all(&pnr_dir);
}
