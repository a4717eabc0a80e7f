//! The feed stage: reads the source, paces the replay, stamps `t0`, decodes, and sends events
//! to the book stage.
//!
//! `t0` is taken when a frame is released (replay) — right before it is decoded — so decoding
//! counts toward tick-to-trade exactly as it would after a socket read. In `paced` mode a frame
//! that is not yet due is copied into a buffer owned by the stage (the source's buffer is only
//! lent until the next read) and released on a later poll; in `max` mode it is decoded straight
//! from the source's buffer.
//!
//! Connection records (`Connect`, `Disconnect`, `Gap`) become [`MarketMsg::Resync`] so the book
//! stage resyncs that connection's books. Bad input is counted and skipped: decode errors by the
//! decoder's own [`DecodeStats`](pinion_feed::parse::DecodeStats), source errors here (a run of
//! [`MAX_CONSECUTIVE_SOURCE_ERRORS`] errors without a good record ends the stream, since a
//! source in that state is not going to recover). Each of them, and each frame of a connection
//! whose venue is unknown, is also a [`Problem`] in the stage's [`ProblemLog`]: counted by kind
//! and instrument, with its record number, line and raw text, on the error path only. The stop
//! flag (Ctrl-C) or the record limit ends the stream early; either way the end-of-stream marker
//! goes down the rings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pinion_core::{ConnId, InstrumentId, Instruments, RawRecord, RecordKind, Venue};
use pinion_feed::FrameSource;
use pinion_feed::parse::{ConnCtx, Decoded, Decoder, SkipReason};

use super::handoff::Handoff;
use super::msg::MarketMsg;
use super::outbox::Outbox;
use super::pacing::Pacer;
use crate::latency::{LiveLatency, Recorder};
use crate::problems::{Problem, ProblemKind, ProblemLog, ProblemSummary, Subject};
use crate::progress::ProgressCounters;
use crate::runtime::{LiveCounts, Progress, Stage, StageReport, now_ns};

/// Records read per poll at most (`max` pacing).
const READ_BATCH: usize = 32;

/// Source errors in a row after which the stream is ended.
pub const MAX_CONSECUTIVE_SOURCE_ERRORS: u32 = 64;

/// The events one frame may produce without the outbox queue growing (a 5000-level snapshot
/// split into 28-level events is 358).
pub const BURST: usize = 512;

/// Connection slots a [`ConnTable`] reserves at start-up at the least, so that connections a
/// source discovers as it reads need no allocation.
pub const RESERVED_CONNECTIONS: usize = 16;

/// How each connection of the source is decoded.
#[derive(Debug, Clone)]
pub struct ConnTable {
    ctx: Vec<Option<ConnCtx>>,
    /// The venue of connections the source cannot name.
    fallback_venue: Option<Venue>,
    instruments: Instruments,
    /// What a first pass over the recording decided per connection (see
    /// [`pinion_feed::survey`]): its venue and the symbol of payloads that name none.
    planned: Vec<Option<(Venue, Option<pinion_core::Symbol>)>>,
    /// Per connection: whether its default instrument is still to be learnt from its depth
    /// stream (no first pass could tell it: standard input).
    learning: Vec<Learn>,
}

/// Where learning a connection's default instrument from its traffic stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Learn {
    /// Decided at start-up (or nothing to learn).
    Fixed,
    /// No depth stream seen yet.
    Open,
    /// One depth stream seen: its instrument is the default.
    Learned,
    /// Several depth streams: payloads naming none cannot be placed.
    Ambiguous,
}

impl ConnTable {
    /// A table for `source`'s connections; `fallback_venue` for those it cannot name;
    /// `instruments` to find each connection's default instrument (for payloads that name
    /// none, such as the REST snapshots of an hbt recording).
    pub fn new(
        source: &dyn FrameSource,
        fallback_venue: Option<Venue>,
        instruments: Instruments,
    ) -> Self {
        let mut t = Self {
            ctx: Vec::with_capacity(RESERVED_CONNECTIONS),
            fallback_venue,
            instruments,
            planned: Vec::new(),
            learning: Vec::with_capacity(RESERVED_CONNECTIONS),
        };
        t.refresh(source);
        t
    }

