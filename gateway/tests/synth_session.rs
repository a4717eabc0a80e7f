//! A whole trading session on the synthetic market: the imbalance strategy trades against the
//! simulated venue, with every market frame parsed from the real Binance JSON.
//!
//! The book stage is not part of this crate, so the test keeps its own reference book
//! (`BTreeMap`s fed from the snapshot and the depth diffs) and fills the strategy's `BookTop`
//! from it. What is checked is how strategy, risk and venue behave together: orders go out
//! and are acknowledged, fills come back and are the only thing that moves the position, the
//! position cap holds throughout, and the venue never has to reject what risk let through.

use std::collections::BTreeMap;

use pinion_core::{
    BookTop, EventFlags, EventKind, InstrumentId, InstrumentSpec, Level, MarketEvent, Px, Qty,
    RecordKind, Side, TOP_LEVELS, TradePrint,
};
use pinion_feed::FrameSource;
use pinion_feed::synth::{SynthConfig, SynthMarket};
use pinion_gateway::{OrderVenue, QueueModel, SimLatency, SimVenue, SimVenueConfig};
use pinion_strategy::{
    ExecReport, ImbalanceParams, ImbalanceStrategy, Intents, OrderIdSource, OrderStatus, RiskGate,
    RiskLimits, Strategy,
};
use serde_json::Value;

const INST: InstrumentId = InstrumentId(0);

#[derive(Default)]
struct RefBook {
    bids: BTreeMap<Px, Qty>,
    asks: BTreeMap<Px, Qty>,
}

impl RefBook {
    fn apply(&mut self, spec: &InstrumentSpec, levels: &Value, side: Side) {
        let book = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        for l in levels.as_array().expect("levels") {
            let px = spec.px(l[0].as_str().unwrap().as_bytes()).unwrap();
            let qty = spec.qty(l[1].as_str().unwrap().as_bytes()).unwrap();
            if qty.is_zero() {
                book.remove(&px);
            } else {
                book.insert(px, qty);
            }
        }
    }

    /// The top of the book at `t` (both its event time and its `t0`).
    fn view(&self, t: u64, last_update_id: u64) -> BookTop {
        let level = |(p, q): (&Px, &Qty)| Level { px: *p, qty: *q };
        let bids: Vec<Level> = self.bids.iter().rev().take(TOP_LEVELS).map(level).collect();
        let asks: Vec<Level> = self.asks.iter().take(TOP_LEVELS).map(level).collect();
        let mut v = BookTop::from_levels(INST, last_update_id, t, true, &bids, &asks);
        v.t_recv = t;
        v
    }
}

/// Everything the session saw, for the assertions.
#[derive(Debug, Default)]
struct Session {
    reports: u64,
    acks: u64,
    fills: u64,
    venue_fill_position: i64,
    max_abs_position: i64,
    rejects: u64,
}

impl Session {
    fn on_report(&mut self, r: &ExecReport) {
        self.reports += 1;
        match r.status {
            OrderStatus::New => self.acks += 1,
            OrderStatus::Rejected(_) | OrderStatus::CancelRejected(_) => self.rejects += 1,
            _ => {}
        }
        if r.is_fill() {
            self.fills += 1;
            self.venue_fill_position += r.side.sign() * r.last_qty.0;
        }
    }
}

/// Passes the strategy's intents through the gate, as the strategy stage does: the venue gets
/// what it admits, the strategy hears of what it refuses.
fn send_all(
    venue: &mut SimVenue,
    gate: &mut RiskGate,
    strategy: &mut ImbalanceStrategy,
    out: &mut Intents,
    now: u64,
) {
    let intents: Vec<_> = out.drain().collect();
    for intent in intents {
        match gate.admit(&intent, now) {
            Ok(()) => venue.submit(&intent, now),
            Err(_) => strategy.on_exec(&RiskGate::refusal(&intent, now), out),
        }
    }
}

