//! Reading the history back for `pinion history`: the fills in a time range or of one
//! instrument, and the PnL summed by day or by instrument, as a table or as CSV. Sums are done
//! here in exact integers (each instrument's money brought to the finest decimals among those
//! summed), not by SQLite.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{HistoryError, SCHEMA_VERSION, sqlite};

mod by_strategy;

use crate::pipeline::scaled_decimal;
pub use by_strategy::{STAGE_ROW, pnl_by_strategy};

/// Opens the history at `path` for reading only; it must exist and have a schema this pinion
/// reads.
pub fn open_read(path: &Path) -> Result<Connection, HistoryError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if found == 0 {
        return Err(HistoryError::NotHistory {
            path: path.to_path_buf(),
        });
    }
    // Version 1 lacks the positions table, which nothing here reads, and versions 1 and 2 the
    // reasons, which read as instance 0, `unknown` (see `has_reasons`).
    if found > SCHEMA_VERSION {
        return Err(HistoryError::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(conn)
}

/// Whether the file has the reason columns (version 3 on); an older file opened read-only is
/// not migrated, and its rows read as instance 0, `unknown`.
fn has_reasons(conn: &Connection, path: &Path) -> Result<bool, HistoryError> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    Ok(v >= 3)
}

/// The columns naming a row's reason: the real ones, or their defaults in a file from before.
fn reason_columns(conn: &Connection, path: &Path) -> Result<&'static str, HistoryError> {
    Ok(if has_reasons(conn, path)? {
        "strategy, reason"
    } else {
        "0, 'unknown'"
    })
}

/// Which fills to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillFilter {
    /// From this time on (ns since the Unix epoch, inclusive).
    pub from_ns: Option<u64>,
    /// Before this time (exclusive).
    pub to_ns: Option<u64>,
    /// Only this symbol.
    pub symbol: Option<String>,
}

/// The columns of a fill, as in `fills.csv`.
pub const FILL_COLUMNS: [&str; 13] = [
    "time_ns",
    "venue",
    "symbol",
    "side",
    "price",
    "qty",
    "maker",
    "fee",
    "position",
    "realized_pnl",
    "fees_total",
    "strategy",
    "reason",
];

/// The fills `filter` picks, run by run in the order they were applied; each row's cells in
/// [`FILL_COLUMNS`] order.
pub fn fills(
    conn: &Connection,
    path: &Path,
    filter: &FillFilter,
) -> Result<Vec<[String; 13]>, HistoryError> {
    let as_int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT time_ns, venue, symbol, side, price, qty, maker, fee, position, realized_pnl,
                fees_total, {}
         FROM fills
         WHERE (?1 IS NULL OR time_ns >= ?1) AND (?2 IS NULL OR time_ns < ?2)
           AND (?3 IS NULL OR symbol = ?3)
         ORDER BY run, seq",
        reason_columns(conn, path)?
    );
    let mut stmt = conn.prepare(&sql).map_err(sqlite(path))?;
    let rows = stmt
        .query_map(
            rusqlite::params![as_int(filter.from_ns), as_int(filter.to_ns), filter.symbol],
            |r| {
                Ok([
                    r.get::<_, i64>(0)?.to_string(),
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get::<_, bool>(6)?.to_string(),
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get::<_, i64>(11)?.to_string(),
                    r.get(12)?,
                ])
            },
        )
        .map_err(sqlite(path))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite(path))
}

/// How `pinion history pnl` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PnlBy {
    /// One row per UTC day, every instrument summed.
    Day,
    /// One row per instrument, every day summed.
    Instrument,
    /// One row per strategy instance and reason code (`s0:requote`), from the fills: realised
    /// PnL is what each fill changed the realised PnL by, so the rows add up to the realised
    /// PnL and fees of every fill; unrealised PnL belongs to no reason (`-`).
    Reason,
    /// One row per strategy instance, named as its run's `strategies` rows name it (`s0`, `s1`
    /// where none does), every run and instrument summed: the orders it decided, its fills,
    /// and the realised PnL and fees of its own fills, reckoned per run and instrument on its
    /// own average cost (as the report's `by_strategy`), so two instances trading against
    /// each other's inventory each show their own. Fills of the stage's closing orders and the
    /// operator's (reasons stop, take_profit, trailing, flatten, derisk, manual) are no
    /// instance's: they are the row `(stage and operator)`, their realised PnL what each
    /// changed the account's by. Unrealised PnL is not reckoned (`-`). An inverse contract's
    /// fills (money not in price × quantity units) count in orders, fills and fees, their
    /// realised PnL is not reckoned here and its rows read `-`.
    Strategy,
}

