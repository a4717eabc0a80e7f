//! A deterministic synthetic market that emits real Binance-format frames.
