//! Fuzz target: arbitrary bytes as a recording read from a stream, surveyed as start-up does
//! before a replay (venues, symbols and number shapes from the content), with the survey's
//! promises checked (see `pinion_feed::source::fuzzing::survey_input`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pinion_feed::source::fuzzing::survey_input(data);
});
