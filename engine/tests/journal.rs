//! The trading journal under SIGKILL: `pinion live --trade` runs against the exchange
//! simulator on one journal, is killed with SIGKILL at seeded random points, and is started
//! again each time on the same journal. Then:
//!
//! - every journal read after a kill holds everything the one before held (nothing written is
//!   lost, a torn tail is all a kill may leave);
//! - every order the exchange ever had is in the journal, its filled quantity and final state
//!   equal to the exchange's (orders left open by a killed session were reconciled by the next
//!   one, and what that learned was journaled);
//! - the position the last session reports, and the one the journal's fills add up to, equal
//!   the net of the exchange's trades;
//! - no client order id reached the exchange twice.
//!
//! The runs use the `pinion` binary itself, as `engine/tests/trade.rs` does.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sim::*;
use pinion_engine::ops::journal::{Record, Recovered, frame};
use pinion_exchange_sim::wsapi::SimAccount;
use pinion_gateway::binance::client_id::{ClientIdCodec, ClientIdKind, RunEpoch};
use pinion_strategy::OrderStatus;
use serde_json::Value;

/// A small deterministic generator for the kill points.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` ms.
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

fn spawn(config: &Path, pem: &str, seconds: f64, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pinion"))
        .arg("live")
        .arg("--config")
        .arg(config)
        .arg("--trade")
        .arg("--duration")
        .arg(seconds.to_string())
        .arg("--no-progress")
        .arg("--account-out")
        .arg(dir.join("account.json"))
        .arg("--report-json")
        .arg(dir.join("report.json"))
        .env("PINION_TEST_API_KEY", TRADE_API_KEY)
        .env("PINION_TEST_SECRET", pem)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pinion runs")
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

fn read_json(p: &Path) -> Value {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// A decimal string as an exact integer count of 1e-8.
fn units(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let int: i64 = int.trim_start_matches('-').parse().unwrap_or(0);
    let mut f = frac.to_owned();
    f.truncate(8);
    while f.len() < 8 {
        f.push('0');
    }
    let v = int * 100_000_000 + f.parse::<i64>().unwrap_or(0);
    if neg { -v } else { v }
}

/// The journal's status for an order the exchange ended with `status`.
fn closed_as(status: &str) -> Option<OrderStatus> {
    match status {
        "FILLED" => Some(OrderStatus::Filled),
        "CANCELED" => Some(OrderStatus::Canceled),
        "EXPIRED" | "EXPIRED_IN_MATCH" => Some(OrderStatus::Expired),
        _ => None,
    }
}

/// The orders a resumed session said it took over from the journal to reconcile.
fn left_open(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("; ")?;
            let n = rest.strip_suffix(" orders left open taken to reconcile with the venue")?;
            n.trim().parse().ok()
        })
        .unwrap_or(0)
}

fn net_of(sim: &SimAccount) -> i64 {
    sim.trades
        .iter()
        .map(|t| if t.is_buyer { 1 } else { -1 } * units(&t.qty))
        .sum()
}

/// A trading config for `sim` with `strategies` and a journal, written into the simulator's
/// directory: that directory, the journal's path and the config's.
fn journaled_config(
    sim: &Sim,
    strategies: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = sim.dir.0.clone();
    let journal = dir.join("journal.bin");
    let mut base = trading_config(
        sim,
        "recv_window_ms = 5000\nanswer_timeout_ms = 1000\nquery_after_ms = 1500\n",
    );
    if strategies.contains("[placement]") {
        // The strategies come with their own placement.
        base = base.replace("[placement]\nmode = \"2\"\nwait = \"park\"\n", "");
    }
    let config = base
        + strategies
        + &format!(
            "\n[journal]\npath = \"{}\"\nfsync = \"every\"\n",
            journal.display()
        );
    let config_path = dir.join("trade.toml");
    std::fs::write(&config_path, config).expect("write config");
    (dir, journal, config_path)
}

