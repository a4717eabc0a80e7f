//! One market-stream session: replays the source's frames to a WebSocket client.
//!
//! The session owns a fresh copy of the source and sends every `Frame` record of the configured
//! connection that the client's [`StreamSelection`] asks for, in source order, as a text message
//! (binary when the bytes are not UTF-8). `RestSnapshot` and connection records are not sent: the
//! snapshots are served over REST (see `snapshots`).
//!
//! Between frames the session services the socket without blocking: it sends a ping every
//! `ping_interval`, reads the client's pongs (tungstenite answers the client's pings itself), and
//! ends the session when a ping stays unanswered for `pong_timeout` or the client closes. At the
//! end of the source it sends a `serverShutdown` event (when configured) and a close frame
//! (1001, going away), then waits briefly for the client's close.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pinion_core::RecordKind;
use pinion_feed::SourceError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket, WebSocketConfig};
use tungstenite::{Bytes, Message};

use crate::config::Pacing;
use crate::selection::StreamSelection;
use crate::state::Shared;
use crate::tls::Conn;

/// How often the socket is serviced while frames are being sent back to back.
const SERVICE_EVERY: Duration = Duration::from_millis(20);
/// Longest sleep while pacing, so pings, pongs and shutdown are noticed in time.
const PACING_SLICE: Duration = Duration::from_millis(10);
/// How long the client may take to answer the final close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Largest message accepted from the client (it only sends pongs and small requests).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;

/// Why a session stopped early.
#[derive(Debug)]
enum Stop {
    /// The client closed or went away.
    ClientGone,
    /// A ping went unanswered.
    PongTimeout,
    /// The server is shutting down.
    ServerStopping,
    /// The socket failed.
    Io,
}

/// The outstanding ping and the timer for the next one.
#[derive(Debug)]
struct Keepalive {
    next_ping: Option<Instant>,
    awaiting: Option<(Bytes, Instant)>,
    counter: u64,
}

struct Session<'a> {
    ws: WebSocket<Conn>,
    shared: &'a Shared,
    keepalive: Keepalive,
    last_service: Instant,
}

