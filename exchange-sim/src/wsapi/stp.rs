//! Self-trade prevention: what an incoming order of the account does when its walk reaches
//! one of the account's own resting orders.
//!
//! **Where an own order sits.** The account's resting orders of the symbol on the other side
//! are part of the book the incoming order walks: at a price the incoming order reaches (at or
//! better than its limit; every price for a market order), an own order is met after every
//! better price and, at its own price, after the market quantity queued ahead of it (its
//! `ahead`, as the queue model keeps it); what the truth shows there beyond that comes after
//! it. Own orders at one price are met in queue order (less ahead first, then older). An own
//! order better than the truth's best price is met before any market quantity.
//!
//! **What happens there** is the incoming (taker) order's mode, as on the exchange (the resting
//! order's own mode is not consulted; with no trade groups here, `TRANSFER` acts as
//! `DECREMENT`):
//!
//! - `NONE`: no prevention; the two orders trade with each other at the resting order's price,
//!   one trade id, two trades of the account (maker and taker).
//! - `EXPIRE_TAKER`: the incoming order's remaining quantity is prevented and it ends
//!   `EXPIRED_IN_MATCH`; what it executed before stands, it does not rest.
//! - `EXPIRE_MAKER`: the resting order's remaining quantity is prevented, it ends
//!   `EXPIRED_IN_MATCH` and its lock is released; the incoming order walks on.
//! - `EXPIRE_BOTH`: both.
//! - `DECREMENT` (and `TRANSFER`): both orders' prevented quantity grows by the quantity that
//!   would have traded (the smaller remainder); the one with nothing left ends
//!   `EXPIRED_IN_MATCH` (both when equal), the other goes on (a resting survivor keeps its
//!   place and gives back the lock of what was prevented).
//!
//! Each prevented match has an id (`preventedMatchId`, numbered from 0 per symbol). Every
//! order it prevents quantity of gets an `executionReport` with `x` `TRADE_PREVENTION`, `X`
//! its status (`EXPIRED_IN_MATCH` when it ended), `l`/`L`/`Y` zero, and `v` (the id), `A`
//! (prevented quantity so far), `B` (prevented by this match), `U` (the other order), `Cs`
//! (the symbol), `pl`/`pL`/`pY` (the quantity, price and quote quantity that would have
//! traded); no `u`, the account being in no trade group (as the exchange leaves
//! `tradeGroupId` out of its answers then). A `FOK` order fills from what it meets entirely or does
//! nothing: when the market cannot fill it alone, or a prevention would stop it short, it
//! expires `UNFILLED_FOK_ORDER_EXPIRED` with no prevented match.

use serde_json::{Value, json};

use super::{Account, Order, Side, StpMode, add, fixed, mul, sub};
use crate::live::Dec;

/// What an incoming order meets on its walk, in the order it meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Market quantity `(price, quantity)` of the truth.
    Market(Dec, Dec),
    /// The account's resting order at this index.
    Own(usize),
}

/// What the incoming order does, one action per step it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Takes `(price, quantity)` of the market.
    Take(Dec, Dec),
    /// Trades `qty` with the own resting order `maker` at `px` (mode `NONE`).
    SelfTrade { maker: usize, px: Dec, qty: Dec },
    /// A prevented match with the own resting order `maker` at `px`: `taker` and `maker_qty`
    /// prevented of each, `would` the quantity that would have traded.
    Prevent {
        maker: usize,
        px: Dec,
        taker: Dec,
        maker_qty: Dec,
        would: Dec,
    },
}

/// Whether `px` is better than `than` for a taker on `side` (met earlier).
fn better(side: Side, px: Dec, than: Dec) -> bool {
    match side {
        Side::Buy => px < than,
        Side::Sell => px > than,
    }
}

