//! The order contract under random markets and random venue answers: whatever the sequence of
//! views, trades and execution reports, no strategy cancels an order the venue has not
//! acknowledged as open (or one whose cancel is still on its way), reuses a client id, places a
//! second order in a slot whose order is not known closed, places more new orders in one
//! callback than the order rate admits, or sends an intent without its reason: every order
//! carries the instance the stage set and a code of the strategy's own kind, every cancel the
//! reason of the order it cancels.
//!
//! The test keeps its own account of every order from the intents it saw and the reports it
//! gave back (a small venue that answers at random, as a real one may: acknowledge, reject,
//! fill in parts, expire, confirm or refuse a cancel), and checks every intent against it.

use std::collections::{HashMap, HashSet};

use pinion_core::{BookTop, InstrumentId, Level, Px, Qty, TradePrint};
use pinion_strategy::{
    AnyStrategy, ClientOrderId, ExecReport, FairPrice, GridParams, GridSpacing, Intents,
    MarketMakingParams, MomentumParams, OrderAction, OrderIdSource, OrderIntent, OrderReason,
    OrderSide, OrderStatus, PriceSource, QuoteChaseParams, ReasonCode, RejectReason, RsiFilter,
    SpreadCaptureParams, Strategy as _, StrategyParams, VenueOrderId,
};
use proptest::prelude::*;

const INST: InstrumentId = InstrumentId(3);
const TICK: Px = Px(5);

/// One thing that happens.
#[derive(Debug, Clone)]
enum Step {
    /// A view: the mid moves by `dmid`, the spread is `spread` ticks.
    Book {
        dmid: i64,
        spread: i64,
        synced: bool,
        bid_qty: i64,
        ask_qty: i64,
    },
    /// A trade `dpx` from the mid.
    Trade { dpx: i64 },
    /// The venue answers the order picked by `pick` (among those it can answer) with `what`.
    Venue { pick: usize, what: u8 },
    /// The order rate admits this many new orders a callback from now on.
    Budget(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (-80i64..80, 1i64..60, prop::bool::weighted(0.95), 1i64..100, 1i64..100).prop_map(
            |(dmid, spread, synced, bid_qty, ask_qty)| Step::Book {
                dmid,
                spread,
                synced,
                bid_qty,
                ask_qty
            }
        ),
        1 => (-200i64..200).prop_map(|dpx| Step::Trade { dpx }),
        5 => (any::<usize>(), 0u8..8).prop_map(|(pick, what)| Step::Venue { pick, what }),
        1 => prop_oneof![Just(0u32), Just(1), Just(2), Just(8)].prop_map(Step::Budget),
    ]
}

/// What the test knows about one order.
#[derive(Debug, Clone, Copy)]
struct Order {
    side: OrderSide,
    leaves: i64,
    acked: bool,
    closed: bool,
    cancel_on_way: bool,
    reason: OrderReason,
}

/// The test's own account, and the checks.
struct Venue {
    orders: HashMap<ClientOrderId, Order>,
    ids: HashSet<ClientOrderId>,
    /// The live order of each slot, as the test counts it.
    slots: HashMap<usize, ClientOrderId>,
    cum: HashMap<ClientOrderId, i64>,
    /// The strategy instance the intents must name.
    instance: u8,
    /// The reason codes the strategy's kind may give a new order.
    codes: &'static [ReasonCode],
}

impl Venue {
    fn new(instance: u8, codes: &'static [ReasonCode]) -> Self {
        Self {
            orders: HashMap::new(),
            ids: HashSet::new(),
            slots: HashMap::new(),
            cum: HashMap::new(),
            instance,
            codes,
        }
    }

