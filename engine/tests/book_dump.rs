//! `pinion book --every 1` on the shipped Binance recordings against an independent reading of
//! the same files: each line parsed with serde_json, the exchange's documented sync rule
//! applied by hand into two `BTreeMap`s of decimal strings, and the best levels compared with
//! the command's JSON after every message, exactly (as normalised decimal strings).
//!
//! The reader shares nothing with the engine: not its reader, decoder, decimal parser, book or
//! sync machine. It knows the two rules only as Binance documents them:
//! - Spot: drop events with `u` <= the snapshot's `lastUpdateId`; the first applied has
//!   `U <= lastUpdateId + 1 <= u`; each later one `U == previous u + 1`.
//! - USD-M: drop events with `u < lastUpdateId`; the first applied has
//!   `U <= lastUpdateId <= u`; each later one `pu == previous u`.
//!
//! Events before the snapshot are kept and replayed after it, as a client buffering the stream
//! while it fetches the snapshot does. The shipped recordings are gap-free; a gap the reader
//! finds fails the test.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Command;

use serde_json::Value;

mod common;

/// Levels per side compared.
const DEPTH: usize = 20;

/// A decimal string as a sortable integer of 10^-18 units, read by hand (digits, one optional
/// dot; the recordings hold nothing else).
fn key(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 18, "{s}");
    let digits = format!("{int}{frac:0<18}");
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a decimal: {s}"))
}

/// A decimal string without trailing fraction zeros (`"61837.63000000"` → `"61837.63"`,
/// `"1.000"` → `"1"`).
fn normal(s: &str) -> String {
    match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => s.to_owned(),
    }
}

fn is_zero(s: &str) -> bool {
    s.bytes().all(|c| c == b'0' || c == b'.')
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Spot,
    Futures,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Awaiting,
    Syncing(u64),
    Live,
}

/// The independent book: one side a map from price (as a sortable integer) to the price and
/// quantity strings as sent.
struct Reader {
    rule: Rule,
    state: State,
    last_u: u64,
    bids: BTreeMap<i128, (String, String)>,
    asks: BTreeMap<i128, (String, String)>,
    pending: Vec<Value>,
}

impl Reader {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            state: State::Awaiting,
            last_u: 0,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    fn line(&mut self, json: &str) {
        let v: Value = serde_json::from_str(json).expect("a JSON line");
        if let Some(data) = v.get("data") {
            if data["e"] == "depthUpdate" {
                self.depth(data.clone());
            }
            // bookTicker and trade leave the book alone.
        } else if v.get("lastUpdateId").is_some() {
            self.snapshot(&v);
        } else {
            panic!("unexpected line: {json}");
        }
    }

    fn snapshot(&mut self, v: &Value) {
        self.bids.clear();
        self.asks.clear();
        apply_side(&mut self.bids, &v["bids"]);
        apply_side(&mut self.asks, &v["asks"]);
        let lid = v["lastUpdateId"].as_u64().expect("lastUpdateId");
        self.state = State::Syncing(lid);
        self.last_u = lid;
        for ev in std::mem::take(&mut self.pending) {
            self.depth(ev);
        }
    }

    fn depth(&mut self, d: Value) {
        let first = d["U"].as_u64().expect("U");
        let last = d["u"].as_u64().expect("u");
        match self.state {
            State::Awaiting => {
                self.pending.push(d);
                return;
            }
            State::Syncing(lid) => {
                let (stale, bridges) = match self.rule {
                    Rule::Spot => (last <= lid, first <= lid + 1 && lid < last),
                    Rule::Futures => (last < lid, first <= lid && lid <= last),
                };
                if stale {
                    return;
                }
                assert!(
                    bridges,
                    "the first event after the snapshot {lid} does not bridge it: U {first} u {last}"
                );
            }
            State::Live => {
                let follows = match self.rule {
                    Rule::Spot => first == self.last_u + 1,
                    Rule::Futures => d["pu"].as_u64().expect("pu") == self.last_u,
                };
                assert!(follows, "gap after {}: U {first} u {last}", self.last_u);
            }
        }
        apply_side(&mut self.bids, &d["b"]);
        apply_side(&mut self.asks, &d["a"]);
        self.last_u = last;
        self.state = State::Live;
    }

    /// The best `DEPTH` levels of each side, normalised.
    fn top(&self) -> (Vec<[String; 2]>, Vec<[String; 2]>) {
        let norm = |(p, q): &(String, String)| [normal(p), normal(q)];
        (
            self.bids.values().rev().take(DEPTH).map(norm).collect(),
            self.asks.values().take(DEPTH).map(norm).collect(),
        )
    }

    fn state_word(&self) -> &'static str {
        match self.state {
            State::Awaiting => "awaiting_snapshot",
            State::Syncing(_) => "syncing",
            State::Live => "live",
        }
    }
}

