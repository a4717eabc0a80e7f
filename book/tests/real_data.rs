//! The real recordings, replayed through reader → decoder → sync machine → book.
//!
//! For every Binance and Bybit recording in `shared/data`:
//! - no gap, no crossed book, no truncated message; every instrument ends synced;
//! - after every committed message the array book equals the `BTreeMap` reference driven by the
//!   same events, level for level;
//! - wherever a `bookTicker` carries the `u` of an applied depth message, its best bid and ask
//!   (price and quantity) equal the book's right after that message, exactly — the exchange's
//!   own check of the sync. (Drained buffered messages are applied inside the snapshot's
//!   commit, so the books are compared after the snapshot rather than after each of them.)
//!
//! Then faults are injected into the real depth streams — a message dropped, duplicated,
//! reordered, cut short — and each must be detected: duplicates and stale messages ignored with
//! the book unharmed, gaps and truncations sending the machine back to awaiting a snapshot, and
//! the book never again claiming to be synced without one.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;

use pinion_book::{
    BookConfig, BookLevels, BookSync, OrderBook, ReferenceBook, ResyncReason, SequenceRule,
    SyncCounters, SyncOutcome, SyncState, TickerCheck, TickerOutcome,
};
use pinion_core::{
    BookTop, ConnId, EventKind, InstrumentId, InstrumentSpec, Instruments, Level, MarketEvent, Px,
    Qty, RecordKind, Side, Venue,
};
use pinion_feed::exchange_info::{binance_exchange_info, load_instruments_from_source};
use pinion_feed::parse::{ConnCtx, Decoded, Decoder};
use pinion_feed::source;
use pinion_feed::source::cryptofeed::parse_http_line;
use pinion_testkit::data;

/// What a recording yields, in order: events, and connection (re)opens.
// Nearly every item is an event; boxing them to shrink the rare reconnect would only add an
// allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
enum Item {
    Event(MarketEvent),
    Reconnect(ConnId),
}

