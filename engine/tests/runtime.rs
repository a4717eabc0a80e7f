//! Runtime behaviour end to end: rings under back-pressure, every wait strategy and placement
//! shape on the 2-core machine, panics and stop requests that must not hang, and the latency
//! report formats.
//!
//! The toy pipeline (source → map → sink) carries numbers with an order-sensitive checksum, so a
//! lost, duplicated or reordered value changes the result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pinion_engine::latency::{
    LatencyJson, LatencyReport, NamedHistogram, format_ns, write_percentiles,
};
use pinion_engine::runtime::placement::allowed_cores;
use pinion_engine::runtime::{
    PinOutcome, Progress, RingRx, RingTx, RunReport, RuntimeError, RuntimeOptions, Stage,
    StageReport, ThreadPlan, WaitStrategy, now_ns, placement_report, ring, run, run_with,
};
use pinion_engine::stages::outbox::{Outbox, Stamped};

/// Counts allocations per thread, so a stage can check that its thread allocated nothing while
/// the stream was flowing (other tests run in parallel on other threads).
#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn allocations_on_this_thread() -> u64 {
    pinion_testkit::alloc::thread_allocations()
}

/// Values the sink takes before it starts counting allocations (start-up is allowed to allocate).
const WARM_UP: u64 = 100;

/// What travels through the toy pipeline.
#[derive(Debug, Clone, Copy)]
enum Msg {
    Value { v: u64, t0: u64 },
    End,
}

/// The toy stages' output: the pipeline's own outbox (never blocks, so producer and consumer may
/// share a thread), with room for one held-back message.
type Outlet = Outbox<Msg>;

fn outlet(tx: RingTx<Stamped<Msg>>) -> Outlet {
    Outbox::new(tx, 1)
}

struct Source {
    n: u64,
    next: u64,
    out: Outlet,
    stop: Option<Arc<AtomicBool>>,
    end_sent: bool,
}

impl Stage for Source {
    fn name(&self) -> &'static str {
        "source"
    }

    fn poll(&mut self) -> Progress {
        if !self.out.flush(now_ns()) {
            return Progress::Idle;
        }
        if self.end_sent {
            return Progress::Done;
        }
        let stopping = self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed));
        let now = now_ns();
        if self.next == self.n || stopping {
            self.out.send(Msg::End, 0, now);
            self.end_sent = true;
        } else {
            self.out.send(
                Msg::Value {
                    v: self.next,
                    t0: now,
                },
                0,
                now,
            );
            self.next += 1;
        }
        Progress::Busy
    }

    fn finish(&mut self) -> StageReport {
        let mut r = StageReport::new("source");
        r.counters.push(("sent", self.next));
        r.counters.push(("backpressure", self.out.backpressure()));
        r
    }
}

struct Map {
    rx: RingRx<Stamped<Msg>>,
    out: Outlet,
    end_sent: bool,
    panic_after: Option<u64>,
    seen: u64,
}

fn map_value(v: u64) -> u64 {
    v.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1)
}

impl Stage for Map {
    fn name(&self) -> &'static str {
        "map"
    }

    fn poll(&mut self) -> Progress {
        let now = now_ns();
        if !self.out.flush(now) {
            return Progress::Idle;
        }
        if self.end_sent {
            return Progress::Done;
        }
        match self.rx.pop().map(|s| s.msg) {
            None => Progress::Idle,
            Some(Msg::Value { v, t0 }) => {
                self.seen += 1;
                if self.panic_after == Some(self.seen) {
                    panic!("map stage fails on value {v}");
                }
                self.out.send(
                    Msg::Value {
                        v: map_value(v),
                        t0,
                    },
                    0,
                    now,
                );
                Progress::Busy
            }
            Some(Msg::End) => {
                self.out.send(Msg::End, 0, now);
                self.end_sent = true;
                Progress::Busy
            }
        }
    }

    fn finish(&mut self) -> StageReport {
        let mut r = StageReport::new("map");
        r.counters.push(("seen", self.seen));
        r.counters.push(("backpressure", self.out.backpressure()));
        r
    }
}

