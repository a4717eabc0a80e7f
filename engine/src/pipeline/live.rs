//! Start-up for `pinion live`: the trust roots, the venue's instrument list (fetched, cached,
//! or from the cache when the fetch fails), the instruments of the configured symbols, and the
//! [`LiveSource`] that the feed stage reads like any recording.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinion_core::{InstrumentId, Instruments, Venue};
use pinion_feed::FrameSource;
use pinion_feed::exchange_info;
use pinion_feed::live::{Answer, Fetch, LiveSource, SnapshotRequests, protocol};
use pinion_feed::recording::{InstrumentDef, Recorder, RecordingHeader, RecordingWriter, Rotation};
use pinion_net::rest::{RestClient, RestSettings};
use pinion_net::rustls::RootCertStore;
use pinion_net::rustls::pki_types::CertificateDer;
use pinion_net::rustls::pki_types::pem::PemObject as _;
use pinion_net::wss::{ApiKeyHeader, TlsClientConfig, WssSettings, client_config};

use pinion_gateway::binance::client_id::RunEpoch;
use pinion_gateway::binance::clock::ClockConfig;
use pinion_gateway::binance::mirror::SessionMirror;
use pinion_gateway::binance::orders::{Adopted, OrderTableConfig};
use pinion_gateway::binance::sbe::{self, lifecycle::Status};
use pinion_gateway::binance::sign::{Credentials, CredentialsConfig};
use pinion_gateway::binance::stp::check_stp_mode;
use pinion_gateway::binance::{AccountSummary, BinanceConfig, BinanceVenue};
use pinion_gateway::{AnyVenue, ExitOutcome};
use pinion_net::backoff::BackoffPolicy;

use super::PipelineError;
use super::input::PreparedInput;
use crate::config::{LiveSettings, Settings, with_qty_decimals};
use crate::stages::feed::ConnTable;

/// Where an order venue leaves its [`AccountSummary`] when the run ends.
pub type AccountSlot = Arc<Mutex<Option<AccountSummary>>>;

/// The recorder's ring: a few seconds of a busy session.
const RECORDER_RING_BYTES: usize = 64 << 20;

/// Binance Spot sends book quantities at the base asset's precision (8 decimals), finer than
/// most symbols' order step: a live Spot book keeps 8.
const SPOT_QTY_DECIMALS: u8 = 8;

/// The REST client as the live source's worker uses it.
struct RestFetch(RestClient);

impl Fetch for RestFetch {
    fn get(&mut self, path: &str) -> Result<Answer, String> {
        let r = self.0.get(path).map_err(|e| e.to_string())?;
        Ok(Answer {
            status: r.status,
            body: r.body,
            used_weight_1m: r.used_weight_1m,
            retry_after: r.retry_after,
        })
    }
}

fn live_error(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Live(what.to_string())
}

/// The roots `pinion live` trusts: the public ones, plus `ca_file`'s certificates.
pub fn trust(ca_file: Option<&Path>) -> Result<TlsClientConfig, PipelineError> {
    trust_for("live.ca_file", ca_file)
}

/// The public roots plus `ca_file`'s certificates; problems name `key` (`bot.ca_file`).
pub fn trust_for(key: &str, ca_file: Option<&Path>) -> Result<TlsClientConfig, PipelineError> {
    client_config(roots_for(key, ca_file)?).map_err(live_error)
}