/// The instruments a recording needs: from the exchange's responses where the recording has
/// them, else the real BTCUSDT filters of the day.
fn instruments(path: &Path) -> Instruments {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut reg = Instruments::new();
    // Binance Spot book quantities are written with the base asset's 8 decimals, finer than the
    // lot step (three updates in the BTCUSDT capture carry `25.42618900`), so the book's
    // quantity scale is 8 decimals.
    if name.starts_with("spot-btcusdt") {
        reg.add(InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00000001").unwrap())
            .unwrap();
    } else if name.starts_with("usdm-btcusdt") {
        reg.add(InstrumentSpec::new(Venue::BinanceUsdm, "BTCUSDT", "0.10", "0.001").unwrap())
            .unwrap();
    } else if name.starts_with("spot-multi") {
        let info = data::require("binance/spot-exchangeinfo-20211012.json.gz")
            .expect("exchangeInfo beside the multi-symbol capture");
        let file = std::fs::File::open(info).unwrap();
        let mut line = Vec::new();
        BufReader::new(flate2::read::GzDecoder::new(file))
            .read_until(b'\n', &mut line)
            .unwrap();
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let body = parse_http_line(text).unwrap().body.to_vec();
        for spec in binance_exchange_info(&body, Venue::BinanceSpot).unwrap() {
            if !["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"].contains(&spec.symbol.as_str()) {
                continue;
            }
            // The NKNUSDT snapshot holds 34 levels on a 0.00001 grid, finer than the day's
            // 0.0001 tick (orders resting from before a tick change): the book's grid must be
            // the finer one or the real book cannot be represented.
            let tick = if spec.symbol.as_str() == "NKNUSDT" {
                "0.00001".to_owned()
            } else {
                spec.tick.display(spec.price_decimals).to_string()
            };
            let s = InstrumentSpec::new(spec.venue, &spec.symbol, &tick, "0.00000001");
            reg.add(s.unwrap()).unwrap();
        }
    } else {
        let mut src = source::open(path).unwrap();
        load_instruments_from_source(src.as_mut(), &mut reg).unwrap();
    }
    reg
}

/// Reads and decodes a whole recording.
fn decode(path: &Path) -> (Vec<Item>, Instruments) {
    let reg = instruments(path);
    let single = (reg.len() == 1).then_some(InstrumentId(0));
    let mut dec = Decoder::new(reg.clone());
    let mut src = source::open(path).unwrap();
    let mut items = Vec::new();
    let (mut meta, mut payload) = (Vec::new(), Vec::new());
    loop {
        let (t_recv, conn, kind) = match src.next_record() {
            Ok(Some(rec)) => {
                meta.clear();
                meta.extend_from_slice(rec.meta);
                payload.clear();
                payload.extend_from_slice(rec.payload);
                (rec.t_recv, rec.conn, rec.kind)
            }
            Ok(None) => break,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        if kind == RecordKind::Connect {
            items.push(Item::Reconnect(conn));
            continue;
        }
        let Some(venue) = src
            .connections()
            .iter()
            .find(|c| c.id == conn)
            .and_then(|c| c.venue)
        else {
            continue;
        };
        let ctx = ConnCtx {
            venue,
            default_instrument: single,
        };
        let rec = pinion_core::RawRecord::new(t_recv, conn, kind, &meta, &payload);
        let res = dec.decode(&ctx, &rec, t_recv, |e| items.push(Item::Event(*e)));
        assert!(
            matches!(res, Ok(Decoded::Events(_) | Decoded::Skipped(_))),
            "{}: {res:?}",
            path.display()
        );
    }
    (items, reg)
}

/// One instrument's two books, driven by the same events, and what was seen.
struct Pair {
    arr: BookSync<OrderBook>,
    reference: BookSync<ReferenceBook>,
    conn: Option<ConnId>,
    committed: u64,
    /// Tickers ahead of the book: Binance Spot's bookTicker is real-time while its depth
    /// stream is batched every 100 ms, so a ticker usually arrives before the depth message
    /// that ends at its `u`. They are compared when that message is applied.
    pending: VecDeque<MarketEvent>,
    ticker_match: u64,
    ticker_other: u64,
    /// A third machine that also takes the tickers ([`BookSync::on_ticker`]), as the engine's
    /// book stage does: its depth outcomes must equal the others', and every ticker ahead of
    /// the book must top its snapshot.
    live: BookSync<OrderBook>,
}

impl Pair {
    /// Compares a ticker with the book when their ids meet; panics on a disagreement.
    fn check(&mut self, relative: &str, ev: &MarketEvent) {
        match self.arr.check_ticker(ev) {
            TickerCheck::Match => self.ticker_match += 1,
            TickerCheck::NotComparable => self.ticker_other += 1,
            m @ TickerCheck::Mismatch { .. } => {
                panic!("{relative}: ticker u={} disagrees: {m:?}", ev.last_id)
            }
        }
    }

    /// Checks the pending tickers the book has caught up with.
    fn check_pending(&mut self, relative: &str) {
        while let Some(t) = self.pending.front().copied() {
            if t.last_id > self.arr.last_update_id() {
                break;
            }
            self.pending.pop_front();
            self.check(relative, &t);
        }
    }
}

fn same_books(p: &Pair) -> bool {
    [Side::Bid, Side::Ask]
        .into_iter()
        .all(|s| p.arr.book().levels(s).eq(p.reference.book().levels(s)))
}

fn pair(spec: &InstrumentSpec, id: InstrumentId) -> Pair {
    let rule = SequenceRule::for_venue(spec.venue);
    Pair {
        arr: BookSync::with_book(
            OrderBook::new(spec, BookConfig::default()).unwrap(),
            rule,
            id,
            4096,
        )
        .unwrap(),
        reference: BookSync::with_book(ReferenceBook::new(spec).unwrap(), rule, id, 4096).unwrap(),
        conn: None,
        committed: 0,
        pending: VecDeque::new(),
        ticker_match: 0,
        ticker_other: 0,
        live: BookSync::with_book(
            OrderBook::new(spec, BookConfig::default()).unwrap(),
            rule,
            id,
            4096,
        )
        .unwrap(),
    }
}

/// Replays a recording; checks the books after every committed message and every comparable
/// ticker; returns the per-instrument results.
fn replay(relative: &str) -> Option<BTreeMap<String, (SyncState, SyncCounters, u64, u64)>> {
    let path = data::require(relative)?;
    let (items, reg) = decode(&path);
    let mut pairs: BTreeMap<InstrumentId, Pair> = BTreeMap::new();
    for item in &items {
        let ev = match item {
            Item::Reconnect(conn) => {
                for p in pairs.values_mut().filter(|p| p.conn == Some(*conn)) {
                    p.arr.on_reconnect();
                    p.reference.on_reconnect();
                }
                continue;
            }
            Item::Event(ev) => ev,
        };
        match ev.kind {
            EventKind::Depth | EventKind::Snapshot => {
                let spec = reg.get(ev.instrument).unwrap();
                let p = pairs
                    .entry(ev.instrument)
                    .or_insert_with(|| pair(spec, ev.instrument));
                if ev.kind == EventKind::Depth {
                    p.conn = Some(ev.conn);
                }
                let a = p.arr.on_event(ev);
                let r = p.reference.on_event(ev);
                assert_eq!(a, r, "{relative}: outcomes differ");
                assert_eq!(
                    p.live.on_event(ev),
                    a,
                    "{relative}: tickers changed an outcome"
                );
                if a == (SyncOutcome::Applied { committed: true }) {
                    p.committed += 1;
                    assert_eq!(
                        cached_top::<10>(&mut p.live),
                        p.live.top::<10>(),
                        "{relative}: cached view after a commit"
                    );
                    assert!(
                        same_books(p),
                        "{relative} {}: books differ after update {}",
                        spec.symbol,
                        ev.last_id
                    );
                    p.check_pending(relative);
                }
            }
            EventKind::BookTicker => {
                if let Some(p) = pairs.get_mut(&ev.instrument) {
                    match p.live.on_ticker(ev) {
                        TickerOutcome::Ahead => {
                            let top: BookTop<10> = p.live.top();
                            assert_eq!(
                                cached_top::<10>(&mut p.live),
                                top,
                                "{relative}: cached top"
                            );
                            assert_eq!(cached_top::<3>(&mut p.live), p.live.top::<3>());
                            assert_eq!(
                                (top.best_bid(), top.best_ask(), top.last_update_id),
                                (ev.ticker_bid(), ev.ticker_ask(), ev.last_id),
                                "{relative}: a ticker ahead does not top the snapshot"
                            );
                            assert!(top.bids().len() > 1 && top.asks().len() > 1);
                        }
                        TickerOutcome::Mismatch => {
                            panic!("{relative}: ticker u={} disagrees", ev.last_id)
                        }
                        _ => {}
                    }
                    if p.arr.state() == SyncState::Live && ev.last_id > p.arr.last_update_id() {
                        p.pending.push_back(*ev);
                    } else {
                        p.check(relative, ev);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    for (id, p) in &pairs {
        let spec = reg.get(*id).unwrap();
        let c = *p.arr.counters();
        assert!(same_books(p));
        let t = *p.live.ticker_counters();
        assert_eq!(
            t.mismatched, 0,
            "{relative}: tickers disagreed with the book"
        );
        assert_eq!(
            *p.live.counters(),
            c,
            "{relative}: tickers changed the depth machine"
        );
        if p.ticker_match > 0 {
            // The live machine holds only the newest ticker, so it checks a subset of those
            // the pending queue does, and must check some.
            assert!(
                t.matched > 0 && t.matched <= p.ticker_match + t.ahead,
                "{relative}: {t:?}"
            );
        }
        eprintln!("{relative} {}: live machine tickers {t:?}", spec.symbol);
        assert_eq!(p.arr.book().dropped_levels(), 0);
        eprintln!(
            "{relative} {} {}: {:?}, {} messages committed, {} levels, tickers matched {} (not comparable {}), \
             stale {}, duplicates {}, gaps {}, book {}+{} levels, window moves {:?}",
            spec.venue,
            spec.symbol,
            p.arr.state(),
            p.committed,
            c.levels_applied,
            p.ticker_match,
            p.ticker_other,
            c.stale,
            c.duplicates,
            c.gaps,
            p.arr.book().len(Side::Bid),
            p.arr.book().len(Side::Ask),
            p.arr.book().stats().recentres,
        );
        out.insert(
            format!("{} {}", spec.venue, spec.symbol),
            (p.arr.state(), c, p.ticker_match, p.committed),
        );
    }
    Some(out)
}

/// The checks every recording must pass.
fn assert_clean(results: &BTreeMap<String, (SyncState, SyncCounters, u64, u64)>, tickers: bool) {
    assert!(!results.is_empty());
    for (name, (state, c, _, committed)) in results {
        assert_eq!(*state, SyncState::Live, "{name}");
        assert_eq!(c.gaps, 0, "{name}");
        assert_eq!(c.crossed, 0, "{name}");
        assert_eq!(c.truncated, 0, "{name}");
        assert_eq!(c.rejected_levels, 0, "{name}");
        assert_eq!(c.buffer_overflows, 0, "{name}");
        assert!(*committed > 0, "{name}");
    }
    if tickers {
        // Mismatches panic where they are found; here, make sure the check was not vacuous.
        let matched: u64 = results.values().map(|r| r.2).sum();
        assert!(matched > 0, "no ticker could be compared");
    }
}

#[test]
fn binance_spot_btcusdt_replays_clean() {
    let Some(r) = replay("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    assert_clean(&r, true);
    let (_, c, _, _) = &r["binance-spot BTCUSDT"];
    assert_eq!(c.snapshots, 1);
    // 3,451 depth messages: those already in the snapshot are stale, the rest apply.
    assert_eq!(c.messages_applied + c.stale, 3_451);
}

#[test]
fn binance_usdm_btcusdt_replays_clean() {
    let Some(r) = replay("binance/usdm-btcusdt-20240808.hbt.gz") else {
        return;
    };
    assert_clean(&r, true);
    let (_, c, _, _) = &r["binance-usdm BTCUSDT"];
    assert_eq!(c.snapshots, 1);
    assert_eq!(c.messages_applied + c.stale, 6_551);
}

#[test]
fn binance_spot_multi_symbol_replays_clean() {
    let Some(r) = replay("binance/spot-multi-20211012.cryptofeed.ws") else {
        return;
    };
    assert_eq!(r.len(), 4, "{:?}", r.keys());
    assert_clean(&r, true);
}

#[test]
fn bybit_linear_and_spot_replay_clean() {
    let Some(r) = replay("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst") else {
        return;
    };
    // Bybit has no bookTicker stream here: the ticker check does not apply.
    assert_clean(&r, false);
    let total: u64 = r.values().map(|(_, _, _, m)| m).sum();
    assert_eq!(total, 2_148, "orderbook.200 messages across symbols");
}

// ---------------------------------------------------------------------------------------------
// Fault injection.

/// The book messages (FIRST..LAST runs of Depth/Snapshot events) of the first instrument with
/// depth in a recording.
fn messages(relative: &str) -> Option<(InstrumentSpec, InstrumentId, Vec<Vec<MarketEvent>>)> {
    let path = data::require(relative)?;
    let (items, reg) = decode(&path);
    let mut msgs: Vec<Vec<MarketEvent>> = Vec::new();
    let mut id = None;
    for item in items {
        let Item::Event(ev) = item else { continue };
        if !matches!(ev.kind, EventKind::Depth | EventKind::Snapshot) {
            continue;
        }
        if *id.get_or_insert(ev.instrument) != ev.instrument {
            continue;
        }
        if ev.is_first() {
            msgs.push(Vec::new());
        }
        msgs.last_mut()
            .expect("a message starts with FIRST")
            .push(ev);
    }
    let id = id?;
    Some((reg.get(id).unwrap().clone(), id, msgs))
}

/// Feeds `msgs` to a fresh machine; returns it and, per message, whether it was synced after.
fn run(
    spec: &InstrumentSpec,
    id: InstrumentId,
    msgs: &[Vec<MarketEvent>],
) -> (BookSync, Vec<bool>) {
    let mut s = BookSync::new(spec, id, Default::default()).unwrap();
    let mut synced = Vec::with_capacity(msgs.len());
    for m in msgs {
        for e in m {
            s.on_event(e);
        }
        synced.push(s.is_synced());
    }
    (s, synced)
}

/// Where the faults go: a depth message well after the sync.
fn fault_index(msgs: &[Vec<MarketEvent>], synced: &[bool]) -> usize {
    let first_live = synced.iter().position(|&s| s).expect("the clean run syncs");
    let k = first_live + (msgs.len() - first_live) / 2;
    assert_eq!(msgs[k][0].kind, EventKind::Depth);
    k
}

/// [`BookSync::write_top_cached`] into a top that still holds another book's levels: filling in
/// place must replace all of them.
fn cached_top<const K: usize>(s: &mut BookSync) -> BookTop<K> {
    let stale = [Level {
        px: Px(1),
        qty: Qty(1),
    }; K];
    let mut top = BookTop::from_levels(InstrumentId(u16::MAX), 1, 1, false, &stale, &stale);
    s.write_top_cached(&mut top);
    top
}

fn levels(s: &BookSync) -> Vec<pinion_core::Level> {
    s.book()
        .levels(Side::Bid)
        .chain(s.book().levels(Side::Ask))
        .collect()
}

fn inject_faults(relative: &str) {
    let Some((spec, id, msgs)) = messages(relative) else {
        return;
    };
    let (clean, synced) = run(&spec, id, &msgs);
    assert_eq!(clean.state(), SyncState::Live, "{relative}: clean run");
    let k = fault_index(&msgs, &synced);

    // Duplicated: ignored, and the book ends exactly as without it.
    let mut dup = msgs.clone();
    dup.insert(k + 1, msgs[k].clone());
    let (s, _) = run(&spec, id, &dup);
    assert_eq!(s.state(), SyncState::Live, "{relative}: duplicate");
    assert_eq!(s.counters().duplicates, 1);
    assert_eq!(s.counters().gaps, 0);
    assert_eq!(levels(&s), levels(&clean));

    // An old message replayed late: stale, ignored, book unharmed.
    let mut late = msgs.clone();
    late.insert(k + 3, msgs[k].clone());
    let (s, _) = run(&spec, id, &late);
    assert_eq!(s.state(), SyncState::Live, "{relative}: late");
    assert_eq!(s.counters().stale, clean.counters().stale + 1);
    assert_eq!(levels(&s), levels(&clean));

    // Dropped: a gap at the next message, and never synced again (no snapshot follows).
    let mut dropped = msgs.clone();
    dropped.remove(k);
    let (s, synced_after) = run(&spec, id, &dropped);
    assert_eq!(
        s.state(),
        SyncState::AwaitingSnapshot {
            reason: ResyncReason::Gap
        },
        "{relative}: dropped"
    );
    assert_eq!(s.counters().gaps, 1);
    assert!(synced_after[k..].iter().all(|&x| !x));
    assert!(!s.top::<10>().synced);

    // Reordered: the later message first is a gap.
    let mut reordered = msgs.clone();
    reordered.swap(k, k + 1);
    let (s, synced_after) = run(&spec, id, &reordered);
    assert!(
        matches!(s.state(), SyncState::AwaitingSnapshot { .. }),
        "{relative}: reordered"
    );
    assert!(s.counters().gaps >= 1);
    assert!(synced_after[k..].iter().all(|&x| !x));

    // Truncated: a split message loses its last part. Use a split depth message after the sync
    // if the stream has one, else the split snapshot.
    let split = (k..msgs.len())
        .find(|&i| msgs[i].len() > 1)
        .or_else(|| {
            msgs.iter()
                .position(|m| m.len() > 1 && m[0].kind == EventKind::Snapshot)
        })
        .expect("a split message");
    let mut cut = msgs.clone();
    cut[split].pop();
    let (s, synced_after) = run(&spec, id, &cut);
    assert_eq!(s.counters().truncated, 1, "{relative}: truncated");
    assert!(matches!(s.state(), SyncState::AwaitingSnapshot { .. }));
    assert!(synced_after[split..].iter().all(|&x| !x));
    eprintln!(
        "{relative}: faults at message {k} of {} detected; truncated message {split} ({} parts)",
        msgs.len(),
        msgs[split].len()
    );
}

#[test]
fn faults_are_detected_on_binance_spot() {
    inject_faults("binance/spot-btcusdt-20240808.hbt.gz");
}

#[test]
fn faults_are_detected_on_binance_usdm() {
    inject_faults("binance/usdm-btcusdt-20240808.hbt.gz");
}

#[test]
fn faults_are_detected_on_bybit() {
    inject_faults("bybit/v5-linear-spot-20260809.cryptofeed.jsonl.zst");
}
