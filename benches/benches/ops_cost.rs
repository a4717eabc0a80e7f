//! What the operations side costs the hot path: the end-to-end pipeline on a real Binance
//! recording with the metrics endpoint, the structured log, the trade history and the operator
//! bot all on, against the same run with all of them off, interleaved round by round in one run,
//! with a second "off" side as the control (how far two identical sides differ on this host).
//!
//! - Throughput: pacing `max`, placement 2 (feed+book | strategy+gateway) pinned to the first
//!   two allowed cores, the recording converted to `.pnr` first (so inflation does not hide the
//!   stages). Reported: each side's median records/s and the median of the rounds' own on/off
//!   ratios, and the control's.
//! - Latency: pacing `paced` at 20 000 records/s, placement 2 pinned, wait spin-then-yield,
//!   gzip inflated inline (as the e2e benchmark's latency runs); tick-to-trade p50 and p99 of
//!   each side (median over the rounds), and the median of the rounds' own p50 differences,
//!   on - off and the control's.
//!
//! "On" is what a production `pinion replay` runs with: `[metrics] listen` (scraped once a
//! second from outside, as Prometheus would), `[log] level = "info"` to a JSON file,
//! `[history] db` (which also keeps the strategy's fill tape), and `[bot]` against the
//! simulator's Bot API fake in this process, with an operator sending `/status` once a second.
//! "Off" has none of them. Each run is a child process of its own (the log is process-wide, so
//! an "off" run in a process where it was once on would not be off), started alike for every
//! side; which side goes first rotates from round to round, so a host whose speed drifts favours
//! none.
//!
//! The "on" runs are checked to have done their work (the endpoint answered, the bot answered
//! `/status`, the history holds the run): a side that silently did nothing would measure nothing.
//!
//! With `PINION_BENCH_ON=protect` "on" is instead what staying safe when pinion fails adds:
//! `[strategy] protect = "both"` with a stop-loss, a take-profit and a trailing stop (on the
//! simulated venue of a replay the engine holds them and checks them on every view; the Binance
//! venue's guard, which keeps them on the exchange, is not in a replay: its cost is its own
//! tests' allocation counts), `[watchdog] enabled = true` under a systemd played by this
//! benchmark on a `NOTIFY_SOCKET` of its own (`WATCHDOG_USEC` 1 s, so a ping every 0.5 s), and
//! `[heartbeat]` pinging an HTTPS server in this process (the Bot API fake's `getMe`) every
//! second. Those runs are checked to have pinged (`READY=1` and `WATCHDOG=1` received, the
//! heartbeat's requests answered) and to hold exits (the report's `protection`).
//!
//! `cargo bench -p pinion-benches --bench ops_cost` (`PINION_BENCH_ROUNDS`, default 7;
//! `PINION_BENCH_MAX_RECORDS`: where the latency runs stop, default the whole recording; the
//! throughput runs always read all of it; `PINION_BENCH_TPUT_SYNTHETIC=N`: the throughput runs
//! read N records of the built-in synthetic market instead, for runs long enough that start-up
//! work is not read as a cost per record; `PINION_BENCH_ON`: `ops`, the default, or `protect`). Figures depend on the machine state printed first:
//! on a shared or loaded host, read the ratios beside the control's, not the absolute figures.

use pinion_benches::median;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pinion_engine::backtest::BacktestReport;
use pinion_engine::latency::format_ns;
use pinion_engine::ops::history::{HistoryWriter, RunBatch};
use pinion_engine::ops::{events, log};
use pinion_engine::pipeline::{self, Console};
use pinion_engine::runtime::placement::allowed_cores;
use pinion_exchange_sim::{BotApiConfig, BotApiFake, SelfSignedTls};

/// The recording measured.
const RECORDING: &str = "binance/spot-btcusdt-20240808.hbt.gz";
/// Paced rate of the latency runs, records per second.
const PACED_RATE: u64 = 20_000;
/// The bot token the fake accepts (handed to the children in their environment).
const TOKEN: &str = "424242:ops-cost-bench";
/// The variable the children read it from.
const TOKEN_ENV: &str = "PINION_OPS_COST_BOT_TOKEN";
/// The operator's user id.
const OPERATOR: i64 = 42;
/// The child's first argument.
const CHILD: &str = "--ops-cost-child";
/// An input argument naming the synthetic market and its record count (`synthetic:N`).
const SYNTHETIC_PREFIX: &str = "synthetic:";
/// `WATCHDOG_USEC` the protect side's runs get: a ping due every half of it.
const WATCHDOG_USEC: u64 = 1_000_000;

