//! Reader for cryptofeed's JSON-lines captures (`*.cryptofeed.jsonl.zst`, zstd-compressed).
//!
//! Each line is an object with `t` ∈ `header`, `http`, `connect`, `send`, `recv`, and `conn`
//! (the connection's name), `ts` (seconds, decimal), `addr` or `url`, `data` (a JSON string):
//!
//! | `t` | record |
//! |---|---|
//! | `connect` | [`RecordKind::Connect`], `meta` = `addr` |
//! | `recv` | [`RecordKind::Frame`], `payload` = `data` unescaped |
//! | `http` | [`RecordKind::RestSnapshot`] for a depth endpoint, else [`RecordKind::Http`]; `meta` = `url`, `payload` = `data` unescaped |
//! | `header` | kept, see [`CryptofeedJsonlReader::header`] |
//! | `send` | skipped (what we sent, not market data) |
//!
//! Each distinct `conn` name gets a [`ConnId`] in order of first appearance; a WebSocket's venue
//! comes from its `connect` address. Times come from the digits of `ts` (never through `f64`).
//! The envelope is read with serde_json without copying; `data` is unescaped exactly into a
//! reused buffer, so reading allocates nothing per record once the buffers have grown. A
//! connection that opens mid-capture (a second WebSocket) takes its name and address strings
//! from a pool filled at start-up, so it allocates nothing either (up to
//! [`RESERVED_CONNECTIONS`] connections, names and addresses up to [`RESERVED_TEXT`] bytes).
//! A line that does not parse is a [`SourceError::Format`] with its 1-based line number;
//! reading may go on after it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json_string::unescape_into;
use crate::error::SourceError;
use crate::source::FrameSource;
use crate::source::read_ahead::{CHUNK_BYTES, CHUNKS, ReadAhead};
use crate::source::{is_depth_snapshot_url, seconds_to_ns, trim_line_end};
use pinion_core::record::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_core::venue::Venue;

const FORMAT: &str = "cryptofeed-jsonl";

/// Connections whose names and addresses have room reserved at start-up.
pub const RESERVED_CONNECTIONS: usize = 16;

/// The capacity of each reserved name or address string, in bytes (a WebSocket address with
/// its query is rarely over 100).
pub const RESERVED_TEXT: usize = 256;

/// A string field, borrowed from the line unless it holds escapes. (A bare `Option<Cow<str>>`
/// field would always be deserialized owned; the newtype makes serde borrow.)
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// One line's envelope, borrowed from the line buffer.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    t: Text<'a>,
    #[serde(borrow, default)]
    conn: Option<Text<'a>>,
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    addr: Option<Text<'a>>,
    #[serde(borrow, default)]
    url: Option<Text<'a>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Reads a cryptofeed JSONL capture from any buffered reader of the decompressed text.
#[derive(Debug)]
pub struct CryptofeedJsonlReader<R> {
    input: R,
    line: Vec<u8>,
    line_no: u64,
    /// The stream failed (truncated or corrupt): nothing more can be read.
    failed: bool,
    /// The line in `line` has been read but not yet yielded (the peek done by the constructor).
    replay_line: bool,
    meta: Vec<u8>,
    payload: Vec<u8>,
    header: Option<String>,
    /// Connection names, index = `ConnId`.
    names: Vec<String>,
    connections: Vec<ConnInfo>,
    /// Empty strings of [`RESERVED_TEXT`] bytes, for the names and addresses of connections
    /// not yet seen.
    spare: Vec<String>,
}

impl CryptofeedJsonlReader<BufReader<zstd::stream::read::Decoder<'static, BufReader<File>>>> {
    /// Opens a zstd-compressed capture.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        Self::from_zstd(File::open(path)?)
    }
}

impl CryptofeedJsonlReader<ReadAhead> {
    /// [`CryptofeedJsonlReader::open`], with the decompression on a helper thread ahead of the
    /// reader (see [`ReadAhead`]).
    pub fn open_read_ahead(path: &Path) -> Result<Self, SourceError> {
        let decoder = zstd::stream::read::Decoder::new(File::open(path)?)?;
        Self::new(ReadAhead::spawn(decoder, CHUNK_BYTES, CHUNKS)?)
    }
}

impl<R: Read> CryptofeedJsonlReader<BufReader<zstd::stream::read::Decoder<'static, BufReader<R>>>> {
    /// Reads zstd-compressed capture bytes (an in-memory file, a pipe).
    pub fn from_zstd(input: R) -> Result<Self, SourceError> {
        let decoder = zstd::stream::read::Decoder::new(input)?;
        Self::new(BufReader::with_capacity(1 << 16, decoder))
    }
}

