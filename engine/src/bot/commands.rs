//! The operator's commands: what a message asks for, and the answer, read from the control
//! block, its account board and the counters the stages publish (never a stage's state).
//!
//! `/kill` and `/flatten SYMBOL` take two steps: `/kill` asks, and `/kill confirm` (or `yes` /
//! `confirm` from the same user within the confirmation window) does it; `/flatten BTCUSDT`
//! asks, and `/flatten confirm` (or `yes` / `confirm`) does it. A confirmation without an
//! earlier request of its kind does nothing, so no single message kills or flattens; each user
//! has one request pending at a time, the latest.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::InstrumentId;

use crate::control::{Control, KillReason};
use crate::metrics::{BookState, Sources, TopOfBook};
use pinion_strategy::FlattenCause;

/// What the commands read.
#[derive(Debug, Clone)]
pub struct BotContext {
    /// The engine's control block.
    pub control: Arc<Control>,
    /// The counters the stages publish, when the pipeline shares them.
    pub sources: Option<Sources>,
    /// The risk limits in force, one line each, for `/limits`.
    pub limits: Vec<String>,
}

/// A command, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/status`.
    Status,
    /// `/positions`.
    Positions,
    /// `/pnl`.
    Pnl,
    /// `/orders`.
    Orders,
    /// `/book SYMBOL` (`None`: every book).
    Book(Option<String>),
    /// `/pause`.
    Pause,
    /// `/resume`.
    Resume,
    /// `/cancelall`.
    CancelAll,
    /// `/kill` (`true`: `/kill confirm`).
    Kill(bool),
    /// `/flatten SYMBOL` (`Some`), or `/flatten confirm` (`None`).
    Flatten(Option<String>),
    /// `yes` / `confirm` / `/confirm`: confirms a pending `/kill` or `/flatten`.
    Confirm,
    /// `/limits`.
    Limits,
    /// `/help` or `/start`.
    Help,
    /// Anything else: what was sent.
    Unknown(String),
}

impl Command {
    /// Parses a message's text: `/name[@bot] [args]`, case-insensitive.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("").to_ascii_lowercase();
        let name = first.split('@').next().unwrap_or("");
        let arg = words.next();
        match name {
            "/status" => Self::Status,
            "/positions" => Self::Positions,
            "/pnl" => Self::Pnl,
            "/orders" => Self::Orders,
            "/book" => Self::Book(arg.map(str::to_ascii_uppercase)),
            "/pause" => Self::Pause,
            "/resume" => Self::Resume,
            "/cancelall" => Self::CancelAll,
            "/kill" => Self::Kill(arg.is_some_and(|a| a.eq_ignore_ascii_case("confirm"))),
            "/flatten" => Self::Flatten(
                arg.filter(|a| !a.eq_ignore_ascii_case("confirm"))
                    .map(str::to_ascii_uppercase)
                    .or_else(|| arg.is_none().then(String::new)),
            ),
            "yes" | "confirm" | "/confirm" => Self::Confirm,
            "/limits" => Self::Limits,
            "/help" | "/start" => Self::Help,
            _ => Self::Unknown(crate::bot::api::clip(text, 40).to_owned()),
        }
    }
}

/// What a user asked for and has not yet confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Kill,
    Flatten(InstrumentId),
}

/// The commands' state: the kills and flattens asked for and not yet confirmed.
#[derive(Debug)]
pub struct Commands {
    ctx: BotContext,
    confirm_within: Duration,
    pending: HashMap<i64, (Instant, Pending)>,
}

/// The help text.
pub const HELP: &str = "pinion operator commands:\n\
/status: trading state, uptime, counters\n\
/positions: position and mark per instrument\n\
/pnl: realised, unrealised, fees and net per instrument\n\
/orders: open orders, orders sent, fills, and both by reason\n\
/book SYMBOL: best bid and ask, spread, mid and sync state\n\
/pause, /resume: stop or restart new decisions (open orders stay)\n\
/cancelall: cancel every open order once\n\
/kill: kill trading (asks to confirm: /kill confirm)\n\
/flatten SYMBOL: cancel its orders and close its position (asks to confirm: /flatten confirm)\n\
/limits: the risk limits in force\n\
/help: this";

