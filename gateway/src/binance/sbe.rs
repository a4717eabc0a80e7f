//! The WS API in SBE (`responseFormat=sbe`, schema 3:5): each binary frame is read with the
//! generated views of `pinion-sbe-spot` and written out as the JSON text the exchange would have
//! sent for it, into a buffer kept by the session, so the one reader of [`super::wire`] (and
//! everything behind it: the order table, the limits, the reconciliation) serves both formats.
//! The order path's own messages (execution reports, the answers to order requests) skip the
//! text: [`super::sbe_direct`] reads them straight into the same values, and leaves to this
//! module whatever it cannot read exactly as the text would be read.
//!
//! Only what pinion reads is written: the answers to the requests it sends (order acks and
//! results, cancels, amendments, order lists, order and trade queries, the account, the clock,
//! logon and subscribe) and the user data events (execution reports, balances, list status,
//! stream termination, server shutdown). Other templates become an event of no interest
//! (`Other`) or, as an answer, an unknown outcome (below).
//!
//! Values are written exactly: a decimal as its digits with the point where its exponent puts
//! it (never through `f64`), a timestamp from microseconds to the JSON API's milliseconds, an
//! enum as its JSON text (`mbx:jsonValue`). Whether a decimal fits the instrument's `Px`/`Qty`
//! is decided where the JSON text is read, exactly as for a JSON frame: a report that does not
//! fit makes its order *unknown* until a query settles it. An enum value the schema does not
//! name is written as `NON_REPRESENTABLE`, which no reader accepts. An answer whose result is
//! the exchange's `NonRepresentableMessage`, or cannot be read, becomes the error `-1000`
//! (outcome unknown), so an order request behind it is queried, never guessed; the same
//! message as an event is reported as [`Transcoded::NonRepresentable`].
//!
//! Nothing is allocated while the buffer's capacity (reserved at start-up) suffices; only
//! listings larger than it (open orders, trades after a reconnect) make it grow.

use pinion_sbe_spot::spot::{self, BoolEnum, Message};
use pinion_sbe_spot::{Decimal, SbeError};
pub use pinion_sbe_spot::{SCHEMA_ID, SCHEMA_VERSION, lifecycle};

/// Why an SBE frame could not be turned into JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SbeWireError {
    /// The frame (or a message inside it) is malformed.
    #[error("SBE frame: {0}")]
    Frame(#[from] SbeError),
    /// A top-level message that is neither an answer nor a user data event.
    #[error("SBE template {0} is neither a WebSocketResponse nor a user data event")]
    UnexpectedTemplate(u16),
}

/// What a binary frame became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcoded {
    /// The JSON text of the frame is in the buffer.
    Json,
    /// A `NonRepresentableMessage` as an event: something happened that this schema cannot
    /// say. Which order it concerns is not known.
    NonRepresentable,
}

/// The JSON the exchange uses for "outcome unknown"; written for an answer whose result is
/// not readable, so the request is treated as one whose execution status is unknown.
const UNKNOWN_CODE: i32 = -1000;

/// Reads `frame` and writes its JSON text into `out` (cleared first).
///
/// # Errors
/// [`SbeWireError`] when the frame is malformed or not a message a session receives.
pub fn transcode(frame: &[u8], out: &mut Vec<u8>) -> Result<Transcoded, SbeWireError> {
    out.clear();
    let mut w = Json(out);
    match pinion_sbe_spot::decode(frame)? {
        Message::WebSocketResponse(r) => {
            response(&mut w, &r)?;
            Ok(Transcoded::Json)
        }
        Message::NonRepresentableMessage(_) => Ok(Transcoded::NonRepresentable),
        m => {
            let Some(sub) = subscription(&m) else {
                return Err(SbeWireError::UnexpectedTemplate(template_of(frame)));
            };
            w.raw("{");
            if let Some(id) = sub {
                w.raw("\"subscriptionId\":");
                w.int(i64::from(id));
                w.raw(",");
            }
            w.raw("\"event\":");
            event(&mut w, &m)?;
            w.raw("}");
            Ok(Transcoded::Json)
        }
    }
}

