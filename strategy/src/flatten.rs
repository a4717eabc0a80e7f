//! [`Flattener`]: closing (or cutting) one instrument's position on command, and the de-risk
//! rule that decides when a position has grown too large for the account ([`derisk_target`]).
//!
//! A run starts from a command (the operator, a signal, a loss limit with `on_loss_limit =
//! "flatten"`) or from the de-risk rule. While it runs the strategy is not asked for decisions;
//! the stage cancels the instrument's open orders and then sends closing orders one at a time:
//! immediate-or-cancel limits priced `slippage_ppm` through the touch, but never outside the
//! risk gate's price band around the mid, no larger than `slice_qty` (nor the gate's order
//! limit), and never larger than what would close the position counting the orders still open
//! on the closing side, so no slice can flip the position. Each slice's last report lets the
//! next one go. A run ends when the position reaches its target (flat, or the de-risked size;
//! a remainder smaller than one step cannot be traded and counts as reached) or when its event
//! time deadline passes, whichever comes first.
//!
//! A flatten ordered by a command halts the instrument's strategy for the rest of the run
//! (trading it again is a restart's decision); a de-risk hands the instrument back to the
//! strategy when it ends.
//!
//! All integer arithmetic on scaled prices and quantities; nothing allocates.

use pinion_core::{Px, Qty};

use crate::order::{ClientOrderId, OrderSide};
use crate::reason::ReasonCode;
use crate::risk::RiskLimits;

const PPM: i128 = 1_000_000;

/// How a run closes the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlattenParams {
    /// Largest closing order, in the instrument's quantity units (also capped by the gate's
    /// `max_order_qty`).
    pub slice_qty: Qty,
    /// Event time a run may take before it gives up, ns.
    pub deadline_ns: u64,
    /// How far through the touch each closing order is priced, ppm of the touch (then held
    /// inside the price band).
    pub slippage_ppm: u32,
}

/// The de-risk rule: exposure above `above_ppm` of equity is cut by `by_ppm` of the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriskParams {
    /// The largest exposure (`|position| × mark`) as a share of equity, ppm.
    pub above_ppm: u32,
    /// The share of the position a de-risk closes, ppm (at least one step).
    pub by_ppm: u32,
    /// The capital equity starts from, money units (`10^-(price + qty decimals)`).
    pub capital: i128,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlattenCause {
    /// The operator (the bot or the control block).
    Operator = 1,
    /// `SIGUSR2`.
    Signal = 2,
    /// A loss limit was reached under `on_loss_limit = "flatten"`.
    LossLimit = 3,
    /// The drawdown limit was reached under `on_loss_limit = "flatten"`.
    Drawdown = 4,
    /// The de-risk rule.
    Derisk = 5,
}

impl FlattenCause {
    /// The cause of `code` (`as u8`), if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Operator,
            2 => Self::Signal,
            3 => Self::LossLimit,
            4 => Self::Drawdown,
            5 => Self::Derisk,
            _ => return None,
        })
    }

    /// The name reports and metrics use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Signal => "signal",
            Self::LossLimit => "loss_limit",
            Self::Drawdown => "drawdown",
            Self::Derisk => "derisk",
        }
    }

    /// The reason a run of this cause gives its cancels and slices: a de-risk cut is
    /// [`ReasonCode::DeRisk`], every other run [`ReasonCode::Flatten`].
    pub const fn reason(self) -> ReasonCode {
        match self {
            Self::Derisk => ReasonCode::DeRisk,
            Self::Operator | Self::Signal | Self::LossLimit | Self::Drawdown => ReasonCode::Flatten,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlattenOutcome {
    /// The position reached its target.
    Done = 1,
    /// The deadline passed first.
    DeadlinePassed = 2,
}

impl FlattenOutcome {
    /// The outcome of `code` (`as u8`), if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Done),
            2 => Some(Self::DeadlinePassed),
            _ => None,
        }
    }

    /// The name reports and metrics use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::DeadlinePassed => "deadline_passed",
        }
    }
}

/// A closing order to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Against the position.
    pub side: OrderSide,
    /// The limit: through the touch, inside the band, on the tick grid.
    pub px: Px,
    /// At most `slice_qty`, the order limit and what closes the position; on the step grid.
    pub qty: Qty,
}

/// What the stage must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlattenStep {
    /// Nothing (no run, a slice in flight, or no price to close at yet).
    Wait,
    /// Send this closing order.
    Send(Slice),
    /// The run ended: how, why it ran, and the position left.
    Finished(FlattenOutcome, FlattenCause, Qty),
}

