//! The encoder of Binance Spot's binary market data: a JSON stream message in, the SBE frame
//! Binance would have sent for it out (schema in [`crate::sbe`]). It makes recordings and
//! simulator streams in SBE from the JSON ones pinion has, for tests and benchmarks; it is not
//! on the live path.
//!
//! It works from the JSON text, not from decoded [`pinion_core::MarketEvent`]s: the text has
//! every field a frame needs (trade id, buyer-maker flag, both update ids, the event and trade
//! times) exactly as Binance sent it, while an event holds prices in the instrument's ticks
//! and would need the instrument's spec to get back to a decimal.
//!
//! | JSON message | SBE message |
//! |---|---|
//! | `trade` | `TradesStreamEvent` (10000), one trade |
//! | `bookTicker` | `BestBidAskStreamEvent` (10001) |
//! | `depth<N>` (`lastUpdateId`, `bids`, `asks`) | `DepthSnapshotStreamEvent` (10002) |
//! | `depthUpdate` (`depth`, `depth@100ms`) | `DepthDiffStreamEvent` (10003) |
//!
//! Rules:
//! - Prices and quantities are mantissas at one exponent per message for each, the same for
//!   every message of an encoder ([`Exponents`]; Binance Spot uses the full precision of its
//!   JSON decimals, 8 places, [`Exponents::BINANCE_SPOT`]). A mantissa is taken from the
//!   decimal string's digits, never through a float; a decimal that is not exact at the
//!   exponent, or whose mantissa does not fit `i64`, is [`SbeEncodeError::Decimal`].
//! - Times are microseconds: the JSON's milliseconds × 1000. `bookTicker` and partial depth
//!   carry no event time in JSON; theirs is the record's receive time (ns / 1000, truncated),
//!   as the shipped SBE capture does.
//! - The symbol is the message's `s`, else the stream name's part before `@`, upper-cased.
//! - A message either as the bare payload or inside the combined envelope
//!   `{"stream":…,"data":…}`, keys in any order.
//!
//! After its first frames an encoder reuses its buffers: encoding allocates nothing unless a
//! frame is larger than any before it (or on an error, whose report owns its text).

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::sbe::{
    LEVEL_ENTRY_LEN, MessageHeader, SCHEMA_ID, SCHEMA_VERSION, TRADE_ENTRY_LEN, Template,
};

/// The price and quantity exponents every frame of an encoder carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exponents {
    /// Power of ten of a price mantissa (−8: the mantissa counts 10⁻⁸).
    pub price: i8,
    /// Power of ten of a quantity mantissa.
    pub qty: i8,
}

impl Exponents {
    /// Binance Spot's: every symbol's prices and quantities at 8 decimal places, the
    /// precision its JSON writes them in.
    pub const BINANCE_SPOT: Exponents = Exponents { price: -8, qty: -8 };
}

/// What became of a JSON frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// A market data message, encoded: [`SbeEncoder::frame`] holds its SBE frame.
    Frame(Template),
    /// A reply to a control request (`{"result":…,"id":…}`, an `error`) or a `serverShutdown`
    /// notice: the SBE endpoint sends these as JSON text, so the frame stays as it is.
    Control,
    /// A message of a stream the SBE endpoint does not have (`aggTrade`, tickers, klines, …).
    NoSbeStream,
}

/// A JSON frame that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbeEncodeError {
    /// Not JSON, or a field of the wrong type.
    #[error("not a JSON stream message: {0}")]
    Json(String),
    /// A field the message needs is missing.
    #[error("{message} message without `{field}`")]
    Missing {
        /// The message kind.
        message: &'static str,
        /// The JSON key.
        field: &'static str,
    },
    /// A price or quantity that is not a decimal exact at the exponent, or whose mantissa
    /// does not fit 64 bits.
    #[error("`{field}` is {text:?}, which has no exact 64-bit mantissa at exponent {exponent}")]
    Decimal {
        /// The JSON key.
        field: &'static str,
        /// The decimal as written.
        text: String,
        /// The exponent asked for.
        exponent: i8,
    },
    /// An id or time past the schema's `int64`.
    #[error("`{field}` is {value}, past the schema's int64")]
    OutOfRange {
        /// The JSON key.
        field: &'static str,
        /// The value (times already in microseconds).
        value: u64,
    },
    /// More levels on a side than a `groupSize16Encoding` can count.
    #[error("{count} levels on one side, more than the schema's 65535")]
    TooManyLevels {
        /// Levels seen.
        count: usize,
    },
    /// A symbol longer than a `varString8` holds (255 bytes).
    #[error("symbol of {len} bytes, longer than 255")]
    SymbolTooLong {
        /// Its length.
        len: usize,
    },
    /// A field of the wrong JSON type for its message (a number where a decimal string goes).
    #[error("`{field}` has the wrong JSON type")]
    WrongType {
        /// The JSON key.
        field: &'static str,
    },
    /// A futures diff (it carries `pu`): not a Binance Spot message.
    #[error("a futures depth update (it has `pu`), not a Binance Spot message")]
    Futures,
}

