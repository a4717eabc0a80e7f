//! Alerts: what changed since the last look, read off the control block and the published
//! counters every tick (a few loads; nothing on the hot path knows it is watched).
//!
//! - the kill switch, once, with its reason;
//! - each flatten or de-risk run's start and end ("flatten BTCUSDT: done, position 0", or
//!   "deadline passed, position 0.002 left");
//! - feed reconnects, unfilled gaps, order-session disconnects and books losing sync (each a
//!   count that went up);
//! - order sessions' answers 429 and 418 and circuit-breaker openings, and intents the risk
//!   gates refused (the strategy stage's published errors);
//! - fills, gathered for the coalescing window after the first one, then one note for all;
//! - heartbeat loss: a stage thread gone, or (live) no record for the heartbeat time; and its
//!   return;
//! - a periodic summary.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pinion_core::InstrumentId;
use pinion_strategy::ReasonCode;

use super::commands::{BotContext, Commands, fixed};
use crate::control::REASON_CODES;

/// What the watcher is told to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSettings {
    /// Fill alerts, gathered for this long (`None`: none).
    pub fills: Option<Duration>,
    /// No record for this long in a live run is a heartbeat loss (`None`: not watched).
    pub heartbeat: Option<Duration>,
    /// A summary this often (`None`: none).
    pub summary: Option<Duration>,
}

/// The counts last seen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Seen {
    reconnects: u64,
    gaps_unfilled: u64,
    session_disconnects: u64,
    /// Order sessions' answers 429 (a request class stopped until retryAfter).
    rate_limited: u64,
    /// Order sessions' answers 418 (the IP banned).
    banned: u64,
    /// Times an order session's circuit breaker opened.
    breaker_opened: u64,
    /// Intents the strategies' risk gates refused.
    refused: u64,
    losses: Vec<u64>,
    fills: Vec<u64>,
    /// Fills per instrument by the reason code of the order filled.
    fills_by_code: Vec<[u64; REASON_CODES]>,
    /// Flatten runs started and ended, per instrument.
    flattens: Vec<(u64, u64)>,
}

/// The watcher. See the module docs.
#[derive(Debug)]
pub struct Alerts {
    settings: AlertSettings,
    killed: bool,
    seen: Seen,
    fills_since: Option<Instant>,
    fills_reported: Vec<u64>,
    fills_reported_by_code: Vec<[u64; REASON_CODES]>,
    heartbeat_lost: bool,
    last_records: u64,
    records_moved: Instant,
    next_health: Instant,
    next_summary: Option<Instant>,
}

/// How often the stage threads are looked for (a read of `/proc/self/task`).
const HEALTH_EVERY: Duration = Duration::from_secs(1);

impl Alerts {
    /// Starts watching `ctx` from its current counts (nothing already counted is an alert).
    pub fn new(settings: AlertSettings, ctx: &BotContext, now: Instant) -> Self {
        let seen = read(ctx);
        Alerts {
            settings,
            killed: ctx.control.kill_reason().is_some(),
            fills_reported: seen.fills.clone(),
            fills_reported_by_code: seen.fills_by_code.clone(),
            seen,
            fills_since: None,
            heartbeat_lost: false,
            last_records: ctx.sources.as_ref().map_or(0, |s| s.progress.records()),
            records_moved: now,
            next_health: now,
            next_summary: settings.summary.map(|d| now + d),
        }
    }

