//! HTTP/1.1 heads: the request line or status line and the headers up to the blank line, parsed
//! with `httparse`. Bodies, chunking and connection management are the caller's.
//!
//! A head is parsed from the start of a buffer that may hold only part of it (a socket read, a
//! TCP segment): [`parse_request`] and [`parse_response`] answer `Ok(None)` until the blank line
//! has arrived, then the head with its length, so the caller knows where the body or the
//! upgraded protocol begins. Nothing is buffered here; the caller keeps the bytes.
//!
//! Invariants: a head is bounded ([`HeadRules::max_len`]), so a peer that never ends its headers
//! is refused once that many bytes are held rather than buffered without bound; any input is a
//! head, `None` or an error, never a panic. Header names compare case-insensitively, values are
//! bytes with the surrounding whitespace removed. Not on a hot path: a head is parsed once per
//! connection, and one that has more than [`INLINE_HEADERS`] headers costs an allocation.

/// Headers parsed without allocating; a head with more is parsed again with room for as many
/// as its length allows.
pub const INLINE_HEADERS: usize = 64;

/// How heads are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadRules {
    /// Longest head accepted, in bytes through its blank line.
    pub max_len: usize,
    /// Skip a header line that is not `name: value` instead of refusing the head. For reading
    /// captured traffic, where what can be read is wanted; a server answering peers refuses.
    pub skip_invalid_headers: bool,
}

impl HeadRules {
    /// Refuses anything that is not a well-formed head, up to `max_len` bytes.
    pub const fn strict(max_len: usize) -> Self {
        HeadRules {
            max_len,
            skip_invalid_headers: false,
        }
    }

    /// Skips malformed header lines, up to `max_len` bytes.
    pub const fn lenient(max_len: usize) -> Self {
        HeadRules {
            max_len,
            skip_invalid_headers: true,
        }
    }
}

/// Why a head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The head breaks HTTP/1.1 syntax; `what` says where.
    #[error("malformed HTTP head: {what}")]
    Malformed {
        /// The part that is wrong (`"invalid header name"`, `"invalid HTTP version"`, …).
        what: &'static str,
    },
    /// [`HeadRules::max_len`] bytes are held and the head has not ended.
    #[error("HTTP head longer than {max_len} bytes")]
    TooLong {
        /// The limit.
        max_len: usize,
    },
}

/// The headers of a head, in order, borrowing the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers<'b> {
    fields: Vec<(&'b str, &'b [u8])>,
}

impl<'b> Headers<'b> {
    /// Every `(name, value)`, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> {
        self.fields.iter().copied()
    }

    /// Every value of header `name` (case-insensitive), in the order sent.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &'b [u8]> {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'b [u8]> {
        self.all(name).next()
    }

    /// The first value of header `name` as text; `None` when absent or not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&'b str> {
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
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'b> {
    /// `GET`, `POST`, …
    pub method: &'b str,
    /// The request target as sent (`/stream?streams=a/b`), undecoded.
    pub target: &'b str,
    /// The `x` of `HTTP/1.x`.
    pub minor_version: u8,
    /// The headers.
    pub headers: Headers<'b>,
    /// Bytes of the head, through its blank line: where the body (or the next protocol) starts.
    pub len: usize,
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'b> {
    /// The status code (`101`, `200`, …).
    pub code: u16,
    /// The reason phrase (`Switching Protocols`), possibly empty.
    pub reason: &'b str,
    /// The `x` of `HTTP/1.x`.
    pub minor_version: u8,
    /// The headers.
    pub headers: Headers<'b>,
    /// Bytes of the head, through its blank line: where the body (or the next protocol) starts.
    pub len: usize,
}

/// Parses the request head at the start of `buf`; `Ok(None)` while it is incomplete.
pub fn parse_request<'b>(
    buf: &'b [u8],
    rules: &HeadRules,
) -> Result<Option<RequestHead<'b>>, HeadError> {
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_requests(rules.skip_invalid_headers);
    parse_bounded(buf, rules, |bytes, storage| {
        let mut req = httparse::Request::new(storage);
        let httparse::Status::Complete(len) = config.parse_request(&mut req, bytes)? else {
            return Ok(None);
        };
        Ok(Some(RequestHead {
            // A complete request always has these.
            method: req.method.unwrap_or_default(),
            target: req.path.unwrap_or_default(),
            minor_version: req.version.unwrap_or_default(),
            headers: Headers::from(&*req.headers),
            len,
        }))
    })
}

