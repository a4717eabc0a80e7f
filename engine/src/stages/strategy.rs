//! The strategy stage: hands each [`BookTop`] the book stage sent, where it lies in the ring,
//! to the strategies the config chose ([`AnyStrategy`], each instance trading the instrument),
//! passes every [`OrderIntent`] they write through that
//! instrument's [`RiskGate`], and sends what the gate admits to the gateway. A refused intent is
//! answered to the strategy at once as a `Rejected(Risk)` report. Execution reports come back
//! from the gateway on a reverse ring and go to the gate and the strategy that own the order.
//!
//! **Instances.** Each `[[strategy]]` instance that trades an instrument is a slot of it,
//! allocated at start-up and called in config order. An instance's orders take client ids from
//! its own slice of the instrument's range, so a report finds its instance by the id alone. A
//! new order passes self-trade prevention first (it must not cross another instance's open
//! order), then the instance's own budget when it has one, then the instrument's gate under the
//! account's limits, which so holds the net position and every order. Each instance keeps a
//! ledger of its own orders' fills; the instrument's ledger holds them all, and the stage's and
//! the operator's orders too.
//!
//! **Market tap.** When the venue taps the market (the simulated venue does), the market the
//! strategy saw (each view, each trade) is forwarded to the gateway too, so the venue matches
//! against exactly that market. Orders decided on a view go out ahead of it: the view is the
//! venue's bookkeeping, the order is the latency that counts. A live venue does not tap the
//! market and only orders cross the ring.
//!
//! **Event time.** The stage keeps an event clock ([`DataClock`]): the latest receive time of the
//! market data it has taken. Tops of book carry their own ([`BookTop::t_recv`]) to the strategy,
//! and every message to the gateway carries the clock, so orders go out stamped with the event
//! time they were decided at. With a simulated venue an [`EventBarrier`] holds each input back until every
//! report due before its event time has arrived, and those are applied first: the strategy sees
//! the same reports at the same points on every run and in every placement.
//!
//! **Account.** Every fill report of an instrument is also booked in that instrument's ledger
//! (a [`Position`] charged the venue's maker or taker fee from `[fees]`), which is what the
//! report's position, PnL and fees come from. For `pinion backtest` the stage also records each
//! fill and, once per period of event time, the account marked at the mid, into a
//! [`Tape`] allocated here at start-up, handed over in [`TradingFinal::tape`].
//!
//! **Control.** Once a poll the stage reads the [`Control`](crate::control::Control) block:
//! a kill switches every gate off, cancels every order the gates know open and stops asking
//! the strategies for decisions (reports are still applied); a pause stops the decisions alone;
//! a cancel-all cancels what is open. After every report, and every view that moves the mark,
//! the instrument's account is written to the control block's board for the bot and metrics,
//! and in the same write each of its instances' own account to the instance board, whose slots
//! the stage lays out from its own at start-up ([`StrategyStage::with_control`]).
//!
//! **Manual orders.** The operator bot's confirmed `/buy`, `/sell` and `/cancel` come through
//! the control block's ring ([`crate::control::ManualRequest`]), taken once a poll when its
//! generation moved. Each order gets a client id of the instrument's manual range and the reason
//! [`ReasonCode::Manual`], passes the
//! instrument's risk gate like a strategy's (refused: nothing is sent), is journaled and sent;
//! a cancel must name an order the gate knows open. Every request is answered on the control
//! block's answers ring with the id used and what became of it. Manual orders go out while
//! paused (the operator decides), never while killed (the gate's kill switch refuses them).
//!
//! **Flatten and de-risk.** A flatten asked through the control block (the bot, SIGUSR2), or
//! ordered by a loss limit under `[risk] on_loss_limit = "flatten"` (after the kill), stops the
//! instrument's strategy, cancels its open orders and closes the position with IOC limits of at
//! most `[risk.flatten] slice_qty`, priced through the touch inside the price band, one at a
//! time, until flat or the deadline ([`Flattener`]). With `[risk.derisk]`, after every move of
//! the mark and every fill, an exposure above its share of equity starts a partial run that
//! cuts the position. Closing orders pass the gate as reduce-only
//! ([`RiskGate::admit_reducing`]), so they go out while killed. Each run's start and end are
//! written to the control block's flatten board.
//!
//! **Money.** After every fill and every move of the mark, each instrument's net PnL goes to
//! its loss guard and to the portfolio's ([`LossWatch`], `[risk]` and `[risk.portfolio]`), at
//! the stage's event time; a limit reached kills trading through the control block
//! (`loss_limit`, or `drawdown`) and the kill is carried out at once, before anything else is
//! decided, so the same event trips it on every run. Before each decision the instrument's
//! [`Sizer`] (`[risk.sizing]`) puts the size of new orders into the [`Intents`] the strategy
//! writes to; with fixed sizing it leaves each strategy's own. An instance with sizing of its
//! own (`[strategy.risk.sizing]`) is sized by a sizer of its own instead, on its own ledger:
//! its capital plus its own fills' net PnL is its equity, and its own round trips its edge.
//!
//! **Journal.** With a journal (`[journal]`, `pinion live --trade`), every order sent to the
//! gateway is pushed to its ring first, and every report applied, and every position after a
//! fill (see [`crate::ops::journal`]). An order that does not fit the ring is not sent: it is
//! answered `Rejected(Overloaded)` at once. A stage resumed from a journal starts with the
//! ledger and gate the journaled fills add up to, the journaled open orders counted open, and
//! client ids past the highest journaled.
//!
//! Histograms: `strategy.service` per input, `hop.book_strategy` and `hop.gateway_strategy`
//! (ring hops), `strategy.t0_to_decision` (`t0` → the strategy's decision on that market
//! state, for every view, whether or not it traded; also split by what brought the view about,
//! `.on_depth`, `.on_ticker`, `.on_other`) and `strategy.t0_to_order_decision` (the
//! same, for the views that led to an order or cancel: the part of tick-to-trade before the
//! gateway).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pinion_core::{
    BookTop, Candle, CandleBuilder, DataClock, EventClock, InstrumentId, Instruments, Px, Qty,
    Ticker24h, TradePrint,
};
use pinion_gateway::ExitPolicy;
use pinion_strategy::{
    AnyStrategy, Breach, DeriskParams, ExecReport, FeeRates, FlattenCause, FlattenStats,
    FlattenStep, Flattener, Intents, LossGuard, LossWatch, MAX_INTENTS, OrderIdSource, OrderIntent,
    OrderReason, OrderStatus, OrderType, Position, ProtectParams, ProtectStats, Protector,
    ReasonCode, RiskGate, Sizer, Strategy, StrategyStats, TimeInForce, derisk_target,
};

use super::event_barrier::EventBarrier;
use super::msg::{BookMsg, OrderMsg, Trigger};
use super::outbox::{Outbox, Stamped};
use crate::backtest::Tape;
use crate::config::{OnLossLimit, Settings};
use crate::control::{
    AccountView, Commands, ControlReader, InstanceKey, InstanceView, KillReason, MANUAL_RING,
    ManualAction, ManualAnswer, ManualOutcome, ManualRequest, saturate,
};
use crate::latency::{LiveLatency, Recorder};
use crate::ops::journal::{JournalTx, PositionChange, Record, Recovered, resume_from};
use crate::runtime::{LiveCounts, Progress, RingRx, Stage, StageReport, now_ns};

/// Inputs handled per poll at most.
const BATCH: usize = 64;

/// Client order ids of instrument `i` start at `(i + 1) << ORDER_ID_SHIFT`, so ids from
/// different instruments' strategies never collide at the venue.
const ORDER_ID_SHIFT: u32 = 40;

/// The stage's own cancels (kill, cancel-all) of instrument `i` take ids from
/// `((i + 1) << ORDER_ID_SHIFT) | CONTROL_ID_BIT`, apart from the strategy's.
const CONTROL_ID_BIT: u64 = 1 << 39;

/// Manual orders (the operator bot's) of instrument `i` take ids from
/// `((i + 1) << ORDER_ID_SHIFT) | MANUAL_ID_BIT`, apart from the strategy's and the stage's.
pub const MANUAL_ID_BIT: u64 = 1 << 37;

/// The strategy ids of instrument `i`'s instance slot `k` start at
/// `((i + 1) << ORDER_ID_SHIFT) | (k << SLOT_SHIFT)`: a report finds the instance it belongs to
/// from its id alone. Slot 0 is the range one strategy per instrument always had.
const SLOT_SHIFT: u32 = 30;

/// The slot bits of a strategy id (below [`MANUAL_ID_BIT`]).
const SLOT_MASK: u64 = 0x7f;