struct Sink {
    rx: RingRx<Stamped<Msg>>,
    count: u64,
    checksum: u64,
    hop: NamedHistogram,
    slow: Option<Duration>,
    /// The thread's allocation count when the warm-up ended.
    alloc_mark: Option<u64>,
    steady_allocs: u64,
}

/// Order-sensitive fold: any reordering, loss or duplicate changes it.
fn fold(acc: u64, v: u64) -> u64 {
    acc.rotate_left(7) ^ v
}

impl Stage for Sink {
    fn name(&self) -> &'static str {
        "sink"
    }

    fn poll(&mut self) -> Progress {
        match self.rx.pop().map(|s| s.msg) {
            None => Progress::Idle,
            Some(Msg::Value { v, t0 }) => {
                self.hop.record_between(t0, now_ns());
                self.count += 1;
                self.checksum = fold(self.checksum, v);
                if self.count == WARM_UP {
                    self.alloc_mark = Some(allocations_on_this_thread());
                }
                if let Some(d) = self.slow {
                    std::thread::sleep(d);
                }
                Progress::Busy
            }
            Some(Msg::End) => {
                if let Some(mark) = self.alloc_mark {
                    self.steady_allocs = allocations_on_this_thread() - mark;
                }
                Progress::Done
            }
        }
    }

    fn finish(&mut self) -> StageReport {
        let mut r = StageReport::new("sink");
        r.counters.push(("count", self.count));
        r.counters.push(("checksum", self.checksum));
        r.counters.push(("steady_allocs", self.steady_allocs));
        r.histograms.push(self.hop.clone());
        r
    }
}

struct Toy {
    n: u64,
    capacity: usize,
    panic_after: Option<u64>,
    stop: Option<Arc<AtomicBool>>,
    slow_sink: Option<Duration>,
}

impl Toy {
    fn new(n: u64) -> Toy {
        Toy {
            n,
            capacity: 64,
            panic_after: None,
            stop: None,
            slow_sink: None,
        }
    }

    fn stages(&self) -> Vec<Box<dyn Stage>> {
        let (tx1, rx1) = ring(self.capacity);
        let (tx2, rx2) = ring(self.capacity);
        vec![
            Box::new(Source {
                n: self.n,
                next: 0,
                out: outlet(tx1),
                stop: self.stop.clone(),
                end_sent: false,
            }),
            Box::new(Map {
                rx: rx1,
                out: outlet(tx2),
                end_sent: false,
                panic_after: self.panic_after,
                seen: 0,
            }),
            Box::new(Sink {
                rx: rx2,
                count: 0,
                checksum: 0,
                hop: NamedHistogram::new("hop.source_sink"),
                slow: self.slow_sink,
                alloc_mark: None,
                steady_allocs: 0,
            }),
        ]
    }
}

fn expected_checksum(n: u64) -> u64 {
    (0..n).fold(0, |acc, v| fold(acc, map_value(v)))
}

/// Cores to pin to on this machine, cycled over `threads` threads.
fn cores(threads: usize) -> Vec<usize> {
    let allowed = allowed_cores();
    allowed.iter().copied().cycle().take(threads).collect()
}

/// One thread per toy stage.
const PER_STAGE: &[usize] = &[1, 1, 1];
/// Two threads: source and map together, the sink alone.
const PAIRED: &[usize] = &[2, 1];
/// All three stages on one thread.
const FUSED: &[usize] = &[3];

/// Groups `stages` (in pipeline order) into threads of `groups[i]` stages each, thread `i` pinned
/// to `cores[i]` if given and named after its stages (`source+map`).
fn grouped(
    groups: &[usize],
    stages: Vec<Box<dyn Stage>>,
    cores: &[usize],
    wait: WaitStrategy,
) -> Vec<ThreadPlan> {
    assert_eq!(groups.iter().sum::<usize>(), stages.len());
    let mut stages = stages.into_iter();
    groups
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let stages: Vec<Box<dyn Stage>> = stages.by_ref().take(n).collect();
            ThreadPlan {
                name: stages
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join("+"),
                core: cores.get(i).copied(),
                wait,
                stages,
            }
        })
        .collect()
}

