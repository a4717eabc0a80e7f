//! Structured logs: records put on a bounded lock-free ring by whichever thread has something to
//! say, written out as JSON lines (or text) by a logger thread of their own.
//!
//! Invariants:
//! - Emitting never blocks and never does I/O: a record is formatted by the caller (off the hot
//!   path: the stages never log; they count, and the engine logs what they counted) and pushed
//!   onto a [`LogRing`]. A full ring drops the record and counts it ([`LogRing::dropped`]); the
//!   end-of-run record and the command's last line say how many were lost.
//! - The ring is crossbeam's `ArrayQueue`, not an `rtrb` ring like the stages': records come
//!   from several threads at once (the command's, the duration timer's, a live session's set-up),
//!   and an SPSC ring would need a lock or a ring per thread to take them.
//! - Which records are kept is decided before anything is formatted ([`enabled`]), by a
//!   [`Filter`]: a default level and per-target levels (the longest matching target prefix
//!   wins), from the config's `[log]` table and then `PINION_LOG`, which overrides it.
//! - Nothing secret is ever put in a record: credentials are named by the environment variable
//!   they come from, never by value (the `logs` integration test runs a trading session at
//!   `trace` and searches the file for the key and the secret).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use serde_json::Value;

use super::civil;

/// The environment variable that overrides the config's levels: `PINION_LOG=debug`,
/// `PINION_LOG=pinion::live=debug`, `PINION_LOG=warn,pinion::trade=trace`.
pub const ENV_VAR: &str = "PINION_LOG";

/// Records the ring holds when the config does not say.
pub const DEFAULT_CAPACITY: usize = 4096;

/// How important a record is; a filter keeps a record at its level or more important.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something is wrong but the run goes on (a refused order, a kill switch).
    Warn = 2,
    /// The run's lifecycle: start, config, connections, end.
    Info = 3,
    /// More detail about the lifecycle.
    Debug = 4,
    /// Everything the engine says.
    Trace = 5,
}

impl Level {
    /// The name used in records and filters (`info`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// A level a filter lets through, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LevelFilter(u8);

impl LevelFilter {
    /// Keeps nothing.
    pub const OFF: Self = Self(0);

    /// Keeps `level` and what is more important.
    pub const fn at(level: Level) -> Self {
        Self(level as u8)
    }

    fn allows(self, level: Level) -> bool {
        level as u8 <= self.0
    }
}

impl std::str::FromStr for LevelFilter {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, LogError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "off" => Self::OFF,
            "error" => Self::at(Level::Error),
            "warn" => Self::at(Level::Warn),
            "info" => Self::at(Level::Info),
            "debug" => Self::at(Level::Debug),
            "trace" => Self::at(Level::Trace),
            _ => return Err(LogError::Level(s.to_owned())),
        })
    }
}

/// What went wrong setting up the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A level that is not one of off, error, warn, info, debug, trace.
    #[error("\"{0}\" is not a log level (off, error, warn, info, debug, trace)")]
    Level(String),
    /// A filter directive that is neither `LEVEL` nor `TARGET=LEVEL`.
    #[error("\"{0}\" is not a log directive (LEVEL or TARGET=LEVEL)")]
    Directive(String),
    /// The log file could not be opened.
    #[error("opening the log file {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The logger thread could not be started.
    #[error("starting the logger thread: {0}")]
    Thread(std::io::Error),
    /// A logger was already set up in this process.
    #[error("the log is already set up")]
    AlreadySet,
}

/// Which records are kept: a default level and per-target levels. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// `(target prefix, level)`, longest prefix first.
    targets: Vec<(String, LevelFilter)>,
}

impl Default for Filter {
    fn default() -> Self {
        Self::new(LevelFilter::at(Level::Error))
    }
}

impl Filter {
    /// Keeps `default` and above for every target.
    pub fn new(default: LevelFilter) -> Self {
        Self {
            default,
            targets: Vec::new(),
        }
    }

