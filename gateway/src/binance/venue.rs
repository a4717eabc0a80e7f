//! The Binance Spot venue: one WebSocket API session on the gateway thread, behind
//! [`OrderVenue`].
//!
//! **The session.** A non-blocking [`WssConnection`] polled with a zero timeout on every
//! [`OrderVenue::poll`]. After each connect it goes through the same steps before a single order
//! may go out:
//!
//! 1. `time`, until the clock offset estimate is warm ([`ClockOffset`]): every timestamp sent is
//!    the exchange's time, and a tight `recvWindow` holds;
//! 2. `session.logon` with an Ed25519 key (orders then carry no signature); with an HMAC key
//!    there is no logon and every request is signed;
//! 3. user data on the same connection: `userDataStream.subscribe` (logged on) or
//!    `userDataStream.subscribe.signature`;
//! 4. reconciliation: `openOrders.status` (each of this run's orders listed there takes the
//!    state and filled quantity listed) and `myTrades` from the last trade seen (fills the
//!    interruption hid, each at its own price) and `openOrderLists.status` (each of this run's
//!    order lists takes the status listed); then an `order.status` for each order still
//!    open here that the list does not hold. On the first connect, orders an earlier run (or
//!    anyone) left open are cancelled with `openOrders.cancelAll` or kept, as
//!    [`OpenOrdersPolicy`] says, and the latest trade id is taken as where later
//!    reconciliations start.
//!
//! Only then is the venue ready. An intent that arrives before, or while the session is down,
//! is refused at once with [`RejectReason::NotConnected`]: never queued to go out late.
//!
//! **Orders.** Each intent is checked against the hard limits, the rate-limit model
//! ([`RateLimiter`]; a refusal is [`RejectReason::Overloaded`], or [`RejectReason::Halted`]
//! under a ban) and the order table ([`OrderTable`]), then its request is written from a
//! pre-built template ([`RequestTemplate`]) into a frame this venue keeps, stamped with the
//! exchange's time as the bytes are written, and sent: no allocation. Answers and user data
//! update the table, which emits the strategy's reports; an answer that does not come in time,
//! or a connection lost after the bytes left, makes the outcome *unknown* until user data or
//! `order.status` resolves it (see [`super::orders`]).
//!
//! **Protective orders and lists.** [`BinanceVenue::submit_contingent`] (stop loss, take
//! profit, trailing), [`BinanceVenue::submit_list`] (OCO, OTO, OTOCO) and
//! [`BinanceVenue::cancel_list`] go the same way, from their own templates; each order of a
//! list is tracked and reported as an order, the list's own state beside it
//! ([`super::orders::OrderList`]).
//!
//! **Disconnects.** Every unanswered request becomes unknown, its rate-limit charge stays, and
//! the session reconnects with capped, jittered backoff under a per-window attempt budget.
//!
//! **SBE.** With [`ResponseFormat::Sbe`] the session asks for `responseFormat=sbe` with the
//! pinned schema (3:5) in its URL, after checking the schema against the exchange's published
//! life-cycle: a retired schema refuses to make the venue, a deprecated one is reported
//! ([`BinanceVenue::sbe_schema`]). The order path's binary frames (execution reports, the
//! answers to order requests) are read straight into the values the session acts on
//! ([`super::sbe_direct`]); every other frame by [`super::sbe`] into the JSON the rest of the
//! session reads. Both end in the same handlers (one per message), so both formats take the
//! same paths to the order table.
//!
//! **At the end** ([`OrderVenue::wind_down`]) every open order of the symbol is cancelled with
//! `openOrders.cancelAll` (when configured), the venue waits for the cancels to show in user
//! data, and writes its [`AccountSummary`] for the run's report.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrayvec::{ArrayString, ArrayVec};
use pinion_core::decimal::Decimal;
use pinion_core::{ConnId, InstrumentId, InstrumentSpec, Px, Qty, RawRecord, RecordKind};
use pinion_feed::exchange_info::RateLimit;
use pinion_feed::recording::RecorderHandle;
use pinion_net::backoff::{AttemptBudget, BackoffPolicy, Reconnect, SplitMix64};
use pinion_net::mio::{Events, Poll, Token};
use pinion_net::wss::{Endpoint, Status, WssConnection, WssError, WssSettings};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderIntent, OrderReason, OrderSide, OrderStatus,
    OrderType, ReasonCode, RejectReason, TimeInForce, VenueOrderId,
};

use super::breaker::{BreakerConfig, CircuitBreaker};
use super::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use super::clock::{ClockConfig, ClockOffset};
use super::contingent::{ContingentError, ContingentLeg, ContingentOrder, ListIntent, ListKind};
use super::guard::{Bracket, Guard, GuardAction, GuardStats, is_guard_id};
use super::limits::{LimitsError, Method, RateLimiter, Refusal, Ticket};
use super::mirror::{BreakerPhase, SessionMirror};
use super::orders::{
    ListRequest, OrderList, OrderState, OrderTable, OrderTableConfig, RequestKind,
};
use super::sbe_direct::Direct;
use super::sign::{Credentials, KeyKind};
use super::template::{
    self, OrderRef, RecvWindow, RequestTemplate, Signing, SlotValues, StpMode, SymbolContext,
    TemplateError,
};
use super::wire::{self, ExecutionReport, Failure, Frame, ResponseId, UnreadReport, UserEvent};
use crate::{ExitOutcome, ExitPolicy, HardLimits, OrderVenue, VenueClock, VenueStats};

const TOKEN: Token = Token(0);
/// Reports a submit can leave for the next poll (refusals).
const QUEUED: usize = 64;
/// Requests awaiting an answer (the rate limiter tracks as many).
const PENDING: usize = super::limits::MAX_IN_FLIGHT;
/// Balances kept.
const BALANCES: usize = 16;

/// What to do with orders found open on the first connect that this run did not place (an
/// earlier session's, taken in with [`BinanceVenue::adopt`], included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenOrdersPolicy {
    /// Cancel every open order of the symbol (`openOrders.cancelAll`) before trading.
    CancelAll,
    /// Leave them; they are counted in the summary and never touched.
    Keep,
}

/// The encoding the WS API answers in, and sends user data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// JSON text frames.
    #[default]
    Json,
    /// SBE binary frames, schema `pinion_sbe_spot::SCHEMA_ID`:`SCHEMA_VERSION`.
    Sbe,
}

/// Where an SBE session's answers go before they are read: reserved at start-up, so answers and
/// events of the order path are read without allocating.
const SBE_TEXT_CAPACITY: usize = 1 << 16;

/// Everything a [`BinanceVenue`] is made from.
#[derive(Debug)]
pub struct BinanceConfig {
    /// The WS API URL (`wss://ws-api.binance.com:443/ws-api/v3`).
    pub url: String,
    /// TLS, socket options and the receive clock's origin.
    pub wss: WssSettings,
    /// The key; an Ed25519 key logs on, an HMAC key signs every request.
    pub credentials: Credentials,
    /// The instrument traded here.
    pub instrument: InstrumentId,
    /// Its spec (symbol, decimals, filters).
    pub spec: InstrumentSpec,
    /// `recvWindow`, or the exchange's default.
    pub recv_window: Option<RecvWindow>,
    /// Self-trade prevention mode, or the symbol's default.
    pub stp_mode: Option<StpMode>,
    /// `exchangeInfo.rateLimits`.
    pub rate_limits: Vec<RateLimit>,
    /// Order table settings (capacity, answer timeout, query delay).
    pub orders: OrderTableConfig,
    /// Clock offset estimator settings.
    pub clock: ClockConfig,
    /// Orders found open on the first connect.
    pub open_orders: OpenOrdersPolicy,
    /// What happens to open orders when the run ends.
    pub exit: ExitPolicy,
    /// Reconnect delays.
    pub reconnect: BackoffPolicy,
    /// Most connects in 5 minutes (the exchange allows 300 per IP).
    pub connects_per_5min: usize,
    /// Seed of the reconnect jitter.
    pub seed: u64,
    /// This run's epoch, the prefix of every client order id.
    pub epoch: RunEpoch,
    /// The circuit breaker in front of new orders.
    pub breaker: BreakerConfig,
    /// Hard limit: open orders.
    pub max_open_orders: usize,
    /// Hard limit: order quantity.
    pub max_order_qty: Qty,
    /// Where the final [`AccountSummary`] is written.
    pub summary: Arc<Mutex<Option<AccountSummary>>>,
    /// The encoding asked for: JSON, or SBE (checked against the schema life-cycle at start).
    pub response_format: ResponseFormat,
    /// Records every frame received (answers and user data; the API key masked) and every
    /// connect and disconnect, for fixtures from a real venue. Off the order path's cost only
    /// as far as a copy into the recorder's ring goes.
    pub capture: Option<RecorderHandle>,
}

/// The URL with the SBE parameters added: `responseFormat=sbe` and the pinned schema.
fn sbe_url(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}responseFormat=sbe&sbeSchemaId={}&sbeSchemaVersion={}",
        pinion_sbe_spot::SCHEMA_ID,
        pinion_sbe_spot::SCHEMA_VERSION
    )
}

/// The pinned SBE schema's standing on `today` in the life-cycle file `lifecycle`.
fn schema_standing(
    lifecycle: &str,
    today: pinion_sbe_spot::lifecycle::Date,
) -> Result<pinion_sbe_spot::lifecycle::Status, VenueError> {
    Ok(
        pinion_sbe_spot::lifecycle::Lifecycle::parse(lifecycle)?.check(
            pinion_sbe_spot::SCHEMA_ID,
            pinion_sbe_spot::SCHEMA_VERSION,
            today,
        )?,
    )
}