#[test]
fn imbalance_strategy_trades_the_synthetic_market_through_the_sim_venue() {
    let cfg = SynthConfig {
        seed: 42,
        messages: 40_000,
        ..SynthConfig::default()
    };
    let spec = cfg.instrument_spec().unwrap();
    let mut market = SynthMarket::new(cfg).unwrap();

    let order_qty = Qty(100); // 0.001 BTC
    let max_position = Qty(300);
    let params = ImbalanceParams {
        levels: 5,
        enter_permille: 300,
        order_qty,
        max_position,
        stale_after_ns: 300_000_000,
    };
    let limits = RiskLimits {
        max_order_qty: Qty(1_000),
        max_notional: 1_000 * 10i128.pow(7), // 1,000 USDT
        max_position,
        max_open_orders: 2,
        orders_per_sec: 50,
        order_burst: 10,
        price_band_bps: 20,
    };
    let mut strategy = ImbalanceStrategy::new(INST, params, OrderIdSource::new(1));
    let mut gate = RiskGate::new(INST, limits, spec.clone());
    let mut venue = SimVenue::new(
        INST,
        &spec,
        SimVenueConfig {
            latency: SimLatency::constant(300_000, 300_000),
            queue: QueueModel::Conservative,
            seed: 1,
            max_open_orders: 2,
            max_order_qty: Qty(1_000),
        },
    );

    let mut book = RefBook::default();
    let mut session = Session::default();
    let mut out = Intents::new();
    while let Some(r) = market.next_record().unwrap() {
        let now = r.t_recv;
        let v: Value = match r.kind {
            RecordKind::Connect => continue,
            _ => serde_json::from_slice(r.payload).unwrap(),
        };
        // The market event first reaches the venue (fills), then reports reach the strategy,
        // then the strategy sees the market.
        if r.kind == RecordKind::RestSnapshot {
            book.apply(&spec, &v["bids"], Side::Bid);
            book.apply(&spec, &v["asks"], Side::Ask);
            continue;
        }
        let data = &v["data"];
        let stream = v["stream"].as_str().unwrap();
        if stream.ends_with("@depth@100ms") {
            book.apply(&spec, &data["b"], Side::Bid);
            book.apply(&spec, &data["a"], Side::Ask);
            let view = book.view(now, data["u"].as_u64().unwrap());
            venue.on_book(&view, now);
            venue.poll(now, |rep| {
                session.on_report(&rep);
                gate.on_exec(&rep);
                strategy.on_exec(&rep, &mut out);
            });
            gate.set_mid(view.mid());
            out.set_new_orders_allowed(gate.order_rate_available(now));
            strategy.on_book(&view, &mut out);
        } else if stream.ends_with("@trade") {
            let mut trade = MarketEvent::EMPTY;
            trade.kind = EventKind::Trade;
            trade.instrument = INST;
            trade.t0 = now;
            trade.t_recv = now;
            if data["m"].as_bool().unwrap() {
                trade.flags = EventFlags::BUYER_MAKER;
            }
            let px = spec.px(data["p"].as_str().unwrap().as_bytes()).unwrap();
            let qty = spec.qty(data["q"].as_str().unwrap().as_bytes()).unwrap();
            trade.push_level(Side::Bid, Level { px, qty }).unwrap();
            let trade = TradePrint::from_event(&trade).unwrap();
            venue.on_trade(&trade, now);
            venue.poll(now, |rep| {
                session.on_report(&rep);
                gate.on_exec(&rep);
                strategy.on_exec(&rep, &mut out);
            });
            out.set_new_orders_allowed(gate.order_rate_available(now));
            strategy.on_trade(&trade, &mut out);
        } else {
            venue.poll(now, |rep| {
                session.on_report(&rep);
                gate.on_exec(&rep);
                strategy.on_exec(&rep, &mut out);
            });
        }
        send_all(&mut venue, &mut gate, &mut strategy, &mut out, now);
        let pos = strategy.position().qty().0;
        session.max_abs_position = session.max_abs_position.max(pos.abs());
    }

    let stats = strategy.stats();
    let vstats = venue.stats();
    eprintln!("{session:?}\n{stats:?}\n{vstats:?}");
    assert!(stats.orders >= 20, "the strategy should trade: {stats:?}");
    assert!(
        stats.cancels > 0,
        "flips or staleness should cancel: {stats:?}"
    );
    assert!(session.fills > 0, "some orders should fill: {session:?}");
    assert!(session.acks >= stats.orders.saturating_sub(2));
    // Fills are the only thing that moves the position, and both sides agree on them.
    assert_eq!(strategy.position().qty().0, session.venue_fill_position);
    assert_eq!(strategy.position().fills(), session.fills);
    assert!(session.max_abs_position <= max_position.0, "{session:?}");
    // Whatever risk lets through the venue accepts (cancels may race a fill, nothing else).
    assert_eq!(vstats.reports_dropped, 0);
    let cancel_races = session.rejects;
    assert!(cancel_races <= stats.cancels, "{session:?} {vstats:?}");
    assert_eq!(stats.venue_rejects, 0, "{stats:?}");
    // The gate's own account of the position agrees with the strategy's.
    assert_eq!(gate.position().qty(), strategy.position().qty());
}
