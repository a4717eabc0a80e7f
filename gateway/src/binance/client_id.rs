//! pinion's [`ClientOrderId`] as Binance's `clientOrderId` text, and back.
//!
//! The text is `p` + the run's epoch + `-` + the id, both in fixed-width lower-case base 36:
//! `p0lmxq2c8k-0000000000123` (24 bytes). That lies inside `^[a-zA-Z0-9_-]{1,36}$`, the
//! intersection of the Spot FIX rule and the USD-M regex, so one encoding serves every Binance
//! API; it is case-insensitive, so nothing that folds case can make two ids equal.
//!
//! **Why an epoch.** Binance refuses a `newClientOrderId` equal to an *open* order's
//! (`-2010 "Duplicate order sent."`). A restarted engine counts its ids from scratch, so
//! orders an earlier run left open would collide with the new run's. Every run takes a new
//! [`RunEpoch`] (its start time in ms), and ids of different epochs differ in their prefix, so
//! they can never be equal; decoding tells this run's ids from an earlier run's and from
//! foreign ones (the web UI's, the exchange's auto-generated ones).
//!
//! The width is fixed so a request template can reserve the slot once. Encoding and decoding
//! neither allocate nor panic.

use pinion_strategy::ClientOrderId;

/// Length of an encoded id.
pub const CLIENT_ID_LEN: usize = 24;
/// Longest `clientOrderId` Binance accepts.
pub const MAX_CLIENT_ID_LEN: usize = 36;

const EPOCH_DIGITS: usize = 9;
const ID_DIGITS: usize = 13;
const DASH_AT: usize = 1 + EPOCH_DIGITS;
/// `36^9`: epochs must stay below (ms since 1970 reaches it in the year 5138).
const EPOCH_LIMIT: u64 = 101_559_956_668_416;
const _: () = assert!(CLIENT_ID_LEN == DASH_AT + 1 + ID_DIGITS);
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Why an epoch or a received id could not be used. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdError {
    /// The epoch does not fit in nine base-36 digits.
    #[error("run epoch {0} is not below 36^9")]
    EpochTooLarge(u64),
    /// The text is empty or longer than Binance allows.
    #[error("clientOrderId of {0} bytes (1 to 36 allowed)")]
    BadLength(usize),
    /// A byte outside `[a-zA-Z0-9_-]`.
    #[error("clientOrderId has byte 0x{byte:02x} at offset {offset}, outside [a-zA-Z0-9_-]")]
    BadByte {
        /// The byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// Shaped like a pinion id but a digit is not base 36, or the value overflows.
    #[error("clientOrderId looks like pinion's but its {field} is not a base-36 number")]
    Malformed {
        /// `"epoch"` or `"id"`.
        field: &'static str,
    },
}

/// The per-run prefix of every client order id: distinct for every run of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunEpoch(u64);

impl RunEpoch {
    /// An epoch from the run's start time in ms since the Unix epoch (or any value distinct per
    /// run and below `36^9`).
    pub const fn new(value: u64) -> Result<Self, ClientIdError> {
        if value >= EPOCH_LIMIT {
            return Err(ClientIdError::EpochTooLarge(value));
        }
        Ok(Self(value))
    }

    /// The epoch of a run starting now (wall clock ms).
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self(ms % EPOCH_LIMIT)
    }

    /// The value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What a received `clientOrderId` (`c` or `C`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdKind {
    /// An id of this run.
    Ours(ClientOrderId),
    /// An id pinion made in an earlier run (an order left open across a restart).
    EarlierRun {
        /// That run's epoch.
        epoch: RunEpoch,
        /// The id within that run.
        id: ClientOrderId,
    },
    /// A valid id not made by pinion (web UI, another program, the exchange's own).
    Foreign,
}

/// Encodes and decodes the client order ids of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdCodec {
    epoch: RunEpoch,
    prefix: [u8; DASH_AT + 1],
}

impl ClientIdCodec {
    /// The codec of the run with `epoch`.
    pub fn new(epoch: RunEpoch) -> Self {
        let mut prefix = [0u8; DASH_AT + 1];
        prefix[0] = b'p';
        write_base36(epoch.0, &mut prefix[1..DASH_AT]);
        prefix[DASH_AT] = b'-';
        Self { epoch, prefix }
    }

    /// This run's epoch.
    pub fn epoch(&self) -> RunEpoch {
        self.epoch
    }

    /// Writes `id`'s text into `out`.
    #[inline]
    pub fn encode(&self, id: ClientOrderId, out: &mut [u8; CLIENT_ID_LEN]) {
        out[..=DASH_AT].copy_from_slice(&self.prefix);
        write_id_digits(id.0, &mut out[DASH_AT + 1..]);
    }

    /// Classifies a received id: this run's, an earlier run's, or foreign; an error only for
    /// text Binance would never send (bad length or byte) or a pinion-shaped id that is broken.
    pub fn decode(&self, text: &[u8]) -> Result<ClientIdKind, ClientIdError> {
        if text.is_empty() || text.len() > MAX_CLIENT_ID_LEN {
            return Err(ClientIdError::BadLength(text.len()));
        }
        if let Some(offset) = text
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(ClientIdError::BadByte {
                byte: text[offset],
                offset,
            });
        }
        if text.len() != CLIENT_ID_LEN || text[0] != b'p' || text[DASH_AT] != b'-' {
            return Ok(ClientIdKind::Foreign);
        }
        let epoch =
            read_base36(&text[1..DASH_AT]).ok_or(ClientIdError::Malformed { field: "epoch" })?;
        let id =
            read_base36(&text[DASH_AT + 1..]).ok_or(ClientIdError::Malformed { field: "id" })?;
        let id = ClientOrderId(id);
        if epoch == self.epoch.0 {
            Ok(ClientIdKind::Ours(id))
        } else {
            Ok(ClientIdKind::EarlierRun {
                epoch: RunEpoch(epoch),
                id,
            })
        }
    }
}

