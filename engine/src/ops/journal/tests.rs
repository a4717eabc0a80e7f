use std::time::Duration;

use pinion_core::{InstrumentId, Px, Qty};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderIntent, OrderSide, OrderStatus, OrderType, RejectReason,
    TimeInForce, VenueOrderId,
};

use super::frame::{self, FRAME_HEADER, MAGIC, scan};
use super::*;

fn order(id: u64, side: OrderSide, px: i64, qty: i64) -> OrderIntent {
    OrderIntent::new_limit(
        7,
        ClientOrderId(id),
        InstrumentId(0),
        side,
        Px(px),
        Qty(qty),
        OrderType::Limit,
        TimeInForce::Gtc,
        pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Entry),
    )
}

fn report(id: u64, status: OrderStatus, last: (i64, i64), cum: i64, leaves: i64) -> ExecReport {
    ExecReport {
        client_id: ClientOrderId(id),
        venue_id: VenueOrderId(900 + id),
        instrument: InstrumentId(0),
        side: OrderSide::Buy,
        status,
        last_px: Px(last.0),
        last_qty: Qty(last.1),
        cum_qty: Qty(cum),
        leaves_qty: Qty(leaves),
        maker: true,
        t0: 7,
        venue_ts: 1_700_000_000_000_000_000,
    }
}

/// One record of every kind and every status.
fn sample() -> Vec<Record> {
    let mut v = vec![
        Record::Session(Session {
            epoch: 1_733_400_000_000,
            started_unix_ns: 1_733_400_000_000_000_123,
        }),
        Record::Order(order(1 << 40 | 1, OrderSide::Buy, 6_000_000, 100)),
        Record::Order(OrderIntent::cancel(
            9,
            ClientOrderId(1 << 40 | 1 << 39 | 1),
            ClientOrderId(1 << 40 | 1),
            InstrumentId(0),
            OrderSide::Sell,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        )),
        Record::Position(PositionChange {
            instrument: InstrumentId(3),
            qty: Qty(-42),
            realized: -(1i128 << 90),
            fees: 12345,
            venue_ts: 99,
        }),
    ];
    for status in [
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
        OrderStatus::Rejected(RejectReason::NotConnected),
        OrderStatus::CancelRejected(RejectReason::UnknownOrder),
    ] {
        v.push(Record::Report(report(5, status, (6_000_001, 40), 40, 60)));
    }
    v.push(Record::Instrument(InstrumentKey {
        instrument: InstrumentId(3),
        key: u64::MAX - 7,
    }));
    v.push(Record::Operator(OperatorAction {
        user: -1_001_234_567_890,
        at_unix_ns: 1_733_400_000_000_000_456,
        kind: OperatorKind::Order,
        instrument: InstrumentId(3),
        client_id: ClientOrderId(4 << 40 | 1 << 37 | 2),
        target: 0,
        side: OrderSide::Sell,
        px: Px(6_000_100),
        qty: Qty(250),
        outcome: OperatorAction::REFUSED,
    }));
    v
}

#[test]
fn manual_ids_resume_in_their_own_range_and_operator_records_are_counted() {
    let manual = 1 << 40 | 1 << 37 | 9;
    let records = [
        Record::Order(order(1 << 40 | 3, OrderSide::Buy, 6_000_000, 100)),
        Record::Order(order(manual, OrderSide::Sell, 6_000_000, 100)),
        Record::Operator(OperatorAction::now(42, OperatorKind::Pause)),
    ];
    let r = Recovered::from_records(&records);
    let log = r.instrument(0).expect("instrument 0");
    assert_eq!(log.max_strategy_id, Some(1 << 40 | 3));
    assert_eq!(log.max_manual_id, Some(manual));
    assert_eq!(log.max_control_id, None);
    assert_eq!(r.operator_actions, 1);
    // A record of an unknown operator kind or outcome is refused, not guessed.
    let mut bytes = frame::encode(&records[2]).as_bytes().to_vec();
    let kind_at = FRAME_HEADER + 1 + 8 + 8;
    bytes[kind_at] = 99;
    assert!(frame::decode(&bytes[FRAME_HEADER..], 0).is_err());
}

