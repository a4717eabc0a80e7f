//! `[live]`: what `pinion live` connects to and how its connections behave.

use std::path::PathBuf;

use serde::Deserialize;

/// `[live]`, as written. Every duration is in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// The venue (`binance-spot`, `binance-usdm`, `binance-coinm`, `bybit-spot`,
    /// `bybit-linear`, or a test network).
    pub venue: String,
    /// The WebSocket base: `wss://stream.binance.com:9443/stream`.
    pub ws_url: String,
    /// A second WebSocket base carrying the same streams: every connection gets a partner
    /// there and the two are merged by update id (Binance only). The same URL as `ws_url`
    /// makes a second connection to the same host.
    #[serde(default)]
    pub redundant_ws_url: Option<String>,
    /// What `ws_url` sends: `json` (the default) or `sbe`, Binance Spot's binary market data
    /// (`wss://stream-sbe.binance.com:9443/stream`: depth every 20 ms, no text to parse).
    #[serde(default)]
    pub encoding: Option<String>,
    /// What `redundant_ws_url` sends (default: `encoding`): a JSON feed and an SBE feed of
    /// the same streams are merged by update id like any redundant pair.
    #[serde(default)]
    pub redundant_encoding: Option<String>,
    /// The environment variable (or systemd credential) holding the Ed25519 API key that SBE
    /// streams ask for in the `X-MBX-APIKEY` header. Default: `[live.orders]`'s `api_key_env`.
    #[serde(default)]
    pub sbe_api_key_env: Option<String>,
    /// How long a message that skips ahead on one feed waits for the other to fill the gap.
    #[serde(default = "default_gap_hold_ms")]
    pub gap_hold_ms: u64,
    /// The REST base: `https://api.binance.com`.
    pub rest_url: String,
    /// The venue's symbols.
    pub symbols: Vec<String>,
    /// Stream suffixes for every symbol (`depth@100ms`, `bookTicker`, `trade`).
    pub streams: Vec<String>,
    /// Levels per REST snapshot.
    #[serde(default = "default_snapshot_limit")]
    pub snapshot_limit: u32,
    /// A PEM file of extra trusted certificates (the exchange simulator's); the public roots
    /// are always trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where the venue's instrument list is cached: written after a fetch at start-up, read
    /// when the fetch fails.
    #[serde(default)]
    pub exchange_info_cache: Option<PathBuf>,
    /// Record everything received to this `.pnr` file.
    #[serde(default)]
    pub record: Option<PathBuf>,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[serde(default)]
    pub duration_s: f64,
    /// Streams per connection at most (0: the venue's limit).
    #[serde(default)]
    pub max_streams_per_connection: usize,
    /// Control messages per second at most (0: the venue's limit less a margin).
    #[serde(default)]
    pub control_messages_per_sec: f64,
    /// Ack deadline.
    #[serde(default = "default_ack_ms")]
    pub ack_timeout_ms: u64,
    /// Nothing read for this long: reconnect.
    #[serde(default = "default_idle_ms")]
    pub read_idle_timeout_ms: u64,
    /// A depth stream silent this long while its connection flows is stale (0: off).
    #[serde(default = "default_stale_ms")]
    pub stream_stale_ms: u64,
    /// Healthy data for this long resets the reconnect backoff.
    #[serde(default = "default_healthy_ms")]
    pub healthy_after_ms: u64,
    /// First reconnect delay cap.
    #[serde(default = "default_backoff_base_ms")]
    pub reconnect_base_ms: u64,
    /// Largest reconnect delay.
    #[serde(default = "default_backoff_cap_ms")]
    pub reconnect_cap_ms: u64,
    /// Replace each connection this long after it opened, make-before-break (0: never; a
    /// `serverShutdown` notice still does). The venue cuts at 24 h.
    #[serde(default = "default_rotate_s")]
    pub rotate_after_s: f64,
    /// Up to this much is added to `rotate_after_s` at random.
    #[serde(default = "default_rotate_jitter_s")]
    pub rotate_jitter_s: f64,
    /// The venue's request-weight limit per window (0: the venue's, 6000 Spot, 2400 futures).
    #[serde(default)]
    pub rest_weight_limit: u32,
    /// The window it counts over, seconds.
    #[serde(default = "default_weight_window_s")]
    pub rest_weight_window_s: f64,
    /// Share of the venue's request-weight limit this session may use.
    #[serde(default = "default_weight_share")]
    pub rest_weight_share: f64,
    /// `SO_BUSY_POLL` on every socket, µs (0: the system's default). Busy-polls the NIC queue
    /// from the read call; pays off on isolated cores.
    #[serde(default)]
    pub busy_poll_us: u32,
    /// `SO_RCVBUF`, bytes (0: the kernel's autotuning).
    #[serde(default)]
    pub recv_buffer: usize,
    /// `SO_SNDBUF`, bytes (0: the kernel's autotuning).
    #[serde(default)]
    pub send_buffer: usize,
    /// `TCP_QUICKACK` on every socket.
    #[serde(default)]
    pub quickack: bool,
    /// Seeds the reconnect jitter.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `[live.orders]`: order entry over the venue's WebSocket API, used by
    /// `pinion live --trade`.
    #[serde(default)]
    pub orders: Option<LiveOrdersConfig>,
}

