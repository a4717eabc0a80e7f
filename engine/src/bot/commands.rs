//! The operator's commands: what a message asks for, and the answer, read from the control
//! block, its account board and the counters the stages publish (never a stage's state).
//!
//! `/kill`, `/flatten SYMBOL`, `/buy`, `/sell` and `/cancel ORDER` take two steps: the command
//! asks (and shows what it would do), and a confirmation from the same user within the
//! confirmation window does it: the *Confirm* button under the question (an inline keyboard),
//! or typed: `/kill confirm`, `/flatten confirm`, `/buy confirm` (or `/sell confirm`),
//! `/cancel confirm`, or `yes` / `confirm` for whatever is pending. *Drop* (or `no`) drops it.
//! A confirmation without an earlier request of its kind does nothing, so no single message
//! kills, flattens or trades; each user has one request pending at a time, the latest, and a
//! button only confirms the request it was sent with.
//!
//! **Manual orders.** `/buy SYMBOL QTY [PRICE]` (and `/sell`): with a price, a limit order good
//! till cancelled; without, a marketable limit at the touch (the best ask to buy, the best bid
//! to sell, as the book stage last published it), immediate or cancel, so it never walks the
//! book. The question shows the price, the notional, the position a full fill leads to and the
//! risk gate's verdict, checked here with the same rules ([`PreTradeRisk`]) on the account
//! board's position, open orders and mark; an order the gate would refuse is not offered. Once
//! confirmed it goes to the strategy stage through the control block
//! ([`Control::submit`]), where the instrument's own gate decides again as for any order; its
//! answer (the client id, or the refusal) comes back and is told ([`Commands::take_answers`]).
//! `/cancel ORDER` cancels an order by its client id (as a manual order's answer shows it).
//!
//! **Naming an instrument.** A symbol the run trades on one venue is named bare, in any case;
//! one it trades on several venues must be named `VENUE:SYMBOL` (`bybit-spot:BTCUSDT`, the
//! venue as `/positions` shows it), or the command is refused with the names to say
//! ([`Control::instrument`]): an operator never flattens or trades a venue picked for them.
//! Answers name such a symbol with its venue (`BTCUSDT (bybit-spot)`), the confirmation's
//! question included.
//!
//! **Alarms.** `/alert`, `/alerts` and `/unalert N` set, list and remove the operators' own
//! alarms ([`super::alarms`]), checked by the bot's thread ([`Commands::check_alarms`]).
//!
//! **Journal.** With a journal (`pinion live --trade` with `[journal]`), everything an operator
//! does here is journaled with the user id ([`crate::ops::journal::OperatorAction`]); a manual
//! order's record carries its client id.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinion_core::decimal::parse_scaled;
use pinion_core::{InstrumentId, InstrumentSpec, Px, Qty};

use super::alarms::Alarms;
use super::api::Button;
use crate::control::{
    Control, KillReason, ManualAction, ManualAnswer, ManualOutcome, ManualRequest, NameError,
};
use crate::metrics::{BookState, Sources, TopOfBook};
use crate::ops::journal::{OperatorAction, OperatorKind, OperatorLog};
use pinion_strategy::{
    ClientOrderId, FlattenCause, OrderIntent, OrderReason, OrderSide, OrderType, PreTradeRisk,
    ReasonCode, RiskLimits, RiskReject, RiskState, TimeInForce,
};

/// What the commands read.
#[derive(Debug, Clone)]
pub struct BotContext {
    /// The engine's control block.
    pub control: Arc<Control>,
    /// The counters the stages publish, when the pipeline shares them.
    pub sources: Option<Sources>,
    /// The risk limits in force, one line each, for `/limits`.
    pub limits: Vec<String>,
    /// Each traded instrument's filters and risk limits, by instrument id (`None`: not
    /// traded), for the risk gate's verdict on a manual order before it is confirmed.
    pub risk: Vec<Option<(InstrumentSpec, RiskLimits)>>,
    /// Where operator actions are journaled, when the run has a journal.
    pub journal: Option<Arc<Mutex<OperatorLog>>>,
}

/// An answer: its text, and buttons under it (a confirmation's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// The buttons (an inline keyboard of one row), none for most answers.
    pub buttons: Vec<Button>,
}

impl From<String> for Reply {
    fn from(text: String) -> Self {
        Reply {
            text,
            buttons: Vec::new(),
        }
    }
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
    /// `/buy SYMBOL QTY [PRICE]` or `/sell …` (`Some`: the words after the command), or
    /// `/buy confirm` / `/sell confirm` (`None`).
    Order(OrderSide, Option<Vec<String>>),
    /// `/cancel ORDER` (`Some`), or `/cancel confirm` (`None`).
    Cancel(Option<String>),
    /// `yes` / `confirm` / `/confirm`: confirms whatever is pending.
    Confirm,
    /// `no` / `/drop`: drops whatever is pending.
    Drop,
    /// A button pressed: its callback data.
    Button(String),
    /// `/alert …`: the words after the command.
    Alert(Vec<String>),
    /// `/alerts`.
    Alerts,
    /// `/unalert N`.
    Unalert(String),
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
            "/buy" | "/sell" => {
                let side = if name == "/buy" {
                    OrderSide::Buy
                } else {
                    OrderSide::Sell
                };
                match arg {
                    Some(a) if a.eq_ignore_ascii_case("confirm") => Self::Order(side, None),
                    _ => Self::Order(
                        side,
                        Some(arg.into_iter().chain(words).map(str::to_owned).collect()),
                    ),
                }
            }
            "/cancel" => Self::Cancel(
                arg.filter(|a| !a.eq_ignore_ascii_case("confirm"))
                    .map(str::to_owned)
                    .or_else(|| arg.is_none().then(String::new)),
            ),
            "/alert" => Self::Alert(arg.into_iter().chain(words).map(str::to_owned).collect()),
            "/alerts" => Self::Alerts,
            "/unalert" => Self::Unalert(arg.unwrap_or("").to_owned()),
            "yes" | "confirm" | "/confirm" => Self::Confirm,
            "no" | "/drop" => Self::Drop,
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
    Order(InstrumentId, ManualAction),
    Cancel(InstrumentId, ClientOrderId),
}

/// The kinds of request a typed confirmation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kill,
    Flatten,
    Order,
    Cancel,
}

impl Pending {
    const fn kind(&self) -> Kind {
        match self {
            Self::Kill => Kind::Kill,
            Self::Flatten(_) => Kind::Flatten,
            Self::Order(..) => Kind::Order,
            Self::Cancel(..) => Kind::Cancel,
        }
    }
}

impl Kind {
    /// What to send first, for a confirmation of this kind with nothing of it pending.
    const fn first(self) -> &'static str {
        match self {
            Self::Kill => "send /kill first.",
            Self::Flatten => "send /flatten SYMBOL first.",
            Self::Order => "send /buy or /sell first.",
            Self::Cancel => "send /cancel ORDER first.",
        }
    }
}

