//! The clock offset estimator with injected skew and round trips, deterministic.

use pinion_gateway::binance::clock::{ClockConfig, ClockOffset};

/// A small deterministic generator (xorshift), so every run sees the same delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A one-way delay, µs: mostly 200 µs..5 ms, sometimes a 50..250 ms queueing spike.
    fn delay(&mut self) -> u64 {
        if self.next().is_multiple_of(10) {
            50_000 + self.next() % 200_000
        } else {
            200 + self.next() % 4_800
        }
    }
}

/// The exchange's clock: local + skew, read in whole ms.
fn server_ms(local_us: u64, skew_us: i64) -> u64 {
    ((local_us as i64 + skew_us) / 1000) as u64
}

/// Binance's timestamp rule: refused unless `timestamp < serverTime + 1000` and
/// `serverTime - timestamp <= recvWindow`.
fn accepted(timestamp: u64, server: u64, recv_window_ms: u64) -> bool {
    timestamp < server + 1000 && server.saturating_sub(timestamp) <= recv_window_ms
}

fn sample(clock: &mut ClockOffset, rng: &mut Rng, now: &mut u64, skew: i64) -> u64 {
    let (d1, d2) = (rng.delay(), rng.delay());
    let sent = *now;
    let server = server_ms(sent + d1, skew);
    *now += d1 + d2;
    clock.on_time(sent, *now, server);
    d1 + d2
}

#[test]
fn skew_of_800_ms_either_way_is_estimated_within_half_the_best_round_trip() {
    for (seed, skew) in [
        (1u64, 800_000i64),
        (2, -800_000),
        (3, 0),
        (4, 123_456),
        (5, -799_999),
    ] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut clock = ClockOffset::new(ClockConfig::default());
        let mut now: u64 = 1_764_921_600_000_000;
        assert!(
            clock.server_time_ms(now).is_none(),
            "nothing stamped before an estimate"
        );
        let mut min_rtt = u64::MAX;
        for _ in 0..16 {
            min_rtt = min_rtt.min(sample(&mut clock, &mut rng, &mut now, skew));
        }
        let offset = clock.offset_us().unwrap();
        let err = (offset - skew).unsigned_abs();
        let bound = clock.error_bound_us().unwrap();
        assert_eq!(bound, min_rtt / 2 + 500, "the bound is the best sample's");
        assert!(
            err <= bound,
            "skew {skew}: error {err} µs > bound {bound} µs"
        );
        assert!(
            err < min_rtt / 2 + 1_000,
            "skew {skew}: error {err} µs, best rtt {min_rtt} µs"
        );
        // Orders stamped with it are never in the future nor outside a 300 ms recvWindow (the
        // one-way delay alone reaches 250 ms in a queueing spike).
        let mut refused = 0;
        for _ in 0..10_000 {
            let d = rng.delay();
            let ts = clock.server_time_ms(now).unwrap();
            if !accepted(ts, server_ms(now + d, skew), 300) {
                refused += 1;
            }
            now += 1_000 + rng.next() % 10_000;
        }
        assert_eq!(refused, 0, "skew {skew}: -1021 after warm-up");
        assert!(!clock.drift_alarm());
    }
}

#[test]
fn a_clock_step_raises_the_alarm_and_1021_re_estimates_without_resending() {
    let mut rng = Rng(42);
    let mut clock = ClockOffset::new(ClockConfig::default());
    let mut now: u64 = 1_764_921_600_000_000;
    let mut skew = 800_000i64;
    for _ in 0..16 {
        sample(&mut clock, &mut rng, &mut now, skew);
    }
    // The local clock steps back 500 ms: the exchange is now 1.3 s ahead.
    skew += 500_000;
    let ts = clock.server_time_ms(now).unwrap();
    assert!(
        !accepted(ts, server_ms(now + 1_000, skew), 100),
        "the stale estimate gets -1021"
    );
    clock.on_timestamp_rejected();
    assert_eq!(clock.timestamp_rejections(), 1);
    assert!(
        clock.server_time_ms(now).is_none(),
        "nothing is stamped (or resent) until re-estimated"
    );
    assert!(clock.wants_sample(now));
    for _ in 0..ClockConfig::default().warm_up {
        sample(&mut clock, &mut rng, &mut now, skew);
    }
    let err = (clock.offset_us().unwrap() - skew).unsigned_abs();
    assert!(err <= clock.error_bound_us().unwrap());
    assert!(clock.drift_alarm(), "a 500 ms jump is reported");
    clock.clear_drift_alarm();
    let ts = clock.server_time_ms(now).unwrap();
    assert!(accepted(ts, server_ms(now + 1_000, skew), 100));
    // Samples are due again once the last one is old.
    assert!(!clock.wants_sample(now));
    assert!(clock.wants_sample(now + 30_000_000));
    // A negative round trip (a clock step between send and receive) is ignored.
    let before = clock.offset_us();
    clock.on_time(now, now - 1, 1);
    assert_eq!(clock.offset_us(), before);
}