/// Today's UTC date, for the schema life-cycle check.
fn today() -> pinion_sbe_spot::lifecycle::Date {
    let days = (wall_us() / 86_400_000_000) as i64;
    civil_date(days)
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil_date(days: i64) -> pinion_sbe_spot::lifecycle::Date {
    // Eras of 400 years (146 097 days), March-based years so the leap day ends the year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    pinion_sbe_spot::lifecycle::Date { year, month, day }
}

/// Why a venue could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// A request template could not be built.
    #[error("request template: {0}")]
    Template(#[from] TemplateError),
    /// The rate limits could not be modelled.
    #[error("rate limits: {0}")]
    Limits(#[from] LimitsError),
    /// The endpoint is not usable.
    #[error("endpoint: {0}")]
    Endpoint(#[from] WssError),
    /// The poller could not be made.
    #[error("poller: {0}")]
    Poll(std::io::Error),
    /// SBE was asked for with a schema the exchange no longer serves (or does not list).
    #[error("SBE: {0}")]
    SbeSchema(#[from] pinion_sbe_spot::lifecycle::LifecycleError),
}

/// Counters of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Connection attempts.
    pub connects: u64,
    /// Sessions that became ready (reconciled).
    pub ready: u64,
    /// Connections lost or closed.
    pub disconnects: u64,
    /// Logons refused (the key, its permissions, or its IP).
    pub logon_refused: u64,
    /// Requests written.
    pub requests: u64,
    /// Answers matched to a request.
    pub answers: u64,
    /// Frames that could not be read, or answers to no request of ours.
    pub bad_frames: u64,
    /// Intents refused because the session was not ready.
    pub not_connected: u64,
    /// Intents refused by the rate-limit model before sending.
    pub rate_refused: u64,
    /// Orders this run did not place found open on the first connect.
    pub foreign_open: u64,
    /// `openOrders.cancelAll` sent.
    pub cancel_all: u64,
    /// Fills learnt from `myTrades` during reconciliation.
    pub reconciled_fills: u64,
    /// `order.status` queries sent.
    pub status_queries: u64,
    /// The last error code the exchange answered (0: none).
    pub last_error: i32,
    /// Answers 429 (a request class stopped until `retryAfter`).
    pub rate_limited: u64,
    /// Answers 418 (the IP banned: everything stops until it lifts).
    pub banned: u64,
    /// Answers saying the key may not do this (`-2015`: revoked, wrong IP, no permission).
    pub unauthorized: u64,
    /// Answers whose `rateLimits` counts differed from the local model's prediction, taken
    /// when nothing else was in flight (so the two must agree exactly).
    pub limit_drift: u64,
    /// Answers whose counts were compared so.
    pub limit_checks: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
    /// New orders refused while it was open.
    pub breaker_refused: u64,
    /// Whether the clock offset moved by more than the alarm threshold at some point.
    pub clock_drift_alarm: bool,
}

/// One asset's balance, as the last `outboundAccountPosition` gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetBalance {
    /// The asset.
    pub asset: ArrayString<16>,
    /// Free.
    pub free: Decimal,
    /// Locked in open orders.
    pub locked: Decimal,
}

/// One order as the venue knows it at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    /// The client order id as sent.
    pub client_order_id: String,
    /// The exchange's order id, when known.
    pub order_id: Option<u64>,
    /// Side.
    pub side: OrderSide,
    /// Limit price.
    pub price: Px,
    /// Order quantity.
    pub qty: Qty,
    /// Filled.
    pub filled: Qty,
    /// State.
    pub state: OrderState,
    /// `t0` of the market data that caused it (engine monotonic ns): the start of its
    /// tick-to-trade.
    pub t0: u64,
    /// Why it was placed.
    pub reason: OrderReason,
}

/// What the venue knows at the end of a run: for the report, and for checking against the
/// exchange's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The symbol.
    pub symbol: String,
    /// Price decimals of `price` fields.
    pub price_decimals: u8,
    /// Quantity decimals of `qty` fields.
    pub qty_decimals: u8,
    /// Every order still tracked (closed orders are kept for the summary).
    pub orders: Vec<OrderSummary>,
    /// Balances from user data.
    pub balances: Vec<AssetBalance>,
    /// Session counters.
    pub session: SessionStats,
    /// Order table counters.
    pub table: super::orders::OrderTableStats,
    /// The clock offset at the end, µs (exchange − local).
    pub clock_offset_us: Option<i64>,
    /// What the exit policy did (`None` before the run ended).
    pub exit: Option<ExitOutcome>,
    /// The protective orders kept on the exchange (`None`: no guard, `protect = "engine"`).
    pub protection: Option<GuardSummary>,
}

/// What the venue's [`Guard`] holds at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSummary {
    /// The position the fills add up to.
    pub position: Qty,
    /// The bracket resting on the exchange, as far as the venue knows.
    pub resting: Option<Bracket>,
    /// Counters.
    pub stats: GuardStats,
}

/// What a request in flight was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Logon,
    Subscribe,
    OpenOrders,
    LatestTrade,
    TradesSince,
    Account,
    CancelAll,
    OpenOrderLists,
    Order(RequestKind, ClientOrderId),
    List(ListRequest, ClientOrderId),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    kind: Kind,
    ticket: Option<Ticket>,
    sent_us: u64,
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Down {
        retry_at_ns: u64,
    },
    Connecting,
    Clock,
    Logon,
    Subscribe,
    Lists,
    Queries,
    Ready,
    /// The run is ending: cancels are out, waiting for them to show.
    Closing {
        until_ns: u64,
    },
    Closed,
}

/// The request templates of the symbol.
#[derive(Debug)]
struct Templates {
    /// `order.place` by [`place_index`].
    place: Vec<RequestTemplate>,
    /// `order.cancelReplace` by [`place_index`], naming the old order by id and by client id.
    replace_by_id: Vec<RequestTemplate>,
    replace_by_client: Vec<RequestTemplate>,
    cancel_by_id: RequestTemplate,
    cancel_by_client: RequestTemplate,
    amend_by_id: RequestTemplate,
    amend_by_client: RequestTemplate,
    status_by_id: RequestTemplate,
    status_by_client: RequestTemplate,
    open_orders: RequestTemplate,
    trades_since: RequestTemplate,
    latest_trade: RequestTemplate,
    account: RequestTemplate,
    cancel_all: RequestTemplate,
    /// `order.place` of any type (the protective ones).
    place_any: RequestTemplate,
    oco: RequestTemplate,
    oto: RequestTemplate,
    otoco: RequestTemplate,
    list_cancel_by_id: RequestTemplate,
    list_cancel_by_client: RequestTemplate,
    open_order_lists: RequestTemplate,
    logon: Option<RequestTemplate>,
    subscribe: RequestTemplate,
    time: RequestTemplate,
}

fn place_index(side: OrderSide, ty: OrderType, tif: TimeInForce) -> usize {
    side as usize * 9 + ty as usize * 3 + tif as usize
}

const SIDES: [OrderSide; 2] = [OrderSide::Buy, OrderSide::Sell];
const TYPES: [OrderType; 3] = [OrderType::Limit, OrderType::LimitMaker, OrderType::Market];
const TIFS: [TimeInForce; 3] = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok];

impl Templates {
    fn new(
        ctx: &SymbolContext,
        credentials: &Credentials,
        logon: bool,
    ) -> Result<Self, TemplateError> {
        let mut place = Vec::with_capacity(18);
        let mut replace_by_id = Vec::with_capacity(18);
        let mut replace_by_client = Vec::with_capacity(18);
        for side in SIDES {
            for ty in TYPES {
                for tif in TIFS {
                    place.push(ctx.order_place(side, ty, tif)?);
                    replace_by_id.push(ctx.order_cancel_replace(
                        OrderRef::OrderId,
                        side,
                        ty,
                        tif,
                    )?);
                    replace_by_client.push(ctx.order_cancel_replace(
                        OrderRef::ClientId,
                        side,
                        ty,
                        tif,
                    )?);
                }
            }
        }
        let (logon, subscribe) = if logon {
            (
                Some(template::session_logon(
                    credentials.api_key(),
                    ctx.recv_window,
                )?),
                template::user_data_stream_subscribe()?,
            )
        } else {
            (
                None,
                template::user_data_stream_subscribe_signature(
                    credentials.api_key(),
                    ctx.recv_window,
                )?,
            )
        };
        Ok(Self {
            place,
            replace_by_id,
            replace_by_client,
            cancel_by_id: ctx.order_cancel(OrderRef::OrderId)?,
            cancel_by_client: ctx.order_cancel(OrderRef::ClientId)?,
            amend_by_id: ctx.order_amend_keep_priority(OrderRef::OrderId)?,
            amend_by_client: ctx.order_amend_keep_priority(OrderRef::ClientId)?,
            status_by_id: ctx.order_status(OrderRef::OrderId)?,
            status_by_client: ctx.order_status(OrderRef::ClientId)?,
            open_orders: ctx.open_orders_status()?,
            trades_since: ctx.my_trades()?,
            latest_trade: ctx.my_trades_latest()?,
            account: ctx.account_balances()?,
            cancel_all: ctx.open_orders_cancel_all()?,
            place_any: ctx.order_place_any()?,
            oco: ctx.order_list_oco()?,
            oto: ctx.order_list_oto()?,
            otoco: ctx.order_list_otoco()?,
            list_cancel_by_id: ctx.order_list_cancel(OrderRef::OrderId)?,
            list_cancel_by_client: ctx.order_list_cancel(OrderRef::ClientId)?,
            open_order_lists: ctx.open_order_lists_status()?,
            logon,
            subscribe,
            time: template::time()?,
        })
    }
}

/// Which template a request is written from.
#[derive(Debug, Clone, Copy)]
enum Which {
    Place(usize),
    ReplaceById(usize),
    ReplaceByClient(usize),
    CancelById,
    CancelByClient,
    AmendById,
    AmendByClient,
    StatusById,
    StatusByClient,
    OpenOrders,
    TradesSince,
    LatestTrade,
    Account,
    CancelAll,
    PlaceAny,
    Oco,
    Oto,
    Otoco,
    ListCancelById,
    ListCancelByClient,
    OpenOrderLists,
    Logon,
    Subscribe,
    Time,
}

/// The Binance Spot venue for one symbol. See the module docs.
pub struct BinanceVenue {
    conn: Option<WssConnection>,
    poll: Poll,
    events: Events,
    core: Core,
}

impl std::fmt::Debug for BinanceVenue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceVenue")
            .field("symbol", &self.core.symbol)
            .field("step", &self.core.step)
            .field("session", &self.core.session)
            .finish_non_exhaustive()
    }
}

