//! The live exchange model: one shared market that clients join while it runs.
//!
//! Where [`FeedServer`](crate::FeedServer) replays the whole source to each client from the
//! start, [`LiveExchange`] runs the market once, on its own thread, and clients meet it as they
//! would meet Binance:
//!
//! - **The market** (`market`) reads the source and releases its frames on a clock
//!   ([`LivePacing`]). Per symbol it keeps the truth book (`truth`), seeded from the source's
//!   first REST snapshot of that symbol; the symbol opens at the first diff that bridges that
//!   snapshot (earlier frames are never sent). Each released frame goes to the sessions
//!   subscribed to its stream through a bounded queue; a session that falls
//!   [`LiveConfig::session_queue`] frames behind is disconnected, as Binance drops slow
//!   consumers. When the source ends the market stays open and idle: sessions stay connected,
//!   pinged, and the truth stays at the final update id.
//! - **WebSocket sessions** (`session`) at `/ws`, `/ws/<stream>`, `/stream`,
//!   `/stream?streams=a/b` (also under the futures routes `/public` and `/market`) speak the
//!   live subscription protocol (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`,
//!   `SET_PROPERTY`/`GET_PROPERTY` `combined`), enforce the incoming message rate and the
//!   stream count per connection, ping and drop clients whose pong does not come back.
//! - **REST** (`rest`): `/api/v3/depth`, `/fapi/v1/depth`, `/dapi/v1/depth` from the truth book
//!   at its current update id, with the venue's limits and weights, the
//!   `x-mbx-used-weight-1m` header and a per-IP budget answered with 429; `exchangeInfo`,
//!   `ping`, `time`; the inspection endpoints `/sim/book`, `/sim/stats` and `/sim/account`
//!   (the WS API account, see [`wsapi`](crate::wsapi)). Keep-alive: many
//!   requests on one connection.
//! - **SBE streams** (Spot): the same paths under `/sbe` (or every stream path with
//!   [`LiveConfig::sbe_streams`]) serve Binance's binary market data as
//!   `stream-sbe.binance.com` does: the upgrade needs an `X-MBX-APIKEY` header (refused 401,
//!   code -2014, without one), the streams are `<sym>@trade`, `<sym>@bestBidAsk`,
//!   `<sym>@depth`, `<sym>@depth<N>`, their events go out as binary SBE frames (the recording's
//!   JSON messages encoded by [`pinion_feed::sbe_encode`], one frame each, whatever
//!   `combined` says), control replies and `serverShutdown` as JSON text.
//! - **Bybit v5 public** on `/v5/public/<category>` (`linear`, `spot`) from a Bybit recording:
//!   `{"op":"subscribe","args":[…],"req_id":…}` answered `{"success":true,…,"op":"subscribe"}`,
//!   `{"op":"ping"}` answered with `ret_msg` `pong`; subscribing to `orderbook.<N>.<SYMBOL>`
//!   sends a `snapshot` of N levels from the truth, then the recorded `delta`s that follow it.
//!   Bybit books are keyed `<CATEGORY>:<SYMBOL>` (`truth("linear:BTCUSDT")`,
//!   `/sim/book?symbol=linear:BTCUSDT`); only topics the recording has carry data.
//! - **Faults** ([`FaultPlan`]), seeded and deterministic, each counted in [`LiveStats`] when
//!   applied.
//!
//! This is a test peer: one thread per connection, allocation per message. Nothing a client
//! sends panics the server: every request is bounded and a bad one gets an error answer.

pub mod faults;
mod market;
mod rest;
mod session;
pub mod tap;
mod truth;

pub use faults::{Fault, FaultPlan, FaultSpecError, Target};
pub(crate) use market::MarketState;
pub use tap::WireTap;
pub(crate) use truth::Book;
pub use truth::{Dec, DecError, TruthBook};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinion_feed::{FrameSource, SourceError};

use crate::ExchangeSimError;
use crate::http;
use crate::tls::Conn;

