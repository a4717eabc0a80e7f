//! End to end with SBE input against JSON input: the same Binance Spot recording, converted
//! once into pinion's `.pnr` with its market data as recorded (JSON) and once as the SBE frames
//! Binance would have sent for it (`pinion convert --encoding sbe`), replayed through the whole
//! pipeline (reader, decoder, book, strategy, simulated venue), the two interleaved round by
//! round in one run. The JSON side is the baseline.
//!
//! Both files hold the same messages in the same order (the recording's `@depth`, `@bookTicker`
//! and `@trade` all have SBE twins), so both sides see the same events and the strategy makes
//! the same decisions: the difference is the decoding.
//!
//! - Throughput: pacing `max`, placement 1 (every stage on one thread, pinned to the second
//!   allowed core), so decoding is a visible share of each record's cost; records per second,
//!   the median of each side and the median of the rounds' own SBE/JSON ratios.
//! - Latency: pacing `paced` at 20 000 records/s, placement 2 (feed+book | strategy+gateway)
//!   pinned to the first two allowed cores, wait spin-then-yield; tick-to-trade (`t0`, the
//!   frame read, to the order handed to the venue) p50 and p99, for all orders and for those
//!   decided on a depth message (decoded and applied in full), the median over the rounds, and
//!   the median of the rounds' own p50 differences, JSON - SBE.
//!
//! `cargo bench -p pinion-benches --bench sbe_e2e` (`PINION_BENCH_ROUNDS`, default 9). Figures
//! depend on the machine state printed first: on a shared or loaded host, read the ratios.

use std::path::Path;

use pinion_benches::{median, run_replay};
use pinion_engine::latency::format_ns;
use pinion_engine::pipeline::{self, ConvertEncoding, PipelineReport};
use pinion_engine::runtime::placement::allowed_cores;

/// The recording measured.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// Paced rate of the latency runs, records per second.
const PACED_RATE: u64 = 20_000;

