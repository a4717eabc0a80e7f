//! A local fake of the Telegram Bot API, served over TLS: what the engine's operator bot talks
//! to in tests and on a desk without a real bot.
//!
//! The Bot API methods are served under `/bot<TOKEN>/<method>` as the real one does, with
//! parameters from the query string, a form body or a JSON body:
//! - `getUpdates` (`offset`, `timeout`, `limit`): a long poll. Updates with an id below `offset`
//!   are confirmed and forgotten; with none pending the answer waits up to `timeout` seconds
//!   (bounded by [`BotApiConfig::max_poll`]) for one to be injected.
//! - `sendMessage` (`chat_id`, `text`, optional `reply_markup` with an `inline_keyboard` of
//!   buttons, each `{text, callback_data}`, the data 1 to 64 bytes): recorded with its buttons,
//!   answered with the message (and its markup) as the API does.
//! - `answerCallbackQuery` (`callback_query_id`, optional `text`): a button press answered;
//!   an id never delivered, or answered already, is refused `400` as the API refuses a query
//!   too old or invalid.
//! - `getMe`: the bot's own user.
//!
//! A button pressed ([`BotApiFake::press`]) arrives in `getUpdates` as the API sends it: an
//! update with a `callback_query` (`id`, `from`, `message` the keyboard was on, `data`).
//!
//! A wrong token is answered `401 Unauthorized` with the API's `{"ok":false,…}` body.
//!
//! The test controls, outside the token path:
//! - `POST /fake/inject` `{"user_id":…,"text":…}` (optional `chat_id`, default the user's
//!   private chat, whose id is the user's): queues a message from that user.
//! - `POST /fake/press` `{"user_id":…,"label":…}` (optional `chat_id`, as above): the user
//!   presses the button so labelled on the latest message to that chat that has one; `404`
//!   when there is none.
//! - `GET /fake/sent`: every message sent so far, as `[{"chat_id":…,"text":…,"at_ms":…}]`.
//! - `POST /fake/down` `{"ms":…,"mode":"refuse"|"close"|"bad_gateway"|"too_many_requests"}`:
//!   the API goes down for that long. `refuse` closes the listening socket (connections are
//!   refused), `close` accepts and drops each connection before TLS, `bad_gateway` answers every
//!   Bot API call `502`, `too_many_requests` answers `429` with the API's
//!   `parameters.retry_after`. Open connections and waiting long polls end at once in every
//!   mode.
//!
//! [`BotApiFake`] is the same as a library API for tests ([`BotApiFake::inject`],
//! [`BotApiFake::sent`], [`BotApiFake::go_down`]). One thread accepts, one thread per
//! connection (a test peer); request heads and bodies are bounded, and nothing a client sends
//! panics the server.

mod serve;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ExchangeSimError;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct BotApiConfig {
    /// The bot token the API accepts in its paths.
    pub token: String,
    /// The longest long poll served, whatever `timeout` a client asks for.
    pub max_poll: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Messages kept for `/fake/sent` (the oldest are dropped past it).
    pub max_sent: usize,
}

impl BotApiConfig {
    /// A fake that accepts `token`: polls of up to 50 s, 64 KiB bodies, 10 000 sent kept.
    pub fn new(token: &str) -> Self {
        BotApiConfig {
            token: token.to_owned(),
            max_poll: Duration::from_secs(50),
            max_body: 64 << 10,
            max_sent: 10_000,
        }
    }
}

/// How the API fails while down. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownMode {
    /// The listening socket is closed: connections are refused.
    Refuse,
    /// Connections are accepted and dropped before TLS.
    Close,
    /// Every Bot API call is answered `502 Bad Gateway`.
    BadGateway,
    /// Every Bot API call is answered `429 Too Many Requests` with `retry_after`: the seconds
    /// left of the spell, rounded up.
    TooManyRequests,
}

impl DownMode {
    /// `refuse`, `close`, `bad_gateway` or `too_many_requests`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refuse" => Some(Self::Refuse),
            "close" => Some(Self::Close),
            "bad_gateway" => Some(Self::BadGateway),
            "too_many_requests" => Some(Self::TooManyRequests),
            _ => None,
        }
    }
}

