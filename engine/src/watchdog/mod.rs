//! Liveness watched from outside the process, so a wedged engine is noticed and restarted
//! even when nothing inside it can say so:
//!
//! - [`SystemdWatchdog`] (`[watchdog] enabled`): under systemd with `WatchdogSec=`, tells the
//!   service manager `READY=1` once the stages run, then `WATCHDOG=1` every half interval, but
//!   only while every stage thread is making progress
//!   ([`BeatCheck`]); a stalled thread withholds the
//!   pings and systemd restarts the service when the interval runs out. `STOPPING=1` at the
//!   end.
//! - [`heartbeat`] (`[heartbeat]`): an HTTPS GET to a configured URL at a configured period, while the
//!   same check passes (healthchecks-style: the far side alarms when the pings stop).
//!
//! Both run on threads of their own and only read the stages' round counters.

pub mod heartbeat;
pub mod notify;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ops::log::{self, Level};
use crate::runtime::liveness::{BeatCheck, Beats};

pub use heartbeat::{Heartbeat, HeartbeatError, HeartbeatSettings, HeartbeatStats};
pub use notify::{Notifier, NotifyError};

const TARGET: &str = "pinion::watchdog";

/// The longest the watchdog thread sleeps at once, so it answers `ready` and `stop` promptly.
const SLICE: Duration = Duration::from_millis(20);

/// What the systemd watchdog did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchdogStats {
    /// Whether `READY=1` was sent.
    pub ready_sent: bool,
    /// `WATCHDOG=1` pings sent.
    pub pings: u64,
    /// Pings withheld because a stage thread had not moved.
    pub withheld: u64,
    /// The first thread found stalled, if any was.
    pub first_stalled: Option<String>,
    /// The first notification that could not be sent, if any.
    pub send_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    ready: AtomicBool,
    done: AtomicBool,
    pings: AtomicU64,
}

/// The systemd notification thread. See the module docs.
#[derive(Debug)]
pub struct SystemdWatchdog {
    shared: Arc<Shared>,
    handle: JoinHandle<WatchdogStats>,
    interval: Option<Duration>,
}

impl SystemdWatchdog {
    /// Starts notifying `notifier` about the threads counted in `beats`. Nothing is sent until
    /// [`SystemdWatchdog::ready`].
    pub fn start(notifier: Notifier, beats: Arc<Beats>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let interval = notifier.interval;
        let inner = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("watchdog".to_owned())
            .spawn(move || notify_loop(&notifier, beats, &inner))?;
        Ok(Self {
            shared,
            handle,
            interval,
        })
    }

    /// The watchdog interval systemd expects pings within, if it set one for this process.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The stages run: `READY=1` goes out, and the pings begin.
    pub fn ready(&self) {
        self.shared.ready.store(true, Ordering::Release);
    }

    /// Pings sent so far.
    pub fn pings(&self) -> u64 {
        self.shared.pings.load(Ordering::Relaxed)
    }

    /// Sends `STOPPING=1`, ends the thread, and says what it did.
    pub fn stop(self) -> WatchdogStats {
        self.shared.done.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_default()
    }
}

fn notify_loop(notifier: &Notifier, beats: Arc<Beats>, shared: &Shared) -> WatchdogStats {
    let mut stats = WatchdogStats::default();
    let note = |stats: &mut WatchdogStats, r: Result<(), NotifyError>| {
        if let Err(e) = r
            && stats.send_error.is_none()
        {
            log::emit(Level::Warn, TARGET, e.to_string(), Vec::new());
            stats.send_error = Some(e.to_string());
        }
    };
    let period = notifier.interval.map(|i| i / 2);
    let mut check: Option<(BeatCheck, Instant)> = None;
    let mut stalled_now = false;
    while !shared.done.load(Ordering::Acquire) {
        if !stats.ready_sent && shared.ready.load(Ordering::Acquire) {
            note(&mut stats, notifier.send("READY=1"));
            stats.ready_sent = true;
            if let Some(p) = period {
                // The first ping at once: the start may have used much of the interval.
                note(&mut stats, notifier.send("WATCHDOG=1"));
                stats.pings += 1;
                check = Some((BeatCheck::new(Arc::clone(&beats)), Instant::now() + p));
            }
        }
        if let (Some((c, due)), Some(p)) = (check.as_mut(), period)
            && Instant::now() >= *due
        {
            *due += p;
            match c.all_moving() {
                Ok(()) => {
                    note(&mut stats, notifier.send("WATCHDOG=1"));
                    stats.pings += 1;
                    stalled_now = false;
                }
                Err(thread) => {
                    stats.withheld += 1;
                    if !stalled_now {
                        log::emit(
                            Level::Error,
                            TARGET,
                            "a stage thread has stopped making progress: watchdog pings withheld",
                            vec![("thread", thread.into())],
                        );
                    }
                    stalled_now = true;
                    if stats.first_stalled.is_none() {
                        stats.first_stalled = Some(thread.to_owned());
                    }
                }
            }
        }
        shared.pings.store(stats.pings, Ordering::Relaxed);
        std::thread::park_timeout(SLICE);
    }
    if stats.ready_sent {
        note(&mut stats, notifier.send("STOPPING=1"));
    }
    stats
}

impl WatchdogStats {
    /// The report's note.
    pub fn note(&self, interval: Option<Duration>) -> String {
        let mut s = match interval {
            Some(i) => format!(
                "systemd watchdog ({} ms): {} pings, {} withheld",
                i.as_millis(),
                self.pings,
                self.withheld
            ),
            None => "systemd notify: no WatchdogSec for this process, READY and STOPPING only"
                .to_owned(),
        };
        if let Some(t) = &self.first_stalled {
            s.push_str(&format!(" (thread {t} stalled)"));
        }
        if let Some(e) = &self.send_error {
            s.push_str(&format!("; {e}"));
        }
        s
    }
}