    /// A table whose connections take the venue and default symbol a survey of the same
    /// recording found (where it found one), else as [`ConnTable::new`].
    pub fn with_survey(
        source: &dyn FrameSource,
        fallback_venue: Option<Venue>,
        instruments: Instruments,
        survey: &pinion_feed::survey::Survey,
    ) -> Self {
        // Every connection the first pass saw has its slot before the run: one that opens
        // mid-stream (a capture's second WebSocket) finds room.
        let slots = survey.conns.len().max(RESERVED_CONNECTIONS);
        let mut t = Self {
            ctx: Vec::with_capacity(slots),
            fallback_venue,
            instruments,
            planned: survey
                .conns
                .iter()
                .map(|c| c.venue.map(|v| (v, c.default_symbol)))
                .collect(),
            learning: Vec::with_capacity(slots),
        };
        t.refresh(source);
        t
    }

    /// Re-reads the source's connections (a capture discovers them as it goes). Allocates
    /// nothing while the connections fit the slots reserved at start-up (those the first pass
    /// saw, and at least [`RESERVED_CONNECTIONS`]).
    pub fn refresh(&mut self, source: &dyn FrameSource) {
        for info in source.connections() {
            let i = usize::from(info.id.0);
            if self.ctx.len() <= i {
                self.ctx.resize(i + 1, None);
                self.learning.resize(i + 1, Learn::Fixed);
            }
            if self.learning[i] != Learn::Fixed && self.ctx[i].is_some() {
                // Learning (or learnt) from its traffic: keep what it found.
                continue;
            }
            if let Some(Some((venue, symbol))) = self.planned.get(i) {
                let by_symbol = symbol.and_then(|s| self.instruments.lookup(*venue, s.as_bytes()));
                self.ctx[i] = Some(ConnCtx {
                    venue: *venue,
                    default_instrument: by_symbol
                        .or_else(|| default_instrument(&self.instruments, *venue, &info.url)),
                });
                continue;
            }
            let venue = info
                .venue
                .or_else(|| Venue::from_url(&info.url))
                .or(self.fallback_venue);
            self.ctx[i] = venue.map(|v| ConnCtx {
                venue: v,
                default_instrument: default_instrument(&self.instruments, v, &info.url),
            });
            if self.ctx[i].is_some_and(|c| c.default_instrument.is_none()) {
                self.learning[i] = Learn::Open;
            }
        }
    }

    /// Whether `conn`'s depth events should be shown to [`ConnTable::saw_depth`]: its
    /// default instrument was not decided at start-up.
    #[inline]
    pub fn learning(&self, conn: ConnId) -> bool {
        matches!(
            self.learning.get(usize::from(conn.0)),
            Some(Learn::Open | Learn::Learned)
        )
    }

    /// A depth event of `instrument` came on `conn`: the first makes it the default of
    /// payloads that name none (a REST snapshot body interleaved with the stream); a second
    /// instrument makes the connection ambiguous, and the default is dropped.
    pub fn saw_depth(&mut self, conn: ConnId, instrument: pinion_core::InstrumentId) {
        let i = usize::from(conn.0);
        let (Some(learn), Some(Some(ctx))) = (self.learning.get_mut(i), self.ctx.get_mut(i)) else {
            return;
        };
        match *learn {
            Learn::Open => {
                ctx.default_instrument = Some(instrument);
                *learn = Learn::Learned;
            }
            Learn::Learned if ctx.default_instrument != Some(instrument) => {
                ctx.default_instrument = None;
                *learn = Learn::Ambiguous;
            }
            _ => {}
        }
    }

    /// The decoding context of a connection, if its venue is known.
    #[inline]
    pub fn get(&self, conn: ConnId) -> Option<&ConnCtx> {
        self.ctx.get(usize::from(conn.0)).and_then(Option::as_ref)
    }
}

/// The instrument of a connection's symbol-less payloads: the venue's only instrument, else the
/// longest symbol that appears as a whole word in the connection's URL or file name
/// (`spot-btcusdt-20240808.hbt.gz`, `…/ws/btcusdt@depth`), in any letter case. Allocates
/// nothing: the feed stage calls it when a capture's connection opens mid-stream.
pub fn default_instrument(
    instruments: &Instruments,
    venue: Venue,
    url: &str,
) -> Option<InstrumentId> {
    let mut of_venue = instruments.iter().filter(|(_, s)| s.venue == venue);
    let first = of_venue.next()?;
    if of_venue.next().is_none() {
        return Some(first.0);
    }
    let words = url
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    instruments
        .iter()
        .filter(|(_, s)| {
            s.venue == venue
                && words
                    .clone()
                    .any(|w| w.eq_ignore_ascii_case(s.symbol.as_str()))
        })
        .max_by_key(|(_, s)| s.symbol.len())
        .map(|(id, _)| id)
}

