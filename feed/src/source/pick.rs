//! Picking the reader for an input from its content (see [`super::sniff`]), for a file or for
//! standard input.
//!
//! The first bytes are read once, looked at, and handed to the chosen reader ahead of the rest
//! ([`Peeked`]): nothing seeks and nothing opens the input twice, so a pipe reads as a file
//! does. A compressed input is sniffed twice, its magic and then the first line of its
//! decompressed text, through the same decompressor the reader goes on with.
//!
//! The file name is never asked what the content is. It still serves as: the description of the
//! connection; the venue hint of hbt lines (`spot-`/`usdm-`/`coinm-`, see
//! [`super::venue_from_file_name`]); the place of a cryptofeed text capture's `.http`
//! companion; and, for an input whose text is empty, the format to read it as.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::cryptofeed::{CryptofeedJsonlReader, CryptofeedTextReader, open_companion};
use super::hbt::HbtReader;
use super::json_lines::JsonLinesReader;
use super::pcap::{PcapConfig, PcapSource};
use super::read_ahead::{CHUNK_BYTES, CHUNKS, ReadAhead};
use super::sniff::{self, Container, MAGIC_LEN, TextFormat};
use super::{Decompress, FrameSource};
use crate::error::SourceError;
use crate::recording::RecordingReader;
use pinion_core::venue::Venue;

/// The path that stands for standard input.
pub const STDIN_PATH: &str = "-";

/// The longest first line the sniffer reads whole; a longer one is judged by its start.
const HEAD_LINE_CAP: usize = 1 << 20;

/// Whether `path` names standard input (`-`). Standard input can be read once only, so a
/// caller that would read a recording twice (a pre-scan, then the replay) must not for it.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN_PATH
}

/// The container of the file at `path` (gzip, zstd, zip, pcap, pcapng, `.pnr`, or text), from
/// its first bytes, as [`super::open_with`] tells it; say, to read a `.pnr` header whatever the
/// file is called. Not for standard input, which this would consume.
pub fn container_of(path: &Path) -> io::Result<Container> {
    let mut input = Peeked::new(File::open(path)?);
    input.fill_to(MAGIC_LEN);
    if let Some(e) = input.error.take() {
        return Err(e);
    }
    Ok(Container::sniff(input.head()))
}

/// Whether [`super::open_with`] reads `path` as compressed text (gzip, zstd or zip, from the
/// first bytes), the inputs [`Decompress`] applies to. `false` for standard input, which cannot
/// be looked at without being consumed, and for a file that cannot be read.
pub fn is_compressed(path: &Path) -> bool {
    !is_stdin(path) && container_of(path).is_ok_and(Container::is_compressed)
}

/// What the name of an input tells, none of it about its format.
#[derive(Debug)]
struct Naming {
    /// The file, `None` for standard input.
    path: Option<PathBuf>,
    /// The connection's description.
    description: String,
    /// The venue of hbt lines, from the name's prefix.
    venue: Option<Venue>,
    /// The format to read an input with empty text as.
    empty_as: Option<TextFormat>,
}

impl Naming {
    fn of(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let empty_as = if name.ends_with(".hbt.gz") || name.ends_with(".hbt") {
            Some(TextFormat::Hbt)
        } else if name.contains(".cryptofeed.jsonl") {
            Some(TextFormat::CryptofeedJsonl)
        } else if name.ends_with(".jsonl") || name.contains(".data") {
            Some(TextFormat::JsonLines)
        } else {
            None
        };
        Self {
            path: Some(path.to_owned()),
            description: if name.is_empty() {
                path.display().to_string()
            } else {
                name
            },
            venue: super::venue_from_file_name(path),
            empty_as,
        }
    }
}

/// Opens `path` (a file, or standard input for `-`), choosing the reader from the content. See
/// [`super::open_with`].
pub(super) fn open_with(
    path: &Path,
    decompress: Decompress,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    if is_stdin(path) {
        return open_reader(io::stdin(), "stdin", decompress);
    }
    let naming = Naming::of(path);
    let ahead = decompress == Decompress::Ahead;
    let mut input = Peeked::new(File::open(path)?);
    input.fill_to(MAGIC_LEN);
    match Container::sniff(input.head()) {
        // Sized to the file, as the reader does when it opens the path itself.
        Container::Pnr => Ok(Box::new(RecordingReader::open(path)?)),
        Container::Zip => {
            let entry = first_zip_entry(input.into_inner())?;
            open_text(Peeked::new(entry), Container::Zip, &naming, ahead)
        }
        _ => open_stream(input, &naming, ahead),
    }
}

