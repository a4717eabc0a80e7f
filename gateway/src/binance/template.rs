//! Pre-serialised WS API requests, patched in place per order.
//!
//! A [`RequestTemplate`] is the JSON text of one request (`{"id":…,"method":…,"params":{…}}`)
//! built once at start-up, with fixed-width **slots** for what changes per request: the request
//! id, price, quantity, client order ids, order id, trade id, `timestamp` and, when signed per
//! request, `signature`. [`RequestTemplate::write`] renders the values into their slots and
//! returns the bytes: no allocation, no formatting machinery, no JSON encoder on the hot path.
//!
//! **Fixed width.** A value shorter than its slot is followed by spaces, which JSON allows
//! between a value and the next `,` or `}`. So the text length never changes, the WebSocket
//! frame header can be computed once, and the session may patch the frame in place. Strings go
//! through `serde_json` when the template is built, so a symbol or key is always escaped.
//!
//! **Kept text.** A template keeps its last request and remembers what each slot holds, so a
//! write touches only what changed: a value is copied over the last one, the spaces after it
//! are written only where the last value was longer, and an optional parameter is blanked or
//! written back only when its presence changes. What comes out depends on the values alone,
//! never on the writes before.
//!
//! **Signing.** In logged-on mode (after `session.logon` with an Ed25519 key) order requests
//! carry no `apiKey` and no `signature`, only `timestamp` and `recvWindow`. Per-request mode
//! adds `apiKey` and a `signature` slot: the signature payload is rebuilt from a precomputed plan
//! (the params sorted by name, fixed text between the slot values) into a buffer sized at build
//! time, and signed with HMAC (hex) or Ed25519 (base64).
//!
//! **Timestamp.** The caller passes the time at which the bytes are written, not the intent's
//! time: the exchange's `recvWindow` check measures the request's staleness from it.

use arrayvec::ArrayVec;
use pinion_core::decimal::{MAX_DECIMALS, MAX_FORMATTED_LEN};
use pinion_core::{Px, Qty};
use pinion_strategy::{OrderSide, OrderType, TimeInForce};

use super::sign::{ED25519_B64_LEN, SignatureBuf, Signer};

/// What varies per request: each slot is a fixed-width hole in the template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The request `id` (a JSON integer).
    RequestId,
    /// A price (a JSON string, the instrument's price decimals).
    Price,
    /// A quantity (a JSON string, the instrument's quantity decimals).
    Qty,
    /// The client order id of the order (or cancel) this request creates (a string, ≤ 36).
    ClientId,
    /// The client order id of the order acted on (a string, ≤ 36).
    OrigClientId,
    /// The exchange's order id of the order acted on (an integer).
    OrderId,
    /// A trade id to start from (`myTrades` `fromId`, an integer).
    FromId,
    /// `timestamp`, ms since the Unix epoch (an integer), stamped when the bytes are written.
    Timestamp,
    /// An order list's client id, `listClientOrderId` (a string, ≤ 36).
    ListClientId,
    /// The exchange's order list id, `orderListId` (an integer).
    OrderListId,
    /// One field of one order of a request that may carry several (an order list's legs, or
    /// the one order of an `order.place` of any type): see [`Leg`].
    Leg(Leg, LegField),
}

/// Which order of a request a [`Slot::Leg`] belongs to. The exchange names the orders of a list
/// by their role; the legs are those roles in the order the request lists them:
///
/// | request                 | [`Leg::A`] | [`Leg::B`]      | [`Leg::C`]      |
/// |-------------------------|------------|-----------------|-----------------|
/// | `order.place` (any type)| the order  |                 |                 |
/// | `orderList.place.oco`   | `above…`   | `below…`        |                 |
/// | `orderList.place.oto`   | `working…` | `pending…`      |                 |
/// | `orderList.place.otoco` | `working…` | `pendingAbove…` | `pendingBelow…` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Leg {
    /// The first order.
    A = 0,
    /// The second order.
    B = 1,
    /// The third order.
    C = 2,
}

/// A field of a leg ([`Slot::Leg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LegField {
    /// `BUY` or `SELL`.
    Side = 0,
    /// The order type ([`SpotOrderType`]).
    Type = 1,
    /// The time in force.
    TimeInForce = 2,
    /// The limit price.
    Price = 3,
    /// The trigger price, `stopPrice`.
    StopPrice = 4,
    /// The trailing delta in BIPS, `trailingDelta` (a JSON integer).
    TrailingDelta = 5,
    /// The quantity.
    Qty = 6,
    /// The leg's client order id.
    ClientId = 7,
}

const LEG_FIELDS: usize = 8;
const FIXED_SLOTS: usize = 10;
const SLOT_KINDS: usize = FIXED_SLOTS + 3 * LEG_FIELDS;
/// Widest text of any slot value (without quotes).
const MAX_VALUE_LEN: usize = 36;
/// The length of a slot value that is absent from this request.
const ABSENT: u8 = u8::MAX;

impl Slot {
    /// Width of the slot in the template text, quotes included.
    const fn width(self) -> usize {
        match self {
            Slot::RequestId | Slot::OrderId | Slot::FromId | Slot::OrderListId => 20,
            Slot::Price | Slot::Qty => MAX_FORMATTED_LEN + 2,
            Slot::ClientId | Slot::OrigClientId | Slot::ListClientId => MAX_VALUE_LEN + 2,
            Slot::Timestamp => 16,
            Slot::Leg(_, field) => match field {
                LegField::Side => 6,
                LegField::Type => 19,
                LegField::TimeInForce => 5,
                LegField::Price | LegField::StopPrice | LegField::Qty => MAX_FORMATTED_LEN + 2,
                // A u32 in BIPS.
                LegField::TrailingDelta => 10,
                LegField::ClientId => MAX_VALUE_LEN + 2,
            },
        }
    }

    const fn quoted(self) -> bool {
        !matches!(
            self,
            Slot::RequestId
                | Slot::OrderId
                | Slot::FromId
                | Slot::Timestamp
                | Slot::OrderListId
                | Slot::Leg(_, LegField::TrailingDelta)
        )
    }

    /// A dense index over every slot kind.
    const fn index(self) -> usize {
        match self {
            Slot::RequestId => 0,
            Slot::Price => 1,
            Slot::Qty => 2,
            Slot::ClientId => 3,
            Slot::OrigClientId => 4,
            Slot::OrderId => 5,
            Slot::FromId => 6,
            Slot::Timestamp => 7,
            Slot::ListClientId => 8,
            Slot::OrderListId => 9,
            Slot::Leg(leg, field) => FIXED_SLOTS + leg as usize * LEG_FIELDS + field as usize,
        }
    }
}