/// Which Binance market the exchange plays; it sets the defaults of [`LiveConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveVenue {
    /// Spot: 5 incoming messages/s, 1024 streams, 6000 weight/min, pings every 20 s.
    Spot,
    /// USD-M futures: 10 messages/s, 200 streams, 2400 weight/min, pings every 3 min.
    UsdM,
    /// COIN-M futures: as USD-M.
    CoinM,
}

/// How the market releases the source's frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LivePacing {
    /// Back to back (sessions that cannot keep up are dropped).
    AsFastAsPossible,
    /// At the recorded receive times divided by `speed`.
    Recorded {
        /// Speed factor, finite and positive.
        speed: f64,
    },
    /// A fixed number of frames per second.
    Rate {
        /// Frames per second, finite and positive.
        frames_per_sec: f64,
    },
}

/// An instrument as `exchangeInfo` describes it, for a source that recorded none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentInfo {
    /// Symbol, upper case.
    pub symbol: String,
    /// `PRICE_FILTER.tickSize`.
    pub tick_size: String,
    /// `LOT_SIZE.stepSize`.
    pub step_size: String,
    /// `NOTIONAL.minNotional` (`MIN_NOTIONAL.notional` on futures).
    pub min_notional: String,
}

/// Settings of a [`LiveExchange`].
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// The market played (limits and defaults).
    pub venue: LiveVenue,
    /// How frames are released.
    pub pacing: LivePacing,
    /// Hold the market until [`LiveExchange::release`] (so clients can connect first).
    pub start_held: bool,
    /// Interval between server pings; `None` sends none.
    pub ping_interval: Option<Duration>,
    /// A ping unanswered this long ends the session.
    pub pong_timeout: Duration,
    /// A blocked write to a client gives up after this long.
    pub write_timeout: Duration,
    /// Frames a session may fall behind before it is disconnected as a slow consumer.
    pub session_queue: usize,
    /// Incoming messages (text, binary, ping, pong) allowed per second per connection; one
    /// more closes it with 1008.
    pub max_messages_per_sec: usize,
    /// Streams one connection may subscribe.
    pub max_streams: usize,
    /// REST request weight per IP per window.
    pub weight_limit: u64,
    /// The fixed weight window (Binance: one minute, aligned to the clock).
    pub weight_window: Duration,
    /// WebSocket connection attempts allowed per IP within the window (Binance: 300 per
    /// 5 minutes); past it the upgrade is answered 429 (code -1034). `None`: no budget. A
    /// `connbudget` fault replaces it.
    pub connection_attempts: Option<(u64, Duration)>,
    /// Diffs kept per symbol for stale snapshots.
    pub history: usize,
    /// Instruments for a synthesised `exchangeInfo`; empty = derived from the prices and
    /// quantities seen.
    pub instruments: Vec<InstrumentInfo>,
    /// The faults to inject.
    pub faults: FaultPlan,
    /// The WebSocket API (order entry) at `/ws-api/v3`; `None` leaves the path unserved.
    pub ws_api: Option<crate::wsapi::WsApiConfig>,
    /// Every stream path serves SBE, as `stream-sbe.binance.com` does (Spot only). Without it
    /// only the paths under `/sbe` (`/sbe/ws`, `/sbe/stream?streams=…`) do.
    pub sbe_streams: bool,
}

impl LiveConfig {
    /// Defaults of `venue`, released as fast as possible.
    pub fn for_venue(venue: LiveVenue) -> Self {
        let spot = venue == LiveVenue::Spot;
        LiveConfig {
            venue,
            pacing: LivePacing::AsFastAsPossible,
            start_held: false,
            ping_interval: Some(Duration::from_secs(if spot { 20 } else { 180 })),
            pong_timeout: Duration::from_secs(if spot { 60 } else { 600 }),
            write_timeout: Duration::from_secs(10),
            session_queue: 16_384,
            max_messages_per_sec: if spot { 5 } else { 10 },
            max_streams: if spot { 1024 } else { 200 },
            weight_limit: if spot { 6000 } else { 2400 },
            weight_window: Duration::from_secs(60),
            connection_attempts: Some((300, Duration::from_secs(300))),
            history: 256,
            instruments: Vec::new(),
            faults: FaultPlan::none(),
            ws_api: None,
            sbe_streams: false,
        }
    }