/// A message the bot sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentMessage {
    /// The chat it went to.
    pub chat_id: i64,
    /// Its text.
    pub text: String,
    /// When it was received, ms since the Unix epoch.
    pub at_ms: u64,
    /// Its id, as the API answered it.
    #[serde(default)]
    pub message_id: u64,
    /// The buttons of its inline keyboard, row after row.
    #[serde(default)]
    pub buttons: Vec<SentButton>,
}

/// A button of a sent message's inline keyboard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentButton {
    /// Its label.
    pub text: String,
    /// What a press sends back.
    pub callback_data: String,
}

/// Counters of the fake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BotApiStats {
    /// Connections accepted (while up).
    pub connections: u64,
    /// Bot API calls answered (any status).
    pub calls: u64,
    /// `getUpdates` calls.
    pub polls: u64,
    /// Calls with a wrong token.
    pub unauthorized: u64,
    /// Malformed requests.
    pub bad_requests: u64,
    /// Connections refused, dropped or answered 502 while down.
    pub failed_while_down: u64,
    /// Button presses (callback queries) answered with `answerCallbackQuery`.
    pub callbacks_answered: u64,
}

/// One update waiting to be fetched.
#[derive(Debug, Clone)]
struct Update {
    id: u64,
    user_id: i64,
    chat_id: i64,
    text: String,
    date: u64,
    /// A button press: the callback query's id and the message the keyboard was on; `text`
    /// is then its data.
    press: Option<(String, SentMessage)>,
}

/// What the threads share under the lock.
#[derive(Debug, Default)]
struct Board {
    updates: VecDeque<Update>,
    next_update: u64,
    next_message: u64,
    sent: VecDeque<SentMessage>,
    /// Callback query ids delivered and not yet answered.
    unanswered: Vec<String>,
    down_until: Option<(Instant, DownMode)>,
    /// Each open connection's socket, to cut it when the API goes down or the fake stops.
    sockets: Vec<(u64, TcpStream)>,
    next_socket: u64,
}

impl Board {
    /// Cuts every open connection but `except` (the one asking, 0: none).
    fn cut_connections(&mut self, except: u64) {
        self.sockets.retain(|(id, s)| {
            if *id == except {
                return true;
            }
            let _ = s.shutdown(std::net::Shutdown::Both);
            false
        });
    }
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    calls: AtomicU64,
    polls: AtomicU64,
    unauthorized: AtomicU64,
    bad_requests: AtomicU64,
    failed_while_down: AtomicU64,
    callbacks_answered: AtomicU64,
}

/// What the accept and connection threads share.
#[derive(Debug)]
struct Shared {
    config: BotApiConfig,
    tls: Arc<rustls::ServerConfig>,
    board: Mutex<Board>,
    /// Signalled when an update is injected, the API goes down, or the fake stops.
    changed: Condvar,
    stop: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mode while down now and the time left, else `None`.
    fn down(&self) -> Option<DownMode> {
        self.down_for().map(|(mode, _)| mode)
    }

    fn down_for(&self) -> Option<(DownMode, Duration)> {
        let mut board = self.board();
        let now = Instant::now();
        match board.down_until {
            Some((until, mode)) if now < until => Some((mode, until - now)),
            Some(_) => {
                board.down_until = None;
                None
            }
            None => None,
        }
    }

    fn inject(&self, user_id: i64, chat_id: i64, text: &str) -> u64 {
        let mut board = self.board();
        board.next_update += 1;
        let id = board.next_update;
        board.updates.push_back(Update {
            id,
            user_id,
            chat_id,
            text: text.to_owned(),
            date: now_ms() / 1000,
            press: None,
        });
        drop(board);
        self.changed.notify_all();
        id
    }