/// The instance slot a client id of a strategy belongs to; `None` for the stage's and the
/// operator's ids.
#[inline]
const fn slot_of(id: u64) -> Option<usize> {
    if id & (CONTROL_ID_BIT | MANUAL_ID_BIT) != 0 {
        None
    } else {
        Some(((id >> SLOT_SHIFT) & SLOT_MASK) as usize)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct StrategyCounts {
    views: u64,
    unsynced_views: u64,
    trades: u64,
    /// Closed candles given to strategies (the venue's or built).
    candles: u64,
    /// Venue klines and 24 h tickers taken.
    venue_klines: u64,
    tickers: u64,
    exec_reports: u64,
    intents: u64,
    untraded_inputs: u64,
    /// Inputs held back until the venue's reports before their event time were in.
    barrier_waits: u64,
    /// Intents the risk gates refused.
    refused: u64,
    /// A digest of the reports applied, in order (client id, status, fill price and quantity).
    exec_digest: u64,
    /// Orders not sent because the journal's ring was full.
    journal_refused: u64,
    /// New orders of one instance stopped because they would have crossed another instance's
    /// open order on the same instrument (self-trade prevention).
    self_trades: u64,
    /// Instances stopped by their own loss limits.
    instance_loss_breaches: u64,
}

/// The digest of nothing: FNV-1a's offset basis.
const DIGEST_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds `word` into an FNV-1a style digest (a word at a time: order-sensitive, no allocation).
#[inline]
fn digest(d: u64, word: u64) -> u64 {
    (d ^ word).wrapping_mul(0x0000_0100_0000_01b3)
}

/// A stable number for a report's status (its reason included).
fn status_code(s: OrderStatus) -> u64 {
    match s {
        OrderStatus::New => 1,
        OrderStatus::PartiallyFilled => 2,
        OrderStatus::Filled => 3,
        OrderStatus::Canceled => 4,
        OrderStatus::Expired => 5,
        OrderStatus::Rejected(r) => 0x100 | r as u64,
        OrderStatus::CancelRejected(r) => 0x200 | r as u64,
    }
}

/// How the strategy stage meets the venue: whether the venue taps the market, and the barrier
/// that keeps a simulated venue's reports in event-time order (none for a live venue).
#[derive(Debug, Clone, Default)]
pub struct VenueLink {
    /// Forward the views and trades the strategy saw to the gateway.
    pub market_tap: bool,
    /// Hold each input until the venue's reports due before it are in.
    pub barrier: Option<Arc<EventBarrier>>,
    /// With wall-clock venues: set by the gateway once its venues have wound down at the end
    /// and their last reports are in the ring. Until then, after the end of input, reports are
    /// still applied (a fill during the final cancels counts), and the strategy's intents are
    /// dropped.
    pub venues_done: Option<Arc<AtomicBool>>,
    /// The venues keep protective orders on the exchange themselves (`protect = "exchange"`):
    /// the engine then holds no exits of its own, unless asked for both.
    pub native_protection: bool,
}

/// The strategy stage. See the module docs.
pub struct StrategyStage {
    /// `strategy`, or `strategy-G` for the placement's strategy stage `G` ≥ 1.
    name: &'static str,
    input: RingRx<Stamped<BookMsg>>,
    /// Everything else, apart from the input, so a message can be handled in its ring slot.
    core: StrategyCore,
}

/// The strategy stage's state.
struct StrategyCore {
    execs: RingRx<Stamped<ExecReport>>,
    out: Outbox<OrderMsg>,
    /// The latest event time taken: what views and outgoing messages are stamped with.
    clock: DataClock,
    link: VenueLink,
    /// Inputs at or before this event time may be handled: the reports due before it are in.
    ready_at: u64,
    /// The last event time published to the barrier.
    published_at: u64,
    /// Order messages sent (orders and cancels).
    orders_sent: u64,
    /// An input taken from the ring before the barrier let it through.
    held: Option<Stamped<BookMsg>>,
    /// Indexed by instrument id.
    strategies: Vec<Option<Traded>>,
    /// Instruments whose units cannot express the configured sizes (not traded).
    untradable: u64,
    /// Where `finish` leaves each instrument's trading result.
    finals: FinalTrading,
    intents: Intents,
    counts: StrategyCounts,
    ended: bool,
    service: Recorder,
    decision: Recorder,
    /// `decision` again, by [`Trigger`] (at its index).
    decision_by_trigger: [Recorder; 3],
    decision_to_order: Recorder,
    hop_book: Recorder,
    hop_exec: Recorder,
    /// The histogram values of the last input, if it led to orders: recorded on the next poll,
    /// so the gateway, which may share the thread, gets the orders first.
    unrecorded: Option<Unrecorded>,
    /// Kill, pause and cancel-all from off the hot path, and the account board.
    control: Option<ControlReader>,
    /// The commands as last polled.
    commands: Commands,
    /// Loss limits of each instrument and of the portfolio.
    losses: LossWatch,
    /// Whether any loss limit is set (else nothing is observed).
    watch_losses: bool,
    /// A loss limit reached flattens every instrument after the kill.
    flatten_on_loss: bool,
    /// Where orders, reports and positions are journaled (`pinion live --trade` with a
    /// `[journal]`).
    journal: Option<JournalTx>,
    /// Instruments whose replayed ledger differs from the last position journaled.
    journal_mismatch: u64,
    /// The exit policy whose cancels this stage sends at the end (live trading only; `None`:
    /// none are sent, as in a replay).
    exit: Option<ExitPolicy>,
    /// Every instrument's 24 h ticker, deltas merged (allocated at start-up).
    tickers: Vec<Ticker24h>,
    /// A loss limit stops this stage's instruments, not the account (see
    /// [`StrategyStage::with_local_kill`]).
    local_kill: bool,
}

/// One strategy instance on one instrument.
#[derive(Debug)]
struct Slot {
    /// The instance's name, for the report.
    name: Arc<str>,
    strategy: AnyStrategy,
    /// The instance (its index in the config): what the reasons of its orders name.
    instance: u8,
    /// The instance's own budget (`[strategy.risk]`), checked before the instrument's gate;
    /// `None` when it has none.
    gate: Option<RiskGate>,
    /// The instance's own fills (its orders'; not the stage's or the operator's).
    ledger: Position,
    /// Of those, fills as maker.
    maker_fills: u64,
    /// Candles for a strategy that reads them.
    candles: Option<CandleFeed>,
    /// The instance's own loss limits (`[strategy.risk]`), on its own fills' net PnL; `None`
    /// when it set none.
    loss: Option<LossGuard>,
    /// Its loss limit was reached (and when): it is asked for nothing more, its orders were
    /// cancelled, and its budget's gate refuses anything new.
    stopped: Option<(Breach, u64)>,
    /// The instance's own sizing (`[strategy.risk.sizing]`), driven by its own ledger: its
    /// capital is its own budget. `None`: its orders take the instrument's size.
    sizer: Option<Sizer>,
    /// For a leg of a pairs instance: the other leg's slot, and whether this one decides.
    pair: Option<PairLink>,
}

/// The link between the two slots of a pairs instance, one on each leg's instrument. The
/// first leg's slot holds the strategy that decides for both; the second's keeps its leg's
/// ledger, budget and client ids, and its reports and books go to the first's strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PairLink {
    /// The other leg's slot: (instrument index, slot index).
    other: (usize, usize),
    /// Whether this slot's strategy decides (the first leg).
    leads: bool,
}

impl Slot {
    /// The slot of the strategy that decides for this one: the first leg's for the second
    /// leg of a pair; `None` when it decides itself.
    #[inline]
    fn led_by(&self) -> Option<(usize, usize)> {
        self.pair.filter(|p| !p.leads).map(|p| p.other)
    }
}

impl Slot {
    /// The instance's account for the instance board, its position marked at the
    /// instrument's mark. Its open orders: its own gate's when it has one, else those of the
    /// instrument's gate whose ids lie in its range (a pass over at most `max_open_orders`).
    #[inline]
    fn view(&self, t: &Traded, st: StrategyStats, at_ns: u64) -> InstanceView {
        let p = &self.ledger;
        let open_orders = match &self.gate {
            Some(g) => g.open_orders() as u64,
            None => t
                .gate
                .open_priced()
                .filter(|(id, ..)| slot_of(id.0) == Some(usize::from(self.instance)))
                .count() as u64,
        };
        InstanceView {
            position: p.qty().0,
            realized: saturate(p.realized()),
            unrealized: t.mark.map_or(0, |m| saturate(p.unrealized(m))),
            fees: saturate(p.fees()),
            volume: saturate(p.volume()),
            fills: p.fills(),
            maker_fills: self.maker_fills,
            orders: st.orders,
            cancels: st.cancels,
            risk_rejects: st.risk_rejects,
            venue_rejects: st.venue_rejects,
            open_orders,
            at_ns,
        }
    }

    /// The position and the realised PnL less fees of its own fills: what its own sizer
    /// measures a round trip on.
    fn booked(&self) -> (Qty, i128) {
        (
            self.ledger.qty(),
            self.ledger.realized() - self.ledger.fees(),
        )
    }

    /// Books a fill of one of its orders in its ledger (charged `fees`), and in its sizer
    /// when it has its own.
    #[inline]
    fn book_fill(&mut self, rep: &ExecReport, fees: &FeeRates) {
        let before = self.booked();
        self.ledger
            .apply_fill_paying(rep.side, rep.last_px, rep.last_qty, rep.maker, fees);
        self.maker_fills += u64::from(rep.maker);
        let after = self.booked();
        if let Some(sizer) = self.sizer.as_mut() {
            sizer.on_fill(before, after);
        }
    }

    /// New orders the instance may send at `now`: its own budget's and the instrument's.
    #[inline]
    fn order_tokens(&mut self, net: &mut RiskGate, now: u64) -> u32 {
        let net = net.order_tokens(now);
        self.gate
            .as_mut()
            .map_or(net, |g| g.order_tokens(now).min(net))
    }
}

/// One traded instrument: its strategy instances and the gate all their intents pass.
#[derive(Debug)]
struct Traded {
    /// The instances trading it (one, unless several `[[strategy]]` name it), allocated at
    /// start-up. Reports of the stage's and the operator's orders go to a lone instance only.
    slots: Vec<Slot>,
    /// The instrument's gate under the account's `[risk]` limits: every order of every
    /// instance passes it, so it holds the net position and every open order.
    gate: RiskGate,
    /// The mid of the last synced top of book: what the open position is marked at.
    mark: Option<Px>,
    /// The account: every fill of the instrument, charged its fee.
    ledger: Position,
    /// The venue's fee rates.
    fees: FeeRates,
    /// Fills and equity samples for a backtest (`None` unless asked for).
    tape: Option<Tape>,
    /// Fills as maker.
    maker_fills: u64,
    /// Fills by the reason code of the order filled (index `code as usize`).
    fills_by_code: [u64; ReasonCode::ALL.len()],
    /// Ids of the stage's own orders (kill and cancel-all cancels, protective closes).
    control_ids: OrderIdSource,
    /// Ids of the operator's manual orders and cancels.
    manual_ids: OrderIdSource,
    /// The position's protective exits.
    protect: Protector,
    /// The size of new orders.
    sizer: Sizer,
    /// Flatten and de-risk runs.
    flatten: Flattener,
    /// The de-risk rule, if on.
    derisk: Option<DeriskParams>,
    /// The best bid and ask of the last synced top of book: what closing orders are priced
    /// from.
    touch: (Option<Px>, Option<Px>),
    /// Where the exits are kept, for the report.
    protection: &'static str,
    /// Slots of pairs instances on other instruments that decide on this one's data too
    /// (instrument index, slot index): its second leg's.
    followers: Vec<(usize, usize)>,
}

/// The candles of one instrument's strategy: built from its trades in trade time until the
/// venue's klines of the same length arrive, the venue's from then on.
#[derive(Debug)]
struct CandleFeed {
    builder: CandleBuilder,
    /// The venue sends klines of the strategy's length: nothing is built any more.
    venue: bool,
}

impl Traded {
    /// The slot (index in `slots`) of the instance strategy client id `id` belongs to; `None`
    /// for the stage's and the operator's ids. An id's slot bits name the instance's number,
    /// which is its index in `slots` only when every instance before it trades this
    /// instrument too.
    #[inline]
    fn slot_index(&self, id: u64) -> Option<usize> {
        let k = slot_of(id)?;
        self.slots.iter().position(|s| usize::from(s.instance) == k)
    }

    /// The reason `code` of the stage's orders on this instrument: they name its first
    /// instance (the only one, unless several trade it).
    #[inline]
    fn reason(&self, code: ReasonCode) -> OrderReason {
        OrderReason::new(self.slots.first().map_or(0, |s| s.instance), code)
    }

    /// Whether a new order of `instance` would cross an open order of another instance on
    /// this instrument: a buy at or above its sell, a sell at or below its buy (an order
    /// without a limit crosses any). Only strategies' orders count on both sides: the stage's
    /// closing orders cancel first, and the operator's are the operator's.
    #[inline]
    fn would_self_trade(&self, intent: &OrderIntent, instance: u8) -> bool {
        if self.slots.len() < 2 || intent.action != pinion_strategy::OrderAction::New {
            return false;
        }
        let limit = (intent.order_type != OrderType::Market).then_some(intent.px);
        self.gate.open_priced().any(|(id, side, px, reason)| {
            side != intent.side
                && reason.strategy != instance
                && slot_of(id.0).is_some()
                && match (limit, side) {
                    (None, _) => true,
                    (Some(l), pinion_strategy::OrderSide::Sell) => px <= l,
                    (Some(l), pinion_strategy::OrderSide::Buy) => px >= l,
                }
        })
    }

    /// The position and the realised PnL less fees: what a round trip is measured on.
    fn booked(&self) -> (Qty, i128) {
        (
            self.ledger.qty(),
            self.ledger.realized() - self.ledger.fees(),
        )
    }

    /// Replays a journal's fills of this instrument into the ledger, the sizer and the gate
    /// (and each instance's own), and counts its open orders open at the gate. `false` when the ledger then differs from
    /// the last position journaled (the fees changed in between, or records were lost).
    fn replay(&mut self, log: &crate::ops::journal::InstrumentLog) -> bool {
        for rep in &log.fills {
            let before = self.booked();
            self.ledger.apply_fill_paying(
                rep.side,
                rep.last_px,
                rep.last_qty,
                rep.maker,
                &self.fees,
            );
            self.maker_fills += u64::from(rep.maker);
            let code = log
                .orders
                .get(&rep.client_id.0)
                .map_or(ReasonCode::Unknown, |o| o.reason.code);
            self.fills_by_code[code as usize] += 1;
            let after = self.booked();
            self.sizer.on_fill(before, after);
            self.gate.on_exec(rep);
            if let Some(slot) = self
                .slot_index(rep.client_id.0)
                .and_then(|k| self.slots.get_mut(k))
            {
                slot.book_fill(rep, &self.fees);
                if let Some(g) = slot.gate.as_mut() {
                    g.on_exec(rep);
                }
            }
        }
        // The venue's protective orders (`protect = "exchange"`) are its own: the gate never
        // counted them, and a resumed one does not either (nor cancels them at a stop).
        for o in log
            .open_orders()
            .filter(|o| !pinion_gateway::binance::guard::is_guard_id(o.client_id))
        {
            let leaves = Qty(o.qty.0.saturating_sub(o.cum_qty.0).max(0));
            self.gate
                .restore_open(o.client_id, o.side, o.order_type, o.px, leaves, o.reason);
            if let Some(g) = self
                .slot_index(o.client_id.0)
                .and_then(|k| self.slots.get_mut(k))
                .and_then(|s| s.gate.as_mut())
            {
                g.restore_open(o.client_id, o.side, o.order_type, o.px, leaves, o.reason);
            }
        }
        log.last_position.is_none_or(|p| {
            p.qty == self.ledger.qty()
                && p.realized == self.ledger.realized()
                && p.fees == self.ledger.fees()
        })
    }

    /// The size new orders of instance slot `k` should have now, or `None` for its
    /// strategy's own: by the instance's own sizer on its own ledger when it has one, else by
    /// the instrument's on the instrument's.
    #[inline]
    fn order_qty(&self, k: usize) -> Option<Qty> {
        let (sizer, ledger) = match self.slots.get(k) {
            Some(Slot {
                sizer: Some(own),
                ledger,
                ..
            }) => (own, ledger),
            _ => (&self.sizer, &self.ledger),
        };
        if sizer.is_fixed() {
            return None;
        }
        self.mark.map(|m| sizer.size(ledger.net(Some(m)), m))
    }
}

/// The counters of slot `k` of instrument `idx` on that instrument: of the strategy that
/// decides for it (a pair's first leg's, for its second leg's slot).
fn slot_stats(strategies: &[Option<Traded>], idx: usize, k: usize) -> StrategyStats {
    let Some(Some(t)) = strategies.get(idx) else {
        return StrategyStats::default();
    };
    let Some(slot) = t.slots.get(k) else {
        return StrategyStats::default();
    };
    let instrument = t.gate.instrument();
    let decider = slot
        .led_by()
        .and_then(|(i, j)| strategies.get(i)?.as_ref()?.slots.get(j))
        .unwrap_or(slot);
    decider.strategy.stats_on(instrument)
}

/// Whether slot `k` of instrument `idx` may decide at `now`: it is not stopped, and its
/// instrument has no protective close or flatten under way; for a pair, the same of the
/// other leg's slot and instrument.
#[inline]
fn slot_may_decide(strategies: &[Option<Traded>], idx: usize, k: usize, now: u64) -> bool {
    let free = |i: usize, j: usize| {
        strategies.get(i).and_then(Option::as_ref).is_some_and(|t| {
            t.slots.get(j).is_some_and(|s| s.stopped.is_none())
                && t.protect.strategy_may_decide(now)
                && t.flatten.strategy_may_decide()
        })
    };
    let pair = strategies
        .get(idx)
        .and_then(Option::as_ref)
        .and_then(|t| t.slots.get(k))
        .and_then(|s| s.pair);
    free(idx, k) && pair.is_none_or(|p| free(p.other.0, p.other.1))
}

/// Instrument `idx`'s instances' counters, added up.
fn traded_stats(strategies: &[Option<Traded>], idx: usize) -> StrategyStats {
    let n = strategies
        .get(idx)
        .and_then(Option::as_ref)
        .map_or(0, |t| t.slots.len());
    (0..n).fold(StrategyStats::default(), |mut a, k| {
        a += slot_stats(strategies, idx, k);
        a
    })
}

/// Joins each pairs instance's two leg slots: the second leg's strategy is joined into the
/// first's, which then decides for both, and the second leg's instrument lists the first's
/// slot among those deciding on its data. A pair whose legs are not both traded here stays
/// unjoined and trades nothing.
fn link_pairs(settings: &Settings, instruments: &Instruments, strategies: &mut [Option<Traded>]) {
    for (k, instance) in settings.instances.iter().enumerate() {
        if !instance.is_pairs() {
            continue;
        }
        let Some([first, second]) = instance.instruments.as_deref() else {
            continue;
        };
        let slot_on = |strategies: &[Option<Traded>], entry: &str| {
            strategies.iter().enumerate().find_map(|(i, t)| {
                let t = t.as_ref()?;
                let spec = instruments.get(t.gate.instrument())?;
                if !crate::config::names_instrument(entry, spec.venue, spec.symbol.as_str()) {
                    return None;
                }
                let j = t.slots.iter().position(|s| usize::from(s.instance) == k)?;
                Some((i, j))
            })
        };
        let (Some(a), Some(b)) = (slot_on(strategies, first), slot_on(strategies, second)) else {
            continue;
        };
        if a.0 == b.0 {
            continue;
        }
        let Some(second_leg) = strategies[b.0]
            .as_ref()
            .and_then(|t| t.slots[b.1].strategy.as_pairs())
            .cloned()
        else {
            continue;
        };
        if let Some(t) = strategies[a.0].as_mut() {
            let lead = &mut t.slots[a.1];
            if let Some(p) = lead.strategy.as_pairs_mut() {
                p.join(&second_leg);
            }
            lead.pair = Some(PairLink {
                other: b,
                leads: true,
            });
        }
        if let Some(t) = strategies[b.0].as_mut() {
            t.slots[b.1].pair = Some(PairLink {
                other: a,
                leads: false,
            });
            t.followers.push(a);
        }
    }
}

/// The instance slots of instrument `id` (`spec`): one per configured instance that trades it
/// (of those `only` lists, when it lists), in config order, each with its strategy
/// (`first_params` when the settings name no instance), its own gate when it has a budget, its
/// own sizer when it has its own sizing, and client ids from its slot's range (past the highest
/// journaled in it, when resumed from `log`). `None` when an instance's units cannot express
/// its sizes.
fn slots_for(
    settings: &Settings,
    spec: &pinion_core::InstrumentSpec,
    id: InstrumentId,
    base: u64,
    log: Option<&crate::ops::journal::InstrumentLog>,
    first_params: pinion_strategy::StrategyParams,
    only: Option<&[u8]>,
) -> Option<Vec<Slot>> {
    let count = settings.instances.len().max(1);
    let mut slots = Vec::with_capacity(count);
    let single = count == 1;
    for k in 0..count {
        // A settings value built without instances runs the one strategy of `trading`.
        let instance = settings.instances.get(k);
        if instance.is_some_and(|i| !i.trades(spec.venue, spec.symbol.as_str()))
            || only.is_some_and(|o| !o.contains(&(k as u8)))
        {
            continue;
        }
        let (params, limits) = match instance {
            Some(i) => i.trading.in_units(spec).ok()?,
            None => (first_params, settings.trading.risk.in_units(spec).ok()?),
        };
        let lo = base | ((k as u64) << SLOT_SHIFT);
        let first = match log {
            // One instance: every strategy id is its own (the range before slots existed).
            Some(l) if single => resume_from(lo, l.max_strategy_id),
            Some(l) => {
                let hi = base | ((k as u64 + 1) << SLOT_SHIFT);
                resume_from(lo, l.orders.range(lo..hi).next_back().map(|(&id, _)| id))
            }
            None => lo,
        };
        let strategy = AnyStrategy::new(id, params, OrderIdSource::new(first));
        let sizer = match instance {
            Some(i) if i.own_sizing => Some(i.trading.money_in_units(spec).ok()?.sizer),
            _ => None,
        };
        let candles = strategy.candle_interval_ns().map(|ns| CandleFeed {
            // Sized for this one instrument, at its id.
            builder: CandleBuilder::new(ns, usize::from(id.0) + 1),
            venue: false,
        });
        let loss = match instance {
            Some(i) if !i.trading.risk.loss.is_off() => {
                let money = spec.price_decimals.saturating_add(spec.qty_decimals);
                Some(LossGuard::new(i.trading.risk.loss.at_scale(money).ok()?))
            }
            _ => None,
        };
        slots.push(Slot {
            loss,
            stopped: None,
            name: Arc::from(instance.map_or(strategy.kind(), |i| i.name.as_str())),
            strategy,
            instance: k as u8,
            gate: instance
                .is_some_and(|i| i.own_budget)
                .then(|| RiskGate::new(id, limits, spec.clone())),
            ledger: Position::for_instrument(spec),
            maker_fills: 0,
            candles,
            sizer,
            pair: None,
        });
    }
    Some(slots)
}

/// What one instrument's strategy did and earned, taken when the stage finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingFinal {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The strategy's kind, as configs name it.
    pub strategy: &'static str,
    /// The strategy's counters.
    pub stats: StrategyStats,
    /// The risk gate's counters.
    pub gate: pinion_strategy::GateStats,
    /// The position at the end.
    pub position: Qty,
    /// Realised PnL before fees, in units of `10^-(price_decimals + qty_decimals)` of the
    /// quote asset.
    pub realized: i128,
    /// PnL of the open position marked at `mark`, same units; `None` without a mark.
    pub unrealized: Option<i128>,
    /// The mid of the last synced top of book.
    pub mark: Option<Px>,
    /// Fees paid (negative: rebates received), same units.
    pub fees: i128,
    /// Notional traded, same units.
    pub volume: i128,
    /// Fills as maker (the rest took liquidity).
    pub maker_fills: u64,
    /// The fee rates charged.
    pub fee_rates: FeeRates,
    /// The fills and equity samples recorded for a backtest (empty otherwise).
    pub tape: Tape,
    /// What the protective exits did.
    pub exits: ProtectStats,
    /// Where the exits are kept (`"engine"`, `"exchange"`, `"both"`, the engine as the venue's
    /// fallback, or `"none"` when no exit is set).
    pub protection: &'static str,
    /// The instrument's own loss limit reached, and the event time it was reached at.
    pub loss_breach: Option<(Breach, u64)>,
    /// What the flatten and de-risk runs did.
    pub flatten: FlattenStats,
    /// Each strategy instance that traded it, apart: its own orders' fills only (the stage's
    /// closing orders and the operator's are in the totals above, not here).
    pub instances: Vec<InstanceFinal>,
}

