//! The truth book: the simulator's own view of each symbol's order book, built from the
//! source's first REST snapshot and every depth diff the market releases after it.
//!
//! It is deliberately independent of `pinion-book` (which is what the simulator tests): levels
//! live in `BTreeMap`s keyed by an exact decimal ([`Dec`], an integer count of 10⁻¹⁸), never a
//! float. Each level keeps the price and quantity text as the exchange last wrote them, so a
//! REST answer carries the exchange's own spelling, and [`TruthBook`] reports them normalised
//! (no trailing zeros after the point, no trailing point) for comparison.
//!
//! A short history of undo records ([`History`]) lets the REST side answer with the book as it
//! stood K updates earlier (the stale-snapshot fault) without copying the book per update.

use std::collections::{BTreeMap, VecDeque};

/// Fractional digits a [`Dec`] keeps.
const SCALE_DIGITS: usize = 18;
/// 10^[`SCALE_DIGITS`].
const SCALE: u128 = 1_000_000_000_000_000_000;

/// An exact non-negative decimal, in units of 10⁻¹⁸.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec(u128);

/// Why a decimal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal the truth book can hold exactly: {text:?}")]
pub struct DecError {
    /// The text seen (cut to 40 bytes).
    pub text: String,
}

impl Dec {
    /// Parses `123`, `123.45`, `0.00010000`; at most 18 significant fractional digits.
    pub fn parse(text: &str) -> Result<Dec, DecError> {
        let err = || DecError {
            text: text.chars().take(40).collect(),
        };
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > SCALE_DIGITS {
            return Err(err());
        }
        let mut units: u128 = 0;
        for b in int.bytes() {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u128::from(b - b'0')))
                .ok_or_else(err)?;
        }
        units = units.checked_mul(SCALE).ok_or_else(err)?;
        let mut frac_units: u128 = 0;
        for (i, b) in frac.bytes().enumerate() {
            let place = 10u128.pow((SCALE_DIGITS - 1 - i) as u32);
            frac_units += u128::from(b - b'0') * place;
        }
        Ok(Dec(units + frac_units))
    }

    /// The value in units of 10⁻¹⁸ (for the order simulator's arithmetic).
    pub(crate) const fn units(self) -> u128 {
        self.0
    }

    /// A value of `units` × 10⁻¹⁸.
    pub(crate) const fn from_units(units: u128) -> Dec {
        Dec(units)
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The normalised text: `61837.63`, `0.0001`, `5`.
    pub fn normalized(self) -> String {
        let int = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            return int.to_string();
        }
        let digits = format!("{frac:018}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    }

    /// How many fractional digits the normalised text has.
    pub fn decimals(self) -> usize {
        let frac = self.0 % SCALE;
        if frac == 0 {
            return 0;
        }
        let digits = format!("{frac:018}");
        digits.trim_end_matches('0').len()
    }
}

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Bid,
    Ask,
}

/// One price level: the exchange's spelling of price and quantity, and the quantity's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Level {
    pub px_text: String,
    pub qty: Dec,
    pub qty_text: String,
}

impl Level {
    /// `[price, quantity]` as the exchange wrote them.
    pub fn pair(&self) -> [&str; 2] {
        [self.px_text.as_str(), self.qty_text.as_str()]
    }
}

/// One symbol's book as the simulator knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Book {
    pub last_update_id: u64,
    pub bids: BTreeMap<Dec, Level>,
    pub asks: BTreeMap<Dec, Level>,
}

/// What applying one diff changed: the previous id and each touched level's previous state.
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    prev_update_id: u64,
    levels: Vec<(Side, Dec, Option<Level>)>,
}

impl Book {
    /// The side's map.
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Dec, Level> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Sets one level (quantity zero removes it) and returns its previous state.
    pub fn set(
        &mut self,
        side: Side,
        px: &str,
        qty: &str,
    ) -> Result<(Dec, Option<Level>), DecError> {
        let key = Dec::parse(px)?;
        let value = Dec::parse(qty)?;
        let map = self.side_mut(side);
        let prev = if value.is_zero() {
            map.remove(&key)
        } else {
            map.insert(
                key,
                Level {
                    px_text: px.to_owned(),
                    qty: value,
                    qty_text: qty.to_owned(),
                },
            )
        };
        Ok((key, prev))
    }

    /// Applies a diff's levels and moves to `update_id`; the undo record for the history.
    /// Levels that do not parse are skipped and counted in the returned `bad` number.
    pub fn apply<'a>(
        &mut self,
        update_id: u64,
        bids: impl IntoIterator<Item = (&'a str, &'a str)>,
        asks: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (Undo, u64) {
        let mut undo = Undo {
            prev_update_id: self.last_update_id,
            levels: Vec::new(),
        };
        let mut bad = 0;
        for (side, levels) in [
            (Side::Bid, bids.into_iter().collect::<Vec<_>>()),
            (Side::Ask, asks.into_iter().collect()),
        ] {
            for (px, qty) in levels {
                match self.set(side, px, qty) {
                    Ok((key, prev)) => undo.levels.push((side, key, prev)),
                    Err(_) => bad += 1,
                }
            }
        }
        self.last_update_id = update_id;
        (undo, bad)
    }

