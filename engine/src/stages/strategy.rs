//! The strategy stage: hands each [`BookTop`] the book stage sent, where it lies in the ring,
//! to one [`ImbalanceStrategy`] (with its [`PreTradeRisk`]) per traded instrument, and sends the
//! resulting [`OrderIntent`](pinion_strategy::OrderIntent)s to the gateway. Execution reports
//! come back from the gateway on a reverse ring and go to the strategy that owns the order.
//!
//! The market the strategy saw (each view, each trade) is forwarded to the gateway too, so the
//! simulated venue matches against exactly that market. Orders decided on a view go out ahead
//! of it: the view is the venue's bookkeeping, the order is the latency that counts.
//!
//! Histograms: `strategy.service` per input, `hop.book_strategy` and `hop.gateway_strategy`
//! (ring hops), `strategy.t0_to_decision` (`t0` → the strategy's decision on that market
//! state, for every view, whether or not it traded; also split by what brought the view about,
//! `.on_depth`, `.on_ticker`, `.on_other`) and `strategy.t0_to_order_decision` (the
//! same, for the views that led to an order or cancel: the part of tick-to-trade before the
//! gateway).

use pinion_core::{BookTop, InstrumentId, Instruments, TradePrint};
use pinion_strategy::{
    ExecReport, ImbalanceStrategy, Intents, OrderIdSource, PreTradeRisk, Strategy,
};

use super::msg::{BookMsg, OrderMsg, Trigger};
use super::outbox::{Outbox, Stamped};
use crate::config::{Settings, StrategyParams};
use crate::latency::Recorder;
use crate::runtime::{Progress, RingRx, Stage, StageReport, now_ns};

/// Inputs handled per poll at most.
const BATCH: usize = 64;

/// Client order ids of instrument `i` start at `(i + 1) << ORDER_ID_SHIFT`, so ids from
/// different instruments' strategies never collide at the venue.
const ORDER_ID_SHIFT: u32 = 40;

#[derive(Debug, Default, Clone, Copy)]
struct StrategyCounts {
    views: u64,
    unsynced_views: u64,
    trades: u64,
    exec_reports: u64,
    intents: u64,
    untraded_inputs: u64,
}

/// The strategy stage. See the module docs.
pub struct StrategyStage {
    input: RingRx<Stamped<BookMsg>>,
    /// Everything else, apart from the input, so a message can be handled in its ring slot.
    core: StrategyCore,
}

/// The strategy stage's state.
struct StrategyCore {
    execs: RingRx<Stamped<ExecReport>>,
    out: Outbox<OrderMsg>,
    /// Indexed by instrument id.
    strategies: Vec<Option<ImbalanceStrategy>>,
    /// Instruments whose units cannot express the configured sizes (not traded).
    untradable: u64,
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
}

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

impl StrategyStage {
    /// A stage trading each of `traded` (the instruments that have a book).
    pub fn new(
        settings: &Settings,
        instruments: &Instruments,
        traded: &[InstrumentId],
        input: RingRx<Stamped<BookMsg>>,
        execs: RingRx<Stamped<ExecReport>>,
        out: Outbox<OrderMsg>,
    ) -> Self {
        let mut strategies: Vec<Option<ImbalanceStrategy>> =
            (0..instruments.len()).map(|_| None).collect();
        let mut untradable = 0;
        for &id in traded {
            let Some(spec) = instruments.get(id) else {
                continue;
            };
            match settings.trading.in_units(spec) {
                Ok((StrategyParams::Imbalance(params), limits)) => {
                    let risk = PreTradeRisk::new(limits, spec.clone());
                    let ids = OrderIdSource::new((u64::from(id.0) + 1) << ORDER_ID_SHIFT);
                    strategies[usize::from(id.0)] =
                        Some(ImbalanceStrategy::new(id, params, risk, ids));
                }
                Err(_) => untradable += 1,
            }
        }
        Self {
            input,
            core: StrategyCore {
                execs,
                out,
                strategies,
                untradable,
                intents: Intents::new(),
                counts: StrategyCounts::default(),
                ended: false,
                service: Recorder::new("strategy.service"),
                decision: Recorder::new("strategy.t0_to_decision"),
                decision_by_trigger: Trigger::recorders("strategy.t0_to_decision"),
                decision_to_order: Recorder::new("strategy.t0_to_order_decision"),
                hop_book: Recorder::new("hop.book_strategy"),
                hop_exec: Recorder::new("hop.gateway_strategy"),
                unrecorded: None,
            },
        }
    }
}