/// A frame read from the source but not yet due (paced replay), in buffers the stage owns.
#[derive(Debug, Default)]
struct HeldRecord {
    due: u64,
    t_recv: u64,
    conn: ConnId,
    kind: Option<RecordKind>,
    meta: Vec<u8>,
    payload: Vec<u8>,
}

/// Counters of the feed stage.
#[derive(Debug, Default, Clone, Copy)]
struct FeedCounts {
    records: u64,
    frames: u64,
    events: u64,
    resyncs: u64,
    http: u64,
    unknown_venue: u64,
    source_errors: u64,
    consecutive_errors: u32,
    /// Records whose decoding was a problem (decode errors, REST error bodies).
    decode_problems: u64,
    stopped_early: u64,
}

/// The feed stage. See the module docs.
pub struct FeedStage {
    source: Box<dyn FrameSource + Send>,
    decoder: Decoder,
    conns: ConnTable,
    pacer: Pacer,
    out: Outbox<MarketMsg>,
    held: HeldRecord,
    stop: Arc<AtomicBool>,
    progress: Arc<ProgressCounters>,
    max_records: u64,
    counts: FeedCounts,
    last_source_error: Option<String>,
    /// Every problem, counted and sampled.
    problems: ProblemLog,
    /// The problem the record in hand turned out to be, completed with the source's line once
    /// the record's borrow of the source has ended. Boxed (at start-up) so the stage's hot
    /// fields stay close together.
    pending: Box<Option<Problem>>,
    /// Where the log's summary goes at the end.
    problem_summary: Handoff<ProblemSummary>,
    ended: bool,
    /// Per record: release (`t0`) to the last event entering the ring.
    service: Recorder,
    /// Paced: how late a frame was released against its schedule.
    lateness: Recorder,
    /// The last handled record's histogram values, recorded at the start of the next poll:
    /// its events are in the ring, and the book stage, which may share the thread, should
    /// have them before the bookkeeping is done.
    unrecorded: Option<Unrecorded>,
}

/// See [`FeedStage::unrecorded`].
#[derive(Debug, Clone, Copy)]
struct Unrecorded {
    /// Release time.
    t0: u64,
    /// When the last event was in the ring.
    end: u64,
    /// When the record was due (paced).
    due: u64,
}

impl std::fmt::Debug for FeedStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedStage")
            .field("counts", &self.counts)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Everything the feed stage is built from.
pub struct FeedParts {
    /// The source.
    pub source: Box<dyn FrameSource + Send>,
    /// The decoder (holding the instrument registry).
    pub decoder: Decoder,
    /// How each connection decodes.
    pub conns: ConnTable,
    /// Pacing.
    pub pacer: Pacer,
    /// The ring to the book stage.
    pub out: Outbox<MarketMsg>,
    /// Set by Ctrl-C.
    pub stop: Arc<AtomicBool>,
    /// Counters the progress monitor reads.
    pub progress: Arc<ProgressCounters>,
    /// Stop after this many records (0 = all).
    pub max_records: u64,
    /// Where source and decode problems are counted (and sent to `--errors-out`).
    pub problems: ProblemLog,
    /// Where the problems' summary goes at the end.
    pub problem_summary: Handoff<ProblemSummary>,
}

impl std::fmt::Debug for FeedParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedParts").finish_non_exhaustive()
    }
}

impl FeedStage {
    /// Builds the stage; everything it needs is allocated here.
    pub fn new(parts: FeedParts) -> Self {
        Self {
            source: parts.source,
            decoder: parts.decoder,
            conns: parts.conns,
            pacer: parts.pacer,
            out: parts.out,
            held: HeldRecord {
                meta: Vec::with_capacity(1 << 10),
                payload: Vec::with_capacity(1 << 16),
                ..HeldRecord::default()
            },
            stop: parts.stop,
            progress: parts.progress,
            max_records: parts.max_records,
            counts: FeedCounts::default(),
            last_source_error: None,
            problems: parts.problems,
            pending: Box::new(None),
            problem_summary: parts.problem_summary,
            ended: false,
            service: Recorder::new("feed.service"),
            lateness: Recorder::new("feed.release_lateness"),
            unrecorded: None,
        }
    }

