//! Frames built by hand, byte by byte from `schema/spot_3_5.xml`, decoded and checked field by
//! field; malformed frames refused with the error that says what was wrong.

use pinion_sbe_spot::spot::*;
use pinion_sbe_spot::{Decimal, SbeError, decode};

/// A little-endian byte writer for building frames.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn i8(self, v: i8) -> Self {
        self.u8(v as u8)
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str8(self, s: &str) -> Self {
        self.u8(s.len() as u8).bytes(s.as_bytes())
    }
    fn str16(self, s: &str) -> Self {
        self.u16(s.len() as u16).bytes(s.as_bytes())
    }
    fn header(self, block_length: u16, template: u16, version: u16) -> Self {
        self.u16(block_length).u16(template).u16(3).u16(version)
    }
}

const NULL_I64: i64 = i64::MIN;
const NULL_U8: u8 = u8::MAX;

fn error_response() -> Vec<u8> {
    W::default()
        .header(18, 100, 5)
        .i16(-2010)
        .i64(1_780_000_000_123_456)
        .i64(NULL_I64)
        .str16("Account has insufficient balance for requested action.")
        .u32(0)
        .0
}

fn ws_response(result: &[u8]) -> Vec<u8> {
    W::default()
        .header(3, 50, 5)
        .u8(0)
        .u16(400)
        // rateLimits: groupSize16Encoding, two entries of 19 bytes.
        .u16(19)
        .u16(2)
        .u8(2) // RequestWeight
        .u8(1) // Minute
        .u8(1)
        .i64(6000)
        .i64(12)
        .u8(3) // Orders
        .u8(0) // Second
        .u8(10)
        .i64(100)
        .i64(1)
        .str8("req-7")
        .u32(result.len() as u32)
        .bytes(result)
        .0
}

#[test]
fn a_websocket_response_wrapping_an_error() {
    let inner = error_response();
    let frame = ws_response(&inner);
    let ws = WebSocketResponseView::decode(&frame).expect("decodes");
    assert_eq!(ws.sbe_schema_id_version_deprecated(), BoolEnum::False);
    assert_eq!(ws.status(), 400);
    assert_eq!(ws.acting_version(), 5);
    let limits: Vec<_> = ws.rate_limits().collect::<Result<_, _>>().expect("entries");
    assert_eq!(limits.len(), 2);
    assert_eq!(limits[0].rate_limit_type(), RateLimitType::RequestWeight);
    assert_eq!(limits[0].interval(), RateLimitInterval::Minute);
    assert_eq!(limits[0].interval_num(), 1);
    assert_eq!(limits[0].rate_limit(), 6000);
    assert_eq!(limits[0].current(), 12);
    assert_eq!(limits[1].rate_limit_type(), RateLimitType::Orders);
    assert_eq!(limits[1].interval(), RateLimitInterval::Second);
    assert_eq!(limits[1].interval_num(), 10);
    assert_eq!((limits[1].rate_limit(), limits[1].current()), (100, 1));
    assert_eq!(ws.id(), Ok("req-7"));
    assert_eq!(ws.result(), &inner[..]);
    assert_eq!(ws.end(), frame.len());

    let Ok(Message::ErrorResponse(err)) = decode(ws.result()) else {
        panic!("an ErrorResponse inside")
    };
    assert_eq!(err.code(), -2010);
    assert_eq!(err.server_time(), Some(1_780_000_000_123_456));
    assert_eq!(err.retry_after(), None);
    assert_eq!(
        err.msg(),
        Ok("Account has insufficient balance for requested action.")
    );
    assert_eq!(err.data(), None);
}

