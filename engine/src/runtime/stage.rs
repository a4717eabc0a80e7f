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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::latency::{LiveLatency, NamedHistogram};

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

    /// The stage's running counters, for the metrics thread: read from fields the stage keeps
    /// anyway, without allocating (a [`Published`] wrapper stores them after each busy poll).
    /// `None` by default: a stage with nothing to publish.
    fn live_counts(&self) -> Option<LiveCounts> {
        None
    }

    /// Read-only views of the stage's latency recorders, taken once at start-up (allocates).
    fn live_latency(&self) -> Vec<LiveLatency> {
        Vec::new()
    }
}

/// A stage's running counters (see [`Stage::live_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// Messages handled (events, views, orders: the stage's unit of work).
    pub messages: u64,
    /// Bad input and refusals the stage counted.
    pub errors: u64,
    /// Times its output ring was full when it had something to send.
    pub backpressure: u64,
    /// Messages waiting in its input ring when it last looked (none for the feed).
    pub input_queued: u64,
}

/// The place a stage's [`LiveCounts`] are published: written by the stage's thread (relaxed
/// stores, one writer, one cache line of its own), read by the metrics thread.
#[derive(Debug)]
pub struct StageLive {
    name: &'static str,
    values: CachePadded<[AtomicU64; 4]>,
}

impl StageLive {
    /// An empty slot for the stage `name`.
    pub fn new(name: &'static str) -> Arc<StageLive> {
        Arc::new(StageLive {
            name,
            values: CachePadded::new(Default::default()),
        })
    }

    /// The stage's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Publishes `c` (the stage's thread only).
    #[inline]
    pub fn store(&self, c: LiveCounts) {
        let v = &self.values;
        v[0].store(c.messages, Ordering::Relaxed);
        v[1].store(c.errors, Ordering::Relaxed);
        v[2].store(c.backpressure, Ordering::Relaxed);
        v[3].store(c.input_queued, Ordering::Relaxed);
    }

    /// The counts last published.
    pub fn load(&self) -> LiveCounts {
        let v = &self.values;
        LiveCounts {
            messages: v[0].load(Ordering::Relaxed),
            errors: v[1].load(Ordering::Relaxed),
            backpressure: v[2].load(Ordering::Relaxed),
            input_queued: v[3].load(Ordering::Relaxed),
        }
    }
}

/// A stage whose [`LiveCounts`] are published into a [`StageLive`] after every busy poll and at
/// the end. Used only when something reads them (metrics, the operator bot), so a run without
/// them pays nothing.
pub struct Published {
    inner: Box<dyn Stage>,
    live: Arc<StageLive>,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("stage", &self.inner.name())
            .field("live", &self.live)
            .finish()
    }
}

impl Published {
    /// `inner`, publishing into a new slot; the slot is returned beside it.
    pub fn wrap(inner: Box<dyn Stage>) -> (Box<dyn Stage>, Arc<StageLive>) {
        let live = StageLive::new(inner.name());
        let stage = Published {
            inner,
            live: Arc::clone(&live),
        };
        (Box::new(stage), live)
    }

    #[inline]
    fn publish(&self) {
        if let Some(c) = self.inner.live_counts() {
            self.live.store(c);
        }
    }
}

impl Stage for Published {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn start(&mut self) {
        self.inner.start();
    }

    #[inline]
    fn poll(&mut self) -> Progress {
        let p = self.inner.poll();
        if p != Progress::Idle {
            self.publish();
        }
        p
    }

    fn finish(&mut self) -> StageReport {
        self.publish();
        self.inner.finish()
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        self.inner.live_counts()
    }

    fn live_latency(&self) -> Vec<LiveLatency> {
        self.inner.live_latency()
    }
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