/// Everything but the connection and its poller.
struct Core {
    endpoint: Endpoint,
    url: String,
    addrs: Vec<std::net::SocketAddr>,
    wss: WssSettings,
    credentials: Credentials,
    logon: bool,
    symbol: String,
    instrument: InstrumentId,
    hard: HardLimits,
    codec: ClientIdCodec,
    table: OrderTable,
    limiter: RateLimiter,
    clock: ClockOffset,
    breaker: CircuitBreaker,
    templates: Templates,
    reconnect: Reconnect,
    origin: Instant,
    step: Step,
    /// Whether the current step's requests are out.
    step_sent: bool,
    first_connect: bool,
    open_orders_policy: OpenOrdersPolicy,
    exit: ExitPolicy,
    /// The orders open when the run stopped, and whether the session was ready then.
    exit_watch: Option<(Vec<ClientOrderId>, bool)>,
    foreign_found: bool,
    /// Orders an earlier session of this epoch left open were taken in ([`BinanceVenue::adopt`]).
    adopted: bool,
    /// The session must start over (logon or subscription refused).
    restart: bool,
    next_id: u64,
    pending: ArrayVec<Pending, PENDING>,
    queued: ArrayVec<ExecReport, QUEUED>,
    last_trade_id: Option<u64>,
    balances: ArrayVec<AssetBalance, BALANCES>,
    stats: VenueStats,
    session: SessionStats,
    /// The session as last published to `mirror`, and whether it was ready.
    published: (SessionStats, bool),
    /// The circuit breaker's phase as last published to `mirror`.
    published_breaker: BreakerPhase,
    mirror: Arc<SessionMirror>,
    summary: Arc<Mutex<Option<AccountSummary>>>,
    capture: Option<RecorderHandle>,
    /// Where a captured frame is copied to have the API key masked.
    scratch: Vec<u8>,
    /// The position's protective orders on the exchange (`protect = "exchange"` or `"both"`).
    guard: Option<Guard>,
    /// Whether a guard was given. The session's steps must ask this, not `guard`: the guard
    /// is out of the core while the session is serviced (it sees each report on the way).
    guarded: bool,
    /// Orders an earlier session left open are to be cancelled once ready, one by one, so the
    /// guard's adopted bracket stays (instead of `openOrders.cancelAll` at the first connect).
    sweep_adopted: bool,
    price_decimals: u8,
    qty_decimals: u8,
    /// Whether the session asked for SBE.
    sbe: bool,
    /// The pinned schema's standing in the life-cycle file at start-up (SBE only).
    sbe_status: Option<pinion_sbe_spot::lifecycle::Status>,
    /// An SBE frame's JSON text, read by the same code as a JSON frame.
    sbe_text: Vec<u8>,
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl BinanceVenue {
    /// A venue for `config`'s symbol; resolves the endpoint's host here (start-up), and makes
    /// every template. Connects on the first poll.
    pub fn new(config: BinanceConfig) -> Result<Self, VenueError> {
        let sbe = config.response_format == ResponseFormat::Sbe;
        let sbe_status = if sbe {
            Some(schema_standing(
                pinion_sbe_spot::lifecycle::PROD_LIFECYCLE,
                today(),
            )?)
        } else {
            None
        };
        let url = if sbe {
            sbe_url(&config.url)
        } else {
            config.url.clone()
        };
        let endpoint = Endpoint::parse(&url)?;
        let addrs = endpoint.resolve()?;
        let logon = config.credentials.signer().kind() == KeyKind::Ed25519;
        let signing = if logon {
            Signing::LoggedOn
        } else {
            Signing::PerRequest {
                api_key: config.credentials.api_key().to_owned(),
            }
        };
        let spec = &config.spec;
        let ctx = SymbolContext {
            symbol: spec.symbol.as_str().to_owned(),
            price_decimals: spec.price_decimals,
            qty_decimals: spec.qty_decimals,
            recv_window: config.recv_window,
            stp_mode: config.stp_mode,
            signing,
        };
        let templates = Templates::new(&ctx, &config.credentials, logon)?;
        let codec = ClientIdCodec::new(config.epoch);
        let table = OrderTable::new(
            codec,
            config.instrument,
            spec.price_decimals,
            spec.qty_decimals,
            config.orders,
        );
        let reconnect = Reconnect::new(
            config.reconnect,
            SplitMix64::new(config.seed),
            AttemptBudget::new(
                config.connects_per_5min.max(1),
                std::time::Duration::from_secs(300),
            ),
        );
        let poll = Poll::new().map_err(VenueError::Poll)?;
        let core = Core {
            endpoint,
            url,
            addrs,
            origin: config.wss.clock_origin,
            wss: config.wss,
            credentials: config.credentials,
            logon,
            symbol: ctx.symbol,
            instrument: config.instrument,
            hard: HardLimits::new(
                config.instrument,
                spec,
                config.max_order_qty,
                config.max_open_orders,
            ),
            codec,
            table,
            limiter: RateLimiter::new(&config.rate_limits)?,
            clock: ClockOffset::new(config.clock),
            breaker: CircuitBreaker::new(config.breaker),
            templates,
            reconnect,
            step: Step::Down { retry_at_ns: 0 },
            step_sent: false,
            first_connect: true,
            open_orders_policy: config.open_orders,
            exit: config.exit,
            exit_watch: None,
            foreign_found: false,
            guarded: false,
            adopted: false,
            restart: false,
            next_id: 1,
            pending: ArrayVec::new(),
            queued: ArrayVec::new(),
            last_trade_id: None,
            balances: ArrayVec::new(),
            stats: VenueStats::default(),
            session: SessionStats::default(),
            published: (SessionStats::default(), false),
            published_breaker: BreakerPhase::Closed,
            mirror: Arc::new(SessionMirror::default()),
            summary: config.summary,
            scratch: if config.capture.is_some() {
                Vec::with_capacity(1 << 16)
            } else {
                Vec::new()
            },
            capture: config.capture,
            guard: None,
            sweep_adopted: false,
            price_decimals: spec.price_decimals,
            qty_decimals: spec.qty_decimals,
            sbe,
            sbe_status,
            sbe_text: if sbe {
                Vec::with_capacity(SBE_TEXT_CAPACITY)
            } else {
                Vec::new()
            },
        };
        Ok(Self {
            conn: None,
            poll,
            events: Events::with_capacity(16),
            core,
        })
    }

    /// The pinned SBE schema's standing when the venue was made: `None` for a JSON session;
    /// [`Status::Deprecated`](pinion_sbe_spot::lifecycle::Status::Deprecated) is worth a
    /// warning (the exchange serves it for at least six months after that date).
    pub fn sbe_schema(&self) -> Option<pinion_sbe_spot::lifecycle::Status> {
        self.core.sbe_status
    }

    /// Takes in orders an earlier session of this epoch left open (from the engine's journal):
    /// tracked from now on, and settled with the exchange by the reconciliation after the
    /// first connect, before any new order goes out; then, like any order this session did not
    /// place, cancelled or kept as [`OpenOrdersPolicy`] says (their cancellations and any fills
    /// are reported). Returns how many were taken (an order already tracked, or one past the
    /// table's capacity, is not).
    pub fn adopt(&mut self, orders: impl IntoIterator<Item = super::orders::Adopted>) -> usize {
        let n = orders
            .into_iter()
            .filter(|o| self.core.table.adopt(*o).is_ok())
            .count();
        self.core.adopted |= n > 0;
        n
    }

    /// Keeps the position's protective orders on the exchange with `guard` (see
    /// [`super::guard`]): after every fill that changes the position, its bracket is cancelled
    /// and placed again sized to it. Orders of the guard an earlier session left (`adopted`,
    /// taken in with [`BinanceVenue::adopt`] too) are its resting bracket. With adopted orders
    /// and [`OpenOrdersPolicy::CancelAll`], the first connect cancels the others one by one
    /// rather than everything, so the bracket stays.
    pub fn with_guard(
        &mut self,
        mut guard: Guard,
        adopted: Option<(OrderSide, Qty, &[ClientOrderId])>,
    ) {
        if let Some((side, qty, legs)) = adopted {
            guard.adopt(side, qty, legs);
        }
        self.core.guard = Some(guard);
        self.core.guarded = true;
    }

    /// The guard, if the venue keeps protective orders.
    pub fn guard(&self) -> Option<&Guard> {
        self.core.guard.as_ref()
    }

    /// Sends what the guard asks for, once the session is ready; and, on the first time ready
    /// after a restart, cancels the adopted orders that are not the guard's.
    fn run_guard(&mut self) {
        if self.core.step != Step::Ready
            || !(self.core.sweep_adopted || self.core.guard.as_ref().is_some_and(Guard::is_due))
        {
            return;
        }
        let Some(mut guard) = self.core.guard.take() else {
            return;
        };
        let t0 = self.core.now_ns();
        if self.core.sweep_adopted {
            self.core.sweep_adopted = false;
            let instrument = self.core.instrument;
            let mut cancels: ArrayVec<(ClientOrderId, OrderSide), 64> = ArrayVec::new();
            for o in self.core.table.orders() {
                if !o.state.is_final()
                    && !is_guard_id(o.client_id)
                    && cancels.try_push((o.client_id, o.side)).is_err()
                {
                    break;
                }
            }
            for (target, side) in cancels {
                // Orders left from before the restart that the guard does not own.
                let cancel = OrderIntent::cancel(
                    t0,
                    guard.next_id(),
                    target,
                    instrument,
                    side,
                    OrderReason::new(0, ReasonCode::Restart),
                );
                self.core.submit(self.conn.as_mut(), &cancel);
            }
        }
        // A resize or a cancel of a list whose placement is unanswered would be refused here
        // (the list's executionReports can come before the answer), leaving it resting beside
        // its replacement: the guard stays due and plans once the answer is in.
        if let Some(list) = guard.resting().and_then(|b| b.list)
            && self
                .core
                .table
                .list(list)
                .is_some_and(OrderList::awaiting_answer)
        {
            self.core.guard = Some(guard);
            return;
        }
        for action in guard.plan(t0) {
            match action {
                GuardAction::CancelList { list, cancel_id } => {
                    self.core
                        .cancel_list(self.conn.as_mut(), list, cancel_id, t0);
                }
                GuardAction::CancelOrder {
                    target,
                    side,
                    cancel_id,
                    reason,
                } => {
                    let reason = OrderReason::new(0, reason);
                    let cancel = OrderIntent::cancel(
                        t0,
                        cancel_id,
                        target,
                        self.core.instrument,
                        side,
                        reason,
                    );
                    self.core.submit(self.conn.as_mut(), &cancel);
                }
                GuardAction::PlaceList(list) => self.core.submit_list(self.conn.as_mut(), &list),
                GuardAction::PlaceOne(order) => {
                    self.core.submit_contingent(self.conn.as_mut(), &order);
                }
            }
        }
        self.core.guard = Some(guard);
    }

    /// Sends a protective order (`STOP_LOSS`, `STOP_LOSS_LIMIT`, `TAKE_PROFIT`,
    /// `TAKE_PROFIT_LIMIT`), checked as an [`OrderIntent`] is; its reports come through
    /// [`OrderVenue::poll`] like any order's, a refusal as a `Rejected` report.
    pub fn submit_contingent(&mut self, order: &ContingentOrder) {
        self.core.submit_contingent(self.conn.as_mut(), order);
    }

    /// Sends an order list (OCO, OTO, OTOCO). Its orders are reported each by its own client id;
    /// a refusal of the whole list is a `Rejected` report for each.
    pub fn submit_list(&mut self, list: &ListIntent) {
        self.core.submit_list(self.conn.as_mut(), list);
    }

    /// Cancels order list `list` (`orderList.cancel`, by `orderListId` once known), the cancel
    /// request's own id being `cancel_id`. Each order closes with its own `Canceled` report; a
    /// refusal is a `CancelRejected` for each order still open.
    pub fn cancel_list(&mut self, list: ClientOrderId, cancel_id: ClientOrderId, t0: u64) {
        self.core
            .cancel_list(self.conn.as_mut(), list, cancel_id, t0);
    }

    /// Whether orders may be sent now.
    pub fn is_ready(&self) -> bool {
        self.core.step == Step::Ready
    }

    /// Session counters.
    pub fn session_stats(&self) -> SessionStats {
        self.core.session
    }

    /// The session's readiness and counters for other threads, published as they change.
    pub fn session_mirror(&self) -> Arc<SessionMirror> {
        Arc::clone(&self.core.mirror)
    }

    /// The order table.
    pub fn table(&self) -> &OrderTable {
        &self.core.table
    }

    /// Balances from user data.
    pub fn balances(&self) -> &[AssetBalance] {
        &self.core.balances
    }

    /// What the venue knows now (allocates: for reports, off the order path).
    pub fn summary(&self) -> AccountSummary {
        self.core.summary()
    }

    /// Reads the socket, handles every frame, reconnects when due and moves the session on.
    fn service(&mut self, emit: &mut dyn FnMut(ExecReport)) {
        let Self {
            conn,
            poll,
            events,
            core,
        } = self;
        let now_ns = core.now_ns();
        if let Step::Down { retry_at_ns } = core.step
            && now_ns >= retry_at_ns
        {
            core.connect(conn, poll, now_ns);
        }
        let Some(c) = conn.as_mut() else {
            return;
        };
        if poll.poll(events, Some(std::time::Duration::ZERO)).is_err() {
            return;
        }
        let mut outcome = Ok(c.status());
        for event in events.iter() {
            outcome = c.poll_ready(event, |msg| {
                if !msg.binary {
                    core.on_frame(msg.payload, emit);
                } else if core.sbe {
                    core.on_binary(msg.payload, emit);
                } else {
                    core.session.bad_frames += 1;
                }
            });
            if outcome.is_err() {
                break;
            }
        }
        match outcome {
            Ok(Status::Open) => {
                if core.step == Step::Connecting {
                    core.reconnect.on_connected(now_ns);
                    core.enter(Step::Clock);
                }
                core.advance(c, emit);
            }
            Ok(Status::Connecting) => {}
            Ok(Status::Closed { code }) => {
                let _ = code;
                *conn = None;
                core.on_disconnect();
            }
            Err(_) => {
                *conn = None;
                core.on_disconnect();
            }
        }
        if core.restart {
            core.restart = false;
            if let Some(mut c) = conn.take() {
                let _ = c.close();
            }
            core.on_disconnect();
        }
    }
}

impl Core {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn enter(&mut self, step: Step) {
        self.step = step;
        self.step_sent = false;
    }

