//! `[strategy]`, `[risk]` and `[gateway]`: the typed [`TradingSpec`], with every decimal parsed
//! here, once.

use pinion_core::Decimal;

use pinion_strategy::grid::MAX_GRID_LEVELS;
use pinion_strategy::market_making::MAX_LADDER;
use pinion_strategy::momentum::MAX_SAMPLES;
use pinion_strategy::money::PPM;
use pinion_strategy::{FairPrice, GridSpacing, OrderSide, PriceSource, RsiFilter, Sizing};

use super::super::strategies::{
    GridConfig, MarketMakingConfig, MomentumConfig, PairsConfig, QuoteChaseConfig,
    SpreadCaptureConfig,
};
use super::super::trading::{
    DeriskSpec, FlattenSpec, GridSpec, ImbalanceSpec, InstanceSpec, LossSpec, MarketMakingSpec,
    MomentumSpec, OnLossLimit, PairsSpec, QuoteChaseSpec, RiskSpec, SizingSpec, SpreadCaptureSpec,
    StrategySpec, TradingSpec,
};
use super::super::{Config, SizingConfig, StrategyConfig};
use super::Problems;

/// A decimal that must be above zero; `None` (and a problem) otherwise.
fn positive_decimal(p: &mut Problems, key: &str, s: &str) -> Option<Decimal> {
    match Decimal::parse(s.as_bytes()) {
        Err(e) => {
            p.add(key, format!("{s:?} is not a plain decimal: {e}"));
            None
        }
        Ok(d) if !d.is_positive() => {
            p.add(key, format!("{s:?} must be positive"));
            None
        }
        Ok(d) => Some(d),
    }
}

/// The strategy, its risk limits and the venue; `None` when any of them has a problem (each
/// problem is reported).
pub(super) fn trading(cfg: &Config, p: &mut Problems) -> Option<TradingSpec> {
    let strategy = strategy(cfg, p);
    let risk = risk(cfg, p);
    let venue = super::venue::venue(cfg, p);
    Some(TradingSpec {
        strategy: strategy?,
        risk: risk?,
        venue: venue?,
    })
}

/// The most strategy instances one config may run (each instance's number is one byte of
/// every order's reason, and a slice of each instrument's client ids).
pub const MAX_INSTANCES: usize = 32;

/// Every strategy instance (the `[strategy]` table, or each `[[strategy]]`), each with its
/// parameters and its own budget over `account` (the `[risk]` limits); empty when any has a
/// problem (each reported, an instance's keys as `strategy[N].…`).
pub(super) fn instances(
    cfg: &Config,
    account: Option<&TradingSpec>,
    p: &mut Problems,
) -> Vec<InstanceSpec> {
    let all: Vec<&StrategyConfig> = std::iter::once(&cfg.strategy)
        .chain(cfg.strategy.more.iter())
        .collect();
    let several = all.len() > 1;
    if all.len() > MAX_INSTANCES {
        p.add(
            "strategy",
            format!("{} instances; at most {MAX_INSTANCES}", all.len()),
        );
        return Vec::new();
    }
    let before = p.0.len();
    let mut out = Vec::with_capacity(all.len());
    for (k, st) in all.iter().enumerate() {
        let prefix = if several {
            format!("strategy[{k}]")
        } else {
            "strategy".to_owned()
        };
        let mut own = Problems(Vec::new());
        let spec = if k == 0 {
            // Checked (and reported) with the account's trading spec.
            account.map(|a| a.strategy)
        } else {
            strategy_of(st, &mut own)
        };
        let name = match (&st.name, several) {
            (Some(n), _)
                if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                own.add(
                    "strategy.name",
                    format!("{n:?}: 1 to 32 visible characters, no spaces"),
                );
                None
            }
            (Some(n), _) => Some(n.clone()),
            (None, false) => Some(st.kind.clone()),
            (None, true) => {
                own.add(
                    "strategy.name",
                    "several [[strategy]] instances: each needs a name",
                );
                None
            }
        };
        if let Some(n) = &name
            && out.iter().any(|i: &InstanceSpec| &i.name == n)
        {
            own.add(
                "strategy.name",
                format!("{n:?} is the name of an instance before"),
            );
        }
        if k > 0 && st.protect != cfg.strategy.protect {
            own.add(
                "strategy.protect",
                "the exits are the account's: set `protect` on the first instance only",
            );
        }
        if let Some(list) = &st.instruments
            && list.is_empty()
        {
            own.add(
                "strategy.instruments",
                "empty: leave it out to trade every instrument",
            );
        }
        for entry in st.instruments.iter().flatten() {
            if let Some((venue, _)) = entry.split_once(':')
                && venue
                    .to_ascii_lowercase()
                    .parse::<pinion_core::Venue>()
                    .is_err()
            {
                own.add(
                    "strategy.instruments",
                    format!("{entry:?}: {venue:?} is not a venue (e.g. \"bybit-spot:BTCUSDT\")"),
                );
            }
        }
        if st.kind == "pairs" {
            let legs = st.instruments.as_deref().unwrap_or_default();
            if legs.len() != 2 || legs[0].eq_ignore_ascii_case(&legs[1]) {
                own.add(
                    "strategy.instruments",
                    format!(
                        "a pairs strategy trades exactly two instruments, its legs in order \
                         (e.g. [\"bybit-spot:BTCUSDT\", \"bybit-linear:BTCUSDT\"]); this lists {legs:?}"
                    ),
                );
            }
            if st.risk.as_ref().is_some_and(|r| r.sizing.is_some()) {
                own.add(
                    "strategy.risk.sizing",
                    "a pairs strategy sizes each leg by its notional ([strategy.pairs] notional)",
                );
            }
        }
        let mut risk = account.and_then(|a| instance_risk(&a.risk, st.risk.as_ref(), &mut own));
        for problem in own.0 {
            let key = match problem.key.strip_prefix("strategy") {
                Some(rest) => format!("{prefix}{rest}"),
                None => problem.key,
            };
            p.add(key, problem.message);
        }
        let own_sizing = st.risk.as_ref().and_then(|r| r.sizing.as_ref());
        if let Some(c) = own_sizing {
            // Checked here, where its keys are named with the instance's index.
            match (
                sizing(c, &format!("{prefix}.risk.sizing"), p),
                risk.as_mut(),
            ) {
                (Some(s), Some(r)) => r.sizing = s,
                _ => risk = None,
            }
        }
        if let (Some(name), Some(strategy), Some(risk), Some(account)) = (name, spec, risk, account)
        {
            out.push(InstanceSpec {
                name,
                instruments: st.instruments.clone(),
                // A table of the sizing alone is no budget: the account's gate holds the rest.
                own_budget: st
                    .risk
                    .as_ref()
                    .is_some_and(|r| r.sizing.is_none() || r.sets_limits()),
                own_sizing: own_sizing.is_some(),
                trading: TradingSpec {
                    strategy,
                    risk,
                    venue: account.venue,
                },
            });
        }
    }
    if p.0.len() != before {
        out.clear();
    }
    out
}

