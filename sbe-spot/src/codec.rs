//! The hand-written part of the reader: bounds-checked little-endian reads, the message header,
//! repeating-group and variable-length-data walking, and the error type. The generated views
//! (`spot.rs`, written by `build.rs`) call only these.

use core::marker::PhantomData;

/// The schema id this crate reads (Binance Spot SBE, `spot_3_5.xml`).
pub const SCHEMA_ID: u16 = 3;
/// The schema version this crate was generated from. Frames of an older version are read with
/// the fields they lack as `None`; frames of a newer version are read by SBE's extension rule
/// (longer blocks skipped past, unknown groups and data after the known ones ignored).
pub const SCHEMA_VERSION: u16 = 5;
/// Size of the SBE message header: block length, template id, schema id, version (4 × `u16`).
pub const HEADER_LEN: usize = 8;

/// A frame the reader refuses: what was seen, and where (byte offsets from the frame's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SbeError {
    /// The frame ends before something it declares.
    #[error("{what} needs bytes {start}..{end}, but the frame has {len}")]
    Short {
        /// What was being read.
        what: &'static str,
        /// First byte needed.
        start: usize,
        /// One past the last byte needed.
        end: usize,
        /// The frame's length.
        len: usize,
    },
    /// The header names a schema other than [`SCHEMA_ID`].
    #[error("schema id {seen} in the header, this reader knows schema {SCHEMA_ID}")]
    WrongSchema {
        /// The schema id in the header.
        seen: u16,
    },
    /// The header names a different message than the view asked for.
    #[error("template id {seen} in the header, expected {expected}")]
    WrongTemplate {
        /// The template id in the header.
        seen: u16,
        /// The view's template id.
        expected: u16,
    },
    /// The header names a template this schema does not define.
    #[error("template id {seen} is not in schema {SCHEMA_ID}:{SCHEMA_VERSION}")]
    UnknownTemplate {
        /// The template id in the header.
        seen: u16,
    },
    /// A block (the root's or a group entry's) is shorter than its fields at the frame's version.
    #[error(
        "{what} at byte {at}: block length {seen}, but version {version} has {needed} bytes of fields"
    )]
    ShortBlock {
        /// The message or group.
        what: &'static str,
        /// Where the block starts.
        at: usize,
        /// The block length the frame declares.
        seen: u16,
        /// The fields' length at that version.
        needed: usize,
        /// The frame's schema version.
        version: u16,
    },
    /// A group declares more entries than its dimension allows, or than the frame can hold.
    #[error(
        "{what} at byte {at} declares {count} entries, more than the {room} remaining bytes can hold"
    )]
    GroupTooLong {
        /// The group.
        what: &'static str,
        /// Where its dimension header starts.
        at: usize,
        /// The entry count it declares.
        count: u32,
        /// Bytes left in the frame after its dimension header.
        room: usize,
    },
    /// A string field is not UTF-8.
    #[error("{what} at byte {at} is not UTF-8")]
    NotUtf8 {
        /// The field.
        what: &'static str,
        /// Where its bytes start.
        at: usize,
    },
}

/// A decimal carried as a 64-bit mantissa and a power-of-ten exponent: `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits.
    pub mantissa: i64,
    /// The power of ten.
    pub exponent: i8,
}

/// A decimal carried as a 128-bit mantissa and a power-of-ten exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal128 {
    /// The digits.
    pub mantissa: i128,
    /// The power of ten.
    pub exponent: i8,
}

/// The SBE message header at the start of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Length of the root block that follows the header.
    pub block_length: u16,
    /// Which message follows.
    pub template_id: u16,
    /// The schema id.
    pub schema_id: u16,
    /// The schema version the frame was encoded with.
    pub version: u16,
}