fn template_of(frame: &[u8]) -> u16 {
    frame
        .get(2..4)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

/// The subscription of a user data event (`Some(None)` for a session event without one);
/// `None` when the message is not an event.
fn subscription(m: &Message<'_>) -> Option<Option<u16>> {
    Some(match m {
        Message::ExecutionReportEvent(e) => e.subscription_id(),
        Message::OutboundAccountPositionEvent(e) => e.subscription_id(),
        Message::BalanceUpdateEvent(e) => e.subscription_id(),
        Message::ListStatusEvent(e) => e.subscription_id(),
        Message::EventStreamTerminatedEvent(e) => e.subscription_id(),
        Message::ExternalLockUpdateEvent(e) => e.subscription_id(),
        Message::ServerShutdownEvent(_) => None,
        _ => return None,
    })
}

fn response(w: &mut Json<'_>, r: &spot::WebSocketResponseView<'_>) -> Result<(), SbeWireError> {
    w.raw("{\"id\":");
    let id = r.id()?;
    if id.is_empty() {
        w.raw("null");
    } else if id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()) {
        w.raw(id);
    } else {
        w.str(id);
    }
    w.raw(",\"status\":");
    w.int(i64::from(r.status()));
    w.raw(",\"rateLimits\":[");
    for (i, l) in r.rate_limits().enumerate() {
        let l = l?;
        if i > 0 {
            w.raw(",");
        }
        w.raw("{\"rateLimitType\":");
        w.enum_text(l.rate_limit_type().json_value());
        w.raw(",\"interval\":");
        w.enum_text(l.interval().json_value());
        w.raw(",\"intervalNum\":");
        w.int(i64::from(l.interval_num()));
        w.raw(",\"limit\":");
        w.int(l.rate_limit());
        w.raw(",\"count\":");
        w.int(l.current());
        w.raw("}");
    }
    w.raw("],");
    let mark = w.0.len();
    match pinion_sbe_spot::decode(r.result()) {
        Ok(Message::ErrorResponse(e)) => {
            w.raw("\"error\":{\"code\":");
            w.int(i64::from(e.code()));
            w.raw(",\"msg\":");
            w.str(e.msg()?);
            if e.retry_after().is_some() || e.server_time().is_some() {
                w.raw(",\"data\":{");
                let mut first = true;
                for (key, v) in [
                    ("retryAfter", e.retry_after()),
                    ("serverTime", e.server_time()),
                ] {
                    if let Some(us) = v {
                        if !first {
                            w.raw(",");
                        }
                        first = false;
                        w.key(key);
                        w.ms(us);
                    }
                }
                w.raw("}");
            }
            w.raw("}}");
        }
        Ok(m) => {
            w.raw("\"result\":");
            let at = w.0.len();
            if !matches!(result(w, &m), Ok(true)) {
                w.0.truncate(at);
                w.0.truncate(mark);
                unknown_outcome(w);
            }
            w.raw("}");
        }
        Err(_) => {
            w.0.truncate(mark);
            unknown_outcome(w);
            w.raw("}");
        }
    }
    Ok(())
}

fn unknown_outcome(w: &mut Json<'_>) {
    w.raw("\"error\":{\"code\":");
    w.int(i64::from(UNKNOWN_CODE));
    w.raw(",\"msg\":\"SBE result not readable: outcome unknown\"}");
}

/// The fields of an order as results and queries show them.
struct OrderFields<'a> {
    symbol: &'a str,
    order_id: i64,
    order_list_id: Option<i64>,
    client_order_id: &'a str,
    price: Decimal,
    orig_qty: Decimal,
    executed_qty: Decimal,
    cum_quote: Decimal,
    status: Option<&'static str>,
    tif: Option<&'static str>,
    order_type: Option<&'static str>,
    side: Option<&'static str>,
    stop_price: Option<Decimal>,
}

