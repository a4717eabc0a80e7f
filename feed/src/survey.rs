//! A first pass over a recording, before it is replayed: what each connection is and what each
//! instrument's numbers look like, learnt from the content rather than from the file's name.
//!
//! [`survey`] reads every record once and finds, per connection:
//!
//! - the **venue**: from the connection's URL (the host tells Binance's global exchange from
//!   Binance.US, TR and the test networks; the path tells the market), else from the messages'
//!   shape — a binary message of Binance's SBE stream schema is Spot's (no other market has
//!   one); a Bybit `topic`; a Binance depth update with `pu`, a `bookTicker` with an event
//!   type, or a COIN-M symbol (`BTCUSD_PERP`, `ETHUSD_240927`) mean futures; otherwise Spot. A
//!   venue the source gives (a `.pnr` header, a file-name hint) is used for the host when the
//!   shape agrees with its market, and overruled (with a note) when it does not.
//! - the **symbol of payloads that name none** (an hbt file's REST snapshot body, a raw
//!   `/ws/<stream>` socket): the only depth stream's symbol on that connection.
//!
//! and per instrument (venue and symbol), from every price and quantity it carries (depth
//! levels, snapshots, book tickers, trades, klines and 24-hour tickers): the most decimals a price and a quantity use, and
//! the grid of its prices (their greatest common divisor), which is its tick or a fraction of it.
//! The engine uses these to define instruments nobody configured, and to check the specs it was
//! given against the data.
//!
//! The pass runs at start-up, off the hot path, and parses with `serde_json`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::SourceError;
use crate::sbe;
use crate::source::FrameSource;
use pinion_core::{InstrumentSpec, RecordKind, Symbol, Venue};

/// Decimals the survey keeps prices and quantities at: every venue's precision fits.
pub const SURVEY_DECIMALS: u8 = 18;

/// What the numbers of one instrument look like in a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NumberShape {
    /// The most significant decimals any price has (trailing zeros do not count).
    pub price_decimals: u8,
    /// The most significant decimals any quantity has.
    pub qty_decimals: u8,
    /// The greatest common divisor of every positive price, in units of
    /// `10^-`[`SURVEY_DECIMALS`]; 0 when no price was seen.
    pub price_grid: u128,
    /// Prices seen.
    pub prices: u64,
}

impl NumberShape {
    fn price(&mut self, text: &str) {
        if let Some((units, decimals)) = scaled(text) {
            self.price_units(units, decimals);
        }
    }

    fn price_units(&mut self, units: u128, decimals: u8) {
        self.price_decimals = self.price_decimals.max(decimals);
        if units > 0 {
            self.price_grid = gcd(self.price_grid, units);
            self.prices += 1;
        }
    }

    fn qty(&mut self, text: &str) {
        if let Some((_, decimals)) = scaled(text) {
            self.qty_decimals = self.qty_decimals.max(decimals);
        }
    }

    /// A binary message's price: `mantissa × 10^exponent`.
    fn price_mantissa(&mut self, mantissa: i64, exponent: i8) {
        if let Some((units, decimals)) = mantissa_units(mantissa, exponent) {
            self.price_units(units, decimals);
        }
    }

    /// A binary message's quantity.
    fn qty_mantissa(&mut self, mantissa: i64, exponent: i8) {
        if let Some((_, decimals)) = mantissa_units(mantissa, exponent) {
            self.qty_decimals = self.qty_decimals.max(decimals);
        }
    }

    fn merge(&mut self, other: &NumberShape) {
        self.price_decimals = self.price_decimals.max(other.price_decimals);
        self.qty_decimals = self.qty_decimals.max(other.qty_decimals);
        self.price_grid = gcd(self.price_grid, other.price_grid);
        self.prices += other.prices;
    }

    /// The price grid in units of `10^-decimals`, when it is a whole number of them.
    pub fn grid_in(&self, decimals: u8) -> Option<i64> {
        if self.price_grid == 0 || decimals > SURVEY_DECIMALS {
            return None;
        }
        let unit = 10u128.pow(u32::from(SURVEY_DECIMALS - decimals));
        self.price_grid
            .is_multiple_of(unit)
            .then(|| i64::try_from(self.price_grid / unit).ok())
            .flatten()
    }
}

