//! [`Protector`]: the position's protective exits, held by the engine and triggered from book
//! prices, so they work on every venue and whatever the strategy does.
//!
//! Per instrument, on the position the fills built (its average entry price from
//! [`Position::avg_price`](crate::Position::avg_price)):
//! - **stop-loss**: the price the position would close at (the best bid for a long, the best ask
//!   for a short) has gone against the entry by `stop_loss_ppm`;
//! - **take-profit**: it has gone in favour by `take_profit_ppm`;
//! - **trailing stop**: it has fallen back `trailing_ppm` from the best it reached since the
//!   position opened (the trail starts at the entry, so before any gain it is a stop at
//!   `trailing_ppm` below the entry).
//!
//! The stop-loss and the take-profit are a one-cancels-other pair: whichever fires first closes
//! the position, and with it the other is gone. A trigger asks the stage to cancel the
//! instrument's open orders and close the position with an immediate-or-cancel limit order
//! `slippage_ppm` through the touch; until that order's last report nothing fires again, and
//! what it left open is closed on the next view. For `cooldown_ns` of event time after a trigger
//! the strategy is not asked for decisions, so it does not re-open at once what was just closed.
//!
//! All integer arithmetic on scaled prices; nothing allocates.

use pinion_core::{Px, Qty};

use crate::order::{ClientOrderId, OrderSide};
use crate::reason::ReasonCode;

const PPM: i128 = 1_000_000;

/// The exits' settings; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtectParams {
    /// Stop-loss distance from the entry, ppm of the entry.
    pub stop_loss_ppm: Option<u32>,
    /// Take-profit distance from the entry, ppm of the entry.
    pub take_profit_ppm: Option<u32>,
    /// Trailing-stop distance from the best price since the position opened, ppm of that price.
    pub trailing_ppm: Option<u32>,
    /// How far through the touch the closing order is priced, ppm of the touch.
    pub slippage_ppm: u32,
    /// Event time after a trigger during which the strategy is not asked, ns.
    pub cooldown_ns: u64,
}

impl ProtectParams {
    /// Whether any exit is on.
    pub const fn any(&self) -> bool {
        self.stop_loss_ppm.is_some()
            || self.take_profit_ppm.is_some()
            || self.trailing_ppm.is_some()
    }
}

/// Which exit fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitKind {
    /// The stop-loss.
    StopLoss,
    /// The take-profit.
    TakeProfit,
    /// The trailing stop.
    Trailing,
}

impl ExitKind {
    /// The reason its closing order (and the cancels before it) carries.
    pub const fn reason(self) -> ReasonCode {
        match self {
            Self::StopLoss => ReasonCode::Stop,
            Self::TakeProfit => ReasonCode::TakeProfit,
            Self::Trailing => ReasonCode::Trailing,
        }
    }
}

/// What the stage must do: cancel the instrument's open orders and send this closing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Which exit fired.
    pub kind: ExitKind,
    /// The closing order's side (against the position).
    pub side: OrderSide,
    /// Its limit price: the touch, `slippage_ppm` through it, on the tick grid.
    pub px: Px,
    /// Its quantity: the whole position.
    pub qty: Qty,
}

/// What the exits did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtectStats {
    /// Stop-losses fired.
    pub stop_losses: u64,
    /// Take-profits fired.
    pub take_profits: u64,
    /// Trailing stops fired.
    pub trailing_stops: u64,
    /// Closing orders sent (a partly filled close is followed by another).
    pub closing_orders: u64,
    /// Closing orders the risk gate refused.
    pub closing_refused: u64,
}

/// One instrument's exits. See the module docs.
#[derive(Debug, Clone)]
pub struct Protector {
    params: ProtectParams,
    tick: Px,
    /// The sign of the position the trail belongs to (0: flat).
    side_of: i8,
    /// The best closing price since the position opened.
    best: Option<Px>,
    /// The closing order in flight.
    closing: Option<ClientOrderId>,
    /// The last trigger's kind, while its close is under way.
    firing: Option<ExitKind>,
    /// No strategy decisions before this event time.
    quiet_until: u64,
    stats: ProtectStats,
}

impl Protector {
    /// Exits under `params` for an instrument of price tick `tick`.
    pub fn new(params: ProtectParams, tick: Px) -> Self {
        Self {
            params,
            tick,
            side_of: 0,
            best: None,
            closing: None,
            firing: None,
            quiet_until: 0,
            stats: ProtectStats::default(),
        }
    }

    /// The settings.
    pub fn params(&self) -> &ProtectParams {
        &self.params
    }

    /// Counters.
    pub fn stats(&self) -> ProtectStats {
        self.stats
    }

    /// Whether the strategy may decide at event time `now` (not within a cooldown, nothing
    /// closing).
    #[inline]
    pub fn strategy_may_decide(&self, now: u64) -> bool {
        self.closing.is_none() && now >= self.quiet_until
    }