    fn connect(&mut self, conn: &mut Option<WssConnection>, poll: &Poll, now_ns: u64) {
        if let Err(next) = self.reconnect.on_attempt(now_ns) {
            self.step = Step::Down { retry_at_ns: next };
            return;
        }
        self.session.connects += 1;
        match WssConnection::connect_to(
            &self.endpoint,
            self.addrs.clone(),
            &self.wss,
            poll.registry(),
            TOKEN,
        ) {
            Ok(c) => {
                *conn = Some(c);
                self.step = Step::Connecting;
                if self.capture.is_some() {
                    let url = std::mem::take(&mut self.url);
                    self.capture(RecordKind::Connect, url.as_bytes(), b"");
                    self.url = url;
                }
            }
            Err(_) => {
                self.step = Step::Down {
                    retry_at_ns: self.reconnect.schedule(now_ns),
                };
            }
        }
    }

    fn on_disconnect(&mut self) {
        self.capture(RecordKind::Disconnect, b"", b"");
        let now_ms = wall_us() / 1000;
        self.session.disconnects += 1;
        self.table.on_disconnect(now_ms);
        for p in self.pending.drain(..) {
            if let Some(t) = p.ticket {
                self.limiter.on_lost(t);
            }
        }
        let now_ns = self.now_ns();
        self.breaker.on_failure(now_ns);
        self.session.breaker_opened = self.breaker.times_opened();
        self.reconnect.on_disconnect(now_ns);
        self.step = match self.step {
            Step::Closing { .. } | Step::Closed => Step::Closed,
            _ => Step::Down {
                retry_at_ns: self.reconnect.schedule(now_ns),
            },
        };
    }

    /// The exchange's time now, ms (local time until the offset is known).
    fn exchange_ms(&self, now_us: u64) -> u64 {
        self.clock.server_time_ms(now_us).unwrap_or(now_us / 1000)
    }

    /// Writes a request from `which` with `values` (its id and timestamp filled in here) and
    /// records it as `kind`. `Err` when the connection failed (it is then gone).
    fn send(
        &mut self,
        conn: &mut WssConnection,
        which: Which,
        mut values: SlotValues<'_>,
        kind: Kind,
        ticket: Option<Ticket>,
    ) -> Result<(), WssError> {
        let id = self.next_id;
        self.next_id += 1;
        values.request_id = id;
        let now_us = wall_us();
        values.timestamp_ms = self.exchange_ms(now_us);
        let signer = self.credentials.signer();
        let t = match which {
            Which::Place(i) => &mut self.templates.place[i],
            Which::ReplaceById(i) => &mut self.templates.replace_by_id[i],
            Which::ReplaceByClient(i) => &mut self.templates.replace_by_client[i],
            Which::CancelById => &mut self.templates.cancel_by_id,
            Which::CancelByClient => &mut self.templates.cancel_by_client,
            Which::AmendById => &mut self.templates.amend_by_id,
            Which::AmendByClient => &mut self.templates.amend_by_client,
            Which::StatusById => &mut self.templates.status_by_id,
            Which::StatusByClient => &mut self.templates.status_by_client,
            Which::OpenOrders => &mut self.templates.open_orders,
            Which::TradesSince => &mut self.templates.trades_since,
            Which::LatestTrade => &mut self.templates.latest_trade,
            Which::Account => &mut self.templates.account,
            Which::CancelAll => &mut self.templates.cancel_all,
            Which::PlaceAny => &mut self.templates.place_any,
            Which::Oco => &mut self.templates.oco,
            Which::Oto => &mut self.templates.oto,
            Which::Otoco => &mut self.templates.otoco,
            Which::ListCancelById => &mut self.templates.list_cancel_by_id,
            Which::ListCancelByClient => &mut self.templates.list_cancel_by_client,
            Which::OpenOrderLists => &mut self.templates.open_order_lists,
            Which::Logon => match self.templates.logon.as_mut() {
                Some(t) => t,
                None => &mut self.templates.time,
            },
            Which::Subscribe => &mut self.templates.subscribe,
            Which::Time => &mut self.templates.time,
        };
        let text = match t.write(&values, Some(signer)) {
            Ok(bytes) => std::str::from_utf8(bytes).unwrap_or(""),
            // Only a missing signer fails, and there always is one.
            Err(_) => "",
        };
        conn.send_text_prepared(text)?;
        self.session.requests += 1;
        // Room: the limiter refuses more than the table holds.
        let _ = self.pending.try_push(Pending {
            id,
            kind,
            ticket,
            sent_us: now_us,
        });
        Ok(())
    }

    /// Sends a request that is not an order, charged to the rate limits. `false` when it could
    /// not go (limits or a failed connection).
    fn request(
        &mut self,
        conn: &mut WssConnection,
        which: Which,
        method: Method,
        kind: Kind,
    ) -> bool {
        let from_id = match kind {
            Kind::TradesSince => self.last_trade_id.map_or(0, |t| t + 1),
            _ => 0,
        };
        self.request_with(
            conn,
            which,
            method,
            kind,
            SlotValues {
                from_id,
                ..SlotValues::default()
            },
        )
    }

    fn request_with(
        &mut self,
        conn: &mut WssConnection,
        which: Which,
        method: Method,
        kind: Kind,
        values: SlotValues<'_>,
    ) -> bool {
        let now_ms = wall_us() / 1000;
        let Ok(ticket) = self.limiter.try_send(method, now_ms) else {
            return false;
        };
        match self.send(conn, which, values, kind, Some(ticket)) {
            Ok(()) => true,
            Err(_) => {
                self.limiter.on_lost(ticket);
                false
            }
        }
    }

    fn has_pending(&self, f: impl Fn(Kind) -> bool) -> bool {
        self.pending.iter().any(|p| f(p.kind))
    }

    /// Moves the session through its steps, sending what the current one needs.
    fn advance(&mut self, conn: &mut WssConnection, emit: &mut dyn FnMut(ExecReport)) {
        let now_us = wall_us();
        loop {
            let before = (self.step, self.step_sent);
            match self.step {
                Step::Clock => {
                    if self.clock.offset_us().is_some() {
                        self.enter(if self.logon {
                            Step::Logon
                        } else {
                            Step::Subscribe
                        });
                    } else if !self.has_pending(|k| k == Kind::Time) {
                        self.request(conn, Which::Time, Method::Time, Kind::Time);
                    }
                }
                Step::Logon => {
                    if !self.step_sent {
                        self.step_sent =
                            self.request(conn, Which::Logon, Method::SessionLogon, Kind::Logon);
                    }
                }
                Step::Subscribe => {
                    if !self.step_sent {
                        self.step_sent = self.request(
                            conn,
                            Which::Subscribe,
                            Method::UserDataStreamSubscribe,
                            Kind::Subscribe,
                        );
                    }
                }
                Step::Lists => {
                    if !self.step_sent {
                        let trades = if self.last_trade_id.is_some() {
                            (Which::TradesSince, Kind::TradesSince)
                        } else {
                            (Which::LatestTrade, Kind::LatestTrade)
                        };
                        // Each request once, even when the limits hold one back for a turn.
                        let lists = [
                            (
                                Which::OpenOrders,
                                Method::OpenOrdersStatus,
                                Kind::OpenOrders,
                            ),
                            (trades.0, Method::MyTrades, trades.1),
                            (Which::Account, Method::AccountStatus, Kind::Account),
                            (
                                Which::OpenOrderLists,
                                Method::OpenOrderListsStatus,
                                Kind::OpenOrderLists,
                            ),
                        ];
                        let mut all = true;
                        for (which, method, kind) in lists {
                            if !self.has_pending(|k| k == kind) {
                                all &= self.request(conn, which, method, kind);
                            }
                        }
                        self.step_sent = all;
                    } else if !self.has_pending(|k| {
                        matches!(
                            k,
                            Kind::OpenOrders
                                | Kind::TradesSince
                                | Kind::LatestTrade
                                | Kind::Account
                                | Kind::OpenOrderLists
                        )
                    }) {
                        self.enter(Step::Queries);
                    }
                }
                Step::Queries => {
                    if !self.step_sent {
                        let cancel_adopted = self.adopted && self.table.open_count() > 0;
                        // A guard keeps its adopted bracket: the others go one by one once
                        // ready. Orders nobody journaled still go all at once.
                        let guarded = self.guarded && !self.foreign_found;
                        if self.first_connect
                            && cancel_adopted
                            && guarded
                            && self.open_orders_policy == OpenOrdersPolicy::CancelAll
                        {
                            self.sweep_adopted = true;
                        } else if self.first_connect
                            && (self.foreign_found || cancel_adopted)
                            && self.open_orders_policy == OpenOrdersPolicy::CancelAll
                        {
                            self.session.cancel_all += 1;
                            self.request(
                                conn,
                                Which::CancelAll,
                                Method::OpenOrdersCancelAll,
                                Kind::CancelAll,
                            );
                        }
                        self.send_due_queries(conn, now_us / 1000);
                        self.step_sent = true;
                    } else if !self.has_pending(|k| {
                        matches!(k, Kind::CancelAll | Kind::Order(RequestKind::Status, _))
                    }) {
                        self.first_connect = false;
                        self.session.ready += 1;
                        self.enter(Step::Ready);
                    }
                }
                Step::Ready => {
                    let now_ms = now_us / 1000;
                    // Closed orders are kept for the summary until the table is three
                    // quarters full; then they make room (a full table refuses new orders).
                    if self.table.orders().len() * 4 >= self.table.capacity() * 3 {
                        self.table.sweep_closed();
                    }
                    let unknown = self.table.stats().unknown;
                    self.table.check_timeouts(now_ms);
                    if self.table.stats().unknown > unknown {
                        // No answer in time: a failure of the venue as much as a 5xx.
                        self.breaker.on_failure(self.now_ns());
                        self.session.breaker_opened = self.breaker.times_opened();
                    }
                    if self.clock.drift_alarm() {
                        self.session.clock_drift_alarm = true;
                    }
                    self.send_due_queries(conn, now_ms);
                    if self.clock.wants_sample(now_us) && !self.has_pending(|k| k == Kind::Time) {
                        self.request(conn, Which::Time, Method::Time, Kind::Time);
                    }
                }
                Step::Closing { .. } => {
                    let now_ms = now_us / 1000;
                    self.table.check_timeouts(now_ms);
                    self.send_due_queries(conn, now_ms);
                }
                Step::Down { .. } | Step::Connecting | Step::Closed => {}
            }
            if (self.step, self.step_sent) == before {
                break;
            }
        }
        self.flush_queued(emit);
    }

