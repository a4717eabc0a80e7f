//! Reader for cryptofeed's raw text captures: `X.cryptofeed.ws` plus, when present,
//! `X.cryptofeed.http` (or, for a renamed capture, the companions [`companion_paths`] lists).
//!
//! The `.ws` file starts with `<url> <-> <connect time, s>` and then holds one
//! `<receive time, s.fraction>: <frame text>` a line. The `.http` file holds one
//! `<request url> -> <time, s>: <response body>` a line (the REST depth snapshots taken while the
//! stream was buffering). The reader merges the two by time into one stream:
//!
//! 1. a [`RecordKind::Connect`] record first (connection 0, `meta` = the WebSocket URL);
//! 2. a [`RecordKind::Frame`] per `.ws` line (connection 0);
//! 3. a [`RecordKind::RestSnapshot`] per `.http` line whose URL is a depth endpoint, any other
//!    response as [`RecordKind::Http`] (connection 1, `meta` = the request URL, which carries
//!    `symbol=…`).
//!
//! Times are converted from the decimal text exactly (see [`super::super::seconds_to_ns`]), never
//! through `f64`. When a `.ws` and an `.http` line have the same time the frame comes first. Blank
//! lines are skipped; any other line that does not parse is a [`SourceError::Format`] naming the
//! file (`cryptofeed-ws` / `cryptofeed-http`) and the 1-based line number.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::source::FrameSource;
use crate::source::{is_depth_snapshot_url, seconds_to_ns, trim_line_end};
use pinion_core::record::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_core::venue::Venue;

const WS_FORMAT: &str = "cryptofeed-ws";
const HTTP_FORMAT: &str = "cryptofeed-http";

/// The WebSocket connection's id.
pub const WS_CONN: ConnId = ConnId(0);
/// The REST client's id.
pub const HTTP_CONN: ConnId = ConnId(1);

/// One line of an `.http` capture: `<request url> -> <time, s>: <response body>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLine<'a> {
    /// The request URL.
    pub url: &'a [u8],
    /// The response time, ns since the epoch.
    pub t_ns: u64,
    /// The response body.
    pub body: &'a [u8],
}

/// Splits one `.http` capture line (without its line ending). Also reads the one-line
/// `exchangeInfo` captures kept beside the recordings. `None` when the line is not in that shape.
pub fn parse_http_line(line: &[u8]) -> Option<HttpLine<'_>> {
    let arrow = find(line, b" -> ")?;
    let url = &line[..arrow];
    let rest = &line[arrow + 4..];
    let colon = find(rest, b": ")?;
    let t_ns = seconds_to_ns(&rest[..colon])?;
    Some(HttpLine {
        url,
        t_ns,
        body: &rest[colon + 2..],
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A line-oriented input with a reused buffer and a line count.
#[derive(Debug)]
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    line_no: u64,
    /// The stream failed (truncated or unreadable): nothing more can be read.
    failed: bool,
    format: &'static str,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, format: &'static str) -> Self {
        Self {
            input,
            buf: Vec::with_capacity(1 << 12),
            line_no: 0,
            failed: false,
            format,
        }
    }

    /// Reads the next non-blank line into `buf`; `false` at the end.
    fn advance(&mut self) -> Result<bool, SourceError> {
        loop {
            self.buf.clear();
            let n = crate::source::read_line(&mut self.input, &mut self.buf, &mut self.failed)
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        SourceError::Truncated {
                            format: self.format,
                            position: self.line_no + 1,
                        }
                    } else {
                        SourceError::Io(e)
                    }
                })?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            if !trim_line_end(&self.buf).is_empty() {
                return Ok(true);
            }
        }
    }

    fn text(&self) -> &[u8] {
        trim_line_end(&self.buf)
    }

    fn error(&self, what: &str) -> SourceError {
        SourceError::Format {
            format: self.format,
            position: self.line_no,
            what: what.to_owned(),
        }
    }
}

/// A parsed line waiting to be yielded: its time and where its parts sit in the line buffer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    t_ns: u64,
    meta: (usize, usize),
    payload: usize,
}

/// Which input the last record came from, to be refilled before the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Start,
    Connect,
    Ws,
    Http,
}

/// Reads a cryptofeed text capture, merging the `.ws` frames and the `.http` responses by time.
#[derive(Debug)]
pub struct CryptofeedTextReader<W, H> {
    ws: Lines<W>,
    http: Option<Lines<H>>,
    ws_next: Option<Pending>,
    http_next: Option<Pending>,
    connect_t: u64,
    ws_url: Vec<u8>,
    last: Side,
    connections: Vec<ConnInfo>,
}

impl CryptofeedTextReader<BufReader<File>, BufReader<File>> {
    /// Opens a `.ws` capture and, when one exists, its `.http` companion (see
    /// [`open_companion`]).
    pub fn open(ws_path: &Path) -> Result<Self, SourceError> {
        let ws = BufReader::with_capacity(1 << 16, File::open(ws_path)?);
        Self::new(ws, open_companion(ws_path)?)
    }
}

