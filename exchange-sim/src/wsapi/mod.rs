//! Binance Spot's WebSocket API on the live exchange: order entry against the truth book.
//!
//! Path `/ws-api/v3` on [`LiveExchange`](crate::LiveExchange)'s listener (plaintext or TLS),
//! enabled by [`LiveConfig::ws_api`](crate::LiveConfig::ws_api). One request per text frame,
//! `{"id":…,"method":…,"params":{…}}`, answered `{"id":…,"status":200,"result":…,"rateLimits":[…]}`
//! or `{"id":…,"status":4xx,"error":{"code":…,"msg":…},"rateLimits":[…]}` with the exchange's
//! codes and messages.
//!
//! Methods: `time`, `session.logon` (Ed25519 over the sorted params, checked with `ring`
//! against [`WsApiConfig::ed25519_public_key`]), `session.status`, `order.place` (`LIMIT`,
//! `LIMIT_MAKER`, `MARKET`, and the contingent `STOP_LOSS`, `STOP_LOSS_LIMIT`, `TAKE_PROFIT`,
//! `TAKE_PROFIT_LIMIT` with `stopPrice` and/or `trailingDelta`, which trigger on the trade
//! prints as `contingent` describes; `GTC`/`IOC`/`FOK`; `ACK`/`RESULT`/`FULL`, `ACK` by
//! default for the contingent types), the order lists `orderList.place.oco`,
//! `orderList.place.oto`, `orderList.place.otoco`, `orderList.cancel`, `orderList.status` and
//! `openOrderLists.status` (`lists` has their rules and events), `order.cancel` (an order of a
//! list cancels the list),
//! `openOrders.cancelAll`, `order.status`, `openOrders.status`, `userDataStream.subscribe`,
//! `userDataStream.subscribe.signature` (user data without a logon, the request signed),
//! `order.cancelReplace` (`STOP_ON_FAILURE`/`ALLOW_FAILURE`, `cancelRestrictions`; `-2021`
//! with status 409 when one half failed, `-2022` with 400 when the cancel stopped it or both
//! failed, `data` as documented), `order.amend.keepPriority` (quantity decrease only; the
//! order keeps its queue position; `executionReport` `x`=`REPLACED`), `myTrades`
//! (`orderId`, `fromId`, `startTime`/`endTime`, `limit`) and `account.status`
//! (`omitZeroBalances`; commission in basis points and `commissionRates`), and
//! `account.commission` (`symbol`; the standard rates from the configured commission, tax and
//! special rates zero, no BNB discount).
//! Account requests on a logged-on session need no signature; otherwise they carry `apiKey`
//! and a `signature`: HMAC-SHA256 (hex) checked against [`WsApiConfig::hmac_secret`], or
//! Ed25519 (base64) checked against [`WsApiConfig::ed25519_public_key`]. Every
//! signed request's `timestamp` must be within `recvWindow` (default 5000 ms) and not more
//! than 1 s ahead.
//!
//! **Matching** is against the truth book of the symbol, which the simulated exchange treats
//! as its own liquidity and never changes. An incoming order walks the opposite side up to its
//! limit price and quantity (each level at most once per order), as taker. Its remainder, when
//! it rests (`GTC`), joins the queue at its price behind the quantity the truth shows there on
//! its own side at arrival (`ahead`). After every frame the market releases (on the market
//! thread, so each truth state is seen once, in order, and a given source and order arrival
//! give the same fills), each resting order moves:
//!
//! - a **trade print** (`<symbol>@trade`, `@aggTrade`) at its price whose maker was on its
//!   side (`m` true for a bid) first takes the queue ahead; what exceeds it fills the order
//!   (partially if less than its remainder). The traded quantity is remembered as *credit*.
//! - a **shrink of the truth level** at its price is first explained by that credit (the depth
//!   showing the trades already counted); the rest were cancels, spread over the level in
//!   proportion: the queue ahead shrinks by `ahead × cancelled ÷ level`. Cancels never fill.
//!   Growth joins behind. The queue ahead is never more than the level shows. (This expects
//!   prints before the depth that shows them, as Binance sends them; a shrink released
//!   before its print counts as cancels and the print then takes the queue again, so such a
//!   source fills a little early.)
//! - in a market whose trades the source does not carry (no print seen for the symbol yet),
//!   every shrink of the level counts as traded: it takes the queue ahead first, the excess
//!   fills the order.
//! - a print **beyond** its price (below a bid, above an ask), or the truth's best opposite
//!   price at or through its price, fills its whole remainder.
//!
//! **Self-trade prevention**: the account's own resting orders are part of the book an
//! incoming order walks. An own order is met after every better price and, at its own price,
//! after the market quantity queued ahead of it (`ahead` above; one inside the spread is met
//! first). There the incoming order's `selfTradePreventionMode` decides, as on the exchange
//! (the taker's mode): `EXPIRE_TAKER` ends the incoming order's remainder, `EXPIRE_MAKER` the
//! resting order (its lock released; the incoming order walks on), `EXPIRE_BOTH` both — each
//! `EXPIRED_IN_MATCH` —, `DECREMENT` (and `TRANSFER`, the same within one account) takes the
//! quantity that would have traded from both and ends whichever has nothing left, and `NONE`
//! lets the two trade (one trade id, both sides in the account's trades). Every order a
//! prevented match touched gets an `executionReport` `x`=`TRADE_PREVENTION` with `v` (the match
//! id, from 0 per symbol), `A`, `B`, `U`, `Cs`, `pl`/`pL`/`pY` (`l`, `L`, `Y`
//! zero); the order answer lists `preventedMatches` (with `takerPreventedQuantity` and/or
//! `makerPreventedQuantity`) and the taker's `preventedQuantity`; `order.status` carries
//! `preventedMatchId` and `preventedQuantity`. A `FOK` order fills entirely or does nothing (no
//! prevented match then); a `LIMIT_MAKER` that would meet an own order is refused as taking. An
//! order without a mode gets [`WsApiConfig::stp_default`]; a mode outside
//! [`WsApiConfig::stp_allowed`] is refused with `-1013`, an unknown name with `-1100`; a
//! symbol in [`WsApiConfig::stp_symbols`] has its own default and allowed modes instead.
//!
//! Maker fills are at the order's price, `m` true. Each fill is one `executionReport`
//! `TRADE` (`l`, `z`, `L`, `Y`, `n`, `N`, `t`, `I`, `w`, `m`, status `PARTIALLY_FILLED` or
//! `FILLED`) followed by an `outboundAccountPosition`. Filters come from
//! [`LiveConfig::instruments`](crate::LiveConfig::instruments) when the symbol is listed there.
//!
//! **Commission**: [`WsApiConfig::maker_commission`] and [`WsApiConfig::taker_commission`]
//! (rates, default 0), charged per fill in the asset received (base on a buy, quote on a
//! sell), deducted from what is credited, and shown as `n`/`N`, in `fills`, in `myTrades`
//! and in `/sim/account`.
//!
//! **User data**: `userDataStream.subscribe` on a logged-on session; `executionReport` (one
//! `TRADE` per match) and `outboundAccountPosition` after each balance change, wrapped as
//! `{"subscriptionId":N,"event":{…}}`; `listStatus` for order lists. Reports carry the stop
//! price (`P`), the list (`g`), whether the order is on the book (`w`, with `W` once it is),
//! and for trailing stops `d` and, once tracking, `D`.
//!
//! **Last price**: the last trade print the market released for the symbol; it is what stop
//! orders trigger on and what new stops and OCO prices are checked against. A source without
//! prints has none: stops are then not checked against it and never trigger.
//!
//! **Moving the market on cue**: `GET /sim/print?symbol=S&price=P[&qty=Q]` on the same listener
//! (and [`LiveExchange::print`](crate::LiveExchange::print)) puts a trade print through the
//! account as if the market had released it: it becomes the last price, resting orders it trades
//! through fill, and stops it crosses trigger. The market's own frames are not changed.
//!
//! **Inspection**: `GET /sim/account` on the same listener (and
//! [`LiveExchange::sim_account`](crate::LiveExchange::sim_account), typed: [`SimAccount`])
//! answers every order the account ever had, every trade and the balances, amounts as
//! normalised decimal strings (no trailing zeros):
//!
//! ```text
//! {"orders":[{"symbol":"BTCUSDT","orderId":1,"clientOrderId":"c1","side":"BUY",
//!             "type":"LIMIT","price":"61837.63","origQty":"0.01","executedQty":"0.01",
//!             "cummulativeQuoteQty":"618.3763","status":"FILLED"}],
//!  "trades":[{"symbol":"BTCUSDT","id":1,"orderId":1,"price":"61837.63","qty":"0.01",
//!             "quoteQty":"618.3763","isBuyer":true,"isMaker":true,"commission":"0.000005",
//!             "commissionAsset":"BTC","time":1723161240123}],
//!  "balances":[{"asset":"BTC","free":"1.009995","locked":"0"},
//!              {"asset":"USDT","free":"99381.6237","locked":"0"}]}
//! ```
//!
//! Orders by `orderId`, trades by `id`, balances by asset. The shape is kept stable for the
//! end-to-end comparison.
//!
//! Sessions are pinged every [`LiveConfig::ping_interval`](crate::LiveConfig::ping_interval).
//!
//! **Rate limits**: `REQUEST_WEIGHT` (per minute) and, on order requests, `ORDERS` (per 10 s
//! and per day), fixed windows aligned to the clock, for the one simulated account. Successful
//! order requests (`order.place`, `order.cancel`, `openOrders.cancelAll`,
//! `order.cancelReplace`, the `orderList.place.*` and `orderList.cancel`) weigh 0, failed ones
//! 1; `order.amend.keepPriority` weighs 4 (0 when it ends the order), `order.status` and
//! `orderList.status` 4, `openOrders.status` and `openOrderLists.status` 6, `myTrades` 20 (5
//! with `orderId`), `account.status` 20. `order.place`, `order.cancelReplace` and the list
//! placements count as orders.
//!
//! **Faults**: [`OrderFaultPlan`].

mod contingent;
mod faults;
mod lists;
mod methods;
pub mod sbe;
mod snapshot;
mod stp;

pub use faults::{OrderFault, OrderFaultError, OrderFaultPlan};
pub use snapshot::{SimAccount, SimBalance, SimOrder, SimTrade};

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

use crate::http::{self, RequestHead};
use crate::live::{Dec, LiveShared, now_ms};
use crate::tls::Conn;

/// The path of the WebSocket API.
pub const WS_API_PATH: &str = "/ws-api/v3";

/// Largest request frame accepted.
const MAX_REQUEST: usize = 64 << 10;
/// Units of [`Dec`] per 1.
const ONE: u128 = 1_000_000_000_000_000_000;
/// How long a session waits for a request before it looks at resting orders again.
const POLL: Duration = Duration::from_millis(20);

/// The simulated account and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsApiConfig {
    /// The API key requests must name.
    pub api_key: String,
    /// The Ed25519 public key (32 raw bytes) `session.logon` is checked against; `None`
    /// refuses every logon.
    pub ed25519_public_key: Option<Vec<u8>>,
    /// The HMAC secret per-request signatures are checked against; `None` refuses them.
    pub hmac_secret: Option<String>,
    /// Start balances, `(asset, free)`.
    pub balances: Vec<(String, String)>,
    /// `REQUEST_WEIGHT` per minute.
    pub weight_limit: u32,
    /// `ORDERS` per 10 s.
    pub orders_per_10s: u32,
    /// `ORDERS` per day.
    pub orders_per_day: u32,
    /// Faults of the order path.
    pub faults: OrderFaultPlan,
    /// Commission rate of maker fills (`0.001` = 0.1 %), charged in the asset received.
    pub maker_commission: Dec,
    /// Commission rate of taker fills, charged in the asset received.
    pub taker_commission: Dec,
    /// What the API key may do, as the wallet API's `apiRestrictions` answers it.
    pub key: KeyProfile,
    /// The self-trade prevention mode of an order that names none
    /// (`defaultSelfTradePreventionMode` of every symbol in `exchangeInfo`).
    pub stp_default: StpMode,
    /// The modes an order may name (`allowedSelfTradePreventionModes`); another is refused
    /// with `-1013`.
    pub stp_allowed: Vec<StpMode>,
    /// Symbols with a default and allowed modes of their own, in place of
    /// [`WsApiConfig::stp_default`] and [`WsApiConfig::stp_allowed`].
    pub stp_symbols: Vec<SymbolStp>,
}

/// One symbol's self-trade prevention modes, as its `exchangeInfo` entry shows them and as its
/// orders are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolStp {
    /// The symbol, upper case.
    pub symbol: String,
    /// `defaultSelfTradePreventionMode`.
    pub default: StpMode,
    /// `allowedSelfTradePreventionModes`.
    pub allowed: Vec<StpMode>,
}

