//! Running the plans: one OS thread per [`ThreadPlan`], set up (pinned, optionally `SCHED_FIFO`),
//! started together, each polling its stages round-robin until all are done.
//!
//! Shutdown is driven by the data: every stage ends on the end-of-stream marker that travels
//! through the rings. The runtime only guarantees that nothing spins forever when that cannot
//! happen:
//! - a panic in a stage is caught on its thread, the run's abort flag is raised, and that thread's
//!   stages are dropped; every other thread sees the flag on its next round and stops; [`run`]
//!   returns [`RuntimeError::StagePanicked`];
//! - after the `stop` flag is set (by Ctrl-C, through [`stop_on_ctrl_c`]) the stages get
//!   [`STOP_GRACE`] to drain, then the run is torn down and [`RuntimeError::ShutdownTimedOut`]
//!   names the threads still running.
//!
//! The release profile builds with `panic = "abort"`; there a panic ends the process at once,
//! which also cannot hang. The catching matters for tests, benches and debug builds.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::liveness::{Beats, StallHook};
use super::placement::{
    PinOutcome, PlacementReport, RuntimeOptions, ThreadPlacement, ThreadPlan, allowed_cores,
    pin_current_thread,
};
use super::stage::{Progress, Stage, StageReport};
use super::wait::{WaitStrategy, Waiter};
use super::{RuntimeError, clock};
use crate::host::HostIsolation;
use crate::host::realtime::{self, SettingOutcome};
use crate::latency::{LatencyJson, LatencyReport};
use serde::{Deserialize, Serialize};

/// How long the stages may take to drain after `stop` is set before the run is torn down.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Makes Ctrl-C (SIGINT, and SIGTERM) set `stop`, the flag a run's
/// [`RuntimeOptions::stop`] shares: the feed stage then sends the end-of-stream marker, every
/// stage flushes, and the report still comes out. A second Ctrl-C while stopping exits the process
/// at once with status 130. The one Ctrl-C handler of the process; it can be installed only once.
pub fn stop_on_ctrl_c(stop: &Arc<AtomicBool>) -> Result<(), ctrlc::Error> {
    let stop = Arc::clone(stop);
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
}

/// Everything a run hands back.
#[derive(Debug)]
pub struct RunReport {
    /// Where each thread ran and how it was set up.
    pub placement: PlacementReport,
    /// Every stage's report, in plan order.
    pub stages: Vec<StageReport>,
    /// From the threads' common start to the last thread's end.
    pub wall: Duration,
}

impl RunReport {
    /// All stages' histograms merged by name.
    pub fn latency(&self) -> LatencyReport {
        LatencyReport::from_stage_reports(&self.stages)
    }

    /// The report of stage `name`, if it ran (the first, where several share the name).
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.stage == name)
    }

    /// Counter `counter` of stage `name`, added up over every stage of that name (the strategy
    /// stages of a placement that has several); `None` when no stage of the name has it.
    pub fn counter(&self, name: &str, counter: &str) -> Option<u64> {
        self.stages
            .iter()
            .filter(|s| s.stage == name)
            .filter_map(|s| s.counter(counter))
            .reduce(u64::wrapping_add)
    }

    /// The end-of-run text: wall time, every stage's counters as an aligned table, then the
    /// latency table.
    pub fn summary(&self) -> String {
        let mut out = format!("run: {:.3} s wall\n", self.wall.as_secs_f64());
        let rows: Vec<(&str, &str, String)> = self
            .stages
            .iter()
            .flat_map(|s| s.counters.iter().map(|(n, v)| (s.stage, *n, v.to_string())))
            .collect();
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(5);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(7);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(5);
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:>w2$}\n",
            "stage", "counter", "value"
        ));
        for (stage, name, value) in &rows {
            out.push_str(&format!("{stage:<w0$}  {name:<w1$}  {value:>w2$}\n"));
        }
        out.push('\n');
        out.push_str(&self.latency().table());
        out
    }

    /// The whole report as JSON ([`RunJson`]): placement, counters, latency summaries in ns.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let latency = self.latency();
        serde_json::to_string_pretty(&RunJson {
            wall_ns: u64::try_from(self.wall.as_nanos()).unwrap_or(u64::MAX),
            placement: self.placement.clone(),
            counters: self
                .stages
                .iter()
                .map(|s| StageCounters {
                    stage: s.stage.to_owned(),
                    counters: s
                        .counters
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), *v))
                        .collect(),
                })
                .collect(),
            latency: LatencyJson {
                unit: "ns".to_owned(),
                histograms: latency.summaries(),
            },
        })
    }
}

