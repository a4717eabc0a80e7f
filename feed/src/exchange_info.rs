//! Loading instrument specs from exchange responses: Binance `exchangeInfo` and Bybit
//! `instruments-info`.
//!
//! Every filter is converted to the spec's integer units exactly (see [`InstrumentSpec`]): prices
//! at the tick size's decimals, quantities at the step size's, the minimum notional at their sum.
//! A bound finer than those units (real responses have a `0.005` minimum notional on a symbol
//! whose units are whole numbers, and a `1542.6000000000001` maximum quantity) is rounded inward,
//! a minimum up and a maximum down: every price, quantity and notional an order can have is a
//! whole number of units, so the rounded bound admits exactly the orders the exchange's does.
//! Anything that is not a plain decimal is an error naming the symbol and field. These run at
//! start-up only; they allocate freely.

use serde::Deserialize;

use crate::error::{FeedError, SourceError};
use crate::source::FrameSource;
use pinion_core::decimal::{self, DecimalError, Px, Qty};
use pinion_core::record::RecordKind;
use pinion_core::venue::Venue;
use pinion_core::{InstrumentError, InstrumentSpec, Instruments};

/// What a Binance rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateLimitKind {
    /// Request weight summed over all REST requests.
    RequestWeight,
    /// Orders placed.
    Orders,
    /// Raw request count, whatever their weight.
    RawRequests,
}

/// The unit of a rate limit's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateLimitInterval {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day.
    Day,
}

impl RateLimitInterval {
    /// The interval's length in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            RateLimitInterval::Second => 1,
            RateLimitInterval::Minute => 60,
            RateLimitInterval::Hour => 3_600,
            RateLimitInterval::Day => 86_400,
        }
    }
}

/// One of Binance's rate limits: at most `limit` of `kind` per `interval_num` × `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// What is counted.
    #[serde(rename = "rateLimitType")]
    pub kind: RateLimitKind,
    /// The window's unit.
    pub interval: RateLimitInterval,
    /// How many units the window spans.
    pub interval_num: u32,
    /// The most allowed in one window.
    pub limit: u32,
}