    /// The alerts due at `now`.
    pub fn check(&mut self, commands: &Commands, now: Instant) -> Vec<String> {
        let ctx = commands.context();
        let mut out = Vec::new();
        if !self.killed
            && let Some(r) = ctx.control.kill_reason()
        {
            self.killed = true;
            out.push(format!("KILL SWITCH: trading killed ({r})."));
        }
        let now_seen = read(ctx);
        let up = |a: u64, b: u64| a.saturating_sub(b);
        let n = up(now_seen.reconnects, self.seen.reconnects);
        if n > 0 {
            out.push(format!(
                "Feed: {n} reconnect(s) ({} in all).",
                now_seen.reconnects
            ));
        }
        let n = up(now_seen.gaps_unfilled, self.seen.gaps_unfilled);
        if n > 0 {
            out.push(format!(
                "Feed: {n} gap(s) neither feed filled; books resync."
            ));
        }
        let n = up(now_seen.session_disconnects, self.seen.session_disconnects);
        if n > 0 {
            out.push(format!("Orders: {n} order session disconnect(s)."));
        }
        let n = up(now_seen.rate_limited, self.seen.rate_limited);
        if n > 0 {
            out.push(format!(
                "Orders: RATE LIMITED (429) {n} time(s); that request class waits for retryAfter."
            ));
        }
        let n = up(now_seen.banned, self.seen.banned);
        if n > 0 {
            out.push(format!(
                "Orders: IP BANNED (418) {n} time(s); no request until the ban lifts."
            ));
        }
        let n = up(now_seen.breaker_opened, self.seen.breaker_opened);
        if n > 0 {
            out.push(format!(
                "Orders: circuit breaker opened {n} time(s); new orders are refused while it is open."
            ));
        }
        let n = up(now_seen.refused, self.seen.refused);
        if n > 0 {
            out.push(format!(
                "Risk: {n} intent(s) refused by the risk limits ({} in all). /limits shows them.",
                now_seen.refused
            ));
        }
        let board = ctx.control.board();
        for (i, (&(started, ended), &(was_started, was_ended))) in now_seen
            .flattens
            .iter()
            .zip(&self.seen.flattens)
            .enumerate()
        {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            let (Some((_, _, q, _)), Some(sym), Some(v)) = (
                board.name(id),
                board.label(id),
                ctx.control.flattens().read(i),
            ) else {
                continue;
            };
            let what = |cause: pinion_strategy::FlattenCause| {
                if cause == pinion_strategy::FlattenCause::Derisk {
                    "de-risk"
                } else {
                    "flatten"
                }
            };
            if started > was_started
                && let Some(cause) = v.running
            {
                out.push(format!(
                    "{} {sym}: started ({}).",
                    what(cause),
                    cause.as_str()
                ));
            }
            if ended > was_ended
                && let Some((cause, outcome, left)) = v.last
            {
                out.push(match outcome {
                    pinion_strategy::FlattenOutcome::Done => {
                        format!("{} {sym}: done, position {}", what(cause), fixed(left.0, q))
                    }
                    pinion_strategy::FlattenOutcome::DeadlinePassed => format!(
                        "{} {sym}: deadline passed, position {} left",
                        what(cause),
                        fixed(left.0, q)
                    ),
                });
            }
        }
        for (i, (&now_l, &was)) in now_seen.losses.iter().zip(&self.seen.losses).enumerate() {
            if now_l > was {
                let name = board
                    .label(InstrumentId(u16::try_from(i).unwrap_or(u16::MAX)))
                    .unwrap_or_else(|| format!("#{i}"));
                out.push(format!(
                    "Book {name} lost sync {} time(s) ({now_l} in all); resyncing.",
                    now_l - was
                ));
            }
        }
        if let Some(window) = self.settings.fills {
            if self.fills_since.is_none() && now_seen.fills != self.fills_reported {
                self.fills_since = Some(now);
            }
            if self
                .fills_since
                .is_some_and(|t| now.saturating_duration_since(t) >= window)
            {
                self.fills_since = None;
                let mut parts = Vec::new();
                for (i, (&f, &was)) in now_seen.fills.iter().zip(&self.fills_reported).enumerate() {
                    if f <= was {
                        continue;
                    }
                    let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
                    if let (Some(v), Some((_, _, q, _)), Some(sym)) =
                        (board.read(id), board.name(id), board.label(id))
                    {
                        // What the fills were of: the reason codes that gained some.
                        let zero = [0; REASON_CODES];
                        let now_c = now_seen.fills_by_code.get(i).unwrap_or(&zero);
                        let was_c = self.fills_reported_by_code.get(i).unwrap_or(&zero);
                        let reasons: Vec<String> = ReasonCode::ALL
                            .iter()
                            .zip(now_c.iter().zip(was_c))
                            .filter(|(_, (n, w))| n > w)
                            .map(|(c, (n, w))| format!("{c} +{}", n - w))
                            .collect();
                        let mut part =
                            format!("{sym} +{} (position {}", f - was, fixed(v.position, q));
                        if !reasons.is_empty() {
                            part.push_str("; ");
                            part.push_str(&reasons.join(", "));
                        }
                        part.push(')');
                        parts.push(part);
                    }
                }
                self.fills_reported.clone_from(&now_seen.fills);
                self.fills_reported_by_code
                    .clone_from(&now_seen.fills_by_code);
                if !parts.is_empty() {
                    out.push(format!("Fills: {}", parts.join(", ")));
                }
            }
        }
        self.seen = now_seen;
        self.heartbeat(ctx, now, &mut out);
        if let Some(next) = self.next_summary
            && now >= next
        {
            self.next_summary = self.settings.summary.map(|d| now + d);
            out.push(format!(
                "Summary\n{}\n{}",
                commands.status(),
                commands.pnl()
            ));
        }
        out
    }

