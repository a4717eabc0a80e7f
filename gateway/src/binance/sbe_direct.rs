//! The order path of an SBE session read straight from the frame: the `executionReport` event
//! and the answers to `order.place`, `order.cancel`, `order.amend.keepPriority` and
//! `order.cancelReplace` become the values the session acts on ([`ExecutionReport`],
//! [`Response`]) without going through JSON text ([`super::sbe::transcode`]).
//!
//! The contract is that the session ends in exactly the state it would reach by transcoding the
//! frame and reading the JSON: the same report or answer, the same order made unknown, the
//! same frame counted bad. So this reader only decides what it can decide the same way:
//!
//! * a value the JSON reader takes as it is (ids, times, enums, decimals, strings that need
//!   no escaping) is read into the same typed value;
//! * a decimal that the instrument's `Px`/`Qty` (or an exact [`pinion_core::Decimal`]) cannot
//!   hold makes the report [`UnreadReport`], as [`super::wire::RawExecutionReport::typed`]
//!   fails on its text, so the order becomes unknown until a query settles it;
//! * anything else that is not plain (a string the JSON would escape, an id or time the JSON
//!   reader refuses as negative, an enum or flag the schema does not name, a result that does
//!   not read, an error with `retryAfter`/`serverTime`, every other template) is
//!   [`Direct::Transcode`]: the caller transcodes the frame and reads the text, as before.
//!
//! Nothing is allocated; the values borrow the frame.

use std::borrow::Cow;

use arrayvec::ArrayVec;
use pinion_core::decimal::{self, MAX_DECIMALS};
use pinion_core::{Px, Qty};
use pinion_feed::exchange_info::{RateLimitInterval, RateLimitKind};
use pinion_sbe_spot::Decimal as SbeDecimal;
use pinion_sbe_spot::spot::{self, BoolEnum, Message};
use pinion_strategy::OrderSide;

use super::wire::{
    ApiError, ExecType, ExecutionReport, OrderAck, RateLimitCount, RateLimits, Response,
    ResponseId, ResultBody, UnreadReport, VenueStatus,
};

/// What one binary frame is, read for the order path.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // Made and consumed per frame on the stack; a box would allocate.
pub enum Direct<'a> {
    /// An answer to an order request (or an error answer), as the JSON reader would give it.
    Answer(Response<'a>),
    /// An `executionReport`, read up to its decimals ([`SbeReport::typed`] converts them).
    Report(SbeReport<'a>),
    /// Anything else: transcode the frame and read its JSON text.
    Transcode,
}

/// Reads `frame` for the order path (see the module's documentation for what is read here and
/// what is left to [`super::sbe::transcode`]).
pub fn read(frame: &[u8]) -> Direct<'_> {
    match pinion_sbe_spot::decode(frame) {
        Ok(Message::ExecutionReportEvent(e)) => report(e).map_or(Direct::Transcode, Direct::Report),
        Ok(Message::WebSocketResponse(r)) => answer(&r).map_or(Direct::Transcode, Direct::Answer),
        _ => Direct::Transcode,
    }
}

/// An `executionReport` whose ids, times, flags and strings have been read as the JSON reader
/// reads them; its enums and decimals are converted by [`SbeReport::typed`].
#[derive(Debug, Clone, Copy)]
pub struct SbeReport<'a> {
    view: spot::ExecutionReportEventView<'a>,
    ids: UnreadReport<'a>,
    reject_reason: &'a str,
    event_time: u64,
    transact_time: u64,
    order_id: u64,
    execution_id: u64,
    on_book: bool,
    maker: bool,
}

/// Milliseconds as the JSON text says them (rounded down from microseconds); `None` when the
/// JSON reader would refuse them (negative).
fn ms(us: i64) -> Option<u64> {
    u64::try_from(us.div_euclid(1000)).ok()
}

/// A string the JSON text carries unescaped (so the JSON reader borrows it as it is).
fn plain(s: &str) -> Option<&str> {
    s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\')
        .then_some(s)
}

fn flag(b: BoolEnum) -> Option<bool> {
    match b {
        BoolEnum::True => Some(true),
        BoolEnum::False => Some(false),
        BoolEnum::Unrecognised(_) => None,
    }
}

