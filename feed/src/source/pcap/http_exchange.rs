//! Plain HTTP/1.1 exchanges in a capture: the REST requests a feed handler makes beside its
//! WebSocket streams (a depth snapshot, an instrument list), read so that a capture replays
//! with the snapshot its books were synced from.
//!
//! A connection whose first request asks for no upgrade is read as a series of requests and
//! responses (keep-alive included): each response is matched with the oldest unanswered
//! request, its body delimited by `Content-Length`, by chunked transfer coding, or by the end
//! of the connection, and decoded from `gzip` or `deflate` content coding. Heads are parsed by
//! the workspace's HTTP codec (`pinion_net::http`).

use std::io::Read as _;

use pinion_net::http::{self, HeadRules};

/// Why an exchange could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// A head that is not HTTP, or longer than the limit.
    BadHead,
    /// A chunk size line that is not hexadecimal, or chunk framing that is broken.
    BadChunk,
    /// A body longer than the message limit.
    TooLarge,
    /// A body whose content coding does not decode.
    BadEncoding,
}

/// One response read whole.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, decoded from its content coding.
    pub body: Vec<u8>,
    /// Bytes of the stream the response took, head included.
    pub len: usize,
}

/// How a response's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads the request at the start of `stream`: its target and `Host`, and its length (a body,
/// when it has one, by `Content-Length`). `Ok(None)` while incomplete.
pub fn request(stream: &[u8], limit: usize) -> Result<Option<(String, usize)>, HttpError> {
    let Some(head) =
        http::parse_request(stream, &HeadRules::lenient(limit)).map_err(|_| HttpError::BadHead)?
    else {
        return Ok(None);
    };
    let body = content_length(&head.headers)?.unwrap_or(0);
    if stream.len() < head.len + body {
        return Ok(None);
    }
    let host = head.headers.get_str("host").unwrap_or("");
    Ok(Some((
        format!("http://{host}{}", head.target),
        head.len + body,
    )))
}

/// Reads the response at the start of `stream`. `ended`: the direction has ended, so a body
/// delimited by the connection's end is complete. `Ok(None)` while incomplete.
pub fn response(
    stream: &[u8],
    ended: bool,
    limit: usize,
    max_body: usize,
) -> Result<Option<Response>, HttpError> {
    let Some(head) =
        http::parse_response(stream, &HeadRules::lenient(limit)).map_err(|_| HttpError::BadHead)?
    else {
        return Ok(None);
    };
    let status = head.code;
    let chunked = head
        .headers
        .all("transfer-encoding")
        .any(|v| contains_token(v, "chunked"));
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_length(&head.headers)? {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let encoding = head
        .headers
        .get_str("content-encoding")
        .map(|e| e.trim().to_ascii_lowercase());
    let rest = &stream[head.len..];
    let (raw, used) = match framing {
        Framing::Length(n) if n > max_body => return Err(HttpError::TooLarge),
        Framing::Length(n) if rest.len() < n => return Ok(None),
        Framing::Length(n) => (rest[..n].to_vec(), n),
        Framing::Chunked => match dechunk(rest, max_body)? {
            Some(x) => x,
            None => return Ok(None),
        },
        Framing::UntilClose if rest.len() > max_body => return Err(HttpError::TooLarge),
        Framing::UntilClose if !ended => return Ok(None),
        Framing::UntilClose => (rest.to_vec(), rest.len()),
    };
    let body = match encoding.as_deref() {
        None | Some("" | "identity") => raw,
        Some("gzip" | "x-gzip") => inflate(flate2::read::MultiGzDecoder::new(&raw[..]), max_body)?,
        Some("deflate") => inflate(flate2::read::ZlibDecoder::new(&raw[..]), max_body)?,
        Some(_) => return Err(HttpError::BadEncoding),
    };
    Ok(Some(Response {
        status,
        body,
        len: head.len + used,
    }))
}

fn content_length(headers: &http::Headers<'_>) -> Result<Option<usize>, HttpError> {
    match headers.get_str("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| HttpError::BadHead),
        None => Ok(None),
    }
}

fn contains_token(value: &[u8], token: &str) -> bool {
    std::str::from_utf8(value)
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The body of a chunked message at the start of `s` and the bytes it took, trailers
/// included; `None` while incomplete.
fn dechunk(s: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&s[at..]) else {
            return Ok(None);
        };
        let line = &s[at..at + eol];
        // Chunk extensions (`;name=value`) are allowed and ignored.
        let size_text = line.split(|&c| c == b';').next().unwrap_or(&[]);
        let size_text = std::str::from_utf8(size_text).map_err(|_| HttpError::BadChunk)?;
        let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| HttpError::BadChunk)?;
        at += eol + 2;
        if size == 0 {
            // Trailer lines up to an empty one.
            loop {
                let Some(eol) = find_crlf(&s[at..]) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if body.len() + size > max_body {
            return Err(HttpError::TooLarge);
        }
        if s.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&s[at..at + size]);
        at += size;
        if &s[at..at + 2] != b"\r\n" {
            return Err(HttpError::BadChunk);
        }
        at += 2;
    }
}

