//! The operator bot against the exchange simulator's Bot API fake, over real TLS on loopback:
//! commands through the control block, the whitelist, the kill confirmation and its timeout,
//! alert coalescing, an outage of the API with the alerts delivered after it, manual orders
//! confirmed by their buttons (or too late, or refused by the risk gate) and answered with the
//! stage's outcome, the operators' alarms fired once and kept over a restart, and a symbol
//! traded on two venues acted on only where the operator names its venue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinion_core::{BookTop, InstrumentId, InstrumentSpec, Instruments, Level, Px, Qty, Venue};
use pinion_engine::bot::{BotContext, BotHandle};
use pinion_engine::config::BotSettings;
use pinion_engine::control::{
    AccountView, Control, KillReason, ManualAction, ManualAnswer, ManualOutcome,
};
use pinion_engine::metrics::{BookStates, Sources};
use pinion_exchange_sim::{BotApiConfig, BotApiFake, DownMode, SelfSignedTls, SentMessage};
use pinion_strategy::{
    ClientOrderId, FlattenCause, FlattenOutcome, OrderSide, RiskLimits, RiskReject, TimeInForce,
};

const TOKEN: &str = "123456:TEST-token_for_the_fake";
const OPERATOR: i64 = 4242;
const STRANGER: i64 = 666;

/// The bot is declared first so that it stops before the fake does.
struct Rig {
    bot: Option<BotHandle>,
    fake: BotApiFake,
    control: Arc<Control>,
    cert: PathBuf,
    /// What the bot was started with, to start another on the same fake.
    settings: BotSettings,
    ctx: BotContext,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert);
    }
}

fn rig(tune: impl FnOnce(&mut BotSettings)) -> Rig {
    rig_with(tune, |_| {})
}

/// [`rig`], the bot's context changed by `more` first (which may give it another control block:
/// the rig's is the context's).
fn rig_with(tune: impl FnOnce(&mut BotSettings), more: impl FnOnce(&mut BotContext)) -> Rig {
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
    let mut ctx = BotContext {
        control: Arc::clone(&control),
        sources: None,
        limits: vec!["max position 0.01 BTC".to_owned()],
        risk: Vec::new(),
        journal: None,
    };
    more(&mut ctx);
    let control = Arc::clone(&ctx.control);
    let bot = BotHandle::start(&settings, TOKEN, trust, ctx.clone()).expect("bot");
    Rig {
        fake,
        control,
        bot: Some(bot),
        cert,
        settings,
        ctx,
    }
}

impl Rig {
    fn bot(&self) -> &BotHandle {
        self.bot.as_ref().expect("running")
    }

    /// Stops the bot and starts another with the same settings and context (a restart).
    fn restart(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.stop();
        }
        let trust = pinion_engine::pipeline::trust(Some(&self.cert)).expect("trust");
        let bot = BotHandle::start(&self.settings, TOKEN, trust, self.ctx.clone()).expect("bot");
        self.bot = Some(bot);
    }

    /// Presses `label` on the latest message with buttons and waits for the reply that
    /// contains `expect`.
    fn press(&self, label: &str, expect: &str) -> String {
        let before = self.to(OPERATOR).len();
        assert!(
            self.fake.press(OPERATOR, label).is_some(),
            "no button {label:?}: {:?}",
            self.fake.sent()
        );
        wait_for(Duration::from_secs(10), || {
            self.to(OPERATOR)[before..]
                .iter()
                .find(|m| m.text.contains(expect))
                .map(|m| m.text.clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "no reply to {label:?} containing {expect:?}; sent: {:?}",
                self.fake.sent()
            )
        })
    }

    /// The latest message to the operator whose text contains `text`.
    fn message(&self, text: &str) -> SentMessage {
        self.to(OPERATOR)
            .into_iter()
            .rev()
            .find(|m| m.text.contains(text))
            .unwrap_or_else(|| panic!("no message with {text:?}"))
    }
}

/// The instrument's filters and the risk limits of the manual-order tests: 0.01 BTC an order,
/// 0.02 BTC of position, prices within 100 bps of the mid.
fn btc_rules() -> (InstrumentSpec, RiskLimits) {
    let mut spec =
        InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001").expect("spec");
    spec.min_qty = Qty(1);
    spec.min_notional = 5 * 10i128.pow(7);
    let limits = RiskLimits {
        max_order_qty: Qty(1_000),
        max_notional: 1_000 * 10i128.pow(7),
        max_position: Qty(2_000),
        max_open_orders: 4,
        orders_per_sec: 10,
        order_burst: 10,
        price_band_bps: 100,
    };
    (spec, limits)
}