    /// Sets the level of `target` and the targets under it (`pinion::live` covers
    /// `pinion::live::orders`).
    pub fn set_target(&mut self, target: &str, level: LevelFilter) {
        self.targets.retain(|(t, _)| t != target);
        self.targets.push((target.to_owned(), level));
        self.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
    }

    /// Applies a `PINION_LOG`-style spec on top: comma-separated `LEVEL` (the default) or
    /// `TARGET=LEVEL` directives; later ones win.
    pub fn apply(&mut self, spec: &str) -> Result<(), LogError> {
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                Some((target, level)) => {
                    let target = target.trim();
                    if target.is_empty() {
                        return Err(LogError::Directive(d.to_owned()));
                    }
                    self.set_target(target, level.parse()?);
                }
                None => self.default = d.parse()?,
            }
        }
        Ok(())
    }

    /// Whether a record of `level` from `target` is kept.
    pub fn allows(&self, level: Level, target: &str) -> bool {
        self.targets
            .iter()
            .find(|(t, _)| {
                target.starts_with(t.as_str())
                    && (target.len() == t.len() || target[t.len()..].starts_with("::"))
            })
            .map_or(self.default, |&(_, l)| l)
            .allows(level)
    }

    /// The most detailed level any target keeps.
    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|&(_, l)| l)
            .fold(self.default, LevelFilter::max)
    }
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object a line: `ts`, `level`, `target`, `msg`, then the fields.
    #[default]
    Json,
    /// `ts LEVEL target: msg key=value …`, for a person at a terminal.
    Text,
}

/// One log record, formatted by the thread that emits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Wall-clock time, ns since the Unix epoch.
    pub unix_ns: u64,
    /// Its level.
    pub level: Level,
    /// What part of the engine speaks (`pinion::live`).
    pub target: &'static str,
    /// What happened.
    pub message: String,
    /// Structured details.
    pub fields: Vec<(&'static str, Value)>,
}

impl Record {
    /// A record of now.
    pub fn now(
        level: Level,
        target: &'static str,
        message: impl Into<String>,
        fields: Vec<(&'static str, Value)>,
    ) -> Self {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            unix_ns,
            level,
            target,
            message: message.into(),
            fields,
        }
    }

    /// The record as one line (with its newline) in `format`.
    pub fn line(&self, format: Format) -> String {
        let ts = civil::rfc3339_micros(self.unix_ns);
        match format {
            Format::Json => {
                // The fixed keys first, in this order, then the fields as given.
                let mut s = String::with_capacity(96 + self.message.len());
                let _ = write!(
                    s,
                    "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":{},\"msg\":{}",
                    self.level.name(),
                    Value::from(self.target),
                    Value::from(self.message.as_str())
                );
                for (k, v) in &self.fields {
                    let _ = write!(s, ",{}:{v}", Value::from(*k));
                }
                s.push_str("}\n");
                s
            }
            Format::Text => {
                let mut s = format!(
                    "{ts} {:<5} {}: {}",
                    self.level.name().to_ascii_uppercase(),
                    self.target,
                    self.message
                );
                for (k, v) in &self.fields {
                    let _ = match v {
                        Value::String(text) => write!(s, " {k}={text:?}"),
                        other => write!(s, " {k}={other}"),
                    };
                }
                s.push('\n');
                s
            }
        }
    }
}

/// The bounded ring records wait in for the logger thread. Pushing never blocks: a full ring
/// drops the record and counts it.
#[derive(Debug)]
pub struct LogRing {
    queue: ArrayQueue<Record>,
    dropped: AtomicU64,
}