/// Runs the plans on another thread and fails the test if the run does not return in time.
fn run_within(plans: Vec<ThreadPlan>, opts: RuntimeOptions, limit: Duration) -> RunOutcome {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut startup = String::new();
        let r = run_with(plans, &opts, |p| startup = p.to_string());
        let _ = tx.send((r, startup));
    });
    match rx.recv_timeout(limit) {
        Ok((result, startup)) => RunOutcome { result, startup },
        Err(_) => panic!("run did not return within {limit:?}"),
    }
}

struct RunOutcome {
    result: Result<RunReport, RuntimeError>,
    startup: String,
}

fn counter(report: &RunReport, stage: &str, name: &str) -> u64 {
    report
        .stage(stage)
        .and_then(|s| s.counter(name))
        .unwrap_or_else(|| panic!("no counter {stage}.{name}"))
}

const PARK: WaitStrategy = WaitStrategy::Park { timeout_us: 50 };
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn tiny_ring_with_slow_consumer_delivers_everything_in_order_and_counts_backpressure() {
    let (tx, mut rx) = ring::<Stamped<u64>>(2);
    const N: u64 = 2_000;
    let consumer = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(N as usize);
        while got.len() < N as usize {
            match rx.pop() {
                Some(Stamped { msg: v, .. }) => {
                    got.push(v);
                    if v % 200 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                None => std::thread::yield_now(),
            }
        }
        got
    });
    // The producer's side of a stage: send, and take the next value only once the outbox is empty.
    let mut out = Outbox::new(tx, 1);
    for v in 0..N {
        out.send(v, 0, 0);
        while !out.flush(0) {
            std::thread::yield_now();
        }
    }
    let got = consumer.join().expect("consumer thread");
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert_eq!(out.sent(), N);
    // The consumer slept 10 times with the ring full behind it: at least that many waits.
    assert!(
        out.backpressure() >= 10,
        "backpressure {}",
        out.backpressure()
    );
    assert!(out.backpressure() <= N);
}

#[test]
fn backpressure_from_a_slow_stage_is_reported_and_nothing_is_lost() {
    let mut toy = Toy::new(300);
    toy.capacity = 2;
    toy.slow_sink = Some(Duration::from_micros(200));
    let plans = grouped(PER_STAGE, toy.stages(), &[], PARK);
    let report = run_within(plans, RuntimeOptions::default(), LIMIT)
        .result
        .expect("run");
    assert_eq!(counter(&report, "sink", "count"), 300);
    assert_eq!(counter(&report, "sink", "checksum"), expected_checksum(300));
    assert!(counter(&report, "map", "backpressure") > 0);
}

#[test]
fn every_wait_strategy_runs_a_multi_thread_pipeline() {
    let strategies = [
        (WaitStrategy::BusySpin, PAIRED),
        (WaitStrategy::SpinThenYield { spins: 50 }, PER_STAGE),
        (PARK, PER_STAGE),
    ];
    const N: u64 = 5_000;
    for (wait, shape) in strategies {
        let toy = Toy::new(N);
        let plans = grouped(shape, toy.stages(), &[], wait);
        assert!(plans.len() >= 2);
        let report = run_within(plans, RuntimeOptions::default(), LIMIT)
            .result
            .unwrap_or_else(|e| panic!("{wait:?}: {e}"));
        assert_eq!(counter(&report, "sink", "count"), N, "{wait:?}");
        assert_eq!(
            counter(&report, "sink", "checksum"),
            expected_checksum(N),
            "{wait:?}"
        );
    }
}

#[test]
fn every_placement_shape_gives_the_same_result() {
    const N: u64 = 20_000;
    let expected = expected_checksum(N);
    for (shape, names) in [
        (PER_STAGE, &["source", "map", "sink"][..]),
        (PAIRED, &["source+map", "sink"]),
        (FUSED, &["source+map+sink"]),
    ] {
        let threads = shape.len();
        let toy = Toy::new(N);
        let plans = grouped(shape, toy.stages(), &cores(threads), PARK);
        assert_eq!(plans.len(), threads);
        let got: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(got, names);
        let outcome = run_within(plans, RuntimeOptions::default(), LIMIT);
        let report = outcome.result.expect("run");
        assert_eq!(counter(&report, "source", "sent"), N);
        assert_eq!(counter(&report, "sink", "count"), N, "{shape:?}");
        assert_eq!(counter(&report, "sink", "checksum"), expected, "{shape:?}");
        assert!(
            report
                .placement
                .threads
                .iter()
                .all(|t| t.pin == PinOutcome::Pinned),
            "{}",
            outcome.startup
        );
        let hop = report.latency();
        assert_eq!(hop.get("hop.source_sink").map(|h| h.count()), Some(N));
        assert!(outcome.startup.contains("isolated"), "{}", outcome.startup);
    }
}

