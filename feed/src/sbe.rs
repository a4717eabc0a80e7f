//! Binance Spot's binary market data: the layout of the SBE stream schema (`stream_1_0.xml`,
//! schema id 1, version 0), shared by the decoder in [`crate::parse`] and the encoder that
//! turns JSON recordings into the frames Binance would have sent.
//!
//! Every message is a little-endian 8-byte header (block length, template id, schema id,
//! version), a fixed root block, repeating groups (each with its own dimension header), then
//! the symbol as a length-prefixed string. Times are microseconds; prices and quantities are
//! 64-bit mantissas with one exponent per message for each.
//!
//! SBE's extension rule: a newer schema version may append fields to a block, so a reader
//! takes the block length from the header (or the group's dimension) and skips what it does
//! not know, but never accepts a block shorter than the fields it reads.

/// The schema id every stream message carries in its header.
pub const SCHEMA_ID: u16 = 1;
/// The schema version this layout was written for.
pub const SCHEMA_VERSION: u16 = 0;
/// Bytes of the message header.
pub const HEADER_LEN: usize = 8;
/// Bytes of a `groupSizeEncoding` dimension (u16 block length, u32 count): the trades group.
pub const GROUP_SIZE_LEN: usize = 6;
/// Bytes of a `groupSize16Encoding` dimension (u16 block length, u16 count): depth groups.
pub const GROUP_SIZE16_LEN: usize = 4;

/// The stream schema's messages, by template id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Template {
    /// `TradesStreamEvent` (`<symbol>@trade`): one or more trades.
    Trades = 10000,
    /// `BestBidAskStreamEvent` (`<symbol>@bestBidAsk`): the top of the book.
    BestBidAsk = 10001,
    /// `DepthSnapshotStreamEvent` (`<symbol>@depth<N>`): the top N levels.
    DepthSnapshot = 10002,
    /// `DepthDiffStreamEvent` (`<symbol>@depth`): changed levels between two update ids.
    DepthDiff = 10003,
}

impl Template {
    /// The template of `id`, if the schema has one.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            10000 => Some(Self::Trades),
            10001 => Some(Self::BestBidAsk),
            10002 => Some(Self::DepthSnapshot),
            10003 => Some(Self::DepthDiff),
            _ => None,
        }
    }

    /// Bytes of the root block's fields known to version [`SCHEMA_VERSION`].
    pub const fn block_len(self) -> u16 {
        match self {
            // eventTime, transactTime, priceExponent, qtyExponent
            Self::Trades => 8 + 8 + 1 + 1,
            // eventTime, bookUpdateId, 2 exponents, bid price/qty, ask price/qty
            Self::BestBidAsk => 8 + 8 + 1 + 1 + 4 * 8,
            // eventTime, bookUpdateId, 2 exponents
            Self::DepthSnapshot => 8 + 8 + 1 + 1,
            // eventTime, firstBookUpdateId, lastBookUpdateId, 2 exponents
            Self::DepthDiff => 8 + 8 + 8 + 1 + 1,
        }
    }
}

impl Template {
    /// The 8 header bytes, read as one little-endian `u64`, of this template as this layout
    /// writes it: the root block exactly [`Template::block_len`], schema [`SCHEMA_ID`], version
    /// [`SCHEMA_VERSION`]. A decoder compares a frame's first word with it to take the path
    /// that knows every offset (one comparison for the header's four fields).
    pub const fn header_word(self) -> u64 {
        self.block_len() as u64
            | (self as u64) << 16
            | (SCHEMA_ID as u64) << 32
            | (SCHEMA_VERSION as u64) << 48
    }
}

/// Bytes of one entry of the trades group: id, price, qty, isBuyerMaker (`isBestMatch` is a
/// constant and takes no space).
pub const TRADE_ENTRY_LEN: u16 = 8 + 8 + 8 + 1;
/// Bytes of one entry of a bids or asks group: price, qty.
pub const LEVEL_ENTRY_LEN: u16 = 8 + 8;

/// A message header as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Bytes of the root block that follows.
    pub block_len: u16,
    /// The message type.
    pub template_id: u16,
    /// The schema the message belongs to.
    pub schema_id: u16,
    /// The schema version the sender used.
    pub version: u16,
}

impl MessageHeader {
    /// The header at the start of `frame`, if it is long enough to hold one.
    #[inline]
    pub fn read(frame: &[u8]) -> Option<Self> {
        let h: &[u8; HEADER_LEN] = frame.get(..HEADER_LEN)?.try_into().ok()?;
        let at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        Some(Self {
            block_len: at(0),
            template_id: at(2),
            schema_id: at(4),
            version: at(6),
        })
    }

    /// The header's bytes as they go on the wire.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..2].copy_from_slice(&self.block_len.to_le_bytes());
        out[2..4].copy_from_slice(&self.template_id.to_le_bytes());
        out[4..6].copy_from_slice(&self.schema_id.to_le_bytes());
        out[6..8].copy_from_slice(&self.version.to_le_bytes());
        out
    }
}

/// Whether `frame` is a message of the stream schema rather than JSON text: it has a header
/// naming schema [`SCHEMA_ID`]. A JSON frame cannot pass: its first byte is `{`, `[` or
/// whitespace, which makes a block length whose schema-id bytes are text too, never `01 00`.
/// A frame that passes is not yet known to be well formed; the decoder checks the rest.
#[inline]
pub fn is_stream_message(frame: &[u8]) -> bool {
    MessageHeader::read(frame).is_some_and(|h| h.schema_id == SCHEMA_ID)
}

