//! What the WS API sends back: request responses and user data events, parsed without copying.
//!
//! One text frame is one of:
//!
//! * a **response** `{"id":…,"status":…,"result":…|"error":{code,msg,data?},"rateLimits":[…]}`
//!   ([`Response`]): `result` is kept as raw JSON and read on demand ([`Response::order_ack`],
//!   [`Response::server_time`], …), `rateLimits` is read into a fixed array (an SBE session's
//!   answers to order requests arrive already read, [`ResultBody::Order`]);
//! * a **user data event** `{"subscriptionId":N,"event":{"e":…}}` ([`UserEvent`]), or a
//!   session event without a subscription (`serverShutdown`).
//!
//! The frame's top level, and an event's type, are read by a small scanner that finds each
//! member's raw text without copying ([`RawJson`]); serde then reads only the members wanted.
//! (serde_json's own skipping of a nested value, and its raw values, allocate; an order list's
//! answer and its `listStatus` nest.)
//!
//! Strings are borrowed from the frame; an escaped string where none is expected is an error.
//! Prices and quantities stay text here and become [`Px`]/[`Qty`] exactly (never `f64`) when a
//! caller converts them at its instrument's decimals ([`RawExecutionReport::typed`]). Events are
//! read in two passes (the type `e`, then the event's own fields) because the same key means
//! different things in different events (`B`, `a`). Nothing here allocates on the order path
//! (responses to order requests, execution reports); error messages may, when escaped.

use std::borrow::Cow;

use arrayvec::ArrayVec;
use pinion_core::{Decimal, DecimalError, Px, Qty};
use pinion_feed::exchange_info::{RateLimitInterval, RateLimitKind};
use pinion_strategy::OrderSide;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Why a frame could not be read. Says which field and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not JSON of the expected shape (serde's message says where).
    #[error("{what}: {detail}")]
    Json {
        /// What was being read.
        what: &'static str,
        /// serde_json's description, with line and column.
        detail: String,
    },
    /// A frame that is neither a response nor an event.
    #[error("frame is neither a response (status) nor an event")]
    UnknownFrame,
    /// A response with neither `result` nor `error`.
    #[error("response with status {0} has neither result nor error")]
    NoOutcome(u16),
    /// A field with an enum value this code does not know.
    #[error("{field} has unknown value {value:?}")]
    UnknownValue {
        /// The field.
        field: &'static str,
        /// What was seen (at most 32 bytes of it).
        value: String,
    },
    /// A decimal field that is not an exact decimal at the instrument's scale.
    #[error("{field} = {value:?}: {source}")]
    Decimal {
        /// The field.
        field: &'static str,
        /// What was seen.
        value: String,
        /// Why it did not parse.
        source: DecimalError,
    },
    /// The response asked for is an error, or has no object result.
    #[error("{0}: response has no object result")]
    NoResult(&'static str),
}

fn json_error(what: &'static str) -> impl FnOnce(serde_json::Error) -> WireError {
    move |e| WireError::Json {
        what,
        detail: e.to_string(),
    }
}

fn unknown(field: &'static str, value: &str) -> WireError {
    let mut end = value.len().min(32);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    WireError::UnknownValue {
        field,
        value: value[..end].to_owned(),
    }
}

/// The `id` a response echoes: pinion sends integers; `null` when the server speaks unasked
/// (a revoked session); text only from other clients' requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseId<'a> {
    /// An integer id.
    Num(u64),
    /// A text id.
    Text(&'a str),
    /// `null`.
    Null,
}

// By hand rather than `#[serde(untagged)]`, which buffers the value (and allocates).
impl<'de: 'a, 'a> Deserialize<'de> for ResponseId<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ResponseId<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unsigned integer, an unescaped string or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ResponseId::Num(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ResponseId::Text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ResponseId::Null)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One `rateLimits` entry: the server's count of one window after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitCount {
    /// What is counted.
    #[serde(rename = "rateLimitType")]
    pub kind: RateLimitKind,
    /// The window's unit.
    pub interval: RateLimitInterval,
    /// Units per window.
    pub interval_num: u32,
    /// The limit.
    pub limit: u32,
    /// The server's count in the current window.
    pub count: u32,
}

/// Most `rateLimits` entries kept from one response (Binance sends up to four).
pub const MAX_RATE_LIMITS: usize = 8;

/// The `rateLimits` array, in a fixed array (extra entries are an error, not dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits(pub ArrayVec<RateLimitCount, MAX_RATE_LIMITS>);

impl<'de> Deserialize<'de> for RateLimits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RateLimits;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_RATE_LIMITS} rate limits")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RateLimits, A::Error> {
                let mut out = ArrayVec::new();
                while let Some(item) = seq.next_element::<RateLimitCount>()? {
                    out.try_push(item)
                        .map_err(|_| de::Error::invalid_length(MAX_RATE_LIMITS + 1, &self))?;
                }
                Ok(RateLimits(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError<'a> {
    /// Binance's error code (`-2010`, `-1021`, …).
    pub code: i32,
    /// The message (the matching engine's text behind `-2010`/`-2011` tells causes apart).
    #[serde(borrow)]
    pub msg: Cow<'a, str>,
    /// Extra data (`retryAfter`, cancel-replace legs), raw.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(rename = "retryAfter")]
    retry_after: Option<u64>,
    #[serde(rename = "serverTime")]
    server_time: Option<u64>,
}

impl ApiError<'_> {
    /// `data.retryAfter` (epoch ms on the WS API), if given.
    pub fn retry_after_ms(&self) -> Option<u64> {
        let data = self.data?;
        serde_json::from_str::<ErrorData>(data.get())
            .ok()?
            .retry_after
    }

    /// `data.serverTime`, if given.
    pub fn server_time_ms(&self) -> Option<u64> {
        let data = self.data?;
        serde_json::from_str::<ErrorData>(data.get())
            .ok()?
            .server_time
    }
}

