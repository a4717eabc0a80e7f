//! The report's output paths (`--report-json`, `--hgrm-dir`, `--errors-out`), checked before
//! the run starts, so that a path that cannot be written is found in a second, not after a long
//! replay whose report would then be lost.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::PipelineError;
use crate::config::ReportConfig;

/// Checks that every report output of `report` can be written: the JSON report's file can be
/// created (probed without truncating an existing one), the `.hgrm` directory exists or can be
/// made and takes a file, and the errors file is created (and returned, for the writer).
pub fn check(report: &ReportConfig) -> Result<Option<File>, PipelineError> {
    if let Some(path) = &report.json {
        probe_file(path, "--report-json (report.json)")?;
    }
    if let Some(dir) = &report.hgrm_dir {
        let what = "--hgrm-dir (report.hgrm_dir)";
        std::fs::create_dir_all(dir).map_err(|e| error(what, dir, "cannot create it", e))?;
        let probe = dir.join(format!(".pinion-probe-{}", std::process::id()));
        File::create(&probe).map_err(|e| error(what, dir, "cannot write into it", e))?;
        let _ = std::fs::remove_file(&probe);
    }
    match &report.errors_out {
        Some(path) => {
            let what = "--errors-out (report.errors_out)";
            check_parent(path, what)?;
            File::create(path)
                .map(Some)
                .map_err(|e| error(what, path, "cannot create it", e))
        }
        None => Ok(None),
    }
}

/// Whether `path` could be created or written, leaving the file system as it was.
fn probe_file(path: &Path, what: &'static str) -> Result<(), PipelineError> {
    check_parent(path, what)?;
    let existed = path.exists();
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| error(what, path, "cannot create it", e))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

fn check_parent(path: &Path, what: &'static str) -> Result<(), PipelineError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent.is_dir() {
        Ok(())
    } else {
        Err(error(
            what,
            path,
            "its directory does not exist",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }
}

fn error(
    what: &'static str,
    path: &Path,
    problem: &'static str,
    source: std::io::Error,
) -> PipelineError {
    PipelineError::ReportPath {
        what,
        path: path.to_path_buf(),
        problem,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_paths_are_named_and_good_ones_left_as_they_were() {
        let dir = std::env::temp_dir().join(format!("pinion-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let good = ReportConfig {
            json: Some(dir.join("r.json")),
            hgrm_dir: Some(dir.join("h")),
            errors_out: Some(dir.join("e.jsonl")),
            ..ReportConfig::default()
        };
        assert!(check(&good).unwrap().is_some());
        assert!(!dir.join("r.json").exists(), "the probe leaves no file");
        assert!(dir.join("h").is_dir() && dir.join("e.jsonl").is_file());
        let bad = ReportConfig {
            json: Some(dir.join("missing/r.json")),
            ..ReportConfig::default()
        };
        let e = check(&bad).unwrap_err().to_string();
        assert!(
            e.contains("--report-json") && e.contains("missing/r.json"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
