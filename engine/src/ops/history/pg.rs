//! The shared copy of the trade history in PostgreSQL (`[history] postgres = true`), for a team
//! that keeps one database for several engines.
//!
//! Invariants:
//! - The SQLite file stays the record; PostgreSQL holds a copy of it. Nothing waits on
//!   PostgreSQL but this module's own thread: the stages never see it, and the history's writer
//!   only hands over the names of the rows each transaction touched. A database that is down or
//!   slow delays the copy, never the file or the run.
//! - The copy is of committed rows only. SQLite's update hook on the writer's connection names
//!   each row a statement inserted, updated or deleted; after the transaction commits, the
//!   writer hands the names here. This thread reads each named row from its own read-only
//!   connection to the file (WAL: it sees committed transactions only), so a name means "the
//!   row as it is now", and a row that is gone is deleted from the copy.
//! - Every table of the file is copied, column for column, as `pinion_<table>`, with two
//!   columns before the file's own: `source` (which engine's file, `[history] source`) and
//!   `row_id` (the row's SQLite rowid), the primary key. Nothing here knows the history's
//!   schema: a column a newer pinion adds to the file is added to the copy
//!   (`ADD COLUMN IF NOT EXISTS`) when this thread connects. `pinion_sources` says, per source,
//!   which file it is, its schema version and when it was last brought up to date.
//! - At start, once connected, the whole file is compared: every row upserted, and the rows of
//!   this source that the file no longer has deleted. After that only named rows are copied.
//! - While PostgreSQL cannot be reached, names gather (one per row, however often it changes)
//!   and a connection is tried again every `retry`. At the end the writer waits up to
//!   `flush_within` for the copy to catch up and says what is left; the next start's comparison
//!   copies it.
//! - The connection string is a secret (it may hold a password): it is never printed; errors
//!   name the source, never the string. TLS, when the string asks for it (`sslmode`), verifies
//!   the server against the engine's roots and `[history] postgres_ca_file`, like every other
//!   TLS connection of the engine.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pinion_net::rustls::ClientConfig;
use postgres::types::ToSql;
use postgres::{Client, Statement};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Rows per PostgreSQL transaction, so a long comparison or backlog is copied in steps that
/// each land whole.
const CHUNK: usize = 1000;

/// Where the copy is kept and how hard to try.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    tls: ClientConfig,
    /// This engine's name in the shared database (the `source` column).
    pub source: String,
    /// Wait between connection attempts while the database cannot be reached.
    pub retry: Duration,
    /// How long the end of a run waits for the copy to catch up.
    pub flush_within: Duration,
}

