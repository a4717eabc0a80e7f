//! Fuzz target: REST order book snapshot bodies of every venue (the first byte picks the venue
//! and whether the request URL names the symbol), with the decoder's promises checked.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pinion_feed::parse::fuzzing::Harness;

thread_local! {
    static HARNESS: RefCell<Harness> = RefCell::new(Harness::new());
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        let _ = h.borrow_mut().rest_snapshot(data);
    });
});