/// Why a frame is not a well-formed stream message. Every variant says what was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbeError {
    /// The frame ends before the part named: `need` bytes from `at`, `len` in the frame.
    Truncated {
        /// The part being read.
        part: Part,
        /// Where it starts.
        at: usize,
        /// Bytes it needs.
        need: usize,
        /// Bytes in the frame.
        len: usize,
    },
    /// The header names another schema.
    WrongSchema {
        /// The schema id seen.
        schema_id: u16,
    },
    /// A template this schema does not define (counted and skipped by the decoder, not fatal).
    UnknownTemplate {
        /// The template id seen.
        template_id: u16,
    },
    /// A block or group entry shorter than the fields this schema version reads from it.
    ShortBlock {
        /// The part being read.
        part: Part,
        /// Its length on the wire.
        len: u16,
        /// The fields' length.
        min: u16,
    },
    /// A repeating group's count larger than the schema allows (`maxValue`).
    GroupCount {
        /// The part being read.
        part: Part,
        /// The count seen.
        count: u32,
    },
    /// An `isBuyerMaker` that is neither 0 nor 1.
    BadBool {
        /// The byte seen.
        value: u8,
    },
    /// Bytes left after the symbol in a message of the version this layout was written for.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// The parts of a message, named in [`SbeError`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The 8-byte message header.
    Header,
    /// The root block.
    Block,
    /// A group's dimension header.
    GroupHeader,
    /// The trades group's entries.
    Trades,
    /// The bids group's entries.
    Bids,
    /// The asks group's entries.
    Asks,
    /// The symbol string.
    Symbol,
}

impl std::fmt::Display for SbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Truncated {
                part,
                at,
                need,
                len,
            } => write!(
                f,
                "SBE frame of {len} bytes ends inside the {part:?} ({need} bytes at {at})"
            ),
            Self::WrongSchema { schema_id } => write!(
                f,
                "SBE header names schema {schema_id}, not the stream schema {SCHEMA_ID}"
            ),
            Self::UnknownTemplate { template_id } => {
                write!(f, "SBE template {template_id} is not in the stream schema")
            }
            Self::ShortBlock { part, len, min } => write!(
                f,
                "SBE {part:?} of {len} bytes is shorter than its {min} bytes of fields"
            ),
            Self::GroupCount { part, count } => {
                write!(
                    f,
                    "SBE {part:?} group count {count} is above the schema's maximum"
                )
            }
            Self::BadBool { value } => write!(f, "SBE boolean byte {value} is neither 0 nor 1"),
            Self::TrailingBytes { extra } => {
                write!(f, "{extra} bytes after the end of an SBE message")
            }
        }
    }
}

impl std::error::Error for SbeError {}

/// One stream message read from a frame, borrowing it: nothing is copied.
#[derive(Clone, Copy, Debug)]
pub enum StreamMessage<'a> {
    /// `TradesStreamEvent`.
    Trades(Trades<'a>),
    /// `BestBidAskStreamEvent`.
    BestBidAsk(BestBidAsk<'a>),
    /// `DepthSnapshotStreamEvent` (`first_update_id` is 0: the message has none).
    DepthSnapshot(Depth<'a>),
    /// `DepthDiffStreamEvent`.
    DepthDiff(Depth<'a>),
}

impl<'a> StreamMessage<'a> {
    /// The symbol the message is about, as sent (UTF-8, upper case on Binance).
    pub fn symbol(&self) -> &'a [u8] {
        match self {
            Self::Trades(m) => m.symbol,
            Self::BestBidAsk(m) => m.symbol,
            Self::DepthSnapshot(m) | Self::DepthDiff(m) => m.symbol,
        }
    }

    /// The message's price and quantity exponents.
    pub fn exponents(&self) -> (i8, i8) {
        match self {
            Self::Trades(m) => (m.price_exp, m.qty_exp),
            Self::BestBidAsk(m) => (m.price_exp, m.qty_exp),
            Self::DepthSnapshot(m) | Self::DepthDiff(m) => (m.price_exp, m.qty_exp),
        }
    }
}

/// A `TradesStreamEvent`.
#[derive(Clone, Copy, Debug)]
pub struct Trades<'a> {
    /// Event time, µs since the epoch.
    pub event_time_us: i64,
    /// Match time, µs since the epoch.
    pub transact_time_us: i64,
    /// Exponent of every price mantissa.
    pub price_exp: i8,
    /// Exponent of every quantity mantissa.
    pub qty_exp: i8,
    /// The trades.
    pub trades: Entries<'a>,
    /// The symbol.
    pub symbol: &'a [u8],
}

/// One entry of a trades group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeEntry {
    /// Trade id.
    pub id: i64,
    /// Price mantissa.
    pub price: i64,
    /// Quantity mantissa.
    pub qty: i64,
    /// Whether the buyer was the maker.
    pub buyer_maker: bool,
}