fn bytes_of(records: &[Record]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for r in records {
        out.extend_from_slice(frame::encode(r).as_bytes());
    }
    out
}

#[test]
fn every_record_reads_back_as_written() {
    let records = sample();
    let bytes = bytes_of(&records);
    let s = scan(&bytes).expect("reads");
    assert_eq!(s.records, records);
    assert_eq!(s.valid_len, bytes.len() as u64);
    assert_eq!(s.torn, 0);
}

#[test]
fn a_torn_last_frame_is_cut_off_at_every_length() {
    let records = sample();
    let whole = bytes_of(&records);
    let last = frame::encode(records.last().expect("records"))
        .as_bytes()
        .len();
    let before = whole.len() - last;
    // Every cut inside the last frame: the frames before it read, the rest is torn.
    for cut in before + 1..whole.len() {
        let s = scan(&whole[..cut]).expect("a torn tail is not an error");
        assert_eq!(s.records, records[..records.len() - 1], "cut at {cut}");
        assert_eq!(s.valid_len, before as u64);
        assert_eq!(s.torn, (cut - before) as u64);
    }
    // A whole last frame with damaged bytes (a write that reached the disk in part).
    let mut damaged = whole.clone();
    let n = damaged.len();
    damaged[n - 3] ^= 0x5a;
    let s = scan(&damaged).expect("torn");
    assert_eq!(s.records.len(), records.len() - 1);
    assert_eq!(s.torn, last as u64);
    // Blocks allocated and never written read as zeros after the last frame.
    let mut zeros = whole.clone();
    zeros.extend_from_slice(&[0; 4096]);
    let s = scan(&zeros).expect("torn");
    assert_eq!(s.records, records);
    assert_eq!(s.torn, 4096);
}

#[test]
fn damage_in_the_middle_is_a_typed_error_naming_the_frame() {
    let records = sample();
    let whole = bytes_of(&records);
    let first = frame::encode(&records[0]).as_bytes().len();
    let second_at = MAGIC.len() + first;
    // A payload byte of the second frame.
    let mut bytes = whole.clone();
    bytes[second_at + FRAME_HEADER + 3] ^= 1;
    match scan(&bytes) {
        Err(JournalError::Corrupt { offset, .. }) => assert_eq!(offset, second_at as u64),
        other => panic!("{other:?}"),
    }
    // Its length.
    let mut bytes = whole.clone();
    bytes[second_at] = 200;
    assert!(matches!(
        scan(&bytes),
        Err(JournalError::Corrupt { offset, .. }) if offset == second_at as u64
    ));
    // A length that still fits, pointing into the next frame: the CRC covers the length.
    let mut bytes = whole;
    bytes[second_at] -= 1;
    assert!(matches!(scan(&bytes), Err(JournalError::Corrupt { .. })));
}

#[test]
fn a_file_that_is_not_a_journal_is_refused_and_a_torn_header_is_empty() {
    assert!(matches!(
        scan(b"SQLite format 3\0"),
        Err(JournalError::NotJournal)
    ));
    assert!(matches!(scan(b"PNX"), Err(JournalError::NotJournal)));
    let s = scan(&MAGIC[..5]).expect("a header cut short is an empty journal");
    assert!(s.records.is_empty());
    assert_eq!((s.valid_len, s.torn), (0, 5));
    assert!(scan(b"").expect("empty").records.is_empty());
}

#[test]
fn a_record_with_a_good_crc_but_unknown_content_is_a_bad_record() {
    // Kind 9, framed properly.
    let payload = [9u8, 0, 0];
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&payload);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&len);
    bytes.extend_from_slice(&h.finalize().to_le_bytes());
    bytes.extend_from_slice(&payload);
    assert!(matches!(
        scan(&bytes),
        Err(JournalError::BadRecord { offset: 8, .. })
    ));
}

