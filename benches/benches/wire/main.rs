//! Wire-to-book benchmark: pinion's live feed transport, decoder and book against a typical
//! Rust peer's stack, on loopback, with the baseline measured in the same run.
//!
//! A writer thread (`server`) serves the real Binance Spot recording over TLS WebSocket on
//! 127.0.0.1; a client thread reads, decodes and applies each frame to a book:
//!
//! - **pinion** (`pinion_client`): `pinion_net::wss` on a `mio` poll loop, pinion's
//!   [`Decoder`](pinion_feed::parse::Decoder), `BookSync` over the array book, waiting in
//!   `epoll_wait` between frames as the baseline does;
//! - **pinion, busy poll**: the same, polling without waiting, as pinion's busy-spin wait
//!   strategy runs on an isolated core (latency only; it buys the wake-up with a whole core,
//!   which a tokio client does not do, so it is quoted beside the like-for-like figure, not
//!   instead of it);
//! - **baseline** (`baseline`): tokio (current-thread runtime, on the client thread) +
//!   tokio-tungstenite + tokio-rustls (ring, the same single trusted root) + `serde_json` typed
//!   structs + a `BTreeMap` book under the same sync rule.
//!
//! All start from the recording's REST snapshot, loaded before the connection, and must make
//! the same decisions on every frame: after each round the counts of applied and stale depth
//! messages and of ahead, stale, matched and mismatched tickers, the last update id and the
//! final best bid and ask are compared between the clients, and every frame must arrive. A
//! difference, a missing frame or a frame that does not decode fails the run: it is not a
//! number.
//!
//! Two measurements, each run for every client interleaved round by round (each client going
//! first in turn), after one untimed round:
//!
//! 1. **Latency**: the writer sends the depth diffs and bookTickers (see `workload`), one every
//!    20 to 50 µs (uniformly drawn, the same sequence for every run), noting the instant
//!    before each write on the same `Instant` clock the client stamps with once the frame's
//!    events are applied. `applied − written` of every frame after a warm-up goes into an HDR
//!    histogram per run; the figures are the median over rounds of each run's percentiles, and
//!    the ratio the median of the rounds' own pinion/baseline ratios. Each client also stamps the
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
//! are two. After the rounds the host's own
//! stalls on those two cores are measured (`pinion jitter`, ordinary threads): the floor under
//! any latency here. On a host shared with other work, `-- --fifo` runs the writer and the
//! clients under SCHED_FIFO (needs the privilege; the writer spins, so other work on its core
//! gets only the kernel's real-time throttling share while the benchmark runs): the waking
//! client then preempts whatever else runs on its core, as on a tuned host. The busy-polling
//! client never sleeps, so under SCHED_FIFO the same throttling stops it for the rest of each
//! period (50 ms of every second by default): its tail then shows the kernel, not the client.
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

/// A client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// pinion, waiting in `epoll_wait` like the baseline.
    Pinion,
    /// pinion, polling without waiting (its busy-spin strategy; not like for like).
    PinionBusyPoll,
    /// tokio + tokio-tungstenite + serde_json.
    Baseline,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Pinion => "pinion",
            Side::PinionBusyPoll => "pinion-busy-poll",
            Side::Baseline => "baseline",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Side::Pinion => "pinion, epoll wait",
            Side::PinionBusyPoll => "pinion, busy poll",
            Side::Baseline => "baseline (tokio-tungstenite+serde)",
        }
    }
}

/// The latency measurement's clients; the baseline last.
const LATENCY_SIDES: [Side; 3] = [Side::Pinion, Side::PinionBusyPoll, Side::Baseline];
/// The throughput measurement's clients; the baseline last.
const THROUGHPUT_SIDES: [Side; 2] = [Side::Pinion, Side::Baseline];

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
            warm_up: self.warm_up,
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
                        Side::Pinion | Side::PinionBusyPoll => pinion_client::run(
                            addr,
                            cert,
                            &self.workload,
                            &job,
                            self.origin,
                            side == Side::PinionBusyPoll,
                        ),
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

    /// Every side once, starting with side `round % n` (so each side goes first as often as
    /// the others); results in `sides`' order. Checks that all did the same work.
    fn round(&self, what: &str, sides: &[Side], round: usize, paced: bool) -> Vec<Run> {
        let mut runs: Vec<Option<Run>> = sides.iter().map(|_| None).collect();
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            let (client, written) = self.run(sides[i], paced);
            runs[i] = Some(Run { client, written });
        }
        let runs: Vec<Run> = runs
            .into_iter()
            .map(|r| r.expect("every side ran"))
            .collect();
        let expected = if paced {
            self.paced.len()
        } else {
            self.tickers.len()
        };
        check_same_work(what, sides, &runs, expected);
        runs
    }
}