    fn end(&mut self) {
        self.out.queue(MarketMsg::End, 0);
        self.ended = true;
    }

    /// Reads the next record and either handles it now or holds it until it is due; false when
    /// a live source had nothing.
    fn read_next(&mut self) -> bool {
        let read = {
            let Self {
                source,
                decoder,
                conns,
                pacer,
                out,
                held,
                counts,
                pending,
                ..
            } = self;
            let live = !source.at_end();
            match source.next_record() {
                Ok(None) if live => Read::Idle,
                Ok(None) => Read::End,
                Err(e) => Read::Error(e),
                Ok(Some(rec)) => {
                    // The frame is in hand now: this is its `t0` if it is due.
                    let now = now_ns();
                    counts.consecutive_errors = 0;
                    counts.records += 1;
                    let due = pacer.due(rec.t_recv, now);
                    let known = conns.get(rec.conn).is_some() || is_connection_record(rec.kind);
                    if due <= now && known {
                        handle(decoder, conns, out, counts, pending, &rec, now);
                        Read::Handled { t0: now, due }
                    } else {
                        held.hold(&rec, due);
                        Read::Held { known }
                    }
                }
            }
        };
        match read {
            Read::Idle => return false,
            Read::End => self.end(),
            Read::Error(e) => {
                self.counts.source_errors += 1;
                self.counts.consecutive_errors += 1;
                self.source_problem(&e);
                // Rare, and the only record of what failed: formatting here is acceptable.
                self.last_source_error = Some(e.to_string());
                if self.counts.consecutive_errors >= MAX_CONSECUTIVE_SOURCE_ERRORS {
                    self.end();
                }
            }
            Read::Handled { t0, due } => {
                let end = now_ns();
                self.record_pending();
                self.record_unrecorded();
                self.unrecorded = Some(Unrecorded { t0, end, due });
                self.progress.set_records(self.counts.records);
            }
            Read::Held { known } => {
                if !known {
                    // A connection the source had not announced: look again, once.
                    self.conns.refresh(&*self.source);
                }
                let now = now_ns();
                if self.held.due <= now {
                    self.release_held(now);
                }
            }
        }
        true
    }

    /// The ordinal of the last item the source gave: records and read errors, in order.
    fn ordinal(&self) -> u64 {
        self.counts.records + self.counts.source_errors
    }

    /// Logs a read error, with the line it came from where the format has lines.
    #[cold]
    #[inline(never)]
    fn source_problem(&mut self, e: &pinion_feed::SourceError) {
        let mut p = Problem::new(ProblemKind::of_source(e), Subject::Input).with_detail(e);
        p.record = Some(self.ordinal());
        if let Some(line) = self.source.last_line() {
            p.line = Some(line.number);
            p = p.with_text(line.text);
        } else {
            p.position = match e {
                pinion_feed::SourceError::Io(_)
                | pinion_feed::SourceError::UnknownFormat { .. } => None,
                pinion_feed::SourceError::Format { position, .. }
                | pinion_feed::SourceError::Truncated { position, .. }
                | pinion_feed::SourceError::Checksum { position, .. } => Some(*position),
            };
        }
        self.problems.record(p);
    }

    /// Logs the problem the last handled record was, if any.
    #[inline]
    fn record_pending(&mut self) {
        // Tested in place: taking the option would move the whole problem for every record.
        if self.pending.is_some() {
            self.log_pending();
        }
    }

    /// Logs the pending problem with the source's line for it (the source has not moved on: a
    /// held record is released before the next read).
    #[cold]
    #[inline(never)]
    fn log_pending(&mut self) {
        if let Some(mut p) = self.pending.take() {
            p.record = Some(self.ordinal());
            if let Some(line) = self.source.last_line() {
                p.line = Some(line.number);
            }
            self.problems.record(p);
        }
    }

    /// Records the values of the last record handled, left for later (see
    /// [`FeedStage::unrecorded`]).
    #[inline]
    fn record_unrecorded(&mut self) {
        if let Some(u) = self.unrecorded.take() {
            self.service.record_between(u.t0, u.end);
            if !self.pacer.is_max() {
                self.lateness.record_between(u.due, u.t0);
            }
        }
    }

