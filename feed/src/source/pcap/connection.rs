//! The per-connection state machine of a replay: which TCP connection a segment belongs to,
//! where each direction stands (upgrade, frames, ended), and the records it produces.
//!
//! Decoding is lazy: a packet only reassembles its bytes and marks its direction ready; frames
//! are then decoded one record at a time by [`Replay::next_ready`] before the next packet is
//! read. So every message is stamped with the packet that completed it, and a record's payload
//! can borrow the decoder's buffer.
//!
//! Invariant: a direction gets a [`ConnId`] only once its connection's `101` has been read;
//! `infos[id]` describes it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use arrayvec::ArrayVec;

mod records;

use super::file::LinkType;
use super::handshake::{self, DeflateParams, HandshakeError};
use super::http_exchange;
use super::link::{self, Skip, TcpFlags};
use super::tcp::{Reassembly, SegmentKind};
use super::ws::{Control, FrameDecoder};
use super::{DirectionFilter, PcapConfig, PcapStats, StreamState, Unusable};
use pinion_core::record::{ConnId, ConnInfo, RecordKind};
use pinion_core::venue::Venue;

/// Something ready to be handed out as a record.
#[derive(Debug, Clone, Copy)]
pub(super) enum Yield {
    /// A session event (`Connect`, `Disconnect`, `Gap`).
    Event {
        t_ns: u64,
        conn: usize,
        half: usize,
        kind: RecordKind,
    },
    /// A message held by the direction's decoder.
    Message { conn: usize, half: usize },
    /// A control frame held by the direction's decoder.
    Control {
        conn: usize,
        half: usize,
        control: Control,
    },
    /// A REST response, complete: the oldest of `Replay::http_done`.
    Http,
}

/// A REST exchange read whole, waiting to be handed out.
#[derive(Debug)]
pub(super) struct HttpDone {
    pub(super) t_ns: u64,
    pub(super) id: ConnId,
    pub(super) url: String,
    pub(super) body: Vec<u8>,
}

/// A connection carrying plain HTTP requests and responses (no upgrade).
#[derive(Debug)]
struct HttpConn {
    id: ConnId,
    /// URLs of the requests not answered yet, oldest first.
    pending: VecDeque<String>,
    /// `http://host`, for responses whose request was not captured.
    base: String,
}

/// One direction: the bytes sent by `Connection::ends[i]`.
#[derive(Debug)]
struct Half {
    reasm: Reassembly,
    /// Reassembled bytes; `stream[..consumed]` has been decoded.
    stream: Vec<u8>,
    consumed: usize,
    state: StreamState,
    decoder: Option<FrameDecoder>,
    id: Option<ConnId>,
    /// Capture time of the last packet that delivered bytes.
    t_last: u64,
    /// The SYN's sequence number, when seen.
    isn: Option<u32>,
    /// Highest acknowledgement the peer sent for this direction's bytes.
    peer_ack: Option<u32>,
    /// An RST ended the connection: close once the delivered bytes are decoded.
    reset: bool,
    /// Capture time of the FIN or RST, once seen.
    t_end: u64,
}

impl Half {
    fn new(config: &PcapConfig) -> Self {
        Half {
            reasm: Reassembly::new(config.max_out_of_order, config.hole_timeout_ns),
            stream: Vec::new(),
            consumed: 0,
            state: StreamState::Upgrading,
            decoder: None,
            id: None,
            t_last: 0,
            isn: None,
            peer_ack: None,
            reset: false,
            t_end: 0,
        }
    }

    fn ended(&self) -> bool {
        matches!(
            self.state,
            StreamState::Closed | StreamState::Gap | StreamState::Unusable(_)
        )
    }

    fn release(&mut self) {
        self.reasm.release();
        self.stream = Vec::new();
        self.consumed = 0;
    }
}

#[derive(Debug)]
struct Connection {
    ends: [SocketAddr; 2],
    /// Index into `ends` of the server, once known.
    server: Option<usize>,
    halves: [Half; 2],
    /// `ws://host/path`, once the request is read.
    url: Option<String>,
    upgraded: bool,
    /// Set when the first request asked for no upgrade: the connection carries REST exchanges.
    http: Option<HttpConn>,
}

impl Connection {
    fn direction_selected(&self, half: usize, filter: DirectionFilter) -> bool {
        let from_server = self.server == Some(half);
        match filter {
            DirectionFilter::ServerToClient => from_server,
            DirectionFilter::ClientToServer => !from_server,
            DirectionFilter::Both => true,
        }
    }
}