impl LogRing {
    /// A ring of `capacity` records (at least 1), allocated here.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `record`; `false` (and counted) if the ring was full.
    pub fn push(&self, record: Record) -> bool {
        match self.queue.push(record) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The oldest record, if any.
    pub fn pop(&self) -> Option<Record> {
        self.queue.pop()
    }

    /// Records dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Where and how the log is written, checked (the config's `[log]` with `PINION_LOG` applied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// Which records are kept.
    pub filter: Filter,
    /// The file records are appended to; `None`: standard error.
    pub file: Option<PathBuf>,
    /// How they are written.
    pub format: Format,
    /// Records the ring holds.
    pub capacity: usize,
}

/// What the process-wide logger shares between emitters and its thread.
#[derive(Debug)]
struct Shared {
    ring: LogRing,
    filter: Filter,
    max: LevelFilter,
    written: AtomicU64,
    write_errors: AtomicU64,
    stop: AtomicBool,
    /// Whether records go to standard error (no file).
    stderr: bool,
}

static LOGGER: OnceLock<(Arc<Shared>, std::thread::Thread)> = OnceLock::new();

/// Whether a record of `level` from `target` would be kept: check before formatting one.
pub fn enabled(level: Level, target: &str) -> bool {
    LOGGER
        .get()
        .is_some_and(|(s, _)| s.max.allows(level) && s.filter.allows(level, target))
}

/// Emits a record (if the log is set up and keeps it). Never blocks.
pub fn emit(
    level: Level,
    target: &'static str,
    message: impl Into<String>,
    fields: Vec<(&'static str, Value)>,
) {
    if let Some((shared, thread)) = LOGGER.get()
        && shared.filter.allows(level, target)
    {
        shared
            .ring
            .push(Record::now(level, target, message, fields));
        thread.unpark();
    }
}

/// Whether the log is set up and writes to a file (not standard error): a message the command
/// prints on stderr anyway then need not be a record there too.
pub fn to_file() -> bool {
    LOGGER.get().is_some_and(|(s, _)| !s.stderr)
}

/// Records dropped so far because the ring was full (0 without a log).
pub fn dropped() -> u64 {
    LOGGER.get().map_or(0, |(s, _)| s.ring.dropped())
}

/// The running logger thread; [`Logger::finish`] writes what is queued and stops it.
#[derive(Debug)]
pub struct Logger {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the logger did, at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// Records written.
    pub written: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    /// Records that could not be written (the file or stderr failed).
    pub write_errors: u64,
}

/// Sets up the process-wide log as `settings` say and starts its thread. Once per process.
pub fn init(settings: &LogSettings) -> Result<Logger, LogError> {
    let mut out: Box<dyn std::io::Write + Send> = match &settings.file {
        Some(path) => Box::new(open(path)?),
        None => Box::new(std::io::stderr()),
    };
    let max = settings.filter.max();
    let shared = Arc::new(Shared {
        ring: LogRing::new(settings.capacity),
        filter: settings.filter.clone(),
        max,
        written: AtomicU64::new(0),
        write_errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        stderr: settings.file.is_none(),
    });
    let format = settings.format;
    let worker = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("pinion-log".into())
        .spawn(move || write_loop(&worker, &mut *out, format))
        .map_err(LogError::Thread)?;
    if LOGGER
        .set((Arc::clone(&shared), thread.thread().clone()))
        .is_err()
    {
        shared.stop.store(true, Ordering::Release);
        thread.thread().unpark();
        let _ = thread.join();
        return Err(LogError::AlreadySet);
    }
    Ok(Logger {
        shared,
        thread: Some(thread),
    })
}

fn open(path: &Path) -> Result<std::fs::File, LogError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| LogError::Open {
        path: path.to_path_buf(),
        source,
    })
}

