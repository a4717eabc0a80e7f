//! [`RawRecord`]: what every source yields, live or replayed.
//!
//! A source (a WebSocket connection, a recording, a pcap) produces records of
//! `(receive time, connection id, raw frame bytes)`, plus the REST responses and connection events
//! a recording holds. The parser sees the same records whatever the source, so replay runs the
//! production code path.

use crate::venue::Venue;

/// A connection within a source (one WebSocket session, one REST client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct ConnId(pub u16);

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A WebSocket text or binary frame's payload, as received.
    Frame = 0,
    /// A REST order book snapshot response body (`GET /api/v3/depth`, `/fapi/v1/depth`,
    /// `/v5/market/orderbook`). `meta` holds the request URL when known.
    RestSnapshot = 1,
    /// Any other REST response (`exchangeInfo`, `instruments-info`); `meta` holds the URL.
    Http = 2,
    /// The connection was (re)opened: a book fed by it must resync. `meta` holds the URL.
    Connect = 3,
    /// The connection was closed or lost.
    Disconnect = 4,
    /// The recorder lost frames here (its ring was full): a book fed by this connection has a
    /// gap and must resync.
    Gap = 5,
}

impl RecordKind {
    /// The kind for its `u8` value.
    pub const fn from_u8(v: u8) -> Option<RecordKind> {
        match v {
            0 => Some(RecordKind::Frame),
            1 => Some(RecordKind::RestSnapshot),
            2 => Some(RecordKind::Http),
            3 => Some(RecordKind::Connect),
            4 => Some(RecordKind::Disconnect),
            5 => Some(RecordKind::Gap),
            _ => None,
        }
    }
}

/// One record from a source. Borrows the source's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// Receive time, ns since the Unix epoch.
    pub t_recv: u64,
    /// The connection it came from.
    pub conn: ConnId,
    /// What it carries.
    pub kind: RecordKind,
    /// Context: the request URL for REST records, the URL for `Connect`; empty for frames.
    pub meta: &'a [u8],
    /// The payload bytes (frame text, response body).
    pub payload: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// A record of `kind` received at `t_recv` on `conn`.
    pub const fn new(
        t_recv: u64,
        conn: ConnId,
        kind: RecordKind,
        meta: &'a [u8],
        payload: &'a [u8],
    ) -> Self {
        Self {
            t_recv,
            conn,
            kind,
            meta,
            payload,
        }
    }
}

/// What a source knows about one of its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The id its records carry.
    pub id: ConnId,
    /// The venue, when the source can tell (from the URL, the file name or the config).
    pub venue: Option<Venue>,
    /// The URL or a description.
    pub url: String,
}
