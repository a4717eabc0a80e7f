//! The engine's control seam: how anything off the hot path (a signal, the config, the operator
//! bot, the metrics thread) stops or steers trading, and reads what trading has done, without
//! touching a stage's state.
//!
//! **Commands** are atomics the strategy stage reads once per poll ([`ControlReader::poll`]):
//! - **kill** ([`Control::kill`]): latched. The stage turns every risk gate's kill switch on,
//!   cancels every order its gates know to be open, and stops asking the strategies for
//!   decisions; reports are still applied. It cannot be undone while the engine runs. SIGUSR1
//!   sets it ([`Control::kill_on_signal`]), as does `[risk] kill_switch = true` at start.
//! - **pause** / **resume**: while paused the strategies are not asked for decisions (no new
//!   orders, no cancels of their own); open orders stay where they are.
//! - **cancel all** ([`Control::cancel_all`]): once per request, every open order is cancelled.
//!   The strategies see the cancellations as reports and may quote again unless paused.
//! - **flatten** ([`Control::flatten`], per instrument; SIGUSR2 flattens every instrument,
//!   [`Control::flatten_on_signal`]): the instrument's strategy is stopped, its open orders
//!   cancelled and its position closed in slices inside the price band until flat or the
//!   deadline (`[risk.flatten]`); this works while killed, as closing orders that only reduce
//!   pass the kill switch. Each request is a cause stored in the instrument's slot and a bump of
//!   one generation counter, so the stage's poll costs one load until something is asked. How
//!   each run went is written to the [`FlattenBoard`] for the bot, the metrics and the report.
//!
//! **Manual orders** ([`Control::submit`]): the operator bot's `/buy`, `/sell` and `/cancel`,
//! once confirmed, go to the stage as [`ManualRequest`]s on a fixed-size ring (the bot's end
//! behind a lock, off the hot path; the stage's end owned by its reader, no lock), with a
//! generation counter bumped after each, so the stage's poll costs one load until one comes.
//! The stage passes each order through the instrument's risk gate like any other, and answers
//! on a second ring ([`ManualAnswer`]: the client id it used and what became of it), which the
//! bot drains ([`Control::answers`]).
//!
//! **The account board** ([`AccountBoard`]): after every view and every report the strategy
//! stage writes each instrument's position, PnL, fees, volume and open orders into a slot of
//! atomics under a sequence number, a seqlock in safe code: the writer never waits, a reader
//! retries while a write is under way. Nothing is allocated after start-up. The
//! [`TickerBoard`] holds each instrument's latest 24-hour ticker the same way, and the
//! [`InstanceBoard`] each strategy instance's own account on each instrument it trades (laid
//! out once by the stage at start-up, written in the same publish as the instrument's).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};

use pinion_core::{InstrumentId, Instruments, Px, Qty, Ticker24h, TickerFields};
use pinion_strategy::{
    ClientOrderId, FlattenCause, FlattenOutcome, OrderSide, RiskReject, TimeInForce,
};

use crate::runtime::{RingRx, RingTx, ring};

mod instances;
pub mod names;

pub use instances::{InstanceBoard, InstanceKey, InstanceView};
pub use names::{NameError, find_instrument};

/// Manual requests (and answers) the rings hold: far more than operators confirm between two
/// polls of the stage.
pub const MANUAL_RING: usize = 64;

/// What an operator asks the strategy stage to send. Small and `Copy`: it crosses a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManualRequest {
    /// The bot's number for the request; its answer carries it back.
    pub seq: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// What to send.
    pub action: ManualAction,
}

/// What a [`ManualRequest`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualAction {
    /// A limit order (`Ioc` for a marketable limit that must not rest, `Gtc` to rest).
    Order {
        /// Buy or sell.
        side: OrderSide,
        /// The limit price.
        px: Px,
        /// The quantity.
        qty: Qty,
        /// How long it may rest.
        tif: TimeInForce,
    },
    /// A cancel of an order the instrument's risk gate knows open.
    Cancel {
        /// The order to cancel.
        target: ClientOrderId,
    },
}

/// What became of a [`ManualRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualOutcome {
    /// The gate let it through and it went to the gateway (the venue's answer follows as
    /// reports, like any order's).
    Sent,
    /// The risk gate refused it: nothing was sent.
    Refused(RiskReject),
    /// A cancel of an order the gate does not know open (closed already, or never this
    /// session's): nothing was sent.
    NotOpen,
    /// The instrument is not traded in this run.
    NotTraded,
    /// The journal's ring was full: the order was not sent (never at the venue without its
    /// record).
    JournalFull,
    /// The run has ended: nothing more is sent.
    Ended,
}

/// The stage's answer to a [`ManualRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManualAnswer {
    /// The request's number.
    pub seq: u64,
    /// The client id the stage gave the order or cancel (0 when nothing was built).
    pub client_id: ClientOrderId,
    /// What became of it.
    pub outcome: ManualOutcome,
}

