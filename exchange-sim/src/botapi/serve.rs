//! The fake's listener and connections: accepting (and refusing while down), reading each
//! request with the simulator's HTTP codec, routing it to a Bot API method or a test control,
//! and the long poll.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DownMode, SentButton, SentMessage, Shared, Update, bind, blocking, now_ms};
use crate::http::{self, RequestHead, percent_decode};
use crate::tls::Conn;

/// How long a kept-alive connection may be idle between requests.
const IDLE: Duration = Duration::from_secs(5);

/// How often the accept thread looks at the stop and down flags.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// Most updates one `getUpdates` answer carries (the API's limit).
const MAX_LIMIT: usize = 100;

pub(super) fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: &Arc<Shared>) {
    let mut listener = Some(listener);
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let down = shared.down();
        if down == Some(DownMode::Refuse) {
            // Closed: the kernel refuses connections to the port until it is bound again.
            listener = None;
            std::thread::sleep(ACCEPT_POLL);
            continue;
        }
        if listener.is_none() {
            listener = bind(addr).ok();
        }
        let Some(l) = &listener else {
            std::thread::sleep(ACCEPT_POLL);
            continue;
        };
        let tcp = match l.accept() {
            Ok((tcp, _)) => tcp,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(_) => continue,
        };
        if down == Some(DownMode::Close) {
            shared
                .counters
                .failed_while_down
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        }
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        workers.retain(|w| !w.is_finished());
        let worker_shared = Arc::clone(shared);
        if let Ok(w) = std::thread::Builder::new()
            .name("botapi-conn".into())
            .spawn(move || serve_connection(tcp, &worker_shared))
        {
            workers.push(w);
        }
    }
    drop(listener);
    shared.board().cut_connections(0);
    for w in workers {
        let _ = w.join();
    }
}

