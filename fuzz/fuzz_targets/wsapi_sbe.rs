//! Fuzz target: arbitrary bytes as a Binance Spot SBE frame (schema 3:5) through
//! `pinion_sbe_spot::decode`, every accessor of the message it names called; then the same bytes
//! (after a 3-byte prefix giving a block length and a version) as the root block of every one of
//! the schema's views in turn. None may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = pinion_sbe_spot::decode(data) {
        message.touch();
    }
    if let [a, b, version, body @ ..] = data {
        pinion_sbe_spot::spot::exercise_every_view(body, u16::from_le_bytes([*a, *b]), u16::from(*version));
    }
});