/// One row of `pinion history pnl`: exact decimal strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnlRow {
    /// The day (`2025-12-05`), the instrument (`binance-spot BTCUSDT`), the reason
    /// (`s0:requote`) or the strategy instance's name.
    pub key: String,
    /// Orders decided ([`PnlBy::Strategy`] only).
    pub orders: Option<u64>,
    /// Fills.
    pub fills: u64,
    /// Realised PnL, gross of fees.
    pub realized: String,
    /// Fees.
    pub fees: String,
    /// Change of unrealised PnL.
    pub unrealized: String,
    /// Net PnL.
    pub net: String,
}

/// The columns of a [`PnlRow`] after its key.
pub const PNL_COLUMNS: [&str; 5] = ["fills", "realized_pnl", "fees", "unrealized_pnl", "net_pnl"];

/// `text`, an exact decimal as the history writes money (`-12.5`), as an integer and its
/// decimals; `None` when it is not one.
fn parse_money(text: &str) -> Option<(i128, u8)> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let decimals = u8::try_from(frac.len()).ok()?;
    let v: i128 = format!("{int}{frac}").parse().ok()?;
    Some((if neg { -v } else { v }, decimals))
}

/// The PnL of every fill in the file by strategy instance and reason code (see
/// [`PnlBy::Reason`]).
pub fn pnl_by_reason(conn: &Connection, path: &Path) -> Result<Vec<PnlRow>, HistoryError> {
    let sql = format!(
        "SELECT run, venue, symbol, fee, realized_pnl, {} FROM fills ORDER BY run, seq",
        reason_columns(conn, path)?
    );
    let mut stmt = conn.prepare(&sql).map_err(sqlite(path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                (
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ),
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                format!("s{}:{}", r.get::<_, i64>(5)?, r.get::<_, String>(6)?),
            ))
        })
        .map_err(sqlite(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite(path))?;
    let money = |what: &'static str, text: &str| {
        parse_money(text).ok_or_else(|| HistoryError::BadRow {
            path: path.to_path_buf(),
            what: format!("a fill's {what} {text:?} is not a decimal"),
        })
    };
    // Every amount at the finest decimals found.
    let mut parsed = Vec::with_capacity(rows.len());
    let mut decimals = 0u8;
    for (account, fee, realized, key) in rows {
        let (fee, realized) = (money("fee", &fee)?, money("realized_pnl", &realized)?);
        decimals = decimals.max(fee.1).max(realized.1);
        parsed.push((account, fee, realized, key));
    }
    let at = |(v, d): (i128, u8)| v * 10i128.pow(u32::from(decimals - d));
    // The realised PnL after the last fill of each run's instrument.
    let mut last: BTreeMap<(i64, String, String), i128> = BTreeMap::new();
    let mut groups: BTreeMap<String, (u64, i128, i128)> = BTreeMap::new();
    for (account, fee, realized, key) in parsed {
        let realized = at(realized);
        let before = last.insert(account, realized).unwrap_or(0);
        let g = groups.entry(key).or_default();
        g.0 += 1;
        g.1 += realized - before;
        g.2 += at(fee);
    }
    Ok(groups
        .into_iter()
        .map(|(key, (fills, realized, fees))| PnlRow {
            key,
            orders: None,
            fills,
            realized: scaled_decimal(realized, decimals),
            fees: scaled_decimal(fees, decimals),
            unrealized: "-".to_owned(),
            net: scaled_decimal(realized - fees, decimals),
        })
        .collect())
}