/// A `BestBidAskStreamEvent`.
#[derive(Clone, Copy, Debug)]
pub struct BestBidAsk<'a> {
    /// Event time, µs since the epoch.
    pub event_time_us: i64,
    /// The book update id the top belongs to.
    pub book_update_id: i64,
    /// Exponent of the price mantissas.
    pub price_exp: i8,
    /// Exponent of the quantity mantissas.
    pub qty_exp: i8,
    /// Best bid price mantissa.
    pub bid_price: i64,
    /// Best bid quantity mantissa.
    pub bid_qty: i64,
    /// Best ask price mantissa.
    pub ask_price: i64,
    /// Best ask quantity mantissa.
    pub ask_qty: i64,
    /// The symbol.
    pub symbol: &'a [u8],
}

/// A `DepthSnapshotStreamEvent` or `DepthDiffStreamEvent`.
#[derive(Clone, Copy, Debug)]
pub struct Depth<'a> {
    /// Event time, µs since the epoch.
    pub event_time_us: i64,
    /// First update id of a diff; 0 for a snapshot.
    pub first_update_id: i64,
    /// Last update id (the snapshot's `bookUpdateId`).
    pub last_update_id: i64,
    /// Exponent of the price mantissas.
    pub price_exp: i8,
    /// Exponent of the quantity mantissas.
    pub qty_exp: i8,
    /// Bid levels (price, quantity mantissas), best first as sent.
    pub bids: Entries<'a>,
    /// Ask levels.
    pub asks: Entries<'a>,
    /// The symbol.
    pub symbol: &'a [u8],
}

/// A repeating group's entries, bounds-checked when read: `count` entries `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct Entries<'a> {
    data: &'a [u8],
    stride: usize,
    count: usize,
}

impl<'a> Entries<'a> {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entry `i` of a bids or asks group: (price, quantity) mantissas.
    #[inline(always)]
    pub fn level(&self, i: usize) -> (i64, i64) {
        let e = &self.data[i * self.stride..];
        (i64_at(e, 0), i64_at(e, 8))
    }

    /// The levels in order.
    pub fn levels(&self) -> impl ExactSizeIterator<Item = (i64, i64)> + 'a {
        let this = *self;
        (0..self.count).map(move |i| this.level(i))
    }

    /// Entry `i` of a trades group. Its boolean was checked when the message was read.
    #[inline(always)]
    pub fn trade(&self, i: usize) -> TradeEntry {
        let e = &self.data[i * self.stride..];
        TradeEntry {
            id: i64_at(e, 0),
            price: i64_at(e, 8),
            qty: i64_at(e, 16),
            buyer_maker: e[24] == 1,
        }
    }

    /// The trades in order.
    pub fn trades(&self) -> impl ExactSizeIterator<Item = TradeEntry> + 'a {
        let this = *self;
        (0..self.count).map(move |i| this.trade(i))
    }
}

/// The little-endian `i64` at `at`; the caller has checked the bounds (the slice check below
/// stays, and a slice of 8 always converts). One load where inlined, which the hot loops need.
#[inline(always)]
fn i64_at(b: &[u8], at: usize) -> i64 {
    b[at..at + 8].try_into().map_or(0, i64::from_le_bytes)
}

#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A bounds-checked cursor over one frame.
struct Cursor<'a> {
    frame: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn take(&mut self, part: Part, need: usize) -> Result<&'a [u8], SbeError> {
        let end = self
            .at
            .checked_add(need)
            .filter(|&end| end <= self.frame.len())
            .ok_or(SbeError::Truncated {
                part,
                at: self.at,
                need,
                len: self.frame.len(),
            })?;
        let out = &self.frame[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// A group: its dimension header (`wide`: u32 count, else u16), then its entries, each at
    /// least `min_entry` bytes (longer ones are a newer version's: the extra is skipped).
    #[inline(always)]
    fn group(&mut self, part: Part, wide: bool, min_entry: u16) -> Result<Entries<'a>, SbeError> {
        let dim = self.take(
            Part::GroupHeader,
            if wide {
                GROUP_SIZE_LEN
            } else {
                GROUP_SIZE16_LEN
            },
        )?;
        let stride = u16_at(dim, 0);
        let count = if wide {
            u32::from_le_bytes([dim[2], dim[3], dim[4], dim[5]])
        } else {
            u32::from(u16_at(dim, 2))
        };
        if count > i32::MAX as u32 {
            return Err(SbeError::GroupCount { part, count });
        }
        if stride < min_entry {
            return Err(SbeError::ShortBlock {
                part,
                len: stride,
                min: min_entry,
            });
        }
        let bytes = (count as usize)
            .checked_mul(usize::from(stride))
            .ok_or(SbeError::GroupCount { part, count })?;
        let data = self.take(part, bytes)?;
        Ok(Entries {
            data,
            stride: usize::from(stride),
            count: count as usize,
        })
    }

    #[inline]
    fn symbol(&mut self) -> Result<&'a [u8], SbeError> {
        let len = self.take(Part::Symbol, 1)?[0];
        self.take(Part::Symbol, usize::from(len))
    }
}

