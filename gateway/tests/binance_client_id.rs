//! Client order ids: round trip, and no collision between runs.

use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, ClientIdKind, RunEpoch};
use pinion_strategy::ClientOrderId;
use proptest::prelude::*;

fn is_binance_charset(text: &[u8]) -> bool {
    (1..=36).contains(&text.len())
        && text
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

proptest! {
    #[test]
    fn every_id_round_trips_inside_the_charset(epoch in 0u64..101_559_956_668_416, id: u64) {
        let codec = ClientIdCodec::new(RunEpoch::new(epoch).unwrap());
        let mut out = [0u8; CLIENT_ID_LEN];
        codec.encode(ClientOrderId(id), &mut out);
        prop_assert!(is_binance_charset(&out));
        prop_assert_eq!(codec.decode(&out), Ok(ClientIdKind::Ours(ClientOrderId(id))));
        // Case folded by some system on the way: decodes to the same id.
        let mut upper = out.to_ascii_uppercase();
        upper[0] = b'p';
        prop_assert_eq!(codec.decode(&upper), Ok(ClientIdKind::Ours(ClientOrderId(id))));
    }

    #[test]
    fn two_runs_never_produce_the_same_text(
        e1 in 0u64..101_559_956_668_416,
        e2 in 0u64..101_559_956_668_416,
        id1: u64,
        id2: u64,
    ) {
        prop_assume!(e1 != e2);
        let (a, b) = (
            ClientIdCodec::new(RunEpoch::new(e1).unwrap()),
            ClientIdCodec::new(RunEpoch::new(e2).unwrap()),
        );
        let (mut ta, mut tb) = ([0u8; CLIENT_ID_LEN], [0u8; CLIENT_ID_LEN]);
        a.encode(ClientOrderId(id1), &mut ta);
        b.encode(ClientOrderId(id2), &mut tb);
        prop_assert_ne!(ta, tb);
        // Even case-insensitively (the alphabet is lower case only).
        prop_assert!(!ta.eq_ignore_ascii_case(&tb));
        // The later run recognises the earlier run's id as such, never as its own.
        prop_assert_eq!(
            b.decode(&ta),
            Ok(ClientIdKind::EarlierRun { epoch: RunEpoch::new(e1).unwrap(), id: ClientOrderId(id1) })
        );
    }
}

#[test]
fn a_restarted_run_counting_from_the_same_base_does_not_collide_with_open_orders() {
    // Run 1 leaves orders 1..=100 open; run 2 (started 1 ms later) counts from 1 again.
    let run1 = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
    let run2 = ClientIdCodec::new(RunEpoch::new(1_764_921_600_001).unwrap());
    let mut open = std::collections::HashSet::new();
    let mut out = [0u8; CLIENT_ID_LEN];
    for id in 1..=100u64 {
        run1.encode(ClientOrderId(id), &mut out);
        open.insert(out);
    }
    for id in 1..=100u64 {
        run2.encode(ClientOrderId(id), &mut out);
        assert!(
            !open.contains(&out),
            "run 2's id {id} equals an open order of run 1"
        );
        let left = *open.iter().next().unwrap();
        assert!(matches!(
            run2.decode(&left),
            Ok(ClientIdKind::EarlierRun { .. })
        ));
    }
}