/// The account's limits with an instance's own in place of those it sets.
fn instance_risk(
    account: &RiskSpec,
    own: Option<&super::super::InstanceRiskConfig>,
    p: &mut Problems,
) -> Option<RiskSpec> {
    let mut risk = *account;
    // The account's loss limits are the instrument's (its net position's); an instance's are
    // its own, or none.
    risk.loss = LossSpec::default();
    let Some(own) = own else {
        return Some(risk);
    };
    let before = p.0.len();
    let decimal = |p: &mut Problems, key: &str, v: &Option<String>, into: &mut Decimal| {
        if let Some(s) = v
            && let Some(d) = positive_decimal(p, key, s)
        {
            *into = d;
        }
    };
    decimal(
        p,
        "strategy.risk.max_order_qty",
        &own.max_order_qty,
        &mut risk.max_order_qty,
    );
    decimal(
        p,
        "strategy.risk.max_notional",
        &own.max_notional,
        &mut risk.max_notional,
    );
    decimal(
        p,
        "strategy.risk.max_position",
        &own.max_position,
        &mut risk.max_position,
    );
    for (key, v, into) in [
        (
            "strategy.risk.max_open_orders",
            own.max_open_orders,
            &mut risk.max_open_orders,
        ),
        (
            "strategy.risk.orders_per_second",
            own.orders_per_second,
            &mut risk.orders_per_second,
        ),
        (
            "strategy.risk.order_burst",
            own.order_burst,
            &mut risk.order_burst,
        ),
    ] {
        match v {
            Some(0) => p.add(key, "must be at least 1"),
            Some(n) => *into = n,
            None => {}
        }
    }
    risk.loss = loss_limits(
        p,
        "strategy.risk",
        [&own.max_daily_loss, &own.max_total_loss, &own.max_drawdown],
    );
    (p.0.len() == before).then_some(risk)
}

fn strategy(cfg: &Config, p: &mut Problems) -> Option<StrategySpec> {
    strategy_of(&cfg.strategy, p)
}

fn strategy_of(st: &StrategyConfig, p: &mut Problems) -> Option<StrategySpec> {
    let before = p.0.len();
    let order_qty = positive_decimal(p, "strategy.order_qty", &st.order_qty);
    let tables = [
        ("market_making", "market-making", st.market_making.is_some()),
        (
            "spread_capture",
            "spread-capture",
            st.spread_capture.is_some(),
        ),
        ("quote_chase", "quote-chase", st.quote_chase.is_some()),
        ("momentum", "momentum", st.momentum.is_some()),
        ("grid", "grid", st.grid.is_some()),
        ("pairs", "pairs", st.pairs.is_some()),
    ];
    for (table, kind, present) in tables {
        if present && st.kind != kind {
            p.add(
                format!("strategy.{table}"),
                format!("set, but strategy.kind is {:?} (not {kind:?})", st.kind),
            );
        }
    }
    let spec = match st.kind.as_str() {
        "imbalance" => imbalance(st, p, order_qty),
        "market-making" => {
            market_making(&st.market_making.clone().unwrap_or_default(), p, order_qty)
                .map(StrategySpec::MarketMaking)
        }
        "spread-capture" => {
            spread_capture(&st.spread_capture.clone().unwrap_or_default(), p, order_qty)
                .map(StrategySpec::SpreadCapture)
        }
        "quote-chase" => quote_chase(&st.quote_chase.clone().unwrap_or_default(), p, order_qty)
            .map(StrategySpec::QuoteChase),
        "momentum" => momentum(&st.momentum.clone().unwrap_or_default(), p, order_qty)
            .map(StrategySpec::Momentum),
        "grid" => grid(&st.grid.clone().unwrap_or_default(), p, order_qty).map(StrategySpec::Grid),
        "pairs" => pairs(&st.pairs.clone().unwrap_or_default(), p).map(StrategySpec::Pairs),
        other => {
            p.add(
                "strategy.kind",
                format!(
                    "unknown strategy {other:?} (imbalance, market-making, spread-capture, \
                     quote-chase, momentum, grid, pairs)"
                ),
            );
            None
        }
    };
    if p.0.len() == before { spec } else { None }
}

fn imbalance(
    st: &StrategyConfig,
    p: &mut Problems,
    order_qty: Option<Decimal>,
) -> Option<StrategySpec> {
    if st.levels == 0 || st.levels > pinion_core::TOP_LEVELS {
        p.add(
            "strategy.levels",
            format!("{} must be 1..={}", st.levels, pinion_core::TOP_LEVELS),
        );
    }
    if !(st.threshold > 0.0 && st.threshold < 1.0) {
        p.add(
            "strategy.threshold",
            format!("{} must be strictly between 0 and 1", st.threshold),
        );
    }
    if st.stale_after_ms == 0 {
        p.add("strategy.stale_after_ms", "must be at least 1");
    }
    Some(StrategySpec::Imbalance(ImbalanceSpec {
        levels: st.levels,
        enter_permille: ((st.threshold * 1000.0).round() as i64).clamp(1, 1000),
        order_qty: order_qty?,
        stale_after_ns: st.stale_after_ms.saturating_mul(1_000_000),
    }))
}

