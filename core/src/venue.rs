//! The venues (exchange, host and market) pinion speaks to. The venue decides the message formats
//! and the order book sync rule, so it is fixed per connection.
//!
//! Binance runs the same protocol on several hosts whose instruments differ (Binance.US and
//! Binance TR list other symbols, with other tick sizes, than the global exchange; the test
//! networks have their own lists): each host is its own venue, so an instrument list of one is
//! never applied to another. [`Venue::market`] gives the market whose rules a venue follows.

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
    /// Binance.US spot (`stream.binance.us`, `api.binance.us`): Spot's rules, its own symbols.
    BinanceUs = 6,
    /// Binance TR spot (`trbinance.com`): Spot's rules, its own symbols.
    BinanceTr = 7,
    /// The Binance Spot test network (`testnet.binance.vision`).
    BinanceSpotTestnet = 8,
    /// The Binance USD-M futures test network (`binancefuture.com`, `/fapi`).
    BinanceUsdmTestnet = 9,
    /// The Binance COIN-M futures test network (`binancefuture.com`, `/dapi`, `dstream`).
    BinanceCoinmTestnet = 10,
}

impl Venue {
    /// Every venue, in declaration order.
    pub const ALL: [Venue; 11] = [
        Venue::BinanceSpot,
        Venue::BinanceUsdm,
        Venue::BinanceCoinm,
        Venue::BybitSpot,
        Venue::BybitLinear,
        Venue::BybitInverse,
        Venue::BinanceUs,
        Venue::BinanceTr,
        Venue::BinanceSpotTestnet,
        Venue::BinanceUsdmTestnet,
        Venue::BinanceCoinmTestnet,
    ];

    /// The market whose message formats and sync rule the venue follows: a Binance host's
    /// variant maps to Binance Spot, USD-M or COIN-M; the others to themselves.
    pub const fn market(self) -> Venue {
        match self {
            Venue::BinanceUs | Venue::BinanceTr | Venue::BinanceSpotTestnet => Venue::BinanceSpot,
            Venue::BinanceUsdmTestnet => Venue::BinanceUsdm,
            Venue::BinanceCoinmTestnet => Venue::BinanceCoinm,
            v => v,
        }
    }

    /// Whether the venue is one of Binance's markets, on any host.
    pub const fn is_binance(self) -> bool {
        matches!(
            self.market(),
            Venue::BinanceSpot | Venue::BinanceUsdm | Venue::BinanceCoinm
        )
    }

    /// Whether the venue is one of Bybit's markets.
    pub const fn is_bybit(self) -> bool {
        !self.is_binance()
    }

    /// Whether the venue is a Binance futures market (depth chained by `pu`), on any host.
    pub const fn is_binance_futures(self) -> bool {
        matches!(self.market(), Venue::BinanceUsdm | Venue::BinanceCoinm)
    }

    /// The same market on another Binance host: `host` is one of the spot-market variants
    /// ([`Venue::BinanceSpot`], [`Venue::BinanceUs`], [`Venue::BinanceTr`],
    /// [`Venue::BinanceSpotTestnet`]) or a testnet futures venue, and `self` the market seen in
    /// the messages. Binance.US and TR have spot markets only; their futures stay global.
    pub const fn on_host_of(self, host: Venue) -> Venue {
        let testnet = matches!(
            host,
            Venue::BinanceSpotTestnet | Venue::BinanceUsdmTestnet | Venue::BinanceCoinmTestnet
        );
        match (self.market(), host) {
            (Venue::BinanceSpot, Venue::BinanceUs | Venue::BinanceTr) => host,
            (Venue::BinanceSpot, _) if testnet => Venue::BinanceSpotTestnet,
            (Venue::BinanceUsdm, _) if testnet => Venue::BinanceUsdmTestnet,
            (Venue::BinanceCoinm, _) if testnet => Venue::BinanceCoinmTestnet,
            (m, _) => m,
        }
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
            Venue::BinanceUs => "binance-us",
            Venue::BinanceTr => "binance-tr",
            Venue::BinanceSpotTestnet => "binance-spot-testnet",
            Venue::BinanceUsdmTestnet => "binance-usdm-testnet",
            Venue::BinanceCoinmTestnet => "binance-coinm-testnet",
        }
    }

    /// Infers the venue from a WebSocket or REST URL, as found in recordings: the host decides
    /// the exchange and its variant, the path (or host prefix) the market. Letter case does not
    /// matter. Allocates nothing: a capture's feed stage calls it when a connection opens
    /// mid-stream.
    pub fn from_url(url: &str) -> Option<Venue> {
        let u = Caseless(url.as_bytes());
        let futures = |usdm: Venue, coinm: Venue| {
            if u.contains("dstream") || u.contains("dapi") {
                coinm
            } else {
                usdm
            }
        };
        if u.contains("binance.us") {
            Some(Venue::BinanceUs)
        } else if u.contains("trbinance") || u.contains("binance.tr") || u.contains("binance.me") {
            Some(Venue::BinanceTr)
        } else if u.contains("testnet.binance.vision") {
            Some(Venue::BinanceSpotTestnet)
        } else if u.contains("binancefuture.com") {
            Some(futures(
                Venue::BinanceUsdmTestnet,
                Venue::BinanceCoinmTestnet,
            ))
        } else if u.contains("bybit") {
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
            6 => Some(Venue::BinanceUs),
            7 => Some(Venue::BinanceTr),
            8 => Some(Venue::BinanceSpotTestnet),
            9 => Some(Venue::BinanceUsdmTestnet),
            10 => Some(Venue::BinanceCoinmTestnet),
            _ => None,
        }
    }
}

