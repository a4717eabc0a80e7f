//! The market thread: reads the source once, keeps the truth book per symbol, and releases
//! frames on the configured clock to the sessions subscribed to their streams.
//!
//! A frame's stream is the name in its combined envelope, or, for a raw payload, one made from
//! its event type and symbol (`depthUpdate` → `<sym>@depth`, `trade` → `<sym>@trade`, …). Its
//! symbol is the stream name's part before `@`, upper-cased. Until a symbol is seeded by its
//! first REST snapshot its frames are buffered, as the recorder buffered them while the
//! snapshot was on the way (in a recording the bridging diff usually comes *before* the
//! snapshot); the snapshot then replays the buffer through the market. A snapshot whose URL
//! is unknown (hbt files) seeds the first symbol buffering, or else the next symbol whose diff
//! arrives. The symbol opens at the first diff that bridges the snapshot: Spot
//! `U ≤ lastUpdateId+1 ≤ u`, futures (diffs carrying `pu`) `U ≤ lastUpdateId ≤ u`. Frames of a
//! symbol before it opens are not released. Streams with no symbol (`!…@arr`) are released as
//! they come.
//!
//! On Spot, each released trade, bookTicker, diff or partial depth frame is also encoded once
//! into the SBE frame Binance's binary stream would carry ([`pinion_feed::sbe_encode`]), under
//! its SBE stream name (`<sym>@trade`, `<sym>@bestBidAsk`, `<sym>@depth`, `<sym>@depth<N>`),
//! for the sessions on the SBE endpoint.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;
use std::time::{Duration, Instant};

use pinion_core::RecordKind;
use pinion_feed::sbe::Template;
use pinion_feed::sbe_encode::{Encoded, Exponents, SbeEncoder};
use pinion_feed::{FrameSource, SourceError};
use tungstenite::Bytes;

use super::LiveShared;
use super::truth::{Book, Dec, History, Side};
use crate::selection::split_envelope;
use crate::snapshots::symbol_of_url;

/// Longest sleep while pacing, so a stop is noticed in time.
const PACING_SLICE: Duration = Duration::from_millis(10);

/// One released frame, shared by every session it goes to.
#[derive(Debug)]
pub(crate) struct LiveFrame {
    /// Stream name.
    pub stream: String,
    /// Its number within the stream, from 1.
    pub seq: u64,
    /// The combined-stream envelope `{"stream":…,"data":…}`.
    pub text: String,
    /// Where the raw payload lies in `text`.
    pub data: Range<usize>,
    /// A Bybit book message's `u` (sessions skip those their snapshot already holds).
    pub update_id: Option<u64>,
    /// The frame in SBE, for sessions on the SBE endpoint (Spot market data only).
    pub sbe: Option<SbeFrame>,
}

/// A released frame as Binance's SBE stream carries it.
#[derive(Debug)]
pub(crate) struct SbeFrame {
    /// Its SBE stream name (`btcusdt@bestBidAsk`).
    pub stream: String,
    /// The SBE message.
    pub bytes: Bytes,
}

impl LiveFrame {
    /// The text a session sends: the envelope, or the bare payload.
    pub fn body(&self, combined: bool) -> &str {
        if combined {
            &self.text
        } else {
            self.text.get(self.data.clone()).unwrap_or_default()
        }
    }
}

/// One symbol's state.
#[derive(Debug, Clone)]
pub(crate) struct SymbolState {
    pub book: Book,
    pub history: History,
    pub seeded: bool,
    pub open: bool,
    /// `E` of the last applied diff.
    pub event_time: Option<u64>,
    /// `T` of the last applied diff (futures).
    pub transaction_time: Option<u64>,
    /// Most fractional digits seen in prices and quantities.
    pub px_decimals: usize,
    pub qty_decimals: usize,
}

