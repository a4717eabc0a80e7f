//! Fuzz target: exchange decimal strings (the first byte picks the scale). Parsing never panics
//! and a parsed value survives formatting and parsing again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pinion_feed::parse::fuzzing::decimal(data);
});