fn serve_connection(tcp: TcpStream, shared: &Shared) {
    if !blocking(&tcp) {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(IDLE));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let mut first = [0u8; 1];
    if !matches!(tcp.peek(&mut first), Ok(1) if first[0] == 0x16) {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let id = {
        let mut board = shared.board();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        board.next_socket += 1;
        let id = board.next_socket;
        if let Ok(clone) = tcp.try_clone() {
            board.sockets.push((id, clone));
        }
        id
    };
    if let Ok(mut stream) = Conn::new(tcp, Some(&shared.tls)) {
        serve_requests(&mut stream, shared, id);
        stream.close_notify();
    }
    shared.board().sockets.retain(|(i, _)| *i != id);
}

/// One answer.
struct Reply {
    status: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: &'static str, value: &Value) -> Self {
        Reply {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// The Bot API's error shape.
    fn api_error(status: &'static str, code: u16, description: &str) -> Self {
        Self::json(
            status,
            &json!({"ok": false, "error_code": code, "description": description}),
        )
    }

    fn ok(result: Value) -> Self {
        Self::json("200 OK", &json!({"ok": true, "result": result}))
    }
}

fn serve_requests(stream: &mut Conn, shared: &Shared, conn: u64) {
    loop {
        let head = match http::read_head(stream) {
            Ok(head) => head,
            Err(http::HeadError::Closed | http::HeadError::Io(_)) => return,
            Err(_) => {
                shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                let reply = Reply::api_error("400 Bad Request", 400, "Bad Request: bad head");
                let _ = write(stream, &reply, false);
                return;
            }
        };
        let body = match read_body(stream, &head, shared.config.max_body) {
            Ok(body) => body,
            Err(_) => {
                shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                let reply =
                    Reply::api_error("413 Payload Too Large", 413, "Bad Request: body too large");
                let _ = write(stream, &reply, false);
                return;
            }
        };
        let Some(reply) = route(&head, &body, shared, conn) else {
            // Down: the connection ends without an answer.
            shared
                .counters
                .failed_while_down
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let keep = !head.close && !shared.stop.load(Ordering::SeqCst);
        if write(stream, &reply, keep).is_err() || !keep {
            return;
        }
    }
}

/// Reads the `Content-Length` body (bounded by `max`); none without the header.
fn read_body(stream: &mut Conn, head: &RequestHead, max: usize) -> io::Result<Vec<u8>> {
    let len = head.content_length.unwrap_or(0);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn write(stream: &mut Conn, reply: &Reply, keep: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        reply.status,
        reply.body.len(),
        if keep { "keep-alive" } else { "close" }
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body)?;
    stream.flush()
}

/// The answer to one request; `None` when the API is down and the connection is to end.
fn route(head: &RequestHead, body: &[u8], shared: &Shared, conn: u64) -> Option<Reply> {
    if let Some(control) = head.path.strip_prefix("/fake/") {
        return Some(fake_control(control, head, body, shared, conn));
    }
    match shared.down_for() {
        Some((DownMode::Refuse | DownMode::Close, _)) => return None,
        Some((DownMode::BadGateway, _)) => {
            shared
                .counters
                .failed_while_down
                .fetch_add(1, Ordering::Relaxed);
            return Some(Reply::api_error("502 Bad Gateway", 502, "Bad Gateway"));
        }
        Some((DownMode::TooManyRequests, left)) => {
            shared
                .counters
                .failed_while_down
                .fetch_add(1, Ordering::Relaxed);
            return Some(too_many(left));
        }
        None => {}
    }
    shared.counters.calls.fetch_add(1, Ordering::Relaxed);
    let Some(rest) = head.path.strip_prefix("/bot") else {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return Some(Reply::api_error("404 Not Found", 404, "Not Found"));
    };
    let Some((token, method)) = rest.split_once('/') else {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        return Some(Reply::api_error("404 Not Found", 404, "Not Found"));
    };
    if token != shared.config.token {
        shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        return Some(Reply::api_error("401 Unauthorized", 401, "Unauthorized"));
    }
    let params = match Params::of(head, body) {
        Ok(p) => p,
        Err(what) => {
            shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::api_error(
                "400 Bad Request",
                400,
                &format!("Bad Request: {what}"),
            ));
        }
    };
    match method {
        "getMe" => Some(Reply::ok(json!({
            "id": 1, "is_bot": true, "first_name": "pinion", "username": "pinion_fake_bot"
        }))),
        "getUpdates" => {
            shared.counters.polls.fetch_add(1, Ordering::Relaxed);
            get_updates(&params, shared)
        }
        "sendMessage" => Some(send_message(&params, shared)),
        "answerCallbackQuery" => Some(answer_callback(&params, shared)),
        _ => {
            shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            Some(Reply::api_error(
                "404 Not Found",
                404,
                "Not Found: method not found",
            ))
        }
    }
}

/// A method's parameters: the query string, then a form or JSON body.
struct Params(Vec<(String, Value)>);

impl Params {
    fn of(head: &RequestHead, body: &[u8]) -> Result<Self, &'static str> {
        let mut all = form(&head.query);
        let body = body.trim_ascii();
        if body.first() == Some(&b'{') {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
                return Err("the body is not a JSON object");
            };
            all.extend(map);
        } else if !body.is_empty() {
            let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8")?;
            all.extend(form(text));
        }
        Ok(Params(all))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// An integer given as a JSON number or as text.
    fn int(&self, name: &str) -> Result<Option<i64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("{name} is not an integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} is not an integer: {s:?}")),
            Some(_) => Err(format!("{name} is not an integer")),
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// `a=1&b=x%20y` (`+` is a space, as in a form).
fn form(text: &str) -> Vec<(String, Value)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(&v.replace('+', " "));
            (percent_decode(k), Value::String(v))
        })
        .collect()
}

fn get_updates(params: &Params, shared: &Shared) -> Option<Reply> {
    let (offset, timeout, limit) = match (
        params.int("offset"),
        params.int("timeout"),
        params.int("limit"),
    ) {
        (Ok(o), Ok(t), Ok(l)) => (o, t, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::api_error(
                "400 Bad Request",
                400,
                &format!("Bad Request: {e}"),
            ));
        }
    };
    let limit = limit.map_or(MAX_LIMIT, |l| usize::try_from(l.clamp(1, 100)).unwrap_or(1));
    let wait = Duration::from_secs(u64::try_from(timeout.unwrap_or(0).max(0)).unwrap_or(0))
        .min(shared.config.max_poll);
    let deadline = Instant::now() + wait;
    let mut board = shared.board();
    if let Some(offset) = offset.filter(|&o| o > 0) {
        let offset = u64::try_from(offset).unwrap_or(0);
        board.updates.retain(|u| u.id >= offset);
    }
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        match board.down_until {
            Some((until, DownMode::BadGateway)) if Instant::now() < until => {
                return Some(Reply::api_error("502 Bad Gateway", 502, "Bad Gateway"));
            }
            Some((until, DownMode::TooManyRequests)) if Instant::now() < until => {
                return Some(too_many(until.saturating_duration_since(Instant::now())));
            }
            Some((until, _)) if Instant::now() < until => return None,
            _ => {}
        }
        let now = Instant::now();
        if !board.updates.is_empty() || now >= deadline {
            break;
        }
        board = shared
            .changed
            .wait_timeout(board, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    let result: Vec<Value> = board.updates.iter().take(limit).map(update_json).collect();
    Some(Reply::ok(Value::Array(result)))
}

