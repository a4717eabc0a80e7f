//! The trade history: a SQLite file (`--history DB`, `[history] db`) that keeps, run after run,
//! the orders, the fills and each instrument's PnL per UTC day, for `pinion history` to read.
//!
//! Invariants:
//! - The stages never touch it. A [`HistoryWriter`] owns the connection on a thread of its own
//!   and takes [`RunBatch`]es over a channel; each batch is one transaction, so a run is in the
//!   file whole or not at all. The file is opened (and its schema checked or created) before the
//!   run starts, so a path that cannot be written fails the command before anything trades.
//! - A backtest or replay is written after it, from what the run recorded for its report: the
//!   strategy stage keeps the fills on its preallocated tape (see [`crate::backtest::Tape`]) and
//!   hands it over when it finishes; a simulated venue keeps counts of its orders, which the
//!   `runs` table holds. Such a run is in the file whole or not at all.
//! - `pinion live --trade` with a `[journal]` is written while it runs ([`stream`]): the
//!   journal's writer thread hands each batch of records it wrote to this thread, which writes
//!   its orders, fills and positions in one transaction, so a session killed at any point
//!   leaves here everything its journal had written a moment before, each row whole. When the
//!   session ends cleanly its run is completed: the counts, the account's orders as the venue
//!   last had them, the days.
//! - `positions` holds each instrument's position, realised PnL and fees as of its last fill
//!   (streamed) or the end of the run.
//! - Money is stored exactly: prices, quantities and money as the same decimal strings as
//!   `fills.csv`, and the day figures as integer money units with their decimals, so sums are
//!   exact. A figure too large for SQLite's 64-bit integer is an error, never rounded.
//! - With `[history] postgres`, a copy of the file is kept in a shared PostgreSQL database by a
//!   thread of its own, from the rows each committed transaction touched ([`pg`]).
//! - `strategies` names each run's strategy instances (the number its orders' and fills'
//!   `strategy` column holds, and the `[[strategy]] name`), written when the run's row is:
//!   at a streamed session's start, from the settings, or with a whole run's batch; the
//!   orders each instance decided are added when the run ends (`NULL` until then).
//! - The schema is versioned with `PRAGMA user_version` ([`SCHEMA_VERSION`]); a file written by
//!   a newer pinion is refused rather than misread. The journal is WAL, so `pinion history` can
//!   read while a run writes.

mod days;
pub mod pg;
pub mod query;
pub mod stream;

pub use days::{DayPnl, days};
pub use pg::{MirrorReport, PgTarget};
pub use stream::{Begin, HistoryStream, StreamInstrument};
use stream::{Msg, Streamed};

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};

use crate::backtest::{BacktestReport, InstrumentResult};
use crate::pipeline::scaled_decimal;

/// The schema version this pinion writes and reads.
pub const SCHEMA_VERSION: i64 = 4;

/// Added in version 4: each run's strategy instances by number, with their names and, once the
/// run has ended, the orders each decided. Files from before have no names: their instances
/// read as `s0`, `s1`, ...
const STRATEGIES_SQL: &str = "
CREATE TABLE strategies (
    run INTEGER NOT NULL REFERENCES runs(id),
    instance INTEGER NOT NULL,
    name TEXT NOT NULL,
    orders INTEGER,
    PRIMARY KEY (run, instance)
);
";

/// Added in version 3: each order's and each fill's reason, the strategy instance and the
/// code's name ([`pinion_strategy::ReasonCode::name`]). Rows from before read as instance 0,
/// `unknown`. A new file is made as version 2 and then this, so old and new files have the
/// same columns in the same order.
const REASONS_SQL: &str = "
ALTER TABLE orders ADD COLUMN strategy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN reason TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE fills ADD COLUMN strategy INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fills ADD COLUMN reason TEXT NOT NULL DEFAULT 'unknown';
";

/// Added in version 2: each instrument's account as of its last fill or the run's end.
macro_rules! positions_sql {
    () => {
        "
CREATE TABLE positions (
    run INTEGER NOT NULL REFERENCES runs(id),
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    position TEXT NOT NULL,
    realized_pnl TEXT NOT NULL,
    fees_total TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    PRIMARY KEY (run, venue, symbol)
);
"
    };
}