/// What one strategy instance did and earned on one instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFinal {
    /// The instance's name (`[[strategy]] name`).
    pub name: Arc<str>,
    /// The instance (its index among the configured ones).
    pub instance: u8,
    /// The strategy's kind.
    pub strategy: &'static str,
    /// The strategy's counters.
    pub stats: StrategyStats,
    /// Its own budget's gate counters, when it has one.
    pub gate: Option<pinion_strategy::GateStats>,
    /// The position its fills add up to.
    pub position: Qty,
    /// Realised PnL before fees (the instrument's money units).
    pub realized: i128,
    /// The open position marked at the instrument's mark.
    pub unrealized: Option<i128>,
    /// Fees paid.
    pub fees: i128,
    /// Notional traded.
    pub volume: i128,
    /// Fills.
    pub fills: u64,
    /// Fills as maker.
    pub maker_fills: u64,
    /// Its own loss limit reached, and the event time it was reached at (it was stopped then).
    pub loss_breach: Option<(Breach, u64)>,
}

impl InstanceFinal {
    /// Net PnL: realised and unrealised less fees.
    pub fn net(&self) -> i128 {
        self.realized + self.unrealized.unwrap_or(0) - self.fees
    }
}

impl TradingFinal {
    /// Net PnL: realised and unrealised less fees, in money units.
    pub fn net(&self) -> i128 {
        self.realized + self.unrealized.unwrap_or(0) - self.fees
    }
}

/// Where the strategy stage leaves its instruments' trading results (filled once, in `finish`).
pub type FinalTrading = super::handoff::Handoff<TradingFinal>;

/// See [`StrategyCore::unrecorded`].
#[derive(Debug, Clone, Copy)]
struct Unrecorded {
    t_exit: u64,
    start: u64,
    end: u64,
    decision: Option<(u64, u64, Trigger)>,
}

impl std::fmt::Debug for StrategyStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyStage")
            .field("strategies", &self.core.strategies.iter().flatten().count())
            .field("counts", &self.core.counts)
            .finish_non_exhaustive()
    }
}

/// The strategy stage's connections: its two input rings and its outbox.
#[derive(Debug)]
pub struct StrategyPorts {
    /// Tops of book and trades from the book stage.
    pub input: RingRx<Stamped<BookMsg>>,
    /// Execution reports from the gateway.
    pub execs: RingRx<Stamped<ExecReport>>,
    /// Orders (and the tapped market) to the gateway.
    pub out: Outbox<OrderMsg>,
}

impl StrategyStage {
    /// A stage trading each of `traded` (the instruments that have a book), meeting the venue
    /// as `link` says, and leaving its results in `finals`.
    pub fn new(
        settings: &Settings,
        instruments: &Instruments,
        traded: &[InstrumentId],
        ports: StrategyPorts,
        link: VenueLink,
        finals: FinalTrading,
    ) -> Self {
        Self::resumed(
            settings,
            instruments,
            traded,
            ports,
            link,
            finals,
            None,
            None,
        )
    }

