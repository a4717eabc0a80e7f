//! Fuzz target: arbitrary text as a frame from Binance's WebSocket API (responses and user data
//! events) through `pinion_gateway::binance::wire::parse_frame` and `parse_event`, then every
//! typed view of what was read: a response's failure, order ack, order snapshot, open orders,
//! server time, subscription id, trades and account balances, an order list's answer and the
//! open order lists (typed), an execution report's typed view at the price and quantity
//! decimals the first byte picks, and a `listStatus` typed. None may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_gateway::binance::wire::{self, Frame, UserEvent};

fn event(event: &UserEvent<'_>, price_decimals: u8, qty_decimals: u8) {
    match event {
        UserEvent::ExecutionReport(report) => {
            let _ = report.typed(price_decimals, qty_decimals);
        }
        UserEvent::ListStatus(list) => {
            let _ = list.typed();
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&decimals, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    // Up to 15 decimals each side of the byte: beyond what a Decimal holds, to reach its errors.
    let (price_decimals, qty_decimals) = (decimals & 0x0f, decimals >> 4);
    match wire::parse_frame(text) {
        Ok(Frame::Response(r)) => {
            let _ = r.failure();
            let _ = r.order_ack();
            let _ = r.order_snapshot();
            let _ = r.open_orders();
            let _ = r.server_time();
            let _ = r.subscription_id();
            let _ = r.my_trades();
            let _ = r.account_balances();
            if let Ok(list) = r.order_list() {
                let _ = list.typed();
            }
            if let Ok(lists) = r.open_order_lists() {
                for l in &lists {
                    let _ = l.typed();
                }
            }
        }
        Ok(Frame::Event { event: e, .. }) => event(&e, price_decimals, qty_decimals),
        Err(_) => {}
    }
    if let Ok(e) = wire::parse_event(text) {
        event(&e, price_decimals, qty_decimals);
    }
});