/// Why trading was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KillReason {
    /// An operator asked (the bot or the control endpoint).
    Operator = 1,
    /// SIGUSR1.
    Signal = 2,
    /// `[risk] kill_switch = true`.
    Config = 3,
    /// The loss limit was reached.
    LossLimit = 4,
    /// The drawdown limit was reached.
    Drawdown = 5,
}

impl KillReason {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Operator,
            2 => Self::Signal,
            3 => Self::Config,
            4 => Self::LossLimit,
            5 => Self::Drawdown,
            _ => return None,
        })
    }

    /// The name reports and metrics use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Signal => "signal",
            Self::Config => "config",
            Self::LossLimit => "loss_limit",
            Self::Drawdown => "drawdown",
        }
    }
}

impl std::fmt::Display for KillReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stage did with the commands, for reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlStats {
    /// Cancel-all requests made.
    pub cancel_all_requests: u64,
    /// Cancels the stage sent on its own (kill and cancel-all), not the strategies'.
    pub control_cancels: u64,
    /// Whether the stage has applied a kill.
    pub kill_applied: bool,
    /// Flatten requests made (one per instrument asked; SIGUSR2 asks for every instrument).
    pub flatten_requests: u64,
}

/// The shared control block. See the module docs.
#[derive(Debug)]
pub struct Control {
    kill: AtomicU8,
    /// Set by SIGUSR1 (a signal handler may only store a flag).
    signal: Arc<AtomicBool>,
    paused: AtomicBool,
    cancel_all: AtomicU64,
    control_cancels: AtomicU64,
    kill_applied: AtomicBool,
    /// Set by SIGUSR2; the reader turns it into a flatten of every instrument.
    flatten_signal: Arc<AtomicBool>,
    /// The cause of a flatten asked for and not yet taken, per instrument (0: none).
    flatten_asked: Vec<AtomicU8>,
    /// Bumped after every request: the reader looks at the slots only when it moved.
    flatten_gen: AtomicU64,
    flatten_requests: AtomicU64,
    board: AccountBoard,
    tickers: TickerBoard,
    flattens: FlattenBoard,
    /// Each strategy instance's account, laid out by the stage at start-up.
    instances: OnceLock<InstanceBoard>,
    /// The bot's end of each strategy stage's manual requests' ring.
    manual_tx: Vec<Mutex<RingTx<ManualRequest>>>,
    /// The strategy stage of each instrument id (absent: the first).
    manual_route: Vec<u8>,
    /// Bumped after every request pushed: the reader looks at the ring only when it moved.
    manual_gen: AtomicU64,
    /// Each strategy stage's ends, taken by its reader.
    stage_ends: Vec<StageEnds>,
    /// The bot's end of each stage's answers' ring.
    answers_rx: Vec<Mutex<RingRx<ManualAnswer>>>,
}

/// A strategy stage's ends of its manual requests' ring and its answers' ring, until its reader
/// takes them.
type StageEnds = Mutex<Option<(RingRx<ManualRequest>, RingTx<ManualAnswer>)>>;

impl Control {
    /// A control block for `instruments`, nothing requested.
    pub fn new(instruments: &Instruments) -> Arc<Self> {
        Self::with_stages(instruments, 1, Vec::new())
    }

    /// A control block for `instruments` traded by `stages` strategy stages, instrument id `i`
    /// by stage `route[i]` (ids past the table: the first): each stage has its own manual
    /// requests' ring, and a request goes to its instrument's stage.
    pub fn with_stages(instruments: &Instruments, stages: usize, route: Vec<u8>) -> Arc<Self> {
        let stages = stages.max(1);
        let mut manual_tx = Vec::with_capacity(stages);
        let mut stage_ends = Vec::with_capacity(stages);
        let mut answers = Vec::with_capacity(stages);
        for _ in 0..stages {
            let (tx, rx) = ring(MANUAL_RING);
            let (answers_tx, answers_rx) = ring(MANUAL_RING);
            manual_tx.push(Mutex::new(tx));
            stage_ends.push(Mutex::new(Some((rx, answers_tx))));
            answers.push(Mutex::new(answers_rx));
        }
        Arc::new(Self {
            kill: AtomicU8::new(0),
            signal: Arc::new(AtomicBool::new(false)),
            paused: AtomicBool::new(false),
            cancel_all: AtomicU64::new(0),
            control_cancels: AtomicU64::new(0),
            kill_applied: AtomicBool::new(false),
            flatten_signal: Arc::new(AtomicBool::new(false)),
            flatten_asked: (0..instruments.len()).map(|_| AtomicU8::new(0)).collect(),
            flatten_gen: AtomicU64::new(0),
            flatten_requests: AtomicU64::new(0),
            board: AccountBoard::new(instruments),
            tickers: TickerBoard::new(instruments.len()),
            flattens: FlattenBoard::new(instruments.len()),
            instances: OnceLock::new(),
            manual_tx,
            manual_route: route,
            manual_gen: AtomicU64::new(0),
            stage_ends,
            answers_rx: answers,
        })
    }

