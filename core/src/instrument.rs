//! Instrument specs and the registry that maps a venue's symbol to an [`InstrumentId`].
//!
//! A spec fixes the scale of every [`Px`] and [`Qty`] of its instrument: prices count units of
//! `10^-price_decimals`, quantities units of `10^-qty_decimals`, where the decimals are those of
//! the tick size and the step size. Filters (min/max price and quantity, min notional) are kept in
//! the same units so order checks are integer comparisons.
//!
//! The registry is built at start-up (from a config, a Binance `exchangeInfo` or Bybit
//! `instruments-info` response, read by the feed crate) and then only read: a lookup hashes the
//! symbol bytes and never allocates.

use std::collections::HashMap;

use arrayvec::ArrayString;

use crate::decimal::{self, DecimalError, Px, Qty};
use crate::venue::Venue;

/// A symbol as the exchange writes it in payloads (upper case, `BTCUSDT`).
pub type Symbol = ArrayString<24>;

/// A compact instrument handle, an index into [`Instruments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct InstrumentId(pub u16);

/// What is wrong with an instrument definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// A tick or step size that is not a positive plain decimal.
    #[error("{symbol}: bad {field} {value:?}: {source}")]
    BadDecimal {
        /// The instrument.
        symbol: String,
        /// Which field.
        field: &'static str,
        /// The text given.
        value: String,
        /// Why it failed.
        source: DecimalError,
    },
    /// A tick or step size of zero or below.
    #[error("{symbol}: {field} must be positive")]
    NotPositive {
        /// The instrument.
        symbol: String,
        /// Which field.
        field: &'static str,
    },
    /// The symbol is longer than [`Symbol`] holds.
    #[error("symbol {0:?} is too long")]
    SymbolTooLong(String),
    /// The same venue and symbol twice.
    #[error("{venue} {symbol} is defined twice")]
    Duplicate {
        /// The venue.
        venue: Venue,
        /// The symbol.
        symbol: String,
    },
    /// More instruments than an [`InstrumentId`] can index.
    #[error("too many instruments")]
    TooMany,
    /// A response that does not have the expected shape.
    #[error("instrument list: {0}")]
    Format(String),
}

/// Everything the engine needs to know about one instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentSpec {
    /// The venue it trades on.
    pub venue: Venue,
    /// The exchange's symbol, upper case.
    pub symbol: Symbol,
    /// Decimals of the price unit (those of the tick size).
    pub price_decimals: u8,
    /// Decimals of the quantity unit (those of the step size).
    pub qty_decimals: u8,
    /// The tick size in price units (1 for a power-of-ten tick).
    pub tick: Px,
    /// The step (lot) size in quantity units.
    pub step: Qty,
    /// Lowest order price allowed (0 = no limit).
    pub min_price: Px,
    /// Highest order price allowed (0 = no limit).
    pub max_price: Px,
    /// Smallest order quantity (0 = no limit).
    pub min_qty: Qty,
    /// Largest order quantity (0 = no limit).
    pub max_qty: Qty,
    /// Smallest order notional, in units of `10^-(price_decimals + qty_decimals)` of the quote
    /// asset (0 = no limit).
    pub min_notional: i128,
    /// An inverse contract (Binance COIN-M, Bybit inverse): each contract is worth this many
    /// units of the quote currency, quantities count contracts, and PnL and fees are in the base
    /// asset, in units of `10^-INVERSE_MONEY_DECIMALS`. `None`: linear (quantities in the base
    /// asset, money in the quote asset).
    pub inverse_contract_size: Option<u32>,
}

/// Decimals of the money unit of an inverse contract's PnL and fees (in its base asset).
pub const INVERSE_MONEY_DECIMALS: u8 = 12;

/// The contract size a venue's inverse symbol has unless its `exchangeInfo` says otherwise:
/// Binance COIN-M BTC contracts are 100 USD and every other 10 USD; Bybit's inverse contracts are
/// 1 USD. `None` for linear venues.
pub fn default_inverse_contract_size(venue: Venue, symbol: &str) -> Option<u32> {
    match venue {
        Venue::BinanceCoinm | Venue::BinanceCoinmTestnet
            if symbol.to_ascii_uppercase().starts_with("BTC") =>
        {
            Some(100)
        }
        Venue::BinanceCoinm | Venue::BinanceCoinmTestnet => Some(10),
        Venue::BybitInverse => Some(1),
        _ => None,
    }
}