    /// Checks the exits against the touch (`bid`, `ask`) at event time `now`, for the signed
    /// `position` opened at `entry`. Returns the close to send when one fires (or when a
    /// close left part of the position open).
    pub fn on_top(
        &mut self,
        position: Qty,
        entry: Option<Px>,
        bid: Option<Px>,
        ask: Option<Px>,
        now: u64,
    ) -> Option<Exit> {
        let sign = position.0.signum() as i8;
        if sign != self.side_of {
            // Opened, flipped or closed: a new trail, and no close is owed any more.
            self.side_of = sign;
            self.best = None;
            if sign == 0 {
                self.firing = None;
            }
        }
        let (Some(entry), true) = (entry, sign != 0) else {
            return None;
        };
        if !self.params.any() || self.closing.is_some() {
            return None;
        }
        // Where the position would close: a long sells at the bid, a short buys at the ask.
        let (touch, close_side) = if sign > 0 {
            (bid?, OrderSide::Sell)
        } else {
            (ask?, OrderSide::Buy)
        };
        // Favour: how far the touch has moved in the position's favour, in price units.
        let favour = |from: Px| i128::from(sign) * (i128::from(touch.0) - i128::from(from.0));
        let best = match self.best {
            Some(b) if favour(b) <= 0 => b,
            _ => touch,
        };
        // The trail starts at the entry: never behind it.
        let best = if favour(entry) < 0 && self.best.is_none() {
            entry
        } else {
            best
        };
        self.best = Some(best);
        let dist = |ppm: u32, from: Px| i128::from(from.0) * i128::from(ppm) / PPM;
        let kind = if let Some(kind) = self.firing {
            // A close that left part of the position: finish it.
            Some(kind)
        } else if self
            .params
            .stop_loss_ppm
            .is_some_and(|sl| -favour(entry) >= dist(sl, entry))
        {
            Some(ExitKind::StopLoss)
        } else if self
            .params
            .take_profit_ppm
            .is_some_and(|tp| favour(entry) >= dist(tp, entry))
        {
            Some(ExitKind::TakeProfit)
        } else if self
            .params
            .trailing_ppm
            .is_some_and(|tr| -favour(best) >= dist(tr, best))
        {
            Some(ExitKind::Trailing)
        } else {
            None
        };
        let kind = kind?;
        if self.firing.is_none() {
            match kind {
                ExitKind::StopLoss => self.stats.stop_losses += 1,
                ExitKind::TakeProfit => self.stats.take_profits += 1,
                ExitKind::Trailing => self.stats.trailing_stops += 1,
            }
            self.firing = Some(kind);
        }
        self.quiet_until = now.saturating_add(self.params.cooldown_ns);
        Some(Exit {
            kind,
            side: close_side,
            px: self.through(touch, close_side),
            qty: Qty(position.0.saturating_abs()),
        })
    }

    /// The touch moved `slippage_ppm` through, onto the tick grid (down for a sell, up for a
    /// buy), never below one tick.
    fn through(&self, touch: Px, side: OrderSide) -> Px {
        let tick = i128::from(self.tick.0.max(1));
        let slip = i128::from(self.params.slippage_ppm);
        let t = i128::from(touch.0);
        let on_grid = match side {
            OrderSide::Sell => (t * (PPM - slip)).div_euclid(PPM).div_euclid(tick) * tick,
            OrderSide::Buy => {
                let raw = (t * (PPM + slip) + PPM - 1).div_euclid(PPM);
                (raw + tick - 1).div_euclid(tick) * tick
            }
        };
        Px(on_grid.clamp(tick, i128::from(i64::MAX)) as i64)
    }

    /// The closing order `id` was sent.
    pub fn sent(&mut self, id: ClientOrderId) {
        self.closing = Some(id);
        self.stats.closing_orders += 1;
    }

    /// The closing order was refused before it left: nothing is in flight; the next view tries
    /// again.
    pub fn refused(&mut self) {
        self.stats.closing_refused += 1;
    }

