//! The response reader of [`crate::rest`]; see [`ResponseReader`].

use std::fmt;

use crate::http::{self, HeadError, HeadRules};

/// Bounds on what one response may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Longest head, status line through the blank line.
    pub max_head: usize,
    /// Largest body, after removing the chunked framing.
    pub max_body: usize,
}

impl Default for ReadLimits {
    /// 64 KiB of head, 16 MiB of body (a Spot `depth?limit=5000` snapshot is well under 1 MiB,
    /// `exchangeInfo` for every symbol a few MiB).
    fn default() -> Self {
        ReadLimits {
            max_head: 64 << 10,
            max_body: 16 << 20,
        }
    }
}

/// Longest chunk-size line accepted (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 16 << 10;
/// Bytes of the offending input quoted in an error.
const QUOTE: usize = 48;

/// A bounded, escaped quote of bytes that were seen, for error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Seen(String);

impl Seen {
    /// Quotes at most the first few dozen bytes of `bytes`, escaped as ASCII.
    pub fn quote(bytes: &[u8]) -> Self {
        let cut = &bytes[..bytes.len().min(QUOTE)];
        let mut text = cut.escape_ascii().to_string();
        if bytes.len() > QUOTE {
            text.push('…');
        }
        Seen(text)
    }

    /// The quote.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The head breaks HTTP/1.1 syntax.
    #[error("bad response head ({what}), starting {seen}")]
    BadHead {
        /// The part that is wrong.
        what: &'static str,
        /// The start of what was received.
        seen: Seen,
    },
    /// The head did not end within [`ReadLimits::max_head`] bytes.
    #[error("response head longer than {max} bytes, starting {seen}")]
    HeadTooLong {
        /// The limit.
        max: usize,
        /// The start of what was received.
        seen: Seen,
    },
    /// A `Content-Length` that is not a number, or several that disagree.
    #[error("bad Content-Length {seen}")]
    BadContentLength {
        /// The values.
        seen: Seen,
    },
    /// A transfer or content coding this client did not ask for and does not decode.
    #[error("unsupported {header}: {seen}")]
    UnsupportedCoding {
        /// `Transfer-Encoding` or `Content-Encoding`.
        header: &'static str,
        /// Its value.
        seen: Seen,
    },
    /// The body is longer than [`ReadLimits::max_body`].
    #[error("response body over {max} bytes{}", declared.map(|d| format!(" (declared {d})")).unwrap_or_default())]
    BodyTooLarge {
        /// The limit.
        max: usize,
        /// The length the server declared, when it did.
        declared: Option<u64>,
    },
    /// The chunked framing is broken.
    #[error("bad chunk framing ({what}) at {seen}")]
    BadChunk {
        /// What is wrong.
        what: &'static str,
        /// The bytes where it went wrong.
        seen: Seen,
    },
    /// The connection ended before any byte of a response.
    #[error("connection closed before any response byte")]
    ClosedBeforeResponse,
    /// The connection ended inside the head.
    #[error("connection closed inside the response head after {received} bytes")]
    ClosedMidHead {
        /// Bytes of the head received.
        received: usize,
    },
    /// The connection ended inside the body.
    #[error("connection closed inside the body after {received} of {} bytes", expected.map_or_else(|| "a chunked".to_owned(), |e| e.to_string()))]
    ClosedMidBody {
        /// Body bytes received (after dechunking).
        received: usize,
        /// The declared length; `None` for a chunked body.
        expected: Option<u64>,
    },
}

/// Headers of a response, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    fields: Vec<(Box<str>, Box<[u8]>)>,
}

impl ResponseHeaders {
    /// Every `(name, value)`, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (&**n, &**v))
    }

    /// Every value of header `name` (case-insensitive), in the order sent.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.all(name).next()
    }

    /// The first value of header `name` as text; `None` when absent or not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }
}