    /// Hands `request` to the strategy stage; `false` when its ring is full (nothing was
    /// asked). Off the hot path: the bot's end is behind a lock.
    pub fn submit(&self, request: ManualRequest) -> bool {
        let stage = self
            .manual_route
            .get(usize::from(request.instrument.0))
            .map_or(0, |&s| usize::from(s));
        let Some(tx) = self.manual_tx.get(stage).or(self.manual_tx.first()) else {
            return false;
        };
        let mut tx = tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.try_push(request).is_err() {
            return false;
        }
        self.manual_gen.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// The stage's answers to manual requests that came since the last call, oldest first.
    pub fn answers(&self) -> Vec<ManualAnswer> {
        let mut all = Vec::new();
        for rx in &self.answers_rx {
            let mut rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(std::iter::from_fn(|| rx.pop()));
        }
        all
    }

    /// Asks the stage to flatten instrument `id` for `cause`; `false` for an unknown id.
    pub fn flatten(&self, id: InstrumentId, cause: FlattenCause) -> bool {
        let Some(slot) = self.flatten_asked.get(usize::from(id.0)) else {
            return false;
        };
        slot.store(cause as u8, Ordering::Release);
        self.flatten_requests.fetch_add(1, Ordering::AcqRel);
        self.flatten_gen.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Asks the stage to flatten every instrument for `cause`.
    pub fn flatten_all(&self, cause: FlattenCause) {
        for i in 0..self.flatten_asked.len() {
            self.flatten(InstrumentId(u16::try_from(i).unwrap_or(u16::MAX)), cause);
        }
    }

    /// The instrument an operator names `given` on the board: a symbol (case-insensitive) the
    /// run trades on one venue, or `VENUE:SYMBOL`. A symbol on several venues, named bare, is
    /// refused with the qualified names to say instead ([`names`]).
    pub fn instrument(&self, given: &str) -> Result<InstrumentId, NameError> {
        find_instrument(self.board.names_and_venues(), given)
            .map(|i| InstrumentId(u16::try_from(i).unwrap_or(u16::MAX)))
    }

    /// Makes SIGUSR2 flatten every instrument (each signal a new request) until the returned
    /// registration is undone. The handler only stores a flag; the stage's reader takes it.
    pub fn flatten_on_signal(&self) -> std::io::Result<signal_hook::SigId> {
        signal_hook::flag::register(
            signal_hook::consts::SIGUSR2,
            Arc::clone(&self.flatten_signal),
        )
    }

    /// How each instrument's flatten runs went, as the strategy stage wrote it.
    pub fn flattens(&self) -> &FlattenBoard {
        &self.flattens
    }

    /// Kills trading (latched; the first reason is kept).
    pub fn kill(&self, reason: KillReason) {
        let _ = self
            .kill
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Makes SIGUSR1 kill trading until the returned registration is undone
    /// (`signal_hook::low_level::unregister`). The handler only stores a flag; the stage reads
    /// it.
    pub fn kill_on_signal(&self) -> std::io::Result<signal_hook::SigId> {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&self.signal))
    }

    /// Why trading was killed, if it was.
    pub fn kill_reason(&self) -> Option<KillReason> {
        if self.signal.load(Ordering::Relaxed) {
            self.kill(KillReason::Signal);
        }
        KillReason::from_code(self.kill.load(Ordering::Acquire))
    }

    /// Stops new decisions until [`Control::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Lets the strategies decide again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }

    /// Whether decisions are paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Asks the stage to cancel every open order once.
    pub fn cancel_all(&self) {
        self.cancel_all.fetch_add(1, Ordering::AcqRel);
    }

    /// What the stage did with the commands.
    pub fn stats(&self) -> ControlStats {
        ControlStats {
            cancel_all_requests: self.cancel_all.load(Ordering::Acquire),
            control_cancels: self.control_cancels.load(Ordering::Acquire),
            kill_applied: self.kill_applied.load(Ordering::Acquire),
            flatten_requests: self.flatten_requests.load(Ordering::Acquire),
        }
    }

    /// Each instrument's latest 24-hour ticker.
    pub fn tickers(&self) -> &TickerBoard {
        &self.tickers
    }

    /// Each instrument's account as the strategy stage last wrote it.
    pub fn board(&self) -> &AccountBoard {
        &self.board
    }

    /// Each strategy instance's account on each instrument, as the strategy stage last wrote
    /// it; `None` until a stage has laid the board out.
    pub fn instances(&self) -> Option<&InstanceBoard> {
        self.instances.get()
    }

    /// Lays the instance board out: a slot for each of `keys`, in the order given within an
    /// instrument (the stage's slot order). Once only: `false` when it was laid out already.
    pub fn lay_out_instances(&self, keys: Vec<InstanceKey>) -> bool {
        let n = self.board.len();
        self.instances.set(InstanceBoard::new(n, keys)).is_ok()
    }

    /// The reader the (first) strategy stage polls. The first one made takes its manual
    /// requests' ring.
    pub fn reader(self: &Arc<Self>) -> ControlReader {
        self.reader_for(0)
    }

    /// The reader strategy stage `stage` polls. The first one made for the stage takes its
    /// manual requests' ring.
    pub fn reader_for(self: &Arc<Self>, stage: usize) -> ControlReader {
        let manual = self
            .stage_ends
            .get(stage)
            .and_then(|e| e.lock().unwrap_or_else(|e| e.into_inner()).take());
        ControlReader {
            control: Arc::clone(self),
            cancel_all_seen: self.cancel_all.load(Ordering::Acquire),
            killed: false,
            flatten_seen: 0,
            manual_seen: 0,
            manual,
        }
    }
}

/// What the strategy stage must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Commands {
    /// Kill newly requested: switch the gates off and cancel everything (reported once).
    pub kill: Option<KillReason>,
    /// Killed (now or before): ask the strategies for nothing.
    pub killed: bool,
    /// Paused: ask the strategies for nothing.
    pub paused: bool,
    /// Cancel every open order (reported once per request).
    pub cancel_all: bool,
    /// A flatten was asked for: take each instrument's with [`ControlReader::take_flatten`].
    pub flatten: bool,
    /// Manual requests came: take them with [`ControlReader::take_manual`].
    pub manual: bool,
}

