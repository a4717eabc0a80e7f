//! The engine's lifecycle as log records, never emitted from a stage: the stages count what
//! happens to them (connects, reconnects, resyncs, refusals) on their own cache lines. The live
//! feed publishes its counts while it runs, and [`LiveWatch`] logs their changes as they come;
//! the rest are handed over at the end, and [`ended`] reports them. Targets: `pinion::run` (start, config, end),
//! `pinion::live` (market-data connections and books), `pinion::trade` (orders, the order
//! session).
//!
//! Credentials are named by the environment variables they are read from, never by value.

use serde_json::{Value, json};

use pinion_gateway::binance::mirror::SessionMirror;

use super::log::{self, Level};
use crate::config::{InputSpec, Settings};
use crate::pipeline::{PipelineReport, accounts_json};

const RUN: &str = "pinion::run";
const LIVE: &str = "pinion::live";
const TRADE: &str = "pinion::trade";

/// `command` is about to run from `settings`.
pub fn started(command: &'static str, settings: &Settings) {
    if log::enabled(Level::Info, RUN) {
        let input = match (&settings.live, &settings.input) {
            (Some(l), _) => format!("{} {}", l.spec.venue, l.spec.symbols.join(",")),
            (None, InputSpec::Recording { path, .. }) => path.display().to_string(),
            (None, InputSpec::Synthetic { seed, records, .. }) => {
                format!("synthetic ({records} records, seed {seed})")
            }
            (None, InputSpec::Live(l)) => format!("{} {}", l.spec.venue, l.spec.symbols.join(",")),
        };
        log::emit(
            Level::Info,
            RUN,
            format!("pinion {command} starting"),
            vec![
                ("command", command.into()),
                ("config", settings.origin.clone().into()),
                ("input", input.into()),
                ("version", env!("CARGO_PKG_VERSION").into()),
            ],
        );
    }
    if log::enabled(Level::Debug, RUN) {
        log::emit(
            Level::Debug,
            RUN,
            "config",
            vec![
                ("placement", settings.placement.label.clone().into()),
                ("pacing", settings.pacing.describe().into()),
                ("ring_capacity", settings.ring_capacity.into()),
                ("instruments", settings.instruments.len().into()),
                (
                    "history",
                    settings
                        .history
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .into(),
                ),
                (
                    "metrics",
                    settings.metrics.listen.map(|a| a.to_string()).into(),
                ),
            ],
        );
    }
    if let Some(live) = &settings.live
        && log::enabled(Level::Debug, LIVE)
    {
        log::emit(
            Level::Debug,
            LIVE,
            "market data",
            vec![
                ("venue", live.spec.venue.to_string().into()),
                ("ws_url", live.spec.ws_url.clone().into()),
                ("rest_url", live.spec.rest_url.clone().into()),
                ("symbols", json!(live.spec.symbols)),
                ("streams", json!(live.spec.streams)),
            ],
        );
        if let Some(o) = live.orders.as_ref().filter(|_| live.trade) {
            log::emit(
                Level::Debug,
                TRADE,
                "order entry",
                vec![
                    ("ws_api_url", o.ws_api_url.clone().into()),
                    ("key_kind", format!("{:?}", o.credentials.kind).into()),
                    ("api_key_env", o.credentials.api_key_env.clone().into()),
                    ("secret_env", o.credentials.secret_env.clone().into()),
                    ("exit_policy", settings.exit.as_str().into()),
                ],
            );
        }
    }
}

