//! Fuzz target: a frame as the live source's first look sees it (`pinion_feed::live::protocol`),
//! for Binance and Bybit. The first byte picks the protocol. Whatever the bytes, classifying
//! never panics, and a stream name handed back is the frame's own bytes right after the
//! `"stream":"` / `"topic":"` prefix, up to (not including) the next quote.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_feed::live::protocol::{Frame, Protocol, classify};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let protocol = if pick & 1 == 0 {
        Protocol::Binance
    } else {
        Protocol::Bybit
    };
    if let Frame::Data(name) = classify(protocol, frame) {
        let prefix: &[u8] = match protocol {
            Protocol::Binance => b"{\"stream\":\"",
            Protocol::Bybit => b"{\"topic\":\"",
        };
        assert!(frame.starts_with(prefix));
        assert_eq!(&frame[prefix.len()..prefix.len() + name.len()], name);
        assert!(!name.contains(&b'"'));
        assert_eq!(frame.get(prefix.len() + name.len()), Some(&b'"'));
    }
});
