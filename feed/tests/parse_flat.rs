//! The strict scanner for Binance's flat messages against the general simd-json path.
//!
//! Every frame of the real recordings is decoded both ways and the answers, events and counters
//! must be identical; every real trade and bookTicker must be taken by the scanner itself (else
//! it would be correct but useless). Malformed variants of real frames (truncations, wrong
//! types, escapes, duplicate keys, nesting, whitespace, …) must get the general path's answer,
//! and those the general path rejects must not be accepted by the scanner. A property test does
//! the same for random edits.

use std::io::{BufRead, BufReader};

use pinion_core::{EventKind, InstrumentSpec, Instruments, Venue};
use pinion_feed::parse::fuzzing::{self, FlatPair};
use pinion_feed::parse::{Decoded, ParseError};
use proptest::prelude::*;

const SPOT_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
const SPOT_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;
const FUTURES_TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#;
const FUTURES_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}"#;
const AGG_TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":26129,"p":"61837.63","q":"4.70443","f":27781,"l":27785,"T":1,"m":false,"M":true}}"#;

const SPOT_DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":50093239189,"u":50093239202,"b":[["61737.63000000","0.00000000"],["61730.17000000","0.00100000"]],"a":[["61837.64000000","1.54698000"]]}}"#;
const FUTURES_DEPTH: &str = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,"s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,"b":[["58710.20","0.014"]],"a":[["61800.30","2.510"],["61800.40","0.002"]]}}"#;

const BYBIT_DELTA: &str = r#"{"topic":"orderbook.200.ETHUSDT","ts":1786310816618,"type":"delta","data":{"s":"ETHUSDT","b":[["1923.5","10"]],"a":[["1924","0"],["1924.5","3"]],"u":62505425,"seq":112488545865},"cts":1786310816585}"#;
const BYBIT_SNAPSHOT: &str = r#"{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1786310818129,"data":{"s":"BTCUSDT","b":[["65114.20","6.054"],["65114.10","0.002"]],"a":[["65114.30","10.470"]],"u":1,"seq":753843913860},"cts":1786310818128}"#;

/// Binance Spot seeds first, then USD-M, then Bybit linear.
const SEEDS: [(Venue, &str); 9] = [
    (Venue::BinanceSpot, SPOT_TRADE),
    (Venue::BinanceSpot, SPOT_TICKER),
    (Venue::BinanceSpot, AGG_TRADE),
    (Venue::BinanceSpot, SPOT_DEPTH),
    (Venue::BinanceUsdm, FUTURES_TRADE),
    (Venue::BinanceUsdm, FUTURES_TICKER),
    (Venue::BinanceUsdm, FUTURES_DEPTH),
    (Venue::BybitLinear, BYBIT_DELTA),
    (Venue::BybitLinear, BYBIT_SNAPSHOT),
];

/// The recordings' instruments, tick and step as in the exchanges' responses (Binance Spot
/// quantities at the asset precision).
fn instruments() -> Instruments {
    let mut reg = Instruments::new();
    for (venue, symbol, tick, step) in [
        (Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001"),
        (Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "BTCUSDT", "0.10", "0.001"),
        (Venue::BybitLinear, "ETHUSDT", "0.01", "0.01"),
        (Venue::BybitLinear, "SOLUSDT", "0.010", "0.1"),
        (Venue::BybitLinear, "DOGEUSDT", "0.00001", "1"),
    ] {
        reg.add(InstrumentSpec::new(venue, symbol, tick, step).expect("spec"))
            .expect("register");
    }
    reg
}

/// Decodes every stream frame of a recording both ways; returns the (trade, bookTicker, depth)
/// message counts and how many of each the scanner took.
fn real_recording(relative: &str, venue: Venue) -> Option<[usize; 6]> {
    let path = pinion_testkit::data::require(relative)?;
    let file = std::fs::File::open(path).expect("open recording");
    let mut pair = FlatPair::new(instruments());
    let mut counts = [0usize; 6];
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.expect("read line");
        let (t, json) = line.split_once(' ').expect("`<ns> <json>` line");
        if !json.starts_with(r#"{"stream""#) {
            continue;
        }
        let (res, events) = pair.check(venue, t.parse().expect("receive time"), json.as_bytes());
        let kind = events.first().map(|e| e.kind);
        let slot = match kind {
            Some(EventKind::Trade) => 0,
            Some(EventKind::BookTicker) => 1,
            Some(EventKind::Depth) => 2,
            _ => continue,
        };
        assert!(matches!(res, Ok(Decoded::Events(n)) if n as usize == events.len()));
        counts[slot] += 1;
        if pair.scanner_accepts(venue, json.as_bytes()) {
            counts[slot + 3] += 1;
        }
    }
    Some(counts)
}

