//! `pinion history pnl --by strategy`: each strategy instance's orders, fills, and its own
//! fills' realised PnL and fees, reckoned on its own average cost per run and instrument (see
//! [`super::PnlBy::Strategy`]).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;

use super::{PnlRow, parse_money, reason_columns};
use crate::ops::history::{HistoryError, sqlite};
use crate::pipeline::scaled_decimal;

/// The name of the [`super::PnlBy::Strategy`] row of the fills no instance owns.
pub const STAGE_ROW: &str = "(stage and operator)";

/// Whether reason code `name` is one of the stage's or the operator's orders, which belong to
/// no strategy instance.
fn stage_reason(name: &str) -> bool {
    use pinion_strategy::ReasonCode as R;
    [
        R::Stop,
        R::TakeProfit,
        R::Trailing,
        R::Flatten,
        R::DeRisk,
        R::Manual,
        R::Kill,
        R::CancelAll,
        R::Shutdown,
        R::Restart,
    ]
    .iter()
    .any(|c| c.name() == name)
}

/// A run's instance numbers and their names and orders, from its `strategies` rows (none in a
/// file from before version 4).
type Names = BTreeMap<(i64, i64), (String, Option<u64>)>;

fn strategy_names(conn: &Connection, path: &Path) -> Result<Names, HistoryError> {
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if v < 4 {
        return Ok(Names::new());
    }
    let mut stmt = conn
        .prepare("SELECT run, instance, name, orders FROM strategies")
        .map_err(sqlite(path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                (r.get::<_, i64>(0)?, r.get::<_, i64>(1)?),
                (
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?
                        .map(|n| u64::try_from(n).unwrap_or(0)),
                ),
            ))
        })
        .map_err(sqlite(path))?
        .collect::<Result<Names, _>>()
        .map_err(sqlite(path))?;
    Ok(rows)
}

/// An instance's own ledger's place: its row's key, the run, the venue and the symbol.
type LedgerKey = (String, i64, String, String);

/// One group of [`pnl_by_strategy`]: orders, fills, realised PnL (and its decimals), fees.
#[derive(Debug, Default)]
struct StrategySums {
    orders: u64,
    fills: u64,
    /// `None` once a fill of an inverse contract is in.
    realized: Option<Vec<(i128, u8)>>,
    fees: Vec<(i128, u8)>,
}

