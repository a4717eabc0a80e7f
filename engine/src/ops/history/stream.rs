//! A trading session's history written while it runs: the journal's writer thread hands each
//! batch of records it has written to the history's thread ([`HistoryStream`]), which turns
//! them into rows, one transaction per batch. So the file holds, at any moment, the orders,
//! fills and positions the journal had written a moment before; a session that is killed leaves
//! them there, whole (a transaction is in the file entirely or not at all).
//!
//! A fill is written once its position record follows it (the strategy stage journals the two
//! one after the other): its fee is the change of the instrument's fees from the position
//! before. A fill whose position record was lost (the journal's ring was full) is counted in
//! the run's `fills_not_recorded`, never written half.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;

use pinion_gateway::binance::client_id::{CLIENT_ID_LEN, ClientIdCodec, RunEpoch};
use pinion_strategy::{ExecReport, OrderAction, OrderReason, OrderStatus};
use rusqlite::{Connection, params};

use super::{HistoryError, RunBatch, side_name, sqlite, uint};
use crate::ops::journal::Record;
use crate::pipeline::scaled_decimal;

/// What the history's thread is handed.
#[derive(Debug)]
pub(super) enum Msg {
    /// A whole run, written after it (one transaction).
    Batch(RunBatch),
    /// A streamed session starts.
    Begin(Begin),
    /// Records the journal has written, in order.
    Records(Vec<Record>),
    /// The streamed session ended: its final figures, orders and days.
    Finish(RunBatch),
}

/// One instrument as the history's rows name and scale it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInstrument {
    /// The venue's config name.
    pub venue: String,
    /// The symbol.
    pub symbol: String,
    /// Decimals of its prices.
    pub price_decimals: u8,
    /// Decimals of its quantities.
    pub qty_decimals: u8,
}

impl StreamInstrument {
    fn money_decimals(&self) -> u8 {
        self.price_decimals.saturating_add(self.qty_decimals)
    }
}

/// The start of a streamed session.
#[derive(Debug, Clone)]
pub struct Begin {
    /// When it started, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// The config's name.
    pub config: String,
    /// The input's description.
    pub input: String,
    /// The run epoch its client order ids carry.
    pub epoch: u64,
    /// The instruments, by id (`None` for an id with no instrument).
    pub instruments: Vec<Option<StreamInstrument>>,
    /// Each instrument's fees paid before this session (a resumed journal's last position),
    /// by id, in its money units: the first fill's fee is measured from there.
    pub fees_before: Vec<i128>,
    /// The strategy instances, by number, with their names (their orders come at the end).
    pub strategies: Vec<super::RunStrategy>,
}

/// The handle a session streams its history through: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct HistoryStream {
    pub(super) tx: mpsc::Sender<Msg>,
}

impl HistoryStream {
    /// Starts the session's run in the history (before any record is handed over).
    pub fn begin(&self, begin: Begin) -> bool {
        self.tx.send(Msg::Begin(begin)).is_ok()
    }

    /// Hands over records the journal has written; `false` once the history's thread is gone.
    pub fn records(&self, records: Vec<Record>) -> bool {
        self.tx.send(Msg::Records(records)).is_ok()
    }
}

/// An order as the stream last saw it.
#[derive(Debug, Clone, Copy)]
struct OrderSeen {
    qty_decimals: u8,
    /// Why it was placed: its fills are written with it.
    reason: OrderReason,
}

/// The history thread's state of the session being streamed.
#[derive(Debug)]
pub(super) struct Streamed {
    pub(super) run: i64,
    begin: Begin,
    codec: Option<ClientIdCodec>,
    fees: Vec<i128>,
    /// The fill of each instrument waiting for its position record.
    pending: Vec<Option<ExecReport>>,
    pub(super) fills: u64,
    pub(super) unpaired: u64,
    orders: HashMap<u64, OrderSeen>,
}

