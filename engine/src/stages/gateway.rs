//! The gateway stage: hands each order to the venue, stamping `t_send`, and returns the venue's
//! execution reports to the strategy over the reverse ring.
//!
//! The stage is generic over the venue ([`OrderVenue`]; one per traded instrument). The
//! pipeline uses [`AnyVenue`], today the in-process [`SimVenue`],
//! which enforces the hard limits again (order quantity, open orders, tick and step grid)
//! whatever the strategy stage checked, and matches against the market views and trades the
//! strategy forwards (the market tap). A live venue is one more kind of venue, not a change here.
//!
//! Venues on the wall clock get the engine clock. Venues on event time get the event time each
//! message carries (orders: the time they were decided; views and trades: the market's), and
//! their reports are released through the [`EventBarrier`]: once the order ring is empty after
//! the strategy published the event time it has reached, the venues move to it, and reports due
//! before it go out.
//!
//! With several strategy stages (a custom placement's `strategy:NAME` stages) the gateway
//! has a lane for each: its order ring, its report ring and, with event-time venues, its own
//! barrier. Each venue belongs to the lane of the stage that trades its instrument, so a
//! lane's venues see only its stage's messages and move only to its stage's event time: every
//! lane is as deterministic as the one lane of a single strategy stage, whatever the threads do.
//!
//! Histograms: `tick_to_trade` (`t0` of the market data behind an order → the order handed to
//! the venue), the same split by what the order was decided on (`tick_to_trade.on_depth`,
//! `.on_ticker`, `.on_other`; those with orders), `gateway.service`, `hop.strategy_gateway`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pinion_core::{InstrumentId, Instruments};
use pinion_gateway::{AnyVenue, OrderVenue, SimVenue, SimVenueConfig, VenueClock};
use pinion_strategy::{ExecReport, OrderAction};

use super::event_barrier::EventBarrier;
use super::msg::{OrderMsg, Trigger};
use super::outbox::{Outbox, Stamped};
use crate::config::{Settings, VenueSpec};
use crate::latency::{LiveLatency, Recorder};
use crate::progress::ProgressCounters;
use crate::runtime::{LiveCounts, Progress, RingRx, Stage, StageReport, now_ns};

/// How long a venue may take at the end to have its open orders cancelled: within the
/// runtime's grace for a stopped run.
const WIND_DOWN_GRACE_NS: u64 = 3_000_000_000;

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
pub struct GatewayStage<V: OrderVenue = AnyVenue> {
    /// Each lane's order ring, in lane order.
    inputs: Vec<RingRx<Stamped<OrderMsg>>>,
    /// Everything else, apart from the inputs, so a message can be handled in its ring slot.
    core: GatewayCore<V>,
}

/// One strategy stage's connections to the gateway.
#[derive(Debug)]
pub struct LanePorts {
    /// Its orders (and tapped market).
    pub input: RingRx<Stamped<OrderMsg>>,
    /// Its execution reports.
    pub out: Outbox<ExecReport>,
    /// With event-time venues: the barrier its stage holds.
    pub barrier: Option<Arc<EventBarrier>>,
}

/// One strategy stage's side of the gateway. See the module docs.
struct Lane {
    out: Outbox<ExecReport>,
    /// With event-time venues: where the stage's event time is published, and where the
    /// lane's venues' is.
    barrier: Option<Arc<EventBarrier>>,
    /// The ids of the lane's venues: polled for reports on every round, so the registry's size
    /// (thousands of instruments from an exchange list) costs nothing here.
    active: Vec<usize>,
    /// The event time the lane's venues have been moved to (everything before it has
    /// happened).
    venues_at: u64,
    /// Order messages handled (orders and cancels), for the barrier's quiet mark.
    orders_handled: u64,
    /// The last quiet mark published.
    quiet_published: u64,
    /// Its stage sent the end of stream.
    ended: bool,
}

