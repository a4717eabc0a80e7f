//! [`RecordingReader`]: reads a `.pnr` file as a [`FrameSource`].
//!
//! The reader fills one buffer in large blocks and lends records straight out of it: no copy and
//! no allocation per record. The buffer starts at [`READ_BLOCK`] bytes (the file size if
//! smaller) and grows only when a single record is larger, bounded by the format's length limits.
//!
//! Every length is validated (record header check byte, limits) before it sizes a read, so a
//! corrupt file yields an error rather than a huge allocation or a read past the record. After a
//! checksum mismatch the record's extent is still trustworthy, so the reader skips it and the
//! caller may go on; after a format error or a truncation the position of the next record is
//! unknown and the reader ends (`Ok(None)` from then on).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::error::SourceError;
use crate::source::FrameSource;
use pinion_core::record::{ConnInfo, RawRecord};

use super::format::{
    self, FILE_HEADER_FIXED_LEN, RECORD_HEADER_LEN, RecordHeader, RecordingHeader,
};

/// How much the reader asks the OS for at a time.
pub const READ_BLOCK: usize = 1 << 20;

/// Reads a recording: its header up front, then its records one by one.
#[derive(Debug)]
pub struct RecordingReader<R> {
    input: R,
    header: RecordingHeader,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    finished: bool,
}

impl RecordingReader<File> {
    /// Opens a recording file and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let file = File::open(path)?;
        // A small file needs no full block: zeroing and faulting in 1 MiB would cost more than
        // reading it.
        let len = file.metadata()?.len();
        let block = usize::try_from(len).map_or(READ_BLOCK, |l| l.clamp(4096, READ_BLOCK));
        Self::with_block(file, block)
    }
}

impl<R: Read> RecordingReader<R> {
    /// Reads the header from `input` and positions the reader at the first record.
    pub fn new(input: R) -> Result<Self, SourceError> {
        Self::with_block(input, READ_BLOCK)
    }

    /// [`Self::new`] with a first buffer of `block` bytes (it grows for larger records).
    fn with_block(mut input: R, block: usize) -> Result<Self, SourceError> {
        let mut fixed = [0u8; FILE_HEADER_FIXED_LEN];
        let got = read_full(&mut input, &mut fixed)?;
        if got < FILE_HEADER_FIXED_LEN {
            // A file shorter than the fixed header: say "truncated" only if what is there is the
            // start of a pinion recording, so a random short file reads as a format error.
            let magic_len = got.min(format::MAGIC.len());
            if fixed[..magic_len] != format::MAGIC[..magic_len] {
                return Err(format::format_error(
                    0,
                    "bad magic: not a pinion recording".into(),
                ));
            }
            let version = u16::from_le_bytes([fixed[8], fixed[9]]);
            if got >= 10 && version != format::VERSION {
                return Err(format::format_error(
                    8,
                    format!("unsupported format version {version}"),
                ));
            }
            return Err(format::truncated(0));
        }
        let header_len = RecordingHeader::decode_len(&fixed)?;
        let mut buf = vec![0u8; block.max(header_len)];
        buf[..FILE_HEADER_FIXED_LEN].copy_from_slice(&fixed);
        let rest = read_full(&mut input, &mut buf[FILE_HEADER_FIXED_LEN..header_len])?;
        if FILE_HEADER_FIXED_LEN + rest < header_len {
            return Err(format::truncated(0));
        }
        let header = RecordingHeader::decode(&buf[..header_len])?;
        Ok(Self {
            input,
            header,
            buf,
            pos: header_len,
            end: header_len,
            buf_offset: 0,
            eof: false,
            finished: false,
        })
    }

    /// The recording's header: start time, source, connections, instruments.
    pub fn header(&self) -> &RecordingHeader {
        &self.header
    }

    /// The file offset of the next record.
    pub fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// Makes at least `need` unread bytes available, unless the input ends first; returns how
    /// many are available.
    fn fill(&mut self, need: usize) -> io::Result<usize> {
        while self.end - self.pos < need && !self.eof {
            if self.buf.len() - self.pos < need.max(self.buf.len() / 2) {
                // Move the unread tail to the front; grow only for a record larger than the
                // buffer (its length has been validated against the format's limits).
                self.buf.copy_within(self.pos..self.end, 0);
                self.buf_offset += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
                if self.buf.len() < need {
                    self.buf.resize(need, 0);
                }
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// [`Self::fill`], ending the reader on a read error (the position is lost).
    fn fill_or_finish(&mut self, need: usize) -> Result<usize, SourceError> {
        self.fill(need).map_err(|e| {
            self.finished = true;
            SourceError::Io(e)
        })
    }

    fn next_inner(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let position = self.offset();
        let avail = self.fill_or_finish(RECORD_HEADER_LEN)?;
        if avail == 0 {
            self.finished = true;
            return Ok(None);
        }
        if avail < RECORD_HEADER_LEN {
            self.finished = true;
            return Err(format::truncated(position));
        }
        let mut raw = [0u8; RECORD_HEADER_LEN];
        raw.copy_from_slice(&self.buf[self.pos..self.pos + RECORD_HEADER_LEN]);
        let header = match RecordHeader::decode(&raw, position) {
            Ok(h) => h,
            Err(e) => {
                self.finished = true;
                return Err(e);
            }
        };
        let len = header.record_len();
        if self.fill_or_finish(len)? < len {
            self.finished = true;
            return Err(format::truncated(position));
        }
        let start = self.pos;
        self.pos += len;
        let body = &self.buf[start + RECORD_HEADER_LEN..start + len];
        if format::record_crc(&raw, body) != header.crc {
            return Err(SourceError::Checksum {
                format: format::FORMAT_NAME,
                position,
            });
        }
        let meta_len = header.meta_len as usize;
        let payload_len = header.payload_len as usize;
        Ok(Some(RawRecord {
            t_recv: header.t_recv,
            conn: header.conn,
            kind: header.kind,
            meta: &body[..meta_len],
            payload: &body[meta_len..meta_len + payload_len],
        }))
    }
}

impl<R: Read> FrameSource for RecordingReader<R> {
    fn connections(&self) -> &[ConnInfo] {
        &self.header.connections
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, SourceError> {
        self.next_inner()
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
