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
            let k = || -> Result<u64, OrderFaultError> {
                let a = arg.ok_or_else(|| err("needs :K"))?;
                match a.parse::<u64>() {
                    Ok(k) if k > 0 => Ok(k),
                    _ => Err(err("K must be a positive integer")),
                }
            };
            faults.push(match name {
                "o1007" => OrderFault::TimeoutExecuted { k: k()? },
                "o1007x" => OrderFault::TimeoutNotExecuted { k: k()? },
                "oreset" => OrderFault::Reset { k: k()? },
                "o429" => OrderFault::RateLimited { k: k()? },
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

    /// The fault, if any, for the `n`-th `order.place` (from 1).
    pub fn for_place(&self, n: u64) -> Option<OrderFault> {
        self.faults.iter().copied().find(|f| match *f {
            OrderFault::TimeoutExecuted { k }
            | OrderFault::TimeoutNotExecuted { k }
            | OrderFault::Reset { k }
            | OrderFault::RateLimited { k } => k == n,
            OrderFault::FillFirst => false,
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
        for bad in ["o1007", "o1007:0", "oreset:x", "nope:1", "fillfirst:1"] {
            assert!(OrderFaultPlan::parse(bad).is_err(), "{bad}");
        }
    }
}
