//! Exchange message parsers (simd-json): raw frames in, [`crate::MarketEvent`]s out.
