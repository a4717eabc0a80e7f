//! The client side of a loopback check: a plain market-stream client that receives a whole
//! session, and the comparison of a capture's replayed frames with the source they came from.
//!
//! Used by `pinion-exchange-sim receive` / `compare` (and so by `scripts/capture-loopback.sh`):
//! serve a recording, capture the traffic with a real capture tool, replay the capture and check
//! that it yields the recording's frames byte for byte, in order.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use pinion_core::{ConnId, RecordKind};
use pinion_feed::{FrameSource, SourceError};
use pinion_net::http::{self, HeadRules};
use tungstenite::Message;

/// Longest response head the client accepts.
const MAX_RESPONSE_HEAD: usize = 16 << 10;

/// What a client received in one session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceivedSession {
    /// Text and binary messages, in order.
    pub frames: Vec<Vec<u8>>,
    /// The server's close code, when it sent a close frame.
    pub close_code: Option<u16>,
}

/// Connects to `url` (`ws://127.0.0.1:PORT/stream?…`) and reads until the server closes.
/// Pings are answered as they are read.
pub fn receive_session(url: &str) -> Result<ReceivedSession, tungstenite::Error> {
    let (mut ws, _) = tungstenite::connect(url)?;
    let mut session = ReceivedSession::default();
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => session.frames.push(text.as_bytes().to_vec()),
            Ok(Message::Binary(bytes)) => session.frames.push(bytes.to_vec()),
            Ok(Message::Close(frame)) => {
                session.close_code = frame.map(|f| u16::from(f.code));
            }
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(session),
            Err(e) => return Err(e),
        }
    }
}

/// `GET /api/v3/depth?symbol=<symbol>` against the simulator; the body of a `200` response.
pub fn fetch_snapshot(addr: SocketAddr, symbol: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET /api/v3/depth?symbol={symbol}&limit=1000 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    body_of_ok(&response)
        .map(<[u8]>::to_vec)
        .map_err(|what| std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// The body of a complete `200` response, or what is wrong with the response.
fn body_of_ok(response: &[u8]) -> Result<&[u8], String> {
    let head = match http::parse_response(response, &HeadRules::strict(MAX_RESPONSE_HEAD)) {
        Ok(Some(head)) => head,
        Ok(None) => return Err("no end of response head".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    if head.code != 200 {
        return Err(format!(
            "snapshot request was answered with {} {}",
            head.code, head.reason
        ));
    }
    Ok(&response[head.len..])
}

/// How a capture's frames compare with the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameComparison {
    /// Frames the source has (of the compared connection).
    pub source_frames: u64,
    /// Frames the capture yielded, the shutdown notice excluded.
    pub capture_frames: u64,
    /// Index of the first frame that differs (or is missing on one side).
    pub first_difference: Option<u64>,
    /// Whether the capture ends with the server's `serverShutdown` notice.
    pub shutdown_notice: bool,
}

impl FrameComparison {
    /// Every source frame came back, byte for byte and in order, and nothing else (apart from
    /// the shutdown notice).
    pub fn is_exact(&self) -> bool {
        self.first_difference.is_none() && self.source_frames == self.capture_frames
    }
}

/// Compares the `Frame` records of `source` (of `connection`, or all) with those of `capture`.
/// The capture may end with one `serverShutdown` notice, which the server adds.
pub fn compare_frames(
    source: &mut dyn FrameSource,
    connection: Option<ConnId>,
    capture: &mut dyn FrameSource,
) -> Result<FrameComparison, SourceError> {
    let mut result = FrameComparison::default();
    let mut expected: Vec<u8> = Vec::new();
    loop {
        let have_source = next_frame(source, connection, &mut expected)?;
        let got = loop {
            match capture.next_record()? {
                Some(rec) if rec.kind == RecordKind::Frame => break Some(rec.payload),
                Some(_) => {}
                None => break None,
            }
        };
        match (have_source, got) {
            (false, None) => return Ok(result),
            (false, Some(extra)) => {
                if is_shutdown_notice(extra) && !result.shutdown_notice {
                    result.shutdown_notice = true;
                } else {
                    result.capture_frames += 1;
                    result.first_difference.get_or_insert(result.source_frames);
                }
            }
            (true, None) => {
                result.first_difference.get_or_insert(result.source_frames);
                result.source_frames += 1;
            }
            (true, Some(got)) => {
                if got != expected.as_slice() {
                    result.first_difference.get_or_insert(result.source_frames);
                }
                result.source_frames += 1;
                result.capture_frames += 1;
            }
        }
    }
}

/// Copies the next `Frame` payload of `connection` into `out`; `false` at the end.
fn next_frame(
    source: &mut dyn FrameSource,
    connection: Option<ConnId>,
    out: &mut Vec<u8>,
) -> Result<bool, SourceError> {
    while let Some(rec) = source.next_record()? {
        if rec.kind == RecordKind::Frame && connection.is_none_or(|c| c == rec.conn) {
            out.clear();
            out.extend_from_slice(rec.payload);
            return Ok(true);
        }
    }
    Ok(false)
}

/// The server's end-of-stream notice, combined or raw.
fn is_shutdown_notice(frame: &[u8]) -> bool {
    frame.starts_with(br#"{"stream":"!serverShutdown","#)
        || frame.starts_with(br#"{"e":"serverShutdown","#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_feed::source::hbt::HbtReader;

    fn hbt(lines: &[&str]) -> HbtReader<&'static [u8]> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        HbtReader::from_buf_read(text.leak().as_bytes(), None, "test".into())
    }

    const A: &str = r#"1 {"stream":"x@trade","data":{"t":1}}"#;
    const B: &str = r#"2 {"stream":"x@trade","data":{"t":2}}"#;
    const SNAP: &str = r#"3 {"lastUpdateId":5,"bids":[],"asks":[]}"#;
    const END: &str = r#"4 {"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}"#;

    #[test]
    fn snapshot_body_only_from_a_complete_200() {
        let ok =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(body_of_ok(ok), Ok(&b"{}"[..]));
        let refused = b"HTTP/1.1 400 Bad Request\r\n\r\n{\"code\":-1121}";
        assert!(body_of_ok(refused).is_err_and(|e| e.contains("400 Bad Request")));
        assert!(body_of_ok(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n").is_err());
        assert!(body_of_ok(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn same_frames_with_shutdown_notice_are_exact() {
        let c =
            compare_frames(&mut hbt(&[A, SNAP, B]), None, &mut hbt(&[A, B, END])).expect("compare");
        assert!(c.is_exact(), "{c:?}");
        assert_eq!((c.source_frames, c.capture_frames), (2, 2));
        assert!(c.shutdown_notice);
    }

    #[test]
    fn missing_changed_or_extra_frames_are_found() {
        let missing = compare_frames(&mut hbt(&[A, B]), None, &mut hbt(&[A])).expect("compare");
        assert_eq!(missing.first_difference, Some(1));
        assert!(!missing.is_exact());
        let changed = compare_frames(&mut hbt(&[A, B]), None, &mut hbt(&[B, A])).expect("compare");
        assert_eq!(changed.first_difference, Some(0));
        let extra = compare_frames(&mut hbt(&[A]), None, &mut hbt(&[A, B])).expect("compare");
        assert_eq!(extra.first_difference, Some(1));
        assert_eq!(extra.capture_frames, 2);
    }
}
