//! Hand-built books for the strategies' unit tests.

use pinion_core::{BookTop, Level, Px, Qty};

use crate::slots::tests::INST;

/// A synced one-level book at event time `t` (and `t0` = `t`): `bid_qty` at `bid`, `ask_qty` at
/// `ask`.
pub(crate) fn book_qty(t: u64, bid: i64, bid_qty: i64, ask: i64, ask_qty: i64) -> BookTop {
    let mut b = BookTop::from_levels(
        INST,
        t,
        t,
        true,
        &[Level {
            px: Px(bid),
            qty: Qty(bid_qty),
        }],
        &[Level {
            px: Px(ask),
            qty: Qty(ask_qty),
        }],
    );
    b.t_recv = t;
    b
}

/// [`book_qty`] with 10 on each side.
pub(crate) fn book(t: u64, bid: i64, ask: i64) -> BookTop {
    book_qty(t, bid, 10, ask, 10)
}
