//! The HTTP/1.1 upgrade that opens a WebSocket: the client's `GET` and the server's response.
//!
//! Only what replay needs is read: the request's path and `Host` (to name the connection and
//! infer the venue), the response's status (anything but `101` leaves the connection unusable),
//! and the negotiated `permessage-deflate` parameters (RFC 7692) from the response's
//! `Sec-WebSocket-Extensions`. The heads are parsed by the workspace's one HTTP codec
//! (`pinion_net::http`): header names compare case-insensitively, and a header block longer than
//! the configured limit is refused rather than buffered without bound.

use pinion_net::http::{self, HeadError, HeadRules};

/// Why an upgrade could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The head is not an HTTP request/response line followed by headers.
    Malformed,
    /// The header block exceeds the limit without ending.
    TooLong,
    /// The request is not a `GET`.
    NotGet,
    /// The stream does not start like HTTP at all (a TLS session, another protocol).
    NotHttp,
}

/// Checks that a direction's first bytes can start an upgrade (`GET ` from the client, `HTTP/`
/// from the server), so a TLS or other session is refused at once instead of after the head
/// limit.
pub fn check_start(stream: &[u8], from_server: bool) -> Result<(), HandshakeError> {
    let expected: &[u8] = if from_server { b"HTTP/" } else { b"GET " };
    let n = stream.len().min(expected.len());
    if stream[..n] == expected[..n] {
        Ok(())
    } else {
        Err(HandshakeError::NotHttp)
    }
}

/// `permessage-deflate` parameters agreed in the server's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window (8..=15; 15 when not given).
    pub server_max_window_bits: u8,
    /// The client's LZ77 window (8..=15; 15 when not given).
    pub client_max_window_bits: u8,
}

/// What the client's request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request target (`/ws/btcusdt@depth`).
    pub path: String,
    /// The `Host` header, when present.
    pub host: Option<String>,
    /// Whether it asks for a WebSocket (`Upgrade: websocket`); a plain REST request does not.
    pub upgrade: bool,
    /// Bytes of the head through its blank line: the client's frames start after it.
    pub len: usize,
}

/// What the server's response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code (`101` for an accepted upgrade).
    pub status: u16,
    /// Negotiated compression, if any.
    pub deflate: Option<DeflateParams>,
    /// Bytes of the head through its blank line: the server's frames start after it.
    pub len: usize,
}

/// A captured head is read for what it says: a header line that is not `name: value` is
/// skipped rather than making the whole connection unreadable.
const fn rules(limit: usize) -> HeadRules {
    HeadRules::lenient(limit)
}

impl From<HeadError> for HandshakeError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::TooLong { .. } => HandshakeError::TooLong,
            _ => HandshakeError::Malformed,
        }
    }
}

/// Reads the client's upgrade request at the start of `stream`; `Ok(None)` while its head is
/// incomplete (and shorter than `limit`).
pub fn parse_request(stream: &[u8], limit: usize) -> Result<Option<Request>, HandshakeError> {
    let Some(head) = http::parse_request(stream, &rules(limit))? else {
        return Ok(None);
    };
    if head.method != "GET" {
        return Err(HandshakeError::NotGet);
    }
    let host = match head.headers.get("host") {
        Some(value) => Some(
            std::str::from_utf8(value)
                .map_err(|_| HandshakeError::Malformed)?
                .to_owned(),
        ),
        None => None,
    };
    let upgrade = head.headers.all("upgrade").any(|v| {
        std::str::from_utf8(v).is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    });
    Ok(Some(Request {
        path: head.target.to_owned(),
        host,
        upgrade,
        len: head.len,
    }))
}

/// Reads the server's response at the start of `stream`; `Ok(None)` while its head is
/// incomplete (and shorter than `limit`).
pub fn parse_response(stream: &[u8], limit: usize) -> Result<Option<Response>, HandshakeError> {
    let Some(head) = http::parse_response(stream, &rules(limit))? else {
        return Ok(None);
    };
    // The first `permessage-deflate` offer of any extensions header is the agreed one.
    let deflate = head
        .headers
        .all("sec-websocket-extensions")
        .filter_map(|value| std::str::from_utf8(value).ok())
        .find_map(|value| value.split(',').find_map(permessage_deflate));
    Ok(Some(Response {
        status: head.code,
        deflate,
        len: head.len,
    }))
}

/// The parameters of one extension element if it is `permessage-deflate`.
fn permessage_deflate(element: &str) -> Option<DeflateParams> {
    let mut params = element.split(';').map(str::trim);
    if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut agreed = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let bits = value
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|b| (8..=15).contains(b));
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => agreed.server_no_context_takeover = true,
            "client_no_context_takeover" => agreed.client_no_context_takeover = true,
            "server_max_window_bits" => agreed.server_max_window_bits = bits.unwrap_or(15),
            "client_max_window_bits" => agreed.client_max_window_bits = bits.unwrap_or(15),
            _ => {}
        }
    }
    Some(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_are_read() {
        let req = b"GET /ws/btcusdt@depth HTTP/1.1\r\nhOsT: stream.binance.com:9443\r\nUpgrade: websocket\r\n\r\n\x81\x00";
        let head = req.len() - 2;
        for cut in 0..head {
            assert_eq!(parse_request(&req[..cut], 1024), Ok(None), "cut {cut}");
        }
        assert_eq!(parse_request(&req[..20], 10), Err(HandshakeError::TooLong));
        let r = parse_request(req, 1024)
            .expect("request")
            .expect("complete");
        assert_eq!(r.path, "/ws/btcusdt@depth");
        assert_eq!(r.host.as_deref(), Some("stream.binance.com:9443"));
        assert_eq!(r.len, head);

        let resp = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n";
        let r = parse_response(resp, 1024)
            .expect("response")
            .expect("complete");
        assert_eq!((r.status, r.len), (101, resp.len()));
        let d = r.deflate.expect("deflate");
        assert!(d.server_no_context_takeover && !d.client_no_context_takeover);
        assert_eq!(
            (d.server_max_window_bits, d.client_max_window_bits),
            (15, 10)
        );

        let refused = parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", 1024)
            .expect("response")
            .expect("complete");
        assert_eq!((refused.status, refused.deflate), (403, None));
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\n\r\n", 1024),
            Err(HandshakeError::NotGet)
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n", 1024),
            Err(HandshakeError::Malformed)
        );
        assert_eq!(check_start(b"HTT", true), Ok(()));
        assert_eq!(check_start(b"GET /", false), Ok(()));
        assert_eq!(
            check_start(b"\x16\x03\x01\x02\x00", true),
            Err(HandshakeError::NotHttp)
        );
    }

    #[test]
    fn captured_heads_are_read_past_odd_lines() {
        // A header line without a colon is skipped; the deflate offer of a later extensions
        // header still counts when an earlier one has none.
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nweird line\r\n\
Sec-WebSocket-Extensions: x-other\r\nsec-websocket-extensions: permessage-deflate\r\n\r\n";
        let r = parse_response(resp, 1024)
            .expect("response")
            .expect("complete");
        assert_eq!(r.status, 101);
        assert_eq!(r.deflate.map(|d| d.server_max_window_bits), Some(15));
        assert_eq!(
            parse_response(b"HTTP/1.1 1x1 Nope\r\n\r\n", 1024),
            Err(HandshakeError::Malformed)
        );
    }
}