#[test]
fn spot_recording_decodes_the_same_both_ways() {
    let Some([trades, tickers, depth, fast @ ..]) =
        real_recording("binance/spot-btcusdt-20240808.hbt.gz", Venue::BinanceSpot)
    else {
        return;
    };
    // The counts of shared/data/README.md.
    assert_eq!((trades, tickers, depth), (9_757, 28_040, 3_451));
    assert_eq!(fast, [trades, tickers, depth]);
}

#[test]
fn usdm_recording_decodes_the_same_both_ways() {
    let Some([trades, tickers, depth, fast @ ..]) =
        real_recording("binance/usdm-btcusdt-20240808.hbt.gz", Venue::BinanceUsdm)
    else {
        return;
    };
    assert_eq!((trades, tickers, depth), (21_313, 66_089, 6_551));
    assert_eq!(fast, [trades, tickers, depth]);
}

#[test]
fn bybit_recording_decodes_the_same_both_ways() {
    let Some(path) =
        pinion_testkit::data::require("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst")
    else {
        return;
    };
    let file = std::fs::File::open(path).expect("open recording");
    let mut pair = FlatPair::new(instruments());
    let (mut books, mut scanned, mut frames) = (0, 0, 0);
    for line in BufReader::new(zstd::Decoder::new(file).expect("zstd")).lines() {
        let line: serde_json::Value =
            serde_json::from_str(&line.expect("read line")).expect("json line");
        // The linear connection; the spot one has no instruments here and is all skips.
        if line["t"] != "recv" || line["conn"] != "BYBIT.ws.2" {
            continue;
        }
        let data = line["data"].as_str().expect("frame text");
        frames += 1;
        let (res, events) = pair.check(Venue::BybitLinear, 1, data.as_bytes());
        if matches!(
            events.first().map(|e| e.kind),
            Some(EventKind::Depth | EventKind::Snapshot)
        ) {
            assert!(matches!(res, Ok(Decoded::Events(n)) if n as usize == events.len()));
            books += 1;
            if pair.scanner_accepts(Venue::BybitLinear, data.as_bytes()) {
                scanned += 1;
            }
        }
    }
    assert!(frames > books && books > 1_000, "{books} books of {frames}");
    assert_eq!(scanned, books);
}

#[test]
fn seeds_take_the_scanner() {
    let mut pair = FlatPair::new(instruments());
    for (venue, seed) in SEEDS {
        let (res, _) = pair.check(venue, 1, seed.as_bytes());
        assert_eq!(res, Ok(Decoded::Events(1)), "{seed}");
        assert!(pair.scanner_accepts(venue, seed.as_bytes()), "{seed}");
    }
}