impl fmt::Debug for PgTarget {
    // The connection string may hold a password: only the source and the timing are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("source", &self.source)
            .field("retry", &self.retry)
            .field("flush_within", &self.flush_within)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// A target from a libpq connection string (key/value or `postgresql://` URL form), with
    /// `tls` for a connection that asks for TLS. The error says what is wrong with the string
    /// without repeating it.
    pub fn new(
        connection: &str,
        tls: ClientConfig,
        source: String,
        retry: Duration,
        flush_within: Duration,
    ) -> Result<Self, String> {
        let mut config: postgres::Config = connection.parse().map_err(|e| {
            format!(
                "the PostgreSQL connection string is not valid: {}",
                chain(&e)
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("pinion");
        }
        Ok(Self {
            config,
            tls,
            source,
            retry,
            flush_within,
        })
    }
}

/// The TLS client config of the database connection: `roots` trusted, the server's name
/// checked, ring as the provider (as every other connection of the engine).
pub fn tls_config(roots: pinion_net::rustls::RootCertStore) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(Arc::new(
        pinion_net::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {}", chain(&e)))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// What the copy has done so far; read by the end-of-run report (and any other thread).
#[derive(Debug, Default)]
pub struct MirrorStatus {
    copied: AtomicU64,
    pending: AtomicU64,
    failures: AtomicU64,
    connected: AtomicBool,
    compared: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl MirrorStatus {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(what);
        }
    }

    /// The figures now.
    pub fn report(&self, source: &str) -> MirrorReport {
        MirrorReport {
            source: source.to_owned(),
            copied: self.copied.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            compared: self.compared.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// The copy's figures at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorReport {
    /// This engine's name in the shared database.
    pub source: String,
    /// Rows written to (or deleted from) the copy.
    pub copied: u64,
    /// Rows changed in the file and not yet in the copy.
    pub pending: u64,
    /// Failed connection attempts and failed transactions.
    pub failures: u64,
    /// Whether the database was connected at the end.
    pub connected: bool,
    /// Whether the start-up comparison of the whole file was done.
    pub compared: bool,
    /// The last failure, as the database or the network said it.
    pub last_error: Option<String>,
}

impl MirrorReport {
    /// Whether the copy equals the file.
    pub fn caught_up(&self) -> bool {
        self.compared && self.pending == 0
    }
}

impl fmt::Display for MirrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.caught_up() {
            write!(
                f,
                "PostgreSQL copy (source {:?}) up to date: {} rows copied",
                self.source, self.copied
            )
        } else {
            write!(
                f,
                "PostgreSQL copy (source {:?}) behind: {} rows copied, {} changed rows not \
                 copied{}, {} failures{}; the next start copies them",
                self.source,
                self.copied,
                self.pending,
                if self.compared {
                    ""
                } else {
                    ", start-up comparison not done"
                },
                self.failures,
                self.last_error
                    .as_deref()
                    .map(|e| format!(", last: {e}"))
                    .unwrap_or_default()
            )
        }
    }
}

/// Row names a transaction touched, as the update hook saw them (table, rowid).
type Touched = Arc<Mutex<Vec<(String, i64)>>>;

/// The writer's end of the copy: installs the hook, hands over names after each commit.
#[derive(Debug)]
pub(super) struct Mirror {
    touched: Touched,
    tx: Option<mpsc::Sender<Vec<(String, i64)>>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<MirrorStatus>,
    source: String,
}

impl Mirror {
    /// Starts copying the file at `path`, whose writer connection is `conn`.
    pub(super) fn start(
        conn: &Connection,
        path: &Path,
        target: PgTarget,
    ) -> Result<Self, super::HistoryError> {
        let touched: Touched = Arc::default();
        let hook = Arc::clone(&touched);
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, rowid: i64| {
                if let Ok(mut t) = hook.lock() {
                    t.push((table.to_owned(), rowid));
                }
            },
        ));
        // What the writer touched before this (schema set-up) is in the comparison.
        if let Ok(mut t) = touched.lock() {
            t.clear();
        }
        let status = Arc::new(MirrorStatus::default());
        let (tx, rx) = mpsc::channel();
        let source = target.source.clone();
        let thread = {
            let status = Arc::clone(&status);
            let path = path.to_path_buf();
            std::thread::Builder::new()
                .name("pinion-history-pg".into())
                .spawn(move || Copier::new(target, path, status).run(&rx))
                .map_err(|e| super::HistoryError::Writer(e.to_string()))?
        };
        Ok(Self {
            touched,
            tx: Some(tx),
            thread: Some(thread),
            status,
            source,
        })
    }

    /// A transaction committed: hands its rows' names over.
    pub(super) fn committed(&self) {
        let names = match self.touched.lock() {
            Ok(mut t) if !t.is_empty() => std::mem::take(&mut *t),
            _ => return,
        };
        if let Some(tx) = &self.tx {
            let _ = tx.send(names);
        }
    }

    /// A transaction failed: what it touched is not in the file.
    pub(super) fn rolled_back(&self) {
        if let Ok(mut t) = self.touched.lock() {
            t.clear();
        }
    }

    /// Stops: waits (up to the target's `flush_within`) for the copy to catch up; its figures.
    pub(super) fn finish(mut self) -> MirrorReport {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status.report(&self.source)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A column's kind in the copy, from the file's declared type (SQLite's affinity rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    fn of(declared: &str) -> Self {
        let d = declared.to_ascii_uppercase();
        if d.contains("INT") {
            Self::Int
        } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
            Self::Text
        } else if d.contains("BLOB") || d.is_empty() {
            Self::Blob
        } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
            Self::Real
        } else {
            Self::Text
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Int => "BIGINT",
            Self::Real => "DOUBLE PRECISION",
            Self::Text => "TEXT",
            Self::Blob => "BYTEA",
        }
    }
}

