//! The fuzz targets' entry points on stable Rust: every parser entry point gets random bytes and
//! mutations of real-looking frames (bytes replaced, inserted, deleted, the frame cut short),
//! and the harness checks the decoder's promises on each (see `pinion_feed::parse::fuzzing`).
//!
//! The input picker and every recording reader get the same treatment through
//! `pinion_feed::source::fuzzing` (small recordings of each text format, plain or compressed,
//! edited before or after compression, and random bytes behind each magic number).
//!
//! This is the fallback `scripts/fuzz-smoke.sh` runs where cargo-fuzz or nightly is missing.
//! `PROPTEST_CASES` sets the number of inputs per entry point (default 256).

use pinion_feed::parse::fuzzing::{self, Harness};
use pinion_feed::parse::{Decoded, ParseError, SkipReason};
use proptest::prelude::*;

const SPOT_SEEDS: &[&str] = &[
    r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00100000"]],"a":[["61837.64000000","1.54698000"]]}}"#,
    r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#,
    r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#,
    r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":26129,"p":"61837.63","q":"4.70443","f":27781,"l":27785,"T":1,"m":false,"M":true}}"#,
    r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.01","1"]],"asks":[["0.02","2"]]}}"#,
    r#"{"lastUpdateId":160,"bids":[["0.01","1"]],"asks":[]}"#,
    r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000042123,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","f":501,"L":507,"o":"36100.50","c":"36090.00","h":"36120.25","l":"36080.75","v":"1.25000","n":7,"x":false,"q":"45120.1","V":"0.50000","Q":"18050.2","B":"0"}}}"#,
    r#"{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1700000050000,"s":"BTCUSDT","p":"-200.00","c":"36090.00","Q":"0.01000","o":"36290.00","h":"36500.00","l":"35900.00","v":"1234.56789","q":"1","O":1,"C":2,"F":100,"L":250,"n":151}}"#,
    r#"{"e":"24hrMiniTicker","E":1700000051000,"s":"BTCUSDT","c":"0.00","o":"0.00","h":"0.00","l":"0.00","v":"0","q":"0"}"#,
    r#"{"result":null,"id":1}"#,
];

const FUTURES_SEEDS: &[&str] = &[
    r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,"st":1,"b":[["58710.20","0.014"]],"a":[["61800.30","2.510"]]}}"#,
    r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}"#,
    r#"{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}"#,
    r#"{"e":"kline","E":1700000100500,"s":"BTCUSDT","k":{"t":1700000100000,"T":1700000399999,"s":"BTCUSDT","i":"5m","f":-1,"L":-1,"o":"36001.2","c":"36001.2","h":"36001.2","l":"36001.2","v":"0.000","n":0,"x":true,"V":"0"}}"#,
];

const BYBIT_SEEDS: &[&str] = &[
    r#"{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1786310818129,"data":{"s":"BTCUSDT","b":[["65114.20","6.054"],["65114.10","0.002"]],"a":[["65114.30","10.470"]],"u":1,"seq":753843913860},"cts":1786310818128}"#,
    r#"{"topic":"orderbook.200.ETHUSDT","ts":1786310816618,"type":"delta","data":{"s":"ETHUSDT","b":[["1923.5","10"]],"a":[["1924","0"]],"u":62505425,"seq":112488545865},"cts":1786310816585}"#,
    r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310819681,"data":[{"T":1786310819680,"s":"BTCUSDT","S":"Sell","v":"0.004","p":"65114.20","i":"a9188a0a-82bc-50de-be60-03eedbe3cdd7","seq":753843954913},{"T":1,"S":"Buy","v":"1","p":"1","i":"7","seq":2}]}"#,
    r#"{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":[{"start":1700000040000,"end":1700000099999,"open":"36000.0","close":"36010.5","high":"36020.0","low":"35990.0","volume":"3.210","confirm":true},{"start":1700000100000,"end":1700000159999,"open":"1.5","close":"1.5","high":"1.5","low":"1.5","volume":"0","confirm":false}]}"#,
    r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","lastPrice":"36011.0","volume24h":"17000.500","bid1Price":"36010.9"},"cs":99,"ts":1}"#,
    r#"{"success":true,"ret_msg":"","conn_id":"x","req_id":"","op":"subscribe"}"#,
];

