//! The feed crate's errors.
//!
//! Errors of the hot path ([`pinion_core::DecimalError`] and the parser's error) are small and `Copy`
//! so they can be counted without allocating. Source errors (reading files and captures) carry
//! where in the input the problem is.

use std::io;

/// A source could not produce its next record.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The input is not in the format the source reads.
    #[error("{format}: {what} at {position}")]
    Format {
        /// The format being read (`hbt`, `cryptofeed`, `pcap`, …).
        format: &'static str,
        /// Line number, byte offset or record number, as the format counts.
        position: u64,
        /// What is wrong.
        what: String,
    },
    /// The input ends in the middle of a record.
    #[error("{format}: truncated record at {position}")]
    Truncated {
        /// The format being read.
        format: &'static str,
        /// Where the incomplete record starts: a byte offset, or the line number for line-based
        /// formats (as in `Format`).
        position: u64,
    },
    /// The input is none of the formats the reader picker knows (see `source::open`).
    #[error(
        "unrecognised input: {container} starting `{seen}` is {why}; known formats: {known}",
        known = crate::source::sniff::KNOWN_FORMATS
    )]
    UnknownFormat {
        /// What held the text that was looked at: `plain text`, `gzip text`, `zstd text`,
        /// `zip entry`.
        container: &'static str,
        /// What was wrong with it.
        why: &'static str,
        /// The input's first bytes, escaped and cut short.
        seen: String,
    },
    /// A record's checksum does not match its bytes.
    #[error("{format}: checksum mismatch in record at {position}")]
    Checksum {
        /// The format being read.
        format: &'static str,
        /// Byte offset of the record.
        position: u64,
    },
}

/// Any error of the feed crate.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An instrument definition is wrong.
    #[error(transparent)]
    Instrument(#[from] pinion_core::instrument::InstrumentError),
    /// A decimal could not be parsed.
    #[error(transparent)]
    Decimal(#[from] pinion_core::decimal::DecimalError),
}
