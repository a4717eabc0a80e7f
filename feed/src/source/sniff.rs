//! What an input is, told from its content: the container from its first bytes (magic numbers),
//! then the text format from its first line. The file name plays no part here; [`super::open`]
//! uses it only as a tie-break when the content says nothing (an empty input).
//!
//! | first bytes | container |
//! |---|---|
//! | `1f 8b` | gzip |
//! | `28 b5 2f fd` | zstd |
//! | `PK 03 04` | zip (the first file entry is read) |
//! | `d4 c3 b2 a1`, `a1 b2 c3 d4`, `4d 3c b2 a1`, `a1 b2 3c 4d` | pcap (µs or ns, either byte order) |
//! | `0a 0d 0d 0a` | pcapng |
//! | `89 P N R \r \n 1a \n` | pinion's `.pnr` |
//! | anything else | text, read as is |
//!
//! | first line of the (decompressed) text | format |
//! |---|---|
//! | `<url> <-> <seconds>` | cryptofeed text capture |
//! | `<19 digits> {…` | hbt lines (`<ns> <json>`) |
//! | `{"t":"header"…}` or another cryptofeed record (`t` ∈ `http`, `connect`, `send`, `recv`) | cryptofeed JSONL |
//! | `{…}` a venue message (see [`LineShape`]), or any `{` after another time stamp | JSON lines |
//!
//! Anything else is [`SourceError::UnknownFormat`], with the first bytes seen.

use std::fmt::Write as _;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::error::SourceError;
use crate::recording::format::MAGIC as PNR_MAGIC;

/// How many bytes [`Container::sniff`] needs to decide (fewer only at the end of the input).
pub const MAGIC_LEN: usize = PNR_MAGIC.len();

/// The formats [`super::open`] knows, as its errors name them.
pub const KNOWN_FORMATS: &str = "hbt lines `<ns> <json>` (plain or gzip); JSON lines of venue \
    messages, each optionally after a time stamp (plain, gzip, zstd or zip); cryptofeed text \
    captures (`<url> <-> <time>` first line); cryptofeed JSONL (`{\"t\":…}` records, usually \
    zstd); pinion `.pnr`; pcap; pcapng";

/// The outer layer of an input, from its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// gzip (one or more members).
    Gzip,
    /// A zstd frame.
    Zstd,
    /// A zip archive.
    Zip,
    /// A pcap capture (any byte order, µs or ns stamps).
    Pcap,
    /// A pcapng capture.
    Pcapng,
    /// pinion's own recording.
    Pnr,
    /// None of the above: read as text.
    Text,
}

impl Container {
    /// The container of an input starting with `head` (at least [`MAGIC_LEN`] bytes unless the
    /// input is shorter).
    pub fn sniff(head: &[u8]) -> Self {
        const PCAP: [[u8; 4]; 4] = [
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
        ];
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else if head.starts_with(b"PK\x03\x04") {
            Self::Zip
        } else if PCAP.iter().any(|m| head.starts_with(m)) {
            Self::Pcap
        } else if head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            Self::Pcapng
        } else if head.starts_with(&PNR_MAGIC) {
            Self::Pnr
        } else {
            Self::Text
        }
    }

    /// Whether the container is compressed text (what [`super::Decompress`] applies to).
    pub fn is_compressed(self) -> bool {
        matches!(self, Self::Gzip | Self::Zstd | Self::Zip)
    }

    /// The name errors use for text found in this container.
    pub(crate) fn text_name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip text",
            Self::Zstd => "zstd text",
            Self::Zip => "zip entry",
            _ => "plain text",
        }
    }
}

/// A line-based text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// cryptofeed's raw text capture: [`super::cryptofeed::CryptofeedTextReader`].
    CryptofeedText,
    /// `<ns> <json>` lines: [`super::hbt::HbtReader`].
    Hbt,
    /// cryptofeed's JSON-lines capture: [`super::cryptofeed::CryptofeedJsonlReader`].
    CryptofeedJsonl,
    /// Venue messages, one a line, each optionally after a time stamp:
    /// [`super::json_lines::JsonLinesReader`].
    JsonLines,
}

impl TextFormat {
    /// The format of a text whose first line is `line` (without its line ending). `complete`
    /// is false when `line` is only the start of a longer line; the checks that need the whole
    /// line are then left out. `Err` says why the line is none of the known formats.
    pub fn sniff(line: &[u8], complete: bool) -> Result<Self, &'static str> {
        if line.first() == Some(&b'{') {
            return match line_shape(line) {
                LineShape::CryptofeedRecord => Ok(Self::CryptofeedJsonl),
                LineShape::OtherJson if complete => {
                    Err("a JSON object that is neither a venue message nor a cryptofeed record")
                }
                LineShape::NotJson if complete => {
                    Err("a line that starts with `{` but is not JSON")
                }
                _ => Ok(Self::JsonLines),
            };
        }
        if let Some((stamp, rest)) = split_stamp(line) {
            if rest.first() != Some(&b'{') {
                return Err("a time stamp not followed by a JSON object");
            }
            let hbt =
                line.get(stamp.len()) == Some(&b' ') && !stamp.contains(&b'.') && stamp.len() == 19;
            return Ok(if hbt { Self::Hbt } else { Self::JsonLines });
        }
        if let Some(sep) = memchr::memmem::find(line, b" <-> ") {
            let time = &line[sep + 5..];
            if !complete || super::seconds_to_ns(time).is_some() {
                return Ok(Self::CryptofeedText);
            }
            return Err("a `<url> <-> <time>` line whose time is not decimal seconds");
        }
        Err("a first line that is no known header, time stamp or JSON object")
    }
}

