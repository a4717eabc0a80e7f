//! Pairs: one instance trading two instruments together on the price ratio between them (a
//! spot market and its perpetual, the same asset on two venues, two related assets).
//!
//! **Signal.** The ratio of the two legs' mids, `A / B`, is sampled once per `sample_ns` of
//! event time while both legs have a synced top no older than `max_age_ns`; its mean is an
//! exponential average over `mean_samples` samples (integer, so a replay decides the same on any
//! host). After `warmup_samples` samples, a ratio `entry_ppm` above its mean (A rich against B)
//! opens the pair short, A sold and B bought; `entry_ppm` below opens it long. The pair closes
//! when the ratio comes back within `exit_ppm` of the mean.
//!
//! **Orders.** Opening sets each leg's target position: `notional` (each leg's own, in its
//! quote asset's money units) divided by the leg's mid, down to its lot step, within its
//! `max_position`. Each leg is then driven to its target on its own, one order at a time:
//! an immediate-or-cancel limit at the touch for the difference, sent again on the leg's next
//! top while the target is not reached (not at once when its rest expires: the touch it was
//! priced at is gone, and the same price would only expire again). So a leg that filled while
//! the other did not (the pair "legged") is hedged by the other leg's next order, not left
//! open: the targets, not the orders, are the state. A refused order makes its leg wait
//! `cooldown_ns` before it tries again, so a full budget does not turn every update into a
//! refusal. Each leg's orders spend its own instrument's order rate
//! ([`Intents::new_orders_allowed_on`]), so one leg's used-up rate holds back neither the
//! other's order nor, past it, the hedge.
//!
//! **Placement in the stage.** The strategy stage builds one `Pairs` on each leg's instrument
//! (each with that leg's units and client ids) and then [`Pairs::join`]s the second into the
//! first: the first decides for both, seeing both legs' books, and writes intents for either
//! instrument; the second is kept only for the stage's bookkeeping and decides nothing.

use pinion_core::{BookTop, InstrumentId, Px, Qty, TradePrint};

use crate::kind::StrategyStats;
use crate::order::{ExecReport, OrderIdSource, OrderSide, OrderType, TimeInForce};
use crate::reason::entry_or_exit;
use crate::slots::{OrderSlots, OrderState, Quote};
use crate::{Intents, Strategy};

/// The fixed-point scale of the ratio of the legs' mids.
const RATIO_SCALE: i128 = 1_000_000_000_000_000_000;

/// Settings of one leg of a pairs strategy, in that leg's units. Both legs carry the same
/// signal settings; the first leg's decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairsParams {
    /// How far the ratio must be from its mean to open the pair, ppm of the mean (> 0).
    pub entry_ppm: i64,
    /// How close to its mean the ratio must come back to close the pair, ppm (0 ≤ it <
    /// `entry_ppm`).
    pub exit_ppm: i64,
    /// The ratio is sampled once per this much event time, ns (> 0).
    pub sample_ns: u64,
    /// Length of the ratio's exponential mean, samples (≥ 1).
    pub mean_samples: u32,
    /// Samples taken before the pair may open.
    pub warmup_samples: u32,
    /// Each leg's size, in its quote asset: money units of `10^-(price_decimals +
    /// qty_decimals)`.
    pub notional: i128,
    /// The leg's lot step.
    pub step: Qty,
    /// The leg's largest position either way.
    pub max_position: Qty,
    /// How long a leg waits after a refused order, ns of event time.
    pub cooldown_ns: u64,
    /// A leg's top older than this (event time) is too old to trade on, ns.
    pub max_age_ns: u64,
}

/// Which way the pair is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairState {
    /// No target: both legs driven to zero.
    Flat,
    /// Long the ratio: A bought, B sold (the ratio was low).
    Long,
    /// Short the ratio: A sold, B bought (the ratio was high).
    Short,
}

/// One leg: its orders (one at a time), its last top and its target.
#[derive(Debug, Clone)]
struct Leg {
    orders: OrderSlots,
    params: PairsParams,
    bid: Option<Px>,
    ask: Option<Px>,
    /// Event time of the last synced top (0: none yet).
    at: u64,
    target: i64,
    /// No new order before this event time (after a refusal).
    retry_at: u64,
    /// The leg's last order ended short of its quantity (its IOC's rest expired): the touch
    /// it was priced at is gone at the venue, so nothing is sent before the leg's next top.
    missed: bool,
}

