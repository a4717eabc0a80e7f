//! [`LiveSource`]: the venue's market streams as a [`FrameSource`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pinion_core::{ConnId, ConnInfo, InstrumentId, RawRecord, RecordKind, Venue};
use pinion_net::backoff::{AttemptBudget, BackoffPolicy, Reconnect, SplitMix64};
use pinion_net::mio::{Events, Poll, Token};
use pinion_net::ratelimit::{MessagePacer, WeightWindow};
use pinion_net::wss::{Endpoint, Status, WssConnection, WssSettings};

use super::protocol::{self, Frame, Protocol, SBE_KEY_MAX, StreamKind};
use super::queue::RecordQueue;
use super::requests::SnapshotRequests;
use super::worker::{Fetch, Job, Outcome, RestCounters, Worker};
use super::{Encoding, LiveError, LiveSpec};
use crate::recording::RecorderHandle;
use crate::sbe::{self, StreamMessage};
use crate::{FrameSource, SourceError};

/// How often timers (subscriptions, acks, idle and stale checks, snapshots) are looked at.
const TIMER_EVERY: Duration = Duration::from_millis(2);
/// After a snapshot was handed to the book, how long before a book still not live is given
/// another one (it could not use the last: an error body, or one older than its buffer that
/// the book did not report).
const SNAPSHOT_WATCHDOG: Duration = Duration::from_secs(3);
/// Readiness events taken per poll.
const EVENTS: usize = 64;
/// The WebSocket close code for a policy violation (Binance: too many incoming messages).
const CLOSE_POLICY: u16 = 1008;
/// A rotation whose twin failed is tried again after this.
const ROTATION_RETRY: Duration = Duration::from_secs(60);
/// Connection attempts per [`CONNECT_BUDGET_WINDOW`] at most (Binance: 300 per 5 minutes per
/// IP; one session keeps well inside it).
const CONNECT_BUDGET: usize = 200;
/// See [`CONNECT_BUDGET`].
const CONNECT_BUDGET_WINDOW: Duration = Duration::from_secs(300);

/// A stream's subscription state on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    /// Not subscribed (or the connection is down).
    Off,
    /// Queued or sent, no ack yet.
    Pending,
    /// Acknowledged.
    Active,
}

/// One configured stream.
#[derive(Debug)]
struct StreamSlot {
    name: String,
    /// Its name on an SBE connection (`btcusdt@bestBidAsk` for `btcusdt@bookTicker`), when
    /// the session has one.
    sbe_name: Option<String>,
    symbol: usize,
    kind: StreamKind,
    conn: usize,
    sub: Sub,
    /// The last frame of it (or when it was last (re)subscribed).
    last_frame: Instant,
    frames: u64,
}

/// Where a symbol's snapshot stands (Binance; Bybit's come in the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snap {
    /// Nothing wanted.
    Idle,
    /// Wanted: sent once a frame of its depth stream arrived after `after` (Binance's order:
    /// the stream buffers first), and not before `not_before`.
    Wanted {
        after: Option<Instant>,
        not_before: Instant,
    },
    /// With the worker.
    InFlight,
}

/// One configured symbol.
#[derive(Debug)]
struct SymbolSlot {
    symbol: String,
    instrument: InstrumentId,
    depth: Option<usize>,
    served: u64,
    snap: Snap,
    /// When its last snapshot went to the book.
    delivered: Option<Instant>,
}

/// A sent (un)subscription waiting for its ack.
#[derive(Debug)]
struct PendingAck {
    id: u64,
    subscribe: bool,
    streams: Vec<usize>,
    sent: Instant,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Down; the next attempt at `at`.
    Waiting { at: Instant },
    /// TCP, TLS or upgrade under way since then.
    Connecting { since: Instant },
    /// Open since then.
    Open { since: Instant },
}

/// Counters of one connection, readable from any thread while the source runs.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Connection attempts.
    pub attempts: AtomicU64,
    /// Times the connection opened.
    pub opens: AtomicU64,
    /// Times it was lost or closed and had to be reopened.
    pub reconnects: AtomicU64,
    /// Data frames received.
    pub frames: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// Subscription messages sent.
    pub subscribes: AtomicU64,
    /// Acks that never came in time.
    pub ack_timeouts: AtomicU64,
    /// Requests the venue refused.
    pub refused: AtomicU64,
    /// Times nothing at all was read for the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Streams found silent while others flowed.
    pub stale_streams: AtomicU64,
    /// Times the books this connection fed were told to resynchronise: the connection lost
    /// with no redundant partner to carry its streams on, or one of its depth streams found
    /// stale.
    pub resyncs: AtomicU64,
    /// Application pings sent (Bybit).
    pub pings: AtomicU64,
    /// `serverShutdown` notices.
    pub shutdown_notices: AtomicU64,
    /// The last close code the server sent (0 = none).
    pub last_close_code: AtomicU64,
    /// Closes for a policy violation (1008: too many messages); each halves the connection's
    /// control-message rate.
    pub policy_closes: AtomicU64,
    /// Redundant feeds: messages this feed brought first.
    pub first_arrivals: AtomicU64,
    /// Redundant feeds: messages this feed brought after the other (dropped).
    pub duplicates: AtomicU64,
    /// Redundant feeds: the sum of this feed's leads over the other on the same message, ns.
    pub lead_ns: AtomicU64,
    /// Redundant feeds: how many leads `lead_ns` sums.
    pub leads: AtomicU64,
    /// 1 while a connection serving this slot is open, else 0 (kept by the source's timers).
    pub connected: AtomicU64,
    /// When a connection serving this slot last brought a message (or opened), wall clock ns
    /// since the Unix epoch; 0 before the first (kept by the source's timers).
    pub last_data_unix_ns: AtomicU64,
}

/// Counters of the whole source.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Per connection, in connection order.
    pub conns: Vec<ConnCounters>,
    /// Snapshots requested by the book stage.
    pub snapshot_requests: AtomicU64,
    /// Snapshots handed to the book.
    pub snapshots: AtomicU64,
    /// Make-before-break rotations done.
    pub rotations: AtomicU64,
    /// Redundant feeds: gaps on one feed that the other filled.
    pub gaps_filled: AtomicU64,
    /// Redundant feeds: gaps neither feed filled in time (the book resyncs).
    pub gaps_unfilled: AtomicU64,
    /// Snapshot fetches that failed.
    pub snapshot_failures: AtomicU64,
    /// Snapshots given again because a book stayed unsynced.
    pub snapshot_watchdog: AtomicU64,
    /// REST request weight spent.
    pub rest_weight: AtomicU64,
    /// REST answers 429 / 418.
    pub rest_rate_limited: AtomicU64,
}