    /// Checks the intents the strategy just wrote, with `budget` new orders allowed, and
    /// records them.
    fn take(&mut self, s: &AnyStrategy, out: &mut Intents, budget: u32) {
        let intents: Vec<OrderIntent> = out.drain().collect();
        let news = intents
            .iter()
            .filter(|i| i.action == OrderAction::New)
            .count();
        assert!(
            news <= budget as usize,
            "{news} new orders with a budget of {budget}: {intents:?}"
        );
        for i in intents {
            assert!(self.ids.insert(i.client_id), "client id reused: {i:?}");
            match i.action {
                OrderAction::New => {
                    assert!(i.qty.0 > 0 && i.px.0 > 0, "empty order {i:?}");
                    assert!(
                        i.reason.strategy == self.instance && self.codes.contains(&i.reason.code),
                        "reason {} not of instance {} and {:?}: {i:?}",
                        i.reason,
                        self.instance,
                        self.codes
                    );
                    let slot = s
                        .orders()
                        .and_then(|o| o.slot_of(i.client_id))
                        .expect("a new order sits in a slot");
                    if let Some(prev) = self.slots.get(&slot) {
                        let p = self.orders[prev];
                        assert!(p.closed, "slot {slot} placed again while {prev:?} is {p:?}");
                    }
                    self.slots.insert(slot, i.client_id);
                    self.orders.insert(
                        i.client_id,
                        Order {
                            side: i.side,
                            leaves: i.qty.0,
                            acked: false,
                            closed: false,
                            cancel_on_way: false,
                            reason: i.reason,
                        },
                    );
                }
                OrderAction::Cancel => {
                    let o = self
                        .orders
                        .get_mut(&i.target)
                        .unwrap_or_else(|| panic!("cancel of an unknown order: {i:?}"));
                    assert!(
                        o.acked && !o.closed,
                        "cancel of an order not known open: {i:?} {o:?}"
                    );
                    assert!(!o.cancel_on_way, "second cancel on its way: {i:?}");
                    assert_eq!(i.reason, o.reason, "a cancel carries its order's reason");
                    o.cancel_on_way = true;
                }
                OrderAction::Replace | OrderAction::Amend => {
                    panic!("no strategy here replaces or amends: {i:?}")
                }
            }
        }
    }

    /// A report the venue may give now about the order `pick` chooses, of kind `what`.
    fn answer(&mut self, pick: usize, what: u8) -> Option<ExecReport> {
        let mut open: Vec<ClientOrderId> = self
            .orders
            .iter()
            .filter(|(_, o)| !o.closed)
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return None;
        }
        open.sort();
        let id = open[pick % open.len()];
        let o = self.orders.get_mut(&id)?;
        let cum = self.cum.entry(id).or_insert(0);
        let mut rep = ExecReport {
            client_id: id,
            venue_id: VenueOrderId(id.0),
            instrument: INST,
            side: o.side,
            status: OrderStatus::New,
            last_px: Px::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: Qty(*cum),
            leaves_qty: Qty(o.leaves),
            maker: true,
            t0: 0,
            venue_ts: 0,
        };
        match (o.acked, o.cancel_on_way, what) {
            (false, _, 0..=3) => o.acked = true,
            (false, _, 4) => {
                o.closed = true;
                rep.status = OrderStatus::Rejected(RejectReason::WouldTakeLiquidity);
            }
            (false, _, 5) => {
                o.closed = true;
                rep.status = OrderStatus::Rejected(RejectReason::Risk);
            }
            (_, true, 6) => {
                o.closed = true;
                rep.status = OrderStatus::Canceled;
                rep.leaves_qty = Qty::ZERO;
            }
            (_, true, 7) => {
                o.cancel_on_way = false;
                rep.status = OrderStatus::CancelRejected(RejectReason::Venue);
            }
            (true, _, 0..=2) | (false, _, 6..=7) => {
                // A fill: a part, or what is left.
                let q = if what == 0 {
                    o.leaves
                } else {
                    (o.leaves / 2).max(1)
                };
                o.acked = true;
                o.leaves -= q;
                *cum += q;
                rep.last_px = Px(100_000);
                rep.last_qty = Qty(q);
                rep.cum_qty = Qty(*cum);
                rep.leaves_qty = Qty(o.leaves);
                if o.leaves == 0 {
                    o.closed = true;
                    rep.status = OrderStatus::Filled;
                } else {
                    rep.status = OrderStatus::PartiallyFilled;
                }
            }
            (true, _, 3) => {
                // The remainder of an IOC order, say.
                o.closed = true;
                rep.status = OrderStatus::Expired;
                rep.leaves_qty = Qty::ZERO;
            }
            _ => return None,
        }
        Some(rep)
    }
}

fn book(t: u64, mid: i64, spread: i64, synced: bool, bid_qty: i64, ask_qty: i64) -> BookTop {
    let half = spread * TICK.0 / 2;
    let bid = (mid - half) / TICK.0 * TICK.0;
    let ask = bid + spread * TICK.0;
    let lv = |px: i64, qty: i64| Level {
        px: Px(px),
        qty: Qty(qty),
    };
    let mut b = BookTop::from_levels(
        INST,
        t,
        t,
        synced,
        &[lv(bid, bid_qty), lv(bid - TICK.0, 50)],
        &[lv(ask, ask_qty), lv(ask + TICK.0, 50)],
    );
    b.t_recv = t;
    b
}

