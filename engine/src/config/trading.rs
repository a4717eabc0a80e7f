//! The typed trading settings: which strategy, its risk limits, which venue. Built by
//! [`Config::validate`](super::Config::validate) from `[strategy]`, `[risk]` and `[gateway]`,
//! with every decimal parsed there, once.
//!
//! Quantities and notionals are kept as exact [`Decimal`]s because each instrument counts in its
//! own units; [`TradingSpec::in_units`] converts them for one instrument, exactly or with an error
//! that says the instrument cannot express them. This is the one place config values become
//! instrument units: the strategy stage and the venue both take the result.

use pinion_core::{Decimal, DecimalError, InstrumentSpec, Px, Qty, Venue};
use pinion_strategy::{
    DeriskParams, FairPrice, FlattenParams, GridParams, GridSpacing, ImbalanceParams, LossLimits,
    MarketMakingParams, MomentumParams, OrderSide, PairsParams, PriceSource, QuoteChaseParams,
    RiskLimits, RsiFilter, Sizer, Sizing, SpreadCaptureParams,
};

pub use pinion_strategy::StrategyParams;

/// The strategy a config selects, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategySpec {
    /// `kind = "imbalance"`: join the touch on the side the book leans towards.
    Imbalance(ImbalanceSpec),
    /// `kind = "market-making"`: quote both sides around a fair price, skewed by inventory.
    MarketMaking(MarketMakingSpec),
    /// `kind = "spread-capture"`: quote inside a wide spread.
    SpreadCapture(SpreadCaptureSpec),
    /// `kind = "quote-chase"`: work a quantity as a maker at the touch.
    QuoteChase(QuoteChaseSpec),
    /// `kind = "momentum"`: short against long moving averages.
    Momentum(MomentumSpec),
    /// `kind = "grid"`: buy low and sell high on fixed price levels.
    Grid(GridSpec),
    /// `kind = "pairs"`: two instruments traded together on the ratio of their prices.
    Pairs(PairsSpec),
}

/// The pairs strategy's parameters, checked (see [`pinion_strategy::pairs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairsSpec {
    /// Distance of the ratio from its mean that opens the pair, ppm.
    pub entry_ppm: i64,
    /// Distance within which it closes, ppm (below `entry_ppm`).
    pub exit_ppm: i64,
    /// Sample length, event-time ns.
    pub sample_ns: u64,
    /// Length of the ratio's mean, samples.
    pub mean_samples: u32,
    /// Samples before the pair may open.
    pub warmup_samples: u32,
    /// Each leg's size in its quote asset.
    pub notional: Decimal,
    /// Wait after a refused order, event-time ns.
    pub cooldown_ns: u64,
    /// Age beyond which a leg's book is not traded on, event-time ns.
    pub max_age_ns: u64,
}

/// The market-making strategy's parameters, checked (distances in ppm of a price).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketMakingSpec {
    /// What the quotes are centred on.
    pub fair: FairPrice,
    /// Distance of the innermost quotes from the centre, ppm.
    pub half_spread_ppm: i64,
    /// Shift of the centre at a full position, ppm.
    pub skew_ppm: i64,
    /// Move of the fair price that moves the quotes, ppm.
    pub requote_ppm: i64,
    /// Quotes per side.
    pub levels: usize,
    /// Extra distance of each further level, ppm.
    pub level_step_ppm: i64,
    /// Size of each quote.
    pub order_qty: Decimal,
}

/// The spread-capture strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpreadCaptureSpec {
    /// Spread at or above which it quotes, ppm of the mid.
    pub enter_spread_ppm: i64,
    /// Spread below which it steps back, ppm.
    pub exit_spread_ppm: i64,
    /// Ticks inside the touch.
    pub improve_ticks: i64,
    /// Size of each quote.
    pub order_qty: Decimal,
}

/// The quote-chasing strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteChaseSpec {
    /// Side of the first chase.
    pub side: OrderSide,
    /// Quantity each chase works.
    pub qty: Decimal,
    /// Ticks the order improves on the touch.
    pub improve_ticks: i64,
    /// Absolute price limit.
    pub limit_price: Option<Decimal>,
    /// Limit relative to the touch at the chase's start, ppm.
    pub limit_ppm: Option<i64>,
    /// Event time after which a chase gives up, ns.
    pub give_up_ns: u64,
    /// Start the next chase when one ends.
    pub cycle: bool,
}

