//! Start-up for a replay's input: opening the source, assembling the instrument registry, and
//! choosing which instruments get a book.
//!
//! Instrument specs come from, in increasing precedence: the config's `exchange_info` files;
//! the recording itself (Bybit `instruments-info` REST responses it holds); the config's
//! `[[instrument]]` table; for the synthetic market, its own instrument. A book is allocated for
//! every instrument when there are few; when an exchange list brings in hundreds, the recording
//! is decoded once at start-up and books are allocated for the instruments its frames name, so
//! nothing is allocated for a new instrument once the run has started.

use std::io::Read as _;
use std::path::Path;

use pinion_core::{InstrumentId, InstrumentSpec, Instruments, Px, Symbol, Venue};
use pinion_feed::FrameSource;
use pinion_feed::exchange_info;
use pinion_feed::recording::RecordingReader;
use pinion_feed::source::Decompress;
use pinion_feed::source::prefetch::Prefetched;
use pinion_feed::survey::{self, NumberShape, Survey, VenueEvidence};
use pinion_feed::synth::{SynthConfig, SynthMarket};

use super::{PipelineError, findings};
use crate::config::{InputSpec, InstrumentSource, Settings, with_px_decimals, with_qty_decimals};
use crate::stages::feed::ConnTable;

/// Records of standard input read ahead and looked at before its replay (it has no first
/// pass): enough for the snapshots and every stream's first messages of a usual capture.
pub const STDIN_HEAD_RECORDS: usize = 100_000;
/// The byte budget of that head: it is held in memory until replayed.
pub const STDIN_HEAD_BYTES: usize = 256 << 20;

/// Above this many instruments, books are allocated only for those the input names.
pub const BOOKS_FOR_ALL_UP_TO: usize = 64;

/// A source ready to run, with its instruments.
pub struct PreparedInput {
    /// The source, at its first record.
    pub source: Box<dyn FrameSource + Send>,
    /// The registry the decoder resolves symbols against.
    pub instruments: Instruments,
    /// How each connection decodes.
    pub conns: ConnTable,
    /// The instruments that get a book.
    pub books: Vec<InstrumentId>,
    /// The instruments of `books` a strategy trades: those whose order filters are known
    /// (not inferred from the recording).
    pub traded: Vec<InstrumentId>,
    /// Per instrument, the grid its book keeps when it is not the spec's tick (finer prices
    /// in the recording, or `px_decimals` in the config).
    pub book_ticks: Vec<Option<Px>>,
    /// Records the source will yield, when known (for the progress bar).
    pub expected_records: Option<u64>,
    /// What start-up found worth saying (files skipped, instruments loaded).
    pub notes: Vec<String>,
    /// A short description of the input.
    pub description: String,
    /// A live input's links to the book stage and its counters.
    pub live: Option<LiveParts>,
}

/// What a live input shares with the rest of the pipeline.
#[derive(Debug)]
pub struct LiveParts {
    /// The book stage tells the source which books need a snapshot.
    pub requests: std::sync::Arc<pinion_feed::live::SnapshotRequests>,
    /// The connections' counters, for the report.
    pub counters: std::sync::Arc<pinion_feed::live::LiveCounters>,
    /// The recorder thread writing the session to `.pnr`, when asked for.
    pub recorder: Option<pinion_feed::recording::Recorder>,
    /// The TLS client config every connection of the session shares (the order venue's too).
    pub tls: pinion_net::wss::TlsClientConfig,
    /// The venue's request limits from its instrument list (empty: not given).
    pub rate_limits: Vec<pinion_feed::exchange_info::RateLimit>,
}

impl std::fmt::Debug for PreparedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedInput")
            .field("instruments", &self.instruments.len())
            .field("books", &self.books)
            .field("expected_records", &self.expected_records)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Opens the input of `settings` and assembles its instruments.
pub fn prepare(settings: &Settings) -> Result<PreparedInput, PipelineError> {
    let notes = Vec::new();
    match &settings.input {
        InputSpec::Synthetic {
            seed,
            records,
            interval_ns,
        } => {
            let config = SynthConfig {
                seed: *seed,
                messages: *records,
                mean_interval_ns: *interval_ns,
                ..SynthConfig::default()
            };
            let market = SynthMarket::new(config)?;
            let mut instruments = Instruments::new();
            for spec in &settings.instruments {
                instruments.upsert(spec.clone())?;
            }
            let synth_id = instruments.upsert(market.spec().clone())?;
            let description = format!(
                "synthetic {} {} ({} records, seed {})",
                market.spec().venue,
                market.spec().symbol,
                records,
                seed
            );
            let source: Box<dyn FrameSource + Send> = Box::new(market);
            let conns = ConnTable::new(&*source, Some(Venue::BinanceSpot), instruments.clone());
            Ok(PreparedInput {
                source,
                instruments,
                conns,
                books: vec![synth_id],
                traded: vec![synth_id],
                book_ticks: Vec::new(),
                // The connect and the snapshot come before the stream frames.
                expected_records: Some(records + 2),
                notes,
                description,
                live: None,
            })
        }
        InputSpec::Live(live) => super::live::prepare_live(settings, live),
        InputSpec::Recording {
            path,
            venue,
            decompress,
        } => prepare_recording(settings, path, *venue, *decompress, notes),
    }
}

