//! [`SimVenue`] on crafted books and trades: latency, hard limits, cancels, the queue model and
//! taking liquidity on arrival.

use super::*;
use pinion_core::Venue;

const INST: InstrumentId = InstrumentId(2);
const LAT: SimLatency = SimLatency::constant(100, 50);

fn venue(max_open_orders: usize) -> SimVenue {
    venue_with(LAT, max_open_orders)
}

fn venue_with(latency: SimLatency, max_open_orders: usize) -> SimVenue {
    let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
    SimVenue::new(
        INST,
        &spec,
        SimVenueConfig {
            latency,
            queue: QueueModel::Conservative,
            seed: 1,
            max_open_orders,
            max_order_qty: Qty(1_000),
        },
    )
}

fn lv(px: i64, qty: i64) -> Level {
    Level {
        px: Px(px),
        qty: Qty(qty),
    }
}

/// Bids 100 × 5, 99 × 7; asks 101 × 3, 102 × 4.
fn book() -> BookTop {
    BookTop::from_levels(
        INST,
        1,
        0,
        true,
        &[lv(100, 5), lv(99, 7)],
        &[lv(101, 3), lv(102, 4)],
    )
}

fn order(id: u64, side: OrderSide, px: i64, qty: i64) -> OrderIntent {
    OrderIntent::new_limit(
        id * 10,
        ClientOrderId(id),
        INST,
        side,
        Px(px),
        Qty(qty),
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    )
}

fn trade(px: i64, qty: i64, seller_aggressor: bool) -> TradePrint {
    TradePrint {
        t0: 0,
        t_recv: 0,
        exch_ts: 0,
        trade_ts: 0,
        trade_id: 1,
        px: Px(px),
        qty: Qty(qty),
        instrument: INST,
        buyer_maker: seller_aggressor,
    }
}

fn drain(v: &mut SimVenue, now: u64) -> Vec<ExecReport> {
    let mut out = Vec::new();
    v.poll(now, |r| out.push(r));
    out
}

/// A venue with `book()` and one resting order placed and acknowledged by t = 150.
fn resting(side: OrderSide, px: i64, qty: i64) -> SimVenue {
    let mut v = venue(4);
    v.on_book(&book(), 0);
    v.submit(&order(1, side, px, qty), 0);
    let acks = drain(&mut v, 150);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].status, OrderStatus::New);
    v
}

#[test]
fn acknowledges_after_both_latencies() {
    let mut v = venue(4);
    v.on_book(&book(), 0);
    v.submit(&order(1, OrderSide::Buy, 100, 10), 1_000);
    assert!(drain(&mut v, 1_149).is_empty());
    let r = drain(&mut v, 1_150);
    assert_eq!(r.len(), 1);
    let r = r[0];
    assert_eq!(
        (r.client_id, r.status),
        (ClientOrderId(1), OrderStatus::New)
    );
    assert_eq!((r.venue_id, r.t0, r.venue_ts), (VenueOrderId(1), 10, 1_100));
    assert_eq!((r.cum_qty, r.leaves_qty), (Qty(0), Qty(10)));
    assert_eq!(v.open_orders(), 1);
    assert!(
        drain(&mut v, 10_000).is_empty(),
        "each report is delivered once"
    );
}

#[test]
fn hard_limits_reject_at_once() {
    let mut v = venue(2);
    v.submit(&order(1, OrderSide::Buy, 100, 1_001), 5);
    v.submit(&order(2, OrderSide::Buy, 0, 10), 5);
    v.submit(&order(3, OrderSide::Buy, 100, 0), 5);
    let mut other = order(4, OrderSide::Buy, 100, 10);
    other.instrument = InstrumentId(9);
    v.submit(&other, 5);
    v.submit(&order(5, OrderSide::Buy, 100, 10), 5);
    v.submit(&order(6, OrderSide::Buy, 99, 10), 5);
    // Two already in flight count as open.
    v.submit(&order(7, OrderSide::Buy, 98, 10), 5);
    let r = drain(&mut v, 5);
    let got: Vec<(u64, OrderStatus)> = r.iter().map(|r| (r.client_id.0, r.status)).collect();
    assert_eq!(
        got,
        [
            (1, OrderStatus::Rejected(RejectReason::MaxQty)),
            (2, OrderStatus::Rejected(RejectReason::InvalidPrice)),
            (3, OrderStatus::Rejected(RejectReason::InvalidQty)),
            (4, OrderStatus::Rejected(RejectReason::UnknownInstrument)),
            (7, OrderStatus::Rejected(RejectReason::MaxOpenOrders)),
        ]
    );
    assert!(r.iter().all(|r| r.venue_ts == 5));
    assert_eq!(v.stats().rejected, 5);
    assert_eq!(drain(&mut v, 155).len(), 2);
}

