//! The final report of a replay: throughput, the latency table (every histogram merged by
//! name), each stage's counters, the input's problems, how each book ended, and the warnings
//! (see [`super::findings`]); as text, as JSON, and as `.hgrm` files. Built once after the run,
//! off the hot path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::PreparedSummary;
use super::findings::{self, BookSummary, Damage, WarningInputs, scaled_decimal};
use crate::config::Settings;
use crate::latency::LatencyReport;
use crate::problems::ProblemSummary;
use crate::runtime::RunReport;
use crate::stages::book::BookFinal;
use crate::stages::strategy::{InstanceFinal, TradingFinal};

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
    /// What each traded instrument's strategy did and earned.
    pub trading: Vec<TradingFinal>,
    /// Every problem with the input, counted and sampled.
    pub problems: ProblemSummary,
    /// The `--errors-out` file and what its writer returned (problems written, or why not).
    pub errors_out: Option<(PathBuf, Result<u64, String>)>,
    /// Why trading was killed, if it was, and what the control block did.
    pub control: ControlOutcome,
    /// What the start-up checks of the order key found (`pinion live --trade`).
    pub key_checks: Option<super::KeyCheckReport>,
}

/// What the control block ([`crate::control`]) did in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlOutcome {
    /// Why trading was killed, if it was.
    pub killed: Option<crate::control::KillReason>,
    /// The stage's counters.
    pub stats: crate::control::ControlStats,
}

