//! [`RecordingWriter`]: writes records to `.pnr` files, with rotation by size or time.
//!
//! Writes go through a large [`BufWriter`]; a file is flushed and `fsync`ed when it is rotated
//! out and when the writer finishes, so a file in [`RecordingWriter::files`] other than the
//! current one is complete on disk.
//!
//! Naming: without rotation the recording is the one file at the path given. With rotation every
//! file is named `<stem>.<sequence>.pnr` (sequence from `00000`) beside the path given, and each
//! starts with the same header except for its sequence number and start time (the receive time
//! of its first record).
//!
//! The header of a file is written when its first record arrives (or when the writer finishes an
//! empty recording), so connections learnt before that still make it into the header, and a
//! start time of 0 can be taken from the first record. Connections learnt later (a capture or a
//! cryptofeed JSONL discovers them as it reads) are put in when the file is closed: the header
//! is rewritten through a temporary file and a rename.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pinion_core::record::{ConnId, ConnInfo, RawRecord, RecordKind};

use super::RecordingError;
use super::format::{
    self, MAX_META_LEN, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, RecordHeader, RecordingHeader,
};

/// Size of the write buffer.
const WRITE_BUFFER: usize = 1 << 20;

/// Zero bytes for record padding.
const PADDING: [u8; 8] = [0; 8];

/// When to start a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rotation {
    /// Start a new file before a record that would take the current one past this many bytes.
    pub max_bytes: Option<u64>,
    /// Start a new file before a record received this many ns or more after the current file's
    /// first record.
    pub max_span_ns: Option<u64>,
}

impl Rotation {
    /// One file, never rotated.
    pub const NONE: Rotation = Rotation {
        max_bytes: None,
        max_span_ns: None,
    };

    /// Rotate by size.
    pub const fn by_size(max_bytes: u64) -> Self {
        Self {
            max_bytes: Some(max_bytes),
            max_span_ns: None,
        }
    }

    /// Rotate by time span of the records.
    pub const fn by_span(max_span_ns: u64) -> Self {
        Self {
            max_bytes: None,
            max_span_ns: Some(max_span_ns),
        }
    }

    fn is_none(&self) -> bool {
        self.max_bytes.is_none() && self.max_span_ns.is_none()
    }
}

/// The open file and what has gone into it.
#[derive(Debug)]
struct OpenFile {
    out: BufWriter<File>,
    /// Bytes written, header included (0 until the header is written).
    bytes: u64,
    /// Receive time of the first record, once there is one.
    first_t: Option<u64>,
    /// The header as written (once written) and its length.
    written: Option<(RecordingHeader, u64)>,
}

/// Writes a recording, possibly as a rotated set of files.
#[derive(Debug)]
pub struct RecordingWriter {
    path: PathBuf,
    header: RecordingHeader,
    rotation: Rotation,
    file: Option<OpenFile>,
    files: Vec<PathBuf>,
    records: u64,
}

impl RecordingWriter {
    /// Creates the first file of a recording. `header.sequence` is ignored (the writer numbers
    /// the files).
    pub fn create(
        path: impl Into<PathBuf>,
        header: RecordingHeader,
        rotation: Rotation,
    ) -> Result<Self, RecordingError> {
        let mut w = Self {
            path: path.into(),
            header,
            rotation,
            file: None,
            files: Vec::new(),
            records: 0,
        };
        // Validate the header now rather than at the first record.
        w.header.encode()?;
        w.header.sequence = 0;
        w.open_next()?;
        Ok(w)
    }

    /// The header the next file will start with.
    pub fn header(&self) -> &RecordingHeader {
        &self.header
    }

    /// Replaces the connection table. It goes into every file whose header is not written yet
    /// (the current file until its first record, and all later files).
    pub fn set_connections(&mut self, connections: &[ConnInfo]) {
        self.header.connections.clear();
        self.header.connections.extend_from_slice(connections);
    }

    /// The files written so far, the current one last.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Records written so far.
    pub fn records_written(&self) -> u64 {
        self.records
    }

    /// Writes one record.
    pub fn write(&mut self, rec: &RawRecord<'_>) -> Result<(), RecordingError> {
        self.write_parts(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload)
    }

    /// Writes one record given by its fields.
    pub fn write_parts(
        &mut self,
        t_recv: u64,
        conn: ConnId,
        kind: RecordKind,
        meta: &[u8],
        payload: &[u8],
    ) -> Result<(), RecordingError> {
        if meta.len() > MAX_META_LEN || payload.len() > MAX_PAYLOAD_LEN {
            return Err(RecordingError::RecordTooLarge {
                meta: meta.len(),
                payload: payload.len(),
            });
        }
        let len = format::record_len(meta.len(), payload.len());
        if self.should_rotate(t_recv, len as u64) {
            self.rotate()?;
        }
        let header = RecordHeader {
            t_recv,
            conn,
            kind,
            meta_len: meta.len() as u32,
            payload_len: payload.len() as u32,
            crc: 0,
        };
        let pad = &PADDING[..len - RECORD_HEADER_LEN - meta.len() - payload.len()];
        let mut encoded = header.encode();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&encoded[..20]);
        crc.update(meta);
        crc.update(payload);
        crc.update(pad);
        encoded[20..24].copy_from_slice(&crc.finalize().to_le_bytes());

