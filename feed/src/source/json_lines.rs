//! Reader for plain JSON lines of venue messages: one message a line, each optionally after a
//! time stamp. This is the shape of Bybit's published historical order book files
//! (`*_ob500.data.zip`: `{"topic":"orderbook.500.BTCUSDT","type":"snapshot","ts":…,"data":…}` a
//! line) and of many home-made captures (`<time> <json>`).
//!
//! A line is `<json>` or `<stamp><space or tab><json>`, where the JSON is one object. The record's
//! receive time is, in order:
//!
//! 1. the leading stamp: `<digits>.<digits>` is seconds; whole numbers take their unit from their
//!    length — up to 11 digits seconds, 12–14 milliseconds, 15–17 microseconds, 18–20
//!    nanoseconds (now: 10, 13, 16, 19 digits) — converted exactly in integers;
//! 2. else the message's own time in milliseconds: Bybit `ts`, else Binance `E` (at the top or
//!    inside the `data` of a combined-stream envelope), else a Bybit REST response's `time`;
//! 3. else the previous record's time (0 before the first).
//!
//! A bare Binance REST depth body (`{"lastUpdateId":…}`) and a Bybit REST order book response
//! (`{"retCode":…,"result":{…"b":…,"a":…}}`) are [`RecordKind::RestSnapshot`]s with empty `meta`
//! (the file keeps no request URL); every other line is a [`RecordKind::Frame`].
//!
//! Invariants as in the hbt reader: one connection, [`ConnId`]`(0)`, whose venue is what the
//! caller says (the content of one line rarely settles it: see [`super::sniff::line_shape`]);
//! records in file order; a record borrows its line from the read buffer, so reading allocates
//! nothing once the buffers have grown. A bad line is a [`SourceError::Format`] naming its 1-based
//! line number, and reading may go on after it; an error of the stream itself (truncation,
//! corrupt compression) ends the input.

use std::io::BufRead;

use crate::error::SourceError;
use crate::source::FrameSource;
use crate::source::sniff::split_stamp;
use crate::source::{parse_u64, seconds_to_ns};
use pinion_core::record::{ConnId, ConnInfo, RawRecord, RecordKind};
use pinion_core::venue::Venue;

const FORMAT: &str = "json-lines";

/// The payload prefix of a bare Binance REST depth snapshot body.
const BINANCE_REST_PREFIX: &[u8] = b"{\"lastUpdateId\"";
/// The payload prefix of a Bybit REST response.
const BYBIT_REST_PREFIX: &[u8] = b"{\"retCode\"";

/// Reads JSON lines from any buffered reader of the (decompressed) text.
#[derive(Debug)]
pub struct JsonLinesReader<R> {
    lines: super::Lines<R>,
    line_no: u64,
    /// The last record's receive time, for lines that carry none.
    last_t: u64,
    connections: [ConnInfo; 1],
}

