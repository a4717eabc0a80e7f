//! The final report of a replay: throughput, the latency table (every histogram merged by
//! name), each stage's counters, and how each book ended; as text, as JSON, and as `.hgrm`
//! files. Built once after the run, off the hot path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::PreparedSummary;
use crate::config::Settings;
use crate::latency::LatencyReport;
use crate::runtime::RunReport;
use crate::stages::book::BookFinal;

/// Rates over the run's wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Wall time of the run, s.
    pub seconds: f64,
    /// Records read from the source.
    pub records: u64,
    /// Exchange messages decoded.
    pub messages: u64,
    /// Events sent to the book stage.
    pub events: u64,
    /// Orders handed to the venue.
    pub orders: u64,
}

impl Throughput {
    /// Records per second.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// Decoded messages per second.
    pub fn messages_per_second(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }

    /// Events per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// Everything a replay reports. See the module docs.
#[derive(Debug)]
pub struct PipelineReport {
    /// Config origin.
    pub origin: String,
    /// Input description and start-up notes.
    pub input: PreparedSummary,
    /// `1`, `2`, `4`, `custom`.
    pub placement: String,
    /// Wait strategies per thread, `name=strategy`.
    pub waits: Vec<String>,
    /// Pacing description.
    pub pacing: String,
    /// What the runtime handed back.
    pub run: RunReport,
    /// All histograms merged by name.
    pub latency: LatencyReport,
    /// Rates.
    pub throughput: Throughput,
    /// Each book's final state.
    pub books: Vec<BookFinal>,
}

impl PipelineReport {
    /// Assembles the report.
    pub fn new(
        settings: &Settings,
        input: PreparedSummary,
        run: RunReport,
        books: Vec<BookFinal>,
    ) -> Self {
        let c =
            |stage: &str, name: &str| run.stage(stage).and_then(|s| s.counter(name)).unwrap_or(0);
        let throughput = Throughput {
            seconds: run.wall.as_secs_f64(),
            records: c("feed", "records"),
            messages: c("feed", "messages_decoded"),
            events: c("feed", "events"),
            orders: c("gateway", "orders_sent"),
        };
        Self {
            origin: settings.origin.clone(),
            placement: settings.placement.label.clone(),
            waits: settings
                .placement
                .threads
                .iter()
                .map(|t| format!("{}={}", t.name, t.wait.name()))
                .collect(),
            pacing: settings.pacing.describe(),
            latency: run.latency(),
            throughput,
            input,
            run,
            books,
        }
    }

    /// A counter of a stage (0 if absent).
    pub fn counter(&self, stage: &str, name: &str) -> u64 {
        self.run
            .stage(stage)
            .and_then(|s| s.counter(name))
            .unwrap_or(0)
    }

    /// The text report.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let t = &self.throughput;
        let _ = writeln!(
            s,
            "pinion replay: {} | placement {} ({}) | pacing {}",
            self.input.description,
            self.placement,
            self.waits.join(", "),
            self.pacing
        );
        let _ = writeln!(
            s,
            "throughput: {} records in {:.3} s = {:.0} records/s; {:.0} messages/s; {:.0} events/s; {} orders",
            t.records,
            t.seconds,
            t.records_per_second(),
            t.messages_per_second(),
            t.events_per_second(),
            t.orders
        );
        let _ = writeln!(s);
        s.push_str(&self.latency.table());
        let _ = writeln!(s);
        let _ = writeln!(s, "counters:");
        for st in &self.run.stages {
            let list: Vec<String> = st
                .counters
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(s, "  {:<9} {}", st.stage, list.join(" "));
        }
        if !self.books.is_empty() {
            let _ = writeln!(s, "books:");
            for b in &self.books {
                let name = self.input.instruments.get(b.instrument).map_or_else(
                    || format!("#{}", b.instrument.0),
                    |i| format!("{} {}", i.venue, i.symbol),
                );
                let c = &b.counters;
                let _ = writeln!(
                    s,
                    "  {name:<26} {:?} update {} | {} bids {} asks | applied {} snapshots {} gaps {} resyncs {} stale {}",
                    b.state,
                    b.last_update_id,
                    b.bids.len(),
                    b.asks.len(),
                    c.messages_applied,
                    c.snapshots,
                    c.gaps,
                    c.resyncs,
                    c.stale
                );
            }
        }
        for w in self.run.placement.warnings() {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let t = &self.throughput;
        let latency: Value = self
            .latency
            .to_json()
            .ok()
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or(Value::Null);
        let stages: serde_json::Map<String, Value> = self
            .run
            .stages
            .iter()
            .map(|st| {
                let counters: serde_json::Map<String, Value> = st
                    .counters
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect();
                (st.stage.to_owned(), Value::Object(counters))
            })
            .collect();
        let books: Vec<Value> = self
            .books
            .iter()
            .map(|b| {
                let spec = self.input.instruments.get(b.instrument);
                json!({
                    "venue": spec.map(|s| s.venue.name()),
                    "symbol": spec.map(|s| s.symbol.to_string()),
                    "state": format!("{:?}", b.state),
                    "last_update_id": b.last_update_id,
                    "bid_levels": b.bids.len(),
                    "ask_levels": b.asks.len(),
                    "messages_applied": b.counters.messages_applied,
                    "snapshots": b.counters.snapshots,
                    "gaps": b.counters.gaps,
                    "resyncs": b.counters.resyncs,
                })
            })
            .collect();
        json!({
            "config": self.origin,
            "input": self.input.description,
            "placement": self.placement,
            "waits": self.waits,
            "pacing": self.pacing,
            "throughput": {
                "seconds": t.seconds,
                "records": t.records,
                "messages": t.messages,
                "events": t.events,
                "orders": t.orders,
                "records_per_second": t.records_per_second(),
                "messages_per_second": t.messages_per_second(),
            },
            "latency": latency,
            "stages": stages,
            "books": books,
            "warnings": self.run.placement.warnings(),
        })
    }

    /// Writes the JSON report to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        std::fs::write(path, text + "\n")
    }

    /// Writes one `.hgrm` percentile file per histogram into `dir` (created if needed).
    pub fn write_hgrm(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        self.latency.write_hgrm_files(dir)
    }
}
