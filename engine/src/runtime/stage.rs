//! The unit of work the runtime schedules: a [`Stage`] with a non-blocking `poll` step.
//!
//! A stage never blocks inside [`Stage::poll`] waiting for input: it does one bounded piece of
//! work and says whether it made progress. That is what lets one OS thread run several stages in
//! turn (the 2-thread and fused placements) with the same code that runs one stage per core.
//!
//! Invariants a stage keeps:
//! - [`Stage::start`] runs once on the stage's thread before the first poll;
//! - after it has returned [`Progress::Done`] it is not polled again;
//! - [`Stage::finish`] is called exactly once, on the stage's own thread, after `Done` (or when
//!   the run is shut down early), so the histograms it hands back were never shared while it ran.

use crate::latency::NamedHistogram;

/// What one [`Stage::poll`] step achieved. Drives the thread's wait strategy: a thread whose
/// stages are all idle waits, a thread with a busy stage polls again at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Did some work (consumed input or produced output); poll again soon.
    Busy,
    /// Nothing to do right now (input ring empty, or output ring full and the value held back).
    Idle,
    /// The end-of-stream marker was reached and everything before it was flushed downstream.
    Done,
}

/// One pipeline stage (feed, book, strategy, gateway, or a test stage).
///
/// `Send` because the stage is built on the start-up thread and moved to the thread that runs it.
pub trait Stage: Send {
    /// Short static name used in reports and error messages ("feed", "book", ...).
    fn name(&self) -> &'static str;

    /// Called once on the stage's own thread, after pinning and before the first poll. The place
    /// to take any start-up timestamps. Does nothing by default.
    fn start(&mut self) {}

    /// Does one bounded step of work without blocking. Must not allocate, lock or format once the
    /// run has started.
    fn poll(&mut self) -> Progress;

    /// Called once on the stage's own thread after it returned [`Progress::Done`] (or at
    /// shutdown): hands back its histograms and counters for the report.
    fn finish(&mut self) -> StageReport;
}

/// What a stage hands back at the end of the run: its own histograms and counters, merged with
/// the other stages' only when the report is built.
#[derive(Debug)]
pub struct StageReport {
    /// The stage's name, as returned by [`Stage::name`].
    pub stage: &'static str,
    /// Latency histograms owned by the stage (per stage, per ring hop, end to end).
    pub histograms: Vec<NamedHistogram>,
    /// Plain counters: events handled, errors by kind, back-pressure events, ...
    pub counters: Vec<(&'static str, u64)>,
}

impl StageReport {
    /// An empty report for `stage`.
    pub fn new(stage: &'static str) -> StageReport {
        StageReport {
            stage,
            histograms: Vec::new(),
            counters: Vec::new(),
        }
    }

    /// The value of counter `name`, if the stage reported it.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}
