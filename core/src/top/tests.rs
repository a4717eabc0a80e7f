use proptest::prelude::*;

use super::*;

fn lv(px: i64, qty: i64) -> Level {
    Level {
        px: Px(px),
        qty: Qty(qty),
    }
}

#[test]
fn size_is_pinned() {
    // 16 bytes of ids and time, 5 bytes of small fields padded to 8, then 2 × K levels of 16.
    assert_eq!(std::mem::size_of::<BookTop>(), 32 + 2 * TOP_LEVELS * 16);
    assert_eq!(std::mem::size_of::<BookTop<1>>(), 32 + 2 * 16);
    assert_eq!(std::mem::align_of::<BookTop>(), 8);
}

/// The 128-bit definition.
fn permille_wide(b: i64, a: i64) -> Option<i64> {
    let total = i128::from(b) + i128::from(a);
    (total > 0).then(|| ((i128::from(b) - i128::from(a)) * 1000 / total) as i64)
}

proptest! {
    #[test]
    fn permille_is_the_wide_result(
        b in prop_oneof![0i64..1_000_000_000, any::<i64>()],
        a in prop_oneof![0i64..1_000_000_000, any::<i64>()],
    ) {
        prop_assert_eq!(permille(b, a), permille_wide(b, a));
    }
}

#[test]
fn permille_at_the_edges() {
    for (b, a) in [
        (i64::MAX, 0),
        (0, i64::MAX),
        (i64::MAX, i64::MAX),
        (i64::MAX / 1000, 1),
        (i64::MIN, i64::MAX),
        (3, -1),
        (-5, 2),
        (0, 0),
        (1, 2),
    ] {
        assert_eq!(permille(b, a), permille_wide(b, a), "{b} {a}");
    }
}

#[test]
fn analytics_on_a_crafted_book() {
    let v: BookTop = BookTop::from_levels(
        InstrumentId(3),
        77,
        10,
        true,
        &[lv(100, 30), lv(99, 30), lv(98, 1000)],
        &[lv(102, 10), lv(103, 10)],
    );
    assert_eq!(
        (v.instrument, v.last_update_id, v.t0, v.synced),
        (InstrumentId(3), 77, 10, true)
    );
    assert_eq!(v.best_bid(), Some(lv(100, 30)));
    assert_eq!(v.best_ask(), Some(lv(102, 10)));
    assert_eq!(v.best(Side::Ask), v.best_ask());
    assert_eq!(v.spread(), Some(2));
    assert_eq!(v.mid_x2(), Some(202));
    assert_eq!(v.mid(), Some(Px(101)));
    // (100 × 10 + 102 × 30) / 40 = 101.5, rounded down.
    assert_eq!(v.microprice(), Some(Px(101)));
    assert_eq!(v.depth_qty(2), (Qty(60), Qty(20)));
    // (60 - 20) / 80 = 0.5
    assert_eq!(v.imbalance_permille(2), Some(500));
    // The third bid level only counts when asked for.
    assert_eq!(v.imbalance_permille(3), Some((1060 - 20) * 1000 / 1080));
    // ±100 bps of 101: bids ≥ 99.99 → 100, asks ≤ 102.01 → 102.
    assert_eq!(v.depth_within_bps(100), (Qty(30), Qty(10)));
    // ±200 bps: bids ≥ 98.98 → 99, asks ≤ 103.02 → 103.
    assert_eq!(v.depth_within_bps(200), (Qty(60), Qty(20)));
    // A buyer of 15 takes 10 at 102 and 5 at 103.
    let s = v.sweep(Side::Bid, Qty(15));
    assert_eq!(
        s,
        Sweep {
            filled: Qty(15),
            notional: 102 * 10 + 103 * 5,
            worst: Px(103),
            levels: 2
        }
    );
    // 1535 / 15 = 102.33…
    assert_eq!(s.vwap(), Some(Px(102)));
    // 10⁴ × (3070 − 15 × 202) / (15 × 202) = 132.01…
    assert_eq!(v.slippage_bps(Side::Bid, Qty(15)), Some(132));
    // A seller of 40 gets 30 at 100 and 10 at 99: 10⁴ × (40 × 202 − 2 × 3990) / 8080 = 123.76…
    assert_eq!(v.slippage_bps(Side::Ask, Qty(40)), Some(123));
    // More than the levels hold: what they can fill.
    assert_eq!(v.sweep(Side::Bid, Qty(1_000)).filled, Qty(20));
}

#[test]
fn empty_truncated_and_crossed_tops() {
    let e = BookTop::<TOP_LEVELS>::EMPTY;
    assert_eq!(e.mid(), None);
    assert_eq!(e.mid_x2(), None);
    assert_eq!(e.microprice(), None);
    assert_eq!(e.imbalance_permille(5), None);
    assert_eq!(e.depth_within_bps(10), (Qty::ZERO, Qty::ZERO));
    assert_eq!(e.sweep(Side::Bid, Qty(1)), Sweep::default());
    assert_eq!(e.slippage_bps(Side::Bid, Qty(1)), None);

    let many: Vec<Level> = (0..20).map(|i| lv(100 - i, 1)).collect();
    let v: BookTop = BookTop::from_levels(InstrumentId(0), 0, 0, true, &many, &[]);
    assert_eq!(v.bids().len(), TOP_LEVELS);
    assert_eq!(v.mid(), None);
    assert_eq!(v.imbalance_permille(3), Some(1000));

    // Locked and crossed books have an exact mid but no mid to quote around.
    let locked: BookTop<2> =
        BookTop::from_levels(InstrumentId(0), 0, 0, true, &[lv(100, 1)], &[lv(100, 1)]);
    assert_eq!((locked.mid_x2(), locked.mid()), (Some(200), None));
    let crossed: BookTop<2> =
        BookTop::from_levels(InstrumentId(0), 0, 0, true, &[lv(101, 1)], &[lv(100, 1)]);
    assert_eq!((crossed.spread(), crossed.mid()), (Some(-1), None));
}

