//! The recorder: the feed thread hands raw records to a recorder thread over an SPSC byte ring;
//! the recorder thread writes them with a [`RecordingWriter`].
//!
//! # The feed side never waits
//! [`RecorderHandle::record`] copies the record into the ring if there is room and otherwise
//! drops it, counts it, and remembers a pending gap for its connection. The next record that fits
//! is preceded, in the same ring write, by one [`RecordKind::Gap`] record per connection that
//! lost records, so the recording says exactly where frames are missing and a replayed book
//! resyncs there. The handle allocates nothing after [`Recorder::spawn`].
//!
//! # Why a byte ring
//! Frames vary from ~100 bytes (`bookTicker`) to hundreds of kB (REST snapshots). A ring of fixed
//! slots would have to be sized for the largest record and waste most of its memory on the
//! smallest, or split records across slots. A byte ring of length-prefixed entries packs them
//! densely, takes any size up to its capacity, and costs one copy of the record plus one
//! `Release` store per record (the entry, and any gap records before it, go in one chunk and one
//! commit, so the recorder thread only ever sees whole entries).
//!
//! # Ring entry layout (little-endian, no padding)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | receive time, ns since the epoch |
//! | 8 | 2 | connection id |
//! | 10 | 1 | record kind |
//! | 11 | 1 | zero |
//! | 12 | 4 | meta length `m` |
//! | 16 | 4 | payload length `p` |
//! | 20 | m | meta |
//! | 20+m | p | payload |
//!
//! # Gap records
//! A gap record has the receive time of the first record lost, the connection that lost records
//! (or [`ALL_CONNECTIONS`] when more than [`MAX_PENDING_GAPS`] connections lost records before
//! one fitted again), empty meta, and as payload the number of records lost, a `u64` LE.
//!
//! # Shutdown
//! [`Recorder::shutdown`] (or dropping the [`RecorderHandle`]) tells the thread to stop; it drains
//! everything already in the ring, finishes the writer (flush and `fsync`) and reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use arrayvec::ArrayVec;
use rtrb::{Consumer, Producer, RingBuffer};

use pinion_core::record::{ConnId, RawRecord, RecordKind};

use super::RecordingError;
use super::format::{MAX_META_LEN, MAX_PAYLOAD_LEN};
use super::writer::RecordingWriter;

/// Length of a ring entry's fixed part.
const ENTRY_HEADER_LEN: usize = 20;

/// Payload length of a gap record (the count of records lost).
const GAP_PAYLOAD_LEN: usize = 8;

/// Ring length of a gap entry.
const GAP_ENTRY_LEN: usize = ENTRY_HEADER_LEN + GAP_PAYLOAD_LEN;

/// How many connections can have a pending gap before they are merged into one
/// [`ALL_CONNECTIONS`] gap.
pub const MAX_PENDING_GAPS: usize = 16;

/// The connection id of a gap record that applies to every connection.
pub const ALL_CONNECTIONS: ConnId = ConnId(u16::MAX);

/// How long the recorder thread sleeps when the ring is empty. Latency does not matter here,
/// only that the ring never fills: at 1 ms a 16 MiB ring absorbs 16 GB/s.
const IDLE_WAIT: Duration = Duration::from_millis(1);

/// The recorder thread commits what it has read at least this often, so the feed side gets ring
/// space back while a large backlog is being written.
const COMMIT_EVERY: usize = 1 << 20;

/// The default ring size.
pub const DEFAULT_RING_BYTES: usize = 16 << 20;

/// Counters shared by the handle and the thread.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
}

/// Records lost on one connection since the last record that fitted.
#[derive(Debug, Clone, Copy)]
struct PendingGap {
    conn: ConnId,
    t_first: u64,
    lost: u64,
}

/// The feed thread's end: hands records to the recorder without ever blocking.
#[derive(Debug)]
pub struct RecorderHandle {
    producer: Producer<u8>,
    pending: ArrayVec<PendingGap, MAX_PENDING_GAPS>,
    counters: Arc<Counters>,
    thread: thread::Thread,
}

impl RecorderHandle {
    /// Queues a record for the recorder. Returns `false` when the ring has no room: the record is
    /// dropped and counted, and a gap record will precede the next record that fits.
    pub fn record(&mut self, rec: &RawRecord<'_>) -> bool {
        let fits_format = rec.meta.len() <= MAX_META_LEN && rec.payload.len() <= MAX_PAYLOAD_LEN;
        let need = self.pending.len() * GAP_ENTRY_LEN
            + ENTRY_HEADER_LEN
            + rec.meta.len()
            + rec.payload.len();
        if fits_format && let Ok(mut chunk) = self.producer.write_chunk(need) {
            let (first, second) = chunk.as_mut_slices();
            let mut out = SplitWriter::new(first, second);
            out.gaps(&self.pending);
            out.entry(rec.t_recv, rec.conn, rec.kind, rec.meta, rec.payload);
            chunk.commit_all();
            self.pending.clear();
            return true;
        }
        self.note_lost(rec.conn, rec.t_recv);
        false
    }

