//! The state a journal's records add up to: what a restarted session starts from.

use std::collections::BTreeMap;

use pinion_core::{Px, Qty};
use pinion_strategy::{
    ClientOrderId, ExecReport, OrderAction, OrderReason, OrderSide, OrderStatus, OrderType,
};

use super::frame::Scan;
use super::{PositionChange, Record};

/// Client ids with this bit set are the strategy stage's own (kill and cancel-all cancels,
/// protective closes); see `stages::strategy`.
const CONTROL_ID_BIT: u64 = 1 << 39;

/// Client ids with this bit (and not [`CONTROL_ID_BIT`]) are the operator's manual orders.
const MANUAL_ID_BIT: u64 = crate::stages::strategy::MANUAL_ID_BIT;

/// One order as the journal knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournaledOrder {
    /// Its client id.
    pub client_id: ClientOrderId,
    /// The exchange's id, once a report gave it.
    pub venue_id: Option<u64>,
    /// Side.
    pub side: OrderSide,
    /// Its type (`Limit` when only a report told of the order).
    pub order_type: OrderType,
    /// Limit price.
    pub px: Px,
    /// Quantity.
    pub qty: Qty,
    /// Filled, as the last report said.
    pub cum_qty: Qty,
    /// The last status reported (`None`: sent, never answered).
    pub status: Option<OrderStatus>,
    /// `t0` of the intent that placed it.
    pub t0: u64,
    /// Why it was placed ([`OrderReason::UNKNOWN`] when only a report told of the order, or
    /// its frame is from before reasons).
    pub reason: OrderReason,
}

impl JournaledOrder {
    /// Whether it may still be open at the venue.
    pub fn is_open(&self) -> bool {
        !self.status.is_some_and(OrderStatus::is_final)
    }
}

/// What the journal holds of one instrument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentLog {
    /// Every fill report, in the order they were applied.
    pub fills: Vec<ExecReport>,
    /// Every order placed, by client id.
    pub orders: BTreeMap<u64, JournaledOrder>,
    /// The highest client id of the strategy's own orders.
    pub max_strategy_id: Option<u64>,
    /// The highest client id of the stage's own orders (control bit set).
    pub max_control_id: Option<u64>,
    /// The highest client id of the operator's manual orders (manual bit set).
    pub max_manual_id: Option<u64>,
    /// The last position change journaled.
    pub last_position: Option<PositionChange>,
}

impl InstrumentLog {
    /// The orders that may still be open at the venue.
    pub fn open_orders(&self) -> impl Iterator<Item = &JournaledOrder> + '_ {
        self.orders.values().filter(|o| o.is_open())
    }

    fn note_id(&mut self, id: u64) {
        let slot = if id & CONTROL_ID_BIT != 0 {
            &mut self.max_control_id
        } else if id & MANUAL_ID_BIT != 0 {
            &mut self.max_manual_id
        } else {
            &mut self.max_strategy_id
        };
        *slot = Some(slot.map_or(id, |m| m.max(id)));
    }
}

/// A journal's state, rebuilt from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The run epoch of the first session (every later session keeps it); `None` for a new
    /// journal.
    pub epoch: Option<u64>,
    /// Sessions started on the journal.
    pub sessions: u64,
    /// Records read.
    pub records: u64,
    /// Bytes of a torn last frame cut off.
    pub torn: u64,
    /// By instrument id.
    pub instruments: BTreeMap<u16, InstrumentLog>,
    /// What each instrument id stood for, as the last session to say so recorded it
    /// ([`super::instrument_key`]); empty for a journal written before sessions said.
    pub keys: BTreeMap<u16, u64>,
    /// Operator actions journaled (they change nothing a restart rebuilds).
    pub operator_actions: u64,
}

