//! Unit tests of config validation.
use super::super::{Config, InputSpec, PacingSpec, REPLAY_TOML, REPLAY_TOML_NAME, StageKind};
use super::*;
use crate::runtime::WaitStrategy;

fn check(text: &str) -> Result<Settings, ConfigError> {
    Config::parse(text, "t.toml")?.validate_for("t.toml", 2, Path::new("/nonexistent"))
}

#[test]
fn embedded_replay_config_is_valid() {
    let cfg = Config::parse(REPLAY_TOML, REPLAY_TOML_NAME).unwrap();
    let s = cfg
        .validate_for(REPLAY_TOML_NAME, 2, Path::new("/nonexistent"))
        .unwrap();
    assert!(matches!(s.input, InputSpec::Synthetic { .. }));
    assert_eq!(s.placement.label, "2");
    assert_eq!(s.placement.threads.len(), 2);
    // The shipped recordings' instruments are defined.
    let names: Vec<_> = s
        .instruments
        .iter()
        .map(|i| {
            (
                i.venue,
                i.symbol.to_string(),
                i.price_decimals,
                i.qty_decimals,
            )
        })
        .collect();
    // Spot quantities come at 8 decimals; the step stays 0.00001 (1000 units).
    assert!(names.contains(&(Venue::BinanceSpot, "BTCUSDT".into(), 2, 8)));
    let spot = s
        .instruments
        .iter()
        .find(|i| i.venue == Venue::BinanceSpot)
        .unwrap();
    assert_eq!(spot.step, pinion_core::Qty(1000));
    assert!(names.contains(&(Venue::BinanceUsdm, "BTCUSDT".into(), 1, 3)));
    assert_eq!(s.instrument_sources.len(), 1);
}

#[test]
fn every_problem_is_reported_with_key() {
    let text = r#"
[pacing]
mode = "fast"
speed = -1.0
[placement]
mode = "custom"
[[placement.threads]]
name = "a"
core = 0
stages = ["feed", "book"]
[[placement.threads]]
name = "a"
core = 7
wait = "sleepy"
stages = ["strategy", "book"]
[rings]
capacity = 1000
[[instrument]]
venue = "binance"
symbol = "X"
tick_size = "0.01"
step_size = "1"
"#;
    let err = check(text).unwrap_err();
    let msg = err.to_string();
    for expect in [
        "t.toml: pacing.mode: unknown mode \"fast\"",
        "t.toml: pacing.speed: -1 must be a positive number",
        "t.toml: placement.threads[1].name: \"a\" is used twice",
        "t.toml: placement.threads[1].core: core 7 does not exist (2 cores)",
        "t.toml: placement.threads[1].wait: unknown wait strategy \"sleepy\"",
        "t.toml: placement.threads[1].stages[1]: stage book is already on placement.threads[0]",
        "t.toml: placement.threads: stage gateway is on no thread",
        "t.toml: rings.capacity: 1000 must be a power of two",
        "t.toml: instrument[0].venue: unknown venue \"binance\"",
    ] {
        assert!(msg.contains(expect), "missing {expect:?} in:\n{msg}");
    }
    assert_eq!(err.problems.len(), 9, "{msg}");
}

#[test]
fn unknown_keys_are_errors() {
    let err = check("[placement]\nmdoe = \"1\"\n").unwrap_err();
    assert!(err.to_string().contains("mdoe"), "{err}");
    let err = check("[nonsense]\n").unwrap_err();
    assert!(err.to_string().contains("nonsense"), "{err}");
}

#[test]
fn presets_place_all_stages() {
    for (mode, n) in [("1", 1), ("2", 2), ("4", 4)] {
        let s = check(&format!("[placement]\nmode = {mode}\nwait = \"park\"\n")).unwrap();
        assert_eq!(s.placement.threads.len(), n);
        let mut all: Vec<StageKind> = s
            .placement
            .threads
            .iter()
            .flat_map(|t| t.stages.clone())
            .collect();
        all.sort();
        assert_eq!(all, StageKind::ALL);
        assert!(
            s.placement
                .threads
                .iter()
                .all(|t| matches!(t.wait, WaitStrategy::Park { timeout_us: 50 }))
        );
    }
    let err = check("[placement]\nmode = \"2\"\ncores = [0]\n").unwrap_err();
    assert!(err.to_string().contains("placement.cores"), "{err}");
}

