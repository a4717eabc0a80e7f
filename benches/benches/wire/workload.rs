//! What the server sends and what the clients start from, built from the real Binance Spot
//! recording before anything is timed.
//!
//! - The REST snapshot (`lastUpdateId` L) both books start from, loaded before the connection.
//! - The paced stream: every `@depth@100ms` and `@bookTicker` frame of the recording in
//!   recording order, from the depth message that bridges the snapshot (`U ≤ L+1 ≤ u`, which
//!   arrived before the snapshot) on; trades are left out, the book does not use them.
//! - The ticker run: that bridging depth message (so the book is live), then bookTicker frames
//!   of the recording, cycled, with their `u` rewritten to follow the depth message one by one.
//!   Each is then a ticker ahead of the book (held as its top) on both sides, as a live feed's
//!   tickers between two 100 ms depth messages are; with the recorded `u` a second cycle would
//!   be all stale tickers, a cheaper path. Rewriting keeps the digit count, so the frames keep
//!   the recorded sizes (about 150 bytes).

use pinion_core::{
    ConnId, InstrumentId, InstrumentSpec, Instruments, MarketEvent, RawRecord, RecordKind, Venue,
};
use pinion_feed::parse::{ConnCtx, Decoder};

/// The recording (`shared/data/README.md`).
pub const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";

/// Everything a round needs, shared by both sides.
#[derive(Debug)]
pub struct Workload {
    /// BTCUSDT on Binance Spot, as the parse benchmark registers it.
    pub spec: InstrumentSpec,
    /// The registry holding only it.
    pub instruments: Instruments,
    /// Its id.
    pub instrument: InstrumentId,
    /// The REST snapshot body, as recorded.
    pub snapshot_json: Vec<u8>,
    /// The snapshot decoded by pinion's decoder.
    pub snapshot_events: Vec<MarketEvent>,
    /// The paced stream (see the module docs).
    pub paced: Vec<Vec<u8>>,
    /// Depth messages in `paced`.
    pub paced_depth: usize,
    /// The ticker run (see the module docs), `ticker_frames + 1` frames.
    pub ticker_run: Vec<Vec<u8>>,
}

impl Workload {
    /// Reads the recording; `None` when it is missing outside CI.
    ///
    /// # Panics
    /// On a recording that does not have the shape described in the module docs.
    pub fn load(paced_frames: usize, ticker_frames: usize) -> Option<Workload> {
        let lines = pinion_benches::hbt_lines(RECORDING)?;
        // Tick and step as in the recording's exchange response; quantities at BTC's asset
        // precision (the recording has sizes finer than the lot step).
        let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001")
            .expect("BTCUSDT spec");
        let mut instruments = Instruments::new();
        let instrument = instruments.add(spec.clone()).expect("one instrument");

        let snapshot = lines
            .iter()
            .find(|l| !l.is_stream())
            .expect("the recording holds a REST snapshot");
        let snapshot_id = last_update_id(&snapshot.json);
        let mut decoder = Decoder::new(instruments.clone());
        let ctx = ConnCtx {
            venue: Venue::BinanceSpot,
            default_instrument: Some(instrument),
        };
        let rec = RawRecord {
            t_recv: snapshot.t_recv,
            conn: ConnId(0),
            kind: RecordKind::RestSnapshot,
            meta: b"",
            payload: &snapshot.json,
        };
        let mut snapshot_events = Vec::new();
        decoder
            .decode(&ctx, &rec, 0, |e| snapshot_events.push(*e))
            .expect("the snapshot decodes");

        let is = |json: &[u8], stream: &[u8]| {
            json.get(11..11 + stream.len())
                .is_some_and(|name| name == stream)
        };
        let book_frames: Vec<&[u8]> = lines
            .iter()
            .map(|l| l.json.as_slice())
            .filter(|j| is(j, b"btcusdt@depth@100ms") || is(j, b"btcusdt@bookTicker"))
            .collect();
        let bridge = book_frames
            .iter()
            .position(|j| {
                is(j, b"btcusdt@depth@100ms") && {
                    let (first, last) = depth_ids(j);
                    first <= snapshot_id + 1 && snapshot_id < last
                }
            })
            .expect("a depth message bridges the snapshot");
        let paced: Vec<Vec<u8>> = book_frames[bridge..]
            .iter()
            .take(paced_frames)
            .map(|j| j.to_vec())
            .collect();
        let paced_depth = paced
            .iter()
            .filter(|j| is(j, b"btcusdt@depth@100ms"))
            .count();

        let bridge_frame = book_frames[bridge];
        let (_, bridge_u) = depth_ids(bridge_frame);
        let tickers: Vec<&[u8]> = book_frames
            .iter()
            .copied()
            .filter(|j| is(j, b"btcusdt@bookTicker"))
            .collect();
        let mut ticker_run = Vec::with_capacity(ticker_frames + 1);
        ticker_run.push(bridge_frame.to_vec());
        for (k, frame) in tickers.iter().cycle().take(ticker_frames).enumerate() {
            ticker_run.push(with_update_id(frame, bridge_u + 1 + k as u64));
        }
        Some(Workload {
            spec,
            instruments,
            instrument,
            snapshot_json: snapshot.json.clone(),
            snapshot_events,
            paced,
            paced_depth,
            ticker_run,
        })
    }
}

/// The digits after `key` in `json`, as a number.
fn number_after(json: &[u8], key: &[u8]) -> u64 {
    let at = json
        .windows(key.len())
        .position(|w| w == key)
        .expect("the key is in the frame")
        + key.len();
    json[at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'))
}

fn last_update_id(snapshot: &[u8]) -> u64 {
    number_after(snapshot, b"\"lastUpdateId\":")
}

/// `(U, u)` of a depth message.
fn depth_ids(frame: &[u8]) -> (u64, u64) {
    (
        number_after(frame, b"\"U\":"),
        number_after(frame, b"\"u\":"),
    )
}

/// `frame` with its `"u":` number replaced by `u`.
fn with_update_id(frame: &[u8], u: u64) -> Vec<u8> {
    let key = b"\"u\":";
    let at = frame
        .windows(key.len())
        .position(|w| w == key)
        .expect("a bookTicker has u")
        + key.len();
    let digits = frame[at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..at]);
    out.extend_from_slice(u.to_string().as_bytes());
    out.extend_from_slice(&frame[at + digits..]);
    out
}