/// What a failed (or unanswered) request means for the order it carried. Decides whether an
/// order may be called rejected: only when the exchange says so for certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The request was refused and did nothing (4xx with a definite code).
    Refused,
    /// Execution status unknown: `-1006`, `-1007`, `-1000`, 5xx, timeout, disconnect. The order
    /// may exist; resolve from user data or `order.status`, resend only with the same id.
    Unknown,
    /// `-2011 "Unknown order sent."` on a cancel: the order may already be closed (filled), so
    /// wait for user data or query; never a final rejection of the order.
    CancelUnknownOrder,
    /// `-2010 "Duplicate order sent."`: an order with that client id exists (a resend proved
    /// the first one arrived).
    Duplicate,
    /// `-1021`: outside `recvWindow`. Re-estimate the clock; never resend blindly.
    Timestamp,
    /// 429 / `-1015` / `-1003`: rate limited, that class stops until `retryAfter`.
    RateLimited,
    /// 418: banned; everything stops until `retryAfter`.
    Banned,
    /// 409: `order.cancelReplace` partly succeeded; read the legs.
    PartialSuccess,
    /// `-2015` / `-2014` / `-1002`: the key is not (or no longer) allowed to do this: revoked,
    /// wrong IP, missing permission. The request did nothing, and user data has stopped.
    Unauthorized,
}

impl Failure {
    /// The class of a response with `status` and (if any) error `code` and `msg`.
    pub fn classify(status: u16, code: i32, msg: &str) -> Self {
        match (status, code) {
            (418, _) => Failure::Banned,
            (429, _) | (_, -1015) | (_, -1003) => Failure::RateLimited,
            (409, _) => Failure::PartialSuccess,
            (s, _) if s >= 500 => Failure::Unknown,
            (_, -1000 | -1006 | -1007) => Failure::Unknown,
            (_, -1021) => Failure::Timestamp,
            (_, -2011) if msg.starts_with("Unknown order") => Failure::CancelUnknownOrder,
            (_, -2010) if msg.starts_with("Duplicate order") => Failure::Duplicate,
            (_, -2015 | -2014 | -1002) => Failure::Unauthorized,
            _ => Failure::Refused,
        }
    }
}

/// A response to a request.
#[derive(Debug, Clone)]
pub struct Response<'a> {
    /// The echoed request id.
    pub id: ResponseId<'a>,
    /// HTTP-like status: 200 ok, 400 failed, 409 partial, 418 banned, 429 limited, 5xx unknown.
    pub status: u16,
    /// The `result`, or the error.
    pub outcome: Result<ResultBody<'a>, ApiError<'a>>,
    /// The server's counts after this request (empty when `returnRateLimits` is off).
    pub rate_limits: RateLimits,
}

/// A successful response's `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultBody<'a> {
    /// The raw JSON text, read on demand by the accessors of [`Response`].
    Json(RawJson<'a>),
    /// The answer to an order request (`order.place`, `order.cancel`, `order.amend.keepPriority`,
    /// `order.cancelReplace`) read straight from an SBE frame ([`super::sbe_direct`]): only
    /// what the session reads of it, the order's ids and time when the message has them (what
    /// [`Response::order_ack`] gives; `None` for an amendment or a cancel-replace, whose JSON
    /// has no such top-level fields either). Every other accessor finds no result in it.
    Order(Option<OrderAck<'a>>),
}

impl<'a> ResultBody<'a> {
    /// The JSON text, when the result is one.
    pub fn json(&self) -> Option<RawJson<'a>> {
        match self {
            ResultBody::Json(raw) => Some(*raw),
            ResultBody::Order(_) => None,
        }
    }
}

/// The `ACK` result of `order.place` (and the fields every order result has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAck<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// The exchange's order id.
    pub order_id: u64,
    /// The client order id.
    pub client_order_id: &'a str,
    /// When the matching engine accepted it, ms.
    pub transact_time: u64,
}

/// An order as `order.status`, `order.cancel` (RESULT) and `openOrders.status` return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSnapshot<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// The exchange's order id.
    pub order_id: u64,
    /// The client order id (for a cancel response: the cancel's own id).
    pub client_order_id: &'a str,
    /// For a cancel response: the cancelled order's client id.
    #[serde(default)]
    pub orig_client_order_id: Option<&'a str>,
    /// Limit price.
    pub price: &'a str,
    /// Order quantity.
    pub orig_qty: &'a str,
    /// Filled so far.
    pub executed_qty: &'a str,
    /// Quote filled so far (sic: double m).
    pub cummulative_quote_qty: &'a str,
    /// Order status.
    pub status: &'a str,
}