/// Splits a leading time stamp (`<digits>` or `<digits>.<digits>`, then one space or tab) off a
/// line: `(stamp, rest after the separator)`, or `None` when the line does not start so.
pub(crate) fn split_stamp(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = line.iter().position(|&c| c == b' ' || c == b'\t')?;
    let stamp = &line[..end];
    let (int, frac) = match memchr::memchr(b'.', stamp) {
        Some(dot) => (&stamp[..dot], Some(&stamp[dot + 1..])),
        None => (stamp, None),
    };
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    (digits(int) && frac.is_none_or(digits)).then(|| (stamp, &line[end + 1..]))
}

/// What one line of JSON looks like, from its top-level keys: enough to pick a reader, and for a
/// caller to guess the venue of a recording whose name says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineShape {
    /// A Binance combined-stream envelope, `{"stream":…,"data":…}`.
    BinanceStream,
    /// A Binance raw-stream event (`{"e":…}`) or a Spot `bookTicker` (`u`, `s`, `b`, `a`).
    /// `futures` is set when it carries `pu` (only futures diff depth does).
    BinanceEvent {
        /// The event has `pu`: USD-M or COIN-M futures.
        futures: bool,
    },
    /// A Binance REST depth body, `{"lastUpdateId":…}`.
    BinanceRestDepth,
    /// A Bybit v5 topic message, `{"topic":…}`.
    BybitTopic,
    /// A Bybit REST response, `{"retCode":…}`.
    BybitRest,
    /// A subscription reply or other control message (`{"result":…,"id":…}`, `{"op":…}`,
    /// `{"success":…}`).
    Control,
    /// A cryptofeed JSONL record (`t` ∈ `header`, `http`, `connect`, `send`, `recv`).
    CryptofeedRecord,
    /// A JSON object with none of the keys above.
    OtherJson,
    /// Not a JSON object (or not one that parses).
    NotJson,
}

/// Whether a key is present, whatever its value (`null` included, which an `Option` would
/// take for absent).
#[derive(Debug, Default, Clone, Copy)]
struct Seen(bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Seen(true))
    }
}

/// The keys [`line_shape`] looks at; the rest of the object is skipped without being kept.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TopKeys<'a> {
    #[serde(borrow)]
    t: Option<&'a RawValue>,
    stream: Seen,
    data: Seen,
    e: Seen,
    pu: Seen,
    u: Seen,
    s: Seen,
    b: Seen,
    a: Seen,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Seen,
    topic: Seen,
    #[serde(rename = "retCode")]
    ret_code: Seen,
    result: Seen,
    id: Seen,
    op: Seen,
    success: Seen,
}

/// The cryptofeed JSONL record types (`t`), as JSON strings.
const CRYPTOFEED_TYPES: [&str; 5] = [
    "\"header\"",
    "\"http\"",
    "\"connect\"",
    "\"send\"",
    "\"recv\"",
];

/// What the JSON object `line` looks like (see [`LineShape`]). A line cut short (longer than
/// what was read) is judged by its start: `{"t":"…"` is a cryptofeed record, anything else
/// that does not parse is [`LineShape::NotJson`].
pub fn line_shape(line: &[u8]) -> LineShape {
    let line = super::trim_line_end(line);
    if line.first() != Some(&b'{') {
        return LineShape::NotJson;
    }
    let Ok(keys) = serde_json::from_slice::<TopKeys<'_>>(line) else {
        let cryptofeed = CRYPTOFEED_TYPES.iter().any(|t| {
            line.strip_prefix(b"{\"t\":")
                .is_some_and(|r| r.starts_with(t.as_bytes()))
        });
        return if cryptofeed {
            LineShape::CryptofeedRecord
        } else {
            LineShape::NotJson
        };
    };
    if keys.t.is_some_and(|t| CRYPTOFEED_TYPES.contains(&t.get())) {
        LineShape::CryptofeedRecord
    } else if keys.stream.0 && keys.data.0 {
        LineShape::BinanceStream
    } else if keys.e.0 || (keys.u.0 && keys.s.0 && keys.b.0 && keys.a.0) {
        LineShape::BinanceEvent { futures: keys.pu.0 }
    } else if keys.last_update_id.0 {
        LineShape::BinanceRestDepth
    } else if keys.topic.0 {
        LineShape::BybitTopic
    } else if keys.ret_code.0 {
        LineShape::BybitRest
    } else if (keys.result.0 && keys.id.0) || keys.op.0 || keys.success.0 {
        LineShape::Control
    } else {
        LineShape::OtherJson
    }
}