/// The API's 429: `retry_after` is the seconds left, rounded up.
fn too_many(left: Duration) -> Reply {
    let secs = left.as_millis().div_ceil(1000).max(1);
    Reply::json(
        "429 Too Many Requests",
        &json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": {"retry_after": secs},
        }),
    )
}

fn update_json(u: &Update) -> Value {
    let from =
        json!({"id": u.user_id, "is_bot": false, "first_name": format!("user{}", u.user_id)});
    if let Some((query, m)) = &u.press {
        return json!({
            "update_id": u.id,
            "callback_query": {
                "id": query,
                "from": from,
                "message": message_json(m),
                "chat_instance": format!("{}", m.chat_id),
                "data": u.text,
            }
        });
    }
    json!({
        "update_id": u.id,
        "message": {
            "message_id": u.id,
            "from": {"id": u.user_id, "is_bot": false, "first_name": format!("user{}", u.user_id)},
            "chat": {"id": u.chat_id, "type": if u.chat_id == u.user_id { "private" } else { "group" }},
            "date": u.date,
            "text": u.text,
        }
    })
}

/// A sent message as the API shows it (with its keyboard, if it has one).
fn message_json(m: &SentMessage) -> Value {
    let mut v = json!({
        "message_id": m.message_id,
        "from": {"id": 1, "is_bot": true, "first_name": "pinion"},
        "chat": {"id": m.chat_id, "type": "private"},
        "date": m.at_ms / 1000,
        "text": m.text,
    });
    if !m.buttons.is_empty() {
        let row: Vec<Value> = m
            .buttons
            .iter()
            .map(|b| json!({"text": b.text, "callback_data": b.callback_data}))
            .collect();
        v["reply_markup"] = json!({ "inline_keyboard": [row] });
    }
    v
}

/// The buttons of `reply_markup` (a JSON object, or its text in a form), row after row; what
/// is wrong with it otherwise.
fn buttons_of(params: &Params) -> Result<Vec<SentButton>, &'static str> {
    let markup = match params.get("reply_markup") {
        None => return Ok(Vec::new()),
        Some(Value::String(text)) => {
            serde_json::from_str(text).map_err(|_| "reply_markup is not JSON")?
        }
        Some(v) => v.clone(),
    };
    let Some(rows) = markup.get("inline_keyboard") else {
        // Another kind of keyboard: nothing to press here.
        return Ok(Vec::new());
    };
    let rows = rows
        .as_array()
        .ok_or("inline keyboard must be an Array of Arrays")?;
    let mut out = Vec::new();
    for row in rows {
        let row = row
            .as_array()
            .ok_or("inline keyboard must be an Array of Arrays")?;
        for b in row {
            let text = b
                .get("text")
                .and_then(Value::as_str)
                .ok_or("button text is empty")?;
            let data = b
                .get("callback_data")
                .and_then(Value::as_str)
                .ok_or("BUTTON_DATA_INVALID")?;
            if data.is_empty() || data.len() > 64 {
                return Err("BUTTON_DATA_INVALID");
            }
            out.push(SentButton {
                text: text.to_owned(),
                callback_data: data.to_owned(),
            });
        }
    }
    Ok(out)
}