/// What the runs did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlattenStats {
    /// Runs started by a command (operator, signal, loss limit).
    pub flattens: u64,
    /// Runs started by the de-risk rule.
    pub derisks: u64,
    /// Runs that reached their target.
    pub done: u64,
    /// Runs whose deadline passed first.
    pub deadline_passed: u64,
    /// Closing orders sent.
    pub slices: u64,
    /// Closing orders the risk gate refused.
    pub refused: u64,
    /// The last run's cause, outcome and the position it left.
    pub last: Option<(FlattenCause, FlattenOutcome, Qty)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    cause: FlattenCause,
    /// The signed position the run ends at.
    target: Qty,
    deadline_at: u64,
}

/// One instrument's flattening. See the module docs.
#[derive(Debug, Clone)]
pub struct Flattener {
    params: FlattenParams,
    step: Qty,
    tick: Px,
    run: Option<Run>,
    in_flight: Option<ClientOrderId>,
    /// Orders of the instrument still open (the strategy's being cancelled among them), as the
    /// stage last said ([`Flattener::set_open_orders`]).
    open_orders: usize,
    halted: bool,
    stats: FlattenStats,
}

impl Flattener {
    /// Runs under `params` for an instrument of quantity step `step` and price tick `tick`.
    pub fn new(params: FlattenParams, step: Qty, tick: Px) -> Self {
        Self {
            params,
            step: Qty(step.0.max(1)),
            tick: Px(tick.0.max(1)),
            run: None,
            in_flight: None,
            open_orders: 0,
            halted: false,
            stats: FlattenStats::default(),
        }
    }

    /// How many of the instrument's orders are still open (any side). A run is not done while
    /// one is: an order being cancelled may still fill, and a position that reads flat now
    /// would then not be.
    pub fn set_open_orders(&mut self, n: usize) {
        self.open_orders = n;
    }

    /// The settings.
    pub fn params(&self) -> &FlattenParams {
        &self.params
    }

    /// Counters.
    pub fn stats(&self) -> FlattenStats {
        self.stats
    }

    /// Whether a run is under way.
    #[inline]
    pub fn running(&self) -> bool {
        self.run.is_some()
    }

    /// The cause of the run under way.
    pub fn cause(&self) -> Option<FlattenCause> {
        self.run.map(|r| r.cause)
    }

    /// Whether the strategy may decide: no run under way and no command flatten before.
    #[inline]
    pub fn strategy_may_decide(&self) -> bool {
        self.run.is_none() && !self.halted
    }

    /// Starts a run for `cause` at event time `now`, the position being `position`: a
    /// de-risk to `target`, anything else to flat. A flatten takes over a de-risk under way
    /// (with a new deadline); a de-risk never takes over a run. Returns whether a run starts.
    pub fn start(&mut self, cause: FlattenCause, target: Qty, now: u64) -> bool {
        let target = if cause == FlattenCause::Derisk {
            target
        } else {
            self.halted = true;
            Qty::ZERO
        };
        match self.run {
            Some(r) if cause == FlattenCause::Derisk || r.cause != FlattenCause::Derisk => {
                return false;
            }
            _ => {}
        }
        if cause == FlattenCause::Derisk {
            self.stats.derisks += 1;
        } else {
            self.stats.flattens += 1;
        }
        self.run = Some(Run {
            cause,
            target,
            deadline_at: now.saturating_add(self.params.deadline_ns),
        });
        true
    }

    /// The next step at event time `now`, for the signed `position`, with `closing_open` still
    /// open on the side that would close it (the strategy's orders being cancelled, counted as
    /// if they fill), the touch `bid`/`ask` and the `mid`, under the gate's `limits`.
    #[allow(clippy::too_many_arguments)]
    pub fn next(
        &mut self,
        position: Qty,
        closing_open: Qty,
        bid: Option<Px>,
        ask: Option<Px>,
        mid: Option<Px>,
        limits: &RiskLimits,
        now: u64,
    ) -> FlattenStep {
        let Some(run) = self.run else {
            return FlattenStep::Wait;
        };
        let need = reduction(position, run.target);
        if need.0.abs() < self.step.0 && self.open_orders == 0 {
            return self.finish(FlattenOutcome::Done, position);
        }
        if now >= run.deadline_at {
            return self.finish(FlattenOutcome::DeadlinePassed, position);
        }
        if need.0.abs() < self.step.0 {
            // Flat for now, with orders still open: wait for them to close.
            return FlattenStep::Wait;
        }
        if self.in_flight.is_some() {
            return FlattenStep::Wait;
        }
        match plan_slice(
            position,
            need,
            closing_open,
            bid,
            ask,
            mid,
            limits,
            &self.params,
            self.step,
            self.tick,
        ) {
            Some(slice) => FlattenStep::Send(slice),
            None => FlattenStep::Wait,
        }
    }

