//! Fuzz target: the `.hgrm` latency-histogram reader the simulated venue draws latencies from.
//! Reading never panics; a table it accepts has sorted rows, and its inverse CDF never goes
//! down and stays between the first and the last row's values.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pinion_gateway::sim::LatencyTable;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = LatencyTable::parse_hgrm(text) else {
        return;
    };
    let rows = table.rows();
    assert!(!rows.is_empty());
    assert!(rows.windows(2).all(|w| w[0].quantile <= w[1].quantile && w[0].value_ns <= w[1].value_ns));
    let (lo, hi) = (rows[0].value_ns, rows[rows.len() - 1].value_ns);
    let mut last = 0;
    for k in 0..=64u64 {
        let u = pinion_gateway::sim::latency::PERCENTILE_ONE / 64 * k;
        let v = table.value_at(u);
        assert!(v >= last && (lo..=hi).contains(&v), "u {u}: {v} after {last}, rows {lo}..={hi}");
        last = v;
    }
});
