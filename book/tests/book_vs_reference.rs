//! Property tests: random level updates applied to the array book and to the `BTreeMap`
//! reference give identical books — every level, in order — and identical answers to every
//! query, including when prices run far outside the window and force re-centring and overflow
//! use. The queries the array book answers by its own paths (best levels, depth within a band)
//! are asked over bands from nothing to beyond the whole book, at prices small, around zero,
//! and large enough to leave `i64` arithmetic for the band. A second
//! property covers a full overflow: the array book loses only levels it counted.

use pinion_book::{BookConfig, BookLevels, L2Book, OrderBook, ReferenceBook};
use pinion_core::{BookTop, Level, Px, Qty, Side, Sweep};
use proptest::prelude::*;

/// One step of a random book history.
#[derive(Debug, Clone)]
enum Op {
    /// Set a level at `center + offset` ticks (qty 0 removes).
    Set { side: Side, offset: i64, qty: i64 },
    /// Move the centre the offsets are drawn around (the market trending or jumping).
    Drift(i64),
    /// End of an exchange message: commit (the array book may re-centre here).
    Commit,
    /// Empty the book (a snapshot is about to be applied).
    Clear,
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Mostly near the touch, with removals common.
        10 => (side(), -40i64..40, prop_oneof![2 => Just(0i64), 3 => 1i64..1_000])
            .prop_map(|(side, offset, qty)| Op::Set { side, offset, qty }),
        // Sometimes far away: beyond any window tried here.
        3 => (side(), -5_000i64..5_000, 0i64..1_000)
            .prop_map(|(side, offset, qty)| Op::Set { side, offset, qty }),
        2 => (-300i64..300).prop_map(Op::Drift),
        1 => (-20_000i64..20_000).prop_map(Op::Drift),
        4 => Just(Op::Commit),
        1 => Just(Op::Clear),
    ]
}

fn config() -> impl Strategy<Value = BookConfig> {
    (6u32..10).prop_map(|k| BookConfig {
        window_ticks: 1 << k,
        overflow_levels: 8_192,
    })
}

/// Where prices start, in ticks: a usual price, around zero (negative prices too), and far out
/// (a mid beyond 2^42 raw units, where the band is worked out in `i128`).
fn start() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(1_000_000i64),
        1 => Just(3i64),
        1 => Just(1i64 << 45),
        1 => Just(-(1i64 << 45)),
    ]
}

/// Applies `ops` to both books with tick `tick`, prices starting around `start` ticks,
/// checking after every commit.
fn run(
    ops: &[Op],
    config: BookConfig,
    tick: i64,
    start: i64,
) -> Result<(OrderBook, ReferenceBook), TestCaseError> {
    let mut arr = OrderBook::with_tick(Px(tick), config).unwrap();
    let mut reference = ReferenceBook::with_tick(Px(tick)).unwrap();
    let mut center = start;
    for op in ops {
        match *op {
            Op::Set { side, offset, qty } => {
                let px = Px((center + offset) * tick);
                let a = arr.set_level(side, px, Qty(qty));
                let r = reference.set_level(side, px, Qty(qty));
                prop_assert_eq!(a, r);
            }
            Op::Drift(d) => center += d,
            Op::Commit => {
                arr.commit();
                assert_same(&arr, &reference)?;
            }
            Op::Clear => {
                arr.clear();
                reference.clear();
            }
        }
    }
    arr.commit();
    assert_same(&arr, &reference)?;
    Ok((arr, reference))
}

