//! The gateway stage: hands each order to the venue, stamping `t_send`, and returns the venue's
//! execution reports to the strategy over the reverse ring.
//!
//! The venue is the in-process [`SimVenue`] (one per traded instrument), which enforces the
//! hard limits again (order quantity, open orders, tick and step grid) whatever the strategy
//! stage checked, and matches against the market views and trades the strategy forwards.
//!
//! Histograms: `tick_to_trade` (`t0` of the market data behind an order → the order handed to
//! the venue), the same split by what the order was decided on (`tick_to_trade.on_depth`,
//! `.on_ticker`, `.on_other`; those with orders), `gateway.service`, `hop.strategy_gateway`.

use std::sync::Arc;

use pinion_core::{InstrumentId, Instruments};
use pinion_gateway::{OrderVenue, SimLatency, SimVenue, SimVenueConfig};
use pinion_strategy::{ExecReport, OrderAction};

use super::msg::{OrderMsg, Trigger};
use super::outbox::{Outbox, Stamped};
use crate::config::{Settings, VenueSpec};
use crate::latency::Recorder;
use crate::progress::ProgressCounters;
use crate::runtime::{Progress, RingRx, Stage, StageReport, now_ns};

/// Inputs handled per poll at most.
const BATCH: usize = 64;

#[derive(Debug, Default, Clone, Copy)]
struct GatewayCounts {
    orders: u64,
    cancels: u64,
    market_updates: u64,
    reports: u64,
    unknown_instrument: u64,
}

/// The gateway stage. See the module docs.
pub struct GatewayStage {
    input: RingRx<Stamped<OrderMsg>>,
    /// Everything else, apart from the input, so a message can be handled in its ring slot.
    core: GatewayCore,
}

/// The gateway stage's state.
struct GatewayCore {
    out: Outbox<ExecReport>,
    /// Indexed by instrument id.
    venues: Vec<Option<SimVenue>>,
    /// The ids that have a venue: polled for reports on every round, so the registry's size
    /// (thousands of instruments from an exchange list) costs nothing here.
    active: Vec<usize>,
    progress: Arc<ProgressCounters>,
    counts: GatewayCounts,
    ended: bool,
    tick_to_trade: Recorder,
    /// `tick_to_trade` again, by [`Trigger`] (in its order).
    by_trigger: [Recorder; 3],
    service: Recorder,
    hop: Recorder,
}

impl std::fmt::Debug for GatewayStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayStage")
            .field("venues", &self.core.venues.iter().flatten().count())
            .field("counts", &self.core.counts)
            .finish_non_exhaustive()
    }
}

impl GatewayStage {
    /// A stage with a simulated venue for each of `traded` whose units can express the
    /// configured limits.
    pub fn new(
        settings: &Settings,
        instruments: &Instruments,
        traded: &[InstrumentId],
        input: RingRx<Stamped<OrderMsg>>,
        out: Outbox<ExecReport>,
        progress: Arc<ProgressCounters>,
    ) -> Self {
        let VenueSpec::Sim { round_trip_ns } = settings.trading.venue;
        let half_trip = round_trip_ns / 2;
        let mut venues: Vec<Option<SimVenue>> = (0..instruments.len()).map(|_| None).collect();
        for &id in traded {
            let Some(spec) = instruments.get(id) else {
                continue;
            };
            // Only instruments the strategy can trade (every configured size expressible).
            if let Ok((_, limits)) = settings.trading.in_units(spec) {
                let config = SimVenueConfig {
                    latency: SimLatency {
                        request_ns: half_trip,
                        report_ns: half_trip,
                    },
                    max_open_orders: limits.max_open_orders as usize,
                    max_order_qty: limits.max_order_qty,
                };
                venues[usize::from(id.0)] = Some(SimVenue::new(id, spec, config));
            }
        }
        let active = venues
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| i)
            .collect();
        Self {
            input,
            core: GatewayCore {
                out,
                venues,
                active,
                progress,
                counts: GatewayCounts::default(),
                ended: false,
                tick_to_trade: Recorder::new("tick_to_trade"),
                by_trigger: Trigger::recorders("tick_to_trade"),
                service: Recorder::new("gateway.service"),
                hop: Recorder::new("hop.strategy_gateway"),
            },
        }
    }
}