    /// Binance Spot's defaults.
    pub fn spot() -> Self {
        Self::for_venue(LiveVenue::Spot)
    }

    /// Binance USD-M futures' defaults.
    pub fn usdm() -> Self {
        Self::for_venue(LiveVenue::UsdM)
    }

    /// Checks the settings that could make the exchange misbehave.
    pub fn validate(&self) -> Result<(), ExchangeSimError> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        match self.pacing {
            LivePacing::Recorded { speed } if !positive(speed) => {
                return Err(ExchangeSimError::Config(
                    "speed must be finite and positive",
                ));
            }
            LivePacing::Rate { frames_per_sec } if !positive(frames_per_sec) => {
                return Err(ExchangeSimError::Config("rate must be finite and positive"));
            }
            _ => {}
        }
        if self.ping_interval.is_some_and(|d| d.is_zero())
            || self.pong_timeout.is_zero()
            || self.write_timeout.is_zero()
            || self.weight_window.is_zero()
        {
            return Err(ExchangeSimError::Config(
                "intervals, timeouts and the weight window must not be zero",
            ));
        }
        if self.sbe_streams && self.venue != LiveVenue::Spot {
            return Err(ExchangeSimError::Config(
                "SBE streams are Binance Spot's only",
            ));
        }
        if self.session_queue == 0 || self.max_messages_per_sec == 0 || self.max_streams == 0 {
            return Err(ExchangeSimError::Config(
                "queue, message rate and stream limits must be positive",
            ));
        }
        if let Some(api) = &self.ws_api {
            if api.balances.iter().any(|(_, a)| Dec::parse(a).is_err()) {
                return Err(ExchangeSimError::Config(
                    "WS API start balances must be decimals",
                ));
            }
            let one = Dec::parse("1").unwrap_or_default();
            if api.maker_commission >= one || api.taker_commission >= one {
                return Err(ExchangeSimError::Config(
                    "WS API commission rates must be below 1",
                ));
            }
        }
        Ok(())
    }
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug, Default)]
        pub(crate) struct LiveCounters {
            $(pub $name: AtomicU64,)*
        }

        /// The counters of a [`LiveExchange`] (also served as JSON at `/sim/stats`).
        #[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
        pub struct LiveStats {
            $($(#[$doc])* pub $name: u64,)*
            /// Whether the source is exhausted (the market is idle).
            pub exhausted: bool,
            /// Symbols whose market is open.
            pub open_symbols: Vec<String>,
            /// REST weight used per IP and fixed window.
            pub weight_windows: Vec<WeightWindow>,
        }

        impl LiveCounters {
            fn load(&self) -> LiveStats {
                LiveStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                    ..LiveStats::default()
                }
            }
        }
    };
}

