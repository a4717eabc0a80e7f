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
pub fn is_stream_message(frame: &[u8]) -> bool {
    MessageHeader::read(frame).is_some_and(|h| h.schema_id == SCHEMA_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

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