/// `[live.orders]`, as written: where orders go and how they are authenticated. Every duration
/// is in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveOrdersConfig {
    /// The WS API URL: `wss://ws-api.binance.com:443/ws-api/v3`.
    pub ws_api_url: String,
    /// `ed25519` (logs on; orders carry no signature) or `hmac` (every request signed).
    pub key_kind: String,
    /// The environment variable holding the API key.
    pub api_key_env: String,
    /// The environment variable holding the secret: the Ed25519 private key as PKCS#8 PEM, or
    /// the HMAC secret.
    pub secret_env: String,
    /// `recvWindow`, ms with up to three decimals (0: the exchange's default, 5000).
    #[serde(default = "default_recv_window_ms")]
    pub recv_window_ms: f64,
    /// Self-trade prevention mode (`EXPIRE_TAKER`, `EXPIRE_MAKER`, `EXPIRE_BOTH`, `DECREMENT`,
    /// `NONE`); unset: the symbol's default.
    #[serde(default)]
    pub stp_mode: Option<String>,
    /// Orders found open at start-up that this run did not place: `cancel` or `keep`.
    #[serde(default = "default_open_orders")]
    pub open_orders: String,
    /// Replaced by `[exit] policy`; still read so that a config that sets it is told so,
    /// rather than told the key is unknown.
    #[serde(default)]
    pub cancel_on_exit: Option<bool>,
    /// An answer later than this makes the order's outcome unknown.
    #[serde(default = "default_answer_timeout_ms")]
    pub answer_timeout_ms: u64,
    /// How long after an outcome became unknown to ask `order.status` (past the exchange's own
    /// 10 s backend timeout).
    #[serde(default = "default_query_after_ms")]
    pub query_after_ms: u64,
    /// Most connects per 5 minutes (the exchange allows 300 per IP).
    #[serde(default = "default_connects")]
    pub connects_per_5min: usize,
    /// Failures in a row (lost connections, answers of unknown outcome, answers not in time)
    /// that open the circuit breaker, which then holds new orders back (0: never).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one order goes as a probe.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Record every frame the order session receives (API key masked) to this `.pnr` file
    /// (with several symbols, one file each, the symbol added to the name).
    #[serde(default)]
    pub record: Option<PathBuf>,
    /// The encoding of answers and user data: `json` (default) or `sbe` (schema 3:5, checked
    /// against the exchange's schema life-cycle at start-up).
    #[serde(default = "default_response_format")]
    pub response_format: String,
}

fn default_recv_window_ms() -> f64 {
    1000.0
}
fn default_response_format() -> String {
    "json".to_owned()
}
fn default_open_orders() -> String {
    "cancel".to_owned()
}
fn default_answer_timeout_ms() -> u64 {
    2000
}
fn default_query_after_ms() -> u64 {
    11_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    5000
}
fn default_connects() -> usize {
    60
}

fn default_snapshot_limit() -> u32 {
    1000
}
fn default_gap_hold_ms() -> u64 {
    50
}
fn default_ack_ms() -> u64 {
    5000
}
fn default_idle_ms() -> u64 {
    30_000
}
fn default_stale_ms() -> u64 {
    5000
}
fn default_healthy_ms() -> u64 {
    30_000
}
fn default_backoff_base_ms() -> u64 {
    250
}
fn default_backoff_cap_ms() -> u64 {
    30_000
}
fn default_rotate_s() -> f64 {
    82_800.0
}
fn default_rotate_jitter_s() -> f64 {
    600.0
}
fn default_weight_window_s() -> f64 {
    60.0
}
fn default_weight_share() -> f64 {
    0.5
}
fn default_seed() -> u64 {
    1
}