impl Commands {
    /// Commands over `ctx`; a `/kill` must be confirmed within `confirm_within`.
    pub fn new(ctx: BotContext, confirm_within: Duration) -> Self {
        Commands {
            ctx,
            confirm_within,
            pending: HashMap::new(),
        }
    }

    /// What the commands read.
    pub fn context(&self) -> &BotContext {
        &self.ctx
    }

    /// Carries out `command` from `user` at `now`; the answer.
    pub fn run(&mut self, user: i64, command: &Command, now: Instant) -> String {
        let c = &self.ctx.control;
        match command {
            Command::Status => self.status(),
            Command::Positions => self.positions(),
            Command::Pnl => self.pnl(),
            Command::Orders => self.orders(),
            Command::Book(symbol) => self.book(symbol.as_deref()),
            Command::Pause => {
                c.pause();
                "Paused: no new decisions; open orders stay. /resume to trade again.".to_owned()
            }
            Command::Resume => {
                c.resume();
                match c.kill_reason() {
                    Some(r) => format!("Resumed, but trading is killed ({r}): nothing will trade."),
                    None => "Resumed: the strategies decide again.".to_owned(),
                }
            }
            Command::CancelAll => {
                c.cancel_all();
                format!(
                    "Cancel-all requested (request #{}).",
                    c.stats().cancel_all_requests
                )
            }
            // `/kill confirm` is the confirmation of an earlier `/kill`, never a kill in one
            // message: a pasted or mistyped command must not skip the step.
            Command::Kill(true) | Command::Flatten(None) | Command::Confirm => {
                let wants_kill = matches!(command, Command::Kill(true));
                let wants_flatten = matches!(command, Command::Flatten(None));
                let pending = self.pending.get(&user).copied();
                match pending {
                    Some((_, Pending::Kill)) if wants_flatten => {
                        "Nothing to confirm: send /flatten SYMBOL first.".to_owned()
                    }
                    Some((_, Pending::Flatten(_))) if wants_kill => {
                        "Nothing to confirm: send /kill first.".to_owned()
                    }
                    Some((deadline, what)) => {
                        self.pending.remove(&user);
                        match what {
                            Pending::Kill if now <= deadline => kill(c),
                            Pending::Kill => {
                                "The kill request expired: nothing was done. Send /kill again."
                                    .to_owned()
                            }
                            Pending::Flatten(id) if now <= deadline => flatten(c, id),
                            Pending::Flatten(_) => {
                                "The flatten request expired: nothing was done. \
Send /flatten SYMBOL again."
                                    .to_owned()
                            }
                        }
                    }
                    None if wants_flatten => {
                        "Nothing to confirm: send /flatten SYMBOL first.".to_owned()
                    }
                    None => "Nothing to confirm: send /kill first.".to_owned(),
                }
            }
            Command::Kill(false) => {
                if let Some(r) = c.kill_reason() {
                    return format!("Trading is already killed ({r}).");
                }
                self.pending
                    .insert(user, (now + self.confirm_within, Pending::Kill));
                format!(
                    "Kill trading? Every order is cancelled and nothing trades until restart.\n\
Reply /kill confirm (or yes) within {} s.",
                    self.confirm_within.as_secs_f64().round()
                )
            }
            Command::Flatten(Some(symbol)) => {
                if symbol.is_empty() {
                    return "Which instrument? /flatten SYMBOL (/positions lists them).".to_owned();
                }
                let Some(id) = c.instrument_named(symbol) else {
                    return format!("No instrument {symbol}. /positions lists them.");
                };
                let board = c.board();
                let (sym, q) = board.name(id).map_or((symbol.as_str(), 0), |n| (n.0, n.2));
                let v = board.read(id).unwrap_or_default();
                self.pending
                    .insert(user, (now + self.confirm_within, Pending::Flatten(id)));
                format!(
                    "Flatten {sym}? Its strategy stops, its {} open order(s) are cancelled and \
the position {} is closed in slices inside the price band; it stays stopped until restart.\n\
Reply /flatten confirm (or yes) within {} s.",
                    v.open_orders,
                    fixed(v.position, q),
                    self.confirm_within.as_secs_f64().round()
                )
            }
            Command::Limits => {
                if self.ctx.limits.is_empty() {
                    "No risk limits were given to the bot.".to_owned()
                } else {
                    format!("Risk limits:\n{}", self.ctx.limits.join("\n"))
                }
            }
            Command::Help => HELP.to_owned(),
            Command::Unknown(text) => format!("Unknown command {text:?}. /help lists them."),
        }
    }

