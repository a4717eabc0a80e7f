//! `pinion book`: the books as the engine holds them, after any message of the input, so a
//! user can check them against their own tool.
//!
//! The input is opened as a replay opens it ([`prepare`]: the same source, instruments and
//! connection table) and read on one thread, without pacing: every record goes through the
//! same [`Decoder`] and each instrument's [`BookSync`] exactly as the feed and book stages
//! handle it (connection records resync the books their connection fed; a book ticker goes to
//! [`BookSync::on_ticker`], any other event to [`BookSync::on_event`]; trades and events for
//! instruments without a book leave the books alone). A *message* is one input record, counted
//! from 1 in input order; what a point shows is the books after that record was handled.
//!
//! At each point every book is described by its sync state, its last applied update id and its
//! best `depth` levels per side as exact decimal strings at the instrument's scale (never
//! through `f64`), in a [`BookPoint`] that prints as text and serialises as one JSON object.

use std::fmt::Write as _;

use pinion_book::{BookLevels as _, BookSync};
use pinion_core::decimal::{MAX_FORMATTED_LEN, write_scaled};
use pinion_core::{
    ConnId, EventKind, InstrumentId, Instruments, MarketEvent, RawRecord, RecordKind, Side,
};
use pinion_feed::parse::Decoder;
use serde::Serialize;

use super::{PipelineError, PreparedInput, book_for, prepare};
use crate::config::Settings;
use crate::stages::feed::{ConnTable, MAX_CONSECUTIVE_SOURCE_ERRORS};

/// After which messages the books are shown; the books at the end of the input are always
/// shown too (once: not again when the last message was a point already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpPoints {
    /// After message `n` (counted from 1).
    At(u64),
    /// After every `n`-th message: `n`, `2n`, ….
    Every(u64),
    /// At the end only.
    End,
}

impl DumpPoints {
    fn contains(self, message: u64) -> bool {
        match self {
            DumpPoints::At(n) => message == n,
            DumpPoints::Every(n) => n > 0 && message.is_multiple_of(n),
            DumpPoints::End => false,
        }
    }
}

/// One price level: price and quantity as exact decimal strings.
pub type LevelText = [String; 2];

/// One instrument's book at a point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookView {
    /// The venue (`binance-spot`, …).
    pub venue: String,
    /// The exchange's symbol.
    pub symbol: String,
    /// The sync state as a stable word, as the replay's report writes it: `live`, `syncing`,
    /// `awaiting_snapshot` or `awaiting_snapshot:<reason>` (see [`pinion_book::SyncState::name`]).
    pub state: String,
    /// The last applied update id (0 before the first snapshot).
    pub last_update_id: u64,
    /// The best bids, best first.
    pub bids: Vec<LevelText>,
    /// The best asks, best first.
    pub asks: Vec<LevelText>,
}

/// The books after one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookPoint {
    /// The message (input record) the point follows, counted from 1; 0 for an empty input.
    pub message: u64,
    /// That record's receive time, ns since the Unix epoch (0 for an empty input).
    pub t_recv: u64,
    /// Every book, in instrument order.
    pub books: Vec<BookView>,
}

impl BookPoint {
    /// The point as text: a heading, then per book its state and a table of levels.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "after message {} (t_recv {})", self.message, self.t_recv);
        for b in &self.books {
            let _ = writeln!(
                s,
                "  {} {}: {}, update {}, {} bids {} asks shown",
                b.venue,
                b.symbol,
                b.state,
                b.last_update_id,
                b.bids.len(),
                b.asks.len()
            );
            let w = |side: &[LevelText], i: usize| {
                side.iter()
                    .map(|l| l[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(["bid", "qty"][i].len())
            };
            let (bp, bq, ap, aq) = (w(&b.bids, 0), w(&b.bids, 1), w(&b.asks, 0), w(&b.asks, 1));
            let mut row = |bq_text: &str, bp_text: &str, ap_text: &str, aq_text: &str| {
                let line =
                    format!("    {bq_text:>bq$} {bp_text:>bp$} | {ap_text:<ap$} {aq_text:<aq$}");
                s.push_str(line.trim_end());
                s.push('\n');
            };
            row("qty", "bid", "ask", "qty");
            let empty = [String::new(), String::new()];
            for i in 0..b.bids.len().max(b.asks.len()) {
                let bid = b.bids.get(i).unwrap_or(&empty);
                let ask = b.asks.get(i).unwrap_or(&empty);
                row(&bid[1], &bid[0], &ask[0], &ask[1]);
            }
        }
        s
    }
}

/// What a dump read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookDumpSummary {
    /// Messages (input records) handled.
    pub messages: u64,
    /// Points handed out.
    pub points: u64,
    /// Frames the decoder rejected.
    pub decode_errors: u64,
    /// Records the source could not read.
    pub source_errors: u64,
    /// The last source error, if any.
    pub last_source_error: Option<String>,
    /// Records of connections whose venue is unknown (not decoded).
    pub unknown_venue: u64,
    /// Whether the source gave up after too many errors in a row.
    pub source_gave_up: bool,
}