/// A request asked for: until when it may be confirmed, what, and its number (which its
/// buttons carry).
#[derive(Debug, Clone, Copy)]
struct Asked {
    deadline: Instant,
    what: Pending,
    nonce: u64,
}

/// A manual request handed to the stage and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Submitted {
    user: i64,
    chat: i64,
    instrument: InstrumentId,
    action: ManualAction,
    /// When it was handed over.
    at: Instant,
    /// Told (and journaled) as unanswered already.
    overdue: bool,
}

/// How long the stage may take to answer a manual request before the operator is told its
/// fate is not known (the stage takes requests once a poll: microseconds while it runs; a run
/// that has ended takes none).
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Manual orders remembered for `/orders`.
const MANUAL_KEPT: usize = 20;

/// The commands' state: the requests asked for and not yet confirmed, the manual requests
/// waiting for the stage's answer, and the alarms.
#[derive(Debug)]
pub struct Commands {
    ctx: BotContext,
    confirm_within: Duration,
    pending: HashMap<i64, Asked>,
    nonce: u64,
    seq: u64,
    submitted: HashMap<u64, Submitted>,
    /// The last manual orders sent, newest last, for `/orders`.
    manual: Vec<String>,
    alarms: Alarms,
}

/// The help text.
pub const HELP: &str = "pinion operator commands:\n\
/status: trading state, uptime, counters\n\
/positions: position and mark per instrument, and per strategy instance where several trade it\n\
/pnl: realised, unrealised, fees and net per instrument, and per strategy instance where several \
trade it\n\
/orders: open orders, orders sent, fills, and both by reason\n\
/book SYMBOL: best bid and ask, spread, mid and sync state\n\
/pause, /resume: stop or restart new decisions (open orders stay)\n\
/cancelall: cancel every open order once\n\
/kill: kill trading (asks to confirm: /kill confirm)\n\
/flatten SYMBOL: cancel its orders and close its position (asks to confirm: /flatten confirm)\n\
/buy SYMBOL QTY [PRICE], /sell SYMBOL QTY [PRICE]: a limit order (without PRICE: at the touch, \
immediate or cancel), through the risk gate (asks to confirm: /buy confirm)\n\
/cancel ORDER: cancel an order by its client id (asks to confirm: /cancel confirm)\n\
/alert SYMBOL > PRICE (or <; or SYMBOL spread > X, SYMBOL imbalance < -0.5): an alarm, fired once\n\
/alerts: the alarms set; /unalert N removes one\n\
/limits: the risk limits in force\n\
/help: this\n\
A symbol traded on several venues is named with its venue: /flatten bybit-spot:BTCUSDT (the \
venue as /positions shows it).";

impl Commands {
    /// Commands over `ctx`; a request must be confirmed within `confirm_within`. Alarms are
    /// kept in memory only: see [`Commands::keep_alarms_in`].
    pub fn new(ctx: BotContext, confirm_within: Duration) -> Self {
        let alarms = Alarms::in_memory(instrument_names(&ctx.control));
        Commands {
            ctx,
            confirm_within,
            pending: HashMap::new(),
            nonce: 0,
            seq: 0,
            submitted: HashMap::new(),
            manual: Vec::new(),
            alarms,
        }
    }

    /// Keeps the alarms in `path` (read now: those set before a restart are set again).
    /// Returns notes on alarms that could not be set again, or why the file cannot be used
    /// (then the alarms stay in memory only).
    pub fn keep_alarms_in(
        &mut self,
        path: &std::path::Path,
    ) -> Result<Vec<String>, super::alarms::AlarmError> {
        let (alarms, notes) = Alarms::load(Some(path), instrument_names(&self.ctx.control))?;
        self.alarms = alarms;
        Ok(notes)
    }

    /// What the commands read.
    pub fn context(&self) -> &BotContext {
        &self.ctx
    }

    /// Carries out `command` from `user` at `now`; the answer's text.
    pub fn run(&mut self, user: i64, command: &Command, now: Instant) -> String {
        self.handle(user, user, command, now).text
    }