impl Commands {
    /// Whether the strategies may decide.
    #[inline]
    pub const fn may_decide(&self) -> bool {
        !self.killed && !self.paused
    }
}

/// The strategy stage's side of [`Control`]: five relaxed loads a poll.
#[derive(Debug)]
pub struct ControlReader {
    control: Arc<Control>,
    cancel_all_seen: u64,
    killed: bool,
    flatten_seen: u64,
    manual_seen: u64,
    /// The manual requests' ring and the answers' (the first reader's only).
    manual: Option<(RingRx<ManualRequest>, RingTx<ManualAnswer>)>,
}

impl ControlReader {
    /// The commands to carry out now.
    #[inline]
    pub fn poll(&mut self) -> Commands {
        let c = &*self.control;
        let mut out = Commands {
            paused: c.paused.load(Ordering::Relaxed),
            killed: self.killed,
            ..Commands::default()
        };
        if !self.killed && (c.kill.load(Ordering::Relaxed) != 0 || c.signal.load(Ordering::Relaxed))
        {
            self.killed = true;
            out.killed = true;
            out.kill = c.kill_reason();
            c.kill_applied.store(true, Ordering::Release);
        }
        let requested = c.cancel_all.load(Ordering::Relaxed);
        if requested != self.cancel_all_seen {
            self.cancel_all_seen = requested;
            out.cancel_all = true;
        }
        if c.flatten_signal.load(Ordering::Relaxed)
            && c.flatten_signal.swap(false, Ordering::AcqRel)
        {
            c.flatten_all(FlattenCause::Signal);
        }
        let asked = c.flatten_gen.load(Ordering::Acquire);
        if asked != self.flatten_seen {
            self.flatten_seen = asked;
            out.flatten = true;
        }
        let manual = c.manual_gen.load(Ordering::Acquire);
        if manual != self.manual_seen && self.manual.is_some() {
            self.manual_seen = manual;
            out.manual = true;
        }
        out
    }

    /// Counts this reader's stage as killed from now on (its strategies are asked for nothing
    /// more) without killing the account: the stage's own kill, where others go on.
    pub fn stop_here(&mut self) {
        self.killed = true;
    }

    /// The next manual request waiting, if any (no lock: this end is the reader's own).
    #[inline]
    pub fn take_manual(&mut self) -> Option<ManualRequest> {
        self.manual.as_mut()?.0.pop()
    }

    /// Answers a manual request; `false` when the answers' ring is full (the bot has not
    /// drained it: the answer is lost, the order's reports still tell).
    #[inline]
    pub fn answer(&mut self, answer: ManualAnswer) -> bool {
        self.manual
            .as_mut()
            .is_some_and(|(_, tx)| tx.try_push(answer).is_ok())
    }

    /// Takes the flatten asked for instrument `idx`, if one is.
    #[inline]
    pub fn take_flatten(&self, idx: usize) -> Option<FlattenCause> {
        let slot = self.control.flatten_asked.get(idx)?;
        FlattenCause::from_code(slot.swap(0, Ordering::AcqRel))
    }

