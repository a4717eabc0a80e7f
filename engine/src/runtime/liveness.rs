//! Whether every stage thread is making progress, for watchers outside the hot path (the
//! systemd watchdog, the outbound heartbeat).
//!
//! Each thread of a run owns one [`Beats`] slot and stores its round count there after every
//! round of polls: a relaxed store of a number it already has, on its own cache line, whatever
//! the round did. A round completes whether its stages were busy or idle, so a thread waiting
//! on empty input (idle by design) keeps beating; a stage stuck inside one `poll` (a wedged
//! message, a blocked call) stops its thread's count. A thread whose stages are all done
//! marks its slot ended, and an ended thread is never called stalled.
//!
//! A watcher keeps a [`BeatCheck`] and asks it, at its own period, whether every slot moved
//! since it last asked. The period must be longer than one round can take; rounds are bounded
//! work (a stage never blocks in `poll`), microseconds even under a `park` wait strategy.
//!
//! **Test hook.** `PINION_TEST_STALL=<stage>:<after_ms>` makes the thread running `<stage>`
//! stop inside that stage `after_ms` after the run starts, as if a message wedged it, until
//! the run is aborted (the stop grace runs out). Read once at start-up; inert unless set. It
//! exists so the watchdog's silence on a stall can be tested end to end, and only in builds
//! with debug assertions (the test builds): a release binary ignores the variable, so no
//! environment can wedge a production trading thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// What a slot holds once its thread has ended.
const ENDED: u64 = u64::MAX;

/// One beat counter per thread of a run. See the module docs.
#[derive(Debug)]
pub struct Beats {
    names: Vec<String>,
    slots: Vec<CachePadded<AtomicU64>>,
}

impl Beats {
    /// Counters for threads named `names`, in plan order.
    pub fn new(names: Vec<String>) -> Arc<Self> {
        let slots = names.iter().map(|_| CachePadded::default()).collect();
        Arc::new(Self { names, slots })
    }

    /// Threads watched.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no thread is watched.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Thread `index` completed round `round` (single writer: that thread).
    #[inline]
    pub fn beat(&self, index: usize, round: u64) {
        if let Some(s) = self.slots.get(index) {
            s.store(round.min(ENDED - 1), Ordering::Relaxed);
        }
    }

    /// Thread `index` has ended: none of its stages will poll again.
    pub fn end(&self, index: usize) {
        if let Some(s) = self.slots.get(index) {
            s.store(ENDED, Ordering::Relaxed);
        }
    }

    fn read(&self, index: usize) -> u64 {
        self.slots[index].load(Ordering::Relaxed)
    }
}

/// A watcher's view of [`Beats`]: what each slot held when it last asked.
#[derive(Debug)]
pub struct BeatCheck {
    beats: Arc<Beats>,
    last: Vec<u64>,
}

impl BeatCheck {
    /// A check that has seen the slots as they are now.
    pub fn new(beats: Arc<Beats>) -> Self {
        let last = (0..beats.len()).map(|i| beats.read(i)).collect();
        Self { beats, last }
    }

    /// `Ok` when every thread beat (or ended) since the last call; else the name of the first
    /// thread that did not.
    pub fn all_moving(&mut self) -> Result<(), &str> {
        let mut stalled = None;
        for (i, last) in self.last.iter_mut().enumerate() {
            let now = self.beats.read(i);
            if now == *last && now != ENDED && stalled.is_none() {
                stalled = Some(i);
            }
            *last = now;
        }
        match stalled {
            None => Ok(()),
            Some(i) => Err(self.beats.names[i].as_str()),
        }
    }
}

/// The stall of the test hook (see the module docs): which stage, and from when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StallHook {
    /// The stage's name.
    pub stage: String,
    /// Since the run started.
    pub after: Duration,
}

impl StallHook {
    /// The environment variable.
    pub const VAR: &'static str = "PINION_TEST_STALL";

    /// The hook from the environment; `None` when unset or not `<stage>:<after_ms>`.
    pub fn from_env() -> Option<Self> {
        if !cfg!(debug_assertions) {
            return None;
        }
        Self::parse(&std::env::var(Self::VAR).ok()?)
    }

    fn parse(text: &str) -> Option<Self> {
        let (stage, ms) = text.split_once(':')?;
        Some(Self {
            stage: stage.to_owned(),
            after: Duration::from_millis(ms.parse().ok()?),
        })
    }

    /// The hook for a thread running `stages`: the index of the stalled one and when.
    pub(super) fn for_thread(&self, stages: &[&str], started: Instant) -> Option<(usize, Instant)> {
        let i = stages.iter().position(|s| *s == self.stage)?;
        Some((i, started + self.after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_stops_beating_is_named_and_an_ended_one_never_is() {
        let beats = Beats::new(vec!["market".to_owned(), "trading".to_owned()]);
        let mut check = BeatCheck::new(Arc::clone(&beats));
        assert_eq!(check.all_moving(), Err("market"), "nothing beat yet");
        beats.beat(0, 1);
        beats.beat(1, 1);
        assert_eq!(check.all_moving(), Ok(()));
        beats.beat(0, 2);
        assert_eq!(check.all_moving(), Err("trading"));
        beats.beat(0, 3);
        beats.end(1);
        assert_eq!(check.all_moving(), Ok(()));
        beats.beat(0, 4);
        assert_eq!(check.all_moving(), Ok(()), "ended stays fine");
        assert_eq!(check.all_moving(), Err("market"));
    }

    #[test]
    fn the_stall_hook_reads_stage_and_delay() {
        let h = StallHook::parse("book:1500").expect("hook");
        assert_eq!(h.stage, "book");
        assert_eq!(h.after, Duration::from_millis(1500));
        assert!(StallHook::parse("book").is_none());
        assert!(StallHook::parse("book:soon").is_none());
        let t = Instant::now();
        assert_eq!(
            h.for_thread(&["feed", "book"], t),
            Some((1, t + Duration::from_millis(1500)))
        );
        assert_eq!(h.for_thread(&["strategy"], t), None);
    }
}