    /// Decodes the held record, stamping `t0 = now`.
    fn release_held(&mut self, now: u64) {
        let Some(kind) = self.held.kind.take() else {
            return;
        };
        let due = self.held.due;
        let rec = RawRecord {
            t_recv: self.held.t_recv,
            conn: self.held.conn,
            kind,
            meta: &self.held.meta,
            payload: &self.held.payload,
        };
        handle(
            &mut self.decoder,
            &mut self.conns,
            &mut self.out,
            &mut self.counts,
            &mut self.pending,
            &rec,
            now,
        );
        let end = now_ns();
        self.record_pending();
        self.record_unrecorded();
        self.unrecorded = Some(Unrecorded { t0: now, end, due });
        self.progress.set_records(self.counts.records);
    }
}

/// What reading one record led to.
enum Read {
    /// A live source has nothing now.
    Idle,
    End,
    Error(pinion_feed::SourceError),
    Handled {
        t0: u64,
        due: u64,
    },
    Held {
        known: bool,
    },
}

impl HeldRecord {
    fn hold(&mut self, rec: &RawRecord<'_>, due: u64) {
        self.due = due;
        self.t_recv = rec.t_recv;
        self.conn = rec.conn;
        self.kind = Some(rec.kind);
        self.meta.clear();
        self.meta.extend_from_slice(rec.meta);
        self.payload.clear();
        self.payload.extend_from_slice(rec.payload);
    }
}

fn is_connection_record(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Connect | RecordKind::Disconnect | RecordKind::Gap
    )
}

/// Turns one record into messages for the book stage; a record that is a problem is left in
/// `pending` for the caller to log.
#[inline]
fn handle(
    decoder: &mut Decoder,
    conns: &mut ConnTable,
    out: &mut Outbox<MarketMsg>,
    counts: &mut FeedCounts,
    pending: &mut Option<Problem>,
    rec: &RawRecord<'_>,
    t0: u64,
) {
    if is_connection_record(rec.kind) {
        counts.resyncs += 1;
        // A gap record naming a symbol (a live stream found stale) concerns that book alone.
        let instrument = if rec.kind == RecordKind::Gap && !rec.meta.is_empty() {
            conns
                .get(rec.conn)
                .and_then(|ctx| decoder.instruments().lookup(ctx.venue, rec.meta))
        } else {
            None
        };
        out.queue(
            MarketMsg::Resync {
                conn: rec.conn,
                instrument,
                t0,
            },
            rec.t_recv,
        );
        return;
    }
    if rec.kind == RecordKind::Http {
        // Instrument lists and other REST answers were read at start-up; nothing here for the
        // book (and their connection need not have a venue: one REST client serves several).
        counts.http += 1;
        return;
    }
    let Some(ctx) = conns.get(rec.conn) else {
        counts.unknown_venue += 1;
        unknown_venue_problem(pending, rec);
        return;
    };
    counts.frames += 1;
    let learning = conns.learning(rec.conn);
    let mut depth_of = None;
    // Decode errors and skips are counted by the decoder itself; the problems among them are
    // logged too.
    match decoder.decode(ctx, rec, t0, |ev| {
        if learning && ev.kind == pinion_core::EventKind::Depth {
            depth_of = Some(ev.instrument);
        }
        out.send(MarketMsg::Event(*ev), ev.t_recv, now_ns())
    }) {
        Ok(Decoded::Events(n)) => counts.events += u64::from(n),
        Ok(Decoded::Skipped(SkipReason::ErrorResponse)) => {
            counts.decode_problems += 1;
            decode_problem(
                pending,
                ProblemKind::RestError,
                "a REST error body where an order book snapshot was expected",
                decoder,
                ctx,
                rec,
            );
        }
        Ok(Decoded::Skipped(_)) => {}
        Err(e) => {
            counts.decode_problems += 1;
            decode_problem(pending, ProblemKind::of_parse(e), e, decoder, ctx, rec);
        }
    }
    if let Some(id) = depth_of {
        conns.saw_depth(rec.conn, id);
    }
}

/// Leaves in `pending` a record that could not be decoded, about the instrument it named if the
/// decoder got that far (a REST snapshot is its connection's default instrument's), else its
/// connection. Out of line, so the record path's code stays small.
#[cold]
#[inline(never)]
fn decode_problem(
    pending: &mut Option<Problem>,
    kind: ProblemKind,
    detail: impl std::fmt::Display,
    decoder: &Decoder,
    ctx: &ConnCtx,
    rec: &RawRecord<'_>,
) {
    let instrument = decoder
        .last_instrument()
        .or(if rec.kind == RecordKind::RestSnapshot {
            ctx.default_instrument
        } else {
            None
        });
    let subject = instrument.map_or(Subject::Connection(rec.conn), Subject::Instrument);
    let mut p = Problem::new(kind, subject)
        .with_detail(detail)
        .with_text(rec.payload);
    p.t_recv = Some(rec.t_recv);
    *pending = Some(p);
}

