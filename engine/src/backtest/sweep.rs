//! `pinion backtest --sweep key=a,b,c …`: the backtest of every combination of the values
//! given, run in parallel (each run fused on one thread, `--jobs` at once), summarised in one
//! table, one row per combination in a fixed order (the first key varies slowest), whatever
//! order the runs finish in.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::report::Figures;
use crate::config::{Override, Settings};
use crate::pipeline::{Console, DecodedInput, PipelineError, scaled_decimal};

/// One swept key and its values, from `key=a,b,c`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// The config key.
    pub key: String,
    /// Its values, each read as a TOML value (or a string) like `--set`'s.
    pub values: Vec<Override>,
}

impl SweepAxis {
    /// Parses `key=a,b,c`.
    pub fn parse(text: &str) -> Result<SweepAxis, String> {
        let (key, list) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: expected key=a,b,c"))?;
        let key = key.trim();
        if key.is_empty() || list.trim().is_empty() {
            return Err(format!("{text:?}: expected key=a,b,c"));
        }
        let values = list
            .split(',')
            .map(|v| Override::parse(&format!("{key}={}", v.trim())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SweepAxis {
            key: key.to_owned(),
            values,
        })
    }
}

/// Every combination of the axes' values, the first axis varying slowest.
pub fn combinations(axes: &[SweepAxis]) -> Vec<Vec<Override>> {
    let mut out: Vec<Vec<Override>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|combo| {
                axis.values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.push(v.clone());
                    c
                })
            })
            .collect();
    }
    out
}

/// One combination's outcome.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// `key=value` of each swept key.
    pub label: Vec<String>,
    /// The total figures, or why the run failed.
    pub outcome: Result<Figures, String>,
}

/// Runs the backtest of each of `runs` (settings already built for each combination, labelled)
/// on `jobs` threads at once; rows in the order given.
pub fn run(
    runs: Vec<(Vec<String>, Settings)>,
    jobs: usize,
    stop: &Arc<AtomicBool>,
    decoded: Option<&DecodedInput>,
) -> Vec<SweepRow> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; runs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, runs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((label, settings)) = runs.get(i) else {
                        break;
                    };
                    let outcome = match decoded {
                        Some(input) => {
                            super::run_decoded(settings, input, Arc::clone(stop), Console::QUIET)
                        }
                        None => super::run(settings, Arc::clone(stop), Console::QUIET),
                    }
                    .map(|(_, bt)| bt.total)
                    .map_err(|e: PipelineError| e.to_string());
                    let row = SweepRow {
                        label: label.clone(),
                        outcome,
                    };
                    if let Ok(mut rows) = rows.lock() {
                        rows[i] = Some(row);
                    }
                }
            });
        }
    });
    rows.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn cells(f: &Figures) -> [String; 9] {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    let money = |v: i128| scaled_decimal(v, f.money_decimals);
    [
        money(f.net()),
        money(f.gross()),
        money(f.fees),
        format!("{:.6}", f.return_),
        opt(f.sharpe),
        opt(f.sortino),
        money(f.drawdown.max),
        f.fills.to_string(),
        opt(f.wins.rate()),
    ]
}

const COLUMNS: [&str; 9] = [
    "net_pnl",
    "gross_pnl",
    "fees",
    "return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "fills",
    "win_rate",
];

/// The summary as a text table.
pub fn table(rows: &[SweepRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "sweep ({} runs; money in the quote asset):", rows.len());
    let _ = write!(s, "  {:<40}", "combination");
    for c in COLUMNS {
        let _ = write!(s, " {c:>16}");
    }
    let _ = writeln!(s);
    for r in rows {
        let _ = write!(s, "  {:<40}", r.label.join(" "));
        match &r.outcome {
            Ok(f) => {
                for c in cells(f) {
                    let _ = write!(s, " {c:>16}");
                }
            }
            Err(e) => {
                let _ = write!(s, " failed: {e}");
            }
        }
        let _ = writeln!(s);
    }
    s
}

/// The summary as CSV: one column per swept key, then the figures.
pub fn csv(rows: &[SweepRow], axes: &[SweepAxis]) -> String {
    let mut s = String::new();
    let keys: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
    let _ = writeln!(s, "{},{},error", keys.join(","), COLUMNS.join(","));
    for r in rows {
        let values: Vec<&str> = r
            .label
            .iter()
            .map(|l| l.split_once('=').map_or(l.as_str(), |(_, v)| v))
            .collect();
        match &r.outcome {
            Ok(f) => {
                let _ = writeln!(s, "{},{},", values.join(","), cells(f).join(","));
            }
            Err(e) => {
                let _ = writeln!(
                    s,
                    "{},{},\"{}\"",
                    values.join(","),
                    [""; 9].join(","),
                    e.replace('"', "'")
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_vary_the_first_key_slowest() {
        let a = SweepAxis::parse("strategy.threshold=0.5, 0.6").unwrap();
        let b = SweepAxis::parse("strategy.levels=1,2,3").unwrap();
        assert_eq!(a.values[1].value, toml::Value::Float(0.6));
        let c = combinations(&[a, b]);
        assert_eq!(c.len(), 6);
        assert_eq!(c[1][1].value, toml::Value::Integer(2));
        assert_eq!(c[3][0].value, toml::Value::Float(0.6));
        assert!(SweepAxis::parse("novalues=").is_err());
        assert!(SweepAxis::parse("=1,2").is_err());
        assert_eq!(combinations(&[]).len(), 1);
    }
}
