//! pcap and pcapng capture replay: TCP reassembly and WebSocket frame decoding.
//!
//! [`PcapSource`] reads a capture of plaintext WebSocket (`ws://`) sessions and yields each text
//! or binary message as a [`RecordKind::Frame`](pinion_core::RecordKind::Frame) record, stamped with the capture time of the
//! packet that completed it. The layers, one module each:
//!
//! - [`file`](mod@file): the pcap / pcapng containers;
//! - [`link`]: Ethernet (VLAN), Linux cooked v1/v2, raw IP → IPv4/IPv6 → TCP;
//! - [`tcp`]: per-direction reassembly (reordering, retransmissions, overlaps, holes);
//! - [`handshake`]: the HTTP upgrade (path, `Host`, status, `permessage-deflate`);
//! - [`ws`]: WebSocket frames, fragmentation, control frames, inflation;
//! - [`http_exchange`]: plain REST requests and responses (a depth snapshot fetched beside the
//!   streams), bodies by length, chunks or close, `gzip`/`deflate` decoded;
//! - `connection`: the per-connection state machine tying them together, and handing out
//!   records that borrow the decoders' buffers.
//!
//! `permessage-deflate` window sizes are read from the upgrade but inflation always uses a
//! 32 KiB window, which decodes any smaller window the sender used.
//!
//! # Which connections are replayed
//!
//! A connection is only decoded when its start can be proven, so frame boundaries are never
//! guessed: either its SYN was captured, or the first payload seen in a direction is the start of
//! the HTTP upgrade (`GET ` from the client, `HTTP/` from the server). A direction first seen
//! mid-stream is reported [`Unusable::MidStream`] and skipped (the whole connection, unless it
//! is the client's side of a connection whose `101` was already read). A server response other than
//! `101` to an upgrade request makes the connection [`Unusable::NotUpgraded`]. A connection whose
//! first request asks for no upgrade is REST: see [`http_exchange`].
//!
//! # Records
//!
//! Each selected direction of an upgraded connection gets its own [`ConnId`] (in order of
//! upgrade) and yields: a `Connect` record when the `101` is read (`meta` = `ws://host/path` when
//! the request was seen); `Frame` records for messages; optionally (config) control frames as
//! `Frame` records whose `meta` is `ping`, `pong` or `close`; a `Disconnect` record on a close
//! frame, FIN or RST; a `Gap` record when a hole in the TCP stream is never filled (or a deflate
//! context breaks), after which nothing more is decoded from that direction — bytes after a hole
//! are never passed on.
//!
//! A REST connection gets one [`ConnId`] when its first request is read, and yields one record
//! per response, stamped with the packet that completed it: a `RestSnapshot` when the request
//! asked for an order book depth snapshot, else an `Http` record; `meta` is the request's URL
//! (`http://host/path?query`), `payload` the decoded body. So a capture of a feed handler that
//! synced its books from REST replays with the snapshot it synced from.
//!
//! Container errors are [`SourceError`]s; everything about TCP and WebSocket is a
//! per-connection outcome ([`StreamState`]) and a counter in [`PcapStats`], never an error or a
//! panic.

mod connection;
pub mod file;
pub mod handshake;
pub mod http_exchange;
pub mod link;
pub mod tcp;
pub mod ws;

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::error::SourceError;
use crate::source::FrameSource;
use pinion_core::record::{ConnId, ConnInfo, RawRecord};

use connection::Replay;
use file::CaptureReader;
pub use handshake::HandshakeError;

/// Which directions of a connection are replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectionFilter {
    /// Server → client only: the market data (default).
    #[default]
    ServerToClient,
    /// Client → server only: subscriptions and pongs.
    ClientToServer,
    /// Both directions, each with its own [`ConnId`].
    Both,
}

/// One direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Bytes sent by the server.
    ServerToClient,
    /// Bytes sent by the client.
    ClientToServer,
}

/// Which connections to replay. Empty lists match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptureFilter {
    /// Keep connections with either port in this list.
    pub ports: Vec<u16>,
    /// Keep connections with either address in this list.
    pub addresses: Vec<IpAddr>,
    /// Which directions to replay.
    pub directions: DirectionFilter,
}

impl CaptureFilter {
    /// Whether a segment between these endpoints belongs to a selected connection.
    pub fn matches(&self, a: SocketAddr, b: SocketAddr) -> bool {
        (self.ports.is_empty() || self.ports.contains(&a.port()) || self.ports.contains(&b.port()))
            && (self.addresses.is_empty()
                || self.addresses.contains(&a.ip())
                || self.addresses.contains(&b.ip()))
    }
}

/// Replay settings. The limits protect against corrupt or hostile captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapConfig {
    /// Which connections and directions to replay.
    pub filter: CaptureFilter,
    /// Largest WebSocket message accepted, compressed or inflated (default 16 MiB); larger ones
    /// are dropped and counted.
    pub max_message: usize,
    /// Out-of-order bytes buffered per direction behind a hole (default 4 MiB); beyond that the
    /// hole is declared lost.
    pub max_out_of_order: usize,
    /// Capture time a hole may stay open before it is declared lost (default 2 s). Checked when
    /// the direction's next segment arrives; holes still open at the end of the capture are
    /// gaps whatever their age.
    pub hole_timeout_ns: u64,
    /// Largest HTTP upgrade head (default 16 KiB).
    pub max_handshake: usize,
    /// Yield ping/pong/close frames as records (`meta` = `ping`/`pong`/`close`); by default
    /// they are only counted.
    pub control_frames: bool,
}

