//! Seeded faults of the order path, in the grammar of [`FaultPlan`](crate::FaultPlan): a
//! comma-separated list of `name[:K]`.
//!
//! `K` counts `order.place` requests across the whole account, from 1, in the order the
//! simulator reads them, so a plan is deterministic for a client that sends its orders in a
//! fixed order.
//!
//! - `o1007:K`: the K-th `order.place` is executed, but answered `-1007` (status unknown).
//! - `o1007x:K`: the K-th `order.place` is answered `-1007` and **not** executed.
//! - `oreset:K`: the connection is closed without an answer (no close frame, no TLS
//!   close_notify) right after the K-th `order.place` is read; the order is not executed.
//! - `o429:K`: the K-th `order.place` is answered 429 (`-1015`) with `data.retryAfter`, and not
//!   executed.
//! - `o5xx:K`: the K-th `order.place` is executed, but answered status 500 with `-1000`
//!   (an internal error: execution status unknown, as the exchange documents its 5XX).
//! - `o5xxx:K`: as `o5xx:K`, but the order is **not** executed.
//! - `olate:K:MS`: the K-th `order.place` is executed at once, its user data events flow at
//!   once, but its answer is sent MS ms later (the session reads nothing else meanwhile).
//! - `revoke:K`: right after the K-th `order.place` (executed and answered normally) the API
//!   key is revoked: every later request but `time` is answered `-2015` ("Invalid API-key, IP,
//!   or permissions for action.") on every session, logons included; user data stops.
//! - `skew:MS`: the simulator's clock runs MS ms ahead (negative: behind) for `time`,
//!   `session.status`'s `serverTime` and the `timestamp`/`recvWindow` check.
//! - `o429burst:K:N`: the K-th to the (K+N-1)-th `order.place` are answered 429 (`-1015`,
//!   `data.retryAfter` 1 s ahead) and not executed. A client that sends another `order.place`
//!   before the last `retryAfter` is banned: that request and every request for the next 5 s
//!   are answered 418 (`-1003`, "Way too much request weight used; IP banned until …") with
//!   `data.retryAfter` = the ban's end.
//! - `fillfirst`: user data events of an order request are sent before its answer.