    /// Reverts one applied diff.
    pub fn revert(&mut self, undo: &Undo) {
        for (side, key, prev) in undo.levels.iter().rev() {
            let map = self.side_mut(*side);
            match prev {
                Some(level) => {
                    map.insert(*key, level.clone());
                }
                None => {
                    map.remove(key);
                }
            }
        }
        self.last_update_id = undo.prev_update_id;
    }

    /// Bids best first (highest price first), at most `depth`.
    pub fn bids_best_first(&self, depth: usize) -> impl Iterator<Item = &Level> {
        self.bids.values().rev().take(depth)
    }

    /// Asks best first (lowest price first), at most `depth`.
    pub fn asks_best_first(&self, depth: usize) -> impl Iterator<Item = &Level> {
        self.asks.values().take(depth)
    }

    /// The normalised view, at most `depth` levels a side.
    pub fn truth(&self, symbol: &str, depth: usize) -> TruthBook {
        let norm = |l: &Level| {
            (
                Dec::parse(&l.px_text).map_or_else(|_| l.px_text.clone(), Dec::normalized),
                l.qty.normalized(),
            )
        };
        TruthBook {
            symbol: symbol.to_owned(),
            last_update_id: self.last_update_id,
            bids: self.bids_best_first(depth).map(norm).collect(),
            asks: self.asks_best_first(depth).map(norm).collect(),
        }
    }
}

/// The last few undo records of one symbol, newest last.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    undos: VecDeque<Undo>,
    cap: usize,
}

impl History {
    /// A history that keeps `cap` updates.
    pub fn new(cap: usize) -> Self {
        History {
            undos: VecDeque::with_capacity(cap.min(4096)),
            cap,
        }
    }

    /// Records one applied diff.
    pub fn push(&mut self, undo: Undo) {
        if self.cap == 0 {
            return;
        }
        if self.undos.len() == self.cap {
            self.undos.pop_front();
        }
        self.undos.push_back(undo);
    }

    /// How many updates it keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// `book` as it stood `k` updates ago (or as far back as the history reaches).
    pub fn rewind(&self, book: &Book, k: usize) -> Book {
        let mut old = book.clone();
        for undo in self.undos.iter().rev().take(k) {
            old.revert(undo);
        }
        old
    }
}

/// A symbol's book as the simulator knows it, levels normalised, best first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TruthBook {
    /// The symbol, upper case.
    pub symbol: String,
    /// The update id the book stands at (the snapshot's `lastUpdateId`, then each diff's `u`).
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    /// `(price, quantity)`, highest price first.
    pub bids: Vec<(String, String)>,
    /// `(price, quantity)`, lowest price first.
    pub asks: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_normalised() {
        let d = |s| Dec::parse(s).expect("decimal");
        assert_eq!(d("61837.63000000").normalized(), "61837.63");
        assert_eq!(d("5.").normalized(), "5");
        assert_eq!(d("0.00000000").normalized(), "0");
        assert_eq!(d("0.00001000").normalized(), "0.00001");
        assert_eq!(d("0.00001000").decimals(), 5);
        assert!(d("0.1") < d("0.10000001"));
        assert!(d("100") > d("99.999999999999999999"));
        for bad in [
            "",
            ".5",
            "-1",
            "1e5",
            "1.2.3",
            "0.0000000000000000001",
            "abc",
        ] {
            assert!(Dec::parse(bad).is_err(), "{bad}");
        }
        assert!(Dec::parse(&"9".repeat(40)).is_err());
    }

    #[test]
    fn apply_and_rewind_restore_the_book() {
        let mut book = Book::default();
        book.apply(10, [("100.0", "1.0"), ("99.5", "2")], [("101", "3")]);
        let before = book.clone();
        let mut history = History::new(4);
        let (undo, bad) = book.apply(
            11,
            [("100.00", "0"), ("99.0", "4")],
            [("101", "1.5"), ("x", "1")],
        );
        assert_eq!(bad, 1);
        history.push(undo);
        let view = book.truth("T", 10);
        assert_eq!(view.last_update_id, 11);
        assert_eq!(
            view.bids,
            vec![("99.5".into(), "2".into()), ("99".into(), "4".into())]
        );
        assert_eq!(view.asks, vec![("101".into(), "1.5".into())]);
        assert_eq!(history.rewind(&book, 1), before);
        assert_eq!(history.rewind(&book, 0), book);
    }
}
