//! What a replay's report concludes about its input, beyond the numbers: each book's final top
//! of book in exact decimals, the warnings a user must not miss, and whether the input counts as
//! damaged (which decides `pinion replay`'s exit code).
//!
//! A book counts as *expected to sync* when any depth or snapshot event reached it: a book of a
//! configured instrument the recording never mentions is not a problem of the recording.

use pinion_book::SyncState;
use pinion_core::{InstrumentSpec, Instruments, Level};
use serde_json::{Value, json};

use crate::latency::{LatencyReport, format_ns};
use crate::problems::errors_out::problem_json;
use crate::problems::{ProblemClass, ProblemKind, ProblemSummary, Subject};
use crate::stages::book::BookFinal;

/// Release lateness above which a paced frame counts as late, ns.
pub const LATE_NS: u64 = 1_000_000;
/// Share of late frames (per mille) from which a paced replay is said to have fallen behind.
pub const LATE_PER_MILLE: u64 = 10;

/// One book's final top of book as exact decimal strings (at the instrument's own scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSummary {
    /// `venue SYMBOL`, or `#id` for an instrument without a spec.
    pub name: String,
    /// The sync machine's state as a stable word (`live`, `awaiting_snapshot:gap`, …).
    pub state: &'static str,
    /// Best bid price and quantity.
    pub best_bid: Option<(String, String)>,
    /// Best ask price and quantity.
    pub best_ask: Option<(String, String)>,
    /// Ask minus bid.
    pub spread: Option<String>,
    /// (bid + ask) / 2, exactly (one more decimal when the sum is odd).
    pub mid: Option<String>,
}

impl BookSummary {
    /// The summary of `book`, named and scaled by its spec.
    pub fn of(book: &BookFinal, spec: Option<&InstrumentSpec>) -> Self {
        let (pd, qd) = spec.map_or((0, 0), |s| (s.price_decimals, s.qty_decimals));
        let level = |l: &Level| {
            (
                scaled_decimal(i128::from(l.px.0), pd),
                scaled_decimal(i128::from(l.qty.0), qd),
            )
        };
        let bid = book.bids.first();
        let ask = book.asks.first();
        let (spread, mid) = match (bid, ask) {
            (Some(b), Some(a)) => {
                let (b, a) = (i128::from(b.px.0), i128::from(a.px.0));
                let sum = a + b;
                let mid = if sum % 2 == 0 {
                    scaled_decimal(sum / 2, pd)
                } else {
                    scaled_decimal(sum * 5, pd.saturating_add(1))
                };
                (Some(scaled_decimal(a - b, pd)), Some(mid))
            }
            _ => (None, None),
        };
        Self {
            name: spec.map_or_else(
                || format!("#{}", book.instrument.0),
                |s| format!("{} {}", s.venue, s.symbol),
            ),
            state: book.state.name(),
            best_bid: bid.map(level),
            best_ask: ask.map(level),
            spread,
            mid,
        }
    }

    /// `bid 1.0087 @ 61685.99 | ask 2.29327 @ 61686.00 | spread 0.01 mid 61685.995`.
    pub fn top_text(&self) -> String {
        let side = |s: &Option<(String, String)>| {
            s.as_ref()
                .map_or_else(|| "-".to_owned(), |(px, qty)| format!("{qty} @ {px}"))
        };
        format!(
            "bid {} | ask {} | spread {} mid {}",
            side(&self.best_bid),
            side(&self.best_ask),
            self.spread.as_deref().unwrap_or("-"),
            self.mid.as_deref().unwrap_or("-")
        )
    }

    /// The JSON fields of the top of book (`null` for a missing side).
    pub fn top_json(&self) -> Value {
        let side = |s: &Option<(String, String)>| {
            s.as_ref()
                .map_or(Value::Null, |(px, qty)| json!({"price": px, "qty": qty}))
        };
        json!({
            "best_bid": side(&self.best_bid),
            "best_ask": side(&self.best_ask),
            "spread": self.spread,
            "mid": self.mid,
        })
    }
}

/// Whether a book was fed anything it needed to sync.
pub fn expected_to_sync(book: &BookFinal) -> bool {
    book.seen.depth_events + book.seen.snapshot_events > 0
}

/// What about a run makes its input count as damaged: source or decode problems, or a book fed
/// depth that did not end live. Empty when the input was clean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damage {
    /// One short reason each.
    pub reasons: Vec<String>,
}

