//! The trading journal (`[journal] path`): every order request, execution report, fill and
//! position change of a `pinion live --trade` session, appended to a file as it happens, so a
//! session that dies (SIGKILL, a crash, a power cut) restarts where it was.
//!
//! **Writing.** The strategy stage, which sees every order it sends and every report it
//! applies, pushes each as a fixed-size [`Record`] into a ring ([`JournalTx::push`]: no
//! allocation, no lock, no system call). A writer thread of its own drains the ring, frames the
//! records ([`frame`]: length, CRC, payload) and appends them, then calls `fsync` as the
//! [`FsyncPolicy`] says: after every batch it wrote (`every`), at most once per interval
//! (`interval`), or never (`never`: the page cache decides; a killed process loses nothing,
//! a power cut may).
//!
//! **A full ring.** The hot path never waits for the disk, so the ring can fill. It holds
//! [`JournalSettings::capacity`] records (65 536 by default), far more than can be in flight
//! at once: the gateway holds at most `MAX_IN_FLIGHT` requests per venue, the venue allows
//! tens of orders a second, and the writer drains the ring in microseconds per record. If it
//! fills all the same (the disk stalls), or the writer has failed (a write or `fsync` error
//! ends it, and from then on every push is refused), an *order* whose record does not
//! fit is not sent at all: the strategy gets it back refused (`Rejected(Overloaded)`), so no
//! order is ever at the venue without its request in the journal's ring. A *report* that does
//! not fit cannot be refused; it is counted ([`JournalTx::overflow`]), the run's notes call it
//! an error, and the next start recovers what it said from the venue, since its order is
//! journaled.
//!
//! **What survives.** A record pushed before the process is killed is on disk once the writer
//! has written it (the page cache survives the process); with `fsync = "every"` it survives a
//! power cut once synced, which follows the write by one `fsync`. What the venue acknowledged
//! in the last instant before a kill may still be in the ring, so not journaled: restart finds
//! such an order open at the venue under this epoch but unknown to the journal, and treats it
//! as foreign (counted, and cancelled or kept as `open_orders` says); a fill it had before is
//! not in the ledger. The journal is not written ahead of the send: waiting for the disk would
//! put a system call on every order's path.
//!
//! **Operators.** What an operator does through the bot (pause, resume, cancel-all, kill,
//! flatten, a manual order or cancel, an alert set or removed, a confirmation that expired) is
//! journaled as a [`Record::Operator`] with the operator's user id, pushed by the bot's thread
//! into a ring of its own ([`OperatorLog`], which the writer drains beside the stages'), so
//! nothing of it is on the hot path. A manual order's record carries the client id the
//! strategy stage gave it: the order's own records (request, reports) join it on that id.
//!
//! **One writer.** The file is locked while a session has it open; a second process on the
//! same journal is refused at start-up.
//!
//! **Restart.** [`open`] reads the file ([`frame::scan`]), cuts a torn last frame off, and
//! rebuilds the state ([`Recovered`]): per instrument, the fills in order (the ledger is
//! replayed from them, fees charged as before), every order and its last known state and
//! filled quantity, and the highest client ids used. The new session keeps the journal's run
//! epoch (the prefix of its client order ids), so the orders an earlier session left open are
//! this session's to track; its own ids resume past the highest journaled by
//! [`RESUME_GAP`], so an id sent but never journaled is never used twice. The venue takes the
//! open orders into its order table, and its reconciliation after connect (the open-order
//! list, then `order.status` for each one the list does not hold) moves each to what the
//! exchange says, reporting fills and closes the session missed to the strategy stage, which
//! books and journals them like any others. Those still open are then cancelled before the
//! first new order (`[live.orders] open_orders = "cancel"`, the default: the new session's
//! strategy did not place them and would never manage them), or kept and tracked (`"keep"`).

pub mod frame;
mod recover;
mod writer;

pub use recover::{InstrumentLog, JournaledOrder, Recovered, resume_from};
pub use writer::{
    Journal, JournalSummary, JournalTx, OperatorLog, open, open_stages, open_streaming,
};

use std::path::PathBuf;
use std::time::Duration;

use pinion_core::{InstrumentId, Qty};
use pinion_strategy::{ClientOrderId, ExecReport, OrderIntent, OrderSide};

/// How far past the highest journaled client id a restarted session's ids start: more than any
/// number of orders that could have been sent and not yet written when the session died (the
/// ring's capacity at most, and the venue's order rate limits allow far fewer a day).
pub const RESUME_GAP: u64 = 1 << 20;

/// The default ring capacity, in records.
pub const DEFAULT_CAPACITY: usize = 1 << 16;

/// One journaled event. Small and `Copy`: it crosses the ring by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A session started on this journal.
    Session(Session),
    /// An order request handed to the gateway (new, cancel, replace, amend).
    Order(OrderIntent),
    /// An execution report from the venue, as the strategy stage applied it (fills are the
    /// reports with a quantity).
    Report(ExecReport),
    /// The instrument's position after a fill.
    Position(PositionChange),
    /// Which instrument an id stood for in the session that follows (one per traded
    /// instrument, after its [`Record::Session`]): the journal's records name instruments by
    /// their place in the config, so a restart checks the places still hold the same ones.
    Instrument(InstrumentKey),
    /// Something an operator did, and who (see the module docs).
    Operator(OperatorAction),
}

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OperatorKind {
    /// `/pause`.
    Pause = 1,
    /// `/resume`.
    Resume = 2,
    /// `/cancelall`.
    CancelAll = 3,
    /// A confirmed `/kill`.
    Kill = 4,
    /// A confirmed `/flatten`.
    Flatten = 5,
    /// A confirmed `/buy` or `/sell`.
    Order = 6,
    /// A confirmed `/cancel`.
    Cancel = 7,
    /// `/alert`: an alarm set.
    AlertSet = 8,
    /// `/unalert`: an alarm removed.
    AlertRemoved = 9,
    /// A confirmation that came too late: nothing was done.
    Expired = 10,
}

