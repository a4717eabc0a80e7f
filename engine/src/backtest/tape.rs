//! [`Tape`]: what the strategy stage records of a run for the backtest report — every fill and
//! the equity sampled once per period of event time — into buffers allocated before the run.
//!
//! Recording is a copy of a fixed-size record into a `Vec` that never grows: a full buffer
//! records no more and counts what it could not keep, so the hot path never allocates (the
//! `backtest_alloc` test counts). The tape is read once, after the run.

use pinion_core::{Px, Qty};
use pinion_strategy::{OrderReason, OrderSide, Position};

/// One fill, with the account as it stood after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRecord {
    /// Event time of the fill at the venue, ns.
    pub t_ns: u64,
    /// Our side.
    pub side: OrderSide,
    /// Fill price.
    pub px: Px,
    /// Fill quantity.
    pub qty: Qty,
    /// Whether our order was resting (maker) rather than taking liquidity.
    pub maker: bool,
    /// Its fee, in money units (negative: a rebate).
    pub fee: i128,
    /// Position after it.
    pub position: Qty,
    /// Realised PnL after it (gross of fees), money units.
    pub realized: i128,
    /// Fees paid up to and including it, money units.
    pub fees: i128,
    /// Why the order it filled was placed ([`OrderReason::UNKNOWN`] for an order the stage's
    /// gate did not hold: one placed before a restart from a journal without reasons).
    pub reason: OrderReason,
}

/// The account at one point of event time, marked at the mid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquitySample {
    /// Event time, ns.
    pub t_ns: u64,
    /// The mid the position is marked at.
    pub mid: Px,
    /// Position.
    pub position: Qty,
    /// Realised PnL (gross), money units.
    pub realized: i128,
    /// Fees paid, money units.
    pub fees: i128,
    /// Unrealised PnL at `mid`, money units.
    pub unrealized: i128,
}

impl EquitySample {
    /// Net PnL at this point: realised and unrealised less fees.
    pub fn equity(&self) -> i128 {
        self.realized + self.unrealized - self.fees
    }
}

/// Fills and equity samples of one instrument. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tape {
    fills: Vec<FillRecord>,
    samples: Vec<EquitySample>,
    fills_dropped: u64,
    samples_dropped: u64,
    period_ns: u64,
    next_sample_ns: u64,
}

impl Tape {
    /// A tape with room for `max_fills` fills and `max_samples` samples, sampling once per
    /// `period_ns` of event time. All of it is allocated here.
    pub fn with_capacity(max_fills: usize, max_samples: usize, period_ns: u64) -> Self {
        Self {
            fills: Vec::with_capacity(max_fills),
            samples: Vec::with_capacity(max_samples),
            fills_dropped: 0,
            samples_dropped: 0,
            period_ns: period_ns.max(1),
            next_sample_ns: 0,
        }
    }

    /// Records a fill at `t_ns` of an order placed for `reason`, that `ledger` has just applied
    /// (with `fee`).
    #[inline]
    pub fn fill(
        &mut self,
        t_ns: u64,
        fill: (OrderSide, Px, Qty, bool),
        fee: i128,
        ledger: &Position,
        reason: OrderReason,
    ) {
        if self.fills.len() == self.fills.capacity() {
            self.fills_dropped += 1;
            return;
        }
        let (side, px, qty, maker) = fill;
        self.fills.push(FillRecord {
            t_ns,
            side,
            px,
            qty,
            maker,
            fee,
            position: ledger.qty(),
            realized: ledger.realized(),
            fees: ledger.fees(),
            reason,
        });
    }

    /// Samples the account at `t_ns` marked at `mid`, if a new period has begun since the last
    /// sample (`force`: whatever the period, e.g. at the end of the run).
    #[inline]
    pub fn sample(&mut self, t_ns: u64, mid: Px, ledger: &Position, force: bool) {
        if t_ns < self.next_sample_ns && !force {
            return;
        }
        if self.samples.len() == self.samples.capacity() {
            self.samples_dropped += 1;
            return;
        }
        self.next_sample_ns = (t_ns / self.period_ns + 1) * self.period_ns;
        self.samples.push(EquitySample {
            t_ns,
            mid,
            position: ledger.qty(),
            realized: ledger.realized(),
            fees: ledger.fees(),
            unrealized: ledger.unrealized(mid),
        });
    }

    /// The fills recorded, in the order applied.
    pub fn fills(&self) -> &[FillRecord] {
        &self.fills
    }

    /// The equity samples, in event-time order.
    pub fn samples(&self) -> &[EquitySample] {
        &self.samples
    }

    /// Fills not recorded because the buffer was full.
    pub fn fills_dropped(&self) -> u64 {
        self.fills_dropped
    }

    /// Samples not recorded because the buffer was full.
    pub fn samples_dropped(&self) -> u64 {
        self.samples_dropped
    }

    /// The sampling period, ns.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_pinned() {
        // What `backtest.max_fills` and `backtest.max_samples` cost per entry (replay.toml says);
        // a fill's reason took two bytes of its padding.
        assert_eq!(std::mem::size_of::<FillRecord>(), 96);
        assert_eq!(std::mem::size_of::<EquitySample>(), 80);
    }

    #[test]
    fn samples_once_per_period_and_stops_when_full() {
        let mut ledger = Position::new();
        let mut tape = Tape::with_capacity(1, 3, 1_000);
        tape.sample(1_500, Px(100), &ledger, false);
        tape.sample(1_900, Px(101), &ledger, false);
        tape.sample(2_000, Px(102), &ledger, false);
        ledger.apply_fill(OrderSide::Buy, Px(102), Qty(2));
        let r = OrderReason::new(0, pinion_strategy::ReasonCode::GridLevel);
        tape.fill(
            2_100,
            (OrderSide::Buy, Px(102), Qty(2), true),
            0,
            &ledger,
            r,
        );
        tape.fill(
            2_200,
            (OrderSide::Sell, Px(102), Qty(2), true),
            0,
            &ledger,
            r,
        );
        tape.sample(2_300, Px(105), &ledger, true);
        tape.sample(9_000, Px(105), &ledger, false);
        let t: Vec<u64> = tape.samples().iter().map(|s| s.t_ns).collect();
        assert_eq!(t, [1_500, 2_000, 2_300]);
        assert_eq!(tape.samples()[2].unrealized, 6);
        assert_eq!(tape.samples()[2].equity(), 6);
        assert_eq!((tape.fills().len(), tape.fills_dropped()), (1, 1));
        assert_eq!(tape.samples_dropped(), 1);
        assert_eq!(tape.fills()[0].position, Qty(2));
        assert_eq!(tape.fills()[0].reason, r);
    }
}
