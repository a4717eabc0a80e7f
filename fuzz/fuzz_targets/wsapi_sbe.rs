//! Fuzz target: arbitrary bytes as a Binance Spot SBE frame (schema 3:5) through
//! `pinion_sbe_spot::decode`, every accessor of the message it names called; then the same bytes
//! (after a 3-byte prefix giving a block length and a version) as the root block of every one of
//! the schema's views in turn. None may panic. The bytes also go through the order session's
//! reader (`pinion_gateway::binance::sbe::transcode`): its JSON text must be UTF-8 and read by
//! `wire::parse_frame` without a panic. And through the direct reader of the order path
//! (`pinion_gateway::binance::sbe_direct::read`): whatever it takes must read exactly as the
//! transcoded text does (the same report at several instrument scales, or the same unread
//! report; the same answer, failure and ack).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_gateway::binance::sbe::{Transcoded, transcode};
use pinion_gateway::binance::sbe_direct::{Direct, read};
use pinion_gateway::binance::wire::{Frame, UserEvent, parse_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = pinion_sbe_spot::decode(data) {
        message.touch();
    }
    let mut text = Vec::with_capacity(1 << 12);
    let transcoded = matches!(transcode(data, &mut text), Ok(Transcoded::Json));
    let text = if transcoded {
        let text = std::str::from_utf8(&text).expect("the reader writes UTF-8");
        let _ = parse_frame(text);
        Some(text)
    } else {
        None
    };
    match read(data) {
        Direct::Transcode => {}
        Direct::Report(r) => {
            let text = text.expect("a report read directly transcodes");
            let Ok(Frame::Event {
                event: UserEvent::ExecutionReport(raw),
                ..
            }) = parse_frame(text)
            else {
                panic!("read directly as a report, not one as text: {text}");
            };
            assert_eq!(r.ids(), raw.unread());
            for (p, q) in [(2, 5), (8, 8), (0, 0), (18, 18)] {
                assert_eq!(r.typed(p, q), raw.typed(p, q).map_err(|_| raw.unread()), "{text}");
            }
        }
        Direct::Answer(a) => {
            let text = text.expect("an answer read directly transcodes");
            let Ok(Frame::Response(b)) = parse_frame(text) else {
                panic!("read directly as an answer, not one as text: {text}");
            };
            assert_eq!((a.id, a.status, &a.rate_limits), (b.id, b.status, &b.rate_limits));
            assert_eq!(a.failure(), b.failure(), "{text}");
            match (&a.outcome, &b.outcome) {
                (Err(x), Err(y)) => assert_eq!((x.code, &*x.msg), (y.code, &*y.msg)),
                (Ok(_), Ok(_)) => {}
                _ => panic!("outcomes differ: {text}"),
            }
            assert_eq!(a.order_ack().ok(), b.order_ack().ok(), "{text}");
        }
    }
    if let [a, b, version, body @ ..] = data {
        pinion_sbe_spot::spot::exercise_every_view(body, u16::from_le_bytes([*a, *b]), u16::from(*version));
    }
});
