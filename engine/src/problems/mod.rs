//! What went wrong with a replay's input: every source, decode and sync problem, counted by
//! kind and by what it was about (an instrument, else the connection, else the input), with the
//! first [`SAMPLES_PER_KIND`] of each kind kept whole for the report, and every one of them
//! optionally written to a file ([`errors_out`]).
//!
//! Invariants:
//! - Nothing here runs for a good message: a stage calls [`ProblemLog::record`] only on its
//!   error path, and the counters the hot path keeps stay where they were.
//! - Recording allocates nothing and does no I/O: the count table and the sample slots are
//!   allocated by [`ProblemLog::new`]; a [`Problem`] holds its raw text (cut to [`TEXT_BYTES`])
//!   and its description in fixed-size buffers; a problem bound for the file is pushed by value
//!   into a preallocated single-producer ring that a writer thread drains. When that ring is
//!   full the problem is missing from the file only; the log counts it and the report says so.

pub mod errors_out;
mod log;

use std::fmt;

use arrayvec::{ArrayString, ArrayVec};
use pinion_book::SyncOutcome;
use pinion_core::{ConnId, InstrumentId, Instruments};
use pinion_feed::SourceError;
use pinion_feed::parse::ParseError;

pub use log::{ProblemCount, ProblemLog, ProblemSummary};

/// Raw text kept per problem, in bytes (a longer record is cut, and its full length kept).
pub const TEXT_BYTES: usize = 200;
/// The description kept per problem, in bytes.
pub const DETAIL_BYTES: usize = 160;
/// Problems of each kind kept whole for the report.
pub const SAMPLES_PER_KIND: usize = 5;

/// The three families of problems, for summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemClass {
    /// The recording could not be read at some point (bad line, truncation, checksum).
    Source,
    /// A record was read but is not a well-formed message of its venue, or cannot be placed.
    Decode,
    /// A book lost sync (gap, crossed book, …).
    Sync,
}

impl ProblemClass {
    /// A stable word for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Decode => "decode",
            Self::Sync => "sync",
        }
    }

    /// Whether a problem of this family means the input itself is damaged (a sync problem
    /// may be the venue's own doing, and counts as damage only if the book ends unsynced).
    pub const fn is_damage(self) -> bool {
        matches!(self, Self::Source | Self::Decode)
    }
}