/// One connection.
struct LiveConn {
    id: ConnId,
    token: Token,
    ws: Option<WssConnection>,
    state: ConnState,
    streams: Vec<usize>,
    /// (Un)subscriptions to send: (subscribe, stream).
    todo: VecDeque<(bool, usize)>,
    acks: Vec<PendingAck>,
    next_id: u64,
    pacer: MessagePacer,
    /// When a message (not a ping) last came: streams silent while others flow are stale.
    last_data: Instant,
    /// Control messages per second it may send (halved by each 1008 close).
    control_rate: u32,
    /// Pongs sent and not yet counted by the pacer.
    control_debt: u64,
    reconnect: Reconnect,
    last_rx: Instant,
    next_ping: Instant,
    /// The counters slot: the planned connection this one serves (a rotation's twin shares
    /// its predecessor's).
    slot: usize,
    /// Its part in a rotation.
    role: Role,
    /// When it is to be replaced (make-before-break), if rotation is on.
    rotate_at: Option<Instant>,
    /// A twin's frames, held until the switch.
    held: RecordQueue,
    /// Where it connects.
    endpoint: Endpoint,
    /// Its URL, for the connect record.
    url: String,
    /// Redundant feeds: the connection carrying the same streams elsewhere.
    partner: Option<usize>,
    /// Whether it checks its streams for silence (one of a redundant pair does).
    primary: bool,
    /// What it receives: JSON text, or SBE binary frames with JSON control messages.
    encoding: Encoding,
    /// Lost while its partner carried on: the books were not told (they go on, fed by the
    /// partner); they are if the partner is lost too before this one is back.
    silent_loss: bool,
}

impl LiveConn {
    /// Connection number `index` (its id and poll token) to `endpoint`, carrying `streams`,
    /// counted in `slot`, down and due to connect at `now`; a plain, primary connection until
    /// the caller says otherwise.
    #[allow(clippy::too_many_arguments)]
    fn new(
        index: usize,
        endpoint: Endpoint,
        url: String,
        streams: Vec<usize>,
        pacer: MessagePacer,
        control_rate: u32,
        reconnect: Reconnect,
        slot: usize,
        now: Instant,
    ) -> Result<LiveConn, LiveError> {
        let id =
            u16::try_from(index).map_err(|_| LiveError::Config("too many connections".into()))?;
        Ok(LiveConn {
            id: ConnId(id),
            token: Token(index),
            ws: None,
            state: ConnState::Waiting { at: now },
            streams,
            todo: VecDeque::new(),
            acks: Vec::new(),
            next_id: 1,
            pacer,
            last_data: now,
            control_rate,
            control_debt: 0,
            reconnect,
            last_rx: now,
            next_ping: now,
            slot,
            role: Role::Normal,
            rotate_at: None,
            held: RecordQueue::with_capacity(0, 0),
            endpoint,
            url,
            partner: None,
            primary: true,
            silent_loss: false,
            encoding: Encoding::Json,
        })
    }
}

/// The reconnect schedule of connection number `index`: the spec's backoff, jitter seeded per
/// connection, the per-IP attempt budget.
fn reconnect_for(spec: &LiveSpec, index: usize) -> Reconnect {
    Reconnect::new(
        BackoffPolicy {
            base: spec.reconnect_base,
            cap: spec.reconnect_cap,
            healthy_after: spec.healthy_after,
        },
        SplitMix64::new(spec.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        AttemptBudget::new(CONNECT_BUDGET, CONNECT_BUDGET_WINDOW),
    )
}

/// One redundant feed's message waiting for the other feed to fill the gap before it.
#[derive(Debug)]
struct HeldFrame {
    t_recv: u64,
    conn: ConnId,
    payload: Vec<u8>,
}

/// Per stream, merging redundant feeds.
#[derive(Debug, Default)]
struct Arb {
    /// The last id handed on (depth `u`, trade id, ticker `u`).
    last: Option<u64>,
    /// When it was handed on, and by which connection slot (for the arrival edge).
    last_at: Option<(Instant, usize)>,
    /// Messages that skip ahead of `last`, in arrival order.
    held: VecDeque<HeldFrame>,
    /// When the oldest held message must be handed on regardless.
    hold_until: Option<Instant>,
}

/// A connection's part in a make-before-break rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Carries its streams.
    Normal,
    /// Still carries its streams while `twin` catches up.
    Retiring { twin: usize },
    /// Opens, subscribes and holds its frames until it takes over from `of`.
    Twin { of: usize },
    /// Replaced and closed; its slot stays so connection ids stay unique.
    Retired,
}

/// Per depth stream during a rotation: the old connection's last id and the twin's first.
#[derive(Debug, Clone, Copy, Default)]
struct Overlap {
    old_last: Option<u64>,
    twin_first: Option<u64>,
}

/// What merging redundant feeds does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// New: hand it on.
    Forward,
    /// The other feed brought it first.
    Duplicate,
    /// It skips ahead: wait for the other feed to fill the gap.
    Hold,
}

/// A message's ids as merging reads them (see [`LiveSource::message_ids`]).
#[derive(Debug, Clone, Copy)]
struct MsgIds {
    chain: Option<u64>,
    last: Option<u64>,
}

/// Binance ids read from a depth or trade frame during a rotation: `U`, `u`, `pu`, and the
/// trade id (`t` of a trade, `a` of an aggregate trade).
#[derive(Debug, Clone, Copy, Default)]
struct FrameIds {
    first: Option<u64>,
    last: Option<u64>,
    prev: Option<u64>,
    trade: Option<u64>,
}

impl FrameIds {
    fn of(frame: &[u8]) -> FrameIds {
        if sbe::is_stream_message(frame) {
            return Self::of_sbe(frame);
        }
        FrameIds {
            first: int_after(frame, b"\"U\":"),
            last: int_after(frame, b"\"u\":"),
            prev: int_after(frame, b"\"pu\":"),
            trade: int_after(frame, b"\"t\":").or_else(|| int_after(frame, b"\"a\":")),
        }
    }
}

impl FrameIds {
    /// The same ids from an SBE message: a diff's first and last update ids, a best bid/ask's
    /// or partial book's update id as its last, a trades message's last trade id.
    fn of_sbe(frame: &[u8]) -> FrameIds {
        let id = |v: i64| u64::try_from(v).ok();
        match sbe::read(frame) {
            Ok(StreamMessage::DepthDiff(d)) => FrameIds {
                first: id(d.first_update_id),
                last: id(d.last_update_id),
                ..FrameIds::default()
            },
            Ok(StreamMessage::DepthSnapshot(d)) => FrameIds {
                last: id(d.last_update_id),
                ..FrameIds::default()
            },
            Ok(StreamMessage::BestBidAsk(b)) => FrameIds {
                last: id(b.book_update_id),
                ..FrameIds::default()
            },
            Ok(StreamMessage::Trades(t)) => FrameIds {
                trade: t
                    .trades
                    .len()
                    .checked_sub(1)
                    .and_then(|i| id(t.trades.trade(i).id)),
                ..FrameIds::default()
            },
            Err(_) => FrameIds::default(),
        }
    }
}

/// What a frame is: SBE binary frames by their header, the rest by the protocol's text rules.
/// An SBE frame's stream key is written into `key`.
fn classify<'a>(protocol: Protocol, frame: &'a [u8], key: &'a mut [u8; SBE_KEY_MAX]) -> Frame<'a> {
    if sbe::is_stream_message(frame) {
        protocol::classify_sbe(frame, key)
    } else {
        protocol::classify(protocol, frame)
    }
}