/// The PnL of every fill in the file by strategy instance (see [`super::PnlBy::Strategy`]).
pub fn pnl_by_strategy(conn: &Connection, path: &Path) -> Result<Vec<PnlRow>, HistoryError> {
    let names = strategy_names(conn, path)?;
    let name = |run: i64, instance: i64| {
        names
            .get(&(run, instance))
            .map_or_else(|| format!("s{instance}"), |(n, _)| n.clone())
    };
    let sql = format!(
        "SELECT run, venue, symbol, side, price, qty, fee, realized_pnl, {} FROM fills
         ORDER BY run, seq",
        reason_columns(conn, path)?
    );
    let mut stmt = conn.prepare(&sql).map_err(sqlite(path))?;
    type FillRow = (
        i64,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
        String,
    );
    let rows: Vec<FillRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .map_err(sqlite(path))?
        .collect::<Result<_, _>>()
        .map_err(sqlite(path))?;
    let bad = |what: &str, text: &str| HistoryError::BadRow {
        path: path.to_path_buf(),
        what: format!("a fill's {what} {text:?} is not what pinion writes"),
    };
    let money = |what: &str, text: &str| parse_money(text).ok_or_else(|| bad(what, text));
    // Each instance's own ledger per run and instrument, and its money decimals (`None`: an
    // inverse contract's, not reckoned here).
    let mut ledgers: BTreeMap<LedgerKey, (pinion_strategy::Position, Option<u8>)> = BTreeMap::new();
    // The account's realised PnL after the last fill of each run's instrument.
    let mut account: BTreeMap<(i64, String, String), (i128, u8)> = BTreeMap::new();
    let mut groups: BTreeMap<String, StrategySums> = BTreeMap::new();
    for (run, venue, symbol, side, price, qty, fee, realized, instance, reason) in rows {
        let (px, pd) = money("price", &price)?;
        let (q, qd) = money("qty", &qty)?;
        let fee = money("fee", &fee)?;
        let realized = money("realized_pnl", &realized)?;
        let side = match side.as_str() {
            "buy" => pinion_strategy::OrderSide::Buy,
            "sell" => pinion_strategy::OrderSide::Sell,
            other => return Err(bad("side", other)),
        };
        let (Ok(px), Ok(q)) = (i64::try_from(px), i64::try_from(q)) else {
            return Err(bad("price or quantity", &format!("{price} {qty}")));
        };
        let before = account.insert((run, venue.clone(), symbol.clone()), realized);
        let stage = stage_reason(&reason);
        let key = if stage {
            STAGE_ROW.to_owned()
        } else {
            name(run, instance)
        };
        let g = groups.entry(key.clone()).or_insert_with(|| StrategySums {
            realized: Some(Vec::new()),
            ..StrategySums::default()
        });
        g.fills += 1;
        g.fees.push(fee);
        if stage {
            // What the fill changed the account's realised PnL by.
            let (b, bd) = before.unwrap_or((0, realized.1));
            let d = realized.1.max(bd);
            let at = |(v, vd): (i128, u8)| v * 10i128.pow(u32::from(d - vd));
            if let Some(r) = g.realized.as_mut() {
                r.push((at(realized) - at((b, bd)), d));
            }
            continue;
        }
        // The money of a linear instrument is in price × quantity units.
        let linear = fee.1 == pd.saturating_add(qd) && realized.1 == fee.1;
        let ledger = ledgers.entry((key, run, venue, symbol)).or_insert_with(|| {
            (
                pinion_strategy::Position::new(),
                Some(pd.saturating_add(qd)),
            )
        });
        if !linear {
            ledger.1 = None;
        }
        ledger
            .0
            .apply_fill(side, pinion_core::Px(px), pinion_core::Qty(q));
    }
    for ((key, ..), (ledger, decimals)) in ledgers {
        if let Some(g) = groups.get_mut(&key) {
            match (decimals, g.realized.as_mut()) {
                (Some(d), Some(r)) => r.push((ledger.realized(), d)),
                _ => g.realized = None,
            }
        }
    }
    // Orders: as each run's end recorded them; a run that has not ended (or a file from
    // before) counts its order rows of the instance instead.
    let mut counted: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    {
        let sql = format!(
            "SELECT run, {}, count(*) FROM orders GROUP BY 1, 2, 3",
            reason_columns(conn, path)?
        );
        let mut stmt = conn.prepare(&sql).map_err(sqlite(path))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sqlite(path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite(path))?;
        for (run, instance, reason, n) in rows {
            if !stage_reason(&reason) {
                *counted.entry((run, instance)).or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
    }
    let mut instances: BTreeMap<(i64, i64), u64> = counted.clone();
    for (&k, (_, recorded)) in &names {
        if let Some(n) = recorded {
            instances.insert(k, *n);
        } else {
            instances.entry(k).or_insert(0);
        }
    }
    for ((run, instance), n) in instances {
        groups
            .entry(name(run, instance))
            .or_insert_with(|| StrategySums {
                realized: Some(Vec::new()),
                ..StrategySums::default()
            })
            .orders += n;
    }
    let decimals = groups
        .values()
        .flat_map(|g| g.fees.iter().chain(g.realized.iter().flatten()))
        .map(|&(_, d)| d)
        .max()
        .unwrap_or(0);
    let sum = |v: &[(i128, u8)]| -> i128 {
        v.iter()
            .map(|&(x, d)| x * 10i128.pow(u32::from(decimals - d)))
            .sum()
    };
    Ok(groups
        .into_iter()
        .map(|(key, g)| {
            let fees = sum(&g.fees);
            let realized = g.realized.as_deref().map(sum);
            PnlRow {
                key,
                orders: Some(g.orders),
                fills: g.fills,
                realized: realized.map_or_else(|| "-".to_owned(), |r| scaled_decimal(r, decimals)),
                fees: scaled_decimal(fees, decimals),
                unrealized: "-".to_owned(),
                net: realized
                    .map_or_else(|| "-".to_owned(), |r| scaled_decimal(r - fees, decimals)),
            }
        })
        .collect())
}