    /// Carries out `command` from `user` in `chat` at `now`; the answer, with its buttons.
    pub fn handle(&mut self, user: i64, chat: i64, command: &Command, now: Instant) -> Reply {
        let c = Arc::clone(&self.ctx.control);
        match command {
            Command::Status => self.status().into(),
            Command::Positions => self.positions().into(),
            Command::Pnl => self.pnl().into(),
            Command::Orders => self.orders().into(),
            Command::Book(symbol) => self.book(symbol.as_deref()).into(),
            Command::Pause => {
                c.pause();
                self.journal(OperatorAction::now(user, OperatorKind::Pause));
                "Paused: no new decisions; open orders stay. /resume to trade again."
                    .to_owned()
                    .into()
            }
            Command::Resume => {
                c.resume();
                self.journal(OperatorAction::now(user, OperatorKind::Resume));
                match c.kill_reason() {
                    Some(r) => format!("Resumed, but trading is killed ({r}): nothing will trade."),
                    None => "Resumed: the strategies decide again.".to_owned(),
                }
                .into()
            }
            Command::CancelAll => {
                c.cancel_all();
                self.journal(OperatorAction::now(user, OperatorKind::CancelAll));
                format!(
                    "Cancel-all requested (request #{}).",
                    c.stats().cancel_all_requests
                )
                .into()
            }
            // `/kill confirm` is the confirmation of an earlier `/kill`, never a kill in one
            // message: a pasted or mistyped command must not skip the step.
            Command::Kill(true) => self.confirm(user, chat, Some(Kind::Kill), None, now),
            Command::Flatten(None) => self.confirm(user, chat, Some(Kind::Flatten), None, now),
            Command::Order(_, None) => self.confirm(user, chat, Some(Kind::Order), None, now),
            Command::Cancel(None) => self.confirm(user, chat, Some(Kind::Cancel), None, now),
            Command::Confirm => self.confirm(user, chat, None, None, now),
            Command::Drop => self.drop_pending(user, None),
            Command::Button(data) => match data.split_once(':') {
                Some(("ok", n)) => match n.parse() {
                    Ok(n) => self.confirm(user, chat, None, Some(n), now),
                    Err(_) => "That button is not one of this bot's.".to_owned().into(),
                },
                Some(("no", n)) => match n.parse() {
                    Ok(n) => self.drop_pending(user, Some(n)),
                    Err(_) => "That button is not one of this bot's.".to_owned().into(),
                },
                _ => "That button is not one of this bot's.".to_owned().into(),
            },
            Command::Kill(false) => {
                if let Some(r) = c.kill_reason() {
                    return format!("Trading is already killed ({r}).").into();
                }
                let buttons = self.ask(user, now, Pending::Kill);
                Reply {
                    text: format!(
                        "Kill trading? Every order is cancelled and nothing trades until restart.\n\
Reply /kill confirm (or yes) within {} s.",
                        self.confirm_within.as_secs_f64().round()
                    ),
                    buttons,
                }
            }
            Command::Flatten(Some(symbol)) => {
                if symbol.is_empty() {
                    return "Which instrument? /flatten SYMBOL (/positions lists them)."
                        .to_owned()
                        .into();
                }
                let id = match c.instrument(symbol) {
                    Ok(id) => id,
                    Err(e) => return named_none(&e).into(),
                };
                let board = c.board();
                let q = board.name(id).map_or(0, |n| n.2);
                let sym = board.label(id).unwrap_or_else(|| symbol.clone());
                let v = board.read(id).unwrap_or_default();
                let text = format!(
                    "Flatten {sym}? Its strategy stops, its {} open order(s) are cancelled and \
the position {} is closed in slices inside the price band; it stays stopped until restart.\n\
Reply /flatten confirm (or yes) within {} s.",
                    v.open_orders,
                    fixed(v.position, q),
                    self.confirm_within.as_secs_f64().round()
                );
                let buttons = self.ask(user, now, Pending::Flatten(id));
                Reply { text, buttons }
            }
            Command::Order(side, Some(words)) => self.order(user, *side, words, now),
            Command::Cancel(Some(order)) => self.cancel(user, order, now),
            Command::Alert(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                match self.alarms.set(user, chat, &words) {
                    Ok(a) => {
                        let mut action = OperatorAction::now(user, OperatorKind::AlertSet);
                        action.target = a.number;
                        action.instrument = c.instrument(&a.name()).unwrap_or_default();
                        self.journal(action);
                        format!(
                            "Alert #{} set: {} {} {} {}. It fires once. /alerts lists them.",
                            a.number,
                            a.name(),
                            a.measure.name(),
                            a.cmp.sign(),
                            a.threshold
                        )
                    }
                    Err(e) => e.to_string(),
                }
                .into()
            }
            Command::Alerts => {
                let lines: Vec<String> = self
                    .alarms
                    .list()
                    .map(|a| {
                        format!(
                            "#{} {} {} {} {} (set by {})",
                            a.number,
                            a.name(),
                            a.measure.name(),
                            a.cmp.sign(),
                            a.threshold,
                            a.user
                        )
                    })
                    .collect();
                if lines.is_empty() {
                    "No alerts set. /alert SYMBOL > PRICE sets one.".to_owned()
                } else {
                    format!("Alerts:\n{}", lines.join("\n"))
                }
                .into()
            }
            Command::Unalert(n) => {
                let Ok(number) = n.trim_start_matches('#').parse::<u64>() else {
                    return "Which alert? /unalert N (/alerts lists them)."
                        .to_owned()
                        .into();
                };
                match self.alarms.remove(number) {
                    Ok(Some(a)) => {
                        let mut action = OperatorAction::now(user, OperatorKind::AlertRemoved);
                        action.target = a.number;
                        action.instrument = c.instrument(&a.name()).unwrap_or_default();
                        self.journal(action);
                        format!("Alert #{number} removed.")
                    }
                    Ok(None) => format!("No alert #{number}. /alerts lists them."),
                    Err(e) => format!("Alert #{number} removed, but not saved: {e}"),
                }
                .into()
            }
            Command::Limits => if self.ctx.limits.is_empty() {
                "No risk limits were given to the bot.".to_owned()
            } else {
                format!("Risk limits:\n{}", self.ctx.limits.join("\n"))
            }
            .into(),
            Command::Help => HELP.to_owned().into(),
            Command::Unknown(text) => format!("Unknown command {text:?}. /help lists them.").into(),
        }
    }

    /// Makes `what` the user's pending request; the buttons that confirm or drop it.
    fn ask(&mut self, user: i64, now: Instant, what: Pending) -> Vec<Button> {
        self.nonce += 1;
        let nonce = self.nonce;
        self.pending.insert(
            user,
            Asked {
                deadline: now + self.confirm_within,
                what,
                nonce,
            },
        );
        vec![
            Button {
                label: "Confirm".to_owned(),
                data: format!("ok:{nonce}"),
            },
            Button {
                label: "Drop".to_owned(),
                data: format!("no:{nonce}"),
            },
        ]
    }

    /// A confirmation from `user`: of a request of kind `want` when typed with one, of the
    /// request numbered `nonce` when a button; of whatever is pending otherwise.
    fn confirm(
        &mut self,
        user: i64,
        chat: i64,
        want: Option<Kind>,
        nonce: Option<u64>,
        now: Instant,
    ) -> Reply {
        let Some(asked) = self.pending.get(&user).copied() else {
            return match (want, nonce) {
                (_, Some(_)) => "That request is no longer pending (confirmed, dropped or \
replaced): nothing was done."
                    .to_owned(),
                (Some(k), None) => format!("Nothing to confirm: {}", k.first()),
                (None, None) => "Nothing to confirm: nothing is pending.".to_owned(),
            }
            .into();
        };
        if let Some(k) = want.filter(|k| *k != asked.what.kind()) {
            return format!("Nothing to confirm: {}", k.first()).into();
        }
        if nonce.is_some_and(|n| n != asked.nonce) {
            return "That request is no longer pending (confirmed, dropped or replaced): \
nothing was done."
                .to_owned()
                .into();
        }
        self.pending.remove(&user);
        if now > asked.deadline {
            let mut action = OperatorAction::now(user, OperatorKind::Expired);
            action.outcome = OperatorAction::NOT_SENT;
            match asked.what {
                Pending::Kill => {}
                Pending::Flatten(id) => action.instrument = id,
                Pending::Order(id, ManualAction::Order { side, px, qty, .. }) => {
                    action.instrument = id;
                    action.side = side;
                    action.px = px;
                    action.qty = qty;
                }
                Pending::Order(id, ManualAction::Cancel { target })
                | Pending::Cancel(id, target) => {
                    action.instrument = id;
                    action.target = target.0;
                }
            }
            self.journal(action);
            return match asked.what {
                Pending::Kill => "The kill request expired: nothing was done. Send /kill again.",
                Pending::Flatten(_) => {
                    "The flatten request expired: nothing was done. Send /flatten SYMBOL again."
                }
                Pending::Order(..) => {
                    "The order request expired: nothing was sent. Send /buy or /sell again."
                }
                Pending::Cancel(..) => {
                    "The cancel request expired: nothing was sent. Send /cancel ORDER again."
                }
            }
            .to_owned()
            .into();
        }
        let c = Arc::clone(&self.ctx.control);
        match asked.what {
            Pending::Kill => {
                self.journal(OperatorAction::now(user, OperatorKind::Kill));
                kill(&c).into()
            }
            Pending::Flatten(id) => {
                let mut action = OperatorAction::now(user, OperatorKind::Flatten);
                action.instrument = id;
                self.journal(action);
                flatten(&c, id).into()
            }
            Pending::Order(id, action) => self.submit(user, chat, id, action, now),
            Pending::Cancel(id, target) => {
                self.submit(user, chat, id, ManualAction::Cancel { target }, now)
            }
        }
    }