/// What the "on" side turns on (`PINION_BENCH_ON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSet {
    /// The metrics endpoint, the log, the history and the operator bot.
    Ops,
    /// Protective exits (`protect = "both"`), the systemd watchdog and the heartbeat.
    Protect,
}

impl OnSet {
    fn from_env() -> Self {
        match std::env::var("PINION_BENCH_ON").as_deref() {
            Err(_) | Ok("ops") => Self::Ops,
            Ok("protect") => Self::Protect,
            Ok(other) => panic!("PINION_BENCH_ON={other:?}: `ops` or `protect`"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ops => "ops",
            Self::Protect => "protect",
        }
    }
}

/// One child run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    records_per_s: f64,
    orders: u64,
    p50_ns: f64,
    p99_ns: f64,
    /// Protective exits that fired (stop-loss, take-profit, trailing).
    exits: u64,
}

/// What the parent saw of an "on" run from outside.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    scrapes: u64,
    answers: u64,
    ready: u64,
    pings: u64,
    beats: u64,
}

impl Seen {
    fn add(&mut self, other: Self) {
        self.scrapes += other.scrapes;
        self.answers += other.answers;
        self.ready += other.ready;
        self.pings += other.pings;
        self.beats += other.beats;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD) {
        std::process::exit(match child(&args[2..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ops_cost child: {e}");
                1
            }
        });
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = args.iter().any(|a| a == "--bench");
    let set = OnSet::from_env();
    println!("ops_cost: host: {}", pinion_benches::host_state());
    let Some(path) = pinion_testkit::data::require(RECORDING) else {
        println!("ops_cost: {RECORDING} not found; nothing to measure");
        return;
    };
    let rounds: usize = env_number("PINION_BENCH_ROUNDS").unwrap_or(if full { 7 } else { 1 });
    let max_records: u64 =
        env_number("PINION_BENCH_MAX_RECORDS").unwrap_or(if full { 0 } else { 20_000 });
    let scratch = std::env::temp_dir().join(format!("pinion-ops-cost-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        panic!("creating {}: {e}", scratch.display());
    }
    // `PINION_BENCH_TPUT_SYNTHETIC=N`: the throughput runs read N records of the built-in
    // synthetic market instead of the recording's 41,249, so a run lasts seconds, not a tenth
    // of one, and what an "on" side does once at start-up (a first TLS handshake) is not read
    // as a cost per record.
    let synthetic_tput: Option<PathBuf> = env_number::<u64>("PINION_BENCH_TPUT_SYNTHETIC")
        .map(|n| PathBuf::from(format!("{SYNTHETIC_PREFIX}{n}")));
    let pnr = scratch.join("spot.pnr");
    if let Err(e) =
        pipeline::convert_recording(&pinion_benches::replay_settings(&path, &[]), &path, &pnr)
    {
        panic!("converting {RECORDING}: {e}");
    }
    let tls = match SelfSignedTls::generate(&["localhost", "127.0.0.1"]) {
        Ok(t) => t,
        Err(e) => panic!("self-signed certificate: {e}"),
    };
    let cert = scratch.join("bot-cert.pem");
    if let Err(e) = std::fs::write(&cert, &tls.certificate_pem) {
        panic!("writing {}: {e}", cert.display());
    }
    let fake = match BotApiFake::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        BotApiConfig::new(TOKEN),
        tls.server_config,
    ) {
        Ok(f) => f,
        Err(e) => panic!("bot API fake: {e}"),
    };
    let cores: Vec<String> = allowed_cores()
        .iter()
        .take(2)
        .map(ToString::to_string)
        .collect();
    let pinned = format!("[{}]", cores.join(", "));
    let env = Env {
        exe: match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => panic!("the benchmark's own path: {e}"),
        },
        scratch: scratch.clone(),
        cert,
        bot_url: format!("https://127.0.0.1:{}", fake.local_addr().port()),
        pinned,
        max_records,
        full,
        set,
    };