const SCHEMA: &str = concat!(
    "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started_unix_ns INTEGER NOT NULL,
    command TEXT NOT NULL,
    config TEXT NOT NULL,
    input TEXT NOT NULL,
    orders INTEGER NOT NULL,
    cancels INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    fills_not_recorded INTEGER NOT NULL
);
CREATE TABLE orders (
    run INTEGER NOT NULL REFERENCES runs(id),
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id INTEGER,
    side TEXT NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    filled TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE fills (
    run INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    maker INTEGER NOT NULL,
    fee TEXT NOT NULL,
    position TEXT NOT NULL,
    realized_pnl TEXT NOT NULL,
    fees_total TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE INDEX fills_time ON fills (time_ns);
CREATE TABLE daily_pnl (
    run INTEGER NOT NULL REFERENCES runs(id),
    day TEXT NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    money_decimals INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    volume INTEGER NOT NULL,
    realized INTEGER NOT NULL,
    fees INTEGER NOT NULL,
    unrealized INTEGER NOT NULL,
    net INTEGER NOT NULL,
    PRIMARY KEY (run, day, venue, symbol)
);
",
    positions_sql!()
);

/// What went wrong with the history file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// SQLite refused something.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file was written by a pinion with a newer schema.
    #[error(
        "{}: schema version {found}, this pinion reads version {SCHEMA_VERSION} and older",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// The file is an SQLite database but not a pinion history.
    #[error("{}: not a pinion history (no schema version)", path.display())]
    NotHistory {
        /// The file.
        path: PathBuf,
    },
    /// A figure does not fit SQLite's 64-bit integers.
    #[error("{what} {value} does not fit a 64-bit integer")]
    TooLarge {
        /// Which figure.
        what: &'static str,
        /// Its value.
        value: i128,
    },
    /// A row holds a value that is not what pinion writes there.
    #[error("{}: {what}", path.display())]
    BadRow {
        /// The file.
        path: PathBuf,
        /// What was seen, and where.
        what: String,
    },
    /// The writer thread is gone (it failed on an earlier batch, or could not start).
    #[error("the history writer stopped: {0}")]
    Writer(String),
}

fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> HistoryError + '_ {
    move |source| HistoryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn int(what: &'static str, value: i128) -> Result<i64, HistoryError> {
    i64::try_from(value).map_err(|_| HistoryError::TooLarge { what, value })
}

fn uint(what: &'static str, value: u64) -> Result<i64, HistoryError> {
    int(what, i128::from(value))
}

/// Opens (creating if needed) the history at `path`: WAL journal, schema created or checked.
pub fn open(path: &Path) -> Result<Connection, HistoryError> {
    let err = sqlite(path);
    let conn = Connection::open(path).map_err(sqlite(path))?;
    (|| {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(())
    })()
    .map_err(err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    match version {
        0 => {
            // A new file, not someone else's database that happens to have no version.
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(sqlite(path))?;
            if tables > 0 {
                return Err(HistoryError::NotHistory {
                    path: path.to_path_buf(),
                });
            }
            let tx = conn.unchecked_transaction().map_err(sqlite(path))?;
            tx.execute_batch(SCHEMA).map_err(sqlite(path))?;
            tx.execute_batch(REASONS_SQL).map_err(sqlite(path))?;
            tx.execute_batch(STRATEGIES_SQL).map_err(sqlite(path))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sqlite(path))?;
            tx.commit().map_err(sqlite(path))?;
        }
        1..=3 => {
            // Version 1 had no positions table; versions 1 and 2 no reasons; 1 to 3 no
            // strategy names.
            let tx = conn.unchecked_transaction().map_err(sqlite(path))?;
            if version == 1 {
                tx.execute_batch(positions_sql!()).map_err(sqlite(path))?;
            }
            if version <= 2 {
                tx.execute_batch(REASONS_SQL).map_err(sqlite(path))?;
            }
            tx.execute_batch(STRATEGIES_SQL).map_err(sqlite(path))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sqlite(path))?;
            tx.commit().map_err(sqlite(path))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(HistoryError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
    }
    Ok(conn)
}

/// One order as a live venue's account knows it at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// The venue's config name.
    pub venue: String,
    /// The symbol.
    pub symbol: String,
    /// Our client order id.
    pub client_order_id: String,
    /// The venue's id, once it gave one.
    pub order_id: Option<i64>,
    /// `buy` or `sell`.
    pub side: String,
    /// Limit price, exact decimal.
    pub price: String,
    /// Quantity, exact decimal.
    pub qty: String,
    /// Filled quantity, exact decimal.
    pub filled: String,
    /// The order's state at the end.
    pub state: String,
    /// The strategy instance whose order it is.
    pub strategy: u8,
    /// Its reason code's name (`unknown` when the venue's account did not say).
    pub reason: String,
}

