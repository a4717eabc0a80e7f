//! Reader for hbt recordings (`*.hbt.gz`): gzip text, one record a line, `<ns> <json>`.
//!
//! `<ns>` is the local receive time in nanoseconds since the Unix epoch. The JSON is either a
//! Binance combined-stream envelope (`{"stream":…,"data":…}`, yielded as a
//! [`RecordKind::Frame`]) or the bare body of a REST depth snapshot (`{"lastUpdateId":…}`,
//! yielded as a [`RecordKind::RestSnapshot`] with empty `meta`, since the file does not keep the
//! request URL).
//!
//! Invariants: the whole file is one connection, [`ConnId`]`(0)`; records come out in file
//! order; a record borrows one line buffer that is cleared and reused, so once it has grown to the
//! longest line reading allocates nothing. A line that is not `<digits> {…}` is a
//! [`SourceError::Format`] naming its 1-based line number; input that ends inside the gzip stream
//! is [`SourceError::Truncated`] at the line being read. After a bad line the reader may be called
//! again: it goes on with the next line. After an error of the stream itself (truncation, corrupt
//! gzip) it reports the end, since nothing past that point can be read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::SourceError;
use crate::record::{ConnId, ConnInfo, FrameSource, RawRecord, RecordKind};
use crate::venue::Venue;

const FORMAT: &str = "hbt";

/// The payload prefix of a bare Binance REST depth snapshot body.
const SNAPSHOT_PREFIX: &[u8] = b"{\"lastUpdateId\"";

/// Reads an hbt recording from any buffered reader of the decompressed text.
#[derive(Debug)]
pub struct HbtReader<R> {
    input: R,
    line: Vec<u8>,
    line_no: u64,
    /// The stream failed (truncated or corrupt): nothing more can be read.
    failed: bool,
    connections: [ConnInfo; 1],
}

impl HbtReader<BufReader<MultiGzDecoder<File>>> {
    /// Opens a gzip-compressed recording. The venue comes from the file name's prefix (`spot-`,
    /// `usdm-`, `coinm-`), or is unknown (`None` in [`FrameSource::connections`]).
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path)?;
        let venue = super::venue_from_file_name(path);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self::from_buf_read(
            BufReader::with_capacity(1 << 16, MultiGzDecoder::new(file)),
            venue,
            name,
        ))
    }
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
            input,
            // Big enough for the usual frame; REST snapshots grow it once.
            line: Vec::with_capacity(1 << 12),
            line_no: 0,
            failed: false,
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

    fn format_error(&self, what: &str) -> SourceError {
        SourceError::Format {
            format: FORMAT,
            position: self.line_no,
            what: what.to_owned(),
        }
    }
}

impl<R: BufRead> FrameSource for HbtReader<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        loop {
            self.line.clear();
            self.line_no += 1;
            let n = match super::read_line(&mut self.input, &mut self.line, &mut self.failed) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(SourceError::Truncated {
                        format: FORMAT,
                        position: self.line_no,
                    });
                }
                Err(e) => {
                    return Err(self.format_error(&format!("cannot decompress: {e}")));
                }
            };
            if n == 0 {
                self.line_no -= 1;
                return Ok(None);
            }
            let text = super::trim_line_end(&self.line);
            if text.is_empty() {
                continue;
            }
            let Some(space) = text.iter().position(|&c| c == b' ') else {
                return Err(self.format_error("no space between the time and the JSON"));
            };
            let Some(t_recv) = super::parse_u64(&text[..space]) else {
                return Err(self.format_error("receive time is not a whole number of ns"));
            };
            let payload = &text[space + 1..];
            if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
                return Err(self.format_error("payload is not a complete JSON object"));
            }
            let kind = if payload.starts_with(SNAPSHOT_PREFIX) {
                RecordKind::RestSnapshot
            } else {
                RecordKind::Frame
            };
            // Re-borrow so the record's lifetime ties to `self.line` only.
            let text = super::trim_line_end(&self.line);
            return Ok(Some(RawRecord {
                t_recv,
                conn: ConnId(0),
                kind,
                meta: &[],
                payload: &text[space + 1..],
            }));
        }
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
}