#[test]
fn a_fused_producer_that_floods_the_ring_before_the_consumer_polled_completes() {
    // The producer queues far more than the ring holds in its first poll, before the consumer
    // on the same thread has popped anything: the outbox holds the rest back, and the run ends
    // with everything delivered instead of waiting on itself.
    struct Flood(Outlet, bool);
    impl Stage for Flood {
        fn name(&self) -> &'static str {
            "flood"
        }
        fn poll(&mut self) -> Progress {
            if !self.1 {
                for v in 0..100 {
                    self.0.queue(Msg::Value { v, t0: 0 }, 0);
                }
                self.0.queue(Msg::End, 0);
                self.1 = true;
            }
            if self.0.flush(now_ns()) {
                Progress::Done
            } else {
                Progress::Idle
            }
        }
        fn finish(&mut self) -> StageReport {
            let mut r = StageReport::new("flood");
            r.counters.push(("backpressure", self.0.backpressure()));
            r
        }
    }
    struct Count(RingRx<Stamped<Msg>>, u64);
    impl Stage for Count {
        fn name(&self) -> &'static str {
            "count"
        }
        fn poll(&mut self) -> Progress {
            match self.0.pop().map(|s| s.msg) {
                Some(Msg::Value { .. }) => {
                    self.1 += 1;
                    Progress::Busy
                }
                Some(Msg::End) => Progress::Done,
                None => Progress::Idle,
            }
        }
        fn finish(&mut self) -> StageReport {
            let mut r = StageReport::new("count");
            r.counters.push(("count", self.1));
            r
        }
    }
    let (tx, rx) = ring(8);
    let stages: Vec<Box<dyn Stage>> = vec![
        Box::new(Flood(Outbox::new(tx, 128), false)),
        Box::new(Count(rx, 0)),
    ];
    let plans = grouped(&[2], stages, &[], PARK);
    let report = run_within(plans, RuntimeOptions::default(), LIMIT)
        .result
        .expect("run");
    assert_eq!(counter(&report, "count", "count"), 100);
    assert!(counter(&report, "flood", "backpressure") >= 1);
}

#[test]
fn the_steady_state_allocates_nothing() {
    // Fused, every stage, both rings, the histogram and the polling loop share one thread; with
    // one stage per thread the sink's thread is checked on its own, waiting included.
    for shape in [FUSED, PER_STAGE] {
        let toy = Toy::new(20_000);
        let plans = grouped(shape, toy.stages(), &[], PARK);
        let report = run_within(plans, RuntimeOptions::default(), LIMIT)
            .result
            .expect("run");
        assert_eq!(counter(&report, "sink", "count"), 20_000);
        assert_eq!(counter(&report, "sink", "steady_allocs"), 0, "{shape:?}");
    }
}

#[test]
fn run_summary_and_json_carry_counters_and_latency() {
    let toy = Toy::new(1_000);
    let plans = grouped(PAIRED, toy.stages(), &[], PARK);
    let report = run_within(plans, RuntimeOptions::default(), LIMIT)
        .result
        .expect("run");
    let summary = report.summary();
    assert!(
        summary.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f == ["sink", "count", "1000"]
        }),
        "{summary}"
    );
    assert!(summary.contains("hop.source_sink"), "{summary}");
    let json: pinion_engine::runtime::RunJson =
        serde_json::from_str(&report.to_json().expect("json")).expect("parse back");
    assert_eq!(json.placement, report.placement);
    let sink = json
        .counters
        .iter()
        .find(|s| s.stage == "sink")
        .expect("sink");
    assert!(sink.counters.contains(&("count".to_owned(), 1_000)));
    assert_eq!(json.latency.histograms[0].count, 1_000);
}

