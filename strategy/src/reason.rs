//! Why an order was sent: [`OrderReason`], carried by every [`OrderIntent`](crate::OrderIntent).
//!
//! On the hot path a reason is two bytes (the strategy instance and a [`ReasonCode`]) written
//! into the intent where it is made; it is named only off the hot path ([`ReasonCode::name`],
//! a `const fn` over a static table), where the journal, the history, the fills file, the alerts
//! and `/orders` show it. The two bytes sit in what was the intent's tail padding, so the intent
//! stays 48 bytes.
//!
//! Who sets what:
//! - a strategy writes the code of its decision (entry or exit, requote, chase, grid level) and
//!   takes the instance from the [`Intents`](crate::Intents) buffer it writes into, which the
//!   stage sets before each callback ([`Intents::reason`](crate::Intents::reason));
//! - a cancel a strategy sends for its own order carries that order's reason;
//! - the stage's own orders (the protective exits, kill and cancel-all cancels, flatten and
//!   de-risk slices, the cancels at the stop) carry the code of what caused them and the
//!   instance of the strategy whose orders they act on;
//! - an order typed by the operator is [`ReasonCode::Manual`].
//!
//! [`ReasonCode::Unknown`] is never written by the engine: it is what a record from before
//! reasons existed reads as (an old journal frame, an old history row), so a check that every
//! order has a reason can tell an old record from a missing one.

/// What caused an order (or a cancel). One byte on the wire and in the journal; the values are
/// part of the journal and history formats and never change meaning (new codes take new values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum ReasonCode {
    /// No reason recorded: a record written before reasons existed. Never written by the
    /// engine.
    #[default]
    Unknown = 0,
    /// A strategy opening or adding to a position (imbalance, momentum).
    Entry = 1,
    /// A strategy reducing or closing its position on its own signal (imbalance, momentum).
    Exit = 2,
    /// A market-making or spread-capture quote, placed or moved.
    Requote = 3,
    /// The quote-chase order following the touch.
    Chase = 4,
    /// A grid level's order.
    GridLevel = 5,
    /// The stop-loss closing the position (and the cancels before it).
    Stop = 6,
    /// The take-profit closing the position (and the cancels before it).
    TakeProfit = 7,
    /// The trailing stop closing the position (and the cancels before it).
    Trailing = 8,
    /// The kill switch's cancels.
    Kill = 9,
    /// A flatten run's cancels and closing slices.
    Flatten = 10,
    /// A de-risk cut's cancels and closing slices.
    DeRisk = 11,
    /// An order the operator placed by hand.
    Manual = 12,
    /// The operator's cancel-all.
    CancelAll = 13,
    /// The cancels the exit policy sends when the engine stops.
    Shutdown = 14,
    /// The cancels, after a restart, of orders an earlier run left open that nothing owns now.
    Restart = 15,
}

impl ReasonCode {
    /// Every code, in value order (value `i` at index `i`).
    pub const ALL: [ReasonCode; 16] = [
        ReasonCode::Unknown,
        ReasonCode::Entry,
        ReasonCode::Exit,
        ReasonCode::Requote,
        ReasonCode::Chase,
        ReasonCode::GridLevel,
        ReasonCode::Stop,
        ReasonCode::TakeProfit,
        ReasonCode::Trailing,
        ReasonCode::Kill,
        ReasonCode::Flatten,
        ReasonCode::DeRisk,
        ReasonCode::Manual,
        ReasonCode::CancelAll,
        ReasonCode::Shutdown,
        ReasonCode::Restart,
    ];