/// `NewOrderResultResponse` at version `version`: the fields that version has, then
/// `extra` unknown bytes (a newer version's fields), then the data.
fn new_order_result(version: u16, extra: usize) -> Vec<u8> {
    let mut w = W::default()
        .i8(-2)
        .i8(-5)
        .i64(12_345_678)
        .i64(NULL_I64)
        .i64(1_780_000_000_000_001)
        .i64(6_512_345) // 65123.45
        .i64(150_000) // 1.5
        .i64(50_000)
        .i64(3_256_172)
        .u8(1) // PartiallyFilled
        .u8(0) // Gtc
        .u8(1) // Limit
        .u8(0) // Buy
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(1_780_000_000_000_001)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i32(i32::MIN)
        .u8(0)
        .u8(1)
        .u8(2) // ExpireTaker
        .i64(NULL_I64)
        .i64(0)
        .u8(0)
        .i64(0);
    if version >= 1 {
        w = w.u8(NULL_U8).u8(NULL_U8).u8(NULL_U8).i64(NULL_I64);
    }
    if version >= 3 {
        w = w.u8(NULL_U8);
    }
    w = w.bytes(&vec![0xAB; extra]);
    let block = w.0.len() as u16;
    let body = w.str8("BTCUSDT").str8("pinion-1-42").0;
    let mut frame = W::default().header(block, 301, version).0;
    frame.extend_from_slice(&body);
    frame
}

#[test]
fn a_new_order_result_field_by_field() {
    let frame = new_order_result(5, 0);
    assert_eq!(
        frame.len(),
        8 + usize::from(NewOrderResultResponseView::BLOCK_LENGTH) + 8 + 12
    );
    let Ok(Message::NewOrderResultResponse(o)) = decode(&frame) else {
        panic!("decodes")
    };
    assert_eq!(o.price_exponent(), -2);
    assert_eq!(o.qty_exponent(), -5);
    assert_eq!(o.order_id(), 12_345_678);
    assert_eq!(o.order_list_id(), None);
    assert_eq!(o.transact_time(), 1_780_000_000_000_001);
    assert_eq!(
        o.price(),
        Decimal {
            mantissa: 6_512_345,
            exponent: -2
        }
    );
    assert_eq!(
        o.orig_qty(),
        Decimal {
            mantissa: 150_000,
            exponent: -5
        }
    );
    assert_eq!(
        o.executed_qty(),
        Decimal {
            mantissa: 50_000,
            exponent: -5
        }
    );
    assert_eq!(
        o.cummulative_quote_qty(),
        Decimal {
            mantissa: 3_256_172,
            exponent: -2
        }
    );
    assert_eq!(o.status(), OrderStatus::PartiallyFilled);
    assert_eq!(o.time_in_force(), TimeInForce::Gtc);
    assert_eq!(o.order_type(), OrderType::Limit);
    assert_eq!(o.side(), OrderSide::Buy);
    assert_eq!(o.stop_price(), None);
    assert_eq!(o.trailing_delta(), None);
    assert_eq!(o.working_time(), Some(1_780_000_000_000_001));
    assert_eq!(o.strategy_type(), None);
    assert_eq!(
        o.self_trade_prevention_mode(),
        SelfTradePreventionMode::ExpireTaker
    );
    assert_eq!(o.used_sor(), BoolEnum::False);
    assert_eq!(o.peg_price_type(), None);
    assert_eq!(o.pegged_price(), None);
    assert_eq!(o.expiry_reason(), None);
    assert_eq!(o.symbol(), Ok("BTCUSDT"));
    assert_eq!(o.client_order_id(), Ok("pinion-1-42"));
}

#[test]
fn an_older_version_reads_its_later_fields_as_none() {
    let frame = new_order_result(0, 0);
    let o = NewOrderResultResponseView::decode(&frame).expect("version 0 decodes");
    assert_eq!(o.acting_version(), 0);
    assert_eq!(o.order_id(), 12_345_678);
    assert_eq!(o.peg_offset_value(), None);
    assert_eq!(o.expiry_reason(), None);
    assert_eq!(o.symbol(), Ok("BTCUSDT"));
    // Version 5 with version 0's block is short.
    let mut short = frame.clone();
    short[6] = 5;
    assert!(matches!(
        NewOrderResultResponseView::decode(&short),
        Err(SbeError::ShortBlock {
            what: "NewOrderResultResponse",
            at: 8,
            seen: 142,
            needed: 154,
            version: 5
        })
    ));
}

