//! Price level arrays and the emission of a message as one or more events.
//!
//! Every venue sends levels as arrays of `[price, quantity]` strings; [`LevelBuf::push_side`] is
//! the one routine that reads them, at the instrument's scale. A message is parsed completely
//! into the reusable buffer before anything is emitted, so a malformed level late in a large
//! snapshot rejects the whole message: the book never sees a FIRST without its LAST.
//!
//! Every price must be above zero, and so must the quantity of a trade or a best bid/ask; a
//! book level's quantity may be zero (the level is deleted) but not negative. [`in_range`] is
//! the one check, used by both parsing paths: the general one returns its error, the strict
//! scanner falls back to the general one on anything it refuses.
//!
//! [`emit_split`] then cuts the levels into events of at most [`MAX_LEVELS`], bids before asks,
//! all sharing the message's header; the first carries FIRST, the last LAST.

use pinion_core::event::{EventFlags, Level, MAX_LEVELS, MarketEvent};
use pinion_core::instrument::InstrumentSpec;

use super::ParseError;
use super::error::Sign;
use super::scaled;
use super::tape::Val;

/// The levels of the message being decoded. Grows to the largest message seen, then is reused.
///
/// The vector is never shortened: its length is the most levels any message has had, and
/// `len` says how many of them are this message's. Clearing is then one store, and an append
/// of a known count writes into slots that already exist ([`LevelBuf::append_with`]).
#[derive(Debug)]
pub(super) struct LevelBuf {
    levels: Vec<Level>,
    len: usize,
    n_bids: usize,
}

impl LevelBuf {
    /// A buffer that holds `capacity` levels before it has to grow.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            levels: Vec::with_capacity(capacity),
            len: 0,
            n_bids: 0,
        }
    }

    /// Empties the buffer for the next message.
    #[inline]
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.n_bids = 0;
    }

    /// This message's levels so far: bids, then asks.
    #[inline]
    pub(super) fn levels(&self) -> &[Level] {
        &self.levels[..self.len]
    }

    /// Appends one level. Bids must all be pushed before the first ask.
    #[inline]
    pub(super) fn push(&mut self, bid: bool, level: Level) {
        match self.levels.get_mut(self.len) {
            Some(slot) => *slot = level,
            None => self.levels.push(level),
        }
        self.len += 1;
        if bid {
            self.n_bids += 1;
        }
    }

    /// Appends one side's levels, one for each of `entries`, each made by `level` from the
    /// entry and a running state (what the caller checks once the message is staged), which
    /// it returns updated; the final state is returned. The levels are written into slots
    /// that already exist (the buffer grows, zeroed, only past its largest message so far):
    /// no level pays a push's capacity check and length update, and the state stays in
    /// registers (a closure that updated captured state kept it in memory, a store and a load
    /// per level). Bids must all be appended before the first ask.
    #[inline(always)]
    pub(super) fn append_with<E, S: Copy>(
        &mut self,
        bid: bool,
        entries: &[E],
        mut state: S,
        level: impl Fn(&E, S) -> (Level, S),
    ) -> S {
        let (start, end) = (self.len, self.len + entries.len());
        if self.levels.len() < end {
            self.grow(end);
        }
        for (slot, e) in self.levels[start..end].iter_mut().zip(entries) {
            let (l, next) = level(e, state);
            *slot = l;
            state = next;
        }
        self.len = end;
        if bid {
            self.n_bids += entries.len();
        }
        state
    }

    /// Makes the vector `len` long (a message larger than any before).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize) {
        self.levels.resize(len, Level::default());
    }

    /// Makes room for `n` more levels.
    #[inline]
    fn reserve(&mut self, n: usize) {
        let end = self.len + n;
        if self.levels.len() < end {
            self.levels.reserve(end - self.levels.len());
        }
    }

    /// Appends the levels of a JSON array of `[price, quantity]` string pairs (extra elements in
    /// a pair are ignored).
    #[inline]
    pub(super) fn push_side(
        &mut self,
        arr: Val<'_, '_>,
        field: &'static str,
        bid: bool,
        spec: &InstrumentSpec,
    ) -> Result<(), ParseError> {
        let n = arr.array_len(field)?;
        self.reserve(n);
        for pair in arr.items(field)? {
            let mut it = pair.items(field).map_err(|_| ParseError::BadLevel(field))?;
            let (Some(px), Some(qty)) = (it.next(), it.next()) else {
                return Err(ParseError::BadLevel(field));
            };
            let px = px.str(field).map_err(|_| ParseError::BadLevel(field))?;
            let qty = qty.str(field).map_err(|_| ParseError::BadLevel(field))?;
            let level = Level {
                px: scaled::px(px.as_bytes(), spec.price_decimals)
                    .map_err(|err| ParseError::BadNumber { field, err })?,
                qty: scaled::qty(qty.as_bytes(), spec.qty_decimals)
                    .map_err(|err| ParseError::BadNumber { field, err })?,
            };
            check_range(level, field, field, ZeroQty::Deletes)?;
            self.push(bid, level);
        }
        Ok(())
    }
}