    fn heartbeat(&mut self, ctx: &BotContext, now: Instant, out: &mut Vec<String>) {
        let Some(s) = &ctx.sources else {
            return;
        };
        if s.ended.load(Ordering::Relaxed) || now < self.next_health {
            return;
        }
        self.next_health = now + HEALTH_EVERY;
        let records = s.progress.records();
        if records != self.last_records {
            self.last_records = records;
            self.records_moved = now;
        }
        let stalled = s.command == "live"
            && self
                .settings
                .heartbeat
                .is_some_and(|h| now.saturating_duration_since(self.records_moved) >= h);
        let problem = match s.health() {
            Err(e) => Some(e),
            Ok(()) if stalled => Some(format!(
                "no market data for {} s",
                now.saturating_duration_since(self.records_moved).as_secs()
            )),
            Ok(()) => None,
        };
        match (problem, self.heartbeat_lost) {
            (Some(why), false) => {
                self.heartbeat_lost = true;
                out.push(format!("HEARTBEAT LOST: {why}."));
            }
            (None, true) => {
                self.heartbeat_lost = false;
                out.push("Heartbeat back: the stages run and data flows.".to_owned());
            }
            _ => {}
        }
    }
}

fn read(ctx: &BotContext) -> Seen {
    let board = ctx.control.board();
    let views: Vec<Option<crate::control::AccountView>> = (0..board.len())
        .map(|i| board.read(InstrumentId(u16::try_from(i).unwrap_or(u16::MAX))))
        .collect();
    let fills = views.iter().map(|v| v.map_or(0, |v| v.fills)).collect();
    let fills_by_code = views
        .iter()
        .map(|v| v.map_or([0; REASON_CODES], |v| v.fills_by_code))
        .collect();
    let f = ctx.control.flattens();
    let flattens = (0..f.len())
        .map(|i| f.read(i).map_or((0, 0), |v| (v.started, v.ended)))
        .collect();
    let Some(s) = &ctx.sources else {
        return Seen {
            fills,
            fills_by_code,
            flattens,
            ..Seen::default()
        };
    };
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (reconnects, gaps_unfilled) = s.live.as_ref().map_or((0, 0), |live| {
        (
            live.conns.iter().map(|c| l(&c.reconnects)).sum(),
            l(&live.gaps_unfilled),
        )
    });
    let sessions: Vec<pinion_gateway::binance::SessionStats> =
        s.sessions.iter().map(|(_, m)| m.stats()).collect();
    Seen {
        reconnects,
        gaps_unfilled,
        session_disconnects: sessions.iter().map(|st| st.disconnects).sum(),
        rate_limited: sessions.iter().map(|st| st.rate_limited).sum(),
        banned: sessions.iter().map(|st| st.banned).sum(),
        breaker_opened: sessions.iter().map(|st| st.breaker_opened).sum(),
        refused: s
            .stages
            .iter()
            .filter(|st| st.name().starts_with("strategy"))
            .map(|st| st.load().errors)
            .sum(),
        losses: (0..s.books.len()).map(|i| s.books.losses(i)).collect(),
        fills,
        fills_by_code,
        flattens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{AccountView, Control, KillReason};

    #[test]
    fn a_kill_is_told_once_and_fills_are_gathered_into_one_note() {
        let mut all = pinion_core::Instruments::new();
        for sym in ["BTCUSDT", "ETHUSDT"] {
            let spec = pinion_core::InstrumentSpec::new(
                pinion_core::Venue::BinanceSpot,
                sym,
                "0.01",
                "0.0001",
            )
            .expect("spec");
            all.add(spec).expect("add");
        }
        let ctx = BotContext {
            control: Control::new(&all),
            sources: None,
            limits: Vec::new(),
            risk: Vec::new(),
            journal: None,
        };
        let c = std::sync::Arc::clone(&ctx.control);
        let cmds = Commands::new(ctx.clone(), Duration::from_secs(5));
        let t0 = Instant::now();
        let settings = AlertSettings {
            fills: Some(Duration::from_secs(2)),
            heartbeat: None,
            summary: None,
        };
        let mut alerts = Alerts::new(settings, &ctx, t0);
        assert!(alerts.check(&cmds, t0).is_empty());
        for n in 1..=5 {
            c.board().write(
                InstrumentId(0),
                &AccountView {
                    fills: n,
                    position: n as i64 * 10,
                    fills_by_code: {
                        let mut f = [0; REASON_CODES];
                        f[ReasonCode::Requote as usize] = n.min(4);
                        f[ReasonCode::Stop as usize] = n.saturating_sub(4);
                        f
                    },
                    ..AccountView::default()
                },
            );
            let due = alerts.check(&cmds, t0 + Duration::from_millis(100 * n));
            assert!(due.is_empty(), "fills wait for the window: {due:?}");
        }
        let due = alerts.check(&cmds, t0 + Duration::from_millis(2200));
        assert_eq!(
            due,
            vec!["Fills: BTCUSDT +5 (position 0.005; requote +4, stop +1)".to_owned()]
        );
        assert!(alerts.check(&cmds, t0 + Duration::from_secs(10)).is_empty());
        c.kill(KillReason::Operator);
        let due = alerts.check(&cmds, t0 + Duration::from_secs(11));
        assert_eq!(
            due,
            vec!["KILL SWITCH: trading killed (operator).".to_owned()]
        );
        assert!(alerts.check(&cmds, t0 + Duration::from_secs(12)).is_empty());
    }

    #[test]
    fn reconnects_resyncs_and_a_stalled_feed_are_told_once_each() {
        use crate::metrics::{BookStates, Sources};
        use crate::progress::ProgressCounters;
        use pinion_feed::live::{ConnCounters, LiveCounters};
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;

        let mut all = pinion_core::Instruments::new();
        let spec = pinion_core::InstrumentSpec::new(
            pinion_core::Venue::BinanceSpot,
            "BTCUSDT",
            "0.01",
            "0.0001",
        )
        .expect("spec");
        all.add(spec).expect("add");
        let live = Arc::new(LiveCounters {
            conns: vec![ConnCounters::default(), ConnCounters::default()],
            ..LiveCounters::default()
        });
        let books = BookStates::new(1);
        let progress = ProgressCounters::new();
        let control = Control::new(&all);
        let session = Arc::new(pinion_gateway::binance::mirror::SessionMirror::default());
        let strategy = crate::runtime::StageLive::new("strategy");
        let ctx = BotContext {
            control: Arc::clone(&control),
            sources: Some(Sources {
                command: "live",
                threads: Vec::new(),
                instruments: all,
                progress: Arc::clone(&progress),
                books: Arc::clone(&books),
                live: Some(Arc::clone(&live)),
                requests: None,
                sessions: vec![(InstrumentId(0), Arc::clone(&session))],
                started: Instant::now(),
                ended: Arc::new(AtomicBool::new(false)),
                control: Some(control),
                stages: vec![Arc::clone(&strategy)],
                latency: Vec::new(),
                ring_capacity: 0,
                bot: None,
            }),
            limits: Vec::new(),
            risk: Vec::new(),
            journal: None,
        };
        let cmds = Commands::new(ctx.clone(), Duration::from_secs(5));
        let t0 = Instant::now();
        let settings = AlertSettings {
            fills: None,
            heartbeat: Some(Duration::from_secs(3)),
            summary: None,
        };
        let mut alerts = Alerts::new(settings, &ctx, t0);
        progress.set_records(10);
        assert!(alerts.check(&cmds, t0).is_empty());
        live.conns[1].reconnects.fetch_add(2, Ordering::Relaxed);
        books.lost(0);
        let due = alerts.check(&cmds, t0 + Duration::from_secs(1));
        assert_eq!(
            due,
            [
                "Feed: 2 reconnect(s) (2 in all).",
                "Book BTCUSDT lost sync 1 time(s) (1 in all); resyncing."
            ]
        );
        // No record for the heartbeat time: told once, then its return.
        let due = alerts.check(&cmds, t0 + Duration::from_secs(4));
        assert_eq!(due, ["HEARTBEAT LOST: no market data for 4 s."]);
        assert!(alerts.check(&cmds, t0 + Duration::from_secs(6)).is_empty());
        progress.set_records(11);
        let due = alerts.check(&cmds, t0 + Duration::from_secs(8));
        assert_eq!(due, ["Heartbeat back: the stages run and data flows."]);
        // The order session's 429s, 418s and breaker, and the risk gates' refusals.
        let stats = pinion_gateway::binance::SessionStats {
            rate_limited: 2,
            banned: 1,
            breaker_opened: 1,
            ..Default::default()
        };
        session.store(true, &stats);
        strategy.store(crate::runtime::LiveCounts {
            errors: 5,
            ..Default::default()
        });
        let due = alerts.check(&cmds, t0 + Duration::from_secs(9));
        assert_eq!(
            due,
            [
                "Orders: RATE LIMITED (429) 2 time(s); that request class waits for retryAfter.",
                "Orders: IP BANNED (418) 1 time(s); no request until the ban lifts.",
                "Orders: circuit breaker opened 1 time(s); new orders are refused while it is open.",
                "Risk: 5 intent(s) refused by the risk limits (5 in all). /limits shows them.",
            ]
        );
        // Told once: nothing new, nothing said.
        assert!(alerts.check(&cmds, t0 + Duration::from_secs(10)).is_empty());
    }
}