/// [`prepare`] for a recording: instrument lists, a survey of the recording, the config's
/// instruments, then specs inferred for what the recording holds and nothing defines.
fn prepare_recording(
    settings: &Settings,
    path: &Path,
    venue: Option<Venue>,
    decompress: Decompress,
    mut notes: Vec<String>,
) -> Result<PreparedInput, PipelineError> {
    let mut instruments = Instruments::new();
    for src in &settings.instrument_sources {
        let InstrumentSource::ExchangeInfo {
            venue,
            path,
            optional,
            qty_decimals,
        } = src;
        if *optional && !path.is_file() {
            notes.push(format!(
                "exchange_info {} not found: skipped (optional)",
                path.display()
            ));
            continue;
        }
        let n = load_exchange_info(&mut instruments, *venue, path, *qty_decimals)?;
        notes.push(format!("{n} {venue} instruments from {}", path.display()));
    }
    let is_pnr = !pinion_feed::source::is_stdin(path)
        && pinion_feed::source::container_of(path)
            .is_ok_and(|c| c == pinion_feed::source::sniff::Container::Pnr);
    if is_pnr {
        let reader = RecordingReader::open(path)?;
        let mut n = 0;
        for (_, spec) in reader.header().instrument_registry()?.iter() {
            instruments.upsert(spec.clone())?;
            n += 1;
        }
        if n > 0 {
            notes.push(format!("{n} instruments from the recording's header"));
        }
    }
    // Standard input can be read once only: its head is read ahead and looked at in place of
    // a first pass over the whole, then replayed with the rest.
    let mut stdin_source: Option<Box<dyn FrameSource + Send>> = None;
    let survey = if pinion_feed::source::is_stdin(path) {
        let head = Prefetched::new(
            open_source(path, decompress)?,
            STDIN_HEAD_RECORDS,
            STDIN_HEAD_BYTES,
        );
        let survey = survey::survey(&mut head.head());
        if !head.is_whole() {
            notes.push(format!(
                "standard input is read once: its first {} records were looked at for venues and instruments; an instrument that appears only after them gets no book",
                head.head_len()
            ));
        }
        stdin_source = Some(Box::new(head));
        survey
    } else {
        let mut first = open_source(path, decompress)?;
        survey::survey(&mut *first)
    };
    let survey = Some(survey);
    if let Some(survey) = &survey {
        if !survey.listed.is_empty() {
            notes.push(format!(
                "{} instruments from the recording's instrument lists",
                survey.listed.len()
            ));
        }
        for spec in &survey.listed {
            instruments.upsert(spec.clone())?;
        }
        for what in &survey.unreadable_lists {
            notes.push(format!(
                "an instrument list in the recording is unreadable: {what}"
            ));
        }
    }
    for spec in &settings.instruments {
        instruments.upsert(spec.clone())?;
    }
    let mut grids: Vec<(Venue, Symbol, Px)> = settings
        .unit_price_grid
        .iter()
        .map(|&(v, s)| (v, s, Px(1)))
        .collect();
    let mut inferred: Vec<(Venue, Symbol)> = Vec::new();
    if let Some(survey) = &survey {
        conn_notes(survey, venue, &mut notes);
        for (&(v, sym), seen) in &survey.instruments {
            let unit_grid = grids.iter().any(|g| g.0 == v && g.1 == sym);
            if let Some(spec) = instruments
                .lookup(v, sym.as_bytes())
                .and_then(|id| instruments.get(id))
                .cloned()
            {
                let fitted = match fit_to_data(spec.clone(), &seen.numbers, unit_grid) {
                    Ok(fitted) => fitted,
                    // Numbers no unit can hold with this spec's limits (an absurd price in a
                    // damaged file): the spec stands, and the decoder counts what it refuses.
                    Err(what) => Fitted {
                        spec,
                        grid: None,
                        note: Some(format!(
                            "{v} {sym}: the recording's numbers do not fit: {what}"
                        )),
                    },
                };
                notes.extend(fitted.note);
                if let Some(grid) = fitted.grid {
                    grids.push((v, sym, grid));
                }
                instruments.upsert(fitted.spec)?;
                continue;
            }
            let Some(spec) = infer_spec(v, sym, &seen.numbers) else {
                notes.push(format!(
                    "{v} {sym}: no price to learn its units from: no book"
                ));
                continue;
            };
            notes.push(format!(
                "{v} {sym}: defined from the recording (prices to {} decimals on a {} grid, quantities to {} decimals); not traded: its order filters are unknown",
                spec.price_decimals,
                findings::scaled_decimal(i128::from(spec.tick.0), spec.price_decimals),
                spec.qty_decimals
            ));
            inferred.push((v, sym));
            instruments.upsert(spec)?;
        }
    }
    let source = match stdin_source {
        Some(source) => source,
        None => open_source(path, decompress)?,
    };
    if decompress == Decompress::Ahead && pinion_feed::source::is_compressed(path) {
        notes.push(String::from(
            "decompressed on a helper thread ahead of the feed (input.read_ahead)",
        ));
    }
    let conns = match &survey {
        Some(survey) => ConnTable::with_survey(&*source, venue, instruments.clone(), survey),
        None => ConnTable::new(&*source, venue, instruments.clone()),
    };
    let books: Vec<InstrumentId> = match &survey {
        Some(survey) => {
            let named: Vec<InstrumentId> = survey
                .instruments
                .keys()
                .filter_map(|(v, sym)| instruments.lookup(*v, sym.as_bytes()))
                .collect();
            if instruments.len() > named.len() {
                notes.push(format!(
                    "{} of {} instruments appear in the recording: books for those",
                    named.len(),
                    instruments.len()
                ));
            }
            named
        }
        None if instruments.len() <= BOOKS_FOR_ALL_UP_TO => {
            instruments.iter().map(|(id, _)| id).collect()
        }
        None => settings
            .instruments
            .iter()
            .filter_map(|s| instruments.lookup(s.venue, s.symbol.as_bytes()))
            .collect(),
    };
    if books.is_empty() {
        return Err(PipelineError::NoInstruments(nothing_to_book(
            survey.as_ref(),
            &instruments,
        )));
    }
    let traded = books
        .iter()
        .copied()
        .filter(|id| {
            instruments
                .get(*id)
                .is_some_and(|s| !inferred.contains(&(s.venue, s.symbol)))
        })
        .collect();
    let book_ticks = instruments
        .iter()
        .map(|(_, spec)| {
            grids
                .iter()
                .rev()
                .find(|g| g.0 == spec.venue && g.1 == spec.symbol)
                .map(|g| g.2)
        })
        .collect();
    Ok(PreparedInput {
        source,
        instruments,
        conns,
        books,
        traded,
        book_ticks,
        expected_records: survey.as_ref().map(|s| s.records),
        notes,
        description: path.display().to_string(),
        live: None,
    })
}