macro_rules! problem_kinds {
    ($($(#[$doc:meta])* $kind:ident = $name:literal, $class:ident;)*) => {
        /// What went wrong. [`ProblemKind::name`] is the stable word reports use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ProblemKind {
            $($(#[$doc])* $kind,)*
        }

        impl ProblemKind {
            /// Every kind, in report order.
            pub const ALL: &'static [ProblemKind] = &[$(Self::$kind,)*];

            /// A stable name, `<class>.<what>` (`decode.bad_number`, `sync.gap`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }

            /// The kind's family.
            pub const fn class(self) -> ProblemClass {
                match self {
                    $(Self::$kind => ProblemClass::$class,)*
                }
            }
        }
    };
}

problem_kinds! {
    /// Reading failed ([`SourceError::Io`]).
    SourceIo = "source.io", Source;
    /// A record that is not in the source's format ([`SourceError::Format`]).
    SourceFormat = "source.format", Source;
    /// The input ends inside a record or a compressed stream ([`SourceError::Truncated`]).
    SourceTruncated = "source.truncated", Source;
    /// A record whose checksum does not match ([`SourceError::Checksum`]).
    SourceChecksum = "source.checksum", Source;
    /// Input in no format pinion reads ([`SourceError::UnknownFormat`]).
    SourceUnknownFormat = "source.unknown_format", Source;
    /// A frame on a connection whose venue is unknown: it cannot be decoded at all.
    UnknownVenue = "decode.unknown_venue", Decode;
    /// A REST error body where an order book snapshot was expected.
    RestError = "decode.rest_error", Decode;
    /// [`ParseError::Json`].
    Json = "decode.json", Decode;
    /// [`ParseError::FrameTooLarge`].
    FrameTooLarge = "decode.frame_too_large", Decode;
    /// [`ParseError::MissingField`].
    MissingField = "decode.missing_field", Decode;
    /// [`ParseError::WrongType`].
    WrongType = "decode.wrong_type", Decode;
    /// [`ParseError::BadNumber`].
    BadNumber = "decode.bad_number", Decode;
    /// [`ParseError::BadId`].
    BadId = "decode.bad_id", Decode;
    /// [`ParseError::BadTime`].
    BadTime = "decode.bad_time", Decode;
    /// [`ParseError::BadValue`].
    BadValue = "decode.bad_value", Decode;
    /// [`ParseError::BadLevel`].
    BadLevel = "decode.bad_level", Decode;
    /// [`ParseError::OutOfRange`]: a price, or a trade's or best level's quantity, at or
    /// below zero; a negative level quantity.
    OutOfRange = "decode.out_of_range", Decode;
    /// [`ParseError::Sbe`]: a Binance SBE frame that is not a well-formed stream message.
    Sbe = "decode.sbe", Decode;
    /// [`ParseError::Unrepresentable`]: an SBE price or quantity not exact at the instrument's
    /// scale.
    Unrepresentable = "decode.unrepresentable", Decode;
    /// Updates were missed between the book and a message.
    Gap = "sync.gap", Sync;
    /// The book was crossed or locked after a whole message.
    Crossed = "sync.crossed", Sync;
    /// A book ticker with the book's update id showed other best levels than the book.
    TickerMismatch = "sync.ticker_mismatch", Sync;
    /// A split message was cut short.
    Truncated = "sync.truncated", Sync;
    /// The venue restarted its book (Bybit `u == 1` on a delta).
    VenueReset = "sync.venue_reset", Sync;
    /// The book refused a level (off its grid, out of range).
    RejectedLevel = "sync.rejected_level", Sync;
    /// The connection feeding a live book was reopened, closed or lost frames.
    Reconnect = "sync.reconnect", Sync;
}

impl ProblemKind {
    /// How many kinds there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The kind's index in [`ProblemKind::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind of a source error.
    pub const fn of_source(e: &SourceError) -> Self {
        match e {
            SourceError::Io(_) => Self::SourceIo,
            SourceError::Format { .. } => Self::SourceFormat,
            SourceError::Truncated { .. } => Self::SourceTruncated,
            SourceError::Checksum { .. } => Self::SourceChecksum,
            SourceError::UnknownFormat { .. } => Self::SourceUnknownFormat,
        }
    }

    /// The kind of a decode error.
    pub const fn of_parse(e: ParseError) -> Self {
        match e {
            ParseError::Json => Self::Json,
            ParseError::FrameTooLarge => Self::FrameTooLarge,
            ParseError::MissingField(_) => Self::MissingField,
            ParseError::WrongType(_) => Self::WrongType,
            ParseError::BadNumber { .. } => Self::BadNumber,
            ParseError::BadId(_) => Self::BadId,
            ParseError::BadTime(_) => Self::BadTime,
            ParseError::BadValue(_) => Self::BadValue,
            ParseError::BadLevel(_) => Self::BadLevel,
            ParseError::OutOfRange { .. } => Self::OutOfRange,
            ParseError::Sbe(_) => Self::Sbe,
            ParseError::Unrepresentable { .. } => Self::Unrepresentable,
        }
    }

    /// The kind of a sync outcome that is a problem (`None` for the ordinary ones).
    pub const fn of_sync(outcome: &SyncOutcome) -> Option<Self> {
        Some(match outcome {
            SyncOutcome::Gap { .. } => Self::Gap,
            SyncOutcome::Crossed { .. } => Self::Crossed,
            SyncOutcome::TickerMismatch { .. } => Self::TickerMismatch,
            SyncOutcome::Truncated => Self::Truncated,
            SyncOutcome::VenueReset => Self::VenueReset,
            SyncOutcome::Rejected(_) => Self::RejectedLevel,
            SyncOutcome::Applied { .. }
            | SyncOutcome::Buffered
            | SyncOutcome::Stale
            | SyncOutcome::Duplicate
            | SyncOutcome::Unsynced
            | SyncOutcome::Ignored => return None,
        })
    }
}

/// What a problem was about: the most specific thing known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// An instrument (the record named it before it failed).
    Instrument(InstrumentId),
    /// A connection, when the instrument is not known.
    Connection(ConnId),
    /// Neither is known (a line of the file that could not be read).
    Input,
}

impl Subject {
    /// `binance-spot BTCUSDT`, `unknown instrument on connection 2`, `the input`.
    pub fn describe(self, instruments: &Instruments) -> String {
        match self {
            Self::Instrument(id) => instruments.get(id).map_or_else(
                || format!("instrument #{}", id.0),
                |s| format!("{} {}", s.venue, s.symbol),
            ),
            Self::Connection(c) => format!("unknown instrument on connection {}", c.0),
            Self::Input => String::from("the input"),
        }
    }
}

/// One problem, whole: what, about what, where in the input, and the raw text. Every field is
/// inline (no heap), so it can be kept in a preallocated slot and sent through a ring.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What went wrong.
    pub kind: ProblemKind,
    /// What it was about.
    pub subject: Subject,
    /// The 1-based ordinal of the item the source gave (records and read errors alike, in
    /// order), when a source item is at fault.
    pub record: Option<u64>,
    /// The 1-based line, for line-based formats.
    pub line: Option<u64>,
    /// For read errors of formats without lines: the position the source gave, in its own unit
    /// (byte offset or record number).
    pub position: Option<u64>,
    /// The receive time of the record or event at fault, ns since the epoch.
    pub t_recv: Option<u64>,
    /// What exactly is wrong (the error's own words), cut to [`DETAIL_BYTES`].
    pub detail: ArrayString<DETAIL_BYTES>,
    /// The first [`TEXT_BYTES`] bytes of the record at fault.
    pub text: ArrayVec<u8, TEXT_BYTES>,
    /// The full length of that record, bytes (more than `text` holds when it was cut).
    pub text_len: usize,
}

impl Problem {
    /// A problem of `kind` about `subject`, with nothing else known yet.
    pub fn new(kind: ProblemKind, subject: Subject) -> Self {
        Self {
            kind,
            subject,
            record: None,
            line: None,
            position: None,
            t_recv: None,
            detail: ArrayString::new(),
            text: ArrayVec::new(),
            text_len: 0,
        }
    }

    /// Sets the description from `what`'s `Display`, cut to fit (no allocation).
    pub fn with_detail(mut self, what: impl fmt::Display) -> Self {
        self.detail.clear();
        let _ = fmt::write(&mut Cut(&mut self.detail), format_args!("{what}"));
        self
    }

    /// Keeps the first [`TEXT_BYTES`] bytes of `raw` and its length.
    pub fn with_text(mut self, raw: &[u8]) -> Self {
        self.text.clear();
        let n = raw.len().min(TEXT_BYTES);
        let _ = self.text.try_extend_from_slice(&raw[..n]);
        self.text_len = raw.len();
        self
    }

    /// The raw text as printable text (see [`escape`]), with `…` when it was cut.
    pub fn display_text(&self) -> String {
        let mut s = escape(&self.text);
        if self.text_len > self.text.len() {
            s.push('…');
        }
        s
    }

    /// Where in the input, in words: `record 12, line 14`, `position 4096`, or empty.
    pub fn place(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.record {
            parts.push(format!("record {r}"));
        }
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(p) = self.position {
            parts.push(format!("position {p}"));
        }
        parts.join(", ")
    }
}

/// A `fmt::Write` into a fixed string that keeps what fits and drops the rest, cutting only
/// at a character boundary.
struct Cut<'a, const N: usize>(&'a mut ArrayString<N>);

