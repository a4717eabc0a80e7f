//! The `.pnr` byte layout: constants, the file header and the record header.
//!
//! Everything here is pure encoding and decoding over byte slices; the reader and the writer do
//! the I/O. The layout tables are in the [parent module's documentation](super).
//!
//! Invariants the rest of the module relies on:
//! - a file header is a multiple of 8 bytes long and ends with its CRC32 (plus 4 zero bytes);
//! - a record starts on an 8-byte boundary of the file, and its length is
//!   [`record_len`]`(meta, payload)`, always a multiple of 8;
//! - a record header that passes [`RecordHeader::decode`] has a known kind and lengths within
//!   [`MAX_META_LEN`] and [`MAX_PAYLOAD_LEN`], so a reader may trust them to size a read.

use crate::error::SourceError;
use pinion_core::instrument::{InstrumentError, InstrumentSpec, Instruments};
use pinion_core::record::{ConnId, ConnInfo, RecordKind};
use pinion_core::venue::Venue;

use super::RecordingError;

/// The name the reader gives in its errors.
pub const FORMAT_NAME: &str = "pnr";

/// The file name extension of recordings.
pub const EXTENSION: &str = "pnr";

/// The first 8 bytes of every recording. The high-bit first byte and the `\r\n` / `\x1a` bytes
/// make a file that went through a 7-bit or text-mode copy fail the magic check instead of
/// failing later in an obscure way.
pub const MAGIC: [u8; 8] = *b"\x89PNR\r\n\x1a\n";

/// The format version this code writes and reads.
pub const VERSION: u16 = 1;

/// Length of the fixed part of the file header.
pub const FILE_HEADER_FIXED_LEN: usize = 40;

/// Length of the header's trailer: CRC32 and 4 zero bytes.
const FILE_HEADER_TRAILER_LEN: usize = 8;

/// The largest file header a reader accepts (protects against a corrupt length).
pub const MAX_HEADER_LEN: usize = 16 << 20;

/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 24;

/// The largest `meta` a record may carry (URLs and the like).
pub const MAX_META_LEN: usize = 1 << 20;

/// The largest payload a record may carry. Far above any exchange message or REST response
/// seen (a full Binance `exchangeInfo` is a few MB); it bounds what a reader will buffer.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// Venue byte of a connection whose venue is unknown.
const VENUE_UNKNOWN: u8 = 0xff;

/// Seed of the record header check byte, so an all-zero header (a zero-filled tail of a
/// preallocated file) does not pass.
const CHECK_SEED: u8 = 0xa5;

/// Rounds up to a multiple of 8.
#[inline]
pub const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The length of a record with these `meta` and `payload` lengths, padding included.
#[inline]
pub const fn record_len(meta_len: usize, payload_len: usize) -> usize {
    align8(RECORD_HEADER_LEN + meta_len + payload_len)
}

/// One instrument as stored in a header: enough to rebuild its [`InstrumentSpec`] with
/// [`InstrumentSpec::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentDef {
    /// The venue it trades on.
    pub venue: Venue,
    /// The exchange's symbol.
    pub symbol: String,
    /// The tick size as the exchange writes it (`"0.01000000"`).
    pub tick_size: String,
    /// The step size as the exchange writes it (`"0.00001000"`).
    pub step_size: String,
}

impl InstrumentDef {
    /// The definition of a spec (tick and step written with the spec's decimals).
    pub fn from_spec(spec: &InstrumentSpec) -> Self {
        Self {
            venue: spec.venue,
            symbol: spec.symbol.to_string(),
            tick_size: spec.tick.display(spec.price_decimals).to_string(),
            step_size: spec.step.display(spec.qty_decimals).to_string(),
        }
    }

    /// Rebuilds the spec.
    pub fn spec(&self) -> Result<InstrumentSpec, InstrumentError> {
        InstrumentSpec::new(self.venue, &self.symbol, &self.tick_size, &self.step_size)
    }
}

/// What a recording says about itself, stored at the start of every file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingHeader {
    /// When the recording (or this file of a rotated set) starts, ns since the Unix epoch.
    /// A writer given 0 takes the first record's receive time.
    pub start_ns: u64,
    /// The file's place in a rotated set, from 0.
    pub sequence: u32,
    /// Where the records come from: the original file name for a conversion, `live` for the
    /// recorder.
    pub source: String,
    /// The connections the records refer to.
    pub connections: Vec<ConnInfo>,
    /// The instruments, so a replay can rebuild its registry without the exchange.
    pub instruments: Vec<InstrumentDef>,
}

