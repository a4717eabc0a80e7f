//! Contingent orders: `STOP_LOSS`, `STOP_LOSS_LIMIT`, `TAKE_PROFIT`, `TAKE_PROFIT_LIMIT`.
//!
//! A contingent order waits off the book (`w` false, no `W`, `workingTime` -1) until the
//! symbol's trades reach its condition; trades are the market's `@trade`/`@aggTrade` prints,
//! so the last price is the last print released. The condition, as the exchange documents it:
//!
//! - `stopPrice` alone: a `STOP_LOSS` `BUY` or `TAKE_PROFIT` `SELL` triggers on a trade at or
//!   above it, a `STOP_LOSS` `SELL` or `TAKE_PROFIT` `BUY` at or below it. An order whose
//!   condition the last price already meets is refused (`-2010` "Order would trigger
//!   immediately.").
//! - `trailingDelta` (BIPS, within the `TRAILING_DELTA` filter, here 10..=2000): tracking starts
//!   with the first trade that meets `stopPrice` (that trade is the first best price), or at
//!   once from the last price when there is no `stopPrice` (from the next trade when no trade
//!   was seen yet). A buy then keeps the lowest trade since and triggers on a trade at or above
//!   `lowest × (1 + delta / 10000)`; a sell keeps the highest and triggers at or below
//!   `highest × (1 − delta / 10000)`. `trailingTime` (`D`) is when tracking started.
//!
//! Funds are locked while it waits (a sell its quantity, a buy `_LIMIT` price × quantity, a
//! market buy nothing). When it triggers, its lock goes back and it works as a new order would:
//! an `executionReport` `NEW` with `w` and `W` set, then the `_LIMIT` kinds walk the book up to
//! their price with their `timeInForce` and rest what is left (`GTC`), the market kinds walk
//! the book as `MARKET`. An order that cannot pay any more expires (`eR` `REJECTED`).

use serde_json::Value;

use super::{
    Account, Order, Params, Refusal, Side, account_position, add, assets, book_levels, lists, mul,
    refuse, report, sub, walk, work,
};
use crate::live::{Book, Dec};

/// The `TRAILING_DELTA` filter the simulator applies to every symbol (BIPS, inclusive): the
/// bounds of the exchange's documented example.
pub(super) const TRAILING_DELTA: (u32, u32) = (10, 2000);

/// How a contingent order waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Trigger {
    /// `stopPrice`.
    pub(super) stop: Option<Dec>,
    /// `trailingDelta`, BIPS.
    pub(super) delta: Option<u32>,
    /// The best trade since tracking started: the lowest for a buy, the highest for a sell.
    pub(super) best: Option<Dec>,
    /// When tracking started (`trailingTime`).
    pub(super) since: Option<u64>,
    /// Whether it triggered.
    pub(super) fired: bool,
}

/// Whether `ty` waits for a trigger.
pub(super) fn is_contingent(ty: &str) -> bool {
    matches!(
        ty,
        "STOP_LOSS" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT" | "TAKE_PROFIT_LIMIT"
    )
}

/// Whether `ty` executes as a market order once working.
pub(super) fn market_like(ty: &str) -> bool {
    matches!(ty, "MARKET" | "STOP_LOSS" | "TAKE_PROFIT")
}

