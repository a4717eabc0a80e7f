//! A local model of Binance's rate-limit counters, corrected by the server's own counts.
//!
//! **Windows.** Each limit of `exchangeInfo.rateLimits` is a fixed calendar window: a count
//! that restarts when the clock crosses a multiple of the window's length since the Unix epoch
//! (every minute for `REQUEST_WEIGHT 1 MINUTE`, at :00, :10, … for `ORDERS 10 SECOND`, at
//! 00:00 UTC for `ORDERS 1 DAY`). [`RateLimiter::try_send`] refuses a request *before* it would
//! cross any window's limit, and charges it when it is let through.
//!
//! **What a request costs** ([`Method`]): its documented weight, one unfilled order for the
//! methods that place one, and one raw request. Since 2026-04-02 the order methods
//! (`order.place`, `order.cancel`, `order.cancelReplace`, `openOrders.cancelAll`) cost **no
//! weight when they succeed**; a failure is still charged. The weight is charged when sent
//! (the worst case) and given back when the success comes, if the window has not rolled since.
//!
//! **The server's count wins.** Every answer's `rateLimits` array carries the server's counts
//! after that request. The local count of that window becomes the server's, plus what is
//! sent after it (the server had not seen them yet: in flight at their worst case, answered at
//! what they cost; requests on one connection are taken to be counted in the order sent). An answer older than one
//! already used, or that crosses a window boundary between send and receipt, does not
//! correct (its count is stale, or may belong to either window), and its success refunds
//! nothing the newer count did not already know.
//!
//! **429 and 418.** A `429` stops the class it names until `retryAfter`: `-1015` (too many
//! orders) stops only the methods that place orders, so cancels keep flowing; any other 429
//! stops every request. A `418` (IP ban) stops everything until `retryAfter`. Nothing here
//! retries.
//!
//! No allocation after [`RateLimiter::new`]; every refusal is a small `Copy` value.

use arrayvec::ArrayVec;
use pinion_feed::exchange_info::{RateLimit, RateLimitKind};

use super::wire::{Failure, Response};

/// The WS API methods the gateway sends, with their documented costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Opening a WS API connection (2 weight).
    Connect,
    /// `time`.
    Time,
    /// `session.logon`.
    SessionLogon,
    /// `userDataStream.subscribe`.
    UserDataStreamSubscribe,
    /// `order.place`.
    OrderPlace,
    /// `order.cancel`.
    OrderCancel,
    /// `order.cancelReplace`.
    OrderCancelReplace,
    /// `order.amend.keepPriority`.
    OrderAmendKeepPriority,
    /// `openOrders.cancelAll`.
    OpenOrdersCancelAll,
    /// `order.status`.
    OrderStatus,
    /// `openOrders.status` for one symbol.
    OpenOrdersStatus,
    /// `myTrades` without `orderId`.
    MyTrades,
    /// `account.status`.
    AccountStatus,
    /// `orderList.place.oco` (two unfilled orders).
    OrderListOco,
    /// `orderList.place.oto` (two unfilled orders).
    OrderListOto,
    /// `orderList.place.otoco` (three unfilled orders).
    OrderListOtoco,
    /// `orderList.cancel`.
    OrderListCancel,
    /// `openOrderLists.status`.
    OpenOrderListsStatus,
}

impl Method {
    /// Documented request weight.
    pub const fn weight(self) -> u32 {
        match self {
            Method::Connect | Method::SessionLogon | Method::UserDataStreamSubscribe => 2,
            Method::Time
            | Method::OrderPlace
            | Method::OrderCancel
            | Method::OrderCancelReplace
            | Method::OpenOrdersCancelAll
            | Method::OrderListOco
            | Method::OrderListOto
            | Method::OrderListOtoco
            | Method::OrderListCancel => 1,
            Method::OrderAmendKeepPriority | Method::OrderStatus => 4,
            Method::OpenOrdersStatus | Method::OpenOrderListsStatus => 6,
            Method::MyTrades | Method::AccountStatus => 20,
        }
    }

    /// Unfilled orders it adds to the `ORDERS` counters.
    pub const fn orders(self) -> u32 {
        match self {
            Method::OrderPlace | Method::OrderCancelReplace => 1,
            Method::OrderListOco | Method::OrderListOto => 2,
            Method::OrderListOtoco => 3,
            _ => 0,
        }
    }

