//! `pinion convert`: any recording the engine replays into pinion's own `.pnr` format, with
//! the instruments it trades written into the header so the `.pnr` replays without the config
//! or the exchange's instrument lists.

use std::path::{Path, PathBuf};

use pinion_feed::recording::{
    ConvertStats, InstrumentDef, RecordingHeader, RecordingWriter, Rotation, convert,
};
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
}

/// Converts `input` into `output`. Instruments are resolved as a replay of `input` under
/// `settings` would resolve them; those the recording names go into the header.
pub fn convert_recording(
    settings: &Settings,
    input: &Path,
    output: &Path,
) -> Result<ConvertSummary, PipelineError> {
    let mut settings = settings.clone();
    let (venue, decompress) = match &settings.input {
        InputSpec::Recording {
            venue, decompress, ..
        } => (*venue, *decompress),
        InputSpec::Synthetic { .. } => (None, Decompress::default()),
    };
    settings.input = InputSpec::Recording {
        path: input.to_path_buf(),
        venue,
        decompress,
    };
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
    let mut writer = RecordingWriter::create(output, header, Rotation::NONE)?;
    let stats = convert(&mut *source, &mut writer)?;
    let files = writer.finish()?;
    Ok(ConvertSummary {
        stats,
        instruments,
        files,
    })
}
