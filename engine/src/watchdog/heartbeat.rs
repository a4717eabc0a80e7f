//! The outbound heartbeat (`[heartbeat]`): an HTTPS GET to a configured URL every period while
//! every stage thread makes progress, healthchecks-style: the service at the far end alarms
//! when the pings stop, whether the engine wedged, the process died or the host went away.
//!
//! The first ping goes out once the stages run; each later one only if every thread moved
//! since the one before ([`BeatCheck`]). A ping that fails (no answer, not 2xx) is counted and
//! the next period tries again. The GET blocks this thread only, for at most the period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinion_net::rest::{RestClient, RestSettings};
use pinion_net::wss::TlsClientConfig;

use crate::ops::log::{self, Level};
use crate::runtime::liveness::{BeatCheck, Beats};

const TARGET: &str = "pinion::heartbeat";

/// The longest the thread sleeps at once, so it answers `ready` and `stop` promptly.
const SLICE: Duration = Duration::from_millis(20);

/// Where and how often: the checked `[heartbeat]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatSettings {
    /// `https://host[:port]`.
    pub base: String,
    /// The path and query GET asks for (`/` at least).
    pub path: String,
    /// Between pings.
    pub period: Duration,
    /// Certificates trusted besides the public roots (a private monitoring server).
    pub ca_file: Option<std::path::PathBuf>,
}

impl HeartbeatSettings {
    /// `url` split into base and path, or what is wrong with it.
    pub fn split_url(url: &str) -> Result<(String, String), &'static str> {
        let rest = url
            .strip_prefix("https://")
            .ok_or("must be an https:// URL")?;
        let (host, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err("has no host");
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok((format!("https://{host}"), path))
    }
}

/// What the heartbeat did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Pings answered 2xx.
    pub answered: u64,
    /// Pings that failed (no answer, or not 2xx).
    pub failed: u64,
    /// Periods with no ping because a stage thread had not moved.
    pub withheld: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
}

impl HeartbeatStats {
    /// The report's note.
    pub fn note(&self, settings: &HeartbeatSettings) -> String {
        let mut s = format!(
            "heartbeat to {} every {:.3} s: {} answered, {} failed, {} withheld",
            settings.base,
            settings.period.as_secs_f64(),
            self.answered,
            self.failed,
            self.withheld
        );
        if let Some(f) = &self.first_failure {
            s.push_str(&format!(" (first failure: {f})"));
        }
        s
    }
}

#[derive(Debug, Default)]
struct Shared {
    ready: AtomicBool,
    done: AtomicBool,
    answered: AtomicU64,
}

/// The heartbeat thread. See the module docs.
#[derive(Debug)]
pub struct Heartbeat {
    shared: Arc<Shared>,
    handle: JoinHandle<HeartbeatStats>,
}

impl Heartbeat {
    /// Starts the thread for `settings` over `tls`, watching the threads counted in `beats`.
    /// Nothing is sent until [`Heartbeat::ready`].
    pub fn start(
        settings: &HeartbeatSettings,
        tls: TlsClientConfig,
        beats: Arc<Beats>,
    ) -> Result<Self, HeartbeatError> {
        let mut rest = RestSettings::new(tls);
        let bound = settings
            .period
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        rest.request_timeout = bound;
        rest.connect_timeout = rest.connect_timeout.min(bound);
        rest.read_timeout = rest.read_timeout.min(bound);
        rest.write_timeout = rest.write_timeout.min(bound);
        let client = RestClient::new(&settings.base, rest).map_err(|e| HeartbeatError::Url {
            url: settings.base.clone(),
            why: e.to_string(),
        })?;
        let shared = Arc::new(Shared::default());
        let inner = Arc::clone(&shared);
        let path = settings.path.clone();
        let period = settings.period;
        let handle = std::thread::Builder::new()
            .name("heartbeat".to_owned())
            .spawn(move || ping_loop(client, &path, period, beats, &inner))
            .map_err(HeartbeatError::Thread)?;
        Ok(Self { shared, handle })
    }

    /// The stages run: the first ping goes out.
    pub fn ready(&self) {
        self.shared.ready.store(true, Ordering::Release);
    }

    /// Pings answered so far.
    pub fn answered(&self) -> u64 {
        self.shared.answered.load(Ordering::Relaxed)
    }

    /// Ends the thread (after a ping in flight) and says what it did.
    pub fn stop(self) -> HeartbeatStats {
        self.shared.done.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_default()
    }
}

/// Why the heartbeat could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatError {
    /// The URL is not one the HTTPS client can reach.
    #[error("heartbeat.url {url}: {why}")]
    Url {
        /// The base URL.
        url: String,
        /// What the client said.
        why: String,
    },
    /// The thread could not start.
    #[error("starting the heartbeat thread: {0}")]
    Thread(std::io::Error),
}

fn ping_loop(
    mut client: RestClient,
    path: &str,
    period: Duration,
    beats: Arc<Beats>,
    shared: &Shared,
) -> HeartbeatStats {
    let mut stats = HeartbeatStats::default();
    let mut next: Option<Instant> = None;
    let mut check = BeatCheck::new(beats);
    let mut stalled_now = false;
    while !shared.done.load(Ordering::Acquire) {
        let now = Instant::now();
        match next {
            None if shared.ready.load(Ordering::Acquire) => {
                // The first ping sets the baseline the later ones are judged from.
                let _ = check.all_moving();
                ping(&mut client, path, &mut stats);
                next = Some(now + period);
            }
            Some(due) if now >= due => {
                next = Some(due + period);
                match check.all_moving() {
                    Ok(()) => {
                        ping(&mut client, path, &mut stats);
                        stalled_now = false;
                    }
                    Err(thread) => {
                        stats.withheld += 1;
                        if !stalled_now {
                            log::emit(
                                Level::Error,
                                TARGET,
                                "a stage thread has stopped making progress: heartbeat withheld",
                                vec![("thread", thread.into())],
                            );
                        }
                        stalled_now = true;
                    }
                }
            }
            _ => {}
        }
        shared.answered.store(stats.answered, Ordering::Relaxed);
        std::thread::park_timeout(SLICE);
    }
    stats
}

fn ping(client: &mut RestClient, path: &str, stats: &mut HeartbeatStats) {
    let failure = match client.get(path) {
        Ok(r) if (200..300).contains(&r.status) => None,
        Ok(r) => Some(format!("HTTP {}", r.status)),
        Err(e) => Some(e.to_string()),
    };
    match failure {
        None => stats.answered += 1,
        Some(why) => {
            stats.failed += 1;
            if stats.first_failure.is_none() {
                log::emit(
                    Level::Warn,
                    TARGET,
                    "heartbeat failed",
                    vec![("why", why.clone().into())],
                );
                stats.first_failure = Some(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_base_and_path() {
        let s = |u| HeartbeatSettings::split_url(u);
        assert_eq!(
            s("https://hc-ping.com/1234-abcd"),
            Ok(("https://hc-ping.com".to_owned(), "/1234-abcd".to_owned()))
        );
        assert_eq!(
            s("https://127.0.0.1:8443"),
            Ok(("https://127.0.0.1:8443".to_owned(), "/".to_owned()))
        );
        assert_eq!(
            s("https://h.example?x=1"),
            Ok(("https://h.example".to_owned(), "/?x=1".to_owned()))
        );
        assert_eq!(s("http://h.example/"), Err("must be an https:// URL"));
        assert_eq!(s("https:///path"), Err("has no host"));
    }
}