/// Parses the response head at the start of `buf`; `Ok(None)` while it is incomplete.
pub fn parse_response<'b>(
    buf: &'b [u8],
    rules: &HeadRules,
) -> Result<Option<ResponseHead<'b>>, HeadError> {
    let mut config = httparse::ParserConfig::default();
    config.ignore_invalid_headers_in_responses(rules.skip_invalid_headers);
    parse_bounded(buf, rules, |bytes, storage| {
        let mut resp = httparse::Response::new(storage);
        let httparse::Status::Complete(len) = config.parse_response(&mut resp, bytes)? else {
            return Ok(None);
        };
        Ok(Some(ResponseHead {
            // A complete response always has these.
            code: resp.code.unwrap_or_default(),
            reason: resp.reason.unwrap_or_default(),
            minor_version: resp.version.unwrap_or_default(),
            headers: Headers::from(&*resp.headers),
            len,
        }))
    })
}

impl<'b> From<&[httparse::Header<'b>]> for Headers<'b> {
    fn from(headers: &[httparse::Header<'b>]) -> Self {
        Headers {
            fields: headers
                .iter()
                .map(|h| (h.name, h.value.trim_ascii()))
                .collect(),
        }
    }
}

/// Runs `parse` over the first `max_len` bytes of `buf` with room for the headers, and turns
/// an unfinished head at the limit into [`HeadError::TooLong`].
fn parse_bounded<'b, T>(
    buf: &'b [u8],
    rules: &HeadRules,
    parse: impl Fn(&'b [u8], &mut [httparse::Header<'b>]) -> Result<Option<T>, httparse::Error>,
) -> Result<Option<T>, HeadError> {
    let bytes = &buf[..buf.len().min(rules.max_len)];
    let mut inline = [httparse::EMPTY_HEADER; INLINE_HEADERS];
    let head = match parse(bytes, &mut inline) {
        Err(httparse::Error::TooManyHeaders) => {
            // A header line takes at least three bytes (`a:` and a line feed).
            let mut heap = vec![httparse::EMPTY_HEADER; bytes.len() / 3 + 1];
            parse(bytes, &mut heap)
        }
        other => other,
    }
    .map_err(|e| HeadError::Malformed { what: describe(e) })?;
    match head {
        Some(head) => Ok(Some(head)),
        None if buf.len() >= rules.max_len => Err(HeadError::TooLong {
            max_len: rules.max_len,
        }),
        None => Ok(None),
    }
}