impl Streamed {
    /// Inserts the run's row and keeps what the records need.
    pub(super) fn begin(
        conn: &mut Connection,
        path: &Path,
        begin: Begin,
    ) -> Result<Self, HistoryError> {
        conn.execute(
            "INSERT INTO runs (started_unix_ns, command, config, input, orders, cancels, fills,
                               fills_not_recorded) VALUES (?1, 'live', ?2, ?3, 0, 0, 0, 0)",
            params![
                uint("start time", begin.started_unix_ns)?,
                begin.config,
                begin.input
            ],
        )
        .map_err(sqlite(path))?;
        let run = conn.last_insert_rowid();
        {
            let tx = conn.transaction().map_err(sqlite(path))?;
            super::put_strategies(&tx, path, run, &begin.strategies)?;
            tx.commit().map_err(sqlite(path))?;
        }
        let n = begin.instruments.len();
        let mut fees = begin.fees_before.clone();
        fees.resize(n, 0);
        Ok(Self {
            run,
            codec: RunEpoch::new(begin.epoch).ok().map(ClientIdCodec::new),
            begin,
            fees,
            pending: vec![None; n],
            fills: 0,
            unpaired: 0,
            orders: HashMap::new(),
        })
    }

    fn client_id(&self, id: u64) -> String {
        match &self.codec {
            Some(c) => {
                let mut text = [0u8; CLIENT_ID_LEN];
                c.encode(pinion_strategy::ClientOrderId(id), &mut text);
                String::from_utf8_lossy(&text).into_owned()
            }
            None => id.to_string(),
        }
    }

    /// Writes `records` in one transaction.
    pub(super) fn apply(
        &mut self,
        conn: &mut Connection,
        path: &Path,
        records: &[Record],
    ) -> Result<(), HistoryError> {
        let tx = conn.transaction().map_err(sqlite(path))?;
        for r in records {
            match r {
                Record::Session(_) | Record::Instrument(_) | Record::Operator(_) => {}
                Record::Order(o) if o.action == OrderAction::New => {
                    let Some(Some(i)) = self.begin.instruments.get(usize::from(o.instrument.0))
                    else {
                        continue;
                    };
                    tx.execute(
                        "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8, 'Sent',
                                                    ?9, ?10)",
                        params![
                            self.run,
                            i.venue,
                            i.symbol,
                            self.client_id(o.client_id.0),
                            side_name(o.side),
                            scaled_decimal(i128::from(o.px.0), i.price_decimals),
                            scaled_decimal(i128::from(o.qty.0), i.qty_decimals),
                            scaled_decimal(0, i.qty_decimals),
                            o.reason.strategy,
                            o.reason.code.name(),
                        ],
                    )
                    .map_err(sqlite(path))?;
                    self.orders.insert(
                        o.client_id.0,
                        OrderSeen {
                            qty_decimals: i.qty_decimals,
                            reason: o.reason,
                        },
                    );
                }
                Record::Order(_) => {}
                Record::Report(rep) => {
                    let idx = usize::from(rep.instrument.0);
                    if let Some(seen) = self.orders.get(&rep.client_id.0)
                        && !matches!(rep.status, OrderStatus::CancelRejected(_))
                    {
                        tx.execute(
                            "UPDATE orders SET order_id = coalesce(?1, order_id), filled = ?2,
                                    state = ?3 WHERE run = ?4 AND client_order_id = ?5",
                            params![
                                (rep.venue_id.0 != 0)
                                    .then(|| i64::try_from(rep.venue_id.0).ok())
                                    .flatten(),
                                scaled_decimal(i128::from(rep.cum_qty.0), seen.qty_decimals),
                                state_name(rep.status),
                                self.run,
                                self.client_id(rep.client_id.0),
                            ],
                        )
                        .map_err(sqlite(path))?;
                    }
                    if rep.last_qty.0 > 0
                        && let Some(slot) = self.pending.get_mut(idx)
                        && slot.replace(*rep).is_some()
                    {
                        // The last fill's position never came.
                        self.unpaired += 1;
                    }
                }
                Record::Position(p) => {
                    let idx = usize::from(p.instrument.0);
                    let Some(Some(i)) = self.begin.instruments.get(idx) else {
                        continue;
                    };
                    let md = i.money_decimals();
                    let fee = p.fees - self.fees[idx];
                    self.fees[idx] = p.fees;
                    if let Some(f) = self.pending[idx].take() {
                        // An order of an earlier session (not in this run's rows) is unknown.
                        let reason = self
                            .orders
                            .get(&f.client_id.0)
                            .map_or(OrderReason::UNKNOWN, |o| o.reason);
                        tx.execute(
                            "INSERT INTO fills VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                                                       ?11, ?12, ?13, ?14, ?15)",
                            params![
                                self.run,
                                uint("fill number", self.fills)?,
                                uint("fill time", f.venue_ts)?,
                                i.venue,
                                i.symbol,
                                side_name(f.side),
                                scaled_decimal(i128::from(f.last_px.0), i.price_decimals),
                                scaled_decimal(i128::from(f.last_qty.0), i.qty_decimals),
                                f.maker,
                                scaled_decimal(fee, md),
                                scaled_decimal(i128::from(p.qty.0), i.qty_decimals),
                                scaled_decimal(p.realized, md),
                                scaled_decimal(p.fees, md),
                                reason.strategy,
                                reason.code.name(),
                            ],
                        )
                        .map_err(sqlite(path))?;
                        self.fills += 1;
                    }
                    super::put_position(
                        &tx,
                        path,
                        self.run,
                        (&i.venue, &i.symbol),
                        [
                            scaled_decimal(i128::from(p.qty.0), i.qty_decimals),
                            scaled_decimal(p.realized, md),
                            scaled_decimal(p.fees, md),
                        ],
                        p.venue_ts,
                    )?;
                }
            }
        }
        tx.execute(
            "UPDATE runs SET fills = ?1, fills_not_recorded = ?2 WHERE id = ?3",
            params![
                uint("fills", self.fills)?,
                uint("fills not recorded", self.unpaired)?,
                self.run
            ],
        )
        .map_err(sqlite(path))?;
        tx.commit().map_err(sqlite(path))
    }
}

/// An order state's name, as `pinion live --account-out` spells the gateway's.
fn state_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::New => "New",
        OrderStatus::PartiallyFilled => "PartiallyFilled",
        OrderStatus::Filled => "Filled",
        OrderStatus::Canceled => "Canceled",
        OrderStatus::Expired => "Expired",
        OrderStatus::Rejected(_) => "Rejected",
        OrderStatus::CancelRejected(_) => "CancelRejected",
    }
}