#[test]
fn a_panicking_stage_ends_the_run_with_an_error_in_every_shape() {
    for shape in [PER_STAGE, PAIRED, FUSED] {
        let mut toy = Toy::new(1_000_000);
        toy.panic_after = Some(500);
        toy.capacity = 8;
        let plans = grouped(shape, toy.stages(), &[], PARK);
        match run_within(plans, RuntimeOptions::default(), LIMIT).result {
            Err(RuntimeError::StagePanicked { stage, message, .. }) => {
                assert_eq!(stage, "map", "{shape:?}");
                assert!(message.contains("fails on value 499"), "{message}");
            }
            other => panic!("{shape:?}: expected a panic error, got {other:?}"),
        }
    }
}

#[test]
fn a_panic_in_the_consumer_of_a_full_ring_does_not_hang_its_producer() {
    // The producer keeps sending into a ring whose consumer panics and never pops again: the
    // producer must be stopped (it never ends by itself) and the run must report the panic.
    struct Pusher(Outlet, u64);
    impl Stage for Pusher {
        fn name(&self) -> &'static str {
            "pusher"
        }
        fn poll(&mut self) -> Progress {
            let now = now_ns();
            if !self.0.flush(now) {
                return Progress::Idle;
            }
            self.0.send(Msg::Value { v: self.1, t0: now }, 0, now);
            self.1 += 1;
            Progress::Busy
        }
        fn finish(&mut self) -> StageReport {
            StageReport::new("pusher")
        }
    }
    struct Breaker(RingRx<Stamped<Msg>>);
    impl Stage for Breaker {
        fn name(&self) -> &'static str {
            "breaker"
        }
        fn poll(&mut self) -> Progress {
            match self.0.pop().map(|s| s.msg) {
                Some(Msg::Value { v: 100, .. }) => panic!("breaker stops at 100"),
                Some(_) => Progress::Busy,
                None => Progress::Idle,
            }
        }
        fn finish(&mut self) -> StageReport {
            StageReport::new("breaker")
        }
    }
    let (tx, rx) = ring(4);
    let stages: Vec<Box<dyn Stage>> = vec![Box::new(Pusher(outlet(tx), 0)), Box::new(Breaker(rx))];
    let plans = grouped(&[1, 1], stages, &[], PARK);
    let r = run_within(plans, RuntimeOptions::default(), LIMIT).result;
    assert!(
        matches!(
            r,
            Err(RuntimeError::StagePanicked {
                stage: "breaker",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn stop_makes_the_source_end_early_and_the_run_drains_cleanly() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut toy = Toy::new(u64::MAX);
    toy.stop = Some(Arc::clone(&stop));
    let plans = grouped(PAIRED, toy.stages(), &[], PARK);
    let opts = RuntimeOptions {
        stop: Arc::clone(&stop),
        ..RuntimeOptions::default()
    };
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
    });
    let report = run_within(plans, opts, LIMIT).result.expect("run");
    stopper.join().expect("stopper");
    let sent = counter(&report, "source", "sent");
    assert!(sent > 0 && sent < u64::MAX);
    assert_eq!(counter(&report, "sink", "count"), sent);
    assert_eq!(
        counter(&report, "sink", "checksum"),
        expected_checksum(sent)
    );
}

#[test]
fn a_stage_that_ignores_stop_is_torn_down_after_the_grace_period() {
    // The source never looks at `stop` and never ends.
    let stop = Arc::new(AtomicBool::new(true));
    let toy = Toy::new(u64::MAX);
    let plans = grouped(PER_STAGE, toy.stages(), &[], PARK);
    let opts = RuntimeOptions {
        stop,
        ..RuntimeOptions::default()
    };
    match run_within(plans, opts, LIMIT).result {
        Err(RuntimeError::ShutdownTimedOut { threads, .. }) => {
            assert_eq!(threads, ["source", "map", "sink"]);
        }
        other => panic!("expected a shutdown timeout, got {other:?}"),
    }
}

#[test]
fn a_failed_pin_is_reported_and_the_run_goes_on() {
    let toy = Toy::new(100);
    let plans = grouped(FUSED, toy.stages(), &[4000], PARK);
    let before = placement_report(&plans);
    assert_eq!(before.threads[0].pin, PinOutcome::Planned);
    let outcome = run_within(plans, RuntimeOptions::default(), LIMIT);
    let report = outcome.result.expect("run");
    assert!(matches!(
        report.placement.threads[0].pin,
        PinOutcome::Failed(_)
    ));
    assert!(
        report
            .placement
            .warnings()
            .iter()
            .any(|w| w.contains("not pinned")),
        "{:?}",
        report.placement.warnings()
    );
    assert!(
        outcome.startup.contains("PIN FAILED"),
        "{}",
        outcome.startup
    );
    assert!(outcome.startup.contains("WARNING"), "{}", outcome.startup);
    assert_eq!(counter(&report, "sink", "count"), 100);
}

#[test]
fn refused_host_settings_are_messages_not_aborts() {
    // Priority 0 is never valid for SCHED_FIFO, so this is refused on any host.
    let toy = Toy::new(100);
    let plans = grouped(FUSED, toy.stages(), &[], PARK);
    let opts = RuntimeOptions {
        realtime_priority: Some(0),
        ..RuntimeOptions::default()
    };
    let report = run(plans, &opts).expect("run");
    assert!(report.placement.threads[0].realtime.is_refused());
    assert!(
        report
            .placement
            .warnings()
            .iter()
            .any(|w| w.contains("SCHED_FIFO")),
        "{:?}",
        report.placement.warnings()
    );
    assert_eq!(counter(&report, "sink", "count"), 100);
}

/// 1..=10_000 ns, each once: the p-th percentile is p% of 10_000 ns.
fn uniform() -> NamedHistogram {
    let mut h = NamedHistogram::new("uniform");
    for v in 1..=10_000 {
        h.record(v);
    }
    h
}

#[test]
fn table_is_aligned_and_shows_the_percentiles() {
    let mut small = NamedHistogram::new("hop.feed_book");
    small.record(250);
    let report = LatencyReport::from_histograms([&uniform(), &small]);
    let table = report.table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    // Right-aligned columns end at the same character positions on every line.
    let ends = |l: &str| -> Vec<usize> {
        let c: Vec<char> = l.chars().collect();
        (1..c.len())
            .chain([c.len()])
            .filter(|&i| c[i - 1] != ' ' && (i == c.len() || c[i] == ' '))
            .collect()
    };
    let header_ends = ends(lines[0]);
    assert_eq!(header_ends.len(), 8, "{table}");
    for row in &lines[2..] {
        let row_ends = ends(row);
        for e in &header_ends[1..] {
            assert!(
                row_ends.contains(e),
                "column ending at {e} misaligned:\n{table}"
            );
        }
    }
    assert!(lines[0].starts_with("histogram"));
    assert!(lines[0].contains("p99.99"));
    assert!(lines[2].starts_with("uniform"));
    // The cells are the summary's values, formatted (p50 of 1..=10000 ns is 5 µs within the
    // histograms' 1 %).
    let s = &report.summaries()[0];
    assert!((5_000..=5_050).contains(&s.p50_ns), "{s:?}");
    for v in [s.p50_ns, s.max_ns] {
        assert!(lines[2].contains(&format_ns(v)), "{table}");
    }
    assert!(lines[3].contains("250 ns"), "{table}");
}

#[test]
fn json_round_trips_with_exact_percentiles() {
    let report = LatencyReport::from_histograms([&uniform()]);
    let json = report.to_json().expect("json");
    let back: LatencyJson = serde_json::from_str(&json).expect("parse back");
    assert_eq!(back.unit, "ns");
    assert_eq!(back.histograms, report.summaries());
    let s = &back.histograms[0];
    assert_eq!(s.count, 10_000);
    // Below 256 the histogram is exact; above, values are the top of a bucket at most 1 % wide.
    for (got, want) in [
        (s.p50_ns, 5_000),
        (s.p90_ns, 9_000),
        (s.p99_ns, 9_900),
        (s.p99_9_ns, 9_990),
        (s.p99_99_ns, 9_999),
        (s.max_ns, 10_000),
    ] {
        assert!(got >= want && got <= want + want / 100, "{got} vs {want}");
    }
}

#[test]
fn hgrm_files_parse_back_to_the_known_distribution() {
    let dir = std::env::temp_dir().join(format!("pinion-hgrm-{}", std::process::id()));
    let report = LatencyReport::from_histograms([&uniform()]);
    let paths = report.write_hgrm_files(&dir).expect("write");
    assert_eq!(paths, [dir.join("uniform.hgrm")]);
    let text = std::fs::read_to_string(&paths[0]).expect("read");
    std::fs::remove_dir_all(&dir).expect("clean up");

    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    assert_eq!(lines.next(), Some(""));
    let mut rows = Vec::new();
    let mut footer = Vec::new();
    for l in lines {
        if l.starts_with("#[") {
            footer.push(l);
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        let value_us: f64 = f[0].parse().expect("value");
        let pct: f64 = f[1].parse().expect("percentile");
        let total: u64 = f[2].parse().expect("count");
        if pct < 1.0 {
            let inv: f64 = f[3].parse().expect("1/(1-p)");
            assert!((inv - 1.0 / (1.0 - pct)).abs() <= 0.01 + inv * 1e-9, "{l}");
        } else {
            assert_eq!(f.len(), 3, "the 100% row has no 1/(1-p): {l}");
        }
        rows.push((value_us, pct, total));
    }
    assert!(rows.len() > 20, "{text}");
    // Uniform 1..=10000 ns: the value at each row is about percentile * 10 µs, and the total
    // count is the number of values at or below it.
    for &(value_us, pct, total) in &rows {
        let value_ns = (value_us * 1000.0).round() as u64;
        assert!(
            (value_ns as f64 - pct * 10_000.0).abs() <= 1.0 + value_ns as f64 / 100.0,
            "{value_us} µs at {pct}"
        );
        assert_eq!(total, value_ns.min(10_000), "{value_us} µs");
    }
    assert!(
        rows.windows(2)
            .all(|w| w[0].1 <= w[1].1 && w[0].2 <= w[1].2)
    );
    let last = rows.last().copied().unwrap_or_default();
    assert_eq!(last.1, 1.0);
    assert_eq!(last.2, 10_000);
    let half = rows
        .iter()
        .find(|r| r.1 >= 0.5)
        .copied()
        .unwrap_or_default();
    // The first row at or past 50 %: its value is 5 µs within the histograms' 1 %.
    assert!(half.1 >= 0.5 && half.1 < 0.51, "{half:?}");
    assert!((half.0 - 5.0).abs() < 0.05, "p50 {} µs", half.0);
    assert_eq!(footer.len(), 3);
    assert!(
        footer[1].contains("Total count    =        10000"),
        "{}",
        footer[1]
    );
    assert!(footer[0].contains("Mean    =        5.0"), "{}", footer[0]);
    assert!(
        footer[2].contains("SubBuckets     =          256"),
        "{}",
        footer[2]
    );
}

#[test]
fn hgrm_matches_the_library_percentiles_in_ns() {
    // Write unscaled and compare each row with the histogram's own answer.
    let h = uniform();
    let mut out = Vec::new();
    write_percentiles(&h.hist, 5, 1.0, &mut out).expect("write");
    let text = String::from_utf8(out).expect("utf8");
    let mut checked = 0;
    for l in text.lines().skip(2).filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let value: f64 = f[0].parse().expect("value");
        let pct: f64 = f[1].parse().expect("percentile");
        // The library's quantile iterator can land one bucket above `value_at_quantile` when the
        // iteration quantile is a float ulp above a bucket's exact quantile (as the HdrHistogram
        // family does); never further.
        let at = h.hist.value_at_quantile(pct);
        let next = h.hist.highest_equivalent(h.hist.next_non_equivalent(at));
        let value = value as u64;
        assert!(value == at || value == next, "{l}: library says {at}");
        checked += 1;
    }
    assert!(checked > 20);
}