const _: () = assert!(MAX_FORMATTED_LEN <= MAX_VALUE_LEN);

/// Width of the signature slot (an Ed25519 base64 signature in quotes).
const SIGNATURE_WIDTH: usize = ED25519_B64_LEN + 2;

/// One request parameter: its name and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Its value.
    pub value: ParamValue,
    /// Whether the parameter may be left out of a request (a slot only): when its value is
    /// absent, the whole `"name":value,` is blanked to spaces and left out of the signature.
    /// Never the last parameter (its comma is blanked with it).
    pub optional: bool,
}

impl Param {
    /// A fixed string parameter.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Text(value.to_owned()),
            optional: false,
        }
    }

    /// A fixed numeric (or other bare JSON literal) parameter, written as given.
    pub fn number(name: &str, literal: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Number(literal.to_owned()),
            optional: false,
        }
    }

    /// A slot.
    pub fn slot(name: &str, slot: Slot) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Slot(slot),
            optional: false,
        }
    }

    /// A slot sent only when its value is present ([`Param::optional`]).
    pub fn optional(name: &str, slot: Slot) -> Self {
        Self {
            optional: true,
            ..Self::slot(name, slot)
        }
    }

    /// The `signature` slot.
    pub fn signature() -> Self {
        Self {
            name: "signature".to_owned(),
            value: ParamValue::Signature,
            optional: false,
        }
    }
}

/// The value of a [`Param`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A string, escaped into the JSON and signed raw.
    Text(String),
    /// A JSON number or boolean literal, written and signed as given.
    Number(String),
    /// A per-request value.
    Slot(Slot),
    /// The signature of all the other params (only one, and only in signed templates).
    Signature,
}

/// Why a template could not be built or written. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A value too long for its slot.
    #[error("{slot:?} value of {len} bytes does not fit its slot")]
    TooLong {
        /// The slot.
        slot: Slot,
        /// The value's length.
        len: usize,
    },
    /// A client id with a byte that would need escaping (only `[A-Za-z0-9_-]` are sent).
    #[error("{slot:?} has byte 0x{byte:02x}, outside [A-Za-z0-9_-]")]
    BadClientId {
        /// The slot.
        slot: Slot,
        /// The byte.
        byte: u8,
    },
    /// A negative price or quantity.
    #[error("{slot:?} is negative ({raw} units)")]
    Negative {
        /// The slot.
        slot: Slot,
        /// The raw value.
        raw: i64,
    },
    /// A parameter the request must carry has no value.
    #[error("{slot:?} is required by the request but has no value")]
    Missing {
        /// The slot.
        slot: Slot,
    },
    /// An optional parameter placed last, or one that is not a slot.
    #[error("optional param must be a slot and not the last param")]
    BadOptional,
    /// The template has a signature slot but no signer was given.
    #[error("{method}: signed template written without a signer")]
    NoSigner {
        /// The method.
        method: &'static str,
    },
    /// A numeric literal that is not a plain JSON number or boolean.
    #[error("param literal is not a JSON number or boolean")]
    BadLiteral,
    /// More than one signature param.
    #[error("more than one signature param")]
    TwoSignatures,
    /// A template with more slots than a template can hold (32).
    #[error("more than 32 slots")]
    TooManySlots,
    /// `recvWindow` above the exchange's 60 000 ms.
    #[error("recvWindow of {0} µs is above 60 000 ms")]
    RecvWindowTooLarge(u64),
}

/// The per-request values; a template uses the ones it has slots for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotValues<'a> {
    /// Request id.
    pub request_id: u64,
    /// Price.
    pub price: Px,
    /// Quantity.
    pub qty: Qty,
    /// Client order id of what this request creates (encoded text).
    pub client_id: &'a [u8],
    /// Client order id of the order acted on (encoded text).
    pub orig_client_id: &'a [u8],
    /// Exchange order id of the order acted on.
    pub order_id: u64,
    /// `myTrades` start trade id.
    pub from_id: u64,
    /// `timestamp` in ms, taken when the bytes are written.
    pub timestamp_ms: u64,
    /// An order list's client id (encoded text).
    pub list_client_id: &'a [u8],
    /// The exchange's order list id.
    pub order_list_id: u64,
    /// The orders of the request, by [`Leg`].
    pub legs: [LegValues<'a>; 3],
}

/// The values of one [`Leg`]; `None` (or an empty client id) is absent: an optional parameter
/// is then left out, a required one is an error ([`TemplateError::Missing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegValues<'a> {
    /// Side.
    pub side: Option<OrderSide>,
    /// Order type.
    pub order_type: Option<SpotOrderType>,
    /// Time in force.
    pub tif: Option<TimeInForce>,
    /// Limit price.
    pub price: Option<Px>,
    /// Trigger price.
    pub stop_price: Option<Px>,
    /// Trailing delta, BIPS.
    pub trailing_delta: Option<u32>,
    /// Quantity.
    pub qty: Option<Qty>,
    /// Client order id (encoded text).
    pub client_id: &'a [u8],
}

/// Binance Spot's order types (`type`), the protective ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpotOrderType {
    /// `LIMIT`.
    Limit,
    /// `LIMIT_MAKER`.
    LimitMaker,
    /// `MARKET`.
    Market,
    /// `STOP_LOSS`: a market order once the trigger is met.
    StopLoss,
    /// `STOP_LOSS_LIMIT`: a limit order once the trigger is met.
    StopLossLimit,
    /// `TAKE_PROFIT`: a market order once the trigger is met.
    TakeProfit,
    /// `TAKE_PROFIT_LIMIT`: a limit order once the trigger is met.
    TakeProfitLimit,
}