fn answer_callback(params: &Params, shared: &Shared) -> Reply {
    let Some(id) = params.text("callback_query_id").map(str::to_owned) else {
        return Reply::api_error(
            "400 Bad Request",
            400,
            "Bad Request: callback_query_id is empty",
        );
    };
    let mut board = shared.board();
    let Some(at) = board.unanswered.iter().position(|q| *q == id) else {
        return Reply::api_error(
            "400 Bad Request",
            400,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        );
    };
    board.unanswered.swap_remove(at);
    drop(board);
    shared
        .counters
        .callbacks_answered
        .fetch_add(1, Ordering::Relaxed);
    Reply::ok(Value::Bool(true))
}

fn send_message(params: &Params, shared: &Shared) -> Reply {
    let chat_id = match params.int("chat_id") {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Reply::api_error("400 Bad Request", 400, "Bad Request: chat_id is empty");
        }
        Err(e) => return Reply::api_error("400 Bad Request", 400, &format!("Bad Request: {e}")),
    };
    let Some(text) = params.text("text").filter(|t| !t.trim().is_empty()) else {
        return Reply::api_error("400 Bad Request", 400, "Bad Request: message text is empty");
    };
    if text.chars().count() > 4096 {
        return Reply::api_error("400 Bad Request", 400, "Bad Request: message is too long");
    }
    let buttons = match buttons_of(params) {
        Ok(b) => b,
        Err(what) => {
            return Reply::api_error("400 Bad Request", 400, &format!("Bad Request: {what}"));
        }
    };
    let at_ms = now_ms();
    let mut board = shared.board();
    board.next_message += 1;
    let message = SentMessage {
        chat_id,
        text: text.to_owned(),
        at_ms,
        message_id: board.next_message,
        buttons,
    };
    let answer = message_json(&message);
    board.sent.push_back(message);
    while board.sent.len() > shared.config.max_sent {
        board.sent.pop_front();
    }
    drop(board);
    Reply::ok(answer)
}

/// `/fake/inject`, `/fake/press`, `/fake/sent`, `/fake/down`, `/fake/stats`.
fn fake_control(
    control: &str,
    head: &RequestHead,
    body: &[u8],
    shared: &Shared,
    conn: u64,
) -> Reply {
    let bad = |what: &str| {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        Reply::api_error("400 Bad Request", 400, what)
    };
    match (head.method.as_str(), control) {
        ("POST", "inject") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Inject {
                user_id: i64,
                chat_id: Option<i64>,
                text: String,
            }
            match serde_json::from_slice::<Inject>(body) {
                Ok(i) => {
                    let id = shared.inject(i.user_id, i.chat_id.unwrap_or(i.user_id), &i.text);
                    Reply::ok(json!({"update_id": id}))
                }
                Err(e) => bad(&format!("inject wants {{user_id, text[, chat_id]}}: {e}")),
            }
        }
        ("POST", "press") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Press {
                user_id: i64,
                chat_id: Option<i64>,
                label: String,
            }
            match serde_json::from_slice::<Press>(body) {
                Ok(p) => match shared.press(p.user_id, p.chat_id.unwrap_or(p.user_id), &p.label) {
                    Some(id) => Reply::ok(json!({"update_id": id})),
                    None => Reply::api_error(
                        "404 Not Found",
                        404,
                        "Not Found: no message to that chat has a button so labelled",
                    ),
                },
                Err(e) => bad(&format!("press wants {{user_id, label[, chat_id]}}: {e}")),
            }
        }
        ("GET", "sent") => {
            let sent: Vec<SentMessage> = shared.board().sent.iter().cloned().collect();
            Reply::json("200 OK", &serde_json::to_value(sent).unwrap_or(Value::Null))
        }
        ("GET", "stats") => Reply::json(
            "200 OK",
            &serde_json::to_value(shared.stats()).unwrap_or(Value::Null),
        ),
        ("POST", "down") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Down {
                ms: u64,
                mode: String,
            }
            match serde_json::from_slice::<Down>(body) {
                Ok(d) => match DownMode::parse(&d.mode) {
                    Some(mode) => {
                        shared.go_down(Duration::from_millis(d.ms), mode, conn);
                        Reply::ok(json!({"down_ms": d.ms}))
                    }
                    None => bad("mode is one of refuse, close, bad_gateway, too_many_requests"),
                },
                Err(e) => bad(&format!("down wants {{ms, mode}}: {e}")),
            }
        }
        _ => {
            shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
            Reply::api_error("404 Not Found", 404, "Not Found: unknown control")
        }
    }
}