/// The frame-level read of an execution report: `None` whenever the transcoded JSON would not
/// be read as a frame (or reading it here would differ from reading it there).
fn report(e: spot::ExecutionReportEventView<'_>) -> Option<SbeReport<'_>> {
    let symbol = plain(e.symbol().ok()?)?;
    let client_id = plain(e.client_order_id().ok()?)?;
    let orig_client_id = plain(e.orig_client_order_id().ok()?.unwrap_or(""))?;
    let reject_reason = plain(e.reject_reason().ok()?.unwrap_or("NONE"))?;
    if let Some(a) = e.commission_asset().ok()? {
        plain(a)?;
    }
    // Fields the JSON reader requires in range, though the session does not act on them.
    if let Some(t) = e.order_creation_time() {
        ms(t)?;
    }
    if let Some(t) = e.working_time() {
        ms(t)?;
    }
    if let Some(d) = e.trailing_delta() {
        u32::try_from(d).ok()?;
    }
    if let Some(id) = e.prevented_match_id() {
        u64::try_from(id).ok()?;
        if let Some(c) = e.counter_order_id() {
            u64::try_from(c).ok()?;
        }
        if let Some(s) = e.counter_symbol().ok()? {
            plain(s)?;
        }
    }
    Some(SbeReport {
        view: e,
        ids: UnreadReport {
            symbol,
            client_id,
            orig_client_id,
        },
        reject_reason,
        event_time: ms(e.event_time())?,
        transact_time: ms(e.transact_time())?,
        order_id: u64::try_from(e.order_id()).ok()?,
        execution_id: u64::try_from(e.execution_id()).ok()?,
        on_book: flag(e.is_working())?,
        maker: flag(e.is_maker())?,
    })
}

/// `mantissa × 10^exponent` as a count of `10^-decimals` units, exactly as the JSON reader
/// parses the decimal's text at `decimals` ([`decimal::parse_scaled`]): `None` when a non-zero
/// digit lies past `decimals` or the count does not fit an `i64`.
fn units(d: SbeDecimal, decimals: u8) -> Option<i64> {
    if decimals > MAX_DECIMALS {
        return None;
    }
    if d.mantissa == 0 {
        return Some(0);
    }
    let shift = i32::from(d.exponent) + i32::from(decimals);
    if shift >= 0 {
        // A non-zero mantissa times 10^19 or more is past any i64.
        let p = 10i128.checked_pow(u32::try_from(shift).ok().filter(|&s| s <= 19)?)?;
        i64::try_from(i128::from(d.mantissa) * p).ok()
    } else {
        // |mantissa| < 10^19: dividing by 10^19 or more leaves a fraction.
        let div = u32::try_from(-shift).ok().filter(|&s| s <= 18)?;
        let p = decimal::pow10(div as u8);
        (d.mantissa % p == 0).then(|| d.mantissa / p)
    }
}

/// The decimal as [`pinion_core::Decimal::parse`] reads its text: at the fewest decimals that
/// write it, `None` past 18 decimals or an `i64`.
fn exact(d: SbeDecimal) -> Option<pinion_core::Decimal> {
    let (mut m, mut e) = (d.mantissa, i32::from(d.exponent));
    while e < 0 && m != 0 && m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    let scale = if e < 0 && m != 0 {
        u8::try_from(-e).ok().filter(|&s| s <= MAX_DECIMALS)?
    } else {
        0
    };
    pinion_core::Decimal::from_units(units(d, scale)?, scale).ok()
}

impl<'a> SbeReport<'a> {
    /// What names the report (its symbol first: the session reads only its own).
    pub fn ids(&self) -> UnreadReport<'a> {
        self.ids
    }

    /// The report at the instrument's decimals, exactly as
    /// [`super::wire::RawExecutionReport::typed`] reads the same event's JSON, or
    /// [`UnreadReport`] where that fails (an enum it does not know, a value the instrument
    /// cannot hold exactly).
    pub fn typed(
        &self,
        price_decimals: u8,
        qty_decimals: u8,
    ) -> Result<ExecutionReport<'a>, UnreadReport<'a>> {
        self.read(price_decimals, qty_decimals).ok_or(self.ids)
    }

    fn read(&self, pd: u8, qd: u8) -> Option<ExecutionReport<'a>> {
        let e = &self.view;
        let px = |d| units(d, pd).map(Px);
        let qty = |d| units(d, qd).map(Qty);
        let side = match e.side() {
            spot::OrderSide::Buy => OrderSide::Buy,
            spot::OrderSide::Sell => OrderSide::Sell,
            _ => return None,
        };
        let exec_type = match e.execution_type() {
            spot::ExecutionType::New => ExecType::New,
            spot::ExecutionType::Canceled => ExecType::Canceled,
            spot::ExecutionType::Replaced => ExecType::Replaced,
            spot::ExecutionType::Rejected => ExecType::Rejected,
            spot::ExecutionType::Trade => ExecType::Trade,
            spot::ExecutionType::Expired => ExecType::Expired,
            spot::ExecutionType::TradePrevention => ExecType::TradePrevention,
            _ => return None,
        };
        let status = match e.order_status() {
            spot::OrderStatus::New => VenueStatus::New,
            spot::OrderStatus::PendingNew => VenueStatus::PendingNew,
            spot::OrderStatus::PartiallyFilled => VenueStatus::PartiallyFilled,
            spot::OrderStatus::Filled => VenueStatus::Filled,
            spot::OrderStatus::Canceled => VenueStatus::Canceled,
            spot::OrderStatus::PendingCancel => VenueStatus::PendingCancel,
            spot::OrderStatus::Rejected => VenueStatus::Rejected,
            spot::OrderStatus::Expired => VenueStatus::Expired,
            spot::OrderStatus::ExpiredInMatch => VenueStatus::ExpiredInMatch,
            _ => return None,
        };
        Some(ExecutionReport {
            event_time: self.event_time,
            symbol: self.ids.symbol,
            client_id: self.ids.client_id,
            orig_client_id: self.ids.orig_client_id,
            reject_reason: self.reject_reason,
            order_id: self.order_id,
            execution_id: self.execution_id,
            transact_time: self.transact_time,
            on_book: self.on_book,
            maker: self.maker,
            side,
            exec_type,
            status,
            qty: qty(e.orig_qty())?,
            price: px(e.price())?,
            last_qty: qty(e.last_qty())?,
            last_px: px(e.last_price())?,
            cum_qty: qty(e.executed_qty())?,
            cum_quote: exact(e.cummulative_quote_qty())?,
            commission: exact(e.commission())?,
            trade_id: e.trade_id().and_then(|t| u64::try_from(t).ok()),
            prevented_qty: match e.prevented_match_id() {
                Some(_) => Some(qty(e.prevented_qty())?),
                None => None,
            },
            order_list_id: e.order_list_id().and_then(|g| u64::try_from(g).ok()),
            stop_price: Some(px(e.stop_price())?).filter(|p| p.0 != 0),
        })
    }
}

