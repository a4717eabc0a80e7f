//! [`SequenceRule`]: each venue's rule for whether a depth message follows the book, as checked
//! on real recordings (`docs/exchange-protocols.md` §3, §9).
//!
//! - Binance Spot: after a snapshot with `lastUpdateId = L`, drop `u ≤ L`; the first applied
//!   message must satisfy `U ≤ L+1 ≤ u` (real syncs start at exactly `U = L+1`, so the
//!   documented "`L` within `[U;u]`" would wrongly refuse them); then `U == previous u + 1`.
//! - Binance USD-M / COIN-M: drop `u < L`; the first applied satisfies `U ≤ L ≤ u`; then
//!   `pu == previous u` (update ids are not contiguous across messages: never apply the Spot
//!   rule to futures).
//! - Bybit v5 `orderbook.N`: a snapshot resets the book; each delta has `u == previous u + 1`.
//!
//! The functions here are pure: they look at ids only, so each rule is tested on its own.

use pinion_core::{MarketEvent, Venue};

/// The update ids of one depth message (or of a snapshot: only `last` is meaningful).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgIds {
    /// First update id (`U`; Bybit `u`).
    pub first: u64,
    /// Final update id (`u`, `lastUpdateId`; Bybit `u`).
    pub last: u64,
    /// Previous final update id (`pu`, Binance futures only).
    pub prev: u64,
}

impl MsgIds {
    /// The ids an event carries.
    #[inline]
    pub fn of(ev: &MarketEvent) -> Self {
        Self {
            first: ev.first_id,
            last: ev.last_id,
            prev: ev.prev_id,
        }
    }
}

/// What a rule says about a depth message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It follows the book: apply it.
    Apply,
    /// The same message as the last one applied: ignore.
    Duplicate,
    /// Older than the book: ignore.
    Stale,
    /// Updates are missing between the book and this message: the book must be rebuilt.
    Gap {
        /// The id the rule wanted (`U`, `pu` or `u`, per venue).
        expected: u64,
        /// The id the message has.
        got: u64,
    },
}

/// A venue's sequencing rule. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceRule {
    /// Binance Spot: `U == previous u + 1`.
    BinanceSpot,
    /// Binance USD-M and COIN-M futures: `pu == previous u`.
    BinanceFutures,
    /// Bybit v5: `u == previous u + 1`, snapshots in the stream.
    Bybit,
}

impl SequenceRule {
    /// The rule of `venue`.
    pub const fn for_venue(venue: Venue) -> Self {
        if venue.is_binance_futures() {
            SequenceRule::BinanceFutures
        } else if venue.is_binance() {
            SequenceRule::BinanceSpot
        } else {
            SequenceRule::Bybit
        }
    }

    /// Whether depth messages that arrive before a snapshot are kept for it. Binance snapshots
    /// come from REST while the stream runs, so the messages in between must be buffered; Bybit
    /// sends its snapshot in the stream, so earlier deltas are useless.
    pub const fn buffers_before_snapshot(self) -> bool {
        !matches!(self, SequenceRule::Bybit)
    }

    /// The first message after a snapshot whose id is `snapshot`.
    #[inline]
    pub fn first_after_snapshot(self, snapshot: u64, m: MsgIds) -> Verdict {
        match self {
            SequenceRule::BinanceSpot => {
                let want = snapshot.saturating_add(1);
                if m.last < want {
                    Verdict::Stale
                } else if m.first <= want {
                    Verdict::Apply
                } else {
                    Verdict::Gap {
                        expected: want,
                        got: m.first,
                    }
                }
            }
            SequenceRule::BinanceFutures => {
                if m.last < snapshot {
                    Verdict::Stale
                } else if m.first <= snapshot {
                    Verdict::Apply
                } else {
                    Verdict::Gap {
                        expected: snapshot,
                        got: m.first,
                    }
                }
            }
            SequenceRule::Bybit => self.next(
                MsgIds {
                    first: snapshot,
                    last: snapshot,
                    prev: 0,
                },
                m,
            ),
        }
    }

    /// A message after `last`, the last message applied.
    #[inline]
    pub fn next(self, last: MsgIds, m: MsgIds) -> Verdict {
        if m.last <= last.last {
            // Binance ids are unique per message, Bybit's `u` per delta: equal ids are a resend.
            return if m == last || (self == SequenceRule::Bybit && m.last == last.last) {
                Verdict::Duplicate
            } else {
                Verdict::Stale
            };
        }
        let (expected, got) = match self {
            SequenceRule::BinanceSpot => (last.last.saturating_add(1), m.first),
            SequenceRule::BinanceFutures => (last.last, m.prev),
            SequenceRule::Bybit => (last.last.saturating_add(1), m.last),
        };
        if expected == got {
            Verdict::Apply
        } else {
            Verdict::Gap { expected, got }
        }
    }

