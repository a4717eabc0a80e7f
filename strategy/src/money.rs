//! Money management: loss and drawdown limits on net PnL ([`LossGuard`]), and how large an
//! order may be ([`Sizer`]): a fixed size, a fixed fraction of equity, or a fraction of the
//! Kelly bet from the strategy's measured edge ([`RoundTrips`]).
//!
//! **Money units.** As in [`Position`](crate::Position): integers in units of
//! `10^-(price_decimals + qty_decimals)` of the quote asset, so a price in price units times a
//! quantity in quantity units is money. Figures of instruments with different units are brought
//! to one scale with [`rescale`] before they are added up.
//!
//! **Event time.** A guard is fed the time of the event that moved the PnL (the strategy stage's
//! clock, the receive time of the market data), never the host's clock: the day a loss is
//! counted in, and the point at which a limit trips, are the same on every run.
//!
//! **Invariants.** A guard trips at most once and stays tripped ([`LossGuard::observe`] returns
//! the breach on the observation that reached it and `None` ever after); the daily figure is the
//! net PnL made since the first observation of the current UTC day, measured from the last net
//! PnL seen before it; the drawdown is measured from the highest net PnL seen, which starts at
//! zero (the starting capital). Nothing here allocates.

use pinion_core::{Px, Qty};

/// Nanoseconds in a day: UTC days are `event_ns / NS_PER_DAY` (Unix time has no leap seconds).
pub const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;

/// Brings `v` from a scale of `10^-from` to one of `10^-to` (`to >= from`; saturating). A
/// smaller `to` divides, truncating toward zero.
#[inline]
pub fn rescale(v: i128, from: u8, to: u8) -> i128 {
    if to >= from {
        let mut f: i128 = 1;
        for _ in from..to {
            f = f.saturating_mul(10);
        }
        v.saturating_mul(f)
    } else {
        let mut f: i128 = 1;
        for _ in to..from {
            f = f.saturating_mul(10);
        }
        v / f
    }
}

/// Loss limits on net PnL, as positive amounts of money; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LossLimits {
    /// Largest loss within one UTC day (of event time).
    pub max_daily_loss: Option<i128>,
    /// Largest loss since the start.
    pub max_total_loss: Option<i128>,
    /// Largest fall from the highest net PnL seen.
    pub max_drawdown: Option<i128>,
}

impl LossLimits {
    /// No limit.
    pub const OFF: LossLimits = LossLimits {
        max_daily_loss: None,
        max_total_loss: None,
        max_drawdown: None,
    };

    /// Whether every limit is off.
    pub const fn is_off(&self) -> bool {
        self.max_daily_loss.is_none()
            && self.max_total_loss.is_none()
            && self.max_drawdown.is_none()
    }

    /// The same limits on another money scale (see [`rescale`]).
    pub fn rescaled(&self, from: u8, to: u8) -> LossLimits {
        let r = |v: Option<i128>| v.map(|v| rescale(v, from, to));
        LossLimits {
            max_daily_loss: r(self.max_daily_loss),
            max_total_loss: r(self.max_total_loss),
            max_drawdown: r(self.max_drawdown),
        }
    }
}

/// Which limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Breach {
    /// [`LossLimits::max_daily_loss`].
    DailyLoss,
    /// [`LossLimits::max_total_loss`].
    TotalLoss,
    /// [`LossLimits::max_drawdown`].
    Drawdown,
}

impl Breach {
    /// The name reports use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DailyLoss => "daily_loss",
            Self::TotalLoss => "total_loss",
            Self::Drawdown => "drawdown",
        }
    }
}

/// Watches one net-PnL series against [`LossLimits`]. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossGuard {
    limits: LossLimits,
    /// The UTC day of the last observation (none before the first).
    day: Option<u64>,
    /// The net PnL the current day started from.
    day_open: i128,
    /// The last net PnL observed.
    last: i128,
    /// The highest net PnL observed (from zero).
    peak: i128,
    /// The limit reached and the event time it was reached at.
    breach: Option<(Breach, u64)>,
}