impl InstrumentSpec {
    /// A spec from the exchange's tick and step size strings (`"0.01000000"`, `"0.00001000"`),
    /// with no other filters.
    pub fn new(
        venue: Venue,
        symbol: &str,
        tick_size: &str,
        step_size: &str,
    ) -> Result<Self, InstrumentError> {
        let sym = Symbol::from(&symbol.to_ascii_uppercase())
            .map_err(|_| InstrumentError::SymbolTooLong(symbol.to_owned()))?;
        let bad = |field: &'static str, value: &str, source| InstrumentError::BadDecimal {
            symbol: symbol.to_owned(),
            field,
            value: value.to_owned(),
            source,
        };
        let price_decimals = decimal::significant_decimals(tick_size.as_bytes())
            .map_err(|e| bad("tick size", tick_size, e))?;
        let qty_decimals = decimal::significant_decimals(step_size.as_bytes())
            .map_err(|e| bad("step size", step_size, e))?;
        let tick = Px::parse(tick_size.as_bytes(), price_decimals)
            .map_err(|e| bad("tick size", tick_size, e))?;
        let step = Qty::parse(step_size.as_bytes(), qty_decimals)
            .map_err(|e| bad("step size", step_size, e))?;
        if tick.0 <= 0 {
            return Err(InstrumentError::NotPositive {
                symbol: symbol.to_owned(),
                field: "tick size",
            });
        }
        if step.0 <= 0 {
            return Err(InstrumentError::NotPositive {
                symbol: symbol.to_owned(),
                field: "step size",
            });
        }
        Ok(Self {
            venue,
            symbol: sym,
            price_decimals,
            qty_decimals,
            tick,
            step,
            min_price: Px::ZERO,
            max_price: Px::ZERO,
            min_qty: Qty::ZERO,
            max_qty: Qty::ZERO,
            min_notional: 0,
            inverse_contract_size: default_inverse_contract_size(venue, symbol),
        })
    }

    /// Decimals of the money unit PnL, fees and notional values are counted in: those of a
    /// price unit times a quantity unit for a linear instrument (quote asset), or
    /// [`INVERSE_MONEY_DECIMALS`] for an inverse contract (base asset).
    pub fn money_decimals(&self) -> u8 {
        if self.inverse_contract_size.is_some() {
            INVERSE_MONEY_DECIMALS
        } else {
            self.price_decimals.saturating_add(self.qty_decimals)
        }
    }

    /// For an inverse contract, `K` such that `qty × K / px` is the base-asset value of `qty`
    /// contracts at `px`, in money units: `size × 10^(price_decimals + INVERSE_MONEY_DECIMALS -
    /// qty_decimals)`. `None` for a linear instrument (or a scale past `i128`).
    pub fn inverse_value_factor(&self) -> Option<i128> {
        let size = i128::from(self.inverse_contract_size?);
        let up = i32::from(self.price_decimals) + i32::from(INVERSE_MONEY_DECIMALS)
            - i32::from(self.qty_decimals);
        let scale = 10i128.checked_pow(u32::try_from(up).ok()?)?;
        size.checked_mul(scale)
    }

    /// The same instrument with quantities counted in finer units of `10^-decimals`.
    ///
    /// Needed where the venue's books carry quantities finer than the lot step (Binance Spot
    /// aggregates orders placed by quote amount; its `baseAssetPrecision` is the true scale).
    /// The step and the quantity filters keep their values, expressed in the new units.
    pub fn with_qty_decimals(mut self, decimals: u8) -> Result<Self, InstrumentError> {
        if decimals < self.qty_decimals || decimals > decimal::MAX_DECIMALS {
            return Err(InstrumentError::BadDecimal {
                symbol: self.symbol.to_string(),
                field: "quantity precision",
                value: decimals.to_string(),
                source: DecimalError::BadScale(decimals),
            });
        }
        let factor = decimal::pow10(decimals - self.qty_decimals);
        let overflow = || InstrumentError::BadDecimal {
            symbol: self.symbol.to_string(),
            field: "quantity precision",
            value: decimals.to_string(),
            source: DecimalError::Overflow,
        };
        let scale = |q: Qty| q.0.checked_mul(factor).map(Qty).ok_or_else(overflow);
        self.step = scale(self.step)?;
        self.min_qty = scale(self.min_qty)?;
        self.max_qty = scale(self.max_qty)?;
        self.min_notional = self
            .min_notional
            .checked_mul(i128::from(factor))
            .ok_or_else(overflow)?;
        self.qty_decimals = decimals;
        Ok(self)
    }

    /// Parses a price of this instrument.
    #[inline]
    pub fn px(&self, s: &[u8]) -> Result<Px, DecimalError> {
        Px::parse(s, self.price_decimals)
    }

    /// Parses a quantity of this instrument.
    #[inline]
    pub fn qty(&self, s: &[u8]) -> Result<Qty, DecimalError> {
        Qty::parse(s, self.qty_decimals)
    }

    /// The notional in the quote currency, in units of `10^-(price_decimals + qty_decimals)`:
    /// `px × qty`, or for an inverse contract its face value, `qty × size` (whatever the price).
    #[inline]
    pub fn notional(&self, px: Px, qty: Qty) -> i128 {
        match self.inverse_contract_size {
            None => i128::from(px.0) * i128::from(qty.0),
            Some(size) => {
                i128::from(qty.0) * i128::from(size) * decimal::pow10(self.price_decimals) as i128
            }
        }
    }

    /// The tick index of a price (`px / tick`); exact when the price is on the tick grid.
    #[inline]
    pub fn tick_index(&self, px: Px) -> i64 {
        if self.tick.0 == 1 {
            px.0
        } else {
            px.0.div_euclid(self.tick.0)
        }
    }
}