/// The answer's envelope and result, or `None` to transcode it.
fn answer<'a>(r: &spot::WebSocketResponseView<'a>) -> Option<Response<'a>> {
    let id = match r.id().ok()? {
        "" => ResponseId::Null,
        id if id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()) => {
            // Written as a JSON number, which may not start with a zero.
            if id.len() > 1 && id.starts_with('0') {
                return None;
            }
            ResponseId::Num(id.parse().ok()?)
        }
        id => ResponseId::Text(plain(id)?),
    };
    let mut limits = ArrayVec::new();
    for l in r.rate_limits() {
        let l = l.ok()?;
        let kind = match l.rate_limit_type() {
            spot::RateLimitType::RawRequests => RateLimitKind::RawRequests,
            spot::RateLimitType::RequestWeight => RateLimitKind::RequestWeight,
            spot::RateLimitType::Orders => RateLimitKind::Orders,
            _ => return None,
        };
        let interval = match l.interval() {
            spot::RateLimitInterval::Second => RateLimitInterval::Second,
            spot::RateLimitInterval::Minute => RateLimitInterval::Minute,
            spot::RateLimitInterval::Hour => RateLimitInterval::Hour,
            spot::RateLimitInterval::Day => RateLimitInterval::Day,
            _ => return None,
        };
        limits
            .try_push(RateLimitCount {
                kind,
                interval,
                interval_num: u32::from(l.interval_num()),
                limit: u32::try_from(l.rate_limit()).ok()?,
                count: u32::try_from(l.current()).ok()?,
            })
            .ok()?;
    }
    let outcome = match pinion_sbe_spot::decode(r.result()).ok()? {
        Message::ErrorResponse(e) => {
            if e.retry_after().is_some() || e.server_time().is_some() {
                return None;
            }
            Err(ApiError {
                code: i32::from(e.code()),
                msg: Cow::Borrowed(plain(e.msg().ok()?)?),
                data: None,
            })
        }
        Message::NewOrderAckResponse(a) => {
            let (symbol, client) = (a.symbol().ok()?, a.client_order_id().ok()?);
            Ok(ack(symbol, a.order_id(), client, a.transact_time())?)
        }
        Message::NewOrderResultResponse(a) => {
            let (symbol, client) = (a.symbol().ok()?, a.client_order_id().ok()?);
            Ok(ack(symbol, a.order_id(), client, a.transact_time())?)
        }
        Message::NewOrderFullResponse(a) => {
            let (symbol, client) = (a.symbol().ok()?, a.client_order_id().ok()?);
            Ok(ack(symbol, a.order_id(), client, a.transact_time())?)
        }
        Message::CancelOrderResponse(c) => {
            let (symbol, client) = (c.symbol().ok()?, c.client_order_id().ok()?);
            c.orig_client_order_id().ok()?;
            Ok(ack(symbol, c.order_id(), client, c.transact_time())?)
        }
        Message::OrderAmendKeepPriorityResponse(a) => {
            // Transcoded only when these read; its JSON has no top-level order fields.
            a.symbol().ok()?;
            a.client_order_id().ok()?;
            Ok(ResultBody::Order(None))
        }
        Message::CancelReplaceOrderResponse(_) => Ok(ResultBody::Order(None)),
        _ => return None,
    };
    Some(Response {
        id,
        status: r.status(),
        outcome,
        rate_limits: RateLimits(limits),
    })
}