    /// Where to write how flatten runs went.
    #[inline]
    pub fn flattens(&self) -> &FlattenBoard {
        &self.control.flattens
    }

    /// Counts `n` cancels the stage sent on its own.
    #[inline]
    pub fn count_cancels(&self, n: u64) {
        if n > 0 {
            self.control.control_cancels.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The board to write the account to.
    #[inline]
    pub fn board(&self) -> &AccountBoard {
        &self.control.board
    }

    /// The board to write each strategy instance's account to, once laid out.
    #[inline]
    pub fn instances(&self) -> Option<&InstanceBoard> {
        self.control.instances.get()
    }

    /// Lays the instance board out (see [`Control::lay_out_instances`]).
    pub fn lay_out_instances(&self, keys: Vec<InstanceKey>) -> bool {
        self.control.lay_out_instances(keys)
    }

    /// The board to write the 24-hour tickers to.
    #[inline]
    pub fn tickers(&self) -> &TickerBoard {
        &self.control.tickers
    }

    /// Kills trading from the stage itself (a loss or drawdown limit reached).
    pub fn kill(&self, reason: KillReason) {
        self.control.kill(reason);
    }
}

/// One instrument's account, as written to the board. Money in units of
/// `10^-money_decimals` ([`AccountBoard::name`]), quantities in units of
/// `10^-qty_decimals`, as in the strategy stage's ledger (saturated to `i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountView {
    /// Signed position.
    pub position: i64,
    /// Realised PnL before fees.
    pub realized: i64,
    /// Unrealised PnL at the mark (0 without one).
    pub unrealized: i64,
    /// Fees paid (negative: rebates).
    pub fees: i64,
    /// Notional traded.
    pub volume: i64,
    /// The mark (mid) price, 0 without one.
    pub mark: i64,
    /// Orders open (sent and not known closed).
    pub open_orders: u64,
    /// Fills.
    pub fills: u64,
    /// Orders sent.
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Orders the risk gate refused.
    pub risk_rejects: u64,
    /// Orders the venue rejected.
    pub venue_rejects: u64,
    /// Event time of the write, ns.
    pub at_ns: u64,
    /// Orders and cancels sent, by reason code (index `code as usize`).
    pub sent_by_code: [u64; REASON_CODES],
    /// Fills, by the reason code of the order filled.
    pub fills_by_code: [u64; REASON_CODES],
}

/// How many reason codes the board counts by.
pub const REASON_CODES: usize = pinion_strategy::ReasonCode::ALL.len();

/// The scalar fields of an [`AccountView`] on the board, before its two by-reason rows.
const SCALARS: usize = 13;

impl AccountView {
    /// The `(code, sent, filled)` of every reason code with anything sent or filled.
    pub fn by_reason(&self) -> impl Iterator<Item = (pinion_strategy::ReasonCode, u64, u64)> + '_ {
        pinion_strategy::ReasonCode::ALL
            .into_iter()
            .zip(self.sent_by_code.iter().zip(&self.fills_by_code))
            .filter(|(_, (s, f))| **s + **f > 0)
            .map(|(c, (s, f))| (c, *s, *f))
    }

    /// Net PnL: realised and unrealised less fees.
    pub const fn net(&self) -> i64 {
        self.realized
            .saturating_add(self.unrealized)
            .saturating_sub(self.fees)
    }
}

/// A slot of a board: `N` fields under a sequence number (a seqlock in safe code).
#[derive(Debug)]
struct Slot<const N: usize> {
    seq: AtomicU64,
    fields: [AtomicI64; N],
}

impl<const N: usize> Default for Slot<N> {
    fn default() -> Self {
        Self {
            seq: AtomicU64::new(0),
            fields: std::array::from_fn(|_| AtomicI64::new(0)),
        }
    }
}

