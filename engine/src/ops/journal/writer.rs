//! Opening a journal (read, cut a torn tail, rebuild) and its writer thread.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::frame::{self, MAGIC};
use super::{
    FsyncPolicy, JournalError, JournalSettings, OperatorAction, Record, Recovered, Session,
};
use crate::ops::history::HistoryStream;
use crate::runtime::{RingRx, RingTx, ring, ring_resident};

/// Operator actions the bot's ring holds: a person does not act faster than the writer drains.
const OPERATOR_RING: usize = 256;

/// Bytes the writer gathers before a `write`.
const BATCH_BYTES: usize = 1 << 16;

/// How long the writer sleeps when the ring is empty.
const IDLE: Duration = Duration::from_micros(50);

/// The stages' end of the journal: pushes records into the ring. See the module docs.
#[derive(Debug)]
pub struct JournalTx {
    ring: RingTx<Record>,
    overflow: Arc<AtomicU64>,
    /// Set by the writer when a write or `fsync` failed and it ended.
    failed: Arc<AtomicBool>,
}

impl JournalTx {
    /// Pushes `record`; `false` (and counted) when the ring is full or the writer has failed
    /// (nothing pushed would reach the file). Never blocks, never allocates.
    #[inline]
    pub fn push(&mut self, record: Record) -> bool {
        if self.failed.load(Ordering::Relaxed) {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.ring.try_push(record) {
            Ok(()) => true,
            Err(_) => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records that did not fit the ring or came after the writer failed.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }

    /// Whether the writer has failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// The operator bot's end of the journal: its own ring, which the writer drains beside the
/// stages'. Off the hot path.
#[derive(Debug)]
pub struct OperatorLog {
    ring: RingTx<Record>,
    overflow: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl OperatorLog {
    /// Journals `action`; `false` (and counted with the journal's overflow) when its ring is
    /// full or the writer has failed.
    pub fn push(&mut self, action: OperatorAction) -> bool {
        if self.failed.load(Ordering::Relaxed)
            || self.ring.try_push(Record::Operator(action)).is_err()
        {
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// What a journal's writer did in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalSummary {
    /// Records written.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// `fsync` calls.
    pub syncs: u64,
    /// Records that did not fit the ring (orders among them were refused, not sent).
    pub overflow: u64,
}

/// The owner of a journal's writer thread.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicU64>,
    /// The operator bot's end, until taken.
    operator: Option<OperatorLog>,
    thread: Option<JoinHandle<Result<JournalSummary, JournalError>>>,
}

/// Opens (creating if missing) the journal `settings` names: reads every record, cuts a torn
/// last frame off, rebuilds the state, and starts the writer appending after the last whole
/// frame. Fails on a file that is not a journal or is damaged in the middle.
pub fn open(settings: &JournalSettings) -> Result<(Journal, JournalTx, Recovered), JournalError> {
    open_streaming(settings, None)
}

/// [`open`], the writer handing each batch of records, once written (and synced when the
/// policy syncs every batch), to `history` as well.
pub fn open_streaming(
    settings: &JournalSettings,
    history: Option<HistoryStream>,
) -> Result<(Journal, JournalTx, Recovered), JournalError> {
    let (journal, mut txs, recovered) = open_stages(settings, history, 1)?;
    let tx = txs
        .pop()
        .ok_or_else(|| JournalError::Writer("no ring".into()))?;
    Ok((journal, tx, recovered))
}

/// [`open_streaming`] for `stages` strategy stages: a ring for each, which the writer drains
/// beside the others, the first before the rest (the records a session starts with are pushed
/// there before any stage runs).
pub fn open_stages(
    settings: &JournalSettings,
    history: Option<HistoryStream>,
    stages: usize,
) -> Result<(Journal, Vec<JournalTx>, Recovered), JournalError> {
    let path = settings.path.clone();
    let io = |source| JournalError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // Held until the file is closed (the writer thread owns it), released by the kernel when
    // the process dies, so a killed session never leaves it locked.
    // SAFETY: `flock` only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(JournalError::Locked { path });
        }
        return Err(io(e));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let scan = frame::scan(&bytes)?;
    let recovered = Recovered::from_scan(&scan);
    if scan.valid_len == 0 {
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(MAGIC).map_err(io)?;
        file.sync_all().map_err(io)?;
        sync_dir(&path);
    } else {
        if scan.torn > 0 {
            file.set_len(scan.valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(scan.valid_len)).map_err(io)?;
    }
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..stages.max(1))
        .map(|_| {
            ring_resident(
                settings.capacity.max(16),
                Record::Session(Session {
                    epoch: 0,
                    started_unix_ns: 0,
                }),
            )
        })
        .unzip();
    let (operator_tx, operator_rx) = ring(OPERATOR_RING);
    let stop = Arc::new(AtomicBool::new(false));
    let overflow = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        operator: operator_rx,
        failed: Arc::clone(&failed),
        file,
        path: path.clone(),
        policy: settings.fsync,
        rx: rxs,
        stop: Arc::clone(&stop),
        history,
    };
    let thread = std::thread::Builder::new()
        .name("pinion-journal".into())
        .spawn(move || {
            let failed = Arc::clone(&writer.failed);
            let r = writer.run();
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            r
        })
        .map_err(|e| JournalError::Writer(e.to_string()))?;
    Ok((
        Journal {
            path,
            stop,
            overflow: Arc::clone(&overflow),
            operator: Some(OperatorLog {
                ring: operator_tx,
                overflow: Arc::clone(&overflow),
                failed: Arc::clone(&failed),
            }),
            thread: Some(thread),
        },
        txs.into_iter()
            .map(|ring| JournalTx {
                ring,
                overflow: Arc::clone(&overflow),
                failed: Arc::clone(&failed),
            })
            .collect(),
        recovered,
    ))
}

/// Makes a newly created file's directory entry durable (best effort: not every file system
/// lets a directory be opened).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Journal {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The operator bot's end of the journal (once: there is one bot).
    pub fn operator_log(&mut self) -> Option<OperatorLog> {
        self.operator.take()
    }

    /// Once the stages have finished: the writer drains the ring, syncs and ends.
    pub fn finish(mut self) -> Result<JournalSummary, JournalError> {
        self.stop.store(true, Ordering::Release);
        let mut summary = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r?,
            Some(Err(_)) => return Err(JournalError::Writer("the writer thread panicked".into())),
            None => JournalSummary::default(),
        };
        summary.overflow = self.overflow.load(Ordering::Relaxed);
        Ok(summary)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    failed: Arc<AtomicBool>,
    file: File,
    path: PathBuf,
    policy: FsyncPolicy,
    /// Each strategy stage's ring.
    rx: Vec<RingRx<Record>>,
    /// The operator bot's records.
    operator: RingRx<Record>,
    stop: Arc<AtomicBool>,
    /// Where written records go next (the trade history's thread).
    history: Option<HistoryStream>,
}

impl Writer {
    fn run(mut self) -> Result<JournalSummary, JournalError> {
        let mut summary = JournalSummary::default();
        let mut buf: Vec<u8> = Vec::with_capacity(BATCH_BYTES + frame::FRAME_HEADER + 128);
        let mut unsynced = false;
        let mut last_sync = Instant::now();
        loop {
            // Read before draining: whatever was pushed before the stop is written.
            let stopping = self.stop.load(Ordering::Acquire);
            let mut taken = 0u64;
            let mut written = Vec::new();
            while buf.len() < BATCH_BYTES {
                let Some(r) = self
                    .rx
                    .iter_mut()
                    .find_map(RingRx::pop)
                    .or_else(|| self.operator.pop())
                else {
                    break;
                };
                buf.extend_from_slice(frame::encode(&r).as_bytes());
                taken += 1;
                if self.history.is_some() {
                    written.push(r);
                }
            }
            if !buf.is_empty() {
                self.file.write_all(&buf).map_err(|e| self.io(e))?;
                summary.records += taken;
                summary.bytes += buf.len() as u64;
                buf.clear();
                unsynced = true;
            }
            let due = match self.policy {
                FsyncPolicy::Every => true,
                FsyncPolicy::Interval(d) => last_sync.elapsed() >= d,
                FsyncPolicy::Never => false,
            };
            if unsynced && due {
                self.file.sync_data().map_err(|e| self.io(e))?;
                summary.syncs += 1;
                unsynced = false;
                last_sync = Instant::now();
            }
            // The history holds nothing the journal does not: it follows the write.
            if !written.is_empty()
                && let Some(h) = &self.history
                && !h.records(written)
            {
                // The history's thread stopped (its error comes out when it is finished);
                // the journal goes on.
                self.history = None;
            }
            if taken == 0 {
                if stopping {
                    break;
                }
                std::thread::sleep(IDLE);
            }
        }
        if unsynced {
            self.file.sync_data().map_err(|e| self.io(e))?;
            summary.syncs += 1;
        }
        Ok(summary)
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