impl SymbolState {
    fn new(history: usize) -> Self {
        SymbolState {
            book: Book::default(),
            history: History::new(history),
            seeded: false,
            open: false,
            event_time: None,
            transaction_time: None,
            px_decimals: 0,
            qty_decimals: 0,
        }
    }

    fn note_decimals(&mut self, px: &str, qty: &str) {
        if let (Ok(p), Ok(q)) = (Dec::parse(px), Dec::parse(qty)) {
            self.px_decimals = self.px_decimals.max(p.decimals());
            self.qty_decimals = self.qty_decimals.max(q.decimals());
        }
    }
}

/// What the market knows; behind the shared mutex.
#[derive(Debug)]
pub(crate) struct MarketState {
    pub symbols: HashMap<String, SymbolState>,
    /// A snapshot with no symbol, waiting for the next unseeded symbol's diff.
    pending_unnamed: Option<Vec<u8>>,
    pub exhausted: bool,
    pub running: bool,
    pub released: u64,
    /// The source's recorded `exchangeInfo` body, when it has one.
    pub exchange_info: Option<Vec<u8>>,
    history: usize,
    stream_seq: HashMap<String, u64>,
    /// Frames of symbols not seeded yet, as a client buffers them while its snapshot is on
    /// the way: `(t_recv, payload)` per symbol, and the symbols in the order they began.
    buffers: HashMap<String, VecDeque<(u64, Vec<u8>)>>,
    buffer_order: Vec<String>,
    /// Encodes released Spot frames into SBE.
    sbe: SbeEncoder,
}

/// Most frames buffered per unseeded symbol (older ones are dropped).
const MAX_BUFFERED: usize = 200_000;

/// What the market does with a frame.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// Keep it until the symbol's snapshot arrives.
    Buffer,
    /// Not released (its symbol is not open and it cannot open it).
    Skip,
    /// Wait for its time, then try to release it.
    Release,
}

/// A REST depth body.
#[derive(Debug, serde::Deserialize)]
struct SnapshotBody<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    asks: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// A depth diff payload.
#[derive(Debug, serde::Deserialize)]
struct Diff<'a> {
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    pu: Option<u64>,
    #[serde(rename = "E")]
    event_time: Option<u64>,
    #[serde(rename = "T")]
    transaction_time: Option<u64>,
    #[serde(borrow)]
    b: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    a: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// The head of a raw payload: event type and symbol.
#[derive(Debug, serde::Deserialize)]
struct RawHead<'a> {
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(borrow)]
    s: Option<Cow<'a, str>>,
}

/// A frame's place in the market.
#[derive(Debug)]
struct Classified {
    stream: String,
    symbol: Option<String>,
    diff: bool,
    /// The combined envelope (`None`: the payload is one already).
    text: Option<String>,
    data: Range<usize>,
    /// A Bybit `orderbook.*` message: whether it is a snapshot (else a delta).
    bybit_book: Option<bool>,
}

impl MarketState {
    /// A market keeping `history` diffs per symbol; `running` false holds it.
    pub fn new(history: usize, running: bool) -> Self {
        MarketState {
            symbols: HashMap::new(),
            pending_unnamed: None,
            exhausted: false,
            running,
            released: 0,
            exchange_info: None,
            history,
            stream_seq: HashMap::new(),
            buffers: HashMap::new(),
            buffer_order: Vec::new(),
            sbe: SbeEncoder::new(Exponents::BINANCE_SPOT),
        }
    }

    /// Keeps a frame of an unseeded symbol.
    fn buffer(&mut self, symbol: &str, t_recv: u64, payload: &[u8]) {
        let buffer = self.buffers.entry(symbol.to_owned()).or_default();
        if buffer.is_empty() && !self.buffer_order.iter().any(|s| s == symbol) {
            self.buffer_order.push(symbol.to_owned());
        }
        if buffer.len() == MAX_BUFFERED {
            buffer.pop_front();
        }
        buffer.push_back((t_recv, payload.to_vec()));
    }

