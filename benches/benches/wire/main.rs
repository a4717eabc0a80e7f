//! Wire-to-book benchmark: pinion's live feed transport, decoder and book against a typical
//! Rust peer's stack, on loopback, with the baseline measured in the same run.
//!
//! A writer thread (`server`) serves the real Binance Spot recording over TLS WebSocket on
//! 127.0.0.1; a client thread reads, decodes and applies each frame to a book:
//!
//! - **pinion** (`pinion_client`): `pinion_net::wss` on a `mio` poll loop, pinion's
//!   [`Decoder`](pinion_feed::parse::Decoder), `BookSync` over the array book;
//! - **baseline** (`baseline`): tokio (current-thread runtime, on the client thread) +
//!   tokio-tungstenite + tokio-rustls (ring, the same single trusted root) + `serde_json` typed
//!   structs + a `BTreeMap` book under the same sync rule.
//!
//! Both start from the recording's REST snapshot, loaded before the connection, and must make
//! the same decisions on every frame: after each run the counts of applied and stale depth
//! messages and of ahead, stale, matched and mismatched tickers, the last update id and the
//! final best bid and ask are compared between the sides, and every frame must arrive. A
//! difference, a missing frame or a frame that does not decode fails the run: it is not a
//! number.
//!
//! Two measurements, each run for pinion and the baseline interleaved round by round (the
//! order alternating, pinion first in even rounds), after one untimed round of each:
//!
//! 1. **Latency**: the writer sends the depth diffs and bookTickers (see `workload`), one every
//!    20 to 50 µs (uniformly drawn, the same sequence for every run), noting the instant
//!    before each write on the same `Instant` clock the client stamps with once the frame's
//!    events are applied. `applied − written` of every frame after a warm-up goes into an HDR
//!    histogram per run; the figures are the median over rounds of each run's percentiles, and
//!    the ratio the median of the rounds' own pinion/baseline ratios. Each side also stamps the
//!    socket read that brought a frame's last bytes, which splits its figure into written →
//!    read (the kernel's loopback path and the client's wake-up, much the same for both and
//!    where this host's stalls land) and read → applied (TLS, WebSocket, decoding, book: the
//!    clients' own stacks).
//! 2. **Throughput**: the writer sends bookTicker frames (about 150 bytes) back to back; one
//!    client thread reads, decodes and applies them; frames/s from the first frame's arrival to
//!    the last one applied.
//!
//! Allocations per frame are counted on each client thread after the warm-up with the counting
//! allocator, in total (transport included) and in the decode-and-apply step alone.
//!
//! The writer runs pinned to the first allowed core and the clients to the second when there
//! are two; both clients wait in `epoll_wait`, not spinning. After the rounds the host's own
//! stalls on those two cores are measured (`pinion jitter`, ordinary threads): the floor under
//! any latency here. On a host shared with other work, `-- --fifo` runs the writer and the
//! clients under SCHED_FIFO (needs the privilege; the writer spins, so other work on its core
//! gets only the kernel's real-time throttling share while the benchmark runs): the waking
//! client then preempts whatever else runs on its core, as on a tuned host.
//!
//! Run: `cargo bench -p pinion-benches --bench wire` (`-- --quick` for a short smoke run;
//! `cargo test --benches` also runs the quick mode). Results: a table on stdout and
//! `target/wire-bench.json`. Machine state: numbers mean something only on a quiet host with a
//! fixed CPU frequency; on a shared machine only the in-run ratios travel.

mod baseline;
mod pinion_client;
mod server;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pinion_engine::host::{SettingOutcome, jitter, realtime};
use pinion_engine::latency::format_ns;
use pinion_engine::runtime::placement::{PinOutcome, allowed_cores, pin_current_thread};
use pinion_exchange_sim::SelfSignedTls;
use pinion_testkit::alloc::CountingAlloc;
use serde_json::json;

use server::{Schedule, Writer};
use workload::Workload;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The run's settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    latency_rounds: usize,
    throughput_rounds: usize,
    /// Frames of the paced stream (at most the recording's).
    paced_frames: usize,
    /// bookTicker frames per throughput run.
    ticker_frames: usize,
    /// Frames at the start of a run left out of the figures.
    warm_up: usize,
    /// Gaps between paced frames, µs.
    gap_us: (u64, u64),
    /// Seconds of the host-stall measurement.
    jitter_secs: u64,
}