#[test]
fn off_grid_prices_and_quantities_are_rejected() {
    let spec = InstrumentSpec::new(Venue::BinanceSpot, "X", "0.05", "0.5").unwrap();
    let cfg = SimVenueConfig {
        latency: LAT,
        queue: QueueModel::Conservative,
        seed: 1,
        max_open_orders: 4,
        max_order_qty: Qty(1_000),
    };
    let mut v = SimVenue::new(INST, &spec, cfg);
    v.submit(&order(1, OrderSide::Buy, 101, 10), 0);
    v.submit(&order(2, OrderSide::Buy, 100, 3), 0);
    let r = drain(&mut v, 0);
    assert_eq!(
        r[0].status,
        OrderStatus::Rejected(RejectReason::InvalidPrice)
    );
    assert_eq!(r[1].status, OrderStatus::Rejected(RejectReason::InvalidQty));
}

#[test]
fn cancel_and_cancel_of_unknown_order() {
    let mut v = resting(OrderSide::Buy, 100, 10);
    let cancel = OrderIntent::cancel(
        77,
        ClientOrderId(2),
        ClientOrderId(1),
        INST,
        OrderSide::Buy,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
    );
    v.submit(&cancel, 200);
    let r = drain(&mut v, 350);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].client_id, r[0].status),
        (ClientOrderId(1), OrderStatus::Canceled)
    );
    assert_eq!((r[0].t0, r[0].leaves_qty), (77, Qty(0)));
    assert_eq!(v.open_orders(), 0);
    v.submit(&cancel, 400);
    let r = drain(&mut v, 550);
    assert_eq!(
        r[0].status,
        OrderStatus::CancelRejected(RejectReason::UnknownOrder)
    );
    // A cancelled order no longer fills.
    v.on_trade(&trade(50, 100, true), 600);
    assert!(drain(&mut v, 1_000).is_empty());
}

#[test]
fn queue_ahead_is_used_up_before_a_fill_at_the_price() {
    // Joins the bid at 100 behind the visible 5.
    let mut v = resting(OrderSide::Buy, 100, 10);
    // Buyers lifting the ask do not touch the bid.
    v.on_trade(&trade(100, 50, false), 200);
    // Sellers hit 100 for 3: all ahead of us.
    v.on_trade(&trade(100, 3, true), 210);
    assert!(drain(&mut v, 1_000).is_empty());
    // 4 more: 2 ahead, then 2 for us.
    v.on_trade(&trade(100, 4, true), 300);
    let r = drain(&mut v, 350);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, OrderStatus::PartiallyFilled);
    assert_eq!(
        (r[0].last_px, r[0].last_qty, r[0].maker),
        (Px(100), Qty(2), true)
    );
    assert_eq!(
        (r[0].cum_qty, r[0].leaves_qty, r[0].t0),
        (Qty(2), Qty(8), 10)
    );
    // Now at the front: the next trade at the price fills us directly.
    v.on_trade(&trade(100, 20, true), 400);
    let r = drain(&mut v, 450);
    assert_eq!(
        (r[0].status, r[0].last_qty, r[0].cum_qty),
        (OrderStatus::Filled, Qty(8), Qty(10))
    );
    assert_eq!(v.open_orders(), 0);
    assert_eq!(v.stats().filled_qty, 10);
}

#[test]
fn book_cancels_shrink_the_queue_ahead() {
    let mut v = resting(OrderSide::Buy, 100, 10);
    // The level at 100 drops to 1: at most 1 is still ahead.
    let thinner = BookTop::from_levels(INST, 2, 0, true, &[lv(100, 1)], &[lv(101, 3)]);
    v.on_book(&thinner, 200);
    v.on_trade(&trade(100, 3, true), 300);
    let r = drain(&mut v, 350);
    assert_eq!(r[0].last_qty, Qty(2));
}

