//! Sources of [`pinion_core::RawRecord`]s: recordings in the formats found in the wild, and packet
//! captures.
//!
//! [`open`] picks the reader for a file, or for standard input, from its content (never from
//! its name), so the engine can take any recording as `--input FILE` ([`open_reader`] does the
//! same for any byte stream). The small helpers here are
//! shared by the line-based readers: exact decimal seconds to nanoseconds (never through `f64`),
//! venue from a file name (a hint only), and telling a REST depth snapshot's URL from other REST
//! requests.

pub mod cryptofeed;
pub mod fuzzing;
pub mod hbt;
pub mod json_lines;
pub mod pcap;
mod pick;
pub mod prefetch;
pub mod read_ahead;
pub mod sniff;

pub use pick::{STDIN_PATH, container_of, is_compressed, is_stdin, open_reader};

use std::io::{self, BufRead};
use std::path::Path;

use crate::error::SourceError;
use pinion_core::Venue;

/// A source of raw records: a live connection, a recording, a capture.
///
/// `next_record` lends a record that borrows the source's internal buffer; the buffer is reused,
/// so reading allocates nothing once it has grown to the largest record.
pub trait FrameSource {
    /// The connections this source has seen so far (a recording knows all of them up front;
    /// a capture may discover more as it reads).
    fn connections(&self) -> &[pinion_core::ConnInfo];

    /// The next record; `Ok(None)` at the end, or for a live source (see
    /// [`FrameSource::at_end`]) when nothing has arrived yet.
    fn next_record(&mut self) -> Result<Option<pinion_core::RawRecord<'_>>, SourceError>;

    /// Whether `Ok(None)` from [`FrameSource::next_record`] is the end of the input (a file,
    /// a capture), or only "nothing now" (a live session, which ends when it is stopped).
    fn at_end(&self) -> bool {
        true
    }

    /// For line-based formats, the line the last record or error came from: its 1-based
    /// number and its text (without the line end), for reports that point at a bad record.
    /// `None` where the format has no lines or the line is gone. Not for the hot path: called
    /// only after an error.
    fn last_line(&mut self) -> Option<SourceLine<'_>> {
        None
    }
}

/// A line of a line-based recording, as [`FrameSource::last_line`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine<'a> {
    /// 1-based line number.
    pub number: u64,
    /// The line's bytes, without the line end.
    pub text: &'a [u8],
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn connections(&self) -> &[pinion_core::ConnInfo] {
        (**self).connections()
    }

    fn next_record(&mut self) -> Result<Option<pinion_core::RawRecord<'_>>, SourceError> {
        (**self).next_record()
    }

    fn last_line(&mut self) -> Option<SourceLine<'_>> {
        (**self).last_line()
    }

    fn at_end(&self) -> bool {
        (**self).at_end()
    }
}

/// Opens a recording or capture, a file or standard input (`-`), choosing the reader from the
/// content: the first bytes, then the first line of the (decompressed) text. A recording renamed
/// to any name opens exactly as under its own; see [`sniff`] for the rules.
///
/// | content | reader |
/// |---|---|
/// | `<ns> <json>` lines, plain or gzip (`*.hbt`, `*.hbt.gz`) | [`hbt::HbtReader`] (venue from a `spot-`/`usdm-`/`coinm-` name prefix, else unknown) |
/// | JSON lines of venue messages, each optionally after a time stamp; plain, gzip, zstd or the first file of a zip (Bybit `*_ob500.data.zip`) | [`json_lines::JsonLinesReader`] (venue unknown) |
/// | a `<url> <-> <time>` first line (`*.cryptofeed.ws`) | [`cryptofeed::CryptofeedTextReader`], with the `.http` companion found by [`cryptofeed::companion_paths`], if any |
/// | cryptofeed JSONL records (`*.cryptofeed.jsonl.zst`) | [`cryptofeed::CryptofeedJsonlReader`] |
/// | pinion's magic (`*.pnr`) | [`crate::recording::RecordingReader`] |
/// | pcap or pcapng magic | [`pcap::PcapSource`] with the default [`pcap::PcapConfig`]: every WebSocket connection, server to client |
///
/// Anything else is [`SourceError::UnknownFormat`], quoting the first bytes and naming the
/// formats known. Compressed text is decompressed on the reading thread; see [`open_with`].
/// Standard input is read once, from the front: a zip cannot be read from it.
pub fn open(path: &Path) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    open_with(path, Decompress::Inline)
}

