//! The instance board: each strategy instance's own account on each instrument it trades, as
//! the strategy stage last wrote it, for the bot and the metrics.
//!
//! The layout, one slot per (instrument, instance slot), is fixed once at start-up by the
//! stage from its own instance slots ([`super::ControlReader::lay_out_instances`]), so the
//! board and the stage agree on which slot is which; nothing is allocated after that. Each
//! slot is a seqlock of atomics like the account board's: the stage writes an instance's slot
//! in the same `publish` that writes its instrument's account, the readers retry while a
//! write is under way.
//!
//! An instance's figures are its own orders' only: the stage's closing orders and the
//! operator's manual orders are the instrument's, in its account (the total) and in no
//! instance's.

use pinion_core::InstrumentId;

use super::Slot;

/// One strategy instance on one instrument, as the board names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceKey {
    /// The instrument it trades.
    pub instrument: InstrumentId,
    /// The instance (its index among the configured ones): what its orders' reasons carry.
    pub instance: u8,
    /// Its name (`[[strategy]] name`, or the strategy's kind for a lone `[strategy]`).
    pub name: String,
    /// The strategy's kind, as configs name it.
    pub kind: &'static str,
}

/// One instance's account on one instrument, as written to the board. Units as in
/// [`super::AccountView`]: the instrument's quantity and money units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceView {
    /// Signed position its own fills add up to.
    pub position: i64,
    /// Realised PnL before fees.
    pub realized: i64,
    /// Unrealised PnL at the instrument's mark (0 without one).
    pub unrealized: i64,
    /// Fees paid (negative: rebates).
    pub fees: i64,
    /// Notional traded.
    pub volume: i64,
    /// Fills of its orders.
    pub fills: u64,
    /// Of those, as maker.
    pub maker_fills: u64,
    /// Orders it decided.
    pub orders: u64,
    /// Cancels it decided.
    pub cancels: u64,
    /// Of its orders, those refused before the venue (its own budget, the account's gate, or
    /// self-trade prevention).
    pub risk_rejects: u64,
    /// Of its orders, those the venue rejected.
    pub venue_rejects: u64,
    /// Its orders open (sent and not known closed).
    pub open_orders: u64,
    /// Event time of the write, ns (0: never written).
    pub at_ns: u64,
}

impl InstanceView {
    /// Net PnL: realised and unrealised less fees.
    pub const fn net(&self) -> i64 {
        self.realized
            .saturating_add(self.unrealized)
            .saturating_sub(self.fees)
    }
}

/// The fields of an [`InstanceView`] on the board.
const FIELDS: usize = 13;

/// Every instance's [`InstanceView`], by instrument. See the module docs.
#[derive(Debug, Default)]
pub struct InstanceBoard {
    /// Instrument `i`'s slots are `first[i]..first[i + 1]`.
    first: Vec<usize>,
    /// The slots' names, in slot order.
    keys: Vec<InstanceKey>,
    slots: Vec<Slot<FIELDS>>,
}

impl InstanceBoard {
    /// A board for `instruments` instruments with a slot for each of `keys` (in the order
    /// given within an instrument; keys of an id past `instruments` are dropped).
    pub fn new(instruments: usize, keys: Vec<InstanceKey>) -> Self {
        let mut keys: Vec<InstanceKey> = keys
            .into_iter()
            .filter(|k| usize::from(k.instrument.0) < instruments)
            .collect();
        // Stable: an instrument's instances keep their order.
        keys.sort_by_key(|k| k.instrument.0);
        // Each instrument's count, then their running sum: where each one's slots start.
        let mut first = vec![0; instruments + 1];
        for k in &keys {
            first[usize::from(k.instrument.0)] += 1;
        }
        let mut at = 0;
        for f in &mut first {
            (*f, at) = (at, at + *f);
        }
        Self {
            slots: keys.iter().map(|_| Slot::default()).collect(),
            first,
            keys,
        }
    }