/// One whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: ResponseHeaders,
    /// The body, with the chunked framing removed.
    pub body: Vec<u8>,
    /// Whether the connection may carry another request: HTTP/1.1 without `Connection: close`
    /// (or HTTP/1.0 with `keep-alive`), a body not delimited by the connection's end, and no
    /// `Content-Length` beside chunked coding.
    pub keep_alive: bool,
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Reading `remaining` bytes of chunk data.
    Data { remaining: usize },
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk; `seen` bytes of them so far.
    Trailers { seen: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length { remaining: usize },
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// The response side of an HTTP/1.1 exchange, as a pure reader over bytes: fed whatever the
/// socket gave, it answers "more" until one whole response (head and body) has arrived.
///
/// The head is parsed by [`crate::http`] (strictly: a server answering this client is held to
/// the syntax). The body is delimited, per RFC 9112 §6.3, by
/// - nothing, for 1xx, 204 and 304 (a 1xx other than 101 is an interim answer: skipped, and
///   the real response read after it);
/// - chunked transfer coding, when `Transfer-Encoding` ends in `chunked` (it then overrides a
///   `Content-Length`, and the connection is not reused, as the RFC asks);
/// - `Content-Length` (several that disagree, or one that is not a number, are an error);
/// - else the end of the connection ([`ResponseReader::finish`]).
///
/// No compression was asked for, so any transfer or content coding other than `chunked` and
/// `identity` is an error rather than bytes handed on undecoded.
///
/// Invariants: the head and the body are bounded ([`ReadLimits`]); a `Content-Length` over the
/// body limit is refused before any of the body is read; chunk-size lines and trailers are
/// bounded too, so no input grows a buffer past the limits. Any input is a response, "more",
/// or a [`ReadError`] that says what was seen, never a panic (fuzzed: `fuzz/fuzz_targets/
/// http_response.rs`). Bytes after a complete response stay unread ([`ResponseReader::leftover`]):
/// this client never pipelines, so a caller treats them as a reason not to reuse the
/// connection. They are counted, not kept.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    limits: ReadLimits,
    /// Received bytes not yet consumed (part of a head or a framing line, or leftovers).
    buf: Vec<u8>,
    state: State,
    status: u16,
    headers: ResponseHeaders,
    body: Vec<u8>,
    keep_alive: bool,
    declared: Option<u64>,
    received: u64,
    /// Bytes fed after the response completed (counted, not kept).
    leftover: usize,
}

impl ResponseReader {
    /// A reader for one response.
    pub fn new(limits: ReadLimits) -> Self {
        ResponseReader {
            limits,
            buf: Vec::new(),
            state: State::Head,
            status: 0,
            headers: ResponseHeaders::default(),
            body: Vec::new(),
            keep_alive: false,
            declared: None,
            received: 0,
            leftover: 0,
        }
    }

