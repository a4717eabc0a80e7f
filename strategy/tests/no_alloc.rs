//! Every strategy decides without allocating: after construction, thousands of views, trades
//! and execution reports (orders acknowledged, filled in parts and whole, cancelled) through
//! [`AnyStrategy`] cost no allocation on the deciding thread, counted by a counting global
//! allocator. The harness itself works in fixed buffers so that it counts nothing of its own.

use arrayvec::ArrayVec;
use pinion_core::{BookTop, InstrumentId, Level, Px, Qty, TradePrint};
use pinion_strategy::{
    AnyStrategy, ExecReport, FairPrice, GridParams, GridSpacing, Intents, MarketMakingParams,
    MomentumParams, OrderAction, OrderIdSource, OrderSide, OrderStatus, PriceSource,
    QuoteChaseParams, RsiFilter, SpreadCaptureParams, Strategy as _, StrategyParams, TimeInForce,
    VenueOrderId,
};
use pinion_testkit::alloc::thread_allocations;

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

const INST: InstrumentId = InstrumentId(0);
const TICK: Px = Px(10);
const STEPS: u64 = 20_000;

/// A pseudo-random number generator (xorshift), so the run is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn report(id: u64, side: OrderSide, status: OrderStatus, px: Px, fill: i64) -> ExecReport {
    ExecReport {
        client_id: pinion_strategy::ClientOrderId(id),
        venue_id: VenueOrderId(id),
        instrument: INST,
        side,
        status,
        last_px: if fill > 0 { px } else { Px::ZERO },
        last_qty: Qty(fill),
        cum_qty: Qty(fill),
        leaves_qty: Qty::ZERO,
        maker: true,
        t0: 0,
        venue_ts: 0,
    }
}

/// Runs `params` for [`STEPS`] events; returns the allocations counted after construction and
/// the strategy.
fn run(params: StrategyParams) -> (u64, AnyStrategy) {
    let mut s = AnyStrategy::new(INST, params, OrderIdSource::new(1));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Intents::new();
    let mut due: ArrayVec<ExecReport, 512> = ArrayVec::new();
    let mut now: ArrayVec<ExecReport, 512> = ArrayVec::new();
    let mut mid = 1_000_000i64;
    let before = thread_allocations();
    for step in 0..STEPS {
        let t = step * 50_000_000;
        out.set_new_order_budget(rng.next(3) as u32);
        // The venue answers what was asked a step ago.
        now.clear();
        now.extend(due.drain(..));
        for rep in &now {
            s.on_exec(rep, &mut out);
        }
        mid += rng.next(41) as i64 * TICK.0 / 2 - 10 * TICK.0;
        mid = mid.clamp(900_000, 1_100_000);
        let spread = (1 + rng.next(12) as i64) * TICK.0;
        let bid = (mid - spread / 2) / TICK.0 * TICK.0;
        if rng.next(4) == 0 {
            let trade = TradePrint {
                t0: t,
                t_recv: t,
                exch_ts: 0,
                trade_ts: 0,
                trade_id: step,
                px: Px(bid + rng.next(3) as i64 * TICK.0),
                qty: Qty(1),
                instrument: INST,
                buyer_maker: rng.next(2) == 0,
            };
            s.on_trade(&trade, &mut out);
        } else {
            let lv = |px: i64| Level {
                px: Px(px),
                qty: Qty(1 + (px % 7)),
            };
            let mut top = BookTop::from_levels(
                INST,
                step,
                t,
                rng.next(50) != 0,
                &[lv(bid), lv(bid - TICK.0)],
                &[lv(bid + spread), lv(bid + spread + TICK.0)],
            );
            top.t_recv = t;
            s.on_book(&top, &mut out);
        }
        for i in out.drain() {
            let (id, side, px) = (i.client_id.0, i.side, i.px);
            let ioc = i.tif == TimeInForce::Ioc;
            let rep = match (i.action, rng.next(3)) {
                (OrderAction::Cancel, _) => report(i.target.0, side, OrderStatus::Canceled, px, 0),
                (_, 0) => report(id, side, OrderStatus::Filled, px, i.qty.0),
                // What an immediate-or-cancel order does not fill on arrival expires.
                _ if ioc => report(id, side, OrderStatus::Expired, px, 0),
                _ => report(id, side, OrderStatus::New, px, 0),
            };
            let _ = due.try_push(rep);
        }
    }
    (thread_allocations() - before, s)
}

#[test]
fn no_strategy_allocates_while_it_decides() {
    let kinds = [
        StrategyParams::MarketMaking(MarketMakingParams {
            fair: FairPrice::Mid,
            half_spread_ppm: 50,
            skew_ppm: 100,
            requote_ppm: 20,
            levels: 4,
            level_step_ppm: 30,
            order_qty: Qty(10),
            max_position: Qty(100),
            tick: TICK,
        }),
        StrategyParams::SpreadCapture(SpreadCaptureParams {
            enter_spread_ppm: 40,
            exit_spread_ppm: 20,
            improve_ticks: 1,
            order_qty: Qty(10),
            max_position: Qty(50),
            tick: TICK,
        }),
        StrategyParams::QuoteChase(QuoteChaseParams {
            side: OrderSide::Sell,
            qty: Qty(10),
            improve_ticks: 1,
            limit_px: None,
            limit_ppm: Some(500),
            give_up_ns: 1_000_000_000,
            cycle: true,
            max_position: Qty(20),
            tick: TICK,
        }),
        StrategyParams::Momentum(MomentumParams {
            source: PriceSource::Trades,
            sample_ns: 200_000_000,
            short_samples: 3,
            long_samples: 12,
            min_gap_ppm: 5,
            rsi: Some(RsiFilter {
                period: 6,
                overbought: 85,
                oversold: 15,
            }),
            order_qty: Qty(10),
            max_position: Qty(20),
        }),
        StrategyParams::Grid(GridParams {
            lower: Px(950_000),
            upper: Px(1_050_000),
            levels: 24,
            spacing: GridSpacing::Arithmetic,
            order_qty: Qty(10),
            max_position: Qty(400),
            tick: TICK,
        }),
    ];
    for params in kinds {
        let (allocations, s) = run(params);
        let st = s.stats();
        eprintln!("{}: {st:?}", s.kind());
        assert!(st.orders > 100 && st.fills > 10, "{}: {st:?}", s.kind());
        assert_eq!(allocations, 0, "{}: allocations while deciding", s.kind());
    }
}