#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
}

impl Table {
    fn copy_name(&self) -> String {
        ident(&format!("pinion_{}", self.name))
    }
}

/// An error with its causes, `a: b: c` (the client's top-level message alone, "error
/// performing TLS handshake", does not say that the certificate was refused).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The file's tables and their columns, in order.
fn tables(db: &Connection) -> rusqlite::Result<Vec<Table>> {
    let names: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|name| {
            let columns = db
                .prepare(&format!("PRAGMA table_info({})", ident(&name)))?
                .query_map([], |r| {
                    Ok((r.get::<_, String>(1)?, Kind::of(&r.get::<_, String>(2)?)))
                })?
                .collect::<Result<_, _>>()?;
            Ok(Table { name, columns })
        })
        .collect()
}

/// One SQLite value as a parameter of the copy's column of kind `kind`, or `None` when it
/// cannot be one (a text in an integer column that is not a number, say).
fn param(value: Value, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    Some(match (kind, value) {
        (Kind::Int, Value::Null) => Box::new(None::<i64>),
        (Kind::Int, Value::Integer(i)) => Box::new(i),
        (Kind::Int, Value::Text(s)) => Box::new(s.trim().parse::<i64>().ok()?),
        (Kind::Real, Value::Null) => Box::new(None::<f64>),
        (Kind::Real, Value::Real(f)) => Box::new(f),
        #[allow(clippy::cast_precision_loss)] // what SQLite itself does for a REAL column
        (Kind::Real, Value::Integer(i)) => Box::new(i as f64),
        (Kind::Real, Value::Text(s)) => Box::new(s.trim().parse::<f64>().ok()?),
        (Kind::Text, Value::Null) => Box::new(None::<String>),
        (Kind::Text, Value::Text(s)) => Box::new(s),
        (Kind::Text, Value::Integer(i)) => Box::new(i.to_string()),
        (Kind::Text, Value::Real(f)) => Box::new(f.to_string()),
        (Kind::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (Kind::Blob, Value::Blob(b)) => Box::new(b),
        (Kind::Blob, Value::Text(s)) => Box::new(s.into_bytes()),
        _ => return None,
    })
}

/// Prepared statements of one table, on one connection.
struct Prepared {
    upsert: Statement,
    delete: Statement,
}

/// The copying thread's state.
struct Copier {
    target: PgTarget,
    path: PathBuf,
    status: Arc<MirrorStatus>,
    tables: Vec<Table>,
    pending: BTreeSet<(String, i64)>,
    compared: bool,
}

impl Copier {
    fn new(target: PgTarget, path: PathBuf, status: Arc<MirrorStatus>) -> Self {
        Self {
            target,
            path,
            status,
            tables: Vec::new(),
            pending: BTreeSet::new(),
            compared: false,
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Vec<(String, i64)>>) {
        let db = match Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|db| {
            db.busy_timeout(Duration::from_secs(5))?;
            Ok(db)
        }) {
            Ok(db) => db,
            Err(e) => {
                self.status
                    .fail(format!("reading {}: {e}", self.path.display()));
                return;
            }
        };
        let mut client: Option<(Client, Vec<Prepared>)> = None;
        let mut next_try = Instant::now();
        let mut open = true;
        let mut deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wait = match (&client, deadline) {
                (_, Some(_)) | (None, _) => next_try.saturating_duration_since(now),
                (Some(_), None) => Duration::from_secs(1),
            }
            .max(Duration::from_millis(if deadline.is_some() {
                20
            } else {
                1
            }));
            if open {
                match rx.recv_timeout(wait) {
                    Ok(names) => self.pending.extend(names),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
                }
                while let Ok(names) = rx.try_recv() {
                    self.pending.extend(names);
                }
            } else {
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            }
            if !open && deadline.is_none() {
                deadline = Some(Instant::now() + self.target.flush_within);
            }
            if client.is_none() && Instant::now() >= next_try {
                match self.connect(&db) {
                    Ok(c) => {
                        self.status.connected.store(true, Ordering::Relaxed);
                        client = Some(c);
                    }
                    Err(e) => {
                        self.status.fail(e);
                        next_try = Instant::now() + self.target.retry;
                    }
                }
            }
            if let Some((c, prepared)) = client.as_mut() {
                let done = if self.compared {
                    Ok(())
                } else {
                    self.compare(c, prepared, &db)
                }
                .and_then(|()| self.flush(c, prepared, &db));
                if let Err(e) = done {
                    self.status.fail(e);
                    client = None;
                    next_try = Instant::now() + self.target.retry;
                }
            }
            self.status
                .pending
                .store(self.pending.len() as u64, Ordering::Relaxed);
            if let Some(d) = deadline
                && ((self.compared && self.pending.is_empty()) || Instant::now() >= d)
            {
                break;
            }
        }
    }

    /// Connects, makes the copy's tables (and any column they lack), prepares the statements.
    fn connect(&mut self, db: &Connection) -> Result<(Client, Vec<Prepared>), String> {
        self.tables =
            tables(db).map_err(|e| format!("reading the file's schema: {}", chain(&e)))?;
        // TLS over a Unix socket means nothing (libpq ignores sslmode there too), and the
        // rustls connector would need a server name the socket does not have.
        let local = self
            .target
            .config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, postgres::config::Host::Unix(_)));
        let mut c = if local {
            self.target.config.connect(postgres::NoTls)
        } else {
            let tls = MakeRustlsConnect::new(self.target.tls.clone());
            self.target.config.connect(tls)
        }
        .map_err(|e| format!("connecting: {}", chain(&e)))?;
        let mut ddl = String::from(
            "SELECT pg_advisory_xact_lock(7262694);
             CREATE TABLE IF NOT EXISTS pinion_sources (
                 source TEXT PRIMARY KEY,
                 history TEXT NOT NULL,
                 schema_version BIGINT NOT NULL,
                 synced_unix_ns BIGINT NOT NULL
             );",
        );
        for t in &self.tables {
            let name = t.copy_name();
            ddl.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {name} (source TEXT NOT NULL, row_id BIGINT NOT NULL,
                     PRIMARY KEY (source, row_id));"
            ));
            for (col, kind) in &t.columns {
                ddl.push_str(&format!(
                    "ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {} {};",
                    ident(col),
                    kind.sql()
                ));
            }
        }
        let mut tx = c
            .transaction()
            .map_err(|e| format!("schema: {}", chain(&e)))?;
        tx.batch_execute(&ddl)
            .map_err(|e| format!("making the copy's tables: {}", chain(&e)))?;
        tx.commit().map_err(|e| format!("schema: {}", chain(&e)))?;
        let mut prepared = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            let name = t.copy_name();
            let cols: Vec<String> = t.columns.iter().map(|(c, _)| ident(c)).collect();
            let values: Vec<String> = (1..=cols.len() + 2).map(|i| format!("${i}")).collect();
            let set: Vec<String> = cols.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
            let upsert = format!(
                "INSERT INTO {name} (source, row_id{}{}) VALUES ({}) ON CONFLICT (source, row_id) \
                 DO {}",
                if cols.is_empty() { "" } else { ", " },
                cols.join(", "),
                values.join(", "),
                if set.is_empty() {
                    "NOTHING".to_owned()
                } else {
                    format!("UPDATE SET {}", set.join(", "))
                }
            );
            prepared.push(Prepared {
                upsert: c
                    .prepare(&upsert)
                    .map_err(|e| format!("preparing {name}: {}", chain(&e)))?,
                delete: c
                    .prepare(&format!(
                        "DELETE FROM {name} WHERE source = $1 AND row_id = $2"
                    ))
                    .map_err(|e| format!("preparing {name}: {}", chain(&e)))?,
            });
        }
        Ok((c, prepared))
    }

    /// Upserts every row of the file, then deletes this source's rows the file lacks.
    fn compare(
        &mut self,
        c: &mut Client,
        prepared: &[Prepared],
        db: &Connection,
    ) -> Result<(), String> {
        for (ti, t) in self.tables.iter().enumerate() {
            let mut kept: Vec<i64> = Vec::new();
            let mut after = i64::MIN;
            loop {
                let rows =
                    read_after(db, t, after).map_err(|e| format!("reading {}: {e}", t.name))?;
                let Some(&(last, _)) = rows.last() else { break };
                after = last;
                let n = rows.len() as u64;
                let mut tx = c
                    .transaction()
                    .map_err(|e| format!("copying: {}", chain(&e)))?;
                for (rowid, values) in rows {
                    kept.push(rowid);
                    upsert(
                        &mut tx,
                        &prepared[ti],
                        &self.target.source,
                        t,
                        rowid,
                        values,
                    )?;
                }
                tx.commit()
                    .map_err(|e| format!("copying {}: {e}", t.name))?;
                self.status.copied.fetch_add(n, Ordering::Relaxed);
            }
            let gone = c
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE source = $1 AND NOT (row_id = ANY($2))",
                        t.copy_name()
                    ),
                    &[&self.target.source, &kept],
                )
                .map_err(|e| format!("pruning {}: {}", t.name, chain(&e)))?;
            self.status.copied.fetch_add(gone, Ordering::Relaxed);
        }
        self.compared = true;
        self.status.compared.store(true, Ordering::Relaxed);
        self.mark(c, db)
    }

    /// Copies the named rows as they are now, a chunk per transaction.
    fn flush(
        &mut self,
        c: &mut Client,
        prepared: &[Prepared],
        db: &Connection,
    ) -> Result<(), String> {
        while !self.pending.is_empty() {
            let chunk: Vec<(String, i64)> = self.pending.iter().take(CHUNK).cloned().collect();
            let mut tx = c
                .transaction()
                .map_err(|e| format!("copying: {}", chain(&e)))?;
            for (table, rowid) in &chunk {
                // A table the file did not have when this connection was made: the next
                // connection's schema has it.
                let Some(ti) = self.tables.iter().position(|t| &t.name == table) else {
                    return Err(format!("table {table} appeared in the file; reconnecting"));
                };
                let t = &self.tables[ti];
                match read_one(db, t, *rowid)
                    .map_err(|e| format!("reading {table}: {}", chain(&e)))?
                {
                    Some(values) => {
                        upsert(
                            &mut tx,
                            &prepared[ti],
                            &self.target.source,
                            t,
                            *rowid,
                            values,
                        )?;
                    }
                    None => {
                        tx.execute(&prepared[ti].delete, &[&self.target.source, rowid])
                            .map_err(|e| format!("deleting from {table}: {}", chain(&e)))?;
                    }
                }
            }
            tx.commit().map_err(|e| format!("copying: {}", chain(&e)))?;
            for key in &chunk {
                self.pending.remove(key);
            }
            self.status
                .copied
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            self.mark(c, db)?;
        }
        Ok(())
    }

    /// Records in `pinion_sources` that this source is up to date as of now.
    fn mark(&self, c: &mut Client, db: &Connection) -> Result<(), String> {
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| format!("reading the schema version: {}", chain(&e)))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let history = self.path.display().to_string();
        c.execute(
            "INSERT INTO pinion_sources VALUES ($1, $2, $3, $4) ON CONFLICT (source) DO UPDATE
             SET history = EXCLUDED.history, schema_version = EXCLUDED.schema_version,
                 synced_unix_ns = EXCLUDED.synced_unix_ns",
            &[&self.target.source, &history, &version, &now],
        )
        .map_err(|e| format!("marking the source: {}", chain(&e)))?;
        Ok(())
    }
}