/// A client's run and the writer's instants.
struct Run {
    client: ClientRun,
    written: Vec<u64>,
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

/// Every side got every frame and decided the same on each, and the books stayed in sync.
fn check_same_work(what: &str, sides: &[Side], runs: &[Run], expected: usize) {
    let first = &runs[0].client.tally;
    for (side, run) in sides.iter().zip(runs) {
        let name = side.name();
        assert_eq!(run.client.frames, expected, "{what}: {name}'s frame count");
        assert_eq!(
            &run.client.tally,
            first,
            "{what}: {name}'s book decided differently from {}'s",
            sides[0].name()
        );
    }
    assert!(
        first.synced && first.resyncs == 0 && first.tickers_mismatched == 0,
        "{what}: the book lost sync: {first:?}"
    );
}

/// One side's latency figures, one entry per round.
#[derive(Debug, Default)]
struct LatencySeries {
    /// write → applied.
    total: Vec<Percentiles>,
    /// write → the socket read that brought the frame's last bytes.
    wire: Vec<Percentiles>,
    /// that read → applied.
    stack: Vec<Percentiles>,
    allocs_per_frame: Vec<f64>,
    work_allocs_per_frame: Vec<f64>,
}

/// The median over rounds of each percentile.
fn medians(runs: &[Percentiles]) -> [u64; 5] {
    std::array::from_fn(|k| median_u64(runs.iter().map(|p| p.values()[k]).collect()))
}

/// The median over rounds of each percentile's ratio `of / to`, round by round.
fn ratio_medians(of: &[Percentiles], to: &[Percentiles]) -> [f64; 5] {
    std::array::from_fn(|k| {
        median_f64(
            of.iter()
                .zip(to)
                .map(|(a, b)| a.values()[k] as f64 / b.values()[k] as f64)
                .collect(),
        )
    })
}

fn print_row(name: &str, v: [u64; 5]) {
    println!(
        "  {name:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
        format_ns(v[0]),
        format_ns(v[1]),
        format_ns(v[2]),
        format_ns(v[3]),
        format_ns(v[4]),
    );
}

fn print_ratio_row(name: &str, v: [f64; 5]) {
    println!(
        "  {name:<34} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        v[0], v[1], v[2], v[3], v[4]
    );
}

/// The kernel's real-time throttling, as set: run time per period.
fn rt_throttling() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "{} µs of every {} µs",
        read("sched_rt_runtime_us"),
        read("sched_rt_period_us")
    )
}