impl<R: BufRead> CryptofeedJsonlReader<R> {
    /// Reads decompressed JSONL text. Reads the first line at once so the `header` is
    /// available before the first record.
    pub fn new(input: R) -> Result<Self, SourceError> {
        let mut reader = Self {
            input,
            line: Vec::with_capacity(1 << 12),
            line_no: 0,
            failed: false,
            replay_line: false,
            meta: Vec::with_capacity(256),
            payload: Vec::with_capacity(1 << 12),
            header: None,
            names: Vec::with_capacity(RESERVED_CONNECTIONS),
            connections: Vec::with_capacity(RESERVED_CONNECTIONS),
            spare: (0..2 * RESERVED_CONNECTIONS)
                .map(|_| String::with_capacity(RESERVED_TEXT))
                .collect(),
        };
        if reader.read_line()? {
            let text = trim_line_end(&reader.line);
            if let Ok(env) = serde_json::from_slice::<Envelope<'_>>(text)
                && &*env.t == "header"
            {
                reader.header = Some(String::from_utf8_lossy(text).into_owned());
            } else {
                reader.replay_line = true;
            }
        }
        Ok(reader)
    }

    /// The capture's `header` line (format version, exchange, subscribed channels), as JSON
    /// text, when the capture starts with one.
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The 1-based number of the last line read.
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// Reads the next non-blank line; `false` at the end.
    fn read_line(&mut self) -> Result<bool, SourceError> {
        loop {
            self.line.clear();
            let n =
                match crate::source::read_line(&mut self.input, &mut self.line, &mut self.failed) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(SourceError::Truncated {
                            format: FORMAT,
                            position: self.line_no + 1,
                        });
                    }
                    Err(e) => {
                        return Err(SourceError::Format {
                            format: FORMAT,
                            position: self.line_no + 1,
                            what: format!("cannot decompress: {e}"),
                        });
                    }
                };
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            if !trim_line_end(&self.line).is_empty() {
                return Ok(true);
            }
        }
    }

    fn error(&self, what: &str) -> SourceError {
        SourceError::Format {
            format: FORMAT,
            position: self.line_no,
            what: what.to_owned(),
        }
    }
}

impl<R: BufRead> FrameSource for CryptofeedJsonlReader<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        loop {
            if self.replay_line {
                self.replay_line = false;
            } else if !self.read_line()? {
                return Ok(None);
            }
            let text = trim_line_end(&self.line);
            let env: Envelope<'_> = match serde_json::from_slice(text) {
                Ok(env) => env,
                Err(e) => return Err(self.error(&format!("not a capture record: {e}"))),
            };
            let kind = match &*env.t {
                "recv" => RecordKind::Frame,
                "connect" => RecordKind::Connect,
                "http" => RecordKind::Http,
                "send" => continue,
                "header" => {
                    self.header = Some(String::from_utf8_lossy(text).into_owned());
                    continue;
                }
                other => {
                    let what = format!("unknown record type {other:?}");
                    return Err(self.error(&what));
                }
            };
            let Some(ts) = env.ts else {
                return Err(self.error("record has no `ts`"));
            };
            let Some(t_recv) = seconds_to_ns(ts.get().as_bytes()) else {
                return Err(self.error("`ts` is not plain decimal seconds"));
            };
            let Some(conn_name) = env.conn.as_deref() else {
                return Err(self.error("record has no `conn`"));
            };
            let url = env.url.or(env.addr);
            self.meta.clear();
            self.payload.clear();
            let kind = match kind {
                RecordKind::Frame | RecordKind::Http => {
                    let Some(data) = env.data else {
                        return Err(self.error("record has no `data`"));
                    };
                    if let Err(e) = unescape_into(data.get().as_bytes(), &mut self.payload) {
                        return Err(self.error(e.what()));
                    }
                    if kind == RecordKind::Http {
                        let Some(url) = url.as_deref() else {
                            return Err(self.error("`http` record has no `url`"));
                        };
                        self.meta.extend_from_slice(url.as_bytes());
                        if is_depth_snapshot_url(url.as_bytes()) {
                            RecordKind::RestSnapshot
                        } else {
                            RecordKind::Http
                        }
                    } else {
                        kind
                    }
                }
                _ => {
                    let Some(addr) = url.as_deref() else {
                        return Err(self.error("`connect` record has no `addr`"));
                    };
                    self.meta.extend_from_slice(addr.as_bytes());
                    kind
                }
            };
            let Some(conn) = register(
                &mut self.names,
                &mut self.connections,
                &mut self.spare,
                conn_name,
            ) else {
                return Err(self.error("too many connections"));
            };
            if kind == RecordKind::Connect {
                // `meta` holds the `addr` text: valid UTF-8, borrowed as it is.
                let url = String::from_utf8_lossy(&self.meta);
                let info = &mut self.connections[conn.0 as usize];
                info.venue = Venue::from_url(&url);
                info.url.clear();
                info.url.push_str(&url);
            }
            return Ok(Some(RawRecord {
                t_recv,
                conn,
                kind,
                meta: &self.meta,
                payload: &self.payload,
            }));
        }
    }

    fn last_line(&mut self) -> Option<crate::source::SourceLine<'_>> {
        Some(crate::source::SourceLine {
            number: self.line_no,
            text: trim_line_end(&self.line),
        })
    }
}