/// What one instrument's messages held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstrumentSurvey {
    /// Its prices and quantities.
    pub numbers: NumberShape,
    /// Depth messages (diffs and stream snapshots).
    pub depth_messages: u64,
    /// REST depth snapshots.
    pub snapshots: u64,
    /// Book tickers and trades.
    pub other_messages: u64,
    /// Klines and 24-hour tickers.
    pub candle_messages: u64,
}

impl InstrumentSurvey {
    fn merge(&mut self, other: &InstrumentSurvey) {
        self.numbers.merge(&other.numbers);
        self.depth_messages += other.depth_messages;
        self.snapshots += other.snapshots;
        self.other_messages += other.other_messages;
        self.candle_messages += other.candle_messages;
    }
}

/// How a connection's venue was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueEvidence {
    /// The connection's URL names the host and market.
    Url,
    /// The source named it (a recording's header, a file-name hint), and the messages agree.
    Source,
    /// The messages' shape (the host is taken as the exchange's global one).
    Shape,
    /// The source named one market, the messages show another: the messages win.
    ShapeOverruledSource(Venue),
    /// Nothing says: the caller's fallback applies.
    Unknown,
}

/// What the survey found about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSurvey {
    /// The venue, when anything tells it.
    pub venue: Option<Venue>,
    /// How it was decided.
    pub evidence: VenueEvidence,
    /// The symbols of its depth streams, in order of first appearance.
    pub depth_symbols: Vec<Symbol>,
    /// The symbol of payloads that name none: its only depth stream's.
    pub default_symbol: Option<Symbol>,
    /// Records on it.
    pub records: u64,
    /// Stream frames on it.
    pub frames: u64,
}

/// The outcome of [`survey`].
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// Records read (bad ones included).
    pub records: u64,
    /// Records the source could not read.
    pub bad_records: u64,
    /// The first of those errors, as text.
    pub first_error: Option<String>,
    /// Stream frames, on every connection.
    pub frames: u64,
    /// Frames that are neither JSON nor a well-formed message of Binance's SBE stream schema
    /// (compressed payloads, other binary encodings, damaged SBE).
    pub binary_frames: u64,
    /// JSON frames that are no market message the survey knows (control replies, mark prices,
    /// liquidations, other venues' streams).
    pub other_frames: u64,
    /// Per connection, indexed by [`pinion_core::ConnId`].
    pub conns: Vec<ConnSurvey>,
    /// Per instrument the messages name, on its connection's venue.
    pub instruments: BTreeMap<(Venue, Symbol), InstrumentSurvey>,
    /// Instrument specs from REST instrument lists in the recording (Binance `exchangeInfo`,
    /// Bybit `instruments-info`), on the venue of their URL.
    pub listed: Vec<InstrumentSpec>,
    /// Instrument lists in the recording that could not be read, with why.
    pub unreadable_lists: Vec<String>,
}

/// Shape evidence gathered on one connection while reading.
#[derive(Debug, Default)]
struct ConnAcc {
    bybit: u64,
    binance: u64,
    futures: u64,
    coinm: u64,
    /// Bybit derivative-only features (a trade's tick direction, a 500-level book).
    bybit_derivative: u64,
    bybit_inverse_symbols: u64,
    bybit_symbols: u64,
    /// Binance depth without `pu`, book tickers without an event type: Spot's shapes.
    spot_signs: u64,
    depth_symbols: Vec<Symbol>,
    /// Per symbol (`None`: payloads naming none).
    per_symbol: BTreeMap<Option<Symbol>, InstrumentSurvey>,
    records: u64,
    frames: u64,
}