/// `payload` framed by hand (length, CRC), as any pinion writes it.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    let mut bytes = len.to_vec();
    bytes.extend_from_slice(&h.finalize().to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The payload of an order as a pinion before reasons wrote it: kind 2, no reason bytes.
fn order_v1_payload(o: &OrderIntent) -> Vec<u8> {
    let mut p = vec![2u8];
    p.extend_from_slice(&o.t0.to_le_bytes());
    p.extend_from_slice(&o.client_id.0.to_le_bytes());
    p.extend_from_slice(&o.target.0.to_le_bytes());
    p.extend_from_slice(&o.px.0.to_le_bytes());
    p.extend_from_slice(&o.qty.0.to_le_bytes());
    p.extend_from_slice(&o.instrument.0.to_le_bytes());
    p.extend_from_slice(&[
        o.action as u8,
        o.side as u8,
        o.order_type as u8,
        o.tif as u8,
    ]);
    p
}

#[test]
fn an_order_journaled_before_reasons_reads_with_an_unknown_reason_beside_new_ones() {
    let old = order(11, OrderSide::Sell, 6_100_000, 30);
    let new = Record::Order(order(12, OrderSide::Buy, 6_000_000, 30));
    // An old journal, appended to by this pinion: both frames read, in order.
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&framed(&order_v1_payload(&old)));
    bytes.extend_from_slice(frame::encode(&new).as_bytes());
    let s = scan(&bytes).expect("an old order frame reads");
    let want_old = OrderIntent {
        reason: pinion_strategy::OrderReason::UNKNOWN,
        ..old
    };
    assert_eq!(s.records, vec![Record::Order(want_old), new]);
    let Record::Order(o) = &s.records[0] else {
        unreachable!()
    };
    assert!(!o.reason.is_known());
    // The new frame is the old one and two bytes: instance and code.
    let new_len = frame::encode(&new).as_bytes().len();
    assert_eq!(new_len, FRAME_HEADER + order_v1_payload(&old).len() + 2);
}

#[test]
fn an_order_frame_with_a_reason_code_this_pinion_does_not_know_is_a_bad_record() {
    let mut payload = frame::encode(&Record::Order(order(3, OrderSide::Buy, 1, 1))).as_bytes()
        [FRAME_HEADER..]
        .to_vec();
    *payload.last_mut().expect("a payload") = 200;
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&framed(&payload));
    match scan(&bytes) {
        Err(JournalError::BadRecord { offset: 8, why }) => assert_eq!(why, "order reason"),
        other => panic!("expected a bad record, got {other:?}"),
    }
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pinion-journal-{tag}-{}", std::process::id()))
}