fn write_loop(shared: &Shared, out: &mut dyn std::io::Write, format: Format) {
    let mut out = std::io::BufWriter::new(out);
    loop {
        let mut wrote = false;
        while let Some(r) = shared.ring.pop() {
            wrote = true;
            if out.write_all(r.line(format).as_bytes()).is_ok() {
                shared.written.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if wrote && out.flush().is_err() {
            shared.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        if shared.stop.load(Ordering::Acquire) && shared.ring.is_empty() {
            break;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let _ = out.flush();
}

impl Logger {
    /// Records dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.shared.ring.dropped()
    }

    /// Writes every queued record, stops the thread and says what it did. Records emitted
    /// afterwards are queued but never written.
    pub fn finish(mut self) -> LogSummary {
        self.stop();
        LogSummary {
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.ring.dropped(),
            write_errors: self.shared.write_errors.load(Ordering::Relaxed),
        }
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.stop.store(true, Ordering::Release);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            unix_ns: i,
            level: Level::Info,
            target: "pinion::test",
            message: format!("record {i}"),
            fields: vec![("i", Value::from(i))],
        }
    }

    #[test]
    fn a_full_ring_drops_and_counts_without_blocking() {
        let ring = LogRing::new(64);
        let mut kept = 0;
        for i in 0..1_000 {
            kept += u64::from(ring.push(record(i)));
        }
        assert_eq!((kept, ring.dropped(), ring.len()), (64, 936, 64));
        // The kept ones are the first, in order; room again takes records again.
        assert_eq!(ring.pop().map(|r| r.unix_ns), Some(0));
        assert!(ring.push(record(5_000)));
        assert_eq!(ring.dropped(), 936);
    }

    #[test]
    fn a_flood_from_many_threads_loses_only_what_it_counts() {
        // Four threads flood a small ring while one drains it: every record is either written
        // (popped) or counted as dropped, none is lost silently and no producer waits.
        let ring = Arc::new(LogRing::new(32));
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (ring, done) = (Arc::clone(&ring), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut popped = 0u64;
                loop {
                    match ring.pop() {
                        Some(_) => popped += 1,
                        None if done.load(Ordering::Acquire) => break,
                        None => std::thread::yield_now(),
                    }
                }
                popped + std::iter::from_fn(|| ring.pop()).count() as u64
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        ring.push(record(w * 100_000 + i));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::Release);
        let popped = reader.join().expect("reader");
        assert_eq!(popped + ring.dropped(), 80_000);
        assert!(ring.dropped() > 0, "a 32-record ring under 80 000 records");
    }

    #[test]
    fn filters_take_the_longest_target_and_the_env_spec_wins() {
        let mut f = Filter::new(LevelFilter::at(Level::Info));
        f.set_target("pinion::live", LevelFilter::at(Level::Warn));
        assert!(f.allows(Level::Info, "pinion::run"));
        assert!(!f.allows(Level::Debug, "pinion::run"));
        assert!(!f.allows(Level::Info, "pinion::live"));
        assert!(!f.allows(Level::Info, "pinion::live::orders"));
        // A prefix of the name but not a parent module.
        assert!(f.allows(Level::Info, "pinion::liveness"));
        f.apply("pinion::live::orders=trace, error").expect("spec");
        assert!(f.allows(Level::Trace, "pinion::live::orders"));
        assert!(!f.allows(Level::Info, "pinion::live"));
        assert!(!f.allows(Level::Warn, "pinion::run"));
        assert_eq!(f.max(), LevelFilter::at(Level::Trace));
        assert!(matches!(f.apply("loud"), Err(LogError::Level(s)) if s == "loud"));
        assert!(matches!(f.apply("=info"), Err(LogError::Directive(_))));
    }

    #[test]
    fn records_are_json_lines_or_text() {
        let r = Record {
            unix_ns: 1_764_966_000_123_456_789,
            level: Level::Warn,
            target: "pinion::trade",
            message: "order \"refused\"\nby risk".into(),
            fields: vec![("symbol", "BTCUSDT".into()), ("count", 3.into())],
        };
        let line = r.line(Format::Json);
        assert!(line.starts_with("{\"ts\":\"2025-12-05T20:20:00.123456Z\",\"level\":\"warn\","));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["ts"], "2025-12-05T20:20:00.123456Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["target"], "pinion::trade");
        assert_eq!(v["msg"], "order \"refused\"\nby risk");
        assert_eq!(v["symbol"], "BTCUSDT");
        assert_eq!(v["count"], 3);
        assert_eq!(
            r.line(Format::Text),
            "2025-12-05T20:20:00.123456Z WARN  pinion::trade: order \"refused\"\nby risk \
             symbol=\"BTCUSDT\" count=3\n"
        );
    }
}