impl<'a> Response<'a> {
    /// The error class, `None` when the request succeeded.
    pub fn failure(&self) -> Option<Failure> {
        match &self.outcome {
            Ok(_) if self.status < 300 => None,
            Ok(_) => Some(Failure::classify(self.status, 0, "")),
            Err(e) => Some(Failure::classify(self.status, e.code, &e.msg)),
        }
    }

    fn result_as<T: Deserialize<'a>>(&self, what: &'static str) -> Result<T, WireError> {
        match self.outcome {
            Ok(ResultBody::Json(raw)) if raw.get().starts_with('{') => {
                serde_json::from_str(raw.get()).map_err(json_error(what))
            }
            _ => Err(WireError::NoResult(what)),
        }
    }

    /// The `order.place` ACK result.
    pub fn order_ack(&self) -> Result<OrderAck<'a>, WireError> {
        match self.outcome {
            Ok(ResultBody::Order(ack)) => ack.ok_or(WireError::NoResult("order ack")),
            _ => self.result_as("order ack"),
        }
    }

    /// An order result (`order.status`, `order.cancel`).
    pub fn order_snapshot(&self) -> Result<OrderSnapshot<'a>, WireError> {
        self.result_as("order result")
    }

    /// `openOrders.status`: every open order (off the hot path: allocates the list).
    pub fn open_orders(&self) -> Result<Vec<OrderSnapshot<'a>>, WireError> {
        match self.outcome {
            Ok(ResultBody::Json(raw)) => {
                serde_json::from_str(raw.get()).map_err(json_error("open orders"))
            }
            _ => Err(WireError::NoResult("open orders")),
        }
    }

    /// An order list result (`orderList.place.*`, `orderList.cancel`).
    pub fn order_list(&self) -> Result<ListSnapshot<'a>, WireError> {
        self.result_as("order list result")
    }

    /// `openOrderLists.status`: every open order list (off the hot path: allocates the list).
    pub fn open_order_lists(&self) -> Result<Vec<ListSnapshot<'a>>, WireError> {
        match self.outcome {
            Ok(ResultBody::Json(raw)) => {
                serde_json::from_str(raw.get()).map_err(json_error("open order lists"))
            }
            _ => Err(WireError::NoResult("open order lists")),
        }
    }

    /// `time`'s `serverTime`, ms.
    pub fn server_time(&self) -> Result<u64, WireError> {
        #[derive(Deserialize)]
        struct T {
            #[serde(rename = "serverTime")]
            server_time: u64,
        }
        self.result_as::<T>("time result").map(|t| t.server_time)
    }

    /// `myTrades`: the account's trades (off the hot path, after a reconnect: allocates the
    /// list).
    pub fn my_trades(&self) -> Result<Vec<MyTrade<'a>>, WireError> {
        match self.outcome {
            Ok(ResultBody::Json(raw)) => {
                serde_json::from_str(raw.get()).map_err(json_error("my trades"))
            }
            _ => Err(WireError::NoResult("my trades")),
        }
    }

    /// `account.status`'s balances (off the hot path: allocates the list).
    pub fn account_balances(&self) -> Result<Vec<AccountBalance<'a>>, WireError> {
        #[derive(Deserialize)]
        struct Account<'a> {
            #[serde(borrow)]
            balances: Vec<AccountBalance<'a>>,
        }
        self.result_as::<Account<'a>>("account status")
            .map(|a| a.balances)
    }

    /// `userDataStream.subscribe`'s `subscriptionId`.
    pub fn subscription_id(&self) -> Result<u32, WireError> {
        #[derive(Deserialize)]
        struct S {
            #[serde(rename = "subscriptionId")]
            subscription_id: u32,
        }
        self.result_as::<S>("subscribe result")
            .map(|s| s.subscription_id)
    }
}

/// A trade as `myTrades` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MyTrade<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Trade id.
    pub id: u64,
    /// The order it filled.
    pub order_id: u64,
    /// Price.
    pub price: &'a str,
    /// Base quantity.
    pub qty: &'a str,
    /// Execution time, ms.
    pub time: u64,
    /// Whether the account's order was the resting one.
    pub is_maker: bool,
}

/// One balance as `account.status` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AccountBalance<'a> {
    /// Asset.
    pub asset: &'a str,
    /// Free.
    pub free: &'a str,
    /// Locked.
    pub locked: &'a str,
}

/// Binance's execution type `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecType {
    /// Accepted.
    New,
    /// Cancelled.
    Canceled,
    /// Amended (keepPriority).
    Replaced,
    /// Rejected.
    Rejected,
    /// A fill.
    Trade,
    /// Expired (IOC/FOK remainder, STP, exchange).
    Expired,
    /// Expired by self-trade prevention.
    TradePrevention,
}

impl ExecType {
    fn parse(s: &str) -> Result<Self, WireError> {
        Ok(match s {
            "NEW" => ExecType::New,
            "CANCELED" => ExecType::Canceled,
            "REPLACED" => ExecType::Replaced,
            "REJECTED" => ExecType::Rejected,
            "TRADE" => ExecType::Trade,
            "EXPIRED" => ExecType::Expired,
            "TRADE_PREVENTION" => ExecType::TradePrevention,
            other => return Err(unknown("x", other)),
        })
    }
}