/// The PnL of every run in the file, grouped `by`.
pub fn pnl(conn: &Connection, path: &Path, by: PnlBy) -> Result<Vec<PnlRow>, HistoryError> {
    match by {
        PnlBy::Reason => return pnl_by_reason(conn, path),
        PnlBy::Strategy => return pnl_by_strategy(conn, path),
        PnlBy::Day | PnlBy::Instrument => {}
    }
    let mut stmt = conn
        .prepare(
            "SELECT day, venue, symbol, money_decimals, fills, realized, fees, unrealized, net
             FROM daily_pnl",
        )
        .map_err(sqlite(path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u8>(3)?,
                r.get::<_, i64>(4)?,
                [r.get::<_, i64>(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
            ))
        })
        .map_err(sqlite(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite(path))?;
    let decimals = rows.iter().map(|r| r.3).max().unwrap_or(0);
    // Per key: fills and the four money sums at `decimals`.
    let mut groups: BTreeMap<String, (u64, [i128; 4])> = BTreeMap::new();
    for (day, venue, symbol, md, fills, money) in rows {
        let key = match by {
            PnlBy::Day => day,
            PnlBy::Instrument | PnlBy::Reason | PnlBy::Strategy => format!("{venue} {symbol}"),
        };
        let scale = 10i128.pow(u32::from(decimals.saturating_sub(md)));
        let g = groups.entry(key).or_default();
        g.0 += u64::try_from(fills).unwrap_or(0);
        for (sum, v) in g.1.iter_mut().zip(money) {
            *sum += i128::from(v) * scale;
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, (fills, m))| PnlRow {
            key,
            orders: None,
            fills,
            realized: scaled_decimal(m[0], decimals),
            fees: scaled_decimal(m[1], decimals),
            unrealized: scaled_decimal(m[2], decimals),
            net: scaled_decimal(m[3], decimals),
        })
        .collect())
}

/// `cells` as one CSV line; a cell with a comma, quote or line break is quoted.
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        if i > 0 {
            line.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            let _ = write!(line, "\"{}\"", c.replace('"', "\"\""));
        } else {
            line.push_str(c);
        }
    }
    line.push('\n');
    line
}

/// `header` and `rows` as a table with right-aligned columns.
pub fn table<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.as_ref().chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (w, c) in widths.iter().zip(cells) {
            let _ = write!(l, "{c:>w$}  ");
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(AsRef::as_ref));
    }
    s
}

impl PnlRow {
    /// The row's cells, key first and then its orders when it has them, as [`pnl_columns`]
    /// names them.
    pub fn cells(&self) -> Vec<String> {
        let orders = self.orders.map(|n| n.to_string());
        std::iter::once(self.key.clone())
            .chain(orders)
            .chain([
                self.fills.to_string(),
                self.realized.clone(),
                self.fees.clone(),
                self.unrealized.clone(),
                self.net.clone(),
            ])
            .collect()
    }
}

/// The columns of `pinion history pnl --by by`, the key's first.
pub fn pnl_columns(by: PnlBy) -> Vec<&'static str> {
    let key = match by {
        PnlBy::Day => "day",
        PnlBy::Instrument => "instrument",
        PnlBy::Reason => "reason",
        PnlBy::Strategy => "strategy",
    };
    let orders = (by == PnlBy::Strategy).then_some("orders");
    std::iter::once(key)
        .chain(orders)
        .chain(PNL_COLUMNS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(
            csv_line(&["a", "b,c", "say \"x\""]),
            "a,\"b,c\",\"say \"\"x\"\"\"\n"
        );
    }

    #[test]
    fn money_parses_exactly_or_not_at_all() {
        assert_eq!(parse_money("-12.50"), Some((-1250, 2)));
        assert_eq!(parse_money("7"), Some((7, 0)));
        assert_eq!(parse_money("0.00000001"), Some((1, 8)));
        assert_eq!(parse_money(""), None);
        assert_eq!(parse_money("1e5"), None);
        assert_eq!(parse_money("-.5"), None);
    }

    #[test]
    fn tables_align_right() {
        let t = table(&["day", "net"], &[vec!["2025-12-05", "-1.5"]]);
        assert_eq!(t, "       day   net\n2025-12-05  -1.5\n");
    }
}