impl RecordingHeader {
    /// A header with no connections or instruments yet.
    pub fn new(source: impl Into<String>, start_ns: u64) -> Self {
        Self {
            start_ns,
            sequence: 0,
            source: source.into(),
            connections: Vec::new(),
            instruments: Vec::new(),
        }
    }

    /// The instrument registry the header describes, in header order (the ids are the indices).
    pub fn instrument_registry(&self) -> Result<Instruments, InstrumentError> {
        let mut reg = Instruments::new();
        for def in &self.instruments {
            reg.add(def.spec()?)?;
        }
        Ok(reg)
    }

    /// The header's bytes, checksum and padding included.
    pub fn encode(&self) -> Result<Vec<u8>, RecordingError> {
        let conn_count = u16::try_from(self.connections.len())
            .map_err(|_| RecordingError::Header("more than 65535 connections"))?;
        let inst_count = u16::try_from(self.instruments.len())
            .map_err(|_| RecordingError::Header("more than 65535 instruments"))?;
        let source_len = u32::try_from(self.source.len())
            .map_err(|_| RecordingError::Header("source description too long"))?;

        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u32.to_le_bytes()); // header length, patched below
        out.extend_from_slice(&self.start_ns.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&conn_count.to_le_bytes());
        out.extend_from_slice(&inst_count.to_le_bytes());
        out.extend_from_slice(&source_len.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // reserved
        debug_assert_eq!(out.len(), FILE_HEADER_FIXED_LEN);
        out.extend_from_slice(self.source.as_bytes());

        for c in &self.connections {
            let url_len = u16::try_from(c.url.len())
                .map_err(|_| RecordingError::Header("connection URL longer than 65535 bytes"))?;
            out.extend_from_slice(&c.id.0.to_le_bytes());
            out.push(c.venue.map_or(VENUE_UNKNOWN, Venue::as_u8));
            out.push(0);
            out.extend_from_slice(&url_len.to_le_bytes());
            out.extend_from_slice(c.url.as_bytes());
        }
        for i in &self.instruments {
            let short = |s: &str| {
                u8::try_from(s.len())
                    .map_err(|_| RecordingError::Header("instrument field longer than 255 bytes"))
            };
            out.push(i.venue.as_u8());
            out.push(short(&i.symbol)?);
            out.push(short(&i.tick_size)?);
            out.push(short(&i.step_size)?);
            out.extend_from_slice(i.symbol.as_bytes());
            out.extend_from_slice(i.tick_size.as_bytes());
            out.extend_from_slice(i.step_size.as_bytes());
        }
        out.resize(align8(out.len()), 0);
        let total = out.len() + FILE_HEADER_TRAILER_LEN;
        if total > MAX_HEADER_LEN {
            return Err(RecordingError::Header("header longer than 16 MiB"));
        }
        out[12..16].copy_from_slice(&(total as u32).to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        Ok(out)
    }

    /// Checks the fixed part (magic, version, length) of a header and returns the header's total
    /// length. `fixed` must hold at least [`FILE_HEADER_FIXED_LEN`] bytes.
    pub fn decode_len(fixed: &[u8]) -> Result<usize, SourceError> {
        if fixed.len() < FILE_HEADER_FIXED_LEN {
            return Err(truncated(0));
        }
        if fixed[..8] != MAGIC {
            return Err(format_error(0, "bad magic: not a pinion recording".into()));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != VERSION {
            return Err(format_error(
                8,
                format!("unsupported format version {version} (this build reads {VERSION})"),
            ));
        }
        let len = le_u32(fixed, 12) as usize;
        let plausible = FILE_HEADER_FIXED_LEN + FILE_HEADER_TRAILER_LEN..=MAX_HEADER_LEN;
        if !plausible.contains(&len) || !len.is_multiple_of(8) {
            return Err(format_error(12, format!("bad header length {len}")));
        }
        Ok(len)
    }

    /// Decodes a whole header (`bytes.len()` is the length [`RecordingHeader::decode_len`] gave).
    pub fn decode(bytes: &[u8]) -> Result<Self, SourceError> {
        let len = Self::decode_len(bytes)?;
        if bytes.len() < len {
            return Err(truncated(0));
        }
        let body = &bytes[..len - FILE_HEADER_TRAILER_LEN];
        let stored = le_u32(bytes, len - FILE_HEADER_TRAILER_LEN);
        if crc32fast::hash(body) != stored {
            return Err(SourceError::Checksum {
                format: FORMAT_NAME,
                position: 0,
            });
        }
        let start_ns = le_u64(bytes, 16);
        let sequence = le_u32(bytes, 24);
        let conn_count = le_u16(bytes, 28);
        let inst_count = le_u16(bytes, 30);
        let source_len = le_u32(bytes, 32) as usize;

        let mut cur = Cursor {
            bytes: body,
            pos: FILE_HEADER_FIXED_LEN,
        };
        let source = cur.string(source_len, "source description")?;
        let mut connections = Vec::with_capacity(usize::from(conn_count));
        for _ in 0..conn_count {
            let id = ConnId(cur.u16("connection id")?);
            let venue_byte = cur.u8("connection venue")?;
            let _reserved = cur.u8("connection entry")?;
            let venue = match venue_byte {
                VENUE_UNKNOWN => None,
                v => Some(Venue::from_u8(v).ok_or_else(|| {
                    format_error(cur.pos as u64 - 2, format!("unknown venue {v}"))
                })?),
            };
            let url_len = usize::from(cur.u16("connection URL length")?);
            let url = cur.string(url_len, "connection URL")?;
            connections.push(ConnInfo { id, venue, url });
        }
        let mut instruments = Vec::with_capacity(usize::from(inst_count));
        for _ in 0..inst_count {
            let at = cur.pos as u64;
            let venue_byte = cur.u8("instrument venue")?;
            let venue = Venue::from_u8(venue_byte)
                .ok_or_else(|| format_error(at, format!("unknown venue {venue_byte}")))?;
            let sym_len = usize::from(cur.u8("symbol length")?);
            let tick_len = usize::from(cur.u8("tick size length")?);
            let step_len = usize::from(cur.u8("step size length")?);
            instruments.push(InstrumentDef {
                venue,
                symbol: cur.string(sym_len, "symbol")?,
                tick_size: cur.string(tick_len, "tick size")?,
                step_size: cur.string(step_len, "step size")?,
            });
        }
        if body[cur.pos..].iter().any(|&b| b != 0) {
            return Err(format_error(
                cur.pos as u64,
                "unexpected bytes after the instruments".into(),
            ));
        }
        Ok(Self {
            start_ns,
            sequence,
            source,
            connections,
            instruments,
        })
    }
}

/// The fixed-size front of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Receive time, ns since the Unix epoch.
    pub t_recv: u64,
    /// The connection.
    pub conn: ConnId,
    /// What the record carries.
    pub kind: RecordKind,
    /// Length of `meta`.
    pub meta_len: u32,
    /// Length of the payload.
    pub payload_len: u32,
    /// CRC32 of the record's bytes other than this field.
    pub crc: u32,
}

impl RecordHeader {
    /// The record's whole length, padding included.
    #[inline]
    pub const fn record_len(&self) -> usize {
        record_len(self.meta_len as usize, self.payload_len as usize)
    }