/// The JSON form of a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunJson {
    /// Wall time of the run, ns.
    pub wall_ns: u64,
    /// Where each thread ran.
    pub placement: PlacementReport,
    /// Counters per stage, in plan order.
    pub counters: Vec<StageCounters>,
    /// Merged latency summaries.
    pub latency: LatencyJson,
}

/// One stage's counters in [`RunJson`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCounters {
    /// Stage name.
    pub stage: String,
    /// Counter name and value, in the order the stage reported them.
    pub counters: Vec<(String, u64)>,
}

/// Runs `plans` to completion, printing the start-up placement report to stderr once every
/// thread is set up. See [`run_with`].
pub fn run(plans: Vec<ThreadPlan>, opts: &RuntimeOptions) -> Result<RunReport, RuntimeError> {
    run_with(plans, opts, |report| eprint!("{report}"))
}

/// Runs `plans` to completion: spawns one thread per plan, pins it, applies the scheduling
/// options, calls `on_started` with the placement report once every thread is ready (before any
/// stage is polled), then lets all threads go and waits for them.
pub fn run_with(
    plans: Vec<ThreadPlan>,
    opts: &RuntimeOptions,
    on_started: impl FnOnce(&PlacementReport),
) -> Result<RunReport, RuntimeError> {
    clock::start();
    let host = HostIsolation::read();
    let allowed = Arc::new(allowed_cores());
    let mlock = if opts.mlockall {
        realtime::lock_memory()
    } else {
        SettingOutcome::NotRequested
    };

    let abort = Arc::new(AtomicBool::new(false));
    let go = Arc::new(AtomicBool::new(false));
    let stall = StallHook::from_env();
    let begun = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, PinOutcome, SettingOutcome)>();
    let supervisor = thread::current();

    let mut placements = Vec::with_capacity(plans.len());
    let mut workers: Vec<(String, JoinHandle<ThreadOutcome>)> = Vec::with_capacity(plans.len());
    for (index, plan) in plans.into_iter().enumerate() {
        placements.push(ThreadPlacement {
            name: plan.name.clone(),
            core: plan.core,
            isolated: plan.core.is_some_and(|c| host.is_isolated(c)),
            nohz_full: plan.core.is_some_and(|c| host.is_nohz_full(c)),
            wait: plan.wait,
            stages: plan.stage_names().into_iter().map(str::to_owned).collect(),
            pin: PinOutcome::Planned,
            realtime: SettingOutcome::Pending,
        });
        let name = plan.name.clone();
        let stall = stall
            .as_ref()
            .and_then(|h| h.for_thread(&plan.stage_names(), begun));
        let setup = ThreadSetup {
            index,
            beats: opts.beats.clone(),
            stall,
            allowed: Arc::clone(&allowed),
            realtime_priority: opts.realtime_priority,
            abort: Arc::clone(&abort),
            go: Arc::clone(&go),
            ready: ready_tx.clone(),
            supervisor: supervisor.clone(),
        };
        let spawned = thread::Builder::new()
            .name(name.clone())
            .spawn(move || thread_main(plan, setup));
        match spawned {
            Ok(handle) => workers.push((name, handle)),
            Err(source) => {
                abort.store(true, Ordering::Relaxed);
                for (_, h) in &workers {
                    h.thread().unpark();
                }
                for (_, h) in workers {
                    let _ = h.join();
                }
                return Err(RuntimeError::Spawn {
                    thread: name,
                    source,
                });
            }
        }
    }
    drop(ready_tx);

    // Wait for every thread to report its set-up. A thread cannot die before reporting unless
    // set-up itself panicked, in which case its sender is dropped with it and `recv` errors out
    // once all others have reported.
    let mut reported = 0;
    while reported < workers.len() {
        match ready_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((i, pin, rt)) => {
                placements[i].pin = pin;
                placements[i].realtime = rt;
                reported += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if workers.iter().any(|(_, h)| h.is_finished()) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let placement = PlacementReport {
        host,
        allowed: allowed.to_vec(),
        mlock,
        threads: placements,
    };
    if reported < workers.len() {
        abort.store(true, Ordering::Relaxed);
    } else {
        on_started(&placement);
    }

    let started = Instant::now();
    go.store(true, Ordering::Release);
    for (_, h) in &workers {
        h.thread().unpark();
    }

    // Supervise: wake when a thread ends (each unparks us on exit) or periodically, and enforce
    // the stop grace period.
    let mut stop_seen: Option<Instant> = None;
    let mut timed_out = false;
    while !workers.iter().all(|(_, h)| h.is_finished()) {
        if opts.stop.load(Ordering::Relaxed) && !timed_out {
            let since = *stop_seen.get_or_insert_with(Instant::now);
            if since.elapsed() >= STOP_GRACE {
                timed_out = true;
                abort.store(true, Ordering::Relaxed);
            }
        }
        thread::park_timeout(Duration::from_millis(20));
    }
    let wall = started.elapsed();

    let mut stages = Vec::new();
    let mut first_panic: Option<RuntimeError> = None;
    let mut unfinished = Vec::new();
    for (name, handle) in workers {
        match handle.join() {
            Ok(ThreadOutcome::Completed(reports)) => stages.extend(reports),
            Ok(ThreadOutcome::Aborted) => unfinished.push(name),
            Ok(ThreadOutcome::Panicked { stage, message }) => {
                first_panic.get_or_insert(RuntimeError::StagePanicked {
                    thread: name,
                    stage,
                    message,
                });
            }
            Err(payload) => {
                first_panic.get_or_insert(RuntimeError::StagePanicked {
                    thread: name,
                    stage: "(set-up)",
                    message: panic_message(payload.as_ref()),
                });
            }
        }
    }
    if let Some(e) = first_panic {
        return Err(e);
    }
    if timed_out {
        return Err(RuntimeError::ShutdownTimedOut {
            grace: STOP_GRACE,
            threads: unfinished,
        });
    }
    if !unfinished.is_empty() {
        return Err(RuntimeError::SetupFailed {
            threads: unfinished,
        });
    }
    Ok(RunReport {
        placement,
        stages,
        wall,
    })
}

/// What a worker thread needs besides its plan.
struct ThreadSetup {
    index: usize,
    /// Where the thread counts its rounds, when a watcher reads them.
    beats: Option<Arc<Beats>>,
    /// The test hook's stall: which of the thread's stages, from when.
    stall: Option<(usize, Instant)>,
    allowed: Arc<Vec<usize>>,
    realtime_priority: Option<i32>,
    abort: Arc<AtomicBool>,
    go: Arc<AtomicBool>,
    ready: mpsc::Sender<(usize, PinOutcome, SettingOutcome)>,
    supervisor: Thread,
}

/// How a worker thread ended.
enum ThreadOutcome {
    /// All its stages reached `Done`; their reports.
    Completed(Vec<StageReport>),
    /// Stopped because the run was aborted (another thread panicked, or the stop grace expired).
    Aborted,
    /// A stage panicked.
    Panicked {
        stage: &'static str,
        message: String,
    },
}

/// Wakes the supervisor when the worker ends, however it ends.
struct WakeOnExit(Thread);

impl Drop for WakeOnExit {
    fn drop(&mut self) {
        self.0.unpark();
    }
}

fn thread_main(plan: ThreadPlan, setup: ThreadSetup) -> ThreadOutcome {
    let _wake = WakeOnExit(setup.supervisor.clone());
    let pin = match plan.core {
        Some(core) => pin_current_thread(core, &setup.allowed),
        None => PinOutcome::NotRequested,
    };
    let rt = match setup.realtime_priority {
        Some(p) => realtime::set_fifo_priority(p),
        None => SettingOutcome::NotRequested,
    };
    // The supervisor outlives the send unless it already gave up; either way nothing to do.
    let _ = setup.ready.send((setup.index, pin, rt));
    drop(setup.ready);

    while !setup.go.load(Ordering::Acquire) {
        if setup.abort.load(Ordering::Relaxed) {
            return ThreadOutcome::Aborted;
        }
        thread::park_timeout(Duration::from_millis(10));
    }

    let mut stages = plan.stages;
    let mut current = 0usize;
    let mut reports = Vec::with_capacity(stages.len());
    let result = catch_unwind(AssertUnwindSafe(|| {
        drive(
            &mut stages,
            plan.wait,
            &setup.abort,
            &mut current,
            &mut reports,
            Rounds {
                beats: setup.beats.as_deref().map(|b| (b, setup.index)),
                stall: setup.stall,
            },
        )
    }));
    if let Some(b) = &setup.beats {
        b.end(setup.index);
    }
    match result {
        Ok(true) => ThreadOutcome::Completed(reports),
        Ok(false) => ThreadOutcome::Aborted,
        Err(payload) => {
            // Raise the flag before dropping the stages, so threads that see their rings
            // abandoned also know why.
            setup.abort.store(true, Ordering::Relaxed);
            let stage = stages.get(current).map_or("?", |s| s.name());
            let message = panic_message(payload.as_ref());
            drop(stages);
            ThreadOutcome::Panicked { stage, message }
        }
    }
}

/// What a thread's loop reports about its rounds: where it beats, and the test hook's stall.
struct Rounds<'a> {
    beats: Option<(&'a Beats, usize)>,
    stall: Option<(usize, Instant)>,
}

/// The test hook's stall: stuck, as inside a wedged message, until the run is aborted.
#[cold]
fn stall_until_aborted(abort: &AtomicBool) {
    while !abort.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// The thread's polling loop. Returns true when every stage is done, false when aborted.
/// Allocates nothing: `done` and `reports` are sized before the first poll (each stage's own
/// `finish` may allocate, once, at its end). After every round the round count is stored for
/// the liveness watchers ([`Beats`]).
fn drive(
    stages: &mut [Box<dyn Stage>],
    wait: WaitStrategy,
    abort: &AtomicBool,
    current: &mut usize,
    reports: &mut Vec<StageReport>,
    rounds: Rounds<'_>,
) -> bool {
    let mut round = 0u64;
    let mut done = vec![false; stages.len()];
    let mut remaining = stages.len();
    for (i, stage) in stages.iter_mut().enumerate() {
        *current = i;
        stage.start();
    }
    let mut waiter = Waiter::new(wait);
    while remaining > 0 {
        if abort.load(Ordering::Relaxed) {
            return false;
        }
        let mut busy = false;
        for (i, stage) in stages.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            *current = i;
            if let Some((at, from)) = rounds.stall
                && at == i
                && Instant::now() >= from
            {
                stall_until_aborted(abort);
                return false;
            }
            match stage.poll() {
                Progress::Busy => busy = true,
                Progress::Idle => {}
                Progress::Done => {
                    done[i] = true;
                    remaining -= 1;
                    busy = true;
                    reports.push(stage.finish());
                }
            }
        }
        round += 1;
        if let Some((beats, index)) = rounds.beats {
            beats.beat(index, round);
        }
        if busy {
            waiter.reset();
        } else {
            waiter.wait();
        }
    }
    true
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
