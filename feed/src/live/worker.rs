//! The REST worker: fetches depth snapshots (and anything else the live source asks for) on its
//! own thread, so a slow or failing HTTP request never stalls the feed thread's poll loop.
//!
//! Jobs arrive over a bounded channel; each is charged against the venue's request-weight
//! window before it is sent ([`WeightWindow`]), so snapshots after a mass reconnect are spread
//! out under the configured share of the limit instead of arriving as a storm. The server's own
//! count (`x-mbx-used-weight-1m`) corrects the window, and a 429 or 418 pauses every request for
//! as long as the server says. Bodies travel back to the feed thread in buffers that come back
//! here for reuse, so the feed thread neither allocates nor frees them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};

use pinion_net::ratelimit::{Wait, WeightWindow};

/// A REST answer, as the worker needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The venue's count of weight used in the current minute (`x-mbx-used-weight-1m`).
    pub used_weight_1m: Option<u32>,
    /// How long the venue asks to wait (`Retry-After`), on a 429 or 418.
    pub retry_after: Option<Duration>,
}

/// Sends GET requests for the worker: the REST client, or a stand-in in tests.
pub trait Fetch: Send + 'static {
    /// GETs `path` (path and query) from the venue's REST base; the error says what failed.
    fn get(&mut self, path: &str) -> Result<Answer, String>;
}

/// How long the worker waits for a job before looking at the stop signal again.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Pause after a failed request with no `Retry-After`.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// One request for the worker.
#[derive(Debug)]
pub(crate) struct Job {
    /// The symbol slot it is for.
    pub symbol: usize,
    /// Path and query.
    pub path: String,
    /// Its request weight.
    pub weight: u32,
}

/// What became of a job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 200 answer.
    Done {
        /// The symbol slot.
        symbol: usize,
        /// The full URL asked for (base and path), the record's meta.
        url: String,
        /// The body, in a buffer to send back with [`Worker::recycle`].
        body: Vec<u8>,
        /// Wall-clock ns when the answer was complete.
        t_recv: u64,
    },
    /// Anything else; the source asks again after `retry_after`.
    Failed {
        /// The symbol slot.
        symbol: usize,
        /// When to ask again at the earliest.
        retry_after: Duration,
        /// What went wrong (status or transport error), for the counters and the log.
        why: String,
    },
}

/// Counters the worker keeps (read by the source on its timer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestCounters {
    /// Requests sent.
    pub requests: u64,
    /// 200 answers.
    pub ok: u64,
    /// Other answers and transport errors.
    pub failed: u64,
    /// 429 and 418 answers.
    pub rate_limited: u64,
    /// Weight charged.
    pub weight: u64,
    /// Time spent waiting for the weight window, ms.
    pub waited_ms: u64,
}

/// The feed thread's end of the worker.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: Sender<Job>,
    outcomes: Receiver<(Outcome, RestCounters)>,
    recycle: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
    counters: RestCounters,
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the worker thread with `client` and `window`.
    pub fn spawn(
        base_url: String,
        client: Box<dyn Fetch>,
        window: WeightWindow,
    ) -> std::io::Result<Self> {
        let (jobs, job_rx) = channel::bounded::<Job>(4096);
        let (out_tx, outcomes) = channel::bounded(4096);
        let (recycle, recycle_rx) = channel::bounded::<Vec<u8>>(64);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pinion-rest".into())
            .spawn(move || {
                run(
                    base_url,
                    client,
                    window,
                    &Channels {
                        jobs: job_rx,
                        out: out_tx,
                        recycled: recycle_rx,
                    },
                    &thread_stop,
                );
            })?;
        Ok(Self {
            jobs,
            outcomes,
            recycle,
            thread: Some(thread),
            counters: RestCounters::default(),
            stop,
        })
    }

    /// Queues a job; false when the worker is gone or its queue is full.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// The next finished job, if any.
    pub fn poll(&mut self) -> Option<Outcome> {
        let (outcome, counters) = self.outcomes.try_recv().ok()?;
        self.counters = counters;
        Some(outcome)
    }

    /// Gives a body's buffer back for reuse.
    pub fn recycle(&self, mut body: Vec<u8>) {
        body.clear();
        let _ = self.recycle.try_send(body);
    }

    /// The worker's counters as of its last outcome.
    pub fn counters(&self) -> RestCounters {
        self.counters
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The flag ends a wait for the weight window; closing the job channel ends the loop.
        self.stop.store(true, Ordering::Relaxed);
        let (dead, _) = channel::bounded(0);
        self.jobs = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The worker thread's ends of its channels.
struct Channels {
    jobs: Receiver<Job>,
    out: Sender<(Outcome, RestCounters)>,
    recycled: Receiver<Vec<u8>>,
}

fn run(
    base_url: String,
    mut client: Box<dyn Fetch>,
    mut window: WeightWindow,
    ch: &Channels,
    stop: &AtomicBool,
) {
    let Channels {
        jobs,
        out,
        recycled,
    } = ch;
    let mut counters = RestCounters::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let job = match jobs.recv_timeout(IDLE_WAIT) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Wait for room in the weight window (and out any pause a 429 or 418 imposed).
        let waited = Instant::now();
        let mut too_heavy = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = wall_ns();
            match window.try_take(job.weight, now) {
                Ok(()) => break,
                Err(Wait::TooHeavy { .. }) => {
                    too_heavy = true;
                    break;
                }
                Err(wait) => {
                    let until = wait.until_ns().unwrap_or(now);
                    let nap = Duration::from_nanos(until.saturating_sub(now));
                    std::thread::sleep(
                        nap.clamp(Duration::from_millis(1), Duration::from_millis(250)),
                    );
                }
            }
        }
        if too_heavy {
            counters.failed += 1;
            let outcome = Outcome::Failed {
                symbol: job.symbol,
                retry_after: Duration::from_secs(60),
                why: format!(
                    "a request of weight {} is more than the whole budget",
                    job.weight
                ),
            };
            if out.send((outcome, counters)).is_err() {
                return;
            }
            continue;
        }
        counters.waited_ms += u64::try_from(waited.elapsed().as_millis()).unwrap_or(u64::MAX);
        counters.requests += 1;
        counters.weight += u64::from(job.weight);
        let outcome = match client.get(&job.path) {
            Ok(resp) => {
                window.observe_response(
                    resp.status,
                    resp.used_weight_1m,
                    resp.retry_after,
                    wall_ns(),
                );
                if resp.status == 200 {
                    counters.ok += 1;
                    let mut body = recycled.try_recv().unwrap_or_default();
                    body.clear();
                    body.extend_from_slice(&resp.body);
                    Outcome::Done {
                        symbol: job.symbol,
                        url: format!("{base_url}{}", job.path),
                        body,
                        t_recv: wall_ns(),
                    }
                } else {
                    counters.failed += 1;
                    let mut retry_after = RETRY_AFTER_FAILURE;
                    if resp.status == 429 || resp.status == 418 {
                        counters.rate_limited += 1;
                        retry_after = resp.retry_after.unwrap_or(Duration::from_secs(60));
                    }
                    Outcome::Failed {
                        symbol: job.symbol,
                        retry_after,
                        why: format!("HTTP {}", resp.status),
                    }
                }
            }
            Err(e) => {
                counters.failed += 1;
                Outcome::Failed {
                    symbol: job.symbol,
                    retry_after: RETRY_AFTER_FAILURE,
                    why: e,
                }
            }
        };
        if out.send((outcome, counters)).is_err() {
            return;
        }
    }
}