impl GatewayCore {
    /// Handles one input where it lies in the ring.
    #[inline]
    fn handle(&mut self, input: &Stamped<OrderMsg>) {
        let start = now_ns();
        self.on_msg(&input.msg, start);
        // Recorded once an order is with the venue.
        self.hop.record_between(input.t_exit, start);
        self.service.record_between(start, now_ns());
    }

    #[inline]
    fn venue(&mut self, id: InstrumentId) -> Option<&mut SimVenue> {
        self.venues
            .get_mut(usize::from(id.0))
            .and_then(Option::as_mut)
    }

    #[inline]
    fn on_msg(&mut self, msg: &OrderMsg, now: u64) {
        match msg {
            OrderMsg::Order(intent, trigger) => {
                let Some(venue) = self.venue(intent.instrument) else {
                    self.counts.unknown_instrument += 1;
                    return;
                };
                let t_send = now_ns();
                venue.submit(intent, t_send);
                self.tick_to_trade.record_between(intent.t0, t_send);
                self.by_trigger[*trigger as usize].record_between(intent.t0, t_send);
                if intent.action == OrderAction::Cancel {
                    self.counts.cancels += 1;
                } else {
                    self.counts.orders += 1;
                }
                self.progress.set_orders(self.counts.orders);
            }
            OrderMsg::Book(view) => {
                self.counts.market_updates += 1;
                if let Some(venue) = self.venue(view.instrument) {
                    venue.on_book(view, now);
                }
            }
            OrderMsg::Trade(ev) => {
                self.counts.market_updates += 1;
                if let Some(venue) = self.venue(ev.instrument) {
                    venue.on_trade(ev, now);
                }
            }
            OrderMsg::End => self.ended = true,
        }
    }

    /// Collects the reports that are due.
    #[inline]
    fn collect_reports(&mut self, now: u64) {
        let Self {
            venues,
            active,
            out,
            counts,
            ..
        } = self;
        for &i in active.iter() {
            if let Some(venue) = venues[i].as_mut() {
                venue.poll(now, |rep| {
                    counts.reports += 1;
                    out.queue(rep);
                });
            }
        }
    }
}

impl Stage for GatewayStage {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn poll(&mut self) -> Progress {
        let core = &mut self.core;
        // After the end of stream the strategy has stopped reading reports: none can be
        // delivered any more, so waiting for room in its ring could never end.
        if core.ended {
            return Progress::Done;
        }
        let now = now_ns();
        if !core.out.flush(now) {
            return Progress::Idle;
        }
        let mut did = false;
        for _ in 0..BATCH {
            if self.input.pop_ref(|m| core.handle(m)).is_none() {
                break;
            }
            did = true;
            if core.ended {
                break;
            }
        }
        let sent_before = core.counts.reports;
        core.collect_reports(now_ns());
        did |= core.counts.reports != sent_before;
        core.out.flush(now_ns());
        if did { Progress::Busy } else { Progress::Idle }
    }

    fn finish(&mut self) -> StageReport {
        let c = self.core.counts;
        let (mut accepted, mut rejected, mut fills, mut dropped, mut open) = (0, 0, 0, 0, 0);
        for v in self.core.venues.iter().flatten() {
            let s = v.stats();
            accepted += s.accepted;
            rejected += s.rejected;
            fills += s.fills;
            dropped += s.reports_dropped;
            open += v.open_orders() as u64;
        }
        let mut r = StageReport::new("gateway");
        r.counters = vec![
            ("orders_sent", c.orders),
            ("cancels_sent", c.cancels),
            ("market_updates", c.market_updates),
            ("reports", c.reports),
            ("venue_accepted", accepted),
            ("venue_rejected", rejected),
            ("venue_fills", fills),
            ("venue_reports_dropped", dropped),
            ("open_at_end", open),
            ("unknown_instrument", c.unknown_instrument),
            ("sent", self.core.out.sent()),
            ("backpressure", self.core.out.backpressure()),
        ];
        r.histograms = vec![
            self.core.tick_to_trade.take(),
            self.core.service.take(),
            self.core.hop.take(),
        ];
        Trigger::take_used(&mut self.core.by_trigger, &mut r.histograms);
        r
    }
}