fn assert_same(arr: &OrderBook, reference: &ReferenceBook) -> Result<(), TestCaseError> {
    for side in [Side::Bid, Side::Ask] {
        let a: Vec<Level> = arr.levels(side).collect();
        let r: Vec<Level> = reference.levels(side).collect();
        prop_assert_eq!(&a, &r, "{:?} levels", side);
        prop_assert_eq!(arr.len(side), reference.len(side));
        prop_assert_eq!(arr.best(side), reference.best(side));
        let mut top_a = [Level::default(); 7];
        let mut top_r = [Level::default(); 7];
        prop_assert_eq!(
            arr.top_levels(side, &mut top_a),
            reference.top_levels(side, &mut top_r)
        );
        prop_assert_eq!(top_a, top_r);
        // Deep enough to run out of the window into the overflow below it.
        let mut deep_a = [Level::default(); 300];
        let mut deep_r = [Level::default(); 300];
        prop_assert_eq!(
            arr.top_levels(side, &mut deep_a),
            reference.top_levels(side, &mut deep_r)
        );
        prop_assert_eq!(deep_a, deep_r);
        // Behind a price: each held level's, and one between two of them.
        for l in r.iter().take(3).chain(r.get(1)) {
            for px in [l.px, Px(l.px.0 + 1)] {
                let mut a = [Level::default(); 5];
                let mut b = [Level::default(); 5];
                prop_assert_eq!(
                    arr.top_levels_behind(side, px, &mut a),
                    reference.top_levels_behind(side, px, &mut b)
                );
                prop_assert_eq!(a, b);
            }
        }
        for l in r.iter().take(5) {
            prop_assert_eq!(arr.qty_at(side, l.px), l.qty);
        }
    }
    // The top-of-book value both fill, deep enough for every analytic on it to see 50 levels:
    // equal values give equal analytics.
    let (mut top_a, mut top_r) = (BookTop::<50>::EMPTY, BookTop::<50>::EMPTY);
    arr.capture(&mut top_a);
    reference.capture(&mut top_r);
    prop_assert_eq!(top_a, top_r);
    prop_assert_eq!(arr.best_bid(), reference.best_bid());
    prop_assert_eq!(arr.best_ask(), reference.best_ask());
    prop_assert_eq!(arr.cross(), reference.cross());
    // From nothing, through bands ending on and between levels, past the window into the
    // overflow, to every level (and past `i64` arithmetic for the band).
    for bps in [
        0,
        1,
        2,
        3,
        7,
        25,
        500,
        10_000,
        1_000_000,
        1_000_001,
        u32::MAX,
    ] {
        prop_assert_eq!(
            arr.depth_within_bps(bps),
            reference.depth_within_bps(bps),
            "{} bps",
            bps
        );
    }
    for q in [1, 700, 5_000] {
        for side in [Side::Bid, Side::Ask] {
            prop_assert_eq!(
                Sweep::through(arr.levels(side), Qty(q)),
                Sweep::through(reference.levels(side), Qty(q))
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn array_book_equals_reference(
        ops in proptest::collection::vec(op(), 1..400),
        config in config(),
        tick in prop_oneof![Just(1i64), Just(5i64)],
        start in start(),
    ) {
        let (arr, _) = run(&ops, config, tick, start)?;
        prop_assert_eq!(arr.dropped_levels(), 0);
    }

    #[test]
    fn full_overflow_loses_only_counted_levels(
        ops in proptest::collection::vec(op(), 1..400),
        k in 6u32..8,
        overflow in 1usize..16,
    ) {
        let config = BookConfig { window_ticks: 1 << k, overflow_levels: overflow };
        let mut arr = OrderBook::with_tick(Px(1), config).unwrap();
        let mut reference = ReferenceBook::with_tick(Px(1)).unwrap();
        let mut center: i64 = 1_000_000;
        for op in &ops {
            match *op {
                Op::Set { side, offset, qty } => {
                    let px = Px(center + offset);
                    arr.set_level(side, px, Qty(qty)).unwrap();
                    reference.set_level(side, px, Qty(qty)).unwrap();
                }
                Op::Drift(d) => center += d,
                Op::Commit => arr.commit(),
                Op::Clear => {
                    arr.clear();
                    reference.clear();
                }
            }
        }
        // Every level the array book holds is in the reference with the same quantity, in the
        // same order; what is missing is no more than was counted as dropped.
        let mut missing = 0u64;
        for side in [Side::Bid, Side::Ask] {
            let a: Vec<Level> = arr.levels(side).collect();
            let r: Vec<Level> = reference.levels(side).collect();
            let mut it = r.iter();
            for l in &a {
                let found = it.by_ref().find(|x| x.px == l.px);
                prop_assert_eq!(found, Some(l), "{:?} {:?} not in the reference", side, l);
            }
            missing += (r.len() - a.len()) as u64;
        }
        prop_assert!(missing <= arr.dropped_levels(), "missing {} dropped {}", missing, arr.dropped_levels());
    }
}
