//! One live WebSocket session: the subscription protocol, the incoming message limit, pings,
//! delivery of the market's frames from the session's queue, and the per-session faults.
//!
//! Frames of a stream reach the session only after its `SUBSCRIBE` was answered: the ack is
//! written first and the stream is added to the session's set after it, and the market queues
//! only frames of streams in the set.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket, WebSocketConfig};
use tungstenite::{Bytes, Message};

use super::faults::{Fault, Target, mix};
use super::market::LiveFrame;
use super::{LiveShared, now_ms};
use crate::http::{self, RequestHead};
use crate::tls::Conn;

/// Largest message accepted from a client.
const MAX_CLIENT_MESSAGE: usize = 64 << 10;
/// How long the session waits on its queue before servicing the socket again.
const QUEUE_WAIT: Duration = Duration::from_millis(5);
/// Frames written between two flushes at most.
const BATCH: usize = 256;
/// How long the client may take to answer the final close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The methods Binance's stream servers know, as its error message lists them.
const METHODS: &str =
    "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`";

/// The market's handle on a session: its subscriptions and its queue.
#[derive(Debug)]
pub(crate) struct SessionLink {
    subs: Mutex<HashSet<String>>,
    /// A session on the SBE endpoint: it subscribes SBE stream names and gets SBE frames.
    pub sbe: bool,
    pub tx: SyncSender<Arc<LiveFrame>>,
    /// Set by the market when the queue overflowed.
    pub slow: AtomicBool,
    /// Set by the session when it ended.
    pub gone: AtomicBool,
}

impl SessionLink {
    /// The name this session knows `frame`'s stream by: its SBE stream on the SBE endpoint
    /// (`None` when the frame has no SBE form), else its JSON stream.
    pub fn stream_of<'f>(&self, frame: &'f LiveFrame) -> Option<&'f str> {
        if self.sbe {
            frame.sbe.as_ref().map(|s| s.stream.as_str())
        } else {
            Some(&frame.stream)
        }
    }

    /// Whether the session is subscribed to `frame`'s stream.
    pub fn wants_frame(&self, frame: &LiveFrame) -> bool {
        self.stream_of(frame).is_some_and(|s| self.wants(s))
    }

    /// Whether the session is subscribed to `stream`.
    pub fn wants(&self, stream: &str) -> bool {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(stream)
    }

    fn add(&self, streams: &[String]) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.extend(streams.iter().cloned());
    }

    fn remove(&self, streams: &[String]) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        for s in streams {
            subs.remove(s);
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    ClientGone,
    Io,
    Stopping,
    Slow,
    PongTimeout,
    RateLimit,
    Reset,
    HalfOpen,
    Close(CloseCode, &'static str),
}

/// A parsed control request.
#[derive(Debug, PartialEq)]
enum Request {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    List,
    SetCombined(bool),
    GetCombined,
}

/// A control request's error answer: id (when readable), code, message.
type RequestError = (Option<Value>, i64, String);

/// Parses one control message as Binance's stream server does.
fn parse_request(text: &str) -> Result<(Value, Request), RequestError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| (None, 3, format!("Invalid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err((None, 2, "Invalid request: expected a JSON object".into()));
    };
    let id = match obj.get("id") {
        Some(Value::Null) => Value::Null,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() && n.as_i64().is_some() => {
            Value::Number(n.clone())
        }
        Some(Value::String(s)) if s.len() <= 36 && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Value::String(s.clone())
        }
        _ => {
            return Err((
                None,
                2,
                "Invalid request: request ID must be an unsigned integer".into(),
            ));
        }
    };
    let bad = |msg: String| (Some(id.clone()), 2, msg);
    let method = match obj.get("method") {
        None => return Err(bad("Invalid request: missing field `method`".into())),
        Some(Value::String(m)) => m.as_str(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid request: unknown variant {other}, expected one of {METHODS}"
            )));
        }
    };
    let params = obj.get("params");
    let names = |params: Option<&Value>| -> Result<Vec<String>, RequestError> {
        let Some(Value::Array(items)) = params else {
            return Err(bad(
                "Invalid request: params must be a list of stream names".into(),
            ));
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() && s.len() <= 200 => Ok(s.clone()),
                _ => Err(bad("Invalid request: stream names must be strings".into())),
            })
            .collect()
    };
    let request = match method {
        "SUBSCRIBE" => Request::Subscribe(names(params)?),
        "UNSUBSCRIBE" => Request::Unsubscribe(names(params)?),
        "LIST_SUBSCRIPTIONS" => Request::List,
        "SET_PROPERTY" | "GET_PROPERTY" => {
            let items = match params {
                Some(Value::Array(items)) => items.as_slice(),
                _ => &[],
            };
            let max = if method == "SET_PROPERTY" { 2 } else { 1 };
            if items.len() > max {
                return Err(bad("Invalid request: too many parameters".into()));
            }
            match items.first() {
                Some(Value::String(name)) if name == "combined" => {}
                Some(Value::String(_)) => {
                    return Err((Some(id.clone()), 0, "Unknown property".into()));
                }
                _ => return Err(bad("Invalid request: property name must be a string".into())),
            }
            if method == "GET_PROPERTY" {
                Request::GetCombined
            } else {
                match items.get(1) {
                    Some(Value::Bool(b)) => Request::SetCombined(*b),
                    _ => {
                        return Err((
                            Some(id.clone()),
                            1,
                            "Invalid value type: expected Boolean".into(),
                        ));
                    }
                }
            }
        }
        other => {
            return Err(bad(format!(
                "Invalid request: unknown variant `{other}`, expected one of {METHODS}"
            )));
        }
    };
    Ok((id, request))
}