impl<const N: usize> Slot<N> {
    /// Writes `values` (one writer).
    #[inline]
    fn write(&self, values: [i64; N]) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (f, v) in self.fields.iter().zip(values) {
            f.store(v, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of one write, and how many writes there were.
    fn read(&self) -> ([i64; N], u64) {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let v: [i64; N] = std::array::from_fn(|i| self.fields[i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return (v, before / 2);
            }
        }
    }
}

/// Every instrument's [`AccountView`]. See the module docs.
#[derive(Debug)]
pub struct AccountBoard {
    slots: Vec<Slot<{ SCALARS + 2 * REASON_CODES }>>,
    /// `(symbol, price decimals, qty decimals, money decimals)` per instrument, fixed at start.
    names: Vec<(String, u8, u8, u8)>,
    /// The venue of each instrument (its config name), fixed at start.
    venues: Vec<&'static str>,
}

impl AccountBoard {
    fn new(instruments: &Instruments) -> Self {
        let names = instruments
            .iter()
            .map(|(_, s)| {
                (
                    s.symbol.to_string(),
                    s.price_decimals,
                    s.qty_decimals,
                    s.money_decimals(),
                )
            })
            .collect::<Vec<_>>();
        Self {
            slots: (0..names.len()).map(|_| Slot::default()).collect(),
            names,
            venues: instruments.iter().map(|(_, s)| s.venue.name()).collect(),
        }
    }

    /// Instruments on the board.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the board has no instrument.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The symbol of `id`, and the decimals of its prices, quantities and money (PnL and fees:
    /// the quote asset, or the base asset for an inverse contract).
    pub fn name(&self, id: InstrumentId) -> Option<(&str, u8, u8, u8)> {
        self.names
            .get(usize::from(id.0))
            .map(|(s, p, q, m)| (s.as_str(), *p, *q, *m))
    }

    /// The venue of `id`, as configs name it: one symbol may be traded on several.
    pub fn venue(&self, id: InstrumentId) -> Option<&'static str> {
        self.venues.get(usize::from(id.0)).copied()
    }

    /// Each instrument's `(symbol, venue)`, by id.
    pub fn names_and_venues(&self) -> impl Iterator<Item = (&str, &'static str)> + '_ {
        self.names
            .iter()
            .zip(&self.venues)
            .map(|((s, ..), v)| (s.as_str(), *v))
    }

    /// How operators read `id`'s name: its symbol, and its venue in brackets when the board
    /// holds the symbol on several venues (`BTCUSDT (bybit-spot)`). Allocates: not for the hot
    /// path.
    pub fn label(&self, id: InstrumentId) -> Option<String> {
        let (sym, ..) = self.name(id)?;
        let venue = self.venue(id)?;
        let shared = self
            .names_and_venues()
            .filter(|(s, _)| *s == sym)
            .nth(1)
            .is_some();
        Some(if shared {
            format!("{sym} ({venue})")
        } else {
            sym.to_owned()
        })
    }

    /// Writes `view` for `id` (one writer: the strategy stage).
    #[inline]
    pub fn write(&self, id: InstrumentId, view: &AccountView) {
        let Some(slot) = self.slots.get(usize::from(id.0)) else {
            return;
        };
        let scalars = [
            view.position,
            view.realized,
            view.unrealized,
            view.fees,
            view.volume,
            view.mark,
            view.open_orders as i64,
            view.fills as i64,
            view.orders as i64,
            view.cancels as i64,
            view.risk_rejects as i64,
            view.venue_rejects as i64,
            view.at_ns as i64,
        ];
        let mut by_code = view.sent_by_code.iter().chain(&view.fills_by_code);
        slot.write(std::array::from_fn(|i| match scalars.get(i) {
            Some(&v) => v,
            None => by_code.next().map_or(0, |&v| v as i64),
        }));
    }

    /// Reads `id`'s account: a consistent copy of one write (`None` for an unknown id).
    pub fn read(&self, id: InstrumentId) -> Option<AccountView> {
        let (v, _) = self.slots.get(usize::from(id.0))?.read();
        Some(AccountView {
            position: v[0],
            realized: v[1],
            unrealized: v[2],
            fees: v[3],
            volume: v[4],
            mark: v[5],
            open_orders: v[6] as u64,
            fills: v[7] as u64,
            orders: v[8] as u64,
            cancels: v[9] as u64,
            risk_rejects: v[10] as u64,
            venue_rejects: v[11] as u64,
            at_ns: v[12] as u64,
            sent_by_code: std::array::from_fn(|c| v[SCALARS + c] as u64),
            fills_by_code: std::array::from_fn(|c| v[SCALARS + REASON_CODES + c] as u64),
        })
    }
}

/// Every instrument's latest 24-hour ticker (the venue's `24hrTicker`, `miniTicker` or
/// `tickers`, deltas merged), written by the strategy stage as they arrive, for the bot.
#[derive(Debug)]
pub struct TickerBoard {
    slots: Vec<Slot<7>>,
}

impl TickerBoard {
    fn new(instruments: usize) -> Self {
        Self {
            slots: (0..instruments).map(|_| Slot::default()).collect(),
        }
    }

    /// Writes `id`'s ticker (one writer: the strategy stage).
    #[inline]
    pub fn write(&self, id: InstrumentId, t: &Ticker24h) {
        let Some(slot) = self.slots.get(usize::from(id.0)) else {
            return;
        };
        slot.write([
            t.last.0,
            t.open.0,
            t.high.0,
            t.low.0,
            t.volume.0,
            i64::from(t.fields.0),
            t.exch_ts.max(t.t_recv) as i64,
        ]);
    }

    /// `id`'s latest ticker; `None` before the first (or for an unknown id).
    pub fn read(&self, id: InstrumentId) -> Option<Ticker24h> {
        let (v, writes) = self.slots.get(usize::from(id.0))?.read();
        (writes > 0).then(|| Ticker24h {
            exch_ts: v[6] as u64,
            t_recv: v[6] as u64,
            last: Px(v[0]),
            open: Px(v[1]),
            high: Px(v[2]),
            low: Px(v[3]),
            volume: Qty(v[4]),
            instrument: id,
            fields: TickerFields(v[5] as u8),
        })
    }
}

/// How an instrument's flatten runs went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlattenView {
    /// Runs started (flattens and de-risks).
    pub started: u64,
    /// Runs ended.
    pub ended: u64,
    /// Of those, the runs that reached their target (the rest passed their deadline).
    pub done: u64,
    /// The run under way, if one is.
    pub running: Option<FlattenCause>,
    /// The last run that ended: its cause, its outcome, and the position it left.
    pub last: Option<(FlattenCause, FlattenOutcome, Qty)>,
}

/// One instrument's slot of [`FlattenBoard`].
#[derive(Debug, Default)]
struct FlattenSlot {
    started: AtomicU64,
    ended: AtomicU64,
    done: AtomicU64,
    running: AtomicU8,
    last_cause: AtomicU8,
    last_outcome: AtomicU8,
    last_left: AtomicI64,
}

/// Each instrument's [`FlattenView`]: written by the strategy stage when a run starts and ends
/// (the fields first, then the count, with release), read by the bot, the metrics and the
/// report. Allocated at start-up.
#[derive(Debug)]
pub struct FlattenBoard {
    slots: Vec<FlattenSlot>,
}

impl FlattenBoard {
    fn new(instruments: usize) -> Self {
        Self {
            slots: (0..instruments).map(|_| FlattenSlot::default()).collect(),
        }
    }