    // Side 0: off; side 1: on; side 2: off again, the control: how far two identical sides
    // differ on this host is the noise any on/off difference is read against.
    let mut tput = [Vec::new(), Vec::new(), Vec::new()];
    let mut lat = [Vec::new(), Vec::new(), Vec::new()];
    let mut seen = Seen::default();
    for round in 0..rounds {
        // Which side goes first rotates from round to round.
        let order = [0, 1, 2].map(|k| (k + round) % 3);
        for kind in ["throughput", "latency"] {
            for side in order {
                let on = side == 1;
                let input = match (&synthetic_tput, kind) {
                    (Some(s), "throughput") => s,
                    (None, "throughput") => &pnr,
                    _ => &path,
                };
                let (run, s) = env.run(&fake, kind, on, input, round);
                if on {
                    seen.add(s);
                }
                if kind == "throughput" {
                    tput[side].push(run);
                } else {
                    lat[side].push(run);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!();
    let on_is = match set {
        OnSet::Ops => {
            "metrics endpoint scraped every 1 s + log at info to a file + history db + bot \
             polled with /status every 1 s"
        }
        OnSet::Protect => {
            "protect = \"both\" (stop-loss 20 bps, take-profit 20 bps, trailing 10 bps; held by \
             the engine on the simulated venue) + systemd watchdog (WATCHDOG_USEC 1 s, a ping \
             every 0.5 s) + HTTPS heartbeat every 1 s"
        }
    };
    println!(
        "{RECORDING}, {rounds} rounds, each running off, on and off again (the control) once per \
         measure, the first rotating, every run a process of its own; placement 2 pinned to {}; \
         on = {on_is}; off = none",
        env.pinned
    );
    let rate = |side: &[Run]| median(side.iter().map(|r| r.records_per_s).collect());
    let best = |side: &[Run]| side.iter().map(|r| r.records_per_s).fold(0.0, f64::max);
    let ratios = |a: &[Run], b: &[Run]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(a, b)| a.records_per_s / b.records_per_s)
            .collect()
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let on_off = ratios(&tput[1], &tput[0]);
    let control = ratios(&tput[2], &tput[0]);
    println!(
        "throughput (pacing max, {}), records/s median (best): off {:.0} ({:.0}), on {:.0} \
         ({:.0}), off again {:.0} ({:.0})",
        synthetic_tput.as_ref().map_or_else(
            || "the recording as .pnr".to_owned(),
            |s| format!("the {}", s.display())
        ),
        rate(&tput[0]),
        best(&tput[0]),
        rate(&tput[1]),
        best(&tput[1]),
        rate(&tput[2]),
        best(&tput[2]),
    );
    println!(
        "  on/off ratio {:.3} (median of the rounds' ratios: {}); control off-again/off {:.3} \
         ({})",
        median(on_off.clone()),
        list(&on_off),
        median(control.clone()),
        list(&control),
    );
    let p = |side: &[Run], f: fn(&Run) -> f64| median(side.iter().map(f).collect());
    let diff = |a: &[Run], b: &[Run]| -> String {
        let d = median(a.iter().zip(b).map(|(a, b)| a.p50_ns - b.p50_ns).collect());
        format!(
            "{}{}",
            if d < 0.0 { "-" } else { "+" },
            format_ns(d.abs() as u64)
        )
    };
    println!(
        "tick-to-trade (paced {PACED_RATE}/s, spin-then-yield, gzip inline), median over the \
         rounds: off p50 {} p99 {} ({} orders), on p50 {} p99 {} ({} orders), off again p50 {} \
         p99 {}",
        format_ns(p(&lat[0], |r| r.p50_ns) as u64),
        format_ns(p(&lat[0], |r| r.p99_ns) as u64),
        p(&lat[0], |r| r.orders as f64),
        format_ns(p(&lat[1], |r| r.p50_ns) as u64),
        format_ns(p(&lat[1], |r| r.p99_ns) as u64),
        p(&lat[1], |r| r.orders as f64),
        format_ns(p(&lat[2], |r| r.p50_ns) as u64),
        format_ns(p(&lat[2], |r| r.p99_ns) as u64),
    );
    println!(
        "  p50 on-off {} (median of the rounds' differences); control off-again-off {}",
        diff(&lat[1], &lat[0]),
        diff(&lat[2], &lat[0]),
    );
    match set {
        OnSet::Ops => {
            println!(
                "the on runs were served: {} metrics scrapes answered, {} bot answers to /status",
                seen.scrapes, seen.answers
            );
            assert!(
                seen.scrapes > 0 && seen.answers > 0,
                "the on runs did not serve their metrics or bot: the comparison would mean nothing"
            );
        }
        OnSet::Protect => {
            let exits = |side: &[Run]| side.iter().map(|r| r.exits).sum::<u64>();
            println!(
                "the on runs were live: {} READY=1 and {} WATCHDOG=1 received, {} heartbeats \
                 answered; protective exits fired: {} in the throughput runs, {} in the latency \
                 runs (off: {} and {})",
                seen.ready,
                seen.pings,
                seen.beats,
                exits(&tput[1]),
                exits(&lat[1]),
                exits(&tput[0]),
                exits(&lat[0]),
            );
            assert!(
                seen.ready == 2 * rounds as u64 && seen.pings > 0 && seen.beats > 0,
                "the on runs did not ping their watchdog or heartbeat: the comparison would mean \
                 nothing"
            );
        }
    }
}

/// What every child run shares.
#[derive(Debug)]
struct Env {
    exe: PathBuf,
    scratch: PathBuf,
    cert: PathBuf,
    bot_url: String,
    pinned: String,
    max_records: u64,
    full: bool,
    set: OnSet,
}

impl Env {
    /// Runs one child and, for an "on" run, plays Prometheus and the operator while it runs.
    fn run(
        &self,
        fake: &BotApiFake,
        kind: &str,
        on: bool,
        input: &Path,
        round: usize,
    ) -> (Run, Seen) {
        let port = if on && self.set == OnSet::Ops {
            free_port()
        } else {
            0
        };
        let tag = format!("{kind}-{round}-{}", if on { "on" } else { "off" });
        let mut cmd = Command::new(&self.exe);
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        // Plays systemd for a protect run: the socket its notifications come to.
        let notify = if on && self.set == OnSet::Protect {
            let path = self.scratch.join(format!("{tag}.notify"));
            let socket = match UnixDatagram::bind(&path) {
                Ok(s) => s,
                Err(e) => panic!("binding {}: {e}", path.display()),
            };
            if let Err(e) = socket.set_nonblocking(true) {
                panic!("the notify socket: {e}");
            }
            cmd.env("NOTIFY_SOCKET", &path)
                .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string());
            Some(socket)
        } else {
            None
        };
        cmd.arg(CHILD)
            .arg(kind)
            .arg(if on { self.set.name() } else { "off" })
            .arg(input)
            .arg(&self.pinned)
            // Full throughput runs read the whole recording; latency runs stop at `max_records`.
            .arg(if kind == "throughput" && self.full {
                "0".to_owned()
            } else {
                self.max_records.to_string()
            })
            .arg(self.scratch.join(&tag))
            .arg(port.to_string())
            .arg(&self.bot_url)
            .arg(&self.cert)
            .env(TOKEN_ENV, TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let answered_before = answers(fake);
        let calls_before = fake.stats().calls;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("starting a child run: {e}"),
        };
        let mut seen = Seen::default();
        let mut next = Instant::now() + Duration::from_millis(500);
        let mut buf = [0u8; 256];
        loop {
            if let Some(socket) = &notify {
                while let Ok(n) = socket.recv(&mut buf) {
                    for line in buf[..n].split(|&b| b == b'\n') {
                        match line {
                            b"READY=1" => seen.ready += 1,
                            b"WATCHDOG=1" => seen.pings += 1,
                            _ => {}
                        }
                    }
                }
            }
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => panic!("waiting for a child run: {e}"),
            }
            if on && self.set == OnSet::Ops && Instant::now() >= next {
                next += Duration::from_secs(1);
                if scrape(port) {
                    seen.scrapes += 1;
                }
                fake.inject(OPERATOR, "/status");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => panic!("a child run's output: {e}"),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "the {tag} run failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let run = match parse_child(&stdout) {
            Some(r) => r,
            None => panic!("the {tag} run printed no figures: {stdout}"),
        };
        if on && self.set == OnSet::Ops {
            // The bot answers what was sent during the run within its next poll; give it a
            // moment past the child's end only to count (the child is gone: nothing is lost by
            // not waiting).
            seen.answers = answers(fake).saturating_sub(answered_before);
        }
        if on && self.set == OnSet::Protect {
            // No bot runs beside a protect run: every call the fake answered was a heartbeat.
            seen.beats = fake.stats().calls.saturating_sub(calls_before);
        }
        (run, seen)
    }
}

/// Messages the bot sent that answer `/status` (they start with the trading state).
fn answers(fake: &BotApiFake) -> u64 {
    fake.sent()
        .iter()
        .filter(|m| m.chat_id == OPERATOR && m.text.starts_with("State: "))
        .count() as u64
}

/// A port free now, for a child's metrics endpoint.
fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("finding a free port: {e}"),
    }
}