impl Leg {
    fn new(instrument: InstrumentId, params: PairsParams, ids: OrderIdSource) -> Self {
        Self {
            orders: OrderSlots::new(instrument, 1, ids, params.max_position),
            params,
            bid: None,
            ask: None,
            at: 0,
            target: 0,
            retry_at: 0,
            missed: false,
        }
    }

    fn instrument(&self) -> InstrumentId {
        self.orders.instrument()
    }

    /// The mid of its top, if it has one no older than `max_age_ns` at `now`.
    fn fresh_mid(&self, now: u64) -> Option<i64> {
        if self.at == 0 || now.saturating_sub(self.at) > self.params.max_age_ns {
            return None;
        }
        let (b, a) = (self.bid?.0, self.ask?.0);
        Some(((i128::from(b) + i128::from(a)) / 2) as i64)
    }

    /// The size `notional` buys at `mid`, in quantity units (not yet on the lot step).
    fn raw_size(&self, mid: i64) -> i128 {
        if mid <= 0 {
            return 0;
        }
        self.params.notional / i128::from(mid)
    }

    /// `q` down to the lot step.
    fn on_step(&self, q: i128) -> i64 {
        let step = i128::from(self.params.step.0.max(1));
        i64::try_from((q / step) * step).unwrap_or(i64::MAX)
    }

    /// Sends the leg's next order towards its target, if one is due and allowed at `now`.
    fn drive(&mut self, t0: u64, now: u64, out: &mut Intents) {
        let diff = self.target - self.orders.position().qty().0;
        if diff == 0 || !self.orders.is_free(0) || now < self.retry_at || self.missed {
            return;
        }
        if self.fresh_mid(now).is_none() {
            return;
        }
        let (side, touch) = if diff > 0 {
            (OrderSide::Buy, self.ask)
        } else {
            (OrderSide::Sell, self.bid)
        };
        let Some(px) = touch else {
            return;
        };
        let quote = Quote {
            side,
            px,
            qty: Qty(diff.abs()),
            order_type: OrderType::Limit,
            tif: TimeInForce::Ioc,
            code: entry_or_exit(self.orders.position().qty(), side),
        };
        self.orders.place(0, quote, t0, now, out);
    }
}

/// The pairs strategy. See the module docs.
#[derive(Debug, Clone)]
pub struct Pairs {
    /// The first leg: this instance's own instrument.
    first: Leg,
    /// The second, once joined.
    second: Option<Leg>,
    /// The ratio's exponential mean, `RATIO_SCALE` fixed point; `None` before the first sample.
    mean: Option<i128>,
    /// Samples taken.
    samples: u32,
    /// The sample bucket (`t_recv / sample_ns`) last sampled in.
    bucket: Option<u64>,
    state: PairState,
    /// The latest event time seen on either leg.
    now: u64,
    /// Times the pair opened.
    opened: u64,
}

impl Pairs {
    /// A pairs strategy whose first leg is `instrument` (`params` in its units), numbering its
    /// orders from `ids`. It trades nothing until a second leg is [`Pairs::join`]ed.
    pub fn new(instrument: InstrumentId, params: PairsParams, ids: OrderIdSource) -> Self {
        Self {
            first: Leg::new(instrument, params, ids),
            second: None,
            mean: None,
            samples: 0,
            bucket: None,
            state: PairState::Flat,
            now: 0,
            opened: 0,
        }
    }

    /// Takes `second`'s own leg (its instrument, units and client ids) as this pair's second
    /// leg. `second` keeps its copy and must decide nothing from then on.
    pub fn join(&mut self, second: &Pairs) {
        self.second = Some(second.first.clone());
    }

    fn legs(&self) -> impl Iterator<Item = &Leg> {
        std::iter::once(&self.first).chain(self.second.as_ref())
    }

    fn legs_mut(&mut self) -> impl Iterator<Item = &mut Leg> {
        std::iter::once(&mut self.first).chain(self.second.as_mut())
    }

