//! Fuzz target: what the operator bot does with text from the network. Any message parses to a
//! command without panicking; clipping keeps a prefix of at most the asked characters; masking
//! leaves no copy of a token (tokens as the Bot API issues them: digits, a colon, letters,
//! digits, `_` and `-`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_engine::bot::api::{clip, mask};
use pinion_engine::bot::commands::Command;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = Command::parse(text);
    let max = usize::from(split);
    let clipped = clip(text, max);
    assert!(text.starts_with(clipped));
    assert!(clipped.chars().count() <= max);
    // The token: the text's first bytes that look like one, at least 3 long.
    let token: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
        .take(64)
        .collect();
    if token.len() >= 3 && token.contains(':') {
        let masked = mask(text, &token);
        assert!(!masked.contains(&token), "{token:?} survives in {masked:?}");
    }
});
