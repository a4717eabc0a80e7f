//! Flattening and de-risking under random positions, open orders, markets and limits, through a
//! real [`RiskGate`] with its kill switch on or off: a de-risk never increases the exposure, and
//! no closing slice breaches another limit.
//!
//! For every case the de-risk rule's target is checked (smaller than the position, never past
//! zero), then the slice the [`Flattener`] plans is checked against the limits by hand (order
//! size, the slice size, notional, the price band around the mid, the tick and step grids, and
//! the position if every order open on the closing side and the slice fill: no larger, no flip,
//! not past the target), and then offered to the gate, which must not refuse it for any of those
//! limits nor for the kill switch.

use pinion_core::{InstrumentId, InstrumentSpec, Px, Qty, Venue};
use pinion_strategy::{
    ClientOrderId, DeriskParams, ExecReport, FlattenCause, FlattenParams, FlattenStep, Flattener,
    OrderIntent, OrderSide, OrderStatus, OrderType, RiskGate, RiskLimits, RiskReject, TimeInForce,
    VenueOrderId, derisk_target,
};
use proptest::prelude::*;

const INST: InstrumentId = InstrumentId(0);
const TICK: i64 = 5;
const STEP: i64 = 10;

fn spec() -> InstrumentSpec {
    let mut s = InstrumentSpec::new(Venue::BinanceSpot, "ETHUSDT", "0.01", "0.0001").expect("spec");
    s.tick = Px(TICK);
    s.step = Qty(STEP);
    s.min_qty = Qty(STEP);
    s.min_price = Px(TICK);
    s
}

fn fill(side: OrderSide, qty: i64, px: i64) -> ExecReport {
    ExecReport {
        client_id: ClientOrderId(u64::MAX),
        venue_id: VenueOrderId(0),
        instrument: INST,
        side,
        status: OrderStatus::Filled,
        last_px: Px(px),
        last_qty: Qty(qty),
        cum_qty: Qty(qty),
        leaves_qty: Qty::ZERO,
        maker: false,
        t0: 0,
        venue_ts: 0,
    }
}

