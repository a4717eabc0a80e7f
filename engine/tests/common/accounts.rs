//! The Binance Spot BTCUSDT account several backtest tests trade on the real recording.

/// The account and the instrument, as the shipped backtest configs have them.
pub const ACCOUNT: &str = r#"
[pacing]
mode = "max"

[runtime]
progress = false

[risk]
max_order_qty = "0.01"
max_notional = "1000"
max_position = "0.005"
max_open_orders = 10
orders_per_second = 100
order_burst = 10
price_band_bps = 50

[fees]
maker_bps = 10.0
taker_bps = 10.0

[backtest]
period_ms = 1000
capital = "10000"

[[instrument]]
venue = "binance-spot"
symbol = "BTCUSDT"
tick_size = "0.01"
step_size = "0.00001"
qty_decimals = 8
"#;

/// A market maker quoting behind the touch, and an imbalance trader, each with a budget of
/// its own smaller than the account's.
pub const APART: &str = r#"
[[strategy]]
name = "maker"
kind = "market-making"
order_qty = "0.001"
[strategy.market_making]
fair = "microprice"
half_spread_bps = 0.5
skew_bps = 2.0
requote_bps = 0.5
levels = 2
level_step_bps = 0.5
[strategy.risk]
max_position = "0.002"

[[strategy]]
name = "taker"
kind = "imbalance"
order_qty = "0.001"
threshold = 0.5
[strategy.risk]
max_position = "0.003"
max_open_orders = 2
"#;

/// A pair: the Bybit capture's DOGEUSDT perpetual against its SOLUSDT (on one connection, so
/// their books interleave in time), 50 USDT a leg, thresholds tight enough for its quiet ratio.
pub const BYBIT_PAIR: &str = r#"
[[strategy]]
name = "pair"
kind = "pairs"
instruments = ["bybit-linear:DOGEUSDT", "bybit-linear:SOLUSDT"]
[strategy.pairs]
entry_bps = 1.0
exit_bps = 0.2
mean_samples = 50
warmup_samples = 20
notional = "50"
"#;