#[test]
fn sigkilled_sessions_resume_from_the_journal_and_end_equal_to_the_exchange() {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let (dir, journal, config_path) = journaled_config(&sim, RESTING_QUOTES);

    let mut rng = SplitMix(0x5eed_0017);
    let kills = 3;
    let mut before: Vec<frame::Scan> = Vec::new();
    let mut adopted = 0;
    for k in 0..kills {
        let mut child = spawn(&config_path, &pem, 60.0, &dir);
        if k == 0 {
            // The market opens once the first session has subscribed.
            let deadline = Instant::now() + Duration::from_secs(20);
            while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            sim.exchange.release();
        }
        std::thread::sleep(rng.ms(2_500, 6_000));
        // SAFETY: a plain kill(2) on the child's pid.
        let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(sent, 0, "SIGKILL sent");
        let status = child.wait().expect("pinion ends");
        let stderr = stderr_of(&mut child);
        assert_eq!(status.code(), None, "killed, not ended: {stderr}");
        if k > 0 {
            assert!(stderr.contains("journal resumed"), "kill {k}: {stderr}");
            adopted += left_open(&stderr);
        }
        let bytes = std::fs::read(&journal).expect("the journal exists");
        let scan = frame::scan(&bytes).expect("a killed session leaves a readable journal");
        if let Some(prev) = before.last() {
            assert!(
                scan.records.len() >= prev.records.len()
                    && scan.records[..prev.records.len()] == prev.records[..],
                "kill {k}: the journal lost records the last one had"
            );
        }
        let sessions = Recovered::from_scan(&scan).sessions;
        assert_eq!(sessions, k + 1, "kill {k}: one session record per start");
        before.push(scan);
        // The exchange goes on while pinion is down: resting orders may fill meanwhile.
        std::thread::sleep(rng.ms(1_000, 4_000));
    }

    // A last session, which ends cleanly (cancelling what is open).
    let mut child = spawn(&config_path, &pem, 6.0, &dir);
    let stderr = stderr_of(&mut child);
    let status = child.wait().expect("pinion ends");
    assert_eq!(status.code(), Some(0), "the last session failed:\n{stderr}");
    assert!(stderr.contains("journal resumed"), "{stderr}");
    adopted += left_open(&stderr);
    assert!(
        adopted > 0,
        "no kill left an order open for the next session to reconcile"
    );

    let exchange = sim.exchange.sim_account();
    let bytes = std::fs::read(&journal).expect("journal");
    let scan = frame::scan(&bytes).expect("the journal reads");
    assert_eq!(scan.torn, 0, "a clean end leaves no torn tail");
    let recovered = Recovered::from_scan(&scan);
    assert_eq!(recovered.sessions, kills + 1);
    let epoch = RunEpoch::new(recovered.epoch.expect("an epoch")).expect("epoch");
    let codec = ClientIdCodec::new(epoch);
    let log = recovered.instrument(0).expect("instrument 0 journaled");

    assert!(!exchange.orders.is_empty(), "no order reached the exchange");
    assert!(!exchange.trades.is_empty(), "nothing traded");
    let mut seen = BTreeSet::new();
    let mut cancelled = 0;
    for o in &exchange.orders {
        assert!(
            seen.insert(o.client_order_id.clone()),
            "{} placed twice",
            o.client_order_id
        );
        let id = match codec.decode(o.client_order_id.as_bytes()) {
            Ok(ClientIdKind::Ours(id)) => id,
            other => panic!(
                "{}: not of the journal's epoch: {other:?}",
                o.client_order_id
            ),
        };
        let mine = log.orders.get(&id.0).unwrap_or_else(|| {
            panic!(
                "the exchange has {} which the journal lost",
                o.client_order_id
            )
        });
        assert_eq!(
            mine.cum_qty.0,
            units(&o.executed_qty),
            "{}: filled",
            o.client_order_id
        );
        let want = closed_as(&o.status).unwrap_or_else(|| {
            panic!("{} still {} after a clean end", o.client_order_id, o.status)
        });
        assert_eq!(mine.status, Some(want), "{}", o.client_order_id);
        if o.status == "CANCELED" {
            cancelled += 1;
        }
    }
    assert!(cancelled > 0, "no order rested to be cancelled");
    // Reports a session journaled about orders an earlier session placed: what it learned by
    // reconciling.
    let mut session = 0;
    let mut placed_in: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut learned, mut learned_fills) = (0, 0);
    for r in &scan.records {
        match r {
            Record::Session(_) => session += 1,
            Record::Order(o) => {
                // Every order and cancel, of every session and whoever sent it, says why.
                assert!(o.reason.is_known(), "journaled without a reason: {o:?}");
                placed_in.entry(o.client_id.0).or_insert(session);
            }
            Record::Report(rep) => {
                if placed_in
                    .get(&rep.client_id.0)
                    .is_some_and(|&s| s < session)
                {
                    learned += 1;
                    learned_fills += u64::from(rep.is_fill());
                }
            }
            Record::Position(_) | Record::Instrument(_) | Record::Operator(_) => {}
        }
    }
    assert!(
        learned > 0,
        "no restarted session reported on an order an earlier one placed"
    );
    eprintln!(
        "journal: {} records over {} sessions; the exchange had {} orders, {} trades; {adopted} orders taken over by a restarted session, {learned} reports on them ({learned_fills} fills)",
        scan.records.len(),
        recovered.sessions,
        exchange.orders.len(),
        exchange.trades.len()
    );

    // Positions: the exchange's trades, the last session's report, the journal's fills.
    let net = net_of(&exchange);
    let report = read_json(&dir.join("report.json"));
    let position = report["trading"][0]["position"]
        .as_str()
        .map(units)
        .expect("position in the report");
    assert_eq!(position, net, "the last session's position");
    let journaled: i64 = log.fills.iter().map(|f| f.side.sign() * f.last_qty.0).sum();
    assert_eq!(journaled, net, "the journal's fills");
    let last = log.last_position.expect("a position journaled");
    assert_eq!(last.qty.0, net, "the last position journaled");
    // Every trade the exchange made is one journaled fill (the same count per order).
    let mut trades_per_order: BTreeMap<u64, i64> = BTreeMap::new();
    for t in &exchange.trades {
        *trades_per_order.entry(t.order_id).or_default() += units(&t.qty);
    }
    for (order_id, qty) in trades_per_order {
        let filled: i64 = log
            .orders
            .values()
            .filter(|o| o.venue_id == Some(order_id))
            .map(|o| o.cum_qty.0)
            .sum();
        assert_eq!(filled, qty, "order {order_id}: journaled fills");
    }
}