impl Default for PcapConfig {
    fn default() -> Self {
        PcapConfig {
            filter: CaptureFilter::default(),
            max_message: 16 << 20,
            max_out_of_order: 4 << 20,
            hole_timeout_ns: 2_000_000_000,
            max_handshake: 16 << 10,
            control_frames: false,
        }
    }
}

/// Counters of one replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapStats {
    /// Packets read from the capture.
    pub packets: u64,
    /// Packets that are not TCP over IPv4/IPv6 (other ethertypes, UDP, ICMP…).
    pub non_tcp: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// Packets of a link type this reader does not decode.
    pub unsupported_link: u64,
    /// Packets with a short or inconsistent header.
    pub malformed: u64,
    /// Packets cut short by the capture's snap length (dropped: their payload is incomplete).
    pub truncated: u64,
    /// TCP packets of connections the filter does not select.
    pub filtered_out: u64,
    /// TCP segments that carried payload.
    pub data_segments: u64,
    /// Segments entirely before the next expected byte.
    pub retransmits: u64,
    /// Segments partly before the next expected byte.
    pub overlaps: u64,
    /// Segments that arrived before the bytes preceding them.
    pub out_of_order: u64,
    /// Directions ended by a hole that was never filled (or a broken deflate context).
    pub gaps: u64,
    /// Connections that could not be decoded, or client directions first seen mid-stream on an
    /// upgraded connection (see [`Unusable`]).
    pub unusable: u64,
    /// WebSocket connections upgraded.
    pub upgrades: u64,
    /// Connections of plain HTTP requests and responses (REST), read as such.
    pub http_connections: u64,
    /// REST responses read whole and handed out as records (`RestSnapshot` for a depth
    /// snapshot's URL, else `Http`; `meta` is the request's URL).
    pub http_responses: u64,
    /// REST exchanges that could not be read (a broken head, chunk or content coding, a body
    /// over [`PcapConfig::max_message`]); the connection is then unusable.
    pub bad_http: u64,
    /// Text and binary messages decoded.
    pub messages: u64,
    /// Ping, pong and close frames.
    pub control_frames: u64,
    /// Frames or messages dropped for breaking the protocol (see [`ws::WsError`]).
    pub bad_frames: u64,
    /// Messages dropped for exceeding [`PcapConfig::max_message`].
    pub oversize_messages: u64,
}

/// Why a connection could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Neither its SYN nor the start of its upgrade was captured: frame boundaries unknown.
    MidStream,
    /// The server answered the upgrade with this status instead of `101`.
    NotUpgraded {
        /// The HTTP status.
        status: u16,
    },
    /// The upgrade request or response could not be read.
    BadHandshake(HandshakeError),
    /// The stream's bytes piled up without the upgrade completing.
    UpgradeNotSeen,
    /// More directions than a [`ConnId`] can number.
    TooManyConnections,
}

/// Where one direction of a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// The HTTP upgrade has not been read yet.
    Upgrading,
    /// Frames are being decoded.
    Open,
    /// Not selected by the filter: only its upgrade request was read.
    NotSelected,
    /// Ended by a close frame, FIN or RST.
    Closed,
    /// Ended by lost data; nothing after the hole was decoded.
    Gap,
    /// Could not be decoded.
    Unusable(Unusable),
}

/// What the replay knows about one TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConnectionReport {
    /// The client's address (the side that sent the SYN or the `GET`), when known.
    pub client: Option<SocketAddr>,
    /// The server's address, when known.
    pub server: Option<SocketAddr>,
    /// `ws://host/path` from the upgrade request, when seen.
    pub url: Option<String>,
    /// Server → client: its id (when replayed) and state.
    pub server_to_client: (Option<ConnId>, StreamState),
    /// Client → server: its id (when replayed) and state.
    pub client_to_server: (Option<ConnId>, StreamState),
}

/// A [`FrameSource`] over a pcap or pcapng capture of WebSocket sessions.
#[derive(Debug)]
pub struct PcapSource<R = BufReader<File>> {
    reader: CaptureReader<R>,
    replay: Replay,
    ended: bool,
}

impl PcapSource<BufReader<File>> {
    /// Opens a capture file (pcap or pcapng, detected from its first bytes).
    pub fn open(path: impl AsRef<Path>, config: PcapConfig) -> Result<Self, SourceError> {
        let file = File::open(path)?;
        PcapSource::new(BufReader::with_capacity(1 << 20, file), config)
    }
}

impl<R: Read> PcapSource<R> {
    /// Replays a capture read from `input`.
    pub fn new(input: R, config: PcapConfig) -> Result<Self, SourceError> {
        Ok(PcapSource {
            reader: CaptureReader::new(input)?,
            replay: Replay::new(config),
            ended: false,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> &PcapStats {
        &self.replay.stats
    }

    /// Every TCP connection the filter selected, with its outcome so far.
    pub fn tcp_connections(&self) -> Vec<TcpConnectionReport> {
        self.replay.reports()
    }
}

impl<R: Read> FrameSource for PcapSource<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.replay.infos
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        let ready = loop {
            if let Some(y) = self.replay.next_ready() {
                break y;
            }
            if self.ended {
                return Ok(None);
            }
            match self.reader.next_packet()? {
                Some(packet) => self.replay.on_packet(packet.t_ns, packet.link, packet.data),
                None => {
                    self.ended = true;
                    self.replay.finish();
                }
            }
        };
        Ok(Some(self.replay.record(ready)))
    }
}