/// The gateway stage's state.
struct GatewayCore<V> {
    lanes: Vec<Lane>,
    /// Indexed by instrument id.
    venues: Vec<Option<V>>,
    progress: Arc<ProgressCounters>,
    counts: GatewayCounts,
    /// With wall-clock venues: set once they have wound down and their last reports are in the
    /// rings, so the strategy stages know no report can come any more.
    venues_done: Option<Arc<AtomicBool>>,
    tick_to_trade: Recorder,
    /// `tick_to_trade` again, by [`Trigger`] (in its order).
    by_trigger: [Recorder; 3],
    service: Recorder,
    hop: Recorder,
}

impl<V: OrderVenue> std::fmt::Debug for GatewayStage<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayStage")
            .field("venues", &self.core.venues.iter().flatten().count())
            .field("lanes", &self.core.lanes.len())
            .field("counts", &self.core.counts)
            .finish_non_exhaustive()
    }
}

/// The venue the config asks for ([`VenueSpec`]) for each of `traded` the strategy can trade
/// (every configured size expressible in its units), indexed by instrument id.
pub fn venues_for(
    settings: &Settings,
    instruments: &Instruments,
    traded: &[InstrumentId],
) -> Vec<Option<AnyVenue>> {
    let mut venues: Vec<Option<AnyVenue>> = (0..instruments.len()).map(|_| None).collect();
    for &id in traded {
        let Some(spec) = instruments.get(id) else {
            continue;
        };
        let Ok((_, limits)) = settings
            .trading_for(spec.venue, spec.symbol.as_str())
            .in_units(spec)
        else {
            continue;
        };
        let venue = match settings.trading.venue {
            VenueSpec::Sim(sim) => {
                let config = SimVenueConfig {
                    latency: sim.latency,
                    queue: sim.queue,
                    seed: sim.seed,
                    max_open_orders: limits.max_open_orders as usize,
                    max_order_qty: limits.max_order_qty,
                };
                AnyVenue::Sim(SimVenue::new(id, spec, config))
            }
        };
        venues[usize::from(id.0)] = Some(venue);
    }
    venues
}

impl<V: OrderVenue> GatewayStage<V> {
    /// A stage with `venues[id]` for each traded instrument id and one strategy stage. With
    /// event-time venues, `barrier` is the one the strategy stage holds.
    pub fn new(
        venues: Vec<Option<V>>,
        input: RingRx<Stamped<OrderMsg>>,
        out: Outbox<ExecReport>,
        progress: Arc<ProgressCounters>,
        barrier: Option<Arc<EventBarrier>>,
    ) -> Self {
        Self::with_lanes(
            venues,
            vec![LanePorts {
                input,
                out,
                barrier,
            }],
            &[],
            progress,
        )
    }

    /// A stage with `venues[id]` for each traded instrument id and a lane for each strategy
    /// stage: instrument id `i`'s venue in lane `route[i]` (ids past the table, and lanes past
    /// `lanes`, in the first).
    pub fn with_lanes(
        venues: Vec<Option<V>>,
        lanes: Vec<LanePorts>,
        route: &[u8],
        progress: Arc<ProgressCounters>,
    ) -> Self {
        let n = lanes.len();
        let lane_of = |i: usize| {
            let l = route.get(i).map_or(0, |&l| usize::from(l));
            if l < n { l } else { 0 }
        };
        let mut inputs = Vec::with_capacity(n);
        let mut core_lanes = Vec::with_capacity(n);
        for (k, ports) in lanes.into_iter().enumerate() {
            inputs.push(ports.input);
            core_lanes.push(Lane {
                out: ports.out,
                barrier: ports.barrier,
                active: venues
                    .iter()
                    .enumerate()
                    .filter(|(i, v)| v.is_some() && lane_of(*i) == k)
                    .map(|(i, _)| i)
                    .collect(),
                venues_at: 0,
                orders_handled: 0,
                quiet_published: 0,
                ended: false,
            });
        }
        Self {
            inputs,
            core: GatewayCore {
                lanes: core_lanes,
                venues,
                progress,
                counts: GatewayCounts::default(),
                venues_done: None,
                tick_to_trade: Recorder::new("tick_to_trade"),
                by_trigger: Trigger::recorders("tick_to_trade"),
                service: Recorder::new("gateway.service"),
                hop: Recorder::new("hop.strategy_gateway"),
            },
        }
    }
}