/// A self-trade prevention mode (`selfTradePreventionMode`): what happens when an incoming
/// order would trade with a resting order of the same account (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StpMode {
    /// No prevention: the two orders trade.
    None,
    /// The incoming order's remaining quantity expires.
    ExpireTaker,
    /// The resting order's remaining quantity expires.
    ExpireMaker,
    /// Both orders' remaining quantities expire.
    ExpireBoth,
    /// Both orders lose the quantity that would have traded.
    Decrement,
    /// `DECREMENT` between orders of one account (the simulator has no trade groups).
    Transfer,
}

impl StpMode {
    /// Every mode, in the exchange's order.
    pub const ALL: [StpMode; 6] = [
        StpMode::None,
        StpMode::ExpireTaker,
        StpMode::ExpireMaker,
        StpMode::ExpireBoth,
        StpMode::Decrement,
        StpMode::Transfer,
    ];

    /// The exchange's name.
    pub fn name(self) -> &'static str {
        match self {
            StpMode::None => "NONE",
            StpMode::ExpireTaker => "EXPIRE_TAKER",
            StpMode::ExpireMaker => "EXPIRE_MAKER",
            StpMode::ExpireBoth => "EXPIRE_BOTH",
            StpMode::Decrement => "DECREMENT",
            StpMode::Transfer => "TRANSFER",
        }
    }

    /// The mode of an exchange name.
    pub fn parse(name: &str) -> Option<StpMode> {
        StpMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// An API key's restrictions, as `GET /sapi/v1/account/apiRestrictions` answers them. The
/// default is the key a trading engine should have: trading only, bound to IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProfile {
    /// `enableWithdrawals`: the key can move funds off the exchange.
    pub enable_withdrawals: bool,
    /// `ipRestrict`: the key works only from the IP addresses bound to it.
    pub ip_restrict: bool,
    /// `enableSpotAndMarginTrading`: the key can place Spot orders.
    pub enable_spot_trading: bool,
}

impl Default for KeyProfile {
    fn default() -> Self {
        KeyProfile {
            enable_withdrawals: false,
            ip_restrict: true,
            enable_spot_trading: true,
        }
    }
}

impl WsApiConfig {
    /// Binance Spot's limits, no keys, no balances, no faults.
    pub fn new(api_key: &str) -> Self {
        WsApiConfig {
            api_key: api_key.to_owned(),
            ed25519_public_key: None,
            hmac_secret: None,
            balances: Vec::new(),
            weight_limit: 6000,
            orders_per_10s: 50,
            orders_per_day: 160_000,
            faults: OrderFaultPlan::none(),
            maker_commission: Dec::default(),
            taker_commission: Dec::default(),
            key: KeyProfile::default(),
            stp_default: StpMode::ExpireMaker,
            stp_allowed: StpMode::ALL.to_vec(),
            stp_symbols: Vec::new(),
        }
    }

    /// The default and allowed self-trade prevention modes of `symbol`: its own, when
    /// [`WsApiConfig::stp_symbols`] lists it, else the account's.
    pub fn stp_of(&self, symbol: &str) -> (StpMode, &[StpMode]) {
        self.stp_symbols
            .iter()
            .find(|s| s.symbol == symbol)
            .map_or((self.stp_default, &self.stp_allowed), |s| {
                (s.default, &s.allowed)
            })
    }

