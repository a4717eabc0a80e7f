//! Conversion of any [`FrameSource`] into pinion's own format.
//!
//! Records are copied as they are: receive time, connection, kind, meta and payload, in source
//! order, so a converted recording replays exactly like its original. The connection table of
//! the files not yet started follows the source's, which may learn connections as it reads.

use crate::source::FrameSource;
use pinion_core::record::RecordKind;

use super::RecordingError;
use super::writer::RecordingWriter;

/// What a conversion copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvertStats {
    /// Records copied.
    pub records: u64,
    /// Records copied per [`RecordKind`], indexed by its `u8` value.
    pub by_kind: [u64; 6],
    /// Payload bytes copied.
    pub payload_bytes: u64,
    /// Receive time of the first record (0 without records).
    pub first_t_recv: u64,
    /// Receive time of the last record (0 without records).
    pub last_t_recv: u64,
}

impl ConvertStats {
    /// Records copied of one kind.
    pub fn count(&self, kind: RecordKind) -> u64 {
        self.by_kind[kind as usize]
    }
}

/// Copies every record of `src` to `writer`. The writer is not finished: the caller calls
/// [`RecordingWriter::finish`] to close and `fsync` the files.
pub fn convert(
    src: &mut dyn FrameSource,
    writer: &mut RecordingWriter,
) -> Result<ConvertStats, RecordingError> {
    let mut stats = ConvertStats::default();
    let mut known_connections = usize::MAX;
    loop {
        if src.connections().len() != known_connections {
            known_connections = src.connections().len();
            writer.set_connections(src.connections());
        }
        let Some(rec) = src.next_record()? else {
            break;
        };
        writer.write(&rec)?;
        if stats.records == 0 {
            stats.first_t_recv = rec.t_recv;
        }
        stats.last_t_recv = rec.t_recv;
        stats.records += 1;
        stats.by_kind[rec.kind as usize] += 1;
        stats.payload_bytes += rec.payload.len() as u64;
    }
    Ok(stats)
}