    fn leg_mut(&mut self, i: usize) -> Option<&mut Leg> {
        match i {
            0 => Some(&mut self.first),
            1 => self.second.as_mut(),
            _ => None,
        }
    }

    /// The instrument of leg `i` (0 or 1), once it has one.
    pub fn leg(&self, i: usize) -> Option<InstrumentId> {
        self.legs().nth(i).map(Leg::instrument)
    }

    /// Which way the pair is open.
    pub fn state(&self) -> PairState {
        self.state
    }

    /// The target position of leg `i`, in its units.
    pub fn target(&self, i: usize) -> Option<i64> {
        self.legs().nth(i).map(|l| l.target)
    }

    /// Times the pair opened.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// The counters of the orders on `instrument` (a leg's); zero for any other.
    pub fn stats_on(&self, instrument: InstrumentId) -> StrategyStats {
        self.legs()
            .find(|l| l.instrument() == instrument)
            .map_or_else(StrategyStats::default, |l| l.orders.stats())
    }

    /// Both legs' counters added up.
    pub fn stats(&self) -> StrategyStats {
        self.legs().fold(StrategyStats::default(), |mut a, l| {
            a += l.orders.stats();
            a
        })
    }

    /// The first leg's orders.
    pub fn orders(&self) -> &OrderSlots {
        &self.first.orders
    }

    fn leg_of(&self, instrument: InstrumentId) -> Option<usize> {
        self.legs().position(|l| l.instrument() == instrument)
    }

    /// The ratio of the legs' fresh mids at `now`, `RATIO_SCALE` fixed point.
    fn ratio(&self, now: u64) -> Option<i128> {
        let (a, Some(b)) = (&self.first, &self.second) else {
            return None;
        };
        let (ma, mb) = (a.fresh_mid(now)?, b.fresh_mid(now)?);
        if ma <= 0 || mb <= 0 {
            return None;
        }
        i128::from(ma)
            .checked_mul(RATIO_SCALE)
            .map(|x| x / i128::from(mb))
    }

    /// Samples the ratio (once per bucket), then opens or closes the pair on its distance from
    /// the mean.
    fn decide(&mut self, now: u64) {
        let p = self.first.params;
        let Some(r) = self.ratio(now) else {
            return;
        };
        let bucket = now / p.sample_ns.max(1);
        if self.bucket != Some(bucket) {
            self.bucket = Some(bucket);
            self.samples = self.samples.saturating_add(1);
            self.mean = Some(match self.mean {
                None => r,
                Some(m) => m + (r - m) / i128::from(p.mean_samples.max(1)),
            });
        }
        let Some(mean) = self.mean.filter(|&m| m > 0) else {
            return;
        };
        if self.samples < p.warmup_samples.max(1) {
            return;
        }
        let dev = (r - mean) * 1_000_000 / mean;
        let next = match self.state {
            PairState::Flat if dev >= i128::from(p.entry_ppm) => PairState::Short,
            PairState::Flat if dev <= -i128::from(p.entry_ppm) => PairState::Long,
            PairState::Short if dev <= i128::from(p.exit_ppm) => PairState::Flat,
            PairState::Long if dev >= -i128::from(p.exit_ppm) => PairState::Flat,
            s => s,
        };
        if next == self.state {
            return;
        }
        let sign = match next {
            PairState::Flat => 0,
            PairState::Long => 1,
            PairState::Short => -1,
        };
        if sign != 0 {
            let Some((qa, qb)) = self.sizes(now) else {
                return;
            };
            if qa <= 0 || qb <= 0 {
                // A leg's notional buys less than a lot: the pair cannot open.
                return;
            }
            self.first.target = sign * qa;
            if let Some(b) = self.second.as_mut() {
                b.target = -sign * qb;
            }
            self.opened += 1;
        } else {
            for l in self.legs_mut() {
                l.target = 0;
            }
        }
        self.state = next;
    }