    fn range(&self, id: InstrumentId) -> std::ops::Range<usize> {
        let i = usize::from(id.0);
        match (self.first.get(i), self.first.get(i + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    /// The instances on instrument `id`, in slot order (empty for an unknown id).
    pub fn of(&self, id: InstrumentId) -> &[InstanceKey] {
        self.keys.get(self.range(id)).unwrap_or_default()
    }

    /// Every slot on the board.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the board has no slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Writes `view` into slot `j` of instrument `id` (one writer: the strategy stage).
    #[inline]
    pub fn write(&self, id: InstrumentId, j: usize, view: &InstanceView) {
        let r = self.range(id);
        let Some(slot) = self.slots.get(r.start + j).filter(|_| j < r.len()) else {
            return;
        };
        slot.write([
            view.position,
            view.realized,
            view.unrealized,
            view.fees,
            view.volume,
            view.fills as i64,
            view.maker_fills as i64,
            view.orders as i64,
            view.cancels as i64,
            view.risk_rejects as i64,
            view.venue_rejects as i64,
            view.open_orders as i64,
            view.at_ns as i64,
        ]);
    }

    /// Slot `j` of instrument `id`: a consistent copy of one write (`None` for no such slot).
    pub fn read(&self, id: InstrumentId, j: usize) -> Option<InstanceView> {
        let r = self.range(id);
        let (v, _) = self.slots.get(r.start + j).filter(|_| j < r.len())?.read();
        Some(InstanceView {
            position: v[0],
            realized: v[1],
            unrealized: v[2],
            fees: v[3],
            volume: v[4],
            fills: v[5] as u64,
            maker_fills: v[6] as u64,
            orders: v[7] as u64,
            cancels: v[8] as u64,
            risk_rejects: v[9] as u64,
            venue_rejects: v[10] as u64,
            open_orders: v[11] as u64,
            at_ns: v[12] as u64,
        })
    }

    /// The instances of instrument `id` with their views, in slot order.
    pub fn read_all(
        &self,
        id: InstrumentId,
    ) -> impl Iterator<Item = (&InstanceKey, InstanceView)> + '_ {
        self.of(id)
            .iter()
            .enumerate()
            .filter_map(move |(j, k)| Some((k, self.read(id, j)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u16, instance: u8, name: &str) -> InstanceKey {
        InstanceKey {
            instrument: InstrumentId(i),
            instance,
            name: name.to_owned(),
            kind: "imbalance",
        }
    }

    #[test]
    fn each_instrument_has_its_own_slots_in_order() {
        let b = InstanceBoard::new(
            3,
            vec![
                key(2, 0, "a"),
                key(0, 1, "b"),
                key(2, 1, "c"),
                key(9, 0, "x"),
            ],
        );
        assert_eq!(b.len(), 3);
        let names = |i| {
            b.of(InstrumentId(i))
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), ["b"]);
        assert!(names(1).is_empty());
        assert_eq!(names(2), ["a", "c"]);
        assert!(names(7).is_empty());
        let v = InstanceView {
            position: -5,
            realized: 7,
            fees: 2,
            fills: 3,
            at_ns: 1,
            ..InstanceView::default()
        };
        b.write(InstrumentId(2), 1, &v);
        // Out of the instrument's range: nothing written.
        b.write(InstrumentId(0), 1, &InstanceView { position: 1, ..v });
        assert_eq!(b.read(InstrumentId(2), 1), Some(v));
        assert_eq!(b.read(InstrumentId(2), 0), Some(InstanceView::default()));
        assert_eq!(b.read(InstrumentId(0), 0), Some(InstanceView::default()));
        assert_eq!(b.read(InstrumentId(0), 1), None);
        assert_eq!(v.net(), 5);
        let all: Vec<_> = b
            .read_all(InstrumentId(2))
            .map(|(k, v)| (k.instance, v.position))
            .collect();
        assert_eq!(all, [(0, 0), (1, -5)]);
    }
}
