//! The backtest's figures, from the tapes: PnL and fees, return, Sharpe and Sortino over
//! per-period returns in event time, the largest drawdown and how long it lasted, win rate and
//! profit factor of the closing fills.
//!
//! Definitions (the `backtest` tests recompute them from the CSV files by these words):
//! - **Equity** is net PnL: realised + unrealised (at the mid) − fees, from 0 at the start.
//! - **Returns**: the equity at the end of each period of event time (the last sample before
//!   the period ends, carried over periods without one), differenced, over the capital.
//!   Sharpe is their mean over their standard deviation (n − 1), Sortino their mean over the
//!   root mean square of the negative ones; both scaled by √(periods in 365 days). `None` when
//!   the denominator is zero or there are fewer than two periods.
//! - **Drawdown**: the fall of equity from its highest point so far (0 at the start); its
//!   duration runs from that high to the first sample back at it, or to the end.
//! - **Closing fills** are fills that realised PnL; a win is one whose realised PnL less its
//!   own fee is positive. Profit factor: the sum of the wins over the sum of the losses.

use super::tape::{EquitySample, FillRecord};

/// A year of event time, ns (crypto markets trade every day).
const YEAR_NS: f64 = 365.0 * 86_400.0 * 1e9;

/// A point of an equity series: event time, equity (in the series' money units).
pub type EquityPoint = (u64, i128);

/// The drawdown figures of an equity series.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Drawdown {
    /// Largest fall from a high, money units.
    pub max: i128,
    /// The high it fell from, money units.
    pub peak: i128,
    /// Event time from that high to the recovery (or the end), ns.
    pub duration_ns: u64,
}

/// The largest drawdown of `series` (see the module docs).
pub fn drawdown(series: &[EquityPoint]) -> Drawdown {
    let Some(&(t_first, _)) = series.first() else {
        return Drawdown::default();
    };
    let t_last = series.last().map_or(t_first, |p| p.0);
    let (mut peak, mut peak_t) = (0i128, t_first);
    let mut best = Drawdown::default();
    // The high of the largest drawdown so far, until equity is back at it.
    let mut open: Option<(i128, u64)> = None;
    for &(t, e) in series {
        if e >= peak {
            if let Some((high, since)) = open
                && e >= high
            {
                best.duration_ns = t - since;
                open = None;
            }
            if e > peak {
                peak = e;
                peak_t = t;
            }
            continue;
        }
        let dd = peak - e;
        if dd > best.max {
            best = Drawdown {
                max: dd,
                peak,
                duration_ns: t_last - peak_t,
            };
            open = Some((peak, peak_t));
        }
    }
    best
}

/// The sums Sharpe and Sortino are taken from, over per-period returns.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReturnStats {
    /// Periods.
    pub n: u64,
    /// Sum of the returns.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_sq: f64,
    /// Sum of the squares of the negative ones.
    pub down_sq: f64,
}

impl ReturnStats {
    fn add(&mut self, r: f64) {
        self.n += 1;
        self.sum += r;
        self.sum_sq += r * r;
        self.down_sq += r.min(0.0) * r.min(0.0);
    }

    /// Sharpe and Sortino, annualised for periods of `period_ns` (see the module docs).
    pub fn sharpe_sortino(&self, period_ns: u64) -> (Option<f64>, Option<f64>) {
        if self.n < 2 {
            return (None, None);
        }
        let n = self.n as f64;
        let scale = (YEAR_NS / period_ns.max(1) as f64).sqrt();
        let mean = self.sum / n;
        let var = ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let down = self.down_sq / n;
        // A spread below the sums' rounding is no spread.
        let tiny = 1e-12 * (self.sum_sq / n).max(f64::MIN_POSITIVE);
        let ratio = |d: f64| (d > tiny).then(|| mean / d.sqrt() * scale);
        (ratio(var), ratio(down))
    }
}

/// The per-period returns of `series` over `capital` (same money units), periods of
/// `period_ns`, summed as they go: periods without a sample add a zero return each, counted in
/// one step, so a long recording with a short period costs no memory.
pub fn period_returns(series: &[EquityPoint], period_ns: u64, capital: f64) -> ReturnStats {
    let mut stats = ReturnStats::default();
    let Some(first) = series.first() else {
        return stats;
    };
    let period_ns = period_ns.max(1);
    // The period being summed, the equity at its end so far, and at the end of the one before.
    let (mut k, mut equity, mut prev) = (first.0 / period_ns, 0i128, 0i128);
    for &(t, e) in series {
        let kt = t / period_ns;
        if kt > k {
            stats.add((equity - prev) as f64 / capital);
            prev = equity;
            // Periods with no sample: equity unchanged.
            stats.n += kt - k - 1;
            k = kt;
        }
        equity = e;
    }
    stats.add((equity - prev) as f64 / capital);
    stats
}

/// Win rate and profit factor of the closing fills.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Wins {
    /// Fills that realised PnL.
    pub closing: u64,
    /// Of those, the ones that made money after their own fee.
    pub wins: u64,
    /// Sum of the winners, money units.
    pub won: i128,
    /// Sum of the losers (a positive number), money units.
    pub lost: i128,
}