/// The momentum strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MomentumSpec {
    /// Which prices are sampled.
    pub source: PriceSource,
    /// Sample length, event-time ns.
    pub sample_ns: u64,
    /// Samples of the short average.
    pub short_samples: usize,
    /// Samples of the long average.
    pub long_samples: usize,
    /// Gap between the averages that makes a signal, ppm.
    pub min_gap_ppm: i64,
    /// The RSI filter, if any.
    pub rsi: Option<RsiFilter>,
    /// Size of the target position.
    pub order_qty: Decimal,
}

/// The grid strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSpec {
    /// The lowest level's price.
    pub lower: Decimal,
    /// The highest level's price.
    pub upper: Decimal,
    /// Number of levels.
    pub levels: usize,
    /// How they are spaced.
    pub spacing: GridSpacing,
    /// Size of each order.
    pub order_qty: Decimal,
}

/// The imbalance strategy's parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImbalanceSpec {
    /// Levels per side the imbalance is taken over.
    pub levels: usize,
    /// Entry threshold in per-mille of imbalance (`1..=1000`).
    pub enter_permille: i64,
    /// Size of each order.
    pub order_qty: Decimal,
    /// A working order older than this (event time) is cancelled, ns.
    pub stale_after_ns: u64,
}

/// The pre-trade risk limits, checked; quantities in the instrument's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskSpec {
    /// Largest quantity of one order.
    pub max_order_qty: Decimal,
    /// Largest notional (price × quantity, in the quote asset) of one order.
    pub max_notional: Decimal,
    /// Largest absolute position.
    pub max_position: Decimal,
    /// Most orders open at once.
    pub max_open_orders: u32,
    /// Sustained order rate, orders per second.
    pub orders_per_second: u32,
    /// Orders that may go at once after a quiet spell.
    pub order_burst: u32,
    /// Largest distance of a limit price from the mid, basis points.
    pub price_band_bps: u32,
    /// Start with the kill switch on.
    pub kill_switch: bool,
    /// Loss limits of each instrument.
    pub loss: LossSpec,
    /// Loss limits of all instruments together.
    pub portfolio: LossSpec,
    /// How orders are sized.
    pub sizing: SizingSpec,
    /// What a loss or drawdown limit reached does after the kill.
    pub on_loss_limit: OnLossLimit,
    /// How a flatten closes a position.
    pub flatten: FlattenSpec,
    /// The de-risk rule, if on.
    pub derisk: Option<DeriskSpec>,
}

/// `risk.on_loss_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLossLimit {
    /// Kill: no new orders, open ones cancelled, positions left.
    #[default]
    Stop,
    /// Kill, then flatten every instrument.
    Flatten,
}

/// `[risk.flatten]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlattenSpec {
    /// Largest closing order (`None`: `max_order_qty`).
    pub slice_qty: Option<Decimal>,
    /// How long a run may take, event time, ns.
    pub deadline_ns: u64,
    /// How far through the touch closing orders are priced, ppm.
    pub slippage_ppm: u32,
}

impl Default for FlattenSpec {
    fn default() -> Self {
        Self {
            slice_qty: None,
            deadline_ns: 30_000_000_000,
            slippage_ppm: 1_000,
        }
    }
}

/// `[risk.derisk]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeriskSpec {
    /// The largest exposure, ppm of equity.
    pub above_ppm: u32,
    /// The share of the position a de-risk closes, ppm.
    pub by_ppm: u32,
    /// The capital equity starts from, quote asset.
    pub capital: Decimal,
}

/// Loss limits in the quote asset, checked (each positive); `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LossSpec {
    /// Largest loss of net PnL within a UTC day of event time.
    pub max_daily_loss: Option<Decimal>,
    /// Largest loss of net PnL since the start.
    pub max_total_loss: Option<Decimal>,
    /// Largest fall of net PnL from its highest.
    pub max_drawdown: Option<Decimal>,
}

impl LossSpec {
    /// Whether every limit is off.
    pub const fn is_off(&self) -> bool {
        self.max_daily_loss.is_none()
            && self.max_total_loss.is_none()
            && self.max_drawdown.is_none()
    }