impl Rig {
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

#[test]
fn a_manual_order_goes_to_the_stage_only_once_its_button_confirms_it_in_time() {
    let rig = rig_with(
        |s| s.kill_confirm = Duration::from_secs(3),
        |ctx| ctx.risk = vec![Some(btc_rules())],
    );
    // This test is the strategy stage: the first reader takes the manual requests.
    let mut stage = rig.control.reader();
    // The stage has published the mark (65000) the gate's price band is checked against.
    rig.control.board().write(
        InstrumentId(0),
        &AccountView {
            mark: 6_500_000,
            position: 300,
            ..AccountView::default()
        },
    );
    let ask = rig.ask("/buy btcusdt 0.001 64990.5", "Reply /buy confirm");
    assert!(
        ask.starts_with(
            "BUY 0.001 BTCUSDT @ 64990.5 (limit, good till cancelled), notional 64.9905.\n\
Position 0.003 now, 0.004 if it fills whole."
        ),
        "{ask}"
    );
    assert!(ask.contains("Risk gate: passes now"), "{ask}");
    let buttons: Vec<String> = rig
        .message("Reply /buy confirm")
        .buttons
        .iter()
        .map(|b| b.text.clone())
        .collect();
    assert_eq!(buttons, ["Confirm", "Drop"]);
    assert!(
        !stage.poll().manual,
        "nothing reaches the stage before the confirmation"
    );
    rig.press("Confirm", "handed to the risk gate");
    assert!(stage.poll().manual);
    let request = stage.take_manual().expect("the order was handed over");
    assert_eq!(request.instrument, InstrumentId(0));
    assert_eq!(
        request.action,
        ManualAction::Order {
            side: OrderSide::Buy,
            px: Px(6_499_050),
            qty: Qty(100),
            tif: TimeInForce::Gtc,
        }
    );
    assert_eq!(stage.take_manual(), None, "one press, one order");
    let id = (1u64 << 40) | (1 << 37);
    assert!(stage.answer(ManualAnswer {
        seq: request.seq,
        client_id: ClientOrderId(id),
        outcome: ManualOutcome::Sent,
    }));
    let sent = wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .into_iter()
            .find(|m| m.text.starts_with("SENT: "))
    })
    .expect("the stage's answer is told");
    assert_eq!(
        sent.text,
        format!("SENT: BUY 0.001 BTCUSDT @ 64990.5 GTC as order {id} (manual, by 4242).")
    );
    rig.ask(
        "/orders",
        &format!("Manual orders:\n{id} BUY 0.001 BTCUSDT"),
    );
    // Pressed again, the same button confirms nothing.
    rig.press("Confirm", "no longer pending");
    assert_eq!(stage.take_manual(), None);

    // A confirmation after the window does nothing, by button or typed.
    rig.ask("/sell BTCUSDT 0.002 65010", "Reply /sell confirm");
    std::thread::sleep(Duration::from_millis(3200));
    rig.press("Confirm", "The order request expired: nothing was sent.");
    rig.ask("/sell BTCUSDT 0.002 65010", "Reply /sell confirm");
    std::thread::sleep(Duration::from_millis(3200));
    rig.ask("/sell confirm", "expired");
    assert_eq!(
        stage.take_manual(),
        None,
        "an expired confirmation sent something"
    );

    // What the gate refuses is not offered: above the order limit, outside the band.
    let refused = rig.ask("/buy BTCUSDT 0.02 65000", "Risk gate: REFUSED");
    assert!(
        refused.contains("REFUSED (quantity above the order limit)"),
        "{refused}"
    );
    assert!(rig.message("Risk gate: REFUSED").buttons.is_empty());
    rig.ask(
        "/buy confirm",
        "Nothing to confirm: send /buy or /sell first.",
    );
    rig.ask(
        "/sell BTCUSDT 0.001 60000",
        "REFUSED (price outside the band",
    );
    assert_eq!(stage.take_manual(), None);

    // The stage's own gate has the last word: a refusal there is told as such.
    rig.ask("/sell BTCUSDT 0.001 65000", "Reply /sell confirm");
    rig.ask("yes", "handed to the risk gate");
    let request = stage.take_manual().expect("handed over");
    stage.answer(ManualAnswer {
        seq: request.seq,
        client_id: ClientOrderId(id + 1),
        outcome: ManualOutcome::Refused(RiskReject::KillSwitch),
    });
    rig.ask(
        "/status",
        "REFUSED by the risk gate: SELL 0.001 BTCUSDT @ 65000 GTC: kill switch is on.",
    );

    // Without a price: a marketable limit at the touch needs a book, and there is none here.
    rig.ask("/buy BTCUSDT 0.001", "No synced book price for BTCUSDT");
    // Drop drops.
    rig.ask("/buy BTCUSDT 0.001 65000", "Reply /buy confirm");
    rig.press("Drop", "Dropped: nothing was done.");
    rig.ask("yes", "Nothing to confirm");

    // A cancel names the order; the stage says whether it was open.
    rig.ask(
        &format!("/cancel {id}"),
        &format!("Cancel order {id} of BTCUSDT?"),
    );
    rig.ask("/cancel confirm", "Cancel handed to the trading stage");
    let request = stage.take_manual().expect("the cancel was handed over");
    assert_eq!(
        request.action,
        ManualAction::Cancel {
            target: ClientOrderId(id)
        }
    );
    stage.answer(ManualAnswer {
        seq: request.seq,
        client_id: ClientOrderId(0),
        outcome: ManualOutcome::NotOpen,
    });
    rig.ask(
        "/status",
        &format!("NOT SENT: cancel of order {id}: the order is not open"),
    );
    rig.ask("/cancel 42", "Order 42 is of no instrument of this run.");
    assert_eq!(
        rig.fake.stats().callbacks_answered,
        4,
        "every press is answered"
    );
}