    /// [`StrategyStage::new`], running only the instances `only` lists (their numbers; `None`:
    /// every instance) and the instruments they trade, and resuming what `recovered` (a
    /// journal's state) holds: each instrument's ledger and gate position replayed from its
    /// fills, its open orders counted open by the gate, and client ids starting past the
    /// highest journaled.
    #[allow(clippy::too_many_arguments)] // The stage's whole set-up, each part distinct.
    pub fn resumed(
        settings: &Settings,
        instruments: &Instruments,
        traded: &[InstrumentId],
        ports: StrategyPorts,
        link: VenueLink,
        finals: FinalTrading,
        recovered: Option<&Recovered>,
        only: Option<&[u8]>,
    ) -> Self {
        let mut journal_mismatch = 0;
        let StrategyPorts { input, execs, out } = ports;
        let mut strategies: Vec<Option<Traded>> = (0..instruments.len()).map(|_| None).collect();
        let mut untradable = 0;
        // The portfolio adds money up on the finest scale of any traded instrument.
        let finest = traded
            .iter()
            .filter_map(|&id| instruments.get(id))
            .map(|s| s.price_decimals.saturating_add(s.qty_decimals))
            .max()
            .unwrap_or(0);
        let (portfolio, scale) = settings.trading.risk.portfolio.at_least_scale(finest);
        let mut losses = LossWatch::new(instruments.len(), portfolio, scale);
        for &id in traded {
            let Some(spec) = instruments.get(id) else {
                continue;
            };
            // Under the first instance that trades it: the first configured one may not, and
            // its sizes need not fit this instrument's units.
            let trading = settings.trading_for(spec.venue, spec.symbol.as_str());
            let units = trading
                .in_units(spec)
                .and_then(|(params, limits)| Ok((params, limits, trading.money_in_units(spec)?)));
            match units {
                Ok((params, limits, money)) => {
                    let decimals = spec.price_decimals.saturating_add(spec.qty_decimals);
                    losses.watch(usize::from(id.0), money.loss, decimals);
                    let base = (u64::from(id.0) + 1) << ORDER_ID_SHIFT;
                    let log = recovered
                        .filter(|r| r.is_resumed())
                        .map(|r| r.instrument(id.0).cloned().unwrap_or_default());
                    let (first_control, first_manual) = match &log {
                        Some(l) => (
                            resume_from(base | CONTROL_ID_BIT, l.max_control_id),
                            resume_from(base | MANUAL_ID_BIT, l.max_manual_id),
                        ),
                        None => (base | CONTROL_ID_BIT, base | MANUAL_ID_BIT),
                    };
                    let Some(slots) =
                        slots_for(settings, spec, id, base, log.as_ref(), params, only)
                    else {
                        untradable += 1;
                        continue;
                    };
                    if slots.is_empty() {
                        // No instance names it.
                        continue;
                    }
                    let bt = &settings.backtest;
                    let mut t = Traded {
                        slots,
                        gate: RiskGate::new(id, limits, spec.clone()),
                        mark: None,
                        ledger: Position::for_instrument(spec),
                        fees: settings.fees.for_venue(spec.venue),
                        tape: bt.record.then(|| {
                            Tape::with_capacity(bt.max_fills, bt.max_samples, bt.period_ns)
                        }),
                        maker_fills: 0,
                        fills_by_code: [0; ReasonCode::ALL.len()],
                        control_ids: OrderIdSource::new(first_control),
                        manual_ids: OrderIdSource::new(first_manual),
                        protect: Protector::new(
                            if settings.protect.engine_held(link.native_protection) {
                                settings.protection
                            } else {
                                ProtectParams {
                                    stop_loss_ppm: None,
                                    take_profit_ppm: None,
                                    trailing_ppm: None,
                                    ..settings.protection
                                }
                            },
                            spec.tick,
                        ),
                        protection: if settings.protection.any() {
                            settings.protect.effective(link.native_protection)
                        } else {
                            "none"
                        },
                        sizer: money.sizer,
                        flatten: Flattener::new(money.flatten, spec.step, spec.tick),
                        derisk: money.derisk,
                        touch: (None, None),
                        followers: Vec::with_capacity(settings.instances.len()),
                    };
                    if let Some(log) = &log
                        && !t.replay(log)
                    {
                        journal_mismatch += 1;
                    }
                    strategies[usize::from(id.0)] = Some(t);
                }
                Err(_) => untradable += 1,
            }
        }
        link_pairs(settings, instruments, &mut strategies);
        Self {
            name: "strategy",
            input,
            core: StrategyCore {
                execs,
                out,
                clock: DataClock::default(),
                link,
                ready_at: 0,
                published_at: 0,
                orders_sent: 0,
                held: None,
                strategies,
                untradable,
                finals,
                intents: Intents::new(),
                counts: StrategyCounts {
                    exec_digest: DIGEST_START,
                    ..StrategyCounts::default()
                },
                ended: false,
                service: Recorder::new("strategy.service"),
                decision: Recorder::new("strategy.t0_to_decision"),
                decision_by_trigger: Trigger::recorders("strategy.t0_to_decision"),
                decision_to_order: Recorder::new("strategy.t0_to_order_decision"),
                hop_book: Recorder::new("hop.book_strategy"),
                hop_exec: Recorder::new("hop.gateway_strategy"),
                unrecorded: None,
                control: None,
                commands: Commands::default(),
                watch_losses: !losses.is_off(),
                flatten_on_loss: settings.trading.risk.on_loss_limit == OnLossLimit::Flatten,
                losses,
                journal: None,
                journal_mismatch,
                exit: None,
                tickers: vec![Ticker24h::default(); instruments.len()],
                local_kill: false,
            },
        }
    }

    /// Journals every order, report and position change into `journal` (see the module docs).
    pub fn with_journal(mut self, journal: JournalTx) -> Self {
        self.core.journal = Some(journal);
        self
    }

    /// Takes commands from `control` (read once a poll) and writes the account to its board,
    /// and each instance's to its instance board (laid out from every stage's
    /// [`StrategyStage::instance_keys`]).
    pub fn with_control(mut self, control: ControlReader) -> Self {
        self.core.control = Some(control);
        self
    }

    /// Names the stage as the placement's strategy stage `g` (its threads, metrics and
    /// placement report tell the stages apart; the run report adds their counters up).
    pub fn numbered(mut self, g: usize) -> Self {
        self.name = STAGE_NAMES.get(g).copied().unwrap_or("strategy-n");
        self
    }

    /// The stage's instance slots, instrument by instrument, each in its slot order: its part
    /// of the instance board's layout.
    pub fn instance_keys(&self) -> Vec<InstanceKey> {
        self.core
            .strategies
            .iter()
            .flatten()
            .flat_map(|t| {
                let instrument = t.gate.instrument();
                t.slots.iter().map(move |s| InstanceKey {
                    instrument,
                    instance: s.instance,
                    name: s.name.to_string(),
                    kind: s.strategy.kind(),
                })
            })
            .collect()
    }

    /// A loss limit reached stops this stage's instruments alone instead of killing the
    /// account: for one of several strategy stages on event time, where another stage would
    /// see an account-wide kill at a point its thread's timing decides.
    pub fn with_local_kill(mut self) -> Self {
        self.core.local_kill = true;
        self
    }

    /// At the end of the stream, cancels the orders the gates know open that `policy` does not
    /// keep, before the end goes to the gateway. Only a policy that sorts orders by type needs
    /// the stage: under [`ExitPolicy::CancelAll`] the order session cancels everything itself
    /// (orders this run did not place included), under [`ExitPolicy::Leave`] nothing is sent.
    pub fn with_exit(mut self, policy: ExitPolicy) -> Self {
        self.core.exit = Some(policy);
        self
    }
}

impl StrategyCore {
    /// Handles one input where it lies in the ring; returns whether to take another in this
    /// poll.
    #[inline]
    fn handle(&mut self, input: &Stamped<BookMsg>) -> bool {
        let intents_before = self.counts.intents;
        let start = now_ns();
        let now = self.clock.advance_to(input.t_event);
        let decision = match &input.msg {
            BookMsg::Book(top, trigger) => self.on_book(top, *trigger, now),
            BookMsg::Trade(ev) => {
                self.on_trade(ev, now);
                None
            }
            BookMsg::Candle(c) => {
                self.on_venue_candle(c, now);
                None
            }
            BookMsg::Ticker(t) => {
                self.on_ticker(t);
                None
            }
            BookMsg::End => {
                if self.exit == Some(ExitPolicy::KeepProtective) {
                    self.cancel_on_exit(ExitPolicy::KeepProtective);
                }
                self.out.queue(OrderMsg::End, now);
                self.ended = true;
                None
            }
        };
        let end = now_ns();
        if self.counts.intents != intents_before {
            // The orders are in the ring already; hand the thread to the gateway now. The
            // view queued after them, and this input's histogram values, wait for the next
            // poll.
            self.unrecorded = Some(Unrecorded {
                t_exit: input.t_exit,
                start,
                end,
                decision,
            });
            return false;
        }
        self.hop_book.record_between(input.t_exit, start);
        self.service.record_between(start, end);
        self.out.flush(end) && !self.ended
    }

    /// Whether an input of event time `t_event` may be handled now: with a barrier, once every
    /// report due before it has arrived, and those are applied first. Publishes the input's
    /// time to the gateway when it is new. The caller has flushed the outbox: everything sent
    /// before is in the ring.
    #[inline]
    fn ready_for(&mut self, t_event: u64) -> bool {
        let Some(barrier) = self.link.barrier.as_ref() else {
            return true;
        };
        let t = t_event.max(self.clock.now_ns());
        if t <= self.ready_at {
            return true;
        }
        if t > self.published_at {
            barrier.publish_strategy_at(t);
            self.published_at = t;
        }
        if !barrier.reports_complete_before(t, self.orders_sent) {
            return false;
        }
        // Orders decided on these reports are decided at `t`, after the time the gateway has
        // moved its venues to.
        self.clock.advance_to(t);
        while let Some(rep) = self.execs.pop() {
            self.take_report(&rep);
        }
        self.ready_at = t;
        true
    }

    /// Applies one execution report, recording its hop and service time.
    #[inline]
    fn take_report(&mut self, rep: &Stamped<ExecReport>) {
        let start = now_ns();
        self.hop_exec.record_between(rep.t_exit, start);
        self.on_exec(&rep.msg);
        self.service.record_between(start, now_ns());
    }

    /// Takes one input from the ring: handled in its slot if the barrier lets it through, held
    /// otherwise. Returns whether to take another in this poll.
    #[inline]
    fn take_input(&mut self, input: &Stamped<BookMsg>) -> bool {
        if self.ready_for(input.t_event) {
            self.handle(input)
        } else {
            self.counts.barrier_waits += 1;
            self.held = Some(*input);
            false
        }
    }

    /// Polls the control block (a few relaxed loads) and carries out what it asks: a kill
    /// switches every gate off and cancels every order the gates know open; a cancel-all
    /// cancels them; a flatten starts a run on each instrument asked for. Returns whether
    /// anything was sent.
    #[inline]
    fn take_commands(&mut self) -> bool {
        let Some(reader) = self.control.as_mut() else {
            return false;
        };
        if self.ended {
            // The gateway winds its venues down after the end; nothing more is sent.
            return false;
        }
        let commands = reader.poll();
        self.commands = commands;
        let cancel = commands.kill.is_some() || commands.cancel_all;
        let mut sent = 0;
        if cancel {
            if commands.kill.is_some() {
                for t in self.strategies.iter_mut().flatten() {
                    t.gate.set_kill_switch(true);
                }
            }
            let code = if commands.kill.is_some() {
                ReasonCode::Kill
            } else {
                ReasonCode::CancelAll
            };
            sent = self.cancel_everything(code);
            if let Some(reader) = &self.control {
                reader.count_cancels(sent);
            }
        }
        if commands.flatten {
            for idx in 0..self.strategies.len() {
                // Another strategy stage's instrument: its request is that stage's to take.
                if self.strategies[idx].is_none() {
                    continue;
                }
                let cause = self.control.as_ref().and_then(|r| r.take_flatten(idx));
                if let Some(cause) = cause {
                    // Everything open was just cancelled if a kill or cancel-all came too.
                    sent += self.start_flatten(idx, cause, pinion_core::Qty::ZERO, !cancel);
                }
            }
        }
        if commands.manual {
            sent += self.take_manual();
        }
        sent > 0
    }

