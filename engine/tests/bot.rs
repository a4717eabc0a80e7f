//! The operator bot against the exchange simulator's Bot API fake, over real TLS on loopback:
//! commands through the control block, the whitelist, the kill confirmation and its timeout,
//! alert coalescing, and an outage of the API with the alerts delivered after it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::{InstrumentSpec, Instruments, Qty, Venue};
use pinion_engine::bot::{BotContext, BotHandle};
use pinion_engine::config::BotSettings;
use pinion_engine::control::{Control, KillReason};
use pinion_exchange_sim::{BotApiConfig, BotApiFake, DownMode, SelfSignedTls, SentMessage};
use pinion_strategy::{FlattenCause, FlattenOutcome};

const TOKEN: &str = "123456:TEST-token_for_the_fake";
const OPERATOR: i64 = 4242;
const STRANGER: i64 = 666;

/// The bot is declared first so that it stops before the fake does.
struct Rig {
    bot: Option<BotHandle>,
    fake: BotApiFake,
    control: Arc<Control>,
    cert: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert);
    }
}

fn rig(tune: impl FnOnce(&mut BotSettings)) -> Rig {
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let fake = BotApiFake::start(
        "127.0.0.1:0".parse().expect("addr"),
        BotApiConfig::new(TOKEN),
        Arc::clone(&tls.server_config),
    )
    .expect("fake");
    let cert = std::env::temp_dir().join(format!(
        "pinion-bot-{}-{}.pem",
        std::process::id(),
        fake.local_addr().port()
    ));
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");
    // The same trust path as the pipeline's: the public roots plus the configured file.
    let trust = pinion_engine::pipeline::trust(Some(&cert)).expect("trust");
    let mut instruments = Instruments::new();
    let spec = InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").expect("spec");
    instruments.add(spec).expect("add");
    let control = Control::new(&instruments);
    let mut settings = BotSettings::new(&fake.base_url(), vec![OPERATOR]);
    settings.poll_timeout = Duration::from_secs(1);
    settings.fill_alerts = None;
    settings.heartbeat = None;
    settings.summary = None;
    settings.backoff_cap = Duration::from_secs(1);
    tune(&mut settings);
    let ctx = BotContext {
        control: Arc::clone(&control),
        sources: None,
        limits: vec!["max position 0.01 BTC".to_owned()],
    };
    let bot = BotHandle::start(&settings, TOKEN, trust, ctx).expect("bot");
    Rig {
        fake,
        control,
        bot: Some(bot),
        cert,
    }
}

impl Rig {
    fn bot(&self) -> &BotHandle {
        self.bot.as_ref().expect("running")
    }

    fn to(&self, chat: i64) -> Vec<SentMessage> {
        self.fake
            .sent()
            .into_iter()
            .filter(|m| m.chat_id == chat)
            .collect()
    }

