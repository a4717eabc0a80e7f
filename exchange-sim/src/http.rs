//! The HTTP/1.1 side of the simulator's listener: reading a request head, routing it, and the
//! plain responses (REST bodies, errors, the WebSocket `101`).
//!
//! Every connection starts with an HTTP request. One carrying `Upgrade: websocket` becomes a
//! market-stream session; any other is a REST call answered once and closed
//! (`Connection: close`), which is all a test client needs. The head is parsed by the
//! workspace's one HTTP codec (`pinion_net::http`), bounded ([`MAX_HEAD`]) and read with the
//! socket's read timeout, so a silent or hostile peer costs one thread for a few seconds at most.

use std::io::{self, Read, Write};

use pinion_net::http::{self, HeadRules};

/// Longest request head accepted, protection against a peer that never ends its headers.
pub(crate) const MAX_HEAD: usize = 16 << 10;

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    /// The socket failed or timed out.
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
    /// The peer closed before the head ended.
    #[error("connection closed inside the request head")]
    Closed,
    /// The head is longer than [`MAX_HEAD`].
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLong,
    /// The request line or a header is not HTTP/1.1.
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
}

/// A parsed request head: what the router needs, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string after `?`, undecoded; empty when there is none.
    pub query: String,
    /// Whether the client asks to upgrade to WebSocket.
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Key`, when present.
    pub websocket_key: Option<String>,
    /// Whether the client asked to close the connection after the response
    /// (`Connection: close`).
    pub close: bool,
    /// `Content-Length`, when sent (a body follows the head).
    pub content_length: Option<usize>,
    /// `X-MBX-APIKEY`: the API key a signed REST request names.
    pub api_key: Option<String>,
}

impl RequestHead {
    /// The value of query parameter `name`, percent-decoded (`%40` → `@`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| percent_decode(value))
        })
    }
}

/// Reads bytes until the blank line that ends the head. A client waits for the response before
/// sending anything else (a GET has no body; a WebSocket client waits for the `101`), so nothing
/// past the head is consumed.
pub(crate) fn read_head(stream: &mut impl Read) -> Result<RequestHead, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    // Byte by byte: a head is small, and this never reads into the bytes that follow it. The
    // codec runs only when a blank line has just arrived, which is where a head ends.
    loop {
        if head.len() >= MAX_HEAD {
            return Err(HeadError::TooLong);
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        }
        if (head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"))
            && let Some(parsed) = parse_head(&head)?
        {
            return Ok(parsed);
        }
    }
}

/// Parses the head at the start of `head`; `None` while it is incomplete.
pub(crate) fn parse_head(head: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let parsed = match http::parse_request(head, &HeadRules::strict(MAX_HEAD)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(http::HeadError::TooLong { .. }) => return Err(HeadError::TooLong),
        Err(http::HeadError::Malformed { what }) => return Err(HeadError::Malformed(what)),
        Err(_) => return Err(HeadError::Malformed("unreadable head")),
    };
    let target = parsed.target;
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("request target is not a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let upgrade_websocket = parsed
        .headers
        .get("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    let websocket_key = match parsed.headers.get("sec-websocket-key") {
        None => None,
        Some(key) => Some(
            std::str::from_utf8(key)
                .map_err(|_| HeadError::Malformed("Sec-WebSocket-Key is not text"))?
                .to_owned(),
        ),
    };
    let close = parsed.headers.get("connection").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    });
    let content_length = match parsed.headers.get_str("content-length") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| HeadError::Malformed("Content-Length is not a number"))?,
        ),
    };
    let api_key = parsed.headers.get_str("x-mbx-apikey").map(str::to_owned);
    Ok(Some(RequestHead {
        api_key,
        close,
        content_length,
        method: parsed.method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        upgrade_websocket,
        websocket_key,
    }))
}

/// `%XX` sequences decoded; anything malformed is kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a complete response and leaves the connection to be closed.
pub(crate) fn respond(
    stream: &mut impl Write,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A Binance-style error body, `{"code":…,"msg":…}`.
#[derive(Debug, serde::Serialize)]
struct ErrorBody<'a> {
    code: i32,
    msg: &'a str,
}

/// Answers with a Binance-style JSON error body (`{"code":…,"msg":…}`), `msg` escaped as JSON
/// requires.
pub(crate) fn respond_error(
    stream: &mut impl Write,
    status: &str,
    code: i32,
    msg: &str,
) -> io::Result<()> {
    let body = serde_json::to_vec(&ErrorBody { code, msg }).map_err(io::Error::other)?;
    respond(stream, status, "application/json;charset=UTF-8", &body)
}

/// Completes the WebSocket upgrade with the `101` response for `key`.
pub(crate) fn respond_switching(stream: &mut impl Write, key: &str) -> io::Result<()> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_request_is_recognised_with_its_key_and_query() {
        let head = b"GET /stream?streams=btcusdt%40depth%40100ms/btcusdt@trade HTTP/1.1\r\n\
Host: 127.0.0.1:9443\r\nConnection: Upgrade\r\nUPGRADE: WebSocket\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let req = read_head(&mut &head[..]).expect("head");
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/stream");
        assert!(req.upgrade_websocket);
        assert_eq!(
            req.websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(
            req.query_param("streams").as_deref(),
            Some("btcusdt@depth@100ms/btcusdt@trade")
        );
        assert_eq!(req.query_param("timeUnit"), None);
    }

    #[test]
    fn plain_get_has_no_upgrade() {
        let head = b"GET /api/v3/depth?symbol=BTCUSDT&limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
        let req = read_head(&mut &head[..]).expect("head");
        assert!(!req.upgrade_websocket);
        assert_eq!(req.path, "/api/v3/depth");
        assert_eq!(req.query_param("symbol").as_deref(), Some("BTCUSDT"));
        assert_eq!(req.query_param("limit").as_deref(), Some("1000"));
    }

    #[test]
    fn bad_heads_are_errors_not_panics() {
        assert!(matches!(
            read_head(&mut &b"GET / HTTP/1.1\r\nHost: x\r\n"[..]),
            Err(HeadError::Closed)
        ));
        assert!(matches!(
            read_head(&mut &b"GET\r\n\r\n"[..]),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read_head(&mut &b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"[..]),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read_head(&mut &b"GET * HTTP/1.1\r\n\r\n"[..]),
            Err(HeadError::Malformed(_))
        ));
        // The head ends at its blank line: bytes after it are left unread.
        let mut rest: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
        assert_eq!(read_head(&mut rest).expect("head").path, "/");
        assert_eq!(rest, b"GET /next");
        let long = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(read_head(&mut &long[..]), Err(HeadError::TooLong)));
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%zz%40"), "%zz@");
    }

    #[test]
    fn error_bodies_are_json_whatever_the_message() {
        let mut out = Vec::new();
        respond_error(
            &mut out,
            "400 Bad Request",
            -1102,
            "Mandatory parameter 'symbol'.",
        )
        .expect("write");
        assert!(out.ends_with(br#"{"code":-1102,"msg":"Mandatory parameter 'symbol'."}"#));
        let msg = "quote \" backslash \\ newline \n tab \t";
        let mut out = Vec::new();
        respond_error(&mut out, "400 Bad Request", -1, msg).expect("write");
        let head = http::parse_response(&out, &HeadRules::strict(MAX_HEAD))
            .expect("valid head")
            .expect("complete head");
        let body = &out[head.len..];
        assert_eq!(head.code, 400);
        assert_eq!(
            head.headers.get_str("content-length"),
            Some(body.len().to_string().as_str())
        );
        let parsed: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
        assert_eq!(parsed["code"], -1);
        assert_eq!(parsed["msg"], msg);
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        let mut out = Vec::new();
        respond_switching(&mut out, "dGhlIHNhbXBsZSBub25jZQ==").expect("write");
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 101 "));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }
}