    /// A report of `id`: the close's last report lets the exits look again.
    pub fn on_report(&mut self, id: ClientOrderId, is_final: bool) {
        if is_final && self.closing == Some(id) {
            self.closing = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Px = Px(1); // prices in cents

    fn params() -> ProtectParams {
        ProtectParams {
            stop_loss_ppm: Some(10_000),   // 1 %
            take_profit_ppm: Some(20_000), // 2 %
            trailing_ppm: None,
            slippage_ppm: 1_000, // 0.1 %
            cooldown_ns: 5,
        }
    }

    fn top(p: &mut Protector, pos: i64, bid: i64, ask: i64, now: u64) -> Option<Exit> {
        p.on_top(
            Qty(pos),
            Some(Px(10_000)),
            Some(Px(bid)),
            Some(Px(ask)),
            now,
        )
    }

    #[test]
    fn a_long_stops_at_exactly_one_percent_below_its_entry() {
        // Long 3 from 100.00: the stop is at a bid of 99.00.
        let mut p = Protector::new(params(), TICK);
        assert_eq!(top(&mut p, 3, 9_901, 9_902, 1), None);
        let exit = top(&mut p, 3, 9_900, 9_901, 2).expect("stop");
        assert_eq!(exit.kind, ExitKind::StopLoss);
        assert_eq!(exit.side, OrderSide::Sell);
        assert_eq!(exit.qty, Qty(3));
        // 99.00 less 0.1 % is 98.901: down to the tick, 98.90.
        assert_eq!(exit.px, Px(9_890));
        assert!(!p.strategy_may_decide(3));
        p.sent(ClientOrderId(7));
        // Nothing fires while the close is in flight.
        assert_eq!(top(&mut p, 3, 9_000, 9_001, 3), None);
        p.on_report(ClientOrderId(7), true);
        // Closed: flat, and the strategy waits out the cooldown (until 2 + 5).
        assert_eq!(top(&mut p, 0, 9_000, 9_001, 4), None);
        assert!(!p.strategy_may_decide(6));
        assert!(p.strategy_may_decide(7));
        assert_eq!(p.stats().stop_losses, 1);
    }

    #[test]
    fn a_short_takes_profit_at_two_percent_and_the_stop_is_gone_with_it() {
        // Short 2 from 100.00: take-profit at an ask of 98.00.
        let mut p = Protector::new(params(), TICK);
        assert_eq!(top(&mut p, -2, 9_800, 9_801, 1), None);
        let exit = top(&mut p, -2, 9_799, 9_800, 2).expect("take-profit");
        assert_eq!(
            (exit.kind, exit.side, exit.qty),
            (ExitKind::TakeProfit, OrderSide::Buy, Qty(2))
        );
        // 98.00 plus 0.1 % is 98.098: up to the tick, 98.10.
        assert_eq!(exit.px, Px(9_810));
        p.sent(ClientOrderId(1));
        p.on_report(ClientOrderId(1), true);
        // Flat: the stop of that position cannot fire any more.
        assert_eq!(top(&mut p, 0, 11_000, 11_001, 10), None);
        assert_eq!(p.stats().stop_losses, 0);
        assert_eq!(p.stats().take_profits, 1);
    }

    #[test]
    fn a_partial_close_is_finished_on_the_next_view() {
        let mut p = Protector::new(params(), TICK);
        let exit = top(&mut p, 5, 9_850, 9_851, 1).expect("stop");
        assert_eq!(exit.qty, Qty(5));
        p.sent(ClientOrderId(1));
        // The IOC filled 3 and expired the rest; the price came back above the stop.
        p.on_report(ClientOrderId(1), true);
        let rest = top(&mut p, 2, 9_990, 9_991, 2).expect("the rest is closed");
        assert_eq!((rest.kind, rest.qty), (ExitKind::StopLoss, Qty(2)));
        assert_eq!(p.stats().stop_losses, 1, "one stop, two orders");
        p.sent(ClientOrderId(2));
        assert_eq!(p.stats().closing_orders, 2);
    }

    #[test]
    fn the_trail_follows_the_best_bid_and_fires_on_the_pullback() {
        let mut p = Protector::new(
            ProtectParams {
                stop_loss_ppm: None,
                take_profit_ppm: None,
                trailing_ppm: Some(10_000), // 1 %
                slippage_ppm: 0,
                cooldown_ns: 0,
            },
            TICK,
        );
        // Long from 100.00; the bid rises to 102.00: the trail is at 100.98.
        for bid in [10_000, 10_100, 10_200, 10_150] {
            assert_eq!(top(&mut p, 1, bid, bid + 1, 1), None, "bid {bid}");
        }
        assert_eq!(top(&mut p, 1, 10_099, 10_100, 2), None);
        let exit = top(&mut p, 1, 10_098, 10_099, 3).expect("trailing stop");
        assert_eq!((exit.kind, exit.px), (ExitKind::Trailing, Px(10_098)));
    }

    #[test]
    fn before_any_gain_the_trail_is_a_stop_below_the_entry() {
        let mut p = Protector::new(
            ProtectParams {
                trailing_ppm: Some(10_000),
                ..ProtectParams::default()
            },
            TICK,
        );
        // Long from 100.00, the first bid already lower: the trail starts at the entry.
        assert_eq!(top(&mut p, 1, 9_950, 9_951, 1), None);
        assert_eq!(
            top(&mut p, 1, 9_900, 9_901, 2).map(|e| e.kind),
            Some(ExitKind::Trailing)
        );
    }

    #[test]
    fn without_exits_or_a_position_nothing_fires() {
        let mut p = Protector::new(ProtectParams::default(), TICK);
        assert_eq!(top(&mut p, 1, 1, 2, 1), None);
        let mut p = Protector::new(params(), TICK);
        assert_eq!(top(&mut p, 0, 1, 2, 1), None);
        assert!(p.strategy_may_decide(1));
    }
}