/// The account's resting orders the incoming order at `at` reaches: on the book, same symbol,
/// other side, at a price its `limit` crosses (any, for a market order); in the order it meets
/// them.
pub(super) fn own_in_reach(account: &Account, at: usize, limit: Dec, market: bool) -> Vec<usize> {
    let taker = &account.orders[at];
    let mut own: Vec<usize> = account
        .orders
        .iter()
        .enumerate()
        .filter(|(i, o)| {
            *i != at
                && o.on_book()
                && o.symbol == taker.symbol
                && o.side != taker.side
                && (market || super::crosses(taker.side, limit, o.price))
        })
        .map(|(i, _)| i)
        .collect();
    let side = taker.side;
    own.sort_by(|&a, &b| {
        let (x, y) = (&account.orders[a], &account.orders[b]);
        let by_price = if x.price == y.price {
            std::cmp::Ordering::Equal
        } else if better(side, x.price, y.price) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        };
        by_price
            .then(x.ahead.cmp(&y.ahead))
            .then(x.order_id.cmp(&y.order_id))
    });
    own
}

/// Whether a new order on `side` of `symbol` at `limit` would reach one of the account's
/// resting orders (what makes a `LIMIT_MAKER` take).
pub(super) fn crosses_own(account: &Account, symbol: &str, side: Side, limit: Dec) -> bool {
    account.orders.iter().any(|o| {
        o.on_book() && o.symbol == symbol && o.side != side && super::crosses(side, limit, o.price)
    })
}

/// Merges the taker's walk of the truth (`fills`, best first, at most one per price) with the
/// own orders it reaches (`own`, in meeting order): each own order after the better prices and
/// after its `ahead` of the market at its own price.
pub(super) fn steps(
    account: &Account,
    side: Side,
    fills: &[(Dec, Dec)],
    own: &[usize],
) -> Vec<Step> {
    let mut out = Vec::with_capacity(fills.len() + own.len());
    let mut truth: std::collections::VecDeque<(Dec, Dec)> = fills.iter().copied().collect();
    // Market quantity already met at the price of the last own order.
    let mut met_at: Option<(Dec, Dec)> = None;
    for &m in own {
        let (price, ahead) = (account.orders[m].price, account.orders[m].ahead);
        while let Some(&(px, q)) = truth.front() {
            if !better(side, px, price) {
                break;
            }
            out.push(Step::Market(px, q));
            truth.pop_front();
        }
        let met = match met_at {
            Some((p, q)) if p == price => q,
            _ => Dec::default(),
        };
        let mut met_now = met;
        if let Some(front) = truth.front_mut()
            && front.0 == price
        {
            let take = front.1.min(sub(ahead, met));
            if !take.is_zero() {
                out.push(Step::Market(price, take));
                front.1 = sub(front.1, take);
                met_now = add(met, take);
                if front.1.is_zero() {
                    truth.pop_front();
                }
            }
        }
        met_at = Some((price, met_now));
        out.push(Step::Own(m));
    }
    out.extend(truth.into_iter().map(|(px, q)| Step::Market(px, q)));
    out
}

/// The taker's actions along `steps` with `qty` to execute in `mode`; returns them and what is
/// left unexecuted and unprevented.
pub(super) fn resolve(
    account: &Account,
    steps: &[Step],
    qty: Dec,
    mode: StpMode,
) -> (Vec<Action>, Dec) {
    let mut left = qty;
    let mut actions = Vec::new();
    for step in steps {
        if left.is_zero() {
            break;
        }
        match *step {
            Step::Market(px, q) => {
                let take = q.min(left);
                if !take.is_zero() {
                    actions.push(Action::Take(px, take));
                    left = sub(left, take);
                }
            }
            Step::Own(m) => {
                let maker = &account.orders[m];
                let rest = maker.remaining();
                if rest.is_zero() {
                    continue;
                }
                let px = maker.price;
                let would = rest.min(left);
                let (taker, maker_qty) = match mode {
                    StpMode::None => {
                        actions.push(Action::SelfTrade {
                            maker: m,
                            px,
                            qty: would,
                        });
                        left = sub(left, would);
                        continue;
                    }
                    StpMode::ExpireTaker => (left, Dec::default()),
                    StpMode::ExpireMaker => (Dec::default(), rest),
                    StpMode::ExpireBoth => (left, rest),
                    StpMode::Decrement | StpMode::Transfer => (would, would),
                };
                actions.push(Action::Prevent {
                    maker: m,
                    px,
                    taker,
                    maker_qty,
                    would,
                });
                left = sub(left, taker);
            }
        }
    }
    (actions, left)
}