impl LossGuard {
    /// A guard with nothing observed.
    pub const fn new(limits: LossLimits) -> Self {
        Self {
            limits,
            day: None,
            day_open: 0,
            last: 0,
            peak: 0,
            breach: None,
        }
    }

    /// The limits.
    pub const fn limits(&self) -> &LossLimits {
        &self.limits
    }

    /// Takes the net PnL `net` as of event time `event_ns`; returns the limit it reached, the
    /// first time one is reached (total loss before daily loss before drawdown when several are
    /// reached at once), and `None` before and after.
    #[inline]
    pub fn observe(&mut self, event_ns: u64, net: i128) -> Option<Breach> {
        let day = event_ns / NS_PER_DAY;
        if self.day != Some(day) {
            self.day = Some(day);
            self.day_open = self.last;
        }
        self.last = net;
        self.peak = self.peak.max(net);
        if self.breach.is_some() {
            return None;
        }
        let l = &self.limits;
        let reached = |limit: Option<i128>, loss: i128| limit.is_some_and(|m| loss >= m);
        let breach = if reached(l.max_total_loss, -net) {
            Breach::TotalLoss
        } else if reached(l.max_daily_loss, self.day_open - net) {
            Breach::DailyLoss
        } else if reached(l.max_drawdown, self.peak - net) {
            Breach::Drawdown
        } else {
            return None;
        };
        self.breach = Some((breach, event_ns));
        Some(breach)
    }

    /// The limit reached and when, if one was.
    pub const fn breach(&self) -> Option<(Breach, u64)> {
        self.breach
    }

    /// Net PnL made in the current day (negative: lost).
    pub const fn daily(&self) -> i128 {
        self.last - self.day_open
    }

    /// How far the net PnL is below its peak.
    pub const fn drawdown(&self) -> i128 {
        self.peak - self.last
    }

    /// The highest net PnL seen.
    pub const fn peak(&self) -> i128 {
        self.peak
    }
}

/// One instrument under a [`LossWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watched {
    guard: LossGuard,
    /// Decimals of the instrument's money units.
    decimals: u8,
    /// Its last net PnL, on the portfolio's scale.
    net: i128,
}

/// The loss limits of every instrument the strategy stage trades, and of their sum (the
/// portfolio), on one common scale. Slots are allocated at start-up ([`LossWatch::watch`]);
/// observing allocates nothing.
#[derive(Debug, Clone)]
pub struct LossWatch {
    watched: Vec<Option<Watched>>,
    portfolio: LossGuard,
    /// Decimals of the portfolio's money units: at least each instrument's.
    scale: u8,
    /// Sum of the instruments' last net PnL, on that scale.
    total: i128,
}

impl LossWatch {
    /// Room for instruments `0..instruments`, with the portfolio's `limits` in money units of
    /// `10^-scale` of the quote asset; `scale` must be at least each instrument's decimals (a
    /// finer instrument's figures are truncated to it).
    pub fn new(instruments: usize, limits: LossLimits, scale: u8) -> Self {
        Self {
            watched: vec![None; instruments],
            portfolio: LossGuard::new(limits),
            scale,
            total: 0,
        }
    }

    /// Watches instrument `idx` (money in units of `10^-decimals`) under `limits`.
    pub fn watch(&mut self, idx: usize, limits: LossLimits, decimals: u8) {
        if let Some(slot) = self.watched.get_mut(idx) {
            *slot = Some(Watched {
                guard: LossGuard::new(limits),
                decimals,
                net: 0,
            });
        }
    }

    /// Whether no limit is set anywhere: observing can be skipped.
    pub fn is_off(&self) -> bool {
        self.portfolio.limits().is_off()
            && self
                .watched
                .iter()
                .flatten()
                .all(|w| w.guard.limits().is_off())
    }

