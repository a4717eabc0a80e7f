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
//! **Signing.** In logged-on mode (after `session.logon` with an Ed25519 key) order requests
//! carry no `apiKey` and no `signature`, only `timestamp` and `recvWindow`. Per-request mode
//! adds `apiKey` and a `signature` slot: the signature payload is rebuilt from a precomputed plan
//! (the params sorted by name, fixed text between the slot values) into a buffer sized at build
//! time, and signed with HMAC (hex) or Ed25519 (base64).
//!
//! **Timestamp.** The caller passes the time at which the bytes are written, not the intent's
//! time: the exchange's `recvWindow` check measures the request's staleness from it.

use arrayvec::ArrayVec;
use pinion_core::decimal::MAX_FORMATTED_LEN;
use pinion_core::{Px, Qty};
use pinion_strategy::{OrderSide, OrderType, TimeInForce};

use super::sign::{ED25519_B64_LEN, SignatureBuf, Signer};

/// What varies per request: each slot is a fixed-width hole in the template text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Slot {
    /// The request `id` (a JSON integer).
    RequestId = 0,
    /// A price (a JSON string, the instrument's price decimals).
    Price = 1,
    /// A quantity (a JSON string, the instrument's quantity decimals).
    Qty = 2,
    /// The client order id of the order (or cancel) this request creates (a string, ≤ 36).
    ClientId = 3,
    /// The client order id of the order acted on (a string, ≤ 36).
    OrigClientId = 4,
    /// The exchange's order id of the order acted on (an integer).
    OrderId = 5,
    /// A trade id to start from (`myTrades` `fromId`, an integer).
    FromId = 6,
    /// `timestamp`, ms since the Unix epoch (an integer), stamped when the bytes are written.
    Timestamp = 7,
}

const SLOT_KINDS: usize = 8;
/// Widest text of any slot value (without quotes).
const MAX_VALUE_LEN: usize = 36;

impl Slot {
    /// Width of the slot in the template text, quotes included.
    const fn width(self) -> usize {
        match self {
            Slot::RequestId | Slot::OrderId | Slot::FromId => 20,
            Slot::Price | Slot::Qty => MAX_FORMATTED_LEN + 2,
            Slot::ClientId | Slot::OrigClientId => MAX_VALUE_LEN + 2,
            Slot::Timestamp => 16,
        }
    }

    const fn quoted(self) -> bool {
        matches!(
            self,
            Slot::Price | Slot::Qty | Slot::ClientId | Slot::OrigClientId
        )
    }
}

/// Width of the signature slot (an Ed25519 base64 signature in quotes).
const SIGNATURE_WIDTH: usize = ED25519_B64_LEN + 2;

/// One request parameter: its name and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// Its value.
    pub value: ParamValue,
}

