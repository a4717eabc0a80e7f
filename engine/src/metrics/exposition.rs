//! Prometheus text exposition, format 0.0.4: each family once, with its `# HELP` and `# TYPE`
//! lines, then its samples. Names follow the conventions: `pinion_` first, counters end in
//! `_total`, units are base units in the name (`_seconds`, `_bytes`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use pinion_core::InstrumentId;
use pinion_feed::live::ConnCounters;
use pinion_gateway::binance::SessionStats;
use pinion_gateway::binance::limits::WindowUsage;
use pinion_gateway::binance::mirror::BreakerPhase;

use super::{BookState, Sources};

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le=...}`), `_sum` and `_count`.
    Histogram,
}

impl MetricKind {
    const fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// A family the engine exports: its name, type and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// One line saying what it counts.
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: MetricKind::Counter,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: MetricKind::Gauge,
        help,
    }
}

const INFO: Family = gauge(
    "pinion_info",
    "Always 1; the command that runs (replay or live).",
);
const UPTIME: Family = gauge("pinion_uptime_seconds", "Seconds since the run started.");
const THREADS: Family = gauge("pinion_stage_threads", "Stage threads planned.");
const THREADS_RUNNING: Family = gauge(
    "pinion_stage_threads_running",
    "Stage threads running now (0 once the stages have finished).",
);
const RECORDS: Family = counter(
    "pinion_feed_records_total",
    "Records the feed stage has read.",
);
const ORDERS: Family = counter(
    "pinion_gateway_orders_sent_total",
    "Orders the gateway stage has sent to its venues.",
);
const STAGE_MESSAGES: Family = counter(
    "pinion_stage_messages_total",
    "Messages a stage has handled (feed: events decoded; book: events applied; strategy: views, \
     trades and reports; gateway: orders, cancels and reports).",
);
const STAGE_ERRORS: Family = counter(
    "pinion_stage_errors_total",
    "Bad input and refusals a stage counted (feed: decode, source and unknown-venue problems; \
     book: lost syncs and events without a book; strategy: intents the risk gate refused; \
     gateway: orders for an unknown instrument).",
);
const STAGE_BACKPRESSURE: Family = counter(
    "pinion_stage_backpressure_total",
    "Times a stage found its output ring full.",
);
const STAGE_QUEUED: Family = gauge(
    "pinion_stage_input_queued",
    "Messages waiting in a stage's input ring when it last looked (ring occupancy).",
);
const RING_CAPACITY: Family = gauge(
    "pinion_ring_capacity",
    "Slots of each ring between the stages.",
);
const LATENCY: Family = Family {
    name: "pinion_latency_seconds",
    kind: MetricKind::Histogram,
    help: "The stages' latency histograms (the report's names: tick_to_trade, hop.*, *.service, \
           ...), in seconds, since the run started.",
};
/// The histogram's upper bounds, ns: 1-2-5 steps from 1 µs to 10 s.
const LATENCY_BOUNDS_NS: [u64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

const BOOK_STATE: Family = gauge(
    "pinion_book_state",
    "1 for the book's current sync state (awaiting_snapshot, syncing, live), 0 for the others.",
);
const BOOK_LIVE: Family = gauge(
    "pinion_book_live",
    "1 when the book follows the venue message by message.",
);
const BOOK_LOSSES: Family = counter(
    "pinion_book_sync_losses_total",
    "Times the book lost its sync (gap, crossed book, reconnect...).",
);
const BOOK_SNAPSHOT_REQUESTS: Family = counter(
    "pinion_book_snapshot_requests_total",
    "Snapshots the book stage asked the live source for, by book.",
);

/// Where a whole-source counter of a live input is.
type SourceCounter = fn(&pinion_feed::live::LiveCounters) -> &AtomicU64;
/// Where a connection's counter is.
type ConnCounter = fn(&ConnCounters) -> &AtomicU64;
/// An order session's counter.
type SessionCounter = fn(&SessionStats) -> u64;

/// The whole-source counters of a live input: (family, counter).
const LIVE: [(Family, SourceCounter); 9] = [
    (
        counter(
            "pinion_live_snapshot_requests_total",
            "Snapshots the book stage asked for.",
        ),
        |c| &c.snapshot_requests,
    ),
    (
        counter(
            "pinion_live_snapshots_total",
            "Snapshots handed to the book.",
        ),
        |c| &c.snapshots,
    ),
    (
        counter(
            "pinion_live_snapshot_failures_total",
            "Snapshot fetches that failed.",
        ),
        |c| &c.snapshot_failures,
    ),
    (
        counter(
            "pinion_live_snapshot_watchdog_total",
            "Snapshots given again because a book stayed unsynced.",
        ),
        |c| &c.snapshot_watchdog,
    ),
    (
        counter(
            "pinion_live_rotations_total",
            "Make-before-break connection rotations done.",
        ),
        |c| &c.rotations,
    ),
    (
        counter(
            "pinion_live_gaps_filled_total",
            "Redundant feeds: gaps on one feed that the other filled.",
        ),
        |c| &c.gaps_filled,
    ),
    (
        counter(
            "pinion_live_gaps_unfilled_total",
            "Redundant feeds: gaps neither feed filled in time.",
        ),
        |c| &c.gaps_unfilled,
    ),
    (
        counter(
            "pinion_live_rest_weight_total",
            "REST request weight spent against the venue's limit.",
        ),
        |c| &c.rest_weight,
    ),
    (
        counter(
            "pinion_live_rest_rate_limited_total",
            "REST answers 429 or 418 (rate limited or banned).",
        ),
        |c| &c.rest_rate_limited,
    ),
];

/// The per-connection counters of a live input: (family, counter).
const CONN: [(Family, ConnCounter); 17] = [
    (
        counter(
            "pinion_live_connection_attempts_total",
            "Connection attempts.",
        ),
        |c| &c.attempts,
    ),
    (
        counter(
            "pinion_live_connection_opens_total",
            "Times the connection opened.",
        ),
        |c| &c.opens,
    ),
    (
        counter(
            "pinion_live_connection_reconnects_total",
            "Times the connection was lost or closed and reopened.",
        ),
        |c| &c.reconnects,
    ),
    (
        counter(
            "pinion_live_connection_frames_total",
            "Data frames received.",
        ),
        |c| &c.frames,
    ),
    (
        counter(
            "pinion_live_connection_received_bytes_total",
            "Payload bytes received.",
        ),
        |c| &c.bytes,
    ),
    (
        counter(
            "pinion_live_connection_subscribes_total",
            "Subscription messages sent.",
        ),
        |c| &c.subscribes,
    ),
    (
        counter(
            "pinion_live_connection_ack_timeouts_total",
            "Subscription acks that never came in time.",
        ),
        |c| &c.ack_timeouts,
    ),
    (
        counter(
            "pinion_live_connection_refused_total",
            "Requests the venue refused.",
        ),
        |c| &c.refused,
    ),
    (
        counter(
            "pinion_live_connection_idle_timeouts_total",
            "Times nothing at all was read for the idle timeout.",
        ),
        |c| &c.idle_timeouts,
    ),
    (
        counter(
            "pinion_live_connection_stale_streams_total",
            "Streams found silent while others flowed.",
        ),
        |c| &c.stale_streams,
    ),
    (
        counter(
            "pinion_live_connection_resyncs_total",
            "Times the books this connection fed were told to resynchronise (lost, or a stream stale).",
        ),
        |c| &c.resyncs,
    ),
    (
        counter(
            "pinion_live_connection_pings_total",
            "Application pings sent.",
        ),
        |c| &c.pings,
    ),
    (
        counter(
            "pinion_live_connection_server_shutdowns_total",
            "serverShutdown notices received.",
        ),
        |c| &c.shutdown_notices,
    ),
    (
        counter(
            "pinion_live_connection_policy_closes_total",
            "Closes for a policy violation (1008).",
        ),
        |c| &c.policy_closes,
    ),
    (
        counter(
            "pinion_live_connection_first_arrivals_total",
            "Redundant feeds: messages this feed brought first.",
        ),
        |c| &c.first_arrivals,
    ),
    (
        counter(
            "pinion_live_connection_duplicates_total",
            "Redundant feeds: messages this feed brought after the other.",
        ),
        |c| &c.duplicates,
    ),
    (
        counter(
            "pinion_live_connection_leads_total",
            "Redundant feeds: messages on which this feed led the other.",
        ),
        |c| &c.leads,
    ),
];

/// An order session's counters (`pinion live --trade`): (family, counter).
const SESSION: [(Family, SessionCounter); 20] = [
    (
        counter(
            "pinion_order_session_connects_total",
            "Order session connection attempts.",
        ),
        |s| s.connects,
    ),
    (
        counter(
            "pinion_order_session_reconciled_total",
            "Times the order session became ready (logged on, subscribed, reconciled).",
        ),
        |s| s.ready,
    ),
    (
        counter(
            "pinion_order_session_disconnects_total",
            "Order session connections lost or closed.",
        ),
        |s| s.disconnects,
    ),
    (
        counter(
            "pinion_order_session_logons_refused_total",
            "Logons refused (the key, its permissions, or its IP).",
        ),
        |s| s.logon_refused,
    ),
    (
        counter("pinion_order_session_requests_total", "Requests written."),
        |s| s.requests,
    ),
    (
        counter(
            "pinion_order_session_answers_total",
            "Answers matched to a request.",
        ),
        |s| s.answers,
    ),
    (
        counter(
            "pinion_order_session_bad_frames_total",
            "Frames that could not be read, or answers to no request of ours.",
        ),
        |s| s.bad_frames,
    ),
    (
        counter(
            "pinion_order_session_refused_not_ready_total",
            "Order intents refused because the session was not ready.",
        ),
        |s| s.not_connected,
    ),
    (
        counter(
            "pinion_order_session_refused_rate_total",
            "Order intents refused by the rate-limit model before sending.",
        ),
        |s| s.rate_refused,
    ),
    (
        counter(
            "pinion_order_session_foreign_open_orders_total",
            "Orders this run did not place found open on the first connect.",
        ),
        |s| s.foreign_open,
    ),
    (
        counter(
            "pinion_order_session_cancel_all_total",
            "openOrders.cancelAll requests sent.",
        ),
        |s| s.cancel_all,
    ),
    (
        counter(
            "pinion_order_session_reconciled_fills_total",
            "Fills learnt from myTrades during reconciliation.",
        ),
        |s| s.reconciled_fills,
    ),
    (
        counter(
            "pinion_order_session_status_queries_total",
            "order.status queries sent.",
        ),
        |s| s.status_queries,
    ),
    (
        counter(
            "pinion_order_session_rate_limited_total",
            "Answers 429: a request class stopped until retryAfter.",
        ),
        |s| s.rate_limited,
    ),
    (
        counter(
            "pinion_order_session_banned_total",
            "Answers 418: the IP banned until it lifts.",
        ),
        |s| s.banned,
    ),
    (
        counter(
            "pinion_order_session_unauthorized_total",
            "Answers saying the key may not do this (-2015).",
        ),
        |s| s.unauthorized,
    ),
    (
        counter(
            "pinion_order_session_limit_drift_total",
            "Answers whose rateLimits counts differed from the local model's prediction.",
        ),
        |s| s.limit_drift,
    ),
    (
        counter(
            "pinion_order_session_limit_checks_total",
            "Answers whose rateLimits counts were compared with the local model.",
        ),
        |s| s.limit_checks,
    ),
    (
        counter(
            "pinion_order_session_breaker_opened_total",
            "Times the circuit breaker in front of new orders opened.",
        ),
        |s| s.breaker_opened,
    ),
    (
        counter(
            "pinion_order_session_breaker_refused_total",
            "New orders refused while the circuit breaker was open.",
        ),
        |s| s.breaker_refused,
    ),
];

const SESSION_READY: Family = gauge(
    "pinion_order_session_ready",
    "1 when the order session is logged on, subscribed and reconciled.",
);
const SESSION_ERROR: Family = gauge(
    "pinion_order_session_last_error_code",
    "The last error code the exchange answered (0: none).",
);

const SESSION_LIMIT_USED: Family = gauge(
    "pinion_order_session_rate_limit_used",
    "The local model's count in the current window of each exchange rate limit (kind, window).",
);
const SESSION_LIMIT_MAX: Family = gauge(
    "pinion_order_session_rate_limit_max",
    "The exchange's limit of each rate-limit window (kind, window).",
);
const SESSION_BREAKER: Family = gauge(
    "pinion_order_session_breaker_state",
    "1 for the circuit breaker's current state: closed (orders flow), open (new orders \
     refused), half_open (one probe order may go).",
);

const CONN_LEAD: Family = counter(
    "pinion_live_connection_lead_seconds_total",
    "Redundant feeds: the sum of this feed's leads over the other.",
);
const CONN_UP: Family = gauge(
    "pinion_live_connection_up",
    "1 while the connection (or the rotation twin serving it) is open.",
);
const CONN_AGE: Family = gauge(
    "pinion_live_connection_last_message_age_seconds",
    "Seconds since the connection last brought a message (absent before the first).",
);
const CONN_CLOSE_CODE: Family = gauge(
    "pinion_live_connection_last_close_code",
    "The last WebSocket close code the server sent (0: none).",
);

const KILLED: Family = gauge(
    "pinion_kill_switch",
    "1 while the kill switch is on (no new orders; open ones were cancelled), with its reason.",
);
const PAUSED: Family = gauge(
    "pinion_trading_paused",
    "1 while an operator has paused the strategies' decisions.",
);
const CONTROL_CANCELS: Family = counter(
    "pinion_control_cancels_total",
    "Cancels sent by a kill or a cancel-all rather than by a strategy.",
);
const FLATTEN_RUNS: Family = counter(
    "pinion_flatten_runs_total",
    "Flatten and de-risk runs ended, by instrument and outcome (done: the position reached its target; deadline_passed).",
);
const FLATTENING: Family = gauge(
    "pinion_flatten_active",
    "1 while a flatten or de-risk run of the instrument is under way.",
);
const POSITION: Family = gauge(
    "pinion_position",
    "Signed position, in the instrument's base unit (contracts for futures).",
);
const REALIZED: Family = gauge(
    "pinion_realized_pnl",
    "Realised PnL before fees, in the quote asset (the base asset for inverse contracts).",
);
const UNREALIZED: Family = gauge(
    "pinion_unrealized_pnl",
    "PnL of the open position marked at the mid, in the quote asset (base for inverse contracts).",
);
const FEES: Family = gauge(
    "pinion_fees_paid",
    "Fees paid (negative: rebates received), in the quote asset (base for inverse contracts).",
);
const NET: Family = gauge(
    "pinion_net_pnl",
    "Realised plus unrealised PnL less fees, in the quote asset (base for inverse contracts).",
);
const OPEN_ORDERS: Family = gauge(
    "pinion_open_orders",
    "Orders sent and not yet known closed.",
);
const FILLS: Family = counter("pinion_fills_total", "Fills applied to the position.");
const ORDER_OUTCOMES: Family = counter(
    "pinion_orders_total",
    "The strategies' orders by outcome: sent, cancel_sent, refused_by_risk (the risk gate), \
     rejected_by_venue.",
);
const STRATEGY_POSITION: Family = gauge(
    "pinion_strategy_position",
    "Signed position of one strategy instance's own fills, in the instrument's base unit; the \
     instances of an instrument add up to pinion_position less the stage's closing and the \
     operator's orders.",
);
const STRATEGY_REALIZED: Family = gauge(
    "pinion_strategy_realized_pnl",
    "One strategy instance's realised PnL before fees, in the quote asset (base for inverse contracts).",
);
const STRATEGY_UNREALIZED: Family = gauge(
    "pinion_strategy_unrealized_pnl",
    "One strategy instance's open position marked at the instrument's mid, in the quote asset.",
);
const STRATEGY_FEES: Family = gauge(
    "pinion_strategy_fees_paid",
    "Fees one strategy instance's fills paid (negative: rebates), in the quote asset.",
);
const STRATEGY_NET: Family = gauge(
    "pinion_strategy_net_pnl",
    "One strategy instance's realised plus unrealised PnL less fees, in the quote asset.",
);
const STRATEGY_OPEN_ORDERS: Family = gauge(
    "pinion_strategy_open_orders",
    "One strategy instance's orders sent and not yet known closed.",
);
const STRATEGY_FILLS: Family = counter(
    "pinion_strategy_fills_total",
    "Fills of one strategy instance's orders.",
);
const STRATEGY_ORDERS: Family = counter(
    "pinion_strategy_orders_total",
    "One strategy instance's orders by outcome: sent, cancel_sent, refused_by_risk (its own \
     budget, the account's gate or self-trade prevention), rejected_by_venue.",
);

/// One of the operator bot's counters.
type BotCounter = fn(&crate::bot::BotStats) -> u64;

/// The operator bot's counters: (family, what of its stats).
const BOT: [(Family, BotCounter); 8] = [
    (
        counter(
            "pinion_bot_updates_total",
            "Messages the operator bot received, from anyone.",
        ),
        |s| s.updates,
    ),
    (
        counter(
            "pinion_bot_commands_total",
            "Commands the operator bot carried out for its configured users.",
        ),
        |s| s.commands,
    ),
    (
        counter(
            "pinion_bot_ignored_total",
            "Messages from users the bot is not configured to answer, refused unanswered.",
        ),
        |s| s.ignored,
    ),
    (
        counter("pinion_bot_alerts_total", "Alerts the operator bot raised."),
        |s| s.alerts,
    ),
    (
        counter("pinion_bot_sent_total", "Messages the operator bot sent."),
        |s| s.sent,
    ),
    (
        counter(
            "pinion_bot_send_failures_total",
            "Sends to the Bot API that failed.",
        ),
        |s| s.send_failures,
    ),
    (
        counter(
            "pinion_bot_poll_failures_total",
            "getUpdates polls of the Bot API that failed.",
        ),
        |s| s.poll_failures,
    ),
    (
        gauge(
            "pinion_bot_pending",
            "Notes waiting to be sent (the API's pace or an outage holds them).",
        ),
        |s| s.pending,
    ),
];

/// Every family the engine can export (those of a live input only when the input is live, those
/// of order sessions only when trading, the bot's only when it runs).
pub fn families() -> Vec<Family> {
    let mut all = vec![
        INFO,
        UPTIME,
        THREADS,
        THREADS_RUNNING,
        RECORDS,
        ORDERS,
        STAGE_MESSAGES,
        STAGE_ERRORS,
        STAGE_BACKPRESSURE,
        STAGE_QUEUED,
        RING_CAPACITY,
        LATENCY,
        BOOK_STATE,
        BOOK_LIVE,
        BOOK_LOSSES,
        BOOK_SNAPSHOT_REQUESTS,
    ];
    all.extend(LIVE.iter().map(|(f, _)| *f));
    all.extend(CONN.iter().map(|(f, _)| *f));
    all.extend([CONN_UP, CONN_AGE, CONN_LEAD, CONN_CLOSE_CODE]);
    all.push(SESSION_READY);
    all.extend(SESSION.iter().map(|(f, _)| *f));
    all.extend([
        SESSION_ERROR,
        SESSION_LIMIT_USED,
        SESSION_LIMIT_MAX,
        SESSION_BREAKER,
    ]);
    all.extend([
        KILLED,
        PAUSED,
        CONTROL_CANCELS,
        POSITION,
        REALIZED,
        UNREALIZED,
        FEES,
        NET,
        OPEN_ORDERS,
        FILLS,
        ORDER_OUTCOMES,
        FLATTEN_RUNS,
        FLATTENING,
        STRATEGY_POSITION,
        STRATEGY_REALIZED,
        STRATEGY_UNREALIZED,
        STRATEGY_FEES,
        STRATEGY_NET,
        STRATEGY_OPEN_ORDERS,
        STRATEGY_FILLS,
        STRATEGY_ORDERS,
    ]);
    all.extend(BOT.iter().map(|(f, _)| *f));
    all
}

/// Writes families and samples into a string.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, f: &Family) {
        let _ = writeln!(self.text, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(self.text, "# TYPE {} {}", f.name, f.kind.name());
    }

    fn sample(&mut self, f: &Family, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.sample_as(f.name, labels, value);
    }

    /// A sample of a family's series named apart from it (a histogram's `_bucket`, `_sum`,
    /// `_count`).
    fn sample_as(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"");
                escape_label(&mut self.text, v);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn single(&mut self, f: &Family, value: impl std::fmt::Display) {
        self.family(f);
        self.sample(f, &[], value);
    }
}

/// A HELP text escapes backslashes and line feeds.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value escapes backslashes, double quotes and line feeds.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Each stage's running counters, the rings' size and the latency histograms.
fn stages(out: &mut Out, src: &Sources) {
    if src.stages.is_empty() {
        return;
    }
    let counts: Vec<(&str, crate::runtime::LiveCounts)> =
        src.stages.iter().map(|s| (s.name(), s.load())).collect();
    out.family(&STAGE_MESSAGES);
    for (name, c) in &counts {
        out.sample(&STAGE_MESSAGES, &[("stage", name)], c.messages);
    }
    out.family(&STAGE_ERRORS);
    for (name, c) in &counts {
        out.sample(&STAGE_ERRORS, &[("stage", name)], c.errors);
    }
    out.family(&STAGE_BACKPRESSURE);
    for (name, c) in &counts {
        out.sample(&STAGE_BACKPRESSURE, &[("stage", name)], c.backpressure);
    }
    out.family(&STAGE_QUEUED);
    for (name, c) in counts.iter().filter(|(name, _)| *name != "feed") {
        out.sample(&STAGE_QUEUED, &[("stage", name)], c.input_queued);
    }
    out.single(&RING_CAPACITY, src.ring_capacity);
    out.family(&LATENCY);
    let bounds: Vec<String> = LATENCY_BOUNDS_NS
        .iter()
        .map(|ns| format!("{}", *ns as f64 / 1e9))
        .collect();
    // Several strategy stages record under the same names: one series each, added up.
    let mut names: Vec<&str> = Vec::with_capacity(src.latency.len());
    for h in &src.latency {
        if !names.contains(&h.name()) {
            names.push(h.name());
        }
    }
    for name in names {
        let mut b = crate::latency::LatencyBuckets::default();
        for h in src.latency.iter().filter(|h| h.name() == name) {
            b.add(&h.buckets(&LATENCY_BOUNDS_NS));
        }
        for (le, n) in bounds.iter().zip(&b.cumulative) {
            out.sample_as(
                "pinion_latency_seconds_bucket",
                &[("name", name), ("le", le)],
                n,
            );
        }
        out.sample_as(
            "pinion_latency_seconds_bucket",
            &[("name", name), ("le", "+Inf")],
            b.count,
        );
        out.sample_as(
            "pinion_latency_seconds_sum",
            &[("name", name)],
            format_args!("{:.9}", b.sum_ns as f64 / 1e9),
        );
        out.sample_as("pinion_latency_seconds_count", &[("name", name)], b.count);
    }
}

/// The exposition of everything `src` can read now.
pub fn render(src: &Sources) -> String {
    let mut out = Out {
        text: String::with_capacity(8 << 10),
    };
    out.family(&INFO);
    out.sample(&INFO, &[("command", src.command)], 1);
    out.single(&UPTIME, format_args!("{:.3}", src.uptime().as_secs_f64()));
    out.single(&THREADS, src.threads.len());
    out.single(&THREADS_RUNNING, src.threads_running());
    out.single(&RECORDS, src.progress.records());
    out.single(&ORDERS, src.progress.orders());
    stages(&mut out, src);

    let books: Vec<(InstrumentId, String, String, BookState)> = src
        .instruments
        .iter()
        .map(|(id, spec)| {
            (
                id,
                spec.venue.to_string(),
                spec.symbol.as_str().to_owned(),
                src.books.state(usize::from(id.0)),
            )
        })
        .filter(|b| b.3 != BookState::None)
        .collect();
    out.family(&BOOK_STATE);
    for (_, venue, sym, state) in &books {
        for s in [
            BookState::AwaitingSnapshot,
            BookState::Syncing,
            BookState::Live,
        ] {
            let labels = [
                ("venue", venue.as_str()),
                ("instrument", sym.as_str()),
                ("state", s.name()),
            ];
            out.sample(&BOOK_STATE, &labels, u8::from(*state == s));
        }
    }
    out.family(&BOOK_LIVE);
    for (_, venue, sym, state) in &books {
        let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
        out.sample(&BOOK_LIVE, &labels, u8::from(*state == BookState::Live));
    }
    out.family(&BOOK_LOSSES);
    for (id, venue, sym, _) in &books {
        let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
        out.sample(&BOOK_LOSSES, &labels, src.books.losses(usize::from(id.0)));
    }
    if let Some(requests) = &src.requests {
        out.family(&BOOK_SNAPSHOT_REQUESTS);
        for (id, venue, sym, _) in &books {
            let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
            out.sample(&BOOK_SNAPSHOT_REQUESTS, &labels, requests.requested(*id));
        }
    }

    if let Some(live) = &src.live {
        for (f, get) in &LIVE {
            out.single(f, get(live).load(Ordering::Relaxed));
        }
        let names: Vec<String> = (0..live.conns.len()).map(|i| i.to_string()).collect();
        for (f, get) in &CONN {
            out.family(f);
            for (c, name) in live.conns.iter().zip(&names) {
                out.sample(f, &[("conn", name)], get(c).load(Ordering::Relaxed));
            }
        }
        out.family(&CONN_UP);
        for (c, name) in live.conns.iter().zip(&names) {
            let up = c.connected.load(Ordering::Relaxed);
            out.sample(&CONN_UP, &[("conn", name)], up);
        }
        out.family(&CONN_AGE);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        for (c, name) in live.conns.iter().zip(&names) {
            let last = c.last_data_unix_ns.load(Ordering::Relaxed);
            if last > 0 {
                let age = wall.saturating_sub(last) as f64 / 1e9;
                out.sample(&CONN_AGE, &[("conn", name)], age);
            }
        }
        out.family(&CONN_LEAD);
        for (c, name) in live.conns.iter().zip(&names) {
            let secs = c.lead_ns.load(Ordering::Relaxed) as f64 / 1e9;
            out.sample(&CONN_LEAD, &[("conn", name)], secs);
        }
        out.family(&CONN_CLOSE_CODE);
        for (c, name) in live.conns.iter().zip(&names) {
            let code = c.last_close_code.load(Ordering::Relaxed);
            out.sample(&CONN_CLOSE_CODE, &[("conn", name)], code);
        }
    }
    if !src.sessions.is_empty() {
        let sessions: Vec<(String, String, bool, SessionStats)> = src
            .sessions
            .iter()
            .map(|(id, m)| {
                let (venue, sym) = src.instruments.get(*id).map_or_else(
                    || (String::new(), String::new()),
                    |s| (s.venue.to_string(), s.symbol.as_str().to_owned()),
                );
                (venue, sym, m.is_ready(), m.stats())
            })
            .collect();
        out.family(&SESSION_READY);
        for (venue, sym, ready, _) in &sessions {
            let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
            out.sample(&SESSION_READY, &labels, u8::from(*ready));
        }
        for (f, get) in &SESSION {
            out.family(f);
            for (venue, sym, _, stats) in &sessions {
                let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
                out.sample(f, &labels, get(stats));
            }
        }
        out.family(&SESSION_ERROR);
        for (venue, sym, _, stats) in &sessions {
            let labels = [("venue", venue.as_str()), ("instrument", sym.as_str())];
            out.sample(&SESSION_ERROR, &labels, stats.last_error);
        }
        session_limits(&mut out, src, &sessions);
    }
    if let Some(control) = &src.control {
        trading(&mut out, control);
    }
    if let Some(bot) = &src.bot {
        let stats = bot.stats();
        for (f, get) in &BOT {
            out.single(f, get(&stats));
        }
    }
    out.text
}

/// Each order session's rate-limit windows (used against the limit, rolled to the wall clock
/// now) and its circuit breaker's state.
fn session_limits(out: &mut Out, src: &Sources, sessions: &[(String, String, bool, SessionStats)]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let windows: Vec<Vec<(&'static str, String, WindowUsage)>> = src
        .sessions
        .iter()
        .map(|(_, m)| {
            m.limits()
                .into_iter()
                .map(|w| (limit_kind(w.kind), format!("{}s", w.window_ms / 1000), w))
                .collect()
        })
        .collect();
    for (f, used) in [(&SESSION_LIMIT_USED, true), (&SESSION_LIMIT_MAX, false)] {
        out.family(f);
        for ((venue, sym, _, _), ws) in sessions.iter().zip(&windows) {
            for (kind, window, w) in ws {
                let labels = [
                    ("venue", venue.as_str()),
                    ("instrument", sym.as_str()),
                    ("kind", kind),
                    ("window", window.as_str()),
                ];
                let v = if used { w.count_at(now_ms) } else { w.limit };
                out.sample(f, &labels, v);
            }
        }
    }
    out.family(&SESSION_BREAKER);
    for ((venue, sym, _, _), (_, m)) in sessions.iter().zip(&src.sessions) {
        let phase = m.breaker();
        for p in BreakerPhase::ALL {
            let labels = [
                ("venue", venue.as_str()),
                ("instrument", sym.as_str()),
                ("state", p.name()),
            ];
            out.sample(&SESSION_BREAKER, &labels, u8::from(phase == p));
        }
    }
}

/// A rate limit's kind as a label value.
fn limit_kind(k: pinion_feed::exchange_info::RateLimitKind) -> &'static str {
    use pinion_feed::exchange_info::RateLimitKind;
    match k {
        RateLimitKind::RequestWeight => "request_weight",
        RateLimitKind::Orders => "orders",
        RateLimitKind::RawRequests => "raw_requests",
    }
}

/// Reads one money figure of an account.
type MoneyOf = fn(&crate::control::AccountView) -> i64;

/// Reads one money figure of a strategy instance's account.
type InstanceMoneyOf = fn(&crate::control::InstanceView) -> i64;

/// The kill switch, the pause, each traded instrument's account and each strategy instance's,
/// from the control board alone: the trading part of [`render`].
pub fn render_trading(control: &crate::control::Control) -> String {
    let mut out = Out {
        text: String::with_capacity(4 << 10),
    };
    trading(&mut out, control);
    out.text
}

/// Each strategy instance's account on each traded instrument (labels `venue`, `instrument` and
/// `strategy`, the instance's name), from the instance board. The families are declared even
/// before the stage has laid the board out.
fn instances(
    out: &mut Out,
    control: &crate::control::Control,
    traded: &[(InstrumentId, &str, &str, f64, f64)],
) {
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        f64,
        f64,
        crate::control::InstanceView,
    );
    let rows: Vec<Row<'_>> = control
        .instances()
        .map(|board| {
            traded
                .iter()
                .flat_map(|&(id, venue, sym, q, m)| {
                    board
                        .read_all(id)
                        .map(move |(k, v)| (venue, sym, k.name.as_str(), q, m, v))
                })
                .collect()
        })
        .unwrap_or_default();
    out.family(&STRATEGY_POSITION);
    for (venue, sym, name, q, _, v) in &rows {
        let labels = [("venue", *venue), ("instrument", *sym), ("strategy", *name)];
        out.sample(&STRATEGY_POSITION, &labels, v.position as f64 / q);
    }
    let money: [(&Family, InstanceMoneyOf); 4] = [
        (&STRATEGY_REALIZED, |v| v.realized),
        (&STRATEGY_UNREALIZED, |v| v.unrealized),
        (&STRATEGY_FEES, |v| v.fees),
        (&STRATEGY_NET, |v| v.net()),
    ];
    for (f, get) in money {
        out.family(f);
        for (venue, sym, name, _, m, v) in &rows {
            out.sample(
                f,
                &[("venue", *venue), ("instrument", *sym), ("strategy", *name)],
                get(v) as f64 / m,
            );
        }
    }
    out.family(&STRATEGY_OPEN_ORDERS);
    for (venue, sym, name, _, _, v) in &rows {
        let labels = [("venue", *venue), ("instrument", *sym), ("strategy", *name)];
        out.sample(&STRATEGY_OPEN_ORDERS, &labels, v.open_orders);
    }
    out.family(&STRATEGY_FILLS);
    for (venue, sym, name, _, _, v) in &rows {
        let labels = [("venue", *venue), ("instrument", *sym), ("strategy", *name)];
        out.sample(&STRATEGY_FILLS, &labels, v.fills);
    }
    out.family(&STRATEGY_ORDERS);
    for (venue, sym, name, _, _, v) in &rows {
        for (outcome, n) in [
            ("sent", v.orders),
            ("cancel_sent", v.cancels),
            ("refused_by_risk", v.risk_rejects),
            ("rejected_by_venue", v.venue_rejects),
        ] {
            let labels = [
                ("venue", *venue),
                ("instrument", *sym),
                ("strategy", *name),
                ("outcome", outcome),
            ];
            out.sample(&STRATEGY_ORDERS, &labels, n);
        }
    }
}

/// The kill switch, the pause, and each traded instrument's account from the control board
/// (labels `venue` and `instrument`: a symbol may be traded on several venues at once).
fn trading(out: &mut Out, control: &crate::control::Control) {
    out.family(&KILLED);
    match control.kill_reason() {
        Some(r) => out.sample(&KILLED, &[("reason", r.as_str())], 1),
        None => out.sample(&KILLED, &[], 0),
    }
    out.single(&PAUSED, u8::from(control.paused()));
    out.single(&CONTROL_CANCELS, control.stats().control_cancels);
    let board = control.board();
    type Account<'a> = (
        InstrumentId,
        &'a str,
        &'a str,
        f64,
        f64,
        crate::control::AccountView,
    );
    let accounts: Vec<Account<'_>> = (0..board.len())
        .filter_map(|i| {
            let id = InstrumentId(i as u16);
            let (sym, _, qd, md) = board.name(id)?;
            let venue = board.venue(id)?;
            let v = board.read(id)?;
            // Written at least once: the instrument is traded and its stage has run.
            (v.at_ns > 0).then(|| {
                let q = 10f64.powi(i32::from(qd));
                (id, venue, sym, q, 10f64.powi(i32::from(md)), v)
            })
        })
        .collect();
    let money: [(&Family, MoneyOf); 4] = [
        (&REALIZED, |v| v.realized),
        (&UNREALIZED, |v| v.unrealized),
        (&FEES, |v| v.fees),
        (&NET, |v| v.net()),
    ];
    out.family(&POSITION);
    for (_, venue, sym, q, _, v) in &accounts {
        let labels = [("venue", *venue), ("instrument", *sym)];
        out.sample(&POSITION, &labels, v.position as f64 / q);
    }
    for (f, get) in money {
        out.family(f);
        for (_, venue, sym, _, m, v) in &accounts {
            let labels = [("venue", *venue), ("instrument", *sym)];
            out.sample(f, &labels, get(v) as f64 / m);
        }
    }
    out.family(&OPEN_ORDERS);
    for (_, venue, sym, _, _, v) in &accounts {
        let labels = [("venue", *venue), ("instrument", *sym)];
        out.sample(&OPEN_ORDERS, &labels, v.open_orders);
    }
    out.family(&FILLS);
    for (_, venue, sym, _, _, v) in &accounts {
        let labels = [("venue", *venue), ("instrument", *sym)];
        out.sample(&FILLS, &labels, v.fills);
    }
    out.family(&ORDER_OUTCOMES);
    for (_, venue, sym, _, _, v) in &accounts {
        for (outcome, n) in [
            ("sent", v.orders),
            ("cancel_sent", v.cancels),
            ("refused_by_risk", v.risk_rejects),
            ("rejected_by_venue", v.venue_rejects),
        ] {
            let labels = [
                ("venue", *venue),
                ("instrument", *sym),
                ("outcome", outcome),
            ];
            out.sample(&ORDER_OUTCOMES, &labels, n);
        }
    }
    let traded: Vec<(InstrumentId, &str, &str, f64, f64)> = accounts
        .iter()
        .map(|(id, venue, sym, q, m, _)| (*id, *venue, *sym, *q, *m))
        .collect();
    instances(out, control, &traded);
    let flattens = control.flattens();
    let runs: Vec<(&str, &str, crate::control::FlattenView)> = (0..flattens.len())
        .filter_map(|i| {
            let id = InstrumentId(i as u16);
            let (sym, ..) = board.name(id)?;
            Some((board.venue(id)?, sym, flattens.read(i)?))
        })
        .collect();
    out.family(&FLATTENING);
    for (venue, sym, v) in &runs {
        let labels = [("venue", *venue), ("instrument", *sym)];
        out.sample(&FLATTENING, &labels, u8::from(v.running.is_some()));
    }
    out.family(&FLATTEN_RUNS);
    for (venue, sym, v) in &runs {
        for (outcome, n) in [("done", v.done), ("deadline_passed", v.ended - v.done)] {
            let labels = [
                ("venue", *venue),
                ("instrument", *sym),
                ("outcome", outcome),
            ];
            out.sample(&FLATTEN_RUNS, &labels, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let all = families();
        for f in &all {
            assert!(f.name.starts_with("pinion_"), "{}", f.name);
            assert_eq!(
                f.kind == MetricKind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                f.name
            );
        }
        let mut names: Vec<_> = all.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a family twice");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