/// The fills (side, price, quantity, position after) the history file holds for its one run,
/// in order; `None` while it cannot be read yet.
fn history_fills(db: &Path) -> Option<Vec<(String, String, String, String)>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    let mut q = conn
        .prepare("SELECT side, price, qty, position FROM fills ORDER BY seq")
        .ok()?;
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .ok()?;
    rows.collect::<Result<Vec<_>, _>>().ok()
}

#[test]
fn a_sigkilled_session_leaves_its_fills_in_the_history_as_the_journal_had_them() {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let dir = sim.dir.0.clone();
    let journal = dir.join("journal.bin");
    let db = dir.join("history.db");
    let config = trading_config(&sim, "")
        + RESTING_QUOTES
        + &format!(
            "\n[journal]\npath = \"{}\"\nfsync = \"every\"\n\n[history]\ndb = \"{}\"\n",
            journal.display(),
            db.display()
        );
    let config_path = dir.join("trade.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut child = spawn(&config_path, &pem, 60.0, &dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    // The history fills while the session runs, not at its end.
    let deadline = Instant::now() + Duration::from_secs(40);
    while history_fills(&db).is_none_or(|f| f.len() < 3) {
        assert!(
            Instant::now() < deadline,
            "no fills reached the history while the session ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: a plain kill(2) on the child's pid.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(sent, 0, "SIGKILL sent");
    let status = child.wait().expect("pinion ends");
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), None, "killed, not ended: {stderr}");

    let conn = rusqlite::Connection::open(&db).expect("the history opens after the kill");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    let fills = history_fills(&db).expect("the fills read");
    assert!(fills.len() >= 3, "{fills:?}");
    // Each row whole: the position after each fill is the sum of the fills before it.
    let mut position = 0;
    for (side, _, qty, after) in &fills {
        position += if side == "buy" { 1 } else { -1 } * units(qty);
        assert_eq!(position, units(after), "{fills:?}");
    }
    let (stored, at): (String, i64) = conn
        .query_row(
            "SELECT position, time_ns FROM positions WHERE symbol = 'BTCUSDT'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the position row");
    assert_eq!(
        units(&stored),
        position,
        "the positions table is the last fill's"
    );
    assert!(at > 0);
    // Nothing the journal had not written, in its order: the journal's fills start with them.
    let bytes = std::fs::read(&journal).expect("the journal exists");
    let scan = frame::scan(&bytes).expect("a readable journal");
    let journaled: Vec<(i64, i64)> = scan
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Report(rep) if rep.last_qty.0 > 0 => Some((rep.last_px.0, rep.last_qty.0)),
            _ => None,
        })
        .collect();
    assert!(journaled.len() >= fills.len(), "{journaled:?} {fills:?}");
    // Raw units against decimals: one scale for each, whatever the instrument's decimals.
    let scale = |raw: i64, text: &str| units(text) / raw.max(1);
    let (px_scale, qty_scale) = (
        scale(journaled[0].0, &fills[0].1),
        scale(journaled[0].1, &fills[0].2),
    );
    for ((px, qty), (_, p, q, _)) in journaled.iter().zip(&fills) {
        assert_eq!((px * px_scale, qty * qty_scale), (units(p), units(q)));
    }
    // `pinion history` reads the killed session's file.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["history", "--db"])
        .arg(&db)
        .args(["fills", "--csv"])
        .output()
        .expect("pinion history runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        csv.lines().count(),
        fills.len() + 1,
        "a header and each fill:\n{csv}"
    );
    // By reason: every fill is of an order this session journaled with its reason, and the
    // rows add up to every fill.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["history", "--db"])
        .arg(&db)
        .args(["pnl", "--by", "reason", "--csv"])
        .output()
        .expect("pinion history runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(!rows.is_empty(), "{csv}");
    assert!(rows.iter().all(|r| r[0] != "s0:unknown"), "{csv}");
    let by_reason: usize = rows
        .iter()
        .map(|r| r[1].parse::<usize>().expect("fills"))
        .sum();
    assert_eq!(by_reason, fills.len(), "{csv}");
    // By strategy: the one instance, by the name the session's start wrote (a lone
    // [strategy] is named after its kind), with every fill and, as the session never ended,
    // its order rows counted.
    let out = Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["history", "--db"])
        .arg(&db)
        .args(["pnl", "--by", "strategy", "--csv"])
        .output()
        .expect("pinion history runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("strategy,orders,fills,realized_pnl,fees,unrealized_pnl,net_pnl")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(rows[0][0], "market-making", "{csv}");
    let orders: usize = rows[0][1].parse().expect("orders");
    assert!(orders > 0, "the orders filled were counted: {csv}");
    assert_eq!(rows[0][2], fills.len().to_string(), "{csv}");
}