/// The `"key":value` pairs of a seed's payload, split at the commas outside the level arrays
/// (the seeds' strings hold no brackets or commas).
fn pairs(seed: &str) -> (String, Vec<String>) {
    let start = seed.find(r#""data":{"#).expect("envelope") + r#""data":{"#.len();
    let body = &seed[start..seed.len() - 2];
    let mut out = vec![String::new()];
    let mut nesting = 0;
    for c in body.chars() {
        match c {
            '[' => nesting += 1,
            ']' => nesting -= 1,
            ',' if nesting == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("one pair at least").push(c);
    }
    (seed[..start].to_owned(), out)
}

fn rebuild(head: &str, pairs: &[String]) -> String {
    format!("{head}{}}}}}", pairs.join(","))
}

/// Malformed and unusual variants of a seed, each with whether the scanner may take it.
fn variants(seed: &str) -> Vec<(String, bool)> {
    let (head, kv) = pairs(seed);
    let mut out = Vec::new();
    // Every truncation.
    for n in 0..seed.len() {
        out.push((seed[..n].to_owned(), false));
    }
    for (i, pair) in kv.iter().enumerate() {
        let (key, value) = pair.split_once(':').expect("pair");
        let k = key.trim_matches('"');
        let with = |new: String| {
            let mut v = kv.clone();
            v[i] = new;
            rebuild(&head, &v)
        };
        // Wrong types: a string where a number is, a number where a string is, null, nesting.
        let swapped = if value.starts_with('"') {
            value.trim_matches('"').to_owned()
        } else {
            format!("\"{value}\"")
        };
        // Scalars of the wrong type are inside the subset: a field that needs another type
        // is an error of the general path, so the check on errors covers them.
        out.push((with(format!("{key}:{swapped}")), true));
        out.push((with(format!("{key}:null")), true));
        out.push((with(format!("{key}:-1")), true));
        out.push((with(format!("{key}:1.5")), true));
        out.push((with(format!("{key}:[{value}]")), false));
        out.push((with(format!("{key}:{{}}")), false));
        // Levels: an empty side is inside the subset, odd pairs are not.
        if value.starts_with('[') {
            out.push((with(format!("{key}:[]")), true));
            out.push((with(format!("{key}:[[]]")), false));
            out.push((with(format!(r#"{key}:[["1"]]"#)), false));
            out.push((with(format!(r#"{key}:[["1","2","3"]]"#)), false));
            out.push((with(format!(r#"{key}:[[1,"2"]]"#)), false));
            out.push((with(format!(r#"{key}:[["1","2"],]"#)), false));
            out.push((with(format!(r#"{key}:[["1", "2"]]"#)), false));
            out.push((with(format!(r#"{key}:[["1","-2"]]"#)), true));
            out.push((with(format!(r#"{key}:[["1","0.000000001"]]"#)), false));
        }
        // Decimal strings of other shapes than the venues' usual one: the one-pass read must
        // leave them to the general conversion, which gives the value or the error.
        if value.starts_with("\"") && value[1..].starts_with(|c: char| c.is_ascii_digit()) {
            for odd in [
                "0.123456789",
                "123456789.5",
                "12345678.12345678",
                "61800",
                "00.10",
                "5.",
                ".5",
                "1e5",
                "1.5.",
            ] {
                out.push((with(format!("{key}:\"{odd}\"")), true));
            }
        }
        // An escape in the key and in a string value: valid JSON, but not the subset.
        if let Some(c) = k.chars().next() {
            out.push((
                with(format!("\"\\u{:04x}{}\":{value}", c as u32, &k[1..])),
                false,
            ));
        }
        if value.len() > 3 && value.starts_with('"') {
            out.push((with(format!("{key}:\"\\u0030{}", &value[1..])), false));
            out.push((
                with(format!("{key}:{}\\\"", &value[..value.len() - 1])),
                false,
            ));
        }
        // Whitespace around the value.
        out.push((with(format!("{key}: {value}")), false));
        out.push((with(format!("{key}:{value} ")), false));
        // A duplicate of the pair, with another value.
        let mut dup = kv.clone();
        dup.insert(i + 1, format!("{key}:{swapped}"));
        out.push((rebuild(&head, &dup), !KNOWN_KEYS.contains(&k)));
        let mut same = kv.clone();
        same.insert(i + 1, pair.clone());
        out.push((rebuild(&head, &same), !KNOWN_KEYS.contains(&k)));
        // The pair dropped.
        let mut dropped = kv.clone();
        dropped.remove(i);
        out.push((rebuild(&head, &dropped), true));
    }
    // Reordered keys: reversed, and rotated.
    let mut rev = kv.clone();
    rev.reverse();
    out.push((rebuild(&head, &rev), true));
    let mut rot = kv.clone();
    rot.rotate_left(1);
    out.push((rebuild(&head, &rot), true));
    // Extra keys: scalar ones are inside the subset, nested and non-ASCII ones are not.
    for (extra, ok) in [
        (r#""zz":1"#, true),
        (r#""zz":"x""#, true),
        (r#""zz":true"#, true),
        (r#""zz":null"#, true),
        (r#""zz":1e5"#, true),
        (r#""zz":{"a":1}"#, false),
        (r#""zz":[1,2]"#, false),
        (r#""zz":"é""#, false),
    ] {
        let mut v = kv.clone();
        v.push(extra.to_owned());
        out.push((rebuild(&head, &v), ok));
    }
    // Around the payload: trailing bytes, whitespace, an extra root key, an escaped stream name.
    out.push((format!("{seed} "), false));
    out.push((format!("{seed}x"), false));
    out.push((format!("{seed}}}"), false));
    out.push((format!(" {seed}"), false));
    out.push((seed.replacen(r#""data":"#, r#""data": "#, 1), false));
    out.push((format!("{},\"x\":1}}", &seed[..seed.len() - 1]), false));
    out.push((seed.replacen("btcusdt@", "btcusd\\u0074@", 1), false));
    out.push((seed.replacen("btcusdt@", "ethusdt@", 1), false));
    out.push((
        seed.replacen(r#""data":{"#, r#""data":{}, "d":{"#, 1),
        false,
    ));
    out.push((seed.replacen('{', "{\"x\":1,", 1), false));
    out
}

/// The keys the scanner keeps a slot for (the rest it ignores, as the general path does).
const KNOWN_KEYS: [&str; 16] = [
    "E", "T", "t", "p", "q", "m", "a", "f", "l", "u", "b", "B", "A", "U", "pu", "seq",
];

#[test]
fn malformed_variants_fall_back_with_the_general_answer() {
    let mut pair = FlatPair::new(instruments());
    let mut errors = 0;
    let mut checked = 0;
    let bybit = BYBIT_DELTA;
    // The generated variants assume the Binance envelope, where `data` is the last key; on
    // Bybit frames only the error check below applies to them, and these are the subset's.
    let bybit_outside = [
        bybit.replacen("orderbook.", "orderbook\\u002e", 1),
        bybit.replacen(r#""ts":"#, r#""ts": "#, 1),
        bybit.replacen(r#""ts":1786310816618"#, r#""ts":[1]"#, 1),
        bybit.replacen(r#""type":"delta""#, r#""type":"delta","type":"delta""#, 1),
        bybit.replacen(r#""ts":"#, r#""topic":"orderbook.200.ETHUSDT","ts":"#, 1),
        bybit.replacen(
            r#""cts":"#,
            r#""data":{"b":[],"a":[],"u":1,"seq":1},"cts":"#,
            1,
        ),
        bybit.replacen(r#""b":[["1923.5","10"]],"#, "", 1).replacen(
            r#""u":"#,
            r#""b":[["1923.5","10"]],"u":"#,
            1,
        ),
        format!("{bybit} "),
    ];
    for variant in &bybit_outside {
        let (res, _) = pair.check(Venue::BybitLinear, 3, variant.as_bytes());
        assert!(
            !pair.scanner_accepts(Venue::BybitLinear, variant.as_bytes()),
            "scanner took a frame outside its subset: {variant} ({res:?})"
        );
    }
    for (venue, seed) in SEEDS {
        let binance = venue.is_binance();
        for (variant, may_take) in variants(seed) {
            let may_take = may_take || !binance;
            let (res, _) = pair.check(venue, 3, variant.as_bytes());
            let took = pair.scanner_accepts(venue, variant.as_bytes());
            if res.is_err() {
                errors += 1;
                assert!(
                    !took,
                    "scanner took a frame the general path rejects: {variant}"
                );
            }
            if !may_take {
                assert!(!took, "scanner took a frame outside its subset: {variant}");
            }
            checked += 1;
        }
    }
    // Most variants are errors; the checks above are not vacuous.
    assert!(errors > checked / 2, "{errors} errors of {checked}");
}

#[test]
fn typed_errors_are_the_general_paths() {
    let mut pair = FlatPair::new(instruments());
    let cases: [(&str, Result<Decoded, ParseError>); 4] = [
        (
            r#"{"stream":"btcusdt@trade","data":{"E":1,"t":2,"p":"1.00","q":"1","m":true}}"#,
            // `T` and `E` are optional for a trade.
            Ok(Decoded::Events(1)),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"t":2,"p":1,"q":"1","m":true}}"#,
            Err(ParseError::WrongType("p")),
        ),
        (
            r#"{"stream":"btcusdt@trade","data":{"t":-2,"p":"1","q":"1","m":true}}"#,
            Err(ParseError::BadId("t")),
        ),
        (
            r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"1","B":"1","a":"1"}}"#,
            Err(ParseError::MissingField("A")),
        ),
    ];
    for (frame, want) in cases {
        let (res, _) = pair.check(Venue::BinanceSpot, 1, frame.as_bytes());
        assert_eq!(res, want, "{frame}");
    }
}

/// One edit of a frame.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\",:.-0123456789eEtfnul \\".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_decode_the_same_both_ways(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(edit(), 0..4),
    ) {
        let (venue, text) = SEEDS[seed];
        let mut v = text.as_bytes().to_vec();
        for e in edits {
            let len = v.len().max(1);
            match e {
                Edit::Replace(i, b) => if !v.is_empty() { v[i % len] = b },
                Edit::Insert(i, b) => v.insert(i % (v.len() + 1), b),
                Edit::Delete(i) => if !v.is_empty() { v.remove(i % len); },
                Edit::Truncate(i) => v.truncate(i % len),
            }
        }
        let selector = match venue {
            Venue::BinanceSpot => 0,
            Venue::BinanceUsdm => 1,
            _ => 2,
        };
        let mut data = vec![selector];
        data.extend_from_slice(&v);
        fuzzing::flat_equivalence(&mut FlatPair::new(instruments()), &data);
    }
}