/// All instruments the engine knows, indexed by [`InstrumentId`].
#[derive(Debug, Clone, Default)]
pub struct Instruments {
    specs: Vec<InstrumentSpec>,
    by_symbol: HashMap<(Venue, Symbol), InstrumentId>,
}

impl Instruments {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instrument and returns its id.
    pub fn add(&mut self, spec: InstrumentSpec) -> Result<InstrumentId, InstrumentError> {
        let key = (spec.venue, spec.symbol);
        if self.by_symbol.contains_key(&key) {
            return Err(InstrumentError::Duplicate {
                venue: spec.venue,
                symbol: spec.symbol.to_string(),
            });
        }
        let id =
            InstrumentId(u16::try_from(self.specs.len()).map_err(|_| InstrumentError::TooMany)?);
        self.specs.push(spec);
        self.by_symbol.insert(key, id);
        Ok(id)
    }

    /// Adds an instrument, or replaces the spec of one already registered under the same venue
    /// and symbol (keeping its id).
    pub fn upsert(&mut self, spec: InstrumentSpec) -> Result<InstrumentId, InstrumentError> {
        match self.by_symbol.get(&(spec.venue, spec.symbol)) {
            Some(&id) => {
                self.specs[id.0 as usize] = spec;
                Ok(id)
            }
            None => self.add(spec),
        }
    }

    /// The spec of an instrument.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.specs.get(id.0 as usize)
    }

    /// Looks up a symbol as the exchange writes it in payloads (`BTCUSDT`), or as Binance
    /// writes it in stream names (`btcusdt`): ASCII case is ignored. Never allocates.
    #[inline]
    pub fn lookup(&self, venue: Venue, symbol: &[u8]) -> Option<InstrumentId> {
        let mut key = Symbol::new();
        for &c in symbol {
            if !c.is_ascii() {
                return None;
            }
            key.try_push(char::from(c.to_ascii_uppercase())).ok()?;
        }
        self.by_symbol.get(&(venue, key)).copied()
    }

    /// The number of instruments.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// All instruments with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (InstrumentId, &InstrumentSpec)> {
        self.specs
            .iter()
            .enumerate()
            .map(|(i, s)| (InstrumentId(i as u16), s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_scales_follow_tick_and_step() {
        let s =
            InstrumentSpec::new(Venue::BinanceSpot, "btcusdt", "0.01000000", "0.00001000").unwrap();
        assert_eq!(s.symbol.as_str(), "BTCUSDT");
        assert_eq!((s.price_decimals, s.tick), (2, Px(1)));
        assert_eq!((s.qty_decimals, s.step), (5, Qty(1)));
        assert_eq!(s.px(b"61837.63000000"), Ok(Px(6_183_763)));

        let f = InstrumentSpec::new(Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001").unwrap();
        assert_eq!((f.price_decimals, f.tick), (1, Px(1)));
        assert_eq!(f.px(b"61800.30"), Ok(Px(618_003)));

        let half = InstrumentSpec::new(Venue::BybitLinear, "X", "0.5", "10").unwrap();
        assert_eq!((half.price_decimals, half.tick), (1, Px(5)));
        assert_eq!(half.tick_index(Px(15)), 3);
        assert_eq!((half.qty_decimals, half.step), (0, Qty(10)));
    }

    #[test]
    fn finer_quantity_scale_keeps_step_and_filters() {
        let mut s = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap();
        s.min_qty = Qty(1);
        s.min_notional = 5 * 10i128.pow(2 + 5);
        let s = s.with_qty_decimals(8).unwrap();
        assert_eq!(
            (s.qty_decimals, s.step, s.min_qty),
            (8, Qty(1000), Qty(1000))
        );
        assert_eq!(s.min_notional, 5 * 10i128.pow(2 + 8));
        assert_eq!(s.qty(b"25.42618900"), Ok(Qty(2_542_618_900)));
        assert!(s.clone().with_qty_decimals(4).is_err());
    }

    #[test]
    fn bad_specs_are_rejected() {
        assert!(InstrumentSpec::new(Venue::BinanceSpot, "A", "0", "1").is_err());
        assert!(InstrumentSpec::new(Venue::BinanceSpot, "A", "1e-2", "1").is_err());
        assert!(InstrumentSpec::new(Venue::BinanceSpot, "A", "0.01", "-1").is_err());
    }

    #[test]
    fn lookup_ignores_case_and_venue_separates() {
        let mut reg = Instruments::new();
        let a = reg
            .add(InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").unwrap())
            .unwrap();
        let b = reg
            .add(InstrumentSpec::new(Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001").unwrap())
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(reg.lookup(Venue::BinanceSpot, b"btcusdt"), Some(a));
        assert_eq!(reg.lookup(Venue::BinanceUsdm, b"BTCUSDT"), Some(b));
        assert_eq!(reg.lookup(Venue::BybitSpot, b"BTCUSDT"), None);
        assert_eq!(reg.lookup(Venue::BinanceSpot, b"ETHUSDT"), None);
        assert!(
            reg.add(InstrumentSpec::new(Venue::BinanceSpot, "btcusdt", "0.01", "0.00001").unwrap())
                .is_err()
        );
    }
}
