//! The backtest's files: `report.json` (the `trading` object apart from the run's latency and
//! counters), `fills.csv`, `equity.csv` and the plots ([`super::plots`]), all in one directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::report::{BacktestReport, InstrumentResult};
use crate::pipeline::{PipelineReport, scaled_decimal};

/// Why a backtest's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// A file or the directory could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("{}: the plot could not be drawn: {message}", path.display())]
    Plot {
        /// The file.
        path: PathBuf,
        /// What the plotting library said.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BacktestError + '_ {
    move |source| BacktestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes every file into `dir` (created if needed); returns their paths.
pub fn write_all(
    dir: &Path,
    bt: &BacktestReport,
    run: &PipelineReport,
) -> Result<Vec<PathBuf>, BacktestError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    let path = dir.join("report.json");
    let mut run_json = run.to_json();
    if let serde_json::Value::Object(map) = &mut run_json {
        // The replay's own per-instrument rows: the backtest's `trading` holds all of them.
        map.remove("trading");
    }
    let doc = json!({
        "config": run.origin,
        "input": run.input.description,
        "trading": bt.trading_json(),
        "run": run_json,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(io(&path))?;
    written.push(path);
    let path = dir.join("fills.csv");
    write_fills(&path, &bt.instruments).map_err(io(&path))?;
    written.push(path);
    let path = dir.join("equity.csv");
    write_equity(&path, &bt.instruments).map_err(io(&path))?;
    written.push(path);
    written.extend(super::plots::draw_all(dir, bt)?);
    Ok(written)
}

/// `fills.csv`: one row per fill, every instrument, in the order applied per instrument.
pub fn write_fills(path: &Path, instruments: &[InstrumentResult]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "time_ns,venue,symbol,side,price,qty,maker,fee,position,realized_pnl,fees_total,strategy,reason"
    )?;
    for i in instruments {
        let md = i.figures.money_decimals;
        for f in i.trading.tape.fills() {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                f.t_ns,
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
            )?;
        }
    }
    w.flush()
}

/// `equity.csv`: the account sampled once per period of event time, every instrument.
pub fn write_equity(path: &Path, instruments: &[InstrumentResult]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "time_ns,venue,symbol,mid,position,realized_pnl,fees,unrealized_pnl,equity"
    )?;
    for i in instruments {
        let md = i.figures.money_decimals;
        for s in i.trading.tape.samples() {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{}",
                s.t_ns,
                i.venue,
                i.symbol,
                scaled_decimal(i128::from(s.mid.0), i.price_decimals),
                scaled_decimal(i128::from(s.position.0), i.qty_decimals),
                scaled_decimal(s.realized, md),
                scaled_decimal(s.fees, md),
                scaled_decimal(s.unrealized, md),
                scaled_decimal(s.equity(), md),
            )?;
        }
    }
    w.flush()
}

fn side_name(side: pinion_strategy::OrderSide) -> &'static str {
    match side {
        pinion_strategy::OrderSide::Buy => "buy",
        pinion_strategy::OrderSide::Sell => "sell",
    }
}