/// Which part of the head `e` found wrong.
fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or target",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: HeadRules = HeadRules::strict(16 << 10);

    const UPGRADE: &[u8] = b"GET /stream?streams=btcusdt%40depth/btcusdt@trade HTTP/1.1\r\n\
Host: 127.0.0.1:9443\r\nConnection: Upgrade\r\nUPGRADE:  WebSocket \r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn request_head_with_its_length_and_headers() {
        let mut buf = UPGRADE.to_vec();
        buf.extend_from_slice(b"\x81\x05hello");
        let head = parse_request(&buf, &RULES)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.len, UPGRADE.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/stream?streams=btcusdt%40depth/btcusdt@trade");
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.headers.len(), 5);
        assert_eq!(head.headers.get("upgrade"), Some(&b"WebSocket"[..]));
        assert_eq!(head.headers.get_str("HOST"), Some("127.0.0.1:9443"));
        assert_eq!(head.headers.get("content-length"), None);
    }

    #[test]
    fn incomplete_heads_wait_at_every_cut() {
        for cut in 0..UPGRADE.len() {
            assert_eq!(
                parse_request(&UPGRADE[..cut], &RULES),
                Ok(None),
                "cut {cut}"
            );
        }
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        for cut in 0..resp.len() {
            assert_eq!(parse_response(&resp[..cut], &RULES), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn response_head_and_repeated_headers() {
        let buf = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: a\r\n\
sec-websocket-extensions: permessage-deflate\r\n\r\nbody";
        let head = parse_response(buf, &RULES)
            .expect("valid")
            .expect("complete");
        assert_eq!((head.code, head.reason), (101, "Switching Protocols"));
        assert_eq!(&buf[head.len..], b"body");
        let all: Vec<&[u8]> = head.headers.all("SEC-WEBSOCKET-EXTENSIONS").collect();
        assert_eq!(all, [&b"a"[..], &b"permessage-deflate"[..]]);
    }

    #[test]
    fn bounded_and_malformed_heads_are_errors() {
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100]].concat();
        let small = HeadRules::strict(64);
        assert_eq!(
            parse_request(&long, &small),
            Err(HeadError::TooLong { max_len: 64 })
        );
        assert_eq!(parse_request(&long[..63], &small), Ok(None));
        assert!(matches!(
            parse_request(b"GET\r\n\r\n", &RULES),
            Err(HeadError::Malformed { .. })
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", &RULES),
            Err(HeadError::Malformed {
                what: "invalid header name"
            })
        ));
        assert!(matches!(
            parse_response(b"HTTP/9.9 200 OK\r\n\r\n", &RULES),
            Err(HeadError::Malformed {
                what: "invalid HTTP version"
            })
        ));
    }

    #[test]
    fn lenient_rules_skip_bad_header_lines() {
        let head = b"GET / HTTP/1.1\r\nno colon here\r\nHost: h\r\n\r\n";
        let req = parse_request(head, &HeadRules::lenient(1024))
            .expect("valid")
            .expect("complete");
        assert_eq!(req.headers.get_str("host"), Some("h"));
        assert_eq!(req.headers.len(), 1);
        let resp = b"HTTP/1.1 403 Forbidden\r\n:bad\r\nX: y\r\n\r\n";
        let resp = parse_response(resp, &HeadRules::lenient(1024))
            .expect("valid")
            .expect("complete");
        assert_eq!((resp.code, resp.headers.get("x")), (403, Some(&b"y"[..])));
    }

    #[test]
    fn more_headers_than_fit_inline_are_all_read() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..INLINE_HEADERS * 3 {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let req = parse_request(&head, &RULES)
            .expect("valid")
            .expect("complete");
        assert_eq!(req.headers.len(), INLINE_HEADERS * 3);
        assert_eq!(req.headers.get_str("x-191"), Some("191"));
        assert_eq!(req.len, head.len());
    }

    proptest::proptest! {
        /// Any bytes are a head, "not yet" or an error: never a panic, never a length past
        /// the input or the limit, and a prefix of a complete head is never complete.
        #[test]
        fn any_bytes_are_read_safely(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            max_len in 1usize..300,
            lenient: bool,
        ) {
            let rules = HeadRules { max_len, skip_invalid_headers: lenient };
            if let Ok(Some(head)) = parse_request(&bytes, &rules) {
                proptest::prop_assert!(head.len <= bytes.len().min(max_len));
                proptest::prop_assert_eq!(parse_request(&bytes[..head.len - 1], &rules), Ok(None));
            }
            if let Ok(Some(head)) = parse_response(&bytes, &rules) {
                proptest::prop_assert!(head.len <= bytes.len().min(max_len));
            }
        }

        /// Heads cut anywhere before their end wait for more; at their end they are complete.
        #[test]
        fn heads_complete_exactly_at_their_blank_line(
            target in "/[a-z0-9@/?=&%.]{0,40}",
            headers in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}"), 0..80),
            cut in 0usize..4096,
        ) {
            let mut head = format!("GET {target} HTTP/1.1\r\n");
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let bytes = head.as_bytes();
            let cut = cut % bytes.len();
            proptest::prop_assert_eq!(parse_request(&bytes[..cut], &RULES), Ok(None));
            let parsed = parse_request(bytes, &RULES).expect("valid").expect("complete");
            proptest::prop_assert_eq!(parsed.len, bytes.len());
            proptest::prop_assert_eq!(parsed.target, target.as_str());
            proptest::prop_assert_eq!(parsed.headers.len(), headers.len());
            for (i, (name, value)) in parsed.headers.iter().enumerate() {
                proptest::prop_assert_eq!(name, headers[i].0.as_str());
                proptest::prop_assert_eq!(value, headers[i].1.trim().as_bytes());
            }
        }
    }
}
