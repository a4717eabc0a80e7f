//! The operator bot: a Telegram bot that answers the operators' commands (`/status`,
//! `/positions`, `/pnl`, `/orders`, `/book`, `/pause`, `/resume`, `/cancelall`, `/kill`,
//! `/flatten`, `/buy`, `/sell`, `/cancel`, `/alert`, `/alerts`, `/unalert`, `/limits`,
//! `/help`) and sends them alerts (kill switch, flatten and de-risk runs, reconnects and
//! resyncs, fills, heartbeat loss, a periodic summary, their own price alarms).
//!
//! Two threads of its own, off the hot path:
//! - `bot-poll` long-polls `getUpdates` (offset and timeout, see [`api`]) and hands each message
//!   to the other thread over a channel;
//! - `bot` answers messages and buttons pressed ([`commands`]), watches for alerts
//!   ([`alerts`]) and the operators' alarms ([`alarms`]), tells the strategy stage's answers to
//!   manual orders, and sends everything through the [`outbox`], which paces messages to the
//!   API's limits and coalesces bursts.
//!
//! The bot talks to the engine only through [`Control`](crate::control::Control) (commands,
//! the account board) and the read-only counters the stages publish
//! ([`Sources`](crate::metrics::Sources)); it never sees a stage's state.
//!
//! Only the configured user ids are answered; anyone else is ignored and counted
//! ([`BotStats::ignored`]). The token comes from an environment variable and is never written
//! anywhere: errors are masked ([`api::mask`]). When the API is unreachable both threads back
//! off (doubling up to `backoff_cap`), the bot keeps its state (pending kills, alerts seen), and
//! what queued meanwhile is delivered, coalesced, once it returns.

pub mod alarms;
pub mod alerts;
pub mod api;
pub mod commands;
pub mod outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinion_net::wss::TlsClientConfig;

pub use alerts::AlertSettings;
pub use api::{ApiError, BotApi, Button, Incoming};
pub use commands::{BotContext, Command, Commands, Reply};
pub use outbox::{Outbox, Pacing};

use crate::config::BotSettings;

/// How often the bot thread looks for alerts and sends what it may.
const TICK: Duration = Duration::from_millis(50);

