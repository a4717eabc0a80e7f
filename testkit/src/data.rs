//! Locating the real recordings beside the repository (`../shared/data`) for tests and
//! benchmarks.
//!
//! The directory is `$PINION_DATA_DIR` when set, else `../shared/data` relative to the workspace
//! root. When a file is missing, tests fail if `CI` is set (a missing fixture must not turn into
//! a silent pass) and otherwise skip with a message naming the file.

use std::path::PathBuf;

/// The data directory, whether or not it exists.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PINION_DATA_DIR") {
        return PathBuf::from(dir);
    }
    // testkit/ is one level below the workspace root.
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.parent().map_or(crate_dir.clone(), PathBuf::from);
    root.join("..").join("shared").join("data")
}

/// The path of a file under the data directory (`"binance/spot-btcusdt-20240808.hbt.gz"`), or
/// `None` after printing a skip message when it is missing outside CI.
///
/// # Panics
/// When the file is missing and the `CI` environment variable is set.
pub fn require(relative: &str) -> Option<PathBuf> {
    let path = data_dir().join(relative);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set and the real recording {} is missing (looked in {})",
            relative,
            path.display()
        );
    }
    eprintln!(
        "skipping: real recording {} not found at {} (set PINION_DATA_DIR)",
        relative,
        path.display()
    );
    None
}