impl Wins {
    /// Wins over closing fills; `None` without closing fills.
    pub fn rate(&self) -> Option<f64> {
        (self.closing > 0).then(|| self.wins as f64 / self.closing as f64)
    }

    /// Won over lost; `None` without a loss.
    pub fn profit_factor(&self) -> Option<f64> {
        (self.lost > 0).then(|| self.won as f64 / self.lost as f64)
    }
}

/// The closing fills of `fills` (see the module docs).
pub fn wins(fills: &[FillRecord]) -> Wins {
    let mut w = Wins::default();
    let mut realized = 0;
    for f in fills {
        let delta = f.realized - realized;
        realized = f.realized;
        if delta == 0 {
            continue;
        }
        w.closing += 1;
        let pnl = delta - f.fee;
        if pnl > 0 {
            w.wins += 1;
            w.won += pnl;
        } else {
            w.lost -= pnl;
        }
    }
    w
}

/// The equity series of one instrument's samples.
pub fn equity_series(samples: &[EquitySample]) -> Vec<EquityPoint> {
    samples.iter().map(|s| (s.t_ns, s.equity())).collect()
}

/// The sum of several instruments' equity series, each scaled by its factor into common money
/// units: at each sample of any of them, the latest equity of each.
pub fn total_series(series: &[(Vec<EquityPoint>, i128)]) -> Vec<EquityPoint> {
    let mut events: Vec<(u64, usize, i128)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, (s, scale))| s.iter().map(move |&(t, e)| (t, i, e * scale)))
        .collect();
    // Stable: samples at one time keep their instruments' order.
    events.sort_by_key(|&(t, i, _)| (t, i));
    let mut latest = vec![0i128; series.len()];
    let mut out: Vec<EquityPoint> = Vec::with_capacity(events.len());
    for (t, i, e) in events {
        latest[i] = e;
        let sum = latest.iter().sum();
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = sum,
            _ => out.push((t, sum)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::{Px, Qty};
    use pinion_strategy::OrderSide;

    #[test]
    fn drawdown_runs_from_the_high_to_the_recovery() {
        let s = [(0, 0), (10, 50), (20, 20), (30, -10), (40, 60), (50, 40)];
        let d = drawdown(&s);
        assert_eq!((d.max, d.peak, d.duration_ns), (60, 50, 30));
        // Never recovered: to the end.
        let s = [(0, 0), (10, 50), (20, -10), (30, 0)];
        assert_eq!(drawdown(&s).duration_ns, 20);
        // A loss from the start counts from 0.
        let s = [(5, -3), (9, -1)];
        assert_eq!(
            drawdown(&s),
            Drawdown {
                max: 3,
                peak: 0,
                duration_ns: 4
            }
        );
        assert_eq!(drawdown(&[]), Drawdown::default());
    }

    #[test]
    fn returns_carry_equity_over_empty_periods() {
        let s = [(1_500, 10), (1_900, 20), (4_100, 0)];
        let r = period_returns(&s, 1_000, 100.0);
        // Returns 0.2, 0, 0, -0.2.
        assert_eq!(r.n, 4);
        assert!((r.sum).abs() < 1e-15 && (r.sum_sq - 0.08).abs() < 1e-15);
        assert!((r.down_sq - 0.04).abs() < 1e-15);
        let (sharpe, sortino) = r.sharpe_sortino(1_000);
        assert_eq!(sharpe.map(f64::abs), Some(0.0));
        assert_eq!(sortino.map(f64::abs), Some(0.0));
        let stats = |rs: &[f64]| {
            let mut s = ReturnStats::default();
            rs.iter().for_each(|&r| s.add(r));
            s
        };
        let (sharpe, sortino) = stats(&[0.1, 0.1]).sharpe_sortino(1_000);
        assert_eq!((sharpe, sortino), (None, None));
        assert_eq!(stats(&[0.1]).sharpe_sortino(1), (None, None));
        let (sharpe, sortino) = stats(&[0.2, -0.1]).sharpe_sortino(YEAR_NS as u64);
        // Mean 0.05; sd √0.045; downside √(0.01 / 2).
        assert!((sharpe.unwrap() - 0.05 / 0.045f64.sqrt()).abs() < 1e-12);
        assert!((sortino.unwrap() - 0.05 / 0.005f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn wins_are_closing_fills_net_of_their_fee() {
        let f = |realized, fee| FillRecord {
            t_ns: 0,
            side: OrderSide::Buy,
            px: Px(1),
            qty: Qty(1),
            maker: true,
            fee,
            position: Qty(0),
            realized,
            fees: 0,
            reason: pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Exit),
        };
        let w = wins(&[f(0, 1), f(10, 2), f(10, 1), f(7, 1), f(8, 2)]);
        assert_eq!((w.closing, w.wins, w.won, w.lost), (3, 1, 8, 4 + 1));
        assert_eq!(w.rate(), Some(1.0 / 3.0));
        assert_eq!(w.profit_factor(), Some(8.0 / 5.0));
    }

    #[test]
    fn the_total_adds_the_latest_equity_of_each() {
        let a = vec![(0, 1), (20, 3)];
        let b = vec![(10, 5), (20, 7)];
        let t = total_series(&[(a, 10), (b, 1)]);
        assert_eq!(t, [(0, 10), (10, 15), (20, 37)]);
    }
}
