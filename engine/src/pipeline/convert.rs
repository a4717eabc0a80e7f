//! `pinion convert`: any recording the engine replays into pinion's own `.pnr` format, with
//! the instruments it trades written into the header so the `.pnr` replays without the config
//! or the exchange's instrument lists.
//!
//! Guard rails: the output may not be a file the conversion reads (the same path once
//! resolved, or the same file by device and inode, through a hard link or a symbolic link),
//! and it is written to a temporary file in the output's directory and renamed over the output
//! only once complete and synced. A failed conversion leaves the output as it was (absent, or
//! the old file) and removes the temporary file.

use std::fs::File;
use std::path::{Path, PathBuf};

use pinion_feed::recording::{
    ConvertStats, InstrumentDef, RecordingHeader, RecordingWriter, Rotation, SbeConvertStats,
    convert, convert_to_sbe,
};
use pinion_feed::sbe_encode::Exponents;
use pinion_feed::source::Decompress;

use super::PipelineError;
use super::input::{open_source, prepare};
use crate::config::{InputSpec, Settings};

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// Records copied, by kind.
    pub stats: ConvertStats,
    /// Instruments written into the header.
    pub instruments: usize,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// What the SBE encoding did, when asked for.
    pub sbe: Option<SbeConvertStats>,
}

/// How a conversion writes market data frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConvertEncoding {
    /// As recorded.
    #[default]
    Json,
    /// Binance Spot's market data as the SBE frames Binance would have sent
    /// ([`convert_to_sbe`]).
    Sbe,
}

/// Converts `input` into `output`. Instruments are resolved as a replay of `input` under
/// `settings` would resolve them; those the recording names go into the header.
pub fn convert_recording(
    settings: &Settings,
    input: &Path,
    output: &Path,
) -> Result<ConvertSummary, PipelineError> {
    convert_recording_as(settings, input, output, ConvertEncoding::Json)
}

/// [`convert_recording`], writing market data frames as `encoding` says.
pub fn convert_recording_as(
    settings: &Settings,
    input: &Path,
    output: &Path,
    encoding: ConvertEncoding,
) -> Result<ConvertSummary, PipelineError> {
    let mut settings = settings.clone();
    let (venue, decompress) = match &settings.input {
        InputSpec::Recording {
            venue, decompress, ..
        } => (*venue, *decompress),
        InputSpec::Synthetic { .. } | InputSpec::Live(_) => (None, Decompress::default()),
    };
    settings.input = InputSpec::Recording {
        path: input.to_path_buf(),
        venue,
        decompress,
    };
    check_output_is_not_input(input, output)?;
    let prepared = prepare(&settings)?;
    let mut source = open_source(input, decompress)?;
    // The recording's start: the first record's receive time.
    let start_ns = {
        let mut first = open_source(input, decompress)?;
        match first.next_record() {
            Ok(Some(rec)) => rec.t_recv,
            _ => 0,
        }
    };
    let name = input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut header = RecordingHeader::new(name, start_ns);
    header.connections = source.connections().to_vec();
    // Specs inferred from the data are left out: the header's instruments are traded as they
    // are, and an inferred one has no real order filters. A replay of the `.pnr` infers them
    // again from the same data.
    for id in &prepared.traded {
        if let Some(spec) = prepared.instruments.get(*id) {
            header.instruments.push(InstrumentDef::from_spec(spec));
        }
    }
    let instruments = header.instruments.len();
    let tmp = temporary_beside(output);
    let written = RecordingWriter::create(&tmp, header, Rotation::NONE)
        .map_err(PipelineError::from)
        .and_then(|mut writer| {
            let stats = match encoding {
                ConvertEncoding::Json => (convert(&mut *source, &mut writer)?, None),
                ConvertEncoding::Sbe => {
                    let sbe = convert_to_sbe(&mut *source, &mut writer, Exponents::BINANCE_SPOT)?;
                    (sbe.written, Some(sbe))
                }
            };
            writer.finish()?;
            Ok(stats)
        })
        .and_then(|stats| {
            std::fs::rename(&tmp, output).map_err(|source| PipelineError::Io {
                path: output.to_path_buf(),
                source,
            })?;
            Ok(stats)
        });
    let (stats, sbe) = match written {
        Ok(stats) => stats,
        Err(e) => {
            // Nothing half-written stays behind; the output was never touched.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // The rename is durable once the directory is synced (best effort: not every file
    // system lets a directory be opened for it).
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(ConvertSummary {
        stats,
        instruments,
        files: vec![output.to_path_buf()],
        sbe,
    })
}

/// The files a conversion of `input` reads: the recording, and for a cryptofeed `.ws`
/// capture the `.http` beside it (as its reader opens it).
fn files_read(input: &Path) -> Vec<PathBuf> {
    let mut files = vec![input.to_path_buf()];
    if let Some(stem) = input
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".ws"))
    {
        files.push(input.with_file_name(format!("{stem}.http")));
    }
    files
}

/// Refuses an `output` that is one of the files a conversion of `input` reads: the same path
/// once resolved (`.`, `..`, symbolic links), or the same file by device and inode (a hard
/// link, or a symbolic link to it).
pub fn check_output_is_not_input(input: &Path, output: &Path) -> Result<(), PipelineError> {
    let out_resolved = resolve(output);
    let out_meta = std::fs::metadata(output).ok();
    for read in files_read(input) {
        let Ok(in_meta) = std::fs::metadata(&read) else {
            continue;
        };
        let same_path = out_resolved.is_some() && out_resolved == resolve(&read);
        let same_file = out_meta
            .as_ref()
            .is_some_and(|out| same_inode(out, &in_meta));
        if same_path || same_file {
            return Err(PipelineError::OutputIsInput {
                input: read,
                output: output.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// `path` with every symbolic link and `.`/`..` resolved; for a file that does not exist yet,
/// its resolved directory joined with its name.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    Some(dir.join(name))
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    // The resolved paths are compared on every platform; file identity only where the OS
    // exposes it this simply.
    false
}

/// A temporary name in `output`'s directory (so the final rename stays on one file system):
/// `.<name>.<pid>.tmp`.
fn temporary_beside(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(|| "recording".into(), |n| n.to_string_lossy().into_owned());
    output.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