/// Reads `source` to its end and reports what it holds (see the module docs). Records the
/// source cannot read are counted and passed over, as the replay itself does; an error of the
/// stream (a truncated file) ends the pass.
pub fn survey(source: &mut dyn FrameSource) -> Survey {
    let mut out = Survey::default();
    let mut accs: Vec<ConnAcc> = Vec::new();
    let mut sources: Vec<(Option<Venue>, String)> = Vec::new();
    loop {
        let rec = match source.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                out.records += 1;
                out.bad_records += 1;
                let stream_error = matches!(e, SourceError::Io(_) | SourceError::Truncated { .. });
                if out.first_error.is_none() {
                    out.first_error = Some(e.to_string());
                }
                if stream_error {
                    break;
                }
                continue;
            }
        };
        out.records += 1;
        let i = usize::from(rec.conn.0);
        if accs.len() <= i {
            accs.resize_with(i + 1, ConnAcc::default);
        }
        let acc = &mut accs[i];
        acc.records += 1;
        match rec.kind {
            RecordKind::Frame => {
                acc.frames += 1;
                out.frames += 1;
                match frame(acc, rec.payload) {
                    FrameKind::Market => {}
                    FrameKind::Binary => out.binary_frames += 1,
                    FrameKind::Other => out.other_frames += 1,
                }
            }
            RecordKind::RestSnapshot => snapshot(acc, rec.meta, rec.payload),
            RecordKind::Http => {
                instrument_list(&mut out, rec.meta, rec.payload);
            }
            RecordKind::Connect | RecordKind::Disconnect | RecordKind::Gap => {}
        }
    }
    for info in source.connections() {
        let i = usize::from(info.id.0);
        if sources.len() <= i {
            sources.resize(i + 1, (None, String::new()));
        }
        sources[i] = (info.venue, info.url.clone());
    }
    if accs.len() < sources.len() {
        accs.resize_with(sources.len(), ConnAcc::default);
    }
    for (i, acc) in accs.into_iter().enumerate() {
        let (named, url) = sources.get(i).cloned().unwrap_or((None, String::new()));
        let (venue, evidence) = decide_venue(&acc, named, &url);
        let default_symbol = match acc.depth_symbols.as_slice() {
            [only] => Some(*only),
            _ => symbol_in_url(&url),
        };
        if let Some(v) = venue {
            for (sym, s) in &acc.per_symbol {
                let Some(sym) = sym.or(default_symbol) else {
                    continue;
                };
                out.instruments.entry((v, sym)).or_default().merge(s);
            }
        }
        out.conns.push(ConnSurvey {
            venue,
            evidence,
            depth_symbols: acc.depth_symbols,
            default_symbol,
            records: acc.records,
            frames: acc.frames,
        });
    }
    out
}

/// The venue of a connection from its URL, the source's word and the messages' shape.
fn decide_venue(acc: &ConnAcc, named: Option<Venue>, url: &str) -> (Option<Venue>, VenueEvidence) {
    let shape = shape_market(acc);
    if let Some(v) = Venue::from_url(url) {
        // The URL names the host. Its market yields only to messages that clearly show another
        // of the same exchange's markets (a relay's own URL).
        return match shape {
            Some((m, true)) if m.is_binance() && v.is_binance() && m != v.market() => {
                (Some(m.on_host_of(v)), VenueEvidence::Shape)
            }
            _ => (Some(v), VenueEvidence::Url),
        };
    }
    match (named, shape) {
        (Some(n), Some((m, certain))) if n.market() != m && certain => {
            let v = if n.is_binance() && m.is_binance() {
                m.on_host_of(n)
            } else {
                m
            };
            (Some(v), VenueEvidence::ShapeOverruledSource(n))
        }
        (Some(n), _) => (Some(n), VenueEvidence::Source),
        (None, Some((m, _))) => (Some(m), VenueEvidence::Shape),
        (None, None) => (None, VenueEvidence::Unknown),
    }
}

