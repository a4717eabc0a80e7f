//! Pre-trade risk: every order the strategy stage sends passes [`PreTradeRisk::check`] first.
//!
//! Two kinds of rule, all integer arithmetic on scaled prices and quantities:
//! - the exchange's filters from the [`InstrumentSpec`] (tick and step multiples, min/max
//!   quantity and price, min notional), so nothing is sent that the venue would reject;
//! - the engine's own limits ([`RiskLimits`]): order size and notional, worst-case position
//!   (position plus everything open on that side plus this order), open-order count, order rate
//!   (a token bucket matched to the venue's limit), a price band around the mid, and a kill
//!   switch.
//!
//! Cancels always pass: they only reduce exposure, and must work when everything else is
//! switched off. A replace is checked as the new order it creates, except that it does not add
//! an open order. A token is only taken when every other rule has passed, so a rejected order
//! does not use up the rate.

use pinion_core::{InstrumentSpec, Px, Qty};

use crate::order::{OrderAction, OrderIntent, OrderSide, OrderType};

/// The engine's own limits for one instrument. Quantities in the instrument's units, notional
/// in price unit × quantity unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    /// Largest quantity of one order.
    pub max_order_qty: Qty,
    /// Largest notional (`px × qty`) of one order.
    pub max_notional: i128,
    /// Largest absolute position, counting everything open on the order's side.
    pub max_position: Qty,
    /// Most orders open at once.
    pub max_open_orders: u32,
    /// Sustained order rate, orders per second.
    pub orders_per_sec: u32,
    /// Orders that may be sent at once after a quiet spell (the bucket's size).
    pub order_burst: u32,
    /// Largest distance of a limit price from the mid, in basis points of the mid.
    pub price_band_bps: u32,
}

/// What the risk check needs to know about the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RiskState {
    /// Signed position.
    pub position: Qty,
    /// Orders open (sent and not known closed).
    pub open_orders: u32,
    /// Quantity still open on buy orders.
    pub open_buy_qty: Qty,
    /// Quantity still open on sell orders.
    pub open_sell_qty: Qty,
    /// The current mid, if the book has one.
    pub mid: Option<Px>,
    /// Now, engine monotonic ns (drives the rate limit).
    pub now_ns: u64,
}

/// Why an order was stopped before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RiskReject {
    /// The kill switch is on.
    #[error("kill switch is on")]
    KillSwitch,
    /// Zero or negative price or quantity.
    #[error("price or quantity not positive")]
    NotPositive,
    /// The price is not a multiple of the tick size.
    #[error("price is not on the tick grid")]
    OffTick,
    /// The quantity is not a multiple of the step size.
    #[error("quantity is not on the step grid")]
    OffStep,
    /// Below the exchange's minimum quantity.
    #[error("quantity below the exchange minimum")]
    BelowMinQty,
    /// Above the exchange's maximum quantity.
    #[error("quantity above the exchange maximum")]
    AboveExchangeMaxQty,
    /// Outside the exchange's price range.
    #[error("price outside the exchange's range")]
    ExchangePriceRange,
    /// Below the exchange's minimum notional.
    #[error("notional below the exchange minimum")]
    BelowMinNotional,
    /// Above [`RiskLimits::max_order_qty`].
    #[error("quantity above the order limit")]
    MaxOrderQty,
    /// Above [`RiskLimits::max_notional`].
    #[error("notional above the order limit")]
    MaxNotional,
    /// Would take the worst-case position past [`RiskLimits::max_position`].
    #[error("position limit")]
    MaxPosition,
    /// [`RiskLimits::max_open_orders`] are already open.
    #[error("too many open orders")]
    MaxOpenOrders,
    /// The price is further from the mid than [`RiskLimits::price_band_bps`].
    #[error("price outside the band around the mid")]
    PriceBand,
    /// No mid to check the price band (or a market order's notional) against.
    #[error("no reference price")]
    NoReferencePrice,
    /// The order rate is exhausted.
    #[error("order rate limit")]
    RateLimited,
}

/// A token bucket in integer nano-tokens: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u64,
    capacity: u64,
    level: u64,
    last_ns: Option<u64>,
}

