//! Fuzz target: Binance frames decoded with and without the strict flat-message scanner; the
//! answers, events and counters must be identical (`pinion_feed::parse::fuzzing::FlatPair`).
//! The first byte picks Spot or USD-M.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pinion_feed::parse::fuzzing::{self, FlatPair};

thread_local! {
    static PAIR: RefCell<FlatPair> = RefCell::new(FlatPair::default());
}

fuzz_target!(|data: &[u8]| {
    PAIR.with(|p| fuzzing::flat_equivalence(&mut p.borrow_mut(), data));
});