impl Recovered {
    /// The first instrument id whose journaled records would be read as another instrument
    /// now: journaled with a fingerprint `now` does not give, or with records and no longer
    /// configured. `now(id)`: the fingerprint of the instrument configured at `id`, if any.
    pub fn moved_instrument(&self, now: impl Fn(u16) -> Option<u64>) -> Option<u16> {
        let traded = |id: &u16| {
            self.instruments
                .get(id)
                .is_some_and(|l| !l.fills.is_empty() || l.open_orders().next().is_some())
        };
        self.keys
            .iter()
            .find(|(id, key)| match now(**id) {
                Some(k) => k != **key,
                None => traded(id),
            })
            .map(|(id, _)| *id)
    }
}

impl Recovered {
    /// The state `scan`'s records add up to.
    pub fn from_scan(scan: &Scan) -> Self {
        let mut r = Self::from_records(&scan.records);
        r.torn = scan.torn;
        r
    }

    /// The state `records` add up to, in order.
    pub fn from_records(records: &[Record]) -> Self {
        let mut r = Recovered {
            records: records.len() as u64,
            ..Recovered::default()
        };
        for rec in records {
            match rec {
                Record::Session(s) => {
                    r.sessions += 1;
                    r.epoch.get_or_insert(s.epoch);
                }
                Record::Order(o) => {
                    let log = r.instruments.entry(o.instrument.0).or_default();
                    log.note_id(o.client_id.0);
                    if matches!(o.action, OrderAction::New | OrderAction::Replace) {
                        log.orders.insert(
                            o.client_id.0,
                            JournaledOrder {
                                client_id: o.client_id,
                                venue_id: None,
                                side: o.side,
                                order_type: o.order_type,
                                px: o.px,
                                qty: o.qty,
                                cum_qty: Qty::ZERO,
                                status: None,
                                t0: o.t0,
                                reason: o.reason,
                            },
                        );
                    }
                }
                Record::Report(rep) => {
                    let log = r.instruments.entry(rep.instrument.0).or_default();
                    let o = log.orders.entry(rep.client_id.0).or_insert(JournaledOrder {
                        client_id: rep.client_id,
                        venue_id: None,
                        side: rep.side,
                        order_type: OrderType::Limit,
                        px: rep.last_px,
                        qty: Qty(rep.cum_qty.0.saturating_add(rep.leaves_qty.0)),
                        cum_qty: Qty::ZERO,
                        status: None,
                        t0: rep.t0,
                        reason: OrderReason::UNKNOWN,
                    });
                    if rep.venue_id.0 != 0 {
                        o.venue_id = Some(rep.venue_id.0);
                    }
                    o.cum_qty = o.cum_qty.max(rep.cum_qty);
                    // A refused cancel leaves the order as it was.
                    if !matches!(rep.status, OrderStatus::CancelRejected(_))
                        && !o.status.is_some_and(OrderStatus::is_final)
                    {
                        o.status = Some(rep.status);
                    }
                    if rep.is_fill() {
                        log.fills.push(*rep);
                    }
                }
                Record::Position(p) => {
                    r.instruments
                        .entry(p.instrument.0)
                        .or_default()
                        .last_position = Some(*p);
                }
                Record::Instrument(k) => {
                    r.keys.insert(k.instrument.0, k.key);
                }
                Record::Operator(_) => r.operator_actions += 1,
            }
        }
        r
    }

    /// What the journal holds of instrument `id`.
    pub fn instrument(&self, id: u16) -> Option<&InstrumentLog> {
        self.instruments.get(&id)
    }

    /// Whether the journal holds an earlier session (the new one resumes it).
    pub fn is_resumed(&self) -> bool {
        self.sessions > 0
    }
}

/// The first id a resumed id source of base `base` may use, given the highest journaled id of
/// its range: past it by [`super::RESUME_GAP`].
pub fn resume_from(base: u64, max_seen: Option<u64>) -> u64 {
    let next = max_seen.map_or(base, |m| m.saturating_add(1)).max(base);
    next.saturating_add(super::RESUME_GAP)
}
