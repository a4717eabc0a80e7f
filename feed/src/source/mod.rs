//! Sources of [`crate::RawRecord`]s: recordings in the formats found in the wild, and packet
//! captures.

pub mod cryptofeed;
pub mod hbt;
pub mod pcap;