    fn send_due_queries(&mut self, conn: &mut WssConnection, now_ms: u64) {
        let mut due: ArrayVec<(ClientOrderId, Option<u64>), 16> = ArrayVec::new();
        self.table.due_queries(now_ms, |id, order_id| {
            let _ = due.try_push((id, order_id));
        });
        for (id, order_id) in due {
            let mut text = [0u8; CLIENT_ID_LEN];
            self.codec.encode(id, &mut text);
            let (which, values) = match order_id {
                Some(order_id) => (
                    Which::StatusById,
                    SlotValues {
                        order_id,
                        ..SlotValues::default()
                    },
                ),
                None => (
                    Which::StatusByClient,
                    SlotValues {
                        orig_client_id: &text,
                        ..SlotValues::default()
                    },
                ),
            };
            self.session.status_queries += 1;
            self.request_with(
                conn,
                which,
                Method::OrderStatus,
                Kind::Order(RequestKind::Status, id),
                values,
            );
        }
    }

    fn flush_queued(&mut self, emit: &mut dyn FnMut(ExecReport)) {
        for r in self.queued.drain(..) {
            emit(r);
        }
    }

    /// Refuses `intent` with `reason`: reported on the next poll.
    fn refuse(&mut self, intent: &OrderIntent, reason: RejectReason) {
        let (client_id, status) = match intent.action {
            OrderAction::Cancel => (intent.target, OrderStatus::CancelRejected(reason)),
            _ => (intent.client_id, OrderStatus::Rejected(reason)),
        };
        self.refuse_order(client_id, intent.side, intent.t0, status);
    }

    /// Reports `status` (a refusal) for order `client_id` on the next poll.
    fn refuse_order(
        &mut self,
        client_id: ClientOrderId,
        side: OrderSide,
        t0: u64,
        status: OrderStatus,
    ) {
        let report = ExecReport {
            client_id,
            venue_id: VenueOrderId(0),
            instrument: self.instrument,
            side,
            status,
            last_px: Px::ZERO,
            last_qty: Qty::ZERO,
            cum_qty: Qty::ZERO,
            leaves_qty: Qty::ZERO,
            maker: false,
            t0,
            venue_ts: 0,
        };
        count(&mut self.stats, &report);
        if self.queued.try_push(report).is_err() {
            self.stats.reports_dropped += 1;
        }
    }

    fn submit(&mut self, conn: Option<&mut WssConnection>, intent: &OrderIntent) {
        self.stats.submitted += 1;
        if let Err(reason) = self.hard.check(intent, self.table.open_count()) {
            return self.refuse(intent, reason);
        }
        let (Some(conn), Step::Ready) = (conn, self.step) else {
            self.session.not_connected += 1;
            return self.refuse(intent, RejectReason::NotConnected);
        };
        if intent.action != OrderAction::Cancel && !self.breaker.allow_order(self.now_ns()) {
            self.session.breaker_refused += 1;
            return self.refuse(intent, RejectReason::Halted);
        }
        let now_ms = wall_us() / 1000;
        let method = match intent.action {
            OrderAction::New => Method::OrderPlace,
            OrderAction::Cancel => Method::OrderCancel,
            OrderAction::Replace => Method::OrderCancelReplace,
            OrderAction::Amend => Method::OrderAmendKeepPriority,
        };
        if let Err(refusal) = self.limiter.check(method, now_ms) {
            self.session.rate_refused += 1;
            let reason = match refusal {
                Refusal::Banned { .. } => RejectReason::Halted,
                _ => RejectReason::Overloaded,
            };
            return self.refuse(intent, reason);
        }
        // Which order a cancel or replace names, and how.
        let target_order_id = match intent.action {
            OrderAction::New => None,
            _ => self.table.get(intent.target).and_then(|o| o.order_id),
        };
        if let Err(reason) = self.table.submit(intent, now_ms) {
            return self.refuse(intent, reason);
        }
        let Ok(ticket) = self.limiter.try_send(method, now_ms) else {
            // `check` just let it through; a window cannot have filled since.
            self.table.on_lost(intent.target, now_ms);
            return;
        };
        let mut own = [0u8; CLIENT_ID_LEN];
        let mut target = [0u8; CLIENT_ID_LEN];
        self.codec.encode(intent.client_id, &mut own);
        self.codec.encode(intent.target, &mut target);
        let ix = place_index(intent.side, intent.order_type, intent.tif);
        let (which, kind) = match (intent.action, target_order_id) {
            (OrderAction::New, _) => (
                Which::Place(ix),
                Kind::Order(RequestKind::Place, intent.client_id),
            ),
            (OrderAction::Cancel, Some(_)) => (
                Which::CancelById,
                Kind::Order(RequestKind::Cancel, intent.target),
            ),
            (OrderAction::Cancel, None) => (
                Which::CancelByClient,
                Kind::Order(RequestKind::Cancel, intent.target),
            ),
            (OrderAction::Amend, Some(_)) => (
                Which::AmendById,
                Kind::Order(RequestKind::Amend, intent.target),
            ),
            (OrderAction::Amend, None) => (
                Which::AmendByClient,
                Kind::Order(RequestKind::Amend, intent.target),
            ),
            (OrderAction::Replace, Some(_)) => (
                Which::ReplaceById(ix),
                Kind::Order(
                    RequestKind::CancelReplace {
                        new: intent.client_id,
                    },
                    intent.target,
                ),
            ),
            (OrderAction::Replace, None) => (
                Which::ReplaceByClient(ix),
                Kind::Order(
                    RequestKind::CancelReplace {
                        new: intent.client_id,
                    },
                    intent.target,
                ),
            ),
        };
        let values = SlotValues {
            price: intent.px,
            qty: intent.qty,
            // An amended order keeps its client id: the new one sent is its own.
            client_id: if intent.action == OrderAction::Amend {
                &target
            } else {
                &own
            },
            orig_client_id: &target,
            order_id: target_order_id.unwrap_or(0),
            ..SlotValues::default()
        };
        if self.send(conn, which, values, kind, Some(ticket)).is_err() {
            // The bytes may or may not have left: unknown, resolved after the reconnect.
            self.limiter.on_lost(ticket);
            self.table.on_lost(intent.target, now_ms);
            if intent.action == OrderAction::Replace {
                self.table.on_lost(intent.client_id, now_ms);
            }
        }
    }

    /// The checks every new order passes before a request may go: the hard limits for each
    /// order (the legs of a list count together against the open-order limit), a ready
    /// session, the circuit breaker and the rate limits. `Err` is the refusal.
    fn admit(
        &mut self,
        conn: Option<&mut WssConnection>,
        t0: u64,
        legs: &[ContingentLeg],
        method: Method,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        let open = self.table.open_count();
        for (k, leg) in legs.iter().enumerate() {
            // The price a limit checks against the grid: the limit price, or the trigger's
            // stop price; a trailing market stop has neither.
            let px = leg
                .spec
                .price
                .or(leg.spec.trigger.and_then(|t| t.stop_price()));
            let intent = OrderIntent::new_limit(
                t0,
                leg.client_id,
                self.instrument,
                leg.side,
                px.unwrap_or(Px::ZERO),
                leg.qty,
                if px.is_some() {
                    OrderType::Limit
                } else {
                    OrderType::Market
                },
                TimeInForce::Gtc,
                OrderReason::new(0, leg.spec.reason()),
            );
            self.hard.check(&intent, open + k)?;
        }
        if conn.is_none() || self.step != Step::Ready {
            self.session.not_connected += 1;
            return Err(RejectReason::NotConnected);
        }
        if !self.breaker.allow_order(self.now_ns()) {
            self.session.breaker_refused += 1;
            return Err(RejectReason::Halted);
        }
        if let Err(refusal) = self.limiter.check(method, now_ms) {
            self.session.rate_refused += 1;
            return Err(match refusal {
                Refusal::Banned { .. } => RejectReason::Halted,
                _ => RejectReason::Overloaded,
            });
        }
        Ok(())
    }

    fn submit_contingent(&mut self, conn: Option<&mut WssConnection>, order: &ContingentOrder) {
        self.stats.submitted += 1;
        let leg = order.leg;
        let refuse = |core: &mut Self, reason| {
            core.refuse_order(
                leg.client_id,
                leg.side,
                order.t0,
                OrderStatus::Rejected(reason),
            );
        };
        if let Err(e) = order.check() {
            return refuse(self, contingent_reason(e));
        }
        let now_ms = wall_us() / 1000;
        let mut conn = conn;
        if let Err(reason) = self.admit(
            conn.as_deref_mut(),
            order.t0,
            &[leg],
            Method::OrderPlace,
            now_ms,
        ) {
            return refuse(self, reason);
        }
        let Some(conn) = conn else { return };
        if let Err(reason) = self.table.submit_contingent(order, now_ms) {
            return refuse(self, reason);
        }
        let Ok(ticket) = self.limiter.try_send(Method::OrderPlace, now_ms) else {
            self.table.on_lost(leg.client_id, now_ms);
            return;
        };
        let mut own = [0u8; CLIENT_ID_LEN];
        self.codec.encode(leg.client_id, &mut own);
        let mut values = SlotValues::default();
        values.legs[0] = leg.values(&own);
        let kind = Kind::Order(RequestKind::Place, leg.client_id);
        if self
            .send(conn, Which::PlaceAny, values, kind, Some(ticket))
            .is_err()
        {
            self.limiter.on_lost(ticket);
            self.table.on_lost(leg.client_id, now_ms);
        }
    }

    fn submit_list(&mut self, conn: Option<&mut WssConnection>, list: &ListIntent) {
        self.stats.submitted += 1;
        let legs = list.legs();
        let refuse = |core: &mut Self, reason| {
            for leg in &legs {
                core.refuse_order(
                    leg.client_id,
                    leg.side,
                    list.t0,
                    OrderStatus::Rejected(reason),
                );
            }
        };
        if let Err(e) = list.check() {
            return refuse(self, contingent_reason(e));
        }
        let (which, method) = match list.kind() {
            ListKind::Oco => (Which::Oco, Method::OrderListOco),
            ListKind::Oto => (Which::Oto, Method::OrderListOto),
            ListKind::Otoco => (Which::Otoco, Method::OrderListOtoco),
        };
        let now_ms = wall_us() / 1000;
        let mut conn = conn;
        if let Err(reason) = self.admit(conn.as_deref_mut(), list.t0, &legs, method, now_ms) {
            return refuse(self, reason);
        }
        let Some(conn) = conn else { return };
        if let Err(reason) = self.table.submit_list(list, now_ms) {
            return refuse(self, reason);
        }
        let Ok(ticket) = self.limiter.try_send(method, now_ms) else {
            self.table.on_list_lost(list.list_id, now_ms);
            return;
        };
        let mut ids = [[0u8; CLIENT_ID_LEN]; 4];
        self.codec.encode(list.list_id, &mut ids[0]);
        for (k, leg) in legs.iter().enumerate() {
            self.codec.encode(leg.client_id, &mut ids[k + 1]);
        }
        let mut values = SlotValues {
            list_client_id: &ids[0],
            ..SlotValues::default()
        };
        for (k, leg) in legs.iter().enumerate() {
            values.legs[k] = leg.values(&ids[k + 1]);
        }
        let kind = Kind::List(ListRequest::Place, list.list_id);
        if self.send(conn, which, values, kind, Some(ticket)).is_err() {
            self.limiter.on_lost(ticket);
            self.table.on_list_lost(list.list_id, now_ms);
        }
    }