counters! {
    /// TCP connections accepted.
    connections,
    /// WebSocket sessions opened (killed handshakes included).
    ws_sessions,
    /// Requests answered with an error (bad head, unknown path, bad parameter).
    bad_requests,
    /// Frames the market released (broadcast).
    frames_released,
    /// Frames of the source skipped because their symbol was not open yet.
    frames_before_open,
    /// Frames written to sessions.
    frames_sent,
    /// Diffs in the source that do not continue the truth (the source's own gaps).
    source_gaps,
    /// Records or levels the source could not give (skipped).
    source_errors,
    /// Sessions disconnected for falling too far behind.
    slow_disconnects,
    /// Sessions closed with 1008 for sending too many messages.
    message_rate_closes,
    /// Control requests (SUBSCRIBE …) received.
    control_requests,
    /// Control requests answered with an error.
    control_errors,
    /// Pings sent.
    pings_sent,
    /// Sessions dropped for an unanswered ping.
    pong_timeouts,
    /// WS API messages (answers and user data) sent in SBE, to sessions that asked.
    ws_api_sbe_messages,
    /// WS API requests that place orders (`order.place`, `order.cancelReplace`, the
    /// `orderList.place.*`), refused ones included.
    ws_api_order_requests,
    /// REST requests answered.
    rest_requests,
    /// REST depth snapshots served.
    snapshots_served,
    /// REST weight charged in all.
    weight_used,
    /// REST requests answered 429 for the weight budget.
    weight_429,
    /// Connection attempts answered 429 for the attempt budget.
    connection_429,
    /// Fault: frames dropped (`drop`).
    fault_drops,
    /// Fault: frames sent twice (`dup`).
    fault_duplicates,
    /// Fault: frame pairs swapped (`swap`).
    fault_swaps,
    /// Fault: frames withheld from a muted stream (`mute`).
    fault_muted,
    /// Fault: frames dropped at random (`rdrop`).
    fault_random_drops,
    /// Fault: connections reset mid-frame (`rst`).
    fault_resets,
    /// Fault: sessions gone half-open (`halfopen`).
    fault_half_open,
    /// Fault: sessions closed with 1008 (`close1008`).
    fault_close_1008,
    /// Fault: `serverShutdown` notices sent (`shutdown`).
    fault_shutdowns,
    /// Fault: sessions cut at their maximum age (`maxage`).
    fault_max_age,
    /// Fault: control requests left unanswered (`noack`).
    fault_no_acks,
    /// Fault: connections killed after the handshake (`kill`).
    fault_kills,
    /// Fault: snapshots delayed (`slowsnap`).
    fault_slow_snapshots,
    /// Fault: snapshots served stale (`stalesnap`).
    fault_stale_snapshots,
    /// SBE endpoint upgrades refused for a missing or malformed `X-MBX-APIKEY`.
    sbe_key_refusals,
    /// Released Spot frames of an SBE stream kind the encoder refused (not served in SBE).
    sbe_encode_errors,
}

/// REST weight used by one IP in one fixed window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WeightWindow {
    /// The client's IP.
    pub ip: String,
    /// Window start, ms since the Unix epoch.
    pub start_ms: u64,
    /// Weight charged in it.
    pub used: u64,
}

/// What the REST side keeps between requests.
#[derive(Debug, Default)]
pub(crate) struct RestState {
    /// `(ip, window index) → weight used`.
    pub weight: HashMap<(IpAddr, u64), u64>,
    /// Connection attempt times per IP (for the attempt budget).
    pub attempts: HashMap<IpAddr, std::collections::VecDeque<Instant>>,
    /// Depth answers so far (for the counted snapshot faults).
    pub depth_answers: u64,
}

/// What every thread shares.
pub(crate) struct LiveShared {
    pub config: LiveConfig,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub stop: AtomicBool,
    pub counters: LiveCounters,
    pub market: Mutex<market::MarketState>,
    /// Signalled when the market opens a symbol, is released, or runs out.
    pub market_changed: Condvar,
    pub sessions: Mutex<Vec<Arc<session::SessionLink>>>,
    pub rest: Mutex<RestState>,
    pub next_session: AtomicU64,
    pub kills: AtomicU64,
    /// Sockets of the REST connections open now, so a stop can end their idle waits.
    pub rest_sockets: Mutex<Vec<(u64, TcpStream)>>,
    pub next_rest: AtomicU64,
    /// The WS API's simulated account.
    pub ws_api: crate::wsapi::AccountCell,
    /// Where frame writes and order reads are stamped, once installed.
    pub tap: OnceLock<Arc<WireTap>>,
}

