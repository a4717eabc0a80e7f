//! Fuzz target: arbitrary bytes as one direction of a REST exchange inside a capture (request
//! heads; response heads with bodies by length, chunks or close, and gzip/deflate coding).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pinion_feed::source::fuzzing::http_exchange(data);
});