/// Binance's order status `X` (and `status` in results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VenueStatus {
    /// `NEW`.
    New,
    /// `PENDING_NEW` (order lists).
    PendingNew,
    /// `PARTIALLY_FILLED`.
    PartiallyFilled,
    /// `FILLED`.
    Filled,
    /// `CANCELED`.
    Canceled,
    /// `PENDING_CANCEL` (unused by the exchange today).
    PendingCancel,
    /// `REJECTED`.
    Rejected,
    /// `EXPIRED`.
    Expired,
    /// `EXPIRED_IN_MATCH` (STP): final.
    ExpiredInMatch,
}

impl VenueStatus {
    /// Parses the exchange's name.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        Ok(match s {
            "NEW" => VenueStatus::New,
            "PENDING_NEW" => VenueStatus::PendingNew,
            "PARTIALLY_FILLED" => VenueStatus::PartiallyFilled,
            "FILLED" => VenueStatus::Filled,
            "CANCELED" => VenueStatus::Canceled,
            "PENDING_CANCEL" => VenueStatus::PendingCancel,
            "REJECTED" => VenueStatus::Rejected,
            "EXPIRED" => VenueStatus::Expired,
            "EXPIRED_IN_MATCH" => VenueStatus::ExpiredInMatch,
            other => return Err(unknown("X", other)),
        })
    }

    /// Whether the order is closed.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            VenueStatus::Filled
                | VenueStatus::Canceled
                | VenueStatus::Rejected
                | VenueStatus::Expired
                | VenueStatus::ExpiredInMatch
        )
    }
}

/// An `executionReport` as sent: strings borrowed, decimals still text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RawExecutionReport<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub symbol: &'a str,
    /// Client order id (on a cancel: the cancel request's own id).
    #[serde(rename = "c")]
    pub client_id: &'a str,
    /// Side.
    #[serde(rename = "S")]
    pub side: &'a str,
    /// Order type.
    #[serde(rename = "o")]
    pub order_type: &'a str,
    /// Time in force.
    #[serde(rename = "f")]
    pub tif: &'a str,
    /// Order quantity.
    #[serde(rename = "q")]
    pub qty: &'a str,
    /// Order price.
    #[serde(rename = "p")]
    pub price: &'a str,
    /// Original client id: the order being cancelled (empty otherwise).
    #[serde(rename = "C")]
    pub orig_client_id: &'a str,
    /// Execution type.
    #[serde(rename = "x")]
    pub exec_type: &'a str,
    /// Order status.
    #[serde(rename = "X")]
    pub status: &'a str,
    /// Reject reason (`NONE` unless rejected).
    #[serde(rename = "r")]
    pub reject_reason: &'a str,
    /// Order id.
    #[serde(rename = "i")]
    pub order_id: u64,
    /// Last executed quantity.
    #[serde(rename = "l")]
    pub last_qty: &'a str,
    /// Cumulative filled quantity.
    #[serde(rename = "z")]
    pub cum_qty: &'a str,
    /// Last executed price.
    #[serde(rename = "L")]
    pub last_px: &'a str,
    /// Commission amount.
    #[serde(rename = "n")]
    pub commission: &'a str,
    /// Commission asset (null when none).
    #[serde(rename = "N")]
    pub commission_asset: Option<&'a str>,
    /// Transaction time, ms.
    #[serde(rename = "T")]
    pub transact_time: u64,
    /// Trade id (-1 when not a trade).
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// Execution id: unique per event of the symbol; the dedup key.
    #[serde(rename = "I")]
    pub execution_id: u64,
    /// Whether the order is on the book.
    #[serde(rename = "w")]
    pub on_book: bool,
    /// Whether this fill was as maker.
    #[serde(rename = "m")]
    pub maker: bool,
    /// Order creation time, ms; -1 when the exchange does not say (the JSON form of the SBE
    /// field's null, per the schema's `jsonDefaultValue`). Nothing acts on it, so a report
    /// without it is read like any other.
    #[serde(rename = "O")]
    pub created: i64,
    /// Cumulative quote quantity.
    #[serde(rename = "Z")]
    pub cum_quote: &'a str,
    /// Last quote quantity (`L × l`).
    #[serde(rename = "Y")]
    pub last_quote: &'a str,
    /// Working time (when on the book), ms.
    #[serde(rename = "W", default)]
    pub working_time: Option<u64>,
    /// Self-trade prevention mode.
    #[serde(rename = "V", default)]
    pub stp_mode: Option<&'a str>,
    /// Prevented match id (STP only).
    #[serde(rename = "v", default)]
    pub prevented_match_id: Option<u64>,
    /// Prevented quantity (STP only).
    #[serde(rename = "A", default)]
    pub prevented_qty: Option<&'a str>,
    /// Last prevented quantity (STP only).
    #[serde(rename = "B", default)]
    pub last_prevented_qty: Option<&'a str>,
    /// Counter order id (STP only).
    #[serde(rename = "U", default)]
    pub counter_order_id: Option<u64>,
    /// Trade group id (STP only; `-1` is an account in no trade group, as the exchange
    /// writes it elsewhere).
    #[serde(rename = "u", default)]
    pub trade_group_id: Option<i64>,
    /// Counter symbol (STP only).
    #[serde(rename = "Cs", default)]
    pub counter_symbol: Option<&'a str>,
    /// Prevented execution quantity (STP only).
    #[serde(rename = "pl", default)]
    pub prevented_exec_qty: Option<&'a str>,
    /// Prevented execution price (STP only).
    #[serde(rename = "pL", default)]
    pub prevented_exec_px: Option<&'a str>,
    /// Prevented execution quote quantity (STP only).
    #[serde(rename = "pY", default)]
    pub prevented_exec_quote: Option<&'a str>,
    /// Expiry reason (when expired; `OCO_TRIGGER` for the other leg of an OCO that
    /// triggered or filled).
    #[serde(rename = "eR", default)]
    pub expiry_reason: Option<&'a str>,
    /// The order list the order belongs to (`-1`: none).
    #[serde(rename = "g", default = "no_list")]
    pub order_list_id: i64,
    /// Stop price (`"0.00000000"` when the order has none).
    #[serde(rename = "P", default)]
    pub stop_price: Option<&'a str>,
    /// Trailing delta, BIPS (trailing stops only).
    #[serde(rename = "d", default)]
    pub trailing_delta: Option<u32>,
}

