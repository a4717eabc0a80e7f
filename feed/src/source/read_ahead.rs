//! [`ReadAhead`]: a compressed recording decompressed on a thread of its own, ahead of the
//! reader that parses it.
//!
//! Why: inflating a gzip recording is a fifth of the fused pipeline thread's instructions on the
//! Binance `.hbt.gz` files (zlib-rs), work a live feed never does: its bytes come off a socket.
//! With the inflation moved to a helper thread the replay's feed stage pays what it pays live,
//! a line split and the parse, while the helper keeps a few chunks of text ready.
//!
//! How: a fixed pool of chunk buffers circulates between the two threads on two `rtrb` rings,
//! filled chunks one way and emptied ones back, so nothing is allocated once the pool exists.
//! The helper starts inflating only when the reader first asks for bytes, so a replay's clock
//! does not start with a head start of text already inflated. It waits for an empty buffer
//! parked, and is woken once half the pool has come back; the reader, whose thread runs the
//! pipeline, waits for a filled chunk spinning and then yielding. Errors of the stream (a truncated or corrupt file) reach the reader in order,
//! after every byte that came before them, with their original kind.
//!
//! Invariant: the bytes read through a `ReadAhead` are exactly the bytes of the input, in order,
//! followed by the input's error if it had one; the tests hold it to reading the input directly.

use std::io::{self, BufRead, Read};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A chunk of the input, or how it ended.
enum Chunk {
    /// `buf[..len]` is the next part of the input.
    Data { buf: Vec<u8>, len: usize },
    /// The input ended cleanly.
    End,
    /// The input failed; nothing after this can be read.
    Failed(io::Error),
}

/// The reader's ends of the two rings.
struct Ends {
    filled: rtrb::Consumer<Chunk>,
    emptied: rtrb::Producer<Vec<u8>>,
}

/// A [`BufRead`] over bytes another thread reads from the input ahead of it. See the module
/// docs.
pub struct ReadAhead {
    ends: Option<Ends>,
    worker: Option<JoinHandle<()>>,
    /// The buffers not yet handed to the helper: all of them until the first read.
    idle: Vec<Vec<u8>>,
    /// The chunk being read, `current[pos..len]` still unread.
    current: Vec<u8>,
    pos: usize,
    len: usize,
    /// The input has ended or failed; every later read is the end.
    finished: bool,
    /// The helper is woken when this many filled chunks or fewer wait (half the pool).
    wake_at: usize,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("unread", &(self.len - self.pos))
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// The default chunk size: small enough that a chunk the helper just wrote is still in the
/// shared cache when the reader gets to it.
pub const CHUNK_BYTES: usize = 64 << 10;
/// The default number of chunks in circulation.
pub const CHUNKS: usize = 8;

/// How often a parked helper looks whether the reader has gone, if nothing woke it.
const HELPER_PARK: Duration = Duration::from_millis(1);
/// Spins of the waiting reader before it starts yielding its core.
const READER_SPINS: u32 = 256;

impl ReadAhead {
    /// Reads `input` on a new thread named `read-ahead`, in `chunks` buffers of `chunk_bytes`
    /// (both at least 1). Fails only if the thread cannot be started.
    pub fn spawn<R: Read + Send + 'static>(
        input: R,
        chunk_bytes: usize,
        chunks: usize,
    ) -> io::Result<Self> {
        let (chunk_bytes, chunks) = (chunk_bytes.max(1), chunks.max(1));
        // One slot more than there are buffers for the end marker: a push never finds either
        // ring full.
        let (filled_tx, filled_rx) = rtrb::RingBuffer::new(chunks + 1);
        let (emptied_tx, emptied_rx) = rtrb::RingBuffer::new(chunks);
        let worker = thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || run_helper(input, emptied_rx, filled_tx))?;
        Ok(Self {
            ends: Some(Ends {
                filled: filled_rx,
                emptied: emptied_tx,
            }),
            worker: Some(worker),
            idle: (0..chunks).map(|_| vec![0; chunk_bytes]).collect(),
            current: Vec::new(),
            pos: 0,
            len: 0,
            finished: false,
            wake_at: chunks / 2,
        })
    }

    /// Hands the read chunk (or, the first time, the whole pool) to the helper and waits for
    /// the next chunk.
    fn next_chunk(&mut self) -> io::Result<()> {
        let Some(ends) = self.ends.as_mut() else {
            self.finished = true;
            return Ok(());
        };
        let read = std::mem::take(&mut self.current);
        (self.pos, self.len) = (0, 0);
        // The rings hold every buffer there is, so these pushes cannot fail.
        for buf in self
            .idle
            .drain(..)
            .chain((read.capacity() > 0).then_some(read))
        {
            let _ = ends.emptied.push(buf);
        }
        // Waking a parked thread is a system call and, on a virtual machine, an interrupt to
        // another core: done only once the helper is at most half the pool ahead, so it fills
        // several buffers a wake rather than one.
        if ends.filled.slots() <= self.wake_at
            && let Some(worker) = &self.worker
        {
            worker.thread().unpark();
        }
        let mut spins = 0u32;
        loop {
            let chunk = match ends.filled.pop() {
                Ok(chunk) => chunk,
                // Gone without an end marker: only a panic in the input's reader does that.
                // (Looked at again after the check, as the marker may have come just before.)
                Err(_) if ends.filled.is_abandoned() => ends.filled.pop().unwrap_or_else(|_| {
                    Chunk::Failed(io::Error::other(
                        "the read-ahead thread stopped before the end of the input",
                    ))
                }),
                Err(_) => {
                    if spins < READER_SPINS {
                        spins += 1;
                        std::hint::spin_loop();
                    } else {
                        thread::yield_now();
                    }
                    continue;
                }
            };
            return match chunk {
                Chunk::Data { buf, len } => {
                    (self.current, self.len) = (buf, len);
                    Ok(())
                }
                Chunk::End => {
                    self.finished = true;
                    Ok(())
                }
                Chunk::Failed(err) => {
                    self.finished = true;
                    Err(err)
                }
            };
        }
    }
}