    /// The limits in money units of `10^-decimals` of the quote asset; an error when one has
    /// a digit finer than that.
    pub fn at_scale(&self, decimals: u8) -> Result<LossLimits, DecimalError> {
        let units = |d: Option<Decimal>| d.map(|d| money(d, decimals)).transpose();
        Ok(LossLimits {
            max_daily_loss: units(self.max_daily_loss)?,
            max_total_loss: units(self.max_total_loss)?,
            max_drawdown: units(self.max_drawdown)?,
        })
    }

    /// The limits on the finest scale of `decimals` and their own, and that scale: what the
    /// portfolio's figures are added up on, so no limit has to be rounded.
    pub fn at_least_scale(&self, decimals: u8) -> (LossLimits, u8) {
        let own = [self.max_daily_loss, self.max_total_loss, self.max_drawdown]
            .into_iter()
            .flatten()
            .map(|d| {
                (0..=MAX_SCALE)
                    .find(|&k| d.in_units(k).is_ok())
                    .unwrap_or(MAX_SCALE)
            })
            .max()
            .unwrap_or(0);
        let scale = decimals.max(own);
        let limits = self.at_scale(scale).unwrap_or(LossLimits {
            // Unreachable: every limit is expressible at `scale` by construction.
            max_daily_loss: Some(0),
            max_total_loss: Some(0),
            max_drawdown: Some(0),
        });
        (limits, scale)
    }
}

/// The finest scale a config decimal can have.
const MAX_SCALE: u8 = pinion_core::decimal::MAX_DECIMALS;

/// `d` as a count of `10^-decimals` units of money, in `i128` (saturating, so a limit beyond
/// any account is simply never reached); an error when `d` is finer than that.
fn money(d: Decimal, decimals: u8) -> Result<i128, DecimalError> {
    let (k, v) = (0..=decimals.min(MAX_SCALE))
        .find_map(|k| d.in_units(k).ok().map(|v| (k, v)))
        .ok_or(DecimalError::TooPrecise(decimals))?;
    Ok(pinion_strategy::money::rescale(i128::from(v), k, decimals))
}

/// How orders are sized, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SizingSpec {
    /// The rule.
    pub sizing: Sizing,
    /// Starting capital per instrument in the quote asset (set for every rule but `Fixed`).
    pub capital: Option<Decimal>,
}

/// One instrument's money rules in its own units: what [`TradingSpec::money_in_units`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyRules {
    /// The instrument's loss limits, in its money units.
    pub loss: LossLimits,
    /// Its order sizing.
    pub sizer: Sizer,
    /// How a flatten closes its position.
    pub flatten: FlattenParams,
    /// Its de-risk rule, if on (capital in its money units).
    pub derisk: Option<DeriskParams>,
}

/// Where orders go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueSpec {
    /// `venue = "sim"`: the in-process simulated venue, with its models.
    Sim(super::SimSpec),
}

/// One strategy instance (`[strategy]`, or one of several `[[strategy]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Its name (`[[strategy]] name`, or a lone `[strategy]`'s kind).
    pub name: String,
    /// The symbols it trades (`None`: every instrument that has a book).
    pub instruments: Option<Vec<String>>,
    /// Whether it set limits of its own (`[strategy.risk]`, unless that holds only
    /// `[strategy.risk.sizing]`): then its orders pass a gate of its own before the account's.
    pub own_budget: bool,
    /// Whether it sizes its orders itself (`[strategy.risk.sizing]`, in `trading.risk.sizing`),
    /// from its own capital and fills; else its orders take the instrument's size.
    pub own_sizing: bool,
    /// Its strategy, its limits (the account's where it set none) and the venue.
    pub trading: TradingSpec,
}

impl InstanceSpec {
    /// Whether it trades the instrument `symbol` of `venue`.
    pub fn trades(&self, venue: Venue, symbol: &str) -> bool {
        self.instruments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| names_instrument(e, venue, symbol)))
    }

    /// Whether it is a pairs instance (which trades its two `instruments` together).
    pub fn is_pairs(&self) -> bool {
        matches!(self.trading.strategy, StrategySpec::Pairs(_))
    }
}