/// Everything one run adds to the history: one transaction.
#[derive(Debug, Clone)]
pub struct RunBatch {
    /// When the run started, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// `backtest` or `live`.
    pub command: &'static str,
    /// The config's name.
    pub config: String,
    /// The input's description.
    pub input: String,
    /// The traded instruments, with their fills and final account.
    pub instruments: Vec<InstrumentResult>,
    /// The live account's orders (empty for a backtest).
    pub orders: Vec<OrderRow>,
}

impl RunBatch {
    /// The run's strategy instances, from what each instrument's stage handed over: each
    /// instance once, its orders added up over the instruments it traded.
    pub fn strategies(&self) -> Vec<RunStrategy> {
        let mut out: Vec<RunStrategy> = Vec::new();
        for i in self.instruments.iter().flat_map(|i| &i.trading.instances) {
            match out.iter_mut().find(|s| s.instance == i.instance) {
                Some(s) => s.orders = Some(s.orders.unwrap_or(0) + i.stats.orders),
                None => out.push(RunStrategy {
                    instance: i.instance,
                    name: i.name.to_string(),
                    orders: Some(i.stats.orders),
                }),
            }
        }
        out.sort_by_key(|s| s.instance);
        out
    }

    /// The batch of a run measured as `bt`.
    pub fn new(
        command: &'static str,
        started_unix_ns: u64,
        config: &str,
        input: &str,
        bt: &BacktestReport,
    ) -> Self {
        Self {
            started_unix_ns,
            command,
            config: config.to_owned(),
            input: input.to_owned(),
            instruments: bt.instruments.clone(),
            orders: Vec::new(),
        }
    }

    /// The orders of `pinion live --trade`'s accounts ([`crate::pipeline::accounts_json`]).
    pub fn with_accounts(mut self, venue: &str, accounts: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        for a in accounts.as_array().into_iter().flatten() {
            for o in a["orders"].as_array().into_iter().flatten() {
                self.orders.push(OrderRow {
                    venue: venue.to_owned(),
                    symbol: text(&a["symbol"]),
                    client_order_id: text(&o["client_order_id"]),
                    order_id: o["order_id"].as_i64(),
                    side: text(&o["side"]),
                    price: text(&o["price"]),
                    qty: text(&o["qty"]),
                    filled: text(&o["filled"]),
                    state: text(&o["state"]),
                    strategy: o["strategy"]
                        .as_u64()
                        .and_then(|v| u8::try_from(v).ok())
                        .unwrap_or(0),
                    reason: o["reason"].as_str().unwrap_or("unknown").to_owned(),
                });
            }
        }
        self
    }
}

/// What a run added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// The run's id in the `runs` table.
    pub run: i64,
    /// Orders written.
    pub orders: u64,
    /// Fills written.
    pub fills: u64,
    /// Instrument-days written.
    pub days: u64,
}

