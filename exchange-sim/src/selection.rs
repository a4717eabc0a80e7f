//! Which of the source's frames a market-stream session sends, from the URL it connected to.
//!
//! Binance serves streams two ways (`docs/exchange-protocols.md` §1.1):
//! - combined, `/stream?streams=<s1>/<s2>`: each payload wrapped as
//!   `{"stream":"<name>","data":<payload>}`;
//! - raw, `/ws/<name>`: the bare payload of one stream.
//!
//! The simulator serves what the source has: recorded combined-stream frames are sent as
//! recorded (byte for byte) to a combined session, filtered by the requested names; a raw session
//! gets the `data` part of its stream's frames. A `/stream` with no `streams` parameter gets
//! every frame. Frames that are not combined-stream envelopes (a source recorded from a raw
//! socket) go unchanged to every session. Unknown stream names are not an error: they simply
//! match nothing, as on the exchange when a stream is quiet.

/// The prefix of a combined-stream envelope, as Binance writes it.
const ENVELOPE_PREFIX: &[u8] = b"{\"stream\":\"";
/// What follows the stream name in the envelope.
const DATA_KEY: &[u8] = b"\",\"data\":";

/// What a session asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelection {
    /// `/stream`: every frame, as recorded.
    All,
    /// `/stream?streams=…`: envelopes of these streams (and non-envelope frames), as recorded.
    Combined(Vec<String>),
    /// `/ws/<name>`: the payload of this stream's envelopes (and non-envelope frames).
    Raw(String),
}

impl StreamSelection {
    /// The selection for a request path and its decoded `streams` parameter; `None` for a path
    /// that is not a market-stream endpoint.
    pub fn from_request(path: &str, streams: Option<&str>) -> Option<Self> {
        match path {
            "/stream" | "/stream/" => Some(match streams {
                Some(list) if !list.is_empty() => StreamSelection::Combined(
                    list.split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => StreamSelection::All,
            }),
            _ => {
                let name = path.strip_prefix("/ws/")?;
                (!name.is_empty() && !name.contains('/'))
                    .then(|| StreamSelection::Raw(name.to_owned()))
            }
        }
    }

    /// Whether this session wraps its messages in the combined envelope.
    pub fn is_combined(&self) -> bool {
        !matches!(self, StreamSelection::Raw(_))
    }

    /// The bytes to send for a recorded frame, or `None` when the session did not ask for it.
    pub fn select<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        let Some((name, data)) = split_envelope(frame) else {
            return Some(frame);
        };
        match self {
            StreamSelection::All => Some(frame),
            StreamSelection::Combined(names) => {
                names.iter().any(|n| n.as_bytes() == name).then_some(frame)
            }
            StreamSelection::Raw(own) => (own.as_bytes() == name).then_some(data),
        }
    }
}

/// `(stream name, data)` of a combined-stream envelope; `None` for anything else.
pub(crate) fn split_envelope(frame: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = frame.strip_prefix(ENVELOPE_PREFIX)?;
    let name_end = rest.iter().position(|&c| c == b'"')?;
    let (name, rest) = rest.split_at(name_end);
    let data = rest.strip_prefix(DATA_KEY)?;
    let data = data.trim_ascii_end().strip_suffix(b"}")?;
    Some((name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: &[u8] =
        br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[]}}"#;
    const TRADE: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","t":7}}"#;

    #[test]
    fn combined_filters_by_name_and_keeps_bytes() {
        let sel = StreamSelection::from_request("/stream", Some("btcusdt@trade/ethusdt@trade"))
            .expect("endpoint");
        assert!(sel.is_combined());
        assert_eq!(sel.select(TRADE), Some(TRADE));
        assert_eq!(sel.select(DEPTH), None);
        let all = StreamSelection::from_request("/stream", None).expect("endpoint");
        assert_eq!(all, StreamSelection::All);
        assert_eq!(all.select(DEPTH), Some(DEPTH));
    }

    #[test]
    fn raw_unwraps_its_stream() {
        let sel = StreamSelection::from_request("/ws/btcusdt@trade", None).expect("endpoint");
        assert!(!sel.is_combined());
        assert_eq!(sel.select(TRADE), Some(&br#"{"e":"trade","t":7}"#[..]));
        assert_eq!(sel.select(DEPTH), None);
        // A frame recorded from a raw socket passes unchanged.
        assert_eq!(
            sel.select(b"{\"e\":\"trade\"}"),
            Some(&b"{\"e\":\"trade\"}"[..])
        );
    }

    #[test]
    fn other_paths_are_not_streams() {
        assert_eq!(StreamSelection::from_request("/api/v3/depth", None), None);
        assert_eq!(StreamSelection::from_request("/ws/", None), None);
        assert_eq!(StreamSelection::from_request("/ws/a/b", None), None);
    }
}