#[test]
fn a_newer_version_with_a_longer_block_is_read_past_its_unknown_fields() {
    let frame = new_order_result(6, 7);
    let o = NewOrderResultResponseView::decode(&frame).expect("version 6 decodes");
    assert_eq!(o.order_id(), 12_345_678);
    assert_eq!(o.symbol(), Ok("BTCUSDT"));
    assert_eq!(o.client_order_id(), Ok("pinion-1-42"));
}

#[test]
fn a_full_response_with_fills_of_a_longer_entry_block() {
    // fills entries: 42 known bytes + 3 unknown (a newer version's), nested data after each.
    let fill = |w: W, price: i64, qty: i64, trade: i64, asset: &str| {
        w.i8(-8)
            .u8(1)
            .i64(price)
            .i64(qty)
            .i64(12_000)
            .i64(trade)
            .i64(NULL_I64)
            .bytes(&[9, 9, 9])
            .str8(asset)
    };
    let mut w = W::default()
        .i8(-2)
        .i8(-5)
        .i64(77)
        .i64(NULL_I64)
        .i64(5)
        .i64(100)
        .i64(200)
        .i64(200)
        .i64(400)
        .u8(2)
        .u8(1)
        .u8(1)
        .u8(1);
    for _ in 0..6 {
        w = w.i64(NULL_I64);
    }
    w = w
        .i32(i32::MIN)
        .u8(0)
        .u8(1)
        .u8(1)
        .i64(NULL_I64)
        .i64(0)
        .u8(1)
        .i64(0)
        .u8(NULL_U8)
        .u8(NULL_U8)
        .u8(NULL_U8)
        .i64(NULL_I64)
        .u8(NULL_U8);
    let block = w.0.len() as u16;
    w = w.u16(45).u32(2);
    w = fill(w, 101, 150, 900, "BNB");
    w = fill(w, 100, 50, 901, "");
    w = w.u16(41).u32(0).str8("ETHBTC").str8("c-1");
    let mut frame = W::default().header(block, 302, 5).0;
    frame.extend_from_slice(&w.0);

    let o = NewOrderFullResponseView::decode(&frame).expect("decodes");
    assert_eq!(o.status(), OrderStatus::Filled);
    assert_eq!(o.side(), OrderSide::Sell);
    assert_eq!(o.used_sor(), BoolEnum::True);
    let fills: Vec<_> = o.fills().collect::<Result<_, _>>().expect("fills");
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[0].match_type(), MatchType::from_raw(1));
    // The price's exponent is the message's; the commission's is the entry's own.
    assert_eq!((fills[0].price(), fills[0].qty()), (101, 150));
    assert_eq!(
        fills[0].commission(),
        Decimal {
            mantissa: 12_000,
            exponent: -8
        }
    );
    assert_eq!(fills[0].trade_id(), Some(900));
    assert_eq!(fills[0].alloc_id(), None);
    assert_eq!(fills[0].commission_asset(), Ok(Some("BNB")));
    assert_eq!(fills[1].trade_id(), Some(901));
    assert_eq!(fills[1].commission_asset(), Ok(None));
    assert_eq!(o.prevented_matches().count(), 0);
    assert_eq!(o.symbol(), Ok("ETHBTC"));
    assert_eq!(o.client_order_id(), Ok("c-1"));
}

fn execution_report() -> Vec<u8> {
    let mut w = W::default()
        .i64(1_780_000_000_000_010)
        .i64(1_780_000_000_000_009)
        .i8(-2)
        .i8(-5)
        .i8(-8)
        .i64(1_780_000_000_000_000)
        .i64(1_780_000_000_000_000)
        .i64(4242)
        .i64(NULL_I64)
        .i64(100_000)
        .i64(6_500_000)
        .i64(0)
        .i64(0)
        .i64(0)
        .u8(1) // Limit
        .u8(1) // Sell
        .u8(0) // Gtc
        .u8(4) // Trade
        .u8(1) // PartiallyFilled
        .i64(555)
        .i64(66)
        .i64(40_000)
        .i64(2_600_000)
        .i64(40_000)
        .i64(6_500_000)
        .i64(2_600_000)
        .i64(2_600)
        .u8(1)
        .u8(1)
        .u8(1)
        .u8(NULL_U8)
        .u8(1)
        .u8(0)
        .u8(1)
        .u8(0)
        .i64(NULL_I64)
        .u64(u64::MAX)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(0)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .i32(i32::MIN)
        .i64(NULL_I64)
        .i64(NULL_I64)
        .u16(3) // subscriptionId
        .u8(NULL_U8)
        .u8(NULL_U8)
        .u8(NULL_U8)
        .i64(NULL_I64)
        .u8(NULL_U8);
    let block = w.0.len() as u16;
    w = w
        .str8("BTCUSDT")
        .str8("pinion-9")
        .str8("")
        .str8("USDT")
        .str8("")
        .str8("");
    let mut frame = W::default().header(block, 603, 5).0;
    frame.extend_from_slice(&w.0);
    frame
}

