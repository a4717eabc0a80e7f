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
