//! pinion's own recording format (`.pnr`), its reader and writer, the recorder thread, and
//! conversion from the other formats.
//!
//! A recording holds the raw records of a session exactly as the feed thread saw them (receive
//! time, connection, kind, meta, payload), so replaying it runs the production parser on the
//! production input. It is binary and little-endian, made to be read fast: a reader lends each
//! record straight out of its block buffer, and a record costs one CRC32 to check.
//!
//! - [`format`](mod@format): the layout below, as code: [`RecordingHeader`], [`RecordHeader`], limits.
//! - [`reader`]: [`RecordingReader`], a [`crate::FrameSource`] over a `.pnr` file.
//! - [`writer`]: [`RecordingWriter`], buffered, with [`Rotation`] by size or time.
//! - [`recorder`]: the recorder thread and the feed thread's non-blocking [`RecorderHandle`].
//! - [`convert()`]: any source into this format (`pinion convert --input X --output Y`).
//! - [`convert_to_sbe`]: the same, Binance Spot market data frames turned into SBE
//!   (`pinion convert --encoding sbe`).
//!
//! # File layout
//!
//! A file is a header followed by records, each starting on an 8-byte boundary.
//!
//! ## Header
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 50 4E 52 0D 0A 1A 0A` (`\x89PNR\r\n\x1a\n`) |
//! | 8 | 2 | format version, `u16` ([`VERSION`], currently 1) |
//! | 10 | 2 | flags, zero |
//! | 12 | 4 | header length `H`, `u32`: the whole header, a multiple of 8, at most 16 MiB |
//! | 16 | 8 | start time, ns since the Unix epoch, `u64` |
//! | 24 | 4 | sequence number in a rotated set, `u32` |
//! | 28 | 2 | connection count `C`, `u16` |
//! | 30 | 2 | instrument count `I`, `u16` |
//! | 32 | 4 | source description length `S`, `u32` |
//! | 36 | 4 | reserved, zero |
//! | 40 | S | source description, UTF-8 (original file name, or `live`) |
//! | … | | `C` connection entries |
//! | … | | `I` instrument entries |
//! | … | | zero padding to a multiple of 8 |
//! | H−8 | 4 | CRC32 (IEEE) of bytes `0..H−8` |
//! | H−4 | 4 | zero |
//!
//! Connection entry: connection id `u16`; venue `u8` ([`pinion_core::Venue::as_u8`], `0xFF` when
//! unknown); zero `u8`; URL length `u16`; URL or description, UTF-8.
//!
//! Instrument entry: venue `u8`; symbol length `u8`; tick size length `u8`; step size length
//! `u8`; then the symbol, tick size and step size strings, as the exchange writes them (enough
//! for [`pinion_core::InstrumentSpec::new`]).
//!
//! ## Record
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | receive time, ns since the Unix epoch, `u64` |
//! | 8 | 2 | connection id, `u16` |
//! | 10 | 1 | kind, [`pinion_core::RecordKind`] as `u8` |
//! | 11 | 1 | check byte: `0xA5` XOR bytes 0–10 and 12–19 |
//! | 12 | 4 | meta length `m`, `u32`, at most 1 MiB |
//! | 16 | 4 | payload length `p`, `u32`, at most 64 MiB |
//! | 20 | 4 | CRC32 (IEEE) of bytes 0–19 then bytes 24 to the end of the padding |
//! | 24 | m | meta (request URL of a REST record, URL of a `Connect`) |
//! | 24+m | p | payload (frame text, response body) |
//! | 24+m+p | | zero padding to a multiple of 8 |
//!
//! The check byte lets a reader trust the lengths before it uses them: a corrupt length is a
//! format error at the record, never a read past it or a large allocation, and a file that ends
//! inside a record with sound lengths is reported as truncated at that record's offset. A CRC
//! mismatch (corrupt meta or payload) is reported at the record's offset and the reader moves on
//! to the next record.
//!
//! A file cut exactly at a record boundary reads as complete: each record is whole or reported.
//!
//! # Rotation
//! A rotated recording is a set `name.00000.pnr`, `name.00001.pnr`, …: each file has the same
//! header but for its sequence number and start time, and stands alone.

pub mod convert;
pub mod convert_sbe;
pub mod format;
pub mod reader;
pub mod recorder;
pub mod writer;

use std::io;

use crate::error::SourceError;

pub use convert::{ConvertStats, convert};
pub use convert_sbe::{SbeConvertStats, convert_to_sbe};
pub use format::{InstrumentDef, RecordHeader, RecordingHeader, VERSION};
pub use reader::RecordingReader;
pub use recorder::{ALL_CONNECTIONS, Recorder, RecorderHandle, RecorderReport};
pub use writer::{RecordingWriter, Rotation};

/// A recording could not be written (or converted).
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Writing or syncing a file failed.
    #[error("recording write error: {0}")]
    Io(#[from] io::Error),
    /// The source being converted failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The header cannot be encoded.
    #[error("recording header: {0}")]
    Header(&'static str),
    /// A record larger than the format allows.
    #[error("record too large for the format (meta {meta} bytes, payload {payload} bytes)")]
    RecordTooLarge {
        /// Meta length.
        meta: usize,
        /// Payload length.
        payload: usize,
    },
    /// The recorder thread panicked or was already stopped.
    #[error("the recorder thread is gone")]
    RecorderGone,
}