const fn no_list() -> i64 {
    -1
}

/// An `executionReport` with exact prices and quantities at its instrument's decimals: what the
/// order table acts on, whichever format the event came in (JSON text through
/// [`RawExecutionReport::typed`], or an SBE frame read directly by
/// [`super::sbe_direct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionReport<'a> {
    /// Event time, ms.
    pub event_time: u64,
    /// Symbol.
    pub symbol: &'a str,
    /// Client order id (on a cancel: the cancel request's own id).
    pub client_id: &'a str,
    /// Original client id: the order being cancelled (empty otherwise).
    pub orig_client_id: &'a str,
    /// Reject reason (`NONE` unless rejected).
    pub reject_reason: &'a str,
    /// Order id.
    pub order_id: u64,
    /// Execution id: unique per event of the symbol; the dedup key.
    pub execution_id: u64,
    /// Transaction time, ms.
    pub transact_time: u64,
    /// Whether the order is on the book.
    pub on_book: bool,
    /// Whether this fill was as maker.
    pub maker: bool,
    /// Side.
    pub side: OrderSide,
    /// Execution type.
    pub exec_type: ExecType,
    /// Order status after the event.
    pub status: VenueStatus,
    /// Order quantity.
    pub qty: Qty,
    /// Order price.
    pub price: Px,
    /// Last executed quantity.
    pub last_qty: Qty,
    /// Last executed price.
    pub last_px: Px,
    /// Cumulative filled quantity.
    pub cum_qty: Qty,
    /// Cumulative quote quantity (exact, at its own scale).
    pub cum_quote: Decimal,
    /// Commission (exact).
    pub commission: Decimal,
    /// Trade id, when the event is a trade.
    pub trade_id: Option<u64>,
    /// Prevented quantity (STP), at the quantity decimals.
    pub prevented_qty: Option<Qty>,
    /// The order list it belongs to.
    pub order_list_id: Option<u64>,
    /// Stop price, when the order has one (not zero).
    pub stop_price: Option<Px>,
}

/// What names an `executionReport` whose values could not be read at the instrument's
/// decimals: the order it concerns becomes unknown until a query settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadReport<'a> {
    /// Symbol.
    pub symbol: &'a str,
    /// Client order id (on a cancel: the cancel request's own id).
    pub client_id: &'a str,
    /// Original client id (empty unless a cancel).
    pub orig_client_id: &'a str,
}

fn dec<T>(
    field: &'static str,
    s: &str,
    f: impl FnOnce(&[u8]) -> Result<T, DecimalError>,
) -> Result<T, WireError> {
    f(s.as_bytes()).map_err(|source| WireError::Decimal {
        field,
        value: s.to_owned(),
        source,
    })
}

impl<'a> RawExecutionReport<'a> {
    /// What names the report when its values cannot be read ([`Self::typed`] failed).
    pub fn unread(&self) -> UnreadReport<'a> {
        UnreadReport {
            symbol: self.symbol,
            client_id: self.client_id,
            orig_client_id: self.orig_client_id,
        }
    }

    /// Converts the decimals at the instrument's price and quantity decimals (exact or an
    /// error naming the field), and the enums.
    pub fn typed(
        &self,
        price_decimals: u8,
        qty_decimals: u8,
    ) -> Result<ExecutionReport<'a>, WireError> {
        let side = match self.side {
            "BUY" => OrderSide::Buy,
            "SELL" => OrderSide::Sell,
            other => return Err(unknown("S", other)),
        };
        Ok(ExecutionReport {
            event_time: self.event_time,
            symbol: self.symbol,
            client_id: self.client_id,
            orig_client_id: self.orig_client_id,
            reject_reason: self.reject_reason,
            order_id: self.order_id,
            execution_id: self.execution_id,
            transact_time: self.transact_time,
            on_book: self.on_book,
            maker: self.maker,
            side,
            exec_type: ExecType::parse(self.exec_type)?,
            status: VenueStatus::parse(self.status)?,
            qty: dec("q", self.qty, |b| Qty::parse(b, qty_decimals))?,
            price: dec("p", self.price, |b| Px::parse(b, price_decimals))?,
            last_qty: dec("l", self.last_qty, |b| Qty::parse(b, qty_decimals))?,
            last_px: dec("L", self.last_px, |b| Px::parse(b, price_decimals))?,
            cum_qty: dec("z", self.cum_qty, |b| Qty::parse(b, qty_decimals))?,
            cum_quote: dec("Z", self.cum_quote, Decimal::parse)?,
            commission: dec("n", self.commission, Decimal::parse)?,
            trade_id: u64::try_from(self.trade_id).ok(),
            prevented_qty: match self.prevented_qty {
                Some(s) => Some(dec("A", s, |b| Qty::parse(b, qty_decimals))?),
                None => None,
            },
            order_list_id: u64::try_from(self.order_list_id).ok(),
            stop_price: match self.stop_price {
                Some(s) => {
                    Some(dec("P", s, |b| Px::parse(b, price_decimals))?).filter(|p| p.0 != 0)
                }
                None => None,
            },
        })
    }
}

