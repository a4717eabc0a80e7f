//! The journal's bytes: a file header, then frames of `[len u32][crc u32][payload]`, each
//! payload one [`Record`] (a kind byte and fixed fields, little-endian).
//!
//! Records are versioned by their kind byte: an order is written as kind 6 (its fields, then
//! its reason: strategy instance and code, a byte each); kind 2, the order before reasons, is
//! still read, with [`OrderReason::UNKNOWN`], so a journal begun by an older pinion replays and
//! is appended to as it is. A kind this pinion does not know is a [`JournalError::BadRecord`].
//!
//! The CRC (CRC-32, IEEE) covers the length bytes and the payload, so a frame whose length was
//! damaged does not pass for another. Reading ([`scan`]) tells two kinds of damage apart:
//!
//! - **A torn tail**: the last frame ends past the end of the file, or is complete but fails its
//!   CRC, or everything from some frame on is zero bytes. That is what a process killed in the
//!   middle of a write (or a file system that had allocated but not yet written the blocks)
//!   leaves; the bytes are cut off and the journal goes on from the last whole frame.
//! - **Corruption in the middle**: a frame that fails its check and is followed by more bytes.
//!   Nothing after it can be trusted to be in order, so reading stops with
//!   [`JournalError::Corrupt`] and the operator decides.

use pinion_core::{InstrumentId, Px, Qty};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderReason, OrderSide, OrderStatus,
    OrderType, ReasonCode, RejectReason, TimeInForce, VenueOrderId,
};

use super::{
    InstrumentKey, JournalError, OperatorAction, OperatorKind, PositionChange, Record, Session,
};

/// The file's first bytes: the format and its version.
pub const MAGIC: &[u8; 8] = b"PNJRNL01";

/// Bytes before a frame's payload: its length and its CRC.
pub const FRAME_HEADER: usize = 8;

/// The longest payload any record has; a longer length is damage, never a record.
pub const MAX_PAYLOAD: usize = 96;

const KIND_SESSION: u8 = 1;
/// An order without its reason (journals written before reasons): read, never written.
const KIND_ORDER_V1: u8 = 2;
const KIND_REPORT: u8 = 3;
const KIND_POSITION: u8 = 4;
const KIND_INSTRUMENT: u8 = 5;
/// An order with its reason.
const KIND_ORDER: u8 = 6;
/// What an operator did, and who.
const KIND_OPERATOR: u8 = 7;

const SESSION_LEN: usize = 1 + 16;
const ORDER_V1_LEN: usize = 1 + 8 * 5 + 2 + 4;
const ORDER_LEN: usize = ORDER_V1_LEN + 2;
const REPORT_LEN: usize = 1 + 8 + 8 + 2 + 1 + 2 + 8 * 4 + 1 + 8 + 8;
const POSITION_LEN: usize = 1 + 2 + 8 + 16 + 16 + 8;
const INSTRUMENT_LEN: usize = 1 + 2 + 8;
const OPERATOR_LEN: usize = 1 + 8 + 8 + 1 + 2 + 8 + 8 + 1 + 8 + 8 + 1;
const _: () = assert!(
    REPORT_LEN <= MAX_PAYLOAD && POSITION_LEN <= MAX_PAYLOAD && OPERATOR_LEN <= MAX_PAYLOAD
);

/// A frame's bytes, built without allocating.
#[derive(Debug, Clone, Copy)]
pub struct FrameBuf {
    bytes: [u8; FRAME_HEADER + MAX_PAYLOAD],
    len: usize,
}

impl FrameBuf {
    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Writes fields into a payload.
struct Put<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    fn i128(&mut self, v: i128) {
        self.bytes(&v.to_le_bytes());
    }
}

/// Reads fields from a payload of known length.
struct Get<'a> {
    b: &'a [u8],
    at: usize,
}

impl Get<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut v = [0u8; N];
        v.copy_from_slice(&self.b[self.at..self.at + N]);
        self.at += N;
        v
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    fn i128(&mut self) -> i128 {
        i128::from_le_bytes(self.take())
    }
}

