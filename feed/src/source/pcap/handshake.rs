//! The HTTP/1.1 upgrade that opens a WebSocket: the client's `GET` and the server's response.
//!
//! Only what replay needs is read: the request's path and `Host` (to name the connection and
//! infer the venue), the response's status (anything but `101` leaves the connection unusable),
//! and the negotiated `permessage-deflate` parameters (RFC 7692) from the response's
//! `Sec-WebSocket-Extensions`. Header names are compared case-insensitively; a header block
//! longer than the configured limit is refused rather than buffered without bound.

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
}

/// What the server's response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code (`101` for an accepted upgrade).
    pub status: u16,
    /// Negotiated compression, if any.
    pub deflate: Option<DeflateParams>,
}

/// The length of the header block (through the blank line) at the start of `stream`, `Ok(None)`
/// while it is incomplete.
pub fn head_len(stream: &[u8], limit: usize) -> Result<Option<usize>, HandshakeError> {
    let searched = &stream[..stream.len().min(limit)];
    match searched.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => Ok(Some(at + 4)),
        None if stream.len() >= limit => Err(HandshakeError::TooLong),
        None => Ok(None),
    }
}

/// Splits a head into its first line and its `(name, value)` headers.
fn lines(head: &[u8]) -> Result<(&str, impl Iterator<Item = (&str, &str)>), HandshakeError> {
    let text = std::str::from_utf8(head).map_err(|_| HandshakeError::Malformed)?;
    let mut lines = text.split("\r\n");
    let first = lines.next().ok_or(HandshakeError::Malformed)?;
    let headers = lines.filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim(), value.trim()))
    });
    Ok((first, headers))
}

/// Reads the client's upgrade request from its complete head.
pub fn parse_request(head: &[u8]) -> Result<Request, HandshakeError> {
    let (first, headers) = lines(head)?;
    let mut parts = first.split(' ');
    if parts.next() != Some("GET") {
        return Err(HandshakeError::NotGet);
    }
    let path = parts.next().ok_or(HandshakeError::Malformed)?.to_owned();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
        return Err(HandshakeError::Malformed);
    }
    let host = headers
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.to_owned())
        .next();
    Ok(Request { path, host })
}

/// Reads the server's response from its complete head.
pub fn parse_response(head: &[u8]) -> Result<Response, HandshakeError> {
    let (first, headers) = lines(head)?;
    let mut parts = first.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
        return Err(HandshakeError::Malformed);
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HandshakeError::Malformed)?;
    let mut deflate = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("sec-websocket-extensions") && deflate.is_none() {
            deflate = value.split(',').find_map(permessage_deflate);
        }
    }
    Ok(Response { status, deflate })
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
        let req = b"GET /ws/btcusdt@depth HTTP/1.1\r\nhOsT: stream.binance.com:9443\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(head_len(req, 1024), Ok(Some(req.len())));
        assert_eq!(head_len(&req[..20], 1024), Ok(None));
        assert_eq!(head_len(&req[..20], 10), Err(HandshakeError::TooLong));
        let r = parse_request(req).expect("request");
        assert_eq!(r.path, "/ws/btcusdt@depth");
        assert_eq!(r.host.as_deref(), Some("stream.binance.com:9443"));

        let resp = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n";
        let r = parse_response(resp).expect("response");
        assert_eq!(r.status, 101);
        let d = r.deflate.expect("deflate");
        assert!(d.server_no_context_takeover && !d.client_no_context_takeover);
        assert_eq!(
            (d.server_max_window_bits, d.client_max_window_bits),
            (15, 10)
        );

        let refused = parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n").expect("response");
        assert_eq!((refused.status, refused.deflate), (403, None));
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\n\r\n"),
            Err(HandshakeError::NotGet)
        );
        assert_eq!(check_start(b"HTT", true), Ok(()));
        assert_eq!(check_start(b"GET /", false), Ok(()));
        assert_eq!(
            check_start(b"\x16\x03\x01\x02\x00", true),
            Err(HandshakeError::NotHttp)
        );
    }
}