#[test]
fn the_writer_appends_across_sessions_and_a_torn_tail_is_cut_on_open() {
    let path = temp_path("writer");
    let _ = std::fs::remove_file(&path);
    let settings = JournalSettings {
        path: path.clone(),
        fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
        capacity: 64,
    };
    let records = sample();
    let (journal, mut tx, recovered) = open(&settings).expect("opens");
    assert!(!recovered.is_resumed());
    for r in &records {
        assert!(tx.push(*r));
    }
    let summary = journal.finish().expect("finishes");
    assert_eq!(summary.records, records.len() as u64);
    assert!(summary.syncs >= 1);
    // A kill in the middle of the next write.
    let mut bytes = std::fs::read(&path).expect("reads");
    let partial = frame::encode(&records[1]);
    bytes.extend_from_slice(&partial.as_bytes()[..20]);
    std::fs::write(&path, &bytes).expect("writes");
    let (journal, mut tx, recovered) = open(&settings).expect("reopens");
    assert_eq!(recovered.torn, 20);
    assert_eq!(recovered.sessions, 1);
    assert_eq!(recovered.records, records.len() as u64);
    assert!(tx.push(records[1]));
    journal.finish().expect("finishes");
    let s = scan(&std::fs::read(&path).expect("reads")).expect("whole");
    assert_eq!(s.torn, 0);
    assert_eq!(s.records.len(), records.len() + 1);
    assert_eq!(s.records[records.len()], records[1]);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_full_ring_refuses_and_counts_never_blocks() {
    let path = temp_path("full");
    let _ = std::fs::remove_file(&path);
    let settings = JournalSettings {
        path: path.clone(),
        fsync: FsyncPolicy::Never,
        capacity: 16,
    };
    let (journal, mut tx, _) = open(&settings).expect("opens");
    let r = sample()[1];
    let mut refused = 0;
    for _ in 0..100_000 {
        if !tx.push(r) {
            refused += 1;
        }
    }
    assert_eq!(tx.overflow(), refused);
    let summary = journal.finish().expect("finishes");
    assert_eq!(summary.overflow, refused);
    assert_eq!(summary.records + refused, 100_000);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_state_rebuilt_knows_open_orders_fills_and_ids() {
    let base = 1u64 << 40;
    let records = vec![
        Record::Session(Session {
            epoch: 77,
            started_unix_ns: 1,
        }),
        Record::Order(order(base + 1, OrderSide::Buy, 100, 10)),
        Record::Report(report(base + 1, OrderStatus::New, (0, 0), 0, 10)),
        Record::Report(report(
            base + 1,
            OrderStatus::PartiallyFilled,
            (100, 4),
            4,
            6,
        )),
        Record::Order(order(base + 2, OrderSide::Buy, 101, 5)),
        Record::Report(report(base + 2, OrderStatus::Filled, (101, 5), 5, 0)),
        Record::Order(order(base + 3, OrderSide::Sell, 102, 5)),
        Record::Order(OrderIntent::cancel(
            3,
            ClientOrderId(base | 1 << 39),
            ClientOrderId(base + 2),
            InstrumentId(0),
            OrderSide::Buy,
            pinion_strategy::OrderReason::new(0, pinion_strategy::ReasonCode::Requote),
        )),
        Record::Report(report(
            base + 2,
            OrderStatus::CancelRejected(RejectReason::UnknownOrder),
            (0, 0),
            5,
            0,
        )),
        Record::Session(Session {
            epoch: 78,
            started_unix_ns: 2,
        }),
    ];
    let r = Recovered::from_records(&records);
    assert_eq!(r.epoch, Some(77), "the first session's epoch is kept");
    assert_eq!(r.sessions, 2);
    let log = r.instrument(0).expect("instrument 0");
    assert_eq!(log.fills.len(), 2);
    assert_eq!(log.max_strategy_id, Some(base + 3));
    assert_eq!(log.max_control_id, Some(base | 1 << 39));
    let open: Vec<_> = log.open_orders().map(|o| o.client_id.0).collect();
    assert_eq!(open, vec![base + 1, base + 3]);
    let o1 = log.orders[&(base + 1)];
    assert_eq!((o1.cum_qty, o1.venue_id), (Qty(4), Some(901 + base)));
    assert_eq!(log.orders[&(base + 3)].status, None, "never answered");
    assert_eq!(
        log.orders[&(base + 2)].status,
        Some(OrderStatus::Filled),
        "a refused cancel leaves the order as it was"
    );
    assert_eq!(
        resume_from(base, log.max_strategy_id),
        base + 4 + RESUME_GAP
    );
    assert_eq!(resume_from(base, None), base + RESUME_GAP);
}

mod reader_properties {
    use proptest::prelude::*;

    use super::*;

    /// The reader's contract on any bytes (what `fuzz/fuzz_targets/journal_read.rs` checks
    /// under libFuzzer): it never panics; what it accepts re-encodes to exactly the bytes it
    /// kept, and kept and torn bytes make up the whole input.
    fn check(bytes: &[u8]) {
        let Ok(s) = scan(bytes) else { return };
        assert_eq!(s.valid_len + s.torn, bytes.len() as u64);
        if s.valid_len > 0 {
            assert_eq!(bytes_of(&s.records)[..], bytes[..s.valid_len as usize]);
        } else {
            assert!(s.records.is_empty());
        }
        let _ = Recovered::from_scan(&s);
    }

    proptest! {
        #[test]
        fn any_bytes_after_the_magic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            check(&bytes);
        }

        #[test]
        fn a_journal_with_bytes_flipped_cut_or_appended(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
            extra in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = bytes_of(&sample());
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x;
            }
            let keep = cut % (bytes.len() + 1);
            bytes.truncate(keep);
            bytes.extend_from_slice(&extra);
            check(&bytes);
        }
    }
}