impl RateLimit {
    /// The window's length in seconds.
    pub const fn window_seconds(&self) -> u64 {
        self.interval.seconds() * self.interval_num as u64
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BinanceExchangeInfo {
    #[serde(default)]
    rate_limits: Vec<RateLimit>,
    #[serde(default)]
    symbols: Vec<BinanceSymbol>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BinanceSymbol {
    symbol: String,
    /// Spot: the decimals the venue keeps base-asset quantities in. Book quantities are sums of
    /// orders and can be finer than the lot step (a real BTCUSDT book shows `25.42618900` with a
    /// step of `0.00001`), so quantities are scaled by this, not by the step.
    base_asset_precision: Option<u8>,
    /// COIN-M: the quote-currency value of one contract.
    contract_size: Option<u32>,
    filters: Vec<BinanceFilter>,
}

/// The filter fields pinion uses; each filter type fills a few of them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BinanceFilter {
    filter_type: String,
    tick_size: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    step_size: Option<String>,
    min_qty: Option<String>,
    max_qty: Option<String>,
    /// Spot `MIN_NOTIONAL` and `NOTIONAL`.
    min_notional: Option<String>,
    /// Futures `MIN_NOTIONAL`.
    notional: Option<String>,
}

fn format_error(what: impl Into<String>) -> InstrumentError {
    InstrumentError::Format(what.into())
}

/// The instrument specs of a Binance `exchangeInfo` response (`/api/v3/exchangeInfo`,
/// `/fapi/v1/exchangeInfo`, `/dapi/v1/exchangeInfo`), for `venue`.
///
/// Uses `PRICE_FILTER` (tickSize, minPrice, maxPrice), `LOT_SIZE` (stepSize, minQty, maxQty) and
/// `MIN_NOTIONAL`/`NOTIONAL` (`minNotional` on Spot, `notional` on futures; the larger when both
/// are given). A symbol without `PRICE_FILTER` or `LOT_SIZE` is an error.
pub fn binance_exchange_info(
    json: &[u8],
    venue: Venue,
) -> Result<Vec<InstrumentSpec>, InstrumentError> {
    let info: BinanceExchangeInfo =
        serde_json::from_slice(json).map_err(|e| format_error(format!("exchangeInfo: {e}")))?;
    info.symbols
        .iter()
        .map(|s| binance_symbol_spec(s, venue))
        .collect()
}

/// The rate limits of a Binance `exchangeInfo` response, in the order given.
pub fn binance_rate_limits(json: &[u8]) -> Result<Vec<RateLimit>, InstrumentError> {
    let info: BinanceExchangeInfo =
        serde_json::from_slice(json).map_err(|e| format_error(format!("exchangeInfo: {e}")))?;
    Ok(info.rate_limits)
}

/// A symbol's self-trade prevention modes as a Binance Spot `exchangeInfo` gives them.
///
/// Names are kept as the exchange spells them: a mode added after this was written (as
/// `TRANSFER` and `DECREMENT` were) is still a name to compare and to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolStpModes {
    /// The exchange's symbol.
    pub symbol: String,
    /// `defaultSelfTradePreventionMode`: the mode of an order that names none; `None` when the
    /// response has no such field.
    pub default: Option<String>,
    /// `allowedSelfTradePreventionModes`: the modes an order may name; `None` when the
    /// response has no such field (the format from before self-trade prevention, 2023).
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct BinanceStpInfo {
    #[serde(default)]
    symbols: Vec<BinanceStpSymbol>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BinanceStpSymbol {
    symbol: String,
    default_self_trade_prevention_mode: Option<String>,
    allowed_self_trade_prevention_modes: Option<Vec<String>>,
}

/// The self-trade prevention modes of every symbol of a Binance Spot `exchangeInfo` response,
/// in the order given. A response without the fields (older than self-trade prevention) gives
/// `None` for them; a field of the wrong type is an error.
pub fn binance_stp_modes(json: &[u8]) -> Result<Vec<SymbolStpModes>, InstrumentError> {
    let info: BinanceStpInfo =
        serde_json::from_slice(json).map_err(|e| format_error(format!("exchangeInfo: {e}")))?;
    Ok(info
        .symbols
        .into_iter()
        .map(|s| SymbolStpModes {
            symbol: s.symbol,
            default: s.default_self_trade_prevention_mode,
            allowed: s.allowed_self_trade_prevention_modes,
        })
        .collect())
}

fn binance_symbol_spec(s: &BinanceSymbol, venue: Venue) -> Result<InstrumentSpec, InstrumentError> {
    let filter = |ty: &str| s.filters.iter().find(|f| f.filter_type == ty);
    let missing = |what: &str| format_error(format!("{}: no {what}", s.symbol));
    let price = filter("PRICE_FILTER").ok_or_else(|| missing("PRICE_FILTER"))?;
    let lot = filter("LOT_SIZE").ok_or_else(|| missing("LOT_SIZE"))?;
    let tick = price
        .tick_size
        .as_deref()
        .ok_or_else(|| missing("tickSize"))?;
    let step = lot
        .step_size
        .as_deref()
        .ok_or_else(|| missing("stepSize"))?;
    let mut spec = InstrumentSpec::new(venue, &s.symbol, tick, step)?;
    if let Some(precision) = s.base_asset_precision
        && precision > spec.qty_decimals
    {
        spec = spec.with_qty_decimals(precision)?;
    }
    // Spot may give both MIN_NOTIONAL and NOTIONAL: the larger is the one that binds.
    let mut min_notional: Option<&str> = None;
    let mut largest = 0i128;
    for f in s
        .filters
        .iter()
        .filter(|f| f.filter_type == "MIN_NOTIONAL" || f.filter_type == "NOTIONAL")
    {
        let Some(text) = f.min_notional.as_deref().or(f.notional.as_deref()) else {
            continue;
        };
        let scale = spec.price_decimals + spec.qty_decimals;
        let v = Fields { symbol: &s.symbol }.value("minNotional", Some(text), scale, Bound::Min)?;
        if min_notional.is_none() || v > largest {
            (min_notional, largest) = (Some(text), v);
        }
    }
    let filters = FilterText {
        names: ["minPrice", "maxPrice", "minQty", "maxQty", "minNotional"],
        min_price: price.min_price.as_deref(),
        max_price: price.max_price.as_deref(),
        min_qty: lot.min_qty.as_deref(),
        max_qty: lot.max_qty.as_deref(),
        min_notional,
    };
    Fields { symbol: &s.symbol }.apply(&mut spec, &filters)?;
    if spec.inverse_contract_size.is_some()
        && let Some(size) = s.contract_size
    {
        if size == 0 {
            return Err(format_error(format!("{}: contractSize 0", s.symbol)));
        }
        spec.inverse_contract_size = Some(size);
    }
    Ok(spec)
}

/// Which way a bound finer than the units moves onto the unit grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// A lower bound: round up.
    Min,
    /// An upper bound: round down.
    Max,
}

/// `text` in units of `10^-scale`, in `i128`. A value finer than the unit is rounded inward
/// (a minimum up, a maximum down): every price, quantity and notional of the instrument is a whole
/// number of units, so the rounded bound admits exactly the same orders as the exchange's.
fn scaled_bound(text: &str, scale: u32, bound: Bound) -> Result<i128, DecimalError> {
    let given = decimal::significant_decimals(text.as_bytes())?;
    let units = i128::from(decimal::parse_scaled(text.as_bytes(), given)?);
    let given = u32::from(given);
    if given <= scale {
        return 10i128
            .checked_pow(scale - given)
            .and_then(|p| units.checked_mul(p))
            .ok_or(DecimalError::Overflow);
    }
    let div = 10i128
        .checked_pow(given - scale)
        .ok_or(DecimalError::Overflow)?;
    Ok(match bound {
        Bound::Min => units.div_euclid(div) + i128::from(units.rem_euclid(div) != 0),
        Bound::Max => units.div_euclid(div),
    })
}

/// Converts one instrument's filter strings, naming the symbol and field on error.
struct Fields<'a> {
    symbol: &'a str,
}

impl Fields<'_> {
    /// A filter value in units of `10^-scale`; absent means no limit (0).
    fn value(
        &self,
        field: &'static str,
        text: Option<&str>,
        scale: u8,
        bound: Bound,
    ) -> Result<i128, InstrumentError> {
        let Some(t) = text else { return Ok(0) };
        scaled_bound(t, u32::from(scale), bound).map_err(|source| InstrumentError::BadDecimal {
            symbol: self.symbol.to_owned(),
            field,
            value: t.to_owned(),
            source,
        })
    }