#[test]
fn finer_units_rescale_tick_and_step() {
    let text = r#"
[[instrument]]
venue = "binance-spot"
symbol = "NKNUSDT"
tick_size = "0.0001"
step_size = "1"
qty_decimals = 8
px_decimals = 5
[[instrument]]
venue = "binance-spot"
symbol = "BAD"
tick_size = "0.01"
step_size = "0.001"
px_decimals = 1
"#;
    let err = check(text).unwrap_err().to_string();
    assert!(
        err.contains("instrument[1]: px_decimals 1 is coarser"),
        "{err}"
    );
    let s = check(
        &text[..text
            .find("[[instrument]]\nvenue = \"binance-spot\"\nsymbol = \"BAD\"")
            .unwrap()],
    )
    .unwrap();
    let nkn = &s.instruments[0];
    assert_eq!((nkn.price_decimals, nkn.tick), (5, pinion_core::Px(10)));
    assert_eq!(
        (nkn.qty_decimals, nkn.step),
        (8, pinion_core::Qty(100_000_000))
    );
    assert_eq!(s.unit_price_grid.len(), 1);
}

#[test]
fn pacing_modes() {
    let s = check("[pacing]\nmode = \"max\"\n").unwrap();
    assert_eq!(s.pacing, PacingSpec::Max);
    let s = check("[pacing]\nmode = \"paced\"\nspeed = 4.0\n").unwrap();
    assert_eq!(
        s.pacing,
        PacingSpec::Recorded {
            speed: 4.0,
            max_wait_ns: Some(1_000_000_000)
        }
    );
    let s = check("[pacing]\nmode = \"paced\"\nrate = 50000\nmax_wait_ms = 0\n").unwrap();
    assert_eq!(
        s.pacing,
        PacingSpec::Rate {
            per_second: 50_000,
            max_wait_ns: None
        }
    );
    assert!(check("[pacing]\nmode = \"max\"\nrate = 5\n").is_err());
    // A speed nothing would use is an error too, as the rate is.
    let err = check("[pacing]\nmode = \"max\"\nspeed = 2.0\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("t.toml: pacing.speed: 2 only applies with pacing.mode = \"paced\""),
        "{err}"
    );
    let err = check("[pacing]\nmode = \"paced\"\nspeed = 2.0\nrate = 10\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("t.toml: pacing.speed: 2 is not used: pacing.rate = 10"),
        "{err}"
    );
    assert!(check("[pacing]\nmode = \"max\"\nspeed = 1.0\n").is_ok());
    let s = check("[pacing]\nmax_wait_ms = 250\n").unwrap();
    assert_eq!(s.pacing.max_wait_ns(), Some(250_000_000));
    assert_eq!(s.pacing.describe(), "paced x1, waits cut at 250 ms");
    let err = check("[pacing]\nmax_wait_ms = 86400001\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("t.toml: pacing.max_wait_ms: 86400001 is above 86400000"),
        "{err}"
    );
}

#[test]
fn ring_capacity_is_bounded() {
    assert_eq!(
        check("[rings]\ncapacity = 1048576\n")
            .unwrap()
            .ring_capacity,
        MAX_RING_CAPACITY
    );
    let err = check("[rings]\ncapacity = 2097152\n").unwrap_err();
    assert!(
        err.to_string().contains(
            "t.toml: rings.capacity: 2097152 is above the largest ring, 1048576 slots (2^20)"
        ),
        "{err}"
    );
    // What the message says of the memory is the slot's real size.
    let slot = size_of::<crate::stages::outbox::Stamped<crate::stages::msg::MarketMsg>>();
    assert!((512..=1024).contains(&slot), "{slot}");
    assert!(
        err.to_string()
            .contains(&format!("about {} MiB", (slot << 20) >> 20)),
        "{err}"
    );
    // Still a power of two of at least 16.
    assert!(check("[rings]\ncapacity = 8\n").is_err());
    assert!(check("[rings]\ncapacity = 4097\n").is_err());
}