/// The replay's state apart from the capture reader.
#[derive(Debug)]
pub(super) struct Replay {
    config: PcapConfig,
    pub(super) stats: PcapStats,
    pub(super) infos: Vec<ConnInfo>,
    conns: Vec<Connection>,
    /// Connection index by its endpoints, lower address first.
    flows: HashMap<(SocketAddr, SocketAddr), usize>,
    events: VecDeque<Yield>,
    /// Directions with bytes to decode (at most the two of one connection at a time).
    ready: ArrayVec<(usize, usize), 8>,
    /// Capture time of the latest packet.
    t_last_packet: u64,
    /// The endpoints and index of the connection of the latest packet.
    last_flow: Option<((SocketAddr, SocketAddr), usize)>,
    /// REST responses read whole, in the order their [`Yield::Http`] events were queued.
    http_done: VecDeque<HttpDone>,
    /// The response handed out last (what [`Replay::record`] lends).
    pub(super) http_current: Option<HttpDone>,
}

impl Replay {
    pub(super) fn new(config: PcapConfig) -> Self {
        Replay {
            config,
            stats: PcapStats::default(),
            infos: Vec::new(),
            conns: Vec::new(),
            flows: HashMap::new(),
            events: VecDeque::with_capacity(16),
            ready: ArrayVec::new(),
            t_last_packet: 0,
            last_flow: None,
            http_done: VecDeque::new(),
            http_current: None,
        }
    }

    /// The next queued event; a REST response's becomes the one [`Replay::record`] lends.
    pub(super) fn pop_event(&mut self) -> Option<Yield> {
        let event = self.events.pop_front()?;
        if let Yield::Http = event {
            self.http_current = self.http_done.pop_front();
        }
        Some(event)
    }

