//! Why a frame could not be decoded.
//!
//! Every variant is small and `Copy` and names the field at fault with a `&'static str`, so the
//! hot path can count an error and go on to the next frame without allocating or formatting.

use pinion_core::decimal::DecimalError;

use crate::sbe::SbeError;

/// A frame that is not a well-formed message of its venue. The decoder counts it in
/// [`super::DecodeStats`] and stays usable for the next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not valid JSON.
    #[error("invalid JSON")]
    Json,
    /// The frame is longer than [`super::MAX_FRAME_LEN`]; refused before copying it.
    #[error("frame longer than the decoder accepts")]
    FrameTooLarge,
    /// A field the message type requires is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type (a number where a string belongs, …).
    #[error("field {0:?} has the wrong type")]
    WrongType(&'static str),
    /// A price or quantity string that is not an exact decimal at the instrument's scale.
    #[error("field {field:?}: {err}")]
    BadNumber {
        /// The field (`"b"`, `"p"`, …).
        field: &'static str,
        /// Why the decimal was rejected.
        err: DecimalError,
    },
    /// An id or sequence number that is not a non-negative integer.
    #[error("field {0:?} is not a valid id")]
    BadId(&'static str),
    /// A timestamp that is not a non-negative integer, or too large to express in nanoseconds.
    #[error("field {0:?} is not a valid time")]
    BadTime(&'static str),
    /// A field whose text is not one of the values the venue documents (`type`, `S`, …).
    #[error("field {0:?} has an unexpected value")]
    BadValue(&'static str),
    /// A price level that is not a `[price, quantity]` pair of strings.
    #[error("field {0:?} holds a malformed price level")]
    BadLevel(&'static str),
    /// A well-formed price or quantity outside what the venue can mean: a price at or below
    /// zero anywhere; a trade's or best bid/ask's quantity at or below zero; a book level's
    /// quantity below zero (zero there deletes the level and is valid).
    #[error("field {field:?} is {seen}: {}", seen.rule())]
    OutOfRange {
        /// The field (`"p"`, `"B"`, `"b"` for a bid level, …).
        field: &'static str,
        /// Whether the value was zero or negative.
        seen: Sign,
    },
    /// A Binance SBE frame that is not a well-formed stream message (truncated, a short
    /// block, a group count past the end, …); the [`SbeError`] says what was seen where.
    #[error("{0}")]
    Sbe(SbeError),
    /// An SBE price or quantity (`mantissa × 10^exponent`) that is not a whole number of the
    /// instrument's units (`10^-decimals`), or does not fit in an `i64` at that scale.
    #[error("field {field:?}: {mantissa}e{exponent} is not representable at {decimals} decimals")]
    Unrepresentable {
        /// The field (`"price"`, `"bidQty"`, `"bids"`, …).
        field: &'static str,
        /// The mantissa seen.
        mantissa: i64,
        /// The message's exponent for that field.
        exponent: i8,
        /// The instrument's decimals for that field.
        decimals: u8,
    },
}

/// What was wrong with a value that had to be positive (see [`ParseError::OutOfRange`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// Zero where only a positive value is valid.
    Zero,
    /// Below zero.
    Negative,
}

impl Sign {
    /// The sign of a value that failed its check: `Zero` for 0, else `Negative`.
    #[inline]
    pub(super) fn of(value: i64) -> Self {
        if value == 0 {
            Self::Zero
        } else {
            Self::Negative
        }
    }

    /// The rule the value broke, for the error text.
    fn rule(self) -> &'static str {
        match self {
            Self::Zero => "prices, and trade and best bid/ask quantities, must be above zero",
            Self::Negative => "prices and quantities cannot be negative",
        }
    }
}

impl std::fmt::Display for Sign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Zero => "zero",
            Self::Negative => "negative",
        })
    }
}
