//! pinion-engine: stages on pinned threads, connected by SPSC rings, with latency histograms.

pub mod latency;
pub mod runtime;