fn order(w: &mut Json<'_>, o: &OrderFields<'_>, extra: impl FnOnce(&mut Json<'_>)) {
    w.raw("{\"symbol\":");
    w.str(o.symbol);
    w.raw(",\"orderId\":");
    w.int(o.order_id);
    w.raw(",\"orderListId\":");
    w.int(o.order_list_id.unwrap_or(-1));
    w.raw(",\"clientOrderId\":");
    w.str(o.client_order_id);
    for (key, d) in [
        ("price", o.price),
        ("origQty", o.orig_qty),
        ("executedQty", o.executed_qty),
        ("cummulativeQuoteQty", o.cum_quote),
    ] {
        w.raw(",");
        w.key(key);
        w.dec(d);
    }
    for (key, e) in [
        ("status", o.status),
        ("timeInForce", o.tif),
        ("type", o.order_type),
        ("side", o.side),
    ] {
        w.raw(",");
        w.key(key);
        w.enum_text(e);
    }
    if let Some(p) = o.stop_price {
        w.raw(",\"stopPrice\":");
        w.dec(p);
    }
    extra(w);
    w.raw("}");
}

macro_rules! order_fields {
    ($v:expr, $client:expr) => {
        OrderFields {
            symbol: $v.symbol()?,
            order_id: $v.order_id(),
            order_list_id: $v.order_list_id(),
            client_order_id: $client,
            price: $v.price(),
            orig_qty: $v.orig_qty(),
            executed_qty: $v.executed_qty(),
            cum_quote: $v.cummulative_quote_qty(),
            status: $v.status().json_value(),
            tif: $v.time_in_force().json_value(),
            order_type: $v.order_type().json_value(),
            side: $v.side().json_value(),
            stop_price: $v.stop_price(),
        }
    };
}

/// One list's fields, as list results and `openOrderLists.status` show them.
fn list<'a, O>(
    w: &mut Json<'_>,
    head: (
        i64,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        i64,
    ),
    names: (&str, &str),
    orders: impl Iterator<Item = Result<O, SbeError>>,
    leg: impl Fn(&O) -> Result<(i64, &'a str, &'a str), SbeError>,
) -> Result<(), SbeError> {
    let (id, contingency, status_type, order_status, time) = head;
    let (client, symbol) = names;
    w.raw("{\"orderListId\":");
    w.int(id);
    w.raw(",\"contingencyType\":");
    w.enum_text(contingency);
    w.raw(",\"listStatusType\":");
    w.enum_text(status_type);
    w.raw(",\"listOrderStatus\":");
    w.enum_text(order_status);
    w.raw(",\"listClientOrderId\":");
    w.str(client);
    w.raw(",\"transactionTime\":");
    w.ms(time);
    w.raw(",\"symbol\":");
    w.str(symbol);
    w.raw(",\"orders\":[");
    for (i, o) in orders.enumerate() {
        let (order_id, symbol, client_id) = leg(&o?)?;
        if i > 0 {
            w.raw(",");
        }
        w.raw("{\"symbol\":");
        w.str(symbol);
        w.raw(",\"orderId\":");
        w.int(order_id);
        w.raw(",\"clientOrderId\":");
        w.str(client_id);
        w.raw("}");
    }
    w.raw("]}");
    Ok(())
}

macro_rules! list_of {
    ($w:expr, $v:expr, $time:expr) => {
        list(
            $w,
            (
                $v.order_list_id(),
                $v.contingency_type().json_value(),
                $v.list_status_type().json_value(),
                $v.list_order_status().json_value(),
                $time,
            ),
            ($v.list_client_order_id()?, $v.symbol()?),
            $v.orders(),
            |o| Ok((o.order_id(), o.symbol()?, o.client_order_id()?)),
        )?
    };
}

