//! The pipeline builder, for any source (a recording or the synthetic market today, live
//! connections next): builds the four stages from validated [`Settings`], places them on
//! threads, runs them to the end of the input, and gathers the report. `pinion replay` is a thin
//! layer over it.
//!
//! The stages are connected by bounded rings: feed → book → strategy → gateway, and a reverse
//! ring gateway → strategy for execution reports. The placement only decides which thread polls
//! which stage; the stages are the same objects in every placement, which is what lets the
//! integration tests compare placements on the same input.

mod book_dump;
mod convert;
mod findings;
mod input;
mod keys;
mod live;
mod outputs;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pinion_book::{BookSync, SyncConfig};
use pinion_core::{InstrumentId, Px, Qty};
use pinion_feed::parse::Decoder;
use pinion_gateway::{OrderVenue, VenueClock};
use pinion_strategy::{ClientOrderId, ExecReport, OrderSide, OrderStatus, VenueOrderId};

pub use book_dump::{BookDumpSummary, BookPoint, BookView, DumpPoints, LevelText, replay_books};
pub use convert::{
    ConvertEncoding, ConvertSummary, check_output_is_not_input, convert_recording,
    convert_recording_as,
};
pub use findings::{BookSummary, Damage, scaled_decimal};
pub use input::{
    BOOKS_FOR_ALL_UP_TO, LiveParts, PreparedInput, load_exchange_info, open_source, prepare,
};
pub use keys::{KeyCheckReport, KeyRefusal, check_order_key};
pub use live::{accounts_json, final_books, for_live, roots_for, trust};
pub(crate) use report::by_strategy_json;
pub use report::{ControlOutcome, PipelineReport, Throughput};