/// A distance in basis points as parts per million: finite, `0..=10000` bps, and above zero
/// when `positive`; `None` (and a problem) otherwise.
fn bps(p: &mut Problems, key: &str, v: f64, positive: bool) -> Option<i64> {
    let ok = v.is_finite() && v <= 10_000.0 && if positive { v > 0.0 } else { v >= 0.0 };
    if !ok {
        let range = if positive { "above 0" } else { "at least 0" };
        p.add(key, format!("{v} must be {range} and at most 10000 (bps)"));
        return None;
    }
    Some((v * 100.0).round() as i64)
}

/// One of `choices` (config spelling, value); `None` (and a problem naming them) otherwise.
fn choice<T: Copy>(p: &mut Problems, key: &str, v: &str, choices: &[(&str, T)]) -> Option<T> {
    if let Some((_, t)) = choices.iter().find(|(name, _)| *name == v) {
        return Some(*t);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    p.add(key, format!("{v:?} is not one of {}", names.join(", ")));
    None
}

/// A count in `lo..=hi`; `None` (and a problem) otherwise.
fn count(p: &mut Problems, key: &str, v: usize, lo: usize, hi: usize) -> Option<usize> {
    if (lo..=hi).contains(&v) {
        Some(v)
    } else {
        p.add(key, format!("{v} must be {lo}..={hi}"));
        None
    }
}

fn market_making(
    c: &MarketMakingConfig,
    p: &mut Problems,
    order_qty: Option<Decimal>,
) -> Option<MarketMakingSpec> {
    let k = |name: &str| format!("strategy.market_making.{name}");
    let fair = choice(
        p,
        &k("fair"),
        &c.fair,
        &[
            ("mid", FairPrice::Mid),
            ("microprice", FairPrice::Microprice),
        ],
    );
    let half = bps(p, &k("half_spread_bps"), c.half_spread_bps, true);
    let skew = bps(p, &k("skew_bps"), c.skew_bps, false);
    let requote = bps(p, &k("requote_bps"), c.requote_bps, false);
    let levels = count(p, &k("levels"), c.levels, 1, MAX_LADDER);
    let step = bps(p, &k("level_step_bps"), c.level_step_bps, false);
    let (fair, half_spread_ppm, skew_ppm, requote_ppm, levels, level_step_ppm) =
        (fair?, half?, skew?, requote?, levels?, step?);
    Some(MarketMakingSpec {
        fair,
        half_spread_ppm,
        skew_ppm,
        requote_ppm,
        levels,
        level_step_ppm,
        order_qty: order_qty?,
    })
}

fn spread_capture(
    c: &SpreadCaptureConfig,
    p: &mut Problems,
    order_qty: Option<Decimal>,
) -> Option<SpreadCaptureSpec> {
    let k = |name: &str| format!("strategy.spread_capture.{name}");
    let enter = bps(p, &k("enter_spread_bps"), c.enter_spread_bps, true);
    let exit = bps(p, &k("exit_spread_bps"), c.exit_spread_bps, false);
    if let (Some(enter), Some(exit)) = (enter, exit)
        && exit > enter
    {
        p.add(
            k("exit_spread_bps"),
            format!(
                "{} must be at most enter_spread_bps ({})",
                c.exit_spread_bps, c.enter_spread_bps
            ),
        );
    }
    let improve = count(p, &k("improve_ticks"), c.improve_ticks as usize, 0, 1_000);
    let (enter_spread_ppm, exit_spread_ppm, improve_ticks) = (enter?, exit?, improve? as i64);
    Some(SpreadCaptureSpec {
        enter_spread_ppm,
        exit_spread_ppm,
        improve_ticks,
        order_qty: order_qty?,
    })
}

fn quote_chase(
    c: &QuoteChaseConfig,
    p: &mut Problems,
    order_qty: Option<Decimal>,
) -> Option<QuoteChaseSpec> {
    let k = |name: &str| format!("strategy.quote_chase.{name}");
    let side = choice(
        p,
        &k("side"),
        &c.side,
        &[("buy", OrderSide::Buy), ("sell", OrderSide::Sell)],
    );
    let improve = count(p, &k("improve_ticks"), c.improve_ticks as usize, 0, 1_000);
    let limit_price = c
        .limit_price
        .as_deref()
        .map(|s| positive_decimal(p, &k("limit_price"), s));
    let limit = bps(p, &k("limit_bps"), c.limit_bps, false);
    if c.give_up_ms == 0 {
        p.add(k("give_up_ms"), "must be at least 1");
    }
    let (side, improve_ticks, limit_bps) = (side?, improve? as i64, limit?);
    let limit_price = match limit_price {
        Some(d) => Some(d?),
        None => None,
    };
    let give_up_ns = c.give_up_ms.saturating_mul(1_000_000);
    let cycle = c.cycle;
    Some(QuoteChaseSpec {
        side,
        qty: order_qty?,
        improve_ticks,
        limit_price,
        limit_ppm: (limit_bps > 0).then_some(limit_bps),
        give_up_ns,
        cycle,
    })
}

fn momentum(
    c: &MomentumConfig,
    p: &mut Problems,
    order_qty: Option<Decimal>,
) -> Option<MomentumSpec> {
    let k = |name: &str| format!("strategy.momentum.{name}");
    let source = choice(
        p,
        &k("source"),
        &c.source,
        &[
            ("trades", PriceSource::Trades),
            ("mid", PriceSource::Mid),
            ("candles", PriceSource::Candles),
        ],
    );
    if c.sample_ms == 0 {
        p.add(k("sample_ms"), "must be at least 1");
    }
    if c.candle_ms == 0 {
        p.add(k("candle_ms"), "must be at least 1");
    }
    let long = count(p, &k("long_samples"), c.long_samples, 2, MAX_SAMPLES);
    let short = count(
        p,
        &k("short_samples"),
        c.short_samples,
        1,
        c.long_samples.saturating_sub(1).max(1),
    );
    let gap = bps(p, &k("min_gap_bps"), c.min_gap_bps, false);
    let period = count(p, &k("rsi_period"), c.rsi_period, 0, MAX_SAMPLES - 1);
    if c.rsi_overbought > 100 || c.rsi_oversold >= c.rsi_overbought {
        p.add(
            k("rsi_overbought"),
            format!(
                "oversold {} and overbought {} must satisfy oversold < overbought <= 100",
                c.rsi_oversold, c.rsi_overbought
            ),
        );
    }
    let rsi = (c.rsi_period > 0).then_some(RsiFilter {
        period: c.rsi_period,
        overbought: i64::from(c.rsi_overbought),
        oversold: i64::from(c.rsi_oversold),
    });
    let (source, long_samples, short_samples, min_gap_ppm, _) =
        (source?, long?, short?, gap?, period?);
    let sample_ns = match source {
        PriceSource::Candles => c.candle_ms,
        _ => c.sample_ms,
    }
    .saturating_mul(1_000_000);
    Some(MomentumSpec {
        source,
        sample_ns,
        short_samples,
        long_samples,
        min_gap_ppm,
        rsi,
        order_qty: order_qty?,
    })
}

fn grid(c: &GridConfig, p: &mut Problems, order_qty: Option<Decimal>) -> Option<GridSpec> {
    let k = |name: &str| format!("strategy.grid.{name}");
    let price = |p: &mut Problems, name: &str, v: &Option<String>| match v {
        Some(s) => positive_decimal(p, &k(name), s),
        None => {
            p.add(
                k(name),
                "is required for the grid (a price, as a decimal string)",
            );
            None
        }
    };
    let lower = price(p, "lower", &c.lower);
    let upper = price(p, "upper", &c.upper);
    // Both parsed as plain decimals, so as floating point they compare as written.
    let as_f64 = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<f64>().ok());
    if let (Some(_), Some(_), Some(lo), Some(hi)) =
        (lower, upper, as_f64(&c.lower), as_f64(&c.upper))
        && hi <= lo
    {
        p.add(k("upper"), format!("{hi} must be above lower ({lo})"));
    }
    let levels = count(p, &k("levels"), c.levels, 2, MAX_GRID_LEVELS);
    let spacing = choice(
        p,
        &k("spacing"),
        &c.spacing,
        &[
            ("arithmetic", GridSpacing::Arithmetic),
            ("geometric", GridSpacing::Geometric),
        ],
    );
    let (lower, upper, levels, spacing) = (lower?, upper?, levels?, spacing?);
    Some(GridSpec {
        lower,
        upper,
        levels,
        spacing,
        order_qty: order_qty?,
    })
}