    /// `/status`.
    pub fn status(&self) -> String {
        let c = &self.ctx.control;
        let mut out = String::new();
        let state = match (c.kill_reason(), c.paused()) {
            (Some(r), _) => format!("KILLED ({r})"),
            (None, true) => "PAUSED".to_owned(),
            (None, false) => "trading".to_owned(),
        };
        let _ = writeln!(out, "State: {state}");
        let stats = c.stats();
        let _ = writeln!(
            out,
            "Kill applied: {}; cancel-all requests {}; control cancels {}",
            if stats.kill_applied { "yes" } else { "no" },
            stats.cancel_all_requests,
            stats.control_cancels
        );
        let board = c.board();
        let (mut open, mut fills, mut orders, mut net) = (0u64, 0u64, 0u64, Vec::new());
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            if let (Some(v), Some((sym, _, _, m))) = (board.read(id), board.name(id)) {
                open += v.open_orders;
                fills += v.fills;
                orders += v.orders;
                if v.orders > 0 || v.position != 0 {
                    net.push(format!("{sym} {}", fixed(v.net(), m)));
                }
            }
        }
        let _ = writeln!(out, "Orders sent {orders}, open {open}, fills {fills}");
        if !net.is_empty() {
            let _ = writeln!(out, "Net PnL: {}", net.join(", "));
        }
        if let Some(s) = &self.ctx.sources {
            let up = s.uptime().as_secs();
            let _ = writeln!(
                out,
                "{} up {}h{:02}m{:02}s, records {}",
                s.command,
                up / 3600,
                up / 60 % 60,
                up % 60,
                s.progress.records()
            );
            let books: Vec<_> = (0..s.books.len())
                .map(|i| s.books.state(i))
                .filter(|b| *b != BookState::None)
                .collect();
            let live = books.iter().filter(|b| **b == BookState::Live).count();
            let _ = writeln!(out, "Books live {live}/{}", books.len());
            if let Some(l) = &s.live {
                let connected: u64 = l
                    .conns
                    .iter()
                    .map(|c| c.connected.load(std::sync::atomic::Ordering::Relaxed))
                    .sum();
                let _ = writeln!(out, "Feed connections up {connected}/{}", l.conns.len());
            }
            if let Err(e) = s.health() {
                let _ = writeln!(out, "Health: {e}");
            }
        }
        out.trim_end().to_owned()
    }

    fn each(
        &self,
        mut line: impl FnMut(&str, u8, u8, u8, &crate::control::AccountView) -> String,
    ) -> String {
        let board = self.ctx.control.board();
        let mut out = Vec::new();
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            if let (Some(v), Some((sym, p, q, m))) = (board.read(id), board.name(id)) {
                out.push(line(sym, p, q, m, &v));
            }
        }
        if out.is_empty() {
            "No instruments.".to_owned()
        } else {
            out.join("\n")
        }
    }

    /// `/positions`.
    pub fn positions(&self) -> String {
        self.each(|sym, p, q, _, v| {
            format!(
                "{sym}: position {} @ mark {}",
                fixed(v.position, q),
                if v.mark == 0 {
                    "-".to_owned()
                } else {
                    fixed(v.mark, p)
                }
            )
        })
    }

    /// `/pnl`.
    pub fn pnl(&self) -> String {
        let mut total: i64 = 0;
        let mut scale = None;
        let mut same_scale = true;
        let lines = self.each(|sym, _, _, m, v| {
            total = total.saturating_add(v.net());
            if scale.is_some_and(|s| s != m) {
                same_scale = false;
            }
            scale = Some(m);
            format!(
                "{sym}: realised {} unrealised {} fees {} net {} (volume {})",
                fixed(v.realized, m),
                fixed(v.unrealized, m),
                fixed(v.fees, m),
                fixed(v.net(), m),
                fixed(v.volume, m)
            )
        });
        match scale {
            Some(s) if same_scale => format!("{lines}\nTotal net {}", fixed(total, s)),
            _ => lines,
        }
    }

    /// `/orders`.
    pub fn orders(&self) -> String {
        self.each(|sym, _, _, _, v| {
            let mut line = format!(
                "{sym}: open {}, sent {}, fills {}",
                v.open_orders, v.orders, v.fills
            );
            // Orders and cancels sent and fills, by what caused them.
            let reasons: Vec<String> = v
                .by_reason()
                .map(|(code, sent, filled)| format!("{code} {sent}/{filled}"))
                .collect();
            if !reasons.is_empty() {
                let _ = write!(line, "; by reason (sent/filled): {}", reasons.join(", "));
            }
            line
        })
    }

    /// `/book SYMBOL`.
    pub fn book(&self, symbol: Option<&str>) -> String {
        let board = self.ctx.control.board();
        let mut out = Vec::new();
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            let Some((sym, p, q, _)) = board.name(id) else {
                continue;
            };
            if symbol.is_some_and(|s| !s.eq_ignore_ascii_case(sym)) {
                continue;
            }
            let mark = board.read(id).map_or(0, |v| v.mark);
            let mut line = format!(
                "{sym}: mid {}",
                if mark == 0 {
                    "-".to_owned()
                } else {
                    fixed(mark, p)
                }
            );
            if let Some(s) = &self.ctx.sources {
                if let Some(top) = s.books.top(i) {
                    line.push_str(&top_text(&top, p, q));
                }
                let _ = write!(
                    line,
                    ", {}, lost sync {} times",
                    s.books.state(i).name(),
                    s.books.losses(i)
                );
            }
            out.push(line);
        }
        match (out.is_empty(), symbol) {
            (true, Some(s)) => format!("No book for {s}. /status lists the instruments."),
            (true, None) => "No books.".to_owned(),
            _ => out.join("\n"),
        }
    }
}