/// Runs a session on an upgraded connection until the source ends, the client leaves or the
/// server stops.
pub(crate) fn run(stream: Conn, selection: StreamSelection, shared: &Shared) {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let now = Instant::now();
    let mut session = Session {
        ws: WebSocket::from_raw_socket(stream, Role::Server, Some(ws_config)),
        shared,
        keepalive: Keepalive {
            next_ping: shared.config.ping_interval.map(|d| now + d),
            awaiting: None,
            counter: 0,
        },
        last_service: now,
    };
    match session.replay(&selection) {
        Ok(()) => {
            if session.finish(&selection, CloseCode::Away, "end of stream") {
                shared
                    .counters
                    .sessions_completed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(Stop::PongTimeout) => {
            shared
                .counters
                .pong_timeouts
                .fetch_add(1, Ordering::Relaxed);
            session.finish(&selection, CloseCode::Policy, "pong timeout");
        }
        Err(Stop::ServerStopping) => {
            session.finish(&selection, CloseCode::Away, "server shutdown");
        }
        Err(Stop::ClientGone | Stop::Io) => {}
    }
    // Over TLS the client's read of the closed socket must end cleanly, not as a truncation.
    session.ws.get_mut().close_notify();
}

impl Session<'_> {
    /// Sends the selected frames of the source, paced.
    fn replay(&mut self, selection: &StreamSelection) -> Result<(), Stop> {
        let config = &self.shared.config;
        let counters = &self.shared.counters;
        let mut source = match (self.shared.open)() {
            Ok(source) => source,
            Err(_) => {
                counters.source_errors.fetch_add(1, Ordering::Relaxed);
                return Err(Stop::Io);
            }
        };
        let started = Instant::now();
        let mut first_t: Option<u64> = None;
        let mut sent: u64 = 0;
        loop {
            if config.max_frames.is_some_and(|max| sent >= max) {
                break;
            }
            let rec = match source.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                // A malformed record is skipped, as the engine's own replay would skip it.
                Err(SourceError::Format { .. } | SourceError::Checksum { .. }) => {
                    counters.source_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(_) => {
                    counters.source_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            if rec.kind != RecordKind::Frame || config.connection.is_some_and(|c| c != rec.conn) {
                continue;
            }
            let Some(bytes) = selection.select(rec.payload) else {
                continue;
            };
            if let Pacing::Recorded { speed } = config.pacing {
                let first = *first_t.get_or_insert(rec.t_recv);
                let offset_ns = rec.t_recv.saturating_sub(first) as f64 / speed;
                // Saturates for absurd offsets; the deadline then lies far ahead, as recorded.
                let due = started + Duration::from_nanos(offset_ns as u64);
                self.wait_until(due)?;
            }
            let message = match std::str::from_utf8(bytes) {
                Ok(text) => Message::text(text),
                Err(_) => Message::binary(bytes.to_vec()),
            };
            self.ws.write(message).map_err(|e| classify(&e))?;
            sent += 1;
            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            if self.last_service.elapsed() >= SERVICE_EVERY {
                self.service()?;
            }
        }
        self.ws.flush().map_err(|e| classify(&e))
    }

    /// Flushes, then sleeps until `due` in short slices, servicing the socket in between.
    fn wait_until(&mut self, due: Instant) -> Result<(), Stop> {
        self.ws.flush().map_err(|e| classify(&e))?;
        loop {
            self.service()?;
            let now = Instant::now();
            if now >= due {
                return Ok(());
            }
            std::thread::sleep((due - now).min(PACING_SLICE));
        }
    }

    /// Sends a due ping, reads whatever the client sent, and checks the pong deadline.
    fn service(&mut self) -> Result<(), Stop> {
        self.last_service = Instant::now();
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(Stop::ServerStopping);
        }
        let now = self.last_service;
        let config = &self.shared.config;
        if let (Some(due), Some(interval)) = (self.keepalive.next_ping, config.ping_interval)
            && now >= due
        {
            self.keepalive.counter += 1;
            let payload = Bytes::from(self.keepalive.counter.to_string());
            self.ws
                .send(Message::Ping(payload.clone()))
                .map_err(|e| classify(&e))?;
            self.shared
                .counters
                .pings_sent
                .fetch_add(1, Ordering::Relaxed);
            // Only a pong to the latest ping counts, but the deadline runs from the first ping
            // left unanswered, so a client that never answers is dropped on time.
            let since = self.keepalive.awaiting.take().map_or(now, |(_, t)| t);
            self.keepalive.awaiting = Some((payload, since));
            self.keepalive.next_ping = Some(now + interval);
        }
        self.read_pending()?;
        if let Some((_, sent_at)) = &self.keepalive.awaiting
            && now.duration_since(*sent_at) >= config.pong_timeout
        {
            return Err(Stop::PongTimeout);
        }
        Ok(())
    }

    /// Reads every message the client has already sent, without waiting for more.
    fn read_pending(&mut self) -> Result<(), Stop> {
        self.ws
            .get_ref()
            .tcp()
            .set_nonblocking(true)
            .map_err(|_| Stop::Io)?;
        let outcome = loop {
            match self.ws.read() {
                Ok(Message::Pong(payload)) => {
                    let answered = self
                        .keepalive
                        .awaiting
                        .as_ref()
                        .is_some_and(|(p, _)| *p == payload);
                    if answered {
                        self.keepalive.awaiting = None;
                    }
                }
                // tungstenite has queued the answering close; it must go out before the session
                // ends, or the client sees its close unanswered.
                Ok(Message::Close(_)) => {
                    let _ = self.ws.flush();
                    break Err(Stop::ClientGone);
                }
                // Requests (SUBSCRIBE…) and the client's pings (answered by tungstenite) need
                // nothing more here.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    break Ok(());
                }
                Err(e) => break Err(classify(&e)),
            }
        };
        self.ws
            .get_ref()
            .tcp()
            .set_nonblocking(false)
            .map_err(|_| Stop::Io)?;
        outcome
    }

    /// Sends the shutdown notice and a close frame, then waits for the client's close. Whether
    /// the close handshake completed.
    fn finish(&mut self, selection: &StreamSelection, code: CloseCode, reason: &str) -> bool {
        if self.shared.config.shutdown_notice {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let Ok(text) = shutdown_notice(ms, selection.is_combined()) else {
                return false;
            };
            if self.ws.send(Message::text(text)).is_err() {
                return false;
            }
        }
        let frame = CloseFrame {
            code,
            reason: reason.to_owned().into(),
        };
        if self.ws.close(Some(frame)).is_err() {
            return false;
        }
        let _ = self.ws.get_ref().tcp().set_read_timeout(Some(CLOSE_WAIT));
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Binance's `serverShutdown` event.
#[derive(Debug, serde::Serialize)]
struct ShutdownEvent {
    e: &'static str,
    /// Event time, ms since the Unix epoch.
    #[serde(rename = "E")]
    event_time_ms: u64,
}

/// A combined-stream envelope, `{"stream":…,"data":…}`.
#[derive(Debug, serde::Serialize)]
struct Envelope<'a, T> {
    stream: &'a str,
    data: T,
}

/// The `serverShutdown` notice at `ms`, in the combined envelope or bare.
pub(crate) fn shutdown_notice(ms: u64, combined: bool) -> serde_json::Result<String> {
    let event = ShutdownEvent {
        e: "serverShutdown",
        event_time_ms: ms,
    };
    if combined {
        serde_json::to_string(&Envelope {
            stream: "!serverShutdown",
            data: event,
        })
    } else {
        serde_json::to_string(&event)
    }
}

/// What a tungstenite error means for the session.
fn classify(e: &tungstenite::Error) -> Stop {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Stop::ClientGone
        }
        tungstenite::Error::Protocol(_) => Stop::ClientGone,
        _ => Stop::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_notice_is_binance_shaped() {
        assert_eq!(
            shutdown_notice(1_723_161_600_123, true).expect("json"),
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1723161600123}}"#
        );
        assert_eq!(
            shutdown_notice(7, false).expect("json"),
            r#"{"e":"serverShutdown","E":7}"#
        );
    }
}