/// Turns JSON stream messages into SBE frames. See the [module docs](self).
#[derive(Debug)]
pub struct SbeEncoder {
    exponents: Exponents,
    frame: Vec<u8>,
    bids: Vec<[i64; 2]>,
    asks: Vec<[i64; 2]>,
}

impl SbeEncoder {
    /// An encoder writing every frame at `exponents`.
    pub fn new(exponents: Exponents) -> Self {
        SbeEncoder {
            exponents,
            frame: Vec::with_capacity(4096),
            bids: Vec::new(),
            asks: Vec::new(),
        }
    }

    /// The exponents it writes.
    pub fn exponents(&self) -> Exponents {
        self.exponents
    }

    /// The frame of the last [`Encoded::Frame`] (empty before the first, or after a frame that
    /// was not encoded).
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Encodes one JSON frame received at `t_recv_ns` (ns since the epoch; the event time of
    /// messages whose JSON has none). `stream` is the stream's name when the caller knows it
    /// and the frame may not say (a raw `/ws/<name>` connection): a partial depth message
    /// names no symbol.
    pub fn encode(
        &mut self,
        json: &[u8],
        t_recv_ns: u64,
        stream: Option<&str>,
    ) -> Result<Encoded, SbeEncodeError> {
        self.frame.clear();
        self.bids.clear();
        self.asks.clear();
        let mut fields = Fields::default();
        let mut bad_decimal = None;
        let mut de = serde_json::Deserializer::from_slice(json);
        let collector = Collector {
            fields: &mut fields,
            bids: &mut self.bids,
            asks: &mut self.asks,
            exponents: self.exponents,
            bad: &mut bad_decimal,
            nested: false,
        };
        collector
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| SbeEncodeError::Json(e.to_string()))?;
        if let Some(e) = bad_decimal {
            return Err(e);
        }
        let f = &fields;
        if f.control || f.event_type() == Some("serverShutdown") {
            return Ok(Encoded::Control);
        }
        let stream = f.stream.or(stream);
        let t_recv_us = t_recv_ns / 1000;
        let encoded = match (f.e, f.event_type()) {
            (_, Some("trade")) => self.trade(f),
            (_, Some("depthUpdate")) => self.diff(f, stream),
            (Some(_), _) => return Ok(Encoded::NoSbeStream),
            (None, _) if f.last_update_id.is_some() && f.b.is_some() && f.a.is_some() => {
                self.snapshot(f, stream, t_recv_us)
            }
            (None, _) if f.u.is_some() && f.big_b.is_some() && f.big_a.is_some() => {
                self.best_bid_ask(f, stream, t_recv_us)
            }
            (None, _) => return Ok(Encoded::NoSbeStream),
        };
        if encoded.is_err() {
            self.frame.clear();
        }
        encoded.map(Encoded::Frame)
    }

    fn trade(&mut self, f: &Fields<'_>) -> Result<Template, SbeEncodeError> {
        const M: &str = "trade";
        let symbol = symbol(f, None, M)?;
        let event_time = micros(uint(f.big_e, M, "E")?, "E")?;
        let trade_time = micros(uint(f.big_t, M, "T")?, "T")?;
        let id = int64(uint(f.t, M, "t")?, "t")?;
        let price = mantissa_of(text(f.p, M, "p")?, self.exponents.price, "p")?;
        let qty = mantissa_of(text(f.q, M, "q")?, self.exponents.qty, "q")?;
        let buyer_maker = boolean(f.m, M, "m")?;
        self.start(Template::Trades);
        self.put_i64(event_time);
        self.put_i64(trade_time);
        self.put_exponents();
        self.frame.extend_from_slice(&TRADE_ENTRY_LEN.to_le_bytes());
        self.frame.extend_from_slice(&1u32.to_le_bytes());
        self.put_i64(id);
        self.put_i64(price);
        self.put_i64(qty);
        self.frame.push(u8::from(buyer_maker));
        self.put_symbol(symbol);
        Ok(Template::Trades)
    }

