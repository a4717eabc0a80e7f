//! Instrument loaders against the real exchange responses: Binance Spot `exchangeInfo`
//! (2021-10-12) and Bybit v5 `instruments-info` (linear and spot, 2026-08-09, inside the JSONL
//! capture). Expected values are read off the files by hand.

use std::io::{BufRead, BufReader};

use flate2::read::GzDecoder;
use pinion_core::{InstrumentSpec, Instruments, Px, Qty, RecordKind, Symbol, Venue};
use pinion_feed::FrameSource;
use pinion_feed::exchange_info::{
    RateLimit, RateLimitInterval, RateLimitKind, binance_exchange_info, binance_rate_limits,
    binance_stp_modes, bybit_instruments_info, load_instruments_from_source,
};
use pinion_feed::source::cryptofeed::{CryptofeedJsonlReader, parse_http_line};
use pinion_testkit::data;

/// `(price_decimals, qty_decimals, tick, step, min_price, max_price, min_qty, max_qty,
/// min_notional)`.
type Expected = (u8, u8, i64, i64, i64, i64, i64, i64, i128);

fn spec(venue: Venue, symbol: &str, e: Expected) -> InstrumentSpec {
    InstrumentSpec {
        venue,
        symbol: Symbol::from(symbol).expect("short symbol"),
        price_decimals: e.0,
        qty_decimals: e.1,
        tick: Px(e.2),
        step: Qty(e.3),
        min_price: Px(e.4),
        max_price: Px(e.5),
        min_qty: Qty(e.6),
        max_qty: Qty(e.7),
        min_notional: e.8,
        inverse_contract_size: pinion_core::default_inverse_contract_size(venue, symbol),
    }
}

fn find<'a>(specs: &'a [InstrumentSpec], symbol: &str) -> &'a InstrumentSpec {
    specs
        .iter()
        .find(|s| s.symbol.as_str() == symbol)
        .unwrap_or_else(|| panic!("{symbol} missing"))
}

/// The body of the `exchangeInfo` capture's first line.
fn exchange_info_body() -> Option<Vec<u8>> {
    let path = data::require("binance/spot-exchangeinfo-20211012.json.gz")?;
    let file = std::fs::File::open(path).expect("open exchangeInfo capture");
    let mut line = Vec::new();
    BufReader::new(GzDecoder::new(file))
        .read_until(b'\n', &mut line)
        .expect("read exchangeInfo capture");
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let parsed = parse_http_line(text).expect("`<url> -> <time>: <json>` line");
    assert_eq!(parsed.url, b"https://api.binance.com/api/v3/exchangeInfo");
    assert_eq!(parsed.t_ns, 1_633_998_511_132_921_000);
    Some(parsed.body.to_vec())
}

#[test]
fn the_2021_exchange_info_predates_self_trade_prevention_and_lists_no_modes() {
    let Some(body) = exchange_info_body() else {
        return;
    };
    let modes = binance_stp_modes(&body).expect("parses");
    assert_eq!(modes.len(), 1_695);
    assert!(modes.iter().any(|m| m.symbol == "BTCUSDT"));
    assert!(
        modes
            .iter()
            .all(|m| m.default.is_none() && m.allowed.is_none()),
        "a 2021 response names STP modes"
    );
}

#[test]
fn binance_spot_exchange_info_loads_every_symbol_exactly() {
    let Some(body) = exchange_info_body() else {
        return;
    };
    let specs = binance_exchange_info(&body, Venue::BinanceSpot).expect("all symbols load");
    // Quantities are scaled by baseAssetPrecision (8 for all of these), finer than the lot step:
    // real books carry quantities the step does not divide.
    assert_eq!(specs.len(), 1_695);

    let v = Venue::BinanceSpot;
    let expected = [
        (
            "BTCUSDT",
            (
                2,
                8,
                1,
                1_000,
                1,
                100_000_000,
                1_000,
                900_000_000_000,
                100_000_000_000,
            ),
        ),
        (
            "NKNUSDT",
            (
                4,
                8,
                1,
                100_000_000,
                1,
                10_000_000,
                100_000_000,
                900_000_000_000_000,
                10_000_000_000_000,
            ),
        ),
        (
            "BLZETH",
            (
                8,
                8,
                1,
                100_000_000,
                1,
                100_000_000_000,
                100_000_000,
                9_000_000_000_000_000,
                50_000_000_000_000,
            ),
        ),
        (
            "LRCBTC",
            (
                8,
                8,
                1,
                100_000_000,
                1,
                100_000_000_000,
                100_000_000,
                9_000_000_000_000_000,
                1_000_000_000_000,
            ),
        ),
        (
            "RUNEEUR",
            (
                3,
                8,
                1,
                10_000_000,
                1,
                10_000_000,
                10_000_000,
                922_244_900_000_000,
                1_000_000_000_000,
            ),
        ),
    ];
    for (symbol, e) in expected {
        assert_eq!(find(&specs, symbol), &spec(v, symbol, e), "{symbol}");
    }

    // Every spec registers, and the registry finds them by stream-name case.
    let mut reg = Instruments::new();
    for s in &specs {
        assert!(s.tick.0 > 0 && s.step.0 > 0, "{}", s.symbol);
        assert!(
            s.max_price.0 == 0 || s.min_price <= s.max_price,
            "{}",
            s.symbol
        );
        assert!(s.max_qty.0 == 0 || s.min_qty <= s.max_qty, "{}", s.symbol);
        reg.add(s.clone()).expect("no duplicate symbols");
    }
    let id = reg.lookup(v, b"runeeur").expect("RUNEEUR registered");
    assert_eq!(reg.get(id).map(|s| s.qty_decimals), Some(8));
}