impl LiveShared {
    /// The market state; a poisoned lock (a panicked thread) is taken over as is.
    pub fn market(&self) -> MutexGuard<'_, market::MarketState> {
        self.market.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session registry.
    pub fn sessions(&self) -> MutexGuard<'_, Vec<Arc<session::SessionLink>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The REST state.
    pub fn rest(&self) -> MutexGuard<'_, RestState> {
        self.rest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one to a counter.
    pub fn count(&self, counter: impl Fn(&LiveCounters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    /// All counters, with the market's and the REST side's state.
    pub fn stats(&self) -> LiveStats {
        let mut stats = self.counters.load();
        {
            let market = self.market();
            stats.exhausted = market.exhausted;
            stats.open_symbols = market.open_symbols();
        }
        let window_ms = self.config.weight_window.as_millis() as u64;
        let rest = self.rest();
        let mut windows: Vec<WeightWindow> = rest
            .weight
            .iter()
            .map(|((ip, w), used)| WeightWindow {
                ip: ip.to_string(),
                start_ms: w.saturating_mul(window_ms),
                used: *used,
            })
            .collect();
        windows.sort_by(|a, b| (a.start_ms, &a.ip).cmp(&(b.start_ms, &b.ip)));
        stats.weight_windows = windows;
        stats
    }
}

/// The live exchange. See the [module docs](self).
pub struct LiveExchange {
    addr: SocketAddr,
    shared: Arc<LiveShared>,
    acceptor: Option<JoinHandle<()>>,
    market: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LiveExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveExchange")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LiveExchange {
    /// Listens on `listen` (port 0 picks a free one), plaintext or TLS with `tls`, and starts
    /// the market on the source `open` returns (opened once, here, so a bad source fails now).
    pub fn start<F>(
        listen: SocketAddr,
        config: LiveConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        open: F,
    ) -> Result<LiveExchange, ExchangeSimError>
    where
        F: Fn() -> Result<Box<dyn FrameSource + Send>, SourceError>,
    {
        config.validate()?;
        let source = open()?;
        let listener = TcpListener::bind(listen).map_err(|source| ExchangeSimError::Bind {
            addr: listen,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ExchangeSimError::Bind {
                addr: listen,
                source,
            })?;
        let held = config.start_held;
        let history = config.history;
        let ws_api = crate::wsapi::AccountCell::new(config.ws_api.as_ref());
        let shared = Arc::new(LiveShared {
            config,
            tls,
            stop: AtomicBool::new(false),
            counters: LiveCounters::default(),
            market: Mutex::new(market::MarketState::new(history, !held)),
            market_changed: Condvar::new(),
            sessions: Mutex::new(Vec::new()),
            rest: Mutex::new(RestState::default()),
            next_session: AtomicU64::new(0),
            kills: AtomicU64::new(0),
            rest_sockets: Mutex::new(Vec::new()),
            next_rest: AtomicU64::new(0),
            ws_api,
            tap: OnceLock::new(),
        });
        let market = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("exchange-sim-market".into())
                .spawn(move || market::run(source, &shared))
                .map_err(ExchangeSimError::Spawn)?
        };
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("exchange-sim-live-accept".into())
                .spawn(move || accept_loop(listener, &shared))
                .map_err(ExchangeSimError::Spawn)?
        };
        Ok(LiveExchange {
            addr,
            shared,
            acceptor: Some(acceptor),
            market: Some(market),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stamps every market frame written and every `order.place` read from now on into `tap`
    /// (see [`tap`]); false when a tap was installed already.
    pub fn tap_wire(&self, tap: Arc<WireTap>) -> bool {
        self.shared.tap.set(tap).is_ok()
    }

    /// Starts a market held by [`LiveConfig::start_held`]; nothing when it runs already.
    pub fn release(&self) {
        self.shared.market().running = true;
        self.shared.market_changed.notify_all();
    }

    /// The truth book of `symbol` (any case), every level; `None` before it is seeded.
    pub fn truth(&self, symbol: &str) -> Option<TruthBook> {
        self.truth_depth(symbol, usize::MAX)
    }

    /// The truth book of `symbol`, at most `depth` levels a side.
    pub fn truth_depth(&self, symbol: &str, depth: usize) -> Option<TruthBook> {
        let symbol = symbol.to_ascii_uppercase();
        let market = self.shared.market();
        market
            .symbols
            .get(&symbol)
            .filter(|s| s.seeded)
            .map(|s| s.book.truth(&symbol, depth))
    }

    /// Whether `symbol`'s market is open (its first bridging diff was released).
    pub fn is_open(&self, symbol: &str) -> bool {
        self.shared
            .market()
            .symbols
            .get(&symbol.to_ascii_uppercase())
            .is_some_and(|s| s.open)
    }

    /// Waits until `symbol`'s market is open; whether it opened within `timeout`.
    pub fn wait_open(&self, symbol: &str, timeout: Duration) -> bool {
        let symbol = symbol.to_ascii_uppercase();
        self.wait_for(timeout, |m| {
            m.symbols.get(&symbol).is_some_and(|s| s.open) || m.exhausted
        }) && self.is_open(&symbol)
    }

    /// Waits until the market has released its source's last frame; whether it did within
    /// `timeout`. The market stays open afterwards.
    pub fn wait_exhausted(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |m| m.exhausted)
    }

    /// Whether the source is exhausted.
    pub fn is_exhausted(&self) -> bool {
        self.shared.market().exhausted
    }

    /// Waits until at least `n` frames were released (or the source ran out); whether `n` were.
    pub fn wait_released(&self, n: u64, timeout: Duration) -> bool {
        self.wait_for(timeout, |m| m.released >= n || m.exhausted);
        self.shared.market().released >= n
    }

    fn wait_for(&self, timeout: Duration, done: impl Fn(&market::MarketState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut market = self.shared.market();
        loop {
            if done(&market) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            market = self
                .shared
                .market_changed
                .wait_timeout(market, (deadline - now).min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// The WS API account's balances now, `(asset, free, locked)`, amounts normalised.
    pub fn ws_api_balances(&self) -> Vec<(String, String, String)> {
        self.shared.ws_api.balances()
    }

    /// Every order, trade and balance of the WS API account, as `/sim/account` serves them
    /// (see [`SimAccount`](crate::wsapi::SimAccount)).
    pub fn sim_account(&self) -> crate::wsapi::SimAccount {
        self.shared.ws_api.snapshot()
    }

    /// A trade print of `qty` at `price` of `symbol` put through the WS API account as if the
    /// market had released it, as `/sim/print` does: stops it crosses trigger. `false` without
    /// a WS API.
    pub fn print(&self, symbol: &str, price: Dec, qty: Dec) -> bool {
        crate::wsapi::inject_print(&self.shared, symbol, price, qty)
    }

    /// The counters so far.
    pub fn stats(&self) -> LiveStats {
        self.shared.stats()
    }

    /// Serves until the process is killed.
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    /// Stops the market and every session (closing with 1001) and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.market_changed.notify_all();
        // REST connections idle between requests wait in a read: end it.
        for (_, socket) in self
            .shared
            .rest_sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Some(market) = self.market.take() {
            let _ = market.join();
        }
    }
}

impl Drop for LiveExchange {
    fn drop(&mut self) {
        if self.acceptor.is_some() || self.market.is_some() {
            self.stop_and_join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<LiveShared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        shared.count(|c| &c.connections);
        workers.retain(|w| !w.is_finished());
        let worker_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("exchange-sim-live-conn".into())
            .spawn(move || serve_connection(stream, &worker_shared));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(_) => shared.count(|c| &c.bad_requests),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

fn serve_connection(tcp: TcpStream, shared: &Arc<LiveShared>) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(shared.config.write_timeout));
    let ip = tcp
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let mut first = [0u8; 1];
    if shared.tls.is_some() && !matches!(tcp.peek(&mut first), Ok(1) if first[0] == 0x16) {
        shared.count(|c| &c.bad_requests);
        return;
    }
    let Ok(mut stream) = Conn::new(tcp, shared.tls.as_ref()) else {
        shared.count(|c| &c.bad_requests);
        return;
    };
    let head = match http::read_head(&mut stream) {
        Ok(head) => head,
        Err(http::HeadError::Closed) => return,
        Err(_) => {
            shared.count(|c| &c.bad_requests);
            if let Conn::Plain(_) = stream {
                let _ = http::respond_error(&mut stream, "400 Bad Request", -1100, "Bad request.");
            }
            return;
        }
    };
    if head.upgrade_websocket && head.path == crate::wsapi::WS_API_PATH {
        crate::wsapi::open(stream, &head, shared);
    } else if head.upgrade_websocket {
        session::open(stream, &head, shared, ip);
    } else {
        rest::serve(stream, head, shared, ip);
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
