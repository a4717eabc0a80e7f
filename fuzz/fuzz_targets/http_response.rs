//! Fuzz target: bytes from a server as the REST client's response reader sees them (head, body
//! by length, chunks or close). The first two bytes pick where the input is cut into socket
//! reads; the reader's promises are checked: the same response whole or in pieces, bodies
//! within the limit, leftovers only after a complete response.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_net::rest::{ReadLimits, Response, ResponseReader};

const LIMITS: ReadLimits = ReadLimits {
    max_head: 2048,
    max_body: 4096,
};

/// Feeds `data` in pieces of `step` bytes, then ends the connection: the response, or `None`
/// for an error.
fn read(data: &[u8], step: usize) -> Option<Response> {
    let mut reader = ResponseReader::new(LIMITS);
    for piece in data.chunks(step.max(1)) {
        match reader.feed(piece) {
            Ok(Some(response)) => {
                assert!(reader.leftover() < data.len().max(1));
                return Some(response);
            }
            Ok(None) => assert_eq!(reader.leftover(), 0),
            Err(_) => return None,
        }
    }
    reader.finish().ok()
}

fuzz_target!(|data: &[u8]| {
    let (step, data) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])) % 97 + 1, rest),
        _ => return,
    };
    let whole = read(data, data.len());
    let pieces = read(data, step);
    assert_eq!(whole, pieces, "the same response (or error) whole and in pieces");
    if let Some(response) = &whole {
        assert!(response.body.len() <= LIMITS.max_body);
        assert!((100..=599).contains(&response.status));
    }
});