    /// Takes instrument `idx`'s net PnL `net` (its own money units) at event time `event_ns`;
    /// returns a limit reached by this observation, the instrument's own first, then the
    /// portfolio's (each guard trips once).
    #[inline]
    pub fn observe(&mut self, idx: usize, event_ns: u64, net: i128) -> Option<Breach> {
        let Some(Some(w)) = self.watched.get_mut(idx) else {
            return None;
        };
        let own = w.guard.observe(event_ns, net);
        let scaled = rescale(net, w.decimals, self.scale);
        self.total = self.total.saturating_add(scaled.saturating_sub(w.net));
        w.net = scaled;
        let all = self.portfolio.observe(event_ns, self.total);
        own.or(all)
    }

    /// The limit instrument `idx` reached and when, if it did.
    pub fn breach_of(&self, idx: usize) -> Option<(Breach, u64)> {
        self.watched.get(idx).copied().flatten()?.guard.breach()
    }

    /// The limit the portfolio reached and when, if it did.
    pub fn portfolio_breach(&self) -> Option<(Breach, u64)> {
        self.portfolio.breach()
    }

    /// Limits reached so far: by instruments, and by the portfolio (0 or 1).
    pub fn breaches(&self) -> (u64, u64) {
        let own = self
            .watched
            .iter()
            .flatten()
            .filter(|w| w.guard.breach().is_some())
            .count() as u64;
        (own, u64::from(self.portfolio.breach().is_some()))
    }

    /// The portfolio's net PnL, money units of `10^-scale`.
    pub const fn total(&self) -> i128 {
        self.total
    }
}

/// Win rate and average win and loss of closed round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Edge {
    /// Round trips that made money (after fees).
    pub wins: u64,
    /// Round trips that lost or broke even.
    pub losses: u64,
    /// Sum of the wins, money units.
    pub won: i128,
    /// Sum of the losses as a positive amount, money units.
    pub lost: i128,
}

impl Edge {
    /// Round trips closed.
    pub const fn trips(&self) -> u64 {
        self.wins + self.losses
    }

    /// The Kelly fraction `W − (1 − W) / R` (`W` the win rate, `R` the average win over the
    /// average loss): the share of equity a bet with this edge should risk; negative when the
    /// edge is negative, `None` without a round trip. With no loss yet the payoff ratio is
    /// unbounded and the fraction is the win rate, 1.
    pub fn kelly(&self) -> Option<f64> {
        let n = self.trips();
        if n == 0 {
            return None;
        }
        let w = self.wins as f64 / n as f64;
        if self.losses == 0 || self.lost == 0 {
            return Some(w);
        }
        if self.wins == 0 || self.won == 0 {
            return Some(-1.0);
        }
        let avg_win = self.won as f64 / self.wins as f64;
        let avg_loss = self.lost as f64 / self.losses as f64;
        Some(w - (1.0 - w) * avg_loss / avg_win)
    }
}

/// Round trips from fills: one starts when the position leaves zero and closes when it comes
/// back to zero or crosses it (the crossing fill closes one and starts the next). Its result is
/// the change of realised PnL less fees over it, so the fees of both ends count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// Realised PnL less fees when the open round trip started.
    open_at: Option<i128>,
    edge: Edge,
}

impl RoundTrips {
    /// None yet.
    pub const fn new() -> Self {
        Self {
            open_at: None,
            edge: Edge {
                wins: 0,
                losses: 0,
                won: 0,
                lost: 0,
            },
        }
    }

    /// Takes one fill: the position and the realised PnL less fees before and after it.
    #[inline]
    pub fn on_fill(&mut self, before: (Qty, i128), after: (Qty, i128)) {
        let (q0, net0) = (before.0.0, before.1);
        let (q1, net1) = (after.0.0, after.1);
        if q0 != 0 && (q1 == 0 || q1.signum() != q0.signum()) {
            let pnl = net1 - self.open_at.unwrap_or(net0);
            if pnl > 0 {
                self.edge.wins += 1;
                self.edge.won += pnl;
            } else {
                self.edge.losses += 1;
                self.edge.lost -= pnl;
            }
            self.open_at = None;
            if q1 != 0 {
                self.open_at = Some(net1);
            }
        } else if q0 == 0 && q1 != 0 {
            self.open_at = Some(net0);
        }
    }