impl<R: BufRead> JsonLinesReader<R> {
    /// Reads `input`; `venue` is the connection's venue when the caller knows it, `description`
    /// names the input in [`FrameSource::connections`].
    pub fn new(input: R, venue: Option<Venue>, description: String) -> Self {
        Self {
            // As in the hbt reader: a line is copied only when it straddles a refill of the
            // 64 KiB read buffer, into a spill buffer as large.
            lines: super::Lines::new(input, 1 << 16),
            line_no: 0,
            last_t: 0,
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
}

fn format_error(line_no: u64, what: &str) -> SourceError {
    SourceError::Format {
        format: FORMAT,
        position: line_no,
        what: what.to_owned(),
    }
}

/// A leading time stamp as ns since the epoch (see the module docs for the units). `None` when
/// it is past what `u64` ns can hold.
pub fn stamp_to_ns(stamp: &[u8]) -> Option<u64> {
    if stamp.contains(&b'.') {
        return seconds_to_ns(stamp);
    }
    let per_unit: u64 = match stamp.len() {
        0 => return None,
        1..=11 => 1_000_000_000,
        12..=14 => 1_000_000,
        15..=17 => 1_000,
        18..=20 => 1,
        _ => return None,
    };
    parse_u64(stamp)?.checked_mul(per_unit)
}

/// The values of the wanted top-level keys of a JSON object (`None` for each one absent), found
/// by skipping every other value without reading it; `None` when the text is not an object
/// whose top level can be followed.
///
/// Why not serde_json: it skips a nested array or object with a stack it allocates for each
/// parse, and a venue message is all nested arrays. This reads nothing it does not need, and
/// allocates nothing; what the message says is for the parser to judge, later.
fn top_level<'a, const N: usize>(
    json: &'a [u8],
    keys: [&[u8]; N],
) -> Option<[Option<&'a [u8]>; N]> {
    let mut found = [None; N];
    let mut at = skip_ws(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(json, at + 1);
    if json.get(at) == Some(&b'}') {
        return (skip_ws(json, at + 1) == json.len()).then_some(found);
    }
    loop {
        if json.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(json, at)?;
        let key = &json[at + 1..key_end - 1];
        at = skip_ws(json, key_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, at + 1);
        let end = skip_value(json, start)?;
        if let Some(i) = keys.iter().position(|k| *k == key) {
            found[i] = Some(&json[start..end]);
        }
        at = skip_ws(json, end);
        match json.get(at) {
            Some(b',') => at = skip_ws(json, at + 1),
            Some(b'}') => return (skip_ws(json, at + 1) == json.len()).then_some(found),
            _ => return None,
        }
    }
}

fn skip_ws(json: &[u8], mut at: usize) -> usize {
    while json
        .get(at)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
    {
        at += 1;
    }
    at
}

/// The end (one past the closing quote) of the string starting at `at`.
fn skip_string(json: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// The end of the value starting at `at`: a string, a nested array or object (brackets
/// counted, strings skipped), or a scalar running to the next `,`, `}`, `]` or space.
fn skip_value(json: &[u8], at: usize) -> Option<usize> {
    match *json.get(at)? {
        b'"' => skip_string(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = json[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(json.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// A JSON whole number of milliseconds as ns; `None` for anything else.
fn ms_to_ns(raw: Option<&[u8]>) -> Option<u64> {
    parse_u64(raw?)?.checked_mul(1_000_000)
}

/// The message's own time (see the module docs), `Ok(None)` when it has none, `Err(())` when
/// the line is not a JSON object.
fn message_time(payload: &[u8]) -> Result<Option<u64>, ()> {
    let [ts, event_time, time, data] =
        top_level(payload, [b"ts", b"E", b"time", b"data"]).ok_or(())?;
    if let Some(t) = ms_to_ns(ts).or_else(|| ms_to_ns(event_time)) {
        return Ok(Some(t));
    }
    let inner = data
        .filter(|d| d.first() == Some(&b'{'))
        .and_then(|d| top_level(d, [b"E"]))
        .and_then(|[e]| ms_to_ns(e));
    Ok(inner.or_else(|| ms_to_ns(time)))
}

/// Whether a Bybit REST response holds an order book (`result` with `b` and `a`).
fn is_bybit_rest_book(payload: &[u8]) -> bool {
    top_level(payload, [b"result"])
        .and_then(|[r]| top_level(r?, [b"b", b"a"]))
        .is_some_and(|[b, a]| b.is_some() && a.is_some())
}

impl<R: BufRead> FrameSource for JsonLinesReader<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if !self.lines.advance_past_blank(&mut self.line_no, FORMAT)? {
            return Ok(None);
        }
        let line_no = self.line_no;
        let text = self.lines.current_text(line_no, FORMAT)?;
        let (stamp, payload) = match text.first() {
            Some(b'{') => (None, text),
            Some(c) if c.is_ascii_digit() => match split_stamp(text) {
                Some((stamp, rest)) => (Some(stamp), rest),
                None => {
                    return Err(format_error(
                        line_no,
                        "time stamp is not `<digits>` or `<digits>.<digits>` then a space or tab",
                    ));
                }
            },
            _ => {
                return Err(format_error(
                    line_no,
                    "line is neither `{…}` nor `<time stamp> {…}`",
                ));
            }
        };
        if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
            return Err(format_error(
                line_no,
                "payload is not a complete JSON object",
            ));
        }
        let t_recv = match stamp {
            Some(stamp) => stamp_to_ns(stamp)
                .ok_or_else(|| format_error(line_no, "time stamp is past the range of ns"))?,
            None => match message_time(payload) {
                Ok(t) => t.unwrap_or(self.last_t),
                Err(()) => {
                    return Err(format_error(
                        line_no,
                        "not a JSON object (its keys and values cannot be followed)",
                    ));
                }
            },
        };
        self.last_t = t_recv;
        let kind = if payload.starts_with(BINANCE_REST_PREFIX)
            || (payload.starts_with(BYBIT_REST_PREFIX) && is_bybit_rest_book(payload))
        {
            RecordKind::RestSnapshot
        } else {
            RecordKind::Frame
        };
        Ok(Some(RawRecord {
            t_recv,
            conn: ConnId(0),
            kind,
            meta: &[],
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<Result<(u64, RecordKind, String), String>> {
        let mut r = JsonLinesReader::new(text.as_bytes(), None, "t".into());
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(None) => return out,
                Ok(Some(rec)) => out.push(Ok((
                    rec.t_recv,
                    rec.kind,
                    String::from_utf8(rec.payload.to_vec()).unwrap(),
                ))),
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn stamps_of_every_unit_convert_exactly() {
        assert_eq!(stamp_to_ns(b"1723161253"), Some(1_723_161_253_000_000_000));
        assert_eq!(
            stamp_to_ns(b"1723161253.000000001"),
            Some(1_723_161_253_000_000_001)
        );
        assert_eq!(
            stamp_to_ns(b"1723161253937"),
            Some(1_723_161_253_937_000_000)
        );
        assert_eq!(
            stamp_to_ns(b"1723161253937085"),
            Some(1_723_161_253_937_085_000)
        );
        assert_eq!(
            stamp_to_ns(b"1723161253937085768"),
            Some(1_723_161_253_937_085_768)
        );
        for bad in [&b""[..], b"99999999999999999999", b"123456789012345678901"] {
            assert_eq!(stamp_to_ns(bad), None);
        }
    }

    #[test]
    fn times_from_stamps_messages_or_the_previous_line() {
        let text = concat!(
            "{\"result\":null,\"id\":1}\n",
            "1723161253937\t{\"stream\":\"a\",\"data\":{\"E\":5}}\n",
            "{\"stream\":\"a\",\"data\":{\"e\":\"trade\",\"E\":1723161254000}}\n",
            "{\"u\":1,\"s\":\"X\",\"b\":\"1\",\"B\":\"1\",\"a\":\"2\",\"A\":\"1\"}\n",
            "{\"topic\":\"orderbook.500.BTCUSDT\",\"type\":\"delta\",\"ts\":1723161255001,\"data\":{\"E\":1}}\n",
            "{\"lastUpdateId\":7,\"bids\":[],\"asks\":[]}\r\n",
            "\n",
            "{\"retCode\":0,\"result\":{\"s\":\"X\",\"b\":[],\"a\":[],\"ts\":1},\"time\":1723161256000}\n",
            "{\"retCode\":0,\"result\":{\"list\":[]},\"time\":1723161257000}\n",
        );
        let got: Vec<_> = records(text)
            .into_iter()
            .map(|r| r.map(|(t, k, _)| (t, k)))
            .collect();
        assert_eq!(
            got,
            vec![
                Ok((0, RecordKind::Frame)),
                Ok((1_723_161_253_937_000_000, RecordKind::Frame)),
                Ok((1_723_161_254_000_000_000, RecordKind::Frame)),
                Ok((1_723_161_254_000_000_000, RecordKind::Frame)),
                Ok((1_723_161_255_001_000_000, RecordKind::Frame)),
                Ok((1_723_161_255_001_000_000, RecordKind::RestSnapshot)),
                Ok((1_723_161_256_000_000_000, RecordKind::RestSnapshot)),
                Ok((1_723_161_257_000_000_000, RecordKind::Frame)),
            ]
        );
    }

    #[test]
    fn payloads_are_the_json_exactly() {
        let got = records("1.5 {\"a\":1}  \n");
        assert!(
            got[0].is_err(),
            "trailing spaces leave the object incomplete"
        );
        let got = records("1.5 {\"a\":1}\n{\"b\":2}");
        assert_eq!(
            got[0],
            Ok((1_500_000_000, RecordKind::Frame, "{\"a\":1}".into()))
        );
        assert_eq!(
            got[1],
            Ok((1_500_000_000, RecordKind::Frame, "{\"b\":2}".into()))
        );
    }

    #[test]
    fn top_level_keys_are_found_past_nested_values() {
        let json = br#"{"a":[[1,"x]"],{"ts":9}],"s":"q\"ts\"", "ts" : 17 ,"d":{"E":3},"n":null}"#;
        let [ts, e, d, n, missing] = top_level(json, [b"ts", b"E", b"d", b"n", b"zz"]).unwrap();
        assert_eq!(ts, Some(&b"17"[..]));
        assert_eq!(e, None, "only the top level");
        assert_eq!(d, Some(&br#"{"E":3}"#[..]));
        assert_eq!(n, Some(&b"null"[..]));
        assert_eq!(missing, None);
        assert_eq!(top_level(b"{}", [b"a"]), Some([None]));
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":[1}",
            b"{\"a\":\"x}",
            b"{\"a\":1}x",
            b"{\"a\":\"\\",
        ] {
            assert_eq!(top_level(bad, [b"a"]), None, "{}", bad.escape_ascii());
        }
    }

    proptest::proptest! {
        #[test]
        fn top_level_never_panics(bytes in proptest::collection::vec(
            proptest::sample::select(b"{}[]\":,\\ ab1".to_vec()), 0..64)) {
            let _ = top_level(&bytes, [b"a", b"b"]);
        }
    }

    #[test]
    fn bad_lines_name_their_line_and_reading_goes_on() {
        let text = "{\"ts\":1}\nx {}\n12x {}\n1 [1]\n{\"a\":}\n{\"a\" 1}\n99999999999999999999 {}\n{\"ts\":2}\n";
        let got = records(text);
        assert_eq!(got.len(), 8);
        for (i, r) in got.iter().enumerate().take(7).skip(1) {
            let line = i + 1;
            let err = r.as_ref().expect_err("a bad line");
            assert!(err.ends_with(&format!(" at {line}")), "{err}");
        }
        assert_eq!(got[7].as_ref().map(|r| r.0), Ok(2_000_000));
    }
}