#[test]
fn trading_through_or_reaching_the_price_fills_the_rest() {
    let mut v = resting(OrderSide::Sell, 102, 6);
    // Buyers trade at 103, through our 102.
    v.on_trade(&trade(103, 1, false), 200);
    let r = drain(&mut v, 250);
    assert_eq!(
        (r[0].status, r[0].last_px, r[0].last_qty),
        (OrderStatus::Filled, Px(102), Qty(6))
    );

    let mut v = resting(OrderSide::Buy, 99, 6);
    // An unsynced view is not the market: no fill from it.
    let unsynced = BookTop::from_levels(INST, 2, 0, false, &[lv(98, 5)], &[lv(99, 2)]);
    v.on_book(&unsynced, 190);
    assert!(drain(&mut v, 195).is_empty());
    let crossed = BookTop::from_levels(INST, 2, 0, true, &[lv(98, 5)], &[lv(99, 2)]);
    v.on_book(&crossed, 200);
    let r = drain(&mut v, 250);
    assert_eq!(
        (r[0].status, r[0].last_px, r[0].maker),
        (OrderStatus::Filled, Px(99), true)
    );
}

#[test]
fn marketable_orders_take_the_book_on_arrival() {
    let mut v = venue(4);
    v.on_book(&book(), 0);
    v.submit(&order(1, OrderSide::Buy, 102, 5), 0);
    let r = drain(&mut v, 150);
    let got: Vec<(OrderStatus, i64, i64, bool)> = r
        .iter()
        .map(|r| (r.status, r.last_px.0, r.last_qty.0, r.maker))
        .collect();
    assert_eq!(
        got,
        [
            (OrderStatus::New, 0, 0, false),
            (OrderStatus::PartiallyFilled, 101, 3, false),
            (OrderStatus::Filled, 102, 2, false),
        ]
    );
    // The liquidity taken is gone: a second buy finds only 2 left at 102.
    let mut ioc = order(2, OrderSide::Buy, 102, 5);
    ioc.tif = TimeInForce::Ioc;
    v.submit(&ioc, 200);
    let r = drain(&mut v, 350);
    assert_eq!(r.len(), 3);
    assert_eq!((r[1].last_px, r[1].last_qty), (Px(102), Qty(2)));
    assert_eq!((r[2].status, r[2].cum_qty), (OrderStatus::Expired, Qty(2)));
    assert_eq!(v.open_orders(), 0);
}

#[test]
fn maker_only_fok_and_market_orders() {
    let mut v = venue(4);
    v.on_book(&book(), 0);
    let mut maker = order(1, OrderSide::Sell, 100, 1);
    maker.order_type = OrderType::LimitMaker;
    v.submit(&maker, 0);
    let mut fok = order(2, OrderSide::Sell, 99, 13);
    fok.tif = TimeInForce::Fok;
    v.submit(&fok, 0);
    let mut market = order(3, OrderSide::Sell, 0, 20);
    market.order_type = OrderType::Market;
    v.submit(&market, 0);
    let r = drain(&mut v, 150);
    assert_eq!(
        r[0].status,
        OrderStatus::Rejected(RejectReason::WouldTakeLiquidity)
    );
    // 12 available down to 99: a fill-or-kill for 13 expires untouched.
    assert_eq!((r[1].status, r[1].cum_qty), (OrderStatus::Expired, Qty(0)));
    // The market sell takes all 12 and the rest expires.
    let fills: i64 = r
        .iter()
        .filter(|r| r.client_id.0 == 3)
        .map(|r| r.last_qty.0)
        .sum();
    assert_eq!(fills, 12);
    assert_eq!(r.last().map(|r| r.status), Some(OrderStatus::Expired));
    let mut again = market;
    again.client_id = ClientOrderId(4);
    v.submit(&again, 200);
    let r = drain(&mut v, 350);
    assert_eq!(
        r[0].status,
        OrderStatus::Rejected(RejectReason::NoLiquidity)
    );
}

#[test]
fn replace_cancels_then_places() {
    let mut v = resting(OrderSide::Buy, 100, 10);
    let replace = OrderIntent {
        action: OrderAction::Replace,
        client_id: ClientOrderId(2),
        target: ClientOrderId(1),
        px: Px(99),
        ..order(2, OrderSide::Buy, 99, 4)
    };
    v.submit(&replace, 200);
    let r = drain(&mut v, 350);
    assert_eq!(
        (r[0].client_id, r[0].status),
        (ClientOrderId(1), OrderStatus::Canceled)
    );
    assert_eq!(
        (r[1].client_id, r[1].status),
        (ClientOrderId(2), OrderStatus::New)
    );
    assert_eq!(r[1].leaves_qty, Qty(4));
    assert_eq!(v.open_orders(), 1);
}

