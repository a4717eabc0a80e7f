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
    #[inline]
    pub(super) fn symbol(
        &mut self,
        venue: Venue,
        symbol: &[u8],
    ) -> Option<(InstrumentId, &'a InstrumentSpec)> {
        let last = &*self.last;
        if last.venue == Some(venue) && last.bytes.get(..last.len) == Some(symbol) {
            return self.by_id(last.id);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