/// Opens a recording or capture read from `input` (a pipe, a socket, bytes in memory), choosing
/// the reader from the content as [`super::open_with`] does; `description` names it in the
/// connections. The input is read once, from the front, so a zip archive (whose directory is at
/// its end) is refused: pass its file to [`super::open_with`] instead. A cryptofeed text capture
/// read so has no `.http` companion.
pub fn open_reader<R: Read + Send + 'static>(
    input: R,
    description: &str,
    decompress: Decompress,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    let naming = Naming {
        path: None,
        description: description.to_owned(),
        venue: None,
        empty_as: None,
    };
    let mut input = Peeked::new(input);
    input.fill_to(MAGIC_LEN);
    if Container::sniff(input.head()) == Container::Zip {
        return Err(SourceError::Format {
            format: "zip",
            position: 0,
            what: String::from(
                "a zip archive cannot be read as a stream (its directory is at the end): \
                 pass the file, or its entry (`unzip -p FILE`)",
            ),
        });
    }
    open_stream(input, &naming, decompress == Decompress::Ahead)
}

/// Opens a non-zip input whose first bytes are in `input`'s head.
fn open_stream<R: Read + Send + 'static>(
    input: Peeked<R>,
    naming: &Naming,
    ahead: bool,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    match Container::sniff(input.head()) {
        Container::Pnr => Ok(Box::new(RecordingReader::new(input)?)),
        Container::Pcap | Container::Pcapng => Ok(Box::new(PcapSource::new(
            BufReader::with_capacity(1 << 20, input),
            PcapConfig::default(),
        )?)),
        Container::Gzip => open_text(
            Peeked::new(MultiGzDecoder::new(input)),
            Container::Gzip,
            naming,
            ahead,
        ),
        Container::Zstd => open_text(
            Peeked::new(zstd::stream::read::Decoder::new(input)?),
            Container::Zstd,
            naming,
            ahead,
        ),
        // Only a stream gets here with a zip, and `open_reader` refused it.
        Container::Zip | Container::Text => open_text(input, Container::Text, naming, ahead),
    }
}

/// Opens (decompressed) text, choosing the reader from its first line.
fn open_text<R: Read + Send + 'static>(
    mut input: Peeked<R>,
    container: Container,
    naming: &Naming,
    ahead: bool,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    let complete = input.fill_line(HEAD_LINE_CAP);
    let head = input.head();
    let first_len = memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1);
    let sniffed = if head.is_empty() && input.error.is_none() {
        naming.empty_as.ok_or("empty")
    } else {
        TextFormat::sniff(super::trim_line_end(&head[..first_len]), complete)
    };
    let format = match sniffed {
        Ok(format) => format,
        Err(why) => {
            let unknown = sniff::unknown(container.text_name(), why, input.head());
            // A stream that failed before its first line says more than the bytes before it.
            return Err(input.take_error(container).unwrap_or(unknown));
        }
    };
    if ahead && container.is_compressed() {
        let text = ReadAhead::spawn(input, CHUNK_BYTES, CHUNKS)?;
        build(format, text, naming)
    } else {
        build(format, BufReader::with_capacity(1 << 16, input), naming)
    }
}

/// The reader for `format` over `text`.
fn build<B: BufRead + Send + 'static>(
    format: TextFormat,
    text: B,
    naming: &Naming,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    let description = naming.description.clone();
    Ok(match format {
        TextFormat::Hbt => Box::new(HbtReader::from_buf_read(text, naming.venue, description)),
        TextFormat::JsonLines => Box::new(JsonLinesReader::new(text, None, description)),
        TextFormat::CryptofeedJsonl => Box::new(CryptofeedJsonlReader::new(text)?),
        TextFormat::CryptofeedText => {
            let http = match &naming.path {
                Some(path) => open_companion(path)?,
                None => None,
            };
            Box::new(CryptofeedTextReader::new(text, http)?)
        }
    })
}

/// An input whose first bytes have been read to see what it is; they are read again first.
///
/// An error met while peeking is kept and returned after the peeked bytes, where the reader
/// would have met it, so a truncated file fails at the record it is cut in as before.
pub(crate) struct Peeked<R> {
    head: Vec<u8>,
    /// How much of `head` has been read back.
    pos: usize,
    error: Option<io::Error>,
    /// The input ended while peeking.
    ended: bool,
    inner: R,
}