/// Two strategy instances on one account, SIGKILLed mid-session and resumed from the journal:
/// each instance goes on in its own slice of client ids past the highest it had journaled (no
/// id reaches the exchange twice, and every order there is in the slice of the instance it
/// names), and the last session ends with the exchange's position.
#[test]
fn two_instances_resume_each_in_its_own_id_range() {
    resume_two_instances(TWO_INSTANCES);
}

/// The same, the two instances on a second strategy stage of their own thread: their records
/// reach the journal through that stage's ring, and the resumed session replays them into it.
#[test]
fn two_instances_on_a_second_strategy_stage_resume_from_its_journal_ring() {
    resume_two_instances(&format!(
        "
[placement]
mode = \"custom\"
wait = \"park\"
[[placement.threads]]
name = \"market\"
stages = [\"feed\", \"book\", \"strategy\"]
[[placement.threads]]
name = \"trading\"
stages = [\"strategy:mid+micro\", \"gateway\"]
{TWO_INSTANCES}"
    ));
}

/// Two instances on one instrument (`strategies`), a session SIGKILLed mid-run and resumed
/// from the journal: every order placed once, each strategy order in its instance's id range
/// and journaled with its instance, and the resumed positions adding up to the exchange's.
fn resume_two_instances(strategies: &str) {
    let (pem, public) = ed25519_key();
    let sim = start_trading_sim(public, "");
    let (dir, journal, config_path) = journaled_config(&sim, strategies);

    let mut child = spawn(&config_path, &pem, 60.0, &dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.exchange.stats().control_requests == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sim.exchange.release();
    std::thread::sleep(Duration::from_millis(4_000));
    // SAFETY: a plain kill(2) on the child's pid.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(sent, 0, "SIGKILL sent");
    let _ = child.wait();
    let mut child = spawn(&config_path, &pem, 5.0, &dir);
    let stderr = stderr_of(&mut child);
    let status = child.wait().expect("pinion ends");
    assert_eq!(
        status.code(),
        Some(0),
        "the resumed session failed:\n{stderr}"
    );
    assert!(stderr.contains("journal resumed"), "{stderr}");

    let exchange = sim.exchange.sim_account();
    let scan = frame::scan(&std::fs::read(&journal).expect("journal")).expect("it reads");
    let recovered = Recovered::from_scan(&scan);
    let codec =
        ClientIdCodec::new(RunEpoch::new(recovered.epoch.expect("an epoch")).expect("epoch"));
    let log = recovered.instrument(0).expect("instrument 0 journaled");
    let mut seen = BTreeSet::new();
    let mut per_instance = [0u32; 2];
    for o in &exchange.orders {
        assert!(
            seen.insert(o.client_order_id.clone()),
            "{} placed twice",
            o.client_order_id
        );
        let Ok(ClientIdKind::Ours(id)) = codec.decode(o.client_order_id.as_bytes()) else {
            panic!("{}: not of the journal's epoch", o.client_order_id);
        };
        let mine = log.orders.get(&id.0).expect("journaled");
        // Strategy ids (neither the stage's nor the operator's bits): bits 30..36 are the slot.
        if id.0 & ((1 << 39) | (1 << 37)) == 0 {
            let slot = (id.0 >> 30) & 0x7f;
            assert_eq!(
                u64::from(mine.reason.strategy),
                slot,
                "{}",
                o.client_order_id
            );
            per_instance[slot as usize] += 1;
        }
    }
    assert!(
        per_instance.iter().all(|&n| n > 0),
        "both instances placed orders: {per_instance:?}"
    );
    let report = read_json(&dir.join("report.json"));
    let position = report["trading"][0]["position"]
        .as_str()
        .map(units)
        .expect("position in the report");
    assert_eq!(
        position,
        net_of(&exchange),
        "the resumed session's position"
    );
    let by = report["trading"][0]["by_strategy"]
        .as_array()
        .expect("by_strategy");
    let instances: i64 = by
        .iter()
        .map(|r| units(r["position"].as_str().expect("position")))
        .sum();
    assert_eq!(
        instances, position,
        "the instances' positions, resumed from the journal, add up to the account's"
    );
}