/// Whether `ty` is a limit order with a `timeInForce`.
pub(super) fn timed(ty: &str) -> bool {
    matches!(ty, "LIMIT" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT")
}

/// Whether the order's stop is reached by prices rising to it (a buy stop-loss, a sell
/// take-profit) rather than falling to it.
fn rises_to(side: Side, ty: &str) -> bool {
    (side == Side::Buy) == ty.starts_with("STOP_LOSS")
}

/// Whether a trade at `px` meets the stop condition of an order of `side` and `ty`.
pub(super) fn stop_reached(side: Side, ty: &str, stop: Dec, px: Dec) -> bool {
    if rises_to(side, ty) {
        px >= stop
    } else {
        px <= stop
    }
}

/// `stopPrice` and `trailingDelta` of a new order of `ty`, checked: required (one or both) for
/// the contingent types, refused for the others, the delta within the filter.
pub(super) fn read(p: &Params, ty: &str) -> Result<Option<Trigger>, Refusal> {
    let stop = p.dec("stopPrice")?;
    let delta = p
        .get("trailingDelta")
        .map(|t| {
            t.parse::<u32>().map_err(|_| {
                refuse(
                    -1100,
                    "Illegal characters found in parameter 'trailingDelta'; legal range is '^[0-9]{1,20}$'.",
                )
            })
        })
        .transpose()?;
    if !is_contingent(ty) {
        let not_required =
            |name: &str| refuse(-1106, format!("Parameter '{name}' sent when not required."));
        if stop.is_some() {
            return Err(not_required("stopPrice"));
        }
        if delta.is_some() {
            return Err(not_required("trailingDelta"));
        }
        return Ok(None);
    }
    if stop.is_none() && delta.is_none() {
        return Err(refuse(
            -1102,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        ));
    }
    if let Some(d) = delta
        && !(TRAILING_DELTA.0..=TRAILING_DELTA.1).contains(&d)
    {
        return Err(refuse(-1013, "Filter failure: TRAILING_DELTA"));
    }
    Ok(Some(Trigger {
        stop,
        delta,
        best: None,
        since: None,
        fired: false,
    }))
}

/// Refuses a stop the last price already meets; starts tracking a trailing stop without a
/// stop price at the last price.
pub(super) fn arm(
    t: &mut Trigger,
    side: Side,
    ty: &str,
    last: Option<Dec>,
    now: u64,
) -> Result<(), Refusal> {
    if let (Some(stop), Some(px)) = (t.stop, last)
        && stop_reached(side, ty, stop, px)
    {
        return Err(refuse(-2010, "Order would trigger immediately."));
    }
    if t.delta.is_some() && t.stop.is_none() && last.is_some() {
        t.best = last;
        t.since = Some(now);
    }
    Ok(())
}

/// `px × (10000 + bips) ÷ 10000` (`up`) or `px × (10000 − bips) ÷ 10000`, rounded down.
fn scaled(px: Dec, bips: u32, up: bool) -> Dec {
    let factor = if up {
        10_000 + u128::from(bips)
    } else {
        10_000u128.saturating_sub(u128::from(bips))
    };
    Dec::from_units(px.units().saturating_mul(factor) / 10_000)
}

/// What a trade at `px` does to a waiting trigger: starts tracking, moves the best price, or
/// triggers it (true).
pub(super) fn observe(t: &mut Trigger, side: Side, ty: &str, px: Dec, now: u64) -> bool {
    let Some(delta) = t.delta else {
        return t.stop.is_some_and(|s| stop_reached(side, ty, s, px));
    };
    let Some(best) = t.best else {
        // Tracking starts with the first trade that meets the stop (or any trade without one);
        // that trade is the first best price.
        if t.stop.is_none_or(|s| stop_reached(side, ty, s, px)) {
            t.best = Some(px);
            t.since = Some(now);
        }
        return false;
    };
    match side {
        Side::Buy if px < best => {
            t.best = Some(px);
            false
        }
        Side::Buy => px >= scaled(best, delta, true),
        Side::Sell if px > best => {
            t.best = Some(px);
            false
        }
        Side::Sell => px <= scaled(best, delta, false),
    }
}

/// What a waiting order of this kind locks: a sell its quantity, a buy `_LIMIT` price ×
/// quantity, a market buy nothing (it pays when it works).
pub(super) fn waiting_need(o: &Order) -> Dec {
    match o.side {
        Side::Sell => o.remaining(),
        Side::Buy if market_like(o.ty) => Dec::default(),
        Side::Buy => mul(o.price, o.remaining()),
    }
}

/// The asset an order pays with.
pub(super) fn pay_asset(o: &Order) -> String {
    let (base, quote) = assets(&o.symbol);
    match o.side {
        Side::Buy => quote,
        Side::Sell => base,
    }
}

/// Moves `amount` of the account's free balance of the order's pay asset to its lock; false
/// (nothing moved) when the free balance is short.
pub(super) fn take_lock(account: &mut Account, at: usize, amount: Dec) -> bool {
    let asset = pay_asset(&account.orders[at]);
    let b = account.balances.entry(asset).or_default();
    if b.0 < amount {
        return false;
    }
    b.0 = sub(b.0, amount);
    b.1 = add(b.1, amount);
    let o = &mut account.orders[at];
    o.lock = add(o.lock, amount);
    true
}

/// Gives back the lock an order holds.
pub(super) fn release_lock(account: &mut Account, at: usize) {
    let amount = std::mem::take(&mut account.orders[at].lock);
    if amount.is_zero() {
        return;
    }
    let asset = pay_asset(&account.orders[at]);
    let b = account.balances.entry(asset).or_default();
    b.1 = sub(b.1, amount);
    b.0 = add(b.0, amount);
}

/// Ends an open order by the exchange's rules (`EXPIRED`, `eR` `reason`), its lock given back.
pub(super) fn expire(
    account: &mut Account,
    at: usize,
    reason: &'static str,
    now: u64,
    events: &mut Vec<Value>,
) {
    let held = !account.orders[at].lock.is_zero();
    release_lock(account, at);
    let o = &mut account.orders[at];
    o.status = "EXPIRED";
    o.expiry = Some(reason);
    o.updated = now;
    let o = o.clone();
    events.push(report(account, &o, "EXPIRED", None, now));
    if held {
        let (base, quote) = assets(&o.symbol);
        events.push(account_position(account, &[&base, &quote], now));
    }
}

/// Runs the trade at `px` of `symbol` past every waiting order of the symbol; those it
/// triggers start working on `book`.
pub(super) fn on_trade(
    account: &mut Account,
    symbol: &str,
    px: Dec,
    book: Option<&Book>,
    now: u64,
    events: &mut Vec<Value>,
) {
    let mut fired = Vec::new();
    for (at, o) in account.orders.iter_mut().enumerate() {
        if o.symbol != symbol || o.status != "NEW" || o.working.is_some() {
            continue;
        }
        let (side, ty) = (o.side, o.ty);
        let Some(t) = o.trigger.as_mut() else {
            continue;
        };
        if !t.fired && observe(t, side, ty, px, now) {
            t.fired = true;
            fired.push(at);
        }
    }
    for at in fired {
        fire(account, at, book, now, events);
    }
}

/// A triggered order: the other leg of its OCO expires, then it works.
pub(super) fn fire(
    account: &mut Account,
    at: usize,
    book: Option<&Book>,
    now: u64,
    events: &mut Vec<Value>,
) {
    // The other leg of an OCO may have triggered on the same trade and taken this one out.
    if account.orders[at].status != "NEW" {
        return;
    }
    if let Some(t) = account.orders[at].trigger.as_mut() {
        t.fired = true;
    }
    lists::expire_sibling(account, at, now, events);
    start(account, at, book, now, events);
}

/// Puts an order to work on `book` as a new order would go (a triggered stop, or an order
/// list's pending order once the working order filled): its lock goes back, it walks the
/// opposite side, rests or expires what is left. An order that cannot pay, or a
/// `LIMIT_MAKER` that would take, expires (`eR` `REJECTED`).
pub(super) fn start(
    account: &mut Account,
    at: usize,
    book: Option<&Book>,
    now: u64,
    events: &mut Vec<Value>,
) {
    release_lock(account, at);
    let o = account.orders[at].clone();
    let (levels, own) = book.map_or_else(
        || (Vec::new(), Dec::default()),
        |b| book_levels(b, o.side, o.price),
    );
    let market = market_like(o.ty);
    let (fills, left) = walk(
        &levels,
        o.side,
        market,
        o.price,
        o.remaining(),
        o.tif == "FOK",
    );
    let rests = !market && o.tif == "GTC" && !left.is_zero();
    let taken = fills
        .iter()
        .fold(Dec::default(), |acc, (px, q)| match o.side {
            Side::Buy => add(acc, mul(*px, *q)),
            Side::Sell => add(acc, *q),
        });
    let resting = if rests {
        match o.side {
            Side::Buy => mul(o.price, left),
            Side::Sell => left,
        }
    } else {
        Dec::default()
    };
    let free = account
        .balances
        .get(&pay_asset(&o))
        .map_or(Dec::default(), |b| b.0);
    let crosses = o.ty == "LIMIT_MAKER"
        && (!fills.is_empty() || super::stp::crosses_own(account, &o.symbol, o.side, o.price));
    if crosses || free < add(taken, resting) {
        expire(account, at, "REJECTED", now, events);
        let (base, quote) = assets(&o.symbol);
        events.push(account_position(account, &[&base, &quote], now));
        return;
    }
    let w = &mut account.orders[at];
    w.status = "NEW";
    w.working = Some(now);
    w.ahead = own;
    w.level_seen = own;
    w.credit = Dec::default();
    w.updated = now;
    let w = w.clone();
    events.push(report(account, &w, "NEW", None, now));
    work(account, at, &fills, left, now, events);
}

/// Puts an order list's pending contingent order on the exchange: it waits for its trigger
/// with `lock` of its funds locked (it triggers at once when the last price already meets a
/// plain stop); expires (`REJECTED`) when the account cannot lock that.
pub(super) fn wait(
    account: &mut Account,
    at: usize,
    lock: Dec,
    book: Option<&Book>,
    now: u64,
    events: &mut Vec<Value>,
) {
    if !take_lock(account, at, lock) {
        expire(account, at, "REJECTED", now, events);
        return;
    }
    let last = account.last_price.get(&account.orders[at].symbol).copied();
    let o = &mut account.orders[at];
    o.status = "NEW";
    o.updated = now;
    let (side, ty) = (o.side, o.ty);
    let mut at_once = false;
    if let Some(t) = o.trigger.as_mut() {
        at_once = match (t.stop, last) {
            (Some(stop), Some(px)) => t.delta.is_none() && stop_reached(side, ty, stop, px),
            _ => false,
        };
        if t.delta.is_some() && t.stop.is_none() && last.is_some() {
            t.best = last;
            t.since = Some(now);
        }
    }
    let o = o.clone();
    events.push(report(account, &o, "NEW", None, now));
    let (base, quote) = assets(&o.symbol);
    events.push(account_position(account, &[&base, &quote], now));
    if at_once {
        fire(account, at, book, now, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    fn trailing(stop: Option<&str>, delta: u32) -> Trigger {
        Trigger {
            stop: stop.map(d),
            delta: Some(delta),
            best: None,
            since: None,
            fired: false,
        }
    }

    /// Runs `path` through `t`; the index of the trade that triggers it.
    fn run(t: &mut Trigger, side: Side, ty: &str, path: &[&str]) -> Option<usize> {
        path.iter().position(|px| observe(t, side, ty, d(px), 1))
    }

    #[test]
    fn stop_directions_follow_the_documented_table() {
        for (side, ty, above) in [
            (Side::Buy, "STOP_LOSS", true),
            (Side::Buy, "STOP_LOSS_LIMIT", true),
            (Side::Sell, "TAKE_PROFIT", true),
            (Side::Sell, "TAKE_PROFIT_LIMIT", true),
            (Side::Sell, "STOP_LOSS", false),
            (Side::Sell, "STOP_LOSS_LIMIT", false),
            (Side::Buy, "TAKE_PROFIT", false),
            (Side::Buy, "TAKE_PROFIT_LIMIT", false),
        ] {
            assert!(stop_reached(side, ty, d("100"), d("100")), "{ty}");
            assert_eq!(stop_reached(side, ty, d("100"), d("101")), above, "{ty}");
            assert_eq!(stop_reached(side, ty, d("100"), d("99")), !above, "{ty}");
        }
    }

    #[test]
    fn scenario_a_buy_stop_loss_limit_trails_from_the_stop() {
        // Stop 44,000, 500 BIPS: the fall to 37,000 is ignored, tracking starts at 44,000,
        // 46,000 is not enough, the low moves to 42,000, 44,100 triggers.
        let mut t = trailing(Some("44000"), 500);
        let path = [
            "40000", "37000", "44000", "45000", "46000", "42000", "44099", "44100",
        ];
        assert_eq!(run(&mut t, Side::Buy, "STOP_LOSS_LIMIT", &path), Some(7));
        assert_eq!(t.best, Some(d("42000")));
    }

    #[test]
    fn scenario_b_sell_stop_loss_limit() {
        let mut t = trailing(Some("39000"), 1000);
        let path = ["41500", "39000", "37000", "41000", "36901", "36900"];
        assert_eq!(run(&mut t, Side::Sell, "STOP_LOSS_LIMIT", &path), Some(5));
    }

    #[test]
    fn scenario_c_and_d_take_profits() {
        let mut t = trailing(Some("38000"), 850);
        let path = [
            "42000", "38000", "37000", "39000", "38000", "40144", "40145",
        ];
        assert_eq!(run(&mut t, Side::Buy, "TAKE_PROFIT_LIMIT", &path), Some(6));
        let mut t = trailing(Some("42000"), 750);
        let path = [
            "41500", "39000", "42000", "45000", "44000", "46500", "43013", "43012.5",
        ];
        assert_eq!(run(&mut t, Side::Sell, "TAKE_PROFIT_LIMIT", &path), Some(7));
    }

    #[test]
    fn scenario_e_without_a_stop_tracks_from_the_last_price() {
        let mut t = trailing(None, 700);
        arm(&mut t, Side::Sell, "STOP_LOSS_LIMIT", Some(d("40000")), 5).unwrap();
        assert_eq!((t.best, t.since), (Some(d("40000")), Some(5)));
        let path = ["42000", "39500", "45500", "42316", "42315"];
        assert_eq!(run(&mut t, Side::Sell, "STOP_LOSS_LIMIT", &path), Some(4));
    }

    #[test]
    fn a_stop_the_last_price_meets_is_refused() {
        let mut t = Trigger {
            stop: Some(d("100")),
            delta: None,
            best: None,
            since: None,
            fired: false,
        };
        let r = arm(&mut t, Side::Sell, "STOP_LOSS", Some(d("99")), 0).unwrap_err();
        assert_eq!(
            (r.code, r.msg.as_str()),
            (-2010, "Order would trigger immediately.")
        );
        assert!(arm(&mut t, Side::Sell, "STOP_LOSS", Some(d("101")), 0).is_ok());
        assert!(arm(&mut t, Side::Sell, "STOP_LOSS", None, 0).is_ok());
    }
}