const NANO: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket.
    pub const fn new(per_sec: u32, burst: u32) -> Self {
        let capacity = burst as u64 * NANO;
        Self {
            rate: per_sec as u64,
            capacity,
            level: capacity,
            last_ns: None,
        }
    }

    fn refill(&mut self, now_ns: u64) {
        if let Some(last) = self.last_ns {
            // ns × tokens/s = nano-tokens.
            let added = now_ns.saturating_sub(last).saturating_mul(self.rate);
            self.level = self.level.saturating_add(added).min(self.capacity);
        }
        self.last_ns = Some(self.last_ns.map_or(now_ns, |l| l.max(now_ns)));
    }

    /// Whether a token is available now (without taking it).
    pub fn available(&mut self, now_ns: u64) -> bool {
        self.refill(now_ns);
        self.level >= NANO
    }

    /// Whole tokens available now (without taking any).
    pub fn tokens(&mut self, now_ns: u64) -> u32 {
        self.refill(now_ns);
        u32::try_from(self.level / NANO).unwrap_or(u32::MAX)
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now_ns: u64) -> bool {
        if self.available(now_ns) {
            self.level -= NANO;
            true
        } else {
            false
        }
    }
}

/// The pre-trade check for one instrument.
#[derive(Debug, Clone)]
pub struct PreTradeRisk {
    limits: RiskLimits,
    spec: InstrumentSpec,
    bucket: TokenBucket,
    killed: bool,
    rejected: u64,
}

impl PreTradeRisk {
    /// Checks against `limits` and the filters of `spec`.
    pub fn new(limits: RiskLimits, spec: InstrumentSpec) -> Self {
        Self {
            bucket: TokenBucket::new(limits.orders_per_sec, limits.order_burst),
            limits,
            spec,
            killed: false,
            rejected: 0,
        }
    }

    /// The instrument's filters.
    pub fn spec(&self) -> &InstrumentSpec {
        &self.spec
    }

    /// The limits.
    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    /// Turns the kill switch on or off. While on, only cancels pass.
    pub fn set_kill_switch(&mut self, on: bool) {
        self.killed = on;
    }

    /// Whether the kill switch is on.
    pub fn killed(&self) -> bool {
        self.killed
    }

    /// Orders rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Whether the order rate allows a new order now (without using a token): a strategy asks
    /// before it builds one, so an exhausted rate is a pause, not a stream of rejects.
    pub fn order_rate_available(&mut self, now_ns: u64) -> bool {
        self.bucket.available(now_ns)
    }

    /// How many new orders the order rate allows now (without using any).
    pub fn order_tokens(&mut self, now_ns: u64) -> u32 {
        self.bucket.tokens(now_ns)
    }

    /// Checks `intent`; on success it may be sent (and has used a rate token).
    pub fn check(&mut self, intent: &OrderIntent, state: &RiskState) -> Result<(), RiskReject> {
        let r = self.evaluate(intent, state);
        if r.is_err() {
            self.rejected += 1;
        }
        r
    }

    /// [`PreTradeRisk::check`], except that a new order that only reduces the position passes
    /// the kill switch: one against the position, no larger than the position less what is
    /// already open on its side, so even if everything open fills the position does not flip.
    /// Every other rule holds. What flattening a killed instrument sends.
    pub fn check_reducing(
        &mut self,
        intent: &OrderIntent,
        state: &RiskState,
    ) -> Result<(), RiskReject> {
        let r = if reduces_only(intent, state) {
            self.evaluate_with(intent, state, false)
        } else {
            self.evaluate(intent, state)
        };
        if r.is_err() {
            self.rejected += 1;
        }
        r
    }

    fn evaluate(&mut self, intent: &OrderIntent, state: &RiskState) -> Result<(), RiskReject> {
        self.evaluate_with(intent, state, self.killed)
    }