    /// Ready for the next response on the same connection (buffers kept, leftovers dropped).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = State::Head;
        self.status = 0;
        self.headers = ResponseHeaders::default();
        self.body = Vec::new();
        self.keep_alive = false;
        self.declared = None;
        self.received = 0;
        self.leftover = 0;
    }

    /// Bytes fed since the last reset.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes fed after the complete response (a server answering more than was asked).
    pub fn leftover(&self) -> usize {
        self.leftover
    }

    /// Feeds bytes read from the connection. `Ok(Some(response))` once the response is
    /// complete; `Ok(None)` while more is needed. After a response or an error, further bytes
    /// are only counted as leftovers until [`ResponseReader::reset`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Response>, ReadError> {
        self.received += bytes.len() as u64;
        if self.state == State::Done {
            self.leftover = self.leftover.saturating_add(bytes.len());
            return Ok(None);
        }
        // Body bytes go straight to the body; only heads and framing lines are buffered.
        let mut input = bytes;
        if self.buf.is_empty() {
            let done = self.advance(&mut input);
            return self.settle(done, input);
        }
        self.buf.extend_from_slice(bytes);
        let held = std::mem::take(&mut self.buf);
        let mut input = &held[..];
        let done = self.advance(&mut input);
        let out = self.settle(done, input);
        // Reuse the allocation when it was not kept.
        if self.buf.is_empty() {
            self.buf = held;
            self.buf.clear();
        }
        out
    }

    /// The connection ended: completes a body delimited by the end, else says where the
    /// response was cut.
    pub fn finish(&mut self) -> Result<Response, ReadError> {
        match self.state {
            State::UntilClose => {
                self.state = State::Done;
                Ok(self.take())
            }
            State::Head if self.received == 0 => Err(ReadError::ClosedBeforeResponse),
            State::Head => Err(ReadError::ClosedMidHead {
                received: self.buf.len(),
            }),
            State::Length { .. } | State::Chunked(_) => Err(ReadError::ClosedMidBody {
                received: self.body.len(),
                expected: self.declared,
            }),
            // Completed earlier (and handed out), or failed.
            State::Done => Err(ReadError::ClosedBeforeResponse),
        }
    }

    /// Keeps what `advance` left unconsumed and hands out the response when done.
    fn settle(
        &mut self,
        done: Result<bool, ReadError>,
        rest: &[u8],
    ) -> Result<Option<Response>, ReadError> {
        self.buf.clear();
        match done {
            Ok(true) => {
                self.state = State::Done;
                self.leftover = rest.len();
                Ok(Some(self.take()))
            }
            Ok(false) => {
                self.buf.extend_from_slice(rest);
                Ok(None)
            }
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    fn take(&mut self) -> Response {
        Response {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.body),
            keep_alive: self.keep_alive,
        }
    }

    /// Consumes from `input` as far as it goes; `Ok(true)` when the response is complete
    /// (`input` then holds what follows it).
    fn advance(&mut self, input: &mut &[u8]) -> Result<bool, ReadError> {
        loop {
            match self.state {
                State::Head => {
                    if !self.head(input)? {
                        return Ok(false);
                    }
                }
                State::Length { remaining } => {
                    let n = remaining.min(input.len());
                    self.body.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    if remaining == n {
                        return Ok(true);
                    }
                    self.state = State::Length {
                        remaining: remaining - n,
                    };
                    return Ok(false);
                }
                State::UntilClose => {
                    if self.body.len() + input.len() > self.limits.max_body {
                        return Err(self.too_large());
                    }
                    self.body.extend_from_slice(input);
                    *input = &[];
                    return Ok(false);
                }
                State::Chunked(chunk) => match self.chunk(chunk, input)? {
                    Some(Chunk::Trailers { seen: usize::MAX }) => return Ok(true),
                    Some(next) => self.state = State::Chunked(next),
                    None => return Ok(false),
                },
                State::Done => return Ok(true),
            }
        }
    }

    /// Parses the head when it is all in `input`; `Ok(false)` (input kept) while it is not.
    fn head(&mut self, input: &mut &[u8]) -> Result<bool, ReadError> {
        let rules = HeadRules::strict(self.limits.max_head);
        let head = match http::parse_response(input, &rules) {
            Ok(Some(head)) => head,
            Ok(None) => {
                if input.len() >= self.limits.max_head {
                    return Err(ReadError::HeadTooLong {
                        max: self.limits.max_head,
                        seen: Seen::quote(input),
                    });
                }
                return Ok(false);
            }
            Err(HeadError::Malformed { what }) => {
                return Err(ReadError::BadHead {
                    what,
                    seen: Seen::quote(input),
                });
            }
            Err(HeadError::TooLong { max_len }) => {
                return Err(ReadError::HeadTooLong {
                    max: max_len,
                    seen: Seen::quote(input),
                });
            }
        };
        let len = head.len;
        if !(100..=599).contains(&head.code) {
            // httparse takes any three digits; RFC 9110 §15 defines 100 to 599 only.
            return Err(ReadError::BadHead {
                what: "status code outside 100-599",
                seen: Seen::quote(input),
            });
        }
        self.status = head.code;
        self.headers = ResponseHeaders {
            fields: head
                .headers
                .iter()
                .map(|(n, v)| (Box::from(n), Box::from(v)))
                .collect(),
        };
        let minor = head.minor_version;
        *input = &input[len..];
        if (100..200).contains(&self.status) && self.status != 101 {
            // An interim answer: the real one follows.
            self.headers = ResponseHeaders::default();
            return Ok(true);
        }
        self.framing(minor)?;
        Ok(true)
    }

    /// Decides how the body is delimited from the status and headers just read.
    fn framing(&mut self, minor: u8) -> Result<(), ReadError> {
        let h = &self.headers;
        self.keep_alive = if minor == 0 {
            h.has_token("connection", "keep-alive")
        } else {
            !h.has_token("connection", "close")
        };
        for value in h.all("content-encoding") {
            if tokens(value).any(|t| !t.eq_ignore_ascii_case(b"identity")) {
                return Err(ReadError::UnsupportedCoding {
                    header: "Content-Encoding",
                    seen: Seen::quote(value),
                });
            }
        }
        let mut codings = h.all("transfer-encoding").flat_map(tokens);
        let chunked = match (codings.next(), codings.next()) {
            (None, _) => false,
            (Some(t), None) if t.eq_ignore_ascii_case(b"chunked") => true,
            _ => {
                let all: Vec<u8> = h
                    .all("transfer-encoding")
                    .collect::<Vec<_>>()
                    .join(&b","[..]);
                return Err(ReadError::UnsupportedCoding {
                    header: "Transfer-Encoding",
                    seen: Seen::quote(&all),
                });
            }
        };
        let length = content_length(h)?;
        let body = if (100..200).contains(&self.status) || self.status == 204 || self.status == 304
        {
            Body::Length(0)
        } else if chunked {
            if length.is_some() {
                self.keep_alive = false;
            }
            Body::Chunked
        } else {
            match length {
                Some(n) => {
                    self.declared = Some(n);
                    match usize::try_from(n) {
                        Ok(n) if n <= self.limits.max_body => Body::Length(n),
                        _ => return Err(self.too_large()),
                    }
                }
                None => Body::UntilClose,
            }
        };
        self.state = match body {
            Body::Length(0) => State::Done,
            Body::Length(n) => {
                self.body.reserve_exact(n);
                State::Length { remaining: n }
            }
            Body::Chunked => State::Chunked(Chunk::Size),
            Body::UntilClose => {
                self.keep_alive = false;
                State::UntilClose
            }
        };
        Ok(())
    }

    /// One step of chunked decoding; `None` when `input` is spent (what is left of an
    /// unfinished line stays in it). The last step answers `Trailers { seen: usize::MAX }`.
    fn chunk(&mut self, chunk: Chunk, input: &mut &[u8]) -> Result<Option<Chunk>, ReadError> {
        match chunk {
            Chunk::Size => {
                let Some(eol) = find_crlf(input, MAX_CHUNK_LINE)? else {
                    return Ok(None);
                };
                let line = &input[..eol];
                let size = chunk_size(line)?;
                *input = &input[eol + 2..];
                if size == 0 {
                    return Ok(Some(Chunk::Trailers { seen: 0 }));
                }
                if self.body.len().saturating_add(size) > self.limits.max_body {
                    return Err(self.too_large());
                }
                Ok(Some(Chunk::Data { remaining: size }))
            }
            Chunk::Data { remaining } => {
                if input.is_empty() {
                    return Ok(None);
                }
                let n = remaining.min(input.len());
                self.body.extend_from_slice(&input[..n]);
                *input = &input[n..];
                Ok(Some(if n == remaining {
                    Chunk::DataEnd
                } else {
                    Chunk::Data {
                        remaining: remaining - n,
                    }
                }))
            }
            Chunk::DataEnd => match input {
                [b'\r', b'\n', ..] => {
                    *input = &input[2..];
                    Ok(Some(Chunk::Size))
                }
                [] | [b'\r'] => Ok(None),
                _ => Err(ReadError::BadChunk {
                    what: "chunk data not followed by CRLF",
                    seen: Seen::quote(input),
                }),
            },
            Chunk::Trailers { seen } => {
                let room = MAX_TRAILERS - seen;
                let Some(eol) = find_crlf(input, room)? else {
                    return Ok(None);
                };
                *input = &input[eol + 2..];
                if eol == 0 {
                    return Ok(Some(Chunk::Trailers { seen: usize::MAX }));
                }
                Ok(Some(Chunk::Trailers {
                    seen: seen + eol + 2,
                }))
            }
        }
    }

    fn too_large(&self) -> ReadError {
        ReadError::BodyTooLarge {
            max: self.limits.max_body,
            declared: self.declared,
        }
    }
}