/// The market the messages of a connection show, if any, and whether they show it beyond
/// doubt (Bybit's spot and linear streams share every shape but a few fields).
fn shape_market(acc: &ConnAcc) -> Option<(Venue, bool)> {
    if acc.bybit > 0 && acc.bybit >= acc.binance {
        let inverse = acc.bybit_symbols > 0 && acc.bybit_inverse_symbols == acc.bybit_symbols;
        return Some(if inverse {
            (Venue::BybitInverse, true)
        } else if acc.bybit_derivative > 0 {
            (Venue::BybitLinear, true)
        } else {
            // Neither a derivative's field nor an inverse symbol: spot or linear. Taken as
            // linear, the market most recordings are of, unless the source says spot.
            (Venue::BybitLinear, false)
        });
    }
    if acc.binance == 0 {
        return None;
    }
    Some(if acc.coinm > 0 {
        (Venue::BinanceCoinm, true)
    } else if acc.futures > 0 {
        (Venue::BinanceUsdm, true)
    } else {
        // Depth without `pu` or a book ticker without an event type is Spot's; trades alone
        // look the same on every market.
        (Venue::BinanceSpot, acc.spot_signs > 0)
    })
}

/// A symbol as the registry keys it: upper case, if it fits.
fn symbol(text: &str) -> Option<Symbol> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        return None;
    }
    Symbol::from(&text.to_ascii_uppercase()).ok()
}

/// Whether a Binance symbol is a COIN-M contract's (`BTCUSD_PERP`, `ETHUSD_240927`).
fn is_coinm_symbol(s: &str) -> bool {
    match s.rsplit_once('_') {
        Some((base, tail)) => {
            base.ends_with("USD")
                && (tail.eq_ignore_ascii_case("PERP")
                    || (tail.len() == 6 && tail.bytes().all(|c| c.is_ascii_digit())))
        }
        None => false,
    }
}

/// Whether a Bybit symbol is an inverse contract's: quoted in USD (`BTCUSD`), or an inverse
/// future (`BTCUSDH25`).
fn is_bybit_inverse_symbol(s: &str) -> bool {
    if s.ends_with("USD") {
        return true;
    }
    let b = s.as_bytes();
    b.len() > 6
        && s[..b.len() - 3].ends_with("USD")
        && b"FGHJKMNQUVXZ".contains(&b[b.len() - 3])
        && b[b.len() - 2..].iter().all(u8::is_ascii_digit)
}

/// A price or quantity string as units of `10^-SURVEY_DECIMALS`, with the decimals it uses.
/// `None` for anything but a plain non-negative decimal that fits.
fn scaled(text: &str) -> Option<(u128, u8)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let decimals = u8::try_from(frac.len()).ok()?;
    if decimals > SURVEY_DECIMALS {
        return None;
    }
    let mut units: u128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        units = units.checked_mul(10)?.checked_add(u128::from(c - b'0'))?;
    }
    let units = units.checked_mul(10u128.pow(u32::from(SURVEY_DECIMALS - decimals)))?;
    Some((units, decimals))
}

