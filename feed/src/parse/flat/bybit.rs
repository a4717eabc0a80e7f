//! The strict scanner's Bybit side: `orderbook.*` snapshots and deltas, whose root object holds
//! `topic` first, then `ts`, `type`, `cts` and the `data` object with the level arrays. The
//! subset and the fallback rule are the module above's.

use pinion_core::event::{EventFlags, EventKind, MarketEvent};

use super::super::bybit::{Topic, parse_topic};
use super::super::levels::emit_split;
use super::super::resolve::Resolver;
use super::super::{ConnCtx, Decoded, Origin, Sink};
use super::{Key, Payload, Scalar, Scanner, opt_ms_as_ns};

/// The literal start of a Bybit topic message.
const TOPIC_HEAD: &[u8] = br#"{"topic":""#;

/// Decodes a Bybit `orderbook.*` frame if it is inside the subset: `topic` first, then `ts`,
/// `type`, `cts` and `data` in any order, `data` holding `b` then `a` as level arrays and the
/// scalars `u`, `seq`; `None` sends it to the general path.
#[inline]
pub(in crate::parse) fn frame<F: FnMut(&MarketEvent)>(
    ctx: &ConnCtx,
    reg: &mut Resolver<'_>,
    origin: Origin,
    frame: &[u8],
    sink: &mut Sink<'_, F>,
) -> Option<Decoded> {
    let mut sc = Scanner { buf: frame, pos: 0 };
    sc.literal(TOPIC_HEAD)?;
    let (Topic::OrderBook, symbol) = parse_topic(sc.string_body()?)? else {
        return None;
    };
    let (id, spec) = reg.symbol(ctx.venue, symbol)?;
    let (mut ts, mut cts, mut kind, mut data) =
        (Scalar::Absent, Scalar::Absent, Scalar::Absent, None);
    loop {
        match sc.peek()? {
            b',' => sc.pos += 1,
            b'}' => {
                sc.pos += 1;
                break;
            }
            _ => return None,
        }
        sc.byte(b'"')?;
        let key = sc.string_body()?;
        sc.byte(b':')?;
        if key == b"data" {
            if data.is_some() {
                return None;
            }
            sink.levels.clear();
            let mut payload = Payload::EMPTY;
            sc.payload(&mut payload, spec, Some(&mut *sink.levels))?;
            data = Some(payload);
            continue;
        }
        let value = sc.scalar()?;
        let cell = match key {
            b"ts" => &mut ts,
            b"cts" => &mut cts,
            b"type" => &mut kind,
            // A second topic: the general path keeps the last one.
            b"topic" => return None,
            _ => continue,
        };
        if *cell != Scalar::Absent {
            return None;
        }
        *cell = value;
    }
    if sc.pos != frame.len() {
        return None;
    }
    let data = data?;
    let event_kind = match kind {
        Scalar::Str(b"snapshot") => EventKind::Snapshot,
        Scalar::Str(b"delta") => EventKind::Depth,
        _ => return None,
    };
    if (data.get(Key::SmallB), data.get(Key::SmallA)) != (Scalar::Levels, Scalar::Levels) {
        return None;
    }
    let mut header = origin.header(id, event_kind);
    header.exch_ts = opt_ms_as_ns(ts)?;
    header.trans_ts = opt_ms_as_ns(cts)?;
    let u = data.uint(Key::U)?;
    header.first_id = u;
    header.last_id = u;
    header.seq = data.uint(Key::Seq)?;
    if u == 1 {
        header.flags.insert(EventFlags::RESET);
    }
    let n = emit_split(&mut header, sink.levels, sink.emit);
    match event_kind {
        EventKind::Depth => sink.counts.depth += 1,
        _ => sink.counts.snapshot += 1,
    }
    Some(Decoded::Events(n))
}