    /// Reassembles one captured packet's TCP payload and marks its direction ready.
    pub(super) fn on_packet(&mut self, t_ns: u64, link_type: LinkType, frame: &[u8]) {
        self.stats.packets += 1;
        self.t_last_packet = t_ns;
        let seg = match link::tcp_segment(link_type, frame) {
            Ok(seg) => seg,
            Err(skip) => {
                let counter = match skip {
                    Skip::UnsupportedLink => &mut self.stats.unsupported_link,
                    Skip::NotIp | Skip::NotTcp => &mut self.stats.non_tcp,
                    Skip::Fragment => &mut self.stats.ip_fragments,
                    Skip::Malformed => &mut self.stats.malformed,
                    Skip::Truncated => &mut self.stats.truncated,
                };
                *counter += 1;
                return;
            }
        };
        if !self.config.filter.matches(seg.src, seg.dst) {
            self.stats.filtered_out += 1;
            return;
        }
        let syn = seg.flags.has(TcpFlags::SYN);
        let key = if seg.src < seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        // Packets of one connection come in runs: skip the hash lookup for a repeat.
        let found = match self.last_flow {
            Some((k, c)) if k == key => Some(c),
            _ => self.flows.get(&key).copied(),
        };
        let known = found.filter(|&c| {
            // A client SYN on a known 4-tuple whose stream already started elsewhere: the port
            // was reused for a new connection.
            let conn = &self.conns[c];
            let half = &conn.halves[usize::from(seg.src != conn.ends[0])];
            let reused = half.reasm.started() && half.isn != Some(seg.seq);
            !(syn && !seg.flags.has(TcpFlags::ACK) && reused)
        });
        let c = match known {
            Some(c) => c,
            None if syn || !seg.payload.is_empty() => {
                if let Some(old) = found {
                    self.close_connection(old, t_ns);
                }
                self.conns.push(Connection {
                    ends: [seg.src, seg.dst],
                    server: None,
                    halves: [Half::new(&self.config), Half::new(&self.config)],
                    url: None,
                    upgraded: false,
                    http: None,
                });
                self.flows.insert(key, self.conns.len() - 1);
                self.conns.len() - 1
            }
            None => return,
        };
        self.last_flow = Some((key, c));
        let h = usize::from(seg.src != self.conns[c].ends[0]);
        let conn = &mut self.conns[c];
        if seg.flags.has(TcpFlags::ACK) {
            let peer = &mut conn.halves[1 - h];
            let newer = peer
                .peer_ack
                .is_none_or(|a| (seg.ack.wrapping_sub(a) as i32) > 0);
            if newer {
                peer.peer_ack = Some(seg.ack);
            }
        }
        let half = &mut conn.halves[h];
        let mut data_seq = seg.seq;
        if syn {
            conn.server = Some(if seg.flags.has(TcpFlags::ACK) {
                h
            } else {
                1 - h
            });
            if half.isn.is_some() {
                self.stats.retransmits += 1;
            } else {
                half.isn = Some(seg.seq);
                half.reasm.start_at(seg.seq.wrapping_add(1));
            }
            data_seq = seg.seq.wrapping_add(1);
        }
        if seg.flags.has(TcpFlags::RST) {
            for i in 0..2 {
                self.conns[c].halves[i].reset = true;
                self.conns[c].halves[i].t_end = t_ns;
                self.mark_ready(c, i, t_ns);
            }
            return;
        }
        if half.ended() || half.state == StreamState::NotSelected {
            return;
        }
        if !seg.payload.is_empty() && !half.reasm.started() {
            // No SYN: only a direction that starts with its upgrade has provable boundaries.
            if seg.payload.starts_with(b"GET ") {
                conn.server = Some(1 - h);
            } else if seg.payload.starts_with(b"HTTP/") {
                conn.server = Some(h);
            } else if conn.server.is_some_and(|server| server != h) && conn.upgraded {
                // Only the client's side is lost; the server's can still be decoded.
                self.stats.unusable += 1;
                half.state = StreamState::Unusable(Unusable::MidStream);
                half.release();
                return;
            } else {
                self.unusable(c, Unusable::MidStream);
                return;
            }
            half.reasm.start_at(seg.seq);
        }
        if !seg.payload.is_empty() {
            self.stats.data_segments += 1;
        }
        let before = half.stream.len();
        match half
            .reasm
            .push(data_seq, seg.payload, t_ns, &mut half.stream)
        {
            Ok(SegmentKind::Retransmit) => self.stats.retransmits += 1,
            Ok(SegmentKind::Overlap) => self.stats.overlaps += 1,
            Ok(SegmentKind::OutOfOrder) => self.stats.out_of_order += 1,
            Ok(SegmentKind::InOrder | SegmentKind::Empty) => {}
            Err(_) => {
                self.lose(c, h, t_ns);
                return;
            }
        }
        if seg.flags.has(TcpFlags::FIN) {
            half.reasm
                .set_fin(data_seq.wrapping_add(seg.payload.len() as u32));
            half.t_end = t_ns;
        }
        if half.stream.len() > before {
            half.t_last = t_ns;
        }
        self.mark_ready(c, h, t_ns);
    }

    /// Moves a direction on after new bytes: reads its upgrade, or queues it for decoding.
    fn mark_ready(&mut self, c: usize, h: usize, t_ns: u64) {
        let half = &self.conns[c].halves[h];
        match half.state {
            StreamState::Upgrading if self.conns[c].server.is_some() => {
                self.upgrade_step(c, h, t_ns)
            }
            // At most the two directions of the connection just touched are pending.
            StreamState::Open if !self.ready.contains(&(c, h)) => {
                let _ = self.ready.try_push((c, h));
            }
            _ => {}
        }
        let half = &mut self.conns[c].halves[h];
        if half.state == StreamState::Upgrading && (half.reset || half.reasm.finished()) {
            half.state = StreamState::Closed;
            half.release();
        }
    }

