//! Conversion of a JSON Binance Spot recording into the SBE frames Binance would have sent for
//! it (`pinion convert --encoding sbe`): the same records in the same order, with each market
//! data frame replaced by its [`crate::sbe_encode`] frame.
//!
//! What happens to each record:
//!
//! | record | in the output |
//! |---|---|
//! | REST snapshot, other REST, connect, disconnect, gap | as it is |
//! | a frame on a connection of another venue (USD-M, COIN-M, Bybit) | as it is (JSON) |
//! | trade, bookTicker, diff depth, partial depth | its SBE frame |
//! | a control reply (`result`, `error`) or `serverShutdown` | as it is (SBE sends these as JSON text) |
//! | a message of a stream SBE does not have (`aggTrade`, tickers, klines, …) | dropped |
//! | a frame the encoder refuses (malformed, a decimal not exact at −8, a futures diff on a connection of unknown venue) | as it is, so its replay meets the same frame its JSON replay did |
//!
//! Every case is counted in [`SbeConvertStats`].

use pinion_core::Venue;
use pinion_core::record::RecordKind;

use crate::sbe::Template;
use crate::sbe_encode::{Encoded, Exponents, SbeEncodeError, SbeEncoder};
use crate::source::FrameSource;

use super::RecordingError;
use super::convert::ConvertStats;
use super::writer::RecordingWriter;

/// What an SBE conversion did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SbeConvertStats {
    /// The records written, as a plain conversion counts them.
    pub written: ConvertStats,
    /// Frames replaced by SBE frames, per template: trades, best bid/ask, partial depth, diff
    /// depth.
    pub encoded: [u64; 4],
    /// Control replies and `serverShutdown` notices kept as JSON text.
    pub control: u64,
    /// Frames of streams SBE does not have, dropped.
    pub dropped: u64,
    /// Frames of other venues' connections, kept as JSON.
    pub other_venue: u64,
    /// Frames the encoder refused, kept as JSON.
    pub refused: u64,
    /// The first refusal, for the report.
    pub first_refusal: Option<SbeEncodeError>,
}

impl SbeConvertStats {
    /// Frames encoded of `template`.
    pub fn encoded(&self, template: Template) -> u64 {
        self.encoded[template_index(template)]
    }

    /// Frames encoded in all.
    pub fn encoded_total(&self) -> u64 {
        self.encoded.iter().sum()
    }
}

fn template_index(template: Template) -> usize {
    match template {
        Template::Trades => 0,
        Template::BestBidAsk => 1,
        Template::DepthSnapshot => 2,
        Template::DepthDiff => 3,
    }
}

/// The stream a raw single-stream connection (`…/ws/<name>`) carries, from its URL.
fn stream_of_url(url: &str) -> Option<&str> {
    let (_, rest) = url.rsplit_once("/ws/")?;
    let name = rest.split(['?', '#']).next()?;
    (name.contains('@') && !name.contains('/')).then_some(name)
}