    /// [`Self::value`] narrowed to an `i64` price or quantity.
    fn units(
        &self,
        field: &'static str,
        text: Option<&str>,
        scale: u8,
        bound: Bound,
    ) -> Result<i64, InstrumentError> {
        let v = self.value(field, text, scale, bound)?;
        i64::try_from(v).map_err(|_| InstrumentError::BadDecimal {
            symbol: self.symbol.to_owned(),
            field,
            value: text.unwrap_or_default().to_owned(),
            source: DecimalError::Overflow,
        })
    }

    /// Sets the spec's price, quantity and notional bounds from the filter strings.
    fn apply(
        &self,
        spec: &mut InstrumentSpec,
        filters: &FilterText<'_>,
    ) -> Result<(), InstrumentError> {
        let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
        spec.min_price = Px(self.units(filters.names[0], filters.min_price, pd, Bound::Min)?);
        spec.max_price = Px(self.units(filters.names[1], filters.max_price, pd, Bound::Max)?);
        spec.min_qty = Qty(self.units(filters.names[2], filters.min_qty, qd, Bound::Min)?);
        spec.max_qty = Qty(self.units(filters.names[3], filters.max_qty, qd, Bound::Max)?);
        spec.min_notional =
            self.value(filters.names[4], filters.min_notional, pd + qd, Bound::Min)?;
        Ok(())
    }
}