    /// Reads the upgrade head of a direction, if complete.
    fn upgrade_step(&mut self, c: usize, h: usize, t_ns: u64) {
        if self.conns[c].http.is_some() {
            return self.http_step(c, h, t_ns);
        }
        let limit = self.config.max_handshake;
        let conn = &mut self.conns[c];
        let from_server = conn.server == Some(h);
        let half = &mut conn.halves[h];
        if from_server || conn.url.is_none() {
            let head = &half.stream[half.consumed..];
            if let Err(e) = handshake::check_start(head, from_server) {
                return self.unusable(c, Unusable::BadHandshake(e));
            }
            if from_server {
                match handshake::parse_response(head, limit) {
                    Ok(None) => {}
                    Ok(Some(r)) if r.status == 101 => {
                        half.consumed += r.len;
                        self.upgraded(c, r.deflate, t_ns);
                    }
                    Ok(Some(r)) => self.unusable(c, Unusable::NotUpgraded { status: r.status }),
                    Err(e) => self.unusable(c, Unusable::BadHandshake(e)),
                }
                return;
            }
            match handshake::parse_request(head, limit) {
                Ok(None) => return,
                Ok(Some(r)) if !r.upgrade => {
                    let host = r.host.as_deref().unwrap_or("");
                    return self.start_http(c, h, host, t_ns);
                }
                Ok(Some(r)) => {
                    let host = r.host.as_deref().unwrap_or("");
                    conn.url = Some(format!("ws://{host}{}", r.path));
                    half.consumed += r.len;
                    self.describe(c);
                }
                Err(e) => return self.unusable(c, Unusable::BadHandshake(e)),
            }
        }
        // The client's request is read; its frames wait for the server's `101`.
        let conn = &mut self.conns[c];
        let selected = conn.direction_selected(h, self.config.filter.directions);
        let half = &mut conn.halves[h];
        if !selected {
            half.state = StreamState::NotSelected;
            half.release();
        } else if conn.upgraded {
            half.state = StreamState::Open;
            self.mark_ready(c, h, t_ns);
        } else if half.stream.len() > self.config.max_message + limit {
            self.unusable(c, Unusable::UpgradeNotSeen);
        }
    }

    /// The connection's first request asked for no upgrade: read it as REST exchanges, under
    /// one connection id (that of the server's direction, whose responses become records).
    fn start_http(&mut self, c: usize, h: usize, host: &str, t_ns: u64) {
        let Ok(id) = u16::try_from(self.infos.len()) else {
            return self.unusable(c, Unusable::TooManyConnections);
        };
        let conn = &mut self.conns[c];
        let base = format!("http://{host}");
        let server = conn.server.unwrap_or(1 - h);
        let (from, to) = (conn.ends[server], conn.ends[1 - server]);
        self.infos.push(ConnInfo {
            id: ConnId(id),
            venue: Venue::from_url(&base),
            url: format!("{base} ({from} -> {to}, server->client, REST)"),
        });
        conn.url = Some(base.clone());
        conn.http = Some(HttpConn {
            id: ConnId(id),
            pending: VecDeque::new(),
            base,
        });
        self.stats.http_connections += 1;
        self.http_step(c, h, t_ns);
    }

    /// Reads what a REST connection's direction has: the client's requests (their URLs), the
    /// server's responses (each a record once whole).
    fn http_step(&mut self, c: usize, h: usize, t_ns: u64) {
        let limit = self.config.max_handshake;
        let max_body = self.config.max_message;
        let conn = &mut self.conns[c];
        let from_server = conn.server == Some(h);
        let serve_responses =
            conn.direction_selected(h, self.config.filter.directions) || !from_server;
        let Some(http) = conn.http.as_mut() else {
            return;
        };
        let half = &mut conn.halves[h];
        let ended = half.reset || half.reasm.finished();
        loop {
            let rest = &half.stream[half.consumed..];
            if rest.is_empty() {
                break;
            }
            if !from_server {
                match http_exchange::request(rest, limit) {
                    Ok(Some((url, len))) => {
                        http.pending.push_back(url);
                        half.consumed += len;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.stats.bad_http += 1;
                        return self.unusable(c, Unusable::BadHandshake(HandshakeError::Malformed));
                    }
                }
                continue;
            }
            match http_exchange::response(rest, ended, limit, max_body) {
                Ok(Some(r)) => {
                    half.consumed += r.len;
                    let url = http
                        .pending
                        .pop_front()
                        .unwrap_or_else(|| http.base.clone());
                    if (100..200).contains(&r.status) || !serve_responses {
                        continue;
                    }
                    self.stats.http_responses += 1;
                    self.http_done.push_back(HttpDone {
                        t_ns,
                        id: http.id,
                        url,
                        body: r.body,
                    });
                    self.events.push_back(Yield::Http);
                }
                Ok(None) => break,
                Err(_) => {
                    self.stats.bad_http += 1;
                    return self.unusable(c, Unusable::BadHandshake(HandshakeError::Malformed));
                }
            }
        }
        half.stream.drain(..half.consumed);
        half.consumed = 0;
    }