    /// Whether a snapshot with id `snapshot` is older than (or as old as) a live book whose
    /// last applied id is `live`, and so must not replace it. Bybit re-sends snapshots that
    /// must always replace the book (a `u == 1` restart snapshot has a *lower* id).
    #[inline]
    pub fn snapshot_is_stale(self, snapshot: u64, live: u64) -> bool {
        match self {
            SequenceRule::Bybit => false,
            SequenceRule::BinanceSpot | SequenceRule::BinanceFutures => snapshot <= live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SequenceRule::*;

    fn ids(first: u64, last: u64, prev: u64) -> MsgIds {
        MsgIds { first, last, prev }
    }

    #[test]
    fn spot_first_message_bridges_last_update_id_plus_one() {
        let lu = 50_093_239_218;
        // The real 2024-08-08 sync: (U, u) = (…208, …224) over lastUpdateId …218.
        assert_eq!(
            BinanceSpot.first_after_snapshot(lu, ids(lu - 10, lu + 6, 0)),
            Verdict::Apply
        );
        // U = lastUpdateId + 1: lastUpdateId is not inside [U;u] and yet this is the real start.
        assert_eq!(
            BinanceSpot.first_after_snapshot(lu, ids(lu + 1, lu + 2, 0)),
            Verdict::Apply
        );
        // u ≤ lastUpdateId: already in the snapshot.
        assert_eq!(
            BinanceSpot.first_after_snapshot(lu, ids(lu - 5, lu, 0)),
            Verdict::Stale
        );
        // U > lastUpdateId + 1: the snapshot is too old, updates are missing.
        assert_eq!(
            BinanceSpot.first_after_snapshot(lu, ids(lu + 2, lu + 5, 0)),
            Verdict::Gap {
                expected: lu + 1,
                got: lu + 2
            }
        );
    }

    #[test]
    fn futures_first_message_contains_last_update_id() {
        let lu = 5_123_107_852_948;
        // The real USD-M sync: U ≤ lu ≤ u.
        assert_eq!(
            BinanceFutures.first_after_snapshot(
                lu,
                ids(5_123_107_850_310, 5_123_107_853_551, 5_123_107_850_146)
            ),
            Verdict::Apply
        );
        // u == lu is kept (futures drop only u < lu).
        assert_eq!(
            BinanceFutures.first_after_snapshot(lu, ids(lu - 3, lu, 0)),
            Verdict::Apply
        );
        assert_eq!(
            BinanceFutures.first_after_snapshot(lu, ids(lu - 3, lu - 1, 0)),
            Verdict::Stale
        );
        // U = lu + 1 passes the Spot rule but not the futures one.
        assert_eq!(
            BinanceFutures.first_after_snapshot(lu, ids(lu + 1, lu + 9, lu)),
            Verdict::Gap {
                expected: lu,
                got: lu + 1
            }
        );
    }

    #[test]
    fn spot_chain_is_u_plus_one() {
        let last = ids(100, 110, 0);
        assert_eq!(BinanceSpot.next(last, ids(111, 115, 0)), Verdict::Apply);
        assert_eq!(BinanceSpot.next(last, ids(100, 110, 0)), Verdict::Duplicate);
        assert_eq!(BinanceSpot.next(last, ids(95, 99, 0)), Verdict::Stale);
        assert_eq!(
            BinanceSpot.next(last, ids(112, 115, 0)),
            Verdict::Gap {
                expected: 111,
                got: 112
            }
        );
        // Overlapping the last message is not a continuation either.
        assert_eq!(
            BinanceSpot.next(last, ids(105, 115, 0)),
            Verdict::Gap {
                expected: 111,
                got: 105
            }
        );
    }

    #[test]
    fn futures_chain_is_pu_equals_previous_u() {
        let last = ids(1_000, 1_010, 990);
        // Ids jump between messages; only pu matters.
        assert_eq!(
            BinanceFutures.next(last, ids(1_500, 1_600, 1_010)),
            Verdict::Apply
        );
        assert_eq!(
            BinanceFutures.next(last, ids(1_000, 1_010, 990)),
            Verdict::Duplicate
        );
        assert_eq!(
            BinanceFutures.next(last, ids(900, 950, 880)),
            Verdict::Stale
        );
        assert_eq!(
            BinanceFutures.next(last, ids(1_011, 1_020, 1_005)),
            Verdict::Gap {
                expected: 1_010,
                got: 1_005
            }
        );
    }

    #[test]
    fn bybit_chain_is_u_plus_one() {
        let last = ids(7, 7, 0);
        assert_eq!(Bybit.next(last, ids(8, 8, 0)), Verdict::Apply);
        assert_eq!(Bybit.next(last, ids(7, 7, 0)), Verdict::Duplicate);
        assert_eq!(Bybit.next(last, ids(5, 5, 0)), Verdict::Stale);
        assert_eq!(
            Bybit.next(last, ids(9, 9, 0)),
            Verdict::Gap {
                expected: 8,
                got: 9
            }
        );
        assert_eq!(Bybit.first_after_snapshot(7, ids(8, 8, 0)), Verdict::Apply);
        assert!(!Bybit.snapshot_is_stale(1, 500));
        assert!(BinanceSpot.snapshot_is_stale(500, 500));
        assert!(!BinanceFutures.snapshot_is_stale(501, 500));
    }

    #[test]
    fn venues_map_to_rules() {
        assert_eq!(SequenceRule::for_venue(Venue::BinanceSpot), BinanceSpot);
        assert_eq!(SequenceRule::for_venue(Venue::BinanceCoinm), BinanceFutures);
        assert_eq!(SequenceRule::for_venue(Venue::BybitLinear), Bybit);
        assert!(!Bybit.buffers_before_snapshot());
        assert!(BinanceFutures.buffers_before_snapshot());
    }
}
