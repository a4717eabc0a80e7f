//! Fuzz target: arbitrary text as pinion's TOML config, with command-line overrides, through the
//! parser (`Config::parse_with`) and the validator (`Config::validate_for`, at a fixed core
//! count so an input behaves the same everywhere). The text before the first NUL is the file;
//! each line after it is a `--set key=value` override (unreadable ones are skipped, as the
//! command line would refuse them). Bad text must be an error that says where, never a panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pinion_engine::config::{Config, Override, Overrides};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, sets) = text.split_once('\0').unwrap_or((text, ""));
    let overrides = Overrides(
        sets.lines()
            .filter_map(|l| Override::parse(l).ok())
            .collect(),
    );
    let Ok(config) = Config::parse_with(file, "fuzz.toml", &overrides) else {
        return;
    };
    let _ = config.validate_for("fuzz.toml", 2, Path::new("/nonexistent/pinion-fuzz-data"));
});