/// Whether an `instruments` entry names the instrument `symbol` of `venue`: a bare symbol
/// names it on every venue, `venue:SYMBOL` on that venue only (both case-insensitive).
pub fn names_instrument(entry: &str, venue: Venue, symbol: &str) -> bool {
    match entry.split_once(':') {
        Some((v, s)) => v.eq_ignore_ascii_case(venue.name()) && s.eq_ignore_ascii_case(symbol),
        None => entry.eq_ignore_ascii_case(symbol),
    }
}

/// The strategy, its risk limits and the venue of one instance (the first instance's with the
/// account's `[risk]`: [`Settings::trading`](super::Settings::trading)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingSpec {
    /// The strategy.
    pub strategy: StrategySpec,
    /// Its risk limits.
    pub risk: RiskSpec,
    /// The venue.
    pub venue: VenueSpec,
}

impl TradingSpec {
    /// The strategy's parameters and the risk limits in the units of `spec`; an error when the
    /// instrument's units cannot express a configured quantity exactly (or it overflows).
    pub fn in_units(
        &self,
        spec: &InstrumentSpec,
    ) -> Result<(StrategyParams, RiskLimits), DecimalError> {
        let limits = self.risk.in_units(spec)?;
        let qty = |d: Decimal| d.in_units(spec.qty_decimals).map(Qty);
        let px = |d: Decimal| d.in_units(spec.price_decimals).map(Px);
        let (max_position, tick) = (limits.max_position, spec.tick);
        let params = match self.strategy {
            StrategySpec::Imbalance(im) => StrategyParams::Imbalance(ImbalanceParams {
                levels: im.levels,
                enter_permille: im.enter_permille,
                order_qty: qty(im.order_qty)?,
                max_position,
                stale_after_ns: im.stale_after_ns,
            }),
            StrategySpec::MarketMaking(m) => StrategyParams::MarketMaking(MarketMakingParams {
                fair: m.fair,
                half_spread_ppm: m.half_spread_ppm,
                skew_ppm: m.skew_ppm,
                requote_ppm: m.requote_ppm,
                levels: m.levels,
                level_step_ppm: m.level_step_ppm,
                order_qty: qty(m.order_qty)?,
                max_position,
                tick,
            }),
            StrategySpec::SpreadCapture(c) => StrategyParams::SpreadCapture(SpreadCaptureParams {
                enter_spread_ppm: c.enter_spread_ppm,
                exit_spread_ppm: c.exit_spread_ppm,
                improve_ticks: c.improve_ticks,
                order_qty: qty(c.order_qty)?,
                max_position,
                tick,
            }),
            StrategySpec::QuoteChase(c) => StrategyParams::QuoteChase(QuoteChaseParams {
                side: c.side,
                qty: qty(c.qty)?,
                improve_ticks: c.improve_ticks,
                limit_px: c.limit_price.map(px).transpose()?,
                limit_ppm: c.limit_ppm,
                give_up_ns: c.give_up_ns,
                cycle: c.cycle,
                max_position,
                tick,
            }),
            StrategySpec::Momentum(m) => StrategyParams::Momentum(MomentumParams {
                source: m.source,
                sample_ns: m.sample_ns,
                short_samples: m.short_samples,
                long_samples: m.long_samples,
                min_gap_ppm: m.min_gap_ppm,
                rsi: m.rsi,
                order_qty: qty(m.order_qty)?,
                max_position,
            }),
            StrategySpec::Grid(g) => StrategyParams::Grid(GridParams {
                lower: px(g.lower)?,
                upper: px(g.upper)?,
                levels: g.levels,
                spacing: g.spacing,
                order_qty: qty(g.order_qty)?,
                max_position,
                tick,
            }),
            StrategySpec::Pairs(c) => StrategyParams::Pairs(PairsParams {
                entry_ppm: c.entry_ppm,
                exit_ppm: c.exit_ppm,
                sample_ns: c.sample_ns,
                mean_samples: c.mean_samples,
                warmup_samples: c.warmup_samples,
                notional: money(
                    c.notional,
                    spec.price_decimals.saturating_add(spec.qty_decimals),
                )?,
                step: spec.step,
                max_position,
                cooldown_ns: c.cooldown_ns,
                max_age_ns: c.max_age_ns,
            }),
        };
        Ok((params, limits))
    }