#[test]
fn a_record_fits_a_small_ring_slot() {
    // The ring holds `capacity` of these: 65 536 slots of at most 112 bytes is 7 MiB.
    assert!(std::mem::size_of::<Record>() <= 112);
    assert!(frame::encode(&sample()[4]).as_bytes().len() <= FRAME_HEADER + frame::MAX_PAYLOAD);
}

#[test]
fn a_second_session_on_an_open_journal_is_refused_and_the_first_keeps_writing() {
    let path = temp_path("locked");
    let _ = std::fs::remove_file(&path);
    let settings = JournalSettings {
        path: path.clone(),
        fsync: FsyncPolicy::Never,
        capacity: 16,
    };
    let (journal, mut tx, _) = open(&settings).expect("opens");
    match open(&settings) {
        Err(JournalError::Locked { path: p }) => assert_eq!(p, path),
        other => panic!("a second open must be refused as locked: {other:?}"),
    }
    assert!(tx.push(sample()[1]));
    assert_eq!(journal.finish().expect("finishes").records, 1);
    // Closed: the lock is gone with the file.
    let (journal, _, recovered) = open(&settings).expect("reopens once closed");
    assert_eq!(recovered.records, 1);
    journal.finish().expect("finishes");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_journal_read_against_another_symbol_list_names_the_instrument_that_moved() {
    use pinion_core::{InstrumentSpec, Venue};
    let spec = |symbol: &str, venue: Venue| {
        InstrumentSpec::new(venue, symbol, "0.01", "0.00001").expect("spec")
    };
    let (btc, eth) = (
        spec("BTCUSDT", Venue::BinanceSpot),
        spec("ETHUSDT", Venue::BinanceSpot),
    );
    assert_ne!(instrument_key(&btc), instrument_key(&eth));
    assert_ne!(
        instrument_key(&btc),
        instrument_key(&spec("BTCUSDT", Venue::BinanceSpotTestnet))
    );
    let mut finer = btc.clone();
    finer.price_decimals = 3;
    assert_ne!(instrument_key(&btc), instrument_key(&finer));
    let records = vec![
        Record::Session(Session {
            epoch: 1,
            started_unix_ns: 1,
        }),
        Record::Instrument(InstrumentKey {
            instrument: InstrumentId(0),
            key: instrument_key(&btc),
        }),
        Record::Instrument(InstrumentKey {
            instrument: InstrumentId(1),
            key: instrument_key(&eth),
        }),
        Record::Order(order(1, OrderSide::Buy, 100, 10)),
    ];
    let r = Recovered::from_records(&records);
    let config =
        |list: Vec<InstrumentSpec>| move |id: u16| list.get(usize::from(id)).map(instrument_key);
    assert_eq!(
        r.moved_instrument(config(vec![btc.clone(), eth.clone()])),
        None
    );
    // Swapped: instrument 0's orders would be read as ETH's.
    assert_eq!(
        r.moved_instrument(config(vec![eth.clone(), btc.clone()])),
        Some(0)
    );
    // ETH dropped: it never traded, so nothing of it is lost.
    assert_eq!(r.moved_instrument(config(vec![btc.clone()])), None);
    // BTC dropped while it has an open order: refused.
    assert_eq!(r.moved_instrument(config(vec![])), Some(0));
    // A journal from before sessions recorded their instruments is not checked.
    assert_eq!(
        Recovered::from_records(&records[3..]).moved_instrument(config(vec![eth.clone()])),
        None
    );
}
