//! Counters of what the decoder saw: messages per kind, events, skips and errors per reason.
//!
//! Plain integers updated in place: no allocation, no atomics (the decoder belongs to one feed
//! thread; a metrics reader gets a copy at the stage's own pace).

use super::{ParseError, SkipReason};

/// Decoded exchange messages, per message type (not per event: a split snapshot counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Incremental depth updates (Binance `depthUpdate`, Bybit `delta`).
    pub depth: u64,
    /// Full books (REST snapshots, Bybit `snapshot`).
    pub snapshot: u64,
    /// Top-N books (Binance `depth5/10/20`).
    pub partial_depth: u64,
    /// Best bid/ask updates (`bookTicker`).
    pub book_ticker: u64,
    /// Trade messages (Binance `trade`, Bybit `publicTrade`; one Bybit message may hold many).
    pub trade: u64,
    /// Aggregate trades (Binance `aggTrade`).
    pub agg_trade: u64,
    /// Candles (Binance `kline`, Bybit `kline`; one Bybit message may hold two).
    pub kline: u64,
    /// 24-hour tickers (Binance `24hrTicker`, `24hrMiniTicker`, Bybit `tickers`).
    pub ticker: u64,
}

impl MessageCounts {
    /// All decoded messages.
    pub fn total(&self) -> u64 {
        self.depth
            + self.snapshot
            + self.partial_depth
            + self.book_ticker
            + self.trade
            + self.agg_trade
            + self.kline
            + self.ticker
    }
}

/// Records that produced no event, per [`SkipReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Streams or topics the decoder does not handle (liquidations, mark price, …).
    pub unknown_stream: u64,
    /// Symbols not in the instrument registry.
    pub unknown_instrument: u64,
    /// Subscribe replies, pongs, shutdown notices.
    pub control: u64,
    /// REST responses other than order book snapshots.
    pub other_http: u64,
    /// REST error bodies where a snapshot was expected.
    pub error_response: u64,
    /// Connect, disconnect and gap records (the caller acts on them).
    pub connection: u64,
    /// Binance SBE messages of a template the stream schema does not define.
    pub unknown_template: u64,
}

impl SkipCounts {
    fn record(&mut self, reason: SkipReason) {
        let c = match reason {
            SkipReason::UnknownStream => &mut self.unknown_stream,
            SkipReason::UnknownInstrument => &mut self.unknown_instrument,
            SkipReason::Control => &mut self.control,
            SkipReason::OtherHttp => &mut self.other_http,
            SkipReason::ErrorResponse => &mut self.error_response,
            SkipReason::Connection => &mut self.connection,
            SkipReason::UnknownTemplate => &mut self.unknown_template,
        };
        *c += 1;
    }

    /// All skipped records.
    pub fn total(&self) -> u64 {
        self.unknown_stream
            + self.unknown_instrument
            + self.control
            + self.other_http
            + self.error_response
            + self.connection
            + self.unknown_template
    }
}

/// Rejected frames, per [`ParseError`] variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// [`ParseError::Json`].
    pub json: u64,
    /// [`ParseError::FrameTooLarge`].
    pub frame_too_large: u64,
    /// [`ParseError::MissingField`].
    pub missing_field: u64,
    /// [`ParseError::WrongType`].
    pub wrong_type: u64,
    /// [`ParseError::BadNumber`].
    pub bad_number: u64,
    /// [`ParseError::BadId`].
    pub bad_id: u64,
    /// [`ParseError::BadTime`].
    pub bad_time: u64,
    /// [`ParseError::BadValue`].
    pub bad_value: u64,
    /// [`ParseError::BadLevel`].
    pub bad_level: u64,
    /// [`ParseError::OutOfRange`].
    pub out_of_range: u64,
    /// [`ParseError::Sbe`].
    pub sbe: u64,
    /// [`ParseError::Unrepresentable`].
    pub unrepresentable: u64,
}

impl ErrorCounts {
    fn record(&mut self, err: ParseError) {
        let c = match err {
            ParseError::Json => &mut self.json,
            ParseError::FrameTooLarge => &mut self.frame_too_large,
            ParseError::MissingField(_) => &mut self.missing_field,
            ParseError::WrongType(_) => &mut self.wrong_type,
            ParseError::BadNumber { .. } => &mut self.bad_number,
            ParseError::BadId(_) => &mut self.bad_id,
            ParseError::BadTime(_) => &mut self.bad_time,
            ParseError::BadValue(_) => &mut self.bad_value,
            ParseError::BadLevel(_) => &mut self.bad_level,
            ParseError::OutOfRange { .. } => &mut self.out_of_range,
            ParseError::Sbe(_) => &mut self.sbe,
            ParseError::Unrepresentable { .. } => &mut self.unrepresentable,
        };
        *c += 1;
    }

    /// All rejected frames.
    pub fn total(&self) -> u64 {
        self.json
            + self.frame_too_large
            + self.missing_field
            + self.wrong_type
            + self.bad_number
            + self.bad_id
            + self.bad_time
            + self.bad_value
            + self.bad_level
            + self.out_of_range
            + self.sbe
            + self.unrepresentable
    }
}

/// Everything the decoder counted since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Decoded messages per type.
    pub messages: MessageCounts,
    /// Events handed to the caller.
    pub events: u64,
    /// Records skipped, per reason.
    pub skipped: SkipCounts,
    /// Frames rejected, per error.
    pub errors: ErrorCounts,
    /// The most recent error, for diagnostics.
    pub last_error: Option<ParseError>,
}

impl DecodeStats {
    pub(super) fn record_skip(&mut self, reason: SkipReason) {
        self.skipped.record(reason);
    }

    pub(super) fn record_error(&mut self, err: ParseError) {
        self.errors.record(err);
        self.last_error = Some(err);
    }
}
