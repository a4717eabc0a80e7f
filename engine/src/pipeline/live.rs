//! Start-up for `pinion live`: the trust roots, the venue's instrument list (fetched, cached,
//! or from the cache when the fetch fails), the instruments of the configured symbols, and the
//! [`LiveSource`] that the feed stage reads like any recording.

use std::path::Path;
use std::sync::Arc;
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
use pinion_net::wss::{TlsClientConfig, WssSettings, client_config};

use super::PipelineError;
use super::input::PreparedInput;
use crate::config::{LiveSettings, Settings, with_qty_decimals};
use crate::stages::feed::ConnTable;

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
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| live_error(format_args!("live.ca_file {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| live_error(format_args!("live.ca_file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(live_error(format_args!(
                "live.ca_file {}: no certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| live_error(format_args!("live.ca_file {}: {e}", path.display())))?;
        }
    }
    client_config(roots).map_err(live_error)
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
    if let Some(body) = instrument_list(&mut client, live, &mut notes)? {
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
    let mut wss = WssSettings::new(tls);
    wss.socket = live.socket;
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
        }),
    })
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