/// The run of `command` ended with `report`: its connections, books, orders and end summary.
pub fn ended(command: &'static str, report: &PipelineReport) {
    if let Some(reason) = report.control.killed {
        log::emit(
            Level::Error,
            TRADE,
            format!("kill switch on ({reason}): no new orders, open ones cancelled"),
            vec![
                ("reason", reason.as_str().to_owned().into()),
                (
                    "control_cancels",
                    report.control.stats.control_cancels.into(),
                ),
            ],
        );
    }
    let instruments = &report.input.instruments;
    let name = |id: pinion_core::InstrumentId| {
        instruments.get(id).map_or_else(
            || format!("#{}", id.0),
            |s| format!("{} {}", s.venue, s.symbol),
        )
    };
    if let Some(live) = &report.input.live {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (i, c) in live.conns.iter().enumerate() {
            let reconnects = load(&c.reconnects);
            let level = if reconnects > 0 {
                Level::Warn
            } else {
                Level::Info
            };
            log::emit(
                level,
                LIVE,
                format!(
                    "connection {i}: {} opens, {reconnects} reconnects",
                    load(&c.opens)
                ),
                vec![
                    ("connection", i.into()),
                    ("attempts", load(&c.attempts).into()),
                    ("opens", load(&c.opens).into()),
                    ("reconnects", reconnects.into()),
                    ("frames", load(&c.frames).into()),
                    ("refused", load(&c.refused).into()),
                    ("idle_timeouts", load(&c.idle_timeouts).into()),
                ],
            );
        }
        log::emit(
            Level::Info,
            LIVE,
            "snapshots",
            vec![
                ("requests", load(&live.snapshot_requests).into()),
                ("taken", load(&live.snapshots).into()),
                ("failures", load(&live.snapshot_failures).into()),
                ("gaps_filled", load(&live.gaps_filled).into()),
                ("gaps_unfilled", load(&live.gaps_unfilled).into()),
            ],
        );
    }
    for b in &report.books {
        let c = &b.counters;
        let resyncs = c.resyncs;
        if resyncs > 0 || c.gaps > 0 {
            log::emit(
                Level::Warn,
                LIVE,
                format!("{}: {resyncs} resyncs, {} gaps", name(b.instrument), c.gaps),
                vec![
                    ("instrument", name(b.instrument).into()),
                    ("snapshots", c.snapshots.into()),
                    ("resyncs", resyncs.into()),
                    ("gaps", c.gaps.into()),
                    ("crossed", c.crossed.into()),
                    ("state", format!("{:?}", b.state).into()),
                ],
            );
        }
    }
    for t in &report.trading {
        let s = &t.stats;
        if t.gate.refused > 0 || s.venue_rejects > 0 {
            log::emit(
                Level::Warn,
                TRADE,
                format!(
                    "{}: {} orders refused by the risk gate, {} by the venue",
                    name(t.instrument),
                    t.gate.refused,
                    s.venue_rejects
                ),
                vec![
                    ("instrument", name(t.instrument).into()),
                    ("risk_refused", t.gate.refused.into()),
                    ("rate_limited", t.gate.rate_limited.into()),
                    ("venue_rejects", s.venue_rejects.into()),
                    ("throttled", s.throttled.into()),
                ],
            );
        }
    }
    if !report.input.accounts.is_empty() {
        for a in accounts_json(report).as_array().into_iter().flatten() {
            let s = &a["session"];
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            let trouble =
                n("disconnects") + n("logon_refused") + n("rate_refused") + n("breaker_opened");
            let mut fields: Vec<(&'static str, Value)> = vec![("symbol", a["symbol"].clone())];
            for k in [
                "connects",
                "disconnects",
                "logon_refused",
                "requests",
                "rate_refused",
                "breaker_opened",
                "breaker_refused",
                "reconciled_fills",
            ] {
                fields.push((k, n(k).into()));
            }
            fields.push(("orders", a["orders"].as_array().map_or(0, Vec::len).into()));
            log::emit(
                if trouble > 0 {
                    Level::Warn
                } else {
                    Level::Info
                },
                TRADE,
                "order session",
                fields,
            );
        }
    }
    let orders: u64 = report.trading.iter().map(|t| t.stats.orders).sum();
    let fills: u64 = report.trading.iter().map(|t| t.stats.fills).sum();
    log::emit(
        Level::Info,
        RUN,
        format!("pinion {command} ended"),
        vec![
            ("command", command.into()),
            ("wall_s", report.run.wall.as_secs_f64().into()),
            ("orders", orders.into()),
            ("fills", fills.into()),
            ("damaged", report.damage().is_damaged().into()),
            ("log_records_dropped", log::dropped().into()),
        ],
    );
}

/// How often [`LiveWatch`] reads the counters.
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

/// A thread that reads a live source's counters a few times a second, the way the metrics
/// thread does (relaxed loads of what the feed stage and the order sessions already publish),
/// and logs each change as it comes: a connection opened or reopened, a snapshot taken or
/// failed, a gap that makes a book resync, an order session's logon, loss, refusals (rate,
/// authorisation, ban) and circuit breaker. No stage knows or waits; a change is logged within
/// a fifth of a second, several of one kind in one period as one record with the count.
#[derive(Debug)]
pub struct LiveWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The counters [`LiveWatch`] follows, as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Seen {
    /// Per connection: opens, reconnects, refused, idle timeouts.
    conns: Vec<[u64; 4]>,
    /// Snapshots taken, failed, gaps unfilled, watchdog re-requests, REST 429/418.
    source: [u64; 5],
    /// Per order session: the counters of [`SESSION`].
    sessions: Vec<[u64; 7]>,
}

/// An order session's counters the watch logs: name, level, message.
const SESSION: [(&str, Level, &str); 7] = [
    ("connects", Level::Info, "order session connected"),
    (
        "disconnects",
        Level::Warn,
        "order session lost, reconnecting",
    ),
    ("logon_refused", Level::Error, "order session logon refused"),
    (
        "rate_refused",
        Level::Warn,
        "orders refused for the rate limit",
    ),
    (
        "unauthorized",
        Level::Error,
        "orders refused: not authorised",
    ),
    ("banned", Level::Error, "the venue banned this IP (418)"),
    (
        "breaker_opened",
        Level::Warn,
        "circuit breaker opened: orders held",
    ),
];

type Sessions = [(pinion_core::InstrumentId, std::sync::Arc<SessionMirror>)];

fn read_sessions(sessions: &Sessions) -> Vec<[u64; 7]> {
    sessions
        .iter()
        .map(|(_, m)| {
            let s = m.stats();
            [
                s.connects,
                s.disconnects,
                s.logon_refused,
                s.rate_refused,
                s.unauthorized,
                s.banned,
                s.breaker_opened,
            ]
        })
        .collect()
}

fn read(live: &pinion_feed::live::LiveCounters) -> Seen {
    use std::sync::atomic::Ordering::Relaxed;
    Seen {
        sessions: Vec::new(),
        conns: live
            .conns
            .iter()
            .map(|c| {
                [
                    c.opens.load(Relaxed),
                    c.reconnects.load(Relaxed),
                    c.refused.load(Relaxed),
                    c.idle_timeouts.load(Relaxed),
                ]
            })
            .collect(),
        source: [
            live.snapshots.load(Relaxed),
            live.snapshot_failures.load(Relaxed),
            live.gaps_unfilled.load(Relaxed),
            live.snapshot_watchdog.load(Relaxed),
            live.rest_rate_limited.load(Relaxed),
        ],
    }
}

/// Logs what changed from `before` to `now`; `names` are the order sessions' instruments.
fn log_changes(before: &Seen, now: &Seen, names: &[String]) {
    for ((b, n), name) in before.sessions.iter().zip(&now.sessions).zip(names) {
        for (k, &(counter, level, msg)) in SESSION.iter().enumerate() {
            if n[k] > b[k] {
                log::emit(
                    level,
                    TRADE,
                    format!("{name}: {msg}"),
                    vec![
                        ("instrument", name.clone().into()),
                        ("new", (n[k] - b[k]).into()),
                        (counter, n[k].into()),
                    ],
                );
            }
        }
    }
    const CONN: [(&str, Level, &str); 4] = [
        ("opens", Level::Info, "connected"),
        ("reconnects", Level::Warn, "connection lost, reconnecting"),
        ("refused", Level::Warn, "request refused by the venue"),
        (
            "idle_timeouts",
            Level::Warn,
            "nothing read for the idle timeout",
        ),
    ];
    for (i, (b, n)) in before.conns.iter().zip(&now.conns).enumerate() {
        for (k, &(name, level, msg)) in CONN.iter().enumerate() {
            if n[k] > b[k] {
                log::emit(
                    level,
                    LIVE,
                    format!("connection {i}: {msg}"),
                    vec![
                        ("connection", i.into()),
                        ("new", (n[k] - b[k]).into()),
                        (name, n[k].into()),
                    ],
                );
            }
        }
    }
    const SOURCE: [(&str, Level, &str); 5] = [
        ("snapshots", Level::Info, "book snapshot taken"),
        ("snapshot_failures", Level::Warn, "book snapshot failed"),
        (
            "gaps_unfilled",
            Level::Warn,
            "gap in the stream: the book resyncs",
        ),
        (
            "snapshot_watchdog",
            Level::Warn,
            "a book stayed unsynced: snapshot again",
        ),
        (
            "rest_rate_limited",
            Level::Warn,
            "REST request rate-limited (429/418)",
        ),
    ];
    for (k, &(name, level, msg)) in SOURCE.iter().enumerate() {
        let (b, n) = (before.source[k], now.source[k]);
        if n > b {
            log::emit(
                level,
                LIVE,
                msg,
                vec![("new", (n - b).into()), (name, n.into())],
            );
        }
    }
}

impl LiveWatch {
    /// Starts following `live` and the order `sessions` (with `instruments` for their names),
    /// if the log keeps records of either (else `None`: no thread).
    pub fn start(
        live: std::sync::Arc<pinion_feed::live::LiveCounters>,
        sessions: Vec<(pinion_core::InstrumentId, std::sync::Arc<SessionMirror>)>,
        instruments: &pinion_core::Instruments,
    ) -> Option<Self> {
        if !log::enabled(Level::Error, LIVE) && !log::enabled(Level::Error, TRADE) {
            return None;
        }
        let names: Vec<String> = sessions
            .iter()
            .map(|(id, _)| {
                instruments.get(*id).map_or_else(
                    || format!("#{}", id.0),
                    |s| format!("{} {}", s.venue, s.symbol),
                )
            })
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pinion-watch".into())
            .spawn(move || {
                let mut seen = Seen {
                    conns: vec![[0; 4]; live.conns.len()],
                    source: [0; 5],
                    sessions: vec![[0; 7]; sessions.len()],
                };
                loop {
                    let done = flag.load(std::sync::atomic::Ordering::Acquire);
                    let mut now = read(&live);
                    now.sessions = read_sessions(&sessions);
                    log_changes(&seen, &now, &names);
                    seen = now;
                    if done {
                        break;
                    }
                    std::thread::park_timeout(WATCH_PERIOD);
                }
            })
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Reads the counters a last time and stops.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, std::sync::atomic::Ordering::Release);
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for LiveWatch {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_reads_what_the_feed_publishes() {
        use std::sync::atomic::Ordering::Relaxed;
        let live = pinion_feed::live::LiveCounters {
            conns: (0..2).map(|_| Default::default()).collect(),
            ..Default::default()
        };
        live.conns[1].reconnects.store(3, Relaxed);
        live.conns[0].opens.store(1, Relaxed);
        live.gaps_unfilled.store(2, Relaxed);
        let seen = read(&live);
        assert_eq!(seen.conns, [[1, 0, 0, 0], [0, 3, 0, 0]]);
        assert_eq!(seen.source, [0, 0, 2, 0, 0]);
    }
}