/// `{"result":…,"id":…}`, in Binance's key order.
fn result_reply(result: &Value, id: &Value) -> String {
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        result: &'a Value,
        id: &'a Value,
    }
    serde_json::to_string(&Reply { result, id }).unwrap_or_default()
}

/// `{"error":{"code":…,"msg":…},"id":…}` (no `id` when the request's was unreadable).
fn error_reply(id: Option<&Value>, code: i64, msg: &str) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        code: i64,
        msg: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        error: Body<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    }
    serde_json::to_string(&Reply {
        error: Body { code, msg },
        id,
    })
    .unwrap_or_default()
}

/// A Bybit op answer, `{"success":…,"ret_msg":…,"conn_id":…,"req_id":…,"op":…}`.
fn bybit_reply(
    success: bool,
    ret_msg: &str,
    conn_id: &str,
    req_id: Option<&Value>,
    op: &str,
) -> String {
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        success: bool,
        ret_msg: &'a str,
        conn_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        req_id: Option<&'a Value>,
        op: &'a str,
    }
    serde_json::to_string(&Reply {
        success,
        ret_msg,
        conn_id,
        req_id,
        op,
    })
    .unwrap_or_default()
}

/// A Bybit `snapshot` message of `orderbook.<depth>.<symbol>` from the truth, and its `u`;
/// `None` for other topics or a book not open yet.
fn bybit_snapshot(
    market: &super::market::MarketState,
    category: &str,
    topic: &str,
) -> Option<(String, u64)> {
    #[derive(serde::Serialize)]
    struct Data<'a> {
        s: &'a str,
        b: Vec<[&'a str; 2]>,
        a: Vec<[&'a str; 2]>,
        u: u64,
        seq: u64,
    }
    #[derive(serde::Serialize)]
    struct Snapshot<'a> {
        topic: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        ts: u64,
        data: Data<'a>,
        cts: u64,
    }
    let mut parts = topic.split('.');
    let (Some("orderbook"), Some(depth), Some(symbol), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let depth: usize = depth.parse().ok()?;
    let key = format!("{category}:{symbol}").to_ascii_uppercase();
    let state = market.symbols.get(&key).filter(|s| s.open)?;
    let book = &state.book;
    let now = now_ms();
    let text = serde_json::to_string(&Snapshot {
        topic,
        kind: "snapshot",
        ts: now,
        data: Data {
            s: symbol,
            b: book
                .bids_best_first(depth)
                .map(super::truth::Level::pair)
                .collect(),
            a: book
                .asks_best_first(depth)
                .map(super::truth::Level::pair)
                .collect(),
            u: book.last_update_id,
            seq: 0,
        },
        cts: now,
    })
    .ok()?;
    Some((text, book.last_update_id))
}

/// The streams a request path asks for, and whether the session is combined; `None` for a
/// path that is not a stream endpoint.
fn streams_of_path(head: &RequestHead) -> Option<(bool, Vec<String>)> {
    let path = ["/public", "/market", SBE_PREFIX]
        .iter()
        .find_map(|route| head.path.strip_prefix(route))
        .filter(|p| p.starts_with('/'))
        .unwrap_or(&head.path);
    let split = |list: &str| -> Vec<String> {
        list.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match path {
        "/ws" | "/ws/" => Some((false, Vec::new())),
        "/stream" | "/stream/" => Some((
            true,
            head.query_param("streams")
                .map(|s| split(&s))
                .unwrap_or_default(),
        )),
        _ => {
            let names = path.strip_prefix("/ws/")?;
            let names = split(names);
            (!names.is_empty()).then_some((false, names))
        }
    }
}

/// The path prefix of the SBE endpoint's routes.
const SBE_PREFIX: &str = "/sbe";

/// Whether an upgrade is for the SBE endpoint: a path under [`SBE_PREFIX`], or any stream
/// path when the exchange plays `stream-sbe.binance.com`.
fn is_sbe_path(path: &str, config: &super::LiveConfig) -> bool {
    config.sbe_streams
        || path
            .strip_prefix(SBE_PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether an `X-MBX-APIKEY` value has the shape of a key: 1 to 256 printable ASCII
/// characters, no spaces. (Binance checks the key itself; the simulator has no key list for
/// market data, which needs no permission.)
fn is_api_key(key: Option<&str>) -> bool {
    key.is_some_and(|k| (1..=256).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
}

/// Handles an upgrade request: the checks before the `101`, then the session.
pub(crate) fn open(mut stream: Conn, head: &RequestHead, shared: &LiveShared, ip: IpAddr) {
    let config = &shared.config;
    let sbe = config.venue == super::LiveVenue::Spot
        && !head.path.starts_with("/v5/")
        && is_sbe_path(&head.path, config);
    if sbe && !is_api_key(head.api_key.as_deref()) {
        shared.count(|c| &c.sbe_key_refusals);
        let _ = http::respond_error(
            &mut stream,
            "401 Unauthorized",
            -2014,
            "API-key format invalid.",
        );
        return;
    }
    let bybit = head
        .path
        .strip_prefix("/v5/public/")
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned);
    let path = if bybit.is_some() {
        Some((false, Vec::new()))
    } else {
        streams_of_path(head)
    };
    let (Some((combined, initial)), Some(key), "GET") =
        (path, head.websocket_key.as_deref(), head.method.as_str())
    else {
        shared.count(|c| &c.bad_requests);
        let _ = http::respond_error(&mut stream, "404 Not Found", -1000, "Unknown stream path.");
        return;
    };
    if initial.len() > config.max_streams {
        shared.count(|c| &c.bad_requests);
        let msg = format!(
            "Too many streams; at most {} per connection.",
            config.max_streams
        );
        let _ = http::respond_error(&mut stream, "400 Bad Request", -1000, &msg);
        return;
    }
    let budget = config
        .faults
        .faults
        .iter()
        .find_map(|f| match f {
            Fault::ConnectionBudget { max, window } => Some((*max, *window)),
            _ => None,
        })
        .or(config.connection_attempts);
    if let Some((max, window)) = budget {
        let over = {
            let mut rest = shared.rest();
            let attempts = rest.attempts.entry(ip).or_default();
            let now = Instant::now();
            while attempts
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                attempts.pop_front();
            }
            attempts.push_back(now);
            attempts.len() as u64 > max
        };
        if over {
            shared.count(|c| &c.connection_429);
            let msg = format!(
                "Too many new connections; current limit is {max} per {} ms.",
                window.as_millis()
            );
            let _ = http::respond_error(&mut stream, "429 Too Many Requests", -1034, &msg);
            return;
        }
    }
    // Whether it is killed, its index and its registration are settled before the `101`, so
    // a client that has its handshake back is numbered and subscribed (numbers follow the
    // order in which clients completed their handshakes).
    let kill = config.faults.faults.iter().find_map(|f| match f {
        Fault::KillAfterHandshake { count } => Some(*count),
        _ => None,
    });
    let killed = kill.is_some_and(|count| shared.kills.fetch_add(1, Ordering::SeqCst) < count);
    if killed {
        let _ = http::respond_switching(&mut stream, key);
        shared.count(|c| &c.ws_sessions);
        shared.count(|c| &c.fault_kills);
        end_abruptly(&stream);
        return;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(config.session_queue);
    let link = Arc::new(SessionLink {
        subs: Mutex::new(initial.iter().cloned().collect()),
        sbe,
        tx,
        slow: AtomicBool::new(false),
        gone: AtomicBool::new(false),
    });
    let index = {
        let mut sessions = shared.sessions();
        sessions.push(Arc::clone(&link));
        shared.next_session.fetch_add(1, Ordering::SeqCst)
    };
    if http::respond_switching(&mut stream, key).is_err() {
        link.gone.store(true, Ordering::SeqCst);
        return;
    }
    shared.count(|c| &c.ws_sessions);
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let now = Instant::now();
    let faults: Vec<Fault> = config
        .faults
        .faults
        .iter()
        .filter(|f| fault_target(f).hits(index))
        .cloned()
        .collect();
    let mut session = Session {
        ws: WebSocket::from_raw_socket(stream, Role::Server, Some(ws_config)),
        shared,
        link: Arc::clone(&link),
        rx,
        index,
        combined,
        order: initial,
        faults,
        frames_sent: 0,
        opened: now,
        next_ping: config.ping_interval.map(|d| now + d),
        awaiting: None,
        ping_counter: 0,
        incoming: VecDeque::new(),
        requests: 0,
        held: None,
        shutdown_at: None,
        bybit,
        floors: std::collections::HashMap::new(),
    };
    let end = match session.drive() {
        Err(end) => end,
        Ok(never) => match never {},
    };
    link.gone.store(true, Ordering::SeqCst);
    let mut notify = true;
    match end {
        End::ClientGone | End::Io => {}
        End::Reset => notify = false,
        End::Slow => {
            notify = false;
            let _ = session.ws.get_ref().tcp().shutdown(Shutdown::Both);
        }
        End::HalfOpen => {
            notify = false;
            session.half_open();
        }
        End::Stopping => session.finish(CloseCode::Away, "server shutdown"),
        End::PongTimeout => {
            shared.count(|c| &c.pong_timeouts);
            session.finish(CloseCode::Policy, "pong timeout");
        }
        End::RateLimit => {
            shared.count(|c| &c.message_rate_closes);
            session.finish(CloseCode::Policy, "Too many requests");
        }
        End::Close(code, reason) => session.finish(code, reason),
    }
    if notify {
        session.ws.get_mut().close_notify();
    }
}

/// Ends a connection without a close frame or TLS close_notify: a FIN, then whatever the
/// client still sends is read and dropped for a moment, so the bytes already written (the
/// `101`, part of a frame) reach it before the socket goes (an unread receive buffer at close
/// would make the kernel answer with a reset that can overtake them).
fn end_abruptly(stream: &Conn) {
    let mut tcp = stream.tcp();
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    while matches!(tcp.read(&mut sink), Ok(n) if n > 0) {}
}

/// Which sessions a fault hits (server-wide faults: all).
fn fault_target(fault: &Fault) -> Target {
    match fault {
        Fault::Drop { target, .. }
        | Fault::Duplicate { target, .. }
        | Fault::Swap { target, .. }
        | Fault::Mute { target, .. }
        | Fault::RandomDrop { target, .. }
        | Fault::ResetMidFrame { target, .. }
        | Fault::HalfOpen { target, .. }
        | Fault::Close1008 { target, .. }
        | Fault::ServerShutdown { target, .. }
        | Fault::MaxAge { target, .. }
        | Fault::NoAck { target, .. } => *target,
        _ => Target::All,
    }
}

/// FNV-1a of a stream name, for the random drops.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Session<'a> {
    ws: WebSocket<Conn>,
    shared: &'a LiveShared,
    link: Arc<SessionLink>,
    rx: Receiver<Arc<LiveFrame>>,
    index: u64,
    combined: bool,
    /// Subscriptions in the order they were made.
    order: Vec<String>,
    faults: Vec<Fault>,
    frames_sent: u64,
    opened: Instant,
    next_ping: Option<Instant>,
    awaiting: Option<(Bytes, Instant)>,
    ping_counter: u64,
    incoming: VecDeque<Instant>,
    requests: u64,
    held: Option<Arc<LiveFrame>>,
    shutdown_at: Option<Instant>,
    /// A Bybit v5 session: its category (`linear`, `spot`).
    bybit: Option<String>,
    /// Bybit: per book stream, the `u` of the snapshot sent on subscribe.
    floors: std::collections::HashMap<String, u64>,
}

/// What a tungstenite error means for the session.
fn classify(e: &tungstenite::Error) -> End {
    match e {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(_)
        | tungstenite::Error::Capacity(_) => End::ClientGone,
        _ => End::Io,
    }
}

impl Session<'_> {
    /// Runs until the session ends; the reason is the error.
    fn drive(&mut self) -> Result<std::convert::Infallible, End> {
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Err(End::Stopping);
            }
            if self.link.slow.load(Ordering::SeqCst) {
                return Err(End::Slow);
            }
            self.service()?;
            match self.rx.recv_timeout(QUEUE_WAIT) {
                Ok(frame) => {
                    self.deliver(frame)?;
                    for _ in 1..BATCH {
                        match self.rx.try_recv() {
                            Ok(frame) => self.deliver(frame)?,
                            Err(_) => break,
                        }
                    }
                    self.ws.flush().map_err(|e| classify(&e))?;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(End::Io),
            }
        }
    }

    /// Timed faults, pings, the client's messages and the pong deadline.
    fn service(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let age = now.duration_since(self.opened);
        for fault in &self.faults {
            match fault {
                Fault::ServerShutdown { after, grace, .. }
                    if self.shutdown_at.is_none() && age >= *after =>
                {
                    self.shared.count(|c| &c.fault_shutdowns);
                    // SBE sends it as bare JSON text whatever `combined` says.
                    let combined = self.combined && !self.link.sbe;
                    let text =
                        crate::session::shutdown_notice(now_ms(), combined).map_err(|_| End::Io)?;
                    self.ws
                        .send(Message::text(text))
                        .map_err(|e| classify(&e))?;
                    self.shutdown_at = Some(now + *grace);
                }
                Fault::MaxAge { age: max, .. } if age >= *max => {
                    self.shared.count(|c| &c.fault_max_age);
                    return Err(End::Close(CloseCode::Away, "connection age limit"));
                }
                _ => {}
            }
        }
        if self.shutdown_at.is_some_and(|t| now >= t) {
            return Err(End::Close(CloseCode::Away, "server shutdown"));
        }
        if let (Some(due), Some(interval)) = (self.next_ping, self.shared.config.ping_interval)
            && now >= due
        {
            self.ping_counter += 1;
            let payload = Bytes::from(self.ping_counter.to_string());
            self.ws
                .send(Message::Ping(payload.clone()))
                .map_err(|e| classify(&e))?;
            self.shared.count(|c| &c.pings_sent);
            let since = self.awaiting.take().map_or(now, |(_, t)| t);
            self.awaiting = Some((payload, since));
            self.next_ping = Some(now + interval);
        }
        let requests = self.read_pending()?;
        for text in requests {
            self.answer(&text)?;
        }
        if let Some((_, sent_at)) = &self.awaiting
            && now.duration_since(*sent_at) >= self.shared.config.pong_timeout
        {
            return Err(End::PongTimeout);
        }
        Ok(())
    }

    /// Reads what the client sent without waiting; the control messages among it.
    fn read_pending(&mut self) -> Result<Vec<String>, End> {
        let tcp = self.ws.get_ref().tcp();
        tcp.set_nonblocking(true).map_err(|_| End::Io)?;
        let mut requests = Vec::new();
        let outcome = loop {
            let message = match self.ws.read() {
                Ok(Message::Close(_)) => {
                    let _ = self.ws.flush();
                    break Err(End::ClientGone);
                }
                Ok(message) => message,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Ok(());
                }
                Err(e) => break Err(classify(&e)),
            };
            let now = Instant::now();
            self.incoming.push_back(now);
            while self
                .incoming
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.incoming.pop_front();
            }
            if self.bybit.is_none() && self.incoming.len() > self.shared.config.max_messages_per_sec
            {
                break Err(End::RateLimit);
            }
            match message {
                Message::Pong(payload)
                    if self.awaiting.as_ref().is_some_and(|(p, _)| *p == payload) =>
                {
                    self.awaiting = None;
                }
                Message::Text(text) => requests.push(text.as_str().to_owned()),
                Message::Binary(bytes) => {
                    requests.push(String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => {}
            }
        };
        self.ws
            .get_ref()
            .tcp()
            .set_nonblocking(false)
            .map_err(|_| End::Io)?;
        outcome.map(|()| requests)
    }

    /// Answers one control message and carries it out, then counts it: a test that opens the
    /// market once a request is counted finds the subscription in place, not about to be.
    fn answer(&mut self, text: &str) -> Result<(), End> {
        let outcome = match self.bybit.clone() {
            Some(category) => self.answer_bybit(text, &category),
            None => self.answer_binance(text),
        };
        self.shared.count(|c| &c.control_requests);
        outcome
    }

    fn answer_binance(&mut self, text: &str) -> Result<(), End> {
        self.requests += 1;
        let k = self.requests;
        let silent = self
            .faults
            .iter()
            .any(|f| matches!(f, Fault::NoAck { k: n, .. } if *n == k));
        if silent {
            self.shared.count(|c| &c.fault_no_acks);
        }
        let reply = |ws: &mut WebSocket<Conn>, text: String| -> Result<(), End> {
            if silent {
                return Ok(());
            }
            ws.send(Message::text(text)).map_err(|e| classify(&e))
        };
        let (id, request) = match parse_request(text) {
            Ok(parsed) => parsed,
            Err((id, code, msg)) => {
                self.shared.count(|c| &c.control_errors);
                return reply(&mut self.ws, error_reply(id.as_ref(), code, &msg));
            }
        };
        match request {
            Request::Subscribe(streams) => {
                let mut new: Vec<String> = Vec::new();
                for s in streams {
                    if !self.order.contains(&s) && !new.contains(&s) {
                        new.push(s);
                    }
                }
                let max = self.shared.config.max_streams;
                if self.order.len() + new.len() > max {
                    self.shared.count(|c| &c.control_errors);
                    let msg =
                        format!("Invalid request: too many streams; at most {max} per connection");
                    return reply(&mut self.ws, error_reply(Some(&id), 2, &msg));
                }
                // The ack goes out before the first frame of the new streams can be queued.
                reply(&mut self.ws, result_reply(&Value::Null, &id))?;
                self.link.add(&new);
                self.order.extend(new);
                Ok(())
            }
            Request::Unsubscribe(streams) => {
                self.link.remove(&streams);
                self.order.retain(|s| !streams.contains(s));
                reply(&mut self.ws, result_reply(&Value::Null, &id))
            }
            Request::List => {
                let list = json!(self.order);
                reply(&mut self.ws, result_reply(&list, &id))
            }
            Request::SetCombined(combined) => {
                self.combined = combined;
                reply(&mut self.ws, result_reply(&Value::Null, &id))
            }
            Request::GetCombined => {
                let combined = Value::Bool(self.combined);
                reply(&mut self.ws, result_reply(&combined, &id))
            }
        }
    }

    /// Answers a Bybit v5 public request: `subscribe` (a book topic gets a snapshot from the
    /// truth right after the answer), `unsubscribe`, `ping`.
    fn answer_bybit(&mut self, text: &str, category: &str) -> Result<(), End> {
        let conn_id = format!("sim-{}", self.index);
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let op = value["op"].as_str().unwrap_or_default().to_owned();
        let req_id = value.get("req_id").cloned();
        let reply = |ws: &mut WebSocket<Conn>, success: bool, msg: &str| -> Result<(), End> {
            let text = bybit_reply(success, msg, &conn_id, req_id.as_ref(), &op);
            ws.send(Message::text(text)).map_err(|e| classify(&e))
        };
        let args: Option<Vec<String>> = value["args"].as_array().and_then(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| !s.is_empty() && s.len() <= 200)
                        .map(str::to_owned)
                })
                .collect()
        });
        match (op.as_str(), args) {
            ("ping", _) => reply(&mut self.ws, true, "pong"),
            ("subscribe", Some(args)) => {
                let streams: Vec<String> = args.iter().map(|a| format!("{category}:{a}")).collect();
                if self.order.len() + streams.len() > self.shared.config.max_streams {
                    self.shared.count(|c| &c.control_errors);
                    return reply(&mut self.ws, false, "error:too many topics");
                }
                reply(&mut self.ws, true, "")?;
                for (arg, stream) in args.iter().zip(streams) {
                    let snapshot = {
                        // Under the market's lock: no update is applied between the snapshot
                        // and the subscription, and later deltas the snapshot holds are skipped.
                        let market = self.shared.market();
                        let snapshot = bybit_snapshot(&market, category, arg);
                        self.link.add(std::slice::from_ref(&stream));
                        snapshot
                    };
                    if !self.order.contains(&stream) {
                        self.order.push(stream.clone());
                    }
                    if let Some((text, u)) = snapshot {
                        self.floors.insert(stream, u);
                        self.ws
                            .send(Message::text(text))
                            .map_err(|e| classify(&e))?;
                    }
                }
                Ok(())
            }
            ("unsubscribe", Some(args)) => {
                let streams: Vec<String> = args.iter().map(|a| format!("{category}:{a}")).collect();
                self.link.remove(&streams);
                self.order.retain(|s| !streams.contains(s));
                reply(&mut self.ws, true, "")
            }
            _ => {
                self.shared.count(|c| &c.control_errors);
                reply(&mut self.ws, false, "error:handler not found")
            }
        }
    }

    /// Sends one queued frame, through the stream faults.
    fn deliver(&mut self, frame: Arc<LiveFrame>) -> Result<(), End> {
        let Some(name) = self.link.stream_of(&frame) else {
            return Ok(());
        };
        if !self.link.wants(name) {
            return Ok(());
        }
        let name = name.to_owned();
        if let (Some(u), Some(floor)) = (frame.update_id, self.floors.get(&frame.stream))
            && u <= *floor
        {
            return Ok(());
        }
        let seed = self.shared.config.faults.seed;
        let mut copies = 1;
        for fault in &self.faults {
            match fault {
                Fault::Drop { stream, k, .. } if *stream == name && *k == frame.seq => {
                    self.shared.count(|c| &c.fault_drops);
                    return Ok(());
                }
                Fault::Mute { stream, k, .. } if *stream == name && frame.seq > *k => {
                    self.shared.count(|c| &c.fault_muted);
                    return Ok(());
                }
                Fault::RandomDrop {
                    stream, per_mille, ..
                } if *stream == name => {
                    let draw = mix(seed ^ mix(self.index ^ mix(frame.seq ^ name_hash(stream))));
                    if draw % 1000 < u64::from(*per_mille) {
                        self.shared.count(|c| &c.fault_random_drops);
                        return Ok(());
                    }
                }
                Fault::Duplicate { stream, k, .. } if *stream == name && *k == frame.seq => {
                    self.shared.count(|c| &c.fault_duplicates);
                    copies = 2;
                }
                Fault::Swap { stream, k, .. } if *stream == name && *k == frame.seq => {
                    self.shared.count(|c| &c.fault_swaps);
                    self.held = Some(frame);
                    return Ok(());
                }
                _ => {}
            }
        }
        for _ in 0..copies {
            self.send_frame(&frame)?;
        }
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.stream == frame.stream && h.seq < frame.seq)
            && let Some(held) = self.held.take()
        {
            self.send_frame(&held)?;
        }
        Ok(())
    }

    /// Writes one frame, unless a frame-count fault strikes first.
    fn send_frame(&mut self, frame: &LiveFrame) -> Result<(), End> {
        let n = self.frames_sent;
        for fault in &self.faults {
            match fault {
                Fault::ResetMidFrame { after_frames, .. } if *after_frames == n => {
                    self.shared.count(|c| &c.fault_resets);
                    match (&frame.sbe, self.link.sbe) {
                        (Some(sbe), true) => self.write_partial(0x82, &sbe.bytes),
                        _ => self.write_partial(0x81, frame.body(self.combined).as_bytes()),
                    }
                    return Err(End::Reset);
                }
                Fault::HalfOpen { after_frames, .. } if *after_frames == n => {
                    self.shared.count(|c| &c.fault_half_open);
                    return Err(End::HalfOpen);
                }
                Fault::Close1008 { after_frames, .. } if *after_frames == n => {
                    self.shared.count(|c| &c.fault_close_1008);
                    return Err(End::Close(CloseCode::Policy, "Policy violation"));
                }
                _ => {}
            }
        }
        if let Some(tap) = self.shared.tap.get() {
            tap.frame_written();
        }
        let message = match (&frame.sbe, self.link.sbe) {
            // The SBE frame is shared by every SBE session; the clone is a reference count.
            (Some(sbe), true) => Message::Binary(sbe.bytes.clone()),
            _ => Message::text(frame.body(self.combined).to_owned()),
        };
        self.ws.write(message).map_err(|e| classify(&e))?;
        self.frames_sent += 1;
        self.shared.count(|c| &c.frames_sent);
        Ok(())
    }

    /// Writes the head (`first`: FIN and the opcode, text 0x81 or binary 0x82) and half the
    /// payload of a frame, then shuts the socket.
    fn write_partial(&mut self, first: u8, body: &[u8]) {
        let _ = self.ws.flush();
        let len = body.len();
        let mut head = vec![first];
        if len < 126 {
            head.push(len as u8);
        } else if len < 65_536 {
            head.push(126);
            head.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            head.push(127);
            head.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let conn = self.ws.get_mut();
        let _ = conn.write_all(&head);
        let _ = conn.write_all(&body[..len / 2]);
        let _ = conn.flush();
        end_abruptly(conn);
    }

    /// Sends nothing more and keeps the socket until the client leaves or the server stops.
    fn half_open(&mut self) {
        let mut tcp = self.ws.get_ref().tcp();
        if tcp.set_nonblocking(true).is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        while !self.shared.stop.load(Ordering::SeqCst) {
            match tcp.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => return,
            }
        }
    }

    /// Sends a close frame and waits briefly for the client's.
    fn finish(&mut self, code: CloseCode, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.ws.close(Some(frame)).is_err() {
            return;
        }
        let _ = self.ws.get_ref().tcp().set_read_timeout(Some(CLOSE_WAIT));
        let deadline = Instant::now() + CLOSE_WAIT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_code(text: &str) -> (i64, String) {
        let (_, code, msg) = parse_request(text).expect_err(text);
        (code, msg)
    }

    #[test]
    fn requests_parse_as_binance_documents_them() {
        assert_eq!(
            parse_request(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#),
            Ok((json!(1), Request::Subscribe(vec!["btcusdt@trade".into()])))
        );
        assert_eq!(
            parse_request(r#"{"method":"LIST_SUBSCRIPTIONS","id":"abc1"}"#),
            Ok((json!("abc1"), Request::List))
        );
        assert_eq!(
            parse_request(r#"{"method":"SET_PROPERTY","params":["combined",true],"id":null}"#),
            Ok((Value::Null, Request::SetCombined(true)))
        );
        assert_eq!(err_code("{nope").0, 3);
        assert!(err_code("{nope").1.starts_with("Invalid JSON: "));
        assert_eq!(
            err_code(r#"{"params":[],"id":1}"#).1,
            "Invalid request: missing field `method`"
        );
        assert!(
            err_code(r#"{"method":"SUBSCRIB","id":1}"#)
                .1
                .contains("unknown variant `SUBSCRIB`")
        );
        assert_eq!(
            err_code(r#"{"method":"SUBSCRIBE","params":[],"id":1.5}"#).0,
            2
        );
        assert_eq!(
            err_code(r#"{"method":"SUBSCRIBE","params":[],"id":"a-b"}"#).0,
            2
        );
        assert_eq!(
            err_code(r#"{"method":"SUBSCRIBE","params":[1],"id":1}"#).0,
            2
        );
        assert_eq!(
            err_code(r#"{"method":"SET_PROPERTY","params":["x",true],"id":1}"#).0,
            0
        );
        assert_eq!(
            err_code(r#"{"method":"SET_PROPERTY","params":["combined",1],"id":1}"#).0,
            1
        );
        assert_eq!(err_code("[1,2]").0, 2);
    }

    #[test]
    fn stream_paths() {
        let head = |path: &str, query: &str| RequestHead {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            upgrade_websocket: true,
            websocket_key: None,
            close: false,
            content_length: None,
            api_key: None,
        };
        assert_eq!(streams_of_path(&head("/ws", "")), Some((false, vec![])));
        assert_eq!(
            streams_of_path(&head("/stream", "streams=a@trade/b@depth")),
            Some((true, vec!["a@trade".into(), "b@depth".into()]))
        );
        assert_eq!(
            streams_of_path(&head("/public/ws/a@depth", "")),
            Some((false, vec!["a@depth".into()]))
        );
        assert_eq!(streams_of_path(&head("/api/v3/depth", "")), None);
    }
}