    /// Tries to write the pending gap records on their own (at the end of a session, when no
    /// record may follow). Returns whether no gap is pending any more.
    pub fn flush_gaps(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let Ok(mut chunk) = self
            .producer
            .write_chunk(self.pending.len() * GAP_ENTRY_LEN)
        else {
            return false;
        };
        let (first, second) = chunk.as_mut_slices();
        SplitWriter::new(first, second).gaps(&self.pending);
        chunk.commit_all();
        self.pending.clear();
        true
    }

    /// Records dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    fn note_lost(&mut self, conn: ConnId, t_recv: u64) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(g) = self
            .pending
            .iter_mut()
            .find(|g| g.conn == conn || g.conn == ALL_CONNECTIONS)
        {
            g.lost += 1;
            return;
        }
        let gap = PendingGap {
            conn,
            t_first: t_recv,
            lost: 1,
        };
        if self.pending.try_push(gap).is_err() {
            // Too many connections with gaps: one gap for all of them says as much.
            let lost = self.pending.iter().map(|g| g.lost).sum::<u64>() + 1;
            let t_first = self
                .pending
                .iter()
                .map(|g| g.t_first)
                .fold(t_recv, u64::min);
            self.pending.clear();
            self.pending.push(PendingGap {
                conn: ALL_CONNECTIONS,
                t_first,
                lost,
            });
        }
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        self.flush_gaps();
        // The thread notices the abandoned ring; wake it so it does not sleep out its wait.
        self.thread.unpark();
    }
}

/// Copies an entry into the two halves of a ring chunk.
struct SplitWriter<'a> {
    first: &'a mut [u8],
    second: &'a mut [u8],
    pos: usize,
}

impl<'a> SplitWriter<'a> {
    fn new(first: &'a mut [u8], second: &'a mut [u8]) -> Self {
        Self {
            first,
            second,
            pos: 0,
        }
    }

    /// One `Gap` entry per pending run of lost records.
    fn gaps(&mut self, pending: &[PendingGap]) {
        for gap in pending {
            self.entry(
                gap.t_first,
                gap.conn,
                RecordKind::Gap,
                &[],
                &gap.lost.to_le_bytes(),
            );
        }
    }

    fn put(&mut self, mut bytes: &[u8]) {
        if self.pos < self.first.len() {
            let n = bytes.len().min(self.first.len() - self.pos);
            self.first[self.pos..self.pos + n].copy_from_slice(&bytes[..n]);
            self.pos += n;
            bytes = &bytes[n..];
        }
        let at = self.pos - self.first.len().min(self.pos);
        if !bytes.is_empty() {
            self.second[at..at + bytes.len()].copy_from_slice(bytes);
            self.pos += bytes.len();
        }
    }

    fn entry(&mut self, t_recv: u64, conn: ConnId, kind: RecordKind, meta: &[u8], payload: &[u8]) {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        h[0..8].copy_from_slice(&t_recv.to_le_bytes());
        h[8..10].copy_from_slice(&conn.0.to_le_bytes());
        h[10] = kind as u8;
        // Lengths fit in u32: they were checked against the format's limits.
        h[12..16].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        self.put(&h);
        self.put(meta);
        self.put(payload);
    }
}

/// What the recorder thread did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderReport {
    /// The files written, in order.
    pub files: Vec<PathBuf>,
    /// Records written, gap records included.
    pub records: u64,
    /// Gap records written.
    pub gap_records: u64,
    /// Records the feed side dropped because the ring was full.
    pub dropped: u64,
}