const FULL: Settings = Settings {
    latency_rounds: 11,
    throughput_rounds: 9,
    paced_frames: usize::MAX,
    ticker_frames: 500_000,
    warm_up: 1_000,
    gap_us: (20, 50),
    jitter_secs: 3,
};

const QUICK: Settings = Settings {
    latency_rounds: 3,
    throughput_rounds: 3,
    paced_frames: 3_000,
    ticker_frames: 20_000,
    warm_up: 300,
    gap_us: (20, 50),
    jitter_secs: 1,
};

/// What a client is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Messages to consume (exactly this many are sent).
    pub frames: usize,
    /// Messages before the counted part.
    pub warm_up: usize,
    /// Whether to stamp every frame (latency) or only the first and last (throughput).
    pub stamp_each: bool,
}

/// What a client's book decided over a run: must be the same on both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Depth messages applied.
    pub depth_applied: u64,
    /// Depth messages older than the book.
    pub depth_stale: u64,
    /// Tickers ahead of the book.
    pub tickers_ahead: u64,
    /// Tickers older than the book (or than the held one).
    pub tickers_stale: u64,
    /// Tickers equal to the book at the same update id.
    pub tickers_matched: u64,
    /// Tickers unequal to the book at the same update id.
    pub tickers_mismatched: u64,
    /// Times the book was thrown away (pinion; the baseline fails instead).
    pub resyncs: u64,
    /// The last applied update id.
    pub last_update_id: u64,
    /// Best bid (price, quantity), scaled integers.
    pub best_bid: Option<(i64, i64)>,
    /// Best ask.
    pub best_ask: Option<(i64, i64)>,
    /// Whether the book is live at the end.
    pub synced: bool,
}

/// What one client run brought back.
#[derive(Debug)]
pub struct ClientRun {
    /// Messages consumed.
    pub frames: usize,
    /// When each frame's events were applied, ns since the origin (latency runs).
    pub applied: Vec<u64>,
    /// When each frame's last bytes were read from the socket (pinion's latency runs).
    pub read: Vec<u64>,
    /// When the first message arrived.
    pub first_ns: u64,
    /// When the last one was applied.
    pub last_ns: u64,
    /// Allocations on the client thread after the warm-up.
    pub allocs: u64,
    /// Of those, in decoding and applying.
    pub work_allocs: u64,
    /// What the book decided.
    pub tally: Tally,
}

/// ns since `origin`.
#[inline]
pub fn ns_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Pinion,
    Baseline,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Pinion => "pinion",
            Side::Baseline => "baseline",
        }
    }
}

/// The round's order: pinion first in even rounds.
fn order(round: usize) -> [Side; 2] {
    if round.is_multiple_of(2) {
        [Side::Pinion, Side::Baseline]
    } else {
        [Side::Baseline, Side::Pinion]
    }
}

/// SCHED_FIFO priority of the writer and client threads with `--fifo`.
const FIFO_PRIORITY: i32 = 10;

/// Where the threads run.
#[derive(Debug, Clone)]
struct Placement {
    allowed: Vec<usize>,
    writer: Option<usize>,
    client: Option<usize>,
    /// Run the writer and the clients under SCHED_FIFO at this priority.
    fifo: Option<i32>,
}

impl Placement {
    fn new(fifo: Option<i32>) -> Self {
        let allowed = allowed_cores();
        let (writer, client) = match allowed.as_slice() {
            [a, b, ..] => (Some(*a), Some(*b)),
            _ => (None, None),
        };
        Placement {
            allowed,
            writer,
            client,
            fifo,
        }
    }

    fn pin(&self, core: Option<usize>) -> impl FnOnce() + Send + 'static {
        let allowed = self.allowed.clone();
        let fifo = self.fifo;
        move || {
            if let Some(core) = core
                && let PinOutcome::Failed(why) = pin_current_thread(core, &allowed)
            {
                eprintln!("wire: could not pin to core {core}: {why}");
            }
            if let Some(priority) = fifo
                && let SettingOutcome::Refused(why) = realtime::set_fifo_priority(priority)
            {
                panic!("wire: --fifo asked for, but SCHED_FIFO was refused: {why}");
            }
        }
    }
}

/// Everything a run needs.
struct Bench {
    workload: Workload,
    tls: SelfSignedTls,
    paced: Arc<Vec<Vec<u8>>>,
    tickers: Arc<Vec<Vec<u8>>>,
    gaps_ns: Arc<Vec<u64>>,
    placement: Placement,
    origin: Instant,
    warm_up: usize,
}