#[test]
fn binance_rate_limits_are_typed() {
    let Some(body) = exchange_info_body() else {
        return;
    };
    let limits = binance_rate_limits(&body).expect("rate limits parse");
    let rl = |kind, interval, interval_num, limit| RateLimit {
        kind,
        interval,
        interval_num,
        limit,
    };
    assert_eq!(
        limits,
        vec![
            rl(
                RateLimitKind::RequestWeight,
                RateLimitInterval::Minute,
                1,
                1_200
            ),
            rl(RateLimitKind::Orders, RateLimitInterval::Second, 10, 50),
            rl(RateLimitKind::Orders, RateLimitInterval::Day, 1, 160_000),
            rl(
                RateLimitKind::RawRequests,
                RateLimitInterval::Minute,
                5,
                6_100
            ),
        ]
    );
    assert_eq!(limits[3].window_seconds(), 300);
}

const BYBIT: &str = "bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst";

fn bybit_linear(symbol: &str, e: Expected) -> InstrumentSpec {
    spec(Venue::BybitLinear, symbol, e)
}

fn bybit_spot(symbol: &str, e: Expected) -> InstrumentSpec {
    spec(Venue::BybitSpot, symbol, e)
}

fn check_bybit(reg: &Instruments) {
    let expected = [
        bybit_linear("BTCUSDT", (1, 3, 1, 1, 1, 19_999_998, 1, 1_500_000, 50_000)),
        bybit_linear("ETHUSDT", (2, 2, 1, 1, 1, 19_999_998, 1, 1_000_000, 50_000)),
        bybit_linear("SOLUSDT", (2, 1, 1, 1, 1, 19_999_998, 1, 960_000, 5_000)),
        bybit_linear(
            "DOGEUSDT",
            (5, 0, 1, 1, 1, 19_999_998, 1, 43_678_900, 500_000),
        ),
        bybit_spot("BTCUSDT", (1, 6, 1, 1, 0, 0, 1, 230_000_000, 50_000_000)),
        bybit_spot("ETHUSDT", (2, 5, 1, 1, 0, 0, 1, 811_800_000, 50_000_000)),
    ];
    for e in expected {
        let id = reg
            .lookup(e.venue, e.symbol.as_bytes())
            .unwrap_or_else(|| panic!("{} {} missing", e.venue, e.symbol));
        assert_eq!(reg.get(id), Some(&e));
    }
}

#[test]
fn bybit_instruments_load_from_the_capture() {
    let Some(path) = data::require(BYBIT) else {
        return;
    };
    let mut src = CryptofeedJsonlReader::open(&path).expect("open capture");
    let mut reg = Instruments::new();
    let load = load_instruments_from_source(&mut src, &mut reg).expect("instruments load");
    assert_eq!(load.responses, 2);
    assert_eq!(load.bad_records, 0);
    assert_eq!(load.specs, 800 + 557);
    assert_eq!(reg.len(), 800 + 557);
    check_bybit(&reg);
}

#[test]
fn bybit_responses_parse_directly() {
    let Some(path) = data::require(BYBIT) else {
        return;
    };
    let mut src = CryptofeedJsonlReader::open(&path).expect("open capture");
    let mut reg = Instruments::new();
    let mut categories = Vec::new();
    while let Some(rec) = src.next_record().expect("capture reads") {
        if rec.kind != RecordKind::Http {
            continue;
        }
        let url = std::str::from_utf8(rec.meta).expect("URL is text");
        let venue = if url.contains("category=linear") {
            Venue::BybitLinear
        } else {
            Venue::BybitSpot
        };
        let specs = bybit_instruments_info(rec.payload, venue).expect("response parses");
        categories.push((venue, specs.len()));
        for s in specs {
            reg.add(s).expect("no duplicates");
        }
    }
    assert_eq!(
        categories,
        vec![(Venue::BybitLinear, 800), (Venue::BybitSpot, 557)]
    );
    check_bybit(&reg);
}
