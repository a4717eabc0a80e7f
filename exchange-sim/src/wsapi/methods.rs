//! `order.cancelReplace`, `order.amend.keepPriority`, `myTrades`, `account.status` and
//! `account.commission`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Account, Params, Refusal, Side, add, cancel, find, fixed, mandatory, mul, place, plan, publish,
    refuse, report_with, sub,
};
use crate::live::{Dec, LiveShared, now_ms};

/// `order.cancelReplace`: `order.cancel` then `order.place`, not transactional; the answer
/// and the `-2021`/`-2022` failures as the exchange gives them. The new order's parameters
/// and filters are checked first: when they fail, the request fails as `order.place` would
/// and nothing is cancelled.
pub(super) fn cancel_replace(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let stop_on_failure = match p.get("cancelReplaceMode") {
        Some("STOP_ON_FAILURE") => true,
        Some("ALLOW_FAILURE") => false,
        _ => return Err(mandatory("cancelReplaceMode")),
    };
    if p.get("cancelOrderId").is_none() && p.get("cancelOrigClientOrderId").is_none() {
        return Err(refuse(
            -1102,
            "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
        ));
    }
    let pick = |names: &[(&str, &str)]| {
        let mut out = BTreeMap::new();
        for (from, to) in names {
            if let Some(v) = p.get(from) {
                out.insert((*to).to_owned(), v.to_owned());
            }
        }
        Params(out)
    };
    let cancel_params = pick(&[
        ("symbol", "symbol"),
        ("cancelOrderId", "orderId"),
        ("cancelOrigClientOrderId", "origClientOrderId"),
        ("cancelNewClientOrderId", "newClientOrderId"),
        ("cancelRestrictions", "cancelRestrictions"),
    ]);
    let place_params = pick(&[
        ("symbol", "symbol"),
        ("side", "side"),
        ("type", "type"),
        ("timeInForce", "timeInForce"),
        ("price", "price"),
        ("quantity", "quantity"),
        ("newClientOrderId", "newClientOrderId"),
        ("newOrderRespType", "newOrderRespType"),
        ("selfTradePreventionMode", "selfTradePreventionMode"),
        ("stopPrice", "stopPrice"),
        ("trailingDelta", "trailingDelta"),
    ]);
    let error_of = |r: &Refusal| json!({"code": r.code, "msg": r.msg});
    // Filters are checked before either half runs: a new order they refuse cancels nothing.
    plan(shared, &place_params)?;
    let cancelled = cancel(shared, &cancel_params);
    if let (Err(e), true) = (&cancelled, stop_on_failure) {
        return Err(Refusal {
            status: 400,
            code: -2022,
            msg: "Order cancel-replace failed.".into(),
            data: Some(
                json!({"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": error_of(e), "newOrderResponse": null}),
            ),
        });
    }
    let placed = place(shared, &place_params);
    let outcome = |r: &Result<Value, Refusal>| match r {
        Ok(v) => ("SUCCESS", v.clone()),
        Err(e) => ("FAILURE", error_of(e)),
    };
    let (cancel_result, cancel_response) = outcome(&cancelled);
    let (new_result, new_response) = outcome(&placed);
    let body = json!({"cancelResult": cancel_result, "newOrderResult": new_result,
        "cancelResponse": cancel_response, "newOrderResponse": new_response});
    match (cancelled.is_ok(), placed.is_ok()) {
        (true, true) => Ok(body),
        (false, false) => Err(Refusal {
            status: 400,
            code: -2022,
            msg: "Order cancel-replace failed.".into(),
            data: Some(body),
        }),
        _ => Err(Refusal {
            status: 409,
            code: -2021,
            msg: "Order cancel-replace partially failed.".into(),
            data: Some(body),
        }),
    }
}