    fn finish(&mut self, outcome: FlattenOutcome, left: Qty) -> FlattenStep {
        let Some(run) = self.run.take() else {
            return FlattenStep::Wait;
        };
        self.in_flight = None;
        match outcome {
            FlattenOutcome::Done => self.stats.done += 1,
            FlattenOutcome::DeadlinePassed => self.stats.deadline_passed += 1,
        }
        self.stats.last = Some((run.cause, outcome, left));
        FlattenStep::Finished(outcome, run.cause, left)
    }

    /// The slice of [`FlattenStep::Send`] went out as order `id`.
    pub fn sent(&mut self, id: ClientOrderId) {
        self.in_flight = Some(id);
        self.stats.slices += 1;
    }

    /// The slice of [`FlattenStep::Send`] was refused by the gate (tried again on the next
    /// step).
    pub fn refused(&mut self) {
        self.stats.refused += 1;
    }

    /// Takes a report for order `id` into account: a slice's last report lets the next go.
    pub fn on_report(&mut self, id: ClientOrderId, is_final: bool) {
        if is_final && self.in_flight == Some(id) {
            self.in_flight = None;
        }
    }
}

/// The signed quantity to trade away to go from `position` to `target` (a sell for a positive
/// amount); zero once the position is at or past the target on its way to zero, so a run
/// never trades the position away from zero.
#[inline]
fn reduction(position: Qty, target: Qty) -> Qty {
    let need = position.0.saturating_sub(target.0);
    if need.signum() == position.0.signum() {
        Qty(need)
    } else {
        Qty::ZERO
    }
}

/// The closing order for `need` (see [`reduction`]) of `position`, or `None` while none can
/// go: nothing left after the open closing-side quantity, or no price.
#[allow(clippy::too_many_arguments)]
fn plan_slice(
    position: Qty,
    need: Qty,
    closing_open: Qty,
    bid: Option<Px>,
    ask: Option<Px>,
    mid: Option<Px>,
    limits: &RiskLimits,
    params: &FlattenParams,
    step: Qty,
    tick: Px,
) -> Option<Slice> {
    let mid = mid?;
    let room = position.0.abs().saturating_sub(closing_open.0.max(0));
    let cap = need
        .0
        .abs()
        .min(params.slice_qty.0)
        .min(limits.max_order_qty.0)
        .min(room);
    let qty = cap - cap.rem_euclid(step.0);
    if qty <= 0 || mid.0 <= 0 {
        return None;
    }
    let m = i128::from(mid.0);
    let band = i128::from(limits.price_band_bps) * m / 10_000;
    let t = i128::from(tick.0);
    let slip = i128::from(params.slippage_ppm);
    let (side, px) = if position.0 > 0 {
        // Sell at the bid, through it; not below the band's floor.
        let touch = i128::from(bid.unwrap_or(mid).0);
        let through = (touch * (PPM - slip)).div_euclid(PPM);
        let floor = ceil_to(m - band, t);
        (OrderSide::Sell, floor_to(through, t).max(floor))
    } else {
        let touch = i128::from(ask.unwrap_or(mid).0);
        let through = (touch * (PPM + slip) + PPM - 1).div_euclid(PPM);
        let ceiling = floor_to(m + band, t);
        (OrderSide::Buy, ceil_to(through, t).min(ceiling))
    };
    if px <= 0 {
        return None;
    }
    // Within the order notional limit at that price (a linear contract's px × qty).
    let by_notional = limits.max_notional / px;
    let qty = i128::from(qty).min(by_notional);
    let qty = i64::try_from(qty - qty.rem_euclid(i128::from(step.0))).ok()?;
    if qty <= 0 {
        return None;
    }
    let px = Px(i64::try_from(px).ok()?);
    Some(Slice {
        side,
        px,
        qty: Qty(qty),
    })
}

fn floor_to(v: i128, unit: i128) -> i128 {
    v - v.rem_euclid(unit)
}

fn ceil_to(v: i128, unit: i128) -> i128 {
    let r = v.rem_euclid(unit);
    if r == 0 { v } else { v - r + unit }
}