    /// The buffered frames of a symbol just seeded, in order.
    fn unbuffer(&mut self, symbol: &str) -> VecDeque<(u64, Vec<u8>)> {
        self.buffer_order.retain(|s| s != symbol);
        self.buffers.remove(symbol).unwrap_or_default()
    }

    /// What to do with a frame.
    fn admit(&self, c: &Classified) -> Admit {
        if c.bybit_book.is_some() {
            return Admit::Release;
        }
        let Some(symbol) = &c.symbol else {
            return Admit::Release;
        };
        match self.symbols.get(symbol) {
            Some(s) if s.open => Admit::Release,
            Some(s) if s.seeded => {
                if c.diff {
                    Admit::Release
                } else {
                    Admit::Skip
                }
            }
            _ if c.diff && self.pending_unnamed.is_some() => Admit::Release,
            _ => Admit::Buffer,
        }
    }

    /// The open symbols, sorted.
    pub fn open_symbols(&self) -> Vec<String> {
        let mut open: Vec<String> = self
            .symbols
            .iter()
            .filter(|(_, s)| s.open)
            .map(|(k, _)| k.clone())
            .collect();
        open.sort();
        open
    }

    /// Takes a REST snapshot record: seeds its symbol unless that symbol is open already. A
    /// snapshot with no symbol seeds the first symbol buffering without one, or waits for the
    /// next unseeded symbol's diff. The symbol seeded, if any.
    fn take_snapshot(&mut self, url: &[u8], body: &[u8]) -> Result<Option<String>, ()> {
        let symbol = match symbol_of_url(url) {
            Some(symbol) => symbol,
            None => {
                serde_json::from_slice::<SnapshotBody<'_>>(body).map_err(|_| ())?;
                let waiting = self
                    .buffer_order
                    .iter()
                    .find(|s| !self.symbols.get(*s).is_some_and(|st| st.seeded))
                    .cloned();
                match waiting {
                    Some(symbol) => symbol,
                    None => {
                        self.pending_unnamed = Some(body.to_vec());
                        return Ok(None);
                    }
                }
            }
        };
        let history = self.history;
        let state = self
            .symbols
            .entry(symbol.clone())
            .or_insert_with(|| SymbolState::new(history));
        if state.open {
            return Ok(None);
        }
        seed(state, body)?;
        Ok(Some(symbol))
    }