fn upsert(
    tx: &mut postgres::Transaction<'_>,
    prepared: &Prepared,
    source: &str,
    t: &Table,
    rowid: i64,
    values: Vec<Value>,
) -> Result<(), String> {
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(values.len() + 2);
    params.push(Box::new(source.to_owned()));
    params.push(Box::new(rowid));
    for (v, (col, kind)) in values.into_iter().zip(&t.columns) {
        params.push(param(v, *kind).ok_or_else(|| {
            format!(
                "{}.{col} of row {rowid} is not a {} value",
                t.name,
                kind.sql()
            )
        })?);
    }
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
    tx.execute(&prepared.upsert, &refs)
        .map_err(|e| format!("copying into {}: {e}", t.name))?;
    Ok(())
}

/// Up to [`CHUNK`] rows of `t` after rowid `after`, in rowid order.
fn read_after(db: &Connection, t: &Table, after: i64) -> rusqlite::Result<Vec<(i64, Vec<Value>)>> {
    let n = t.columns.len();
    let mut stmt = db.prepare_cached(&format!(
        "SELECT rowid, * FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT {CHUNK}",
        ident(&t.name)
    ))?;
    stmt.query_map(params![after], |r| {
        let values = (1..=n)
            .map(|i| r.get::<_, Value>(i))
            .collect::<Result<_, _>>()?;
        Ok((r.get(0)?, values))
    })?
    .collect()
}

