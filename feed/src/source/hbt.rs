//! Reader for hbt recordings (`*.hbt.gz`): gzip text, one record a line, `<ns> <json>`.
//!
//! `<ns>` is the local receive time in nanoseconds since the Unix epoch. The JSON is either a
//! Binance combined-stream envelope (`{"stream":…,"data":…}`, yielded as a
//! [`RecordKind::Frame`]) or the bare body of a REST depth snapshot (`{"lastUpdateId":…}`,
//! yielded as a [`RecordKind::RestSnapshot`] with empty `meta`, since the file does not keep the
//! request URL).
//!
//! Invariants: the whole file is one connection, [`ConnId`]`(0)`; records come out in file
//! order; a record borrows its line where it lies in the 64 KiB read buffer, or from a spill
//! buffer of that size when the line straddles a refill (see the line splitter in `source`), so reading
//! allocates nothing unless a line is longer than that. A line that is not `<digits> {…}` is a
//! [`SourceError::Format`] naming its 1-based line number; input that ends inside the gzip stream
//! is [`SourceError::Truncated`] at the line being read. After a bad line the reader may be called
//! again: it goes on with the next line. After an error of the stream itself (truncation, corrupt
//! gzip) it reports the end, since nothing past that point can be read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::read_ahead::{CHUNK_BYTES, CHUNKS, ReadAhead};
use crate::error::SourceError;
use crate::source::FrameSource;
use pinion_core::record::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_core::venue::Venue;

const FORMAT: &str = "hbt";

/// The payload prefix of a bare Binance REST depth snapshot body.
const SNAPSHOT_PREFIX: &[u8] = b"{\"lastUpdateId\"";

/// Reads an hbt recording from any buffered reader of the decompressed text.
#[derive(Debug)]
pub struct HbtReader<R> {
    lines: super::Lines<R>,
    line_no: u64,
    connections: [ConnInfo; 1],
}

impl HbtReader<BufReader<MultiGzDecoder<File>>> {
    /// Opens a gzip-compressed recording, inflated as it is read. The venue comes from the file
    /// name's prefix (`spot-`, `usdm-`, `coinm-`), or is unknown (`None` in
    /// [`FrameSource::connections`]).
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path)?;
        Ok(Self::from_buf_read(
            BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)),
            super::venue_from_file_name(path),
            file_description(path),
        ))
    }
}

impl HbtReader<ReadAhead> {
    /// [`HbtReader::open`], with the inflation on a helper thread ahead of the reader (see
    /// [`ReadAhead`]).
    pub fn open_read_ahead(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path)?;
        let text = ReadAhead::spawn(MultiGzDecoder::new(file), CHUNK_BYTES, CHUNKS)?;
        Ok(Self::from_buf_read(
            text,
            super::venue_from_file_name(path),
            file_description(path),
        ))
    }
}

/// A recording's file name, as its connection's description.
fn file_description(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl<R: Read> HbtReader<BufReader<MultiGzDecoder<R>>> {
    /// Reads gzip-compressed recording bytes (an in-memory file, a pipe).
    pub fn from_gzip(input: R, venue: Option<Venue>) -> Self {
        Self::from_buf_read(
            BufReader::with_capacity(1 << 16, MultiGzDecoder::new(input)),
            venue,
            String::from("hbt"),
        )
    }
}

impl<R: BufRead> HbtReader<R> {
    /// Reads already decompressed text. `description` names the input in
    /// [`FrameSource::connections`].
    pub fn from_buf_read(input: R, venue: Option<Venue>, description: String) -> Self {
        Self {
            // A line is copied only when it straddles a refill of the 64 KiB read buffer; a
            // spill buffer as large holds any line up to that size without growing.
            lines: super::Lines::new(input, 1 << 16),
            line_no: 0,
            connections: [ConnInfo {
                id: ConnId(0),
                venue,
                url: description,
            }],
        }
    }

    /// The 1-based number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }
}

/// A [`SourceError::Format`] at line `line_no`.
fn format_error(line_no: u64, what: &str) -> SourceError {
    SourceError::Format {
        format: FORMAT,
        position: line_no,
        what: what.to_owned(),
    }
}

impl<R: BufRead> FrameSource for HbtReader<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if !self.lines.advance_past_blank(&mut self.line_no, FORMAT)? {
            return Ok(None);
        }
        let line_no = self.line_no;
        let text = self.lines.current_text(line_no, FORMAT)?;
        let Some(space) = text.iter().position(|&c| c == b' ') else {
            return Err(format_error(
                line_no,
                "no space between the time and the JSON",
            ));
        };
        let Some(t_recv) = super::parse_u64(&text[..space]) else {
            return Err(format_error(
                line_no,
                "receive time is not a whole number of ns",
            ));
        };
        let payload = &text[space + 1..];
        if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
            return Err(format_error(
                line_no,
                "payload is not a complete JSON object",
            ));
        }
        let kind = if payload.starts_with(SNAPSHOT_PREFIX) {
            RecordKind::RestSnapshot
        } else {
            RecordKind::Frame
        };
        Ok(Some(RawRecord {
            t_recv,
            conn: ConnId(0),
            kind,
            meta: &[],
            payload,
        }))
    }

    fn last_line(&mut self) -> Option<super::SourceLine<'_>> {
        let number = self.line_no;
        let text = super::trim_line_end(self.lines.current().ok()?);
        Some(super::SourceLine { number, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> HbtReader<&[u8]> {
        HbtReader::from_buf_read(text.as_bytes(), Some(Venue::BinanceSpot), "t".into())
    }

    #[test]
    fn frames_and_snapshots_are_told_apart() {
        let mut r = reader(
            "1 {\"stream\":\"x\",\"data\":{}}\n\n2 {\"lastUpdateId\":5,\"bids\":[],\"asks\":[]}\r\n",
        );
        let a = r.next_record().unwrap().unwrap();
        assert_eq!((a.t_recv, a.kind), (1, RecordKind::Frame));
        assert_eq!(a.payload, b"{\"stream\":\"x\",\"data\":{}}");
        let b = r.next_record().unwrap().unwrap();
        assert_eq!((b.t_recv, b.kind), (2, RecordKind::RestSnapshot));
        assert!(b.meta.is_empty());
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.line_number(), 3);
    }

    #[test]
    fn bad_lines_name_their_line_and_reading_goes_on() {
        let mut r = reader("1 {}\nx {}\n3 {\"a\":\n4 {}\n");
        assert!(r.next_record().unwrap().is_some());
        for line in [2, 3] {
            match r.next_record() {
                Err(SourceError::Format { position, .. }) => assert_eq!(position, line),
                other => panic!("line {line}: {other:?}"),
            }
        }
        assert_eq!(r.next_record().unwrap().unwrap().t_recv, 4);
    }

    #[test]
    fn the_last_line_is_the_one_that_failed() {
        let mut r = reader("1 {}\n\nx {}\r\n");
        assert!(r.next_record().unwrap().is_some());
        assert!(r.next_record().is_err());
        let line = r.last_line().expect("a line-based format");
        assert_eq!((line.number, line.text), (3, &b"x {}"[..]));
    }
}