    /// Encodes the header; `crc` is written as given.
    #[inline]
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..8].copy_from_slice(&self.t_recv.to_le_bytes());
        h[8..10].copy_from_slice(&self.conn.0.to_le_bytes());
        h[10] = self.kind as u8;
        h[12..16].copy_from_slice(&self.meta_len.to_le_bytes());
        h[16..20].copy_from_slice(&self.payload_len.to_le_bytes());
        h[11] = check_byte(&h);
        h[20..24].copy_from_slice(&self.crc.to_le_bytes());
        h
    }

    /// Decodes and validates a header that starts at file offset `position`: the check byte,
    /// the kind and the length limits. A header that passes can be trusted to size a read.
    #[inline]
    pub fn decode(h: &[u8; RECORD_HEADER_LEN], position: u64) -> Result<Self, SourceError> {
        if h[11] != check_byte(h) {
            return Err(format_error(
                position,
                "record header check byte mismatch".into(),
            ));
        }
        let kind = RecordKind::from_u8(h[10])
            .ok_or_else(|| format_error(position, format!("unknown record kind {}", h[10])))?;
        let meta_len = le_u32(h, 12);
        let payload_len = le_u32(h, 16);
        if meta_len as usize > MAX_META_LEN || payload_len as usize > MAX_PAYLOAD_LEN {
            return Err(format_error(
                position,
                format!("record lengths out of range (meta {meta_len}, payload {payload_len})"),
            ));
        }
        Ok(Self {
            t_recv: le_u64(h, 0),
            conn: ConnId(le_u16(h, 8)),
            kind,
            meta_len,
            payload_len,
            crc: le_u32(h, 20),
        })
    }
}