fn flatten(c: &Control, id: InstrumentId) -> String {
    let sym = c.board().name(id).map_or("?", |n| n.0).to_owned();
    if c.flatten(id, FlattenCause::Operator) {
        format!(
            "FLATTEN {sym}: requested; its orders are being cancelled and the position closed. \
You will be told when it is done."
        )
    } else {
        format!("No instrument {sym}.")
    }
}

/// The best levels and the spread of a top of book, in the instrument's units (`p` price and
/// `q` quantity decimals): `, bid 100.1 x 2, ask 100.2 x 0.5, spread 0.1`, a side that is
/// empty shown as `-`, and `(unsynced)` when the book was not in sync.
pub fn top_text(top: &TopOfBook, p: u8, q: u8) -> String {
    let level = |l: Option<pinion_core::Level>| {
        l.map_or_else(
            || "-".to_owned(),
            |l| format!("{} x {}", fixed(l.px.0, p), fixed(l.qty.0, q)),
        )
    };
    let mut s = format!(", bid {}, ask {}", level(top.bid), level(top.ask));
    if let Some(spread) = top.spread() {
        let _ = write!(s, ", spread {}", fixed(spread, p));
    }
    if !top.synced {
        s.push_str(" (unsynced)");
    }
    s
}

fn kill(c: &Control) -> String {
    if let Some(r) = c.kill_reason() {
        return format!("Trading is already killed ({r}).");
    }
    c.kill(KillReason::Operator);
    "KILLED: every open order is being cancelled and nothing trades until restart.".to_owned()
}