fn pairs(c: &PairsConfig, p: &mut Problems) -> Option<PairsSpec> {
    let k = |name: &str| format!("strategy.pairs.{name}");
    let entry = bps(p, &k("entry_bps"), c.entry_bps, true);
    let exit = bps(p, &k("exit_bps"), c.exit_bps, false);
    if let (Some(e), Some(x)) = (entry, exit)
        && x >= e
    {
        p.add(
            k("exit_bps"),
            format!(
                "{} must be below entry_bps ({}): the pair would close as it opens",
                c.exit_bps, c.entry_bps
            ),
        );
    }
    let notional = match &c.notional {
        Some(s) => positive_decimal(p, &k("notional"), s),
        None => {
            p.add(
                k("notional"),
                "is required for pairs: each leg's size in its quote asset, as a decimal string",
            );
            None
        }
    };
    let positive = |p: &mut Problems, name: &str, v: u64| {
        if v == 0 {
            p.add(k(name), "must be at least 1");
        }
        v
    };
    let sample_ms = positive(p, "sample_ms", c.sample_ms);
    let mean_samples = positive(p, "mean_samples", u64::from(c.mean_samples));
    let max_age_ms = positive(p, "max_age_ms", c.max_age_ms);
    let (entry_ppm, exit_ppm, notional) = (entry?, exit?, notional?);
    if sample_ms == 0 || mean_samples == 0 || max_age_ms == 0 {
        return None;
    }
    Some(PairsSpec {
        entry_ppm,
        exit_ppm,
        sample_ns: sample_ms.saturating_mul(1_000_000),
        mean_samples: c.mean_samples,
        warmup_samples: c.warmup_samples,
        notional,
        cooldown_ns: c.cooldown_ms.saturating_mul(1_000_000),
        max_age_ns: max_age_ms.saturating_mul(1_000_000),
    })
}

fn risk(cfg: &Config, p: &mut Problems) -> Option<RiskSpec> {
    let rk = &cfg.risk;
    let before = p.0.len();
    let max_order_qty = positive_decimal(p, "risk.max_order_qty", &rk.max_order_qty);
    let max_position = positive_decimal(p, "risk.max_position", &rk.max_position);
    let max_notional = positive_decimal(p, "risk.max_notional", &rk.max_notional);
    if rk.order_burst == 0 {
        p.add("risk.order_burst", "must be at least 1");
    }
    if rk.max_open_orders == 0 {
        p.add("risk.max_open_orders", "must be at least 1");
    }
    if rk.orders_per_second == 0 {
        p.add("risk.orders_per_second", "must be at least 1");
    }
    if rk.price_band_bps == 0 || rk.price_band_bps > 10_000 {
        p.add(
            "risk.price_band_bps",
            format!("{} must be 1..=10000", rk.price_band_bps),
        );
    }
    let loss = loss_limits(
        p,
        "risk",
        [&rk.max_daily_loss, &rk.max_total_loss, &rk.max_drawdown],
    );
    let pf = &rk.portfolio;
    let portfolio = loss_limits(
        p,
        "risk.portfolio",
        [&pf.max_daily_loss, &pf.max_total_loss, &pf.max_drawdown],
    );
    let sizing = sizing(&rk.sizing, "risk.sizing", p);
    let on_loss_limit = match rk.on_loss_limit.as_str() {
        "stop" => Some(OnLossLimit::Stop),
        "flatten" => Some(OnLossLimit::Flatten),
        other => {
            p.add(
                "risk.on_loss_limit",
                format!("unknown action {other:?} (stop, flatten)"),
            );
            None
        }
    };
    let flatten = flatten(rk, max_order_qty, p);
    let derisk = rk
        .derisk
        .as_ref()
        .map(|d| derisk(d, sizing.and_then(|s| s.capital), p));
    if p.0.len() != before {
        return None;
    }
    Some(RiskSpec {
        max_order_qty: max_order_qty?,
        max_notional: max_notional?,
        max_position: max_position?,
        max_open_orders: rk.max_open_orders,
        orders_per_second: rk.orders_per_second,
        order_burst: rk.order_burst,
        price_band_bps: rk.price_band_bps,
        kill_switch: rk.kill_switch,
        loss,
        portfolio,
        sizing: sizing?,
        on_loss_limit: on_loss_limit?,
        flatten: flatten?,
        derisk: derisk.flatten(),
    })
}

