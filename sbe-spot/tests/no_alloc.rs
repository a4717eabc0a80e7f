//! Reading allocates nothing: a counting global allocator watches every view built and every
//! accessor called, groups walked and strings read included.

use pinion_sbe_spot::spot::{WebSocketResponseView, exercise_every_view};
use pinion_sbe_spot::{Message, decode};

#[global_allocator]
static ALLOC: pinion_testkit::alloc::CountingAlloc = pinion_testkit::alloc::CountingAlloc;

fn allocations() -> u64 {
    pinion_testkit::alloc::thread_allocations()
}

/// A `WebSocketResponse` with two rate limits, an id, and a `ServerTimeResponse` inside.
fn ws_response() -> Vec<u8> {
    let mut f = Vec::new();
    for v in [3u16, 50, 3, 5] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&[0, 200, 0]);
    f.extend_from_slice(&19u16.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    for _ in 0..2 {
        f.extend_from_slice(&[2, 1, 1]);
        f.extend_from_slice(&6000i64.to_le_bytes());
        f.extend_from_slice(&7i64.to_le_bytes());
    }
    f.extend_from_slice(&[3, b'a', b'b', b'c']);
    let mut inner = Vec::new();
    for v in [8u16, 102, 3, 5] {
        inner.extend_from_slice(&v.to_le_bytes());
    }
    inner.extend_from_slice(&1_780_000_000_000_000i64.to_le_bytes());
    f.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    f.extend_from_slice(&inner);
    f
}

#[test]
fn reading_allocates_nothing() {
    let frame = ws_response();
    let zeros = vec![0u8; 4096];
    let before = allocations();
    let mut seen = 0usize;
    for _ in 0..100 {
        let ws = WebSocketResponseView::decode(&frame).expect("decodes");
        for limit in ws.rate_limits() {
            seen += limit.expect("entry").rate_limit() as usize;
        }
        seen += ws.id().expect("utf-8").len();
        let Ok(Message::ServerTimeResponse(t)) = decode(ws.result()) else {
            panic!("server time inside")
        };
        seen += (t.server_time() % 7) as usize;
        seen += decode(&frame).expect("decodes").touch();
        seen += exercise_every_view(&zeros, 512, 5);
        seen += exercise_every_view(&frame, 300, 5);
    }
    let after = allocations();
    assert!(seen > 0);
    assert_eq!(
        after - before,
        0,
        "reading allocated {} times",
        after - before
    );
}
