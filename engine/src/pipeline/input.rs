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

use pinion_core::{InstrumentId, InstrumentSpec, Instruments, RecordKind, Venue};
use pinion_feed::FrameSource;
use pinion_feed::exchange_info;
use pinion_feed::parse::{ConnCtx, Decoder};
use pinion_feed::recording::RecordingReader;
use pinion_feed::source::Decompress;
use pinion_feed::synth::{SynthConfig, SynthMarket};

use super::PipelineError;
use crate::config::{InputSpec, InstrumentSource, Settings, with_qty_decimals};
use crate::stages::feed::ConnTable;

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
    /// Records the source will yield, when known (for the progress bar).
    pub expected_records: Option<u64>,
    /// What start-up found worth saying (files skipped, instruments loaded).
    pub notes: Vec<String>,
    /// A short description of the input.
    pub description: String,
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
    let mut notes = Vec::new();
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
                // The connect and the snapshot come before the stream frames.
                expected_records: Some(records + 2),
                notes,
                description,
            })
        }
        InputSpec::Recording {
            path,
            venue,
            decompress,
        } => {
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
            let scan = scan_recording(path, *decompress, &mut instruments)?;
            if scan.from_recording > 0 {
                notes.push(format!(
                    "{} instruments from the recording's instrument lists",
                    scan.from_recording
                ));
            }
            for spec in &settings.instruments {
                instruments.upsert(spec.clone())?;
            }
            let source = open_source(path, *decompress)?;
            if *decompress == Decompress::Ahead && pinion_feed::source::is_compressed(path) {
                notes.push(String::from(
                    "decompressed on a helper thread ahead of the feed (input.read_ahead)",
                ));
            }
            let conns = ConnTable::new(&*source, *venue, instruments.clone());
            let books = if instruments.len() <= BOOKS_FOR_ALL_UP_TO {
                instruments.iter().map(|(id, _)| id).collect()
            } else {
                let used = instruments_named(path, *decompress, &conns, &instruments)?;
                notes.push(format!(
                    "{} of {} instruments appear in the recording: books for those",
                    used.len(),
                    instruments.len()
                ));
                used
            };
            Ok(PreparedInput {
                source,
                instruments,
                conns,
                books,
                expected_records: Some(scan.records),
                notes,
                description: path.display().to_string(),
            })
        }
    }
}

/// What a first pass over a recording found.
struct Scan {
    records: u64,
    from_recording: usize,
}

/// Opens any recording the engine replays (by file name: see [`pinion_feed::source::open`]),
/// a compressed one decompressed where `decompress` says.
pub fn open_source(
    path: &Path,
    decompress: Decompress,
) -> Result<Box<dyn FrameSource + Send>, PipelineError> {
    Ok(pinion_feed::source::open_with(path, decompress)?)
}

/// Counts the records and takes instrument specs from the recording: a `.pnr` header's
/// instrument table, and the REST instrument lists it holds (Binance `exchangeInfo`, Bybit
/// `instruments-info`).
fn scan_recording(
    path: &Path,
    decompress: Decompress,
    instruments: &mut Instruments,
) -> Result<Scan, PipelineError> {
    let mut records = 0u64;
    let mut from_recording = 0usize;
    if path.extension().is_some_and(|e| e == "pnr") {
        let reader = RecordingReader::open(path)?;
        for (_, spec) in reader.header().instrument_registry()?.iter() {
            instruments.upsert(spec.clone())?;
            from_recording += 1;
        }
    }
    let mut source = open_source(path, decompress)?;
    loop {
        let rec = match source.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            // The run itself counts and reports bad records; the scan just goes past them.
            Err(_) => {
                records += 1;
                continue;
            }
        };
        records += 1;
        if rec.kind != RecordKind::Http {
            continue;
        }
        let url = String::from_utf8_lossy(rec.meta);
        let Some(venue) = Venue::from_url(&url) else {
            continue;
        };
        let specs = if url.contains("exchangeInfo") && venue.is_binance() {
            exchange_info::binance_exchange_info(rec.payload, venue)?
        } else if url.contains("instruments-info") && venue.is_bybit() {
            exchange_info::bybit_instruments_info(rec.payload, venue)?
        } else {
            continue;
        };
        for spec in specs {
            instruments.upsert(spec)?;
            from_recording += 1;
        }
    }
    Ok(Scan {
        records,
        from_recording,
    })
}

/// Decodes the recording once and returns the instruments its events name.
fn instruments_named(
    path: &Path,
    decompress: Decompress,
    conns: &ConnTable,
    instruments: &Instruments,
) -> Result<Vec<InstrumentId>, PipelineError> {
    let mut source = open_source(path, decompress)?;
    let mut decoder = Decoder::new(instruments.clone());
    let mut seen = vec![false; instruments.len()];
    let mut conns = conns.clone();
    loop {
        let ctx: Option<ConnCtx>;
        {
            let rec = match source.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                Err(_) => continue,
            };
            ctx = conns.get(rec.conn).copied();
            if let Some(ctx) = ctx {
                let _ = decoder.decode(&ctx, &rec, 0, |ev| {
                    if let Some(s) = seen.get_mut(usize::from(ev.instrument.0)) {
                        *s = true;
                    }
                });
                continue;
            }
        }
        conns.refresh(&*source);
    }
    Ok(seen
        .iter()
        .enumerate()
        .filter(|(_, s)| **s)
        .map(|(i, _)| InstrumentId(i as u16))
        .collect())
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