/// `[risk.flatten]`: a positive `slice_qty` no larger than `max_order_qty`, a deadline of
/// 0.1 s to a day, a slippage of 0 to 1000 bps.
fn flatten(
    rk: &super::super::RiskConfig,
    max_order_qty: Option<Decimal>,
    p: &mut Problems,
) -> Option<FlattenSpec> {
    let c = &rk.flatten;
    let before = p.0.len();
    let slice_qty = c
        .slice_qty
        .as_deref()
        .and_then(|s| positive_decimal(p, "risk.flatten.slice_qty", s));
    if let (Some(q), Some(max), Some(s)) = (slice_qty, max_order_qty, c.slice_qty.as_deref())
        && let (Ok(q), Ok(max)) = (q.in_units(12), max.in_units(12))
        && q > max
    {
        p.add(
            "risk.flatten.slice_qty",
            format!(
                "{s:?} is above risk.max_order_qty ({:?}): the gate would refuse every slice",
                rk.max_order_qty
            ),
        );
    }
    let deadline = c.deadline_s;
    if !(deadline.is_finite() && (0.1..=86_400.0).contains(&deadline)) {
        p.add(
            "risk.flatten.deadline_s",
            format!("{deadline} must be 0.1..=86400 seconds"),
        );
    }
    let slip = c.slippage_bps;
    if !(slip.is_finite() && (0.0..=1_000.0).contains(&slip)) {
        p.add(
            "risk.flatten.slippage_bps",
            format!("{slip} must be 0..=1000"),
        );
    }
    if p.0.len() != before {
        return None;
    }
    Some(FlattenSpec {
        slice_qty,
        deadline_ns: (deadline * 1e9).round() as u64,
        slippage_ppm: (slip * 100.0).round() as u32,
    })
}

/// `[risk.derisk]`: `above_pct` above 0 (at most 10000), `by_pct` above 0 and at most 100, and a
/// positive capital, its own or `risk.sizing.capital`.
fn derisk(
    c: &super::super::DeriskConfig,
    sizing_capital: Option<Decimal>,
    p: &mut Problems,
) -> Option<DeriskSpec> {
    let before = p.0.len();
    let pct = |p: &mut Problems, key: &str, v: f64, max: f64| -> u32 {
        if v.is_finite() && v > 0.0 && v <= max && (v * 10_000.0).round() >= 1.0 {
            (v * 10_000.0).round() as u32
        } else {
            p.add(
                key,
                format!("{v} must be above 0 (at least 0.0001) and at most {max}"),
            );
            0
        }
    };
    let above_ppm = pct(p, "risk.derisk.above_pct", c.above_pct, 10_000.0);
    let by_ppm = pct(p, "risk.derisk.by_pct", c.by_pct, 100.0);
    let capital = match c.capital.as_deref() {
        Some(s) => positive_decimal(p, "risk.derisk.capital", s),
        None if sizing_capital.is_some() => sizing_capital,
        None => {
            p.add(
                "risk.derisk.capital",
                "is required unless risk.sizing.capital is set (equity is capital plus net PnL)",
            );
            None
        }
    };
    if p.0.len() != before {
        return None;
    }
    Some(DeriskSpec {
        above_ppm,
        by_ppm,
        capital: capital?,
    })
}

/// `max_daily_loss`, `max_total_loss` and `max_drawdown` under `table`: each a positive
/// decimal or left out (a problem each otherwise, and that limit off).
fn loss_limits(p: &mut Problems, table: &str, keys: [&Option<String>; 3]) -> LossSpec {
    let [daily, total, drawdown] = keys;
    let mut limit = |name: &str, v: &Option<String>| {
        v.as_deref()
            .and_then(|s| positive_decimal(p, &format!("{table}.{name}"), s))
    };
    LossSpec {
        max_daily_loss: limit("max_daily_loss", daily),
        max_total_loss: limit("max_total_loss", total),
        max_drawdown: limit("max_drawdown", drawdown),
    }
}

/// A share of one, `0 < v <= 1`, as ppm (at least 1); `None` (and a problem) otherwise.
fn share_ppm(p: &mut Problems, key: &str, v: f64) -> Option<u32> {
    let ppm = (v * f64::from(PPM)).round();
    if v.is_finite() && v > 0.0 && v <= 1.0 && ppm >= 1.0 {
        Some(ppm as u32)
    } else {
        p.add(
            key,
            format!("{v} must be above 0 (at least 0.000001) and at most 1"),
        );
        None
    }
}