    /// The edge measured so far.
    pub const fn edge(&self) -> &Edge {
        &self.edge
    }
}

/// Parts per million: shares of equity and of the Kelly fraction are written in them.
pub const PPM: u32 = 1_000_000;

/// How order sizes are chosen. Shares are in parts per million ([`PPM`] is the whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sizing {
    /// The strategy's own configured size.
    #[default]
    Fixed,
    /// `fraction × equity / price`.
    Fraction {
        /// Share of equity per order, ppm (`1..=PPM`).
        fraction_ppm: u32,
    },
    /// `scale × kelly × equity / price`, the Kelly fraction from the strategy's closed round
    /// trips; the strategy's own size until `min_trades` have closed, and never below it.
    Kelly {
        /// Share of the Kelly fraction bet, ppm (`500_000` is "half Kelly").
        scale_ppm: u32,
        /// Largest share of equity per order whatever the edge, ppm.
        max_fraction_ppm: u32,
        /// Round trips needed before the edge is trusted.
        min_trades: u64,
    },
}

/// Sizes orders for one instrument. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizer {
    sizing: Sizing,
    /// Starting capital, money units.
    capital: i128,
    /// The strategy's own size: the fixed size, and Kelly's floor.
    floor: Qty,
    step: Qty,
    /// Largest size: the least of the order and position limits, on the step.
    cap: Qty,
    trips: RoundTrips,
}

impl Sizer {
    /// Sizes by `sizing` from `capital` (money units); `floor` is the strategy's own size, and
    /// no size exceeds `max_order_qty` or `max_position` or is off the `step`.
    pub fn new(
        sizing: Sizing,
        capital: i128,
        floor: Qty,
        step: Qty,
        max_order_qty: Qty,
        max_position: Qty,
    ) -> Self {
        let step = Qty(step.0.max(1));
        let cap = max_order_qty.0.min(max_position.0).max(0);
        Self {
            sizing,
            capital,
            floor,
            step,
            cap: Qty(cap - cap % step.0),
            trips: RoundTrips::new(),
        }
    }

    /// Whether sizes come from the strategy's own configuration (nothing to compute).
    pub const fn is_fixed(&self) -> bool {
        matches!(self.sizing, Sizing::Fixed)
    }

    /// Takes one fill (see [`RoundTrips::on_fill`]).
    #[inline]
    pub fn on_fill(&mut self, before: (Qty, i128), after: (Qty, i128)) {
        self.trips.on_fill(before, after);
    }

    /// The round trips measured.
    pub const fn round_trips(&self) -> &RoundTrips {
        &self.trips
    }

    /// The size an order may have now: `net` the instrument's net PnL (money units), `px` the
    /// price it is valued at. Rounded down to the step and capped by the limits; zero when the
    /// equity is gone.
    pub fn size(&self, net: i128, px: Px) -> Qty {
        let equity = self.capital.saturating_add(net);
        let fraction = match self.sizing {
            Sizing::Fixed => return self.capped(self.floor.0 as f64),
            Sizing::Fraction { fraction_ppm } => share(fraction_ppm),
            Sizing::Kelly {
                scale_ppm,
                max_fraction_ppm,
                min_trades,
            } => {
                let (scale, max_fraction) = (share(scale_ppm), share(max_fraction_ppm));
                let edge = self.trips.edge();
                let kelly = if edge.trips() >= min_trades {
                    edge.kelly().unwrap_or(0.0)
                } else {
                    0.0
                };
                let f = (scale * kelly).clamp(0.0, max_fraction);
                let bet = if equity > 0 && px.0 > 0 {
                    f * equity as f64 / px.0 as f64
                } else {
                    0.0
                };
                return self.capped(bet.max(self.floor.0 as f64));
            }
        };
        if equity <= 0 || px.0 <= 0 {
            return Qty::ZERO;
        }
        self.capped(fraction * equity as f64 / px.0 as f64)
    }