#[test]
fn duplicate_ids_and_a_full_table_are_rejected_by_the_venue() {
    let mut v = resting(OrderSide::Buy, 90, 1);
    v.submit(&order(1, OrderSide::Buy, 91, 1), 200);
    let r = drain(&mut v, 350);
    assert_eq!(
        r[0].status,
        OrderStatus::Rejected(RejectReason::DuplicateId)
    );

    let mut v = venue(MAX_SIM_ORDERS + 10);
    for id in 0..MAX_SIM_ORDERS as u64 + 1 {
        v.submit(&order(100 + id, OrderSide::Buy, 50, 1), 0);
    }
    let r = drain(&mut v, 150);
    // The configured limit is capped at the table's size.
    assert_eq!(v.open_orders(), MAX_SIM_ORDERS);
    let last = ClientOrderId(100 + MAX_SIM_ORDERS as u64);
    assert_eq!(
        r.iter().find(|r| r.client_id == last).map(|r| r.status),
        Some(OrderStatus::Rejected(RejectReason::MaxOpenOrders))
    );
}

#[test]
fn requests_meet_the_market_as_of_their_arrival() {
    // Asks at 101 and 102 as of t = 0; at t = 1,000 the 101 ask is gone.
    let later =
        |t0: u64| BookTop::from_levels(INST, 2, t0, true, &[lv(100, 5), lv(99, 7)], &[lv(102, 4)]);
    // A buy at 101 that arrived (t = 600) before the market changed (t = 1,000) meets the old
    // book: it takes the 101 ask.
    let mut v = venue(4);
    v.on_book(&book(), 0);
    v.submit(&order(1, OrderSide::Buy, 101, 3), 500);
    v.on_book(&later(1_000), 1_000);
    let r = drain(&mut v, 2_000);
    assert_eq!(r.last().map(|r| r.status), Some(OrderStatus::Filled));
    // With no request latency, an order decided on the later view and sent ahead of it (the
    // engine's order) meets that view: nothing at 101 any more, so it rests.
    let instant = SimLatency::constant(0, 0);
    let mut v = venue_with(instant, 4);
    v.on_book(&book(), 0);
    v.submit(&order(2, OrderSide::Buy, 101, 3), 1_000);
    v.on_book(&later(1_000), 1_000);
    let r = drain(&mut v, 1_000);
    assert_eq!(
        r.iter().map(|r| r.status).collect::<Vec<_>>(),
        [OrderStatus::New]
    );
    assert_eq!(v.open_orders(), 1);
    // The same request arriving 1 ns before that view meets the old book.
    let mut v = venue_with(instant, 4);
    v.on_book(&book(), 0);
    v.submit(&order(3, OrderSide::Buy, 101, 3), 999);
    v.on_book(&later(1_000), 1_000);
    let r = drain(&mut v, 1_000);
    assert_eq!(r.last().map(|r| r.status), Some(OrderStatus::Filled));
}

#[test]
fn idle_only_when_nothing_rests_travels_or_waits() {
    let mut v = venue(4);
    assert!(v.is_idle());
    v.on_book(&book(), 0);
    v.submit(&order(1, OrderSide::Buy, 100, 10), 0);
    assert!(!v.is_idle(), "in flight");
    let _ = drain(&mut v, 120);
    assert!(!v.is_idle(), "resting, its ack not yet delivered");
    let _ = drain(&mut v, 150);
    assert!(!v.is_idle(), "resting");
    let cancel = OrderIntent::cancel(
        20,
        ClientOrderId(2),
        ClientOrderId(1),
        INST,
        OrderSide::Buy,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
    );
    v.submit(&cancel, 200);
    let _ = drain(&mut v, 349);
    assert!(!v.is_idle(), "the cancel's report is on its way");
    assert_eq!(drain(&mut v, 350)[0].status, OrderStatus::Canceled);
    assert!(v.is_idle());
    assert_eq!((v.clock(), v.taps_market()), (VenueClock::Event, true));
}

mod models;