/// A sizing table (`table`: `risk.sizing`, or an instance's `strategy[N].risk.sizing`), its
/// keys named under `table`.
fn sizing(c: &SizingConfig, table: &str, p: &mut Problems) -> Option<SizingSpec> {
    let k = |name: &str| format!("{table}.{name}");
    let before = p.0.len();
    let only_for = |p: &mut Problems, name: &str, set: bool, kinds: &str| {
        if set {
            p.add(
                k(name),
                format!("set, but {table}.kind is {:?} (it is for {kinds})", c.kind),
            );
        }
    };
    let kelly = c.kind == "kelly";
    let fraction = c.kind == "fraction";
    only_for(
        p,
        "capital",
        c.capital.is_some() && !kelly && !fraction,
        "fraction, kelly",
    );
    only_for(p, "fraction", c.fraction.is_some() && !fraction, "fraction");
    for (name, set) in [
        ("kelly_scale", c.kelly_scale.is_some()),
        ("max_fraction", c.max_fraction.is_some()),
        ("min_trades", c.min_trades.is_some()),
    ] {
        only_for(p, name, set && !kelly, "kelly");
    }
    let capital = if kelly || fraction {
        match c.capital.as_deref() {
            Some(s) => positive_decimal(p, &k("capital"), s),
            None => {
                p.add(
                    k("capital"),
                    format!(
                        "is required when {table}.kind is {:?} (the starting capital in the \
                         quote asset, as a decimal string)",
                        c.kind
                    ),
                );
                None
            }
        }
    } else {
        None
    };
    let sizing = match c.kind.as_str() {
        "fixed" => Some(Sizing::Fixed),
        "fraction" => match c.fraction {
            Some(f) => share_ppm(p, &k("fraction"), f)
                .map(|fraction_ppm| Sizing::Fraction { fraction_ppm }),
            None => {
                p.add(
                    k("fraction"),
                    format!("is required when {table}.kind is \"fraction\" (a share of equity)"),
                );
                None
            }
        },
        "kelly" => {
            let scale = share_ppm(p, &k("kelly_scale"), c.kelly_scale.unwrap_or(0.5));
            let max = share_ppm(p, &k("max_fraction"), c.max_fraction.unwrap_or(0.05));
            let min_trades = c.min_trades.unwrap_or(20);
            if min_trades == 0 {
                p.add(k("min_trades"), "must be at least 1");
            }
            let (scale_ppm, max_fraction_ppm) = (scale?, max?);
            Some(Sizing::Kelly {
                scale_ppm,
                max_fraction_ppm,
                min_trades,
            })
        }
        other => {
            p.add(
                k("kind"),
                format!("unknown sizing {other:?} (fixed, fraction, kelly)"),
            );
            None
        }
    };
    if p.0.len() != before {
        return None;
    }
    Some(SizingSpec {
        sizing: sizing?,
        capital,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(strategy: &str) -> Result<StrategySpec, String> {
        let text = format!("[strategy]\n{strategy}");
        let cfg = Config::parse(&text, "t.toml").map_err(|e| e.to_string())?;
        cfg.validate_for("t.toml", 2, Path::new("/nonexistent"))
            .map(|s| s.trading.strategy)
            .map_err(|e| e.to_string())
    }

    fn d(s: &str) -> Decimal {
        Decimal::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn each_kind_takes_its_table_or_its_defaults() {
        assert_eq!(
            spec(
                "kind = \"market-making\"\norder_qty = \"0.002\"\n[strategy.market_making]\nfair = \"microprice\"\nlevels = 3\nhalf_spread_bps = 0.25\n"
            ),
            Ok(StrategySpec::MarketMaking(MarketMakingSpec {
                fair: FairPrice::Microprice,
                half_spread_ppm: 25,
                skew_ppm: 100,
                requote_ppm: 50,
                levels: 3,
                level_step_ppm: 100,
                order_qty: d("0.002"),
            }))
        );
        assert_eq!(
            spec("kind = \"spread-capture\"\n"),
            Ok(StrategySpec::SpreadCapture(SpreadCaptureSpec {
                enter_spread_ppm: 100,
                exit_spread_ppm: 50,
                improve_ticks: 1,
                order_qty: d("0.001"),
            }))
        );
        assert_eq!(
            spec(
                "kind = \"quote-chase\"\n[strategy.quote_chase]\nside = \"sell\"\nlimit_price = \"61000.5\"\nlimit_bps = 0\n"
            ),
            Ok(StrategySpec::QuoteChase(QuoteChaseSpec {
                side: OrderSide::Sell,
                qty: d("0.001"),
                improve_ticks: 0,
                limit_price: Some(d("61000.5")),
                limit_ppm: None,
                give_up_ns: 2_000_000_000,
                cycle: true,
            }))
        );
        assert_eq!(
            spec("kind = \"momentum\"\n[strategy.momentum]\nrsi_period = 0\nsource = \"mid\"\n"),
            Ok(StrategySpec::Momentum(MomentumSpec {
                source: PriceSource::Mid,
                sample_ns: 100_000_000,
                short_samples: 10,
                long_samples: 50,
                min_gap_ppm: 50,
                rsi: None,
                order_qty: d("0.001"),
            }))
        );
        // Candles: the candle length is the sample, 5 minutes here; the RSI filter stays on.
        let Ok(StrategySpec::Momentum(m)) = spec(
            "kind = \"momentum\"\n[strategy.momentum]\nsource = \"candles\"\ncandle_ms = 300000\n",
        ) else {
            panic!("candles is a momentum source");
        };
        assert_eq!(
            (m.source, m.sample_ns, m.rsi.map(|r| r.period)),
            (PriceSource::Candles, 300_000_000_000, Some(14))
        );
        assert!(
            spec("kind = \"momentum\"\n[strategy.momentum]\nsource = \"candles\"\ncandle_ms = 0\n")
                .unwrap_err()
                .contains("strategy.momentum.candle_ms: must be at least 1")
        );
        assert_eq!(
            spec(
                "kind = \"grid\"\n[strategy.grid]\nlower = \"60000\"\nupper = \"62000\"\nspacing = \"geometric\"\n"
            ),
            Ok(StrategySpec::Grid(GridSpec {
                lower: d("60000"),
                upper: d("62000"),
                levels: 10,
                spacing: GridSpacing::Geometric,
                order_qty: d("0.001"),
            }))
        );
    }

    fn risk(text: &str) -> Result<RiskSpec, String> {
        let cfg = Config::parse(text, "t.toml").map_err(|e| e.to_string())?;
        cfg.validate_for("t.toml", 2, Path::new("/nonexistent"))
            .map(|s| s.trading.risk)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flatten_and_derisk_are_read_and_checked() {
        let r = risk(
            "[risk]\nmax_order_qty = \"0.01\"\non_loss_limit = \"flatten\"\n[risk.flatten]\nslice_qty = \"0.002\"\ndeadline_s = 5\nslippage_bps = 20\n[risk.derisk]\nabove_pct = 50\nby_pct = 25\ncapital = \"1000\"\n",
        )
        .unwrap();
        assert_eq!(r.on_loss_limit, OnLossLimit::Flatten);
        assert_eq!(
            r.flatten,
            FlattenSpec {
                slice_qty: Some(d("0.002")),
                deadline_ns: 5_000_000_000,
                slippage_ppm: 2_000,
            }
        );
        assert_eq!(
            r.derisk,
            Some(DeriskSpec {
                above_ppm: 500_000,
                by_ppm: 250_000,
                capital: d("1000"),
            })
        );
        // Defaults: stop, slices of max_order_qty, 30 s, 10 bps; no de-risk.
        let r = risk("").unwrap();
        assert_eq!(
            (r.on_loss_limit, r.flatten, r.derisk),
            (OnLossLimit::Stop, FlattenSpec::default(), None)
        );
        // The capital may come from the sizing.
        let r = risk(
            "[risk.sizing]\nkind = \"fraction\"\nfraction = 0.1\ncapital = \"500\"\n[risk.derisk]\nabove_pct = 80\nby_pct = 50\n",
        )
        .unwrap();
        assert_eq!(r.derisk.map(|d| d.capital), Some(d("500")));
        let e = risk(
            "[risk]\nmax_order_qty = \"0.01\"\non_loss_limit = \"panic\"\n[risk.flatten]\nslice_qty = \"0.5\"\ndeadline_s = 0\nslippage_bps = -1\n[risk.derisk]\nabove_pct = 0\nby_pct = 101\n",
        )
        .unwrap_err();
        for want in [
            "t.toml: risk.on_loss_limit: unknown action \"panic\" (stop, flatten)",
            "t.toml: risk.flatten.slice_qty: \"0.5\" is above risk.max_order_qty",
            "t.toml: risk.flatten.deadline_s: 0 must be 0.1..=86400 seconds",
            "t.toml: risk.flatten.slippage_bps: -1 must be 0..=1000",
            "t.toml: risk.derisk.above_pct: 0 must be above 0",
            "t.toml: risk.derisk.by_pct: 101 must be above 0 (at least 0.0001) and at most 100",
            "t.toml: risk.derisk.capital: is required unless risk.sizing.capital is set",
        ] {
            assert!(e.contains(want), "{want:?} missing from:\n{e}");
        }
        let e = risk("[risk.flatten]\nslice = \"1\"\n").unwrap_err();
        assert!(e.contains("slice"), "{e}");
    }

    #[test]
    fn loss_limits_and_sizing_are_read_and_checked() {
        let r = risk(
            "[risk]\nmax_daily_loss = \"50\"\nmax_drawdown = \"20.5\"\n[risk.portfolio]\nmax_total_loss = \"200\"\n[risk.sizing]\nkind = \"kelly\"\ncapital = \"5000\"\nmin_trades = 8\n",
        )
        .unwrap();
        assert_eq!(
            r.loss,
            LossSpec {
                max_daily_loss: Some(d("50")),
                max_total_loss: None,
                max_drawdown: Some(d("20.5")),
            }
        );
        assert_eq!(
            r.portfolio,
            LossSpec {
                max_total_loss: Some(d("200")),
                ..LossSpec::default()
            }
        );
        assert_eq!(
            r.sizing,
            SizingSpec {
                sizing: Sizing::Kelly {
                    scale_ppm: 500_000,
                    max_fraction_ppm: 50_000,
                    min_trades: 8,
                },
                capital: Some(d("5000")),
            }
        );
        // Left out: no limit and the strategy's own size.
        let r = risk("").unwrap();
        assert!(r.loss.is_off() && r.portfolio.is_off());
        assert_eq!(r.sizing, SizingSpec::default());
        let e = risk(
            "[risk]\nmax_daily_loss = \"-5\"\nmax_total_loss = \"lots\"\n[risk.portfolio]\nmax_drawdown = \"0\"\n[risk.sizing]\nkind = \"fraction\"\nfraction = 1.5\nmin_trades = 3\n",
        )
        .unwrap_err();
        for want in [
            "t.toml: risk.max_daily_loss: \"-5\" must be positive",
            "t.toml: risk.max_total_loss: \"lots\" is not a plain decimal",
            "t.toml: risk.portfolio.max_drawdown: \"0\" must be positive",
            "t.toml: risk.sizing.fraction: 1.5 must be above 0 (at least 0.000001) and at most 1",
            "t.toml: risk.sizing.capital: is required when risk.sizing.kind is \"fraction\"",
            "t.toml: risk.sizing.min_trades: set, but risk.sizing.kind is \"fraction\" (it is for kelly)",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = risk("[risk.sizing]\nkind = \"martingale\"\ncapital = \"1\"\n").unwrap_err();
        assert!(
            e.contains("risk.sizing.kind: unknown sizing \"martingale\" (fixed, fraction, kelly)"),
            "{e}"
        );
        assert!(
            e.contains("risk.sizing.capital: set, but risk.sizing.kind is \"martingale\""),
            "{e}"
        );
        let e = risk("[risk.portfolio]\nmax_loss = \"1\"\n").unwrap_err();
        assert!(e.contains("unknown field `max_loss`"), "{e}");
    }

    fn instances(text: &str) -> Result<Vec<InstanceSpec>, String> {
        let cfg = Config::parse(text, "t.toml").map_err(|e| e.to_string())?;
        cfg.validate_for("t.toml", 2, Path::new("/nonexistent"))
            .map(|s| s.instances)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_instance_sizes_its_orders_itself_when_it_says_so() {
        let two = "[risk.sizing]\nkind = \"fraction\"\nfraction = 0.01\ncapital = \"10000\"\n\
                   [[strategy]]\nname = \"a\"\n[[strategy]]\nname = \"b\"\n";
        let all = instances(&format!(
            "{two}[strategy.risk.sizing]\nkind = \"kelly\"\ncapital = \"2500\"\nmin_trades = 4\n"
        ))
        .unwrap();
        // Left out: the instrument's sizing, no gate of its own.
        assert!(!all[0].own_sizing && !all[0].own_budget);
        assert_eq!(
            all[0].trading.risk.sizing,
            SizingSpec {
                sizing: Sizing::Fraction {
                    fraction_ppm: 10_000
                },
                capital: Some(d("10000")),
            }
        );
        // Its own, with kelly's defaults; a table of the sizing alone sets no limit.
        assert!(all[1].own_sizing && !all[1].own_budget);
        assert_eq!(
            all[1].trading.risk.sizing,
            SizingSpec {
                sizing: Sizing::Kelly {
                    scale_ppm: 500_000,
                    max_fraction_ppm: 50_000,
                    min_trades: 4,
                },
                capital: Some(d("2500")),
            }
        );
        let with_limit = instances(&format!(
            "{two}[strategy.risk]\nmax_position = \"0.002\"\n[strategy.risk.sizing]\nkind = \"fixed\"\n"
        ))
        .unwrap();
        assert!(with_limit[1].own_sizing && with_limit[1].own_budget);
        assert_eq!(with_limit[1].trading.risk.sizing, SizingSpec::default());
        // A bad value is named with the instance's index, each problem under its key.
        let e = instances(&format!(
            "{two}[strategy.risk.sizing]\nkind = \"fraction\"\nfraction = 2.0\nmin_trades = 3\n"
        ))
        .unwrap_err();
        for want in [
            "t.toml: strategy[1].risk.sizing.fraction: 2 must be above 0 (at least 0.000001) and at most 1",
            "t.toml: strategy[1].risk.sizing.capital: is required when strategy[1].risk.sizing.kind is \"fraction\"",
            "t.toml: strategy[1].risk.sizing.min_trades: set, but strategy[1].risk.sizing.kind is \"fraction\" (it is for kelly)",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e =
            instances(&format!("{two}[strategy.risk.sizing]\nkind = \"all-in\"\n")).unwrap_err();
        assert!(
            e.contains(
                "strategy[1].risk.sizing.kind: unknown sizing \"all-in\" (fixed, fraction, kelly)"
            ),
            "{e}"
        );
        // A lone [strategy] names its keys without an index; a mistyped key is refused.
        let e = instances("[strategy]\n[strategy.risk.sizing]\nkind = \"kelly\"\n").unwrap_err();
        assert!(
            e.contains("t.toml: strategy.risk.sizing.capital: is required"),
            "{e}"
        );
        let e = instances(&format!("{two}[strategy.risk.sizing]\nfracton = 0.1\n")).unwrap_err();
        assert!(e.contains("unknown field `fracton`"), "{e}");
    }

    #[test]
    fn every_strategy_problem_is_named_by_its_key() {
        let e = spec("kind = \"grid\"\n[strategy.grid]\nupper = \"-3\"\nlevels = 99\nspacing = \"log\"\n[strategy.momentum]\n").unwrap_err();
        for want in [
            "t.toml: strategy.momentum: set, but strategy.kind is \"grid\" (not \"momentum\")",
            "t.toml: strategy.grid.lower: is required for the grid",
            "t.toml: strategy.grid.upper: \"-3\" must be positive",
            "t.toml: strategy.grid.levels: 99 must be 2..=32",
            "t.toml: strategy.grid.spacing: \"log\" is not one of arithmetic, geometric",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e =
            spec("kind = \"grid\"\n[strategy.grid]\nlower = \"5\"\nupper = \"4.5\"\n").unwrap_err();
        assert!(
            e.contains("strategy.grid.upper: 4.5 must be above lower (5)"),
            "{e}"
        );
        let e = spec("kind = \"market-making\"\n[strategy.market_making]\nhalf_spread_bps = 0\nfair = \"last\"\nlevels = 0\n").unwrap_err();
        for want in [
            "strategy.market_making.half_spread_bps: 0 must be above 0 and at most 10000 (bps)",
            "strategy.market_making.fair: \"last\" is not one of mid, microprice",
            "strategy.market_making.levels: 0 must be 1..=8",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = spec("kind = \"spread-capture\"\n[strategy.spread_capture]\nenter_spread_bps = 1\nexit_spread_bps = 2\n").unwrap_err();
        assert!(
            e.contains(
                "strategy.spread_capture.exit_spread_bps: 2 must be at most enter_spread_bps (1)"
            ),
            "{e}"
        );
        let e = spec("kind = \"momentum\"\n[strategy.momentum]\nshort_samples = 50\nlong_samples = 50\nsample_ms = 0\nrsi_oversold = 80\n").unwrap_err();
        for want in [
            "strategy.momentum.short_samples: 50 must be 1..=49",
            "strategy.momentum.sample_ms: must be at least 1",
            "strategy.momentum.rsi_overbought: oversold 80 and overbought 70",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = spec("kind = \"quote-chase\"\n[strategy.quote_chase]\nside = \"up\"\ngive_up_ms = 0\nlimit_price = \"x\"\n").unwrap_err();
        for want in [
            "strategy.quote_chase.side: \"up\" is not one of buy, sell",
            "strategy.quote_chase.give_up_ms: must be at least 1",
            "strategy.quote_chase.limit_price: \"x\" is not a plain decimal",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = spec("kind = \"martingale\"\n").unwrap_err();
        assert!(e.contains("strategy.kind: unknown strategy \"martingale\" (imbalance, market-making, spread-capture, quote-chase, momentum, grid, pairs)"), "{e}");
        let e = spec("kind = \"pairs\"\ninstruments = [\"A\", \"B\"]\n[strategy.pairs]\nentry_bps = 0\nsample_ms = 0\nmax_age_ms = 0\n").unwrap_err();
        for want in [
            "strategy.pairs.entry_bps: 0 must be above 0",
            "strategy.pairs.notional: is required for pairs",
            "strategy.pairs.sample_ms: must be at least 1",
            "strategy.pairs.max_age_ms: must be at least 1",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = spec("kind = \"grid\"\n[strategy.grid]\nlower = \"1\"\nupper = \"2\"\nlevel = 3\n")
            .unwrap_err();
        assert!(e.contains("unknown field `level`"), "{e}");
    }
}
