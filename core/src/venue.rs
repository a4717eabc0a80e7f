//! The venues (exchange and market) pinion speaks to. The venue decides the message formats and
//! the order book sync rule, so it is fixed per connection.

use std::fmt;
use std::str::FromStr;

/// An exchange market with its own message formats and sync rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Venue {
    /// Binance Spot (`stream.binance.com`): depth events chained by `U == prev u + 1`.
    BinanceSpot = 0,
    /// Binance USD-M futures (`fstream.binance.com`): depth events chained by `pu`.
    BinanceUsdm = 1,
    /// Binance COIN-M futures (`dstream.binance.com`): same rules as USD-M.
    BinanceCoinm = 2,
    /// Bybit v5 spot (`/v5/public/spot`).
    BybitSpot = 3,
    /// Bybit v5 linear contracts (`/v5/public/linear`).
    BybitLinear = 4,
    /// Bybit v5 inverse contracts (`/v5/public/inverse`).
    BybitInverse = 5,
}

impl Venue {
    /// Every venue, in declaration order.
    pub const ALL: [Venue; 6] = [
        Venue::BinanceSpot,
        Venue::BinanceUsdm,
        Venue::BinanceCoinm,
        Venue::BybitSpot,
        Venue::BybitLinear,
        Venue::BybitInverse,
    ];

    /// Whether the venue is one of Binance's markets.
    pub const fn is_binance(self) -> bool {
        matches!(
            self,
            Venue::BinanceSpot | Venue::BinanceUsdm | Venue::BinanceCoinm
        )
    }

    /// Whether the venue is one of Bybit's markets.
    pub const fn is_bybit(self) -> bool {
        !self.is_binance()
    }

    /// Whether the venue is a Binance futures market (depth chained by `pu`).
    pub const fn is_binance_futures(self) -> bool {
        matches!(self, Venue::BinanceUsdm | Venue::BinanceCoinm)
    }

    /// The short name used in configs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance-spot",
            Venue::BinanceUsdm => "binance-usdm",
            Venue::BinanceCoinm => "binance-coinm",
            Venue::BybitSpot => "bybit-spot",
            Venue::BybitLinear => "bybit-linear",
            Venue::BybitInverse => "bybit-inverse",
        }
    }

    /// Infers the venue from a WebSocket or REST URL, as found in recordings.
    pub fn from_url(url: &str) -> Option<Venue> {
        let u = url.to_ascii_lowercase();
        if u.contains("bybit") {
            if u.contains("/spot") || u.contains("category=spot") {
                Some(Venue::BybitSpot)
            } else if u.contains("/linear") || u.contains("category=linear") {
                Some(Venue::BybitLinear)
            } else if u.contains("/inverse") || u.contains("category=inverse") {
                Some(Venue::BybitInverse)
            } else {
                None
            }
        } else if u.contains("fstream") || u.contains("fapi") {
            Some(Venue::BinanceUsdm)
        } else if u.contains("dstream") || u.contains("dapi") {
            Some(Venue::BinanceCoinm)
        } else if u.contains("binance") {
            Some(Venue::BinanceSpot)
        } else {
            None
        }
    }

    /// The venue as a small integer, for compact records.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The venue for [`Venue::as_u8`]'s value.
    pub const fn from_u8(v: u8) -> Option<Venue> {
        match v {
            0 => Some(Venue::BinanceSpot),
            1 => Some(Venue::BinanceUsdm),
            2 => Some(Venue::BinanceCoinm),
            3 => Some(Venue::BybitSpot),
            4 => Some(Venue::BybitLinear),
            5 => Some(Venue::BybitInverse),
            _ => None,
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A venue name that is not one of [`Venue::name`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown venue {0:?} (expected one of binance-spot, binance-usdm, binance-coinm, bybit-spot, bybit-linear, bybit-inverse)"
)]
pub struct UnknownVenue(pub String);

impl FromStr for Venue {
    type Err = UnknownVenue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Venue::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVenue(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_venues() {
        assert_eq!(
            Venue::from_url("wss://stream.binance.com:9443/stream?streams=btcusdt@depth"),
            Some(Venue::BinanceSpot)
        );
        assert_eq!(
            Venue::from_url("wss://fstream.binance.com/public/stream"),
            Some(Venue::BinanceUsdm)
        );
        assert_eq!(
            Venue::from_url("wss://stream.bybit.com/v5/public/linear"),
            Some(Venue::BybitLinear)
        );
        assert_eq!(
            Venue::from_url("https://api.bybit.com/v5/market/instruments-info?&category=spot"),
            Some(Venue::BybitSpot)
        );
        assert_eq!(Venue::from_url("wss://example.com"), None);
    }

    #[test]
    fn names_round_trip() {
        for v in Venue::ALL {
            assert_eq!(v.name().parse::<Venue>(), Ok(v));
            assert_eq!(Venue::from_u8(v.as_u8()), Some(v));
        }
        assert!("binance".parse::<Venue>().is_err());
    }
}