    /// Sends `text` as the operator and waits for the reply that contains `expect`.
    fn ask(&self, text: &str, expect: &str) -> String {
        let before = self.to(OPERATOR).len();
        self.fake.inject(OPERATOR, text);
        let found = wait_for(Duration::from_secs(10), || {
            self.to(OPERATOR)[before..]
                .iter()
                .find(|m| m.text.contains(expect))
                .map(|m| m.text.clone())
        });
        found.unwrap_or_else(|| {
            panic!(
                "no reply to {text:?} containing {expect:?}; sent: {:?}",
                self.fake.sent()
            )
        })
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("ms fit")
}

fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn commands_reach_the_control_block_and_a_kill_needs_its_confirmation() {
    let rig = rig(|_| {});
    rig.ask("/pause", "Paused");
    assert!(rig.control.paused());
    let status = rig.ask("/status", "State:");
    assert!(status.starts_with("State: PAUSED"), "{status}");
    rig.ask("/resume", "Resumed");
    assert!(!rig.control.paused());
    rig.ask("/cancelall", "Cancel-all requested");
    assert_eq!(rig.control.stats().cancel_all_requests, 1);
    rig.ask("/limits", "max position 0.01 BTC");
    rig.ask("/positions", "BTCUSDT: position 0");
    rig.ask("/book BTCUSDT", "BTCUSDT: mid -");
    rig.ask("/help", "/kill");
    rig.ask("/kill", "Reply /kill confirm");
    assert_eq!(
        rig.control.kill_reason(),
        None,
        "a /kill alone kills nothing"
    );
    rig.ask("/kill confirm", "KILLED");
    assert_eq!(rig.control.kill_reason(), Some(KillReason::Operator));
    // The kill switch is also raised as an alert.
    assert!(
        wait_for(Duration::from_secs(5), || {
            rig.to(OPERATOR)
                .iter()
                .any(|m| m.text.contains("KILL SWITCH: trading killed (operator)"))
                .then_some(())
        })
        .is_some(),
        "kill alert: {:?}",
        rig.fake.sent()
    );
    let all = rig.fake.sent();
    assert!(all.iter().all(|m| !m.text.contains(TOKEN)));
    let stats = rig.bot().stats();
    assert_eq!(stats.ignored, 0);
    assert_eq!(stats.commands, 10, "{stats:?}");
}

#[test]
fn only_the_configured_users_are_answered_and_strangers_are_counted() {
    let rig = rig(|_| {});
    rig.fake.inject(STRANGER, "/kill confirm");
    rig.fake.inject(STRANGER, "/pause");
    rig.fake.inject_in(STRANGER, OPERATOR, "/cancelall");
    // The operator's message comes after the strangers': once it is answered, theirs were read.
    rig.ask("/status", "State: trading");
    assert_eq!(rig.bot().stats().ignored, 3);
    assert_eq!(rig.control.kill_reason(), None);
    assert!(!rig.control.paused());
    assert_eq!(rig.control.stats().cancel_all_requests, 0);
    assert!(rig.to(STRANGER).is_empty(), "{:?}", rig.to(STRANGER));
    assert_eq!(rig.fake.pending_updates(), 0, "every update is confirmed");
}

#[test]
fn a_kill_confirmation_that_comes_too_late_does_nothing() {
    // Replies to one chat are paced a second apart, so the window is longer than that.
    let rig = rig(|s| s.kill_confirm = Duration::from_secs(3));
    rig.ask("/kill", "within 3 s");
    std::thread::sleep(Duration::from_millis(3200));
    rig.ask("yes", "expired");
    assert_eq!(rig.control.kill_reason(), None);
    // And a confirmation in time does it.
    rig.ask("/kill", "Reply /kill confirm");
    rig.ask("yes", "KILLED");
    assert_eq!(rig.control.kill_reason(), Some(KillReason::Operator));
}

#[test]
fn a_flatten_needs_its_confirmation_in_time_and_its_end_is_alerted() {
    let rig = rig(|s| s.kill_confirm = Duration::from_secs(3));
    let mut reader = rig.control.reader();
    let ask = rig.ask("/flatten btcusdt", "Reply /flatten confirm");
    assert!(ask.starts_with("Flatten BTCUSDT?"), "{ask}");
    std::thread::sleep(Duration::from_millis(3200));
    rig.ask("/flatten confirm", "expired");
    assert!(
        !reader.poll().flatten,
        "an expired confirmation asked for a flatten"
    );
    assert_eq!(rig.control.stats().flatten_requests, 0);
    rig.ask("/flatten NOPE", "No instrument NOPE");
    // In time, it reaches the control block for that instrument, and it is not a kill.
    rig.ask("/flatten BTCUSDT", "Reply /flatten confirm");
    rig.ask("yes", "FLATTEN BTCUSDT");
    assert!(reader.poll().flatten);
    assert_eq!(reader.take_flatten(0), Some(FlattenCause::Operator));
    assert_eq!(rig.control.kill_reason(), None);
    // The stage's account of the run comes back as alerts.
    let board = rig.control.flattens();
    board.started(0, FlattenCause::Operator);
    wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .iter()
            .any(|m| m.text.contains("flatten BTCUSDT: started (operator)"))
            .then_some(())
    })
    .expect("the start is alerted");
    board.ended(0, FlattenCause::Operator, FlattenOutcome::Done, Qty::ZERO);
    wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .iter()
            .any(|m| m.text.contains("flatten BTCUSDT: done, position 0"))
            .then_some(())
    })
    .expect("the end is alerted");
    board.started(0, FlattenCause::Derisk);
    board.ended(
        0,
        FlattenCause::Derisk,
        FlattenOutcome::DeadlinePassed,
        Qty(250),
    );
    wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .iter()
            .any(|m| {
                m.text
                    .contains("de-risk BTCUSDT: deadline passed, position 0.0025 left")
            })
            .then_some(())
    })
    .expect("a de-risk that ran out of time is alerted with what it left");
}