impl SpotOrderType {
    /// The exchange's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpotOrderType::Limit => "LIMIT",
            SpotOrderType::LimitMaker => "LIMIT_MAKER",
            SpotOrderType::Market => "MARKET",
            SpotOrderType::StopLoss => "STOP_LOSS",
            SpotOrderType::StopLossLimit => "STOP_LOSS_LIMIT",
            SpotOrderType::TakeProfit => "TAKE_PROFIT",
            SpotOrderType::TakeProfitLimit => "TAKE_PROFIT_LIMIT",
        }
    }

    /// Whether the order waits for a trigger (`stopPrice` and/or `trailingDelta`).
    pub const fn is_triggered(self) -> bool {
        matches!(
            self,
            SpotOrderType::StopLoss
                | SpotOrderType::StopLossLimit
                | SpotOrderType::TakeProfit
                | SpotOrderType::TakeProfitLimit
        )
    }

    /// Whether the order carries a limit `price`.
    pub const fn has_price(self) -> bool {
        matches!(
            self,
            SpotOrderType::Limit
                | SpotOrderType::LimitMaker
                | SpotOrderType::StopLossLimit
                | SpotOrderType::TakeProfitLimit
        )
    }

    /// Whether the order needs a `timeInForce`.
    pub const fn has_tif(self) -> bool {
        matches!(
            self,
            SpotOrderType::Limit | SpotOrderType::StopLossLimit | SpotOrderType::TakeProfitLimit
        )
    }
}

impl From<OrderType> for SpotOrderType {
    fn from(ty: OrderType) -> Self {
        match ty {
            OrderType::Limit => SpotOrderType::Limit,
            OrderType::LimitMaker => SpotOrderType::LimitMaker,
            OrderType::Market => SpotOrderType::Market,
        }
    }
}

/// Where a slot sits in the text, and, for an optional param, the span blanked when absent.
#[derive(Debug, Clone, Copy)]
struct SlotAt {
    slot: Slot,
    at: usize,
    /// [`Slot::width`], [`Slot::quoted`] and [`Slot::index`], looked up once at build time.
    width: usize,
    quoted: bool,
    index: usize,
    /// `(start, prefix_len)`: the param's `"name":` starts at `start` (and is `prefix_len`
    /// long, kept in `prefixes` from `prefix_at`); its comma follows the slot.
    optional: Option<(usize, usize, usize)>,
}

/// A run of the signature payload, in name order. Every `name=` is stored with the `&` before
/// it (the payload is built with one leading `&`, which is not signed), and fixed params that
/// follow each other are one run: a write copies one run per slot, not three pieces per param.
#[derive(Debug, Clone)]
enum Piece {
    /// `&name=value` of one or more fixed params.
    Fixed(std::ops::Range<usize>),
    /// `&name=` then a slot's value, read back from the text (left out when absent).
    Slot {
        name: std::ops::Range<usize>,
        slot: Slot,
        at: usize,
    },
}

/// Most slots in one template.
const MAX_SLOTS: usize = 32;

/// One pre-serialised request. See the module docs.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: &'static str,
    text: Vec<u8>,
    slots: ArrayVec<SlotAt, MAX_SLOTS>,
    /// The `"name":` text of every optional param, to write back when it is present again.
    prefixes: Vec<u8>,
    signature_at: Option<usize>,
    /// What each slot's value takes of the text now, quotes included (the rest of the slot is
    /// spaces), or [`ABSENT`] while its optional param is blanked out: a write touches only
    /// what changed since the last one.
    used: [u8; MAX_SLOTS],
    /// The signature payload's pieces, and the fixed bytes they point into.
    plan: Vec<Piece>,
    plan_bytes: Vec<u8>,
    /// The last signature payload, after one leading `&` (sized at build time for the longest).
    payload: Box<[u8]>,
    payload_len: usize,
    price_decimals: u8,
    qty_decimals: u8,
}

impl RequestTemplate {
    /// A template for `method` with `params` in the order given (the JSON keeps that order;
    /// the signature payload sorts by name). Decimals are those of the instrument's prices and
    /// quantities.
    pub fn new(
        method: &'static str,
        params: &[Param],
        price_decimals: u8,
        qty_decimals: u8,
    ) -> Result<Self, TemplateError> {
        let mut text = Vec::with_capacity(1024);
        let mut slots = ArrayVec::new();
        let mut prefixes = Vec::new();
        let mut signature_at = None;
        // Where each slot param's value sits in the text.
        let mut param_at = vec![0usize; params.len()];
        text.extend_from_slice(b"{\"id\":");
        push_slot(&mut text, &mut slots, Slot::RequestId, None)?;
        text.extend_from_slice(b",\"method\":");
        text.extend_from_slice(&json_string(method));
        if !params.is_empty() {
            text.extend_from_slice(b",\"params\":{");
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                let start = text.len();
                text.extend_from_slice(&json_string(&p.name));
                text.push(b':');
                if p.optional && (i + 1 == params.len() || !matches!(p.value, ParamValue::Slot(_)))
                {
                    return Err(TemplateError::BadOptional);
                }
                match &p.value {
                    ParamValue::Text(s) => text.extend_from_slice(&json_string(s)),
                    ParamValue::Number(lit) => {
                        if !is_literal(lit) {
                            return Err(TemplateError::BadLiteral);
                        }
                        text.extend_from_slice(lit.as_bytes());
                    }
                    ParamValue::Slot(slot) => {
                        let optional = p.optional.then(|| {
                            let prefix_at = prefixes.len();
                            prefixes.extend_from_slice(&text[start..]);
                            (start, prefix_at, text.len() - start)
                        });
                        param_at[i] = text.len();
                        push_slot(&mut text, &mut slots, *slot, optional)?;
                    }
                    ParamValue::Signature => {
                        if signature_at.is_some() {
                            return Err(TemplateError::TwoSignatures);
                        }
                        signature_at = Some(text.len());
                        text.resize(text.len() + SIGNATURE_WIDTH, b' ');
                    }
                }
            }
            text.push(b'}');
        }
        text.push(b'}');

