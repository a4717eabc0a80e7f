//! Fuzz target: Binance Spot SBE binary frames through the decoder, with its promises checked on
//! every input (`pinion_feed::parse::fuzzing`). The first byte picks raw bytes, a stream-schema
//! header before the bytes, or edits of a valid message of each template
//! (`Harness::sbe_frame`), so inputs get past the header. One decoder is reused across inputs,
//! as in production.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pinion_feed::parse::fuzzing::Harness;

thread_local! {
    static HARNESS: RefCell<Harness> = RefCell::new(Harness::new());
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        let _ = h.borrow_mut().sbe_frame(data);
    });
});