/// The de-risk rule for the signed `position` marked at `mark` with net PnL `net` (money
/// units): when the exposure `|position| × mark` is above `above_ppm` of the equity
/// (`capital + net`; any exposure at all when the equity is gone), the position to cut to —
/// `by_ppm` of it closed, at least one `step`, rounded to the step toward zero. `None` when
/// the exposure is within the rule (or there is none).
pub fn derisk_target(
    position: Qty,
    mark: Px,
    net: i128,
    params: &DeriskParams,
    step: Qty,
) -> Option<Qty> {
    let step = i128::from(step.0.max(1));
    let size = i128::from(position.0).abs();
    if size < step || mark.0 <= 0 {
        return None;
    }
    let exposure = size.saturating_mul(i128::from(mark.0));
    let equity = params.capital.saturating_add(net);
    let over = equity <= 0
        || exposure.saturating_mul(PPM) > i128::from(params.above_ppm).saturating_mul(equity);
    if !over {
        return None;
    }
    let cut = (size * i128::from(params.by_ppm) / PPM).max(step);
    let cut = (cut - cut.rem_euclid(step)).min(size);
    let left = i64::try_from(size - cut).ok()?;
    Some(Qty(left * position.0.signum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RiskLimits {
        RiskLimits {
            max_order_qty: Qty(500),
            max_notional: i128::MAX,
            max_position: Qty(5_000),
            max_open_orders: 10,
            orders_per_sec: 100,
            order_burst: 100,
            price_band_bps: 50,
        }
    }

    fn params() -> FlattenParams {
        FlattenParams {
            slice_qty: Qty(300),
            deadline_ns: 1_000,
            slippage_ppm: 1_000,
        }
    }

    #[test]
    fn a_flat_position_is_not_done_while_an_order_being_cancelled_may_still_fill() {
        let mut f = Flattener::new(params(), Qty(10), Px(1));
        assert!(f.start(FlattenCause::Signal, Qty::ZERO, 0));
        let l = limits();
        let mid = Some(Px(10_000));
        // Flat, but the strategy's bid is still open: its cancel may lose to a fill.
        f.set_open_orders(1);
        assert_eq!(
            f.next(Qty::ZERO, Qty::ZERO, None, None, mid, &l, 1),
            FlattenStep::Wait
        );
        // It filled: there is a position to close after all.
        f.set_open_orders(0);
        let FlattenStep::Send(s) = f.next(
            Qty(100),
            Qty::ZERO,
            Some(Px(9_990)),
            Some(Px(10_010)),
            mid,
            &l,
            2,
        ) else {
            panic!("a slice");
        };
        assert_eq!((s.side, s.qty), (OrderSide::Sell, Qty(100)));
        f.sent(ClientOrderId(9));
        f.on_report(ClientOrderId(9), true);
        assert_eq!(
            f.next(Qty::ZERO, Qty::ZERO, None, None, mid, &l, 3),
            FlattenStep::Finished(FlattenOutcome::Done, FlattenCause::Signal, Qty::ZERO)
        );
    }

    #[test]
    fn a_long_closes_in_slices_through_the_bid_inside_the_band() {
        let mut f = Flattener::new(params(), Qty(10), Px(1));
        assert!(f.start(FlattenCause::Operator, Qty::ZERO, 0));
        assert!(!f.strategy_may_decide());
        let l = limits();
        let step = f.next(
            Qty(700),
            Qty::ZERO,
            Some(Px(9_990)),
            Some(Px(10_010)),
            Some(Px(10_000)),
            &l,
            1,
        );
        // 0.1 % through 9 990 is 9 980.01, on the tick 9 980; the band floor is 9 950.
        assert_eq!(
            step,
            FlattenStep::Send(Slice {
                side: OrderSide::Sell,
                px: Px(9_980),
                qty: Qty(300)
            })
        );
        f.sent(ClientOrderId(1));
        assert_eq!(
            f.next(Qty(700), Qty::ZERO, None, None, Some(Px(10_000)), &l, 2),
            FlattenStep::Wait
        );
        f.on_report(ClientOrderId(1), true);
        // Far below the mid the band holds the price at its floor.
        let FlattenStep::Send(s) = f.next(
            Qty(400),
            Qty::ZERO,
            Some(Px(9_000)),
            None,
            Some(Px(10_000)),
            &l,
            3,
        ) else {
            panic!("a slice");
        };
        assert_eq!((s.px, s.qty), (Px(9_950), Qty(300)));
        f.sent(ClientOrderId(2));
        f.on_report(ClientOrderId(2), true);
        // Orders still open on the closing side count as if they fill.
        let FlattenStep::Send(s) = f.next(
            Qty(100),
            Qty(60),
            Some(Px(9_990)),
            None,
            Some(Px(10_000)),
            &l,
            4,
        ) else {
            panic!("a slice");
        };
        assert_eq!(s.qty, Qty(40));
        f.sent(ClientOrderId(3));
        f.on_report(ClientOrderId(3), true);
        // Less than a step left: done, and the strategy stays halted.
        assert_eq!(
            f.next(Qty(5), Qty::ZERO, None, None, Some(Px(10_000)), &l, 5),
            FlattenStep::Finished(FlattenOutcome::Done, FlattenCause::Operator, Qty(5))
        );
        assert!(!f.running() && !f.strategy_may_decide());
        assert_eq!(f.stats().slices, 3);
    }

    #[test]
    fn a_short_buys_back_and_the_deadline_ends_a_run() {
        let mut f = Flattener::new(params(), Qty(1), Px(5));
        f.start(FlattenCause::Signal, Qty::ZERO, 100);
        let l = limits();
        let FlattenStep::Send(s) = f.next(
            Qty(-50),
            Qty::ZERO,
            Some(Px(9_990)),
            Some(Px(10_010)),
            Some(Px(10_000)),
            &l,
            100,
        ) else {
            panic!("a slice");
        };
        // 10 010 × 1.001 = 10 020.01, up to the tick: 10 025; under the band's 10 050.
        assert_eq!((s.side, s.px, s.qty), (OrderSide::Buy, Px(10_025), Qty(50)));
        f.sent(ClientOrderId(9));
        assert_eq!(
            f.next(Qty(-20), Qty::ZERO, None, None, Some(Px(10_000)), &l, 1_100),
            FlattenStep::Finished(
                FlattenOutcome::DeadlinePassed,
                FlattenCause::Signal,
                Qty(-20)
            )
        );
        assert_eq!(f.stats().deadline_passed, 1);
    }

    #[test]
    fn a_derisk_cuts_to_its_target_and_a_flatten_takes_it_over() {
        let d = DeriskParams {
            above_ppm: 500_000,
            by_ppm: 250_000,
            capital: 1_000_000,
        };
        // 100 × 10 000 = 1 000 000 of exposure on 1 000 000 of equity: above 50 %.
        assert_eq!(
            derisk_target(Qty(100), Px(10_000), 0, &d, Qty(10)),
            Some(Qty(80))
        );
        assert_eq!(
            derisk_target(Qty(-100), Px(10_000), 0, &d, Qty(1)),
            Some(Qty(-75))
        );
        assert_eq!(derisk_target(Qty(40), Px(10_000), 0, &d, Qty(1)), None);
        // Equity gone: any exposure is too much.
        assert_eq!(
            derisk_target(Qty(1), Px(10_000), -1_000_000, &d, Qty(1)),
            Some(Qty(0))
        );
        let mut f = Flattener::new(params(), Qty(1), Px(1));
        assert!(f.start(FlattenCause::Derisk, Qty(75), 0));
        assert!(!f.start(FlattenCause::Derisk, Qty(50), 0));
        let l = limits();
        let FlattenStep::Send(s) = f.next(
            Qty(100),
            Qty::ZERO,
            Some(Px(9_999)),
            None,
            Some(Px(10_000)),
            &l,
            1,
        ) else {
            panic!("a slice");
        };
        assert_eq!(s.qty, Qty(25));
        f.sent(ClientOrderId(4));
        assert_eq!(
            f.next(Qty(90), Qty::ZERO, None, None, Some(Px(10_000)), &l, 2),
            FlattenStep::Wait,
            "a slice is in flight"
        );
        assert!(!f.strategy_may_decide());
        assert!(
            f.start(FlattenCause::LossLimit, Qty(75), 3),
            "a flatten takes over"
        );
        assert_eq!(f.cause(), Some(FlattenCause::LossLimit));
        f.on_report(ClientOrderId(4), true);
        let FlattenStep::Send(s) = f.next(
            Qty(90),
            Qty::ZERO,
            Some(Px(9_999)),
            None,
            Some(Px(10_000)),
            &l,
            4,
        ) else {
            panic!("a slice");
        };
        assert_eq!(s.qty, Qty(90), "now to flat");
    }
}