    /// A run for `cause` started on instrument `idx`.
    #[inline]
    pub fn started(&self, idx: usize, cause: FlattenCause) {
        if let Some(s) = self.slots.get(idx) {
            s.running.store(cause as u8, Ordering::Release);
            s.started.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A run of instrument `idx` ended.
    #[inline]
    pub fn ended(&self, idx: usize, cause: FlattenCause, outcome: FlattenOutcome, left: Qty) {
        if let Some(s) = self.slots.get(idx) {
            s.last_cause.store(cause as u8, Ordering::Release);
            s.last_outcome.store(outcome as u8, Ordering::Release);
            s.last_left.store(left.0, Ordering::Release);
            s.running.store(0, Ordering::Release);
            if outcome == FlattenOutcome::Done {
                s.done.fetch_add(1, Ordering::AcqRel);
            }
            s.ended.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Instrument `idx`'s runs (`None` for an unknown one).
    pub fn read(&self, idx: usize) -> Option<FlattenView> {
        let s = self.slots.get(idx)?;
        let ended = s.ended.load(Ordering::Acquire);
        let last = match (
            FlattenCause::from_code(s.last_cause.load(Ordering::Acquire)),
            FlattenOutcome::from_code(s.last_outcome.load(Ordering::Acquire)),
        ) {
            (Some(c), Some(o)) => Some((c, o, Qty(s.last_left.load(Ordering::Acquire)))),
            _ => None,
        };
        Some(FlattenView {
            started: s.started.load(Ordering::Acquire),
            ended,
            done: s.done.load(Ordering::Acquire).min(ended),
            running: FlattenCause::from_code(s.running.load(Ordering::Acquire)),
            last,
        })
    }

    /// Instruments on the board.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the board has no instrument.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Clamps a ledger value into the board's `i64`.
#[inline]
pub fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruments() -> Instruments {
        let mut all = Instruments::new();
        let spec = pinion_core::InstrumentSpec::new(
            pinion_core::Venue::BinanceSpot,
            "BTCUSDT",
            "0.01",
            "0.00001",
        )
        .expect("spec");
        all.add(spec).expect("add");
        all
    }

    #[test]
    fn the_first_kill_reason_is_kept_and_reported_once() {
        let c = Control::new(&instruments());
        let mut r = c.reader();
        assert_eq!(r.poll(), Commands::default());
        c.kill(KillReason::LossLimit);
        c.kill(KillReason::Operator);
        let first = r.poll();
        assert_eq!(first.kill, Some(KillReason::LossLimit));
        assert!(first.killed && !first.may_decide());
        let second = r.poll();
        assert_eq!(second.kill, None);
        assert!(second.killed);
        assert_eq!(c.kill_reason(), Some(KillReason::LossLimit));
        assert!(c.stats().kill_applied);
    }

    #[test]
    fn each_cancel_all_request_is_seen_once_and_pause_is_a_level() {
        let c = Control::new(&instruments());
        let mut r = c.reader();
        c.cancel_all();
        c.pause();
        let p = r.poll();
        assert!(p.cancel_all && p.paused && !p.may_decide());
        let p = r.poll();
        assert!(!p.cancel_all && p.paused);
        c.resume();
        c.cancel_all();
        c.cancel_all();
        let p = r.poll();
        assert!(p.cancel_all && p.may_decide());
        assert!(!r.poll().cancel_all);
    }

    #[test]
    fn a_flatten_request_is_seen_once_per_instrument_and_the_signal_asks_for_all() {
        let c = Control::new(&instruments());
        let mut r = c.reader();
        assert!(!r.poll().flatten);
        assert!(!c.flatten(InstrumentId(3), FlattenCause::Operator));
        assert!(c.flatten(InstrumentId(0), FlattenCause::Operator));
        assert_eq!(c.instrument("btcusdt"), Ok(InstrumentId(0)));
        assert!(r.poll().flatten);
        assert_eq!(r.take_flatten(0), Some(FlattenCause::Operator));
        assert_eq!(r.take_flatten(0), None);
        assert!(!r.poll().flatten);
        c.flatten_signal.store(true, Ordering::SeqCst);
        assert!(r.poll().flatten);
        assert_eq!(r.take_flatten(0), Some(FlattenCause::Signal));
        assert_eq!(c.stats().flatten_requests, 2);
        let b = c.flattens();
        b.started(0, FlattenCause::Signal);
        assert_eq!(
            b.read(0).map(|v| v.running),
            Some(Some(FlattenCause::Signal))
        );
        b.ended(0, FlattenCause::Signal, FlattenOutcome::Done, Qty(0));
        let v = b.read(0).expect("instrument");
        assert_eq!((v.started, v.ended, v.running), (1, 1, None));
        assert_eq!(
            v.last,
            Some((FlattenCause::Signal, FlattenOutcome::Done, Qty(0)))
        );
    }

    #[test]
    fn manual_requests_go_to_their_instruments_strategy_stage_and_every_answer_comes_back() {
        let mut all = instruments();
        let eth = pinion_core::InstrumentSpec::new(
            pinion_core::Venue::BinanceSpot,
            "ETHUSDT",
            "0.01",
            "0.0001",
        )
        .expect("spec");
        all.add(eth).expect("add");
        // ETHUSDT (id 1) on the second stage.
        let c = Control::with_stages(&all, 2, vec![0, 1]);
        let (mut first, mut second) = (c.reader_for(0), c.reader_for(1));
        let cancel = |seq, id| ManualRequest {
            seq,
            instrument: InstrumentId(id),
            action: ManualAction::Cancel {
                target: ClientOrderId(7),
            },
        };
        assert!(c.submit(cancel(1, 1)));
        assert!(c.submit(cancel(2, 0)));
        assert!(first.poll().manual && second.poll().manual);
        assert_eq!(second.take_manual(), Some(cancel(1, 1)));
        assert_eq!(second.take_manual(), None);
        assert_eq!(first.take_manual(), Some(cancel(2, 0)));
        for (reader, seq) in [(&mut second, 1), (&mut first, 2)] {
            assert!(reader.answer(ManualAnswer {
                seq,
                client_id: ClientOrderId(0),
                outcome: ManualOutcome::NotOpen,
            }));
        }
        let mut seqs: Vec<u64> = c.answers().iter().map(|a| a.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2]);
        // A stage's ends are taken once: a second reader of it gets no manual requests.
        assert!(c.submit(cancel(3, 1)));
        let mut late = c.reader_for(1);
        assert!(!late.poll().manual);
        assert_eq!(second.take_manual(), Some(cancel(3, 1)));
    }

    #[test]
    fn the_signal_flag_kills_with_its_reason() {
        let c = Control::new(&instruments());
        let mut r = c.reader();
        c.signal.store(true, Ordering::SeqCst);
        assert_eq!(r.poll().kill, Some(KillReason::Signal));
    }

    #[test]
    fn a_reader_never_sees_half_a_write() {
        let c = Control::new(&instruments());
        let writer = Arc::clone(&c);
        let id = InstrumentId(0);
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let t = std::thread::spawn(move || {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let v = AccountView {
                    position: n,
                    realized: n,
                    unrealized: -n,
                    fees: 2 * n,
                    at_ns: n as u64,
                    ..AccountView::default()
                };
                writer.board().write(id, &v);
            }
        });
        let mut last = 0;
        for _ in 0..200_000 {
            let v = c.board().read(id).expect("instrument");
            assert_eq!(
                (v.realized, v.unrealized, v.fees),
                (v.position, -v.position, 2 * v.position)
            );
            assert!(v.position >= last, "a write never goes back");
            last = v.position;
        }
        done.store(true, Ordering::Relaxed);
        t.join().expect("writer");
        assert!(c.board().read(InstrumentId(7)).is_none());
        assert_eq!(c.board().name(id).map(|n| n.0), Some("BTCUSDT"));
    }
}