    /// The loss limits and the sizing of one instrument in the units of `spec` (money in units
    /// of `10^-(price_decimals + qty_decimals)` of the quote asset); an error when they cannot
    /// be expressed.
    pub fn money_in_units(&self, spec: &InstrumentSpec) -> Result<MoneyRules, DecimalError> {
        let money = spec.price_decimals.saturating_add(spec.qty_decimals);
        let limits = self.risk.in_units(spec)?;
        // A pair sizes each leg by its notional: its floor is one lot.
        let floor = match self.order_qty() {
            Some(q) => Qty(q.in_units(spec.qty_decimals)?),
            None => spec.step,
        };
        let capital = match self.risk.sizing.capital {
            Some(c) => i128::from(c.in_units(money)?),
            None => 0,
        };
        let flatten = FlattenParams {
            slice_qty: match self.risk.flatten.slice_qty {
                Some(q) => Qty(q.in_units(spec.qty_decimals)?),
                None => limits.max_order_qty,
            },
            deadline_ns: self.risk.flatten.deadline_ns,
            slippage_ppm: self.risk.flatten.slippage_ppm,
        };
        let derisk = match self.risk.derisk {
            Some(d) => Some(DeriskParams {
                above_ppm: d.above_ppm,
                by_ppm: d.by_ppm,
                capital: i128::from(d.capital.in_units(money)?),
            }),
            None => None,
        };
        Ok(MoneyRules {
            flatten,
            derisk,
            loss: self.risk.loss.at_scale(money)?,
            sizer: Sizer::new(
                self.risk.sizing.sizing,
                capital,
                floor,
                spec.step,
                limits.max_order_qty,
                limits.max_position,
            ),
        })
    }

    /// The strategy's own order size (`None` for a pair, whose legs size by notional).
    fn order_qty(&self) -> Option<Decimal> {
        match self.strategy {
            StrategySpec::Imbalance(s) => Some(s.order_qty),
            StrategySpec::MarketMaking(s) => Some(s.order_qty),
            StrategySpec::SpreadCapture(s) => Some(s.order_qty),
            StrategySpec::QuoteChase(s) => Some(s.qty),
            StrategySpec::Momentum(s) => Some(s.order_qty),
            StrategySpec::Grid(s) => Some(s.order_qty),
            StrategySpec::Pairs(_) => None,
        }
    }
}