        self.start_file_if_needed(t_recv)?;
        let file = self.current()?;
        file.out.write_all(&encoded)?;
        file.out.write_all(meta)?;
        file.out.write_all(payload)?;
        file.out.write_all(pad)?;
        file.bytes += len as u64;
        self.records += 1;
        Ok(())
    }

    /// Flushes the buffer to the OS (no `fsync`).
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        if let Some(f) = &mut self.file {
            f.out.flush()?;
        }
        Ok(())
    }

    /// Writes the header of an empty last file, flushes, `fsync`s and closes; returns every file
    /// of the recording in order.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, RecordingError> {
        let start = self.header.start_ns;
        self.start_file_if_needed(start)?;
        self.close_current()?;
        Ok(std::mem::take(&mut self.files))
    }

    fn should_rotate(&self, t_recv: u64, len: u64) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let Some(first_t) = file.first_t else {
            return false;
        };
        let by_size = self
            .rotation
            .max_bytes
            .is_some_and(|max| file.bytes + len > max);
        let by_span = self
            .rotation
            .max_span_ns
            .is_some_and(|span| t_recv.saturating_sub(first_t) >= span);
        by_size || by_span
    }

    fn rotate(&mut self) -> Result<(), RecordingError> {
        self.close_current()?;
        self.header.sequence += 1;
        // A rotated file starts at its own first record.
        self.header.start_ns = 0;
        self.open_next()
    }

    fn open_next(&mut self) -> Result<(), RecordingError> {
        let path = if self.rotation.is_none() {
            self.path.clone()
        } else {
            sequenced_path(&self.path, self.header.sequence)
        };
        let f = File::create(&path)?;
        self.files.push(path);
        self.file = Some(OpenFile {
            out: BufWriter::with_capacity(WRITE_BUFFER, f),
            bytes: 0,
            first_t: None,
            written: None,
        });
        Ok(())
    }

    fn start_file_if_needed(&mut self, t_recv: u64) -> Result<(), RecordingError> {
        let needs_header = self.file.as_ref().is_some_and(|f| f.first_t.is_none());
        if !needs_header {
            return Ok(());
        }
        if self.header.start_ns == 0 {
            self.header.start_ns = t_recv;
        }
        let bytes = self.header.encode()?;
        let written = self.header.clone();
        let file = self.current()?;
        file.out.write_all(&bytes)?;
        file.bytes = bytes.len() as u64;
        file.first_t = Some(t_recv);
        file.written = Some((written, bytes.len() as u64));
        Ok(())
    }

    fn current(&mut self) -> Result<&mut OpenFile, RecordingError> {
        self.file
            .as_mut()
            .ok_or(RecordingError::Header("the writer has no open file"))
    }

    fn close_current(&mut self) -> Result<(), RecordingError> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        f.out.flush()?;
        f.out.get_ref().sync_all()?;
        if let Some((mut written, header_len)) = f.written
            && written.connections != self.header.connections
            && let Some(path) = self.files.last()
        {
            written.connections.clone_from(&self.header.connections);
            rewrite_header(path, &written, header_len)?;
        }
        Ok(())
    }
}

/// Replaces the header of a closed file: writes the new header and the old file's records to a
/// temporary file beside it, syncs it and renames it over the old one, so the file is whole at
/// every moment. Used when a source learnt connections after the header was written (a capture
/// discovers them as it reads); a copy at close is cheaper than holding records back.
fn rewrite_header(
    path: &Path,
    header: &RecordingHeader,
    old_header_len: u64,
) -> Result<(), RecordingError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut old = File::open(path)?;
    old.seek(SeekFrom::Start(old_header_len))?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::create(&tmp)?);
    out.write_all(&header.encode()?)?;
    io::copy(&mut old, &mut out)?;
    out.flush()?;
    out.get_ref().sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// `dir/name.pnr` → `dir/name.00003.pnr`.
fn sequenced_path(path: &Path, sequence: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "recording".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.{sequence:05}.{}", format::EXTENSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequenced_names_keep_the_directory() {
        assert_eq!(
            sequenced_path(Path::new("/tmp/x/day.pnr"), 3),
            PathBuf::from("/tmp/x/day.00003.pnr")
        );
    }
}
