//! Symbol to instrument resolution with a one-entry memory.
//!
//! A feed connection usually carries one or a few instruments, so the symbol of a message is
//! most often the previous message's. Remembering the last symbol resolved (exact bytes and
//! venue) skips the registry's hash lookup on a hit; a miss falls back to
//! [`Instruments::lookup`], which ignores ASCII case. Only successful lookups are remembered.
//!
//! It also remembers the instrument the current frame resolved to (reset per frame by the
//! decoder), so a frame that fails after naming its symbol is reported against its instrument.

use pinion_core::instrument::{InstrumentId, InstrumentSpec, Instruments};
use pinion_core::venue::Venue;

/// Longest symbol remembered; longer ones always go to the registry.
const MAX_SYMBOL: usize = 24;

/// The last symbol resolved.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LastSymbol {
    venue: Option<Venue>,
    len: usize,
    bytes: [u8; MAX_SYMBOL],
    id: InstrumentId,
    /// The instrument the frame being decoded resolved to, if it got that far.
    pub(super) frame: Option<InstrumentId>,
}

/// The registry plus the remembered last symbol, for one frame.
#[derive(Debug)]
pub(super) struct Resolver<'a> {
    instruments: &'a Instruments,
    last: &'a mut LastSymbol,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(instruments: &'a Instruments, last: &'a mut LastSymbol) -> Self {
        Self { instruments, last }
    }

    /// The instrument a venue's symbol names (as in payloads or, lower case, in stream names).
    ///
    /// The hit is inlined into every message's path; the registry lookup on a miss is not.
    #[inline(always)]
    pub(super) fn symbol(
        &mut self,
        venue: Venue,
        symbol: &[u8],
    ) -> Option<(InstrumentId, &'a InstrumentSpec)> {
        let last = &*self.last;
        if last.venue == Some(venue)
            && last.len == symbol.len()
            && short_eq(&last.bytes[..last.len.min(MAX_SYMBOL)], symbol)
        {
            return self.by_id(last.id);
        }
        self.miss(venue, symbol)
    }

    /// A symbol that is not the last one: the registry's lookup, remembered if found.
    #[inline(never)]
    fn miss(&mut self, venue: Venue, symbol: &[u8]) -> Option<(InstrumentId, &'a InstrumentSpec)> {
        let id = self.instruments.lookup(venue, symbol)?;
        if symbol.len() <= MAX_SYMBOL {
            let mut bytes = [0; MAX_SYMBOL];
            bytes[..symbol.len()].copy_from_slice(symbol);
            *self.last = LastSymbol {
                venue: Some(venue),
                len: symbol.len(),
                bytes,
                id,
                frame: None,
            };
        }
        self.by_id(id)
    }

    /// The spec of an id (a connection's default instrument).
    #[inline]
    pub(super) fn by_id(&mut self, id: InstrumentId) -> Option<(InstrumentId, &'a InstrumentSpec)> {
        let spec = self.instruments.get(id)?;
        self.last.frame = Some(id);
        Some((id, spec))
    }
}

/// Whether two slices are equal, for the few bytes of a symbol: two overlapping loads from each
/// end instead of a call to `memcmp`.
#[inline(always)]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// The 4 bytes at `at` (the caller has checked the length; the check below stays).
#[inline(always)]
fn word4(x: &[u8], at: usize) -> u32 {
    x[at..at + 4].try_into().map_or(0, u32::from_ne_bytes)
}

/// The 8 bytes at `at` (the caller has checked the length; the check below stays).
#[inline(always)]
fn word8(x: &[u8], at: usize) -> u64 {
    x[at..at + 8].try_into().map_or(0, u64::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_eq_is_slice_equality() {
        let words: [&[u8]; 12] = [
            b"",
            b"A",
            b"AB",
            b"ABC",
            b"ABCD",
            b"BTCUSDT",
            b"BTCUSDC",
            b"ETHUSDT",
            b"1000PEPEUSDT",
            b"1000PEPEUSDC",
            b"ABCDEFGHIJKLMNOPQ",
            b"ABCDEFGHIJKLMNOPR",
        ];
        for a in words {
            for b in words {
                assert_eq!(short_eq(a, b), a == b, "{a:?} {b:?}");
            }
            // Every single-byte difference is seen, wherever it is.
            for i in 0..a.len() {
                let mut c = a.to_vec();
                c[i] ^= 0x20;
                assert!(!short_eq(a, &c), "{a:?} at {i}");
            }
        }
    }

    #[test]
    fn remembers_hits_and_keeps_venues_apart() {
        let mut reg = Instruments::new();
        let spot = reg
            .add(InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.001").unwrap())
            .unwrap();
        let usdm = reg
            .add(InstrumentSpec::new(Venue::BinanceUsdm, "BTCUSDT", "0.1", "0.001").unwrap())
            .unwrap();
        let mut last = LastSymbol::default();
        let mut r = Resolver::new(&reg, &mut last);
        assert_eq!(
            r.symbol(Venue::BinanceSpot, b"btcusdt").map(|x| x.0),
            Some(spot)
        );
        assert_eq!(
            r.symbol(Venue::BinanceSpot, b"btcusdt").map(|x| x.0),
            Some(spot)
        );
        assert_eq!(
            r.symbol(Venue::BinanceUsdm, b"btcusdt").map(|x| x.0),
            Some(usdm)
        );
        assert_eq!(
            r.symbol(Venue::BinanceUsdm, b"BTCUSDT").map(|x| x.0),
            Some(usdm)
        );
        assert_eq!(r.symbol(Venue::BinanceUsdm, b"btcusd"), None);
        assert_eq!(r.symbol(Venue::BybitSpot, b"BTCUSDT"), None);
        // A miss does not evict the remembered hit.
        assert_eq!(
            r.symbol(Venue::BinanceUsdm, b"BTCUSDT").map(|x| x.0),
            Some(usdm)
        );
    }
}