impl<V: OrderVenue> GatewayStage<V> {
    /// Tells the strategy stages through `flag` when the venues have wound down at the end (see
    /// [`VenueLink::venues_done`](super::strategy::VenueLink::venues_done)).
    pub fn with_venues_done(mut self, flag: Arc<AtomicBool>) -> Self {
        self.core.venues_done = Some(flag);
        self
    }
}

impl<V: OrderVenue> GatewayCore<V> {
    /// Handles one input of lane `k` where it lies in the ring.
    #[inline]
    fn handle(&mut self, k: usize, input: &Stamped<OrderMsg>) {
        let start = now_ns();
        self.on_msg(k, &input.msg, input.t_event);
        // Recorded once an order is with the venue.
        self.hop.record_between(input.t_exit, start);
        self.service.record_between(start, now_ns());
    }

    #[inline]
    fn venue(&mut self, id: InstrumentId) -> Option<&mut V> {
        self.venues
            .get_mut(usize::from(id.0))
            .and_then(Option::as_mut)
    }

    /// Handles one message of lane `k`, of event time `t_event`.
    #[inline]
    fn on_msg(&mut self, k: usize, msg: &OrderMsg, t_event: u64) {
        match msg {
            OrderMsg::Order(intent, trigger) => {
                self.lanes[k].orders_handled += 1;
                let Some(venue) = self.venue(intent.instrument) else {
                    self.counts.unknown_instrument += 1;
                    return;
                };
                let t_send = now_ns();
                let at = match venue.clock() {
                    VenueClock::Event => t_event,
                    VenueClock::Wall => t_send,
                };
                venue.submit(intent, at);
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
                    venue.on_book(view, t_event);
                }
            }
            OrderMsg::Trade(ev) => {
                self.counts.market_updates += 1;
                if let Some(venue) = self.venue(ev.instrument) {
                    venue.on_trade(ev, t_event);
                }
            }
            OrderMsg::End => self.lanes[k].ended = true,
        }
    }

    /// Collects the reports of lane `k`'s venues that are due: from wall-clock venues those due
    /// now, from event-time venues those due before `event_bound` (the event time its strategy
    /// stage has reached, once its order ring has been emptied after it was published).
    #[inline]
    fn collect_reports(&mut self, k: usize, event_bound: Option<u64>) {
        let Self {
            venues,
            lanes,
            counts,
            ..
        } = self;
        let lane = &mut lanes[k];
        let advance = event_bound.filter(|t| *t > lane.venues_at);
        let mut wall_now = None;
        for &i in &lane.active {
            let Some(venue) = venues[i].as_mut() else {
                continue;
            };
            let (upto, stamp) = match venue.clock() {
                VenueClock::Event => match advance {
                    // Everything strictly before `t`.
                    Some(t) => (t - 1, t),
                    None => continue,
                },
                VenueClock::Wall => {
                    let now = *wall_now.get_or_insert_with(now_ns);
                    (now, 0)
                }
            };
            let out = &mut lane.out;
            venue.poll(upto, |rep| {
                counts.reports += 1;
                out.queue(rep, stamp);
            });
        }
        if let Some(t) = advance {
            lane.venues_at = t;
        }
    }

    /// One round of lane `k`: its orders to the venues, the reports due back to its ring, its
    /// barrier's values. Returns whether anything was done.
    #[inline]
    fn poll_lane(&mut self, k: usize, input: &mut RingRx<Stamped<OrderMsg>>) -> bool {
        if self.lanes[k].ended {
            // Its stage still reads reports only while it waits for wall-clock venues to wind
            // down; an event-time lane's stage is done.
            if self.venues_done.is_none() {
                return false;
            }
            let sent_before = self.counts.reports;
            self.collect_reports(k, None);
            self.lanes[k].out.flush(now_ns());
            return self.counts.reports != sent_before;
        }
        if !self.lanes[k].out.flush(now_ns()) {
            return false;
        }
        // Read before the ring is emptied: every message the strategy stage sent before
        // reaching this event time is then handled.
        let strategy_at = self.lanes[k].barrier.as_ref().map(|b| b.strategy_at());
        let batch = input.pop_batch(BATCH, |m| {
            self.handle(k, m);
            !self.lanes[k].ended
        });
        let mut did = batch.taken > 0;
        let sent_before = self.counts.reports;
        self.collect_reports(k, strategy_at.filter(|_| batch.emptied));
        did |= self.counts.reports != sent_before;
        self.lanes[k].out.flush(now_ns());
        self.publish(k);
        did
    }

    /// After the end of stream on every lane: each venue finishes (a live one cancels what it
    /// has open), its last reports go to its strategy stage, and once every report is in the
    /// rings the stages are told the venues are done.
    fn wind_down(&mut self) -> Progress {
        let mut done = true;
        let Self {
            venues,
            lanes,
            counts,
            ..
        } = self;
        let mut flushed = true;
        for lane in lanes.iter_mut() {
            for &i in &lane.active {
                if let Some(v) = venues[i].as_mut() {
                    let out = &mut lane.out;
                    done &= v.wind_down(WIND_DOWN_GRACE_NS, |rep| {
                        counts.reports += 1;
                        out.queue(rep, 0);
                    });
                }
            }
            flushed &= lane.out.flush(now_ns());
        }
        match &self.venues_done {
            Some(flag) if done && flushed => {
                flag.store(true, Ordering::Release);
                Progress::Done
            }
            None if done => Progress::Done,
            _ => Progress::Busy,
        }
    }

    /// Publishes lane `k`'s venues' event time and quiet mark, once their reports are all in
    /// its ring.
    #[inline]
    fn publish(&mut self, k: usize) {
        let lane = &mut self.lanes[k];
        let Some(barrier) = lane.barrier.as_ref() else {
            return;
        };
        if !lane.out.is_empty() {
            return;
        }
        if barrier.venue_at() < lane.venues_at {
            barrier.publish_venue_at(lane.venues_at);
        }
        if lane.quiet_published != lane.orders_handled
            && lane.active.iter().all(|&i| {
                self.venues[i]
                    .as_ref()
                    .is_none_or(|v| v.clock() == VenueClock::Wall || v.is_idle())
            })
        {
            barrier.publish_quiet_at(lane.orders_handled);
            lane.quiet_published = lane.orders_handled;
        }
    }
}