/// `order.amend.keepPriority`: lowers an open order's quantity in place; its queue position
/// is kept. A `newQty` at or below the executed quantity ends the order (`EXPIRED`, its
/// quantity then reads as the executed one). Emits `executionReport` `x`=`REPLACED` (`c` the
/// new client id, `C` the old) and the `outboundAccountPosition` of the released lock.
pub(super) fn amend(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let new_qty = p.dec("newQty")?.ok_or_else(|| mandatory("newQty"))?;
    if new_qty.is_zero() {
        return Err(refuse(-1013, "Filter failure: LOT_SIZE"));
    }
    if let Some(step) = shared
        .config
        .instruments
        .iter()
        .find(|i| i.symbol == symbol)
        .and_then(|i| Dec::parse(&i.step_size).ok())
        .filter(|s| !s.is_zero())
        && !new_qty.units().is_multiple_of(step.units())
    {
        return Err(refuse(-1013, "Filter failure: LOT_SIZE"));
    }
    let now = now_ms();
    let mut account = shared.ws_api.lock();
    let at = find(&account, &symbol, p, true)?
        .ok_or_else(|| refuse(-2038, "Order was not amended: unknown order sent."))?;
    let old = account.orders[at].clone();
    if new_qty > old.qty {
        return Err(refuse(
            -2038,
            "Order amend (quantity increase) is not supported.",
        ));
    }
    if new_qty == old.qty {
        return Err(refuse(
            -2038,
            "The requested action would change no state; rejecting",
        ));
    }
    let new_id = p.get("newClientOrderId").map_or_else(
        || format!("simamend{}", account.next_exec_id),
        str::to_owned,
    );
    // What executed or self-trade prevention took stays part of the quantity.
    let used = add(old.executed, old.prevented);
    let ends = new_qty <= used;
    let released = if ends {
        old.remaining()
    } else {
        sub(old.qty, new_qty)
    };
    // What the order's lock gives back (a waiting market buy holds none).
    let amount = match old.side {
        Side::Buy => mul(old.price, released),
        Side::Sell => released,
    }
    .min(old.lock);
    release(&mut account, &old.symbol, old.side, amount);
    let o = &mut account.orders[at];
    o.lock = sub(o.lock, amount);
    o.qty = if ends { used } else { new_qty };
    o.client_id = new_id.clone();
    o.updated = now;
    if ends {
        o.status = "EXPIRED";
    }
    let o = o.clone();
    let exec_id = account.next_exec_id;
    let (base, quote) = super::assets(&o.symbol);
    let events = vec![
        report_with(
            &mut account,
            &o,
            "REPLACED",
            None,
            now,
            Some((&new_id, &old.client_id)),
        ),
        super::account_position(&account, &[&base, &quote], now),
    ];
    publish(&mut account, events);
    Ok(
        json!({"transactTime": now, "executionId": exec_id, "amendedOrder": {
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
        "origClientOrderId": old.client_id, "clientOrderId": o.client_id,
        "price": fixed(o.price), "qty": fixed(o.qty), "executedQty": fixed(o.executed),
        "preventedQty": fixed(o.prevented), "quoteOrderQty": "0.00000000",
        "cumulativeQuoteQty": fixed(o.cum_quote), "status": o.status, "timeInForce": o.tif,
        "type": o.ty, "side": o.side.name(),
        "workingTime": o.working.map_or(-1, |w| w as i64),
        "selfTradePreventionMode": o.stp}}),
    )
}

/// Moves `amount` of a resting order's lock back to free.
fn release(account: &mut Account, symbol: &str, side: Side, amount: Dec) {
    let (base, quote) = super::assets(symbol);
    let asset = match side {
        Side::Buy => quote,
        Side::Sell => base,
    };
    let b = account.balances.entry(asset).or_default();
    b.1 = sub(b.1, amount);
    b.0 = add(b.0, amount);
}