impl Bench {
    /// One client run against a fresh writer: the client's result and the write instants.
    fn run(&self, side: Side, paced: bool) -> (ClientRun, Vec<u64>) {
        let (frames, schedule) = if paced {
            let gaps_ns = Arc::clone(&self.gaps_ns);
            (Arc::clone(&self.paced), Schedule::Paced { gaps_ns })
        } else {
            (Arc::clone(&self.tickers), Schedule::BackToBack)
        };
        let job = Job {
            frames: frames.len(),
            warm_up: self.warm_up.min(frames.len() / 2),
            stamp_each: paced,
        };
        let writer = Writer::start(
            Arc::clone(&self.tls.server_config),
            frames,
            schedule,
            self.origin,
            self.placement.pin(self.placement.writer),
        );
        let addr = writer.addr();
        let pin = self.placement.pin(self.placement.client);
        let run = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name(format!("wire-{}", side.name()))
                .spawn_scoped(s, || {
                    pin();
                    let cert = &self.tls.certificate;
                    match side {
                        Side::Pinion => {
                            pinion_client::run(addr, cert, &self.workload, &job, self.origin)
                        }
                        Side::Baseline => {
                            baseline::run(addr, cert, &self.workload, &job, self.origin)
                        }
                    }
                })
                .expect("spawn the client")
                .join()
                .expect("the client thread")
        });
        let written = writer.join();
        (run, written)
    }
}