/// Writes `batch` into `conn` in one transaction.
pub fn write(
    conn: &mut Connection,
    path: &Path,
    batch: &RunBatch,
) -> Result<Written, HistoryError> {
    let tx = conn.transaction().map_err(sqlite(path))?;
    let mut w = Written::default();
    let sum = |f: fn(&InstrumentResult) -> u64| batch.instruments.iter().map(f).sum::<u64>();
    tx.execute(
        "INSERT INTO runs (started_unix_ns, command, config, input, orders, cancels, fills,
                           fills_not_recorded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            uint("start time", batch.started_unix_ns)?,
            batch.command,
            batch.config,
            batch.input,
            uint("orders", sum(|i| i.figures.orders))?,
            uint("cancels", sum(|i| i.figures.cancels))?,
            uint("fills", sum(|i| i.figures.fills))?,
            uint(
                "fills not recorded",
                sum(|i| i.trading.tape.fills_dropped())
            )?,
        ],
    )
    .map_err(sqlite(path))?;
    w.run = tx.last_insert_rowid();
    put_strategies(&tx, path, w.run, &batch.strategies())?;
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sqlite(path))?;
        for o in &batch.orders {
            ins.execute(params![
                w.run,
                o.venue,
                o.symbol,
                o.client_order_id,
                o.order_id,
                o.side,
                o.price,
                o.qty,
                o.filled,
                o.state,
                o.strategy,
                o.reason
            ])
            .map_err(sqlite(path))?;
            w.orders += 1;
        }
        let mut ins = tx
            .prepare(
                "INSERT INTO fills VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                                           ?14, ?15)",
            )
            .map_err(sqlite(path))?;
        for i in &batch.instruments {
            let md = i.figures.money_decimals;
            for f in i.trading.tape.fills() {
                ins.execute(params![
                    w.run,
                    uint("fill number", w.fills)?,
                    uint("fill time", f.t_ns)?,
                    i.venue,
                    i.symbol,
                    side_name(f.side),
                    scaled_decimal(i128::from(f.px.0), i.price_decimals),
                    scaled_decimal(i128::from(f.qty.0), i.qty_decimals),
                    f.maker,
                    scaled_decimal(f.fee, md),
                    scaled_decimal(i128::from(f.position.0), i.qty_decimals),
                    scaled_decimal(f.realized, md),
                    scaled_decimal(f.fees, md),
                    f.reason.strategy,
                    f.reason.code.name(),
                ])
                .map_err(sqlite(path))?;
                w.fills += 1;
            }
        }
        let mut ins = tx
            .prepare("INSERT INTO daily_pnl VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
            .map_err(sqlite(path))?;
        for i in &batch.instruments {
            let md = i.figures.money_decimals;
            for d in days(i) {
                ins.execute(params![
                    w.run,
                    super::civil::date(d.day * super::civil::DAY_NS),
                    i.venue,
                    i.symbol,
                    md,
                    uint("day fills", d.fills)?,
                    int("day volume", d.volume)?,
                    int("day realised PnL", d.realized)?,
                    int("day fees", d.fees)?,
                    int("day unrealised PnL", d.unrealized)?,
                    int("day net PnL", d.net())?,
                ])
                .map_err(sqlite(path))?;
                w.days += 1;
            }
        }
    }
    for i in &batch.instruments {
        let md = i.figures.money_decimals;
        let t = &i.trading;
        put_position(
            &tx,
            path,
            w.run,
            (&i.venue, &i.symbol),
            [
                scaled_decimal(i128::from(t.position.0), i.qty_decimals),
                scaled_decimal(t.realized, md),
                scaled_decimal(t.fees, md),
            ],
            t.tape.fills().last().map_or(0, |f| f.t_ns),
        )?;
    }
    tx.commit().map_err(sqlite(path))?;
    Ok(w)
}

/// One strategy instance of a run, as the `strategies` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStrategy {
    /// Its number (what its orders' and fills' `strategy` column holds).
    pub instance: u8,
    /// Its name (`[[strategy]] name`).
    pub name: String,
    /// The orders it decided over the run, on every instrument; `None` until the run ends.
    pub orders: Option<u64>,
}

