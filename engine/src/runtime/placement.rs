//! Which stages run on which thread, and which core each thread is pinned to.
//!
//! A [`ThreadPlan`] is one OS thread: a name, an optional core, a wait strategy and the stages it
//! runs in turn. The runtime has no shapes of its own: the config's placement (its ready-made
//! modes `1`, `2`, `4`, or custom threads) is turned into plans by the pipeline.
//! [`placement_report`] says, before anything runs, where each thread will go and whether that
//! core is isolated; the same report, with the pin and scheduling outcomes filled in, is printed
//! when the threads have started and kept in the run's report.
//!
//! Pinning is done in one place, [`pin_current_thread`]. A failed pin is never ignored: it is in
//! the report's warnings, which the start-up print shows.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::stage::Stage;
use super::wait::WaitStrategy;
use crate::host::{CpuList, HostIsolation, SettingOutcome};

/// One OS thread of the run.
pub struct ThreadPlan {
    /// Thread name (shown by `top -H`, in panics and reports).
    pub name: String,
    /// Core to pin the thread to; `None` leaves it to the scheduler.
    pub core: Option<usize>,
    /// What the thread does when all its stages are idle.
    pub wait: WaitStrategy,
    /// Stages polled round-robin in this order (upstream first, so a fused thread runs each
    /// event to completion before reading the next).
    pub stages: Vec<Box<dyn Stage>>,
}

impl fmt::Debug for ThreadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPlan")
            .field("name", &self.name)
            .field("core", &self.core)
            .field("wait", &self.wait)
            .field("stages", &self.stage_names())
            .finish()
    }
}

impl ThreadPlan {
    /// The names of the plan's stages, in polling order.
    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }
}

/// Process-wide options of a run.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Lock all memory (`mlockall(MCL_CURRENT | MCL_FUTURE)`) before starting the threads.
    pub mlockall: bool,
    /// Run every thread under `SCHED_FIFO` at this priority.
    pub realtime_priority: Option<i32>,
    /// Set by Ctrl-C ([`stop_on_ctrl_c`](super::run::stop_on_ctrl_c)). The feed stage watches it and sends the end-of-stream marker early; the
    /// runtime gives the stages [`STOP_GRACE`](super::run::STOP_GRACE) to drain after it is set,
    /// then tears the run down.
    pub stop: Arc<AtomicBool>,
    /// Where each thread counts its rounds, for the liveness watchers (the systemd watchdog,
    /// the outbound heartbeat); `None`: nobody watches.
    pub beats: Option<Arc<super::liveness::Beats>>,
}

/// Result of pinning one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinOutcome {
    /// The plan has no core: the scheduler places the thread.
    NotRequested,
    /// Not started yet (a report made before the run).
    Planned,
    /// Pinned to the plan's core.
    Pinned,
    /// The pin failed; the thread runs unpinned. The message says why.
    Failed(String),
}

impl fmt::Display for PinOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinOutcome::NotRequested => f.write_str("unpinned"),
            PinOutcome::Planned => f.write_str("planned"),
            PinOutcome::Pinned => f.write_str("pinned"),
            PinOutcome::Failed(why) => write!(f, "PIN FAILED: {why}"),
        }
    }
}

/// Highest CPU number a pin can name: the size of the kernel's `cpu_set_t` in the C library.
const CPU_SETSIZE: usize = 1024;

/// Pins the calling thread to `core`. `allowed` (the CPUs the process was started with, read
/// before any thread was pinned) is only used to explain a failure: the kernel decides.
pub fn pin_current_thread(core: usize, allowed: &[usize]) -> PinOutcome {
    if core >= CPU_SETSIZE {
        return PinOutcome::Failed(format!(
            "core {core} is beyond the {CPU_SETSIZE} CPUs a pin can name (allowed: {})",
            CpuList(allowed)
        ));
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        PinOutcome::Pinned
    } else {
        let err = std::io::Error::last_os_error();
        PinOutcome::Failed(format!(
            "sched_setaffinity to core {core}: {err} (allowed: {})",
            CpuList(allowed)
        ))
    }
}

/// The CPUs the calling thread may run on, sorted. Read it before pinning anything: a thread
/// spawned by a pinned thread inherits the narrower set.
pub fn allowed_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cores.sort_unstable();
    cores
}