/// Where compressed text (gzip, zstd, zip) is decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decompress {
    /// On the thread that reads the records, as it reads them.
    #[default]
    Inline,
    /// On a helper thread, ahead of the reader ([`read_ahead::ReadAhead`]). The records are
    /// the same; the reading thread no longer pays for the decompression. Standard input is
    /// read ahead the same way when it is compressed.
    Ahead,
}

/// [`open`], with compressed text decompressed where `decompress` says. Other formats are read
/// the same way either way.
pub fn open_with(
    path: &Path,
    decompress: Decompress,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    pick::open_with(path, decompress)
}

/// The venue a recording's file name starts with: `spot-` (Binance Spot), `usdm-` (Binance USD-M),
/// `coinm-` (Binance COIN-M), as the hbt recordings are named.
pub fn venue_from_file_name(path: &Path) -> Option<Venue> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with("spot-") {
        Some(Venue::BinanceSpot)
    } else if name.starts_with("usdm-") {
        Some(Venue::BinanceUsdm)
    } else if name.starts_with("coinm-") {
        Some(Venue::BinanceCoinm)
    } else {
        None
    }
}

/// Whether a REST request URL asks for an order book depth snapshot (Binance `/api/v3/depth`,
/// `/fapi/v1/depth`, `/dapi/v1/depth`; Bybit `/v5/market/orderbook`), whose response a book syncs
/// from, rather than some other REST resource.
pub fn is_depth_snapshot_url(url: &[u8]) -> bool {
    let path_end = url.iter().position(|&c| c == b'?').unwrap_or(url.len());
    let path = &url[..path_end];
    [
        &b"/api/v3/depth"[..],
        b"/fapi/v1/depth",
        b"/dapi/v1/depth",
        b"/v5/market/orderbook",
    ]
    .iter()
    .any(|p| path.ends_with(p))
}