    /// Whether a success costs no weight (the 2026-04-02 rule). The amend is 0 only when it
    /// expires the order, which the sender cannot know; it is charged, and the server's count
    /// corrects it.
    pub const fn free_on_success(self) -> bool {
        matches!(
            self,
            Method::OrderPlace
                | Method::OrderCancel
                | Method::OrderCancelReplace
                | Method::OpenOrdersCancelAll
                | Method::OrderListOco
                | Method::OrderListOto
                | Method::OrderListOtoco
                | Method::OrderListCancel
        )
    }

    /// Whether it is stopped by an order-count `429` (`-1015`).
    pub const fn places_orders(self) -> bool {
        self.orders() > 0
    }

    fn cost(self, kind: RateLimitKind) -> u32 {
        match kind {
            RateLimitKind::RequestWeight => self.weight(),
            RateLimitKind::Orders => self.orders(),
            RateLimitKind::RawRequests => 1,
        }
    }
}

/// Binance Spot's published request limits, for when `exchangeInfo` did not come with them:
/// 6000 weight a minute, 50 orders per 10 s, 160 000 a day, 61 000 raw requests per 5 minutes.
/// The server's counts correct them on every answer.
pub fn spot_defaults() -> Vec<RateLimit> {
    use pinion_feed::exchange_info::RateLimitInterval;
    let limit = |kind, interval, interval_num, limit| RateLimit {
        kind,
        interval,
        interval_num,
        limit,
    };
    vec![
        limit(
            RateLimitKind::RequestWeight,
            RateLimitInterval::Minute,
            1,
            6000,
        ),
        limit(RateLimitKind::Orders, RateLimitInterval::Second, 10, 50),
        limit(RateLimitKind::Orders, RateLimitInterval::Day, 1, 160_000),
        limit(
            RateLimitKind::RawRequests,
            RateLimitInterval::Minute,
            5,
            61_000,
        ),
    ]
}

/// Why a request may not be sent now. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It would take a window past its limit.
    #[error("{kind:?} over {window_ms} ms: {count} used + {cost} > {limit}")]
    WouldExceed {
        /// The counter.
        kind: RateLimitKind,
        /// The window's length.
        window_ms: u64,
        /// The limit.
        limit: u32,
        /// Used in the current window.
        count: u32,
        /// What this request would add.
        cost: u32,
    },
    /// A 429 stopped this class until then (epoch ms).
    #[error("rate limited until {until_ms}")]
    RateLimited {
        /// When the class may send again.
        until_ms: u64,
    },
    /// A 418 ban stops everything until then (epoch ms).
    #[error("IP banned until {until_ms}")]
    Banned {
        /// When the ban lifts.
        until_ms: u64,
    },
    /// More requests in flight than the limiter tracks.
    #[error("more than {0} requests in flight")]
    TooManyInFlight(usize),
}

/// Why the limits could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// More windows than the limiter holds.
    #[error("{0} rate limits given, at most {MAX_WINDOWS} supported")]
    TooMany(usize),
    /// A window of zero length.
    #[error("rate limit {0:?} has a zero-length window")]
    ZeroWindow(RateLimitKind),
}

/// Most windows tracked.
pub const MAX_WINDOWS: usize = 8;
/// Most requests tracked in flight.
pub const MAX_IN_FLIGHT: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    kind: RateLimitKind,
    len_ms: u64,
    limit: u32,
    count: u32,
    bucket: u64,
    /// The newest request (by send order) whose server count this window took, this bucket.
    corrected_seq: Option<u64>,
}

impl Window {
    fn roll(&mut self, now_ms: u64) {
        let b = now_ms / self.len_ms;
        if b != self.bucket {
            self.bucket = b;
            self.count = 0;
            self.corrected_seq = None;
        }
    }

    /// Whether `ticket`'s charge is still in this window's local count: sent in this bucket
    /// and not covered by a newer server count (which already knew whether it succeeded).
    fn holds(&self, ticket: &Ticket) -> bool {
        ticket.sent_ms / self.len_ms == self.bucket
            && self.corrected_seq.is_none_or(|c| ticket.seq > c)
    }
}