/// The recorder thread.
#[derive(Debug)]
pub struct Recorder {
    thread: Option<JoinHandle<Result<RecorderReport, RecordingError>>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Recorder {
    /// Starts the recorder thread writing with `writer`, fed through a ring of `ring_bytes`
    /// bytes (allocated here, once). Returns the feed side's handle and the thread.
    pub fn spawn(
        writer: RecordingWriter,
        ring_bytes: usize,
    ) -> Result<(RecorderHandle, Recorder), RecordingError> {
        let (producer, consumer) = RingBuffer::<u8>::new(ring_bytes);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let thread_stop = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("pinion-recorder".into())
            .spawn(move || run(consumer, writer, &thread_stop))?;
        let handle = RecorderHandle {
            producer,
            pending: ArrayVec::new(),
            counters: Arc::clone(&counters),
            thread: thread.thread().clone(),
        };
        Ok((
            handle,
            Recorder {
                thread: Some(thread),
                stop,
                counters,
            },
        ))
    }

    /// Stops the thread after it has written everything already queued, finishes the files and
    /// reports. Records queued after this call are not written: stop recording first.
    pub fn shutdown(mut self) -> Result<RecorderReport, RecordingError> {
        let report = self.stop_and_join()?;
        Ok(RecorderReport {
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            ..report
        })
    }

    fn stop_and_join(&mut self) -> Result<RecorderReport, RecordingError> {
        self.stop.store(true, Ordering::Release);
        let Some(thread) = self.thread.take() else {
            return Err(RecordingError::RecorderGone);
        };
        thread.thread().unpark();
        thread.join().map_err(|_| RecordingError::RecorderGone)?
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Nobody will see the report; still finish the files.
            let _ = self.stop_and_join();
        }
    }
}

/// The recorder thread's body.
fn run(
    mut consumer: Consumer<u8>,
    mut writer: RecordingWriter,
    stop: &AtomicBool,
) -> Result<RecorderReport, RecordingError> {
    let mut drain = Drain {
        scratch: Vec::with_capacity(64 << 10),
        records: 0,
        gap_records: 0,
        error: None,
    };
    loop {
        if drain.drain(&mut consumer, &mut writer) == 0 {
            if stop.load(Ordering::Acquire) || consumer.is_abandoned() {
                // Whatever was committed before the signal is visible now.
                drain.drain(&mut consumer, &mut writer);
                break;
            }
            thread::park_timeout(IDLE_WAIT);
        }
    }
    let files = writer.finish();
    if let Some(e) = drain.error {
        return Err(e);
    }
    Ok(RecorderReport {
        files: files?,
        records: drain.records,
        gap_records: drain.gap_records,
        dropped: 0,
    })
}

/// The recorder thread's state between drains.
struct Drain {
    /// Holds an entry that wraps around the end of the ring.
    scratch: Vec<u8>,
    records: u64,
    gap_records: u64,
    /// The first write error; later entries are read and discarded so the feed side keeps
    /// going (it counts drops only when the ring is full, which then never happens).
    error: Option<RecordingError>,
}

impl Drain {
    /// Writes every whole entry in the ring; returns the bytes consumed.
    fn drain(&mut self, consumer: &mut Consumer<u8>, writer: &mut RecordingWriter) -> usize {
        let mut total = 0;
        loop {
            let avail = consumer.slots();
            if avail < ENTRY_HEADER_LEN {
                return total;
            }
            let Ok(chunk) = consumer.read_chunk(avail) else {
                return total;
            };
            let (a, b) = chunk.as_slices();
            let mut at = 0;
            while at + ENTRY_HEADER_LEN <= avail && at < COMMIT_EVERY {
                let mut h = [0u8; ENTRY_HEADER_LEN];
                copy_out(a, b, at, &mut h);
                let meta_len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
                let payload_len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
                let body_len = meta_len + payload_len;
                let len = ENTRY_HEADER_LEN + body_len;
                if at + len > avail {
                    // Cannot happen: entries are committed whole.
                    break;
                }
                let body_at = at + ENTRY_HEADER_LEN;
                let body: &[u8] = if body_at + body_len <= a.len() {
                    &a[body_at..body_at + body_len]
                } else if body_at >= a.len() {
                    &b[body_at - a.len()..body_at - a.len() + body_len]
                } else {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&a[body_at..]);
                    self.scratch
                        .extend_from_slice(&b[..body_at + body_len - a.len()]);
                    &self.scratch
                };
                let t_recv = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
                let conn = ConnId(u16::from_le_bytes([h[8], h[9]]));
                let kind = RecordKind::from_u8(h[10]).unwrap_or(RecordKind::Gap);
                if self.error.is_none() {
                    let (meta, payload) = body.split_at(meta_len);
                    match writer.write_parts(t_recv, conn, kind, meta, payload) {
                        Ok(()) => {
                            self.records += 1;
                            if kind == RecordKind::Gap {
                                self.gap_records += 1;
                            }
                        }
                        Err(e) => self.error = Some(e),
                    }
                }
                at += len;
            }
            chunk.commit(at);
            total += at;
            if at == 0 {
                return total;
            }
        }
    }
}

/// Copies `out.len()` bytes at logical offset `at` of the two ring halves `a` then `b`.
fn copy_out(a: &[u8], b: &[u8], at: usize, out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate() {
        let p = at + i;
        *o = if p < a.len() { a[p] } else { b[p - a.len()] };
    }
}