        // The signature payload plan: sorted by name, signature left out.
        let mut sorted: Vec<usize> = (0..params.len())
            .filter(|&i| params[i].value != ParamValue::Signature)
            .collect();
        sorted.sort_by(|&a, &b| params[a].name.cmp(&params[b].name));
        let mut plan = Vec::new();
        let mut plan_bytes = Vec::new();
        let mut max_len = 0;
        for i in sorted {
            let p = &params[i];
            let from = plan_bytes.len();
            plan_bytes.push(b'&');
            plan_bytes.extend_from_slice(p.name.as_bytes());
            plan_bytes.push(b'=');
            match &p.value {
                ParamValue::Text(s) => plan_bytes.extend_from_slice(s.as_bytes()),
                ParamValue::Number(lit) => plan_bytes.extend_from_slice(lit.as_bytes()),
                ParamValue::Slot(slot) => {
                    max_len += plan_bytes.len() - from + slot.width();
                    plan.push(Piece::Slot {
                        name: from..plan_bytes.len(),
                        slot: *slot,
                        at: param_at[i],
                    });
                    continue;
                }
                ParamValue::Signature => {}
            }
            max_len += plan_bytes.len() - from;
            match plan.last_mut() {
                // Right after another fixed run: one run.
                Some(Piece::Fixed(run)) => run.end = plan_bytes.len(),
                _ => plan.push(Piece::Fixed(from..plan_bytes.len())),
            }
        }
        let mut template = Self {
            method,
            text,
            slots,
            prefixes,
            signature_at,
            // Every slot is spaces, every param in place.
            used: [0; MAX_SLOTS],
            plan,
            plan_bytes,
            payload: vec![0; max_len].into_boxed_slice(),
            payload_len: 0,
            price_decimals,
            qty_decimals,
        };
        // Blank every slot so the text is valid JSON before the first write.
        template.fill(&SlotValues::default(), true)?;
        Ok(template)
    }

    /// The method.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Whether requests carry a per-request signature.
    pub fn is_signed(&self) -> bool {
        self.signature_at.is_some()
    }

    /// Length of every request this template writes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Always false: a template is never empty (kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The slots this template has.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().map(|s| s.slot)
    }

    /// Writes `values` into the slots (and the signature, when signed, with `signer`) and
    /// returns the request text. Does not allocate.
    pub fn write(
        &mut self,
        values: &SlotValues<'_>,
        signer: Option<&Signer>,
    ) -> Result<&[u8], TemplateError> {
        let lens = self.fill(values, false)?;
        if let Some(at) = self.signature_at {
            let signer = signer.ok_or(TemplateError::NoSigner {
                method: self.method,
            })?;
            let mut n = 0;
            for piece in &self.plan {
                match piece {
                    Piece::Fixed(r) => {
                        copy_short(&mut self.payload[n..], &self.plan_bytes[r.clone()]);
                        n += r.len();
                    }
                    Piece::Slot { name, slot, at } => {
                        let len = lens[slot.index()];
                        if len == ABSENT {
                            continue;
                        }
                        copy_short(&mut self.payload[n..], &self.plan_bytes[name.clone()]);
                        n += name.len();
                        let from = at + usize::from(slot.quoted());
                        let len = usize::from(len);
                        copy_short(&mut self.payload[n..], &self.text[from..from + len]);
                        n += len;
                    }
                }
            }
            self.payload_len = n;
            let mut sig: SignatureBuf = [0; ED25519_B64_LEN];
            let sig = signer.sign(self.last_payload(), &mut sig);
            patch(&mut self.text[at..at + SIGNATURE_WIDTH], sig, true);
        }
        Ok(&self.text)
    }

    /// The signature payload of the last [`RequestTemplate::write`] (empty when unsigned).
    pub fn last_payload(&self) -> &[u8] {
        // Past the leading `&`.
        self.payload.get(1..self.payload_len).unwrap_or(&[])
    }

    /// Renders every slot into the text; returns each slot kind's value length ([`ABSENT`]
    /// when left out). `initial`: at build time, a required slot without a value is written
    /// as an empty string or `0` rather than refused.
    fn fill(
        &mut self,
        values: &SlotValues<'_>,
        initial: bool,
    ) -> Result<[u8; SLOT_KINDS], TemplateError> {
        let mut lens = [ABSENT; SLOT_KINDS];
        for k in 0..self.slots.len() {
            let SlotAt {
                slot,
                at,
                width,
                quoted,
                index,
                optional,
            } = self.slots[k];
            let mut scratch = [0u8; MAX_VALUE_LEN];
            let value: &[u8] = match render(
                slot,
                values,
                self.price_decimals,
                self.qty_decimals,
                &mut scratch,
            )? {
                Some(value) => value,
                None => match optional {
                    Some((start, _, _)) => {
                        if self.used[k] != ABSENT {
                            // Gone, comma and all.
                            fill_spaces(&mut self.text[start..at + width + 1]);
                            self.used[k] = ABSENT;
                        }
                        continue;
                    }
                    None if initial => {
                        if quoted {
                            b""
                        } else {
                            b"0"
                        }
                    }
                    None => return Err(TemplateError::Missing { slot }),
                },
            };
            let mut was = usize::from(self.used[k]);
            if self.used[k] == ABSENT {
                if let Some((start, prefix_at, prefix_len)) = optional {
                    copy_short(
                        &mut self.text[start..],
                        &self.prefixes[prefix_at..prefix_at + prefix_len],
                    );
                    self.text[at + width] = b',';
                }
                // The blanked slot is all spaces.
                was = 0;
            }
            let text = &mut self.text[at..at + width];
            let end = if quoted {
                text[0] = b'"';
                copy_short(&mut text[1..], value);
                text[1 + value.len()] = b'"';
                value.len() + 2
            } else {
                copy_short(text, value);
                value.len()
            };
            // Only what the last value took beyond this one needs spacing out.
            if was > end {
                fill_spaces(&mut text[end..was]);
            }
            self.used[k] = end as u8;
            lens[index] = value.len() as u8;
        }
        Ok(lens)
    }
}

/// Spaces over `dst`, 8 bytes per store (the last one overlapping).
#[inline(always)]
fn fill_spaces(dst: &mut [u8]) {
    const SPACES: [u8; 8] = [b' '; 8];
    let n = dst.len();
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            dst[i..i + 8].copy_from_slice(&SPACES);
            i += 8;
        }
        dst[n - 8..].copy_from_slice(&SPACES);
    } else {
        for b in dst {
            *b = b' ';
        }
    }
}

/// Copies `src` to the start of `dst` in 8-byte moves (the last one overlapping), sparing
/// the short, variable-length copies of a write a call each.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    let dst = &mut dst[..n];
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
            i += 8;
        }
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

fn push_slot(
    text: &mut Vec<u8>,
    slots: &mut ArrayVec<SlotAt, MAX_SLOTS>,
    slot: Slot,
    optional: Option<(usize, usize, usize)>,
) -> Result<(), TemplateError> {
    slots
        .try_push(SlotAt {
            slot,
            at: text.len(),
            width: slot.width(),
            quoted: slot.quoted(),
            index: slot.index(),
            optional,
        })
        .map_err(|_| TemplateError::TooManySlots)?;
    text.resize(text.len() + slot.width(), b' ');
    Ok(())
}