/// How many bytes of an input an error quotes.
const QUOTED: usize = 48;

/// The first bytes of an input as printable text for an error: printable ASCII as it is, other
/// bytes escaped (`\n`, `\x00`), cut to a few dozen bytes (marked `…`), `(empty)` when there
/// are none.
pub fn quote_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::from("(empty)");
    }
    let mut out = String::new();
    for &b in &bytes[..bytes.len().min(QUOTED)] {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > QUOTED {
        out.push('…');
    }
    out
}

/// The error for an input that is none of the known formats.
pub(crate) fn unknown(container: &'static str, why: &'static str, head: &[u8]) -> SourceError {
    SourceError::UnknownFormat {
        container,
        why,
        seen: quote_start(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_from_magic() {
        assert_eq!(Container::sniff(b"\x1f\x8b\x08\0"), Container::Gzip);
        assert_eq!(Container::sniff(b"\x28\xb5\x2f\xfd\0"), Container::Zstd);
        assert_eq!(Container::sniff(b"PK\x03\x04\x14\0"), Container::Zip);
        for m in [
            &b"\xd4\xc3\xb2\xa1"[..],
            b"\xa1\xb2\xc3\xd4",
            b"\x4d\x3c\xb2\xa1",
            b"\xa1\xb2\x3c\x4d",
        ] {
            assert_eq!(Container::sniff(m), Container::Pcap);
        }
        assert_eq!(Container::sniff(b"\x0a\x0d\x0d\x0a"), Container::Pcapng);
        assert_eq!(Container::sniff(&PNR_MAGIC), Container::Pnr);
        assert_eq!(Container::sniff(b"\x89PNR"), Container::Text, "cut magic");
        assert_eq!(Container::sniff(b""), Container::Text);
    }

    #[test]
    fn text_formats_from_the_first_line() {
        let sniff = |l: &str| TextFormat::sniff(l.as_bytes(), true);
        assert_eq!(
            sniff("wss://stream.binance.com:9443/stream?streams=a <-> 1633998511.5"),
            Ok(TextFormat::CryptofeedText)
        );
        assert_eq!(
            sniff("1723161253937085768 {\"stream\":\"a\",\"data\":{}}"),
            Ok(TextFormat::Hbt)
        );
        for stamped in [
            "1723161253937 {\"topic\":\"x\"}",
            "1723161253.937\t{\"topic\":\"x\"}",
            "1723161253937085768\t{}",
        ] {
            assert_eq!(sniff(stamped), Ok(TextFormat::JsonLines), "{stamped}");
        }
        assert_eq!(
            sniff(r#"{"t":"header","format":2,"exchange":"BYBIT"}"#),
            Ok(TextFormat::CryptofeedJsonl)
        );
        assert_eq!(
            sniff(r#"{"topic":"orderbook.500.BTCUSDT","type":"snapshot","ts":1,"data":{}}"#),
            Ok(TextFormat::JsonLines)
        );
        assert_eq!(
            sniff(r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#),
            Ok(TextFormat::JsonLines)
        );
        // A long line cut short is judged by its start.
        assert_eq!(
            TextFormat::sniff(br#"{"lastUpdateId":1,"bids":[["1","#, false),
            Ok(TextFormat::JsonLines)
        );
        for bad in [
            r#"{"name":"x"}"#,
            "{not json",
            "hello",
            "",
            "12 x",
            "wss://x <-> soon",
        ] {
            assert!(sniff(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_from_keys() {
        let shape = |l: &str| line_shape(l.as_bytes());
        assert_eq!(
            shape(r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}"#),
            LineShape::BinanceStream
        );
        assert_eq!(
            shape(r#"{"e":"depthUpdate","E":1,"pu":3,"u":4}"#),
            LineShape::BinanceEvent { futures: true }
        );
        assert_eq!(
            shape(r#"{"u":1,"s":"BNBUSDT","b":"1","B":"2","a":"3","A":"4"}"#),
            LineShape::BinanceEvent { futures: false }
        );
        assert_eq!(shape(r#"{"retCode":0,"result":{}}"#), LineShape::BybitRest);
        assert_eq!(shape(r#"{"result":null,"id":1}"#), LineShape::Control);
        assert_eq!(
            shape(r#"{"t":"recv","conn":"a"}"#),
            LineShape::CryptofeedRecord
        );
        assert_eq!(shape(r#"{"t":"other"}"#), LineShape::OtherJson);
        assert_eq!(shape("[1]"), LineShape::NotJson);
    }

    #[test]
    fn quotes_are_escaped_and_cut() {
        assert_eq!(quote_start(b""), "(empty)");
        assert_eq!(quote_start(b"a\x00\n\"\\\xff"), "a\\x00\\n\"\\\\\\xff");
        let long = quote_start(&[b'x'; 100]);
        assert!(long.ends_with('…') && long.len() == QUOTED + '…'.len_utf8());
    }
}
