//! Protective orders and order lists, as a caller asks for them: `STOP_LOSS`,
//! `STOP_LOSS_LIMIT`, `TAKE_PROFIT`, `TAKE_PROFIT_LIMIT` (triggered by a `stopPrice`, a
//! `trailingDelta` or both), and the lists `OCO`, `OTO` and `OTOCO` (an entry and its bracket
//! in one request).
//!
//! These are the gateway's own request types: the strategy's [`OrderIntent`] stays the small
//! fixed contract of plain orders, and a caller that wants protection builds a
//! [`ContingentOrder`] or a [`ListIntent`] and hands it to the venue
//! ([`super::BinanceVenue::submit_contingent`], [`super::BinanceVenue::submit_list`]).
//!
//! **Checked before anything is sent**, against the mandatory parameters the exchange documents
//! per type ([`LegSpec::check`]) and per list ([`ListIntent::check`]): a leg without the price
//! or the trigger its type needs, or with one its type does not take, is refused here with a
//! [`ContingentError`] naming the leg and what is wrong, rather than by the exchange a round
//! trip later. Price relations to the market (which order is above) are the exchange's to
//! judge: this code does not know the last price.
//!
//! [`OrderIntent`]: pinion_strategy::OrderIntent

use pinion_core::{InstrumentId, Px, Qty};
use pinion_strategy::{ClientOrderId, OrderSide, ReasonCode, TimeInForce};

use super::template::{Leg, LegValues, SpotOrderType};

/// What makes a protective order start working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `stopPrice`: when the last price reaches it.
    Stop(Px),
    /// `trailingDelta` in BIPS: a move of that size against the best price since placement.
    Trailing(u32),
    /// Both: trailing starts once `stopPrice` is reached.
    StopThenTrailing {
        /// `stopPrice`.
        stop: Px,
        /// `trailingDelta`, BIPS.
        delta: u32,
    },
}

impl Trigger {
    /// `stopPrice`, if any.
    pub const fn stop_price(self) -> Option<Px> {
        match self {
            Trigger::Stop(p) | Trigger::StopThenTrailing { stop: p, .. } => Some(p),
            Trigger::Trailing(_) => None,
        }
    }

    /// `trailingDelta`, if any.
    pub const fn trailing_delta(self) -> Option<u32> {
        match self {
            Trigger::Trailing(d) | Trigger::StopThenTrailing { delta: d, .. } => Some(d),
            Trigger::Stop(_) => None,
        }
    }
}

/// One order's type and its type's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegSpec {
    /// The order type.
    pub order_type: SpotOrderType,
    /// Limit price (`LIMIT`, `LIMIT_MAKER`, `*_LIMIT`).
    pub price: Option<Px>,
    /// Trigger (`STOP_LOSS*`, `TAKE_PROFIT*`).
    pub trigger: Option<Trigger>,
    /// Time in force (`LIMIT`, `*_LIMIT`).
    pub tif: Option<TimeInForce>,
}

/// A leg's parameter, for [`ContingentError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegParam {
    /// `price`.
    Price,
    /// `stopPrice` / `trailingDelta`.
    Trigger,
    /// `timeInForce`.
    TimeInForce,
}

/// Why a protective order or list cannot be sent. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContingentError {
    /// The type needs a parameter the leg lacks.
    #[error("leg {leg:?} ({ty:?}) needs {param:?}")]
    Missing {
        /// The leg.
        leg: Leg,
        /// Its type.
        ty: SpotOrderType,
        /// What it lacks.
        param: LegParam,
    },
    /// The type takes no such parameter.
    #[error("leg {leg:?} ({ty:?}) takes no {param:?}")]
    Unexpected {
        /// The leg.
        leg: Leg,
        /// Its type.
        ty: SpotOrderType,
        /// What it should not have.
        param: LegParam,
    },
    /// A trailing delta of 0 BIPS (the `TRAILING_DELTA` filter's minimum is at least 1).
    #[error("leg {0:?} has a trailing delta of 0")]
    ZeroTrailingDelta(Leg),
    /// A zero or negative quantity, or a negative price.
    #[error("leg {0:?} has a zero quantity or a negative price")]
    BadAmount(Leg),
    /// A type this request cannot carry there (`order.place` of a protective order takes only
    /// the four triggered types; an OTO's working order is `LIMIT` or `LIMIT_MAKER`).
    #[error("leg {leg:?} cannot be {ty:?} here")]
    TypeNotAllowed {
        /// The leg.
        leg: Leg,
        /// Its type.
        ty: SpotOrderType,
    },
    /// An OCO pair is one of `LIMIT_MAKER`/`TAKE_PROFIT`/`TAKE_PROFIT_LIMIT` and one of
    /// `STOP_LOSS`/`STOP_LOSS_LIMIT`.
    #[error("OCO pair {above:?} above, {below:?} below is not a profit leg and a stop leg")]
    OcoPair {
        /// The above order's type.
        above: SpotOrderType,
        /// The below order's type.
        below: SpotOrderType,
    },
    /// The two orders of an OCO pair must share side and quantity (one `side`, one
    /// `quantity` in the request).
    #[error("OCO pair legs differ in side or quantity")]
    OcoShared,
    /// Two ids of the request are the same.
    #[error("the list and its orders need distinct client ids")]
    SameIds,
}