/// `v · 10^-decimals` as a decimal number.
pub fn fixed(v: i64, decimals: u8) -> String {
    let d = u32::from(decimals.min(18));
    let unit = 10i128.pow(d);
    let v = i128::from(v);
    let (int, frac) = (v.abs() / unit, v.abs() % unit);
    let sign = if v < 0 { "-" } else { "" };
    if d == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:0width$}", width = d as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::AccountView;

    fn ctx() -> BotContext {
        let mut all = pinion_core::Instruments::new();
        let spec = pinion_core::InstrumentSpec::new(
            pinion_core::Venue::BinanceSpot,
            "BTCUSDT",
            "0.01",
            "0.00001",
        )
        .expect("spec");
        all.add(spec).expect("add");
        BotContext {
            control: Control::new(&all),
            sources: None,
            limits: vec!["max position 0.01".into()],
        }
    }

    #[test]
    fn commands_parse_with_bot_names_case_and_arguments() {
        assert_eq!(Command::parse("/status@pinion_bot"), Command::Status);
        assert_eq!(Command::parse(" /KILL Confirm "), Command::Kill(true));
        assert_eq!(Command::parse("/kill"), Command::Kill(false));
        assert_eq!(
            Command::parse("/book btcusdt"),
            Command::Book(Some("BTCUSDT".into()))
        );
        assert_eq!(Command::parse("yes"), Command::Confirm);
        assert_eq!(Command::parse("hello"), Command::Unknown("hello".into()));
    }

    #[test]
    fn a_kill_needs_a_confirmation_in_time() {
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let t0 = Instant::now();
        let c = Arc::clone(&cmds.context().control);
        cmds.run(1, &Command::Kill(false), t0);
        assert_eq!(c.kill_reason(), None);
        // Another user's "yes" confirms nothing of user 1's.
        assert_eq!(
            cmds.run(2, &Command::Confirm, t0),
            "Nothing to confirm: send /kill first."
        );
        // Nor does `/kill confirm` sent on its own, by anyone.
        let alone = cmds.run(3, &Command::Kill(true), t0);
        assert!(alone.starts_with("Nothing to confirm"), "{alone}");
        assert_eq!(c.kill_reason(), None);
        let late = cmds.run(1, &Command::Confirm, t0 + Duration::from_secs(31));
        assert!(late.contains("expired"), "{late}");
        assert_eq!(c.kill_reason(), None);
        cmds.run(1, &Command::Kill(false), t0 + Duration::from_secs(40));
        cmds.run(1, &Command::Kill(true), t0 + Duration::from_secs(41));
        assert_eq!(c.kill_reason(), Some(KillReason::Operator));
    }

    #[test]
    fn a_flatten_needs_its_own_confirmation_in_time() {
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let t0 = Instant::now();
        let c = Arc::clone(&cmds.context().control);
        let mut r = c.reader();
        assert_eq!(
            Command::parse("/flatten btcusdt"),
            Command::Flatten(Some("BTCUSDT".into()))
        );
        assert_eq!(Command::parse("/flatten Confirm"), Command::Flatten(None));
        assert!(
            cmds.run(1, &Command::Flatten(Some("ETHUSDT".into())), t0)
                .starts_with("No instrument ETHUSDT")
        );
        let ask = cmds.run(1, &Command::Flatten(Some("BTCUSDT".into())), t0);
        assert!(ask.contains("/flatten confirm"), "{ask}");
        // `/kill confirm` does not confirm a flatten, and nothing was asked yet.
        assert!(
            cmds.run(1, &Command::Kill(true), t0)
                .starts_with("Nothing to confirm")
        );
        assert!(!r.poll().flatten);
        let late = cmds.run(1, &Command::Flatten(None), t0 + Duration::from_secs(31));
        assert!(late.contains("expired"), "{late}");
        assert!(!r.poll().flatten);
        cmds.run(
            1,
            &Command::Flatten(Some("BTCUSDT".into())),
            t0 + Duration::from_secs(40),
        );
        let done = cmds.run(1, &Command::Confirm, t0 + Duration::from_secs(41));
        assert!(done.starts_with("FLATTEN BTCUSDT"), "{done}");
        assert!(r.poll().flatten);
        assert_eq!(r.take_flatten(0), Some(FlattenCause::Operator));
        assert_eq!(c.kill_reason(), None, "a flatten is not a kill");
    }

    #[test]
    fn answers_read_the_board_in_the_instruments_units() {
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let c = Arc::clone(&cmds.context().control);
        c.board().write(
            InstrumentId(0),
            &AccountView {
                position: 150,      // 0.0015 BTC
                realized: -123_456, // -0.0123456 (7 decimals)
                fees: 1_000,
                mark: 6_543_210,
                open_orders: 2,
                fills: 3,
                orders: 9,
                sent_by_code: {
                    let mut s = [0; crate::control::REASON_CODES];
                    s[pinion_strategy::ReasonCode::Requote as usize] = 8;
                    s[pinion_strategy::ReasonCode::Stop as usize] = 1;
                    s
                },
                fills_by_code: {
                    let mut f = [0; crate::control::REASON_CODES];
                    f[pinion_strategy::ReasonCode::Requote as usize] = 2;
                    f[pinion_strategy::ReasonCode::Stop as usize] = 1;
                    f
                },
                ..AccountView::default()
            },
        );
        let t = Instant::now();
        assert_eq!(
            cmds.run(1, &Command::Positions, t),
            "BTCUSDT: position 0.0015 @ mark 65432.1"
        );
        assert!(cmds.run(1, &Command::Pnl, t).contains("net -0.0124456"));
        assert_eq!(
            cmds.run(1, &Command::Orders, t),
            "BTCUSDT: open 2, sent 9, fills 3; by reason (sent/filled): requote 8/2, stop 1/1"
        );
        assert!(
            cmds.run(1, &Command::Book(Some("ETHUSDT".into())), t)
                .starts_with("No book")
        );
        assert!(cmds.run(1, &Command::Limits, t).contains("max position"));
        cmds.run(1, &Command::Pause, t);
        assert!(c.paused());
        assert!(
            cmds.run(1, &Command::Status, t)
                .starts_with("State: PAUSED")
        );
        cmds.run(1, &Command::Resume, t);
        assert!(!c.paused());
        cmds.run(1, &Command::CancelAll, t);
        assert_eq!(c.stats().cancel_all_requests, 1);
        assert_eq!(fixed(-5, 3), "-0.005");
        let level = |px, qty| pinion_core::Level {
            px: pinion_core::Px(px),
            qty: pinion_core::Qty(qty),
        };
        let top = TopOfBook {
            bid: Some(level(6_543_210, 150)),
            ask: Some(level(6_543_225, 2_000_000)),
            synced: true,
            t_recv: 1,
        };
        assert_eq!(
            top_text(&top, 2, 5),
            ", bid 65432.1 x 0.0015, ask 65432.25 x 20, spread 0.15"
        );
        let one_sided = TopOfBook {
            ask: None,
            synced: false,
            ..top
        };
        assert_eq!(
            top_text(&one_sided, 2, 5),
            ", bid 65432.1 x 0.0015, ask - (unsynced)"
        );
        assert_eq!(fixed(1200, 2), "12");
    }
}