impl Param {
    /// A fixed string parameter.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Text(value.to_owned()),
        }
    }

    /// A fixed numeric (or other bare JSON literal) parameter, written as given.
    pub fn number(name: &str, literal: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Number(literal.to_owned()),
        }
    }

    /// A slot.
    pub fn slot(name: &str, slot: Slot) -> Self {
        Self {
            name: name.to_owned(),
            value: ParamValue::Slot(slot),
        }
    }

    /// The `signature` slot.
    pub fn signature() -> Self {
        Self {
            name: "signature".to_owned(),
            value: ParamValue::Signature,
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
    /// A template with more slots than a template can hold (16).
    #[error("more than 16 slots")]
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
}

#[derive(Debug, Clone)]
enum Segment {
    Fixed(Vec<u8>),
    Slot(Slot),
}

/// One pre-serialised request. See the module docs.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: &'static str,
    text: Vec<u8>,
    slots: ArrayVec<(Slot, usize), 16>,
    signature_at: Option<usize>,
    plan: Vec<Segment>,
    payload: Vec<u8>,
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
        let mut text = Vec::with_capacity(512);
        let mut slots = ArrayVec::new();
        let mut signature_at = None;
        text.extend_from_slice(b"{\"id\":");
        push_slot(&mut text, &mut slots, Slot::RequestId)?;
        text.extend_from_slice(b",\"method\":");
        text.extend_from_slice(&json_string(method));
        if !params.is_empty() {
            text.extend_from_slice(b",\"params\":{");
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                text.extend_from_slice(&json_string(&p.name));
                text.push(b':');
                match &p.value {
                    ParamValue::Text(s) => text.extend_from_slice(&json_string(s)),
                    ParamValue::Number(lit) => {
                        if !is_literal(lit) {
                            return Err(TemplateError::BadLiteral);
                        }
                        text.extend_from_slice(lit.as_bytes());
                    }
                    ParamValue::Slot(slot) => push_slot(&mut text, &mut slots, *slot)?,
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
        let mut sorted: Vec<&Param> = params
            .iter()
            .filter(|p| p.value != ParamValue::Signature)
            .collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut plan = Vec::new();
        let mut fixed = Vec::new();
        let mut max_len = 0;
        for (i, p) in sorted.iter().enumerate() {
            if i > 0 {
                fixed.push(b'&');
            }
            fixed.extend_from_slice(p.name.as_bytes());
            fixed.push(b'=');
            match &p.value {
                ParamValue::Text(s) => fixed.extend_from_slice(s.as_bytes()),
                ParamValue::Number(lit) => fixed.extend_from_slice(lit.as_bytes()),
                ParamValue::Slot(slot) => {
                    max_len += fixed.len() + slot.width();
                    plan.push(Segment::Fixed(std::mem::take(&mut fixed)));
                    plan.push(Segment::Slot(*slot));
                }
                ParamValue::Signature => {}
            }
        }
        max_len += fixed.len();
        plan.push(Segment::Fixed(fixed));
        let mut template = Self {
            method,
            text,
            slots,
            signature_at,
            plan,
            payload: Vec::with_capacity(max_len),
            price_decimals,
            qty_decimals,
        };
        // Blank every slot so the text is valid JSON before the first write.
        template.fill(&SlotValues::default())?;
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
        self.slots.iter().map(|(s, _)| *s)
    }

    /// Writes `values` into the slots (and the signature, when signed, with `signer`) and
    /// returns the request text. Does not allocate.
    pub fn write(
        &mut self,
        values: &SlotValues<'_>,
        signer: Option<&Signer>,
    ) -> Result<&[u8], TemplateError> {
        let rendered = self.fill(values)?;
        if let Some(at) = self.signature_at {
            let signer = signer.ok_or(TemplateError::NoSigner {
                method: self.method,
            })?;
            self.payload.clear();
            for seg in &self.plan {
                match seg {
                    Segment::Fixed(bytes) => self.payload.extend_from_slice(bytes),
                    Segment::Slot(slot) => {
                        let r = &rendered[*slot as usize];
                        self.payload.extend_from_slice(&r.0[..r.1]);
                    }
                }
            }
            let mut sig: SignatureBuf = [0; ED25519_B64_LEN];
            let sig = signer.sign(&self.payload, &mut sig);
            patch(&mut self.text[at..at + SIGNATURE_WIDTH], sig, true);
        }
        Ok(&self.text)
    }

    /// The signature payload of the last [`RequestTemplate::write`] (empty when unsigned).
    pub fn last_payload(&self) -> &[u8] {
        &self.payload
    }

    fn fill(
        &mut self,
        values: &SlotValues<'_>,
    ) -> Result<[([u8; MAX_VALUE_LEN], usize); SLOT_KINDS], TemplateError> {
        let mut rendered = [([0u8; MAX_VALUE_LEN], 0usize); SLOT_KINDS];
        for &(slot, at) in &self.slots {
            let r = &mut rendered[slot as usize];
            r.1 = render(
                slot,
                values,
                self.price_decimals,
                self.qty_decimals,
                &mut r.0,
            )?;
            patch(
                &mut self.text[at..at + slot.width()],
                &r.0[..r.1],
                slot.quoted(),
            );
        }
        Ok(rendered)
    }
}

fn push_slot(
    text: &mut Vec<u8>,
    slots: &mut ArrayVec<(Slot, usize), 16>,
    slot: Slot,
) -> Result<(), TemplateError> {
    slots
        .try_push((slot, text.len()))
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

fn render(
    slot: Slot,
    v: &SlotValues<'_>,
    price_decimals: u8,
    qty_decimals: u8,
    out: &mut [u8; MAX_VALUE_LEN],
) -> Result<usize, TemplateError> {
    let mut dec = [0u8; MAX_FORMATTED_LEN];
    let (bytes, len): (&[u8], usize) = match slot {
        Slot::RequestId => return Ok(write_u64(v.request_id, out)),
        Slot::OrderId => return Ok(write_u64(v.order_id, out)),
        Slot::FromId => return Ok(write_u64(v.from_id, out)),
        Slot::Timestamp => {
            let n = write_u64(v.timestamp_ms, out);
            if n > Slot::Timestamp.width() {
                return Err(TemplateError::TooLong { slot, len: n });
            }
            return Ok(n);
        }
        Slot::Price | Slot::Qty => {
            let (raw, decimals) = if slot == Slot::Price {
                (v.price.0, price_decimals)
            } else {
                (v.qty.0, qty_decimals)
            };
            if raw < 0 {
                return Err(TemplateError::Negative { slot, raw });
            }
            let n = pinion_core::decimal::write_scaled(raw, decimals, &mut dec);
            (&dec[..], n)
        }
        Slot::ClientId | Slot::OrigClientId => {
            let text = if slot == Slot::ClientId {
                v.client_id
            } else {
                v.orig_client_id
            };
            if let Some(&byte) = text
                .iter()
                .find(|&&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                return Err(TemplateError::BadClientId { slot, byte });
            }
            (text, text.len())
        }
    };
    if len > MAX_VALUE_LEN || len + 2 > slot.width() {
        return Err(TemplateError::TooLong { slot, len });
    }
    out[..len].copy_from_slice(&bytes[..len]);
    Ok(len)
}

/// Decimal digits of `v` into `out`; returns the length (at most 20).
#[inline]
fn write_u64(mut v: u64, out: &mut [u8; MAX_VALUE_LEN]) -> usize {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = digits[n - 1 - i];
    }
    n
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
    fn literal(self) -> String {
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

/// Self-trade prevention mode sent with every order (checked by the caller against the symbol's
/// `allowedSelfTradePreventionModes`).
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
        if let Some(stp) = self.stp_mode {
            params.push(Param::text("selfTradePreventionMode", stp.as_str()));
        }
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
