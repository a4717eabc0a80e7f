//! Fuzz target: arbitrary bytes as a JSON frame for the SBE encoder (what `pinion convert
//! --encoding sbe` and the simulator's SBE streams run on recordings), with the encoder's
//! promises checked (see `pinion_feed::sbe_encode::fuzzing::encode_input`): no panic, and every
//! frame it writes reads back as the template it says.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pinion_feed::sbe_encode::fuzzing::encode_input(data, 1_723_161_254_087_891_268);
});