    /// Each leg's size for a pair opened at `now`: `notional` each at the legs' mids, both
    /// scaled down together when one would pass its `max_position`, so the legs stay equal in
    /// value; then each down to its lot step.
    fn sizes(&self, now: u64) -> Option<(i64, i64)> {
        let (a, b) = (&self.first, self.second.as_ref()?);
        let (mut qa, mut qb) = (a.raw_size(a.fresh_mid(now)?), b.raw_size(b.fresh_mid(now)?));
        let (ca, cb) = (
            i128::from(a.params.max_position.0.max(0)),
            i128::from(b.params.max_position.0.max(0)),
        );
        if qa <= 0 || qb <= 0 {
            return None;
        }
        if qa > ca || qb > cb {
            // The tighter cap, as a share of its leg's size, scales both.
            if ca * qb <= cb * qa {
                qb = qb * ca / qa;
                qa = ca;
            } else {
                qa = qa * cb / qb;
                qb = cb;
            }
        }
        Some((a.on_step(qa), b.on_step(qb)))
    }

    /// Sends each leg's next order, if due.
    fn drive(&mut self, t0: u64, out: &mut Intents) {
        let now = self.now;
        if self.second.is_none() {
            return;
        }
        for l in self.legs_mut() {
            l.drive(t0, now, out);
        }
    }
}

impl Strategy for Pairs {
    fn on_book(&mut self, book: &BookTop, out: &mut Intents) {
        let Some(i) = self.leg_of(book.instrument) else {
            return;
        };
        self.now = self.now.max(book.t_recv);
        if let Some(l) = self.leg_mut(i) {
            l.orders.count_book();
            if book.synced {
                l.bid = book.best_bid().map(|x| x.px);
                l.ask = book.best_ask().map(|x| x.px);
                l.at = book.t_recv;
                l.missed = false;
            } else {
                // Nothing is traded on a book out of sync.
                l.at = 0;
            }
        }
        self.decide(self.now);
        self.drive(book.t0, out);
    }

    fn on_trade(&mut self, _trade: &TradePrint, _out: &mut Intents) {}