    /// Carries out the manual requests waiting (see the module docs), answering each. Returns
    /// the orders and cancels sent.
    fn take_manual(&mut self) -> u64 {
        let mut sent = 0;
        for _ in 0..MANUAL_RING {
            let Some(request) = self.control.as_mut().and_then(ControlReader::take_manual) else {
                break;
            };
            let (client_id, outcome) = self.manual(request);
            if outcome == ManualOutcome::Sent {
                sent += 1;
                self.publish(usize::from(request.instrument.0));
            }
            if let Some(reader) = self.control.as_mut() {
                reader.answer(ManualAnswer {
                    seq: request.seq,
                    client_id,
                    outcome,
                });
            }
        }
        sent
    }

    /// One manual request: the client id used (0 when none was) and what became of it.
    fn manual(
        &mut self,
        request: ManualRequest,
    ) -> (pinion_strategy::ClientOrderId, ManualOutcome) {
        let none = pinion_strategy::ClientOrderId(0);
        if self.ended {
            return (none, ManualOutcome::Ended);
        }
        let Some(Some(t)) = self.strategies.get_mut(usize::from(request.instrument.0)) else {
            return (none, ManualOutcome::NotTraded);
        };
        let at = self.clock.now_ns();
        let wall = now_ns();
        let instrument = t.gate.instrument();
        // The operator's user id is not on the intent (two bytes of reason are): the bot
        // journals it beside the order, keyed by the client id it is answered with.
        let reason = t.reason(ReasonCode::Manual);
        let intent = match request.action {
            ManualAction::Order { side, px, qty, tif } => OrderIntent::new_limit(
                wall,
                t.manual_ids.next_id(),
                instrument,
                side,
                px,
                qty,
                OrderType::Limit,
                tif,
                reason,
            ),
            ManualAction::Cancel { target } => {
                let Some((_, side)) = t.gate.open_ids().find(|(id, _)| *id == target) else {
                    return (none, ManualOutcome::NotOpen);
                };
                OrderIntent::cancel(
                    wall,
                    t.manual_ids.next_id(),
                    target,
                    instrument,
                    side,
                    reason,
                )
            }
        };
        let outcome = match t.gate.admit(&intent, at) {
            Ok(()) if journal_order(&mut self.journal, &intent) => {
                self.out
                    .send(OrderMsg::Order(intent, Trigger::Other), at, wall);
                self.orders_sent += 1;
                self.counts.intents += 1;
                ManualOutcome::Sent
            }
            Ok(()) => {
                self.counts.journal_refused += 1;
                t.gate.on_exec(&unjournaled(&intent, at));
                ManualOutcome::JournalFull
            }
            Err(e) => {
                self.counts.refused += 1;
                ManualOutcome::Refused(e)
            }
        };
        (intent.client_id, outcome)
    }

    /// Starts a flatten (or, for [`FlattenCause::Derisk`], a cut to `target`) of instrument
    /// `idx`: its open orders cancelled (when `cancel`), then the first closing slice. Returns
    /// the orders sent.
    fn start_flatten(
        &mut self,
        idx: usize,
        cause: FlattenCause,
        target: pinion_core::Qty,
        cancel: bool,
    ) -> u64 {
        if self.ended {
            return 0;
        }
        let Some(Some(t)) = self.strategies.get_mut(idx) else {
            return 0;
        };
        let now = self.clock.now_ns();
        if !t.flatten.start(cause, target, now) {
            return 0;
        }
        if let Some(reader) = &self.control {
            reader.flattens().started(idx, cause);
        }
        let mut sent = 0;
        if cancel {
            sent = cancel_open(
                t,
                &mut self.out,
                &mut self.journal,
                now,
                now_ns(),
                cause.reason(),
            );
            self.orders_sent += sent;
            self.counts.intents += sent;
            if let Some(reader) = &self.control {
                reader.count_cancels(sent);
            }
        }
        sent + self.step_flatten(idx)
    }

    /// Takes instrument `idx`'s flatten run a step: the next closing slice when none is in
    /// flight, or the run's end (flat, or the deadline passed) written to the flatten board.
    /// Returns the orders sent.
    fn step_flatten(&mut self, idx: usize) -> u64 {
        if self.ended {
            return 0;
        }
        let Some(Some(t)) = self.strategies.get_mut(idx) else {
            return 0;
        };
        if !t.flatten.running() {
            return 0;
        }
        let at = self.clock.now_ns();
        t.flatten.set_open_orders(t.gate.open_orders());
        let step = t.flatten.next(
            t.ledger.qty(),
            t.gate.open_closing_qty(),
            t.touch.0,
            t.touch.1,
            t.mark,
            t.gate.limits(),
            at,
        );
        match step {
            FlattenStep::Wait => 0,
            FlattenStep::Finished(outcome, cause, left) => {
                if let Some(reader) = &self.control {
                    reader.flattens().ended(idx, cause, outcome, left);
                }
                self.publish(idx);
                0
            }
            FlattenStep::Send(_)
                if t.gate.open_orders() >= t.gate.limits().max_open_orders as usize
                    || t.gate.order_tokens(at) == 0 =>
            {
                // The cancels sent at the start are still open, or the order rate is used up:
                // the next report or view tries again (the deadline still runs).
                0
            }
            FlattenStep::Send(slice) => {
                let wall = now_ns();
                let id = t.control_ids.next_id();
                let code = t
                    .flatten
                    .cause()
                    .map_or(ReasonCode::Flatten, FlattenCause::reason);
                let close = OrderIntent::new_limit(
                    wall,
                    id,
                    t.gate.instrument(),
                    slice.side,
                    slice.px,
                    slice.qty,
                    OrderType::Limit,
                    TimeInForce::Ioc,
                    t.reason(code),
                );
                match t.gate.admit_reducing(&close, at) {
                    Ok(()) if journal_order(&mut self.journal, &close) => {
                        self.out
                            .send(OrderMsg::Order(close, Trigger::Other), at, wall);
                        t.flatten.sent(id);
                        self.orders_sent += 1;
                        self.counts.intents += 1;
                        1
                    }
                    Ok(()) => {
                        self.counts.journal_refused += 1;
                        t.gate.on_exec(&unjournaled(&close, at));
                        t.flatten.refused();
                        0
                    }
                    Err(_) => {
                        self.counts.refused += 1;
                        t.flatten.refused();
                        0
                    }
                }
            }
        }
    }

    /// Checks instrument `idx` against the de-risk rule (when on and no run is under way) and
    /// starts a cut when its exposure is too large. Returns the orders sent.
    fn check_derisk(&mut self, idx: usize) -> u64 {
        let Some(Some(t)) = self.strategies.get(idx) else {
            return 0;
        };
        let (Some(params), Some(mark)) = (t.derisk, t.mark) else {
            return 0;
        };
        if t.flatten.running() {
            return 0;
        }
        let position = t.ledger.qty();
        match derisk_target(
            position,
            mark,
            t.ledger.net(Some(mark)),
            &params,
            t.gate.position_step(),
        ) {
            Some(target) => self.start_flatten(idx, FlattenCause::Derisk, target, true),
            None => 0,
        }
    }

    /// Sends a cancel for every order the gates know open (pending ones too: the venue takes
    /// requests in order), for `code` (the kill or a cancel-all). The strategies see the
    /// cancellations as reports. Rare: the outbox queue may grow past its start-up capacity
    /// here.
    fn cancel_everything(&mut self, code: ReasonCode) -> u64 {
        let at = self.clock.now_ns();
        let now = now_ns();
        let mut sent = 0;
        for t in self.strategies.iter_mut().flatten() {
            sent += cancel_open(t, &mut self.out, &mut self.journal, at, now, code);
        }
        self.orders_sent += sent;
        self.counts.intents += sent;
        sent
    }

    /// Sends a cancel for every order the gates know open that `policy` cancels at the stop.
    fn cancel_on_exit(&mut self, policy: ExitPolicy) -> u64 {
        let at = self.clock.now_ns();
        let now = now_ns();
        let mut sent = 0;
        for t in self.strategies.iter_mut().flatten() {
            let instrument = t.gate.instrument();
            let before = sent;
            for (target, side, ty) in t.gate.open_typed() {
                if policy.cancels(ty) {
                    let id = t.control_ids.next_id();
                    let reason = t.reason(ReasonCode::Shutdown);
                    let cancel = OrderIntent::cancel(now, id, target, instrument, side, reason);
                    let _ = journal_order(&mut self.journal, &cancel);
                    self.out
                        .send(OrderMsg::Order(cancel, Trigger::Other), at, now);
                    sent += 1;
                }
            }
            t.gate.note_cancels(ReasonCode::Shutdown, sent - before);
        }
        self.orders_sent += sent;
        self.counts.intents += sent;
        sent
    }

    /// Checks instrument `idx`'s protective exits against `top`: when one fires, the
    /// instrument's open orders are cancelled and the position is closed by an IOC limit
    /// through the touch (its size capped by the order limit; what is left is closed on a later
    /// view). Returns the orders sent.
    fn protect(&mut self, idx: usize, top: &BookTop, now: u64) -> u64 {
        let Some(Some(t)) = self.strategies.get_mut(idx) else {
            return 0;
        };
        let Some(exit) = t.protect.on_top(
            t.ledger.qty(),
            t.ledger.avg_price(),
            top.best_bid().map(|l| l.px),
            top.best_ask().map(|l| l.px),
            now,
        ) else {
            return 0;
        };
        let at = self.clock.now_ns();
        let wall = now_ns();
        let code = exit.kind.reason();
        let mut sent = cancel_open(t, &mut self.out, &mut self.journal, at, wall, code);
        let qty = pinion_core::Qty(exit.qty.0.min(t.gate.limits().max_order_qty.0));
        let id = t.control_ids.next_id();
        let close = OrderIntent::new_limit(
            top.t0,
            id,
            t.gate.instrument(),
            exit.side,
            exit.px,
            qty,
            OrderType::Limit,
            TimeInForce::Ioc,
            t.reason(code),
        );
        match t.gate.admit(&close, at) {
            Ok(()) if journal_order(&mut self.journal, &close) => {
                self.out
                    .send(OrderMsg::Order(close, Trigger::Other), at, wall);
                t.protect.sent(id);
                sent += 1;
            }
            Ok(()) => {
                self.counts.journal_refused += 1;
                t.gate.on_exec(&unjournaled(&close, at));
                t.protect.refused();
            }
            Err(_) => t.protect.refused(),
        }
        self.orders_sent += sent;
        self.counts.intents += sent;
        sent
    }

    /// Takes instrument `idx`'s net PnL at event time `now` into the loss limits; a limit
    /// reached kills trading at once (see the module docs).
    #[inline]
    fn watch_loss(&mut self, idx: usize, now: u64) {
        self.watch_instance_losses(idx, now);
        if !self.watch_losses {
            return;
        }
        let Some(Some(t)) = self.strategies.get(idx) else {
            return;
        };
        let net = t.ledger.net(t.mark);
        let Some(breach) = self.losses.observe(idx, now, net) else {
            return;
        };
        let reason = match breach {
            Breach::Drawdown => KillReason::Drawdown,
            Breach::DailyLoss | Breach::TotalLoss => KillReason::LossLimit,
        };
        match &self.control {
            Some(reader) if !self.local_kill => {
                reader.kill(reason);
                self.take_commands();
            }
            _ if self.local_kill => {
                for t in self.strategies.iter_mut().flatten() {
                    t.gate.set_kill_switch(true);
                }
                self.cancel_everything(ReasonCode::Kill);
                // Killed here: its strategies are asked for nothing more, as under a kill.
                if let Some(reader) = self.control.as_mut() {
                    reader.stop_here();
                }
                self.commands.killed = true;
            }
            _ => {
                self.take_commands();
            }
        }
        if self.flatten_on_loss {
            let cause = match breach {
                Breach::Drawdown => FlattenCause::Drawdown,
                Breach::DailyLoss | Breach::TotalLoss => FlattenCause::LossLimit,
            };
            // Without a control block the kill is not carried out by take_commands: the gates
            // are switched off here, and everything open cancelled by each run.
            let cancel = self.control.is_none();
            for i in 0..self.strategies.len() {
                if let Some(Some(t)) = self.strategies.get_mut(i) {
                    t.gate.set_kill_switch(true);
                }
                self.start_flatten(i, cause, pinion_core::Qty::ZERO, cancel);
            }
        }
    }