/// Writes `strategies` as run `run`'s instances; an instance already there keeps its row and
/// takes the name and, when given, the orders.
fn put_strategies(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    run: i64,
    strategies: &[RunStrategy],
) -> Result<(), HistoryError> {
    let mut ins = tx
        .prepare(
            "INSERT INTO strategies VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (run, instance) DO UPDATE SET name = excluded.name,
                 orders = coalesce(excluded.orders, orders)",
        )
        .map_err(sqlite(path))?;
    for s in strategies {
        let orders = s.orders.map(|n| uint("orders", n)).transpose()?;
        ins.execute(params![run, s.instance, s.name, orders])
            .map_err(sqlite(path))?;
    }
    Ok(())
}

/// Writes an instrument's account (`[position, realized, fees]`, exact decimals) as of
/// `time_ns` into the run's `positions` row.
fn put_position(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    run: i64,
    (venue, symbol): (&str, &str),
    [position, realized, fees]: [String; 3],
    time_ns: u64,
) -> Result<(), HistoryError> {
    tx.execute(
        "INSERT INTO positions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (run, venue, symbol) DO UPDATE SET position = excluded.position,
             realized_pnl = excluded.realized_pnl, fees_total = excluded.fees_total,
             time_ns = excluded.time_ns",
        params![
            run,
            venue,
            symbol,
            position,
            realized,
            fees,
            uint("position time", time_ns)?
        ],
    )
    .map_err(sqlite(path))?;
    Ok(())
}

/// Completes a streamed run with `batch`, the session's end, in one transaction: the counts,
/// the account's orders as the venue last had them (they replace the streamed ones when the
/// venue gave any), the final positions and the days. The fills were streamed already.
fn finish_streamed(
    conn: &mut Connection,
    path: &Path,
    streamed: &Streamed,
    batch: &RunBatch,
) -> Result<Written, HistoryError> {
    let tx = conn.transaction().map_err(sqlite(path))?;
    let run = streamed.run;
    let mut w = Written {
        run,
        fills: streamed.fills,
        ..Written::default()
    };
    let sum = |f: fn(&InstrumentResult) -> u64| batch.instruments.iter().map(f).sum::<u64>();
    tx.execute(
        "UPDATE runs SET orders = ?1, cancels = ?2 WHERE id = ?3",
        params![
            uint("orders", sum(|i| i.figures.orders))?,
            uint("cancels", sum(|i| i.figures.cancels))?,
            run
        ],
    )
    .map_err(sqlite(path))?;
    put_strategies(&tx, path, run, &batch.strategies())?;
    if !batch.orders.is_empty() {
        tx.execute("DELETE FROM orders WHERE run = ?1", params![run])
            .map_err(sqlite(path))?;
        let mut ins = tx
            .prepare(
                "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sqlite(path))?;
        for o in &batch.orders {
            ins.execute(params![
                run,
                o.venue,
                o.symbol,
                o.client_order_id,
                o.order_id,
                o.side,
                o.price,
                o.qty,
                o.filled,
                o.state,
                o.strategy,
                o.reason
            ])
            .map_err(sqlite(path))?;
            w.orders += 1;
        }
    }
    for i in &batch.instruments {
        let md = i.figures.money_decimals;
        let t = &i.trading;
        let last: Option<i64> = tx
            .query_row(
                "SELECT time_ns FROM positions WHERE run = ?1 AND venue = ?2 AND symbol = ?3",
                params![run, i.venue, i.symbol],
                |r| r.get(0),
            )
            .ok();
        put_position(
            &tx,
            path,
            run,
            (&i.venue, &i.symbol),
            [
                scaled_decimal(i128::from(t.position.0), i.qty_decimals),
                scaled_decimal(t.realized, md),
                scaled_decimal(t.fees, md),
            ],
            last.map_or(0, |t| u64::try_from(t).unwrap_or(0)),
        )?;
        for d in days(i) {
            tx.execute(
                "INSERT INTO daily_pnl VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    run,
                    super::civil::date(d.day * super::civil::DAY_NS),
                    i.venue,
                    i.symbol,
                    md,
                    uint("day fills", d.fills)?,
                    int("day volume", d.volume)?,
                    int("day realised PnL", d.realized)?,
                    int("day fees", d.fees)?,
                    int("day unrealised PnL", d.unrealized)?,
                    int("day net PnL", d.net())?,
                ],
            )
            .map_err(sqlite(path))?;
            w.days += 1;
        }
    }
    tx.commit().map_err(sqlite(path))?;
    Ok(w)
}