/// Whether a zero quantity is valid: it deletes a book level; a trade or a best bid/ask has
/// none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ZeroQty {
    /// A book level: zero deletes it.
    Deletes,
    /// A trade or best bid/ask: zero is an error.
    Invalid,
}

/// Whether `level` is in range (see the module docs).
#[inline]
pub(super) fn in_range(level: Level, zero_qty: ZeroQty) -> bool {
    level.px.0 > 0 && (level.qty.0 > 0 || (level.qty.0 == 0 && zero_qty == ZeroQty::Deletes))
}

/// [`in_range`], as the error naming the field at fault.
#[inline]
pub(super) fn check_range(
    level: Level,
    px_field: &'static str,
    qty_field: &'static str,
    zero_qty: ZeroQty,
) -> Result<Level, ParseError> {
    if in_range(level, zero_qty) {
        return Ok(level);
    }
    let (field, value) = if level.px.0 <= 0 {
        (px_field, level.px.0)
    } else {
        (qty_field, level.qty.0)
    };
    Err(ParseError::OutOfRange {
        field,
        seen: Sign::of(value),
    })
}

/// Emits `header` carrying `buf`'s levels, split into as many events as needed (at least one).
/// `header`'s flags other than FIRST/LAST are kept on every event. Returns the number emitted.
#[inline(always)]
pub(super) fn emit_split<F: FnMut(&MarketEvent)>(
    header: &mut MarketEvent,
    buf: &LevelBuf,
    emit: &mut F,
) -> u32 {
    let base = EventFlags(header.flags.0 & !(EventFlags::FIRST.0 | EventFlags::LAST.0));
    let levels = buf.levels();
    let total = levels.len();
    let mut start = 0;
    let mut count = 0u32;
    loop {
        let end = total.min(start + MAX_LEVELS);
        let chunk = &levels[start..end];
        header.levels[..chunk.len()].copy_from_slice(chunk);
        // Both fit in u8: a chunk holds at most MAX_LEVELS (28) levels.
        header.n_levels = chunk.len() as u8;
        header.n_bids = buf.n_bids.clamp(start, end).saturating_sub(start) as u8;
        let mut flags = base;
        if start == 0 {
            flags.insert(EventFlags::FIRST);
        }
        if end == total {
            flags.insert(EventFlags::LAST);
        }
        header.flags = flags;
        emit(header);
        count += 1;
        if end == total {
            return count;
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinion_core::decimal::{Px, Qty};

    fn buf(n_bids: usize, n_asks: usize) -> LevelBuf {
        let mut b = LevelBuf::with_capacity(0);
        for i in 0..n_bids {
            b.push(
                true,
                Level {
                    px: Px(1000 - i as i64),
                    qty: Qty(1),
                },
            );
        }
        for i in 0..n_asks {
            b.push(
                false,
                Level {
                    px: Px(1001 + i as i64),
                    qty: Qty(2),
                },
            );
        }
        b
    }

    fn split(b: &LevelBuf) -> Vec<MarketEvent> {
        let mut out = Vec::new();
        let mut header = MarketEvent::EMPTY;
        header.flags = EventFlags::RESET;
        let n = emit_split(&mut header, b, &mut |e: &MarketEvent| out.push(*e));
        assert_eq!(n as usize, out.len());
        out
    }

    #[test]
    fn empty_message_is_one_first_last_event() {
        let evs = split(&buf(0, 0));
        assert_eq!(evs.len(), 1);
        assert!(evs[0].is_first() && evs[0].is_last());
        assert!(evs[0].flags.contains(EventFlags::RESET));
        assert_eq!(evs[0].n_levels, 0);
    }

    #[test]
    fn split_keeps_bids_before_asks_and_marks_ends() {
        // 30 bids and 40 asks: 70 levels, three events of 28, 28 and 14.
        let b = buf(30, 40);
        let evs = split(&b);
        assert_eq!(evs.len(), 3);
        assert_eq!(
            evs.iter()
                .map(|e| (e.n_bids, e.n_levels))
                .collect::<Vec<_>>(),
            [(28, 28), (2, 28), (0, 14)]
        );
        assert!(evs[0].is_first() && !evs[0].is_last());
        assert!(!evs[1].is_first() && !evs[1].is_last());
        assert!(!evs[2].is_first() && evs[2].is_last());
        assert!(evs.iter().all(|e| e.flags.contains(EventFlags::RESET)));
        let bids: Vec<Level> = evs.iter().flat_map(|e| e.bids().to_vec()).collect();
        let asks: Vec<Level> = evs.iter().flat_map(|e| e.asks().to_vec()).collect();
        assert_eq!(bids.len(), 30);
        assert_eq!(asks.len(), 40);
        assert_eq!(bids[29].px, Px(971));
        assert_eq!(asks[0].px, Px(1001));
        assert_eq!(asks[39].px, Px(1040));
    }

    #[test]
    fn exact_multiple_has_no_empty_tail() {
        let evs = split(&buf(MAX_LEVELS, MAX_LEVELS));
        assert_eq!(evs.len(), 2);
        assert_eq!((evs[0].n_bids, evs[1].n_bids), (MAX_LEVELS as u8, 0));
        assert!(evs[1].is_last());
    }
}