/// The comma-separated tokens of a header value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Every `Content-Length` must be the same decimal number (a list of equal values counts as
/// one, as RFC 9110 allows).
fn content_length(headers: &ResponseHeaders) -> Result<Option<u64>, ReadError> {
    let mut found: Option<u64> = None;
    for value in headers.all("content-length") {
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let n = std::str::from_utf8(token)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok());
            match (n, found) {
                (Some(n), None) => found = Some(n),
                (Some(n), Some(f)) if n == f => {}
                _ => {
                    let all: Vec<u8> = headers
                        .all("content-length")
                        .collect::<Vec<_>>()
                        .join(&b","[..]);
                    return Err(ReadError::BadContentLength {
                        seen: Seen::quote(&all),
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The position of the first CRLF in `input` if within `max` bytes; an error when `max` bytes
/// hold none (or a bare LF comes first).
fn find_crlf(input: &[u8], max: usize) -> Result<Option<usize>, ReadError> {
    let window = &input[..input.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) if lf > 0 && window[lf - 1] == b'\r' => Ok(Some(lf - 1)),
        Some(_) => Err(ReadError::BadChunk {
            what: "line not ended by CRLF",
            seen: Seen::quote(input),
        }),
        None if input.len() >= max && !input.is_empty() => Err(ReadError::BadChunk {
            what: "framing line too long",
            seen: Seen::quote(input),
        }),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (hex digits, then optional whitespace and `;extensions`).
fn chunk_size(line: &[u8]) -> Result<usize, ReadError> {
    let bad = |what| ReadError::BadChunk {
        what,
        seen: Seen::quote(line),
    };
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad("chunk size is not hexadecimal"));
    }
    let rest = rest.trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(bad("junk after the chunk size"));
    }
    let mut size: usize = 0;
    for &d in digits {
        // `is_ascii_hexdigit` held, so `to_digit` succeeds.
        let v = char::from(d).to_digit(16).unwrap_or(0) as usize;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(v))
            .ok_or_else(|| bad("chunk size overflows"))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests;