/// How long [`BotHandle::stop`] keeps trying to deliver what is queued.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The first back-off after a failure.
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// Why the bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The token could not be read (not set, or in a file others may read).
    #[error("bot.token_env: {0} (it holds the bot token)")]
    NoToken(#[from] crate::secrets::SecretError),
    /// The token cannot be a Bot API token (its text is not shown).
    #[error("bot.token_env: the token in {var} {what}")]
    BadToken {
        /// The variable.
        var: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The client could not be made (a bad URL).
    #[error("bot.api_url: {0}")]
    Api(#[from] ApiError),
    /// A thread could not be started.
    #[error("bot thread: {0}")]
    Spawn(std::io::Error),
}

/// Reads the token from the variable `settings` names, checking it can go in a URL path.
pub fn token_from_env(settings: &BotSettings) -> Result<String, BotError> {
    let var = &settings.token_env;
    let token = crate::secrets::read_secret(var)?;
    let token = token.trim().to_owned();
    let what = if token.is_empty() {
        Some("is empty")
    } else if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_'))
    {
        Some("holds characters a Bot API token does not (letters, digits, ':', '-', '_')")
    } else {
        None
    };
    match what {
        Some(what) => Err(BotError::BadToken {
            var: var.clone(),
            what,
        }),
        None => Ok(token),
    }
}

/// What the bot has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotStats {
    /// Messages received (from anyone).
    pub updates: u64,
    /// Commands carried out (from the configured users).
    pub commands: u64,
    /// Messages from anyone else, ignored.
    pub ignored: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Messages sent.
    pub sent: u64,
    /// Notes that went out in a message with others.
    pub coalesced: u64,
    /// Sends that failed.
    pub send_failures: u64,
    /// Polls that failed.
    pub poll_failures: u64,
    /// Notes waiting to be sent.
    pub pending: u64,
}

/// The bot's counters as its threads keep them; [`BotHandle::counters`] shares them with the
/// metrics endpoint, which reads them with [`BotCounters::stats`].
#[derive(Debug, Default)]
pub struct BotCounters {
    updates: AtomicU64,
    commands: AtomicU64,
    ignored: AtomicU64,
    alerts: AtomicU64,
    sent: AtomicU64,
    coalesced: AtomicU64,
    send_failures: AtomicU64,
    poll_failures: AtomicU64,
    pending: AtomicU64,
}

impl BotCounters {
    /// What the bot has done so far.
    pub fn stats(&self) -> BotStats {
        let c = self;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BotStats {
            updates: l(&c.updates),
            commands: l(&c.commands),
            ignored: l(&c.ignored),
            alerts: l(&c.alerts),
            sent: l(&c.sent),
            coalesced: l(&c.coalesced),
            send_failures: l(&c.send_failures),
            poll_failures: l(&c.poll_failures),
            pending: l(&c.pending),
        }
    }
}

/// What the poller hands the bot thread.
#[derive(Debug)]
enum Event {
    Message(Incoming),
    /// The poll failed (masked).
    PollFailed(String),
    /// A poll succeeded after failures.
    PollBack,
}

/// The running bot; [`BotHandle::stop`] (or drop) ends it.
#[derive(Debug)]
pub struct BotHandle {
    stop: Arc<AtomicBool>,
    main: Option<JoinHandle<()>>,
    poller: Option<JoinHandle<()>>,
    alerts: Sender<String>,
    counters: Arc<BotCounters>,
}

impl BotHandle {
    /// Starts the bot's threads: polls `settings.api_url` with `token`, trusting `tls`'s roots.
    pub fn start(
        settings: &BotSettings,
        token: &str,
        tls: TlsClientConfig,
        ctx: BotContext,
    ) -> Result<Self, BotError> {
        let poll_wait = settings.poll_timeout + Duration::from_secs(10);
        let poll_api = BotApi::new(&settings.api_url, token, tls.clone(), poll_wait)?;
        let send_api = BotApi::new(&settings.api_url, token, tls, Duration::from_secs(15))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(BotCounters::default());
        let (events_tx, events_rx) = mpsc::channel();
        let (alerts_tx, alerts_rx) = mpsc::channel();
        let poller = {
            let (stop, counters, s) = (Arc::clone(&stop), Arc::clone(&counters), settings.clone());
            std::thread::Builder::new()
                .name("bot-poll".into())
                .spawn(move || poll(poll_api, &s, &events_tx, &stop, &counters))
                .map_err(BotError::Spawn)?
        };
        let main = {
            let (flag, counters, s) = (Arc::clone(&stop), Arc::clone(&counters), settings.clone());
            let spawned = std::thread::Builder::new()
                .name("bot".into())
                .spawn(move || {
                    let mut bot = Bot::new(send_api, &s, ctx, counters);
                    bot.run(&events_rx, &alerts_rx, &flag);
                });
            match spawned {
                Ok(h) => h,
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    return Err(BotError::Spawn(e));
                }
            }
        };
        Ok(BotHandle {
            stop,
            main: Some(main),
            poller: Some(poller),
            alerts: alerts_tx,
            counters,
        })
    }

    /// Raises an alert from elsewhere in the engine (sent to every configured user).
    pub fn alert(&self, text: &str) {
        let _ = self.alerts.send(text.to_owned());
    }

    /// What the bot has done so far.
    pub fn stats(&self) -> BotStats {
        self.counters.stats()
    }

    /// The counters themselves, to be read while the bot runs (the metrics endpoint).
    pub fn counters(&self) -> Arc<BotCounters> {
        Arc::clone(&self.counters)
    }

    /// Stops the bot: the bot thread raises the last alerts (a kill at the end of a run) and
    /// tries for a few seconds to deliver what is queued, then ends. A poll under way is not
    /// waited for (it ends by its own timeout; the thread only returns).
    pub fn stop(mut self) -> BotStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(main) = self.main.take() {
            let _ = main.join();
        }
        if let Some(poller) = self.poller.take() {
            let until = Instant::now() + Duration::from_millis(200);
            while !poller.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if poller.is_finished() {
                let _ = poller.join();
            }
        }
    }
}

impl Drop for BotHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The back-off after `failures` failures in a row.
fn backoff(failures: u32, cap: Duration) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap.max(BACKOFF_BASE))
}

/// Sleeps `d` in short steps, returning early when `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(TICK));
    }
}

