//! A recording decoded once, held in memory, and fed to the book stage as many times as runs
//! want it: [`Predecoded`] and its feed stage, [`PredecodedFeed`].
//!
//! A backtest sweep runs the same recording once per combination of parameters; decoding its
//! JSON every time is most of the work that does not depend on the parameters. Decoding is done
//! by the ordinary [`FeedStage`] (same decoder, same connection table,
//! same problems found and counted), on the calling thread, into a list of the messages it sent
//! the book stage. A run on that list then sends the same messages in the same order, each
//! stamped with its own release time (`t0`) as the feed stage would stamp it, so the book,
//! strategy and simulated venue see exactly what they would have seen and a backtest's
//! `trading` results are identical.
//!
//! The list costs [`Predecoded::bytes`] of memory (a market message is a fixed-size value of
//! about 500 bytes), so it is for recordings that fit in memory several times over; it holds
//! no live input (a live source never ends) and runs at pacing `max` only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::feed::FeedStage;
use super::handoff::Handoff;
use super::msg::MarketMsg;
use super::outbox::{Outbox, Stamped};
use crate::problems::ProblemSummary;
use crate::progress::ProgressCounters;
use crate::runtime::{LiveCounts, Progress, RingRx, Stage, StageReport, now_ns};

/// Messages sent per poll at most, as the feed stage reads records in `max` pacing.
const SEND_BATCH: usize = 64;

/// One message of the decoded stream, with what the feed stage knew when it sent it.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// Event time (the frame's receive time; 0 for the end marker).
    t_event: u64,
    /// Records the source had given when this message was sent (for the progress bar).
    records: u64,
    /// The message.
    msg: MarketMsg,
}

/// A recording decoded into the messages the feed stage sends, with the feed stage's report
/// and problems of that decoding. See the module docs.
#[derive(Debug)]
pub struct Predecoded {
    items: Vec<Item>,
    /// The decoding run's feed report counters (`sent` and `backpressure` are each run's own).
    counters: Vec<(&'static str, u64)>,
    problems: ProblemSummary,
}

impl Predecoded {
    /// Runs `feed` to its end on this thread, keeping every message it sends into `rx` (the
    /// other end of its outbox's ring), and the problems it hands to `problems`.
    pub fn decode(
        mut feed: FeedStage,
        mut rx: RingRx<Stamped<MarketMsg>>,
        problems: &Handoff<ProblemSummary>,
        progress: &ProgressCounters,
    ) -> Predecoded {
        let mut items = Vec::new();
        loop {
            let step = feed.poll();
            while let Some(s) = rx.pop() {
                items.push(Item {
                    t_event: s.t_event,
                    records: progress.records(),
                    msg: s.msg,
                });
            }
            if matches!(step, Progress::Done) {
                break;
            }
        }
        // The stream's last message is its end marker; the runs add their own.
        if matches!(
            items.last(),
            Some(Item {
                msg: MarketMsg::End,
                ..
            })
        ) {
            items.pop();
        }
        let report = feed.finish();
        let counters = report
            .counters
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "sent" | "backpressure"))
            .collect();
        Predecoded {
            items,
            counters,
            problems: ProblemSummary::merge(problems.take()),
        }
    }

    /// Messages held (events and resyncs).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the recording gave no message at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The memory the messages take.
    pub fn bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Item>()
    }

    /// The records the decoding read (what the progress bar counts to).
    pub fn records(&self) -> u64 {
        self.items.last().map_or(0, |i| i.records)
    }
}

/// The feed stage of a run on a [`Predecoded`] recording: sends its messages, stamping each
/// event's `t0` at its release as the feed stage does, then the end marker; its report is the
/// decoding's (plus its own ring counters), and its problems are the decoding's.
pub struct PredecodedFeed {
    tape: Arc<Predecoded>,
    next: usize,
    out: Outbox<MarketMsg>,
    stop: Arc<AtomicBool>,
    progress: Arc<ProgressCounters>,
    problem_summary: Handoff<ProblemSummary>,
    stopped_early: bool,
    ended: bool,
}

impl std::fmt::Debug for PredecodedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredecodedFeed")
            .field("next", &self.next)
            .field("of", &self.tape.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl PredecodedFeed {
    /// The stage for one run on `tape`, sending into `out`.
    pub fn new(
        tape: Arc<Predecoded>,
        out: Outbox<MarketMsg>,
        stop: Arc<AtomicBool>,
        progress: Arc<ProgressCounters>,
        problem_summary: Handoff<ProblemSummary>,
    ) -> Self {
        Self {
            tape,
            next: 0,
            out,
            stop,
            progress,
            problem_summary,
            stopped_early: false,
            ended: false,
        }
    }

    fn end(&mut self) {
        self.out.queue(MarketMsg::End, 0);
        self.ended = true;
    }
}

impl Stage for PredecodedFeed {
    fn name(&self) -> &'static str {
        "feed"
    }

    fn poll(&mut self) -> Progress {
        if !self.out.flush(now_ns()) {
            return Progress::Idle;
        }
        if self.ended {
            return Progress::Done;
        }
        for _ in 0..SEND_BATCH {
            if self.stop.load(Ordering::Relaxed) {
                self.stopped_early = true;
                self.end();
                break;
            }
            let Some(item) = self.tape.items.get(self.next) else {
                self.end();
                break;
            };
            self.next += 1;
            let now = now_ns();
            let msg = match item.msg {
                MarketMsg::Event(mut ev) => {
                    ev.t0 = now;
                    MarketMsg::Event(ev)
                }
                MarketMsg::Resync {
                    conn, instrument, ..
                } => MarketMsg::Resync {
                    conn,
                    instrument,
                    t0: now,
                },
                MarketMsg::End => MarketMsg::End,
            };
            self.out.send(msg, item.t_event, now);
            if !self.out.is_empty() {
                // The ring is full: the book stage has work; the rest waits for the next poll.
                self.progress.set_records(item.records);
                return Progress::Busy;
            }
        }
        if let Some(last) = self
            .next
            .checked_sub(1)
            .and_then(|i| self.tape.items.get(i))
        {
            self.progress.set_records(last.records);
        }
        self.out.flush(now_ns());
        Progress::Busy
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        Some(LiveCounts {
            messages: self.next as u64,
            errors: 0,
            backpressure: self.out.backpressure(),
            input_queued: 0,
        })
    }

    fn finish(&mut self) -> StageReport {
        let mut r = StageReport::new("feed");
        r.counters = self.tape.counters.clone();
        if self.stopped_early {
            for (name, v) in &mut r.counters {
                if *name == "stopped_early" {
                    *v = 1;
                }
            }
        }
        r.counters.push(("sent", self.out.sent()));
        r.counters.push(("backpressure", self.out.backpressure()));
        self.problem_summary.push(self.tape.problems.clone());
        r
    }
}