/// Reads one stream message from `frame`, checking every length against the frame: the
/// header (schema id; any version, a newer one's longer blocks and trailing data skipped),
/// the root block, each group's dimensions and entries, and the symbol. Never panics.
///
/// Always inlined: returned through memory, the message's narrow fields (the exponents) are
/// read back wider than they were written, a store-forwarding stall that cost more than the
/// rest of a best bid/ask's decoding; inlined, they stay in registers.
#[inline(always)]
pub fn read(frame: &[u8]) -> Result<StreamMessage<'_>, SbeError> {
    let mut cur = Cursor { frame, at: 0 };
    let header =
        MessageHeader::read(cur.take(Part::Header, HEADER_LEN)?).ok_or(SbeError::Truncated {
            part: Part::Header,
            at: 0,
            need: HEADER_LEN,
            len: frame.len(),
        })?;
    if header.schema_id != SCHEMA_ID {
        return Err(SbeError::WrongSchema {
            schema_id: header.schema_id,
        });
    }
    let template = Template::from_id(header.template_id).ok_or(SbeError::UnknownTemplate {
        template_id: header.template_id,
    })?;
    if header.block_len < template.block_len() {
        return Err(SbeError::ShortBlock {
            part: Part::Block,
            len: header.block_len,
            min: template.block_len(),
        });
    }
    let b = cur.take(Part::Block, usize::from(header.block_len))?;
    let msg = match template {
        Template::Trades => {
            let trades = cur.group(Part::Trades, true, TRADE_ENTRY_LEN)?;
            for i in 0..trades.count {
                let value = trades.data[i * trades.stride + 24];
                if value > 1 {
                    return Err(SbeError::BadBool { value });
                }
            }
            StreamMessage::Trades(Trades {
                event_time_us: i64_at(b, 0),
                transact_time_us: i64_at(b, 8),
                price_exp: b[16] as i8,
                qty_exp: b[17] as i8,
                trades,
                symbol: cur.symbol()?,
            })
        }
        Template::BestBidAsk => StreamMessage::BestBidAsk(BestBidAsk {
            event_time_us: i64_at(b, 0),
            book_update_id: i64_at(b, 8),
            price_exp: b[16] as i8,
            qty_exp: b[17] as i8,
            bid_price: i64_at(b, 18),
            bid_qty: i64_at(b, 26),
            ask_price: i64_at(b, 34),
            ask_qty: i64_at(b, 42),
            symbol: cur.symbol()?,
        }),
        Template::DepthSnapshot => {
            let bids = cur.group(Part::Bids, false, LEVEL_ENTRY_LEN)?;
            let asks = cur.group(Part::Asks, false, LEVEL_ENTRY_LEN)?;
            StreamMessage::DepthSnapshot(Depth {
                event_time_us: i64_at(b, 0),
                first_update_id: 0,
                last_update_id: i64_at(b, 8),
                price_exp: b[16] as i8,
                qty_exp: b[17] as i8,
                bids,
                asks,
                symbol: cur.symbol()?,
            })
        }
        Template::DepthDiff => {
            let bids = cur.group(Part::Bids, false, LEVEL_ENTRY_LEN)?;
            let asks = cur.group(Part::Asks, false, LEVEL_ENTRY_LEN)?;
            StreamMessage::DepthDiff(Depth {
                event_time_us: i64_at(b, 0),
                first_update_id: i64_at(b, 8),
                last_update_id: i64_at(b, 16),
                price_exp: b[24] as i8,
                qty_exp: b[25] as i8,
                bids,
                asks,
                symbol: cur.symbol()?,
            })
        }
    };
    let extra = frame.len() - cur.at;
    // A newer version may append data after the last field this one knows.
    let newer = header.version > SCHEMA_VERSION;
    if extra > 0 && !newer {
        return Err(SbeError::TrailingBytes { extra });
    }
    Ok(msg)
}

/// `mantissa × 10^exponent` as an integer count of `10^-decimals` units (a [`pinion_core::Px`] or
/// [`pinion_core::Qty`] at that scale), exactly; `None` when the value has digits below the
/// scale or does not fit in an `i64`. [`Scale`] is the same with the per-exponent work done
/// once for a message's values.
#[inline(always)]
pub fn scaled(mantissa: i64, exponent: i8, decimals: u8) -> Option<i64> {
    Scale::new(exponent, decimals).apply(mantissa)
}

/// The conversion of one exponent's mantissas to a scale of `decimals`, prepared once per
/// message: a multiplication by a power of ten, or an exact division by one done as a mask
/// test, a shift and a multiplication by the modular inverse of its odd part (no division
/// instruction in the per-value work).
///
/// Signed, so the general path can tell a negative value (out of range) from an inexact one;
/// the fast paths, which only need a verdict, use the branch-free [`UnsignedScale`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale(ScaleKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScaleKind {
    /// Multiply by this power of ten (1 when the scales agree).
    Mul(i64),
    /// Divide by `10^k = 2^k · 5^k`: the low `k` bits must be zero, then the rest, times the
    /// inverse of `5^k` modulo 2^64, is the quotient if it is within `±bound` (= `i64::MAX /
    /// 5^k`); outside it the value was not a multiple.
    Div {
        /// `k`.
        k: u32,
        /// The inverse of `5^k` modulo 2^64.
        inv: u64,
        /// `i64::MAX / 5^k`.
        bound: i64,
    },
    /// The shift is past every power of ten an `i64` holds: only zero is representable.
    ZeroOnly,
}