fn find_crlf(s: &[u8]) -> Option<usize> {
    s.windows(2).position(|w| w == b"\r\n")
}

fn inflate(reader: impl std::io::Read, max_body: usize) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    reader
        .take(max_body as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| HttpError::BadEncoding)?;
    if out.len() > max_body {
        return Err(HttpError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn requests_give_their_url_and_length() {
        let req = b"GET /api/v3/depth?symbol=BTCUSDT&limit=1000 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\nGET /x";
        let (url, len) = request(req, 4096).unwrap().unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9000/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        assert_eq!(&req[len..], b"GET /x");
        assert_eq!(request(&req[..20], 4096), Ok(None));
    }

    #[test]
    fn bodies_by_length_chunks_close_and_coding() {
        let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        for cut in 0..by_length.len() - 8 {
            assert!(
                response(&by_length[..cut], false, 4096, 1 << 20)
                    .unwrap()
                    .is_none()
            );
        }
        let r = response(by_length, false, 4096, 1 << 20).unwrap().unwrap();
        assert_eq!(
            (r.status, &r.body[..], r.len),
            (200, &b"hello"[..], by_length.len() - 8)
        );

        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        for cut in 0..chunked.len() {
            assert!(
                response(&chunked[..cut], false, 4096, 1 << 20)
                    .unwrap()
                    .is_none()
            );
        }
        let r = response(chunked, false, 4096, 1 << 20).unwrap().unwrap();
        assert_eq!((&r.body[..], r.len), (&b"abcde"[..], chunked.len()));
        assert_eq!(
            response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false,
                4096,
                99
            )
            .unwrap_err(),
            HttpError::BadChunk
        );

        let until_close = b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}";
        assert!(
            response(until_close, false, 4096, 1 << 20)
                .unwrap()
                .is_none()
        );
        let r = response(until_close, true, 4096, 1 << 20).unwrap().unwrap();
        assert_eq!(&r.body[..], b"{\"a\":1}");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"lastUpdateId\":1}").unwrap();
        let gz = gz.finish().unwrap();
        let mut msg = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        msg.extend_from_slice(&gz);
        let r = response(&msg, false, 4096, 1 << 20).unwrap().unwrap();
        assert_eq!(&r.body[..], b"{\"lastUpdateId\":1}");
        assert_eq!(
            response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                false,
                4096,
                10
            )
            .unwrap_err(),
            HttpError::TooLarge
        );
        let no_body = response(b"HTTP/1.1 204 No Content\r\n\r\n", false, 4096, 10)
            .unwrap()
            .unwrap();
        assert!(no_body.body.is_empty());
    }
}
