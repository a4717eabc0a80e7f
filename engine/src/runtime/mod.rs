//! The engine runtime: stages on pinned threads, connected by SPSC rings.
//!
//! - [`stage`]: the [`Stage`] trait every pipeline stage implements (`poll` → [`Progress`]).
//! - [`ring`](mod@ring): bounded rings between stages; a full ring hands the value back, never
//!   drops it.
//! - [`wait`]: what an idle thread does ([`WaitStrategy`]).
//! - [`placement`]: [`ThreadPlan`]s, pinning, the placement report.
//! - [`run`](mod@run): [`run`](fn@run) drives the plans to completion and returns a
//!   [`RunReport`].
//! - [`clock`]: the engine's monotonic nanosecond clock.
//! - [`liveness`]: each thread's round count, for the watchdog and the heartbeat.
//!
//! What the host offers (isolated cores, memory locking, `SCHED_FIFO`) and how quiet it is live
//! apart, in [`host`](crate::host).
//!
//! A stage pushes with [`RingTx::try_push`] and holds a value back while the ring is full (the
//! pipeline's stages do this through their [`Outbox`](crate::stages::outbox::Outbox)), so it
//! never waits on a consumer that may run on its own thread; the end-of-stream marker travels
//! through the rings like any other value:
//!
//! ```
//! use pinion_engine::runtime::*;
//!
//! struct Count { next: u32, held: Option<Option<u32>>, tx: RingTx<Option<u32>> }
//! impl Stage for Count {
//!     fn name(&self) -> &'static str { "count" }
//!     fn poll(&mut self) -> Progress {
//!         if let Some(v) = self.held.take() {
//!             if let Err(v) = self.tx.try_push(v) { self.held = Some(v); return Progress::Idle; }
//!             if v.is_none() { return Progress::Done; } // the marker is out
//!             return Progress::Busy;
//!         }
//!         self.held = Some(if self.next < 1000 { Some(self.next) } else { None });
//!         self.next += 1;
//!         Progress::Busy
//!     }
//!     fn finish(&mut self) -> StageReport { StageReport::new("count") }
//! }
//!
//! struct Sum { total: u64, rx: RingRx<Option<u32>> }
//! impl Stage for Sum {
//!     fn name(&self) -> &'static str { "sum" }
//!     fn poll(&mut self) -> Progress {
//!         match self.rx.pop() {
//!             Some(Some(v)) => { self.total += u64::from(v); Progress::Busy }
//!             Some(None) => Progress::Done,
//!             None => Progress::Idle,
//!         }
//!     }
//!     fn finish(&mut self) -> StageReport {
//!         let mut r = StageReport::new("sum");
//!         r.counters.push(("total", self.total));
//!         r
//!     }
//! }
//!
//! let (tx, rx) = ring(64);
//! let stages: Vec<Box<dyn Stage>> =
//!     vec![Box::new(Count { next: 0, held: None, tx }), Box::new(Sum { total: 0, rx })];
//! // Both stages on one thread, each value run to completion.
//! let plans = vec![ThreadPlan {
//!     name: "count+sum".to_owned(),
//!     core: None,
//!     wait: WaitStrategy::Park { timeout_us: 50 },
//!     stages,
//! }];
//! let report = run_with(plans, &RuntimeOptions::default(), |_| {}).unwrap();
//! assert_eq!(report.stage("sum").and_then(|s| s.counter("total")), Some(499_500));
//! ```
//!
//! Invariants: after start-up, nothing here allocates, locks or formats on the polling path; the
//! only shared state a stage touches is its rings; every way a run can fail ends in a returned
//! error rather than a thread spinning forever.

pub mod clock;
pub mod liveness;
pub mod placement;
pub mod ring;
pub mod run;
pub mod stage;
pub mod wait;

use std::time::Duration;

pub use clock::now_ns;
pub use placement::{
    PinOutcome, PlacementReport, RuntimeOptions, ThreadPlacement, ThreadPlan, placement_report,
};
pub use ring::{Batch, RingRx, RingTx, ring, ring_resident};
pub use run::{RunJson, RunReport, STOP_GRACE, StageCounters, run, run_with, stop_on_ctrl_c};
pub use stage::{LiveCounts, Progress, Published, Stage, StageLive, StageReport};
pub use wait::{WaitStrategy, Waiter};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The OS would not create a thread.
    #[error("could not spawn thread {thread}: {source}")]
    Spawn {
        /// The plan's thread name.
        thread: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stage panicked; the other threads were stopped.
    #[error("stage {stage} on thread {thread} panicked: {message}")]
    StagePanicked {
        /// The plan's thread name.
        thread: String,
        /// The stage that was being polled.
        stage: &'static str,
        /// The panic message.
        message: String,
    },
    /// After `stop` was set the stages did not finish within the grace period.
    #[error(
        "stages did not finish within {grace:?} of the stop request; still running: {threads:?}"
    )]
    ShutdownTimedOut {
        /// The grace period.
        grace: Duration,
        /// Threads that were still running and were stopped.
        threads: Vec<String>,
    },
    /// A thread died during set-up, before any stage ran.
    #[error("threads {threads:?} stopped before their stages ran")]
    SetupFailed {
        /// The threads that did not run.
        threads: Vec<String>,
    },
}