    /// Applies a frame to the truth and numbers it: the frame to broadcast, whether a symbol
    /// opened, or `None` when it is not released.
    fn release(
        &mut self,
        c: Classified,
        t_recv: u64,
        payload: &[u8],
        shared: &LiveShared,
    ) -> Option<(Arc<LiveFrame>, bool)> {
        let mut opened = false;
        let mut update_id = None;
        let text = match c.text {
            Some(text) => text,
            None => std::str::from_utf8(payload).ok()?.to_owned(),
        };
        if let (Some(snapshot), Some(symbol)) = (c.bybit_book, &c.symbol) {
            let Ok(message) = serde_json::from_str::<BybitBookMessage<'_>>(&text) else {
                shared.count(|k| &k.source_errors);
                return None;
            };
            let history = self.history;
            let state = self
                .symbols
                .entry(symbol.clone())
                .or_insert_with(|| SymbolState::new(history));
            let book = &message.data;
            if snapshot {
                state.book = Book::default();
                state.history = History::new(history);
                state.seeded = true;
                opened = !state.open;
                state.open = true;
            } else if !state.open {
                return None;
            } else if book.u != state.book.last_update_id + 1 {
                shared.count(|k| &k.source_gaps);
            }
            for (px, qty) in book.b.iter().chain(book.a.iter()) {
                state.note_decimals(px, qty);
            }
            let (undo, bad) = state.book.apply(
                book.u,
                book.b.iter().map(|(p, q)| (p.as_ref(), q.as_ref())),
                book.a.iter().map(|(p, q)| (p.as_ref(), q.as_ref())),
            );
            if bad > 0 {
                shared
                    .counters
                    .source_errors
                    .fetch_add(bad, Ordering::Relaxed);
            }
            state.history.push(undo);
            state.event_time = message.ts.or(state.event_time);
            update_id = Some(book.u);
        } else if let Some(symbol) = &c.symbol {
            if c.diff {
                let data = text.get(c.data.clone())?;
                let Ok(diff) = serde_json::from_str::<Diff<'_>>(data) else {
                    shared.count(|k| &k.source_errors);
                    return None;
                };
                let history = self.history;
                let state = self
                    .symbols
                    .entry(symbol.clone())
                    .or_insert_with(|| SymbolState::new(history));
                if !state.seeded {
                    let body = self.pending_unnamed.take()?;
                    seed(state, &body).ok()?;
                }
                let last = state.book.last_update_id;
                if !state.open {
                    let bridges = if diff.pu.is_some() {
                        diff.first <= last && last <= diff.u
                    } else {
                        diff.first <= last + 1 && last < diff.u
                    };
                    if !bridges {
                        return None;
                    }
                    state.open = true;
                    opened = true;
                    apply(state, &diff, shared);
                } else if diff.u > last {
                    let continues = match diff.pu {
                        Some(pu) => pu == last,
                        None => diff.first == last + 1,
                    };
                    if !continues {
                        shared.count(|k| &k.source_gaps);
                    }
                    apply(state, &diff, shared);
                }
            } else if !self.symbols.get(symbol).is_some_and(|s| s.open) {
                return None;
            }
        }
        let sbe = if shared.config.venue == super::LiveVenue::Spot && c.bybit_book.is_none() {
            self.encode_sbe(&c.stream, &text, t_recv, shared)
        } else {
            None
        };
        let seq = self.stream_seq.entry(c.stream.clone()).or_insert(0);
        *seq += 1;
        self.released += 1;
        Some((
            Arc::new(LiveFrame {
                stream: c.stream,
                seq: *seq,
                text,
                data: c.data,
                update_id,
                sbe,
            }),
            opened,
        ))
    }
}

impl MarketState {
    /// The SBE frame of a released frame (its combined envelope `text`), if its stream is one
    /// SBE has; an encoding failure is counted.
    fn encode_sbe(
        &mut self,
        stream: &str,
        text: &str,
        t_recv: u64,
        shared: &LiveShared,
    ) -> Option<SbeFrame> {
        match self.sbe.encode(text.as_bytes(), t_recv, Some(stream)) {
            Ok(Encoded::Frame(template)) => Some(SbeFrame {
                stream: sbe_stream(stream, template)?,
                bytes: Bytes::copy_from_slice(self.sbe.frame()),
            }),
            Ok(Encoded::Control | Encoded::NoSbeStream) => None,
            Err(_) => {
                shared.count(|k| &k.sbe_encode_errors);
                None
            }
        }
    }
}

/// The SBE stream a JSON stream's message of `template` belongs to: the symbol part lower-cased,
/// the update speed dropped (`btcusdt@depth@100ms` → `btcusdt@depth`, `btcusdt@depth20@100ms`
/// → `btcusdt@depth20`), `bookTicker` → `bestBidAsk`.
pub(crate) fn sbe_stream(json_stream: &str, template: Template) -> Option<String> {
    let (symbol, kind) = json_stream.split_once('@')?;
    let symbol = symbol.to_ascii_lowercase();
    Some(match template {
        Template::Trades => format!("{symbol}@trade"),
        Template::BestBidAsk => format!("{symbol}@bestBidAsk"),
        Template::DepthDiff => format!("{symbol}@depth"),
        Template::DepthSnapshot => {
            let levels = kind.split('@').next()?;
            format!("{symbol}@{levels}")
        }
    })
}