impl LegSpec {
    /// Why an order of this spec protects the position: a trailing trigger is the trailing
    /// stop, a stop-loss type the stop, anything else (the profit legs, an OTO's working order)
    /// the take-profit.
    pub const fn reason(&self) -> ReasonCode {
        match (self.trigger, self.order_type) {
            (Some(Trigger::Trailing(_) | Trigger::StopThenTrailing { .. }), _) => {
                ReasonCode::Trailing
            }
            (_, SpotOrderType::StopLoss | SpotOrderType::StopLossLimit) => ReasonCode::Stop,
            _ => ReasonCode::TakeProfit,
        }
    }

    /// A `STOP_LOSS` (market once triggered).
    pub const fn stop_loss(trigger: Trigger) -> Self {
        Self {
            order_type: SpotOrderType::StopLoss,
            price: None,
            trigger: Some(trigger),
            tif: None,
        }
    }

    /// A `STOP_LOSS_LIMIT`.
    pub const fn stop_loss_limit(trigger: Trigger, price: Px, tif: TimeInForce) -> Self {
        Self {
            order_type: SpotOrderType::StopLossLimit,
            price: Some(price),
            trigger: Some(trigger),
            tif: Some(tif),
        }
    }

    /// A `TAKE_PROFIT` (market once triggered).
    pub const fn take_profit(trigger: Trigger) -> Self {
        Self {
            order_type: SpotOrderType::TakeProfit,
            price: None,
            trigger: Some(trigger),
            tif: None,
        }
    }

    /// A `TAKE_PROFIT_LIMIT`.
    pub const fn take_profit_limit(trigger: Trigger, price: Px, tif: TimeInForce) -> Self {
        Self {
            order_type: SpotOrderType::TakeProfitLimit,
            price: Some(price),
            trigger: Some(trigger),
            tif: Some(tif),
        }
    }

    /// A `LIMIT`.
    pub const fn limit(price: Px, tif: TimeInForce) -> Self {
        Self {
            order_type: SpotOrderType::Limit,
            price: Some(price),
            trigger: None,
            tif: Some(tif),
        }
    }

    /// A `LIMIT_MAKER`.
    pub const fn limit_maker(price: Px) -> Self {
        Self {
            order_type: SpotOrderType::LimitMaker,
            price: Some(price),
            trigger: None,
            tif: None,
        }
    }

    /// A `MARKET` (an OTO's pending order only).
    pub const fn market() -> Self {
        Self {
            order_type: SpotOrderType::Market,
            price: None,
            trigger: None,
            tif: None,
        }
    }

    /// The documented mandatory parameters of the type, and nothing it does not take.
    pub fn check(&self, leg: Leg) -> Result<(), ContingentError> {
        let ty = self.order_type;
        let want = |param, needed: bool, has: bool| match (needed, has) {
            (true, false) => Err(ContingentError::Missing { leg, ty, param }),
            (false, true) => Err(ContingentError::Unexpected { leg, ty, param }),
            _ => Ok(()),
        };
        want(LegParam::Price, ty.has_price(), self.price.is_some())?;
        want(LegParam::Trigger, ty.is_triggered(), self.trigger.is_some())?;
        want(LegParam::TimeInForce, ty.has_tif(), self.tif.is_some())?;
        if self.trigger.and_then(Trigger::trailing_delta) == Some(0) {
            return Err(ContingentError::ZeroTrailingDelta(leg));
        }
        let negative = |p: Option<Px>| p.is_some_and(|p| p.0 < 0);
        if negative(self.price) || negative(self.trigger.and_then(Trigger::stop_price)) {
            return Err(ContingentError::BadAmount(leg));
        }
        Ok(())
    }
}

/// One order: its id, side, quantity and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContingentLeg {
    /// Its client id.
    pub client_id: ClientOrderId,
    /// Side.
    pub side: OrderSide,
    /// Quantity.
    pub qty: Qty,
    /// Type and parameters.
    pub spec: LegSpec,
}

impl ContingentLeg {
    /// The template values of this leg, with its encoded client id.
    pub fn values<'a>(&self, client_id: &'a [u8]) -> LegValues<'a> {
        LegValues {
            side: Some(self.side),
            order_type: Some(self.spec.order_type),
            tif: self.spec.tif,
            price: self.spec.price,
            stop_price: self.spec.trigger.and_then(Trigger::stop_price),
            trailing_delta: self.spec.trigger.and_then(Trigger::trailing_delta),
            qty: Some(self.qty),
            client_id,
        }
    }

    fn check(&self, leg: Leg) -> Result<(), ContingentError> {
        if self.qty.0 <= 0 {
            return Err(ContingentError::BadAmount(leg));
        }
        self.spec.check(leg)
    }
}