    fn evaluate_with(
        &mut self,
        intent: &OrderIntent,
        state: &RiskState,
        killed: bool,
    ) -> Result<(), RiskReject> {
        // Cancels and quantity reductions only lower the exposure.
        if matches!(intent.action, OrderAction::Cancel | OrderAction::Amend) {
            return Ok(());
        }
        if killed {
            return Err(RiskReject::KillSwitch);
        }
        let spec = &self.spec;
        let limits = &self.limits;
        let qty = intent.qty;
        if qty.0 <= 0 {
            return Err(RiskReject::NotPositive);
        }
        if qty.0 % spec.step.0 != 0 {
            return Err(RiskReject::OffStep);
        }
        if qty < spec.min_qty {
            return Err(RiskReject::BelowMinQty);
        }
        if spec.max_qty.0 > 0 && qty > spec.max_qty {
            return Err(RiskReject::AboveExchangeMaxQty);
        }
        // The price the notional is valued at: the limit, or the mid for a market order.
        let px = if intent.order_type == OrderType::Market {
            state.mid.ok_or(RiskReject::NoReferencePrice)?
        } else {
            let px = intent.px;
            if px.0 <= 0 {
                return Err(RiskReject::NotPositive);
            }
            if px.0 % spec.tick.0 != 0 {
                return Err(RiskReject::OffTick);
            }
            if px < spec.min_price || (spec.max_price.0 > 0 && px > spec.max_price) {
                return Err(RiskReject::ExchangePriceRange);
            }
            px
        };
        let notional = spec.notional(px, qty);
        if notional < spec.min_notional {
            return Err(RiskReject::BelowMinNotional);
        }
        if qty > limits.max_order_qty {
            return Err(RiskReject::MaxOrderQty);
        }
        if notional > limits.max_notional {
            return Err(RiskReject::MaxNotional);
        }
        let worst = match intent.side {
            OrderSide::Buy => {
                i128::from(state.position.0) + i128::from(state.open_buy_qty.0) + i128::from(qty.0)
            }
            OrderSide::Sell => {
                i128::from(state.open_sell_qty.0) + i128::from(qty.0) - i128::from(state.position.0)
            }
        };
        if worst > i128::from(limits.max_position.0) {
            return Err(RiskReject::MaxPosition);
        }
        if intent.action == OrderAction::New && state.open_orders >= limits.max_open_orders {
            return Err(RiskReject::MaxOpenOrders);
        }
        if intent.order_type != OrderType::Market {
            let mid = state.mid.ok_or(RiskReject::NoReferencePrice)?;
            let distance = i128::from((intent.px.0 - mid.0).abs());
            if distance * 10_000 > i128::from(limits.price_band_bps) * i128::from(mid.0) {
                return Err(RiskReject::PriceBand);
            }
        }
        if !self.bucket.try_take(state.now_ns) {
            return Err(RiskReject::RateLimited);
        }
        Ok(())
    }
}