fn apply_side(side: &mut BTreeMap<i128, (String, String)>, levels: &Value) {
    for level in levels.as_array().expect("a level array") {
        let px = level[0].as_str().expect("price string");
        let qty = level[1].as_str().expect("quantity string");
        if is_zero(qty) {
            side.remove(&key(px));
        } else {
            side.insert(key(px), (px.to_owned(), qty.to_owned()));
        }
    }
}

/// The levels of the command's JSON, normalised.
fn levels(v: &Value) -> Vec<[String; 2]> {
    v.as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            [
                normal(l[0].as_str().expect("price")),
                normal(l[1].as_str().expect("quantity")),
            ]
        })
        .collect()
}

/// Runs `pinion book --every 1` on `relative` and compares every point with the reader;
/// returns the number of messages compared.
fn compare(relative: &str, rule: Rule) -> Option<u64> {
    let path = pinion_testkit::data::require(relative)?;
    let dir = common::scratch_dir(&format!("book-{rule:?}"));
    let json = dir.join("points.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .env("PINION_DATA_DIR", pinion_testkit::data::data_dir())
        .args([
            "book",
            "--every",
            "1",
            "--quiet",
            "--depth",
            &DEPTH.to_string(),
        ])
        .arg("--input")
        .arg(&path)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("pinion runs");
    assert!(
        out.status.success(),
        "pinion book failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "--quiet prints nothing on stdout");

    let recording = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&path).expect("open recording"),
    ));
    let points = BufReader::new(std::fs::File::open(&json).expect("open points"));
    let mut reader = Reader::new(rule);
    let mut points = points.lines();
    let mut n = 0u64;
    let mut live_points = 0u64;
    for line in recording.lines() {
        let line = line.expect("read recording");
        let (t, body) = line.split_once(' ').expect("`<ns> <json>` line");
        reader.line(body);
        n += 1;
        let point: Value = serde_json::from_str(
            &points
                .next()
                .unwrap_or_else(|| panic!("no point for message {n}"))
                .expect("read point"),
        )
        .expect("a JSON point");
        assert_eq!(point["message"], n);
        assert_eq!(
            point["t_recv"].as_u64().map(|v| v.to_string()).as_deref(),
            Some(t)
        );
        let books = point["books"].as_array().expect("books");
        assert_eq!(books.len(), 1, "one instrument in {relative}");
        let book = &books[0];
        assert_eq!(book["symbol"], "BTCUSDT");
        assert_eq!(
            book["state"],
            reader.state_word(),
            "state after message {n}"
        );
        if reader.state == State::Live {
            live_points += 1;
            assert_eq!(
                book["last_update_id"], reader.last_u,
                "update id after message {n}"
            );
        }
        let (bids, asks) = reader.top();
        assert_eq!(levels(&book["bids"]), bids, "bids after message {n}");
        assert_eq!(levels(&book["asks"]), asks, "asks after message {n}");
    }
    assert!(points.next().is_none(), "a point past the last message");
    // The comparison is not vacuous: the book was live and full nearly all the way.
    assert!(live_points > n * 9 / 10, "{live_points} live of {n}");
    assert_eq!(reader.top().0.len(), DEPTH);
    let _ = std::fs::remove_dir_all(&dir);
    Some(n)
}

#[test]
fn spot_books_equal_an_independent_reading_at_every_message() {
    if let Some(n) = compare("binance/spot-btcusdt-20240808.hbt.gz", Rule::Spot) {
        assert_eq!(n, 41_249);
    }
}

#[test]
fn usdm_books_equal_an_independent_reading_at_every_message() {
    if let Some(n) = compare("binance/usdm-btcusdt-20240808.hbt.gz", Rule::Futures) {
        assert_eq!(n, 93_954);
    }
}

#[test]
fn at_prints_one_point_and_the_end() {
    let Some(path) = pinion_testkit::data::require("binance/spot-btcusdt-20240808.hbt.gz") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .env("PINION_DATA_DIR", pinion_testkit::data::data_dir())
        .args(["book", "--at", "1500", "--depth", "3", "--input"])
        .arg(&path)
        .output()
        .expect("pinion runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("after")).collect();
    assert_eq!(
        headings,
        [
            "after message 1500 (t_recv 1723161267233364059)",
            "after message 41249 (t_recv 1723161599999231384)"
        ]
    );
    // The end: the book the shipped data's README gives for the last frame.
    let end = &text[text.find("after message 41249").expect("end")..];
    assert!(
        end.contains("binance-spot BTCUSDT: live, update 50093421584, 3 bids 3 asks shown"),
        "{end}"
    );
    assert!(
        end.contains("1.00870000 61685.99 | 61686.00 2.29327000"),
        "{end}"
    );
    // Flags checked before anything runs.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["book", "--at", "5", "--every", "2", "--input"])
        .arg(&path)
        .output()
        .expect("pinion runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