impl<const N: usize> fmt::Write for Cut<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.0.remaining_capacity();
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        Ok(())
    }
}

/// Raw bytes as one line of printable text: valid UTF-8 is kept (apart from control
/// characters), a backslash is doubled, line ends and tabs are `\n`, `\r`, `\t`, and every other
/// byte is `\xNN`. Distinct inputs stay distinct.
pub fn escape(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names_in_their_class() {
        let mut names: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.name()).collect();
        for k in ProblemKind::ALL {
            assert!(k.name().starts_with(k.class().name()), "{}", k.name());
            assert_eq!(ProblemKind::ALL[k.index()], *k);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ProblemKind::COUNT);
    }

    #[test]
    fn text_is_cut_and_escaped() {
        let raw: Vec<u8> = b"1 {\"a\":\"\xff\"}\t\\"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'x', 300))
            .collect();
        let p = Problem::new(ProblemKind::Json, Subject::Input).with_text(&raw);
        assert_eq!(p.text.len(), TEXT_BYTES);
        assert_eq!(p.text_len, raw.len());
        let shown = p.display_text();
        assert!(
            shown.starts_with("1 {\"a\":\"\\xff\"}\\t\\\\xxx"),
            "{shown}"
        );
        assert!(shown.ends_with("x…"));
        assert_eq!(escape("é\u{1}\n".as_bytes()), "é\\x01\\n");
    }

    #[test]
    fn details_are_cut_at_a_character_boundary() {
        let long = "é".repeat(DETAIL_BYTES);
        let p = Problem::new(ProblemKind::Json, Subject::Input).with_detail(&long);
        assert_eq!(p.detail.len(), DETAIL_BYTES);
        assert!(p.detail.chars().all(|c| c == 'é'));
        let p = Problem::new(ProblemKind::Json, Subject::Input).with_detail(ParseError::Json);
        assert_eq!(p.detail.as_str(), "invalid JSON");
    }
}
