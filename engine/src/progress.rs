//! Run progress for people: counters the stages publish with plain atomic stores, and a monitor
//! thread that draws a progress bar on stderr from them.
//!
//! The hot path only ever does a relaxed store of a number it already has (each counter has one
//! writer, so no read-modify-write is needed), on its own cache line. Everything that formats or
//! writes happens on the monitor thread, which wakes a few times a second.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// Counters the stages publish for the monitor.
#[derive(Debug, Default)]
pub struct ProgressCounters {
    records: CachePadded<AtomicU64>,
    orders: CachePadded<AtomicU64>,
}

impl ProgressCounters {
    /// Fresh counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The feed stage's records read so far (single writer).
    #[inline]
    pub fn set_records(&self, n: u64) {
        self.records.store(n, Ordering::Relaxed);
    }

    /// The gateway's orders sent so far (single writer).
    #[inline]
    pub fn set_orders(&self, n: u64) {
        self.orders.store(n, Ordering::Relaxed);
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Orders sent so far.
    pub fn orders(&self) -> u64 {
        self.orders.load(Ordering::Relaxed)
    }
}

/// The monitor thread; stops and clears its line when dropped or [`ProgressBar::finish`]ed.
#[derive(Debug)]
pub struct ProgressBar {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Runs shorter than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_millis(1000);
const TICK: Duration = Duration::from_millis(250);
const WIDTH: usize = 30;

impl ProgressBar {
    /// Starts the monitor. `total` is the expected number of records, when known.
    pub fn start(counters: Arc<ProgressCounters>, total: Option<u64>) -> std::io::Result<Self> {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let handle = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || monitor(&counters, total, &flag))?;
        Ok(Self {
            done,
            handle: Some(handle),
        })
    }

    /// Stops the monitor and clears its line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop();
    }
}

fn monitor(counters: &ProgressCounters, total: Option<u64>, done: &AtomicBool) {
    let start = Instant::now();
    let mut shown = false;
    while !done.load(Ordering::Relaxed) {
        std::thread::park_timeout(TICK);
        if done.load(Ordering::Relaxed) {
            break;
        }
        let elapsed = start.elapsed();
        if elapsed < SHOW_AFTER {
            continue;
        }
        shown = true;
        let line = render(counters.records(), counters.orders(), total, elapsed);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
    }
    if shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{:width$}\r", "", width = WIDTH + 80);
        let _ = err.flush();
    }
}

/// One progress line: bar (when the total is known), records, rate, orders.
pub fn render(records: u64, orders: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = records as f64 / secs;
    match total {
        Some(t) if t > 0 => {
            let frac = (records as f64 / t as f64).clamp(0.0, 1.0);
            let filled = (frac * WIDTH as f64) as usize;
            format!(
                "[{}{}] {:5.1}% {records}/{t} records  {rate:.0}/s  {orders} orders",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                frac * 100.0
            )
        }
        _ => format!("{records} records  {rate:.0}/s  {orders} orders"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bar_and_rate() {
        let s = render(50, 3, Some(100), Duration::from_secs(2));
        assert!(
            s.starts_with("[###############---------------]  50.0% 50/100"),
            "{s}"
        );
        assert!(s.contains("25/s"), "{s}");
        let s = render(10, 0, None, Duration::from_secs(1));
        assert_eq!(s, "10 records  10/s  0 orders");
    }
}
