//! One instrument's PnL cut into UTC days of event time, from what the run recorded: the fills
//! (each with the realised PnL and fees after it) and the equity samples (each with the
//! unrealised PnL at the mid). Every figure is a change over the day, in money units, so the
//! days of a run add up exactly to the run's figures: the last day closes on the run's final
//! account (the one the report shows), not on its last sample.

use std::collections::BTreeMap;

use crate::backtest::{InstrumentResult, Tape};

use super::super::civil::DAY_NS;

/// One instrument's day, as changes over the day in money units (`10^-money_decimals` of the
/// quote asset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPnl {
    /// Days since 1970-01-01 (UTC) of the event time.
    pub day: u64,
    /// Fills on that day.
    pub fills: u64,
    /// Notional traded that day.
    pub volume: i128,
    /// Realised PnL made that day (gross of fees).
    pub realized: i128,
    /// Fees paid that day.
    pub fees: i128,
    /// Change of the unrealised PnL over the day.
    pub unrealized: i128,
}

impl DayPnl {
    /// Net PnL of the day: realised and the change of unrealised, less fees.
    pub fn net(&self) -> i128 {
        self.realized + self.unrealized - self.fees
    }
}

/// The account as it stood at some point: cumulative realised, fees, and unrealised.
#[derive(Debug, Clone, Copy, Default)]
struct Close {
    realized: i128,
    fees: i128,
    unrealized: i128,
}

/// `instrument`'s days, in order. A run with no fills and no samples has none.
pub fn days(instrument: &InstrumentResult) -> Vec<DayPnl> {
    let t = &instrument.trading;
    days_of(
        &t.tape,
        Close {
            realized: t.realized,
            fees: t.fees,
            unrealized: t.unrealized.unwrap_or(0),
        },
    )
}

/// The days of `tape`, the last closing on `end`.
fn days_of(tape: &Tape, end: Close) -> Vec<DayPnl> {
    // Per day: the account at its last event, and the fills and volume in it.
    let mut by_day: BTreeMap<u64, (Close, u64, i128)> = BTreeMap::new();
    let mut last = Close::default();
    // Fills and samples merged in event time (each list is in order already).
    let (fills, samples) = (tape.fills(), tape.samples());
    let (mut i, mut j) = (0, 0);
    while i < fills.len() || j < samples.len() {
        let take_fill = j >= samples.len() || (i < fills.len() && fills[i].t_ns <= samples[j].t_ns);
        let (t, fill) = if take_fill {
            let f = &fills[i];
            i += 1;
            last.realized = f.realized;
            last.fees = f.fees;
            (f.t_ns, Some(i128::from(f.px.0) * i128::from(f.qty.0)))
        } else {
            let s = &samples[j];
            j += 1;
            last = Close {
                realized: s.realized,
                fees: s.fees,
                unrealized: s.unrealized,
            };
            (s.t_ns, None)
        };
        let e = by_day.entry(t / DAY_NS).or_insert((last, 0, 0));
        e.0 = last;
        if let Some(notional) = fill {
            e.1 += 1;
            e.2 += notional;
        }
    }
    // The last day closes on the final account, so the days sum to the run's figures.
    if let Some((_, e)) = by_day.iter_mut().next_back() {
        e.0 = end;
    }
    let mut prev = Close::default();
    by_day
        .into_iter()
        .map(|(day, (close, fills, volume))| {
            let d = DayPnl {
                day,
                fills,
                volume,
                realized: close.realized - prev.realized,
                fees: close.fees - prev.fees,
                unrealized: close.unrealized - prev.unrealized,
            };
            prev = close;
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{Px, Qty};
    use pinion_strategy::{FeeRates, OrderSide, Position};

    #[test]
    fn days_cut_at_utc_midnight_and_sum_to_the_final_account() {
        let day = |d: u64, h: u64| d * DAY_NS + h * 3_600 * 1_000_000_000;
        let mut ledger = Position::new();
        let mut tape = Tape::with_capacity(8, 8, 1_000_000_000);
        // Half a percent: a fee of 1 on each of the two fills' notionals (200 and 210).
        let rates = FeeRates {
            maker_e8: 500_000,
            taker_e8: 500_000,
        };
        let fill = |t: u64, side, px: i64, ledger: &mut Position, tape: &mut Tape| {
            let fee = ledger.apply_fill_paying(side, Px(px), Qty(2), true, &rates);
            assert_eq!(fee, 1);
            let reason = pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry);
            tape.fill(t, (side, Px(px), Qty(2), true), fee, ledger, reason);
        };
        // Day 20 000: buy 2 at 100, marked at 103 in the evening.
        fill(day(20_000, 9), OrderSide::Buy, 100, &mut ledger, &mut tape);
        tape.sample(day(20_000, 22), Px(103), &ledger, false);
        // Day 20 001: nothing traded, marked at 101.
        tape.sample(day(20_001, 12), Px(101), &ledger, false);
        // Day 20 002: sell 2 at 105; the run ends marked flat.
        fill(day(20_002, 1), OrderSide::Sell, 105, &mut ledger, &mut tape);
        let end = Close {
            realized: ledger.realized(),
            fees: ledger.fees(),
            unrealized: 0,
        };
        let days = days_of(&tape, end);
        let got: Vec<(u64, u64, i128, i128, i128, i128)> = days
            .iter()
            .map(|d| (d.day, d.fills, d.realized, d.fees, d.unrealized, d.net()))
            .collect();
        assert_eq!(
            got,
            [
                (20_000, 1, 0, 1, 6, 5),
                (20_001, 0, 0, 0, -4, -4),
                (20_002, 1, 10, 1, -2, 7),
            ]
        );
        assert_eq!(days.iter().map(DayPnl::net).sum::<i128>(), 10 - 2);
        assert_eq!(days[0].volume, 200);
    }
}