/// A synced top of BTCUSDT: `bid` and `ask` in cents, one BTC a side.
fn top(bid: i64, ask: i64) -> BookTop {
    let level = |px| Level {
        px: Px(px),
        qty: Qty(100_000),
    };
    BookTop::from_levels(InstrumentId(0), 1, 1, true, &[level(bid)], &[level(ask)])
}

#[test]
fn an_alarm_fires_once_and_the_alarms_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("pinion-bot-alarms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("alerts.json");
    let _ = std::fs::remove_file(&file);
    let books = BookStates::new(1);
    let file_for_rig = file.clone();
    let books_for_rig = Arc::clone(&books);
    let mut rig = rig_with(
        move |s| s.alerts_file = Some(file_for_rig),
        move |ctx| {
            let mut instruments = Instruments::new();
            instruments
                .add(
                    InstrumentSpec::new(Venue::BinanceSpot, "BTCUSDT", "0.01", "0.00001")
                        .expect("spec"),
                )
                .expect("add");
            ctx.sources = Some(Sources {
                command: "live",
                threads: Vec::new(),
                instruments,
                progress: pinion_engine::progress::ProgressCounters::new(),
                books: books_for_rig,
                live: None,
                requests: None,
                sessions: Vec::new(),
                started: Instant::now(),
                ended: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                control: Some(Arc::clone(&ctx.control)),
                stages: Vec::new(),
                latency: Vec::new(),
                ring_capacity: 0,
                bot: None,
            });
        },
    );
    books.set_top(0, &top(6_499_000, 6_499_100));
    rig.ask(
        "/alert BTCUSDT > 65000",
        "Alert #1 set: BTCUSDT price > 65000.",
    );
    rig.ask(
        "/alert btcusdt spread > 5",
        "Alert #2 set: BTCUSDT spread > 5.",
    );
    rig.ask("/alert BTCUSDT < 60000", "Alert #3 set");
    rig.ask("/alert BTCUSDT ~ 1", "Usage: /alert");
    // The mid moves to 65000.5: #1 fires, once, and the others stay.
    books.set_top(0, &top(6_500_000, 6_500_100));
    let fired = wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .into_iter()
            .find(|m| m.text.contains("ALERT #1"))
    })
    .expect("the alarm fired");
    assert!(
        fired
            .text
            .contains("ALERT #1 BTCUSDT: price 65000.5 (alert price > 65000, set by 4242)"),
        "{}",
        fired.text
    );
    // The price stays above: nothing more of #1 (the bot looks every 50 ms).
    books.set_top(0, &top(6_500_100, 6_500_200));
    std::thread::sleep(Duration::from_millis(1500));
    let listed = rig.ask("/alerts", "Alerts:");
    assert_eq!(
        listed,
        "Alerts:\n#2 BTCUSDT spread > 5 (set by 4242)\n#3 BTCUSDT price < 60000 (set by 4242)"
    );
    let times = |rig: &Rig, n: &str| {
        rig.to(OPERATOR)
            .iter()
            .map(|m| m.text.matches(n).count())
            .sum::<usize>()
    };
    assert_eq!(times(&rig, "ALERT #1 "), 1, "{:?}", rig.fake.sent());
    // A restart reads them back.
    rig.restart();
    rig.ask("/alerts", "#2 BTCUSDT spread > 5");
    rig.ask("/unalert 3", "Alert #3 removed.");
    rig.ask("/unalert 3", "No alert #3.");
    rig.restart();
    assert_eq!(
        rig.ask("/alerts", "Alerts:"),
        "Alerts:\n#2 BTCUSDT spread > 5 (set by 4242)"
    );
    // And a restarted bot fires what was set before it: the spread widens to 6.
    books.set_top(0, &top(6_500_000, 6_500_600));
    wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .into_iter()
            .find(|m| m.text.contains("ALERT #2 BTCUSDT: spread 6"))
    })
    .expect("the alarm set before the restart fired");
    rig.ask("/alerts", "No alerts set.");
    assert_eq!(times(&rig, "ALERT #1 "), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_symbol_on_two_venues_is_flattened_and_watched_only_where_its_venue_is_named() {
    let dir = std::env::temp_dir().join(format!("pinion-bot-venues-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("alerts.json");
    let _ = std::fs::remove_file(&file);
    let file_for_rig = file.clone();
    // BTCUSDT on Binance Spot (id 0) and on Bybit spot (id 1).
    let mut rig = rig_with(
        move |s| {
            s.kill_confirm = Duration::from_secs(30);
            s.alerts_file = Some(file_for_rig);
        },
        |ctx| {
            let mut instruments = Instruments::new();
            for venue in [Venue::BinanceSpot, Venue::BybitSpot] {
                let spec = InstrumentSpec::new(venue, "BTCUSDT", "0.01", "0.00001").expect("spec");
                instruments.add(spec).expect("add");
            }
            ctx.control = Control::new(&instruments);
        },
    );
    let mut reader = rig.control.reader();
    for (i, position) in [(0, 100), (1, -200)] {
        rig.control.board().write(
            InstrumentId(i),
            &AccountView {
                position,
                at_ns: 1,
                ..AccountView::default()
            },
        );
    }
    let ambiguous = "BTCUSDT trades on binance-spot and bybit-spot: \
say binance-spot:BTCUSDT or bybit-spot:BTCUSDT.";
    assert_eq!(rig.ask("/flatten BTCUSDT", "trades on"), ambiguous);
    assert!(
        rig.message("trades on").buttons.is_empty(),
        "a refusal has nothing to confirm"
    );
    rig.ask("yes", "Nothing to confirm");
    assert_eq!(rig.ask("/sell btcusdt 0.001 65000", "trades on"), ambiguous);
    rig.ask(
        "/flatten bybit-linear:BTCUSDT",
        "BTCUSDT does not trade on bybit-linear: it trades on binance-spot and bybit-spot.",
    );
    assert!(!reader.poll().flatten && !reader.poll().manual);
    assert_eq!(rig.control.stats().flatten_requests, 0);

    // Named with its venue, the question says which, and its button flattens that one only.
    let ask = rig.ask("/flatten bybit-spot:btcusdt", "Reply /flatten confirm");
    assert!(
        ask.starts_with(
            "Flatten BTCUSDT (bybit-spot)? Its strategy stops, its 0 open order(s) are \
cancelled and the position -0.002 is closed"
        ),
        "{ask}"
    );
    rig.press("Confirm", "FLATTEN BTCUSDT (bybit-spot): requested");
    assert!(reader.poll().flatten);
    assert_eq!(
        reader.take_flatten(0),
        None,
        "Binance's BTCUSDT was flattened"
    );
    assert_eq!(reader.take_flatten(1), Some(FlattenCause::Operator));
    rig.control.flattens().started(1, FlattenCause::Operator);
    wait_for(Duration::from_secs(10), || {
        rig.to(OPERATOR)
            .iter()
            .any(|m| {
                m.text
                    .contains("flatten BTCUSDT (bybit-spot): started (operator)")
            })
            .then_some(())
    })
    .expect("the start is alerted with the venue");

    // An alarm needs the venue too, and keeps it over a restart.
    rig.ask(
        "/alert BTCUSDT > 65000",
        "trades on binance-spot and bybit-spot",
    );
    rig.ask(
        "/alert binance-spot:BTCUSDT > 65000",
        "Alert #1 set: binance-spot:BTCUSDT price > 65000.",
    );
    rig.restart();
    assert_eq!(
        rig.ask("/alerts", "Alerts:"),
        "Alerts:\n#1 binance-spot:BTCUSDT price > 65000 (set by 4242)"
    );
    let saved = std::fs::read_to_string(&file).expect("alerts file");
    assert!(saved.contains("\"venue\": \"binance-spot\""), "{saved}");
    let positions = rig.ask("/positions", "position");
    assert_eq!(
        positions,
        "BTCUSDT (binance-spot): position 0.001 @ mark -\n\
BTCUSDT (bybit-spot): position -0.002 @ mark -"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