/// One window's use as the local model counts it, for other threads to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsage {
    /// What the window counts.
    pub kind: RateLimitKind,
    /// Its length, ms.
    pub window_ms: u64,
    /// The exchange's limit.
    pub limit: u32,
    /// The count in window `bucket`.
    pub count: u32,
    /// Which window the count is of: wall-clock ms since the Unix epoch over `window_ms`.
    pub bucket: u64,
}

impl WindowUsage {
    /// The count at wall-clock `now_ms`: 0 once the window the count is of has passed.
    pub fn count_at(&self, now_ms: u64) -> u32 {
        if self.window_ms > 0 && now_ms / self.window_ms == self.bucket {
            self.count
        } else {
            0
        }
    }
}

/// A request let through, to be handed back with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    seq: u64,
    method: Method,
    sent_ms: u64,
}

impl Ticket {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
}

/// The counters of one IP and account. See the module docs.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    windows: ArrayVec<Window, MAX_WINDOWS>,
    in_flight: ArrayVec<Ticket, MAX_IN_FLIGHT>,
    /// Recently answered requests and whether they were charged weight, newest last: a server
    /// count from an older request has not seen them.
    answered: ArrayVec<(Ticket, bool), MAX_IN_FLIGHT>,
    next_seq: u64,
    orders_stop_until: u64,
    all_stop_until: u64,
    ban_until: u64,
}

impl RateLimiter {
    /// A limiter with the exchange's limits (from `exchangeInfo.rateLimits`).
    pub fn new(limits: &[RateLimit]) -> Result<Self, LimitsError> {
        if limits.len() > MAX_WINDOWS {
            return Err(LimitsError::TooMany(limits.len()));
        }
        let mut windows = ArrayVec::new();
        for l in limits {
            let len_ms = l.window_seconds() * 1000;
            if len_ms == 0 {
                return Err(LimitsError::ZeroWindow(l.kind));
            }
            windows.push(Window {
                kind: l.kind,
                len_ms,
                limit: l.limit,
                count: 0,
                bucket: 0,
                corrected_seq: None,
            });
        }
        Ok(Self {
            windows,
            in_flight: ArrayVec::new(),
            answered: ArrayVec::new(),
            next_seq: 0,
            orders_stop_until: 0,
            all_stop_until: 0,
            ban_until: 0,
        })
    }

    /// The local count of the `kind` window of `window_ms`, at `now_ms`.
    pub fn count(&mut self, kind: RateLimitKind, window_ms: u64, now_ms: u64) -> Option<u32> {
        let w = self
            .windows
            .iter_mut()
            .find(|w| w.kind == kind && w.len_ms == window_ms)?;
        w.roll(now_ms);
        Some(w.count)
    }

    /// Each window's count as it stands (not rolled: [`WindowUsage::count_at`] does that).
    pub fn usage(&self) -> impl Iterator<Item = WindowUsage> + '_ {
        self.windows.iter().map(|w| WindowUsage {
            kind: w.kind,
            window_ms: w.len_ms,
            limit: w.limit,
            count: w.count,
            bucket: w.bucket,
        })
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether `method` may be sent at `now_ms`, without charging it.
    pub fn check(&mut self, method: Method, now_ms: u64) -> Result<(), Refusal> {
        if now_ms < self.ban_until {
            return Err(Refusal::Banned {
                until_ms: self.ban_until,
            });
        }
        if now_ms < self.all_stop_until {
            return Err(Refusal::RateLimited {
                until_ms: self.all_stop_until,
            });
        }
        if method.places_orders() && now_ms < self.orders_stop_until {
            return Err(Refusal::RateLimited {
                until_ms: self.orders_stop_until,
            });
        }
        if self.in_flight.is_full() {
            return Err(Refusal::TooManyInFlight(MAX_IN_FLIGHT));
        }
        for w in &mut self.windows {
            w.roll(now_ms);
            let cost = method.cost(w.kind);
            if cost > 0 && w.count.saturating_add(cost) > w.limit {
                return Err(Refusal::WouldExceed {
                    kind: w.kind,
                    window_ms: w.len_ms,
                    limit: w.limit,
                    count: w.count,
                    cost,
                });
            }
        }
        Ok(())
    }