/// One protective order (`order.place` of a triggered type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContingentOrder {
    /// `t0` of the market data that caused it.
    pub t0: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The order.
    pub leg: ContingentLeg,
}

impl ContingentOrder {
    /// Whether the exchange would take it: a triggered type with what its type needs.
    pub fn check(&self) -> Result<(), ContingentError> {
        if !self.leg.spec.order_type.is_triggered() {
            return Err(ContingentError::TypeNotAllowed {
                leg: Leg::A,
                ty: self.leg.spec.order_type,
            });
        }
        self.leg.check(Leg::A)
    }
}

/// Which list, and its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// One-cancels-the-other: when one order triggers or fills, the other is cancelled.
    Oco {
        /// The above order.
        above: ContingentLeg,
        /// The below order.
        below: ContingentLeg,
    },
    /// One-triggers-the-other: the pending order is placed once the working order fills.
    Oto {
        /// The working order (`LIMIT` or `LIMIT_MAKER`).
        working: ContingentLeg,
        /// The pending order.
        pending: ContingentLeg,
    },
    /// An entry and its bracket: the working order, and an OCO pair placed once it fills.
    Otoco {
        /// The working order (`LIMIT` or `LIMIT_MAKER`).
        working: ContingentLeg,
        /// The pending above order.
        above: ContingentLeg,
        /// The pending below order.
        below: ContingentLeg,
    },
}

/// What kind of list ([`ListShape`] without its orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// OCO.
    Oco,
    /// OTO.
    Oto,
    /// OTOCO.
    Otoco,
}

/// An order list to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListIntent {
    /// `t0` of the market data that caused it.
    pub t0: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// The list's own id (`listClientOrderId`), distinct from its orders'.
    pub list_id: ClientOrderId,
    /// The list.
    pub shape: ListShape,
}

const PROFIT_LEGS: [SpotOrderType; 3] = [
    SpotOrderType::LimitMaker,
    SpotOrderType::TakeProfit,
    SpotOrderType::TakeProfitLimit,
];
const STOP_LEGS: [SpotOrderType; 2] = [SpotOrderType::StopLoss, SpotOrderType::StopLossLimit];

fn check_pair(above: &ContingentLeg, below: &ContingentLeg) -> Result<(), ContingentError> {
    let (a, b) = (above.spec.order_type, below.spec.order_type);
    let one_each = (PROFIT_LEGS.contains(&a) && STOP_LEGS.contains(&b))
        || (STOP_LEGS.contains(&a) && PROFIT_LEGS.contains(&b));
    if !one_each {
        return Err(ContingentError::OcoPair { above: a, below: b });
    }
    if above.side != below.side || above.qty != below.qty {
        return Err(ContingentError::OcoShared);
    }
    Ok(())
}

fn check_working(working: &ContingentLeg) -> Result<(), ContingentError> {
    let ty = working.spec.order_type;
    if !matches!(ty, SpotOrderType::Limit | SpotOrderType::LimitMaker) {
        return Err(ContingentError::TypeNotAllowed { leg: Leg::A, ty });
    }
    Ok(())
}

impl ListIntent {
    /// The kind of list.
    pub const fn kind(&self) -> ListKind {
        match self.shape {
            ListShape::Oco { .. } => ListKind::Oco,
            ListShape::Oto { .. } => ListKind::Oto,
            ListShape::Otoco { .. } => ListKind::Otoco,
        }
    }

    /// The orders, by [`Leg`] (A first), as the request carries them.
    pub fn legs(&self) -> arrayvec::ArrayVec<ContingentLeg, 3> {
        let mut out = arrayvec::ArrayVec::new();
        match self.shape {
            ListShape::Oco { above, below } => {
                out.push(above);
                out.push(below);
            }
            ListShape::Oto { working, pending } => {
                out.push(working);
                out.push(pending);
            }
            ListShape::Otoco {
                working,
                above,
                below,
            } => {
                out.push(working);
                out.push(above);
                out.push(below);
            }
        }
        out
    }

    /// Whether the exchange would take it: each order with what its type needs, the kinds of
    /// order each place takes, an OCO pair of one profit and one stop order sharing side and
    /// quantity, distinct ids.
    pub fn check(&self) -> Result<(), ContingentError> {
        let legs = self.legs();
        for (k, (leg, role)) in legs.iter().zip([Leg::A, Leg::B, Leg::C]).enumerate() {
            leg.check(role)?;
            if leg.client_id == self.list_id
                || legs[..k].iter().any(|l| l.client_id == leg.client_id)
            {
                return Err(ContingentError::SameIds);
            }
        }
        match &self.shape {
            ListShape::Oco { above, below } => check_pair(above, below),
            ListShape::Oto { working, .. } => check_working(working),
            ListShape::Otoco {
                working,
                above,
                below,
            } => {
                check_working(working)?;
                check_pair(above, below)
            }
        }
    }
}