impl<R> std::fmt::Debug for Peeked<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peeked")
            .field("head", &self.head.len())
            .field("pos", &self.pos)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Peeked<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            head: Vec::new(),
            pos: 0,
            error: None,
            ended: false,
            inner,
        }
    }

    /// The bytes peeked so far.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    /// The input, once nothing of it has been read back (the peeked bytes are lost).
    fn into_inner(self) -> R {
        self.inner
    }

    /// Reads one more block into the head; `false` at the end or after an error.
    fn peek_more(&mut self) -> bool {
        if self.ended || self.error.is_some() {
            return false;
        }
        let mut block = [0u8; 8 << 10];
        loop {
            match self.inner.read(&mut block) {
                Ok(0) => {
                    self.ended = true;
                    return false;
                }
                Ok(n) => {
                    self.head.extend_from_slice(&block[..n]);
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            }
        }
    }

    /// Peeks until the head holds `n` bytes, or the input ends or fails.
    pub(crate) fn fill_to(&mut self, n: usize) {
        while self.head.len() < n && self.peek_more() {}
    }

    /// Peeks until the head holds a whole first line (or the input ends after part of one), at
    /// most `cap` bytes; `true` when the head holds the whole first line.
    fn fill_line(&mut self, cap: usize) -> bool {
        let mut searched = 0;
        loop {
            if memchr::memchr(b'\n', &self.head[searched..]).is_some() {
                return true;
            }
            searched = self.head.len();
            if self.head.len() >= cap || !self.peek_more() {
                return self.ended && self.error.is_none();
            }
        }
    }

    /// The error met while peeking, as the readers would report it at the first line.
    fn take_error(&mut self, container: Container) -> Option<SourceError> {
        let format = match container {
            Container::Gzip => "gzip",
            Container::Zstd => "zstd",
            Container::Zip => "zip",
            _ => "text",
        };
        let e = self.error.take()?;
        Some(if e.kind() == io::ErrorKind::UnexpectedEof {
            SourceError::Truncated {
                format,
                position: 1,
            }
        } else {
            SourceError::Format {
                format,
                position: 1,
                what: format!("cannot read the first line: {e}"),
            }
        })
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                // Read back whole: give the memory back (up to a MiB for a long first line).
                self.head = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.ended {
            return Ok(0);
        }
        self.inner.read(buf)
    }
}

/// The first file entry of a zip archive, decompressed as it is read and checked against its
/// CRC-32 and size at the end.
///
/// Why not the `zip` crate's own entry reader: it borrows the archive, so it cannot be handed
/// on as an owned reader (to the record reader, or to the read-ahead thread). The archive is
/// read with the crate (its central directory is the authority on where the entry is, zip64
/// and data descriptors included), and the entry's bytes then with flate2 from the file itself.
#[derive(Debug)]
pub(crate) struct ZipEntry {
    data: EntryData,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    expected_size: u64,
    size: u64,
    checked: bool,
}

#[derive(Debug)]
enum EntryData {
    Stored(io::Take<File>),
    Deflated(flate2::read::DeflateDecoder<io::Take<File>>),
}

fn zip_error(e: zip::result::ZipError) -> SourceError {
    match e {
        zip::result::ZipError::Io(e) => SourceError::Io(e),
        e => SourceError::Format {
            format: "zip",
            position: 0,
            what: e.to_string(),
        },
    }
}

fn first_zip_entry(file: File) -> Result<ZipEntry, SourceError> {
    let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
    let mut found = None;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(zip_error)?;
        if entry.is_file() {
            if entry.encrypted() {
                return Err(SourceError::Format {
                    format: "zip",
                    position: entry.header_start(),
                    what: format!("entry {:?} is encrypted", entry.name()),
                });
            }
            found = Some((
                entry.compression(),
                entry.data_start(),
                entry.compressed_size(),
                entry.size(),
                entry.crc32(),
                entry.header_start(),
            ));
            break;
        }
    }
    let Some((method, start, compressed, size, crc, header)) = found else {
        return Err(SourceError::Format {
            format: "zip",
            position: 0,
            what: String::from("the archive holds no file"),
        });
    };
    let mut file = archive.into_inner();
    file.seek(SeekFrom::Start(start))?;
    let raw = file.take(compressed);
    let data = match method {
        zip::CompressionMethod::Stored => EntryData::Stored(raw),
        zip::CompressionMethod::Deflated => {
            EntryData::Deflated(flate2::read::DeflateDecoder::new(raw))
        }
        other => {
            return Err(SourceError::Format {
                format: "zip",
                position: header,
                what: format!(
                    "the first entry is compressed with {other}: only stored and deflated entries are read"
                ),
            });
        }
    };
    Ok(ZipEntry {
        data,
        crc: crc32fast::Hasher::new(),
        expected_crc: crc,
        expected_size: size,
        size: 0,
        checked: false,
    })
}

impl Read for ZipEntry {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.data {
            EntryData::Stored(r) => r.read(buf)?,
            EntryData::Deflated(r) => r.read(buf)?,
        };
        if n > 0 {
            self.crc.update(&buf[..n]);
            self.size += n as u64;
            return Ok(n);
        }
        if buf.is_empty() || self.checked {
            return Ok(0);
        }
        self.checked = true;
        if self.size < self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "zip entry ends early",
            ));
        }
        let crc = self.crc.clone().finalize();
        if self.size != self.expected_size || crc != self.expected_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "zip entry does not match its directory: {} bytes with CRC-32 {crc:08x}, expected {} bytes with {:08x}",
                    self.size, self.expected_size, self.expected_crc
                ),
            ));
        }
        Ok(0)
    }
}