/// Writes `value` (in quotes when `quoted`) at the start of `slot` and spaces after it. The
/// caller has checked that it fits.
#[inline]
fn patch(slot: &mut [u8], value: &[u8], quoted: bool) {
    let (open, body_at) = if quoted { (1, 1) } else { (0, 0) };
    let end = body_at + value.len();
    if open == 1 {
        slot[0] = b'"';
        slot[end] = b'"';
    }
    slot[body_at..end].copy_from_slice(value);
    slot[end + open..].fill(b' ');
}

/// Checks an encoded client id: only bytes JSON and the signature payload take as they are.
#[inline(always)]
fn client_id_text(slot: Slot, text: &[u8]) -> Result<&[u8], TemplateError> {
    // Every byte looked up, no branch per byte; the offender is looked for only on failure.
    if !text
        .iter()
        .fold(true, |ok, &b| ok & CLIENT_ID_BYTES[usize::from(b)])
        && let Some(&byte) = text.iter().find(|&&b| !CLIENT_ID_BYTES[usize::from(b)])
    {
        return Err(TemplateError::BadClientId { slot, byte });
    }
    Ok(text)
}

/// The bytes a client id may carry: `[A-Za-z0-9_-]`.
const CLIENT_ID_BYTES: [bool; 256] = {
    let mut ok = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        ok[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    ok
};

/// A price or quantity as text in `out`; a negative one refused.
#[inline(always)]
fn decimal_text(
    slot: Slot,
    raw: i64,
    decimals: u8,
    out: &mut [u8; MAX_VALUE_LEN],
) -> Result<&[u8], TemplateError> {
    if raw < 0 {
        return Err(TemplateError::Negative { slot, raw });
    }
    let n = write_decimal(raw as u64, decimals, out);
    Ok(&out[..n])
}

/// `slot`'s value text (numbers rendered into `out`, names and client ids as they are);
/// `None` when the value is absent.
#[inline(always)]
fn render<'r>(
    slot: Slot,
    v: &SlotValues<'r>,
    price_decimals: u8,
    qty_decimals: u8,
    out: &'r mut [u8; MAX_VALUE_LEN],
) -> Result<Option<&'r [u8]>, TemplateError> {
    let int = |value: u64, out: &'r mut [u8; MAX_VALUE_LEN]| {
        let n = write_u64(value, out);
        &out[..n]
    };
    let text: &[u8] = match slot {
        Slot::RequestId => return Ok(Some(int(v.request_id, out))),
        Slot::OrderId => return Ok(Some(int(v.order_id, out))),
        Slot::FromId => return Ok(Some(int(v.from_id, out))),
        Slot::OrderListId => return Ok(Some(int(v.order_list_id, out))),
        Slot::Timestamp => {
            let text = int(v.timestamp_ms, out);
            if text.len() > Slot::Timestamp.width() {
                return Err(TemplateError::TooLong {
                    slot,
                    len: text.len(),
                });
            }
            return Ok(Some(text));
        }
        Slot::Price => return decimal_text(slot, v.price.0, price_decimals, out).map(Some),
        Slot::Qty => return decimal_text(slot, v.qty.0, qty_decimals, out).map(Some),
        Slot::ClientId => client_id_text(slot, v.client_id)?,
        Slot::OrigClientId => client_id_text(slot, v.orig_client_id)?,
        Slot::ListClientId => {
            if v.list_client_id.is_empty() {
                return Ok(None);
            }
            client_id_text(slot, v.list_client_id)?
        }
        Slot::Leg(leg, field) => {
            let l = &v.legs[leg as usize];
            match field {
                LegField::Side => match l.side {
                    Some(side) => side_name(side).as_bytes(),
                    None => return Ok(None),
                },
                LegField::Type => match l.order_type {
                    Some(ty) => ty.as_str().as_bytes(),
                    None => return Ok(None),
                },
                LegField::TimeInForce => match l.tif {
                    Some(tif) => tif_name(tif).as_bytes(),
                    None => return Ok(None),
                },
                LegField::Price | LegField::StopPrice => {
                    let px = if field == LegField::Price {
                        l.price
                    } else {
                        l.stop_price
                    };
                    match px {
                        Some(px) => return decimal_text(slot, px.0, price_decimals, out).map(Some),
                        None => return Ok(None),
                    }
                }
                LegField::Qty => match l.qty {
                    Some(q) => return decimal_text(slot, q.0, qty_decimals, out).map(Some),
                    None => return Ok(None),
                },
                LegField::TrailingDelta => match l.trailing_delta {
                    Some(d) => return Ok(Some(int(u64::from(d), out))),
                    None => return Ok(None),
                },
                LegField::ClientId => {
                    if l.client_id.is_empty() {
                        return Ok(None);
                    }
                    client_id_text(slot, l.client_id)?
                }
            }
        }
    };
    let len = text.len();
    if len > MAX_VALUE_LEN || len + 2 > slot.width() {
        return Err(TemplateError::TooLong { slot, len });
    }
    Ok(Some(text))
}

/// Decimal digits of `v` into `out`; returns the length (at most 20).
#[inline(always)]
fn write_u64(v: u64, out: &mut [u8; MAX_VALUE_LEN]) -> usize {
    let n = digit_count(v);
    write_digits(v, &mut out[..n]);
    n
}

/// How many decimal digits `v` takes (1 for 0).
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Decimal digit pairs, `00` to `99`.
const DECIMAL_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

/// The low `out.len()` decimal digits of `v` into `out`, zero-padded, two per step; past
/// eight digits the low eight and the rest are two chains that do not wait on each other.
#[inline(always)]
fn write_digits(v: u64, out: &mut [u8]) {
    let n = out.len();
    if n > 8 {
        let (high, low) = out.split_at_mut(n - 8);
        write_pairs(v / 100_000_000, high);
        // Below 10^8: u32 arithmetic.
        write_pairs(u64::from((v % 100_000_000) as u32), low);
    } else {
        write_pairs(v, out);
    }
}

#[inline(always)]
fn write_pairs(mut v: u64, out: &mut [u8]) {
    let mut i = out.len();
    while i >= 2 {
        out[i - 2..i].copy_from_slice(&DECIMAL_PAIRS[(v % 100) as usize]);
        v /= 100;
        i -= 2;
    }
    if i == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}