#[test]
fn an_execution_report_field_by_field() {
    let frame = execution_report();
    let Ok(Message::ExecutionReportEvent(e)) = decode(&frame) else {
        panic!("decodes")
    };
    assert_eq!(e.event_time(), 1_780_000_000_000_010);
    assert_eq!(e.transact_time(), 1_780_000_000_000_009);
    assert_eq!(e.order_creation_time(), Some(1_780_000_000_000_000));
    assert_eq!(e.order_id(), 4242);
    assert_eq!(e.order_list_id(), None);
    assert_eq!(
        e.orig_qty(),
        Decimal {
            mantissa: 100_000,
            exponent: -5
        }
    );
    assert_eq!(
        e.price(),
        Decimal {
            mantissa: 6_500_000,
            exponent: -2
        }
    );
    assert_eq!(e.order_type(), OrderType::Limit);
    assert_eq!(e.side(), OrderSide::Sell);
    assert_eq!(e.time_in_force(), TimeInForce::Gtc);
    assert_eq!(e.execution_type(), ExecutionType::Trade);
    assert_eq!(e.order_status(), OrderStatus::PartiallyFilled);
    assert_eq!(e.trade_id(), Some(555));
    assert_eq!(e.execution_id(), 66);
    assert_eq!(
        e.executed_qty(),
        Decimal {
            mantissa: 40_000,
            exponent: -5
        }
    );
    assert_eq!(
        e.last_qty(),
        Decimal {
            mantissa: 40_000,
            exponent: -5
        }
    );
    assert_eq!(
        e.last_price(),
        Decimal {
            mantissa: 6_500_000,
            exponent: -2
        }
    );
    assert_eq!(
        e.commission(),
        Decimal {
            mantissa: 2_600,
            exponent: -8
        }
    );
    assert_eq!(e.is_working(), BoolEnum::True);
    assert_eq!(e.is_maker(), BoolEnum::True);
    assert_eq!(e.trailing_delta(), None);
    assert_eq!(
        e.prevented_qty(),
        Decimal {
            mantissa: 0,
            exponent: -5
        }
    );
    assert_eq!(e.last_prevented_qty(), None);
    assert_eq!(e.subscription_id(), Some(3));
    assert_eq!(e.peg_price_type(), None);
    assert_eq!(e.expiry_reason(), None);
    assert_eq!(e.symbol(), Ok("BTCUSDT"));
    assert_eq!(e.client_order_id(), Ok("pinion-9"));
    assert_eq!(e.orig_client_order_id(), Ok(None));
    assert_eq!(e.commission_asset(), Ok(Some("USDT")));
    assert_eq!(e.reject_reason(), Ok(None));
    assert_eq!(e.counter_symbol(), Ok(None));
    assert_eq!(e.end(), frame.len());
}