impl RiskSpec {
    /// The limits in the units of `spec`.
    pub fn in_units(&self, spec: &InstrumentSpec) -> Result<RiskLimits, DecimalError> {
        let notional_decimals = spec.price_decimals.saturating_add(spec.qty_decimals);
        Ok(RiskLimits {
            max_order_qty: Qty(self.max_order_qty.in_units(spec.qty_decimals)?),
            max_notional: i128::from(self.max_notional.in_units(notional_decimals)?),
            max_position: Qty(self.max_position.in_units(spec.qty_decimals)?),
            max_open_orders: self.max_open_orders,
            orders_per_sec: self.orders_per_second,
            order_burst: self.order_burst,
            price_band_bps: self.price_band_bps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::Venue;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s.as_bytes()).unwrap()
    }

    fn trading() -> TradingSpec {
        TradingSpec {
            strategy: StrategySpec::Imbalance(ImbalanceSpec {
                levels: 5,
                enter_permille: 600,
                order_qty: d("0.001"),
                stale_after_ns: 1_000_000_000,
            }),
            risk: RiskSpec {
                max_order_qty: d("0.01"),
                max_notional: d("1000"),
                max_position: d("0.1"),
                max_open_orders: 10,
                orders_per_second: 100,
                order_burst: 10,
                price_band_bps: 50,
                kill_switch: false,
                loss: LossSpec::default(),
                portfolio: LossSpec::default(),
                sizing: SizingSpec::default(),
                on_loss_limit: OnLossLimit::Stop,
                flatten: FlattenSpec::default(),
                derisk: None,
            },
            venue: VenueSpec::Sim(crate::config::SimSpec::round_trip(100_000)),
        }
    }

    #[test]
    fn converts_into_each_instruments_units() {
        let btc = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let (StrategyParams::Imbalance(p), l) = trading().in_units(&btc).unwrap() else {
            panic!("the imbalance strategy");
        };
        assert_eq!(p.order_qty, Qty(100));
        assert_eq!(p.max_position, Qty(10_000));
        assert_eq!(l.max_order_qty, Qty(1_000));
        // 1000 quote units at 2 + 5 decimals.
        assert_eq!(l.max_notional, 1_000 * 10_000_000);
        // A whole-unit step cannot express 0.001.
        let coarse = InstrumentSpec::new(Venue::BinanceSpot, "NKNUSDT", "0.0001", "1").unwrap();
        assert_eq!(
            trading().in_units(&coarse),
            Err(DecimalError::TooPrecise(0))
        );
    }

    #[test]
    fn loss_limits_and_sizing_take_the_instruments_money_units() {
        let btc = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let mut t = trading();
        t.risk.loss = LossSpec {
            max_daily_loss: Some(d("12.5")),
            max_total_loss: None,
            max_drawdown: Some(d("100")),
        };
        t.risk.sizing = SizingSpec {
            sizing: Sizing::Fraction {
                fraction_ppm: 10_000,
            },
            capital: Some(d("10000")),
        };
        let m = t.money_in_units(&btc).unwrap();
        // Money at 2 + 5 decimals: 12.5 USDT is 125 000 000 units.
        assert_eq!(
            m.loss,
            LossLimits {
                max_daily_loss: Some(125_000_000),
                max_total_loss: None,
                max_drawdown: Some(1_000_000_000),
            }
        );
        // 1 % of 10 000 USDT at 50 000.00 is 0.002 BTC; capped by max_order_qty (0.01).
        assert_eq!(m.sizer.size(0, Px(5_000_000)), Qty(200));
        assert_eq!(m.sizer.size(0, Px(50_000)), Qty(1_000));
        // The portfolio's limits on a finer common scale, and beyond what an i64 holds.
        assert_eq!(
            t.risk.loss.at_scale(9).unwrap().max_daily_loss,
            Some(12_500_000_000)
        );
        assert_eq!(
            t.risk.loss.at_scale(20).unwrap().max_drawdown,
            Some(100 * 10i128.pow(20))
        );
        assert_eq!(t.risk.loss.at_scale(0), Err(DecimalError::TooPrecise(0)));
        // The finest of the instruments' scale and the limits' own: 12.5 needs one decimal.
        assert_eq!(t.risk.loss.at_least_scale(0).1, 1);
        assert_eq!(t.risk.loss.at_least_scale(0).0.max_daily_loss, Some(125));
        assert_eq!(t.risk.loss.at_least_scale(7).1, 7);
        // Fixed sizing: the strategy's own size.
        t.risk.sizing = SizingSpec::default();
        let m = t.money_in_units(&btc).unwrap();
        assert!(m.sizer.is_fixed());
        assert_eq!(m.sizer.size(0, Px(5_000_000)), Qty(100));
    }

    #[test]
    fn grid_and_chase_prices_take_the_instruments_price_units() {
        let btc = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        let mut t = trading();
        t.strategy = StrategySpec::Grid(GridSpec {
            lower: d("60000"),
            upper: d("62000.5"),
            levels: 5,
            spacing: GridSpacing::Geometric,
            order_qty: d("0.002"),
        });
        let (StrategyParams::Grid(g), _) = t.in_units(&btc).unwrap() else {
            panic!("the grid strategy");
        };
        assert_eq!(
            (g.lower, g.upper, g.tick),
            (Px(6_000_000), Px(6_200_050), Px(1))
        );
        assert_eq!((g.order_qty, g.max_position), (Qty(200), Qty(10_000)));
        t.strategy = StrategySpec::QuoteChase(QuoteChaseSpec {
            side: OrderSide::Sell,
            qty: d("0.001"),
            improve_ticks: 1,
            limit_price: Some(d("61000.001")),
            limit_ppm: None,
            give_up_ns: 1,
            cycle: false,
        });
        // A limit finer than the tick cannot be expressed.
        assert_eq!(t.in_units(&btc), Err(DecimalError::TooPrecise(2)));
    }
}
