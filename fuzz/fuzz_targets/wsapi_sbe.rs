//! Fuzz target: arbitrary bytes as a Binance Spot SBE frame (schema 3:5) through
//! `pinion_sbe_spot::decode`, every accessor of the message it names called; then the same bytes
//! (after a 3-byte prefix giving a block length and a version) as the root block of every one of
//! the schema's views in turn. None may panic. The bytes also go through the order session's
//! reader (`pinion_gateway::binance::sbe::transcode`): its JSON text must be UTF-8 and read by
//! `wire::parse_frame` without a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = pinion_sbe_spot::decode(data) {
        message.touch();
    }
    let mut text = Vec::with_capacity(1 << 12);
    if let Ok(pinion_gateway::binance::sbe::Transcoded::Json) =
        pinion_gateway::binance::sbe::transcode(data, &mut text)
    {
        let text = std::str::from_utf8(&text).expect("the reader writes UTF-8");
        let _ = pinion_gateway::binance::wire::parse_frame(text);
    }
    if let [a, b, version, body @ ..] = data {
        pinion_sbe_spot::spot::exercise_every_view(body, u16::from_le_bytes([*a, *b]), u16::from(*version));
    }
});
