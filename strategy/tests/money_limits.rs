//! Loss guards and sizing under random series.
//!
//! A [`LossGuard`] fed a random net-PnL series over several UTC days trips exactly once, at the
//! first observation where a reference computed from the whole prefix (the day's opening net
//! PnL, the peak, the total) reaches a limit, and with the reason that reference gives. A
//! [`Sizer`] never sizes off the step or above the order and position limits.

use pinion_core::{Px, Qty};
use pinion_strategy::money::NS_PER_DAY;
use pinion_strategy::{Breach, LossGuard, LossLimits, Sizer, Sizing};
use proptest::prelude::*;

/// The first breach of `limits` over `series` (event time, net PnL), computed afresh at every
/// observation from everything before it.
fn reference(limits: &LossLimits, series: &[(u64, i128)]) -> Option<(usize, Breach)> {
    for i in 0..series.len() {
        let (t, net) = series[i];
        let day = t / NS_PER_DAY;
        // The net PnL the day opened at: the last one seen on an earlier day, or zero.
        let open = series[..i]
            .iter()
            .rev()
            .find(|(u, _)| u / NS_PER_DAY < day)
            .map_or(0, |&(_, n)| n);
        let peak = series[..=i]
            .iter()
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0)
            .max(0);
        let reached = |l: Option<i128>, loss: i128| l.is_some_and(|m| loss >= m);
        if reached(limits.max_total_loss, -net) {
            return Some((i, Breach::TotalLoss));
        }
        if reached(limits.max_daily_loss, open - net) {
            return Some((i, Breach::DailyLoss));
        }
        if reached(limits.max_drawdown, peak - net) {
            return Some((i, Breach::Drawdown));
        }
    }
    None
}

fn limit() -> impl Strategy<Value = Option<i128>> {
    prop::option::weighted(0.7, 1i128..2_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 1_000 }))]

    #[test]
    fn a_guard_trips_once_where_the_reference_says(
        daily in limit(),
        total in limit(),
        drawdown in limit(),
        start in 19_000u64..20_000,
        moves in prop::collection::vec((0u64..6 * 3_600, -150i128..=140), 1..300),
    ) {
        let limits = LossLimits { max_daily_loss: daily, max_total_loss: total, max_drawdown: drawdown };
        // Event times move forward by up to six hours at a time, over several days.
        let mut t = start * NS_PER_DAY;
        let mut net = 0i128;
        let series: Vec<(u64, i128)> = moves
            .iter()
            .map(|&(dt_s, d)| {
                t += dt_s * 1_000_000_000;
                net += d;
                (t, net)
            })
            .collect();
        let mut g = LossGuard::new(limits);
        let mut got = None;
        for (i, &(t, net)) in series.iter().enumerate() {
            if let Some(b) = g.observe(t, net) {
                prop_assert!(got.is_none(), "tripped twice");
                got = Some((i, b));
            }
        }
        prop_assert_eq!(got, reference(&limits, &series));
        prop_assert_eq!(g.breach(), got.map(|(i, b)| (b, series[i].0)));
    }

    #[test]
    fn sizes_stay_on_the_step_and_within_the_limits(
        kind in 0u8..3,
        ppm in 1u32..=1_000_000,
        capital in 0i128..1_000_000_000_000,
        net in -1_000_000_000_000i128..1_000_000_000_000,
        px in 1i64..10_000_000,
        floor in 0i64..5_000,
        step in 1i64..100,
        max_order in 0i64..20_000,
        max_position in 0i64..20_000,
        trips in prop::collection::vec(-1_000i128..1_000, 0..40),
    ) {
        let sizing = match kind {
            0 => Sizing::Fixed,
            1 => Sizing::Fraction { fraction_ppm: ppm },
            _ => Sizing::Kelly { scale_ppm: ppm, max_fraction_ppm: ppm, min_trades: 5 },
        };
        let mut s = Sizer::new(sizing, capital, Qty(floor), Qty(step), Qty(max_order), Qty(max_position));
        let mut acc = 0;
        for pnl in trips {
            s.on_fill((Qty(0), acc), (Qty(1), acc));
            s.on_fill((Qty(1), acc), (Qty(0), acc + pnl));
            acc += pnl;
        }
        let q = s.size(net, Px(px)).0;
        prop_assert!(q >= 0);
        prop_assert_eq!(q % step, 0);
        prop_assert!(q <= max_order.min(max_position), "{} above the limits", q);
        if kind == 1 && capital + net <= 0 {
            prop_assert_eq!(q, 0, "no equity, no size");
        }
    }
}