/// The books of a dump, indexed by instrument id, and which connection last fed each.
struct Books {
    books: Vec<Option<BookSync>>,
    fed_by: Vec<Option<ConnId>>,
}

impl Books {
    /// One event, as the book stage applies it.
    fn apply(&mut self, ev: &MarketEvent) {
        // Trades, klines and 24 h tickers pass the books by, as in the book stage.
        if matches!(
            ev.kind,
            EventKind::Trade | EventKind::Kline | EventKind::Ticker24h
        ) {
            return;
        }
        let i = usize::from(ev.instrument.0);
        let Some(Some(sync)) = self.books.get_mut(i) else {
            return;
        };
        self.fed_by[i] = Some(ev.conn);
        if ev.kind == EventKind::BookTicker {
            sync.on_ticker(ev);
        } else {
            sync.on_event(ev);
        }
    }

    /// The connection `conn` was reopened, closed or lost frames.
    fn reconnect(&mut self, conn: ConnId) {
        for (sync, fed) in self.books.iter_mut().zip(&self.fed_by) {
            if let (Some(sync), Some(c)) = (sync, fed)
                && *c == conn
            {
                sync.on_reconnect();
            }
        }
    }

    fn view(&self, instruments: &Instruments, depth: usize) -> Vec<BookView> {
        self.books
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .filter_map(|(i, sync)| {
                let spec = instruments.get(InstrumentId(i as u16))?;
                let side = |side| {
                    sync.book()
                        .levels(side)
                        .take(depth)
                        .map(|l| {
                            [
                                decimal(l.px.0, spec.price_decimals),
                                decimal(l.qty.0, spec.qty_decimals),
                            ]
                        })
                        .collect()
                };
                Some(BookView {
                    venue: spec.venue.name().to_owned(),
                    symbol: spec.symbol.to_string(),
                    state: sync.state().name().to_owned(),
                    last_update_id: sync.last_update_id(),
                    bids: side(Side::Bid),
                    asks: side(Side::Ask),
                })
            })
            .collect()
    }
}