/// Seeds a symbol's book from a snapshot body.
fn seed(state: &mut SymbolState, body: &[u8]) -> Result<(), ()> {
    let snapshot: SnapshotBody<'_> = serde_json::from_slice(body).map_err(|_| ())?;
    let mut book = Book {
        last_update_id: snapshot.last_update_id,
        ..Book::default()
    };
    for (side, levels) in [(Side::Bid, &snapshot.bids), (Side::Ask, &snapshot.asks)] {
        for (px, qty) in levels {
            book.set(side, px, qty).map_err(|_| ())?;
            state.note_decimals(px, qty);
        }
    }
    state.book = book;
    state.history = History::new(state.history_cap());
    state.seeded = true;
    Ok(())
}

impl SymbolState {
    fn history_cap(&self) -> usize {
        self.history.cap()
    }
}

fn apply(state: &mut SymbolState, diff: &Diff<'_>, shared: &LiveShared) {
    for (px, qty) in diff.b.iter().chain(diff.a.iter()) {
        state.note_decimals(px, qty);
    }
    let (undo, bad) = state.book.apply(
        diff.u,
        diff.b.iter().map(|(p, q)| (p.as_ref(), q.as_ref())),
        diff.a.iter().map(|(p, q)| (p.as_ref(), q.as_ref())),
    );
    if bad > 0 {
        shared
            .counters
            .source_errors
            .fetch_add(bad, Ordering::Relaxed);
    }
    state.history.push(undo);
    state.event_time = diff.event_time.or(state.event_time);
    state.transaction_time = diff.transaction_time.or(state.transaction_time);
}

/// Finds a frame's stream, symbol and payload.
fn classify(payload: &[u8]) -> Option<Classified> {
    let (stream, text, data) = match split_envelope(payload) {
        Some((name, data)) => {
            let start = data.as_ptr() as usize - payload.as_ptr() as usize;
            (
                std::str::from_utf8(name).ok()?.to_owned(),
                None,
                start..start + data.len(),
            )
        }
        None => {
            let raw = std::str::from_utf8(payload).ok()?;
            let head: RawHead<'_> = serde_json::from_str(raw).ok()?;
            let symbol = head.s?.to_ascii_lowercase();
            let kind = match head.e.as_deref() {
                Some("depthUpdate") => "depth",
                Some(other) => other,
                None => "bookTicker",
            };
            let stream = format!("{symbol}@{kind}");
            let prefix = format!("{{\"stream\":\"{stream}\",\"data\":");
            let start = prefix.len();
            let text = format!("{prefix}{raw}}}");
            (stream, Some(text), start..start + raw.len())
        }
    };
    let (symbol, kind) = match stream.split_once('@') {
        Some((s, kind)) if !s.starts_with('!') && !s.is_empty() => {
            (Some(s.to_ascii_uppercase()), kind)
        }
        _ => (None, ""),
    };
    let diff = kind == "depth" || kind.starts_with("depth@");
    Some(Classified {
        stream,
        symbol,
        diff,
        text,
        data,
        bybit_book: None,
    })
}

/// The head of a Bybit v5 public message.
#[derive(Debug, serde::Deserialize)]
struct BybitHead<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

/// A Bybit message on a connection of `category` (`linear`, `spot`, …): its stream is
/// `<category>:<topic>`; an `orderbook.<depth>.<symbol>` message belongs to the book keyed
/// `<CATEGORY>:<SYMBOL>`.
fn classify_bybit(payload: &[u8], category: &str) -> Option<Classified> {
    let text = std::str::from_utf8(payload).ok()?;
    let head: BybitHead<'_> = serde_json::from_str(text).ok()?;
    let stream = format!("{category}:{}", head.topic);
    let mut parts = head.topic.split('.');
    let (symbol, bybit_book) = match (parts.next(), parts.next(), parts.next()) {
        (Some("orderbook"), Some(_), Some(symbol)) => (
            Some(format!("{category}:{symbol}").to_ascii_uppercase()),
            Some(head.kind.as_deref() == Some("snapshot")),
        ),
        _ => (None, None),
    };
    Some(Classified {
        stream,
        symbol,
        diff: false,
        text: None,
        data: 0..payload.len(),
        bybit_book,
    })
}