impl StrategyCore {
    /// Handles one input where it lies in the ring; returns whether to take another in this
    /// poll.
    #[inline]
    fn handle(&mut self, input: &Stamped<BookMsg>) -> bool {
        let intents_before = self.counts.intents;
        let start = now_ns();
        let decision = match &input.msg {
            BookMsg::Book(top, trigger) => self.on_book(top, *trigger),
            BookMsg::Trade(ev) => {
                self.on_trade(ev);
                None
            }
            BookMsg::End => {
                self.out.queue(OrderMsg::End);
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

    /// Sends the intents the strategy just wrote: straight into the ring when nothing waits in
    /// the outbox ahead of them.
    #[inline]
    fn send_intents(&mut self, trigger: Trigger) {
        let now = now_ns();
        for intent in self.intents.drain(..) {
            self.counts.intents += 1;
            self.out.send(OrderMsg::Order(intent, trigger), now);
        }
    }

    /// Runs the strategy on a top of book, read where it lies in the input ring's slot. Returns
    /// its `t0`, decision time and trigger when it led to orders: those values are recorded
    /// after the gateway has the orders.
    #[inline]
    fn on_book(&mut self, top: &BookTop, trigger: Trigger) -> Option<(u64, u64, Trigger)> {
        self.counts.views += 1;
        if !top.synced {
            self.counts.unsynced_views += 1;
        }
        let Some(Some(strategy)) = self.strategies.get_mut(usize::from(top.instrument.0)) else {
            self.counts.untraded_inputs += 1;
            return None;
        };
        strategy.on_book(top, &mut self.intents);
        let decided = now_ns();
        if self.intents.is_empty() {
            self.out.send(OrderMsg::Book(*top), decided);
            self.decision.record_between(top.t0, decided);
            self.decision_by_trigger[trigger as usize].record_between(top.t0, decided);
            return None;
        }
        // Orders go first, and at once; the top for the venue's matching follows (the
        // simulated venue places an order decided on a view against that view).
        self.send_intents(trigger);
        self.out.flush(decided);
        self.out.queue(OrderMsg::Book(*top));
        Some((top.t0, decided, trigger))
    }

    #[inline]
    fn on_trade(&mut self, ev: &TradePrint) {
        self.counts.trades += 1;
        let Some(Some(strategy)) = self.strategies.get_mut(usize::from(ev.instrument.0)) else {
            self.counts.untraded_inputs += 1;
            return;
        };
        strategy.on_trade(ev, &mut self.intents);
        if self.intents.is_empty() {
            self.out.send(OrderMsg::Trade(*ev), now_ns());
        } else {
            // As for views: the orders first, and at once.
            self.send_intents(Trigger::Other);
            self.out.flush(now_ns());
            self.out.queue(OrderMsg::Trade(*ev));
        }
    }

    #[inline]
    fn on_exec(&mut self, rep: &ExecReport) {
        self.counts.exec_reports += 1;
        if let Some(Some(strategy)) = self.strategies.get_mut(usize::from(rep.instrument.0)) {
            strategy.on_exec(rep, &mut self.intents);
            self.send_intents(Trigger::Other);
        }
    }
}

impl Stage for StrategyStage {
    fn name(&self) -> &'static str {
        "strategy"
    }

    fn poll(&mut self) -> Progress {
        let core = &mut self.core;
        core.record_unrecorded();
        if core.ended && core.out.flush(now_ns()) {
            return Progress::Done;
        }
        let mut did = false;
        // Reports first: they change what the strategy may do next. They are taken even while
        // the order ring is full: the gateway may be waiting for room in the report ring, and
        // each side waiting for the other must never happen. (A report rarely leads to an
        // intent; one that does waits in the outbox queue.)
        for _ in 0..BATCH {
            let Some(Stamped { t_exit, msg }) = core.execs.pop() else {
                break;
            };
            did = true;
            let start = now_ns();
            core.hop_exec.record_between(t_exit, start);
            core.on_exec(&msg);
            core.service.record_between(start, now_ns());
        }
        if !core.out.flush(now_ns()) || core.ended {
            return if did { Progress::Busy } else { Progress::Idle };
        }
        for _ in 0..BATCH {
            let Some(more) = self.input.pop_ref(|m| core.handle(m)) else {
                break;
            };
            did = true;
            if !more {
                break;
            }
        }
        if did { Progress::Busy } else { Progress::Idle }
    }

    fn finish(&mut self) -> StageReport {
        self.core.record_unrecorded();
        let c = self.core.counts;
        let mut totals = pinion_strategy::ImbalanceStats::default();
        let mut position_fills = 0;
        for s in self.core.strategies.iter().flatten() {
            let st = s.stats();
            totals.books += st.books;
            totals.orders += st.orders;
            totals.cancels += st.cancels;
            totals.risk_rejects += st.risk_rejects;
            totals.throttled += st.throttled;
            totals.venue_rejects += st.venue_rejects;
            totals.fills += st.fills;
            position_fills += s.position().fills();
        }
        let mut r = StageReport::new("strategy");
        r.counters = vec![
            ("views", c.views),
            ("unsynced_views", c.unsynced_views),
            ("trades", c.trades),
            ("exec_reports", c.exec_reports),
            ("intents", c.intents),
            ("orders", totals.orders),
            ("cancels", totals.cancels),
            ("risk_rejects", totals.risk_rejects),
            ("throttled", totals.throttled),
            ("venue_rejects", totals.venue_rejects),
            ("fills", totals.fills),
            ("position_fills", position_fills),
            ("untraded_inputs", c.untraded_inputs),
            ("untradable_instruments", self.core.untradable),
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