/// A response's result, as the JSON API shows it for the fields pinion reads; `false` for a
/// message that is no answer pinion asks for (`NonRepresentableMessage` among them).
fn result(w: &mut Json<'_>, m: &Message<'_>) -> Result<bool, SbeError> {
    match m {
        Message::ServerTimeResponse(t) => {
            w.raw("{\"serverTime\":");
            w.ms(t.server_time());
            w.raw("}");
        }
        Message::WebSocketSessionLogonResponse(l) => {
            w.raw("{\"apiKey\":");
            w.str(l.logged_on_api_key()?);
            w.raw(",\"authorizedSince\":");
            w.ms(l.authorized_since());
            w.raw(",\"connectedSince\":");
            w.ms(l.connected_since());
            w.raw(",\"serverTime\":");
            w.ms(l.server_time());
            w.raw("}");
        }
        Message::UserDataStreamSubscribeResponse(s) => match s.subscription_id() {
            Some(id) => {
                w.raw("{\"subscriptionId\":");
                w.int(i64::from(id));
                w.raw("}");
            }
            None => w.raw("{}"),
        },
        Message::NewOrderAckResponse(a) => {
            w.raw("{\"symbol\":");
            w.str(a.symbol()?);
            w.raw(",\"orderId\":");
            w.int(a.order_id());
            w.raw(",\"orderListId\":");
            w.int(a.order_list_id().unwrap_or(-1));
            w.raw(",\"clientOrderId\":");
            w.str(a.client_order_id()?);
            w.raw(",\"transactTime\":");
            w.ms(a.transact_time());
            w.raw("}");
        }
        Message::NewOrderResultResponse(r) => {
            let time = r.transact_time();
            order(w, &order_fields!(r, r.client_order_id()?), |w| {
                w.raw(",\"transactTime\":");
                w.ms(time);
            });
        }
        Message::NewOrderFullResponse(r) => {
            let time = r.transact_time();
            order(w, &order_fields!(r, r.client_order_id()?), |w| {
                w.raw(",\"transactTime\":");
                w.ms(time);
            });
        }
        Message::CancelOrderResponse(c) => {
            let (time, orig) = (c.transact_time(), c.orig_client_order_id()?);
            order(w, &order_fields!(c, c.client_order_id()?), |w| {
                w.raw(",\"origClientOrderId\":");
                w.str(orig);
                w.raw(",\"transactTime\":");
                w.ms(time);
            });
        }
        Message::OrderResponse(o) => {
            order(w, &order_fields!(o, o.client_order_id()?), |_| {});
        }
        Message::OrdersResponse(o) => {
            w.raw("[");
            for (i, e) in o.orders().enumerate() {
                let e = e?;
                if i > 0 {
                    w.raw(",");
                }
                order(w, &order_fields!(e, e.client_order_id()?), |_| {});
            }
            w.raw("]");
        }
        Message::OrderAmendKeepPriorityResponse(a) => {
            w.raw("{\"transactTime\":");
            w.ms(a.transact_time());
            w.raw(",\"executionId\":");
            w.int(a.execution_id());
            w.raw(",\"amendedOrder\":");
            let fields = OrderFields {
                symbol: a.symbol()?,
                order_id: a.order_id(),
                order_list_id: a.order_list_id(),
                client_order_id: a.client_order_id()?.unwrap_or(""),
                price: a.price(),
                orig_qty: a.qty(),
                executed_qty: a.executed_qty(),
                cum_quote: a.cumulative_quote_qty(),
                status: a.status().json_value(),
                tif: a.time_in_force().json_value(),
                order_type: a.order_type().json_value(),
                side: a.side().json_value(),
                stop_price: a.stop_price(),
            };
            order(w, &fields, |_| {});
            w.raw("}");
        }
        Message::CancelReplaceOrderResponse(c) => {
            // The session acts on the outcome (both legs done, or the 409 error); the orders'
            // own reports and queries say the rest.
            w.raw("{\"cancelResult\":");
            w.enum_text(c.cancel_result().json_value());
            w.raw(",\"newOrderResult\":");
            w.enum_text(c.new_order_result().json_value());
            w.raw("}");
        }
        Message::CancelOpenOrdersResponse(_) => {
            // pinion acts on the outcome of `openOrders.cancelAll` only; the orders it closed
            // arrive one by one as execution reports.
            w.raw("[]");
        }
        Message::AccountResponse(a) => {
            w.raw("{\"balances\":[");
            for (i, b) in a.balances().enumerate() {
                let b = b?;
                if i > 0 {
                    w.raw(",");
                }
                w.raw("{\"asset\":");
                w.str(b.asset()?);
                w.raw(",\"free\":");
                w.dec(b.free());
                w.raw(",\"locked\":");
                w.dec(b.locked());
                w.raw("}");
            }
            w.raw("]}");
        }
        Message::AccountTradesResponse(t) => {
            w.raw("[");
            for (i, e) in t.trades().enumerate() {
                let e = e?;
                if i > 0 {
                    w.raw(",");
                }
                w.raw("{\"symbol\":");
                w.str(e.symbol()?);
                w.raw(",\"id\":");
                w.int(e.id());
                w.raw(",\"orderId\":");
                w.int(e.order_id());
                w.raw(",\"price\":");
                w.dec(e.price());
                w.raw(",\"qty\":");
                w.dec(e.qty());
                w.raw(",\"time\":");
                w.ms(e.time());
                w.raw(",\"isMaker\":");
                w.bool(e.is_maker());
                w.raw("}");
            }
            w.raw("]");
        }
        Message::NewOrderListAckResponse(l) => list_of!(w, l, l.transaction_time()),
        Message::NewOrderListResultResponse(l) => list_of!(w, l, l.transaction_time()),
        Message::NewOrderListFullResponse(l) => list_of!(w, l, l.transaction_time()),
        Message::CancelOrderListResponse(l) => list_of!(w, l, l.transaction_time()),
        Message::OrderListResponse(l) => list_of!(w, l, l.transaction_time()),
        Message::OrderListsResponse(ls) => {
            w.raw("[");
            for (i, l) in ls.order_lists().enumerate() {
                let l = l?;
                if i > 0 {
                    w.raw(",");
                }
                list_of!(w, l, l.transaction_time());
            }
            w.raw("]");
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A user data event, as the JSON API's `event` object.
fn event(w: &mut Json<'_>, m: &Message<'_>) -> Result<(), SbeError> {
    match m {
        Message::ExecutionReportEvent(e) => {
            w.raw("{\"e\":\"executionReport\",\"E\":");
            w.ms(e.event_time());
            w.raw(",\"s\":");
            w.str(e.symbol()?);
            w.raw(",\"c\":");
            w.str(e.client_order_id()?);
            for (key, v) in [
                ("S", e.side().json_value()),
                ("o", e.order_type().json_value()),
                ("f", e.time_in_force().json_value()),
            ] {
                w.raw(",");
                w.key(key);
                w.enum_text(v);
            }
            w.raw(",\"q\":");
            w.dec(e.orig_qty());
            w.raw(",\"p\":");
            w.dec(e.price());
            w.raw(",\"P\":");
            w.dec(e.stop_price());
            w.raw(",\"C\":");
            w.str(e.orig_client_order_id()?.unwrap_or(""));
            w.raw(",\"x\":");
            w.enum_text(e.execution_type().json_value());
            w.raw(",\"X\":");
            w.enum_text(e.order_status().json_value());
            w.raw(",\"r\":");
            w.str(e.reject_reason()?.unwrap_or("NONE"));
            w.raw(",\"i\":");
            w.int(e.order_id());
            w.raw(",\"l\":");
            w.dec(e.last_qty());
            w.raw(",\"z\":");
            w.dec(e.executed_qty());
            w.raw(",\"L\":");
            w.dec(e.last_price());
            w.raw(",\"n\":");
            w.dec(e.commission());
            w.raw(",\"N\":");
            match e.commission_asset()? {
                Some(a) => w.str(a),
                None => w.raw("null"),
            }
            w.raw(",\"T\":");
            w.ms(e.transact_time());
            w.raw(",\"t\":");
            w.int(e.trade_id().unwrap_or(-1));
            w.raw(",\"I\":");
            w.int(e.execution_id());
            w.raw(",\"w\":");
            w.bool(e.is_working());
            w.raw(",\"m\":");
            w.bool(e.is_maker());
            w.raw(",\"O\":");
            match e.order_creation_time() {
                Some(t) => w.ms(t),
                None => w.raw("-1"),
            }
            w.raw(",\"Z\":");
            w.dec(e.cummulative_quote_qty());
            w.raw(",\"Y\":");
            w.dec(e.quote_qty());
            w.raw(",\"g\":");
            w.int(e.order_list_id().unwrap_or(-1));
            w.raw(",\"V\":");
            w.enum_text(e.self_trade_prevention_mode().json_value());
            if let Some(t) = e.working_time() {
                w.raw(",\"W\":");
                w.ms(t);
            }
            if let Some(d) = e.trailing_delta() {
                w.raw(",\"d\":");
                w.uint(d);
            }
            if let Some(t) = e.trailing_time() {
                w.raw(",\"D\":");
                w.ms(t);
            }
            if let Some(r) = e.expiry_reason() {
                w.raw(",\"eR\":");
                w.enum_text(r.json_value());
            }
            // Self-trade prevention: only when a match was prevented.
            if let Some(id) = e.prevented_match_id() {
                w.raw(",\"v\":");
                w.int(id);
                w.raw(",\"A\":");
                w.dec(e.prevented_qty());
                if let Some(q) = e.last_prevented_qty() {
                    w.raw(",\"B\":");
                    w.dec(q);
                }
                if let Some(id) = e.counter_order_id() {
                    w.raw(",\"U\":");
                    w.int(id);
                }
                if let Some(id) = e.trade_group_id() {
                    w.raw(",\"u\":");
                    w.int(id);
                }
                if let Some(s) = e.counter_symbol()? {
                    w.raw(",\"Cs\":");
                    w.str(s);
                }
                for (key, v) in [
                    ("pl", e.prevented_execution_qty()),
                    ("pL", e.prevented_execution_price()),
                    ("pY", e.prevented_execution_quote_qty()),
                ] {
                    if let Some(d) = v {
                        w.raw(",");
                        w.key(key);
                        w.dec(d);
                    }
                }
            }
            w.raw("}");
        }
        Message::OutboundAccountPositionEvent(p) => {
            w.raw("{\"e\":\"outboundAccountPosition\",\"E\":");
            w.ms(p.event_time());
            w.raw(",\"u\":");
            w.ms(p.update_time());
            w.raw(",\"B\":[");
            for (i, b) in p.balances().enumerate() {
                let b = b?;
                if i > 0 {
                    w.raw(",");
                }
                w.raw("{\"a\":");
                w.str(b.asset()?);
                w.raw(",\"f\":");
                w.dec(b.free());
                w.raw(",\"l\":");
                w.dec(b.locked());
                w.raw("}");
            }
            w.raw("]}");
        }
        Message::BalanceUpdateEvent(b) => {
            w.raw("{\"e\":\"balanceUpdate\",\"E\":");
            w.ms(b.event_time());
            w.raw(",\"a\":");
            w.str(b.asset()?);
            w.raw(",\"d\":");
            w.dec(b.free_qty_delta());
            w.raw(",\"T\":");
            w.ms(b.clear_time().unwrap_or(b.event_time()));
            w.raw("}");
        }
        Message::ListStatusEvent(l) => {
            w.raw("{\"e\":\"listStatus\",\"E\":");
            w.ms(l.event_time());
            w.raw(",\"s\":");
            w.str(l.symbol()?);
            w.raw(",\"g\":");
            w.int(l.order_list_id());
            for (key, v) in [
                ("c", l.contingency_type().json_value()),
                ("l", l.list_status_type().json_value()),
                ("L", l.list_order_status().json_value()),
            ] {
                w.raw(",");
                w.key(key);
                w.enum_text(v);
            }
            w.raw(",\"r\":");
            w.str(l.reject_reason()?.unwrap_or("NONE"));
            w.raw(",\"C\":");
            w.str(l.list_client_order_id()?);
            w.raw(",\"T\":");
            w.ms(l.transact_time());
            w.raw(",\"O\":[");
            for (i, o) in l.orders().enumerate() {
                let o = o?;
                if i > 0 {
                    w.raw(",");
                }
                w.raw("{\"s\":");
                w.str(o.symbol()?);
                w.raw(",\"i\":");
                w.int(o.order_id());
                w.raw(",\"c\":");
                w.str(o.client_order_id()?);
                w.raw("}");
            }
            w.raw("]}");
        }
        Message::EventStreamTerminatedEvent(t) => {
            w.raw("{\"e\":\"eventStreamTerminated\",\"E\":");
            w.ms(t.event_time());
            w.raw("}");
        }
        Message::ServerShutdownEvent(s) => {
            w.raw("{\"e\":\"serverShutdown\",\"E\":");
            w.ms(s.event_time());
            w.raw("}");
        }
        Message::ExternalLockUpdateEvent(e) => {
            w.raw("{\"e\":\"externalLockUpdate\",\"E\":");
            w.ms(e.event_time());
            w.raw("}");
        }
        _ => w.raw("{\"e\":\"other\"}"),
    }
    Ok(())
}

/// A JSON writer over the session's buffer: digits by hand, no formatting machinery.
struct Json<'a>(&'a mut Vec<u8>);

impl Json<'_> {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn key(&mut self, k: &str) {
        self.0.push(b'"');
        self.raw(k);
        self.raw("\":");
    }

    /// A string, escaped as JSON requires.
    fn str(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' => self.raw("\\\""),
                b'\\' => self.raw("\\\\"),
                0..=0x1f => {
                    self.raw("\\u00");
                    self.0.push(HEX[usize::from(b >> 4)]);
                    self.0.push(HEX[usize::from(b & 15)]);
                }
                _ => self.0.push(b),
            }
        }
        self.0.push(b'"');
    }

    fn enum_text(&mut self, v: Option<&'static str>) {
        self.0.push(b'"');
        self.raw(v.unwrap_or("NON_REPRESENTABLE"));
        self.0.push(b'"');
    }

    fn bool(&mut self, b: BoolEnum) {
        match b {
            BoolEnum::True => self.raw("true"),
            BoolEnum::False => self.raw("false"),
            // Neither: no reader takes it for a boolean.
            BoolEnum::Unrecognised(_) => self.raw("\"NON_REPRESENTABLE\""),
        }
    }

    fn uint(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&digits[at..]);
    }

    fn int(&mut self, v: i64) {
        if v < 0 {
            self.0.push(b'-');
        }
        self.uint(v.unsigned_abs());
    }

    /// Microseconds as the JSON API's milliseconds (rounded down, as the exchange truncates).
    fn ms(&mut self, us: i64) {
        self.int(us.div_euclid(1000));
    }

    /// A decimal as exact text in quotes: `mantissa × 10^exponent`.
    fn dec(&mut self, d: Decimal) {
        self.0.push(b'"');
        if d.mantissa < 0 {
            self.0.push(b'-');
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut v = d.mantissa.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let digits = &digits[at..];
        if d.exponent >= 0 {
            self.0.extend_from_slice(digits);
            if d.mantissa != 0 {
                for _ in 0..d.exponent {
                    self.0.push(b'0');
                }
            }
        } else {
            let frac = usize::from(d.exponent.unsigned_abs());
            if digits.len() > frac {
                let (int, f) = digits.split_at(digits.len() - frac);
                self.0.extend_from_slice(int);
                self.0.push(b'.');
                self.0.extend_from_slice(f);
            } else {
                self.raw("0.");
                for _ in 0..frac - digits.len() {
                    self.0.push(b'0');
                }
                self.0.extend_from_slice(digits);
            }
        }
        self.0.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(mantissa: i64, exponent: i8) -> String {
        let mut v = Vec::new();
        Json(&mut v).dec(Decimal { mantissa, exponent });
        String::from_utf8(v).expect("utf-8")
    }

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(dec(6_000_000_000_000, -8), "\"60000.00000000\"");
        assert_eq!(dec(100_000, -8), "\"0.00100000\"");
        assert_eq!(dec(5, -3), "\"0.005\"");
        assert_eq!(dec(-5, -1), "\"-0.5\"");
        assert_eq!(dec(0, -8), "\"0.00000000\"");
        assert_eq!(dec(12, 3), "\"12000\"");
        assert_eq!(dec(0, 3), "\"0\"");
        assert_eq!(dec(i64::MIN, -2), "\"-92233720368547758.08\"");
        // A large negative exponent is still exact text (the instrument decides if it fits).
        assert_eq!(dec(1, -20), "\"0.00000000000000000001\"");
    }

    #[test]
    fn strings_are_escaped_and_times_are_milliseconds() {
        let mut v = Vec::new();
        let mut w = Json(&mut v);
        w.str("a\"b\\c\n");
        w.raw(" ");
        w.ms(1_780_000_000_123_456);
        w.raw(" ");
        w.int(-42);
        assert_eq!(
            String::from_utf8(v).expect("utf-8"),
            "\"a\\\"b\\\\c\\u000a\" 1780000000123 -42"
        );
    }
}