impl Scale {
    /// The conversion of mantissas with `exponent` to `decimals` decimals.
    #[inline]
    pub fn new(exponent: i8, decimals: u8) -> Self {
        let shift = i32::from(exponent) + i32::from(decimals);
        Self(match usize::try_from(shift) {
            Ok(s) => POW10
                .get(s)
                .map_or(ScaleKind::ZeroOnly, |&p| ScaleKind::Mul(p)),
            Err(_) => {
                let k = shift.unsigned_abs();
                match (INV5.get(k as usize), BOUND5.get(k as usize)) {
                    (Some(&inv), Some(&bound)) => ScaleKind::Div { k, inv, bound },
                    _ => ScaleKind::ZeroOnly,
                }
            }
        })
    }

    /// `mantissa` at the scale, exactly, or `None`.
    #[inline(always)]
    pub fn apply(self, mantissa: i64) -> Option<i64> {
        let (value, ok) = match self.0 {
            ScaleKind::Mul(p) => {
                let (value, overflow) = mantissa.overflowing_mul(p);
                (value, !overflow)
            }
            ScaleKind::Div { k, inv, bound } => {
                let exact = mantissa & ((1i64 << k) - 1) == 0;
                let q = ((mantissa >> k) as u64).wrapping_mul(inv) as i64;
                (q, exact & (-bound <= q) & (q <= bound))
            }
            ScaleKind::ZeroOnly => (0, mantissa == 0),
        };
        ok.then_some(value)
    }
}

/// 10^0 ..= 10^18, every power of ten an `i64` holds.
const POW10: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 5^0 ..= 5^18.
const POW5: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 5;
        i += 1;
    }
    t
};

/// `i64::MAX / 5^k` for k in 0..=18: the largest quotient of an exact division by `10^k`.
const BOUND5: [i64; 19] = {
    let mut t = [0i64; 19];
    let mut i = 0;
    while i < 19 {
        t[i] = i64::MAX / POW5[i];
        i += 1;
    }
    t
};

/// The inverses of 5^0 ..= 5^18 modulo 2^64.
const INV5: [u64; 19] = {
    let mut t = [1u64; 19];
    let mut i = 0;
    while i < 19 {
        t[i] = inverse_mod_2_64(POW5[i] as u64);
        i += 1;
    }
    t
};

/// The inverse of odd `a` modulo 2^64 (Newton's iteration: each step doubles the correct
/// low bits, from 3 correct for any odd `a`).
const fn inverse_mod_2_64(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// [`Scale`] for values that may not be negative (prices, quantities), with no branch at all:
/// the fast paths' conversion. Every kind is one multiplication, one rotation and two
/// unsigned comparisons:
///
/// - to a coarser-or-equal scale (multiply by `10^s`): the mantissa must be at most
///   `i64::MAX / 10^s` (which, compared unsigned, also refuses a negative one), then the
///   product cannot overflow;
/// - to a finer scale (divide by `10^k = 2^k · 5^k`): the mantissa must not be negative, and
///   `m · inv(5^k)` rotated right by `k` is at most `u64::MAX / 10^k` exactly when `10^k`
///   divides `m`, and is then the quotient (the divisibility test of Granlund and Montgomery);
/// - a shift past every power of ten an `i64` holds: only zero.
///
/// `apply_flagged` agrees with [`Scale::apply`] on every non-negative mantissa and flags every
/// negative one as not representable; a caller that must name the fault (negative, or not
/// exact) asks [`Scale`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsignedScale {
    /// `10^s`, or the inverse of `5^k` modulo 2^64.
    factor: u64,
    /// `k` (0 when multiplying).
    rotate: u32,
    /// The largest mantissa taken.
    max_in: u64,
    /// The largest result that proves the division exact (`u64::MAX` when multiplying).
    max_out: u64,
}

impl UnsignedScale {
    /// The conversion of mantissas with `exponent` to `decimals` decimals.
    #[inline(always)]
    pub fn new(exponent: i8, decimals: u8) -> Self {
        let shift = i32::from(exponent) + i32::from(decimals);
        // The mantissa as it is: any but zero is above both limits.
        const ZERO_ONLY: UnsignedScale = UnsignedScale {
            factor: 1,
            rotate: 0,
            max_in: 0,
            max_out: 0,
        };
        if shift >= 0 {
            match MUL_MAX_IN.get(shift as usize) {
                Some(&max_in) => Self {
                    factor: POW10[shift as usize] as u64,
                    rotate: 0,
                    max_in,
                    max_out: u64::MAX,
                },
                None => ZERO_ONLY,
            }
        } else {
            let k = shift.unsigned_abs();
            match (INV5.get(k as usize), DIV_MAX_OUT.get(k as usize)) {
                (Some(&factor), Some(&max_out)) => Self {
                    factor,
                    rotate: k,
                    max_in: i64::MAX as u64,
                    max_out,
                },
                _ => ZERO_ONLY,
            }
        }
    }

    /// `mantissa` at the scale and whether it is exact and not negative (the value is
    /// meaningless when not).
    #[inline(always)]
    pub fn apply_flagged(self, mantissa: i64) -> (i64, bool) {
        let m = mantissa as u64;
        let value = m.wrapping_mul(self.factor).rotate_right(self.rotate);
        (value as i64, (m <= self.max_in) & (value <= self.max_out))
    }

