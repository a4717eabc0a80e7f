//! Fuzz target: Binance USD-M WebSocket frames through the decoder, with its promises checked on every input
//! (`pinion_feed::parse::fuzzing`). One decoder is reused across inputs, as in production.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pinion_feed::parse::fuzzing::Harness;

thread_local! {
    static HARNESS: RefCell<Harness> = RefCell::new(Harness::new());
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        let _ = h.borrow_mut().binance_futures_frame(data);
    });
});