impl OperatorKind {
    /// The kind of code `code`, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Pause,
            2 => Self::Resume,
            3 => Self::CancelAll,
            4 => Self::Kill,
            5 => Self::Flatten,
            6 => Self::Order,
            7 => Self::Cancel,
            8 => Self::AlertSet,
            9 => Self::AlertRemoved,
            10 => Self::Expired,
            _ => return None,
        })
    }
}

/// One operator action, as journaled. Fields that do not apply to its kind are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorAction {
    /// The operator's user id (the bot's `users`).
    pub user: i64,
    /// When, ns since the Unix epoch.
    pub at_unix_ns: u64,
    /// What.
    pub kind: OperatorKind,
    /// The instrument acted on (0 when none).
    pub instrument: InstrumentId,
    /// The client id of the order or cancel sent (0 when none was): a manual order's
    /// records join this one on it.
    pub client_id: ClientOrderId,
    /// A cancel's order; an alarm's number.
    pub target: u64,
    /// An order's side.
    pub side: OrderSide,
    /// An order's limit price, or an alarm's threshold (in the instrument's price units).
    pub px: pinion_core::Px,
    /// An order's quantity.
    pub qty: Qty,
    /// What became of it: [`OperatorAction::DONE`], [`OperatorAction::REFUSED`],
    /// [`OperatorAction::NOT_SENT`] or [`OperatorAction::UNKNOWN`].
    pub outcome: u8,
}

impl OperatorAction {
    /// Carried out (or, for an order or cancel, sent).
    pub const DONE: u8 = 0;
    /// Refused by the risk gate (nothing sent).
    pub const REFUSED: u8 = 1;
    /// Not sent for another reason (no such open order, not traded, journal full, ended).
    pub const NOT_SENT: u8 = 2;
    /// Handed to the trading stage, which did not answer in time: whether it was sent is not
    /// known here (the order's own records, and the venue, tell). A later answer is journaled
    /// again with its outcome.
    pub const UNKNOWN: u8 = 3;

    /// An action of `kind` by `user` now, every other field zero.
    pub fn now(user: i64, kind: OperatorKind) -> Self {
        OperatorAction {
            user,
            at_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            kind,
            instrument: InstrumentId(0),
            client_id: ClientOrderId(0),
            target: 0,
            side: OrderSide::Buy,
            px: pinion_core::Px(0),
            qty: Qty(0),
            outcome: Self::DONE,
        }
    }
}

/// An instrument id and the fingerprint of what it stood for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentKey {
    /// The id (its place in the config's symbol list).
    pub instrument: InstrumentId,
    /// [`instrument_key`] of the instrument.
    pub key: u64,
}

/// The fingerprint of an instrument as the journal records it: venue, symbol and the decimals
/// its prices and quantities are scaled by (FNV-1a over them), since the journal's integers mean
/// something only on the same scale.
pub fn instrument_key(spec: &pinion_core::InstrumentSpec) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(spec.venue.name().as_bytes());
    eat(b"\0");
    eat(spec.symbol.as_bytes());
    eat(&[0, spec.price_decimals, spec.qty_decimals]);
    h
}

/// The start of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The run epoch of the session's client order ids.
    pub epoch: u64,
    /// Its start, ns since the Unix epoch.
    pub started_unix_ns: u64,
}

/// An instrument's account after a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionChange {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The position.
    pub qty: Qty,
    /// Realised PnL before fees, in money units of the instrument.
    pub realized: i128,
    /// Fees paid, same units.
    pub fees: i128,
    /// The venue's time of the fill, ns.
    pub venue_ts: u64,
}

/// When the writer calls `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every batch written.
    Every,
    /// At most once per this interval, when something was written.
    Interval(Duration),
    /// Never while the session runs (once at its clean end).
    Never,
}

/// `[journal]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSettings {
    /// The journal file (created when missing, appended to when not).
    pub path: PathBuf,
    /// When to `fsync`.
    pub fsync: FsyncPolicy,
    /// Records the ring holds.
    pub capacity: usize,
}

/// What went wrong with a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file could not be opened, read, written or synced.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the journal open (two trading sessions on one journal would
    /// adopt the same orders and interleave their records).
    #[error("{}: in use by another process (its lock is held)", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file does not start with the journal's magic bytes.
    #[error("not a pinion journal (its first bytes are not PNJRNL01)")]
    NotJournal,
    /// A frame in the middle of the file fails its check: the journal is damaged, and nothing
    /// after it is read.
    #[error("journal damaged at byte {offset}: {why}")]
    Corrupt {
        /// The frame's offset in the file.
        offset: u64,
        /// What was wrong.
        why: &'static str,
    },
    /// A frame passed its CRC but is not a record this pinion knows.
    #[error("journal record at byte {offset} is not readable: {why}")]
    BadRecord {
        /// The frame's offset in the file.
        offset: u64,
        /// What was wrong.
        why: &'static str,
    },
    /// The journal's run epoch cannot prefix client order ids.
    #[error("journal run epoch {0} is out of range")]
    Epoch(u64),
    /// The writer thread stopped on an error or could not start.
    #[error("the journal writer stopped: {0}")]
    Writer(String),
}

#[cfg(test)]
mod tests;