#[test]
fn a_burst_of_alerts_arrives_as_at_most_two_messages() {
    let rig = rig(|_| {});
    for i in 0..20 {
        rig.bot().alert(&format!("alert number {i:02}"));
    }
    let messages = wait_for(Duration::from_secs(10), || {
        let to = rig.to(OPERATOR);
        let n: usize = to
            .iter()
            .map(|m| m.text.matches("alert number").count())
            .sum();
        (n == 20).then_some(to)
    })
    .unwrap_or_else(|| panic!("not all alerts arrived: {:?}", rig.fake.sent()));
    assert!(
        messages.len() <= 2,
        "{} messages: {messages:?}",
        messages.len()
    );
    // In the order raised.
    let text: String = messages.iter().map(|m| m.text.as_str()).collect();
    let order: Vec<usize> = (0..20)
        .map(|i| text.find(&format!("alert number {i:02}")).expect("present"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(rig.bot().stats().alerts, 20);
}

#[test]
fn a_message_as_long_as_the_api_allows_arrives_whole() {
    let rig = rig(|_| {});
    let long = format!("long: {}", "é€\n".repeat(1363));
    assert_eq!(long.chars().count(), 4095);
    rig.bot().alert(&long);
    let got = wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .into_iter()
            .find(|m| m.text.starts_with("long: "))
    })
    .unwrap_or_else(|| panic!("not delivered: {:?}", rig.fake.stats()));
    assert_eq!(got.text, long);
}

#[test]
fn alerts_raised_while_the_api_is_down_arrive_after_it_returns() {
    let rig = rig(|_| {});
    // Answered before the outage: the bot is polling.
    rig.ask("/status", "State:");
    for (round, mode) in [
        DownMode::Refuse,
        DownMode::BadGateway,
        DownMode::Close,
        DownMode::TooManyRequests,
    ]
    .into_iter()
    .enumerate()
    {
        let outage = Duration::from_millis(2500);
        let before = rig.to(OPERATOR).len();
        rig.fake.go_down(outage, mode);
        let back_ms = now_ms() + 2400;
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..5 {
            rig.bot().alert(&format!("round {round} outage alert {i}"));
        }
        // A command sent while the API is away is read once it returns.
        rig.fake.inject(OPERATOR, "/orders");
        let delivered = wait_for(Duration::from_secs(15), || {
            let after = rig.to(OPERATOR)[before..].to_vec();
            let alerts: usize = after
                .iter()
                .map(|m| {
                    m.text
                        .matches(&format!("round {round} outage alert"))
                        .count()
                })
                .sum();
            let answered = after.iter().any(|m| m.text.contains("BTCUSDT: open 0"));
            (alerts == 5 && answered).then_some(after)
        })
        .unwrap_or_else(|| panic!("{mode:?}: not delivered: {:?}", rig.fake.sent()));
        assert!(
            delivered.iter().all(|m| m.at_ms >= back_ms),
            "{mode:?}: delivered only after the outage: {delivered:?}"
        );
        let with_alerts = delivered
            .iter()
            .filter(|m| m.text.contains("outage alert"))
            .count();
        assert!(with_alerts <= 2, "{mode:?}: coalesced, got {delivered:?}");
    }
    let stats = rig.bot().stats();
    assert!(stats.send_failures + stats.poll_failures >= 4, "{stats:?}");
    assert_eq!(stats.pending, 0);
}

/// Kills the child if the test ends early.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics` from the engine's endpoint: the body of a 200, or `None`.
fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