/// The `bot-poll` thread.
fn poll(
    mut api: BotApi,
    s: &BotSettings,
    events: &Sender<Event>,
    stop: &AtomicBool,
    counters: &BotCounters,
) {
    let mut offset = 0u64;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        match api.get_updates(offset, s.poll_timeout) {
            Ok(list) => {
                if failures > 0 {
                    failures = 0;
                    if events.send(Event::PollBack).is_err() {
                        return;
                    }
                }
                for m in list {
                    offset = offset.max(m.update_id.saturating_add(1));
                    if events.send(Event::Message(m)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                counters.poll_failures.fetch_add(1, Ordering::Relaxed);
                let wait = match &e {
                    ApiError::RetryAfter(d) => *d,
                    ApiError::Unauthorized => s.backoff_cap,
                    _ => backoff(failures, s.backoff_cap),
                };
                if events.send(Event::PollFailed(e.to_string())).is_err() {
                    return;
                }
                nap(wait, stop);
            }
        }
    }
}

/// The `bot` thread's state.
struct Bot {
    api: BotApi,
    users: Vec<i64>,
    commands: Commands,
    alerts: alerts::Alerts,
    outbox: Outbox,
    counters: Arc<BotCounters>,
    /// Since when the API has been failing, as this thread has seen it.
    down_since: Option<Instant>,
    /// Messages sent at the last look.
    last_sent: u64,
}

impl Bot {
    fn new(api: BotApi, s: &BotSettings, ctx: BotContext, counters: Arc<BotCounters>) -> Self {
        let now = Instant::now();
        let alert_settings = AlertSettings {
            fills: s.fill_alerts,
            heartbeat: s.heartbeat,
            summary: s.summary,
        };
        let alerts = alerts::Alerts::new(alert_settings, &ctx, now);
        let mut commands = Commands::new(ctx, s.kill_confirm);
        if let Some(path) = &s.alerts_file {
            match commands.keep_alarms_in(path) {
                Ok(notes) => {
                    for n in notes {
                        eprintln!("bot: {n}");
                    }
                }
                // The file is left as it is for the operator to look at; nothing set now is
                // kept over a restart.
                Err(e) => eprintln!(
                    "bot: the alerts file cannot be used ({e}); alerts are kept in memory only"
                ),
            }
        }
        Bot {
            api,
            users: s.users.clone(),
            alerts,
            commands,
            outbox: Outbox::new(Pacing {
                per_chat: s.per_chat,
                global: s.global,
                backoff_base: BACKOFF_BASE,
                backoff_cap: s.backoff_cap,
            }),
            counters,
            down_since: None,
            last_sent: 0,
        }
    }

    fn run(&mut self, events: &Receiver<Event>, external: &Receiver<String>, stop: &AtomicBool) {
        let mut stopping_until: Option<Instant> = None;
        loop {
            match events.recv_timeout(TICK) {
                Ok(e) => self.on_event(e),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            while let Ok(e) = events.try_recv() {
                self.on_event(e);
            }
            let now = Instant::now();
            let mut raised: Vec<String> = external.try_iter().collect();
            raised.extend(self.alerts.check(&self.commands, now));
            for a in raised {
                self.counters.alerts.fetch_add(1, Ordering::Relaxed);
                for &u in &self.users {
                    self.outbox.push(u, a.clone());
                }
            }
            for (chat, text) in self.commands.check_alarms() {
                self.counters.alerts.fetch_add(1, Ordering::Relaxed);
                self.outbox.push(chat, text);
            }
            for (chat, text) in self.commands.take_answers(now) {
                self.outbox.push(chat, text);
            }
            let api = &mut self.api;
            let failed = self.outbox.flush(now, |chat, text, buttons| {
                api.send_with_buttons(chat, text, buttons)
            });
            self.note_send(failed, now);
            if stopping_until.is_none() && stop.load(Ordering::SeqCst) {
                // One more round first: what was raised just before the stop is taken in.
                stopping_until = Some(now + STOP_GRACE);
                continue;
            }
            if let Some(until) = stopping_until
                && (self.outbox.pending() == 0 || now >= until)
            {
                return;
            }
        }
    }

    fn note_send(&mut self, failed: Option<ApiError>, now: Instant) {
        let st = self.outbox.stats();
        let c = &self.counters;
        c.sent.store(st.sent, Ordering::Relaxed);
        c.coalesced.store(st.coalesced, Ordering::Relaxed);
        c.send_failures.store(st.failures, Ordering::Relaxed);
        c.pending
            .store(self.outbox.pending() as u64, Ordering::Relaxed);
        match (failed, self.down_since) {
            (Some(e), None) if e.is_outage() => {
                self.down_since = Some(now);
                eprintln!("bot: the Bot API is unreachable ({e}); alerts are kept and retried");
            }
            (Some(e), _) if !e.is_outage() => {
                eprintln!("bot: a message was refused ({e})");
            }
            (None, Some(_)) if st.sent > self.last_sent => self.api_back(now),
            _ => {}
        }
        self.last_sent = st.sent;
    }

    fn api_back(&mut self, now: Instant) {
        if let Some(since) = self.down_since.take() {
            eprintln!(
                "bot: the Bot API is back after {:.1} s",
                now.saturating_duration_since(since).as_secs_f64()
            );
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Message(m) => self.on_message(&m),
            Event::PollFailed(why) => {
                if self.down_since.is_none() {
                    self.down_since = Some(Instant::now());
                    eprintln!("bot: polling the Bot API failed ({why}); backing off");
                }
            }
            Event::PollBack => self.api_back(Instant::now()),
        }
    }

    fn on_message(&mut self, m: &Incoming) {
        self.counters.updates.fetch_add(1, Ordering::Relaxed);
        let Some(user) = m.user_id.filter(|u| self.users.contains(u)) else {
            self.counters.ignored.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let command = match &m.callback {
            Some(id) => {
                // Answered at once (the client shows the button busy until then); the outcome
                // follows as a message. A failed answer only leaves the button spinning.
                if let Err(e) = self.api.answer_callback(id, "Received.") {
                    eprintln!("bot: a button press could not be answered ({e})");
                }
                Command::Button(m.text.clone())
            }
            None if m.text.trim().is_empty() => return,
            None => Command::parse(&m.text),
        };
        self.counters.commands.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .commands
            .handle(user, m.chat_id, &command, Instant::now());
        self.outbox
            .push_with_buttons(m.chat_id, reply.text, reply.buttons);
    }
}