    fn best_bid_ask(
        &mut self,
        f: &Fields<'_>,
        stream: Option<&str>,
        t_recv_us: u64,
    ) -> Result<Template, SbeEncodeError> {
        const M: &str = "bookTicker";
        let symbol = symbol(f, stream, M)?;
        let event_time = int64(t_recv_us, "receive time")?;
        let update_id = int64(uint(f.u, M, "u")?, "u")?;
        let (pe, qe) = (self.exponents.price, self.exponents.qty);
        let bid = mantissa_of(text(f.b, M, "b")?, pe, "b")?;
        let bid_qty = mantissa_of(text(f.big_b, M, "B")?, qe, "B")?;
        let ask = mantissa_of(text(f.a, M, "a")?, pe, "a")?;
        let ask_qty = mantissa_of(text(f.big_a, M, "A")?, qe, "A")?;
        self.start(Template::BestBidAsk);
        self.put_i64(event_time);
        self.put_i64(update_id);
        self.put_exponents();
        for v in [bid, bid_qty, ask, ask_qty] {
            self.put_i64(v);
        }
        self.put_symbol(symbol);
        Ok(Template::BestBidAsk)
    }

    fn snapshot(
        &mut self,
        f: &Fields<'_>,
        stream: Option<&str>,
        t_recv_us: u64,
    ) -> Result<Template, SbeEncodeError> {
        const M: &str = "partial depth";
        let symbol = symbol(f, stream, M)?;
        let event_time = int64(t_recv_us, "receive time")?;
        let update_id = int64(uint(f.last_update_id, M, "lastUpdateId")?, "lastUpdateId")?;
        levels(f.b, M, "bids")?;
        levels(f.a, M, "asks")?;
        self.start(Template::DepthSnapshot);
        self.put_i64(event_time);
        self.put_i64(update_id);
        self.put_exponents();
        self.put_levels()?;
        self.put_symbol(symbol);
        Ok(Template::DepthSnapshot)
    }

    fn diff(&mut self, f: &Fields<'_>, stream: Option<&str>) -> Result<Template, SbeEncodeError> {
        const M: &str = "depthUpdate";
        if f.pu {
            return Err(SbeEncodeError::Futures);
        }
        let symbol = symbol(f, stream, M)?;
        let event_time = micros(uint(f.big_e, M, "E")?, "E")?;
        let first = int64(uint(f.big_u, M, "U")?, "U")?;
        let last = int64(uint(f.u, M, "u")?, "u")?;
        levels(f.b, M, "b")?;
        levels(f.a, M, "a")?;
        self.start(Template::DepthDiff);
        self.put_i64(event_time);
        self.put_i64(first);
        self.put_i64(last);
        self.put_exponents();
        self.put_levels()?;
        self.put_symbol(symbol);
        Ok(Template::DepthDiff)
    }

    fn start(&mut self, template: Template) {
        let header = MessageHeader {
            block_len: template.block_len(),
            template_id: template as u16,
            schema_id: SCHEMA_ID,
            version: SCHEMA_VERSION,
        };
        self.frame.extend_from_slice(&header.to_bytes());
    }

    fn put_i64(&mut self, v: i64) {
        self.frame.extend_from_slice(&v.to_le_bytes());
    }

    fn put_exponents(&mut self) {
        self.frame.extend_from_slice(&[
            self.exponents.price.to_le_bytes()[0],
            self.exponents.qty.to_le_bytes()[0],
        ]);
    }

    /// The bids group, then the asks group.
    fn put_levels(&mut self) -> Result<(), SbeEncodeError> {
        for side in [&self.bids, &self.asks] {
            let count = u16::try_from(side.len())
                .map_err(|_| SbeEncodeError::TooManyLevels { count: side.len() })?;
            self.frame.extend_from_slice(&LEVEL_ENTRY_LEN.to_le_bytes());
            self.frame.extend_from_slice(&count.to_le_bytes());
            for [px, qty] in side {
                self.frame.extend_from_slice(&px.to_le_bytes());
                self.frame.extend_from_slice(&qty.to_le_bytes());
            }
        }
        Ok(())
    }