/// One order-path fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFault {
    /// `o1007:K`: executed, answered `-1007`.
    TimeoutExecuted {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `o1007x:K`: answered `-1007`, not executed.
    TimeoutNotExecuted {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `oreset:K`: the connection is dropped after reading the K-th `order.place`.
    Reset {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `o429:K`: answered 429 with `retryAfter`, not executed.
    RateLimited {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `o5xx:K`: executed, answered 500 `-1000`.
    ServerErrorExecuted {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `o5xxx:K`: answered 500 `-1000`, not executed.
    ServerErrorNotExecuted {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `olate:K:MS`: executed, answered `ms` ms late.
    Late {
        /// Which `order.place`, from 1.
        k: u64,
        /// The delay, ms.
        ms: u64,
    },
    /// `revoke:K`: the API key is revoked after the K-th `order.place`.
    Revoke {
        /// Which `order.place`, from 1.
        k: u64,
    },
    /// `skew:MS`: the server clock is off by `ms` (positive: ahead).
    Skew {
        /// The offset, ms.
        ms: i64,
    },
    /// `o429burst:K:N`: `order.place` K to K+N-1 answered 429; sending during `retryAfter`
    /// bans (418).
    Burst429 {
        /// The first `order.place` answered 429, from 1.
        k: u64,
        /// How many in a row.
        n: u64,
    },
    /// `fillfirst`: events before the answer.
    FillFirst,
}

/// Why an order fault spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad order fault {spec:?}: {why}")]
pub struct OrderFaultError {
    /// The item seen.
    pub spec: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The order-path faults to inject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFaultPlan {
    /// The faults, in the order given.
    pub faults: Vec<OrderFault>,
}

impl OrderFaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `o1007:3,oreset:5,fillfirst` (empty = none).
    pub fn parse(spec: &str) -> Result<Self, OrderFaultError> {
        let mut faults = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |why| OrderFaultError {
                spec: item.chars().take(40).collect(),
                why,
            };
            let (name, arg) = match item.split_once(':') {
                Some((n, a)) => (n, Some(a)),
                None => (item, None),
            };
            let positive = |a: &str| match a.parse::<u64>() {
                Ok(k) if k > 0 => Ok(k),
                _ => Err(err("K, N and MS must be positive integers")),
            };
            let k = || -> Result<u64, OrderFaultError> {
                let a = arg.ok_or_else(|| err("needs :K"))?;
                positive(a)
            };
            // `K:X`: two positive integers.
            let pair = || -> Result<(u64, u64), OrderFaultError> {
                let (a, b) = arg
                    .and_then(|a| a.split_once(':'))
                    .ok_or_else(|| err("needs :K:X"))?;
                Ok((positive(a)?, positive(b)?))
            };
            faults.push(match name {
                "o1007" => OrderFault::TimeoutExecuted { k: k()? },
                "o1007x" => OrderFault::TimeoutNotExecuted { k: k()? },
                "oreset" => OrderFault::Reset { k: k()? },
                "o429" => OrderFault::RateLimited { k: k()? },
                "o5xx" => OrderFault::ServerErrorExecuted { k: k()? },
                "o5xxx" => OrderFault::ServerErrorNotExecuted { k: k()? },
                "revoke" => OrderFault::Revoke { k: k()? },
                "olate" => {
                    let (k, ms) = pair()?;
                    OrderFault::Late { k, ms }
                }
                "o429burst" => {
                    let (k, n) = pair()?;
                    OrderFault::Burst429 { k, n }
                }
                "skew" => {
                    let a = arg.ok_or_else(|| err("needs :MS"))?;
                    let ms = a
                        .parse::<i64>()
                        .ok()
                        .filter(|ms| ms.unsigned_abs() <= 86_400_000)
                        .ok_or_else(|| err("MS must be an integer within a day"))?;
                    OrderFault::Skew { ms }
                }
                "fillfirst" if arg.is_none() => OrderFault::FillFirst,
                "fillfirst" => return Err(err("takes no argument")),
                _ => return Err(err("unknown fault")),
            });
        }
        Ok(Self { faults })
    }

    /// Whether events go before answers.
    pub fn fill_first(&self) -> bool {
        self.faults.contains(&OrderFault::FillFirst)
    }

    /// The server clock's offset, ms (`skew`; 0 without it).
    pub fn skew_ms(&self) -> i64 {
        self.faults
            .iter()
            .find_map(|f| match *f {
                OrderFault::Skew { ms } => Some(ms),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The fault, if any, for the `n`-th `order.place` (from 1).
    pub fn for_place(&self, n: u64) -> Option<OrderFault> {
        self.faults.iter().copied().find(|f| match *f {
            OrderFault::TimeoutExecuted { k }
            | OrderFault::TimeoutNotExecuted { k }
            | OrderFault::Reset { k }
            | OrderFault::RateLimited { k }
            | OrderFault::ServerErrorExecuted { k }
            | OrderFault::ServerErrorNotExecuted { k }
            | OrderFault::Late { k, .. }
            | OrderFault::Revoke { k } => k == n,
            OrderFault::Burst429 { k, n: count } => n >= k && n - k < count,
            OrderFault::FillFirst | OrderFault::Skew { .. } => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let plan = OrderFaultPlan::parse("o1007:2, o1007x:3,oreset:4,o429:5,fillfirst").unwrap();
        assert_eq!(plan.faults.len(), 5);
        assert!(plan.fill_first());
        assert_eq!(plan.for_place(1), None);
        assert_eq!(
            plan.for_place(2),
            Some(OrderFault::TimeoutExecuted { k: 2 })
        );
        assert_eq!(plan.for_place(4), Some(OrderFault::Reset { k: 4 }));
        assert_eq!(OrderFaultPlan::parse("").unwrap(), OrderFaultPlan::none());
        let plan =
            OrderFaultPlan::parse("o5xx:1,o5xxx:2,olate:3:250,revoke:9,skew:-1500,o429burst:5:3")
                .unwrap();
        assert_eq!(plan.skew_ms(), -1500);
        assert_eq!(plan.for_place(3), Some(OrderFault::Late { k: 3, ms: 250 }));
        assert_eq!(plan.for_place(4), None);
        for n in 5..8 {
            assert_eq!(plan.for_place(n), Some(OrderFault::Burst429 { k: 5, n: 3 }));
        }
        assert_eq!(plan.for_place(8), None);
        assert_eq!(plan.for_place(9), Some(OrderFault::Revoke { k: 9 }));
        assert_eq!(OrderFaultPlan::none().skew_ms(), 0);
        for bad in [
            "o1007",
            "o1007:0",
            "oreset:x",
            "nope:1",
            "fillfirst:1",
            "olate:3",
            "olate:3:x",
            "o429burst:1",
            "o429burst:1:0",
            "skew",
            "skew:1e3",
            "skew:99999999999",
        ] {
            assert!(OrderFaultPlan::parse(bad).is_err(), "{bad}");
        }
    }
}