    /// Whether `signature` signs `payload` with this account's key: hex HMAC-SHA256 with
    /// [`WsApiConfig::hmac_secret`], or base64 Ed25519 with
    /// [`WsApiConfig::ed25519_public_key`].
    pub(crate) fn signed(&self, payload: &[u8], signature: &str) -> bool {
        if let (Some(secret), Some(sig)) = (&self.hmac_secret, hex_decode(signature)) {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            if ring::hmac::verify(&key, payload, &sig).is_ok() {
                return true;
            }
        }
        if let (Some(key), Some(sig)) = (&self.ed25519_public_key, base64_decode(signature)) {
            return ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                .verify(payload, &sig)
                .is_ok();
        }
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

#[derive(Debug, Clone)]
struct Order {
    symbol: String,
    order_id: u64,
    client_id: String,
    side: Side,
    ty: &'static str,
    tif: &'static str,
    price: Dec,
    qty: Dec,
    executed: Dec,
    cum_quote: Dec,
    status: &'static str,
    stp: String,
    created: u64,
    updated: u64,
    working: Option<u64>,
    /// Quantity queued ahead of the order at its price (resting orders).
    ahead: Dec,
    /// The truth's quantity at the order's price on its side when last looked at.
    level_seen: Dec,
    /// Quantity traded at the order's price that the truth's level has not shown yet.
    credit: Dec,
    /// Why it expired (`expiryReason`, `eR`), when it did.
    expiry: Option<&'static str>,
    /// The quantity grid its fills keep to: the symbol's step size, or the exchange's base
    /// precision (10⁻⁸) when the symbol has no filters here.
    step: Dec,
    /// The trigger of a contingent order (`STOP_LOSS`, `TAKE_PROFIT` and their `_LIMIT`s).
    trigger: Option<contingent::Trigger>,
    /// The order list it belongs to (`orderListId`).
    list: Option<u64>,
    /// What the account holds locked for it, in the asset it pays with.
    lock: Dec,
    /// Quantity self-trade prevention took from it (`preventedQuantity`, `A`).
    prevented: Dec,
    /// What the last prevented match took (`B`).
    last_prevented: Dec,
    /// Its last prevented match (`preventedMatchId`, `v`).
    prevented_match: Option<u64>,
}

impl Order {
    /// Not ended: on the book, waiting for its trigger, or pending in an order list.
    fn is_open(&self) -> bool {
        matches!(self.status, "NEW" | "PARTIALLY_FILLED" | "PENDING_NEW")
    }

    /// On the book (`w`): open and working.
    fn on_book(&self) -> bool {
        matches!(self.status, "NEW" | "PARTIALLY_FILLED") && self.working.is_some()
    }

    /// What it may still execute: its quantity less what executed and what self-trade
    /// prevention took.
    fn remaining(&self) -> Dec {
        sub(self.qty, add(self.executed, self.prevented))
    }
}

/// One trade of the account.
#[derive(Debug, Clone)]
struct Trade {
    symbol: String,
    id: u64,
    order_id: u64,
    price: Dec,
    qty: Dec,
    quote: Dec,
    commission: Dec,
    commission_asset: String,
    time: u64,
    buyer: bool,
    maker: bool,
}

#[derive(Debug)]
struct Subscriber {
    session: u64,
    id: u32,
    outbox: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    index: u64,
    count: u32,
}

impl Window {
    fn at(&mut self, index: u64) -> &mut u32 {
        if self.index != index {
            *self = Window { index, count: 0 };
        }
        &mut self.count
    }
}

/// The simulated account: orders, balances, subscribers, counters.
#[derive(Debug)]
pub(crate) struct Account {
    config: Option<WsApiConfig>,
    orders: Vec<Order>,
    next_order_id: u64,
    next_trade_id: u64,
    next_exec_id: u64,
    next_session: u64,
    places: u64,
    /// `asset → (free, locked)`.
    balances: BTreeMap<String, (Dec, Dec)>,
    subscribers: Vec<Subscriber>,
    weight: Window,
    orders_10s: Window,
    orders_day: Window,
    trades: Vec<Trade>,
    /// Symbols whose trades the market has released (queues move by trades there).
    trade_symbols: BTreeSet<String>,
    /// `revoke`: the API key no longer works.
    revoked: bool,
    /// `o429burst`: the last 429's `retryAfter`.
    retry_until: u64,
    /// `o429burst`: the ban's end.
    banned_until: u64,
    /// Order lists, by `orderListId`.
    lists: Vec<lists::OrderList>,
    next_list_id: u64,
    /// The last trade price the market released, per symbol (what stops trigger on).
    last_price: BTreeMap<String, Dec>,
    /// The next prevented match id, per symbol.
    prevented_ids: BTreeMap<String, u64>,
}

/// The account behind its lock.
#[derive(Debug)]
pub(crate) struct AccountCell(Mutex<Account>);

impl AccountCell {
    /// The account of `config` (`None`: the WS API is off).
    pub(crate) fn new(config: Option<&WsApiConfig>) -> Self {
        let mut balances = BTreeMap::new();
        for (asset, free) in config.map(|c| c.balances.as_slice()).unwrap_or(&[]) {
            let free = Dec::parse(free).unwrap_or_default();
            balances.insert(asset.to_ascii_uppercase(), (free, Dec::default()));
        }
        AccountCell(Mutex::new(Account {
            config: config.cloned(),
            orders: Vec::new(),
            next_order_id: 1,
            next_trade_id: 1,
            next_exec_id: 1,
            next_session: 0,
            places: 0,
            balances,
            subscribers: Vec::new(),
            weight: Window::default(),
            orders_10s: Window::default(),
            orders_day: Window::default(),
            trades: Vec::new(),
            trade_symbols: BTreeSet::new(),
            revoked: false,
            retry_until: 0,
            banned_until: 0,
            lists: Vec::new(),
            next_list_id: 1,
            last_price: BTreeMap::new(),
            prevented_ids: BTreeMap::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Account> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Balances now, `(asset, free, locked)` normalised (for tests and inspection).
    pub(crate) fn balances(&self) -> Vec<(String, String, String)> {
        self.lock()
            .balances
            .iter()
            .map(|(a, (f, l))| (a.clone(), f.normalized(), l.normalized()))
            .collect()
    }

    /// Every order, trade and balance (`/sim/account`).
    pub(crate) fn snapshot(&self) -> SimAccount {
        let account = self.lock();
        let mut orders: Vec<SimOrder> = account
            .orders
            .iter()
            .map(|o| SimOrder {
                symbol: o.symbol.clone(),
                order_id: o.order_id,
                client_order_id: o.client_id.clone(),
                side: o.side.name().to_owned(),
                order_type: o.ty.to_owned(),
                price: o.price.normalized(),
                orig_qty: o.qty.normalized(),
                executed_qty: o.executed.normalized(),
                cummulative_quote_qty: o.cum_quote.normalized(),
                status: o.status.to_owned(),
                stop_price: o
                    .trigger
                    .as_ref()
                    .and_then(|t| t.stop)
                    .map(|d| d.normalized()),
                trailing_delta: o.trigger.as_ref().and_then(|t| t.delta),
                order_list_id: o.list,
                prevented_qty: o.prevented_match.map(|_| o.prevented.normalized()),
            })
            .collect();
        orders.sort_by_key(|o| o.order_id);
        let trades = account
            .trades
            .iter()
            .map(|t| SimTrade {
                symbol: t.symbol.clone(),
                id: t.id,
                order_id: t.order_id,
                price: t.price.normalized(),
                qty: t.qty.normalized(),
                quote_qty: t.quote.normalized(),
                is_buyer: t.buyer,
                is_maker: t.maker,
                commission: t.commission.normalized(),
                commission_asset: t.commission_asset.clone(),
                time: t.time,
            })
            .collect();
        let balances = account
            .balances
            .iter()
            .map(|(a, (f, l))| SimBalance {
                asset: a.clone(),
                free: f.normalized(),
                locked: l.normalized(),
            })
            .collect();
        SimAccount {
            orders,
            trades,
            balances,
        }
    }
}

/// A request refused: status, code, message (and `data`).
#[derive(Debug)]
struct Refusal {
    status: u16,
    code: i32,
    msg: String,
    data: Option<Value>,
}

fn refuse(code: i32, msg: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        code,
        msg: msg.into(),
        data: None,
    }
}

fn mandatory(name: &str) -> Refusal {
    refuse(
        -1102,
        format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

/// What a handled request leads to.
enum Next {
    Answer(String),
    Reset,
}

/// One connected WS API session.
struct Session<'a> {
    shared: &'a LiveShared,
    id: u64,
    logged_on: bool,
    connected: u64,
    authorized: Option<u64>,
    /// `olate`: how long the answer being made waits.
    late: Option<Duration>,
    /// The session asked for SBE (`responseFormat=sbe`): answers and events go out binary.
    sbe: bool,
    /// The method of the request being answered (which SBE message its result is).
    method: String,
}

/// Upgrades and serves one WS API connection until it ends.
pub(crate) fn open(mut stream: Conn, head: &RequestHead, shared: &LiveShared) {
    let enabled = shared.ws_api.lock().config.is_some();
    let (Some(key), "GET", true) = (head.websocket_key.as_deref(), head.method.as_str(), enabled)
    else {
        shared.count(|c| &c.bad_requests);
        let _ = http::respond_error(&mut stream, "404 Not Found", -1000, "Unknown path.");
        return;
    };
    // SBE as the exchange takes it: `responseFormat=sbe` with a schema it serves, else 400.
    let sbe = match head.query_param("responseFormat").as_deref() {
        None | Some("json") => false,
        Some("sbe") => {
            let id = head.query_param("sbeSchemaId");
            let version = head.query_param("sbeSchemaVersion");
            let pinned = (
                pinion_sbe_spot::SCHEMA_ID.to_string(),
                pinion_sbe_spot::SCHEMA_VERSION.to_string(),
            );
            if (id, version) != (Some(pinned.0), Some(pinned.1)) {
                shared.count(|c| &c.bad_requests);
                let _ = http::respond_error(
                    &mut stream,
                    "400 Bad Request",
                    -1100,
                    "Invalid sbeSchemaId or sbeSchemaVersion.",
                );
                return;
            }
            true
        }
        Some(_) => {
            shared.count(|c| &c.bad_requests);
            let _ = http::respond_error(
                &mut stream,
                "400 Bad Request",
                -1100,
                "Invalid responseFormat.",
            );
            return;
        }
    };
    if http::respond_switching(&mut stream, key).is_err() {
        return;
    }
    shared.count(|c| &c.ws_sessions);
    let _ = stream.tcp().set_read_timeout(Some(POLL));
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_REQUEST))
        .max_frame_size(Some(MAX_REQUEST));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(ws_config));
    let id = {
        let mut account = shared.ws_api.lock();
        account.next_session += 1;
        account.next_session
    };
    let mut session = Session {
        shared,
        id,
        logged_on: false,
        connected: now_ms(),
        authorized: None,
        late: None,
        sbe,
        method: String::new(),
    };
    let reset = session.run(&mut ws);
    shared.ws_api.lock().subscribers.retain(|s| s.session != id);
    if reset {
        let _ = ws.get_ref().tcp().shutdown(Shutdown::Both);
    } else {
        let _ = ws.close(None);
        let _ = ws.flush();
        ws.get_mut().close_notify();
    }
}

impl Session<'_> {
    /// Serves until the client goes (false) or a reset fault ends it (true).
    fn run(&mut self, ws: &mut WebSocket<Conn>) -> bool {
        // Pings as the market sessions send them (the client's pongs are read and dropped;
        // its own pings are answered by the WebSocket layer).
        let interval = self.shared.config.ping_interval;
        let mut next_ping = interval.map(|d| std::time::Instant::now() + d);
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return false;
            }
            if let (Some(at), Some(d)) = (next_ping, interval)
                && std::time::Instant::now() >= at
            {
                next_ping = Some(at + d);
                if ws
                    .write(Message::Ping(now_ms().to_string().into()))
                    .is_err()
                {
                    return false;
                }
            }
            match ws.read() {
                Ok(Message::Text(text)) => {
                    if let Some(tap) = self.shared.tap.get() {
                        tap.request_read(text.as_str());
                    }
                    let fill_first = self.fill_first();
                    let next = self.handle(text.as_str());
                    if fill_first && self.send_events(ws).is_err() {
                        return false;
                    }
                    // `olate`: the answer waits while user data keeps flowing.
                    if let Some(delay) = self.late.take() {
                        let until = std::time::Instant::now() + delay;
                        while std::time::Instant::now() < until {
                            if self.send_events(ws).is_err() {
                                return false;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    match next {
                        Next::Reset => return true,
                        Next::Answer(answer) => {
                            if ws.send(self.answer_message(answer)).is_err() {
                                return false;
                            }
                        }
                    }
                }
                Ok(Message::Close(_)) => return false,
                Ok(Message::Binary(_)) => {
                    let answer = self.error_answer(
                        &Value::Null,
                        &refuse(-1100, "Binary frames are not accepted."),
                    );
                    self.method.clear();
                    if ws.send(self.answer_message(answer)).is_err() {
                        return false;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
            if self.send_events(ws).is_err() {
                return false;
            }
        }
    }

    /// The simulator's clock: now, off by the `skew` fault.
    fn server_now(&self) -> u64 {
        let skew = self
            .shared
            .ws_api
            .lock()
            .config
            .as_ref()
            .map_or(0, |c| c.faults.skew_ms());
        now_ms().saturating_add_signed(skew)
    }

    fn fill_first(&self) -> bool {
        self.shared
            .ws_api
            .lock()
            .config
            .as_ref()
            .is_some_and(|c| c.faults.fill_first())
    }

    /// An answer as the session's format wants it.
    fn answer_message(&self, answer: String) -> Message {
        if self.sbe {
            self.shared.count(|c| &c.ws_api_sbe_messages);
            Message::binary(sbe::response(&answer, &self.method))
        } else {
            Message::text(answer)
        }
    }

    fn send_events(&self, ws: &mut WebSocket<Conn>) -> tungstenite::Result<()> {
        let events: Vec<String> = {
            let mut account = self.shared.ws_api.lock();
            account
                .subscribers
                .iter_mut()
                .filter(|s| s.session == self.id)
                .flat_map(|s| std::mem::take(&mut s.outbox))
                .collect()
        };
        for event in events {
            let message = if self.sbe {
                self.shared.count(|c| &c.ws_api_sbe_messages);
                Message::binary(sbe::event(&event))
            } else {
                Message::text(event)
            };
            ws.write(message)?;
        }
        match ws.flush() {
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// The rateLimits array after charging `weight` (and an order when `order`).
    fn rate_limits(&self, weight: u32, order: bool) -> Value {
        let now = now_ms();
        let mut account = self.shared.ws_api.lock();
        let (wl, o10, oday) = account.config.as_ref().map_or((6000, 50, 160_000), |c| {
            (c.weight_limit, c.orders_per_10s, c.orders_per_day)
        });
        let w = account.weight.at(now / 60_000);
        *w = w.saturating_add(weight);
        let w = *w;
        let mut limits = vec![limit_entry("REQUEST_WEIGHT", "MINUTE", 1, wl, w)];
        if order {
            let a = *account.orders_10s.at(now / 10_000);
            let b = *account.orders_day.at(now / 86_400_000);
            limits.push(limit_entry("ORDERS", "SECOND", 10, o10, a));
            limits.push(limit_entry("ORDERS", "DAY", 1, oday, b));
        }
        Value::Array(limits)
    }

    fn error_answer(&self, id: &Value, r: &Refusal) -> String {
        let mut error = json!({"code": r.code, "msg": r.msg});
        if let Some(data) = &r.data {
            error["data"] = data.clone();
        }
        json!({"id": id, "status": r.status, "error": error,
               "rateLimits": self.rate_limits(1, false)})
        .to_string()
    }

    fn handle(&mut self, text: &str) -> Next {
        self.method.clear();
        let request: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Next::Answer(self.error_answer(
                    &Value::Null,
                    &refuse(
                        -1102,
                        "Mandatory parameter 'method' was not sent, was empty/null, or malformed.",
                    ),
                ));
            }
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
            return Next::Answer(self.error_answer(&Value::Null, &mandatory("id")));
        }
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            return Next::Answer(self.error_answer(&id, &mandatory("method")));
        };
        self.method.push_str(method);
        let empty = Map::new();
        let params = match request.get("params") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => return Next::Answer(self.error_answer(&id, &mandatory("params"))),
        };
        // Successful order requests weigh 0 (an amendment only when it ends the order).
        let order_method = matches!(
            method,
            "order.place"
                | "order.cancel"
                | "openOrders.cancelAll"
                | "order.cancelReplace"
                | "orderList.place.oco"
                | "orderList.place.oto"
                | "orderList.place.otoco"
                | "orderList.cancel"
        );
        let counts_order = counts_as_order(method);
        if counts_order {
            self.shared.count(|c| &c.ws_api_order_requests);
        }
        match self.dispatch(method, params) {
            Ok(Outcome::Result(result)) => {
                let ended = method == "order.amend.keepPriority"
                    && result["amendedOrder"]["status"] == "EXPIRED";
                let weight = if order_method || ended {
                    0
                } else {
                    method_weight(method, params)
                };
                let limits = self.rate_limits(weight, counts_order);
                Next::Answer(
                    json!({"id": id, "status": 200, "result": result, "rateLimits": limits})
                        .to_string(),
                )
            }
            Ok(Outcome::Reset) => Next::Reset,
            Err(r) => {
                let weight = if order_method {
                    1
                } else {
                    method_weight(method, params)
                };
                let mut error = json!({"code": r.code, "msg": r.msg});
                if let Some(data) = &r.data {
                    error["data"] = data.clone();
                }
                let limits = self.rate_limits(weight, counts_order);
                Next::Answer(
                    json!({"id": id, "status": r.status, "error": error, "rateLimits": limits})
                        .to_string(),
                )
            }
        }
    }

    fn dispatch(&mut self, method: &str, params: &Map<String, Value>) -> Result<Outcome, Refusal> {
        let spec = method_spec(method).ok_or_else(|| refuse(-1020, "Unsupported operation."))?;
        let p = Params::read(params, spec)?;
        {
            let account = self.shared.ws_api.lock();
            let now = now_ms();
            if now < account.banned_until {
                return Err(banned(account.banned_until));
            }
            if account.revoked && method != "time" {
                return Err(refuse(
                    -2015,
                    "Invalid API-key, IP, or permissions for action.",
                ));
            }
        }
        self.check_limits(method, params)?;
        match method {
            "time" => Ok(Outcome::Result(json!({"serverTime": self.server_now()}))),
            "session.logon" => self.logon(&p),
            "session.status" => Ok(Outcome::Result(self.status_result())),
            "userDataStream.subscribe" => {
                if !self.logged_on {
                    return Err(refuse(
                        -2015,
                        "Invalid API-key, IP, or permissions for action.",
                    ));
                }
                Ok(self.subscribe())
            }
            // User data without a logon: the request itself is signed (HMAC keys).
            "userDataStream.subscribe.signature" => {
                self.authorize(&p)?;
                Ok(self.subscribe())
            }
            _ => {
                self.authorize(&p)?;
                match method {
                    "order.place" => self.place(&p),
                    "order.cancel" => cancel(self.shared, &p).map(Outcome::Result),
                    "openOrders.cancelAll" => cancel_all(self.shared, &p).map(Outcome::Result),
                    "order.status" => order_status(self.shared, &p).map(Outcome::Result),
                    "order.cancelReplace" => {
                        methods::cancel_replace(self.shared, &p).map(Outcome::Result)
                    }
                    "order.amend.keepPriority" => {
                        methods::amend(self.shared, &p).map(Outcome::Result)
                    }
                    "myTrades" => methods::my_trades(self.shared, &p).map(Outcome::Result),
                    "account.status" => {
                        Ok(Outcome::Result(methods::account_status(self.shared, &p)))
                    }
                    "account.commission" => {
                        methods::account_commission(self.shared, &p).map(Outcome::Result)
                    }
                    "orderList.place.oco" => {
                        lists::place(self.shared, &p, lists::Kind::Oco).map(Outcome::Result)
                    }
                    "orderList.place.oto" => {
                        lists::place(self.shared, &p, lists::Kind::Oto).map(Outcome::Result)
                    }
                    "orderList.place.otoco" => {
                        lists::place(self.shared, &p, lists::Kind::Otoco).map(Outcome::Result)
                    }
                    "orderList.cancel" => lists::cancel(self.shared, &p).map(Outcome::Result),
                    "orderList.status" => lists::status(self.shared, &p).map(Outcome::Result),
                    "openOrderLists.status" => Ok(Outcome::Result(lists::open_lists(self.shared))),
                    _ => Ok(Outcome::Result(open_orders(self.shared, &p))),
                }
            }
        }
    }

    fn check_limits(&self, method: &str, params: &Map<String, Value>) -> Result<(), Refusal> {
        let now = now_ms();
        let mut account = self.shared.ws_api.lock();
        let Some(config) = account.config.clone() else {
            return Ok(());
        };
        // A request that would take the window past the limit is refused (order requests are
        // counted at the weight a failure costs).
        if account
            .weight
            .at(now / 60_000)
            .saturating_add(method_weight(method, params))
            > config.weight_limit
        {
            return Err(Refusal {
                status: 429,
                code: -1003,
                msg: format!(
                    "Too many requests; current limit of IP is {} requests per minute.",
                    config.weight_limit
                ),
                data: Some(json!({"retryAfter": (now / 60_000 + 1) * 60_000})),
            });
        }
        if counts_as_order(method) {
            let a = account.orders_10s.at(now / 10_000);
            if *a >= config.orders_per_10s {
                return Err(Refusal {
                    status: 429,
                    code: -1015,
                    msg: format!(
                        "Too many new orders; current limit is {} orders per TEN_SECONDS.",
                        config.orders_per_10s
                    ),
                    data: Some(json!({"retryAfter": (now / 10_000 + 1) * 10_000})),
                });
            }
            *a += 1;
            *account.orders_day.at(now / 86_400_000) += 1;
        }
        Ok(())
    }

    fn status_result(&self) -> Value {
        let api_key = self
            .logged_on
            .then(|| {
                self.shared
                    .ws_api
                    .lock()
                    .config
                    .as_ref()
                    .map(|c| c.api_key.clone())
            })
            .flatten();
        json!({
            "apiKey": api_key,
            "authorizedSince": self.authorized,
            "connectedSince": self.connected,
            "returnRateLimits": true,
            "serverTime": self.server_now(),
            "userDataStream": self.shared.ws_api.lock().subscribers.iter().any(|s| s.session == self.id),
        })
    }

    /// Adds a user data subscription on this session; ids are numbered per connection, from 0.
    fn subscribe(&self) -> Outcome {
        let mut account = self.shared.ws_api.lock();
        let sub = account
            .subscribers
            .iter()
            .filter(|s| s.session == self.id)
            .map(|s| s.id + 1)
            .max()
            .unwrap_or(0);
        account.subscribers.push(Subscriber {
            session: self.id,
            id: sub,
            outbox: Vec::new(),
        });
        Outcome::Result(json!({"subscriptionId": sub}))
    }

    fn logon(&mut self, p: &Params) -> Result<Outcome, Refusal> {
        let config = self.shared.ws_api.lock().config.clone();
        let config = config
            .ok_or_else(|| refuse(-2015, "Invalid API-key, IP, or permissions for action."))?;
        check_time(p, self.server_now())?;
        if p.get("apiKey") != Some(config.api_key.as_str()) {
            return Err(refuse(
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ));
        }
        let signature = p.get("signature").ok_or_else(|| mandatory("signature"))?;
        let key = config
            .ed25519_public_key
            .as_ref()
            .ok_or_else(|| refuse(-4056, "HMAC_SHA256 API key is not supported."))?;
        let sig = base64_decode(signature)
            .ok_or_else(|| refuse(-1022, "Signature for this request is not valid."))?;
        let payload = p.payload();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
            .verify(payload.as_bytes(), &sig)
            .map_err(|_| refuse(-1022, "Signature for this request is not valid."))?;
        self.logged_on = true;
        let now = now_ms();
        self.authorized = Some(now);
        Ok(Outcome::Result(self.status_result()))
    }

    /// Checks the signature and timing of an account request.
    fn authorize(&self, p: &Params) -> Result<(), Refusal> {
        check_time(p, self.server_now())?;
        if self.logged_on {
            return Ok(());
        }
        let config = self.shared.ws_api.lock().config.clone();
        let config = config
            .ok_or_else(|| refuse(-2015, "Invalid API-key, IP, or permissions for action."))?;
        let api_key = p.get("apiKey").ok_or_else(|| mandatory("apiKey"))?;
        if api_key != config.api_key {
            return Err(refuse(
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ));
        }
        let signature = p.get("signature").ok_or_else(|| mandatory("signature"))?;
        if config.signed(p.payload().as_bytes(), signature) {
            Ok(())
        } else {
            Err(refuse(-1022, "Signature for this request is not valid."))
        }
    }

    fn place(&mut self, p: &Params) -> Result<Outcome, Refusal> {
        let now = now_ms();
        let fault = {
            let mut account = self.shared.ws_api.lock();
            account.places += 1;
            let n = account.places;
            // `o429burst`: an order sent before the last 429's `retryAfter` gets a ban.
            if now < account.retry_until {
                account.banned_until = now + BAN_MS;
                return Err(banned(account.banned_until));
            }
            account.config.as_ref().and_then(|c| c.faults.for_place(n))
        };
        let timeout = || {
            Refusal {
            status: 408,
            code: -1007,
            msg: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.".into(),
            data: None,
        }
        };
        let server_error = || Refusal {
            status: 500,
            code: -1000,
            msg: "An unknown error occurred while processing the request.".into(),
            data: None,
        };
        match fault {
            Some(OrderFault::Reset { .. }) => return Ok(Outcome::Reset),
            Some(OrderFault::TimeoutNotExecuted { .. }) => return Err(timeout()),
            Some(OrderFault::ServerErrorNotExecuted { .. }) => return Err(server_error()),
            Some(OrderFault::RateLimited { .. }) => {
                return Err(Refusal {
                    status: 429,
                    code: -1015,
                    msg: "Too many new orders; current limit is 50 orders per TEN_SECONDS.".into(),
                    data: Some(json!({"retryAfter": now + 1000})),
                });
            }
            Some(OrderFault::Burst429 { .. }) => {
                let retry = now + RETRY_MS;
                self.shared.ws_api.lock().retry_until = retry;
                return Err(Refusal {
                    status: 429,
                    code: -1015,
                    msg: "Too many new orders; current limit is 50 orders per TEN_SECONDS.".into(),
                    data: Some(json!({"retryAfter": retry})),
                });
            }
            _ => {}
        }
        let result = place(self.shared, p)?;
        match fault {
            Some(OrderFault::TimeoutExecuted { .. }) => Err(timeout()),
            Some(OrderFault::ServerErrorExecuted { .. }) => Err(server_error()),
            Some(OrderFault::Late { ms, .. }) => {
                self.late = Some(Duration::from_millis(ms));
                Ok(Outcome::Result(result))
            }
            Some(OrderFault::Revoke { .. }) => {
                self.shared.ws_api.lock().revoked = true;
                Ok(Outcome::Result(result))
            }
            _ => Ok(Outcome::Result(result)),
        }
    }
}

/// `o429burst`: how long a 429 asks the client to wait.
const RETRY_MS: u64 = 1000;
/// `o429burst`: how long a ban lasts.
const BAN_MS: u64 = 5000;

/// The 418 of a banned client.
fn banned(until: u64) -> Refusal {
    Refusal {
        status: 418,
        code: -1003,
        msg: format!(
            "Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live updates to avoid bans."
        ),
        data: Some(json!({"retryAfter": until})),
    }
}

enum Outcome {
    Result(Value),
    Reset,
}

fn limit_entry(kind: &str, interval: &str, num: u32, limit: u32, count: u32) -> Value {
    json!({"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit, "count": count})
}

/// Whether a request counts against the `ORDERS` limits.
fn counts_as_order(method: &str) -> bool {
    matches!(
        method,
        "order.place"
            | "order.cancelReplace"
            | "orderList.place.oco"
            | "orderList.place.oto"
            | "orderList.place.otoco"
    )
}

fn method_weight(method: &str, params: &Map<String, Value>) -> u32 {
    match method {
        "myTrades" if params.contains_key("orderId") => 5,
        "myTrades" | "account.status" | "account.commission" => 20,
        "order.status" | "order.amend.keepPriority" | "orderList.status" => 4,
        "openOrders.status" | "openOrderLists.status" => 6,
        "session.logon"
        | "session.status"
        | "userDataStream.subscribe"
        | "userDataStream.subscribe.signature" => 2,
        _ => 1,
    }
}

/// Parameters every signed request may carry.
const SIGNED: [&str; 4] = ["apiKey", "signature", "timestamp", "recvWindow"];

/// `(allowed, mandatory, signed)` per method.
fn method_spec(method: &str) -> Option<(&'static [&'static str], &'static [&'static str], bool)> {
    Some(match method {
        "time" | "session.status" | "userDataStream.subscribe" => (&[], &[], false),
        "session.logon" | "userDataStream.subscribe.signature" => {
            (&[], &["apiKey", "signature", "timestamp"], true)
        }
        "order.place" => (
            &[
                "symbol",
                "side",
                "type",
                "timeInForce",
                "price",
                "quantity",
                "newClientOrderId",
                "newOrderRespType",
                "selfTradePreventionMode",
                "stopPrice",
                "trailingDelta",
            ],
            &["symbol", "side", "type"],
            true,
        ),
        "order.cancel" => (
            &[
                "symbol",
                "orderId",
                "origClientOrderId",
                "newClientOrderId",
                "cancelRestrictions",
            ],
            &["symbol"],
            true,
        ),
        "order.status" => (
            &["symbol", "orderId", "origClientOrderId"],
            &["symbol"],
            true,
        ),
        "openOrders.cancelAll" => (&["symbol"], &["symbol"], true),
        "openOrders.status" => (&["symbol"], &[], true),
        "order.cancelReplace" => (
            &[
                "symbol",
                "cancelReplaceMode",
                "cancelOrderId",
                "cancelOrigClientOrderId",
                "cancelNewClientOrderId",
                "side",
                "type",
                "timeInForce",
                "price",
                "quantity",
                "newClientOrderId",
                "newOrderRespType",
                "selfTradePreventionMode",
                "cancelRestrictions",
                "orderRateLimitExceededMode",
                "stopPrice",
                "trailingDelta",
            ],
            &["symbol", "cancelReplaceMode", "side", "type"],
            true,
        ),
        "order.amend.keepPriority" => (
            &[
                "symbol",
                "orderId",
                "origClientOrderId",
                "newClientOrderId",
                "newQty",
            ],
            &["symbol", "newQty"],
            true,
        ),
        "myTrades" => (
            &[
                "symbol",
                "orderId",
                "startTime",
                "endTime",
                "fromId",
                "limit",
            ],
            &["symbol"],
            true,
        ),
        "account.status" => (&["omitZeroBalances"], &[], true),
        "account.commission" => (&["symbol"], &["symbol"], true),
        "orderList.place.oco" => (
            &[
                "symbol",
                "listClientOrderId",
                "side",
                "quantity",
                "aboveType",
                "aboveClientOrderId",
                "abovePrice",
                "aboveStopPrice",
                "aboveTrailingDelta",
                "aboveTimeInForce",
                "belowType",
                "belowClientOrderId",
                "belowPrice",
                "belowStopPrice",
                "belowTrailingDelta",
                "belowTimeInForce",
                "newOrderRespType",
                "selfTradePreventionMode",
            ],
            &["symbol", "side", "quantity", "aboveType", "belowType"],
            true,
        ),
        "orderList.place.oto" => (
            &[
                "symbol",
                "listClientOrderId",
                "newOrderRespType",
                "selfTradePreventionMode",
                "workingType",
                "workingSide",
                "workingClientOrderId",
                "workingPrice",
                "workingQuantity",
                "workingTimeInForce",
                "pendingType",
                "pendingSide",
                "pendingClientOrderId",
                "pendingPrice",
                "pendingStopPrice",
                "pendingTrailingDelta",
                "pendingQuantity",
                "pendingTimeInForce",
            ],
            &[
                "symbol",
                "workingType",
                "workingSide",
                "workingPrice",
                "workingQuantity",
                "pendingType",
                "pendingSide",
                "pendingQuantity",
            ],
            true,
        ),
        "orderList.place.otoco" => (
            &[
                "symbol",
                "listClientOrderId",
                "newOrderRespType",
                "selfTradePreventionMode",
                "workingType",
                "workingSide",
                "workingClientOrderId",
                "workingPrice",
                "workingQuantity",
                "workingTimeInForce",
                "pendingSide",
                "pendingQuantity",
                "pendingAboveType",
                "pendingAboveClientOrderId",
                "pendingAbovePrice",
                "pendingAboveStopPrice",
                "pendingAboveTrailingDelta",
                "pendingAboveTimeInForce",
                "pendingBelowType",
                "pendingBelowClientOrderId",
                "pendingBelowPrice",
                "pendingBelowStopPrice",
                "pendingBelowTrailingDelta",
                "pendingBelowTimeInForce",
            ],
            &[
                "symbol",
                "workingType",
                "workingSide",
                "workingPrice",
                "workingQuantity",
                "pendingSide",
                "pendingQuantity",
                "pendingAboveType",
            ],
            true,
        ),
        "orderList.cancel" => (
            &[
                "symbol",
                "orderListId",
                "listClientOrderId",
                "newClientOrderId",
            ],
            &["symbol"],
            true,
        ),
        "orderList.status" => (&["origClientOrderId", "orderListId"], &[], true),
        "openOrderLists.status" => (&[], &[], true),
        _ => return None,
    })
}

/// A request's params as text (strings raw, numbers and booleans as JSON writes them).
struct Params(BTreeMap<String, String>);

impl Params {
    fn read(
        params: &Map<String, Value>,
        (allowed, required, signed): (&[&str], &[&str], bool),
    ) -> Result<Params, Refusal> {
        let mut out = BTreeMap::new();
        for (name, value) in params {
            let known =
                allowed.contains(&name.as_str()) || (signed && SIGNED.contains(&name.as_str()));
            if !known {
                return Err(refuse(-1103, "An unknown parameter was sent."));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(refuse(
                        -1100,
                        format!(
                            "Illegal characters found in parameter '{name}'; legal range is a string, number or boolean."
                        ),
                    ));
                }
            };
            if text.is_empty() {
                return Err(refuse(-1105, format!("Parameter '{name}' was empty.")));
            }
            out.insert(name.clone(), text);
        }
        for name in required {
            if !out.contains_key(*name) {
                return Err(mandatory(name));
            }
        }
        if signed && !out.contains_key("timestamp") {
            return Err(mandatory("timestamp"));
        }
        Ok(Params(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The signature payload: every param but `signature`, sorted, `k=v` joined with `&`.
    fn payload(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.0.iter().filter(|(k, _)| *k != "signature") {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    fn dec(&self, name: &str) -> Result<Option<Dec>, Refusal> {
        self.get(name)
            .map(|t| {
                Dec::parse(t).map_err(|_| {
                    refuse(
                        -1100,
                        format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
                    )
                })
            })
            .transpose()
    }

    fn u64(&self, name: &str) -> Result<Option<u64>, Refusal> {
        self.get(name)
            .map(|t| t.parse::<u64>().map_err(|_| mandatory(name)))
            .transpose()
    }
}

/// `GET /sapi/v1/account/apiRestrictions` on the REST side: the key named by `X-MBX-APIKEY`
/// must be the account's, the query signed as the exchange signs REST requests (the query
/// string as sent, up to `&signature=`), its `timestamp` within `recvWindow` of the
/// simulator's clock. Answers the account's [`KeyProfile`], or `(status, code, message)`.
pub(crate) fn api_restrictions(
    shared: &LiveShared,
    head: &RequestHead,
) -> Result<Value, (&'static str, i64, &'static str)> {
    const BAD_KEY: (&str, i64, &str) = (
        "401 Unauthorized",
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    );
    let config = shared.ws_api.lock().config.clone().ok_or(BAD_KEY)?;
    if head.api_key.as_deref() != Some(config.api_key.as_str()) {
        return Err(BAD_KEY);
    }
    let Some((signed, signature)) = head.query.rsplit_once("&signature=") else {
        return Err((
            "400 Bad Request",
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ));
    };
    if !config.signed(signed.as_bytes(), &http::percent_decode(signature)) {
        return Err((
            "400 Bad Request",
            -1022,
            "Signature for this request is not valid.",
        ));
    }
    let mut params = BTreeMap::new();
    for pair in signed.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(k.to_owned(), http::percent_decode(v));
    }
    let now = now_ms().saturating_add_signed(config.faults.skew_ms());
    check_time(&Params(params), now).map_err(|r| {
        let msg = if r.msg.contains("ahead") {
            "Timestamp for this request was 1000ms ahead of the server's time."
        } else {
            "Timestamp for this request is outside of the recvWindow."
        };
        ("400 Bad Request", i64::from(r.code), msg)
    })?;
    let k = config.key;
    Ok(json!({
        "ipRestrict": k.ip_restrict,
        "createTime": 1_700_000_000_000_u64,
        "enableReading": true,
        "enableWithdrawals": k.enable_withdrawals,
        "enableInternalTransfer": false,
        "enableMargin": false,
        "enableFutures": false,
        "permitsUniversalTransfer": false,
        "enableVanillaOptions": false,
        "enableFixApiTrade": false,
        "enableFixReadOnly": false,
        "enableSpotAndMarginTrading": k.enable_spot_trading,
        "enablePortfolioMarginTrading": false,
    }))
}

fn check_time(p: &Params, now: u64) -> Result<(), Refusal> {
    let ts = p.u64("timestamp")?.ok_or_else(|| mandatory("timestamp"))?;
    let window_us: u64 = match p.get("recvWindow") {
        None => 5_000_000,
        Some(t) => {
            let w = Dec::parse(t).map_err(|_| mandatory("recvWindow"))?;
            let us = w.units() / (ONE / 1000);
            if us > 60_000_000 || !w.units().is_multiple_of(ONE / 1000) {
                return Err(refuse(
                    -1102,
                    "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
                ));
            }
            us as u64
        }
    };
    if ts > now + 1000 {
        return Err(refuse(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now.saturating_sub(ts) * 1000 > window_us {
        return Err(refuse(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

/// `a × b` in [`Dec`] units (exact when both have at most 9 decimals).
fn mul(a: Dec, b: Dec) -> Dec {
    let r = (a.units() / 1_000_000_000).saturating_mul(b.units() / 1_000_000_000);
    Dec::from_units(r)
}

fn add(a: Dec, b: Dec) -> Dec {
    Dec::from_units(a.units().saturating_add(b.units()))
}

fn sub(a: Dec, b: Dec) -> Dec {
    Dec::from_units(a.units().saturating_sub(b.units()))
}

/// `(base, quote)` of a spot symbol, by its quote suffix.
fn assets(symbol: &str) -> (String, String) {
    for quote in [
        "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "EUR", "TRY", "BTC", "ETH", "BNB",
    ] {
        if let Some(base) = symbol.strip_suffix(quote).filter(|b| !b.is_empty()) {
            return (base.to_owned(), quote.to_owned());
        }
    }
    let mid = symbol.len() / 2;
    (symbol[..mid].to_owned(), symbol[mid..].to_owned())
}

/// The opposite side of `book`, best first (at most 200 levels), and the quantity it shows at
/// `limit` on the order's own side (the queue a resting order joins).
fn book_levels(book: &crate::live::Book, side: Side, limit: Dec) -> (Vec<(Dec, Dec)>, Dec) {
    let (levels, own): (Vec<(Dec, Dec)>, _) = match side {
        Side::Buy => (
            book.asks
                .iter()
                .take(200)
                .map(|(p, l)| (*p, l.qty))
                .collect(),
            book.bids.get(&limit),
        ),
        Side::Sell => (
            book.bids
                .iter()
                .rev()
                .take(200)
                .map(|(p, l)| (*p, l.qty))
                .collect(),
            book.asks.get(&limit),
        ),
    };
    (levels, own.map_or(Dec::default(), |l| l.qty))
}

/// [`book_levels`] of the symbol's truth book, when it is seeded.
fn truth_levels(
    shared: &LiveShared,
    symbol: &str,
    side: Side,
    limit: Dec,
) -> Option<(Vec<(Dec, Dec)>, Dec)> {
    let market = shared.market();
    let s = market.symbols.get(symbol).filter(|s| s.seeded)?;
    Some(book_levels(&s.book, side, limit))
}

fn crosses(side: Side, limit: Dec, level: Dec) -> bool {
    match side {
        Side::Buy => level <= limit,
        Side::Sell => level >= limit,
    }
}

/// The taker walk of `qty` over `levels` (the opposite side, best first): every level a market
/// order reaches, or a limit order's `limit` crosses. A `fok` walk that cannot take all of
/// `qty` takes nothing. Returns the fills `(price, quantity)` and what is left.
fn walk(
    levels: &[(Dec, Dec)],
    side: Side,
    market: bool,
    limit: Dec,
    qty: Dec,
    fok: bool,
) -> (Vec<(Dec, Dec)>, Dec) {
    let mut fills: Vec<(Dec, Dec)> = Vec::new();
    let mut left = qty;
    for (px, avail) in levels {
        if left.is_zero() || (!market && !crosses(side, limit, *px)) {
            break;
        }
        let take = left.min(*avail);
        fills.push((*px, take));
        left = sub(left, take);
    }
    if fok && !left.is_zero() {
        return (Vec::new(), qty);
    }
    (fills, left)
}

/// `PRICE_FILTER` (of `price` and `stopPrice`), `LOT_SIZE`, then `NOTIONAL` (of `notional`:
/// price × quantity for a limit order, the quote the walk takes for a market order), as the
/// exchange orders them.
fn filters(
    shared: &LiveShared,
    symbol: &str,
    prices: [Option<Dec>; 2],
    qty: Dec,
    notional: Dec,
) -> Result<(), Refusal> {
    let Some(info) = shared
        .config
        .instruments
        .iter()
        .find(|i| i.symbol == symbol)
    else {
        return Ok(());
    };
    let tick = Dec::parse(&info.tick_size).unwrap_or_default();
    let step = Dec::parse(&info.step_size).unwrap_or_default();
    let min_notional = Dec::parse(&info.min_notional).unwrap_or_default();
    let off_tick =
        |p: Dec| p.is_zero() || (!tick.is_zero() && !p.units().is_multiple_of(tick.units()));
    if prices.iter().flatten().any(|p| off_tick(*p)) {
        return Err(refuse(-1013, "Filter failure: PRICE_FILTER"));
    }
    if qty.is_zero() || (!step.is_zero() && !qty.units().is_multiple_of(step.units())) {
        return Err(refuse(-1013, "Filter failure: LOT_SIZE"));
    }
    if notional < min_notional {
        return Err(refuse(-1013, "Filter failure: NOTIONAL"));
    }
    Ok(())
}

/// A new order checked against its parameters and filters, and its walk of the truth.
struct Plan {
    symbol: String,
    side: Side,
    ty: &'static str,
    tif: &'static str,
    price: Option<Dec>,
    qty: Dec,
    resp_type: &'static str,
    stp: String,
    /// The taker fills `(price, quantity)`, best first (none for a contingent order).
    fills: Vec<(Dec, Dec)>,
    /// What the walk leaves.
    left: Dec,
    /// The truth's quantity at its price on its own side.
    own_level: Dec,
    /// The trigger of a contingent order.
    trigger: Option<contingent::Trigger>,
}

/// Reads and checks a new order (parameters, symbol, filters) and walks the truth; what the
/// exchange checks before the matching engine sees the order.
fn plan(shared: &LiveShared, p: &Params) -> Result<Plan, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let side = match p.get("side") {
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        _ => return Err(refuse(-1117, "Invalid side.")),
    };
    let ty: &'static str = match p.get("type") {
        Some("LIMIT") => "LIMIT",
        Some("LIMIT_MAKER") => "LIMIT_MAKER",
        Some("MARKET") => "MARKET",
        Some("STOP_LOSS") => "STOP_LOSS",
        Some("STOP_LOSS_LIMIT") => "STOP_LOSS_LIMIT",
        Some("TAKE_PROFIT") => "TAKE_PROFIT",
        Some("TAKE_PROFIT_LIMIT") => "TAKE_PROFIT_LIMIT",
        _ => return Err(refuse(-1116, "Invalid orderType.")),
    };
    let not_required =
        |name: &str| refuse(-1106, format!("Parameter '{name}' sent when not required."));
    let timed = contingent::timed(ty);
    let tif: &'static str = match (timed, p.get("timeInForce")) {
        (true, Some("GTC")) => "GTC",
        (true, Some("IOC")) => "IOC",
        (true, Some("FOK")) => "FOK",
        (true, Some(_)) => return Err(refuse(-1115, "Invalid timeInForce.")),
        (true, None) => return Err(mandatory("timeInForce")),
        (false, Some(_)) => return Err(not_required("timeInForce")),
        (false, None) => "GTC",
    };
    let price = p.dec("price")?;
    let market_like = contingent::market_like(ty);
    if market_like && price.is_some() {
        return Err(not_required("price"));
    }
    if !market_like && price.is_none() {
        return Err(mandatory("price"));
    }
    let qty = p.dec("quantity")?.ok_or_else(|| mandatory("quantity"))?;
    let trigger = contingent::read(p, ty)?;
    let resp_type = match p.get("newOrderRespType") {
        // `MARKET` and `LIMIT` answer `FULL` by default, the contingent types `ACK`.
        None if trigger.is_some() => "ACK",
        None => "FULL",
        Some("ACK") => "ACK",
        Some("RESULT") => "RESULT",
        Some("FULL") => "FULL",
        Some(_) => {
            return Err(refuse(
                -1102,
                "Mandatory parameter 'newOrderRespType' was not sent, was empty/null, or malformed.",
            ));
        }
    };
    let stp = stp_mode(shared, &symbol, p)?.name().to_owned();
    let limit = price.unwrap_or_default();
    let (levels, own_level) = truth_levels(shared, &symbol, side, limit)
        .ok_or_else(|| refuse(-1121, "Invalid symbol."))?;
    // The walk: which levels this order takes, in order (a contingent order takes none yet).
    let (fills, left) = if trigger.is_some() {
        (Vec::new(), qty)
    } else {
        walk(&levels, side, market_like, limit, qty, false)
    };
    let walked = walk(&levels, side, true, limit, qty, false)
        .0
        .iter()
        .fold(Dec::default(), |acc, (px, q)| add(acc, mul(*px, *q)));
    let stop = trigger.and_then(|t| t.stop);
    let notional = price.or(stop).map_or(walked, |p| mul(p, qty));
    filters(shared, &symbol, [price, stop], qty, notional)?;
    Ok(Plan {
        symbol,
        side,
        ty,
        tif,
        price,
        qty,
        resp_type,
        stp,
        fills,
        left,
        own_level,
        trigger,
    })
}

/// The self-trade prevention mode of an order of `symbol`: the one it names, else the symbol's
/// default. A name the exchange does not know is refused (`-1100`), a known mode the symbol
/// does not allow with `-1013`.
fn stp_mode(shared: &LiveShared, symbol: &str, p: &Params) -> Result<StpMode, Refusal> {
    let (default, allowed) = {
        let account = shared.ws_api.lock();
        account.config.as_ref().map_or_else(
            || (StpMode::ExpireMaker, StpMode::ALL.to_vec()),
            |c| {
                let (default, allowed) = c.stp_of(symbol);
                (default, allowed.to_vec())
            },
        )
    };
    let Some(name) = p.get("selfTradePreventionMode") else {
        return Ok(default);
    };
    let mode = StpMode::parse(name).ok_or_else(|| {
        let names: Vec<&str> = StpMode::ALL.iter().map(|m| m.name()).collect();
        refuse(
            -1100,
            format!(
                "Illegal characters found in parameter 'selfTradePreventionMode'; legal range is '{}'.",
                names.join(", ")
            ),
        )
    })?;
    if !allowed.contains(&mode) {
        return Err(refuse(
            -1013,
            "This symbol does not allow the specified self-trade prevention mode.",
        ));
    }
    Ok(mode)
}

/// A new order of `plan`, numbered `order_id`: on the book from `now` (a contingent order
/// waits off it), queued behind what the truth shows at its price.
fn order_of(plan: &Plan, order_id: u64, client_id: &str, now: u64, step: Dec) -> Order {
    Order {
        symbol: plan.symbol.clone(),
        order_id,
        client_id: client_id.to_owned(),
        side: plan.side,
        ty: plan.ty,
        tif: plan.tif,
        price: plan.price.unwrap_or_default(),
        qty: plan.qty,
        executed: Dec::default(),
        cum_quote: Dec::default(),
        status: "NEW",
        stp: plan.stp.clone(),
        created: now,
        updated: now,
        working: plan.trigger.is_none().then_some(now),
        ahead: plan.own_level,
        level_seen: plan.own_level,
        credit: Dec::default(),
        expiry: None,
        step,
        trigger: plan.trigger,
        list: None,
        lock: Dec::default(),
        prevented: Dec::default(),
        last_prevented: Dec::default(),
        prevented_match: None,
    }
}

fn place(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let plan = plan(shared, p)?;
    let Plan {
        ref symbol,
        side,
        ty,
        tif,
        price,
        qty,
        resp_type,
        ref fills,
        left,
        ..
    } = plan;
    let limit = price.unwrap_or_default();
    if ty == "LIMIT_MAKER" && !fills.is_empty() {
        return Err(refuse(-2010, "Order would immediately match and take."));
    }
    let (fills, left) = if tif == "FOK" && !left.is_zero() {
        (Vec::new(), qty)
    } else {
        (fills.clone(), left)
    };
    let (base, quote) = assets(symbol);
    let now = now_ms();
    let mut account = shared.ws_api.lock();
    let client_id = match p.get("newClientOrderId") {
        Some(c) => c.to_owned(),
        None => format!("sim{}", account.next_order_id),
    };
    if account
        .orders
        .iter()
        .any(|o| o.is_open() && o.symbol == *symbol && o.client_id == client_id)
    {
        return Err(refuse(-2010, "Duplicate order sent."));
    }
    // A maker-only order that would meet one of the account's own resting orders would take.
    if ty == "LIMIT_MAKER" && stp::crosses_own(&account, symbol, side, limit) {
        return Err(refuse(-2010, "Order would immediately match and take."));
    }
    let mut order = order_of(&plan, 0, &client_id, now, lot_step(shared, symbol));
    if let Some(t) = order.trigger.as_mut() {
        let last = account.last_price.get(symbol).copied();
        contingent::arm(t, side, ty, last, now)?;
    }
    // Funds: the taker part at its fill prices, the resting part at its limit; a contingent
    // order what it locks while it waits.
    let taken_quote = fills
        .iter()
        .fold(Dec::default(), |acc, (px, q)| add(acc, mul(*px, *q)));
    let taken_qty = fills
        .iter()
        .fold(Dec::default(), |acc, (_, q)| add(acc, *q));
    let rests = !contingent::market_like(ty) && tif == "GTC" && !left.is_zero();
    let resting_lock = match (order.trigger.is_some(), rests, side) {
        (true, ..) => contingent::waiting_need(&order),
        (false, false, _) => Dec::default(),
        (false, true, Side::Buy) => mul(limit, left),
        (false, true, Side::Sell) => left,
    };
    let (spend_asset, need) = match side {
        Side::Buy => (&quote, add(taken_quote, resting_lock)),
        Side::Sell => (&base, add(taken_qty, resting_lock)),
    };
    let free = account
        .balances
        .get(spend_asset)
        .map_or(Dec::default(), |b| b.0);
    if free < need {
        return Err(refuse(
            -2010,
            "Account has insufficient balance for requested action.",
        ));
    }
    let order_id = account.next_order_id;
    account.next_order_id += 1;
    order.order_id = order_id;
    account.orders.push(order.clone());
    let at = account.orders.len() - 1;
    let mut events = vec![report(&mut account, &order, "NEW", None, now)];
    let worked = if order.trigger.is_some() {
        // It waits off the book, its funds locked.
        contingent::take_lock(&mut account, at, resting_lock);
        if !resting_lock.is_zero() {
            events.push(account_position(&account, &[&base, &quote], now));
        }
        Worked::default()
    } else {
        work(&mut account, at, &fills, left, now, &mut events)
    };
    let order = account.orders[at].clone();
    publish(&mut account, events);
    let lists_open = account.lists.iter().any(|l| !l.done);
    drop(account);
    // A resting order of a list that self-trade prevention ended takes its list with it (the
    // market first, then the account: the lock order of the market thread).
    if lists_open && !worked.prevented.is_empty() {
        let market = shared.market();
        let mut account = shared.ws_api.lock();
        let mut events = Vec::new();
        lists::settle(&mut account, &market, now, &mut events);
        publish(&mut account, events);
    }
    let mut result = json!({"symbol": symbol, "orderId": order_id, "orderListId": -1,
        "clientOrderId": order.client_id, "transactTime": now});
    if resp_type != "ACK" {
        let extra = order_fields(&order);
        if let (Value::Object(r), Value::Object(mut e)) = (&mut result, extra) {
            if !worked.prevented.is_empty() {
                // The answer lists the matches instead of naming the last.
                e.remove("preventedMatchId");
            }
            r.extend(e);
        }
        if resp_type == "FULL" {
            result["fills"] = Value::Array(worked.fills);
        }
        if !worked.prevented.is_empty() {
            result["preventedMatches"] = Value::Array(worked.prevented);
        }
    }
    Ok(result)
}

/// What working an order as a taker did, as its answer shows it.
#[derive(Debug, Default)]
struct Worked {
    /// Its trades (a `FULL` answer's `fills`).
    fills: Vec<Value>,
    /// Its prevented matches (`preventedMatches`).
    prevented: Vec<Value>,
}

/// Gives back the part of the order's lock that `qty` of its remaining quantity held (self-
/// trade prevention took that much of it).
fn release_part(account: &mut Account, at: usize, qty: Dec) {
    let o = &account.orders[at];
    let amount = match o.side {
        Side::Buy => mul(o.price, qty),
        Side::Sell => qty,
    }
    .min(o.lock);
    if amount.is_zero() {
        return;
    }
    let asset = contingent::pay_asset(o);
    account.orders[at].lock = sub(account.orders[at].lock, amount);
    let b = account.balances.entry(asset).or_default();
    b.1 = sub(b.1, amount);
    b.0 = add(b.0, amount);
}

/// Works the order at `at` as a taker: walks `fills` (its walk of the truth) together with
/// the account's own resting orders it reaches, which its self-trade prevention mode decides
/// about (the `stp` module's rules); rests what is left when it is a `GTC` limit (locking its funds)
/// or expires it. `left` is what the truth walk left (a `FOK` order the truth cannot fill
/// passes no fills). The caller checked the funds for the truth walk, which covers this one:
/// a self-trade is at a price no worse than the market quantity it takes the place of, and a
/// prevented quantity costs nothing. Queues the reports; returns the trades and prevented
/// matches as the answer shows them.
fn work(
    account: &mut Account,
    at: usize,
    fills: &[(Dec, Dec)],
    left: Dec,
    now: u64,
    events: &mut Vec<Value>,
) -> Worked {
    let o = account.orders[at].clone();
    let (base, quote) = assets(&o.symbol);
    let market = contingent::market_like(o.ty);
    let fok = o.tif == "FOK";
    let mode = StpMode::parse(&o.stp).unwrap_or(StpMode::ExpireMaker);
    let (actions, left) = if fok && !left.is_zero() {
        (Vec::new(), o.remaining())
    } else {
        let own = stp::own_in_reach(account, at, o.price, market);
        let steps = stp::steps(account, o.side, fills, &own);
        let (actions, rest) = stp::resolve(account, &steps, o.remaining(), mode);
        // A FOK order fills entirely or does nothing.
        if fok && (!rest.is_zero() || stp::taker_prevented(&actions)) {
            (Vec::new(), o.remaining())
        } else {
            (actions, rest)
        }
    };
    let rests = !market && o.tif == "GTC" && !left.is_zero();
    if rests {
        let lock = match o.side {
            Side::Buy => mul(o.price, left),
            Side::Sell => left,
        };
        contingent::take_lock(account, at, lock);
        if actions.is_empty() {
            events.push(account_position(account, &[&base, &quote], now));
        }
    }
    let mut worked = Worked::default();
    let fill_json = |t: &Trade| {
        json!({"price": fixed(t.price), "qty": fixed(t.qty),
            "commission": fixed(t.commission), "commissionAsset": t.commission_asset,
            "tradeId": t.id})
    };
    for action in actions {
        match action {
            stp::Action::Take(px, q) => {
                execute(account, at, px, q, false, None, now, events);
                if let Some(t) = account.trades.last() {
                    worked.fills.push(fill_json(t));
                }
            }
            stp::Action::SelfTrade { maker, px, qty } => {
                // One trade, both sides the account's: the resting order's first.
                let id = account.next_trade_id;
                execute(account, maker, px, qty, true, None, now, events);
                execute(account, at, px, qty, false, Some(id), now, events);
                if let Some(t) = account.trades.last() {
                    worked.fills.push(fill_json(t));
                }
            }
            stp::Action::Prevent {
                maker,
                px,
                taker,
                maker_qty,
                would,
            } => {
                let id = stp::next_match_id(account, &o.symbol);
                let maker_order = account.orders[maker].order_id;
                if !maker_qty.is_zero() {
                    stp::prevent(account, maker, maker_qty, id, now);
                    if account.orders[maker].is_open() {
                        release_part(account, maker, maker_qty);
                    } else {
                        contingent::release_lock(account, maker);
                    }
                    let m = account.orders[maker].clone();
                    let mut event = report(account, &m, "TRADE_PREVENTION", None, now);
                    stp::report_fields(&mut event, &m, o.order_id, px, would);
                    events.push(event);
                    events.push(account_position(account, &[&base, &quote], now));
                }
                if !taker.is_zero() {
                    stp::prevent(account, at, taker, id, now);
                    let t = account.orders[at].clone();
                    let mut event = report(account, &t, "TRADE_PREVENTION", None, now);
                    stp::report_fields(&mut event, &t, maker_order, px, would);
                    events.push(event);
                }
                worked
                    .prevented
                    .push(stp::match_json(id, maker_order, px, taker, maker_qty));
            }
        }
    }
    if !left.is_zero() && !rests && account.orders[at].is_open() {
        let o = &mut account.orders[at];
        o.status = "EXPIRED";
        o.updated = now;
        o.expiry = Some(if market {
            "INSUFFICIENT_LIQUIDITY"
        } else if fok {
            "UNFILLED_FOK_ORDER_EXPIRED"
        } else {
            "UNFILLED_IOC_QUANTITY_EXPIRED"
        });
        let o = o.clone();
        events.push(report(account, &o, "EXPIRED", None, now));
    }
    worked
}

/// Executes `q` of the order at `at` at `px` (as maker: a resting order, paid from its lock);
/// records the trade with its commission (a new trade id, or `trade_id`: the taker side of a
/// self-trade), moves the balances, and queues the order's `executionReport` `TRADE` and an
/// `outboundAccountPosition`.
#[allow(clippy::too_many_arguments)]
fn execute(
    account: &mut Account,
    at: usize,
    px: Dec,
    q: Dec,
    maker: bool,
    trade_id: Option<u64>,
    now: u64,
    events: &mut Vec<Value>,
) {
    let rate = account.config.as_ref().map_or(Dec::default(), |c| {
        if maker {
            c.maker_commission
        } else {
            c.taker_commission
        }
    });
    let o = &account.orders[at];
    let (side, symbol, order_id) = (o.side, o.symbol.clone(), o.order_id);
    let (base, quote) = assets(&symbol);
    let notional = mul(px, q);
    let (pay, pay_amount, get, get_amount) = match side {
        Side::Buy => (&quote, notional, &base, q),
        Side::Sell => (&base, q, &quote, notional),
    };
    let commission = mul(get_amount, rate);
    {
        let b = account.balances.entry(pay.clone()).or_default();
        if maker {
            b.1 = sub(b.1, pay_amount);
        } else {
            b.0 = sub(b.0, pay_amount);
        }
        let g = account.balances.entry(get.clone()).or_default();
        g.0 = add(g.0, sub(get_amount, commission));
    }
    let id = trade_id.unwrap_or_else(|| {
        account.next_trade_id += 1;
        account.next_trade_id - 1
    });
    let trade = Trade {
        symbol,
        id,
        order_id,
        price: px,
        qty: q,
        quote: notional,
        commission,
        commission_asset: get.clone(),
        time: now,
        buyer: side == Side::Buy,
        maker,
    };
    if maker {
        // Paid from its lock; what it lacks, from the lock its order list holds for it (an
        // OCO's legs share one).
        let own = account.orders[at].lock.min(pay_amount);
        account.orders[at].lock = sub(account.orders[at].lock, own);
        let mut short = sub(pay_amount, own);
        if let Some(list) = account.orders[at].list {
            for other in account.orders.iter_mut() {
                if short.is_zero() {
                    break;
                }
                if other.list == Some(list) && other.order_id != order_id {
                    let part = other.lock.min(short);
                    other.lock = sub(other.lock, part);
                    short = sub(short, part);
                }
            }
        }
    }
    let o = &mut account.orders[at];
    o.executed = add(o.executed, q);
    o.cum_quote = add(o.cum_quote, notional);
    o.status = if o.remaining().is_zero() {
        "FILLED"
    } else {
        "PARTIALLY_FILLED"
    };
    o.updated = now;
    // A filled order keeps no lock (an OCO leg may hold more than its own need).
    if o.status == "FILLED" && !o.lock.is_zero() {
        contingent::release_lock(account, at);
    }
    let o = account.orders[at].clone();
    events.push(report_with(account, &o, "TRADE", Some(&trade), now, None));
    account.trades.push(trade);
    events.push(account_position(account, &[&base, &quote], now));
}

fn order_fields(o: &Order) -> Value {
    let mut v = json!({"price": fixed(o.price), "origQty": fixed(o.qty),
        "executedQty": fixed(o.executed), "origQuoteOrderQty": "0.00000000",
        "cummulativeQuoteQty": fixed(o.cum_quote), "status": o.status, "timeInForce": o.tif,
        "type": o.ty, "side": o.side.name(), "workingTime": o.working.map_or(-1, |w| w as i64),
        "selfTradePreventionMode": o.stp});
    if let Some(stop) = lists::stop_text(o) {
        v["stopPrice"] = json!(stop);
    }
    if let Some(t) = o.trigger
        && let Some(delta) = t.delta
    {
        v["trailingDelta"] = json!(delta);
        v["trailingTime"] = json!(t.since.map_or(-1, |s| s as i64));
    }
    if let Some(reason) = o.expiry {
        v["expiryReason"] = json!(reason);
    }
    if let Some(id) = o.prevented_match {
        v["preventedMatchId"] = json!(id);
        v["preventedQuantity"] = json!(fixed(o.prevented));
    }
    v
}

/// Decimal text with at least 8 decimals, as the exchange writes amounts.
fn fixed(d: Dec) -> String {
    let text = d.normalized();
    let decimals = d.decimals();
    if decimals >= 8 {
        return text;
    }
    let pad = "0".repeat(8 - decimals);
    if decimals == 0 {
        format!("{text}.{pad}")
    } else {
        format!("{text}{pad}")
    }
}

/// One `executionReport`; `fill` is the trade of a `TRADE`.
fn report(account: &mut Account, o: &Order, x: &str, fill: Option<&Trade>, now: u64) -> Value {
    report_with(account, o, x, fill, now, None)
}

/// One `executionReport`; `ids` overrides `(c, C)` (a cancel's new id and the order's, or an
/// amendment's new id and the old one).
fn report_with(
    account: &mut Account,
    o: &Order,
    x: &str,
    fill: Option<&Trade>,
    now: u64,
    ids: Option<(&str, &str)>,
) -> Value {
    let exec_id = account.next_exec_id;
    account.next_exec_id += 1;
    let (last_px, last_qty, trade_id, maker, commission) = fill.map_or(
        (Dec::default(), Dec::default(), -1i64, false, Dec::default()),
        |t| (t.price, t.qty, t.id as i64, t.maker, t.commission),
    );
    let (c, big_c) = match ids {
        Some((c, big_c)) => (c.to_owned(), big_c.to_owned()),
        None => (o.client_id.clone(), String::new()),
    };
    let mut event = json!({
        "e": "executionReport", "E": now, "s": o.symbol, "c": c, "S": o.side.name(),
        "o": o.ty, "f": o.tif, "q": fixed(o.qty), "p": fixed(o.price),
        "P": fixed(o.trigger.and_then(|t| t.stop).unwrap_or_default()),
        "F": "0.00000000", "g": o.list.map_or(-1, |l| l as i64), "C": big_c, "x": x,
        "X": o.status, "r": "NONE",
        "i": o.order_id, "l": fixed(last_qty), "z": fixed(o.executed), "L": fixed(last_px),
        "n": if fill.is_some() { fixed(commission) } else { "0".to_owned() },
        "N": fill.map_or(Value::Null, |t| Value::String(t.commission_asset.clone())),
        "T": now, "t": trade_id, "I": exec_id, "w": o.on_book(), "m": maker, "M": false,
        "O": o.created, "Z": fixed(o.cum_quote), "Y": fixed(mul(last_px, last_qty)),
        "Q": "0.00000000", "V": o.stp,
    });
    if let Some(w) = o.working {
        event["W"] = json!(w);
    }
    if let Some(t) = o.trigger
        && let Some(delta) = t.delta
    {
        event["d"] = json!(delta);
        if let Some(since) = t.since {
            event["D"] = json!(since);
        }
    }
    if let Some(reason) = o.expiry {
        event["eR"] = json!(reason);
    }
    event
}

fn account_position(account: &Account, assets: &[&String], now: u64) -> Value {
    let balances: Vec<Value> = assets
        .iter()
        .map(|a| {
            let (f, l) = account.balances.get(*a).copied().unwrap_or_default();
            json!({"a": a, "f": fixed(f), "l": fixed(l)})
        })
        .collect();
    json!({"e": "outboundAccountPosition", "E": now, "u": now, "B": balances})
}

fn publish(account: &mut Account, events: Vec<Value>) {
    // `revoke`: a revoked key's user data stops.
    if account.revoked {
        return;
    }
    for sub in &mut account.subscribers {
        for event in &events {
            sub.outbox
                .push(json!({"subscriptionId": sub.id, "event": event}).to_string());
        }
    }
}

/// Finds an order of `symbol` by `orderId` or `origClientOrderId`.
fn find(
    account: &Account,
    symbol: &str,
    p: &Params,
    open_only: bool,
) -> Result<Option<usize>, Refusal> {
    let by_id = p.u64("orderId")?;
    let by_client = p.get("origClientOrderId");
    if by_id.is_none() && by_client.is_none() {
        return Err(refuse(
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    }
    Ok(account.orders.iter().rposition(|o| {
        o.symbol == symbol
            && (!open_only || o.is_open())
            && by_id.is_none_or(|id| o.order_id == id)
            && by_client.is_none_or(|c| o.client_id == c)
    }))
}

fn cancel_one(account: &mut Account, at: usize, cancel_id: &str, now: u64) -> (Value, Vec<Value>) {
    contingent::release_lock(account, at);
    let o = &mut account.orders[at];
    o.status = "CANCELED";
    o.updated = now;
    let o = o.clone();
    let (base, quote) = assets(&o.symbol);
    let events = vec![
        report_with(
            account,
            &o,
            "CANCELED",
            None,
            now,
            Some((cancel_id, &o.client_id)),
        ),
        account_position(account, &[&base, &quote], now),
    ];
    let mut result = json!({"symbol": o.symbol, "origClientOrderId": o.client_id,
        "orderId": o.order_id, "orderListId": o.list.map_or(-1, |l| l as i64),
        "clientOrderId": cancel_id, "transactTime": now});
    if let (Value::Object(r), Value::Object(mut e)) = (&mut result, order_fields(&o)) {
        // A cancel's answer carries no workingTime.
        e.remove("workingTime");
        r.extend(e);
    }
    (result, events)
}

fn cancel_id(account: &Account, p: &Params) -> String {
    p.get("newClientOrderId")
        .map_or_else(|| cancel_id_for(account), str::to_owned)
}

/// A generated cancel client id.
fn cancel_id_for(account: &Account) -> String {
    format!("simcancel{}", account.next_exec_id)
}

fn cancel(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let now = now_ms();
    let mut account = shared.ws_api.lock();
    let at =
        find(&account, &symbol, p, true)?.ok_or_else(|| refuse(-2011, "Unknown order sent."))?;
    match (p.get("cancelRestrictions"), account.orders[at].status) {
        (None, _)
        | (Some("ONLY_NEW"), "NEW")
        | (Some("ONLY_PARTIALLY_FILLED"), "PARTIALLY_FILLED") => {}
        (Some("ONLY_NEW" | "ONLY_PARTIALLY_FILLED"), _) => {
            return Err(refuse(
                -2011,
                "Order was not canceled due to cancel restrictions.",
            ));
        }
        (Some(_), _) => return Err(refuse(-1145, "Invalid cancelRestrictions")),
    }
    // An order of a list takes the whole list with it, answered as `orderList.cancel`.
    if let Some(li) = account.orders[at]
        .list
        .and_then(|id| account.lists.iter().position(|l| l.id == id && !l.done))
    {
        let mut events = Vec::new();
        let answer = lists::cancel_list(&mut account, li, now, &mut events);
        publish(&mut account, events);
        return Ok(answer);
    }
    let id = cancel_id(&account, p);
    let (result, events) = cancel_one(&mut account, at, &id, now);
    publish(&mut account, events);
    Ok(result)
}

fn cancel_all(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let now = now_ms();
    let mut account = shared.ws_api.lock();
    let open: Vec<usize> = (0..account.orders.len())
        .filter(|&i| account.orders[i].symbol == symbol && account.orders[i].is_open())
        .collect();
    if open.is_empty() {
        return Err(refuse(-2011, "Unknown order sent."));
    }
    let mut results = Vec::new();
    for at in open {
        if !account.orders[at].is_open() {
            // Gone with its list.
            continue;
        }
        let mut events = Vec::new();
        let in_list = account.orders[at]
            .list
            .and_then(|id| account.lists.iter().position(|l| l.id == id && !l.done));
        let result = match in_list {
            Some(li) => lists::cancel_list(&mut account, li, now, &mut events),
            None => {
                let id = cancel_id(&account, p);
                let (result, evs) = cancel_one(&mut account, at, &id, now);
                events = evs;
                result
            }
        };
        publish(&mut account, events);
        results.push(result);
    }
    Ok(Value::Array(results))
}

fn snapshot(o: &Order) -> Value {
    let mut v = json!({"symbol": o.symbol, "orderId": o.order_id,
        "orderListId": o.list.map_or(-1, |l| l as i64),
        "clientOrderId": o.client_id, "stopPrice": "0.00000000", "icebergQty": "0.00000000",
        "time": o.created, "updateTime": o.updated, "isWorking": o.on_book()});
    if let (Value::Object(r), Value::Object(e)) = (&mut v, order_fields(o)) {
        r.extend(e);
    }
    v
}

fn order_status(shared: &LiveShared, p: &Params) -> Result<Value, Refusal> {
    let symbol = p.get("symbol").unwrap_or_default().to_ascii_uppercase();
    let account = shared.ws_api.lock();
    let at =
        find(&account, &symbol, p, false)?.ok_or_else(|| refuse(-2013, "Order does not exist."))?;
    Ok(snapshot(&account.orders[at]))
}

fn open_orders(shared: &LiveShared, p: &Params) -> Value {
    let symbol = p.get("symbol").map(str::to_ascii_uppercase);
    let account = shared.ws_api.lock();
    Value::Array(
        account
            .orders
            .iter()
            .filter(|o| o.is_open() && symbol.as_ref().is_none_or(|s| *s == o.symbol))
            .map(snapshot)
            .collect(),
    )
}

/// A trade the market released: `(symbol, price, quantity, buyer is maker)`.
type PrintedTrade = (String, Dec, Dec, bool);

/// Reads a `<symbol>@trade` or `<symbol>@aggTrade` payload.
fn printed_trade(stream: &str, data: &str) -> Option<PrintedTrade> {
    #[derive(serde::Deserialize)]
    struct Print<'a> {
        p: &'a str,
        q: &'a str,
        m: bool,
    }
    let (symbol, kind) = stream.split_once('@')?;
    if kind != "trade" && kind != "aggTrade" {
        return None;
    }
    let print: Print<'_> = serde_json::from_str(data).ok()?;
    Some((
        symbol.to_ascii_uppercase(),
        Dec::parse(print.p).ok()?,
        Dec::parse(print.q).ok()?,
        print.m,
    ))
}

/// The symbol's step size, or 10⁻⁸ (the base asset precision Binance Spot quotes quantities
/// at) when it has no filters here.
fn lot_step(shared: &LiveShared, symbol: &str) -> Dec {
    shared
        .config
        .instruments
        .iter()
        .find(|i| i.symbol == symbol)
        .and_then(|i| Dec::parse(&i.step_size).ok())
        .filter(|s| !s.is_zero())
        .unwrap_or(Dec::from_units(10_000_000_000))
}

/// `d` rounded down to a multiple of `step`.
fn floor_to(d: Dec, step: Dec) -> Dec {
    let s = step.units().max(1);
    Dec::from_units(d.units() / s * s)
}

/// `a × b ÷ c` in [`Dec`] units, rounded down (`c` not zero).
fn mul_div(a: Dec, b: Dec, c: Dec) -> Dec {
    const G: u128 = 1_000_000_000;
    let (a9, b9, c9) = (a.units() / G, b.units() / G, (c.units() / G).max(1));
    let product = a9.saturating_mul(b9);
    Dec::from_units(
        product
            .checked_mul(G)
            .map_or_else(|| (product / c9).saturating_mul(G), |p| p / c9),
    )
}

/// One resting order's queue after one released frame: `trade` is a print of its symbol
/// `(price, quantity, buyer is maker)`, `own` the truth's quantity at its price on its side
/// now. Returns the quantity the frame fills (before capping at what remains) and whether the
/// order was gone through (its whole remainder fills).
fn advance(
    o: &mut Order,
    trade: Option<(Dec, Dec, bool)>,
    own: Dec,
    trades_move_queues: bool,
) -> (Dec, bool) {
    let mut fill = Dec::default();
    let mut through = false;
    // A trade at the order's price, on its side of the book, takes the queue ahead first;
    // one beyond its price went through it.
    if let Some((px, q, buyer_maker)) = trade {
        let (ours, beyond) = match o.side {
            Side::Buy => (buyer_maker, px < o.price),
            Side::Sell => (!buyer_maker, px > o.price),
        };
        if beyond {
            through = true;
        } else if px == o.price && ours {
            o.credit = add(o.credit, q);
            if o.ahead >= q {
                o.ahead = sub(o.ahead, q);
            } else {
                fill = sub(q, o.ahead);
                o.ahead = Dec::default();
            }
        }
    }
    if own < o.level_seen {
        let shrink = sub(o.level_seen, own);
        if trades_move_queues {
            // Trades already counted explain the shrink first; the rest were cancels, spread
            // over the level in proportion (the part ahead shrinks by ahead ÷ level of them).
            let explained = shrink.min(o.credit);
            o.credit = sub(o.credit, explained);
            let cancelled = sub(shrink, explained);
            if !cancelled.is_zero() {
                let cut = mul_div(o.ahead, cancelled, o.level_seen);
                o.ahead = sub(o.ahead, cut);
            }
        } else if o.ahead >= shrink {
            // No trades in this market: every shrink counts as traded.
            o.ahead = sub(o.ahead, shrink);
        } else {
            fill = add(fill, sub(shrink, o.ahead));
            o.ahead = Dec::default();
        }
    }
    o.level_seen = own;
    // Whatever is queued ahead is displayed at the price.
    o.ahead = o.ahead.min(own);
    (fill, through)
}

/// Moves the resting orders after the market released a frame (`(stream, payload)`, `None`
/// when the frame was not released): the queue model of the [module docs](self). Runs on the
/// market thread only, with the market locked, so every order sees each truth state once.
pub(crate) fn after_frame(shared: &LiveShared, frame: Option<(&str, &str)>) {
    if shared.config.ws_api.is_none() {
        return;
    }
    after_print(
        shared,
        frame.and_then(|(stream, data)| printed_trade(stream, data)),
    );
}

/// A trade print of `qty` at `px` of `symbol` that the market did not release, put through the
/// account as if it had (`GET /sim/print`): it is the last price, resting orders it trades
/// through fill, and stops it crosses trigger. How a test moves the market through a stop at
/// a chosen moment (with the engine down, say). `false` without a WS API.
pub(crate) fn inject_print(shared: &LiveShared, symbol: &str, px: Dec, qty: Dec) -> bool {
    if shared.config.ws_api.is_none() {
        return false;
    }
    after_print(shared, Some((symbol.to_owned(), px, qty, false)));
    true
}

/// [`after_frame`] of the print the frame carried, if any.
fn after_print(shared: &LiveShared, printed: Option<PrintedTrade>) {
    let market = shared.market();
    let mut account = shared.ws_api.lock();
    if let Some((symbol, px, ..)) = &printed {
        if !account.trade_symbols.contains(symbol) {
            account.trade_symbols.insert(symbol.clone());
        }
        account.last_price.insert(symbol.clone(), *px);
    }
    if !account.orders.iter().any(Order::is_open) {
        return;
    }
    let now = now_ms();
    let mut events = Vec::new();
    for at in 0..account.orders.len() {
        if !account.orders[at].on_book() {
            continue;
        }
        let trades_move_queues = account.trade_symbols.contains(&account.orders[at].symbol);
        let o = &mut account.orders[at];
        let Some(book) = market
            .symbols
            .get(&o.symbol)
            .filter(|s| s.seeded)
            .map(|s| &s.book)
        else {
            continue;
        };
        let (own, crossed) = match o.side {
            Side::Buy => (
                book.bids.get(&o.price),
                book.asks.keys().next().is_some_and(|a| *a <= o.price),
            ),
            Side::Sell => (
                book.asks.get(&o.price),
                book.bids.keys().next_back().is_some_and(|b| *b >= o.price),
            ),
        };
        let own = own.map_or(Dec::default(), |l| l.qty);
        let trade = printed
            .as_ref()
            .filter(|(symbol, ..)| *symbol == o.symbol)
            .map(|(_, px, q, m)| (*px, *q, *m));
        let (fill, through) = advance(o, trade, own, trades_move_queues);
        let remaining = o.remaining();
        let q = if through || crossed {
            remaining
        } else {
            // The queue model's shares of a level are not on the lot grid; a fill is.
            floor_to(fill.min(remaining), o.step)
        };
        if !q.is_zero() {
            let px = o.price;
            execute(&mut account, at, px, q, true, None, now, &mut events);
        }
    }
    // The print is the last price: waiting orders of its symbol may trigger (after the
    // resting orders took their share of it), then the lists follow what moved. An OCO leg
    // that just traded takes its waiting sibling out before the print can trigger it.
    let lists_open = account.lists.iter().any(|l| !l.done);
    if lists_open {
        lists::settle(&mut account, &market, now, &mut events);
    }
    if let Some((symbol, px, ..)) = &printed {
        let book = market
            .symbols
            .get(symbol)
            .filter(|s| s.seeded)
            .map(|s| &s.book);
        contingent::on_trade(&mut account, symbol, *px, book, now, &mut events);
    }
    if account.lists.iter().any(|l| !l.done) {
        lists::settle(&mut account, &market, now, &mut events);
    }
    if !events.is_empty() {
        publish(&mut account, events);
    }
}

/// Why a public key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key PEM ({why})")]
pub struct PublicKeyError {
    /// What is wrong.
    pub why: &'static str,
}

/// The 32 raw bytes of an Ed25519 public key in a `-----BEGIN PUBLIC KEY-----` PEM
/// (`openssl pkey -pubout`: SubjectPublicKeyInfo, OID 1.3.101.112).
pub fn ed25519_public_key_from_pem(pem: &str) -> Result<Vec<u8>, PublicKeyError> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PUBLIC KEY-----")
        .collect();
    if body.is_empty() {
        return Err(PublicKeyError {
            why: "no PUBLIC KEY block",
        });
    }
    let der = base64_decode(&body).ok_or(PublicKeyError { why: "bad base64" })?;
    // SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING { 0, key } }.
    const PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    match der.strip_prefix(&PREFIX[..]) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err(PublicKeyError {
            why: "not an Ed25519 SubjectPublicKeyInfo",
        }),
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nib = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nib(pair[0])? << 4 | nib(pair[1])?))
        .collect()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    if !text.len().is_multiple_of(4) || text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in body.as_bytes() {
        acc = (acc << 6) | value(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVsbG8"), None);
        assert_eq!(hex_decode("0aff"), Some(vec![10, 255]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(fixed(Dec::parse("1.5").unwrap()), "1.50000000");
        assert_eq!(assets("BTCUSDT"), ("BTC".into(), "USDT".into()));
        let p = Dec::parse("61837.63").unwrap();
        let q = Dec::parse("0.002").unwrap();
        assert_eq!(mul(p, q).normalized(), "123.67526");
        assert_eq!(mul_div(d("2"), d("1"), d("4")), d("0.5"));
        assert_eq!(mul_div(d("3"), d("1000000"), d("3000000")), d("1"));
    }

    fn d(text: &str) -> Dec {
        Dec::parse(text).unwrap()
    }

    /// A resting order of `qty` at `price` behind `level` displayed there.
    fn resting(side: Side, price: &str, qty: &str, level: &str) -> Order {
        Order {
            symbol: "BTCUSDT".into(),
            order_id: 1,
            client_id: "c".into(),
            side,
            ty: "LIMIT",
            tif: "GTC",
            price: d(price),
            qty: d(qty),
            executed: Dec::default(),
            cum_quote: Dec::default(),
            status: "NEW",
            stp: "NONE".into(),
            created: 0,
            updated: 0,
            working: Some(0),
            ahead: d(level),
            level_seen: d(level),
            credit: Dec::default(),
            expiry: None,
            step: Dec::parse("0.00001").expect("step"),
            trigger: None,
            list: None,
            lock: Dec::default(),
            prevented: Dec::default(),
            last_prevented: Dec::default(),
            prevented_match: None,
        }
    }

    #[test]
    fn trades_at_the_price_take_the_queue_ahead_first() {
        let mut o = resting(Side::Buy, "100", "0.5", "2");
        // A sell aggressor (buyer maker) prints 1.5 at 100: 0.5 still ahead, nothing fills.
        let sell = |q| Some((d("100"), d(q), true));
        assert_eq!(advance(&mut o, sell("1.5"), d("2"), true), (d("0"), false));
        assert_eq!((o.ahead, o.credit), (d("0.5"), d("1.5")));
        // The depth then shows the trade (2 → 0.5): explained, the queue does not move again.
        assert_eq!(advance(&mut o, None, d("0.5"), true), (d("0"), false));
        assert_eq!((o.ahead, o.credit), (d("0.5"), d("0")));
        // A buy aggressor at 100 is not the bid side trading: ignored.
        assert_eq!(
            advance(&mut o, Some((d("100"), d("9"), false)), d("0.5"), true),
            (d("0"), false)
        );
        assert_eq!(o.ahead, d("0.5"));
        // 0.7 more: 0.5 ahead, then 0.2 fills the order.
        assert_eq!(
            advance(&mut o, sell("0.7"), d("0.5"), true),
            (d("0.2"), false)
        );
        assert_eq!(o.ahead, d("0"));
        // A print below the price went through it.
        assert_eq!(
            advance(&mut o, Some((d("99.99"), d("0.001"), true)), d("0"), true),
            (d("0"), true)
        );
    }

    #[test]
    fn sells_queue_on_buyer_aggressor_prints() {
        let mut o = resting(Side::Sell, "100", "1", "0.3");
        assert_eq!(
            advance(&mut o, Some((d("100"), d("0.5"), true)), d("0.3"), true),
            (d("0"), false)
        );
        assert_eq!(
            advance(&mut o, Some((d("100"), d("0.5"), false)), d("0.3"), true),
            (d("0.2"), false)
        );
        assert_eq!(
            advance(&mut o, Some((d("100.01"), d("0.1"), false)), d("0"), true),
            (d("0"), true)
        );
    }

    #[test]
    fn cancels_cut_the_queue_ahead_in_proportion() {
        let mut o = resting(Side::Buy, "100", "1", "4");
        o.ahead = d("2");
        // 1 of the 4 displayed leaves with no trade: half of the level is ahead, 0.5 of it.
        assert_eq!(advance(&mut o, None, d("3"), true), (d("0"), false));
        assert_eq!(o.ahead, d("1.5"));
        // Growth joins behind.
        assert_eq!(advance(&mut o, None, d("10"), true), (d("0"), false));
        assert_eq!((o.ahead, o.level_seen), (d("1.5"), d("10")));
        // The level gone: nothing is ahead any more, and nothing filled.
        assert_eq!(advance(&mut o, None, d("0"), true), (d("0"), false));
        assert_eq!(o.ahead, d("0"));
    }

    #[test]
    fn without_trades_depletion_is_traded() {
        let mut o = resting(Side::Buy, "100", "2", "3");
        o.ahead = d("1");
        assert_eq!(advance(&mut o, None, d("2.5"), false), (d("0"), false));
        assert_eq!(o.ahead, d("0.5"));
        assert_eq!(advance(&mut o, None, d("0.5"), false), (d("1.5"), false));
        assert_eq!(o.ahead, d("0"));
    }
}