#[test]
fn balance_update_and_stream_terminated() {
    let frame = W::default()
        .header(27, 601, 5)
        .i64(10)
        .i64(NULL_I64)
        .i8(-8)
        .i64(-150_000_000)
        .u16(0)
        .str8("BNB")
        .0;
    let b = BalanceUpdateEventView::decode(&frame).expect("decodes");
    assert_eq!(b.event_time(), 10);
    assert_eq!(b.clear_time(), None);
    assert_eq!(
        b.free_qty_delta(),
        Decimal {
            mantissa: -150_000_000,
            exponent: -8
        }
    );
    assert_eq!(b.subscription_id(), Some(0));
    assert_eq!(b.asset(), Ok("BNB"));

    let frame = W::default().header(10, 602, 5).i64(11).u16(u16::MAX).0;
    let t = EventStreamTerminatedEventView::decode(&frame).expect("decodes");
    assert_eq!(t.event_time(), 11);
    assert_eq!(t.subscription_id(), None);
    // Version 0 has no subscriptionId: an 8-byte block is whole, and the field reads as None.
    let frame = W::default().header(8, 602, 0).i64(12).0;
    let t = EventStreamTerminatedEventView::decode(&frame).expect("version 0 decodes");
    assert_eq!((t.event_time(), t.subscription_id()), (12, None));
}

#[test]
fn enums_keep_values_the_schema_does_not_name() {
    assert_eq!(OrderSide::from_raw(254), OrderSide::NonRepresentable);
    assert_eq!(OrderSide::from_raw(7), OrderSide::Unrecognised(7));
    assert_eq!(OrderSide::Unrecognised(7).to_raw(), 7);
    assert_eq!(ExecutionType::from_raw(253), ExecutionType::Unknown);
    let set = OrderTypes(0b101);
    assert!(set.has_market() && !set.has_limit() && set.has_stop_loss());
}

#[test]
fn malformed_frames_are_typed_errors() {
    assert!(matches!(
        decode(&[1, 2, 3]),
        Err(SbeError::Short {
            what: "message header",
            start: 0,
            end: 8,
            len: 3
        })
    ));

    let mut wrong_schema = error_response();
    wrong_schema[4] = 2;
    assert_eq!(
        decode(&wrong_schema).unwrap_err(),
        SbeError::WrongSchema { seen: 2 }
    );

    let unknown = W::default().header(0, 4242, 5).0;
    assert_eq!(
        decode(&unknown).unwrap_err(),
        SbeError::UnknownTemplate { seen: 4242 }
    );
    assert_eq!(
        WebSocketResponseView::decode(&error_response()).unwrap_err(),
        SbeError::WrongTemplate {
            seen: 100,
            expected: 50
        }
    );

    // A group that declares more entries than the frame holds.
    let mut frame = ws_response(&error_response());
    frame[8 + 3 + 2] = 200;
    assert!(matches!(
        decode(&frame),
        Err(SbeError::GroupTooLong {
            what: "WebSocketResponse.rateLimits",
            at: 11,
            count: 200,
            ..
        })
    ));

    // A group entry block shorter than its fields.
    let mut frame = ws_response(&error_response());
    frame[8 + 3] = 18;
    assert!(matches!(
        decode(&frame),
        Err(SbeError::ShortBlock {
            what: "WebSocketResponse.rateLimits",
            seen: 18,
            needed: 19,
            ..
        })
    ));

    // A root block shorter than its fields.
    let mut frame = error_response();
    frame[0] = 17;
    assert!(matches!(
        decode(&frame),
        Err(SbeError::ShortBlock {
            what: "ErrorResponse",
            at: 8,
            seen: 17,
            needed: 18,
            version: 5
        })
    ));

    // A string that is not UTF-8 decodes as a view; the accessor says where.
    let frame = W::default()
        .header(27, 601, 5)
        .i64(1)
        .i64(1)
        .i8(0)
        .i64(0)
        .u16(0)
        .u8(2)
        .bytes(&[0xff, 0xfe])
        .0;
    let b = BalanceUpdateEventView::decode(&frame).expect("structure is sound");
    assert_eq!(
        b.asset(),
        Err(SbeError::NotUtf8 {
            what: "BalanceUpdateEvent.asset",
            at: 35
        })
    );
}

#[test]
fn every_cut_of_a_golden_frame_is_an_error() {
    for frame in [
        ws_response(&error_response()),
        new_order_result(5, 0),
        execution_report(),
    ] {
        assert!(decode(&frame).is_ok());
        for cut in 0..frame.len() {
            assert!(
                decode(&frame[..cut]).is_err(),
                "cut at {cut} of {} decoded",
                frame.len()
            );
        }
    }
}
