//! Queue-position models: how much of a price level is ahead of a resting order.
//!
//! The venue sees only the market's level sizes (market by price), not its orders, so where our
//! order stands in its level's queue is an estimate. Every model starts the order at the back
//! (the whole visible level ahead of it), lets trades at its price on its side use up the queue
//! ahead before they fill it, and never lets the queue ahead exceed the level's size. They differ
//! in what a level *decrease that no trade explains* (a cancel) does to the queue ahead:
//!
//! - [`QueueModel::Conservative`]: nothing; the cancels are taken to be behind us, until the
//!   level has less left than our queue ahead, which is then clamped to the level's size. This
//!   is the venue's original model (hftbacktest calls it risk-averse).
//! - [`QueueModel::Optimistic`]: every cancel is ahead of us.
//! - [`QueueModel::Power`] and [`QueueModel::Log`]: the probabilistic models of hftbacktest
//!   (after Rigtorp's estimator). With `front` the queue ahead and `back` the quantity behind,
//!   a decrease `d` is taken from behind with probability `p = f(back) / (f(back) + f(front))`,
//!   where `f(x) = xⁿ` or `f(x) = ln(1 + x)`: the queue ahead loses `(1 − p)·d`, and whatever
//!   the quantity behind cannot cover of its share `p·d`. The larger side loses the most, and a
//!   larger `n` sharpens that.
//!
//! A decrease is what the level lost between two books minus what traded at the price in between
//! (the book's decrease includes the trades, which already moved the queue). A book that lands
//! before the trades it includes (the feeds are separate streams) makes the traded quantity look
//! like a cancel, so the non-conservative models can count it twice: the same imprecision as
//! hftbacktest's, on the optimistic side.
//!
//! The estimate is worked in `f64` and rounded to the nearest unit of quantity; every step is
//! deterministic.

/// How cancels at a resting order's price move it forward. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueModel {
    /// Cancels are behind us; only trades move us forward (the level's size caps the queue
    /// ahead).
    #[default]
    Conservative,
    /// Cancels are ahead of us.
    Optimistic,
    /// Cancels split by `f(x) = xⁿ` of the quantities behind and ahead (`n ≥ 1`).
    Power(u8),
    /// Cancels split by `f(x) = ln(1 + x)` of the quantities behind and ahead.
    Log,
}

/// Where an order stands in its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueSpot {
    /// Quantity ahead of the order.
    pub ahead: i64,
    /// The level's size at the last book that showed it; `None` if the level has not been
    /// visible since (beyond the levels shown).
    pub level: Option<i64>,
    /// Quantity traded at the price on the order's side since that book.
    pub traded: i64,
}

impl QueueSpot {
    /// An order joining the back of a level of `visible` (`None`: beyond the levels shown, taken
    /// as nothing ahead).
    pub fn join(visible: Option<i64>) -> Self {
        Self {
            ahead: visible.unwrap_or(0),
            level: visible,
            traded: 0,
        }
    }

    /// A trade of `qty` at the price on the order's side, `reaching` of it left when it gets to
    /// this order's queue (our earlier orders at the price took the rest): that uses up the
    /// queue ahead first. Returns what is left past the queue (what can fill the order).
    pub fn on_trade(&mut self, qty: i64, reaching: i64) -> i64 {
        let past = reaching - self.ahead;
        self.ahead = (self.ahead - reaching).max(0);
        // The market's level lost the whole trade.
        self.traded += qty;
        past.max(0)
    }

    /// A book that shows the level at `visible` (`None`: beyond the levels shown).
    pub fn on_level(&mut self, model: QueueModel, visible: Option<i64>) {
        let Some(now) = visible else {
            self.level = None;
            self.traded = 0;
            return;
        };
        let canceled = self.level.map_or(0, |prev| prev - now - self.traded);
        self.ahead = if canceled <= 0 {
            self.ahead
        } else {
            model.ahead_after_cancels(self.ahead, self.level.unwrap_or(0) - self.traded, canceled)
        }
        .clamp(0, now.max(0));
        self.level = Some(now);
        self.traded = 0;
    }
}

impl QueueModel {
    /// The queue ahead after `canceled` left a level of `level` (after its trades) with `ahead`
    /// of it ahead of us.
    fn ahead_after_cancels(self, ahead: i64, level: i64, canceled: i64) -> i64 {
        let back = (level - ahead).max(0);
        let (front, back_f, d) = (ahead as f64, back as f64, canceled as f64);
        let from_front = match self {
            Self::Conservative => return ahead,
            Self::Optimistic => return ahead - canceled,
            Self::Power(n) => {
                // f(front) / (f(front) + f(back)) = 1 / (1 + (back/front)ⁿ), which cannot
                // overflow where xⁿ of a large quantity would.
                if ahead == 0 {
                    0.0
                } else {
                    1.0 / (1.0 + (back_f / front).powi(i32::from(n)))
                }
            }
            Self::Log => {
                let (f_front, f_back) = (front.ln_1p(), back_f.ln_1p());
                if f_front + f_back > 0.0 {
                    f_front / (f_front + f_back)
                } else {
                    0.0
                }
            }
        };
        let from_back = 1.0 - from_front;
        let est = front - from_front * d + (back_f - from_back * d).min(0.0);
        est.round() as i64
    }
}