/// Whether `intent` is a new order that can only bring the position toward zero, whatever
/// fills of the orders open on its side.
fn reduces_only(intent: &OrderIntent, state: &RiskState) -> bool {
    if intent.action != OrderAction::New || intent.qty.0 <= 0 {
        return false;
    }
    let (size, open) = match intent.side {
        OrderSide::Sell if state.position.0 > 0 => (state.position.0, state.open_sell_qty.0),
        OrderSide::Buy if state.position.0 < 0 => (-state.position.0, state.open_buy_qty.0),
        _ => return false,
    };
    i128::from(intent.qty.0) + i128::from(open.max(0)) <= i128::from(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{ClientOrderId, TimeInForce};
    use pinion_core::{InstrumentId, Venue};

    fn spec() -> InstrumentSpec {
        // BTCUSDT: tick 0.01 (price unit = tick), step 0.00001; min notional 5 USDT.
        let mut s = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        s.min_qty = Qty(1);
        s.max_qty = Qty(900_000_000);
        s.min_price = Px(1);
        s.max_price = Px(10_000_000_000);
        s.min_notional = 5 * 10i128.pow(7);
        s
    }

    fn limits() -> RiskLimits {
        RiskLimits {
            max_order_qty: Qty(10_000),           // 0.1 BTC
            max_notional: 10_000 * 10i128.pow(7), // 10,000 USDT
            max_position: Qty(20_000),            // 0.2 BTC
            max_open_orders: 2,
            orders_per_sec: 10,
            order_burst: 3,
            price_band_bps: 50,
        }
    }

    fn state() -> RiskState {
        RiskState {
            mid: Some(Px(6_000_000)), // 60,000.00
            now_ns: 1_000,
            ..RiskState::default()
        }
    }

    fn buy(px: i64, qty: i64) -> OrderIntent {
        OrderIntent::new_limit(
            0,
            ClientOrderId(1),
            InstrumentId(0),
            OrderSide::Buy,
            Px(px),
            Qty(qty),
            OrderType::Limit,
            TimeInForce::Gtc,
            crate::OrderReason::new(0, crate::ReasonCode::Entry),
        )
    }

    fn sell(px: i64, qty: i64) -> OrderIntent {
        OrderIntent {
            side: OrderSide::Sell,
            ..buy(px, qty)
        }
    }

    #[test]
    fn a_sound_order_passes() {
        let mut r = PreTradeRisk::new(limits(), spec());
        assert_eq!(r.check(&buy(5_999_000, 1_000), &state()), Ok(()));
        assert_eq!(r.rejected(), 0);
    }

    #[test]
    fn exchange_filters() {
        let mut s = spec();
        s.tick = Px(5); // a 0.05 tick
        s.step = Qty(10);
        let mut r = PreTradeRisk::new(limits(), s);
        let st = state();
        assert_eq!(
            r.check(&buy(5_999_001, 1_000), &st),
            Err(RiskReject::OffTick)
        );
        assert_eq!(
            r.check(&buy(5_999_000, 1_005), &st),
            Err(RiskReject::OffStep)
        );
        assert_eq!(
            r.check(&buy(5_999_000, 0), &st),
            Err(RiskReject::NotPositive)
        );
        assert_eq!(r.check(&buy(0, 1_000), &st), Err(RiskReject::NotPositive));
        // 0.0008 BTC at 60,000 = 48 USDT passes; 0.00008 BTC = 4.8 USDT is below 5.
        assert_eq!(r.check(&buy(6_000_000, 80), &st), Ok(()));
        assert_eq!(
            r.check(&buy(6_000_000, 0), &st),
            Err(RiskReject::NotPositive)
        );
        let mut r = PreTradeRisk::new(limits(), spec());
        assert_eq!(
            r.check(&buy(6_000_000, 8), &st),
            Err(RiskReject::BelowMinNotional)
        );
        let mut s = spec();
        s.min_qty = Qty(100);
        let mut r = PreTradeRisk::new(limits(), s);
        assert_eq!(
            r.check(&buy(6_000_000, 99), &st),
            Err(RiskReject::BelowMinQty)
        );
        let mut s = spec();
        s.max_qty = Qty(500);
        s.max_price = Px(5_000_000);
        let mut r = PreTradeRisk::new(limits(), s);
        assert_eq!(
            r.check(&buy(4_990_000, 501), &st),
            Err(RiskReject::AboveExchangeMaxQty)
        );
        assert_eq!(
            r.check(&buy(5_000_001, 100), &st),
            Err(RiskReject::ExchangePriceRange)
        );
    }

    #[test]
    fn order_size_and_notional_limits() {
        let mut r = PreTradeRisk::new(limits(), spec());
        let st = state();
        assert_eq!(
            r.check(&buy(5_999_000, 10_001), &st),
            Err(RiskReject::MaxOrderQty)
        );
        let mut l = limits();
        l.max_notional = 100 * 10i128.pow(7); // 100 USDT
        let mut r = PreTradeRisk::new(l, spec());
        // 0.002 BTC at 60,000 = 120 USDT.
        assert_eq!(
            r.check(&buy(6_000_000, 200), &st),
            Err(RiskReject::MaxNotional)
        );
        assert_eq!(r.check(&buy(6_000_000, 100), &st), Ok(()));
    }

    #[test]
    fn worst_case_position_counts_open_orders() {
        let mut r = PreTradeRisk::new(limits(), spec());
        let mut st = state();
        st.position = Qty(15_000);
        assert_eq!(r.check(&buy(6_000_000, 5_000), &st), Ok(()));
        st.open_buy_qty = Qty(1);
        assert_eq!(
            r.check(&buy(6_000_000, 5_000), &st),
            Err(RiskReject::MaxPosition)
        );
        // Selling reduces a long position: allowed up to 0.2 BTC short of flat.
        assert_eq!(r.check(&sell(6_000_000, 10_000), &st), Ok(()));
        st.position = Qty(-15_000);
        st.open_sell_qty = Qty(5_000);
        assert_eq!(
            r.check(&sell(6_000_000, 100), &st),
            Err(RiskReject::MaxPosition)
        );
    }

    #[test]
    fn open_orders_band_and_reference_price() {
        let mut r = PreTradeRisk::new(limits(), spec());
        let mut st = state();
        st.open_orders = 2;
        assert_eq!(
            r.check(&buy(6_000_000, 100), &st),
            Err(RiskReject::MaxOpenOrders)
        );
        // A replace does not add an order.
        let replace = OrderIntent {
            action: OrderAction::Replace,
            ..buy(6_000_000, 100)
        };
        assert_eq!(r.check(&replace, &st), Ok(()));
        let st = state();
        // 50 bps of 60,000 is 300.00: 59,700.00 is on the edge, 59,699.99 outside.
        assert_eq!(r.check(&buy(5_970_000, 100), &st), Ok(()));
        assert_eq!(
            r.check(&buy(5_969_999, 100), &st),
            Err(RiskReject::PriceBand)
        );
        assert_eq!(
            r.check(&sell(6_030_001, 100), &st),
            Err(RiskReject::PriceBand)
        );
        let no_mid = RiskState { mid: None, ..st };
        assert_eq!(
            r.check(&buy(6_000_000, 100), &no_mid),
            Err(RiskReject::NoReferencePrice)
        );
        let market = OrderIntent {
            order_type: OrderType::Market,
            px: Px::ZERO,
            ..buy(0, 100)
        };
        assert_eq!(r.check(&market, &no_mid), Err(RiskReject::NoReferencePrice));
        assert_eq!(r.check(&market, &st), Ok(()));
    }

    #[test]
    fn rate_limit_refills_over_time() {
        let mut r = PreTradeRisk::new(limits(), spec());
        let mut st = state();
        for _ in 0..3 {
            assert_eq!(r.check(&buy(6_000_000, 100), &st), Ok(()));
        }
        assert_eq!(
            r.check(&buy(6_000_000, 100), &st),
            Err(RiskReject::RateLimited)
        );
        // A rejected order for another reason does not take a token.
        st.now_ns += 100_000_000; // 0.1 s at 10/s = one token
        assert_eq!(
            r.check(&buy(6_000_000, 10_001), &st),
            Err(RiskReject::MaxOrderQty)
        );
        assert_eq!(r.check(&buy(6_000_000, 100), &st), Ok(()));
        assert_eq!(
            r.check(&buy(6_000_000, 100), &st),
            Err(RiskReject::RateLimited)
        );
        // A long quiet spell refills only up to the burst.
        st.now_ns += 60 * NANO;
        assert_eq!(r.order_tokens(st.now_ns), 3);
        for _ in 0..3 {
            assert_eq!(r.check(&buy(6_000_000, 100), &st), Ok(()));
        }
        assert_eq!(
            r.check(&buy(6_000_000, 100), &st),
            Err(RiskReject::RateLimited)
        );
        assert_eq!(r.rejected(), 4);
    }

    #[test]
    fn kill_switch_stops_orders_but_not_cancels() {
        let mut r = PreTradeRisk::new(limits(), spec());
        r.set_kill_switch(true);
        assert!(r.killed());
        let st = state();
        assert_eq!(
            r.check(&buy(6_000_000, 100), &st),
            Err(RiskReject::KillSwitch)
        );
        let cancel = OrderIntent::cancel(
            0,
            ClientOrderId(2),
            ClientOrderId(1),
            InstrumentId(0),
            OrderSide::Buy,
            crate::OrderReason::new(0, crate::ReasonCode::Requote),
        );
        assert_eq!(r.check(&cancel, &st), Ok(()));
        r.set_kill_switch(false);
        assert_eq!(r.check(&buy(6_000_000, 100), &st), Ok(()));
    }
}