#[test]
fn fills_clamp_to_the_slots_and_fill_behind_puts_the_best_first() {
    let mut t = BookTop::<3>::EMPTY;
    t.fill(Side::Bid, |out| {
        out.fill(lv(5, 5));
        99
    });
    assert_eq!(t.bids().len(), 3);
    t.fill_behind(Side::Ask, lv(7, 1), |rest| {
        assert_eq!(rest.len(), 2);
        rest[0] = lv(8, 2);
        1
    });
    assert_eq!(t.asks(), [lv(7, 1), lv(8, 2)]);
    t.fill_behind(Side::Ask, lv(6, 1), |_| 50);
    assert_eq!(t.asks().len(), 3);
    // What lies past the counts is not part of the value.
    let mut u = BookTop::<3>::EMPTY;
    u.copy_side(Side::Bid, &t.bids()[..1]);
    u.copy_side(Side::Ask, t.asks());
    t.fill(Side::Bid, |_| 1);
    assert_eq!(t, u);
    u.t0 = 1;
    assert_ne!(t, u);
    let mut z = BookTop::<0>::EMPTY;
    z.fill_behind(Side::Bid, lv(1, 1), |_| 5);
    z.fill(Side::Ask, |_| 5);
    assert_eq!((z.bids(), z.asks()), (&[][..], &[][..]));
}

/// A best-first side of up to 12 levels: distinct prices, positive quantities.
fn side(bid: bool) -> impl Strategy<Value = Vec<Level>> {
    prop::collection::btree_map(1i64..5_000, 1i64..1_000_000, 0..12).prop_map(move |m| {
        let mut v: Vec<Level> = m.into_iter().map(|(p, q)| lv(p, q)).collect();
        if bid {
            v.reverse();
        }
        v
    })
}

proptest! {
    #[test]
    fn analytics_match_their_definitions(
        bids in side(true),
        asks in side(false),
        bps in prop_oneof![0u32..20_000, any::<u32>()],
        n in 0usize..12,
        q in 0i64..5_000_000,
    ) {
        let t: BookTop = BookTop::from_levels(InstrumentId(1), 1, 1, true, &bids, &asks);
        let (held_b, held_a) = (&bids[..bids.len().min(TOP_LEVELS)], &asks[..asks.len().min(TOP_LEVELS)]);
        prop_assert_eq!(t.bids(), held_b);
        prop_assert_eq!(t.asks(), held_a);
        let (b, a) = (bids.first(), asks.first());
        if let (Some(b), Some(a)) = (b, a) {
            let m2 = b.px.0 + a.px.0;
            prop_assert_eq!(t.mid_x2(), Some(m2));
            // ⌊x⌋ is the y with 2y ≤ x < 2y + 2.
            let mid = t.mid();
            prop_assert_eq!(mid.is_some(), b.px < a.px);
            if let Some(m) = mid {
                prop_assert!(2 * m.0 <= m2 && m2 < 2 * m.0 + 2);
            }
            let mp = t.microprice().expect("positive quantities");
            let num = i128::from(b.px.0) * i128::from(a.qty.0) + i128::from(a.px.0) * i128::from(b.qty.0);
            let w = i128::from(b.qty.0 + a.qty.0);
            prop_assert!(i128::from(mp.0) * w <= num && num < (i128::from(mp.0) + 1) * w);
            // Inside the band exactly when 2·10⁴·px compares with mid_x2 (10⁴ ∓ bps).
            let (bps_i, m2_i) = (i128::from(bps), i128::from(m2));
            let inside_b: i64 = held_b.iter()
                .filter(|l| 20_000 * i128::from(l.px.0) >= m2_i * (10_000 - bps_i))
                .map(|l| l.qty.0).sum();
            let inside_a: i64 = held_a.iter()
                .filter(|l| 20_000 * i128::from(l.px.0) <= m2_i * (10_000 + bps_i))
                .map(|l| l.qty.0).sum();
            prop_assert_eq!(t.depth_within_bps(bps), (Qty(inside_b), Qty(inside_a)));
        } else {
            prop_assert_eq!(t.mid_x2(), None);
            prop_assert_eq!(t.depth_within_bps(bps), (Qty::ZERO, Qty::ZERO));
        }
        let sum = |l: &[Level]| l.iter().take(n).map(|l| l.qty.0).sum::<i64>();
        prop_assert_eq!(t.imbalance_permille(n), permille_wide(sum(held_b), sum(held_a)));
        for aggressor in [Side::Bid, Side::Ask] {
            let s = t.sweep(aggressor, Qty(q));
            let book = t.side(aggressor.opposite());
            let total: i64 = book.iter().map(|l| l.qty.0).sum();
            prop_assert_eq!(s.filled, Qty(q.min(total)));
            if let Some(v) = s.vwap() {
                let f = i128::from(s.filled.0);
                prop_assert!(i128::from(v.0) * f <= s.notional && s.notional < (i128::from(v.0) + 1) * f);
                // The average lies between the best and the worst price touched.
                let best = book[0].px;
                prop_assert!(v.0 >= best.0.min(s.worst.0) && v.0 <= best.0.max(s.worst.0));
            } else {
                prop_assert_eq!(s.filled, Qty::ZERO);
            }
        }
    }
}