impl Damage {
    /// Whether anything was damaged.
    pub fn is_damaged(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// The damage of a run.
    pub fn of(problems: &ProblemSummary, books: &[BookFinal], instruments: &Instruments) -> Self {
        let mut reasons = Vec::new();
        for class in [ProblemClass::Source, ProblemClass::Decode] {
            let n = problems.of_class(class);
            if n > 0 {
                reasons.push(format!("{n} {} problems", class.name()));
            }
        }
        for b in books
            .iter()
            .filter(|b| expected_to_sync(b) && b.state != SyncState::Live)
        {
            reasons.push(format!("{} ended {}", name(instruments, b), b.state.name()));
        }
        Self { reasons }
    }
}

fn name(instruments: &Instruments, b: &BookFinal) -> String {
    Subject::Instrument(b.instrument).describe(instruments)
}

/// Everything the warnings are drawn from.
pub struct WarningInputs<'a> {
    /// The problems.
    pub problems: &'a ProblemSummary,
    /// The books.
    pub books: &'a [BookFinal],
    /// For names.
    pub instruments: &'a Instruments,
    /// The merged histograms (a paced replay's has the feed's release lateness).
    pub latency: &'a LatencyReport,
    /// Whether the run was stopped early (Ctrl-C).
    pub stopped_early: bool,
    /// Records read.
    pub records: u64,
    /// The errors file and what its writer returned.
    pub errors_out: Option<&'a (std::path::PathBuf, Result<u64, String>)>,
}

/// The warnings about the input and the run, most serious first.
pub fn warnings(w: &WarningInputs<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if w.stopped_early {
        out.push(format!(
            "stopped early (Ctrl-C): the report covers the first {} records only",
            w.records
        ));
    }
    let source = w.problems.of_class(ProblemClass::Source);
    if source > 0 {
        let first = w
            .problems
            .samples
            .iter()
            .find(|p| p.kind.class() == ProblemClass::Source)
            .map(|p| format!(" (the first{}: {})", at(&p.place()), p.detail))
            .unwrap_or_default();
        out.push(format!(
            "{source} source errors: parts of the input could not be read{first}"
        ));
    }
    for b in w.books.iter().filter(|b| expected_to_sync(b)) {
        let n = name(w.instruments, b);
        let c = &b.counters;
        if b.state == SyncState::Live {
            continue;
        }
        if b.seen.snapshot_events == 0 && c.snapshots == 0 {
            out.push(format!(
                "{n}: depth stream with no snapshot for it in the capture: the book never synced ({} depth events unused)",
                b.seen.depth_events
            ));
        } else if c.messages_applied == 0 {
            out.push(format!(
                "{n}: the book never synced ({} snapshots seen, {} applied; ends {})",
                b.seen.snapshot_events,
                c.snapshots,
                b.state.name()
            ));
        } else {
            out.push(format!(
                "{n}: the book ended unsynced ({}) after {} resyncs",
                b.state.name(),
                c.resyncs
            ));
        }
    }
    for b in w.books {
        let n = name(w.instruments, b);
        let h = &b.housekeeping;
        let dropped = h.dropped[0] + h.dropped[1];
        if dropped > 0 {
            out.push(format!(
                "{n}: {dropped} levels far from the touch were dropped (the book's overflow was full): its deep levels are incomplete"
            ));
        }
        if h.regrids > 0 {
            out.push(format!(
                "{n}: prices between its ticks moved the book to a finer grid {} times; its listed tick is coarser than the prices sent",
                h.regrids
            ));
        }
    }
    let mut subjects: Vec<Subject> = w
        .problems
        .counts
        .iter()
        .filter(|c| c.kind.class() == ProblemClass::Decode)
        .map(|c| c.subject)
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    for s in subjects {
        let kinds: Vec<String> = w
            .problems
            .counts
            .iter()
            .filter(|c| c.subject == s && c.kind.class() == ProblemClass::Decode)
            .map(|c| format!("{} {}", c.count, c.kind.name()))
            .collect();
        out.push(format!(
            "{}: {} records could not be decoded ({})",
            s.describe(w.instruments),
            w.problems.of_subject(ProblemClass::Decode, s),
            kinds.join(", ")
        ));
    }
    if let Some(h) = w.latency.get("feed.release_lateness") {
        let total = h.hist.len();
        let late = total.saturating_sub(h.hist.count_between(0, LATE_NS));
        if total > 0 && late * 1000 >= total * LATE_PER_MILLE {
            out.push(format!(
                "the paced replay fell behind: {late} of {total} frames ({:.1} %) were released more than {} late (max {}); latency figures include the catching up",
                late as f64 * 100.0 / total as f64,
                format_ns(LATE_NS),
                format_ns(h.hist.max())
            ));
        }
    }
    if let Some((path, result)) = w.errors_out {
        match result {
            Err(e) => out.push(format!(
                "--errors-out {}: writing failed: {e}",
                path.display()
            )),
            Ok(_) if w.problems.lost_to_file > 0 => out.push(format!(
                "--errors-out {}: {} problems are missing from the file (they came faster than it was written)",
                path.display(),
                w.problems.lost_to_file
            )),
            Ok(_) => {}
        }
    }
    out
}

fn at(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" at {place}")
    }
}