/// Whether the actions prevented any of the taker's quantity.
pub(super) fn taker_prevented(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Prevent { taker, .. } if !taker.is_zero()))
}

/// Adds `qty` to the prevented quantity of the order at `at` under match `id`; ends it
/// `EXPIRED_IN_MATCH` when nothing is left.
pub(super) fn prevent(account: &mut Account, at: usize, qty: Dec, id: u64, now: u64) {
    let o = &mut account.orders[at];
    o.prevented = add(o.prevented, qty);
    o.last_prevented = qty;
    o.prevented_match = Some(id);
    o.updated = now;
    if o.remaining().is_zero() {
        o.status = "EXPIRED_IN_MATCH";
    }
}

/// The next prevented match id of `symbol` (from 0).
pub(super) fn next_match_id(account: &mut Account, symbol: &str) -> u64 {
    let n = account.prevented_ids.entry(symbol.to_owned()).or_insert(0);
    let id = *n;
    *n += 1;
    id
}

/// The `TRADE_PREVENTION` fields of an `executionReport` for `o`, whose match with
/// `counter` prevented `would` at `px`.
pub(super) fn report_fields(event: &mut Value, o: &Order, counter: u64, px: Dec, would: Dec) {
    event["v"] = json!(o.prevented_match.unwrap_or_default());
    event["A"] = json!(fixed(o.prevented));
    event["B"] = json!(fixed(o.last_prevented));
    event["U"] = json!(counter);
    event["Cs"] = json!(o.symbol);
    event["pl"] = json!(fixed(would));
    event["pL"] = json!(fixed(px));
    event["pY"] = json!(fixed(mul(px, would)));
}