/// A Bybit book message's data.
#[derive(Debug, serde::Deserialize)]
struct BybitBook<'a> {
    #[serde(borrow)]
    b: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(borrow)]
    a: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    u: u64,
}

/// The Bybit book message around [`BybitBook`].
#[derive(Debug, serde::Deserialize)]
struct BybitBookMessage<'a> {
    #[serde(borrow)]
    data: BybitBook<'a>,
    ts: Option<u64>,
}

/// The category a Bybit connection URL names (`…/v5/public/linear` → `linear`).
fn bybit_category(url: &[u8]) -> Option<String> {
    let url = std::str::from_utf8(url).ok()?;
    let (_, rest) = url.split_once("/v5/public/")?;
    let category = rest.split(['/', '?']).next()?;
    (!category.is_empty()).then(|| category.to_ascii_lowercase())
}

/// Release times.
struct Clock {
    pacing: super::LivePacing,
    start: Option<Instant>,
    first_t: u64,
    n: u64,
}

impl Clock {
    /// Sleeps until the next frame (received at `t_recv`) is due; false when stopping.
    fn wait(&mut self, t_recv: u64, shared: &LiveShared) -> bool {
        let now = Instant::now();
        let start = *self.start.get_or_insert_with(|| {
            self.first_t = t_recv;
            now
        });
        let offset = match self.pacing {
            super::LivePacing::AsFastAsPossible => None,
            super::LivePacing::Recorded { speed } => Some(Duration::from_nanos(
                (t_recv.saturating_sub(self.first_t) as f64 / speed) as u64,
            )),
            super::LivePacing::Rate { frames_per_sec } => {
                Duration::try_from_secs_f64(self.n as f64 / frames_per_sec).ok()
            }
        };
        self.n += 1;
        let Some(due) = offset.and_then(|o| start.checked_add(o)) else {
            return !shared.stop.load(Ordering::Relaxed);
        };
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(PACING_SLICE));
        }
    }
}