/// A binary message's `mantissa × 10^exponent` as units of `10^-SURVEY_DECIMALS`, with the
/// decimals it uses; `None` for a negative value or one that does not fit.
fn mantissa_units(mantissa: i64, exponent: i8) -> Option<(u128, u8)> {
    let m = u128::try_from(mantissa).ok()?;
    let decimals = sbe::decimals_needed(mantissa, exponent);
    if decimals > SURVEY_DECIMALS {
        return None;
    }
    let shift = i32::from(SURVEY_DECIMALS) + i32::from(exponent);
    let units = if shift >= 0 {
        m.checked_mul(10u128.checked_pow(shift.unsigned_abs())?)?
    } else {
        // The decimals fit, so the digits below the survey's scale are zeros.
        m / 10u128.checked_pow(shift.unsigned_abs())?
    };
    Some((units, decimals))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A number field as text: venues send prices as strings, a few fields as JSON numbers.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[[price, qty, …], …]` levels into `s`.
fn levels(s: &mut InstrumentSurvey, v: Option<&Value>) {
    let Some(Value::Array(rows)) = v else {
        return;
    };
    for row in rows {
        if let Value::Array(cells) = row {
            if let Some(p) = cells.first().and_then(text) {
                s.numbers.price(&p);
            }
            if let Some(q) = cells.get(1).and_then(text) {
                s.numbers.qty(&q);
            }
        }
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.get(key))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    field(v, key).and_then(Value::as_str)
}

/// What a frame turned out to be.
enum FrameKind {
    Market,
    Binary,
    Other,
}

/// One stream frame: a Binance message (combined envelope or raw) or a Bybit one.
fn frame(acc: &mut ConnAcc, payload: &[u8]) -> FrameKind {
    if sbe::is_stream_message(payload) {
        return sbe_frame(acc, payload);
    }
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        let text = payload
            .iter()
            .all(|&c| c >= 0x20 || c.is_ascii_whitespace());
        return if text {
            FrameKind::Other
        } else {
            FrameKind::Binary
        };
    };
    if let Some(topic) = str_field(&v, "topic") {
        return if bybit_frame(acc, topic, &v) {
            FrameKind::Market
        } else {
            FrameKind::Other
        };
    }
    let (stream, data) = match (str_field(&v, "stream"), field(&v, "data")) {
        (Some(s), Some(d)) => (Some(s), d),
        _ => (None, &v),
    };
    // Arrays of events (`!ticker@arr`) and control replies carry nothing to learn from.
    if !data.is_object() {
        return FrameKind::Other;
    }
    let event = str_field(data, "e");
    let sym = str_field(data, "s")
        .or_else(|| stream.and_then(|s| s.split('@').next()))
        .and_then(symbol);
    let is_depth = event == Some("depthUpdate")
        || (event.is_none() && field(data, "lastUpdateId").is_some())
        || stream.is_some_and(|s| s.contains("@depth"));
    let is_ticker = event == Some("bookTicker")
        || (event.is_none() && field(data, "b").is_some() && field(data, "B").is_some());
    let is_trade = matches!(event, Some("trade" | "aggTrade"));
    let is_candle = matches!(event, Some("kline" | "24hrTicker" | "24hrMiniTicker"));
    if is_candle {
        // Klines and 24 h tickers: Spot and futures send the same shapes, so they tell the
        // venue nothing; their prices and volumes are the instrument's all the same.
        acc.binance += 1;
        if sym.is_some_and(|s| is_coinm_symbol(&s)) {
            acc.coinm += 1;
        }
        let s = acc.per_symbol.entry(sym).or_default();
        s.candle_messages += 1;
        let body = field(data, "k").unwrap_or(data);
        candle_numbers(s, body, &["o", "h", "l", "c"], &["v"]);
        return FrameKind::Market;
    }
    if !(is_depth || is_ticker || is_trade) {
        return FrameKind::Other;
    }
    acc.binance += 1;
    if field(data, "pu").is_some() || event == Some("bookTicker") {
        acc.futures += 1;
    } else if (is_depth && event == Some("depthUpdate")) || (is_ticker && event.is_none()) {
        acc.spot_signs += 1;
    }
    if sym.is_some_and(|s| is_coinm_symbol(&s)) {
        acc.coinm += 1;
    }
    if is_depth {
        // A raw partial-depth socket names no symbol: its URL does.
        if let Some(s) = sym
            && !acc.depth_symbols.contains(&s)
        {
            acc.depth_symbols.push(s);
        }
    }
    let s = acc.per_symbol.entry(sym).or_default();
    if is_depth {
        s.depth_messages += 1;
        levels(s, field(data, "b").or_else(|| field(data, "bids")));
        levels(s, field(data, "a").or_else(|| field(data, "asks")));
    } else if is_ticker {
        s.other_messages += 1;
        for (p, q) in [("b", "B"), ("a", "A")] {
            if let Some(p) = field(data, p).and_then(text) {
                s.numbers.price(&p);
            }
            if let Some(q) = field(data, q).and_then(text) {
                s.numbers.qty(&q);
            }
        }
    } else {
        s.other_messages += 1;
        if let Some(p) = field(data, "p").and_then(text) {
            s.numbers.price(&p);
        }
        if let Some(q) = field(data, "q").and_then(text) {
            s.numbers.qty(&q);
        }
    }
    FrameKind::Market
}

/// A binary frame of Binance Spot's SBE stream schema (only Spot has one).
fn sbe_frame(acc: &mut ConnAcc, payload: &[u8]) -> FrameKind {
    let Ok(msg) = sbe::read(payload) else {
        return FrameKind::Binary;
    };
    let Some(sym) = std::str::from_utf8(msg.symbol()).ok().and_then(symbol) else {
        return FrameKind::Other;
    };
    acc.binance += 1;
    acc.spot_signs += 1;
    let (pe, qe) = msg.exponents();
    let depth = matches!(
        msg,
        sbe::StreamMessage::DepthDiff(_) | sbe::StreamMessage::DepthSnapshot(_)
    );
    if depth && !acc.depth_symbols.contains(&sym) {
        acc.depth_symbols.push(sym);
    }
    let s = acc.per_symbol.entry(Some(sym)).or_default();
    match msg {
        sbe::StreamMessage::Trades(t) => {
            s.other_messages += 1;
            for e in t.trades.trades() {
                s.numbers.price_mantissa(e.price, pe);
                s.numbers.qty_mantissa(e.qty, qe);
            }
        }
        sbe::StreamMessage::BestBidAsk(b) => {
            s.other_messages += 1;
            for (p, q) in [(b.bid_price, b.bid_qty), (b.ask_price, b.ask_qty)] {
                s.numbers.price_mantissa(p, pe);
                s.numbers.qty_mantissa(q, qe);
            }
        }
        sbe::StreamMessage::DepthSnapshot(d) | sbe::StreamMessage::DepthDiff(d) => {
            s.depth_messages += 1;
            for (p, q) in d.bids.levels().chain(d.asks.levels()) {
                s.numbers.price_mantissa(p, pe);
                s.numbers.qty_mantissa(q, qe);
            }
        }
    }
    FrameKind::Market
}

/// A Bybit frame; whether it was a market message.
fn bybit_frame(acc: &mut ConnAcc, topic: &str, v: &Value) -> bool {
    let mut parts = topic.split('.');
    let kind = parts.next().unwrap_or("");
    let data = field(v, "data");
    match kind {
        "orderbook" => {
            let depth = parts.next().unwrap_or("");
            let Some(data) = data else { return false };
            let Some(sym) = str_field(data, "s")
                .or_else(|| topic.rsplit('.').next())
                .and_then(symbol)
            else {
                return false;
            };
            acc.bybit += 1;
            // Bybit's spot books have no 500-level stream; its derivatives' do.
            if depth == "500" {
                acc.bybit_derivative += 1;
            }
            bybit_symbol(acc, &sym);
            if !acc.depth_symbols.contains(&sym) {
                acc.depth_symbols.push(sym);
            }
            let s = acc.per_symbol.entry(Some(sym)).or_default();
            s.depth_messages += 1;
            levels(s, field(data, "b"));
            levels(s, field(data, "a"));
        }
        "publicTrade" => {
            let Some(Value::Array(trades)) = data else {
                return false;
            };
            acc.bybit += 1;
            for t in trades {
                let Some(sym) = str_field(t, "s").and_then(symbol) else {
                    continue;
                };
                // The tick direction is sent for perpetuals and futures only.
                if field(t, "L").is_some() {
                    acc.bybit_derivative += 1;
                }
                bybit_symbol(acc, &sym);
                let s = acc.per_symbol.entry(Some(sym)).or_default();
                s.other_messages += 1;
                if let Some(p) = field(t, "p").and_then(text) {
                    s.numbers.price(&p);
                }
                if let Some(q) = field(t, "v").and_then(text) {
                    s.numbers.qty(&q);
                }
            }
        }
        "tickers" => {
            acc.bybit += 1;
            if data.is_some_and(|d| field(d, "fundingRate").is_some()) {
                acc.bybit_derivative += 1;
            }
            let (Some(data), Some(sym)) = (data, topic.rsplit('.').next().and_then(symbol)) else {
                return true;
            };
            let s = acc.per_symbol.entry(Some(sym)).or_default();
            s.candle_messages += 1;
            candle_numbers(
                s,
                data,
                &["lastPrice", "prevPrice24h", "highPrice24h", "lowPrice24h"],
                &["volume24h"],
            );
        }
        "kline" => {
            let (Some(Value::Array(candles)), Some(sym)) =
                (data, topic.rsplit('.').next().and_then(symbol))
            else {
                return false;
            };
            acc.bybit += 1;
            bybit_symbol(acc, &sym);
            let s = acc.per_symbol.entry(Some(sym)).or_default();
            s.candle_messages += 1;
            for c in candles {
                candle_numbers(s, c, &["open", "high", "low", "close"], &["volume"]);
            }
        }
        _ => return false,
    }
    true
}

/// The prices and quantities of a kline or a 24 h ticker, by field name.
fn candle_numbers(s: &mut InstrumentSurvey, v: &Value, prices: &[&str], qtys: &[&str]) {
    for p in prices.iter().filter_map(|k| field(v, k).and_then(text)) {
        s.numbers.price(&p);
    }
    for q in qtys.iter().filter_map(|k| field(v, k).and_then(text)) {
        s.numbers.qty(&q);
    }
}

fn bybit_symbol(acc: &mut ConnAcc, sym: &str) {
    acc.bybit_symbols += 1;
    if is_bybit_inverse_symbol(sym) {
        acc.bybit_inverse_symbols += 1;
    }
}

/// A REST depth snapshot: its symbol from the request URL when there is one.
fn snapshot(acc: &mut ConnAcc, meta: &[u8], payload: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let url = String::from_utf8_lossy(meta);
    let (body, bybit) = match field(&v, "result") {
        Some(r) => (r, true),
        None => (&v, false),
    };
    let sym = symbol_in_url(&url).or_else(|| str_field(body, "s").and_then(symbol));
    if bybit {
        acc.bybit += 1;
    } else if field(body, "lastUpdateId").is_some() {
        acc.binance += 1;
        // Futures snapshots carry the message and transaction times; Spot's do not.
        if field(body, "E").is_some() || field(body, "T").is_some() {
            acc.futures += 1;
        }
    } else {
        return;
    }
    let s = acc.per_symbol.entry(sym).or_default();
    s.snapshots += 1;
    levels(s, field(body, "bids").or_else(|| field(body, "b")));
    levels(s, field(body, "asks").or_else(|| field(body, "a")));
}

/// The `symbol=` query parameter of a URL.
pub fn symbol_in_url(url: &str) -> Option<Symbol> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .and_then(symbol)
}

/// A REST response that lists instruments.
fn instrument_list(out: &mut Survey, meta: &[u8], payload: &[u8]) {
    let url = String::from_utf8_lossy(meta);
    let Some(venue) = Venue::from_url(&url) else {
        return;
    };
    let specs = if url.contains("exchangeInfo") && venue.is_binance() {
        crate::exchange_info::binance_exchange_info(payload, venue)
    } else if url.contains("instruments-info") && venue.is_bybit() {
        crate::exchange_info::bybit_instruments_info(payload, venue)
    } else {
        return;
    };
    match specs {
        Ok(specs) => out.listed.extend(specs),
        Err(e) => out.unreadable_lists.push(format!("{url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_grid_come_from_the_digits() {
        assert_eq!(
            scaled("61685.99000000"),
            Some((61_685_990_000_000_000_000_000, 2))
        );
        assert_eq!(scaled("0.00100000").map(|x| x.1), Some(3));
        assert_eq!(scaled("12"), Some((12 * 10u128.pow(18), 0)));
        assert_eq!(scaled("-1"), None);
        assert_eq!(scaled("1e5"), None);
        let mut n = NumberShape::default();
        for p in ["100.10", "100.25", "99.95"] {
            n.price(p);
        }
        assert_eq!(n.price_decimals, 2);
        assert_eq!(n.grid_in(2), Some(5));
        assert_eq!(n.grid_in(1), None);
        assert_eq!(n.grid_in(3), Some(50));
    }

    /// Lines in the shapes the survey reads, each cut and bit-flipped everywhere: the survey
    /// never panics and always counts every record.
    #[test]
    fn damaged_messages_are_passed_over() {
        let lines = [
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1.5","2"]],"a":[["1.6","0"]]}}"#,
            r#"{"lastUpdateId":5,"E":1,"T":1,"bids":[["1.5","2"],[1.4,3]],"asks":[]}"#,
            r#"{"u":3,"s":"BTCUSD_PERP","b":"1.5","B":"1","a":"1.6","A":"2"}"#,
            r#"{"topic":"orderbook.500.BTCUSD","type":"snapshot","data":{"s":"BTCUSD","b":[["1","2"]],"a":[],"u":1}}"#,
            r#"{"topic":"publicTrade.ETHUSDT","data":[{"s":"ETHUSDT","p":"3.25","v":"0.1","L":"PlusTick"}]}"#,
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":59999,"o":"1.5","h":"1.6","l":"1.4","c":"1.5","v":"2","x":false}}}"#,
            r#"{"topic":"kline.1.BTCUSDT","data":[{"start":0,"end":59999,"open":"1.5","high":"1.6","low":"1.4","close":"1.5","volume":"2","confirm":true}]}"#,
            r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"lastPrice":"1.5"}}"#,
        ];
        let mut text = String::new();
        let mut n = 0u64;
        for (i, line) in lines.iter().enumerate() {
            for cut in 0..=line.len() {
                let mut bytes = line.as_bytes()[..cut].to_vec();
                if let Some(b) = bytes.get_mut(cut.wrapping_mul(7 + i) % cut.max(1)) {
                    *b ^= 0x20;
                }
                let s = String::from_utf8_lossy(&bytes).replace('\n', " ");
                text.push_str(&format!("{} {s}\n", 1_000_000_000 + n));
                n += 1;
            }
        }
        let mut src = crate::source::hbt::HbtReader::from_buf_read(
            std::io::Cursor::new(text.into_bytes()),
            None,
            String::from("damaged"),
        );
        let s = survey(&mut src);
        assert_eq!(s.records, n);
    }

    #[test]
    fn klines_and_tickers_are_market_frames_whose_numbers_count() {
        let lines = [
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":59999,"s":"BTCUSDT","o":"1.50","h":"1.625","l":"1.4","c":"1.5","v":"2.0001","x":false}}}"#,
            r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1.5","o":"1.25","h":"1.7","l":"1.1","v":"100"}}"#,
        ];
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{} {l}\n", 1_000 + i))
            .collect();
        let mut src = crate::source::hbt::HbtReader::from_buf_read(
            std::io::Cursor::new(text.into_bytes()),
            None,
            String::from("candles"),
        );
        let s = survey(&mut src);
        assert_eq!((s.frames, s.other_frames), (2, 0));
        let i = s
            .instruments
            .get(&(Venue::BinanceSpot, symbol("BTCUSDT").unwrap()))
            .expect("BTCUSDT surveyed");
        assert_eq!(i.candle_messages, 2);
        assert_eq!((i.numbers.price_decimals, i.numbers.qty_decimals), (3, 4));
    }

    #[test]
    fn contract_symbols_are_recognised() {
        assert!(is_coinm_symbol("BTCUSD_PERP"));
        assert!(is_coinm_symbol("ETHUSD_240927"));
        assert!(!is_coinm_symbol("BTCUSDT"));
        assert!(!is_coinm_symbol("1000PEPE_USDT"));
        assert!(is_bybit_inverse_symbol("BTCUSD"));
        assert!(is_bybit_inverse_symbol("BTCUSDH25"));
        assert!(!is_bybit_inverse_symbol("BTCUSDT"));
        assert!(!is_bybit_inverse_symbol("BTCPERP"));
    }

    #[test]
    fn symbols_come_from_request_urls() {
        assert_eq!(
            symbol_in_url("https://api.binance.us/api/v3/depth?symbol=BTCUSD&limit=1000")
                .as_deref(),
            Some("BTCUSD")
        );
        assert_eq!(
            symbol_in_url(
                "https://api.bybit.com/v5/market/orderbook?category=linear&symbol=ethusdt"
            )
            .as_deref(),
            Some("ETHUSDT")
        );
        assert_eq!(symbol_in_url("https://api.binance.com/api/v3/depth"), None);
    }
}