/// Where one thread runs and how it was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadPlacement {
    /// The plan's thread name.
    pub name: String,
    /// The plan's core.
    pub core: Option<usize>,
    /// The core is in the host's isolated set.
    pub isolated: bool,
    /// The core runs tickless.
    pub nohz_full: bool,
    /// The thread's wait strategy.
    pub wait: WaitStrategy,
    /// The stages it runs.
    pub stages: Vec<String>,
    /// What happened when it was pinned.
    pub pin: PinOutcome,
    /// What happened when `SCHED_FIFO` was asked for.
    pub realtime: SettingOutcome,
}

/// Placement of every thread plus the host's isolation settings: printed at start-up and kept in
/// the run report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementReport {
    /// The host's isolated and tickless CPUs.
    pub host: HostIsolation,
    /// CPUs this process may run on.
    pub allowed: Vec<usize>,
    /// Outcome of `mlockall`.
    pub mlock: SettingOutcome,
    /// One entry per thread, in plan order.
    pub threads: Vec<ThreadPlacement>,
}

/// The placement report for `plans` before they run (pins shown as planned, scheduling settings
/// as pending).
pub fn placement_report(plans: &[ThreadPlan]) -> PlacementReport {
    let host = HostIsolation::read();
    let threads = plans
        .iter()
        .map(|p| ThreadPlacement {
            name: p.name.clone(),
            core: p.core,
            isolated: p.core.is_some_and(|c| host.is_isolated(c)),
            nohz_full: p.core.is_some_and(|c| host.is_nohz_full(c)),
            wait: p.wait,
            stages: p.stage_names().into_iter().map(str::to_owned).collect(),
            pin: if p.core.is_some() {
                PinOutcome::Planned
            } else {
                PinOutcome::NotRequested
            },
            realtime: SettingOutcome::Pending,
        })
        .collect();
    PlacementReport {
        host,
        allowed: allowed_cores(),
        mlock: SettingOutcome::Pending,
        threads,
    }
}

impl PlacementReport {
    /// Everything in the placement that costs latency or correctness, one line each: failed pins,
    /// refused settings, several threads on one core, spinning threads on shared cores.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let SettingOutcome::Refused(why) = &self.mlock {
            out.push(format!("memory not locked: {why}"));
        }
        for (i, t) in self.threads.iter().enumerate() {
            if let PinOutcome::Failed(why) = &t.pin {
                out.push(format!("thread {}: not pinned: {why}", t.name));
            }
            if let SettingOutcome::Refused(why) = &t.realtime {
                out.push(format!("thread {}: no real-time priority: {why}", t.name));
            }
            if let Some(core) = t.core {
                if let Some(other) = self.threads[..i].iter().find(|o| o.core == Some(core)) {
                    out.push(format!(
                        "threads {} and {} share core {core}",
                        other.name, t.name
                    ));
                }
                if t.wait.spins_forever() && !t.isolated {
                    out.push(format!(
                        "thread {} busy-spins on core {core}, which is not isolated",
                        t.name
                    ));
                }
            } else if t.wait.spins_forever() {
                out.push(format!("thread {} busy-spins without a core", t.name));
            }
        }
        out
    }
}

impl fmt::Display for PlacementReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "host: allowed cores {}, isolated {}, nohz_full {}; mlockall {}; clock {}",
            CpuList(&self.allowed),
            CpuList(&self.host.isolated),
            CpuList(&self.host.nohz_full),
            self.mlock,
            super::clock::source_name()
        )?;
        for note in &self.host.notes {
            writeln!(f, "  note: {note}")?;
        }
        let name_w = self
            .threads
            .iter()
            .map(|t| t.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("thread".len());
        writeln!(
            f,
            "  {:<name_w$}  {:>4}  {:<8}  {:<9}  {:<26}  {:<24}  realtime",
            "thread", "core", "isolated", "nohz_full", "wait", "pin"
        )?;
        for t in &self.threads {
            let core = t.core.map_or_else(|| "-".to_owned(), |c| c.to_string());
            let yes_no = |b: bool| if b { "yes" } else { "no" };
            writeln!(
                f,
                "  {:<name_w$}  {:>4}  {:<8}  {:<9}  {:<26}  {:<24}  {}",
                t.name,
                core,
                yes_no(t.isolated),
                yes_no(t.nohz_full),
                format!("{:?}", t.wait),
                t.pin.to_string(),
                t.realtime
            )?;
        }
        for w in self.warnings() {
            writeln!(f, "WARNING: {w}")?;
        }
        Ok(())
    }
}