#[test]
fn pinion_replay_answers_the_bot_and_reports_the_operators_kill() {
    let tls = SelfSignedTls::generate(&["localhost", "127.0.0.1"]).expect("certificate");
    let fake = BotApiFake::start(
        "127.0.0.1:0".parse().expect("addr"),
        BotApiConfig::new(TOKEN),
        Arc::clone(&tls.server_config),
    )
    .expect("fake");
    let dir = std::env::temp_dir().join(format!("pinion-bot-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert = dir.join("fake.pem");
    std::fs::write(&cert, &tls.certificate_pem).expect("write cert");
    let config = dir.join("bot.toml");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    // The synthetic market paced over about 20 s: time for a few commands.
    std::fs::write(
        &config,
        format!(
            "[synthetic]\nrecords = 40000\ninterval_ns = 500000\n\n\
[runtime]\nprogress = false\n\n\
[metrics]\nlisten = \"{metrics}\"\n\n\
[bot]\napi_url = \"{}\"\nca_file = \"{}\"\nusers = [{OPERATOR}]\npoll_timeout_s = 1\n",
            fake.base_url(),
            cert.display()
        ),
    )
    .expect("write config");
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_pinion"))
            .args(["replay", "--no-progress", "--config"])
            .arg(&config)
            .env("PINION_BOT_TOKEN", TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pinion runs"),
    );
    let polled = wait_for(Duration::from_secs(30), || {
        (fake.stats().polls > 0).then_some(())
    });
    assert!(polled.is_some(), "the bot never polled");
    let reply = |text: &str, expect: &str| {
        let before = fake.sent().len();
        fake.inject(OPERATOR, text);
        wait_for(Duration::from_secs(15), || {
            fake.sent()[before..]
                .iter()
                .find(|m| m.text.contains(expect))
                .map(|m| m.text.clone())
        })
        .unwrap_or_else(|| panic!("no {expect:?} for {text:?}: {:?}", fake.sent()))
    };
    let status = reply("/status", "State: trading");
    assert!(
        status.contains("replay up"),
        "the pipeline's counters: {status}"
    );
    // The best levels as the book stage last sent them (asked again until the book has sent
    // one): a bid below the ask, and the spread between them.
    let mut asked = 0;
    let book = loop {
        asked += 1;
        let book = reply("/book BTCUSDT", "BTCUSDT: mid");
        if book.contains(", bid ") || asked == 20 {
            break book;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let field = |name: &str| -> f64 {
        let at = book
            .find(name)
            .unwrap_or_else(|| panic!("no {name:?} in {book:?}"));
        let v = book[at + name.len()..]
            .split([' ', ','])
            .next()
            .unwrap_or_default();
        v.parse()
            .unwrap_or_else(|_| panic!("{name:?} is not a number in {book:?}"))
    };
    let (bid, ask, spread) = (field(", bid "), field(", ask "), field(", spread "));
    assert!(bid < ask, "{book}");
    assert!((ask - bid - spread).abs() < 1e-9, "{book}");
    // A stranger's kill is refused unanswered, and the metrics count it.
    fake.inject(STRANGER, "/kill confirm");
    let ignored = wait_for(Duration::from_secs(15), || {
        let text = scrape(metrics)?;
        let line = text
            .lines()
            .find(|l| l.starts_with("pinion_bot_ignored_total "))?;
        (line == "pinion_bot_ignored_total 1").then_some(text)
    })
    .unwrap_or_else(|| panic!("the stranger was never counted: {:?}", scrape(metrics)));
    assert!(
        ignored.contains(&format!("pinion_bot_commands_total {}\n", 1 + asked)),
        "/status and /book were counted:\n{ignored}"
    );
    assert!(ignored.contains("pinion_kill_switch 0\n"), "{ignored}");
    assert!(fake.sent().iter().all(|m| m.chat_id != STRANGER));
    reply("/kill confirm", "Nothing to confirm");
    reply("/kill", "Reply /kill confirm");
    reply("/kill confirm", "KILLED");
    let deadline = Instant::now() + Duration::from_secs(90);
    let exit = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "pinion did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read as _;
    if let Some(mut s) = child.0.stdout.take() {
        s.read_to_string(&mut stdout).expect("stdout");
    }
    if let Some(mut s) = child.0.stderr.take() {
        s.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(exit.success(), "pinion failed: {stderr}");
    assert!(
        stdout.contains("kill switch: on (operator)"),
        "the report shows the kill:\n{stdout}"
    );
    assert!(
        fake.sent().iter().any(|m| m
            .text
            .contains("The run ended (trading was killed: operator)")),
        "{:?}",
        fake.sent()
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token is never printed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_with_a_bot_and_no_token_fails_before_it_starts_and_says_which_variable() {
    let dir = std::env::temp_dir().join(format!("pinion-bot-notoken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("bot.toml");
    std::fs::write(
        &config,
        "[bot]\napi_url = \"https://127.0.0.1:9\"\ntoken_env = \"PINION_TEST_NO_TOKEN\"\nusers = [1]\n",
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["replay", "--no-progress", "--config"])
        .arg(&config)
        .env_remove("PINION_TEST_NO_TOKEN")
        .env_remove("PINION_TEST_NO_TOKEN_FILE")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("pinion runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bot.token_env: PINION_TEST_NO_TOKEN: not set"),
        "{stderr}"
    );
    // A config without users is refused with its key.
    std::fs::write(&config, "[bot]\nusers = []\n").expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pinion"))
        .args(["replay", "--no-progress", "--config"])
        .arg(&config)
        .output()
        .expect("pinion runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bot.users: no user id"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