/// One `GET /metrics`; whether a 200 with samples came back.
fn scrape(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.starts_with("HTTP/1.1 200") && body.contains("pinion_")
}

fn parse_child(out: &str) -> Option<Run> {
    let line = out.lines().find(|l| l.starts_with("ops_cost_child "))?;
    let field = |name: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    Some(Run {
        records_per_s: field("records_per_s")?,
        orders: field("orders")? as u64,
        p50_ns: field("p50_ns")?,
        p99_ns: field("p99_ns")?,
        exits: field("exits")? as u64,
    })
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// A child: one run as `pinion replay` makes it (log, history, events, the pipeline), printing
/// its figures on one line.
fn child(args: &[String]) -> Result<(), String> {
    let [
        kind,
        side,
        input,
        pinned,
        max_records,
        scratch,
        port,
        bot_url,
        cert,
    ] = args
    else {
        return Err(format!("expected 9 arguments, got {args:?}"));
    };
    let on = side == "ops";
    let protect = side == "protect";
    let scratch = PathBuf::from(scratch);
    let mut o: Vec<(&str, String)> = vec![
        ("placement.mode", "2".into()),
        ("placement.cores", pinned.clone()),
        ("input.max_records", max_records.clone()),
    ];
    if kind == "throughput" {
        o.push(("pacing.mode", "max".into()));
        o.push(("placement.wait", "spin-then-yield".into()));
    } else {
        o.push(("pacing.mode", "paced".into()));
        o.push(("pacing.rate", PACED_RATE.to_string()));
        // Not busy-spin: with two cores both taken by spinning stages, the "on" side's own
        // threads (endpoint, logger, bot) could only run by preempting a stage.
        o.push(("placement.wait", "spin-then-yield".into()));
        o.push(("input.read_ahead", "false".into()));
    }
    if on {
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let quoted = |p: PathBuf| format!("{:?}", p.to_string_lossy());
        o.push(("metrics.listen", format!("\"127.0.0.1:{port}\"")));
        o.push(("log.level", "\"info\"".into()));
        o.push(("log.file", quoted(scratch.join("log.jsonl"))));
        o.push(("history.db", quoted(scratch.join("history.db"))));
        o.push(("bot.api_url", format!("{bot_url:?}")));
        o.push(("bot.ca_file", format!("{cert:?}")));
        o.push(("bot.token_env", format!("{TOKEN_ENV:?}")));
        o.push(("bot.users", format!("[{OPERATOR}]")));
        o.push(("bot.poll_timeout_s", "2".into()));
    }
    if protect {
        o.push(("strategy.protect", "\"both\"".into()));
        o.push(("protection.stop_loss_bps", "20".into()));
        o.push(("protection.take_profit_bps", "20".into()));
        o.push(("protection.trailing_bps", "10".into()));
        o.push(("watchdog.enabled", "true".into()));
        o.push(("heartbeat.url", format!("\"{bot_url}/bot{TOKEN}/getMe\"")));
        o.push(("heartbeat.period_s", "1".into()));
        o.push(("heartbeat.ca_file", format!("{cert:?}")));
    }
    let input = match input.strip_prefix(SYNTHETIC_PREFIX) {
        Some(records) => {
            o.push(("synthetic.records", records.to_owned()));
            "synthetic"
        }
        None => input.as_str(),
    };
    let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut settings = pinion_benches::replay_settings(Path::new(input), &o);
    let logger = if on {
        Some(log::init(&settings.log).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let history = match &settings.history {
        Some(p) => Some(HistoryWriter::start(p).map_err(|e| e.to_string())?),
        None => None,
    };
    if history.is_some() {
        // As `pinion replay` does: the fills reach the history from the strategy's tape.
        settings.backtest.record = true;
    }
    events::started("replay", &settings);
    let report = pipeline::run(&settings, Arc::new(AtomicBool::new(false)), Console::QUIET)
        .map_err(|e| e.to_string())?;
    events::ended("replay", &report);
    if let Some(writer) = history {
        let bt = BacktestReport::new(&report, &settings.backtest);
        let batch = RunBatch::new("replay", 0, &report.origin, &report.input.description, &bt);
        writer.send(batch).map_err(|e| e.to_string())?;
        let written = writer.finish().map_err(|e| e.to_string())?;
        if written.is_empty() {
            return Err("the history recorded no run".into());
        }
    }
    if let Some(l) = logger {
        let s = l.finish();
        if s.written == 0 {
            return Err("the log wrote no record".into());
        }
    }
    if protect && report.trading.iter().all(|t| t.protection == "none") {
        return Err("no instrument holds protective exits".into());
    }
    let exits: u64 = report
        .trading
        .iter()
        .map(|t| t.exits.stop_losses + t.exits.take_profits + t.exits.trailing_stops)
        .sum();
    let t2t = report.latency.get("tick_to_trade");
    let q = |p: f64| t2t.map_or(0.0, |h| h.hist.value_at_quantile(p) as f64);
    println!(
        "ops_cost_child records_per_s={:.1} orders={} p50_ns={} p99_ns={} exits={exits}",
        report.throughput.records_per_second(),
        t2t.map_or(0, |h| h.count()),
        q(0.5),
        q(0.99),
    );
    Ok(())
}