fn quantile_json<T: serde::Serialize>(v: [T; 5]) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = Percentiles::QUANTILES
        .iter()
        .zip(v)
        .map(|((name, _), x)| (name.to_string(), json!(x)))
        .collect();
    serde_json::Value::Object(m)
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
    assert!(
        bench.paced.len() > 2 * bench.warm_up && bench.tickers.len() > 2 * bench.warm_up,
        "runs must be longer than twice the warm-up"
    );
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

    // One untimed round of each, so every client's code and the kernel's paths are warm.
    bench.round("warm-up", &LATENCY_SIDES, 0, true);
    bench.round("warm-up", &THROUGHPUT_SIDES, 0, false);

    // ---- latency ----
    let mut lat: Vec<LatencySeries> = LATENCY_SIDES
        .iter()
        .map(|_| LatencySeries::default())
        .collect();
    println!();
    println!(
        "latency rounds (write → applied, p50 / p99 per run; {}):",
        LATENCY_SIDES.map(Side::name).join(" | ")
    );
    for round in 0..settings.latency_rounds {
        let what = format!("latency round {round}");
        let runs = bench.round(&what, &LATENCY_SIDES, round, true);
        let mut line = format!("  round {round:>2}:");
        for (series, run) in lat.iter_mut().zip(&runs) {
            let (c, w) = (&run.client, &run.written);
            let total = Percentiles::of(&latencies(&c.applied, w, bench.warm_up));
            series.total.push(total);
            series
                .wire
                .push(Percentiles::of(&latencies(&c.read, w, bench.warm_up)));
            series.stack.push(Percentiles::of(&latencies(
                &c.applied,
                &c.read,
                bench.warm_up,
            )));
            let counted = (c.frames - bench.warm_up) as f64;
            series.allocs_per_frame.push(c.allocs as f64 / counted);
            series
                .work_allocs_per_frame
                .push(c.work_allocs as f64 / counted);
            line.push_str(&format!(
                " {:>9} / {:>9} |",
                format_ns(total.p50),
                format_ns(total.p99)
            ));
        }
        println!("{}", line.trim_end_matches(" |"));
    }

    // ---- throughput ----
    let mut fps: Vec<Vec<f64>> = THROUGHPUT_SIDES.iter().map(|_| Vec::new()).collect();
    let mut tp_allocs: Vec<Vec<f64>> = THROUGHPUT_SIDES.iter().map(|_| Vec::new()).collect();
    let mut fps_ratio = Vec::new();
    println!();
    println!(
        "throughput rounds (bookTicker frames back to back, frames/s; {}):",
        THROUGHPUT_SIDES.map(Side::name).join(" | ")
    );
    for round in 0..settings.throughput_rounds {
        let what = format!("throughput round {round}");
        let runs = bench.round(&what, &THROUGHPUT_SIDES, round, false);
        assert_eq!(
            runs[0].client.tally.tickers_ahead as usize,
            bench.tickers.len() - 1,
            "every ticker of the run is ahead of the book"
        );
        let rate = |r: &ClientRun| (r.frames - 1) as f64 / ((r.last_ns - r.first_ns) as f64 / 1e9);
        let mut line = format!("  round {round:>2}:");
        for (k, run) in runs.iter().enumerate() {
            let c = &run.client;
            fps[k].push(rate(c));
            tp_allocs[k].push(c.allocs as f64 / (c.frames - bench.warm_up) as f64);
            line.push_str(&format!(" {:>12.0} |", rate(c)));
        }
        fps_ratio.push(rate(&runs[0].client) / rate(&runs[1].client));
        println!("{}", line.trim_end_matches(" |"));
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
    let base = LATENCY_SIDES.len() - 1;
    println!();
    println!(
        "wire-to-book latency; {} rounds, {} frames a run counted; each figure the median over \
         rounds of that run's percentile, each ratio the median of the rounds' own ratios to the \
         baseline",
        settings.latency_rounds,
        bench.paced.len() - bench.warm_up
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "p99.9", "max"
    );
    type Part = fn(&LatencySeries) -> &[Percentiles];
    let parts: [(&str, Part); 3] = [
        ("write → applied (wire to book)", |s| &s.total),
        ("write → read (kernel, wake-up)", |s| &s.wire),
        ("read → applied (TLS, WebSocket, decode, book)", |s| {
            &s.stack
        }),
    ];
    for (title, part) in parts {
        println!("{title}");
        for (side, series) in LATENCY_SIDES.iter().zip(&lat) {
            print_row(side.label(), medians(part(series)));
        }
        for (side, series) in LATENCY_SIDES.iter().zip(&lat).take(base) {
            print_ratio_row(
                &format!("ratio {} / baseline", side.name()),
                ratio_medians(part(series), part(&lat[base])),
            );
        }
    }
    println!();
    println!(
        "allocations per frame on the client thread after warm-up (median over rounds): \
         total / in decode+apply"
    );
    for (side, series) in LATENCY_SIDES.iter().zip(&lat) {
        println!(
            "  latency, a TLS record per frame, {:<18} {:.3} / {:.3}",
            side.name(),
            med(&series.allocs_per_frame),
            med(&series.work_allocs_per_frame),
        );
    }
    for (side, allocs) in THROUGHPUT_SIDES.iter().zip(&tp_allocs) {
        println!(
            "  throughput, 16 KiB TLS records, {:<18} {:.3}",
            side.name(),
            med(allocs),
        );
    }
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
    let total_ratio = |i: usize| ratio_medians(&lat[i].total, &lat[base].total);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let (like, busy) = (total_ratio(0), total_ratio(1));
    let allocs = med(&lat[0].allocs_per_frame);
    let goals = json!({
        "p50_at_most_a_third": like[0] <= 1.0 / 3.0,
        "p99_lower": like[2] < 1.0,
        "p50_at_most_a_third_busy_poll": busy[0] <= 1.0 / 3.0,
        "p99_lower_busy_poll": busy[2] < 1.0,
        "zero_allocations_per_frame": allocs == 0.0,
        "one_million_frames_per_s": med(&fps[0]) >= 1e6,
    });
    println!("goals (issue); pinion with epoll wait | with busy poll, against the baseline:");
    println!(
        "  p50 ≤ 1/3 of the baseline's: {} ({:.3}) | {} ({:.3})",
        verdict(like[0] <= 1.0 / 3.0),
        like[0],
        verdict(busy[0] <= 1.0 / 3.0),
        busy[0],
    );
    println!(
        "  p99 below the baseline's:    {} ({:.3}) | {} ({:.3})",
        verdict(like[2] < 1.0),
        like[2],
        verdict(busy[2] < 1.0),
        busy[2],
    );
    println!(
        "  0 allocations per frame:     {} ({allocs:.3})",
        verdict(allocs == 0.0)
    );
    println!(
        "  ≥ 1 M frames/s:              {} ({:.0})",
        verdict(med(&fps[0]) >= 1e6),
        med(&fps[0])
    );
    if fifo.is_some() {
        println!(
            "  note: under SCHED_FIFO the busy-polling client never sleeps, so the kernel's \
             real-time throttling ({}) stops it for the rest of each period: its tail shows \
             that, not the client; its p50 and p90 stand",
            rt_throttling()
        );
    }
    if !floor.is_empty() {
        println!();
        println!(
            "host floor in the same run: one clock-reading thread (ordinary scheduling) on each \
             of the cores used (writer {:?}, client {:?}), both at once, {} s; \"wait\" = how \
             long an event arriving at a random moment waits for the thread to run",
            bench.placement.writer, bench.placement.client, settings.jitter_secs
        );
        print!("{}", jitter::table(&floor));
    }

    let mut latency_json = serde_json::Map::new();
    for (side, series) in LATENCY_SIDES.iter().zip(&lat) {
        let per_round = |f: fn(&Percentiles) -> u64| series.total.iter().map(f).collect::<Vec<_>>();
        latency_json.insert(
            side.name().to_owned(),
            json!({
                "write_to_applied_ns": quantile_json(medians(&series.total)),
                "write_to_read_ns": quantile_json(medians(&series.wire)),
                "read_to_applied_ns": quantile_json(medians(&series.stack)),
                "write_to_applied_p50_ns_per_round": per_round(|p| p.p50),
                "write_to_applied_p99_ns_per_round": per_round(|p| p.p99),
                "allocs_per_frame": med(&series.allocs_per_frame),
                "work_allocs_per_frame": med(&series.work_allocs_per_frame),
            }),
        );
    }
    for (side, series) in LATENCY_SIDES.iter().zip(&lat).take(base) {
        let to = &lat[base];
        latency_json.insert(
            format!("ratio_{}_to_baseline", side.name()),
            json!({
                "write_to_applied": quantile_json(ratio_medians(&series.total, &to.total)),
                "read_to_applied": quantile_json(ratio_medians(&series.stack, &to.stack)),
            }),
        );
    }
    let floor_json: Vec<serde_json::Value> = floor
        .iter()
        .map(|r| {
            json!({
                "core": r.core,
                "error": r.error,
                "max_gap_ns": r.max_gap_ns(),
                "wait_p99_ns": r.wait_quantile(0.99),
                "wait_p999_ns": r.wait_quantile(0.999),
            })
        })
        .collect();
    let report = json!({
        "host": pinion_benches::host_state(),
        "mode": if quick { "quick" } else { "full" },
        "sched_fifo_priority": fifo,
        "cores": {
            "allowed": bench.placement.allowed,
            "writer": bench.placement.writer,
            "client": bench.placement.client,
        },
        "latency": {
            "rounds": settings.latency_rounds,
            "frames_per_run": bench.paced.len(),
            "frames_counted_per_run": bench.paced.len() - bench.warm_up,
            "gap_us": [lo, hi],
            "sides": latency_json,
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
        "goals": goals,
        "host_floor": floor_json,
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("wire-bench.json");
    match serde_json::to_string_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|text| std::fs::write(&path, text))
    {
        Ok(()) => println!("\nwritten: {}", path.display()),
        Err(e) => println!("\ncould not write {}: {e}", path.display()),
    }
}