    /// The code of value `v`, if it is one.
    #[inline]
    pub const fn from_u8(v: u8) -> Option<Self> {
        if (v as usize) < Self::ALL.len() {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// The code's name as it is written off the hot path (journal dumps, history, fills file,
    /// alerts, `/orders`): lower case, words joined by `-`.
    pub const fn name(self) -> &'static str {
        match self {
            ReasonCode::Unknown => "unknown",
            ReasonCode::Entry => "entry",
            ReasonCode::Exit => "exit",
            ReasonCode::Requote => "requote",
            ReasonCode::Chase => "chase",
            ReasonCode::GridLevel => "grid-level",
            ReasonCode::Stop => "stop",
            ReasonCode::TakeProfit => "take-profit",
            ReasonCode::Trailing => "trailing",
            ReasonCode::Kill => "kill",
            ReasonCode::Flatten => "flatten",
            ReasonCode::DeRisk => "de-risk",
            ReasonCode::Manual => "manual",
            ReasonCode::CancelAll => "cancel-all",
            ReasonCode::Shutdown => "shutdown",
            ReasonCode::Restart => "restart",
        }
    }

    /// The code named `name` (as [`ReasonCode::name`] writes it), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an order was sent: which strategy instance, and what made it. Two bytes, `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(C)]
pub struct OrderReason {
    /// The strategy instance (its index in the configuration; 0 while a config runs one
    /// strategy per instrument).
    pub strategy: u8,
    /// What made it.
    pub code: ReasonCode,
}

impl OrderReason {
    /// No reason recorded (a record from before reasons existed); never written by the engine.
    pub const UNKNOWN: OrderReason = OrderReason::new(0, ReasonCode::Unknown);

    /// The reason `code` of strategy instance `strategy`.
    #[inline]
    pub const fn new(strategy: u8, code: ReasonCode) -> Self {
        Self { strategy, code }
    }

    /// Whether a reason was recorded (the code is not [`ReasonCode::Unknown`]).
    #[inline]
    pub const fn is_known(self) -> bool {
        !matches!(self.code, ReasonCode::Unknown)
    }

    /// The two bytes as one `u16` (strategy in the high byte): how the history stores it.
    #[inline]
    pub const fn to_u16(self) -> u16 {
        ((self.strategy as u16) << 8) | self.code as u16
    }

    /// The reason of `v` (as [`OrderReason::to_u16`] writes it), if its code is one.
    #[inline]
    pub const fn from_u16(v: u16) -> Option<Self> {
        match ReasonCode::from_u8((v & 0xff) as u8) {
            Some(code) => Some(Self::new((v >> 8) as u8, code)),
            None => None,
        }
    }
}

impl std::fmt::Display for OrderReason {
    /// `s<instance>:<code>`, e.g. `s0:requote`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}:{}", self.strategy, self.code.name())
    }
}

/// The code of an order on `side` by a strategy holding `position`: [`ReasonCode::Exit`] when
/// its fill reduces the position (a reversal's first part is closing what is held),
/// [`ReasonCode::Entry`] when it opens or adds.
#[inline]
pub const fn entry_or_exit(position: pinion_core::Qty, side: crate::OrderSide) -> ReasonCode {
    if position.0.saturating_mul(side.sign()) < 0 {
        ReasonCode::Exit
    } else {
        ReasonCode::Entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_value_and_name() {
        for (i, c) in ReasonCode::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "ALL is in value order");
            assert_eq!(ReasonCode::from_u8(i as u8), Some(c));
            assert_eq!(ReasonCode::from_name(c.name()), Some(c));
        }
        assert_eq!(ReasonCode::from_u8(ReasonCode::ALL.len() as u8), None);
        assert_eq!(ReasonCode::from_u8(255), None);
        assert_eq!(ReasonCode::from_name("Entry"), None);
        let mut names: Vec<_> = ReasonCode::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ReasonCode::ALL.len(), "names are distinct");
    }

    #[test]
    fn orders_against_the_position_are_exits() {
        use crate::OrderSide::{Buy, Sell};
        use pinion_core::Qty;
        assert_eq!(entry_or_exit(Qty(0), Buy), ReasonCode::Entry);
        assert_eq!(entry_or_exit(Qty(0), Sell), ReasonCode::Entry);
        assert_eq!(entry_or_exit(Qty(5), Buy), ReasonCode::Entry);
        assert_eq!(entry_or_exit(Qty(5), Sell), ReasonCode::Exit);
        assert_eq!(entry_or_exit(Qty(-5), Buy), ReasonCode::Exit);
        assert_eq!(entry_or_exit(Qty(-5), Sell), ReasonCode::Entry);
    }

    #[test]
    fn reasons_pack_into_two_bytes() {
        assert_eq!(std::mem::size_of::<OrderReason>(), 2);
        let r = OrderReason::new(3, ReasonCode::TakeProfit);
        assert_eq!(r.to_u16(), 0x0307);
        assert_eq!(OrderReason::from_u16(0x0307), Some(r));
        assert_eq!(OrderReason::from_u16(0x03ff), None);
        assert_eq!(r.to_string(), "s3:take-profit");
        assert!(r.is_known());
        assert!(!OrderReason::UNKNOWN.is_known());
        assert!(!OrderReason::default().is_known());
    }
}