/// A histogram's percentile `p` (or its count, for `None`) in a run; 0 when absent.
fn figure(r: &PipelineReport, histogram: &str, p: Option<f64>) -> f64 {
    r.latency.get(histogram).map_or(0.0, |h| match p {
        Some(p) => h.hist.value_at_quantile(p) as f64,
        None => h.count() as f64,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    println!("sbe_e2e: host: {}", pinion_benches::host_state());
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        println!("sbe_e2e: {RECORDING} not found; nothing to measure");
        return;
    };
    let scratch = std::env::temp_dir().join(format!("pinion-sbe-e2e-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        panic!("creating {}: {e}", scratch.display());
    }
    let json = scratch.join("spot-json.pnr");
    let sbe = scratch.join("spot-sbe.pnr");
    for (out, encoding) in [(&json, ConvertEncoding::Json), (&sbe, ConvertEncoding::Sbe)] {
        match pipeline::convert_recording_as(
            &pinion_benches::replay_settings(&path, &[]),
            &path,
            out,
            encoding,
        ) {
            Ok(summary) => {
                if let Some(s) = summary.sbe {
                    println!("sbe_e2e: SBE conversion: {s:?}");
                }
            }
            Err(e) => panic!("converting {RECORDING} ({encoding:?}): {e}"),
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    println!(
        "sbe_e2e: {RECORDING} as .pnr: JSON {} bytes, SBE {} bytes",
        size(&json),
        size(&sbe)
    );

    let rounds: usize = std::env::var("PINION_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 9 } else { 1 });
    let allowed = allowed_cores();
    let cores: Vec<String> = allowed.iter().take(2).map(ToString::to_string).collect();
    let pinned = format!("[{}]", cores.join(", "));
    let fused = format!("[{}]", cores.last().map_or("0", String::as_str));
    let max_records = if full { "0" } else { "5000" };
    let rate = PACED_RATE.to_string();
    let throughput_of = |p: &Path| {
        pinion_benches::replay_settings(
            p,
            &[
                ("placement.mode", "1"),
                ("placement.cores", &fused),
                ("pacing.mode", "max"),
                ("input.max_records", max_records),
            ],
        )
    };
    let latency_of = |p: &Path| {
        pinion_benches::replay_settings(
            p,
            &[
                ("placement.mode", "2"),
                ("placement.cores", &pinned),
                ("placement.wait", "spin-then-yield"),
                ("pacing.mode", "paced"),
                ("pacing.rate", &rate),
                ("input.read_ahead", "false"),
                ("input.max_records", max_records),
            ],
        )
    };
    let sides = [("JSON", &json), ("SBE", &sbe)];
    let mut tput: [Vec<PipelineReport>; 2] = [Vec::new(), Vec::new()];
    let mut lat: [Vec<PipelineReport>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Which side goes first alternates, so a host whose speed drifts favours neither.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            tput[side].push(run_replay(&throughput_of(sides[side].1)));
        }
        for side in order {
            lat[side].push(run_replay(&latency_of(sides[side].1)));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    for (k, (name, _)) in sides.iter().enumerate() {
        let records = tput[k].first().map_or(0, |r| r.throughput.records);
        let orders = lat[k]
            .first()
            .map_or(0.0, |r| figure(r, "tick_to_trade", None));
        println!("sbe_e2e: {name}: {records} records a run, {orders} orders a latency run");
    }
    let same_orders = lat[0]
        .iter()
        .zip(&lat[1])
        .all(|(a, b)| figure(a, "tick_to_trade", None) == figure(b, "tick_to_trade", None));
    println!();
    println!(
        "{RECORDING}, {rounds} rounds, JSON and SBE once each per measure, the first alternating"
    );
    let rps = |r: &PipelineReport| r.throughput.records_per_second();
    let ratios: Vec<f64> = tput[1]
        .iter()
        .zip(&tput[0])
        .map(|(s, j)| rps(s) / rps(j))
        .collect();
    println!(
        "throughput (placement 1 pinned to {fused}, pacing max), records/s median: JSON {:.0}, \
         SBE {:.0}; SBE/JSON {:.3} (median of the rounds' ratios, range {:.3}-{:.3})",
        median(tput[0].iter().map(rps).collect()),
        median(tput[1].iter().map(rps).collect()),
        median(ratios.clone()),
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "tick-to-trade (placement 2 pinned to {pinned}, paced {PACED_RATE}/s, spin-then-yield), \
         median over the rounds:"
    );
    println!(
        "{:<26} {:>5} {:>8} {:>10} {:>10} {:>22}",
        "orders decided on", "side", "orders", "p50", "p99", "p50 JSON-SBE (median)"
    );
    for (label, histogram) in [
        ("anything", "tick_to_trade"),
        ("a depth message", "tick_to_trade.on_depth"),
        ("a best bid/ask", "tick_to_trade.on_ticker"),
    ] {
        let diff = median(
            lat[0]
                .iter()
                .zip(&lat[1])
                .map(|(j, s)| figure(j, histogram, Some(0.5)) - figure(s, histogram, Some(0.5)))
                .collect(),
        );
        for (k, (name, _)) in sides.iter().enumerate() {
            let med =
                |p: Option<f64>| median(lat[k].iter().map(|r| figure(r, histogram, p)).collect());
            let diff_text = if k == 1 {
                format!(
                    "{}{}",
                    if diff < 0.0 { "-" } else { "+" },
                    format_ns(diff.abs() as u64)
                )
            } else {
                String::new()
            };
            println!(
                "{label:<26} {name:>5} {:>8} {:>10} {:>10} {diff_text:>22}",
                med(None),
                format_ns(med(Some(0.5)) as u64),
                format_ns(med(Some(0.99)) as u64),
            );
        }
    }
    if !same_orders {
        println!(
            "note: the two sides did not make the same number of orders in every round: the \
             tick-to-trade figures compare different decisions"
        );
    }
}