/// `value × 10^-decimals`, exactly.
fn decimal(value: i64, decimals: u8) -> String {
    let mut buf = [0u8; MAX_FORMATTED_LEN];
    let n = write_scaled(value, decimals, &mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A record copied out of the source, for one whose connection the table has not seen: the
/// source must be asked about its connections again before it can be decoded, and the record
/// borrows the source.
struct OwnedRecord {
    t_recv: u64,
    conn: ConnId,
    kind: RecordKind,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

impl OwnedRecord {
    fn of(rec: &RawRecord<'_>) -> Self {
        Self {
            t_recv: rec.t_recv,
            conn: rec.conn,
            kind: rec.kind,
            meta: rec.meta.to_vec(),
            payload: rec.payload.to_vec(),
        }
    }

    fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            t_recv: self.t_recv,
            conn: self.conn,
            kind: self.kind,
            meta: &self.meta,
            payload: &self.payload,
        }
    }
}

/// Replays the input of `settings` through the decoder and the books (see the module docs) and
/// hands `emit` the books at each of `points` and at the end, `depth` levels a side. Stops
/// early, with `emit`'s error, when `emit` fails; stops after `settings.max_records` records
/// when that is set.
pub fn replay_books(
    settings: &Settings,
    points: DumpPoints,
    depth: usize,
    mut emit: impl FnMut(&BookPoint) -> Result<(), PipelineError>,
) -> Result<BookDumpSummary, PipelineError> {
    let PreparedInput {
        mut source,
        instruments,
        mut conns,
        books: book_ids,
        book_ticks,
        ..
    } = prepare(settings)?;
    if book_ids.is_empty() {
        return Err(PipelineError::NoInstruments(String::from(
            "the input names no instrument",
        )));
    }
    let mut books = Books {
        books: (0..instruments.len()).map(|_| None).collect(),
        fed_by: vec![None; instruments.len()],
    };
    for &id in &book_ids {
        if let Some(spec) = instruments.get(id) {
            let grid = book_ticks.get(usize::from(id.0)).copied().flatten();
            books.books[usize::from(id.0)] = Some(book_for(spec, grid, id)?);
        }
    }
    let mut decoder = Decoder::new(instruments.clone());
    let mut summary = BookDumpSummary::default();
    let mut consecutive_errors = 0u32;
    let mut last_emitted = None;
    let mut t_recv = 0;
    loop {
        if settings.max_records != 0 && summary.messages >= settings.max_records {
            break;
        }
        let unseen = match source.next_record() {
            Ok(None) => break,
            Err(e) => {
                summary.source_errors += 1;
                summary.last_source_error = Some(e.to_string());
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_SOURCE_ERRORS {
                    summary.source_gave_up = true;
                    break;
                }
                continue;
            }
            Ok(Some(rec)) => {
                consecutive_errors = 0;
                summary.messages += 1;
                t_recv = rec.t_recv;
                if is_connection_record(rec.kind) || conns.get(rec.conn).is_some() {
                    handle(&mut decoder, &conns, &mut books, &mut summary, &rec);
                    None
                } else {
                    Some(OwnedRecord::of(&rec))
                }
            }
        };
        if let Some(rec) = unseen {
            // A connection the source had not announced: look again, once.
            conns.refresh(&*source);
            handle(&mut decoder, &conns, &mut books, &mut summary, &rec.raw());
        }
        if points.contains(summary.messages) {
            emit_point(&mut emit, &books, &instruments, depth, &mut summary, t_recv)?;
            last_emitted = Some(summary.messages);
        }
    }
    summary.decode_errors = decoder.stats().errors.total();
    if last_emitted != Some(summary.messages) {
        emit_point(&mut emit, &books, &instruments, depth, &mut summary, t_recv)?;
    }
    Ok(summary)
}

fn emit_point(
    emit: &mut impl FnMut(&BookPoint) -> Result<(), PipelineError>,
    books: &Books,
    instruments: &Instruments,
    depth: usize,
    summary: &mut BookDumpSummary,
    t_recv: u64,
) -> Result<(), PipelineError> {
    let point = BookPoint {
        message: summary.messages,
        t_recv,
        books: books.view(instruments, depth),
    };
    summary.points += 1;
    emit(&point)
}

fn is_connection_record(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Connect | RecordKind::Disconnect | RecordKind::Gap
    )
}

/// One record, as the feed stage hands it on and the book stage applies it.
fn handle(
    decoder: &mut Decoder,
    conns: &ConnTable,
    books: &mut Books,
    summary: &mut BookDumpSummary,
    rec: &RawRecord<'_>,
) {
    if is_connection_record(rec.kind) {
        books.reconnect(rec.conn);
        return;
    }
    if rec.kind == RecordKind::Http {
        return;
    }
    let Some(ctx) = conns.get(rec.conn) else {
        summary.unknown_venue += 1;
        return;
    };
    // Errors are counted by the decoder; the books go on with the next record.
    let _ = decoder.decode(ctx, rec, 0, |ev| books.apply(ev));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points() {
        assert!(DumpPoints::At(3).contains(3));
        assert!(!DumpPoints::At(3).contains(6));
        assert!(DumpPoints::Every(3).contains(6));
        assert!(!DumpPoints::Every(3).contains(7));
        assert!(!DumpPoints::Every(0).contains(0));
        assert!(!DumpPoints::End.contains(1));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(6_183_763, 2), "61837.63");
        assert_eq!(decimal(5, 8), "0.00000005");
    }

    #[test]
    fn text_lines_up_the_two_sides() {
        let p = BookPoint {
            message: 7,
            t_recv: 9,
            books: vec![BookView {
                venue: "binance-spot".into(),
                symbol: "BTCUSDT".into(),
                state: "live".into(),
                last_update_id: 11,
                bids: vec![
                    ["100.5".into(), "2".into()],
                    ["99.25".into(), "10.5".into()],
                ],
                asks: vec![["101".into(), "0.125".into()]],
            }],
        };
        assert_eq!(
            p.text(),
            "after message 7 (t_recv 9)\n\
             \x20 binance-spot BTCUSDT: live, update 11, 2 bids 1 asks shown\n\
             \x20    qty   bid | ask qty\n\
             \x20      2 100.5 | 101 0.125\n\
             \x20   10.5 99.25 |\n"
        );
    }
}