#[derive(Debug, Clone)]
struct Case {
    /// The position, in steps (signed).
    steps: i64,
    /// The mid, in ticks.
    mid_ticks: i64,
    /// Half the spread, in ticks.
    half_spread: i64,
    /// Orders resting before the kill: (buy, steps, ticks from the mid).
    resting: Vec<(bool, i64, i64)>,
    killed: bool,
    max_order_steps: i64,
    slice_steps: i64,
    band_bps: u32,
    slippage_ppm: u32,
    max_notional_units: i64,
    above_ppm: u32,
    by_ppm: u32,
    capital: i64,
    net: i64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (-400i64..=400, 1_000i64..=40_000, 0i64..=20),
        prop::collection::vec((any::<bool>(), 1i64..=50, -30i64..=30), 0..4),
        (
            any::<bool>(),
            1i64..=100,
            1i64..=100,
            1u32..=2_000,
            0u32..=50_000,
        ),
        (1i64..=1_000_000_000, 1u32..=5_000_000, 1u32..=1_000_000),
        (1i64..=10_000_000_000, -2_000_000_000i64..=2_000_000_000),
    )
        .prop_map(
            |(
                (steps, mid_ticks, half_spread),
                resting,
                (killed, max_order_steps, slice_steps, band_bps, slippage_ppm),
                (max_notional_units, above_ppm, by_ppm),
                (capital, net),
            )| Case {
                steps,
                mid_ticks,
                half_spread,
                resting,
                killed,
                max_order_steps,
                slice_steps,
                band_bps,
                slippage_ppm,
                max_notional_units,
                above_ppm,
                by_ppm,
                capital,
                net,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn derisking_never_increases_exposure_nor_breaches_another_limit(c in case()) {
        let limits = RiskLimits {
            max_order_qty: Qty(c.max_order_steps * STEP),
            max_notional: i128::from(c.max_notional_units) * 1_000,
            max_position: Qty(10_000 * STEP),
            max_open_orders: 8,
            orders_per_sec: 1_000,
            order_burst: 1_000,
            price_band_bps: c.band_bps,
        };
        let mid = Px(c.mid_ticks * TICK);
        let bid = Px((c.mid_ticks - c.half_spread) * TICK);
        let ask = Px((c.mid_ticks + c.half_spread) * TICK);
        let mut gate = RiskGate::new(INST, limits, spec());
        gate.set_mid(Some(mid));
        let position = Qty(c.steps * STEP);
        if position.0 != 0 {
            let side = if position.0 > 0 { OrderSide::Buy } else { OrderSide::Sell };
            gate.on_exec(&fill(side, position.0.abs(), mid.0));
        }
        for (i, &(buy, steps, dt)) in c.resting.iter().enumerate() {
            let side = if buy { OrderSide::Buy } else { OrderSide::Sell };
            let o = OrderIntent::new_limit(0, ClientOrderId(i as u64 + 1), INST, side,
                Px(mid.0 + dt * TICK), Qty(steps * STEP), OrderType::Limit, TimeInForce::Gtc, pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry));
            let _ = gate.admit(&o, 0);
        }
        gate.set_kill_switch(c.killed);
        prop_assert_eq!(gate.position().qty(), position);

        // The rule's target: smaller than the position, never past zero.
        let params = DeriskParams {
            above_ppm: c.above_ppm,
            by_ppm: c.by_ppm,
            capital: i128::from(c.capital),
        };
        let target = derisk_target(position, mid, i128::from(c.net), &params, Qty(STEP));
        if let Some(t) = target {
            prop_assert!(t.0.abs() < position.0.abs(), "target {t:?} of {position:?}");
            prop_assert!(t.0 == 0 || t.0.signum() == position.0.signum());
            prop_assert_eq!(t.0 % STEP, 0);
        }

        // A de-risk run where the rule fires, else a whole flatten.
        let fp = FlattenParams {
            slice_qty: Qty(c.slice_steps * STEP),
            deadline_ns: 1_000,
            slippage_ppm: c.slippage_ppm,
        };
        let mut f = Flattener::new(fp, Qty(STEP), Px(TICK));
        let (cause, goal) = match target {
            Some(t) => (FlattenCause::Derisk, t),
            None => (FlattenCause::Operator, Qty::ZERO),
        };
        prop_assert!(f.start(cause, goal, 0));
        let open = gate.open_closing_qty();
        let step = f.next(position, open, Some(bid), Some(ask), Some(mid), &limits, 1);
        let slice = match step {
            FlattenStep::Send(s) => s,
            FlattenStep::Finished(_, _, left) => {
                prop_assert!((left.0 - goal.0).abs() < STEP, "finished {left:?} short of {goal:?}");
                return Ok(());
            }
            FlattenStep::Wait => {
                // Only when what is open on the closing side leaves no room for a step, or the
                // notional limit allows less than a step at the band's edge.
                return Ok(());
            }
        };
        let size = position.0.abs();
        prop_assert!(size > 0);
        let closing = if position.0 > 0 { OrderSide::Sell } else { OrderSide::Buy };
        prop_assert_eq!(slice.side, closing);
        prop_assert!(slice.qty.0 > 0 && slice.qty.0 % STEP == 0);
        prop_assert!(slice.qty <= limits.max_order_qty && slice.qty <= fp.slice_qty);
        prop_assert!(i128::from(slice.px.0) * i128::from(slice.qty.0) <= limits.max_notional);
        prop_assert_eq!(slice.px.0 % TICK, 0);
        let distance = i128::from((slice.px.0 - mid.0).abs());
        prop_assert!(distance * 10_000 <= i128::from(limits.price_band_bps) * i128::from(mid.0),
            "{:?} outside the band around {mid:?}", slice.px);
        // If everything open on the closing side and the slice fill: no larger, no flip, and
        // not past the target.
        prop_assert!(slice.qty.0 + open.0 <= size, "{slice:?} with {open:?} open flips {position:?}");
        prop_assert!(slice.qty.0 <= (position.0 - goal.0).abs(), "{slice:?} past the target {goal:?}");
        let after = position.0 - position.0.signum() * slice.qty.0;
        prop_assert!(after.abs() < size);
        // Through the gate: never refused for a limit the slice was planned within, nor, as
        // it only reduces, for the kill switch.
        let intent = OrderIntent::new_limit(0, ClientOrderId(99), INST, slice.side, slice.px,
            slice.qty, OrderType::Limit, TimeInForce::Ioc, pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry));
        match gate.admit_reducing(&intent, 1) {
            Ok(()) => {}
            Err(e) => prop_assert!(
                !matches!(e, RiskReject::KillSwitch | RiskReject::MaxOrderQty
                    | RiskReject::MaxNotional | RiskReject::MaxPosition | RiskReject::PriceBand
                    | RiskReject::OffTick | RiskReject::OffStep | RiskReject::NotPositive),
                "the gate refused {slice:?}: {e}"
            ),
        }
    }
}

#[test]
fn the_kill_switch_lets_a_reducing_order_through_and_nothing_else() {
    let limits = RiskLimits {
        max_order_qty: Qty(1_000),
        max_notional: i128::MAX,
        max_position: Qty(1_000),
        max_open_orders: 4,
        orders_per_sec: 100,
        order_burst: 100,
        price_band_bps: 100,
    };
    let mut gate = RiskGate::new(INST, limits, spec());
    gate.set_mid(Some(Px(10_000)));
    gate.on_exec(&fill(OrderSide::Buy, 100, 10_000));
    gate.set_kill_switch(true);
    let order = |id: u64, side: OrderSide, qty: i64| {
        OrderIntent::new_limit(
            0,
            ClientOrderId(id),
            INST,
            side,
            Px(9_990),
            Qty(qty),
            OrderType::Limit,
            TimeInForce::Ioc,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
        )
    };
    // Adding to the position, or more than it: the kill switch holds.
    assert_eq!(
        gate.admit_reducing(&order(1, OrderSide::Buy, 10), 0),
        Err(RiskReject::KillSwitch)
    );
    assert_eq!(
        gate.admit_reducing(&order(2, OrderSide::Sell, 110), 0),
        Err(RiskReject::KillSwitch)
    );
    assert_eq!(
        gate.admit(&order(3, OrderSide::Sell, 60), 0),
        Err(RiskReject::KillSwitch)
    );
    assert_eq!(
        gate.admit_reducing(&order(4, OrderSide::Sell, 60), 0),
        Ok(())
    );
    // 60 open on the sell side: another 60 could flip the position.
    assert_eq!(gate.open_closing_qty(), Qty(60));
    assert_eq!(
        gate.admit_reducing(&order(5, OrderSide::Sell, 60), 0),
        Err(RiskReject::KillSwitch)
    );
    assert_eq!(
        gate.admit_reducing(&order(6, OrderSide::Sell, 40), 0),
        Ok(())
    );
}
