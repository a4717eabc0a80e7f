//! `pinion backtest`: a replay on the simulated venue, measured. The strategy stage records
//! every fill and the equity once per period of event time into a [`Tape`] allocated before the
//! run; after it, this module turns the tapes into the report's figures, the CSV files and the
//! plots.

pub mod figures;
mod output;
mod plots;
mod report;
pub mod sweep;
mod tape;

pub use output::{BacktestError, write_all, write_equity, write_fills};
pub use report::{BacktestReport, Figures, InstrumentResult};
pub use tape::{EquitySample, FillRecord, Tape};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::Settings;
use crate::pipeline::{self, Console, DecodedInput, PipelineError, PipelineReport};

/// Runs `settings` as a backtest: the replay with fills and equity recorded, then measured.
pub fn run(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    console: Console,
) -> Result<(PipelineReport, BacktestReport), PipelineError> {
    let settings = for_backtest(settings);
    let report = pipeline::run(&settings, stop, console)?;
    let bt = BacktestReport::new(&report, &settings.backtest);
    Ok((report, bt))
}

/// [`run`] on an input decoded beforehand ([`pipeline::predecode`] of settings with the same
/// input): the same figures, without reading and decoding the recording again.
pub fn run_decoded(
    settings: &Settings,
    input: &DecodedInput,
    stop: Arc<AtomicBool>,
    console: Console,
) -> Result<(PipelineReport, BacktestReport), PipelineError> {
    let settings = for_backtest(settings);
    let built = pipeline::build_predecoded(&settings, Arc::clone(&stop), input)?;
    let report = pipeline::run_pipeline(&settings, built, stop, console)?;
    let bt = BacktestReport::new(&report, &settings.backtest);
    Ok((report, bt))
}

/// `settings` as a backtest runs them.
fn for_backtest(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    settings.backtest.record = true;
    // A backtest is offline (a sweep runs several at once): no operator bot polls for it.
    settings.bot = None;
    settings
}