fn side_name(side: pinion_strategy::OrderSide) -> &'static str {
    match side {
        pinion_strategy::OrderSide::Buy => "buy",
        pinion_strategy::OrderSide::Sell => "sell",
    }
}

/// The history's writer thread: batches in over a channel, one transaction each. See the
/// module docs.
#[derive(Debug)]
pub struct HistoryWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<Finished>>,
}

/// What the writer thread ends with: the runs it wrote (or why it stopped), and the
/// PostgreSQL copy's figures when one is kept.
type Finished = (Result<Vec<Written>, HistoryError>, Option<MirrorReport>);

impl HistoryWriter {
    /// Opens the history at `path` (here, so a bad path fails at once) and starts the writer.
    pub fn start(path: &Path) -> Result<Self, HistoryError> {
        Self::start_with(path, None)
    }

    /// [`HistoryWriter::start`], keeping a copy in PostgreSQL when `postgres` names one.
    pub fn start_with(path: &Path, postgres: Option<PgTarget>) -> Result<Self, HistoryError> {
        let mut conn = open(path)?;
        let mirror = postgres
            .map(|target| pg::Mirror::start(&conn, path, target))
            .transpose()?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("pinion-history".into())
            .spawn(move || {
                let path = thread_path.as_path();
                let mut written = Vec::new();
                let mut streamed: Option<Streamed> = None;
                let mut result = Ok(());
                for msg in rx {
                    let done = match msg {
                        Msg::Batch(batch) => {
                            write(&mut conn, path, &batch).map(|w| written.push(w))
                        }
                        Msg::Begin(begin) => {
                            Streamed::begin(&mut conn, path, begin).map(|s| streamed = Some(s))
                        }
                        Msg::Records(records) => match streamed.as_mut() {
                            Some(s) => s.apply(&mut conn, path, &records),
                            None => Ok(()),
                        },
                        Msg::Finish(batch) => match streamed.take() {
                            Some(s) => finish_streamed(&mut conn, path, &s, &batch),
                            None => write(&mut conn, path, &batch),
                        }
                        .map(|w| written.push(w)),
                    };
                    if let Some(m) = &mirror {
                        match done {
                            Ok(()) => m.committed(),
                            Err(_) => m.rolled_back(),
                        }
                    }
                    if let Err(e) = done {
                        result = Err(e);
                        break;
                    }
                }
                // The hook goes with the connection; the copy finishes what it was handed.
                drop(conn);
                let report = mirror.map(pg::Mirror::finish);
                (result.map(|()| written), report)
            })
            .map_err(|e| HistoryError::Writer(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `batch` for writing; returns at once.
    pub fn send(&self, batch: RunBatch) -> Result<(), HistoryError> {
        self.queue(Msg::Batch(batch))
    }

    fn queue(&self, msg: Msg) -> Result<(), HistoryError> {
        self.tx
            .as_ref()
            .ok_or_else(|| HistoryError::Writer("already finished".into()))?
            .send(msg)
            .map_err(|_| HistoryError::Writer("it failed on an earlier batch".into()))
    }

    /// A handle a session streams its history through while it runs (see [`stream`]).
    pub fn stream(&self) -> Option<HistoryStream> {
        self.tx.as_ref().map(|tx| HistoryStream { tx: tx.clone() })
    }

    /// Completes the run streamed so far with `batch`, its end (or writes `batch` as a whole
    /// run when nothing was streamed); returns at once.
    pub fn finish_stream(&self, batch: RunBatch) -> Result<(), HistoryError> {
        self.queue(Msg::Finish(batch))
    }

    /// Waits until every queued batch is written; what each added.
    pub fn finish(self) -> Result<Vec<Written>, HistoryError> {
        self.finish_all().0
    }

    /// [`HistoryWriter::finish`], and the PostgreSQL copy's figures when one is kept (after
    /// waiting up to its `flush_within` for it to catch up).
    pub fn finish_all(mut self) -> Finished {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            Some(Err(_)) => (
                Err(HistoryError::Writer("the writer thread panicked".into())),
                None,
            ),
            None => (Ok(Vec::new()), None),
        }
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_gains_the_positions_table() {
        let dir = std::env::temp_dir().join(format!("pinion-history-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("v1.db");
        let _ = std::fs::remove_file(&path);
        {
            let conn = Connection::open(&path).expect("create");
            let v1 = SCHEMA.replace(positions_sql!(), "");
            conn.execute_batch(&v1).expect("v1 schema");
            conn.pragma_update(None, "user_version", 1).expect("v1");
        }
        let conn = open(&path).expect("a version 1 file opens");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
            .expect("the positions table is there");
        assert_eq!(n, 0);
        drop(conn);
        query::open_read(&path).expect("and reads");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fill row of run `run`: number `seq`, `fee` and realised PnL after it; `reason` when
    /// the file has the columns.
    fn put_fill(conn: &Connection, run: i64, seq: i64, money: (&str, &str), reason: Option<&str>) {
        let (fee, realized) = money;
        let cols = "run, seq, time_ns, venue, symbol, side, price, qty, maker, fee, position,
                    realized_pnl, fees_total";
        let vals = format!(
            "{run}, {seq}, {seq}, 'binance-spot', 'BTCUSDT', 'buy', '1', '1', 1, '{fee}', '0',
             '{realized}', '0'"
        );
        let sql = match reason {
            Some(r) => {
                format!("INSERT INTO fills ({cols}, strategy, reason) VALUES ({vals}, 0, '{r}')")
            }
            None => format!("INSERT INTO fills ({cols}) VALUES ({vals})"),
        };
        conn.execute_batch(&sql).expect("a fill row");
    }

    #[test]
    fn a_version_2_file_gains_reasons_and_pnl_by_reason_adds_up() {
        let dir = std::env::temp_dir().join(format!("pinion-history-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("v2.db");
        let _ = std::fs::remove_file(&path);
        let run = "INSERT INTO runs VALUES (?1, 0, 'backtest', 'c', 'i', 0, 0, 2, 0)";
        {
            let conn = Connection::open(&path).expect("create");
            conn.execute_batch(SCHEMA).expect("v2 schema");
            conn.pragma_update(None, "user_version", 2).expect("v2");
            conn.execute(run, [1]).expect("run 1");
            put_fill(&conn, 1, 0, ("0.1", "0"), None);
            put_fill(&conn, 1, 1, ("0.1", "2.5"), None);
        }
        // Read-only, not yet migrated: the old rows read as instance 0, unknown.
        {
            let conn = query::open_read(&path).expect("a version 2 file reads");
            let fills = query::fills(&conn, &path, &query::FillFilter::default()).expect("fills");
            assert!(
                fills.iter().all(|f| f[11] == "0" && f[12] == "unknown"),
                "{fills:?}"
            );
        }
        let conn = open(&path).expect("a version 2 file opens");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        conn.execute(run, [2]).expect("run 2");
        put_fill(&conn, 2, 2, ("0.05", "0"), Some("requote"));
        put_fill(&conn, 2, 3, ("0.05", "-1.25"), Some("stop"));
        let rows = query::pnl(&conn, &path, query::PnlBy::Reason).expect("by reason");
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.fills,
                    r.realized.as_str(),
                    r.fees.as_str(),
                    r.net.as_str(),
                )
            })
            .collect();
        // Each run's realised PnL starts from zero: run 2's first fill realised nothing.
        assert_eq!(
            got,
            [
                ("s0:requote", 1, "0.00", "0.05", "-0.05"),
                ("s0:stop", 1, "-1.25", "0.05", "-1.30"),
                ("s0:unknown", 2, "2.50", "0.20", "2.30"),
            ]
        );
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fill of `run` at `seq` on BTCUSDT: `(side, price, qty, fee, account realised after)`,
    /// of instance `strategy` for `reason`.
    fn put_own_fill(
        conn: &Connection,
        run: i64,
        seq: i64,
        (side, price, qty, fee, realized): (&str, &str, &str, &str, &str),
        (strategy, reason): (u8, &str),
    ) {
        conn.execute(
            "INSERT INTO fills VALUES (?1, ?2, ?2, 'binance-spot', 'BTCUSDT', ?3, ?4, ?5, 0, ?6,
                                       '0', ?7, '0', ?8, ?9)",
            params![run, seq, side, price, qty, fee, realized, strategy, reason],
        )
        .expect("a fill row");
    }

    #[test]
    fn a_version_3_file_gains_strategy_names_and_each_instance_reckons_its_own_fills() {
        let dir = std::env::temp_dir().join(format!("pinion-history-v3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("v3.db");
        let _ = std::fs::remove_file(&path);
        let run = "INSERT INTO runs VALUES (?1, 0, 'backtest', 'c', 'i', 0, 0, 2, 0)";
        {
            let conn = Connection::open(&path).expect("create");
            conn.execute_batch(SCHEMA).expect("v2 schema");
            conn.execute_batch(REASONS_SQL).expect("v3 columns");
            conn.pragma_update(None, "user_version", 3).expect("v3");
            conn.execute(run, [1]).expect("run 1");
            put_own_fill(
                &conn,
                1,
                0,
                ("buy", "10.0", "1.0", "0.10", "0.00"),
                (0, "entry"),
            );
            put_own_fill(
                &conn,
                1,
                1,
                ("sell", "11.0", "1.0", "0.10", "1.00"),
                (0, "exit"),
            );
        }
        // Read-only, not yet migrated: the instances have no names.
        {
            let conn = query::open_read(&path).expect("a version 3 file reads");
            let rows = query::pnl(&conn, &path, query::PnlBy::Strategy).expect("by strategy");
            assert_eq!(
                rows.iter().map(query::PnlRow::cells).collect::<Vec<_>>(),
                [["s0", "0", "2", "1.00", "0.20", "-", "0.80"]]
            );
        }
        let mut conn = open(&path).expect("a version 3 file opens");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        conn.execute(run, [2]).expect("run 2");
        {
            let tx = conn.transaction().expect("tx");
            let named = |instance, name: &str, orders| RunStrategy {
                instance,
                name: name.to_owned(),
                orders,
            };
            put_strategies(
                &tx,
                &path,
                2,
                &[named(0, "maker", None), named(1, "taker", None)],
            )
            .expect("names at the start");
            // The end adds the orders and keeps the names.
            put_strategies(
                &tx,
                &path,
                2,
                &[named(0, "maker", Some(5)), named(1, "taker", Some(3))],
            )
            .expect("orders at the end");
            tx.commit().expect("commit");
        }
        // The maker buys, the taker sells: the account closes flat with 2.00 realised, while
        // each instance's own ledger holds a position and has realised nothing.
        put_own_fill(
            &conn,
            2,
            2,
            ("buy", "10.0", "1.0", "0.10", "0.00"),
            (0, "requote"),
        );
        put_own_fill(
            &conn,
            2,
            3,
            ("sell", "12.0", "1.0", "0.12", "2.00"),
            (1, "entry"),
        );
        // The operator's order is no instance's: the account's realised moved by 0.50.
        put_own_fill(
            &conn,
            2,
            4,
            ("sell", "12.5", "1.0", "0.05", "2.50"),
            (0, "manual"),
        );
        let rows = query::pnl(&conn, &path, query::PnlBy::Strategy).expect("by strategy");
        assert_eq!(
            rows.iter().map(query::PnlRow::cells).collect::<Vec<_>>(),
            [
                [
                    "(stage and operator)",
                    "0",
                    "1",
                    "0.50",
                    "0.05",
                    "-",
                    "0.45"
                ],
                ["maker", "5", "1", "0.00", "0.10", "-", "-0.10"],
                ["s0", "0", "2", "1.00", "0.20", "-", "0.80"],
                ["taker", "3", "1", "0.00", "0.12", "-", "-0.12"],
            ]
        );
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
