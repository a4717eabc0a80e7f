//! The endpoint: one connection at a time, one request per connection, over plain HTTP/1.1 on a
//! local address. A scrape every few seconds is all it serves, so it needs no more.
//!
//! Invariants: a request head is bounded ([`MAX_HEAD`]) and read under a timeout, so a peer that
//! sends too much or nothing cannot hold the thread for long; anything but a well-formed `GET`
//! or `HEAD` is answered with a 4xx status, never a panic.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pinion_net::http::{HeadRules, parse_request};

use super::{Sources, render};

/// The longest request head read.
const MAX_HEAD: usize = 8 << 10;
/// How long a peer may take to send its head or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle endpoint looks whether it should stop.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The content type of the text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub code: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    fn text(code: u16, body: impl Into<String>) -> Self {
        Self {
            code,
            content_type: TEXT,
            body: body.into(),
        }
    }
}

/// The answer to `method target`: `/metrics`, `/health`, `/ready`.
pub fn respond(src: &Sources, method: &str, target: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n");
    }
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/metrics" => Response {
            code: 200,
            content_type: EXPOSITION,
            body: render(src),
        },
        "/health" => match src.health() {
            Ok(()) => Response::text(200, "ok\n"),
            Err(why) => Response::text(503, format!("{why}\n")),
        },
        "/ready" => match src.ready() {
            Ok(()) => Response::text(200, "ready\n"),
            Err(reasons) => Response::text(503, format!("not ready:\n{}\n", reasons.join("\n"))),
        },
        _ => Response::text(404, "not found: try /metrics, /health or /ready\n"),
    }
}

const fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Binds `addr` for [`serve`].
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Answers connections on `listener` until `done`.
pub(super) fn serve(listener: &TcpListener, src: &Sources, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A peer that misbehaves loses its connection; the endpoint goes on.
                let _ = answer(stream, src);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::park_timeout(IDLE_POLL);
            }
            Err(_) => std::thread::park_timeout(IDLE_POLL),
        }
    }
}

/// Reads one request head from `stream` and answers it.
fn answer(mut stream: TcpStream, src: &Sources) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut held = 0;
    let rules = HeadRules::strict(MAX_HEAD);
    let (head_only, response) = loop {
        let n = stream.read(&mut buf[held..])?;
        if n == 0 {
            return Ok(());
        }
        held += n;
        match parse_request(&buf[..held], &rules) {
            Ok(Some(head)) => {
                break (
                    head.method == "HEAD",
                    respond(src, head.method, head.target),
                );
            }
            Ok(None) if held < MAX_HEAD => {}
            Ok(None) | Err(pinion_net::http::HeadError::TooLong { .. }) => {
                break (false, Response::text(431, "request head too long\n"));
            }
            Err(e) => break (false, Response::text(400, format!("{e}\n"))),
        }
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.code,
        reason(response.code),
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(response.body.as_bytes())?;
    }
    stream.flush()
}