    fn cancel_list(
        &mut self,
        conn: Option<&mut WssConnection>,
        list_id: ClientOrderId,
        cancel_id: ClientOrderId,
        t0: u64,
    ) {
        self.stats.submitted += 1;
        let refuse = |core: &mut Self, reason| {
            let Some(l) = core.table.list(list_id).copied() else {
                return;
            };
            for &leg in l.legs() {
                if let Some(o) = core.table.get(leg).copied()
                    && !o.state.is_final()
                {
                    core.refuse_order(leg, o.side, t0, OrderStatus::CancelRejected(reason));
                }
            }
        };
        let (Some(conn), Step::Ready) = (conn, self.step) else {
            self.session.not_connected += 1;
            return refuse(self, RejectReason::NotConnected);
        };
        let now_ms = wall_us() / 1000;
        if let Err(refusal) = self.limiter.check(Method::OrderListCancel, now_ms) {
            self.session.rate_refused += 1;
            let reason = match refusal {
                Refusal::Banned { .. } => RejectReason::Halted,
                _ => RejectReason::Overloaded,
            };
            return refuse(self, reason);
        }
        let order_list_id = self.table.list(list_id).and_then(|l| l.order_list_id);
        if let Err(reason) = self.table.cancel_list(list_id, now_ms) {
            return refuse(self, reason);
        }
        let Ok(ticket) = self.limiter.try_send(Method::OrderListCancel, now_ms) else {
            self.table.on_list_lost(list_id, now_ms);
            return;
        };
        let mut list_text = [0u8; CLIENT_ID_LEN];
        let mut own = [0u8; CLIENT_ID_LEN];
        self.codec.encode(list_id, &mut list_text);
        self.codec.encode(cancel_id, &mut own);
        let which = if order_list_id.is_some() {
            Which::ListCancelById
        } else {
            Which::ListCancelByClient
        };
        let values = SlotValues {
            order_list_id: order_list_id.unwrap_or(0),
            list_client_id: &list_text,
            client_id: &own,
            ..SlotValues::default()
        };
        let kind = Kind::List(ListRequest::Cancel, list_id);
        if self.send(conn, which, values, kind, Some(ticket)).is_err() {
            self.limiter.on_lost(ticket);
            self.table.on_list_lost(list_id, now_ms);
        }
    }

    /// Hands a record to the capture, the API key masked wherever it appears.
    fn capture(&mut self, kind: RecordKind, meta: &[u8], payload: &[u8]) {
        let Some(handle) = self.capture.as_mut() else {
            return;
        };
        let key = self.credentials.api_key().as_bytes();
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let mut at = 0;
        while let Some(i) = self.scratch[at..].windows(key.len()).position(|w| w == key) {
            let start = at + i;
            self.scratch[start..start + key.len()].fill(b'*');
            at = start + key.len();
        }
        let t = wall_us().saturating_mul(1000);
        handle.record(&RawRecord::new(t, ConnId(0), kind, meta, &self.scratch));
    }

    /// One binary frame from an SBE session: the order path's messages read straight into
    /// the values the session acts on ([`super::sbe_direct`]); the rest into JSON text, then
    /// as a text frame. Both end in the same handlers.
    fn on_binary(&mut self, payload: &[u8], emit: &mut dyn FnMut(ExecReport)) {
        if self.capture.is_some() {
            self.capture(RecordKind::Frame, b"sbe", payload);
        }
        match super::sbe_direct::read(payload) {
            Direct::Report(r) => {
                let (p, q) = (self.price_decimals, self.qty_decimals);
                self.on_execution(r.ids(), || r.typed(p, q), emit);
                return;
            }
            Direct::Answer(resp) if self.reads_directly(&resp) => {
                self.on_response(&resp, emit);
                return;
            }
            Direct::Answer(_) | Direct::Transcode => {}
        }
        // Out of the core while it is read (a move, no allocation), back after.
        let mut text = std::mem::take(&mut self.sbe_text);
        match super::sbe::transcode(payload, &mut text) {
            Ok(super::sbe::Transcoded::Json) => match std::str::from_utf8(&text) {
                Ok(t) => self.on_text(t, emit),
                Err(_) => self.session.bad_frames += 1,
            },
            Ok(super::sbe::Transcoded::NonRepresentable) => {
                // Something happened that schema 3:5 cannot say, to an order not named: every
                // open order is unknown until the queries settle it.
                self.session.bad_frames += 1;
                self.table.lose_track_of_all(wall_us() / 1000);
            }
            Err(_) => self.session.bad_frames += 1,
        }
        self.sbe_text = text;
    }

    /// Whether an answer read straight from SBE serves its request: its result holds only
    /// what an order request's answer is read for ([`wire::ResultBody::Order`]), so the answer
    /// to any other request (a query, a list, the session's own) is read from its JSON.
    fn reads_directly(&self, resp: &wire::Response<'_>) -> bool {
        let ResponseId::Num(id) = resp.id else {
            return true;
        };
        if resp.outcome.is_err() {
            return true;
        }
        match self.pending.iter().find(|p| p.id == id) {
            Some(p) => matches!(p.kind, Kind::Order(k, _) if k != RequestKind::Status),
            None => true,
        }
    }

    /// One text frame from the exchange.
    fn on_frame(&mut self, payload: &[u8], emit: &mut dyn FnMut(ExecReport)) {
        if self.capture.is_some() {
            self.capture(RecordKind::Frame, b"", payload);
        }
        let Ok(text) = std::str::from_utf8(payload) else {
            self.session.bad_frames += 1;
            return;
        };
        self.on_text(text, emit);
    }

    /// One frame's JSON text.
    fn on_text(&mut self, text: &str, emit: &mut dyn FnMut(ExecReport)) {
        let frame = match wire::parse_frame(text) {
            Ok(f) => f,
            Err(_) => {
                self.session.bad_frames += 1;
                return;
            }
        };
        match frame {
            Frame::Response(resp) => self.on_response(&resp, emit),
            Frame::Event { event, .. } => self.on_event(event, emit),
        }
    }

    /// The circuit breaker's view of an order or list request's answer: a success closes
    /// it, an unknown outcome counts towards opening it, a refusal says nothing of the link.
    fn breaker_sees(&mut self, failure: Option<Failure>) {
        match failure {
            None => self.breaker.on_success(),
            Some(Failure::Unknown) => {
                self.breaker.on_failure(self.now_ns());
                self.session.breaker_opened = self.breaker.times_opened();
            }
            Some(_) => {}
        }
    }

    /// The answer to a request, from either format.
    fn on_response(&mut self, resp: &wire::Response<'_>, emit: &mut dyn FnMut(ExecReport)) {
        let now_us = wall_us();
        let now_ms = now_us / 1000;
        let ResponseId::Num(id) = resp.id else {
            // `null`: the server speaks unasked (a revoked session): start over.
            self.session.bad_frames += 1;
            return;
        };
        let Some(at) = self.pending.iter().position(|p| p.id == id) else {
            self.session.bad_frames += 1;
            return;
        };
        let p = self.pending.remove(at);
        self.session.answers += 1;
        if let Some(t) = p.ticket {
            self.limiter.on_response(t, resp, now_ms);
            if self.pending.is_empty() {
                self.check_limits(resp, now_ms);
            }
        }
        let failure = resp.failure();
        if let Err(e) = &resp.outcome {
            self.session.last_error = e.code;
        }
        match failure {
            Some(Failure::Timestamp) => self.clock.on_timestamp_rejected(),
            Some(Failure::RateLimited) => self.session.rate_limited += 1,
            Some(Failure::Banned) => self.session.banned += 1,
            Some(Failure::Unauthorized) => {
                // The key no longer works: user data has stopped, so nothing open can
                // be watched any more. Every open order is unknown, and the session
                // starts over (its logon fails until the key works again).
                self.session.unauthorized += 1;
                self.table.lose_track_of_all(now_ms);
                self.restart = true;
            }
            _ => {}
        }
        match p.kind {
            Kind::Time => {
                if let Ok(server_ms) = resp.server_time() {
                    self.clock.on_time(p.sent_us, now_us, server_ms);
                }
            }
            Kind::Logon => match failure {
                None => self.enter(Step::Subscribe),
                Some(_) => {
                    self.session.logon_refused += 1;
                    self.restart = true;
                }
            },
            Kind::Subscribe => match failure {
                None => self.enter(Step::Lists),
                Some(_) => self.restart = true,
            },
            Kind::OpenOrders => self.on_open_orders(resp, now_ms, emit),
            Kind::LatestTrade | Kind::TradesSince => {
                self.on_trades(resp, p.kind == Kind::TradesSince, emit)
            }
            Kind::Account => self.on_account(resp),
            Kind::CancelAll => {}
            Kind::OpenOrderLists => self.on_open_order_lists(resp, now_ms, emit),
            Kind::List(kind, id) => {
                self.breaker_sees(failure);
                let stats = &mut self.stats;
                self.table.on_list_response(kind, id, resp, now_ms, |r| {
                    count(stats, &r);
                    emit(r)
                });
            }
            Kind::Order(kind, id) => {
                if kind != RequestKind::Status {
                    self.breaker_sees(failure);
                }
                let stats = &mut self.stats;
                self.table.on_response(kind, id, resp, now_ms, |r| {
                    count(stats, &r);
                    emit(r)
                });
            }
        }
    }

    /// An `executionReport` of either format: `typed` gives it at the instrument's decimals
    /// (read only for this venue's symbol), or what names the order it could not be read for.
    fn on_execution<'a>(
        &mut self,
        ids: UnreadReport<'a>,
        typed: impl FnOnce() -> Result<ExecutionReport<'a>, UnreadReport<'a>>,
        emit: &mut dyn FnMut(ExecReport),
    ) {
        if ids.symbol != self.symbol {
            return;
        }
        let rep = match typed() {
            Ok(rep) => rep,
            Err(unread) => {
                // What it said about the order is lost: the order is unknown until a query
                // settles it, never left pending on a report not read.
                let now_ms = wall_us() / 1000;
                self.session.bad_frames += 1;
                if !self.table.lose_track_of(unread.orig_client_id, now_ms) {
                    self.table.lose_track_of(unread.client_id, now_ms);
                }
                return;
            }
        };
        if let Some(t) = rep.trade_id {
            self.last_trade_id = Some(self.last_trade_id.map_or(t, |l| l.max(t)));
        }
        let stats = &mut self.stats;
        self.table.on_execution(&rep, |r| {
            count(stats, &r);
            emit(r)
        });
    }