/// The id for a connection name, registering it on first sight with strings from `spare`
/// (allocated only once it is empty). Takes the fields rather than the reader so it can run
/// while the envelope still borrows the line buffer.
fn register(
    names: &mut Vec<String>,
    connections: &mut Vec<ConnInfo>,
    spare: &mut Vec<String>,
    name: &str,
) -> Option<ConnId> {
    if let Some(i) = names.iter().position(|n| n == name) {
        return Some(ConnId(i as u16));
    }
    let id = ConnId(u16::try_from(names.len()).ok()?);
    let mut copy = || {
        let mut s = spare.pop().unwrap_or_default();
        s.push_str(name);
        s
    };
    let (own, url) = (copy(), copy());
    names.push(own);
    connections.push(ConnInfo {
        id,
        venue: None,
        url,
    });
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURE: &str = concat!(
        r#"{"t":"header","format":2,"exchange":"BYBIT","config":{"l2_book":["BTC-USDT"]}}"#,
        "\n",
        r#"{"t":"http","conn":"H.1","ts":10.5,"url":"https://api.bybit.com/v5/market/orderbook?category=linear&symbol=BTCUSDT","data":"{\"result\":{}}"}"#,
        "\n",
        r#"{"t":"connect","conn":"W.2","ts":11,"addr":"wss://stream.bybit.com/v5/public/linear"}"#,
        "\n",
        r#"{"t":"send","conn":"W.2","ts":11.1,"addr":"x","data":"{}"}"#,
        "\n\n",
        r#"{"t":"recv","conn":"W.2","ts":11.1234567891,"data":"{\"topic\":\"a\\/b\",\"x\":\"\u00e9\"}"}"#,
        "\n",
    );

    #[test]
    fn records_map_from_the_envelope() {
        let mut r = CryptofeedJsonlReader::new(CAPTURE.as_bytes()).unwrap();
        assert!(r.header().unwrap().contains("\"BYBIT\""));

        let h = r.next_record().unwrap().unwrap();
        assert_eq!(
            (h.kind, h.conn, h.t_recv),
            (RecordKind::RestSnapshot, ConnId(0), 10_500_000_000)
        );
        assert!(h.meta.ends_with(b"symbol=BTCUSDT"));
        assert_eq!(h.payload, br#"{"result":{}}"#);

        let c = r.next_record().unwrap().unwrap();
        assert_eq!(
            (c.kind, c.conn, c.t_recv),
            (RecordKind::Connect, ConnId(1), 11_000_000_000)
        );
        assert_eq!(c.meta, b"wss://stream.bybit.com/v5/public/linear");

        let f = r.next_record().unwrap().unwrap();
        assert_eq!(
            (f.kind, f.conn, f.t_recv),
            (RecordKind::Frame, ConnId(1), 11_123_456_789)
        );
        // One level of escaping is removed: the frame's own `\/` stays, the envelope's `\u00e9` goes.
        assert_eq!(
            f.payload,
            "{\"topic\":\"a\\/b\",\"x\":\"\u{e9}\"}".as_bytes()
        );
        assert!(f.meta.is_empty());
        assert!(r.next_record().unwrap().is_none());

        assert_eq!(r.connections().len(), 2);
        assert_eq!(r.connections()[1].venue, Some(Venue::BybitLinear));
        assert_eq!(r.connections()[0].venue, None);
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let text = "{\"t\":\"recv\",\"conn\":\"a\",\"ts\":1,\"data\":\"{}\"}\n\
                    {\"t\":\"recv\",\"conn\":\"a\",\"ts\":1e9,\"data\":\"{}\"}\n\
                    {\"t\":\"recv\"\n\
                    {\"t\":\"bogus\",\"conn\":\"a\",\"ts\":1}\n\
                    {\"t\":\"recv\",\"conn\":\"a\",\"ts\":2,\"data\":\"{}\"}\n";
        let mut r = CryptofeedJsonlReader::new(text.as_bytes()).unwrap();
        assert!(r.header().is_none());
        assert_eq!(r.next_record().unwrap().unwrap().t_recv, 1_000_000_000);
        for line in 2..=4 {
            match r.next_record() {
                Err(SourceError::Format { position, .. }) => assert_eq!(position, line),
                other => panic!("line {line}: {other:?}"),
            }
        }
        assert_eq!(r.next_record().unwrap().unwrap().t_recv, 2_000_000_000);
    }
}