    /// Checks `method` and, if it may go, charges it (worst case) and returns its ticket.
    pub fn try_send(&mut self, method: Method, now_ms: u64) -> Result<Ticket, Refusal> {
        self.check(method, now_ms)?;
        for w in &mut self.windows {
            w.count = w.count.saturating_add(method.cost(w.kind));
        }
        let t = Ticket {
            seq: self.next_seq,
            method,
            sent_ms: now_ms,
        };
        self.next_seq += 1;
        // `check` made sure there is room.
        let _ = self.in_flight.try_push(t);
        Ok(t)
    }

    fn take(&mut self, ticket: Ticket) -> bool {
        match self.in_flight.iter().position(|t| t.seq == ticket.seq) {
            Some(i) => {
                self.in_flight.remove(i);
                true
            }
            None => false,
        }
    }

    /// The request's answer will never come (timeout, disconnect): its charge stays.
    pub fn on_lost(&mut self, ticket: Ticket) {
        self.take(ticket);
    }

    /// The answer to `ticket`'s request arrived at `now_ms`.
    pub fn on_response(&mut self, ticket: Ticket, resp: &Response<'_>, now_ms: u64) {
        if !self.take(ticket) {
            return;
        }
        let failure = resp.failure();
        let weight_charged = !(failure.is_none() && ticket.method.free_on_success());
        if self.answered.is_full() {
            self.answered.remove(0);
        }
        self.answered.push((ticket, weight_charged));
        if !weight_charged {
            let weight = ticket.method.weight();
            for w in &mut self.windows {
                w.roll(now_ms);
                if w.kind == RateLimitKind::RequestWeight && w.holds(&ticket) {
                    w.count = w.count.saturating_sub(weight);
                }
            }
        }
        match failure {
            Some(Failure::Banned) => {
                let until = resp_retry_after(resp).unwrap_or(now_ms + 120_000);
                self.ban_until = self.ban_until.max(until);
            }
            Some(Failure::RateLimited) => {
                let code = match &resp.outcome {
                    Err(e) => e.code,
                    Ok(_) => 0,
                };
                let until = resp_retry_after(resp).unwrap_or(now_ms + 1_000);
                if code == -1015 {
                    self.orders_stop_until = self.orders_stop_until.max(until);
                } else {
                    self.all_stop_until = self.all_stop_until.max(until);
                }
            }
            _ => {}
        }
        // The server's counts win. They are of the window the server was in when it read the
        // request, which only an accepted order's `transactTime` tells.
        let server_ms = match resp.failure() {
            None if ticket.method.places_orders() => resp.order_ack().ok().map(|a| a.transact_time),
            _ => None,
        };
        for server in &resp.rate_limits.0 {
            let len_ms = u64::from(server.interval_num) * server.interval.seconds() * 1000;
            let Some(w) = self
                .windows
                .iter_mut()
                .find(|w| w.kind == server.kind && w.len_ms == len_ms)
            else {
                continue;
            };
            w.limit = server.limit;
            w.roll(now_ms);
            // Sent in an earlier window but read by the server in this one (it crossed the
            // boundary on its way): the server's count is this window's, and the local count
            // never had it.
            let crossed = server_ms
                .is_some_and(|ms| ms / len_ms == w.bucket && ticket.sent_ms / len_ms < w.bucket);
            if !w.holds(&ticket) && !crossed {
                continue;
            }
            let bucket = w.bucket;
            let after = |t: &Ticket| t.seq > ticket.seq && t.sent_ms / len_ms == bucket;
            let in_flight: u32 = self
                .in_flight
                .iter()
                .filter(|t| after(t))
                .map(|t| t.method.cost(server.kind))
                .sum();
            let answered: u32 = self
                .answered
                .iter()
                .filter(|(t, _)| after(t))
                .map(|(t, charged)| match server.kind {
                    RateLimitKind::RequestWeight if !charged => 0,
                    kind => t.method.cost(kind),
                })
                .sum();
            let later = in_flight + answered;
            w.count = server.count.saturating_add(later);
            w.corrected_seq = Some(ticket.seq);
        }
    }
}

fn resp_retry_after(resp: &Response<'_>) -> Option<u64> {
    match &resp.outcome {
        Err(e) => e.retry_after_ms(),
        Ok(_) => None,
    }
}