const SNAPSHOT_SEEDS: &[&str] = &[
    r#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"]],"asks":[["61837.64000000","1.60520000"]]}"#,
    r#"{"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"]],"asks":[["61800.30","0.002"]]}"#,
    r#"{"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","b":[["65000.00","1.000"]],"a":[["65000.01","2.000"]],"ts":1,"u":230704,"seq":1432604333,"cts":1},"time":1}"#,
    r#"{"code":-1121,"msg":"Invalid symbol."}"#,
];

/// One edit of a frame.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to JSON and decimals more often than chance would pick them.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\",:.-0123456789eE \\tnul".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// `v` with `edits` applied.
fn apply(mut v: Vec<u8>, edits: Vec<Edit>) -> Vec<u8> {
    for e in edits {
        let len = v.len().max(1);
        match e {
            Edit::Replace(i, b) => {
                if !v.is_empty() {
                    v[i % len] = b;
                }
            }
            Edit::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Edit::Delete(i) => {
                if !v.is_empty() {
                    v.remove(i % len);
                }
            }
            Edit::Truncate(i) => v.truncate(i % len),
        }
    }
    v
}

/// A seed with a few edits applied, or random bytes.
fn input(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(seeds), prop::collection::vec(edit(), 1..6))
            .prop_map(|(seed, edits)| apply(seed.as_bytes().to_vec(), edits)),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// REST requests and responses as a capture holds them: by length, chunked, until close.
const HTTP_SEEDS: &[&str] = &[
    "GET /api/v3/depth?symbol=BTCUSDT&limit=1000 HTTP/1.1\r\nHost: api.binance.com\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"lastUpdateId\":1,\"b\":[]}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
    "HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\nxyz",
];

/// Small recordings of every text format the reader picker knows.
const RECORDING_SEEDS: &[&str] = &[
    "1723161253937085768 {\"stream\":\"a\",\"data\":{}}\n1723161253937085769 {\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}\n",
    "1723161253.5\t{\"topic\":\"orderbook.500.BTCUSDT\",\"type\":\"delta\",\"ts\":1,\"data\":{\"b\":[[\"1\",\"2\"]],\"a\":[]}}\n{\"e\":\"trade\",\"E\":1723161254500}\n",
    "{\"retCode\":0,\"result\":{\"b\":[],\"a\":[]},\"time\":1}\n{\"stream\":\"x\",\"data\":{\"E\":5}}\n",
    "wss://stream.binance.com:9443/stream?streams=a <-> 10.5\n11.25: {\"stream\":\"a\"}\n",
    "{\"t\":\"header\",\"format\":2}\n{\"t\":\"connect\",\"conn\":\"W.2\",\"ts\":11,\"addr\":\"wss://x\"}\n{\"t\":\"recv\",\"conn\":\"W.2\",\"ts\":11.1,\"data\":\"{\\\"topic\\\":1}\"}\n",
];

