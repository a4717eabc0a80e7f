//! Binance Spot order entry over the WebSocket API: the pure core, with no network.
//!
//! The session layer (socket, TLS, WebSocket framing) is a thin shell over these modules:
//!
//! * [`sign`]: HMAC-SHA256 and Ed25519 signatures over the payloads Binance defines, and the
//!   [`sign::Credentials`] read from the environment.
//! * [`client_id`]: pinion's [`ClientOrderId`](pinion_strategy::ClientOrderId) ↔ Binance's
//!   `clientOrderId` text, with a per-run prefix.
//! * [`clock`]: the exchange's clock offset from `time` answers (minimum-RTT filter), the drift
//!   alarm, and the `-1021` reset.
//! * [`limits`]: exact fixed-window rate-limit counters, corrected by the server's counts, with
//!   the 429/418 discipline.
//! * [`orders`]: the state of every order, merged from answers, user data and queries, with
//!   `Unknown` for outcomes that cannot be known yet.
//! * [`template`]: pre-serialised WS API requests with fixed-width slots patched per order,
//!   parameters of protective orders and order lists left out (blanked) when absent.
//! * [`contingent`]: protective orders (stop loss, take profit, trailing) and order lists
//!   (OCO, OTO, OTOCO) as a caller asks for them, checked against the documented parameters.
//! * [`guard`]: the position's protective orders resting on the exchange, resized with it.
//! * [`mirror`]: the session's readiness and counters, published for other threads.
//! * [`keycheck`]: what the exchange says about the order key at start-up (account state,
//!   commission rates, the key's withdrawal and IP restrictions).
//! * [`stp`]: the configured self-trade prevention mode against the modes each symbol allows,
//!   checked at start-up so that a mode the exchange would refuse stops the run before any
//!   order.
//! * [`sbe`]: the WS API's SBE frames (`responseFormat=sbe`) read into the JSON [`wire`] reads.
//! * [`sbe_direct`]: the order path of an SBE session (execution reports, order answers) read
//!   straight into the values [`wire`] gives, without JSON text.
//! * [`wire`]: responses (with their `rateLimits`) and user data events, read without copying;
//!   failures classified so an unknown outcome is never taken for a rejection.
//!
//! Every module is tested against the exchange's own documented examples.

pub mod breaker;
pub mod client_id;
pub mod clock;
pub mod contingent;
pub mod guard;
pub mod keycheck;
pub mod limits;
pub mod mirror;
pub mod orders;
pub mod sbe;
pub mod sbe_direct;
pub mod sign;
pub mod stp;
pub mod template;
pub mod venue;
pub mod wire;

pub use venue::{
    AccountSummary, AssetBalance, BinanceConfig, BinanceVenue, GuardSummary, OpenOrdersPolicy,
    OrderSummary, ResponseFormat, SessionStats, VenueError,
};