/// `record` framed: length, CRC, payload.
pub fn encode(record: &Record) -> FrameBuf {
    let mut buf = FrameBuf {
        bytes: [0; FRAME_HEADER + MAX_PAYLOAD],
        len: 0,
    };
    let len = {
        let mut p = Put {
            out: &mut buf.bytes[FRAME_HEADER..],
            at: 0,
        };
        match record {
            Record::Session(s) => {
                p.u8(KIND_SESSION);
                p.u64(s.epoch);
                p.u64(s.started_unix_ns);
            }
            Record::Order(o) => {
                p.u8(KIND_ORDER);
                p.u64(o.t0);
                p.u64(o.client_id.0);
                p.u64(o.target.0);
                p.i64(o.px.0);
                p.i64(o.qty.0);
                p.u16(o.instrument.0);
                p.u8(o.action as u8);
                p.u8(o.side as u8);
                p.u8(o.order_type as u8);
                p.u8(o.tif as u8);
                p.u8(o.reason.strategy);
                p.u8(o.reason.code as u8);
            }
            Record::Report(r) => {
                p.u8(KIND_REPORT);
                p.u64(r.client_id.0);
                p.u64(r.venue_id.0);
                p.u16(r.instrument.0);
                p.u8(r.side as u8);
                let (status, reason) = status_code(r.status);
                p.u8(status);
                p.u8(reason);
                p.i64(r.last_px.0);
                p.i64(r.last_qty.0);
                p.i64(r.cum_qty.0);
                p.i64(r.leaves_qty.0);
                p.u8(u8::from(r.maker));
                p.u64(r.t0);
                p.u64(r.venue_ts);
            }
            Record::Instrument(k) => {
                p.u8(KIND_INSTRUMENT);
                p.u16(k.instrument.0);
                p.u64(k.key);
            }
            Record::Operator(a) => {
                p.u8(KIND_OPERATOR);
                p.i64(a.user);
                p.u64(a.at_unix_ns);
                p.u8(a.kind as u8);
                p.u16(a.instrument.0);
                p.u64(a.client_id.0);
                p.u64(a.target);
                p.u8(a.side as u8);
                p.i64(a.px.0);
                p.i64(a.qty.0);
                p.u8(a.outcome);
            }
            Record::Position(c) => {
                p.u8(KIND_POSITION);
                p.u16(c.instrument.0);
                p.i64(c.qty.0);
                p.i128(c.realized);
                p.i128(c.fees);
                p.u64(c.venue_ts);
            }
        }
        p.at
    };
    let len_bytes = (len as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len_bytes);
    crc.update(&buf.bytes[FRAME_HEADER..FRAME_HEADER + len]);
    buf.bytes[..4].copy_from_slice(&len_bytes);
    buf.bytes[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    buf.len = FRAME_HEADER + len;
    buf
}

fn status_code(s: OrderStatus) -> (u8, u8) {
    match s {
        OrderStatus::New => (1, 0),
        OrderStatus::PartiallyFilled => (2, 0),
        OrderStatus::Filled => (3, 0),
        OrderStatus::Canceled => (4, 0),
        OrderStatus::Expired => (5, 0),
        OrderStatus::Rejected(r) => (6, r as u8),
        OrderStatus::CancelRejected(r) => (7, r as u8),
    }
}

fn reason_of(code: u8) -> Option<RejectReason> {
    use RejectReason::*;
    Some(match code {
        1 => MaxOpenOrders,
        2 => MaxQty,
        3 => InvalidQty,
        4 => InvalidPrice,
        5 => WouldTakeLiquidity,
        6 => UnknownOrder,
        7 => DuplicateId,
        8 => NoLiquidity,
        9 => MaxNotional,
        10 => Halted,
        11 => UnknownInstrument,
        12 => Overloaded,
        13 => Risk,
        14 => Venue,
        15 => NotConnected,
        _ => return None,
    })
}

fn status_of(code: u8, reason: u8) -> Option<OrderStatus> {
    // A reason only with a refusal: one byte, one meaning, so a record re-encodes as read.
    if reason != 0 && !matches!(code, 6 | 7) {
        return None;
    }
    Some(match code {
        1 => OrderStatus::New,
        2 => OrderStatus::PartiallyFilled,
        3 => OrderStatus::Filled,
        4 => OrderStatus::Canceled,
        5 => OrderStatus::Expired,
        6 => OrderStatus::Rejected(reason_of(reason)?),
        7 => OrderStatus::CancelRejected(reason_of(reason)?),
        _ => return None,
    })
}

fn side_of(v: u8) -> Option<OrderSide> {
    match v {
        0 => Some(OrderSide::Buy),
        1 => Some(OrderSide::Sell),
        _ => None,
    }
}

fn action_of(v: u8) -> Option<OrderAction> {
    match v {
        0 => Some(OrderAction::New),
        1 => Some(OrderAction::Cancel),
        2 => Some(OrderAction::Replace),
        3 => Some(OrderAction::Amend),
        _ => None,
    }
}

fn type_of(v: u8) -> Option<OrderType> {
    match v {
        0 => Some(OrderType::Limit),
        1 => Some(OrderType::LimitMaker),
        2 => Some(OrderType::Market),
        _ => None,
    }
}

fn tif_of(v: u8) -> Option<TimeInForce> {
    match v {
        0 => Some(TimeInForce::Gtc),
        1 => Some(TimeInForce::Ioc),
        2 => Some(TimeInForce::Fok),
        _ => None,
    }
}

/// Why a payload that passed its CRC is still not a record (written by a different pinion, or
/// damage the CRC happened to miss).
fn bad(offset: u64, why: &'static str) -> JournalError {
    JournalError::BadRecord { offset, why }
}

/// The record in `payload` (its CRC checked), which starts at file offset `offset`.
pub fn decode(payload: &[u8], offset: u64) -> Result<Record, JournalError> {
    let Some(&kind) = payload.first() else {
        return Err(bad(offset, "empty payload"));
    };
    let want = match kind {
        KIND_SESSION => SESSION_LEN,
        KIND_ORDER => ORDER_LEN,
        KIND_ORDER_V1 => ORDER_V1_LEN,
        KIND_REPORT => REPORT_LEN,
        KIND_POSITION => POSITION_LEN,
        KIND_INSTRUMENT => INSTRUMENT_LEN,
        KIND_OPERATOR => OPERATOR_LEN,
        _ => return Err(bad(offset, "unknown record kind")),
    };
    if payload.len() != want {
        return Err(bad(offset, "payload length does not fit its kind"));
    }
    let mut g = Get { b: payload, at: 1 };
    Ok(match kind {
        KIND_SESSION => Record::Session(Session {
            epoch: g.u64(),
            started_unix_ns: g.u64(),
        }),
        KIND_ORDER | KIND_ORDER_V1 => {
            let t0 = g.u64();
            let client_id = ClientOrderId(g.u64());
            let target = ClientOrderId(g.u64());
            let px = Px(g.i64());
            let qty = Qty(g.i64());
            let instrument = InstrumentId(g.u16());
            let action = action_of(g.u8()).ok_or_else(|| bad(offset, "order action"))?;
            let side = side_of(g.u8()).ok_or_else(|| bad(offset, "order side"))?;
            let order_type = type_of(g.u8()).ok_or_else(|| bad(offset, "order type"))?;
            let tif = tif_of(g.u8()).ok_or_else(|| bad(offset, "time in force"))?;
            if qty.0 < 0 {
                return Err(bad(offset, "negative order quantity"));
            }
            let reason = if kind == KIND_ORDER {
                let strategy = g.u8();
                let code =
                    ReasonCode::from_u8(g.u8()).ok_or_else(|| bad(offset, "order reason"))?;
                OrderReason::new(strategy, code)
            } else {
                OrderReason::UNKNOWN
            };
            Record::Order(OrderIntent {
                t0,
                client_id,
                target,
                px,
                qty,
                instrument,
                action,
                side,
                order_type,
                tif,
                reason,
            })
        }
        KIND_REPORT => {
            let client_id = ClientOrderId(g.u64());
            let venue_id = VenueOrderId(g.u64());
            let instrument = InstrumentId(g.u16());
            let side = side_of(g.u8()).ok_or_else(|| bad(offset, "report side"))?;
            let (code, reason) = (g.u8(), g.u8());
            let status = status_of(code, reason).ok_or_else(|| bad(offset, "report status"))?;
            let last_px = Px(g.i64());
            let last_qty = Qty(g.i64());
            let cum_qty = Qty(g.i64());
            let leaves_qty = Qty(g.i64());
            let maker = match g.u8() {
                0 => false,
                1 => true,
                _ => return Err(bad(offset, "report maker flag")),
            };
            if last_qty.0 < 0 || cum_qty.0 < 0 || leaves_qty.0 < 0 {
                return Err(bad(offset, "negative report quantity"));
            }
            Record::Report(ExecReport {
                client_id,
                venue_id,
                instrument,
                side,
                status,
                last_px,
                last_qty,
                cum_qty,
                leaves_qty,
                maker,
                t0: g.u64(),
                venue_ts: g.u64(),
            })
        }
        KIND_INSTRUMENT => Record::Instrument(InstrumentKey {
            instrument: InstrumentId(g.u16()),
            key: g.u64(),
        }),
        KIND_OPERATOR => {
            let user = g.i64();
            let at_unix_ns = g.u64();
            let kind =
                OperatorKind::from_code(g.u8()).ok_or_else(|| bad(offset, "operator kind"))?;
            let instrument = InstrumentId(g.u16());
            let client_id = ClientOrderId(g.u64());
            let target = g.u64();
            let side = side_of(g.u8()).ok_or_else(|| bad(offset, "operator order side"))?;
            let px = Px(g.i64());
            let qty = Qty(g.i64());
            let outcome = g.u8();
            if outcome > OperatorAction::UNKNOWN {
                return Err(bad(offset, "operator outcome"));
            }
            Record::Operator(OperatorAction {
                user,
                at_unix_ns,
                kind,
                instrument,
                client_id,
                target,
                side,
                px,
                qty,
                outcome,
            })
        }
        _ => Record::Position(PositionChange {
            instrument: InstrumentId(g.u16()),
            qty: Qty(g.i64()),
            realized: g.i128(),
            fees: g.i128(),
            venue_ts: g.u64(),
        }),
    })
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Every whole record, in order.
    pub records: Vec<Record>,
    /// Bytes up to the end of the last whole frame (the header included): where the journal
    /// goes on.
    pub valid_len: u64,
    /// Bytes of a torn last frame after `valid_len` (0: none).
    pub torn: u64,
}

/// Reads a whole journal from its bytes. An empty input, or one holding only part of the
/// header (a file created and killed before the header was written), is an empty journal.
pub fn scan(bytes: &[u8]) -> Result<Scan, JournalError> {
    if bytes.len() < MAGIC.len() {
        if MAGIC.starts_with(bytes) {
            return Ok(Scan {
                records: Vec::new(),
                valid_len: 0,
                torn: bytes.len() as u64,
            });
        }
        return Err(JournalError::NotJournal);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(JournalError::NotJournal);
    }
    let mut records = Vec::new();
    let mut at = MAGIC.len();
    let end = bytes.len();
    while at < end {
        let offset = at as u64;
        let torn = || Scan {
            records: Vec::new(),
            valid_len: offset,
            torn: (end - at) as u64,
        };
        if bytes[at..].iter().all(|&b| b == 0) {
            let t = torn();
            return Ok(Scan { records, ..t });
        }
        if end - at < FRAME_HEADER {
            let t = torn();
            return Ok(Scan { records, ..t });
        }
        let len_bytes: [u8; 4] = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let stored =
            u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len == 0 || len > MAX_PAYLOAD {
            return Err(JournalError::Corrupt {
                offset,
                why: "frame length out of range",
            });
        }
        let body = at + FRAME_HEADER;
        if end - body < len {
            let t = torn();
            return Ok(Scan { records, ..t });
        }
        let payload = &bytes[body..body + len];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len_bytes);
        crc.update(payload);
        if crc.finalize() != stored {
            if body + len == end {
                let t = torn();
                return Ok(Scan { records, ..t });
            }
            return Err(JournalError::Corrupt {
                offset,
                why: "CRC mismatch with frames after it",
            });
        }
        records.push(decode(payload, offset)?);
        at = body + len;
    }
    Ok(Scan {
        records,
        valid_len: end as u64,
        torn: 0,
    })
}