/// Every new strategy, set for a market around 100,000 with a tick of 5.
fn kinds() -> Vec<StrategyParams> {
    vec![
        StrategyParams::MarketMaking(MarketMakingParams {
            fair: FairPrice::Microprice,
            half_spread_ppm: 500,
            skew_ppm: 1_000,
            requote_ppm: 200,
            levels: 3,
            level_step_ppm: 500,
            order_qty: Qty(10),
            max_position: Qty(50),
            tick: TICK,
        }),
        StrategyParams::SpreadCapture(SpreadCaptureParams {
            enter_spread_ppm: 1_000,
            exit_spread_ppm: 400,
            improve_ticks: 1,
            order_qty: Qty(10),
            max_position: Qty(30),
            tick: TICK,
        }),
        StrategyParams::QuoteChase(QuoteChaseParams {
            side: OrderSide::Buy,
            qty: Qty(10),
            improve_ticks: 1,
            limit_px: None,
            limit_ppm: Some(1_000),
            give_up_ns: 500,
            cycle: true,
            max_position: Qty(20),
            tick: TICK,
        }),
        StrategyParams::Momentum(MomentumParams {
            source: PriceSource::Mid,
            sample_ns: 20,
            short_samples: 2,
            long_samples: 5,
            min_gap_ppm: 10,
            rsi: Some(RsiFilter {
                period: 3,
                overbought: 90,
                oversold: 10,
            }),
            order_qty: Qty(10),
            max_position: Qty(20),
        }),
        StrategyParams::Grid(GridParams {
            lower: Px(99_000),
            upper: Px(101_000),
            levels: 9,
            spacing: GridSpacing::Geometric,
            order_qty: Qty(10),
            max_position: Qty(60),
            tick: TICK,
        }),
    ]
}

/// The codes a strategy of `params`' kind gives its orders.
fn codes(params: &StrategyParams) -> &'static [ReasonCode] {
    match params {
        StrategyParams::MarketMaking(_) | StrategyParams::SpreadCapture(_) => {
            &[ReasonCode::Requote]
        }
        StrategyParams::QuoteChase(_) => &[ReasonCode::Chase],
        StrategyParams::Grid(_) => &[ReasonCode::GridLevel],
        StrategyParams::Momentum(_) | StrategyParams::Imbalance(_) | StrategyParams::Pairs(_) => {
            &[ReasonCode::Entry, ReasonCode::Exit]
        }
    }
}

fn run(params: StrategyParams, steps: &[Step]) {
    // An instance other than 0, so a reason that ignored the stage's would show.
    let mut venue = Venue::new(2, codes(&params));
    let mut s = AnyStrategy::new(INST, params, OrderIdSource::new(1));
    let (mut t, mut mid, mut budget) = (0u64, 100_000i64, 8u32);
    let mut out = Intents::new();
    out.set_strategy(2);
    for st in steps {
        t += 7;
        out.set_new_order_budget(budget);
        match *st {
            Step::Book {
                dmid,
                spread,
                synced,
                bid_qty,
                ask_qty,
            } => {
                mid = (mid + dmid).clamp(98_000, 102_000);
                s.on_book(&book(t, mid, spread, synced, bid_qty, ask_qty), &mut out);
            }
            Step::Trade { dpx } => {
                let trade = TradePrint {
                    t0: t,
                    t_recv: t,
                    exch_ts: 0,
                    trade_ts: 0,
                    trade_id: t,
                    px: Px(mid + dpx),
                    qty: Qty(1),
                    instrument: INST,
                    buyer_maker: dpx < 0,
                };
                s.on_trade(&trade, &mut out);
            }
            Step::Venue { pick, what } => {
                if let Some(rep) = venue.answer(pick, what) {
                    s.on_exec(&rep, &mut out);
                }
            }
            Step::Budget(b) => budget = b,
        }
        venue.take(&s, &mut out, budget);
    }
    // The strategy's own account agrees with the test's on every order.
    let slots = s.orders().expect("slots");
    for (id, o) in &venue.orders {
        let state = slots.state(*id);
        if slots.slot_of(*id).is_some() {
            assert_eq!(state.is_live(), !o.closed, "{id:?}: {state:?} vs {o:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_strategy_contradicts_what_it_knows_about_its_orders(
        steps in prop::collection::vec(step(), 1..400),
    ) {
        for params in kinds() {
            run(params, &steps);
        }
    }
}