/// An order list's `contingencyType` (an OTOCO is an `OTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contingency {
    /// `OCO`.
    Oco,
    /// `OTO` (OTO and OTOCO lists).
    Oto,
}

impl Contingency {
    /// Parses the exchange's name.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        match s {
            "OCO" => Ok(Contingency::Oco),
            "OTO" => Ok(Contingency::Oto),
            other => Err(unknown("contingencyType", other)),
        }
    }
}

/// `listStatusType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListStatusType {
    /// `RESPONSE`: the answer to a failed action on the list (placement or cancel).
    Response,
    /// `EXEC_STARTED`: placed, or an update.
    ExecStarted,
    /// `UPDATED`: a leg's client id changed.
    Updated,
    /// `ALL_DONE`: no longer active.
    AllDone,
}

impl ListStatusType {
    /// Parses the exchange's name.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        match s {
            "RESPONSE" => Ok(ListStatusType::Response),
            "EXEC_STARTED" => Ok(ListStatusType::ExecStarted),
            "UPDATED" => Ok(ListStatusType::Updated),
            "ALL_DONE" => Ok(ListStatusType::AllDone),
            other => Err(unknown("listStatusType", other)),
        }
    }
}

/// `listOrderStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListOrderStatus {
    /// `EXECUTING`.
    Executing,
    /// `ALL_DONE`.
    AllDone,
    /// `REJECT`: a failed action (placement or cancel).
    Reject,
}

impl ListOrderStatus {
    /// Parses the exchange's name.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        match s {
            "EXECUTING" => Ok(ListOrderStatus::Executing),
            "ALL_DONE" => Ok(ListOrderStatus::AllDone),
            "REJECT" => Ok(ListOrderStatus::Reject),
            other => Err(unknown("listOrderStatus", other)),
        }
    }
}

/// One order of a list, as `listStatus` (`s`, `i`, `c`) and list results (`symbol`,
/// `orderId`, `clientOrderId`) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ListLeg<'a> {
    /// Symbol.
    #[serde(rename = "s", alias = "symbol", default)]
    pub symbol: &'a str,
    /// The exchange's order id.
    #[serde(rename = "i", alias = "orderId")]
    pub order_id: u64,
    /// The client order id.
    #[serde(rename = "c", alias = "clientOrderId")]
    pub client_id: &'a str,
}

/// Most orders in one list (OTOCO and OPOCO have three).
pub const MAX_LIST_LEGS: usize = 3;

/// The orders of a list, in a fixed array (more is an error, not dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListLegs<'a>(pub ArrayVec<ListLeg<'a>, MAX_LIST_LEGS>);

impl<'de: 'a, 'a> Deserialize<'de> for ListLegs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ListLegs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_LIST_LEGS} orders")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListLegs<'a>, A::Error> {
                let mut out = ArrayVec::new();
                while let Some(item) = seq.next_element::<ListLeg<'a>>()? {
                    out.try_push(item)
                        .map_err(|_| de::Error::invalid_length(MAX_LIST_LEGS + 1, &self))?;
                }
                Ok(ListLegs(out))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A `listStatus` user data event: an order list changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RawListStatus<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    #[serde(rename = "s", default)]
    pub symbol: &'a str,
    /// The exchange's order list id.
    #[serde(rename = "g")]
    pub order_list_id: u64,
    /// Contingency type.
    #[serde(rename = "c")]
    pub contingency: &'a str,
    /// List status type.
    #[serde(rename = "l")]
    pub status_type: &'a str,
    /// List order status.
    #[serde(rename = "L")]
    pub order_status: &'a str,
    /// List reject reason (`NONE` unless rejected).
    #[serde(rename = "r")]
    pub reject_reason: &'a str,
    /// The list's client id.
    #[serde(rename = "C")]
    pub list_client_id: &'a str,
    /// Transaction time, ms.
    #[serde(rename = "T")]
    pub transact_time: u64,
    /// The list's orders.
    #[serde(rename = "O", borrow)]
    pub orders: ListLegs<'a>,
}

/// An order list as its placement, its cancel and `openOrderLists.status` answer with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSnapshot<'a> {
    /// The exchange's order list id.
    pub order_list_id: u64,
    /// Contingency type.
    pub contingency_type: &'a str,
    /// List status type.
    pub list_status_type: &'a str,
    /// List order status.
    pub list_order_status: &'a str,
    /// The list's client id.
    pub list_client_order_id: &'a str,
    /// Transaction time, ms.
    pub transaction_time: u64,
    /// Symbol.
    pub symbol: &'a str,
    /// The list's orders.
    #[serde(borrow)]
    pub orders: ListLegs<'a>,
    /// The orders' reports (`RESULT`/`FULL` answers only), raw.
    #[serde(borrow, default)]
    pub order_reports: Option<&'a RawValue>,
}