/// Copies every record of `src` to `writer`, Binance Spot market data frames as SBE at
/// `exponents` (see the [module docs](self)). The writer is not finished: the caller calls
/// [`RecordingWriter::finish`].
pub fn convert_to_sbe(
    src: &mut dyn FrameSource,
    writer: &mut RecordingWriter,
    exponents: Exponents,
) -> Result<SbeConvertStats, RecordingError> {
    let mut stats = SbeConvertStats::default();
    let mut encoder = SbeEncoder::new(exponents);
    let mut known_connections = usize::MAX;
    // Per connection id: whether its frames are another venue's, and its raw stream name.
    let mut conns: Vec<(bool, Option<String>)> = Vec::new();
    loop {
        if src.connections().len() != known_connections {
            known_connections = src.connections().len();
            writer.set_connections(src.connections());
            conns.clear();
            for c in src.connections() {
                let i = usize::from(c.id.0);
                if conns.len() <= i {
                    conns.resize(i + 1, (false, None));
                }
                let other = c.venue.is_some_and(|v| v != Venue::BinanceSpot);
                conns[i] = (other, stream_of_url(&c.url).map(str::to_owned));
            }
        }
        let Some(rec) = src.next_record()? else {
            break;
        };
        let mut payload = rec.payload;
        if rec.kind == RecordKind::Frame {
            let (other, stream) = conns
                .get(usize::from(rec.conn.0))
                .map_or((false, None), |(o, s)| (*o, s.as_deref()));
            if other {
                stats.other_venue += 1;
            } else {
                match encoder.encode(rec.payload, rec.t_recv, stream) {
                    Ok(Encoded::Frame(t)) => {
                        stats.encoded[template_index(t)] += 1;
                        payload = encoder.frame();
                    }
                    Ok(Encoded::Control) => stats.control += 1,
                    Ok(Encoded::NoSbeStream) => {
                        stats.dropped += 1;
                        continue;
                    }
                    Err(e) => {
                        stats.refused += 1;
                        stats.first_refusal.get_or_insert(e);
                    }
                }
            }
        }
        writer.write_parts(rec.t_recv, rec.conn, rec.kind, rec.meta, payload)?;
        let w = &mut stats.written;
        if w.records == 0 {
            w.first_t_recv = rec.t_recv;
        }
        w.last_t_recv = rec.t_recv;
        w.records += 1;
        w.by_kind[rec.kind as usize] += 1;
        w.payload_bytes += payload.len() as u64;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceError;
    use crate::recording::{RecordingHeader, RecordingReader, Rotation};
    use pinion_core::record::{ConnId, ConnInfo, RawRecord};

    /// Records held in memory.
    struct Records {
        conns: Vec<ConnInfo>,
        recs: Vec<(u64, u16, RecordKind, &'static str, &'static str)>,
        next: usize,
    }

    impl FrameSource for Records {
        fn connections(&self) -> &[ConnInfo] {
            &self.conns
        }

        fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
            let Some(&(t, conn, kind, meta, payload)) = self.recs.get(self.next) else {
                return Ok(None);
            };
            self.next += 1;
            Ok(Some(RawRecord {
                t_recv: t,
                conn: ConnId(conn),
                kind,
                meta: meta.as_bytes(),
                payload: payload.as_bytes(),
            }))
        }
    }

    #[test]
    fn each_kind_of_record_goes_where_the_table_says() {
        let conn = |id, venue, url: &str| ConnInfo {
            id: ConnId(id),
            venue,
            url: url.into(),
        };
        let depth5 = r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[]}"#;
        let trade =
            r#"{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"0.1","q":"1","T":1,"m":false,"M":true}"#;
        let usdm =
            r#"{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}"#;
        let bad =
            r#"{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"0.000000001","q":"1","T":1,"m":false}"#;
        let agg = r#"{"e":"aggTrade","E":1,"s":"BNBBTC","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"M":true}"#;
        let snapshot = r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#;
        let mut src = Records {
            conns: vec![
                conn(
                    0,
                    Some(Venue::BinanceSpot),
                    "wss://x/ws/bnbbtc@depth5@100ms",
                ),
                conn(1, None, "wss://x/stream"),
                conn(2, Some(Venue::BinanceUsdm), "wss://y/stream"),
            ],
            recs: vec![
                (
                    1,
                    0,
                    RecordKind::Connect,
                    "wss://x/ws/bnbbtc@depth5@100ms",
                    "",
                ),
                (2, 1, RecordKind::Frame, "", r#"{"result":null,"id":1}"#),
                (3, 0, RecordKind::Frame, "", depth5),
                (
                    4,
                    1,
                    RecordKind::RestSnapshot,
                    "/api/v3/depth?symbol=BNBBTC",
                    snapshot,
                ),
                (5, 1, RecordKind::Frame, "", trade),
                (6, 1, RecordKind::Frame, "", agg),
                (7, 2, RecordKind::Frame, "", usdm),
                (8, 1, RecordKind::Frame, "", bad),
                (9, 1, RecordKind::Frame, "", usdm),
                (10, 1, RecordKind::Disconnect, "", ""),
            ],
            next: 0,
        };
        let path = std::env::temp_dir().join(format!(
            "pinion-convert-sbe-unit-{}.pnr",
            std::process::id()
        ));
        let mut writer =
            RecordingWriter::create(&path, RecordingHeader::new("unit", 0), Rotation::NONE)
                .expect("create");
        let stats =
            convert_to_sbe(&mut src, &mut writer, Exponents::BINANCE_SPOT).expect("converts");
        writer.finish().expect("finish");
        assert_eq!(stats.encoded, [1, 0, 1, 0]);
        assert_eq!(
            (
                stats.control,
                stats.dropped,
                stats.other_venue,
                stats.refused
            ),
            (1, 1, 1, 2)
        );
        assert!(matches!(
            stats.first_refusal,
            Some(SbeEncodeError::Decimal { field: "p", .. })
        ));
        assert_eq!(stats.written.records, 9);

        let mut encoder = SbeEncoder::new(Exponents::BINANCE_SPOT);
        let mut sbe = |json: &str, t: u64, stream: Option<&str>| {
            encoder.encode(json.as_bytes(), t, stream).expect("encodes");
            encoder.frame().to_vec()
        };
        let want: Vec<(u64, RecordKind, Vec<u8>)> = vec![
            (1, RecordKind::Connect, Vec::new()),
            (2, RecordKind::Frame, br#"{"result":null,"id":1}"#.to_vec()),
            (3, RecordKind::Frame, sbe(depth5, 3, Some("bnbbtc@depth5"))),
            (4, RecordKind::RestSnapshot, snapshot.as_bytes().to_vec()),
            (5, RecordKind::Frame, sbe(trade, 5, None)),
            (7, RecordKind::Frame, usdm.as_bytes().to_vec()),
            (8, RecordKind::Frame, bad.as_bytes().to_vec()),
            (9, RecordKind::Frame, usdm.as_bytes().to_vec()),
            (10, RecordKind::Disconnect, Vec::new()),
        ];
        let mut reader = RecordingReader::open(&path).expect("reopen");
        let mut got = Vec::new();
        while let Some(rec) = reader.next_record().expect("record") {
            got.push((rec.t_recv, rec.kind, rec.payload.to_vec()));
        }
        let _ = std::fs::remove_file(&path);
        assert_eq!(got, want);
        // The partial depth frame names the symbol of its connection's stream.
        assert!(got[2].2.ends_with(b"\x06BNBBTC"));
    }

    #[test]
    fn raw_connections_name_their_stream() {
        assert_eq!(
            stream_of_url("wss://stream.binance.com:9443/ws/btcusdt@depth5@100ms"),
            Some("btcusdt@depth5@100ms")
        );
        assert_eq!(
            stream_of_url("wss://x/ws/btcusdt@trade?timeUnit=x"),
            Some("btcusdt@trade")
        );
        assert_eq!(
            stream_of_url("wss://x/stream?streams=a@trade/b@trade"),
            None
        );
        assert_eq!(stream_of_url("wss://x/ws"), None);
        assert_eq!(stream_of_url("wss://x/ws/a@trade/b@trade"), None);
    }
}