/// Why a recording gave no instrument a book, from what its survey saw.
fn nothing_to_book(survey: Option<&Survey>, instruments: &Instruments) -> String {
    let Some(s) = survey else {
        return format!(
            "standard input names none of the {} instruments defined beforehand",
            instruments.len()
        );
    };
    let mut parts = vec![format!(
        "{} records, {} of them stream frames on {} connections",
        s.records,
        s.frames,
        s.conns.len()
    )];
    if s.bad_records > 0 {
        parts.push(format!(
            "{} records unreadable (first: {})",
            s.bad_records,
            s.first_error.as_deref().unwrap_or("?")
        ));
    }
    if s.binary_frames > 0 {
        parts.push(format!(
            "{} binary frames that are neither JSON nor SBE stream messages",
            s.binary_frames
        ));
    }
    if s.other_frames > 0 {
        parts.push(format!(
            "{} frames that are no depth, book ticker, trade, kline or 24 h ticker message",
            s.other_frames
        ));
    }
    let unnamed = s
        .conns
        .iter()
        .filter(|c| c.venue.is_none() && c.frames > 0)
        .count();
    if unnamed > 0 {
        parts.push(format!(
            "{unnamed} connections whose venue nothing tells (name it with --venue)"
        ));
    }
    if !s.instruments.is_empty() {
        parts.push(format!(
            "{} instruments named but none with a price to learn its units from",
            s.instruments.len()
        ));
    }
    parts.join("; ")
}

/// What start-up says about connections whose venue the recording's content decided against
/// its source, or could not decide.
fn conn_notes(survey: &Survey, fallback: Option<Venue>, notes: &mut Vec<String>) {
    for (i, c) in survey.conns.iter().enumerate() {
        let venue = c.venue.map_or("?", Venue::name);
        match c.evidence {
            VenueEvidence::ShapeOverruledSource(said) => notes.push(format!(
                "connection {i}: its messages are {venue}'s, not {said}'s as its source says: read as {venue}"
            )),
            VenueEvidence::Unknown if c.frames > 0 && fallback.is_none() => notes.push(format!(
                "connection {i}: nothing in it tells its venue: its records are skipped (--venue names it)"
            )),
            _ => {}
        }
    }
}

