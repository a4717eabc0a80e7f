//! The book crate's error type.
//!
//! Errors from applying a level are on the hot path: the enum is small and `Copy`, so the sync
//! machine can count it and move on without allocating.

use pinion_core::Px;

/// Why a level or a configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The price is not a multiple of the instrument's tick.
    #[error("price {0:?} is not on the tick grid")]
    OffTick(Px),
    /// The price's tick index is beyond what the book can address.
    #[error("price {0:?} is out of the book's range")]
    PriceOutOfRange(Px),
    /// A negative quantity (the venues send absolute, non-negative quantities).
    #[error("negative quantity")]
    NegativeQty,
    /// The window length is not a power of two between 64 and 2^24 ticks.
    #[error("window of {0} ticks: must be a power of two between 64 and 2^24")]
    BadWindow(usize),
    /// The overflow capacity is zero or above 2^20 levels.
    #[error("overflow of {0} levels: must be between 1 and 2^20")]
    BadOverflow(usize),
    /// The sync buffer capacity is zero or above 2^20 events.
    #[error("sync buffer of {0} events: must be between 1 and 2^20")]
    BadBuffer(usize),
    /// The instrument's tick size is not positive.
    #[error("tick size must be positive")]
    BadTick,
}