/// Text searched without regard to ASCII letter case, in place.
#[derive(Clone, Copy)]
struct Caseless<'a>(&'a [u8]);

impl Caseless<'_> {
    /// Whether `needle` (in lower case) occurs in the text in any case.
    fn contains(self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        needle.is_empty()
            || self
                .0
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
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
    "unknown venue {0:?} (expected one of binance-spot, binance-usdm, binance-coinm, binance-us, binance-tr, binance-spot-testnet, binance-usdm-testnet, binance-coinm-testnet, bybit-spot, bybit-linear, bybit-inverse)"
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
        assert_eq!(
            Venue::from_url("wss://stream.binance.us:9443/stream?streams=btcusd@depth"),
            Some(Venue::BinanceUs)
        );
        assert_eq!(
            Venue::from_url("https://api.binance.us/api/v3/depth?symbol=BTCUSD"),
            Some(Venue::BinanceUs)
        );
        assert_eq!(
            Venue::from_url("wss://stream-cloud.trbinance.com/stream?streams=btctry@depth"),
            Some(Venue::BinanceTr)
        );
        assert_eq!(
            Venue::from_url("wss://stream.testnet.binance.vision/ws"),
            Some(Venue::BinanceSpotTestnet)
        );
        assert_eq!(
            Venue::from_url("wss://fstream.binancefuture.com/stream"),
            Some(Venue::BinanceUsdmTestnet)
        );
        assert_eq!(
            Venue::from_url("wss://dstream.binancefuture.com/stream"),
            Some(Venue::BinanceCoinmTestnet)
        );
        // Letter case does not matter, in the host or the path.
        assert_eq!(
            Venue::from_url("WSS://Stream.Bybit.com/V5/Public/SPOT"),
            Some(Venue::BybitSpot)
        );
        assert_eq!(
            Venue::from_url("wss://DSTREAM.binancefuture.COM/stream"),
            Some(Venue::BinanceCoinmTestnet)
        );
        assert_eq!(Venue::from_url("BYBIT.ws.3"), None);
        assert_eq!(Venue::from_url(""), None);
    }

    #[test]
    fn host_variants_follow_their_market() {
        assert_eq!(Venue::BinanceUs.market(), Venue::BinanceSpot);
        assert!(Venue::BinanceCoinmTestnet.is_binance_futures());
        assert!(!Venue::BinanceTr.is_binance_futures());
        assert!(Venue::BinanceSpotTestnet.is_binance());
        assert_eq!(
            Venue::BinanceUsdm.on_host_of(Venue::BinanceSpotTestnet),
            Venue::BinanceUsdmTestnet
        );
        assert_eq!(
            Venue::BinanceSpot.on_host_of(Venue::BinanceUs),
            Venue::BinanceUs
        );
        assert_eq!(
            Venue::BinanceUsdm.on_host_of(Venue::BinanceUs),
            Venue::BinanceUsdm
        );
        assert_eq!(Venue::BybitLinear.market(), Venue::BybitLinear);
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