/// The record checksum: CRC32 over the header's first 20 bytes, then everything after the
/// header up to the end of the padding.
#[inline]
pub fn record_crc(header: &[u8; RECORD_HEADER_LEN], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..20]);
    hasher.update(body);
    hasher.finalize()
}

/// XOR of the header's first 20 bytes except the check byte itself, seeded: any single
/// corrupted byte among them changes it, so a bad length is caught before it is used.
#[inline]
fn check_byte(h: &[u8; RECORD_HEADER_LEN]) -> u8 {
    h[..11]
        .iter()
        .chain(&h[12..20])
        .fold(CHECK_SEED, |acc, &b| acc ^ b)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

pub(super) fn format_error(position: u64, what: String) -> SourceError {
    SourceError::Format {
        format: FORMAT_NAME,
        position,
        what,
    }
}

pub(super) fn truncated(position: u64) -> SourceError {
    SourceError::Truncated {
        format: FORMAT_NAME,
        position,
    }
}

/// Bounds-checked reading of the header's variable part; positions are file offsets.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SourceError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format_error(
                self.pos as u64,
                format!("{what} runs past the end of the header"),
            )),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, SourceError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, SourceError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn string(&mut self, n: usize, what: &str) -> Result<String, SourceError> {
        let at = self.pos as u64;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format_error(at, format!("{what} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header() -> RecordingHeader {
        RecordingHeader {
            start_ns: 1_723_161_240_000_000_000,
            sequence: 3,
            source: "spot-btcusdt-20240808.hbt.gz".into(),
            connections: vec![
                ConnInfo {
                    id: ConnId(0),
                    venue: Some(Venue::BinanceSpot),
                    url: "wss://stream.binance.com:9443/stream".into(),
                },
                ConnInfo {
                    id: ConnId(7),
                    venue: None,
                    url: "rest".into(),
                },
            ],
            instruments: vec![InstrumentDef {
                venue: Venue::BinanceSpot,
                symbol: "BTCUSDT".into(),
                tick_size: "0.01000000".into(),
                step_size: "0.00001000".into(),
            }],
        }
    }

    #[test]
    fn header_round_trips_and_is_aligned() {
        let h = sample_header();
        let bytes = h.encode().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(RecordingHeader::decode_len(&bytes).unwrap(), bytes.len());
        assert_eq!(RecordingHeader::decode(&bytes).unwrap(), h);
        let reg = h.instrument_registry().unwrap();
        let id = reg.lookup(Venue::BinanceSpot, b"btcusdt").unwrap();
        assert_eq!(reg.get(id).unwrap().price_decimals, 2);
    }

    #[test]
    fn header_corruption_is_caught() {
        let bytes = sample_header().encode().unwrap();
        for i in 0..bytes.len() - 4 {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                RecordingHeader::decode(&bad).is_err(),
                "flip at {i} not caught"
            );
        }
    }

    #[test]
    fn record_header_round_trips_and_check_byte_catches_flips() {
        let rh = RecordHeader {
            t_recv: 42,
            conn: ConnId(3),
            kind: RecordKind::RestSnapshot,
            meta_len: 17,
            payload_len: 1000,
            crc: 0xdead_beef,
        };
        let enc = rh.encode();
        assert_eq!(RecordHeader::decode(&enc, 0).unwrap(), rh);
        assert_eq!(rh.record_len(), 1048);
        for i in 0..20 {
            let mut bad = enc;
            bad[i] ^= 0x01;
            assert!(
                matches!(
                    RecordHeader::decode(&bad, 0),
                    Err(SourceError::Format { .. })
                ),
                "flip at {i} not caught"
            );
        }
        assert!(RecordHeader::decode(&[0; RECORD_HEADER_LEN], 0).is_err());
    }

    #[test]
    fn instrument_def_round_trips_a_spec() {
        let spec = InstrumentSpec::new(Venue::BybitLinear, "BTCUSDT", "0.10", "0.001").unwrap();
        let def = InstrumentDef::from_spec(&spec);
        assert_eq!(def.spec().unwrap(), spec);
    }
}