/// A list's status fields, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListUpdate<'a> {
    /// The exchange's order list id.
    pub order_list_id: u64,
    /// The list's client id.
    pub list_client_id: &'a str,
    /// Contingency type.
    pub contingency: Contingency,
    /// List status type.
    pub status_type: ListStatusType,
    /// List order status.
    pub order_status: ListOrderStatus,
    /// Transaction time, ms.
    pub transact_time: u64,
}

impl<'a> RawListStatus<'a> {
    /// The enums typed.
    pub fn typed(&self) -> Result<ListUpdate<'a>, WireError> {
        Ok(ListUpdate {
            order_list_id: self.order_list_id,
            list_client_id: self.list_client_id,
            contingency: Contingency::parse(self.contingency)?,
            status_type: ListStatusType::parse(self.status_type)?,
            order_status: ListOrderStatus::parse(self.order_status)?,
            transact_time: self.transact_time,
        })
    }
}

impl<'a> ListSnapshot<'a> {
    /// The enums typed.
    pub fn typed(&self) -> Result<ListUpdate<'a>, WireError> {
        Ok(ListUpdate {
            order_list_id: self.order_list_id,
            list_client_id: self.list_client_order_id,
            contingency: Contingency::parse(self.contingency_type)?,
            status_type: ListStatusType::parse(self.list_status_type)?,
            order_status: ListOrderStatus::parse(self.list_order_status)?,
            transact_time: self.transaction_time,
        })
    }
}

/// One asset's balance in `outboundAccountPosition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Balance<'a> {
    /// Asset.
    #[serde(rename = "a")]
    pub asset: &'a str,
    /// Free.
    #[serde(rename = "f")]
    pub free: &'a str,
    /// Locked.
    #[serde(rename = "l")]
    pub locked: &'a str,
}

/// Most balances kept from one `outboundAccountPosition`.
pub const MAX_BALANCES: usize = 16;

/// `outboundAccountPosition`: the balances an event changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountPosition<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Time of the last account update, ms.
    #[serde(rename = "u")]
    pub last_update: u64,
    /// The balances (borrowed; an array longer than [`MAX_BALANCES`] is an error).
    #[serde(rename = "B", borrow)]
    pub balances: Balances<'a>,
}

/// The `B` array of `outboundAccountPosition`, in a fixed array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balances<'a>(pub ArrayVec<Balance<'a>, MAX_BALANCES>);

impl<'de: 'a, 'a> Deserialize<'de> for Balances<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Balances<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_BALANCES} balances")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Balances<'a>, A::Error> {
                let mut out = ArrayVec::new();
                while let Some(item) = seq.next_element::<Balance<'a>>()? {
                    out.try_push(item)
                        .map_err(|_| de::Error::invalid_length(MAX_BALANCES + 1, &self))?;
                }
                Ok(Balances(out))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// `balanceUpdate`: a deposit, withdrawal or transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BalanceUpdate<'a> {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Asset.
    #[serde(rename = "a")]
    pub asset: &'a str,
    /// Balance delta (signed decimal).
    #[serde(rename = "d")]
    pub delta: &'a str,
    /// Clear time, ms.
    #[serde(rename = "T")]
    pub clear_time: u64,
}

/// A user data (or session) event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Made and consumed per frame on the stack; a box would allocate.
pub enum UserEvent<'a> {
    /// An order changed.
    ExecutionReport(RawExecutionReport<'a>),
    /// Balances changed.
    AccountPosition(AccountPosition<'a>),
    /// A deposit, withdrawal or transfer.
    BalanceUpdate(BalanceUpdate<'a>),
    /// The subscription ended (logout, unsubscribe): resubscribe and reconcile.
    StreamTerminated {
        /// Event time, ms.
        event_time: u64,
    },
    /// The server will close the connection soon: reconnect ahead of it.
    ServerShutdown {
        /// Event time, ms.
        event_time: u64,
    },
    /// An order list changed.
    ListStatus(RawListStatus<'a>),
    /// An event type this code does not act on (`externalLockUpdate`, …).
    Other {
        /// Its `e`.
        kind: &'a str,
    },
}

/// A frame from the WS API.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Made and consumed per frame on the stack; a box would allocate.
pub enum Frame<'a> {
    /// The answer to a request.
    Response(Response<'a>),
    /// An event; `subscription_id` is `None` for session events (`serverShutdown`).
    Event {
        /// The subscription it belongs to.
        subscription_id: Option<u32>,
        /// The event.
        event: UserEvent<'a>,
    },
}

/// The raw text of a JSON value, borrowed from the frame and read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The value's text.
    pub fn get(&self) -> &'a str {
        self.0
    }
}

fn scan_error(at: usize, what: &str) -> WireError {
    WireError::Json {
        what: "frame",
        detail: format!("{what} at byte {at}"),
    }
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The end (one past the closing quote) of the string starting at `b[at] == '"'`.
fn string_end(b: &[u8], at: usize) -> Result<usize, WireError> {
    let mut i = at + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(scan_error(at, "unterminated string"))
}

/// The end of the value starting at `b[at]`: a string, an object or array (brackets matched,
/// strings skipped), or a bare literal. Only the structure is checked here; the value's reader
/// checks the rest.
fn value_end(b: &[u8], at: usize) -> Result<usize, WireError> {
    match b.get(at) {
        None => Err(scan_error(at, "missing value")),
        Some(b'"') => string_end(b, at),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = at;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(scan_error(at, "unclosed object or array"))
        }
        Some(_) => {
            let mut i = at;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            if i == at {
                return Err(scan_error(at, "missing value"));
            }
            Ok(i)
        }
    }
}

/// Calls `f(key, value)` for each member of the JSON object `text`, the key without its quotes
/// and the value as its raw text. Reads the structure without copying or allocating (serde's
/// own skipping of a nested value allocates): each value is then read by what wants it.
fn members<'a>(
    text: &'a str,
    mut f: impl FnMut(&'a str, &'a str) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let b = text.as_bytes();
    let mut at = skip_ws(b, 0);
    if b.get(at) != Some(&b'{') {
        return Err(scan_error(at, "expected an object"));
    }
    at = skip_ws(b, at + 1);
    if b.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if b.get(at) != Some(&b'"') {
                return Err(scan_error(at, "expected a key"));
            }
            let key_end = string_end(b, at)?;
            let key = &text[at + 1..key_end - 1];
            at = skip_ws(b, key_end);
            if b.get(at) != Some(&b':') {
                return Err(scan_error(at, "expected ':'"));
            }
            at = skip_ws(b, at + 1);
            let end = value_end(b, at)?;
            f(key, &text[at..end])?;
            at = skip_ws(b, end);
            match b.get(at) {
                Some(b',') => at = skip_ws(b, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return Err(scan_error(at, "expected ',' or '}'")),
            }
        }
    }
    if skip_ws(b, at) != b.len() {
        return Err(scan_error(at, "trailing characters"));
    }
    Ok(())
}