/// `myTrades`: by `orderId`, from `fromId`, or within `startTime`..`endTime` (the most
/// recent `limit`, default 500, at most 1000), oldest first.
pub(super) fn my_trades(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let order_id = p.u64("orderId")?;
    let from_id = p.u64("fromId")?;
    let start = p.u64("startTime")?;
    let end = p.u64("endTime")?;
    let limit = p.u64("limit")?.unwrap_or(500);
    if limit == 0 || limit > 1000 {
        return Err(refuse(
            -1130,
            "Data sent for parameter 'limit' is not valid.",
        ));
    }
    let timed = start.is_some() || end.is_some();
    if timed && (from_id.is_some() || order_id.is_some()) {
        return Err(refuse(-1128, "Combination of optional parameters invalid."));
    }
    if let (Some(s), Some(e)) = (start, end)
        && (e < s || e - s > 86_400_000)
    {
        return Err(refuse(
            -1127,
            "More than 24 hours between startTime and endTime.",
        ));
    }
    let account = shared.ws_api.lock();
    let mut picked: Vec<&super::Trade> = account
        .trades
        .iter()
        .filter(|t| {
            t.symbol == symbol
                && order_id.is_none_or(|id| t.order_id == id)
                && from_id.is_none_or(|id| t.id >= id)
                && start.is_none_or(|s| t.time >= s)
                && end.is_none_or(|e| t.time <= e)
        })
        .collect();
    let limit = limit as usize;
    if from_id.is_some() {
        picked.truncate(limit);
    } else if picked.len() > limit {
        picked.drain(..picked.len() - limit);
    }
    Ok(Value::Array(
        picked
            .into_iter()
            .map(|t| {
                json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1,
                "price": fixed(t.price), "qty": fixed(t.qty), "quoteQty": fixed(t.quote),
                "commission": fixed(t.commission), "commissionAsset": t.commission_asset,
                "time": t.time, "isBuyer": t.buyer, "isMaker": t.maker, "isBestMatch": true})
            })
            .collect(),
    ))
}

/// `account.status`: commission rates (in basis points and as rates) and balances.
pub(super) fn account_status(shared: &LiveShared, p: &Params) -> Value {
    let omit_zero = p.get("omitZeroBalances") == Some("true");
    let account = shared.ws_api.lock();
    let (maker, taker) = account
        .config
        .as_ref()
        .map_or((Dec::default(), Dec::default()), |c| {
            (c.maker_commission, c.taker_commission)
        });
    // 0.001 → 10 (basis points).
    let bips = |rate: Dec| rate.units() / (super::ONE / 10_000);
    let balances: Vec<Value> = account
        .balances
        .iter()
        .filter(|(_, (f, l))| !omit_zero || !f.is_zero() || !l.is_zero())
        .map(|(a, (f, l))| json!({"asset": a, "free": fixed(*f), "locked": fixed(*l)}))
        .collect();
    json!({
        "makerCommission": bips(maker) as u64, "takerCommission": bips(taker) as u64,
        "buyerCommission": 0, "sellerCommission": 0,
        "canTrade": !account.revoked, "canWithdraw": true, "canDeposit": true,
        "commissionRates": {"maker": fixed(maker), "taker": fixed(taker),
            "buyer": "0.00000000", "seller": "0.00000000"},
        "brokered": false, "requireSelfTradePrevention": false, "preventSor": false,
        "updateTime": now_ms(), "accountType": "SPOT", "balances": balances,
        "permissions": ["SPOT"], "uid": 1,
    })
}

/// `account.commission`: the standard rates are the account's configured commission (the
/// buyer and seller parts zero); special and tax rates are zero and there is no BNB discount.
pub(super) fn account_commission(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").ok_or_else(|| mandatory("symbol"))?;
    if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(refuse(-1121, "Invalid symbol."));
    }
    let account = shared.ws_api.lock();
    let (maker, taker) = account
        .config
        .as_ref()
        .map_or((Dec::default(), Dec::default()), |c| {
            (c.maker_commission, c.taker_commission)
        });
    let zero = || json!({"maker": "0.00000000", "taker": "0.00000000", "buyer": "0.00000000", "seller": "0.00000000"});
    Ok(json!({
        "symbol": symbol.to_ascii_uppercase(),
        "standardCommission": {"maker": fixed(maker), "taker": fixed(taker),
            "buyer": "0.00000000", "seller": "0.00000000"},
        "specialCommission": zero(),
        "taxCommission": zero(),
        "discount": {"enabledForAccount": false, "enabledForSymbol": false,
            "discountAsset": "BNB", "discount": "0.00000000"},
    }))
}