/// `value` in base 36, right-aligned and zero-padded to `out.len()` digits (the caller's width
/// holds the value: 9 digits for an epoch below `36^9`, 13 for any `u64`).
#[inline]
fn write_base36(mut value: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
}

/// Base-36 digit pairs, `00` to `zz`.
const PAIRS: [[u8; 2]; 36 * 36] = {
    let mut pairs = [[0u8; 2]; 36 * 36];
    let mut i = 0;
    while i < 36 * 36 {
        pairs[i] = [DIGITS[i / 36], DIGITS[i % 36]];
        i += 1;
    }
    pairs
};

/// `36^6`, the most six base-36 digits hold plus one; below `u32::MAX`.
const SIX_DIGITS: u64 = 36u64.pow(6);

/// Six base-36 digits of `value` (below `36^6`) into `out`, two at a time.
#[inline(always)]
fn write_six(value: u32, out: &mut [u8]) {
    let (high, low) = (value / 1296, value % 1296);
    out[4..6].copy_from_slice(&PAIRS[low as usize]);
    out[2..4].copy_from_slice(&PAIRS[(high % 1296) as usize]);
    out[0..2].copy_from_slice(&PAIRS[(high / 1296) as usize % PAIRS.len()]);
}

/// [`write_base36`] for an id's 13 digits (any `u64`), in three groups that do not wait on
/// each other and two digits per step: an id is written with each of an OTOCO's four
/// orders, and thirteen divisions one after the other were most of the time of that.
#[inline]
fn write_id_digits(value: u64, out: &mut [u8]) {
    let out = &mut out[..ID_DIGITS];
    // u64::MAX is "3w5e11264sgsf": the top digit is below 36.
    out[0] = DIGITS[(value / (SIX_DIGITS * SIX_DIGITS)) as usize % 36];
    write_six(((value / SIX_DIGITS) % SIX_DIGITS) as u32, &mut out[1..7]);
    write_six((value % SIX_DIGITS) as u32, &mut out[7..]);
}

fn read_base36(text: &[u8]) -> Option<u64> {
    let mut acc: u64 = 0;
    for &c in text {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        acc = acc.checked_mul(36)?.checked_add(u64::from(d))?;
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_at_fixed_width_inside_the_binance_charset() {
        let codec = ClientIdCodec::new(RunEpoch::new(1_764_921_600_000).unwrap());
        let mut out = [0u8; CLIENT_ID_LEN];
        codec.encode(ClientOrderId(u64::MAX), &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text, "p0miskr280-3w5e11264sgsf");
        codec.encode(ClientOrderId(0), &mut out);
        assert_eq!(&out, b"p0miskr280-0000000000000");
        assert_eq!(
            codec.decode(b"p0miskr280-3w5e11264sgsf"),
            Ok(ClientIdKind::Ours(ClientOrderId(u64::MAX)))
        );
        // One more than u64::MAX in base 36.
        assert_eq!(
            codec.decode(b"p0miskr280-3w5e11264sgsg"),
            Err(ClientIdError::Malformed { field: "id" })
        );
        assert_eq!(
            RunEpoch::new(EPOCH_LIMIT),
            Err(ClientIdError::EpochTooLarge(EPOCH_LIMIT))
        );
    }

    #[test]
    fn id_digits_in_pairs_match_digit_by_digit() {
        let mut values = vec![0, 1, 35, 36, 1295, 1296, SIX_DIGITS - 1, SIX_DIGITS];
        values.extend([
            SIX_DIGITS * SIX_DIGITS - 1,
            SIX_DIGITS * SIX_DIGITS,
            u64::MAX,
        ]);
        values.extend([u64::MAX - 1, 1_764_921_600_000, 4_000_000_000_000_000_001]);
        // A spread of magnitudes and digit patterns.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for shift in 0..64 {
            x = x.rotate_left(7) ^ x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            values.push(x >> shift);
        }
        for v in values {
            let (mut pairs, mut one) = ([0u8; ID_DIGITS], [0u8; ID_DIGITS]);
            write_id_digits(v, &mut pairs);
            write_base36(v, &mut one);
            assert_eq!(pairs, one, "{v}");
            assert_eq!(read_base36(&pairs), Some(v));
        }
    }

    #[test]
    fn foreign_and_invalid_ids_are_told_apart() {
        let codec = ClientIdCodec::new(RunEpoch::new(7).unwrap());
        assert_eq!(codec.decode(b"web_e0a1b2c3d4"), Ok(ClientIdKind::Foreign));
        assert_eq!(
            codec.decode(b"4d96324ff9d44481926157"),
            Ok(ClientIdKind::Foreign)
        );
        assert_eq!(codec.decode(b""), Err(ClientIdError::BadLength(0)));
        assert_eq!(codec.decode(&[b'a'; 37]), Err(ClientIdError::BadLength(37)));
        assert_eq!(
            codec.decode(b"abc.def"),
            Err(ClientIdError::BadByte {
                byte: b'.',
                offset: 3
            })
        );
        assert_eq!(
            codec.decode(b"p00000000_-0000000000000"),
            Err(ClientIdError::Malformed { field: "epoch" })
        );
    }
}