/// A spec checked against the recording's numbers, and what changed.
struct Fitted {
    spec: InstrumentSpec,
    /// The grid the book keeps, when it is not the spec's tick.
    grid: Option<Px>,
    note: Option<String>,
}

/// `spec` made able to hold every number the recording has: prices or quantities with more
/// decimals than its tick or step widen its units (the tick, step and filters are rescaled, so
/// orders still follow them); prices between its ticks put its book on their finer grid. The
/// changes are said in the note.
fn fit_to_data(
    spec: InstrumentSpec,
    seen: &NumberShape,
    unit_grid: bool,
) -> Result<Fitted, String> {
    let mut changes = Vec::new();
    let mut spec = spec;
    if seen.price_decimals > spec.price_decimals {
        changes.push(format!(
            "prices to {} decimals (the tick has {})",
            seen.price_decimals, spec.price_decimals
        ));
        spec = with_px_decimals(spec, seen.price_decimals)?;
    }
    if seen.qty_decimals > spec.qty_decimals {
        changes.push(format!(
            "quantities to {} decimals (the step has {})",
            seen.qty_decimals, spec.qty_decimals
        ));
        spec = with_qty_decimals(spec, seen.qty_decimals)?;
    }
    // A unit grid set in the config (`px_decimals`) stays one unit at any precision.
    let tick = if unit_grid { Px(1) } else { spec.tick };
    let grid = match seen.grid_in(spec.price_decimals) {
        Some(g) if g > 0 && g % tick.0 != 0 => {
            let fine = Px(gcd(tick.0, g));
            changes.push(format!(
                "prices between its ticks: the book keeps a {} grid, orders the tick {}",
                findings::scaled_decimal(i128::from(fine.0), spec.price_decimals),
                findings::scaled_decimal(i128::from(spec.tick.0), spec.price_decimals)
            ));
            Some(fine)
        }
        _ => unit_grid.then_some(tick),
    };
    let note = (!changes.is_empty()).then(|| {
        format!(
            "{} {}: the recording has {}",
            spec.venue,
            spec.symbol,
            changes.join("; ")
        )
    });
    Ok(Fitted { spec, grid, note })
}

/// A spec for an instrument nobody defined, from the recording's numbers: its price and
/// quantity units from the most decimals it sends, its book's grid from its prices. The step is
/// one quantity unit and there are no filters: such an instrument is replayed, not traded.
fn infer_spec(venue: Venue, symbol: Symbol, seen: &NumberShape) -> Option<InstrumentSpec> {
    if seen.prices == 0 {
        return None;
    }
    let tick = seen.grid_in(seen.price_decimals)?;
    let mut spec = InstrumentSpec::new(venue, symbol.as_str(), "1", "1").ok()?;
    spec.price_decimals = seen.price_decimals;
    spec.qty_decimals = seen.qty_decimals;
    spec.tick = Px(tick.max(1));
    Some(spec)
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a.rem_euclid(b));
    }
    a.abs()
}

/// Opens any recording the engine replays (by file name: see [`pinion_feed::source::open`]),
/// a compressed one decompressed where `decompress` says.
pub fn open_source(
    path: &Path,
    decompress: Decompress,
) -> Result<Box<dyn FrameSource + Send>, PipelineError> {
    Ok(pinion_feed::source::open_with(path, decompress)?)
}

/// Adds the instruments of a saved Binance `exchangeInfo` response (plain or gzip; the bare
/// JSON body or a `<url> -> <time>: <JSON>` line) and returns how many.
pub fn load_exchange_info(
    instruments: &mut Instruments,
    venue: Venue,
    path: &Path,
    qty_decimals: Option<u8>,
) -> Result<usize, PipelineError> {
    let io = |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let start =
        text.iter()
            .position(|&c| c == b'{')
            .ok_or_else(|| PipelineError::ExchangeInfo {
                path: path.to_path_buf(),
                what: "no JSON object in the file".to_owned(),
            })?;
    // A saved response is one line; anything after it (a capture tool's notes) is not JSON.
    let end = text[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(text.len(), |n| start + n);
    let specs: Vec<InstrumentSpec> =
        exchange_info::binance_exchange_info(&text[start..end], venue)?;
    let n = specs.len();
    for spec in specs {
        let spec = match qty_decimals {
            // A symbol whose step is already finer keeps its own scale.
            Some(d) if d > spec.qty_decimals => {
                with_qty_decimals(spec, d).map_err(|what| PipelineError::ExchangeInfo {
                    path: path.to_path_buf(),
                    what,
                })?
            }
            _ => spec,
        };
        instruments.upsert(spec)?;
    }
    Ok(n)
}