/// Powers of ten up to `10^MAX_DECIMALS`.
const POW10: [u64; MAX_DECIMALS as usize + 1] = {
    let mut p = [1u64; MAX_DECIMALS as usize + 1];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `raw` units of `10^-decimals` as text, exactly as [`pinion_core::decimal::write_scaled`]
/// writes a value that is not negative (at least one integer digit, every fraction digit),
/// but two digits per step and straight into `out`: an OTOCO carries six prices and
/// quantities. Returns the length (at most 20).
#[inline(always)]
fn write_decimal(raw: u64, decimals: u8, out: &mut [u8; MAX_VALUE_LEN]) -> usize {
    let decimals = decimals.min(MAX_DECIMALS);
    let scale = POW10[usize::from(decimals)];
    let (int, frac) = (raw / scale, raw % scale);
    let n = digit_count(int);
    write_digits(int, &mut out[..n]);
    if decimals == 0 {
        return n;
    }
    out[n] = b'.';
    let end = n + 1 + usize::from(decimals);
    write_digits(frac, &mut out[n + 1..end]);
    end
}

fn json_string(s: &str) -> Vec<u8> {
    // Serialising a &str cannot fail.
    serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec())
}

fn is_literal(s: &str) -> bool {
    // A plain decimal (`-?digits(.digits)?`, as pinion's decimal parser reads it) or a boolean.
    matches!(s, "true" | "false")
        || pinion_core::decimal::significant_decimals(s.as_bytes()).is_ok()
}

/// `recvWindow`: how stale the exchange lets a request be, in µs (sent in ms with up to three
/// decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow(u64);

impl RecvWindow {
    /// A window of `micros` µs; at most 60 000 ms.
    pub const fn from_micros(micros: u64) -> Result<Self, TemplateError> {
        if micros > 60_000_000 {
            return Err(TemplateError::RecvWindowTooLarge(micros));
        }
        Ok(Self(micros))
    }

    /// The window in µs.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The JSON literal in its shortest form (`100`, `100.5`, `0.25`): the exchange signs the
    /// value as text, and a parser that re-renders the number must get the same text back.
    pub fn literal(self) -> String {
        let (ms, us) = (self.0 / 1000, self.0 % 1000);
        if us == 0 {
            ms.to_string()
        } else {
            let frac = format!("{us:03}");
            format!("{ms}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Whether order requests are signed per request or ride on a logged-on session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// After `session.logon`: no `apiKey`, no `signature`.
    LoggedOn,
    /// Each request carries `apiKey` and a `signature` (HMAC keys, or Ed25519 without logon).
    PerRequest {
        /// The API key.
        api_key: String,
    },
}

/// Self-trade prevention mode sent with every order (checked at start-up against the symbol's
/// `allowedSelfTradePreventionModes` by [`super::stp::check_stp_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StpMode {
    /// `NONE`.
    None,
    /// `EXPIRE_TAKER`.
    ExpireTaker,
    /// `EXPIRE_MAKER`.
    ExpireMaker,
    /// `EXPIRE_BOTH`.
    ExpireBoth,
    /// `DECREMENT`.
    Decrement,
}

impl StpMode {
    /// Every mode pinion sends, in the exchange's order (`TRANSFER` is not one: it acts on
    /// trade groups, which pinion does not use).
    pub const ALL: [StpMode; 5] = [
        StpMode::None,
        StpMode::ExpireTaker,
        StpMode::ExpireMaker,
        StpMode::ExpireBoth,
        StpMode::Decrement,
    ];

    /// The mode the exchange calls `name` (exactly as it spells it), if pinion sends it.
    pub fn parse(name: &str) -> Option<StpMode> {
        StpMode::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The exchange's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            StpMode::None => "NONE",
            StpMode::ExpireTaker => "EXPIRE_TAKER",
            StpMode::ExpireMaker => "EXPIRE_MAKER",
            StpMode::ExpireBoth => "EXPIRE_BOTH",
            StpMode::Decrement => "DECREMENT",
        }
    }
}

/// How a request names the order it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderRef {
    /// By the exchange's `orderId` (the docs call it the fastest path).
    OrderId,
    /// By `origClientOrderId`, before the order id is known.
    ClientId,
}

/// What every request for one symbol shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolContext {
    /// The exchange's symbol.
    pub symbol: String,
    /// The instrument's price decimals.
    pub price_decimals: u8,
    /// The instrument's quantity decimals.
    pub qty_decimals: u8,
    /// `recvWindow`, or the exchange's default (5000 ms) when `None`.
    pub recv_window: Option<RecvWindow>,
    /// Self-trade prevention mode for new orders, or the symbol's default when `None`.
    pub stp_mode: Option<StpMode>,
    /// How requests are authenticated.
    pub signing: Signing,
}

/// Binance's name of a side.
pub const fn side_name(side: OrderSide) -> &'static str {
    match side {
        OrderSide::Buy => "BUY",
        OrderSide::Sell => "SELL",
    }
}

/// Binance's name of an order type.
pub const fn type_name(ty: OrderType) -> &'static str {
    match ty {
        OrderType::Limit => "LIMIT",
        OrderType::LimitMaker => "LIMIT_MAKER",
        OrderType::Market => "MARKET",
    }
}

/// Binance's name of a time in force.
pub const fn tif_name(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
    }
}

impl SymbolContext {
    fn build(
        &self,
        method: &'static str,
        mut params: Vec<Param>,
        timed: bool,
    ) -> Result<RequestTemplate, TemplateError> {
        if timed {
            if let Some(w) = self.recv_window {
                params.push(Param::number("recvWindow", &w.literal()));
            }
            params.push(Param::slot("timestamp", Slot::Timestamp));
            if let Signing::PerRequest { api_key } = &self.signing {
                params.push(Param::text("apiKey", api_key));
                params.push(Param::signature());
            }
        }
        RequestTemplate::new(method, &params, self.price_decimals, self.qty_decimals)
    }

    fn new_order_params(
        &self,
        params: &mut Vec<Param>,
        side: OrderSide,
        ty: OrderType,
        tif: TimeInForce,
    ) {
        params.push(Param::text("side", side_name(side)));
        params.push(Param::text("type", type_name(ty)));
        if ty == OrderType::Limit {
            params.push(Param::text("timeInForce", tif_name(tif)));
        }
        params.push(Param::slot("quantity", Slot::Qty));
        if ty != OrderType::Market {
            params.push(Param::slot("price", Slot::Price));
        }
        params.push(Param::slot("newClientOrderId", Slot::ClientId));
        params.push(Param::text("newOrderRespType", "ACK"));
        self.stp_param(params);
    }