/// The helper thread: fills each empty buffer from `input` and sends it on, until the input
/// ends or fails or the reader is gone.
fn run_helper<R: Read>(
    mut input: R,
    mut emptied: rtrb::Consumer<Vec<u8>>,
    mut filled: rtrb::Producer<Chunk>,
) {
    loop {
        let mut buf = loop {
            match emptied.pop() {
                Ok(buf) => break buf,
                Err(_) if emptied.is_abandoned() => return,
                Err(_) => thread::park_timeout(HELPER_PARK),
            }
        };
        let (len, ended) = fill(&mut input, &mut buf);
        if len > 0 && filled.push(Chunk::Data { buf, len }).is_err() {
            return;
        }
        if let Some(last) = ended {
            let _ = filled.push(last);
            return;
        }
    }
}

/// Reads `input` into `buf` until it is full, the input ends or it fails. Returns the bytes
/// read and, if the input is done, how it ended.
fn fill<R: Read>(input: &mut R, buf: &mut [u8]) -> (usize, Option<Chunk>) {
    let mut len = 0;
    while len < buf.len() {
        match input.read(&mut buf[len..]) {
            Ok(0) => return (len, Some(Chunk::End)),
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (len, Some(Chunk::Failed(err))),
        }
    }
    (len, None)
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len && !self.finished {
            self.next_chunk()?;
        }
        Ok(&self.current[self.pos..self.len])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.len);
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // With the reader's ends gone the helper stops at its next look: after the chunk it is
        // filling, or at once if it is parked.
        self.ends = None;
        if let Some(worker) = self.worker.take() {
            worker.thread().unpark();
            // A helper that panicked has nothing more to say: the reader got its error.
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes in reads of at most `step` bytes, then `error` (or the end).
    struct Steps {
        text: Vec<u8>,
        at: usize,
        step: usize,
        error: Option<io::ErrorKind>,
    }

    impl Read for Steps {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.text.len() {
                return match self.error {
                    Some(kind) => Err(io::Error::new(kind, "cut")),
                    None => Ok(0),
                };
            }
            let n = out.len().min(self.step).min(self.text.len() - self.at);
            out[..n].copy_from_slice(&self.text[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn steps(text: &[u8], step: usize, error: Option<io::ErrorKind>) -> Steps {
        Steps {
            text: text.to_vec(),
            at: 0,
            step,
            error,
        }
    }

    /// All bytes through `ReadAhead` with a small pool, and the error that ended them.
    fn read_all(input: Steps, chunk: usize, chunks: usize) -> (Vec<u8>, Option<io::ErrorKind>) {
        let mut ahead = ReadAhead::spawn(input, chunk, chunks).expect("spawn");
        let mut out = Vec::new();
        let err = ahead.read_to_end(&mut out).err().map(|e| e.kind());
        // The end stays the end.
        assert_eq!(ahead.fill_buf().expect("after the end").len(), 0);
        (out, err)
    }

    #[test]
    fn bytes_come_through_whole_and_in_order() {
        let text: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (chunk, chunks, step) in [(1, 1, 1), (7, 2, 3), (4096, 3, 1000), (1 << 16, 8, 1 << 20)]
        {
            let (out, err) = read_all(steps(&text, step, None), chunk, chunks);
            assert_eq!(err, None);
            assert!(out == text, "chunk {chunk}, chunks {chunks}, step {step}");
        }
        let (out, err) = read_all(steps(b"", 1, None), 16, 2);
        assert!(out.is_empty() && err.is_none());
    }

    #[test]
    fn an_input_error_comes_after_the_bytes_before_it_with_its_kind() {
        let text = b"first line\nsecond line, cut";
        let mut ahead = ReadAhead::spawn(steps(text, 5, Some(io::ErrorKind::UnexpectedEof)), 8, 2)
            .expect("spawn");
        let mut got = Vec::new();
        let err = loop {
            match ahead.fill_buf() {
                Ok([]) => panic!("the end before the error"),
                Ok(buf) => {
                    let n = buf.len();
                    got.extend_from_slice(buf);
                    ahead.consume(n);
                }
                Err(err) => break err,
            }
        };
        assert_eq!(got, text);
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(ahead.fill_buf().expect("latched").is_empty());
    }

    #[test]
    fn nothing_is_read_before_the_first_read() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        struct Counted(Arc<AtomicUsize>);
        impl Read for Counted {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                self.0.fetch_add(1, Ordering::SeqCst);
                out[0] = b'x';
                Ok(1)
            }
        }
        let reads = Arc::new(AtomicUsize::new(0));
        let mut ahead = ReadAhead::spawn(Counted(Arc::clone(&reads)), 4, 2).expect("spawn");
        thread::sleep(Duration::from_millis(20));
        assert_eq!(
            reads.load(Ordering::SeqCst),
            0,
            "the helper waits for the reader"
        );
        let mut first = [0u8; 3];
        ahead.read_exact(&mut first).expect("read");
        assert_eq!(&first, b"xxx");
        // An endless input: dropping the reader stops the helper (the drop joins it).
        drop(ahead);
    }

    #[test]
    fn a_panicking_input_is_an_error_not_a_hang() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("reader bug");
            }
        }
        let mut ahead = ReadAhead::spawn(Panics, 4, 2).expect("spawn");
        let err = ahead.fill_buf().expect_err("the helper died");
        assert_eq!(err.kind(), io::ErrorKind::Other);
    }
}