    /// Takes each instance's net PnL on instrument `idx` (its own fills, marked at the
    /// instrument's mark) at event time `now` into its own loss limits; an instance that reaches
    /// one is stopped: its budget's gate switched off, its open orders cancelled, and it is
    /// asked for nothing more. The account and the other instances go on.
    #[inline]
    fn watch_instance_losses(&mut self, idx: usize, now: u64) {
        let Some(Some(t)) = self.strategies.get_mut(idx) else {
            return;
        };
        let mark = t.mark;
        let mut breached = None;
        for (k, slot) in t.slots.iter_mut().enumerate() {
            let Some(guard) = slot.loss.as_mut() else {
                continue;
            };
            if let Some(breach) = guard.observe(now, slot.ledger.net(mark)) {
                slot.stopped = Some((breach, now));
                if let Some(g) = slot.gate.as_mut() {
                    g.set_kill_switch(true);
                }
                breached = Some(k);
            }
        }
        if let Some(k) = breached {
            self.counts.instance_loss_breaches += 1;
            self.cancel_instance(idx, k);
            // A pair stops on both legs.
            let other = self
                .strategies
                .get(idx)
                .and_then(Option::as_ref)
                .and_then(|t| Some((t.slots[k].pair?.other, t.slots[k].stopped?)));
            if let Some(((i, j), stop)) = other
                && let Some(Some(t)) = self.strategies.get_mut(i)
                && let Some(slot) = t.slots.get_mut(j)
                && slot.stopped.is_none()
            {
                slot.stopped = Some(stop);
                if let Some(g) = slot.gate.as_mut() {
                    g.set_kill_switch(true);
                }
                self.cancel_instance(i, j);
            }
        }
    }

    /// Cancels every open order of instance slot `k` of instrument `idx`.
    #[cold]
    fn cancel_instance(&mut self, idx: usize, k: usize) {
        let Some(Some(t)) = self.strategies.get_mut(idx) else {
            return;
        };
        let Some(instance) = t.slots.get(k).map(|s| usize::from(s.instance)) else {
            return;
        };
        let reason = OrderReason::new(instance as u8, ReasonCode::Kill);
        let sent = cancel_open_where(
            t,
            &mut self.out,
            &mut self.journal,
            (self.clock.now_ns(), now_ns()),
            reason,
            |id| slot_of(id.0) == Some(instance),
        );
        self.orders_sent += sent;
        self.counts.intents += sent;
    }

    /// Writes instrument `idx`'s account to the control board, if there is one.
    #[inline]
    fn publish(&self, idx: usize) {
        let (Some(reader), Some(Some(t))) = (&self.control, self.strategies.get(idx)) else {
            return;
        };
        let p = &t.ledger;
        let stats = traded_stats(&self.strategies, idx);
        let view = AccountView {
            position: p.qty().0,
            realized: saturate(p.realized()),
            unrealized: t.mark.map_or(0, |m| saturate(p.unrealized(m))),
            fees: saturate(p.fees()),
            volume: saturate(p.volume()),
            mark: t.mark.map_or(0, |m| m.0),
            open_orders: t.gate.open_orders() as u64,
            fills: p.fills(),
            orders: stats.orders,
            cancels: stats.cancels,
            risk_rejects: stats.risk_rejects,
            venue_rejects: stats.venue_rejects,
            at_ns: self.clock.now_ns(),
            sent_by_code: t.gate.stats().sent_by_code.map(|[o, c]| o + c),
            fills_by_code: t.fills_by_code,
        };
        reader.board().write(t.gate.instrument(), &view);
        if let Some(board) = reader.instances() {
            for (j, s) in t.slots.iter().enumerate() {
                let st = slot_stats(&self.strategies, idx, j);
                board.write(t.gate.instrument(), j, &s.view(t, st, self.clock.now_ns()));
            }
        }
    }

    /// Records the values an input that led to orders left for later.
    #[inline]
    fn record_unrecorded(&mut self) {
        let Some(u) = self.unrecorded.take() else {
            return;
        };
        self.hop_book.record_between(u.t_exit, u.start);
        self.service.record_between(u.start, u.end);
        if let Some((t0, decided, trigger)) = u.decision {
            self.decision_to_order.record_between(t0, decided);
            self.decision.record_between(t0, decided);
            self.decision_by_trigger[trigger as usize].record_between(t0, decided);
        }
    }

    /// Passes the intents instance slot `k` of instrument `idx` just wrote through the gates
    /// and sends what they admit: straight into the ring when nothing waits in the outbox
    /// ahead of them. Each intent goes through the gates of its own instrument (a pair's
    /// strategy writes for both legs): a new order that would cross another instance's is
    /// stopped first (self-trade prevention); then the instance's own budget on that
    /// instrument, if it has one, and the instrument's gate must both admit it. A refusal goes
    /// back to the strategy at once (which may write more intents, which pass the gates in
    /// turn). Returns how many were sent.
    #[inline]
    fn send_intents(&mut self, idx: usize, k: usize, trigger: Trigger) -> u64 {
        let Some(instance) = self
            .strategies
            .get(idx)
            .and_then(Option::as_ref)
            .and_then(|t| t.slots.get(k))
            .map(|s| s.instance)
        else {
            self.intents.clear();
            return 0;
        };
        let at = self.clock.now_ns();
        let mut sent = 0;
        // Bounded: a strategy answering every refusal with a new intent cannot spin here.
        for _ in 0..MAX_INTENTS {
            if self.intents.is_empty() {
                break;
            }
            let mut refused = arrayvec::ArrayVec::<ExecReport, MAX_INTENTS>::new();
            let now = now_ns();
            for intent in self.intents.drain() {
                let j = usize::from(intent.instrument.0);
                // The instance's slot on the intent's instrument: `k` on its own, the other
                // leg's for a pair.
                let target = self
                    .strategies
                    .get_mut(j)
                    .and_then(Option::as_mut)
                    .and_then(|t| {
                        let kj = if j == idx {
                            k
                        } else {
                            t.slots.iter().position(|s| s.instance == instance)?
                        };
                        Some((t, kj))
                    });
                let Some((traded, kj)) = target else {
                    refused.push(RiskGate::refusal(&intent, at));
                    continue;
                };
                if traded.would_self_trade(&intent, instance) {
                    self.counts.self_trades += 1;
                    refused.push(RiskGate::refusal(&intent, at));
                    continue;
                }
                let slot = &mut traded.slots[kj];
                let own = slot.gate.as_mut().map_or(Ok(()), |g| g.admit(&intent, at));
                let admitted = own.and_then(|()| {
                    traded.gate.admit(&intent, at).inspect_err(|_| {
                        // The instance's budget counted it open: closed again.
                        if let Some(g) = slot.gate.as_mut() {
                            g.on_exec(&RiskGate::refusal(&intent, at));
                        }
                    })
                });
                match admitted {
                    Ok(()) if journal_order(&mut self.journal, &intent) => {
                        sent += 1;
                        self.out.send(OrderMsg::Order(intent, trigger), at, now);
                    }
                    Ok(()) => {
                        // Never at the venue without its record: refused as overloaded.
                        self.counts.journal_refused += 1;
                        let rep = unjournaled(&intent, at);
                        traded.gate.on_exec(&rep);
                        if let Some(g) = slot.gate.as_mut() {
                            g.on_exec(&rep);
                        }
                        refused.push(rep);
                    }
                    Err(_) => refused.push(RiskGate::refusal(&intent, at)),
                }
            }
            let leg = pair_leg_budget(&mut self.strategies, idx, k, at);
            let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                break;
            };
            let slot = &mut traded.slots[k];
            self.intents
                .set_new_order_budget(slot.order_tokens(&mut traded.gate, at));
            if let Some((instrument, tokens)) = leg {
                self.intents.set_leg_budget(instrument, tokens);
            }
            self.counts.refused += refused.len() as u64;
            for rep in &refused {
                slot.strategy.on_exec(rep, &mut self.intents);
            }
        }
        self.intents.clear();
        self.counts.intents += sent;
        self.orders_sent += sent;
        sent
    }

    /// Runs the strategy on a top of book at event time `now`, read where it lies in the input
    /// ring's slot. Returns its `t0`, decision time and trigger when it led to orders: those
    /// values are recorded after the gateway has the orders.
    #[inline]
    fn on_book(
        &mut self,
        top: &BookTop,
        trigger: Trigger,
        now: u64,
    ) -> Option<(u64, u64, Trigger)> {
        let tap = self.link.market_tap;
        self.counts.views += 1;
        if !top.synced {
            self.counts.unsynced_views += 1;
        }
        let idx = usize::from(top.instrument.0);
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            self.counts.untraded_inputs += 1;
            return None;
        };
        let mid = if top.synced { top.mid() } else { None };
        traded.gate.set_mid(mid);
        for g in traded.slots.iter_mut().filter_map(|s| s.gate.as_mut()) {
            g.set_mid(mid);
        }
        if top.synced {
            traded.touch = (top.best_bid().map(|l| l.px), top.best_ask().map(|l| l.px));
        }
        let moved = mid.is_some() && mid != traded.mark;
        traded.mark = mid.or(traded.mark);
        if let (Some(tape), Some(mid)) = (traded.tape.as_mut(), mid) {
            tape.sample(now, mid, &traded.ledger, false);
        }
        if moved {
            self.watch_loss(idx, now);
        }
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            return None;
        };
        let mut sent = 0;
        if traded.flatten.running() {
            sent += self.step_flatten(idx);
        } else if moved {
            sent += self.check_derisk(idx);
        }
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            return None;
        };
        let protecting = top.synced && traded.protect.params().any() && !traded.flatten.running();
        if protecting {
            sent += self.protect(idx, top, now);
        }
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            return None;
        };
        if self.commands.may_decide() {
            for k in 0..traded.slots.len() {
                if !slot_may_decide(&self.strategies, idx, k, now) {
                    continue;
                }
                let leg = pair_leg_budget(&mut self.strategies, idx, k, now);
                let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                    break;
                };
                if traded.slots[k].led_by().is_some() {
                    // A pair's second leg: its first leg's strategy decides, below.
                    continue;
                }
                prepare_slot(traded, k, &mut self.intents, now, leg)
                    .on_book(top, &mut self.intents);
                sent += self.send_intents(idx, k, trigger);
            }
            // Pairs whose second leg this instrument is: their first leg's strategy sees it.
            let followers = self
                .strategies
                .get(idx)
                .and_then(Option::as_ref)
                .map_or(0, |t| t.followers.len());
            for f in 0..followers {
                let Some((i, k)) = self
                    .strategies
                    .get(idx)
                    .and_then(Option::as_ref)
                    .and_then(|t| t.followers.get(f).copied())
                else {
                    break;
                };
                if !slot_may_decide(&self.strategies, i, k, now) {
                    continue;
                }
                let leg = pair_leg_budget(&mut self.strategies, i, k, now);
                let Some(Some(lead)) = self.strategies.get_mut(i) else {
                    continue;
                };
                prepare_slot(lead, k, &mut self.intents, now, leg).on_book(top, &mut self.intents);
                sent += self.send_intents(i, k, trigger);
            }
        }
        if moved {
            self.publish(idx);
        }
        let decided = now_ns();
        if sent == 0 {
            if tap {
                self.out.send(OrderMsg::Book(*top), now, decided);
            }
            self.decision.record_between(top.t0, decided);
            self.decision_by_trigger[trigger as usize].record_between(top.t0, decided);
            return None;
        }
        // Orders went first, and at once; the top for the venue's matching follows (the
        // simulated venue places an order decided on a view against that view).
        self.out.flush(decided);
        if tap {
            self.out.queue(OrderMsg::Book(*top), now);
        }
        Some((top.t0, decided, trigger))
    }

    /// Runs the strategy on a trade at event time `now`.
    #[inline]
    fn on_trade(&mut self, ev: &TradePrint, now: u64) {
        self.counts.trades += 1;
        let idx = usize::from(ev.instrument.0);
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            self.counts.untraded_inputs += 1;
            return;
        };
        let tap = self.link.market_tap;
        let mut sent = 0;
        for k in 0..traded.slots.len() {
            // The candle this trade closes comes before the trade. A print names its last
            // trade id only, so a built candle counts an aggregate as one trade.
            let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                return;
            };
            if let Some(feed) = traded.slots[k].candles.as_mut()
                && !feed.venue
                && let Some(closed) = feed.builder.on_trade(ev, ev.trade_id)
            {
                self.give_candle(idx, k, &closed, now);
            }
            let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                return;
            };
            if self.commands.may_decide()
                && traded.slots[k].led_by().is_none()
                && slot_may_decide(&self.strategies, idx, k, now)
            {
                let leg = pair_leg_budget(&mut self.strategies, idx, k, now);
                let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                    return;
                };
                prepare_slot(traded, k, &mut self.intents, now, leg)
                    .on_trade(ev, &mut self.intents);
                sent += self.send_intents(idx, k, Trigger::Other);
            }
        }
        if sent == 0 {
            if tap {
                self.out.send(OrderMsg::Trade(*ev), now, now_ns());
            }
        } else {
            // As for views: the orders went first, and at once.
            self.out.flush(now_ns());
            if tap {
                self.out.queue(OrderMsg::Trade(*ev), now);
            }
        }
    }

    /// A venue's kline: once one of the strategy's candle length arrives, the venue's candles
    /// replace the built ones; a closed one goes to the strategy.
    #[inline]
    fn on_venue_candle(&mut self, c: &Candle, now: u64) {
        self.counts.venue_klines += 1;
        let idx = usize::from(c.instrument.0);
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            self.counts.untraded_inputs += 1;
            return;
        };
        for k in 0..traded.slots.len() {
            let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                return;
            };
            let Some(feed) = traded.slots[k].candles.as_mut() else {
                continue;
            };
            if feed.builder.interval_ns() != c.interval_ns {
                continue;
            }
            feed.venue = true;
            if c.closed {
                self.give_candle(idx, k, c, now);
            }
        }
    }

    /// Gives a closed candle to instance slot `k` of instrument `idx`, and sends what it
    /// decides.
    #[inline]
    fn give_candle(&mut self, idx: usize, k: usize, c: &Candle, now: u64) {
        self.counts.candles += 1;
        let leg = pair_leg_budget(&mut self.strategies, idx, k, now);
        let Some(Some(traded)) = self.strategies.get_mut(idx) else {
            return;
        };
        if k < traded.slots.len()
            && traded.slots[k].stopped.is_none()
            && self.commands.may_decide()
            && traded.protect.strategy_may_decide(now)
            && traded.flatten.strategy_may_decide()
        {
            prepare_slot(traded, k, &mut self.intents, now, leg).on_candle(c, &mut self.intents);
            if self.send_intents(idx, k, Trigger::Other) > 0 {
                self.out.flush(now_ns());
            }
        }
    }

    /// A venue's 24 h ticker: merged into the instrument's and written to the control block's
    /// ticker board for the bot.
    #[inline]
    fn on_ticker(&mut self, t: &Ticker24h) {
        self.counts.tickers += 1;
        let Some(merged) = self.tickers.get_mut(usize::from(t.instrument.0)) else {
            return;
        };
        merged.merge(t);
        if let Some(reader) = &self.control {
            reader.tickers().write(t.instrument, merged);
        }
    }

    #[inline]
    fn on_exec(&mut self, rep: &ExecReport) {
        self.counts.exec_reports += 1;
        if let Some(j) = self.journal.as_mut() {
            // A report that does not fit is counted there; its order is journaled, and a
            // restart settles it with the venue.
            j.push(Record::Report(*rep));
        }
        let mut d = self.counts.exec_digest;
        for word in [
            rep.client_id.0,
            status_code(rep.status),
            rep.last_px.0 as u64,
            rep.last_qty.0 as u64,
        ] {
            d = digest(d, word);
        }
        self.counts.exec_digest = d;
        let idx = usize::from(rep.instrument.0);
        if let Some(Some(traded)) = self.strategies.get_mut(idx) {
            let filled = rep.last_qty.0 > 0;
            // The instance whose order it is. The stage's and the operator's orders belong to
            // none: a lone instance's position is the account's, so it is told of them; of
            // several, none is (each decides on its own orders' fills, as its ledger counts).
            let own = traded.slot_index(rep.client_id.0);
            let owner = own.or((traded.slots.len() == 1).then_some(0));
            if let Some(slot) = own.map(|k| &mut traded.slots[k]) {
                if filled {
                    slot.book_fill(rep, &traded.fees);
                }
                if let Some(g) = slot.gate.as_mut() {
                    g.on_exec(rep);
                }
            }
            if filled {
                let before = traded.booked();
                let fill = (rep.side, rep.last_px, rep.last_qty, rep.maker);
                let fee = traded.ledger.apply_fill_paying(
                    rep.side,
                    rep.last_px,
                    rep.last_qty,
                    rep.maker,
                    &traded.fees,
                );
                traded.maker_fills += u64::from(rep.maker);
                // Asked before the gate takes the report, which closes a filled order.
                let reason = traded.gate.reason_of(rep.client_id);
                traded.fills_by_code[reason.code as usize] += 1;
                if let Some(tape) = traded.tape.as_mut() {
                    tape.fill(rep.venue_ts, fill, fee, &traded.ledger, reason);
                }
                let after = traded.booked();
                traded.sizer.on_fill(before, after);
                if let Some(j) = self.journal.as_mut() {
                    j.push(Record::Position(PositionChange {
                        instrument: rep.instrument,
                        qty: traded.ledger.qty(),
                        realized: traded.ledger.realized(),
                        fees: traded.ledger.fees(),
                        venue_ts: rep.venue_ts,
                    }));
                }
            }
            traded.gate.on_exec(rep);
            traded
                .protect
                .on_report(rep.client_id, rep.status.is_final());
            traded
                .flatten
                .on_report(rep.client_id, rep.status.is_final());
            let now = self.clock.now_ns();
            if filled {
                self.watch_loss(idx, now);
            }
            let flattening = self
                .strategies
                .get(idx)
                .and_then(Option::as_ref)
                .is_some_and(|t| t.flatten.running());
            let closing = if flattening {
                self.step_flatten(idx)
            } else if filled {
                self.check_derisk(idx)
            } else {
                0
            };
            if closing > 0 {
                self.out.flush(now_ns());
            }
            let Some(Some(traded)) = self.strategies.get_mut(idx) else {
                return;
            };
            let Some(owner) = owner.filter(|&k| k < traded.slots.len()) else {
                self.publish(idx);
                return;
            };
            // A pair's second leg's report goes to its first leg's strategy.
            let (di, dk) = traded.slots[owner].led_by().unwrap_or((idx, owner));
            let leg = pair_leg_budget(&mut self.strategies, di, dk, now);
            let Some(Some(decider)) = self.strategies.get_mut(di) else {
                self.publish(idx);
                return;
            };
            prepare_slot(decider, dk, &mut self.intents, now, leg).on_exec(rep, &mut self.intents);
            if self.ended
                || !self.commands.may_decide()
                || !slot_may_decide(&self.strategies, di, dk, now)
            {
                // After the end, and while killed or paused, nothing more is sent.
                self.intents.clear();
            } else {
                self.send_intents(di, dk, Trigger::Other);
            }
            self.publish(idx);
            if di != idx {
                self.publish(di);
            }
        }
    }
}