    fn symbol_param(&self) -> Vec<Param> {
        vec![Param::text("symbol", &self.symbol)]
    }

    fn order_ref(params: &mut Vec<Param>, by: OrderRef, id_name: &str, client_name: &str) {
        match by {
            OrderRef::OrderId => params.push(Param::slot(id_name, Slot::OrderId)),
            OrderRef::ClientId => params.push(Param::slot(client_name, Slot::OrigClientId)),
        }
    }

    /// `order.place` for one (side, type, time in force), `newOrderRespType=ACK`. Slots:
    /// request id, quantity, price (not for market orders), client id, timestamp.
    pub fn order_place(
        &self,
        side: OrderSide,
        ty: OrderType,
        tif: TimeInForce,
    ) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        self.new_order_params(&mut p, side, ty, tif);
        self.build("order.place", p, true)
    }

    /// `order.place` of any type ([`SpotOrderType`], the protective ones included), with the
    /// order's fields in [`Leg::A`]'s slots: `side`, `type`, `quantity`, `newClientOrderId`
    /// always; `timeInForce`, `price`, `stopPrice` and `trailingDelta` when the leg has them
    /// (the exchange's mandatory set per type is checked by the caller,
    /// [`super::contingent::LegSpec::check`]). `newOrderRespType=ACK`.
    pub fn order_place_any(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        let a = |f| Slot::Leg(Leg::A, f);
        p.push(Param::slot("side", a(LegField::Side)));
        p.push(Param::slot("type", a(LegField::Type)));
        p.push(Param::optional("timeInForce", a(LegField::TimeInForce)));
        p.push(Param::slot("quantity", a(LegField::Qty)));
        p.push(Param::optional("price", a(LegField::Price)));
        p.push(Param::optional("stopPrice", a(LegField::StopPrice)));
        p.push(Param::optional("trailingDelta", a(LegField::TrailingDelta)));
        p.push(Param::slot("newClientOrderId", a(LegField::ClientId)));
        p.push(Param::text("newOrderRespType", "ACK"));
        self.stp_param(&mut p);
        self.build("order.place", p, true)
    }

    fn stp_param(&self, p: &mut Vec<Param>) {
        if let Some(stp) = self.stp_mode {
            p.push(Param::text("selfTradePreventionMode", stp.as_str()));
        }
    }

    /// The params of one leg of an order list, named `prefix` + the exchange's suffix
    /// (`aboveType`, `pendingBelowStopPrice`, …). `side` and `qty` only when the leg carries
    /// its own; `stopPrice` and `trailingDelta` unless it is a working order (which the
    /// exchange documents as `LIMIT` or `LIMIT_MAKER`, without them).
    fn leg_params(p: &mut Vec<Param>, prefix: &str, leg: Leg, side: bool, qty: bool) {
        let triggered = prefix != "working";
        let s = |f| Slot::Leg(leg, f);
        let name = |suffix: &str| format!("{prefix}{suffix}");
        p.push(Param::slot(&name("Type"), s(LegField::Type)));
        if side {
            p.push(Param::slot(&name("Side"), s(LegField::Side)));
        }
        p.push(Param::slot(&name("ClientOrderId"), s(LegField::ClientId)));
        p.push(Param::optional(&name("Price"), s(LegField::Price)));
        if triggered {
            p.push(Param::optional(&name("StopPrice"), s(LegField::StopPrice)));
            p.push(Param::optional(
                &name("TrailingDelta"),
                s(LegField::TrailingDelta),
            ));
        }
        if qty {
            p.push(Param::slot(&name("Quantity"), s(LegField::Qty)));
        }
        p.push(Param::optional(
            &name("TimeInForce"),
            s(LegField::TimeInForce),
        ));
    }

    /// `orderList.place.oco`: `side` and `quantity` from [`Leg::A`] (both orders share them),
    /// the above order in [`Leg::A`], the below order in [`Leg::B`], the list's id in
    /// [`Slot::ListClientId`]. `newOrderRespType=ACK`.
    pub fn order_list_oco(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::slot("listClientOrderId", Slot::ListClientId));
        p.push(Param::slot("side", Slot::Leg(Leg::A, LegField::Side)));
        p.push(Param::slot("quantity", Slot::Leg(Leg::A, LegField::Qty)));
        Self::leg_params(&mut p, "above", Leg::A, false, false);
        Self::leg_params(&mut p, "below", Leg::B, false, false);
        p.push(Param::text("newOrderRespType", "ACK"));
        self.stp_param(&mut p);
        self.build("orderList.place.oco", p, true)
    }

    /// `orderList.place.oto`: the working order in [`Leg::A`], the pending one in [`Leg::B`].
    pub fn order_list_oto(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::slot("listClientOrderId", Slot::ListClientId));
        p.push(Param::text("newOrderRespType", "ACK"));
        self.stp_param(&mut p);
        Self::leg_params(&mut p, "working", Leg::A, true, true);
        Self::leg_params(&mut p, "pending", Leg::B, true, true);
        self.build("orderList.place.oto", p, true)
    }

    /// `orderList.place.otoco`: the entry (working order) in [`Leg::A`]; its bracket, the
    /// pending OCO pair, in [`Leg::B`] (`pendingAbove…`) and [`Leg::C`] (`pendingBelow…`), with
    /// `pendingSide` and `pendingQuantity` from [`Leg::B`].
    pub fn order_list_otoco(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::slot("listClientOrderId", Slot::ListClientId));
        p.push(Param::text("newOrderRespType", "ACK"));
        self.stp_param(&mut p);
        Self::leg_params(&mut p, "working", Leg::A, true, true);
        p.push(Param::slot(
            "pendingSide",
            Slot::Leg(Leg::B, LegField::Side),
        ));
        p.push(Param::slot(
            "pendingQuantity",
            Slot::Leg(Leg::B, LegField::Qty),
        ));
        Self::leg_params(&mut p, "pendingAbove", Leg::B, false, false);
        Self::leg_params(&mut p, "pendingBelow", Leg::C, false, false);
        self.build("orderList.place.otoco", p, true)
    }

    /// `orderList.cancel` by `orderListId` ([`OrderRef::OrderId`]) or by `listClientOrderId`
    /// ([`OrderRef::ClientId`], the [`Slot::ListClientId`] slot); the cancel's own id goes in
    /// `newClientOrderId`.
    pub fn order_list_cancel(&self, by: OrderRef) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        match by {
            OrderRef::OrderId => p.push(Param::slot("orderListId", Slot::OrderListId)),
            OrderRef::ClientId => p.push(Param::slot("listClientOrderId", Slot::ListClientId)),
        }
        p.push(Param::slot("newClientOrderId", Slot::ClientId));
        self.build("orderList.cancel", p, true)
    }

    /// `openOrderLists.status`: every open order list of the account (the method takes no
    /// symbol).
    pub fn open_order_lists_status(&self) -> Result<RequestTemplate, TemplateError> {
        self.build("openOrderLists.status", Vec::new(), true)
    }

    /// `order.cancel` by order id or by original client id; the cancel's own id goes in
    /// `newClientOrderId`.
    pub fn order_cancel(&self, by: OrderRef) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        Self::order_ref(&mut p, by, "orderId", "origClientOrderId");
        p.push(Param::slot("newClientOrderId", Slot::ClientId));
        self.build("order.cancel", p, true)
    }

    /// `order.cancelReplace` (`STOP_ON_FAILURE`): cancels the order named by `by`, places a
    /// new one with the client id slot.
    pub fn order_cancel_replace(
        &self,
        by: OrderRef,
        side: OrderSide,
        ty: OrderType,
        tif: TimeInForce,
    ) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::text("cancelReplaceMode", "STOP_ON_FAILURE"));
        Self::order_ref(&mut p, by, "cancelOrderId", "cancelOrigClientOrderId");
        self.new_order_params(&mut p, side, ty, tif);
        self.build("order.cancelReplace", p, true)
    }

    /// `order.amend.keepPriority`: the quantity slot is `newQty`; the client id slot is the
    /// order's id after the amend (pass the current one to keep it).
    pub fn order_amend_keep_priority(
        &self,
        by: OrderRef,
    ) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        Self::order_ref(&mut p, by, "orderId", "origClientOrderId");
        p.push(Param::slot("newClientOrderId", Slot::ClientId));
        p.push(Param::slot("newQty", Slot::Qty));
        self.build("order.amend.keepPriority", p, true)
    }

    /// `openOrders.cancelAll`: the kill switch for the symbol.
    pub fn open_orders_cancel_all(&self) -> Result<RequestTemplate, TemplateError> {
        self.build("openOrders.cancelAll", self.symbol_param(), true)
    }

    /// `order.status` by order id or original client id.
    pub fn order_status(&self, by: OrderRef) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        Self::order_ref(&mut p, by, "orderId", "origClientOrderId");
        self.build("order.status", p, true)
    }

    /// `openOrders.status` for the symbol.
    pub fn open_orders_status(&self) -> Result<RequestTemplate, TemplateError> {
        self.build("openOrders.status", self.symbol_param(), true)
    }

    /// `myTrades` from a trade id (the last one seen, for reconciliation).
    pub fn my_trades(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::slot("fromId", Slot::FromId));
        self.build("myTrades", p, true)
    }

    /// `myTrades` with `limit=1` and no start: the account's latest trade on the symbol, whose
    /// id is where a later reconciliation's [`SymbolContext::my_trades`] starts.
    pub fn my_trades_latest(&self) -> Result<RequestTemplate, TemplateError> {
        let mut p = self.symbol_param();
        p.push(Param::number("limit", "1"));
        self.build("myTrades", p, true)
    }

    /// `account.status` (balances).
    pub fn account_status(&self) -> Result<RequestTemplate, TemplateError> {
        self.build("account.status", Vec::new(), true)
    }

    /// `account.status` with `omitZeroBalances=true`: the balances a reconciliation starts
    /// from, without the hundreds of empty ones a real account lists.
    pub fn account_balances(&self) -> Result<RequestTemplate, TemplateError> {
        self.build(
            "account.status",
            vec![Param::number("omitZeroBalances", "true")],
            true,
        )
    }
}

