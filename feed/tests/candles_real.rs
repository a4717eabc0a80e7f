//! Candles built from recorded trades against the venue's klines of the same minutes, on the
//! shipped Binance Spot recording that carries both (`@kline_1m` and `@aggTrade` of four
//! symbols).
//!
//! A kline names the trades it holds (`f`..=`L`), an aggregate trade the ones it aggregates
//! (`f`..=`l`), so the comparison takes exactly the trades both cover: when the recorded
//! aggregates hold every trade of the kline so far, the built candle equals the kline field for
//! field; when they hold only its latest trades (the recording began mid-minute), the built
//! candle must end where the kline does and lie inside it.

use pinion_core::{
    Candle, CandleBuilder, EventKind, InstrumentId, InstrumentSpec, Instruments, MarketEvent,
    TradePrint, Venue,
};
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};
use pinion_feed::source;
use pinion_testkit::data;

const SYMBOLS: [&str; 4] = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"];

#[test]
fn candles_built_from_agg_trades_equal_the_recorded_klines() {
    let Some(path) = data::require("binance/spot-multi-20211012.cryptofeed.ws") else {
        return;
    };
    let mut reg = Instruments::new();
    for sym in SYMBOLS {
        // The recording writes every price and quantity with eight decimals.
        let spec = InstrumentSpec::new(Venue::BinanceSpot, sym, "0.00000001", "0.00000001");
        reg.add(spec.expect("spec")).expect("register");
    }
    let mut dec = Decoder::new(reg);
    let mut src = source::open(&path).expect("open");
    let mut klines: Vec<Candle> = Vec::new();
    let mut aggs: Vec<MarketEvent> = Vec::new();
    let ctx = ConnCtx::new(Venue::BinanceSpot);
    while let Some(rec) = src.next_record().expect("read") {
        let res = dec.decode(&ctx, &rec, 0, |e| match e.kind {
            EventKind::Kline => klines.push(Candle::from_event(e).expect("candle")),
            EventKind::Trade => aggs.push(*e),
            _ => {}
        });
        assert!(
            matches!(res, Ok(Decoded::Events(_) | Decoded::Skipped(_))),
            "{res:?}"
        );
    }
    let s = dec.stats();
    assert_eq!((s.messages.kline, s.messages.agg_trade), (2, 2));
    assert_eq!((s.errors.total(), s.skipped.unknown_stream), (0, 0));

    let (mut whole, mut tails) = (0, 0);
    for k in &klines {
        // The aggregates inside this kline, in their order.
        let inside: Vec<&MarketEvent> = aggs
            .iter()
            .filter(|a| a.instrument == k.instrument)
            .filter(|a| a.first_id >= k.first_trade_id && a.last_id <= k.last_trade_id)
            .collect();
        if inside.is_empty() {
            continue;
        }
        let mut b = CandleBuilder::new(k.interval_ns, SYMBOLS.len());
        for a in &inside {
            let print = TradePrint::from_event(a).expect("print");
            assert_eq!(b.on_trade(&print, a.first_id), None, "one minute");
        }
        let built = *b.open_candle(k.instrument).expect("built");
        assert_eq!(
            (built.start_ns, built.interval_ns),
            (k.start_ns, k.interval_ns)
        );
        assert_eq!(
            built.last_trade_id, k.last_trade_id,
            "the kline ends where the trades do"
        );
        assert_eq!(built.close, k.close);
        let contiguous = inside.windows(2).all(|w| w[1].first_id == w[0].last_id + 1);
        if contiguous && built.first_trade_id == k.first_trade_id {
            // Every trade of the kline so far: equal in every field the kline carries.
            assert_eq!(
                (
                    built.first_trade_id,
                    built.trades,
                    built.open,
                    built.high,
                    built.low,
                    built.volume,
                    built.taker_buy_volume,
                    built.instrument,
                ),
                (
                    k.first_trade_id,
                    k.trades,
                    k.open,
                    k.high,
                    k.low,
                    k.volume,
                    k.taker_buy_volume,
                    k.instrument,
                ),
            );
            whole += 1;
        } else {
            assert!(built.high <= k.high && built.low >= k.low);
            assert!(built.volume <= k.volume && built.taker_buy_volume <= k.taker_buy_volume);
            assert!(built.trades < k.trades);
            tails += 1;
        }
    }
    // LRCBTC's kline holds one trade, whose aggregate is recorded: equal whole. NKNUSDT's
    // holds thirty, of which the recording saw the last.
    assert_eq!((whole, tails), (1, 1));
    let lrc = klines
        .iter()
        .find(|k| k.instrument == InstrumentId(2))
        .expect("LRCBTC kline");
    assert_eq!((lrc.trades, lrc.volume.0), (1, 177_00000000));
}