    fn put_symbol(&mut self, symbol: Symbol<'_>) {
        // Checked to fit a u8 by `symbol`.
        self.frame.push(symbol.0.len() as u8);
        let start = self.frame.len();
        self.frame.extend_from_slice(symbol.0.as_bytes());
        if symbol.1 {
            self.frame[start..].make_ascii_uppercase();
        }
    }
}

/// The mantissa of the decimal `text` (`digits[.digits]`) at `exponent` (−18 to 0): the value
/// × 10^−exponent, exactly. `None` when the text is not such a decimal, has non-zero digits
/// past the exponent's places, or the mantissa does not fit `i64`.
pub fn mantissa(text: &str, exponent: i8) -> Option<i64> {
    if !(-18..=0).contains(&exponent) {
        return None;
    }
    let places = usize::from(exponent.unsigned_abs());
    let bytes = text.as_bytes();
    let (int, frac) = match bytes.iter().position(|&c| c == b'.') {
        Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        None => (bytes, &[][..]),
    };
    if int.is_empty() || (frac.is_empty() && bytes.len() != int.len()) {
        return None;
    }
    let mut m: i64 = 0;
    for &c in int {
        if !c.is_ascii_digit() {
            return None;
        }
        m = m.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    for i in 0..places {
        let d = match frac.get(i) {
            Some(c) if c.is_ascii_digit() => c - b'0',
            Some(_) => return None,
            None => 0,
        };
        m = m.checked_mul(10)?.checked_add(i64::from(d))?;
    }
    // Digits past the exponent's places must be zeros: the value is exact at it.
    frac.get(places..)
        .unwrap_or_default()
        .iter()
        .all(|&c| c == b'0')
        .then_some(m)
}

fn mantissa_of(text: &str, exponent: i8, field: &'static str) -> Result<i64, SbeEncodeError> {
    mantissa(text, exponent).ok_or_else(|| SbeEncodeError::Decimal {
        field,
        text: text.to_owned(),
        exponent,
    })
}

fn int64(v: u64, field: &'static str) -> Result<i64, SbeEncodeError> {
    i64::try_from(v).map_err(|_| SbeEncodeError::OutOfRange { field, value: v })
}

/// Milliseconds as the schema's microseconds.
fn micros(ms: u64, field: &'static str) -> Result<i64, SbeEncodeError> {
    let us = ms
        .checked_mul(1000)
        .ok_or(SbeEncodeError::OutOfRange { field, value: ms })?;
    int64(us, field)
}

/// A symbol and whether it must be upper-cased (taken from a stream name).
struct Symbol<'a>(&'a str, bool);

fn symbol<'a>(
    f: &Fields<'a>,
    stream: Option<&'a str>,
    message: &'static str,
) -> Result<Symbol<'a>, SbeEncodeError> {
    let symbol = match (f.s, stream.and_then(|s| s.split_once('@'))) {
        (Some(Scalar::Str(s)), _) => Symbol(s, false),
        (Some(_), _) => return Err(SbeEncodeError::WrongType { field: "s" }),
        (None, Some((s, _))) if !s.is_empty() => Symbol(s, true),
        _ => {
            return Err(SbeEncodeError::Missing {
                message,
                field: "s",
            });
        }
    };
    if symbol.0.len() > usize::from(u8::MAX) {
        return Err(SbeEncodeError::SymbolTooLong {
            len: symbol.0.len(),
        });
    }
    Ok(symbol)
}

/// One JSON value as the encoder keeps it: other streams reuse the keys of the four it
/// encodes with other types, so a key's type is checked only once the message is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar<'a> {
    /// A string without escapes.
    Str(&'a str),
    /// A non-negative integer that fits `u64`.
    Uint(u64),
    /// `true` or `false`.
    Bool(bool),
    /// An array of `[price, qty]` levels, read into a level buffer.
    Levels,
    /// Anything else (another number, an object, `null`, an array of other things).
    Other,
}

/// The fields of a message (and of its envelope) the encoder reads, by JSON key.
#[derive(Debug, Default)]
struct Fields<'a> {
    /// The envelope's `stream`.
    stream: Option<&'a str>,
    e: Option<Scalar<'a>>,
    big_e: Option<Scalar<'a>>,
    s: Option<Scalar<'a>>,
    t: Option<Scalar<'a>>,
    p: Option<Scalar<'a>>,
    q: Option<Scalar<'a>>,
    big_t: Option<Scalar<'a>>,
    m: Option<Scalar<'a>>,
    big_u: Option<Scalar<'a>>,
    u: Option<Scalar<'a>>,
    /// `pu` is present.
    pu: bool,
    b: Option<Scalar<'a>>,
    big_b: Option<Scalar<'a>>,
    a: Option<Scalar<'a>>,
    big_a: Option<Scalar<'a>>,
    last_update_id: Option<Scalar<'a>>,
    /// `result` or `error` at the top: a control reply.
    control: bool,
}