    /// The server accepted the upgrade: set up decoders and ids for the selected directions.
    fn upgraded(&mut self, c: usize, deflate: Option<DeflateParams>, t_ns: u64) {
        self.stats.upgrades += 1;
        self.conns[c].upgraded = true;
        let server = self.conns[c].server.unwrap_or(0);
        for h in [server, 1 - server] {
            let conn = &mut self.conns[c];
            if !conn.direction_selected(h, self.config.filter.directions) {
                // The client's side is still read up to its request, for the URL.
                if h == server {
                    conn.halves[h].state = StreamState::NotSelected;
                    conn.halves[h].release();
                }
                continue;
            }
            let reset_each_message = deflate.map(|d| {
                if h == server {
                    d.server_no_context_takeover
                } else {
                    d.client_no_context_takeover
                }
            });
            let Ok(id) = u16::try_from(self.infos.len()) else {
                return self.unusable(c, Unusable::TooManyConnections);
            };
            let half = &mut conn.halves[h];
            half.decoder = Some(FrameDecoder::new(
                reset_each_message,
                self.config.max_message,
            ));
            half.id = Some(ConnId(id));
            self.infos.push(ConnInfo {
                id: ConnId(id),
                venue: None,
                url: String::new(),
            });
            self.events.push_back(Yield::Event {
                t_ns,
                conn: c,
                half: h,
                kind: RecordKind::Connect,
            });
            // The client's direction opens once its request has been read.
            let request_read = h == server || conn.url.is_some() || half.consumed > 0;
            if request_read && half.state == StreamState::Upgrading {
                half.state = StreamState::Open;
            }
        }
        self.describe(c);
        for h in [server, 1 - server] {
            self.mark_ready(c, h, t_ns);
        }
    }

    /// (Re)writes the descriptions of a connection's replayed directions.
    fn describe(&mut self, c: usize) {
        let conn = &self.conns[c];
        for (h, half) in conn.halves.iter().enumerate() {
            let Some(id) = half.id else { continue };
            let (from, to) = (conn.ends[h], conn.ends[1 - h]);
            let dir = if conn.server == Some(h) {
                "server->client"
            } else {
                "client->server"
            };
            let info = &mut self.infos[usize::from(id.0)];
            info.url = match &conn.url {
                Some(url) => format!("{url} ({from} -> {to}, {dir})"),
                None => format!("tcp {from} -> {to} ({dir})"),
            };
            info.venue = conn.url.as_deref().and_then(Venue::from_url);
        }
    }

    /// The whole connection cannot be decoded.
    fn unusable(&mut self, c: usize, why: Unusable) {
        self.stats.unusable += 1;
        for half in &mut self.conns[c].halves {
            if !half.ended() {
                half.state = StreamState::Unusable(why);
                half.release();
            }
        }
    }

    /// A direction lost data it can never get back: end it with a gap.
    fn lose(&mut self, c: usize, h: usize, t_ns: u64) {
        self.stats.gaps += 1;
        self.end_half(c, h, t_ns, StreamState::Gap, RecordKind::Gap);
    }

    /// A direction ended normally (close frame, FIN, RST).
    fn close(&mut self, c: usize, h: usize, t_ns: u64) {
        if self.conns[c].halves[h].ended() {
            return;
        }
        self.end_half(c, h, t_ns, StreamState::Closed, RecordKind::Disconnect);
    }

    /// Ends a direction in `state`, releasing its buffers, and tells a reader of its records
    /// with a `kind` record.
    fn end_half(&mut self, c: usize, h: usize, t_ns: u64, state: StreamState, kind: RecordKind) {
        let half = &mut self.conns[c].halves[h];
        half.state = state;
        half.release();
        if half.id.is_some() {
            self.events.push_back(Yield::Event {
                t_ns,
                conn: c,
                half: h,
                kind,
            });
        }
    }

    /// A connection replaced by a new one on the same ports.
    fn close_connection(&mut self, c: usize, t_ns: u64) {
        for h in 0..2 {
            if self.conns[c].halves[h].state == StreamState::Upgrading {
                self.conns[c].halves[h].state = StreamState::Closed;
            }
            self.close(c, h, t_ns);
        }
    }

    /// The capture ended: a direction with a hole, or whose peer acknowledged bytes the capture
    /// never held, ends with a gap, stamped with the capture's last packet time.
    pub(super) fn finish(&mut self) {
        for c in 0..self.conns.len() {
            for h in 0..2 {
                let half = &self.conns[c].halves[h];
                if half.ended() || half.state == StreamState::NotSelected {
                    continue;
                }
                let missed = half.reasm.has_hole()
                    || half.peer_ack.is_some_and(|a| half.reasm.acked_beyond(a));
                if missed {
                    self.lose(c, h, self.t_last_packet);
                }
            }
        }
    }
}