use crate::config::{Settings, StageKind};
use crate::control::{Control, KillReason};
use crate::metrics::{BookStates, Monitor, Sources};
use crate::problems::errors_out::ErrorsOut;
use crate::problems::{ProblemLog, ProblemSummary};
use crate::progress::{ProgressBar, ProgressCounters};
use crate::runtime::liveness::Beats;
use crate::runtime::{self, PlacementReport, Published, RuntimeOptions, Stage, ThreadPlan};
use crate::stages::book::{BookStage, FinalBooks};
use crate::stages::event_barrier::EventBarrier;
use crate::stages::feed::{FeedParts, FeedStage};
use crate::stages::gateway::LanePorts;
use crate::stages::gateway::{GatewayStage, venues_for};
use crate::stages::handoff::Handoff;
use crate::stages::msg::{BookMsg, MarketMsg, OrderMsg};
use crate::stages::outbox::Fanout;
use crate::stages::outbox::{Outbox, Stamped};
use crate::stages::pacing::Pacer;
use crate::stages::predecoded::{Predecoded, PredecodedFeed};
use crate::stages::strategy::{FinalTrading, StrategyPorts, StrategyStage, VenueLink};

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The recording could not be opened or read at start-up.
    #[error("input: {0}")]
    Source(#[from] pinion_feed::SourceError),
    /// An instrument definition is wrong or conflicts.
    #[error("instruments: {0}")]
    Instrument(#[from] pinion_core::instrument::InstrumentError),
    /// The synthetic market's settings are wrong.
    #[error(transparent)]
    Synth(#[from] pinion_feed::synth::SynthError),
    /// A `.pnr` recording could not be written.
    #[error("recording: {0}")]
    Recording(#[from] pinion_feed::recording::RecordingError),
    /// A book could not be set up.
    #[error("book: {0}")]
    Book(#[from] pinion_book::BookError),
    /// A report output cannot be written (checked before the run starts).
    #[error("{what}: {}: {problem}: {source}", path.display())]
    ReportPath {
        /// The flag and config key.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What could not be done.
        problem: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An exchange instrument list that is not one.
    #[error("{}: {what}", path.display())]
    ExchangeInfo {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// `convert` was asked to write over a file it reads.
    #[error(
        "the output {} is the input {} (the same file): converting would destroy it; choose another output",
        output.display(),
        input.display()
    )]
    OutputIsInput {
        /// The file the conversion reads.
        input: PathBuf,
        /// The output as given.
        output: PathBuf,
    },
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A live session could not start.
    #[error("live: {0}")]
    Live(String),
    /// The start-up checks of the order key refused it.
    #[error("live: order key refused: {0}")]
    KeyRefused(#[from] KeyRefusal),
    /// A traded symbol does not allow the configured self-trade prevention mode: the exchange
    /// would refuse every order of it (found at start-up, before any order).
    #[error("live: {0}")]
    StpNotAllowed(#[from] pinion_gateway::binance::stp::StpNotAllowed),
    /// The operator bot could not start.
    #[error("bot: {0}")]
    Bot(String),
    /// A `[[strategy]]` instance names an instrument that is not traded in this run.
    #[error(
        "strategy {instance:?}: `instruments` names {symbol:?}, which is not among the instruments traded here ({known})"
    )]
    InstanceInstrument {
        /// The instance's name.
        instance: String,
        /// The symbol it names.
        symbol: String,
        /// The symbols traded.
        known: String,
    },
    /// A pairs instance's leg does not name exactly one traded instrument.
    #[error(
        "strategy {instance:?}: the pairs leg {leg:?} names {found}: each leg must name one instrument (write it with its venue: \"VENUE:SYMBOL\")"
    )]
    PairsLeg {
        /// The instance's name.
        instance: String,
        /// The leg as written.
        leg: String,
        /// What it names (`"both binance-spot:BTCUSDT and …"`, or the same instrument twice).
        found: String,
    },
    /// Instances of two strategy stages trade one instrument: its net position, open orders
    /// and self-trade check live on one stage.
    #[error(
        "{symbol} is traded by strategy {first:?} (strategy stage {first_stage}) and by {second:?} (strategy stage {second_stage}): instances that trade one instrument must run on one strategy stage, where its net position, open orders and self-trade check live (list them together: \"strategy:{first}+{second}\")"
    )]
    SharedInstrument {
        /// The instrument.
        symbol: String,
        /// One instance trading it, and its stage.
        first: String,
        /// Its stage (0: `strategy`).
        first_stage: usize,
        /// Another, on another stage.
        second: String,
        /// Its stage.
        second_stage: usize,
    },
    /// A stage the run built is on no thread of the placement.
    #[error("stage {0} is on no thread of the placement: list it in a [[placement.threads]] entry")]
    UnplacedStage(String),
    /// The input has no instrument the engine can book; says what the input held instead.
    #[error("nothing to book in the input: {0}")]
    NoInstruments(String),
    /// The run failed.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// `[watchdog]`: the service manager's environment could not be used.
    #[error("watchdog: {0}")]
    Watchdog(#[from] crate::watchdog::NotifyError),
    /// `[heartbeat]` could not start.
    #[error(transparent)]
    Heartbeat(#[from] crate::watchdog::HeartbeatError),
    /// A thread of the engine's own (watchdog, heartbeat) could not start.
    #[error("starting the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Everything a built pipeline needs to run, before it runs.
pub struct Pipeline {
    /// One plan per thread.
    pub plans: Vec<ThreadPlan>,
    /// Where the book stage leaves its final books.
    pub finals: FinalBooks,
    /// Where the strategy stage leaves what each instrument's strategy did and earned.
    pub trading: FinalTrading,
    /// Counters for the progress bar.
    pub progress: Arc<ProgressCounters>,
    /// The prepared input's description, notes, instruments and expected size.
    pub input: PreparedSummary,
    /// Where the feed and book stages leave their problems' counts and samples.
    pub problems: Handoff<ProblemSummary>,
    /// The `--errors-out` writer, when asked for.
    pub errors_out: Option<ErrorsOut>,
    /// A live session's recorder, shut down once the stages are done.
    pub recorder: Option<pinion_feed::recording::Recorder>,
    /// The order sessions' recorders, likewise.
    pub order_recorders: Vec<pinion_feed::recording::Recorder>,
    /// What the metrics thread reads, when `[metrics]` asks for the endpoint or the status line.
    pub metrics: Option<Sources>,
    /// Kill, pause and cancel-all, and each instrument's account as trading goes.
    pub control: Arc<Control>,
    /// `pinion live --trade`: each order session's published state, by the instrument it trades
    /// (the log's watch reads it as the metrics thread does).
    pub sessions: Vec<(
        InstrumentId,
        Arc<pinion_gateway::binance::mirror::SessionMirror>,
    )>,
    /// `pinion live --trade` with a `[journal]`: its writer, finished once the stages are.
    pub journal: Option<crate::ops::journal::Journal>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("plans", &self.plans)
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// What the report needs to know about the input.
#[derive(Debug, Clone)]
pub struct PreparedSummary {
    /// A short description.
    pub description: String,
    /// Start-up notes.
    pub notes: Vec<String>,
    /// Records expected, when known.
    pub expected_records: Option<u64>,
    /// The instruments, for naming books in the report.
    pub instruments: pinion_core::Instruments,
    /// A live input's connection counters.
    pub live: Option<Arc<pinion_feed::live::LiveCounters>>,
    /// Where each order venue of `pinion live --trade` leaves its account summary.
    pub accounts: Vec<live::AccountSlot>,
}

/// The value the execution-report ring and queue are written with at start-up (never read).
const EXEC_FILL: ExecReport = ExecReport {
    client_id: ClientOrderId(0),
    venue_id: VenueOrderId(0),
    instrument: InstrumentId(0),
    side: OrderSide::Buy,
    status: OrderStatus::New,
    last_px: Px(0),
    last_qty: Qty(0),
    cum_qty: Qty(0),
    leaves_qty: Qty(0),
    maker: false,
    t0: 0,
    venue_ts: 0,
};

/// A recording's input decoded once ([`predecode`]), to run [`build_predecoded`] pipelines on
/// as often as wanted: the decoded messages and what start-up found about the input. Cloning it
/// shares the messages.
#[derive(Debug, Clone)]
pub struct DecodedInput {
    /// The messages.
    pub tape: Arc<Predecoded>,
    instruments: pinion_core::Instruments,
    books: Vec<InstrumentId>,
    traded: Vec<InstrumentId>,
    book_ticks: Vec<Option<Px>>,
    notes: Vec<String>,
    description: String,
}

/// Decodes the input of `settings` (a recording or synthetic data, not a live input) into
/// memory, with the same decoder, connection table and problem counting a run uses, so that
/// pipelines built on it with [`build_predecoded`] skip the decoding and give the same results.
/// Settings that change what the input decodes to (input, venue, instruments, `max_records`)
/// must be the same for those pipelines; the rest (strategy, risk, venue models) may differ.
pub fn predecode(settings: &Settings) -> Result<DecodedInput, PipelineError> {
    let PreparedInput {
        source,
        instruments,
        conns,
        books,
        traded,
        book_ticks,
        expected_records: _,
        notes,
        description,
        live,
    } = prepare(settings)?;
    if live.is_some() {
        return Err(PipelineError::Live(
            "a live input cannot be decoded ahead of its run".to_owned(),
        ));
    }
    let (tx, rx) = runtime::ring(settings.ring_capacity.max(64));
    let progress = ProgressCounters::new();
    let problems = Handoff::new();
    let feed = FeedStage::new(FeedParts {
        source,
        decoder: Decoder::new(instruments.clone()),
        conns,
        pacer: Pacer::new(crate::config::PacingSpec::Max),
        out: Outbox::new(tx, crate::stages::feed::BURST),
        stop: Arc::new(AtomicBool::new(false)),
        progress: Arc::clone(&progress),
        max_records: settings.max_records,
        problems: ProblemLog::new(instruments.len(), None),
        problem_summary: problems.clone(),
    });
    let tape = Predecoded::decode(feed, rx, &problems, &progress);
    Ok(DecodedInput {
        tape: Arc::new(tape),
        instruments,
        books,
        traded,
        book_ticks,
        notes,
        description,
    })
}

/// Builds the stages and thread plans for `settings`. Everything the hot path uses is
/// allocated here.
pub fn build(settings: &Settings, stop: Arc<AtomicBool>) -> Result<Pipeline, PipelineError> {
    build_streaming(settings, stop, None)
}

/// [`build`], a `pinion live --trade` session with a `[journal]` streaming its orders, fills
/// and positions to `history` as the journal writes them (see
/// [`crate::ops::history::stream`]). Other runs leave `history` unused.
pub fn build_streaming(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    history: Option<crate::ops::history::HistoryStream>,
) -> Result<Pipeline, PipelineError> {
    // Before anything slow: a report that cannot be written is found now, not after the run.
    let errors_file = outputs::check(&settings.report)?;
    let prepared = prepare(settings)?;
    let PreparedInput {
        source,
        instruments,
        conns,
        books: book_ids,
        traded,
        book_ticks,
        expected_records,
        notes,
        description,
        live,
    } = prepared;
    assemble(
        settings,
        stop,
        errors_file,
        Assembly {
            feed: FeedInput::Source { source, conns },
            instruments,
            book_ids,
            traded,
            book_ticks,
            expected_records,
            notes,
            description,
            live,
            history,
        },
    )
}

/// The start of a session's streamed history: the instruments as its rows name and scale
/// them, and the fees a resumed journal had already paid on each.
fn stream_begin(
    settings: &Settings,
    instruments: &pinion_core::Instruments,
    description: &str,
    recovered: &crate::ops::journal::Recovered,
    (epoch, started_unix_ns): (u64, u64),
) -> crate::ops::history::Begin {
    use crate::ops::history::StreamInstrument;
    let mut rows = vec![None; instruments.len()];
    let mut fees_before = vec![0; instruments.len()];
    for (id, spec) in instruments.iter() {
        let i = usize::from(id.0);
        if let Some(slot) = rows.get_mut(i) {
            *slot = Some(StreamInstrument {
                venue: spec.venue.to_string(),
                symbol: spec.symbol.as_str().to_owned(),
                price_decimals: spec.price_decimals,
                qty_decimals: spec.qty_decimals,
            });
        }
        if let Some(p) = recovered.instrument(id.0).and_then(|l| l.last_position)
            && let Some(slot) = fees_before.get_mut(i)
        {
            *slot = p.fees;
        }
    }
    crate::ops::history::Begin {
        started_unix_ns,
        config: settings.origin.clone(),
        input: description.to_owned(),
        epoch,
        instruments: rows,
        fees_before,
        strategies: settings
            .instances
            .iter()
            .enumerate()
            .map(|(k, i)| crate::ops::history::RunStrategy {
                instance: u8::try_from(k).unwrap_or(u8::MAX),
                name: i.name.clone(),
                orders: None,
            })
            .collect(),
    }
}

/// Builds a pipeline for `settings` whose feed sends the messages of `input` (see
/// [`predecode`]) instead of reading and decoding a source. Pacing must be `max`.
pub fn build_predecoded(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    input: &DecodedInput,
) -> Result<Pipeline, PipelineError> {
    if settings.pacing != crate::config::PacingSpec::Max {
        return Err(PipelineError::Live(
            "a decoded input runs at pacing max only".to_owned(),
        ));
    }
    let errors_file = outputs::check(&settings.report)?;
    let expected_records = Some(input.tape.records());
    assemble(
        settings,
        stop,
        errors_file,
        Assembly {
            feed: FeedInput::Decoded(Arc::clone(&input.tape)),
            instruments: input.instruments.clone(),
            book_ids: input.books.clone(),
            traded: input.traded.clone(),
            book_ticks: input.book_ticks.clone(),
            expected_records,
            notes: input.notes.clone(),
            description: input.description.clone(),
            live: None,
            history: None,
        },
    )
}

/// Where the feed stage's messages come from.
enum FeedInput {
    /// A source, read and decoded as the run goes.
    Source {
        source: Box<dyn pinion_feed::FrameSource + Send>,
        conns: crate::stages::feed::ConnTable,
    },
    /// Messages decoded beforehand.
    Decoded(Arc<Predecoded>),
}

/// The prepared input a pipeline is assembled from.
struct Assembly {
    feed: FeedInput,
    instruments: pinion_core::Instruments,
    book_ids: Vec<InstrumentId>,
    traded: Vec<InstrumentId>,
    book_ticks: Vec<Option<Px>>,
    expected_records: Option<u64>,
    notes: Vec<String>,
    description: String,
    live: Option<input::LiveParts>,
    history: Option<crate::ops::history::HistoryStream>,
}

fn assemble(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    errors_file: Option<std::fs::File>,
    a: Assembly,
) -> Result<Pipeline, PipelineError> {
    let Assembly {
        feed: feed_input,
        instruments,
        book_ids,
        traded,
        book_ticks,
        expected_records,
        notes,
        description,
        live,
        history,
    } = a;
    if book_ids.is_empty() {
        return Err(PipelineError::NoInstruments(String::from(
            "the input names no instrument",
        )));
    }
    let cap = settings.ring_capacity;
    check_instance_instruments(settings, &instruments, &traded)?;
    let lanes = settings.placement.strategy_stage_count();
    let route = strategy_route(settings, &instruments, &traded)?;
    // Rings, queues and books are written once here so that their pages are mapped before the
    // run: a first touch mid-run is a page fault of several µs on the hot path. Each strategy
    // stage has its own three rings: from the book stage, to the gateway, and back.
    let (feed_tx, feed_rx) = runtime::ring_resident(cap, Stamped::unstamped(MarketMsg::End));
    let mut book_outs = Vec::with_capacity(lanes);
    let mut strategy_ports = Vec::with_capacity(lanes);
    let mut gateway_lanes = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        let (book_tx, book_rx) = runtime::ring_resident(cap, Stamped::unstamped(BookMsg::End));
        let (order_tx, order_rx) = runtime::ring_resident(cap, Stamped::unstamped(OrderMsg::End));
        let (exec_tx, exec_rx) = runtime::ring_resident(cap, Stamped::unstamped(EXEC_FILL));
        book_outs.push(Outbox::new(book_tx, 64).prefaulted(BookMsg::End));
        strategy_ports.push(StrategyPorts {
            input: book_rx,
            execs: exec_rx,
            out: Outbox::new(order_tx, 64).prefaulted(OrderMsg::End),
        });
        gateway_lanes.push((order_rx, Outbox::new(exec_tx, 256).prefaulted(EXEC_FILL)));
    }

    let mut books: Vec<Option<BookSync>> = (0..instruments.len()).map(|_| None).collect();
    for &id in &book_ids {
        if let Some(spec) = instruments.get(id) {
            let grid = book_ticks.get(usize::from(id.0)).copied().flatten();
            books[usize::from(id.0)] = Some(book_for(spec, grid, id)?);
        }
    }
    let finals = FinalBooks::new();
    let trading = FinalTrading::new();
    let progress = ProgressCounters::new();
    let problems = Handoff::new();
    let (errors_out, mut problem_rings) = match (errors_file, &settings.report.errors_out) {
        (Some(file), Some(path)) => {
            let (w, txs) = ErrorsOut::start(file, path, instruments.clone(), 2).map_err(|e| {
                PipelineError::Io {
                    path: path.clone(),
                    source: e,
                }
            })?;
            (Some(w), txs.into_iter().map(Some).collect())
        }
        _ => (None, vec![None, None]),
    };
    let book_ring = problem_rings.pop().flatten();
    let feed_ring = problem_rings.pop().flatten();

    let feed_out = Outbox::new(feed_tx, crate::stages::feed::BURST).prefaulted(MarketMsg::End);
    let feed: Box<dyn Stage> = match feed_input {
        FeedInput::Source { source, conns } => Box::new(FeedStage::new(FeedParts {
            source,
            decoder: Decoder::new(instruments.clone()),
            conns,
            pacer: Pacer::new(settings.pacing),
            out: feed_out,
            stop,
            progress: Arc::clone(&progress),
            max_records: settings.max_records,
            problems: ProblemLog::new(instruments.len(), feed_ring),
            problem_summary: problems.clone(),
        })),
        FeedInput::Decoded(tape) => Box::new(PredecodedFeed::new(
            tape,
            feed_out,
            stop,
            Arc::clone(&progress),
            problems.clone(),
        )),
    };
    let book_out = if lanes == 1 {
        Fanout::single(book_outs.remove(0))
    } else {
        Fanout::new(book_outs, route.clone())
    };
    let mut book = BookStage::new(
        feed_rx,
        book_out,
        books,
        finals.clone(),
        ProblemLog::new(instruments.len(), book_ring),
        problems.clone(),
    );
    if let Some(live) = &live {
        book = book.with_snapshot_requests(Arc::clone(&live.requests));
    }
    // The book stage publishes its books' states only when something reads them.
    let metrics_on = settings.metrics.listen.is_some()
        || settings.metrics.status_interval.is_some()
        || settings.bot.is_some();
    let book_states = metrics_on.then(|| BookStates::new(instruments.len()));
    if let Some(states) = &book_states {
        book = book.with_states(Arc::clone(states));
    }
    // The venues decide how the strategy meets them: a simulated venue taps the market and
    // runs on event time, behind a barrier; a live venue needs neither.
    let trade = settings.live.as_ref().filter(|l| l.trade);
    let mut notes = notes;
    // The journal is read (and a torn tail cut) before anything connects: the venues resume
    // its epoch and take in its open orders, the strategy stage its ledger.
    let mut journal = None;
    if let Some(j) = &settings.journal {
        if trade.is_some() && live.is_some() {
            let (writer, tx, recovered) =
                crate::ops::journal::open_stages(j, history.clone(), lanes).map_err(|e| {
                    PipelineError::Live(format!("journal {}: {e}", j.path.display()))
                })?;
            // Its records name instruments by their place in the config: a reordered or
            // changed symbol list would replay one instrument's fills into another's ledger.
            let now = |id: u16| {
                instruments
                    .get(InstrumentId(id))
                    .map(crate::ops::journal::instrument_key)
            };
            if let Some(id) = recovered.moved_instrument(now) {
                let what = instruments.get(InstrumentId(id)).map_or_else(
                    || "no longer configured".to_owned(),
                    |s| format!("now {} on {}, or its decimals changed", s.symbol, s.venue),
                );
                return Err(PipelineError::Live(format!(
                    "journal {}: instrument #{id} of the journal was another instrument ({what}); \
                     restore the config's symbol list or start a new journal",
                    j.path.display()
                )));
            }
            journal = Some((writer, tx, recovered));
        } else {
            notes.push(format!(
                "[journal] {} not used: it journals `pinion live --trade` only",
                j.path.display()
            ));
        }
    }
    let recovered = journal.as_ref().map(|(_, _, r)| r);
    let (venues, accounts, order_recorders, sessions, epoch) = match (&live, trade) {
        (Some(parts), Some(l)) => {
            let t = live::trading_venues(settings, l, parts, &instruments, &traded, recovered)?;
            if let Some(r) = recovered.filter(|r| r.is_resumed()) {
                notes.push(format!(
                    "journal resumed: {} sessions, {} records{}; {} orders left open taken to reconcile with the venue",
                    r.sessions,
                    r.records,
                    if r.torn > 0 {
                        format!(" ({} bytes of a torn last record cut off)", r.torn)
                    } else {
                        String::new()
                    },
                    t.adopted
                ));
            }
            (t.venues, t.accounts, t.recorders, t.sessions, t.epoch)
        }
        (None, Some(_)) => {
            return Err(PipelineError::Live("--trade needs a live input".to_owned()));
        }
        _ => (
            venues_for(settings, &instruments, &traded),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            0,
        ),
    };
    let link = VenueLink {
        market_tap: venues.iter().flatten().any(OrderVenue::taps_market),
        barrier: venues
            .iter()
            .flatten()
            .any(|v| v.clock() == VenueClock::Event)
            .then(EventBarrier::shared),
        venues_done: venues
            .iter()
            .flatten()
            .any(|v| v.clock() == VenueClock::Wall)
            .then(|| Arc::new(AtomicBool::new(false))),
        native_protection: venues.iter().flatten().next().is_some()
            && venues.iter().flatten().all(OrderVenue::native_protection),
    };
    if settings.protection.any() {
        notes.push(format!(
            "protection: {}",
            settings.protect.effective(link.native_protection)
        ));
    }
    // Each strategy stage meets its venues through its own barrier.
    let links: Vec<VenueLink> = (0..lanes)
        .map(|_| VenueLink {
            barrier: link.barrier.as_ref().map(|_| EventBarrier::shared()),
            ..link.clone()
        })
        .collect();
    let mut gateway = GatewayStage::with_lanes(
        venues,
        gateway_lanes
            .into_iter()
            .zip(&links)
            .map(|((input, out), l)| LanePorts {
                input,
                out,
                barrier: l.barrier.clone(),
            })
            .collect(),
        &route,
        Arc::clone(&progress),
    );
    if let Some(flag) = &link.venues_done {
        gateway = gateway.with_venues_done(Arc::clone(flag));
    }
    // Kill, pause and cancel-all reach the strategy stages through the control block: from the
    // config, from SIGUSR1 and from whatever the caller hands it to (the operator bot).
    let control = Control::with_stages(&instruments, lanes, route.clone());
    if settings.trading.risk.kill_switch {
        control.kill(KillReason::Config);
    }
    let mut strategies: Vec<StrategyStage> = Vec::with_capacity(lanes);
    for (g, (ports, link)) in strategy_ports.into_iter().zip(links).enumerate() {
        // Each stage trades the instruments routed to it, with the instances placed on it.
        let own: Vec<InstrumentId> = traded
            .iter()
            .copied()
            .filter(|id| route.get(usize::from(id.0)).map_or(0, |&l| usize::from(l)) == g)
            .collect();
        let only: Option<Vec<u8>> = (lanes > 1).then(|| {
            (0..settings.instances.len() as u8)
                .filter(|&k| settings.placement.stage_of_instance(k) == g)
                .collect()
        });
        let event_time = link.barrier.is_some();
        let mut stage = StrategyStage::resumed(
            settings,
            &instruments,
            &own,
            ports,
            link,
            trading.clone(),
            recovered,
            only.as_deref(),
        )
        .with_control(control.reader_for(g))
        .numbered(g);
        if lanes > 1 && event_time {
            stage = stage.with_local_kill();
        }
        strategies.push(stage);
    }
    control.lay_out_instances(
        strategies
            .iter()
            .flat_map(StrategyStage::instance_keys)
            .collect(),
    );
    let journal = match journal {
        Some((writer, txs, recovered)) => {
            let mut txs = txs.into_iter();
            let mut tx = txs.next().ok_or_else(|| {
                PipelineError::Live("journal: no ring for the strategy stage".to_owned())
            })?;
            let started_unix_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            // The history's run starts before the journal's first record of this session.
            if let Some(h) = &history {
                let begin = stream_begin(
                    settings,
                    &instruments,
                    &description,
                    &recovered,
                    (epoch, started_unix_ns),
                );
                if h.begin(begin) {
                    notes.push("trade history written as the journal is".to_owned());
                }
            }
            tx.push(crate::ops::journal::Record::Session(
                crate::ops::journal::Session {
                    epoch,
                    started_unix_ns,
                },
            ));
            for (instrument, spec) in instruments.iter() {
                tx.push(crate::ops::journal::Record::Instrument(
                    crate::ops::journal::InstrumentKey {
                        instrument,
                        key: crate::ops::journal::instrument_key(spec),
                    },
                ));
            }
            let mut rest = std::iter::once(tx).chain(txs);
            strategies = strategies
                .into_iter()
                .map(|st| match rest.next() {
                    Some(tx) => st.with_journal(tx),
                    None => st,
                })
                .collect();
            notes.push(format!("journaling to {}", writer.path().display()));
            Some(writer)
        }
        None => None,
    };
    if trade.is_some() {
        strategies = strategies
            .into_iter()
            .map(|st| st.with_exit(settings.exit))
            .collect();
    }

    // In stage_index order: feed, book, each strategy stage, gateway.
    let mut stages: Vec<Option<Box<dyn Stage>>> = Vec::with_capacity(lanes + 3);
    stages.push(Some(feed));
    stages.push(Some(Box::new(book)));
    for st in strategies {
        stages.push(Some(Box::new(st)));
    }
    stages.push(Some(Box::new(gateway)));
    // With something reading them, each stage publishes its running counters after its busy
    // polls, and its latency recorders are shared read-only.
    let mut stage_live = Vec::new();
    let mut latency_live = Vec::new();
    if metrics_on {
        for slot in &mut stages {
            if let Some(stage) = slot.take() {
                latency_live.extend(stage.live_latency());
                let (wrapped, live) = Published::wrap(stage);
                stage_live.push(live);
                *slot = Some(wrapped);
            }
        }
    }
    let plans: Vec<ThreadPlan> = settings
        .placement
        .threads
        .iter()
        .map(|t| ThreadPlan {
            name: t.name.clone(),
            core: t.core,
            wait: t.wait,
            stages: t
                .stages
                .iter()
                .filter_map(|k| stages.get_mut(stage_index(*k, lanes))?.take())
                .collect(),
        })
        .collect();
    // Every stage built runs on some thread: one left over would never drain its ring, and the
    // stages feeding it would wait on it for ever.
    if let Some(left) = stages.iter().flatten().next() {
        return Err(PipelineError::UnplacedStage(left.name().to_owned()));
    }
    let watched_sessions = sessions.clone();
    let metrics = book_states.map(|books| Sources {
        command: if live.is_some() { "live" } else { "replay" },
        threads: plans.iter().map(|p| p.name.clone()).collect(),
        instruments: instruments.clone(),
        progress: Arc::clone(&progress),
        books,
        live: live.as_ref().map(|l| Arc::clone(&l.counters)),
        requests: live.as_ref().map(|l| Arc::clone(&l.requests)),
        sessions,
        started: std::time::Instant::now(),
        ended: Arc::new(AtomicBool::new(false)),
        control: Some(Arc::clone(&control)),
        stages: stage_live,
        latency: latency_live,
        ring_capacity: cap,
        bot: None,
    });
    Ok(Pipeline {
        plans,
        finals,
        trading,
        progress,
        metrics,
        input: PreparedSummary {
            description,
            notes,
            expected_records,
            instruments,
            live: live.as_ref().map(|l| Arc::clone(&l.counters)),
            accounts,
        },
        problems,
        errors_out,
        recorder: live.and_then(|l| l.recorder),
        order_recorders,
        control,
        sessions: watched_sessions,
        journal,
    })
}

/// The sync machine and book of one instrument: on its tick's grid, or on `grid` where the
/// recording or the config (`px_decimals`) has prices between its ticks (see
/// [`PreparedInput::book_ticks`]).
pub fn book_for(
    spec: &pinion_core::InstrumentSpec,
    grid: Option<Px>,
    id: pinion_core::InstrumentId,
) -> Result<BookSync, PipelineError> {
    let book = match grid {
        Some(tick) => {
            let mut on_grid = spec.clone();
            on_grid.tick = tick;
            BookSync::new(&on_grid, id, SyncConfig::default())?
        }
        None => BookSync::new(spec, id, SyncConfig::default())?,
    };
    Ok(book)
}

/// Where stage `k` is among the built stages: feed, book, the `lanes` strategy stages, gateway.
fn stage_index(k: StageKind, lanes: usize) -> usize {
    match k {
        StageKind::Feed => 0,
        StageKind::Book => 1,
        StageKind::Strategy(g) => 2 + usize::from(g),
        StageKind::Gateway => 2 + lanes,
    }
}

/// The strategy stage of each instrument id: the stage whose instances trade it (the first for
/// an instrument none trades). An error when instances on two stages trade one instrument.
fn strategy_route(
    settings: &Settings,
    instruments: &pinion_core::Instruments,
    traded: &[InstrumentId],
) -> Result<Vec<u8>, PipelineError> {
    let mut route = vec![0u8; instruments.len()];
    if settings.placement.strategy_stage_count() == 1 {
        return Ok(route);
    }
    for &id in traded {
        let Some(spec) = instruments.get(id) else {
            continue;
        };
        let mut owner: Option<(usize, &str)> = None;
        for (k, instance) in settings.instances.iter().enumerate() {
            if !instance.trades(spec.venue, spec.symbol.as_str()) {
                continue;
            }
            let stage = settings.placement.stage_of_instance(k as u8);
            match owner {
                None => owner = Some((stage, instance.name.as_str())),
                Some((s, first)) if s != stage => {
                    return Err(PipelineError::SharedInstrument {
                        symbol: spec.symbol.to_string(),
                        first: first.to_owned(),
                        first_stage: s,
                        second: instance.name.clone(),
                        second_stage: stage,
                    });
                }
                Some(_) => {}
            }
        }
        if let Some((stage, _)) = owner {
            route[usize::from(id.0)] = stage as u8;
        }
    }
    Ok(route)
}

/// How a replay run talks to the person running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Console {
    /// Print the start-up placement report and notes to stderr.
    pub startup: bool,
    /// Show the progress bar (if the config also asks for it).
    pub progress: bool,
}

impl Console {
    /// Silent (tests, benchmarks).
    pub const QUIET: Console = Console {
        startup: false,
        progress: false,
    };
    /// Start-up report and progress bar (the command line).
    pub const INTERACTIVE: Console = Console {
        startup: true,
        progress: true,
    };
}

/// Builds and runs the replay of `settings` to the end of its input.
pub fn run(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    console: Console,
) -> Result<PipelineReport, PipelineError> {
    let pipeline = build(settings, Arc::clone(&stop))?;
    run_pipeline(settings, pipeline, stop, console)
}

/// Runs a built pipeline.
pub fn run_pipeline(
    settings: &Settings,
    pipeline: Pipeline,
    stop: Arc<AtomicBool>,
    console: Console,
) -> Result<PipelineReport, PipelineError> {
    let Pipeline {
        plans,
        finals,
        trading,
        progress,
        input,
        problems,
        errors_out,
        recorder,
        order_recorders,
        metrics,
        control,
        sessions: _,
        mut journal,
    } = pipeline;
    // SIGUSR1 kills trading for the length of the run; SIGUSR2 flattens every instrument.
    let on_signal = control.kill_on_signal().ok();
    let on_flatten_signal = control.flatten_on_signal().ok();
    let mut input = input;
    // Liveness watchers read every thread's round count.
    let beats = (settings.watchdog || settings.heartbeat.is_some())
        .then(|| Beats::new(plans.iter().map(|p| p.name.clone()).collect()));
    let watchdog = match beats.as_ref().filter(|_| settings.watchdog) {
        Some(b) => match crate::watchdog::Notifier::from_env()? {
            Some(n) => Some(
                crate::watchdog::SystemdWatchdog::start(n, Arc::clone(b)).map_err(|source| {
                    PipelineError::Thread {
                        what: "watchdog",
                        source,
                    }
                })?,
            ),
            None => {
                input.notes.push(
                    "[watchdog] enabled, but $NOTIFY_SOCKET is unset (not run by systemd): \
                     nothing is sent"
                        .to_owned(),
                );
                None
            }
        },
        None => None,
    };
    let heartbeat = match (&settings.heartbeat, &beats) {
        (Some(h), Some(b)) => {
            let tls = live::trust_for("heartbeat.ca_file", h.ca_file.as_deref())?;
            Some(crate::watchdog::Heartbeat::start(h, tls, Arc::clone(b))?)
        }
        _ => None,
    };
    let opts = RuntimeOptions {
        mlockall: settings.runtime.mlockall,
        realtime_priority: settings.runtime.realtime_priority,
        stop,
        beats,
    };
    if console.startup {
        let command = if input.live.is_some() {
            "live"
        } else {
            "replay"
        };
        eprintln!(
            "pinion {command}: {} ({})",
            input.description, settings.origin
        );
        for n in &input.notes {
            eprintln!("  {n}");
        }
        eprintln!(
            "  placement {}, pacing {}, rings {} slots",
            settings.placement.label,
            settings.pacing.describe(),
            settings.ring_capacity
        );
    }
    // A bar redrawn with carriage returns only makes sense on a terminal.
    let bar = if console.progress
        && settings.runtime.progress
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
    {
        ProgressBar::start(Arc::clone(&progress), input.expected_records).ok()
    } else {
        None
    };
    // The operator bot reads what the metrics read, and steers through the control block.
    let bot = match &settings.bot {
        Some(b) => {
            let sources = metrics.clone().map(|mut s| {
                s.started = std::time::Instant::now();
                s
            });
            // The bot journals what the operators do, beside the stages' records.
            let operator_log = journal
                .as_mut()
                .and_then(crate::ops::journal::Journal::operator_log);
            Some(start_bot(
                b,
                settings,
                &control,
                sources,
                &input.instruments,
                operator_log,
            )?)
        }
        None => None,
    };
    // Bound before the stages start, so a taken port fails the run before it begins.
    let monitor = match metrics {
        Some(mut sources) => {
            sources.started = std::time::Instant::now();
            sources.bot = bot.as_ref().map(crate::bot::BotHandle::counters);
            let m = Monitor::start(&settings.metrics, sources)?;
            if console.startup
                && let Some(addr) = m.addr()
            {
                eprintln!("  metrics on http://{addr}/metrics (/health, /ready)");
            }
            Some(m)
        }
        None => None,
    };
    let startup = console.startup;
    let result = runtime::run_with(plans, &opts, |p: &PlacementReport| {
        if startup {
            eprint!("{p}");
        }
        if let Some(w) = &watchdog {
            w.ready();
        }
        if let Some(h) = &heartbeat {
            h.ready();
        }
    });
    if let (Some(h), Some(s)) = (heartbeat, &settings.heartbeat) {
        let note = h.stop().note(s);
        if console.startup {
            eprintln!("  {note}");
        }
        input.notes.push(note);
    }
    if let Some(w) = watchdog {
        let interval = w.interval();
        let note = w.stop().note(interval);
        if console.startup {
            eprintln!("  {note}");
        }
        input.notes.push(note);
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    if let Some(m) = monitor {
        m.stages_ended();
        m.stop();
    }
    let run = result?;
    // The feed stage has let go of the recorder's ring: what it queued is written out now.
    for recorder in recorder.into_iter().chain(order_recorders) {
        input.notes.push(match recorder.shutdown() {
            Ok(r) => format!(
                "recorded {} records ({} lost to a full ring) to {}",
                r.records,
                r.dropped,
                r.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("the recording failed: {e}"),
        });
    }
    // The stages have finished: the journal's writer drains its ring, syncs and ends.
    if let Some(j) = journal {
        let path = j.path().display().to_string();
        input.notes.push(match j.finish() {
            Ok(s) if s.overflow == 0 => format!(
                "journal {path}: {} records, {} bytes, {} fsyncs",
                s.records, s.bytes, s.syncs
            ),
            Ok(s) => format!(
                "journal {path}: {} records, {} bytes, {} fsyncs; ERROR: {} records did not fit its ring (orders among them were refused, reports are recovered from the venue on the next start)",
                s.records, s.bytes, s.syncs, s.overflow
            ),
            Err(e) => format!("journal {path}: ERROR: {e}"),
        });
    }
    // The stages have finished and let go of their rings: the writer drains them and ends.
    let errors_out = errors_out.map(|w| {
        let path = w.path().to_path_buf();
        (path, w.finish().map_err(|e| e.to_string()))
    });
    for id in [on_signal, on_flatten_signal].into_iter().flatten() {
        signal_hook::low_level::unregister(id);
    }
    // Several strategy stages leave their results in the order they finished.
    let mut trading = trading.take();
    trading.sort_by_key(|t| t.instrument.0);
    let mut report = PipelineReport::new(settings, input, run, finals.take(), trading);
    report.set_problems(ProblemSummary::merge(problems.take()), errors_out);
    report.control = ControlOutcome {
        killed: control.kill_reason(),
        stats: control.stats(),
    };
    if let Some(bot) = bot {
        bot.alert(&match control.kill_reason() {
            Some(r) => format!("The run ended (trading was killed: {r})."),
            None => "The run ended.".to_owned(),
        });
        let stats = bot.stop();
        report.input.notes.push(format!(
            "operator bot: {} commands, {} messages from others ignored, {} alerts, {} messages sent ({} still queued)",
            stats.commands, stats.ignored, stats.alerts, stats.sent, stats.pending
        ));
    }
    Ok(report)
}

/// Starts the operator bot: its token from the environment, the public roots plus
/// `bot.ca_file`, the risk limits for `/limits` and, in each instrument's units, for the
/// verdict on a manual order; operator actions journaled into `operator_log` when given.
fn start_bot(
    b: &crate::config::BotSettings,
    settings: &Settings,
    control: &Arc<Control>,
    sources: Option<Sources>,
    instruments: &pinion_core::Instruments,
    operator_log: Option<crate::ops::journal::OperatorLog>,
) -> Result<crate::bot::BotHandle, PipelineError> {
    let bot_error = |e: &dyn std::fmt::Display| PipelineError::Bot(e.to_string());
    let token = crate::bot::token_from_env(b).map_err(|e| bot_error(&e))?;
    let tls = live::trust_for("bot.ca_file", b.ca_file.as_deref()).map_err(|e| match e {
        PipelineError::Live(m) => PipelineError::Bot(m),
        other => other,
    })?;
    let r = &settings.trading.risk;
    let limits = vec![
        format!("max order qty {}", r.max_order_qty),
        format!("max notional {}", r.max_notional),
        format!("max position {}", r.max_position),
        format!("max open orders {}", r.max_open_orders),
        format!(
            "orders per second {} (burst {})",
            r.orders_per_second, r.order_burst
        ),
        format!("price band {} bps", r.price_band_bps),
    ];
    let risk = instruments
        .iter()
        .map(|(_, spec)| {
            settings
                .trading
                .risk
                .in_units(spec)
                .ok()
                .map(|l| (spec.clone(), l))
        })
        .collect();
    let ctx = crate::bot::BotContext {
        control: Arc::clone(control),
        sources,
        limits,
        risk,
        journal: operator_log.map(|l| Arc::new(std::sync::Mutex::new(l))),
    };
    crate::bot::BotHandle::start(b, &token, tls, ctx).map_err(|e| bot_error(&e))
}

/// Every entry a `[[strategy]]` instance's `instruments` names is among those `traded`: a
/// typo would leave the instance trading nothing, silently. A pairs instance's two legs must
/// each name exactly one traded instrument, and not the same one.
fn check_instance_instruments(
    settings: &Settings,
    instruments: &pinion_core::Instruments,
    traded: &[InstrumentId],
) -> Result<(), PipelineError> {
    let specs: Vec<&pinion_core::InstrumentSpec> = traded
        .iter()
        .filter_map(|&id| instruments.get(id))
        .collect();
    for instance in &settings.instances {
        let mut legs = Vec::new();
        for entry in instance.instruments.iter().flatten() {
            let named: Vec<&pinion_core::InstrumentSpec> = specs
                .iter()
                .copied()
                .filter(|s| crate::config::names_instrument(entry, s.venue, s.symbol.as_str()))
                .collect();
            if named.is_empty() {
                return Err(PipelineError::InstanceInstrument {
                    instance: instance.name.clone(),
                    symbol: entry.clone(),
                    known: if specs.is_empty() {
                        "none".to_owned()
                    } else {
                        specs
                            .iter()
                            .map(|s| format!("{}:{}", s.venue.name(), s.symbol.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                });
            }
            if instance.is_pairs() {
                let names: Vec<String> = named
                    .iter()
                    .map(|s| format!("{}:{}", s.venue.name(), s.symbol.as_str()))
                    .collect();
                if named.len() > 1 {
                    return Err(PipelineError::PairsLeg {
                        instance: instance.name.clone(),
                        leg: entry.clone(),
                        found: format!("{} instruments ({})", named.len(), names.join(", ")),
                    });
                }
                if legs.contains(&names[0]) {
                    return Err(PipelineError::PairsLeg {
                        instance: instance.name.clone(),
                        leg: entry.clone(),
                        found: format!("{}, the other leg's instrument too", names[0]),
                    });
                }
                legs.push(names[0].clone());
            }
        }
    }
    Ok(())
}