impl<'a> Fields<'a> {
    fn event_type(&self) -> Option<&'a str> {
        match self.e {
            Some(Scalar::Str(e)) => Some(e),
            _ => None,
        }
    }
}

/// A field's value as a string, for `message`.
fn text<'a>(
    v: Option<Scalar<'a>>,
    message: &'static str,
    field: &'static str,
) -> Result<&'a str, SbeEncodeError> {
    match v {
        Some(Scalar::Str(s)) => Ok(s),
        None => Err(SbeEncodeError::Missing { message, field }),
        Some(_) => Err(SbeEncodeError::WrongType { field }),
    }
}

/// A field's value as an unsigned integer.
fn uint(
    v: Option<Scalar<'_>>,
    message: &'static str,
    field: &'static str,
) -> Result<u64, SbeEncodeError> {
    match v {
        Some(Scalar::Uint(n)) => Ok(n),
        None => Err(SbeEncodeError::Missing { message, field }),
        Some(_) => Err(SbeEncodeError::WrongType { field }),
    }
}

/// A field's value as a boolean.
fn boolean(
    v: Option<Scalar<'_>>,
    message: &'static str,
    field: &'static str,
) -> Result<bool, SbeEncodeError> {
    match v {
        Some(Scalar::Bool(b)) => Ok(b),
        None => Err(SbeEncodeError::Missing { message, field }),
        Some(_) => Err(SbeEncodeError::WrongType { field }),
    }
}

/// Whether a field holds levels (read into the level buffer).
fn levels(
    v: Option<Scalar<'_>>,
    message: &'static str,
    field: &'static str,
) -> Result<(), SbeEncodeError> {
    match v {
        Some(Scalar::Levels) => Ok(()),
        None => Err(SbeEncodeError::Missing { message, field }),
        Some(_) => Err(SbeEncodeError::WrongType { field }),
    }
}

/// Reads a message object (or the envelope around one) into [`Fields`] and the level buffers.
struct Collector<'s, 'a> {
    fields: &'s mut Fields<'a>,
    bids: &'s mut Vec<[i64; 2]>,
    asks: &'s mut Vec<[i64; 2]>,
    exponents: Exponents,
    /// The first price or quantity that had no mantissa (reported after the parse, typed).
    bad: &'s mut Option<SbeEncodeError>,
    /// Inside the envelope's `data`.
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for Collector<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Collector<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let Collector {
            fields: f,
            bids,
            asks,
            exponents,
            bad,
            nested,
        } = self;
        while let Some(key) = map.next_key::<&'de str>()? {
            let slot = match key {
                "stream" if !nested => {
                    f.stream = match map.next_value_seed(AnyValue { levels: None })? {
                        Scalar::Str(s) => Some(s),
                        _ => None,
                    };
                    continue;
                }
                "data" if !nested => {
                    map.next_value_seed(Collector {
                        fields: &mut *f,
                        bids: &mut *bids,
                        asks: &mut *asks,
                        exponents,
                        bad: &mut *bad,
                        nested: true,
                    })?;
                    continue;
                }
                "result" | "error" if !nested => {
                    f.control = true;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                "pu" => {
                    f.pu = true;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                "b" | "bids" | "a" | "asks" => {
                    let bid_side = key.starts_with('b');
                    let out = if bid_side { &mut *bids } else { &mut *asks };
                    out.clear();
                    let value = map.next_value_seed(AnyValue {
                        levels: Some(LevelSink {
                            out,
                            exponents,
                            bad: &mut *bad,
                            field: if bid_side { "b" } else { "a" },
                        }),
                    })?;
                    if bid_side {
                        f.b = Some(value);
                    } else {
                        f.a = Some(value);
                    }
                    continue;
                }
                "e" => &mut f.e,
                "E" => &mut f.big_e,
                "s" => &mut f.s,
                "t" => &mut f.t,
                "p" => &mut f.p,
                "q" => &mut f.q,
                "T" => &mut f.big_t,
                "m" => &mut f.m,
                "U" => &mut f.big_u,
                "u" => &mut f.u,
                "B" => &mut f.big_b,
                "A" => &mut f.big_a,
                "lastUpdateId" => &mut f.last_update_id,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value_seed(AnyValue { levels: None })?);
        }
        Ok(())
    }
}