/// Percentiles of one latency run, ns.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Percentiles {
    const QUANTILES: [(&'static str, f64); 5] = [
        ("p50", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("max", 1.0),
    ];

    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn values(&self) -> [u64; 5] {
        [self.p50, self.p90, self.p99, self.p999, self.max]
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// `later − earlier` per frame after the warm-up.
fn latencies(later: &[u64], earlier: &[u64], warm_up: usize) -> Histogram<u64> {
    let mut h = histogram();
    for (l, e) in later.iter().zip(earlier).skip(warm_up) {
        h.saturating_record(l.saturating_sub(*e).max(1));
    }
    h
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The two sides decided the same on every frame, and the run was sound.
fn check_same_work(what: &str, pinion: &ClientRun, baseline: &ClientRun, expected: usize) {
    assert_eq!(pinion.frames, expected, "{what}: pinion's frame count");
    assert_eq!(
        baseline.frames, expected,
        "{what}: the baseline's frame count"
    );
    assert_eq!(
        pinion.tally, baseline.tally,
        "{what}: the two books decided differently"
    );
    let t = &pinion.tally;
    assert!(
        t.synced && t.resyncs == 0 && t.tickers_mismatched == 0,
        "{what}: the book lost sync: {t:?}"
    );
}

/// One side's latency figures over the rounds.
#[derive(Debug, Default)]
struct LatencySeries {
    runs: Vec<Percentiles>,
    allocs_per_frame: Vec<f64>,
    work_allocs_per_frame: Vec<f64>,
}

impl LatencySeries {
    fn median(&self, k: usize) -> u64 {
        median_u64(self.runs.iter().map(|p| p.values()[k]).collect())
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke run then.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let fifo = args.iter().any(|a| a == "--fifo").then_some(FIFO_PRIORITY);
    let settings = if quick { QUICK } else { FULL };
    println!("wire: host: {}", pinion_benches::host_state());
    let Some(workload) = Workload::load(settings.paced_frames, settings.ticker_frames) else {
        println!(
            "wire: {} not found; nothing to measure",
            workload::RECORDING
        );
        return;
    };
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (lo, hi) = settings.gap_us;
    let gaps_ns: Vec<u64> = (0..4096)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (lo * 1_000) + rng % ((hi - lo) * 1_000 + 1)
        })
        .collect();
    let bench = Bench {
        paced: Arc::new(workload.paced.clone()),
        tickers: Arc::new(workload.ticker_run.clone()),
        workload,
        tls,
        gaps_ns: Arc::new(gaps_ns),
        placement: Placement::new(fifo),
        origin: Instant::now(),
        warm_up: settings.warm_up,
    };
    let p = &bench.placement;
    println!(
        "wire: {} mode; writer on core {:?}, clients on core {:?} (allowed {:?}); paced stream \
         {} frames ({} depth, {} bookTicker) one every {}–{} µs; ticker run {} frames; first {} \
         frames of each run left out; scheduling {}",
        if quick { "quick" } else { "full" },
        p.writer,
        p.client,
        p.allowed,
        bench.paced.len(),
        bench.workload.paced_depth,
        bench.paced.len() - bench.workload.paced_depth,
        lo,
        hi,
        bench.tickers.len(),
        bench.warm_up,
        match fifo {
            Some(p) => format!("SCHED_FIFO {p} (writer and clients)"),
            None => "the default (CFS)".to_owned(),
        },
    );

    // One untimed round of each, so both sides' code and the kernel's paths are warm.
    for paced in [true, false] {
        let (a, _) = bench.run(Side::Pinion, paced);
        let (b, _) = bench.run(Side::Baseline, paced);
        let n = if paced {
            bench.paced.len()
        } else {
            bench.tickers.len()
        };
        check_same_work("warm-up", &a, &b, n);
    }

    // ---- latency ----
    let mut lat = [LatencySeries::default(), LatencySeries::default()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 5];
    // Per side: written → read and read → applied.
    let mut split_wire: [Vec<Percentiles>; 2] = [Vec::new(), Vec::new()];
    let mut split_stack: [Vec<Percentiles>; 2] = [Vec::new(), Vec::new()];
    let mut stack_ratios: Vec<Vec<f64>> = vec![Vec::new(); 5];
    println!();
    println!("latency rounds (write → applied; p50 / p99 per run):");
    for round in 0..settings.latency_rounds {
        let mut runs: Vec<Option<(ClientRun, Vec<u64>)>> = vec![None, None];
        for side in order(round) {
            runs[side as usize] = Some(bench.run(side, true));
        }
        let [Some((a, wa)), Some((b, wb))] = [runs[0].take(), runs[1].take()] else {
            unreachable!("both sides ran");
        };
        check_same_work(&format!("latency round {round}"), &a, &b, bench.paced.len());
        let n_counted = (a.frames - bench.warm_up) as f64;
        let pa = Percentiles::of(&latencies(&a.applied, &wa, bench.warm_up));
        let pb = Percentiles::of(&latencies(&b.applied, &wb, bench.warm_up));
        for (k, (run, written)) in [(&a, &wa), (&b, &wb)].into_iter().enumerate() {
            split_wire[k].push(Percentiles::of(&latencies(
                &run.read,
                written,
                bench.warm_up,
            )));
            split_stack[k].push(Percentiles::of(&latencies(
                &run.applied,
                &run.read,
                bench.warm_up,
            )));
        }
        let (sa, sb) = (
            split_stack[0][round].values(),
            split_stack[1][round].values(),
        );
        for (k, (x, y)) in sa.iter().zip(sb).enumerate() {
            stack_ratios[k].push(*x as f64 / y as f64);
        }
        for (k, (x, y)) in pa.values().iter().zip(pb.values()).enumerate() {
            ratios[k].push(*x as f64 / y as f64);
        }
        for (series, (run, p)) in lat.iter_mut().zip([(&a, pa), (&b, pb)]) {
            series.runs.push(p);
            series.allocs_per_frame.push(run.allocs as f64 / n_counted);
            series
                .work_allocs_per_frame
                .push(run.work_allocs as f64 / n_counted);
        }
        println!(
            "  round {round:>2}: pinion {:>9} / {:>9}   baseline {:>9} / {:>9}   p50 ratio {:.3}",
            format_ns(pa.p50),
            format_ns(pa.p99),
            format_ns(pb.p50),
            format_ns(pb.p99),
            pa.p50 as f64 / pb.p50 as f64
        );
    }

    // ---- throughput ----
    let mut fps: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut tp_allocs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut fps_ratio = Vec::new();
    println!();
    println!("throughput rounds (bookTicker frames back to back; frames/s):");
    for round in 0..settings.throughput_rounds {
        let mut runs: Vec<Option<ClientRun>> = vec![None, None];
        for side in order(round) {
            runs[side as usize] = Some(bench.run(side, false).0);
        }
        let [Some(a), Some(b)] = [runs[0].take(), runs[1].take()] else {
            unreachable!("both sides ran");
        };
        check_same_work(
            &format!("throughput round {round}"),
            &a,
            &b,
            bench.tickers.len(),
        );
        assert_eq!(
            a.tally.tickers_ahead as usize,
            bench.tickers.len() - 1,
            "every ticker of the run is ahead of the book"
        );
        let rate = |r: &ClientRun| (r.frames - 1) as f64 / ((r.last_ns - r.first_ns) as f64 / 1e9);
        let counted = (a.frames - bench.warm_up) as f64;
        for (k, r) in [&a, &b].into_iter().enumerate() {
            fps[k].push(rate(r));
            tp_allocs[k].push(r.allocs as f64 / counted);
        }
        fps_ratio.push(rate(&a) / rate(&b));
        println!(
            "  round {round:>2}: pinion {:>12.0}   baseline {:>12.0}   ratio {:.2}",
            rate(&a),
            rate(&b),
            rate(&a) / rate(&b)
        );
    }

    // ---- host floor ----
    let cores: Vec<usize> = [bench.placement.writer, bench.placement.client]
        .into_iter()
        .flatten()
        .collect();
    let floor = if cores.is_empty() {
        Vec::new()
    } else {
        jitter::measure(
            &cores,
            &bench.placement.allowed,
            Duration::from_secs(settings.jitter_secs),
            jitter::DEFAULT_MIN_GAP_NS,
        )
    };

    // ---- report ----
    let med = |v: &[f64]| median_f64(v.to_vec());
    println!();
    println!(
        "wire-to-book latency, write → event applied to the book; {} rounds, {} frames a run \
         counted; each figure the median over rounds of that run's percentile, ratio = median \
         of the rounds' own pinion/baseline ratios",
        settings.latency_rounds,
        bench.paced.len() - bench.warm_up
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, series) in [
        ("pinion (wss + decoder + BookSync)", &lat[0]),
        ("baseline (tokio-tungstenite+serde)", &lat[1]),
    ] {
        println!(
            "{name:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
            format_ns(series.median(0)),
            format_ns(series.median(1)),
            format_ns(series.median(2)),
            format_ns(series.median(3)),
            format_ns(series.median(4)),
        );
    }
    println!(
        "{:<34} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        "ratio pinion/baseline",
        med(&ratios[0]),
        med(&ratios[1]),
        med(&ratios[2]),
        med(&ratios[3]),
        med(&ratios[4]),
    );
    let split_med =
        |v: &[Percentiles], k: usize| median_u64(v.iter().map(|p| p.values()[k]).collect());
    println!(
        "split at the socket read that brought the frame's last bytes: written → read is the \
         kernel and the wake-up, read → applied the client's own stack (TLS, WebSocket, \
         decoding, book)"
    );
    for (name, v) in [
        ("pinion: written → read", &split_wire[0]),
        ("baseline: written → read", &split_wire[1]),
        ("pinion: read → applied", &split_stack[0]),
        ("baseline: read → applied", &split_stack[1]),
    ] {
        println!(
            "{name:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
            format_ns(split_med(v, 0)),
            format_ns(split_med(v, 1)),
            format_ns(split_med(v, 2)),
            format_ns(split_med(v, 3)),
            format_ns(split_med(v, 4)),
        );
    }
    println!(
        "{:<34} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        "ratio read → applied",
        med(&stack_ratios[0]),
        med(&stack_ratios[1]),
        med(&stack_ratios[2]),
        med(&stack_ratios[3]),
        med(&stack_ratios[4]),
    );
    println!();
    println!(
        "allocations per frame on the client thread after warm-up (median over rounds): \
         total / in decode+apply"
    );
    println!(
        "  latency (a TLS record per frame):   pinion {:.3} / {:.3}   baseline {:.3} / {:.3}",
        med(&lat[0].allocs_per_frame),
        med(&lat[0].work_allocs_per_frame),
        med(&lat[1].allocs_per_frame),
        med(&lat[1].work_allocs_per_frame),
    );
    println!(
        "  throughput (16 KiB TLS records):    pinion {:.3}           baseline {:.3}",
        med(&tp_allocs[0]),
        med(&tp_allocs[1]),
    );
    println!();
    println!(
        "throughput, one client thread, {} bookTicker frames a run back to back, {} rounds: \
         pinion {:.0} frames/s, baseline {:.0} frames/s, ratio {:.2} (median of per-round ratios)",
        bench.tickers.len() - 1,
        settings.throughput_rounds,
        med(&fps[0]),
        med(&fps[1]),
        med(&fps_ratio),
    );
    println!();
    let goal_p50 = med(&ratios[0]) <= 1.0 / 3.0;
    let goal_p99 = med(&ratios[2]) < 1.0;
    let goal_allocs = med(&lat[0].allocs_per_frame) == 0.0;
    let goal_fps = med(&fps[0]) >= 1e6;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goals (issue): p50 ≤ 1/3 of the baseline's: {}",
        verdict(goal_p50)
    );
    println!(
        "               p99 below the baseline's:   {}",
        verdict(goal_p99)
    );
    println!(
        "               0 allocations per frame:    {}",
        verdict(goal_allocs)
    );
    println!(
        "               ≥ 1 M frames/s:             {}",
        verdict(goal_fps)
    );
    if !floor.is_empty() {
        println!();
        println!(
            "host floor in the same run: one clock-reading thread on each of the cores used \
             (writer {:?}, client {:?}), both at once, {} s; \"wait\" = how long an event \
             arriving at a random moment waits for the thread to run",
            bench.placement.writer, bench.placement.client, settings.jitter_secs
        );
        print!("{}", jitter::table(&floor));
    }

    let side_json = |s: &LatencySeries| {
        let mut m = serde_json::Map::new();
        for (k, (name, _)) in Percentiles::QUANTILES.iter().enumerate() {
            m.insert(format!("{name}_ns"), json!(s.median(k)));
            m.insert(
                format!("{name}_ns_per_round"),
                json!(s.runs.iter().map(|p| p.values()[k]).collect::<Vec<_>>()),
            );
        }
        m.insert("allocs_per_frame".into(), json!(med(&s.allocs_per_frame)));
        m.insert(
            "work_allocs_per_frame".into(),
            json!(med(&s.work_allocs_per_frame)),
        );
        serde_json::Value::Object(m)
    };
    let ratio_json: serde_json::Map<String, serde_json::Value> = Percentiles::QUANTILES
        .iter()
        .zip(&ratios)
        .map(|((name, _), r)| (name.to_string(), json!(med(r))))
        .collect();
    let stack_ratio_json: serde_json::Map<String, serde_json::Value> = Percentiles::QUANTILES
        .iter()
        .zip(&stack_ratios)
        .map(|((name, _), r)| (name.to_string(), json!(med(r))))
        .collect();
    let report = json!({
        "host": pinion_benches::host_state(),
        "mode": if quick { "quick" } else { "full" },
        "sched_fifo_priority": fifo,
        "cores": { "allowed": bench.placement.allowed, "writer": bench.placement.writer, "client": bench.placement.client },
        "latency": {
            "rounds": settings.latency_rounds,
            "frames_per_run": bench.paced.len(),
            "frames_counted_per_run": bench.paced.len() - bench.warm_up,
            "gap_us": [lo, hi],
            "pinion": side_json(&lat[0]),
            "baseline": side_json(&lat[1]),
            "ratio_median_of_rounds": ratio_json,
            "pinion_written_to_read_p50_ns": split_med(&split_wire[0], 0),
            "baseline_written_to_read_p50_ns": split_med(&split_wire[1], 0),
            "pinion_read_to_applied_p50_ns": split_med(&split_stack[0], 0),
            "baseline_read_to_applied_p50_ns": split_med(&split_stack[1], 0),
            "pinion_read_to_applied_p99_ns": split_med(&split_stack[0], 2),
            "baseline_read_to_applied_p99_ns": split_med(&split_stack[1], 2),
            "read_to_applied_ratio_median_of_rounds": stack_ratio_json,
        },
        "throughput": {
            "rounds": settings.throughput_rounds,
            "frames_per_run": bench.tickers.len() - 1,
            "pinion_frames_per_s": med(&fps[0]),
            "baseline_frames_per_s": med(&fps[1]),
            "pinion_per_round": fps[0],
            "baseline_per_round": fps[1],
            "ratio_median_of_rounds": med(&fps_ratio),
            "pinion_allocs_per_frame": med(&tp_allocs[0]),
            "baseline_allocs_per_frame": med(&tp_allocs[1]),
        },
        "goals": {
            "p50_at_most_a_third": goal_p50,
            "p99_lower": goal_p99,
            "zero_allocations_per_frame": goal_allocs,
            "one_million_frames_per_s": goal_fps,
        },
        "host_floor": floor.iter().map(|r| json!({
            "core": r.core,
            "error": r.error,
            "max_gap_ns": r.max_gap_ns(),
            "wait_p99_ns": r.wait_quantile(0.99),
            "wait_p999_ns": r.wait_quantile(0.999),
        })).collect::<Vec<_>>(),
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wire-bench.json");
    match serde_json::to_string_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(&path, text))
    {
        Ok(()) => println!("\nwritten: {}", path.display()),
        Err(e) => println!("\ncould not write {}: {e}", path.display()),
    }
}