impl Header {
    /// Reads the header and checks the schema id.
    ///
    /// # Errors
    /// [`SbeError::Short`] under 8 bytes, [`SbeError::WrongSchema`] for a schema id other
    /// than [`SCHEMA_ID`].
    pub fn read(frame: &[u8]) -> Result<Self, SbeError> {
        need(frame, 0, HEADER_LEN, "message header")?;
        let header = Self {
            block_length: read_u16(frame, 0),
            template_id: read_u16(frame, 2),
            schema_id: read_u16(frame, 4),
            version: read_u16(frame, 6),
        };
        if header.schema_id != SCHEMA_ID {
            return Err(SbeError::WrongSchema {
                seen: header.schema_id,
            });
        }
        Ok(header)
    }
}

/// Checks that `buf[at..at + len]` exists.
#[inline]
pub(crate) fn need(buf: &[u8], at: usize, len: usize, what: &'static str) -> Result<(), SbeError> {
    match at.checked_add(len) {
        Some(end) if end <= buf.len() => Ok(()),
        end => Err(SbeError::Short {
            what,
            start: at,
            end: end.unwrap_or(usize::MAX),
            len: buf.len(),
        }),
    }
}

/// `N` bytes at `at`. The views check their blocks against the frame when built, so the bytes
/// are always there; if they were not, the value reads as zeros rather than panicking.
#[inline]
fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf.get(at..at.wrapping_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

macro_rules! readers {
    ($($name:ident: $t:ty),*) => {$(
        #[inline]
        pub(crate) fn $name(buf: &[u8], at: usize) -> $t {
            <$t>::from_le_bytes(array(buf, at))
        }
    )*};
}
readers!(read_u8: u8, read_i8: i8, read_u16: u16, read_i16: i16, read_u32: u32, read_i32: i32,
    read_u64: u64, read_i64: i64, read_i128: i128, read_f32: f32);

/// A repeating group's dimension header: `groupSizeEncoding` (`u16` block length, `u32` count)
/// or `groupSize16Encoding` (`u16`, `u16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    /// `groupSizeEncoding`: 6 bytes, count at most 2^31 − 1.
    Count32,
    /// `groupSize16Encoding`: 4 bytes.
    Count16,
}

/// A variable-length data field's length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    /// `u8` length.
    U8,
    /// `u16` length.
    U16,
    /// `u32` length, at most 2^31 − 1.
    U32,
}

/// One level of a message that can be read at a position: the root block or a group entry.
pub trait Level<'a>: Sized {
    /// Smallest number of bytes one entry can take (block and the length prefixes below it),
    /// so a count can be checked against the bytes left before walking.
    const MIN_LEN: usize;
    /// Reads the level whose block of `block_length` bytes starts at `at`, walking its groups
    /// and data; returns it and the position after it.
    fn parse(
        buf: &'a [u8],
        at: usize,
        block_length: u16,
        version: u16,
    ) -> Result<(Self, usize), SbeError>;
}

/// Reads a group's dimension header at `at`: block length, count, and where the entries start.
fn dim(
    buf: &[u8],
    at: usize,
    kind: Dim,
    min_len: usize,
    what: &'static str,
) -> Result<(u16, u32, usize), SbeError> {
    let (header, count) = match kind {
        Dim::Count32 => {
            need(buf, at, 6, what)?;
            (6, read_u32(buf, at + 2))
        }
        Dim::Count16 => {
            need(buf, at, 4, what)?;
            (4, u32::from(read_u16(buf, at + 2)))
        }
    };
    let block_length = read_u16(buf, at);
    let start = at + header;
    let room = buf.len() - start;
    // Each entry takes at least its block and the length prefixes of what it nests; a count that
    // cannot fit is refused before any entry is read (and bounds the walk for a hostile count).
    let per_entry = min_len.max(usize::from(block_length)).max(1);
    if count > i32::MAX as u32 || (count as usize).saturating_mul(per_entry) > room {
        return Err(SbeError::GroupTooLong {
            what,
            at,
            count,
            room,
        });
    }
    Ok((block_length, count, start))
}