/// Readies `intents` for instance slot `k` of `traded` to decide at `now` (its order budget,
/// and `leg`'s for a pair's other leg, the size of its new orders, its instance on the
/// reasons) and returns its strategy.
#[inline]
fn prepare_slot<'a>(
    traded: &'a mut Traded,
    k: usize,
    intents: &mut Intents,
    now: u64,
    leg: Option<(InstrumentId, u32)>,
) -> &'a mut AnyStrategy {
    intents.set_order_qty(traded.order_qty(k));
    let slot = &mut traded.slots[k];
    intents.set_new_order_budget(slot.order_tokens(&mut traded.gate, now));
    if let Some((instrument, tokens)) = leg {
        intents.set_leg_budget(instrument, tokens);
    }
    intents.set_strategy(slot.instance);
    &mut slot.strategy
}

/// For the deciding slot `k` of instrument `idx` when it is a pair's first leg: the second
/// leg's instrument and the new orders its gates admit now (the instance's budget there and
/// the account's), which its orders spend rather than the first leg's. `None` otherwise.
#[inline]
fn pair_leg_budget(
    strategies: &mut [Option<Traded>],
    idx: usize,
    k: usize,
    now: u64,
) -> Option<(InstrumentId, u32)> {
    let link = strategies
        .get(idx)?
        .as_ref()?
        .slots
        .get(k)?
        .pair
        .filter(|p| p.leads)?;
    let (i, j) = link.other;
    let t = strategies.get_mut(i)?.as_mut()?;
    let instrument = t.gate.instrument();
    let slot = t.slots.get_mut(j)?;
    Some((instrument, slot.order_tokens(&mut t.gate, now)))
}

/// Sends a cancel for every order `t`'s gate knows open, with ids of the stage's own, for
/// `code`; returns how many. A cancel that does not fit the journal's ring is not sent (the kill switch
/// already holds new orders back; a later cancel-all may try again).
fn cancel_open(
    t: &mut Traded,
    out: &mut Outbox<OrderMsg>,
    journal: &mut Option<JournalTx>,
    at: u64,
    now: u64,
    code: ReasonCode,
) -> u64 {
    let reason = t.reason(code);
    cancel_open_where(t, out, journal, (at, now), reason, |_| true)
}

/// Sends a cancel, with `reason`, for every order the instrument's gate knows open whose id
/// `which` picks; `(at, now)` are the event and engine times. Returns how many were sent.
fn cancel_open_where(
    t: &mut Traded,
    out: &mut Outbox<OrderMsg>,
    journal: &mut Option<JournalTx>,
    (at, now): (u64, u64),
    reason: OrderReason,
    which: impl Fn(pinion_strategy::ClientOrderId) -> bool,
) -> u64 {
    let instrument = t.gate.instrument();
    let mut sent = 0;
    for (target, side) in t.gate.open_ids() {
        if !which(target) {
            continue;
        }
        let id = t.control_ids.next_id();
        let cancel = OrderIntent::cancel(now, id, target, instrument, side, reason);
        // A cancel adds no exposure: it goes out whether or not the journal has room (its id
        // is of the control range, never reused), the miss counted by the journal.
        let _ = journal_order(journal, &cancel);
        out.send(OrderMsg::Order(cancel, Trigger::Other), at, now);
        sent += 1;
    }
    t.gate.note_cancels(reason.code, sent);
    sent
}

/// Pushes `intent` into the journal's ring, if there is a journal; `false` when the ring is
/// full and the intent must not be sent.
#[inline]
fn journal_order(journal: &mut Option<JournalTx>, intent: &OrderIntent) -> bool {
    journal
        .as_mut()
        .is_none_or(|j| j.push(Record::Order(*intent)))
}

/// The report for an intent the gate let through that could not be journaled: refused as
/// overloaded, so it closes at the gate and the strategy sees it never opened.
fn unjournaled(intent: &OrderIntent, at: u64) -> ExecReport {
    let status = match intent.action {
        pinion_strategy::OrderAction::New => {
            OrderStatus::Rejected(pinion_strategy::RejectReason::Overloaded)
        }
        _ => OrderStatus::CancelRejected(pinion_strategy::RejectReason::Overloaded),
    };
    ExecReport::refusal(intent, status, at)
}

/// The names of the strategy stages, by number: one per instance at most.
const STAGE_NAMES: [&str; 32] = [
    "strategy",
    "strategy-1",
    "strategy-2",
    "strategy-3",
    "strategy-4",
    "strategy-5",
    "strategy-6",
    "strategy-7",
    "strategy-8",
    "strategy-9",
    "strategy-10",
    "strategy-11",
    "strategy-12",
    "strategy-13",
    "strategy-14",
    "strategy-15",
    "strategy-16",
    "strategy-17",
    "strategy-18",
    "strategy-19",
    "strategy-20",
    "strategy-21",
    "strategy-22",
    "strategy-23",
    "strategy-24",
    "strategy-25",
    "strategy-26",
    "strategy-27",
    "strategy-28",
    "strategy-29",
    "strategy-30",
    "strategy-31",
];

