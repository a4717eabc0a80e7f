//! `[[instrument]]` and `[[exchange_info]]`: instruments defined by hand, and saved instrument
//! lists to load.

use std::collections::HashSet;
use std::path::Path;

use pinion_core::{InstrumentSpec, Symbol, Venue};

use super::super::Config;
use super::super::settings::InstrumentSource;
use super::super::units::{with_px_decimals, with_qty_decimals};
use super::{Problems, parse_venue};

/// The instruments defined in the config, and those of them whose book keeps levels on the
/// price unit's grid (given `px_decimals`).
pub(super) fn instruments(
    cfg: &Config,
    p: &mut Problems,
) -> (Vec<InstrumentSpec>, Vec<(Venue, Symbol)>) {
    let mut instruments = Vec::new();
    let mut unit_price_grid = Vec::new();
    let mut seen = HashSet::new();
    for (i, ic) in cfg.instruments.iter().enumerate() {
        let key = format!("instrument[{i}]");
        let Some(v) = parse_venue(p, &format!("{key}.venue"), &ic.venue) else {
            continue;
        };
        let spec = InstrumentSpec::new(v, &ic.symbol, &ic.tick_size, &ic.step_size)
            .map_err(|e| e.to_string())
            .and_then(|spec| match ic.qty_decimals {
                Some(d) => with_qty_decimals(spec, d),
                None => Ok(spec),
            })
            .and_then(|spec| match ic.px_decimals {
                Some(d) => with_px_decimals(spec, d),
                None => Ok(spec),
            });
        match spec {
            Ok(spec) => {
                if !seen.insert((v, spec.symbol)) {
                    p.add(
                        format!("{key}.symbol"),
                        format!("{v} {} is defined twice", spec.symbol),
                    );
                } else {
                    if ic.px_decimals.is_some() {
                        unit_price_grid.push((v, spec.symbol));
                    }
                    instruments.push(spec);
                }
            }
            Err(e) => p.add(key, e),
        }
    }
    (instruments, unit_price_grid)
}

/// The saved instrument lists, their relative paths resolved against `input.data_dir`, else
/// `default_data_dir`.
pub(super) fn instrument_sources(
    cfg: &Config,
    p: &mut Problems,
    default_data_dir: &Path,
) -> Vec<InstrumentSource> {
    let data_dir = cfg
        .input
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir.to_path_buf());
    let mut instrument_sources = Vec::new();
    for (i, ec) in cfg.exchange_info.iter().enumerate() {
        let key = format!("exchange_info[{i}]");
        let Some(v) = parse_venue(p, &format!("{key}.venue"), &ec.venue) else {
            continue;
        };
        let path = if ec.path.is_absolute() {
            ec.path.clone()
        } else {
            data_dir.join(&ec.path)
        };
        if !ec.optional && !path.is_file() {
            p.add(
                format!("{key}.path"),
                format!("{} not found", path.display()),
            );
        }
        if let Some(d) = ec.qty_decimals
            && d > pinion_core::decimal::MAX_DECIMALS
        {
            p.add(
                format!("{key}.qty_decimals"),
                format!("{d} is more than {}", pinion_core::decimal::MAX_DECIMALS),
            );
        }
        instrument_sources.push(InstrumentSource::ExchangeInfo {
            venue: v,
            path,
            optional: ec.optional,
            qty_decimals: ec.qty_decimals,
        });
    }
    instrument_sources
}