/// A recording seed, edited, then stored plain, gzip or zstd, or gzip with the edits made to
/// the compressed bytes; or random bytes behind a magic number the picker knows.
fn recording() -> impl Strategy<Value = Vec<u8>> {
    use std::io::Write;
    let magic = prop::sample::select(vec![
        &b"\x1f\x8b"[..],
        b"\x28\xb5\x2f\xfd",
        b"\xd4\xc3\xb2\xa1",
        b"\x0a\x0d\x0d\x0a",
        b"\x89PNR\r\n\x1a\n",
        b"",
    ]);
    prop_oneof![
        4 => (input(RECORDING_SEEDS), 0u8..4, prop::collection::vec(edit(), 1..4)).prop_map(
            |(text, how, edits)| {
                let gzip = |t: &[u8]| {
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(t).expect("in memory");
                    e.finish().expect("in memory")
                };
                match how {
                    0 => text,
                    1 => gzip(&text),
                    2 => zstd::encode_all(&text[..], 1).expect("in memory"),
                    _ => apply(gzip(&text), edits),
                }
            }
        ),
        1 => (magic, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(m, rest)| {
            let mut v = m.to_vec();
            v.extend_from_slice(&rest);
            v
        }),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn binance_spot_frame(data in input(SPOT_SEEDS)) {
        let _ = Harness::new().binance_spot_frame(&data);
    }

    #[test]
    fn sbe_frame(data in prop::collection::vec(any::<u8>(), 0..160)) {
        let _ = Harness::new().sbe_frame(&data);
    }

    #[test]
    fn binance_futures_frame(data in input(FUTURES_SEEDS)) {
        let _ = Harness::new().binance_futures_frame(&data);
    }

    #[test]
    fn bybit_frame(data in input(BYBIT_SEEDS)) {
        let _ = Harness::new().bybit_frame(&data);
    }

    #[test]
    fn rest_snapshot(selector in any::<u8>(), body in input(SNAPSHOT_SEEDS)) {
        let mut data = vec![selector];
        data.extend_from_slice(&body);
        prop_assert!(Harness::new().rest_snapshot(&data).is_some());
    }

    #[test]
    fn recording_input(data in recording()) {
        let _ = pinion_feed::source::fuzzing::read_input(&data);
    }

    #[test]
    fn recording_survey(data in recording()) {
        let _ = pinion_feed::source::fuzzing::survey_input(&data);
    }

    #[test]
    fn rest_exchange(data in input(HTTP_SEEDS)) {
        pinion_feed::source::fuzzing::http_exchange(&data);
    }

    #[test]
    fn decimal(scale in any::<u8>(), text in prop_oneof![
        "-?[0-9]{0,22}(\\.[0-9]{0,20})?",
        ".{0,30}",
    ]) {
        let mut data = vec![scale];
        data.extend_from_slice(text.as_bytes());
        fuzzing::decimal(&data);
    }
}

#[test]
fn unmutated_recording_seeds_read_whole() {
    for seed in RECORDING_SEEDS {
        let o = pinion_feed::source::fuzzing::read_input(seed.as_bytes());
        assert!(o.opened && o.records >= 2 && o.errors == 0, "{seed}: {o:?}");
    }
}

#[test]
fn unmutated_seeds_decode() {
    // The message seeds decode, so the mutations start from frames that reach deep into the
    // parsers (the control seeds are the last of their lists).
    let mut h = Harness::new();
    let decoded = |r: Result<Decoded, ParseError>| matches!(r, Ok(Decoded::Events(n)) if n > 0);
    for s in &SPOT_SEEDS[..SPOT_SEEDS.len() - 1] {
        assert!(decoded(h.binance_spot_frame(s.as_bytes())), "{s}");
    }
    for s in FUTURES_SEEDS {
        assert!(decoded(h.binance_futures_frame(s.as_bytes())), "{s}");
    }
    for s in &BYBIT_SEEDS[..BYBIT_SEEDS.len() - 1] {
        assert!(decoded(h.bybit_frame(s.as_bytes())), "{s}");
    }
    assert_eq!(
        h.bybit_frame(BYBIT_SEEDS[BYBIT_SEEDS.len() - 1].as_bytes()),
        Ok(Decoded::Skipped(SkipReason::Control))
    );
    // The SBE seeds (selector mode 2 with no edits) are well-formed messages of each template;
    // mode 1 reaches the template check.
    for template in 0u8..4 {
        let r = h.sbe_frame(&[2 | template << 2]).expect("a selector");
        assert!(decoded(r), "SBE seed {template}: {r:?}");
    }
    assert_eq!(
        h.sbe_frame(&[1 | 4 << 2]),
        Some(Ok(Decoded::Skipped(SkipReason::UnknownTemplate)))
    );
    // Spot snapshot with the URL naming BTCUSDT (selector 0x80 = Binance Spot + URL).
    let mut body = vec![0x80];
    body.extend_from_slice(SNAPSHOT_SEEDS[0].as_bytes());
    assert_eq!(h.rest_snapshot(&body), Some(Ok(Decoded::Events(1))));
}