impl Stage for StrategyStage {
    fn name(&self) -> &'static str {
        self.name
    }

    fn poll(&mut self) -> Progress {
        let core = &mut self.core;
        core.record_unrecorded();
        let commanded = core.take_commands();
        if core.ended && core.out.flush(now_ns()) {
            let Some(flag) = core.link.venues_done.clone() else {
                return Progress::Done;
            };
            // Read before draining: reports in the ring when the flag was set are taken now.
            let done = flag.load(Ordering::Acquire);
            let mut did = false;
            while let Some(rep) = core.execs.pop() {
                did = true;
                core.take_report(&rep);
            }
            return if done {
                Progress::Done
            } else if did {
                Progress::Busy
            } else {
                Progress::Idle
            };
        }
        let mut did = commanded;
        // Reports first: they change what the strategy may do next. They are taken even while
        // the order ring is full: the gateway may be waiting for room in the report ring, and
        // each side waiting for the other must never happen. (A report rarely leads to an
        // intent; one that does waits in the outbox queue.)
        for _ in 0..BATCH {
            let Some(rep) = core.execs.pop() else {
                break;
            };
            did = true;
            core.take_report(&rep);
        }
        if !core.out.flush(now_ns()) || core.ended {
            return if did { Progress::Busy } else { Progress::Idle };
        }
        if let Some(held) = core.held {
            if !core.ready_for(held.t_event) {
                return if did { Progress::Busy } else { Progress::Idle };
            }
            core.held = None;
            did = true;
            if !core.handle(&held) {
                return Progress::Busy;
            }
        }
        let taken = self.input.pop_batch(BATCH, |m| core.take_input(m)).taken;
        // An input held back waits for the venue: idle unless something else was done.
        did |= taken > usize::from(core.held.is_some());
        if did { Progress::Busy } else { Progress::Idle }
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        let c = &self.core.counts;
        Some(LiveCounts {
            messages: c.views + c.trades + c.exec_reports,
            errors: c.refused,
            backpressure: self.core.out.backpressure(),
            input_queued: self.input.len() as u64,
        })
    }

    fn live_latency(&self) -> Vec<LiveLatency> {
        let c = &self.core;
        let mut v = vec![
            c.service.live(),
            c.decision.live(),
            c.decision_to_order.live(),
            c.hop_book.live(),
            c.hop_exec.live(),
        ];
        v.extend(c.decision_by_trigger.iter().map(Recorder::live));
        v
    }

    fn finish(&mut self) -> StageReport {
        self.core.record_unrecorded();
        let c = self.core.counts;
        let mut totals = StrategyStats::default();
        let mut gate = pinion_strategy::GateStats::default();
        let mut position_fills = 0;
        let mut positions = DIGEST_START;
        for (i, s) in self.core.strategies.iter().enumerate() {
            let Some(s) = s else {
                continue;
            };
            let gs = s.gate.stats();
            gate.passed += gs.passed;
            gate.refused += gs.refused;
            gate.rate_limited += gs.rate_limited;
            for slot in &s.slots {
                let s = &slot.strategy;
                let p = s.position();
                for word in [
                    i as u64,
                    p.qty().0 as u64,
                    p.realized() as u64,
                    (p.realized() >> 64) as u64,
                ] {
                    positions = digest(positions, word);
                }
                position_fills += p.fills();
            }
            totals += traded_stats(&self.core.strategies, i);
        }
        let now = self.core.clock.now_ns();
        // Taken first: a pair's second leg's counters are its first leg's strategy's.
        let stats: Vec<(StrategyStats, Vec<StrategyStats>)> = (0..self.core.strategies.len())
            .map(|i| {
                let n = self.core.strategies[i]
                    .as_ref()
                    .map_or(0, |t| t.slots.len());
                (
                    traded_stats(&self.core.strategies, i),
                    (0..n)
                        .map(|k| slot_stats(&self.core.strategies, i, k))
                        .collect(),
                )
            })
            .collect();
        let results: Vec<TradingFinal> = self
            .core
            .strategies
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| {
                let t = t.as_mut()?;
                let p = t.ledger;
                let mut tape = t.tape.take().unwrap_or_default();
                if let Some(mark) = t.mark {
                    // The account as the run ends, whatever the period.
                    tape.sample(now, mark, &p, true);
                }
                let (total, by_slot) = &stats[i];
                let instances = t
                    .slots
                    .iter()
                    .zip(by_slot)
                    .map(|(s, st)| InstanceFinal {
                        name: Arc::clone(&s.name),
                        instance: s.instance,
                        strategy: s.strategy.kind(),
                        stats: *st,
                        gate: s.gate.as_ref().map(RiskGate::stats),
                        position: s.ledger.qty(),
                        realized: s.ledger.realized(),
                        unrealized: t.mark.map(|m| s.ledger.unrealized(m)),
                        fees: s.ledger.fees(),
                        volume: s.ledger.volume(),
                        fills: s.ledger.fills(),
                        maker_fills: s.maker_fills,
                        loss_breach: s.stopped,
                    })
                    .collect();
                Some(TradingFinal {
                    instrument: InstrumentId(i as u16),
                    strategy: t.slots.first().map_or("none", |s| s.strategy.kind()),
                    stats: *total,
                    instances,
                    gate: t.gate.stats(),
                    position: p.qty(),
                    realized: p.realized(),
                    unrealized: t.mark.map(|m| p.unrealized(m)),
                    mark: t.mark,
                    fees: p.fees(),
                    volume: p.volume(),
                    maker_fills: t.maker_fills,
                    fee_rates: t.fees,
                    tape,
                    exits: t.protect.stats(),
                    protection: t.protection,
                    loss_breach: self.core.losses.breach_of(i),
                    flatten: t.flatten.stats(),
                })
            })
            .collect();
        // Several strategy stages leave theirs in the one slot; the pipeline sorts them.
        self.core.finals.extend(results);
        let mut r = StageReport::new("strategy");
        r.counters = vec![
            ("views", c.views),
            ("unsynced_views", c.unsynced_views),
            ("trades", c.trades),
            ("candles", c.candles),
            ("venue_klines", c.venue_klines),
            ("tickers", c.tickers),
            ("exec_reports", c.exec_reports),
            ("intents", c.intents),
            ("orders", totals.orders - totals.risk_rejects),
            ("cancels", totals.cancels),
            ("risk_rejects", gate.refused),
            ("risk_passed", gate.passed),
            ("throttled", totals.throttled),
            ("venue_rejects", totals.venue_rejects),
            ("fills", totals.fills),
            ("position_fills", position_fills),
            ("untraded_inputs", c.untraded_inputs),
            ("barrier_waits", c.barrier_waits),
            ("exec_digest", c.exec_digest),
            ("position_digest", positions),
            ("untradable_instruments", self.core.untradable),
            ("journal_refused", c.journal_refused),
            ("self_trades_stopped", c.self_trades),
            ("instance_loss_breaches", c.instance_loss_breaches),
            (
                "journal_overflow",
                self.core.journal.as_ref().map_or(0, JournalTx::overflow),
            ),
            ("journal_mismatch", self.core.journal_mismatch),
            ("loss_breaches", self.core.losses.breaches().0),
            ("portfolio_loss_breaches", self.core.losses.breaches().1),
            ("sent", self.core.out.sent()),
            ("backpressure", self.core.out.backpressure()),
        ];
        r.histograms = vec![
            self.core.service.take(),
            self.core.decision.take(),
            self.core.decision_to_order.take(),
            self.core.hop_book.take(),
            self.core.hop_exec.take(),
        ];
        Trigger::take_used(&mut self.core.decision_by_trigger, &mut r.histograms);
        r
    }
}

#[cfg(test)]
mod tests {
    use pinion_core::{InstrumentSpec, Venue};
    use pinion_strategy::{ClientOrderId, OrderSide, VenueOrderId};

    use super::*;
    use crate::config::Config;
    use crate::ops::journal::InstrumentLog;

    /// Two imbalance instances on BTCUSDT, the instrument sized by `order_qty` (the default);
    /// the second by a Kelly of its own, trusted after two round trips.
    const TWO: &str = r#"
[[strategy]]
name = "a"
order_qty = "0.001"
[[strategy]]
name = "b"
order_qty = "0.001"
[strategy.risk.sizing]
kind = "kelly"
capital = "10000"
kelly_scale = 1.0
max_fraction = 0.02
min_trades = 2
"#;

    /// The instrument of `settings` with its slots, as the stage builds it at start-up.
    fn traded(settings: &Settings, spec: &InstrumentSpec) -> Traded {
        let id = InstrumentId(0);
        let (params, limits) = settings.trading.in_units(spec).unwrap();
        let money = settings.trading.money_in_units(spec).unwrap();
        let base = 1 << ORDER_ID_SHIFT;
        Traded {
            slots: slots_for(settings, spec, id, base, None, params, None).unwrap(),
            gate: RiskGate::new(id, limits, spec.clone()),
            mark: None,
            ledger: Position::for_instrument(spec),
            fees: settings.fees.for_venue(spec.venue),
            tape: None,
            maker_fills: 0,
            fills_by_code: [0; ReasonCode::ALL.len()],
            control_ids: OrderIdSource::new(base | CONTROL_ID_BIT),
            manual_ids: OrderIdSource::new(base | MANUAL_ID_BIT),
            protect: Protector::new(settings.protection, spec.tick),
            protection: "none",
            sizer: money.sizer,
            flatten: Flattener::new(money.flatten, spec.step, spec.tick),
            derisk: money.derisk,
            touch: (None, None),
            followers: Vec::new(),
        }
    }

    /// A fill of `qty` at `px` (units of the spec) of client id `id`.
    fn fill(id: u64, side: OrderSide, px: i64, qty: i64) -> ExecReport {
        ExecReport {
            client_id: ClientOrderId(id),
            venue_id: VenueOrderId(id),
            instrument: InstrumentId(0),
            side,
            status: OrderStatus::Filled,
            last_px: Px(px),
            last_qty: Qty(qty),
            cum_qty: Qty(qty),
            leaves_qty: Qty(0),
            maker: true,
            t0: 0,
            venue_ts: 0,
        }
    }

    #[test]
    fn a_resumed_instance_sizes_by_its_own_replayed_fills() {
        let settings = Config::parse(TWO, "t.toml")
            .unwrap()
            .validate_for("t.toml", 2, std::path::Path::new("/nonexistent"))
            .unwrap();
        let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let mut t = traded(&settings, &spec);
        assert!(t.slots[0].sizer.is_none() && t.slots[1].sizer.is_some());
        t.mark = Some(Px(6_000_000)); // 60 000.00
        // Before any round trip: the instrument leaves each strategy its own size; the second
        // instance's Kelly bets its floor, its order_qty.
        assert_eq!((t.order_qty(0), t.order_qty(1)), (None, Some(Qty(100))));
        // Two winning round trips of the second instance (0.001 bought at 60 000.00, sold at
        // 61 000.00), and one of the first's that loses, journaled in the slots' id ranges.
        let (a, b) = (
            1 << ORDER_ID_SHIFT,
            (1 << ORDER_ID_SHIFT) | (1 << SLOT_SHIFT),
        );
        let log = InstrumentLog {
            fills: vec![
                fill(b, OrderSide::Buy, 6_000_000, 100),
                fill(a, OrderSide::Buy, 6_100_000, 100),
                fill(b + 1, OrderSide::Sell, 6_100_000, 100),
                fill(a + 1, OrderSide::Sell, 6_000_000, 100),
                fill(b + 2, OrderSide::Buy, 6_000_000, 100),
                fill(b + 3, OrderSide::Sell, 6_100_000, 100),
            ],
            ..InstrumentLog::default()
        };
        assert!(t.replay(&log));
        assert_eq!(
            (t.slots[0].ledger.fills(), t.slots[1].ledger.fills()),
            (2, 4)
        );
        // Its own edge: two wins, no loss, a Kelly fraction of 1, held to 2 % of its equity
        // (10 000 plus its own net PnL of 2, no fees being configured; money in units of
        // 1e-7) at 60 000: 0.00333 BTC. The first instance's losing trip did not count
        // against it, nor its loss against the equity.
        assert_eq!(t.slots[1].ledger.net(t.mark), 20_000_000);
        assert_eq!(t.order_qty(1), Some(Qty(333)));
        assert_eq!(t.order_qty(0), None);
    }
}