    /// `user_id` presses the button labelled `label` on the latest message to `chat_id` that
    /// has one; the update's id, or `None` without such a button.
    fn press(&self, user_id: i64, chat_id: i64, label: &str) -> Option<u64> {
        let mut board = self.board();
        let (message, data) = board.sent.iter().rev().find_map(|m| {
            let b = m.buttons.iter().find(|b| b.text == label)?;
            (m.chat_id == chat_id).then(|| (m.clone(), b.callback_data.clone()))
        })?;
        board.next_update += 1;
        let id = board.next_update;
        let query = format!("cb{id}");
        board.unanswered.push(query.clone());
        board.updates.push_back(Update {
            id,
            user_id,
            chat_id,
            text: data,
            date: now_ms() / 1000,
            press: Some((query, message)),
        });
        drop(board);
        self.changed.notify_all();
        Some(id)
    }

    fn go_down(&self, for_: Duration, mode: DownMode, except: u64) {
        let mut board = self.board();
        board.down_until = Some((Instant::now() + for_, mode));
        board.cut_connections(except);
        drop(board);
        self.changed.notify_all();
    }

    fn stats(&self) -> BotApiStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BotApiStats {
            connections: l(&c.connections),
            calls: l(&c.calls),
            polls: l(&c.polls),
            unauthorized: l(&c.unauthorized),
            bad_requests: l(&c.bad_requests),
            failed_while_down: l(&c.failed_while_down),
            callbacks_answered: l(&c.callbacks_answered),
        }
    }
}

/// The running fake. See the [module docs](self).
#[derive(Debug)]
pub struct BotApiFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl BotApiFake {
    /// Listens on `listen` (port 0 picks a free one) and serves TLS with `tls`.
    pub fn start(
        listen: SocketAddr,
        config: BotApiConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<BotApiFake, ExchangeSimError> {
        if config.token.is_empty() || config.token.contains(['/', '?', '#', ' ']) {
            return Err(ExchangeSimError::Config(
                "the bot token must be non-empty and hold no '/', '?', '#' or space",
            ));
        }
        let listener = bind(listen)?;
        let addr = listener
            .local_addr()
            .map_err(|source| ExchangeSimError::Bind {
                addr: listen,
                source,
            })?;
        let shared = Arc::new(Shared {
            config,
            tls,
            board: Mutex::new(Board::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("botapi-accept".into())
                .spawn(move || serve::accept_loop(listener, addr, &shared))
                .map_err(ExchangeSimError::Spawn)?
        };
        Ok(BotApiFake {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client is configured with: `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Queues a message from `user_id` in the user's private chat; returns its update id.
    pub fn inject(&self, user_id: i64, text: &str) -> u64 {
        self.shared.inject(user_id, user_id, text)
    }

    /// Queues a message from `user_id` in chat `chat_id`; returns its update id.
    pub fn inject_in(&self, user_id: i64, chat_id: i64, text: &str) -> u64 {
        self.shared.inject(user_id, chat_id, text)
    }

    /// `user_id` presses the button labelled `label` on the latest message to the user's
    /// private chat that has one; the update's id, or `None` without such a button.
    pub fn press(&self, user_id: i64, label: &str) -> Option<u64> {
        self.shared.press(user_id, user_id, label)
    }

    /// Every message sent so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.board().sent.iter().cloned().collect()
    }

    /// Updates injected and not yet confirmed by a client's `offset`.
    pub fn pending_updates(&self) -> usize {
        self.shared.board().updates.len()
    }

    /// The API goes down for `for_` (see [`DownMode`]).
    pub fn go_down(&self, for_: Duration, mode: DownMode) {
        self.shared.go_down(for_, mode, 0);
    }

    /// Whether it is down now.
    pub fn is_down(&self) -> bool {
        self.shared.down().is_some()
    }

    /// The counters so far.
    pub fn stats(&self) -> BotApiStats {
        self.shared.stats()
    }

    /// Blocks until the fake stops (for a binary: serve until killed).
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    /// Stops accepting, ends every long poll and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.board().cut_connections(0);
        self.shared.changed.notify_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for BotApiFake {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop_and_join();
        }
    }
}

/// A listener that polls (non-blocking), so the accept thread sees stop and down requests.
fn bind(addr: SocketAddr) -> Result<TcpListener, ExchangeSimError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| ExchangeSimError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ExchangeSimError::Bind { addr, source })?;
    Ok(listener)
}

/// Accepted sockets are served blocking.
fn blocking(tcp: &TcpStream) -> bool {
    tcp.set_nonblocking(false).is_ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
