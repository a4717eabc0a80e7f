//! Fuzz target: arbitrary bytes as a recording or capture read from a stream — the reader picker
//! (magic numbers, the first decompressed line) and whichever reader it picks, read to the end,
//! with the readers' promises checked (see `pinion_feed::source::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pinion_feed::source::fuzzing::read_input(data);
});