/// Reads one member's value, `null` as absent.
fn member<'a, T: Deserialize<'a>>(
    value: Option<&'a str>,
    what: &'static str,
) -> Result<Option<T>, WireError> {
    match value {
        None | Some("null") => Ok(None),
        Some(v) => serde_json::from_str(v).map(Some).map_err(json_error(what)),
    }
}

/// Reads one text frame.
pub fn parse_frame(text: &str) -> Result<Frame<'_>, WireError> {
    let (mut id, mut status, mut result, mut error) = (None, None, None, None);
    let (mut rate_limits, mut subscription_id, mut event) = (None, None, None);
    members(text, |key, value| {
        match key {
            "id" => id = Some(value),
            "status" => status = Some(value),
            "result" => result = Some(value),
            "error" => error = Some(value),
            "rateLimits" => rate_limits = Some(value),
            "subscriptionId" => subscription_id = Some(value),
            "event" => event = Some(value),
            _ => {}
        }
        Ok(())
    })?;
    if let Some(status) = member::<u16>(status, "frame")? {
        let error = member::<ApiError<'_>>(error, "frame")?;
        let result = result.filter(|r| *r != "null");
        let outcome = match (result, error) {
            (_, Some(e)) => Err(e),
            (Some(r), None) => Ok(ResultBody::Json(RawJson(r))),
            (None, None) => return Err(WireError::NoOutcome(status)),
        };
        return Ok(Frame::Response(Response {
            id: member(id, "frame")?.unwrap_or(ResponseId::Null),
            status,
            outcome,
            rate_limits: member(rate_limits, "frame")?.unwrap_or_default(),
        }));
    }
    let event = event
        .filter(|e| *e != "null")
        .ok_or(WireError::UnknownFrame)?;
    Ok(Frame::Event {
        subscription_id: member(subscription_id, "frame")?,
        event: parse_event(event)?,
    })
}

struct EventKind<'a> {
    kind: &'a str,
    event_time: u64,
}

/// Reads one event object (the value of `event`).
pub fn parse_event(text: &str) -> Result<UserEvent<'_>, WireError> {
    let (mut kind, mut event_time) = (None, None);
    members(text, |key, value| {
        match key {
            "e" => kind = Some(value),
            "E" => event_time = Some(value),
            _ => {}
        }
        Ok(())
    })?;
    let kind = EventKind {
        kind: member::<&str>(kind, "event type")?.ok_or_else(|| WireError::Json {
            what: "event type",
            detail: "missing field `e`".to_owned(),
        })?,
        event_time: member(event_time, "event type")?.unwrap_or(0),
    };
    Ok(match kind.kind {
        "executionReport" => UserEvent::ExecutionReport(
            serde_json::from_str(text).map_err(json_error("executionReport"))?,
        ),
        "outboundAccountPosition" => UserEvent::AccountPosition(
            serde_json::from_str(text).map_err(json_error("outboundAccountPosition"))?,
        ),
        "balanceUpdate" => UserEvent::BalanceUpdate(
            serde_json::from_str(text).map_err(json_error("balanceUpdate"))?,
        ),
        "listStatus" => {
            UserEvent::ListStatus(serde_json::from_str(text).map_err(json_error("listStatus"))?)
        }
        "eventStreamTerminated" => UserEvent::StreamTerminated {
            event_time: kind.event_time,
        },
        "serverShutdown" => UserEvent::ServerShutdown {
            event_time: kind.event_time,
        },
        other => UserEvent::Other { kind: other },
    })
}