    /// Hands a confirmed manual request to the stage.
    fn submit(
        &mut self,
        user: i64,
        chat: i64,
        instrument: InstrumentId,
        action: ManualAction,
        now: Instant,
    ) -> Reply {
        self.seq += 1;
        let request = ManualRequest {
            seq: self.seq,
            instrument,
            action,
        };
        if !self.ctx.control.submit(request) {
            return "Not sent: the trading stage has not taken the requests before this one \
(its queue is full). Try again in a moment."
                .to_owned()
                .into();
        }
        self.submitted.insert(
            self.seq,
            Submitted {
                user,
                chat,
                instrument,
                action,
                at: now,
                overdue: false,
            },
        );
        match action {
            ManualAction::Order { .. } => "Order handed to the risk gate; its answer follows.",
            ManualAction::Cancel { .. } => {
                "Cancel handed to the trading stage; its answer follows."
            }
        }
        .to_owned()
        .into()
    }

    /// Drops `user`'s pending request (the one numbered `nonce`, for a button).
    fn drop_pending(&mut self, user: i64, nonce: Option<u64>) -> Reply {
        match self.pending.get(&user) {
            Some(a) if nonce.is_none_or(|n| n == a.nonce) => {
                self.pending.remove(&user);
                "Dropped: nothing was done.".to_owned().into()
            }
            _ => "Nothing to drop.".to_owned().into(),
        }
    }

    /// `/buy` or `/sell` with its words: the question, or why there is none.
    fn order(&mut self, user: i64, side: OrderSide, words: &[String], now: Instant) -> Reply {
        let c = Arc::clone(&self.ctx.control);
        let verb = if side == OrderSide::Buy {
            "buy"
        } else {
            "sell"
        };
        let (symbol, qty, price) = match words {
            [s, q] => (s, q, None),
            [s, q, p] => (s, q, Some(p)),
            _ => return format!("Usage: /{verb} SYMBOL QTY [PRICE]").into(),
        };
        let id = match c.instrument(symbol) {
            Ok(id) => id,
            Err(e) => return named_none(&e).into(),
        };
        let board = c.board();
        let (Some((_, p, q, _)), Some(sym)) = (board.name(id), board.label(id)) else {
            return format!("No instrument {symbol}.").into();
        };
        let qty = match parse_scaled(qty.as_bytes(), q) {
            Ok(v) if v > 0 => Qty(v),
            Ok(_) => return "The quantity must be above 0.".to_owned().into(),
            Err(e) => return format!("Quantity {qty:?}: {e} ({q} decimals here).").into(),
        };
        let top = self
            .ctx
            .sources
            .as_ref()
            .and_then(|s| s.books.top(usize::from(id.0)));
        let (px, tif) = match price {
            Some(text) => match parse_scaled(text.as_bytes(), p) {
                Ok(v) if v > 0 => (Px(v), TimeInForce::Gtc),
                Ok(_) => return "The price must be above 0.".to_owned().into(),
                Err(e) => return format!("Price {text:?}: {e} ({p} decimals here).").into(),
            },
            None => {
                let touch = top.filter(|t| t.synced).and_then(|t| match side {
                    OrderSide::Buy => t.ask,
                    OrderSide::Sell => t.bid,
                });
                match touch {
                    Some(l) => (l.px, TimeInForce::Ioc),
                    None => {
                        return format!(
                            "No synced book price for {sym} to buy or sell at: give a PRICE."
                        )
                        .into();
                    }
                }
            }
        };
        let v = board.read(id).unwrap_or_default();
        let after = i128::from(v.position) + i128::from(side.sign()) * i128::from(qty.0);
        let notional = i128::from(px.0) * i128::from(qty.0);
        let money = p.saturating_add(q);
        let mut text = format!(
            "{} {} {sym} @ {} ({}), notional {}.\nPosition {} now, {} if it fills whole.",
            verb.to_ascii_uppercase(),
            fixed(qty.0, q),
            fixed(px.0, p),
            if tif == TimeInForce::Ioc {
                "marketable limit at the touch, immediate or cancel"
            } else {
                "limit, good till cancelled"
            },
            fixed(crate::control::saturate(notional), money),
            fixed(v.position, q),
            fixed(crate::control::saturate(after), q),
        );
        if let Some(t) = top {
            let _ = write!(text, "\nBook{}", top_text(&t, p, q).trim_start_matches(','));
        }
        let action = ManualAction::Order { side, px, qty, tif };
        match self.preview(id, side, px, qty, &v) {
            Some(Err(e)) => {
                let _ = write!(
                    text,
                    "\nRisk gate: REFUSED ({e}). Nothing to confirm: nothing was sent."
                );
                return text.into();
            }
            Some(Ok(())) => {
                text.push_str("\nRisk gate: passes now (it decides again when the order is sent).")
            }
            None => text.push_str("\nRisk gate: decides when the order is sent."),
        }
        let _ = write!(
            text,
            "\nReply /{verb} confirm (or yes) within {} s.",
            self.confirm_within.as_secs_f64().round()
        );
        let buttons = self.ask(user, now, Pending::Order(id, action));
        Reply { text, buttons }
    }

    /// The risk gate's verdict on a new order of instrument `id`, with the rules the stage's
    /// gate applies, on the board's account `v`; `None` without the instrument's rules.
    fn preview(
        &self,
        id: InstrumentId,
        side: OrderSide,
        px: Px,
        qty: Qty,
        v: &crate::control::AccountView,
    ) -> Option<Result<(), RiskReject>> {
        let (spec, limits) = self.ctx.risk.get(usize::from(id.0))?.as_ref()?;
        let mut risk = PreTradeRisk::new(*limits, spec.clone());
        risk.set_kill_switch(self.ctx.control.kill_reason().is_some());
        let intent = OrderIntent::new_limit(
            0,
            ClientOrderId(0),
            id,
            side,
            px,
            qty,
            OrderType::Limit,
            TimeInForce::Gtc,
            OrderReason::new(0, ReasonCode::Manual),
        );
        let state = RiskState {
            position: Qty(v.position),
            open_orders: u32::try_from(v.open_orders).unwrap_or(u32::MAX),
            mid: (v.mark != 0).then_some(Px(v.mark)),
            ..RiskState::default()
        };
        Some(risk.check(&intent, &state))
    }

    /// `/cancel ORDER`: the question, or why there is none.
    fn cancel(&mut self, user: i64, order: &str, now: Instant) -> Reply {
        if order.is_empty() {
            return "Which order? /cancel ORDER, its client id as a manual order's answer shows it."
                .to_owned()
                .into();
        }
        let Ok(raw) = order.trim_start_matches('#').parse::<u64>() else {
            return format!("{order:?} is not a client order id (a number).").into();
        };
        let c = Arc::clone(&self.ctx.control);
        let board = c.board();
        // Client ids of instrument `i` start at `(i + 1) << 40`.
        let id = (raw >> 40)
            .checked_sub(1)
            .and_then(|i| u16::try_from(i).ok())
            .map(InstrumentId);
        let Some((id, sym)) = id.and_then(|id| Some((id, board.label(id)?))) else {
            return format!("Order {raw} is of no instrument of this run.").into();
        };
        let text = format!(
            "Cancel order {raw} of {sym}?\nReply /cancel confirm (or yes) within {} s.",
            self.confirm_within.as_secs_f64().round()
        );
        let buttons = self.ask(user, now, Pending::Cancel(id, ClientOrderId(raw)));
        Reply { text, buttons }
    }