/// Runs the market to the end of the source, then marks it exhausted.
pub(crate) fn run(mut source: Box<dyn FrameSource + Send>, shared: &LiveShared) {
    {
        let mut market = shared.market();
        while !market.running && !shared.stop.load(Ordering::SeqCst) {
            market = shared
                .market_changed
                .wait_timeout(market, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
    let mut clock = Clock {
        pacing: shared.config.pacing,
        start: None,
        first_t: 0,
        n: 0,
    };
    // Buffered frames of a symbol just seeded go through the market before the source's next.
    let mut ready: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    // Bybit connections of the source: category by connection id.
    let mut categories: HashMap<u16, String> = HashMap::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut bybit_ready: Option<Classified> = None;
        let (t_recv, payload) = match ready.pop_front() {
            Some(frame) => frame,
            None => {
                let rec = match source.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(SourceError::Format { .. } | SourceError::Checksum { .. }) => {
                        shared.count(|k| &k.source_errors);
                        continue;
                    }
                    Err(_) => {
                        shared.count(|k| &k.source_errors);
                        break;
                    }
                };
                match rec.kind {
                    RecordKind::RestSnapshot => {
                        let mut market = shared.market();
                        match market.take_snapshot(rec.meta, rec.payload) {
                            Ok(Some(symbol)) => ready.extend(market.unbuffer(&symbol)),
                            Ok(None) => {}
                            Err(()) => shared.count(|k| &k.source_errors),
                        }
                        continue;
                    }
                    RecordKind::Http => {
                        if rec.meta.windows(12).any(|w| w == b"exchangeInfo") {
                            shared.market().exchange_info = Some(rec.payload.to_vec());
                        }
                        continue;
                    }
                    RecordKind::Connect => {
                        if let Some(category) = bybit_category(rec.meta) {
                            categories.insert(rec.conn.0, category);
                        }
                        continue;
                    }
                    RecordKind::Frame => {
                        if let Some(category) = categories.get(&rec.conn.0) {
                            // Bybit: topic messages only (the recorded op answers are not
                            // market data).
                            match classify_bybit(rec.payload, category) {
                                Some(c) => bybit_ready = Some(c),
                                None => continue,
                            }
                        }
                        (rec.t_recv, rec.payload.to_vec())
                    }
                    _ => continue,
                }
            }
        };
        let classified = match bybit_ready.take() {
            Some(c) => Some(c),
            None => classify(&payload),
        };
        let Some(c) = classified else {
            shared.count(|k| &k.source_errors);
            continue;
        };
        {
            let mut market = shared.market();
            match market.admit(&c) {
                Admit::Release => {}
                Admit::Skip => {
                    shared.count(|k| &k.frames_before_open);
                    continue;
                }
                Admit::Buffer => {
                    if let Some(symbol) = &c.symbol {
                        market.buffer(symbol, t_recv, &payload);
                    }
                    continue;
                }
            }
        }
        if !clock.wait(t_recv, shared) {
            break;
        }
        let released = shared.market().release(c, t_recv, &payload, shared);
        // Resting WS API orders move with the new truth (and its trades), frame by frame.
        crate::wsapi::after_frame(
            shared,
            released
                .as_ref()
                .map(|(frame, _)| (frame.stream.as_str(), frame.body(false))),
        );
        match released {
            Some((frame, opened)) => {
                shared.count(|k| &k.frames_released);
                if opened {
                    shared.market_changed.notify_all();
                }
                broadcast(&frame, shared);
            }
            None => shared.count(|k| &k.frames_before_open),
        }
    }
    shared.market().exhausted = true;
    shared.market_changed.notify_all();
}

/// Queues a frame to every session subscribed to its stream; a full queue disconnects the
/// session.
fn broadcast(frame: &Arc<LiveFrame>, shared: &LiveShared) {
    let mut sessions = shared.sessions();
    sessions.retain(|link| {
        if link.gone.load(Ordering::Relaxed) {
            return false;
        }
        if !link.wants_frame(frame) {
            return true;
        }
        match link.tx.try_send(Arc::clone(frame)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                link.slow.store(true, Ordering::SeqCst);
                shared.count(|k| &k.slow_disconnects);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_symbols_from_envelopes_and_raw_payloads() {
        let c = classify(br#"{"stream":"btcusdt@depth@100ms","data":{"U":1}}"#).expect("frame");
        assert_eq!(c.stream, "btcusdt@depth@100ms");
        assert_eq!(c.symbol.as_deref(), Some("BTCUSDT"));
        assert!(c.diff);
        let raw = br#"{"e":"trade","s":"ETHUSDT","t":1}"#;
        let c = classify(raw).expect("frame");
        assert_eq!(c.stream, "ethusdt@trade");
        let text = c.text.expect("envelope built");
        assert_eq!(
            &text[c.data.clone()],
            std::str::from_utf8(raw).expect("utf8")
        );
        assert!(text.starts_with(r#"{"stream":"ethusdt@trade","data":{"#));
        assert!(
            !classify(br#"{"stream":"x@depth20@100ms","data":{}}"#)
                .expect("f")
                .diff
        );
        assert_eq!(
            classify(br#"{"stream":"!miniTicker@arr","data":[]}"#)
                .expect("f")
                .symbol,
            None
        );
        assert!(classify(b"\xff\xfe").is_none());
        assert!(classify(b"{\"e\":\"trade\"}").is_none());
    }
}