/// One entry of an order answer's `preventedMatches`.
pub(super) fn match_json(id: u64, maker_order: u64, px: Dec, taker: Dec, maker: Dec) -> Value {
    let mut v = json!({"preventedMatchId": id, "makerOrderId": maker_order, "price": fixed(px)});
    if !taker.is_zero() {
        v["takerPreventedQuantity"] = json!(fixed(taker));
    }
    if !maker.is_zero() {
        v["makerPreventedQuantity"] = json!(fixed(maker));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    /// An account with resting bids `(price, quantity, ahead)` and a sell taker of `qty` to
    /// `limit`, last.
    fn account(bids: &[(&str, &str, &str)], limit: &str, qty: &str) -> super::super::AccountCell {
        let cell = super::super::AccountCell::new(None);
        {
            let mut a = cell.lock();
            let order = |id: u64, side: Side, price: &str, qty: &str, ahead: &str| Order {
                symbol: "BTCUSDT".into(),
                order_id: id,
                client_id: format!("c{id}"),
                side,
                ty: "LIMIT",
                tif: "GTC",
                price: d(price),
                qty: d(qty),
                executed: Dec::default(),
                cum_quote: Dec::default(),
                status: "NEW",
                stp: "NONE".into(),
                created: 0,
                updated: 0,
                working: Some(0),
                ahead: d(ahead),
                level_seen: d(ahead),
                credit: Dec::default(),
                expiry: None,
                step: d("0.00001"),
                trigger: None,
                list: None,
                lock: Dec::default(),
                prevented: Dec::default(),
                last_prevented: Dec::default(),
                prevented_match: None,
            };
            for (i, (px, q, ahead)) in bids.iter().enumerate() {
                a.orders.push(order(i as u64 + 1, Side::Buy, px, q, ahead));
            }
            a.orders.push(order(99, Side::Sell, limit, qty, "0"));
        }
        cell
    }

    #[test]
    fn own_orders_are_met_in_price_and_queue_order() {
        // Bids of the account at 100.00 (behind 2 of the market), 100.02 (inside the spread)
        // and 99.98 (beyond the sell's limit); the sell's truth walk took 2 at 100.00 and 2 at
        // 99.99.
        let cell = account(
            &[
                ("100.00", "1", "2"),
                ("100.02", "1", "0"),
                ("99.98", "1", "0"),
            ],
            "99.99",
            "5",
        );
        let a = cell.lock();
        let own = own_in_reach(&a, 3, d("99.99"), false);
        assert_eq!(own, [1, 0]);
        let fills = [(d("100.00"), d("2")), (d("99.99"), d("2"))];
        let steps = steps(&a, Side::Sell, &fills, &own);
        assert_eq!(
            steps,
            [
                Step::Own(1),
                Step::Market(d("100.00"), d("2")),
                Step::Own(0),
                Step::Market(d("99.99"), d("2")),
            ]
        );
        // EXPIRE_MAKER: both bids go, the sell takes the market's 4 and leaves 1.
        let (actions, left) = resolve(&a, &steps, d("5"), StpMode::ExpireMaker);
        let prevent =
            |maker, px: &str, taker: &str, maker_qty: &str, would: &str| Action::Prevent {
                maker,
                px: d(px),
                taker: d(taker),
                maker_qty: d(maker_qty),
                would: d(would),
            };
        assert_eq!(
            actions,
            [
                prevent(1, "100.02", "0", "1", "1"),
                Action::Take(d("100.00"), d("2")),
                prevent(0, "100.00", "0", "1", "1"),
                Action::Take(d("99.99"), d("2")),
            ]
        );
        assert_eq!(left, d("1"));
        // EXPIRE_TAKER: the sell stops at the first bid with all of its 5.
        let (actions, left) = resolve(&a, &steps, d("5"), StpMode::ExpireTaker);
        assert_eq!(actions, [prevent(1, "100.02", "5", "0", "1")]);
        assert!(left.is_zero() && taker_prevented(&actions));
        // NONE: it trades 1 with each bid; the market's 99.99 gives only what is left.
        let (actions, left) = resolve(&a, &steps, d("5"), StpMode::None);
        assert_eq!(
            actions,
            [
                Action::SelfTrade {
                    maker: 1,
                    px: d("100.02"),
                    qty: d("1")
                },
                Action::Take(d("100.00"), d("2")),
                Action::SelfTrade {
                    maker: 0,
                    px: d("100.00"),
                    qty: d("1")
                },
                Action::Take(d("99.99"), d("1")),
            ]
        );
        assert!(left.is_zero() && !taker_prevented(&actions));
        // DECREMENT: 1 from both at each bid.
        let (actions, left) = resolve(&a, &steps, d("5"), StpMode::Decrement);
        assert_eq!(actions[0], prevent(1, "100.02", "1", "1", "1"));
        assert_eq!(actions[2], prevent(0, "100.00", "1", "1", "1"));
        assert_eq!(actions[3], Action::Take(d("99.99"), d("1")));
        assert!(left.is_zero());
        // A maker-only sell at 100.02 would meet the bid there; at 100.03 nothing.
        assert!(crosses_own(&a, "BTCUSDT", Side::Sell, d("100.02")));
        assert!(!crosses_own(&a, "BTCUSDT", Side::Sell, d("100.03")));
    }

    #[test]
    fn better_follows_the_taker_side() {
        assert!(better(Side::Buy, d("99"), d("100")));
        assert!(!better(Side::Buy, d("100"), d("100")));
        assert!(better(Side::Sell, d("101"), d("100")));
        assert!(!better(Side::Sell, d("99"), d("100")));
    }
}