#[test]
fn missing_recording_is_reported() {
    let err = check("[input]\nsource = \"/no/such/file.hbt.gz\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("input.source: recording /no/such/file.hbt.gz not found"),
        "{err}"
    );
}

#[test]
fn trading_tables_become_typed_specs() {
    let s = check("").unwrap();
    let super::super::StrategySpec::Imbalance(im) = s.trading.strategy else {
        panic!("the default strategy is imbalance");
    };
    assert_eq!((im.levels, im.enter_permille), (5, 600));
    assert_eq!(im.order_qty.to_string(), "0.001");
    assert_eq!(im.stale_after_ns, 1_000_000_000);
    assert_eq!(s.trading.risk.max_notional.to_string(), "1000");
    assert_eq!(
        s.trading.venue,
        super::super::VenueSpec::Sim(super::super::SimSpec::round_trip(100_000))
    );
}

#[test]
fn every_trading_problem_is_reported_with_its_key() {
    let e = check(
        r#"
[strategy]
kind = "imbalance"
order_qty = "1e-3"
threshold = 1.5
[risk]
max_position = "-1"
max_notional = "0"
price_band_bps = 0
[gateway]
venue = "binance"
"#,
    )
    .unwrap_err()
    .to_string();
    for want in [
        "t.toml: strategy.threshold: 1.5 must be strictly between 0 and 1",
        "t.toml: strategy.order_qty: \"1e-3\" is not a plain decimal",
        "t.toml: risk.max_position: \"-1\" must be positive",
        "t.toml: risk.max_notional: \"0\" must be positive",
        "t.toml: risk.price_band_bps: 0 must be 1..=10000",
        "t.toml: gateway.venue: unknown venue \"binance\" (sim)",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

/// The shipped testnet trading config.
const TESTNET_TOML: &str = include_str!("../../../../configs/live-binance-testnet.toml");

#[test]
fn the_exit_policy_is_read_and_the_old_key_names_its_replacement() {
    let s = check(TESTNET_TOML).expect("the shipped config is valid");
    assert_eq!(s.exit, pinion_gateway::ExitPolicy::CancelAll);
    let keep = TESTNET_TOML.replace("policy = \"cancel_all\"", "policy = \"keep_protective\"");
    assert_ne!(
        keep, TESTNET_TOML,
        "the shipped config names its exit policy"
    );
    assert_eq!(
        check(&keep).expect("valid").exit,
        pinion_gateway::ExitPolicy::KeepProtective
    );
    let old = TESTNET_TOML.replace(
        "open_orders = \"cancel\"",
        "open_orders = \"cancel\"\ncancel_on_exit = false",
    );
    let e = check(&old).expect_err("the old key is refused");
    let p = e
        .problems
        .iter()
        .find(|p| p.key == "live.orders.cancel_on_exit")
        .unwrap_or_else(|| panic!("{e}"));
    assert!(p.message.contains("policy = \"leave\""), "{}", p.message);
}

#[test]
fn the_order_session_format_is_json_unless_sbe_is_asked_for_and_nothing_else_is_taken() {
    use pinion_gateway::binance::ResponseFormat;
    let format = |toml: &str| {
        check(toml)
            .expect("valid")
            .live
            .expect("live")
            .orders
            .expect("orders")
            .response_format
    };
    assert_eq!(format(TESTNET_TOML), ResponseFormat::Json);
    let with = |value: &str| {
        TESTNET_TOML.replace(
            "open_orders = \"cancel\"",
            &format!("open_orders = \"cancel\"\nresponse_format = \"{value}\""),
        )
    };
    assert_eq!(format(&with("sbe")), ResponseFormat::Sbe);
    assert_eq!(format(&with("json")), ResponseFormat::Json);
    let e = check(&with("SBE")).expect_err("only json or sbe");
    assert!(
        e.problems
            .iter()
            .any(|p| p.key == "live.orders.response_format" && p.message.contains("\"SBE\"")),
        "{e}"
    );
}