/// Decimal seconds since the epoch (`1633998512.0633569`) as nanoseconds, exactly from the
/// digits. Digits past the ninth decimal are dropped (the time is truncated to the ns). `None` for
/// anything but `digits(.digits)?` or a time past `u64` ns.
pub fn seconds_to_ns(text: &[u8]) -> Option<u64> {
    let (int, frac) = match text.iter().position(|&c| c == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    if text.contains(&b'.') && frac.is_empty() {
        return None;
    }
    let secs = parse_u64(int)?;
    let mut ns: u64 = 0;
    for i in 0..9 {
        let d = match frac.get(i) {
            Some(c) if c.is_ascii_digit() => u64::from(c - b'0'),
            Some(_) => return None,
            None => 0,
        };
        ns = ns * 10 + d;
    }
    if !frac.iter().skip(9).all(u8::is_ascii_digit) {
        return None;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// A non-empty string of ASCII digits as a `u64`; `None` when empty, not digits, or too large.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// Reads one line of a line-based recording into `buf` (see [`BufRead::read_until`]).
///
/// An error from the stream itself (input that ends inside a compressed stream, corrupt
/// compressed data, a failed read) cannot be read past: `failed` latches it, and every later call
/// reports the end (`Ok(0)`). Without that, a caller that reads on after an error would get the
/// same error forever. A malformed line is the caller's business and does not latch anything.
pub(crate) fn read_line<R: BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    failed: &mut bool,
) -> io::Result<usize> {
    if *failed {
        return Ok(0);
    }
    input.read_until(b'\n', buf).inspect_err(|_| *failed = true)
}

/// A stream error met at line `line_no`, as a format error that says so.
fn cannot_decompress(format: &'static str, line_no: u64, e: &io::Error) -> SourceError {
    SourceError::Format {
        format,
        position: line_no,
        what: format!("cannot decompress: {e}"),
    }
}

/// The lines of a buffered reader, each lent straight from the reader's buffer when it lies
/// whole in it, and copied into a spill buffer only when it straddles a refill.
///
/// Why: [`read_line`] copies every line out of the reader's buffer and finds its end with the
/// standard library's byte search; on a gzip recording that was about a fifth of the reader's
/// time beside the inflation itself. Lines are a few hundred bytes and the buffer 64 KiB, so
/// nearly every line is lent, and `memchr` finds the newline with vector instructions.
///
/// Errors latch as in [`read_line`]: after one, every call reports the end.
#[derive(Debug)]
pub(crate) struct Lines<R> {
    input: R,
    spill: Vec<u8>,
    /// Bytes of the reader's buffer lent out as the last line, consumed on the next call.
    lent: usize,
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`; `spill_capacity` is the spill buffer's starting size.
    pub(crate) fn new(input: R, spill_capacity: usize) -> Self {
        Self {
            input,
            spill: Vec::with_capacity(spill_capacity),
            lent: 0,
            failed: false,
        }
    }

    /// Moves to the next line; `false` at the end of the input and after an error.
    pub(crate) fn advance(&mut self) -> io::Result<bool> {
        self.input.consume(std::mem::take(&mut self.lent));
        self.spill.clear();
        if self.failed {
            return Ok(false);
        }
        loop {
            let (newline, available) = match self.input.fill_buf() {
                Ok(buf) => (memchr::memchr(b'\n', buf), buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            };
            if available == 0 {
                // The end: a last line without its newline is in the spill buffer.
                return Ok(!self.spill.is_empty());
            }
            match newline {
                Some(i) if self.spill.is_empty() => {
                    self.lent = i + 1;
                    return Ok(true);
                }
                Some(i) => {
                    let buf = self.input.fill_buf()?;
                    self.spill.extend_from_slice(&buf[..=i]);
                    self.input.consume(i + 1);
                    return Ok(true);
                }
                None => {
                    let buf = self.input.fill_buf()?;
                    self.spill.extend_from_slice(buf);
                    self.input.consume(available);
                }
            }
        }
    }

    /// The line [`Lines::advance`] moved to, with its `\n` (none on a last line that lacks
    /// it).
    pub(crate) fn current(&mut self) -> io::Result<&[u8]> {
        if self.lent == 0 {
            return Ok(&self.spill);
        }
        // The lent bytes are still unconsumed at the front of the reader's buffer, so this
        // only hands them back: no read happens.
        let buf = self.input.fill_buf()?;
        Ok(buf.get(..self.lent).unwrap_or(buf))
    }

    /// Moves to the next line that is not blank, counting every line read in `line_no`;
    /// `Ok(false)` at the end. An error of the stream is [`SourceError::Truncated`] when the
    /// input ends inside a compressed stream, else a [`SourceError::Format`] at the line.
    pub(crate) fn advance_past_blank(
        &mut self,
        line_no: &mut u64,
        format: &'static str,
    ) -> Result<bool, SourceError> {
        loop {
            *line_no += 1;
            let n = *line_no;
            let stream_error = |e: io::Error| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    SourceError::Truncated {
                        format,
                        position: n,
                    }
                } else {
                    cannot_decompress(format, n, &e)
                }
            };
            if !self.advance().map_err(stream_error)? {
                *line_no -= 1;
                return Ok(false);
            }
            if !trim_line_end(self.current().map_err(stream_error)?).is_empty() {
                return Ok(true);
            }
        }
    }

    /// The current line without its line end, for line `line_no` of a `format` recording.
    pub(crate) fn current_text(
        &mut self,
        line_no: u64,
        format: &'static str,
    ) -> Result<&[u8], SourceError> {
        self.current()
            .map(trim_line_end)
            .map_err(|e| cannot_decompress(format, line_no, &e))
    }
}

/// A line without its `\n` or `\r\n` ending.
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line `Lines` gives for `text` read through a buffer of `capacity` bytes.
    fn all_lines(text: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        let mut lines = Lines::new(io::BufReader::with_capacity(capacity, text), 4);
        let mut out = Vec::new();
        while lines.advance().expect("in-memory read") {
            out.push(lines.current().expect("in-memory read").to_vec());
        }
        assert!(
            !lines.advance().expect("at the end"),
            "the end stays the end"
        );
        out
    }

    #[test]
    fn lines_lent_and_spilled() {
        let text = b"first\nsecond line\n\nlast without newline";
        let want: Vec<Vec<u8>> = text
            .split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        for capacity in [1, 2, 3, 7, 64] {
            assert_eq!(all_lines(text, capacity), want, "buffer of {capacity}");
        }
        assert!(all_lines(b"", 8).is_empty());
        assert_eq!(all_lines(b"\n", 8), [b"\n".to_vec()]);
    }

    /// A reader that fails after its text.
    struct FailsAfter<'a>(&'a [u8]);

    impl io::Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_stream_error_is_reported_once_then_the_end() {
        let mut lines = Lines::new(io::BufReader::with_capacity(4, FailsAfter(b"ab\ncd")), 4);
        assert!(lines.advance().expect("first line"));
        assert_eq!(lines.current().expect("lent"), b"ab\n");
        let err = lines.advance().expect_err("cut inside the second line");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!lines.advance().expect("latched"));
    }

    proptest::proptest! {
        #[test]
        fn lines_of_any_text_through_any_buffer(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab\n\r{}".to_vec()), 0..200),
            capacity in 1usize..40,
        ) {
            let want: Vec<Vec<u8>> =
                text.split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
            proptest::prop_assert_eq!(all_lines(&text, capacity), want);
        }
    }

    #[test]
    fn seconds_convert_exactly() {
        assert_eq!(
            seconds_to_ns(b"1633998512.0633569"),
            Some(1_633_998_512_063_356_900)
        );
        assert_eq!(
            seconds_to_ns(b"1633998511"),
            Some(1_633_998_511_000_000_000)
        );
        assert_eq!(seconds_to_ns(b"1.0000000019"), Some(1_000_000_001));
        assert_eq!(
            seconds_to_ns(b"1786310819.5264041"),
            Some(1_786_310_819_526_404_100)
        );
        for bad in [
            &b""[..],
            b"1.",
            b".5",
            b"1e9",
            b"-1",
            b"1.2x",
            b"99999999999999999999",
        ] {
            assert_eq!(seconds_to_ns(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn depth_urls_are_recognised() {
        assert!(is_depth_snapshot_url(
            b"https://api.binance.com/api/v3/depth?symbol=X&limit=1000"
        ));
        assert!(is_depth_snapshot_url(
            b"https://fapi.binance.com/fapi/v1/depth?symbol=X"
        ));
        assert!(is_depth_snapshot_url(
            b"https://api.bybit.com/v5/market/orderbook?category=linear&symbol=X"
        ));
        assert!(!is_depth_snapshot_url(
            b"https://api.binance.com/api/v3/exchangeInfo"
        ));
        assert!(!is_depth_snapshot_url(
            b"https://api.bybit.com/v5/market/instruments-info?&category=spot"
        ));
    }

    #[test]
    fn file_names_give_a_venue_hint_only() {
        assert_eq!(
            venue_from_file_name(Path::new("/d/usdm-btcusdt-20240808.hbt.gz")),
            Some(Venue::BinanceUsdm)
        );
        assert_eq!(venue_from_file_name(Path::new("x.hbt.gz")), None);
        // Names say nothing about compression: files that do not exist are not compressed.
        assert!(!is_compressed(Path::new("/nonexistent/a.hbt.gz")));
        assert!(!is_compressed(Path::new(STDIN_PATH)));
        assert!(is_stdin(Path::new("-")) && !is_stdin(Path::new("./-")));
        for missing in [
            "/nonexistent/a.txt",
            "/nonexistent/a.pnr",
            "/nonexistent/a.pcap",
        ] {
            assert!(
                matches!(open(Path::new(missing)), Err(SourceError::Io(_))),
                "{missing}"
            );
        }
    }
}