    /// `mantissa` at the scale, unchecked; `seen` takes in what [`UnsignedScale::admits`] later
    /// checks for a whole run of values at once (two running maxima: cheaper per value than a
    /// flag of two comparisons). With `nonzero`, a zero mantissa is refused too.
    #[inline(always)]
    pub fn apply_tracked(self, mantissa: i64, nonzero: bool, seen: Seen) -> (i64, Seen) {
        let m = mantissa as u64;
        let value = m.wrapping_mul(self.factor).rotate_right(self.rotate);
        // A zero becomes u64::MAX, above every limit; every other mantissa one less, checked
        // against one less.
        let key = m.wrapping_sub(u64::from(nonzero));
        let seen = Seen {
            mantissa: seen.mantissa.max(key),
            value: seen.value.max(value),
        };
        (value as i64, seen)
    }

    /// Whether every value [`UnsignedScale::apply_tracked`] took into `seen` (with the same
    /// `nonzero`) was exact and not negative, and not zero when `nonzero`: what
    /// [`UnsignedScale::apply_flagged`] says of each (and of its zero test), for all at once.
    #[inline(always)]
    pub fn admits(self, nonzero: bool, seen: Seen) -> bool {
        // Every limit but the zero-only scale's is at least 1; that one refuses every
        // mantissa but zero by its value, and zero by the wrapped key.
        (seen.mantissa <= self.max_in.saturating_sub(u64::from(nonzero)))
            & (seen.value <= self.max_out)
    }
}

/// What [`UnsignedScale::apply_tracked`] has seen of a run of values: the largest mantissa
/// (as unsigned, so a negative one is huge) and the largest result. Start from
/// `Seen::default()`; an empty run is admitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    mantissa: u64,
    value: u64,
}

/// `i64::MAX / 10^s` for s in 0..=18: the largest mantissa that a multiplication by `10^s`
/// keeps within an `i64`.
const MUL_MAX_IN: [u64; 19] = {
    let mut t = [0u64; 19];
    let mut i = 0;
    while i < 19 {
        t[i] = (i64::MAX / POW10[i]) as u64;
        i += 1;
    }
    t
};

/// `u64::MAX / 10^k` for k in 0..=18: the largest quotient of an exact division by `10^k`
/// that the divisibility test admits.
const DIV_MAX_OUT: [u64; 19] = {
    let mut t = [0u64; 19];
    let mut i = 0;
    while i < 19 {
        t[i] = u64::MAX / POW10[i] as u64;
        i += 1;
    }
    t
};