/// The unsigned integer after `key` in `frame`.
fn int_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(frame, key)? + key.len();
    let digits = frame[at..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The venue's market streams as a [`FrameSource`]: see the [module docs](super).
pub struct LiveSource {
    venue: Venue,
    protocol: Protocol,
    spec: LiveSpec,
    /// Connection settings of JSON connections (no API key: they need none).
    settings: WssSettings,
    /// Connection settings of SBE connections: the caller's, with their API key.
    sbe_settings: WssSettings,
    poll: Poll,
    events: Events,
    conns: Vec<LiveConn>,
    infos: Vec<ConnInfo>,
    streams: Vec<StreamSlot>,
    by_name: HashMap<Box<[u8]>, usize>,
    symbols: Vec<SymbolSlot>,
    requests: Arc<SnapshotRequests>,
    worker: Worker,
    queue: RecordQueue,
    /// Wall-clock ns at the settings' clock origin: receive stamps become epoch ns.
    wall_origin: u64,
    next_timer: Instant,
    msg: String,
    counters: Arc<LiveCounters>,
    /// Origin of the ns clock the backoff and pacers count on.
    origin: Instant,
    /// What the last failed REST request said.
    last_rest_error: Option<String>,
    /// Where every record handed out is also recorded.
    recorder: Option<RecorderHandle>,
    /// Per stream, during a rotation of its connection.
    overlap: Vec<Overlap>,
    /// Per stream, the last trade id handed out during a rotation.
    last_trade: Vec<Option<u64>>,
    /// Rotations done (make-before-break switches).
    rotations: u64,
    /// Jitter for rotation times.
    jitter: SplitMix64,
    /// Redundant feeds: per stream, the merge state (empty without them).
    arbs: Vec<Arb>,
    /// Redundant feeds: this turn's frames, before the merge.
    incoming: RecordQueue,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("venue", &self.venue)
            .field("conns", &self.infos)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl LiveSource {
    /// Plans the connections for `spec` (symbols × streams, at most
    /// [`LiveSpec::max_streams_per_connection`] each) and starts the REST worker. Nothing
    /// connects before the first [`FrameSource::next_record`]. `instruments[i]` is the
    /// instrument of `spec.symbols[i]`; `requests` is shared with the book stage.
    /// `settings.api_key` goes to SBE connections alone, and they need one.
    pub fn new(
        spec: LiveSpec,
        settings: WssSettings,
        rest: Box<dyn Fetch>,
        instruments: &[InstrumentId],
        requests: Arc<SnapshotRequests>,
    ) -> Result<Self, LiveError> {
        spec.validate()?;
        if instruments.len() != spec.symbols.len() {
            return Err(LiveError::Config(format!(
                "{} symbols but {} instruments",
                spec.symbols.len(),
                instruments.len()
            )));
        }
        let sbe_conns = spec.encoding == Encoding::Sbe
            || (spec.redundant_ws_url.is_some() && spec.redundant_encoding == Encoding::Sbe);
        if sbe_conns && settings.api_key.is_none() {
            return Err(LiveError::Config(
                "SBE streams need an API key (Ed25519) for the X-MBX-APIKEY header".into(),
            ));
        }
        let sbe_settings = settings.clone();
        let settings = WssSettings {
            api_key: None,
            ..settings
        };
        let venue = spec.venue;
        let protocol = Protocol::of(venue);
        let endpoint =
            Endpoint::parse(&spec.ws_url).map_err(|e| LiveError::Config(e.to_string()))?;
        let now = Instant::now();
        let mut symbols: Vec<SymbolSlot> = spec
            .symbols
            .iter()
            .zip(instruments)
            .map(|(s, &instrument)| SymbolSlot {
                symbol: s.clone(),
                instrument,
                depth: None,
                served: 0,
                snap: if protocol == Protocol::Binance {
                    Snap::Wanted {
                        after: Some(now),
                        not_before: now,
                    }
                } else {
                    Snap::Idle
                },
                delivered: None,
            })
            .collect();
        let mut streams = Vec::new();
        let mut by_name = HashMap::new();
        for (si, sym) in spec.symbols.iter().enumerate() {
            for suffix in &spec.streams {
                let name = protocol::stream_name(protocol, sym, suffix);
                let kind = protocol::stream_kind(protocol, suffix);
                if by_name.contains_key(name.as_bytes()) {
                    continue;
                }
                let idx = streams.len();
                if kind == StreamKind::Depth && symbols[si].depth.is_none() {
                    symbols[si].depth = Some(idx);
                }
                by_name.insert(name.clone().into_bytes().into_boxed_slice(), idx);
                // On SBE connections the same stream has another name, and its frames are
                // found by template and symbol.
                let sbe_suffix = protocol::sbe_stream_suffix(suffix).filter(|_| sbe_conns);
                if let Some(template) = sbe_suffix.and_then(protocol::sbe_template) {
                    let mut key = [0u8; SBE_KEY_MAX];
                    let n = protocol::sbe_key(template, sym.as_bytes(), &mut key);
                    by_name.insert(key[..n].into(), idx);
                }
                streams.push(StreamSlot {
                    sbe_name: sbe_suffix.map(|x| protocol::stream_name(protocol, sym, x)),
                    name,
                    symbol: si,
                    kind,
                    conn: 0,
                    sub: Sub::Off,
                    last_frame: now,
                    frames: 0,
                });
            }
        }
        let poll = Poll::new().map_err(LiveError::Io)?;
        let per_conn = spec.max_streams_per_connection.max(1);
        let n_conns = streams.len().div_ceil(per_conn).max(1);
        let mut conns = Vec::with_capacity(n_conns);
        let mut infos = Vec::with_capacity(n_conns);
        for c in 0..n_conns {
            let members: Vec<usize> =
                (c * per_conn..((c + 1) * per_conn).min(streams.len())).collect();
            for &s in &members {
                streams[s].conn = c;
            }
            let mut conn = LiveConn::new(
                c,
                endpoint.clone(),
                spec.ws_url.clone(),
                members,
                MessagePacer::new(spec.control_messages_per_sec as u32, 1)
                    .map_err(|e| LiveError::Config(e.to_string()))?,
                spec.control_messages_per_sec as u32,
                reconnect_for(&spec, c),
                c,
                now,
            )?;
            conn.encoding = spec.encoding;
            infos.push(ConnInfo {
                id: conn.id,
                venue: Some(venue),
                url: spec.ws_url.clone(),
            });
            conns.push(conn);
        }
        if let Some(url) = &spec.redundant_ws_url {
            let second = Endpoint::parse(url).map_err(|e| LiveError::Config(e.to_string()))?;
            for c in 0..n_conns {
                let p = conns.len();
                let mut partner = LiveConn::new(
                    p,
                    second.clone(),
                    url.clone(),
                    conns[c].streams.clone(),
                    conns[c].pacer.clone(),
                    conns[c].control_rate,
                    reconnect_for(&spec, p),
                    n_conns + c,
                    now,
                )?;
                partner.partner = Some(c);
                partner.primary = false;
                partner.encoding = spec.redundant_encoding;
                infos.push(ConnInfo {
                    id: partner.id,
                    venue: Some(venue),
                    url: url.clone(),
                });
                conns[c].partner = Some(p);
                conns.push(partner);
            }
        }
        let n_slots = conns.len();
        let window = WeightWindow::new(
            spec.rest_weight_limit,
            spec.rest_weight_share,
            spec.rest_weight_window,
        )
        .map_err(|e| LiveError::Config(e.to_string()))?;
        let worker = Worker::spawn(spec.rest_url.clone(), rest, window).map_err(LiveError::Io)?;
        let counters = Arc::new(LiveCounters {
            conns: (0..n_slots).map(|_| ConnCounters::default()).collect(),
            ..LiveCounters::default()
        });
        let elapsed = u64::try_from(settings.clock_origin.elapsed().as_nanos()).unwrap_or(0);
        let jitter_seed = spec.seed.rotate_left(17);
        let redundant = spec.redundant_ws_url.is_some();
        let n_streams = streams.len();
        Ok(Self {
            venue,
            protocol,
            settings,
            sbe_settings,
            poll,
            events: Events::with_capacity(EVENTS),
            conns,
            infos,
            streams,
            by_name,
            symbols,
            requests,
            worker,
            queue: RecordQueue::with_capacity(1 << 20, 4096),
            wall_origin: wall_ns().saturating_sub(elapsed),
            next_timer: now,
            msg: String::with_capacity(1 << 12),
            counters,
            spec,
            origin: now,
            last_rest_error: None,
            recorder: None,
            overlap: Vec::new(),
            last_trade: Vec::new(),
            rotations: 0,
            jitter: SplitMix64::new(jitter_seed),
            arbs: if redundant {
                (0..n_streams).map(|_| Arb::default()).collect()
            } else {
                Vec::new()
            },
            incoming: RecordQueue::with_capacity(if redundant { 1 << 20 } else { 0 }, 1024),
        })
    }

    /// Records every record handed out through `handle` too (the recorder thread writes them
    /// to `.pnr`; a full ring drops and counts, never blocks).
    pub fn record_to(&mut self, handle: RecorderHandle) {
        self.recorder = Some(handle);
    }

    /// The source's counters, shared: read them from any thread while it runs.
    pub fn counters(&self) -> Arc<LiveCounters> {
        Arc::clone(&self.counters)
    }

    /// What the last failed REST request said, if one failed.
    pub fn last_rest_error(&self) -> Option<&str> {
        self.last_rest_error.as_deref()
    }

    /// REST worker counters as of its last answer.
    pub fn rest_counters(&self) -> RestCounters {
        self.worker.counters()
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// One service turn: socket events, then timers.
    fn service(&mut self) {
        if let Err(e) = self.poll.poll(&mut self.events, Some(Duration::ZERO))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            // Nothing sensible to do but try again next turn.
            return;
        }
        let now = Instant::now();
        // Lent out for the loop (an empty `Events` allocates nothing), so each event can
        // update the source.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in &events {
            self.on_event(ev.token().0, ev, now);
        }
        self.events = events;
        if now >= self.next_timer {
            self.next_timer = now + TIMER_EVERY;
            self.timers(now);
        }
    }

    fn on_event(&mut self, c: usize, ev: &pinion_net::mio::event::Event, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(c) else {
            return;
        };
        let Some(ws) = conn.ws.as_mut() else {
            return;
        };
        let protocol = self.protocol;
        let streams = &mut self.streams;
        let by_name = &self.by_name;
        let queue = &mut self.queue;
        let counters = &self.counters.conns[slot];
        let wall_origin = self.wall_origin;
        let conn_id = conn.id;
        let role = conn.role;
        let paired = conn.partner.is_some();
        let incoming = &mut self.incoming;
        let held = &mut conn.held;
        let overlap = &mut self.overlap;
        let last_trade = &mut self.last_trade;
        let mut acked: Vec<(u64, bool)> = Vec::new();
        let mut shutdown = false;
        let mut got = false;
        let was_open = matches!(conn.state, ConnState::Open { .. });
        // Anything read counts as life, server pings included (they never reach the callback).
        let before = ws.stats();
        let mut key = [0u8; SBE_KEY_MAX];
        let result = ws.poll_ready(ev, |m| {
            got = true;
            let t_recv = wall_origin + m.t_recv_ns;
            match classify(protocol, m.payload, &mut key) {
                Frame::Data(name) => {
                    let stream = by_name.get(name).copied();
                    if let Some(s) = stream {
                        let slot = &mut streams[s];
                        slot.last_frame = now;
                        slot.frames += 1;
                    }
                    counters.frames.fetch_add(1, Ordering::Relaxed);
                    counters
                        .bytes
                        .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
                    match (role, stream) {
                        (Role::Twin { .. }, Some(s)) => {
                            // Held until the switch; its first ids say where it starts.
                            if streams[s].kind == StreamKind::Depth {
                                let ids = FrameIds::of(m.payload);
                                let o = &mut overlap[s];
                                if o.twin_first.is_none() {
                                    o.twin_first = match protocol {
                                        Protocol::Binance => ids.prev.or(ids.first),
                                        Protocol::Bybit => Some(0),
                                    };
                                }
                            }
                            held.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload);
                        }
                        (Role::Retiring { .. }, Some(s)) => {
                            let ids = FrameIds::of(m.payload);
                            if streams[s].kind == StreamKind::Depth {
                                if ids.last.is_some() {
                                    overlap[s].old_last = ids.last;
                                }
                            } else if ids.trade.is_some() {
                                last_trade[s] = ids.trade;
                            }
                            queue.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload);
                        }
                        (_, Some(_)) if paired => {
                            incoming.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload);
                        }
                        _ => queue.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload),
                    }
                }
                Frame::Ack { id, ok } => acked.push((id, ok)),
                Frame::Pong => {}
                Frame::ServerShutdown => {
                    shutdown = true;
                    queue.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload);
                }
                Frame::Other => queue.push(t_recv, conn_id, RecordKind::Frame, b"", m.payload),
            }
        });
        let after = conn.ws.as_ref().map(WssConnection::stats);
        if got || after.is_some_and(|a| a.socket_bytes != before.socket_bytes) {
            conn.last_rx = now;
        }
        if got {
            conn.last_data = now;
        }
        // Pongs go out at once (the transport answers pings in the same turn), but they count
        // against the venue's message limit: they are paid for before the next control message.
        if let Some(a) = after {
            conn.control_debt += a.pongs.saturating_sub(before.pongs);
        }
        if shutdown {
            counters.shutdown_notices.fetch_add(1, Ordering::Relaxed);
            // The server will close this connection: replace it now.
            if conn.role == Role::Normal {
                conn.rotate_at = Some(now);
            }
        }
        if !self.incoming.is_empty() {
            self.merge(slot, now);
        }
        for (id, ok) in acked {
            self.on_ack(c, id, ok, now);
        }
        match result {
            Ok(Status::Open) => {
                if !was_open {
                    self.on_open(c, now);
                }
            }
            Ok(Status::Connecting) => {}
            Ok(Status::Closed { code }) => {
                if let Some(code) = code {
                    self.counters.conns[slot]
                        .last_close_code
                        .store(u64::from(code), Ordering::Relaxed);
                }
                if code == Some(CLOSE_POLICY) {
                    // The venue says this connection sent too much: send less from now on.
                    self.counters.conns[slot]
                        .policy_closes
                        .fetch_add(1, Ordering::Relaxed);
                    let rate = self.conns[c].control_rate.div_ceil(2).max(1);
                    self.conns[c].control_rate = rate;
                    if let Ok(p) = MessagePacer::new(rate, 1) {
                        self.conns[c].pacer = p;
                    }
                }
                self.drop_conn(c, now);
            }
            Err(_) => self.drop_conn(c, now),
        }
    }

    /// Redundant feeds: hands on this turn's frames from connection slot `slot` that are new,
    /// drops those the other feed brought first, and holds those that skip ahead.
    fn merge(&mut self, slot: usize, now: Instant) {
        let mut incoming = std::mem::replace(&mut self.incoming, RecordQueue::with_capacity(0, 0));
        while let Some(rec) = incoming.pop() {
            let mut key = [0u8; SBE_KEY_MAX];
            let stream = match classify(self.protocol, rec.payload, &mut key) {
                Frame::Data(name) => self.by_name.get(name).copied(),
                _ => None,
            };
            let Some(s) = stream else {
                self.queue
                    .push(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload);
                continue;
            };
            let ids = self.message_ids(s, rec.payload);
            match self.verdict(s, ids) {
                Merge::Forward => {
                    self.forward(s, slot, ids, now);
                    self.queue
                        .push(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload);
                    self.flush_held(s, now);
                }
                Merge::Duplicate => self.count_duplicate(s, slot, ids, now),
                Merge::Hold => {
                    let gap_hold = self.spec.gap_hold;
                    let arb = &mut self.arbs[s];
                    if arb.held.is_empty() {
                        arb.hold_until = Some(now + gap_hold);
                    }
                    arb.held.push_back(HeldFrame {
                        t_recv: rec.t_recv,
                        conn: rec.conn,
                        payload: rec.payload.to_vec(),
                    });
                }
            }
        }
        incoming.recycle();
        self.incoming = incoming;
    }

    /// The ids merging goes by: for a depth message the id its predecessor must end with
    /// (`U - 1` on Spot, `pu` on futures) and its own last (`u`); for anything else its id
    /// (trade id, or a ticker's `u`) as both.
    fn message_ids(&self, s: usize, payload: &[u8]) -> MsgIds {
        let ids = FrameIds::of(payload);
        if self.streams[s].kind == StreamKind::Depth {
            let chain = if self.venue.is_binance_futures() {
                ids.prev
            } else {
                ids.first.map(|u| u.saturating_sub(1))
            };
            MsgIds {
                chain,
                last: ids.last,
            }
        } else {
            let id = ids.trade.or(ids.last);
            MsgIds {
                chain: id,
                last: id,
            }
        }
    }

    fn verdict(&self, s: usize, ids: MsgIds) -> Merge {
        let arb = &self.arbs[s];
        let (Some(last), Some(end)) = (arb.last, ids.last) else {
            return Merge::Forward;
        };
        if end <= last {
            return Merge::Duplicate;
        }
        match (self.streams[s].kind, ids.chain) {
            // A depth message that does not continue the last one handed on: the other feed
            // may still bring what is missing.
            (StreamKind::Depth, Some(chain)) if chain > last => Merge::Hold,
            _ => Merge::Forward,
        }
    }

    fn forward(&mut self, s: usize, slot: usize, ids: MsgIds, now: Instant) {
        let arb = &mut self.arbs[s];
        if let Some(end) = ids.last {
            arb.last = Some(arb.last.map_or(end, |l| l.max(end)));
            arb.last_at = Some((now, slot));
        }
        self.counters.conns[slot]
            .first_arrivals
            .fetch_add(1, Ordering::Relaxed);
    }

    fn count_duplicate(&mut self, s: usize, slot: usize, ids: MsgIds, now: Instant) {
        let c = &self.counters;
        c.conns[slot].duplicates.fetch_add(1, Ordering::Relaxed);
        let arb = &self.arbs[s];
        // The copy of the message last handed on: how far behind the first feed this one was.
        if let (Some((at, first)), Some(last), Some(end)) = (arb.last_at, arb.last, ids.last)
            && end == last
            && first != slot
        {
            let lead = u64::try_from(now.duration_since(at).as_nanos()).unwrap_or(u64::MAX);
            c.conns[first].lead_ns.fetch_add(lead, Ordering::Relaxed);
            c.conns[first].leads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands on held messages of stream `s` that now continue it (the other feed filled the
    /// gap); drops those it brought meanwhile.
    fn flush_held(&mut self, s: usize, now: Instant) {
        let mut filled = false;
        while let Some(front) = self.arbs[s].held.front() {
            let ids = self.message_ids(s, &front.payload);
            match self.verdict(s, ids) {
                Merge::Hold => break,
                verdict => {
                    let Some(h) = self.arbs[s].held.pop_front() else {
                        break;
                    };
                    if verdict == Merge::Forward {
                        let slot = self.slot_of(h.conn);
                        self.forward(s, slot, ids, now);
                        self.queue
                            .push(h.t_recv, h.conn, RecordKind::Frame, b"", &h.payload);
                    }
                    filled = true;
                }
            }
        }
        let arb = &mut self.arbs[s];
        if arb.held.is_empty() {
            arb.hold_until = None;
            if filled {
                self.counters.gaps_filled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands on, in order, held messages whose wait is over: the gap was on both feeds, and
    /// the book will see it.
    fn release_expired_holds(&mut self, now: Instant) {
        for s in 0..self.arbs.len() {
            if self.arbs[s].hold_until.is_none_or(|t| now < t) {
                continue;
            }
            self.arbs[s].hold_until = None;
            self.counters.gaps_unfilled.fetch_add(1, Ordering::Relaxed);
            while let Some(h) = self.arbs[s].held.pop_front() {
                let ids = self.message_ids(s, &h.payload);
                if self.verdict(s, ids) == Merge::Duplicate {
                    continue;
                }
                let slot = self.slot_of(h.conn);
                let arb = &mut self.arbs[s];
                if let Some(end) = ids.last {
                    arb.last = Some(arb.last.map_or(end, |l| l.max(end)));
                    arb.last_at = Some((now, slot));
                }
                self.queue
                    .push(h.t_recv, h.conn, RecordKind::Frame, b"", &h.payload);
            }
        }
    }

    fn slot_of(&self, conn: ConnId) -> usize {
        self.conns
            .iter()
            .find(|c| c.id == conn)
            .map_or(0, |c| c.slot)
    }

    fn on_open(&mut self, c: usize, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        let now_ns = self.ns(now);
        let due = self.rotation_due(now);
        let conn = &mut self.conns[c];
        conn.state = ConnState::Open { since: now };
        conn.last_rx = now;
        conn.last_data = now;
        conn.reconnect.on_connected(now_ns);
        conn.silent_loss = false;
        if conn.role == Role::Normal {
            conn.rotate_at = due;
        }
        conn.next_ping = now + self.spec.client_ping_every;
        self.counters.conns[slot]
            .opens
            .fetch_add(1, Ordering::Relaxed);
        let t = wall_ns();
        let url = conn.url.as_bytes();
        self.queue.push(t, conn.id, RecordKind::Connect, url, b"");
        conn.todo.clear();
        conn.acks.clear();
        for &s in &conn.streams {
            self.streams[s].sub = Sub::Pending;
            conn.todo.push_back((true, s));
        }
    }

    fn on_ack(&mut self, c: usize, id: u64, ok: bool, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        let conn = &mut self.conns[c];
        let Some(pos) = conn.acks.iter().position(|a| a.id == id) else {
            return;
        };
        let ack = conn.acks.swap_remove(pos);
        if !ok {
            self.counters.conns[slot]
                .refused
                .fetch_add(1, Ordering::Relaxed);
            // Asked again, paced like any other request.
            for &s in &ack.streams {
                conn.todo.push_back((ack.subscribe, s));
            }
            return;
        }
        if ack.subscribe {
            for &s in &ack.streams {
                let slot = &mut self.streams[s];
                slot.sub = Sub::Active;
                slot.last_frame = now;
            }
        }
    }

    /// The connection is gone: says so to the books, and schedules the next attempt.
    fn drop_conn(&mut self, c: usize, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        match self.conns[c].role {
            Role::Retired => return,
            // A twin that failed before taking over: the old connection carries on, and
            // tries again later.
            Role::Twin { of } => {
                if let Some(mut ws) = self.conns[c].ws.take() {
                    let _ = ws.close();
                }
                let was_open = matches!(self.conns[c].state, ConnState::Open { .. });
                self.conns[c].role = Role::Retired;
                self.conns[c].held = RecordQueue::with_capacity(0, 0);
                if was_open {
                    self.queue.push(
                        wall_ns(),
                        self.conns[c].id,
                        RecordKind::Disconnect,
                        b"",
                        b"",
                    );
                }
                self.conns[of].role = Role::Normal;
                self.conns[of].rotate_at = Some(now + ROTATION_RETRY);
                return;
            }
            // The old connection went first: the twin takes over at once (the books it fed
            // resync on the disconnect below; nothing else could be done).
            Role::Retiring { twin } => {
                let mut held =
                    std::mem::replace(&mut self.conns[twin].held, RecordQueue::with_capacity(0, 0));
                let id = self.conns[c].id;
                if let Some(mut ws) = self.conns[c].ws.take() {
                    let _ = ws.close();
                }
                self.queue
                    .push(wall_ns(), id, RecordKind::Disconnect, b"", b"");
                self.counters.conns[slot]
                    .resyncs
                    .fetch_add(1, Ordering::Relaxed);
                while let Some(rec) = held.pop() {
                    self.queue
                        .push(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload);
                }
                for &s in &self.conns[twin].streams {
                    self.streams[s].conn = twin;
                }
                self.conns[c].role = Role::Retired;
                self.conns[twin].role = Role::Normal;
                self.conns[twin].rotate_at = self.rotation_due(now);
                self.counters.conns[slot]
                    .reconnects
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            Role::Normal => {}
        }
        let conn = &mut self.conns[c];
        if let Some(mut ws) = conn.ws.take() {
            let _ = ws.close();
        }
        let was_open = matches!(conn.state, ConnState::Open { .. });
        let now_ns = u64::try_from(now.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        conn.reconnect.on_disconnect(now_ns);
        let at = conn.reconnect.schedule(now_ns);
        conn.state = ConnState::Waiting {
            at: self.origin + Duration::from_nanos(at),
        };
        conn.todo.clear();
        conn.acks.clear();
        for &s in &conn.streams {
            self.streams[s].sub = Sub::Off;
        }
        if !was_open {
            return;
        }
        self.counters.conns[slot]
            .reconnects
            .fetch_add(1, Ordering::Relaxed);
        let id = conn.id;
        let partner = conn.partner;
        match partner {
            // The partner carries the same streams on: the books go on, fed by it.
            Some(p) if matches!(self.conns[p].state, ConnState::Open { .. }) => {
                self.conns[c].silent_loss = true;
            }
            _ => {
                self.queue
                    .push(wall_ns(), id, RecordKind::Disconnect, b"", b"");
                self.counters.conns[slot]
                    .resyncs
                    .fetch_add(1, Ordering::Relaxed);
                // Both feeds are down now: books last fed by the partner lose sync too.
                if let Some(p) = partner
                    && std::mem::take(&mut self.conns[p].silent_loss)
                {
                    let pid = self.conns[p].id;
                    self.queue
                        .push(wall_ns(), pid, RecordKind::Disconnect, b"", b"");
                    let partner_slot = self.conns[p].slot;
                    self.counters.conns[partner_slot]
                        .resyncs
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        for c in 0..self.conns.len() {
            self.conn_timers(c, now);
        }
        self.snapshot_timers(now);
        if !self.arbs.is_empty() {
            self.release_expired_holds(now);
        }
        while let Some(outcome) = self.worker.poll() {
            self.on_outcome(outcome, now);
        }
        let rest = self.worker.counters();
        self.counters
            .rest_weight
            .store(rest.weight, Ordering::Relaxed);
        self.counters
            .rest_rate_limited
            .store(rest.rate_limited, Ordering::Relaxed);
        self.publish_liveness(now);
    }

    /// Per counters slot, for readers on other threads: whether a connection serving it is
    /// open, and when one last brought data.
    fn publish_liveness(&self, now: Instant) {
        let wall = wall_ns();
        for (slot, counters) in self.counters.conns.iter().enumerate() {
            let mut open = false;
            let mut last: Option<Instant> = None;
            for conn in self.conns.iter().filter(|c| c.slot == slot) {
                if matches!(conn.state, ConnState::Open { .. }) {
                    open = true;
                    last = Some(last.map_or(conn.last_data, |l| l.max(conn.last_data)));
                }
            }
            counters.connected.store(u64::from(open), Ordering::Relaxed);
            if let Some(last) = last {
                let age = u64::try_from(now.saturating_duration_since(last).as_nanos())
                    .unwrap_or(u64::MAX);
                counters
                    .last_data_unix_ns
                    .store(wall.saturating_sub(age), Ordering::Relaxed);
            }
        }
    }

    fn conn_timers(&mut self, c: usize, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        if self.conns[c].role == Role::Retired {
            return;
        }
        match self.conns[c].state {
            ConnState::Waiting { at } if now >= at => {
                let now_ns = self.ns(now);
                let origin = self.origin;
                let conn = &mut self.conns[c];
                if let Err(allowed) = conn.reconnect.on_attempt(now_ns) {
                    // Over the attempt budget: wait for it.
                    conn.state = ConnState::Waiting {
                        at: origin + Duration::from_nanos(allowed),
                    };
                    return;
                }
                self.counters.conns[slot]
                    .attempts
                    .fetch_add(1, Ordering::Relaxed);
                let settings = match conn.encoding {
                    Encoding::Json => &self.settings,
                    Encoding::Sbe => &self.sbe_settings,
                };
                match WssConnection::connect(
                    &conn.endpoint,
                    settings,
                    self.poll.registry(),
                    conn.token,
                ) {
                    Ok(ws) => {
                        conn.ws = Some(ws);
                        conn.state = ConnState::Connecting { since: now };
                    }
                    Err(_) => {
                        let at = conn.reconnect.schedule(now_ns);
                        conn.state = ConnState::Waiting {
                            at: origin + Duration::from_nanos(at),
                        };
                    }
                }
            }
            ConnState::Waiting { .. } => {}
            ConnState::Connecting { since } => {
                if now.duration_since(since) > self.spec.connect_timeout {
                    self.drop_conn(c, now);
                }
            }
            ConnState::Open { since } => {
                self.open_timers(c, since, now);
                match self.conns[c].role {
                    Role::Normal if self.conns[c].rotate_at.is_some_and(|t| now >= t) => {
                        match self.conns[c].partner {
                            // Its partner carries the streams meanwhile: reconnect this one.
                            Some(p) if matches!(self.conns[p].state, ConnState::Open { .. }) => {
                                self.conns[c].rotate_at = None;
                                self.counters.rotations.fetch_add(1, Ordering::Relaxed);
                                self.drop_conn(c, now);
                                self.conns[c].state = ConnState::Waiting { at: now };
                            }
                            Some(_) => self.conns[c].rotate_at = Some(now + ROTATION_RETRY / 6),
                            None => self.start_rotation(c, now),
                        }
                    }
                    Role::Retiring { twin } => self.try_switch(c, twin, now),
                    _ => {}
                }
            }
        }
    }

    /// Opens a twin of connection `c` (a new connection id, the same streams); `c` keeps
    /// carrying its streams until the twin has caught up (see [`LiveSource::try_switch`]).
    fn start_rotation(&mut self, c: usize, now: Instant) {
        let twin = self.conns.len();
        let old = &self.conns[c];
        let Ok(pacer) = MessagePacer::new(old.control_rate, 1) else {
            return;
        };
        let Ok(mut conn) = LiveConn::new(
            twin,
            old.endpoint.clone(),
            old.url.clone(),
            old.streams.clone(),
            pacer,
            old.control_rate,
            old.reconnect.clone(),
            old.slot,
            now,
        ) else {
            // No connection id left: this one is kept as it is.
            self.conns[c].rotate_at = None;
            return;
        };
        conn.primary = old.primary;
        conn.encoding = old.encoding;
        conn.role = Role::Twin { of: c };
        conn.held = RecordQueue::with_capacity(1 << 20, 1024);
        self.infos.push(ConnInfo {
            id: conn.id,
            venue: Some(self.venue),
            url: old.url.clone(),
        });
        self.overlap.resize(self.streams.len(), Overlap::default());
        self.last_trade.resize(self.streams.len(), None);
        for &s in &conn.streams {
            self.overlap[s] = Overlap::default();
            self.last_trade[s] = None;
        }
        self.conns.push(conn);
        self.conns[c].role = Role::Retiring { twin };
    }

    /// Switches from `old` to its `twin` once the twin is subscribed and, for every depth
    /// stream, starts no later than right after the last message `old` handed on: the books
    /// then see the twin's held messages continue theirs (those they already have are stale
    /// to them and skipped), and never an unsynced view.
    fn try_switch(&mut self, old: usize, twin: usize, now: Instant) {
        let t = &self.conns[twin];
        if !matches!(t.state, ConnState::Open { .. }) || !t.todo.is_empty() || !t.acks.is_empty() {
            return;
        }
        let futures = self.venue.is_binance_futures();
        let caught_up = t.streams.iter().all(|&s| {
            if self.streams[s].kind != StreamKind::Depth {
                return true;
            }
            let o = self.overlap[s];
            match (self.protocol, o.old_last, o.twin_first) {
                // A Bybit twin starts with a snapshot of its own.
                (Protocol::Bybit, _, Some(_)) => true,
                (Protocol::Binance, Some(last), Some(first)) => {
                    if futures {
                        last >= first
                    } else {
                        last + 1 >= first
                    }
                }
                _ => false,
            }
        });
        if caught_up {
            self.switch(old, twin, now);
        }
    }

    /// Hands the twin's held frames on (trades the old connection already handed on are
    /// dropped) and closes `old` without a disconnect record: its books go on, fed by the twin.
    fn switch(&mut self, old: usize, twin: usize, now: Instant) {
        let mut held =
            std::mem::replace(&mut self.conns[twin].held, RecordQueue::with_capacity(0, 0));
        let mut key = [0u8; SBE_KEY_MAX];
        while let Some(rec) = held.pop() {
            if let Frame::Data(name) = classify(self.protocol, rec.payload, &mut key)
                && let Some(&s) = self.by_name.get(name)
                && self.streams[s].kind != StreamKind::Depth
                && let (Some(last), Some(id)) =
                    (self.last_trade[s], FrameIds::of(rec.payload).trade)
                && id <= last
            {
                continue;
            }
            self.queue
                .push(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload);
        }
        for &s in &self.conns[twin].streams {
            self.streams[s].conn = twin;
        }
        if let Some(mut ws) = self.conns[old].ws.take() {
            let _ = ws.close();
        }
        self.conns[old].role = Role::Retired;
        self.conns[old].state = ConnState::Waiting { at: now };
        let due = self.rotation_due(now);
        let t = &mut self.conns[twin];
        t.role = Role::Normal;
        t.rotate_at = due;
        self.rotations += 1;
        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
    }

    /// When a connection opened at `now` is to be replaced: the configured age with up to
    /// the configured jitter added, or never.
    fn rotation_due(&mut self, now: Instant) -> Option<Instant> {
        if self.spec.rotate_after.is_zero() {
            return None;
        }
        let jitter_ns = u64::try_from(self.spec.rotate_jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.jitter.up_to(jitter_ns));
        Some(now + self.spec.rotate_after + jitter)
    }

    fn open_timers(&mut self, c: usize, since: Instant, now: Instant) {
        let Some(slot) = self.conns.get(c).map(|conn| conn.slot) else {
            return;
        };
        let spec = &self.spec;
        // Nothing at all for the idle timeout: the socket is half-open or the server stalled.
        if now.duration_since(self.conns[c].last_rx) > spec.read_idle_timeout {
            self.counters.conns[slot]
                .idle_timeouts
                .fetch_add(1, Ordering::Relaxed);
            self.drop_conn(c, now);
            return;
        }
        let now_ns = u64::try_from(now.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        let conn = &mut self.conns[c];
        // Data within the last timer turns: the stretch of healthy data grows.
        if now.duration_since(conn.last_rx) < spec.read_idle_timeout.min(Duration::from_secs(1)) {
            conn.reconnect.on_healthy(now_ns);
        }
        let _ = since;
        // Acks that did not come: ask again.
        let mut i = 0;
        while i < conn.acks.len() {
            if now.duration_since(conn.acks[i].sent) > spec.ack_timeout {
                let ack = conn.acks.swap_remove(i);
                self.counters.conns[slot]
                    .ack_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                for s in ack.streams {
                    conn.todo.push_back((ack.subscribe, s));
                }
            } else {
                i += 1;
            }
        }
        // Depth streams silent while the connection is alive.
        // The others flow: data came within the last quarter of the threshold (a second at
        // most), not merely a little after this stream's last message (a market going quiet).
        let flowing = (spec.stream_stale_after / 4).min(Duration::from_secs(1));
        if !spec.stream_stale_after.is_zero() && conn.role == Role::Normal && conn.primary {
            for &s in &conn.streams {
                let st = &mut self.streams[s];
                if st.kind == StreamKind::Depth
                    && st.sub == Sub::Active
                    && now.duration_since(st.last_frame) > spec.stream_stale_after
                    && now.duration_since(conn.last_data) < flowing
                {
                    self.counters.conns[slot]
                        .stale_streams
                        .fetch_add(1, Ordering::Relaxed);
                    self.counters.conns[slot]
                        .resyncs
                        .fetch_add(1, Ordering::Relaxed);
                    st.sub = Sub::Pending;
                    st.last_frame = now;
                    let symbol = self.symbols[st.symbol].symbol.as_bytes();
                    // The book of that symbol alone resyncs; the stream is renewed alone.
                    self.queue
                        .push(wall_ns(), conn.id, RecordKind::Gap, symbol, b"");
                    conn.todo.push_back((false, s));
                    conn.todo.push_back((true, s));
                }
            }
        }
        // Client pings (Bybit).
        if self.protocol == Protocol::Bybit
            && now >= conn.next_ping
            && conn.pacer.try_send(now_ns).is_ok()
        {
            protocol::bybit_ping(conn.next_id, &mut self.msg);
            conn.next_id += 1;
            if let Some(ws) = conn.ws.as_mut()
                && ws.send_text(&self.msg).is_ok()
            {
                self.counters.conns[slot]
                    .pings
                    .fetch_add(1, Ordering::Relaxed);
            }
            conn.next_ping = now + spec.client_ping_every;
        }
        // Pongs already sent take their share of the message budget first.
        while conn.control_debt > 0 && conn.pacer.try_send(now_ns).is_ok() {
            conn.control_debt -= 1;
        }
        // (Un)subscriptions, batched and paced.
        while !conn.todo.is_empty()
            && conn.control_debt == 0
            && conn.pacer.next_allowed(now_ns) <= now_ns
        {
            let subscribe = conn.todo[0].0;
            let per_msg = protocol::streams_per_message(self.protocol);
            let mut batch = Vec::with_capacity(per_msg);
            while batch.len() < per_msg {
                match conn.todo.front() {
                    Some(&(sub, s)) if sub == subscribe => {
                        conn.todo.pop_front();
                        batch.push(s);
                    }
                    _ => break,
                }
            }
            let sbe = conn.encoding == Encoding::Sbe;
            let names: Vec<&str> = batch
                .iter()
                .map(|&s| {
                    let slot = &self.streams[s];
                    match (&slot.sbe_name, sbe) {
                        (Some(name), true) => name.as_str(),
                        _ => slot.name.as_str(),
                    }
                })
                .collect();
            let id = conn.next_id;
            conn.next_id += 1;
            protocol::subscription_message(self.protocol, subscribe, &names, id, &mut self.msg);
            let Some(ws) = conn.ws.as_mut() else {
                return;
            };
            if ws.send_text(&self.msg).is_err() {
                self.drop_conn(c, now);
                return;
            }
            let _ = conn.pacer.try_send(now_ns);
            self.counters.conns[slot]
                .subscribes
                .fetch_add(1, Ordering::Relaxed);
            conn.acks.push(PendingAck {
                id,
                subscribe,
                streams: batch,
                sent: now,
            });
        }
    }

    fn snapshot_timers(&mut self, now: Instant) {
        for i in 0..self.symbols.len() {
            let sym = &mut self.symbols[i];
            let requested = self.requests.requested(sym.instrument);
            if requested > sym.served {
                sym.served = requested;
                self.counters
                    .snapshot_requests
                    .fetch_add(1, Ordering::Relaxed);
                match self.protocol {
                    Protocol::Binance => {
                        if sym.snap != Snap::InFlight {
                            sym.snap = Snap::Wanted {
                                after: Some(now),
                                not_before: now,
                            };
                        }
                    }
                    Protocol::Bybit => {
                        // The snapshot comes in the stream: renew the subscription.
                        if let Some(s) = sym.depth {
                            let c = self.streams[s].conn;
                            if self.streams[s].sub == Sub::Active {
                                self.streams[s].sub = Sub::Pending;
                                self.conns[c].todo.push_back((false, s));
                                self.conns[c].todo.push_back((true, s));
                            }
                        }
                    }
                }
            }
            if self.protocol != Protocol::Binance {
                continue;
            }
            // A book still not live long after its last snapshot, with nothing in flight.
            if sym.snap == Snap::Idle
                && sym
                    .delivered
                    .is_some_and(|d| now.duration_since(d) > SNAPSHOT_WATCHDOG)
                && !self.requests.is_live(sym.instrument)
            {
                self.counters
                    .snapshot_watchdog
                    .fetch_add(1, Ordering::Relaxed);
                sym.snap = Snap::Wanted {
                    after: None,
                    not_before: now,
                };
                sym.delivered = Some(now);
            }
            if let Snap::Wanted { after, not_before } = sym.snap {
                let Some(s) = sym.depth else { continue };
                let stream = &self.streams[s];
                // Binance's rule: the stream first (its diffs buffer in the book), then the
                // snapshot.
                let streaming = stream.sub == Sub::Active
                    && stream.frames > 0
                    && after.is_none_or(|t| stream.last_frame > t);
                if now >= not_before && streaming {
                    let job = Job {
                        symbol: i,
                        path: protocol::depth_path(
                            self.venue,
                            &sym.symbol,
                            self.spec.snapshot_limit,
                        ),
                        weight: protocol::depth_weight(self.venue, self.spec.snapshot_limit),
                    };
                    if self.worker.submit(job) {
                        sym.snap = Snap::InFlight;
                    }
                }
            }
        }
    }

    fn on_outcome(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Done {
                symbol,
                url,
                body,
                t_recv,
            } => {
                let sym = &mut self.symbols[symbol];
                if let Snap::InFlight = sym.snap {
                    sym.snap = Snap::Idle;
                }
                sym.delivered = Some(now);
                // On the connection of its depth stream: the book it belongs to is fed there.
                let conn = sym
                    .depth
                    .map_or(ConnId(0), |s| self.conns[self.streams[s].conn].id);
                // A snapshot taken while that connection was down would be for books that
                // already lost it: it still goes to the book, which checks it against the
                // stream like any other.
                self.queue.push(
                    t_recv,
                    conn,
                    RecordKind::RestSnapshot,
                    url.as_bytes(),
                    &body,
                );
                self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
                self.worker.recycle(body);
            }
            Outcome::Failed {
                symbol,
                retry_after,
                why,
            } => {
                self.last_rest_error = Some(why);
                self.counters
                    .snapshot_failures
                    .fetch_add(1, Ordering::Relaxed);
                let sym = &mut self.symbols[symbol];
                sym.snap = Snap::Wanted {
                    after: None,
                    not_before: now + retry_after,
                };
            }
        }
    }
}

impl FrameSource for LiveSource {
    fn connections(&self) -> &[ConnInfo] {
        &self.infos
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if self.queue.is_empty() {
            self.queue.recycle();
            self.service();
        }
        let rec = self.queue.pop();
        if let (Some(rec), Some(recorder)) = (&rec, &mut self.recorder) {
            recorder.record(rec);
        }
        Ok(rec)
    }

    fn at_end(&self) -> bool {
        false
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        for conn in &mut self.conns {
            if let Some(mut ws) = conn.ws.take() {
                let _ = ws.close();
            }
        }
    }
}