    /// `qty` rounded down to the step and capped (a float only here, and exact for any
    /// quantity below 2^53 units).
    fn capped(&self, qty: f64) -> Qty {
        let q = if qty.is_finite() && qty > 0.0 {
            (qty.min(self.cap.0 as f64)) as i64
        } else {
            0
        };
        Qty(q - q % self.step.0)
    }
}

/// A ppm share as a fraction of one.
fn share(ppm: u32) -> f64 {
    f64::from(ppm) / f64::from(PPM)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600 * 1_000_000_000;

    #[test]
    fn rescaling_multiplies_or_truncates() {
        assert_eq!(rescale(123, 7, 9), 12_300);
        assert_eq!(rescale(-12_345, 9, 7), -123);
        assert_eq!(rescale(5, 3, 3), 5);
        assert_eq!(rescale(i128::MAX / 2, 0, 5), i128::MAX);
        let l = LossLimits {
            max_daily_loss: Some(5),
            ..LossLimits::OFF
        };
        assert_eq!(l.rescaled(2, 4).max_daily_loss, Some(500));
        assert!(LossLimits::OFF.is_off() && !l.is_off());
    }

    /// BTCUSDT units (price 0.01, quantity 0.00001, money 1e-7 USDT): buy 0.1 BTC at
    /// 60 000.00, paying 0.1 % as a taker, and watch the mark fall.
    #[test]
    fn the_daily_limit_trips_on_the_mark_that_reaches_it() {
        use crate::order::OrderSide;
        use crate::position::{FeeRates, Position};
        let usdt = 10_000_000i128;
        let mut g = LossGuard::new(LossLimits {
            max_daily_loss: Some(50 * usdt),
            ..LossLimits::OFF
        });
        let rates = FeeRates {
            maker_e8: 0,
            taker_e8: 10 * FeeRates::BPS,
        };
        let mut p = Position::new();
        let day = 20_000 * NS_PER_DAY; // 2024-10-04 00:00 UTC
        let t = day + 22 * HOUR;
        // 6 000 USDT of notional: a fee of 6 USDT.
        p.apply_fill_paying(OrderSide::Buy, Px(6_000_000), Qty(10_000), false, &rates);
        assert_eq!(p.net(Some(Px(6_000_000))), -6 * usdt);
        assert_eq!(g.observe(t, p.net(Some(Px(6_000_000)))), None);
        // 440.00 lower, 0.1 BTC loses 44 USDT: with the fee, 50 exactly. A cent higher is
        // 0.001 USDT short of it.
        assert_eq!(g.observe(t + 1, p.net(Some(Px(5_956_001)))), None);
        assert_eq!(g.daily(), -(50 * usdt) + 10_000);
        assert_eq!(
            g.observe(t + 2, p.net(Some(Px(5_956_000)))),
            Some(Breach::DailyLoss)
        );
        assert_eq!(g.breach(), Some((Breach::DailyLoss, t + 2)));
        // Latched: reported once.
        assert_eq!(g.observe(t + 3, p.net(Some(Px(5_000_000)))), None);
    }

    #[test]
    fn a_new_utc_day_starts_the_daily_figure_from_the_last_net() {
        let mut g = LossGuard::new(LossLimits {
            max_daily_loss: Some(100),
            max_total_loss: Some(250),
            ..LossLimits::OFF
        });
        let d0 = 19_000 * NS_PER_DAY;
        assert_eq!(g.observe(d0 + HOUR, -60), None);
        assert_eq!(g.observe(d0 + 23 * HOUR, -99), None);
        assert_eq!(g.daily(), -99);
        // The next day's first event: the day opens at −99, so −150 is a daily loss of 51.
        let d1 = d0 + NS_PER_DAY;
        assert_eq!(g.observe(d1, -150), None);
        assert_eq!(g.daily(), -51);
        assert_eq!(g.observe(d1 + HOUR, -198), None);
        assert_eq!(g.observe(d1 + 2 * HOUR, -199), Some(Breach::DailyLoss));
        // A fresh guard over the same series: on the third day the total limit goes first.
        let mut g = LossGuard::new(LossLimits {
            max_daily_loss: Some(100),
            max_total_loss: Some(250),
            ..LossLimits::OFF
        });
        for (t, net) in [(d0, -99), (d1, -190), (d1 + NS_PER_DAY, -250)] {
            let b = g.observe(t, net);
            assert_eq!(b.is_some(), net == -250, "{net}");
            if let Some(b) = b {
                assert_eq!(b, Breach::TotalLoss);
            }
        }
    }

    #[test]
    fn the_portfolio_adds_instruments_on_one_scale() {
        // Instrument 0 counts money at 7 decimals, instrument 2 at 6; the portfolio at 7.
        let mut w = LossWatch::new(
            3,
            LossLimits {
                max_total_loss: Some(100_000_000), // 10.0
                ..LossLimits::OFF
            },
            7,
        );
        w.watch(
            0,
            LossLimits {
                max_drawdown: Some(60_000_000), // 6.0
                ..LossLimits::OFF
            },
            7,
        );
        w.watch(2, LossLimits::OFF, 6);
        assert!(!w.is_off());
        assert_eq!(w.observe(1, 1, -1 << 100), None, "not watched");
        assert_eq!(w.observe(0, 1, -40_000_000), None); // −4.0
        assert_eq!(w.observe(2, 2, -5_000_000), None); // −5.0: −9.0 in all
        assert_eq!(w.total(), -90_000_000);
        // Instrument 0 recovers to −3.5 and instrument 2 falls to −6.5: −10.0.
        assert_eq!(w.observe(0, 3, -35_000_000), None);
        assert_eq!(w.observe(2, 4, -6_500_000), Some(Breach::TotalLoss));
        assert_eq!(w.portfolio_breach(), Some((Breach::TotalLoss, 4)));
        // Instrument 0's own drawdown of 6.0 from its peak (zero) comes later, and counts.
        assert_eq!(w.observe(0, 5, -60_000_000), Some(Breach::Drawdown));
        assert_eq!(w.breach_of(0), Some((Breach::Drawdown, 5)));
        assert_eq!(w.breach_of(2), None);
        assert_eq!(w.breaches(), (1, 1));
        assert!(LossWatch::new(2, LossLimits::OFF, 0).is_off());
    }

    #[test]
    fn drawdown_is_measured_from_the_peak() {
        let mut g = LossGuard::new(LossLimits {
            max_drawdown: Some(30),
            ..LossLimits::OFF
        });
        for (t, net) in [(1, 10), (2, 40), (3, 20), (4, 35), (5, 11)] {
            assert_eq!(g.observe(t, net), None, "at {t}");
        }
        assert_eq!((g.peak(), g.drawdown()), (40, 29));
        assert_eq!(g.observe(6, 10), Some(Breach::Drawdown));
        // From zero: a guard that only ever lost measures the drawdown from the start.
        let mut g = LossGuard::new(LossLimits {
            max_drawdown: Some(30),
            ..LossLimits::OFF
        });
        assert_eq!(g.observe(1, -30), Some(Breach::Drawdown));
        let mut off = LossGuard::new(LossLimits::OFF);
        assert_eq!(off.observe(1, i128::MIN / 2), None);
    }

    #[test]
    fn round_trips_close_at_zero_and_through_it() {
        let mut r = RoundTrips::new();
        // Open long at net 0 (before the fill); the opening fee takes the net to −2.
        r.on_fill((Qty(0), 0), (Qty(5), -2));
        r.on_fill((Qty(5), -2), (Qty(8), -3));
        // Close: net +17, a win of 17.
        r.on_fill((Qty(8), -3), (Qty(0), 17));
        // Open short, then flip long: the flip closes a loss of 9 and opens the next at 8.
        r.on_fill((Qty(0), 17), (Qty(-4), 16));
        r.on_fill((Qty(-4), 16), (Qty(2), 8));
        r.on_fill((Qty(2), 8), (Qty(0), 8));
        assert_eq!(
            *r.edge(),
            Edge {
                wins: 1,
                losses: 2,
                won: 17,
                lost: 9,
            }
        );
        // W = 1/3, R = 17 / 4.5: kelly = 1/3 − (2/3)(4.5/17).
        let k = r.edge().kelly().unwrap();
        assert!(
            (k - (1.0 / 3.0 - 2.0 / 3.0 * 4.5 / 17.0)).abs() < 1e-12,
            "{k}"
        );
        assert_eq!(Edge::default().kelly(), None);
    }

    #[test]
    fn sizes_are_fixed_a_fraction_of_equity_or_kelly() {
        // Money 1e-7 USDT, price 0.01, qty 0.00001 BTC; capital 10 000 USDT.
        let capital = 10_000 * 10_000_000i128;
        let px = Px(5_000_000); // 50 000.00
        let (floor, step) = (Qty(100), Qty(10));
        let fixed = Sizer::new(
            Sizing::Fixed,
            capital,
            floor,
            step,
            Qty(10_000),
            Qty(20_000),
        );
        assert!(fixed.is_fixed());
        assert_eq!(fixed.size(-capital, px), Qty(100));
        // 1 % of 10 000 USDT = 100 USDT = 0.002 BTC at 50 000.
        let frac = Sizer::new(
            Sizing::Fraction {
                fraction_ppm: 10_000,
            },
            capital,
            floor,
            step,
            Qty(10_000),
            Qty(20_000),
        );
        assert_eq!(frac.size(0, px), Qty(200));
        // Equity 9 000 USDT (a loss of 1 000): 90 USDT = 0.0018 BTC.
        assert_eq!(frac.size(-1_000 * 10_000_000, px), Qty(180));
        // 0.00199998 BTC rounds down to the step.
        assert_eq!(frac.size(0, Px(5_000_050)), Qty(190));
        assert_eq!(frac.size(-capital, px), Qty::ZERO);
        // Capped by the order limit (on the step).
        let capped = Sizer::new(
            Sizing::Fraction { fraction_ppm: PPM },
            capital,
            floor,
            step,
            Qty(1_005),
            Qty(20_000),
        );
        assert_eq!(capped.size(0, px), Qty(1_000));
        let mut kelly = Sizer::new(
            Sizing::Kelly {
                scale_ppm: 500_000,
                max_fraction_ppm: 20_000,
                min_trades: 4,
            },
            capital,
            floor,
            step,
            Qty(10_000),
            Qty(20_000),
        );
        // Three wins of 30 and one loss of 10: W = 0.75, R = 3, kelly = 0.75 − 0.25/3 = 2/3.
        for (i, pnl) in [30, 30, -10, 30].into_iter().enumerate() {
            assert_eq!(kelly.size(0, px), floor, "the floor before {i} trips");
            let base = i as i128 * 100;
            kelly.on_fill((Qty(0), base), (Qty(10), base));
            kelly.on_fill((Qty(10), base), (Qty(0), base + pnl));
        }
        // Half Kelly is 1/3, capped at 2 %: 200 USDT = 0.004 BTC.
        assert_eq!(kelly.size(0, px), Qty(400));
        // A looser cap: a third of 10 000 USDT at 50 000 = 0.0666.. BTC, to the step.
        let mut loose = kelly;
        loose.sizing = Sizing::Kelly {
            scale_ppm: 500_000,
            max_fraction_ppm: PPM,
            min_trades: 4,
        };
        assert_eq!(loose.size(0, px), Qty(6_660));
        // A negative edge sizes at the floor.
        for _ in 0..10 {
            kelly.on_fill((Qty(0), 0), (Qty(-10), 0));
            kelly.on_fill((Qty(-10), 0), (Qty(0), -50));
        }
        assert!(kelly.round_trips().edge().kelly().unwrap() < 0.0);
        assert_eq!(kelly.size(0, px), floor);
    }
}