/// The fewest decimals that represent `mantissa × 10^exponent` exactly (0 for integers):
/// what a recording's numbers say about an instrument's scale.
pub fn decimals_needed(mantissa: i64, exponent: i8) -> u8 {
    if mantissa == 0 || exponent >= 0 {
        return 0;
    }
    let mut m = mantissa;
    let mut d = exponent.unsigned_abs();
    while d > 0 && m % 10 == 0 {
        m /= 10;
        d -= 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_runs_are_admitted_exactly_when_every_value_is() {
        let runs: [&[i64]; 9] = [
            &[],
            &[0],
            &[5_000_000, 6_168_599_000_000, 1_000_000],
            &[5_000_000, 6_168_599_000_001],
            &[5_000_000, -1_000_000],
            &[i64::MAX, 1_000_000],
            &[1_000_000, 0, 2_000_000],
            &[i64::MIN],
            &[10, 20, 30],
        ];
        for exponent in [-20i8, -8, -6, -2, 0, 3, 19] {
            for decimals in [0u8, 2, 6, 8, 18] {
                let scale = UnsignedScale::new(exponent, decimals);
                for run in runs {
                    for nonzero in [false, true] {
                        let mut seen = Seen::default();
                        let mut want = true;
                        for &m in run {
                            let (value, next) = scale.apply_tracked(m, nonzero, seen);
                            seen = next;
                            let (flagged, ok) = scale.apply_flagged(m);
                            want &= ok & (!nonzero | (m != 0));
                            if ok {
                                assert_eq!(value, flagged);
                            }
                        }
                        assert_eq!(
                            scale.admits(nonzero, seen),
                            want,
                            "{run:?} at 10^{exponent} to {decimals} decimals, nonzero {nonzero}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unsigned_scale_agrees_with_scale_on_non_negative_values() {
        let mut mantissas = vec![
            0i64,
            1,
            5,
            9,
            10,
            99,
            100,
            12_345_000,
            i64::MAX,
            i64::MAX - 7,
        ];
        for p in 0..19 {
            let t = 10i64.pow(p);
            mantissas.extend([
                t,
                t - 1,
                t.saturating_add(1),
                t.saturating_mul(3),
                t.saturating_mul(7),
                i64::MAX / t,
            ]);
            mantissas.extend([
                (i64::MAX / t).saturating_add(1),
                (i64::MAX / t) * t,
                (i64::MAX / t) * t - t,
            ]);
        }
        // A cheap generator for the rest: a 64-bit LCG, each value also rounded to a multiple
        // of powers of ten so exact divisions are common.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = (x >> 1) as i64 >> (x % 60);
            let p = 10i64.pow((x >> 40) as u32 % 19);
            mantissas.extend([v, v / p * p]);
        }
        for exponent in [
            -128i8, -40, -20, -19, -18, -12, -9, -8, -6, -2, -1, 0, 1, 2, 8, 18, 19, 127,
        ] {
            for decimals in [0u8, 1, 2, 6, 8, 12, 18, 19, 30, 255] {
                let (signed, unsigned) = (
                    Scale::new(exponent, decimals),
                    UnsignedScale::new(exponent, decimals),
                );
                for &m in &mantissas {
                    let (value, ok) = unsigned.apply_flagged(m);
                    let (neg_value, neg_ok) = unsigned.apply_flagged(-m);
                    let want = signed.apply(m);
                    assert_eq!(
                        ok.then_some(value),
                        want,
                        "{m} at 10^{exponent} to {decimals} decimals"
                    );
                    assert!(m == 0 || !neg_ok, "{} accepted ({neg_value})", -m);
                }
                assert!(!unsigned.apply_flagged(i64::MIN).1);
            }
        }
    }

    /// `BTCUSDT` as a varString8.
    const SYM: [u8; 8] = [7, b'B', b'T', b'C', b'U', b'S', b'D', b'T'];

    fn le(v: i64) -> [u8; 8] {
        v.to_le_bytes()
    }

    /// A diff of one bid (61685.99 × 1.0087) and no ask, update ids 100..=102, built byte by
    /// byte from the schema.
    fn golden_diff() -> Vec<u8> {
        let mut f = vec![26, 0, 0x13, 0x27, 1, 0, 0, 0];
        f.extend(le(1_723_075_200_123_456)); // eventTime µs
        f.extend(le(100)); // firstBookUpdateId
        f.extend(le(102)); // lastBookUpdateId
        f.extend([0xF8, 0xF8]); // exponents −8, −8
        f.extend([16, 0, 1, 0]); // bids: blockLength 16, 1 entry
        f.extend(le(6_168_599_000_000));
        f.extend(le(100_870_000));
        f.extend([16, 0, 0, 0]); // asks: none
        f.extend(SYM);
        f
    }

    #[test]
    fn golden_frames_of_each_template() {
        let frame = golden_diff();
        let StreamMessage::DepthDiff(d) = read(&frame).unwrap() else {
            panic!("not a diff")
        };
        assert_eq!(d.event_time_us, 1_723_075_200_123_456);
        assert_eq!((d.first_update_id, d.last_update_id), (100, 102));
        assert_eq!((d.price_exp, d.qty_exp), (-8, -8));
        assert_eq!(
            d.bids.levels().collect::<Vec<_>>(),
            [(6_168_599_000_000, 100_870_000)]
        );
        assert!(d.asks.is_empty());
        assert_eq!(d.symbol, b"BTCUSDT");
        assert_eq!(scaled(6_168_599_000_000, -8, 2), Some(6_168_599));
        assert_eq!(scaled(100_870_000, -8, 5), Some(100_870));

        // Trades: two trades, the second with the buyer as maker.
        let mut f = vec![18, 0, 0x10, 0x27, 1, 0, 0, 0];
        f.extend(le(11));
        f.extend(le(10));
        f.extend([0xFE, 0xFB]); // −2, −5
        f.extend([25, 0, 2, 0, 0, 0]);
        for (id, px, qty, maker) in [(7, 6_168_600, 12_000, 0u8), (8, 6_168_599, 1, 1)] {
            f.extend(le(id));
            f.extend(le(px));
            f.extend(le(qty));
            f.push(maker);
        }
        f.extend(SYM);
        let StreamMessage::Trades(t) = read(&f).unwrap() else {
            panic!("not trades")
        };
        assert_eq!((t.event_time_us, t.transact_time_us), (11, 10));
        assert_eq!((t.price_exp, t.qty_exp), (-2, -5));
        let trades: Vec<_> = t.trades.trades().collect();
        assert_eq!(trades.len(), 2);
        assert_eq!(
            trades[1],
            TradeEntry {
                id: 8,
                price: 6_168_599,
                qty: 1,
                buyer_maker: true
            }
        );
        assert!(!trades[0].buyer_maker);

        // Best bid/ask.
        let mut f = vec![50, 0, 0x11, 0x27, 1, 0, 0, 0];
        for v in [5, 77] {
            f.extend(le(v));
        }
        f.extend([0xFE, 0xFD]);
        for v in [6_168_599, 1_009, 6_168_600, 2_293] {
            f.extend(le(v));
        }
        f.extend(SYM);
        let StreamMessage::BestBidAsk(b) = read(&f).unwrap() else {
            panic!("not best bid/ask")
        };
        assert_eq!((b.event_time_us, b.book_update_id), (5, 77));
        assert_eq!(
            (b.bid_price, b.bid_qty, b.ask_price, b.ask_qty),
            (6_168_599, 1_009, 6_168_600, 2_293)
        );

        // Partial depth: a newer version's longer block and level entries are skipped.
        let mut f = vec![20, 0, 0x12, 0x27, 1, 0, 1, 0];
        f.extend(le(9));
        f.extend(le(55));
        f.extend([0xFE, 0xFE, 0xAA, 0xAA]); // two bytes of a field this version lacks
        f.extend([17, 0, 1, 0]);
        f.extend(le(100));
        f.extend(le(3));
        f.push(0xAA);
        f.extend([16, 0, 1, 0]);
        f.extend(le(101));
        f.extend(le(4));
        f.extend(SYM);
        f.push(0xAA); // and data after the symbol
        let StreamMessage::DepthSnapshot(d) = read(&f).unwrap() else {
            panic!("not a snapshot")
        };
        assert_eq!((d.first_update_id, d.last_update_id), (0, 55));
        assert_eq!(d.bids.levels().collect::<Vec<_>>(), [(100, 3)]);
        assert_eq!(d.asks.levels().collect::<Vec<_>>(), [(101, 4)]);
        assert_eq!(d.symbol, b"BTCUSDT");
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let good = golden_diff();
        // Every truncation is an error, never a panic.
        for n in 0..good.len() {
            assert!(
                matches!(read(&good[..n]), Err(SbeError::Truncated { .. })),
                "cut at {n}: {:?}",
                read(&good[..n])
            );
        }
        let mut f = good.clone();
        f[4] = 2;
        assert_eq!(
            read(&f).unwrap_err(),
            SbeError::WrongSchema { schema_id: 2 }
        );
        let mut f = good.clone();
        f[2..4].copy_from_slice(&10_004u16.to_le_bytes());
        assert_eq!(
            read(&f).unwrap_err(),
            SbeError::UnknownTemplate {
                template_id: 10_004
            }
        );
        let mut f = good.clone();
        f[0] = 25;
        assert!(matches!(
            read(&f),
            Err(SbeError::ShortBlock {
                part: Part::Block,
                ..
            })
        ));
        // A group count past the end of the frame.
        let mut f = good.clone();
        f[36..38].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            read(&f),
            Err(SbeError::Truncated {
                part: Part::Bids,
                ..
            })
        ));
        // A level entry shorter than price and quantity.
        let mut f = good.clone();
        f[34] = 15;
        assert!(matches!(
            read(&f),
            Err(SbeError::ShortBlock {
                part: Part::Bids,
                ..
            })
        ));
        let mut f = good.clone();
        f.push(0);
        assert_eq!(read(&f).unwrap_err(), SbeError::TrailingBytes { extra: 1 });
        // A symbol longer than what is left.
        let mut f = good.clone();
        let at = f.len() - SYM.len();
        f[at] = 8;
        assert!(matches!(
            read(&f),
            Err(SbeError::Truncated {
                part: Part::Symbol,
                ..
            })
        ));
    }

    #[test]
    fn exact_scaling() {
        assert_eq!(scaled(0, 127, 0), Some(0));
        assert_eq!(scaled(123, -8, 8), Some(123));
        assert_eq!(scaled(123, -8, 7), None, "a digit below the scale");
        assert_eq!(scaled(120, -8, 7), Some(12));
        assert_eq!(scaled(5, 2, 2), Some(50_000));
        assert_eq!(scaled(i64::MAX, 0, 1), None, "overflow");
        assert_eq!(scaled(-7, -1, 1), Some(-7));
        assert_eq!(scaled(1, -128, 0), None, "huge negative exponent");
        assert_eq!(scaled(1, 127, 0), None, "huge positive exponent");
        assert_eq!(scaled(i64::MIN, -19, 0), None);
        assert_eq!(scaled(i64::MIN, -18, 0), None, "a remainder");
        assert_eq!(scaled(-9 * POW10[18], -18, 0), Some(-9));
        assert_eq!(scaled(9, 18, 0), Some(9 * POW10[18]));
        assert_eq!(scaled(10, 18, 0), None, "overflow at 10^19");
        assert_eq!(scaled(1, 19, 0), None);
        // Against the plain arithmetic for every shift either way.
        for m in [
            1i64,
            -7,
            123_456_789,
            6_168_599_000_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            for shift in -20i32..=20 {
                let (e, d) = if shift < 0 {
                    (shift as i8, 0)
                } else {
                    (0, shift as u8)
                };
                let want = if shift >= 0 {
                    10i64
                        .checked_pow(shift as u32)
                        .and_then(|p| m.checked_mul(p))
                } else {
                    10i64
                        .checked_pow(shift.unsigned_abs())
                        .and_then(|p| (m % p == 0).then_some(m / p))
                };
                assert_eq!(scaled(m, e, d), want, "{m}e{shift}");
            }
        }
        assert_eq!(decimals_needed(6_168_599_000_000, -8), 2);
        assert_eq!(decimals_needed(100_870_000, -8), 4);
        assert_eq!(decimals_needed(5, 3), 0);
        assert_eq!(decimals_needed(0, -8), 0);
    }

    #[test]
    fn header_round_trips_and_json_is_not_sbe() {
        let h = MessageHeader {
            block_len: Template::DepthDiff.block_len(),
            template_id: Template::DepthDiff as u16,
            schema_id: SCHEMA_ID,
            version: SCHEMA_VERSION,
        };
        let bytes = h.to_bytes();
        assert_eq!(bytes, [26, 0, 0x13, 0x27, 1, 0, 0, 0]);
        assert_eq!(MessageHeader::read(&bytes), Some(h));
        assert_eq!(u64::from_le_bytes(bytes), Template::DepthDiff.header_word());
        assert!(is_stream_message(&bytes));
        assert!(!is_stream_message(&bytes[..7]));
        assert!(!is_stream_message(
            br#"{"stream":"btcusdt@depth","data":{}}"#
        ));
        assert!(!is_stream_message(b"[1,2,3,4,5,6,7,8]"));
        assert!(!is_stream_message(b"  \n{ \"e\": 1 }"));
        for id in 10000..=10003 {
            assert_eq!(Template::from_id(id).map(|t| t as u16), Some(id));
        }
        assert_eq!(Template::from_id(10004), None);
    }
}