/// Leaves in `pending` a frame of a connection whose venue nobody could name.
#[cold]
#[inline(never)]
fn unknown_venue_problem(pending: &mut Option<Problem>, rec: &RawRecord<'_>) {
    let mut p = Problem::new(ProblemKind::UnknownVenue, Subject::Connection(rec.conn))
        .with_detail(format_args!(
            "the venue of connection {} is unknown (name it with --venue)",
            rec.conn.0
        ))
        .with_text(rec.payload);
    p.t_recv = Some(rec.t_recv);
    *pending = Some(p);
}

impl Stage for FeedStage {
    fn name(&self) -> &'static str {
        "feed"
    }

    fn poll(&mut self) -> Progress {
        self.record_unrecorded();
        let now = now_ns();
        if !self.out.flush(now) {
            return Progress::Idle;
        }
        if self.ended {
            return Progress::Done;
        }
        if self.held.kind.is_some() {
            if self.stop.load(Ordering::Relaxed) {
                self.counts.stopped_early = 1;
                self.held.kind = None;
                self.end();
                return Progress::Busy;
            }
            if now < self.held.due {
                return Progress::Idle;
            }
            self.release_held(now);
            self.out.flush(now_ns());
            return Progress::Busy;
        }
        // `max`: several records per poll while the ring takes them, so on a shared thread the
        // other stages work through batches, not one record per round. Paced: one, so a feed
        // that is catching up after a stall does not hold a released frame's events back from
        // the book while it decodes the frames behind it (that wait counts in their latency).
        let batch = if self.pacer.is_max() { READ_BATCH } else { 1 };
        for i in 0..batch {
            if self.stop.load(Ordering::Relaxed) {
                self.counts.stopped_early = 1;
                self.end();
            } else if self.max_records != 0 && self.counts.records >= self.max_records {
                self.end();
            } else if !self.read_next() {
                // A live source with nothing now: the thread's wait strategy takes over.
                self.out.flush(now_ns());
                return if i == 0 {
                    Progress::Idle
                } else {
                    Progress::Busy
                };
            }
            if self.ended || self.held.kind.is_some() || !self.out.flush(now_ns()) {
                break;
            }
        }
        self.out.flush(now_ns());
        Progress::Busy
    }

    fn live_counts(&self) -> Option<LiveCounts> {
        let c = &self.counts;
        Some(LiveCounts {
            messages: c.events,
            errors: c.decode_problems + c.source_errors + c.unknown_venue,
            backpressure: self.out.backpressure(),
            input_queued: 0,
        })
    }

    fn live_latency(&self) -> Vec<LiveLatency> {
        vec![self.service.live(), self.lateness.live()]
    }

    fn finish(&mut self) -> StageReport {
        self.record_unrecorded();
        let mut r = StageReport::new("feed");
        let c = self.counts;
        let stats = *self.decoder.stats();
        r.counters = vec![
            ("records", c.records),
            ("frames", c.frames),
            ("events", c.events),
            ("resync_records", c.resyncs),
            ("http_records", c.http),
            ("unknown_venue", c.unknown_venue),
            ("source_errors", c.source_errors),
            ("stopped_early", c.stopped_early),
            ("pacing_jumps", self.pacer.jumps()),
            ("pacing_skipped_ns", self.pacer.skipped_ns()),
            ("messages_decoded", stats.messages.total()),
            ("records_skipped", stats.skipped.total()),
            ("decode_errors", stats.errors.total()),
            ("decode_problems", c.decode_problems),
            ("sent", self.out.sent()),
            ("backpressure", self.out.backpressure()),
        ];
        r.histograms = vec![self.service.take()];
        if !self.pacer.is_max() {
            r.histograms.push(self.lateness.take());
        }
        // The report shows the problems themselves; the writer may finish once this lets go.
        self.problems.close();
        self.problem_summary.push(self.problems.summary());
        r
    }
}

impl FeedStage {
    /// The last source error's text, if any (for the report).
    pub fn last_source_error(&self) -> Option<&str> {
        self.last_source_error.as_deref()
    }
}
