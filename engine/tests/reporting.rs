//! Honest reporting, end to end through the `pinion` binary: problems with the input counted by
//! kind and instrument with their first samples (record, line, raw text), every one of them in
//! the `--errors-out` file, the warnings, the book summary in exact decimals, and the exit codes
//! (0 clean, 3 damaged, `--allow-damaged` 0, 1 for a report path that cannot be written, found
//! before the run; 130 after Ctrl-C).
//!
//! The damaged recordings are made here from the first lines of the real Spot recording, with
//! chosen lines broken in known ways.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

const SPOT: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// Lines taken from the real recording (its REST snapshot is line 8).
const LINES: usize = 3000;

/// The first `LINES` lines of the Spot recording.
fn spot_lines() -> Option<Vec<String>> {
    let path = pinion_testkit::data::require(SPOT)?;
    let file = std::fs::File::open(path).expect("recording opens");
    let lines = BufReader::new(flate2::read::MultiGzDecoder::new(file))
        .lines()
        .take(LINES)
        .collect::<Result<Vec<_>, _>>()
        .expect("recording reads");
    Some(lines)
}

/// Writes `lines` as a gzip hbt recording `name` in `dir`.
fn write_hbt(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).expect("create"),
        flate2::Compression::fast(),
    );
    for l in lines {
        gz.write_all(l.as_bytes()).expect("write");
        gz.write_all(b"\n").expect("write");
    }
    gz.finish().expect("gzip ends");
    path
}

/// `pinion replay` on `input`, fused, unpaced, no progress bar, with `extra` flags.
fn replay(input: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["replay", "--input"])
        .arg(input)
        .args([
            "--pacing",
            "max",
            "--placement",
            "1",
            "--wait",
            "park",
            "--no-progress",
        ])
        .args(extra)
        .output()
        .expect("pinion runs")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("json file")).expect("json")
}

/// The 1-based numbers of the first `n` lines of `stream`, from line `from` on.
fn stream_lines(lines: &[String], stream: &str, from: usize, n: usize) -> Vec<usize> {
    let quoted = format!("\"{stream}\"");
    lines
        .iter()
        .enumerate()
        .skip(from - 1)
        .filter(|(_, l)| l.contains(&quoted))
        .map(|(i, _)| i + 1)
        .take(n)
        .collect()
}