    /// A user data event read from JSON text.
    fn on_event(&mut self, event: UserEvent<'_>, emit: &mut dyn FnMut(ExecReport)) {
        let now_ms = wall_us() / 1000;
        match event {
            UserEvent::ExecutionReport(raw) => {
                let (p, q) = (self.price_decimals, self.qty_decimals);
                self.on_execution(
                    raw.unread(),
                    || raw.typed(p, q).map_err(|_| raw.unread()),
                    emit,
                );
            }
            UserEvent::AccountPosition(pos) => {
                for b in &pos.balances.0 {
                    self.set_balance(b.asset, b.free, b.locked);
                }
            }
            UserEvent::StreamTerminated { .. } => {
                if matches!(self.step, Step::Ready | Step::Queries | Step::Lists) {
                    self.enter(Step::Subscribe);
                }
            }
            UserEvent::ServerShutdown { .. } | UserEvent::BalanceUpdate(_) => {}
            UserEvent::ListStatus(raw) => {
                if !raw.symbol.is_empty() && raw.symbol != self.symbol {
                    return;
                }
                let Ok(update) = raw.typed() else {
                    // Its orders' own reports (or queries) still say what happened.
                    self.session.bad_frames += 1;
                    return;
                };
                let stats = &mut self.stats;
                self.table
                    .on_list_status(&update, &raw.orders, now_ms, |r| {
                        count(stats, &r);
                        emit(r)
                    });
            }
            UserEvent::Other { .. } => {}
        }
    }

    /// With nothing else in flight, the local model must predict the server's counts exactly.
    fn check_limits(&mut self, resp: &wire::Response<'_>, now_ms: u64) {
        for server in &resp.rate_limits.0 {
            let len_ms = u64::from(server.interval_num) * server.interval.seconds() * 1000;
            if let Some(local) = self.limiter.count(server.kind, len_ms, now_ms) {
                self.session.limit_checks += 1;
                if local != server.count {
                    self.session.limit_drift += 1;
                }
            }
        }
    }

    fn set_balance(&mut self, asset: &str, free: &str, locked: &str) {
        let (Ok(name), Ok(free), Ok(locked)) = (
            ArrayString::<16>::from(asset),
            Decimal::parse(free.as_bytes()),
            Decimal::parse(locked.as_bytes()),
        ) else {
            self.session.bad_frames += 1;
            return;
        };
        match self.balances.iter_mut().find(|b| b.asset == name) {
            Some(b) => {
                b.free = free;
                b.locked = locked;
            }
            None => {
                let _ = self.balances.try_push(AssetBalance {
                    asset: name,
                    free,
                    locked,
                });
            }
        }
    }

    /// `account.status`: every balance, as a reconciliation's starting point.
    fn on_account(&mut self, resp: &wire::Response<'_>) {
        if resp.outcome.is_err() {
            return;
        }
        let Ok(balances) = resp.account_balances() else {
            self.session.bad_frames += 1;
            return;
        };
        for b in &balances {
            self.set_balance(b.asset, b.free, b.locked);
        }
    }

    fn on_open_orders(
        &mut self,
        resp: &wire::Response<'_>,
        now_ms: u64,
        emit: &mut dyn FnMut(ExecReport),
    ) {
        let Ok(list) = resp.open_orders() else {
            // Not listed: every open order is queried instead.
            self.table.reconcile_all(now_ms, |_| false);
            return;
        };
        let stats = &mut self.stats;
        for snap in &list {
            if snap.symbol != self.symbol {
                continue;
            }
            let ours = self.table.on_snapshot(snap, now_ms, |r| {
                count(stats, &r);
                emit(r)
            });
            // Open and not in the table on the first connect: placed by someone else, by an
            // earlier run, or by an earlier session of this run's epoch whose request never
            // reached the journal (it died in the ring). None of them is tracked, so each is
            // foreign: counted, and cancelled or kept as the open-orders policy says.
            if !ours && self.first_connect {
                self.foreign_found = true;
                self.session.foreign_open += 1;
            }
        }
        self.table
            .reconcile_all(now_ms, |id| list.iter().any(|s| s.order_id == id));
    }

    /// `openOrderLists.status`: each of this run's lists takes the status listed (its orders
    /// are reconciled as orders, from `openOrders.status` and queries).
    fn on_open_order_lists(
        &mut self,
        resp: &wire::Response<'_>,
        now_ms: u64,
        emit: &mut dyn FnMut(ExecReport),
    ) {
        if resp.outcome.is_err() {
            return;
        }
        let Ok(lists) = resp.open_order_lists() else {
            self.session.bad_frames += 1;
            return;
        };
        let stats = &mut self.stats;
        for snap in &lists {
            if snap.symbol != self.symbol {
                continue;
            }
            self.table.on_list_snapshot(snap, now_ms, |r| {
                count(stats, &r);
                emit(r)
            });
        }
    }

    fn on_trades(
        &mut self,
        resp: &wire::Response<'_>,
        apply: bool,
        emit: &mut dyn FnMut(ExecReport),
    ) {
        if resp.outcome.is_err() {
            return;
        }
        let Ok(trades) = resp.my_trades() else {
            self.session.bad_frames += 1;
            return;
        };
        let stats = &mut self.stats;
        for t in &trades {
            if t.symbol != self.symbol {
                continue;
            }
            self.last_trade_id = Some(self.last_trade_id.map_or(t.id, |l| l.max(t.id)));
            if !apply {
                continue;
            }
            let (Ok(px), Ok(qty)) = (
                Px::parse(t.price.as_bytes(), self.price_decimals),
                Qty::parse(t.qty.as_bytes(), self.qty_decimals),
            ) else {
                self.session.bad_frames += 1;
                continue;
            };
            if self
                .table
                .on_trade(t.order_id, px, qty, t.is_maker, t.time, |r| {
                    count(stats, &r);
                    emit(r)
                })
            {
                self.session.reconciled_fills += 1;
            }
        }
        if self.last_trade_id.is_none() {
            // No trade yet: every later one is new.
            self.last_trade_id = Some(0);
        }
    }

    fn summary(&self) -> AccountSummary {
        let orders = self
            .table
            .orders()
            .iter()
            .map(|o| {
                let mut text = [0u8; CLIENT_ID_LEN];
                self.codec.encode(o.client_id, &mut text);
                OrderSummary {
                    client_order_id: String::from_utf8_lossy(&text).into_owned(),
                    order_id: o.order_id,
                    side: o.side,
                    price: o.price,
                    qty: o.qty,
                    filled: o.cum_qty,
                    state: o.state,
                    t0: o.t0,
                    reason: o.reason,
                }
            })
            .collect();
        AccountSummary {
            symbol: self.symbol.clone(),
            price_decimals: self.price_decimals,
            qty_decimals: self.qty_decimals,
            orders,
            balances: self.balances.to_vec(),
            session: self.session,
            table: self.table.stats(),
            clock_offset_us: self.clock.offset_us(),
            exit: self.exit_outcome(),
            protection: self.guard.as_ref().map(|g| GuardSummary {
                position: g.position(),
                resting: g.resting().copied(),
                stats: g.stats(),
            }),
        }
    }

    /// Adds the orders open now to those the exit report follows (the first call of a stop
    /// starts the list), `ready` saying whether the session was connected.
    fn watch_exit_from_now(&mut self, ready: bool) {
        let open = self
            .table
            .orders()
            .iter()
            .filter(|o| !o.state.is_final())
            .map(|o| o.client_id);
        match &mut self.exit_watch {
            None => self.exit_watch = Some((open.collect(), ready)),
            Some((ids, connected)) => {
                for id in open {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                *connected = ready;
            }
        }
    }

    /// What became of the orders open at the stop, once the run has stopped.
    fn exit_outcome(&self) -> Option<ExitOutcome> {
        let (watched, connected) = self.exit_watch.as_ref()?;
        let mut out = ExitOutcome {
            policy: self.exit,
            connected: *connected,
            open_at_stop: watched.len(),
            cancelled: 0,
            closed_otherwise: 0,
            left_open: 0,
        };
        for &id in watched {
            match self.table.get(id).map(|o| o.state) {
                Some(OrderState::Canceled) => out.cancelled += 1,
                Some(s) if s.is_final() => out.closed_otherwise += 1,
                _ => out.left_open += 1,
            }
        }
        Some(out)
    }

    fn publish_summary(&self) {
        if let Ok(mut slot) = self.summary.lock() {
            *slot = Some(self.summary());
        }
    }
}

/// The strategy's reason for a protective order or list the checks refused.
fn contingent_reason(e: ContingentError) -> RejectReason {
    match e {
        ContingentError::Missing { param, .. } | ContingentError::Unexpected { param, .. } => {
            match param {
                super::contingent::LegParam::Price | super::contingent::LegParam::Trigger => {
                    RejectReason::InvalidPrice
                }
                super::contingent::LegParam::TimeInForce => RejectReason::Venue,
            }
        }
        ContingentError::ZeroTrailingDelta(_) => RejectReason::InvalidPrice,
        ContingentError::BadAmount(_) => RejectReason::InvalidQty,
        ContingentError::SameIds => RejectReason::DuplicateId,
        _ => RejectReason::Venue,
    }
}

/// Counts a report in the venue's stats.
fn count(stats: &mut VenueStats, r: &ExecReport) {
    match r.status {
        OrderStatus::New => stats.accepted += 1,
        OrderStatus::Rejected(_) | OrderStatus::CancelRejected(_) => stats.rejected += 1,
        OrderStatus::Canceled => stats.canceled += 1,
        _ => {}
    }
    if r.last_qty.0 > 0 {
        stats.fills += 1;
        stats.filled_qty += r.last_qty.0;
    }
}

impl OrderVenue for BinanceVenue {
    fn clock(&self) -> VenueClock {
        VenueClock::Wall
    }

    fn native_protection(&self) -> bool {
        true
    }

    fn submit(&mut self, intent: &OrderIntent, _now_ns: u64) {
        if intent.reason.code == pinion_strategy::ReasonCode::Shutdown {
            // The stop has begun (the strategy stage cancels what the exit policy cancels
            // before the end reaches the venue): the exit report follows what is open now, even
            // if these cancels are answered before the venue winds down.
            let ready = self.core.step == Step::Ready;
            self.core.watch_exit_from_now(ready);
        }
        self.core.submit(self.conn.as_mut(), intent);
    }

    fn poll(&mut self, _now_ns: u64, mut emit: impl FnMut(ExecReport)) {
        // The guard sees every report on its way to the strategy.
        let mut guard = self.core.guard.take();
        let mut tap = |r: ExecReport| {
            if let Some(g) = guard.as_mut() {
                g.on_report(&r);
            }
            emit(r);
        };
        self.core.flush_queued(&mut tap);
        self.service(&mut tap);
        self.core.guard = guard;
        self.run_guard();
        let now = (self.core.session, self.core.step == Step::Ready);
        if now != self.core.published {
            self.core.published = now;
            self.core.mirror.store(now.1, &now.0);
            // Every request and answer moves a counter above: the windows' counts change then.
            self.core.mirror.store_limits(self.core.limiter.usage());
        }
        let phase = BreakerPhase::of(self.core.breaker.state());
        if phase != self.core.published_breaker {
            self.core.published_breaker = phase;
            self.core.mirror.store_breaker(phase);
        }
    }