/// The problems as text: one line per kind with its subjects, then its first samples.
pub fn problems_text(problems: &ProblemSummary, instruments: &Instruments) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if problems.total() == 0 {
        return s;
    }
    let _ = writeln!(
        s,
        "problems: {} source, {} decode, {} sync (the first {} of each kind below):",
        problems.of_class(ProblemClass::Source),
        problems.of_class(ProblemClass::Decode),
        problems.of_class(ProblemClass::Sync),
        crate::problems::SAMPLES_PER_KIND
    );
    for &kind in ProblemKind::ALL {
        let total = problems.of_kind(kind);
        if total == 0 {
            continue;
        }
        let by: Vec<String> = problems
            .counts
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| format!("{}: {}", c.subject.describe(instruments), c.count))
            .collect();
        let _ = writeln!(s, "  {:<24} {total} ({})", kind.name(), by.join("; "));
        for p in problems.samples.iter().filter(|p| p.kind == kind) {
            let place = p.place();
            let _ = writeln!(
                s,
                "    {}{}: {}",
                if place.is_empty() { "-" } else { &place },
                if p.text.is_empty() {
                    String::new()
                } else {
                    format!(" ({} bytes)", p.text_len)
                },
                p.detail
            );
            if !p.text.is_empty() {
                let _ = writeln!(s, "      {}", p.display_text());
            }
        }
    }
    s
}

/// The problems as JSON: totals per class, per kind with subjects, and the samples.
pub fn problems_json(
    problems: &ProblemSummary,
    instruments: &Instruments,
    errors_out: Option<&(std::path::PathBuf, Result<u64, String>)>,
) -> Value {
    let kinds: Vec<Value> = ProblemKind::ALL
        .iter()
        .filter(|&&k| problems.of_kind(k) > 0)
        .map(|&kind| {
            let by: Vec<Value> = problems
                .counts
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| {
                    let mut v = subject_json(c.subject, instruments);
                    v["count"] = json!(c.count);
                    v
                })
                .collect();
            json!({
                "kind": kind.name(),
                "class": kind.class().name(),
                "count": problems.of_kind(kind),
                "by_subject": by,
            })
        })
        .collect();
    let samples: Vec<Value> = problems
        .samples
        .iter()
        .map(|p| problem_json(p, instruments))
        .collect();
    json!({
        "source": problems.of_class(ProblemClass::Source),
        "decode": problems.of_class(ProblemClass::Decode),
        "sync": problems.of_class(ProblemClass::Sync),
        "kinds": kinds,
        "samples": samples,
        "errors_out": errors_out.map(|(path, r)| json!({
            "path": path.display().to_string(),
            "written": r.as_ref().ok(),
            "error": r.as_ref().err(),
            "lost": problems.lost_to_file,
        })),
    })
}

fn subject_json(s: Subject, instruments: &Instruments) -> Value {
    match s {
        Subject::Instrument(id) => {
            let spec = instruments.get(id);
            json!({
                "venue": spec.map(|s| s.venue.name()),
                "symbol": spec.map(|s| s.symbol.to_string()),
                "connection": null,
            })
        }
        Subject::Connection(c) => json!({"venue": null, "symbol": null, "connection": c.0}),
        Subject::Input => json!({"venue": null, "symbol": null, "connection": null}),
    }
}

/// `value × 10^-decimals` as a plain decimal string, exactly (`-1234`, 2 → `"-12.34"`).
pub fn scaled_decimal(value: i128, decimals: u8) -> String {
    let digits = value.unsigned_abs().to_string();
    let d = usize::from(decimals);
    let padded = if digits.len() <= d {
        format!("{}{digits}", "0".repeat(d + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - d);
    let sign = if value < 0 { "-" } else { "" };
    if d == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{InstrumentId, Px, Qty, Venue};

    #[test]
    fn scaled_decimals_are_exact() {
        assert_eq!(scaled_decimal(-1234, 2), "-12.34");
        assert_eq!(scaled_decimal(5, 3), "0.005");
        assert_eq!(scaled_decimal(0, 2), "0.00");
        assert_eq!(scaled_decimal(-7, 0), "-7");
        assert_eq!(
            scaled_decimal(i128::MIN, 10),
            "-17014118346046923173168730371.5884105728"
        );
    }

    #[test]
    fn top_of_book_in_exact_decimals() {
        let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let level = |px, qty| Level {
            px: Px(px),
            qty: Qty(qty),
        };
        let book = BookFinal {
            instrument: InstrumentId(0),
            state: SyncState::Live,
            counters: Default::default(),
            last_update_id: 0,
            bids: vec![level(6_168_599, 100_870), level(6_168_598, 1)],
            asks: vec![level(6_168_600, 229_327)],
            seen: Default::default(),
            housekeeping: Default::default(),
        };
        let s = BookSummary::of(&book, Some(&spec));
        assert_eq!(s.state, "live");
        assert_eq!(
            s.best_bid,
            Some(("61685.99".to_owned(), "1.00870".to_owned()))
        );
        assert_eq!(
            s.best_ask,
            Some(("61686.00".to_owned(), "2.29327".to_owned()))
        );
        assert_eq!(s.spread.as_deref(), Some("0.01"));
        assert_eq!(s.mid.as_deref(), Some("61685.995"));
        let even = BookFinal {
            asks: vec![level(6_168_601, 1)],
            ..book
        };
        assert_eq!(
            BookSummary::of(&even, Some(&spec)).mid.as_deref(),
            Some("61686.00")
        );
    }
}