#[test]
fn damaged_recording_is_counted_sampled_written_out_and_exits_3() {
    let Some(mut lines) = spot_lines() else {
        return;
    };
    let dir = common::scratch_dir("reporting-damaged");
    // Eight trades with a price that is not a number: decode errors of BTCUSDT.
    let bad_price = stream_lines(&lines, "btcusdt@trade", 100, 8);
    for &n in &bad_price {
        let l = &mut lines[n - 1];
        *l = l.replacen("\"p\":\"", "\"p\":\"x", 1);
    }
    // The first one longer than the text a sample keeps.
    let long = &mut lines[bad_price[0] - 1];
    let padded = format!(
        "{},\"pad\":\"{}\"}}}}",
        &long[..long.len() - 2],
        "y".repeat(300)
    );
    *long = padded;
    // A line that is not `<ns> <json>`: a source error with no instrument.
    // (Book tickers, so the depth stream and the book stay whole.)
    let not_a_record = stream_lines(&lines, "btcusdt@bookTicker", 1500, 1)[0];
    lines[not_a_record - 1] = "not a record at all".to_owned();
    // Broken JSON before any symbol: a decode error of the connection.
    let broken_json = stream_lines(&lines, "btcusdt@bookTicker", 1600, 1)[0];
    lines[broken_json - 1] = "1723161254206652067 {\"stream\":}".to_owned();
    let input = write_hbt(&dir, "spot-btcusdt-damaged.hbt.gz", &lines);
    let json_path = dir.join("report.json");
    let errors_path = dir.join("errors.jsonl");
    let out = replay(
        &input,
        &[
            "--report-json",
            json_path.to_str().unwrap(),
            "--errors-out",
            errors_path.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("--allow-damaged"), "{stderr}");

    let report = read_json(&json_path);
    let problems = &report["problems"];
    assert_eq!(problems["source"], 1, "{problems:#}");
    assert_eq!(problems["decode"], 9, "{problems:#}");
    let kind = |name: &str| {
        problems["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == name)
            .unwrap_or_else(|| panic!("no {name} in {problems:#}"))
            .clone()
    };
    let bad_number = kind("decode.bad_number");
    assert_eq!(bad_number["count"], 8);
    assert_eq!(bad_number["by_subject"][0]["symbol"], "BTCUSDT");
    assert_eq!(bad_number["by_subject"][0]["count"], 8);
    let json_err = kind("decode.json");
    assert_eq!(json_err["by_subject"][0]["connection"], 0);
    assert_eq!(json_err["by_subject"][0]["symbol"], Value::Null);
    let format = kind("source.format");
    assert_eq!(format["count"], 1);

    // The first five of each kind, with their lines and raw text.
    let samples = problems["samples"].as_array().unwrap();
    let sampled_lines = |name: &str| -> Vec<u64> {
        samples
            .iter()
            .filter(|s| s["kind"] == name)
            .map(|s| s["line"].as_u64().expect("a line"))
            .collect()
    };
    let want: Vec<u64> = bad_price.iter().take(5).map(|&n| n as u64).collect();
    assert_eq!(sampled_lines("decode.bad_number"), want);
    assert_eq!(sampled_lines("source.format"), [not_a_record as u64]);
    assert_eq!(sampled_lines("decode.json"), [broken_json as u64]);
    let first = samples
        .iter()
        .find(|s| s["kind"] == "decode.bad_number")
        .unwrap();
    let payload = lines[bad_price[0] - 1].split_once(' ').unwrap().1;
    assert_eq!(first["text_bytes"], payload.len());
    assert_eq!(first["text"], &payload[..200]);
    assert!(
        first["detail"].as_str().unwrap().contains("\"p\""),
        "{first}"
    );
    let source = samples
        .iter()
        .find(|s| s["kind"] == "source.format")
        .unwrap();
    assert_eq!(source["text"], "not a record at all");
    // Without other lines to skip, the record number is the line number.
    assert_eq!(source["record"], not_a_record);

    // The text report shows the same.
    assert!(stdout.contains("decode.bad_number"), "{stdout}");
    assert!(
        stdout.contains(&format!("line {}", bad_price[0])),
        "{stdout}"
    );
    assert!(stdout.contains("not a record at all"), "{stdout}");

    // Warnings: the source errors and the instrument with decode errors.
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with("1 source errors")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("binance-spot BTCUSDT: 8 records could not be decoded")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("unknown instrument on connection 0: 1 records")),
        "{warnings:?}"
    );
    assert!(stdout.contains("warning: binance-spot BTCUSDT: 8 records"));

    // Every problem in the errors file, one JSON line each.
    let text = std::fs::read_to_string(&errors_path).expect("errors file");
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let total = report["problems"]["source"].as_u64().unwrap()
        + report["problems"]["decode"].as_u64().unwrap()
        + report["problems"]["sync"].as_u64().unwrap();
    assert_eq!(all.len() as u64, total);
    let written: Vec<u64> = all
        .iter()
        .filter(|p| p["kind"] == "decode.bad_number")
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = bad_price.iter().map(|&n| n as u64).collect();
    assert_eq!(written, want);
    assert_eq!(report["problems"]["errors_out"]["written"], total);
    assert_eq!(report["problems"]["errors_out"]["lost"], 0);

    // The same input, accepted.
    let out = replay(&input, &["--allow-damaged"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning: 1 source errors"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn depth_without_a_snapshot_is_a_warning_and_damage() {
    let Some(mut lines) = spot_lines() else {
        return;
    };
    let dir = common::scratch_dir("reporting-no-snapshot");
    lines.retain(|l| !l.contains("{\"lastUpdateId\""));
    let input = write_hbt(&dir, "spot-btcusdt-nosnapshot.hbt.gz", &lines);
    let json_path = dir.join("report.json");
    let out = replay(&input, &["--report-json", json_path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let report = read_json(&json_path);
    let book = &report["books"][0];
    assert_eq!(book["state"], "awaiting_snapshot");
    assert_eq!(book["snapshot_events"], 0);
    assert!(book["depth_events"].as_u64().unwrap() > 100);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("binance-spot BTCUSDT: depth stream with no snapshot for it"),
        "{warnings}"
    );
    assert_eq!(
        report["damaged"][0],
        "binance-spot BTCUSDT ended awaiting_snapshot"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_gap_is_a_sync_problem_and_an_unsynced_end() {
    let Some(mut lines) = spot_lines() else {
        return;
    };
    let dir = common::scratch_dir("reporting-gap");
    // One diff-depth message dropped after the book is live: Spot has no second snapshot in
    // the recording, so the book stays unsynced from there.
    let depth = stream_lines(&lines, "btcusdt@depth@100ms", 1000, 1)[0];
    lines.remove(depth - 1);
    let input = write_hbt(&dir, "spot-btcusdt-gap.hbt.gz", &lines);
    let json_path = dir.join("report.json");
    let out = replay(&input, &["--report-json", json_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let report = read_json(&json_path);
    assert_eq!(report["problems"]["source"], 0);
    assert_eq!(report["problems"]["decode"], 0);
    assert_eq!(report["problems"]["sync"], 1, "{:#}", report["problems"]);
    let gap = &report["problems"]["samples"][0];
    assert_eq!(gap["kind"], "sync.gap");
    assert_eq!(gap["symbol"], "BTCUSDT");
    assert!(
        gap["detail"]
            .as_str()
            .unwrap()
            .starts_with("updates missed: expected update "),
        "{gap}"
    );
    assert_eq!(report["books"][0]["state"], "awaiting_snapshot:gap");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("binance-spot BTCUSDT: the book ended unsynced (awaiting_snapshot:gap)"),
        "{warnings}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_report_path_fails_before_the_run() {
    let dir = common::scratch_dir("reporting-unwritable");
    let input = pinion_testkit::data::data_dir().join(SPOT);
    for (flag, path) in [
        ("--report-json", dir.join("no/such/dir/report.json")),
        ("--errors-out", dir.join("no/such/dir/errors.jsonl")),
    ] {
        let out = replay(&input, &[flag, path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(flag), "{stderr}");
        assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
        // Nothing ran: no report on stdout, and the recording was never opened to be replayed.
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!stderr.contains("placement"), "{stderr}");
    }
    // A file where the .hgrm directory should be.
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = replay(&input, &["--hgrm-dir", blocker.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--hgrm-dir"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clean_recording_exits_0_with_the_top_of_book_in_decimals() {
    let Some(input) = pinion_testkit::data::require(SPOT) else {
        return;
    };
    let dir = common::scratch_dir("reporting-clean");
    let json_path = dir.join("report.json");
    let errors_path = dir.join("errors.jsonl");
    let out = replay(
        &input,
        &[
            "--report-json",
            json_path.to_str().unwrap(),
            "--errors-out",
            errors_path.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_json(&json_path);
    assert_eq!(report["damaged"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["problems"]["source"], 0);
    assert_eq!(report["problems"]["decode"], 0);
    let book = report["books"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["symbol"] == "BTCUSDT")
        .expect("the BTCUSDT book");
    // The book after the last frame, as the data's README gives it.
    assert_eq!(book["state"], "live");
    let trimmed = |v: &Value| {
        let s = v.as_str().expect("a decimal string");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    assert_eq!(book["best_bid"]["price"], "61685.99");
    assert_eq!(trimmed(&book["best_bid"]["qty"]), "1.0087");
    assert_eq!(book["best_ask"]["price"], "61686.00");
    assert_eq!(trimmed(&book["best_ask"]["qty"]), "2.29327");
    assert_eq!(book["spread"], "0.01");
    assert_eq!(book["mid"], "61685.995");
    assert_eq!(book["bid_levels"], 1209);
    assert_eq!(book["ask_levels"], 2196);
    assert!(
        stdout.contains("live update 50093421584 | bid 1.00870000 @ 61685.99 | ask 2.29327000 @ 61686.00 | spread 0.01 mid 61685.995"),
        "{stdout}"
    );
    // No problems, so an empty errors file.
    assert_eq!(std::fs::read_to_string(&errors_path).unwrap(), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_exits_130_with_a_report() {
    let Some(input) = pinion_testkit::data::require(SPOT) else {
        return;
    };
    // Paced at the recorded speed, the five-minute recording is still running when Ctrl-C
    // comes.
    let child = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["replay", "--input"])
        .arg(&input)
        .args(["--pacing", "paced", "--placement", "1", "--wait", "park"])
        .args(["--no-progress"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pinion starts");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: `kill` only sends a signal to the process id given; the child is ours and has not
    // been waited for, so the id cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("pinion ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("warning: stopped early (Ctrl-C)"),
        "{stdout}"
    );
}