/// An order result's ids and time as [`Response::order_ack`] reads them from its JSON: the
/// strings must be plain (else transcode); an id or time the JSON reader refuses leaves no ack.
fn ack<'a>(
    symbol: &'a str,
    order_id: i64,
    client_order_id: &'a str,
    transact_us: i64,
) -> Option<ResultBody<'a>> {
    let (symbol, client_order_id) = (plain(symbol)?, plain(client_order_id)?);
    Some(ResultBody::Order(
        u64::try_from(order_id)
            .ok()
            .zip(ms(transact_us))
            .map(|(order_id, transact_time)| OrderAck {
                symbol,
                order_id,
                client_order_id,
                transact_time,
            }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(mantissa: i64, exponent: i8) -> SbeDecimal {
        SbeDecimal { mantissa, exponent }
    }

    /// The decimal's text as the transcoder writes it (`mantissa × 10^exponent`, exactly).
    fn text(x: SbeDecimal) -> String {
        let digits = x.mantissa.unsigned_abs().to_string();
        let sign = if x.mantissa < 0 { "-" } else { "" };
        if x.exponent >= 0 {
            let zeros = if x.mantissa != 0 {
                "0".repeat(x.exponent as usize)
            } else {
                String::new()
            };
            format!("{sign}{digits}{zeros}")
        } else {
            let frac = x.exponent.unsigned_abs() as usize;
            if digits.len() > frac {
                let (i, f) = digits.split_at(digits.len() - frac);
                format!("{sign}{i}.{f}")
            } else {
                format!("{sign}0.{}{digits}", "0".repeat(frac - digits.len()))
            }
        }
    }

    const MANTISSAS: [i64; 15] = [
        0,
        1,
        -1,
        5,
        10,
        -120,
        6_000_000_000_000,
        123_456_789,
        999_999_999_999_999_999,
        1_000_000_000_000_000_000,
        -9_000_000_000_000_000_000,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
        120_000_000,
    ];

    #[test]
    fn units_agree_with_the_text_at_every_exponent_and_scale() {
        for m in MANTISSAS {
            for e in i8::MIN..=i8::MAX {
                let t = text(d(m, e));
                for dec in [0u8, 1, 2, 5, 8, 17, 18, 19] {
                    assert_eq!(
                        units(d(m, e), dec),
                        decimal::parse_scaled(t.as_bytes(), dec).ok(),
                        "{t} at {dec}"
                    );
                }
            }
        }
    }

    #[test]
    fn exact_decimals_agree_with_the_text_at_every_exponent() {
        for m in MANTISSAS {
            for e in i8::MIN..=i8::MAX {
                let t = text(d(m, e));
                assert_eq!(
                    exact(d(m, e)),
                    pinion_core::Decimal::parse(t.as_bytes()).ok(),
                    "{t}"
                );
            }
        }
    }
}