/// One instrument's bound strings and the exchange's names for them (for error messages).
struct FilterText<'a> {
    names: [&'static str; 5],
    min_price: Option<&'a str>,
    max_price: Option<&'a str>,
    min_qty: Option<&'a str>,
    max_qty: Option<&'a str>,
    min_notional: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitResponse {
    ret_code: i64,
    #[serde(default)]
    ret_msg: String,
    result: Option<BybitResult>,
}

#[derive(Debug, Deserialize)]
struct BybitResult {
    category: String,
    list: Vec<BybitInstrument>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitInstrument {
    symbol: String,
    price_filter: BybitPriceFilter,
    lot_size_filter: BybitLotSizeFilter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitPriceFilter {
    tick_size: String,
    min_price: Option<String>,
    max_price: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BybitLotSizeFilter {
    /// Linear and inverse contracts.
    qty_step: Option<String>,
    /// Spot: the base asset's precision is the quantity step.
    base_precision: Option<String>,
    min_order_qty: Option<String>,
    max_order_qty: Option<String>,
    /// Linear contracts.
    min_notional_value: Option<String>,
    /// Spot, in the quote asset.
    min_order_amt: Option<String>,
}

/// The instrument specs of a Bybit v5 `instruments-info` response for `venue`, whose category
/// (`spot`, `linear`, `inverse`) must match the response's.
///
/// Uses `priceFilter` (tickSize, minPrice, maxPrice), `lotSizeFilter` (`qtyStep` on contracts,
/// `basePrecision` on spot; minOrderQty, maxOrderQty) and the minimum notional
/// (`minNotionalValue` on linear, `minOrderAmt` on spot). A non-zero `retCode` is an error.
pub fn bybit_instruments_info(
    json: &[u8],
    venue: Venue,
) -> Result<Vec<InstrumentSpec>, InstrumentError> {
    let resp: BybitResponse =
        serde_json::from_slice(json).map_err(|e| format_error(format!("instruments-info: {e}")))?;
    if resp.ret_code != 0 {
        return Err(format_error(format!(
            "instruments-info: retCode {} ({})",
            resp.ret_code, resp.ret_msg
        )));
    }
    let result = resp
        .result
        .ok_or_else(|| format_error("instruments-info: no result"))?;
    let expected = match venue {
        Venue::BybitSpot => "spot",
        Venue::BybitLinear => "linear",
        Venue::BybitInverse => "inverse",
        _ => {
            return Err(format_error(format!(
                "instruments-info is Bybit's, not {venue}'s"
            )));
        }
    };
    if result.category != expected {
        return Err(format_error(format!(
            "instruments-info: category {:?} does not match {venue}",
            result.category
        )));
    }
    result
        .list
        .iter()
        .map(|i| bybit_instrument_spec(i, venue))
        .collect()
}

fn bybit_instrument_spec(
    i: &BybitInstrument,
    venue: Venue,
) -> Result<InstrumentSpec, InstrumentError> {
    let lot = &i.lot_size_filter;
    let step = lot
        .qty_step
        .as_deref()
        .or(lot.base_precision.as_deref())
        .ok_or_else(|| format_error(format!("{}: no qtyStep or basePrecision", i.symbol)))?;
    let mut spec = InstrumentSpec::new(venue, &i.symbol, &i.price_filter.tick_size, step)?;
    let filters = FilterText {
        names: [
            "minPrice",
            "maxPrice",
            "minOrderQty",
            "maxOrderQty",
            "minNotional",
        ],
        min_price: i.price_filter.min_price.as_deref(),
        max_price: i.price_filter.max_price.as_deref(),
        min_qty: lot.min_order_qty.as_deref(),
        max_qty: lot.max_order_qty.as_deref(),
        min_notional: lot
            .min_notional_value
            .as_deref()
            .or(lot.min_order_amt.as_deref()),
    };
    Fields { symbol: &i.symbol }.apply(&mut spec, &filters)?;
    Ok(spec)
}

/// What [`load_instruments_from_source`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstrumentLoad {
    /// Instrument specs registered (added or replaced).
    pub specs: usize,
    /// Instrument responses read.
    pub responses: usize,
    /// Records the source could not read (format errors, skipped).
    pub bad_records: u64,
}

/// Scans a recording for instrument responses (Binance `exchangeInfo`, Bybit `instruments-info`,
/// as [`RecordKind::Http`] records) and registers their specs in `registry`, replacing specs
/// already there. The venue comes from each request URL. For start-up: it reads the whole
/// source, so replay needs a fresh one. Records the source cannot read are counted and skipped;
/// an I/O error or a bad instrument response stops the load.
pub fn load_instruments_from_source(
    src: &mut dyn FrameSource,
    registry: &mut Instruments,
) -> Result<InstrumentLoad, FeedError> {
    let mut load = InstrumentLoad::default();
    loop {
        let rec = match src.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => return Ok(load),
            Err(SourceError::Format { .. }) => {
                load.bad_records += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if rec.kind != RecordKind::Http {
            continue;
        }
        let url = String::from_utf8_lossy(rec.meta);
        let specs = if url.contains("exchangeInfo") {
            let venue = Venue::from_url(&url)
                .filter(|v| v.is_binance())
                .ok_or_else(|| format_error(format!("no Binance venue in {url}")))?;
            binance_exchange_info(rec.payload, venue)?
        } else if url.contains("instruments-info") {
            let venue = Venue::from_url(&url)
                .filter(|v| v.is_bybit())
                .ok_or_else(|| format_error(format!("no Bybit category in {url}")))?;
            bybit_instruments_info(rec.payload, venue)?
        } else {
            continue;
        };
        load.responses += 1;
        for spec in specs {
            registry.upsert(spec)?;
            load.specs += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINANCE_FUTURES: &str = r#"{"rateLimits":[{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200}],
        "symbols":[{"symbol":"BTCUSDT","filters":[
          {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
          {"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"1000","minQty":"0.001"},
          {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#;

    #[test]
    fn futures_filters_convert_exactly() {
        let specs = binance_exchange_info(BINANCE_FUTURES.as_bytes(), Venue::BinanceUsdm).unwrap();
        let s = &specs[0];
        assert_eq!((s.price_decimals, s.qty_decimals), (1, 3));
        assert_eq!((s.min_price, s.max_price), (Px(5_568), Px(45_297_640)));
        assert_eq!((s.min_qty, s.max_qty), (Qty(1), Qty(1_000_000)));
        assert_eq!(s.min_notional, 100 * 10_000);
        let limits = binance_rate_limits(BINANCE_FUTURES.as_bytes()).unwrap();
        assert_eq!(limits[0].kind, RateLimitKind::Orders);
        assert_eq!(limits[0].window_seconds(), 60);
    }

    #[test]
    fn bounds_finer_than_the_units_round_inward() {
        assert_eq!(scaled_bound("556.85", 1, Bound::Min), Ok(5_569));
        assert_eq!(scaled_bound("556.85", 1, Bound::Max), Ok(5_568));
        assert_eq!(scaled_bound("556.8", 1, Bound::Min), Ok(5_568));
        assert_eq!(
            scaled_bound("1542.6000000000001", 5, Bound::Max),
            Ok(154_260_000)
        );
        assert_eq!(scaled_bound("0.005", 0, Bound::Min), Ok(1));
        assert_eq!(
            scaled_bound("10", 16, Bound::Min),
            Ok(100_000_000_000_000_000)
        );
        assert!(scaled_bound("1e5", 2, Bound::Min).is_err());
    }

    #[test]
    fn coinm_contract_sizes_come_from_exchange_info_or_the_venues_rule() {
        let json = br#"{"symbols":[
            {"symbol":"ETHUSD_PERP","contractSize":10,"filters":[
                {"filterType":"PRICE_FILTER","tickSize":"0.01","minPrice":"0","maxPrice":"0"},
                {"filterType":"LOT_SIZE","stepSize":"1","minQty":"1","maxQty":"0"}]},
            {"symbol":"BTCUSD_PERP","filters":[
                {"filterType":"PRICE_FILTER","tickSize":"0.1","minPrice":"0","maxPrice":"0"},
                {"filterType":"LOT_SIZE","stepSize":"1","minQty":"1","maxQty":"0"}]},
            {"symbol":"DOGEUSD_PERP","contractSize":7,"filters":[
                {"filterType":"PRICE_FILTER","tickSize":"0.000001","minPrice":"0","maxPrice":"0"},
                {"filterType":"LOT_SIZE","stepSize":"1","minQty":"1","maxQty":"0"}]}]}"#;
        let specs = binance_exchange_info(json, Venue::BinanceCoinm).expect("parses");
        let sizes: Vec<_> = specs.iter().map(|s| s.inverse_contract_size).collect();
        assert_eq!(sizes, [Some(10), Some(100), Some(7)]);
        // Linear venues ignore the field.
        let usdm = binance_exchange_info(json, Venue::BinanceUsdm).expect("parses");
        assert!(usdm.iter().all(|s| s.inverse_contract_size.is_none()));
        // 3 BTCUSD contracts (300 USD) at 60 000.0: 0.005 BTC, in 10^-12 units.
        let btc = &specs[1];
        let k = btc.inverse_value_factor().expect("inverse");
        assert_eq!(3 * k / 600_000, 5_000_000_000);
        assert_eq!(
            btc.notional(pinion_core::Px(600_000), pinion_core::Qty(3)),
            3_000
        );
    }

    #[test]
    fn malformed_filters_are_errors() {
        let bad = BINANCE_FUTURES.replace("\"556.80\"", "\"556,80\"");
        assert!(matches!(
            binance_exchange_info(bad.as_bytes(), Venue::BinanceUsdm),
            Err(InstrumentError::BadDecimal {
                field: "minPrice",
                ..
            })
        ));
        let no_lot = BINANCE_FUTURES.replace("LOT_SIZE", "LOT");
        assert!(matches!(
            binance_exchange_info(no_lot.as_bytes(), Venue::BinanceUsdm),
            Err(InstrumentError::Format(_))
        ));
        let notional = BINANCE_FUTURES.replace("\"100\"", "\"-\"");
        assert!(binance_exchange_info(notional.as_bytes(), Venue::BinanceUsdm).is_err());
    }

    #[test]
    fn stp_modes_are_read_per_symbol_and_absent_fields_are_none() {
        let json = r#"{"symbols":[
            {"symbol":"BTCUSDT","defaultSelfTradePreventionMode":"EXPIRE_MAKER",
             "allowedSelfTradePreventionModes":["NONE","EXPIRE_TAKER","TRANSFER"]},
            {"symbol":"OLDUSDT","filters":[]}]}"#;
        let modes = binance_stp_modes(json.as_bytes()).expect("parses");
        assert_eq!(
            modes,
            [
                SymbolStpModes {
                    symbol: "BTCUSDT".into(),
                    default: Some("EXPIRE_MAKER".into()),
                    allowed: Some(vec![
                        "NONE".into(),
                        "EXPIRE_TAKER".into(),
                        "TRANSFER".into()
                    ]),
                },
                SymbolStpModes {
                    symbol: "OLDUSDT".into(),
                    default: None,
                    allowed: None,
                },
            ]
        );
        let bad = r#"{"symbols":[{"symbol":"X","allowedSelfTradePreventionModes":"NONE"}]}"#;
        assert!(matches!(
            binance_stp_modes(bad.as_bytes()),
            Err(InstrumentError::Format(_))
        ));
    }

    #[test]
    fn bybit_errors_and_category_mismatch_are_rejected() {
        let err = r#"{"retCode":10001,"retMsg":"bad","result":{}}"#;
        assert!(bybit_instruments_info(err.as_bytes(), Venue::BybitLinear).is_err());
        let spot = r#"{"retCode":0,"result":{"category":"spot","list":[]}}"#;
        assert_eq!(
            bybit_instruments_info(spot.as_bytes(), Venue::BybitSpot),
            Ok(vec![])
        );
        assert!(bybit_instruments_info(spot.as_bytes(), Venue::BybitLinear).is_err());
    }
}