/// Where an array of levels goes.
struct LevelSink<'s> {
    out: &'s mut Vec<[i64; 2]>,
    exponents: Exponents,
    bad: &'s mut Option<SbeEncodeError>,
    field: &'static str,
}

/// Any JSON value, kept as a [`Scalar`]; an array is read as levels when there is a sink for
/// them.
struct AnyValue<'s> {
    levels: Option<LevelSink<'s>>,
}

impl<'de> DeserializeSeed<'de> for AnyValue<'_> {
    type Value = Scalar<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue<'_> {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        // A string with escapes: never a field the encoder needs.
        Ok(Scalar::Other)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Uint(v))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let Some(sink) = self.levels else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Scalar::Other);
        };
        let mut all_levels = true;
        while let Some(level) = seq.next_element_seed(AnyLevel)? {
            let Some((px, qty)) = level else {
                all_levels = false;
                continue;
            };
            if sink.bad.is_some() || !all_levels {
                continue;
            }
            match (
                mantissa(px, sink.exponents.price),
                mantissa(qty, sink.exponents.qty),
            ) {
                (Some(p), Some(q)) => sink.out.push([p, q]),
                (None, _) => {
                    *sink.bad = Some(SbeEncodeError::Decimal {
                        field: sink.field,
                        text: px.to_owned(),
                        exponent: sink.exponents.price,
                    });
                }
                (_, None) => {
                    *sink.bad = Some(SbeEncodeError::Decimal {
                        field: sink.field,
                        text: qty.to_owned(),
                        exponent: sink.exponents.qty,
                    });
                }
            }
        }
        Ok(if all_levels {
            Scalar::Levels
        } else {
            Scalar::Other
        })
    }
}

/// One element of a level array: `[price, qty]` strings, or `None` for anything else.
struct AnyLevel;

impl<'de> DeserializeSeed<'de> for AnyLevel {
    type Value = Option<(&'de str, &'de str)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyLevel {
    type Value = Option<(&'de str, &'de str)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a [price, quantity] level")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let px = seq.next_element_seed(AnyValue { levels: None })?;
        let qty = seq.next_element_seed(AnyValue { levels: None })?;
        let mut extra = false;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            extra = true;
        }
        Ok(match (px, qty, extra) {
            (Some(Scalar::Str(p)), Some(Scalar::Str(q)), false) => Some((p, q)),
            _ => None,
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The fuzz target's entry point (`fuzz/fuzz_targets/sbe_encode.rs`), also driven on stable
/// by the unit tests.
pub mod fuzzing {
    use super::{Encoded, Exponents, SbeEncoder};
    use crate::sbe::{StreamMessage, read};

    /// Encodes arbitrary bytes as a JSON frame received at `t_recv_ns` and checks the
    /// encoder's promises: no panic; a frame only for [`Encoded::Frame`], and then one the
    /// schema's reader reads back whole as that template, at the encoder's exponents, with a
    /// non-empty symbol.
    pub fn encode_input(data: &[u8], t_recv_ns: u64) {
        let mut encoder = SbeEncoder::new(Exponents::BINANCE_SPOT);
        let outcome = encoder.encode(data, t_recv_ns, Some("fuzzusdt@depth20@100ms"));
        let frame = encoder.frame();
        let Ok(Encoded::Frame(template)) = outcome else {
            assert!(frame.is_empty(), "a frame left behind by {outcome:?}");
            return;
        };
        let message = match read(frame) {
            Ok(m) => m,
            Err(e) => panic!("the encoder wrote a frame the reader refuses: {e}"),
        };
        let read_template = match message {
            StreamMessage::Trades(_) => crate::sbe::Template::Trades,
            StreamMessage::BestBidAsk(_) => crate::sbe::Template::BestBidAsk,
            StreamMessage::DepthSnapshot(_) => crate::sbe::Template::DepthSnapshot,
            StreamMessage::DepthDiff(_) => crate::sbe::Template::DepthDiff,
        };
        assert_eq!(read_template, template, "the template written");
        assert_eq!(message.exponents(), (-8, -8), "the exponents written");
        assert!(!message.symbol().is_empty(), "a frame without a symbol");
    }
}

#[cfg(test)]
mod tests;