/// `session.logon`: always signed (with an Ed25519 key, which the exchange requires).
pub fn session_logon(
    api_key: &str,
    recv_window: Option<RecvWindow>,
) -> Result<RequestTemplate, TemplateError> {
    let mut p = vec![Param::text("apiKey", api_key), Param::signature()];
    if let Some(w) = recv_window {
        p.push(Param::number("recvWindow", &w.literal()));
    }
    p.push(Param::slot("timestamp", Slot::Timestamp));
    RequestTemplate::new("session.logon", &p, 0, 0)
}

/// `userDataStream.subscribe` (on a logged-on session; no params).
pub fn user_data_stream_subscribe() -> Result<RequestTemplate, TemplateError> {
    RequestTemplate::new("userDataStream.subscribe", &[], 0, 0)
}

/// `userDataStream.subscribe.signature`: user data without a logon, for keys that cannot log
/// on (HMAC), signed per request.
pub fn user_data_stream_subscribe_signature(
    api_key: &str,
    recv_window: Option<RecvWindow>,
) -> Result<RequestTemplate, TemplateError> {
    let mut p = vec![Param::text("apiKey", api_key)];
    if let Some(w) = recv_window {
        p.push(Param::number("recvWindow", &w.literal()));
    }
    p.push(Param::slot("timestamp", Slot::Timestamp));
    p.push(Param::signature());
    RequestTemplate::new("userDataStream.subscribe.signature", &p, 0, 0)
}

/// `time` (the server's clock, for the offset estimate; no params).
pub fn time() -> Result<RequestTemplate, TemplateError> {
    RequestTemplate::new("time", &[], 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_core_writes_them() {
        let mut values = vec![
            0i64,
            1,
            9,
            10,
            99,
            100,
            101,
            999_999,
            i64::MAX,
            i64::MAX - 1,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for shift in 0..64 {
            x = x.rotate_left(11) ^ x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            values.push((x >> shift) as i64 & i64::MAX);
        }
        for p in POW10 {
            values.extend([p as i64 - 1, p as i64, p as i64 + 1]);
        }
        for v in values {
            for decimals in 0..=MAX_DECIMALS + 2 {
                let mut core = [0u8; MAX_FORMATTED_LEN];
                let n = pinion_core::decimal::write_scaled(v, decimals, &mut core);
                let mut ours = [0u8; MAX_VALUE_LEN];
                let m = write_decimal(v as u64, decimals, &mut ours);
                assert_eq!(ours[..m], core[..n], "{v} at {decimals} decimals");
            }
            let mut ours = [0u8; MAX_VALUE_LEN];
            let m = write_u64(v as u64, &mut ours);
            assert_eq!(&ours[..m], v.to_string().as_bytes());
        }
    }
}