impl<V: OrderVenue + Send> Stage for GatewayStage<V> {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn poll(&mut self) -> Progress {
        let Self { inputs, core } = self;
        // After the end of stream the strategy stages have stopped sending: a live venue still
        // cancels what it has open before the stage is done.
        if core.lanes.iter().all(|l| l.ended) {
            return core.wind_down();
        }
        let mut did = false;
        for (k, input) in inputs.iter_mut().enumerate() {
            did |= core.poll_lane(k, input);
        }
        if did { Progress::Busy } else { Progress::Idle }
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        let c = &self.core.counts;
        Some(LiveCounts {
            messages: c.orders + c.cancels + c.reports,
            errors: c.unknown_instrument,
            backpressure: self.core.lanes.iter().map(|l| l.out.backpressure()).sum(),
            input_queued: self.inputs.iter().map(|i| i.len() as u64).sum(),
        })
    }

    fn live_latency(&self) -> Vec<LiveLatency> {
        let c = &self.core;
        let mut v = vec![c.tick_to_trade.live(), c.service.live(), c.hop.live()];
        v.extend(c.by_trigger.iter().map(Recorder::live));
        v
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
            ("sent", self.core.lanes.iter().map(|l| l.out.sent()).sum()),
            (
                "backpressure",
                self.core.lanes.iter().map(|l| l.out.backpressure()).sum(),
            ),
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