    fn on_exec(&mut self, rep: &ExecReport, out: &mut Intents) {
        let Some(i) = self.leg_of(rep.instrument) else {
            return;
        };
        let now = self.now;
        if let Some(l) = self.leg_mut(i)
            && let Some(ev) = l.orders.on_exec(rep)
        {
            match ev.state {
                OrderState::Rejected => l.retry_at = now.saturating_add(l.params.cooldown_ns),
                // The IOC's rest expired: sent again at the same touch it would only expire
                // again, so the leg waits for its next top.
                OrderState::Cancelled => l.missed = true,
                _ => {}
            }
        }
        self.drive(rep.t0, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderStatus, RejectReason, VenueOrderId};
    use pinion_core::Level;

    const A: InstrumentId = InstrumentId(0);
    const B: InstrumentId = InstrumentId(1);
    const MS: u64 = 1_000_000;

    fn params() -> PairsParams {
        PairsParams {
            entry_ppm: 1_000,
            exit_ppm: 200,
            sample_ns: 100 * MS,
            mean_samples: 10,
            warmup_samples: 5,
            // 1 000 quote units at 2 price decimals and 3 qty decimals.
            notional: 1_000 * 100_000,
            step: Qty(1),
            max_position: Qty(1_000_000),
            cooldown_ns: 500 * MS,
            max_age_ns: 1_000 * MS,
        }
    }

    fn pair() -> Pairs {
        let mut p = Pairs::new(A, params(), OrderIdSource::new(1 << 40));
        let b = Pairs::new(B, params(), OrderIdSource::new(2 << 40));
        p.join(&b);
        p
    }

    /// A synced top of `instrument` at event time `t_ms`, bid and ask around `mid` (cents).
    fn book(instrument: InstrumentId, mid: i64, t_ms: u64) -> BookTop {
        let level = |px: i64| Level {
            px: Px(px),
            qty: Qty(1_000),
        };
        let mut b = BookTop::from_levels(
            instrument,
            t_ms * MS,
            t_ms * MS,
            true,
            &[level(mid - 1)],
            &[level(mid + 1)],
        );
        b.t_recv = t_ms * MS;
        b
    }

    /// Feeds both legs one update each at `t_ms` and returns the intents written.
    fn step(p: &mut Pairs, a: i64, b: i64, t_ms: u64) -> Vec<crate::OrderIntent> {
        let mut out = Intents::new();
        p.on_book(&book(A, a, t_ms), &mut out);
        p.on_book(&book(B, b, t_ms), &mut out);
        out.as_slice().to_vec()
    }

    fn fill(intent: &crate::OrderIntent) -> ExecReport {
        ExecReport {
            client_id: intent.client_id,
            venue_id: VenueOrderId(1),
            instrument: intent.instrument,
            side: intent.side,
            status: OrderStatus::Filled,
            last_px: intent.px,
            last_qty: intent.qty,
            cum_qty: intent.qty,
            leaves_qty: Qty::ZERO,
            maker: false,
            t0: 0,
            venue_ts: 0,
        }
    }

    fn expired(intent: &crate::OrderIntent) -> ExecReport {
        ExecReport {
            status: OrderStatus::Expired,
            last_px: Px::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: Qty::ZERO,
            ..fill(intent)
        }
    }

    /// Warm-up with the ratio steady at 2 (A 200.00, B 100.00).
    fn warmed() -> Pairs {
        let mut p = pair();
        for k in 0..6 {
            assert!(step(&mut p, 20_000, 10_000, k * 100).is_empty());
        }
        p
    }

    #[test]
    fn a_ratio_far_above_its_mean_sells_the_first_leg_and_buys_the_second() {
        let mut p = warmed();
        // A up 0.5 %: the ratio is 0.5 % over its mean.
        let sent = step(&mut p, 20_100, 10_000, 700);
        assert_eq!(p.state(), PairState::Short);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let (a, b) = (&sent[0], &sent[1]);
        assert_eq!((a.instrument, a.side), (A, OrderSide::Sell));
        assert_eq!((b.instrument, b.side), (B, OrderSide::Buy));
        assert_eq!(a.tif, TimeInForce::Ioc);
        // At the touch: A's bid, B's ask.
        assert_eq!((a.px, b.px), (Px(20_099), Px(10_001)));
        // 1 000 quote each: 1000 / 201.00 = 4.975 A, 1000 / 100.00 = 10.000 B.
        assert_eq!((a.qty, b.qty), (Qty(4_975), Qty(10_000)));
        assert_eq!(p.target(0), Some(-4_975));
        assert_eq!(p.target(1), Some(10_000));
    }

    #[test]
    fn a_leg_that_did_not_fill_is_sent_again_until_the_pair_is_hedged() {
        let mut p = warmed();
        let sent = step(&mut p, 20_100, 10_000, 700);
        let mut out = Intents::new();
        p.on_exec(&fill(&sent[0]), &mut out);
        assert!(out.is_empty(), "A is at its target");
        // B's IOC expired: not sent again at the touch that was gone, but on B's next top.
        p.on_exec(&expired(&sent[1]), &mut out);
        assert!(out.is_empty(), "sent again before a new top: {out:?}");
        p.on_book(&book(A, 20_100, 750), &mut out);
        assert!(out.is_empty(), "A's top is not B's: {out:?}");
        p.on_book(&book(B, 10_000, 750), &mut out);
        let again = out.as_slice().to_vec();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].instrument, again[0].side), (B, OrderSide::Buy));
        assert_eq!(again[0].qty, Qty(10_000));
        let mut out = Intents::new();
        p.on_exec(&fill(&again[0]), &mut out);
        assert!(out.is_empty());
        assert!(
            step(&mut p, 20_100, 10_000, 800).is_empty(),
            "both at target"
        );
    }

    #[test]
    fn each_leg_is_sent_on_its_own_order_rate() {
        let mut p = warmed();
        // A has one token, B none: A goes, B waits (not sent against A's budget).
        let mut out = Intents::new();
        out.set_new_order_budget(1);
        out.set_leg_budget(B, 0);
        p.on_book(&book(A, 20_100, 700), &mut out);
        assert_eq!(p.state(), PairState::Short);
        let sent = out.as_slice().to_vec();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].instrument, A);
        assert_eq!(p.stats_on(B).throttled, 1);
        // A has none left, B one: B goes on its own rate.
        let mut out = Intents::new();
        out.set_new_order_budget(0);
        out.set_leg_budget(B, 1);
        p.on_book(&book(B, 10_000, 710), &mut out);
        let sent = out.as_slice().to_vec();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!((sent[0].instrument, sent[0].side), (B, OrderSide::Buy));
    }

    #[test]
    fn the_pair_closes_when_the_ratio_comes_back() {
        let mut p = warmed();
        let sent = step(&mut p, 20_100, 10_000, 700);
        let mut out = Intents::new();
        for i in &sent {
            p.on_exec(&fill(i), &mut out);
        }
        // The mean moves towards the new ratio; A back down brings the ratio within 0.02 %.
        let sent = step(&mut p, 20_010, 10_000, 800);
        assert_eq!(p.state(), PairState::Flat, "{sent:?}");
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].side, sent[0].qty), (OrderSide::Buy, Qty(4_975)));
        assert_eq!((sent[1].side, sent[1].qty), (OrderSide::Sell, Qty(10_000)));
        assert!(
            sent.iter()
                .all(|i| i.reason.code == crate::ReasonCode::Exit)
        );
    }

    #[test]
    fn a_refused_leg_waits_its_cooldown() {
        let mut p = warmed();
        let sent = step(&mut p, 20_100, 10_000, 700);
        let mut out = Intents::new();
        p.on_exec(&fill(&sent[0]), &mut out);
        let refused = ExecReport {
            status: OrderStatus::Rejected(RejectReason::Risk),
            ..expired(&sent[1])
        };
        p.on_exec(&refused, &mut out);
        assert!(out.is_empty(), "no retry at once");
        assert!(
            step(&mut p, 20_100, 10_000, 900).is_empty(),
            "still cooling"
        );
        let again = step(&mut p, 20_100, 10_000, 1_300);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].instrument, B);
        assert_eq!(p.stats_on(B).risk_rejects, 1);
        assert_eq!(p.stats_on(A).fills, 1);
    }

    #[test]
    fn nothing_is_traded_on_a_stale_or_unsynced_leg_or_without_a_second_leg() {
        let mut lone = Pairs::new(A, params(), OrderIdSource::new(1));
        for k in 0..10 {
            let mut out = Intents::new();
            lone.on_book(&book(A, 20_000 + k as i64 * 100, k * 100), &mut out);
            assert!(out.is_empty());
        }
        let mut p = warmed();
        // B's last top is 2 s old: no ratio, no decision.
        let mut out = Intents::new();
        p.on_book(&book(A, 20_100, 2_600), &mut out);
        assert!(out.is_empty());
        assert_eq!(p.state(), PairState::Flat);
        // B out of sync.
        let mut b = book(B, 10_000, 2_600);
        b.synced = false;
        p.on_book(&b, &mut out);
        assert!(out.is_empty());
        assert_eq!(p.state(), PairState::Flat);
    }

    #[test]
    fn a_leg_at_its_position_limit_scales_both_legs_down_together() {
        let mut capped = params();
        // A's limit is 2.000, half of the 4.975 its notional would buy.
        capped.max_position = Qty(2_000);
        let mut p = Pairs::new(A, capped, OrderIdSource::new(1 << 40));
        p.join(&Pairs::new(B, params(), OrderIdSource::new(2 << 40)));
        for k in 0..6 {
            step(&mut p, 20_000, 10_000, k * 100);
        }
        let sent = step(&mut p, 20_100, 10_000, 700);
        assert_eq!(sent.len(), 2);
        // B scaled by 2.000 / 4.975: 10.000 × 0.4020 = 4.020, the same value as 2.000 A.
        assert_eq!((sent[0].qty, sent[1].qty), (Qty(2_000), Qty(4_020)));
    }

    #[test]
    fn a_notional_smaller_than_a_lot_never_opens() {
        let mut small = params();
        small.notional = 10;
        let mut p = Pairs::new(A, small, OrderIdSource::new(1 << 40));
        p.join(&Pairs::new(B, small, OrderIdSource::new(2 << 40)));
        for k in 0..6 {
            step(&mut p, 20_000, 10_000, k * 100);
        }
        assert!(step(&mut p, 20_100, 10_000, 700).is_empty());
        assert_eq!(p.state(), PairState::Flat);
        assert_eq!(p.opened(), 0);
    }
}