/// Walks the group at `at` and returns the position after it; every entry is checked.
pub(crate) fn walk_group<'a, E: Level<'a>>(
    buf: &'a [u8],
    at: usize,
    kind: Dim,
    version: u16,
    what: &'static str,
) -> Result<usize, SbeError> {
    let (block_length, count, mut pos) = dim(buf, at, kind, E::MIN_LEN, what)?;
    for _ in 0..count {
        pos = E::parse(buf, pos, block_length, version)?.1;
    }
    Ok(pos)
}

/// Walks the data field at `at` and returns the position after it.
pub(crate) fn walk_data(
    buf: &[u8],
    at: usize,
    len: Len,
    what: &'static str,
) -> Result<usize, SbeError> {
    let (prefix, n) = data_len(buf, at, len, what)?;
    need(buf, at + prefix, n, what)?;
    Ok(at + prefix + n)
}

fn data_len(
    buf: &[u8],
    at: usize,
    len: Len,
    what: &'static str,
) -> Result<(usize, usize), SbeError> {
    Ok(match len {
        Len::U8 => {
            need(buf, at, 1, what)?;
            (1, usize::from(read_u8(buf, at)))
        }
        Len::U16 => {
            need(buf, at, 2, what)?;
            (2, usize::from(read_u16(buf, at)))
        }
        Len::U32 => {
            need(buf, at, 4, what)?;
            (4, read_u32(buf, at) as usize)
        }
    })
}

/// The bytes of the data field at `at` (already walked, so in bounds; empty if not).
#[inline]
pub(crate) fn data_bytes(buf: &[u8], at: usize, len: Len) -> &[u8] {
    match data_len(buf, at, len, "") {
        Ok((prefix, n)) => buf.get(at + prefix..at + prefix + n).unwrap_or(&[]),
        Err(_) => &[],
    }
}

/// The data field at `at` as UTF-8.
#[inline]
pub(crate) fn data_str<'a>(
    buf: &'a [u8],
    at: usize,
    len: Len,
    what: &'static str,
) -> Result<&'a str, SbeError> {
    core::str::from_utf8(data_bytes(buf, at, len)).map_err(|_| SbeError::NotUtf8 { what, at })
}

/// Checks a level's block: its declared length covers the fields its version has, and the frame
/// holds it. Returns the position after the block.
#[inline]
pub(crate) fn block(
    buf: &[u8],
    at: usize,
    block_length: u16,
    needed: usize,
    version: u16,
    what: &'static str,
) -> Result<usize, SbeError> {
    if usize::from(block_length) < needed {
        return Err(SbeError::ShortBlock {
            what,
            at,
            seen: block_length,
            needed,
            version,
        });
    }
    need(buf, at, usize::from(block_length), what)?;
    Ok(at + usize::from(block_length))
}

/// The entries of a repeating group, each read with the group's own block length (longer
/// entries' unknown fields are skipped; shorter than the known fields is an error).
#[derive(Debug, Clone)]
pub struct GroupIter<'a, E> {
    buf: &'a [u8],
    pos: usize,
    left: u32,
    block_length: u16,
    version: u16,
    _entry: PhantomData<E>,
}

impl<'a, E: Level<'a>> GroupIter<'a, E> {
    /// The group whose dimension header is at `at` (the view walked it already).
    pub(crate) fn new(
        buf: &'a [u8],
        at: usize,
        kind: Dim,
        version: u16,
        what: &'static str,
    ) -> Self {
        let (block_length, left, pos) = dim(buf, at, kind, E::MIN_LEN, what).unwrap_or((0, 0, at));
        Self {
            buf,
            pos,
            left,
            block_length,
            version,
            _entry: PhantomData,
        }
    }

    /// Entries not yet read.
    pub fn remaining(&self) -> u32 {
        self.left
    }
}

impl<'a, E: Level<'a>> Iterator for GroupIter<'a, E> {
    type Item = Result<E, SbeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        match E::parse(self.buf, self.pos, self.block_length, self.version) {
            Ok((entry, end)) => {
                self.left -= 1;
                self.pos = end;
                Some(Ok(entry))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}