/// The certificates `trust_for` trusts: the public roots plus `ca_file`'s.
pub fn roots_for(key: &str, ca_file: Option<&Path>) -> Result<RootCertStore, PipelineError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| live_error(format_args!("{key} {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| live_error(format_args!("{key} {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(live_error(format_args!(
                "{key} {}: no certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| live_error(format_args!("{key} {}: {e}", path.display())))?;
        }
    }
    Ok(roots)
}

/// The venue's instrument list: fetched now (and written to the cache), else the cache.
fn instrument_list(
    client: &mut RestClient,
    live: &LiveSettings,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, PipelineError> {
    let spec = &live.spec;
    let path = protocol::exchange_info_path(spec.venue, &spec.symbols);
    let fetched = match client.get(&path) {
        Ok(r) if r.status == 200 => Ok(r.body),
        Ok(r) => Err(format!("HTTP {}", r.status)),
        Err(e) => Err(e.to_string()),
    };
    match (fetched, &live.exchange_info_cache) {
        (Ok(body), cache) => {
            if let Some(cache) = cache {
                std::fs::write(cache, &body).map_err(|source| PipelineError::Io {
                    path: cache.clone(),
                    source,
                })?;
                notes.push(format!("instrument list cached to {}", cache.display()));
            }
            Ok(Some(body))
        }
        (Err(why), Some(cache)) if cache.exists() => {
            notes.push(format!(
                "instrument list from the cache {} (the fetch failed: {why})",
                cache.display()
            ));
            std::fs::read(cache)
                .map(Some)
                .map_err(|source| PipelineError::Io {
                    path: cache.clone(),
                    source,
                })
        }
        (Err(why), _) => {
            notes.push(format!("no instrument list (the fetch failed: {why})"));
            Ok(None)
        }
    }
}

/// With `--trade` on Binance Spot: `[live.orders] stp_mode` against every configured symbol's
/// allowed modes in the instrument list (`body`, `None` when there is none), a note for each
/// symbol where it could not be checked or where the symbol's default applies. Refuses the run
/// at the first symbol that does not allow the mode.
fn check_stp_modes(
    live: &LiveSettings,
    body: Option<&[u8]>,
    notes: &mut Vec<String>,
) -> Result<(), PipelineError> {
    let Some(orders) = live.orders.as_ref().filter(|_| live.trade) else {
        return Ok(());
    };
    if live.spec.venue.market() != Venue::BinanceSpot {
        // Order entry refuses other venues on its own.
        return Ok(());
    }
    let listed = match body {
        Some(body) => exchange_info::binance_stp_modes(body)?,
        None => Vec::new(),
    };
    for symbol in &live.spec.symbols {
        let entry = listed.iter().find(|m| m.symbol == *symbol);
        let found = check_stp_mode(orders.stp_mode, symbol, entry)?;
        notes.extend(found.note(symbol, orders.stp_mode));
    }
    Ok(())
}

/// Prepares a live session.
pub(super) fn prepare_live(
    settings: &Settings,
    live: &LiveSettings,
) -> Result<PreparedInput, PipelineError> {
    let spec = &live.spec;
    let venue = spec.venue;
    let mut notes = Vec::new();
    let tls = trust(live.ca_file.as_deref())?;
    let mut rest = RestSettings::new(tls.clone());
    rest.request_timeout = Duration::from_secs(30);
    rest.socket = live.socket;
    let mut client = RestClient::new(&spec.rest_url, rest.clone()).map_err(live_error)?;

    let mut instruments = Instruments::new();
    let mut rate_limits = Vec::new();
    let list = instrument_list(&mut client, live, &mut notes)?;
    // Before anything connects: a mode a traded symbol does not allow would have every one of
    // its orders refused.
    check_stp_modes(live, list.as_deref(), &mut notes)?;
    if let Some(body) = list {
        if !venue.is_bybit() {
            rate_limits = exchange_info::binance_rate_limits(&body).unwrap_or_default();
        }
        let specs = if venue.is_bybit() {
            exchange_info::bybit_instruments_info(&body, venue)?
        } else {
            exchange_info::binance_exchange_info(&body, venue)?
        };
        for s in specs {
            if !spec
                .symbols
                .iter()
                .any(|sym| sym.as_bytes() == s.symbol.as_bytes())
            {
                continue;
            }
            let s = if venue.market() == Venue::BinanceSpot && s.qty_decimals < SPOT_QTY_DECIMALS {
                with_qty_decimals(s, SPOT_QTY_DECIMALS).map_err(live_error)?
            } else {
                s
            };
            instruments.upsert(s)?;
        }
    }
    for s in &settings.instruments {
        instruments.upsert(s.clone())?;
    }
    let ids: Vec<InstrumentId> = spec
        .symbols
        .iter()
        .map(|sym| {
            instruments.lookup(venue, sym.as_bytes()).ok_or_else(|| {
                PipelineError::NoInstruments(format!(
                    "{venue} {sym}: not in the venue's instrument list and no [[instrument]] for it ({})",
                    notes.join("; ")
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let requests = Arc::new(SnapshotRequests::new(instruments.len()));
    let mut wss = WssSettings::new(tls.clone());
    wss.socket = live.socket;
    if let Some(name) = &live.sbe_api_key_env {
        let key = crate::secrets::read_secret(name)
            .map_err(|e| live_error(format_args!("live.sbe_api_key_env: {e}")))?;
        wss.api_key = Some(ApiKeyHeader::new(&key).ok_or_else(|| {
            live_error(format_args!(
                "live.sbe_api_key_env: the key in {name} holds a byte a header cannot carry"
            ))
        })?);
    }
    let mut source = LiveSource::new(
        spec.clone(),
        wss,
        Box::new(RestFetch(client)),
        &ids,
        Arc::clone(&requests),
    )
    .map_err(live_error)?;
    let counters = source.counters();
    let recorder = match &live.record {
        Some(path) => {
            let mut header = RecordingHeader::new("live", 0);
            header.connections = source.connections().to_vec();
            for &id in &ids {
                if let Some(spec) = instruments.get(id) {
                    header.instruments.push(InstrumentDef::from_spec(spec));
                }
            }
            let writer = RecordingWriter::create(path, header, Rotation::NONE)?;
            let (handle, recorder) = Recorder::spawn(writer, RECORDER_RING_BYTES)?;
            source.record_to(handle);
            notes.push(format!("recording the session to {}", path.display()));
            Some(recorder)
        }
        None => None,
    };
    let description = format!(
        "live {venue} {} via {}",
        spec.symbols.join(","),
        spec.ws_url
    );
    let source: Box<dyn FrameSource + Send> = Box::new(source);
    let conns = ConnTable::new(&*source, Some(venue), instruments.clone());
    Ok(PreparedInput {
        source,
        instruments,
        conns,
        books: ids.clone(),
        traded: ids,
        book_ticks: Vec::new(),
        expected_records: None,
        notes,
        description,
        live: Some(super::input::LiveParts {
            requests,
            counters,
            recorder,
            tls,
            rate_limits,
        }),
    })
}

/// What `pinion live --trade` sends orders to: a [`BinanceVenue`] per traded instrument, each
/// with its own WS API session, and where each leaves its account summary at the end.
pub(super) fn trading_venues(
    settings: &Settings,
    live: &LiveSettings,
    parts: &super::input::LiveParts,
    instruments: &Instruments,
    traded: &[InstrumentId],
    recovered: Option<&crate::ops::journal::Recovered>,
) -> Result<TradingVenues, PipelineError> {
    let Some(orders) = &live.orders else {
        return Err(live_error(
            "--trade needs a [live.orders] table (where orders go and which key signs them)",
        ));
    };
    if live.spec.venue.market() != Venue::BinanceSpot {
        return Err(live_error(format_args!(
            "--trade: order entry is built for Binance Spot; {} is not",
            live.spec.venue
        )));
    }
    let rate_limits = if parts.rate_limits.is_empty() {
        pinion_gateway::binance::limits::spot_defaults()
    } else {
        parts.rate_limits.clone()
    };
    // A resumed journal keeps its epoch: the orders its earlier sessions left open are then
    // this session's to track (its own ids resume past theirs).
    let epoch = match recovered.and_then(|r| r.epoch) {
        Some(e) => RunEpoch::new(e).map_err(|e| live_error(format_args!("journal: {e}")))?,
        None => RunEpoch::now(),
    };
    let mut adopted = 0;
    let mut venues: Vec<Option<AnyVenue>> = (0..instruments.len()).map(|_| None).collect();
    let mut slots = Vec::new();
    let mut sessions = Vec::new();
    let mut recorders = Vec::new();
    for (n, &id) in traded.iter().enumerate() {
        let Some(spec) = instruments.get(id) else {
            continue;
        };
        let (_, limits) = settings
            .trading_for(spec.venue, spec.symbol.as_str())
            .in_units(spec)
            .map_err(live_error)?;
        let credentials = credentials(&orders.credentials)?;
        let mut wss = WssSettings::new(parts.tls.clone());
        wss.socket = live.socket;
        let summary = Arc::new(Mutex::new(None));
        let capture = match &orders.record {
            Some(path) => {
                let path = if traded.len() == 1 {
                    path.clone()
                } else {
                    with_symbol(path, spec.symbol.as_str())
                };
                let mut header = RecordingHeader::new("live-orders", 0);
                header.instruments.push(InstrumentDef::from_spec(spec));
                let writer = RecordingWriter::create(&path, header, Rotation::NONE)?;
                let (handle, recorder) = Recorder::spawn(writer, RECORDER_RING_BYTES)?;
                recorders.push(recorder);
                Some(handle)
            }
            None => None,
        };
        let config = BinanceConfig {
            url: orders.ws_api_url.clone(),
            wss,
            credentials,
            instrument: id,
            spec: spec.clone(),
            recv_window: orders.recv_window,
            stp_mode: orders.stp_mode,
            rate_limits: rate_limits.clone(),
            orders: OrderTableConfig {
                capacity: OrderTableConfig::default().capacity,
                answer_timeout_ms: orders.answer_timeout_ms,
                query_after_ms: orders.query_after_ms,
            },
            clock: ClockConfig::default(),
            open_orders: orders.open_orders,
            exit: settings.exit,
            reconnect: BackoffPolicy {
                base: live.spec.reconnect_base,
                cap: live.spec.reconnect_cap,
                healthy_after: live.spec.healthy_after,
            },
            connects_per_5min: orders.connects_per_5min,
            seed: live.spec.seed.wrapping_add(n as u64),
            epoch,
            breaker: orders.breaker,
            max_open_orders: limits.max_open_orders as usize,
            max_order_qty: limits.max_order_qty,
            summary: Arc::clone(&summary),
            capture,
            response_format: orders.response_format,
        };
        let mut venue = BinanceVenue::new(config)
            .map_err(|e| live_error(format_args!("live.orders {}: {e}", orders.ws_api_url)))?;
        if let Some(Status::Deprecated { since, retires }) = venue.sbe_schema() {
            // Start-up, once: the schema still works, but its end is announced.
            let end = retires.map_or_else(
                || "at least six months after that".to_owned(),
                |r| format!("on {r}"),
            );
            eprintln!(
                "warning: live.orders: SBE schema {}:{} was deprecated on {since}; the exchange \
                 retires it {end}",
                sbe::SCHEMA_ID,
                sbe::SCHEMA_VERSION,
            );
        }
        if let Some(log) = recovered.and_then(|r| r.instrument(id.0)) {
            adopted += venue.adopt(log.open_orders().map(|o| Adopted {
                client_id: o.client_id,
                order_id: o.venue_id,
                side: o.side,
                price: o.px,
                qty: o.qty,
                cum_qty: o.cum_qty,
                t0: o.t0,
                reason: o.reason,
            }));
        }
        if settings.protect.on_exchange(true) && settings.protection.any() {
            guard_venue(
                &mut venue,
                settings,
                spec,
                id,
                recovered.and_then(|r| r.instrument(id.0)),
            );
        }
        sessions.push((id, venue.session_mirror()));
        venues[usize::from(id.0)] = Some(AnyVenue::Binance(venue));
        slots.push(summary);
    }
    Ok(TradingVenues {
        venues,
        accounts: slots,
        recorders,
        sessions,
        epoch: epoch.get(),
        adopted,
    })
}

/// Gives `venue` the guard that keeps the position's protective orders on the exchange
/// (`protect = "exchange"` or `"both"`): starting from the position the journal's fills add up
/// to (`log`), its ids past every id of its range the journal holds, and the guard's orders
/// the journal holds open taken as its resting bracket (the venue adopts them too).
fn guard_venue(
    venue: &mut BinanceVenue,
    settings: &Settings,
    spec: &pinion_core::InstrumentSpec,
    id: InstrumentId,
    log: Option<&crate::ops::journal::InstrumentLog>,
) {
    use pinion_gateway::binance::guard::{Guard, guard_id_base, is_guard_id};
    let mut position = pinion_strategy::Position::for_instrument(spec);
    let base = guard_id_base(id);
    let mut max_seen = None;
    let mut legs = Vec::new();
    let mut resting = None;
    if let Some(log) = log {
        for rep in &log.fills {
            position.apply_fill(rep.side, rep.last_px, rep.last_qty);
        }
        for o in log.orders.values().filter(|o| is_guard_id(o.client_id)) {
            max_seen = Some(max_seen.map_or(o.client_id.0, |m: u64| m.max(o.client_id.0)));
            if o.is_open() {
                legs.push(o.client_id);
                resting = Some((o.side, o.qty));
            }
        }
    }
    let first = crate::ops::journal::resume_from(base, max_seen);
    let guard = Guard::new(id, settings.protection, spec.tick, position, first);
    venue.with_guard(
        guard,
        resting.map(|(side, qty)| (side, qty, legs.as_slice())),
    );
}

/// The order key: its API key and secret by the names `config` gives ([`crate::secrets`]).
pub(super) fn credentials(config: &CredentialsConfig) -> Result<Credentials, PipelineError> {
    let read = |name: &str| {
        crate::secrets::read_secret(name).map_err(|e| live_error(format_args!("live.orders: {e}")))
    };
    let api_key = read(&config.api_key_env)?;
    let secret = read(&config.secret_env)?;
    Credentials::new(config.kind, &api_key, &secret)
        .map_err(|e| live_error(format_args!("live.orders: {e}")))
}

/// What [`trading_venues`] makes.
pub(super) struct TradingVenues {
    /// By instrument id.
    pub venues: Vec<Option<AnyVenue>>,
    /// Where each leaves its account summary.
    pub accounts: Vec<AccountSlot>,
    /// The recorders of the order sessions' frames, when asked for.
    pub recorders: Vec<Recorder>,
    /// Each order session's state for the metrics thread, by instrument.
    pub sessions: Vec<(InstrumentId, Arc<SessionMirror>)>,
    /// The run epoch of the session's client order ids.
    pub epoch: u64,
    /// Orders a journal's earlier sessions left open, taken in by the venues to reconcile.
    pub adopted: usize,
}

/// `path` with `-SYMBOL` before its extension.
fn with_symbol(path: &Path, symbol: &str) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{symbol}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{symbol}"),
    };
    path.with_file_name(name)
}

/// A decimal string without trailing zeros after the point (`"61836.50000"` → `"61836.5"`),
/// the form the exchange simulator's truth books use.
fn trimmed(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Every final book of a run, whole, with levels as exact decimals (trailing zeros trimmed),
/// for `pinion live --books-out` and a check against the venue's book.
pub fn final_books(report: &super::PipelineReport) -> Vec<super::BookView> {
    let instruments = &report.input.instruments;
    report
        .books
        .iter()
        .filter_map(|b| {
            let spec = instruments.get(b.instrument)?;
            let level = |l: &pinion_core::Level| {
                [
                    trimmed(super::findings::scaled_decimal(
                        i128::from(l.px.0),
                        spec.price_decimals,
                    )),
                    trimmed(super::findings::scaled_decimal(
                        i128::from(l.qty.0),
                        spec.qty_decimals,
                    )),
                ]
            };
            Some(super::BookView {
                venue: spec.venue.to_string(),
                symbol: spec.symbol.to_string(),
                state: b.state.name().to_owned(),
                last_update_id: b.last_update_id,
                bids: b.bids.iter().map(level).collect(),
                asks: b.asks.iter().map(level).collect(),
            })
        })
        .collect()
}

/// `settings` made into a live session's: the input is the `[live]` table's connections, and
/// frames are handled as they arrive (no pacing, no record limit). Also answers how long the
/// session is to run (`None`: until stopped).
pub fn for_live(mut settings: Settings) -> Result<(Settings, Option<Duration>), PipelineError> {
    let Some(live) = settings.live.clone() else {
        return Err(live_error(format_args!(
            "{}: no [live] table: nothing to connect to",
            settings.origin
        )));
    };
    let duration = live.duration;
    settings.input = crate::config::InputSpec::Live(Box::new(live));
    settings.pacing = crate::config::PacingSpec::Max;
    settings.max_records = 0;
    Ok((settings, duration))
}

/// One order session's [`ExitOutcome`] as JSON.
fn exit_json(x: &ExitOutcome) -> serde_json::Value {
    serde_json::json!({
        "policy": x.policy.as_str(),
        "connected": x.connected,
        "open_at_stop": x.open_at_stop,
        "cancelled": x.cancelled,
        "closed_otherwise": x.closed_otherwise,
        "left_open": x.left_open,
    })
}

/// What the exit policy did in every order session of `pinion live --trade`, added up: `None`
/// when no session ended (not a trading run).
pub fn exit_total(report: &super::PipelineReport) -> Option<ExitOutcome> {
    let mut total: Option<ExitOutcome> = None;
    for x in report.input.accounts.iter().filter_map(|slot| {
        slot.lock()
            .ok()
            .and_then(|s| s.as_ref().and_then(|a| a.exit))
    }) {
        let t = total.get_or_insert(ExitOutcome {
            connected: true,
            open_at_stop: 0,
            cancelled: 0,
            closed_otherwise: 0,
            left_open: 0,
            ..x
        });
        t.connected &= x.connected;
        t.open_at_stop += x.open_at_stop;
        t.cancelled += x.cancelled;
        t.closed_otherwise += x.closed_otherwise;
        t.left_open += x.left_open;
    }
    total
}

/// The exit policy's line in the end-of-run summary.
pub fn exit_line(x: &ExitOutcome) -> String {
    let mut line = format!(
        "exit policy {}: {} orders open at the stop, {} cancelled, {} filled or expired, {} left open",
        x.policy, x.open_at_stop, x.cancelled, x.closed_otherwise, x.left_open
    );
    if !x.connected {
        line.push_str(
            " (an order session was not connected at the stop: nothing could be cancelled there)",
        );
    }
    line
}

/// Each order session's protective orders on the exchange, for the end-of-run summary: the
/// position they cover and what rests (none without a guard).
pub fn protection_lines(report: &super::PipelineReport) -> Vec<String> {
    let dec = |v: i64, d: u8| trimmed(super::findings::scaled_decimal(i128::from(v), d));
    report
        .input
        .accounts
        .iter()
        .filter_map(|slot| slot.lock().ok().and_then(|s| s.clone()))
        .filter_map(|a| {
            let p = a.protection?;
            let resting = match &p.resting {
                Some(b) => {
                    let mut parts = Vec::new();
                    if let Some(px) = b.stop {
                        parts.push(format!("stop {}", dec(px.0, a.price_decimals)));
                    }
                    if let Some(d) = b.trailing_bips {
                        parts.push(format!("trailing stop {d} bips"));
                    }
                    if let Some(px) = b.take_profit {
                        parts.push(format!("take-profit {}", dec(px.0, a.price_decimals)));
                    }
                    if parts.is_empty() {
                        parts.push("adopted from an earlier session".to_owned());
                    }
                    format!(
                        "{} {} resting ({}; {} order{})",
                        pinion_gateway::binance::template::side_name(b.side),
                        dec(b.qty.0, a.qty_decimals),
                        parts.join(", "),
                        b.legs.iter().flatten().count(),
                        if b.legs[1].is_some() { "s, one cancels the other" } else { "" }
                    )
                }
                None => "nothing resting".to_owned(),
            };
            let st = p.stats;
            Some(format!(
                "protection on the exchange {}: position {}, {resting}; brackets placed {}, cancelled {}, refused {}; protective fills {}; legs adopted {}",
                a.symbol,
                dec(p.position.0, a.qty_decimals),
                st.placed,
                st.cancelled,
                st.refused,
                st.triggered_fills,
                st.adopted_legs
            ))
        })
        .collect()
}

/// The guard's state as JSON.
fn protection_json(a: &AccountSummary) -> Option<serde_json::Value> {
    let dec = |v: i64, d: u8| trimmed(super::findings::scaled_decimal(i128::from(v), d));
    let p = a.protection.as_ref()?;
    let codec = |id: pinion_strategy::ClientOrderId| id.0;
    Some(serde_json::json!({
        "position": dec(p.position.0, a.qty_decimals),
        "resting": p.resting.as_ref().map(|b| serde_json::json!({
            "side": pinion_gateway::binance::template::side_name(b.side),
            "qty": dec(b.qty.0, a.qty_decimals),
            "stop_price": b.stop.map(|px| dec(px.0, a.price_decimals)),
            "trailing_delta_bips": b.trailing_bips,
            "take_profit_price": b.take_profit.map(|px| dec(px.0, a.price_decimals)),
            "list": b.list.map(codec),
            "orders": b.legs.iter().flatten().map(|id| codec(*id)).collect::<Vec<_>>(),
        })),
        "placed": p.stats.placed,
        "cancelled": p.stats.cancelled,
        "refused": p.stats.refused,
        "protective_fills": p.stats.triggered_fills,
        "adopted_legs": p.stats.adopted_legs,
    }))
}

/// The total exit outcome as JSON (for `--report-json`).
pub fn exit_total_json(report: &super::PipelineReport) -> Option<serde_json::Value> {
    exit_total(report).as_ref().map(exit_json)
}

/// What each order venue knew at the end of `pinion live --trade`, as JSON: per symbol, every
/// order (client id, exchange id, side, price, quantity, filled, state, strategy instance and
/// reason), the balances user
/// data gave, and the session's counters. Prices and quantities are exact decimals.
pub fn accounts_json(report: &super::PipelineReport) -> serde_json::Value {
    use serde_json::{Value, json};
    let dec = |v: i64, d: u8| trimmed(super::findings::scaled_decimal(i128::from(v), d));
    let accounts: Vec<Value> = report
        .input
        .accounts
        .iter()
        .filter_map(|slot| slot.lock().ok().and_then(|s| s.clone()))
        .map(|a| {
            let orders: Vec<Value> = a
                .orders
                .iter()
                .map(|o| {
                    json!({
                        "client_order_id": o.client_order_id,
                        "order_id": o.order_id,
                        "side": pinion_gateway::binance::template::side_name(o.side),
                        "price": dec(o.price.0, a.price_decimals),
                        "qty": dec(o.qty.0, a.qty_decimals),
                        "filled": dec(o.filled.0, a.qty_decimals),
                        "state": format!("{:?}", o.state),
                        "strategy": o.reason.strategy,
                        "reason": o.reason.code.name(),
                    })
                })
                .collect();
            let balances: Vec<Value> = a
                .balances
                .iter()
                .map(|b| {
                    json!({
                        "asset": b.asset.as_str(),
                        "free": b.free.to_string(),
                        "locked": b.locked.to_string(),
                    })
                })
                .collect();
            let s = a.session;
            let t = a.table;
            json!({
                "symbol": a.symbol,
                "exit": a.exit.as_ref().map(exit_json),
                "protection": protection_json(&a),
                "orders": orders,
                "balances": balances,
                "clock_offset_us": a.clock_offset_us,
                "session": {
                    "connects": s.connects,
                    "ready": s.ready,
                    "disconnects": s.disconnects,
                    "logon_refused": s.logon_refused,
                    "requests": s.requests,
                    "answers": s.answers,
                    "bad_frames": s.bad_frames,
                    "not_connected": s.not_connected,
                    "rate_refused": s.rate_refused,
                    "foreign_open": s.foreign_open,
                    "cancel_all": s.cancel_all,
                    "reconciled_fills": s.reconciled_fills,
                    "status_queries": s.status_queries,
                    "last_error": s.last_error,
                    "rate_limited": s.rate_limited,
                    "banned": s.banned,
                    "unauthorized": s.unauthorized,
                    "limit_checks": s.limit_checks,
                    "limit_drift": s.limit_drift,
                    "breaker_opened": s.breaker_opened,
                    "breaker_refused": s.breaker_refused,
                    "clock_drift_alarm": s.clock_drift_alarm,
                },
                "orders_table": {
                    "duplicate_executions": t.duplicate_executions,
                    "stale_executions": t.stale_executions,
                    "foreign": t.foreign,
                    "unknown": t.unknown,
                    "timestamp_rejects": t.timestamp_rejects,
                    "overfills": t.overfills,
                    "swept": t.swept,
                    "contradictions": t.contradictions,
                },
            })
        })
        .collect();
    Value::Array(accounts)
}