/// Where a `.ws` capture's REST responses may be, in the order they are looked for: the path
/// with its last extension replaced by `.http` (`X.cryptofeed.ws` → `X.cryptofeed.http`, a
/// renamed `q7.dat` → `q7.http`), then the path with `.http` added (`q7.dat.http`). A candidate
/// that is the capture itself is left out.
pub fn companion_paths(ws_path: &Path) -> Vec<PathBuf> {
    let mut added = ws_path.as_os_str().to_owned();
    added.push(".http");
    let mut paths: Vec<PathBuf> = [ws_path.with_extension("http"), PathBuf::from(added)]
        .into_iter()
        .filter(|p| p != ws_path)
        .collect();
    paths.dedup();
    paths
}

/// The first of [`companion_paths`] that exists, opened; `None` when none does.
pub fn open_companion(ws_path: &Path) -> Result<Option<BufReader<File>>, SourceError> {
    for path in companion_paths(ws_path) {
        match File::open(&path) {
            Ok(f) => return Ok(Some(BufReader::with_capacity(1 << 16, f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

impl<W: BufRead, H: BufRead> CryptofeedTextReader<W, H> {
    /// Reads a capture from its `.ws` text and, optionally, its `.http` text. Reads the `.ws`
    /// header line at once: a missing or malformed header is an error here.
    pub fn new(ws: W, http: Option<H>) -> Result<Self, SourceError> {
        let mut ws = Lines::new(ws, WS_FORMAT);
        if !ws.advance()? {
            return Err(ws.error("empty capture: no `<url> <-> <time>` header"));
        }
        let header = ws.text();
        let sep = find(header, b" <-> ")
            .ok_or_else(|| ws.error("header is not `<url> <-> <connect time>`"))?;
        let connect_t = seconds_to_ns(&header[sep + 5..])
            .ok_or_else(|| ws.error("connect time is not decimal seconds"))?;
        let ws_url = header[..sep].to_vec();
        let url_text = String::from_utf8_lossy(&ws_url).into_owned();
        let ws_venue = Venue::from_url(&url_text);

        let mut http = http.map(|h| Lines::new(h, HTTP_FORMAT));
        // Peek at the first response to name the REST connection's venue.
        let mut http_next = None;
        let mut http_venue = ws_venue;
        if let Some(lines) = http.as_mut() {
            http_next = next_http(lines)?;
            if let Some(p) = http_next {
                let url = String::from_utf8_lossy(&lines.buf[p.meta.0..p.meta.1]).into_owned();
                http_venue = Venue::from_url(&url).or(ws_venue);
            }
        }
        let mut connections = vec![ConnInfo {
            id: WS_CONN,
            venue: ws_venue,
            url: url_text,
        }];
        if http.is_some() {
            connections.push(ConnInfo {
                id: HTTP_CONN,
                venue: http_venue,
                url: String::from("REST"),
            });
        }
        Ok(Self {
            ws,
            http,
            ws_next: None,
            http_next,
            connect_t,
            ws_url,
            last: Side::Start,
            connections,
        })
    }
}

/// The next `.ws` frame line, parsed.
fn next_ws<R: BufRead>(lines: &mut Lines<R>) -> Result<Option<Pending>, SourceError> {
    if !lines.advance()? {
        return Ok(None);
    }
    let text = lines.text();
    let colon = find(text, b": ").ok_or_else(|| lines.error("line is not `<time>: <frame>`"))?;
    let t_ns = seconds_to_ns(&text[..colon])
        .ok_or_else(|| lines.error("receive time is not decimal seconds"))?;
    Ok(Some(Pending {
        t_ns,
        meta: (0, 0),
        payload: colon + 2,
    }))
}

/// The next `.http` response line, parsed.
fn next_http<R: BufRead>(lines: &mut Lines<R>) -> Result<Option<Pending>, SourceError> {
    if !lines.advance()? {
        return Ok(None);
    }
    let text = lines.text();
    let parsed = parse_http_line(text)
        .ok_or_else(|| lines.error("line is not `<url> -> <time>: <body>`"))?;
    Ok(Some(Pending {
        t_ns: parsed.t_ns,
        meta: (0, parsed.url.len()),
        payload: text.len() - parsed.body.len(),
    }))
}

impl<W: BufRead, H: BufRead> FrameSource for CryptofeedTextReader<W, H> {
    fn connections(&self) -> &[ConnInfo] {
        &self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        // Refill the input the previous record was lent from; the other one still holds its
        // pending line.
        match self.last {
            Side::Start => {
                self.last = Side::Connect;
                return Ok(Some(RawRecord {
                    t_recv: self.connect_t,
                    conn: WS_CONN,
                    kind: RecordKind::Connect,
                    meta: &self.ws_url,
                    payload: &[],
                }));
            }
            Side::Connect | Side::Ws => self.ws_next = next_ws(&mut self.ws)?,
            Side::Http => {
                if let Some(lines) = self.http.as_mut() {
                    self.http_next = next_http(lines)?;
                }
            }
        }
        let take_ws = match (self.ws_next, self.http_next) {
            (None, None) => return Ok(None),
            (Some(w), Some(h)) => w.t_ns <= h.t_ns,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_ws {
            let Some(p) = self.ws_next.take() else {
                return Ok(None);
            };
            self.last = Side::Ws;
            return Ok(Some(RawRecord {
                t_recv: p.t_ns,
                conn: WS_CONN,
                kind: RecordKind::Frame,
                meta: &[],
                payload: &self.ws.text()[p.payload..],
            }));
        }
        let (Some(p), Some(lines)) = (self.http_next.take(), self.http.as_ref()) else {
            return Ok(None);
        };
        self.last = Side::Http;
        let text = lines.text();
        let url = &text[p.meta.0..p.meta.1];
        let kind = if is_depth_snapshot_url(url) {
            RecordKind::RestSnapshot
        } else {
            RecordKind::Http
        };
        Ok(Some(RawRecord {
            t_recv: p.t_ns,
            conn: HTTP_CONN,
            kind,
            meta: url,
            payload: &text[p.payload..],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "wss://stream.binance.com:9443/stream?streams=a <-> 10.5\n\
                      11.25: {\"stream\":\"a\"}\n\
                      13: {\"stream\":\"b\"}\n\n";
    const HTTP: &str = "https://api.binance.com/api/v3/depth?symbol=A&limit=5 -> 12.000000001: {\"lastUpdateId\":1}\n\
                        https://api.binance.com/api/v3/exchangeInfo -> 13: {}\n";

    fn kinds(r: &mut dyn FrameSource) -> Vec<(u64, RecordKind, u16)> {
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.t_recv, rec.kind, rec.conn.0));
        }
        out
    }

    #[test]
    fn ws_and_http_merge_by_time() {
        let mut r = CryptofeedTextReader::new(WS.as_bytes(), Some(HTTP.as_bytes())).unwrap();
        assert_eq!(r.connections().len(), 2);
        assert_eq!(r.connections()[1].venue, Some(Venue::BinanceSpot));
        assert_eq!(
            kinds(&mut r),
            vec![
                (10_500_000_000, RecordKind::Connect, 0),
                (11_250_000_000, RecordKind::Frame, 0),
                (12_000_000_001, RecordKind::RestSnapshot, 1),
                (13_000_000_000, RecordKind::Frame, 0),
                (13_000_000_000, RecordKind::Http, 1),
            ]
        );
    }

    #[test]
    fn payloads_and_urls_are_exact() {
        let mut r = CryptofeedTextReader::new(WS.as_bytes(), Some(HTTP.as_bytes())).unwrap();
        assert_eq!(
            r.next_record().unwrap().unwrap().meta,
            b"wss://stream.binance.com:9443/stream?streams=a"
        );
        assert_eq!(
            r.next_record().unwrap().unwrap().payload,
            b"{\"stream\":\"a\"}"
        );
        let snap = r.next_record().unwrap().unwrap();
        assert_eq!(
            snap.meta,
            b"https://api.binance.com/api/v3/depth?symbol=A&limit=5"
        );
        assert_eq!(snap.payload, b"{\"lastUpdateId\":1}");
    }

    #[test]
    fn companions_by_extension_then_appended() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            companion_paths(Path::new("/d/x.cryptofeed.ws")),
            [p("/d/x.cryptofeed.http"), p("/d/x.cryptofeed.ws.http")]
        );
        assert_eq!(
            companion_paths(Path::new("q7.dat")),
            [p("q7.http"), p("q7.dat.http")]
        );
        assert_eq!(companion_paths(Path::new("q7")), [p("q7.http")]);
        assert_eq!(companion_paths(Path::new("a.http")), [p("a.http.http")]);
    }

    #[test]
    fn bad_lines_are_format_errors_with_line_numbers() {
        assert!(matches!(
            CryptofeedTextReader::new(&b"no header\n"[..], None::<&[u8]>),
            Err(SourceError::Format { position: 1, .. })
        ));
        let mut r =
            CryptofeedTextReader::new(&b"wss://x <-> 1\n2: {}\n3.x: {}\n"[..], None::<&[u8]>)
                .unwrap();
        assert!(r.next_record().unwrap().is_some());
        assert!(r.next_record().unwrap().is_some());
        match r.next_record() {
            Err(SourceError::Format {
                format, position, ..
            }) => {
                assert_eq!((format, position), (WS_FORMAT, 3));
            }
            other => panic!("{other:?}"),
        }
    }
}
