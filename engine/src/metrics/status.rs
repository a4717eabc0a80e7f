//! The periodic one-line status on stderr: records and their rate since the last line, orders,
//! books live, and a live input's connections and reconnects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{BookState, Sources};

/// Prints a status line every `every` until `done`.
pub(super) fn run(src: &Sources, every: Duration, done: &AtomicBool) {
    let mut last = (Instant::now(), src.progress.records());
    loop {
        let due = last.0 + every;
        while Instant::now() < due {
            if done.load(Ordering::Relaxed) {
                return;
            }
            std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
        }
        if done.load(Ordering::Relaxed) {
            return;
        }
        let now = (Instant::now(), src.progress.records());
        let rate = now.1.saturating_sub(last.1) as f64 / (now.0 - last.0).as_secs_f64().max(1e-9);
        eprintln!("{}", status_line(src, rate));
        last = now;
    }
}

/// One status line: `pinion live 12.0s: 48213 records (4012/s), 17 orders, books 2/2 live, conns
/// 2 (0 reconnects), threads 4/4`.
pub fn status_line(src: &Sources, records_per_s: f64) -> String {
    let (mut books, mut live) = (0, 0);
    for (id, _) in src.instruments.iter() {
        match src.books.state(usize::from(id.0)) {
            BookState::None => {}
            BookState::Live => {
                books += 1;
                live += 1;
            }
            _ => books += 1,
        }
    }
    let mut line = format!(
        "pinion {} {:.1}s: {} records ({records_per_s:.0}/s), {} orders, books {live}/{books} live",
        src.command,
        src.uptime().as_secs_f64(),
        src.progress.records(),
        src.progress.orders(),
    );
    if let Some(c) = &src.live {
        let reconnects: u64 = c
            .conns
            .iter()
            .map(|c| c.reconnects.load(Ordering::Relaxed))
            .sum();
        line.push_str(&format!(
            ", conns {} ({reconnects} reconnects)",
            c.conns.len()
        ));
    }
    if !src.sessions.is_empty() {
        let ready = src.sessions.iter().filter(|(_, m)| m.is_ready()).count();
        line.push_str(&format!(
            ", order sessions {ready}/{} ready",
            src.sessions.len()
        ));
    }
    line.push_str(&format!(
        ", threads {}/{}",
        src.threads_running(),
        src.threads.len()
    ));
    line
}