impl PipelineReport {
    /// Assembles the report.
    pub fn new(
        settings: &Settings,
        input: PreparedSummary,
        run: RunReport,
        books: Vec<BookFinal>,
        trading: Vec<TradingFinal>,
    ) -> Self {
        let c = |stage: &str, name: &str| run.counter(stage, name).unwrap_or(0);
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
            trading,
            problems: ProblemSummary::default(),
            errors_out: None,
            control: ControlOutcome::default(),
            key_checks: None,
        }
    }

    /// Adds the stages' problems and the errors file's outcome.
    pub fn set_problems(
        &mut self,
        problems: ProblemSummary,
        errors_out: Option<(PathBuf, Result<u64, String>)>,
    ) {
        self.problems = problems;
        self.errors_out = errors_out;
    }

    /// Whether the run was stopped before the end of its input (Ctrl-C).
    pub fn stopped_early(&self) -> bool {
        self.counter("feed", "stopped_early") > 0
    }

    /// Why the input counts as damaged, if it does (see [`Damage`]).
    pub fn damage(&self) -> Damage {
        Damage::of(&self.problems, &self.books, &self.input.instruments)
    }

    /// Each book's final top of book and state, in words and exact decimals.
    pub fn book_summaries(&self) -> Vec<BookSummary> {
        self.books
            .iter()
            .map(|b| BookSummary::of(b, self.input.instruments.get(b.instrument)))
            .collect()
    }

    /// Every warning: about the input and the run first, then the host's.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = findings::warnings(&WarningInputs {
            problems: &self.problems,
            books: &self.books,
            instruments: &self.input.instruments,
            latency: &self.latency,
            // A live session ends by being stopped: that is no warning there.
            stopped_early: self.stopped_early() && self.input.live.is_none(),
            records: self.throughput.records,
            errors_out: self.errors_out.as_ref(),
        });
        w.extend(self.run.placement.warnings());
        w
    }
    /// A counter of a stage (0 if absent).
    pub fn counter(&self, stage: &str, name: &str) -> u64 {
        self.run.counter(stage, name).unwrap_or(0)
    }

    /// The text report.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let t = &self.throughput;
        let _ = writeln!(
            s,
            "pinion {}: {} | placement {} ({}) | pacing {}",
            if self.input.live.is_some() {
                "live"
            } else {
                "replay"
            },
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
        let jumps = self.counter("feed", "pacing_jumps");
        if jumps > 0 {
            let _ = writeln!(
                s,
                "pacing: {jumps} recorded gaps longer than pacing.max_wait_ms were cut, skipping {:.3} s of waiting",
                self.counter("feed", "pacing_skipped_ns") as f64 / 1e9
            );
        }
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
        if let Some(live) = &self.input.live {
            for (k, v) in live_counters(live) {
                let _ = writeln!(s, "  {k:<9} {v}");
            }
        }
        s.push_str(&findings::problems_text(
            &self.problems,
            &self.input.instruments,
        ));
        if !self.books.is_empty() {
            let _ = writeln!(s, "books:");
            for (b, sum) in self.books.iter().zip(self.book_summaries()) {
                let c = &b.counters;
                let _ = writeln!(
                    s,
                    "  {:<26} {} update {} | {} | {} bids {} asks | applied {} snapshots {} gaps {} resyncs {} stale {}",
                    sum.name,
                    sum.state,
                    b.last_update_id,
                    sum.top_text(),
                    b.bids.len(),
                    b.asks.len(),
                    c.messages_applied,
                    c.snapshots,
                    c.gaps,
                    c.resyncs,
                    c.stale
                );
                let h = &b.housekeeping;
                if h.regrids > 0 {
                    let _ = writeln!(
                        s,
                        "  {:<26} prices between its ticks: the book moved to a finer grid {} times",
                        "", h.regrids
                    );
                }
                let dropped = h.dropped[0] + h.dropped[1];
                if dropped > 0 {
                    let _ = writeln!(
                        s,
                        "  {:<26} {dropped} far levels dropped: the book's overflow was full",
                        ""
                    );
                }
            }
        }
        if !self.trading.is_empty() {
            let _ = writeln!(
                s,
                "trading (PnL in the quote asset, in the base asset for inverse contracts; unrealised marked at the last mid; net = realised + unrealised - fees):"
            );
            for t in &self.trading {
                let v = TradingView::new(t, self.input.instruments.get(t.instrument));
                let st = &t.stats;
                let _ = writeln!(
                    s,
                    "  {:<26} {} | orders {} cancels {} fills {} ({} maker) | risk refused {} throttled {} venue rejects {} | position {} | realised {} unrealised {} (mark {}) | gross {} fees {} net {}",
                    v.name,
                    t.strategy,
                    st.orders.saturating_sub(st.risk_rejects),
                    st.cancels,
                    st.fills,
                    t.maker_fills,
                    t.gate.refused,
                    st.throttled,
                    st.venue_rejects,
                    v.position,
                    v.realized,
                    v.unrealized,
                    v.mark,
                    v.gross,
                    v.fees,
                    v.net
                );
                if t.instances.len() > 1 {
                    for i in &t.instances {
                        let v = InstanceView::new(i, self.input.instruments.get(t.instrument));
                        let _ = writeln!(
                            s,
                            "  {:<26} strategy {} ({}): orders {} cancels {} fills {} ({} maker) | risk refused {} | position {} | realised {} unrealised {} | fees {} net {}",
                            "",
                            i.name,
                            i.strategy,
                            i.stats.orders.saturating_sub(i.stats.risk_rejects),
                            i.stats.cancels,
                            i.fills,
                            i.maker_fills,
                            i.stats.risk_rejects,
                            v.position,
                            v.realized,
                            v.unrealized,
                            v.fees,
                            v.net
                        );
                        if let Some((b, at)) = i.loss_breach {
                            let _ = writeln!(
                                s,
                                "  {:<26}   stopped: its {} limit reached at {at} ns",
                                "",
                                b.as_str()
                            );
                        }
                    }
                }
                if t.protection != "none" {
                    let _ = writeln!(s, "  {:<26} protection: {}", "", t.protection);
                }
                let x = &t.exits;
                if x.closing_orders + x.closing_refused > 0 {
                    let _ = writeln!(
                        s,
                        "  {:<26} exits: {} stop-loss, {} take-profit, {} trailing; {} closing orders ({} refused by risk)",
                        "",
                        x.stop_losses,
                        x.take_profits,
                        x.trailing_stops,
                        x.closing_orders,
                        x.closing_refused
                    );
                }
                let f = &t.flatten;
                if f.flattens + f.derisks > 0 {
                    let last = f.last.map_or_else(String::new, |(cause, outcome, left)| {
                        let q = self
                            .input
                            .instruments
                            .get(t.instrument)
                            .map_or(0, |s| s.qty_decimals);
                        format!(
                            "; last ({}): {}, position {} left",
                            cause.as_str(),
                            outcome.as_str(),
                            crate::bot::commands::fixed(left.0, q)
                        )
                    });
                    let _ = writeln!(
                        s,
                        "  {:<26} flatten: {} run(s), {} de-risk(s); {} done, {} deadline passed; {} closing orders ({} refused by risk){last}",
                        "", f.flattens, f.derisks, f.done, f.deadline_passed, f.slices, f.refused
                    );
                }
            }
        }
        if let Some(reason) = self.control.killed {
            let _ = writeln!(
                s,
                "kill switch: on ({reason}); {} open orders cancelled by it",
                self.control.stats.control_cancels
            );
        }
        if let Some(x) = super::live::exit_total(self) {
            let _ = writeln!(s, "{}", super::live::exit_line(&x));
        }
        if let Some(k) = &self.key_checks {
            for line in k.lines() {
                let _ = writeln!(s, "{line}");
            }
        }
        for line in super::live::protection_lines(self) {
            let _ = writeln!(s, "{line}");
        }
        for w in self.warnings() {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let mut v = self.to_json_base();
        if let (Some(live), Value::Object(map)) = (&self.input.live, &mut v) {
            let conns: serde_json::Map<String, Value> = live_counters(live)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            map.insert("live".to_owned(), Value::Object(conns));
        }
        if let (false, Value::Object(map)) = (self.input.accounts.is_empty(), &mut v) {
            map.insert("accounts".to_owned(), super::live::accounts_json(self));
            if let Some(exit) = super::live::exit_total_json(self) {
                map.insert("exit".to_owned(), exit);
            }
        }
        if let (Some(k), Value::Object(map)) = (&self.key_checks, &mut v) {
            map.insert("key_checks".to_owned(), k.to_json());
        }
        v
    }

    fn to_json_base(&self) -> Value {
        let t = &self.throughput;
        let latency: Value = self
            .latency
            .to_json()
            .ok()
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or(Value::Null);
        // Stages of one name (several strategy stages) are added up, counter by counter.
        let mut stages: serde_json::Map<String, Value> = serde_json::Map::new();
        for st in &self.run.stages {
            let Value::Object(counters) = stages
                .entry(st.stage.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()))
            else {
                continue;
            };
            for (k, v) in &st.counters {
                let sum = counters
                    .get(*k)
                    .and_then(Value::as_u64)
                    .map_or(*v, |before| before.wrapping_add(*v));
                counters.insert((*k).to_owned(), json!(sum));
            }
        }
        let books: Vec<Value> = self
            .books
            .iter()
            .zip(self.book_summaries())
            .map(|(b, sum)| {
                let spec = self.input.instruments.get(b.instrument);
                let top = sum.top_json();
                json!({
                    "venue": spec.map(|s| s.venue.name()),
                    "symbol": spec.map(|s| s.symbol.to_string()),
                    "state": sum.state,
                    "best_bid": top["best_bid"],
                    "best_ask": top["best_ask"],
                    "spread": top["spread"],
                    "mid": top["mid"],
                    "depth_events": b.seen.depth_events,
                    "snapshot_events": b.seen.snapshot_events,
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
        let trading: Vec<Value> = self
            .trading
            .iter()
            .map(|t| {
                let spec = self.input.instruments.get(t.instrument);
                let v = TradingView::new(t, spec);
                json!({
                    "venue": spec.map(|s| s.venue.name()),
                    "symbol": spec.map(|s| s.symbol.to_string()),
                    "strategy": t.strategy,
                    "orders": t.stats.orders.saturating_sub(t.stats.risk_rejects),
                    "cancels": t.stats.cancels,
                    "fills": t.stats.fills,
                    "risk_refused": t.gate.refused,
                    "throttled": t.stats.throttled,
                    "venue_rejects": t.stats.venue_rejects,
                    "position": v.position,
                    "realized_pnl": v.realized,
                    "unrealized_pnl": v.unrealized,
                    "mark": v.mark,
                    "gross_pnl": v.gross,
                    "fees": v.fees,
                    "net_pnl": v.net,
                    "maker_fills": t.maker_fills,
                    "by_strategy": by_strategy_json(
                        t,
                        spec.map_or((0, 0), |s| (s.qty_decimals, s.money_decimals())),
                    ),
                    "protection": t.protection,
                    "exits": {
                        "stop_losses": t.exits.stop_losses,
                        "take_profits": t.exits.take_profits,
                        "trailing_stops": t.exits.trailing_stops,
                        "closing_orders": t.exits.closing_orders,
                        "closing_refused": t.exits.closing_refused,
                    },
                    "loss_breach": t.loss_breach.map(|(b, at)| json!({"limit": b.as_str(), "at_ns": at})),
                    "flatten": {
                        "flattens": t.flatten.flattens,
                        "derisks": t.flatten.derisks,
                        "done": t.flatten.done,
                        "deadline_passed": t.flatten.deadline_passed,
                        "closing_orders": t.flatten.slices,
                        "closing_refused": t.flatten.refused,
                        "last": t.flatten.last.map(|(cause, outcome, left)| json!({
                            "cause": cause.as_str(),
                            "outcome": outcome.as_str(),
                            "position_left": spec.map_or_else(
                                || left.0.to_string(),
                                |s| crate::bot::commands::fixed(left.0, s.qty_decimals),
                            ),
                        })),
                    },
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
            "trading": trading,
            "control": {
                "killed": self.control.killed.map(|r| r.as_str()),
                "control_cancels": self.control.stats.control_cancels,
                "cancel_all_requests": self.control.stats.cancel_all_requests,
                "flatten_requests": self.control.stats.flatten_requests,
            },
            "problems": findings::problems_json(
                &self.problems,
                &self.input.instruments,
                self.errors_out.as_ref(),
            ),
            "damaged": self.damage().reasons,
            "stopped_early": self.stopped_early(),
            "warnings": self.warnings(),
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

/// One instrument's trading result as decimal strings in the instrument's own terms.
struct TradingView {
    name: String,
    position: String,
    realized: String,
    unrealized: String,
    mark: String,
    /// Realised and unrealised, before fees.
    gross: String,
    fees: String,
    net: String,
}

impl TradingView {
    fn new(t: &TradingFinal, spec: Option<&pinion_core::InstrumentSpec>) -> Self {
        let gross = t.realized + t.unrealized.unwrap_or(0);
        let Some(spec) = spec else {
            return Self {
                name: format!("#{}", t.instrument.0),
                position: t.position.0.to_string(),
                realized: t.realized.to_string(),
                unrealized: t
                    .unrealized
                    .map_or_else(|| "-".to_owned(), |u| u.to_string()),
                mark: t.mark.map_or_else(|| "-".to_owned(), |m| m.0.to_string()),
                gross: gross.to_string(),
                fees: t.fees.to_string(),
                net: t.net().to_string(),
            };
        };
        let money = spec.money_decimals();
        Self {
            name: format!("{} {}", spec.venue, spec.symbol),
            position: scaled_decimal(i128::from(t.position.0), spec.qty_decimals),
            realized: scaled_decimal(t.realized, money),
            unrealized: t
                .unrealized
                .map_or_else(|| "-".to_owned(), |u| scaled_decimal(u, money)),
            mark: t.mark.map_or_else(
                || "-".to_owned(),
                |m| scaled_decimal(i128::from(m.0), spec.price_decimals),
            ),
            gross: scaled_decimal(gross, money),
            fees: scaled_decimal(t.fees, money),
            net: scaled_decimal(t.net(), money),
        }
    }
}

/// One strategy instance's result on one instrument as decimal strings in its terms.
struct InstanceView {
    position: String,
    realized: String,
    unrealized: String,
    fees: String,
    volume: String,
    net: String,
}

/// Each strategy instance's result on one instrument (`by_strategy` in `report.json`), with
/// quantities and money at `(qty_decimals, money_decimals)`.
pub(crate) fn by_strategy_json(t: &TradingFinal, decimals: (u8, u8)) -> Value {
    t.instances
        .iter()
        .map(|i| {
            let v = InstanceView::at(i, decimals);
            json!({
                "name": &*i.name,
                "instance": i.instance,
                "strategy": i.strategy,
                "orders": i.stats.orders.saturating_sub(i.stats.risk_rejects),
                "cancels": i.stats.cancels,
                "fills": i.fills,
                "maker_fills": i.maker_fills,
                "risk_refused": i.stats.risk_rejects,
                "own_budget_refused": i.gate.map(|g| g.refused),
                "position": v.position,
                "realized_pnl": v.realized,
                "unrealized_pnl": v.unrealized,
                "fees": v.fees,
                "volume": v.volume,
                "net_pnl": v.net,
                "loss_breach": i.loss_breach.map(|(b, at)| json!({"limit": b.as_str(), "at_ns": at})),
            })
        })
        .collect()
}

impl InstanceView {
    fn new(i: &InstanceFinal, spec: Option<&pinion_core::InstrumentSpec>) -> Self {
        Self::at(
            i,
            spec.map_or((0, 0), |s| (s.qty_decimals, s.money_decimals())),
        )
    }

    fn at(i: &InstanceFinal, (qty, money): (u8, u8)) -> Self {
        Self {
            position: scaled_decimal(i128::from(i.position.0), qty),
            realized: scaled_decimal(i.realized, money),
            unrealized: i
                .unrealized
                .map_or_else(|| "-".to_owned(), |u| scaled_decimal(u, money)),
            fees: scaled_decimal(i.fees, money),
            volume: scaled_decimal(i.volume, money),
            net: scaled_decimal(i.net(), money),
        }
    }
}

/// A live source's counters as `(name, "k=v k=v …")` rows: one per connection, one for the
/// snapshots.
fn live_counters(live: &pinion_feed::live::LiveCounters) -> Vec<(String, String)> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut rows = Vec::new();
    for (i, c) in live.conns.iter().enumerate() {
        let fields = [
            ("attempts", c.attempts.load(Relaxed)),
            ("opens", c.opens.load(Relaxed)),
            ("reconnects", c.reconnects.load(Relaxed)),
            ("frames", c.frames.load(Relaxed)),
            ("bytes", c.bytes.load(Relaxed)),
            ("subscribes", c.subscribes.load(Relaxed)),
            ("ack_timeouts", c.ack_timeouts.load(Relaxed)),
            ("refused", c.refused.load(Relaxed)),
            ("idle_timeouts", c.idle_timeouts.load(Relaxed)),
            ("stale_streams", c.stale_streams.load(Relaxed)),
            ("pings", c.pings.load(Relaxed)),
            ("shutdown_notices", c.shutdown_notices.load(Relaxed)),
            ("last_close_code", c.last_close_code.load(Relaxed)),
            ("policy_closes", c.policy_closes.load(Relaxed)),
            ("first_arrivals", c.first_arrivals.load(Relaxed)),
            ("duplicates", c.duplicates.load(Relaxed)),
            (
                "mean_lead_ns",
                c.lead_ns.load(Relaxed) / c.leads.load(Relaxed).max(1),
            ),
        ];
        let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push((format!("conn{i}"), text.join(" ")));
    }
    let snaps = [
        ("requests", live.snapshot_requests.load(Relaxed)),
        ("fetched", live.snapshots.load(Relaxed)),
        ("failed", live.snapshot_failures.load(Relaxed)),
        ("watchdog", live.snapshot_watchdog.load(Relaxed)),
        ("rotations", live.rotations.load(Relaxed)),
        ("gaps_filled", live.gaps_filled.load(Relaxed)),
        ("gaps_unfilled", live.gaps_unfilled.load(Relaxed)),
        ("rest_weight", live.rest_weight.load(Relaxed)),
        ("rate_limited", live.rest_rate_limited.load(Relaxed)),
    ];
    let text: Vec<String> = snaps.iter().map(|(k, v)| format!("{k}={v}")).collect();
    rows.push(("snapshots".to_owned(), text.join(" ")));
    rows
}