    fn is_idle(&self) -> bool {
        self.core.pending.is_empty()
            && self.core.queued.is_empty()
            && self.core.table.open_count() == 0
    }

    fn open_orders(&self) -> usize {
        self.core.table.open_count()
    }

    fn stats(&self) -> VenueStats {
        self.core.stats
    }

    fn wind_down(&mut self, grace_ns: u64, mut emit: impl FnMut(ExecReport)) -> bool {
        let now_ns = self.core.now_ns();
        match self.core.step {
            Step::Closed => {}
            Step::Closing { until_ns } => {
                // Under a policy that keeps orders, the answers to what was sent are enough.
                let done = self.core.pending.is_empty()
                    && (self.core.table.open_count() == 0 || !self.core.exit.venue_cancels_all());
                if done || now_ns >= until_ns {
                    self.core.step = Step::Closed;
                    if let Some(c) = self.conn.as_mut() {
                        let _ = c.close();
                    }
                }
            }
            step => {
                let ready = step == Step::Ready;
                self.core.watch_exit_from_now(ready);
                if ready
                    && self.core.exit.venue_cancels_all()
                    && self.core.table.open_count() > 0
                    && let Some(c) = self.conn.as_mut()
                {
                    self.core.session.cancel_all += 1;
                    self.core.request(
                        c,
                        Which::CancelAll,
                        Method::OpenOrdersCancelAll,
                        Kind::CancelAll,
                    );
                }
                self.core.step = if ready {
                    Step::Closing {
                        until_ns: now_ns.saturating_add(grace_ns),
                    }
                } else {
                    Step::Closed
                };
            }
        }
        if self.core.step == Step::Closed {
            self.core.publish_summary();
            return true;
        }
        let mut guard = self.core.guard.take();
        self.service(&mut |r: ExecReport| {
            if let Some(g) = guard.as_mut() {
                g.on_report(&r);
            }
            emit(r);
        });
        self.core.guard = guard;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_from_days_since_the_epoch() {
        let d = |days| civil_date(days).to_string();
        assert_eq!(d(0), "1970-01-01");
        assert_eq!(d(11_016), "2000-02-29");
        assert_eq!(d(11_017), "2000-03-01");
        assert_eq!(d(20_453), "2025-12-31");
        assert_eq!(d(20_793), "2026-12-06");
        assert_eq!(d(-1), "1969-12-31");
    }

    #[test]
    fn a_retired_pinned_schema_refuses_the_venue_and_a_deprecated_one_is_reported() {
        use pinion_sbe_spot::lifecycle::{Date, LifecycleError, PROD_LIFECYCLE, Status};
        let day = Date::parse("2027-03-01").expect("date");
        let file = |deprecated: &str, retired: &str| {
            format!(
                r#"{{"environment":"PROD","latestSchema":{{"id":3,"version":7,"releaseDate":"2027-01-10"}},
                "deprecatedSchemas":[{deprecated}],"retiredSchemas":[{retired}]}}"#
            )
        };
        let retired = file(
            "",
            r#"{"id":3,"version":5,"releaseDate":"2026-07-07","deprecatedDate":"2026-09-01","retiredDate":"2027-02-28"}"#,
        );
        match schema_standing(&retired, day) {
            Err(VenueError::SbeSchema(LifecycleError::Retired {
                id: 3,
                version: 5,
                retired,
            })) => assert_eq!(retired.to_string(), "2027-02-28"),
            other => panic!("3:5 retired on 2027-02-28 must refuse: {other:?}"),
        }
        let deprecated = file(
            r#"{"id":3,"version":5,"releaseDate":"2026-07-07","deprecatedDate":"2027-01-10"}"#,
            "",
        );
        assert_eq!(
            schema_standing(&deprecated, day).expect("still served"),
            Status::Deprecated {
                since: Date::parse("2027-01-10").expect("date"),
                retires: None
            }
        );
        assert_eq!(
            schema_standing(PROD_LIFECYCLE, Date::parse("2026-12-06").expect("date"))
                .expect("the pinned schema is served"),
            Status::Latest
        );
    }

    /// A venue in SBE that has not connected: frames are handed to it as the socket would.
    fn sbe_venue() -> BinanceVenue {
        let tls = pinion_net::wss::client_config(pinion_net::rustls::RootCertStore::empty())
            .expect("client config");
        BinanceVenue::new(BinanceConfig {
            url: "wss://127.0.0.1:9/ws-api/v3".into(),
            wss: WssSettings::new(tls),
            credentials: Credentials::new(KeyKind::Hmac, "k", "s").expect("credentials"),
            instrument: InstrumentId(0),
            spec: InstrumentSpec::new(
                pinion_core::Venue::BinanceSpot,
                "BTCUSDT",
                "0.01",
                "0.00001",
            )
            .expect("spec"),
            recv_window: None,
            stp_mode: None,
            rate_limits: super::super::limits::spot_defaults(),
            orders: OrderTableConfig::default(),
            clock: ClockConfig::default(),
            open_orders: OpenOrdersPolicy::CancelAll,
            exit: ExitPolicy::CancelAll,
            reconnect: BackoffPolicy {
                base: std::time::Duration::from_millis(20),
                cap: std::time::Duration::from_millis(200),
                healthy_after: std::time::Duration::from_secs(5),
            },
            connects_per_5min: 50,
            seed: 1,
            epoch: RunEpoch::new(1_764_921_600_000).expect("epoch"),
            breaker: BreakerConfig::default(),
            max_open_orders: 64,
            max_order_qty: Qty(1_000_000),
            summary: Arc::new(Mutex::new(None)),
            response_format: ResponseFormat::Sbe,
            capture: None,
        })
        .expect("venue")
    }

    fn report(c: &str, x: &str, status: &str, l: &str, z: &str, id: u64) -> String {
        format!(
            r#"{{"subscriptionId":0,"event":{{"e":"executionReport","E":1780000000900,"s":"BTCUSDT","c":"{c}","S":"BUY","o":"LIMIT","f":"GTC","q":"0.00100","p":"60000.00","P":"0.00","F":"0.00000","g":-1,"C":"","x":"{x}","X":"{status}","r":"NONE","i":12,"l":"{l}","z":"{z}","L":"60000.00","n":"0","N":null,"T":1780000000899,"t":{id},"I":{id},"w":true,"m":true,"M":true,"O":1780000000499,"Z":"0.00","Y":"0.00","Q":"0.00000","W":1780000000499,"V":"EXPIRE_MAKER"}}}}"#
        )
    }

    #[test]
    fn an_sbe_session_reads_its_order_path_without_text_and_the_rest_through_it() {
        use pinion_exchange_sim::wsapi::sbe;
        let mut venue = sbe_venue();
        let v = &mut venue.core;
        let id = ClientOrderId(1);
        let mut text = [0u8; CLIENT_ID_LEN];
        v.codec.encode(id, &mut text);
        let c = std::str::from_utf8(&text).expect("ascii");
        let intent = OrderIntent::new_limit(
            1,
            id,
            InstrumentId(0),
            OrderSide::Buy,
            Px(6_000_000),
            Qty(100),
            OrderType::Limit,
            TimeInForce::Gtc,
            OrderReason::new(0, ReasonCode::Entry),
        );
        v.table.submit(&intent, wall_us() / 1000).expect("tracked");
        let pending = |id, kind| Pending {
            id,
            kind,
            ticket: None,
            sent_us: 0,
        };
        let mut reports = Vec::new();

        // The placement's answer: read directly (no JSON text written), the order accepted.
        v.pending
            .push(pending(7, Kind::Order(RequestKind::Place, id)));
        let ack = format!(
            r#"{{"id":7,"status":200,"result":{{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"{c}","transactTime":1780000000499}},"rateLimits":[]}}"#
        );
        v.on_binary(&sbe::response(&ack, "order.place"), &mut |r| {
            reports.push(r)
        });
        assert!(v.sbe_text.is_empty(), "the ack went through text");
        assert_eq!((v.session.answers, v.session.bad_frames), (1, 0));
        let o = v.table.get(id).expect("order");
        assert_eq!((o.order_id, o.state), (Some(12), OrderState::New));

        // A fill: read directly, applied.
        let fill = report(c, "TRADE", "PARTIALLY_FILLED", "0.00040", "0.00040", 5);
        v.on_binary(&sbe::event(&fill), &mut |r| reports.push(r));
        assert!(v.sbe_text.is_empty(), "the report went through text");
        assert_eq!(v.table.get(id).expect("order").cum_qty, Qty(40));

        // A report finer than the instrument's quantity: read directly, and the order is
        // unknown until a query settles it, as from its JSON.
        let odd = report(c, "TRADE", "PARTIALLY_FILLED", "0.000401", "0.000801", 6);
        v.on_binary(&sbe::event(&odd), &mut |r| reports.push(r));
        assert!(v.sbe_text.is_empty(), "the report went through text");
        assert_eq!(v.session.bad_frames, 1);
        let o = v.table.get(id).expect("order");
        assert_eq!((o.cum_qty, o.state), (Qty(40), OrderState::Unknown));

        // An order query's answer is read from its JSON text, even in a template the direct
        // reader takes (here an order result, as a placement answers): only the answers to
        // order requests are read without it.
        v.pending
            .push(pending(8, Kind::Order(RequestKind::Status, id)));
        let status = format!(
            r#"{{"id":8,"status":200,"result":{{"symbol":"BTCUSDT","orderId":12,"orderListId":-1,"clientOrderId":"{c}","transactTime":1780000000499,"price":"60000.00","origQty":"0.00100","executedQty":"0.00040","cummulativeQuoteQty":"24.00","status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY","selfTradePreventionMode":"EXPIRE_MAKER"}},"rateLimits":[]}}"#
        );
        let frame = sbe::response(&status, "order.place");
        assert!(matches!(
            super::super::sbe_direct::read(&frame),
            super::super::sbe_direct::Direct::Answer(_)
        ));
        v.on_binary(&frame, &mut |r| reports.push(r));
        assert!(
            !v.sbe_text.is_empty(),
            "the query's answer was not transcoded"
        );
        let o = v.table.get(id).expect("order");
        assert_eq!((o.cum_qty, o.state), (Qty(40), OrderState::PartiallyFilled));
        assert_eq!(v.session.answers, 2);
        assert!(!reports.is_empty());
    }

    #[test]
    fn the_sbe_url_names_the_pinned_schema() {
        assert_eq!(
            sbe_url("wss://ws-api.binance.com:443/ws-api/v3"),
            "wss://ws-api.binance.com:443/ws-api/v3?responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5"
        );
        assert_eq!(
            sbe_url("wss://h/ws-api/v3?returnRateLimits=true"),
            "wss://h/ws-api/v3?returnRateLimits=true&responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5"
        );
    }
}