/// Row `rowid` of `t` as it is now, or `None` when it is gone.
fn read_one(db: &Connection, t: &Table, rowid: i64) -> rusqlite::Result<Option<Vec<Value>>> {
    let n = t.columns.len();
    let mut stmt = db.prepare_cached(&format!(
        "SELECT * FROM {} WHERE rowid = ?1",
        ident(&t.name)
    ))?;
    let mut rows = stmt.query(params![rowid])?;
    match rows.next()? {
        Some(r) => Ok(Some(
            (0..n)
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<_, _>>()?,
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_kinds_follow_sqlite_affinity() {
        assert_eq!(Kind::of("INTEGER"), Kind::Int);
        assert_eq!(Kind::of("bigint"), Kind::Int);
        assert_eq!(Kind::of("TEXT"), Kind::Text);
        assert_eq!(Kind::of("VARCHAR(10)"), Kind::Text);
        assert_eq!(Kind::of("REAL"), Kind::Real);
        assert_eq!(Kind::of("DOUBLE"), Kind::Real);
        assert_eq!(Kind::of("BLOB"), Kind::Blob);
        assert_eq!(Kind::of(""), Kind::Blob);
        assert_eq!(Kind::of("NUMERIC"), Kind::Text);
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_refused() {
        assert!(param(Value::Text("12".into()), Kind::Int).is_some());
        assert!(param(Value::Text("twelve".into()), Kind::Int).is_none());
        assert!(param(Value::Blob(vec![1]), Kind::Int).is_none());
        assert!(param(Value::Integer(3), Kind::Text).is_some());
        assert!(param(Value::Null, Kind::Blob).is_some());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("fills"), "\"fills\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_connection_string_is_never_shown() {
        let tls = tls_config(pinion_net::rustls::RootCertStore::empty()).expect("tls");
        let t = PgTarget::new(
            "host=db.example user=desk password=hunter2secret dbname=trades",
            tls.clone(),
            "desk-1".into(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .expect("valid");
        assert!(!format!("{t:?}").contains("hunter2secret"));
        let e = PgTarget::new(
            "host=db password=hunter2secret sslmode=sometimes",
            tls,
            "desk-1".into(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .expect_err("a bad sslmode");
        assert!(!e.contains("hunter2secret"), "{e}");
    }
}