    /// The stage's answers to the manual requests handed to it since the last call, and the
    /// requests it has left unanswered for [`ANSWER_WAIT`] at `now` (told once as not known):
    /// each journaled with its operator, and told in the chat it was asked in.
    pub fn take_answers(&mut self, now: Instant) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        for ManualAnswer {
            seq,
            client_id,
            outcome,
        } in self.ctx.control.answers()
        {
            let Some(s) = self.submitted.remove(&seq) else {
                continue;
            };
            let (mut action, what) = self.described(&s, client_id);
            let text = match outcome {
                ManualOutcome::Sent => {
                    if action.kind == OperatorKind::Order {
                        self.manual.push(format!("{} {what}", client_id.0));
                        if self.manual.len() > MANUAL_KEPT {
                            self.manual.remove(0);
                        }
                    }
                    format!(
                        "SENT: {what} as order {} (manual, by {}).",
                        client_id.0, s.user
                    )
                }
                ManualOutcome::Refused(e) => {
                    action.outcome = OperatorAction::REFUSED;
                    format!("REFUSED by the risk gate: {what}: {e}. Nothing was sent.")
                }
                other => {
                    action.outcome = OperatorAction::NOT_SENT;
                    let why = match other {
                        ManualOutcome::NotOpen => {
                            "the order is not open (closed already, or not this session's)"
                        }
                        ManualOutcome::NotTraded => "the instrument is not traded in this run",
                        ManualOutcome::JournalFull => "the journal's ring is full",
                        _ => "the run has ended",
                    };
                    format!("NOT SENT: {what}: {why}.")
                }
            };
            self.journal(action);
            out.push((s.chat, text));
        }
        let overdue: Vec<u64> = self
            .submitted
            .iter()
            .filter(|(_, s)| !s.overdue && now.saturating_duration_since(s.at) >= ANSWER_WAIT)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in overdue {
            let Some(s) = self.submitted.get_mut(&seq) else {
                continue;
            };
            s.overdue = true;
            let s = *s;
            let (mut action, what) = self.described(&s, ClientOrderId(0));
            action.outcome = OperatorAction::UNKNOWN;
            self.journal(action);
            out.push((
                s.chat,
                format!(
                    "UNKNOWN: the trading stage has not answered for {what} in {} s; whether it \
was sent is not known (the run may be ending). /orders and the exchange tell.",
                    ANSWER_WAIT.as_secs()
                ),
            ));
        }
        out
    }

    /// The journal record of a manual request (its outcome yet to be set) and how it reads.
    fn described(&self, s: &Submitted, client_id: ClientOrderId) -> (OperatorAction, String) {
        let board = self.ctx.control.board();
        let (_, p, q, _) = board.name(s.instrument).unwrap_or(("?", 0, 0, 0));
        let sym = board.label(s.instrument).unwrap_or_else(|| "?".to_owned());
        let mut action = OperatorAction::now(s.user, OperatorKind::Order);
        action.instrument = s.instrument;
        action.client_id = client_id;
        let what = match s.action {
            ManualAction::Order { side, px, qty, tif } => {
                action.side = side;
                action.px = px;
                action.qty = qty;
                format!(
                    "{} {} {sym} @ {} {}",
                    if side == OrderSide::Buy {
                        "BUY"
                    } else {
                        "SELL"
                    },
                    fixed(qty.0, q),
                    fixed(px.0, p),
                    if tif == TimeInForce::Ioc {
                        "IOC"
                    } else {
                        "GTC"
                    }
                )
            }
            ManualAction::Cancel { target } => {
                action.kind = OperatorKind::Cancel;
                action.target = target.0;
                format!("cancel of order {}", target.0)
            }
        };
        (action, what)
    }

    /// The alarms that fire on the tops the book stage last published: `(chat, message)`.
    pub fn check_alarms(&mut self) -> Vec<(i64, String)> {
        let Some(sources) = &self.ctx.sources else {
            return Vec::new();
        };
        let books = Arc::clone(&sources.books);
        let (fired, failed) = self.alarms.check(|i| books.top(i));
        if let Some(e) = failed {
            eprintln!("bot: alerts fired but their file was not rewritten: {e}");
        }
        fired.into_iter().map(|f| (f.chat, f.text)).collect()
    }

    /// Journals `action`, when the run has a journal.
    fn journal(&self, action: OperatorAction) {
        if let Some(j) = &self.ctx.journal {
            let pushed = j.lock().unwrap_or_else(|e| e.into_inner()).push(action);
            if !pushed {
                eprintln!("bot: an operator action did not fit the journal's ring");
            }
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
            if let (Some(v), Some((_, _, _, m)), Some(sym)) =
                (board.read(id), board.name(id), board.label(id))
            {
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
        let tickers = c.tickers();
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            if let (Some(t), Some((_, p, q, _)), Some(sym)) =
                (tickers.read(id), board.name(id), board.label(id))
            {
                let _ = writeln!(out, "{}", ticker_text(&sym, &t, p, q));
            }
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
        mut line: impl FnMut(InstrumentId, &str, u8, u8, u8, &crate::control::AccountView) -> String,
    ) -> String {
        let board = self.ctx.control.board();
        let mut out = Vec::new();
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            // A symbol on several venues is named with its venue.
            if let (Some(v), Some((_, p, q, m)), Some(label)) =
                (board.read(id), board.name(id), board.label(id))
            {
                out.push(line(id, &label, p, q, m, &v));
            }
        }
        if out.is_empty() {
            "No instruments.".to_owned()
        } else {
            out.join("\n")
        }
    }

    /// The strategy instances of instrument `id` with their accounts, when more than one trades
    /// it (one instance's account is the instrument's, so it gets no lines of its own).
    fn instances(&self, id: InstrumentId) -> Vec<(String, crate::control::InstanceView)> {
        let Some(board) = self.ctx.control.instances() else {
            return Vec::new();
        };
        if board.of(id).len() < 2 {
            return Vec::new();
        }
        board
            .read_all(id)
            .map(|(k, v)| (k.name.clone(), v))
            .collect()
    }

    /// `/positions`: each instrument's position (the total), and under it each instance's
    /// own when several trade it.
    pub fn positions(&self) -> String {
        self.each(|id, sym, p, q, _, v| {
            let mut text = format!(
                "{sym}: position {} @ mark {}",
                fixed(v.position, q),
                if v.mark == 0 {
                    "-".to_owned()
                } else {
                    fixed(v.mark, p)
                }
            );
            let instances = self.instances(id);
            for (name, i) in &instances {
                let _ = write!(
                    text,
                    "\n  {name}: position {} (open orders {})",
                    fixed(i.position, q),
                    i.open_orders
                );
            }
            let rest = v
                .position
                .saturating_sub(instances.iter().map(|(_, i)| i.position).sum());
            if !instances.is_empty() && rest != 0 {
                let _ = write!(text, "\n  other orders: position {}", fixed(rest, q));
            }
            text
        })
    }

    /// `/pnl`: each instrument's PnL (the total), under it each instance's own when several
    /// trade it, and the total net.
    pub fn pnl(&self) -> String {
        let mut total: i64 = 0;
        let mut scale = None;
        let mut same_scale = true;
        let lines = self.each(|id, sym, _, _, m, v| {
            total = total.saturating_add(v.net());
            if scale.is_some_and(|s| s != m) {
                same_scale = false;
            }
            scale = Some(m);
            let mut text = format!(
                "{sym}: realised {} unrealised {} fees {} net {} (volume {})",
                fixed(v.realized, m),
                fixed(v.unrealized, m),
                fixed(v.fees, m),
                fixed(v.net(), m),
                fixed(v.volume, m)
            );
            let instances = self.instances(id);
            // Each instance keeps its own average cost, so its realised and unrealised PnL
            // split apart from the account's: only their sum (gross) adds up.
            let mut rest = (v.realized.saturating_add(v.unrealized), v.fees);
            for (name, i) in &instances {
                let _ = write!(
                    text,
                    "\n  {name}: realised {} unrealised {} fees {} net {} (fills {}, orders {})",
                    fixed(i.realized, m),
                    fixed(i.unrealized, m),
                    fixed(i.fees, m),
                    fixed(i.net(), m),
                    i.fills,
                    i.orders
                );
                rest = (
                    rest.0
                        .saturating_sub(i.realized.saturating_add(i.unrealized)),
                    rest.1.saturating_sub(i.fees),
                );
            }
            // The stage's closing orders and the operator's belong to no instance.
            if !instances.is_empty() && rest != (0, 0) {
                let _ = write!(
                    text,
                    "\n  other orders: gross {} fees {} net {}",
                    fixed(rest.0, m),
                    fixed(rest.1, m),
                    fixed(rest.0.saturating_sub(rest.1), m)
                );
            }
            text
        });
        match scale {
            Some(s) if same_scale => format!("{lines}\nTotal net {}", fixed(total, s)),
            _ => lines,
        }
    }

    /// `/orders`, and the manual orders sent in this session (the last few).
    pub fn orders(&self) -> String {
        let mut out = self.each(|_, sym, _, _, _, v| {
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
        });
        if !self.manual.is_empty() {
            let _ = write!(out, "\nManual orders:\n{}", self.manual.join("\n"));
        }
        out
    }

    /// `/book SYMBOL` (`VENUE:SYMBOL` for one venue's; a symbol on several venues, bare, shows
    /// each venue's book: looking harms nothing).
    pub fn book(&self, symbol: Option<&str>) -> String {
        let board = self.ctx.control.board();
        let shown: Option<Vec<usize>> = match symbol.map(|s| self.ctx.control.instrument(s)) {
            None => None,
            Some(Ok(id)) => Some(vec![usize::from(id.0)]),
            Some(Err(crate::control::NameError::Ambiguous { symbol, .. })) => Some(
                board
                    .names_and_venues()
                    .enumerate()
                    .filter(|(_, (s, _))| *s == symbol)
                    .map(|(i, _)| i)
                    .collect(),
            ),
            Some(Err(crate::control::NameError::Unknown { .. })) => Some(Vec::new()),
            Some(Err(e)) => return format!("{e} /status lists the instruments."),
        };
        let mut out = Vec::new();
        for i in 0..board.len() {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            let (Some((_, p, q, _)), Some(sym)) = (board.name(id), board.label(id)) else {
                continue;
            };
            if shown.as_ref().is_some_and(|s| !s.contains(&i)) {
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
    let sym = c.board().label(id).unwrap_or_else(|| "?".to_owned());
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

/// What an operator is told when their name for an instrument names none, or several.
fn named_none(e: &NameError) -> String {
    match e {
        NameError::Unknown { .. } => format!("{e} /positions lists them."),
        _ => e.to_string(),
    }
}

fn kill(c: &Control) -> String {
    if let Some(r) = c.kill_reason() {
        return format!("Trading is already killed ({r}).");
    }
    c.kill(KillReason::Operator);
    "KILLED: every open order is being cancelled and nothing trades until restart.".to_owned()
}

/// `(symbol, venue, price decimals)` of every instrument on the board, by id.
fn instrument_names(c: &Control) -> Vec<(String, &'static str, u8)> {
    let board = c.board();
    (0..board.len())
        .map(|i| {
            let id = InstrumentId(u16::try_from(i).unwrap_or(u16::MAX));
            let venue = board.venue(id).unwrap_or("");
            board
                .name(id)
                .map_or((String::new(), venue, 0), |n| (n.0.to_owned(), venue, n.1))
        })
        .collect()
}

/// One instrument's 24 h ticker: last price, change from the window's open (and in per cent),
/// high, low and volume; the fields a venue has not sent yet are left out.
pub fn ticker_text(sym: &str, t: &pinion_core::Ticker24h, p: u8, q: u8) -> String {
    use pinion_core::TickerFields as F;
    let mut parts = Vec::new();
    if t.fields.contains(F::LAST) {
        parts.push(format!("last {}", fixed(t.last.0, p)));
    }
    if let Some(change) = t.change() {
        let sign = if change > 0 { "+" } else { "" };
        let pct = t.change_bps().map_or(String::new(), |bps| {
            let sign = if bps > 0 { "+" } else { "" };
            format!(" ({sign}{}%)", fixed(bps, 2))
        });
        parts.push(format!("change {sign}{}{pct}", fixed(change, p)));
    }
    if t.fields.contains(F::HIGH) {
        parts.push(format!("high {}", fixed(t.high.0, p)));
    }
    if t.fields.contains(F::LOW) {
        parts.push(format!("low {}", fixed(t.low.0, p)));
    }
    if t.fields.contains(F::VOLUME) {
        parts.push(format!("volume {}", fixed(t.volume.0, q)));
    }
    format!("24h {sym}: {}", parts.join(", "))
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
            risk: Vec::new(),
            journal: None,
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
        assert_eq!(
            Command::parse("/buy btcusdt 0.001 65000"),
            Command::Order(
                OrderSide::Buy,
                Some(vec!["btcusdt".into(), "0.001".into(), "65000".into()])
            )
        );
        assert_eq!(
            Command::parse("/sell Confirm"),
            Command::Order(OrderSide::Sell, None)
        );
        assert_eq!(
            Command::parse("/cancel 12"),
            Command::Cancel(Some("12".into()))
        );
        assert_eq!(Command::parse("/cancel confirm"), Command::Cancel(None));
        assert_eq!(
            Command::parse("/alert BTCUSDT > 1"),
            Command::Alert(vec!["BTCUSDT".into(), ">".into(), "1".into()])
        );
        assert_eq!(Command::parse("/unalert 3"), Command::Unalert("3".into()));
        assert_eq!(Command::parse("no"), Command::Drop);
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
            "Nothing to confirm: nothing is pending."
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
    fn a_manual_order_the_stage_does_not_answer_is_told_unknown_once_then_its_answer() {
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let c = Arc::clone(&cmds.context().control);
        let mut stage = c.reader();
        let t0 = Instant::now();
        let words = vec!["BTCUSDT".to_owned(), "0.001".to_owned(), "65000".to_owned()];
        let ask = cmds.handle(1, 5, &Command::Order(OrderSide::Sell, Some(words)), t0);
        assert!(
            ask.text
                .contains("Risk gate: decides when the order is sent"),
            "{}",
            ask.text
        );
        assert_eq!(ask.buttons.len(), 2);
        let pressed = Command::Button(ask.buttons[0].data.clone());
        let sent = cmds.handle(1, 5, &pressed, t0 + Duration::from_secs(1));
        assert!(
            sent.text.contains("handed to the risk gate"),
            "{}",
            sent.text
        );
        assert!(cmds.take_answers(t0 + Duration::from_secs(2)).is_empty());
        let late = cmds.take_answers(t0 + Duration::from_secs(12));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].0, 5, "told in the chat it was asked in");
        assert!(
            late[0].1.starts_with(
                "UNKNOWN: the trading stage has not answered for SELL 0.001 BTCUSDT @ 65000 GTC"
            ),
            "{}",
            late[0].1
        );
        assert!(
            cmds.take_answers(t0 + Duration::from_secs(20)).is_empty(),
            "told once"
        );
        let request = stage.take_manual().expect("handed over");
        stage.answer(ManualAnswer {
            seq: request.seq,
            client_id: ClientOrderId(77),
            outcome: ManualOutcome::Sent,
        });
        let answered = cmds.take_answers(t0 + Duration::from_secs(21));
        assert_eq!(
            answered,
            [(
                5,
                "SENT: SELL 0.001 BTCUSDT @ 65000 GTC as order 77 (manual, by 1).".to_owned()
            )]
        );
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

    #[test]
    fn positions_and_pnl_show_each_instance_under_its_instrument_when_several_trade_it() {
        use crate::control::{InstanceKey, InstanceView};
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let c = Arc::clone(&cmds.context().control);
        let t = Instant::now();
        let key = |instance, name: &str| InstanceKey {
            instrument: InstrumentId(0),
            instance,
            name: name.to_owned(),
            kind: "imbalance",
        };
        // The instrument's account, the total: two instances and a manual fill of 0.0005.
        c.board().write(
            InstrumentId(0),
            &AccountView {
                position: 250,
                realized: 3_000_000,
                unrealized: -500_000,
                fees: 700_000,
                mark: 6_543_210,
                at_ns: 1,
                ..AccountView::default()
            },
        );
        let single = cmds.run(1, &Command::Pnl, t);
        assert!(c.lay_out_instances(vec![key(0, "maker"), key(1, "taker")]));
        assert!(!c.lay_out_instances(Vec::new()), "laid out once");
        let board = c.instances().expect("laid out");
        board.write(
            InstrumentId(0),
            0,
            &InstanceView {
                position: 300,
                realized: 2_000_000,
                unrealized: -600_000,
                fees: 400_000,
                fills: 4,
                orders: 9,
                open_orders: 2,
                at_ns: 1,
                ..InstanceView::default()
            },
        );
        board.write(
            InstrumentId(0),
            1,
            &InstanceView {
                position: -100,
                realized: 1_000_000,
                unrealized: 200_000,
                fees: 200_000,
                fills: 2,
                orders: 3,
                at_ns: 1,
                ..InstanceView::default()
            },
        );
        assert_eq!(
            cmds.run(1, &Command::Positions, t),
            "BTCUSDT: position 0.0025 @ mark 65432.1\n  \
             maker: position 0.003 (open orders 2)\n  \
             taker: position -0.001 (open orders 0)\n  \
             other orders: position 0.0005"
        );
        assert_eq!(
            cmds.run(1, &Command::Pnl, t),
            "BTCUSDT: realised 0.3 unrealised -0.05 fees 0.07 net 0.18 (volume 0)\n  \
             maker: realised 0.2 unrealised -0.06 fees 0.04 net 0.1 (fills 4, orders 9)\n  \
             taker: realised 0.1 unrealised 0.02 fees 0.02 net 0.1 (fills 2, orders 3)\n  \
             other orders: gross -0.01 fees 0.01 net -0.02\n\
             Total net 0.18"
        );
        // With one instance on the board the answers are the instrument's alone, as before.
        let one = Commands::new(ctx(), Duration::from_secs(30));
        let c1 = Arc::clone(&one.context().control);
        c1.board().write(
            InstrumentId(0),
            &AccountView {
                position: 250,
                realized: 3_000_000,
                unrealized: -500_000,
                fees: 700_000,
                mark: 6_543_210,
                at_ns: 1,
                ..AccountView::default()
            },
        );
        assert!(c1.lay_out_instances(vec![key(0, "imbalance")]));
        assert_eq!(one.pnl(), single);
        assert_eq!(one.positions(), "BTCUSDT: position 0.0025 @ mark 65432.1");
    }

    #[test]
    fn a_symbol_traded_on_two_venues_is_named_with_each_venue() {
        let mut all = pinion_core::Instruments::new();
        for venue in [
            pinion_core::Venue::BybitSpot,
            pinion_core::Venue::BybitLinear,
        ] {
            let spec =
                pinion_core::InstrumentSpec::new(venue, "BTCUSDT", "0.1", "0.001").expect("spec");
            all.add(spec).expect("add");
        }
        let spec = pinion_core::InstrumentSpec::new(
            pinion_core::Venue::BybitLinear,
            "ETHUSDT",
            "0.01",
            "0.01",
        )
        .expect("spec");
        all.add(spec).expect("add");
        let cmds = Commands::new(
            BotContext {
                control: Control::new(&all),
                ..ctx()
            },
            Duration::from_secs(30),
        );
        let c = Arc::clone(&cmds.context().control);
        for (i, position) in [(0, 5), (1, -5), (2, 0)] {
            c.board().write(
                InstrumentId(i),
                &AccountView {
                    position,
                    at_ns: 1,
                    ..AccountView::default()
                },
            );
        }
        let lines: Vec<String> = cmds
            .positions()
            .lines()
            .map(|l| l.split(':').next().unwrap_or("").to_owned())
            .collect();
        assert_eq!(
            lines,
            ["BTCUSDT (bybit-spot)", "BTCUSDT (bybit-linear)", "ETHUSDT"]
        );
    }

    #[test]
    fn a_symbol_traded_on_two_venues_is_acted_on_only_when_its_venue_is_named() {
        let mut all = pinion_core::Instruments::new();
        for (venue, sym) in [
            (pinion_core::Venue::BybitSpot, "BTCUSDT"),
            (pinion_core::Venue::BybitLinear, "BTCUSDT"),
            (pinion_core::Venue::BybitLinear, "ETHUSDT"),
        ] {
            let spec = pinion_core::InstrumentSpec::new(venue, sym, "0.1", "0.001").expect("spec");
            all.add(spec).expect("add");
        }
        let mut cmds = Commands::new(
            BotContext {
                control: Control::new(&all),
                ..ctx()
            },
            Duration::from_secs(30),
        );
        let c = Arc::clone(&cmds.context().control);
        let mut r = c.reader();
        let t0 = Instant::now();
        let run = |cmds: &mut Commands, text: &str| cmds.run(1, &Command::parse(text), t0);
        let ambiguous = "BTCUSDT trades on bybit-spot and bybit-linear: say bybit-spot:BTCUSDT or bybit-linear:BTCUSDT.";

        // Bare, every command that acts on it refuses, and nothing is left to confirm.
        assert_eq!(run(&mut cmds, "/flatten btcusdt"), ambiguous);
        assert_eq!(run(&mut cmds, "/buy BTCUSDT 0.001 65000"), ambiguous);
        assert_eq!(run(&mut cmds, "/sell btcusdt 0.001 65000"), ambiguous);
        assert_eq!(run(&mut cmds, "/alert BTCUSDT > 65000"), ambiguous);
        assert_eq!(
            run(&mut cmds, "yes"),
            "Nothing to confirm: nothing is pending."
        );
        assert!(!r.poll().flatten && !r.poll().manual);

        // A venue it does not trade on, and a venue that is none, are refused too.
        assert_eq!(
            run(&mut cmds, "/flatten bybit-inverse:BTCUSDT"),
            "BTCUSDT does not trade on bybit-inverse: it trades on bybit-spot and bybit-linear."
        );
        assert_eq!(
            run(&mut cmds, "/buy bybit:BTCUSDT 0.001 65000"),
            "No venue \"bybit\": this run trades on bybit-spot and bybit-linear."
        );
        assert_eq!(
            run(&mut cmds, "/flatten bybit-spot:NOPE"),
            "No instrument NOPE on bybit-spot. /positions lists them."
        );

        // Qualified, the question names the venue, and the confirmation acts on that one.
        let ask = run(&mut cmds, "/flatten bybit-linear:btcusdt");
        assert!(ask.starts_with("Flatten BTCUSDT (bybit-linear)?"), "{ask}");
        let done = run(&mut cmds, "yes");
        assert!(done.starts_with("FLATTEN BTCUSDT (bybit-linear)"), "{done}");
        assert!(r.poll().flatten);
        assert_eq!(r.take_flatten(0), None, "the other venue's BTCUSDT");
        assert_eq!(r.take_flatten(1), Some(FlattenCause::Operator));
        let ask = run(&mut cmds, "/buy BYBIT-SPOT:BTCUSDT 0.001 65000.1");
        assert!(
            ask.starts_with("BUY 0.001 BTCUSDT (bybit-spot) @ 65000.1 (limit"),
            "{ask}"
        );
        run(&mut cmds, "yes");
        assert!(r.poll().manual);
        assert_eq!(r.take_manual().map(|m| m.instrument), Some(InstrumentId(0)));
        assert_eq!(
            run(&mut cmds, "/alert bybit-linear:BTCUSDT > 65000"),
            "Alert #1 set: bybit-linear:BTCUSDT price > 65000. It fires once. /alerts lists them."
        );
        assert_eq!(
            run(&mut cmds, "/alerts"),
            "Alerts:\n#1 bybit-linear:BTCUSDT price > 65000 (set by 1)"
        );

        // A symbol on one venue is named bare as before.
        let ask = run(&mut cmds, "/flatten ethusdt");
        assert!(ask.starts_with("Flatten ETHUSDT?"), "{ask}");
        run(&mut cmds, "/flatten confirm");
        assert!(r.poll().flatten);
        assert_eq!(r.take_flatten(2), Some(FlattenCause::Operator));

        // Looking harms nothing: a bare /book shows each venue's, named.
        let book = |text: &str| -> Vec<String> {
            cmds.book(
                match Command::parse(text) {
                    Command::Book(s) => s,
                    other => panic!("{other:?}"),
                }
                .as_deref(),
            )
            .lines()
            .map(|l| l.split(':').next().unwrap_or("").to_owned())
            .collect()
        };
        assert_eq!(
            book("/book btcusdt"),
            ["BTCUSDT (bybit-spot)", "BTCUSDT (bybit-linear)"]
        );
        assert_eq!(
            book("/book bybit-linear:BTCUSDT"),
            ["BTCUSDT (bybit-linear)"]
        );
        assert_eq!(book("/book ETHUSDT"), ["ETHUSDT"]);
        assert_eq!(
            book("/book"),
            ["BTCUSDT (bybit-spot)", "BTCUSDT (bybit-linear)", "ETHUSDT"]
        );
        assert_eq!(
            cmds.book(Some("binance-spot:BTCUSDT")),
            "BTCUSDT does not trade on binance-spot: it trades on bybit-spot and bybit-linear. \
/status lists the instruments."
        );
    }

    #[test]
    fn status_shows_the_24h_ticker_once_one_arrived() {
        let mut cmds = Commands::new(ctx(), Duration::from_secs(30));
        let c = Arc::clone(&cmds.context().control);
        let t = Instant::now();
        assert!(!cmds.run(1, &Command::Status, t).contains("24h"));
        let mut ticker = pinion_core::Ticker24h {
            last: pinion_core::Px(6_511_430),
            open: pinion_core::Px(6_500_870),
            high: pinion_core::Px(6_528_230),
            low: pinion_core::Px(6_469_440),
            volume: pinion_core::Qty(1_757_391_200),
            instrument: InstrumentId(0),
            fields: pinion_core::TickerFields::ALL,
            ..pinion_core::Ticker24h::default()
        };
        c.tickers().write(InstrumentId(0), &ticker);
        let status = cmds.run(1, &Command::Status, t);
        assert!(
            status.contains(
                "24h BTCUSDT: last 65114.3, change +105.6 (+0.16%), high 65282.3, \
                 low 64694.4, volume 17573.912"
            ),
            "{status}"
        );
        // A fall, and a ticker that has not said its open yet (no change).
        ticker.last = pinion_core::Px(6_400_000);
        c.tickers().write(InstrumentId(0), &ticker);
        assert!(
            cmds.run(1, &Command::Status, t)
                .contains("change -1008.7 (-1.55%)")
        );
        ticker.fields = pinion_core::TickerFields::LAST;
        c.tickers().write(InstrumentId(0), &ticker);
        assert!(
            cmds.run(1, &Command::Status, t)
                .ends_with("24h BTCUSDT: last 64000")
        );
    }
}
