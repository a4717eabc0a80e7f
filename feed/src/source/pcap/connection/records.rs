//! Handing records out: decoding the ready directions one step at a time, building the
//! [`RawRecord`] that borrows the decoder's buffer, and reporting connection outcomes.

use super::super::ws::{Control, Step, WsError};
use super::super::{StreamState, TcpConnectionReport};
use super::{Replay, Yield};
use pinion_core::record::{RawRecord, RecordKind};

impl Replay {
    /// The next record to hand out, decoding ready directions as needed.
    pub(in crate::source::pcap) fn next_ready(&mut self) -> Option<Yield> {
        if let Some(event) = self.pop_event() {
            return Some(event);
        }
        while let Some(&(c, h)) = self.ready.last() {
            let half = &mut self.conns[c].halves[h];
            let (Some(decoder), StreamState::Open) = (half.decoder.as_mut(), half.state) else {
                self.ready.pop();
                continue;
            };
            let (n, step) = decoder.decode(&half.stream[half.consumed..]);
            half.consumed += n;
            let t_ns = half.t_last;
            match step {
                Step::NeedMore => {
                    self.ready.pop();
                    half.stream.drain(..half.consumed);
                    half.consumed = 0;
                    if half.reset || half.reasm.finished() {
                        // The end is known when the FIN or RST is captured.
                        let t_end = t_ns.max(half.t_end);
                        self.close(c, h, t_end);
                        return self.pop_event();
                    }
                }
                Step::Progress => {}
                Step::Message { .. } => {
                    self.stats.messages += 1;
                    return Some(Yield::Message { conn: c, half: h });
                }
                Step::Control(control) => {
                    self.stats.control_frames += 1;
                    if control == Control::Close {
                        self.close(c, h, t_ns);
                    }
                    if self.config.control_frames {
                        return Some(Yield::Control {
                            conn: c,
                            half: h,
                            control,
                        });
                    }
                    if let Some(event) = self.pop_event() {
                        return Some(event);
                    }
                }
                Step::Error(e) => self.count_error(e),
                Step::Fatal(e) => {
                    self.count_error(e);
                    self.lose(c, h, t_ns);
                    return self.pop_event();
                }
            }
        }
        None
    }

    fn count_error(&mut self, e: WsError) {
        match e {
            WsError::MessageTooLarge => self.stats.oversize_messages += 1,
            _ => self.stats.bad_frames += 1,
        }
    }

    /// The record for something [`Replay::next_ready`] returned.
    pub(in crate::source::pcap) fn record(&self, y: Yield) -> RawRecord<'_> {
        match y {
            Yield::Event {
                t_ns,
                conn,
                half,
                kind,
            } => {
                let c = &self.conns[conn];
                let meta = match kind {
                    RecordKind::Connect => c.url.as_deref().unwrap_or("").as_bytes(),
                    _ => &[],
                };
                RawRecord {
                    t_recv: t_ns,
                    conn: c.halves[half].id.unwrap_or_default(),
                    kind,
                    meta,
                    payload: &[],
                }
            }
            Yield::Http => match &self.http_current {
                Some(done) => RawRecord {
                    t_recv: done.t_ns,
                    conn: done.id,
                    kind: if crate::source::is_depth_snapshot_url(done.url.as_bytes()) {
                        RecordKind::RestSnapshot
                    } else {
                        RecordKind::Http
                    },
                    meta: done.url.as_bytes(),
                    payload: &done.body,
                },
                None => RawRecord {
                    t_recv: self.t_last_packet,
                    conn: Default::default(),
                    kind: RecordKind::Http,
                    meta: &[],
                    payload: &[],
                },
            },
            Yield::Message { conn, half } | Yield::Control { conn, half, .. } => {
                let h = &self.conns[conn].halves[half];
                let meta: &[u8] = match y {
                    Yield::Control { control, .. } => control.name().as_bytes(),
                    _ => &[],
                };
                RawRecord {
                    t_recv: h.t_last,
                    conn: h.id.unwrap_or_default(),
                    kind: RecordKind::Frame,
                    meta,
                    payload: h.decoder.as_ref().map_or(&[], |d| d.payload()),
                }
            }
        }
    }

    /// Every connection with its outcome so far.
    pub(in crate::source::pcap) fn reports(&self) -> Vec<TcpConnectionReport> {
        self.conns
            .iter()
            .map(|conn| {
                let server = conn.server;
                let client = server.map(|s| 1 - s);
                let side = |i: Option<usize>| {
                    let h = &conn.halves[i.unwrap_or(0)];
                    (h.id, h.state)
                };
                TcpConnectionReport {
                    client: client.map(|i| conn.ends[i]),
                    server: server.map(|i| conn.ends[i]),
                    url: conn.url.clone(),
                    server_to_client: side(server),
                    client_to_server: side(client.or(Some(1))),
                }
            })
            .collect()
    }
}
